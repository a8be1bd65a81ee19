"""The embedded cluster is tuned for bulk work once, and an operator's later choice stays."""

from __future__ import annotations

from pathlib import Path

import psycopg

from linli.db import embedded


def test_fresh_cluster_gets_the_tuning_and_an_operator_change_survives_a_restart(
    tmp_path: Path,
) -> None:
    data = tmp_path / "pg"
    dsn = embedded.start(data)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            assert conn.execute("SHOW max_wal_size").fetchone() == ("4GB",)
            assert conn.execute("SHOW wal_compression").fetchone() != ("off",)
            conn.execute("ALTER SYSTEM SET max_wal_size = '2GB'")
            conn.execute("SELECT pg_reload_conf()")
        embedded.start(data)  # a later start must not undo the operator's value
        with psycopg.connect(dsn, autocommit=True) as conn:
            assert conn.execute("SHOW max_wal_size").fetchone() == ("2GB",)
    finally:
        embedded.stop(data)
