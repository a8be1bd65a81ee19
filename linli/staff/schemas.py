"""API shapes of staff records (员工档案)."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import Field, field_validator

from linli.core import crypto
from linli.core.schemas import Schema
from linli.staff.models import Education, EmploymentType


class CertificateIn(Schema):
    cert_type: str = Field(min_length=1, max_length=60, description="e.g. 电工证, 消防设施操作员证")
    number: str = Field(min_length=1, max_length=60)
    expires_on: dt.date | None = None


class CertificateRead(CertificateIn):
    pass


def _mainland_phone(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    phone = crypto.normalize_phone(value)
    if phone is None:
        raise ValueError("not a valid mainland mobile number")
    return phone


class StaffRecordCreate(Schema):
    employee_no: str = Field(pattern=r"^[0-9A-Za-z_-]{1,40}$")
    name: str = Field(min_length=1, max_length=100)
    phone: str | None = Field(None, max_length=32)
    department: str = Field("", max_length=100)
    position: str = Field("", max_length=100)
    employment_type: EmploymentType = EmploymentType.OWN
    hire_date: dt.date | None = None
    birth_date: dt.date | None = None
    education: Education = Education.NONE
    staff_user_id: uuid.UUID | None = None
    community_ids: list[uuid.UUID] = Field(default_factory=list, max_length=500)
    certificates: list[CertificateIn] = Field(default_factory=list, max_length=50)

    @field_validator("phone")
    @classmethod
    def valid_phone(cls, value: str | None) -> str | None:
        return _mainland_phone(value)


class StaffRecordUpdate(Schema):
    name: str | None = Field(None, min_length=1, max_length=100)
    department: str | None = Field(None, max_length=100)
    position: str | None = Field(None, max_length=100)
    employment_type: EmploymentType | None = None
    hire_date: dt.date | None = None
    birth_date: dt.date | None = None
    education: Education | None = None
    left_on: dt.date | None = None
    staff_user_id: uuid.UUID | None = None
    community_ids: list[uuid.UUID] | None = Field(None, max_length=500)
    phone: str | None = Field(None, max_length=32, description="work phone; null clears it")
    certificates: list[CertificateIn] | None = Field(
        None, max_length=50, description="the complete list: replaces the record's certificates"
    )

    @field_validator("phone")
    @classmethod
    def valid_phone(cls, value: str | None) -> str | None:
        return _mainland_phone(value)


class StaffRecordRead(Schema):
    id: uuid.UUID
    employee_no: str
    name: str
    phone_masked: str | None
    department: str
    position: str
    employment_type: EmploymentType
    hire_date: dt.date | None
    birth_date: dt.date | None
    education: str
    staff_user_id: uuid.UUID | None
    left_on: dt.date | None
    community_ids: list[uuid.UUID]
    certificates: list[CertificateRead]
