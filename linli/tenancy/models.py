"""Tenants (property companies), their communities, and platform operators."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

from sqlalchemy import Enum, Numeric, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from linli.core import audit
from linli.db.base import Base, GlobalRow, TenantOwned


class TenantStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class Tenant(GlobalRow, Base):
    """A property company (物业公司). Platform table: the tenant list is not tenant data."""

    __tablename__ = "tenants"

    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[TenantStatus] = mapped_column(
        Enum(TenantStatus, name="tenant_status", values_callable=lambda e: [m.value for m in e]),
        default=TenantStatus.ACTIVE,
    )


class Community(TenantOwned, Base):
    """A residential community (小区) managed by the tenant. The estate domain extends it."""

    __tablename__ = "communities"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)

    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(400), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    archived_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    # Estate profile (added by migration 0002; rules in linli.estate.service).
    area_m2: Mapped[Decimal | None] = mapped_column(Numeric(12, 2), default=None)  # 总建筑面积
    contact_phone: Mapped[str] = mapped_column(
        String(32), default=""
    )  # 物业服务中心电话 (not personal)
    # 物业费 settings, shape = linli.estate.schemas.FeeSettings (rates per m² by house type, ...).
    fee_settings: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class Operator(GlobalRow, Base):
    """A platform operator account (平台运营): manages tenants, sees no tenant data."""

    __tablename__ = "operators"

    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(default=True)


audit.community_of_target(
    "community", tenant=Community.tenant_id, key=Community.id, community=Community.id
)
