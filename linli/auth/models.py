"""Accounts and credentials: staff (per tenant), residents (one person across companies)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ARRAY, ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from linli.db.base import Base, GlobalRow, TenantOwned, tenant_fk


class StaffUser(TenantOwned, Base):
    """A staff login of one property company, with roles and community grants."""

    __tablename__ = "staff_users"
    __table_args__ = (
        UniqueConstraint("tenant_id", "username"),
        UniqueConstraint("tenant_id", "phone_hash"),
    )

    username: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(100))
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    phone_hash: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    password_hash: Mapped[str] = mapped_column(String(200))
    roles: Mapped[list[str]] = mapped_column(ARRAY(String(32)), default=list)
    all_communities: Mapped[bool] = mapped_column(default=False)
    is_active: Mapped[bool] = mapped_column(default=True)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(default=None)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class StaffCommunityGrant(Base):
    """Which communities a staff member may work in (on top of RLS, checked in services)."""

    __tablename__ = "staff_community_grants"
    __table_args__ = (
        tenant_fk(["staff_id"], "staff_users", ondelete="CASCADE"),
        tenant_fk(["community_id"], "communities", ondelete="CASCADE"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    staff_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    community_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)


class StaffRefreshToken(TenantOwned, Base):
    """One link of a rotating refresh-token family; reuse of a used link revokes the family."""

    __tablename__ = "staff_refresh_tokens"
    __table_args__ = (
        tenant_fk(["staff_id"], "staff_users", ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "token_hash"),
        Index(None, "tenant_id", "family_id"),
    )

    staff_id: Mapped[uuid.UUID]
    family_id: Mapped[uuid.UUID]
    token_hash: Mapped[bytes] = mapped_column(LargeBinary)
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    # The next link, encrypted with the data key, written when this one is rotated:
    # a second request racing with the same token within the reuse interval gets it.
    successor_enc: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)


class ResidentAccount(GlobalRow, Base):
    """A resident as a person (业主/住户), one account across every company they live under."""

    __tablename__ = "resident_accounts"

    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    phone_hash: Mapped[bytes | None] = mapped_column(LargeBinary, unique=True, default=None)
    display_name: Mapped[str] = mapped_column(String(100), default="")
    avatar_url: Mapped[str] = mapped_column(String(500), default="")
    is_active: Mapped[bool] = mapped_column(default=True)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class ResidentWechatIdentity(GlobalRow, Base):
    """A WeChat public-account identity (openid per appid; unionid across apps)."""

    __tablename__ = "resident_wechat_identities"
    __table_args__ = (UniqueConstraint("appid", "openid"), Index(None, "unionid"))

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("resident_accounts.id", ondelete="CASCADE")
    )
    appid: Mapped[str] = mapped_column(String(64))
    openid: Mapped[str] = mapped_column(String(128))
    unionid: Mapped[str | None] = mapped_column(String(128), default=None)


class ResidentRefreshToken(GlobalRow, Base):
    __tablename__ = "resident_refresh_tokens"
    __table_args__ = (Index(None, "family_id"),)

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("resident_accounts.id", ondelete="CASCADE")
    )
    family_id: Mapped[uuid.UUID]
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    # The next link, encrypted with the data key, written when this one is rotated:
    # a second request racing with the same token within the reuse interval gets it.
    successor_enc: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)


class OtpCode(GlobalRow, Base):
    """A phone one-time code (短信验证码): stored hashed, expires, single use."""

    __tablename__ = "otp_codes"
    __table_args__ = (Index(None, "phone_hash", "created_at"),)

    phone_hash: Mapped[bytes] = mapped_column(LargeBinary)
    code_hash: Mapped[bytes] = mapped_column(LargeBinary)
    expires_at: Mapped[dt.datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    used_at: Mapped[dt.datetime | None] = mapped_column(default=None)
