"""HTTP plumbing shared by every domain: request ids, body limit, metrics, problem+json."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from linli.core.errors import DomainError, PayloadTooLarge, Problem
from linli.core.i18n import current_locale, gettext, negotiate

log = structlog.get_logger("linli.http")

REQUESTS = Counter("linli_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "linli_http_request_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
PROBLEM_JSON = "application/problem+json"


class RequestContextMiddleware:
    """Request id, locale, access log and metrics, as plain ASGI (cheap on the hot path)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        incoming = headers.get("x-request-id", "")
        request_id = incoming if REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        cookie_locale = _cookie(headers.get("cookie", ""), "linli_locale")
        locale_token = current_locale.set(negotiate(headers.get("accept-language"), cookie_locale))
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status_holder = {"status": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            REQUESTS.labels(scope["method"], template, str(status_holder["status"])).inc()
            LATENCY.labels(scope["method"], template).observe(elapsed)
            if template not in ("/healthz", "/metrics"):
                log.info(
                    "request",
                    method=scope["method"],
                    path=template,
                    status=status_holder["status"],
                    ms=round(elapsed * 1000, 2),
                )
            structlog.contextvars.unbind_contextvars("request_id")
            current_locale.reset(locale_token)


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


class BodyLimitMiddleware:
    """Refuse bodies over the limit before reading them into memory.

    ``path_limits`` raises the limit under some path prefixes (spreadsheet uploads).
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, path_limits: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.default_max_bytes = max_bytes
        self.path_limits = sorted((path_limits or {}).items(), key=lambda item: -len(item[0]))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        max_bytes = next(
            (n for prefix, n in self.path_limits if path.startswith(prefix)), self.default_max_bytes
        )
        for key, value in scope["headers"]:
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = max_bytes + 1
                if declared > max_bytes:
                    await _send_problem(scope, send, PayloadTooLarge())
                    return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await _send_problem(scope, send, PayloadTooLarge())


class _TooLarge(StarletteHTTPException):
    """Raised from ``receive``. An HTTPException, so FastAPI's body reader passes it on as is
    instead of turning it into "error parsing the body"."""

    def __init__(self) -> None:
        super().__init__(status_code=413)


async def _send_problem(scope: Scope, send: Send, error: DomainError) -> None:
    problem = problem_from_error(error, instance=scope.get("path"), request_id=None)
    response = JSONResponse(problem.body(), status_code=problem.status, media_type=PROBLEM_JSON)
    await response({**scope, "type": "http"}, _empty_receive, send)


async def _empty_receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def problem_from_error(
    error: DomainError, *, instance: str | None, request_id: str | None
) -> Problem:
    return Problem(
        status=error.status,
        code=error.instance_code,
        title=gettext(type(error).default_message),
        detail=error.detail(),
        instance=instance,
        request_id=request_id,
        errors=[
            {"field": e.field, "message": gettext(e.message), "code": e.code} for e in error.errors
        ],
    )


PAGE_PREFIXES = ("/console", "/portal")


def _is_page(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in PAGE_PREFIXES)


def _problem_response(
    request: Request, problem: Problem, headers: dict[str, str] | None = None
) -> Response:
    if _is_page(request.url.path):
        # People read the console and the portal: an HTML page (or, for 401, the sign-in page).
        from linli.web.errors import error_page  # late: the web shell imports this module

        return error_page(
            request,
            status=problem.status,
            code=problem.code,
            message=problem.detail,
            headers=headers,
        )
    return JSONResponse(
        problem.body(), status_code=problem.status, media_type=PROBLEM_JSON, headers=headers
    )


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or str(loc[0] if loc else "body")


def install_problem_handlers(app: FastAPI) -> None:
    async def on_domain_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DomainError)
        problem = problem_from_error(
            exc, instance=request.url.path, request_id=getattr(request.state, "request_id", None)
        )
        return _problem_response(request, problem, exc.headers)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = []
        for item in exc.errors():
            kind = str(item.get("type", "invalid"))
            message = (
                gettext("The request body is not valid JSON or UTF-8.")
                if kind
                in (
                    "json_invalid",
                    "value_error.jsondecode",
                )
                else str(item.get("msg", "invalid"))
            )
            errors.append(
                {"field": _field_name(tuple(item.get("loc", ()))), "message": message, "code": kind}
            )
        problem = Problem(
            status=422,
            code="validation_failed",
            title=gettext("Some fields are invalid."),
            detail=gettext("Some fields are invalid."),
            instance=request.url.path,
            request_id=getattr(request.state, "request_id", None),
            errors=errors,
        )
        return _problem_response(request, problem)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if isinstance(exc, _TooLarge):
            too_large = problem_from_error(
                PayloadTooLarge(),
                instance=request.url.path,
                request_id=getattr(request.state, "request_id", None),
            )
            return _problem_response(request, too_large)
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            # FastAPI's answer to a body that is not UTF-8 or nests too deep to parse:
            # the same 422 as any other unreadable JSON, so clients handle one shape.
            title = gettext("Some fields are invalid.")
            unreadable = Problem(
                status=422,
                code="validation_failed",
                title=title,
                detail=title,
                instance=request.url.path,
                request_id=getattr(request.state, "request_id", None),
                errors=[
                    {
                        "field": "body",
                        "message": gettext("The request body is not valid JSON or UTF-8."),
                        "code": "json_invalid",
                    }
                ],
            )
            return _problem_response(request, unreadable)
        code = {
            404: "not_found",
            405: "method_not_allowed",
            401: "unauthorized",
            403: "forbidden",
        }.get(exc.status_code, "http_error")
        messages = {404: "Not found.", 405: "Method not allowed."}
        text = gettext(messages.get(exc.status_code, str(exc.detail)))
        problem = Problem(
            status=exc.status_code,
            code=code,
            title=text,
            detail=text,
            instance=request.url.path,
            request_id=getattr(request.state, "request_id", None),
        )
        return _problem_response(request, problem, dict(exc.headers or {}))

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", path=request.url.path)
        text = gettext("Something went wrong on our side. The request id helps support find it.")
        problem = Problem(
            status=500,
            code="internal_error",
            title=text,
            detail=text,
            instance=request.url.path,
            request_id=getattr(request.state, "request_id", None),
        )
        return _problem_response(request, problem)

    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
