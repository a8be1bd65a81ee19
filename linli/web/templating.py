"""Jinja2 for the web pages: gettext from our Babel catalogs, locale-aware dates, static URLs."""

from __future__ import annotations

import datetime as dt
import hashlib
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from linli.core import i18n
from linli.web.session import apply_cookies

WEB_DIR = Path(__file__).resolve().parent
TEMPLATE_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"
STATIC_PREFIX = "/static"
DEFAULT_TZ = "Asia/Shanghai"

HTML_LANG = {"zh_CN": "zh-CN", "en": "en"}
LOCALE_NAMES = {"zh_CN": "中文", "en": "English"}


def _gettext(message: str) -> str:
    return i18n.gettext(message)


def _ngettext(singular: str, plural: str, n: int) -> str:
    return i18n.ngettext(singular, plural, n)


def _aware(value: dt.datetime, tz: str) -> dt.datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)  # we store UTC
    return value.astimezone(ZoneInfo(tz))


def datetime_filter(value: dt.datetime | None, format: str = "medium", tz: str = DEFAULT_TZ) -> str:
    """A timestamp in the reader's language, in the community's time zone."""
    if value is None:
        return ""
    return format_datetime(_aware(value, tz), format=format, locale=i18n.current_locale.get())


def date_filter(
    value: dt.date | dt.datetime | None, format: str = "medium", tz: str = DEFAULT_TZ
) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = _aware(value, tz).date()
    return format_date(value, format=format, locale=i18n.current_locale.get())


@cache
def _static_version(name: str) -> str:
    path = STATIC_DIR / name
    if not path.is_file():
        return "0"
    return hashlib.sha256(path.read_bytes()).hexdigest()[:10]


def static_url(name: str) -> str:
    """URL of a file under static/, with a content hash so browsers may cache it for long."""
    return f"{STATIC_PREFIX}/{name}?v={_static_version(name)}"


def _build_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # newstyle: _("Hello %(name)s", name=x) escapes x and formats after translating.
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters["datetime"] = datetime_filter
    env.filters["date"] = date_filter
    env.globals["static_url"] = static_url
    env.globals["LOCALE_NAMES"] = LOCALE_NAMES
    return env


environment = _build_environment()


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    locale = i18n.current_locale.get()
    values: dict[str, Any] = {
        "request": request,
        "path": request.url.path,
        "locale": locale,
        "html_lang": HTML_LANG.get(locale, "zh-CN"),
        "now": dt.datetime.now(dt.UTC),
    }
    values.update(context or {})
    html = environment.get_template(template).render(values)
    response = HTMLResponse(html, status_code=status_code, headers=headers)
    # Pages carry session cookies and per-person data: never cache them anywhere.
    response.headers.setdefault("Cache-Control", "no-store")
    return apply_cookies(request, response)


def redirect(request: Request, url: str, *, status_code: int = 303) -> RedirectResponse:
    response = RedirectResponse(url, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    return apply_cookies(request, response)
