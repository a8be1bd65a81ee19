"""Benchmark ``api-read``: an authenticated list endpoint under concurrent load.

Starts the app server (uvicorn, production-like: no reload, log level WARNING,
uvloop + httptools) on a free loopback port against the configured database
(embedded by default), seeds a company whose admin sees ``--size``
communities, signs in through ``POST /api/v1/auth/staff/token``, then loads
the server from a separate process with ``--connections`` keep-alive
connections for ``--duration`` seconds per endpoint:

1. ``GET /healthz`` — no auth, no database: the ``limit_rate`` of this server
   on this machine, measured in the same run;
2. ``GET /api/v1/communities?limit=20`` with the bearer token — ``rate``,
   ``p50_ms`` and ``p99_ms``.

The load comes from ``wrk`` (``make bench-tools`` installs it) or, without it,
from this script's own asyncio load generator started as a child process
(``--load-url``). Prints one JSON object (see ARCHITECTURE.md "Benchmarks").

    python bench/api_read.py [--size 50] [--connections 50] [--duration 10] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

LIST_PATH = "/api/v1/communities?limit=20"
HEALTH_PATH = "/healthz"
P99_LIMIT_MS = 50.0
MIN_RATIO = 0.30


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the company under test --------------------------------------------------------------------


async def seed(communities: int) -> tuple[str, str, str]:
    """A fresh company whose admin sees ``communities`` communities: (slug, login, password)."""
    from linli.auth.actor import Actor
    from linli.db.engine import dispose_engine, unit_of_work
    from linli.tenancy import service

    slug = f"bench-{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(16)
    try:
        async with unit_of_work() as session:
            tenant = await service.create_tenant(
                session,
                Actor.system(),
                slug=slug,
                name="基准测试物业 (api-read)",
                admin_username="admin",
                admin_display_name="管理员",
                admin_password=password,
            )
            tenant_id = tenant.id
        system = Actor.system(tenant_id)
        for start in range(0, communities, 500):
            async with unit_of_work(tenant_id) as session:
                for n in range(start, min(start + 500, communities)):
                    await service.create_community(
                        session,
                        system,
                        code=f"B{n:05d}",
                        name=f"基准小区{n + 1}号",
                        address="深圳市",
                    )
    finally:
        await dispose_engine()
    return slug, "admin", password


# --- the server -------------------------------------------------------------------------------


def start_server(port: int, workers: int, log_path: Path) -> subprocess.Popen[bytes]:
    env = os.environ.copy()
    env["LINLI_LOG_LEVEL"] = "WARNING"
    command = [
        sys.executable, "-m", "uvicorn", "linli.app:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--log-level", "warning", "--no-access-log", "--loop", "uvloop", "--http", "httptools",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_ready(base: str, server: subprocess.Popen[bytes], timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with status {server.returncode}")
        try:
            if httpx.get(base + HEALTH_PATH, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not answer /healthz in time")


def sign_in(base: str, company: str, login: str, password: str) -> tuple[str, str]:
    """An access token from the real sign-in endpoint; how it was obtained."""
    import httpx

    response = httpx.post(
        base + "/api/v1/auth/staff/token",
        json={"company": company, "login": login, "password": password},
        timeout=30,
    )
    if response.status_code == 200:
        return str(response.json()["access_token"]), "POST /api/v1/auth/staff/token"
    raise RuntimeError(f"sign-in failed: HTTP {response.status_code} {response.text[:200]}")


def page_items(base: str, token: str) -> int:
    import httpx

    response = httpx.get(base + LIST_PATH, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    response.raise_for_status()
    return len(response.json()["items"])


# --- load: wrk ---------------------------------------------------------------------------------

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk(output: str) -> dict[str, Any]:
    """Rate, latency percentiles and error counts from ``wrk --latency`` output."""
    percentiles = {
        int(m.group(1)): _ms(m.group(2))
        for m in re.finditer(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", output, re.MULTILINE)
    }
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    total = re.search(r"^\s+(\d+) requests in ([\d.]+\w+),", output, re.MULTILINE)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if rate is None or total is None or 50 not in percentiles or 99 not in percentiles:
        raise RuntimeError(f"cannot read wrk's output:\n{output}")
    return {
        "rate": float(rate.group(1)),
        "requests": int(total.group(1)),
        "seconds": _ms(total.group(2)) / 1000,
        "p50_ms": percentiles[50],
        "p99_ms": percentiles[99],
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(int(g) for g in socket_errors.groups()) if socket_errors else 0,
    }


def load_wrk(url: str, token: str | None, connections: int, duration: float) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    assert wrk is not None
    command = [wrk, "-t2", f"-c{connections}", f"-d{duration:g}s", "--latency", "--timeout", "5s"]
    if token:
        command += ["-H", f"Authorization: Bearer {token}"]
    done = subprocess.run([*command, url], capture_output=True, text=True, check=True)
    return parse_wrk(done.stdout)


# --- load: the Python fallback (a child process running --load-url) ----------------------------


async def _client(
    host: str,
    port: int,
    request: bytes,
    until: float,
    latencies: list[float],
    counts: dict[str, int],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < until:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            latencies.append((time.perf_counter() - started) * 1000)
            counts["ok" if 200 <= status < 300 else "non_2xx"] += 1
    except (OSError, asyncio.IncompleteReadError):
        counts["socket_errors"] += 1
    finally:
        writer.close()


async def _generate(
    url: str, token: str | None, connections: int, duration: float
) -> dict[str, Any]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    headers = [f"GET {target} HTTP/1.1", f"Host: {host}:{port}", "Accept: application/json"]
    if token:
        headers.append(f"Authorization: Bearer {token}")
    request = ("\r\n".join(headers) + "\r\n\r\n").encode()
    latencies: list[float] = []
    counts = {"ok": 0, "non_2xx": 0, "socket_errors": 0}
    started = time.perf_counter()
    until = started + duration
    await asyncio.gather(
        *(_client(host, port, request, until, latencies, counts) for _ in range(connections))
    )
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rate": len(latencies) / elapsed,
        "requests": len(latencies),
        "seconds": elapsed,
        "p50_ms": statistics.median(latencies) if latencies else 0.0,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        if latencies
        else 0.0,
        "non_2xx": counts["non_2xx"],
        "socket_errors": counts["socket_errors"],
    }


def load_python(url: str, token: str | None, connections: int, duration: float) -> dict[str, Any]:
    env = os.environ.copy()
    env["BENCH_TOKEN"] = token or ""  # not on the command line, where `ps` would show it
    command = [
        sys.executable, __file__, "--load-url", url,
        "--connections", str(connections), "--duration", str(duration),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def load(url: str, token: str | None, connections: int, duration: float) -> dict[str, Any]:
    if shutil.which("wrk"):
        return load_wrk(url, token, connections, duration)
    return load_python(url, token, connections, duration)


# --- the benchmark -----------------------------------------------------------------------------


def run(size: int, connections: int, duration: float, workers: int) -> dict[str, Any]:
    from linli.config import get_settings
    from linli.db.dsn import owner_dsn
    from linli.db.migrate import upgrade

    settings = get_settings()
    _log("database: migrating")
    upgrade(owner_dsn(settings), app_password=settings.database_app_password.get_secret_value())
    _log(f"seeding a company with {size} communities")
    company, login, password = asyncio.run(seed(size))

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    generator = "wrk" if shutil.which("wrk") else "python"
    with tempfile.TemporaryDirectory(prefix="linli-bench-") as scratch:
        log_path = Path(scratch) / "server.log"
        server = start_server(port, workers, log_path)
        try:
            _log(f"server: uvicorn, {workers} worker(s), port {port}")
            wait_ready(base, server)
            token, token_source = sign_in(base, company, login, password)
            items = page_items(base, token)
            _log("warm-up")
            load(base + LIST_PATH, token, connections, min(2.0, duration))
            _log(
                f"load ({generator}): GET {HEALTH_PATH}, {connections} connections, {duration:g} s"
            )
            health = load(base + HEALTH_PATH, None, connections, duration)
            _log(f"load ({generator}): GET {LIST_PATH}, {connections} connections, {duration:g} s")
            listing = load(base + LIST_PATH, token, connections, duration)
        except Exception:
            _log(log_path.read_text(errors="replace")[-3000:])
            raise
        finally:
            server.terminate()
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()

    rate, limit_rate = listing["rate"], health["rate"]
    return {
        "name": "api-read",
        "size": size,
        "seconds": round(listing["seconds"], 2),
        "rate": round(rate, 1),
        "unit": "requests/s",
        "limit_rate": round(limit_rate, 1),
        "ratio": round(rate / limit_rate, 4) if limit_rate else 0.0,
        "p50_ms": round(listing["p50_ms"], 2),
        "p99_ms": round(listing["p99_ms"], 2),
        "limit_p99_ms": round(health["p99_ms"], 2),
        "checks": {
            "non_2xx": listing["non_2xx"] + health["non_2xx"],
            "socket_errors": listing["socket_errors"] + health["socket_errors"],
            "requests": listing["requests"],
            "items_per_page": items,
            "expected_items_per_page": min(20, size),
            "p99_under_50ms": listing["p99_ms"] < P99_LIMIT_MS,
            "ratio_at_least_0_3": limit_rate > 0 and rate / limit_rate >= MIN_RATIO,
        },
        "endpoint": f"GET {LIST_PATH}",
        "connections": connections,
        "server_workers": workers,
        "load_generator": generator,
        "token": token_source,
        "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--size", type=int, default=50, help="communities the signed-in admin sees")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per endpoint")
    # 2 on this 2-core machine beat 1 in the same conditions (more requests/s, lower p99).
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    parser.add_argument("--load-url", help=argparse.SUPPRESS)  # internal: be the load generator
    args = parser.parse_args(argv)

    if args.load_url:
        token = os.environ.get("BENCH_TOKEN") or None
        generated = _generate(args.load_url, token, args.connections, args.duration)
        try:
            import uvloop

            print(json.dumps(uvloop.run(generated)))
        except ImportError:
            print(json.dumps(asyncio.run(generated)))
        return

    result = run(args.size, args.connections, args.duration, args.workers)
    print(json.dumps(result, ensure_ascii=False))
    if not args.json:
        print(
            f"{result['rate']} req/s (healthz {result['limit_rate']}), "
            f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
