"""The payments API from outside: a resident pays own bills, the cashier's scan-to-pay QR,
refund approval, reconciliation with its spreadsheet, and company B seeing nothing of A."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest_asyncio
from openpyxl import load_workbook

from linli.auth.permissions import Role
from linli.billing import service as billing
from linli.billing.models import TenderMethod
from linli.db.engine import unit_of_work
from linli.payments.models import OrderStatus
from tests.billing.factories import cashier, open_shift
from tests.estate.factories import make_resident, make_resident_account, random_phone
from tests.factories import bearer, make_staff, staff_token
from tests.payments.harness import Servers, books, make_shop, open_bills, order, servers


@pytest_asyncio.fixture(scope="module")
async def srv(app: object) -> AsyncIterator[Servers]:
    async with servers(app) as running:
        yield running


async def test_resident_pays_own_bills_through_the_sandbox_pay_page(srv: Servers) -> None:
    shop = await make_shop(srv)
    phone = random_phone()
    await make_resident(shop.company, house_id=shop.house, phone=phone)
    _, token = await make_resident_account(phone)
    bills = await open_bills(shop.tenant, shop.house)
    async with httpx.AsyncClient(base_url=srv.app_url) as http:
        created = await http.post(
            "/api/v1/payments/me/orders",
            headers=bearer(token),
            json={
                "company_id": str(shop.tenant),
                "house_id": str(shop.house),
                "provider": "wechatpay",
                "channel": "native",
                "bill_ids": [str(b) for b in bills],
                "return_url": f"{srv.app_url}/portal/payments/done",
            },
        )
        assert created.status_code == 201, created.text
        data = created.json()
        assert data["status"] == "paying"
        assert data["amount_cents"] == 22375
        pay_url = data["prepay"]["sandbox_pay_url"]
        assert pay_url.startswith(srv.wechat_url + "/sandbox/pay/")
        # The payer presses "pay" on the sandbox page (what the demo shows instead of WeChat).
        page = await http.get(pay_url)
        assert page.status_code == 200
        token_part = pay_url.split("/sandbox/pay/")[1].split("?")[0]
        pressed = await http.post(f"{srv.wechat_url}/sandbox/pay/{token_part}/pay")
        assert pressed.status_code in (200, 303)
        await srv.wechat.drain()
        seen = await http.get(
            f"/api/v1/payments/me/orders/{shop.tenant}/{data['id']}?refresh=true",
            headers=bearer(token),
        )
        assert seen.status_code == 200
        assert seen.json()["status"] == "paid"

        # Someone else's house, or someone else's order: not found.
        _, stranger = await make_resident_account(random_phone())
        foreign = await http.post(
            "/api/v1/payments/me/orders",
            headers=bearer(stranger),
            json={
                "company_id": str(shop.tenant),
                "house_id": str(shop.house),
                "provider": "wechatpay",
                "channel": "native",
                "top_up_cents": 1000,
            },
        )
        assert foreign.status_code == 404
        peek = await http.get(
            f"/api/v1/payments/me/orders/{shop.tenant}/{data['id']}", headers=bearer(stranger)
        )
        assert peek.status_code == 404
    assert (await books(shop.tenant))["receipts"] == 1


async def test_cashier_scan_to_pay_shows_a_native_qr_and_settles(srv: Servers) -> None:
    shop = await make_shop(srv)
    staff_id = await make_staff(shop.company, roles=(Role.CASHIER,), all_communities=True)
    actor = cashier(shop.company, staff_id)
    await open_shift(shop.company, actor)
    bills = await open_bills(shop.tenant, shop.house)
    async with unit_of_work(shop.tenant) as session:
        receipt = await billing.take_payment(
            session,
            actor,
            house_id=shop.house,
            tenders=[billing.Tender(TenderMethod.SCAN, 22375)],
            bill_ids=bills,
        )
        receipt_id = receipt.id
    token = staff_token(shop.company, staff_id, roles=(Role.CASHIER,))
    async with httpx.AsyncClient(base_url=srv.app_url) as http:
        first = await http.post(
            "/api/v1/payments/counter-orders",
            headers=bearer(token),
            json={"receipt_id": str(receipt_id)},
        )
        assert first.status_code == 201, first.text
        again = await http.post(
            "/api/v1/payments/counter-orders",
            headers=bearer(token),
            json={"receipt_id": str(receipt_id)},
        )
        assert again.json()["id"] == first.json()["id"]  # one trade per pending receipt
        qr = first.json()["prepay"]["qr_content"]
        assert qr.startswith("weixin://wxpay/")
        await srv.wechat.pay(first.json()["out_trade_no"], merchant_id=shop.config.mchid)
        await srv.wechat.drain()
        polled = await http.get(
            f"/api/v1/payments/orders/{first.json()['id']}", headers=bearer(token)
        )
        assert polled.json()["status"] == "paid"
        receipt_view = await http.get(
            f"/api/v1/billing/receipts/{receipt_id}", headers=bearer(token)
        )
        assert receipt_view.json()["status"] == "paid"
        assert receipt_view.json()["receipt_no"] is not None


async def test_refund_needs_finance_approval(srv: Servers) -> None:
    shop = await make_shop(srv)
    from tests.payments.test_payments_flow import _place

    placed = await _place(shop, await open_bills(shop.tenant, shop.house))
    await srv.wechat.pay(placed.order.out_trade_no, merchant_id=shop.config.mchid)
    await srv.wechat.drain()
    cashier_token = staff_token(shop.company, roles=(Role.CASHIER,))
    finance_token = staff_token(shop.company, roles=(Role.FINANCE,))
    async with httpx.AsyncClient(base_url=srv.app_url) as http:
        asked = await http.post(
            f"/api/v1/payments/orders/{placed.order.id}/refunds",
            headers=bearer(cashier_token),
            json={"amount_cents": 2375, "reason": "多收了"},
        )
        assert asked.status_code == 201, asked.text
        too_much = await http.post(
            f"/api/v1/payments/orders/{placed.order.id}/refunds",
            headers=bearer(cashier_token),
            json={"amount_cents": 20001, "reason": "超额"},
        )
        assert too_much.status_code == 409
        assert too_much.json()["type"].endswith("refund_exceeds_paid")
        refused = await http.post(
            f"/api/v1/payments/refunds/{asked.json()['id']}/approve",
            headers=bearer(cashier_token),
        )
        assert refused.status_code == 403
        approved = await http.post(
            f"/api/v1/payments/refunds/{asked.json()['id']}/approve",
            headers=bearer(finance_token),
        )
        assert approved.status_code == 200
    await srv.wechat.drain()
    from linli.payments import flows

    refund = await flows.refresh_refund(shop.tenant, uuid.UUID(asked.json()["id"]))
    assert refund.status == "succeeded"
    assert (await order(shop.tenant, placed.order.id)).status == (
        OrderStatus.PARTIALLY_REFUNDED.value
    )
    assert (await books(shop.tenant))["scan_clearing"] == 20000


async def test_reconciliation_posts_what_was_paid_there_and_exports(srv: Servers) -> None:
    from tests.payments.test_payments_flow import _place

    shop = await make_shop(srv, houses=3)
    orders = [
        await _place(shop, await open_bills(shop.tenant, house), house=house)
        for house in shop.billed.houses
    ]
    # Paid and notified; paid with every notification lost; never paid.
    await srv.wechat.pay(orders[0].order.out_trade_no, merchant_id=shop.config.mchid)
    await srv.wechat.drain()
    srv.wechat.faults.drop_notifications = 100
    try:
        await srv.wechat.pay(orders[1].order.out_trade_no, merchant_id=shop.config.mchid)
        await srv.wechat.drain()  # every retry lost: the sandbox gives up
    finally:
        srv.wechat.faults.drop_notifications = 0
    assert (await order(shop.tenant, orders[1].order.id)).status == OrderStatus.PAYING.value
    token = staff_token(shop.company, roles=(Role.FINANCE,))
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()
    async with httpx.AsyncClient(base_url=srv.app_url) as http:
        ran = await http.post(
            "/api/v1/payments/reconciliation-runs",
            headers=bearer(token),
            json={"merchant_account_id": str(shop.account_id), "day": today.isoformat()},
        )
        assert ran.status_code == 201, ran.text
        report = ran.json()
        assert report["status"] == "done", report
        assert report["provider_count"] == 2
        assert report["matched_count"] == 1
        assert [e["kind"] for e in report["exceptions"]] == ["paid_not_posted"]
        sheet = await http.get(
            f"/api/v1/payments/reconciliation-runs/{report['id']}/report.xlsx",
            headers=bearer(token),
        )
        assert sheet.status_code == 200
        book = load_workbook(io.BytesIO(sheet.content))
        assert book.sheetnames[1].startswith("异常")
        rows = list(book.worksheets[1].iter_rows(values_only=True))
        assert rows[1][0] == "paid_not_posted"
        # Run again: nothing is posted twice, the open exception is not duplicated.
        again = await http.post(
            "/api/v1/payments/reconciliation-runs",
            headers=bearer(token),
            json={"merchant_account_id": str(shop.account_id), "day": today.isoformat()},
        )
        assert again.json()["matched_count"] == 2
    assert (await order(shop.tenant, orders[1].order.id)).status == OrderStatus.PAID.value
    assert (await books(shop.tenant))["payment_entries"] == 2


async def test_company_b_cannot_see_company_a(srv: Servers) -> None:
    from tests.payments.test_payments_flow import _place

    a = await make_shop(srv)
    b = await make_shop(srv)
    placed = await _place(a, await open_bills(a.tenant, a.house))
    b_token = staff_token(b.company)
    a_token = staff_token(a.company)
    async with httpx.AsyncClient(base_url=srv.app_url) as http:
        own = await http.get(f"/api/v1/payments/orders/{placed.order.id}", headers=bearer(a_token))
        assert own.status_code == 200
        for path in (
            f"/api/v1/payments/orders/{placed.order.id}",
            f"/api/v1/payments/orders/{placed.order.id}/refresh",
        ):
            method = http.post if path.endswith("refresh") else http.get
            answer = await method(path, headers=bearer(b_token))
            assert answer.status_code == 404, path
        listed = await http.get("/api/v1/payments/orders", headers=bearer(b_token))
        assert placed.order.id not in {uuid.UUID(o["id"]) for o in listed.json()["items"]}
        accounts = await http.get("/api/v1/payments/merchant-accounts", headers=bearer(b_token))
        assert {x["id"] for x in accounts.json()} == {str(b.account_id)}
        refund = await http.post(
            f"/api/v1/payments/orders/{placed.order.id}/refunds",
            headers=bearer(b_token),
            json={"amount_cents": 1, "reason": "越权"},
        )
        assert refund.status_code == 404
        run = await http.post(
            "/api/v1/payments/reconciliation-runs",
            headers=bearer(b_token),
            json={"merchant_account_id": str(a.account_id), "day": "2026-11-01"},
        )
        assert run.status_code == 404
        # B's merchant account in A's community: refused (the community is not B's).
        config = srv.wechat.add_merchant(base_url=srv.wechat_url)
        foreign = await http.post(
            "/api/v1/payments/merchant-accounts",
            headers=bearer(b_token),
            json={
                "community_id": str(a.company.communities[0]),
                "provider": "wechatpay",
                "config": config.to_storage(),
            },
        )
        assert foreign.status_code == 404


async def test_merchant_accounts_are_for_company_admins_and_keys_never_come_back(
    srv: Servers,
) -> None:
    shop = await make_shop(srv)
    config = srv.wechat.add_merchant(base_url=srv.wechat_url)
    secret = config.apiv3_key.get_secret_value()
    admin = staff_token(shop.company)
    finance = staff_token(shop.company, roles=(Role.FINANCE,))
    async with httpx.AsyncClient(base_url=srv.app_url) as http:
        body = {
            "community_id": str(shop.company.communities[1]),
            "provider": "wechatpay",
            "name": "二号小区",
            "config": config.to_storage(),
        }
        denied = await http.post(
            "/api/v1/payments/merchant-accounts", headers=bearer(finance), json=body
        )
        assert denied.status_code == 403
        made = await http.post(
            "/api/v1/payments/merchant-accounts", headers=bearer(admin), json=body
        )
        assert made.status_code == 201
        assert secret not in made.text
        listed = await http.get("/api/v1/payments/merchant-accounts", headers=bearer(admin))
        assert secret not in listed.text
        bad = await http.post(
            "/api/v1/payments/merchant-accounts",
            headers=bearer(admin),
            json={**body, "config": {**config.to_storage(), "apiv3_key": "short"}},
        )
        assert bad.status_code == 422
        assert bad.json()["type"].endswith("invalid_config")
        unknown = await http.post(
            "/api/v1/payments/merchant-accounts",
            headers=bearer(admin),
            json={**body, "provider": "paypal"},
        )
        assert unknown.status_code == 422


async def test_demo_seeding_gives_each_community_sandbox_accounts_once() -> None:
    from linli.auth.actor import Actor
    from linli.payments import sandboxes, service
    from tests.factories import make_company

    company = await make_company(communities=2)
    made = await sandboxes.seed_demo_accounts(company.id, company.communities)
    assert made == 4
    assert await sandboxes.seed_demo_accounts(company.id, company.communities) == 0
    async with unit_of_work(company.id) as session:
        accounts = await service.list_merchant_accounts(session, Actor.system(company.id))
    assert {(a.community_id, a.provider) for a in accounts} == {
        (c, p) for c in company.communities for p in ("alipay", "wechatpay")
    }
    assert (sandboxes.keys_dir() / "wechatpay.json").stat().st_mode & 0o077 == 0


async def test_order_list_query_count_does_not_grow_with_rows(srv: Servers) -> None:
    from sqlalchemy import event

    from linli.db.engine import get_engine
    from tests.payments.test_payments_flow import _place

    shop = await make_shop(srv, houses=4)
    token = staff_token(shop.company, roles=(Role.FINANCE,))
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    async def listed() -> int:
        statements.clear()
        engine = get_engine()
        event.listen(engine.sync_engine, "before_cursor_execute", count)
        try:
            async with httpx.AsyncClient(base_url=srv.app_url) as http:
                answer = await http.get("/api/v1/payments/orders", headers=bearer(token))
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", count)
        assert answer.status_code == 200
        return len(statements)

    await _place(shop, await open_bills(shop.tenant, shop.billed.houses[0]))
    one = await listed()
    for house in shop.billed.houses[1:]:
        await _place(shop, await open_bills(shop.tenant, house), house=house)
    assert await listed() == one
    assert 2 <= one <= 4  # the tenant binding and one page query (counting works)
