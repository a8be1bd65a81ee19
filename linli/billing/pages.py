"""Console and portal pages of billing: fee items, billing runs, the cashier counter, shifts,
reports; the resident's bills and receipts. Thin: the billing service does the work."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response

from linli.auth.actor import Actor
from linli.auth.deps import DeclaredRoute
from linli.auth.permissions import Permission
from linli.billing import meter_import, pdf, reports, service
from linli.billing.models import (
    AdjustmentKind,
    AdjustmentStatus,
    FeeCycle,
    FeeKind,
    MeterFlag,
    MeterImportStatus,
    ReceiptStatus,
    RunStatus,
    TenderMethod,
)
from linli.billing.money import capitals, parse_yuan, yuan
from linli.core.errors import DomainError, FieldError, NotFound, ValidationFailed
from linli.core.idempotency import Idempotency
from linli.core.pagination import PageParams
from linli.estate import service as estate
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
from linli.web.session import ConsoleCsrf, describe
from linli.web.templating import redirect, render

router = APIRouter(route_class=DeclaredRoute, include_in_schema=False)

nav.register(
    nav.NavItem("billing", N_("Billing"), "/console/billing", Permission.BILLING_READ, "card", 40)
)
nav.register(
    nav.NavItem(
        "cashier", N_("Cashier counter"), "/console/billing/cashier", Permission.CASHIER, "card", 41
    )
)
nav.register(
    nav.NavItem(
        "billing-reports",
        N_("Arrears and reports"),
        "/console/billing/reports",
        Permission.BILLING_READ,
        "list",
        42,
    )
)
nav.register_tile(nav.PortalTile("fees", N_("Pay fees"), "card", "/portal/fees", 10))

KIND_LABELS = {
    FeeKind.AREA.value: N_("Per m² of building area"),
    FeeKind.FIXED.value: N_("Fixed monthly"),
    FeeKind.METERED.value: N_("Metered (tiered)"),
    FeeKind.PARKING.value: N_("Parking space"),
    FeeKind.ONE_OFF.value: N_("One-off"),
}
RUN_LABELS = {
    RunStatus.QUEUED.value: N_("Queued"),
    RunStatus.RUNNING.value: N_("Issuing"),
    RunStatus.ISSUED.value: N_("Issued"),
    RunStatus.FAILED.value: N_("Failed"),
    RunStatus.REVERTED.value: N_("Reverted"),
}
METHOD_LABELS = {
    TenderMethod.CASH.value: N_("Cash"),
    TenderMethod.CARD.value: N_("Bank card"),
    TenderMethod.TRANSFER.value: N_("Bank transfer"),
    TenderMethod.SCAN.value: N_("Scan to pay"),
    TenderMethod.PREPAID.value: N_("Prepaid balance"),
}
RECEIPT_LABELS = {
    ReceiptStatus.PAID.value: N_("Paid"),
    ReceiptStatus.PENDING.value: N_("Waiting for payment"),
    ReceiptStatus.VOIDED.value: N_("Voided"),
}
FormText = Annotated[str, Form(max_length=200)]
Money = Annotated[str, Form(max_length=20)]
Reader = Annotated[Actor, staff(Permission.BILLING_READ)]
Configurer = Annotated[Actor, staff(Permission.BILLING_CONFIGURE)]
RunManager = Annotated[Actor, staff(Permission.BILLING_RUNS)]
Cashier = Annotated[Actor, staff(Permission.CASHIER)]
Voider = Annotated[Actor, staff(Permission.RECEIPTS_VOID)]


def _must(raw: str, message: str = "Not found.") -> uuid.UUID:
    value = optional_uuid(raw)
    if value is None:
        raise NotFound(message)
    return value


def _cents(raw: str, field_name: str) -> int:
    if not raw.strip():
        return 0
    try:
        return parse_yuan(raw)
    except ValueError as exc:
        raise ValidationFailed(
            errors=[FieldError(field_name, "Write an amount like 1234.56.", "invalid_amount")]
        ) from exc


def _common() -> dict[str, Any]:
    return {
        "yuan": yuan,
        "kind_labels": KIND_LABELS,
        "run_labels": RUN_LABELS,
        "method_labels": METHOD_LABELS,
        "receipt_labels": RECEIPT_LABELS,
    }


# --- fee items ---------------------------------------------


@router.get("/console/billing", name="console.billing")
async def fee_items_route(request: Request, actor: Reader, session: StaffDb) -> Response:
    return await fee_items_page(request, actor, session)


async def fee_items_page(
    request: Request, actor: Actor, session: Any, error: dict[str, Any] | None = None
) -> Response:
    shell = await console_shell(request, session, actor)
    community = shell["current_community"]
    items = []
    if community is not None:
        for item in await service.list_fee_items(session, actor, community_id=community.id):
            prices = await service.list_prices(session, actor, fee_item_id=item.id)
            items.append({"item": item, "prices": prices})
    return render(
        request,
        "billing/fee_items.html",
        shell
        | _common()
        | {
            "items": items,
            "kinds": list(FeeKind),
            "cycles": list(FeeCycle),
            "error": error,
            "can_configure": actor.can(Permission.BILLING_CONFIGURE),
            "can_read_meters": actor.can(Permission.METER_READINGS_WRITE),
        },
        status_code=error["status"] if error else 200,
    )


def _page_error(exc: DomainError) -> dict[str, Any]:
    return describe(exc) | {"status": exc.status}


@router.post("/console/billing/fee-items", dependencies=[ConsoleCsrf])
async def create_fee_item(
    request: Request,
    actor: Configurer,
    session: StaffDb,
    code: FormText,
    name: FormText,
    kind: FormText,
    price: Money = "",
    cycle: FormText = "monthly",
    due_days: Annotated[int, Form(ge=0, le=366)] = 30,
) -> Response:
    shell = await console_shell(request, session, actor)
    community = shell["current_community"]
    try:
        if community is None:
            raise NotFound("Choose a community first.")
        async with session.begin_nested():
            item = await service.create_fee_item(
                session,
                actor,
                community_id=community.id,
                code=code,
                name=name,
                kind=FeeKind(kind) if kind in set(FeeKind) else FeeKind.FIXED,
                cycle=FeeCycle(cycle) if cycle in set(FeeCycle) else FeeCycle.MONTHLY,
                due_days=due_days,
            )
            if price.strip():
                await service.add_price(
                    session,
                    actor,
                    fee_item_id=item.id,
                    effective_from=dt.date(2000, 1, 1),
                    unit_price=Decimal(_cents(price, "price")),
                )
    except DomainError as exc:
        return await fee_items_page(request, actor, session, error=_page_error(exc))
    return redirect(request, "/console/billing")


@router.post("/console/billing/fee-items/{fee_item_id}/prices", dependencies=[ConsoleCsrf])
async def add_price(
    request: Request,
    actor: Configurer,
    session: StaffDb,
    fee_item_id: str,
    effective_from: Annotated[dt.date, Form()],
    price: Money,
    variant: FormText = "",
) -> Response:
    try:
        try:
            cents = Decimal(price.strip()) * 100
        except InvalidOperation as exc:
            raise ValidationFailed(
                errors=[FieldError("price", "Write an amount like 1234.56.", "invalid_amount")]
            ) from exc
        async with session.begin_nested():
            await service.add_price(
                session,
                actor,
                fee_item_id=_must(fee_item_id),
                effective_from=effective_from,
                unit_price=cents,
                variant=variant or None,
            )
    except DomainError as exc:
        return await fee_items_page(request, actor, session, error=_page_error(exc))
    return redirect(request, "/console/billing")


# --- billing runs ---------------------------------------------


@router.get("/console/billing/runs", name="console.billing.runs")
async def runs_page(
    request: Request,
    actor: Reader,
    session: StaffDb,
    period: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    shell = await console_shell(request, session, actor)
    community = shell["current_community"]
    preview = None
    error = None
    chosen = None
    runs: list[Any] = []
    if community is not None:
        runs, _ = await service.list_runs(
            session, actor, community_id=community.id, page=PageParams(limit=50)
        )
        runs.sort(key=lambda r: r.period_start, reverse=True)
        if period and actor.can(Permission.BILLING_RUNS):
            try:
                chosen = dt.date.fromisoformat(period[:7] + "-01")
                preview = await service.preview_run(
                    session, actor, community_id=community.id, period=chosen
                )
                names = {i.id: i.name for i in await service.list_fee_items(session, actor)}
                preview.by_item = {names.get(k, str(k)): v for k, v in preview.by_item.items()}  # type: ignore[misc]
            except ValueError:
                error = {"message": "", "fields": {"period": "YYYY-MM"}}
            except DomainError as exc:
                error = describe(exc)
    return render(
        request,
        "billing/runs.html",
        shell
        | _common()
        | {
            "runs": runs,
            "preview": preview,
            "period": chosen,
            "error": error,
            "can_run": actor.can(Permission.BILLING_RUNS),
        },
    )


@router.post("/console/billing/runs", dependencies=[ConsoleCsrf])
async def start_run(
    request: Request,
    actor: RunManager,
    session: StaffDb,
    period: Annotated[dt.date, Form()],
) -> Response:
    shell = await console_shell(request, session, actor)
    community = shell["current_community"]
    if community is None:
        raise NotFound("Choose a community first.")
    run, _ = await service.start_run(session, actor, community_id=community.id, period=period)
    return redirect(request, f"/console/billing/runs/{run.id}")


@router.get("/console/billing/runs/{run_id}", name="console.billing.run")
async def run_page(request: Request, actor: Reader, session: StaffDb, run_id: str) -> Response:
    shell = await console_shell(request, session, actor)
    run = await service.get_run(session, actor, run_id=_must(run_id))
    busy = run.status in (RunStatus.QUEUED.value, RunStatus.RUNNING.value)
    progress = run.done_chunks / run.total_chunks if run.total_chunks else (0.0 if busy else 1.0)
    return render(
        request,
        "billing/run.html",
        shell
        | _common()
        | {
            "run": run,
            "busy": busy,
            "progress": progress,
            "can_run": actor.can(Permission.BILLING_RUNS),
        },
    )


@router.get("/console/billing/runs/{run_id}/progress")
async def run_progress(actor: Reader, session: StaffDb, run_id: str) -> JSONResponse:
    run = await service.get_run(session, actor, run_id=_must(run_id))
    return JSONResponse(
        {
            "status": run.status,
            "done_chunks": run.done_chunks,
            "total_chunks": run.total_chunks,
            "bill_count": run.bill_count,
            "total_cents": run.total_cents,
        }
    )


@router.post("/console/billing/runs/{run_id}/revert", dependencies=[ConsoleCsrf])
async def revert_run(
    request: Request, actor: RunManager, session: StaffDb, run_id: str
) -> Response:
    await service.revert_run(session, actor, run_id=_must(run_id))
    return redirect(request, f"/console/billing/runs/{run_id}")


# --- the cashier counter ---------------------------------------------


@router.get("/console/billing/cashier", name="console.cashier")
async def cashier_route(
    request: Request,
    actor: Cashier,
    session: StaffDb,
    q: Annotated[str, Query(max_length=40)] = "",
    house: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    return await cashier_page(request, actor, session, q=q, house=house)


async def cashier_page(
    request: Request,
    actor: Actor,
    session: Any,
    *,
    q: str = "",
    house: str = "",
    error: dict[str, Any] | None = None,
) -> Response:
    shell = await console_shell(request, session, actor)
    community = shell["current_community"]
    hits: list[service.HouseHit] = []
    search_error = None
    if q.strip():
        try:
            hits = await service.find_houses(
                session, actor, q=q, community_id=community.id if community else None
            )
        except DomainError as exc:
            search_error = describe(exc)
    account = None
    label = ""
    chosen = optional_uuid(house) or (hits[0].house_id if len(hits) == 1 else None)
    if chosen is not None:
        account = await service.house_account(session, actor, house_id=chosen)
        label = await service.house_label(session, actor, chosen)
    return render(
        request,
        "billing/cashier.html",
        shell
        | _common()
        | {
            "query": q,
            "hits": hits,
            "search_error": search_error,
            "account": account,
            "house_label": label,
            "shift": await service.current_shift(session, actor),
            "payment_key": uuid.uuid4().hex,
            "can_adjust": actor.can(Permission.ADJUSTMENTS_REQUEST),
            "error": error,
        },
        status_code=error["status"] if error else 200,
    )


@router.post("/console/billing/shift/open", dependencies=[ConsoleCsrf])
async def open_shift(
    request: Request, actor: Cashier, session: StaffDb, opening_float: Money = ""
) -> Response:
    shell = await console_shell(request, session, actor)
    community = shell["current_community"]
    if community is None:
        raise NotFound("Choose a community first.")
    try:
        async with session.begin_nested():
            await service.open_shift(
                session,
                actor,
                community_id=community.id,
                opening_float_cents=_cents(opening_float, "opening_float"),
            )
    except DomainError as exc:
        return await cashier_page(request, actor, session, error=_page_error(exc))
    return redirect(request, "/console/billing/cashier")


@router.post("/console/billing/pay", dependencies=[ConsoleCsrf])
async def pay(
    request: Request,
    actor: Cashier,
    session: StaffDb,
    house_id: FormText,
    payment_key: FormText,
    cash: Money = "",
    card: Money = "",
    card_ref: FormText = "",
    transfer: Money = "",
    transfer_ref: FormText = "",
    scan: Money = "",
    payer_name: FormText = "",
) -> Response:
    """Take a payment from the counter form; the form's one-time key makes a double
    click (or a resubmitted page) replay the first receipt instead of paying twice."""
    form = await request.form()
    bill_ids = [
        b for b in (optional_uuid(str(v)) for v in form.getlist("bill_ids")) if b is not None
    ]
    house = _must(house_id)
    try:
        tenders = [
            service.Tender(method, cents, reference)
            for method, cents, reference in (
                (TenderMethod.CASH, _cents(cash, "cash"), ""),
                (TenderMethod.CARD, _cents(card, "card"), card_ref),
                (TenderMethod.TRANSFER, _cents(transfer, "transfer"), transfer_ref),
                (TenderMethod.SCAN, _cents(scan, "scan"), ""),
            )
            if cents
        ]
        digest = hashlib.sha256(
            json.dumps(
                sorted((k, str(v)) for k, v in form.multi_items() if k != "csrf_token")
            ).encode()
        ).hexdigest()

        async def take() -> dict[str, str]:
            receipt = await service.take_payment(
                session,
                actor,
                house_id=house,
                tenders=tenders,
                bill_ids=bill_ids or None,
                payer_name=payer_name,
            )
            return {"receipt_id": str(receipt.id)}

        async with session.begin_nested():
            result = await Idempotency(f"page-pay-{payment_key}", digest).run(session, actor, take)
    except DomainError as exc:
        return await cashier_page(request, actor, session, house=str(house), error=_page_error(exc))
    if isinstance(result, Response):
        result = json.loads(bytes(result.body))
    return redirect(request, f"/console/billing/receipts/{result['receipt_id']}")


@router.get("/console/billing/receipts/{receipt_id}", name="console.receipt")
async def receipt_page(
    request: Request, actor: Reader, session: StaffDb, receipt_id: str
) -> Response:
    shell = await console_shell(request, session, actor)
    view = await service.receipt_view(session, actor, receipt_id=_must(receipt_id))
    return render(
        request,
        "billing/receipt.html",
        shell
        | _common()
        | {
            "view": view,
            "capitals": capitals(view.receipt.amount_cents),
            "can_void": actor.can(Permission.RECEIPTS_VOID),
        },
    )


@router.get("/console/billing/receipts/{receipt_id}/pdf")
async def receipt_pdf(actor: Reader, session: StaffDb, receipt_id: str) -> Response:
    view = await service.receipt_view(session, actor, receipt_id=_must(receipt_id))
    if view.receipt.receipt_no is None:
        raise NotFound("This receipt is not paid yet.")
    return Response(
        pdf.receipt_pdf(view),
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="receipt-{pdf.receipt_number(view)}.pdf"'
        },
    )


@router.post("/console/billing/receipts/{receipt_id}/void", dependencies=[ConsoleCsrf])
async def void_receipt(
    request: Request, actor: Voider, session: StaffDb, receipt_id: str, reason: FormText = ""
) -> Response:
    await service.void_receipt(session, actor, receipt_id=_must(receipt_id), reason=reason)
    return redirect(request, f"/console/billing/receipts/{receipt_id}")


@router.get("/console/billing/shift", name="console.shift")
async def shift_page(
    request: Request, actor: Cashier, session: StaffDb, closed: str = ""
) -> Response:
    shell = await console_shell(request, session, actor)
    shift = await service.current_shift(session, actor)
    report = None
    if shift is not None:
        report = await service.shift_report(session, actor, shift_id=shift.id)
    elif optional_uuid(closed):
        report = await service.shift_report(session, actor, shift_id=_must(closed))
    return render(request, "billing/shift.html", shell | _common() | {"report": report})


@router.post("/console/billing/shift/close", dependencies=[ConsoleCsrf])
async def close_shift(
    request: Request, actor: Cashier, session: StaffDb, counted_cash: Money, note: FormText = ""
) -> Response:
    report = await service.close_shift(
        session, actor, counted_cash_cents=_cents(counted_cash, "counted_cash"), note=note
    )
    return redirect(request, f"/console/billing/shift?closed={report.shift.id}")


# --- adjustments and meter readings ---------------------------------------------


@router.post("/console/billing/adjustments", dependencies=[ConsoleCsrf])
async def request_adjustment(
    request: Request,
    actor: Annotated[Actor, staff(Permission.ADJUSTMENTS_REQUEST)],
    session: StaffDb,
    bill_id: FormText,
    kind: FormText,
    reason: FormText,
    amount: Money = "",
) -> Response:
    """Ask for a credit note or a late-fee waiver on a bill (from the cashier page)."""
    bill = await service.get_bill(session, actor, bill_id=_must(bill_id))
    try:
        async with session.begin_nested():
            await service.request_adjustment(
                session,
                actor,
                bill_id=bill.id,
                kind=AdjustmentKind(kind)
                if kind in set(AdjustmentKind)
                else AdjustmentKind.CREDIT_NOTE,
                amount_cents=_cents(amount, "amount"),
                reason=reason,
            )
    except DomainError as exc:
        return await cashier_page(
            request, actor, session, house=str(bill.house_id), error=_page_error(exc)
        )
    return redirect(request, f"/console/billing/cashier?house={bill.house_id}")


@router.get("/console/billing/adjustments", name="console.adjustments")
async def adjustments_page(request: Request, actor: Reader, session: StaffDb) -> Response:
    shell = await console_shell(request, session, actor)
    rows, _ = await service.list_adjustments(
        session, actor, status=AdjustmentStatus.REQUESTED, page=PageParams(limit=100)
    )
    items = []
    for adjustment in rows:
        bill = await service.get_bill(session, actor, bill_id=adjustment.bill_id)
        items.append(
            {
                "adjustment": adjustment,
                "bill": bill,
                "house": await service.house_label(session, actor, bill.house_id),
                "mine": adjustment.requested_by == actor.id,
            }
        )
    return render(
        request,
        "billing/adjustments.html",
        shell
        | _common()
        | {"items": items, "can_approve": actor.can(Permission.ADJUSTMENTS_APPROVE)},
    )


@router.post("/console/billing/adjustments/{adjustment_id}/decision", dependencies=[ConsoleCsrf])
async def decide_adjustment(
    request: Request,
    actor: Annotated[Actor, staff(Permission.ADJUSTMENTS_APPROVE)],
    session: StaffDb,
    adjustment_id: str,
    approve: FormText = "",
) -> Response:
    await service.decide_adjustment(
        session, actor, adjustment_id=_must(adjustment_id), approve=approve == "yes"
    )
    return redirect(request, "/console/billing/adjustments")


@router.post("/console/billing/meter-readings", dependencies=[ConsoleCsrf])
async def record_reading(
    request: Request,
    actor: Annotated[Actor, staff(Permission.METER_READINGS_WRITE)],
    session: StaffDb,
    fee_item_id: FormText,
    house: FormText,
    read_on: Annotated[dt.date, Form()],
    reading: Money,
    meter_replaced: FormText = "",
) -> Response:
    """Enter one reading (抄表) for a house written as 3-2-1201."""
    try:
        item = await service.get_fee_item(session, actor, fee_item_id=_must(fee_item_id))
        ref = estate.parse_house_ref(house)
        ids = (
            await estate.find_house_ids_by_ref(
                session, actor, ref=ref, community_id=item.community_id
            )
            if ref
            else []
        )
        if len(ids) != 1:
            raise ValidationFailed(
                errors=[FieldError("house", "Write the house as 3-2-1201.", "unknown_house")]
            )
        try:
            value = Decimal(reading.strip())
        except InvalidOperation as exc:
            raise ValidationFailed(
                errors=[FieldError("reading", "Write a number.", "invalid_reading")]
            ) from exc
        async with session.begin_nested():
            await service.record_reading(
                session,
                actor,
                fee_item_id=item.id,
                house_id=ids[0],
                read_on=read_on,
                reading=value,
                meter_replaced=meter_replaced == "yes",
            )
    except DomainError as exc:
        return await fee_items_page(request, actor, session, error=_page_error(exc))
    return redirect(request, "/console/billing")


# --- a house's statement (对账单), from the ledger ---------------------------------------------

STATEMENT_KINDS = {
    "billing_run": N_("Bills"),
    "billing_run_revert": N_("Bills reverted"),
    "charge": N_("Charge"),
    "late_fee": N_("Late fee"),
    "payment": N_("Receipt"),
    "payment_void": N_("Voided receipt"),
    "credit_note": N_("Credit note"),
    "online_refund": N_("Refund"),
}


@router.get("/console/billing/houses/{house_id}/statement", name="console.billing.statement")
async def statement_page(
    request: Request,
    actor: Reader,
    session: StaffDb,
    house_id: str,
    since: Annotated[dt.date | None, Query()] = None,
    until: Annotated[dt.date | None, Query()] = None,
) -> Response:
    statement = await reports.house_statement(
        session, actor, house_id=_must(house_id), since=since, until=until
    )
    shell = await console_shell(request, session, actor)
    return render(
        request,
        "billing/statement.html",
        shell
        | _common()
        | {"statement": statement, "kinds": STATEMENT_KINDS, "since": since, "until": until},
    )


# --- meter readings from a spreadsheet (抄表导入) ---------------------------------------------

MeterWriter = Annotated[Actor, staff(Permission.METER_READINGS_WRITE)]
METER_PAGE = "/console/billing/meters"
MODE_LABELS = {
    meter_import.ImportMode.ALL_OR_NOTHING.value: N_("Import nothing if any row is bad"),
    meter_import.ImportMode.SKIP_BAD_ROWS.value: N_("Import the good rows, skip the bad ones"),
}
FLAG_LABELS = {
    MeterFlag.OK.value: N_("Normal"),
    MeterFlag.JUMP.value: N_("Jump: check before billing"),
    MeterFlag.CONFIRMED.value: N_("Jump confirmed"),
    MeterFlag.METER_REPLACED.value: N_("Meter replaced"),
}
ACTION_LABELS = {
    "create": N_("New"),
    "update": N_("Replaces this month"),
    "unchanged": N_("Unchanged"),
}


def _meter_mapping(raw: str) -> dict[str, str]:
    """``表计 = meter`` per line: the file's header = the field it holds."""
    mapping: dict[str, str] = {}
    for line in raw.splitlines():
        header, _, fieldname = line.replace("＝", "=").partition("=")
        fieldname = fieldname.strip()
        if not header.strip() or not fieldname:
            continue
        if fieldname not in meter_import.HEADER_OF:
            raise ValidationFailed(
                errors=[FieldError("mapping", "Unknown field in the mapping.", "invalid_mapping")]
            )
        mapping[fieldname] = header.strip()
    return mapping


async def _meter_page(
    request: Request,
    actor: Actor,
    session: Any,
    *,
    report: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    mode: str = meter_import.ImportMode.ALL_OR_NOTHING.value,
    mapping: str = "",
) -> Response:
    shell = await console_shell(request, session, actor)
    community = shell["current_community"]
    flagged = (
        await meter_import.flagged_readings(session, actor, community_id=community.id)
        if community is not None
        else []
    )
    return render(
        request,
        "billing/meters.html",
        shell
        | _common()
        | {
            "report": report,
            "error": error,
            "mode": mode,
            "mapping": mapping,
            "modes": MODE_LABELS,
            "flag_labels": FLAG_LABELS,
            "action_labels": ACTION_LABELS,
            "flagged": flagged,
            "columns": meter_import.COLUMNS,
        },
        status_code=error["status"] if error else 200,
    )


@router.get(METER_PAGE, name="console.billing.meters")
async def meters_page(request: Request, actor: MeterWriter, session: StaffDb) -> Response:
    return await _meter_page(request, actor, session)


@router.get(METER_PAGE + "/template.xlsx")
async def meters_template(actor: MeterWriter) -> Response:
    del actor
    return Response(
        meter_import.template_xlsx(),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": 'attachment; filename="meter-readings.xlsx"'},
    )


@router.post(METER_PAGE, dependencies=[ConsoleCsrf])
async def meters_upload(
    request: Request,
    actor: MeterWriter,
    session: StaffDb,
    file: Annotated[UploadFile, File()],
    mode: Annotated[meter_import.ImportMode, Form()] = meter_import.ImportMode.ALL_OR_NOTHING,
    mapping: Annotated[str, Form(max_length=2000)] = "",
    action: Annotated[str, Form(max_length=20)] = "dry_run",
) -> Response:
    """Dry run (the default) or import of a meter-reading spreadsheet, for the community
    the console has selected."""
    shell_community = (await console_shell(request, session, actor))["current_community"]
    try:
        if shell_community is None:
            raise NotFound("Choose a community first.", code="community_not_found")
        data = await meter_import.read_upload(file)
        columns = _meter_mapping(mapping)
        async with session.begin_nested():
            if action == "import":
                job = await meter_import.start_job(
                    session,
                    actor,
                    community_id=shell_community.id,
                    data=data,
                    file_name=file.filename or "upload",
                    mode=mode,
                    mapping=columns,
                )
                return redirect(request, f"{METER_PAGE}/jobs/{job.id}")
            checked = await meter_import.check(
                session, actor, community_id=shell_community.id, data=data, mapping=columns
            )
    except DomainError as exc:
        return await _meter_page(
            request, actor, session, error=_page_error(exc), mode=mode.value, mapping=mapping
        )
    report = {"file_name": file.filename or "upload", "checked": checked}
    return await _meter_page(
        request, actor, session, report=report, mode=mode.value, mapping=mapping
    )


JOB_LABELS = {
    MeterImportStatus.QUEUED.value: N_("Queued"),
    MeterImportStatus.RUNNING.value: N_("Importing"),
    MeterImportStatus.DONE.value: N_("Done"),
    MeterImportStatus.REJECTED.value: N_("Rejected: some rows are bad, nothing was imported"),
    MeterImportStatus.FAILED.value: N_("Failed"),
}


@router.get(METER_PAGE + "/jobs/{job_id}", name="console.billing.meter_job")
async def meter_job_page(
    request: Request, actor: MeterWriter, session: StaffDb, job_id: str
) -> Response:
    job = await meter_import.get_job(session, actor, job_id=_must(job_id))
    shell = await console_shell(request, session, actor)
    return render(
        request,
        "billing/meter_job.html",
        shell
        | {
            "job": job,
            "finished": meter_import.finished(job),
            "progress": meter_import.progress(job),
            "status_label": JOB_LABELS[job.status],
            "mode_label": MODE_LABELS[job.mode],
        },
    )


@router.post("/console/billing/meter-readings/{reading_id}/confirm", dependencies=[ConsoleCsrf])
async def confirm_meter_reading(
    request: Request, actor: MeterWriter, session: StaffDb, reading_id: str
) -> Response:
    await service.confirm_reading(session, actor, reading_id=_must(reading_id))
    return redirect(request, METER_PAGE)


# --- arrears and reports ---------------------------------------------


@router.get("/console/billing/reports", name="console.billing.reports")
async def reports_page(
    request: Request,
    actor: Reader,
    session: StaffDb,
    reminded: Annotated[int | None, Query(ge=0)] = None,
    messages: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    shell = await console_shell(request, session, actor)
    community = shell["current_community"]
    today = service.today()
    aging: list[reports.AgingRow] = []
    dunning: list[reports.DunningRow] = []
    if community is not None:
        aging = await reports.arrears_aging(
            session,
            actor,
            level=reports.AgingLevel.BUILDING,
            community_id=community.id,
            as_of=today,
            limit=30,
        )
        await reports.label_rows(session, actor, aging, reports.AgingLevel.BUILDING)
        dunning = await reports.dunning_list(
            session, actor, community_id=community.id, min_days=30, as_of=today, limit=50
        )
    since = (today - dt.timedelta(days=365)).replace(day=1)
    ledger_allowed = actor.can(Permission.LEDGER_READ)
    collection = income = []
    if ledger_allowed:
        collection = [
            r
            for r in await reports.collection_rate(
                session, actor, since=since, until=today + dt.timedelta(days=1)
            )
            if community is None or r.community_id == community.id
        ]
        income = await reports.income_by_fee_item(
            session,
            actor,
            since=since,
            until=today + dt.timedelta(days=1),
            community_id=community.id if community else None,
        )
    return render(
        request,
        "billing/reports.html",
        shell
        | _common()
        | {
            "aging": aging,
            "buckets": reports.BUCKETS,
            "dunning": dunning,
            "collection": collection,
            "income": income,
            "ledger_allowed": ledger_allowed,
            "reminded": reminded,
            "messages": messages,
            "can_remind": actor.can(Permission.BILLING_RUNS),
            "aging_chart": reports.bar_chart_svg(
                [(f"{r.label}", r.total / 100) for r in aging[:15]], unit=" 元"
            ),
            "collection_chart": reports.bar_chart_svg(
                [(f"{r.month:%Y-%m}", r.rate * 100) for r in collection], unit="%"
            ),
            "income_chart": reports.bar_chart_svg(
                [(r.name, r.cents / 100) for r in income], unit=" 元"
            ),
        },
    )


@router.post("/console/billing/reports/remind", dependencies=[ConsoleCsrf])
async def send_reminders(request: Request, actor: RunManager, session: StaffDb) -> Response:
    shell = await console_shell(request, session, actor)
    community = shell["current_community"]
    if community is None:
        raise NotFound("Choose a community first.")
    houses, messages = await service.send_reminders(session, actor, community_id=community.id)
    return redirect(request, f"/console/billing/reports?reminded={houses}&messages={messages}")


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get("/console/billing/reports/aging.xlsx")
async def aging_xlsx(actor: Reader, session: StaffDb) -> Response:
    rows = await reports.arrears_aging(
        session, actor, level=reports.AgingLevel.HOUSE, as_of=service.today(), limit=10_000
    )
    await reports.label_rows(session, actor, rows, reports.AgingLevel.HOUSE)
    data = reports.to_xlsx(
        "aging",
        ["house", *reports.BUCKETS, "total"],
        [[r.label, *(v / 100 for v in r.buckets.values()), r.total / 100] for r in rows],
    )
    return Response(
        data, media_type=XLSX, headers={"Content-Disposition": 'attachment; filename="aging.xlsx"'}
    )


LedgerReader = Annotated[Actor, staff(Permission.LEDGER_READ)]


def _xlsx(data: bytes, name: str) -> Response:
    return Response(
        data, media_type=XLSX, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.get("/console/billing/reports/collection.xlsx")
async def collection_xlsx(actor: LedgerReader, session: StaffDb) -> Response:
    """Collection rate per community and month of the last year (收缴率), from the ledger."""
    today = service.today()
    rows = await reports.collection_rate(
        session,
        actor,
        since=(today - dt.timedelta(days=365)).replace(day=1),
        until=today + dt.timedelta(days=1),
    )
    names = {
        community_id: (await estate.get_community(session, actor, community_id=community_id)).name
        for community_id in {r.community_id for r in rows}
    }
    data = reports.to_xlsx(
        "收缴率",
        ["小区", "月份", "应收（元）", "实收（元）", "收缴率"],
        [
            [
                names.get(r.community_id, ""),
                f"{r.month:%Y-%m}",
                r.charged / 100,
                r.collected / 100,
                round(r.rate, 4),
            ]
            for r in rows
        ],
    )
    return _xlsx(data, "collection.xlsx")


@router.get("/console/billing/reports/income.xlsx")
async def income_xlsx(actor: LedgerReader, session: StaffDb) -> Response:
    """Income by fee item of the last year (收入), from the ledger."""
    today = service.today()
    rows = await reports.income_by_fee_item(
        session,
        actor,
        since=(today - dt.timedelta(days=365)).replace(day=1),
        until=today + dt.timedelta(days=1),
    )
    data = reports.to_xlsx(
        "收入", ["收费项目", "金额（元）"], [[r.name, r.cents / 100] for r in rows]
    )
    return _xlsx(data, "income.xlsx")


@router.get("/console/billing/reports/cashier-day.xlsx")
async def cashier_day_xlsx(
    actor: LedgerReader, session: StaffDb, day: Annotated[dt.date | None, Query()] = None
) -> Response:
    """The cashier day report (收银日报): per cashier and way of paying, net of voids."""
    rows = await reports.cashier_day(session, actor, day=day or service.today())
    data = reports.to_xlsx(
        "收银日报",
        ["收银员", "方式", "收据数", "金额（元）"],
        [[str(r.cashier_id or ""), r.method, r.receipts, r.cents / 100] for r in rows],
    )
    return _xlsx(data, "cashier-day.xlsx")


# --- the resident portal ---------------------------------------------


@router.get("/portal/fees", name="portal.fees")
async def portal_fees(request: Request, actor: ResidentActor, session: PlatformDb) -> Response:
    context = await _portal_context(request, session, actor)
    view = await service.my_billing(session, actor)
    return render(
        request,
        "billing/portal_fees.html",
        context | _common() | {"view": view},
    )


@router.get("/portal/fees/receipts/{company_id}/{receipt_id}/pdf")
async def portal_receipt_pdf(
    actor: ResidentActor, session: PlatformDb, company_id: str, receipt_id: str
) -> Response:
    view = await service.my_receipt(
        session, actor, company_id=_must(company_id), receipt_id=_must(receipt_id)
    )
    return Response(pdf.receipt_pdf(view), media_type="application/pdf")
