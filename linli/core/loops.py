"""The event loop linli's own processes run on: uvloop where it is installed.

uvicorn already serves the app on uvloop; the broker, the device simulator and the
command-line tools use the same loop, so what is measured in one is what runs in the
others. uvloop does socket readiness and callbacks in C: an embedded-broker hop or a
simulated device's answer costs less of the shared CPU.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # uvicorn[standard] brings it; without it, the stock loop works
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on :func:`new_event_loop`."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(coro)
