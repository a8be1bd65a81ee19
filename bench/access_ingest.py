"""Benchmark ``access-ingest``: access events from ``--size`` simulated devices (a second
process) through the broker into PostgreSQL by the ingest worker (a third process),
sustained for ``--seconds``; the rate counts events stored and queryable.

``checks.lost`` = events published − events stored (must be 0); ``checks.duplicates``
= rows beyond the distinct (device, event id) pairs (0). ``limit_rate`` is PostgreSQL's
``COPY`` of the same number of rows into the same table (same indexes), measured in the
same run. Devices send up to 100 events per message (``--batch``); a shorter run with
one event per message gives ``checks.unbatched_rate``.

Uses the configured broker (LINLI_MQTT_URL), else starts the embedded one.

    python bench/access_ingest.py [--size 1000] [--seconds 60] [--rate 25000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from remote_open import _with_broker

# --- the device process --------------------------------------------------------------------------


async def fleet_main(path: str) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from linli.access import credentials
    from linli.access.models import DeviceKind
    from linli.access.simulator import DeviceConfig, Fleet, VirtualDevice

    raw = json.loads(Path(path).read_text())  # noqa: ASYNC240 - once, before anything runs
    configs = [
        DeviceConfig(
            tenant_id=uuid.UUID(c["tenant_id"]),
            community_id=uuid.UUID(c["community_id"]),
            device_id=uuid.UUID(c["device_id"]),
            access_point_id=uuid.UUID(c["access_point_id"]),
            kind=DeviceKind.DOOR_CONTROLLER,
            mqtt_password=c["mqtt_password"],
            private_key=Ed25519PrivateKey.from_private_bytes(
                credentials.b64decode(c["private_key"])
            ),
            community_keys={int(k): credentials.b64decode(v) for k, v in c["keys"].items()},
        )
        for c in raw
    ]
    devices = [VirtualDevice(c, heartbeat_seconds=300) for c in configs]
    fleet = Fleet(devices)
    await fleet.start(wait_seconds=180, concurrency=20)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line.strip():
            break
        rate, seconds, batch = (float(x) for x in line.split())
        size = int(batch)
        for device in devices:
            device.batch = size

        def burst(device: VirtualDevice, size: int = size) -> None:
            for _ in range(size):
                device.queue(device._event("open", method="card", dir="in"))

        messages = await fleet.emit(rate=rate / size, seconds=seconds, make=burst)
        await fleet.drain(120)
        print(json.dumps({"events": messages * size}), flush=True)
    await fleet.close()


# --- the measuring process -----------------------------------------------------------------------


async def _setup(size: int) -> tuple[uuid.UUID, uuid.UUID, list[dict[str, Any]]]:
    from linli.access import service
    from linli.access.models import AccessPointKind, DeviceKind
    from linli.auth.actor import Actor
    from linli.db.engine import unit_of_work
    from linli.tenancy import service as tenancy_service

    async with unit_of_work() as session:
        tenant = await tenancy_service.create_tenant(
            session,
            Actor.system(),
            slug=f"bench-{secrets.token_hex(4)}",
            name="通行记录基准物业",
            admin_username="admin",
            admin_display_name="管理员",
            admin_password=secrets.token_urlsafe(16),
        )
    system = Actor.system(tenant.id)
    configs = []
    async with unit_of_work(tenant.id) as session:
        community = await tenancy_service.create_community(
            session, system, code="I01", name="基准小区"
        )
        gate = await service.create_access_point(
            session,
            system,
            community_id=community.id,
            kind=AccessPointKind.COMMUNITY_GATE,
            name="大门",
        )
        for n in range(size):
            provisioned = await service.provision_device(
                session,
                system,
                access_point_id=gate.id,
                kind=DeviceKind.DOOR_CONTROLLER,
                name=f"ingest-{n:04d}",
            )
            configs.append(
                {
                    "tenant_id": str(tenant.id),
                    "community_id": str(community.id),
                    "device_id": str(provisioned.device.id),
                    "access_point_id": str(gate.id),
                    "mqtt_password": provisioned.mqtt_password,
                    "private_key": provisioned.private_key,
                    "keys": provisioned.community_keys,
                }
            )
    return tenant.id, community.id, configs


def _stored(owner: str, tenant_id: uuid.UUID) -> tuple[int, int]:
    import psycopg

    with psycopg.connect(owner) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT (device_id, device_event_id)) FROM access_events"
            " WHERE tenant_id = %s AND kind = 'open'",
            (tenant_id,),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _copy_limit(owner: str, rows: int, devices: list[str], community: str) -> float:
    """COPY ``rows`` event rows of a scratch tenant into access_events; rows per second."""
    import psycopg

    from linli.core.ids import new_id

    tenant = uuid.uuid4()
    now = dt.datetime.now(dt.UTC).isoformat()
    buffer = io.StringIO()
    for n in range(rows):
        device = devices[n % len(devices)]
        buffer.write(
            f"{tenant}\t{new_id()}\t{community}\t{device}\tc{n}\t{community}\t{now}\topen\tcard\tin\n"
        )
    data = buffer.getvalue().encode()
    with psycopg.connect(owner) as conn:
        started = time.perf_counter()
        with conn.cursor() as cursor:
            with cursor.copy(
                "COPY access_events (tenant_id, id, community_id, device_id, device_event_id,"
                " access_point_id, occurred_at, kind, method, direction) FROM STDIN"
            ) as copy:
                copy.write(data)
        conn.commit()
        seconds = time.perf_counter() - started
        conn.execute("DELETE FROM access_events WHERE tenant_id = %s", (tenant,))
        conn.commit()
    return rows / seconds


async def _wait_stored(
    owner: str, tenant_id: uuid.UUID, target: int, deadline_seconds: float
) -> tuple[int, int, float]:
    started = time.monotonic()
    count = distinct = 0
    while time.monotonic() - started < deadline_seconds:
        count, distinct = _stored(owner, tenant_id)
        if count >= target:
            break
        await asyncio.sleep(0.2)
    return count, distinct, time.monotonic()


async def _ingest_ready(owner: str, tenant_id: uuid.UUID, device: dict[str, Any]) -> None:
    """Publish a probe (an alarm, not counted) until the ingest has stored it: its session
    and subscription exist from then on, so nothing published afterwards is missed."""
    import psycopg

    from linli.access import protocol

    topic = protocol.topic(device["tenant_id"], device["community_id"], device["device_id"], "evt")
    probe = protocol.dumps(
        {
            "v": 1,
            "dev": device["device_id"],
            "events": [{"id": "probe", "ts": time.time(), "kind": "alarm_held_open"}],
        }
    )
    async with protocol.client(f"bench-probe-{uuid.uuid4().hex[:6]}") as mqtt:
        for _ in range(600):
            await mqtt.publish(topic, probe, qos=1)
            await asyncio.sleep(0.2)
            with psycopg.connect(owner) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM access_events WHERE tenant_id = %s"
                    " AND device_event_id = 'probe'",
                    (tenant_id,),
                ).fetchone()
            if row and row[0]:
                return
    raise RuntimeError("the ingest never stored the probe")


def _ask(fleet: subprocess.Popen[str], rate: float, seconds: float, batch: int) -> int:
    assert fleet.stdin is not None and fleet.stdout is not None
    fleet.stdin.write(f"{rate} {seconds} {batch}\n")
    fleet.stdin.flush()
    return int(json.loads(fleet.stdout.readline())["events"])


async def run(size: int, seconds: float, rate: float, batch: int) -> dict[str, Any]:
    from linli.config import get_settings
    from linli.db.dsn import owner_dsn
    from linli.db.engine import dispose_engine
    from linli.db.migrate import upgrade

    owner = owner_dsn(get_settings())
    upgrade(owner)
    print(f"provisioning {size} devices", file=sys.stderr)
    tenant_id, community_id, configs = await _setup(size)
    await dispose_engine()
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(configs, handle)
    env = os.environ | {"LINLI_ACCESS_INGEST_ID": f"bench-ingest-{uuid.uuid4().hex[:8]}"}
    ingest = subprocess.Popen([sys.executable, "-m", "linli.access.ingest"], env=env)  # noqa: ASYNC220 - started once
    fleet = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, __file__, "--fleet", handle.name],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    loop = asyncio.get_running_loop()
    try:
        assert fleet.stdout is not None
        print("waiting for the devices to connect", file=sys.stderr)
        if (await loop.run_in_executor(None, fleet.stdout.readline)).strip() != "ready":
            raise RuntimeError("the device process did not start")
        await _ingest_ready(owner, tenant_id, configs[0])
        print(f"publishing ~{rate:.0f} events/s for {seconds:.0f} s", file=sys.stderr)
        begun = time.monotonic()
        published = await loop.run_in_executor(None, _ask, fleet, rate, seconds, batch)
        stored, _distinct, finished = await _wait_stored(owner, tenant_id, published, 120)
        elapsed = finished - begun
        print("one event per message", file=sys.stderr)
        short = max(5.0, seconds / 6)
        unbatched_begun = time.monotonic()
        unbatched = await loop.run_in_executor(None, _ask, fleet, rate / 4, short, 1)
        total, total_distinct, unbatched_done = await _wait_stored(
            owner, tenant_id, published + unbatched, 120
        )
        unbatched_elapsed = unbatched_done - unbatched_begun
    finally:
        if fleet.stdin:
            fleet.stdin.close()
        try:
            fleet.wait(60)
        except subprocess.TimeoutExpired:
            fleet.kill()
        ingest.terminate()
        try:
            ingest.wait(30)
        except subprocess.TimeoutExpired:
            ingest.kill()
        os.unlink(handle.name)
    limit_rate = _copy_limit(
        owner, min(published, 500_000), [c["device_id"] for c in configs], str(community_id)
    )
    ingest_rate = stored / elapsed
    return {
        "name": "access-ingest",
        "size": size,
        "seconds": round(elapsed, 2),
        "rate": round(ingest_rate, 1),
        "unit": "events/s",
        "limit_rate": round(limit_rate, 1),
        "ratio": round(ingest_rate / limit_rate, 4),
        "checks": {
            "published": published,
            "stored": stored,
            "lost": published + unbatched - total,
            "duplicates": total - total_distinct,
            "batch": batch,
            "unbatched_rate": round((total - stored) / unbatched_elapsed, 1),
            "unbatched_published": unbatched,
            "broker": os.environ.get("LINLI_BENCH_BROKER") or get_settings().mqtt_url,
            "at_least_20000_per_s": ingest_rate >= 20_000,
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=1000, help="simulated devices")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=25_000.0, help="events/s offered")
    parser.add_argument("--batch", type=int, default=100, help="events per message")
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    parser.add_argument("--fleet", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.fleet:
        asyncio.run(fleet_main(args.fleet))
        return
    broker = _with_broker()
    try:
        result = asyncio.run(run(args.size, args.seconds, args.rate, args.batch))
    finally:
        if broker is not None:
            broker.terminate()
    print(json.dumps(result, ensure_ascii=False))
    if not args.json:
        print(f"{result['rate']} events/s (COPY {result['limit_rate']})", file=sys.stderr)


if __name__ == "__main__":
    main()
