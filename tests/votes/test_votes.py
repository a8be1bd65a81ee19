"""Owner votes through the API: roll, ballots, Article 278 results, bad input, the audit chain."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from typing import Any

import psycopg
import pytest
from sqlalchemy import text, update

from linli.auth.actor import Actor
from linli.auth.permissions import Role
from linli.db.engine import unit_of_work
from linli.residents.models import Relation
from linli.votes import service
from linli.votes.models import Vote
from tests.factories import bearer, make_company, staff_token
from tests.votes.helpers import assembly_body, houses_with_areas, resident_of

V = "/api/v1/votes"


async def create_and_open(client, admin, community_id, **extra: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    created = await client.post(V, headers=admin, json=assembly_body(community_id, **extra))
    assert created.status_code == 201, created.text
    vote = created.json()
    opened = await client.post(f"{V}/{vote['id']}/open", headers=admin)
    assert opened.status_code == 200, opened.text
    vote.update(opened.json())
    return vote


def choices(vote: dict[str, Any], *answers: str) -> dict[str, str]:
    return {m["id"]: a for m, a in zip(vote["matters"], answers, strict=True)}


async def paper(client, admin, vote, house, *answers: str) -> Any:  # type: ignore[no-untyped-def]
    return await client.post(
        f"{V}/{vote['id']}/paper-ballots",
        headers=admin,
        json={"house_id": str(house), "choices": choices(vote, *answers)},
    )


async def test_exact_two_thirds_quorum_three_quarters_pass_and_a_tie(client) -> None:
    company = await make_company()
    admin = bearer(staff_token(company))
    houses = await houses_with_areas(company, ["100.00"] * 6)
    vote = await create_and_open(client, admin, company.communities[0])
    assert vote["electorate_houses"] == 6 and vote["electorate_area"] == "600.00"
    _owner, owner_token = await resident_of(company, houses[0])
    cast = await client.post(
        f"{V}/resident/{vote['id']}/ballots",
        headers=owner_token,
        json={
            "company_id": str(company.id),
            "house_id": str(houses[0]),
            "choices": choices(vote, "agree", "agree"),
        },
    )
    assert cast.status_code == 201, cast.text
    assert cast.json()["cast_by"] == "owner" and cast.json()["seq"] == 1
    # Matter 1 (item 4): 2 agree, 2 oppose -> a tie, not more than half.
    # Matter 2 (item 7): 3 agree of 4 -> exactly 3/4, passes.
    for house, answers in (
        (houses[1], ("agree", "agree")),
        (houses[2], ("oppose", "agree")),
        (houses[3], ("oppose", "oppose")),
    ):
        response = await paper(client, admin, vote, house, *answers)
        assert response.status_code == 201, response.text
    results = (await client.get(f"{V}/{vote['id']}/results", headers=admin)).json()
    assert results["participating_houses"] == 4
    assert results["area_share"] == "2/3" and results["count_share"] == "2/3"
    assert results["quorum"] == "2/3" and results["quorum_met"] is True
    ordinary, special = results["matters"]
    assert (ordinary["rule"], ordinary["threshold"], ordinary["article_item"]) == (
        "ordinary",
        "1/2",
        4,
    )
    assert ordinary["agree_area_share"] == "1/2" and ordinary["passed"] is False
    assert (special["rule"], special["threshold"]) == ("special", "3/4")
    assert special["agree_count_share"] == "3/4" and special["passed"] is True
    closed = await client.post(f"{V}/{vote['id']}/close", headers=admin)
    assert closed.json()["status"] == "closed"
    shown = await client.get(
        f"{V}/resident/{vote['id']}/results",
        headers=owner_token,
        params={"company_id": str(company.id)},
    )
    assert shown.status_code == 200 and shown.json()["matters"][1]["passed"] is True


async def test_one_vote_short_of_the_quorum_decides_nothing(client) -> None:
    company = await make_company()
    admin = bearer(staff_token(company))
    houses = await houses_with_areas(company, ["100.00"] * 6)
    vote = await create_and_open(client, admin, company.communities[0])
    for house in houses[:3]:
        assert (await paper(client, admin, vote, house, "agree", "agree")).status_code == 201
    results = (await client.get(f"{V}/{vote['id']}/results", headers=admin)).json()
    assert results["count_share"] == "1/2" and results["quorum_met"] is False
    assert [m["passed"] for m in results["matters"]] == [False, False]


async def test_area_and_headcount_are_both_needed(client) -> None:
    company = await make_company()
    admin = bearer(staff_token(company))
    # 400 m² in all; houses 1-4 take part with 300 m² (>= 2/3) and 4 of 6 owners.
    houses = await houses_with_areas(
        company, ["150.00", "50.00", "50.00", "50.00", "50.00", "50.00"]
    )
    vote = await create_and_open(client, admin, company.communities[0])
    # Item 7: owners 2, 3, 4 agree = 3/4 of owners but only 150/300 of the area: fails.
    for house, answers in (
        (houses[0], ("agree", "oppose")),
        (houses[1], ("agree", "agree")),
        (houses[2], ("oppose", "agree")),
        (houses[3], ("abstain", "agree")),
    ):
        assert (await paper(client, admin, vote, house, *answers)).status_code == 201
    results = (await client.get(f"{V}/{vote['id']}/results", headers=admin)).json()
    assert results["quorum_met"] is True and results["area_share"] == "3/4"
    ordinary, special = results["matters"]
    # Item 4: 2 of 4 owners agree (a tie by headcount) though with 200/300 of the area.
    assert ordinary["agree_count_share"] == "1/2" and ordinary["agree_area_share"] == "2/3"
    assert ordinary["passed"] is False
    assert special["agree_count_share"] == "3/4" and special["agree_area_share"] == "1/2"
    assert special["passed"] is False
    abstain = next(o for o in ordinary["options"] if o["option"] == "abstain")
    assert abstain == {"option": "abstain", "houses": 1, "area": "50"}


async def test_bad_ballots_are_refused(client, owner_dsn) -> None:
    company = await make_company()
    admin = bearer(staff_token(company))
    houses = await houses_with_areas(company, ["90.00"] * 4)
    elsewhere = await houses_with_areas(company, ["80.00"], community=1, building="9")
    vote = await create_and_open(client, admin, company.communities[0])
    _, owner = await resident_of(company, houses[0])
    _, family = await resident_of(company, houses[1], relation=Relation.FAMILY)
    _, far_owner = await resident_of(company, elsewhere[0])
    good = choices(vote, "agree", "abstain")

    def body(house: uuid.UUID, picked: dict[str, str] = good) -> dict[str, Any]:
        return {"company_id": str(company.id), "house_id": str(house), "choices": picked}

    url = f"{V}/resident/{vote['id']}/ballots"
    assert (await client.post(url, headers=owner, json=body(houses[0]))).status_code == 201
    twice = await client.post(url, headers=owner, json=body(houses[0]))
    assert twice.status_code == 409 and twice.json()["code"] == "already_voted"
    not_mine = await client.post(url, headers=owner, json=body(houses[2]))
    assert not_mine.status_code == 404
    not_owner = await client.post(url, headers=family, json=body(houses[1]))
    assert not_owner.status_code == 403 and not_owner.json()["code"] == "not_entitled"
    other_community = await client.post(url, headers=far_owner, json=body(elsewhere[0]))
    assert other_community.status_code == 409
    assert other_community.json()["code"] == "wrong_community"
    incomplete = await client.post(
        url, headers=owner, json=body(houses[0], {vote["matters"][0]["id"]: "agree"})
    )
    assert incomplete.status_code == 422
    # A proxy with a recorded authorisation may vote; the owner then may not.
    _, owner3 = await resident_of(company, houses[3])
    proxy_phone = "13912340000"
    recorded = await client.post(
        f"{V}/{vote['id']}/proxies",
        headers=admin,
        json={
            "house_id": str(houses[3]),
            "proxy_phone": proxy_phone,
            "proxy_name": "代理人",
            "document_ref": "WT-2026-001",
        },
    )
    assert recorded.status_code == 201, recorded.text
    delegated = await client.post(url, headers=owner3, json=body(houses[3]))
    assert delegated.status_code == 403 and delegated.json()["code"] == "vote_delegated"
    # The family member of house 2 has no authorisation for it: still refused.
    assert (await client.post(url, headers=family, json=body(houses[1]))).status_code == 403
    # After closing time: refused.
    async with unit_of_work(company.id) as session:
        await session.execute(
            update(Vote)
            .where(Vote.id == uuid.UUID(vote["id"]))
            .values(closes_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
    late = await paper(client, admin, vote, houses[2], "agree", "agree")
    assert late.status_code == 409 and late.json()["code"] == "vote_closed"
    # A draft is not open yet.
    draft = (await client.post(V, headers=admin, json=assembly_body(company.communities[0]))).json()
    early = await paper(client, admin, draft, houses[2], "agree", "agree")
    assert early.status_code == 409 and early.json()["code"] == "vote_not_open"
    # Matters of an owners' assembly must name their Article 278 item.
    untagged = await client.post(
        V,
        headers=admin,
        json=assembly_body(company.communities[0], matters=[{"title": "无条款"}]),
    )
    assert untagged.status_code == 422


async def test_a_proxy_votes_for_the_house_in_the_portal(client) -> None:
    company = await make_company()
    admin = bearer(staff_token(company))
    houses = await houses_with_areas(company, ["90.00"] * 3)
    vote = await create_and_open(client, admin, company.communities[0])
    # The proxy lives in house 1 (so the company knows them) and holds house 2's authorisation.
    proxy_account, proxy = await resident_of(company, houses[0], relation=Relation.TENANT)

    mine = (await client.get(f"{V}/resident/mine", headers=proxy)).json()
    assert mine == []  # a tenant owns nothing here
    async with unit_of_work(company.id) as session:
        from linli.auth.models import ResidentAccount
        from linli.core import crypto

        account = await session.get(ResidentAccount, proxy_account)
        assert account is not None and account.phone_enc is not None
        phone = crypto.decrypt(account.phone_enc)
    recorded = await client.post(
        f"{V}/{vote['id']}/proxies",
        headers=admin,
        json={
            "house_id": str(houses[1]),
            "proxy_phone": phone,
            "proxy_name": "代理人",
            "document_ref": "WT-1",
        },
    )
    assert recorded.json()["proxy_account_id"] == str(proxy_account)
    mine = (await client.get(f"{V}/resident/mine", headers=proxy)).json()
    assert [(h["house_id"], h["as_proxy"]) for h in mine[0]["houses"]] == [(str(houses[1]), True)]
    cast = await client.post(
        f"{V}/resident/{vote['id']}/ballots",
        headers=proxy,
        json={
            "company_id": str(company.id),
            "house_id": str(houses[1]),
            "choices": choices(vote, "agree", "agree"),
        },
    )
    assert cast.status_code == 201 and cast.json()["cast_by"] == "proxy"


async def test_ballots_cannot_change_and_the_chain_proves_it(client, owner_dsn) -> None:
    company = await make_company()
    admin = bearer(staff_token(company))
    houses = await houses_with_areas(company, ["90.00"] * 4)
    vote = await create_and_open(client, admin, company.communities[0])
    for house, answers in zip(
        houses[:3], [("agree", "agree"), ("oppose", "agree"), ("agree", "abstain")], strict=True
    ):
        assert (await paper(client, admin, vote, house, *answers)).status_code == 201
    chain = (await client.get(f"{V}/{vote['id']}/chain", headers=admin)).json()
    assert chain == {"ok": True, "ballots": 3, "first_bad_seq": None, "head_matches": True}
    # The app's own connection may neither change nor delete a ballot.
    for statement in (
        "UPDATE vote_ballots SET choices = '{}'::jsonb WHERE vote_id = :v",
        "DELETE FROM vote_ballots WHERE vote_id = :v",
    ):
        with pytest.raises(Exception, match="append-only"):
            async with unit_of_work(company.id) as session:
                await session.execute(text(statement), {"v": vote["id"]})
    # Someone with the owner's keys disables the trigger and flips ballot 2: the chain shows it.
    with psycopg.connect(owner_dsn, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(
            "UPDATE vote_ballots SET choices = jsonb_set(choices, ARRAY[%s], '\"agree\"') "
            "WHERE vote_id = %s AND seq = 2",
            (vote["matters"][0]["id"], vote["id"]),
        )
    chain = (await client.get(f"{V}/{vote['id']}/chain", headers=admin)).json()
    assert chain["ok"] is False and chain["first_bad_seq"] == 2


async def test_ballot_list_export_and_surveys(client) -> None:
    from openpyxl import load_workbook

    company = await make_company()
    admin = bearer(staff_token(company))
    houses = await houses_with_areas(company, ["90.00", "95.50"])
    vote = await create_and_open(client, admin, company.communities[0])
    await paper(client, admin, vote, houses[1], "agree", "oppose")
    exported = await client.get(f"{V}/{vote['id']}/ballots.xlsx", headers=admin)
    assert exported.status_code == 200
    sheet = load_workbook(io.BytesIO(exported.content)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:5] == ("#", "楼栋", "单元", "房号", "面积(m²)")
    assert rows[1][:4] == (1, "1", "1", "102") and rows[1][7:9] == ("同意", "反对")
    assert len(rows) == 2

    survey = await client.post(
        V,
        headers=admin,
        json=assembly_body(
            company.communities[0],
            kind="survey",
            title="满意度调查",
            matters=[{"title": "对保洁是否满意", "options": ["满意", "一般", "不满意"]}],
        ),
    )
    assert survey.status_code == 201, survey.text
    sid = survey.json()["id"]
    await client.post(f"{V}/{sid}/open", headers=admin)
    s = survey.json()
    assert (await paper(client, admin, s, houses[0], "一般")).status_code == 201
    wrong = await paper(client, admin, s, houses[1], "agree")
    assert wrong.status_code == 422
    result = (await client.get(f"{V}/{sid}/results", headers=admin)).json()
    assert result["quorum_met"] is None and result["matters"][0]["passed"] is None
    assert result["matters"][0]["rule"] == "survey"
    counts = {o["option"]: o["houses"] for o in result["matters"][0]["options"]}
    assert counts == {"满意": 0, "一般": 1, "不满意": 0}


async def test_votes_are_managed_only_where_granted(client) -> None:
    company = await make_company()
    other = await make_company()
    admin = bearer(staff_token(company))
    await houses_with_areas(company, ["90.00"])
    vote = await create_and_open(client, admin, company.communities[0])
    front_desk = bearer(staff_token(company, roles=[Role.FRONT_DESK]))
    assert (await client.get(f"{V}/{vote['id']}", headers=front_desk)).status_code == 403
    manager_elsewhere = bearer(
        staff_token(
            company,
            roles=[Role.COMMUNITY_MANAGER],
            all_communities=False,
            community_ids=[company.communities[1]],
        )
    )
    assert (await client.get(f"{V}/{vote['id']}", headers=manager_elsewhere)).status_code == 404
    assert (
        await client.get(f"{V}/{vote['id']}", headers=bearer(staff_token(other)))
    ).status_code == 404
    async with unit_of_work(company.id) as session:
        check = await service.verify_chain(
            session, Actor.system(company.id), vote_id=uuid.UUID(vote["id"])
        )
        assert check.ok and check.ballots == 0


async def test_concurrent_ballots_keep_one_chain_and_one_ballot_per_house() -> None:
    import asyncio

    from linli.core.errors import Conflict
    from tests.votes.helpers import open_vote

    company = await make_company()
    houses = await houses_with_areas(company, ["90.00"] * 8)
    vote_id = await open_vote(company)
    system = Actor.system(company.id)
    async with unit_of_work(company.id) as session:
        matter = str((await service.matters_of(session, vote_id))[0].id)

    async def cast(house: uuid.UUID) -> str:
        try:
            async with unit_of_work(company.id) as session:
                await service.record_paper_ballot(
                    session, system, vote_id=vote_id, house_id=house, choices={matter: "agree"}
                )
        except Conflict as exc:
            return exc.instance_code
        return "ok"

    # Every house twice, all at once: each house gets exactly one ballot.
    outcomes = await asyncio.gather(*(cast(h) for h in houses + houses))
    assert sorted(outcomes).count("ok") == 8
    assert sorted(outcomes).count("already_voted") == 8
    async with unit_of_work(company.id) as session:
        check = await service.verify_chain(session, system, vote_id=vote_id)
    assert check.ok and check.ballots == 8
