"""Virtual access devices (设备模拟器): what a vendor's firmware does, in one asyncio process.

Each virtual device connects with its own credentials and a last will, says it is
online (retained), heartbeats, executes signed commands and acknowledges them,
checks QR passes offline with the community key and its synced revocation list,
and publishes events in batches, buffering them while the broker is away.
``linli device-sim`` runs a fleet of them; tests and benchmarks use them in-process.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import itertools
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import aiomqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from linli.access import credentials, protocol
from linli.access.models import DeviceKind

SIM_VENDOR = "linli-sim"


@dataclasses.dataclass(frozen=True)
class DeviceConfig:
    """What an installer gives a device at provisioning."""

    tenant_id: uuid.UUID
    community_id: uuid.UUID
    device_id: uuid.UUID
    access_point_id: uuid.UUID
    kind: DeviceKind
    mqtt_password: str
    private_key: Ed25519PrivateKey
    community_keys: dict[int, bytes]

    @classmethod
    def from_provisioned(cls, provisioned: Any) -> DeviceConfig:
        device = provisioned.device
        return cls(
            tenant_id=provisioned.tenant_id,
            community_id=device.community_id,
            device_id=device.id,
            access_point_id=device.access_point_id,
            kind=device.kind,
            mqtt_password=provisioned.mqtt_password,
            private_key=Ed25519PrivateKey.from_private_bytes(
                credentials.b64decode(provisioned.private_key)
            ),
            community_keys={
                kid: credentials.b64decode(raw) for kid, raw in provisioned.community_keys.items()
            },
        )

    def topic(self, leaf: str) -> str:
        return protocol.topic(self.tenant_id, self.community_id, self.device_id, leaf)


class VirtualDevice:
    def __init__(
        self,
        config: DeviceConfig,
        *,
        heartbeat_seconds: float = protocol.HEARTBEAT_SECONDS,
        batch: int = protocol.MAX_BATCH,
        answer: bool = True,
    ) -> None:
        self.config = config
        self.heartbeat_seconds = heartbeat_seconds
        self.batch = max(1, min(batch, protocol.MAX_BATCH))
        self.answer = answer  # False: a device that hangs (receives, never acknowledges)
        self.verifier = credentials.PassVerifier(
            community_id=config.community_id,
            access_point_id=config.access_point_id,
            keys=config.community_keys,
        )
        self._keys = {
            kid: Ed25519PublicKey.from_public_bytes(raw)
            for kid, raw in config.community_keys.items()
        }
        self.revocations_version = 0
        self.connected = asyncio.Event()
        self.opened: list[str] = []  # mids of open commands executed
        self.refused_commands: list[str] = []
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._outbox: collections.deque[dict[str, Any]] = collections.deque()
        self._wakeup = asyncio.Event()
        self._counter = itertools.count(1)
        self._boot = uuid.uuid4().hex[:8]
        self._client: aiomqtt.Client | None = None
        self.published_events = 0

    # --- what happens at the door ----------------------------------------------------------

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"id": f"{self._boot}-{next(self._counter)}", "ts": round(time.time(), 3)}
        event["kind"] = kind
        event.update({k: v for k, v in fields.items() if v is not None})
        return event

    def queue(self, event: dict[str, Any]) -> None:
        self._outbox.append(event)
        self._wakeup.set()

    def scan(self, token: str) -> credentials.Verdict:
        """Someone holds a QR code to the reader: decide offline, log the event."""
        verdict = self.verifier.check(token, now=time.time())
        claims = verdict.claims
        self.queue(
            self._event(
                "open" if verdict.ok else "denied",
                method="qr",
                dir="in",
                **{"pass": str(claims.pass_id) if claims else None},
                reason=verdict.refusal.value if verdict.refusal else None,
            )
        )
        return verdict

    def plate(self, plate: str, direction: str) -> None:
        self.queue(self._event("plate", method="plate", dir=direction, plate=plate))

    def alarm(self, kind: str = "alarm_held_open") -> None:
        self.queue(self._event(kind))

    # --- MQTT ------------------------------------------------------------------------------

    def _state(self, kind: str) -> bytes:
        return protocol.dumps(
            {
                "v": protocol.VERSION,
                "type": kind,
                "dev": str(self.config.device_id),
                "ts": round(time.time(), 3),
                "fw": "sim-1",
                "rev": self.revocations_version,
            }
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Stay connected until ``stop``; after a broker restart, reconnect and resubscribe."""
        delay = 0.1
        while not stop.is_set():
            try:
                await self._connected_session(stop)
                delay = 0.1
            except aiomqtt.MqttError:
                self.connected.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, 3.0)

    async def _connected_session(self, stop: asyncio.Event) -> None:
        will = aiomqtt.Will(self.config.topic("state"), self._state("offline"), qos=1, retain=True)
        client = protocol.client(
            f"dev-{self.config.device_id}",
            username=str(self.config.device_id),
            password=self.config.mqtt_password,
            will=will,
            clean_session=True,
            keepalive=max(5, int(self.heartbeat_seconds * 2)),
        )
        async with client:
            self._client = client
            await client.subscribe(self.config.topic("cmd"), qos=1)
            await client.publish(
                self.config.topic("state"), self._state("online"), qos=1, retain=True
            )
            self.connected.set()
            tasks = [
                asyncio.create_task(self._commands(client)),
                asyncio.create_task(self._heartbeat(client)),
                asyncio.create_task(self._publisher(client)),
            ]
            stopper = asyncio.create_task(stop.wait())
            try:
                done, _ = await asyncio.wait([*tasks, stopper], return_when="FIRST_COMPLETED")
                for task in done:
                    if task is not stopper and task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]
                if stop.is_set():
                    await self._flush(client)
                    with contextlib.suppress(aiomqtt.MqttError):
                        await client.publish(
                            self.config.topic("state"), self._state("offline"), qos=1, retain=True
                        )
            finally:
                self.connected.clear()
                self._client = None
                for task in [*tasks, stopper]:
                    task.cancel()
                await asyncio.gather(*tasks, stopper, return_exceptions=True)

    async def _heartbeat(self, client: aiomqtt.Client) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            await client.publish(
                self.config.topic("state"), self._state("heartbeat"), qos=1, retain=True
            )

    async def _publisher(self, client: aiomqtt.Client) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            await self._flush(client)

    async def _flush(self, client: aiomqtt.Client) -> None:
        while self._outbox:
            events = [self._outbox[i] for i in range(min(self.batch, len(self._outbox)))]
            message = {
                "v": protocol.VERSION,
                "mid": uuid.uuid4().hex,
                "dev": str(self.config.device_id),
                "events": events,
            }
            # Taken off the buffer only once the broker has it (PUBACK): a broker that goes
            # away mid-publish gets the same events again later, and the ingest drops repeats.
            await client.publish(self.config.topic("evt"), protocol.dumps(message), qos=1)
            for _ in events:
                self._outbox.popleft()
            self.published_events += len(events)

    async def _commands(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            await self._execute(client, message.payload)

    def _verified_command(self, raw: bytes) -> dict[str, Any] | None:
        envelope = protocol.loads(raw)
        if envelope is None:
            return None
        text, signature, kid = envelope.get("cmd"), envelope.get("sig"), envelope.get("kid")
        key = self._keys.get(kid) if isinstance(kid, int) else None
        if not isinstance(text, str) or not isinstance(signature, str) or key is None:
            return None
        if not credentials.verify_command(key, text, signature):
            return None
        try:
            command = json.loads(text)
        except ValueError:
            return None
        if not isinstance(command, dict) or command.get("dev") != str(self.config.device_id):
            return None
        return command

    async def _execute(self, client: aiomqtt.Client, raw: bytes) -> None:
        command = self._verified_command(raw)
        if command is None:
            self.refused_commands.append("invalid")
            return
        mid = str(command.get("mid"))
        if mid in self._seen:  # QoS 1 may deliver twice: execute once
            return
        self._seen[mid] = None
        if len(self._seen) > 1000:
            self._seen.popitem(last=False)
        kind = command.get("type")
        status = "done"
        if float(command.get("exp", 0)) < time.time():
            status = "expired"  # queued while we were away: never open a door late
        elif kind == "open":
            self.opened.append(mid)
            self.queue(self._event("open", method="remote", dir="in", reason=None))
        elif kind == "revocations":
            args = command.get("args") or {}
            if int(args.get("since", -1)) <= self.revocations_version:
                self.verifier.revoked.update(uuid.UUID(p) for p in args.get("passes", []))
                self.revocations_version = max(self.revocations_version, int(args["version"]))
        elif kind != "display":
            status = "rejected"
        if not self.answer:
            return
        ack = {
            "v": protocol.VERSION,
            "re": mid,
            "dev": str(self.config.device_id),
            "status": status,
            "sig": credentials.sign_ack(
                self.config.private_key, mid, self.config.device_id, status
            ),
        }
        await client.publish(self.config.topic("ack"), protocol.dumps(ack), qos=1)

    @property
    def pending(self) -> int:
        return len(self._outbox)


class Fleet:
    """Many virtual devices on one event loop."""

    def __init__(self, devices: list[VirtualDevice]) -> None:
        self.devices = devices
        self.stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, *, wait_seconds: float = 60.0, concurrency: int = 50) -> None:
        gate = asyncio.Semaphore(concurrency)

        async def launch(device: VirtualDevice) -> None:
            async with gate:
                self._tasks.append(asyncio.create_task(device.run(self.stop)))
                await asyncio.wait_for(device.connected.wait(), wait_seconds)

        await asyncio.gather(*(launch(d) for d in self.devices))

    async def close(self) -> None:
        self.stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def drain(self, wait_seconds: float = 30.0) -> None:
        deadline = time.monotonic() + wait_seconds
        while any(d.pending for d in self.devices) and time.monotonic() < deadline:  # noqa: ASYNC110 - polls many devices' buffers
            await asyncio.sleep(0.01)

    async def emit(
        self,
        *,
        rate: float,
        seconds: float,
        make: Callable[[VirtualDevice], None] | None = None,
    ) -> int:
        """Produce about ``rate`` events per second across the fleet for ``seconds``."""
        make = make or (lambda device: device.queue(device._event("open", method="card")))
        started = time.monotonic()
        produced = 0
        cycle = itertools.cycle(self.devices)
        while (elapsed := time.monotonic() - started) < seconds:
            due = int(rate * elapsed) - produced
            for _ in range(max(0, due)):
                make(next(cycle))
            produced += max(0, due)
            await asyncio.sleep(0.005)
        return produced


# --- provisioning a simulated fleet ----------------------------------------------------------


async def provision_fleet(
    tenant_id: uuid.UUID, community_id: uuid.UUID, count: int
) -> list[DeviceConfig]:
    """Devices ``sim-0001``.. at the community's first gate (made if missing), with fresh
    credentials: only their hashes are stored, so a simulator rotates them to learn them."""
    from sqlalchemy import select

    from linli.access import service
    from linli.access.models import AccessPointKind, Device
    from linli.auth.actor import Actor
    from linli.core.pagination import PageParams
    from linli.db.engine import unit_of_work

    system = Actor.system(tenant_id)
    configs = []
    async with unit_of_work(tenant_id) as session:
        points, _ = await service.list_access_points(
            session, system, community_id=community_id, page=PageParams(limit=200)
        )
        gate = next((p for p in points if p.kind is AccessPointKind.COMMUNITY_GATE), None)
        if gate is None:
            gate = await service.create_access_point(
                session,
                system,
                community_id=community_id,
                kind=AccessPointKind.COMMUNITY_GATE,
                name="模拟大门",
            )
        # Simulated devices only (vendor linli-sim, as the demo seeds them): rotating a real
        # device's credentials would lock it out.
        existing = list(
            (
                await session.scalars(
                    select(Device)
                    .where(Device.community_id == community_id, Device.vendor == SIM_VENDOR)
                    .order_by(Device.name)
                    .limit(count)
                )
            ).all()
        )
        names = {d.name for d in existing}
        fresh = (f"sim-{n:04d}" for n in itertools.count(1))
        for n in range(count):
            if n < len(existing):
                provisioned = await service.rotate_device_credentials(
                    session, system, device_id=existing[n].id
                )
            else:
                name = next(x for x in fresh if x not in names)
                provisioned = await service.provision_device(
                    session,
                    system,
                    access_point_id=gate.id,
                    kind=DeviceKind.DOOR_CONTROLLER,
                    name=name,
                    vendor=SIM_VENDOR,
                )
            configs.append(DeviceConfig.from_provisioned(provisioned))
    return configs


async def find_community_tenant(community_id: uuid.UUID) -> uuid.UUID | None:
    """The company of a community, looked up company by company (a developer tool's path)."""
    from linli.auth.actor import Actor
    from linli.core.errors import NotFound
    from linli.core.pagination import PageParams
    from linli.db.engine import set_tenant, unit_of_work
    from linli.estate import service as estate
    from linli.tenancy import service as tenancy_service

    async with unit_of_work() as session:
        cursor = None
        while True:
            tenants, cursor = await tenancy_service.list_tenants(
                session, Actor.system(), page=PageParams(cursor=cursor, limit=200)
            )
            for tenant in tenants:
                await set_tenant(session, tenant.id)
                try:
                    await estate.get_community(
                        session, Actor.system(tenant.id), community_id=community_id
                    )
                except NotFound:
                    continue
                return tenant.id
            if cursor is None:
                return None


async def run_cli(
    *,
    devices: int,
    community_id: uuid.UUID,
    rate: float,
    seconds: float | None,
    batch: int,
    heartbeat: float,
    report: Callable[[str], None],
) -> None:
    tenant_id = await find_community_tenant(community_id)
    if tenant_id is None:
        raise ValueError(f"no community {community_id}")
    configs = await provision_fleet(tenant_id, community_id, devices)
    fleet = Fleet([VirtualDevice(c, heartbeat_seconds=heartbeat, batch=batch) for c in configs])
    await fleet.start()
    report(f"{len(configs)} devices online in community {community_id}")
    try:
        if rate > 0:
            produced = await fleet.emit(rate=rate, seconds=seconds or float("inf"))
            await fleet.drain()
            report(f"published {produced} events")
        elif seconds:
            await asyncio.sleep(seconds)
        else:
            await asyncio.Event().wait()
    finally:
        await fleet.close()
