"""Commands to devices and their acknowledgements, over one MQTT connection per process.

A command is published QoS 1 on the device's ``cmd`` topic; the device answers on
its ``ack`` topic with the command's ``mid``. Each process keeps one client
subscribed to every ``ack`` topic and resolves the waiting request by ``mid``, so a
remote open costs one publish and one delivery, not a connection per request.
Acks are few (one per command), so every API process seeing all of them is cheap.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
import weakref
from typing import Any

import aiomqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from linli.access import credentials, protocol
from linli.core.logging import get_logger

log = get_logger(__name__)


@dataclasses.dataclass(frozen=True)
class Ack:
    reply_to: str
    device_id: str
    status: str  # done | failed | rejected | expired
    sig: str
    detail: dict[str, Any]


def command_payload(
    *,
    device_id: uuid.UUID,
    command_id: uuid.UUID,
    kind: str,
    args: dict[str, Any],
    kid: int,
    key: Ed25519PrivateKey,
    now: float | None = None,
) -> bytes:
    now = time.time() if now is None else now
    text = protocol.dumps(
        {
            "mid": str(command_id),
            "dev": str(device_id),
            "type": kind,
            "ts": round(now, 3),
            "exp": round(now + protocol.COMMAND_TTL_SECONDS, 3),
            "args": args,
        }
    ).decode()
    return protocol.dumps(
        {"v": protocol.VERSION, "kid": kid, "cmd": text, "sig": credentials.sign_command(key, text)}
    )


class CommandBus:
    def __init__(self) -> None:
        self._client: aiomqtt.Client | None = None
        self._listener: asyncio.Task[None] | None = None
        self._waiters: dict[str, asyncio.Future[Ack]] = {}
        self._lock = asyncio.Lock()

    async def _ensure(self) -> aiomqtt.Client:
        if self._client is not None and self._listener is not None and not self._listener.done():
            return self._client
        async with self._lock:
            if self._client is not None and self._listener is not None:
                if not self._listener.done():
                    return self._client
            await self._drop()
            client = protocol.client(identifier=f"linli-cmd-{uuid.uuid4().hex[:12]}")
            await client.__aenter__()
            await client.subscribe(protocol.ACK_SUBSCRIPTION, qos=1)
            self._client = client
            self._listener = asyncio.create_task(self._listen(client), name="linli-ack-listener")
            return client

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(BaseException):
                await self._listener
            self._listener = None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.__aexit__(None, None, None)

    async def _listen(self, client: aiomqtt.Client) -> None:
        try:
            async for message in client.messages:
                payload = protocol.loads(message.payload)
                if payload is None:
                    continue
                reply_to = payload.get("re")
                waiter = self._waiters.pop(reply_to, None) if isinstance(reply_to, str) else None
                if waiter is None or waiter.done():
                    continue
                detail = payload.get("detail")
                waiter.set_result(
                    Ack(
                        str(reply_to),
                        str(payload.get("dev", "")),
                        str(payload.get("status", "")),
                        str(payload.get("sig", "")),
                        detail if isinstance(detail, dict) else {},
                    )
                )
        except aiomqtt.MqttError as exc:
            # The broker went away: the next command reconnects and resubscribes.
            log.warning("access.ack_listener_lost", error=str(exc))

    async def send(
        self,
        *,
        tenant_id: uuid.UUID,
        community_id: uuid.UUID,
        device_id: uuid.UUID,
        command_id: uuid.UUID,
        kind: str,
        args: dict[str, Any],
        kid: int,
        key: Ed25519PrivateKey,
        wait_seconds: float | None,
    ) -> Ack | None:
        """Publish and, with a timeout, wait for the ack (TimeoutError when none comes)."""
        payload = command_payload(
            device_id=device_id, command_id=command_id, kind=kind, args=args, kid=kid, key=key
        )
        target = protocol.topic(tenant_id, community_id, device_id, "cmd")
        waiter: asyncio.Future[Ack] | None = None
        if wait_seconds is not None:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters[str(command_id)] = waiter
        try:
            async with asyncio.timeout(wait_seconds):
                try:
                    client = await self._ensure()
                    await client.publish(target, payload, qos=1)
                except aiomqtt.MqttError as exc:
                    await self._drop()
                    raise TimeoutError(f"broker unreachable: {exc}") from exc
                return await waiter if waiter is not None else None
        finally:
            self._waiters.pop(str(command_id), None)

    async def close(self) -> None:
        await self._drop()


_buses: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, CommandBus] = (
    weakref.WeakKeyDictionary()
)


def bus() -> CommandBus:
    """This event loop's command bus (an aiomqtt client belongs to the loop it started in)."""
    loop = asyncio.get_running_loop()
    found = _buses.get(loop)
    if found is None:
        found = _buses[loop] = CommandBus()
    return found


async def send(**kwargs: Any) -> Ack | None:
    return await bus().send(**kwargs)
