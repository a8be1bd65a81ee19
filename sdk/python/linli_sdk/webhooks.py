"""Verify linli's webhooks (Standard Webhooks: ``webhook-id``, ``webhook-timestamp``,
``webhook-signature``) and read the event they carry."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

INSTALLATION_HEADER = "linli-installation-id"


class InvalidWebhook(Exception):
    """The signature, timestamp (older than 5 minutes) or body is not right: answer 400."""


@dataclass(frozen=True)
class Event:
    id: str  # the webhook-id: the same on every retry and replay — de-duplicate on it
    type: str
    tenant_id: str
    installation_id: str
    timestamp: str
    data: dict[str, Any]


def verify_webhook(secret: str, body: bytes | str, headers: Mapping[str, str]) -> Event:
    """Check the signature with the app's ``whsec_…`` secret and return the event."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        Webhook(secret).verify(body, lowered)
    except WebhookVerificationError as exc:
        raise InvalidWebhook(str(exc)) from exc
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise InvalidWebhook("the body is not JSON") from exc
    return Event(
        id=lowered["webhook-id"],
        type=str(payload["type"]),
        tenant_id=str(payload.get("tenant_id", "")),
        installation_id=lowered.get(INSTALLATION_HEADER, ""),
        timestamp=str(payload.get("timestamp", "")),
        data=dict(payload.get("data") or {}),
    )
