"""The event publisher keeps one broker connection and survives a broker restart."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable

import aiomqtt
import pytest

from linli.core.mqtt import Publisher
from tests.conftest import _wait_port, free_port


def _broker(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "linli.core.broker", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_port(port)
    return process


async def _received(
    port: int, topic: str, count: int, publish: Callable[[], Awaitable[None]]
) -> list[bytes]:
    got: list[bytes] = []
    async with aiomqtt.Client("127.0.0.1", port, identifier=f"t-{uuid.uuid4().hex[:8]}") as sub:
        await sub.subscribe(topic, qos=1)
        await publish()
        async with asyncio.timeout(10):
            async for message in sub.messages:
                got.append(bytes(message.payload))  # type: ignore[arg-type]
                if len(got) == count:
                    break
    return got


async def test_one_connection_for_many_messages_and_a_new_one_after_a_restart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = free_port()
    broker = _broker(port)
    publisher = Publisher()
    connect = publisher._connected
    connections: list[object] = []

    async def counting() -> aiomqtt.Client:
        client = await connect()
        if not connections or connections[-1] is not client:
            connections.append(client)
        return client

    publisher._connected = counting  # type: ignore[method-assign]
    monkeypatch.setenv("LINLI_MQTT_URL", f"mqtt://127.0.0.1:{port}")
    from linli.config import get_settings

    get_settings.cache_clear()
    try:

        async def three() -> None:
            for n in range(3):
                await publisher.publish("linli/test/pub", f"m{n}".encode())

        assert await _received(port, "linli/test/pub", 3, three) == [b"m0", b"m1", b"m2"]
        assert len(connections) == 1

        broker.kill()
        broker.wait(5)
        broker = _broker(port)

        async def after_restart() -> None:
            await publisher.publish("linli/test/pub", b"again")

        assert await _received(port, "linli/test/pub", 1, after_restart) == [b"again"]
        assert len(connections) == 2
    finally:
        await publisher.close()
        broker.kill()
        broker.wait(5)
        get_settings.cache_clear()
