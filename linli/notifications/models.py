"""Tables of the notifications domain: inbox messages, deliveries (the delivery log), preferences.

A *notification* is one message to one person (a resident, or a staff member),
readable in their inbox; the portal (or console) inbox is the channel that is
always on. Each outside channel (SMS, WeChat) gets one *delivery* row per
notification: the queue the delivery jobs work from and the log staff read.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import ARRAY, CheckConstraint, Index, SmallInteger, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from linli.db.base import Base, TenantOwned, tenant_fk


class Channel(enum.StrEnum):
    PORTAL = "portal"  # the inbox (站内信); always on
    SMS = "sms"  # 短信
    WECHAT = "wechat"  # 公众号模板消息


OUTSIDE_CHANNELS = (Channel.SMS, Channel.WECHAT)


class DeliveryStatus(enum.StrEnum):
    QUEUED = "queued"  # waiting for (or between attempts of) its job
    SENT = "sent"  # the provider accepted it
    FAILED = "failed"  # gave up: retries exhausted or a permanent refusal
    SKIPPED = "skipped"  # nothing to send to (no phone, no WeChat follower)
    RATE_LIMITED = "rate_limited"  # over the per-resident limit of its template


class Notification(TenantOwned, Base):
    """One message to one recipient (站内信), rendered from its template when read."""

    __tablename__ = "notifications"
    __table_args__ = (
        tenant_fk(["resident_id"], "residents", ondelete="CASCADE"),
        tenant_fk(["staff_id"], "staff_users", ondelete="CASCADE"),
        tenant_fk(["community_id"], "communities"),
        CheckConstraint("(resident_id IS NULL) <> (staff_id IS NULL)", name="one_recipient"),
        # One message per recipient and dedupe key: a repeated publish or event adds nothing.
        Index(
            "uq_notifications_resident_dedupe",
            "tenant_id",
            "resident_id",
            "dedupe_key",
            unique=True,
            postgresql_where=text("resident_id IS NOT NULL"),
        ),
        Index(
            "uq_notifications_staff_dedupe",
            "tenant_id",
            "staff_id",
            "dedupe_key",
            unique=True,
            postgresql_where=text("staff_id IS NOT NULL"),
        ),
        # Finds the messages of one fan-out (an announcement, an event) for deliveries and receipts.
        Index(None, "tenant_id", "dedupe_key"),
    )

    resident_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    staff_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    community_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    template: Mapped[str] = mapped_column(String(60))
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    link: Mapped[str] = mapped_column(String(300), default="")
    source_type: Mapped[str] = mapped_column(String(40), default="")
    source_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    dedupe_key: Mapped[str] = mapped_column(String(120))
    read_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class NotificationDelivery(TenantOwned, Base):
    """One notification through one outside channel: queue item and delivery-log line."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        tenant_fk(["notification_id"], "notifications", ondelete="CASCADE"),
        Index(None, "tenant_id", "notification_id", "channel", unique=True),
        Index(None, "tenant_id", "created_at"),
        # The rate limit counts a recipient's recent deliveries of one template per channel.
        Index(None, "tenant_id", "recipient_key", "template", "channel", "created_at"),
    )

    notification_id: Mapped[uuid.UUID]
    # "r:<resident id>" or "s:<staff id>": one column for the rate-limit index.
    recipient_key: Mapped[str] = mapped_column(String(40))
    community_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    template: Mapped[str] = mapped_column(String(60))
    channel: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.QUEUED.value)
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    last_error: Mapped[str] = mapped_column(String(200), default="")
    provider_ref: Mapped[str] = mapped_column(String(100), default="")
    updated_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    sent_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class NotificationPreference(TenantOwned, Base):
    """A resident's choices: language of outside messages and channel opt-outs.

    ``opt_outs`` holds ``"<template>:<channel>"`` or ``"*:<channel>"`` (every template).
    The inbox cannot be opted out of.
    """

    __tablename__ = "notification_preferences"
    __table_args__ = (
        tenant_fk(["resident_id"], "residents", ondelete="CASCADE"),
        Index(None, "tenant_id", "resident_id", unique=True),
    )

    resident_id: Mapped[uuid.UUID]
    locale: Mapped[str] = mapped_column(String(10), default="zh_CN")
    opt_outs: Mapped[list[str]] = mapped_column(ARRAY(String(80)), default=list)
