"""Transactional outbox: an event is stored, and its delivery job queued, in the
transaction that makes the change. No change without its event, no event without
its change, and none lost when a process dies.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from linli.auth.actor import Actor
from linli.core.ids import new_id
from linli.core.models import OutboxEvent
from linli.jobs import defer_in_transaction

DELIVER_TASK = "linli.core.tasks.deliver_event"

# Dotted lowercase words: the type becomes an MQTT topic (dots -> slashes), so
# no wildcards, spaces or empty levels may slip in.
EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


async def emit(
    session: AsyncSession, actor: Actor, event_type: str, payload: dict[str, Any]
) -> uuid.UUID:
    """Store ``event_type`` for the actor's tenant and queue its delivery, in this transaction."""
    if actor.tenant_id is None:
        raise ValueError("events belong to a tenant")
    if len(event_type) > 80 or not EVENT_TYPE.match(event_type):
        raise ValueError(f"event type must look like 'community.created', not {event_type!r}")
    event_id = new_id()
    await session.execute(
        insert(OutboxEvent).values(
            tenant_id=actor.tenant_id,
            id=event_id,
            event_type=event_type,
            payload=payload,
            request_id=actor.request_id,
        )
    )
    await defer_in_transaction(
        session,
        DELIVER_TASK,
        queue="outbox",
        tenant_id=str(actor.tenant_id),
        event_id=str(event_id),
    )
    return event_id
