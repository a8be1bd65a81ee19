"""API shapes of the access domain."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from pydantic import Field

from linli.access.models import AccessPointKind, DeviceKind, PassKind
from linli.core.schemas import ReadSchema, Schema


class Read(ReadSchema):
    pass


class AccessPointCreate(Schema):
    community_id: uuid.UUID
    kind: AccessPointKind
    name: str = Field(min_length=1, max_length=100)
    building_id: uuid.UUID | None = None


class AccessPointRead(Read):
    id: uuid.UUID
    community_id: uuid.UUID
    kind: AccessPointKind
    name: str
    building_id: uuid.UUID | None


class DeviceCreate(Schema):
    access_point_id: uuid.UUID
    kind: DeviceKind
    name: str = Field(min_length=1, max_length=100)
    vendor: str = Field("", max_length=60)


class DeviceRead(Read):
    id: uuid.UUID
    community_id: uuid.UUID
    access_point_id: uuid.UUID
    kind: DeviceKind
    name: str
    vendor: str
    enabled: bool
    online: bool
    last_seen_at: dt.datetime | None
    firmware: str


class DeviceCredentials(Schema):
    """Shown once, at provisioning or rotation: linli keeps only hashes and public keys."""

    device: DeviceRead
    mqtt_username: str
    mqtt_password: str
    private_key: str = Field(description="base64url of the raw 32-byte Ed25519 private key")
    community_keys: dict[int, str] = Field(description="kid -> base64url Ed25519 public key")
    topics: dict[str, str]


class PassRead(Read):
    id: uuid.UUID
    community_id: uuid.UUID
    kind: PassKind
    holder_name: str
    resident_id: uuid.UUID | None
    access_point_ids: list[uuid.UUID]
    valid_from: dt.datetime
    valid_until: dt.datetime
    max_entries: int | None
    used_entries: int
    revoked_at: dt.datetime | None
    created_at: dt.datetime


class IssuedPass(Schema):
    access_pass: PassRead
    link: str = Field(description="path of the public pass page; give it to the visitor")


class WalkInCreate(Schema):
    community_id: uuid.UUID
    name: str = Field(min_length=1, max_length=100)
    phone: str | None = Field(None, max_length=32)
    hours: int = Field(4, ge=1, le=24)
    entries: int | None = Field(1, ge=1, le=20)
    note: str = Field("", max_length=200)


class CourierPassCreate(Schema):
    community_id: uuid.UUID
    name: str = Field(min_length=1, max_length=100)
    phone: str | None = Field(None, max_length=32)
    valid_from: dt.datetime
    valid_until: dt.datetime
    entries: int | None = Field(None, ge=1, le=20)


class EventRead(Read):
    id: uuid.UUID
    community_id: uuid.UUID
    device_id: uuid.UUID
    access_point_id: uuid.UUID | None
    occurred_at: dt.datetime
    received_at: dt.datetime
    kind: str
    method: str
    direction: str | None
    pass_id: uuid.UUID | None
    resident_id: uuid.UUID | None
    plate: str | None
    reason: str
    detail: dict[str, Any]


class OpenResultRead(Schema):
    device_id: uuid.UUID
    access_point_id: uuid.UUID
    status: str
    millis: float


class TariffWrite(Schema):
    free_minutes: int = Field(ge=0, le=24 * 60)
    hourly: Decimal = Field(ge=0, max_digits=12, decimal_places=2)
    daily_cap: Decimal = Field(ge=0, max_digits=12, decimal_places=2)


class TariffRead(Read):
    community_id: uuid.UUID
    free_minutes: int
    hourly: Decimal
    daily_cap: Decimal


class VehicleEntryRead(Read):
    id: uuid.UUID
    community_id: uuid.UUID
    plate: str
    known: bool
    entered_at: dt.datetime
    exited_at: dt.datetime | None
    fee: Decimal | None


# --- residents ---------------------------------------------------------------------------------


class DoorRead(Read):
    access_point_id: uuid.UUID
    name: str
    kind: AccessPointKind
    online: bool


class MyCommunityRead(Read):
    company_id: uuid.UUID
    company_name: str
    community_id: uuid.UUID
    community_name: str
    pass_id: uuid.UUID
    doors: list[DoorRead]


class MyPassRef(Schema):
    """Which of my resident passes (one per community I live in) the request acts with."""

    company_id: uuid.UUID
    pass_id: uuid.UUID


class OpenRequest(MyPassRef):
    access_point_id: uuid.UUID


class QrRead(Schema):
    token: str
    expires_at: dt.datetime


class VisitorInvite(MyPassRef):
    name: str = Field(min_length=1, max_length=100)
    phone: str | None = Field(None, max_length=32)
    valid_from: dt.datetime
    valid_until: dt.datetime
    entries: int | None = Field(1, ge=1, le=20)


class PublicPassRead(Read):
    holder_name: str
    kind: PassKind
    valid_from: dt.datetime
    valid_until: dt.datetime
    max_entries: int | None
    used_entries: int
    revoked: bool
    community_name: str
    token: str | None
