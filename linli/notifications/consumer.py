"""The ``notifications`` outbox consumer: domain events become messages.

An event whose type is a notification template key (``workorder.assigned``,
``workorder.sla_warning``, ``workorder.finished``, ``billing.reminder``,
``parcel.arrived``, ``visitor.arrived``…) is turned into :func:`notify` for the
ids in its payload:

- ``resident_ids`` / ``staff_ids``: lists of ids (``resident_id`` / ``staff_id``
  for one recipient; ``recipient_ids`` is read as resident ids), or as the work-order
  domain sends them: ``recipient_staff_ids`` (staff) and ``resident_account_ids``
  (portal accounts, found as this company's residents through the phone's blind index);
- ``community_id``: optional, scopes the delivery log;
- ``link``: optional, where the message leads;
- everything else that is not an id becomes the template's params (a mapping such as
  ``due`` is shown as its values joined).

The event id is the dedupe key, so an event delivered twice (at-least-once)
still makes one message per recipient. Other event types are ignored.

Enable it with ``LINLI_EVENT_CONSUMERS=mqtt,notifications``; the module must be
imported before the worker reads that setting (``linli.jobs.TASK_MODULES`` lists
``linli.notifications.tasks``, which imports this module).
"""

from __future__ import annotations

import uuid
from typing import Any

from linli.auth.actor import Actor
from linli.core.consumers import DeliveredEvent, EventConsumer, register
from linli.db.engine import unit_of_work
from linli.notifications import service, templates

RESIDENT_KEYS = ("resident_ids", "recipient_ids", "resident_id")
STAFF_KEYS = ("staff_ids", "staff_id", "recipient_staff_ids")
ACCOUNT_KEYS = ("resident_account_ids",)


def _params(payload: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key, value in payload.items():
        if key == "link" or key.endswith(("_id", "_ids")):
            continue
        if isinstance(value, dict):
            params[key] = ", ".join(str(v) for v in value.values() if v is not None)
        elif isinstance(value, list):
            params[key] = ", ".join(str(v) for v in value if not isinstance(v, (dict, list)))
        else:
            params[key] = value
    return params


def _ids(payload: dict[str, Any], *keys: str) -> list[uuid.UUID]:
    found: list[uuid.UUID] = []
    for key in keys:
        value = payload.get(key)
        values = value if isinstance(value, list) else [value] if value else []
        for raw in values:
            try:
                found.append(uuid.UUID(str(raw)))
            except ValueError:
                continue
    return found


class NotificationsConsumer(EventConsumer):
    name = "notifications"

    async def handle(self, event: DeliveredEvent) -> None:
        if event.type not in {t.key for t in templates.all_templates()}:
            return
        payload = event.payload
        residents = _ids(payload, *RESIDENT_KEYS)
        staff = _ids(payload, *STAFF_KEYS)
        accounts = _ids(payload, *ACCOUNT_KEYS)
        if not residents and not staff and not accounts:
            return
        community = _ids(payload, "community_id")
        async with unit_of_work(event.tenant_id) as session:
            if accounts:
                residents += await service.residents_of_accounts(session, accounts)
            await service.notify(
                session,
                Actor.system(event.tenant_id),
                recipients=residents,
                staff_recipients=staff,
                template=event.type,
                params=_params(payload),
                community_id=community[0] if community else None,
                link=str(payload.get("link") or ""),
                dedupe_key=f"event:{event.id}",
                source_type="event",
                source_id=event.id,
            )


register(NotificationsConsumer())
