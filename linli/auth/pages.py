"""Console pages of staff management (员工) and the audit log (审计日志).

Thin like the JSON API in :mod:`linli.auth.api`: the same service functions do the
work and the scoping (company through RLS, granted communities and "nobody hands out
more than they hold" in the service); these routes turn forms into calls and answers
into pages. Every route declares its permission, as console pages do.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from linli.auth import service
from linli.auth.actor import Actor
from linli.auth.deps import DeclaredRoute
from linli.auth.permissions import Permission, Role
from linli.auth.schemas import PASSWORD_MAX, PasswordReset, StaffCreate
from linli.core.errors import DomainError, FieldError, NotFound, ValidationFailed
from linli.core.pagination import PageParams
from linli.web import nav
from linli.web.forms import optional_uuid, required_uuid
from linli.web.nav import N_
from linli.web.pages import ROLE_LABELS, StaffDb, console_shell, staff
from linli.web.session import ConsoleCsrf, describe
from linli.web.templating import DEFAULT_TZ, redirect, render

router = APIRouter(route_class=DeclaredRoute, include_in_schema=False)

STAFF_PATH = "/console/staff"
AUDIT_PATH = "/console/audit"
STAFF_PAGE_SIZE = 30
AUDIT_PAGE_SIZE = 50

StaffReader = Annotated[Actor, staff(Permission.STAFF_READ)]
StaffWriter = Annotated[Actor, staff(Permission.STAFF_WRITE)]
AuditReader = Annotated[Actor, staff(Permission.AUDIT_READ)]
FormText = Annotated[str, Form(max_length=200)]
FormPassword = Annotated[str, Form(max_length=PASSWORD_MAX)]
FormIds = Annotated[list[str], Form(max_length=5000)]
FormRoles = Annotated[list[str], Form(max_length=20)]

# What the page says about a field the form got wrong (the schema's own messages are
# pydantic's English, not ours).
FIELD_MESSAGES = {
    "username": N_("Use 3 to 64 letters, digits, dots, dashes or underscores."),
    "display_name": N_("Write the name, at most 100 characters."),
    "password": N_("The password needs at least 10 characters."),
    "phone": N_("Not a valid mainland mobile number."),
    "roles": N_("Choose at least one role."),
    "community_ids": N_("No such community in this company."),
}

nav.register(nav.NavItem("staff", N_("Staff"), STAFF_PATH, Permission.STAFF_READ, "badge", 80))
nav.register(nav.NavItem("audit", N_("Audit log"), AUDIT_PATH, Permission.AUDIT_READ, "list", 90))


def _staff_id(raw: str) -> uuid.UUID:
    return required_uuid(raw, message="Staff member not found.", code="staff_not_found")


def _form_failed(exc: ValidationError) -> ValidationFailed:
    """The form's schema refusal as the domain error the page shows next to the fields."""
    fields: dict[str, FieldError] = {}
    for problem in exc.errors():
        name = str(problem["loc"][0]) if problem["loc"] else ""
        message = FIELD_MESSAGES.get(name)
        if message is not None and name not in fields:
            fields[name] = FieldError(name, message, "invalid")
    return ValidationFailed(errors=list(fields.values()))


def _chosen_roles(raw: list[str]) -> list[str]:
    # An unknown value is dropped rather than refused: the checkboxes only offer real roles,
    # and "no role" is refused by the schema with a message the person can act on.
    names = {role.value for role in Role}
    return [r for r in dict.fromkeys(raw) if r in names]


def _chosen_communities(raw: list[str]) -> list[uuid.UUID]:
    ids = [optional_uuid(c) for c in dict.fromkeys(raw)]
    if any(i is None for i in ids):
        raise ValidationFailed(
            errors=[FieldError("community_ids", FIELD_MESSAGES["community_ids"], "invalid")]
        )
    return [i for i in ids if i is not None]


def _role_choices() -> list[tuple[str, str]]:
    return [(role.value, ROLE_LABELS[role]) for role in Role]


# --- staff: list and create ---------------------------------------------------------------------


async def _staff_list_page(
    request: Request,
    session: AsyncSession,
    actor: Actor,
    *,
    cursor: str | None = None,
    error: dict[str, Any] | None = None,
    form: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    shell = await console_shell(request, session, actor)
    members, next_cursor = await service.list_staff(
        session, actor, page=PageParams(cursor=cursor, limit=STAFF_PAGE_SIZE)
    )
    return render(
        request,
        "staff/list.html",
        shell
        | {
            "members": members,
            "next_cursor": next_cursor,
            "first_page": cursor is None,
            "community_names": {c.id: c.name for c in shell["communities"]},
            "role_names": dict(_role_choices()),
            "role_choices": _role_choices(),
            "may_write": actor.can(Permission.STAFF_WRITE),
            "error": error,
            "form": form or {"roles": [], "community_ids": []},
        },
        status_code=status_code,
    )


@router.get(STAFF_PATH, name="console.staff")
async def staff_page(
    request: Request,
    actor: StaffReader,
    session: StaffDb,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    return await _staff_list_page(request, session, actor, cursor=cursor)


@router.post(STAFF_PATH, dependencies=[ConsoleCsrf])
async def create_staff(
    request: Request,
    actor: StaffWriter,
    session: StaffDb,
    username: FormText = "",
    display_name: FormText = "",
    phone: Annotated[str, Form(max_length=32)] = "",
    password: FormPassword = "",
    roles: FormRoles | None = None,
    community_ids: FormIds | None = None,
    all_communities: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    chosen_roles = _chosen_roles(roles or [])
    form = {
        "username": username,
        "display_name": display_name,
        "phone": phone,
        "roles": chosen_roles,
        "community_ids": list(community_ids or []),
        "all_communities": bool(all_communities),
    }
    try:
        try:
            body = StaffCreate.model_validate(
                {
                    "username": username.strip(),
                    "display_name": display_name.strip(),
                    "password": password,
                    "phone": phone.strip() or None,
                    "roles": chosen_roles,
                    "all_communities": bool(all_communities),
                    "community_ids": _chosen_communities(community_ids or []),
                }
            )
        except ValidationError as exc:
            raise _form_failed(exc) from exc
        # A savepoint: the page's transaction commits the rendered refusal, so a refusal
        # half-way through (say, a taken username after the grants check) must leave nothing.
        async with session.begin_nested():
            user = await service.create_staff(session, actor, **body.model_dump())
    except DomainError as exc:
        return await _staff_list_page(
            request, session, actor, error=describe(exc), form=form, status_code=exc.status
        )
    return redirect(request, f"{STAFF_PATH}/{user.id}")


# --- staff: one member --------------------------------------------------------------------------


async def _member_page(
    request: Request,
    session: AsyncSession,
    actor: Actor,
    staff_user_id: uuid.UUID,
    *,
    error: dict[str, Any] | None = None,
    notice: str = "",
    status_code: int = 200,
) -> Response:
    shell = await console_shell(request, session, actor)
    member = await service.get_staff(session, actor, staff_user_id=staff_user_id)
    return render(
        request,
        "staff/member.html",
        shell
        | {
            "member": member,
            "community_names": {c.id: c.name for c in shell["communities"]},
            "role_names": dict(_role_choices()),
            "role_choices": _role_choices(),
            "may_write": actor.can(Permission.STAFF_WRITE),
            "is_self": member.user.id == actor.id,
            "error": error,
            "notice": notice,
        },
        status_code=status_code,
    )


@router.get(STAFF_PATH + "/{staff_user_id}", name="console.staff_member")
async def member_page(
    request: Request,
    actor: StaffReader,
    session: StaffDb,
    staff_user_id: str,
    saved: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    notices = {"1": N_("Saved."), "password": N_("The new password is set.")}
    return await _member_page(
        request, session, actor, _staff_id(staff_user_id), notice=notices.get(saved, "")
    )


@router.post(STAFF_PATH + "/{staff_user_id}", dependencies=[ConsoleCsrf])
async def update_staff(
    request: Request,
    actor: StaffWriter,
    session: StaffDb,
    staff_user_id: str,
    display_name: FormText = "",
    roles: FormRoles | None = None,
    community_ids: FormIds | None = None,
    all_communities: Annotated[str, Form(max_length=10)] = "",
    is_active: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    wanted = _staff_id(staff_user_id)
    try:
        chosen_roles = _chosen_roles(roles or [])
        if not chosen_roles:
            raise ValidationFailed(errors=[FieldError("roles", FIELD_MESSAGES["roles"], "invalid")])
        name = display_name.strip()
        if len(name) > 100:
            raise ValidationFailed(
                errors=[FieldError("display_name", FIELD_MESSAGES["display_name"], "invalid")]
            )
        async with session.begin_nested():
            await service.update_staff(
                session,
                actor,
                staff_user_id=wanted,
                display_name=name or None,
                roles=chosen_roles,
                all_communities=bool(all_communities),
                community_ids=_chosen_communities(community_ids or []),
                is_active=bool(is_active),
            )
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        return await _member_page(
            request, session, actor, wanted, error=describe(exc), status_code=exc.status
        )
    return redirect(request, f"{STAFF_PATH}/{wanted}?saved=1")


@router.post(STAFF_PATH + "/{staff_user_id}/password", dependencies=[ConsoleCsrf])
async def reset_password(
    request: Request,
    actor: StaffWriter,
    session: StaffDb,
    staff_user_id: str,
    password: FormPassword = "",
) -> Response:
    wanted = _staff_id(staff_user_id)
    try:
        try:
            body = PasswordReset.model_validate({"password": password})
        except ValidationError as exc:
            raise _form_failed(exc) from exc
        async with session.begin_nested():
            await service.reset_staff_password(
                session, actor, staff_user_id=wanted, password=body.password
            )
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        return await _member_page(
            request, session, actor, wanted, error=describe(exc), status_code=exc.status
        )
    return redirect(request, f"{STAFF_PATH}/{wanted}?saved=password")


# --- audit log ----------------------------------------------------------------------------------


@router.get(AUDIT_PATH, name="console.audit")
async def audit_page(
    request: Request,
    actor: AuditReader,
    session: StaffDb,
    action: Annotated[str, Query(max_length=80)] = "",
    principal: Annotated[str, Query(max_length=64)] = "",
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    shell = await console_shell(request, session, actor)
    action, principal = action.strip(), principal.strip()
    community = shell["current_community"]
    entries, next_cursor = await service.list_audit_entries(
        session,
        actor,
        page=PageParams(cursor=cursor, limit=AUDIT_PAGE_SIZE),
        action=action or None,
        principal_id=principal or None,
    )
    query = {"action": action, "principal": principal}
    return render(
        request,
        "audit/list.html",
        shell
        | {
            "entries": entries,
            "next_cursor": next_cursor,
            "first_page": cursor is None,
            "filters": query,
            "filter_query": urlencode({k: v for k, v in query.items() if v}),
            "tz": community.timezone if community is not None else DEFAULT_TZ,
            "may_read_staff": actor.can(Permission.STAFF_READ),
        },
    )
