"""API shapes of tenants and communities."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo

from pydantic import Field, field_validator

from linli.core.schemas import ReadSchema, Schema

SLUG = r"^[a-z][a-z0-9-]{1,39}$"
CODE = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$"


class CommunityCreate(Schema):
    code: str = Field(pattern=CODE, description="Short code unique in the company, e.g. HY01")
    name: str = Field(min_length=1, max_length=200)
    address: str = Field("", max_length=400)
    timezone: str = Field("Asia/Shanghai", max_length=64)

    @field_validator("timezone")
    @classmethod
    def known_timezone(cls, value: str) -> str:
        if value not in zoneinfo.available_timezones():
            raise ValueError("unknown time zone")
        return value


class CommunityRead(ReadSchema):
    id: uuid.UUID
    code: str
    name: str
    address: str
    timezone: str
    created_at: dt.datetime


class TenantCreate(Schema):
    slug: str = Field(pattern=SLUG, description="Company code used at sign-in, e.g. 'hyyw'")
    name: str = Field(min_length=1, max_length=200)
    admin_username: str = Field(pattern=r"^[A-Za-z0-9_.-]{3,64}$")
    admin_display_name: str = Field(min_length=1, max_length=100)
    admin_password: str = Field(min_length=10, max_length=200)


class TenantRead(ReadSchema):
    id: uuid.UUID
    slug: str
    name: str
    status: str
    created_at: dt.datetime
