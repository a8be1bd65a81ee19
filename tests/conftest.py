"""Test harness: a real PostgreSQL and a real MQTT broker for every run.

Embedded servers by default; the machine's own when ``LINLI_TEST_DATABASE_URL``
and ``LINLI_TEST_MQTT_URL`` are set (CI runs both ways). Each xdist worker gets
its own freshly migrated database; tests isolate themselves by creating their
own companies (tenants), exactly as production isolates companies.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
TEST_HOME = ROOT / ".linli" / "test-home"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_dsn() -> str:
    configured = os.environ.get("LINLI_TEST_DATABASE_URL")
    if configured:
        return configured
    from linli.db import embedded

    return embedded.start(ROOT / ".linli" / "test-pg")


def _with_database(dsn: str, name: str) -> str:
    return make_url(dsn).set(database=name).render_as_string(hide_password=False)


def _wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


@pytest.fixture(scope="session", autouse=True)
def linli_env() -> Iterator[dict[str, str]]:
    server = _server_dsn()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    database = f"linli_test_{worker}_{os.getpid()}"
    admin = _with_database(server, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database}"')
    owner = _with_database(server, database)

    broker = None
    mqtt_url = os.environ.get("LINLI_TEST_MQTT_URL")
    if not mqtt_url:
        port = free_port()
        broker = subprocess.Popen(
            [sys.executable, "-m", "linli.core.broker", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_port(port)
        mqtt_url = f"mqtt://127.0.0.1:{port}"

    TEST_HOME.mkdir(parents=True, exist_ok=True)
    env = {
        "LINLI_ENV": "test",
        "LINLI_HOME": str(TEST_HOME),
        "LINLI_DATABASE_URL": owner,
        "LINLI_MQTT_URL": mqtt_url,
        "LINLI_SECRET_KEY": "test-secret-key-not-for-production-0123456789",
        "LINLI_DATA_KEY": "dGVzdC1kYXRhLWtleS1ub3QtZm9yLXByb2R1Y3Rpb24xMg",
        "LINLI_LOG_JSON": "true",
        "LINLI_DATABASE_POOL_SIZE": "5",
    }
    os.environ.update(env)
    from linli.config import get_settings
    from linli.db.migrate import upgrade

    get_settings.cache_clear()
    upgrade(owner)
    yield env
    if broker is not None:
        broker.terminate()
        broker.wait(5)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@pytest.fixture(scope="session")
def owner_dsn(linli_env: dict[str, str]) -> str:
    return linli_env["LINLI_DATABASE_URL"]


@pytest.fixture(scope="session")
def app(linli_env: dict[str, str]):  # type: ignore[no-untyped-def]
    from linli.app import create_app

    return create_app()


@pytest.fixture
async def client(app) -> AsyncIterator[object]:  # type: ignore[no-untyped-def]
    import httpx

    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture(autouse=True)
def fresh_rate_limits(linli_env: dict[str, str]) -> None:
    """Every test starts with empty sign-in/OTP counters: all test clients share 127.0.0.1."""
    from linli.core import ratelimit

    ratelimit.reset_all()
