from __future__ import annotations

import datetime as dt
import unicodedata
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linli.imports import normalize as n
from linli.imports.normalize import CellError, HouseAddress

digits = st.text(alphabet="0123456789", min_size=1, max_size=4).filter(lambda s: s[0] != "0")
letters_or_digits = st.one_of(digits, st.sampled_from(["A", "B", "C", "D"]))


def full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


@given(
    building=letters_or_digits,
    unit=st.one_of(st.none(), digits),
    house=digits,
    form=st.integers(0, 5),
    wide=st.booleans(),
    pad=st.booleans(),
)
def test_house_address_forms_agree(
    building: str, unit: str | None, house: str, form: int, wide: bool, pad: bool
) -> None:
    if unit is None:
        written = [
            f"{building}-{house}",
            f"{building}栋{house}",
            f"{building}幢{house}",
            f"{building}号楼{house}室",
            f"{building}#{house}",
            f"{building}座{house}号",
        ][form]
    else:
        written = [
            f"{building}-{unit}-{house}",
            f"{building}栋{unit}单元{house}",
            f"{building}号楼{unit}单元{house}室",
            f"{building}幢{unit}单元{house}",
            f"{building}#{unit}-{house}",
            f"{building}座{unit}单元{house}号",
        ][form]
    if wide:
        written = full_width(written)
    if pad:
        written = f"\u3000 {written} "
    assert n.parse_house_address(written) == HouseAddress(building, unit, house)


@given(st.text(max_size=12))
def test_house_address_never_crashes(text: str) -> None:
    try:
        address = n.parse_house_address(text)
    except CellError as error:
        assert error.code in ("required", "invalid_house_address")
    else:
        assert address.building_no and address.house_no


@pytest.mark.parametrize("text", ["三栋1201", "3-2-1201-5", "abc", "3栋2单元"])
def test_house_address_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(CellError) as caught:
        n.parse_house_address(text)
    assert caught.value.code == "invalid_house_address"


dates = st.dates(min_value=dt.date(1900, 3, 1), max_value=dt.date(2099, 12, 31))


@given(day=dates, form=st.integers(0, 6), wide=st.booleans())
def test_dates_in_every_written_form(day: dt.date, form: int, wide: bool) -> None:
    written: object = [
        f"{day.year}/{day.month}/{day.day}",
        f"{day.year}年{day.month}月{day.day}日",
        day.isoformat(),
        f"{day.year}.{day.month:02d}.{day.day:02d}",
        day.strftime("%Y%m%d"),
        float(n.date_to_excel_serial(day)),  # an Excel date cell without a date format
        dt.datetime(day.year, day.month, day.day, 13, 5),
    ][form]
    if wide and isinstance(written, str):
        written = full_width(written)
    assert n.parse_date(written) == day


@given(dates)
def test_excel_serials_round_trip(day: dt.date) -> None:
    assert n.excel_serial_to_date(n.date_to_excel_serial(day)) == day


def test_excel_1900_leap_year_bug() -> None:
    assert n.excel_serial_to_date(1) == dt.date(1900, 1, 1)
    assert n.excel_serial_to_date(59) == dt.date(1900, 2, 28)
    assert n.excel_serial_to_date(61) == dt.date(1900, 3, 1)
    assert n.excel_serial_to_date(45000) == dt.date(2023, 3, 15)
    with pytest.raises(CellError, match="1900-02-29"):
        n.excel_serial_to_date(60)
    with pytest.raises(CellError):
        n.excel_serial_to_date(0)


@pytest.mark.parametrize("text", ["2023/2/30", "2023年13月1日", "昨天", "2023-1"])
def test_impossible_dates_are_refused(text: str) -> None:
    with pytest.raises(CellError) as caught:
        n.parse_date(text)
    assert caught.value.code == "invalid_date"


def test_full_width_digits_and_spaces_are_normalized() -> None:
    assert n.clean_text("\u3000１２０１\u3000") == "1201"
    assert n.parse_area("８９．５０ ㎡") == Decimal("89.50")
    assert n.parse_area(89.5) == Decimal("89.50")
    assert n.parse_phone("１３８ ００１３ ８０００") == "13800138000"
    assert n.parse_part("３号楼", n.BUILDING_SUFFIXES) == "3"
    assert n.clean_text(1201.0) == "1201"
    assert unicodedata.normalize("NFKC", "Ａ") == "A"


def test_id_cards_and_plates_use_the_residents_rules() -> None:
    assert n.parse_id_card("11010519491231002x") == "11010519491231002X"
    with pytest.raises(CellError) as caught:
        n.parse_id_card("110105194912310021")
    assert caught.value.code == "invalid_id_card"
    assert "1101" not in str(caught.value.params)  # personal data is never echoed
    assert n.parse_plate("粤b·12345") == "粤B12345"
    assert n.parse_plate("粤BD12345") == "粤BD12345"
    with pytest.raises(CellError):
        n.parse_plate("ABC123")


def test_choices_accept_the_words_people_use() -> None:
    assert n.RELATION.parse("租客") == "tenant"
    assert n.HOUSE_STATUS.parse("已入住") == "occupied"
    assert n.GENDER.parse(" 女 ") == "female"
    with pytest.raises(CellError) as caught:
        n.HOUSE_TYPE.parse("城堡")
    assert caught.value.code == "invalid_choice"
