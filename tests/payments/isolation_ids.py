"""Id makers of online payments for the cross-company sweep (see ``tests/isolation.py``).

Company A gets a merchant account whose keys are generated here (no provider is called:
the order is stored and a notification built with the sandbox's keys settles it), a paid
order, a refund asked for, an exception and a reconciliation run.
"""

from __future__ import annotations

import uuid
from typing import Any

from linli.auth.actor import Actor
from linli.db.engine import unit_of_work
from linli.estate import service as estate
from linli.payments import flows, service
from linli.payments.gateway import Channel
from linli.payments.models import ExceptionKind, ReconciliationRun
from linli.payments.sandbox.wechatpay import build_notification, generate_keys
from tests.isolation import IsolationContext, id_maker


async def _made(ctx: IsolationContext) -> dict[str, uuid.UUID]:
    if "payments" in ctx.made:
        made: dict[str, uuid.UUID] = ctx.made["payments"]
        return made
    from tests.billing.isolation_ids import _billed
    from tests.core.isolation_ids import a_house

    await _billed(ctx)
    house_id = await a_house(ctx)
    company = ctx.company
    system = Actor.system(company.id)
    sandbox, ours = generate_keys()
    async with unit_of_work(company.id) as session:
        house = await estate.get_house(session, system, house_id=uuid.UUID(str(house_id)))
        account = await service.create_merchant_account(
            session,
            system,
            community_id=house.community_id,
            provider_name="wechatpay",
            config=ours.to_storage(),
        )
        plan = await service.plan_order(
            session,
            system,
            house_id=house.id,
            provider_name="wechatpay",
            channel=Channel.NATIVE,
            top_up_cents=500,
        )
        order = plan.order
        run = ReconciliationRun(
            tenant_id=company.id, merchant_account_id=account.id, day=order.created_at.date()
        )
        session.add(run)
        await session.flush()
        await service.flag(
            session,
            tenant_id=company.id,
            account_id=account.id,
            kind=ExceptionKind.UNKNOWN_ORDER,
            out_trade_no="ISO-UNKNOWN",
            run_id=run.id,
        )
        order_id, account_id, run_id = order.id, account.id, run.id
        out_trade_no = order.out_trade_no
    resource: dict[str, Any] = {
        "appid": ours.appid,
        "mchid": ours.mchid,
        "out_trade_no": out_trade_no,
        "transaction_id": "4200" + uuid.uuid4().hex[:24],
        "trade_type": "NATIVE",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "success_time": "2026-11-25T10:34:56+08:00",
        "payer": {"openid": "oIsolation"},
        "amount": {"total": 500, "payer_total": 500, "currency": "CNY", "payer_currency": "CNY"},
    }
    headers, body = build_notification(
        sandbox.platform,
        ours.apiv3_key.get_secret_value(),
        event_type="TRANSACTION.SUCCESS",
        resource=resource,
    )
    result = await flows.handle_notification(
        provider_name="wechatpay", account_id=account_id, headers=headers, body=body
    )
    assert result.outcome == "paid", result.outcome
    async with unit_of_work(company.id) as session:
        refund = await service.request_refund(
            session, system, order_id=order_id, amount_cents=100, reason="隔离测试"
        )
        exceptions = await service.list_exceptions(session, system)
    made = {
        "payment_order_id": order_id,
        "merchant_account_id": account_id,
        "reconciliation_run_id": run_id,
        "refund_id": refund.id,
        "exception_id": exceptions[0].id,
    }
    ctx.made["payments"] = made
    return made


@id_maker("payment_order_id")
async def a_payment_order(ctx: IsolationContext) -> uuid.UUID:
    return (await _made(ctx))["payment_order_id"]


@id_maker("merchant_account_id")
async def a_merchant_account(ctx: IsolationContext) -> uuid.UUID:
    return (await _made(ctx))["merchant_account_id"]


@id_maker("reconciliation_run_id")
async def a_reconciliation_run(ctx: IsolationContext) -> uuid.UUID:
    return (await _made(ctx))["reconciliation_run_id"]


@id_maker("refund_id")
async def a_refund(ctx: IsolationContext) -> uuid.UUID:
    return (await _made(ctx))["refund_id"]


@id_maker("exception_id")
async def an_exception(ctx: IsolationContext) -> uuid.UUID:
    return (await _made(ctx))["exception_id"]
