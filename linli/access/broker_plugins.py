"""Plugins for the embedded amqtt broker: named sessions and the device topic fence.

``linli.core.broker`` allows anonymous clients on loopback. amqtt then treats every
session as anonymous and keeps no QoS 1 messages for a disconnected persistent
session, so the event ingest would lose what arrives while it restarts. With
:class:`NamedSessions` a client that presents a username (the ingest, a device)
gets a real session; clients without one stay anonymous as before.

:class:`DeviceTopics` is the broker-side fence of docs/device-protocol.md: a client
whose username is a UUID (a device) may publish only to its own ``evt``, ``state``
and ``ack`` topics and subscribe only to its own ``cmd`` topic. The ingest checks
the company and community of every topic again (it cannot trust a broker it does
not run), so this fence is the first line, not the only one.

To use them, name both in ``broker_config``'s ``plugins``::

    "linli.access.broker_plugins.NamedSessions": {},
    "linli.access.broker_plugins.DeviceTopics": {},
"""

from __future__ import annotations

import uuid
from typing import Any

from amqtt.plugins.authentication import BaseAuthPlugin
from amqtt.plugins.base import BaseTopicPlugin

DEVICE_PUBLISH = frozenset({"evt", "state", "ack"})


def _device(username: str | None) -> str | None:
    if not username:
        return None
    try:
        return str(uuid.UUID(username))
    except ValueError:
        return None


def device_may(username: str | None, topic: str, action: str) -> bool:
    """Whether a client may ``publish``/``subscribe``/``receive`` on ``topic``."""
    device = _device(username)
    if device is None:
        return True  # linli's own clients (ingest, command bus), fenced by credentials
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != "linli" or parts[3] != device:
        return False
    if action == "publish":
        return parts[4] in DEVICE_PUBLISH
    return parts[4] == "cmd"


class NamedSessions(BaseAuthPlugin):  # type: ignore[misc]
    async def authenticate(self, *, session: Any) -> bool:
        session.is_anonymous = not bool(getattr(session, "username", None))
        return True


class DeviceTopics(BaseTopicPlugin):  # type: ignore[misc]
    async def topic_filtering(
        self, *, session: Any = None, topic: str | None = None, action: Any = None
    ) -> bool:
        if session is None or topic is None or action is None:
            return True
        name = str(getattr(action, "value", action)).lower()
        return device_may(getattr(session, "username", None), topic, name)
