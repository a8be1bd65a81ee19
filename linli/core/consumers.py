"""Who receives outbox events: a registry of consumers, each with a stable name.

The outbox worker hands every event to each *active* consumer and records the
consumer's name in ``outbox_deliveries`` once it has handled the event, so the
name is part of the delivery record and must never change. Delivery is
at-least-once: a consumer may see an event again after a crash, so every
message carries the event id for the receiver to de-duplicate on.

Built-ins: ``mqtt`` (publishes to the broker) and ``http-sink`` (POSTs to one
signed URL). Later domains (webhooks of partner apps) call :func:`register`.
"""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
import functools
import hashlib
import hmac
import importlib
import json
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import httpx

from linli.config import Settings, get_settings
from linli.core import mqtt
from linli.core.logging import get_logger

log = get_logger(__name__)

EVENT_ID_HEADER = "X-Linli-Event-Id"
EVENT_TYPE_HEADER = "X-Linli-Event-Type"
SIGNATURE_HEADER = "X-Linli-Signature"
MAX_NAME_LENGTH = 40  # outbox_deliveries.consumer


class DeliveryFailed(Exception):
    """A consumer could not hand the event on; the job retries it later."""


@dataclasses.dataclass(frozen=True)
class DeliveredEvent:
    """An outbox event as consumers see it."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    type: str
    payload: dict[str, Any]
    created_at: dt.datetime

    def envelope(self) -> dict[str, Any]:
        """The wire shape shared by every consumer; ``id`` lets receivers drop duplicates."""
        return {
            "id": str(self.id),
            "type": self.type,
            "tenant_id": str(self.tenant_id),
            "created_at": self.created_at.isoformat(),
            "data": self.payload,
        }

    def body(self) -> bytes:
        # Sorted, compact and fixed: the signature is computed over exactly these bytes.
        return json.dumps(
            self.envelope(), ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str
        ).encode()


class EventConsumer(abc.ABC):
    """Receives outbox events. ``handle`` returns when the event is safely handed on."""

    name: ClassVar[str]

    def enabled(self, settings: Settings) -> bool:
        """Whether this consumer can run with these settings (e.g. its URL is configured)."""
        return True

    @abc.abstractmethod
    async def handle(self, event: DeliveredEvent) -> None:
        """Deliver ``event``; raise to have it retried. Must tolerate seeing it twice."""


_registry: dict[str, EventConsumer] = {}


def register(consumer: EventConsumer) -> EventConsumer:
    name = consumer.name
    if not name or len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"consumer name must be 1..{MAX_NAME_LENGTH} characters: {name!r}")
    if name in _registry and _registry[name] is not consumer:
        raise ValueError(f"a consumer named {name!r} is already registered")
    _registry[name] = consumer
    return consumer


def registered() -> Mapping[str, EventConsumer]:
    return dict(_registry)


def configured_names(settings: Settings | None = None) -> list[str]:
    settings = settings or get_settings()
    names: list[str] = []
    for raw in settings.event_consumers.split(","):
        name = raw.strip()
        if name and name not in names:
            names.append(name)
    return names


def active_consumers(settings: Settings | None = None) -> list[EventConsumer]:
    """The consumers named in LINLI_EVENT_CONSUMERS that are enabled, in that order.

    An unknown name is a configuration error, raised rather than skipped: events
    silently never reaching a consumer someone asked for is worse than a worker
    that refuses to start.
    """
    settings = settings or get_settings()
    _load_domain_consumers()
    active: list[EventConsumer] = []
    for name in configured_names(settings):
        consumer = _registry.get(name)
        if consumer is None:
            known = ", ".join(sorted(_registry)) or "none"
            raise ValueError(
                f"LINLI_EVENT_CONSUMERS names unknown consumer {name!r} (known: {known})"
            )
        if consumer.enabled(settings):
            active.append(consumer)
        else:
            log.warning("outbox.consumer_disabled", consumer=name)
    return active


@functools.cache
def _load_domain_consumers() -> None:
    """Import every ``linli/<domain>/consumer.py``: each registers its consumer on import."""
    root = Path(__file__).resolve().parent.parent
    for path in sorted(root.glob("*/consumer.py")):
        importlib.import_module(f"linli.{path.parent.name}.consumer")


def event_topic(event: DeliveredEvent) -> str:
    """``linli/{tenant}/events/community/created`` for ``community.created``."""
    return f"linli/{event.tenant_id}/events/{event.type.replace('.', '/')}"


class MqttConsumer(EventConsumer):
    """Publishes each event (QoS 1) so devices and local services can subscribe per tenant."""

    name = "mqtt"

    async def handle(self, event: DeliveredEvent) -> None:
        # QoS 1: publish returns after the broker's PUBACK, so a recorded delivery
        # means the broker has the message.
        await mqtt.publish(event_topic(event), event.envelope(), qos=1)


def sink_secret(settings: Settings | None = None) -> bytes:
    """Key of the http-sink signature.

    Never the token-signing key itself: whoever verifies sink requests could
    then forge access tokens. Without an explicit key, one is derived from it.
    """
    settings = settings or get_settings()
    if settings.event_sink_secret is not None:
        return settings.event_sink_secret.get_secret_value().encode()
    derived = hmac.new(settings.signing_key().encode(), b"linli:event-sink:v1", hashlib.sha256)
    return derived.hexdigest().encode()


def sign(body: bytes, secret: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class HttpSinkConsumer(EventConsumer):
    """POSTs each event, signed, to LINLI_EVENT_SINK_URL; anything but 2xx is a failure."""

    name = "http-sink"

    def enabled(self, settings: Settings) -> bool:
        return bool(settings.event_sink_url)

    async def handle(self, event: DeliveredEvent) -> None:
        settings = get_settings()
        if not settings.event_sink_url:
            raise DeliveryFailed("LINLI_EVENT_SINK_URL is not set")
        body = event.body()
        headers = {
            "Content-Type": "application/json",
            EVENT_ID_HEADER: str(event.id),
            EVENT_TYPE_HEADER: event.type,
            SIGNATURE_HEADER: sign(body, sink_secret(settings)),
        }
        try:
            async with httpx.AsyncClient(timeout=settings.event_sink_timeout_seconds) as http:
                response = await http.post(settings.event_sink_url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"http-sink unreachable: {type(exc).__name__}") from exc
        if not response.is_success:
            raise DeliveryFailed(f"http-sink answered {response.status_code}")


register(MqttConsumer())
register(HttpSinkConsumer())
