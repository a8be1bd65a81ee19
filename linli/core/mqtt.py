"""MQTT: the broker linli publishes device and event messages to.

An embedded amqtt broker by default; any MQTT 3.1.1/5 broker via LINLI_MQTT_URL.
"""

from __future__ import annotations

import asyncio
import json
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
        host, port, username=username, password=password, identifier=identifier, timeout=5
    )


PING_SECONDS = 2.0


async def ping() -> bool:
    """Can we connect to the broker within PING_SECONDS?"""
    try:
        async with asyncio.timeout(PING_SECONDS), client():
            return True
    except Exception:
        return False


async def publish(topic: str, payload: dict[str, Any], *, qos: int = 1) -> None:
    async with client() as mqtt:
        await mqtt.publish(topic, json.dumps(payload, default=str, ensure_ascii=False), qos=qos)
