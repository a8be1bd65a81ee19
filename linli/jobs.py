"""Background jobs: procrastinate, with its queue in the same PostgreSQL.

Domains put their job functions in ``<domain>/tasks.py`` and register them on
:data:`job_app`; a job deferred inside a service's transaction (see
:func:`defer_in_transaction`) exists exactly when that transaction commits.
"""

from __future__ import annotations

import json
from typing import Any

import procrastinate
import psycopg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from linli.config import get_settings
from linli.db.dsn import app_dsn
from linli.db.rls import APP_ROLE


def _task_modules() -> list[str]:
    """``linli.core.tasks`` and every domain's ``tasks.py``: a new domain's jobs need no list."""
    from pathlib import Path

    root = Path(__file__).resolve().parent
    domains = sorted(p.parent.name for p in root.glob("*/tasks.py") if p.parent.name != "core")
    return ["linli.core.tasks", *(f"linli.{name}.tasks" for name in domains)]


TASK_MODULES = _task_modules()


def _connector() -> procrastinate.PsycopgConnector:
    return procrastinate.PsycopgConnector(conninfo=lambda *_: app_dsn(get_settings()))


job_app = procrastinate.App(connector=_connector(), import_paths=TASK_MODULES)


# APP_ROLE is our constant, not input; format(%I) quotes the table names.
GRANT_JOB_TABLES = """
DO $$
DECLARE obj record;
BEGIN
  FOR obj IN SELECT tablename FROM pg_tables
             WHERE schemaname = 'public' AND tablename LIKE 'procrastinate%' LOOP
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO {role}', obj.tablename);
  END LOOP;
  FOR obj IN SELECT sequencename FROM pg_sequences
             WHERE schemaname = 'public' AND sequencename LIKE 'procrastinate%' LOOP
    EXECUTE format('GRANT USAGE, SELECT, UPDATE ON SEQUENCE %I TO {role}', obj.sequencename);
  END LOOP;
END $$
"""


NO_NOTIFY_ON_DEFER = (
    b"ALTER TABLE procrastinate_jobs"
    b" DISABLE TRIGGER procrastinate_jobs_notify_queue_job_inserted_v1"
)


def apply_job_schema(owner_dsn: str) -> None:
    """Create procrastinate's tables once (as owner) and let the app role use them."""
    with psycopg.connect(owner_dsn, autocommit=True) as conn:
        present = conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()
        if present is None or present[0] is None:
            from importlib.resources import files

            schema = files("procrastinate.sql").joinpath("schema.sql").read_text()
            conn.execute(schema.encode())
        # Only procrastinate's own objects: the app role must not touch alembic_version.
        conn.execute(GRANT_JOB_TABLES.replace("{role}", APP_ROLE).encode())
        # No NOTIFY per queued job: PostgreSQL holds one database-wide lock from a
        # notifying transaction's commit until its WAL flush, so every request that
        # queues a job (an outbox event does) would commit one after another. Workers
        # poll instead (LINLI_WORKER_POLL_SECONDS).
        conn.execute(NO_NOTIFY_ON_DEFER)


async def defer_in_transaction(
    session: AsyncSession,
    task_name: str,
    *,
    queue: str = "default",
    lock: str | None = None,
    queueing_lock: str | None = None,
    **kwargs: Any,
) -> None:
    """Enqueue a job in the caller's transaction: no job without the change, no change without job.

    procrastinate's own ``defer`` uses its own connection, so it would commit the
    job even if our transaction rolled back; this calls its SQL function instead.
    """
    await session.execute(
        text(
            "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW(:queue, :task, 0, :lock, :qlock,"
            " CAST(:args AS jsonb), NULL)::procrastinate_job_to_defer_v1])"
        ),
        {
            "queue": queue,
            "task": task_name,
            "lock": lock,
            "qlock": queueing_lock,
            "args": json.dumps(kwargs, default=str),
        },
    )
