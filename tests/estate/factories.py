"""Estate factories: houses, residents and portal accounts through the services, then commit."""

from __future__ import annotations

import random
import uuid
from decimal import Decimal

from linli.auth.actor import Actor, PrincipalKind
from linli.auth.models import ResidentAccount
from linli.auth.tokens import issue_access_token
from linli.core import crypto
from linli.db.engine import unit_of_work
from linli.estate import service as estate
from linli.estate.rows import HouseRow
from linli.residents import service as residents
from linli.residents.models import Relation
from tests.factories import Company


def random_phone() -> str:
    return "139" + "".join(random.choice("0123456789") for _ in range(8))


async def make_houses(
    company: Company,
    *,
    community: int = 0,
    buildings: int = 1,
    units: int = 2,
    floors: int = 2,
    per_floor: int = 2,
) -> list[uuid.UUID]:
    """Houses b-u-FFNN through the bulk upsert; returns their ids in natural order."""
    rows = [
        HouseRow(
            community_code=f"C{community + 1:02d}",
            building_no=str(b),
            unit_no=str(u),
            house_no=f"{f}{n:02d}",
            floor=f,
            building_area=Decimal("89.50"),
            inner_area=Decimal("72.30"),
        )
        for b in range(1, buildings + 1)
        for u in range(1, units + 1)
        for f in range(1, floors + 1)
        for n in range(1, per_floor + 1)
    ]
    async with unit_of_work(company.id) as session:
        await estate.upsert_houses(session, Actor.system(company.id), rows=rows)
        resolved = await estate.resolve_houses(
            session,
            Actor.system(company.id),
            keys=[(r.community_code, r.building_no, r.unit_no, r.house_no) for r in rows],
        )
    return [resolved.ids[(r.community_code, r.building_no, r.unit_no, r.house_no)] for r in rows]


async def make_resident(
    company: Company,
    *,
    house_id: uuid.UUID | None,
    name: str = "张三",
    phone: str | None = None,
    relation: Relation = Relation.OWNER,
) -> uuid.UUID:
    async with unit_of_work(company.id) as session:
        resident = await residents.create_resident(
            session,
            Actor.system(company.id),
            name=name,
            phone=phone,
            house_id=house_id,
            relation=relation if house_id else None,
        )
        return resident.id


async def make_resident_account(phone: str, name: str = "住户") -> tuple[uuid.UUID, str]:
    """A portal account for ``phone`` and a resident access token for it."""
    async with unit_of_work() as session:
        account = ResidentAccount(
            phone_enc=crypto.encrypt(phone), phone_hash=crypto.blind_index(phone), display_name=name
        )
        session.add(account)
        await session.flush()
        account_id = account.id
    token = issue_access_token(
        Actor(kind=PrincipalKind.RESIDENT, id=account_id, display_name=name)
    )[0]
    return account_id, token
