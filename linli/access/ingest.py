"""The access-event ingest: MQTT ``evt`` and ``state`` messages into PostgreSQL, in batches.

Nothing lost, nothing doubled:

* the ingest holds a persistent MQTT session (fixed client id, clean session off)
  and acknowledges a message (PUBACK) only after the transaction holding its
  events has committed; a killed ingest leaves its messages unacknowledged and the
  broker delivers them again when it is back;
* a message delivered again inserts nothing twice: ``(tenant, device, device event
  id)`` is unique and rows go in with ``ON CONFLICT DO NOTHING``.

Refused and flagged: a message whose topic names a device that is not registered
in that company and community, is disabled, or whose ``dev`` field disagrees with
its topic. A refusal becomes one ``rejected_message`` event (at most one per device
and minute) in the company the topic names, and a log line.

Run it with ``python -m linli.access.ingest`` (the lead wires it into ``linli worker``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import signal
import time
import uuid
from collections import defaultdict
from typing import Any

import aiomqtt
import orjson
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from linli.access import protocol, service
from linli.access.models import Device, EventKind, Pass
from linli.config import get_settings
from linli.core.ids import new_id
from linli.core.logging import get_logger
from linli.core.mqtt import broker_address
from linli.db.engine import unit_of_work
from linli.tenancy import service as tenancy_service

log = get_logger(__name__)

DEVICE_EVENT_KINDS = frozenset(k.value for k in EventKind) - {EventKind.REJECTED_MESSAGE.value}
MAX_EVENTS_PER_FLUSH = 5000
FLUSH_IDLE_SECONDS = 0.002
FLUSH_MAX_AGE_SECONDS = 0.05
DEVICE_CACHE_SECONDS = 5.0
SESSION_SECONDS = 7 * 86400  # the broker keeps the ingest's backlog this long while it is away
MAX_CLOCK_SKEW_SECONDS = 86400.0
MAX_EVENT_AGE_SECONDS = 30 * 86400.0

# Rows travel as one JSON array parsed by PostgreSQL (json_to_recordset): far cheaper than
# binding thirteen arrays, and one statement per batch. Only the rows the ingest acts on
# (passes to count, plates to answer) come back, with the number inserted.
INSERT_EVENTS = text(
    """
    WITH ins AS (
        INSERT INTO access_events (tenant_id, id, community_id, device_id, device_event_id,
            access_point_id, occurred_at, kind, method, direction, pass_id, resident_id,
            plate, reason, detail)
        SELECT :tenant, e.id, e.c, e.dev, e.e, e.a, to_timestamp(e.t), e.k,
            coalesce(e.m, ''), e.d, e.p, e.res, e.l, coalesce(e.r, ''),
            coalesce(e.x, '{}'::jsonb)
        FROM json_to_recordset(CAST(:rows AS json)) AS e(id uuid, c uuid, dev uuid, e text,
            a uuid, t float8, k text, m text, d text, p uuid, res uuid, l text, r text,
            x jsonb)
        ON CONFLICT (tenant_id, device_id, device_event_id) DO NOTHING
        RETURNING pass_id, kind, device_id, plate, direction, occurred_at
    )
    SELECT NULL::uuid, '', NULL::uuid, NULL::text, NULL::text, NULL::timestamptz, count(*)
    FROM ins
    UNION ALL
    SELECT pass_id, kind, device_id, plate, direction, occurred_at, 0
    FROM ins WHERE pass_id IS NOT NULL OR kind = 'plate'
    """
)


@dataclasses.dataclass(frozen=True)
class DeviceInfo:
    tenant_id: uuid.UUID
    community_id: uuid.UUID
    access_point_id: uuid.UUID
    enabled: bool
    revocations_version: int


@dataclasses.dataclass
class Stats:
    messages: int = 0
    events: int = 0
    inserted: int = 0
    duplicates: int = 0
    refused: int = 0
    malformed: int = 0
    batches: int = 0


def _uuid(value: Any) -> uuid.UUID | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _short(value: Any, limit: int) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= limit else None


def parse_event(raw: Any, now: float) -> dict[str, Any] | None:
    """One event of a batch, checked field by field, in the shape INSERT_EVENTS reads;
    None when it cannot be stored."""
    if not isinstance(raw, dict):
        return None
    event_id = raw.get("id")
    kind = raw.get("kind")
    ts = raw.get("ts")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= 64:
        return None
    if kind not in DEVICE_EVENT_KINDS or ts.__class__ not in (int, float):
        return None
    if not now - MAX_EVENT_AGE_SECONDS < ts < now + MAX_CLOCK_SKEW_SECONDS:
        return None
    row: dict[str, Any] = {"e": event_id, "t": ts, "k": kind}
    direction = raw.get("dir")
    if direction is not None:
        if direction not in ("in", "out"):
            return None
        row["d"] = direction
    plate = raw.get("plate")
    if plate is not None:
        if _short(plate, 10) is None:
            return None
        row["l"] = plate
    method = raw.get("method")
    if method is not None:
        row["m"] = _short(method, 16) or ""
    reason = raw.get("reason")
    if reason is not None:
        row["r"] = _short(reason, 40) or ""
    pass_id = raw.get("pass")
    if pass_id is not None:
        row["p"] = _uuid(pass_id)
    detail = raw.get("detail")
    if isinstance(detail, dict) and detail and len(orjson.dumps(detail)) <= 2000:
        row["x"] = detail
    return row


class Ingest:
    def __init__(
        self,
        *,
        identifier: str = "linli-access-ingest",
        clean_session: bool = False,
    ) -> None:
        self.identifier = identifier
        self.clean_session = clean_session
        self.stats = Stats()
        self._devices: dict[tuple[uuid.UUID, uuid.UUID], tuple[float, DeviceInfo | None]] = {}
        self._tenants: dict[uuid.UUID, bool] = {}
        self._flagged: dict[tuple[uuid.UUID, uuid.UUID], float] = {}
        self._seen_tenants: set[uuid.UUID] = set()
        # The embedded broker is amqtt, which speaks only 3.1.1: no MQTT 5 attempt
        # (refused handshakes make amqtt log tracebacks). Other brokers: MQTT 5 first.
        self._mqtt5 = get_settings().mqtt_url is not None
        self._manual_ack = True
        self.ready = asyncio.Event()

    # --- devices -------------------------------------------------------------------------------

    async def _load_devices(
        self, session: AsyncSession, tenant_id: uuid.UUID, ids: set[uuid.UUID]
    ) -> dict[uuid.UUID, DeviceInfo | None]:
        now = time.monotonic()
        found: dict[uuid.UUID, DeviceInfo | None] = {}
        missing = []
        for device_id in ids:
            cached = self._devices.get((tenant_id, device_id))
            if cached is not None and now - cached[0] < DEVICE_CACHE_SECONDS:
                found[device_id] = cached[1]
            else:
                missing.append(device_id)
        if missing:
            rows = await session.execute(
                select(
                    Device.id,
                    Device.community_id,
                    Device.access_point_id,
                    Device.enabled,
                    Device.revocations_version,
                ).where(Device.id.in_(missing))
            )
            loaded = {
                row[0]: DeviceInfo(tenant_id, row[1], row[2], row[3], row[4]) for row in rows.all()
            }
            for device_id in missing:
                info = loaded.get(device_id)
                self._devices[(tenant_id, device_id)] = (now, info)
                found[device_id] = info
        return found

    async def _tenant_exists(self, session: AsyncSession, tenant_id: uuid.UUID) -> bool:
        known = self._tenants.get(tenant_id)
        if known is None:
            known = await tenancy_service.get_tenant(session, tenant_id) is not None
            self._tenants[tenant_id] = known
        return known

    # --- one flush -----------------------------------------------------------------------------

    async def handle(self, messages: list[tuple[str, bytes]]) -> None:
        """Store what a list of (topic, payload) says, in one transaction per company."""
        now = dt.datetime.now(dt.UTC)
        by_tenant: dict[uuid.UUID, list[tuple[protocol.TopicParts, dict[str, Any] | None]]] = (
            defaultdict(list)
        )
        for topic_name, payload in messages:
            self.stats.messages += 1
            if not payload:  # a retained message being cleared: nothing to store
                continue
            parts = protocol.parse_topic(topic_name)
            if parts is None or parts.leaf not in ("evt", "state"):
                self.stats.malformed += 1
                continue
            by_tenant[parts.tenant_id].append((parts, protocol.loads(payload)))
        for tenant_id, items in by_tenant.items():
            async with unit_of_work(tenant_id) as session:
                await self._handle_tenant(session, tenant_id, items, now)

    async def _handle_tenant(
        self,
        session: AsyncSession,
        tenant_id: uuid.UUID,
        items: list[tuple[protocol.TopicParts, dict[str, Any] | None]],
        now: dt.datetime,
    ) -> None:
        devices = await self._load_devices(session, tenant_id, {p.device_id for p, _ in items})
        rows: list[dict[str, Any]] = []
        clock = now.timestamp()
        seen: dict[uuid.UUID, tuple[dt.datetime, bool]] = {}
        refusals: list[tuple[protocol.TopicParts, str]] = []
        sync: list[tuple[uuid.UUID, DeviceInfo, int]] = []
        for parts, payload in items:
            info = devices.get(parts.device_id)
            reason = self._refusal(parts, payload, info)
            if reason:
                refusals.append((parts, reason))
                continue
            assert payload is not None and info is not None
            if parts.leaf == "state":
                kind = payload.get("type")
                seen[parts.device_id] = (now, kind != "offline")
                rev = payload.get("rev")
                if kind in ("online", "heartbeat") and isinstance(rev, int):
                    sync.append((parts.device_id, info, rev))
                continue
            events = payload.get("events")
            if not isinstance(events, list) or not 0 < len(events) <= protocol.MAX_BATCH:
                refusals.append((parts, "malformed"))
                continue
            seen[parts.device_id] = (now, True)
            for raw in events:
                event = parse_event(raw, clock)
                if event is None:
                    self.stats.malformed += 1
                    continue
                event["dev"], event["c"], event["a"] = (
                    parts.device_id,
                    info.community_id,
                    info.access_point_id,
                )
                rows.append(event)
        self._seen_tenants.add(tenant_id)
        if rows:
            await self._insert(session, tenant_id, rows)
        if seen:
            await service.mark_seen(session, seen)
        if refusals:
            await self._flag(session, tenant_id, refusals, now)
        if sync:
            await self._sync_revocations(session, tenant_id, sync)

    def _refusal(
        self,
        parts: protocol.TopicParts,
        payload: dict[str, Any] | None,
        info: DeviceInfo | None,
    ) -> str:
        if info is None:
            return "unknown_device"
        if info.community_id != parts.community_id:
            return "wrong_community"
        if not info.enabled:
            return "device_disabled"
        if payload is None:
            return "malformed"
        if payload.get("dev") != str(parts.device_id):
            return "device_mismatch"
        return ""

    async def _insert(
        self, session: AsyncSession, tenant_id: uuid.UUID, rows: list[dict[str, Any]]
    ) -> None:
        passes = {r["p"] for r in rows if r.get("p") is not None}
        holders: dict[uuid.UUID, uuid.UUID | None] = {}
        if passes:
            found = await session.execute(
                select(Pass.id, Pass.resident_id).where(Pass.id.in_(passes))
            )
            holders = {pass_id: resident for pass_id, resident in found.all()}
        for row in rows:
            row["id"] = new_id()
            pass_id = row.get("p")
            if pass_id is not None:
                if pass_id in holders:
                    row["res"] = holders[pass_id]
                else:
                    row["p"] = None  # not a pass of this company: keep the event, not the link
        result = await session.execute(
            INSERT_EVENTS, {"tenant": tenant_id, "rows": orjson.dumps(rows).decode()}
        )
        returned = result.all()
        inserted = int(returned[0][6])
        self.stats.events += len(rows)
        self.stats.inserted += inserted
        self.stats.duplicates += len(rows) - inserted
        self.stats.batches += 1
        uses: dict[uuid.UUID, int] = defaultdict(int)
        plates = []
        for pass_id, kind, device_id, plate, direction, occurred_at, _ in returned[1:]:
            if pass_id is not None and kind == EventKind.OPEN.value:
                uses[pass_id] += 1
            if kind == EventKind.PLATE.value and plate and direction:
                plates.append((device_id, plate, direction, occurred_at))
        if uses:
            await service.count_pass_uses(session, dict(uses))
        if plates:
            communities = {r["dev"]: (r["c"], r["a"]) for r in rows}
            for device_id, plate, direction, occurred_at in plates:
                community_id, _point = communities[device_id]
                await self._plate(
                    session, tenant_id, device_id, community_id, plate, direction, occurred_at
                )

    async def _plate(
        self,
        session: AsyncSession,
        tenant_id: uuid.UUID,
        device_id: uuid.UUID,
        community_id: uuid.UUID,
        plate: str,
        direction: str,
        occurred_at: dt.datetime,
    ) -> None:
        decision = await service.vehicle_passes(
            session,
            tenant_id,
            device_id=device_id,
            community_id=community_id,
            plate=plate,
            direction=direction,
            at=occurred_at,
        )
        kid, key = await service.signing_key(session, tenant_id, community_id)
        from linli.access import commands

        args: dict[str, Any] = {"plate": plate, "reason": decision.reason}
        if decision.fee is not None:
            args["fee"] = str(decision.fee)
        with contextlib.suppress(TimeoutError):
            await commands.send(
                tenant_id=tenant_id,
                community_id=community_id,
                device_id=device_id,
                command_id=new_id(),
                kind="open" if decision.open and not decision.fee else "display",
                args=args,
                kid=kid,
                key=key,
                wait_seconds=None,
            )

    async def _flag(
        self,
        session: AsyncSession,
        tenant_id: uuid.UUID,
        refusals: list[tuple[protocol.TopicParts, str]],
        now: dt.datetime,
    ) -> None:
        self.stats.refused += len(refusals)
        if not await self._tenant_exists(session, tenant_id):
            log.warning("access.ingest_refused", reason="unknown_tenant", count=len(refusals))
            return
        clock = time.monotonic()
        rows = []
        for parts, reason in refusals:
            log.warning(
                "access.ingest_refused",
                reason=reason,
                tenant=str(tenant_id),
                device=str(parts.device_id),
            )
            key = (tenant_id, parts.device_id)
            if clock - self._flagged.get(key, -1e9) < 60:
                continue
            self._flagged[key] = clock
            rows.append((parts, reason))
        if not rows:
            return
        await session.execute(
            text(
                "INSERT INTO access_events (tenant_id, id, community_id, device_id,"
                " device_event_id, occurred_at, kind, reason, detail)"
                " SELECT :tenant, x.id, x.community, x.device, x.eid, :now, 'rejected_message',"
                " x.reason, '{}'::jsonb FROM unnest(CAST(:ids AS uuid[]),"
                " CAST(:communities AS uuid[]), CAST(:devices AS uuid[]), CAST(:eids AS text[]),"
                " CAST(:reasons AS text[])) AS x(id, community, device, eid, reason)"
                " ON CONFLICT DO NOTHING"
            ),
            {
                "tenant": tenant_id,
                "now": now,
                "ids": [new_id() for _ in rows],
                "communities": [p.community_id for p, _ in rows],
                "devices": [p.device_id for p, _ in rows],
                "eids": [f"flag-{new_id()}" for _ in rows],
                "reasons": [r for _, r in rows],
            },
        )

    async def _sync_revocations(
        self,
        session: AsyncSession,
        tenant_id: uuid.UUID,
        devices: list[tuple[uuid.UUID, DeviceInfo, int]],
    ) -> None:
        """A device reporting an older revocation list gets the entries it lacks."""
        from linli.access import commands

        for device_id, info, held in devices:
            latest, passes = await service.revocation_list(session, info.community_id, since=held)
            if latest <= held:
                continue
            kid, key = await service.signing_key(session, tenant_id, info.community_id)
            with contextlib.suppress(TimeoutError):
                await commands.send(
                    tenant_id=tenant_id,
                    community_id=info.community_id,
                    device_id=device_id,
                    command_id=new_id(),
                    kind="revocations",
                    args={"since": held, "version": latest, "passes": [str(p) for p in passes]},
                    kid=kid,
                    key=key,
                    wait_seconds=None,
                )

    async def sweep_offline(self) -> None:
        """Devices silent for OFFLINE_AFTER_SECONDS are shown offline (no last will came)."""
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=protocol.OFFLINE_AFTER_SECONDS)
        for tenant_id in list(self._seen_tenants):
            async with unit_of_work(tenant_id) as session:
                await service.mark_silent_offline(session, older_than=cutoff)

    # --- the loop ------------------------------------------------------------------------------

    async def run(self, *, stop: asyncio.Event | None = None) -> None:
        """Consume until ``stop`` is set; reconnects (and resubscribes) when the broker drops."""
        stop = stop or asyncio.Event()
        delay = 0.2
        while not stop.is_set():
            try:
                await self._session(stop)
                delay = 0.2
            except aiomqtt.MqttError as exc:
                log.warning("access.ingest_disconnected", error=str(exc))
                self.ready.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, 5.0)

    async def _session(self, stop: asyncio.Event) -> None:
        _, _, username, password = broker_address()
        # A named client: brokers (amqtt among them) keep QoS 1 messages only for a named
        # persistent session while it is away. MQTT 5 first (no broker-imposed cap on
        # unacknowledged messages), 3.1.1 for brokers that do not speak it (amqtt 0.12).
        client = protocol.client(
            self.identifier,
            username=username or self.identifier,
            password=password,
            clean_session=self.clean_session,
            mqtt5_session_seconds=(0 if self.clean_session else SESSION_SECONDS)
            if self._mqtt5
            else None,
            # A broker without MQTT 5 (amqtt) does not answer at all: do not wait long.
            timeout=3.0 if self._mqtt5 else 10.0,
        )
        # Acknowledge after commit, not on receipt: the broker keeps what we have not stored.
        # Only with MQTT 5: the 3.1.1 fallback is for amqtt, which redelivers nothing to a
        # reconnecting client anyway and stalls while acknowledgements are held back.
        self._manual_ack = self._mqtt5
        client._client.manual_ack_set(self._manual_ack)  # aiomqtt does not expose it
        try:
            await client.__aenter__()
        except aiomqtt.MqttError:
            if not self._mqtt5:
                raise
            self._mqtt5 = False
            log.info("access.ingest_mqtt311", reason="the broker refused MQTT 5")
            return
        try:
            await self._consume(client, stop)
        finally:
            with contextlib.suppress(Exception):
                await client.__aexit__(None, None, None)

    async def _consume(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        await client.subscribe([(protocol.EVT_SUBSCRIPTION, 1), (protocol.STATE_SUBSCRIPTION, 1)])
        self.ready.set()
        reader = _Reader(client.messages.__aiter__())
        sweep_at = time.monotonic() + protocol.HEARTBEAT_SECONDS
        try:
            while not stop.is_set():
                first = await reader.next(0.5)
                if first is not None:
                    batch = [first]
                    await self._fill(reader, batch)
                    await self.handle([(m.topic.value, bytes(m.payload)) for m in batch])
                    if self._manual_ack:
                        for message in batch:
                            if message.qos > 0:
                                client._client.ack(message.mid, message.qos)
                if time.monotonic() >= sweep_at:
                    await self.sweep_offline()
                    sweep_at = time.monotonic() + protocol.HEARTBEAT_SECONDS
        finally:
            reader.close()

    async def _fill(self, reader: _Reader, batch: list[aiomqtt.Message]) -> None:
        started = time.monotonic()
        events = 0
        while events < MAX_EVENTS_PER_FLUSH and time.monotonic() - started < FLUSH_MAX_AGE_SECONDS:
            message = await reader.next(FLUSH_IDLE_SECONDS)
            if message is None:
                return
            batch.append(message)
            events += 1 if len(message.payload) < 400 else protocol.MAX_BATCH


class _Reader:
    """Next message within a time limit, never dropping one.

    ``asyncio.wait_for`` on the iterator would cancel a read that has just taken a message
    off the queue when the timeout strikes at that moment (Python 3.11), losing it; here
    the pending read survives the timeout and is picked up next time.
    """

    def __init__(self, iterator: Any) -> None:
        self._iterator = iterator
        self._pending: asyncio.Future[aiomqtt.Message] | None = None

    async def next(self, seconds: float) -> aiomqtt.Message | None:
        if self._pending is None:
            self._pending = asyncio.ensure_future(self._iterator.__anext__())
        done, _ = await asyncio.wait({self._pending}, timeout=seconds)
        if not done:
            return None
        finished, self._pending = self._pending, None
        return finished.result()

    def close(self) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        if pending.done():
            if not pending.cancelled():
                pending.exception()  # seen: the connection's end, handled by the caller
        else:
            pending.cancel()  # unacknowledged, so the broker delivers it again


def main() -> None:
    from linli.config import get_settings
    from linli.core import logging as linli_logging

    settings = get_settings()
    linli_logging.configure(settings.log_level, json=settings.log_json)
    from linli.access.settings import get_access_settings

    ingest = Ingest(identifier=get_access_settings().ingest_id)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await ingest.run(stop=stop)

    asyncio.run(run())


if __name__ == "__main__":
    main()
