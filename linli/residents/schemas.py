"""API shapes of residents, vehicles, claims and the resident portal."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal

from pydantic import Field, field_validator

from linli.core import crypto
from linli.core.schemas import ReadSchema, Schema
from linli.residents.models import ClaimStatus, Gender, Relation
from linli.residents.validators import normalize_id_card, normalize_plate

TAG = r"^[^\s,]{1,32}$"


def _phone(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    phone = crypto.normalize_phone(value)
    if phone is None:
        raise ValueError("not a valid mainland mobile number")
    return phone


class ResidentCreate(Schema):
    name: str = Field(min_length=1, max_length=100)
    phone: str | None = Field(None, max_length=32)
    id_card: str | None = Field(None, max_length=32)
    gender: Gender | None = None
    birth_date: dt.date | None = None
    tags: list[str] = Field(default_factory=list, max_length=20)
    house_id: uuid.UUID | None = Field(None, description="optional: a person may have no house yet")
    relation: Relation | None = None
    lease_start: dt.date | None = None
    lease_end: dt.date | None = None
    community_id: uuid.UUID | None = Field(
        None,
        description="community a person without a house is registered in (登记小区); "
        "required then for staff limited to some communities",
    )

    @field_validator("phone")
    @classmethod
    def valid_phone(cls, value: str | None) -> str | None:
        return _phone(value)

    @field_validator("id_card")
    @classmethod
    def valid_id_card(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        normalized = normalize_id_card(value)
        if normalized is None:
            raise ValueError("not a valid 18-digit resident ID number")
        return normalized

    @field_validator("tags")
    @classmethod
    def valid_tags(cls, value: list[str]) -> list[str]:
        return _tags(value)


def _tags(value: list[str]) -> list[str]:
    for tag in value:
        if not re.match(TAG, tag):
            raise ValueError("tags are 1-32 characters without spaces or commas")
    return sorted(set(value))


class ResidentUpdate(Schema):
    name: str | None = Field(None, min_length=1, max_length=100)
    phone: str | None = Field(None, max_length=32)
    id_card: str | None = Field(None, max_length=32)
    gender: Gender | None = None
    birth_date: dt.date | None = None
    tags: list[str] | None = Field(None, max_length=20)

    @field_validator("tags")
    @classmethod
    def valid_tags(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _tags(value)


class ResidentRead(Schema):
    id: uuid.UUID
    name: str
    phone: str | None = Field(description="full number, or masked without residents.contact.read")
    id_card: str | None
    contact_masked: bool
    gender: Gender | None
    birth_date: dt.date | None
    tags: list[str]
    community_id: uuid.UUID | None = Field(
        None, description="community registered in (people without a house)"
    )
    created_at: dt.datetime


class MoveIn(Schema):
    house_id: uuid.UUID
    relation: Relation
    lease_start: dt.date | None = None
    lease_end: dt.date | None = None
    moved_in_on: dt.date | None = None


class MoveOut(Schema):
    moved_out_on: dt.date | None = None


class LinkRead(ReadSchema):
    id: uuid.UUID
    resident_id: uuid.UUID
    house_id: uuid.UUID
    community_id: uuid.UUID
    relation: Relation
    lease_start: dt.date | None
    lease_end: dt.date | None
    moved_in_on: dt.date | None
    moved_out_on: dt.date | None
    source: str


class ResidentHouseRead(Schema):
    link: LinkRead
    house_id: uuid.UUID
    community_name: str
    building_no: str
    unit_no: str | None
    house_no: str


class HouseMemberRead(Schema):
    link: LinkRead
    resident: ResidentRead


class VehicleCreate(Schema):
    community_id: uuid.UUID
    plate: str = Field(
        max_length=20, description="京A12345, 粤BD12345 (new energy); spaces, · and case ignored"
    )
    resident_id: uuid.UUID | None = None
    house_id: uuid.UUID | None = None
    brand: str = Field("", max_length=40)
    color: str = Field("", max_length=20)

    @field_validator("plate")
    @classmethod
    def valid_plate(cls, value: str) -> str:
        plate = normalize_plate(value)
        if plate is None:
            raise ValueError("not a valid mainland licence plate")
        return plate


class VehicleUpdate(Schema):
    plate: str | None = Field(None, max_length=20)
    resident_id: uuid.UUID | None = None
    house_id: uuid.UUID | None = None
    brand: str | None = Field(None, max_length=40)
    color: str | None = Field(None, max_length=20)

    @field_validator("plate")
    @classmethod
    def valid_plate(cls, value: str | None) -> str | None:
        if value is None:
            return None
        plate = normalize_plate(value)
        if plate is None:
            raise ValueError("not a valid mainland licence plate")
        return plate


class VehicleRead(ReadSchema):
    id: uuid.UUID
    community_id: uuid.UUID
    plate: str
    new_energy: bool
    resident_id: uuid.UUID | None
    house_id: uuid.UUID | None
    brand: str
    color: str
    archived_at: dt.datetime | None = None


class ClaimCreate(Schema):
    company: str = Field(min_length=2, max_length=40, description="company code (tenant slug)")
    community_code: str = Field(min_length=1, max_length=40)
    house: str = Field(min_length=1, max_length=40, description="3-2-1201 or 3栋2单元1201")
    name: str = Field(min_length=1, max_length=100)
    relation: Relation = Relation.OWNER


class ClaimRead(ReadSchema):
    id: uuid.UUID
    community_id: uuid.UUID
    house_id: uuid.UUID
    name: str
    relation: Relation
    status: ClaimStatus
    reason: str
    reviewed_at: dt.datetime | None
    created_at: dt.datetime


class ClaimReject(Schema):
    reason: str = Field(min_length=1, max_length=400)


class MemberCreate(Schema):
    company_id: uuid.UUID
    name: str = Field(min_length=1, max_length=100)
    phone: str | None = Field(None, max_length=32)
    relation: Relation
    lease_start: dt.date | None = None
    lease_end: dt.date | None = None

    @field_validator("phone")
    @classmethod
    def valid_phone(cls, value: str | None) -> str | None:
        return _phone(value)


class HomeMemberRead(Schema):
    link_id: uuid.UUID
    resident_id: uuid.UUID
    name: str
    relation: Relation
    phone_masked: str | None
    is_me: bool
    lease_end: dt.date | None


class HomeVehicleRead(Schema):
    plate: str
    new_energy: bool
    brand: str
    color: str


class HomeRead(Schema):
    company_id: uuid.UUID
    company_name: str
    community_id: uuid.UUID
    community_name: str
    house_id: uuid.UUID
    building_no: str
    unit_no: str | None
    house_no: str
    building_area: Decimal
    my_relation: Relation
    members: list[HomeMemberRead]
    vehicles: list[HomeVehicleRead]


class MyClaimRead(Schema):
    company_id: uuid.UUID
    claim_id: uuid.UUID
    house_id: uuid.UUID
    relation: Relation
    status: ClaimStatus
    reason: str
    created_at: dt.datetime


class MyHomes(Schema):
    homes: list[HomeRead]
    claims: list[MyClaimRead]
