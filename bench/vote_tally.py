"""Benchmark ``vote-tally``: tally an owners' vote of ``--size`` houses (Civil Code Art. 278).

Seeds a fresh company whose one community holds ``--size`` houses with owners (the
estate seeder's generator, asked for a single community), opens a vote with three
matters (items 4, 6 and 9) — which freezes the electorate with one
``INSERT ... SELECT`` — and loads ``--turnout`` of the houses' ballots in one
set-based insert, hash-chained exactly as cast ballots are. Then it times
:func:`linli.votes.service.tally` through a real unit of work (tenant set, RLS on),
``--repeat`` times.

``limit_rate``: houses per second of the bare scan the tally cannot avoid
(``count(*), sum(area)`` of the vote's ballots), in the same run.
``checks``: the SQL tally against a tally computed in Python from the generated
ballots (mismatches: 0), and the hash chain verified end to end.

    python bench/vote_tally.py [--size 100000] [--turnout 0.8] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import secrets
import statistics
import sys
import time
import uuid
from collections import Counter
from decimal import Decimal
from fractions import Fraction
from typing import Any

TARGET_SECONDS = 1.0


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def seed_company(size: int) -> uuid.UUID:
    from linli.auth.actor import Actor
    from linli.db.engine import unit_of_work
    from linli.estate import seed
    from linli.tenancy import service as tenancy

    async with unit_of_work() as session:
        tenant = await tenancy.create_tenant(
            session,
            Actor.system(),
            slug=f"bench-vote-{secrets.token_hex(4)}",
            name="基准测试物业 (vote-tally)",
            admin_username="admin",
            admin_display_name="管理员",
            admin_password=secrets.token_urlsafe(16),
        )
        tenant_id = tenant.id
    # One community of ``size`` houses: a vote is per community, and the seeder's
    # own plan would split a large estate into communities of at most 8,000.
    original = seed.plan_communities
    seed.plan_communities = lambda houses, rng: [houses]
    try:
        report = await seed.seed_houses(tenant_id=tenant_id, houses=size, seed=278)
    finally:
        seed.plan_communities = original
    _log(
        f"seeded {report.houses:,} houses, {report.residents:,} residents in {report.seconds:.1f} s"
    )
    return tenant_id


async def open_vote(tenant_id: uuid.UUID) -> tuple[uuid.UUID, list[str]]:
    from sqlalchemy import select

    from linli.auth.actor import Actor
    from linli.db.engine import unit_of_work
    from linli.tenancy.models import Community
    from linli.votes import service
    from linli.votes.models import VoteKind

    system = Actor.system(tenant_id)
    now = dt.datetime.now(dt.UTC)
    async with unit_of_work(tenant_id) as session:
        community_id = (await session.scalars(select(Community.id))).one()
        vote = await service.create_vote(
            session,
            system,
            community_id=community_id,
            kind=VoteKind.OWNERS_ASSEMBLY,
            title="基准表决",
            opens_at=now - dt.timedelta(minutes=1),
            closes_at=now + dt.timedelta(days=7),
            matters=[
                service.MatterIn("续聘物业服务企业", 4),
                service.MatterIn("筹集维修资金", 6),
                service.MatterIn("其他重大事项", 9),
            ],
        )
        started = time.perf_counter()
        await service.open_vote(session, system, vote_id=vote.id)
        _log(
            f"opened: electorate of {vote.electorate_houses:,} houses frozen"
            f" in {time.perf_counter() - started:.2f} s"
        )
        matters = [str(m.id) for m in await service.matters_of(session, vote.id)]
    return vote.id, matters


async def cast_ballots(
    tenant_id: uuid.UUID, vote_id: uuid.UUID, matters: list[str], turnout: float
) -> dict[str, Any]:
    """Ballots for a random ``turnout`` share of houses, chained, in one INSERT ... SELECT."""
    from sqlalchemy import select, text

    from linli.core.ids import new_id
    from linli.db.engine import unit_of_work
    from linli.votes import service
    from linli.votes.models import Ballot, CastBy, Vote, VoteElector

    rng = random.Random(278)
    async with unit_of_work(tenant_id) as session:
        electors = (
            await session.execute(
                select(VoteElector.house_id, VoteElector.area).where(VoteElector.vote_id == vote_id)
            )
        ).all()
        voters = [e for e in electors if rng.random() < turnout]
        prev = service.genesis(vote_id)
        now = dt.datetime.now(dt.UTC)
        rows: dict[str, list[Any]] = {
            k: [] for k in ("id", "house", "seq", "area", "choices", "prev", "hash")
        }
        expected: Counter[tuple[str, str]] = Counter()
        expected_area: dict[tuple[str, str], Fraction] = {}
        for seq, (house_id, area) in enumerate(voters, start=1):
            choices = {
                m: rng.choices(["agree", "oppose", "abstain"], weights=[80, 15, 5])[0]
                for m in matters
            }
            ballot = Ballot(
                vote_id=vote_id,
                house_id=house_id,
                seq=seq,
                cast_by=CastBy.PAPER,
                recorded_by=uuid.UUID(int=0),
                area=area,
                choices=dict(sorted(choices.items())),
                cast_at=now,
            )
            digest = service.chain_hash(prev, ballot)
            for key, option in choices.items():
                expected[(key, option)] += 1
                expected_area[(key, option)] = expected_area.get(
                    (key, option), Fraction(0)
                ) + Fraction(Decimal(area))
            rows["id"].append(new_id())
            rows["house"].append(house_id)
            rows["seq"].append(seq)
            rows["area"].append(area)
            rows["choices"].append(json.dumps(ballot.choices, ensure_ascii=False))
            rows["prev"].append(prev)
            rows["hash"].append(digest)
            prev = digest
        started = time.perf_counter()
        await session.execute(
            text(
                "INSERT INTO vote_ballots (tenant_id, id, vote_id, house_id, seq, cast_by,"
                " recorded_by, area, choices, cast_at, prev_hash, hash)"
                " SELECT :tenant, b.id, :vote, b.house, b.seq, 'paper', :recorder, b.area,"
                " b.choices::jsonb, :cast_at, b.prev, b.hash"
                " FROM unnest(CAST(:ids AS uuid[]), CAST(:houses AS uuid[]), CAST(:seqs AS int[]),"
                " CAST(:areas AS numeric[]),"
                " CAST(:choices AS text[]), CAST(:prevs AS bytea[]), CAST(:hashes AS bytea[]))"
                " AS b(id, house, seq, area, choices, prev, hash)"
            ),
            {
                "tenant": tenant_id,
                "vote": vote_id,
                "recorder": uuid.UUID(int=0),
                "cast_at": now,
                "ids": rows["id"],
                "houses": rows["house"],
                "seqs": rows["seq"],
                "areas": rows["area"],
                "choices": rows["choices"],
                "prevs": rows["prev"],
                "hashes": rows["hash"],
            },
        )
        vote = await session.get(Vote, (tenant_id, vote_id))
        assert vote is not None
        vote.ballot_count = len(voters)
        vote.chain_head = prev
        await session.flush()
        _log(f"{len(voters):,} ballots inserted in {time.perf_counter() - started:.2f} s")
    return {
        "ballots": len(voters),
        "houses": len(electors),
        "area": sum((Fraction(Decimal(a)) for _, a in electors), Fraction(0)),
        "voted_area": sum((Fraction(Decimal(a)) for _, a in voters), Fraction(0)),
        "counts": expected,
        "areas": expected_area,
    }


async def measure(
    tenant_id: uuid.UUID, vote_id: uuid.UUID, repeat: int
) -> tuple[list[float], list[float], Any]:
    from sqlalchemy import func, select

    from linli.auth.actor import Actor
    from linli.db.engine import unit_of_work
    from linli.votes import service
    from linli.votes.models import Ballot

    system = Actor.system(tenant_id)
    timings, limits = [], []
    result = None
    for _ in range(repeat):
        async with unit_of_work(tenant_id) as session:
            started = time.perf_counter()
            result = await service.tally(session, system, vote_id=vote_id)
            timings.append(time.perf_counter() - started)
        async with unit_of_work(tenant_id) as session:
            started = time.perf_counter()
            await session.execute(
                select(func.count(), func.sum(Ballot.area)).where(Ballot.vote_id == vote_id)
            )
            limits.append(time.perf_counter() - started)
    return timings, limits, result


async def verify(tenant_id: uuid.UUID, vote_id: uuid.UUID) -> bool:
    from linli.auth.actor import Actor
    from linli.db.engine import unit_of_work
    from linli.votes import service

    async with unit_of_work(tenant_id) as session:
        check = await service.verify_chain(session, Actor.system(tenant_id), vote_id=vote_id)
    return check.ok


async def run(size: int, turnout: float, repeat: int) -> dict[str, Any]:
    from linli.config import get_settings
    from linli.db.dsn import owner_dsn
    from linli.db.engine import dispose_engine
    from linli.db.migrate import upgrade

    settings = get_settings()
    upgrade(owner_dsn(settings), app_password=settings.database_app_password.get_secret_value())
    try:
        tenant_id = await seed_company(size)
        vote_id, matters = await open_vote(tenant_id)
        expected = await cast_ballots(tenant_id, vote_id, matters, turnout)
        timings, limits, result = await measure(tenant_id, vote_id, repeat)
        chain_ok = await verify(tenant_id, vote_id)
    finally:
        await dispose_engine()
    mismatches = 0
    for matter in result.matters:
        for option in matter.options:
            key = (str(matter.matter_id), option.option)
            if option.houses != expected["counts"].get(key, 0):
                mismatches += 1
            if option.area != expected["areas"].get(key, Fraction(0)):
                mismatches += 1
    if result.participating_houses != expected["ballots"]:
        mismatches += 1
    if (
        result.participating_area != expected["voted_area"]
        or result.electorate_area != expected["area"]
    ):
        mismatches += 1
    seconds = statistics.median(timings)
    limit_seconds = statistics.median(limits)
    rate = size / seconds if seconds else 0.0
    limit_rate = size / limit_seconds if limit_seconds else 0.0
    return {
        "name": "vote-tally",
        "size": size,
        "seconds": round(seconds, 4),
        "rate": round(rate, 1),
        "unit": "houses/s",
        "limit_rate": round(limit_rate, 1),
        "ratio": round(rate / limit_rate, 4) if limit_rate else 0.0,
        "checks": {
            "mismatches": mismatches,
            "electorate_houses": result.electorate_houses,
            "ballots": result.participating_houses,
            "chain_ok": chain_ok,
            "quorum_met": result.quorum_met,
            "passed": [m.passed for m in result.matters],
            "under_1s": max(timings) < TARGET_SECONDS,
        },
        "max_seconds": round(max(timings), 4),
        "repeat": repeat,
        "turnout": turnout,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--size", type=int, default=100_000, help="houses in the community")
    parser.add_argument("--turnout", type=float, default=0.8, help="share of houses that vote")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.size, args.turnout, args.repeat))
    print(json.dumps(result, ensure_ascii=False))
    if not args.json:
        print(f"tally of {args.size:,} houses: {result['seconds']} s", file=sys.stderr)


if __name__ == "__main__":
    main()
