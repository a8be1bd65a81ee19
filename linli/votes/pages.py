"""Console and portal pages of the votes domain: create, open, close, results, export; ballots.

Thin like every page module: :mod:`linli.votes.service` does the work and the scoping.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from linli.auth.actor import Actor
from linli.auth.deps import DeclaredRoute
from linli.auth.permissions import Permission
from linli.core.errors import DomainError, FieldError, NotFound, ValidationFailed
from linli.core.pagination import PageParams
from linli.estate import service as estate
from linli.votes import service
from linli.votes.models import Vote, VoteKind, VoteStatus
from linli.web import nav
from linli.web.forms import optional_uuid, required_uuid
from linli.web.nav import N_
from linli.web.pages import (
    PlatformDb,
    ResidentActor,
    StaffDb,
    _portal_context,
    console_shell,
    staff,
)
from linli.web.session import ConsoleCsrf, PortalCsrf, describe
from linli.web.templating import redirect, render

router = APIRouter(route_class=DeclaredRoute, include_in_schema=False)

ITEM_LABELS = {
    1: N_("Rules of procedure of the owners' assembly"),
    2: N_("Management statute"),
    3: N_("Owners' committee election"),
    4: N_("Hiring or dismissing the property company"),
    5: N_("Using the maintenance fund"),
    6: N_("Raising the maintenance fund"),
    7: N_("Rebuilding or reconstructing buildings and facilities"),
    8: N_("Changing the use of common parts or using them for business"),
    9: N_("Other major matters"),
}
RULE_LABELS = {
    "special": N_(
        "Items 6-8: at least 3/4 of the participating area and of the participating owners"
    ),
    "ordinary": N_("More than 1/2 of the participating area and of the participating owners"),
    "survey": N_("Survey: counted, no legal weighting"),
}
OPTION_LABELS = {"agree": N_("Agree"), "oppose": N_("Oppose"), "abstain": N_("Abstain")}
STATUS_LABELS = {
    VoteStatus.DRAFT: N_("Draft"),
    VoteStatus.OPEN: N_("Voting open"),
    VoteStatus.CLOSED: N_("Voting closed"),
}
KIND_LABELS = {VoteKind.OWNERS_ASSEMBLY: N_("Owners' vote"), VoteKind.SURVEY: N_("Survey")}
CAST_LABELS = {"owner": N_("Owner"), "proxy": N_("Proxy"), "paper": N_("Paper ballot")}

nav.register(
    nav.NavItem("votes", N_("Votes"), "/console/votes", Permission.VOTES_MANAGE, "vote", 60)
)
nav.register_tile(nav.PortalTile("votes", N_("Votes"), "vote", "/portal/votes", 60))

Manager = Annotated[Actor, staff(Permission.VOTES_MANAGE)]
FormShort = Annotated[str, Form(max_length=200)]

BASE_CONTEXT = {
    "item_labels": ITEM_LABELS,
    "rule_labels": RULE_LABELS,
    "option_labels": OPTION_LABELS,
    "vote_status_labels": STATUS_LABELS,
    "vote_kind_labels": KIND_LABELS,
    "cast_labels": CAST_LABELS,
    "percent": service.percent,
    "fraction": service.fraction_text,
    "area": service.as_decimal,
}


def _vote_id(raw: str) -> uuid.UUID:
    return required_uuid(raw, message="Vote not found.", code="vote_not_found")


async def attempt(session: AsyncSession, action: Any) -> DomainError | None:
    """Run ``action`` in a savepoint: a refusal undoes its writes (and its tenant switch)."""
    try:
        async with session.begin_nested():
            await action()
    except DomainError as exc:
        return exc
    return None


def parse_matters(kind: VoteKind, raw: str) -> list[service.MatterIn]:
    """One matter per line: ``4 续聘物业`` (item, title) or ``标题 | 选项 | 选项`` (survey)."""
    found = []
    for number, line in enumerate(raw.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if kind is VoteKind.SURVEY:
            title, *options = [p.strip() for p in line.split("|")]
            found.append(service.MatterIn(title, None, options))
            continue
        item, _, title = line.partition(" ")
        if not item.isdigit():
            raise ValidationFailed(
                errors=[
                    FieldError(
                        "matters",
                        f"Line {number}: start with the Article 278 item, e.g. 4 续聘物业.",
                        "article_item_required",
                    )
                ]
            )
        found.append(service.MatterIn(title.strip(), int(item)))
    return found


def _local(raw: str, tz: str, name: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(raw.strip()).replace(tzinfo=ZoneInfo(tz))
    except ValueError as exc:
        raise ValidationFailed(
            errors=[FieldError(name, "Not a date and time.", "invalid")]
        ) from exc


# --- console ------------------------------------------------------------------------------------


async def _votes_page(
    request: Request,
    session: AsyncSession,
    actor: Actor,
    *,
    error: dict[str, Any] | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    shell = await console_shell(request, session, actor)
    community = shell["current_community"]
    rows: list[Vote] = []
    if community is not None:
        rows, _ = await service.list_votes(
            session, actor, community_id=community.id, page=PageParams(limit=100)
        )
    return render(
        request,
        "votes/list.html",
        shell | BASE_CONTEXT | {"rows": rows[::-1], "error": error, "form": form or {}},
        status_code=status_code,
    )


@router.get("/console/votes", name="console.votes")
async def votes_page(request: Request, actor: Manager, session: StaffDb) -> Response:
    return await _votes_page(request, session, actor)


@router.post("/console/votes", dependencies=[ConsoleCsrf])
async def create_vote(
    request: Request,
    actor: Manager,
    session: StaffDb,
    title: FormShort = "",
    kind: Annotated[str, Form(max_length=20)] = VoteKind.OWNERS_ASSEMBLY.value,
    description: Annotated[str, Form(max_length=5000)] = "",
    opens_at: Annotated[str, Form(max_length=40)] = "",
    closes_at: Annotated[str, Form(max_length=40)] = "",
    matters: Annotated[str, Form(max_length=10000)] = "",
) -> Response:
    form = {"title": title, "kind": kind, "description": description, "matters": matters}
    shell = await console_shell(request, session, actor)
    community = shell["current_community"]
    created: list[Vote] = []

    async def act() -> None:
        if community is None:
            raise NotFound("Community not found.", code="community_not_found")
        chosen = VoteKind(kind) if kind in {k.value for k in VoteKind} else VoteKind.SURVEY
        created.append(
            await service.create_vote(
                session,
                actor,
                community_id=community.id,
                kind=chosen,
                title=title,
                description=description,
                opens_at=_local(opens_at, community.timezone, "opens_at"),
                closes_at=_local(closes_at, community.timezone, "closes_at"),
                matters=parse_matters(chosen, matters),
            )
        )

    failed = await attempt(session, act)
    if failed is not None:
        return await _votes_page(
            request, session, actor, error=describe(failed), form=form, status_code=failed.status
        )
    return redirect(request, f"/console/votes/{created[0].id}")


async def _vote_page(
    request: Request,
    session: AsyncSession,
    actor: Actor,
    vote_id: uuid.UUID,
    *,
    error: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    shell = await console_shell(request, session, actor)
    vote = await service.get_vote(session, actor, vote_id=vote_id)
    matters = await service.matters_of(session, vote.id)
    result = (
        await service.tally(session, actor, vote_id=vote.id)
        if vote.status is not VoteStatus.DRAFT
        else None
    )
    chain = await service.verify_chain(session, actor, vote_id=vote.id)
    proxies = await service.list_proxies(session, actor, vote_id=vote.id)
    return render(
        request,
        "votes/vote.html",
        shell
        | BASE_CONTEXT
        | {
            "vote": vote,
            "matters": matters,
            "result": result,
            "chain": chain,
            "proxies": proxies,
            "error": error,
        },
        status_code=status_code,
    )


@router.get("/console/votes/{vote_id}", name="console.vote")
async def vote_page(request: Request, actor: Manager, session: StaffDb, vote_id: str) -> Response:
    return await _vote_page(request, session, actor, _vote_id(vote_id))


async def _vote_action(
    request: Request, session: AsyncSession, actor: Actor, vote_id: uuid.UUID, action: Any
) -> Response:
    failed = await attempt(session, action)
    if failed is not None:
        if failed.status == 404 and failed.instance_code == "vote_not_found":
            raise failed
        return await _vote_page(
            request, session, actor, vote_id, error=describe(failed), status_code=failed.status
        )
    return redirect(request, f"/console/votes/{vote_id}")


@router.post("/console/votes/{vote_id}/open", dependencies=[ConsoleCsrf])
async def open_vote(request: Request, actor: Manager, session: StaffDb, vote_id: str) -> Response:
    wanted = _vote_id(vote_id)

    async def act() -> None:
        await service.open_vote(session, actor, vote_id=wanted)

    return await _vote_action(request, session, actor, wanted, act)


@router.post("/console/votes/{vote_id}/close", dependencies=[ConsoleCsrf])
async def close_vote(request: Request, actor: Manager, session: StaffDb, vote_id: str) -> Response:
    wanted = _vote_id(vote_id)

    async def act() -> None:
        await service.close_vote(session, actor, vote_id=wanted)

    return await _vote_action(request, session, actor, wanted, act)


async def _house_by_ref(session: AsyncSession, actor: Actor, vote: Vote, raw: str) -> uuid.UUID:
    ref = estate.parse_house_ref(raw)
    ids = (
        await estate.find_house_ids_by_ref(session, actor, ref=ref, community_id=vote.community_id)
        if ref
        else []
    )
    if len(ids) != 1:
        raise ValidationFailed(
            errors=[FieldError("house", "No such house; write it as 3-2-1201.", "unknown_house")]
        )
    return ids[0]


@router.post("/console/votes/{vote_id}/proxies", dependencies=[ConsoleCsrf])
async def add_proxy(
    request: Request,
    actor: Manager,
    session: StaffDb,
    vote_id: str,
    house: FormShort = "",
    proxy_phone: Annotated[str, Form(max_length=32)] = "",
    proxy_name: FormShort = "",
    document_ref: FormShort = "",
) -> Response:
    wanted = _vote_id(vote_id)

    async def act() -> None:
        vote = await service.get_vote(session, actor, vote_id=wanted)
        await service.add_proxy(
            session,
            actor,
            vote_id=wanted,
            house_id=await _house_by_ref(session, actor, vote, house),
            proxy_phone=proxy_phone,
            proxy_name=proxy_name,
            document_ref=document_ref,
        )

    return await _vote_action(request, session, actor, wanted, act)


@router.post("/console/votes/{vote_id}/paper", dependencies=[ConsoleCsrf])
async def paper_ballot(
    request: Request, actor: Manager, session: StaffDb, vote_id: str
) -> Response:
    wanted = _vote_id(vote_id)
    form = await request.form()

    async def act() -> None:
        vote = await service.get_vote(session, actor, vote_id=wanted)
        choices = {
            str(m.id): str(form.get(f"choice_{m.id}", ""))[:100]
            for m in await service.matters_of(session, wanted)
        }
        await service.record_paper_ballot(
            session,
            actor,
            vote_id=wanted,
            house_id=await _house_by_ref(session, actor, vote, str(form.get("house", ""))[:200]),
            choices=choices,
        )

    return await _vote_action(request, session, actor, wanted, act)


@router.get("/console/votes/{vote_id}/ballots.xlsx")
async def export_ballots(
    request: Request, actor: Manager, session: StaffDb, vote_id: str
) -> Response:
    wanted = _vote_id(vote_id)
    data = await service.export_ballots(session, actor, vote_id=wanted)
    return Response(
        data,
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="ballots-{wanted}.xlsx"'},
    )


# --- portal -------------------------------------------------------------------------------------


async def _portal_votes(
    request: Request,
    session: AsyncSession,
    actor: Actor,
    *,
    error: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    context = await _portal_context(request, session, actor)
    found = await service.my_votes(session, actor)
    return render(
        request,
        "votes/portal_votes.html",
        context
        | BASE_CONTEXT
        | {"votes": found, "error": error, "now_utc": dt.datetime.now(dt.UTC)},
        status_code=status_code,
    )


@router.get("/portal/votes", name="portal.votes")
async def portal_votes(request: Request, actor: ResidentActor, session: PlatformDb) -> Response:
    return await _portal_votes(request, session, actor)


@router.post("/portal/votes/{vote_id}/ballot", dependencies=[PortalCsrf])
async def portal_cast(
    request: Request, actor: ResidentActor, session: PlatformDb, vote_id: str
) -> Response:
    wanted = _vote_id(vote_id)
    form = await request.form()
    company, house = (
        optional_uuid(str(form.get("company_id", ""))),
        optional_uuid(str(form.get("house_id", ""))),
    )
    choices = {
        key.removeprefix("choice_"): str(value)[:100]
        for key, value in form.items()
        if key.startswith("choice_") and len(key) < 60
    }

    async def act() -> None:
        if company is None or house is None:
            raise NotFound("House not found.", code="house_not_found")
        await service.cast_ballot(
            session, actor, company_id=company, vote_id=wanted, house_id=house, choices=choices
        )

    failed = await attempt(session, act)
    if failed is not None:
        return await _portal_votes(
            request, session, actor, error=describe(failed), status_code=failed.status
        )
    return redirect(request, "/portal/votes")


@router.get("/portal/votes/{vote_id}/results", name="portal.vote.results")
async def portal_results(
    request: Request,
    actor: ResidentActor,
    session: PlatformDb,
    vote_id: str,
    company: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    company_id = optional_uuid(company)
    if company_id is None:
        raise NotFound("Vote not found.", code="vote_not_found")
    context = await _portal_context(request, session, actor)
    vote, result = await service.resident_tally(
        session, actor, company_id=company_id, vote_id=_vote_id(vote_id)
    )
    return render(
        request,
        "votes/portal_results.html",
        context | BASE_CONTEXT | {"vote": vote, "result": result},
    )
