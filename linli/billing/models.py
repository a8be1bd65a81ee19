"""Tables of the billing domain (物业收费): fee items, prices, meter readings, billing runs,
bills, receipts (收据) with their tenders and allocations, prepaid balances (预存款),
adjustments (调账 / 减免), cashier shifts (收银班次) and the double-entry journal (总账).

Every amount is an integer number of cents (``BIGINT``): sums are exact and
nothing rounds behind our back. Unit prices may carry fractions of a cent
(``NUMERIC(14,4)`` cents per m² per month); the amount of a bill is rounded
half-up to the cent once, when it is issued.

Bills are immutable once issued (a trigger refuses changes to what was
charged); only what has been settled against them moves. Corrections are
adjustments with a reason and an approver.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    Date,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from linli.db.base import Base, TenantOwned, tenant_fk

CENTS = BigInteger
UNIT_PRICE = Numeric(14, 4)
QUANTITY = Numeric(14, 2)


class FeeKind(enum.StrEnum):
    AREA = "area"  # 物业费: per m² of building area per month, price by house type
    FIXED = "fixed"  # 固定月费 (e.g. 垃圾清运费)
    METERED = "metered"  # 水电燃气: tiered price × metered usage
    PARKING = "parking"  # 车位费: per space, price by parking usage
    ONE_OFF = "one_off"  # 一次性费用 (装修押金, 门禁卡)


class FeeCycle(enum.StrEnum):
    MONTHLY = "monthly"
    YEARLY = "yearly"
    ONCE = "once"


class MeterFlag(enum.StrEnum):
    OK = "ok"
    JUMP = "jump"  # far above the usual usage: billed only once someone confirms it
    CONFIRMED = "confirmed"  # a jump someone checked and accepted
    METER_REPLACED = "meter_replaced"  # lower than last time because the meter was replaced


class RunStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    ISSUED = "issued"
    FAILED = "failed"
    REVERTED = "reverted"


class TenderMethod(enum.StrEnum):
    CASH = "cash"  # 现金
    CARD = "card"  # 刷卡 (POS reference)
    TRANSFER = "transfer"  # 银行转账
    SCAN = "scan"  # 扫码支付: confirmed later by the online-payment provider
    PREPAID = "prepaid"  # 预存款抵扣


class ReceiptStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for an online confirmation; no number yet
    PAID = "paid"
    VOIDED = "voided"


class AdjustmentKind(enum.StrEnum):
    CREDIT_NOTE = "credit_note"  # 减免 / 冲红: lowers what a bill still asks
    LATE_FEE_WAIVER = "late_fee_waiver"  # 滞纳金减免


class AdjustmentStatus(enum.StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"


class ShiftStatus(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Account(enum.StrEnum):
    """Ledger accounts (会计科目). Revenue is further split by fee item on each line."""

    RECEIVABLE = "receivable"  # 应收账款 (asset)
    CASH = "cash"  # 库存现金 (asset)
    BANK = "bank"  # 银行存款 (asset): transfers
    CARD_CLEARING = "card_clearing"  # POS 待清算 (asset)
    SCAN_CLEARING = "scan_clearing"  # 线上支付待清算 (asset)
    PREPAID = "prepaid"  # 预收账款 (liability)
    REVENUE = "revenue"  # 主营业务收入, per fee item
    LATE_FEE_INCOME = "late_fee_income"  # 滞纳金收入
    DISCOUNT = "discount"  # 销售折扣 (contra revenue)


class FeeItem(TenantOwned, Base):
    """A fee item (收费项目) of a community, e.g. 物业费 / 水费 / 车位管理费."""

    __tablename__ = "fee_items"
    __table_args__ = (
        tenant_fk(["community_id"], "communities"),
        UniqueConstraint("tenant_id", "community_id", "code"),
        CheckConstraint("due_days BETWEEN 0 AND 366", name="due_days"),
        CheckConstraint("late_fee_daily_bp BETWEEN 0 AND 1000", name="late_fee_rate"),
        CheckConstraint("late_fee_cap_pct BETWEEN 0 AND 100", name="late_fee_cap"),
        CheckConstraint("bill_month BETWEEN 1 AND 12", name="bill_month"),
    )

    community_id: Mapped[uuid.UUID]
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    cycle: Mapped[str] = mapped_column(String(16), default=FeeCycle.MONTHLY.value)
    bill_month: Mapped[int] = mapped_column(Integer, default=1)  # yearly items: billed this month
    unit: Mapped[str] = mapped_column(String(20), default="")  # m³, kWh, m² ... (display)
    due_days: Mapped[int] = mapped_column(Integer, default=30)  # due this many days after start
    late_fee_grace_days: Mapped[int] = mapped_column(Integer, default=0)
    late_fee_daily_bp: Mapped[int] = mapped_column(Integer, default=0)  # 万分之 per day
    late_fee_cap_pct: Mapped[int] = mapped_column(Integer, default=0)  # of the bill amount
    active: Mapped[bool] = mapped_column(default=True)


class FeePrice(TenantOwned, Base):
    """A price version (价格版本) of a fee item, from ``effective_from`` until the next one.

    ``variant`` picks the houses it applies to: a house type for area and fixed
    fees, a parking usage for parking fees; null means every other one. Metered
    items may carry ``tiers`` (阶梯价):
    ``[{"up_to": 200, "price": 300}, {"up_to": null, "price": 450}]``, prices in
    cents per unit.
    """

    __tablename__ = "fee_prices"
    __table_args__ = (
        tenant_fk(["fee_item_id"], "fee_items", ondelete="CASCADE"),
        UniqueConstraint(
            "tenant_id",
            "fee_item_id",
            "variant",
            "effective_from",
            postgresql_nulls_not_distinct=True,
        ),
        CheckConstraint("unit_price >= 0", name="unit_price"),
    )

    fee_item_id: Mapped[uuid.UUID]
    variant: Mapped[str | None] = mapped_column(String(20), default=None)
    effective_from: Mapped[dt.date] = mapped_column(Date)
    unit_price: Mapped[Decimal] = mapped_column(UNIT_PRICE, default=Decimal(0))  # cents
    tiers: Mapped[list[dict[str, Any]] | None] = mapped_column(
        JSONB(none_as_null=True), default=None
    )
    created_by: Mapped[uuid.UUID | None] = mapped_column(default=None)


class MeterReading(TenantOwned, Base):
    """A meter reading (抄表) of a house for a metered fee item."""

    __tablename__ = "meter_readings"
    __table_args__ = (
        tenant_fk(["community_id"], "communities"),
        tenant_fk(["house_id"], "houses"),
        tenant_fk(["fee_item_id"], "fee_items"),
        UniqueConstraint("tenant_id", "house_id", "fee_item_id", "read_on"),
        CheckConstraint("reading >= 0", name="reading"),
        CheckConstraint("usage >= 0", name="usage"),
    )

    community_id: Mapped[uuid.UUID]
    house_id: Mapped[uuid.UUID]
    fee_item_id: Mapped[uuid.UUID]
    read_on: Mapped[dt.date] = mapped_column(Date)
    reading: Mapped[Decimal] = mapped_column(QUANTITY)
    previous_reading: Mapped[Decimal | None] = mapped_column(QUANTITY, default=None)
    usage: Mapped[Decimal] = mapped_column(QUANTITY)
    flag: Mapped[str] = mapped_column(String(16), default=MeterFlag.OK.value)
    entered_by: Mapped[uuid.UUID | None] = mapped_column(default=None)


class BillingRun(TenantOwned, Base):
    """A billing run (批量生成账单) of one community and month."""

    __tablename__ = "billing_runs"
    __table_args__ = (
        tenant_fk(["community_id"], "communities"),
        # One live run per community and month: starting it again returns the same run.
        Index(
            "uq_billing_runs_live",
            "tenant_id",
            "community_id",
            "period_start",
            unique=True,
            postgresql_where=text("status <> 'reverted'"),
        ),
    )

    community_id: Mapped[uuid.UUID]
    period_start: Mapped[dt.date] = mapped_column(Date)
    period_end: Mapped[dt.date] = mapped_column(Date)  # exclusive
    fee_item_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid()), default=list)
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.QUEUED.value)
    total_chunks: Mapped[int] = mapped_column(Integer, default=0)
    done_chunks: Mapped[int] = mapped_column(Integer, default=0)
    bill_count: Mapped[int] = mapped_column(BigInteger, default=0)
    total_cents: Mapped[int] = mapped_column(CENTS, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    failure: Mapped[str | None] = mapped_column(String(200), default=None)
    created_by: Mapped[uuid.UUID]
    started_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    finished_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    reverted_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    reverted_by: Mapped[uuid.UUID | None] = mapped_column(default=None)


class Bill(TenantOwned, Base):
    """A bill (账单): what one house owes for one fee item and period.

    The natural key (fee item, subject, period start) makes a run idempotent:
    ``subject_id`` is the house, or the parking space for parking fees, or the
    bill a late fee is charged on.
    """

    __tablename__ = "bills"
    __table_args__ = (
        tenant_fk(["community_id"], "communities"),
        tenant_fk(["house_id"], "houses"),
        tenant_fk(["fee_item_id"], "fee_items"),
        UniqueConstraint("tenant_id", "fee_item_id", "subject_id", "period_start"),
        Index(None, "tenant_id", "house_id", "due_on"),
        Index(None, "tenant_id", "run_id"),
        Index(
            "ix_bills_late_fee_of",
            "tenant_id",
            "late_fee_of",
            postgresql_where=text("late_fee_of IS NOT NULL"),
        ),
        # Open bills only, covering what aging and dunning read: those are index-only scans.
        Index(
            "ix_bills_open",
            "tenant_id",
            "community_id",
            "building_id",
            "house_id",
            postgresql_include=["due_on", "amount_cents", "settled_cents"],
            postgresql_where=text("settled_cents < amount_cents"),
        ),
        CheckConstraint("amount_cents >= 0", name="amount"),
        CheckConstraint("settled_cents BETWEEN 0 AND amount_cents", name="settled"),
    )

    community_id: Mapped[uuid.UUID]
    building_id: Mapped[uuid.UUID]
    house_id: Mapped[uuid.UUID]
    fee_item_id: Mapped[uuid.UUID]
    subject_id: Mapped[uuid.UUID]
    run_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    late_fee_of: Mapped[uuid.UUID | None] = mapped_column(default=None)
    period_start: Mapped[dt.date] = mapped_column(Date)
    period_end: Mapped[dt.date] = mapped_column(Date)  # exclusive
    due_on: Mapped[dt.date] = mapped_column(Date)
    quantity: Mapped[Decimal] = mapped_column(QUANTITY, default=Decimal(0))
    amount_cents: Mapped[int] = mapped_column(CENTS)
    settled_cents: Mapped[int] = mapped_column(CENTS, default=0)  # paid + credited
    late_fee_waived: Mapped[bool] = mapped_column(default=False)


class ReceiptCounter(TenantOwned, Base):
    """The last receipt number of a community, locked in the paying transaction.

    Not a PostgreSQL sequence: a sequence hands out numbers that a rolled-back
    transaction then loses (gaps); this row is updated with the receipt, so a
    number exists exactly when its receipt does.
    """

    __tablename__ = "receipt_counters"
    __table_args__ = (
        tenant_fk(["community_id"], "communities"),
        UniqueConstraint("tenant_id", "community_id"),
    )

    community_id: Mapped[uuid.UUID]
    last_no: Mapped[int] = mapped_column(BigInteger, default=0)


class CashierShift(TenantOwned, Base):
    """A cashier's shift (收银班次): opened with a float, closed with counted cash."""

    __tablename__ = "cashier_shifts"
    __table_args__ = (
        tenant_fk(["community_id"], "communities"),
        Index(
            "uq_cashier_shifts_open",
            "tenant_id",
            "cashier_id",
            unique=True,
            postgresql_where=text("status = 'open'"),
        ),
        CheckConstraint("opening_float_cents >= 0", name="float"),
    )

    community_id: Mapped[uuid.UUID]
    cashier_id: Mapped[uuid.UUID]
    status: Mapped[str] = mapped_column(String(16), default=ShiftStatus.OPEN.value)
    opened_at: Mapped[dt.datetime] = mapped_column(server_default=text("now()"))
    opening_float_cents: Mapped[int] = mapped_column(CENTS, default=0)
    closed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    expected_cash_cents: Mapped[int | None] = mapped_column(CENTS, default=None)
    counted_cash_cents: Mapped[int | None] = mapped_column(CENTS, default=None)
    difference_cents: Mapped[int | None] = mapped_column(CENTS, default=None)
    note: Mapped[str] = mapped_column(String(400), default="")


class Receipt(TenantOwned, Base):
    """A receipt (收据): one payment at the counter (or online), possibly in several tenders."""

    __tablename__ = "receipts"
    __table_args__ = (
        tenant_fk(["community_id"], "communities"),
        tenant_fk(["house_id"], "houses"),
        tenant_fk(["shift_id"], "cashier_shifts"),
        UniqueConstraint("tenant_id", "community_id", "receipt_no"),
        Index(None, "tenant_id", "house_id"),
        Index(None, "tenant_id", "shift_id"),
        CheckConstraint("amount_cents > 0", name="amount"),
        CheckConstraint("to_prepaid_cents >= 0", name="to_prepaid"),
    )

    community_id: Mapped[uuid.UUID]
    house_id: Mapped[uuid.UUID]
    receipt_no: Mapped[int | None] = mapped_column(BigInteger, default=None)
    status: Mapped[str] = mapped_column(String(16), default=ReceiptStatus.PAID.value)
    amount_cents: Mapped[int] = mapped_column(CENTS)  # tendered, prepaid deduction included
    allocated_cents: Mapped[int] = mapped_column(CENTS, default=0)
    discount_cents: Mapped[int] = mapped_column(CENTS, default=0)
    to_prepaid_cents: Mapped[int] = mapped_column(CENTS, default=0)
    payer_name: Mapped[str] = mapped_column(String(100), default="")
    shift_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    cashier_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    paid_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    voided_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    voided_by: Mapped[uuid.UUID | None] = mapped_column(default=None)
    void_reason: Mapped[str] = mapped_column(String(400), default="")
    allocation_plan: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class ReceiptTender(TenantOwned, Base):
    """One way a receipt was paid (cash, card with POS reference, transfer, scan, prepaid)."""

    __tablename__ = "receipt_tenders"
    __table_args__ = (
        tenant_fk(["receipt_id"], "receipts", ondelete="CASCADE"),
        Index(None, "tenant_id", "receipt_id"),
        CheckConstraint("amount_cents > 0", name="amount"),
    )

    receipt_id: Mapped[uuid.UUID]
    method: Mapped[str] = mapped_column(String(16))
    amount_cents: Mapped[int] = mapped_column(CENTS)
    reference: Mapped[str] = mapped_column(String(100), default="")
    confirmed: Mapped[bool] = mapped_column(default=True)


class Allocation(TenantOwned, Base):
    """Part of a receipt settling a bill (核销), in money or as a discount."""

    __tablename__ = "allocations"
    __table_args__ = (
        tenant_fk(["receipt_id"], "receipts", ondelete="CASCADE"),
        tenant_fk(["bill_id"], "bills"),
        Index(None, "tenant_id", "receipt_id"),
        Index(None, "tenant_id", "bill_id"),
        CheckConstraint("amount_cents > 0", name="amount"),
    )

    receipt_id: Mapped[uuid.UUID]
    bill_id: Mapped[uuid.UUID]
    amount_cents: Mapped[int] = mapped_column(CENTS)
    discount: Mapped[bool] = mapped_column(default=False)


class PrepaidAccount(TenantOwned, Base):
    """A house's prepaid balance (预存款)."""

    __tablename__ = "prepaid_accounts"
    __table_args__ = (
        tenant_fk(["community_id"], "communities"),
        tenant_fk(["house_id"], "houses"),
        UniqueConstraint("tenant_id", "house_id"),
        CheckConstraint("balance_cents >= 0", name="balance"),
    )

    community_id: Mapped[uuid.UUID]
    house_id: Mapped[uuid.UUID]
    balance_cents: Mapped[int] = mapped_column(CENTS, default=0)
    auto_deduct: Mapped[bool] = mapped_column(default=False)


class Adjustment(TenantOwned, Base):
    """An adjustment (调账): a credit note or a late-fee waiver, with reason and approver."""

    __tablename__ = "adjustments"
    __table_args__ = (
        tenant_fk(["community_id"], "communities"),
        tenant_fk(["bill_id"], "bills"),
        Index(None, "tenant_id", "bill_id"),
        CheckConstraint("amount_cents >= 0", name="amount"),
    )

    community_id: Mapped[uuid.UUID]
    bill_id: Mapped[uuid.UUID]
    kind: Mapped[str] = mapped_column(String(20))
    amount_cents: Mapped[int] = mapped_column(CENTS, default=0)
    reason: Mapped[str] = mapped_column(String(400))
    status: Mapped[str] = mapped_column(String(16), default=AdjustmentStatus.REQUESTED.value)
    requested_by: Mapped[uuid.UUID]
    decided_by: Mapped[uuid.UUID | None] = mapped_column(default=None)
    decided_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class DiscountRule(TenantOwned, Base):
    """A discount rule (优惠规则): settle ``min_months`` bills of an item at once, get
    ``free_months`` of them free (预交12个月送1个月)."""

    __tablename__ = "discount_rules"
    __table_args__ = (
        tenant_fk(["fee_item_id"], "fee_items", ondelete="CASCADE"),
        CheckConstraint(
            "min_months >= 2 AND free_months >= 1 AND free_months < min_months", name="months"
        ),
    )

    fee_item_id: Mapped[uuid.UUID]
    name: Mapped[str] = mapped_column(String(100))
    min_months: Mapped[int] = mapped_column(Integer)
    free_months: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(default=True)


class JournalEntry(TenantOwned, Base):
    """A journal entry (记账凭证): its lines balance, debits = credits (checked by the DB)."""

    __tablename__ = "journal_entries"
    __table_args__ = (
        tenant_fk(["community_id"], "communities"),
        Index(None, "tenant_id", "community_id", "posted_at"),
        Index(None, "tenant_id", "source_id"),
    )

    community_id: Mapped[uuid.UUID]
    kind: Mapped[str] = mapped_column(String(30))
    source_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    posted_at: Mapped[dt.datetime] = mapped_column(server_default=text("now()"))
    memo: Mapped[str] = mapped_column(String(200), default="")


class JournalLine(TenantOwned, Base):
    """One line of a journal entry: a debit or a credit to one account."""

    __tablename__ = "journal_lines"
    __table_args__ = (
        tenant_fk(["entry_id"], "journal_entries"),
        tenant_fk(["community_id"], "communities"),
        Index(None, "tenant_id", "entry_id"),
        Index(None, "tenant_id", "community_id", "account"),
        CheckConstraint(
            "debit_cents >= 0 AND credit_cents >= 0 AND (debit_cents = 0) <> (credit_cents = 0)",
            name="one_side",
        ),
    )

    entry_id: Mapped[uuid.UUID]
    community_id: Mapped[uuid.UUID]
    account: Mapped[str] = mapped_column(String(20))
    fee_item_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    house_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    debit_cents: Mapped[int] = mapped_column(CENTS, default=0)
    credit_cents: Mapped[int] = mapped_column(CENTS, default=0)


class MeterImportStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    REJECTED = "rejected"  # all or nothing, and some rows were bad: nothing written
    FAILED = "failed"


class MeterImportJob(TenantOwned, Base):
    """A meter-reading spreadsheet being imported in the background (抄表导入任务)."""

    __tablename__ = "meter_import_jobs"
    __table_args__ = (
        tenant_fk(["community_id"], "communities"),
        Index(None, "tenant_id", "community_id", "created_at"),
    )

    community_id: Mapped[uuid.UUID]
    status: Mapped[str] = mapped_column(String(16), default=MeterImportStatus.QUEUED.value)
    mode: Mapped[str] = mapped_column(String(20))
    file_name: Mapped[str] = mapped_column(String(255), default="")
    content: Mapped[bytes] = mapped_column(LargeBinary)
    mapping: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    total_rows: Mapped[int] = mapped_column(Integer, default=0)
    processed_rows: Mapped[int] = mapped_column(Integer, default=0)
    error_rows: Mapped[int] = mapped_column(Integer, default=0)
    created_count: Mapped[int] = mapped_column(Integer, default=0)
    updated_count: Mapped[int] = mapped_column(Integer, default=0)
    unchanged_count: Mapped[int] = mapped_column(Integer, default=0)
    flagged_count: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    failure: Mapped[str | None] = mapped_column(String(400), default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[uuid.UUID]
    started_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    finished_at: Mapped[dt.datetime | None] = mapped_column(default=None)
