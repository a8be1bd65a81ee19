"""Console and portal pages of the estate registry: tree, houses, residents, claims, my homes.

Thin like every page module: the estate and residents services do the work and the
scoping (company through RLS, granted communities through ``community_scope``); these
routes turn query strings and forms into service calls and answers into pages.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from linli.auth.actor import Actor
from linli.auth.deps import DeclaredRoute
from linli.auth.permissions import Permission
from linli.core.errors import DomainError, NotFound
from linli.core.pagination import PageParams
from linli.db.engine import set_tenant
from linli.estate import service as estate
from linli.estate.models import House
from linli.residents import service as residents
from linli.residents.models import ClaimStatus, HouseClaim, Relation
from linli.web import nav
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


def _uuid_or_none(raw: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw) if raw else None
    except ValueError:
        return None


# --- console: estate ----------------------------------------------------------------------------


@router.get("/console/estate", name="console.estate")
async def estate_page(
    request: Request,
    actor: Annotated[Actor, staff(Permission.ESTATE_READ)],
    session: StaffDb,
    house: Annotated[str, Query(max_length=40)] = "",
    building: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    shell = await console_shell(request, session, actor)
    community = shell["current_community"]
    counts = await estate.community_counts(session, actor)
    tree: list[estate.BuildingNode] = []
    open_building = _uuid_or_none(building)
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
        },
    )


@router.get("/console/estate/houses/{house_id}", name="console.house")
async def house_page(
    request: Request,
    actor: Annotated[Actor, staff(Permission.ESTATE_READ)],
    session: StaffDb,
    house_id: str,
) -> Response:
    wanted = _uuid_or_none(house_id)
    if wanted is None:
        raise NotFound("House not found.", code="house_not_found")
    shell = await console_shell(request, session, actor)
    label = await _label(session, actor, await estate.get_house(session, actor, house_id=wanted))
    members: list[dict[str, Any]] = []
    if actor.can(Permission.RESIDENTS_READ):
        for link, person in await residents.house_members(session, actor, house_id=wanted):
            contact = residents.contact_of(actor, person)
            members.append({"link": link, "resident": person, "phone": contact.phone})
    return render(
        request,
        "estate/house.html",
        shell
        | {
            "label": label,
            "members": members,
            "relation_labels": RELATION_LABELS,
            "status_labels": STATUS_LABELS,
        },
    )


# --- console: residents -------------------------------------------------------------------------


@router.get("/console/residents", name="console.residents")
async def residents_page(
    request: Request,
    actor: Annotated[Actor, staff(Permission.RESIDENTS_READ)],
    session: StaffDb,
    q: Annotated[str, Query(max_length=40)] = "",
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    shell = await console_shell(request, session, actor)
    query = q.strip()
    # Digits (with spaces, dashes or +86) are a phone; anything else is a name prefix.
    digits = query.replace(" ", "").replace("-", "").removeprefix("+")
    search = (
        residents.ResidentSearch(phone=query)
        if digits.isdigit() and len(digits) >= 11
        else residents.ResidentSearch(name=query or None)
    )
    error: dict[str, Any] | None = None
    status = 200
    rows: list[dict[str, Any]] = []
    next_cursor: str | None = None
    try:
        found, next_cursor = await residents.search_residents(
            session, actor, search=search, page=PageParams(cursor=cursor, limit=RESIDENT_PAGE_SIZE)
        )
    except DomainError as exc:
        error, found, status = describe(exc), [], exc.status
    for person in found:
        contact = residents.contact_of(actor, person)
        rows.append({"resident": person, "phone": contact.phone, "masked": contact.masked})
    return render(
        request,
        "estate/residents.html",
        shell
        | {
            "rows": rows,
            "query": query,
            "next_cursor": next_cursor,
            "error": error,
            "masked": not residents.may_see_contact(actor),
        },
        status_code=status,
    )


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
    wanted = _uuid_or_none(raw)
    if wanted is None:
        raise NotFound("Claim not found.", code="claim_not_found")
    return wanted


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
    house, company = _uuid_or_none(house_id), _uuid_or_none(company_id)
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
