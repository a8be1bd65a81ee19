"""The scope catalog of the open platform and the ONE map from scopes to permissions.

An endpoint declares a :class:`~linli.auth.permissions.Permission`; an app's token
holds scopes. :func:`permissions_for` turns granted scopes into the permissions the
app's :class:`~linli.auth.actor.Actor` carries, so ``Authorizer(Permission.X)``
accepts an app exactly when one of its scopes maps to ``X``. Nothing else in linli
knows about scopes. Imports nothing but the permission table (the token decoder
uses it, so it must stay import-cycle free).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from linli.auth.permissions import Permission


@dataclass(frozen=True)
class Scope:
    name: str
    summary: str  # English msgid, shown on the consent and grant pages
    permissions: frozenset[Permission]
    resident: bool = False  # offered in the resident sign-in (authorization code) flow


CATALOG: dict[str, Scope] = {
    s.name: s
    for s in (
        Scope(
            "estate:read",
            "Read communities, buildings, houses and parking",
            frozenset({Permission.ESTATE_READ, Permission.COMMUNITIES_READ}),
        ),
        Scope(
            "residents:read:basic",
            "Read residents' names, houses and vehicles (phone and ID masked)",
            frozenset({Permission.RESIDENTS_READ}),
        ),
        Scope(
            "residents:read:contact",
            "Read residents' full phone and ID-card numbers",
            frozenset({Permission.RESIDENTS_READ_CONTACT}),
        ),
        Scope(
            "access:passes:write",
            "Issue and revoke visitor and courier gate passes",
            frozenset({Permission.ACCESS_READ, Permission.ACCESS_VISITORS}),
        ),
        Scope(
            "parcels:write",
            "Register parcels for residents",
            frozenset({Permission.PLATFORM_PARCELS_WRITE}),
        ),
        Scope(
            "billing:read",
            "Read bills, balances and receipts",
            frozenset({Permission.BILLING_READ}),
        ),
        Scope(
            "notifications:send",
            "Send notifications to residents",
            frozenset({Permission.PLATFORM_NOTIFY}),
        ),
        # Resident sign-in (OpenID Connect) scopes: what a resident shares with the app.
        Scope("openid", "Know who you are (a pseudonymous id)", frozenset(), resident=True),
        Scope("profile", "Your display name", frozenset(), resident=True),
        Scope("houses", "The houses you live in", frozenset(), resident=True),
        Scope("phone", "Your phone number", frozenset(), resident=True),
    )
}

INSTALLATION_SCOPES = frozenset(name for name, s in CATALOG.items() if not s.resident)
RESIDENT_SCOPES = frozenset(name for name, s in CATALOG.items() if s.resident)


def permissions_for(scopes: Iterable[str]) -> frozenset[Permission]:
    """The permissions an app holding ``scopes`` has; unknown scopes grant nothing."""
    granted: set[Permission] = set()
    for name in scopes:
        scope = CATALOG.get(name)
        if scope is not None and not scope.resident:
            granted |= scope.permissions
    return frozenset(granted)
