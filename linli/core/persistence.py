"""Small persistence helpers every service shares."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from linli.core.errors import DomainError


async def flush_or_conflict(session: AsyncSession, conflict: DomainError) -> None:
    """Flush pending rows in a savepoint; a unique or foreign-key refusal raises ``conflict``.

    The savepoint keeps the caller's transaction usable after the refusal, so the
    unit of work can still roll back (or commit ``keep_changes`` errors) cleanly.
    """
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise conflict from exc
