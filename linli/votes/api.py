"""Routes of the votes domain. Thin: parse, call the service, shape the answer."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from linli.auth.actor import Actor, PrincipalKind
from linli.auth.deps import Authorizer, DbSession, DeclaredRoute
from linli.auth.permissions import Permission
from linli.core.pagination import Page, PageParams, page_params
from linli.votes import service
from linli.votes.models import Vote, VoteMatter, VoteStatus
from linli.votes.schemas import (
    BallotIn,
    BallotRead,
    ChainRead,
    MatterRead,
    MatterResultRead,
    MyHouseRead,
    MyVoteRead,
    OptionRead,
    ProxyCreate,
    ProxyRead,
    ResidentBallotIn,
    TallyRead,
    VoteCreate,
    VoteDetail,
    VoteRead,
)

router = APIRouter(prefix="/api/v1/votes", route_class=DeclaredRoute, tags=["votes"])

Manager = Annotated[Actor, Depends(Authorizer(Permission.VOTES_MANAGE))]
Resident = Annotated[
    Actor, Depends(Authorizer(Permission.RESIDENT_SELF, kinds=(PrincipalKind.RESIDENT,)))
]
Paging = Annotated[PageParams, Depends(page_params)]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _detail(vote: Vote, matters: list[VoteMatter]) -> VoteDetail:
    return VoteDetail(
        **VoteRead.model_validate(vote).model_dump(),
        matters=[MatterRead.model_validate(m) for m in matters],
    )


def tally_read(result: service.Tally) -> TallyRead:
    f = service.fraction_text
    return TallyRead(
        vote_id=result.vote_id,
        kind=result.kind,
        electorate_houses=result.electorate_houses,
        electorate_area=f(result.electorate_area),
        participating_houses=result.participating_houses,
        participating_area=f(result.participating_area),
        area_share=f(result.area_share),
        count_share=f(result.count_share),
        quorum=f(service.QUORUM),
        quorum_met=result.quorum_met,
        matters=[
            MatterResultRead(
                matter_id=m.matter_id,
                position=m.position,
                title=m.title,
                article_item=m.article_item,
                rule=m.rule,
                threshold=f(m.threshold) if m.threshold is not None else None,
                options=[
                    OptionRead(option=o.option, houses=o.houses, area=f(o.area)) for o in m.options
                ],
                agree_area_share=f(m.agree_area_share),
                agree_count_share=f(m.agree_count_share),
                passed=m.passed,
            )
            for m in result.matters
        ],
    )


@router.post(
    "", response_model=VoteDetail, status_code=201, summary="Create a vote or survey (draft)"
)
async def create_vote(actor: Manager, session: DbSession, body: VoteCreate) -> VoteDetail:
    vote = await service.create_vote(
        session,
        actor,
        community_id=body.community_id,
        kind=body.kind,
        title=body.title,
        description=body.description,
        opens_at=body.opens_at,
        closes_at=body.closes_at,
        matters=[service.MatterIn(m.title, m.article_item, m.options) for m in body.matters],
    )
    return _detail(vote, await service.matters_of(session, vote.id))


@router.get("", response_model=Page[VoteRead])
async def list_votes(
    actor: Manager,
    session: DbSession,
    page: Paging,
    community_id: uuid.UUID | None = None,
    status: VoteStatus | None = None,
) -> Page[VoteRead]:
    rows, cursor = await service.list_votes(
        session, actor, community_id=community_id, status=status, page=page
    )
    return Page[VoteRead].of(rows, cursor)


@router.get("/{vote_id}", response_model=VoteDetail)
async def get_vote(actor: Manager, session: DbSession, vote_id: uuid.UUID) -> VoteDetail:
    vote = await service.get_vote(session, actor, vote_id=vote_id)
    return _detail(vote, await service.matters_of(session, vote.id))


@router.post("/{vote_id}/open", response_model=VoteRead, summary="Open: freeze the electorate")
async def open_vote(actor: Manager, session: DbSession, vote_id: uuid.UUID) -> VoteRead:
    return VoteRead.model_validate(await service.open_vote(session, actor, vote_id=vote_id))


@router.post("/{vote_id}/close", response_model=VoteRead, summary="Close: freeze the tally")
async def close_vote(actor: Manager, session: DbSession, vote_id: uuid.UUID) -> VoteRead:
    return VoteRead.model_validate(await service.close_vote(session, actor, vote_id=vote_id))


@router.get(
    "/{vote_id}/results",
    response_model=TallyRead,
    summary="Tally under Civil Code Article 278 (exact fractions)",
)
async def results(actor: Manager, session: DbSession, vote_id: uuid.UUID) -> TallyRead:
    return tally_read(await service.tally(session, actor, vote_id=vote_id))


@router.get("/{vote_id}/chain", response_model=ChainRead, summary="Verify the ballots' hash chain")
async def verify_chain(actor: Manager, session: DbSession, vote_id: uuid.UUID) -> ChainRead:
    check = await service.verify_chain(session, actor, vote_id=vote_id)
    return ChainRead(
        ok=check.ok,
        ballots=check.ballots,
        first_bad_seq=check.first_bad_seq,
        head_matches=check.head_matches,
    )


@router.get(
    "/{vote_id}/ballots.xlsx",
    response_class=Response,
    responses={200: {"content": {XLSX: {}}}},
    summary="Export the ballot list",
)
async def export_ballots(actor: Manager, session: DbSession, vote_id: uuid.UUID) -> Response:
    data = await service.export_ballots(session, actor, vote_id=vote_id)
    return Response(
        data,
        media_type=XLSX,
        headers={"Content-Disposition": f'attachment; filename="ballots-{vote_id}.xlsx"'},
    )


@router.get("/{vote_id}/proxies", response_model=list[ProxyRead])
async def list_proxies(actor: Manager, session: DbSession, vote_id: uuid.UUID) -> list[ProxyRead]:
    rows = await service.list_proxies(session, actor, vote_id=vote_id)
    return [ProxyRead.model_validate(r) for r in rows]


@router.post(
    "/{vote_id}/proxies",
    response_model=ProxyRead,
    status_code=201,
    summary="Record a proxy's authorisation (授权委托书)",
)
async def add_proxy(
    actor: Manager, session: DbSession, vote_id: uuid.UUID, body: ProxyCreate
) -> ProxyRead:
    proxy = await service.add_proxy(session, actor, vote_id=vote_id, **body.model_dump())
    return ProxyRead.model_validate(proxy)


@router.post(
    "/{vote_id}/paper-ballots",
    response_model=BallotRead,
    status_code=201,
    summary="Enter a signed paper ballot",
)
async def paper_ballot(
    actor: Manager, session: DbSession, vote_id: uuid.UUID, body: BallotIn
) -> BallotRead:
    ballot = await service.record_paper_ballot(
        session, actor, vote_id=vote_id, house_id=body.house_id, choices=body.choices
    )
    return BallotRead.of(ballot)


# --- residents ----------------------------------------------------------------------------------


@router.get("/resident/mine", response_model=list[MyVoteRead], summary="Votes I may take part in")
async def my_votes(actor: Resident, session: DbSession) -> list[MyVoteRead]:
    found = await service.my_votes(session, actor)
    return [
        MyVoteRead(
            company_id=v.company_id,
            vote=_detail(v.vote, v.matters),
            houses=[
                MyHouseRead(
                    house_id=h.house_id,
                    label=h.label,
                    as_proxy=h.as_proxy,
                    ballot=BallotRead.of(h.ballot) if h.ballot else None,
                )
                for h in v.houses
            ],
        )
        for v in found
    ]


@router.post(
    "/resident/{vote_id}/ballots",
    response_model=BallotRead,
    status_code=201,
    summary="Cast a house's ballot (owner or authorised proxy)",
)
async def cast_ballot(
    actor: Resident, session: DbSession, vote_id: uuid.UUID, body: ResidentBallotIn
) -> BallotRead:
    ballot = await service.cast_ballot(
        session,
        actor,
        company_id=body.company_id,
        vote_id=vote_id,
        house_id=body.house_id,
        choices=body.choices,
    )
    return BallotRead.of(ballot)


@router.get(
    "/resident/{vote_id}/results", response_model=TallyRead, summary="Result of a closed vote"
)
async def resident_results(
    actor: Resident, session: DbSession, vote_id: uuid.UUID, company_id: uuid.UUID
) -> TallyRead:
    _, result = await service.resident_tally(session, actor, company_id=company_id, vote_id=vote_id)
    return tally_read(result)
