from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.core.event_sink import Subscriber


@pytest.fixture
async def subscriber_factory() -> AsyncIterator[Callable[[uuid.UUID], Awaitable[Subscriber]]]:
    """Subscribe to a tenant's MQTT event topics; unsubscribed after the test."""
    opened: list[Subscriber] = []

    async def open_subscriber(tenant_id: uuid.UUID) -> Subscriber:
        sub = Subscriber(tenant_id)
        opened.append(await sub.__aenter__())
        return sub

    yield open_subscriber
    for sub in opened:
        await sub.__aexit__()
