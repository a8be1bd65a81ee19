"""The device protocol's topics and messages (docs/device-protocol.md is the vendors' copy).

Topics, one tree per device::

    linli/{tenant}/{community}/{device}/cmd    server -> device, signed commands
    linli/{tenant}/{community}/{device}/ack    device -> server, signed command results
    linli/{tenant}/{community}/{device}/evt    device -> server, batches of access events
    linli/{tenant}/{community}/{device}/state  device -> server, online / heartbeat / offline

Every payload is a JSON object with ``"v": 1``; all messages are QoS 1.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
import uuid
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from linli.core.mqtt import broker_address

VERSION = 1
MAX_BATCH = 100
MAX_PAYLOAD = 64 * 1024
HEARTBEAT_SECONDS = 30
# A device is shown offline when nothing came for this long, even without a last will.
OFFLINE_AFTER_SECONDS = 3 * HEARTBEAT_SECONDS
COMMAND_TTL_SECONDS = 10

EVT_SUBSCRIPTION = "linli/+/+/+/evt"
STATE_SUBSCRIPTION = "linli/+/+/+/state"
ACK_SUBSCRIPTION = "linli/+/+/+/ack"

# Nagle's algorithm holds a small MQTT packet back until the previous one is acknowledged
# (40-90 ms with delayed ACKs): every client of ours sends its packets at once instead.
NODELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)


def topic(
    tenant_id: uuid.UUID | str, community_id: uuid.UUID | str, device: uuid.UUID | str, leaf: str
) -> str:
    return f"linli/{tenant_id}/{community_id}/{device}/{leaf}"


@dataclasses.dataclass(frozen=True)
class TopicParts:
    tenant_id: uuid.UUID
    community_id: uuid.UUID
    device_id: uuid.UUID
    leaf: str


def parse_topic(name: str) -> TopicParts | None:
    parts = name.split("/")
    if len(parts) != 5 or parts[0] != "linli" or parts[4] not in ("cmd", "ack", "evt", "state"):
        return None
    try:
        return TopicParts(uuid.UUID(parts[1]), uuid.UUID(parts[2]), uuid.UUID(parts[3]), parts[4])
    except ValueError:
        return None


def dumps(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def loads(raw: bytes | bytearray | str) -> dict[str, Any] | None:
    """A JSON object of this protocol version, or None for anything else."""
    if isinstance(raw, (bytes, bytearray)) and len(raw) > MAX_PAYLOAD:
        return None
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(value, dict) or value.get("v") != VERSION:
        return None
    return value


_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


class _Client(aiomqtt.Client):
    """aiomqtt with delayed ACKs off after every read.

    TCP_NODELAY stops *our* side from holding packets back. A broker that leaves Nagle on
    (Mosquitto's default) still holds its next small packet until we acknowledge the
    previous one, and Linux delays that ACK by up to 40 ms: a PUBACK followed by the
    device's answer costs a whole delayed-ACK period. Quick ACKs remove the wait on our
    side; ``set_tcp_nodelay true`` on the broker removes it on its side.
    """

    def _on_socket_open(self, client: Any, userdata: Any, sock: Any) -> None:
        super()._on_socket_open(client, userdata, sock)
        if _QUICKACK is None or not isinstance(sock, socket.socket):
            return

        def read() -> None:
            try:
                client.loop_read()
            except Exception as exc:  # a broken connection: let aiomqtt see it
                if not self._disconnected.done():
                    self._disconnected.set_exception(exc)
                return
            with contextlib.suppress(OSError):  # closed by that read: nothing to tune
                sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)

        # Queued after aiomqtt's own add_reader, so this callback replaces it.
        self._loop.call_soon_threadsafe(self._loop.add_reader, sock.fileno(), read)


def client(
    identifier: str | None = None,
    *,
    username: str | None = None,
    password: str | None = None,
    will: aiomqtt.Will | None = None,
    clean_session: bool | None = None,
    keepalive: int = 60,
    mqtt5_session_seconds: int | None = None,
    timeout: float = 10.0,
) -> aiomqtt.Client:
    """An MQTT client of linli or of a simulated device: the configured broker, TCP_NODELAY.

    With ``mqtt5_session_seconds`` the client speaks MQTT 5 (session kept that long after a
    disconnect; 0 = a clean session). MQTT 5 lets the client set how many unacknowledged
    messages it takes at once (Receive Maximum); MQTT 3.1.1 brokers impose their own limit
    (Mosquitto: 20), which throttles a consumer that acknowledges after it has stored.
    """
    host, port, default_user, default_password = broker_address()
    extra: dict[str, Any] = {}
    if mqtt5_session_seconds is not None:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = mqtt5_session_seconds
        properties.ReceiveMaximum = 65535
        extra = {
            "protocol": aiomqtt.ProtocolVersion.V5,
            "properties": properties,
            "clean_start": mqtt5_session_seconds == 0,
        }
    else:
        extra = {"clean_session": clean_session}
    return _Client(
        host,
        port,
        username=username if username is not None else default_user,
        password=password if username is not None else default_password,
        identifier=identifier,
        will=will,
        keepalive=keepalive,
        timeout=timeout,
        socket_options=NODELAY,
        max_queued_outgoing_messages=100_000,
        **extra,
    )
