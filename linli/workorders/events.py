"""Event types the workorders domain emits through the outbox.

Payloads carry ids only (no names, no phones): ``order_id``, ``number``,
``community_id``, ``status`` and, where someone must be told, the recipients:
``recipient_staff_ids`` (staff users) or ``resident_account_ids`` (portal accounts).
"""

from __future__ import annotations

CREATED = "workorder.created"
ASSIGNED = "workorder.assigned"  # -> the technician (technician_ids, recipient_staff_ids)
FINISHED = "workorder.finished"  # -> the resident who reported it (resident_account_ids)
REOPENED = "workorder.reopened"  # -> technician and managers after a bad rating
SLA_WARNING = "workorder.sla_warning"  # -> the community's managers (manager_ids)
CHARGE_RECORDED = "workorder.charge_recorded"  # -> billing: a parts/labour line for the house

ALL = (CREATED, ASSIGNED, FINISHED, REOPENED, SLA_WARNING, CHARGE_RECORDED)
