"""The background worker: runs procrastinate jobs (outbox delivery and every domain's tasks).

Started by ``linli worker``. SIGTERM/SIGINT stop it gracefully: it takes no new
job, lets running ones finish for LINLI_WORKER_SHUTDOWN_SECONDS, then aborts
and requeues the rest. A worker that dies without that (SIGKILL, power loss)
stops sending heartbeats; any other worker requeues its jobs once it has been
silent for LINLI_WORKER_STALLED_SECONDS.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib

from linli.config import get_settings
from linli.core import consumers
from linli.core import logging as linli_logging
from linli.core.tasks import recover_stalled_jobs
from linli.jobs import TASK_MODULES, job_app

log = linli_logging.get_logger(__name__)


async def _recover_periodically(interval: float, stalled_seconds: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await recover_stalled_jobs(stalled_seconds=stalled_seconds)
        except Exception as exc:  # a lost DB connection must not kill the worker; retry next round
            log.warning("worker.recover_failed", error=type(exc).__name__)


async def run_worker(
    *,
    concurrency: int = 4,
    queues: list[str] | None = None,
    install_signal_handlers: bool = True,
    wait: bool = True,
    name: str = "linli-worker",
) -> None:
    """Run jobs of ``queues`` (None = all) until stopped; with ``wait=False``, until idle."""
    settings = get_settings()
    linli_logging.configure(settings.log_level, json=settings.log_json)
    # Domains register their jobs and consumers when their tasks modules load; load
    # them now, so an unknown name in LINLI_EVENT_CONSUMERS fails at start, not on
    # the first event.
    for module in TASK_MODULES:
        importlib.import_module(module)
    active = [consumer.name for consumer in consumers.active_consumers(settings)]
    stalled = settings.worker_stalled_seconds
    async with job_app.open_async():
        # A restarted worker first takes back what a dead one held; the watchdog
        # then catches workers that die while this one runs. Between ticks
        # procrastinate's own heartbeat keeps this worker off the stalled list.
        await recover_stalled_jobs(stalled_seconds=stalled)
        interval = max(1.0, min(stalled / 2, 60.0))
        watchdog = asyncio.create_task(
            _recover_periodically(interval, stalled), name="linli-recover-stalled"
        )
        log.info("worker.start", queues=queues or "all", concurrency=concurrency, consumers=active)
        try:
            await job_app.run_worker_async(
                name=name,
                # procrastinate's annotation says Iterable, its code reads None as "all queues".
                queues=queues,  # type: ignore[arg-type]
                concurrency=concurrency,
                wait=wait,
                install_signal_handlers=install_signal_handlers,
                update_heartbeat_interval=settings.worker_heartbeat_seconds,
                # Queued jobs raise no NOTIFY (see linli.jobs.apply_job_schema): poll.
                listen_notify=False,
                fetch_job_polling_interval=settings.worker_poll_seconds,
                stalled_worker_timeout=stalled,
                shutdown_graceful_timeout=settings.worker_shutdown_seconds,
                # outbox_deliveries is the delivery record; finished jobs only bloat the queue.
                delete_jobs="successful",
            )
        finally:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
            log.info("worker.stop")
