"""Routes of tenants (operators) and communities (staff). Thin: parse, call service, shape."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from linli.auth.actor import Actor, PrincipalKind
from linli.auth.deps import Authorizer, DbSession, DeclaredRoute
from linli.auth.permissions import Permission
from linli.core.idempotency import IdempotencyDep
from linli.core.pagination import Page, PageParams, json_page, page_params
from linli.tenancy import service
from linli.tenancy.schemas import CommunityCreate, CommunityRead, TenantCreate, TenantRead

router = APIRouter(prefix="/api/v1", route_class=DeclaredRoute, tags=["tenancy"])

CommunityReader = Annotated[Actor, Depends(Authorizer(Permission.COMMUNITIES_READ))]
CommunityWriter = Annotated[Actor, Depends(Authorizer(Permission.COMMUNITIES_WRITE))]
TenantManager = Annotated[
    Actor, Depends(Authorizer(Permission.OPERATOR_TENANTS, kinds=(PrincipalKind.OPERATOR,)))
]
Paging = Annotated[PageParams, Depends(page_params)]


@router.get("/communities", response_model=Page[CommunityRead], summary="Communities I may see")
async def list_communities(actor: CommunityReader, page: Paging) -> Response:
    rows, cursor = await service.list_communities(actor, page=page)
    return json_page(rows, cursor)


@router.get("/communities/{community_id}", response_model=CommunityRead)
async def get_community(
    actor: CommunityReader, session: DbSession, community_id: uuid.UUID
) -> CommunityRead:
    return CommunityRead.model_validate(
        await service.get_community(session, actor, community_id=community_id)
    )


@router.post("/communities", response_model=CommunityRead, status_code=201)
async def create_community(
    actor: CommunityWriter, session: DbSession, body: CommunityCreate, idempotency: IdempotencyDep
) -> CommunityRead:
    async def create() -> CommunityRead:
        community = await service.create_community(session, actor, **body.model_dump())
        return CommunityRead.model_validate(community)

    result: CommunityRead = await idempotency.run(session, actor, create, status_code=201)
    return result


@router.get(
    "/operator/tenants",
    response_model=Page[TenantRead],
    summary="Property companies on this platform",
)
async def list_tenants(actor: TenantManager, session: DbSession, page: Paging) -> Page[TenantRead]:
    rows, cursor = await service.list_tenants(session, actor, page=page)
    return Page[TenantRead].of(rows, cursor)


@router.post("/operator/tenants", response_model=TenantRead, status_code=201)
async def create_tenant(
    actor: TenantManager, session: DbSession, body: TenantCreate, idempotency: IdempotencyDep
) -> TenantRead:
    async def create() -> TenantRead:
        return TenantRead.model_validate(
            await service.create_tenant(session, actor, **body.model_dump())
        )

    result: TenantRead = await idempotency.run(session, actor, create, status_code=201)
    return result
