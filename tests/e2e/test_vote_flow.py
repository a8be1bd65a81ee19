"""Casting a vote in a real browser: an owner votes on the phone, staff close, results show."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from linli.auth.actor import Actor
from linli.db.engine import unit_of_work
from linli.votes import service
from linli.votes.models import VoteKind
from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_repair_flow import PHONE_SCREEN, resident_signs_in, staff_signs_in
from tests.estate.factories import make_resident, random_phone
from tests.factories import make_company
from tests.fakes.sms import FakeSmsGateway
from tests.live import LiveServer
from tests.votes.helpers import houses_with_areas

pytestmark = pytest.mark.e2e


async def test_owner_casts_a_ballot_and_the_result_is_shown(
    browser: Any, live_server: LiveServer, sms_gateway: FakeSmsGateway
) -> None:
    company = await make_company(communities=1)
    houses = await houses_with_areas(company, ["120.00", "80.00", "100.00"])
    phone_number = random_phone()
    await make_resident(company, house_id=houses[0], name="赵业主", phone=phone_number)
    now = dt.datetime.now(dt.UTC)
    async with unit_of_work(company.id) as session:
        system = Actor.system(company.id)
        vote = await service.create_vote(
            session,
            system,
            community_id=company.communities[0],
            kind=VoteKind.OWNERS_ASSEMBLY,
            title="2026年第一次业主大会",
            opens_at=now - dt.timedelta(minutes=5),
            closes_at=now + dt.timedelta(days=7),
            matters=[
                service.MatterIn("续聘物业服务企业", 4),
                service.MatterIn("使用维修资金更换电梯", 5),
            ],
        )
        await service.open_vote(session, system, vote_id=vote.id)
        matters = await service.matters_of(session, vote.id)
        # Another owner voted on paper already (2 of 3 houses will reach the quorum).
        await service.record_paper_ballot(
            session,
            system,
            vote_id=vote.id,
            house_id=houses[2],
            choices={str(m.id): "agree" for m in matters},
        )
    owner = await browser.new_context(locale="zh-CN", **PHONE_SCREEN)
    staff = await browser.new_context(viewport={"width": 1360, "height": 860}, locale="zh-CN")
    portal, console = await owner.new_page(), await staff.new_page()
    try:
        await resident_signs_in(portal, live_server, sms_gateway, phone_number)
        await portal.get_by_role("link", name="投票").click()
        await portal.wait_for_url(f"{live_server.url}/portal/votes")
        ballot = portal.get_by_test_id("vote")
        assert "2026年第一次业主大会" in await ballot.inner_text()
        await ballot.get_by_role("group", name="续聘物业服务企业").get_by_label("同意").check()
        await ballot.get_by_role("group", name="使用维修资金更换电梯").get_by_label("反对").check()
        await portal.screenshot(path=ARTIFACTS / "portal-vote-ballot.png", full_page=True)
        async with portal.expect_navigation():
            await portal.get_by_role("button", name="提交表决票").click()
        assert await portal.get_by_test_id("voted").count() == 1

        await staff_signs_in(console, live_server, company.slug, "admin")
        await console.goto(f"{live_server.url}/console/votes/{vote.id}")
        figures = await console.get_by_test_id("vote-figures").inner_text()
        assert "2 / 3" in figures
        assert "审计链完整" in await console.get_by_test_id("chain").inner_text()
        async with console.expect_navigation():
            await console.get_by_role("button", name="结束并计票").click()
        assert await console.get_by_test_id("vote-status").inner_text() == "已结束"
        verdicts = console.get_by_test_id("matter-verdict")
        # Matter 1: both agree -> passes. Matter 2: 1 agree of 2 owners is a tie -> fails.
        assert [await verdicts.nth(i).inner_text() for i in range(2)] == ["通过", "未通过"]
        await console.screenshot(path=ARTIFACTS / "console-vote-results.png", full_page=True)

        await portal.reload()
        async with portal.expect_navigation():
            await portal.get_by_role("link", name="查看结果").click()
        assert "已达到" in await portal.get_by_test_id("quorum").inner_text()
        assert await portal.get_by_test_id("matter-verdict").nth(0).inner_text() == "通过"
        await portal.screenshot(path=ARTIFACTS / "portal-vote-results.png", full_page=True)
    finally:
        await owner.close()
        await staff.close()
