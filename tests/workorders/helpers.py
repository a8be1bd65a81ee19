"""Work-order factories: categories, technicians and residents through the services."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass

from linli.auth.actor import Actor
from linli.auth.permissions import Role
from linli.db.engine import unit_of_work
from linli.workorders import service
from linli.workorders.models import OrderKind, Priority
from tests.estate.factories import make_houses, make_resident, make_resident_account, random_phone
from tests.factories import Company, bearer, make_company, make_staff, staff_token


def png_bytes(size: tuple[int, int] = (8, 8), color: str = "red") -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes(size: tuple[int, int] = (16, 16)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, "blue").save(buffer, format="JPEG")
    return buffer.getvalue()


async def make_category(
    company: Company,
    *,
    community: int = 0,
    name: str = "水电维修",
    kind: OrderKind = OrderKind.REPAIR,
    sla: dict[Priority, service.SlaTarget] | None = None,
) -> uuid.UUID:
    async with unit_of_work(company.id) as session:
        category = await service.create_category(
            session,
            Actor.system(company.id),
            community_id=company.communities[community],
            name=name,
            kind=kind,
            sla=sla,
        )
        return category.id


@dataclass
class Desk:
    """A company with houses, a category, a technician with a routing rule, a resident."""

    company: Company
    houses: list[uuid.UUID]
    category_id: uuid.UUID
    technician_id: uuid.UUID
    technician: dict[str, str]
    front_desk_id: uuid.UUID
    front_desk: dict[str, str]
    manager_id: uuid.UUID
    admin: dict[str, str]
    resident_account: uuid.UUID
    resident: dict[str, str]
    resident_phone: str


def technician_token(company: Company, staff_id: uuid.UUID, community: uuid.UUID) -> dict[str, str]:
    return bearer(
        staff_token(
            company,
            staff_id,
            roles=[Role.TECHNICIAN],
            all_communities=False,
            community_ids=[community],
        )
    )


async def make_technician(company: Company, community: int = 0, *, rule: bool = True) -> uuid.UUID:
    community_id = company.communities[community]
    staff_id = await make_staff(company, roles=[Role.TECHNICIAN], community_ids=[community_id])
    if rule:
        async with unit_of_work(company.id) as session:
            await service.add_coverage(
                session, Actor.system(company.id), technician_id=staff_id, community_id=community_id
            )
    return staff_id


async def make_desk(*, routing: bool = True) -> Desk:
    company = await make_company(communities=2)
    houses = await make_houses(company)
    category_id = await make_category(company)
    community = company.communities[0]
    technician_id = await make_technician(company, rule=routing)
    front_desk_id = await make_staff(company, roles=[Role.FRONT_DESK], community_ids=[community])
    manager_id = await make_staff(
        company, roles=[Role.COMMUNITY_MANAGER], community_ids=[community]
    )
    phone = random_phone()
    await make_resident(company, house_id=houses[0], name="王业主", phone=phone)
    account_id, token = await make_resident_account(phone, "王业主")
    return Desk(
        company=company,
        houses=houses,
        category_id=category_id,
        technician_id=technician_id,
        technician=technician_token(company, technician_id, community),
        front_desk_id=front_desk_id,
        front_desk=bearer(
            staff_token(
                company,
                front_desk_id,
                roles=[Role.FRONT_DESK],
                all_communities=False,
                community_ids=[community],
            )
        ),
        manager_id=manager_id,
        admin=bearer(staff_token(company)),
        resident_account=account_id,
        resident=bearer(token),
        resident_phone=phone,
    )


async def login_of(company: Company, staff_id: uuid.UUID) -> str:
    """The username a staff member signs in with."""
    from linli.auth import service as auth_service

    async with unit_of_work(company.id) as session:
        member = await auth_service.get_staff(
            session, Actor.system(company.id), staff_user_id=staff_id
        )
        return member.user.username
