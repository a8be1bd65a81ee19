"""Online payments against the real clients and the sandboxes: the app served on a loopback
port (notifications come back over HTTP), the WeChat Pay sandbox beside it, and helpers
that read the books the way finance would."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy import func, select

from linli.auth.actor import Actor
from linli.billing import reports
from linli.billing.models import Bill, JournalEntry, Receipt
from linli.db.engine import unit_of_work
from linli.payments import service
from linli.payments.models import MerchantAccount, PaymentOrder
from linli.payments.sandbox import alipay as ali_sandbox
from linli.payments.sandbox import wechatpay as wx_sandbox
from linli.payments.settings import get_payments_settings
from linli.payments.wechatpay import WeChatPayConfig
from tests.billing.factories import Billed, billed_company
from tests.factories import Company, make_company


@dataclass
class Servers:
    app_url: str
    wechat_url: str
    wechat: wx_sandbox.WeChatPaySandbox
    alipay_url: str = ""
    alipay: ali_sandbox.AlipaySandbox | None = None


@contextlib.asynccontextmanager
async def servers(app: object) -> AsyncIterator[Servers]:
    keys, _ = wx_sandbox.generate_keys()
    sandbox = wx_sandbox.WeChatPaySandbox(
        keys, retry_delays=(0.2, 0.5, 1.0, 2.0), refund_delay=0.05
    )
    ali_keys, _ = ali_sandbox.generate_keys()
    ali = ali_sandbox.AlipaySandbox(ali_keys, retry_delays=(0.2, 0.5, 1.0, 2.0))
    async with (
        wx_sandbox.serving(app) as app_url,
        wx_sandbox.running(sandbox) as wechat_url,
        ali_sandbox.running(ali) as alipay_gateway,
    ):
        ali.public_url = alipay_gateway.removesuffix("/gateway.do")
        os.environ["LINLI_PAYMENTS_PUBLIC_URL"] = app_url
        os.environ["LINLI_PAYMENTS_SANDBOX_WECHATPAY_URL"] = wechat_url
        os.environ["LINLI_PAYMENTS_SANDBOX_ALIPAY_URL"] = ali.public_url
        get_payments_settings.cache_clear()
        try:
            yield Servers(app_url, wechat_url, sandbox, alipay_gateway, ali)
        finally:
            await sandbox.aclose()
            await ali.aclose()


@dataclass
class Shop:
    """A company with billed houses and a WeChat Pay merchant account on the sandbox."""

    company: Company
    billed: Billed
    account_id: uuid.UUID
    config: WeChatPayConfig

    @property
    def tenant(self) -> uuid.UUID:
        return self.company.id

    @property
    def house(self) -> uuid.UUID:
        return self.billed.houses[0]


async def make_shop(srv: Servers, *, houses: int = 2, timeout: float = 10.0) -> Shop:
    company = await make_company()
    billed = await billed_company(company, houses=houses)
    config = srv.wechat.add_merchant(base_url=srv.wechat_url)
    config = config.model_copy(update={"timeout_seconds": timeout})
    async with unit_of_work(company.id) as session:
        account = await service.create_merchant_account(
            session,
            Actor.system(company.id),
            community_id=company.communities[0],
            provider_name="wechatpay",
            config=config.to_storage(),
            name="微信支付",
        )
        account_id = account.id
    return Shop(company, billed, account_id, config)


async def add_alipay(srv: Servers, shop: Shop) -> uuid.UUID:
    """An Alipay app on the sandbox for the shop's first community."""
    assert srv.alipay is not None
    config = srv.alipay.add_app(gateway_url=srv.alipay_url)
    async with unit_of_work(shop.tenant) as session:
        account = await service.create_merchant_account(
            session,
            Actor.system(shop.tenant),
            community_id=shop.company.communities[0],
            provider_name="alipay",
            config=config.to_storage(),
            name="支付宝",
        )
        return account.id


async def open_bills(tenant: uuid.UUID, house: uuid.UUID) -> list[uuid.UUID]:
    async with unit_of_work(tenant) as session:
        rows = await session.scalars(
            select(Bill.id)
            .where(Bill.house_id == house, Bill.settled_cents < Bill.amount_cents)
            .order_by(Bill.due_on, Bill.id)
        )
        return list(rows.all())


async def order(tenant: uuid.UUID, order_id: uuid.UUID) -> PaymentOrder:
    async with unit_of_work(tenant) as session:
        found = await session.get(PaymentOrder, (tenant, order_id))
        assert found is not None
        return found


async def account(tenant: uuid.UUID, account_id: uuid.UUID) -> MerchantAccount:
    async with unit_of_work(tenant) as session:
        found = await session.get(MerchantAccount, (tenant, account_id))
        assert found is not None
        return found


async def books(tenant: uuid.UUID) -> dict[str, int]:
    """Ledger balanced and agreeing with the bills; counts finance would check."""
    async with unit_of_work(tenant) as session:
        balance = await reports.trial_balance(session, Actor.system(tenant))
        owed = await session.scalar(
            select(func.coalesce(func.sum(Bill.amount_cents - Bill.settled_cents), 0))
        )
        payments = await session.scalar(
            select(func.count()).select_from(JournalEntry).where(JournalEntry.kind == "payment")
        )
        numbered = await session.scalar(
            select(func.count()).select_from(Receipt).where(Receipt.receipt_no.is_not(None))
        )
    debits = sum(d for d, _ in balance.values())
    credits = sum(c for _, c in balance.values())
    assert debits == credits, balance
    receivable = balance.get("receivable", (0, 0))
    assert receivable[0] - receivable[1] == owed, (balance, owed)
    scan = balance.get("scan_clearing", (0, 0))
    return {
        "payment_entries": int(payments or 0),
        "receipts": int(numbered or 0),
        "owed": int(owed or 0),
        "scan_clearing": scan[0] - scan[1],
        "prepaid": balance.get("prepaid", (0, 0))[1] - balance.get("prepaid", (0, 0))[0],
    }
