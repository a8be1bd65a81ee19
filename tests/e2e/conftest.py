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
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.sms import FakeSmsGateway
from tests.live import LiveServer
from tests.live import live_server as run_live_server

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


@pytest.fixture(scope="session")
def live_server(
    linli_env: dict[str, str], sms_gateway: FakeSmsGateway, chromium_path: str
) -> Iterator[LiveServer]:
    env = {
        **linli_env,
        "LINLI_SMS_PROVIDER": "http",
        "LINLI_SMS_HTTP_URL": sms_gateway.url,
        "LINLI_SMS_HTTP_KEY_ID": sms_gateway.key_id,
        "LINLI_SMS_HTTP_SECRET": sms_gateway.secret,
    }
    with run_live_server(env, ARTIFACTS / "server.log") as server:
        yield server


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
