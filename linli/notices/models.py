"""Tables of the notices domain: announcements (公告), their audience and read receipts."""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import ARRAY, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from linli.db.base import Base, TenantOwned, tenant_fk


class Audience(enum.StrEnum):
    COMMUNITY = "community"  # everyone living in the community (全体业主)
    BUILDINGS = "buildings"  # the residents of some buildings (楼栋)
    HOUSES = "houses"  # the residents of selected houses


class NoticeStatus(enum.StrEnum):
    DRAFT = "draft"  # 草稿
    PENDING = "pending"  # 待审批: submitted, waiting for a manager
    SCHEDULED = "scheduled"  # 已审批, published at ``publish_at``
    PUBLISHED = "published"  # 已发布
    REJECTED = "rejected"  # 已退回: back to its author, who may edit and submit again
    WITHDRAWN = "withdrawn"  # 已撤回


class Announcement(TenantOwned, Base):
    """An announcement to a community, some of its buildings or some of its houses."""

    __tablename__ = "announcements"
    __table_args__ = (
        tenant_fk(["community_id"], "communities"),
        Index(None, "tenant_id", "community_id", "status"),
        Index(None, "tenant_id", "status", "publish_at"),
    )

    community_id: Mapped[uuid.UUID]
    title: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text)
    audience: Mapped[str] = mapped_column(String(12), default=Audience.COMMUNITY.value)
    status: Mapped[str] = mapped_column(String(12), default=NoticeStatus.DRAFT.value)
    pinned: Mapped[bool] = mapped_column(default=False)
    channels: Mapped[list[str]] = mapped_column(ARRAY(String(10)), default=list)
    publish_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    expires_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    created_by: Mapped[uuid.UUID]
    submitted_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    reviewed_by: Mapped[uuid.UUID | None] = mapped_column(default=None)
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    review_note: Mapped[str] = mapped_column(String(400), default="")
    published_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    recipients: Mapped[int] = mapped_column(default=0)


class AnnouncementTarget(TenantOwned, Base):
    """One building or one house of an announcement's audience."""

    __tablename__ = "announcement_targets"
    __table_args__ = (
        tenant_fk(["announcement_id"], "announcements", ondelete="CASCADE"),
        # A deleted house or building simply leaves the audience of old announcements.
        tenant_fk(["building_id"], "buildings", ondelete="CASCADE"),
        tenant_fk(["house_id"], "houses", ondelete="CASCADE"),
        UniqueConstraint(
            "tenant_id",
            "announcement_id",
            "building_id",
            "house_id",
            postgresql_nulls_not_distinct=True,
        ),
    )

    announcement_id: Mapped[uuid.UUID]
    building_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    house_id: Mapped[uuid.UUID | None] = mapped_column(default=None)


class AnnouncementRead(Base):
    """A read receipt: this resident opened this announcement (first time kept)."""

    __tablename__ = "announcement_reads"
    __table_args__ = (
        tenant_fk(["announcement_id"], "announcements", ondelete="CASCADE"),
        tenant_fk(["resident_id"], "residents", ondelete="CASCADE"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    announcement_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    resident_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    read_at: Mapped[dt.datetime] = mapped_column()
