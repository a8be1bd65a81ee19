"""Partners, apps, credentials, review and installations (开放平台): the business rules.

Plain functions taking a session first; they flush, never commit. Developers are
platform principals of their own (:class:`DeveloperPrincipal`): a developer
account belongs to a partner company, not to any property company, so it is a
platform table with its own token audience rather than a staff login.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from linli.auth.actor import Actor, PrincipalKind
from linli.auth.passwords import hash_password, verify_password
from linli.core import audit, crypto, outbox
from linli.core.errors import (
    Conflict,
    FieldError,
    NotFound,
    PermissionDenied,
    Unauthorized,
    ValidationFailed,
)
from linli.core.ids import new_id
from linli.estate import service as estate_service
from linli.platform import events as platform_events
from linli.platform.models import (
    AppCredential,
    Developer,
    Environment,
    Installation,
    InstallationCommunity,
    Partner,
    PartnerApp,
    ReviewStatus,
)
from linli.platform.schemas import Manifest
from linli.tenancy.models import Community

WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - Standard Webhooks secret prefix


@dataclass(frozen=True)
class DeveloperPrincipal:
    """A signed-in developer of a partner company (developer portal only)."""

    id: uuid.UUID
    partner_id: uuid.UUID
    display_name: str = ""
    ip: str | None = None

    def actor(self) -> Actor:
        """For audit rows: recorded as a platform-level app principal (no tenant)."""
        return replace(
            Actor(kind=PrincipalKind.APP, id=self.id, display_name=self.display_name), ip=self.ip
        )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def hash_client_secret(secret: str) -> bytes:
    # Client secrets are 256 random bits: a keyless fast hash is enough (no guessing),
    # and it keeps the token endpoint's p99 low, unlike a password hash.
    return hashlib.sha256(secret.encode()).digest()


def new_webhook_secret() -> str:
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def webhook_secret(app: PartnerApp) -> str:
    return crypto.decrypt(app.webhook_secret_enc)


# --- partners and developers ------------------------------------------------------------


async def register_partner(
    session: AsyncSession, *, company_name: str, email: str, display_name: str, password: str
) -> Developer:
    email = email.strip().lower()
    taken = await session.scalar(select(Developer.id).where(Developer.email == email))
    if taken:
        raise Conflict("This email is already registered.", code="developer_exists")
    partner = Partner(id=new_id(), name=company_name, contact_email=email)
    session.add(partner)
    await session.flush()  # no relationship() between them: flush the parent first
    developer = Developer(
        id=new_id(),
        partner_id=partner.id,
        email=email,
        display_name=display_name,
        password_hash=hash_password(password),
        is_active=True,
    )
    session.add(developer)
    await session.flush()
    await audit.record(
        session,
        DeveloperPrincipal(developer.id, partner.id).actor(),
        "platform.partner.registered",
        target_type="partner",
        target_id=partner.id,
    )
    return developer


async def sign_in_developer(session: AsyncSession, *, email: str, password: str) -> Developer:
    developer = await session.scalar(
        select(Developer).where(Developer.email == email.strip().lower())
    )
    if developer is None or not developer.is_active:
        hash_password(password)  # same time as a wrong password
        raise Unauthorized("Wrong email or password.", code="invalid_credentials")
    if not verify_password(developer.password_hash, password):
        raise Unauthorized("Wrong email or password.", code="invalid_credentials")
    return developer


# --- apps ---------------------------------------------------------------------------------


def _manifest_values(manifest: Manifest) -> dict[str, Any]:
    try:
        icon, icon_type = manifest.icon()
    except ValueError as exc:
        raise ValidationFailed(
            "The manifest is not valid.",
            errors=[FieldError(field="icon_base64", message=str(exc))],
        ) from exc
    return {
        "name": manifest.name,
        "description": manifest.description,
        "icon": icon,
        "icon_type": icon_type,
        "requested_scopes": manifest.requested_scopes,
        "events": manifest.events,
        "webhook_url": manifest.webhook_url,
        "entry_url": manifest.entry_url,
        "console_url": manifest.console_url,
        "redirect_uris": manifest.redirect_uris,
    }


async def create_app(
    session: AsyncSession, developer: DeveloperPrincipal, manifest: Manifest
) -> tuple[PartnerApp, str]:
    """A new app in draft, and its webhook signing secret (shown once)."""
    secret = new_webhook_secret()
    app = PartnerApp(
        id=new_id(),
        partner_id=developer.partner_id,
        webhook_secret_enc=crypto.encrypt(secret),
        review_status=ReviewStatus.DRAFT.value,
        review_note="",
        **_manifest_values(manifest),
    )
    session.add(app)
    await session.flush()
    await audit.record(
        session, developer.actor(), "platform.app.created", target_type="app", target_id=app.id
    )
    return app, secret


async def my_apps(session: AsyncSession, developer: DeveloperPrincipal) -> list[PartnerApp]:
    rows = await session.scalars(
        select(PartnerApp)
        .where(PartnerApp.partner_id == developer.partner_id)
        .order_by(PartnerApp.created_at)
    )
    return list(rows)


async def my_app(
    session: AsyncSession, developer: DeveloperPrincipal, app_id: uuid.UUID
) -> PartnerApp:
    app = await session.scalar(
        select(PartnerApp).where(
            PartnerApp.id == app_id, PartnerApp.partner_id == developer.partner_id
        )
    )
    if app is None:
        raise NotFound("No such app.", code="app_not_found")
    return app


async def update_manifest(
    session: AsyncSession, developer: DeveloperPrincipal, app_id: uuid.UUID, manifest: Manifest
) -> PartnerApp:
    """Change the manifest. An approved app that asks for more goes back to review."""
    app = await my_app(session, developer, app_id)
    values = _manifest_values(manifest)
    widened = not set(values["requested_scopes"]) <= set(app.requested_scopes)
    for name, value in values.items():
        setattr(app, name, value)
    if widened and app.review_status == ReviewStatus.APPROVED.value:
        app.review_status = ReviewStatus.PENDING.value
    await session.flush()
    await audit.record(
        session, developer.actor(), "platform.app.updated", target_type="app", target_id=app.id
    )
    return app


async def submit_for_review(
    session: AsyncSession, developer: DeveloperPrincipal, app_id: uuid.UUID
) -> PartnerApp:
    app = await my_app(session, developer, app_id)
    if app.review_status == ReviewStatus.SUSPENDED.value:
        # Only the operator lifts a suspension: resubmitting must not bring the app back.
        raise Conflict("The platform has suspended this app.", code="app_suspended")
    if app.review_status in (ReviewStatus.APPROVED.value, ReviewStatus.PENDING.value):
        return app
    app.review_status = ReviewStatus.PENDING.value
    await session.flush()
    await audit.record(
        session, developer.actor(), "platform.app.submitted", target_type="app", target_id=app.id
    )
    return app


async def issue_credentials(
    session: AsyncSession, developer: DeveloperPrincipal, app_id: uuid.UUID, environment: str
) -> tuple[AppCredential, str]:
    """A new client id and secret for ``environment``; the previous one stops working."""
    app = await my_app(session, developer, app_id)
    env = Environment(environment)
    await session.execute(
        update(AppCredential)
        .where(
            AppCredential.app_id == app.id,
            AppCredential.environment == env.value,
            AppCredential.revoked_at.is_(None),
        )
        .values(revoked_at=_now())
    )
    secret = secrets.token_urlsafe(32)
    credential = AppCredential(
        id=new_id(),
        app_id=app.id,
        environment=env.value,
        client_id=f"{env.value}_{secrets.token_urlsafe(12)}",
        secret_hash=hash_client_secret(secret),
    )
    session.add(credential)
    await session.flush()
    await audit.record(
        session,
        developer.actor(),
        "platform.credentials.issued",
        target_type="app",
        target_id=app.id,
        detail={"environment": env.value, "client_id": credential.client_id},
    )
    return credential, secret


async def authenticate_client(
    session: AsyncSession, client_id: str, client_secret: str
) -> tuple[AppCredential, PartnerApp]:
    """The credential and app of a client; live credentials only for approved apps."""
    row = (
        await session.execute(
            select(AppCredential, PartnerApp)
            .join(PartnerApp, PartnerApp.id == AppCredential.app_id)
            .where(AppCredential.client_id == client_id, AppCredential.revoked_at.is_(None))
        )
    ).first()
    expected = row[0].secret_hash if row else hash_client_secret(secrets.token_hex(8))
    if not hmac.compare_digest(expected, hash_client_secret(client_secret)) or row is None:
        raise Unauthorized("Unknown client or wrong secret.", code="invalid_client")
    credential, app = row
    if app.review_status == ReviewStatus.SUSPENDED.value:
        raise PermissionDenied("The platform has suspended this app.", code="app_suspended")
    if (
        credential.environment == Environment.LIVE.value
        and app.review_status != ReviewStatus.APPROVED.value
    ):
        raise PermissionDenied("The app is not approved yet.", code="app_not_approved")
    return credential, app


# --- operator review (应用审核) ------------------------------------------------------------


async def apps_with_status(
    session: AsyncSession, actor: Actor, status: ReviewStatus
) -> list[PartnerApp]:
    """Apps in one review state: the queue (``pending``) oldest first, the others by name."""
    _operator(actor)
    order = PartnerApp.created_at if status is ReviewStatus.PENDING else PartnerApp.name
    rows = await session.scalars(
        select(PartnerApp).where(PartnerApp.review_status == status.value).order_by(order)
    )
    return list(rows)


@dataclass(frozen=True)
class AppUnderReview:
    """What the operator looks at: the app, its manifest and the partner that built it.

    No installation figures: which companies installed an app is their data, and the
    operator sees no tenant data.
    """

    app: PartnerApp
    partner: Partner


async def app_for_operator(
    session: AsyncSession, actor: Actor, app_id: uuid.UUID
) -> AppUnderReview:
    _operator(actor)
    row = (
        await session.execute(
            select(PartnerApp, Partner)
            .join(Partner, Partner.id == PartnerApp.partner_id)
            .where(PartnerApp.id == app_id)
        )
    ).first()
    if row is None:
        raise NotFound("No such app.", code="app_not_found")
    return AppUnderReview(row[0], row[1])


async def review_app(
    session: AsyncSession, actor: Actor, app_id: uuid.UUID, *, approve: bool, note: str
) -> PartnerApp:
    """Approve (listed in every company's directory) or reject (with a reason the
    developer reads in the developer portal) an app waiting in the queue."""
    _operator(actor)
    app = await session.get(PartnerApp, app_id, with_for_update=True)
    if app is None:
        raise NotFound("No such app.", code="app_not_found")
    note = note.strip()
    if not approve and not note:
        raise ValidationFailed(
            "Say why the app is rejected.",
            errors=[FieldError(field="note", message="A reason is required to reject an app.")],
        )
    # linli itself (seeding, benchmarks) approves directly; an operator decides on the queue.
    if actor.kind is not PrincipalKind.SYSTEM and app.review_status != ReviewStatus.PENDING.value:
        raise Conflict("The app is not waiting for review.", code="app_not_pending")
    app.review_status = (ReviewStatus.APPROVED if approve else ReviewStatus.REJECTED).value
    app.review_note = note
    app.reviewed_at = _now()
    await session.flush()
    await audit.record(
        session,
        actor,
        "platform.app.reviewed",
        target_type="app",
        target_id=app.id,
        detail={"status": app.review_status},
    )
    return app


async def suspend_app(
    session: AsyncSession, actor: Actor, app_id: uuid.UUID, *, reason: str
) -> PartnerApp:
    """Pull a live app (下架) at once, in every company that installed it.

    Nothing is deleted: the companies' installations and grants stay. What stops,
    from the next request on, is read from the app's status where it is checked:
    client authentication (no new token, no introspection), the guard on every
    app call (tokens already issued), the webhook fan-out and dispatch, the
    resident sign-in, and the portal entries.
    """
    _operator(actor)
    reason = reason.strip()
    if not reason:
        raise ValidationFailed(
            "Say why the app is suspended.",
            errors=[FieldError(field="reason", message="A reason is required.")],
        )
    app = await session.get(PartnerApp, app_id, with_for_update=True)
    if app is None:
        raise NotFound("No such app.", code="app_not_found")
    if app.review_status == ReviewStatus.SUSPENDED.value:
        return app
    if app.review_status not in (ReviewStatus.APPROVED.value, ReviewStatus.PENDING.value):
        raise Conflict("Only a live app can be suspended.", code="app_not_live")
    app.review_status = ReviewStatus.SUSPENDED.value
    app.review_note = reason
    app.reviewed_at = _now()
    await session.flush()
    await audit.record(
        session,
        actor,
        "platform.app.suspended",
        target_type="app",
        target_id=app.id,
        detail={"reason": reason},
    )
    return app


async def reinstate_app(session: AsyncSession, actor: Actor, app_id: uuid.UUID) -> PartnerApp:
    """Lift a suspension: the app is approved again and its installations work as before."""
    _operator(actor)
    app = await session.get(PartnerApp, app_id, with_for_update=True)
    if app is None:
        raise NotFound("No such app.", code="app_not_found")
    if app.review_status != ReviewStatus.SUSPENDED.value:
        raise Conflict("The app is not suspended.", code="app_not_suspended")
    app.review_status = ReviewStatus.APPROVED.value
    app.review_note = ""
    app.reviewed_at = _now()
    await session.flush()
    await audit.record(
        session, actor, "platform.app.reinstated", target_type="app", target_id=app.id
    )
    return app


def _operator(actor: Actor) -> None:
    if actor.kind not in (PrincipalKind.OPERATOR, PrincipalKind.SYSTEM):
        raise PermissionDenied()


# --- the company's app directory and installations ------------------------------------------


async def directory(session: AsyncSession) -> list[PartnerApp]:
    """Approved apps, listed to every company."""
    rows = await session.scalars(
        select(PartnerApp)
        .where(PartnerApp.review_status == ReviewStatus.APPROVED.value)
        .order_by(PartnerApp.name)
    )
    return list(rows)


async def approved_app(session: AsyncSession, app_id: uuid.UUID) -> PartnerApp:
    app = await session.get(PartnerApp, app_id)
    if app is None or app.review_status != ReviewStatus.APPROVED.value:
        raise NotFound("No such app.", code="app_not_found")
    return app


def _tenant(actor: Actor) -> uuid.UUID:
    if actor.tenant_id is None:
        raise PermissionDenied()
    return actor.tenant_id


async def install_app(
    session: AsyncSession,
    actor: Actor,
    *,
    app_id: uuid.UUID,
    community_ids: list[uuid.UUID],
    scopes: list[str],
) -> Installation:
    """Install an approved app for chosen communities, granting some of the scopes it asks."""
    tenant_id = _tenant(actor)
    app = await approved_app(session, app_id)
    extra = sorted(set(scopes) - set(app.requested_scopes))
    if extra:
        raise ValidationFailed(
            "An app can be granted only scopes it asks for.",
            errors=[FieldError(field="scopes", message=f"not requested: {', '.join(extra)}")],
        )
    wanted = set(community_ids)
    visible = set(
        await session.scalars(
            estate_service.readable_communities(actor)
            .where(Community.id.in_(wanted))
            .with_only_columns(Community.id)
        )
    )
    if wanted - visible:
        raise NotFound("No such community.", code="community_not_found")
    active = await session.scalar(
        select(Installation.id).where(
            Installation.app_id == app.id, Installation.revoked_at.is_(None)
        )
    )
    if active:
        raise Conflict("The app is already installed.", code="already_installed")
    installation = Installation(
        tenant_id=tenant_id,
        id=new_id(),
        app_id=app.id,
        granted_scopes=sorted(set(scopes)),
        installed_by=actor.id,
    )
    session.add(installation)
    await session.flush()
    await session.execute(
        insert(InstallationCommunity),
        [
            {"tenant_id": tenant_id, "installation_id": installation.id, "community_id": c}
            for c in sorted(wanted)
        ],
    )
    await audit.record(
        session,
        actor,
        "platform.app.installed",
        target_type="installation",
        target_id=installation.id,
        detail={"app_id": str(app.id), "scopes": installation.granted_scopes},
    )
    await outbox.emit(
        session,
        actor,
        platform_events.APP_INSTALLED,
        {
            "installation_id": str(installation.id),
            "app_id": str(app.id),
            "scopes": installation.granted_scopes,
            "community_ids": [str(c) for c in sorted(wanted)],
        },
    )
    return installation


async def revoke_installation(
    session: AsyncSession, actor: Actor, installation_id: uuid.UUID
) -> Installation:
    """Immediate effect: tokens stop working, no more webhooks, portal entries disappear."""
    from linli.platform.models import AppToken  # local: keeps the import list short

    installation = await get_installation(session, actor, installation_id)
    if installation.revoked_at is not None:
        return installation
    now = _now()
    installation.revoked_at = now
    installation.revoked_by = actor.id
    await session.execute(
        update(AppToken)
        .where(AppToken.installation_id == installation.id, AppToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    await session.flush()
    await audit.record(
        session,
        actor,
        "platform.app.revoked",
        target_type="installation",
        target_id=installation.id,
        detail={"app_id": str(installation.app_id)},
    )
    return installation


async def get_installation(
    session: AsyncSession, actor: Actor, installation_id: uuid.UUID
) -> Installation:
    _tenant(actor)
    installation = await session.scalar(
        select(Installation).where(Installation.id == installation_id)
    )
    if installation is None:
        raise NotFound("No such installation.", code="installation_not_found")
    return installation


@dataclass(frozen=True)
class InstallationView:
    installation: Installation
    app: PartnerApp
    community_ids: list[uuid.UUID]


async def installations(
    session: AsyncSession, actor: Actor, *, include_revoked: bool = False
) -> list[InstallationView]:
    _tenant(actor)
    statement = (
        select(Installation, PartnerApp)
        .join(PartnerApp, PartnerApp.id == Installation.app_id)
        .order_by(Installation.created_at.desc())
    )
    if not include_revoked:
        statement = statement.where(Installation.revoked_at.is_(None))
    rows = (await session.execute(statement)).all()
    communities = await _communities_of(session, [r[0].id for r in rows])
    return [InstallationView(i, a, communities.get(i.id, [])) for i, a in rows]


async def _communities_of(
    session: AsyncSession, installation_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    found: dict[uuid.UUID, list[uuid.UUID]] = {}
    if not installation_ids:
        return found
    rows = await session.execute(
        select(InstallationCommunity.installation_id, InstallationCommunity.community_id).where(
            InstallationCommunity.installation_id.in_(installation_ids)
        )
    )
    for installation_id, community_id in rows:
        found.setdefault(installation_id, []).append(community_id)
    return found


async def installation_communities(
    session: AsyncSession, installation_id: uuid.UUID
) -> list[uuid.UUID]:
    return (await _communities_of(session, [installation_id])).get(installation_id, [])


async def delete_partner(session: AsyncSession, partner_id: uuid.UUID) -> None:
    """Tests and operators only: a partner and everything it registered."""
    await session.execute(delete(Partner).where(Partner.id == partner_id))


# --- what apps do through platform endpoints (scopes notifications:send, parcels:write) ------


async def app_notify(
    session: AsyncSession,
    actor: Actor,
    *,
    resident_id: uuid.UUID,
    template: str,
    params: dict[str, Any],
    link: str = "",
) -> str:
    """An app messages a resident of its granted communities; returns the dedupe key."""
    from linli.notifications import service as notifications_service
    from linli.residents import service as residents_service

    if actor.kind is not PrincipalKind.APP:
        raise PermissionDenied()
    # Scoped to the app's communities: a resident elsewhere is "not found".
    await residents_service.get_resident(session, actor, resident_id=resident_id)
    result = await notifications_service.notify(
        session,
        actor,
        recipients=[resident_id],
        template=template,
        params=params,
        link=link,
        source_type="app",
        source_id=actor.id,
    )
    await audit.record(
        session,
        actor,
        "platform.app.notified",
        target_type="resident",
        target_id=resident_id,
        detail={"template": template},
    )
    return result.dedupe_key


@dataclass(frozen=True)
class PortalEntry:
    """A partner app's H5 entry shown to a resident, for one company they live under."""

    tenant_id: uuid.UUID
    company_name: str
    app: PartnerApp


async def portal_entries(session: AsyncSession, actor: Actor) -> list[PortalEntry]:
    """Entries of the apps installed (and not revoked) by the companies the resident lives
    under, for communities where they have a home."""
    from linli.db.engine import set_tenant
    from linli.residents import service as residents_service

    homes, _ = await residents_service.my_homes(session, actor)
    by_company: dict[uuid.UUID, tuple[str, set[uuid.UUID]]] = {}
    for home in homes:
        by_company.setdefault(home.company_id, (home.company_name, set()))[1].add(home.community_id)
    entries: list[PortalEntry] = []
    try:
        for tenant_id, (company_name, communities) in by_company.items():
            await set_tenant(session, tenant_id)
            rows = await session.scalars(
                select(PartnerApp)
                .join(Installation, Installation.app_id == PartnerApp.id)
                .join(
                    InstallationCommunity,
                    InstallationCommunity.installation_id == Installation.id,
                )
                .where(
                    Installation.revoked_at.is_(None),
                    PartnerApp.review_status != ReviewStatus.SUSPENDED.value,
                    PartnerApp.entry_url != "",
                    InstallationCommunity.community_id.in_(communities),
                )
                .distinct()
            )
            entries += [PortalEntry(tenant_id, company_name, app) for app in rows]
    finally:
        await set_tenant(session, None)
    return entries
