"""Votes past their closing time are closed, and their tally frozen, by the minute job."""

from __future__ import annotations

import datetime as dt

from linli.auth.actor import Actor
from linli.db.engine import unit_of_work
from linli.jobs import job_app
from linli.votes import service, tasks
from linli.votes.models import VoteStatus
from tests.factories import make_company
from tests.votes.helpers import houses_with_areas, open_vote


async def test_due_votes_are_closed_with_their_result() -> None:
    assert tasks.CLOSE_TASK in job_app.tasks
    company = await make_company()
    await houses_with_areas(company, ["90.00", "90.00"])
    vote_id = await open_vote(company)
    await tasks.close_due(dt.datetime.now(dt.UTC))  # not yet due: stays open
    async with unit_of_work(company.id) as session:
        vote = await service.get_vote(session, Actor.system(company.id), vote_id=vote_id)
        assert vote.status is VoteStatus.OPEN
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    await tasks.close_due(later)
    async with unit_of_work(company.id) as session:
        vote = await service.get_vote(session, Actor.system(company.id), vote_id=vote_id)
        assert vote.status is VoteStatus.CLOSED
        assert vote.result is not None and vote.result["electorate_houses"] == 2
