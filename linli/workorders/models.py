"""Tables of the workorders domain: categories with SLA, calendars, orders and their timeline.

An order keeps its SLA deadlines (computed in working time when it is created) and,
once reached, whether each was met: reports are then plain ``GROUP BY`` queries with
no calendar arithmetic in SQL.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Date,
    Enum,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from linli.core import audit
from linli.db.base import Base, TenantOwned, tenant_fk

MONEY = Numeric(14, 2)


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(cls, name=name, values_callable=lambda e: [m.value for m in e])


class OrderKind(enum.StrEnum):
    REPAIR = "repair"  # 报修
    COMPLAINT = "complaint"  # 投诉
    INQUIRY = "inquiry"  # 咨询


class Priority(enum.StrEnum):
    URGENT = "urgent"  # 紧急
    HIGH = "high"  # 高
    NORMAL = "normal"  # 普通
    LOW = "low"  # 低


class OrderStatus(enum.StrEnum):
    NEW = "new"  # 待派单
    ASSIGNED = "assigned"  # 已派单
    IN_PROGRESS = "in_progress"  # 处理中 (accepted by the technician)
    FINISHED = "finished"  # 已完工, waiting for the resident
    CLOSED = "closed"  # 已评价 / 已关闭
    CANCELLED = "cancelled"  # 已取消


OPEN_STATUSES = (OrderStatus.NEW, OrderStatus.ASSIGNED, OrderStatus.IN_PROGRESS)


class OrderSource(enum.StrEnum):
    PORTAL = "portal"  # 住户自助
    PHONE = "phone"  # 电话报修 (front desk)
    STAFF = "staff"  # 巡检发现


class ChargeKind(enum.StrEnum):
    PART = "part"  # 材料费
    LABOUR = "labour"  # 人工费


class HolidayKind(enum.StrEnum):
    HOLIDAY = "holiday"  # 法定节假日: no working time
    WORKDAY = "workday"  # 调休上班: a weekend day that is worked


class WorkOrderCategory(TenantOwned, Base):
    """A kind of request (水电维修, 门窗, 噪音投诉...) with its SLA by priority.

    ``sla`` maps a priority to ``{"response_minutes": n, "completion_minutes": m}``,
    both in working minutes of the community's calendar.
    """

    __tablename__ = "work_order_categories"
    __table_args__ = (
        tenant_fk(["community_id"], "communities"),
        UniqueConstraint("tenant_id", "community_id", "name"),
    )

    community_id: Mapped[uuid.UUID]
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[OrderKind] = mapped_column(_enum(OrderKind, "work_order_kind"))
    default_priority: Mapped[Priority] = mapped_column(
        _enum(Priority, "work_order_priority"), default=Priority.NORMAL
    )
    sla: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    archived_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class WorkCalendar(TenantOwned, Base):
    """Working hours of a community's service desk (工作时间), per weekday.

    ``weekly`` maps ISO weekday "1".."7" to ``[["09:00", "18:00"], ...]``.
    """

    __tablename__ = "work_order_calendars"
    __table_args__ = (
        tenant_fk(["community_id"], "communities"),
        UniqueConstraint("tenant_id", "community_id"),
    )

    community_id: Mapped[uuid.UUID]
    weekly: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class WorkHoliday(TenantOwned, Base):
    """A public holiday (法定节假日) or a swapped working day (调休) of one community."""

    __tablename__ = "work_order_holidays"
    __table_args__ = (
        tenant_fk(["community_id"], "communities"),
        UniqueConstraint("tenant_id", "community_id", "day"),
    )

    community_id: Mapped[uuid.UUID]
    day: Mapped[dt.date] = mapped_column(Date)
    kind: Mapped[HolidayKind] = mapped_column(_enum(HolidayKind, "work_holiday_kind"))
    name: Mapped[str] = mapped_column(String(100), default="")


class TechnicianCoverage(TenantOwned, Base):
    """Which technician takes which orders (by community, optionally category and building)."""

    __tablename__ = "work_order_coverage"
    __table_args__ = (
        tenant_fk(["community_id"], "communities"),
        tenant_fk(["technician_id"], "staff_users", ondelete="CASCADE"),
        tenant_fk(["category_id"], "work_order_categories", ondelete="CASCADE"),
        tenant_fk(["building_id"], "buildings", ondelete="CASCADE"),
        UniqueConstraint(
            "tenant_id",
            "technician_id",
            "community_id",
            "category_id",
            "building_id",
            postgresql_nulls_not_distinct=True,
        ),
        Index(None, "tenant_id", "community_id"),
    )

    technician_id: Mapped[uuid.UUID]
    community_id: Mapped[uuid.UUID]
    category_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    building_id: Mapped[uuid.UUID | None] = mapped_column(default=None)


class WorkOrder(TenantOwned, Base):
    """A work order (工单): a repair, complaint or inquiry, with its SLA clocks."""

    __tablename__ = "work_orders"
    __table_args__ = (
        tenant_fk(["community_id"], "communities"),
        tenant_fk(["category_id"], "work_order_categories"),
        tenant_fk(["house_id"], "houses"),
        tenant_fk(["building_id"], "buildings"),
        tenant_fk(["assignee_id"], "staff_users"),
        Index(None, "tenant_id", "community_id", "status"),
        Index(None, "tenant_id", "assignee_id", "status"),
        Index(None, "tenant_id", "reporter_account_id"),
        Index(
            "ix_work_orders_open_due",
            "tenant_id",
            "completion_due_at",
            postgresql_where=text("status IN ('new', 'assigned', 'in_progress')"),
        ),
    )

    community_id: Mapped[uuid.UUID]
    number: Mapped[str] = mapped_column(String(20))
    kind: Mapped[OrderKind] = mapped_column(_enum(OrderKind, "work_order_kind"))
    category_id: Mapped[uuid.UUID]
    priority: Mapped[Priority] = mapped_column(_enum(Priority, "work_order_priority"))
    status: Mapped[OrderStatus] = mapped_column(
        _enum(OrderStatus, "work_order_status"), default=OrderStatus.NEW
    )
    source: Mapped[OrderSource] = mapped_column(_enum(OrderSource, "work_order_source"))
    house_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    building_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    location: Mapped[str] = mapped_column(String(200), default="")  # common area (公共区域)
    description: Mapped[str] = mapped_column(Text)
    preferred_from: Mapped[dt.datetime | None] = mapped_column(default=None)
    preferred_to: Mapped[dt.datetime | None] = mapped_column(default=None)
    reporter_account_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    reporter_name: Mapped[str] = mapped_column(String(100), default="")
    contact_phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    created_by_staff_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    assigned_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    accepted_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    finished_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    closed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    # SLA, in wall-clock instants computed from working time at creation (and reopening).
    response_due_at: Mapped[dt.datetime]
    completion_due_at: Mapped[dt.datetime]
    response_warn_at: Mapped[dt.datetime]
    completion_warn_at: Mapped[dt.datetime]
    response_warned_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    completion_warned_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    # Measured in working minutes when reached, with the verdict against the SLA.
    response_minutes: Mapped[int | None] = mapped_column(Integer, default=None)
    completion_minutes: Mapped[int | None] = mapped_column(Integer, default=None)
    response_met: Mapped[bool | None] = mapped_column(default=None)
    completion_met: Mapped[bool | None] = mapped_column(default=None)
    rating: Mapped[int | None] = mapped_column(SmallInteger, default=None)
    rating_comment: Mapped[str] = mapped_column(String(500), default="")
    reopen_count: Mapped[int] = mapped_column(SmallInteger, default=0)


class WorkOrderEvent(TenantOwned, Base):
    """One line of an order's timeline (工单轨迹): who did what, when."""

    __tablename__ = "work_order_events"
    __table_args__ = (
        tenant_fk(["order_id"], "work_orders", ondelete="CASCADE"),
        Index(None, "tenant_id", "order_id"),
    )

    order_id: Mapped[uuid.UUID]
    kind: Mapped[str] = mapped_column(String(40))
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[uuid.UUID]
    actor_name: Mapped[str] = mapped_column(String(100), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class WorkOrderPhoto(TenantOwned, Base):
    """A photo of an order (reported, during work, finished), checked to be a real image."""

    __tablename__ = "work_order_photos"
    __table_args__ = (
        tenant_fk(["order_id"], "work_orders", ondelete="CASCADE"),
        Index(None, "tenant_id", "order_id"),
    )

    order_id: Mapped[uuid.UUID]
    stage: Mapped[str] = mapped_column(String(16))
    content_type: Mapped[str] = mapped_column(String(40))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_by: Mapped[uuid.UUID]


class WorkOrderCharge(TenantOwned, Base):
    """A part or labour line of an order (材料费/人工费); billing picks these up later."""

    __tablename__ = "work_order_charges"
    __table_args__ = (
        tenant_fk(["order_id"], "work_orders", ondelete="CASCADE"),
        Index(None, "tenant_id", "order_id"),
    )

    order_id: Mapped[uuid.UUID]
    kind: Mapped[ChargeKind] = mapped_column(_enum(ChargeKind, "work_order_charge_kind"))
    description: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    unit_price: Mapped[Decimal] = mapped_column(MONEY)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    recorded_by: Mapped[uuid.UUID]


# Audit rows of an order carry its community (community managers read their own trail).
audit.community_of_target(
    "work_order", tenant=WorkOrder.tenant_id, key=WorkOrder.id, community=WorkOrder.community_id
)
