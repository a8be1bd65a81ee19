"""Vote factories: houses with chosen areas, owners with portal accounts, votes."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from linli.auth.actor import Actor
from linli.db.engine import unit_of_work
from linli.estate import service as estate
from linli.estate.rows import HouseRow
from linli.residents.models import Relation
from linli.votes import service
from linli.votes.models import VoteKind
from tests.estate.factories import make_resident, make_resident_account, random_phone
from tests.factories import Company


async def houses_with_areas(
    company: Company, areas: list[str], *, community: int = 0, building: str = "1"
) -> list[uuid.UUID]:
    code = f"C{community + 1:02d}"
    rows = [
        HouseRow(
            community_code=code,
            building_no=building,
            unit_no="1",
            house_no=f"{101 + i}",
            floor=1,
            building_area=Decimal(area),
        )
        for i, area in enumerate(areas)
    ]
    async with unit_of_work(company.id) as session:
        actor = Actor.system(company.id)
        await estate.upsert_houses(session, actor, rows=rows)
        resolved = await estate.resolve_houses(
            session, actor, keys=[(code, r.building_no, r.unit_no, r.house_no) for r in rows]
        )
    return [resolved.ids[(code, r.building_no, r.unit_no, r.house_no)] for r in rows]


async def resident_of(
    company: Company, house_id: uuid.UUID, relation: Relation = Relation.OWNER
) -> tuple[uuid.UUID, dict[str, str]]:
    phone = random_phone()
    await make_resident(company, house_id=house_id, name="业主", phone=phone, relation=relation)
    account, token = await make_resident_account(phone, "业主")
    return account, {"Authorization": f"Bearer {token}"}


def assembly_body(community_id: uuid.UUID, **extra: Any) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    return {
        "community_id": str(community_id),
        "kind": "owners_assembly",
        "title": "2026年业主大会",
        "opens_at": (now - dt.timedelta(minutes=1)).isoformat(),
        "closes_at": (now + dt.timedelta(days=7)).isoformat(),
        "matters": [
            {"title": "续聘物业服务企业", "article_item": 4},
            {"title": "外立面改造", "article_item": 7},
        ],
        **extra,
    }


async def open_vote(company: Company, *, kind: VoteKind = VoteKind.OWNERS_ASSEMBLY) -> uuid.UUID:
    now = dt.datetime.now(dt.UTC)
    async with unit_of_work(company.id) as session:
        actor = Actor.system(company.id)
        vote = await service.create_vote(
            session,
            actor,
            community_id=company.communities[0],
            kind=kind,
            title="表决",
            opens_at=now - dt.timedelta(minutes=1),
            closes_at=now + dt.timedelta(days=1),
            matters=[
                service.MatterIn("续聘物业", 4),
            ],
        )
        await service.open_vote(session, actor, vote_id=vote.id)
        return vote.id
