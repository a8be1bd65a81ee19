"""Tables of online payments (线上支付): merchant accounts (商户号), payment orders (支付订单)
and what they pay, refunds (退款), received notifications (支付通知) and reconciliation
(对账) runs with their exceptions.

Amounts are integer cents (分). A payment order pays through one merchant account of one
community; the bills are settled by billing's pending receipt (``receipt_id``), which
billing posts to the ledger exactly once when the order is confirmed paid.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from linli.db.base import Base, GlobalRow, TenantOwned, tenant_fk

CENTS = BigInteger


class OrderStatus(enum.StrEnum):
    CREATED = "created"  # stored; the provider may not know it yet
    PAYING = "paying"  # the provider answered with a prepay: the payer can pay
    PAID = "paid"
    CLOSED = "closed"  # expired or cancelled unpaid
    FAILED = "failed"  # the provider refused the trade
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


OPEN_STATUSES = (OrderStatus.CREATED.value, OrderStatus.PAYING.value)
PAID_STATUSES = (
    OrderStatus.PAID.value,
    OrderStatus.PARTIALLY_REFUNDED.value,
    OrderStatus.REFUNDED.value,
)


class OrderPurpose(enum.StrEnum):
    BILLS = "bills"  # pays selected bills (缴费)
    TOP_UP = "top_up"  # tops up the prepaid balance (预存)
    COUNTER = "counter"  # a cashier's scan-to-pay receipt (扫码收款)


class PostingState(enum.StrEnum):
    NONE = "none"  # not paid yet
    POSTED = "posted"  # billing settled the bills and posted the ledger
    REVIEW = "review"  # paid, but could not be posted as planned: finance decides


class RefundStatus(enum.StrEnum):
    REQUESTED = "requested"  # waits for finance approval
    REJECTED = "rejected"
    PROCESSING = "processing"  # approved and sent to the provider
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the provider refused or the money could not reach the payer


class ExceptionKind(enum.StrEnum):
    AMOUNT_MISMATCH = "amount_mismatch"  # the provider paid another amount than ordered
    MERCHANT_MISMATCH = "merchant_mismatch"  # a trade of another merchant on this endpoint
    UNKNOWN_ORDER = "unknown_order"  # the provider reports a trade we never created
    NOT_POSTABLE = "not_postable"  # paid, but the bills were settled meanwhile
    PAID_NOT_POSTED = "paid_not_posted"  # reconciliation: paid there, not here (now posted)
    MISSING_AT_PROVIDER = "missing_at_provider"  # reconciliation: paid here, not there
    BILL_AMOUNT_MISMATCH = "bill_amount_mismatch"  # reconciliation: the amounts differ
    REFUND_MISMATCH = "refund_mismatch"  # reconciliation: a refund differs or is unknown


class ExceptionStatus(enum.StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class RunStatus(enum.StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class MerchantRoute(GlobalRow, Base):
    """Which company a merchant account belongs to, by its id alone.

    Notifications arrive unauthenticated at ``/notify/{provider}/{merchant_account_id}``:
    this row (ids only, no secret) names the tenant whose transaction then reads the
    account under RLS. ``id`` is the merchant account's id.
    """

    __tablename__ = "payment_merchant_routes"

    tenant_id: Mapped[uuid.UUID]
    provider: Mapped[str] = mapped_column(String(20))


class MerchantAccount(TenantOwned, Base):
    """A merchant account (商户号 / 支付宝应用) of one community at one provider.

    ``config_enc`` is the provider's configuration (keys, APIv3 key) as JSON, encrypted
    with the data key; it is never logged or shown back.
    """

    __tablename__ = "payment_merchant_accounts"
    __table_args__ = (
        tenant_fk(["community_id"], "communities"),
        Index(
            "uq_payment_merchant_accounts_active",
            "tenant_id",
            "community_id",
            "provider",
            unique=True,
            postgresql_where=text("active"),
        ),
    )

    community_id: Mapped[uuid.UUID]
    provider: Mapped[str] = mapped_column(String(20))
    merchant_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100), default="")
    config_enc: Mapped[bytes] = mapped_column(LargeBinary)
    active: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=text("now()"))


class PaymentOrder(TenantOwned, Base):
    """A payment order (支付订单): one trade at the provider, paying bills or a top-up."""

    __tablename__ = "payment_orders"
    __table_args__ = (
        tenant_fk(["community_id"], "communities"),
        tenant_fk(["house_id"], "houses"),
        tenant_fk(["merchant_account_id"], "payment_merchant_accounts"),
        tenant_fk(["receipt_id"], "receipts"),
        UniqueConstraint("tenant_id", "merchant_account_id", "out_trade_no"),
        Index(None, "tenant_id", "receipt_id"),
        Index(None, "tenant_id", "house_id", "created_at"),
        Index(None, "tenant_id", "community_id", "created_at"),
        Index(
            "ix_payment_orders_open",
            "tenant_id",
            "expires_at",
            postgresql_where=text("status IN ('created', 'paying')"),
        ),
        CheckConstraint("amount_cents > 0", name="amount"),
        CheckConstraint("refunded_cents BETWEEN 0 AND paid_cents", name="refunded"),
    )

    community_id: Mapped[uuid.UUID]
    house_id: Mapped[uuid.UUID]
    merchant_account_id: Mapped[uuid.UUID]
    receipt_id: Mapped[uuid.UUID]
    provider: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(16))
    out_trade_no: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(String(120), default="")
    amount_cents: Mapped[int] = mapped_column(CENTS)
    status: Mapped[str] = mapped_column(String(20), default=OrderStatus.CREATED.value)
    posting: Mapped[str] = mapped_column(String(10), default=PostingState.NONE.value)
    expires_at: Mapped[dt.datetime]
    prepay: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    provider_trade_no: Mapped[str] = mapped_column(String(64), default="")
    paid_cents: Mapped[int] = mapped_column(CENTS, default=0)
    refunded_cents: Mapped[int] = mapped_column(CENTS, default=0)
    paid_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    closed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    failure: Mapped[str] = mapped_column(String(200), default="")
    created_by_kind: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[uuid.UUID]
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=text("now()"))


class PaymentOrderLine(TenantOwned, Base):
    """What an order pays: one bill, or the prepaid top-up."""

    __tablename__ = "payment_order_lines"
    __table_args__ = (
        tenant_fk(["order_id"], "payment_orders", ondelete="CASCADE"),
        tenant_fk(["bill_id"], "bills"),
        Index(None, "tenant_id", "order_id"),
        CheckConstraint("amount_cents > 0", name="amount"),
    )

    order_id: Mapped[uuid.UUID]
    bill_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    kind: Mapped[str] = mapped_column(String(16))  # "bill" | "late_fee" | "top_up"
    amount_cents: Mapped[int] = mapped_column(CENTS)


class PaymentRefund(TenantOwned, Base):
    """A refund (退款) of part or all of a paid order, approved by finance."""

    __tablename__ = "payment_refunds"
    __table_args__ = (
        tenant_fk(["order_id"], "payment_orders"),
        UniqueConstraint("tenant_id", "out_refund_no"),
        Index(None, "tenant_id", "order_id"),
        CheckConstraint("amount_cents > 0", name="amount"),
    )

    order_id: Mapped[uuid.UUID]
    out_refund_no: Mapped[str] = mapped_column(String(64))
    amount_cents: Mapped[int] = mapped_column(CENTS)
    reason: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=RefundStatus.REQUESTED.value)
    requested_by: Mapped[uuid.UUID]
    decided_by: Mapped[uuid.UUID | None] = mapped_column(default=None)
    decided_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    provider_refund_no: Mapped[str] = mapped_column(String(64), default="")
    refunded_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    failure: Mapped[str] = mapped_column(String(200), default="")


class PaymentNotification(TenantOwned, Base):
    """A verified notification, kept once per provider event id (dedup of retries)."""

    __tablename__ = "payment_notifications"
    __table_args__ = (
        tenant_fk(["merchant_account_id"], "payment_merchant_accounts"),
        UniqueConstraint("tenant_id", "merchant_account_id", "event_id"),
    )

    merchant_account_id: Mapped[uuid.UUID]
    event_id: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(10))  # "trade" | "refund"
    out_trade_no: Mapped[str] = mapped_column(String(64), default="")
    outcome: Mapped[str] = mapped_column(String(30), default="")


class ReconciliationRun(TenantOwned, Base):
    """One reconciliation (对账) of a merchant account's trade bill for one day."""

    __tablename__ = "payment_reconciliation_runs"
    __table_args__ = (
        tenant_fk(["merchant_account_id"], "payment_merchant_accounts"),
        Index(
            "ix_payment_reconciliation_runs_account_day", "tenant_id", "merchant_account_id", "day"
        ),
    )

    merchant_account_id: Mapped[uuid.UUID]
    day: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10), default=RunStatus.RUNNING.value)
    provider_count: Mapped[int] = mapped_column(BigInteger, default=0)
    provider_cents: Mapped[int] = mapped_column(CENTS, default=0)
    provider_refund_cents: Mapped[int] = mapped_column(CENTS, default=0)
    our_count: Mapped[int] = mapped_column(BigInteger, default=0)
    our_cents: Mapped[int] = mapped_column(CENTS, default=0)
    matched_count: Mapped[int] = mapped_column(BigInteger, default=0)
    exception_count: Mapped[int] = mapped_column(BigInteger, default=0)
    failure: Mapped[str] = mapped_column(String(200), default="")
    finished_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class PaymentException(TenantOwned, Base):
    """Something finance must look at (异常单): never posted silently."""

    __tablename__ = "payment_exceptions"
    __table_args__ = (
        tenant_fk(["merchant_account_id"], "payment_merchant_accounts"),
        tenant_fk(["order_id"], "payment_orders"),
        tenant_fk(["run_id"], "payment_reconciliation_runs"),
        Index(None, "tenant_id", "status", "created_at"),
        # One open exception of a kind per trade: a retried notification does not pile up.
        Index(
            "uq_payment_exceptions_open",
            "tenant_id",
            "merchant_account_id",
            "kind",
            "out_trade_no",
            "out_refund_no",
            unique=True,
            postgresql_where=text("status = 'open'"),
        ),
    )

    merchant_account_id: Mapped[uuid.UUID]
    kind: Mapped[str] = mapped_column(String(30))
    out_trade_no: Mapped[str] = mapped_column(String(64), default="")
    out_refund_no: Mapped[str] = mapped_column(String(64), default="")
    order_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    run_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    expected_cents: Mapped[int | None] = mapped_column(CENTS, default=None)
    actual_cents: Mapped[int | None] = mapped_column(CENTS, default=None)
    detail: Mapped[str] = mapped_column(String(400), default="")
    status: Mapped[str] = mapped_column(String(10), default=ExceptionStatus.OPEN.value)
    resolved_by: Mapped[uuid.UUID | None] = mapped_column(default=None)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    resolution: Mapped[str] = mapped_column(String(400), default="")
