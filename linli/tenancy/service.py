"""Tenants and communities: the only place their rules live."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from sqlalchemy import ARRAY, Integer, Select, Uuid, any_, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from linli.auth.actor import Actor
from linli.auth.permissions import Role
from linli.core import audit, outbox
from linli.core.errors import Conflict, NotFound
from linli.core.pagination import PageParams, make_page, paginate_statement
from linli.core.persistence import flush_or_conflict
from linli.db.engine import set_tenant
from linli.db.reads import ReadQuery, Record, read_rows
from linli.tenancy.models import Community, Tenant, TenantStatus

S = TypeVar("S", bound=Select[Any])


def scoped_to_actor(statement: S, actor: Actor) -> S:
    """Keep the communities this actor may see: RLS fences the company, this the grants."""
    statement = statement.where(Community.archived_at.is_(None))
    if not actor.all_communities:
        statement = statement.where(Community.id.in_(actor.community_ids or [uuid.UUID(int=0)]))
    return statement


def readable_communities(actor: Actor) -> Select[Community]:
    return scoped_to_actor(select(Community), actor)


def _community_list_query(*, all_communities: bool, after: bool) -> ReadQuery:
    """The communities list in one of its four shapes, compiled once (see linli.db.reads)."""
    statement = select(*(Community.__table__.c[name] for name in COMMUNITY_LIST_COLUMNS)).where(
        Community.archived_at.is_(None)
    )
    if not all_communities:
        statement = statement.where(Community.id == any_(bindparam("granted", type_=ARRAY(Uuid()))))
    if after:
        statement = statement.where(Community.id > bindparam("after", type_=Uuid()))
    return ReadQuery(statement.order_by(Community.id).limit(bindparam("limit", type_=Integer())))


COMMUNITY_LIST_COLUMNS = ("id", "code", "name", "address", "timezone", "created_at")
_COMMUNITY_LISTS = {
    (all_communities, after): _community_list_query(all_communities=all_communities, after=after)
    for all_communities in (True, False)
    for after in (True, False)
}


async def list_communities(actor: Actor, *, page: PageParams) -> tuple[list[Record], str | None]:
    """A page of the communities this actor may see, as records (the console's hottest read).

    Every console page shows the community switcher, so this runs on the read
    path (one round trip, no ORM); RLS fences the company, the grants fence the rest.
    """
    after = page.after_id()
    query = _COMMUNITY_LISTS[(actor.all_communities, after is not None)]
    values: dict[str, Any] = {"limit": page.limit + 1}
    if not actor.all_communities:
        values["granted"] = list(actor.community_ids)
    if after is not None:
        values["after"] = after
    rows = await read_rows(actor.tenant_id, query, values)
    return make_page(rows, page)


async def get_community(
    session: AsyncSession, actor: Actor, *, community_id: uuid.UUID
) -> Community:
    community = await session.scalar(
        readable_communities(actor).where(Community.id == community_id)
    )
    if community is None:
        raise NotFound("Community not found.", code="community_not_found")
    return community


async def create_community(
    session: AsyncSession,
    actor: Actor,
    *,
    code: str,
    name: str,
    address: str = "",
    timezone: str = "Asia/Shanghai",
) -> Community:
    assert actor.tenant_id is not None
    community = Community(
        tenant_id=actor.tenant_id, code=code, name=name, address=address, timezone=timezone
    )
    session.add(community)
    await flush_or_conflict(
        session, Conflict("A community with this code already exists.", code="community_code_taken")
    )
    await audit.record(
        session, actor, "community.create", target_type="community", target_id=community.id
    )
    await outbox.emit(
        session,
        actor,
        "community.created",
        {"community_id": str(community.id), "code": code, "name": name},
    )
    return community


async def get_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> Tenant | None:
    """The company by id (its name heads the console of its staff)."""
    return await session.get(Tenant, tenant_id)


async def get_tenant_by_slug(session: AsyncSession, slug: str) -> Tenant | None:
    return await session.scalar(select(Tenant).where(Tenant.slug == slug.strip().lower()))


async def list_tenants(
    session: AsyncSession, actor: Actor, *, page: PageParams
) -> tuple[list[Tenant], str | None]:
    rows = (await session.scalars(paginate_statement(select(Tenant), Tenant.id, page))).all()
    return make_page(list(rows), page)


async def create_tenant(
    session: AsyncSession,
    actor: Actor,
    *,
    slug: str,
    name: str,
    admin_username: str,
    admin_display_name: str,
    admin_password: str,
) -> Tenant:
    """Create a property company and its first company admin, in one transaction."""
    from linli.auth import service as auth_service

    tenant = Tenant(slug=slug, name=name, status=TenantStatus.ACTIVE)
    session.add(tenant)
    await flush_or_conflict(
        session, Conflict("A company with this code already exists.", code="tenant_slug_taken")
    )
    await audit.record(session, actor, "tenant.create", target_type="tenant", target_id=tenant.id)
    await set_tenant(session, tenant.id)
    system = Actor.system(tenant.id)
    await auth_service.create_staff(
        session,
        system,
        username=admin_username,
        display_name=admin_display_name,
        password=admin_password,
        roles=[Role.COMPANY_ADMIN],
        all_communities=True,
    )
    return tenant


def community_dict(community: Community) -> dict[str, Any]:
    return {"id": str(community.id), "code": community.code, "name": community.name}
