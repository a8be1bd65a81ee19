"""API shapes of the votes domain. Fractions travel as exact "p/q" strings."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from pydantic import BaseModel, Field

from linli.core.schemas import ReadSchema, Schema
from linli.votes.models import Ballot, CastBy, VoteKind, VoteStatus


class MatterCreate(Schema):
    title: str = Field(min_length=1, max_length=300)
    article_item: int | None = Field(
        None, ge=1, le=9, description="Civil Code Article 278 item (votes; not surveys)"
    )
    options: list[str] = Field(
        default_factory=list,
        max_length=10,
        description="surveys only; votes are agree/oppose/abstain",
    )


class VoteCreate(Schema):
    community_id: uuid.UUID
    kind: VoteKind = VoteKind.OWNERS_ASSEMBLY
    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=5000)
    opens_at: dt.datetime
    closes_at: dt.datetime
    matters: list[MatterCreate] = Field(min_length=1, max_length=20)


class MatterRead(ReadSchema):
    id: uuid.UUID
    position: int
    title: str
    article_item: int | None
    options: list[str]


class VoteRead(ReadSchema):
    id: uuid.UUID
    community_id: uuid.UUID
    kind: VoteKind
    title: str
    description: str
    status: VoteStatus
    opens_at: dt.datetime
    closes_at: dt.datetime
    opened_at: dt.datetime | None
    closed_at: dt.datetime | None
    electorate_houses: int
    electorate_area: Decimal
    ballot_count: int
    created_at: dt.datetime


class VoteDetail(VoteRead):
    matters: list[MatterRead]


class ProxyCreate(Schema):
    house_id: uuid.UUID
    proxy_phone: str = Field(max_length=32)
    proxy_name: str = Field(min_length=1, max_length=100)
    document_ref: str = Field(min_length=1, max_length=100, description="授权委托书 number")


class ProxyRead(ReadSchema):
    id: uuid.UUID
    vote_id: uuid.UUID
    house_id: uuid.UUID
    proxy_account_id: uuid.UUID
    proxy_name: str
    document_ref: str
    created_at: dt.datetime


class BallotIn(Schema):
    house_id: uuid.UUID
    choices: dict[str, str] = Field(description="matter id -> option", max_length=20)


class ResidentBallotIn(BallotIn):
    company_id: uuid.UUID


class BallotRead(ReadSchema):
    id: uuid.UUID
    vote_id: uuid.UUID
    house_id: uuid.UUID
    seq: int
    cast_by: CastBy
    choices: dict[str, str]
    cast_at: dt.datetime
    hash: str

    @classmethod
    def of(cls, ballot: Ballot) -> BallotRead:
        data = {k: getattr(ballot, k) for k in cls.model_fields if k != "hash"}
        return cls(**data, hash=ballot.hash.hex())


class OptionRead(BaseModel):
    option: str
    houses: int
    area: str = Field(description="exact, as p/q")


class MatterResultRead(BaseModel):
    matter_id: uuid.UUID
    position: int
    title: str
    article_item: int | None
    rule: str = Field(description="special (≥ 3/4), ordinary (> 1/2) or survey")
    threshold: str | None
    options: list[OptionRead]
    agree_area_share: str
    agree_count_share: str
    passed: bool | None


class TallyRead(BaseModel):
    vote_id: uuid.UUID
    kind: VoteKind
    electorate_houses: int
    electorate_area: str
    participating_houses: int
    participating_area: str
    area_share: str
    count_share: str
    quorum: str = Field(description="both shares must reach this (2/3) for a valid vote")
    quorum_met: bool | None
    matters: list[MatterResultRead]


class ChainRead(BaseModel):
    ok: bool
    ballots: int
    first_bad_seq: int | None
    head_matches: bool


class MyHouseRead(BaseModel):
    house_id: uuid.UUID
    label: str
    as_proxy: bool
    ballot: BallotRead | None


class MyVoteRead(BaseModel):
    company_id: uuid.UUID
    vote: VoteDetail
    houses: list[MyHouseRead]
