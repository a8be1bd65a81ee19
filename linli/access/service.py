"""Access control rules (门禁): access points, devices, keys, passes, remote open, events, parking.

Staff functions scope every query to the actor's communities (``community_scope``),
RLS fences the company underneath. Resident functions start from the portal
account and reach the company's rows only through the phone's blind index, the
way ``linli.residents.service`` does. Device traffic is handled in ``ingest.py``
(events, state) and ``commands.py`` (commands and their acknowledgements).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import math
import secrets
import time
import uuid
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from psycopg.types.json import Jsonb
from sqlalchemy import Select, bindparam, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from linli.access import credentials, protocol
from linli.access.models import (
    AccessEvent,
    AccessPoint,
    AccessPointKind,
    CommunityKey,
    Device,
    DeviceKind,
    EventKind,
    ParkingTariff,
    Pass,
    PassKind,
    Revocation,
    VehicleEntry,
)
from linli.auth.actor import Actor, PrincipalKind
from linli.auth.models import ResidentAccount
from linli.core import audit, crypto
from linli.core.errors import (
    Conflict,
    DomainError,
    FieldError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from linli.core.ids import new_id
from linli.core.pagination import PageParams, make_page, paginate_statement
from linli.core.persistence import flush_or_conflict
from linli.db.engine import set_tenant, unit_of_work
from linli.db.reads import ReadQuery, read_rows, write_rows
from linli.estate import service as estate
from linli.residents import service as residents
from linli.residents.models import Vehicle

RESIDENT_PASS_DAYS = 30
QR_SECONDS = 60  # a resident's rotating QR code is good for this long
MAX_VISITOR_DAYS = 7
MAX_VISITOR_ENTRIES = 20
EVENT_PAGE_MAX = 200


class DeviceTimeout(DomainError):
    """The device did not answer the command in time (offline, or the network is down)."""

    status = 504
    code = "device_timeout"
    default_message = (
        "The door did not answer in time. It may be offline; try again or call the front desk."
    )


class DeviceRefused(DomainError):
    status = 409
    code = "device_refused"
    default_message = "The door refused to open."


def _tenant(actor: Actor) -> uuid.UUID:
    if actor.tenant_id is None:
        raise NotFound()
    return actor.tenant_id


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- scoping -----------------------------------------------------------------------------------


def readable_points(actor: Actor) -> Select[AccessPoint]:
    return select(AccessPoint).where(estate.community_scope(actor, AccessPoint.community_id))


def readable_devices(actor: Actor) -> Select[Device]:
    return select(Device).where(estate.community_scope(actor, Device.community_id))


def readable_passes(actor: Actor) -> Select[Pass]:
    return select(Pass).where(estate.community_scope(actor, Pass.community_id))


def readable_events(actor: Actor) -> Select[AccessEvent]:
    return select(AccessEvent).where(estate.community_scope(actor, AccessEvent.community_id))


# --- access points -----------------------------------------------------------------------------


async def create_access_point(
    session: AsyncSession,
    actor: Actor,
    *,
    community_id: uuid.UUID,
    kind: AccessPointKind,
    name: str,
    building_id: uuid.UUID | None = None,
) -> AccessPoint:
    await estate.get_community(session, actor, community_id=community_id)
    if kind is AccessPointKind.BUILDING_ENTRANCE and building_id is None:
        raise ValidationFailed(
            errors=[
                FieldError("building_id", "A building entrance names its building.", "required")
            ]
        )
    if building_id is not None:
        building = await estate.get_building(session, actor, building_id=building_id)
        if building.community_id != community_id:
            raise ValidationFailed(
                errors=[
                    FieldError(
                        "building_id", "The building is in another community.", "community_mismatch"
                    )
                ]
            )
    point = AccessPoint(
        tenant_id=_tenant(actor),
        community_id=community_id,
        kind=kind,
        name=name.strip(),
        building_id=building_id,
    )
    session.add(point)
    await flush_or_conflict(
        session, Conflict("An access point with this name exists.", code="access_point_taken")
    )
    await audit.record(
        session, actor, "access_point.create", target_type="access_point", target_id=point.id
    )
    return point


async def get_access_point(
    session: AsyncSession, actor: Actor, *, access_point_id: uuid.UUID
) -> AccessPoint:
    point = await session.scalar(readable_points(actor).where(AccessPoint.id == access_point_id))
    if point is None:
        raise NotFound("Access point not found.", code="access_point_not_found")
    return point


async def list_access_points(
    session: AsyncSession, actor: Actor, *, community_id: uuid.UUID | None, page: PageParams
) -> tuple[list[AccessPoint], str | None]:
    statement = readable_points(actor)
    if community_id is not None:
        statement = statement.where(AccessPoint.community_id == community_id)
    rows = (await session.scalars(paginate_statement(statement, AccessPoint.id, page))).all()
    return make_page(list(rows), page)


# --- community keys ----------------------------------------------------------------------------

# Decrypted signing keys by (tenant, community): decrypting on every remote open would cost
# more than the open itself. Rotating a key (a new kid) replaces the entry.
_signing_keys: dict[tuple[uuid.UUID, uuid.UUID], tuple[int, Ed25519PrivateKey]] = {}


def _raw_private(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


async def signing_key(
    session: AsyncSession, tenant_id: uuid.UUID, community_id: uuid.UUID
) -> tuple[int, Ed25519PrivateKey]:
    """The community's current signing key, made on first use (社区签名密钥)."""
    cached = _signing_keys.get((tenant_id, community_id))
    if cached is not None:
        return cached
    row = await session.scalar(
        select(CommunityKey)
        .where(CommunityKey.community_id == community_id, CommunityKey.retired_at.is_(None))
        .order_by(CommunityKey.kid.desc())
        .limit(1)
    )
    if row is None:
        key = Ed25519PrivateKey.generate()
        row = CommunityKey(
            tenant_id=tenant_id,
            community_id=community_id,
            kid=1,
            public_key=credentials.public_bytes(key.public_key()),
            private_key_enc=crypto.encrypt(credentials.b64encode(_raw_private(key))),
        )
        session.add(row)
        await flush_or_conflict(session, Conflict("Retry.", code="key_race"))
        result = (row.kid, key)
    else:
        raw = credentials.b64decode(crypto.decrypt(row.private_key_enc))
        result = (row.kid, Ed25519PrivateKey.from_private_bytes(raw))
    _signing_keys[(tenant_id, community_id)] = result
    return result


async def public_keys(session: AsyncSession, community_id: uuid.UUID) -> dict[int, bytes]:
    """Every unretired public key of the community, by kid: what devices verify with."""
    rows = await session.execute(
        select(CommunityKey.kid, CommunityKey.public_key).where(
            CommunityKey.community_id == community_id, CommunityKey.retired_at.is_(None)
        )
    )
    return {kid: bytes(key) for kid, key in rows.all()}


# --- devices -----------------------------------------------------------------------------------


def hash_secret(secret: str) -> bytes:
    """SHA-256 of a device's MQTT secret. The secret is 192 random bits, so a fast hash is
    enough (nothing to brute-force) and a broker auth hook can check it on every connect."""
    return hashlib.sha256(secret.encode()).digest()


def secret_matches(secret: str, stored: bytes) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored)


@dataclasses.dataclass(frozen=True)
class Provisioned:
    """What an installer types into a new device, shown once: nothing secret is kept."""

    device: Device
    tenant_id: uuid.UUID
    mqtt_username: str
    mqtt_password: str
    private_key: str  # base64url of the raw 32-byte Ed25519 seed
    community_keys: dict[int, str]

    @property
    def topics(self) -> dict[str, str]:
        d = self.device
        return {
            leaf: protocol.topic(self.tenant_id, d.community_id, d.id, leaf)
            for leaf in ("cmd", "ack", "evt", "state")
        }


async def _credentials_for(
    session: AsyncSession, device: Device
) -> tuple[str, Ed25519PrivateKey, dict[int, str]]:
    secret = secrets.token_urlsafe(24)
    key = Ed25519PrivateKey.generate()
    device.mqtt_secret_hash = hash_secret(secret)
    device.public_key = credentials.public_bytes(key.public_key())
    await signing_key(session, device.tenant_id, device.community_id)
    keys = await public_keys(session, device.community_id)
    return secret, key, {kid: credentials.b64encode(raw) for kid, raw in keys.items()}


async def provision_device(
    session: AsyncSession,
    actor: Actor,
    *,
    access_point_id: uuid.UUID,
    kind: DeviceKind,
    name: str,
    vendor: str = "",
) -> Provisioned:
    point = await get_access_point(session, actor, access_point_id=access_point_id)
    device = Device(
        tenant_id=_tenant(actor),
        id=new_id(),
        community_id=point.community_id,
        access_point_id=point.id,
        kind=kind,
        name=name.strip(),
        vendor=vendor.strip(),
        mqtt_secret_hash=b"",
        public_key=b"",
    )
    secret, key, keys = await _credentials_for(session, device)
    session.add(device)
    await flush_or_conflict(
        session, Conflict("A device with this name exists.", code="device_name_taken")
    )
    await audit.record(
        session, actor, "device.provision", target_type="device", target_id=device.id
    )
    return Provisioned(
        device,
        device.tenant_id,
        str(device.id),
        secret,
        credentials.b64encode(_raw_private(key)),
        keys,
    )


async def rotate_device_credentials(
    session: AsyncSession, actor: Actor, *, device_id: uuid.UUID
) -> Provisioned:
    """New MQTT secret and key pair (a replaced controller, a leaked secret); old ones stop."""
    device = await get_device(session, actor, device_id=device_id)
    secret, key, keys = await _credentials_for(session, device)
    await session.flush()
    await audit.record(session, actor, "device.rotate", target_type="device", target_id=device.id)
    return Provisioned(
        device,
        device.tenant_id,
        str(device.id),
        secret,
        credentials.b64encode(_raw_private(key)),
        keys,
    )


async def get_device(session: AsyncSession, actor: Actor, *, device_id: uuid.UUID) -> Device:
    device = await session.scalar(readable_devices(actor).where(Device.id == device_id))
    if device is None:
        raise NotFound("Device not found.", code="device_not_found")
    return device


async def list_devices(
    session: AsyncSession,
    actor: Actor,
    *,
    community_id: uuid.UUID | None,
    online: bool | None = None,
    page: PageParams,
) -> tuple[list[Device], str | None]:
    statement = readable_devices(actor)
    if community_id is not None:
        statement = statement.where(Device.community_id == community_id)
    if online is not None:
        statement = statement.where(Device.online.is_(online))
    rows = (await session.scalars(paginate_statement(statement, Device.id, page))).all()
    return make_page(list(rows), page)


async def set_device_enabled(
    session: AsyncSession, actor: Actor, *, device_id: uuid.UUID, enabled: bool
) -> Device:
    """Disable at once: the ingest drops its messages and no command goes to it (停用设备)."""
    device = await get_device(session, actor, device_id=device_id)
    if device.enabled != enabled:
        device.enabled = enabled
        await session.flush()
        await audit.record(
            session,
            actor,
            "device.enable" if enabled else "device.disable",
            target_type="device",
            target_id=device.id,
        )
    return device


async def device_counts(session: AsyncSession, actor: Actor) -> dict[str, int]:
    rows = await session.execute(
        select(Device.online, Device.enabled, func.count())
        .where(estate.community_scope(actor, Device.community_id))
        .group_by(Device.online, Device.enabled)
    )
    counts = {"online": 0, "offline": 0, "disabled": 0}
    for online, enabled, count in rows.all():
        key = "disabled" if not enabled else ("online" if online else "offline")
        counts[key] += count
    return counts


# --- passes ------------------------------------------------------------------------------------


def _window(valid_from: dt.datetime, valid_until: dt.datetime, *, max_days: int) -> None:
    errors = []
    if valid_until <= valid_from:
        errors.append(FieldError("valid_until", "The pass must end after it starts.", "window"))
    if valid_until - valid_from > dt.timedelta(days=max_days):
        errors.append(
            FieldError("valid_until", "A pass may last at most 7 days.", "window_too_long")
        )
    if valid_until <= _now():
        errors.append(FieldError("valid_until", "The pass would already be over.", "in_past"))
    if errors:
        raise ValidationFailed(errors=errors)


def _entries(entries: int | None) -> None:
    if entries is not None and not 1 <= entries <= MAX_VISITOR_ENTRIES:
        raise ValidationFailed(
            errors=[FieldError("entries", "Between 1 and 20 entries.", "out_of_range")]
        )


def _link_token(tenant_id: uuid.UUID, pass_id: uuid.UUID) -> tuple[str, bytes]:
    secret = secrets.token_bytes(16)
    token = credentials.b64encode(tenant_id.bytes + pass_id.bytes + secret)
    return token, hashlib.sha256(secret).digest()


def _parse_link(token: str) -> tuple[uuid.UUID, uuid.UUID, bytes] | None:
    try:
        raw = credentials.b64decode(token)
    except ValueError:
        return None
    if len(raw) != 48:
        return None
    return uuid.UUID(bytes=raw[:16]), uuid.UUID(bytes=raw[16:32]), raw[32:]


async def _gate_points(session: AsyncSession, community_id: uuid.UUID) -> list[uuid.UUID]:
    """Community gates: where visitors and couriers may enter."""
    rows = await session.scalars(
        select(AccessPoint.id)
        .where(
            AccessPoint.community_id == community_id,
            AccessPoint.kind == AccessPointKind.COMMUNITY_GATE,
        )
        .order_by(AccessPoint.id)
    )
    return list(rows.all())


async def _new_pass(
    session: AsyncSession,
    actor: Actor,
    *,
    community_id: uuid.UUID,
    kind: PassKind,
    holder_name: str,
    phone: str | None,
    resident_id: uuid.UUID | None,
    access_point_ids: Sequence[uuid.UUID],
    valid_from: dt.datetime,
    valid_until: dt.datetime,
    entries: int | None,
    note: str = "",
    with_link: bool = True,
) -> tuple[Pass, str | None]:
    if not holder_name.strip():
        raise ValidationFailed(errors=[FieldError("name", "A name is required.", "required")])
    normalized = None
    if phone and phone.strip():
        normalized = crypto.normalize_phone(phone)
        if normalized is None:
            raise ValidationFailed(
                errors=[FieldError("phone", "Not a valid mainland mobile number.", "invalid_phone")]
            )
    points = list(dict.fromkeys(access_point_ids))
    if not points:
        raise Conflict("This community has no gate to pass yet.", code="no_access_points")
    tenant_id = _tenant(actor)
    row = Pass(
        tenant_id=tenant_id,
        id=new_id(),
        community_id=community_id,
        kind=kind,
        holder_name=holder_name.strip()[:100],
        phone_enc=crypto.encrypt(normalized) if normalized else None,
        phone_hash=crypto.blind_index(normalized) if normalized else None,
        resident_id=resident_id,
        access_point_ids=points[: credentials.MAX_POINTS],
        valid_from=valid_from,
        valid_until=valid_until,
        max_entries=entries,
        issued_by_kind=actor.kind.value,
        issued_by=actor.id,
        note=note[:200],
    )
    link = None
    if with_link:
        link, row.link_hash = _link_token(tenant_id, row.id)
    session.add(row)
    await session.flush()
    await audit.record(
        session, actor, f"pass.issue.{kind.value}", target_type="access_pass", target_id=row.id
    )
    return row, link


async def pass_token(
    session: AsyncSession, row: Pass, *, seconds: int | None = None, now: dt.datetime | None = None
) -> str:
    """The signed QR text of a pass; ``seconds`` cuts its window short (rotating codes)."""
    kid, key = await signing_key(session, row.tenant_id, row.community_id)
    now = now or _now()
    until = row.valid_until
    if seconds is not None:
        until = min(until, now + dt.timedelta(seconds=seconds))
    claims = credentials.claims_for(
        kid=kid,
        community_id=row.community_id,
        pass_id=row.id,
        holder_id=row.resident_id or row.id,
        kind=row.kind.value,
        valid_from=row.valid_from,
        valid_until=until,
        entries=row.max_entries,
        access_point_ids=row.access_point_ids,
    )
    return credentials.sign_pass(key, claims)


async def register_walk_in(
    session: AsyncSession,
    actor: Actor,
    *,
    community_id: uuid.UUID,
    name: str,
    phone: str | None,
    hours: int = 4,
    entries: int | None = 1,
    note: str = "",
) -> tuple[Pass, str]:
    """Front desk registers a walk-in visitor (访客登记) and hands over a pass link."""
    await estate.get_community(session, actor, community_id=community_id)
    _entries(entries)
    now = _now()
    row, link = await _new_pass(
        session,
        actor,
        community_id=community_id,
        kind=PassKind.VISITOR,
        holder_name=name,
        phone=phone,
        resident_id=None,
        access_point_ids=await _gate_points(session, community_id),
        valid_from=now - dt.timedelta(minutes=1),
        valid_until=now + dt.timedelta(hours=max(1, min(hours, 24))),
        entries=entries,
        note=note,
    )
    assert link is not None
    return row, link


async def issue_courier_pass(
    session: AsyncSession,
    actor: Actor,
    *,
    community_id: uuid.UUID,
    name: str,
    phone: str | None,
    valid_from: dt.datetime,
    valid_until: dt.datetime,
    entries: int | None,
) -> tuple[Pass, str]:
    """A courier's or delivery rider's gate pass (快递通行证), for the parcels domain and apps."""
    await estate.get_community(session, actor, community_id=community_id)
    _window(valid_from, valid_until, max_days=MAX_VISITOR_DAYS)
    _entries(entries)
    row, link = await _new_pass(
        session,
        actor,
        community_id=community_id,
        kind=PassKind.COURIER,
        holder_name=name,
        phone=phone,
        resident_id=None,
        access_point_ids=await _gate_points(session, community_id),
        valid_from=valid_from,
        valid_until=valid_until,
        entries=entries,
    )
    assert link is not None
    return row, link


async def get_pass(session: AsyncSession, actor: Actor, *, pass_id: uuid.UUID) -> Pass:
    row = await session.scalar(readable_passes(actor).where(Pass.id == pass_id))
    if row is None:
        raise NotFound("Pass not found.", code="pass_not_found")
    return row


async def list_passes(
    session: AsyncSession,
    actor: Actor,
    *,
    community_id: uuid.UUID | None,
    kind: PassKind | None,
    current_only: bool,
    page: PageParams,
) -> tuple[list[Pass], str | None]:
    statement = readable_passes(actor)
    if community_id is not None:
        statement = statement.where(Pass.community_id == community_id)
    if kind is not None:
        statement = statement.where(Pass.kind == kind)
    if current_only:
        statement = statement.where(Pass.valid_until > _now(), Pass.revoked_at.is_(None))
    rows = (await session.scalars(paginate_statement(statement, Pass.id, page))).all()
    return make_page(list(rows), page)


async def _revoke(session: AsyncSession, actor: Actor, row: Pass) -> Pass:
    if row.revoked_at is not None:
        return row
    row.revoked_at = _now()
    # Two revocations in one community at once would pick the same version: the unique
    # index on (community, version) refuses the second, which the caller retries.
    version = await session.scalar(
        select(func.coalesce(func.max(Revocation.version), 0) + 1).where(
            Revocation.community_id == row.community_id
        )
    )
    session.add(
        Revocation(
            tenant_id=row.tenant_id,
            community_id=row.community_id,
            pass_id=row.id,
            version=int(version or 1),
            expires_at=row.valid_until,
        )
    )
    await flush_or_conflict(session, Conflict("Please retry.", code="revocation_race"))
    await audit.record(session, actor, "pass.revoke", target_type="access_pass", target_id=row.id)
    return row


async def revoke_pass(session: AsyncSession, actor: Actor, *, pass_id: uuid.UUID) -> Pass:
    return await _revoke(session, actor, await get_pass(session, actor, pass_id=pass_id))


async def revocation_list(
    session: AsyncSession, community_id: uuid.UUID, *, since: int = 0
) -> tuple[int, list[uuid.UUID]]:
    """(latest version, pass ids revoked after ``since`` that have not expired yet)."""
    rows = (
        await session.execute(
            select(Revocation.version, Revocation.pass_id)
            .where(
                Revocation.community_id == community_id,
                Revocation.version > since,
                Revocation.expires_at > _now(),
            )
            .order_by(Revocation.version)
        )
    ).all()
    latest = await session.scalar(
        select(func.coalesce(func.max(Revocation.version), 0)).where(
            Revocation.community_id == community_id
        )
    )
    return int(latest or 0), [pass_id for _, pass_id in rows]


@dataclasses.dataclass(frozen=True)
class PublicPass:
    """What the visitor's link page shows: no phone, no address beyond the community."""

    pass_id: uuid.UUID
    holder_name: str
    kind: PassKind
    valid_from: dt.datetime
    valid_until: dt.datetime
    max_entries: int | None
    used_entries: int
    revoked: bool
    community_name: str
    token: str | None  # None once revoked or over


async def public_pass(session: AsyncSession, *, link: str) -> PublicPass:
    """The pass a link names (访客通行证页面). Anyone with the link sees it; nobody else."""
    parsed = _parse_link(link)
    if parsed is None:
        raise NotFound("Pass not found.", code="pass_not_found")
    tenant_id, pass_id, secret = parsed
    await set_tenant(session, tenant_id)
    row = await session.scalar(select(Pass).where(Pass.id == pass_id))
    if (
        row is None
        or row.link_hash is None
        or not hmac.compare_digest(row.link_hash, hashlib.sha256(secret).digest())
    ):
        raise NotFound("Pass not found.", code="pass_not_found")
    community = await estate.get_community(
        session, Actor.system(tenant_id), community_id=row.community_id
    )
    live = row.revoked_at is None and row.valid_until > _now()
    return PublicPass(
        row.id,
        row.holder_name,
        row.kind,
        row.valid_from,
        row.valid_until,
        row.max_entries,
        row.used_entries,
        row.revoked_at is not None,
        community.name,
        await pass_token(session, row) if live else None,
    )


# --- residents: my doors, my QR, visitors, history ---------------------------------------------


async def _account(session: AsyncSession, actor: Actor) -> ResidentAccount:
    if actor.kind is not PrincipalKind.RESIDENT:
        raise PermissionDenied()
    account = await session.scalar(select(ResidentAccount).where(ResidentAccount.id == actor.id))
    if account is None or not account.is_active or account.phone_hash is None:
        raise NotFound("Account not found.", code="account_not_found")
    return account


@dataclasses.dataclass
class Door:
    access_point_id: uuid.UUID
    name: str
    kind: AccessPointKind
    online: bool


@dataclasses.dataclass
class MyCommunity:
    """A community where the signed-in resident lives, with the doors their houses give them."""

    company_id: uuid.UUID
    company_name: str
    community_id: uuid.UUID
    community_name: str
    resident_id: uuid.UUID
    pass_id: uuid.UUID
    doors: list[Door]


def _in_tenant(actor: Actor, tenant_id: uuid.UUID) -> Actor:
    return dataclasses.replace(actor, tenant_id=tenant_id)


async def my_communities(session: AsyncSession, actor: Actor) -> list[MyCommunity]:
    """The doors the resident may open, derived from their houses now (我的门禁).

    Community gates of every community they live in, the entrances of their
    buildings, and the car park when a vehicle of theirs is registered. The
    resident pass of each community is brought up to date on the way, so the
    QR code and remote open always reflect today's houses.
    """
    account = await _account(session, actor)
    homes, _ = await residents.my_homes(session, actor)
    grouped: dict[tuple[uuid.UUID, uuid.UUID], list[Any]] = {}
    for home in homes:
        grouped.setdefault((home.company_id, home.community_id), []).append(home)
    found: list[MyCommunity] = []
    try:
        for (tenant_id, community_id), community_homes in grouped.items():
            await set_tenant(session, tenant_id)
            system = Actor.system(tenant_id)
            myself = next((m for h in community_homes for m in h.members if m.is_me), None)
            if myself is None:
                continue
            me = myself.resident_id
            buildings = set()
            for home in community_homes:
                house = await estate.get_house(session, system, house_id=home.house_id)
                buildings.add(house.building_id)
            has_vehicle = any(h.vehicles for h in community_homes)
            points = (
                await session.scalars(
                    select(AccessPoint)
                    .where(AccessPoint.community_id == community_id)
                    .order_by(AccessPoint.kind, AccessPoint.name)
                )
            ).all()
            allowed = [
                p
                for p in points
                if p.kind is AccessPointKind.COMMUNITY_GATE
                or (p.kind is AccessPointKind.BUILDING_ENTRANCE and p.building_id in buildings)
                or (p.kind is AccessPointKind.PARKING_ENTRANCE and has_vehicle)
            ]
            online = set(
                (
                    await session.scalars(
                        select(Device.access_point_id).where(
                            Device.community_id == community_id,
                            Device.enabled.is_(True),
                            Device.online.is_(True),
                        )
                    )
                ).all()
            )
            row = await _resident_pass(
                session,
                _in_tenant(actor, tenant_id),
                account,
                community_id=community_id,
                resident_id=me,
                name=myself.name,
                points=[p.id for p in allowed],
            )
            found.append(
                MyCommunity(
                    tenant_id,
                    community_homes[0].company_name,
                    community_id,
                    community_homes[0].community_name,
                    me,
                    row.id,
                    [
                        Door(p.id, p.name, p.kind, p.id in online)
                        for p in allowed
                        if p.id in row.access_point_ids
                    ],
                )
            )
    finally:
        await set_tenant(session, None)
    return found


async def _resident_pass(
    session: AsyncSession,
    actor: Actor,
    account: ResidentAccount,
    *,
    community_id: uuid.UUID,
    resident_id: uuid.UUID,
    name: str,
    points: list[uuid.UUID],
) -> Pass:
    now = _now()
    # A QR code names at most MAX_POINTS doors; a resident with more (a large estate's many
    # gates) gets the first ones by kind and name, gates first.
    points = points[: credentials.MAX_POINTS]
    row = await session.scalar(
        select(Pass)
        .where(
            Pass.community_id == community_id,
            Pass.kind == PassKind.RESIDENT,
            Pass.resident_id == resident_id,
            Pass.revoked_at.is_(None),
        )
        .order_by(Pass.id.desc())
        .limit(1)
        .with_for_update()
    )
    until = now + dt.timedelta(days=RESIDENT_PASS_DAYS)
    if row is None:
        row, _ = await _new_pass(
            session,
            actor,
            community_id=community_id,
            kind=PassKind.RESIDENT,
            holder_name=name or account.display_name or "-",
            phone=None,
            resident_id=resident_id,
            access_point_ids=points or [uuid.UUID(int=0)],
            valid_from=now - dt.timedelta(minutes=5),
            valid_until=until,
            entries=None,
            with_link=False,
        )
        row.phone_hash = account.phone_hash
    else:
        if row.access_point_ids != (points or [uuid.UUID(int=0)]):
            row.access_point_ids = points or [uuid.UUID(int=0)]
        if row.valid_until - now < dt.timedelta(days=RESIDENT_PASS_DAYS - 1):
            row.valid_until = until
    await session.flush()
    return row


async def _my_pass(
    session: AsyncSession, actor: Actor, *, company_id: uuid.UUID, pass_id: uuid.UUID
) -> tuple[ResidentAccount, Pass]:
    """The resident pass ``pass_id`` of the signed-in account in ``company_id``, or 404.

    The blind index of the account's phone must match the pass's: no other check
    lets a resident act with a pass, so a guessed id opens nothing.
    """
    account = await _account(session, actor)
    await set_tenant(session, company_id)
    row = await session.scalar(select(Pass).where(Pass.id == pass_id))
    now = _now()
    if (
        row is None
        or row.kind is not PassKind.RESIDENT
        or row.phone_hash != account.phone_hash
        or row.revoked_at is not None
        or not row.valid_from <= now < row.valid_until
    ):
        raise NotFound("Pass not found.", code="pass_not_found")
    return account, row


async def rotating_qr(
    session: AsyncSession, actor: Actor, *, company_id: uuid.UUID, pass_id: uuid.UUID
) -> tuple[str, dt.datetime]:
    """A QR code good for QR_SECONDS (动态二维码): a photo of it is useless a minute later."""
    _, row = await _my_pass(session, actor, company_id=company_id, pass_id=pass_id)
    now = _now()
    token = await pass_token(session, row, seconds=QR_SECONDS, now=now)
    return token, min(row.valid_until, now + dt.timedelta(seconds=QR_SECONDS))


async def invite_visitor(
    session: AsyncSession,
    actor: Actor,
    *,
    company_id: uuid.UUID,
    pass_id: uuid.UUID,
    name: str,
    phone: str | None,
    valid_from: dt.datetime,
    valid_until: dt.datetime,
    entries: int | None,
) -> tuple[Pass, str]:
    """A resident invites a visitor (访客邀请): gates plus the doors the resident may open."""
    _, mine = await _my_pass(session, actor, company_id=company_id, pass_id=pass_id)
    _window(valid_from, valid_until, max_days=MAX_VISITOR_DAYS)
    _entries(entries)
    row, link = await _new_pass(
        session,
        _in_tenant(actor, company_id),
        community_id=mine.community_id,
        kind=PassKind.VISITOR,
        holder_name=name,
        phone=phone,
        resident_id=mine.resident_id,
        access_point_ids=[p for p in mine.access_point_ids if p.int != 0],
        valid_from=valid_from,
        valid_until=valid_until,
        entries=entries,
    )
    assert link is not None
    return row, link


async def my_visitor_passes(
    session: AsyncSession, actor: Actor, *, company_id: uuid.UUID, pass_id: uuid.UUID
) -> list[Pass]:
    _, mine = await _my_pass(session, actor, company_id=company_id, pass_id=pass_id)
    rows = await session.scalars(
        select(Pass)
        .where(Pass.kind == PassKind.VISITOR, Pass.resident_id == mine.resident_id)
        .order_by(Pass.id.desc())
        .limit(50)
    )
    return list(rows.all())


async def revoke_my_visitor(
    session: AsyncSession,
    actor: Actor,
    *,
    company_id: uuid.UUID,
    pass_id: uuid.UUID,
    visitor_pass_id: uuid.UUID,
) -> Pass:
    _, mine = await _my_pass(session, actor, company_id=company_id, pass_id=pass_id)
    row = await session.scalar(
        select(Pass).where(
            Pass.id == visitor_pass_id,
            Pass.kind == PassKind.VISITOR,
            Pass.resident_id == mine.resident_id,
        )
    )
    if row is None:
        raise NotFound("Pass not found.", code="pass_not_found")
    return await _revoke(session, _in_tenant(actor, company_id), row)


async def my_history(
    session: AsyncSession,
    actor: Actor,
    *,
    company_id: uuid.UUID,
    pass_id: uuid.UUID,
    limit: int = 50,
) -> list[AccessEvent]:
    """The resident's own passages and those of the visitors they invited (我的通行记录)."""
    _, mine = await _my_pass(session, actor, company_id=company_id, pass_id=pass_id)
    assert mine.resident_id is not None
    rows = await session.scalars(
        select(AccessEvent)
        .where(AccessEvent.resident_id == mine.resident_id)
        .order_by(AccessEvent.occurred_at.desc())
        .limit(min(limit, EVENT_PAGE_MAX))
    )
    return list(rows.all())


# --- remote open -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class OpenResult:
    device_id: uuid.UUID
    access_point_id: uuid.UUID
    status: str
    millis: float


async def _device_for(session: AsyncSession, access_point_id: uuid.UUID) -> Device:
    device = await session.scalar(
        select(Device)
        .where(Device.access_point_id == access_point_id, Device.enabled.is_(True))
        .order_by(Device.online.desc(), Device.last_seen_at.desc().nulls_last())
        .limit(1)
    )
    if device is None:
        raise Conflict("No working device at this door.", code="no_device")
    return device


@dataclasses.dataclass(frozen=True)
class DoorDevice:
    """What opening a door needs of its device."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    community_id: uuid.UUID
    access_point_id: uuid.UUID
    public_key: bytes


async def _cached_signing_key(
    tenant_id: uuid.UUID, community_id: uuid.UUID
) -> tuple[int, Ed25519PrivateKey]:
    cached = _signing_keys.get((tenant_id, community_id))
    if cached is not None:
        return cached
    async with unit_of_work(tenant_id) as session:
        return await signing_key(session, tenant_id, community_id)


async def _command_open(device: DoorDevice, *, wait_seconds: float) -> tuple[uuid.UUID, str, float]:
    """Send the signed open command and wait for the device's signed answer.

    Returns the command's id, the status ("done", "timeout", "bad_signature" or the
    device's refusal) and the milliseconds the round trip through the broker took.
    """
    from linli.access import commands

    kid, key = await _cached_signing_key(device.tenant_id, device.community_id)
    started = time.perf_counter()
    command_id = new_id()
    try:
        ack = await commands.send(
            tenant_id=device.tenant_id,
            community_id=device.community_id,
            device_id=device.id,
            command_id=command_id,
            kind="open",
            args={"seconds": 5},
            kid=kid,
            key=key,
            wait_seconds=wait_seconds,
        )
    except TimeoutError:
        ack = None
    millis = (time.perf_counter() - started) * 1000
    status = "timeout"
    if ack is not None:
        status = ack.status
        if not credentials.verify_ack(device.public_key, ack.reply_to, device.id, status, ack.sig):
            status = "bad_signature"
    return command_id, status, millis


def _open_outcome(device: DoorDevice, status: str, millis: float) -> OpenResult:
    if status == "timeout":
        raise DeviceTimeout(keep_changes=True)
    if status != "done":
        raise DeviceRefused(keep_changes=True)
    return OpenResult(device.id, device.access_point_id, status, millis)


def _open_event_values(
    device: DoorDevice,
    *,
    command_id: uuid.UUID,
    status: str,
    millis: float,
    by: PrincipalKind,
    pass_id: uuid.UUID | None,
    resident_id: uuid.UUID | None,
) -> dict[str, Any]:
    return {
        "tenant_id": device.tenant_id,
        "id": new_id(),
        "community_id": device.community_id,
        "device_id": device.id,
        "device_event_id": f"cmd-{command_id}",
        "access_point_id": device.access_point_id,
        "occurred_at": _now(),
        "kind": (EventKind.OPEN if status == "done" else EventKind.DENIED).value,
        "method": "remote",
        "pass_id": pass_id,
        "resident_id": resident_id,
        "reason": "" if status == "done" else status,
        "detail": {"by": by.value, "millis": round(millis, 2)},
    }


_EVENT_COLUMNS = (
    "tenant_id",
    "id",
    "community_id",
    "device_id",
    "device_event_id",
    "access_point_id",
    "occurred_at",
    "kind",
    "method",
    "pass_id",
    "resident_id",
    "reason",
    "detail",
)
_RECORD_EVENT = ReadQuery(
    pg_insert(AccessEvent)
    .values({name: bindparam(name) for name in _EVENT_COLUMNS})
    .on_conflict_do_nothing()
)

# The resident's pass, checked against the account (active, same phone), the time window
# and revocation, and the door's best device (online first, then the latest seen): one read.
_RESIDENT_DOOR = ReadQuery(
    select(
        Pass.id.label("pass_id"),
        Pass.resident_id,
        Pass.access_point_ids,
        Device.id.label("device_id"),
        Device.tenant_id,
        Device.community_id,
        Device.access_point_id,
        Device.public_key,
    )
    .outerjoin(
        Device,
        Device.id
        == select(Device.id)
        .where(Device.access_point_id == bindparam("access_point_id"), Device.enabled.is_(True))
        .order_by(Device.online.desc(), Device.last_seen_at.desc().nulls_last())
        .limit(1)
        .scalar_subquery(),
    )
    .where(
        Pass.id == bindparam("pass_id"),
        Pass.kind == PassKind.RESIDENT,
        Pass.phone_hash
        == select(ResidentAccount.phone_hash)
        .where(ResidentAccount.id == bindparam("account_id"), ResidentAccount.is_active.is_(True))
        .scalar_subquery(),
        Pass.revoked_at.is_(None),
        Pass.valid_from <= bindparam("now"),
        Pass.valid_until > bindparam("now"),
    )
)


async def remote_open(
    actor: Actor,
    *,
    company_id: uuid.UUID,
    pass_id: uuid.UUID,
    access_point_id: uuid.UUID,
    wait_seconds: float = 3.0,
) -> OpenResult:
    """A resident opens a door from the phone (远程开门): command over MQTT, device ack.

    The portal's hot path, and a person waits at the door: no unit of work. One read
    checks the account, the pass and the door's device; one write records the access
    event. The event is committed without waiting for the WAL flush: the device logs the
    opening itself, and a database crash may at worst lose this copy of it.
    """
    if actor.kind is not PrincipalKind.RESIDENT:
        raise PermissionDenied()
    found = await read_rows(
        company_id,
        _RESIDENT_DOOR,
        {
            "pass_id": pass_id,
            "account_id": actor.id,
            "access_point_id": access_point_id,
            "now": _now(),
        },
    )
    if not found or access_point_id not in found[0].access_point_ids:
        raise NotFound("Door not found.", code="access_point_not_found")
    row = found[0]
    if row.device_id is None:
        raise Conflict("No working device at this door.", code="no_device")
    device = DoorDevice(
        row.device_id, row.tenant_id, row.community_id, row.access_point_id, row.public_key
    )
    command_id, status, millis = await _command_open(device, wait_seconds=wait_seconds)
    event = _open_event_values(
        device,
        command_id=command_id,
        status=status,
        millis=millis,
        by=actor.kind,
        pass_id=row.pass_id,
        resident_id=row.resident_id,
    )
    event["detail"] = Jsonb(event["detail"])  # no ORM type to adapt it on this path
    await write_rows(company_id, [(_RECORD_EVENT, event)], wait_for_flush=False)
    return _open_outcome(device, status, millis)


async def staff_open(
    session: AsyncSession, actor: Actor, *, access_point_id: uuid.UUID, wait_seconds: float = 3.0
) -> OpenResult:
    """The console's open button (guard booth): the same command; the staff member, who
    uses a privilege rather than a pass, is audited besides the access event."""
    point = await get_access_point(session, actor, access_point_id=access_point_id)
    found = await _device_for(session, point.id)
    device = DoorDevice(
        found.id, found.tenant_id, found.community_id, found.access_point_id, found.public_key
    )
    command_id, status, millis = await _command_open(device, wait_seconds=wait_seconds)
    event = _open_event_values(
        device,
        command_id=command_id,
        status=status,
        millis=millis,
        by=actor.kind,
        pass_id=None,
        resident_id=None,
    )
    await session.execute(pg_insert(AccessEvent).values(event).on_conflict_do_nothing())
    await audit.record(
        session,
        actor,
        "access.remote_open",
        target_type="device",
        target_id=device.id,
        detail={"status": status},
    )
    return _open_outcome(device, status, millis)


# --- events search -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EventFilter:
    community_id: uuid.UUID | None = None
    access_point_id: uuid.UUID | None = None
    resident_id: uuid.UUID | None = None
    pass_id: uuid.UUID | None = None
    kind: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    person: str | None = None  # a resident's or pass holder's name prefix, a phone, or an id


async def _person_condition(session: AsyncSession, actor: Actor, person: str) -> Any:
    """Events of the people a search names: residents by phone or name prefix (through the
    residents service) and visitors or couriers by the name on their pass."""
    text = person.strip()
    try:
        return AccessEvent.resident_id == uuid.UUID(text)
    except ValueError:
        pass
    search = (
        residents.ResidentSearch(phone=text)
        if crypto.normalize_phone(text)
        else residents.ResidentSearch(name=text)
    )
    found, _ = await residents.search_residents(
        session, actor, search=search, page=PageParams(limit=50)
    )
    holders = (
        await session.scalars(
            readable_passes(actor)
            .with_only_columns(Pass.id)
            .where(Pass.holder_name.startswith(text, autoescape=True))
            .limit(50)
        )
    ).all()
    nobody = [uuid.UUID(int=0)]
    return or_(
        AccessEvent.resident_id.in_([r.id for r in found] or nobody),
        AccessEvent.pass_id.in_(list(holders) or nobody),
    )


async def search_events(
    session: AsyncSession, actor: Actor, *, filters: EventFilter, page: PageParams
) -> tuple[list[AccessEvent], str | None]:
    """Events newest first (通行记录查询) by person, door and time."""
    statement = readable_events(actor)
    f = filters
    if f.community_id is not None:
        statement = statement.where(AccessEvent.community_id == f.community_id)
    if f.access_point_id is not None:
        statement = statement.where(AccessEvent.access_point_id == f.access_point_id)
    if f.resident_id is not None:
        statement = statement.where(AccessEvent.resident_id == f.resident_id)
    if f.pass_id is not None:
        statement = statement.where(AccessEvent.pass_id == f.pass_id)
    if f.kind:
        statement = statement.where(AccessEvent.kind == f.kind)
    if f.person and f.person.strip():
        statement = statement.where(await _person_condition(session, actor, f.person))
    if f.since is not None:
        statement = statement.where(AccessEvent.occurred_at >= f.since)
    if f.until is not None:
        statement = statement.where(AccessEvent.occurred_at < f.until)
    after = page.after_id()
    if after is not None:
        statement = statement.where(AccessEvent.id < after)
    statement = statement.order_by(AccessEvent.id.desc()).limit(page.limit + 1)
    rows = (await session.scalars(statement)).all()
    return make_page(list(rows), page)


# --- parking -----------------------------------------------------------------------------------


@estate.usage_check("vehicle", "access")
async def _vehicle_has_gate_records(
    session: AsyncSession, tenant_id: uuid.UUID, vehicle_id: uuid.UUID
) -> str | None:
    """A vehicle the barriers recorded (车辆进出记录) keeps its history: archive it instead."""
    found = await session.scalar(
        select(VehicleEntry.id)
        .join(
            Vehicle,
            (Vehicle.tenant_id == VehicleEntry.tenant_id)
            & (Vehicle.community_id == VehicleEntry.community_id)
            & (Vehicle.plate == VehicleEntry.plate),
        )
        .where(Vehicle.tenant_id == tenant_id, Vehicle.id == vehicle_id)
        .limit(1)
    )
    return "gate_records" if found is not None else None


CENT = Decimal("0.01")


@dataclasses.dataclass(frozen=True)
class Tariff:
    """Temporary parking (临停): first ``free_minutes`` free, then per started hour, capped
    per started 24 hours."""

    free_minutes: int
    hourly: Decimal
    daily_cap: Decimal


def parking_fee(tariff: Tariff, entered_at: dt.datetime, exited_at: dt.datetime) -> Decimal:
    """The fee of one stay. A stay within the free minutes costs nothing; otherwise every
    started hour is charged, each full or started day at most ``daily_cap``."""
    seconds = max(0.0, (exited_at - entered_at).total_seconds())
    if seconds <= tariff.free_minutes * 60:
        return Decimal("0.00")
    days, rest = divmod(seconds, 86400)
    hours_in_rest = math.ceil(rest / 3600)
    last_day = min(tariff.hourly * hours_in_rest, tariff.daily_cap)
    fee = tariff.daily_cap * int(days) + last_day
    return fee.quantize(CENT, rounding=ROUND_HALF_UP)


async def set_tariff(
    session: AsyncSession,
    actor: Actor,
    *,
    community_id: uuid.UUID,
    free_minutes: int,
    hourly: Decimal,
    daily_cap: Decimal,
) -> ParkingTariff:
    await estate.get_community(session, actor, community_id=community_id)
    row = await session.scalar(
        select(ParkingTariff).where(ParkingTariff.community_id == community_id).with_for_update()
    )
    if row is None:
        row = ParkingTariff(
            tenant_id=_tenant(actor),
            community_id=community_id,
            hourly=hourly,
            daily_cap=daily_cap,
            free_minutes=free_minutes,
        )
        session.add(row)
    else:
        row.free_minutes, row.hourly, row.daily_cap = free_minutes, hourly, daily_cap
    await session.flush()
    await audit.record(
        session, actor, "parking.tariff", target_type="community", target_id=community_id
    )
    return row


async def get_tariff(session: AsyncSession, community_id: uuid.UUID) -> Tariff | None:
    row = await session.scalar(
        select(ParkingTariff).where(ParkingTariff.community_id == community_id)
    )
    return Tariff(row.free_minutes, row.hourly, row.daily_cap) if row else None


@dataclasses.dataclass(frozen=True)
class PlateDecision:
    open: bool
    known: bool
    entry_id: uuid.UUID | None
    fee: Decimal | None
    reason: str


async def vehicle_passes(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    device_id: uuid.UUID,
    community_id: uuid.UUID,
    plate: str,
    direction: str,
    at: dt.datetime,
) -> PlateDecision:
    """A plate read at a barrier (车牌识别): known plates pass; others get an entry record
    in, and a fee by the tariff out. Payment plugs in later: the fee is kept on the entry."""
    system = Actor.system(tenant_id)
    vehicles, _ = await residents.list_vehicles(
        session, system, community_id=community_id, plate=plate, page=PageParams(limit=1)
    )
    known = bool(vehicles)
    inside = await session.scalar(
        select(VehicleEntry)
        .where(
            VehicleEntry.community_id == community_id,
            VehicleEntry.plate == plate,
            VehicleEntry.exited_at.is_(None),
        )
        .with_for_update()
    )
    if direction == "in":
        if inside is not None:  # a missed exit read: close the old stay without a fee
            inside.exited_at = at
        entry = VehicleEntry(
            tenant_id=tenant_id,
            community_id=community_id,
            plate=plate,
            known=known,
            entry_device_id=device_id,
            entered_at=at,
        )
        session.add(entry)
        await session.flush()
        return PlateDecision(True, known, entry.id, None, "known" if known else "temporary")
    if inside is None:
        return PlateDecision(known, known, None, None, "known" if known else "no_entry_record")
    inside.exited_at = at
    inside.exit_device_id = device_id
    fee = Decimal("0.00")
    if not known:
        tariff = await get_tariff(session, community_id)
        fee = parking_fee(tariff, inside.entered_at, at) if tariff else Decimal("0.00")
    inside.fee = fee
    await session.flush()
    return PlateDecision(True, known, inside.id, fee, "known" if known else "fee")


async def list_vehicle_entries(
    session: AsyncSession,
    actor: Actor,
    *,
    community_id: uuid.UUID | None,
    inside_only: bool,
    page: PageParams,
) -> tuple[list[VehicleEntry], str | None]:
    statement = select(VehicleEntry).where(estate.community_scope(actor, VehicleEntry.community_id))
    if community_id is not None:
        statement = statement.where(VehicleEntry.community_id == community_id)
    if inside_only:
        statement = statement.where(VehicleEntry.exited_at.is_(None))
    rows = (await session.scalars(paginate_statement(statement, VehicleEntry.id, page))).all()
    return make_page(list(rows), page)


# --- device state (from ingest) ----------------------------------------------------------------


async def mark_seen(session: AsyncSession, seen: dict[uuid.UUID, tuple[dt.datetime, bool]]) -> None:
    """Bring last_seen / online of a tenant's devices up to date, one statement per state."""
    for online in (True, False):
        ids = [d for d, (_, on) in seen.items() if on is online]
        if not ids:
            continue
        last = max(at for d, (at, on) in seen.items() if on is online)
        await session.execute(
            update(Device)
            .where(Device.id.in_(ids))
            .values(online=online, last_seen_at=func.greatest(Device.last_seen_at, last))
        )


async def mark_silent_offline(session: AsyncSession, *, older_than: dt.datetime) -> int:
    """Devices that went silent without a last will (power cut at the broker too)."""
    result = await session.execute(
        update(Device)
        .where(Device.online.is_(True), Device.last_seen_at < older_than)
        .values(online=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def count_pass_uses(session: AsyncSession, pass_ids: dict[uuid.UUID, int]) -> None:
    """Add the entries the ingest saw to their passes (devices count offline, this reconciles)."""
    for pass_id, used in pass_ids.items():
        await session.execute(
            update(Pass).where(Pass.id == pass_id).values(used_entries=Pass.used_entries + used)
        )
