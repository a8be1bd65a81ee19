"""The demo seeds of work orders and votes: they fill a company once and change nothing after."""

from __future__ import annotations

from linli.auth.actor import Actor
from linli.db.engine import unit_of_work
from linli.votes import seed as vote_seed
from linli.votes import service as votes
from linli.workorders import seed, service
from linli.workorders.models import OrderStatus
from tests.estate.factories import make_houses
from tests.factories import make_company
from tests.workorders.helpers import make_technician


async def test_demo_seeds_are_idempotent() -> None:
    company = await make_company(communities=1)
    await make_houses(company)
    technician = await make_technician(company, rule=False)
    assert await seed.seed_demo(company.id) == 3
    assert await seed.seed_demo(company.id) == 0
    system = Actor.system(company.id)
    async with unit_of_work(company.id) as session:
        categories = await service.list_categories(session, system)
        assert len(categories) == len(seed.CATEGORIES)
        assert (
            await service.get_calendar(session, system, community_id=company.communities[0])
        ).configured
        rules = await service.list_coverage(session, system)
        assert [r.technician_id for r in rules] == [technician]
        orders, _ = await service.list_orders(
            session, system, filters=service.OrderFilter(), page=service.PageParams(limit=10)
        )
        # The routing rule dispatched every sample order to the technician.
        assert {o.status for o in orders} == {OrderStatus.ASSIGNED}
    vote_id = await vote_seed.seed_demo(company.id)
    assert vote_id is not None and await vote_seed.seed_demo(company.id) is None
    async with unit_of_work(company.id) as session:
        vote = await votes.get_vote(session, system, vote_id=vote_id)
        assert vote.status.value == "open" and vote.electorate_houses == 8
