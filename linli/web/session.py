"""Cookie sessions of the two web areas, CSRF tokens, and the principals pages act for.

The console (staff) and the portal (residents) keep separate cookies, each scoped
to its own path, so signing in on one never signs anyone in on the other. Both
hold the same pair as the JSON API hands out (a short-lived access token and a
rotating refresh token), only in ``HttpOnly; SameSite=Lax`` cookies; an expired
access token is renewed through the refresh token without the person noticing.

CSRF: every state-changing form carries a token that is an HMAC (keyed with
``settings.signing_key()``) of the area's session-id cookie. A forged form from
another site can neither read that cookie nor compute the HMAC. The session id is
replaced at sign-in and sign-out, so a token learnt before sign-in is worthless
after it. The JSON API never reads these cookies and needs none of this.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import time
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Annotated, Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import structlog
from fastapi import Depends, Form, Request
from fastapi.responses import Response

from linli.auth.actor import Actor, PrincipalKind
from linli.auth.deps import client_ip
from linli.auth.permissions import Permission
from linli.auth.tokens import IssuedTokens, decode_access_token
from linli.config import get_settings
from linli.core.errors import DomainError, PermissionDenied, Unauthorized

log = structlog.get_logger("linli.web.session")

LOCALE_COOKIE = "linli_locale"  # read by linli.core.http for every request
LOCALE_MAX_AGE = 365 * 24 * 3600


@dataclass(frozen=True)
class Area:
    """One signed-in area of the site and the cookies that belong to it."""

    name: str
    prefix: str
    kind: PrincipalKind
    access_cookie: str
    refresh_cookie: str
    sid_cookie: str

    @property
    def login_path(self) -> str:
        return f"{self.prefix}/login"

    def owns(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix + "/")


CONSOLE = Area(
    name="console",
    prefix="/console",
    kind=PrincipalKind.STAFF,
    access_cookie="linli_staff_at",
    refresh_cookie="linli_staff_rt",
    sid_cookie="linli_console_sid",
)
PORTAL = Area(
    name="portal",
    prefix="/portal",
    kind=PrincipalKind.RESIDENT,
    access_cookie="linli_resident_at",
    refresh_cookie="linli_resident_rt",
    sid_cookie="linli_portal_sid",
)
AREAS = (CONSOLE, PORTAL)


def area_of(path: str) -> Area | None:
    return next((area for area in AREAS if area.owns(path)), None)


# --- cookies queued by dependencies, written by whoever builds the response ------------------


@dataclass(frozen=True)
class CookieChange:
    name: str
    value: str | None  # None deletes the cookie
    path: str
    max_age: int | None = None
    httponly: bool = True


def queue_cookie(request: Request, change: CookieChange) -> None:
    """Remember a cookie to set on this request's response.

    Dependencies cannot reach the response object a page handler returns, so they
    queue here and :func:`apply_cookies` writes the queue onto that response.
    """
    queued: list[CookieChange] = request.state.__dict__.setdefault("web_cookies", [])
    queued[:] = [c for c in queued if not (c.name == change.name and c.path == change.path)]
    queued.append(change)


ResponseT = TypeVar("ResponseT", bound=Response)


def apply_cookies(request: Request, response: ResponseT) -> ResponseT:
    secure = get_settings().cookie_secure
    for change in request.state.__dict__.get("web_cookies", []):
        if change.value is None:
            response.delete_cookie(
                change.name,
                path=change.path,
                secure=secure,
                httponly=change.httponly,
                samesite="lax",
            )
        else:
            response.set_cookie(
                change.name,
                change.value,
                max_age=change.max_age,
                path=change.path,
                secure=secure,
                httponly=change.httponly,
                samesite="lax",
            )
    return response


def set_locale_cookie(request: Request, locale: str) -> None:
    queue_cookie(request, CookieChange(LOCALE_COOKIE, locale, "/", LOCALE_MAX_AGE))


# --- session id and CSRF ---------------------------------------------------------------------

_SID_LENGTH = 43  # token_urlsafe(32)


def _valid_sid(value: str | None) -> bool:
    return bool(value) and len(value or "") == _SID_LENGTH and (value or "").isascii()


def session_id(request: Request, area: Area) -> str:
    """The area's session id, creating (and queueing) one on a first visit."""
    state_key = f"sid_{area.name}"
    current = request.state.__dict__.get(state_key)
    if isinstance(current, str):
        return current
    sid = request.cookies.get(area.sid_cookie)
    if not _valid_sid(sid):
        return rotate_session_id(request, area)
    assert sid is not None
    request.state.__dict__[state_key] = sid
    return sid


def rotate_session_id(request: Request, area: Area) -> str:
    """A fresh session id: at sign-in and sign-out, so old CSRF tokens stop working."""
    sid = secrets.token_urlsafe(32)
    request.state.__dict__[f"sid_{area.name}"] = sid
    max_age = get_settings().refresh_token_days * 24 * 3600
    queue_cookie(request, CookieChange(area.sid_cookie, sid, area.prefix, max_age))
    return sid


def csrf_token_for(area: Area, sid: str) -> str:
    key = get_settings().signing_key().encode()
    digest = hmac.new(key, f"linli.csrf|{area.name}|{sid}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def csrf_token(request: Request, area: Area) -> str:
    return csrf_token_for(area, session_id(request, area))


class CsrfFailed(PermissionDenied):
    code = "csrf_failed"
    default_message = (
        "This form has expired or did not come from this site. Reload the page and try again."
    )


def check_csrf(request: Request, area: Area, submitted: str | None) -> None:
    # The cookie as the browser sent it: a session id minted during this request
    # cannot have been rendered into the form being submitted.
    sid = request.cookies.get(area.sid_cookie)
    if not submitted or not _valid_sid(sid):
        raise CsrfFailed()
    assert sid is not None
    if not hmac.compare_digest(submitted.encode(), csrf_token_for(area, sid).encode()):
        raise CsrfFailed()


def _csrf_dependency(area: Area) -> Callable[..., Awaitable[None]]:
    async def verify(
        request: Request, csrf_token: Annotated[str | None, Form(max_length=100)] = None
    ) -> None:
        check_csrf(request, area, csrf_token)

    return verify


ConsoleCsrf = Depends(_csrf_dependency(CONSOLE))
PortalCsrf = Depends(_csrf_dependency(PORTAL))


# --- tokens in cookies -----------------------------------------------------------------------


def store_tokens(request: Request, area: Area, tokens: IssuedTokens) -> None:
    max_age = get_settings().refresh_token_days * 24 * 3600
    # The access cookie outlives its token on purpose: an expired token in hand is
    # what triggers the silent refresh.
    queue_cookie(
        request, CookieChange(area.access_cookie, tokens.access_token, area.prefix, max_age)
    )
    queue_cookie(
        request, CookieChange(area.refresh_cookie, tokens.refresh_token, area.prefix, max_age)
    )
    request.state.__dict__[f"principal_{area.name}"] = _with_request(tokens.actor, request)


def clear_tokens(request: Request, area: Area) -> None:
    queue_cookie(request, CookieChange(area.access_cookie, None, area.prefix))
    queue_cookie(request, CookieChange(area.refresh_cookie, None, area.prefix))
    request.state.__dict__[f"principal_{area.name}"] = None


def request_id(request: Request) -> str | None:
    value = getattr(request.state, "request_id", None)
    return str(value) if value else None


def _with_request(actor: Actor, request: Request) -> Actor:
    return replace(actor, request_id=request_id(request), ip=client_ip(request))


Refresher = Callable[[str, Request], Awaitable[IssuedTokens]]


class _RefreshCoalescer:
    """Runs one refresh per refresh token at a time and shares its result briefly.

    A browser may send two requests with the same expired access token at once
    (two tabs, a reload while loading). Refreshing twice with one refresh token
    looks exactly like token theft and revokes the whole family, signing the
    person out; within this process the second request waits for the first.
    A result is shared for ten seconds: long enough for requests already on their
    way, short enough that a stolen old token is still caught as reuse later.
    """

    ttl_seconds: ClassVar[float] = 10.0

    def __init__(self) -> None:
        self._running: dict[bytes, asyncio.Future[IssuedTokens]] = {}
        self._done: dict[bytes, tuple[float, IssuedTokens]] = {}

    async def run(
        self, refresh_token: str, work: Callable[[], Awaitable[IssuedTokens]]
    ) -> IssuedTokens:
        key = hashlib.sha256(refresh_token.encode()).digest()
        now = time.monotonic()
        self._done = {k: v for k, v in self._done.items() if now - v[0] < self.ttl_seconds}
        if key in self._done:
            return self._done[key][1]
        running = self._running.get(key)
        if running is not None and running.get_loop() is asyncio.get_running_loop():
            return await asyncio.shield(running)
        future: asyncio.Future[IssuedTokens] = asyncio.get_running_loop().create_future()
        self._running[key] = future
        try:
            tokens = await work()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        finally:
            self._running.pop(key, None)
        future.set_result(tokens)
        self._done[key] = (time.monotonic(), tokens)
        return tokens


_coalescer = _RefreshCoalescer()


async def _refresh_staff(refresh_token: str, request: Request) -> IssuedTokens:
    from linli.auth import service as auth_service
    from linli.db.engine import unit_of_work

    async with unit_of_work() as session:
        return await auth_service.refresh_staff(
            session,
            refresh_token=refresh_token,
            ip=client_ip(request),
            request_id=request_id(request),
        )


async def _refresh_resident(refresh_token: str, request: Request) -> IssuedTokens:
    from linli.auth import residents
    from linli.db.engine import unit_of_work

    async with unit_of_work() as session:
        return await residents.refresh_resident(
            session,
            refresh_token=refresh_token,
            ip=client_ip(request),
            request_id=request_id(request),
        )


_REFRESHERS: dict[str, Refresher] = {"console": _refresh_staff, "portal": _refresh_resident}


async def cookie_principal(request: Request, area: Area) -> Actor | None:
    """Who the area's cookies name, refreshing an expired access token; None if nobody."""
    state_key = f"principal_{area.name}"
    if state_key in request.state.__dict__:
        cached: Actor | None = request.state.__dict__[state_key]
        return cached
    actor: Actor | None = None
    access = request.cookies.get(area.access_cookie)
    if access:
        try:
            actor = _with_request(decode_access_token(access, (area.kind,)), request)
        except Unauthorized:
            actor = None  # expired or not ours: the refresh token decides
    if actor is None:
        refresh = request.cookies.get(area.refresh_cookie)
        if refresh:
            refresher = _REFRESHERS[area.name]
            try:
                tokens = await _coalescer.run(refresh, lambda: refresher(refresh, request))
            except DomainError as exc:
                log.info("web.refresh_refused", area=area.name, reason=exc.instance_code)
                clear_tokens(request, area)
                return None
            store_tokens(request, area, tokens)
            return request.state.__dict__[state_key]  # type: ignore[no-any-return]
    request.state.__dict__[state_key] = actor
    return actor


async def staff_principal(request: Request) -> Actor | None:
    return await cookie_principal(request, CONSOLE)


async def resident_principal(request: Request) -> Actor | None:
    return await cookie_principal(request, PORTAL)


class SignInRequired(Unauthorized):
    """On page paths the error handler turns this into a redirect to the area's sign-in."""

    code = "sign_in_required"


class StaffPage:
    """A console page's declared permission, checked against the staff cookie session.

    ``permission`` and ``declares_permission`` let :class:`linli.auth.deps.DeclaredRoute`
    and the OpenAPI walker find the declaration, exactly as for API routes.
    """

    declares_permission = True

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    async def __call__(self, principal: Annotated[Actor | None, Depends(staff_principal)]) -> Actor:
        if principal is None:
            raise SignInRequired()
        if principal.kind is not PrincipalKind.STAFF or not principal.can(self.permission):
            raise PermissionDenied()
        return principal


class ResidentPage:
    """A portal page's declared permission, checked against the resident cookie session."""

    declares_permission = True

    def __init__(self, permission: Permission = Permission.RESIDENT_SELF) -> None:
        self.permission = permission

    async def __call__(
        self, principal: Annotated[Actor | None, Depends(resident_principal)]
    ) -> Actor:
        if principal is None:
            raise SignInRequired()
        if principal.kind is not PrincipalKind.RESIDENT or not principal.can(self.permission):
            raise PermissionDenied()
        return principal


class PublicPage:
    """Declares a page open to anyone (sign-in forms, the WeChat callback)."""

    declares_permission = True
    permission = Permission.PUBLIC

    async def __call__(self) -> None:
        return None


public_page = PublicPage()


# --- where to go after a form ----------------------------------------------------------------


def safe_next(target: str | None, area: Area, default: str | None = None) -> str:
    """``target`` when it is a path inside ``area``; otherwise the area's home page.

    Keeps ``?next=`` from sending people to another site (open redirect).
    """
    fallback = default or area.prefix
    if not target or len(target) > 1000:
        return fallback
    if target.startswith("//") or "\\" in target:
        return fallback
    if any(unicodedata.category(ch)[0] in "CZ" for ch in target):
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not area.owns(parts.path):
        return fallback
    return target


def describe(error: DomainError) -> dict[str, Any]:
    """What a page shows of a domain error: its translated message and field messages."""
    from linli.core.i18n import gettext

    return {
        "code": error.instance_code,
        "message": error.detail(),
        "fields": {e.field: gettext(e.message) for e in error.errors},
    }
