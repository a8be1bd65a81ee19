"""API shapes of billing. Money is integer cents (``*_cents``) everywhere."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from pydantic import Field

from linli.billing.models import AdjustmentKind, FeeCycle, FeeKind, TenderMethod
from linli.billing.money import MAX_CENTS
from linli.core.schemas import ReadSchema, Schema

Cents = int
CODE = r"^[0-9A-Za-z_-]{1,40}$"


class FeeItemCreate(Schema):
    community_id: uuid.UUID
    code: str = Field(pattern=CODE)
    name: str = Field(min_length=1, max_length=100)
    kind: FeeKind
    cycle: FeeCycle = FeeCycle.MONTHLY
    bill_month: int = Field(1, ge=1, le=12, description="yearly items: the month they are billed")
    unit: str = Field("", max_length=20)
    due_days: int = Field(30, ge=0, le=366)
    late_fee_grace_days: int = Field(0, ge=0, le=366)
    late_fee_daily_bp: int = Field(0, ge=0, le=1000, description="late fee per day, 万分之")
    late_fee_cap_pct: int = Field(0, ge=0, le=100, description="cap, % of the bill")


class FeeItemRead(ReadSchema):
    id: uuid.UUID
    community_id: uuid.UUID
    code: str
    name: str
    kind: str
    cycle: str
    bill_month: int
    unit: str
    due_days: int
    late_fee_grace_days: int
    late_fee_daily_bp: int
    late_fee_cap_pct: int
    active: bool


class Tier(Schema):
    up_to: Decimal | None = Field(None, gt=0, max_digits=14, decimal_places=2)
    price: Decimal = Field(ge=0, max_digits=14, decimal_places=4, description="cents per unit")


class PriceCreate(Schema):
    effective_from: dt.date
    unit_price: Decimal = Field(
        Decimal(0), ge=0, max_digits=14, decimal_places=4, description="cents per unit (per m²)"
    )
    variant: str | None = Field(None, max_length=20, description="house type or parking usage")
    tiers: list[Tier] | None = Field(None, max_length=10)


class PriceRead(ReadSchema):
    id: uuid.UUID
    fee_item_id: uuid.UUID
    variant: str | None
    effective_from: dt.date
    unit_price: Decimal
    tiers: list[dict[str, Any]] | None


class DiscountRuleCreate(Schema):
    name: str = Field(min_length=1, max_length=100)
    min_months: int = Field(ge=2, le=36)
    free_months: int = Field(ge=1, le=12)


class DiscountRuleRead(ReadSchema):
    id: uuid.UUID
    fee_item_id: uuid.UUID
    name: str
    min_months: int
    free_months: int
    active: bool


class ReadingCreate(Schema):
    fee_item_id: uuid.UUID
    house_id: uuid.UUID
    read_on: dt.date
    reading: Decimal = Field(ge=0, max_digits=14, decimal_places=2)
    meter_replaced: bool = False


class ReadingBatch(Schema):
    rows: list[ReadingCreate] = Field(min_length=1, max_length=5000)


class ReadingRead(ReadSchema):
    id: uuid.UUID
    house_id: uuid.UUID
    fee_item_id: uuid.UUID
    read_on: dt.date
    reading: Decimal
    previous_reading: Decimal | None
    usage: Decimal
    flag: str


class MeterIssueRead(Schema):
    row: int = Field(description="Row number as the spreadsheet shows it")
    column: str
    code: str
    message: str


class MeterRowRead(Schema):
    row: int
    house: str
    meter: str
    read_on: dt.date
    reading: Decimal
    previous_reading: Decimal | None
    usage: Decimal
    flag: str
    action: str = Field(description="create, update or unchanged")


class MeterImportRead(Schema):
    """A meter-reading spreadsheet checked (dry run) or imported."""

    dry_run: bool
    imported: bool
    format: str
    encoding: str | None
    total_rows: int
    error_rows: int
    create: int
    update: int
    unchanged: int
    errors: list[MeterIssueRead]
    flagged: list[MeterRowRead] = Field(description="Readings that jump; billed once confirmed")


class MeterImportJobRead(ReadSchema):
    id: uuid.UUID
    community_id: uuid.UUID
    status: str = Field(description="queued, running, done, rejected or failed")
    mode: str
    file_name: str
    total_rows: int
    processed_rows: int
    error_rows: int
    created_count: int
    updated_count: int
    unchanged_count: int
    flagged_count: int
    errors: list[MeterIssueRead]
    failure: str | None
    created_at: dt.datetime
    finished_at: dt.datetime | None


class RunRequest(Schema):
    community_id: uuid.UUID
    period: dt.date = Field(description="any day of the month to bill")
    fee_item_ids: list[uuid.UUID] | None = Field(None, max_length=100)


class RunPreviewItem(Schema):
    fee_item_id: uuid.UUID
    bills: int
    total_cents: Cents


class RunPreviewRead(Schema):
    community_id: uuid.UUID
    period_start: dt.date
    bills: int
    total_cents: Cents
    items: list[RunPreviewItem]


class RunRead(ReadSchema):
    id: uuid.UUID
    community_id: uuid.UUID
    period_start: dt.date
    period_end: dt.date
    status: str
    total_chunks: int
    done_chunks: int
    bill_count: int
    total_cents: Cents
    created_at: dt.datetime
    finished_at: dt.datetime | None
    reverted_at: dt.datetime | None


class ChargeCreate(Schema):
    fee_item_id: uuid.UUID
    house_id: uuid.UUID
    amount_cents: Cents = Field(gt=0, le=MAX_CENTS)
    charged_on: dt.date | None = None


class AdvanceBills(Schema):
    fee_item_id: uuid.UUID
    months: int = Field(ge=1, le=36)


class BillRead(ReadSchema):
    id: uuid.UUID
    house_id: uuid.UUID
    fee_item_id: uuid.UUID
    run_id: uuid.UUID | None
    late_fee_of: uuid.UUID | None
    period_start: dt.date
    period_end: dt.date
    due_on: dt.date
    quantity: Decimal
    amount_cents: Cents
    settled_cents: Cents


class OwedBillRead(Schema):
    bill: BillRead
    fee_item_name: str
    outstanding_cents: Cents
    late_fee_cents: Cents


class HouseAccountRead(Schema):
    house_id: uuid.UUID
    community_id: uuid.UUID
    owed_cents: Cents
    late_fee_cents: Cents
    prepaid_cents: Cents
    auto_deduct: bool
    bills: list[OwedBillRead]


class HouseHitRead(Schema):
    house_id: uuid.UUID
    community_id: uuid.UUID
    label: str
    owners: list[str]


class TenderIn(Schema):
    method: TenderMethod
    amount_cents: Cents = Field(gt=0, le=MAX_CENTS)
    reference: str = Field("", max_length=100)


class PaymentCreate(Schema):
    house_id: uuid.UUID
    tenders: list[TenderIn] = Field(default_factory=list, max_length=10)
    bill_ids: list[uuid.UUID] | None = Field(
        None, max_length=500, description="null: oldest first; []: all to prepaid"
    )
    use_prepaid_cents: Cents = Field(0, ge=0, le=MAX_CENTS)
    payer_name: str = Field("", max_length=100)


class TenderRead(ReadSchema):
    method: str
    amount_cents: Cents
    reference: str
    confirmed: bool


class ReceiptRead(ReadSchema):
    id: uuid.UUID
    community_id: uuid.UUID
    house_id: uuid.UUID
    receipt_no: int | None
    status: str
    amount_cents: Cents
    allocated_cents: Cents
    discount_cents: Cents
    to_prepaid_cents: Cents
    payer_name: str
    shift_id: uuid.UUID | None
    paid_at: dt.datetime | None
    voided_at: dt.datetime | None
    void_reason: str


class ReceiptDetail(ReceiptRead):
    tenders: list[TenderRead] = Field(default_factory=list)


class VoidRequest(Schema):
    reason: str = Field(min_length=2, max_length=400)


class AutoDeduct(Schema):
    enabled: bool


class PrepaidRead(ReadSchema):
    house_id: uuid.UUID
    balance_cents: Cents
    auto_deduct: bool


class ShiftOpen(Schema):
    community_id: uuid.UUID
    opening_float_cents: Cents = Field(0, ge=0, le=MAX_CENTS)


class ShiftClose(Schema):
    counted_cash_cents: Cents = Field(ge=0, le=MAX_CENTS)
    note: str = Field("", max_length=400)


class ShiftRead(ReadSchema):
    id: uuid.UUID
    community_id: uuid.UUID
    cashier_id: uuid.UUID
    status: str
    opened_at: dt.datetime
    opening_float_cents: Cents
    closed_at: dt.datetime | None
    expected_cash_cents: Cents | None
    counted_cash_cents: Cents | None
    difference_cents: Cents | None


class ShiftReportRead(Schema):
    shift: ShiftRead
    by_method: dict[str, Cents]
    receipts: int
    voided: int
    expected_cash_cents: Cents


class AdjustmentCreate(Schema):
    bill_id: uuid.UUID
    kind: AdjustmentKind
    amount_cents: Cents = Field(0, ge=0, le=MAX_CENTS)
    reason: str = Field(min_length=2, max_length=400)


class AdjustmentDecision(Schema):
    approve: bool


class AdjustmentRead(ReadSchema):
    id: uuid.UUID
    bill_id: uuid.UUID
    kind: str
    amount_cents: Cents
    reason: str
    status: str
    requested_by: uuid.UUID
    decided_by: uuid.UUID | None


class AgingRowRead(Schema):
    key: uuid.UUID
    community_id: uuid.UUID
    label: str
    buckets: dict[str, Cents]
    total_cents: Cents


class DunningRowRead(Schema):
    house_id: uuid.UUID
    label: str
    owed_cents: Cents
    oldest_due: dt.date
    bills: int


class StatementLineRead(Schema):
    day: dt.date
    kind: str
    text: str
    charged_cents: Cents
    late_fee_cents: Cents
    paid_cents: Cents
    credited_cents: Cents
    prepaid_cents: Cents = Field(description="Into (+) or out of (-) the prepaid balance.")
    balance_cents: Cents


class StatementRead(Schema):
    """A house's statement (对账单), computed from the ledger."""

    house_id: uuid.UUID
    label: str
    since: dt.date | None
    until: dt.date | None
    opening_cents: Cents
    charges_cents: Cents
    late_fees_cents: Cents
    payments_cents: Cents
    credits_cents: Cents
    balance_cents: Cents = Field(description="Closing balance: what the house owes.")
    prepaid_opening_cents: Cents
    prepaid_closing_cents: Cents
    lines: list[StatementLineRead]


class CollectionRowRead(Schema):
    community_id: uuid.UUID
    month: dt.date
    charged_cents: Cents
    collected_cents: Cents
    rate: float


class IncomeRowRead(Schema):
    fee_item_id: uuid.UUID | None
    name: str
    cents: Cents


class CashierDayRowRead(Schema):
    cashier_id: uuid.UUID | None
    method: str
    receipts: int
    cents: Cents


class TrialBalanceRow(Schema):
    account: str
    debit_cents: Cents
    credit_cents: Cents


class PortalBill(Schema):
    company_id: uuid.UUID
    house_id: uuid.UUID
    house_label: str
    fee_item_name: str
    period_start: dt.date
    due_on: dt.date
    amount_cents: Cents
    outstanding_cents: Cents


class PortalReceipt(Schema):
    company_id: uuid.UUID
    receipt_id: uuid.UUID
    house_label: str
    receipt_no: int | None
    amount_cents: Cents
    status: str
    paid_at: dt.datetime | None


class PortalHouse(Schema):
    company_id: uuid.UUID
    company_name: str
    house_id: uuid.UUID
    house_label: str
    community_name: str
    owed_cents: Cents
    prepaid_cents: Cents


class PortalBilling(Schema):
    houses: list[PortalHouse]
    open_bills: list[PortalBill]
    receipts: list[PortalReceipt]


class ReadingOutcomeRead(Schema):
    index: int
    reading: ReadingRead | None
    code: str
    message: str
