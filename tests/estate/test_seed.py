from __future__ import annotations

from linli.auth.actor import Actor
from linli.core import crypto
from linli.core.pagination import PageParams
from linli.db.engine import unit_of_work
from linli.estate import seed
from linli.estate import service as estate
from linli.residents import service as residents
from linli.residents.validators import normalize_id_card, normalize_plate
from tests.factories import make_company


def test_generated_phones_and_id_numbers_are_valid_and_unique() -> None:
    import datetime as dt

    phones = {seed.phone_number(n) for n in range(50_000)}
    assert len(phones) == 50_000 and all(crypto.normalize_phone(p) == p for p in phones)
    ids = {seed.id_number(n, dt.date(1950, 1, 1)) for n in range(50_000)}
    assert len(ids) == 50_000 and all(normalize_id_card(i) == i for i in ids)


async def test_seed_houses_creates_consistent_searchable_data() -> None:
    company = await make_company(communities=0)
    seen: list[int] = []
    report = await seed.seed_houses(
        tenant_id=company.id, houses=3000, progress=seen.append, batch_houses=1000, seed=7
    )
    assert report.houses == 3000 and seen[-1] == 3000
    assert report.residents >= 3000 * 0.8 and report.relations >= report.residents
    assert report.staff_records > 0
    actor = Actor.system(company.id)
    async with unit_of_work(company.id) as session:
        counts = await estate.community_counts(session, actor)
        assert sum(c.houses for c in counts) == 3000
        tree = await estate.community_tree(session, actor, community_id=counts[0].community_id)
        assert sum(b.houses for b in tree) == counts[0].houses
        vehicles, _ = await residents.list_vehicles(session, actor, page=PageParams(limit=200))
        assert vehicles and all(normalize_plate(v.plate) == v.plate for v in vehicles)
        people, _ = await residents.search_residents(
            session,
            actor,
            search=residents.ResidentSearch(name="王"),
            page=PageParams(limit=5),
        )
        assert people and all(p.name.startswith("王") for p in people)
        phone = crypto.decrypt(people[0].phone_enc) if people[0].phone_enc else None
        if phone:
            found, _ = await residents.search_residents(
                session,
                actor,
                search=residents.ResidentSearch(phone=phone),
                page=PageParams(),
            )
            assert [f.id for f in found] == [people[0].id]
