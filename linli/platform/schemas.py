"""API shapes of the open platform. The manifest is validated here, field by field."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import uuid
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, ConfigDict, Field, field_validator

from linli.core.schemas import Schema
from linli.platform import events, scopes

MAX_ICON_BYTES = 64 * 1024
# Raster images only: an SVG can carry script, and icons are shown to every company.
ICON_MAGIC = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/webp": (b"RIFF",),
}
_MARKUP = re.compile(r"[<>\x00-\x1f\x7f]")


def _plain(value: str) -> str:
    if _MARKUP.search(value):
        raise ValueError("must be plain text: no markup or control characters")
    return value


def _https_url(value: str) -> str:
    if not value:
        return value
    parts = urlsplit(value)
    loopback = parts.hostname in {"127.0.0.1", "localhost", "::1"}
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL")
    if parts.scheme == "http" and not loopback:
        raise ValueError("must use https (http only for 127.0.0.1 / localhost)")
    if parts.fragment or parts.username or parts.password:
        raise ValueError("must not carry a fragment or credentials")
    return value


PlainName = Annotated[str, Field(min_length=1, max_length=60), AfterValidator(_plain)]
Url = Annotated[str, Field(max_length=500), AfterValidator(_https_url)]


class PartnerRegister(Schema):
    company_name: PlainName
    email: str = Field(min_length=3, max_length=200, pattern=r"^[^@\s]+@[^@\s]+$")
    display_name: PlainName
    password: str = Field(min_length=10, max_length=200)


class DeveloperLogin(Schema):
    email: str = Field(max_length=200)
    password: str = Field(max_length=200)


class DeveloperToken(Schema):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int


class Manifest(Schema):
    """What an app declares (应用清单). Every field is checked; nothing is rendered raw."""

    name: PlainName
    description: str = Field(default="", max_length=2000)
    icon_base64: str | None = Field(default=None, max_length=MAX_ICON_BYTES * 4 // 3 + 8)
    icon_type: str = ""
    requested_scopes: list[str] = Field(default_factory=list, max_length=20)
    webhook_url: Url = ""
    events: list[str] = Field(default_factory=list, max_length=50)
    entry_url: Url = ""
    console_url: Url = ""
    redirect_uris: list[Url] = Field(default_factory=list, max_length=10)

    @field_validator("description")
    @classmethod
    def _no_control(cls, value: str) -> str:
        if re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", value):
            raise ValueError("must not contain control characters")
        return value

    @field_validator("requested_scopes")
    @classmethod
    def _known_scopes(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - scopes.INSTALLATION_SCOPES)
        if unknown:
            raise ValueError(f"unknown scopes: {', '.join(unknown)}")
        return sorted(set(value))

    @field_validator("events")
    @classmethod
    def _known_events(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(events.CATALOG))
        if unknown:
            raise ValueError(f"unknown event types: {', '.join(unknown)}")
        return sorted(set(value))

    def icon(self) -> tuple[bytes | None, str]:
        """The decoded icon and its type, or a ValueError naming what is wrong."""
        if not self.icon_base64:
            return None, ""
        try:
            data = base64.b64decode(self.icon_base64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("icon is not base64") from exc
        if len(data) > MAX_ICON_BYTES:
            raise ValueError(f"icon is larger than {MAX_ICON_BYTES // 1024} KiB")
        magic = ICON_MAGIC.get(self.icon_type)
        if magic is None:
            raise ValueError("icon type must be image/png, image/jpeg or image/webp")
        if not any(data.startswith(m) for m in magic):
            raise ValueError("icon content does not match its type")
        return data, self.icon_type


class AppRead(Schema):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    partner_id: uuid.UUID
    name: str
    description: str
    icon_type: str
    requested_scopes: list[str]
    events: list[str]
    webhook_url: str
    entry_url: str
    console_url: str
    redirect_uris: list[str]
    review_status: str
    review_note: str
    webhook_disabled_at: dt.datetime | None
    created_at: dt.datetime


class AppCreated(AppRead):
    webhook_secret: str  # shown once


class CredentialIssued(Schema):
    client_id: str
    client_secret: str  # shown once; stored hashed
    environment: str


class ReviewDecision(Schema):
    approve: bool
    note: str = Field(default="", max_length=1000)


class SuspendRequest(Schema):
    reason: str = Field(min_length=1, max_length=1000)


class InstallRequest(Schema):
    app_id: uuid.UUID
    community_ids: list[uuid.UUID] = Field(min_length=1, max_length=5000)
    scopes: list[str] = Field(max_length=20)


class InstallationRead(Schema):
    id: uuid.UUID
    app_id: uuid.UUID
    app_name: str
    granted_scopes: list[str]
    community_ids: list[uuid.UUID]
    created_at: dt.datetime
    revoked_at: dt.datetime | None


class TokenAnswer(Schema):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int
    scope: str
    id_token: str | None = None


class Introspection(Schema):
    model_config = ConfigDict(extra="allow")

    active: bool


class DeliveryRead(Schema):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    tenant_id: uuid.UUID
    installation_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str
    next_attempt_at: dt.datetime
    delivered_at: dt.datetime | None
    created_at: dt.datetime


class AccessDay(Schema):
    day: dt.date
    app_id: uuid.UUID
    app_name: str
    calls: int
    records: int
    refused: int
    anomaly: bool


class NotificationSend(Schema):
    resident_id: uuid.UUID
    title: PlainName
    body: str = Field(min_length=1, max_length=500)
    link: Url = ""


class ParcelArrived(Schema):
    resident_id: uuid.UUID
    place: PlainName
    code: str = Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9-]+$")


class Sent(Schema):
    dedupe_key: str
