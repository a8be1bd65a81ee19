"""API shapes of the workorders domain."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from linli.core.schemas import ReadSchema, Schema
from linli.workorders.models import (
    ChargeKind,
    HolidayKind,
    OrderKind,
    OrderSource,
    OrderStatus,
    Priority,
)

Minutes = Field(ge=1, le=60 * 24 * 60)


class SlaTargetIn(Schema):
    response_minutes: int = Field(ge=1, le=60 * 24 * 60, description="working minutes")
    completion_minutes: int = Field(ge=1, le=60 * 24 * 60, description="working minutes")


class CategoryCreate(Schema):
    community_id: uuid.UUID
    name: str = Field(min_length=1, max_length=100)
    kind: OrderKind
    default_priority: Priority = Priority.NORMAL
    sla: dict[Priority, SlaTargetIn] = Field(
        default_factory=dict, description="per priority; missing priorities use the defaults"
    )


class CategoryUpdate(Schema):
    name: str | None = Field(None, min_length=1, max_length=100)
    default_priority: Priority | None = None
    sla: dict[Priority, SlaTargetIn] | None = None
    archived: bool | None = None


class CategoryRead(ReadSchema):
    id: uuid.UUID
    community_id: uuid.UUID
    name: str
    kind: OrderKind
    default_priority: Priority
    sla: dict[str, Any]
    archived_at: dt.datetime | None


class HolidayIn(Schema):
    day: dt.date
    kind: HolidayKind = HolidayKind.HOLIDAY
    name: str = Field("", max_length=100)


class CalendarIn(Schema):
    weekly: dict[str, list[list[str]]] = Field(
        description='ISO weekday "1".."7" -> [["09:00","12:00"],["13:00","18:00"]]',
        max_length=7,
    )
    holidays: list[HolidayIn] = Field(default_factory=list, max_length=400)


class CalendarRead(BaseModel):
    community_id: uuid.UUID
    timezone: str
    weekly: dict[str, list[list[str]]]
    holidays: list[HolidayIn]
    configured: bool


class CoverageCreate(Schema):
    technician_id: uuid.UUID
    community_id: uuid.UUID
    category_id: uuid.UUID | None = None
    building_id: uuid.UUID | None = None


class CoverageRead(ReadSchema):
    id: uuid.UUID
    technician_id: uuid.UUID
    community_id: uuid.UUID
    category_id: uuid.UUID | None
    building_id: uuid.UUID | None


class OrderCreate(Schema):
    """Front desk takes a call (电话报修) or staff report what they found."""

    community_id: uuid.UUID
    category_id: uuid.UUID
    description: str = Field(min_length=1, max_length=2000)
    house_id: uuid.UUID | None = None
    location: str = Field("", max_length=200, description="the common area, without a house")
    priority: Priority | None = None
    preferred_from: dt.datetime | None = None
    preferred_to: dt.datetime | None = None
    reporter_name: str = Field("", max_length=100)
    contact_phone: str | None = Field(None, max_length=32)
    source: OrderSource = OrderSource.PHONE
    auto_assign: bool = True


class ResidentOrderCreate(Schema):
    house_id: uuid.UUID
    category_id: uuid.UUID
    description: str = Field(min_length=1, max_length=2000)
    location: str = Field("", max_length=200)
    priority: Priority | None = None
    preferred_from: dt.datetime | None = None
    preferred_to: dt.datetime | None = None


class AssignIn(Schema):
    technician_id: uuid.UUID | None = Field(
        None, description="omit to let the routing rules choose (auto-dispatch)"
    )


class NoteIn(Schema):
    note: str = Field(min_length=1, max_length=2000)


class FinishIn(Schema):
    note: str = Field("", max_length=2000)


class CancelIn(Schema):
    reason: str = Field(min_length=1, max_length=500)


class ChargeIn(Schema):
    kind: ChargeKind
    description: str = Field(min_length=1, max_length=200)
    quantity: Decimal = Field(gt=0, max_digits=10, decimal_places=2)
    unit_price: Decimal = Field(ge=0, max_digits=14, decimal_places=2)


class ChargeRead(ReadSchema):
    id: uuid.UUID
    order_id: uuid.UUID
    kind: ChargeKind
    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal


class RateIn(Schema):
    rating: int = Field(ge=1, le=5)
    comment: str = Field("", max_length=500)


class OrderRead(ReadSchema):
    id: uuid.UUID
    number: str
    community_id: uuid.UUID
    kind: OrderKind
    category_id: uuid.UUID
    priority: Priority
    status: OrderStatus
    source: OrderSource
    house_id: uuid.UUID | None
    location: str
    description: str
    preferred_from: dt.datetime | None
    preferred_to: dt.datetime | None
    assignee_id: uuid.UUID | None
    created_at: dt.datetime
    assigned_at: dt.datetime | None
    accepted_at: dt.datetime | None
    finished_at: dt.datetime | None
    closed_at: dt.datetime | None
    response_due_at: dt.datetime
    completion_due_at: dt.datetime
    response_minutes: int | None
    completion_minutes: int | None
    response_met: bool | None
    completion_met: bool | None
    rating: int | None
    rating_comment: str
    reopen_count: int


class EventRead(ReadSchema):
    id: uuid.UUID
    kind: str
    actor_kind: str
    actor_id: uuid.UUID
    actor_name: str
    note: str
    detail: dict[str, Any]
    created_at: dt.datetime


class PhotoRead(BaseModel):
    id: uuid.UUID
    order_id: uuid.UUID
    stage: str
    content_type: str
    width: int
    height: int
    size_bytes: int
    created_at: dt.datetime


class ReportRowRead(BaseModel):
    key: uuid.UUID | None
    label: str
    orders: int
    open: int
    responded: int
    response_met: int
    response_rate: Decimal | None = Field(description="% of responses within the SLA")
    avg_response_minutes: Decimal | None
    finished: int
    completion_met: int
    completion_rate: Decimal | None = Field(description="% of completions within the SLA")
    avg_completion_minutes: Decimal | None
    rated: int
    avg_rating: Decimal | None


class ReportRead(BaseModel):
    since: dt.datetime
    until: dt.datetime
    total: ReportRowRead
    by_category: list[ReportRowRead]
    by_technician: list[ReportRowRead]


class EscalationResult(BaseModel):
    warned: int
