"""The catalogs: every msgid of linli's templates and modules is translated, in both locales."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from linli.core import i18n
from linli.web.templating import date_filter, datetime_filter

LINLI = Path(__file__).resolve().parents[2] / "linli"
METHODS = [
    ("**/templates/**.html", "jinja2"),
    ("**.py", "python"),
]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}


def _linli_msgids() -> set[str]:
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(LINLI),
        method_map=METHODS,
        options_map=OPTIONS,
        keywords={"_": None, "gettext": None, "N_": None, "ngettext": (1, 2)},
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_msgid_has_a_chinese_and_an_english_entry() -> None:
    msgids = _linli_msgids()
    assert {"Staff sign-in", "Overview", "Coming soon", "Page not found"} <= msgids
    for locale in ("zh_CN", "en"):
        translated: set[str] = set()
        for path in i18n.catalog_files(locale):
            with path.open("rb") as fp:
                catalog = read_po(fp, locale=locale)
            translated |= {str(m.id) for m in catalog if m.id and m.string}
        missing = sorted(msgids - translated)
        assert not missing, f"{locale} lacks translations: {missing}"


def test_dates_follow_the_locale_and_the_community_time_zone() -> None:
    moment = dt.datetime(2026, 3, 1, 16, 30, tzinfo=dt.UTC)  # 00:30 on 2 March in Shanghai
    token = i18n.current_locale.set("zh_CN")
    try:
        assert date_filter(moment, "long") == "2026年3月2日"
        assert "00:30" in datetime_filter(moment, "short")
    finally:
        i18n.current_locale.reset(token)
    token = i18n.current_locale.set("en")
    try:
        assert date_filter(moment, "long") == "March 2, 2026"
        assert date_filter(moment, "long", tz="Europe/London") == "March 1, 2026"
    finally:
        i18n.current_locale.reset(token)
