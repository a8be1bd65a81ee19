"""Estate registry rules: buildings, units, houses, parking, facilities, community profile.

Every query starts from a statement scoped to the communities the actor may
see; RLS fences the company underneath. Bulk writes are set-based
(``INSERT ... SELECT FROM unnest(...) ON CONFLICT`` on the natural key) so an
import of 100,000 houses is a handful of statements, not 100,000 round trips.
"""

from __future__ import annotations

import datetime as dt
import importlib
import re
import unicodedata
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, func, select, text, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from linli.auth.actor import Actor, PrincipalKind
from linli.core import audit, outbox
from linli.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from linli.core.ids import new_id
from linli.core.pagination import PageParams, make_page, paginate_statement
from linli.core.persistence import flush_or_conflict
from linli.estate import events
from linli.estate.models import (
    Building,
    Facility,
    House,
    HouseStatus,
    HouseType,
    ParkingArea,
    ParkingSpace,
    ParkingUsage,
    Unit,
)
from linli.estate.rows import FacilityRow, HouseRow, ParkingSpaceRow, UpsertResult
from linli.tenancy.models import Community

T = TypeVar("T")
_NO_COMMUNITY = uuid.UUID(int=0)


# --- scoping -----------------------------------------------------------------------------


def sees_all_communities(actor: Actor) -> bool:
    return actor.all_communities or actor.kind is PrincipalKind.SYSTEM


def community_scope(actor: Actor, column: Any) -> ColumnElement[bool]:
    """``column`` restricted to the actor's granted communities (all for company-wide staff)."""
    if sees_all_communities(actor):
        return true()
    scoped: ColumnElement[bool] = column.in_(list(actor.community_ids) or [_NO_COMMUNITY])
    return scoped


def readable_communities(actor: Actor) -> Select[Community]:
    return select(Community).where(
        Community.archived_at.is_(None), community_scope(actor, Community.id)
    )


def readable_buildings(actor: Actor) -> Select[Building]:
    return select(Building).where(community_scope(actor, Building.community_id))


def readable_units(actor: Actor) -> Select[Unit]:
    return select(Unit).where(community_scope(actor, Unit.community_id))


def readable_houses(actor: Actor, *, include_archived: bool = False) -> Select[House]:
    statement = select(House).where(community_scope(actor, House.community_id))
    if not include_archived:
        statement = statement.where(House.archived_at.is_(None))
    return statement


def _tenant(actor: Actor) -> uuid.UUID:
    if actor.tenant_id is None:
        raise NotFound()
    return actor.tenant_id


async def _one(session: AsyncSession, statement: Select[T], message: str, code: str) -> T:
    row = await session.scalar(statement)
    if row is None:
        raise NotFound(message, code=code)
    return row


async def get_community(
    session: AsyncSession, actor: Actor, *, community_id: uuid.UUID
) -> Community:
    return await _one(
        session,
        readable_communities(actor).where(Community.id == community_id),
        "Community not found.",
        "community_not_found",
    )


async def community_ids_by_code(
    session: AsyncSession, actor: Actor, codes: Iterable[str]
) -> dict[str, uuid.UUID]:
    """Codes of communities the actor may see → ids. Unknown or foreign codes are absent."""
    wanted = sorted({c for c in codes if c})
    if not wanted:
        return {}
    rows = await session.execute(
        select(Community.code, Community.id).where(
            Community.code.in_(wanted),
            Community.archived_at.is_(None),
            community_scope(actor, Community.id),
        )
    )
    return {code: cid for code, cid in rows.all()}


def require_codes(
    rows: Sequence[Any], known: dict[str, uuid.UUID], *, attribute: str = "community_code"
) -> None:
    """Refuse the whole batch if any row names a community the actor cannot see.

    A service must never write into such a community, whatever its caller checked.
    """
    bad = [i for i, row in enumerate(rows) if getattr(row, attribute) not in known]
    if bad:
        raise ValidationFailed(
            "Some rows name a community that does not exist or that you may not manage.",
            code="unknown_community",
            errors=[
                FieldError(f"rows[{i}].{attribute}", "Unknown community.", "unknown_community")
                for i in bad[:100]
            ],
            rows=", ".join(str(i) for i in bad[:100]),
        )


# --- community profile -------------------------------------------------------------------


async def update_community_profile(
    session: AsyncSession,
    actor: Actor,
    *,
    community_id: uuid.UUID,
    changes: dict[str, Any],
) -> Community:
    community = await get_community(session, actor, community_id=community_id)
    allowed = {"name", "address", "timezone", "area_m2", "contact_phone", "fee_settings"}
    changed = sorted(k for k, v in changes.items() if k in allowed and getattr(community, k) != v)
    for key in changed:
        setattr(community, key, changes[key])
    await session.flush()
    if changed:
        await audit.record(
            session,
            actor,
            "community.update",
            target_type="community",
            target_id=community.id,
            detail={"fields": changed},
        )
    return community


# --- buildings and units -----------------------------------------------------------------


async def _unique_insert(session: AsyncSession, row: Any, message: str, code: str) -> None:
    session.add(row)
    await flush_or_conflict(session, Conflict(message, code=code))


async def create_building(
    session: AsyncSession,
    actor: Actor,
    *,
    community_id: uuid.UUID,
    building_no: str,
    name: str = "",
    floors_above: int | None = None,
    floors_below: int | None = None,
) -> Building:
    await get_community(session, actor, community_id=community_id)
    building = Building(
        tenant_id=_tenant(actor),
        community_id=community_id,
        building_no=building_no,
        name=name,
        floors_above=floors_above,
        floors_below=floors_below,
    )
    await _unique_insert(
        session, building, "This building number already exists.", "building_no_taken"
    )
    await audit.record(
        session, actor, "building.create", target_type="building", target_id=building.id
    )
    await outbox.emit(session, actor, events.BUILDING_CREATED, events.building_payload(building))
    return building


async def get_building(session: AsyncSession, actor: Actor, *, building_id: uuid.UUID) -> Building:
    return await _one(
        session,
        readable_buildings(actor).where(Building.id == building_id),
        "Building not found.",
        "building_not_found",
    )


async def list_buildings(
    session: AsyncSession, actor: Actor, *, community_id: uuid.UUID | None, page: PageParams
) -> tuple[list[Building], str | None]:
    statement = readable_buildings(actor).where(Building.archived_at.is_(None))
    if community_id is not None:
        statement = statement.where(Building.community_id == community_id)
    rows = (await session.scalars(paginate_statement(statement, Building.id, page))).all()
    return make_page(list(rows), page)


async def create_unit(
    session: AsyncSession, actor: Actor, *, building_id: uuid.UUID, unit_no: str, name: str = ""
) -> Unit:
    building = await get_building(session, actor, building_id=building_id)
    unit = Unit(
        tenant_id=_tenant(actor),
        community_id=building.community_id,
        building_id=building.id,
        unit_no=unit_no,
        name=name,
    )
    await _unique_insert(session, unit, "This unit number already exists.", "unit_no_taken")
    await audit.record(session, actor, "unit.create", target_type="unit", target_id=unit.id)
    return unit


async def get_unit(session: AsyncSession, actor: Actor, *, unit_id: uuid.UUID) -> Unit:
    return await _one(
        session,
        readable_units(actor).where(Unit.id == unit_id),
        "Unit not found.",
        "unit_not_found",
    )


async def list_units(
    session: AsyncSession, actor: Actor, *, building_id: uuid.UUID, page: PageParams
) -> tuple[list[Unit], str | None]:
    statement = readable_units(actor).where(Unit.building_id == building_id)
    rows = (await session.scalars(paginate_statement(statement, Unit.id, page))).all()
    return make_page(list(rows), page)


# --- houses ------------------------------------------------------------------------------

HOUSE_FIELDS = ("house_no", "floor", "building_area", "inner_area", "house_type", "status")


def _check_areas(building_area: Decimal, inner_area: Decimal | None) -> None:
    errors = []
    if building_area <= 0:
        errors.append(FieldError("building_area", "Must be greater than 0.", "not_positive"))
    if inner_area is not None and (inner_area <= 0 or inner_area > building_area):
        errors.append(
            FieldError(
                "inner_area",
                "Must be positive and not larger than the building area.",
                "invalid_area",
            )
        )
    if errors:
        raise ValidationFailed(errors=errors)


async def create_house(
    session: AsyncSession,
    actor: Actor,
    *,
    building_id: uuid.UUID,
    unit_id: uuid.UUID | None,
    house_no: str,
    floor: int | None,
    building_area: Decimal,
    inner_area: Decimal | None = None,
    house_type: HouseType = HouseType.RESIDENCE,
    status: HouseStatus = HouseStatus.DELIVERED,
) -> House:
    building = await get_building(session, actor, building_id=building_id)
    if unit_id is not None:
        unit = await get_unit(session, actor, unit_id=unit_id)
        if unit.building_id != building.id:
            raise ValidationFailed(
                errors=[FieldError("unit_id", "The unit is not in this building.", "unit_mismatch")]
            )
    _check_areas(building_area, inner_area)
    house = House(
        tenant_id=_tenant(actor),
        community_id=building.community_id,
        building_id=building.id,
        unit_id=unit_id,
        house_no=house_no,
        floor=floor,
        building_area=building_area,
        inner_area=inner_area,
        house_type=house_type,
        status=status,
    )
    await _unique_insert(session, house, "This house number already exists.", "house_no_taken")
    await audit.record(session, actor, "house.create", target_type="house", target_id=house.id)
    await outbox.emit(session, actor, events.HOUSE_CREATED, events.house_payload(house))
    return house


async def get_house(
    session: AsyncSession, actor: Actor, *, house_id: uuid.UUID, include_archived: bool = False
) -> House:
    return await _one(
        session,
        readable_houses(actor, include_archived=include_archived).where(House.id == house_id),
        "House not found.",
        "house_not_found",
    )


@dataclass(frozen=True)
class HouseFilter:
    community_id: uuid.UUID | None = None
    building_id: uuid.UUID | None = None
    unit_id: uuid.UUID | None = None
    status: HouseStatus | None = None
    house_no: str | None = None
    include_archived: bool = False


async def list_houses(
    session: AsyncSession, actor: Actor, *, filters: HouseFilter, page: PageParams
) -> tuple[list[House], str | None]:
    statement = readable_houses(actor, include_archived=filters.include_archived)
    if filters.community_id is not None:
        statement = statement.where(House.community_id == filters.community_id)
    if filters.building_id is not None:
        statement = statement.where(House.building_id == filters.building_id)
    if filters.unit_id is not None:
        statement = statement.where(House.unit_id == filters.unit_id)
    if filters.status is not None:
        statement = statement.where(House.status == filters.status)
    if filters.house_no:
        statement = statement.where(House.house_no == filters.house_no)
    rows = (await session.scalars(paginate_statement(statement, House.id, page))).all()
    return make_page(list(rows), page)


async def update_house(
    session: AsyncSession, actor: Actor, *, house_id: uuid.UUID, changes: dict[str, Any]
) -> House:
    house = await get_house(session, actor, house_id=house_id)
    changed = sorted(k for k, v in changes.items() if k in HOUSE_FIELDS and getattr(house, k) != v)
    for key in changed:
        setattr(house, key, changes[key])
    _check_areas(house.building_area, house.inner_area)
    await flush_or_conflict(
        session, Conflict("This house number already exists.", code="house_no_taken")
    )
    if changed:
        await audit.record(
            session,
            actor,
            "house.update",
            target_type="house",
            target_id=house.id,
            detail={"fields": changed},
        )
    return house


async def archive_house(session: AsyncSession, actor: Actor, *, house_id: uuid.UUID) -> House:
    """Hide a house from lists and new work while keeping its history (bills, residents)."""
    house = await get_house(session, actor, house_id=house_id)
    house.archived_at = dt.datetime.now(dt.UTC)
    await session.flush()
    await audit.record(session, actor, "house.archive", target_type="house", target_id=house.id)
    await outbox.emit(session, actor, events.HOUSE_ARCHIVED, {"house_id": str(house.id)})
    return house


# Other domains say why a thing of the registry cannot be deleted. Each check returns a
# reason code ("residents", "bills", ...) or None. A domain registers its check with
# ``@usage_check(subject, name)`` (``@house_usage_check(name)`` for houses) in its service
# module and lists that module here, so the check is loaded even when nothing else imported
# the module. Subjects: house, parking_area, parking_space, facility, vehicle.
UsageCheck = Callable[[AsyncSession, uuid.UUID, uuid.UUID], Awaitable[str | None]]
HouseUsageCheck = UsageCheck
HOUSE_USAGE_MODULES: list[str] = [
    "linli.residents.service",
    "linli.billing.service",
    "linli.workorders.service",
    "linli.access.service",
]
_checks: dict[str, dict[str, UsageCheck]] = {}
_usage_checks = _checks.setdefault("house", {})


def usage_check(subject: str, name: str) -> Callable[[UsageCheck], UsageCheck]:
    def register(check: UsageCheck) -> UsageCheck:
        _checks.setdefault(subject, {})[name] = check
        return check

    return register


def house_usage_check(name: str) -> Callable[[UsageCheck], UsageCheck]:
    return usage_check("house", name)


def _load_usage_checks(subject: str = "house") -> dict[str, UsageCheck]:
    for module in HOUSE_USAGE_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name is None or not (module == exc.name or module.startswith(exc.name + ".")):
                raise  # a real import error inside the module, not a domain not built yet
    return _checks.get(subject, {})


async def usage_of(
    session: AsyncSession, actor: Actor, *, subject: str, subject_id: uuid.UUID
) -> list[str]:
    """Why ``subject_id`` cannot be deleted, by every domain that registered a check."""
    tenant_id = _tenant(actor)
    reasons = set()
    for check in list(_load_usage_checks(subject).values()):
        reason = await check(session, tenant_id, subject_id)
        if reason:
            reasons.add(reason)
    return sorted(reasons)


def in_use(subject: str, field_name: str, reasons: Sequence[str]) -> Conflict:
    """The refusal of a delete: what still points at the thing, and archive offered instead."""
    return Conflict(
        "This record has {uses}; archive it instead of deleting it.",
        code=f"{subject}_in_use",
        errors=[FieldError(field_name, f"in use: {r}", f"{subject}_in_use") for r in reasons],
        uses=", ".join(reasons),
    )


async def delete_checked(
    session: AsyncSession, actor: Actor, row: Any, *, subject: str, reasons: Sequence[str]
) -> None:
    """Delete ``row`` unless something uses it; a foreign key nobody checked also refuses."""
    field_name = f"{subject}_id"
    if reasons:
        raise in_use(subject, field_name, reasons)
    row_id = row.id
    try:
        async with session.begin_nested():
            await session.delete(row)
            await session.flush()
    except IntegrityError as exc:
        raise in_use(subject, field_name, ["linked records"]) from exc
    await audit.record(session, actor, f"{subject}.delete", target_type=subject, target_id=row_id)


async def house_usage(session: AsyncSession, actor: Actor, *, house_id: uuid.UUID) -> list[str]:
    return await usage_of(session, actor, subject="house", subject_id=house_id)


async def delete_house(session: AsyncSession, actor: Actor, *, house_id: uuid.UUID) -> None:
    """Delete a house entered by mistake. One with residents or bills is refused: archive it."""
    house = await get_house(session, actor, house_id=house_id, include_archived=True)
    reasons = await house_usage(session, actor, house_id=house.id)
    if reasons:
        raise Conflict(
            "This house has {uses}; archive it instead of deleting it.",
            code="house_in_use",
            errors=[FieldError("house_id", f"in use: {r}", "house_in_use") for r in reasons],
            uses=", ".join(reasons),
        )
    try:
        async with session.begin_nested():
            await session.delete(house)
            await session.flush()
    except IntegrityError as exc:
        # A table whose domain registered no check still points at the house.
        raise Conflict(
            "This house has {uses}; archive it instead of deleting it.",
            code="house_in_use",
            uses="linked records",
        ) from exc
    await audit.record(session, actor, "house.delete", target_type="house", target_id=house_id)


# --- house references ("3-2-1201", "3栋2单元1201室") ----------------------------------------

_REF_DASHED = re.compile(r"^(?P<b>[0-9A-Za-z]+)-(?:(?P<u>[0-9A-Za-z]+)-)?(?P<h>[0-9A-Za-z]+)$")
_REF_CHINESE = re.compile(
    r"^(?P<b>[0-9A-Za-z]+)(?:栋|幢|号楼|座)(?:(?P<u>[0-9A-Za-z]+)单元)?(?P<h>[0-9A-Za-z]+)(?:室|号)?$"
)


@dataclass(frozen=True)
class HouseRef:
    building_no: str
    unit_no: str | None
    house_no: str


def parse_house_ref(raw: str) -> HouseRef | None:
    """Read the ways people write a house: ``3-2-1201``, ``3栋2单元1201``, ``3号楼1201室``.

    Full-width digits and spaces are normalized first.
    """
    value = unicodedata.normalize("NFKC", raw).replace(" ", "").strip()
    match = _REF_DASHED.match(value) or _REF_CHINESE.match(value)
    if not match:
        return None
    return HouseRef(match["b"], match["u"], match["h"])


async def find_house_ids_by_ref(
    session: AsyncSession, actor: Actor, *, ref: HouseRef, community_id: uuid.UUID | None = None
) -> list[uuid.UUID]:
    statement = (
        select(House.id)
        .join(
            Building, (Building.tenant_id == House.tenant_id) & (Building.id == House.building_id)
        )
        .where(
            community_scope(actor, House.community_id),
            House.archived_at.is_(None),
            Building.building_no == ref.building_no,
            House.house_no == ref.house_no,
        )
    )
    if ref.unit_no is not None:
        statement = statement.join(
            Unit, (Unit.tenant_id == House.tenant_id) & (Unit.id == House.unit_id)
        ).where(Unit.unit_no == ref.unit_no)
    if community_id is not None:
        statement = statement.where(House.community_id == community_id)
    return list((await session.scalars(statement.limit(50))).all())


# --- set-based upserts (bulk import) -----------------------------------------------------


async def _ensure_buildings(
    session: AsyncSession, tenant_id: uuid.UUID, keys: set[tuple[uuid.UUID, str]]
) -> dict[tuple[uuid.UUID, str], uuid.UUID]:
    if not keys:
        return {}
    communities = [k[0] for k in keys]
    numbers = [k[1] for k in keys]
    await session.execute(
        text(
            """
            INSERT INTO buildings (tenant_id, id, community_id, building_no, name)
            SELECT :tenant, i, c, n, '' FROM unnest(CAST(:ids AS uuid[]), CAST(:cids AS uuid[]),
                                               CAST(:nos AS text[])) AS t(i, c, n)
            ON CONFLICT (tenant_id, community_id, building_no) DO NOTHING
            """
        ),
        {"tenant": tenant_id, "ids": [new_id() for _ in keys], "cids": communities, "nos": numbers},
    )
    rows = await session.execute(
        text(
            """
            SELECT b.community_id, b.building_no, b.id FROM buildings b
            JOIN unnest(CAST(:cids AS uuid[]), CAST(:nos AS text[])) AS t(c, n)
              ON b.community_id = t.c AND b.building_no = t.n
            WHERE b.tenant_id = :tenant
            """
        ),
        {"tenant": tenant_id, "cids": communities, "nos": numbers},
    )
    return {(c, n): i for c, n, i in rows.all()}


async def _ensure_units(
    session: AsyncSession, tenant_id: uuid.UUID, keys: set[tuple[uuid.UUID, uuid.UUID, str]]
) -> dict[tuple[uuid.UUID, str], uuid.UUID]:
    """keys: (community_id, building_id, unit_no) → {(building_id, unit_no): unit_id}."""
    if not keys:
        return {}
    communities = [k[0] for k in keys]
    buildings = [k[1] for k in keys]
    numbers = [k[2] for k in keys]
    await session.execute(
        text(
            """
            INSERT INTO units (tenant_id, id, community_id, building_id, unit_no, name)
            SELECT :tenant, i, c, b, n, '' FROM unnest(CAST(:ids AS uuid[]), CAST(:cids AS uuid[]),
                                                  CAST(:bids AS uuid[]),
                                                      CAST(:nos AS text[])) AS t(i, c, b, n)
            ON CONFLICT (tenant_id, building_id, unit_no) DO NOTHING
            """
        ),
        {
            "tenant": tenant_id,
            "ids": [new_id() for _ in keys],
            "cids": communities,
            "bids": buildings,
            "nos": numbers,
        },
    )
    rows = await session.execute(
        text(
            """
            SELECT u.building_id, u.unit_no, u.id FROM units u
            JOIN unnest(CAST(:bids AS uuid[]), CAST(:nos AS text[])) AS t(b, n)
              ON u.building_id = t.b AND u.unit_no = t.n
            WHERE u.tenant_id = :tenant
            """
        ),
        {"tenant": tenant_id, "bids": buildings, "nos": numbers},
    )
    return {(b, n): i for b, n, i in rows.all()}


@dataclass
class ResolvedHouses:
    """House ids by (community_code, building_no, unit_no, house_no); missing keys absent."""

    ids: dict[tuple[str, str, str | None, str], uuid.UUID] = field(default_factory=dict)
    community_of: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)


async def resolve_houses(
    session: AsyncSession, actor: Actor, *, keys: Iterable[tuple[str, str, str | None, str]]
) -> ResolvedHouses:
    """Look up many houses by natural key (for resident/vehicle imports), in three statements.

    Buildings, then units, are resolved first (a few hundred rows however many houses),
    so the house lookup is an equality on the exact unique key ``(tenant_id, building_id,
    unit_id, house_no)`` for every row. A single join through buildings and units on
    ``unit_id IS NOT DISTINCT FROM`` cannot use that index, and on fresh tables (no
    statistics yet after a bulk load) the planner then walked every house with the same
    number: 100 s for 20,000 keys instead of well under one.
    """
    wanted = list(set(keys))
    resolved = ResolvedHouses()
    if not wanted:
        return resolved
    tenant_id = _tenant(actor)
    codes = await community_ids_by_code(session, actor, (k[0] for k in wanted))
    wanted = [k for k in wanted if k[0] in codes]
    if not wanted:
        return resolved
    code_of = {v: k for k, v in codes.items()}

    building_keys = sorted({(codes[k[0]], k[1]) for k in wanted})
    buildings = {
        (c, n): (i, n)
        for c, n, i in (
            await session.execute(
                text(
                    """
                    SELECT b.community_id, b.building_no, b.id
                    FROM unnest(CAST(:cids AS uuid[]), CAST(:nos AS text[])) AS t(c, n)
                    JOIN buildings b ON b.tenant_id = :tenant AND b.community_id = t.c
                        AND b.building_no = t.n
                    """
                ),
                {
                    "tenant": tenant_id,
                    "cids": [c for c, _ in building_keys],
                    "nos": [n for _, n in building_keys],
                },
            )
        ).all()
    }
    unit_keys = sorted(
        {
            (buildings[(codes[k[0]], k[1])][0], k[2])
            for k in wanted
            if k[2] is not None and (codes[k[0]], k[1]) in buildings
        },
        key=str,
    )
    units: dict[tuple[uuid.UUID, str], uuid.UUID] = {}
    if unit_keys:
        rows = await session.execute(
            text(
                """
                SELECT u.building_id, u.unit_no, u.id
                FROM unnest(CAST(:bids AS uuid[]), CAST(:nos AS text[])) AS t(b, n)
                JOIN units u ON u.tenant_id = :tenant AND u.building_id = t.b AND u.unit_no = t.n
                """
            ),
            {
                "tenant": tenant_id,
                "bids": [b for b, _ in unit_keys],
                "nos": [n for _, n in unit_keys],
            },
        )
        units = {(b, n): i for b, n, i in rows.all()}

    # (building_id, unit_id or None, house_no) -> the key as asked
    asked: dict[tuple[uuid.UUID, uuid.UUID | None, str], tuple[str, str, str | None, str]] = {}
    for key in wanted:
        building = buildings.get((codes[key[0]], key[1]))
        if building is None:
            continue
        unit_id = None
        if key[2] is not None:
            unit_id = units.get((building[0], key[2]))
            if unit_id is None:
                continue
        asked[(building[0], unit_id, key[3])] = key
    with_unit = [k for k in asked if k[1] is not None]
    without_unit = [k for k in asked if k[1] is None]
    rows = await session.execute(
        text(
            """
            SELECT h.id, h.community_id, h.building_id, h.unit_id, h.house_no
            FROM unnest(CAST(:bids AS uuid[]), CAST(:uids AS uuid[]),
                        CAST(:hnos AS text[])) AS t(b, u, h)
            JOIN houses h ON h.tenant_id = :tenant AND h.building_id = t.b
                AND h.unit_id = t.u AND h.house_no = t.h
            WHERE h.archived_at IS NULL
            UNION ALL
            SELECT h.id, h.community_id, h.building_id, h.unit_id, h.house_no
            FROM unnest(CAST(:bids0 AS uuid[]), CAST(:hnos0 AS text[])) AS t(b, h)
            JOIN houses h ON h.tenant_id = :tenant AND h.building_id = t.b
                AND h.unit_id IS NULL AND h.house_no = t.h
            WHERE h.archived_at IS NULL
            """
        ),
        {
            "tenant": tenant_id,
            "bids": [k[0] for k in with_unit],
            "uids": [k[1] for k in with_unit],
            "hnos": [k[2] for k in with_unit],
            "bids0": [k[0] for k in without_unit],
            "hnos0": [k[2] for k in without_unit],
        },
    )
    for house_id, community_id, building_id, unit_id, house_no in rows.all():
        asked_key = asked.get((building_id, unit_id, house_no))
        if asked_key is None or code_of.get(community_id) != asked_key[0]:
            continue
        resolved.ids[asked_key] = house_id
        resolved.community_of[house_id] = community_id
    return resolved


def _house_row_errors(index: int, row: HouseRow) -> list[FieldError]:
    errors = []
    if row.house_type not in HouseType._value2member_map_:
        errors.append(
            FieldError(f"rows[{index}].house_type", "Unknown house type.", "invalid_choice")
        )
    if row.status not in HouseStatus._value2member_map_:
        errors.append(
            FieldError(f"rows[{index}].status", "Unknown house status.", "invalid_choice")
        )
    if row.building_area is None or row.building_area <= 0:
        errors.append(
            FieldError(f"rows[{index}].building_area", "Must be greater than 0.", "not_positive")
        )
    elif row.inner_area is not None and (row.inner_area <= 0 or row.inner_area > row.building_area):
        errors.append(
            FieldError(
                f"rows[{index}].inner_area",
                "Must be positive and not larger than the building area.",
                "invalid_area",
            )
        )
    if not row.building_no or not row.house_no:
        errors.append(
            FieldError(
                f"rows[{index}].house_no", "Building and house numbers are required.", "required"
            )
        )
    return errors


async def upsert_houses(
    session: AsyncSession, actor: Actor, *, rows: list[HouseRow]
) -> UpsertResult:
    """Create or update houses (and their buildings and units) by natural key, set-based.

    Re-running the same rows changes nothing: ``unchanged == len(rows)``. Within
    one batch a repeated key keeps its last row; the earlier ones count as unchanged.
    """
    tenant_id = _tenant(actor)
    if not rows:
        return UpsertResult(0, 0, 0)
    codes = await community_ids_by_code(session, actor, (r.community_code for r in rows))
    require_codes(rows, codes)
    errors = [e for i, r in enumerate(rows) for e in _house_row_errors(i, r)]
    if errors:
        raise ValidationFailed(errors=errors[:200])

    buildings = await _ensure_buildings(
        session, tenant_id, {(codes[r.community_code], r.building_no) for r in rows}
    )
    units = await _ensure_units(
        session,
        tenant_id,
        {
            (
                codes[r.community_code],
                buildings[(codes[r.community_code], r.building_no)],
                r.unit_no,
            )
            for r in rows
            if r.unit_no
        },
    )
    latest: dict[tuple[uuid.UUID, uuid.UUID | None, str], HouseRow] = {}
    for r in rows:
        building_id = buildings[(codes[r.community_code], r.building_no)]
        unit_id = units[(building_id, r.unit_no)] if r.unit_no else None
        latest[(building_id, unit_id, r.house_no)] = r
    keys = list(latest)
    values = list(latest.values())
    result = await session.execute(
        text(
            """
            INSERT INTO houses AS h (tenant_id, id, community_id, building_id, unit_id,
                house_no, floor,
                                     building_area, inner_area, house_type, status)
            SELECT :tenant, i, c, b, u, n, f, a, ia, CAST(ht AS house_type),
                CAST(st AS house_status)
            FROM unnest(CAST(:ids AS uuid[]), CAST(:cids AS uuid[]), CAST(:bids AS uuid[]),
                        CAST(:uids AS uuid[]), CAST(:nos AS text[]), CAST(:floors AS smallint[]),
                        CAST(:areas AS numeric[]), CAST(:inner AS numeric[]),
                            CAST(:types AS text[]),
                        CAST(:statuses AS text[])) AS t(i, c, b, u, n, f, a, ia, ht, st)
            ON CONFLICT ON CONSTRAINT uq_houses_tenant_id_building_id_unit_id_house_no DO UPDATE SET
                floor = EXCLUDED.floor, building_area = EXCLUDED.building_area,
                inner_area = EXCLUDED.inner_area, house_type = EXCLUDED.house_type,
                status = EXCLUDED.status, archived_at = NULL
            WHERE (h.floor, h.building_area, h.inner_area, h.house_type, h.status, h.archived_at)
                  IS DISTINCT FROM
                  (EXCLUDED.floor, EXCLUDED.building_area, EXCLUDED.inner_area, EXCLUDED.house_type,
                   EXCLUDED.status, NULL)
            RETURNING (xmax = 0) AS inserted
            """
        ),
        {
            "tenant": tenant_id,
            "ids": [new_id() for _ in keys],
            "cids": [codes[v.community_code] for v in values],
            "bids": [k[0] for k in keys],
            "uids": [k[1] for k in keys],
            "nos": [k[2] for k in keys],
            "floors": [v.floor for v in values],
            "areas": [v.building_area for v in values],
            "inner": [v.inner_area for v in values],
            "types": [v.house_type for v in values],
            "statuses": [v.status for v in values],
        },
    )
    flags = [bool(f) for (f,) in result.all()]
    return await record_bulk_upsert(
        session,
        actor,
        target="house",
        event=events.HOUSES_IMPORTED,
        inserted=flags,
        total=len(rows),
    )


async def record_bulk_upsert(
    session: AsyncSession,
    actor: Actor,
    *,
    target: str,
    event: str,
    inserted: list[bool],
    total: int,
) -> UpsertResult:
    """Count a set-based upsert (one flag per written row: inserted, else updated), then
    audit and announce it once for the batch, and only when something changed."""
    created = sum(inserted)
    updated = len(inserted) - created
    outcome = UpsertResult(created=created, updated=updated, unchanged=total - created - updated)
    if created or updated:
        detail = {"created": created, "updated": updated, "unchanged": outcome.unchanged}
        await audit.record(
            session, actor, f"{target}.upsert", target_type=target, target_id="bulk", detail=detail
        )
        await outbox.emit(session, actor, event, detail)
    return outcome


# --- parking and facilities --------------------------------------------------------------


async def create_parking_area(
    session: AsyncSession,
    actor: Actor,
    *,
    community_id: uuid.UUID,
    name: str,
    underground: bool = False,
) -> ParkingArea:
    await get_community(session, actor, community_id=community_id)
    area = ParkingArea(
        tenant_id=_tenant(actor), community_id=community_id, name=name, underground=underground
    )
    await _unique_insert(
        session, area, "A parking area with this name already exists.", "parking_area_taken"
    )
    await audit.record(
        session, actor, "parking_area.create", target_type="parking_area", target_id=area.id
    )
    return area


async def list_parking_areas(
    session: AsyncSession,
    actor: Actor,
    *,
    community_id: uuid.UUID | None,
    page: PageParams,
    include_archived: bool = False,
) -> tuple[list[ParkingArea], str | None]:
    statement = select(ParkingArea).where(community_scope(actor, ParkingArea.community_id))
    if not include_archived:
        statement = statement.where(ParkingArea.archived_at.is_(None))
    if community_id is not None:
        statement = statement.where(ParkingArea.community_id == community_id)
    rows = (await session.scalars(paginate_statement(statement, ParkingArea.id, page))).all()
    return make_page(list(rows), page)


async def create_parking_space(
    session: AsyncSession,
    actor: Actor,
    *,
    area_id: uuid.UUID,
    space_no: str,
    usage: ParkingUsage,
    house_id: uuid.UUID | None = None,
    area_m2: Decimal | None = None,
) -> ParkingSpace:
    area: ParkingArea = await _one(
        session,
        select(ParkingArea).where(
            ParkingArea.id == area_id, community_scope(actor, ParkingArea.community_id)
        ),
        "Parking area not found.",
        "parking_area_not_found",
    )
    if house_id is not None:
        house = await get_house(session, actor, house_id=house_id)
        if house.community_id != area.community_id:
            raise ValidationFailed(
                errors=[
                    FieldError(
                        "house_id", "The house is in another community.", "community_mismatch"
                    )
                ]
            )
    space = ParkingSpace(
        tenant_id=_tenant(actor),
        community_id=area.community_id,
        area_id=area.id,
        space_no=space_no,
        usage=usage,
        house_id=house_id,
        area_m2=area_m2,
    )
    await _unique_insert(
        session, space, "This parking space number already exists.", "parking_space_taken"
    )
    await audit.record(
        session, actor, "parking_space.create", target_type="parking_space", target_id=space.id
    )
    return space


async def list_parking_spaces(
    session: AsyncSession,
    actor: Actor,
    *,
    community_id: uuid.UUID | None,
    area_id: uuid.UUID | None,
    page: PageParams,
    include_archived: bool = False,
) -> tuple[list[ParkingSpace], str | None]:
    statement = select(ParkingSpace).where(community_scope(actor, ParkingSpace.community_id))
    if not include_archived:
        statement = statement.where(ParkingSpace.archived_at.is_(None))
    if community_id is not None:
        statement = statement.where(ParkingSpace.community_id == community_id)
    if area_id is not None:
        statement = statement.where(ParkingSpace.area_id == area_id)
    rows = (await session.scalars(paginate_statement(statement, ParkingSpace.id, page))).all()
    return make_page(list(rows), page)


async def create_facility(
    session: AsyncSession,
    actor: Actor,
    *,
    community_id: uuid.UUID,
    name: str,
    kind: str = "other",
    location: str = "",
    building_id: uuid.UUID | None = None,
) -> Facility:
    await get_community(session, actor, community_id=community_id)
    if building_id is not None:
        building = await get_building(session, actor, building_id=building_id)
        if building.community_id != community_id:
            raise ValidationFailed(
                errors=[
                    FieldError(
                        "building_id", "The building is in another community.", "community_mismatch"
                    )
                ]
            )
    facility = Facility(
        tenant_id=_tenant(actor),
        community_id=community_id,
        name=name,
        kind=kind,
        location=location,
        building_id=building_id,
    )
    await _unique_insert(
        session, facility, "A facility with this name already exists.", "facility_taken"
    )
    await audit.record(
        session, actor, "facility.create", target_type="facility", target_id=facility.id
    )
    return facility


async def list_facilities(
    session: AsyncSession,
    actor: Actor,
    *,
    community_id: uuid.UUID | None,
    page: PageParams,
    include_archived: bool = False,
) -> tuple[list[Facility], str | None]:
    statement = select(Facility).where(community_scope(actor, Facility.community_id))
    if not include_archived:
        statement = statement.where(Facility.archived_at.is_(None))
    if community_id is not None:
        statement = statement.where(Facility.community_id == community_id)
    rows = (await session.scalars(paginate_statement(statement, Facility.id, page))).all()
    return make_page(list(rows), page)


# Parking areas and spaces as the console shows them (车位管理): numbers typed as ranges,
# spaces bound to a house, counts per area.

SPACE_NO = re.compile(r"^[0-9A-Za-z][0-9A-Za-z-]{0,19}$")
SPACE_RANGE_MAX = 2000  # spaces one form may create; a garage rarely has more
_RANGE_SEPARATOR = re.compile(r"\.\.|~|—|至")
_TRAILING_DIGITS = re.compile(r"^(?P<prefix>.*?)(?P<digits>\d+)$")


def expand_space_numbers(raw: str) -> list[str]:
    """Read what people type for parking space numbers into the numbers themselves.

    ``B1-001`` is one space; ``B1-001..B1-120`` (or ``B1-001~120``, ``B1-001至B1-120``)
    is a range keeping the zero padding of its first number; several parts may be
    separated by commas. Full-width characters are normalized first.
    """
    value = unicodedata.normalize("NFKC", raw).replace(" ", "").replace("、", ",")
    numbers: list[str] = []
    for part in (p for p in value.split(",") if p):
        ends = _RANGE_SEPARATOR.split(part)
        if len(ends) == 1:
            numbers.append(part)
        elif len(ends) == 2:
            numbers.extend(_expand_range(ends[0], ends[1]))
        else:
            raise _space_numbers_invalid("Write a range as B1-001..B1-120.", "invalid_range")
        if len(numbers) > SPACE_RANGE_MAX:
            raise _space_numbers_invalid(
                "At most {limit} spaces at a time.", "too_many_spaces", limit=SPACE_RANGE_MAX
            )
    if not numbers:
        raise _space_numbers_invalid("Give a space number or a range.", "required")
    bad = [n for n in numbers if not SPACE_NO.match(n)]
    if bad:
        raise _space_numbers_invalid(
            "Space numbers use letters, digits and dashes, at most 20 characters.", "invalid_number"
        )
    return list(dict.fromkeys(numbers))


def _expand_range(first: str, last: str) -> list[str]:
    start, end = _TRAILING_DIGITS.match(first), _TRAILING_DIGITS.match(last)
    if start is None or end is None:
        raise _space_numbers_invalid("A range must end in digits: B1-001..B1-120.", "invalid_range")
    prefix = start["prefix"]
    if end["prefix"] not in ("", prefix):
        raise _space_numbers_invalid(
            "Both ends of a range need the same prefix.", "range_prefix_mismatch"
        )
    low, high = int(start["digits"]), int(end["digits"])
    if high < low:
        raise _space_numbers_invalid("The range ends before it starts.", "invalid_range")
    if high - low + 1 > SPACE_RANGE_MAX:
        raise _space_numbers_invalid(
            "At most {limit} spaces at a time.", "too_many_spaces", limit=SPACE_RANGE_MAX
        )
    width = len(start["digits"])
    return [f"{prefix}{n:0{width}d}" for n in range(low, high + 1)]


def _space_numbers_invalid(message: str, code: str, **params: Any) -> ValidationFailed:
    # The field message is shown as is (no parameters): a limit goes in the headline only.
    field_message = "Too many spaces at once: split the range." if params else message
    return ValidationFailed(
        message, code=code, errors=[FieldError("space_no", field_message, code)], **params
    )


async def get_parking_area(
    session: AsyncSession, actor: Actor, *, area_id: uuid.UUID
) -> ParkingArea:
    return await _one(
        session,
        select(ParkingArea).where(
            ParkingArea.id == area_id, community_scope(actor, ParkingArea.community_id)
        ),
        "Parking area not found.",
        "parking_area_not_found",
    )


async def get_parking_space(
    session: AsyncSession, actor: Actor, *, space_id: uuid.UUID
) -> ParkingSpace:
    return await _one(
        session,
        select(ParkingSpace).where(
            ParkingSpace.id == space_id, community_scope(actor, ParkingSpace.community_id)
        ),
        "Parking space not found.",
        "parking_space_not_found",
    )


@dataclass(frozen=True)
class SpacesCreated:
    created: int
    existing: int  # numbers the area already had, left as they were


async def create_parking_spaces(
    session: AsyncSession,
    actor: Actor,
    *,
    area_id: uuid.UUID,
    space_nos: Sequence[str],
    usage: ParkingUsage = ParkingUsage.TEMPORARY,
) -> SpacesCreated:
    """Add many spaces to an area in one statement; numbers it already has stay untouched."""
    area = await get_parking_area(session, actor, area_id=area_id)
    numbers = list(dict.fromkeys(space_nos))
    if not numbers:
        return SpacesCreated(0, 0)
    bad = [n for n in numbers if not SPACE_NO.match(n)]
    if bad:
        raise _space_numbers_invalid(
            "Space numbers use letters, digits and dashes, at most 20 characters.", "invalid_number"
        )
    result = await session.execute(
        text(
            """
            INSERT INTO parking_spaces (tenant_id, id, community_id, area_id, space_no, usage)
            SELECT :tenant, i, :community, :area, n, CAST(:usage AS parking_usage)
            FROM unnest(CAST(:ids AS uuid[]), CAST(:nos AS text[])) AS t(i, n)
            ON CONFLICT (tenant_id, area_id, space_no) DO NOTHING
            RETURNING id
            """
        ),
        {
            "tenant": _tenant(actor),
            "community": area.community_id,
            "area": area.id,
            "usage": usage.value,
            "ids": [new_id() for _ in numbers],
            "nos": numbers,
        },
    )
    created = len(result.all())
    if created:
        await audit.record(
            session,
            actor,
            "parking_space.create",
            target_type="parking_area",
            target_id=area.id,
            detail={"created": created, "usage": usage.value},
        )
    return SpacesCreated(created=created, existing=len(numbers) - created)


SPACE_FIELDS = (
    "space_no",
    "usage",
    "house_id",
    "resident_id",
    "lease_start",
    "lease_end",
    "area_m2",
)


def _space_holder_errors(
    usage: ParkingUsage,
    house_id: uuid.UUID | None,
    resident_id: uuid.UUID | None,
    lease_start: dt.date | None,
    lease_end: dt.date | None,
    prefix: str = "",
) -> list[FieldError]:
    """Only owned or rented spaces have a holder; only rented ones a lease."""
    errors = []
    if usage is ParkingUsage.TEMPORARY and (house_id or resident_id):
        errors.append(
            FieldError(
                f"{prefix}usage",
                "Only owned or rented spaces belong to a house.",
                "temporary_space_bound",
            )
        )
    if usage is not ParkingUsage.RENTED and (lease_start or lease_end):
        errors.append(
            FieldError(
                f"{prefix}lease_start", "Only rented spaces have lease dates.", "lease_not_allowed"
            )
        )
    if lease_start and lease_end and lease_end < lease_start:
        errors.append(
            FieldError(f"{prefix}lease_end", "The lease ends before it starts.", "invalid_range")
        )
    return errors


async def update_parking_space(
    session: AsyncSession, actor: Actor, *, space_id: uuid.UUID, changes: dict[str, Any]
) -> ParkingSpace:
    """Change a space (编辑车位): its number, use, holder (house and/or resident), lease, area.

    Fields absent from ``changes`` stay as they are. Releasing a space (no house and no
    resident any more) also ends its lease dates, unless the change gives them.
    """
    space = await get_parking_space(session, actor, space_id=space_id)
    wanted = {k: v for k, v in changes.items() if k in SPACE_FIELDS}
    if "space_no" in wanted and not SPACE_NO.match(str(wanted["space_no"] or "")):
        raise _space_numbers_invalid(
            "Space numbers use letters, digits and dashes, at most 20 characters.", "invalid_number"
        )
    if "usage" in wanted:
        wanted["usage"] = ParkingUsage(wanted["usage"] or space.usage)
    after = {name: wanted.get(name, getattr(space, name)) for name in SPACE_FIELDS}
    held_before = space.house_id is not None or space.resident_id is not None
    held_after = after["house_id"] is not None or after["resident_id"] is not None
    if held_before and not held_after and not {"lease_start", "lease_end"} & set(wanted):
        after["lease_start"] = after["lease_end"] = None
    if after["house_id"] is not None and after["house_id"] != space.house_id:
        house = await get_house(session, actor, house_id=after["house_id"])
        if house.community_id != space.community_id:
            raise ValidationFailed(
                errors=[
                    FieldError(
                        "house_id", "The house is in another community.", "community_mismatch"
                    )
                ]
            )
    if after["resident_id"] is not None and after["resident_id"] != space.resident_id:
        from linli.residents import service as residents  # residents build on the estate

        await residents.get_resident(session, actor, resident_id=after["resident_id"])
    if after["area_m2"] is not None and Decimal(after["area_m2"]) <= 0:
        raise ValidationFailed(
            errors=[FieldError("area_m2", "Must be greater than 0.", "not_positive")]
        )
    errors = _space_holder_errors(
        after["usage"],
        after["house_id"],
        after["resident_id"],
        after["lease_start"],
        after["lease_end"],
    )
    if errors:
        raise ValidationFailed(errors=errors)
    changed = sorted(k for k, v in after.items() if getattr(space, k) != v)
    for key in changed:
        setattr(space, key, after[key])
    await flush_or_conflict(
        session,
        Conflict("This parking space number already exists.", code="parking_space_taken"),
    )
    if changed:
        held = space.house_id is not None or space.resident_id is not None
        action = "parking_space.update"
        if set(changed) & {"house_id", "resident_id"}:
            action = "parking_space.bind" if held else "parking_space.release"
        await audit.record(
            session,
            actor,
            action,
            target_type="parking_space",
            target_id=space.id,
            detail={
                "fields": changed,
                "house_id": str(space.house_id) if space.house_id else None,
            },
        )
    return space


async def bind_parking_space(
    session: AsyncSession,
    actor: Actor,
    *,
    space_id: uuid.UUID,
    house_id: uuid.UUID | None,
    usage: ParkingUsage | None = None,
) -> ParkingSpace:
    """Bind a space to a house of its community (or release it), optionally changing its use.

    Only owned (产权) and rented (租赁) spaces belong to a house; a temporary one is
    shared by visitors and monthly parkers.
    """
    changes: dict[str, Any] = {"house_id": house_id}
    if usage is not None:
        changes["usage"] = usage
    return await update_parking_space(session, actor, space_id=space_id, changes=changes)


def _today() -> dt.date:
    return dt.date.today()


@usage_check("parking_space", "holder")
async def _space_is_held(
    session: AsyncSession, tenant_id: uuid.UUID, space_id: uuid.UUID
) -> str | None:
    """An owned or rented space with a holder, or a lease still running, keeps its history."""
    row = (
        await session.execute(
            select(ParkingSpace.house_id, ParkingSpace.resident_id, ParkingSpace.lease_end).where(
                ParkingSpace.tenant_id == tenant_id, ParkingSpace.id == space_id
            )
        )
    ).first()
    if row is None:
        return None
    house_id, resident_id, lease_end = row
    if lease_end is not None and lease_end >= _today():
        return "active_lease"
    if house_id is not None or resident_id is not None:
        return "holder"
    return None


@usage_check("parking_area", "spaces")
async def _area_has_held_spaces(
    session: AsyncSession, tenant_id: uuid.UUID, area_id: uuid.UUID
) -> str | None:
    held = await session.scalar(
        select(ParkingSpace.id)
        .where(
            ParkingSpace.tenant_id == tenant_id,
            ParkingSpace.area_id == area_id,
            (ParkingSpace.house_id.is_not(None)) | (ParkingSpace.resident_id.is_not(None)),
        )
        .limit(1)
    )
    return "held_spaces" if held is not None else None


@usage_check("house", "parking")
async def _house_has_spaces(
    session: AsyncSession, tenant_id: uuid.UUID, house_id: uuid.UUID
) -> str | None:
    held = await session.scalar(
        select(ParkingSpace.id)
        .where(ParkingSpace.tenant_id == tenant_id, ParkingSpace.house_id == house_id)
        .limit(1)
    )
    return "parking_spaces" if held is not None else None


async def archive_parking_space(
    session: AsyncSession, actor: Actor, *, space_id: uuid.UUID
) -> ParkingSpace:
    """Hide a space from lists, counts and billing while keeping its history (归档)."""
    space = await get_parking_space(session, actor, space_id=space_id)
    if space.archived_at is None:
        space.archived_at = dt.datetime.now(dt.UTC)
        await session.flush()
        await audit.record(
            session, actor, "parking_space.archive", target_type="parking_space", target_id=space.id
        )
    return space


async def restore_parking_space(
    session: AsyncSession, actor: Actor, *, space_id: uuid.UUID
) -> ParkingSpace:
    space = await get_parking_space(session, actor, space_id=space_id)
    if space.archived_at is not None:
        space.archived_at = None
        await session.flush()
        await audit.record(
            session, actor, "parking_space.restore", target_type="parking_space", target_id=space.id
        )
    return space


async def delete_parking_space(session: AsyncSession, actor: Actor, *, space_id: uuid.UUID) -> None:
    """Delete a space entered by mistake; one with a holder, a lease or bills is refused."""
    space = await get_parking_space(session, actor, space_id=space_id)
    reasons = await usage_of(session, actor, subject="parking_space", subject_id=space.id)
    await delete_checked(session, actor, space, subject="parking_space", reasons=reasons)


async def update_parking_area(
    session: AsyncSession, actor: Actor, *, area_id: uuid.UUID, changes: dict[str, Any]
) -> ParkingArea:
    area = await get_parking_area(session, actor, area_id=area_id)
    changed = sorted(
        k for k, v in changes.items() if k in ("name", "underground") and getattr(area, k) != v
    )
    for key in changed:
        setattr(area, key, changes[key])
    await flush_or_conflict(
        session,
        Conflict("A parking area with this name already exists.", code="parking_area_taken"),
    )
    if changed:
        await audit.record(
            session,
            actor,
            "parking_area.update",
            target_type="parking_area",
            target_id=area.id,
            detail={"fields": changed},
        )
    return area


async def archive_parking_area(
    session: AsyncSession, actor: Actor, *, area_id: uuid.UUID
) -> ParkingArea:
    """Archive an area and every space in it, in one statement for the spaces."""
    area = await get_parking_area(session, actor, area_id=area_id)
    now = dt.datetime.now(dt.UTC)
    if area.archived_at is None:
        area.archived_at = now
    await session.execute(
        update(ParkingSpace)
        .where(
            ParkingSpace.tenant_id == area.tenant_id,
            ParkingSpace.area_id == area.id,
            ParkingSpace.archived_at.is_(None),
        )
        .values(archived_at=now)
    )
    await session.flush()
    await audit.record(
        session, actor, "parking_area.archive", target_type="parking_area", target_id=area.id
    )
    return area


async def delete_parking_area(session: AsyncSession, actor: Actor, *, area_id: uuid.UUID) -> None:
    """Delete an area entered by mistake with its free spaces; held spaces refuse it."""
    area = await get_parking_area(session, actor, area_id=area_id)
    reasons = set(await usage_of(session, actor, subject="parking_area", subject_id=area.id))
    space_ids = (
        await session.scalars(select(ParkingSpace.id).where(ParkingSpace.area_id == area.id))
    ).all()
    for space_id in space_ids[:SPACE_RANGE_MAX]:
        reasons.update(
            r
            for r in await usage_of(session, actor, subject="parking_space", subject_id=space_id)
            if r not in ("holder", "active_lease")  # counted once above as held_spaces
        )
    await delete_checked(session, actor, area, subject="parking_area", reasons=sorted(reasons))


async def get_facility(session: AsyncSession, actor: Actor, *, facility_id: uuid.UUID) -> Facility:
    return await _one(
        session,
        select(Facility).where(
            Facility.id == facility_id, community_scope(actor, Facility.community_id)
        ),
        "Facility not found.",
        "facility_not_found",
    )


FACILITY_FIELDS = ("name", "kind", "location", "building_id")


async def update_facility(
    session: AsyncSession, actor: Actor, *, facility_id: uuid.UUID, changes: dict[str, Any]
) -> Facility:
    facility = await get_facility(session, actor, facility_id=facility_id)
    wanted = {k: v for k, v in changes.items() if k in FACILITY_FIELDS}
    building_id = wanted.get("building_id")
    if building_id is not None and building_id != facility.building_id:
        building = await get_building(session, actor, building_id=building_id)
        if building.community_id != facility.community_id:
            raise ValidationFailed(
                errors=[
                    FieldError(
                        "building_id", "The building is in another community.", "community_mismatch"
                    )
                ]
            )
    changed = sorted(k for k, v in wanted.items() if getattr(facility, k) != v)
    for key in changed:
        setattr(facility, key, wanted[key])
    await flush_or_conflict(
        session, Conflict("A facility with this name already exists.", code="facility_taken")
    )
    if changed:
        await audit.record(
            session,
            actor,
            "facility.update",
            target_type="facility",
            target_id=facility.id,
            detail={"fields": changed},
        )
    return facility


async def archive_facility(
    session: AsyncSession, actor: Actor, *, facility_id: uuid.UUID
) -> Facility:
    facility = await get_facility(session, actor, facility_id=facility_id)
    if facility.archived_at is None:
        facility.archived_at = dt.datetime.now(dt.UTC)
        await session.flush()
        await audit.record(
            session, actor, "facility.archive", target_type="facility", target_id=facility.id
        )
    return facility


async def delete_facility(session: AsyncSession, actor: Actor, *, facility_id: uuid.UUID) -> None:
    """Delete a facility entered by mistake; one other records use (repairs...) is refused."""
    facility = await get_facility(session, actor, facility_id=facility_id)
    reasons = await usage_of(session, actor, subject="facility", subject_id=facility.id)
    await delete_checked(session, actor, facility, subject="facility", reasons=reasons)


@dataclass
class ParkingAreaSummary:
    area: ParkingArea
    by_usage: dict[str, int]
    bound: int

    @property
    def spaces(self) -> int:
        return sum(self.by_usage.values())


async def parking_summary(
    session: AsyncSession, actor: Actor, *, community_id: uuid.UUID
) -> list[ParkingAreaSummary]:
    """Areas of a community with their spaces counted by use and by binding, two statements."""
    await get_community(session, actor, community_id=community_id)
    areas = (
        await session.scalars(
            select(ParkingArea)
            .where(ParkingArea.community_id == community_id, ParkingArea.archived_at.is_(None))
            .order_by(ParkingArea.name)
        )
    ).all()
    counts = await session.execute(
        select(
            ParkingSpace.area_id,
            ParkingSpace.usage,
            func.count(),
            func.count(ParkingSpace.house_id),
        )
        .where(ParkingSpace.community_id == community_id, ParkingSpace.archived_at.is_(None))
        .group_by(ParkingSpace.area_id, ParkingSpace.usage)
    )
    by_area: dict[uuid.UUID, ParkingAreaSummary] = {
        a.id: ParkingAreaSummary(area=a, by_usage={}, bound=0) for a in areas
    }
    for area_id, usage, count, bound in counts.all():
        summary = by_area.get(area_id)
        if summary is not None:
            summary.by_usage[ParkingUsage(usage).value] = count
            summary.bound += bound
    return list(by_area.values())


async def spaces_of_house(
    session: AsyncSession, actor: Actor, *, house_id: uuid.UUID
) -> list[tuple[ParkingSpace, str]]:
    """Spaces bound to a house, with their area's name."""
    house = await get_house(session, actor, house_id=house_id, include_archived=True)
    rows = await session.execute(
        select(ParkingSpace, ParkingArea.name)
        .join(
            ParkingArea,
            (ParkingArea.tenant_id == ParkingSpace.tenant_id)
            & (ParkingArea.id == ParkingSpace.area_id),
        )
        .where(ParkingSpace.house_id == house.id, ParkingSpace.archived_at.is_(None))
        .order_by(ParkingArea.name, ParkingSpace.space_no)
    )
    return [(space, name) for space, name in rows.all()]


async def house_refs(
    session: AsyncSession, actor: Actor, *, house_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """Houses as people write them (3-2-1201, or 3-1201 without a unit), in one statement."""
    wanted = sorted(set(house_ids))
    if not wanted:
        return {}
    rows = await session.execute(
        select(House.id, Building.building_no, Unit.unit_no, House.house_no)
        .join(
            Building, (Building.tenant_id == House.tenant_id) & (Building.id == House.building_id)
        )
        .outerjoin(Unit, (Unit.tenant_id == House.tenant_id) & (Unit.id == House.unit_id))
        .where(House.id.in_(wanted), community_scope(actor, House.community_id))
    )
    return {
        house_id: "-".join(p for p in (building_no, unit_no, house_no) if p)
        for house_id, building_no, unit_no, house_no in rows.all()
    }


async def house_by_ref(
    session: AsyncSession, actor: Actor, *, community_id: uuid.UUID, raw: str, field_name: str
) -> uuid.UUID:
    """The one house of a community written as ``3-2-1201`` or ``3栋2单元1201``."""
    ref = parse_house_ref(raw)
    if ref is None:
        raise ValidationFailed(
            errors=[
                FieldError(field_name, "Write the house as 3-2-1201 or 3栋2单元1201.", "invalid")
            ]
        )
    ids = await find_house_ids_by_ref(session, actor, ref=ref, community_id=community_id)
    if not ids:
        raise ValidationFailed(
            errors=[FieldError(field_name, "No such house in this community.", "house_not_found")]
        )
    if len(ids) > 1:
        raise ValidationFailed(
            errors=[
                FieldError(
                    field_name, "Several houses match: write the unit too.", "ambiguous_house"
                )
            ]
        )
    return ids[0]


# --- tree and counts ---------------------------------------------------------------------


@dataclass
class UnitNode:
    id: uuid.UUID | None
    unit_no: str | None
    houses: int = 0
    occupied: int = 0


@dataclass
class BuildingNode:
    id: uuid.UUID
    building_no: str
    name: str
    houses: int = 0
    occupied: int = 0
    units: list[UnitNode] = field(default_factory=list)


async def community_tree(
    session: AsyncSession, actor: Actor, *, community_id: uuid.UUID
) -> list[BuildingNode]:
    """Buildings → units with house and occupied counts; houses come per unit from ``list_houses``.

    Three statements whatever the size of the community.
    """
    await get_community(session, actor, community_id=community_id)
    buildings = (
        await session.scalars(
            select(Building)
            .where(Building.community_id == community_id, Building.archived_at.is_(None))
            .order_by(Building.building_no)
        )
    ).all()
    units = (
        await session.scalars(
            select(Unit).where(Unit.community_id == community_id).order_by(Unit.unit_no)
        )
    ).all()
    counts = await session.execute(
        select(
            House.building_id,
            House.unit_id,
            func.count(),
            func.count().filter(House.status == HouseStatus.OCCUPIED),
        )
        .where(House.community_id == community_id, House.archived_at.is_(None))
        .group_by(House.building_id, House.unit_id)
    )
    by_key = {(b, u): (n, o) for b, u, n, o in counts.all()}
    nodes = {b.id: BuildingNode(id=b.id, building_no=b.building_no, name=b.name) for b in buildings}
    for unit in units:
        node = nodes.get(unit.building_id)
        if node is not None:
            n, o = by_key.get((unit.building_id, unit.id), (0, 0))
            node.units.append(UnitNode(id=unit.id, unit_no=unit.unit_no, houses=n, occupied=o))
    for (building_id, unit_id), (n, o) in by_key.items():
        node = nodes.get(building_id)
        if node is None:
            continue
        node.houses += n
        node.occupied += o
        if unit_id is None:
            node.units.append(UnitNode(id=None, unit_no=None, houses=n, occupied=o))
    return sorted(nodes.values(), key=lambda n: _natural(n.building_no))


def _natural(value: str) -> tuple[int, str]:
    return (int(value), "") if value.isdigit() else (1 << 30, value)


async def building_houses(
    session: AsyncSession, actor: Actor, *, building_id: uuid.UUID
) -> list[tuple[Unit | None, list[House]]]:
    """Units of one building with their houses, ordered by floor and number (the tree's leaves)."""
    building = await get_building(session, actor, building_id=building_id)
    units = {
        u.id: u
        for u in (await session.scalars(select(Unit).where(Unit.building_id == building.id))).all()
    }
    houses = (
        await session.scalars(
            select(House)
            .where(House.building_id == building.id, House.archived_at.is_(None))
            .order_by(House.unit_id, House.floor, House.house_no)
        )
    ).all()
    grouped: dict[uuid.UUID | None, list[House]] = {}
    for house in houses:
        grouped.setdefault(house.unit_id, []).append(house)
    ordered = sorted(units.values(), key=lambda u: _natural(u.unit_no))
    result: list[tuple[Unit | None, list[House]]] = [(u, grouped.get(u.id, [])) for u in ordered]
    if None in grouped:
        result.append((None, grouped[None]))
    return result


@dataclass
class CommunityCounts:
    community_id: uuid.UUID
    code: str
    name: str
    buildings: int
    houses: int
    by_status: dict[str, int]
    building_area: Decimal
    parking_spaces: int = 0
    parking_held: int = 0  # owned or rented to a house or resident

    @property
    def occupancy_rate(self) -> Decimal:
        """Occupied houses over houses that can be lived in (sold ones)."""
        sold = self.houses - self.by_status.get(HouseStatus.UNSOLD.value, 0)
        if sold <= 0:
            return Decimal("0")
        return (Decimal(self.by_status.get(HouseStatus.OCCUPIED.value, 0)) / sold).quantize(
            Decimal("0.0001")
        )


async def community_counts(session: AsyncSession, actor: Actor) -> list[CommunityCounts]:
    communities = (
        await session.scalars(readable_communities(actor).order_by(Community.code))
    ).all()
    ids = [c.id for c in communities]
    if not ids:
        return []
    status_rows = await session.execute(
        select(
            House.community_id,
            House.status,
            func.count(),
            func.coalesce(func.sum(House.building_area), 0),
        )
        .where(House.community_id.in_(ids), House.archived_at.is_(None))
        .group_by(House.community_id, House.status)
    )
    building_rows = await session.execute(
        select(Building.community_id, func.count())
        .where(Building.community_id.in_(ids), Building.archived_at.is_(None))
        .group_by(Building.community_id)
    )
    buildings = dict(building_rows.all())
    parking_rows = await session.execute(
        select(
            ParkingSpace.community_id,
            func.count(),
            func.count().filter(
                ParkingSpace.house_id.is_not(None) | ParkingSpace.resident_id.is_not(None)
            ),
        )
        .where(ParkingSpace.community_id.in_(ids), ParkingSpace.archived_at.is_(None))
        .group_by(ParkingSpace.community_id)
    )
    parking = {c: (n, h) for c, n, h in parking_rows.all()}
    by_status: dict[uuid.UUID, dict[str, int]] = {}
    areas: dict[uuid.UUID, Decimal] = {}
    for community_id, status, count, area in status_rows.all():
        by_status.setdefault(community_id, {})[HouseStatus(status).value] = count
        areas[community_id] = areas.get(community_id, Decimal("0")) + Decimal(area)
    return [
        CommunityCounts(
            community_id=c.id,
            code=c.code,
            name=c.name,
            buildings=buildings.get(c.id, 0),
            houses=sum(by_status.get(c.id, {}).values(), 0),
            by_status=by_status.get(c.id, {}),
            building_area=areas.get(c.id, Decimal("0")),
            parking_spaces=parking.get(c.id, (0, 0))[0],
            parking_held=parking.get(c.id, (0, 0))[1],
        )
        for c in communities
    ]


# --- export ------------------------------------------------------------------------------

EXPORT_CHUNK = 2000  # rows fetched per round trip from the server-side cursor


async def stream_houses(session: AsyncSession, actor: Actor) -> AsyncIterator[HouseRow]:
    """Every house the actor may see, as import rows (导出), from a server-side cursor."""
    statement = (
        select(
            Community.code,
            Building.building_no,
            Unit.unit_no,
            House.house_no,
            House.floor,
            House.building_area,
            House.inner_area,
            House.house_type,
            House.status,
        )
        .join(
            Building, (Building.tenant_id == House.tenant_id) & (Building.id == House.building_id)
        )
        .join(
            Community,
            (Community.tenant_id == House.tenant_id) & (Community.id == House.community_id),
        )
        .outerjoin(Unit, (Unit.tenant_id == House.tenant_id) & (Unit.id == House.unit_id))
        .where(community_scope(actor, House.community_id), House.archived_at.is_(None))
        .order_by(Community.code, Building.building_no, Unit.unit_no, House.house_no)
        .execution_options(yield_per=EXPORT_CHUNK)
    )
    result = await session.stream(statement)
    async for code, building_no, unit_no, house_no, floor, area, inner, kind, status in result:
        yield HouseRow(
            community_code=code,
            building_no=building_no,
            unit_no=unit_no,
            house_no=house_no,
            floor=floor,
            building_area=area,
            inner_area=inner,
            house_type=HouseType(kind).value,
            status=HouseStatus(status).value,
        )


# --- parking and facilities: bulk import and export ----------------------------------------


async def resolve_buildings(
    session: AsyncSession, actor: Actor, *, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], uuid.UUID]:
    """(community code, building number) → building id, for the actor's communities."""
    wanted = sorted(set(keys))
    codes = await community_ids_by_code(session, actor, (k[0] for k in wanted))
    wanted = [k for k in wanted if k[0] in codes]
    if not wanted:
        return {}
    code_of = {v: k for k, v in codes.items()}
    rows = await session.execute(
        text(
            """
            SELECT b.community_id, b.building_no, b.id
            FROM unnest(CAST(:cids AS uuid[]), CAST(:nos AS text[])) AS t(c, n)
            JOIN buildings b ON b.tenant_id = :tenant AND b.community_id = t.c
                AND b.building_no = t.n AND b.archived_at IS NULL
            """
        ),
        {
            "tenant": _tenant(actor),
            "cids": [codes[c] for c, _ in wanted],
            "nos": [n for _, n in wanted],
        },
    )
    return {(code_of[c], n): i for c, n, i in rows.all()}


def _parking_row_errors(index: int, row: ParkingSpaceRow) -> list[FieldError]:
    prefix = f"rows[{index}]."
    errors = []
    if not SPACE_NO.match(row.space_no or ""):
        errors.append(
            FieldError(f"{prefix}space_no", "Not a valid space number.", "invalid_number")
        )
    if not row.area_name or not row.area_name.strip() or len(row.area_name) > 100:
        errors.append(FieldError(f"{prefix}area_name", "A parking area is required.", "required"))
    if row.usage not in ParkingUsage._value2member_map_:
        errors.append(FieldError(f"{prefix}usage", "Unknown parking use.", "invalid_choice"))
        return errors
    holder = row.owner_phone or row.house_no
    errors.extend(
        _space_holder_errors(
            ParkingUsage(row.usage),
            uuid.UUID(int=1) if holder else None,  # only presence matters here
            None,
            row.lease_start,
            row.lease_end,
            prefix,
        )
    )
    if row.area_m2 is not None and row.area_m2 <= 0:
        errors.append(FieldError(f"{prefix}area_m2", "Must be greater than 0.", "not_positive"))
    return errors


async def _ensure_parking_areas(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    wanted: dict[tuple[uuid.UUID, str], bool | None],
) -> dict[tuple[uuid.UUID, str], uuid.UUID]:
    """Areas by (community, name), created when new; an archived one named again comes back,
    and the underground flag changes only where the file gives one."""
    keys = list(wanted)
    await session.execute(
        text(
            """
            INSERT INTO parking_areas AS a (tenant_id, id, community_id, name, underground)
            SELECT :tenant, i, c, n, coalesce(u, false)
            FROM unnest(CAST(:ids AS uuid[]), CAST(:cids AS uuid[]), CAST(:names AS text[]),
                        CAST(:under AS boolean[])) AS t(i, c, n, u)
            ON CONFLICT (tenant_id, community_id, name) DO UPDATE SET
                underground = coalesce(EXCLUDED.underground, a.underground), archived_at = NULL
            WHERE a.archived_at IS NOT NULL
               OR a.underground IS DISTINCT FROM coalesce(EXCLUDED.underground, a.underground)
            """
        ),
        {
            "tenant": tenant_id,
            "ids": [new_id() for _ in keys],
            "cids": [k[0] for k in keys],
            "names": [k[1] for k in keys],
            "under": [wanted[k] for k in keys],
        },
    )
    rows = await session.execute(
        text(
            """
            SELECT a.community_id, a.name, a.id
            FROM unnest(CAST(:cids AS uuid[]), CAST(:names AS text[])) AS t(c, n)
            JOIN parking_areas a ON a.tenant_id = :tenant AND a.community_id = t.c
                AND a.name = t.n
            """
        ),
        {"tenant": tenant_id, "cids": [k[0] for k in keys], "names": [k[1] for k in keys]},
    )
    return {(c, n): i for c, n, i in rows.all()}


async def upsert_parking_spaces(
    session: AsyncSession, actor: Actor, *, rows: list[ParkingSpaceRow]
) -> UpsertResult:
    """Create or update parking areas and spaces by natural key (community + area + number),
    set-based. Re-running the same rows changes nothing."""
    tenant_id = _tenant(actor)
    if not rows:
        return UpsertResult(0, 0, 0)
    codes = await community_ids_by_code(session, actor, (r.community_code for r in rows))
    require_codes(rows, codes)
    errors = [e for i, r in enumerate(rows) for e in _parking_row_errors(i, r)]
    if errors:
        raise ValidationFailed(errors=errors[:200])
    house_keys = [
        (r.community_code, r.building_no, r.unit_no, r.house_no)
        for r in rows
        if r.building_no and r.house_no
    ]
    resolved = await resolve_houses(session, actor, keys=house_keys)
    owners: dict[str, uuid.UUID] = {}
    phones = [r.owner_phone for r in rows if r.owner_phone]
    if phones:
        from linli.residents import service as residents  # residents build on the estate

        owners = await residents.resident_ids_by_phones(session, actor, phones)
    for i, r in enumerate(rows):
        if (
            r.house_no
            and (
                r.community_code,
                r.building_no or "",
                r.unit_no,
                r.house_no,
            )
            not in resolved.ids
        ):
            errors.append(FieldError(f"rows[{i}].house_no", "No such house.", "house_not_found"))
        if r.owner_phone and r.owner_phone not in owners:
            errors.append(
                FieldError(
                    f"rows[{i}].owner_phone", "No resident has this phone.", "resident_not_found"
                )
            )
    if errors:
        raise ValidationFailed(errors=errors[:200])

    flags: dict[tuple[uuid.UUID, str], bool | None] = {}
    for r in rows:
        key = (codes[r.community_code], r.area_name.strip())
        if r.underground is not None or key not in flags:
            flags[key] = r.underground
    areas = await _ensure_parking_areas(session, tenant_id, flags)
    latest: dict[tuple[uuid.UUID, str], tuple[uuid.UUID, ParkingSpaceRow]] = {}
    for r in rows:
        community_id = codes[r.community_code]
        latest[(areas[(community_id, r.area_name.strip())], r.space_no)] = (community_id, r)
    keys = list(latest)
    values = [latest[k] for k in keys]
    result = await session.execute(
        text(
            """
            INSERT INTO parking_spaces AS s (tenant_id, id, community_id, area_id, space_no,
                usage, house_id, resident_id, lease_start, lease_end, area_m2)
            SELECT :tenant, i, c, a, n, CAST(u AS parking_usage), h, r, ls, le, m
            FROM unnest(CAST(:ids AS uuid[]), CAST(:cids AS uuid[]), CAST(:aids AS uuid[]),
                        CAST(:nos AS text[]), CAST(:usages AS text[]), CAST(:hids AS uuid[]),
                        CAST(:rids AS uuid[]), CAST(:ls AS date[]), CAST(:le AS date[]),
                        CAST(:m2 AS numeric[])) AS t(i, c, a, n, u, h, r, ls, le, m)
            ON CONFLICT (tenant_id, area_id, space_no) DO UPDATE SET
                usage = EXCLUDED.usage, house_id = EXCLUDED.house_id,
                resident_id = EXCLUDED.resident_id, lease_start = EXCLUDED.lease_start,
                lease_end = EXCLUDED.lease_end, area_m2 = coalesce(EXCLUDED.area_m2, s.area_m2),
                archived_at = NULL
            WHERE (s.usage, s.house_id, s.resident_id, s.lease_start, s.lease_end, s.area_m2,
                   s.archived_at)
                  IS DISTINCT FROM
                  (EXCLUDED.usage, EXCLUDED.house_id, EXCLUDED.resident_id, EXCLUDED.lease_start,
                   EXCLUDED.lease_end, coalesce(EXCLUDED.area_m2, s.area_m2), NULL)
            RETURNING (xmax = 0) AS inserted
            """
        ),
        {
            "tenant": tenant_id,
            "ids": [new_id() for _ in keys],
            "cids": [c for c, _ in values],
            "aids": [k[0] for k in keys],
            "nos": [k[1] for k in keys],
            "usages": [r.usage for _, r in values],
            "hids": [
                resolved.ids.get((r.community_code, r.building_no or "", r.unit_no, r.house_no))
                if r.house_no
                else None
                for _, r in values
            ],
            "rids": [owners.get(r.owner_phone) if r.owner_phone else None for _, r in values],
            "ls": [r.lease_start for _, r in values],
            "le": [r.lease_end for _, r in values],
            "m2": [r.area_m2 for _, r in values],
        },
    )
    inserted = [bool(f) for (f,) in result.all()]
    return await record_bulk_upsert(
        session,
        actor,
        target="parking_space",
        event=events.PARKING_IMPORTED,
        inserted=inserted,
        total=len(rows),
    )


async def upsert_facilities(
    session: AsyncSession, actor: Actor, *, rows: list[FacilityRow]
) -> UpsertResult:
    """Create or update common facilities by (community, name), set-based."""
    tenant_id = _tenant(actor)
    if not rows:
        return UpsertResult(0, 0, 0)
    codes = await community_ids_by_code(session, actor, (r.community_code for r in rows))
    require_codes(rows, codes)
    errors: list[FieldError] = []
    for i, r in enumerate(rows):
        if not r.name or not r.name.strip() or len(r.name) > 100:
            errors.append(FieldError(f"rows[{i}].name", "A name is required.", "required"))
        if not re.fullmatch(r"[a-z_]{1,40}", r.kind or ""):
            errors.append(FieldError(f"rows[{i}].kind", "Unknown facility kind.", "invalid_choice"))
        if len(r.location or "") > 200:
            errors.append(FieldError(f"rows[{i}].location", "Too long.", "too_long"))
    buildings = await resolve_buildings(
        session, actor, keys=[(r.community_code, r.building_no) for r in rows if r.building_no]
    )
    for i, r in enumerate(rows):
        if r.building_no and (r.community_code, r.building_no) not in buildings:
            errors.append(
                FieldError(f"rows[{i}].building_no", "No such building.", "building_not_found")
            )
    if errors:
        raise ValidationFailed(errors=errors[:200])
    latest = {(codes[r.community_code], r.name.strip()): r for r in rows}
    keys = list(latest)
    result = await session.execute(
        text(
            """
            INSERT INTO facilities AS f (tenant_id, id, community_id, name, kind, location,
                building_id)
            SELECT :tenant, i, c, n, k, l, b
            FROM unnest(CAST(:ids AS uuid[]), CAST(:cids AS uuid[]), CAST(:names AS text[]),
                        CAST(:kinds AS text[]), CAST(:locs AS text[]), CAST(:bids AS uuid[]))
                 AS t(i, c, n, k, l, b)
            ON CONFLICT (tenant_id, community_id, name) DO UPDATE SET
                kind = EXCLUDED.kind, location = EXCLUDED.location,
                building_id = EXCLUDED.building_id, archived_at = NULL
            WHERE (f.kind, f.location, f.building_id, f.archived_at)
                  IS DISTINCT FROM (EXCLUDED.kind, EXCLUDED.location, EXCLUDED.building_id, NULL)
            RETURNING (xmax = 0) AS inserted
            """
        ),
        {
            "tenant": tenant_id,
            "ids": [new_id() for _ in keys],
            "cids": [k[0] for k in keys],
            "names": [k[1] for k in keys],
            "kinds": [latest[k].kind for k in keys],
            "locs": [latest[k].location or "" for k in keys],
            "bids": [
                buildings.get((latest[k].community_code, latest[k].building_no or ""))
                if latest[k].building_no
                else None
                for k in keys
            ],
        },
    )
    inserted = [bool(f) for (f,) in result.all()]
    return await record_bulk_upsert(
        session,
        actor,
        target="facility",
        event=events.FACILITIES_IMPORTED,
        inserted=inserted,
        total=len(rows),
    )


async def stream_parking_spaces(
    session: AsyncSession, actor: Actor
) -> AsyncIterator[ParkingSpaceRow]:
    """Every space the actor may see, as import rows (导出), with its holder's house and phone.

    Phones come from the residents service a chunk at a time (they are its data).
    """
    from linli.residents import service as residents  # residents build on the estate

    statement = (
        select(
            Community.code,
            ParkingArea.name,
            ParkingArea.underground,
            ParkingSpace.space_no,
            ParkingSpace.usage,
            Building.building_no,
            Unit.unit_no,
            House.house_no,
            ParkingSpace.resident_id,
            ParkingSpace.lease_start,
            ParkingSpace.lease_end,
            ParkingSpace.area_m2,
        )
        .select_from(ParkingSpace)
        .join(
            ParkingArea,
            (ParkingArea.tenant_id == ParkingSpace.tenant_id)
            & (ParkingArea.id == ParkingSpace.area_id),
        )
        .join(
            Community,
            (Community.tenant_id == ParkingSpace.tenant_id)
            & (Community.id == ParkingSpace.community_id),
        )
        .outerjoin(
            House, (House.tenant_id == ParkingSpace.tenant_id) & (House.id == ParkingSpace.house_id)
        )
        .outerjoin(
            Building, (Building.tenant_id == House.tenant_id) & (Building.id == House.building_id)
        )
        .outerjoin(Unit, (Unit.tenant_id == House.tenant_id) & (Unit.id == House.unit_id))
        .where(
            community_scope(actor, ParkingSpace.community_id), ParkingSpace.archived_at.is_(None)
        )
        .order_by(Community.code, ParkingArea.name, ParkingSpace.space_no)
        .execution_options(yield_per=EXPORT_CHUNK)
    )
    result = await session.stream(statement)
    async for chunk in result.partitions(EXPORT_CHUNK):
        phones = await residents.phones_of(
            session, actor, resident_ids=[row[8] for row in chunk if row[8] is not None]
        )
        for code, area, under, space_no, usage, b_no, u_no, h_no, rid, ls, le, m2 in chunk:
            yield ParkingSpaceRow(
                community_code=code,
                area_name=area,
                space_no=space_no,
                usage=ParkingUsage(usage).value,
                underground=under,
                building_no=b_no,
                unit_no=u_no,
                house_no=h_no,
                owner_phone=phones.get(rid) if rid else None,
                lease_start=ls,
                lease_end=le,
                area_m2=m2,
            )


async def stream_facilities(session: AsyncSession, actor: Actor) -> AsyncIterator[FacilityRow]:
    statement = (
        select(
            Community.code, Facility.name, Facility.kind, Building.building_no, Facility.location
        )
        .select_from(Facility)
        .join(
            Community,
            (Community.tenant_id == Facility.tenant_id) & (Community.id == Facility.community_id),
        )
        .outerjoin(
            Building,
            (Building.tenant_id == Facility.tenant_id) & (Building.id == Facility.building_id),
        )
        .where(community_scope(actor, Facility.community_id), Facility.archived_at.is_(None))
        .order_by(Community.code, Facility.name)
        .execution_options(yield_per=EXPORT_CHUNK)
    )
    result = await session.stream(statement)
    async for code, name, kind, building_no, location in result:
        yield FacilityRow(
            community_code=code, name=name, kind=kind, building_no=building_no, location=location
        )
