"""Parking spaces typed as ranges, bound to houses, counted per area; facilities by community."""

from __future__ import annotations

import pytest

from linli.auth.actor import Actor
from linli.core.errors import NotFound, ValidationFailed
from linli.core.pagination import PageParams
from linli.db.engine import unit_of_work
from linli.estate import service as estate
from linli.estate.models import ParkingUsage
from tests.estate.factories import make_houses
from tests.factories import make_company


def test_space_numbers_single_range_and_list() -> None:
    assert estate.expand_space_numbers("B1-007") == ["B1-007"]
    spaces = estate.expand_space_numbers("B1-001..B1-120")
    assert len(spaces) == 120 and spaces[0] == "B1-001" and spaces[-1] == "B1-120"
    assert estate.expand_space_numbers("B1-098~101") == ["B1-098", "B1-099", "B1-100", "B1-101"]
    assert estate.expand_space_numbers("Ｂ１－００１ 至 Ｂ１－００３") == [
        "B1-001",
        "B1-002",
        "B1-003",
    ]
    assert estate.expand_space_numbers("A1, A3..A4，A1") == ["A1", "A3", "A4"]
    assert estate.expand_space_numbers("9..11") == ["9", "10", "11"]


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "required"),
        ("B1-010..B1-001", "invalid_range"),
        ("B1-001..B2-003", "range_prefix_mismatch"),
        ("B1-A..B1-C", "invalid_range"),
        ("1..5000", "too_many_spaces"),
        ("B1 车位 1", "invalid_number"),
        ("A1..A2..A3", "invalid_range"),
    ],
)
def test_bad_space_numbers_say_why(raw: str, code: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        estate.expand_space_numbers(raw)
    assert refused.value.instance_code == code
    assert refused.value.errors[0].field == "space_no"


async def test_range_creates_once_binds_and_counts() -> None:
    company = await make_company(communities=2)
    houses = await make_houses(company, buildings=1, units=1, floors=1, per_floor=2)
    other_houses = await make_houses(company, community=1, buildings=1, units=1, floors=1)
    actor = Actor.system(company.id)
    async with unit_of_work(company.id) as session:
        area = await estate.create_parking_area(
            session, actor, community_id=company.communities[0], name="地下车库B1", underground=True
        )
        first = await estate.create_parking_spaces(
            session,
            actor,
            area_id=area.id,
            space_nos=estate.expand_space_numbers("B1-001..B1-120"),
            usage=ParkingUsage.OWNED,
        )
        again = await estate.create_parking_spaces(
            session,
            actor,
            area_id=area.id,
            space_nos=estate.expand_space_numbers("B1-115..B1-125"),
            usage=ParkingUsage.TEMPORARY,
        )
        assert (first.created, first.existing) == (120, 0)
        assert (again.created, again.existing) == (5, 6)

        spaces, _ = await estate.list_parking_spaces(
            session,
            actor,
            community_id=None,
            area_id=area.id,
            page=PageParams(limit=200),
        )
        by_no = {s.space_no: s for s in spaces}
        assert len(by_no) == 125 and by_no["B1-120"].usage is ParkingUsage.OWNED

        bound = await estate.bind_parking_space(
            session, actor, space_id=by_no["B1-001"].id, house_id=houses[1]
        )
        assert bound.house_id == houses[1]
        with pytest.raises(ValidationFailed) as temporary:
            await estate.bind_parking_space(
                session, actor, space_id=by_no["B1-121"].id, house_id=houses[0]
            )
        assert temporary.value.errors[0].code == "temporary_space_bound"
        rented = await estate.bind_parking_space(
            session,
            actor,
            space_id=by_no["B1-121"].id,
            house_id=houses[0],
            usage=ParkingUsage.RENTED,
        )
        assert rented.usage is ParkingUsage.RENTED
        with pytest.raises(ValidationFailed) as elsewhere:
            await estate.bind_parking_space(
                session, actor, space_id=by_no["B1-002"].id, house_id=other_houses[0]
            )
        assert elsewhere.value.errors[0].code == "community_mismatch"

        summary = await estate.parking_summary(session, actor, community_id=company.communities[0])
        assert len(summary) == 1
        assert summary[0].by_usage == {"owned": 120, "rented": 1, "temporary": 4}
        assert summary[0].spaces == 125 and summary[0].bound == 2

        refs = await estate.house_refs(session, actor, house_ids=[houses[0], houses[1]])
        assert refs == {houses[0]: "1-1-101", houses[1]: "1-1-102"}
        mine = await estate.spaces_of_house(session, actor, house_id=houses[1])
        assert [(s.space_no, name) for s, name in mine] == [("B1-001", "地下车库B1")]

        released = await estate.bind_parking_space(
            session, actor, space_id=by_no["B1-001"].id, house_id=None
        )
        assert released.house_id is None


async def test_house_by_ref_and_scoping() -> None:
    company = await make_company(communities=2)
    houses = await make_houses(company, buildings=1, units=2, floors=1, per_floor=1)
    actor = Actor.system(company.id)
    community = company.communities[0]
    async with unit_of_work(company.id) as session:
        found = await estate.house_by_ref(
            session, actor, community_id=community, raw="1栋2单元101", field_name="house"
        )
        assert found == houses[1]
        for raw, code in (
            ("1-101", "ambiguous_house"),
            ("9-9-909", "house_not_found"),
            ("??", "invalid"),
        ):
            with pytest.raises(ValidationFailed) as refused:
                await estate.house_by_ref(
                    session, actor, community_id=community, raw=raw, field_name="house"
                )
            assert refused.value.errors[0].code == code, raw
        area = await estate.create_parking_area(session, actor, community_id=community, name="P1")
        await estate.create_parking_spaces(session, actor, area_id=area.id, space_nos=["1"])

    # A manager of the other community sees neither the area nor its spaces.
    other = Actor.staff(
        id=company.admin_id,
        tenant_id=company.id,
        roles=frozenset({"community_manager"}),
        all_communities=False,
        community_ids=frozenset({company.communities[1]}),
    )
    async with unit_of_work(company.id) as session:
        with pytest.raises(NotFound):
            await estate.get_parking_area(session, other, area_id=area.id)
        with pytest.raises(NotFound):
            await estate.create_parking_spaces(session, other, area_id=area.id, space_nos=["2"])
        assert await estate.house_refs(session, other, house_ids=houses) == {}

    # Another company cannot reach them either (RLS and the scoped statement).
    stranger = await make_company(communities=1)
    async with unit_of_work(stranger.id) as session:
        with pytest.raises(NotFound):
            await estate.get_parking_area(session, Actor.system(stranger.id), area_id=area.id)
