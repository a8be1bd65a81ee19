"""Helpers of the page tests: forms, CSRF tokens and sign-in as a browser would do it."""

from __future__ import annotations

import html
import itertools
import re
from typing import Any

import httpx

from linli.auth import sms
from linli.core import crypto

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_ips = itertools.count(1)


def new_ip() -> str:
    """A client address of its own per test, so rate limits of one test never hit another."""
    n = next(_ips)
    return f"10.90.{n // 250}.{n % 250 + 1}"


def csrf_of(page: httpx.Response | str) -> str:
    text = page if isinstance(page, str) else page.text
    found = _CSRF.search(text)
    assert found, "the page has no CSRF token"
    return html.unescape(found.group(1))


def text_of(page: httpx.Response) -> str:
    """The page's text with markup removed and entities decoded, for "the page says" checks."""
    no_tags = re.sub(r"<[^>]+>", " ", page.text)
    return re.sub(r"\s+", " ", html.unescape(no_tags))


async def staff_sign_in(
    http: httpx.AsyncClient, *, company: str, login: str, password: str, **extra: Any
) -> httpx.Response:
    form_page = await http.get("/console/login")
    assert form_page.status_code == 200, form_page.text
    data = {
        "csrf_token": csrf_of(form_page),
        "company": company,
        "login": login,
        "password": password,
    } | extra
    return await http.post("/console/login", data=data)


async def resident_sign_in(http: httpx.AsyncClient, phone: str) -> httpx.Response:
    form_page = await http.get("/portal/login")
    sent = await http.post(
        "/portal/login/code", data={"csrf_token": csrf_of(form_page), "phone": phone}
    )
    assert sent.status_code == 200, sent.text
    normalized = crypto.normalize_phone(phone)
    assert normalized is not None
    code = sms.dev_outbox()[normalized]
    return await http.post(
        "/portal/login", data={"csrf_token": csrf_of(sent), "phone": phone, "code": code}
    )


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """Set-Cookie headers of a response, by cookie name (the raw header, attributes included)."""
    found: dict[str, str] = {}
    for header in response.headers.get_list("set-cookie"):
        name = header.split("=", 1)[0]
        found[name] = header
    return found
