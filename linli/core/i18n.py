"""Translations (Babel catalogs under ``linli/web/i18n``) and locale negotiation.

Catalogs are read from their ``.po`` source and compiled in memory at first use,
so a checkout needs no build step; ``zh_CN`` is the default locale.
"""

from __future__ import annotations

import io
from contextvars import ContextVar
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALES = ("zh_CN", "en")
DEFAULT_LOCALE = "zh_CN"
CATALOG_DIR = Path(__file__).resolve().parent.parent / "web" / "i18n"

current_locale: ContextVar[str] = ContextVar("linli_locale", default=DEFAULT_LOCALE)


def catalog_files(locale: str) -> list[Path]:
    """``messages.po`` (the shell) first, then one ``<domain>.po`` per domain, by name.

    Domains keep their own catalog file so that work on two domains never edits
    one file; a msgid defined twice takes the shell's translation.
    """
    directory = CATALOG_DIR / locale / "LC_MESSAGES"
    shell = directory / "messages.po"
    domains = sorted(p for p in directory.glob("*.po") if p.name != "messages.po")
    return ([shell] if shell.exists() else []) + domains


@cache
def translations(locale: str) -> Translations:
    merged = Translations()
    for po_path in reversed(catalog_files(locale)):
        with po_path.open("rb") as fp:
            catalog = read_po(fp, locale=locale)
        buffer = io.BytesIO()
        write_mo(buffer, catalog)
        buffer.seek(0)
        merged.merge(Translations(buffer))
    return merged


def gettext(message: str, locale: str | None = None) -> str:
    return str(translations(locale or current_locale.get()).gettext(message))


def ngettext(singular: str, plural: str, n: int, locale: str | None = None) -> str:
    return str(translations(locale or current_locale.get()).ngettext(singular, plural, n))


def negotiate(accept_language: str | None, preferred: str | None = None) -> str:
    """Pick zh_CN or en from an explicit choice (cookie/query) or Accept-Language."""
    if preferred:
        normalized = preferred.replace("-", "_")
        for locale in LOCALES:
            if normalized.lower() == locale.lower() or normalized.lower() == locale[:2]:
                return locale
    if accept_language:
        ranked = []
        for part in accept_language.split(","):
            lang, _, q = part.strip().partition(";q=")
            try:
                weight = float(q) if q else 1.0
            except ValueError:
                weight = 0.0
            ranked.append((weight, lang.strip().replace("-", "_")))
        for weight, lang in sorted(ranked, key=lambda item: -item[0]):
            if weight <= 0:
                continue
            primary = lang.split("_")[0].lower()
            if primary == "zh":
                return "zh_CN"  # the only Chinese catalog; Traditional readers still read it
            if primary == "en":
                return "en"
    return DEFAULT_LOCALE
