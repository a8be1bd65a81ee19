"""A real uvicorn server in a subprocess, for browser and HTTP-fuzz tests.

A subprocess rather than a thread: the test process's database engine belongs to
the test event loop and must not be shared with the server's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import ROOT, free_port


@dataclass(frozen=True)
class LiveServer:
    url: str
    log: Path


@contextmanager
def live_server(env: dict[str, str], log_path: Path) -> Iterator[LiveServer]:
    """Serve linli on a free loopback port with ``env`` on top of this process's."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path.parent.mkdir(parents=True, exist_ok=True)
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
            env={**os.environ, "LINLI_PUBLIC_URL": url, **env},
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
