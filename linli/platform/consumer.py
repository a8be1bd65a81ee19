"""The ``platform-webhooks`` outbox consumer lives in :mod:`.webhooks`; importing registers it."""

from linli.platform import webhooks

__all__ = ["webhooks"]
