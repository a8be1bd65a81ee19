"""Running linli: the web server (uvicorn), the embedded MQTT broker and a worker.

``linli serve`` and ``linli demo`` share this. The embedded broker runs in a
thread of the serving process (its own event loop), so it lives exactly as
long as the server and works with any number of uvicorn workers. A worker
started alongside (``linli serve --with-worker``, ``linli demo``) is a child
process of its own: job execution must not share the web server's event loop
or die with one uvicorn worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import Any

from linli.config import Settings, get_settings

APP_FACTORY = "linli.app:create_app"


def port_answers(host: str, port: int, timeout: float = 0.3) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with socket.socket() as sock:
        sock.settimeout(timeout)
        return sock.connect_ex((host, port)) == 0


class EmbeddedBroker:
    """The amqtt broker on a thread with its own event loop."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="linli-mqtt-broker", daemon=True)

    def _run(self) -> None:
        from linli.core import broker

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()
            ready = asyncio.Event()
            serving = asyncio.create_task(broker.serve(self.host, self.port, ready=ready))
            waiting = asyncio.create_task(ready.wait())
            await asyncio.wait({serving, waiting}, return_when=asyncio.FIRST_COMPLETED)
            if serving.done():  # it failed before it was ready
                waiting.cancel()
                serving.result()
            self._ready.set()
            await serving

        try:
            asyncio.run(main())
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # reported to the starting thread, which raises it
            self._error = exc
        finally:
            self._ready.set()

    def start(self, timeout: float = 15.0) -> None:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"the embedded MQTT broker did not start on port {self.port}")
        if self._error is not None:
            raise RuntimeError(f"the embedded MQTT broker failed: {self._error!r}") from self._error

    def stop(self, timeout: float = 5.0) -> None:
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(task.cancel)
        self._thread.join(timeout)


@contextlib.contextmanager
def embedded_broker(settings: Settings) -> Iterator[EmbeddedBroker | None]:
    """Run the embedded broker unless a broker is configured or one already listens.

    Another linli process on this machine (a second ``serve``, a running demo)
    may already hold the embedded port; then everyone shares that broker.
    """
    if settings.mqtt_url or port_answers("127.0.0.1", settings.embedded_mqtt_port):
        yield None
        return
    running = EmbeddedBroker("127.0.0.1", settings.embedded_mqtt_port)
    running.start()
    try:
        yield running
    finally:
        running.stop()


@contextlib.contextmanager
def worker_process(concurrency: int = 4) -> Iterator[subprocess.Popen[bytes]]:
    """A ``linli worker`` child process, stopped (gracefully) when the block ends."""
    with child_process("worker", "--concurrency", str(concurrency)) as child:
        yield child


@contextlib.contextmanager
def child_process(*arguments: str) -> Iterator[subprocess.Popen[bytes]]:
    """A ``linli <arguments>`` child process, stopped (gracefully) when the block ends."""
    child = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "linli.cli", *arguments],
        env=os.environ.copy(),
    )
    try:
        yield child
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(get_settings().worker_shutdown_seconds + 5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # uvicorn re-raises the signal that stopped it once it has shut down; turning
    # SIGTERM into an exception (rather than the default instant death) lets the
    # worker child and the broker thread be stopped by our ``finally`` blocks.
    raise KeyboardInterrupt


def run(
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    with_worker: bool = False,
    worker_concurrency: int = 4,
    log_level: str | None = None,
    access_log: bool = False,
    companions: Sequence[Sequence[str]] = (),
) -> None:
    """Serve the app until interrupted (blocking); ``companions`` are more ``linli`` children."""
    import uvicorn

    settings = get_settings()
    from linli.db.dsn import owner_dsn

    # Start the embedded PostgreSQL once here, before uvicorn forks its workers.
    owner_dsn(settings)
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(embedded_broker(settings))
            if with_worker:
                stack.enter_context(worker_process(worker_concurrency))
                # Device events reach the database through the access ingest (MQTT).
                stack.enter_context(child_process("access-ingest"))
            for arguments in companions:
                stack.enter_context(child_process(*arguments))
            with contextlib.suppress(KeyboardInterrupt):
                uvicorn.run(
                    APP_FACTORY,
                    factory=True,
                    host=host,
                    port=port,
                    workers=workers,
                    log_level=(log_level or settings.log_level).lower(),
                    access_log=access_log,
                    server_header=False,
                )
    finally:
        signal.signal(signal.SIGTERM, previous)
