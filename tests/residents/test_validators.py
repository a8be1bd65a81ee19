from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from linli.residents.validators import (
    PROVINCES,
    id_card_birth_date,
    id_card_check_char,
    id_card_gender,
    normalize_id_card,
    normalize_plate,
)

PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
DIGITS = "0123456789"


@st.composite
def id_numbers(draw: st.DrawFn) -> str:
    region = draw(st.sampled_from(["110101", "310104", "440305", "510107", "330106"]))
    born = draw(st.dates(min_value=dt.date(1920, 1, 1), max_value=dt.date(2020, 12, 31)))
    seq = draw(st.integers(0, 999))
    first17 = f"{region}{born:%Y%m%d}{seq:03d}"
    return first17 + id_card_check_char(first17)


@given(id_numbers())
def test_valid_id_numbers_pass_and_reveal_birth_and_gender(number: str) -> None:
    assert normalize_id_card(number) == number
    assert normalize_id_card(number.lower()) == number
    assert id_card_birth_date(number).strftime("%Y%m%d") == number[6:14]
    assert id_card_gender(number) in {"male", "female"}


@given(id_numbers(), st.integers(0, 16), st.integers(1, 9))
def test_any_single_digit_change_breaks_the_checksum(
    number: str, position: int, delta: int
) -> None:
    digit = (int(number[position]) + delta) % 10
    changed = number[:position] + str(digit) + number[position + 1 :]
    assert normalize_id_card(changed) is None


def test_id_card_edge_cases() -> None:
    assert normalize_id_card("11010519491231002X") == "11010519491231002X"
    assert (
        normalize_id_card("１１０１０５１９４９１２３１００２ｘ") == "11010519491231002X"
    )  # full-width
    assert normalize_id_card("110105194912310021") is None  # wrong check
    assert normalize_id_card("110105194902300028") is None  # 30 February
    assert normalize_id_card("000105194912310021") is None  # no such province
    assert normalize_id_card("11010519491231002") is None  # 17 characters


@st.composite
def standard_plates(draw: st.DrawFn) -> str:
    province = draw(st.sampled_from(PROVINCES))
    city = draw(st.sampled_from(PLATE_LETTERS))
    tail = draw(st.text(PLATE_LETTERS + DIGITS, min_size=5, max_size=5))
    return province + city + tail


@st.composite
def new_energy_plates(draw: st.DrawFn) -> str:
    province = draw(st.sampled_from(PROVINCES))
    city = draw(st.sampled_from(PLATE_LETTERS))
    if draw(st.booleans()):  # small car: energy letter first
        energy = draw(st.sampled_from("ABCDEFGHJK"))
        return (
            province
            + city
            + energy
            + draw(st.sampled_from(PLATE_LETTERS + DIGITS))
            + draw(st.text(DIGITS, min_size=4, max_size=4))
        )
    return (
        province
        + city
        + draw(st.text(DIGITS, min_size=5, max_size=5))
        + draw(st.sampled_from("DF"))
    )


def _messy(plate: str) -> str:
    full_width = "".join(chr(ord(c) + 0xFEE0) if c.isascii() else c for c in plate)
    return f" {full_width[:2]}·{full_width[2:].lower()} "


@given(standard_plates())
def test_standard_plates_normalize_from_messy_input(plate: str) -> None:
    assert normalize_plate(plate) == plate
    assert normalize_plate(_messy(plate)) == plate


@given(new_energy_plates())
def test_new_energy_plates_are_eight_characters(plate: str) -> None:
    assert normalize_plate(plate) == plate
    assert normalize_plate(_messy(plate)) == plate
    assert len(plate) == 8


@given(standard_plates(), st.sampled_from("IO"))
def test_letters_i_and_o_are_never_on_plates(plate: str, letter: str) -> None:
    assert normalize_plate(plate[:2] + letter + plate[3:]) is None


def test_plate_edge_cases() -> None:
    assert normalize_plate("粤B·D12345") == "粤BD12345"
    assert normalize_plate("京a 12345") == "京A12345"
    assert normalize_plate("苏E1234学") == "苏E1234学"
    assert normalize_plate("京A1234") is None  # too short
    assert normalize_plate("AA12345") is None  # no province
    assert normalize_plate("京AD1234X") is None  # new-energy tail must be digits
    assert normalize_plate("京A12345X") is None  # large new-energy ends in D or F
