"""Rate limits of partner apps, per installation and per app (limits library).

Counters live where the sign-in limits live (``settings.rate_limit_url``). Each
answer carries the IETF ``RateLimit-Policy`` / ``RateLimit`` headers (and the
older ``RateLimit-Limit/Remaining/Reset`` trio); a refused call is a 429 problem
with ``Retry-After``.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from typing import cast

from limits import RateLimitItem, parse
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from linli.config import get_settings
from linli.core.errors import RateLimited

# One company's installation of one app; and one app across every company.
PER_INSTALLATION = "1200/minute"
PER_APP = "12000/minute"

_lock = threading.Lock()
_state: tuple[str, FixedWindowRateLimiter, Storage] | None = None
_items: dict[str, RateLimitItem] = {}


def _limiter() -> tuple[FixedWindowRateLimiter, Storage]:
    global _state
    url = get_settings().rate_limit_url
    with _lock:
        if _state is None or _state[0] != url:
            storage = cast(Storage, storage_from_string(url))
            # Fixed windows: one counter per key, cheap on every API call of every app.
            _state = (url, FixedWindowRateLimiter(storage), storage)
        return _state[1], _state[2]


def _item(limit: str) -> RateLimitItem:
    item = _items.get(limit)
    if item is None:
        item = _items[limit] = parse(limit)
    return item


def hit_app(app_id: uuid.UUID, installation_id: uuid.UUID) -> dict[str, str]:
    """Count one call; the headers to answer with, or :class:`RateLimited`."""
    limiter, _ = _limiter()
    tightest: tuple[int, int, str] | None = None  # remaining, reset, name
    for name, limit, key in (
        ("installation", PER_INSTALLATION, str(installation_id)),
        ("app", PER_APP, str(app_id)),
    ):
        item = _item(limit)
        allowed = limiter.hit(item, "platform", name, key)
        stats = limiter.get_window_stats(item, "platform", name, key)
        reset = max(1, math.ceil(stats.reset_time - time.time()))
        if not allowed:
            raise RateLimited(
                "Too many requests from this app.",
                code="app_rate_limited",
                headers={"Retry-After": str(reset), **_headers(name, item, 0, reset)},
            )
        if tightest is None or stats.remaining < tightest[0]:
            tightest = (stats.remaining, reset, limit)
    assert tightest is not None
    remaining, reset, limit = tightest
    name = "installation" if limit == PER_INSTALLATION else "app"
    return _headers(name, _item(limit), remaining, reset)


def _headers(name: str, item: RateLimitItem, remaining: int, reset: int) -> dict[str, str]:
    window = item.get_expiry()
    return {
        "RateLimit-Policy": f'"{name}";q={item.amount};w={window}',
        "RateLimit": f'"{name}";r={remaining};t={reset}',
        "RateLimit-Limit": str(item.amount),
        "RateLimit-Remaining": str(remaining),
        "RateLimit-Reset": str(reset),
    }


def reset() -> None:
    _, storage = _limiter()
    storage.reset()
