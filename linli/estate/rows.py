"""Row shapes the bulk import engine hands to the estate, residents and staff services.

The import engine parses and validates spreadsheets into these; the services
write them set-based and idempotently by natural key. Values are already
stripped and typed, but the services still validate what they rely on
(communities the actor may see, phone / ID-card / plate formats) because a
service must never trust its caller with another company's data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class UpsertResult:
    created: int
    updated: int
    unchanged: int

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged


@dataclass(frozen=True)
class HouseRow:
    """One house (房屋). Natural key: community + building + unit + house number."""

    community_code: str
    building_no: str
    unit_no: str | None
    house_no: str
    floor: int | None
    building_area: Decimal
    inner_area: Decimal | None = None
    house_type: str = "residence"  # residence | shop | office | storage
    status: str = "delivered"  # unsold | delivered | occupied | vacant | renovating


@dataclass(frozen=True)
class ResidentRow:
    """A person and their relation to one house (住户).

    Natural key of the person: phone, else ID-card number, else name within the
    house. Natural key of the relation: person + house while not moved out.
    """

    name: str
    phone: str | None
    id_card: str | None
    gender: str | None  # male | female | None
    birth_date: dt.date | None
    community_code: str
    building_no: str
    unit_no: str | None
    house_no: str
    relation: str  # owner | co_owner | family | tenant
    lease_start: dt.date | None = None
    lease_end: dt.date | None = None


@dataclass(frozen=True)
class VehicleRow:
    """A vehicle (车辆). Natural key: community + plate."""

    plate: str
    community_code: str
    building_no: str | None = None
    unit_no: str | None = None
    house_no: str | None = None
    owner_phone: str | None = None
    brand: str = ""
    color: str = ""


@dataclass(frozen=True)
class CertificateRow:
    cert_type: str  # e.g. 电工证 / electrician, 消防设施操作员 / fire_safety
    number: str
    expires_on: dt.date | None = None


@dataclass(frozen=True)
class StaffRecordRow:
    """An employee record (员工档案). Natural key: employee number."""

    employee_no: str
    name: str
    phone: str | None = None
    department: str = ""
    position: str = ""
    employment_type: str = "own"  # own | outsourced
    hire_date: dt.date | None = None
    birth_date: dt.date | None = None
    education: str = (
        ""  # primary | junior | senior | vocational | college | bachelor | master | doctor
    )
    community_codes: tuple[str, ...] = ()
    certificates: tuple[CertificateRow, ...] = ()


@dataclass(frozen=True)
class ParkingSpaceRow:
    """A parking space (车位) and its area (停车场). Natural key: community + area + number.

    An owned or rented space may name its holder: a house (building / unit / house
    number) and/or a resident (by mobile number); a rented one its lease dates.
    """

    community_code: str
    area_name: str
    space_no: str
    usage: str = "temporary"  # owned | rented | temporary
    underground: bool | None = None  # None: leave the area as it is
    building_no: str | None = None
    unit_no: str | None = None
    house_no: str | None = None
    owner_phone: str | None = None
    lease_start: dt.date | None = None
    lease_end: dt.date | None = None
    area_m2: Decimal | None = None


@dataclass(frozen=True)
class FacilityRow:
    """A common facility (公共设施). Natural key: community + name."""

    community_code: str
    name: str
    kind: str = "other"  # lift | pump_room | power_room | fire_control | clubhouse | ...
    building_no: str | None = None
    location: str = ""
