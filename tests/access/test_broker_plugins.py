"""The embedded broker's plugins: persistent sessions for named clients, the device fence."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import aiomqtt

from linli.access import broker_plugins
from tests.conftest import free_port


@contextlib.asynccontextmanager
async def _broker() -> AsyncIterator[int]:
    from amqtt.broker import Broker

    port = free_port()
    broker = Broker(
        {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
            "plugins": {
                "linli.access.broker_plugins.NamedSessions": {},
                "linli.access.broker_plugins.DeviceTopics": {},
            },
        }
    )
    await broker.start()
    try:
        yield port
    finally:
        await broker.shutdown()


async def _collect(client: aiomqtt.Client, seconds: float) -> list[str]:
    got: list[str] = []

    async def read() -> None:
        async for message in client.messages:
            got.append(str(message.topic))

    task = asyncio.create_task(read())
    await asyncio.sleep(seconds)
    task.cancel()
    return got


def test_the_fence_rule() -> None:
    me, other = str(uuid.uuid4()), str(uuid.uuid4())
    t, c = uuid.uuid4(), uuid.uuid4()
    assert broker_plugins.device_may(me, f"linli/{t}/{c}/{me}/evt", "publish")
    assert broker_plugins.device_may(me, f"linli/{t}/{c}/{me}/cmd", "subscribe")
    assert not broker_plugins.device_may(me, f"linli/{t}/{c}/{me}/cmd", "publish")
    assert not broker_plugins.device_may(me, f"linli/{t}/{c}/{other}/evt", "publish")
    assert not broker_plugins.device_may(me, "linli/+/+/+/evt", "subscribe")
    assert broker_plugins.device_may("linli-access-ingest", "linli/+/+/+/evt", "subscribe")


async def test_named_sessions_keep_messages_and_devices_stay_in_their_topics() -> None:
    async with _broker() as port:
        me, other = str(uuid.uuid4()), str(uuid.uuid4())
        tenant, community = uuid.uuid4(), uuid.uuid4()

        def ingest() -> aiomqtt.Client:
            return aiomqtt.Client(
                "127.0.0.1", port, identifier="ingest-x", clean_session=False, username="ingest"
            )

        async with ingest() as first:
            await first.subscribe("linli/+/+/+/evt", qos=1)
        async with aiomqtt.Client("127.0.0.1", port, username=me, password="s") as device:
            await device.publish(f"linli/{tenant}/{community}/{me}/evt", b"{}", qos=1)
            await device.publish(f"linli/{tenant}/{community}/{other}/evt", b"{}", qos=1)
        async with ingest() as again:  # was away: the broker kept what came meanwhile
            got = await _collect(again, 1.0)
        assert got == [f"linli/{tenant}/{community}/{me}/evt"]
