from __future__ import annotations

from collections.abc import AsyncIterator

import pytest


@pytest.fixture(autouse=True)
async def _close_webhook_sessions() -> AsyncIterator[None]:
    yield
    from linli.platform import webhooks

    await webhooks.close_http_clients()
