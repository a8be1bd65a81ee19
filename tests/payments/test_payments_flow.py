"""Paying bills online end to end: the real WeChat Pay client, the sandbox speaking the wire
protocol, its signed and encrypted notifications posted back to the app over HTTP.

Exactly once is checked on the books: one payment entry, one numbered receipt, bills
settled once, the ledger balanced and agreeing with the bills."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from linli.auth.actor import Actor
from linli.core.errors import Conflict, ServiceUnavailable
from linli.core.pagination import PageParams
from linli.db.engine import unit_of_work
from linli.payments import flows, service
from linli.payments.gateway import Channel
from linli.payments.models import OrderStatus, PaymentException, PostingState, RefundStatus
from tests.payments.harness import Servers, books, make_shop, open_bills, order, servers


@pytest_asyncio.fixture(scope="module")
async def srv(app: object) -> AsyncIterator[Servers]:
    async with servers(app) as running:
        yield running


async def _place(  # type: ignore[no-untyped-def]
    shop, bills, *, channel: Channel = Channel.NATIVE, house=None
) -> flows.Placed:
    return await flows.place_order(
        Actor.system(shop.tenant),
        tenant_id=shop.tenant,
        house_id=house or shop.house,
        provider_name="wechatpay",
        channel=channel,
        bill_ids=bills,
    )


async def _exceptions(tenant) -> list[PaymentException]:  # type: ignore[no-untyped-def]
    async with unit_of_work(tenant) as session:
        return await service.list_exceptions(session, Actor.system(tenant), status=None)


async def test_resident_pays_bills_and_the_notification_posts_once(srv: Servers) -> None:
    shop = await make_shop(srv)
    bills = await open_bills(shop.tenant, shop.house)
    before = await books(shop.tenant)
    placed = await _place(shop, bills)
    assert placed.order.status == OrderStatus.PAYING.value
    assert placed.order.prepay["qr_content"].startswith("weixin://wxpay/")
    assert placed.order.amount_cents == 22375

    trade = await srv.wechat.pay(placed.order.out_trade_no, merchant_id=shop.config.mchid)
    await srv.wechat.drain()
    paid = await order(shop.tenant, placed.order.id)
    assert paid.status == OrderStatus.PAID.value
    assert paid.posting == PostingState.POSTED.value
    assert paid.provider_trade_no == trade.transaction_id
    after = await books(shop.tenant)
    assert after["payment_entries"] == before["payment_entries"] + 1
    assert after["receipts"] == before["receipts"] + 1
    assert after["owed"] == before["owed"] - 22375
    assert after["scan_clearing"] == 22375
    assert await open_bills(shop.tenant, shop.house) == []

    # The same notification again and again, concurrently, with queries and the payer's
    # return in between: nothing moves.
    headers, body = srv.wechat.notification(trade)
    url = f"{srv.app_url}/api/v1/payments/notify/wechatpay/{shop.account_id}"
    async with httpx.AsyncClient() as http:
        answers = await asyncio.gather(
            *[http.post(url, headers=headers, content=body) for _ in range(10)],
            *[
                http.post(url, headers=h, content=b)
                for h, b in (srv.wechat.notification(trade) for _ in range(5))
            ],
            *[flows.refresh_order(shop.tenant, placed.order.id) for _ in range(3)],
        )
    assert all(a.status_code in (200, 204) for a in answers if isinstance(a, httpx.Response))
    assert await books(shop.tenant) == after


async def test_concurrent_first_deliveries_post_exactly_once(srv: Servers) -> None:
    shop = await make_shop(srv)
    bills = await open_bills(shop.tenant, shop.house)
    placed = await _place(shop, bills)
    srv.wechat.faults.drop_notifications = 100  # the sandbox's own delivery is lost
    try:
        trade = await srv.wechat.pay(placed.order.out_trade_no, merchant_id=shop.config.mchid)
    finally:
        srv.wechat.faults.drop_notifications = 0
    before = await books(shop.tenant)
    url = f"{srv.app_url}/api/v1/payments/notify/wechatpay/{shop.account_id}"
    # Different event ids (the provider's retries carry the same id; these do not) so the
    # dedup table does not hide a double posting: the order's row lock must.
    notes = [srv.wechat.notification(trade) for _ in range(12)]
    async with httpx.AsyncClient() as http:
        answers = await asyncio.gather(
            *[http.post(url, headers=h, content=b) for h, b in notes],
            *[flows.refresh_order(shop.tenant, placed.order.id) for _ in range(4)],
        )
    assert all(a.status_code == 204 for a in answers if isinstance(a, httpx.Response))
    after = await books(shop.tenant)
    assert after["payment_entries"] == before["payment_entries"] + 1
    assert after["receipts"] == before["receipts"] + 1
    assert (await order(shop.tenant, placed.order.id)).status == OrderStatus.PAID.value


async def test_payer_return_queries_and_posts_when_the_notification_is_lost(
    srv: Servers,
) -> None:
    shop = await make_shop(srv)
    placed = await _place(shop, (await open_bills(shop.tenant, shop.house))[:1])
    srv.wechat.faults.drop_notifications = 100
    try:
        await srv.wechat.pay(placed.order.out_trade_no, merchant_id=shop.config.mchid)
        refreshed = await flows.refresh_order(shop.tenant, placed.order.id)
    finally:
        srv.wechat.faults.drop_notifications = 0
    assert refreshed.status == OrderStatus.PAID.value
    assert (await books(shop.tenant))["payment_entries"] == 1


async def test_create_timeout_is_queried_and_never_duplicated(srv: Servers) -> None:
    shop = await make_shop(srv, timeout=0.5)
    bills = await open_bills(shop.tenant, shop.house)
    srv.wechat.faults.create_delay = 1.5
    # The first answer comes too late; the delay is lifted before the retry.
    asyncio.get_running_loop().call_later(
        0.4, lambda: setattr(srv.wechat.faults, "create_delay", 0.0)
    )
    try:
        placed = await _place(shop, bills)
    finally:
        srv.wechat.faults.create_delay = 0.0
    assert placed.order.status == OrderStatus.PAYING.value
    trades = [t for t in srv.wechat.trades.values() if t.out_trade_no == placed.order.out_trade_no]
    assert len(trades) == 1
    assert placed.order.prepay["qr_content"]


async def test_provider_down_leaves_the_order_to_be_queried(srv: Servers) -> None:
    shop = await make_shop(srv, timeout=0.3)
    bills = await open_bills(shop.tenant, shop.house)
    srv.wechat.faults.create_delay = 1.0
    try:
        with pytest.raises(ServiceUnavailable):
            await _place(shop, bills)
    finally:
        srv.wechat.faults.create_delay = 0.0
    async with unit_of_work(shop.tenant) as session:
        rows, _ = await service.list_orders(
            session, Actor.system(shop.tenant), page=PageParams(limit=10)
        )
    assert len(rows) == 1 and rows[0].status == OrderStatus.CREATED.value
    again = await flows.create_at_provider(shop.tenant, rows[0].id)
    assert again.order.status == OrderStatus.PAYING.value
    trades = [t for t in srv.wechat.trades.values() if t.out_trade_no == rows[0].out_trade_no]
    assert len(trades) == 1


async def test_refunds_partial_then_full_reverse_bills_and_ledger(srv: Servers) -> None:
    shop = await make_shop(srv)
    bills = await open_bills(shop.tenant, shop.house)
    placed = await _place(shop, bills)
    await srv.wechat.pay(placed.order.out_trade_no, merchant_id=shop.config.mchid)
    await srv.wechat.drain()
    paid_books = await books(shop.tenant)
    staff = Actor.system(shop.tenant)
    async with unit_of_work(shop.tenant) as session:
        with pytest.raises(Conflict) as too_much:
            await service.request_refund(
                session, staff, order_id=placed.order.id, amount_cents=22376, reason="多收"
            )
    assert too_much.value.instance_code == "refund_exceeds_paid"

    async with unit_of_work(shop.tenant) as session:
        first = await service.request_refund(
            session, staff, order_id=placed.order.id, amount_cents=10000, reason="多收了"
        )
    async with unit_of_work(shop.tenant) as session:
        # Asked for, not approved: still counts against what may be refunded.
        with pytest.raises(Conflict):
            await service.request_refund(
                session, staff, order_id=placed.order.id, amount_cents=12376, reason="再退"
            )
    refund = await flows.approve_refund(staff, refund_id=first.id)
    await srv.wechat.drain()
    refund = await flows.refresh_refund(shop.tenant, first.id)
    assert refund.status == RefundStatus.SUCCEEDED.value
    partly = await order(shop.tenant, placed.order.id)
    assert partly.status == OrderStatus.PARTIALLY_REFUNDED.value
    assert partly.refunded_cents == 10000
    after_first = await books(shop.tenant)
    assert after_first["owed"] == paid_books["owed"] + 10000
    assert after_first["scan_clearing"] == paid_books["scan_clearing"] - 10000

    async with unit_of_work(shop.tenant) as session:
        second = await service.request_refund(
            session, staff, order_id=placed.order.id, amount_cents=12375, reason="全部退"
        )
    await flows.approve_refund(staff, refund_id=second.id)
    await srv.wechat.drain()
    await flows.refresh_refund(shop.tenant, second.id)
    whole = await order(shop.tenant, placed.order.id)
    assert whole.status == OrderStatus.REFUNDED.value
    final = await books(shop.tenant)
    assert final["owed"] == paid_books["owed"] + 22375
    assert final["scan_clearing"] == 0
    assert await open_bills(shop.tenant, shop.house) == bills


async def test_rejected_refund_moves_nothing(srv: Servers) -> None:
    shop = await make_shop(srv)
    placed = await _place(shop, await open_bills(shop.tenant, shop.house))
    await srv.wechat.pay(placed.order.out_trade_no, merchant_id=shop.config.mchid)
    await srv.wechat.drain()
    before = await books(shop.tenant)
    staff = Actor.system(shop.tenant)
    async with unit_of_work(shop.tenant) as session:
        asked = await service.request_refund(
            session, staff, order_id=placed.order.id, amount_cents=500, reason="测试"
        )
    async with unit_of_work(shop.tenant) as session:
        rejected = await service.decide_refund(session, staff, refund_id=asked.id, approve=False)
    assert rejected.status == RefundStatus.REJECTED.value
    with pytest.raises(Conflict):
        async with unit_of_work(shop.tenant) as session:
            await service.decide_refund(session, staff, refund_id=asked.id, approve=True)
    assert await books(shop.tenant) == before


async def test_expired_orders_are_closed_at_the_provider(srv: Servers) -> None:
    shop = await make_shop(srv)
    placed = await _place(shop, await open_bills(shop.tenant, shop.house))
    closed = await flows.sweep_tenant(
        shop.tenant, now=placed.order.expires_at + dt.timedelta(seconds=1)
    )
    assert closed == 1
    assert (await order(shop.tenant, placed.order.id)).status == OrderStatus.CLOSED.value
    assert srv.wechat.trade(placed.order.out_trade_no).state == "CLOSED"
    # Bills are still open and can be paid again.
    again = await _place(shop, await open_bills(shop.tenant, shop.house))
    assert again.order.status == OrderStatus.PAYING.value


async def test_paid_just_before_expiry_is_settled_not_closed(srv: Servers) -> None:
    shop = await make_shop(srv)
    placed = await _place(shop, await open_bills(shop.tenant, shop.house))
    srv.wechat.faults.drop_notifications = 100
    try:
        await srv.wechat.pay(placed.order.out_trade_no, merchant_id=shop.config.mchid)
        await flows.sweep_tenant(shop.tenant, now=placed.order.expires_at + dt.timedelta(seconds=1))
    finally:
        srv.wechat.faults.drop_notifications = 0
    assert (await order(shop.tenant, placed.order.id)).status == OrderStatus.PAID.value
    assert (await books(shop.tenant))["payment_entries"] == 1


async def test_bills_settled_at_the_counter_meanwhile_go_to_review(srv: Servers) -> None:
    from linli.billing import service as billing
    from linli.billing.models import TenderMethod

    shop = await make_shop(srv)
    bills = await open_bills(shop.tenant, shop.house)
    placed = await _place(shop, bills)
    async with unit_of_work(shop.tenant) as session:
        await billing.take_payment(
            session,
            Actor.system(shop.tenant),
            house_id=shop.house,
            tenders=[billing.Tender(TenderMethod.CASH, 22375)],
            bill_ids=bills,
        )
    await srv.wechat.pay(placed.order.out_trade_no, merchant_id=shop.config.mchid)
    await srv.wechat.drain()
    paid = await order(shop.tenant, placed.order.id)
    assert paid.status == OrderStatus.PAID.value
    assert paid.posting == PostingState.REVIEW.value
    kinds = {e.kind for e in await _exceptions(shop.tenant)}
    assert "not_postable" in kinds
    before = await books(shop.tenant)
    assert before["payment_entries"] == 1  # the cash one only
    # Finance gives the second payment back: the provider refunds, bills and ledger stay.
    staff = Actor.system(shop.tenant)
    async with unit_of_work(shop.tenant) as session:
        asked = await service.request_refund(
            session, staff, order_id=placed.order.id, amount_cents=22375, reason="重复缴费"
        )
    await flows.approve_refund(staff, refund_id=asked.id)
    await srv.wechat.drain()
    refund = await flows.refresh_refund(shop.tenant, asked.id)
    assert refund.status == RefundStatus.SUCCEEDED.value
    assert (await order(shop.tenant, placed.order.id)).status == OrderStatus.REFUNDED.value
    assert await books(shop.tenant) == before


async def test_a_second_tap_reuses_the_open_order_for_the_same_bills(srv: Servers) -> None:
    shop = await make_shop(srv)
    bills = await open_bills(shop.tenant, shop.house)
    first = await _place(shop, bills)
    second = await _place(shop, list(reversed(bills)))
    assert second.order.id == first.order.id
    assert second.order.prepay["qr_content"] == first.order.prepay["qr_content"]
    # Inside WeChat (JSAPI, the payer's openid): another trade, with the sheet's parameters.
    jsapi = await flows.place_order(
        Actor.system(shop.tenant),
        tenant_id=shop.tenant,
        house_id=shop.house,
        provider_name="wechatpay",
        channel=Channel.JSAPI,
        bill_ids=bills,
        payer_id="oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
    )
    assert jsapi.order.id != first.order.id
    assert jsapi.order.prepay["jsapi"]["package"].startswith("prepay_id=")
    assert "oUpF8u" not in str(jsapi.order.prepay)  # the openid is kept encrypted


@pytest.mark.parametrize("channel", [Channel.NATIVE, Channel.WAP])
async def test_alipay_precreate_and_wap_pay_and_refund_once(srv: Servers, channel: Channel) -> None:
    from tests.payments.harness import add_alipay

    assert srv.alipay is not None
    shop = await make_shop(srv)
    await add_alipay(srv, shop)
    bills = await open_bills(shop.tenant, shop.house)
    placed = await flows.place_order(
        Actor.system(shop.tenant),
        tenant_id=shop.tenant,
        house_id=shop.house,
        provider_name="alipay",
        channel=channel,
        bill_ids=bills,
        return_url=f"{srv.app_url}/portal/payments/return/{shop.tenant}",
    )
    assert placed.order.status == OrderStatus.PAYING.value
    if channel is Channel.NATIVE:
        assert "/sandbox/cashier/" in placed.order.prepay["qr_content"]
    else:
        assert placed.order.prepay["redirect_url"]
    assert service.sandbox_pay_url(placed.order)
    if channel is Channel.WAP:
        # The payer's browser opens the H5 cashier: that is when Alipay has the trade.
        async with httpx.AsyncClient(follow_redirects=True) as http:
            opened = await http.get(placed.order.prepay["redirect_url"])
        assert opened.status_code == 200
    await srv.alipay.pay(placed.order.out_trade_no)
    await srv.alipay.drain()
    # A second delivery of the same notification changes nothing.
    paid = await order(shop.tenant, placed.order.id)
    assert paid.status == OrderStatus.PAID.value
    assert paid.posting == PostingState.POSTED.value
    assert (await books(shop.tenant))["payment_entries"] == 1
    refreshed = await flows.refresh_order(shop.tenant, placed.order.id)
    assert refreshed.status == OrderStatus.PAID.value
    staff = Actor.system(shop.tenant)
    async with unit_of_work(shop.tenant) as session:
        asked = await service.request_refund(
            session, staff, order_id=placed.order.id, amount_cents=22375, reason="全额退款"
        )
    await flows.approve_refund(staff, refund_id=asked.id)
    await srv.alipay.drain()
    refund = await flows.refresh_refund(shop.tenant, asked.id)
    assert refund.status == RefundStatus.SUCCEEDED.value
    assert (await order(shop.tenant, placed.order.id)).status == OrderStatus.REFUNDED.value
    assert (await books(shop.tenant))["scan_clearing"] == 0
    assert await open_bills(shop.tenant, shop.house) == bills
