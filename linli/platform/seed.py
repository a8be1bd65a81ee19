"""Demo partner for ``make demo``: a parcel-locker company with an approved app,
installed by the demo company.

Idempotent by developer email. Returns what the example app
(``examples/parcel_locker``) needs: its client id and secret and the webhook
secret, freshly issued on each run (secrets are stored hashed or encrypted, so
they cannot be read back; issuing new ones makes the old ones stop working),
and the company's installation of it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from linli.auth.actor import Actor
from linli.core import crypto
from linli.db.engine import unit_of_work
from linli.platform import service
from linli.platform.models import Developer, Installation, PartnerApp
from linli.platform.schemas import Manifest
from linli.platform.service import DeveloperPrincipal

DEMO_DEVELOPER_EMAIL = "dev@locker.example"
DEMO_DEVELOPER_PASSWORD = "linli-partner-2024"  # noqa: S105 - printed demo login
DEMO_APP_NAME = "丰邻快递柜"
DEMO_EVENTS = ["platform.app.installed", "residents.resident.moved_in"]
DEMO_SCOPES = ["estate:read", "residents:read:basic", "access:passes:write", "parcels:write"]
DEMO_PARTNER_URL = "http://127.0.0.1:9100"  # where examples/parcel_locker listens in the demo


@dataclass(frozen=True)
class DemoPartner:
    developer_email: str
    developer_password: str
    app_id: str
    client_id: str
    client_secret: str
    webhook_secret: str


def _urls(partner_url: str) -> tuple[str, str, list[str]]:
    """The app's webhook, resident entry and SSO redirect URLs at ``partner_url``."""
    base = partner_url.rstrip("/")
    return f"{base}/webhooks", f"{base}/h5", [f"{base}/callback"]


async def seed_demo_partner(*, partner_url: str = DEMO_PARTNER_URL) -> DemoPartner:
    """The demo partner and its approved app, pointing at ``partner_url``."""
    webhook_url, entry_url, redirect_uris = _urls(partner_url)
    async with unit_of_work() as session:
        developer = await session.scalar(
            select(Developer).where(Developer.email == DEMO_DEVELOPER_EMAIL)
        )
        if developer is None:
            developer = await service.register_partner(
                session,
                company_name="丰邻科技",
                email=DEMO_DEVELOPER_EMAIL,
                display_name="丰邻开发者",
                password=DEMO_DEVELOPER_PASSWORD,
            )
        principal = DeveloperPrincipal(developer.id, developer.partner_id)
        app = await session.scalar(
            select(PartnerApp).where(
                PartnerApp.partner_id == developer.partner_id, PartnerApp.name == DEMO_APP_NAME
            )
        )
        if app is None:
            app, _ = await service.create_app(
                session,
                principal,
                Manifest(
                    name=DEMO_APP_NAME,
                    description="Parcel lockers: courier passes and pick-up codes for residents",
                    requested_scopes=DEMO_SCOPES,
                    events=DEMO_EVENTS,
                    webhook_url=webhook_url,
                    entry_url=entry_url,
                    redirect_uris=redirect_uris,
                ),
            )
            await service.review_app(session, Actor.system(), app.id, approve=True, note="demo")
        else:
            # The example app may listen elsewhere this time (its port was taken).
            app.webhook_url, app.entry_url, app.redirect_uris = _urls(partner_url)
            app.webhook_disabled_at = None
        webhook_secret = service.new_webhook_secret()
        app.webhook_secret_enc = crypto.encrypt(webhook_secret)
        credential, client_secret = await service.issue_credentials(
            session, principal, app.id, "live"
        )
        return DemoPartner(
            DEMO_DEVELOPER_EMAIL,
            DEMO_DEVELOPER_PASSWORD,
            str(app.id),
            credential.client_id,
            client_secret,
            webhook_secret,
        )


@dataclass(frozen=True)
class PartnerWiring:
    """Everything the example partner app needs to run against one company: its
    credentials (fresh) and that company's installation of it."""

    partner: DemoPartner
    partner_url: str
    tenant_id: uuid.UUID
    installation_id: uuid.UUID


async def wire_demo_partner(
    tenant_id: uuid.UUID,
    community_ids: Sequence[uuid.UUID],
    *,
    installed_by: uuid.UUID,
    partner_url: str = DEMO_PARTNER_URL,
) -> PartnerWiring:
    """Seed the demo partner and have the company install its app (once) for
    ``community_ids``, granting every scope it asks, as ``installed_by`` (the company
    admin) would in the console."""
    partner = await seed_demo_partner(partner_url=partner_url)
    app_id = uuid.UUID(partner.app_id)
    admin = Actor.staff(
        id=installed_by,
        tenant_id=tenant_id,
        roles=frozenset({"company_admin"}),
        all_communities=True,
        community_ids=frozenset(),
    )
    async with unit_of_work(tenant_id) as session:
        installation_id = await session.scalar(
            select(Installation.id).where(
                Installation.app_id == app_id, Installation.revoked_at.is_(None)
            )
        )
        if installation_id is None:
            installation = await service.install_app(
                session,
                admin,
                app_id=app_id,
                community_ids=list(community_ids),
                scopes=DEMO_SCOPES,
            )
            installation_id = installation.id
    return PartnerWiring(partner, partner_url.rstrip("/"), tenant_id, installation_id)
