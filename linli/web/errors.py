"""Error pages of the console and the portal (the API keeps answering problem+json).

linli.core.http calls :func:`error_page` for requests under ``/console`` and
``/portal``. A missing or ended sign-in sends the person to the area's sign-in
page, remembering where they were going.
"""

from __future__ import annotations

from urllib.parse import urlencode

import structlog
from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from linli.core.i18n import gettext
from linli.web.nav import N_
from linli.web.session import CONSOLE, Area, area_of
from linli.web.templating import redirect, render

log = structlog.get_logger("linli.web.errors")

# Codes whose message says no more than the status does: the page's own words read better.
GENERIC_CODES = frozenset({"not_found", "method_not_allowed", "http_error", "internal_error"})
TITLES = {
    400: N_("The request could not be understood"),
    403: N_("Access denied"),
    404: N_("Page not found"),
    405: N_("This action is not available here"),
    413: N_("That was too large"),
    422: N_("Some fields are invalid"),
    429: N_("Too many attempts"),
    500: N_("Something went wrong"),
    503: N_("Temporarily unavailable"),
}
MESSAGES = {
    404: N_("The page you are looking for does not exist or has moved."),
    500: N_("Something went wrong on our side. The request id helps support find it."),
}


def error_page(
    request: Request,
    *,
    status: int,
    code: str,
    message: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    area = area_of(request.url.path) or CONSOLE
    if status == 401:
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        if request.method != "GET" or request.url.path == area.login_path:
            target = area.prefix
        return redirect(request, f"{area.login_path}?{urlencode({'next': target})}")
    title = gettext(TITLES.get(status, TITLES[500] if status >= 500 else TITLES[400]))
    if status in MESSAGES and (status >= 500 or message is None or code in GENERIC_CODES):
        message = gettext(MESSAGES[status])
    try:
        return _render(request, area, status, code, title, message or title, headers)
    except Exception:  # an error page must never fail: fall back to plain markup
        log.exception("web.error_page_failed", status=status)
        return HTMLResponse(
            f"<!doctype html><title>{status}</title><h1>{status}</h1>",
            status_code=status,
        )


def _render(
    request: Request,
    area: Area,
    status: int,
    code: str,
    title: str,
    message: str,
    headers: dict[str, str] | None,
) -> Response:
    return render(
        request,
        "error.html",
        {
            "area": area,
            "status": status,
            "code": code,
            "title": title,
            "message": message,
            "request_id": getattr(request.state, "request_id", None),
        },
        status_code=status,
        headers={k: v for k, v in (headers or {}).items() if k.lower() == "retry-after"},
    )
