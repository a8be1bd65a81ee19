"""Console and portal pages of online payments: orders, refunds with approval, exceptions,
reconciliation reports, merchant accounts; the cashier's scan-to-pay QR; the resident's
"pay selected bills" page. Thin: the payments service and flows do the work."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Annotated, Any

import segno
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import JSONResponse, Response
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession

from linli.auth.actor import Actor
from linli.auth.deps import DeclaredRoute
from linli.auth.permissions import Permission
from linli.billing import service as billing
from linli.billing.money import parse_yuan, yuan
from linli.core.errors import DomainError, FieldError, NotFound, ValidationFailed
from linli.core.pagination import PageParams
from linli.db.engine import set_tenant
from linli.payments import flows, reconcile, service
from linli.payments.gateway import Channel
from linli.payments.models import (
    OPEN_STATUSES,
    PAID_STATUSES,
    ExceptionKind,
    OrderStatus,
    PaymentOrder,
    RefundStatus,
)
from linli.web import nav
from linli.web.forms import optional_uuid
from linli.web.nav import N_
from linli.web.pages import (
    PlatformDb,
    ResidentActor,
    StaffDb,
    _portal_context,
    console_shell,
    staff,
)
from linli.web.session import ConsoleCsrf, PortalCsrf, describe
from linli.web.templating import redirect, render

router = APIRouter(route_class=DeclaredRoute, include_in_schema=False)

nav.register(
    nav.NavItem(
        "payments", N_("Online payments"), "/console/payments", Permission.PAYMENTS_READ, "card", 43
    )
)
nav.register_tile(nav.PortalTile("pay-online", N_("Pay online"), "card", "/portal/payments", 11))

STATUS_LABELS = {
    OrderStatus.CREATED.value: N_("Created"),
    OrderStatus.PAYING.value: N_("Waiting for payment"),
    OrderStatus.PAID.value: N_("Paid"),
    OrderStatus.CLOSED.value: N_("Closed"),
    OrderStatus.FAILED.value: N_("Failed"),
    OrderStatus.PARTIALLY_REFUNDED.value: N_("Partly refunded"),
    OrderStatus.REFUNDED.value: N_("Refunded"),
}
REFUND_LABELS = {
    RefundStatus.REQUESTED.value: N_("Waiting for approval"),
    RefundStatus.REJECTED.value: N_("Rejected"),
    RefundStatus.PROCESSING.value: N_("Processing"),
    RefundStatus.SUCCEEDED.value: N_("Refunded"),
    RefundStatus.FAILED.value: N_("Failed"),
}
EXCEPTION_LABELS = {
    ExceptionKind.AMOUNT_MISMATCH.value: N_("Amount differs from the order"),
    ExceptionKind.MERCHANT_MISMATCH.value: N_("Another merchant's trade"),
    ExceptionKind.UNKNOWN_ORDER.value: N_("Unknown order"),
    ExceptionKind.NOT_POSTABLE.value: N_("Paid, bills settled meanwhile"),
    ExceptionKind.PAID_NOT_POSTED.value: N_("Paid there, not posted here (posted now)"),
    ExceptionKind.MISSING_AT_PROVIDER.value: N_("Paid here, missing at the provider"),
    ExceptionKind.BILL_AMOUNT_MISMATCH.value: N_("Amount differs in the provider's bill"),
    ExceptionKind.REFUND_MISMATCH.value: N_("Refund differs or unknown"),
}
PROVIDER_LABELS = {"wechatpay": N_("WeChat Pay"), "alipay": N_("Alipay")}
PURPOSE_LABELS = {"bills": N_("Bills"), "top_up": N_("Prepaid top-up"), "counter": N_("Counter")}

FormText = Annotated[str, Form(max_length=200)]
Reader = Annotated[Actor, staff(Permission.PAYMENTS_READ)]
MerchantAdmin = Annotated[Actor, staff(Permission.PAYMENTS_MERCHANTS)]
Cashier = Annotated[Actor, staff(Permission.CASHIER)]
RefundRequester = Annotated[Actor, staff(Permission.PAYMENTS_REFUND_REQUEST)]
RefundApprover = Annotated[Actor, staff(Permission.PAYMENTS_REFUND_APPROVE)]
Reconciler = Annotated[Actor, staff(Permission.PAYMENTS_RECONCILE)]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _must(raw: str) -> uuid.UUID:
    value = optional_uuid(raw)
    if value is None:
        raise NotFound()
    return value


def _cents(raw: str, field_name: str) -> int:
    try:
        return parse_yuan(raw)
    except ValueError as exc:
        raise ValidationFailed(
            errors=[FieldError(field_name, "Write an amount like 1234.56.", "invalid_amount")]
        ) from exc


def qr_svg(text: str) -> Markup:
    code = segno.make(text, error="m")
    return Markup(code.svg_inline(scale=5, border=2, dark="#111", light="#fff"))  # noqa: S704


def _common() -> dict[str, Any]:
    return {
        "yuan": yuan,
        "status_labels": STATUS_LABELS,
        "refund_labels": REFUND_LABELS,
        "exception_labels": EXCEPTION_LABELS,
        "provider_labels": PROVIDER_LABELS,
        "purpose_labels": PURPOSE_LABELS,
    }


def _error(exc: DomainError) -> dict[str, Any]:
    return describe(exc) | {"status": exc.status}


# --- orders ----------------------------------------------------------------------------------


@router.get("/console/payments", name="console.payments")
async def orders_page(
    request: Request,
    actor: Reader,
    session: StaffDb,
    status: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    shell = await console_shell(request, session, actor)
    community = shell["current_community"]
    rows, _ = await service.list_orders(
        session,
        actor,
        page=PageParams(limit=100),
        community_id=community.id if community else None,
        status=status or None,
    )
    return render(
        request,
        "payments/orders.html",
        shell | _common() | {"orders": rows, "status": status, "statuses": list(OrderStatus)},
    )


async def _order_page(
    request: Request,
    actor: Actor,
    session: AsyncSession,
    order_id: uuid.UUID,
    error: dict[str, Any] | None = None,
) -> Response:
    shell = await console_shell(request, session, actor)
    order = await service.get_order(session, actor, order_id=order_id)
    refunds = await service.list_refunds(session, actor, order_id=order.id)
    return render(
        request,
        "payments/order.html",
        shell
        | _common()
        | {
            "order": order,
            "lines": await service.order_lines(session, order.id),
            "refunds": [r for r, _ in refunds],
            "can_refund": actor.can(Permission.PAYMENTS_REFUND_REQUEST)
            and order.status in PAID_STATUSES
            and order.refunded_cents < order.paid_cents,
            "error": error,
        },
        status_code=error["status"] if error else 200,
    )


@router.get("/console/payments/orders/{order_id}", name="console.payments.order")
async def order_page(request: Request, actor: Reader, session: StaffDb, order_id: str) -> Response:
    return await _order_page(request, actor, session, _must(order_id))


@router.get("/console/payments/orders/{order_id}/status")
async def order_status(actor: Reader, order_id: str) -> JSONResponse:
    """Polled by the counter's QR page: asks the provider while the order is open."""
    assert actor.tenant_id is not None
    found = _must(order_id)
    async with _scoped(actor) as session:
        order = await service.get_order(session, actor, order_id=found)
    if order.status in OPEN_STATUSES:
        order = await flows.refresh_order(actor.tenant_id, order.id)
    return JSONResponse(
        {
            "status": order.status,
            "paid": order.status in PAID_STATUSES,
            "receipt_id": str(order.receipt_id),
        }
    )


def _scoped(actor: Actor) -> Any:
    from linli.db.engine import unit_of_work

    return unit_of_work(actor.tenant_id)


@router.post("/console/payments/orders/{order_id}/refunds", dependencies=[ConsoleCsrf])
async def request_refund(
    request: Request,
    actor: RefundRequester,
    session: StaffDb,
    order_id: str,
    amount: FormText,
    reason: FormText,
) -> Response:
    found = _must(order_id)
    try:
        async with session.begin_nested():
            await service.request_refund(
                session,
                actor,
                order_id=found,
                amount_cents=_cents(amount, "amount"),
                reason=reason,
            )
    except DomainError as exc:
        return await _order_page(request, actor, session, found, error=_error(exc))
    return redirect(request, f"/console/payments/orders/{found}")


# --- refunds ---------------------------------------------------------------------------------


@router.get("/console/payments/refunds", name="console.payments.refunds")
async def refunds_page(request: Request, actor: Reader, session: StaffDb) -> Response:
    shell = await console_shell(request, session, actor)
    rows = await service.list_refunds(session, actor)
    return render(
        request,
        "payments/refunds.html",
        shell
        | _common()
        | {
            "rows": [
                {"refund": r, "order": o, "mine": r.requested_by == actor.id} for r, o in rows
            ],
            "can_approve": actor.can(Permission.PAYMENTS_REFUND_APPROVE),
        },
    )


@router.post("/console/payments/refunds/{refund_id}/decision", dependencies=[ConsoleCsrf])
async def decide_refund(
    request: Request, actor: RefundApprover, refund_id: str, approve: FormText = ""
) -> Response:
    found = _must(refund_id)
    if approve == "yes":
        await flows.approve_refund(actor, refund_id=found)
    else:
        async with _scoped(actor) as session:
            await service.decide_refund(session, actor, refund_id=found, approve=False)
    return redirect(request, "/console/payments/refunds")


# --- exceptions ------------------------------------------------------------------------------


@router.get("/console/payments/exceptions", name="console.payments.exceptions")
async def exceptions_page(
    request: Request,
    actor: Reader,
    session: StaffDb,
    status: Annotated[str, Query(max_length=20)] = "open",
) -> Response:
    shell = await console_shell(request, session, actor)
    rows = await service.list_exceptions(session, actor, status=status or None)
    return render(
        request,
        "payments/exceptions.html",
        shell
        | _common()
        | {
            "rows": rows,
            "status": status,
            "can_resolve": actor.can(Permission.PAYMENTS_RECONCILE),
        },
    )


@router.post("/console/payments/exceptions/{exception_id}/resolve", dependencies=[ConsoleCsrf])
async def resolve_exception(
    request: Request, actor: Reconciler, session: StaffDb, exception_id: str, resolution: FormText
) -> Response:
    await service.resolve_exception(
        session, actor, exception_id=_must(exception_id), resolution=resolution
    )
    return redirect(request, "/console/payments/exceptions")


# --- reconciliation --------------------------------------------------------------------------


@router.get("/console/payments/reconciliation", name="console.payments.reconciliation")
async def reconciliation_page(request: Request, actor: Reader, session: StaffDb) -> Response:
    shell = await console_shell(request, session, actor)
    runs = await reconcile.list_runs(session, actor)
    accounts = await service.list_merchant_accounts(session, actor)
    yesterday = dt.datetime.now(reconcile.CHINA).date() - dt.timedelta(days=1)
    return render(
        request,
        "payments/reconciliation.html",
        shell
        | _common()
        | {
            "runs": runs,
            "accounts": [a for a in accounts if a.active],
            "yesterday": yesterday,
            "can_run": actor.can(Permission.PAYMENTS_RECONCILE),
        },
    )


@router.post("/console/payments/reconciliation", dependencies=[ConsoleCsrf])
async def run_reconciliation(
    request: Request, actor: Reconciler, account_id: FormText, day: FormText
) -> Response:
    try:
        when = dt.date.fromisoformat(day)
    except ValueError:
        raise ValidationFailed(
            errors=[FieldError("day", "Choose a day.", "invalid_date")]
        ) from None
    run_id = await reconcile.reconcile(actor, account_id=_must(account_id), day=when)
    return redirect(request, f"/console/payments/reconciliation/{run_id}")


@router.get("/console/payments/reconciliation/{run_id}", name="console.payments.run")
async def run_page(request: Request, actor: Reader, session: StaffDb, run_id: str) -> Response:
    shell = await console_shell(request, session, actor)
    data = await reconcile.report(session, actor, run_id=_must(run_id))
    return render(request, "payments/run.html", shell | _common() | {"report": data})


@router.get("/console/payments/reconciliation/{run_id}/report.xlsx")
async def run_xlsx(actor: Reader, session: StaffDb, run_id: str) -> Response:
    data = await reconcile.report(session, actor, run_id=_must(run_id))
    return Response(
        reconcile.report_xlsx(data),
        media_type=XLSX,
        headers={
            "Content-Disposition": f'attachment; filename="reconciliation-{data.run.day}.xlsx"'
        },
    )


# --- merchant accounts -----------------------------------------------------------------------


async def _merchants_page(
    request: Request, actor: Actor, session: AsyncSession, error: dict[str, Any] | None = None
) -> Response:
    shell = await console_shell(request, session, actor)
    return render(
        request,
        "payments/merchants.html",
        shell
        | _common()
        | {
            "accounts": await service.list_merchant_accounts(session, actor),
            "providers": service.provider_names(),
            "error": error,
        },
        status_code=error["status"] if error else 200,
    )


@router.get("/console/payments/merchants", name="console.payments.merchants")
async def merchants_page(request: Request, actor: MerchantAdmin, session: StaffDb) -> Response:
    return await _merchants_page(request, actor, session)


@router.post("/console/payments/merchants", dependencies=[ConsoleCsrf])
async def create_merchant(
    request: Request,
    actor: MerchantAdmin,
    session: StaffDb,
    community_id: FormText,
    provider: FormText,
    config: Annotated[str, Form(max_length=20000)],
    name: FormText = "",
) -> Response:
    try:
        try:
            parsed = json.loads(config)
            if not isinstance(parsed, dict):
                raise ValueError
        except ValueError:
            raise ValidationFailed(
                "The configuration must be a JSON object.",
                code="invalid_config",
                errors=[FieldError("config", "Paste the JSON configuration.", "invalid_config")],
            ) from None
        async with session.begin_nested():
            await service.create_merchant_account(
                session,
                actor,
                community_id=_must(community_id),
                provider_name=provider,
                config=parsed,
                name=name,
            )
    except DomainError as exc:
        return await _merchants_page(request, actor, session, error=_error(exc))
    return redirect(request, "/console/payments/merchants")


@router.post("/console/payments/merchants/{account_id}/deactivate", dependencies=[ConsoleCsrf])
async def deactivate_merchant(
    request: Request, actor: MerchantAdmin, session: StaffDb, account_id: str
) -> Response:
    await service.deactivate_merchant_account(session, actor, account_id=_must(account_id))
    return redirect(request, "/console/payments/merchants")


# --- the cashier's scan-to-pay QR ------------------------------------------------------------


@router.get("/console/payments/counter/{receipt_id}", name="console.payments.counter")
async def counter_page(
    request: Request,
    actor: Cashier,
    session: StaffDb,
    receipt_id: str,
    provider: Annotated[str, Query(max_length=20)] = "wechatpay",
) -> Response:
    """The Native QR code of a pending scan-to-pay receipt; the page polls until paid."""
    shell = await console_shell(request, session, actor)
    error: dict[str, Any] | None = None
    order: PaymentOrder | None = None
    try:
        placed = await flows.place_counter_order(
            actor, receipt_id=_must(receipt_id), provider_name=provider
        )
        order = placed.order
    except DomainError as exc:
        error = _error(exc)
    qr = str(order.prepay.get("qr_content", "")) if order else ""
    return render(
        request,
        "payments/counter.html",
        shell
        | _common()
        | {
            "order": order,
            "receipt_id": receipt_id,
            "qr": qr_svg(qr) if qr else None,
            "sandbox_url": service.sandbox_pay_url(order) if order else "",
            "providers": service.provider_names(),
            "error": error,
        },
        status_code=error["status"] if error else 200,
    )


# --- the resident portal ---------------------------------------------------------------------


async def _payable(session: AsyncSession, actor: Actor) -> list[dict[str, Any]]:
    """The resident's houses with their open bills (late fees as of today), per company."""
    from linli.residents import service as residents

    homes, _ = await residents.my_homes(session, actor)
    houses: list[dict[str, Any]] = []
    try:
        for home in homes:
            await set_tenant(session, home.company_id)
            account = await billing.house_account(
                session, Actor.system(home.company_id), house_id=home.house_id
            )
            houses.append(
                {
                    "company_id": home.company_id,
                    "house_id": home.house_id,
                    "label": "-".join(
                        p for p in (home.building_no, home.unit_no, home.house_no) if p
                    ),
                    "community_name": home.community_name,
                    "bills": account.bills,
                    "providers": await service.community_providers(session, account.community_id),
                }
            )
    finally:
        await set_tenant(session, None)
    return houses


async def _portal_pay_page(
    request: Request,
    actor: Actor,
    session: AsyncSession,
    error: dict[str, Any] | None = None,
) -> Response:
    context = await _portal_context(request, session, actor)
    return render(
        request,
        "payments/portal_pay.html",
        context
        | _common()
        | {
            "houses": await _payable(session, actor),
            "error": error,
        },
        status_code=error["status"] if error else 200,
    )


@router.get("/portal/payments", name="portal.payments")
async def portal_pay(request: Request, actor: ResidentActor, session: PlatformDb) -> Response:
    return await _portal_pay_page(request, actor, session)


@router.post("/portal/payments", dependencies=[PortalCsrf])
async def portal_create_order(
    request: Request,
    actor: ResidentActor,
    session: PlatformDb,
    house: FormText,
    provider: FormText = "wechatpay",
    top_up: FormText = "",
) -> Response:
    """Pay the checked bills of one house (or top up): to the provider's page (in the demo,
    the sandbox's pay page), which sends the payer back to the result page."""
    form = await request.form()
    try:
        company_id, _, house_id = house.partition(":")
        company, home = _must(company_id), _must(house_id)
        bill_ids = [b for b in (optional_uuid(str(v)) for v in form.getlist("bill_ids")) if b]
        top_up_cents = _cents(top_up, "top_up") if top_up.strip() and not bill_ids else 0
        await service.check_resident_house(session, actor, company_id=company, house_id=home)
        channel = Channel.WAP if provider == "alipay" else Channel.NATIVE
        base = str(request.base_url).rstrip("/")
        placed = await flows.place_order(
            service.acting_in(actor, company),
            tenant_id=company,
            house_id=home,
            provider_name=provider,
            channel=channel,
            bill_ids=bill_ids,
            top_up_cents=top_up_cents,
            return_url=f"{base}/portal/payments/return/{company}",
        )
    except DomainError as exc:
        return await _portal_pay_page(request, actor, session, error=_error(exc))
    result = f"{base}/portal/payments/orders/{company}/{placed.order.id}"
    target = service.sandbox_pay_url(placed.order, return_url=result)
    if not target and placed.order.prepay.get("redirect_url"):
        target = str(placed.order.prepay["redirect_url"])
    return redirect(request, target or result)


@router.get("/portal/payments/return/{company_id}")
async def portal_return(
    request: Request,
    actor: ResidentActor,
    session: PlatformDb,
    company_id: str,
    out_trade_no: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """Where a provider's H5 cashier sends the payer back (it names the order number)."""
    company = _must(company_id)
    order, _ = await service.my_order(session, actor, company_id=company, out_trade_no=out_trade_no)
    return redirect(request, f"/portal/payments/orders/{company}/{order.id}")


@router.get("/portal/payments/orders/{company_id}/{order_id}", name="portal.payments.order")
async def portal_order(
    request: Request, actor: ResidentActor, session: PlatformDb, company_id: str, order_id: str
) -> Response:
    """The payer is back ("I paid") or waiting: ask the provider, show the result."""
    company = _must(company_id)
    order, lines = await service.my_order(
        session, actor, company_id=company, order_id=_must(order_id)
    )
    if order.status in OPEN_STATUSES:
        order = await flows.refresh_order(company, order.id)
    context = await _portal_context(request, session, actor)
    qr = str(order.prepay.get("qr_content", "")) if order.status in OPEN_STATUSES else ""
    return render(
        request,
        "payments/portal_order.html",
        context
        | _common()
        | {
            "order": order,
            "lines": lines,
            "company_id": company,
            "open": order.status in OPEN_STATUSES,
            "paid": order.status in PAID_STATUSES,
            "qr": qr_svg(qr) if qr else None,
            "sandbox_url": service.sandbox_pay_url(order, return_url=str(request.url)),
        },
    )
