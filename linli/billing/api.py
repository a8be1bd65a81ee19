"""Routes of the billing domain. Thin: parse, call the service, shape the answer."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile

from linli.auth.actor import Actor, PrincipalKind
from linli.auth.deps import Authorizer, DbSession, DeclaredRoute
from linli.auth.permissions import Permission
from linli.billing import meter_import, pdf, reports, service
from linli.billing import tasks as _tasks  # noqa: F401 - registers the run job with job_app
from linli.billing.models import AdjustmentStatus
from linli.billing.schemas import (
    AdjustmentCreate,
    AdjustmentDecision,
    AdjustmentRead,
    AdvanceBills,
    AgingRowRead,
    AutoDeduct,
    BillRead,
    CashierDayRowRead,
    ChargeCreate,
    CollectionRowRead,
    DiscountRuleCreate,
    DiscountRuleRead,
    DunningRowRead,
    FeeItemCreate,
    FeeItemRead,
    HouseAccountRead,
    HouseHitRead,
    IncomeRowRead,
    MeterImportJobRead,
    MeterImportRead,
    MeterIssueRead,
    MeterRowRead,
    OwedBillRead,
    PaymentCreate,
    PortalBilling,
    PrepaidRead,
    PriceCreate,
    PriceRead,
    ReadingBatch,
    ReadingCreate,
    ReadingOutcomeRead,
    ReadingRead,
    ReceiptDetail,
    ReceiptRead,
    RunPreviewItem,
    RunPreviewRead,
    RunRead,
    RunRequest,
    ShiftClose,
    ShiftOpen,
    ShiftRead,
    ShiftReportRead,
    StatementLineRead,
    StatementRead,
    TenderRead,
    TrialBalanceRow,
    VoidRequest,
)
from linli.core.errors import NotFound
from linli.core.idempotency import IdempotencyDep
from linli.core.pagination import Page, PageParams, page_params
from linli.core.schemas import Schema

router = APIRouter(prefix="/api/v1/billing", route_class=DeclaredRoute, tags=["billing"])

Reader = Annotated[Actor, Depends(Authorizer(Permission.BILLING_READ))]
Configurer = Annotated[Actor, Depends(Authorizer(Permission.BILLING_CONFIGURE))]
RunManager = Annotated[Actor, Depends(Authorizer(Permission.BILLING_RUNS))]
MeterWriter = Annotated[Actor, Depends(Authorizer(Permission.METER_READINGS_WRITE))]
Cashier = Annotated[Actor, Depends(Authorizer(Permission.CASHIER))]
Voider = Annotated[Actor, Depends(Authorizer(Permission.RECEIPTS_VOID))]
Requester = Annotated[Actor, Depends(Authorizer(Permission.ADJUSTMENTS_REQUEST))]
Approver = Annotated[Actor, Depends(Authorizer(Permission.ADJUSTMENTS_APPROVE))]
LedgerReader = Annotated[Actor, Depends(Authorizer(Permission.LEDGER_READ))]
Resident = Annotated[
    Actor,
    Depends(Authorizer(Permission.RESIDENT_SELF, kinds=(PrincipalKind.RESIDENT,))),
]
Paging = Annotated[PageParams, Depends(page_params)]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# --- fee items --------------------------------------------------------------------------------


@router.post("/fee-items", response_model=FeeItemRead, status_code=201)
async def create_fee_item(
    actor: Configurer, session: DbSession, body: FeeItemCreate
) -> FeeItemRead:
    item = await service.create_fee_item(session, actor, **body.model_dump())
    return FeeItemRead.model_validate(item)


@router.get("/fee-items", response_model=list[FeeItemRead])
async def list_fee_items(
    actor: Reader, session: DbSession, community_id: uuid.UUID | None = None
) -> list[FeeItemRead]:
    items = await service.list_fee_items(session, actor, community_id=community_id)
    return [FeeItemRead.model_validate(i) for i in items]


@router.get("/fee-items/{fee_item_id}", response_model=FeeItemRead)
async def get_fee_item(actor: Reader, session: DbSession, fee_item_id: uuid.UUID) -> FeeItemRead:
    return FeeItemRead.model_validate(
        await service.get_fee_item(session, actor, fee_item_id=fee_item_id)
    )


@router.post("/fee-items/{fee_item_id}/prices", response_model=PriceRead, status_code=201)
async def add_price(
    actor: Configurer, session: DbSession, fee_item_id: uuid.UUID, body: PriceCreate
) -> PriceRead:
    price = await service.add_price(
        session,
        actor,
        fee_item_id=fee_item_id,
        effective_from=body.effective_from,
        unit_price=body.unit_price,
        variant=body.variant,
        tiers=None if body.tiers is None else [t.model_dump() for t in body.tiers],
    )
    return PriceRead.model_validate(price)


@router.get("/fee-items/{fee_item_id}/prices", response_model=list[PriceRead])
async def list_prices(actor: Reader, session: DbSession, fee_item_id: uuid.UUID) -> list[PriceRead]:
    prices = await service.list_prices(session, actor, fee_item_id=fee_item_id)
    return [PriceRead.model_validate(p) for p in prices]


@router.post(
    "/fee-items/{fee_item_id}/discount-rules", response_model=DiscountRuleRead, status_code=201
)
async def add_discount_rule(
    actor: Configurer, session: DbSession, fee_item_id: uuid.UUID, body: DiscountRuleCreate
) -> DiscountRuleRead:
    rule = await service.add_discount_rule(
        session, actor, fee_item_id=fee_item_id, **body.model_dump()
    )
    return DiscountRuleRead.model_validate(rule)


# --- meter readings ---------------------------------------------------------------------------


@router.post("/meter-readings", response_model=ReadingRead, status_code=201)
async def record_reading(
    actor: MeterWriter, session: DbSession, body: ReadingCreate
) -> ReadingRead:
    return ReadingRead.model_validate(
        await service.record_reading(session, actor, **body.model_dump())
    )


@router.post("/meter-readings/batch", response_model=list[ReadingOutcomeRead])
async def record_readings(
    actor: MeterWriter, session: DbSession, body: ReadingBatch
) -> list[ReadingOutcomeRead]:
    outcomes = await service.record_readings(
        session, actor, rows=[row.model_dump() for row in body.rows]
    )
    return [
        ReadingOutcomeRead(
            index=o.index,
            reading=ReadingRead.model_validate(o.reading) if o.reading else None,
            code=o.code,
            message=o.message,
        )
        for o in outcomes
    ]


@router.post("/meter-readings/{reading_id}/confirm", response_model=ReadingRead)
async def confirm_reading(
    actor: MeterWriter, session: DbSession, reading_id: uuid.UUID
) -> ReadingRead:
    return ReadingRead.model_validate(
        await service.confirm_reading(session, actor, reading_id=reading_id)
    )


def _meter_report(checked: meter_import.MeterCheck, *, imported: bool) -> MeterImportRead:
    return MeterImportRead(
        dry_run=not imported,
        imported=imported,
        format=checked.format,
        encoding=checked.encoding,
        total_rows=checked.total_rows,
        error_rows=checked.bad_rows,
        create=checked.count("create"),
        update=checked.count("update"),
        unchanged=checked.count("unchanged"),
        errors=[MeterIssueRead(**i.as_json()) for i in checked.issues[:1000]],
        flagged=[
            MeterRowRead(
                row=r.row,
                house=r.house,
                meter=r.meter,
                read_on=r.read_on,
                reading=r.reading,
                previous_reading=r.previous,
                usage=r.usage,
                flag=r.flag,
                action=r.action,
            )
            for r in checked.flagged[:1000]
        ],
    )


@router.post("/meter-readings/import", response_model=MeterImportRead)
async def import_readings(
    actor: MeterWriter,
    session: DbSession,
    file: Annotated[UploadFile, File(description=".xlsx or .csv (UTF-8 or GBK)")],
    community_id: Annotated[uuid.UUID, Form()],
    mode: Annotated[meter_import.ImportMode, Form()] = meter_import.ImportMode.ALL_OR_NOTHING,
    dry_run: Annotated[bool, Form()] = True,
) -> MeterImportRead:
    """Meter readings from a spreadsheet (抄表导入). ``dry_run`` (the default) checks every
    row and writes nothing; otherwise the rows are written, all or nothing or skipping bad
    rows. Importing the same file again changes nothing."""
    data = await meter_import.read_upload(file)
    checked = await meter_import.check(session, actor, community_id=community_id, data=data)
    if not dry_run:
        await meter_import.apply(session, actor, checked=checked, mode=mode)
    return _meter_report(checked, imported=not dry_run)


@router.post("/meter-readings/import-jobs", response_model=MeterImportJobRead, status_code=202)
async def start_meter_import(
    actor: MeterWriter,
    session: DbSession,
    file: Annotated[UploadFile, File(description=".xlsx or .csv (UTF-8 or GBK)")],
    community_id: Annotated[uuid.UUID, Form()],
    mode: Annotated[meter_import.ImportMode, Form()] = meter_import.ImportMode.ALL_OR_NOTHING,
) -> MeterImportJobRead:
    """Import a large meter-reading spreadsheet in the background; poll the job for its
    progress, counts and errors by row."""
    data = await meter_import.read_upload(file)
    job = await meter_import.start_job(
        session,
        actor,
        community_id=community_id,
        data=data,
        file_name=file.filename or "upload",
        mode=mode,
    )
    await session.refresh(job)
    return MeterImportJobRead.model_validate(job)


@router.get("/meter-readings/import-jobs/{meter_import_id}", response_model=MeterImportJobRead)
async def get_meter_import(
    actor: MeterWriter, session: DbSession, meter_import_id: uuid.UUID
) -> MeterImportJobRead:
    return MeterImportJobRead.model_validate(
        await meter_import.get_job(session, actor, job_id=meter_import_id)
    )


@router.get(
    "/meter-readings/template.xlsx",
    responses={200: {"content": {XLSX: {}}}},
    response_class=Response,
)
async def meter_template(actor: MeterWriter) -> Response:
    del actor
    return Response(
        meter_import.template_xlsx(),
        media_type=XLSX,
        headers={"Content-Disposition": 'attachment; filename="meter-readings.xlsx"'},
    )


@router.get("/houses/{house_id}/meter-readings", response_model=list[ReadingRead])
async def list_readings(
    actor: Reader, session: DbSession, house_id: uuid.UUID
) -> list[ReadingRead]:
    rows = await service.list_readings(session, actor, house_id=house_id)
    return [ReadingRead.model_validate(r) for r in rows]


# --- billing runs -----------------------------------------------------------------------------


@router.post("/runs/preview", response_model=RunPreviewRead)
async def preview_run(actor: RunManager, session: DbSession, body: RunRequest) -> RunPreviewRead:
    preview = await service.preview_run(session, actor, **body.model_dump())
    return RunPreviewRead(
        community_id=preview.community_id,
        period_start=preview.period_start,
        bills=preview.bill_count,
        total_cents=preview.total_cents,
        items=[
            RunPreviewItem(fee_item_id=item, bills=count, total_cents=cents)
            for item, (count, cents) in preview.by_item.items()
        ],
    )


@router.post("/runs", response_model=RunRead, status_code=202)
async def start_run(
    actor: RunManager, session: DbSession, body: RunRequest, idempotency: IdempotencyDep
) -> RunRead:
    async def start() -> RunRead:
        run, _ = await service.start_run(session, actor, **body.model_dump())
        return RunRead.model_validate(run)

    result: RunRead = await idempotency.run(session, actor, start, status_code=202)
    return result


@router.get("/runs", response_model=Page[RunRead])
async def list_runs(
    actor: Reader, session: DbSession, page: Paging, community_id: uuid.UUID | None = None
) -> Page[RunRead]:
    rows, cursor = await service.list_runs(session, actor, community_id=community_id, page=page)
    return Page[RunRead].of(rows, cursor)


@router.get("/runs/{run_id}", response_model=RunRead)
async def get_run(actor: Reader, session: DbSession, run_id: uuid.UUID) -> RunRead:
    return RunRead.model_validate(await service.get_run(session, actor, run_id=run_id))


@router.post("/runs/{run_id}/revert", response_model=RunRead)
async def revert_run(actor: RunManager, session: DbSession, run_id: uuid.UUID) -> RunRead:
    return RunRead.model_validate(await service.revert_run(session, actor, run_id=run_id))


# --- bills and charges --------------------------------------------------------------------------


@router.post("/charges", response_model=BillRead, status_code=201)
async def charge_one_off(
    actor: Cashier, session: DbSession, body: ChargeCreate, idempotency: IdempotencyDep
) -> BillRead:
    async def charge() -> BillRead:
        return BillRead.model_validate(
            await service.charge_one_off(session, actor, **body.model_dump())
        )

    result: BillRead = await idempotency.run(session, actor, charge, status_code=201)
    return result


@router.post("/houses/{house_id}/advance-bills", response_model=list[BillRead], status_code=201)
async def advance_bills(
    actor: Cashier, session: DbSession, house_id: uuid.UUID, body: AdvanceBills
) -> list[BillRead]:
    bills = await service.issue_advance_bills(
        session, actor, house_id=house_id, fee_item_id=body.fee_item_id, months=body.months
    )
    return [BillRead.model_validate(b) for b in bills]


@router.get("/houses/{house_id}/bills", response_model=Page[BillRead])
async def list_bills(
    actor: Reader, session: DbSession, house_id: uuid.UUID, page: Paging
) -> Page[BillRead]:
    rows, cursor = await service.list_bills(session, actor, house_id=house_id, page=page)
    return Page[BillRead].of(rows, cursor)


@router.get("/houses/{house_id}/account", response_model=HouseAccountRead)
async def house_account(actor: Reader, session: DbSession, house_id: uuid.UUID) -> HouseAccountRead:
    account = await service.house_account(session, actor, house_id=house_id)
    return HouseAccountRead(
        house_id=account.house_id,
        community_id=account.community_id,
        owed_cents=account.owed_cents,
        late_fee_cents=account.late_fee_cents,
        prepaid_cents=account.prepaid_cents,
        auto_deduct=account.auto_deduct,
        bills=[
            OwedBillRead(
                bill=BillRead.model_validate(b.bill),
                fee_item_name=b.fee_item_name,
                outstanding_cents=b.outstanding,
                late_fee_cents=b.late_fee,
            )
            for b in account.bills
        ],
    )


@router.get("/houses/{house_id}/statement", response_model=StatementRead)
async def house_statement(
    actor: Reader,
    session: DbSession,
    house_id: uuid.UUID,
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> StatementRead:
    statement = await reports.house_statement(
        session, actor, house_id=house_id, since=since, until=until
    )
    return StatementRead(
        house_id=statement.house_id,
        label=statement.label,
        since=since,
        until=until,
        opening_cents=statement.opening,
        charges_cents=statement.charges,
        late_fees_cents=statement.late_fees,
        payments_cents=statement.payments,
        credits_cents=statement.credits,
        balance_cents=statement.balance,
        prepaid_opening_cents=statement.prepaid_opening,
        prepaid_closing_cents=statement.prepaid_closing,
        lines=[
            StatementLineRead(
                day=line.day,
                kind=line.kind,
                text=line.text,
                charged_cents=line.charged,
                late_fee_cents=line.late_fee,
                paid_cents=line.paid,
                credited_cents=line.credited,
                prepaid_cents=line.prepaid,
                balance_cents=line.balance,
            )
            for line in statement.lines
        ],
    )


@router.put("/houses/{house_id}/prepaid/auto-deduct", response_model=PrepaidRead)
async def set_auto_deduct(
    actor: Cashier, session: DbSession, house_id: uuid.UUID, body: AutoDeduct
) -> PrepaidRead:
    account = await service.set_auto_deduct(session, actor, house_id=house_id, enabled=body.enabled)
    return PrepaidRead.model_validate(account)


# --- the cashier counter ------------------------------------------------------------------------


@router.get("/cashier/houses", response_model=list[HouseHitRead])
async def find_houses(
    actor: Cashier,
    session: DbSession,
    q: Annotated[str, Query(min_length=1, max_length=40)],
    community_id: uuid.UUID | None = None,
) -> list[HouseHitRead]:
    hits = await service.find_houses(session, actor, q=q, community_id=community_id)
    return [HouseHitRead(**hit.__dict__) for hit in hits]


def _detail(receipt: object, tenders: list[object]) -> ReceiptDetail:
    detail = ReceiptDetail.model_validate(receipt)
    detail.tenders = [TenderRead.model_validate(t) for t in tenders]
    return detail


@router.post("/receipts", response_model=ReceiptDetail, status_code=201)
async def take_payment(
    actor: Cashier, session: DbSession, body: PaymentCreate, idempotency: IdempotencyDep
) -> ReceiptDetail:
    """Take a payment and issue its receipt. Send an Idempotency-Key: a repeated
    submission replays the first receipt instead of taking the money twice."""

    async def pay() -> ReceiptDetail:
        receipt = await service.take_payment(
            session,
            actor,
            house_id=body.house_id,
            tenders=[service.Tender(t.method, t.amount_cents, t.reference) for t in body.tenders],
            bill_ids=body.bill_ids,
            use_prepaid_cents=body.use_prepaid_cents,
            payer_name=body.payer_name,
        )
        # The receipt is this session's own: only its tenders are read back (not the
        # labels a printed receipt needs), one statement on the counter's hot path.
        return _detail(receipt, list(await service.receipt_tenders(session, receipt.id)))

    result: ReceiptDetail = await idempotency.run(session, actor, pay, status_code=201)
    return result


@router.get("/receipts", response_model=Page[ReceiptRead])
async def list_receipts(
    actor: Reader,
    session: DbSession,
    page: Paging,
    house_id: uuid.UUID | None = None,
    shift_id: uuid.UUID | None = None,
) -> Page[ReceiptRead]:
    rows, cursor = await service.list_receipts(
        session, actor, house_id=house_id, shift_id=shift_id, page=page
    )
    return Page[ReceiptRead].of(rows, cursor)


@router.get("/receipts/{receipt_id}", response_model=ReceiptDetail)
async def get_receipt(actor: Reader, session: DbSession, receipt_id: uuid.UUID) -> ReceiptDetail:
    view = await service.receipt_view(session, actor, receipt_id=receipt_id)
    return _detail(view.receipt, list(view.tenders))


@router.get(
    "/receipts/{receipt_id}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
async def receipt_pdf(actor: Reader, session: DbSession, receipt_id: uuid.UUID) -> Response:
    view = await service.receipt_view(session, actor, receipt_id=receipt_id)
    if view.receipt.receipt_no is None:
        raise NotFound("This receipt is not paid yet.", code="receipt_pending")
    return Response(
        pdf.receipt_pdf(view),
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="receipt-{pdf.receipt_number(view)}.pdf"'
        },
    )


@router.post("/receipts/{receipt_id}/void", response_model=ReceiptRead)
async def void_receipt(
    actor: Voider, session: DbSession, receipt_id: uuid.UUID, body: VoidRequest
) -> ReceiptRead:
    return ReceiptRead.model_validate(
        await service.void_receipt(session, actor, receipt_id=receipt_id, reason=body.reason)
    )


# --- shifts -------------------------------------------------------------------------------------


@router.post("/shifts", response_model=ShiftRead, status_code=201)
async def open_shift(actor: Cashier, session: DbSession, body: ShiftOpen) -> ShiftRead:
    return ShiftRead.model_validate(await service.open_shift(session, actor, **body.model_dump()))


@router.get("/shifts/current", response_model=ShiftRead | None)
async def current_shift(actor: Cashier, session: DbSession) -> ShiftRead | None:
    shift = await service.current_shift(session, actor)
    return ShiftRead.model_validate(shift) if shift else None


@router.post("/shifts/current/close", response_model=ShiftReportRead)
async def close_shift(actor: Cashier, session: DbSession, body: ShiftClose) -> ShiftReportRead:
    report = await service.close_shift(session, actor, **body.model_dump())
    return _shift_report(report)


def _shift_report(report: service.ShiftReport) -> ShiftReportRead:
    return ShiftReportRead(
        shift=ShiftRead.model_validate(report.shift),
        by_method=report.by_method,
        receipts=report.receipts,
        voided=report.voided,
        expected_cash_cents=report.expected_cash_cents,
    )


@router.get("/shifts/{shift_id}/report", response_model=ShiftReportRead)
async def shift_report(actor: Cashier, session: DbSession, shift_id: uuid.UUID) -> ShiftReportRead:
    return _shift_report(await service.shift_report(session, actor, shift_id=shift_id))


# --- adjustments --------------------------------------------------------------------------------


@router.post("/adjustments", response_model=AdjustmentRead, status_code=201)
async def request_adjustment(
    actor: Requester, session: DbSession, body: AdjustmentCreate
) -> AdjustmentRead:
    return AdjustmentRead.model_validate(
        await service.request_adjustment(session, actor, **body.model_dump())
    )


@router.get("/adjustments", response_model=Page[AdjustmentRead])
async def list_adjustments(
    actor: Reader, session: DbSession, page: Paging, status: AdjustmentStatus | None = None
) -> Page[AdjustmentRead]:
    rows, cursor = await service.list_adjustments(session, actor, status=status, page=page)
    return Page[AdjustmentRead].of(rows, cursor)


@router.post("/adjustments/{adjustment_id}/decision", response_model=AdjustmentRead)
async def decide_adjustment(
    actor: Approver, session: DbSession, adjustment_id: uuid.UUID, body: AdjustmentDecision
) -> AdjustmentRead:
    return AdjustmentRead.model_validate(
        await service.decide_adjustment(
            session, actor, adjustment_id=adjustment_id, approve=body.approve
        )
    )


# --- arrears and reports --------------------------------------------------------------------------


@router.get("/reports/aging", response_model=list[AgingRowRead])
async def aging(
    actor: Reader,
    session: DbSession,
    level: reports.AgingLevel = reports.AgingLevel.COMMUNITY,
    community_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[AgingRowRead]:
    rows = await reports.arrears_aging(
        session, actor, level=level, community_id=community_id, as_of=service.today(), limit=limit
    )
    await reports.label_rows(session, actor, rows, level)
    return [
        AgingRowRead(
            key=r.key,
            community_id=r.community_id,
            label=r.label,
            buckets=r.buckets,
            total_cents=r.total,
        )
        for r in rows
    ]


@router.get("/reports/dunning", response_model=list[DunningRowRead])
async def dunning(
    actor: Reader,
    session: DbSession,
    community_id: uuid.UUID,
    min_days: Annotated[int, Query(ge=0, le=3650)] = 30,
) -> list[DunningRowRead]:
    rows = await reports.dunning_list(
        session, actor, community_id=community_id, min_days=min_days, as_of=service.today()
    )
    return [DunningRowRead(**r.__dict__) for r in rows]


class ReminderResult(Schema):
    houses: int
    messages: int


@router.post("/reports/dunning/remind", response_model=ReminderResult)
async def send_reminders(
    actor: RunManager,
    session: DbSession,
    community_id: uuid.UUID,
    min_days: Annotated[int, Query(ge=0, le=3650)] = 30,
) -> ReminderResult:
    houses, messages = await service.send_reminders(
        session, actor, community_id=community_id, min_days=min_days
    )
    return ReminderResult(houses=houses, messages=messages)


def _month_range(since: dt.date | None, until: dt.date | None) -> tuple[dt.date, dt.date]:
    end = until or dt.date.today() + dt.timedelta(days=1)
    start = since or (end - dt.timedelta(days=365)).replace(day=1)
    return start, end


@router.get("/reports/collection", response_model=list[CollectionRowRead])
async def collection(
    actor: LedgerReader,
    session: DbSession,
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> list[CollectionRowRead]:
    start, end = _month_range(since, until)
    rows = await reports.collection_rate(session, actor, since=start, until=end)
    return [
        CollectionRowRead(
            community_id=r.community_id,
            month=r.month,
            charged_cents=r.charged,
            collected_cents=r.collected,
            rate=r.rate,
        )
        for r in rows
    ]


@router.get("/reports/income", response_model=list[IncomeRowRead])
async def income(
    actor: LedgerReader,
    session: DbSession,
    since: dt.date | None = None,
    until: dt.date | None = None,
    community_id: uuid.UUID | None = None,
) -> list[IncomeRowRead]:
    start, end = _month_range(since, until)
    rows = await reports.income_by_fee_item(
        session, actor, since=start, until=end, community_id=community_id
    )
    return [IncomeRowRead(**r.__dict__) for r in rows]


@router.get("/reports/cashier-day", response_model=list[CashierDayRowRead])
async def cashier_day(
    actor: LedgerReader, session: DbSession, day: dt.date | None = None
) -> list[CashierDayRowRead]:
    rows = await reports.cashier_day(session, actor, day=day or service.today())
    return [CashierDayRowRead(**r.__dict__) for r in rows]


@router.get(
    "/reports/income.xlsx", response_class=Response, responses={200: {"content": {XLSX: {}}}}
)
async def income_xlsx(
    actor: LedgerReader,
    session: DbSession,
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> Response:
    start, end = _month_range(since, until)
    rows = await reports.income_by_fee_item(session, actor, since=start, until=end)
    data = reports.to_xlsx("income", ["fee item", "yuan"], [[r.name, r.cents / 100] for r in rows])
    return Response(
        data, media_type=XLSX, headers={"Content-Disposition": 'attachment; filename="income.xlsx"'}
    )


@router.get(
    "/reports/collection.xlsx", response_class=Response, responses={200: {"content": {XLSX: {}}}}
)
async def collection_xlsx(
    actor: LedgerReader,
    session: DbSession,
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> Response:
    start, end = _month_range(since, until)
    rows = await reports.collection_rate(session, actor, since=start, until=end)
    data = reports.to_xlsx(
        "collection",
        ["community", "month", "charged", "collected", "rate"],
        [
            [str(r.community_id), r.month.isoformat(), r.charged / 100, r.collected / 100, r.rate]
            for r in rows
        ],
    )
    return Response(
        data,
        media_type=XLSX,
        headers={"Content-Disposition": 'attachment; filename="collection.xlsx"'},
    )


@router.get("/ledger/trial-balance", response_model=list[TrialBalanceRow])
async def trial_balance(
    actor: LedgerReader, session: DbSession, community_id: uuid.UUID | None = None
) -> list[TrialBalanceRow]:
    rows = await reports.trial_balance(session, actor, community_id=community_id)
    return [
        TrialBalanceRow(account=account, debit_cents=d, credit_cents=c)
        for account, (d, c) in sorted(rows.items())
    ]


# --- the resident's own bills --------------------------------------------------------------------


@router.get("/me", response_model=PortalBilling)
async def my_billing(actor: Resident, session: DbSession) -> PortalBilling:
    view = await service.my_billing(session, actor)
    return PortalBilling.model_validate(view.__dict__)


@router.get(
    "/me/receipts/{company_id}/{receipt_id}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
async def my_receipt_pdf(
    actor: Resident, session: DbSession, company_id: uuid.UUID, receipt_id: uuid.UUID
) -> Response:
    view = await service.my_receipt(session, actor, company_id=company_id, receipt_id=receipt_id)
    return Response(pdf.receipt_pdf(view), media_type="application/pdf")
