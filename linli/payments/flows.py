"""Payment work that spans transactions and the provider's API.

Never wait on the network inside a transaction holding a lock: each step stores what it
knows and commits, then asks the provider, then stores the answer in a new transaction.
Whatever dies in between is picked up again: an order left ``created`` (the provider's
answer never came) is queried by :func:`refresh_order` (the payer's return, the expiry
job), a refund left ``processing`` by :func:`refresh_refund`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select

from linli.auth.actor import Actor
from linli.core.errors import Conflict, NotFound, ServiceUnavailable
from linli.core.logging import get_logger
from linli.db.engine import unit_of_work
from linli.payments import service
from linli.payments.gateway import (
    Channel,
    GatewayError,
    GatewayErrorCode,
    NotificationAnswer,
    PaymentGateway,
    Prepay,
    TradeStatus,
)
from linli.payments.models import (
    OPEN_STATUSES,
    MerchantAccount,
    OrderStatus,
    PaymentOrder,
    PaymentRefund,
    RefundStatus,
)

log = get_logger(__name__)


@dataclass(frozen=True)
class Placed:
    """An order as the payer's page needs it."""

    order: PaymentOrder
    account: MerchantAccount


def _prepay_json(prepay: Prepay) -> dict[str, object]:
    return {
        "provider_reference": prepay.provider_reference,
        "qr_content": prepay.qr_content,
        "redirect_url": prepay.redirect_url,
        "jsapi": dict(prepay.jsapi_params),
    }


async def _load(tenant_id: uuid.UUID, order_id: uuid.UUID) -> Placed:
    async with unit_of_work(tenant_id) as session:
        order = await session.get(PaymentOrder, (tenant_id, order_id))
        if order is None:
            raise NotFound("Payment order not found.", code="order_not_found")
        account = await session.get(MerchantAccount, (tenant_id, order.merchant_account_id))
        assert account is not None
        return Placed(order, account)


async def place_order(
    actor: Actor,
    *,
    tenant_id: uuid.UUID,
    house_id: uuid.UUID,
    provider_name: str,
    channel: Channel,
    bill_ids: Sequence[uuid.UUID] = (),
    top_up_cents: int = 0,
    payer_id: str = "",
    return_url: str = "",
) -> Placed:
    """Store an order (committed), then create its trade at the provider."""
    async with unit_of_work(tenant_id) as session:
        plan = await service.plan_order(
            session,
            actor,
            house_id=house_id,
            provider_name=provider_name,
            channel=channel,
            bill_ids=bill_ids,
            top_up_cents=top_up_cents,
            payer_id=payer_id,
        )
        order_id = plan.order.id
    return await create_at_provider(tenant_id, order_id, return_url=return_url)


async def place_counter_order(actor: Actor, *, receipt_id: uuid.UUID, provider_name: str) -> Placed:
    """The Native QR for a cashier's pending scan-to-pay receipt."""
    tenant_id = actor.tenant_id
    if tenant_id is None:
        raise NotFound()
    async with unit_of_work(tenant_id) as session:
        plan = await service.plan_counter_order(
            session, actor, receipt_id=receipt_id, provider_name=provider_name
        )
        order_id = plan.order.id
    return await create_at_provider(tenant_id, order_id)


async def create_at_provider(
    tenant_id: uuid.UUID, order_id: uuid.UUID, *, return_url: str = ""
) -> Placed:
    """Create the order's trade; on a timeout ask the provider before anything else.

    The trade is created with the same ``out_trade_no`` and the same parameters every
    time, so the provider answers a repeat with the same trade: a timeout never makes a
    second trade, and a trade paid meanwhile is found by the query and settled.
    """
    placed = await _load(tenant_id, order_id)
    order, account = placed.order, placed.account
    if order.status != OrderStatus.CREATED.value:
        return placed
    gateway = service.gateway_of(account)
    try:
        prepay = await _create(gateway, order, account, return_url)
    except GatewayError as exc:
        if exc.code is GatewayErrorCode.REJECTED:
            async with unit_of_work(tenant_id) as session:
                await service.record_failure(
                    session, order_id=order.id, reason=f"{exc.provider_code}: {exc}"
                )
            raise Conflict(
                "The payment provider refused the order.", code="provider_rejected"
            ) from None
        if exc.code is not GatewayErrorCode.UNAVAILABLE:
            raise ServiceUnavailable(
                "The payment provider's answer could not be trusted.", code="provider_error"
            ) from None
        log.warning("payments.create_unavailable", order_id=str(order.id))
        retried = await _create_after_timeout(gateway, order, account, return_url)
        if retried is None:
            return await _load(tenant_id, order_id)
        prepay = retried
    async with unit_of_work(tenant_id) as session:
        await service.record_prepay(session, order_id=order.id, prepay=_prepay_json(prepay))
    return await _load(tenant_id, order_id)


async def _create(
    gateway: PaymentGateway, order: PaymentOrder, account: MerchantAccount, return_url: str
) -> Prepay:
    return await gateway.create(
        channel=Channel(order.channel),
        out_trade_no=order.out_trade_no,
        description=order.description,
        amount_cents=order.amount_cents,
        notify_url=service.notify_url(account),
        expires_at=order.expires_at,
        payer_id=service.payer_of(order),
        return_url=return_url,
    )


async def _create_after_timeout(
    gateway: PaymentGateway, order: PaymentOrder, account: MerchantAccount, return_url: str
) -> Prepay | None:
    try:
        trade = await gateway.query(order.out_trade_no)
    except GatewayError:
        raise ServiceUnavailable(
            "The payment provider does not answer; try again shortly.",
            code="provider_unavailable",
        ) from None
    if trade.status in (TradeStatus.PAID, TradeStatus.REFUNDED, TradeStatus.CLOSED):
        async with unit_of_work(account.tenant_id) as session:
            await service.record_trade(session, account, trade, source="query")
        return None
    if trade.status is TradeStatus.FAILED:
        async with unit_of_work(account.tenant_id) as session:
            await service.record_failure(session, order_id=order.id, reason="provider: failed")
        return None
    try:
        return await _create(gateway, order, account, return_url)
    except GatewayError:
        raise ServiceUnavailable(
            "The payment provider does not answer; try again shortly.",
            code="provider_unavailable",
        ) from None


async def refresh_order(tenant_id: uuid.UUID, order_id: uuid.UUID) -> PaymentOrder:
    """Ask the provider about an open order (the payer's "I paid" return, a page poll, the
    expiry job) and record what it says, exactly once like a notification."""
    placed = await _load(tenant_id, order_id)
    if placed.order.status not in OPEN_STATUSES:
        return placed.order
    gateway = service.gateway_of(placed.account)
    try:
        trade = await gateway.query(placed.order.out_trade_no)
    except GatewayError as exc:
        log.warning("payments.query_failed", order_id=str(order_id), code=exc.code.value)
        return placed.order
    async with unit_of_work(tenant_id) as session:
        await service.record_trade(session, placed.account, trade, source="query")
    return (await _load(tenant_id, order_id)).order


async def expire_order(tenant_id: uuid.UUID, order_id: uuid.UUID) -> str:
    """Close an order past its expiry, unless the provider says it was paid."""
    placed = await _load(tenant_id, order_id)
    if placed.order.status not in OPEN_STATUSES:
        return placed.order.status
    gateway = service.gateway_of(placed.account)
    trade = await gateway.query(placed.order.out_trade_no)
    if trade.status in (TradeStatus.PAID, TradeStatus.REFUNDED):
        async with unit_of_work(tenant_id) as session:
            return await service.record_trade(session, placed.account, trade, source="expiry")
    # Close at the provider first: a payer scanning now is refused there, not paid unseen.
    await gateway.close(placed.order.out_trade_no)
    trade = await gateway.query(placed.order.out_trade_no)
    async with unit_of_work(tenant_id) as session:
        if trade.status in (TradeStatus.PAID, TradeStatus.REFUNDED):
            return await service.record_trade(session, placed.account, trade, source="expiry")
        await service.record_closed(session, order_id=order_id)
    return OrderStatus.CLOSED.value


# --- notifications -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NotifyResult:
    answer: NotificationAnswer | None  # None: not addressed to an account we know
    outcome: str


async def handle_notification(
    *,
    provider_name: str,
    account_id: uuid.UUID,
    headers: Mapping[str, str],
    body: bytes,
) -> NotifyResult:
    """Verify, deduplicate and record one provider notification, in one transaction.

    The answer is sent after commit: a process killed before it answers has either
    committed (the retry is found as seen and answered) or not (the retry does the work).
    Anything not genuine is refused without a write.
    """
    route = await service.route_of_account(account_id)
    if route is None or route.provider != provider_name:
        return NotifyResult(None, "unknown_account")
    async with unit_of_work(route.tenant_id) as session:
        account = await service.account_for_notification(
            session, account_id=account_id, provider_name=provider_name
        )
        if account is None:
            return NotifyResult(None, "unknown_account")
        gateway = service.gateway_of(account)
        try:
            notification = gateway.parse_notification(headers, body)
        except GatewayError as exc:
            log.warning(
                "payments.notification_refused",
                provider=provider_name,
                account_id=str(account_id),
                code=exc.code.value,
            )
            return NotifyResult(gateway.answer(accepted=False), exc.code.value)
        kind = "trade" if notification.trade is not None else "refund"
        subject = notification.trade or notification.refund
        out_trade_no = subject.out_trade_no if subject is not None else ""
        seen = await service.seen_notification(
            session,
            account,
            event_id=notification.event_id,
            kind=kind,
            out_trade_no=out_trade_no,
        )
        if seen is None:
            return NotifyResult(gateway.answer(accepted=True), "duplicate")
        if notification.trade is not None:
            outcome = await service.record_trade(
                session, account, notification.trade, source="notification"
            )
        elif notification.refund is not None:
            outcome = await service.record_refund(
                session, account, notification.refund, source="notification"
            )
        else:
            outcome = "empty"
        if outcome != service.TradeOutcome.PAID:  # the common case needs no second write
            await service.set_notification_outcome(session, seen, outcome)
    return NotifyResult(gateway.answer(accepted=True), outcome)


async def verify_notification(
    *,
    provider_name: str,
    account_id: uuid.UUID,
    headers: Mapping[str, str],
    body: bytes,
) -> NotifyResult:
    """Only what every notification costs before any work: find the account, verify the
    signature, decrypt. The payment-notify benchmark's limit; nothing is written."""
    route = await service.route_of_account(account_id)
    if route is None or route.provider != provider_name:
        return NotifyResult(None, "unknown_account")
    account = service.known_account(account_id, provider_name)
    if account is None:
        async with unit_of_work(route.tenant_id) as session:
            account = await service.account_for_notification(
                session, account_id=account_id, provider_name=provider_name
            )
    if account is None:
        return NotifyResult(None, "unknown_account")
    gateway = service.gateway_of(account)
    try:
        gateway.parse_notification(headers, body)
    except GatewayError as exc:
        return NotifyResult(gateway.answer(accepted=False), exc.code.value)
    return NotifyResult(gateway.answer(accepted=True), "verified")


# --- refunds -------------------------------------------------------------------------------------


async def approve_refund(actor: Actor, *, refund_id: uuid.UUID) -> PaymentRefund:
    """Finance approves: committed as processing, then sent to the provider."""
    tenant_id = actor.tenant_id
    if tenant_id is None:
        raise NotFound()
    async with unit_of_work(tenant_id) as session:
        refund = await service.decide_refund(session, actor, refund_id=refund_id, approve=True)
        refund_id = refund.id
    return await send_refund(tenant_id, refund_id)


async def _refund_context(
    tenant_id: uuid.UUID, refund_id: uuid.UUID
) -> tuple[PaymentRefund, PaymentOrder, MerchantAccount]:
    async with unit_of_work(tenant_id) as session:
        refund = await session.get(PaymentRefund, (tenant_id, refund_id))
        if refund is None:
            raise NotFound("Refund not found.", code="refund_not_found")
        order = await session.get(PaymentOrder, (tenant_id, refund.order_id))
        assert order is not None
        account = await session.get(MerchantAccount, (tenant_id, order.merchant_account_id))
        assert account is not None
        return refund, order, account


async def send_refund(tenant_id: uuid.UUID, refund_id: uuid.UUID) -> PaymentRefund:
    """Ask the provider to refund (idempotent there per out_refund_no) and record the answer."""
    refund, order, account = await _refund_context(tenant_id, refund_id)
    if refund.status != RefundStatus.PROCESSING.value:
        return refund
    gateway = service.gateway_of(account)
    try:
        result = await gateway.refund(
            out_trade_no=order.out_trade_no,
            out_refund_no=refund.out_refund_no,
            amount_cents=refund.amount_cents,
            total_cents=order.amount_cents,
            reason=refund.reason,
            notify_url=service.notify_url(account),
        )
    except GatewayError as exc:
        if exc.code is GatewayErrorCode.REJECTED:
            async with unit_of_work(tenant_id) as session:
                await service.record_refund_failure(
                    session, refund_id=refund.id, reason=f"{exc.provider_code}: {exc}"
                )
        else:
            log.warning("payments.refund_unavailable", refund_id=str(refund.id))
        return (await _refund_context(tenant_id, refund_id))[0]
    async with unit_of_work(tenant_id) as session:
        await service.record_refund(session, account, result, source="refund")
    return (await _refund_context(tenant_id, refund_id))[0]


async def refresh_refund(tenant_id: uuid.UUID, refund_id: uuid.UUID) -> PaymentRefund:
    refund, order, account = await _refund_context(tenant_id, refund_id)
    if refund.status != RefundStatus.PROCESSING.value:
        return refund
    gateway = service.gateway_of(account)
    try:
        result = await gateway.query_refund(
            out_trade_no=order.out_trade_no, out_refund_no=refund.out_refund_no
        )
    except GatewayError as exc:
        if exc.code is GatewayErrorCode.REJECTED:
            # The provider never received it (lost request): send it again, same number.
            return await send_refund(tenant_id, refund_id)
        return refund
    async with unit_of_work(tenant_id) as session:
        await service.record_refund(session, account, result, source="query")
    return (await _refund_context(tenant_id, refund_id))[0]


# --- the periodic sweep --------------------------------------------------------------------------


async def sweep_tenant(tenant_id: uuid.UUID, *, now: dt.datetime | None = None) -> int:
    """Close (or settle) expired orders and follow up processing refunds of one company."""
    moment = now or service.now()
    async with unit_of_work(tenant_id) as session:
        due = await service.open_orders_due(session, before=moment)
        refunds = await service.processing_refunds(session)
    done = 0
    for order_id in due:
        try:
            await expire_order(tenant_id, order_id)
            done += 1
        except GatewayError as exc:
            log.warning("payments.expire_failed", order_id=str(order_id), code=exc.code.value)
    for refund_id in refunds:
        await refresh_refund(tenant_id, refund_id)
    return done


async def tenants_with_accounts() -> list[uuid.UUID]:
    from linli.payments.models import MerchantRoute

    async with unit_of_work() as session:
        return list((await session.scalars(select(MerchantRoute.tenant_id).distinct())).all())
