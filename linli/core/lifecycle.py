"""Work a domain must finish when a server process stops (flush buffers, close clients).

A domain registers a coroutine function at import; the app's lifespan awaits every
one at shutdown, before the database pools close, each bounded by a timeout so a
stuck hook cannot hold the process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger("linli.lifecycle")

ShutdownHook = Callable[[], Awaitable[object]]
_hooks: dict[str, ShutdownHook] = {}


def on_shutdown(name: str, hook: ShutdownHook) -> None:
    _hooks[name] = hook


async def run_shutdown_hooks(seconds_each: float = 5.0) -> None:
    for name, hook in list(_hooks.items()):
        try:
            async with asyncio.timeout(seconds_each):
                await hook()
        except Exception as exc:  # one failing hook must not skip the others
            log.warning("lifecycle.shutdown_hook_failed", hook=name, error=type(exc).__name__)
