"""linli SDK: what a partner app needs, built only on linli's public API.

- :class:`LinliClient` / :class:`AsyncLinliClient`: client-credentials tokens for one
  installation (fetched and renewed for you) and calls to the public API.
- :func:`verify_webhook`: checks a Standard Webhooks signature and returns the event.
- :mod:`linli_sdk.oauth`: PKCE and the resident sign-in (authorization code) flow;
  :func:`verify_id_token` checks the OpenID Connect id_token it ends with.
"""

from linli_sdk.client import ApiError, AsyncLinliClient, Installation, LinliClient
from linli_sdk.oauth import InvalidIdToken, verify_id_token
from linli_sdk.webhooks import Event, InvalidWebhook, verify_webhook

__all__ = [
    "ApiError",
    "AsyncLinliClient",
    "Event",
    "Installation",
    "InvalidIdToken",
    "InvalidWebhook",
    "LinliClient",
    "verify_id_token",
    "verify_webhook",
]
