"""Schema migrations (Alembic) and the database roles linli needs."""

from __future__ import annotations

from pathlib import Path

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
    """Create the app role: it can log in, owns nothing, and has no BYPASSRLS."""
    with psycopg.connect(owner_dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,)).fetchone()
        if not exists:
            conn.execute(
                sql.SQL(
                    "CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"
                ).format(sql.Identifier(APP_ROLE))
            )
        if password:
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(APP_ROLE), sql.Literal(password)
                )
            )
        dbname = conn.info.dbname
        conn.execute(
            sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
                sql.Identifier(dbname), sql.Identifier(APP_ROLE)
            )
        )


def upgrade(owner_dsn: str, *, app_password: str = "", revision: str = "head") -> None:
    ensure_app_role(owner_dsn, app_password)
    command.upgrade(alembic_config(owner_dsn), revision)
    from linli.jobs import apply_job_schema

    apply_job_schema(owner_dsn)
