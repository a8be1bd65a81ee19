"""Residents (住户), their relations to houses, vehicles and house claims.

A resident row is a person as one property company knows them. The portal
account (``resident_accounts``, global) is the same person across companies;
the two meet on the phone's blind index, so nothing but a keyed hash links a
company's records to a portal login.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import (
    ARRAY,
    Enum,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from linli.core import audit
from linli.db.base import Base, TenantOwned, tenant_fk


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(cls, name=name, values_callable=lambda e: [m.value for m in e])


class Gender(enum.StrEnum):
    MALE = "male"
    FEMALE = "female"


class Relation(enum.StrEnum):
    OWNER = "owner"  # 业主
    CO_OWNER = "co_owner"  # 共有人
    FAMILY = "family"  # 家庭成员
    TENANT = "tenant"  # 租户


class ClaimStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class Resident(TenantOwned, Base):
    """A person living in or owning a house of this company (住户档案)."""

    __tablename__ = "residents"
    __table_args__ = (
        tenant_fk(["community_id"], "communities"),
        UniqueConstraint("tenant_id", "phone_hash"),
        UniqueConstraint("tenant_id", "id_card_hash"),
        Index(None, "tenant_id", "community_id"),
        # Name-prefix search without pg_trgm (the embedded server ships without it): with the
        # column in the "C" collation one btree serves both ``LIKE '王%'`` and ``ORDER BY name``,
        # so a page of a common surname is an index range scan that stops after the page.
        Index("ix_residents_tenant_id_name", "tenant_id", "name"),
    )

    name: Mapped[str] = mapped_column(String(100, collation="C"))
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    phone_hash: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    id_card_enc: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    id_card_hash: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    gender: Mapped[Gender | None] = mapped_column(_enum(Gender, "gender"), default=None)
    birth_date: Mapped[dt.date | None] = mapped_column(default=None)
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(32)), default=list)
    # Where a person without a house is registered (登记小区): a tenant whose lease is being
    # prepared, a staff member's relative. Staff of that community see them; once they
    # move in, their houses say where they live.
    community_id: Mapped[uuid.UUID | None] = mapped_column(default=None)


class ResidentHouse(TenantOwned, Base):
    """A person's relation to a house over time (入住 / 迁出).

    Moving out ends the row (``moved_out_on``); moving back in starts a new one,
    so the rows of a house are its move-in / move-out history.
    """

    __tablename__ = "resident_houses"
    __table_args__ = (
        tenant_fk(["resident_id"], "residents", ondelete="CASCADE"),
        tenant_fk(["house_id"], "houses"),
        tenant_fk(["community_id"], "communities"),
        Index(
            "uq_resident_houses_current",
            "tenant_id",
            "house_id",
            "resident_id",
            unique=True,
            postgresql_where=text("moved_out_on IS NULL"),
        ),
        Index(None, "tenant_id", "resident_id"),
        Index(None, "tenant_id", "house_id"),
    )

    resident_id: Mapped[uuid.UUID]
    house_id: Mapped[uuid.UUID]
    community_id: Mapped[uuid.UUID]
    relation: Mapped[Relation] = mapped_column(_enum(Relation, "resident_relation"))
    lease_start: Mapped[dt.date | None] = mapped_column(default=None)
    lease_end: Mapped[dt.date | None] = mapped_column(default=None)
    moved_in_on: Mapped[dt.date | None] = mapped_column(default=None)
    moved_out_on: Mapped[dt.date | None] = mapped_column(default=None)
    source: Mapped[str] = mapped_column(
        String(16), default="staff"
    )  # staff | import | claim | owner | seed


class Vehicle(TenantOwned, Base):
    """A vehicle registered in a community (车辆), plate in canonical form."""

    __tablename__ = "vehicles"
    __table_args__ = (
        tenant_fk(["community_id"], "communities"),
        tenant_fk(["resident_id"], "residents", ondelete="SET NULL"),
        tenant_fk(["house_id"], "houses"),
        UniqueConstraint("tenant_id", "community_id", "plate"),
        Index(None, "tenant_id", "house_id"),
        Index(None, "tenant_id", "resident_id"),
    )

    community_id: Mapped[uuid.UUID]
    plate: Mapped[str] = mapped_column(String(10))
    new_energy: Mapped[bool] = mapped_column(default=False)
    resident_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    house_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    brand: Mapped[str] = mapped_column(String(40), default="")
    color: Mapped[str] = mapped_column(String(20), default="")
    archived_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class HouseClaim(TenantOwned, Base):
    """A portal user's claim on a house (认证房屋), reviewed by the property company."""

    __tablename__ = "house_claims"
    __table_args__ = (
        tenant_fk(["house_id"], "houses"),
        tenant_fk(["community_id"], "communities"),
        Index(
            "uq_house_claims_pending",
            "tenant_id",
            "house_id",
            "account_id",
            unique=True,
            postgresql_where=text("status = 'pending'"),
        ),
        Index(None, "tenant_id", "community_id", "status"),
    )

    community_id: Mapped[uuid.UUID]
    house_id: Mapped[uuid.UUID]
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("resident_accounts.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(100))
    relation: Mapped[Relation] = mapped_column(_enum(Relation, "resident_relation"))
    status: Mapped[ClaimStatus] = mapped_column(
        _enum(ClaimStatus, "claim_status"), default=ClaimStatus.PENDING
    )
    reason: Mapped[str] = mapped_column(String(400), default="")
    reviewed_by: Mapped[uuid.UUID | None] = mapped_column(default=None)
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class ResidentCompany(Base):
    """Which companies know a phone: a platform directory, hash only (no personal data).

    A portal user has no tenant; this is how "my homes" finds the companies to
    look in without scanning every tenant. It holds nothing but the keyed hash
    and the tenant id, and it must be readable across tenants, so it is a
    platform table without RLS; each company's rows are still read under that
    company's RLS. The schema guard lists it, with this reason, among the few
    global tables allowed a ``tenant_id`` column (tests/core/test_schema_guard.py).
    """

    __tablename__ = "resident_companies"

    phone_hash: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )


# The audit trail keeps each change's community (a resident's: one of their houses').
audit.community_of_target(
    "resident",
    tenant=ResidentHouse.tenant_id,
    key=ResidentHouse.resident_id,
    community=ResidentHouse.community_id,
)
for _type, _model in (("vehicle", Vehicle), ("house_claim", HouseClaim)):
    audit.community_of_target(
        _type, tenant=_model.tenant_id, key=_model.id, community=_model.community_id
    )
