"""Tables of the open platform.

Partners, their developers, apps and credentials belong to no company: they are
platform rows (``GlobalRow``). What a company decides — installing an app, for
which communities, with which scopes — and what the app then does in that
company (tokens, API calls, webhook deliveries) are tenant rows under RLS.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import (
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from linli.db.base import Base, GlobalRow, TenantOwned, tenant_fk


class ReviewStatus(enum.StrEnum):
    DRAFT = "draft"  # the partner is still editing
    PENDING = "pending"  # submitted, waiting for the platform operator
    APPROVED = "approved"  # listed in every company's app directory
    REJECTED = "rejected"  # sent back with a note
    # Pulled by the operator (下架): no token, webhook, sign-in or portal entry works
    # until reinstated; installations stay, so reinstating restores them as they were.
    SUSPENDED = "suspended"


class Environment(enum.StrEnum):
    TEST = "test"
    LIVE = "live"


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # gave up after the retry window (3 days)


class Partner(GlobalRow, Base):
    """A partner company (合作伙伴 / 开发者企业) building apps on linli."""

    __tablename__ = "platform_partners"

    name: Mapped[str] = mapped_column(String(100))
    contact_email: Mapped[str] = mapped_column(String(200))


class Developer(GlobalRow, Base):
    """A developer account of a partner; signs in to the developer portal only."""

    __tablename__ = "platform_developers"

    partner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("platform_partners.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(200), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(default=True)


class PartnerApp(GlobalRow, Base):
    """An app and its manifest (应用清单)."""

    __tablename__ = "platform_apps"

    partner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("platform_partners.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(60))
    description: Mapped[str] = mapped_column(String(2000), default="")
    icon: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    icon_type: Mapped[str] = mapped_column(String(20), default="")
    requested_scopes: Mapped[list[str]] = mapped_column(ARRAY(String(40)), default=list)
    events: Mapped[list[str]] = mapped_column(ARRAY(String(80)), default=list)
    webhook_url: Mapped[str] = mapped_column(String(500), default="")
    # Standard Webhooks secret (whsec_…), encrypted at rest; the partner sees it once.
    webhook_secret_enc: Mapped[bytes] = mapped_column(LargeBinary)
    webhook_disabled_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    entry_url: Mapped[str] = mapped_column(String(500), default="")
    console_url: Mapped[str] = mapped_column(String(500), default="")
    redirect_uris: Mapped[list[str]] = mapped_column(ARRAY(String(500)), default=list)
    review_status: Mapped[str] = mapped_column(String(10), default=ReviewStatus.DRAFT.value)
    review_note: Mapped[str] = mapped_column(String(1000), default="")
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class AppCredential(GlobalRow, Base):
    """A client id and its secret (stored hashed), one per app and environment at a time."""

    __tablename__ = "platform_app_credentials"
    __table_args__ = (Index(None, "app_id"),)

    app_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("platform_apps.id", ondelete="CASCADE"))
    environment: Mapped[str] = mapped_column(String(4))
    client_id: Mapped[str] = mapped_column(String(60), unique=True)
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class Installation(TenantOwned, Base):
    """A partner app installed by one company (应用安装), with the scopes it granted."""

    __tablename__ = "app_installations"
    __table_args__ = (
        ForeignKeyConstraint(["app_id"], ["platform_apps.id"], ondelete="CASCADE"),
        Index(
            "uq_app_installations_active",
            "tenant_id",
            "app_id",
            unique=True,
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    app_id: Mapped[uuid.UUID]
    granted_scopes: Mapped[list[str]] = mapped_column(ARRAY(String(40)))
    installed_by: Mapped[uuid.UUID]
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    revoked_by: Mapped[uuid.UUID | None] = mapped_column(default=None)


class InstallationCommunity(Base):
    """The communities an installation may see."""

    __tablename__ = "app_installation_communities"
    __table_args__ = (
        tenant_fk(["installation_id"], "app_installations", ondelete="CASCADE"),
        tenant_fk(["community_id"], "communities", ondelete="CASCADE"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    installation_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    community_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)


class AuthorizationCode(TenantOwned, Base):
    """A one-time code of the resident sign-in flow (OAuth 2 code + PKCE), stored hashed.

    The code handed out reads ``<tenant id hex>.<secret>``: the token endpoint
    learns the company from it and then finds the row under that company's RLS.
    """

    __tablename__ = "app_authorization_codes"
    __table_args__ = (
        tenant_fk(["installation_id"], "app_installations", ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "code_hash"),
    )

    installation_id: Mapped[uuid.UUID]
    client_id: Mapped[str] = mapped_column(String(60))
    account_id: Mapped[uuid.UUID]
    redirect_uri: Mapped[str] = mapped_column(String(500))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(40)))
    code_challenge: Mapped[str] = mapped_column(String(128))
    nonce: Mapped[str] = mapped_column(String(200), default="")
    code_hash: Mapped[bytes] = mapped_column(LargeBinary)
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class AppToken(TenantOwned, Base):
    """An access token issued to an installation (``id`` is the token's ``jti``)."""

    __tablename__ = "app_tokens"
    __table_args__ = (
        tenant_fk(["installation_id"], "app_installations", ondelete="CASCADE"),
        Index(None, "tenant_id", "installation_id"),
    )

    installation_id: Mapped[uuid.UUID]
    client_id: Mapped[str] = mapped_column(String(60))
    account_id: Mapped[uuid.UUID | None] = mapped_column(default=None)  # resident flow
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(40)))
    expires_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class AccessLogEntry(TenantOwned, Base):
    """One API call of a partner app (数据访问记录), written in batches."""

    __tablename__ = "app_access_log"
    __table_args__ = (
        tenant_fk(["installation_id"], "app_installations", ondelete="CASCADE"),
        Index(None, "tenant_id", "at"),
        Index(None, "tenant_id", "installation_id", "at"),
    )

    installation_id: Mapped[uuid.UUID]
    app_id: Mapped[uuid.UUID]
    at: Mapped[dt.datetime]
    method: Mapped[str] = mapped_column(String(8))
    endpoint: Mapped[str] = mapped_column(String(200))
    resource: Mapped[str] = mapped_column(String(60))
    community_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    records: Mapped[int] = mapped_column(default=0)
    status: Mapped[int] = mapped_column(default=200)


class WebhookDelivery(TenantOwned, Base):
    """One event owed to one installation's webhook; its log row and its retry state."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        tenant_fk(["installation_id"], "app_installations", ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "installation_id", "event_id"),
        Index(None, "tenant_id", "installation_id", "status", "next_attempt_at"),
        Index(None, "app_id", "created_at"),
    )

    installation_id: Mapped[uuid.UUID]
    app_id: Mapped[uuid.UUID]
    event_id: Mapped[uuid.UUID]
    event_type: Mapped[str] = mapped_column(String(80))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default=DeliveryStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime]
    last_status_code: Mapped[int | None] = mapped_column(default=None)
    last_error: Mapped[str] = mapped_column(String(300), default="")
    delivered_at: Mapped[dt.datetime | None] = mapped_column(default=None)
