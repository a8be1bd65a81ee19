"""Turning what people type into spreadsheets into values linli can store.

Each parser takes a raw cell value (``str``, ``float``, ``int``, ``bool``,
``date``/``datetime`` as the readers hand them over) and returns the clean value
or raises :class:`CellError`, whose ``msgid`` is an English message id
translated when the report is shown (the report may be read later, in another
locale, than when it was made).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from linli.core.crypto import normalize_phone
from linli.residents import validators


class CellError(ValueError):
    """A cell that cannot be read as what its column means."""

    def __init__(self, code: str, msgid: str, **params: Any) -> None:
        super().__init__(msgid)
        self.code = code
        self.msgid = msgid
        self.params = params


_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None)
_HAS_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")
_SPACES = re.compile(r"\s+")


def clean_text(value: Any) -> str:
    """NFKC (full-width digits, letters and the ideographic space become ASCII), trimmed.

    Inner runs of whitespace collapse to one space: Excel users align columns with them.
    """
    if value is None:
        return ""
    if type(value) is str and value.isascii():
        # Fast path (most cells): NFKC and the zero-width table cannot change ASCII.
        text = value.strip()
        if "  " in text or "\t" in text or "\n" in text or "\r" in text:
            text = _SPACES.sub(" ", text)
        return text
    if isinstance(value, float) and value.is_integer():
        # A number typed into a text column ("1201") arrives as 1201.0 from Excel.
        value = int(value)
    text = unicodedata.normalize("NFKC", str(value))
    if _HAS_ZERO_WIDTH.search(text):
        text = text.translate(_ZERO_WIDTH)
    text = text.strip()
    if "  " in text or "\t" in text or "\n" in text or "\r" in text:
        text = _SPACES.sub(" ", text)
    return text


def is_blank(value: Any) -> bool:
    if value is None:
        return True
    if type(value) is str:
        return not value or ((not value.strip() or not value.isascii()) and clean_text(value) == "")
    return False


# --- house addresses -----------------------------------------------------------------


@dataclass(frozen=True)
class HouseAddress:
    """Where a house is inside its community: 楼栋 (building), 单元 (unit), 房号 (house)."""

    building_no: str
    unit_no: str | None
    house_no: str


_NUM = r"[0-9A-Za-z]+"
# Written forms seen in property companies' sheets, after NFKC:
#   3-2-1201  3#2-1201  3栋2单元1201  3号楼2单元1201室  3幢1201  3栋1201号  A座2单元301
_HOUSE_PATTERNS = (
    re.compile(rf"^(?P<b>{_NUM})\s*[-_/#]\s*(?P<u>{_NUM})\s*[-_/#]\s*(?P<h>{_NUM})$"),
    re.compile(
        rf"^(?P<b>{_NUM})\s*(?:号楼|号|栋|幢|座|楼|#)\s*(?:(?P<u>{_NUM})\s*(?:单元|门|-)\s*)?"
        rf"(?P<h>{_NUM})\s*(?:室|号|房)?$"
    ),
    re.compile(rf"^(?P<b>{_NUM})\s*[-_/#]\s*(?P<h>{_NUM})$"),
)


def parse_house_address(value: Any) -> HouseAddress:
    """Split ``3-2-1201`` / ``3栋2单元1201`` / ``3号楼2单元1201室`` / ``3幢1201`` into parts."""
    text = clean_text(value).replace(" ", "").upper()
    if not text:
        raise CellError("required", "This value is required.")
    for pattern in _HOUSE_PATTERNS:
        match = pattern.match(text)
        if match:
            unit = match.groupdict().get("u")
            return HouseAddress(
                building_no=match["b"],
                unit_no=unit or None,
                house_no=match["h"],
            )
    raise CellError(
        "invalid_house_address",
        "Cannot read the house address \u201c{value}\u201d; "
        "write it like 3-2-1201 or 3栋2单元1201.",
        value=text[:40],
    )


def parse_part(value: Any, suffixes: tuple[str, ...]) -> str:
    """One part of an address in its own column: ``3号楼`` → ``3``, ``2单元`` → ``2``."""
    text = clean_text(value).replace(" ", "").upper()
    for suffix in suffixes:
        if text.endswith(suffix) and len(text) > len(suffix):
            text = text[: -len(suffix)]
            break
    if not re.fullmatch(_NUM, text):
        raise CellError(
            "invalid_value", "\u201c{value}\u201d is not a valid number here.", value=text[:40]
        )
    return text


BUILDING_SUFFIXES = ("号楼", "栋", "幢", "座", "号", "楼", "#")
UNIT_SUFFIXES = ("单元", "门")
HOUSE_SUFFIXES = ("室", "号", "房")


# --- dates ---------------------------------------------------------------------------

_EXCEL_EPOCH = dt.date(1899, 12, 31)
_MAX_SERIAL = 2958465  # 9999-12-31
_DATE_TEXT = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
_DATE_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")


def excel_serial_to_date(serial: float) -> dt.date:
    """A date stored as a number in Excel's 1900 date system.

    Excel counts 1900-01-01 as day 1 and, copying Lotus 1-2-3, believes 1900 was a
    leap year: day 60 is the non-existent 1900-02-29 and every later serial is one
    day ahead of the calendar.
    """
    day = int(serial)
    if day < 1 or day > _MAX_SERIAL:
        raise CellError("invalid_date", "{value} is not a date.", value=serial)
    if day == 60:
        raise CellError("invalid_date", "1900-02-29 does not exist (an Excel leap-year bug).")
    return _EXCEL_EPOCH + dt.timedelta(days=day if day < 60 else day - 1)


def date_to_excel_serial(day: dt.date) -> int:
    serial = (day - _EXCEL_EPOCH).days
    return serial if serial < 60 else serial + 1


def parse_date(value: Any) -> dt.date:
    """Dates as Excel cells (date, serial number) or text (2023/1/5, 2023年1月5日, 20230105)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, bool):
        raise CellError("invalid_date", "{value} is not a date.", value=str(value))
    if isinstance(value, (int, float)):
        return excel_serial_to_date(float(value))
    text = clean_text(value).replace(" ", "")
    if not text:
        raise CellError("required", "This value is required.")
    match = _DATE_TEXT.match(text) or _DATE_COMPACT.match(text)
    if match is None and "T" in text:
        match = _DATE_TEXT.match(text.split("T", 1)[0])
    if match is None and re.fullmatch(r"\d{1,7}(\.\d+)?", text):
        # A serial number that went through a CSV export.
        return excel_serial_to_date(float(text))
    if match is None:
        raise CellError(
            "invalid_date",
            "Cannot read the date \u201c{value}\u201d; write it like 2023-01-05.",
            value=text[:40],
        )
    try:
        return dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise CellError("invalid_date", "{value} is not a date.", value=text[:40]) from None


# --- numbers -------------------------------------------------------------------------

_AREA_UNITS = ("平方米", "平米", "平方", "m²", "m2", "㎡", "M2", "M²")


def parse_area(value: Any) -> Decimal:
    """An area in m² with two decimals; units and thousands separators are tolerated."""
    if isinstance(value, bool):
        raise CellError("invalid_number", "\u201c{value}\u201d is not a number.", value=str(value))
    if isinstance(value, (int, float)):
        text = repr(value) if isinstance(value, float) else str(value)
    else:
        text = clean_text(value).replace(" ", "").replace(",", "")
        for unit in _AREA_UNITS:
            text = text.removesuffix(unit)
    if not text:
        raise CellError("required", "This value is required.")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise CellError(
            "invalid_number", "\u201c{value}\u201d is not a number.", value=text[:40]
        ) from None
    if not number.is_finite() or number <= 0 or number >= Decimal("1000000"):
        raise CellError("out_of_range", "{value} m² is not a plausible area.", value=text[:40])
    return number.quantize(Decimal("0.01"))


def parse_floor(value: Any) -> int:
    text = clean_text(value).replace(" ", "").removesuffix("层").removesuffix("楼").upper()
    if text.startswith("B"):  # basement floors: B1 = -1
        text = "-" + text[1:]
    try:
        floor = int(text)
    except ValueError:
        raise CellError(
            "invalid_number", "\u201c{value}\u201d is not a number.", value=text[:40]
        ) from None
    if not -10 <= floor <= 200:
        raise CellError("out_of_range", "Floor {value} is out of range.", value=floor)
    return floor


# --- people ----------------------------------------------------------------------------


def parse_phone(value: Any) -> str:
    text = clean_text(value)
    if not text:
        raise CellError("required", "This value is required.")
    phone = normalize_phone(text)
    if phone is None:
        # The number itself is personal data: the message does not repeat it.
        raise CellError("invalid_phone", "Not a valid mainland mobile number.")
    return phone


def parse_id_card(value: Any) -> str:
    """A mainland resident ID number (GB 11643), by the residents domain's rule."""
    text = clean_text(value).replace(" ", "").upper()
    if not text:
        raise CellError("required", "This value is required.")
    normalized = validators.normalize_id_card(text)
    if normalized is None:
        # The number is personal data: the message does not repeat it.
        raise CellError(
            "invalid_id_card", "Not a valid ID-card number (18 characters, check digit)."
        )
    return normalized


def parse_plate(value: Any) -> str:
    """Mainland plate numbers, including the 8-character new-energy plates."""
    text = clean_text(value)
    if not text:
        raise CellError("required", "This value is required.")
    plate = validators.normalize_plate(text)
    if plate is None:
        raise CellError(
            "invalid_plate", "\u201c{value}\u201d is not a valid plate number.", value=text[:12]
        )
    return plate


@dataclass(frozen=True)
class Choice:
    """A closed set of values with the words people write for each."""

    values: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def parse(self, value: Any) -> str:
        text = clean_text(value).replace(" ", "").lower()
        if not text:
            raise CellError("required", "This value is required.")
        for canonical, words in self.values.items():
            if text == canonical or text in words:
                return canonical
        allowed = "/".join(words[0] for words in self.values.values())
        raise CellError(
            "invalid_choice",
            "\u201c{value}\u201d is not one of: {allowed}.",
            value=text[:20],
            allowed=allowed,
        )

    def label(self, canonical: str) -> str:
        words = self.values.get(canonical)
        return words[0] if words else canonical


GENDER = Choice({"male": ("男", "m", "男性"), "female": ("女", "f", "女性")})
RELATION = Choice(
    {
        "owner": ("业主", "产权人", "户主", "房主"),
        "co_owner": ("共有人", "共同业主", "产权共有人"),
        "family": ("家庭成员", "家属", "成员", "亲属", "家人"),
        "tenant": ("租户", "租客", "承租人"),
    }
)
HOUSE_TYPE = Choice(
    {
        "residence": ("住宅", "住房", "公寓"),
        "shop": ("商铺", "底商", "门面", "商业"),
        "office": ("办公", "写字楼", "办公室"),
        "storage": ("储藏室", "储物间", "杂物间", "车库"),
    }
)
HOUSE_STATUS = Choice(
    {
        "unsold": ("未售", "待售"),
        "delivered": ("已交付", "交付", "已交房"),
        "occupied": ("已入住", "入住", "自住"),
        "vacant": ("空置", "空房"),
        "renovating": ("装修中", "装修"),
    }
)
EMPLOYMENT = Choice({"own": ("自有", "正式", "合同工"), "outsourced": ("外包", "劳务派遣", "派遣")})
EDUCATION = Choice(
    {
        "primary": ("小学",),
        "junior": ("初中",),
        "senior": ("高中",),
        "vocational": ("中专", "职高", "技校", "中职"),
        "college": ("大专", "专科", "高职"),
        "bachelor": ("本科", "大学本科", "学士"),
        "master": ("硕士", "研究生", "硕士研究生"),
        "doctor": ("博士", "博士研究生"),
    }
)
PARKING_USAGE = Choice(
    {
        "owned": ("产权", "产权车位", "自有", "已售", "购买"),
        "rented": ("租赁", "租赁车位", "出租", "租用", "月租", "长租"),
        "temporary": ("临时", "临时车位", "临停", "公共", "公共车位", "空闲"),
    }
)
FACILITY_KIND = Choice(
    {
        "lift": ("电梯", "客梯", "货梯", "直梯"),
        "pump_room": ("水泵房", "泵房", "二次供水"),
        "power_room": ("配电房", "配电室", "变电站"),
        "fire_control": ("消防控制室", "消控室", "消防"),
        "clubhouse": ("会所", "活动室", "社区中心"),
        "playground": ("儿童游乐场", "游乐场", "儿童乐园"),
        "gym": ("健身区", "健身器材", "健身房"),
        "charging": ("充电桩", "充电站", "充电"),
        "bike_shed": ("非机动车棚", "自行车棚", "车棚"),
        "other": ("其他", "其它"),
    }
)
_YES = frozenset({"是", "y", "yes", "true", "1", "地下", "√", "✓"})
_NO = frozenset({"否", "n", "no", "false", "0", "地上", "地面", "×"})


def parse_bool(value: Any) -> bool:
    """是/否, yes/no, 1/0, TRUE/FALSE as Excel stores them, 地下/地上."""
    if isinstance(value, bool):
        return value
    text = clean_text(value).replace(" ", "").lower()
    if text in _YES:
        return True
    if text in _NO:
        return False
    raise CellError(
        "invalid_choice",
        "\u201c{value}\u201d is not one of: {allowed}.",
        value=text[:20],
        allowed="是/否",
    )


def parse_space_no(value: Any) -> str:
    """A parking space number: letters, digits and dashes (B1-007, A-12, 0356)."""
    text = clean_text(value).replace(" ", "")
    if not re.fullmatch(r"[0-9A-Za-z][0-9A-Za-z-]{0,19}", text):
        raise CellError(
            "invalid_value", "\u201c{value}\u201d is not a valid number here.", value=text[:40]
        )
    return text
