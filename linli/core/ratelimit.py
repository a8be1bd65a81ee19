"""Rate limits on guessable endpoints (sign-in, one-time codes), over the ``limits`` library.

Counters live in ``settings.rate_limit_url``: ``memory://`` keeps them per
process (enough for one small machine); ``redis://`` shares them between
processes when linli scales out. A moving window is used so a burst at a
window edge cannot double the allowance.

Keys may name people (a login, a phone): callers pass them through
:func:`linli.core.crypto.blind_index` first, so the storage never holds them.
"""

from __future__ import annotations

import math
import threading
import time
from typing import cast

from limits import RateLimitItem, parse
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from linli.config import get_settings
from linli.core.errors import RateLimited

_lock = threading.Lock()
_state: tuple[str, Storage, MovingWindowRateLimiter] | None = None


def _limiter() -> tuple[Storage, MovingWindowRateLimiter]:
    global _state
    url = get_settings().rate_limit_url
    with _lock:
        state = _state
        if state is None or state[0] != url:
            # memory:// and redis:// give the synchronous storages this module is written for.
            storage = cast(Storage, storage_from_string(url))
            state = _state = (url, storage, MovingWindowRateLimiter(storage))
        return state[1], state[2]


def _parse(limit: str) -> RateLimitItem:
    try:
        return parse(limit)
    except ValueError as exc:  # a settings typo must not silently disable a limit
        raise ValueError(f"not a rate limit: {limit!r} (expected e.g. '20/minute')") from exc


def hit(limit: str, *keys: str) -> None:
    """Count one attempt against ``limit`` (e.g. ``"20/minute"``) for ``keys``.

    Raises :class:`RateLimited` with a ``Retry-After`` header once the limit is
    exceeded; the refused attempt is not counted, so waiting is enough to get in.
    """
    item = _parse(limit)
    _, limiter = _limiter()
    if limiter.hit(item, *keys):
        return
    stats = limiter.get_window_stats(item, *keys)
    retry_after = max(1, math.ceil(stats.reset_time - time.time()))
    raise RateLimited(headers={"Retry-After": str(retry_after)}, retry_after=retry_after)


def reset_all() -> None:
    """Forget every counter (tests; an operator lifting a block by hand)."""
    storage, _ = _limiter()
    storage.reset()
