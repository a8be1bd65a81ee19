"""Demo partner for ``make demo``: a parcel-locker company with an approved app.

Idempotent by developer email. Returns what the example app
(``examples/parcel_locker``) needs: its client id and secret and the webhook
secret, freshly issued on each run (secrets are stored hashed or encrypted, so
they cannot be read back; issuing new ones makes the old ones stop working).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from linli.auth.actor import Actor
from linli.core import crypto
from linli.db.engine import unit_of_work
from linli.platform import service
from linli.platform.models import Developer, PartnerApp
from linli.platform.schemas import Manifest
from linli.platform.service import DeveloperPrincipal

DEMO_DEVELOPER_EMAIL = "dev@locker.example"
DEMO_DEVELOPER_PASSWORD = "linli-partner-2024"  # noqa: S105 - printed demo login
DEMO_APP_NAME = "丰邻快递柜"
DEMO_EVENTS = ["platform.app.installed", "residents.resident.moved_in"]
DEMO_SCOPES = ["estate:read", "residents:read:basic", "access:passes:write", "parcels:write"]


@dataclass(frozen=True)
class DemoPartner:
    developer_email: str
    developer_password: str
    app_id: str
    client_id: str
    client_secret: str
    webhook_secret: str


async def seed_demo_partner(*, webhook_url: str = "http://127.0.0.1:9100/webhooks") -> DemoPartner:
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
                    entry_url="http://127.0.0.1:9100/h5",
                    redirect_uris=["http://127.0.0.1:9100/callback"],
                ),
            )
            await service.review_app(session, Actor.system(), app.id, approve=True, note="demo")
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
