"""Online payment rules (线上支付): merchant accounts, payment orders, exactly-once posting,
refunds with approval, exceptions for review.

Plain functions taking a session and an actor; they flush, the caller's unit of work
commits. Calls to a provider happen between transactions and live in
:mod:`linli.payments.flows`; this module never waits on the network while it holds a lock.

Exactly once. A notification, a query result and the payer's "I paid" return may arrive
in any order, many times, concurrently; each ends in :func:`record_trade`, which takes the
order's row lock (``SELECT … FOR UPDATE``) and moves it from an open state to ``paid``
once. The second caller waits for the first to commit, then finds it paid and does
nothing. The bills are settled by billing's pending receipt
(:func:`linli.billing.service.confirm_online_payment`, itself idempotent under the
receipt's row lock), so the ledger entry and the receipt number exist once. A
notification's event id is stored under a unique key in the same transaction, so a
retried delivery is answered without work, and a delivery whose answer was lost (the app
killed after commit) is simply retried and deduplicated.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from linli.auth.actor import Actor, PrincipalKind
from linli.billing import service as billing
from linli.billing.models import ReceiptStatus, TenderMethod
from linli.core import audit, crypto, outbox
from linli.core.errors import Conflict, DomainError, FieldError, NotFound, ValidationFailed
from linli.core.ids import new_id
from linli.core.pagination import PageParams, make_page, paginate_statement
from linli.estate import service as estate
from linli.payments import events
from linli.payments.gateway import (
    Channel,
    PaymentGateway,
    Trade,
    TradeStatus,
    provider,
    providers,
)
from linli.payments.gateway import Refund as ProviderRefund
from linli.payments.gateway import RefundStatus as ProviderRefundStatus
from linli.payments.models import (
    OPEN_STATUSES,
    PAID_STATUSES,
    ExceptionKind,
    ExceptionStatus,
    MerchantAccount,
    MerchantRoute,
    OrderPurpose,
    OrderStatus,
    PaymentException,
    PaymentNotification,
    PaymentOrder,
    PaymentOrderLine,
    PaymentRefund,
    PostingState,
    RefundStatus,
)
from linli.payments.settings import get_payments_settings

MAX_ORDER_BILLS = 60
MAX_TOP_UP_CENTS = 10_000_000  # ¥100,000
NOTIFY_PATH = "/api/v1/payments/notify/{provider}/{account_id}"


def _invalid(field_name: str, message: str, code: str) -> ValidationFailed:
    return ValidationFailed(message, code=code, errors=[FieldError(field_name, message, code)])


def _tenant(actor: Actor) -> uuid.UUID:
    if actor.tenant_id is None:
        raise NotFound()
    return actor.tenant_id


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _load_providers() -> None:
    """Import the provider modules so they register themselves."""
    from linli.payments import alipay, wechatpay  # noqa: F401


# --- merchant accounts ---------------------------------------------------------------------------


def readable_accounts(actor: Actor) -> Select[MerchantAccount]:
    return select(MerchantAccount).where(
        estate.community_scope(actor, MerchantAccount.community_id)
    )


async def create_merchant_account(
    session: AsyncSession,
    actor: Actor,
    *,
    community_id: uuid.UUID,
    provider_name: str,
    config: dict[str, Any],
    name: str = "",
) -> MerchantAccount:
    """Configure a community's merchant account at a provider; replaces the active one.

    The configuration is checked by the provider's model (keys must load), stored
    encrypted, and never shown back.
    """
    _load_providers()
    tenant_id = _tenant(actor)
    try:
        entry = provider(provider_name)
    except LookupError:
        raise _invalid("provider", "Unknown payment provider.", "unknown_provider") from None
    community = await estate.get_community(session, actor, community_id=community_id)
    try:
        parsed = entry.config_model.model_validate(config)
    except ValueError as exc:
        errors = getattr(exc, "errors", None)
        fields = (
            [
                FieldError(
                    "config." + ".".join(str(p) for p in e.get("loc", ())),
                    str(e.get("msg", "invalid")),
                    "invalid_config",
                )
                for e in errors()
            ]
            if callable(errors)
            else [FieldError("config", "invalid", "invalid_config")]
        )
        raise ValidationFailed(
            "The merchant configuration is not valid.", code="invalid_config", errors=fields
        ) from None
    storage = getattr(parsed, "to_storage", None)
    stored: dict[str, Any] = storage() if callable(storage) else parsed.model_dump(mode="json")
    gateway = entry.build(stored)
    await session.execute(
        update(MerchantAccount)
        .where(
            MerchantAccount.community_id == community.id,
            MerchantAccount.provider == entry.name,
            MerchantAccount.active.is_(True),
        )
        .values(active=False, updated_at=func.now())
    )
    account = MerchantAccount(
        tenant_id=tenant_id,
        id=new_id(),
        community_id=community.id,
        provider=entry.name,
        merchant_id=gateway.merchant_id[:64],
        name=name.strip()[:100],
        config_enc=crypto.encrypt(json.dumps(stored)),
        active=True,
    )
    session.add(account)
    session.add(MerchantRoute(id=account.id, tenant_id=tenant_id, provider=entry.name))
    await session.flush()
    await audit.record(
        session,
        actor,
        "payments.merchant.configure",
        target_type="payment_merchant_account",
        target_id=account.id,
        detail={"provider": entry.name, "merchant_id": account.merchant_id},
        community_id=community.id,
    )
    return account


async def deactivate_merchant_account(
    session: AsyncSession, actor: Actor, *, account_id: uuid.UUID
) -> MerchantAccount:
    account = await get_merchant_account(session, actor, account_id=account_id)
    account.active = False
    account.updated_at = now()
    await session.flush()
    await audit.record(
        session,
        actor,
        "payments.merchant.deactivate",
        target_type="payment_merchant_account",
        target_id=account.id,
        community_id=account.community_id,
    )
    return account


async def get_merchant_account(
    session: AsyncSession, actor: Actor, *, account_id: uuid.UUID
) -> MerchantAccount:
    account = await session.scalar(readable_accounts(actor).where(MerchantAccount.id == account_id))
    if account is None:
        raise NotFound("Merchant account not found.", code="merchant_account_not_found")
    return account


async def list_merchant_accounts(
    session: AsyncSession, actor: Actor, *, community_id: uuid.UUID | None = None
) -> list[MerchantAccount]:
    statement = readable_accounts(actor).order_by(
        MerchantAccount.community_id, MerchantAccount.provider, MerchantAccount.id.desc()
    )
    if community_id is not None:
        statement = statement.where(MerchantAccount.community_id == community_id)
    return list((await session.scalars(statement)).all())


_gateways: dict[tuple[uuid.UUID, dt.datetime], PaymentGateway] = {}


def gateway_of(account: MerchantAccount) -> PaymentGateway:
    """The account's gateway, built once per configuration (keys parsed once)."""
    key = (account.id, account.updated_at)
    gateway = _gateways.get(key)
    if gateway is None:
        _load_providers()
        config = json.loads(crypto.decrypt(account.config_enc))
        gateway = provider(account.provider).build(config)
        if len(_gateways) > 1000:
            _gateways.clear()
        _gateways[key] = gateway
    return gateway


def provider_names() -> list[str]:
    _load_providers()
    return [entry.name for entry in providers()]


@dataclass(frozen=True)
class Route:
    tenant_id: uuid.UUID
    provider: str


_routes: dict[uuid.UUID, Route] = {}


async def route_of_account(account_id: uuid.UUID) -> Route | None:
    """The company a merchant account belongs to, read before any tenant is bound.

    The mapping never changes once written (an account keeps its company and provider),
    so it is kept in memory: a notification costs one transaction, not two.
    """
    known = _routes.get(account_id)
    if known is not None:
        return known
    from linli.db.engine import unit_of_work

    async with unit_of_work() as session:
        row = await session.get(MerchantRoute, account_id)
    if row is None:
        return None
    if len(_routes) > 100_000:
        _routes.clear()
    found = _routes[account_id] = Route(row.tenant_id, row.provider)
    return found


_notified_accounts: dict[uuid.UUID, MerchantAccount] = {}


def known_account(account_id: uuid.UUID, provider_name: str) -> MerchantAccount | None:
    """The account if a notification already read it in this process (see below)."""
    known = _notified_accounts.get(account_id)
    return known if known is not None and known.provider == provider_name else None


async def account_for_notification(
    session: AsyncSession, *, account_id: uuid.UUID, provider_name: str
) -> MerchantAccount | None:
    """The account a notification is addressed to, in the bound tenant (inactive included:
    a late notification for a replaced account still settles its order).

    What a notification reads of it (company, provider, merchant id, keys) never changes:
    new keys make a new account. So the row is read once per process and kept, detached,
    and only read from.
    """
    known = _notified_accounts.get(account_id)
    if known is not None and known.provider == provider_name:
        return known
    account = await session.scalar(
        select(MerchantAccount).where(
            MerchantAccount.id == account_id, MerchantAccount.provider == provider_name
        )
    )
    if account is not None:
        if len(_notified_accounts) > 10_000:
            _notified_accounts.clear()
        _notified_accounts[account_id] = account
    return account


def notify_url(account: MerchantAccount) -> str:
    base = get_payments_settings().public_url.rstrip("/")
    return base + NOTIFY_PATH.format(provider=account.provider, account_id=account.id)


# --- payment orders ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderPlan:
    """An order stored and ready to be created at the provider."""

    order: PaymentOrder
    account: MerchantAccount


def readable_orders(actor: Actor) -> Select[PaymentOrder]:
    return select(PaymentOrder).where(estate.community_scope(actor, PaymentOrder.community_id))


async def _active_account(
    session: AsyncSession, community_id: uuid.UUID, provider_name: str
) -> MerchantAccount:
    account = await session.scalar(
        select(MerchantAccount).where(
            MerchantAccount.community_id == community_id,
            MerchantAccount.provider == provider_name,
            MerchantAccount.active.is_(True),
        )
    )
    if account is None:
        raise Conflict(
            "This community takes no online payments through this provider.",
            code="no_merchant_account",
        )
    return account


def _check_channel(provider_name: str, channel: Channel, payer_id: str) -> None:
    if channel is Channel.JSAPI and provider_name != "wechatpay":
        raise _invalid("channel", "JSAPI is WeChat Pay's in-app payment.", "invalid_channel")
    if channel is Channel.WAP and provider_name != "alipay":
        raise _invalid("channel", "H5 (wap) payment is Alipay's.", "invalid_channel")
    if channel is Channel.JSAPI and not payer_id:
        raise _invalid("payer_id", "JSAPI payment needs the payer's openid.", "payer_required")


async def plan_order(
    session: AsyncSession,
    actor: Actor,
    *,
    house_id: uuid.UUID,
    provider_name: str,
    channel: Channel,
    bill_ids: Sequence[uuid.UUID] = (),
    top_up_cents: int = 0,
    payer_id: str = "",
) -> OrderPlan:
    """Store a payment order for selected bills (with their late fees as of today), or a
    prepaid top-up, and billing's pending receipt that will settle it.

    The actor is the resident (already checked to live in the house) or staff; billing's
    receipt is taken as ``system`` because no cashier shift is involved.
    """
    tenant_id = _tenant(actor)
    _check_channel(provider_name, channel, payer_id)
    if bool(bill_ids) == bool(top_up_cents):
        raise _invalid("bill_ids", "Choose bills to pay, or an amount to top up.", "nothing_to_pay")
    if len(bill_ids) > MAX_ORDER_BILLS:
        raise _invalid("bill_ids", "Too many bills for one payment.", "too_many_bills")
    if top_up_cents < 0 or top_up_cents > MAX_TOP_UP_CENTS:
        raise _invalid("top_up_cents", "The amount is out of range.", "invalid_amount")
    system = Actor.system(tenant_id)
    house_account = await billing.house_account(session, system, house_id=house_id)
    account = await _active_account(session, house_account.community_id, provider_name)
    lines: list[tuple[uuid.UUID | None, str, int]] = []
    if bill_ids:
        owed = {b.bill.id: b for b in house_account.bills}
        missing = [b for b in bill_ids if b not in owed]
        if missing:
            raise Conflict(
                "Some bills are not open for this house (paid meanwhile?).",
                code="bill_not_open",
                errors=[FieldError("bill_ids", str(b), "bill_not_open") for b in missing],
            )
        for bill_id in dict.fromkeys(bill_ids):
            owing = owed[bill_id]
            if owing.late_fee:
                lines.append((bill_id, "late_fee", owing.late_fee))
            lines.append((bill_id, "bill", owing.outstanding))
    else:
        lines.append((None, "top_up", top_up_cents))
    amount = sum(cents for _, _, cents in lines)
    if amount <= 0:
        raise _invalid("bill_ids", "Nothing to pay.", "nothing_to_pay")
    if bill_ids:
        # A second tap on "pay" (or a reload) reuses the open order for the same bills
        # instead of opening a second trade the payer could also pay.
        same = await _open_order_for(
            session, house_id, account, channel, sorted(set(bill_ids)), amount
        )
        if same is not None:
            return OrderPlan(same, account)
    out_trade_no = new_id().hex
    receipt = await billing.take_payment(
        session,
        system,
        house_id=house_id,
        tenders=[billing.Tender(TenderMethod.SCAN, amount, out_trade_no)],
        bill_ids=list(dict.fromkeys(bill_ids)),
    )
    purpose = OrderPurpose.BILLS if bill_ids else OrderPurpose.TOP_UP
    order = _new_order(
        actor,
        tenant_id=tenant_id,
        account=account,
        house_id=house_id,
        receipt_id=receipt.id,
        channel=channel,
        purpose=purpose,
        amount=amount,
        out_trade_no=out_trade_no,
        payer_id=payer_id,
    )
    session.add(order)
    await session.flush()
    session.add_all(
        PaymentOrderLine(
            tenant_id=tenant_id, order_id=order.id, bill_id=bill_id, kind=kind, amount_cents=cents
        )
        for bill_id, kind, cents in lines
    )
    await session.flush()
    await audit.record(
        session,
        actor,
        "payments.order.create",
        target_type="payment_order",
        target_id=order.id,
        detail={"amount_cents": amount, "provider": provider_name, "purpose": purpose.value},
        community_id=order.community_id,
    )
    return OrderPlan(order, account)


async def _open_order_for(
    session: AsyncSession,
    house_id: uuid.UUID,
    account: MerchantAccount,
    channel: Channel,
    bill_ids: list[uuid.UUID],
    amount: int,
) -> PaymentOrder | None:
    candidates = (
        await session.scalars(
            select(PaymentOrder)
            .where(
                PaymentOrder.house_id == house_id,
                PaymentOrder.merchant_account_id == account.id,
                PaymentOrder.channel == channel.value,
                PaymentOrder.status.in_(OPEN_STATUSES),
                PaymentOrder.amount_cents == amount,
                PaymentOrder.expires_at > now() + dt.timedelta(minutes=2),
            )
            .order_by(PaymentOrder.id.desc())
            .limit(5)
        )
    ).all()
    for candidate in candidates:
        lines = await order_lines(session, candidate.id)
        if sorted({line.bill_id for line in lines if line.bill_id}) == bill_ids:
            return candidate
    return None


def _new_order(
    actor: Actor,
    *,
    tenant_id: uuid.UUID,
    account: MerchantAccount,
    house_id: uuid.UUID,
    receipt_id: uuid.UUID,
    channel: Channel,
    purpose: OrderPurpose,
    amount: int,
    out_trade_no: str,
    payer_id: str = "",
) -> PaymentOrder:
    ttl = dt.timedelta(minutes=get_payments_settings().order_ttl_minutes)
    return PaymentOrder(
        tenant_id=tenant_id,
        id=new_id(),
        community_id=account.community_id,
        house_id=house_id,
        merchant_account_id=account.id,
        receipt_id=receipt_id,
        provider=account.provider,
        channel=channel.value,
        purpose=purpose.value,
        out_trade_no=out_trade_no,
        description="物业缴费" if purpose is not OrderPurpose.TOP_UP else "物业费预存",
        amount_cents=amount,
        status=OrderStatus.CREATED.value,
        posting=PostingState.NONE.value,
        expires_at=(now() + ttl).replace(microsecond=0),
        # The payer's openid is needed to repeat the creation after a timeout; it is an
        # opaque per-app id, kept encrypted like other personal data.
        prepay={"payer": crypto.encrypt(payer_id).hex()} if payer_id else {},
        created_by_kind=actor.kind.value,
        created_by=actor.id,
    )


def payer_of(order: PaymentOrder) -> str:
    sealed = order.prepay.get("payer")
    return crypto.decrypt(bytes.fromhex(sealed)) if sealed else ""


async def plan_counter_order(
    session: AsyncSession, actor: Actor, *, receipt_id: uuid.UUID, provider_name: str
) -> OrderPlan:
    """The Native QR of a cashier's pending scan-to-pay receipt (扫码收款); asking again
    while it is open returns the same order (one trade per receipt at a time)."""
    tenant_id = _tenant(actor)
    view = await billing.receipt_view(session, actor, receipt_id=receipt_id)
    receipt = view.receipt
    if receipt.status != ReceiptStatus.PENDING.value:
        raise Conflict(
            "This receipt is not waiting for a scan payment.", code="receipt_not_pending"
        )
    scan = [t for t in view.tenders if t.method == TenderMethod.SCAN.value]
    if len(scan) != 1:
        raise Conflict(
            "This receipt is not waiting for a scan payment.", code="receipt_not_pending"
        )
    existing = await session.scalar(
        select(PaymentOrder)
        .where(
            PaymentOrder.receipt_id == receipt.id,
            PaymentOrder.status.in_(OPEN_STATUSES + PAID_STATUSES),
        )
        .order_by(PaymentOrder.id.desc())
        .limit(1)
    )
    if existing is not None and (
        existing.status in PAID_STATUSES
        or (existing.provider == provider_name and existing.expires_at > now())
    ):
        account = await session.get(MerchantAccount, (tenant_id, existing.merchant_account_id))
        assert account is not None
        return OrderPlan(existing, account)
    account = await _active_account(session, receipt.community_id, provider_name)
    order = _new_order(
        actor,
        tenant_id=tenant_id,
        account=account,
        house_id=receipt.house_id,
        receipt_id=receipt.id,
        channel=Channel.NATIVE,
        purpose=OrderPurpose.COUNTER,
        amount=scan[0].amount_cents,
        out_trade_no=new_id().hex,
    )
    session.add(order)
    await session.flush()
    await audit.record(
        session,
        actor,
        "payments.order.create",
        target_type="payment_order",
        target_id=order.id,
        detail={
            "amount_cents": order.amount_cents,
            "provider": provider_name,
            "purpose": "counter",
        },
        community_id=order.community_id,
    )
    return OrderPlan(order, account)


async def lock_order(session: AsyncSession, order_id: uuid.UUID) -> PaymentOrder:
    order = await session.scalar(
        select(PaymentOrder)
        .where(PaymentOrder.id == order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if order is None:
        raise NotFound("Payment order not found.", code="order_not_found")
    return order


async def record_prepay(
    session: AsyncSession, *, order_id: uuid.UUID, prepay: dict[str, Any]
) -> PaymentOrder:
    """The provider created the trade: the payer can pay now (created → paying)."""
    order = await lock_order(session, order_id)
    if order.status == OrderStatus.CREATED.value:
        order.status = OrderStatus.PAYING.value
    if order.status == OrderStatus.PAYING.value:
        order.prepay = {**order.prepay, **prepay}
        order.updated_at = now()
    await session.flush()
    return order


async def record_failure(
    session: AsyncSession, *, order_id: uuid.UUID, reason: str
) -> PaymentOrder:
    """The provider refused the trade (a business error): the order failed, nothing paid."""
    order = await lock_order(session, order_id)
    if order.status in OPEN_STATUSES:
        order.status = OrderStatus.FAILED.value
        order.failure = reason[:200]
        order.updated_at = now()
        await session.flush()
    return order


async def record_closed(session: AsyncSession, *, order_id: uuid.UUID) -> PaymentOrder:
    order = await lock_order(session, order_id)
    if order.status in OPEN_STATUSES:
        order.status = OrderStatus.CLOSED.value
        order.closed_at = now()
        order.updated_at = now()
        await session.flush()
    return order


async def flag(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    account_id: uuid.UUID,
    kind: ExceptionKind,
    out_trade_no: str = "",
    out_refund_no: str = "",
    order_id: uuid.UUID | None = None,
    run_id: uuid.UUID | None = None,
    expected_cents: int | None = None,
    actual_cents: int | None = None,
    detail: str = "",
) -> None:
    """Put something on the exception list for finance (once while it is open)."""
    await session.execute(
        pg_insert(PaymentException)
        .values(
            tenant_id=tenant_id,
            id=new_id(),
            merchant_account_id=account_id,
            kind=kind.value,
            out_trade_no=out_trade_no[:64],
            out_refund_no=out_refund_no[:64],
            order_id=order_id,
            run_id=run_id,
            expected_cents=expected_cents,
            actual_cents=actual_cents,
            detail=detail[:400],
            status=ExceptionStatus.OPEN.value,
            resolution="",
        )
        .on_conflict_do_nothing()
    )


class TradeOutcome:
    PAID = "paid"
    ALREADY_PAID = "already_paid"
    NOT_PAID = "not_paid"
    CLOSED = "closed"
    UNKNOWN_ORDER = "unknown_order"
    AMOUNT_MISMATCH = "amount_mismatch"
    MERCHANT_MISMATCH = "merchant_mismatch"
    NOT_POSTABLE = "not_postable"


async def record_trade(
    session: AsyncSession, account: MerchantAccount, trade: Trade, *, source: str
) -> str:
    """What the provider says of a trade (notification, query, reconciliation): if it is
    paid, settle the order's bills exactly once. Returns the outcome (a TradeOutcome)."""
    tenant_id = account.tenant_id
    if trade.merchant_id != account.merchant_id:
        await flag(
            session,
            tenant_id=tenant_id,
            account_id=account.id,
            kind=ExceptionKind.MERCHANT_MISMATCH,
            out_trade_no=trade.out_trade_no,
            actual_cents=trade.paid_cents,
            detail=f"{source}: trade of merchant {trade.merchant_id[:40]}",
        )
        return TradeOutcome.MERCHANT_MISMATCH
    order = await session.scalar(
        select(PaymentOrder)
        .where(
            PaymentOrder.merchant_account_id == account.id,
            PaymentOrder.out_trade_no == trade.out_trade_no,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    paid = trade.status in (TradeStatus.PAID, TradeStatus.REFUNDED)
    if order is None:
        if paid:
            await flag(
                session,
                tenant_id=tenant_id,
                account_id=account.id,
                kind=ExceptionKind.UNKNOWN_ORDER,
                out_trade_no=trade.out_trade_no,
                actual_cents=trade.paid_cents,
                detail=f"{source}: paid trade {trade.provider_trade_no[:64]} is not ours",
            )
        return TradeOutcome.UNKNOWN_ORDER
    if order.status in PAID_STATUSES:
        return TradeOutcome.ALREADY_PAID
    if not paid:
        if trade.status is TradeStatus.CLOSED and order.status in OPEN_STATUSES:
            order.status = OrderStatus.CLOSED.value
            order.closed_at = now()
            order.updated_at = now()
            await session.flush()
            return TradeOutcome.CLOSED
        return TradeOutcome.NOT_PAID
    if trade.paid_cents != order.amount_cents or (
        trade.amount_cents and trade.amount_cents != order.amount_cents
    ):
        await flag(
            session,
            tenant_id=tenant_id,
            account_id=account.id,
            kind=ExceptionKind.AMOUNT_MISMATCH,
            out_trade_no=trade.out_trade_no,
            order_id=order.id,
            expected_cents=order.amount_cents,
            actual_cents=trade.paid_cents,
            detail=f"{source}: paid {trade.paid_cents} for an order of {order.amount_cents}",
        )
        return TradeOutcome.AMOUNT_MISMATCH
    order.status = OrderStatus.PAID.value
    order.paid_cents = trade.paid_cents
    order.paid_at = trade.paid_at or now()
    order.provider_trade_no = trade.provider_trade_no[:64]
    order.updated_at = now()
    system = Actor.system(tenant_id)
    outcome = TradeOutcome.PAID
    try:
        async with session.begin_nested():
            await billing.confirm_online_payment(
                session,
                system,
                receipt_id=order.receipt_id,
                provider_reference=f"{order.provider}:{trade.provider_trade_no}",
                amount_cents=order.amount_cents,
            )
        order.posting = PostingState.POSTED.value
    except DomainError as exc:
        # Paid, but the plan no longer fits (a bill was settled at the counter meanwhile):
        # the money is recorded on the order and finance decides; nothing is posted blindly.
        order.posting = PostingState.REVIEW.value
        outcome = TradeOutcome.NOT_POSTABLE
        await flag(
            session,
            tenant_id=tenant_id,
            account_id=account.id,
            kind=ExceptionKind.NOT_POSTABLE,
            out_trade_no=order.out_trade_no,
            order_id=order.id,
            expected_cents=order.amount_cents,
            actual_cents=trade.paid_cents,
            detail=f"{source}: {getattr(exc, 'code', 'conflict')}",
        )
    await session.flush()
    # No audit row of our own: billing audits the receipt it settles (receipt.pay), and
    # this change is the system's, recorded by the event below and the order itself.
    await outbox.emit(
        session,
        system,
        events.ORDER_PAID,
        {
            "order_id": str(order.id),
            "house_id": str(order.house_id),
            "community_id": str(order.community_id),
            "amount_cents": order.paid_cents,
            "receipt_id": str(order.receipt_id),
        },
    )
    return outcome


async def seen_notification(
    session: AsyncSession,
    account: MerchantAccount,
    *,
    event_id: str,
    kind: str,
    out_trade_no: str,
) -> uuid.UUID | None:
    """Store a notification's event id; None when it was stored before (a retry).

    A concurrent duplicate waits on the unique key until the first commits, then is None.
    """
    return await session.scalar(
        pg_insert(PaymentNotification)
        .values(
            tenant_id=account.tenant_id,
            id=new_id(),
            merchant_account_id=account.id,
            event_id=event_id[:80],
            kind=kind,
            out_trade_no=out_trade_no[:64],
            outcome="",
        )
        .on_conflict_do_nothing()
        .returning(PaymentNotification.id)
    )


async def set_notification_outcome(
    session: AsyncSession, notification_id: uuid.UUID, outcome: str
) -> None:
    await session.execute(
        update(PaymentNotification)
        .where(PaymentNotification.id == notification_id)
        .values(outcome=outcome[:30])
    )


async def get_order(session: AsyncSession, actor: Actor, *, order_id: uuid.UUID) -> PaymentOrder:
    order = await session.scalar(readable_orders(actor).where(PaymentOrder.id == order_id))
    if order is None:
        raise NotFound("Payment order not found.", code="order_not_found")
    return order


async def order_lines(session: AsyncSession, order_id: uuid.UUID) -> list[PaymentOrderLine]:
    return list(
        (
            await session.scalars(
                select(PaymentOrderLine)
                .where(PaymentOrderLine.order_id == order_id)
                .order_by(PaymentOrderLine.id)
            )
        ).all()
    )


async def list_orders(
    session: AsyncSession,
    actor: Actor,
    *,
    page: PageParams,
    community_id: uuid.UUID | None = None,
    status: str | None = None,
    house_id: uuid.UUID | None = None,
) -> tuple[list[PaymentOrder], str | None]:
    statement = readable_orders(actor)
    if community_id is not None:
        statement = statement.where(PaymentOrder.community_id == community_id)
    if status:
        statement = statement.where(PaymentOrder.status == status)
    if house_id is not None:
        statement = statement.where(PaymentOrder.house_id == house_id)
    rows = list((await session.scalars(paginate_statement(statement, PaymentOrder.id, page))).all())
    return make_page(rows, page)


async def open_orders_due(session: AsyncSession, *, before: dt.datetime) -> list[uuid.UUID]:
    """Open orders past their expiry (the bound tenant's), oldest first."""
    return list(
        (
            await session.scalars(
                select(PaymentOrder.id)
                .where(PaymentOrder.status.in_(OPEN_STATUSES), PaymentOrder.expires_at < before)
                .order_by(PaymentOrder.expires_at)
                .limit(500)
            )
        ).all()
    )


# --- refunds -------------------------------------------------------------------------------------


def readable_refunds(actor: Actor) -> Select[PaymentRefund, PaymentOrder]:
    return (
        select(PaymentRefund, PaymentOrder)
        .join(
            PaymentOrder,
            (PaymentOrder.tenant_id == PaymentRefund.tenant_id)
            & (PaymentOrder.id == PaymentRefund.order_id),
        )
        .where(estate.community_scope(actor, PaymentOrder.community_id))
    )


async def _committed_refunds(session: AsyncSession, order_id: uuid.UUID) -> int:
    """Cents asked back and not refused: requested, processing or succeeded."""
    total = await session.scalar(
        select(func.coalesce(func.sum(PaymentRefund.amount_cents), 0)).where(
            PaymentRefund.order_id == order_id,
            PaymentRefund.status.in_(
                (
                    RefundStatus.REQUESTED.value,
                    RefundStatus.PROCESSING.value,
                    RefundStatus.SUCCEEDED.value,
                )
            ),
        )
    )
    return int(total or 0)


async def request_refund(
    session: AsyncSession,
    actor: Actor,
    *,
    order_id: uuid.UUID,
    amount_cents: int,
    reason: str,
) -> PaymentRefund:
    """Ask for a refund of part or all of a paid order; finance approves it before any
    money moves. Never more than what was paid, counting refunds already asked for."""
    tenant_id = _tenant(actor)
    if amount_cents <= 0:
        raise _invalid("amount_cents", "The amount must be more than zero.", "invalid_amount")
    if len(reason.strip()) < 2:
        raise _invalid("reason", "Give the reason for the refund.", "reason_required")
    found = await get_order(session, actor, order_id=order_id)
    order = await lock_order(session, found.id)
    if order.status not in PAID_STATUSES or order.posting == PostingState.NONE.value:
        raise Conflict("Only a paid order can be refunded.", code="order_not_refundable")
    committed = await _committed_refunds(session, order.id)
    if committed + amount_cents > order.paid_cents:
        raise Conflict(
            "A refund cannot exceed what was paid ({left} cents left).",
            code="refund_exceeds_paid",
            left=order.paid_cents - committed,
            errors=[FieldError("amount_cents", "too large", "refund_exceeds_paid")],
        )
    refund = PaymentRefund(
        tenant_id=tenant_id,
        id=new_id(),
        order_id=order.id,
        out_refund_no="R" + new_id().hex,
        amount_cents=amount_cents,
        reason=reason.strip()[:200],
        status=RefundStatus.REQUESTED.value,
        requested_by=actor.id,
    )
    session.add(refund)
    await session.flush()
    await audit.record(
        session,
        actor,
        "payments.refund.request",
        target_type="payment_refund",
        target_id=refund.id,
        detail={"amount_cents": amount_cents, "order_id": str(order.id)},
        community_id=order.community_id,
    )
    return refund


async def get_refund(
    session: AsyncSession, actor: Actor, *, refund_id: uuid.UUID
) -> tuple[PaymentRefund, PaymentOrder]:
    row = (
        await session.execute(readable_refunds(actor).where(PaymentRefund.id == refund_id))
    ).first()
    if row is None:
        raise NotFound("Refund not found.", code="refund_not_found")
    return row[0], row[1]


async def list_refunds(
    session: AsyncSession,
    actor: Actor,
    *,
    status: str | None = None,
    order_id: uuid.UUID | None = None,
    limit: int = 200,
) -> list[tuple[PaymentRefund, PaymentOrder]]:
    statement = readable_refunds(actor).order_by(PaymentRefund.id.desc()).limit(limit)
    if status:
        statement = statement.where(PaymentRefund.status == status)
    if order_id is not None:
        statement = statement.where(PaymentRefund.order_id == order_id)
    return [(r[0], r[1]) for r in (await session.execute(statement)).all()]


async def _lock_refund(session: AsyncSession, refund_id: uuid.UUID) -> PaymentRefund:
    refund = await session.scalar(
        select(PaymentRefund)
        .where(PaymentRefund.id == refund_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if refund is None:
        raise NotFound("Refund not found.", code="refund_not_found")
    return refund


async def decide_refund(
    session: AsyncSession, actor: Actor, *, refund_id: uuid.UUID, approve: bool
) -> PaymentRefund:
    """Finance approves (the refund goes to the provider next) or rejects a refund."""
    found, _ = await get_refund(session, actor, refund_id=refund_id)
    refund = await _lock_refund(session, found.id)
    if refund.status != RefundStatus.REQUESTED.value:
        raise Conflict("This refund was decided already.", code="refund_decided")
    refund.status = (RefundStatus.PROCESSING if approve else RefundStatus.REJECTED).value
    refund.decided_by = actor.id
    refund.decided_at = now()
    await session.flush()
    await audit.record(
        session,
        actor,
        "payments.refund.approve" if approve else "payments.refund.reject",
        target_type="payment_refund",
        target_id=refund.id,
        detail={"amount_cents": refund.amount_cents},
    )
    return refund


async def record_refund(
    session: AsyncSession, account: MerchantAccount, result: ProviderRefund, *, source: str
) -> str:
    """The provider's word on a refund: on success, reverse the settlement through billing
    once (order row lock, then refund row lock; a repeat finds it succeeded)."""
    order = await session.scalar(
        select(PaymentOrder)
        .where(
            PaymentOrder.merchant_account_id == account.id,
            PaymentOrder.out_trade_no == result.out_trade_no,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    refund = (
        await session.scalar(
            select(PaymentRefund)
            .where(PaymentRefund.out_refund_no == result.out_refund_no)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if order is not None
        else None
    )
    if order is None or refund is None or refund.order_id != order.id:
        await flag(
            session,
            tenant_id=account.tenant_id,
            account_id=account.id,
            kind=ExceptionKind.REFUND_MISMATCH,
            out_trade_no=result.out_trade_no,
            out_refund_no=result.out_refund_no,
            actual_cents=result.amount_cents,
            detail=f"{source}: a refund we did not ask for",
        )
        return "unknown_refund"
    if refund.status != RefundStatus.PROCESSING.value:
        return "already_" + refund.status
    if result.status is ProviderRefundStatus.PROCESSING:
        return "processing"
    if result.status is not ProviderRefundStatus.SUCCEEDED:
        refund.status = RefundStatus.FAILED.value
        refund.failure = f"provider: {result.status.value}"
        await session.flush()
        return "failed"
    if result.amount_cents != refund.amount_cents:
        await flag(
            session,
            tenant_id=account.tenant_id,
            account_id=account.id,
            kind=ExceptionKind.REFUND_MISMATCH,
            out_trade_no=result.out_trade_no,
            out_refund_no=result.out_refund_no,
            order_id=order.id,
            expected_cents=refund.amount_cents,
            actual_cents=result.amount_cents,
            detail=f"{source}: refunded another amount",
        )
        return "amount_mismatch"
    system = Actor.system(account.tenant_id)
    if order.posting == PostingState.POSTED.value:
        await billing.refund_online_payment(
            session,
            system,
            receipt_id=order.receipt_id,
            amount_cents=refund.amount_cents,
            already_refunded_cents=order.refunded_cents,
            refund_id=refund.id,
            reason=refund.reason,
        )
    # An order under review was never posted (e.g. paid twice for the same bills): its
    # money goes back without touching bills or ledger.
    order.refunded_cents += refund.amount_cents
    order.status = (
        OrderStatus.REFUNDED
        if order.refunded_cents >= order.paid_cents
        else OrderStatus.PARTIALLY_REFUNDED
    ).value
    order.updated_at = now()
    refund.status = RefundStatus.SUCCEEDED.value
    refund.provider_refund_no = result.provider_refund_no[:64]
    refund.refunded_at = result.refunded_at or now()
    await session.flush()
    await audit.record(
        session,
        system,
        "payments.refund.succeeded",
        target_type="payment_refund",
        target_id=refund.id,
        detail={"amount_cents": refund.amount_cents, "source": source},
        community_id=order.community_id,
    )
    await outbox.emit(
        session,
        system,
        events.REFUND_SUCCEEDED,
        {
            "refund_id": str(refund.id),
            "order_id": str(order.id),
            "house_id": str(order.house_id),
            "amount_cents": refund.amount_cents,
        },
    )
    return "succeeded"


async def record_refund_failure(
    session: AsyncSession, *, refund_id: uuid.UUID, reason: str
) -> PaymentRefund:
    refund = await _lock_refund(session, refund_id)
    if refund.status == RefundStatus.PROCESSING.value:
        refund.status = RefundStatus.FAILED.value
        refund.failure = reason[:200]
        await session.flush()
    return refund


async def processing_refunds(session: AsyncSession) -> list[uuid.UUID]:
    return list(
        (
            await session.scalars(
                select(PaymentRefund.id)
                .where(PaymentRefund.status == RefundStatus.PROCESSING.value)
                .limit(500)
            )
        ).all()
    )


# --- exceptions ----------------------------------------------------------------------------------


def readable_exceptions(actor: Actor) -> Select[PaymentException]:
    accounts = select(MerchantAccount.id).where(
        estate.community_scope(actor, MerchantAccount.community_id)
    )
    return select(PaymentException).where(PaymentException.merchant_account_id.in_(accounts))


async def list_exceptions(
    session: AsyncSession,
    actor: Actor,
    *,
    status: str | None = ExceptionStatus.OPEN.value,
    run_id: uuid.UUID | None = None,
    limit: int = 500,
) -> list[PaymentException]:
    statement = readable_exceptions(actor).order_by(PaymentException.id.desc()).limit(limit)
    if status:
        statement = statement.where(PaymentException.status == status)
    if run_id is not None:
        statement = statement.where(PaymentException.run_id == run_id)
    return list((await session.scalars(statement)).all())


async def resolve_exception(
    session: AsyncSession, actor: Actor, *, exception_id: uuid.UUID, resolution: str
) -> PaymentException:
    if len(resolution.strip()) < 2:
        raise _invalid("resolution", "Say how it was resolved.", "resolution_required")
    row = await session.scalar(
        readable_exceptions(actor).where(PaymentException.id == exception_id).with_for_update()
    )
    if row is None:
        raise NotFound("Exception not found.", code="exception_not_found")
    if row.status != ExceptionStatus.OPEN.value:
        raise Conflict("This exception is resolved already.", code="exception_resolved")
    row.status = ExceptionStatus.RESOLVED.value
    row.resolved_by = actor.id
    row.resolved_at = now()
    row.resolution = resolution.strip()[:400]
    await session.flush()
    await audit.record(
        session,
        actor,
        "payments.exception.resolve",
        target_type="payment_exception",
        target_id=row.id,
        detail={"kind": row.kind},
    )
    return row


def is_staff(actor: Actor) -> bool:
    return actor.kind is PrincipalKind.STAFF


# --- the resident's side -------------------------------------------------------------------------


async def resident_houses(
    session: AsyncSession, actor: Actor, *, company_id: uuid.UUID
) -> set[uuid.UUID]:
    """The houses of ``company_id`` the signed-in resident lives in or owns."""
    from linli.residents import service as residents

    homes, _ = await residents.my_homes(session, actor)
    return {h.house_id for h in homes if h.company_id == company_id}


async def check_resident_house(
    session: AsyncSession, actor: Actor, *, company_id: uuid.UUID, house_id: uuid.UUID
) -> None:
    if house_id not in await resident_houses(session, actor, company_id=company_id):
        raise NotFound("House not found.", code="house_not_found")


def acting_in(actor: Actor, company_id: uuid.UUID) -> Actor:
    """The resident acting within one company (audit rows are that company's)."""
    import dataclasses

    return dataclasses.replace(actor, tenant_id=company_id)


async def my_order(
    session: AsyncSession,
    actor: Actor,
    *,
    company_id: uuid.UUID,
    order_id: uuid.UUID | None = None,
    out_trade_no: str = "",
) -> tuple[PaymentOrder, list[PaymentOrderLine]]:
    """One of the resident's own orders (by id, or by the number the provider's return
    names); anyone else's is not found."""
    from linli.db.engine import set_tenant

    mine = await resident_houses(session, actor, company_id=company_id)
    try:
        await set_tenant(session, company_id)
        statement = select(PaymentOrder).where(
            PaymentOrder.house_id.in_(mine or [uuid.UUID(int=0)])
        )
        if order_id is not None:
            statement = statement.where(PaymentOrder.id == order_id)
        elif out_trade_no:
            statement = statement.where(PaymentOrder.out_trade_no == out_trade_no[:32])
        else:
            raise NotFound("Payment order not found.", code="order_not_found")
        order = await session.scalar(statement.limit(1))
        if order is None:
            raise NotFound("Payment order not found.", code="order_not_found")
        return order, await order_lines(session, order.id)
    finally:
        await set_tenant(session, None)


def sandbox_pay_url(order: PaymentOrder, *, return_url: str = "") -> str:
    """Demo only: the sandbox page where the payer pays this order (no WeChat app needed)."""
    from linli.payments.gateway import Prepay

    settings = get_payments_settings()
    prepay = Prepay(
        provider_reference=str(order.prepay.get("provider_reference", "")),
        qr_content=str(order.prepay.get("qr_content", "")),
        redirect_url=str(order.prepay.get("redirect_url", "")),
    )
    try:
        if order.provider == "wechatpay" and settings.sandbox_wechatpay_url:
            from linli.payments.sandbox import wechatpay as wechat_sandbox

            return wechat_sandbox.sandbox_pay_url(
                settings.sandbox_wechatpay_url, prepay, return_url=return_url
            )
        if order.provider == "alipay" and settings.sandbox_alipay_url:
            from linli.payments.sandbox import alipay as alipay_sandbox

            return alipay_sandbox.sandbox_pay_url(prepay, return_url=return_url)
    except ValueError:
        return ""
    return ""


async def community_providers(session: AsyncSession, community_id: uuid.UUID) -> list[str]:
    """The providers a community takes payments through (WeChat Pay first), bound tenant."""
    names = (
        await session.scalars(
            select(MerchantAccount.provider).where(
                MerchantAccount.community_id == community_id, MerchantAccount.active.is_(True)
            )
        )
    ).all()
    return sorted(set(names), key=lambda name: (name != "wechatpay", name))
