"""The event catalog partners may subscribe to, and the scope each one needs.

An event reaches an installation only if the app subscribed to it, the company
granted the scope listed here, and the event's community (when it has one) is
among the installation's communities. docs/events.md documents the payloads.
"""

from __future__ import annotations

from linli.billing import events as billing_events
from linli.estate import events as estate_events
from linli.workorders import events as workorder_events

APP_INSTALLED = "platform.app.installed"
APP_REVOKED = "platform.app.revoked"

# event type -> the scope an installation needs to receive it (None: any installation)
CATALOG: dict[str, str | None] = {
    estate_events.BUILDING_CREATED: "estate:read",
    estate_events.HOUSE_CREATED: "estate:read",
    estate_events.HOUSE_ARCHIVED: "estate:read",
    estate_events.HOUSES_IMPORTED: "estate:read",
    estate_events.PARKING_IMPORTED: "estate:read",
    estate_events.FACILITIES_IMPORTED: "estate:read",
    estate_events.RESIDENT_CREATED: "residents:read:basic",
    estate_events.RESIDENT_MOVED_IN: "residents:read:basic",
    estate_events.RESIDENT_MOVED_OUT: "residents:read:basic",
    estate_events.VEHICLE_REGISTERED: "residents:read:basic",
    workorder_events.CREATED: "estate:read",
    workorder_events.FINISHED: "estate:read",
    billing_events.RUN_ISSUED: "billing:read",
    billing_events.RUN_REVERTED: "billing:read",
    billing_events.RECEIPT_PAID: "billing:read",
    billing_events.RECEIPT_VOIDED: "billing:read",
    APP_INSTALLED: None,
    APP_REVOKED: None,
}
