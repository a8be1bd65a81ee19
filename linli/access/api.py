"""Routes of the access domain. Thin: parse, call the service, shape the answer."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from linli.access import service
from linli.access.models import Pass, PassKind
from linli.access.schemas import (
    AccessPointCreate,
    AccessPointRead,
    CourierPassCreate,
    DeviceCreate,
    DeviceCredentials,
    DeviceRead,
    DoorRead,
    EventRead,
    IssuedPass,
    MyCommunityRead,
    MyPassRef,
    OpenRequest,
    OpenResultRead,
    PassRead,
    PublicPassRead,
    QrRead,
    TariffRead,
    TariffWrite,
    VehicleEntryRead,
    VisitorInvite,
    WalkInCreate,
)
from linli.auth.actor import Actor, PrincipalKind
from linli.auth.deps import Authorizer, DbSession, DeclaredRoute, public
from linli.auth.permissions import Permission
from linli.core.idempotency import IdempotencyDep
from linli.core.pagination import Page, PageParams, page_params

router = APIRouter(prefix="/api/v1/access", route_class=DeclaredRoute, tags=["access"])

Reader = Annotated[Actor, Depends(Authorizer(Permission.ACCESS_READ))]
DeviceManager = Annotated[Actor, Depends(Authorizer(Permission.ACCESS_DEVICES_MANAGE))]
VisitorDesk = Annotated[Actor, Depends(Authorizer(Permission.ACCESS_VISITORS))]
Operator = Annotated[Actor, Depends(Authorizer(Permission.ACCESS_OPERATE))]
Resident = Annotated[
    Actor, Depends(Authorizer(Permission.RESIDENT_SELF, kinds=(PrincipalKind.RESIDENT,)))
]
Anyone = Annotated[Actor | None, Depends(public)]
Paging = Annotated[PageParams, Depends(page_params)]

VISITOR_PAGE_PREFIX = "/pass/"


def _issued(row: Pass, link: str) -> IssuedPass:
    return IssuedPass(access_pass=PassRead.model_validate(row), link=VISITOR_PAGE_PREFIX + link)


def _credentials(provisioned: service.Provisioned) -> DeviceCredentials:
    return DeviceCredentials(
        device=DeviceRead.model_validate(provisioned.device),
        mqtt_username=provisioned.mqtt_username,
        mqtt_password=provisioned.mqtt_password,
        private_key=provisioned.private_key,
        community_keys=provisioned.community_keys,
        topics=provisioned.topics,
    )


# --- access points and devices -----------------------------------------------------------------


@router.post("/access-points", response_model=AccessPointRead, status_code=201)
async def create_access_point(
    actor: DeviceManager, session: DbSession, body: AccessPointCreate
) -> AccessPointRead:
    point = await service.create_access_point(session, actor, **body.model_dump())
    return AccessPointRead.model_validate(point)


@router.get("/access-points", response_model=Page[AccessPointRead])
async def list_access_points(
    actor: Reader, session: DbSession, page: Paging, community_id: uuid.UUID | None = None
) -> Page[AccessPointRead]:
    rows, cursor = await service.list_access_points(
        session, actor, community_id=community_id, page=page
    )
    return Page[AccessPointRead].of(rows, cursor)


@router.get("/access-points/{access_point_id}", response_model=AccessPointRead)
async def get_access_point(
    actor: Reader, session: DbSession, access_point_id: uuid.UUID
) -> AccessPointRead:
    point = await service.get_access_point(session, actor, access_point_id=access_point_id)
    return AccessPointRead.model_validate(point)


@router.post(
    "/access-points/{access_point_id}/open",
    response_model=OpenResultRead,
    summary="Open from the console (guard booth); 504 device_timeout when the device is silent",
)
async def staff_open(
    actor: Operator, session: DbSession, access_point_id: uuid.UUID
) -> OpenResultRead:
    result = await service.staff_open(session, actor, access_point_id=access_point_id)
    return OpenResultRead.model_validate(result, from_attributes=True)


@router.post(
    "/devices",
    response_model=DeviceCredentials,
    status_code=201,
    summary="Provision a device: its MQTT secret and private key are shown this once",
)
async def provision_device(
    actor: DeviceManager, session: DbSession, body: DeviceCreate
) -> DeviceCredentials:
    return _credentials(await service.provision_device(session, actor, **body.model_dump()))


@router.get("/devices", response_model=Page[DeviceRead])
async def list_devices(
    actor: Reader,
    session: DbSession,
    page: Paging,
    community_id: uuid.UUID | None = None,
    online: bool | None = None,
) -> Page[DeviceRead]:
    rows, cursor = await service.list_devices(
        session, actor, community_id=community_id, online=online, page=page
    )
    return Page[DeviceRead].of(rows, cursor)


@router.get("/devices/{device_id}", response_model=DeviceRead)
async def get_device(actor: Reader, session: DbSession, device_id: uuid.UUID) -> DeviceRead:
    return DeviceRead.model_validate(await service.get_device(session, actor, device_id=device_id))


@router.post("/devices/{device_id}/disable", response_model=DeviceRead)
async def disable_device(
    actor: DeviceManager, session: DbSession, device_id: uuid.UUID
) -> DeviceRead:
    device = await service.set_device_enabled(session, actor, device_id=device_id, enabled=False)
    return DeviceRead.model_validate(device)


@router.post("/devices/{device_id}/enable", response_model=DeviceRead)
async def enable_device(
    actor: DeviceManager, session: DbSession, device_id: uuid.UUID
) -> DeviceRead:
    device = await service.set_device_enabled(session, actor, device_id=device_id, enabled=True)
    return DeviceRead.model_validate(device)


@router.post("/devices/{device_id}/credentials", response_model=DeviceCredentials)
async def rotate_credentials(
    actor: DeviceManager, session: DbSession, device_id: uuid.UUID
) -> DeviceCredentials:
    return _credentials(
        await service.rotate_device_credentials(session, actor, device_id=device_id)
    )


# --- events, passes, parking -------------------------------------------------------------------


@router.get("/events", response_model=Page[EventRead], summary="Access events, newest first")
async def search_events(
    actor: Reader,
    session: DbSession,
    page: Paging,
    community_id: uuid.UUID | None = None,
    access_point_id: uuid.UUID | None = None,
    resident_id: uuid.UUID | None = None,
    pass_id: uuid.UUID | None = None,
    kind: Annotated[str | None, Query(max_length=24)] = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    person: Annotated[
        str | None, Query(max_length=64, description="name prefix, phone or resident id")
    ] = None,
) -> Page[EventRead]:
    filters = service.EventFilter(
        community_id, access_point_id, resident_id, pass_id, kind, since, until, person
    )
    rows, cursor = await service.search_events(session, actor, filters=filters, page=page)
    return Page[EventRead].of(rows, cursor)


@router.get("/passes", response_model=Page[PassRead])
async def list_passes(
    actor: Reader,
    session: DbSession,
    page: Paging,
    community_id: uuid.UUID | None = None,
    kind: PassKind | None = None,
    current: bool = False,
) -> Page[PassRead]:
    rows, cursor = await service.list_passes(
        session, actor, community_id=community_id, kind=kind, current_only=current, page=page
    )
    return Page[PassRead].of(rows, cursor)


@router.get("/passes/{pass_id}", response_model=PassRead)
async def get_pass(actor: Reader, session: DbSession, pass_id: uuid.UUID) -> PassRead:
    return PassRead.model_validate(await service.get_pass(session, actor, pass_id=pass_id))


@router.post("/passes/{pass_id}/revoke", response_model=PassRead)
async def revoke_pass(actor: VisitorDesk, session: DbSession, pass_id: uuid.UUID) -> PassRead:
    return PassRead.model_validate(await service.revoke_pass(session, actor, pass_id=pass_id))


@router.post("/visitors", response_model=IssuedPass, status_code=201, summary="Walk-in visitor")
async def register_walk_in(
    actor: VisitorDesk, session: DbSession, body: WalkInCreate, idempotency: IdempotencyDep
) -> IssuedPass:
    async def create() -> IssuedPass:
        row, link = await service.register_walk_in(session, actor, **body.model_dump())
        return _issued(row, link)

    result: IssuedPass = await idempotency.run(session, actor, create, status_code=201)
    return result


@router.post("/courier-passes", response_model=IssuedPass, status_code=201)
async def issue_courier_pass(
    actor: VisitorDesk, session: DbSession, body: CourierPassCreate, idempotency: IdempotencyDep
) -> IssuedPass:
    async def create() -> IssuedPass:
        row, link = await service.issue_courier_pass(session, actor, **body.model_dump())
        return _issued(row, link)

    result: IssuedPass = await idempotency.run(session, actor, create, status_code=201)
    return result


@router.put("/communities/{community_id}/parking-tariff", response_model=TariffRead)
async def set_tariff(
    actor: DeviceManager, session: DbSession, community_id: uuid.UUID, body: TariffWrite
) -> TariffRead:
    row = await service.set_tariff(session, actor, community_id=community_id, **body.model_dump())
    return TariffRead.model_validate(row)


@router.get("/vehicle-entries", response_model=Page[VehicleEntryRead])
async def list_vehicle_entries(
    actor: Reader,
    session: DbSession,
    page: Paging,
    community_id: uuid.UUID | None = None,
    inside: bool = False,
) -> Page[VehicleEntryRead]:
    rows, cursor = await service.list_vehicle_entries(
        session, actor, community_id=community_id, inside_only=inside, page=page
    )
    return Page[VehicleEntryRead].of(rows, cursor)


# --- residents ---------------------------------------------------------------------------------


@router.get("/me/doors", response_model=list[MyCommunityRead], summary="Doors I may open")
async def my_doors(actor: Resident, session: DbSession) -> list[MyCommunityRead]:
    found = await service.my_communities(session, actor)
    return [
        MyCommunityRead(
            company_id=c.company_id,
            company_name=c.company_name,
            community_id=c.community_id,
            community_name=c.community_name,
            pass_id=c.pass_id,
            doors=[DoorRead.model_validate(d) for d in c.doors],
        )
        for c in found
    ]


@router.post(
    "/me/open",
    response_model=OpenResultRead,
    summary="Open a door remotely; 504 device_timeout when the door does not answer",
)
async def open_door(actor: Resident, body: OpenRequest) -> OpenResultRead:
    result = await service.remote_open(actor, **body.model_dump())
    return OpenResultRead.model_validate(result, from_attributes=True)


@router.post("/me/qr", response_model=QrRead, summary="A QR code valid for one minute")
async def my_qr(actor: Resident, session: DbSession, body: MyPassRef) -> QrRead:
    token, expires = await service.rotating_qr(session, actor, **body.model_dump())
    return QrRead(token=token, expires_at=expires)


@router.post("/me/visitors", response_model=IssuedPass, status_code=201)
async def invite_visitor(
    actor: Resident, session: DbSession, body: VisitorInvite, idempotency: IdempotencyDep
) -> IssuedPass:
    async def create() -> IssuedPass:
        row, link = await service.invite_visitor(session, actor, **body.model_dump())
        return _issued(row, link)

    result: IssuedPass = await idempotency.run(session, actor, create, status_code=201)
    return result


@router.get("/me/visitors", response_model=list[PassRead])
async def my_visitors(
    actor: Resident, session: DbSession, company_id: uuid.UUID, pass_id: uuid.UUID
) -> list[PassRead]:
    rows = await service.my_visitor_passes(session, actor, company_id=company_id, pass_id=pass_id)
    return [PassRead.model_validate(r) for r in rows]


@router.post("/me/visitors/{visitor_pass_id}/revoke", response_model=PassRead)
async def revoke_my_visitor(
    actor: Resident, session: DbSession, visitor_pass_id: uuid.UUID, body: MyPassRef
) -> PassRead:
    row = await service.revoke_my_visitor(
        session, actor, visitor_pass_id=visitor_pass_id, **body.model_dump()
    )
    return PassRead.model_validate(row)


@router.get("/me/history", response_model=list[EventRead], summary="My own access history")
async def my_history(
    actor: Resident, session: DbSession, company_id: uuid.UUID, pass_id: uuid.UUID
) -> list[EventRead]:
    rows = await service.my_history(session, actor, company_id=company_id, pass_id=pass_id)
    return [EventRead.model_validate(r) for r in rows]


# --- the visitor's link ------------------------------------------------------------------------


@router.get(
    "/pass-links/{link}",
    response_model=PublicPassRead,
    summary="A pass by the link given to its holder (no sign-in: the link is the secret)",
)
async def pass_by_link(
    _: Anyone, session: DbSession, link: Annotated[str, Path(max_length=100)]
) -> PublicPassRead:
    return PublicPassRead.model_validate(await service.public_pass(session, link=link))
