"""Schema migrations (Alembic) and the database roles linli needs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psycopg
from alembic import command
from alembic.config import Config
from psycopg import sql

from linli.db.rls import APP_ROLE

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(owner_dsn: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", owner_dsn.replace("%", "%%"))
    cfg.attributes["owner_dsn"] = owner_dsn
    return cfg


def ensure_app_role(owner_dsn: str, password: str = "") -> None:
    """Create the app role: it can log in, owns nothing, and has no BYPASSRLS.

    Roles are cluster-wide while advisory locks are per database, so two
    processes migrating two databases of one cluster (parallel test workers,
    two tenants' shards) can both see the role missing; the loser of the race
    treats "already exists" as done.
    """
    with psycopg.connect(owner_dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,)).fetchone()
        if not exists:
            try:
                conn.execute(
                    sql.SQL(
                        "CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"
                    ).format(sql.Identifier(APP_ROLE))
                )
            except (psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
                pass
        if password:
            _retry_on_concurrent_update(
                conn,
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(APP_ROLE), sql.Literal(password)
                ),
            )
        dbname = conn.info.dbname
        _retry_on_concurrent_update(
            conn,
            sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
                sql.Identifier(dbname), sql.Identifier(APP_ROLE)
            ),
        )


def _retry_on_concurrent_update(conn: psycopg.Connection[Any], statement: sql.Composed) -> None:
    """Catalog rows shared by the cluster raise "tuple concurrently updated" under races."""
    for attempt in range(5):
        try:
            conn.execute(statement)
            return
        except psycopg.errors.InternalError_:
            if attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))


def upgrade(owner_dsn: str, *, app_password: str = "", revision: str = "heads") -> None:
    ensure_app_role(owner_dsn, app_password)
    command.upgrade(alembic_config(owner_dsn), revision)
    from linli.jobs import apply_job_schema

    apply_job_schema(owner_dsn)
