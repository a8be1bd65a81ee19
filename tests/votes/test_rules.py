"""Article 278 decided with exact fractions: the 2/3, 3/4 and 1/2 boundaries and ties."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from linli.votes.service import decide, percent, quorum


def test_quorum_is_reached_at_exactly_two_thirds_of_both() -> None:
    assert quorum(
        participating_houses=2,
        participating_area=Fraction(200),
        electorate_houses=3,
        electorate_area=Fraction(300),
    )
    # One square centimetre short of 2/3 of the area: not valid.
    assert not quorum(
        participating_houses=2,
        participating_area=Fraction(19999, 100),
        electorate_houses=3,
        electorate_area=Fraction(300),
    )
    # Area enough, headcount one short: not valid (both are needed).
    assert not quorum(
        participating_houses=199,
        participating_area=Fraction(1000),
        electorate_houses=300,
        electorate_area=Fraction(1000),
    )
    assert not quorum(
        participating_houses=0,
        participating_area=Fraction(0),
        electorate_houses=0,
        electorate_area=Fraction(0),
    )


def test_items_6_to_8_pass_at_exactly_three_quarters() -> None:
    for item in (6, 7, 8):
        rule, threshold, passed = decide(
            article_item=item,
            agree_houses=3,
            agree_area=Fraction(300),
            participating_houses=4,
            participating_area=Fraction(400),
            quorum_met=True,
        )
        assert (rule, threshold, passed) == ("special", Fraction(3, 4), True)
        _, _, short = decide(
            article_item=item,
            agree_houses=3,
            agree_area=Fraction(29999, 100),
            participating_houses=4,
            participating_area=Fraction(400),
            quorum_met=True,
        )
        assert short is False


def test_other_items_need_more_than_half_so_a_tie_fails() -> None:
    for item in (1, 2, 3, 4, 5, 9):
        rule, threshold, tie = decide(
            article_item=item,
            agree_houses=2,
            agree_area=Fraction(200),
            participating_houses=4,
            participating_area=Fraction(400),
            quorum_met=True,
        )
        assert (rule, threshold, tie) == ("ordinary", Fraction(1, 2), False)
        _, _, above = decide(
            article_item=item,
            agree_houses=3,
            agree_area=Fraction(20001, 100),
            participating_houses=4,
            participating_area=Fraction(400),
            quorum_met=True,
        )
        assert above is True
        # Half the owners plus one, but only half the area: fails (both are needed).
        _, _, area_tie = decide(
            article_item=item,
            agree_houses=3,
            agree_area=Fraction(200),
            participating_houses=4,
            participating_area=Fraction(400),
            quorum_met=True,
        )
        assert area_tie is False


def test_nothing_passes_without_a_quorum() -> None:
    _, _, passed = decide(
        article_item=4,
        agree_houses=10,
        agree_area=Fraction(1000),
        participating_houses=10,
        participating_area=Fraction(1000),
        quorum_met=False,
    )
    assert passed is False


def test_percent_is_for_people_only() -> None:
    assert percent(Fraction(2, 3)) == "66.67%"
    assert percent(Fraction(3, 4)) == "75.00%"


@given(
    agree=st.integers(0, 500),
    extra=st.integers(0, 500),
    agree_cents=st.integers(0, 10**6),
    extra_cents=st.integers(0, 10**6),
    item=st.integers(1, 9),
)
def test_decision_matches_the_article_for_any_counts(
    agree: int, extra: int, agree_cents: int, extra_cents: int, item: int
) -> None:
    houses, area = agree + extra, Fraction(agree_cents + extra_cents, 100)
    _, _, passed = decide(
        article_item=item,
        agree_houses=agree,
        agree_area=Fraction(agree_cents, 100),
        participating_houses=houses,
        participating_area=area,
        quorum_met=True,
    )
    if houses == 0:
        assert passed is False
        return
    count_share = Fraction(agree, houses)
    area_share = Fraction(agree_cents, agree_cents + extra_cents) if area else Fraction(0)
    if item in (6, 7, 8):
        expected = count_share >= Fraction(3, 4) and area_share >= Fraction(3, 4) and area > 0
    else:
        expected = count_share > Fraction(1, 2) and area_share > Fraction(1, 2)
    assert passed is expected
