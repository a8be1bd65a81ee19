"""Factories: make companies, communities and staff through the services, then commit.

Every test makes its own company, so tests never see each other's data and can
run in parallel against one database.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from linli.auth.actor import Actor
from linli.auth.permissions import Role
from linli.auth.tokens import issue_access_token
from linli.db.engine import unit_of_work
from linli.tenancy import service as tenancy_service

PASSWORD = "correct-horse-battery"


@dataclass
class Company:
    id: uuid.UUID
    slug: str
    admin_id: uuid.UUID
    communities: list[uuid.UUID] = field(default_factory=list)


async def make_company(*, communities: int = 2, slug: str | None = None) -> Company:
    from sqlalchemy import select

    from linli.auth.models import StaffUser

    slug = slug or f"co-{secrets.token_hex(5)}"
    operator = Actor.system()
    async with unit_of_work() as session:
        tenant = await tenancy_service.create_tenant(
            session,
            operator,
            slug=slug,
            name=f"物业公司 {slug}",
            admin_username="admin",
            admin_display_name="管理员",
            admin_password=PASSWORD,
        )
        admin_id = (
            await session.scalars(select(StaffUser.id).where(StaffUser.tenant_id == tenant.id))
        ).one()
        system = Actor.system(tenant.id)
        ids = []
        for n in range(communities):
            community = await tenancy_service.create_community(
                session, system, code=f"C{n + 1:02d}", name=f"小区{n + 1}号"
            )
            ids.append(community.id)
    return Company(id=tenant.id, slug=slug, admin_id=admin_id, communities=ids)


async def make_staff(
    company: Company,
    *,
    roles: Sequence[Role] = (Role.FRONT_DESK,),
    community_ids: Sequence[uuid.UUID] = (),
    all_communities: bool = False,
    username: str | None = None,
    phone: str | None = None,
) -> uuid.UUID:
    from linli.auth import service as auth_service

    async with unit_of_work(company.id) as session:
        staff = await auth_service.create_staff(
            session,
            Actor.system(company.id),
            username=username or f"u{secrets.token_hex(4)}",
            display_name="员工",
            password=PASSWORD,
            roles=list(roles),
            phone=phone,
            all_communities=all_communities,
            community_ids=list(community_ids),
        )
        return staff.id


def staff_token(
    company: Company,
    staff_id: uuid.UUID | None = None,
    *,
    roles: Sequence[Role] = (Role.COMPANY_ADMIN,),
    all_communities: bool = True,
    community_ids: Sequence[uuid.UUID] = (),
) -> str:
    """A signed access token as the sign-in endpoint would issue it."""
    actor = Actor.staff(
        id=staff_id or company.admin_id,
        tenant_id=company.id,
        roles=frozenset(r.value for r in roles),
        all_communities=all_communities,
        community_ids=frozenset(community_ids),
    )
    return issue_access_token(actor)[0]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
