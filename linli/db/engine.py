"""Engines, sessions and the tenant context of a transaction."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from linli.config import Settings, get_settings
from linli.db.dsn import app_dsn, sqlalchemy_url

_engine: AsyncEngine | None = None
_sessionmaker: async_sessionmaker[AsyncSession] | None = None


def make_engine(dsn: str, *, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(
        sqlalchemy_url(dsn),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        connect_args={"application_name": "linli"},
    )


def get_engine(settings: Settings | None = None) -> AsyncEngine:
    global _engine, _sessionmaker
    if _engine is None:
        settings = settings or get_settings()
        _engine = make_engine(app_dsn(settings), pool_size=settings.database_pool_size)
        _sessionmaker = async_sessionmaker(_engine, expire_on_commit=False, autoflush=True)
    return _engine


def sessionmaker() -> async_sessionmaker[AsyncSession]:
    get_engine()
    assert _sessionmaker is not None
    return _sessionmaker


async def dispose_engine() -> None:
    global _engine, _sessionmaker
    if _engine is not None:
        await _engine.dispose()
    _engine = None
    _sessionmaker = None


async def set_tenant(session: AsyncSession, tenant_id: uuid.UUID | None) -> None:
    """Bind the current transaction to one tenant (``SET LOCAL``); RLS reads it.

    ``None`` clears it: tenant tables then show no rows at all.
    """
    await session.execute(
        text("SELECT set_config('linli.tenant_id', :tenant, true)"),
        {"tenant": str(tenant_id) if tenant_id else ""},
    )
    session.info["tenant_id"] = tenant_id


def current_tenant(session: AsyncSession) -> uuid.UUID | None:
    value = session.info.get("tenant_id")
    return value if isinstance(value, uuid.UUID) else None


@asynccontextmanager
async def unit_of_work(tenant_id: uuid.UUID | None = None) -> AsyncIterator[AsyncSession]:
    """One transaction: commits when the block ends cleanly, rolls back otherwise.

    Services flush, never commit; this (or the request dependency built on it)
    is the only place a transaction ends. A domain error raised with
    ``keep_changes=True`` commits what was written before it, then propagates:
    that is how a refusal records itself (e.g. a reused refresh token revokes its
    family) without a second connection that could wait on this one's row locks.
    """
    from linli.core.errors import DomainError

    async with sessionmaker()() as session:
        transaction = await session.begin()
        try:
            await set_tenant(session, tenant_id)
            yield session
        except DomainError as error:
            if error.keep_changes:
                await transaction.commit()
            else:
                await transaction.rollback()
            raise
        except BaseException:
            await transaction.rollback()
            raise
        else:
            await transaction.commit()
