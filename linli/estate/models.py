"""Estate registry (房产档案): buildings, units, houses, parking and common facilities.

Floors are an attribute of a house, not a table: nothing in property
management hangs off a floor itself (no fees, no people, no devices), the
building's floor count is kept on the building, and a floor table would add a
join to every tree and search query and ~25 rows per building to every import.

Every natural key (community + building number, building + unit number, ...)
is a unique constraint, so imports are ``INSERT ... ON CONFLICT`` and re-running
one changes nothing.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal

from sqlalchemy import Enum, Index, Numeric, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from linli.core import audit
from linli.db.base import Base, TenantOwned, tenant_fk

AREA = Numeric(10, 2)


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(cls, name=name, values_callable=lambda e: [m.value for m in e])


class HouseType(enum.StrEnum):
    RESIDENCE = "residence"  # 住宅
    SHOP = "shop"  # 商铺
    OFFICE = "office"  # 写字楼 / 办公
    STORAGE = "storage"  # 储藏室


class HouseStatus(enum.StrEnum):
    UNSOLD = "unsold"  # 未售
    DELIVERED = "delivered"  # 已交付 (未入住)
    OCCUPIED = "occupied"  # 已入住
    VACANT = "vacant"  # 空置
    RENOVATING = "renovating"  # 装修中


class ParkingUsage(enum.StrEnum):
    OWNED = "owned"  # 产权车位
    RENTED = "rented"  # 租赁车位
    TEMPORARY = "temporary"  # 临时车位


class Building(TenantOwned, Base):
    """A building (楼栋), numbered within its community (e.g. "3" for 3栋)."""

    __tablename__ = "buildings"
    __table_args__ = (
        tenant_fk(["community_id"], "communities"),
        UniqueConstraint("tenant_id", "community_id", "building_no"),
    )

    community_id: Mapped[uuid.UUID]
    building_no: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(100), default="")
    floors_above: Mapped[int | None] = mapped_column(SmallInteger, default=None)
    floors_below: Mapped[int | None] = mapped_column(SmallInteger, default=None)
    archived_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class Unit(TenantOwned, Base):
    """A unit / entrance (单元) of a building."""

    __tablename__ = "units"
    __table_args__ = (
        tenant_fk(["building_id"], "buildings", ondelete="CASCADE"),
        tenant_fk(["community_id"], "communities"),
        UniqueConstraint("tenant_id", "building_id", "unit_no"),
    )

    community_id: Mapped[uuid.UUID]
    building_id: Mapped[uuid.UUID]
    unit_no: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(100), default="")


class House(TenantOwned, Base):
    """A house / room (房屋): the thing fees, residents and work orders hang on.

    ``unit_id`` is null in buildings without entrances (shops, villas); the
    natural key treats a missing unit as one value (NULLS NOT DISTINCT).
    """

    __tablename__ = "houses"
    __table_args__ = (
        tenant_fk(["community_id"], "communities"),
        tenant_fk(["building_id"], "buildings"),
        tenant_fk(["unit_id"], "units"),
        UniqueConstraint(
            "tenant_id", "building_id", "unit_id", "house_no", postgresql_nulls_not_distinct=True
        ),
        Index(None, "tenant_id", "community_id", "house_no"),
        Index(None, "tenant_id", "unit_id"),
    )

    community_id: Mapped[uuid.UUID]
    building_id: Mapped[uuid.UUID]
    unit_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    house_no: Mapped[str] = mapped_column(String(20))
    floor: Mapped[int | None] = mapped_column(SmallInteger, default=None)
    building_area: Mapped[Decimal] = mapped_column(AREA)
    inner_area: Mapped[Decimal | None] = mapped_column(AREA, default=None)
    house_type: Mapped[HouseType] = mapped_column(
        _enum(HouseType, "house_type"), default=HouseType.RESIDENCE
    )
    status: Mapped[HouseStatus] = mapped_column(
        _enum(HouseStatus, "house_status"), default=HouseStatus.DELIVERED
    )
    archived_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class ParkingArea(TenantOwned, Base):
    """A parking area (停车场 / 车库) of a community."""

    __tablename__ = "parking_areas"
    __table_args__ = (
        tenant_fk(["community_id"], "communities"),
        UniqueConstraint("tenant_id", "community_id", "name"),
    )

    community_id: Mapped[uuid.UUID]
    name: Mapped[str] = mapped_column(String(100))
    underground: Mapped[bool] = mapped_column(default=False)
    archived_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class ParkingSpace(TenantOwned, Base):
    """A parking space (车位); an owned (产权) or rented (租赁) one has a holder: a house, a
    resident, or both (the owner of 3-2-1201 who bought B1-007). A rented one may carry its
    lease dates (租期).
    """

    __tablename__ = "parking_spaces"
    __table_args__ = (
        tenant_fk(["area_id"], "parking_areas", ondelete="CASCADE"),
        tenant_fk(["community_id"], "communities"),
        tenant_fk(["house_id"], "houses"),
        tenant_fk(["resident_id"], "residents"),
        UniqueConstraint("tenant_id", "area_id", "space_no"),
        Index(None, "tenant_id", "house_id"),
        Index(None, "tenant_id", "resident_id"),
    )

    community_id: Mapped[uuid.UUID]
    area_id: Mapped[uuid.UUID]
    space_no: Mapped[str] = mapped_column(String(20))
    usage: Mapped[ParkingUsage] = mapped_column(
        _enum(ParkingUsage, "parking_usage"), default=ParkingUsage.TEMPORARY
    )
    house_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    resident_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    lease_start: Mapped[dt.date | None] = mapped_column(default=None)
    lease_end: Mapped[dt.date | None] = mapped_column(default=None)
    area_m2: Mapped[Decimal | None] = mapped_column(AREA, default=None)
    archived_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class Facility(TenantOwned, Base):
    """A common facility (公共设施): lifts, pump rooms, clubhouse, playground..."""

    __tablename__ = "facilities"
    __table_args__ = (
        tenant_fk(["community_id"], "communities"),
        tenant_fk(["building_id"], "buildings"),
        UniqueConstraint("tenant_id", "community_id", "name"),
    )

    community_id: Mapped[uuid.UUID]
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(40), default="other")
    location: Mapped[str] = mapped_column(String(200), default="")
    building_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    archived_at: Mapped[dt.datetime | None] = mapped_column(default=None)


# The audit trail keeps each change's community, so managers read their communities' part.
for _type, _model in (
    ("building", Building),
    ("unit", Unit),
    ("house", House),
    ("parking_area", ParkingArea),
    ("parking_space", ParkingSpace),
    ("facility", Facility),
):
    audit.community_of_target(
        _type, tenant=_model.tenant_id, key=_model.id, community=_model.community_id
    )
