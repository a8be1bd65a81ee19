"""API shapes of the notices domain."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import Field

from linli.core.schemas import ReadSchema, Schema
from linli.notices.models import Audience


class AnnouncementCreate(Schema):
    community_id: uuid.UUID
    title: str = Field(min_length=1, max_length=120)
    body: str = Field(min_length=1, max_length=20_000)
    audience: Audience = Audience.COMMUNITY
    building_ids: list[uuid.UUID] = Field(default_factory=list, max_length=500)
    house_ids: list[uuid.UUID] = Field(default_factory=list, max_length=5000)
    pinned: bool = False
    channels: list[str] = Field(
        default_factory=list, max_length=2, description="extra channels: sms, wechat"
    )
    publish_at: dt.datetime | None = Field(None, description="empty = when approved")
    expires_at: dt.datetime | None = None


class AnnouncementUpdate(Schema):
    title: str | None = Field(None, min_length=1, max_length=120)
    body: str | None = Field(None, min_length=1, max_length=20_000)
    audience: Audience | None = None
    building_ids: list[uuid.UUID] | None = Field(None, max_length=500)
    house_ids: list[uuid.UUID] | None = Field(None, max_length=5000)
    pinned: bool | None = None
    channels: list[str] | None = Field(None, max_length=2)
    publish_at: dt.datetime | None = None
    expires_at: dt.datetime | None = None


class ApproveBody(Schema):
    publish_at: dt.datetime | None = Field(
        None, description="schedule for this time; empty = the draft's time, or now"
    )


class RejectBody(Schema):
    note: str = Field(min_length=1, max_length=400)


class AnnouncementRead(ReadSchema):
    id: uuid.UUID
    community_id: uuid.UUID
    title: str
    body: str
    audience: str
    status: str
    pinned: bool
    channels: list[str]
    publish_at: dt.datetime | None
    expires_at: dt.datetime | None
    created_by: uuid.UUID
    created_at: dt.datetime
    submitted_at: dt.datetime | None
    reviewed_by: uuid.UUID | None
    reviewed_at: dt.datetime | None
    review_note: str
    published_at: dt.datetime | None
    recipients: int


class AnnouncementDetail(AnnouncementRead):
    building_ids: list[uuid.UUID]
    house_ids: list[uuid.UUID]


class UnreadResidentRead(ReadSchema):
    resident_id: uuid.UUID
    name: str
    houses: str


class ReceiptsRead(Schema):
    recipients: int
    read: int
    unread: list[UnreadResidentRead]
    next_cursor: str | None = None


class NoticeRead(ReadSchema):
    id: uuid.UUID
    company_id: uuid.UUID
    company_name: str
    title: str
    body: str
    pinned: bool
    published_at: dt.datetime | None
    expires_at: dt.datetime | None
    read: bool
