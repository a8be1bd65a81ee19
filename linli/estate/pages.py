"""Console and portal pages of the estate registry: tree, houses, residents, claims, my homes.

Thin like every page module: the estate and residents services do the work and the
scoping (company through RLS, granted communities through ``community_scope``); these
routes turn query strings and forms into service calls and answers into pages.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from linli.auth.actor import Actor
from linli.auth.deps import DeclaredRoute
from linli.auth.permissions import Permission
from linli.core.errors import DomainError, FieldError, NotFound, ValidationFailed
from linli.core.pagination import PageParams
from linli.db.engine import set_tenant
from linli.estate import service as estate
from linli.estate.models import (
    Facility,
    House,
    HouseStatus,
    HouseType,
    ParkingSpace,
    ParkingUsage,
)
from linli.estate.schemas import BuildingCreate, CommunityProfileUpdate, HouseCreate, UnitCreate
from linli.residents import service as residents
from linli.residents.models import ClaimStatus, Gender, HouseClaim, Relation, Vehicle
from linli.web import nav
from linli.web.forms import optional_uuid, required_uuid
from linli.web.nav import N_
from linli.web.pages import (
    PlatformDb,
    ResidentActor,
    StaffDb,
    _portal_context,
    console_shell,
    staff,
)
from linli.web.session import ConsoleCsrf, PortalCsrf, describe
from linli.web.templating import redirect, render

router = APIRouter(route_class=DeclaredRoute, include_in_schema=False)

RESIDENT_PAGE_SIZE = 30
CLAIM_PAGE_SIZE = 30
HOUSE_SEARCH_LIMIT = 50

RELATION_LABELS = {
    Relation.OWNER: N_("Owner"),
    Relation.CO_OWNER: N_("Co-owner"),
    Relation.FAMILY: N_("Family member"),
    Relation.TENANT: N_("Tenant"),
}
STATUS_LABELS = {
    "unsold": N_("Unsold"),
    "delivered": N_("Delivered"),
    "occupied": N_("Occupied"),
    "vacant": N_("Vacant"),
    "renovating": N_("Renovating"),
    "pending": N_("Pending review"),
    "approved": N_("Approved"),
    "rejected": N_("Rejected"),
}
# What an owner may add from the portal; the service refuses anything else as well.
MEMBER_RELATIONS = (Relation.FAMILY, Relation.TENANT, Relation.CO_OWNER)

ReviewActor = Annotated[Actor, staff(Permission.CLAIMS_REVIEW)]
FormText = Annotated[str, Form(max_length=200)]
FormDate = Annotated[str, Form(max_length=20)]

nav.register(
    nav.NavItem("estate", N_("Estate"), "/console/estate", Permission.ESTATE_READ, "grid", 20)
)
nav.register(
    nav.NavItem(
        "residents", N_("Residents"), "/console/residents", Permission.RESIDENTS_READ, "people", 30
    )
)
nav.register(
    nav.NavItem(
        "claims", N_("Owner claims"), "/console/claims", Permission.CLAIMS_REVIEW, "vote", 32
    )
)
nav.register_tile(nav.PortalTile("homes", N_("My homes"), "home", "/portal/homes", 5))


@dataclass(frozen=True)
class HouseLabel:
    house: House
    building_no: str
    unit_no: str | None

    @property
    def ref(self) -> str:
        """The way people write it: 3-2-1201, or 3-1201 without a unit."""
        parts = [self.building_no, self.unit_no, self.house.house_no]
        return "-".join(p for p in parts if p)


async def _label(session: AsyncSession, actor: Actor, house: House) -> HouseLabel:
    building = await estate.get_building(session, actor, building_id=house.building_id)
    unit = await estate.get_unit(session, actor, unit_id=house.unit_id) if house.unit_id else None
    return HouseLabel(house, building.building_no, unit.unit_no if unit else None)


# --- console: estate ----------------------------------------------------------------------------


@router.get("/console/estate", name="console.estate")
async def estate_page(
    request: Request,
    actor: Annotated[Actor, staff(Permission.ESTATE_READ)],
    session: StaffDb,
    house: Annotated[str, Query(max_length=40)] = "",
    building: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    return await _estate_page(
        request, session, actor, house=house, open_building=optional_uuid(building)
    )


async def _estate_page(
    request: Request,
    session: AsyncSession,
    actor: Actor,
    *,
    house: str = "",
    open_building: uuid.UUID | None = None,
    error: dict[str, Any] | None = None,
    form_name: str = "",
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    shell = await console_shell(request, session, actor)
    community = shell["current_community"]
    counts = await estate.community_counts(session, actor)
    tree: list[estate.BuildingNode] = []
    leaves: list[tuple[Any, list[House]]] = []
    found: list[HouseLabel] | None = None
    search_error = ""
    if community is not None:
        tree = await estate.community_tree(session, actor, community_id=community.id)
        if open_building is not None and any(b.id == open_building for b in tree):
            leaves = await estate.building_houses(session, actor, building_id=open_building)
        if house.strip():
            ref = estate.parse_house_ref(house)
            if ref is None:
                search_error = N_("Write the house as 3-2-1201 or 3栋2单元1201.")
            else:
                ids = await estate.find_house_ids_by_ref(
                    session, actor, ref=ref, community_id=community.id
                )
                found = [
                    await _label(session, actor, await estate.get_house(session, actor, house_id=i))
                    for i in ids[:HOUSE_SEARCH_LIMIT]
                ]
    return render(
        request,
        "estate/estate.html",
        shell
        | {
            "counts": counts,
            "tree": tree,
            "open_building": open_building,
            "leaves": leaves,
            "query": house,
            "found": found,
            "search_error": search_error,
            "status_labels": STATUS_LABELS,
            "house_type_labels": HOUSE_TYPE_LABELS,
            "may_write": actor.can(Permission.ESTATE_WRITE),
            "error": error,
            "form_name": form_name,
            "form": form or {},
        },
        status_code=status_code,
    )


VEHICLE_PAGE_SIZE = 50


def _house_id(raw: str) -> uuid.UUID:
    return required_uuid(raw, message="House not found.", code="house_not_found")


async def _house_page(
    request: Request,
    session: AsyncSession,
    actor: Actor,
    house_id: uuid.UUID,
    *,
    error: dict[str, Any] | None = None,
    form: dict[str, str] | None = None,
    form_name: str = "",
    status_code: int = 200,
) -> Response:
    shell = await console_shell(request, session, actor)
    label = await _label(session, actor, await estate.get_house(session, actor, house_id=house_id))
    members: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    vehicles: list[Vehicle] = []
    if actor.can(Permission.RESIDENTS_READ):
        for link, person in await residents.house_members(
            session, actor, house_id=house_id, include_history=True
        ):
            contact = residents.contact_of(actor, person)
            row = {"link": link, "resident": person, "phone": contact.phone}
            (members if link.moved_out_on is None else history).append(row)
        vehicles, _ = await residents.list_vehicles(
            session, actor, house_id=house_id, page=PageParams(limit=VEHICLE_PAGE_SIZE)
        )
    spaces = await estate.spaces_of_house(session, actor, house_id=house_id)
    return render(
        request,
        "estate/house.html",
        shell
        | {
            "label": label,
            "members": members,
            "history": history,
            "owners": {m["resident"].id: m["resident"].name for m in members + history},
            "vehicles": vehicles,
            "spaces": spaces,
            "usage_labels": USAGE_LABELS,
            "relation_labels": RELATION_LABELS,
            "status_labels": STATUS_LABELS,
            "may_add_vehicle": actor.can(Permission.RESIDENTS_WRITE),
            "may_write_residents": actor.can(Permission.RESIDENTS_WRITE),
            "may_write_estate": actor.can(Permission.ESTATE_WRITE),
            "house_statuses": [s.value for s in HouseStatus],
            "member_relations": list(Relation),
            "error": error,
            "form": form or {},
            "form_name": form_name,
        },
        status_code=status_code,
    )


@router.get("/console/estate/houses/{house_id}", name="console.house")
async def house_page(
    request: Request,
    actor: Annotated[Actor, staff(Permission.ESTATE_READ)],
    session: StaffDb,
    house_id: str,
) -> Response:
    return await _house_page(request, session, actor, _house_id(house_id))


@router.post("/console/estate/houses/{house_id}/vehicles", dependencies=[ConsoleCsrf])
async def add_vehicle(
    request: Request,
    actor: Annotated[Actor, staff(Permission.RESIDENTS_WRITE)],
    session: StaffDb,
    house_id: str,
    plate: Annotated[str, Form(max_length=20)] = "",
    resident_id: Annotated[str, Form(max_length=64)] = "",
    brand: Annotated[str, Form(max_length=40)] = "",
    color: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Register a vehicle (登记车辆) for a house, optionally for one of its residents."""
    wanted = _house_id(house_id)
    house = await estate.get_house(session, actor, house_id=wanted)
    form = {"plate": plate, "resident_id": resident_id, "brand": brand, "color": color}
    try:
        if not plate.strip():
            raise ValidationFailed(errors=[FieldError("plate", "Required.", "required")])
        async with session.begin_nested():
            await residents.register_vehicle(
                session,
                actor,
                community_id=house.community_id,
                plate=plate,
                house_id=house.id,
                resident_id=optional_uuid(resident_id),
                brand=brand.strip(),
                color=color.strip(),
            )
    except DomainError as exc:
        if isinstance(exc, NotFound) and exc.instance_code == "house_not_found":
            raise
        return await _house_page(
            request,
            session,
            actor,
            wanted,
            error=describe(exc),
            form=form,
            form_name="vehicle",
            status_code=exc.status,
        )
    return redirect(request, f"/console/estate/houses/{wanted}#vehicles")


# --- console: residents -------------------------------------------------------------------------


@router.get("/console/residents", name="console.residents")
async def residents_page(
    request: Request,
    actor: Annotated[Actor, staff(Permission.RESIDENTS_READ)],
    session: StaffDb,
    q: Annotated[str, Query(max_length=40)] = "",
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    without_house: Annotated[str, Query(max_length=5)] = "",
    tag: Annotated[str, Query(max_length=32)] = "",
) -> Response:
    return await _residents_page(
        request,
        session,
        actor,
        q=q,
        cursor=cursor,
        without_house=bool(without_house),
        tag=tag.strip(),
    )


async def _residents_page(
    request: Request,
    session: AsyncSession,
    actor: Actor,
    *,
    q: str = "",
    cursor: str | None = None,
    without_house: bool = False,
    tag: str = "",
    create_error: dict[str, Any] | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    shell = await console_shell(request, session, actor)
    query = q.strip()
    # Digits (with spaces, dashes or +86) are a phone; anything else is a name prefix.
    digits = query.replace(" ", "").replace("-", "").removeprefix("+")
    # A house written as 3-2-1201 or 3栋2单元1201 finds its current residents (current community).
    community = shell["current_community"]
    if digits.isdigit() and len(digits) >= 11:
        search = residents.ResidentSearch(phone=query, without_house=without_house)
    elif query and estate.parse_house_ref(query) is not None:
        search = residents.ResidentSearch(
            house=query, community_id=community.id if community else None
        )
    else:
        search = residents.ResidentSearch(
            name=query or None, without_house=without_house, tag=tag or None
        )
    error: dict[str, Any] | None = None
    status = status_code
    rows: list[dict[str, Any]] = []
    next_cursor: str | None = None
    try:
        found, next_cursor = await residents.search_residents(
            session, actor, search=search, page=PageParams(cursor=cursor, limit=RESIDENT_PAGE_SIZE)
        )
    except DomainError as exc:
        error, found, status = describe(exc), [], exc.status
    housed = await residents.with_current_house(session, actor, resident_ids=[p.id for p in found])
    for person in found:
        contact = residents.contact_of(actor, person)
        rows.append(
            {
                "resident": person,
                "phone": contact.phone,
                "masked": contact.masked,
                "housed": person.id in housed,
            }
        )
    return render(
        request,
        "estate/residents.html",
        shell
        | {
            "rows": rows,
            "query": query,
            "without_house": without_house,
            "tag": tag,
            "next_cursor": next_cursor,
            "error": error,
            "masked": not residents.may_see_contact(actor),
            "may_write": actor.can(Permission.RESIDENTS_WRITE),
            "may_see_contact": residents.may_see_contact(actor),
            "create_error": create_error,
            "form": form or {},
            "gender_labels": GENDER_LABELS,
            "relation_labels": RELATION_LABELS,
        },
        status_code=status,
    )


@router.post("/console/residents", dependencies=[ConsoleCsrf])
async def create_resident(
    request: Request,
    actor: Annotated[Actor, staff(Permission.RESIDENTS_WRITE)],
    session: StaffDb,
    name: Annotated[str, Form(max_length=100)] = "",
    phone: Annotated[str, Form(max_length=32)] = "",
    id_card: Annotated[str, Form(max_length=32)] = "",
    gender: Annotated[str, Form(max_length=10)] = "",
    birth_date: FormDate = "",
    tags: Annotated[str, Form(max_length=800)] = "",
    house: Annotated[str, Form(max_length=40)] = "",
    relation: Annotated[str, Form(max_length=20)] = Relation.OWNER.value,
    lease_start: FormDate = "",
    lease_end: FormDate = "",
) -> Response:
    """Register a person (登记住户), with a house of the current community or without one
    yet: they are then registered in the current community and listed under "without house".
    """
    form = {
        "name": name,
        "phone": phone,
        "id_card": id_card,
        "gender": gender,
        "birth_date": birth_date,
        "tags": tags,
        "house": house,
        "relation": relation,
        "lease_start": lease_start,
        "lease_end": lease_end,
    }
    try:
        errors = []
        born = _date_or_none(birth_date)
        if not name.strip():
            errors.append(FieldError("name", RESIDENT_MESSAGES["name"], "required"))
        if birth_date.strip() and born is None:
            errors.append(FieldError("birth_date", RESIDENT_MESSAGES["birth_date"], "invalid"))
        chosen_tags = _tags(tags)
        if len(chosen_tags) > 20 or any(len(t) > 32 for t in chosen_tags):
            errors.append(FieldError("tags", RESIDENT_MESSAGES["tags"], "invalid"))
        if errors:
            raise ValidationFailed(errors=errors)
        community_id = await _current_community_id(request, session, actor)
        house_id = None
        if house.strip():
            house_id = await estate.house_by_ref(
                session, actor, community_id=community_id, raw=house, field_name="house"
            )
        chosen = Relation(relation) if relation in Relation._value2member_map_ else Relation.OWNER
        async with session.begin_nested():
            created = await residents.create_resident(
                session,
                actor,
                name=name.strip(),
                phone=phone.strip() or None,
                id_card=id_card.strip() or None,
                gender=Gender(gender) if gender in GENDER_LABELS else None,
                birth_date=born,
                tags=chosen_tags,
                house_id=house_id,
                relation=chosen if house_id else None,
                lease_start=_date_or_none(lease_start) if house_id else None,
                lease_end=_date_or_none(lease_end) if house_id else None,
                community_id=community_id,
            )
    except DomainError as exc:
        if isinstance(exc, NotFound) and exc.instance_code == "community_not_found":
            raise
        return await _residents_page(
            request,
            session,
            actor,
            create_error=describe(exc),
            form=form,
            status_code=exc.status,
        )
    return redirect(request, f"/console/residents/{created.id}")


# --- console: owner claims ----------------------------------------------------------------------


@router.get("/console/claims", name="console.claims")
async def claims_page(request: Request, actor: ReviewActor, session: StaffDb) -> Response:
    shell = await console_shell(request, session, actor)
    community = shell["current_community"]
    claims: list[HouseClaim] = []
    if community is not None:
        claims, _ = await residents.list_claims(
            session,
            actor,
            status=ClaimStatus.PENDING,
            community_id=community.id,
            page=PageParams(limit=CLAIM_PAGE_SIZE),
        )
    rows = [
        {
            "claim": claim,
            "label": await _label(
                session,
                actor,
                await estate.get_house(
                    session, actor, house_id=claim.house_id, include_archived=True
                ),
            ),
        }
        for claim in claims
    ]
    return render(
        request,
        "estate/claims.html",
        shell | {"rows": rows, "relation_labels": RELATION_LABELS},
    )


def _claim_id(raw: str) -> uuid.UUID:
    return required_uuid(raw, message="Claim not found.", code="claim_not_found")


@router.post("/console/claims/{claim_id}/approve", dependencies=[ConsoleCsrf])
async def approve_claim(
    request: Request, actor: ReviewActor, session: StaffDb, claim_id: str
) -> Response:
    await residents.approve_claim(session, actor, claim_id=_claim_id(claim_id))
    return redirect(request, "/console/claims")


@router.post("/console/claims/{claim_id}/reject", dependencies=[ConsoleCsrf])
async def reject_claim(
    request: Request,
    actor: ReviewActor,
    session: StaffDb,
    claim_id: str,
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    await residents.reject_claim(session, actor, claim_id=_claim_id(claim_id), reason=reason)
    return redirect(request, "/console/claims")


# --- portal: my homes ---------------------------------------------------------------------------


async def _homes_page(
    request: Request,
    session: AsyncSession,
    actor: Actor,
    *,
    error: dict[str, Any] | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    # A refused claim or member may have left the session in that company: start clean.
    await set_tenant(session, None)
    context = await _portal_context(request, session, actor)
    homes, claims = await residents.my_homes(session, actor)
    return render(
        request,
        "portal/homes.html",
        context
        | {
            "homes": homes,
            "claims": claims,
            "owner_relations": residents.OWNER_RELATIONS,
            "member_relations": MEMBER_RELATIONS,
            "relation_labels": RELATION_LABELS,
            "status_labels": STATUS_LABELS,
            "error": error,
            "form": form or {},
        },
        status_code=status_code,
    )


@router.get("/portal/homes", name="portal.homes")
async def homes_page(request: Request, actor: ResidentActor, session: PlatformDb) -> Response:
    return await _homes_page(request, session, actor)


@router.post("/portal/homes/claim", dependencies=[PortalCsrf])
async def submit_claim(
    request: Request,
    actor: ResidentActor,
    session: PlatformDb,
    company: FormText = "",
    community_code: FormText = "",
    house: FormText = "",
    name: FormText = "",
    relation: Annotated[str, Form(max_length=20)] = Relation.OWNER.value,
) -> Response:
    form = {"company": company, "community_code": community_code, "house": house, "name": name}
    try:
        chosen = Relation(relation) if relation in (r.value for r in Relation) else Relation.OWNER
        await residents.submit_claim(
            session,
            actor,
            company=company,
            community_code=community_code.strip(),
            house=house,
            name=name.strip(),
            relation=chosen,
        )
    except DomainError as exc:
        return await _homes_page(
            request, session, actor, error=describe(exc), form=form, status_code=exc.status
        )
    return redirect(request, "/portal/homes")


def _date_or_none(raw: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(raw) if raw.strip() else None
    except ValueError:
        return None


@router.post("/portal/homes/{house_id}/members", dependencies=[PortalCsrf])
async def add_member(
    request: Request,
    actor: ResidentActor,
    session: PlatformDb,
    house_id: str,
    company_id: Annotated[str, Form(max_length=64)] = "",
    name: FormText = "",
    phone: Annotated[str, Form(max_length=32)] = "",
    relation: Annotated[str, Form(max_length=20)] = Relation.FAMILY.value,
    lease_start: FormDate = "",
    lease_end: FormDate = "",
) -> Response:
    house, company = optional_uuid(house_id), optional_uuid(company_id)
    if house is None or company is None:
        raise NotFound("House not found.", code="house_not_found")
    try:
        chosen = Relation(relation) if relation in (r.value for r in Relation) else Relation.FAMILY
        await residents.add_member(
            session,
            actor,
            company_id=company,
            house_id=house,
            name=name.strip(),
            phone=phone.strip() or None,
            relation=chosen,
            lease_start=_date_or_none(lease_start),
            lease_end=_date_or_none(lease_end),
        )
    except DomainError as exc:
        return await _homes_page(
            request, session, actor, error=describe(exc), status_code=exc.status
        )
    return redirect(request, "/portal/homes")


# --- console: parking and facilities ------------------------------------------------------------

PARKING_PATH = "/console/parking"
SPACE_PAGE_SIZE = 200
USAGE_LABELS = {
    ParkingUsage.OWNED.value: N_("Owned"),
    ParkingUsage.RENTED.value: N_("Rented"),
    ParkingUsage.TEMPORARY.value: N_("Temporary"),
}
FACILITY_KINDS = {
    "lift": N_("Lift"),
    "pump_room": N_("Pump room"),
    "power_room": N_("Power distribution room"),
    "fire_control": N_("Fire control room"),
    "clubhouse": N_("Clubhouse"),
    "playground": N_("Playground"),
    "gym": N_("Fitness area"),
    "charging": N_("EV charging"),
    "bike_shed": N_("Bicycle shed"),
    "other": N_("Other"),
}

EstateReader = Annotated[Actor, staff(Permission.ESTATE_READ)]
EstateWriter = Annotated[Actor, staff(Permission.ESTATE_WRITE)]

nav.register(
    nav.NavItem(
        "parking",
        N_("Parking & facilities"),
        PARKING_PATH,
        Permission.ESTATE_READ,
        "grid",
        22,
    )
)


def _usage(raw: str, default: ParkingUsage | None = ParkingUsage.TEMPORARY) -> ParkingUsage | None:
    return ParkingUsage(raw) if raw in USAGE_LABELS else default


async def _parking_page(
    request: Request,
    session: AsyncSession,
    actor: Actor,
    *,
    area: uuid.UUID | None = None,
    cursor: str | None = None,
    error: dict[str, Any] | None = None,
    form_name: str = "",
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    shell = await console_shell(request, session, actor)
    community = shell["current_community"]
    summary: list[estate.ParkingAreaSummary] = []
    facilities: list[Facility] = []
    buildings: list[estate.BuildingNode] = []
    spaces: list[ParkingSpace] = []
    refs: dict[uuid.UUID, str] = {}
    next_cursor: str | None = None
    open_area: estate.ParkingAreaSummary | None = None
    if community is not None:
        summary = await estate.parking_summary(session, actor, community_id=community.id)
        open_area = next((s for s in summary if s.area.id == area), None)
        if open_area is None and summary:
            open_area = summary[0]
        if open_area is not None:
            spaces, next_cursor = await estate.list_parking_spaces(
                session,
                actor,
                community_id=community.id,
                area_id=open_area.area.id,
                page=PageParams(cursor=cursor, limit=SPACE_PAGE_SIZE),
            )
            refs = await estate.house_refs(
                session, actor, house_ids=[s.house_id for s in spaces if s.house_id]
            )
        facilities, _ = await estate.list_facilities(
            session, actor, community_id=community.id, page=PageParams(limit=200)
        )
        buildings = await estate.community_tree(session, actor, community_id=community.id)
    totals = {usage: sum(s.by_usage.get(usage, 0) for s in summary) for usage in USAGE_LABELS}
    return render(
        request,
        "estate/parking.html",
        shell
        | {
            "summary": summary,
            "totals": totals,
            "bound_total": sum(s.bound for s in summary),
            "open_area": open_area,
            "spaces": spaces,
            "refs": refs,
            "next_cursor": next_cursor,
            "first_page": cursor is None,
            "facilities": facilities,
            "buildings": {b.id: b for b in buildings},
            "usage_labels": USAGE_LABELS,
            "facility_kinds": FACILITY_KINDS,
            "may_write": actor.can(Permission.ESTATE_WRITE),
            "error": error,
            "form_name": form_name,
            "form": form or {},
            "range_max": estate.SPACE_RANGE_MAX,
        },
        status_code=status_code,
    )


def _area_link(area_id: uuid.UUID | None) -> str:
    return f"{PARKING_PATH}?area={area_id}" if area_id else PARKING_PATH


def _required(field_name: str) -> ValidationFailed:
    return ValidationFailed(errors=[FieldError(field_name, "Required.", "required")])


async def _current_community_id(request: Request, session: AsyncSession, actor: Actor) -> uuid.UUID:
    community = (await console_shell(request, session, actor))["current_community"]
    if community is None:
        raise NotFound("Community not found.", code="community_not_found")
    community_id: uuid.UUID = community.id
    return community_id


@router.get(PARKING_PATH, name="console.parking")
async def parking_page(
    request: Request,
    actor: EstateReader,
    session: StaffDb,
    area: Annotated[str | None, Query(max_length=64)] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    return await _parking_page(request, session, actor, area=optional_uuid(area), cursor=cursor)


@router.post(PARKING_PATH + "/areas", dependencies=[ConsoleCsrf])
async def create_parking_area(
    request: Request,
    actor: EstateWriter,
    session: StaffDb,
    name: Annotated[str, Form(max_length=100)] = "",
    underground: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    form = {"name": name, "underground": underground}
    try:
        if not name.strip():
            raise _required("name")
        community_id = await _current_community_id(request, session, actor)
        async with session.begin_nested():
            created = await estate.create_parking_area(
                session,
                actor,
                community_id=community_id,
                name=name.strip(),
                underground=bool(underground),
            )
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        return await _parking_page(
            request,
            session,
            actor,
            error=describe(exc),
            form_name="area",
            form=form,
            status_code=exc.status,
        )
    return redirect(request, _area_link(created.id))


@router.post(PARKING_PATH + "/spaces", dependencies=[ConsoleCsrf])
async def create_parking_spaces(
    request: Request,
    actor: EstateWriter,
    session: StaffDb,
    area_id: Annotated[str, Form(max_length=64)] = "",
    space_no: Annotated[str, Form(max_length=400)] = "",
    usage: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    area = optional_uuid(area_id)
    if area is None:
        raise NotFound("Parking area not found.", code="parking_area_not_found")
    form = {"space_no": space_no, "usage": usage}
    try:
        numbers = estate.expand_space_numbers(space_no)
        async with session.begin_nested():
            await estate.create_parking_spaces(
                session,
                actor,
                area_id=area,
                space_nos=numbers,
                usage=_usage(usage) or ParkingUsage.TEMPORARY,
            )
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        return await _parking_page(
            request,
            session,
            actor,
            area=area,
            error=describe(exc),
            form_name="spaces",
            form=form,
            status_code=exc.status,
        )
    return redirect(request, _area_link(area))


@router.post(PARKING_PATH + "/spaces/{space_id}", dependencies=[ConsoleCsrf])
async def bind_parking_space(
    request: Request,
    actor: EstateWriter,
    session: StaffDb,
    space_id: str,
    house: Annotated[str, Form(max_length=40)] = "",
    usage: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    wanted = optional_uuid(space_id)
    if wanted is None:
        raise NotFound("Parking space not found.", code="parking_space_not_found")
    space = await estate.get_parking_space(session, actor, space_id=wanted)
    # Kept apart: a refused change rolls the savepoint back and expires the space.
    area_id, community_id = space.area_id, space.community_id
    form = {"space_id": str(space.id), "house": house, "usage": usage}
    try:
        house_id = None
        if house.strip():
            house_id = await estate.house_by_ref(
                session, actor, community_id=community_id, raw=house, field_name="house"
            )
        async with session.begin_nested():
            await estate.bind_parking_space(
                session, actor, space_id=wanted, house_id=house_id, usage=_usage(usage, None)
            )
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        return await _parking_page(
            request,
            session,
            actor,
            area=area_id,
            error=describe(exc),
            form_name="bind",
            form=form,
            status_code=exc.status,
        )
    return redirect(request, _area_link(area_id) + f"#space-{wanted}")


@router.post(PARKING_PATH + "/facilities", dependencies=[ConsoleCsrf])
async def create_facility(
    request: Request,
    actor: EstateWriter,
    session: StaffDb,
    name: Annotated[str, Form(max_length=100)] = "",
    kind: Annotated[str, Form(max_length=40)] = "other",
    location: Annotated[str, Form(max_length=200)] = "",
    building_id: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    form = {"name": name, "kind": kind, "location": location, "building_id": building_id}
    try:
        if not name.strip():
            raise _required("name")
        community_id = await _current_community_id(request, session, actor)
        async with session.begin_nested():
            await estate.create_facility(
                session,
                actor,
                community_id=community_id,
                name=name.strip(),
                kind=kind if kind in FACILITY_KINDS else "other",
                location=location.strip(),
                building_id=optional_uuid(building_id),
            )
    except DomainError as exc:
        if isinstance(exc, NotFound) and exc.instance_code == "community_not_found":
            raise
        return await _parking_page(
            request,
            session,
            actor,
            error=describe(exc),
            form_name="facility",
            form=form,
            status_code=exc.status,
        )
    return redirect(request, PARKING_PATH + "#facilities")


# --- console: editing, archiving and deleting parking, facilities and vehicles ------------------


def _space_id(raw: str) -> uuid.UUID:
    return required_uuid(raw, message="Parking space not found.", code="parking_space_not_found")


async def _space_page(
    request: Request,
    session: AsyncSession,
    actor: Actor,
    space_id: uuid.UUID,
    *,
    error: dict[str, Any] | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    shell = await console_shell(request, session, actor)
    space = await estate.get_parking_space(session, actor, space_id=space_id)
    area = await estate.get_parking_area(session, actor, area_id=space.area_id)
    refs = await estate.house_refs(
        session, actor, house_ids=[space.house_id] if space.house_id else []
    )
    holders: dict[uuid.UUID, str] = {}
    if actor.can(Permission.RESIDENTS_READ):
        if space.house_id is not None:
            for _, person in await residents.house_members(session, actor, house_id=space.house_id):
                holders[person.id] = person.name
        if space.resident_id is not None and space.resident_id not in holders:
            try:
                holder = await residents.get_resident(session, actor, resident_id=space.resident_id)
                holders[holder.id] = holder.name
            except NotFound:
                holders[space.resident_id] = "…"
    reasons = await estate.usage_of(session, actor, subject="parking_space", subject_id=space.id)
    return render(
        request,
        "estate/space.html",
        shell
        | {
            "space": space,
            "area": area,
            "house_ref": refs.get(space.house_id, "") if space.house_id else "",
            "holders": holders,
            "in_use": reasons,
            "usage_labels": USAGE_LABELS,
            "may_write": actor.can(Permission.ESTATE_WRITE),
            "error": error,
            "form": form or {},
        },
        status_code=status_code,
    )


@router.get(PARKING_PATH + "/spaces/{space_id}", name="console.parking_space")
async def space_page(
    request: Request, actor: EstateReader, session: StaffDb, space_id: str
) -> Response:
    return await _space_page(request, session, actor, _space_id(space_id))


@router.post(PARKING_PATH + "/spaces/{space_id}/edit", dependencies=[ConsoleCsrf])
async def edit_parking_space(
    request: Request,
    actor: EstateWriter,
    session: StaffDb,
    space_id: str,
    space_no: Annotated[str, Form(max_length=20)] = "",
    usage: Annotated[str, Form(max_length=20)] = "",
    house: Annotated[str, Form(max_length=40)] = "",
    resident_id: Annotated[str, Form(max_length=64)] = "",
    lease_start: FormDate = "",
    lease_end: FormDate = "",
    area_m2: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Edit a space (编辑车位): number, use, holder house and resident, lease, area."""
    wanted = _space_id(space_id)
    space = await estate.get_parking_space(session, actor, space_id=wanted)
    community_id = space.community_id
    form = {
        "space_no": space_no,
        "usage": usage,
        "house": house,
        "resident_id": resident_id,
        "lease_start": lease_start,
        "lease_end": lease_end,
        "area_m2": area_m2,
    }
    try:
        errors = []
        start, end = _date_or_none(lease_start), _date_or_none(lease_end)
        for name, raw, parsed in (
            ("lease_start", lease_start, start),
            ("lease_end", lease_end, end),
        ):
            if raw.strip() and parsed is None:
                errors.append(FieldError(name, RESIDENT_MESSAGES["birth_date"], "invalid"))
        area = None
        if area_m2.strip():
            try:
                area = Decimal(area_m2.strip()).quantize(Decimal("0.01"))
            except (ArithmeticError, ValueError):
                errors.append(FieldError("area_m2", "Must be greater than 0.", "invalid"))
        if errors:
            raise ValidationFailed(errors=errors)
        house_id = None
        if house.strip():
            house_id = await estate.house_by_ref(
                session, actor, community_id=community_id, raw=house, field_name="house"
            )
        changes: dict[str, Any] = {
            "space_no": space_no.strip() or space.space_no,
            "house_id": house_id,
            "resident_id": optional_uuid(resident_id),
            "lease_start": start,
            "lease_end": end,
            "area_m2": area,
        }
        chosen = _usage(usage, None)
        if chosen is not None:
            changes["usage"] = chosen
        async with session.begin_nested():
            await estate.update_parking_space(session, actor, space_id=wanted, changes=changes)
    except DomainError as exc:
        if isinstance(exc, NotFound) and exc.instance_code == "parking_space_not_found":
            raise
        return await _space_page(
            request, session, actor, wanted, error=describe(exc), form=form, status_code=exc.status
        )
    return redirect(request, f"{PARKING_PATH}/spaces/{wanted}")


@router.post(PARKING_PATH + "/spaces/{space_id}/archive", dependencies=[ConsoleCsrf])
async def archive_parking_space(
    request: Request, actor: EstateWriter, session: StaffDb, space_id: str
) -> Response:
    space = await estate.archive_parking_space(session, actor, space_id=_space_id(space_id))
    return redirect(request, f"{PARKING_PATH}/spaces/{space.id}")


@router.post(PARKING_PATH + "/spaces/{space_id}/restore", dependencies=[ConsoleCsrf])
async def restore_parking_space(
    request: Request, actor: EstateWriter, session: StaffDb, space_id: str
) -> Response:
    space = await estate.restore_parking_space(session, actor, space_id=_space_id(space_id))
    return redirect(request, f"{PARKING_PATH}/spaces/{space.id}")


@router.post(PARKING_PATH + "/spaces/{space_id}/delete", dependencies=[ConsoleCsrf])
async def delete_parking_space(
    request: Request, actor: EstateWriter, session: StaffDb, space_id: str
) -> Response:
    """Delete a space entered by mistake; one in use is refused with why (archive offered)."""
    wanted = _space_id(space_id)
    area_id = (await estate.get_parking_space(session, actor, space_id=wanted)).area_id
    try:
        async with session.begin_nested():
            await estate.delete_parking_space(session, actor, space_id=wanted)
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        return await _space_page(
            request, session, actor, wanted, error=describe(exc), status_code=exc.status
        )
    return redirect(request, _area_link(area_id))


def _area_id(raw: str) -> uuid.UUID:
    return required_uuid(raw, message="Parking area not found.", code="parking_area_not_found")


@router.post(PARKING_PATH + "/areas/{area_id}/edit", dependencies=[ConsoleCsrf])
async def edit_parking_area(
    request: Request,
    actor: EstateWriter,
    session: StaffDb,
    area_id: str,
    name: Annotated[str, Form(max_length=100)] = "",
    underground: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    wanted = _area_id(area_id)
    form = {"name": name, "underground": underground}
    try:
        if not name.strip():
            raise _required("name")
        async with session.begin_nested():
            await estate.update_parking_area(
                session,
                actor,
                area_id=wanted,
                changes={"name": name.strip(), "underground": bool(underground)},
            )
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        return await _parking_page(
            request,
            session,
            actor,
            area=wanted,
            error=describe(exc),
            form_name="area_edit",
            form=form,
            status_code=exc.status,
        )
    return redirect(request, _area_link(wanted))


@router.post(PARKING_PATH + "/areas/{area_id}/archive", dependencies=[ConsoleCsrf])
async def archive_parking_area(
    request: Request, actor: EstateWriter, session: StaffDb, area_id: str
) -> Response:
    await estate.archive_parking_area(session, actor, area_id=_area_id(area_id))
    return redirect(request, PARKING_PATH)


@router.post(PARKING_PATH + "/areas/{area_id}/delete", dependencies=[ConsoleCsrf])
async def delete_parking_area(
    request: Request, actor: EstateWriter, session: StaffDb, area_id: str
) -> Response:
    wanted = _area_id(area_id)
    try:
        async with session.begin_nested():
            await estate.delete_parking_area(session, actor, area_id=wanted)
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        return await _parking_page(
            request,
            session,
            actor,
            area=wanted,
            error=describe(exc),
            form_name="area_delete",
            status_code=exc.status,
        )
    return redirect(request, PARKING_PATH)


def _facility_id(raw: str) -> uuid.UUID:
    return required_uuid(raw, message="Facility not found.", code="facility_not_found")


@router.post(PARKING_PATH + "/facilities/{facility_id}/edit", dependencies=[ConsoleCsrf])
async def edit_facility(
    request: Request,
    actor: EstateWriter,
    session: StaffDb,
    facility_id: str,
    name: Annotated[str, Form(max_length=100)] = "",
    kind: Annotated[str, Form(max_length=40)] = "other",
    location: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    wanted = _facility_id(facility_id)
    form = {"facility_id": str(wanted), "name": name, "kind": kind, "location": location}
    try:
        if not name.strip():
            raise _required("name")
        async with session.begin_nested():
            await estate.update_facility(
                session,
                actor,
                facility_id=wanted,
                changes={
                    "name": name.strip(),
                    "kind": kind if kind in FACILITY_KINDS else "other",
                    "location": location.strip(),
                },
            )
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        return await _parking_page(
            request,
            session,
            actor,
            error=describe(exc),
            form_name="facility_edit",
            form=form,
            status_code=exc.status,
        )
    return redirect(request, PARKING_PATH + "#facilities")


@router.post(PARKING_PATH + "/facilities/{facility_id}/archive", dependencies=[ConsoleCsrf])
async def archive_facility(
    request: Request, actor: EstateWriter, session: StaffDb, facility_id: str
) -> Response:
    await estate.archive_facility(session, actor, facility_id=_facility_id(facility_id))
    return redirect(request, PARKING_PATH + "#facilities")


@router.post(PARKING_PATH + "/facilities/{facility_id}/delete", dependencies=[ConsoleCsrf])
async def delete_facility(
    request: Request, actor: EstateWriter, session: StaffDb, facility_id: str
) -> Response:
    try:
        async with session.begin_nested():
            await estate.delete_facility(session, actor, facility_id=_facility_id(facility_id))
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        return await _parking_page(
            request,
            session,
            actor,
            error=describe(exc),
            form_name="facility_delete",
            status_code=exc.status,
        )
    return redirect(request, PARKING_PATH + "#facilities")


def _vehicle_id(raw: str) -> uuid.UUID:
    return required_uuid(raw, message="Vehicle not found.", code="vehicle_not_found")


def _vehicle_back(house_id: uuid.UUID | None, resident_id: uuid.UUID | None) -> str:
    if house_id is not None:
        return f"/console/estate/houses/{house_id}#vehicles"
    if resident_id is not None:
        return f"/console/residents/{resident_id}#vehicles"
    return "/console/residents"


@router.post("/console/vehicles/{vehicle_id}/edit", dependencies=[ConsoleCsrf])
async def edit_vehicle(
    request: Request,
    actor: Annotated[Actor, staff(Permission.RESIDENTS_WRITE)],
    session: StaffDb,
    vehicle_id: str,
    plate: Annotated[str, Form(max_length=20)] = "",
    brand: Annotated[str, Form(max_length=40)] = "",
    color: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Correct a vehicle (a mistyped plate, brand, colour) from its house's page."""
    wanted = _vehicle_id(vehicle_id)
    vehicle = await residents.get_vehicle(session, actor, vehicle_id=wanted)
    house_id, resident_id = vehicle.house_id, vehicle.resident_id
    form = {"vehicle_id": str(wanted), "plate": plate, "brand": brand, "color": color}
    try:
        async with session.begin_nested():
            await residents.update_vehicle(
                session,
                actor,
                vehicle_id=wanted,
                changes={"plate": plate, "brand": brand.strip(), "color": color.strip()},
            )
    except DomainError as exc:
        if isinstance(exc, NotFound) or house_id is None:
            raise
        return await _house_page(
            request,
            session,
            actor,
            house_id,
            error=describe(exc),
            form=form,
            form_name="vehicle_edit",
            status_code=exc.status,
        )
    return redirect(request, _vehicle_back(house_id, resident_id))


@router.post("/console/vehicles/{vehicle_id}/archive", dependencies=[ConsoleCsrf])
async def archive_vehicle(
    request: Request,
    actor: Annotated[Actor, staff(Permission.RESIDENTS_WRITE)],
    session: StaffDb,
    vehicle_id: str,
) -> Response:
    """The vehicle is gone (sold, moved away): gates stop knowing it, its history stays."""
    vehicle = await residents.archive_vehicle(session, actor, vehicle_id=_vehicle_id(vehicle_id))
    return redirect(request, _vehicle_back(vehicle.house_id, vehicle.resident_id))


@router.post("/console/vehicles/{vehicle_id}/delete", dependencies=[ConsoleCsrf])
async def delete_vehicle(
    request: Request,
    actor: Annotated[Actor, staff(Permission.RESIDENTS_WRITE)],
    session: StaffDb,
    vehicle_id: str,
) -> Response:
    """Delete a vehicle registered by mistake; one with gate records is refused with why."""
    wanted = _vehicle_id(vehicle_id)
    vehicle = await residents.get_vehicle(session, actor, vehicle_id=wanted)
    house_id, resident_id = vehicle.house_id, vehicle.resident_id
    try:
        async with session.begin_nested():
            await residents.delete_vehicle(session, actor, vehicle_id=wanted)
    except DomainError as exc:
        if isinstance(exc, NotFound) or house_id is None:
            raise
        return await _house_page(
            request,
            session,
            actor,
            house_id,
            error=describe(exc),
            form_name="vehicle_delete",
            status_code=exc.status,
        )
    return redirect(request, _vehicle_back(house_id, resident_id))


# --- console: one resident ----------------------------------------------------------------------

GENDER_LABELS = {"male": N_("Male"), "female": N_("Female")}
ResidentReader = Annotated[Actor, staff(Permission.RESIDENTS_READ)]
ResidentWriter = Annotated[Actor, staff(Permission.RESIDENTS_WRITE)]


def _resident_id(raw: str) -> uuid.UUID:
    return required_uuid(raw, message="Resident not found.", code="resident_not_found")


async def _resident_page(
    request: Request,
    session: AsyncSession,
    actor: Actor,
    resident_id: uuid.UUID,
    *,
    error: dict[str, Any] | None = None,
    form: dict[str, str] | None = None,
    form_name: str = "",
    status_code: int = 200,
) -> Response:
    shell = await console_shell(request, session, actor)
    person = await residents.get_resident(session, actor, resident_id=resident_id)
    contact = residents.contact_of(actor, person)
    links = await residents.houses_of_resident(
        session, actor, resident_id=resident_id, include_history=True
    )
    current = [link for link in links if link.relation.moved_out_on is None]
    registered_in = ""
    if person.community_id is not None and not current:
        try:
            registered_in = (
                await estate.get_community(session, actor, community_id=person.community_id)
            ).name
        except NotFound:
            registered_in = ""
    vehicles: dict[uuid.UUID, Vehicle] = {}
    for house_id in dict.fromkeys(link.house.id for link in links):
        found, _ = await residents.list_vehicles(
            session, actor, house_id=house_id, page=PageParams(limit=VEHICLE_PAGE_SIZE)
        )
        vehicles |= {v.id: v for v in found if v.resident_id == resident_id}
    return render(
        request,
        "estate/resident.html",
        shell
        | {
            "person": person,
            "contact": contact,
            "links": links,
            "current_links": current,
            "vehicles": list(vehicles.values()),
            "house_refs": {
                link.house.id: "-".join(
                    p for p in (link.building_no, link.unit_no, link.house.house_no) if p
                )
                for link in links
            },
            "relation_labels": RELATION_LABELS,
            "gender_labels": GENDER_LABELS,
            "registered_in": registered_in,
            "may_write": actor.can(Permission.RESIDENTS_WRITE),
            "may_see_contact": residents.may_see_contact(actor),
            "member_relations": list(Relation),
            "current_community_name": shell["current_community"].name
            if shell["current_community"]
            else "",
            "error": error,
            "form": form or {},
            "form_name": form_name,
        },
        status_code=status_code,
    )


@router.get("/console/residents/{resident_id}", name="console.resident")
async def resident_page(
    request: Request, actor: ResidentReader, session: StaffDb, resident_id: str
) -> Response:
    return await _resident_page(request, session, actor, _resident_id(resident_id))


@router.post("/console/residents/{resident_id}/vehicles", dependencies=[ConsoleCsrf])
async def add_resident_vehicle(
    request: Request,
    actor: ResidentWriter,
    session: StaffDb,
    resident_id: str,
    house_id: Annotated[str, Form(max_length=64)] = "",
    plate: Annotated[str, Form(max_length=20)] = "",
    brand: Annotated[str, Form(max_length=40)] = "",
    color: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Register a vehicle for a resident, in the community of one of their houses."""
    wanted = _resident_id(resident_id)
    await residents.get_resident(session, actor, resident_id=wanted)
    form = {"plate": plate, "house_id": house_id, "brand": brand, "color": color}
    try:
        house_key = optional_uuid(house_id)
        if house_key is None:
            raise ValidationFailed(errors=[FieldError("house_id", "Required.", "required")])
        if not plate.strip():
            raise ValidationFailed(errors=[FieldError("plate", "Required.", "required")])
        house = await estate.get_house(session, actor, house_id=house_key)
        async with session.begin_nested():
            await residents.register_vehicle(
                session,
                actor,
                community_id=house.community_id,
                plate=plate,
                house_id=house.id,
                resident_id=wanted,
                brand=brand.strip(),
                color=color.strip(),
            )
    except DomainError as exc:
        if isinstance(exc, NotFound) and exc.instance_code == "resident_not_found":
            raise
        return await _resident_page(
            request,
            session,
            actor,
            wanted,
            error=describe(exc),
            form=form,
            form_name="vehicle",
            status_code=exc.status,
        )
    return redirect(request, f"/console/residents/{wanted}#vehicles")


@router.post("/console/resident-links/{link_id}/move-out", dependencies=[ConsoleCsrf])
async def move_out(
    request: Request,
    actor: ResidentWriter,
    session: StaffDb,
    link_id: str,
    back: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """End a resident's relation to a house (迁出); the row stays as history."""
    wanted = optional_uuid(link_id)
    if wanted is None:
        raise NotFound("Not found.", code="link_not_found")
    link = await residents.move_out(session, actor, link_id=wanted)
    # Back to the page the button was on: the house's or the resident's.
    target = f"/console/residents/{link.resident_id}"
    if back == "house":
        target = f"/console/estate/houses/{link.house_id}"
    return redirect(request, target)


# --- console: managing a house ------------------------------------------------------------------

HouseWriter = Annotated[Actor, staff(Permission.ESTATE_WRITE)]


@router.post("/console/estate/houses/{house_id}/status", dependencies=[ConsoleCsrf])
async def change_house_status(
    request: Request,
    actor: HouseWriter,
    session: StaffDb,
    house_id: str,
    status: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    wanted = _house_id(house_id)
    try:
        if status not in HouseStatus._value2member_map_:
            raise ValidationFailed(errors=[FieldError("status", "Required.", "required")])
        async with session.begin_nested():
            await estate.update_house(
                session, actor, house_id=wanted, changes={"status": HouseStatus(status)}
            )
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        return await _house_page(
            request,
            session,
            actor,
            wanted,
            error=describe(exc),
            form_name="house",
            status_code=exc.status,
        )
    return redirect(request, f"/console/estate/houses/{wanted}")


@router.post("/console/estate/houses/{house_id}/archive", dependencies=[ConsoleCsrf])
async def archive_house(
    request: Request, actor: HouseWriter, session: StaffDb, house_id: str
) -> Response:
    await estate.archive_house(session, actor, house_id=_house_id(house_id))
    return redirect(request, "/console/estate")


@router.post("/console/estate/houses/{house_id}/delete", dependencies=[ConsoleCsrf])
async def delete_house(
    request: Request, actor: HouseWriter, session: StaffDb, house_id: str
) -> Response:
    """Delete a house entered by mistake; one with residents or bills is refused with why."""
    wanted = _house_id(house_id)
    try:
        async with session.begin_nested():
            await estate.delete_house(session, actor, house_id=wanted)
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        return await _house_page(
            request,
            session,
            actor,
            wanted,
            error=describe(exc),
            form_name="house",
            status_code=exc.status,
        )
    return redirect(request, "/console/estate")


@router.post("/console/estate/houses/{house_id}/residents", dependencies=[ConsoleCsrf])
async def add_house_resident(
    request: Request,
    actor: ResidentWriter,
    session: StaffDb,
    house_id: str,
    name: Annotated[str, Form(max_length=100)] = "",
    phone: Annotated[str, Form(max_length=32)] = "",
    relation: Annotated[str, Form(max_length=20)] = Relation.OWNER.value,
    lease_start: FormDate = "",
    lease_end: FormDate = "",
) -> Response:
    """Register a person and move them into this house (入住) in one step."""
    wanted = _house_id(house_id)
    form = {
        "name": name,
        "phone": phone,
        "relation": relation,
        "lease_start": lease_start,
        "lease_end": lease_end,
    }
    try:
        if not name.strip():
            raise ValidationFailed(errors=[FieldError("name", "Required.", "required")])
        chosen = Relation(relation) if relation in Relation._value2member_map_ else Relation.OWNER
        async with session.begin_nested():
            await residents.create_resident(
                session,
                actor,
                name=name.strip(),
                phone=phone.strip() or None,
                house_id=wanted,
                relation=chosen,
                lease_start=_date_or_none(lease_start),
                lease_end=_date_or_none(lease_end),
            )
    except DomainError as exc:
        if isinstance(exc, NotFound) and exc.instance_code == "house_not_found":
            raise
        return await _house_page(
            request,
            session,
            actor,
            wanted,
            error=describe(exc),
            form=form,
            form_name="member",
            status_code=exc.status,
        )
    return redirect(request, f"/console/estate/houses/{wanted}")


# --- console: community profile (小区档案, 物业费标准) ---------------------------------------

PROFILE_PATH = "/console/estate/profile"
HOUSE_TYPE_LABELS = {
    HouseType.RESIDENCE.value: N_("Residence"),
    HouseType.SHOP.value: N_("Shop"),
    HouseType.OFFICE.value: N_("Office"),
    HouseType.STORAGE.value: N_("Storage room"),
}
PROFILE_MESSAGES = {
    "name": N_("Write the name, at most 200 characters."),
    "address": N_("At most 400 characters."),
    "timezone": N_("Unknown time zone, e.g. Asia/Shanghai."),
    "area_m2": N_("A positive area in m², at most 2 decimals."),
    "contact_phone": N_("Digits, spaces, + and - only."),
    "rate": N_("A non-negative price in yuan, at most 4 decimals."),
    "billing_day": N_("A day from 1 to 28."),
    "due_days": N_("From 0 to 120 days."),
}


def _profile_form(community: Any) -> dict[str, str]:
    fees = community.fee_settings or {}
    rates = fees.get("rate_per_m2", {})
    form = {
        "name": community.name,
        "address": community.address,
        "timezone": community.timezone,
        "area_m2": str(community.area_m2) if community.area_m2 is not None else "",
        "contact_phone": community.contact_phone,
        "billing_day": str(fees.get("billing_day", 1)),
        "due_days": str(fees.get("due_days", 15)),
    }
    return form | {f"rate_{t}": str(rates.get(t, "")) for t in HOUSE_TYPE_LABELS}


async def _profile_page(
    request: Request,
    session: AsyncSession,
    actor: Actor,
    *,
    form: dict[str, str] | None = None,
    error: dict[str, Any] | None = None,
    notice: str = "",
    status_code: int = 200,
) -> Response:
    shell = await console_shell(request, session, actor)
    current = shell["current_community"]
    community = (
        await estate.get_community(session, actor, community_id=current.id) if current else None
    )
    return render(
        request,
        "estate/profile.html",
        shell
        | {
            "community": community,
            "form": form or (_profile_form(community) if community else {}),
            "house_type_labels": HOUSE_TYPE_LABELS,
            "may_write": actor.can(Permission.ESTATE_WRITE),
            "error": error,
            "notice": notice,
        },
        status_code=status_code,
    )


@router.get(PROFILE_PATH, name="console.community_profile")
async def profile_page(
    request: Request,
    actor: EstateReader,
    session: StaffDb,
    saved: Annotated[str, Query(max_length=4)] = "",
) -> Response:
    return await _profile_page(request, session, actor, notice=N_("Saved.") if saved == "1" else "")


def _profile_failed(exc: ValidationError) -> ValidationFailed:
    fields: dict[str, FieldError] = {}
    for problem in exc.errors():
        loc = [str(p) for p in problem["loc"]]
        if loc[:2] == ["fee_settings", "rate_per_m2"]:
            name, message = "rates", PROFILE_MESSAGES["rate"]
        elif loc[:1] == ["fee_settings"] and len(loc) > 1:
            name, message = loc[1], PROFILE_MESSAGES.get(loc[1], PROFILE_MESSAGES["rate"])
        else:
            name = loc[0] if loc else ""
            message = PROFILE_MESSAGES.get(name, N_("Check this value."))
        fields.setdefault(name, FieldError(name, message, "invalid"))
    return ValidationFailed(errors=list(fields.values()))


@router.post(PROFILE_PATH, dependencies=[ConsoleCsrf])
async def update_profile(
    request: Request,
    actor: EstateWriter,
    session: StaffDb,
    name: Annotated[str, Form(max_length=200)] = "",
    address: Annotated[str, Form(max_length=400)] = "",
    timezone: Annotated[str, Form(max_length=64)] = "",
    area_m2: Annotated[str, Form(max_length=20)] = "",
    contact_phone: Annotated[str, Form(max_length=32)] = "",
    billing_day: Annotated[str, Form(max_length=4)] = "1",
    due_days: Annotated[str, Form(max_length=4)] = "15",
    rate_residence: Annotated[str, Form(max_length=20)] = "",
    rate_shop: Annotated[str, Form(max_length=20)] = "",
    rate_office: Annotated[str, Form(max_length=20)] = "",
    rate_storage: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Address, area, time zone and property-fee settings of the current community."""
    rates = {
        "residence": rate_residence,
        "shop": rate_shop,
        "office": rate_office,
        "storage": rate_storage,
    }
    form = {
        "name": name,
        "address": address,
        "timezone": timezone,
        "area_m2": area_m2,
        "contact_phone": contact_phone,
        "billing_day": billing_day,
        "due_days": due_days,
    } | {f"rate_{k}": v for k, v in rates.items()}
    try:
        community_id = await _current_community_id(request, session, actor)
        try:
            body = CommunityProfileUpdate.model_validate(
                {
                    "name": name.strip() or None,
                    "address": address.strip(),
                    "timezone": timezone.strip() or None,
                    "area_m2": area_m2.strip() or None,
                    "contact_phone": contact_phone.strip(),
                    "fee_settings": {
                        "rate_per_m2": {k: v.strip() for k, v in rates.items() if v.strip()},
                        "billing_day": billing_day.strip() or 1,
                        "due_days": due_days.strip() or 15,
                    },
                }
            )
        except ValidationError as exc:
            raise _profile_failed(exc) from exc
        changes = body.model_dump(exclude_none=True, mode="json")
        if body.area_m2 is not None:
            changes["area_m2"] = body.area_m2
        async with session.begin_nested():
            await estate.update_community_profile(
                session, actor, community_id=community_id, changes=changes
            )
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        return await _profile_page(
            request, session, actor, form=form, error=describe(exc), status_code=exc.status
        )
    return redirect(request, PROFILE_PATH + "?saved=1")


# --- console: buildings, units and houses one by one ---------------------------------------------

ESTATE_MESSAGES = {
    "building_no": N_("Letters, digits and dashes, at most 20 characters."),
    "unit_no": N_("Letters, digits and dashes, at most 20 characters."),
    "house_no": N_("Letters, digits and dashes, at most 20 characters."),
    "floors_above": N_("A whole number from 1 to 200."),
    "floor": N_("A whole number from -20 to 200."),
    "building_area": N_("A positive area in m², at most 2 decimals."),
    "inner_area": N_("A positive area in m², at most 2 decimals."),
    "name": N_("At most 100 characters."),
}


def _estate_failed(exc: ValidationError) -> ValidationFailed:
    fields: dict[str, FieldError] = {}
    for problem in exc.errors():
        name = str(problem["loc"][0]) if problem["loc"] else ""
        message = ESTATE_MESSAGES.get(name, N_("Check this value."))
        fields.setdefault(name, FieldError(name, message, "invalid"))
    return ValidationFailed(errors=list(fields.values()))


def _blank_none(value: str) -> str | None:
    return value.strip() or None


@router.post("/console/estate/buildings", dependencies=[ConsoleCsrf])
async def create_building(
    request: Request,
    actor: EstateWriter,
    session: StaffDb,
    building_no: Annotated[str, Form(max_length=20)] = "",
    name: Annotated[str, Form(max_length=100)] = "",
    floors_above: Annotated[str, Form(max_length=4)] = "",
) -> Response:
    form = {"building_no": building_no, "name": name, "floors_above": floors_above}
    try:
        community_id = await _current_community_id(request, session, actor)
        try:
            body = BuildingCreate.model_validate(
                {
                    "community_id": community_id,
                    "building_no": building_no.strip(),
                    "name": name.strip(),
                    "floors_above": _blank_none(floors_above),
                }
            )
        except ValidationError as exc:
            raise _estate_failed(exc) from exc
        async with session.begin_nested():
            created = await estate.create_building(session, actor, **body.model_dump())
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        return await _estate_page(
            request,
            session,
            actor,
            error=describe(exc),
            form_name="building",
            form=form,
            status_code=exc.status,
        )
    return redirect(request, f"/console/estate?building={created.id}")


def _building_id(raw: str) -> uuid.UUID:
    return required_uuid(raw, message="Building not found.", code="building_not_found")


@router.post("/console/estate/buildings/{building_id}/units", dependencies=[ConsoleCsrf])
async def create_unit(
    request: Request,
    actor: EstateWriter,
    session: StaffDb,
    building_id: str,
    unit_no: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    wanted = _building_id(building_id)
    await estate.get_building(session, actor, building_id=wanted)
    try:
        try:
            body = UnitCreate.model_validate({"unit_no": unit_no.strip()})
        except ValidationError as exc:
            raise _estate_failed(exc) from exc
        async with session.begin_nested():
            await estate.create_unit(session, actor, building_id=wanted, unit_no=body.unit_no)
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        return await _estate_page(
            request,
            session,
            actor,
            open_building=wanted,
            error=describe(exc),
            form_name="unit",
            form={"unit_no": unit_no},
            status_code=exc.status,
        )
    return redirect(request, f"/console/estate?building={wanted}")


@router.post("/console/estate/buildings/{building_id}/houses", dependencies=[ConsoleCsrf])
async def create_house(
    request: Request,
    actor: EstateWriter,
    session: StaffDb,
    building_id: str,
    unit_id: Annotated[str, Form(max_length=64)] = "",
    house_no: Annotated[str, Form(max_length=20)] = "",
    floor: Annotated[str, Form(max_length=4)] = "",
    building_area: Annotated[str, Form(max_length=20)] = "",
    inner_area: Annotated[str, Form(max_length=20)] = "",
    house_type: Annotated[str, Form(max_length=20)] = HouseType.RESIDENCE.value,
    status: Annotated[str, Form(max_length=20)] = HouseStatus.DELIVERED.value,
) -> Response:
    wanted = _building_id(building_id)
    await estate.get_building(session, actor, building_id=wanted)
    form = {
        "unit_id": unit_id,
        "house_no": house_no,
        "floor": floor,
        "building_area": building_area,
        "inner_area": inner_area,
        "house_type": house_type,
        "status": status,
    }
    try:
        try:
            body = HouseCreate.model_validate(
                {
                    "building_id": wanted,
                    "unit_id": optional_uuid(unit_id),
                    "house_no": house_no.strip(),
                    "floor": _blank_none(floor),
                    "building_area": building_area.strip(),
                    "inner_area": _blank_none(inner_area),
                    "house_type": house_type,
                    "status": status,
                }
            )
        except ValidationError as exc:
            raise _estate_failed(exc) from exc
        async with session.begin_nested():
            created = await estate.create_house(session, actor, **body.model_dump())
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        return await _estate_page(
            request,
            session,
            actor,
            open_building=wanted,
            error=describe(exc),
            form_name="house",
            form=form,
            status_code=exc.status,
        )
    return redirect(request, f"/console/estate/houses/{created.id}")


# --- console: editing a resident ----------------------------------------------------------------

RESIDENT_MESSAGES = {
    "name": N_("Write the name, at most 100 characters."),
    "birth_date": N_("Write a date as 2024-03-01."),
    "tags": N_("At most 20 tags of 32 characters."),
}


def _tags(raw: str) -> list[str]:
    normalized = raw.replace("，", ",").replace("、", ",")
    return list(dict.fromkeys(t.strip() for t in normalized.split(",") if t.strip()))


@router.post("/console/residents/{resident_id}", dependencies=[ConsoleCsrf])
async def update_resident(
    request: Request,
    actor: ResidentWriter,
    session: StaffDb,
    resident_id: str,
    name: Annotated[str, Form(max_length=100)] = "",
    gender: Annotated[str, Form(max_length=10)] = "",
    birth_date: FormDate = "",
    tags: Annotated[str, Form(max_length=800)] = "",
    phone: Annotated[str | None, Form(max_length=32)] = None,
    id_card: Annotated[str | None, Form(max_length=32)] = None,
) -> Response:
    """Profile of a resident; phone and ID number only from staff who may see them."""
    wanted = _resident_id(resident_id)
    await residents.get_resident(session, actor, resident_id=wanted)
    form = {"name": name, "gender": gender, "birth_date": birth_date, "tags": tags}
    try:
        errors = []
        born = _date_or_none(birth_date)
        if not name.strip():
            errors.append(FieldError("name", RESIDENT_MESSAGES["name"], "required"))
        if birth_date.strip() and born is None:
            errors.append(FieldError("birth_date", RESIDENT_MESSAGES["birth_date"], "invalid"))
        chosen_tags = _tags(tags)
        if len(chosen_tags) > 20 or any(len(t) > 32 for t in chosen_tags):
            errors.append(FieldError("tags", RESIDENT_MESSAGES["tags"], "invalid"))
        if errors:
            raise ValidationFailed(errors=errors)
        changes: dict[str, Any] = {
            "name": name.strip(),
            "gender": Gender(gender) if gender in GENDER_LABELS else None,
            "birth_date": born,
            "tags": chosen_tags,
        }
        if residents.may_see_contact(actor):
            if phone is not None:
                changes["phone"] = phone.strip() or None
            if id_card is not None:
                changes["id_card"] = id_card.strip() or None
        async with session.begin_nested():
            await residents.update_resident(session, actor, resident_id=wanted, changes=changes)
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        return await _resident_page(
            request,
            session,
            actor,
            wanted,
            error=describe(exc),
            form=form,
            form_name="profile",
            status_code=exc.status,
        )
    return redirect(request, f"/console/residents/{wanted}")


@router.post("/console/residents/{resident_id}/move-in", dependencies=[ConsoleCsrf])
async def move_in(
    request: Request,
    actor: ResidentWriter,
    session: StaffDb,
    resident_id: str,
    house: Annotated[str, Form(max_length=40)] = "",
    relation: Annotated[str, Form(max_length=20)] = Relation.OWNER.value,
    lease_start: FormDate = "",
    lease_end: FormDate = "",
) -> Response:
    """Link a resident to another house of the current community (入住)."""
    wanted = _resident_id(resident_id)
    await residents.get_resident(session, actor, resident_id=wanted)
    form = {
        "house": house,
        "relation": relation,
        "lease_start": lease_start,
        "lease_end": lease_end,
    }
    try:
        community_id = await _current_community_id(request, session, actor)
        house_id = await estate.house_by_ref(
            session, actor, community_id=community_id, raw=house, field_name="house"
        )
        chosen = Relation(relation) if relation in Relation._value2member_map_ else Relation.OWNER
        async with session.begin_nested():
            await residents.move_in(
                session,
                actor,
                resident_id=wanted,
                house_id=house_id,
                relation=chosen,
                lease_start=_date_or_none(lease_start),
                lease_end=_date_or_none(lease_end),
            )
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        return await _resident_page(
            request,
            session,
            actor,
            wanted,
            error=describe(exc),
            form=form,
            form_name="move",
            status_code=exc.status,
        )
    return redirect(request, f"/console/residents/{wanted}")
