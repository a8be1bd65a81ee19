"""Domain errors with stable codes, rendered once as RFC 9457 problem+json.

Services raise these; nothing below the API layer knows about HTTP beyond the
``status`` each error class carries. Clients branch on ``code``; people read
``detail``, translated by ``Accept-Language``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from linli.core.i18n import gettext


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str
    code: str = "invalid"


class DomainError(Exception):
    """Base of every error a service raises on purpose."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    default_message: ClassVar[str] = "The request cannot be processed."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        keep_changes: bool = False,
        **params: Any,
    ) -> None:
        self.message = message or self.default_message
        # True when the writes made before raising must outlive the refusal (a revoked
        # token family, a counted wrong guess): the unit of work commits, then raises.
        self.keep_changes = keep_changes
        self.instance_code = code or self.code
        self.errors = errors or []
        self.headers = headers or {}
        self.params = params
        super().__init__(self.message)

    def detail(self) -> str:
        text = gettext(self.message)
        return text.format(**self.params) if self.params else text


class BadRequest(DomainError):
    pass


class ValidationFailed(DomainError):
    status = 422
    code = "validation_failed"
    default_message = "Some fields are invalid."


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"
    default_message = "Sign-in is required."


class PermissionDenied(DomainError):
    status = 403
    code = "forbidden"
    default_message = "You do not have permission to do this."


class NotFound(DomainError):
    """Also what another company's ids get: their existence is not revealed."""

    status = 404
    code = "not_found"
    default_message = "Not found."


class Conflict(DomainError):
    status = 409
    code = "conflict"
    default_message = "The request conflicts with the current state."


class PayloadTooLarge(DomainError):
    status = 413
    code = "payload_too_large"
    default_message = "The request body is too large."


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"
    default_message = "Too many attempts. Please try again later."


class ServiceUnavailable(DomainError):
    status = 503
    code = "unavailable"
    default_message = "A service this request needs is unavailable."


@dataclass
class Problem:
    """RFC 9457 problem details."""

    status: int
    code: str
    title: str
    detail: str
    instance: str | None = None
    request_id: str | None = None
    errors: list[dict[str, str]] = field(default_factory=list)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"urn:linli:problem:{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if self.instance:
            body["instance"] = self.instance
        if self.request_id:
            body["request_id"] = self.request_id
        if self.errors:
            body["errors"] = self.errors
        return body
