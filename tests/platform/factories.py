"""Partners, approved apps, credentials and installations, made through the services."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from linli.auth.actor import Actor
from linli.db.engine import unit_of_work
from linli.platform import service
from linli.platform.schemas import Manifest
from linli.platform.service import DeveloperPrincipal
from tests.factories import Company

ALL_SCOPES = [
    "estate:read",
    "residents:read:basic",
    "residents:read:contact",
    "access:passes:write",
    "billing:read",
]


@dataclass
class PartnerAppMade:
    developer: DeveloperPrincipal
    app_id: uuid.UUID
    client_id: str
    client_secret: str
    webhook_secret: str


@dataclass
class InstallationMade:
    tenant_id: uuid.UUID
    installation_id: uuid.UUID


async def make_partner_app(
    *,
    scopes: Sequence[str] = ALL_SCOPES,
    events: Sequence[str] = (),
    webhook_url: str = "",
    redirect_uris: Sequence[str] = ("https://partner.example/callback",),
    approve: bool = True,
    environment: str = "live",
    name: str | None = None,
) -> PartnerAppMade:
    async with unit_of_work() as session:
        developer = await service.register_partner(
            session,
            company_name=f"伙伴 {secrets.token_hex(3)}",
            email=f"dev-{secrets.token_hex(5)}@partner.example",
            display_name="开发者",
            password="partner-password-123",
        )
        principal = DeveloperPrincipal(developer.id, developer.partner_id)
        app, webhook_secret = await service.create_app(
            session,
            principal,
            Manifest(
                name=name or f"快递柜 {secrets.token_hex(2)}",
                description="Parcel lockers",
                requested_scopes=list(scopes),
                events=list(events),
                webhook_url=webhook_url,
                redirect_uris=list(redirect_uris),
            ),
        )
        if approve:
            await service.review_app(session, Actor.system(), app.id, approve=True, note="")
        credential, secret = await service.issue_credentials(
            session, principal, app.id, environment
        )
        return PartnerAppMade(principal, app.id, credential.client_id, secret, webhook_secret)


async def install(
    company: Company,
    app: PartnerAppMade,
    *,
    scopes: Sequence[str],
    communities: Sequence[uuid.UUID] | None = None,
) -> InstallationMade:
    from tests.factories import PASSWORD  # noqa: F401 - keeps the admin's login documented

    actor = Actor.staff(
        id=company.admin_id,
        tenant_id=company.id,
        roles=frozenset({"company_admin"}),
        all_communities=True,
        community_ids=frozenset(),
    )
    async with unit_of_work(company.id) as session:
        installation = await service.install_app(
            session,
            actor,
            app_id=app.app_id,
            community_ids=list(communities if communities is not None else company.communities),
            scopes=list(scopes),
        )
        return InstallationMade(company.id, installation.id)


async def app_token(client, app: PartnerAppMade, inst: InstallationMade, scope: str | None = None):  # type: ignore[no-untyped-def]
    data = {
        "grant_type": "client_credentials",
        "client_id": app.client_id,
        "client_secret": app.client_secret,
        "tenant_id": str(inst.tenant_id),
        "installation_id": str(inst.installation_id),
    }
    if scope is not None:
        data["scope"] = scope
    return await client.post("/api/v1/platform/oauth/token", data=data)
