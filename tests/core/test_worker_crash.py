"""A worker killed mid-delivery: after a restart every event reaches every consumer, once each.

The worker runs as a real subprocess and is SIGKILLed while the http-sink
consumer's request for the first event hangs at the receiver. The MQTT
consumer had already finished that event, so only the sink sees it again.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import psycopg
import pytest
from sqlalchemy import func, select

from linli.core.models import OutboxDelivery
from linli.db.engine import unit_of_work
from linli.worker import run_worker
from tests.conftest import ROOT
from tests.core.event_sink import EventSink, emit_committed, jobs_of, wait_until
from tests.factories import make_company

SECRET = "crash-test-sink-secret"
CONSUMERS = ("http-sink", "mqtt")
WORKER = (
    "import asyncio; from linli.worker import run_worker; asyncio.run(run_worker(concurrency=1))"
)


class WorkerProcess:
    def __init__(self, sink: EventSink) -> None:
        env = os.environ | {
            "LINLI_EVENT_CONSUMERS": "mqtt,http-sink",
            "LINLI_EVENT_SINK_URL": sink.url,
            "LINLI_EVENT_SINK_SECRET": SECRET,
            "LINLI_EVENT_SINK_TIMEOUT_SECONDS": "120",
            "LINLI_WORKER_HEARTBEAT_SECONDS": "0.5",
            "LINLI_WORKER_STALLED_SECONDS": "2",
            "LINLI_WORKER_SHUTDOWN_SECONDS": "20",
            "LINLI_LOG_LEVEL": "INFO",
        }
        self.log: IO[str] = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER],
            env=env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def output(self, tail: int | None = 4000) -> str:
        """The worker's log: its last ``tail`` characters for messages, all of it for searches."""
        text = Path(self.log.name).read_text()
        return text if tail is None else text[-tail:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


@pytest.fixture
def workers() -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.stop()


async def delivery_counts(tenant_id: uuid.UUID) -> dict[tuple[str, str], int]:
    async with unit_of_work(tenant_id) as session:
        rows = await session.execute(
            select(OutboxDelivery.event_id, OutboxDelivery.consumer, func.count()).group_by(
                OutboxDelivery.event_id, OutboxDelivery.consumer
            )
        )
        return {(str(event), consumer): count for event, consumer, count in rows.all()}


async def drain_queue() -> None:
    """Deliver what earlier tests left queued, so the first request is one of ours."""
    await run_worker(wait=False, install_signal_handlers=False)


async def test_killed_worker_event_is_delivered_after_restart_once_per_consumer(
    workers: list[WorkerProcess], owner_dsn: str, subscriber_factory: Any
) -> None:
    await drain_queue()
    sink = EventSink(secret=SECRET.encode(), hold_first_seconds=300)
    try:
        company = await make_company(communities=0)
        sub = await subscriber_factory(company.id)
        events = [await emit_committed(company.id, "test.crash.event", {"n": n}) for n in range(5)]
        ours = {str(e) for e in events}

        first = WorkerProcess(sink)
        workers.append(first)
        if not await _to_thread_wait(sink, 60):
            pytest.fail(f"the sink never got a request; worker said:\n{first.output()}")
        held = sink.arrivals[0].event_id
        assert held == str(events[0]), "queue order: the first event is delivered first"
        first.proc.send_signal(signal.SIGKILL)
        assert first.proc.wait(10) == -signal.SIGKILL
        # Mid-delivery: MQTT had the held event, the sink had not answered.
        before = await delivery_counts(company.id)
        assert before.get((held, "mqtt")) == 1
        assert (held, "http-sink") not in before

        second = WorkerProcess(sink)
        workers.append(second)
        expected = {(e, c) for e in ours for c in CONSUMERS}

        async def all_delivered() -> bool:
            return expected <= set(await delivery_counts(company.id))

        await wait_until(
            all_delivered,
            timeout=60,
            what=lambda: f"sink accepted {sorted(sink.accepted)}; worker said:\n{second.output()}",
        )
        assert "worker.job_recovered" in second.output(tail=None), (
            "the restarted worker took the job back"
        )
        counts = await delivery_counts(company.id)
        assert {k: v for k, v in counts.items() if k[0] in ours} == dict.fromkeys(expected, 1)
        # The receiver, de-duplicating by event id, has every event; the held one came twice.
        assert ours <= sink.accepted
        arrivals = sink.counts()
        assert arrivals[held] == 2
        assert all(arrivals[e] == 1 for e in ours - {held})
        assert all(a.signature_ok for a in sink.arrivals)

        async def mqtt_seen_all() -> bool:
            return ours <= set(sub.ids())

        await wait_until(mqtt_seen_all, timeout=10, what=lambda: f"MQTT ids: {sub.ids()}")
        assert sorted(sub.ids()) == sorted(ours), "MQTT got each event exactly once"
        for event in events:
            assert [j for j in jobs_of(owner_dsn, event) if j[2] != "succeeded"] == []
    finally:
        sink.close()


async def test_sigterm_lets_the_running_delivery_finish(
    workers: list[WorkerProcess], owner_dsn: str
) -> None:
    await drain_queue()
    sink = EventSink(secret=SECRET.encode(), hold_first_seconds=1.5)
    try:
        company = await make_company(communities=0)
        event = await emit_committed(company.id, "test.graceful.event", {})
        worker = WorkerProcess(sink)
        workers.append(worker)
        if not await _to_thread_wait(sink, 60):
            pytest.fail(f"the sink never got a request; worker said:\n{worker.output()}")
        worker.proc.send_signal(signal.SIGTERM)
        try:
            code = worker.proc.wait(30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"worker ignored SIGTERM; it said:\n{worker.output()}")
        assert code == 0, worker.output()
        counts = await delivery_counts(company.id)
        assert counts == {(str(event), "mqtt"): 1, (str(event), "http-sink"): 1}
        assert sink.accepted == {str(event)}
        assert jobs_of(owner_dsn, event) == []
        with psycopg.connect(owner_dsn) as conn:
            doing = "SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'"
            assert conn.execute(doing).fetchone() == (0,)
    finally:
        sink.close()


async def _to_thread_wait(sink: EventSink, timeout: float) -> bool:
    return await asyncio.to_thread(sink.first_arrived.wait, timeout)
