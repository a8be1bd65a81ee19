"""Routes of the estate registry. Thin: parse, call the service, shape the answer."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from linli.auth.actor import Actor
from linli.auth.deps import Authorizer, DbSession, DeclaredRoute
from linli.auth.permissions import Permission
from linli.core.idempotency import IdempotencyDep
from linli.core.pagination import Page, PageParams, page_params
from linli.estate import service
from linli.estate.models import HouseStatus
from linli.estate.schemas import (
    BuildingCreate,
    BuildingNodeRead,
    BuildingRead,
    BuildingTree,
    CommunityProfile,
    CommunityProfileUpdate,
    CommunityStats,
    CommunityTree,
    FacilityCreate,
    FacilityRead,
    FacilityUpdate,
    HouseCreate,
    HouseLeaf,
    HouseRead,
    HouseUpdate,
    ParkingAreaCreate,
    ParkingAreaRead,
    ParkingAreaUpdate,
    ParkingSpaceCreate,
    ParkingSpaceRead,
    ParkingSpacesAdd,
    ParkingSpacesAdded,
    ParkingSpaceUpdate,
    UnitCreate,
    UnitHouses,
    UnitNodeRead,
    UnitRead,
)
from linli.residents import service as residents_service

router = APIRouter(prefix="/api/v1/estate", route_class=DeclaredRoute, tags=["estate"])

Reader = Annotated[Actor, Depends(Authorizer(Permission.ESTATE_READ))]
Writer = Annotated[Actor, Depends(Authorizer(Permission.ESTATE_WRITE))]
Paging = Annotated[PageParams, Depends(page_params)]


@router.get("/communities/{community_id}/profile", response_model=CommunityProfile)
async def get_profile(
    actor: Reader, session: DbSession, community_id: uuid.UUID
) -> CommunityProfile:
    return CommunityProfile.model_validate(
        await service.get_community(session, actor, community_id=community_id)
    )


@router.patch("/communities/{community_id}/profile", response_model=CommunityProfile)
async def update_profile(
    actor: Writer, session: DbSession, community_id: uuid.UUID, body: CommunityProfileUpdate
) -> CommunityProfile:
    changes = body.model_dump(exclude_unset=True, mode="json")
    if "area_m2" in changes and body.area_m2 is not None:
        changes["area_m2"] = body.area_m2
    community = await service.update_community_profile(
        session, actor, community_id=community_id, changes=changes
    )
    return CommunityProfile.model_validate(community)


@router.get(
    "/communities/{community_id}/tree",
    response_model=CommunityTree,
    summary="Buildings → units with counts",
)
async def community_tree(
    actor: Reader, session: DbSession, community_id: uuid.UUID
) -> CommunityTree:
    nodes = await service.community_tree(session, actor, community_id=community_id)
    return CommunityTree(
        community_id=community_id,
        buildings=[
            BuildingNodeRead(
                id=n.id,
                building_no=n.building_no,
                name=n.name,
                houses=n.houses,
                occupied=n.occupied,
                units=[
                    UnitNodeRead(id=u.id, unit_no=u.unit_no, houses=u.houses, occupied=u.occupied)
                    for u in n.units
                ],
            )
            for n in nodes
        ],
    )


@router.get(
    "/stats", response_model=list[CommunityStats], summary="Counts and occupancy per community"
)
async def stats(actor: Reader, session: DbSession) -> list[CommunityStats]:
    counts = await service.community_counts(session, actor)
    residents = await residents_service.resident_counts(session, actor)
    return [
        CommunityStats(
            community_id=c.community_id,
            code=c.code,
            name=c.name,
            buildings=c.buildings,
            houses=c.houses,
            by_status=c.by_status,
            building_area=c.building_area,
            occupancy_rate=c.occupancy_rate,
            residents=residents.get(c.community_id, 0),
            parking_spaces=c.parking_spaces,
            parking_held=c.parking_held,
        )
        for c in counts
    ]


@router.post("/buildings", response_model=BuildingRead, status_code=201)
async def create_building(
    actor: Writer, session: DbSession, body: BuildingCreate, idempotency: IdempotencyDep
) -> BuildingRead:
    async def create() -> BuildingRead:
        return BuildingRead.model_validate(
            await service.create_building(session, actor, **body.model_dump())
        )

    result: BuildingRead = await idempotency.run(session, actor, create, status_code=201)
    return result


@router.get("/buildings", response_model=Page[BuildingRead])
async def list_buildings(
    actor: Reader, session: DbSession, page: Paging, community_id: uuid.UUID | None = None
) -> Page[BuildingRead]:
    rows, cursor = await service.list_buildings(
        session, actor, community_id=community_id, page=page
    )
    return Page[BuildingRead].of(rows, cursor)


@router.get("/buildings/{building_id}", response_model=BuildingRead)
async def get_building(actor: Reader, session: DbSession, building_id: uuid.UUID) -> BuildingRead:
    return BuildingRead.model_validate(
        await service.get_building(session, actor, building_id=building_id)
    )


@router.get(
    "/buildings/{building_id}/tree",
    response_model=BuildingTree,
    summary="Units → houses of a building",
)
async def building_tree(actor: Reader, session: DbSession, building_id: uuid.UUID) -> BuildingTree:
    groups = await service.building_houses(session, actor, building_id=building_id)
    return BuildingTree(
        building_id=building_id,
        units=[
            UnitHouses(
                unit_id=unit.id if unit else None,
                unit_no=unit.unit_no if unit else None,
                houses=[HouseLeaf.model_validate(h) for h in houses],
            )
            for unit, houses in groups
        ],
    )


@router.post("/buildings/{building_id}/units", response_model=UnitRead, status_code=201)
async def create_unit(
    actor: Writer,
    session: DbSession,
    building_id: uuid.UUID,
    body: UnitCreate,
    idempotency: IdempotencyDep,
) -> UnitRead:
    async def create() -> UnitRead:
        unit = await service.create_unit(
            session, actor, building_id=building_id, **body.model_dump()
        )
        return UnitRead.model_validate(unit)

    result: UnitRead = await idempotency.run(session, actor, create, status_code=201)
    return result


@router.get("/buildings/{building_id}/units", response_model=Page[UnitRead])
async def list_units(
    actor: Reader, session: DbSession, building_id: uuid.UUID, page: Paging
) -> Page[UnitRead]:
    await service.get_building(session, actor, building_id=building_id)
    rows, cursor = await service.list_units(session, actor, building_id=building_id, page=page)
    return Page[UnitRead].of(rows, cursor)


@router.post("/houses", response_model=HouseRead, status_code=201)
async def create_house(
    actor: Writer, session: DbSession, body: HouseCreate, idempotency: IdempotencyDep
) -> HouseRead:
    async def create() -> HouseRead:
        return HouseRead.model_validate(
            await service.create_house(session, actor, **body.model_dump())
        )

    result: HouseRead = await idempotency.run(session, actor, create, status_code=201)
    return result


@router.get("/houses", response_model=Page[HouseRead])
async def list_houses(
    actor: Reader,
    session: DbSession,
    page: Paging,
    community_id: uuid.UUID | None = None,
    building_id: uuid.UUID | None = None,
    unit_id: uuid.UUID | None = None,
    status: HouseStatus | None = None,
    house_no: Annotated[str | None, Query(max_length=20)] = None,
    include_archived: bool = False,
) -> Page[HouseRead]:
    filters = service.HouseFilter(
        community_id=community_id,
        building_id=building_id,
        unit_id=unit_id,
        status=status,
        house_no=house_no,
        include_archived=include_archived,
    )
    rows, cursor = await service.list_houses(session, actor, filters=filters, page=page)
    return Page[HouseRead].of(rows, cursor)


@router.get("/houses/{house_id}", response_model=HouseRead)
async def get_house(actor: Reader, session: DbSession, house_id: uuid.UUID) -> HouseRead:
    return HouseRead.model_validate(
        await service.get_house(session, actor, house_id=house_id, include_archived=True)
    )


@router.patch("/houses/{house_id}", response_model=HouseRead)
async def update_house(
    actor: Writer, session: DbSession, house_id: uuid.UUID, body: HouseUpdate
) -> HouseRead:
    house = await service.update_house(
        session, actor, house_id=house_id, changes=body.model_dump(exclude_unset=True)
    )
    return HouseRead.model_validate(house)


@router.post("/houses/{house_id}/archive", response_model=HouseRead)
async def archive_house(actor: Writer, session: DbSession, house_id: uuid.UUID) -> HouseRead:
    return HouseRead.model_validate(await service.archive_house(session, actor, house_id=house_id))


@router.delete("/houses/{house_id}", status_code=204, summary="Delete a house entered by mistake")
async def delete_house(actor: Writer, session: DbSession, house_id: uuid.UUID) -> Response:
    await service.delete_house(session, actor, house_id=house_id)
    return Response(status_code=204)


@router.post("/parking-areas", response_model=ParkingAreaRead, status_code=201)
async def create_parking_area(
    actor: Writer, session: DbSession, body: ParkingAreaCreate, idempotency: IdempotencyDep
) -> ParkingAreaRead:
    async def create() -> ParkingAreaRead:
        return ParkingAreaRead.model_validate(
            await service.create_parking_area(session, actor, **body.model_dump())
        )

    result: ParkingAreaRead = await idempotency.run(session, actor, create, status_code=201)
    return result


@router.get("/parking-areas", response_model=Page[ParkingAreaRead])
async def list_parking_areas(
    actor: Reader,
    session: DbSession,
    page: Paging,
    community_id: uuid.UUID | None = None,
    include_archived: bool = False,
) -> Page[ParkingAreaRead]:
    rows, cursor = await service.list_parking_areas(
        session, actor, community_id=community_id, page=page, include_archived=include_archived
    )
    return Page[ParkingAreaRead].of(rows, cursor)


@router.patch("/parking-areas/{area_id}", response_model=ParkingAreaRead)
async def update_parking_area(
    actor: Writer, session: DbSession, area_id: uuid.UUID, body: ParkingAreaUpdate
) -> ParkingAreaRead:
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    area = await service.update_parking_area(session, actor, area_id=area_id, changes=changes)
    return ParkingAreaRead.model_validate(area)


@router.post(
    "/parking-areas/{area_id}/archive",
    response_model=ParkingAreaRead,
    summary="Archive an area and its spaces (kept as history, out of lists and billing)",
)
async def archive_parking_area(
    actor: Writer, session: DbSession, area_id: uuid.UUID
) -> ParkingAreaRead:
    area = await service.archive_parking_area(session, actor, area_id=area_id)
    return ParkingAreaRead.model_validate(area)


@router.delete(
    "/parking-areas/{area_id}",
    status_code=204,
    summary="Delete an area entered by mistake (refused with the reason when in use)",
)
async def delete_parking_area(actor: Writer, session: DbSession, area_id: uuid.UUID) -> Response:
    await service.delete_parking_area(session, actor, area_id=area_id)
    return Response(status_code=204)


@router.post("/parking-spaces", response_model=ParkingSpaceRead, status_code=201)
async def create_parking_space(
    actor: Writer, session: DbSession, body: ParkingSpaceCreate, idempotency: IdempotencyDep
) -> ParkingSpaceRead:
    async def create() -> ParkingSpaceRead:
        space = await service.create_parking_space(session, actor, **body.model_dump())
        return ParkingSpaceRead.model_validate(space)

    result: ParkingSpaceRead = await idempotency.run(session, actor, create, status_code=201)
    return result


@router.post(
    "/parking-areas/{area_id}/spaces",
    response_model=ParkingSpacesAdded,
    summary="Add many spaces (B1-001..B1-120); numbers already there stay as they are",
)
async def add_parking_spaces(
    actor: Writer,
    session: DbSession,
    area_id: uuid.UUID,
    body: ParkingSpacesAdd,
    idempotency: IdempotencyDep,
) -> ParkingSpacesAdded:
    async def add() -> ParkingSpacesAdded:
        numbers = service.expand_space_numbers(body.numbers)
        added = await service.create_parking_spaces(
            session, actor, area_id=area_id, space_nos=numbers, usage=body.usage
        )
        return ParkingSpacesAdded(created=added.created, existing=added.existing)

    result: ParkingSpacesAdded = await idempotency.run(session, actor, add, status_code=200)
    return result


@router.patch(
    "/parking-spaces/{space_id}",
    response_model=ParkingSpaceRead,
    summary="Edit a space: number, use, holder (house / resident), lease dates, area",
)
async def update_parking_space(
    actor: Writer, session: DbSession, space_id: uuid.UUID, body: ParkingSpaceUpdate
) -> ParkingSpaceRead:
    changes = body.model_dump(exclude_unset=True)
    if changes.get("usage", "") is None:
        del changes["usage"]
    space = await service.update_parking_space(session, actor, space_id=space_id, changes=changes)
    return ParkingSpaceRead.model_validate(space)


@router.post("/parking-spaces/{space_id}/archive", response_model=ParkingSpaceRead)
async def archive_parking_space(
    actor: Writer, session: DbSession, space_id: uuid.UUID
) -> ParkingSpaceRead:
    space = await service.archive_parking_space(session, actor, space_id=space_id)
    return ParkingSpaceRead.model_validate(space)


@router.post("/parking-spaces/{space_id}/restore", response_model=ParkingSpaceRead)
async def restore_parking_space(
    actor: Writer, session: DbSession, space_id: uuid.UUID
) -> ParkingSpaceRead:
    space = await service.restore_parking_space(session, actor, space_id=space_id)
    return ParkingSpaceRead.model_validate(space)


@router.delete(
    "/parking-spaces/{space_id}",
    status_code=204,
    summary="Delete a space entered by mistake (refused when held, leased or billed)",
)
async def delete_parking_space(actor: Writer, session: DbSession, space_id: uuid.UUID) -> Response:
    await service.delete_parking_space(session, actor, space_id=space_id)
    return Response(status_code=204)


@router.get("/parking-spaces", response_model=Page[ParkingSpaceRead])
async def list_parking_spaces(
    actor: Reader,
    session: DbSession,
    page: Paging,
    community_id: uuid.UUID | None = None,
    area_id: uuid.UUID | None = None,
    include_archived: bool = False,
) -> Page[ParkingSpaceRead]:
    rows, cursor = await service.list_parking_spaces(
        session,
        actor,
        community_id=community_id,
        area_id=area_id,
        page=page,
        include_archived=include_archived,
    )
    return Page[ParkingSpaceRead].of(rows, cursor)


@router.post("/facilities", response_model=FacilityRead, status_code=201)
async def create_facility(
    actor: Writer, session: DbSession, body: FacilityCreate, idempotency: IdempotencyDep
) -> FacilityRead:
    async def create() -> FacilityRead:
        return FacilityRead.model_validate(
            await service.create_facility(session, actor, **body.model_dump())
        )

    result: FacilityRead = await idempotency.run(session, actor, create, status_code=201)
    return result


@router.get("/facilities", response_model=Page[FacilityRead])
async def list_facilities(
    actor: Reader,
    session: DbSession,
    page: Paging,
    community_id: uuid.UUID | None = None,
    include_archived: bool = False,
) -> Page[FacilityRead]:
    rows, cursor = await service.list_facilities(
        session, actor, community_id=community_id, page=page, include_archived=include_archived
    )
    return Page[FacilityRead].of(rows, cursor)


@router.patch("/facilities/{facility_id}", response_model=FacilityRead)
async def update_facility(
    actor: Writer, session: DbSession, facility_id: uuid.UUID, body: FacilityUpdate
) -> FacilityRead:
    changes = body.model_dump(exclude_unset=True)
    for key in ("name", "kind", "location"):
        if changes.get(key, "") is None:
            del changes[key]
    facility = await service.update_facility(
        session, actor, facility_id=facility_id, changes=changes
    )
    return FacilityRead.model_validate(facility)


@router.post("/facilities/{facility_id}/archive", response_model=FacilityRead)
async def archive_facility(
    actor: Writer, session: DbSession, facility_id: uuid.UUID
) -> FacilityRead:
    facility = await service.archive_facility(session, actor, facility_id=facility_id)
    return FacilityRead.model_validate(facility)


@router.delete(
    "/facilities/{facility_id}",
    status_code=204,
    summary="Delete a facility entered by mistake (refused when other records use it)",
)
async def delete_facility(actor: Writer, session: DbSession, facility_id: uuid.UUID) -> Response:
    await service.delete_facility(session, actor, facility_id=facility_id)
    return Response(status_code=204)
