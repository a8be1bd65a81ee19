"""Reading what page forms and links send: shared by every domain's pages."""

from __future__ import annotations

import uuid

from linli.core.errors import NotFound


def optional_uuid(raw: str | None) -> uuid.UUID | None:
    """An id from a form field or query string; None when empty or not an id.

    Pages treat a malformed id like a missing one (the service then answers
    "not found" or "required"), rather than failing with a validation error page.
    """
    try:
        return uuid.UUID(raw) if raw else None
    except ValueError:
        return None


def required_uuid(raw: str | None, *, message: str, code: str) -> uuid.UUID:
    """An id from a page's path or form that must name something: else "not found"."""
    wanted = optional_uuid(raw)
    if wanted is None:
        raise NotFound(message, code=code)
    return wanted
