"""Owner votes and surveys (业主大会表决 / 问卷), tallied by the PRC Civil Code, Article 278.

Article 278 (as in force since 2021):

* a vote is valid only when owners holding at least 2/3 of the exclusive-part
  area (专有部分面积) **and** at least 2/3 of all owners by headcount take part;
* a matter of items 6-8 (raising the maintenance fund; rebuilding or reconstructing
  buildings and facilities; changing the use of common parts or using them for
  business) passes with at least 3/4 of the participating area **and** at least 3/4
  of the participating owners;
* any other matter passes with more than 1/2 of the participating area **and** more
  than 1/2 of the participating owners.

Headcount follows the Supreme People's Court interpretation on building
ownership (法释〔2009〕7号, art. 9): one exclusive part (house) counts as one owner.
Every comparison uses integers and :class:`fractions.Fraction`, never floats: the
boundaries are exact. Abstentions take part (they count in the denominators).

The electorate is frozen when a vote opens; ballots are append-only (a trigger
refuses UPDATE and DELETE) and hash-chained per vote (:func:`verify_chain`).
Surveys reuse all of it, with free options and no legal weighting.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import Select, and_, func, insert, literal, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from linli.auth import residents as resident_accounts
from linli.auth.actor import Actor, PrincipalKind
from linli.core import audit, crypto, outbox
from linli.core.errors import Conflict, FieldError, NotFound, PermissionDenied, ValidationFailed
from linli.core.pagination import PageParams, make_page, paginate_statement
from linli.db.engine import set_tenant
from linli.estate import service as estate
from linli.estate.models import Building, House, Unit
from linli.residents import service as residents
from linli.votes import events
from linli.votes.models import (
    Ballot,
    CastBy,
    Vote,
    VoteElector,
    VoteKind,
    VoteMatter,
    VoteProxy,
    VoteStatus,
)

# Civil Code Article 278, paragraph 1: the matters owners decide together.
ARTICLE_278_ITEMS: dict[int, str] = {
    1: "Make or amend the rules of procedure of the owners' assembly",
    2: "Make or amend the management statute",
    3: "Elect or replace the owners' committee or its members",
    4: "Hire or dismiss the property service company or other manager",
    5: "Use the maintenance fund of the buildings and facilities",
    6: "Raise the maintenance fund of the buildings and facilities",
    7: "Rebuild or reconstruct buildings and their facilities",
    8: "Change the use of common parts or use them for business",
    9: "Other major matters of common ownership and management",
}
SPECIAL_ITEMS = frozenset({6, 7, 8})
VOTE_OPTIONS = ["agree", "oppose", "abstain"]  # 同意 / 反对 / 弃权
AGREE = "agree"
QUORUM = Fraction(2, 3)
SPECIAL_MAJORITY = Fraction(3, 4)
SIMPLE_MAJORITY = Fraction(1, 2)
MAX_MATTERS = 20
MAX_OPTIONS = 10


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _tenant(actor: Actor) -> uuid.UUID:
    if actor.tenant_id is None:
        raise NotFound()
    return actor.tenant_id


def _system(actor: Actor) -> Actor:
    return replace(Actor.system(_tenant(actor)), request_id=actor.request_id, ip=actor.ip)


def _not_found() -> NotFound:
    return NotFound("Vote not found.", code="vote_not_found")


# --- creating and running votes ---------------------------------------------------------------


@dataclass(frozen=True)
class MatterIn:
    title: str
    article_item: int | None = None
    options: Sequence[str] = ()


def readable_votes(actor: Actor) -> Select[Vote]:
    return select(Vote).where(estate.community_scope(actor, Vote.community_id))


async def get_vote(session: AsyncSession, actor: Actor, *, vote_id: uuid.UUID) -> Vote:
    vote = await session.scalar(readable_votes(actor).where(Vote.id == vote_id))
    if vote is None:
        raise _not_found()
    return vote


async def matters_of(session: AsyncSession, vote_id: uuid.UUID) -> list[VoteMatter]:
    rows = await session.scalars(
        select(VoteMatter).where(VoteMatter.vote_id == vote_id).order_by(VoteMatter.position)
    )
    return list(rows.all())


def _check_matters(kind: VoteKind, matters: Sequence[MatterIn]) -> list[FieldError]:
    errors: list[FieldError] = []
    if not 1 <= len(matters) <= MAX_MATTERS:
        errors.append(FieldError("matters", "Give 1 to 20 matters.", "invalid_count"))
    for i, matter in enumerate(matters):
        if not matter.title.strip():
            errors.append(FieldError(f"matters[{i}].title", "Name the matter.", "required"))
        if kind is VoteKind.OWNERS_ASSEMBLY:
            if matter.article_item not in ARTICLE_278_ITEMS:
                errors.append(
                    FieldError(
                        f"matters[{i}].article_item",
                        "Tag the matter with its Article 278 item (1-9).",
                        "article_item_required",
                    )
                )
        else:
            options = [o.strip() for o in matter.options]
            if not 2 <= len(options) <= MAX_OPTIONS or len(set(options)) != len(options):
                errors.append(
                    FieldError(
                        f"matters[{i}].options",
                        "Give 2 to 10 different options.",
                        "invalid_options",
                    )
                )
            if any(not o or len(o) > 100 for o in options):
                errors.append(
                    FieldError(f"matters[{i}].options", "Options are 1-100 characters.", "invalid")
                )
    return errors


async def create_vote(
    session: AsyncSession,
    actor: Actor,
    *,
    community_id: uuid.UUID,
    kind: VoteKind,
    title: str,
    description: str = "",
    opens_at: dt.datetime,
    closes_at: dt.datetime,
    matters: Sequence[MatterIn],
) -> Vote:
    errors = _check_matters(kind, matters)
    if closes_at <= opens_at:
        errors.append(FieldError("closes_at", "Closing must follow opening.", "invalid_range"))
    if not title.strip():
        errors.append(FieldError("title", "Give the vote a title.", "required"))
    if errors:
        raise ValidationFailed(errors=errors)
    await estate.get_community(session, actor, community_id=community_id)
    vote = Vote(
        tenant_id=_tenant(actor),
        community_id=community_id,
        kind=kind,
        title=title.strip(),
        description=description.strip(),
        opens_at=opens_at,
        closes_at=closes_at,
        created_by=actor.id,
        status=VoteStatus.DRAFT,
        electorate_houses=0,
        electorate_area=Decimal(0),
        ballot_count=0,
        chain_head=b"",
    )
    session.add(vote)
    await session.flush()
    session.add_all(
        VoteMatter(
            tenant_id=vote.tenant_id,
            vote_id=vote.id,
            position=i + 1,
            title=m.title.strip(),
            article_item=m.article_item if kind is VoteKind.OWNERS_ASSEMBLY else None,
            options=list(VOTE_OPTIONS)
            if kind is VoteKind.OWNERS_ASSEMBLY
            else [o.strip() for o in m.options],
        )
        for i, m in enumerate(matters)
    )
    await session.flush()
    await audit.record(
        session,
        actor,
        "vote.create",
        target_type="vote",
        target_id=vote.id,
        detail={"kind": kind.value, "matters": len(matters)},
    )
    return vote


async def _locked_vote(session: AsyncSession, actor: Actor, vote_id: uuid.UUID) -> Vote:
    vote = await session.scalar(readable_votes(actor).where(Vote.id == vote_id).with_for_update())
    if vote is None:
        raise _not_found()
    return vote


async def open_vote(session: AsyncSession, actor: Actor, *, vote_id: uuid.UUID) -> Vote:
    """Open the vote and freeze its electorate: every house of the community with its area."""
    vote = await _locked_vote(session, actor, vote_id)
    if vote.status is not VoteStatus.DRAFT:
        raise Conflict("Only a draft vote can be opened.", code="vote_not_draft")
    if vote.closes_at <= _now():
        raise Conflict("The closing time has passed; change it first.", code="vote_closed")
    houses = (
        estate.readable_houses(_system(actor))
        .where(House.community_id == vote.community_id)
        .subquery()
    )
    await session.execute(
        insert(VoteElector).from_select(
            ["tenant_id", "vote_id", "house_id", "area"],
            select(houses.c.tenant_id, literal(vote.id), houses.c.id, houses.c.building_area),
        )
    )
    count, area = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(VoteElector.area), 0)).where(
                VoteElector.vote_id == vote.id
            )
        )
    ).one()
    if not count:
        raise Conflict("The community has no houses to vote.", code="no_electorate")
    vote.electorate_houses = int(count)
    vote.electorate_area = Decimal(area)
    vote.status = VoteStatus.OPEN
    vote.opened_at = _now()
    vote.chain_head = genesis(vote.id)
    await session.flush()
    await audit.record(
        session,
        actor,
        "vote.open",
        target_type="vote",
        target_id=vote.id,
        detail={"houses": vote.electorate_houses, "area": str(vote.electorate_area)},
    )
    await outbox.emit(
        session,
        actor,
        events.OPENED,
        {
            "vote_id": str(vote.id),
            "community_id": str(vote.community_id),
            "kind": vote.kind.value,
            "closes_at": vote.closes_at.isoformat(),
        },
    )
    return vote


async def close_vote(session: AsyncSession, actor: Actor, *, vote_id: uuid.UUID) -> Vote:
    """Close the vote and freeze its tally (公示结果)."""
    vote = await _locked_vote(session, actor, vote_id)
    if vote.status is not VoteStatus.OPEN:
        raise Conflict("Only an open vote can be closed.", code="vote_not_open")
    vote.status = VoteStatus.CLOSED
    vote.closed_at = _now()
    await session.flush()
    result = await tally(session, actor, vote_id=vote.id)
    vote.result = result.as_json()
    await session.flush()
    await audit.record(session, actor, "vote.close", target_type="vote", target_id=vote.id)
    await outbox.emit(
        session,
        actor,
        events.CLOSED,
        {"vote_id": str(vote.id), "community_id": str(vote.community_id)},
    )
    return vote


async def list_votes(
    session: AsyncSession,
    actor: Actor,
    *,
    community_id: uuid.UUID | None = None,
    status: VoteStatus | None = None,
    page: PageParams,
) -> tuple[list[Vote], str | None]:
    statement = readable_votes(actor)
    if community_id is not None:
        statement = statement.where(Vote.community_id == community_id)
    if status is not None:
        statement = statement.where(Vote.status == status)
    rows = (await session.scalars(paginate_statement(statement, Vote.id, page))).all()
    return make_page(list(rows), page)


# --- proxies ------------------------------------------------------------------------------------


async def add_proxy(
    session: AsyncSession,
    actor: Actor,
    *,
    vote_id: uuid.UUID,
    house_id: uuid.UUID,
    proxy_phone: str,
    proxy_name: str,
    document_ref: str,
) -> VoteProxy:
    """Record a signed authorisation (授权委托书): this person votes for that house."""
    vote = await get_vote(session, actor, vote_id=vote_id)
    if vote.status is VoteStatus.CLOSED:
        raise Conflict("The vote is closed.", code="vote_closed")
    house = await estate.get_house(session, actor, house_id=house_id)
    if house.community_id != vote.community_id:
        raise NotFound("House not found.", code="house_not_found")
    phone = crypto.normalize_phone(proxy_phone)
    errors = []
    if phone is None:
        errors.append(FieldError("proxy_phone", "Not a mobile number.", "invalid_phone"))
    if not document_ref.strip():
        errors.append(FieldError("document_ref", "Record the authorisation's number.", "required"))
    if not proxy_name.strip():
        errors.append(FieldError("proxy_name", "Name the proxy.", "required"))
    if errors or phone is None:
        raise ValidationFailed(errors=errors)
    account = await resident_accounts.ensure_resident_account(
        session, phone=phone, display_name=proxy_name.strip()
    )
    existing = await session.scalar(
        select(VoteProxy).where(VoteProxy.vote_id == vote_id, VoteProxy.house_id == house_id)
    )
    if existing is not None:
        raise Conflict("This house already has a proxy for this vote.", code="proxy_exists")
    proxy = VoteProxy(
        tenant_id=vote.tenant_id,
        vote_id=vote_id,
        house_id=house_id,
        proxy_account_id=account.id,
        proxy_name=proxy_name.strip(),
        document_ref=document_ref.strip(),
        recorded_by=actor.id,
    )
    session.add(proxy)
    await session.flush()
    await audit.record(
        session,
        actor,
        "vote.proxy.add",
        target_type="vote",
        target_id=vote_id,
        detail={"house_id": str(house_id), "proxy_id": str(proxy.id)},
    )
    return proxy


async def list_proxies(
    session: AsyncSession, actor: Actor, *, vote_id: uuid.UUID
) -> list[VoteProxy]:
    await get_vote(session, actor, vote_id=vote_id)
    rows = await session.scalars(
        select(VoteProxy).where(VoteProxy.vote_id == vote_id).order_by(VoteProxy.id)
    )
    return list(rows.all())


# --- ballots and their chain --------------------------------------------------------------------


def genesis(vote_id: uuid.UUID) -> bytes:
    return hashlib.sha256(b"linli-vote-chain:" + vote_id.bytes).digest()


def ballot_bytes(ballot: Ballot) -> bytes:
    """The canonical form a ballot's hash covers: every field a person chose or the system set."""
    body = {
        "vote_id": str(ballot.vote_id),
        "house_id": str(ballot.house_id),
        "seq": ballot.seq,
        "cast_by": CastBy(ballot.cast_by).value,
        "account_id": str(ballot.account_id) if ballot.account_id else None,
        "proxy_id": str(ballot.proxy_id) if ballot.proxy_id else None,
        "recorded_by": str(ballot.recorded_by) if ballot.recorded_by else None,
        "area": f"{Decimal(ballot.area):.2f}",
        "choices": dict(sorted(ballot.choices.items())),
        "cast_at": ballot.cast_at.astimezone(dt.UTC).isoformat(),
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(prev: bytes, ballot: Ballot) -> bytes:
    return hashlib.sha256(prev + ballot_bytes(ballot)).digest()


def _check_choices(matters: Sequence[VoteMatter], choices: dict[str, str]) -> dict[str, str]:
    wanted = {str(m.id): m for m in matters}
    errors: list[FieldError] = []
    if set(choices) != set(wanted):
        errors.append(
            FieldError("choices", "Answer every matter of this vote, and only those.", "incomplete")
        )
    for matter_id, option in choices.items():
        matter = wanted.get(matter_id)
        if matter is not None and option not in matter.options:
            errors.append(FieldError(f"choices.{matter_id}", "Not an option.", "invalid_choice"))
    if errors:
        raise ValidationFailed(errors=errors)
    return {k: choices[k] for k in sorted(choices)}


async def _append_ballot(
    session: AsyncSession,
    actor: Actor,
    vote: Vote,
    *,
    house_id: uuid.UUID,
    choices: dict[str, str],
    cast_by: CastBy,
    account_id: uuid.UUID | None = None,
    proxy_id: uuid.UUID | None = None,
    recorded_by: uuid.UUID | None = None,
) -> Ballot:
    """Checks that need the locked vote row, then the ballot joins the chain."""
    now = _now()
    if vote.status is not VoteStatus.OPEN or now < vote.opens_at:
        raise Conflict("This vote is not open.", code="vote_not_open")
    if now >= vote.closes_at:
        raise Conflict("Voting has closed.", code="vote_closed")
    house = await estate.get_house(
        session, _system(actor), house_id=house_id, include_archived=True
    )
    if house.community_id != vote.community_id:
        raise Conflict("This house is not in the community of this vote.", code="wrong_community")
    area = await session.scalar(
        select(VoteElector.area).where(
            VoteElector.vote_id == vote.id, VoteElector.house_id == house_id
        )
    )
    if area is None:
        raise Conflict("This house is not on the vote's roll.", code="not_in_electorate")
    clean = _check_choices(await matters_of(session, vote.id), choices)
    cast = await session.scalar(
        select(Ballot.id).where(Ballot.vote_id == vote.id, Ballot.house_id == house_id)
    )
    if cast is not None:
        raise Conflict("This house has already voted.", code="already_voted")
    ballot = Ballot(
        tenant_id=vote.tenant_id,
        vote_id=vote.id,
        house_id=house_id,
        seq=vote.ballot_count + 1,
        cast_by=cast_by,
        account_id=account_id,
        proxy_id=proxy_id,
        recorded_by=recorded_by,
        area=area,
        choices=clean,
        cast_at=now,
        prev_hash=vote.chain_head,
        hash=b"",
    )
    ballot.hash = chain_hash(vote.chain_head, ballot)
    session.add(ballot)
    vote.ballot_count = ballot.seq
    vote.chain_head = ballot.hash
    await session.flush()
    await audit.record(
        session,
        actor,
        "vote.ballot.cast",
        target_type="vote",
        target_id=vote.id,
        detail={"house_id": str(house_id), "seq": ballot.seq, "cast_by": cast_by.value},
    )
    return ballot


async def cast_ballot(
    session: AsyncSession,
    actor: Actor,
    *,
    company_id: uuid.UUID,
    vote_id: uuid.UUID,
    house_id: uuid.UUID,
    choices: dict[str, str],
) -> Ballot:
    """A resident casts the ballot of a house: as its owner, or as its recorded proxy."""
    if actor.kind is not PrincipalKind.RESIDENT:
        raise PermissionDenied()
    homes, _ = await residents.my_homes(session, actor)
    await set_tenant(session, company_id)
    scoped = replace(actor, tenant_id=company_id)
    vote = await session.scalar(select(Vote).where(Vote.id == vote_id).with_for_update())
    if vote is None:
        raise _not_found()
    home = next((h for h in homes if h.company_id == company_id and h.house_id == house_id), None)
    proxy = await session.scalar(
        select(VoteProxy).where(
            VoteProxy.vote_id == vote_id,
            VoteProxy.house_id == house_id,
            VoteProxy.proxy_account_id == actor.id,
        )
    )
    if home is not None and home.my_relation in residents.OWNER_RELATIONS:
        if proxy is None:
            # A proxy recorded for this house means the owner handed the vote over.
            handed = await session.scalar(
                select(VoteProxy.id).where(
                    VoteProxy.vote_id == vote_id, VoteProxy.house_id == house_id
                )
            )
            if handed is not None:
                raise PermissionDenied(
                    "This house's vote was given to a proxy.", code="vote_delegated"
                )
        return await _append_ballot(
            session,
            scoped,
            vote,
            house_id=house_id,
            choices=choices,
            cast_by=CastBy.PROXY if proxy else CastBy.OWNER,
            account_id=actor.id,
            proxy_id=proxy.id if proxy else None,
        )
    if proxy is not None:
        return await _append_ballot(
            session,
            scoped,
            vote,
            house_id=house_id,
            choices=choices,
            cast_by=CastBy.PROXY,
            account_id=actor.id,
            proxy_id=proxy.id,
        )
    if home is None:
        # Not a house of theirs, nor one they were authorised for: do not reveal which.
        raise NotFound("House not found.", code="house_not_found")
    raise PermissionDenied(
        "Only the owner or an authorised proxy may vote for this house.", code="not_entitled"
    )


async def record_paper_ballot(
    session: AsyncSession,
    actor: Actor,
    *,
    vote_id: uuid.UUID,
    house_id: uuid.UUID,
    choices: dict[str, str],
) -> Ballot:
    """Staff enter a signed paper ballot (纸质表决票) collected from the owner."""
    vote = await _locked_vote(session, actor, vote_id)
    return await _append_ballot(
        session,
        actor,
        vote,
        house_id=house_id,
        choices=choices,
        cast_by=CastBy.PAPER,
        recorded_by=actor.id,
    )


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    ballots: int
    first_bad_seq: int | None = None
    head_matches: bool = True


async def verify_chain(session: AsyncSession, actor: Actor, *, vote_id: uuid.UUID) -> ChainCheck:
    """Recompute every ballot's hash from its content and its predecessor's hash.

    A changed choice, house, time or order breaks the chain at that ballot; a removed
    or added ballot breaks the sequence or the head stored on the vote.
    """
    vote = await get_vote(session, actor, vote_id=vote_id)
    prev = genesis(vote.id)
    count = 0
    result = await session.stream_scalars(
        select(Ballot).where(Ballot.vote_id == vote.id).order_by(Ballot.seq)
    )
    async for ballot in result:
        count += 1
        if (
            ballot.seq != count
            or ballot.prev_hash != prev
            or chain_hash(prev, ballot) != ballot.hash
        ):
            return ChainCheck(ok=False, ballots=count, first_bad_seq=count)
        prev = ballot.hash
    if vote.status is VoteStatus.DRAFT:
        return ChainCheck(ok=count == 0, ballots=count)
    head_ok = prev == vote.chain_head and count == vote.ballot_count
    return ChainCheck(ok=head_ok, ballots=count, head_matches=head_ok)


# --- the tally ----------------------------------------------------------------------------------


def _frac(value: Any) -> Fraction:
    return Fraction(Decimal(value)) if not isinstance(value, int) else Fraction(value)


def fraction_text(value: Fraction) -> str:
    """Exact: "2/3", or "50" for a whole number."""
    return str(value)


def percent(value: Fraction, places: int = 2) -> str:
    """A fraction as a percentage for people, rounded half-up; decisions never use it."""
    scaled = value * 100 * 10**places
    whole = (scaled.numerator * 2 + scaled.denominator) // (2 * scaled.denominator)
    return f"{Decimal(whole).scaleb(-places):.{places}f}%"


def as_decimal(value: Fraction, places: int = 2) -> str:
    """A fraction written with ``places`` decimals, rounded half-up (areas for people)."""
    scaled = value * 10**places
    whole = (scaled.numerator * 2 + scaled.denominator) // (2 * scaled.denominator)
    return f"{Decimal(whole).scaleb(-places):.{places}f}"


def share(part: Fraction, whole: Fraction) -> Fraction:
    return part / whole if whole else Fraction(0)


@dataclass(frozen=True)
class OptionCount:
    option: str
    houses: int
    area: Fraction


@dataclass(frozen=True)
class MatterResult:
    matter_id: uuid.UUID
    position: int
    title: str
    article_item: int | None
    rule: str  # "special" (≥ 3/4), "ordinary" (> 1/2) or "survey"
    threshold: Fraction | None
    options: list[OptionCount]
    agree_area_share: Fraction
    agree_count_share: Fraction
    passed: bool | None  # None for surveys


@dataclass(frozen=True)
class Tally:
    vote_id: uuid.UUID
    kind: VoteKind
    electorate_houses: int
    electorate_area: Fraction
    participating_houses: int
    participating_area: Fraction
    area_share: Fraction
    count_share: Fraction
    quorum_met: bool | None  # None for surveys
    matters: list[MatterResult] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        def f(x: Fraction | None) -> str | None:
            return None if x is None else fraction_text(x)

        return {
            "kind": self.kind.value,
            "electorate_houses": self.electorate_houses,
            "electorate_area": f(self.electorate_area),
            "participating_houses": self.participating_houses,
            "participating_area": f(self.participating_area),
            "area_share": f(self.area_share),
            "count_share": f(self.count_share),
            "quorum_met": self.quorum_met,
            "matters": [
                {
                    "matter_id": str(m.matter_id),
                    "title": m.title,
                    "article_item": m.article_item,
                    "rule": m.rule,
                    "threshold": f(m.threshold),
                    "options": [
                        {"option": o.option, "houses": o.houses, "area": f(o.area)}
                        for o in m.options
                    ],
                    "agree_area_share": f(m.agree_area_share),
                    "agree_count_share": f(m.agree_count_share),
                    "passed": m.passed,
                }
                for m in self.matters
            ],
        }


def decide(
    *,
    article_item: int | None,
    agree_houses: int,
    agree_area: Fraction,
    participating_houses: int,
    participating_area: Fraction,
    quorum_met: bool,
) -> tuple[str, Fraction, bool]:
    """(rule, threshold, passed) of one matter under Article 278. Exact, no floats."""
    if article_item in SPECIAL_ITEMS:
        passed = (
            participating_houses > 0
            and participating_area > 0
            and agree_area * 4 >= participating_area * 3
            and agree_houses * 4 >= participating_houses * 3
        )
        return "special", SPECIAL_MAJORITY, quorum_met and bool(passed)
    passed = (
        participating_houses > 0
        and agree_area * 2 > participating_area
        and agree_houses * 2 > participating_houses
    )
    return "ordinary", SIMPLE_MAJORITY, quorum_met and bool(passed)


def quorum(
    *,
    participating_houses: int,
    participating_area: Fraction,
    electorate_houses: int,
    electorate_area: Fraction,
) -> bool:
    """Both ≥ 2/3: of the exclusive-part area and of the owners by headcount."""
    return (
        electorate_houses > 0
        and electorate_area > 0
        and participating_area * 3 >= electorate_area * 2
        and participating_houses * 3 >= electorate_houses * 2
    )


async def tally(session: AsyncSession, actor: Actor, *, vote_id: uuid.UUID) -> Tally:
    """Count a vote in two set-based statements, whatever its size; decide with fractions."""
    vote = await get_vote(session, actor, vote_id=vote_id)
    matters = await matters_of(session, vote.id)
    # One scan of the vote's ballots: each carries its house's area from the frozen roll.
    houses, area = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(Ballot.area), 0)).where(
                Ballot.vote_id == vote.id
            )
        )
    ).one()
    choice = func.jsonb_each_text(Ballot.choices).table_valued("key", "value").alias("choice")
    rows = (
        await session.execute(
            select(
                choice.c.key,
                choice.c.value,
                func.count(),
                func.coalesce(func.sum(Ballot.area), 0),
            )
            .select_from(Ballot)
            .join(choice, text("true"))
            .where(Ballot.vote_id == vote.id)
            .group_by(choice.c.key, choice.c.value)
        )
    ).all()
    counts: dict[tuple[str, str], tuple[int, Fraction]] = {
        (key, value): (int(n), _frac(a)) for key, value, n, a in rows
    }
    participating_houses, participating_area = int(houses), _frac(area)
    electorate_houses, electorate_area = vote.electorate_houses, _frac(vote.electorate_area)
    legal = vote.kind is VoteKind.OWNERS_ASSEMBLY
    met = quorum(
        participating_houses=participating_houses,
        participating_area=participating_area,
        electorate_houses=electorate_houses,
        electorate_area=electorate_area,
    )
    results = []
    for matter in matters:
        options = [
            OptionCount(o, *counts.get((str(matter.id), o), (0, Fraction(0))))
            for o in matter.options
        ]
        agree = next((o for o in options if o.option == AGREE), OptionCount(AGREE, 0, Fraction(0)))
        if legal:
            rule, threshold, passed = decide(
                article_item=matter.article_item,
                agree_houses=agree.houses,
                agree_area=agree.area,
                participating_houses=participating_houses,
                participating_area=participating_area,
                quorum_met=met,
            )
        else:
            rule, threshold, passed = "survey", None, None
        results.append(
            MatterResult(
                matter_id=matter.id,
                position=matter.position,
                title=matter.title,
                article_item=matter.article_item,
                rule=rule,
                threshold=threshold,
                options=options,
                agree_area_share=share(agree.area, participating_area),
                agree_count_share=share(Fraction(agree.houses), Fraction(participating_houses)),
                passed=passed,
            )
        )
    return Tally(
        vote_id=vote.id,
        kind=vote.kind,
        electorate_houses=electorate_houses,
        electorate_area=electorate_area,
        participating_houses=participating_houses,
        participating_area=participating_area,
        area_share=share(participating_area, electorate_area),
        count_share=share(Fraction(participating_houses), Fraction(electorate_houses)),
        quorum_met=met if legal else None,
        matters=results,
    )


# --- ballot list export ---------------------------------------------------------------------


OPTION_LABELS_ZH = {"agree": "同意", "oppose": "反对", "abstain": "弃权"}
CAST_BY_ZH = {CastBy.OWNER: "业主", CastBy.PROXY: "委托代理人", CastBy.PAPER: "纸质票"}


async def export_ballots(session: AsyncSession, actor: Actor, *, vote_id: uuid.UUID) -> bytes:
    """The ballot list (表决票清单) as .xlsx: house, area, channel, time, choices and hashes."""
    from openpyxl import Workbook

    vote = await get_vote(session, actor, vote_id=vote_id)
    matters = await matters_of(session, vote.id)
    book = Workbook(write_only=True)
    sheet = book.create_sheet("ballots")
    sheet.append(
        ["#", "楼栋", "单元", "房号", "面积(m²)", "方式", "投票时间(UTC)"]
        + [f"{m.position}. {m.title}" for m in matters]
        + ["prev_hash", "hash"]
    )
    statement = (
        select(Ballot, House.house_no, Building.building_no, Unit.unit_no)
        .join(House, and_(House.tenant_id == Ballot.tenant_id, House.id == Ballot.house_id))
        .join(
            Building, and_(Building.tenant_id == House.tenant_id, Building.id == House.building_id)
        )
        .outerjoin(Unit, and_(Unit.tenant_id == House.tenant_id, Unit.id == House.unit_id))
        .where(Ballot.vote_id == vote.id)
        .order_by(Ballot.seq)
    )
    result = await session.stream(statement)
    async for ballot, house_no, building_no, unit_no in result:
        sheet.append(
            [
                ballot.seq,
                building_no,
                unit_no or "",
                house_no,
                ballot.area,
                CAST_BY_ZH[CastBy(ballot.cast_by)],
                ballot.cast_at.astimezone(dt.UTC).replace(tzinfo=None),
            ]
            + [
                OPTION_LABELS_ZH.get(
                    ballot.choices.get(str(m.id), ""), ballot.choices.get(str(m.id), "")
                )
                for m in matters
            ]
            + [ballot.prev_hash.hex(), ballot.hash.hex()]
        )
    buffer = io.BytesIO()
    book.save(buffer)
    await audit.record(session, actor, "vote.export", target_type="vote", target_id=vote.id)
    return buffer.getvalue()


# --- the resident's side --------------------------------------------------------------------


@dataclass(frozen=True)
class MyHouseBallot:
    house_id: uuid.UUID
    label: str
    as_proxy: bool
    ballot: Ballot | None


@dataclass(frozen=True)
class MyVote:
    company_id: uuid.UUID
    vote: Vote
    matters: list[VoteMatter]
    houses: list[MyHouseBallot]


async def my_votes(
    session: AsyncSession, actor: Actor, *, vote_id: uuid.UUID | None = None
) -> list[MyVote]:
    """Votes of the communities where the resident owns a house or holds a proxy, newest first."""
    if actor.kind is not PrincipalKind.RESIDENT:
        raise PermissionDenied()
    homes, _ = await residents.my_homes(session, actor)
    found: list[MyVote] = []
    try:
        for company_id in sorted({h.company_id for h in homes}):
            await set_tenant(session, company_id)
            owned = {
                h.house_id: h
                for h in homes
                if h.company_id == company_id and h.my_relation in residents.OWNER_RELATIONS
            }
            proxies = (
                await session.scalars(
                    select(VoteProxy).where(VoteProxy.proxy_account_id == actor.id)
                )
            ).all()
            communities = {h.community_id for h in owned.values()}
            proxy_votes = {p.vote_id for p in proxies}
            statement = select(Vote).where(
                Vote.status != VoteStatus.DRAFT,
                (Vote.community_id.in_(list(communities) or [uuid.UUID(int=0)]))
                | Vote.id.in_(list(proxy_votes) or [uuid.UUID(int=0)]),
            )
            if vote_id is not None:
                statement = statement.where(Vote.id == vote_id)
            for vote in (await session.scalars(statement.order_by(Vote.id.desc()).limit(50))).all():
                ballots = {
                    b.house_id: b
                    for b in (
                        await session.scalars(
                            select(Ballot).where(
                                Ballot.vote_id == vote.id,
                                Ballot.house_id.in_(
                                    [*owned, *(p.house_id for p in proxies)] or [uuid.UUID(int=0)]
                                ),
                            )
                        )
                    ).all()
                }
                houses = [
                    MyHouseBallot(
                        h.house_id,
                        "-".join(x for x in (h.building_no, h.unit_no, h.house_no) if x),
                        False,
                        ballots.get(h.house_id),
                    )
                    for h in owned.values()
                    if h.community_id == vote.community_id
                ]
                for p in proxies:
                    if p.vote_id == vote.id and p.house_id not in owned:
                        house = await estate.get_house(
                            session, Actor.system(company_id), house_id=p.house_id
                        )
                        houses.append(
                            MyHouseBallot(p.house_id, house.house_no, True, ballots.get(p.house_id))
                        )
                found.append(MyVote(company_id, vote, await matters_of(session, vote.id), houses))
    finally:
        await set_tenant(session, None)
    return found


async def resident_tally(
    session: AsyncSession, actor: Actor, *, company_id: uuid.UUID, vote_id: uuid.UUID
) -> tuple[Vote, Tally]:
    """The result of a closed vote, for the residents it concerns (公示)."""
    mine = [
        v for v in await my_votes(session, actor, vote_id=vote_id) if v.company_id == company_id
    ]
    if not mine or mine[0].vote.status is not VoteStatus.CLOSED:
        raise _not_found()
    await set_tenant(session, company_id)
    system = Actor.system(company_id)
    return mine[0].vote, await tally(session, system, vote_id=vote_id)
