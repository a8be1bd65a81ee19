"""``linli serve``: a real server process with the embedded broker in it, stopped by SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.cli.helpers import ROOT
from tests.conftest import free_port


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(p) for p in handle.read().split()]
    except FileNotFoundError:
        return []


@pytest.mark.slow
def test_serve_with_worker_and_embedded_broker_then_stop_cleanly(tmp_path: Path) -> None:
    port, broker_port = free_port(), free_port()
    # The server's output goes to a file, not a pipe: its worker delivers whatever other
    # tests left in this database, and a full pipe nobody reads would block its logging.
    log_path = tmp_path / "serve.log"
    log_file = log_path.open("w")
    env = {k: v for k, v in os.environ.items() if k != "LINLI_MQTT_URL"}
    env["LINLI_EMBEDDED_MQTT_PORT"] = str(broker_port)
    server = subprocess.Popen(
        [sys.executable, "-m", "linli.cli", "serve", "--port", str(port), "--with-worker"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log_file,
    )

    def output() -> str:
        log_file.flush()
        return log_path.read_text(errors="replace")

    try:
        deadline = time.monotonic() + 120  # a loaded CI machine starts slowly
        ready = None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        if ready is None or ready.status_code != 200:
            exited = server.poll()
            if exited is not None:
                pytest.fail(f"linli serve exited with {exited}:\n{output()[-4000:]}")
            server.terminate()
            server.wait(30)
            # The jobs its worker ran for other tests' data are noise here.
            lines = [
                line
                for line in output().splitlines()
                if "outbox.delivered" not in line and "deliver_event" not in line
            ]
            shown = "\n".join([*lines[:60], "...", *lines[-40:]])
            pytest.fail(f"linli serve did not get ready: {ready and ready.text}\n{shown}")
        # /readyz connected to the broker this process embeds: nothing else listens there.
        assert ready.json()["checks"] == {"database": "ok", "mqtt": "ok"}
        workers = _children(server.pid)
        assert workers, "the --with-worker child is missing"
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    stderr = output()
    log_file.close()
    assert server.returncode == 0, stderr[-2000:]
    assert "Traceback" not in stderr, stderr[stderr.find("Traceback") - 200 :][:3000]
    for pid in workers:
        assert (
            not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
        )
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{broker_port}", timeout=1)
