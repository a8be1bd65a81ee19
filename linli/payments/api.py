"""Routes of online payments. Thin: parse, call the service or flow, shape the answer.

Creating and refunding talk to the provider between transactions, so those routes run
their flows (:mod:`linli.payments.flows`) instead of the request's unit of work.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from linli.auth.actor import Actor, PrincipalKind
from linli.auth.deps import Authorizer, DbSession, DeclaredRoute, public
from linli.auth.permissions import Permission
from linli.core.errors import NotFound
from linli.core.pagination import Page, PageParams, page_params
from linli.db.engine import unit_of_work
from linli.payments import flows, reconcile, service
from linli.payments import tasks as _tasks  # noqa: F401 - registers the jobs
from linli.payments.models import PaymentOrder, PaymentOrderLine
from linli.payments.schemas import (
    CounterOrderCreate,
    ExceptionRead,
    ExceptionResolve,
    MerchantAccountCreate,
    MerchantAccountRead,
    OrderDetail,
    OrderLineRead,
    OrderRead,
    PrepayRead,
    ReconcileRequest,
    RefundCreate,
    RefundRead,
    ResidentOrderCreate,
    RunRead,
    RunReport,
)
from linli.payments.settings import get_payments_settings

router = APIRouter(prefix="/api/v1/payments", route_class=DeclaredRoute, tags=["payments"])

Reader = Annotated[Actor, Depends(Authorizer(Permission.PAYMENTS_READ))]
MerchantAdmin = Annotated[Actor, Depends(Authorizer(Permission.PAYMENTS_MERCHANTS))]
Cashier = Annotated[Actor, Depends(Authorizer(Permission.CASHIER))]
RefundRequester = Annotated[Actor, Depends(Authorizer(Permission.PAYMENTS_REFUND_REQUEST))]
RefundApprover = Annotated[Actor, Depends(Authorizer(Permission.PAYMENTS_REFUND_APPROVE))]
Reconciler = Annotated[Actor, Depends(Authorizer(Permission.PAYMENTS_RECONCILE))]
Resident = Annotated[
    Actor, Depends(Authorizer(Permission.RESIDENT_SELF, kinds=(PrincipalKind.RESIDENT,)))
]
Anyone = Annotated[Actor | None, Depends(public)]
Paging = Annotated[PageParams, Depends(page_params)]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _detail(
    order: PaymentOrder, lines: list[PaymentOrderLine], *, return_url: str = ""
) -> OrderDetail:
    prepay: PrepayRead | None = None
    if order.prepay.get("provider_reference") or order.prepay.get("qr_content"):
        prepay = PrepayRead(
            qr_content=str(order.prepay.get("qr_content", "")),
            redirect_url=str(order.prepay.get("redirect_url", "")),
            jsapi_params={str(k): str(v) for k, v in dict(order.prepay.get("jsapi", {})).items()},
            sandbox_pay_url=service.sandbox_pay_url(order, return_url=return_url),
        )
    elif order.prepay.get("redirect_url"):
        prepay = PrepayRead(
            redirect_url=str(order.prepay["redirect_url"]),
            sandbox_pay_url=service.sandbox_pay_url(order, return_url=return_url),
        )
    return OrderDetail(
        **OrderRead.model_validate(order).model_dump(),
        lines=[OrderLineRead.model_validate(line) for line in lines],
        prepay=prepay,
    )


async def _order_detail(tenant_id: uuid.UUID, order_id: uuid.UUID, **kwargs: str) -> OrderDetail:
    async with unit_of_work(tenant_id) as session:
        order = await session.get(PaymentOrder, (tenant_id, order_id))
        if order is None:
            raise NotFound("Payment order not found.", code="order_not_found")
        return _detail(order, await service.order_lines(session, order.id), **kwargs)


# --- merchant accounts ---------------------------------------------------------------------------


@router.post("/merchant-accounts", response_model=MerchantAccountRead, status_code=201)
async def create_merchant_account(
    actor: MerchantAdmin, session: DbSession, body: MerchantAccountCreate
) -> MerchantAccountRead:
    account = await service.create_merchant_account(
        session,
        actor,
        community_id=body.community_id,
        provider_name=body.provider,
        config=body.config,
        name=body.name,
    )
    return MerchantAccountRead.model_validate(account)


@router.get("/merchant-accounts", response_model=list[MerchantAccountRead])
async def list_merchant_accounts(
    actor: Reader, session: DbSession, community_id: uuid.UUID | None = None
) -> list[MerchantAccountRead]:
    rows = await service.list_merchant_accounts(session, actor, community_id=community_id)
    return [MerchantAccountRead.model_validate(r) for r in rows]


@router.post(
    "/merchant-accounts/{merchant_account_id}/deactivate", response_model=MerchantAccountRead
)
async def deactivate_merchant_account(
    actor: MerchantAdmin, session: DbSession, merchant_account_id: uuid.UUID
) -> MerchantAccountRead:
    account = await service.deactivate_merchant_account(
        session, actor, account_id=merchant_account_id
    )
    return MerchantAccountRead.model_validate(account)


# --- orders --------------------------------------------------------------------------------------


@router.get("/orders", response_model=Page[OrderRead])
async def list_orders(
    actor: Reader,
    session: DbSession,
    paging: Paging,
    community_id: uuid.UUID | None = None,
    status: str | None = None,
    house_id: uuid.UUID | None = None,
) -> Page[OrderRead]:
    rows, cursor = await service.list_orders(
        session, actor, page=paging, community_id=community_id, status=status, house_id=house_id
    )
    return Page[OrderRead].of(rows, cursor)


@router.get("/orders/{payment_order_id}", response_model=OrderDetail)
async def get_order(actor: Reader, session: DbSession, payment_order_id: uuid.UUID) -> OrderDetail:
    order = await service.get_order(session, actor, order_id=payment_order_id)
    return _detail(order, await service.order_lines(session, order.id))


@router.post("/orders/{payment_order_id}/refresh", response_model=OrderDetail)
async def refresh_order(actor: Reader, payment_order_id: uuid.UUID) -> OrderDetail:
    """Ask the provider now (a payer says they paid); records a payment exactly once."""
    assert actor.tenant_id is not None
    async with unit_of_work(actor.tenant_id) as session:
        order = await service.get_order(session, actor, order_id=payment_order_id)
    await flows.refresh_order(actor.tenant_id, order.id)
    return await _order_detail(actor.tenant_id, order.id)


@router.post("/counter-orders", response_model=OrderDetail, status_code=201)
async def create_counter_order(actor: Cashier, body: CounterOrderCreate) -> OrderDetail:
    """The Native QR code for a pending scan-to-pay receipt of the counter (扫码收款)."""
    placed = await flows.place_counter_order(
        actor, receipt_id=body.receipt_id, provider_name=body.provider
    )
    assert actor.tenant_id is not None
    return await _order_detail(actor.tenant_id, placed.order.id)


# --- the resident's orders -----------------------------------------------------------------------


@router.post("/me/orders", response_model=OrderDetail, status_code=201)
async def create_my_order(actor: Resident, body: ResidentOrderCreate) -> OrderDetail:
    """Pay selected bills of one's own house (or top up its prepaid balance)."""
    async with unit_of_work() as session:
        await service.check_resident_house(
            session, actor, company_id=body.company_id, house_id=body.house_id
        )
    placed = await flows.place_order(
        service.acting_in(actor, body.company_id),
        tenant_id=body.company_id,
        house_id=body.house_id,
        provider_name=body.provider,
        channel=body.channel,
        bill_ids=body.bill_ids,
        top_up_cents=body.top_up_cents,
        payer_id=body.payer_id,
        return_url=body.return_url,
    )
    return await _order_detail(body.company_id, placed.order.id, return_url=body.return_url)


@router.get("/me/orders/{company_id}/{order_id}", response_model=OrderDetail)
async def get_my_order(
    actor: Resident, company_id: uuid.UUID, order_id: uuid.UUID, refresh: bool = False
) -> OrderDetail:
    """The order's state; ``refresh=true`` (the payer's "I paid") asks the provider first."""
    async with unit_of_work() as session:
        order, lines = await service.my_order(
            session, actor, company_id=company_id, order_id=order_id
        )
    if refresh:
        await flows.refresh_order(company_id, order.id)
        return await _order_detail(company_id, order.id)
    return _detail(order, lines)


# --- notifications from the providers ------------------------------------------------------------


@router.post(
    "/notify/{provider}/{merchant_account_id}",
    response_class=Response,
    include_in_schema=True,
    responses={200: {"content": {"application/json": {}, "text/plain": {}}}},
)
async def notify(
    _: Anyone, request: Request, provider: str, merchant_account_id: uuid.UUID
) -> Response:
    """Where WeChat Pay / Alipay post payment and refund notifications. Public: the
    gateway verifies the provider's signature; anything not genuine is refused."""
    body = await request.body()
    result = await flows.handle_notification(
        provider_name=provider,
        account_id=merchant_account_id,
        headers=request.headers,
        body=body,
    )
    if result.answer is None:
        return Response(status_code=404)
    return Response(
        result.answer.body,
        status_code=result.answer.status_code,
        media_type=result.answer.media_type,
    )


@router.post(
    "/notify/{provider}/{merchant_account_id}/verify",
    response_class=Response,
    include_in_schema=False,
)
async def notify_verify_only(
    _: Anyone, request: Request, provider: str, merchant_account_id: uuid.UUID
) -> Response:
    """Benchmarks only (``LINLI_PAYMENTS_BENCH_VERIFY_ENDPOINT``): verify a notification and
    answer, doing nothing else. Not found unless switched on."""
    if not get_payments_settings().bench_verify_endpoint:
        return Response(status_code=404)
    result = await flows.verify_notification(
        provider_name=provider,
        account_id=merchant_account_id,
        headers=request.headers,
        body=await request.body(),
    )
    if result.answer is None:
        return Response(status_code=404)
    return Response(
        result.answer.body,
        status_code=result.answer.status_code,
        media_type=result.answer.media_type,
    )


# --- refunds -------------------------------------------------------------------------------------


@router.post("/orders/{payment_order_id}/refunds", response_model=RefundRead, status_code=201)
async def request_refund(
    actor: RefundRequester, session: DbSession, payment_order_id: uuid.UUID, body: RefundCreate
) -> RefundRead:
    refund = await service.request_refund(
        session,
        actor,
        order_id=payment_order_id,
        amount_cents=body.amount_cents,
        reason=body.reason,
    )
    return RefundRead.model_validate(refund)


@router.get("/refunds", response_model=list[RefundRead])
async def list_refunds(
    actor: Reader, session: DbSession, status: str | None = None, order_id: uuid.UUID | None = None
) -> list[RefundRead]:
    rows = await service.list_refunds(session, actor, status=status, order_id=order_id)
    return [RefundRead.model_validate(refund) for refund, _ in rows]


@router.post("/refunds/{refund_id}/approve", response_model=RefundRead)
async def approve_refund(actor: RefundApprover, refund_id: uuid.UUID) -> RefundRead:
    """Approve: the refund is sent to the provider; bills and ledger are reversed when the
    provider confirms the money went back."""
    return RefundRead.model_validate(await flows.approve_refund(actor, refund_id=refund_id))


@router.post("/refunds/{refund_id}/reject", response_model=RefundRead)
async def reject_refund(
    actor: RefundApprover, session: DbSession, refund_id: uuid.UUID
) -> RefundRead:
    refund = await service.decide_refund(session, actor, refund_id=refund_id, approve=False)
    return RefundRead.model_validate(refund)


# --- exceptions and reconciliation ---------------------------------------------------------------


@router.get("/exceptions", response_model=list[ExceptionRead])
async def list_exceptions(
    actor: Reader, session: DbSession, status: str | None = "open"
) -> list[ExceptionRead]:
    rows = await service.list_exceptions(session, actor, status=status)
    return [ExceptionRead.model_validate(r) for r in rows]


@router.post("/exceptions/{exception_id}/resolve", response_model=ExceptionRead)
async def resolve_exception(
    actor: Reconciler, session: DbSession, exception_id: uuid.UUID, body: ExceptionResolve
) -> ExceptionRead:
    row = await service.resolve_exception(
        session, actor, exception_id=exception_id, resolution=body.resolution
    )
    return ExceptionRead.model_validate(row)


@router.post("/reconciliation-runs", response_model=RunReport, status_code=201)
async def run_reconciliation(actor: Reconciler, body: ReconcileRequest) -> RunReport:
    """Reconcile one merchant account's day now (the daily job does yesterday's)."""
    if body.day > dt.date.today():
        body = ReconcileRequest(merchant_account_id=body.merchant_account_id, day=dt.date.today())
    run_id = await reconcile.reconcile(actor, account_id=body.merchant_account_id, day=body.day)
    assert actor.tenant_id is not None
    async with unit_of_work(actor.tenant_id) as session:
        return _report(await reconcile.report(session, actor, run_id=run_id))


def _report(data: reconcile.RunReport) -> RunReport:
    out = RunReport.model_validate(data.run)
    out.exceptions = [ExceptionRead.model_validate(e) for e in data.exceptions]
    return out


@router.get("/reconciliation-runs", response_model=list[RunRead])
async def list_runs(actor: Reader, session: DbSession) -> list[RunRead]:
    return [RunRead.model_validate(run) for run, _ in await reconcile.list_runs(session, actor)]


@router.get("/reconciliation-runs/{reconciliation_run_id}", response_model=RunReport)
async def get_run(actor: Reader, session: DbSession, reconciliation_run_id: uuid.UUID) -> RunReport:
    return _report(await reconcile.report(session, actor, run_id=reconciliation_run_id))


@router.get(
    "/reconciliation-runs/{reconciliation_run_id}/report.xlsx",
    response_class=Response,
    responses={200: {"content": {XLSX: {}}}},
)
async def run_xlsx(actor: Reader, session: DbSession, reconciliation_run_id: uuid.UUID) -> Response:
    data = await reconcile.report(session, actor, run_id=reconciliation_run_id)
    return Response(
        reconcile.report_xlsx(data),
        media_type=XLSX,
        headers={
            "Content-Disposition": f'attachment; filename="reconciliation-{data.run.day}.xlsx"'
        },
    )
