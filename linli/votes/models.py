"""Tables of the votes domain: votes, matters, the electorate snapshot, proxies and ballots.

The electorate (every house of the community with its building area) is copied
when a vote opens, so the denominators of Article 278 cannot drift while people
vote. Ballots are append-only: a trigger refuses UPDATE and DELETE, and each
ballot carries the SHA-256 of its predecessor (a hash chain per vote), so a
changed ballot is detected by :func:`linli.votes.service.verify_chain`.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Enum,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from linli.db.base import Base, TenantOwned, tenant_fk

AREA = Numeric(12, 2)


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(cls, name=name, values_callable=lambda e: [m.value for m in e])


class VoteKind(enum.StrEnum):
    OWNERS_ASSEMBLY = "owners_assembly"  # 业主大会表决: Article 278 applies
    SURVEY = "survey"  # 问卷 / 意见征询: counted, no legal weighting


class VoteStatus(enum.StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    CLOSED = "closed"


class CastBy(enum.StrEnum):
    OWNER = "owner"  # the owner in the portal
    PROXY = "proxy"  # an authorised proxy (委托代理人) in the portal
    PAPER = "paper"  # a paper ballot recorded by staff (纸质表决票)


class Vote(TenantOwned, Base):
    """A vote or survey of one community (业主大会表决 / 问卷)."""

    __tablename__ = "votes"
    __table_args__ = (
        tenant_fk(["community_id"], "communities"),
        Index(None, "tenant_id", "community_id", "status"),
    )

    community_id: Mapped[uuid.UUID]
    kind: Mapped[VoteKind] = mapped_column(_enum(VoteKind, "vote_kind"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[VoteStatus] = mapped_column(
        _enum(VoteStatus, "vote_status"), default=VoteStatus.DRAFT
    )
    opens_at: Mapped[dt.datetime]
    closes_at: Mapped[dt.datetime]
    created_by: Mapped[uuid.UUID]
    opened_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    closed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    # Snapshot totals when opened: 专有部分总面积 and 业主总人数 (one per house).
    electorate_houses: Mapped[int] = mapped_column(Integer, default=0)
    electorate_area: Mapped[Decimal] = mapped_column(AREA, default=Decimal(0))
    ballot_count: Mapped[int] = mapped_column(Integer, default=0)
    chain_head: Mapped[bytes] = mapped_column(LargeBinary, default=b"")
    # The tally frozen at closing (figures as exact fractions written "p/q").
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB, default=None)


class VoteMatter(TenantOwned, Base):
    """One matter (表决事项) of a vote, tagged with its Civil Code Article 278 item (1-9)."""

    __tablename__ = "vote_matters"
    __table_args__ = (
        tenant_fk(["vote_id"], "votes", ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "vote_id", "position"),
    )

    vote_id: Mapped[uuid.UUID]
    position: Mapped[int] = mapped_column(SmallInteger)
    title: Mapped[str] = mapped_column(String(300))
    article_item: Mapped[int | None] = mapped_column(SmallInteger, default=None)
    options: Mapped[list[str]] = mapped_column(JSONB, default=list)


class VoteElector(Base):
    """A house entitled to one ballot, with its exclusive-part area, frozen when the vote opened."""

    __tablename__ = "vote_electorate"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "vote_id"], ["votes.tenant_id", "votes.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(["tenant_id", "house_id"], ["houses.tenant_id", "houses.id"]),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    vote_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    house_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    area: Mapped[Decimal] = mapped_column(AREA)


class VoteProxy(TenantOwned, Base):
    """A recorded authorisation (授权委托书): this portal account votes for this house."""

    __tablename__ = "vote_proxies"
    __table_args__ = (
        tenant_fk(["vote_id"], "votes", ondelete="CASCADE"),
        tenant_fk(["house_id"], "houses"),
        UniqueConstraint("tenant_id", "vote_id", "house_id"),
    )

    vote_id: Mapped[uuid.UUID]
    house_id: Mapped[uuid.UUID]
    proxy_account_id: Mapped[uuid.UUID]
    proxy_name: Mapped[str] = mapped_column(String(100))
    document_ref: Mapped[str] = mapped_column(String(100))  # number of the signed authorisation
    recorded_by: Mapped[uuid.UUID]


class Ballot(TenantOwned, Base):
    """One house's ballot (表决票). Append-only; chained by hash to the previous one."""

    __tablename__ = "vote_ballots"
    __table_args__ = (
        tenant_fk(["vote_id"], "votes"),
        tenant_fk(["house_id"], "houses"),
        UniqueConstraint("tenant_id", "vote_id", "house_id"),
        UniqueConstraint("tenant_id", "vote_id", "seq"),
    )

    vote_id: Mapped[uuid.UUID]
    house_id: Mapped[uuid.UUID]
    seq: Mapped[int] = mapped_column(Integer)
    cast_by: Mapped[CastBy] = mapped_column(_enum(CastBy, "ballot_cast_by"))
    account_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    proxy_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    recorded_by: Mapped[uuid.UUID | None] = mapped_column(default=None)
    # The house's area on the vote's roll, copied so a tally is one scan of the ballots.
    area: Mapped[Decimal] = mapped_column(AREA)
    # matter id -> chosen option
    choices: Mapped[dict[str, str]] = mapped_column(JSONB)
    cast_at: Mapped[dt.datetime]
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary)
    hash: Mapped[bytes] = mapped_column(LargeBinary)
