"""API shapes of the notifications domain."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import Field

from linli.core.schemas import ReadSchema, Schema


class DeliveryRead(ReadSchema):
    """A line of the delivery log. No phone, no openid: the recipient is an id."""

    id: uuid.UUID
    notification_id: uuid.UUID
    recipient_key: str
    community_id: uuid.UUID | None
    template: str
    channel: str
    status: str
    attempts: int
    last_error: str
    provider_ref: str
    created_at: dt.datetime
    updated_at: dt.datetime | None
    sent_at: dt.datetime | None


class TemplateRead(Schema):
    key: str
    channels: list[str]
    rate_limit: str
    sms_template: str
    wechat_template_id: str | None
    title: dict[str, str]
    body: dict[str, str]


class InboxItemRead(ReadSchema):
    id: uuid.UUID
    company_id: uuid.UUID
    company_name: str
    template: str
    title: str
    body: str
    link: str
    created_at: dt.datetime
    read_at: dt.datetime | None


class Inbox(Schema):
    items: list[InboxItemRead]
    unread: int


class PreferencesRead(Schema):
    locale: str
    opt_outs: list[str]


class PreferencesUpdate(Schema):
    locale: str = Field("zh_CN", max_length=10)
    opt_outs: list[str] = Field(
        default_factory=list,
        max_length=100,
        description='"<template>:<channel>" or "*:<channel>"; channel sms or wechat',
    )
