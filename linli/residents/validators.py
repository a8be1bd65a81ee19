"""Identity formats of mainland China: resident ID numbers and vehicle plates.

Pure functions, shared by the residents service, the API schemas and the bulk
import engine, so one rule decides what a valid plate or ID number is.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

# GB 11643-1999: 17 digits weighted mod 11, check character from this table.
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID_SHAPE = re.compile(r"^[1-9]\d{16}[\dX]$")
# First two digits: province-level division codes in use.
_ID_PROVINCES = frozenset(
    {
        11,
        12,
        13,
        14,
        15,
        21,
        22,
        23,
        31,
        32,
        33,
        34,
        35,
        36,
        37,
        41,
        42,
        43,
        44,
        45,
        46,
        50,
        51,
        52,
        53,
        54,
        61,
        62,
        63,
        64,
        65,
        71,
        81,
        82,
        83,
        91,
    }
)

PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
# Letters on plates skip I and O (they read as 1 and 0).
_L = "A-HJ-NP-Z"
# New-energy letters (GA 36-2018 and its 2023 extension): D A B C E pure electric, F G H J K other.
_NEV = "A-HJK"
_PLATE_STANDARD = re.compile(rf"^[{PROVINCES}][{_L}][{_L}0-9]{{5}}$")
_PLATE_SUFFIXED = re.compile(rf"^[{PROVINCES}][{_L}][{_L}0-9]{{4}}[挂学警港澳]$")
_PLATE_NEV_SMALL = re.compile(rf"^[{PROVINCES}][{_L}][{_NEV}][{_L}0-9]\d{{4}}$")
_PLATE_NEV_LARGE = re.compile(rf"^[{PROVINCES}][{_L}]\d{{5}}[DF]$")
_PLATE_NOISE = re.compile(r"[\s·•.\-_]")


def id_card_check_char(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def normalize_id_card(raw: str) -> str | None:
    """An 18-character resident ID number with valid region, birth date and checksum, or None.

    Full-width digits, spaces and a lowercase ``x`` are accepted: spreadsheets carry all three.
    """
    value = unicodedata.normalize("NFKC", raw).replace(" ", "").strip().upper()
    if not _ID_SHAPE.match(value) or int(value[:2]) not in _ID_PROVINCES:
        return None
    try:
        born = dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return None
    if born.year < 1900 or born > dt.date.today():
        return None
    if id_card_check_char(value[:17]) != value[17]:
        return None
    return value


def id_card_birth_date(value: str) -> dt.date:
    return dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))


def id_card_gender(value: str) -> str:
    return "male" if int(value[16]) % 2 else "female"


def normalize_plate(raw: str) -> str | None:
    """A mainland plate in canonical form (``京A12345``, ``粤BD12345``), or None.

    Full-width letters, lowercase, spaces and the ``·`` people write after the
    city letter are accepted and removed.
    """
    value = _PLATE_NOISE.sub("", unicodedata.normalize("NFKC", raw)).upper()
    if len(value) == 8 and (_PLATE_NEV_SMALL.match(value) or _PLATE_NEV_LARGE.match(value)):
        return value
    if len(value) == 7 and (_PLATE_STANDARD.match(value) or _PLATE_SUFFIXED.match(value)):
        return value
    return None


def is_new_energy_plate(plate: str) -> bool:
    return len(plate) == 8
