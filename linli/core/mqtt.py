"""MQTT: the broker linli publishes device and event messages to.

An embedded amqtt broker by default; any MQTT 3.1.1/5 broker via LINLI_MQTT_URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import weakref
from typing import Any
from urllib.parse import urlparse

import aiomqtt

from linli.config import Settings, get_settings


def broker_address(settings: Settings | None = None) -> tuple[str, int, str | None, str | None]:
    settings = settings or get_settings()
    if settings.mqtt_url:
        url = urlparse(settings.mqtt_url)
        return url.hostname or "127.0.0.1", url.port or 1883, url.username, url.password
    return "127.0.0.1", settings.embedded_mqtt_port, None, None


def client(identifier: str | None = None, settings: Settings | None = None) -> aiomqtt.Client:
    host, port, username, password = broker_address(settings)
    return aiomqtt.Client(
        host,
        port,
        username=username,
        password=password,
        identifier=identifier,
        timeout=5,
        # Small messages, one at a time: without this, Nagle holds each behind the last ACK.
        socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
    )


PING_SECONDS = 2.0


async def ping() -> bool:
    """Can we connect to the broker within PING_SECONDS?"""
    try:
        async with asyncio.timeout(PING_SECONDS), client():
            return True
    except Exception:
        return False


class Publisher:
    """One broker connection kept open for publishing, reconnected when it breaks.

    The outbox consumer publishes every domain event: a connection (TCP + CONNECT +
    CONNACK + DISCONNECT) per message would cost more than the message.
    """

    def __init__(self) -> None:
        self._client: aiomqtt.Client | None = None
        self._lock = asyncio.Lock()

    async def _connected(self) -> aiomqtt.Client:
        async with self._lock:
            if self._client is None:
                fresh = client()
                await fresh.__aenter__()
                self._client = fresh
            return self._client

    async def close(self) -> None:
        async with self._lock:
            stale, self._client = self._client, None
        if stale is not None:
            with contextlib.suppress(Exception):
                await stale.__aexit__(None, None, None)

    async def publish(self, topic: str, payload: bytes | str, *, qos: int = 1) -> None:
        """Publish; on a broken connection, reconnect once and publish again.

        With QoS 1 the return means the broker has the message (PUBACK); a retry after
        a broken connection may deliver it twice, which QoS 1 allows and subscribers
        de-duplicate by the event id.
        """
        for attempt in (1, 2):
            mqtt = await self._connected()
            try:
                await mqtt.publish(topic, payload, qos=qos)
                return
            except aiomqtt.MqttError:
                await self.close()
                if attempt == 2:
                    raise


_publishers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Publisher] = (
    weakref.WeakKeyDictionary()
)


def publisher() -> Publisher:
    """This event loop's publisher (an aiomqtt client belongs to the loop it started in)."""
    loop = asyncio.get_running_loop()
    found = _publishers.get(loop)
    if found is None:
        found = _publishers[loop] = Publisher()
    return found


async def publish(topic: str, payload: dict[str, Any], *, qos: int = 1) -> None:
    body = json.dumps(payload, default=str, ensure_ascii=False)
    await publisher().publish(topic, body, qos=qos)
