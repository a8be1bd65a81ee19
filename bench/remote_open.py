"""Benchmark ``remote-open``: a resident's open request through the API (ASGI, in process)
→ signed command over MQTT → a simulated device acknowledges (signed) → the API answers,
with ``--size`` simulated devices connected (a second process runs them).

``limit_p99_ms`` / ``limit_rate`` come from bare MQTT QoS 1 round trips in the same run:
publish to a topic the device process echoes back, wait for the echo. That is the
floor: a remote open is one such round trip plus the API and the database.

Uses the configured broker (LINLI_MQTT_URL), else starts the embedded one.

    python bench/remote_open.py [--size 1000] [--requests 2000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ECHO_IN = "bench/ping/{}"
ECHO_OUT = "bench/pong"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --- the device process --------------------------------------------------------------------------


async def fleet_main(path: str) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from linli.access import credentials, protocol
    from linli.access.models import DeviceKind
    from linli.access.simulator import DeviceConfig, Fleet, VirtualDevice

    raw = json.loads(Path(path).read_text())  # noqa: ASYNC240 - once, at start
    configs = [
        DeviceConfig(
            tenant_id=uuid.UUID(c["tenant_id"]),
            community_id=uuid.UUID(c["community_id"]),
            device_id=uuid.UUID(c["device_id"]),
            access_point_id=uuid.UUID(c["access_point_id"]),
            kind=DeviceKind(c["kind"]),
            mqtt_password=c["mqtt_password"],
            private_key=Ed25519PrivateKey.from_private_bytes(
                credentials.b64decode(c["private_key"])
            ),
            community_keys={int(k): credentials.b64decode(v) for k, v in c["keys"].items()},
        )
        for c in raw
    ]
    fleet = Fleet([VirtualDevice(c, heartbeat_seconds=300) for c in configs])
    await fleet.start(wait_seconds=120, concurrency=20)

    async def echo() -> None:
        async with protocol.client(f"bench-echo-{uuid.uuid4().hex[:6]}") as client:
            await client.subscribe(ECHO_IN.format("+"), qos=1)
            print("ready", flush=True)
            async for message in client.messages:
                await client.publish(ECHO_OUT, message.payload, qos=1)

    task = asyncio.create_task(echo())
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until closed
    task.cancel()
    await fleet.close()


# --- the API process -----------------------------------------------------------------------------


async def _setup(size: int) -> tuple[Any, list[dict[str, Any]], str]:
    from linli.access import service
    from linli.access.models import AccessPointKind, DeviceKind
    from linli.auth.actor import Actor, PrincipalKind
    from linli.auth.models import ResidentAccount
    from linli.auth.tokens import issue_access_token
    from linli.core import crypto
    from linli.db.engine import unit_of_work
    from linli.estate import service as estate
    from linli.estate.rows import HouseRow
    from linli.residents import service as residents
    from linli.tenancy import service as tenancy_service

    async with unit_of_work() as session:
        tenant = await tenancy_service.create_tenant(
            session,
            Actor.system(),
            slug=f"bench-{secrets.token_hex(4)}",
            name="开门基准物业",
            admin_username="admin",
            admin_display_name="管理员",
            admin_password=secrets.token_urlsafe(16),
        )
    system = Actor.system(tenant.id)
    phone = "139" + str(secrets.randbelow(10**8)).zfill(8)
    async with unit_of_work(tenant.id) as session:
        community = await tenancy_service.create_community(
            session, system, code="B01", name="基准小区"
        )
        await estate.upsert_houses(
            session,
            system,
            rows=[
                HouseRow(
                    community_code="B01",
                    building_no="1",
                    unit_no="1",
                    house_no="101",
                    floor=1,
                    building_area=__import__("decimal").Decimal("90.00"),
                    inner_area=None,
                )
            ],
        )
        resolved = await estate.resolve_houses(session, system, keys=[("B01", "1", "1", "101")])
        house_id = resolved.ids[("B01", "1", "1", "101")]
        await residents.create_resident(
            session,
            system,
            name="开门人",
            phone=phone,
            house_id=house_id,
            relation=residents.Relation.OWNER,
        )
        configs = []
        for n in range(size):
            point = await service.create_access_point(
                session,
                system,
                community_id=community.id,
                kind=AccessPointKind.COMMUNITY_GATE,
                name=f"门{n:04d}",
            )
            provisioned = await service.provision_device(
                session,
                system,
                access_point_id=point.id,
                kind=DeviceKind.DOOR_CONTROLLER,
                name=f"bench-{n:04d}",
            )
            configs.append(
                {
                    "tenant_id": str(tenant.id),
                    "community_id": str(community.id),
                    "device_id": str(provisioned.device.id),
                    "access_point_id": str(point.id),
                    "kind": provisioned.device.kind.value,
                    "mqtt_password": provisioned.mqtt_password,
                    "private_key": provisioned.private_key,
                    "keys": provisioned.community_keys,
                }
            )
    async with unit_of_work() as session:
        account = ResidentAccount(
            phone_enc=crypto.encrypt(phone),
            phone_hash=crypto.blind_index(phone),
            display_name="开门人",
        )
        session.add(account)
        await session.flush()
        account_id = account.id
    token = issue_access_token(Actor(kind=PrincipalKind.RESIDENT, id=account_id))[0]
    return tenant, configs, token


async def run(size: int, requests: int) -> dict[str, Any]:
    import httpx

    from linli.access import protocol
    from linli.app import create_app
    from linli.config import get_settings
    from linli.db.dsn import owner_dsn
    from linli.db.engine import dispose_engine
    from linli.db.migrate import upgrade

    upgrade(owner_dsn(get_settings()))
    print(f"provisioning {size} devices", file=sys.stderr)
    _tenant, configs, token = await _setup(size)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(configs, handle)
    fleet = subprocess.Popen(  # noqa: ASYNC220 - started once
        [sys.executable, __file__, "--fleet", handle.name],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert fleet.stdout is not None
        print("waiting for the devices to connect", file=sys.stderr)
        line = await asyncio.get_running_loop().run_in_executor(None, fleet.stdout.readline)
        if line.strip() != "ready":
            raise RuntimeError("the device process did not start")
        app = create_app()
        headers = {"Authorization": f"Bearer {token}"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            doors = (await client.get("/api/v1/access/me/doors", headers=headers)).json()
            mine = doors[0]
            points = [d["access_point_id"] for d in mine["doors"]]
            body = {"company_id": mine["company_id"], "pass_id": mine["pass_id"]}

            async def open_once(point: str) -> tuple[float, bool]:
                begun = time.perf_counter()
                response = await client.post(
                    "/api/v1/access/me/open",
                    json=body | {"access_point_id": point},
                    headers=headers,
                )
                ok = response.status_code == 200 and response.json()["status"] == "done"
                if ok and os.environ.get("BENCH_DEBUG"):
                    print("mqtt_ms", response.json()["millis"], file=sys.stderr)
                if not ok and os.environ.get("BENCH_DEBUG"):
                    print(response.status_code, response.text[:200], file=sys.stderr)
                return (time.perf_counter() - begun) * 1000, ok

            for i in range(50):  # warm up: pools, key cache, the command bus connection
                await open_once(points[i % len(points)])
            latencies, failures = [], 0
            started = time.perf_counter()
            for i in range(requests):
                ms, ok = await open_once(points[i % len(points)])
                latencies.append(ms)
                failures += not ok
            seconds = time.perf_counter() - started

        # The floor: bare QoS 1 round trips through the same broker and device process.
        limit: list[float] = []
        async with protocol.client(f"bench-ping-{uuid.uuid4().hex[:6]}") as mqtt:
            await mqtt.subscribe(ECHO_OUT, qos=1)
            incoming = mqtt.messages.__aiter__()
            for i in range(requests + 50):
                begun = time.perf_counter()
                await mqtt.publish(ECHO_IN.format(i % 10), str(i).encode(), qos=1)
                while (await incoming.__anext__()).payload != str(i).encode():
                    pass
                if i >= 50:
                    limit.append((time.perf_counter() - begun) * 1000)
        await dispose_engine()
    finally:
        if fleet.stdin:
            fleet.stdin.close()
        try:
            fleet.wait(30)
        except subprocess.TimeoutExpired:
            fleet.kill()
        os.unlink(handle.name)
    rate = requests / seconds
    limit_rate = len(limit) / (sum(limit) / 1000)
    return {
        "name": "remote-open",
        "size": size,
        "seconds": round(seconds, 3),
        "rate": round(rate, 1),
        "unit": "opens/s",
        "limit_rate": round(limit_rate, 1),
        "ratio": round(rate / limit_rate, 4),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(_percentile(latencies, 0.99), 2),
        "limit_p50_ms": round(statistics.median(limit), 2),
        "limit_p99_ms": round(_percentile(limit, 0.99), 2),
        "checks": {
            "failures": failures,
            "devices": size,
            "broker": os.environ.get("LINLI_BENCH_BROKER") or get_settings().mqtt_url,
            "p99_under_5ms": _percentile(latencies, 0.99) <= 5.0,
        },
    }


def _with_broker() -> subprocess.Popen[bytes] | None:
    """Start the embedded broker when no LINLI_MQTT_URL is configured."""
    if os.environ.get("LINLI_MQTT_URL"):
        return None
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    broker = subprocess.Popen(
        [sys.executable, "-m", "linli.core.broker", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.environ["LINLI_MQTT_URL"] = f"mqtt://127.0.0.1:{port}"
    os.environ["LINLI_BENCH_BROKER"] = "embedded amqtt"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return broker
        time.sleep(0.05)
    raise RuntimeError("the embedded broker did not start")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=1000, help="simulated devices")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    parser.add_argument("--fleet", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.fleet:
        from linli.core import loops

        loops.run(fleet_main(args.fleet))
        return
    broker = _with_broker()
    try:
        result = asyncio.run(run(args.size, args.requests))
    finally:
        if broker is not None:
            broker.terminate()
    print(json.dumps(result, ensure_ascii=False))
    if not args.json:
        print(f"p99 {result['p99_ms']} ms (bare MQTT {result['limit_p99_ms']})", file=sys.stderr)


if __name__ == "__main__":
    main()
