"""linli SDK: what a partner app needs, built only on linli's public API.

- :class:`LinliClient` / :class:`AsyncLinliClient`: client-credentials tokens for one
  installation (fetched and renewed for you) and calls to the public API.
- :func:`verify_webhook`: checks a Standard Webhooks signature and returns the event.
- :mod:`linli_sdk.oauth`: PKCE and the resident sign-in (authorization code) flow.
"""

from linli_sdk.client import ApiError, AsyncLinliClient, Installation, LinliClient
from linli_sdk.webhooks import Event, InvalidWebhook, verify_webhook

__all__ = [
    "ApiError",
    "AsyncLinliClient",
    "Event",
    "Installation",
    "InvalidWebhook",
    "LinliClient",
    "verify_webhook",
]
