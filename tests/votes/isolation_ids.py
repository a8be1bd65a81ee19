"""Id makers of the votes domain for the cross-company sweep."""

from __future__ import annotations

import uuid

from tests.estate.factories import make_houses
from tests.isolation import IsolationContext, id_maker
from tests.votes.helpers import open_vote


@id_maker("vote_id")
async def a_vote(ctx: IsolationContext) -> uuid.UUID:
    if "house_id" not in ctx.made:
        ctx.made["house_id"] = (
            await make_houses(ctx.company, buildings=1, units=1, floors=1, per_floor=1)
        )[0]
    return await open_vote(ctx.company)
