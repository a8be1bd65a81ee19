"""Audit trail: every state change a person or partner makes leaves a row."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from linli.auth.actor import Actor
from linli.core.ids import new_id
from linli.core.models import AuditEntry, PlatformAuditEntry

Column = ColumnElement[Any] | QueryableAttribute[Any]


@dataclass(frozen=True)
class _CommunityLookup:
    tenant: Column
    key: Column
    community: Column


_COMMUNITY_OF: dict[str, _CommunityLookup] = {}


def community_of_target(
    target_type: str, *, tenant: Column, key: Column, community: Column
) -> None:
    """Tell the audit how to find the community of a target type (each domain, in models.py).

    ``record`` then stores the community with the row (one indexed look-up inside the
    INSERT), and community managers read only the trail of their communities.
    For a target in several communities (a resident, an employee) any one is kept.
    """
    _COMMUNITY_OF[target_type] = _CommunityLookup(tenant, key, community)


def _community_of(tenant_id: uuid.UUID, target_type: str, target_id: object) -> Any:
    lookup = _COMMUNITY_OF.get(target_type)
    if lookup is None:
        return None
    try:
        key = target_id if isinstance(target_id, uuid.UUID) else uuid.UUID(str(target_id))
    except ValueError:
        return None  # "bulk" and other non-row targets
    return (
        select(lookup.community)
        .where(lookup.tenant == tenant_id, lookup.key == key)
        .limit(1)
        .scalar_subquery()
    )


async def record(
    session: AsyncSession,
    actor: Actor,
    action: str,
    *,
    target_type: str,
    target_id: object,
    detail: dict[str, Any] | None = None,
    community_id: uuid.UUID | None = None,
) -> None:
    """Write the audit row in the caller's transaction (so it exists iff the change does).

    ``detail`` must not carry personal data (phones, ID numbers): name fields, not values.
    ``community_id`` defaults to the target's community when its type is registered
    (see :func:`community_of_target`).
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
        community = community_id or _community_of(actor.tenant_id, target_type, target_id)
        await session.execute(
            insert(AuditEntry).values(tenant_id=actor.tenant_id, community_id=community, **values)
        )
    else:
        await session.execute(insert(PlatformAuditEntry).values(**values))
