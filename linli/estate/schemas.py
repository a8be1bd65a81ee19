"""API shapes of the estate registry."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from decimal import Decimal

from pydantic import Field, field_validator

from linli.core.schemas import ReadSchema, Schema
from linli.estate.models import HouseStatus, HouseType, ParkingUsage

NUMBER = r"^[0-9A-Za-z][0-9A-Za-z-]{0,19}$"
Area = Decimal


class FeeSettings(Schema):
    """Property-fee settings of a community (物业费标准): yuan per m² per month by house type."""

    rate_per_m2: dict[HouseType, Decimal] = Field(default_factory=dict)
    billing_day: int = Field(1, ge=1, le=28, description="day of month bills are issued")
    due_days: int = Field(15, ge=0, le=120, description="days after issue a bill falls due")

    @field_validator("rate_per_m2")
    @classmethod
    def non_negative(cls, value: dict[HouseType, Decimal]) -> dict[HouseType, Decimal]:
        for rate in value.values():
            if rate < 0 or rate.as_tuple().exponent < -4:  # type: ignore[operator]
                raise ValueError("rates are non-negative with at most 4 decimals")
        return value


class CommunityProfileUpdate(Schema):
    name: str | None = Field(None, min_length=1, max_length=200)
    address: str | None = Field(None, max_length=400)
    timezone: str | None = Field(None, max_length=64)
    area_m2: Decimal | None = Field(None, gt=0, max_digits=12, decimal_places=2)
    contact_phone: str | None = Field(None, max_length=32, pattern=r"^[0-9+\- ]*$")
    fee_settings: FeeSettings | None = None

    @field_validator("timezone")
    @classmethod
    def known_timezone(cls, value: str | None) -> str | None:
        if value is not None and value not in zoneinfo.available_timezones():
            raise ValueError("unknown time zone")
        return value


class CommunityProfile(ReadSchema):
    id: uuid.UUID
    code: str
    name: str
    address: str
    timezone: str
    area_m2: Decimal | None
    contact_phone: str
    fee_settings: dict[str, object]


class BuildingCreate(Schema):
    community_id: uuid.UUID
    building_no: str = Field(pattern=NUMBER, description="e.g. 3 for 3栋")
    name: str = Field("", max_length=100)
    floors_above: int | None = Field(None, ge=1, le=200)
    floors_below: int | None = Field(None, ge=0, le=20)


class BuildingRead(ReadSchema):
    id: uuid.UUID
    community_id: uuid.UUID
    building_no: str
    name: str
    floors_above: int | None
    floors_below: int | None
    created_at: dt.datetime


class UnitCreate(Schema):
    unit_no: str = Field(pattern=NUMBER)
    name: str = Field("", max_length=100)


class UnitRead(ReadSchema):
    id: uuid.UUID
    community_id: uuid.UUID
    building_id: uuid.UUID
    unit_no: str
    name: str


class HouseCreate(Schema):
    building_id: uuid.UUID
    unit_id: uuid.UUID | None = None
    house_no: str = Field(pattern=NUMBER)
    floor: int | None = Field(None, ge=-20, le=200)
    building_area: Decimal = Field(gt=0, max_digits=10, decimal_places=2, description="建筑面积 m²")
    inner_area: Decimal | None = Field(
        None, gt=0, max_digits=10, decimal_places=2, description="套内面积 m²"
    )
    house_type: HouseType = HouseType.RESIDENCE
    status: HouseStatus = HouseStatus.DELIVERED


class HouseUpdate(Schema):
    house_no: str | None = Field(None, pattern=NUMBER)
    floor: int | None = Field(None, ge=-20, le=200)
    building_area: Decimal | None = Field(None, gt=0, max_digits=10, decimal_places=2)
    inner_area: Decimal | None = Field(None, gt=0, max_digits=10, decimal_places=2)
    house_type: HouseType | None = None
    status: HouseStatus | None = None


class HouseRead(ReadSchema):
    id: uuid.UUID
    community_id: uuid.UUID
    building_id: uuid.UUID
    unit_id: uuid.UUID | None
    house_no: str
    floor: int | None
    building_area: Decimal
    inner_area: Decimal | None
    house_type: HouseType
    status: HouseStatus
    archived_at: dt.datetime | None
    created_at: dt.datetime


class ParkingAreaCreate(Schema):
    community_id: uuid.UUID
    name: str = Field(min_length=1, max_length=100)
    underground: bool = False


class ParkingAreaUpdate(Schema):
    name: str | None = Field(None, min_length=1, max_length=100)
    underground: bool | None = None


class ParkingAreaRead(ReadSchema):
    id: uuid.UUID
    community_id: uuid.UUID
    name: str
    underground: bool
    archived_at: dt.datetime | None = None


class ParkingSpaceCreate(Schema):
    area_id: uuid.UUID
    space_no: str = Field(pattern=NUMBER)
    usage: ParkingUsage = ParkingUsage.TEMPORARY
    house_id: uuid.UUID | None = None
    area_m2: Decimal | None = Field(None, gt=0, max_digits=10, decimal_places=2)


class ParkingSpacesAdd(Schema):
    """Many spaces at once, typed as people type them: ``B1-001..B1-120, B2-001``."""

    numbers: str = Field(min_length=1, max_length=2000, examples=["B1-001..B1-120"])
    usage: ParkingUsage = ParkingUsage.TEMPORARY


class ParkingSpacesAdded(Schema):
    created: int
    existing: int = Field(description="numbers the area already had, left as they were")


class ParkingSpaceUpdate(Schema):
    """Change a space; omitted fields stay. Binding to a house (``house_id``) or resident
    (``resident_id``) needs an owned or rented space; null for both releases it."""

    space_no: str | None = Field(None, pattern=NUMBER)
    usage: ParkingUsage | None = Field(None, description="unchanged if omitted")
    house_id: uuid.UUID | None = None
    resident_id: uuid.UUID | None = None
    lease_start: dt.date | None = Field(None, description="rented spaces only")
    lease_end: dt.date | None = None
    area_m2: Decimal | None = Field(None, gt=0, max_digits=10, decimal_places=2)


ParkingSpaceBind = ParkingSpaceUpdate


class ParkingSpaceRead(ReadSchema):
    id: uuid.UUID
    community_id: uuid.UUID
    area_id: uuid.UUID
    space_no: str
    usage: ParkingUsage
    house_id: uuid.UUID | None
    resident_id: uuid.UUID | None = None
    lease_start: dt.date | None = None
    lease_end: dt.date | None = None
    area_m2: Decimal | None
    archived_at: dt.datetime | None = None


class FacilityCreate(Schema):
    community_id: uuid.UUID
    name: str = Field(min_length=1, max_length=100)
    kind: str = Field(
        "other", pattern=r"^[a-z_]{1,40}$", description="lift, pump_room, clubhouse, ..."
    )
    location: str = Field("", max_length=200)
    building_id: uuid.UUID | None = None


class FacilityUpdate(Schema):
    name: str | None = Field(None, min_length=1, max_length=100)
    kind: str | None = Field(None, pattern=r"^[a-z_]{1,40}$")
    location: str | None = Field(None, max_length=200)
    building_id: uuid.UUID | None = None


class FacilityRead(ReadSchema):
    id: uuid.UUID
    community_id: uuid.UUID
    name: str
    kind: str
    location: str
    building_id: uuid.UUID | None
    archived_at: dt.datetime | None = None


class UnitNodeRead(Schema):
    id: uuid.UUID | None
    unit_no: str | None
    houses: int
    occupied: int


class BuildingNodeRead(Schema):
    id: uuid.UUID
    building_no: str
    name: str
    houses: int
    occupied: int
    units: list[UnitNodeRead]


class CommunityTree(Schema):
    community_id: uuid.UUID
    buildings: list[BuildingNodeRead]


class HouseLeaf(ReadSchema):
    id: uuid.UUID
    house_no: str
    floor: int | None
    building_area: Decimal
    status: HouseStatus
    house_type: HouseType


class UnitHouses(Schema):
    unit_id: uuid.UUID | None
    unit_no: str | None
    houses: list[HouseLeaf]


class BuildingTree(Schema):
    building_id: uuid.UUID
    units: list[UnitHouses]


class CommunityStats(Schema):
    community_id: uuid.UUID
    code: str
    name: str
    buildings: int
    houses: int
    by_status: dict[str, int]
    building_area: Decimal
    occupancy_rate: Decimal = Field(description="occupied / sold houses, 0..1")
    residents: int
    parking_spaces: int = Field(0, description="spaces not archived")
    parking_held: int = Field(0, description="spaces owned or rented to a house or resident")
