"""Residents, their houses, vehicles and house claims: the only place their rules live.

Staff see residents linked (now or before) to a house in their communities;
company-wide staff see all. Portal users (resident principals) have no tenant:
the functions for them set the tenant per company explicitly and read only rows
reached from their own phone's blind index.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import (
    ColumnElement,
    LargeBinary,
    Select,
    and_,
    any_,
    bindparam,
    exists,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from linli.auth.actor import Actor, PrincipalKind
from linli.auth.models import ResidentAccount
from linli.auth.permissions import Permission
from linli.core import audit, crypto, outbox
from linli.core.errors import Conflict, FieldError, NotFound, PermissionDenied, ValidationFailed
from linli.core.ids import new_id
from linli.core.pagination import PageParams, make_page, paginate_statement
from linli.core.persistence import flush_or_conflict
from linli.db.engine import set_tenant
from linli.estate import events
from linli.estate import service as estate
from linli.estate.models import Building, House, Unit
from linli.estate.rows import ResidentRow, UpsertResult, VehicleRow
from linli.residents.models import (
    ClaimStatus,
    Gender,
    HouseClaim,
    Relation,
    Resident,
    ResidentCompany,
    ResidentHouse,
    Vehicle,
)
from linli.residents.validators import is_new_energy_plate, normalize_id_card, normalize_plate
from linli.tenancy.models import Community, Tenant

_NO_COMMUNITY = uuid.UUID(int=0)
_BYTEA_ARRAY = ARRAY(LargeBinary)
OWNER_RELATIONS = (Relation.OWNER, Relation.CO_OWNER)


# --- personal data -----------------------------------------------------------------------


def phone_hash(phone: str) -> bytes:
    """The blind index shared with ``resident_accounts``: the one link to a portal login."""
    return crypto.blind_index(phone, purpose="phone")


def id_card_hash(id_card: str) -> bytes:
    return crypto.blind_index(id_card, purpose="id_card")


def _normalized_phone(raw: str | None, field_name: str = "phone") -> str | None:
    if raw is None or not raw.strip():
        return None
    phone = crypto.normalize_phone(raw)
    if phone is None:
        raise ValidationFailed(
            errors=[FieldError(field_name, "Not a valid mainland mobile number.", "invalid_phone")]
        )
    return phone


def _normalized_id_card(raw: str | None, field_name: str = "id_card") -> str | None:
    if raw is None or not raw.strip():
        return None
    value = normalize_id_card(raw)
    if value is None:
        raise ValidationFailed(
            errors=[
                FieldError(
                    field_name, "Not a valid 18-digit resident ID number.", "invalid_id_card"
                )
            ]
        )
    return value


def _normalized_plate(raw: str, field_name: str = "plate") -> str:
    plate = normalize_plate(raw)
    if plate is None:
        raise ValidationFailed(
            errors=[FieldError(field_name, "Not a valid mainland licence plate.", "invalid_plate")]
        )
    return plate


def may_see_contact(actor: Actor) -> bool:
    return actor.kind is PrincipalKind.SYSTEM or actor.can(Permission.RESIDENTS_READ_CONTACT)


@dataclass(frozen=True)
class Contact:
    phone: str | None
    id_card: str | None
    masked: bool


def contact_of(actor: Actor, resident: Resident) -> Contact:
    """Full phone / ID number for staff allowed to see them, masked for everyone else."""
    phone = crypto.decrypt(resident.phone_enc) if resident.phone_enc else None
    id_card = crypto.decrypt(resident.id_card_enc) if resident.id_card_enc else None
    if may_see_contact(actor):
        return Contact(phone, id_card, masked=False)
    return Contact(
        crypto.mask_phone(phone) if phone else None,
        (id_card[:3] + "*" * 11 + id_card[-4:]) if id_card else None,
        masked=True,
    )


async def _remember_tenant(
    session: AsyncSession, tenant_id: uuid.UUID, hashes: Sequence[bytes]
) -> None:
    """Note in the global directory that this company knows these phones (hash only)."""
    unique = sorted(set(hashes))
    if not unique:
        return
    await session.execute(
        text(
            "INSERT INTO resident_companies (phone_hash, tenant_id)"
            " SELECT h, :tenant FROM unnest(CAST(:hashes AS bytea[])) AS t(h)"
            " ON CONFLICT DO NOTHING"
        ),
        {"tenant": tenant_id, "hashes": unique},
    )


# --- scoping -----------------------------------------------------------------------------


def _linked_to_communities(actor: Actor) -> ColumnElement[bool]:
    return exists(
        select(ResidentHouse.id).where(
            ResidentHouse.tenant_id == Resident.tenant_id,
            ResidentHouse.resident_id == Resident.id,
            ResidentHouse.community_id.in_(list(actor.community_ids) or [_NO_COMMUNITY]),
        )
    )


def readable_residents(actor: Actor) -> Select[Resident]:
    """Residents linked (now or before) to a house in the actor's communities, or registered
    in one of them without a house yet."""
    statement = select(Resident)
    if not estate.sees_all_communities(actor):
        statement = statement.where(
            _linked_to_communities(actor)
            | Resident.community_id.in_(list(actor.community_ids) or [_NO_COMMUNITY])
        )
    return statement


def _tenant(actor: Actor) -> uuid.UUID:
    if actor.tenant_id is None:
        raise NotFound()
    return actor.tenant_id


# --- residents ---------------------------------------------------------------------------


async def get_resident(session: AsyncSession, actor: Actor, *, resident_id: uuid.UUID) -> Resident:
    resident = await session.scalar(readable_residents(actor).where(Resident.id == resident_id))
    if resident is None:
        raise NotFound("Resident not found.", code="resident_not_found")
    return resident


async def create_resident(
    session: AsyncSession,
    actor: Actor,
    *,
    name: str,
    phone: str | None = None,
    id_card: str | None = None,
    gender: Gender | None = None,
    birth_date: dt.date | None = None,
    tags: Sequence[str] = (),
    house_id: uuid.UUID | None = None,
    relation: Relation | None = None,
    lease_start: dt.date | None = None,
    lease_end: dt.date | None = None,
    community_id: uuid.UUID | None = None,
) -> Resident:
    """Register a person, optionally moving them into a house in the same step.

    A person without a house yet (a tenant whose lease is being prepared, a staff
    member's relative) is registered in a community (登记小区) instead. Staff limited
    to some communities must give one of the two: a resident linked to nothing they
    can see would be invisible to them the moment they created it.
    """
    tenant_id = _tenant(actor)
    if house_id is None and community_id is None and not estate.sees_all_communities(actor):
        raise ValidationFailed(
            errors=[
                FieldError(
                    "community_id",
                    "Give the house this resident belongs to, or the community they are "
                    "registered in.",
                    "required",
                )
            ]
        )
    if (house_id is None) != (relation is None):
        raise ValidationFailed(
            errors=[FieldError("relation", "A house and a relation go together.", "required")]
        )
    phone = _normalized_phone(phone)
    id_card = _normalized_id_card(id_card)
    if house_id is not None:
        house = await estate.get_house(session, actor, house_id=house_id)
        if community_id is not None and community_id != house.community_id:
            raise ValidationFailed(
                errors=[
                    FieldError(
                        "community_id", "The house is in another community.", "community_mismatch"
                    )
                ]
            )
        community_id = house.community_id
    elif community_id is not None:
        await estate.get_community(session, actor, community_id=community_id)
    resident = Resident(
        community_id=community_id,
        tenant_id=tenant_id,
        name=name,
        phone_enc=crypto.encrypt(phone) if phone else None,
        phone_hash=phone_hash(phone) if phone else None,
        id_card_enc=crypto.encrypt(id_card) if id_card else None,
        id_card_hash=id_card_hash(id_card) if id_card else None,
        gender=gender,
        birth_date=birth_date,
        tags=list(tags),
    )
    session.add(resident)
    await flush_or_conflict(
        session,
        Conflict("A resident with this phone or ID number already exists.", code="resident_exists"),
    )
    if resident.phone_hash:
        await _remember_tenant(session, tenant_id, [resident.phone_hash])
    await audit.record(
        session, actor, "resident.create", target_type="resident", target_id=resident.id
    )
    await outbox.emit(session, actor, events.RESIDENT_CREATED, {"resident_id": str(resident.id)})
    if house_id is not None and relation is not None:
        await move_in(
            session,
            actor,
            resident_id=resident.id,
            house_id=house_id,
            relation=relation,
            lease_start=lease_start,
            lease_end=lease_end,
        )
    return resident


RESIDENT_FIELDS = ("name", "gender", "birth_date", "tags")


async def update_resident(
    session: AsyncSession, actor: Actor, *, resident_id: uuid.UUID, changes: dict[str, Any]
) -> Resident:
    resident = await get_resident(session, actor, resident_id=resident_id)
    changed = sorted(
        k for k, v in changes.items() if k in RESIDENT_FIELDS and getattr(resident, k) != v
    )
    for key in changed:
        setattr(resident, key, changes[key])
    if "phone" in changes:
        phone = _normalized_phone(changes["phone"])
        new_hash = phone_hash(phone) if phone else None
        if new_hash != resident.phone_hash:
            resident.phone_enc = crypto.encrypt(phone) if phone else None
            resident.phone_hash = new_hash
            changed.append("phone")
    if "id_card" in changes:
        id_card = _normalized_id_card(changes["id_card"])
        new_hash = id_card_hash(id_card) if id_card else None
        if new_hash != resident.id_card_hash:
            resident.id_card_enc = crypto.encrypt(id_card) if id_card else None
            resident.id_card_hash = new_hash
            changed.append("id_card")
    await flush_or_conflict(
        session,
        Conflict("A resident with this phone or ID number already exists.", code="resident_exists"),
    )
    if "phone" in changed and resident.phone_hash:
        await _remember_tenant(session, _tenant(actor), [resident.phone_hash])
    if changed:
        await audit.record(
            session,
            actor,
            "resident.update",
            target_type="resident",
            target_id=resident.id,
            detail={"fields": sorted(changed)},
        )
    return resident


@dataclass(frozen=True)
class ResidentSearch:
    phone: str | None = None
    name: str | None = None
    house: str | None = None  # "3-2-1201", "3栋2单元1201"
    community_id: uuid.UUID | None = None
    without_house: bool = False  # nobody's current house: registered, or moved out of all
    tag: str | None = None  # residents carrying this tag (e.g. 独居老人, 党员)


def _has_current_house() -> ColumnElement[bool]:
    return exists(
        select(ResidentHouse.id).where(
            ResidentHouse.tenant_id == Resident.tenant_id,
            ResidentHouse.resident_id == Resident.id,
            ResidentHouse.moved_out_on.is_(None),
        )
    )


def _like_prefix(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def search_residents(
    session: AsyncSession, actor: Actor, *, search: ResidentSearch, page: PageParams
) -> tuple[list[Resident], str | None]:
    """Exact phone (blind index), name prefix, or house reference; every one an index lookup.

    Name searches are ordered by name (the index order) so a common surname
    stops after one page; the others by id for cursor pagination.
    """
    statement = readable_residents(actor).where(Resident.tenant_id == _tenant(actor))
    if search.community_id is not None:
        statement = statement.where(
            exists(
                select(ResidentHouse.id).where(
                    ResidentHouse.tenant_id == Resident.tenant_id,
                    ResidentHouse.resident_id == Resident.id,
                    ResidentHouse.community_id == search.community_id,
                )
            )
            | (Resident.community_id == search.community_id)
        )
    if search.without_house:
        statement = statement.where(~_has_current_house())
    if search.tag:
        statement = statement.where(any_(Resident.tags) == search.tag.strip())
    if search.phone:
        phone = _normalized_phone(search.phone)
        assert phone is not None
        statement = statement.where(Resident.phone_hash == phone_hash(phone))
    if search.house:
        ref = estate.parse_house_ref(search.house)
        if ref is None:
            raise ValidationFailed(
                errors=[
                    FieldError(
                        "house", "Write the house as 3-2-1201 or 3栋2单元1201.", "invalid_house"
                    )
                ]
            )
        house_ids = await estate.find_house_ids_by_ref(
            session, actor, ref=ref, community_id=search.community_id
        )
        statement = statement.where(
            exists(
                select(ResidentHouse.id).where(
                    ResidentHouse.tenant_id == Resident.tenant_id,
                    ResidentHouse.resident_id == Resident.id,
                    ResidentHouse.house_id.in_(house_ids or [_NO_COMMUNITY]),
                    ResidentHouse.moved_out_on.is_(None),
                )
            )
        )
    if search.name:
        # The range makes the prefix an index condition even in a generic (prepared) plan,
        # where PostgreSQL cannot derive one from ``LIKE $1``; LIKE keeps it exact.
        upper = search.name[:-1] + chr(ord(search.name[-1]) + 1)
        statement = statement.where(
            Resident.name >= search.name,
            Resident.name < upper,
            Resident.name.like(_like_prefix(search.name), escape="\\"),
        )
        # Keyset on (name, id): the cursor carries the last id, its name is looked up.
        after = page.after_id()
        if after is not None:
            last = await session.scalar(select(Resident.name).where(Resident.id == after))
            if last is not None:
                statement = statement.where(
                    (Resident.name > last) | and_(Resident.name == last, Resident.id > after)
                )
        rows = list(
            (
                await session.scalars(
                    statement.order_by(Resident.name, Resident.id).limit(page.limit + 1)
                )
            ).all()
        )
        return make_page(rows, page)
    rows = list((await session.scalars(paginate_statement(statement, Resident.id, page))).all())
    return make_page(rows, page)


@dataclass
class HouseLink:
    relation: ResidentHouse
    house: House
    building_no: str
    unit_no: str | None
    community_name: str


async def houses_of_resident(
    session: AsyncSession, actor: Actor, *, resident_id: uuid.UUID, include_history: bool = False
) -> list[HouseLink]:
    resident = await get_resident(session, actor, resident_id=resident_id)
    statement = (
        select(ResidentHouse, House, Building.building_no, Unit.unit_no, Community.name)
        .join(
            House,
            and_(House.tenant_id == ResidentHouse.tenant_id, House.id == ResidentHouse.house_id),
        )
        .join(
            Building, and_(Building.tenant_id == House.tenant_id, Building.id == House.building_id)
        )
        .outerjoin(Unit, and_(Unit.tenant_id == House.tenant_id, Unit.id == House.unit_id))
        .join(
            Community,
            and_(Community.tenant_id == House.tenant_id, Community.id == House.community_id),
        )
        .where(
            ResidentHouse.resident_id == resident.id,
            estate.community_scope(actor, House.community_id),
        )
        .order_by(ResidentHouse.id)
    )
    if not include_history:
        statement = statement.where(ResidentHouse.moved_out_on.is_(None))
    return [HouseLink(*row) for row in (await session.execute(statement)).all()]


# --- moving in and out -------------------------------------------------------------------


def _check_lease(
    relation: Relation, lease_start: dt.date | None, lease_end: dt.date | None
) -> None:
    if relation is not Relation.TENANT and (lease_start or lease_end):
        raise ValidationFailed(
            errors=[
                FieldError("lease_start", "Only tenants have lease dates.", "lease_not_allowed")
            ]
        )
    if lease_start and lease_end and lease_end < lease_start:
        raise ValidationFailed(
            errors=[FieldError("lease_end", "The lease ends before it starts.", "invalid_range")]
        )


async def move_in(
    session: AsyncSession,
    actor: Actor,
    *,
    resident_id: uuid.UUID,
    house_id: uuid.UUID,
    relation: Relation,
    lease_start: dt.date | None = None,
    lease_end: dt.date | None = None,
    moved_in_on: dt.date | None = None,
    source: str = "staff",
) -> ResidentHouse:
    """Link a resident to a house (入住). Refused if they are already linked to it."""
    _check_lease(relation, lease_start, lease_end)
    house = await estate.get_house(session, actor, house_id=house_id)
    resident = await session.scalar(select(Resident).where(Resident.id == resident_id))
    if resident is None:
        raise NotFound("Resident not found.", code="resident_not_found")
    link = ResidentHouse(
        tenant_id=_tenant(actor),
        resident_id=resident.id,
        house_id=house.id,
        community_id=house.community_id,
        relation=relation,
        lease_start=lease_start,
        lease_end=lease_end,
        moved_in_on=moved_in_on or dt.date.today(),
        source=source,
    )
    session.add(link)
    await flush_or_conflict(
        session, Conflict("This resident already lives in this house.", code="already_linked")
    )
    await audit.record(
        session,
        actor,
        "resident.move_in",
        target_type="house",
        target_id=house.id,
        detail={"resident_id": str(resident.id), "relation": relation.value},
    )
    await outbox.emit(
        session,
        actor,
        events.RESIDENT_MOVED_IN,
        {"resident_id": str(resident.id), "house_id": str(house.id), "relation": relation.value},
    )
    return link


async def move_out(
    session: AsyncSession, actor: Actor, *, link_id: uuid.UUID, moved_out_on: dt.date | None = None
) -> ResidentHouse:
    """End a resident's relation to a house (迁出); the row stays as history."""
    link = await session.scalar(
        select(ResidentHouse).where(
            ResidentHouse.id == link_id, estate.community_scope(actor, ResidentHouse.community_id)
        )
    )
    if link is None:
        raise NotFound("Not found.", code="link_not_found")
    if link.moved_out_on is not None:
        raise Conflict("This resident has already moved out.", code="already_moved_out")
    link.moved_out_on = moved_out_on or dt.date.today()
    await session.flush()
    await audit.record(
        session,
        actor,
        "resident.move_out",
        target_type="house",
        target_id=link.house_id,
        detail={"resident_id": str(link.resident_id)},
    )
    await outbox.emit(
        session,
        actor,
        events.RESIDENT_MOVED_OUT,
        {"resident_id": str(link.resident_id), "house_id": str(link.house_id)},
    )
    return link


async def house_members(
    session: AsyncSession, actor: Actor, *, house_id: uuid.UUID, include_history: bool = False
) -> list[tuple[ResidentHouse, Resident]]:
    """People of a house, current ones (or the whole move-in / move-out history)."""
    house = await estate.get_house(session, actor, house_id=house_id, include_archived=True)
    statement = (
        select(ResidentHouse, Resident)
        .join(
            Resident,
            and_(
                Resident.tenant_id == ResidentHouse.tenant_id,
                Resident.id == ResidentHouse.resident_id,
            ),
        )
        .where(ResidentHouse.house_id == house.id)
        .order_by(ResidentHouse.id)
    )
    if not include_history:
        statement = statement.where(ResidentHouse.moved_out_on.is_(None))
    return [(link, resident) for link, resident in (await session.execute(statement)).all()]


@estate.house_usage_check("residents")
async def _house_has_residents(
    session: AsyncSession, tenant_id: uuid.UUID, house_id: uuid.UUID
) -> str | None:
    linked = await session.scalar(
        select(func.count())
        .select_from(ResidentHouse)
        .where(ResidentHouse.tenant_id == tenant_id, ResidentHouse.house_id == house_id)
    )
    vehicles = await session.scalar(
        select(func.count())
        .select_from(Vehicle)
        .where(Vehicle.tenant_id == tenant_id, Vehicle.house_id == house_id)
    )
    claims = await session.scalar(
        select(func.count())
        .select_from(HouseClaim)
        .where(HouseClaim.tenant_id == tenant_id, HouseClaim.house_id == house_id)
    )
    return "residents" if (linked or vehicles or claims) else None


async def resident_counts(session: AsyncSession, actor: Actor) -> dict[uuid.UUID, int]:
    """Current residents per community the actor may see."""
    rows = await session.execute(
        select(ResidentHouse.community_id, func.count(func.distinct(ResidentHouse.resident_id)))
        .where(
            ResidentHouse.moved_out_on.is_(None),
            estate.community_scope(actor, ResidentHouse.community_id),
        )
        .group_by(ResidentHouse.community_id)
    )
    return {community_id: count for community_id, count in rows.all()}


# --- vehicles ----------------------------------------------------------------------------


async def register_vehicle(
    session: AsyncSession,
    actor: Actor,
    *,
    community_id: uuid.UUID,
    plate: str,
    resident_id: uuid.UUID | None = None,
    house_id: uuid.UUID | None = None,
    brand: str = "",
    color: str = "",
) -> Vehicle:
    """Register a vehicle (登记车辆). An archived vehicle with the same plate comes back."""
    canonical = _normalized_plate(plate)
    await estate.get_community(session, actor, community_id=community_id)
    await _check_vehicle_links(session, actor, community_id, house_id, resident_id)
    archived = await session.scalar(
        select(Vehicle).where(
            Vehicle.community_id == community_id,
            Vehicle.plate == canonical,
            Vehicle.archived_at.is_not(None),
        )
    )
    if archived is not None:
        archived.archived_at = None
        archived.resident_id, archived.house_id = resident_id, house_id
        archived.brand, archived.color = brand, color
        vehicle = archived
        await session.flush()
    else:
        vehicle = Vehicle(
            tenant_id=_tenant(actor),
            community_id=community_id,
            plate=canonical,
            new_energy=is_new_energy_plate(canonical),
            resident_id=resident_id,
            house_id=house_id,
            brand=brand,
            color=color,
        )
        session.add(vehicle)
        await flush_or_conflict(
            session,
            Conflict("This plate is already registered in this community.", code="plate_taken"),
        )
    await audit.record(
        session, actor, "vehicle.register", target_type="vehicle", target_id=vehicle.id
    )
    await outbox.emit(
        session,
        actor,
        events.VEHICLE_REGISTERED,
        {"vehicle_id": str(vehicle.id), "community_id": str(community_id), "plate": canonical},
    )
    return vehicle


async def _check_vehicle_links(
    session: AsyncSession,
    actor: Actor,
    community_id: uuid.UUID,
    house_id: uuid.UUID | None,
    resident_id: uuid.UUID | None,
) -> None:
    if house_id is not None:
        house = await estate.get_house(session, actor, house_id=house_id)
        if house.community_id != community_id:
            raise ValidationFailed(
                errors=[
                    FieldError(
                        "house_id", "The house is in another community.", "community_mismatch"
                    )
                ]
            )
    if resident_id is not None:
        await get_resident(session, actor, resident_id=resident_id)


async def list_vehicles(
    session: AsyncSession,
    actor: Actor,
    *,
    community_id: uuid.UUID | None = None,
    house_id: uuid.UUID | None = None,
    plate: str | None = None,
    page: PageParams,
    include_archived: bool = False,
) -> tuple[list[Vehicle], str | None]:
    """Registered vehicles; archived ones are left out (the gates no longer know them)."""
    statement = select(Vehicle).where(estate.community_scope(actor, Vehicle.community_id))
    if not include_archived:
        statement = statement.where(Vehicle.archived_at.is_(None))
    if community_id is not None:
        statement = statement.where(Vehicle.community_id == community_id)
    if house_id is not None:
        statement = statement.where(Vehicle.house_id == house_id)
    if plate:
        statement = statement.where(Vehicle.plate == (normalize_plate(plate) or plate))
    rows = (await session.scalars(paginate_statement(statement, Vehicle.id, page))).all()
    return make_page(list(rows), page)


async def get_vehicle(session: AsyncSession, actor: Actor, *, vehicle_id: uuid.UUID) -> Vehicle:
    vehicle = await session.scalar(
        select(Vehicle).where(
            Vehicle.id == vehicle_id, estate.community_scope(actor, Vehicle.community_id)
        )
    )
    if vehicle is None:
        raise NotFound("Vehicle not found.", code="vehicle_not_found")
    return vehicle


VEHICLE_FIELDS = ("plate", "resident_id", "house_id", "brand", "color")


async def update_vehicle(
    session: AsyncSession, actor: Actor, *, vehicle_id: uuid.UUID, changes: dict[str, Any]
) -> Vehicle:
    """Correct a vehicle: its plate (a typo), owner, house, brand or colour."""
    vehicle = await get_vehicle(session, actor, vehicle_id=vehicle_id)
    wanted = {k: v for k, v in changes.items() if k in VEHICLE_FIELDS}
    if "plate" in wanted:
        wanted["plate"] = _normalized_plate(str(wanted["plate"] or ""))
    house_id = wanted.get("house_id", vehicle.house_id)
    resident_id = wanted.get("resident_id", vehicle.resident_id)
    await _check_vehicle_links(
        session,
        actor,
        vehicle.community_id,
        house_id if house_id != vehicle.house_id else None,
        resident_id if resident_id != vehicle.resident_id else None,
    )
    changed = sorted(k for k, v in wanted.items() if getattr(vehicle, k) != v)
    for key in changed:
        setattr(vehicle, key, wanted[key])
    if "plate" in changed:
        vehicle.new_energy = is_new_energy_plate(vehicle.plate)
    await flush_or_conflict(
        session, Conflict("This plate is already registered in this community.", code="plate_taken")
    )
    if changed:
        await audit.record(
            session,
            actor,
            "vehicle.update",
            target_type="vehicle",
            target_id=vehicle.id,
            detail={"fields": changed},
        )
    return vehicle


async def archive_vehicle(session: AsyncSession, actor: Actor, *, vehicle_id: uuid.UUID) -> Vehicle:
    """The vehicle is gone (sold, moved away): gates stop knowing it, its history stays."""
    vehicle = await get_vehicle(session, actor, vehicle_id=vehicle_id)
    if vehicle.archived_at is None:
        vehicle.archived_at = dt.datetime.now(dt.UTC)
        await session.flush()
        await audit.record(
            session, actor, "vehicle.archive", target_type="vehicle", target_id=vehicle.id
        )
    return vehicle


async def delete_vehicle(session: AsyncSession, actor: Actor, *, vehicle_id: uuid.UUID) -> None:
    """Delete a vehicle registered by mistake; one with gate records is refused: archive it."""
    vehicle = await get_vehicle(session, actor, vehicle_id=vehicle_id)
    reasons = await estate.usage_of(session, actor, subject="vehicle", subject_id=vehicle.id)
    await estate.delete_checked(session, actor, vehicle, subject="vehicle", reasons=reasons)


async def resident_ids_by_phones(
    session: AsyncSession, actor: Actor, phones: Sequence[str]
) -> dict[str, uuid.UUID]:
    """Normalized mobile numbers → resident ids of this company (by blind index)."""
    by_hash = {phone_hash(p): p for p in set(phones) if p}
    if not by_hash:
        return {}
    rows = await session.execute(
        select(Resident.phone_hash, Resident.id).where(
            Resident.tenant_id == _tenant(actor),
            Resident.phone_hash == any_(bindparam("hashes", list(by_hash), type_=_BYTEA_ARRAY)),
        )
    )
    return {by_hash[h]: i for h, i in rows.all() if h in by_hash}


# --- set-based upserts (bulk import) -----------------------------------------------------


@dataclass
class _Person:
    name: str
    phone: str | None
    id_card: str | None
    gender: str | None
    birth_date: dt.date | None
    phone_hash: bytes | None
    id_hash: bytes | None
    house_id: uuid.UUID
    rows: list[int] = field(default_factory=list)
    resident_id: uuid.UUID | None = None
    created: bool = False
    updated: bool = False

    @property
    def key(self) -> tuple[str, Any]:
        if self.phone_hash:
            return ("phone", self.phone_hash)
        if self.id_hash:
            return ("id", self.id_hash)
        return ("name", (self.house_id, self.name))


def _resident_row_errors(index: int, row: ResidentRow) -> list[FieldError]:
    errors = []
    prefix = f"rows[{index}]"
    if not row.name or not row.name.strip():
        errors.append(FieldError(f"{prefix}.name", "A name is required.", "required"))
    if row.phone and crypto.normalize_phone(row.phone) is None:
        errors.append(
            FieldError(f"{prefix}.phone", "Not a valid mainland mobile number.", "invalid_phone")
        )
    if row.id_card and normalize_id_card(row.id_card) is None:
        errors.append(
            FieldError(
                f"{prefix}.id_card", "Not a valid 18-digit resident ID number.", "invalid_id_card"
            )
        )
    if row.gender and row.gender not in Gender._value2member_map_:
        errors.append(FieldError(f"{prefix}.gender", "Unknown gender.", "invalid_choice"))
    if row.relation not in Relation._value2member_map_:
        errors.append(FieldError(f"{prefix}.relation", "Unknown relation.", "invalid_choice"))
    elif row.relation != Relation.TENANT and (row.lease_start or row.lease_end):
        errors.append(
            FieldError(
                f"{prefix}.lease_start", "Only tenants have lease dates.", "lease_not_allowed"
            )
        )
    if row.lease_start and row.lease_end and row.lease_end < row.lease_start:
        errors.append(
            FieldError(f"{prefix}.lease_end", "The lease ends before it starts.", "invalid_range")
        )
    return errors


async def upsert_residents(
    session: AsyncSession, actor: Actor, *, rows: list[ResidentRow]
) -> UpsertResult:
    """Create or update residents and their house relations by natural key, set-based.

    A person is matched by phone, else ID-card number, else name within the
    house. A row whose person and relation are already as given is unchanged.
    """
    tenant_id = _tenant(actor)
    if not rows:
        return UpsertResult(0, 0, 0)
    codes = await estate.community_ids_by_code(session, actor, (r.community_code for r in rows))
    estate.require_codes(rows, codes)
    errors = [e for i, r in enumerate(rows) for e in _resident_row_errors(i, r)]
    if errors:
        raise ValidationFailed(errors=errors[:200])
    resolved = await estate.resolve_houses(
        session,
        actor,
        keys=((r.community_code, r.building_no, r.unit_no, r.house_no) for r in rows),
    )
    missing = [
        i
        for i, r in enumerate(rows)
        if (r.community_code, r.building_no, r.unit_no, r.house_no) not in resolved.ids
    ]
    if missing:
        raise ValidationFailed(
            "Some rows name a house that does not exist.",
            code="house_not_found",
            errors=[
                FieldError(f"rows[{i}].house_no", "No such house.", "house_not_found")
                for i in missing[:200]
            ],
        )

    # One person per natural key; the last row wins for the person's attributes.
    people: dict[tuple[str, Any], _Person] = {}
    row_person: list[_Person] = []
    row_house: list[uuid.UUID] = []
    for index, row in enumerate(rows):
        phone = crypto.normalize_phone(row.phone) if row.phone else None
        id_card = normalize_id_card(row.id_card) if row.id_card else None
        person = _Person(
            name=row.name.strip(),
            phone=phone,
            id_card=id_card,
            gender=row.gender or None,
            birth_date=row.birth_date,
            phone_hash=phone_hash(phone) if phone else None,
            id_hash=id_card_hash(id_card) if id_card else None,
            house_id=resolved.ids[(row.community_code, row.building_no, row.unit_no, row.house_no)],
        )
        row_house.append(person.house_id)
        existing = people.get(person.key)
        if existing is not None:
            # Later rows win, but a blank cell does not erase what an earlier row said.
            person.rows = existing.rows
            person.house_id = existing.house_id  # the name key is tied to the first house
            person.id_card = person.id_card or existing.id_card
            person.id_hash = person.id_hash or existing.id_hash
            person.phone = person.phone or existing.phone
            person.phone_hash = person.phone_hash or existing.phone_hash
            person.gender = person.gender or existing.gender
            person.birth_date = person.birth_date or existing.birth_date
        person.rows.append(index)
        people[person.key] = person
        row_person.append(person)
    row_person = [people[p.key] for p in row_person]
    _refuse_shared_id_cards(list(people.values()))

    await _match_existing(session, tenant_id, list(people.values()))
    await _write_people(session, tenant_id, list(people.values()))

    # Relations: one per (house, person); last row wins.
    links: dict[tuple[uuid.UUID, uuid.UUID], tuple[int, ResidentRow]] = {}
    for index, row in enumerate(rows):
        person = row_person[index]
        assert person.resident_id is not None
        links[(row_house[index], person.resident_id)] = (index, row)
    result = await session.execute(
        text(
            """
            INSERT INTO resident_houses AS rh (tenant_id, id, resident_id, house_id,
                community_id, relation,
                                               lease_start, lease_end, moved_in_on, source)
            SELECT :tenant, i, r, h, c, CAST(rel AS resident_relation), ls, le, CURRENT_DATE,
                'import'
            FROM unnest(CAST(:ids AS uuid[]), CAST(:rids AS uuid[]), CAST(:hids AS uuid[]),
                        CAST(:cids AS uuid[]), CAST(:rels AS text[]), CAST(:ls AS date[]),
                        CAST(:le AS date[])) AS t(i, r, h, c, rel, ls, le)
            ON CONFLICT (tenant_id, house_id, resident_id) WHERE moved_out_on IS NULL DO UPDATE SET
                relation = EXCLUDED.relation, lease_start = EXCLUDED.lease_start,
                    lease_end = EXCLUDED.lease_end
            WHERE (rh.relation, rh.lease_start, rh.lease_end)
                  IS DISTINCT FROM (EXCLUDED.relation, EXCLUDED.lease_start, EXCLUDED.lease_end)
            RETURNING rh.house_id, rh.resident_id, (xmax = 0) AS inserted
            """
        ),
        {
            "tenant": tenant_id,
            "ids": [new_id() for _ in links],
            "rids": [k[1] for k in links],
            "hids": [k[0] for k in links],
            "cids": [resolved.community_of[k[0]] for k in links],
            "rels": [row.relation for _, row in links.values()],
            "ls": [row.lease_start for _, row in links.values()],
            "le": [row.lease_end for _, row in links.values()],
        },
    )
    touched = {(h, r): bool(inserted) for h, r, inserted in result.all()}

    created = updated = 0
    for (house_id, resident_id), (index, _) in links.items():
        person = row_person[index]
        state = touched.get((house_id, resident_id))
        if state is True or person.created:
            created += 1
        elif state is False or person.updated:
            updated += 1
    outcome = UpsertResult(
        created=created, updated=updated, unchanged=len(rows) - created - updated
    )
    await _remember_tenant(
        session, tenant_id, [p.phone_hash for p in people.values() if p.phone_hash]
    )
    if created or updated:
        detail = {"created": created, "updated": updated, "unchanged": outcome.unchanged}
        await audit.record(
            session,
            actor,
            "resident.upsert",
            target_type="resident",
            target_id="bulk",
            detail=detail,
        )
        await outbox.emit(session, actor, events.RESIDENTS_IMPORTED, detail)
    return outcome


def _refuse_shared_id_cards(people: list[_Person]) -> None:
    """Two people of one file (different phones) with one ID number: a typo, not two people."""
    owner: dict[bytes, _Person] = {}
    problems: list[FieldError] = []
    for person in people:
        if person.id_hash is None:
            continue
        first = owner.setdefault(person.id_hash, person)
        if first is not person:
            problems.extend(
                FieldError(
                    f"rows[{i}].id_card",
                    "This ID number is already used by another person in this file.",
                    "identity_conflict",
                )
                for i in person.rows
            )
    if problems:
        raise ValidationFailed(code="identity_conflict", errors=problems[:200])


async def _match_existing(
    session: AsyncSession, tenant_id: uuid.UUID, people: list[_Person]
) -> None:
    phones = [p.phone_hash for p in people if p.phone_hash]
    ids = [p.id_hash for p in people if p.id_hash]
    by_phone: dict[bytes, Resident] = {}
    by_id: dict[bytes, Resident] = {}
    if phones or ids:
        found = (
            await session.scalars(
                select(Resident).where(
                    Resident.tenant_id == tenant_id,
                    # One array parameter each, not an IN list of 20,000 bound values:
                    # compiling those was seconds per import batch.
                    (Resident.phone_hash == any_(bindparam("phones", phones, type_=_BYTEA_ARRAY)))
                    | (Resident.id_card_hash == any_(bindparam("ids", ids, type_=_BYTEA_ARRAY))),
                )
            )
        ).all()
        for resident in found:
            if resident.phone_hash:
                by_phone[resident.phone_hash] = resident
            if resident.id_card_hash:
                by_id[resident.id_card_hash] = resident
    nameless = [p for p in people if not p.phone_hash and not p.id_hash]
    by_name: dict[tuple[uuid.UUID, str], Resident] = {}
    if nameless:
        rows = await session.execute(
            select(ResidentHouse.house_id, Resident)
            .join(
                Resident,
                and_(
                    Resident.tenant_id == ResidentHouse.tenant_id,
                    Resident.id == ResidentHouse.resident_id,
                ),
            )
            .where(
                ResidentHouse.tenant_id == tenant_id,
                ResidentHouse.house_id.in_({p.house_id for p in nameless}),
                ResidentHouse.moved_out_on.is_(None),
                Resident.name.in_({p.name for p in nameless}),
                Resident.phone_hash.is_(None),
                Resident.id_card_hash.is_(None),
            )
        )
        for house_id, resident in rows.all():
            by_name[(house_id, resident.name)] = resident
    problems: list[FieldError] = []
    for person in people:
        match_phone = by_phone.get(person.phone_hash) if person.phone_hash else None
        match_id = by_id.get(person.id_hash) if person.id_hash else None
        if match_phone and match_id and match_phone.id != match_id.id:
            problems.extend(
                FieldError(
                    f"rows[{i}].id_card",
                    "This phone and ID number belong to two different residents.",
                    "identity_conflict",
                )
                for i in person.rows
            )
            continue
        match = match_phone or match_id
        if match is None and not person.phone_hash and not person.id_hash:
            match = by_name.get((person.house_id, person.name))
        if match is not None:
            person.resident_id = match.id
            person.updated = _apply_person(match, person)
    if problems:
        raise ValidationFailed(code="identity_conflict", errors=problems[:200])


def _apply_person(resident: Resident, person: _Person) -> bool:
    """Copy what the row says onto an existing resident; True if anything changed."""
    changed = False
    if resident.name != person.name:
        resident.name = person.name
        changed = True
    if person.gender and (resident.gender is None or resident.gender.value != person.gender):
        resident.gender = Gender(person.gender)
        changed = True
    if person.birth_date and resident.birth_date != person.birth_date:
        resident.birth_date = person.birth_date
        changed = True
    if person.phone and resident.phone_hash != person.phone_hash:
        resident.phone_enc = crypto.encrypt(person.phone)
        resident.phone_hash = person.phone_hash
        changed = True
    if person.id_card and resident.id_card_hash != person.id_hash:
        resident.id_card_enc = crypto.encrypt(person.id_card)
        resident.id_card_hash = person.id_hash
        changed = True
    return changed


async def _write_people(session: AsyncSession, tenant_id: uuid.UUID, people: list[_Person]) -> None:
    new = [p for p in people if p.resident_id is None]
    for person in new:
        person.resident_id = new_id()
        person.created = True
    if new:
        await session.execute(
            text(
                """
                INSERT INTO residents (tenant_id, id, name, phone_enc, phone_hash,
                    id_card_enc, id_card_hash,
                                       gender, birth_date, tags)
                SELECT :tenant, i, n, pe, ph, ie, ih, CAST(g AS gender), b, '{}'
                FROM unnest(CAST(:ids AS uuid[]), CAST(:names AS text[]), CAST(:pe AS bytea[]),
                            CAST(:ph AS bytea[]), CAST(:ie AS bytea[]), CAST(:ih AS bytea[]),
                            CAST(:genders AS text[]), CAST(:births AS date[])) AS t(i, n, pe,
                                ph, ie, ih, g, b)
                """
            ),
            {
                "tenant": tenant_id,
                "ids": [p.resident_id for p in new],
                "names": [p.name for p in new],
                "pe": crypto.encrypt_many(p.phone for p in new),
                "ph": [p.phone_hash for p in new],
                "ie": crypto.encrypt_many(p.id_card for p in new),
                "ih": [p.id_hash for p in new],
                "genders": [p.gender for p in new],
                "births": [p.birth_date for p in new],
            },
        )
    try:
        async with session.begin_nested():
            await session.flush()  # updates of matched residents (ORM, changed rows only)
    except IntegrityError as exc:
        raise ValidationFailed(
            "A phone or ID number in this file already belongs to another resident.",
            code="identity_conflict",
        ) from exc


async def upsert_vehicles(
    session: AsyncSession, actor: Actor, *, rows: list[VehicleRow]
) -> UpsertResult:
    """Create or update vehicles by (community, plate), set-based."""
    tenant_id = _tenant(actor)
    if not rows:
        return UpsertResult(0, 0, 0)
    codes = await estate.community_ids_by_code(session, actor, (r.community_code for r in rows))
    estate.require_codes(rows, codes)
    errors: list[FieldError] = []
    plates: list[str | None] = []
    for i, row in enumerate(rows):
        plate = normalize_plate(row.plate or "")
        plates.append(plate)
        if plate is None:
            errors.append(
                FieldError(
                    f"rows[{i}].plate", "Not a valid mainland licence plate.", "invalid_plate"
                )
            )
        if row.owner_phone and crypto.normalize_phone(row.owner_phone) is None:
            errors.append(
                FieldError(
                    f"rows[{i}].owner_phone", "Not a valid mainland mobile number.", "invalid_phone"
                )
            )
    if errors:
        raise ValidationFailed(errors=errors[:200])
    house_keys = [
        (r.community_code, r.building_no, r.unit_no, r.house_no)
        for r in rows
        if r.building_no and r.house_no
    ]
    resolved = await estate.resolve_houses(session, actor, keys=house_keys)
    owner_hashes = {
        phone_hash(p)
        for r in rows
        if r.owner_phone and (p := crypto.normalize_phone(r.owner_phone))
    }
    owners: dict[bytes, uuid.UUID] = {}
    if owner_hashes:
        found = await session.execute(
            select(Resident.phone_hash, Resident.id).where(
                Resident.tenant_id == tenant_id, Resident.phone_hash.in_(owner_hashes)
            )
        )
        owners = {h: i for h, i in found.all() if h is not None}
    latest: dict[tuple[uuid.UUID, str], tuple[uuid.UUID | None, uuid.UUID | None, VehicleRow]] = {}
    for i, row in enumerate(rows):
        house_id = None
        if row.building_no and row.house_no:
            house_id = resolved.ids.get(
                (row.community_code, row.building_no, row.unit_no, row.house_no)
            )
            if house_id is None:
                errors.append(
                    FieldError(f"rows[{i}].house_no", "No such house.", "house_not_found")
                )
        owner_id = None
        if row.owner_phone:
            normalized = crypto.normalize_phone(row.owner_phone)
            assert normalized is not None
            owner_id = owners.get(phone_hash(normalized))
            if owner_id is None:
                errors.append(
                    FieldError(
                        f"rows[{i}].owner_phone",
                        "No resident has this phone.",
                        "resident_not_found",
                    )
                )
        plate = plates[i]
        assert plate is not None
        latest[(codes[row.community_code], plate)] = (house_id, owner_id, row)
    if errors:
        raise ValidationFailed(errors=errors[:200])
    result = await session.execute(
        text(
            """
            INSERT INTO vehicles AS v (tenant_id, id, community_id, plate, new_energy,
                resident_id, house_id,
                                       brand, color)
            SELECT :tenant, i, c, p, length(p) = 8, r, h, b, col
            FROM unnest(CAST(:ids AS uuid[]), CAST(:cids AS uuid[]), CAST(:plates AS text[]),
                        CAST(:rids AS uuid[]), CAST(:hids AS uuid[]), CAST(:brands AS text[]),
                        CAST(:colors AS text[])) AS t(i, c, p, r, h, b, col)
            ON CONFLICT (tenant_id, community_id, plate) DO UPDATE SET
                resident_id = EXCLUDED.resident_id, house_id = EXCLUDED.house_id,
                brand = EXCLUDED.brand, color = EXCLUDED.color, archived_at = NULL
            WHERE (v.resident_id, v.house_id, v.brand, v.color, v.archived_at)
                  IS DISTINCT FROM (EXCLUDED.resident_id, EXCLUDED.house_id, EXCLUDED.brand,
                      EXCLUDED.color, NULL)
            RETURNING (xmax = 0) AS inserted
            """
        ),
        {
            "tenant": tenant_id,
            "ids": [new_id() for _ in latest],
            "cids": [k[0] for k in latest],
            "plates": [k[1] for k in latest],
            "rids": [v[1] for v in latest.values()],
            "hids": [v[0] for v in latest.values()],
            "brands": [v[2].brand or "" for v in latest.values()],
            "colors": [v[2].color or "" for v in latest.values()],
        },
    )
    flags = [bool(f) for (f,) in result.all()]
    return await estate.record_bulk_upsert(
        session,
        actor,
        target="vehicle",
        event=events.VEHICLES_IMPORTED,
        inserted=flags,
        total=len(rows),
    )


# --- the resident portal: claims, my homes, members --------------------------------------


def _in_tenant(actor: Actor, tenant_id: uuid.UUID) -> Actor:
    """The resident acting inside one company: audit rows and events land in that company."""
    return replace(actor, tenant_id=tenant_id)


async def _account(session: AsyncSession, actor: Actor) -> ResidentAccount:
    if actor.kind is not PrincipalKind.RESIDENT:
        raise PermissionDenied()
    account = await session.scalar(select(ResidentAccount).where(ResidentAccount.id == actor.id))
    if account is None or not account.is_active:
        raise NotFound("Account not found.", code="account_not_found")
    return account


async def _my_resident_ids(session: AsyncSession, account: ResidentAccount) -> list[uuid.UUID]:
    if account.phone_hash is None:
        return []
    return list(
        (
            await session.scalars(
                select(Resident.id).where(Resident.phone_hash == account.phone_hash)
            )
        ).all()
    )


async def submit_claim(
    session: AsyncSession,
    actor: Actor,
    *,
    company: str,
    community_code: str,
    house: str,
    name: str,
    relation: Relation = Relation.OWNER,
) -> HouseClaim:
    """A portal user says "I am the owner of 3-2-1201 in community X of company Y" (认证房屋)."""
    account = await _account(session, actor)
    if account.phone_hash is None:
        raise ValidationFailed(
            "Bind a phone number before claiming a house.",
            code="phone_required",
            errors=[FieldError("phone", "A verified phone is required.", "phone_required")],
        )
    tenant = await session.scalar(select(Tenant).where(Tenant.slug == company.strip().lower()))
    ref = estate.parse_house_ref(house)
    if tenant is None or ref is None:
        raise NotFound("House not found.", code="house_not_found")
    await set_tenant(session, tenant.id)
    scoped = _in_tenant(actor, tenant.id)
    community = await session.scalar(
        select(Community).where(Community.code == community_code, Community.archived_at.is_(None))
    )
    if community is None:
        raise NotFound("House not found.", code="house_not_found")
    system = Actor.system(tenant.id)
    house_ids = await estate.find_house_ids_by_ref(
        session, system, ref=ref, community_id=community.id
    )
    if len(house_ids) != 1:
        raise NotFound("House not found.", code="house_not_found")
    claim = HouseClaim(
        tenant_id=tenant.id,
        community_id=community.id,
        house_id=house_ids[0],
        account_id=account.id,
        name=name,
        relation=relation,
    )
    session.add(claim)
    await flush_or_conflict(
        session, Conflict("You already have a pending claim on this house.", code="claim_pending")
    )
    # The company now knows this phone (as a claimant), so "my homes" lists the claim's status.
    await _remember_tenant(session, tenant.id, [account.phone_hash])
    await audit.record(
        session, scoped, "claim.submit", target_type="house_claim", target_id=claim.id
    )
    await outbox.emit(
        session,
        scoped,
        events.CLAIM_SUBMITTED,
        {
            "claim_id": str(claim.id),
            "house_id": str(claim.house_id),
            "community_id": str(community.id),
        },
    )
    return claim


def readable_claims(actor: Actor) -> Select[HouseClaim]:
    return select(HouseClaim).where(estate.community_scope(actor, HouseClaim.community_id))


async def list_claims(
    session: AsyncSession,
    actor: Actor,
    *,
    status: ClaimStatus | None,
    community_id: uuid.UUID | None,
    page: PageParams,
) -> tuple[list[HouseClaim], str | None]:
    statement = readable_claims(actor)
    if status is not None:
        statement = statement.where(HouseClaim.status == status)
    if community_id is not None:
        statement = statement.where(HouseClaim.community_id == community_id)
    rows = (await session.scalars(paginate_statement(statement, HouseClaim.id, page))).all()
    return make_page(list(rows), page)


async def _pending_claim(session: AsyncSession, actor: Actor, claim_id: uuid.UUID) -> HouseClaim:
    claim = await session.scalar(
        readable_claims(actor).where(HouseClaim.id == claim_id).with_for_update()
    )
    if claim is None:
        raise NotFound("Claim not found.", code="claim_not_found")
    if claim.status is not ClaimStatus.PENDING:
        raise Conflict("This claim has already been reviewed.", code="claim_reviewed")
    return claim


async def approve_claim(session: AsyncSession, actor: Actor, *, claim_id: uuid.UUID) -> HouseClaim:
    """Approve: the claimant becomes a resident of the house with the claimed relation."""
    claim = await _pending_claim(session, actor, claim_id)
    account = await session.scalar(
        select(ResidentAccount).where(ResidentAccount.id == claim.account_id)
    )
    if account is None or account.phone_hash is None or account.phone_enc is None:
        raise Conflict("The claimant's account no longer has a phone.", code="claimant_gone")
    resident = await session.scalar(
        select(Resident).where(Resident.phone_hash == account.phone_hash)
    )
    if resident is None:
        resident = Resident(
            tenant_id=_tenant(actor),
            name=claim.name,
            phone_enc=crypto.encrypt(crypto.decrypt(account.phone_enc)),
            phone_hash=account.phone_hash,
            tags=[],
        )
        session.add(resident)
        await session.flush()
        await _remember_tenant(session, _tenant(actor), [account.phone_hash])
        await audit.record(
            session, actor, "resident.create", target_type="resident", target_id=resident.id
        )
    current = await session.scalar(
        select(ResidentHouse).where(
            ResidentHouse.house_id == claim.house_id,
            ResidentHouse.resident_id == resident.id,
            ResidentHouse.moved_out_on.is_(None),
        )
    )
    if current is None:
        await move_in(
            session,
            actor,
            resident_id=resident.id,
            house_id=claim.house_id,
            relation=claim.relation,
            source="claim",
        )
    elif current.relation is not claim.relation:
        current.relation = claim.relation
    claim.status = ClaimStatus.APPROVED
    claim.reviewed_by = actor.id
    claim.reviewed_at = dt.datetime.now(dt.UTC)
    await session.flush()
    await audit.record(
        session, actor, "claim.approve", target_type="house_claim", target_id=claim.id
    )
    await outbox.emit(
        session,
        actor,
        events.CLAIM_APPROVED,
        {
            "claim_id": str(claim.id),
            "house_id": str(claim.house_id),
            "resident_id": str(resident.id),
        },
    )
    return claim


async def reject_claim(
    session: AsyncSession, actor: Actor, *, claim_id: uuid.UUID, reason: str
) -> HouseClaim:
    if not reason.strip():
        raise ValidationFailed(
            errors=[FieldError("reason", "Say why the claim is rejected.", "required")]
        )
    claim = await _pending_claim(session, actor, claim_id)
    claim.status = ClaimStatus.REJECTED
    claim.reason = reason.strip()
    claim.reviewed_by = actor.id
    claim.reviewed_at = dt.datetime.now(dt.UTC)
    await session.flush()
    await audit.record(
        session, actor, "claim.reject", target_type="house_claim", target_id=claim.id
    )
    await outbox.emit(session, actor, events.CLAIM_REJECTED, {"claim_id": str(claim.id)})
    return claim


@dataclass
class HomeMember:
    link_id: uuid.UUID
    resident_id: uuid.UUID
    name: str
    relation: Relation
    phone_masked: str | None
    is_me: bool
    lease_end: dt.date | None


@dataclass
class HomeVehicle:
    plate: str
    new_energy: bool
    brand: str
    color: str


@dataclass
class Home:
    company_id: uuid.UUID
    company_name: str
    community_id: uuid.UUID
    community_name: str
    house_id: uuid.UUID
    building_no: str
    unit_no: str | None
    house_no: str
    building_area: Any
    my_relation: Relation
    members: list[HomeMember] = field(default_factory=list)
    vehicles: list[HomeVehicle] = field(default_factory=list)


@dataclass
class ClaimView:
    company_id: uuid.UUID
    claim_id: uuid.UUID
    house_id: uuid.UUID
    relation: Relation
    status: ClaimStatus
    reason: str
    created_at: dt.datetime


async def my_homes(session: AsyncSession, actor: Actor) -> tuple[list[Home], list[ClaimView]]:
    """Every house the signed-in resident lives in or owns, across companies (我的房屋).

    Reads only rows reached from the account's own phone hash, one company at a time.
    """
    account = await _account(session, actor)
    if account.phone_hash is None:
        return [], []
    tenants = (
        await session.execute(
            select(Tenant.id, Tenant.name)
            .join(ResidentCompany, ResidentCompany.tenant_id == Tenant.id)
            .where(ResidentCompany.phone_hash == account.phone_hash)
            .order_by(Tenant.id)
        )
    ).all()
    homes: list[Home] = []
    claims: list[ClaimView] = []
    try:
        for tenant_id, tenant_name in tenants:
            await set_tenant(session, tenant_id)
            homes.extend(await _homes_in_tenant(session, account, tenant_id, tenant_name))
            claim_rows = (
                await session.scalars(
                    select(HouseClaim)
                    .where(HouseClaim.account_id == account.id)
                    .order_by(HouseClaim.id)
                )
            ).all()
            claims.extend(
                ClaimView(tenant_id, c.id, c.house_id, c.relation, c.status, c.reason, c.created_at)
                for c in claim_rows
            )
    finally:
        await set_tenant(session, None)
    return homes, claims


async def _homes_in_tenant(
    session: AsyncSession, account: ResidentAccount, tenant_id: uuid.UUID, tenant_name: str
) -> list[Home]:
    mine = await _my_resident_ids(session, account)
    if not mine:
        return []
    rows = (
        await session.execute(
            select(
                ResidentHouse.relation, House, Building.building_no, Unit.unit_no, Community.name
            )
            .join(
                House,
                and_(
                    House.tenant_id == ResidentHouse.tenant_id, House.id == ResidentHouse.house_id
                ),
            )
            .join(
                Building,
                and_(Building.tenant_id == House.tenant_id, Building.id == House.building_id),
            )
            .outerjoin(Unit, and_(Unit.tenant_id == House.tenant_id, Unit.id == House.unit_id))
            .join(
                Community,
                and_(Community.tenant_id == House.tenant_id, Community.id == House.community_id),
            )
            .where(ResidentHouse.resident_id.in_(mine), ResidentHouse.moved_out_on.is_(None))
            .order_by(House.id)
        )
    ).all()
    homes = {
        house.id: Home(
            company_id=tenant_id,
            company_name=tenant_name,
            community_id=house.community_id,
            community_name=community_name,
            house_id=house.id,
            building_no=building_no,
            unit_no=unit_no,
            house_no=house.house_no,
            building_area=house.building_area,
            my_relation=relation,
        )
        for relation, house, building_no, unit_no, community_name in rows
    }
    if not homes:
        return []
    members = (
        await session.execute(
            select(ResidentHouse, Resident)
            .join(
                Resident,
                and_(
                    Resident.tenant_id == ResidentHouse.tenant_id,
                    Resident.id == ResidentHouse.resident_id,
                ),
            )
            .where(ResidentHouse.house_id.in_(list(homes)), ResidentHouse.moved_out_on.is_(None))
            .order_by(ResidentHouse.id)
        )
    ).all()
    for link, resident in members:
        phone = crypto.decrypt(resident.phone_enc) if resident.phone_enc else None
        homes[link.house_id].members.append(
            HomeMember(
                link_id=link.id,
                resident_id=resident.id,
                name=resident.name,
                relation=link.relation,
                phone_masked=crypto.mask_phone(phone) if phone else None,
                is_me=resident.id in mine,
                lease_end=link.lease_end,
            )
        )
    vehicles = (
        await session.scalars(
            select(Vehicle)
            .where(Vehicle.house_id.in_(list(homes)), Vehicle.archived_at.is_(None))
            .order_by(Vehicle.plate)
        )
    ).all()
    for vehicle in vehicles:
        assert vehicle.house_id is not None
        homes[vehicle.house_id].vehicles.append(
            HomeVehicle(
                plate=vehicle.plate,
                new_energy=vehicle.new_energy,
                brand=vehicle.brand,
                color=vehicle.color,
            )
        )
    return list(homes.values())


async def add_member(
    session: AsyncSession,
    actor: Actor,
    *,
    company_id: uuid.UUID,
    house_id: uuid.UUID,
    name: str,
    phone: str | None,
    relation: Relation,
    lease_start: dt.date | None = None,
    lease_end: dt.date | None = None,
) -> ResidentHouse:
    """An owner adds a family member or tenant to their house; they then see it in their portal."""
    if relation not in (Relation.FAMILY, Relation.TENANT, Relation.CO_OWNER):
        raise ValidationFailed(
            errors=[
                FieldError(
                    "relation",
                    "Owners may add family members, tenants or co-owners.",
                    "invalid_choice",
                )
            ]
        )
    _check_lease(relation, lease_start, lease_end)
    normalized = _normalized_phone(phone)
    account = await _account(session, actor)
    await set_tenant(session, company_id)
    mine = await _my_resident_ids(session, account)
    my_link = await session.scalar(
        select(ResidentHouse).where(
            ResidentHouse.house_id == house_id,
            ResidentHouse.resident_id.in_(mine or [_NO_COMMUNITY]),
            ResidentHouse.moved_out_on.is_(None),
        )
    )
    if my_link is None:
        raise NotFound("House not found.", code="house_not_found")
    if my_link.relation not in OWNER_RELATIONS:
        raise PermissionDenied("Only the owner may add people to this house.", code="owner_only")
    scoped = _in_tenant(actor, company_id)
    system = replace(Actor.system(company_id), request_id=actor.request_id, ip=actor.ip)
    resident = None
    if normalized:
        resident = await session.scalar(
            select(Resident).where(Resident.phone_hash == phone_hash(normalized))
        )
    if resident is None:
        resident = Resident(
            tenant_id=company_id,
            name=name,
            phone_enc=crypto.encrypt(normalized) if normalized else None,
            phone_hash=phone_hash(normalized) if normalized else None,
            tags=[],
        )
        session.add(resident)
        await session.flush()
        if resident.phone_hash:
            await _remember_tenant(session, company_id, [resident.phone_hash])
        await audit.record(
            session, scoped, "resident.create", target_type="resident", target_id=resident.id
        )
    link = await move_in(
        session,
        system,
        resident_id=resident.id,
        house_id=house_id,
        relation=relation,
        lease_start=lease_start,
        lease_end=lease_end,
        source="owner",
    )
    await audit.record(
        session,
        scoped,
        "house.add_member",
        target_type="house",
        target_id=house_id,
        detail={"resident_id": str(resident.id), "relation": relation.value},
    )
    return link


# --- export ------------------------------------------------------------------------------


def _address_columns() -> tuple[Any, ...]:
    return (Community.code, Building.building_no, Unit.unit_no, House.house_no)


def _join_address(statement: Select[Any], tenant_id: Any, house_id: Any) -> Select[Any]:
    """House, building, unit and community of ``house_id``."""
    return (
        statement.join(House, (House.tenant_id == tenant_id) & (House.id == house_id))
        .join(
            Building, (Building.tenant_id == House.tenant_id) & (Building.id == House.building_id)
        )
        .join(
            Community,
            (Community.tenant_id == House.tenant_id) & (Community.id == House.community_id),
        )
        .outerjoin(Unit, (Unit.tenant_id == House.tenant_id) & (Unit.id == House.unit_id))
    )


async def stream_residents(session: AsyncSession, actor: Actor) -> AsyncIterator[ResidentRow]:
    """Each current resident-house relation in the actor's communities, as import rows (导出).

    Phone and ID numbers come out decrypted; the export masks them for readers
    without the contact permission. Read from a server-side cursor in chunks.
    """
    statement = _join_address(
        select(
            Resident.name,
            Resident.phone_enc,
            Resident.id_card_enc,
            Resident.gender,
            Resident.birth_date,
            *_address_columns(),
            ResidentHouse.relation,
            ResidentHouse.lease_start,
            ResidentHouse.lease_end,
        )
        .select_from(ResidentHouse)
        .join(
            Resident,
            (Resident.tenant_id == ResidentHouse.tenant_id)
            & (Resident.id == ResidentHouse.resident_id),
        ),
        ResidentHouse.tenant_id,
        ResidentHouse.house_id,
    ).where(
        ResidentHouse.moved_out_on.is_(None),
        House.archived_at.is_(None),
        estate.community_scope(actor, ResidentHouse.community_id),
    )
    statement = statement.order_by(
        Community.code, Building.building_no, Unit.unit_no, House.house_no, Resident.name
    ).execution_options(yield_per=estate.EXPORT_CHUNK)
    result = await session.stream(statement)
    async for row in result:
        (name, phone_enc, id_enc, gender, birth, code, building_no, unit_no, house_no) = row[:9]
        relation, lease_start, lease_end = row[9:]
        yield ResidentRow(
            name=name,
            phone=crypto.decrypt(phone_enc) if phone_enc else None,
            id_card=crypto.decrypt(id_enc) if id_enc else None,
            gender=Gender(gender).value if gender else None,
            birth_date=birth,
            community_code=code,
            building_no=building_no,
            unit_no=unit_no,
            house_no=house_no,
            relation=Relation(relation).value,
            lease_start=lease_start,
            lease_end=lease_end,
        )


async def stream_vehicles(session: AsyncSession, actor: Actor) -> AsyncIterator[VehicleRow]:
    """Every vehicle in the actor's communities, as import rows, with its house and owner."""
    statement = (
        select(
            Vehicle.plate,
            Community.code,
            Building.building_no,
            Unit.unit_no,
            House.house_no,
            Resident.phone_enc,
            Vehicle.brand,
            Vehicle.color,
        )
        .select_from(Vehicle)
        .join(
            Community,
            (Community.tenant_id == Vehicle.tenant_id) & (Community.id == Vehicle.community_id),
        )
        .outerjoin(House, (House.tenant_id == Vehicle.tenant_id) & (House.id == Vehicle.house_id))
        .outerjoin(
            Building, (Building.tenant_id == House.tenant_id) & (Building.id == House.building_id)
        )
        .outerjoin(Unit, (Unit.tenant_id == House.tenant_id) & (Unit.id == House.unit_id))
        .outerjoin(
            Resident,
            (Resident.tenant_id == Vehicle.tenant_id) & (Resident.id == Vehicle.resident_id),
        )
        .where(estate.community_scope(actor, Vehicle.community_id), Vehicle.archived_at.is_(None))
        .order_by(Community.code, Vehicle.plate)
        .execution_options(yield_per=estate.EXPORT_CHUNK)
    )
    result = await session.stream(statement)
    async for plate, code, building_no, unit_no, house_no, phone_enc, brand, color in result:
        yield VehicleRow(
            plate=plate,
            community_code=code,
            building_no=building_no,
            unit_no=unit_no,
            house_no=house_no,
            owner_phone=crypto.decrypt(phone_enc) if phone_enc else None,
            brand=brand,
            color=color,
        )


async def phones_of(
    session: AsyncSession, actor: Actor, *, resident_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """Residents' mobile numbers, decrypted, for an export the caller then masks as needed."""
    wanted = sorted(set(resident_ids))
    if not wanted:
        return {}
    rows = await session.execute(
        select(Resident.id, Resident.phone_enc).where(
            Resident.tenant_id == _tenant(actor), Resident.id.in_(wanted)
        )
    )
    return {rid: crypto.decrypt(enc) for rid, enc in rows.all() if enc}


async def with_current_house(
    session: AsyncSession, actor: Actor, *, resident_ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    """Which of these residents live in (or own) a house now: one statement for a page."""
    wanted = sorted(set(resident_ids))
    if not wanted:
        return set()
    found = await session.scalars(
        select(ResidentHouse.resident_id)
        .where(
            ResidentHouse.tenant_id == _tenant(actor),
            ResidentHouse.resident_id.in_(wanted),
            ResidentHouse.moved_out_on.is_(None),
        )
        .distinct()
    )
    return set(found.all())
