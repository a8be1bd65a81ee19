"""Audit trail: every state change a person or partner makes leaves a row."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from linli.auth.actor import Actor
from linli.core.ids import new_id
from linli.core.models import AuditEntry, PlatformAuditEntry


async def record(
    session: AsyncSession,
    actor: Actor,
    action: str,
    *,
    target_type: str,
    target_id: object,
    detail: dict[str, Any] | None = None,
) -> None:
    """Write the audit row in the caller's transaction (so it exists iff the change does).

    ``detail`` must not carry personal data (phones, ID numbers): name fields, not values.
    """
    values = {
        "id": new_id(),
        "principal_kind": actor.kind.value,
        "principal_id": str(actor.id),
        "action": action,
        "target_type": target_type,
        "target_id": str(target_id),
        "request_id": actor.request_id,
        "ip": actor.ip,
        "detail": detail or {},
    }
    if actor.tenant_id is not None:
        await session.execute(insert(AuditEntry).values(tenant_id=actor.tenant_id, **values))
    else:
        await session.execute(insert(PlatformAuditEntry).values(**values))
