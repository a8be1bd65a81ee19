"""Event types the votes domain emits through the outbox (ids only, no personal data)."""

from __future__ import annotations

OPENED = "vote.opened"  # vote_id, community_id, kind, closes_at: tell the community's owners
CLOSED = "vote.closed"  # vote_id, community_id: the result is public (公示)

ALL = (OPENED, CLOSED)
