"""Alembic environment: runs as the owner role given by ``linli migrate``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from linli.db.dsn import sqlalchemy_url
from linli.db.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    url = config.attributes.get("owner_dsn") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("run migrations through `linli migrate`, which names the owner DSN")
    engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
