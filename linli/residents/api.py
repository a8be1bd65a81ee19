"""Routes of residents, vehicles, house claims (staff) and the resident portal's homes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from linli.auth.actor import Actor, PrincipalKind
from linli.auth.deps import Authorizer, DbSession, DeclaredRoute
from linli.auth.permissions import Permission
from linli.core.idempotency import IdempotencyDep
from linli.core.pagination import Page, PageParams, page_params
from linli.residents import service
from linli.residents.models import ClaimStatus, Resident
from linli.residents.schemas import (
    ClaimCreate,
    ClaimRead,
    ClaimReject,
    HomeMemberRead,
    HomeRead,
    HomeVehicleRead,
    HouseMemberRead,
    LinkRead,
    MemberCreate,
    MoveIn,
    MoveOut,
    MyClaimRead,
    MyHomes,
    ResidentCreate,
    ResidentHouseRead,
    ResidentRead,
    ResidentUpdate,
    VehicleCreate,
    VehicleRead,
    VehicleUpdate,
)

router = APIRouter(prefix="/api/v1", route_class=DeclaredRoute, tags=["residents"])

Reader = Annotated[Actor, Depends(Authorizer(Permission.RESIDENTS_READ))]
Writer = Annotated[Actor, Depends(Authorizer(Permission.RESIDENTS_WRITE))]
Reviewer = Annotated[Actor, Depends(Authorizer(Permission.CLAIMS_REVIEW))]
Me = Annotated[
    Actor, Depends(Authorizer(Permission.RESIDENT_SELF, kinds=(PrincipalKind.RESIDENT,)))
]
Paging = Annotated[PageParams, Depends(page_params)]


def resident_read(actor: Actor, resident: Resident) -> ResidentRead:
    contact = service.contact_of(actor, resident)
    return ResidentRead(
        id=resident.id,
        name=resident.name,
        phone=contact.phone,
        id_card=contact.id_card,
        contact_masked=contact.masked,
        gender=resident.gender,
        birth_date=resident.birth_date,
        tags=list(resident.tags or []),
        community_id=resident.community_id,
        created_at=resident.created_at,
    )


@router.get("/residents", response_model=Page[ResidentRead], summary="Search residents")
async def search_residents(
    actor: Reader,
    session: DbSession,
    page: Paging,
    phone: Annotated[str | None, Query(max_length=32, description="exact mobile number")] = None,
    name: Annotated[
        str | None, Query(min_length=1, max_length=100, description="name prefix")
    ] = None,
    house: Annotated[
        str | None, Query(max_length=40, description="3-2-1201 or 3栋2单元1201")
    ] = None,
    community_id: uuid.UUID | None = None,
    without_house: Annotated[
        bool, Query(description="only people with no current house (registered, moved out)")
    ] = False,
    tag: Annotated[str | None, Query(min_length=1, max_length=32, description="a tag")] = None,
) -> Page[ResidentRead]:
    search = service.ResidentSearch(
        phone=phone,
        name=name,
        house=house,
        community_id=community_id,
        without_house=without_house,
        tag=tag,
    )
    rows, cursor = await service.search_residents(session, actor, search=search, page=page)
    return Page[ResidentRead](items=[resident_read(actor, r) for r in rows], next_cursor=cursor)


@router.post("/residents", response_model=ResidentRead, status_code=201)
async def create_resident(
    actor: Writer, session: DbSession, body: ResidentCreate, idempotency: IdempotencyDep
) -> ResidentRead:
    async def create() -> ResidentRead:
        return resident_read(
            actor, await service.create_resident(session, actor, **body.model_dump())
        )

    result: ResidentRead = await idempotency.run(session, actor, create, status_code=201)
    return result


@router.get("/residents/{resident_id}", response_model=ResidentRead)
async def get_resident(actor: Reader, session: DbSession, resident_id: uuid.UUID) -> ResidentRead:
    return resident_read(actor, await service.get_resident(session, actor, resident_id=resident_id))


@router.patch("/residents/{resident_id}", response_model=ResidentRead)
async def update_resident(
    actor: Writer, session: DbSession, resident_id: uuid.UUID, body: ResidentUpdate
) -> ResidentRead:
    resident = await service.update_resident(
        session, actor, resident_id=resident_id, changes=body.model_dump(exclude_unset=True)
    )
    return resident_read(actor, resident)


@router.get("/residents/{resident_id}/houses", response_model=list[ResidentHouseRead])
async def resident_houses(
    actor: Reader, session: DbSession, resident_id: uuid.UUID, include_history: bool = False
) -> list[ResidentHouseRead]:
    links = await service.houses_of_resident(
        session, actor, resident_id=resident_id, include_history=include_history
    )
    return [
        ResidentHouseRead(
            link=LinkRead.model_validate(x.relation),
            house_id=x.house.id,
            community_name=x.community_name,
            building_no=x.building_no,
            unit_no=x.unit_no,
            house_no=x.house.house_no,
        )
        for x in links
    ]


@router.post("/residents/{resident_id}/move-in", response_model=LinkRead, status_code=201)
async def move_in(
    actor: Writer,
    session: DbSession,
    resident_id: uuid.UUID,
    body: MoveIn,
    idempotency: IdempotencyDep,
) -> LinkRead:
    await service.get_resident(session, actor, resident_id=resident_id)

    async def create() -> LinkRead:
        link = await service.move_in(session, actor, resident_id=resident_id, **body.model_dump())
        return LinkRead.model_validate(link)

    result: LinkRead = await idempotency.run(session, actor, create, status_code=201)
    return result


@router.post("/resident-links/{link_id}/move-out", response_model=LinkRead)
async def move_out(
    actor: Writer, session: DbSession, link_id: uuid.UUID, body: MoveOut
) -> LinkRead:
    link = await service.move_out(session, actor, link_id=link_id, moved_out_on=body.moved_out_on)
    return LinkRead.model_validate(link)


@router.get(
    "/houses/{house_id}/residents",
    response_model=list[HouseMemberRead],
    summary="People of a house",
)
async def house_residents(
    actor: Reader, session: DbSession, house_id: uuid.UUID, include_history: bool = False
) -> list[HouseMemberRead]:
    rows = await service.house_members(
        session, actor, house_id=house_id, include_history=include_history
    )
    return [
        HouseMemberRead(link=LinkRead.model_validate(link), resident=resident_read(actor, r))
        for link, r in rows
    ]


@router.get("/vehicles", response_model=Page[VehicleRead])
async def list_vehicles(
    actor: Reader,
    session: DbSession,
    page: Paging,
    community_id: uuid.UUID | None = None,
    house_id: uuid.UUID | None = None,
    plate: Annotated[str | None, Query(max_length=20)] = None,
    include_archived: bool = False,
) -> Page[VehicleRead]:
    rows, cursor = await service.list_vehicles(
        session,
        actor,
        community_id=community_id,
        house_id=house_id,
        plate=plate,
        page=page,
        include_archived=include_archived,
    )
    return Page[VehicleRead].of(rows, cursor)


@router.patch("/vehicles/{vehicle_id}", response_model=VehicleRead)
async def update_vehicle(
    actor: Writer, session: DbSession, vehicle_id: uuid.UUID, body: VehicleUpdate
) -> VehicleRead:
    changes = body.model_dump(exclude_unset=True)
    for key in ("plate", "brand", "color"):
        if changes.get(key, "") is None:
            del changes[key]
    vehicle = await service.update_vehicle(session, actor, vehicle_id=vehicle_id, changes=changes)
    return VehicleRead.model_validate(vehicle)


@router.post(
    "/vehicles/{vehicle_id}/archive",
    response_model=VehicleRead,
    summary="The vehicle is gone: gates stop knowing it, its history stays",
)
async def archive_vehicle(actor: Writer, session: DbSession, vehicle_id: uuid.UUID) -> VehicleRead:
    return VehicleRead.model_validate(
        await service.archive_vehicle(session, actor, vehicle_id=vehicle_id)
    )


@router.delete(
    "/vehicles/{vehicle_id}",
    status_code=204,
    summary="Delete a vehicle registered by mistake (refused when it has gate records)",
)
async def delete_vehicle(actor: Writer, session: DbSession, vehicle_id: uuid.UUID) -> Response:
    await service.delete_vehicle(session, actor, vehicle_id=vehicle_id)
    return Response(status_code=204)


@router.post("/vehicles", response_model=VehicleRead, status_code=201)
async def register_vehicle(
    actor: Writer, session: DbSession, body: VehicleCreate, idempotency: IdempotencyDep
) -> VehicleRead:
    async def create() -> VehicleRead:
        return VehicleRead.model_validate(
            await service.register_vehicle(session, actor, **body.model_dump())
        )

    result: VehicleRead = await idempotency.run(session, actor, create, status_code=201)
    return result


@router.get("/claims", response_model=Page[ClaimRead], summary="House claims to review")
async def list_claims(
    actor: Reviewer,
    session: DbSession,
    page: Paging,
    status: ClaimStatus | None = None,
    community_id: uuid.UUID | None = None,
) -> Page[ClaimRead]:
    rows, cursor = await service.list_claims(
        session, actor, status=status, community_id=community_id, page=page
    )
    return Page[ClaimRead].of(rows, cursor)


@router.post("/claims/{claim_id}/approve", response_model=ClaimRead)
async def approve_claim(actor: Reviewer, session: DbSession, claim_id: uuid.UUID) -> ClaimRead:
    return ClaimRead.model_validate(await service.approve_claim(session, actor, claim_id=claim_id))


@router.post("/claims/{claim_id}/reject", response_model=ClaimRead)
async def reject_claim(
    actor: Reviewer, session: DbSession, claim_id: uuid.UUID, body: ClaimReject
) -> ClaimRead:
    return ClaimRead.model_validate(
        await service.reject_claim(session, actor, claim_id=claim_id, reason=body.reason)
    )


# --- resident portal ---------------------------------------------------------------------


@router.get(
    "/resident/homes", response_model=MyHomes, summary="My homes across companies (我的房屋)"
)
async def my_homes(actor: Me, session: DbSession) -> MyHomes:
    homes, claims = await service.my_homes(session, actor)
    return MyHomes(
        homes=[
            HomeRead(
                company_id=h.company_id,
                company_name=h.company_name,
                community_id=h.community_id,
                community_name=h.community_name,
                house_id=h.house_id,
                building_no=h.building_no,
                unit_no=h.unit_no,
                house_no=h.house_no,
                building_area=h.building_area,
                my_relation=h.my_relation,
                members=[HomeMemberRead(**vars(m)) for m in h.members],
                vehicles=[HomeVehicleRead(**vars(v)) for v in h.vehicles],
            )
            for h in homes
        ],
        claims=[MyClaimRead(**vars(c)) for c in claims],
    )


@router.post(
    "/resident/claims",
    response_model=ClaimRead,
    status_code=201,
    summary="Claim a house (认证房屋)",
)
async def submit_claim(
    actor: Me, session: DbSession, body: ClaimCreate, idempotency: IdempotencyDep
) -> ClaimRead:
    async def create() -> ClaimRead:
        return ClaimRead.model_validate(
            await service.submit_claim(session, actor, **body.model_dump())
        )

    result: ClaimRead = await idempotency.run(session, actor, create, status_code=201)
    return result


@router.post(
    "/resident/homes/{house_id}/members",
    response_model=HomeMemberRead,
    status_code=201,
    summary="Owner adds a family member or tenant",
)
async def add_member(
    actor: Me,
    session: DbSession,
    house_id: uuid.UUID,
    body: MemberCreate,
    idempotency: IdempotencyDep,
) -> HomeMemberRead:
    async def create() -> HomeMemberRead:
        link = await service.add_member(session, actor, house_id=house_id, **body.model_dump())
        return HomeMemberRead(
            link_id=link.id,
            resident_id=link.resident_id,
            name=body.name,
            relation=link.relation,
            phone_masked=None,
            is_me=False,
            lease_end=link.lease_end,
        )

    result: HomeMemberRead = await idempotency.run(session, actor, create, status_code=201)
    return result
