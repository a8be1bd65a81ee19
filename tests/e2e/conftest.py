"""Browser tests: Debian's chromium driven by Playwright against a real linli server.

The server is a separate uvicorn process on a free loopback port, using the test
database and broker of this run. Residents' one-time codes travel the way they do
in production, through the ``http`` SMS provider, to a local fake SMS gateway in
this process; the tests read the code there, so the server needs no test hooks.

Without chromium the tests skip with the reason printed, unless ``CI=true``:
then a missing browser is a failure (``make browser`` installs it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, free_port
from tests.fakes.sms import FakeSmsGateway

CHROMIUM = os.environ.get("LINLI_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def _missing_browser(reason: str) -> None:
    message = f"browser tests need chromium: {reason}. Install it with `make browser`."
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {message}", pytrace=False)
    print(f"\nSKIP e2e: {message}", file=sys.stderr)
    pytest.skip(message)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        _missing_browser(f"{CHROMIUM} not found")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        _missing_browser("the playwright package is not installed (pip install -e .[dev])")
    return CHROMIUM


@pytest.fixture(scope="session")
def sms_gateway() -> Iterator[FakeSmsGateway]:
    with FakeSmsGateway() as gateway:
        yield gateway


@dataclass(frozen=True)
class LiveServer:
    url: str
    log: Path


@pytest.fixture(scope="session")
def live_server(
    linli_env: dict[str, str], sms_gateway: FakeSmsGateway, chromium_path: str
) -> Iterator[LiveServer]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        **linli_env,
        "LINLI_PUBLIC_URL": url,
        "LINLI_SMS_PROVIDER": "http",
        "LINLI_SMS_HTTP_URL": sms_gateway.url,
        "LINLI_SMS_HTTP_KEY_ID": sms_gateway.key_id,
        "LINLI_SMS_HTTP_SECRET": sms_gateway.secret,
    }
    log_path = ARTIFACTS / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "linli.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_healthy(url, server, log_path)
            yield LiveServer(url=url, log=log_path)
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(5)


def _wait_healthy(url: str, server: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited early:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server did not come up:\n{log_path.read_text()[-3000:]}")


@pytest.fixture(scope="session")
async def browser(chromium_path: str) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()
