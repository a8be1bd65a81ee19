"""Routes of staff and operator sign-in, staff management, "who am I" and the audit log.

Thin by design: parse, call :mod:`linli.auth.service`, shape. Page concerns
(cookies, CSRF) live with the web shell, which calls the same service functions.
"""

from __future__ import annotations

import uuid
from enum import Enum
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from linli.auth import service
from linli.auth.actor import Actor
from linli.auth.deps import ALL_KINDS, Authorizer, DbSession, DeclaredRoute, client_ip, public
from linli.auth.permissions import Permission, Role
from linli.auth.schemas import (
    AuditEntryRead,
    MeRead,
    OperatorLogin,
    PasswordReset,
    RefreshRequest,
    StaffCreate,
    StaffLogin,
    StaffRead,
    StaffUpdate,
    TokenResponse,
)
from linli.core.pagination import Page, PageParams, page_params

router = APIRouter(prefix="/api/v1", route_class=DeclaredRoute)

Anyone = Annotated[Actor | None, Depends(public)]
SignedIn = Annotated[Actor, Depends(Authorizer(Permission.AUTHENTICATED, kinds=ALL_KINDS))]
StaffReader = Annotated[Actor, Depends(Authorizer(Permission.STAFF_READ))]
StaffWriter = Annotated[Actor, Depends(Authorizer(Permission.STAFF_WRITE))]
AuditReader = Annotated[Actor, Depends(Authorizer(Permission.AUDIT_READ))]
Paging = Annotated[PageParams, Depends(page_params)]

SIGN_IN: list[str | Enum] = ["sign-in"]
STAFF: list[str | Enum] = ["staff"]
# Audit filters are ids and dotted action names; anything else cannot match.
AUDIT_KEY = r"^[A-Za-z0-9_.:-]+$"


def _request_id(request: Request) -> str | None:
    value = getattr(request.state, "request_id", None)
    return str(value) if value else None


def _no_store(response: Response) -> None:
    # RFC 6749 §5.1: token answers must not be cached by anything in between.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"


@router.post(
    "/auth/staff/token",
    response_model=TokenResponse,
    tags=SIGN_IN,
    summary="Staff sign-in: company code + username or phone + password",
)
async def staff_sign_in(
    _: Anyone, session: DbSession, body: StaffLogin, request: Request, response: Response
) -> TokenResponse:
    tokens = await service.login_staff(
        session,
        company=body.company,
        login=body.login,
        password=body.password,
        ip=client_ip(request),
        request_id=_request_id(request),
    )
    _no_store(response)
    return TokenResponse.of(tokens)


@router.post(
    "/auth/staff/refresh",
    response_model=TokenResponse,
    tags=SIGN_IN,
    summary="Rotate a staff refresh token (a reused one ends the whole session)",
)
async def staff_refresh(
    _: Anyone, session: DbSession, body: RefreshRequest, request: Request, response: Response
) -> TokenResponse:
    tokens = await service.refresh_staff(
        session,
        refresh_token=body.refresh_token,
        ip=client_ip(request),
        request_id=_request_id(request),
    )
    _no_store(response)
    return TokenResponse.of(tokens)


@router.post(
    "/auth/staff/logout",
    status_code=204,
    tags=SIGN_IN,
    summary="End the session of a refresh token",
)
async def staff_logout(
    _: Anyone, session: DbSession, body: RefreshRequest, request: Request
) -> Response:
    await service.logout_staff(
        session,
        refresh_token=body.refresh_token,
        ip=client_ip(request),
        request_id=_request_id(request),
    )
    return Response(status_code=204)


@router.post(
    "/auth/operator/token",
    response_model=TokenResponse,
    tags=SIGN_IN,
    summary="Platform operator sign-in (no refresh token)",
)
async def operator_sign_in(
    _: Anyone, session: DbSession, body: OperatorLogin, request: Request, response: Response
) -> TokenResponse:
    tokens = await service.login_operator(
        session,
        username=body.username,
        password=body.password,
        ip=client_ip(request),
        request_id=_request_id(request),
    )
    _no_store(response)
    return TokenResponse.of(tokens)


@router.get(
    "/auth/me",
    response_model=MeRead,
    tags=SIGN_IN,
    summary="Who the token names, and what they may do",
)
async def me(actor: SignedIn, session: DbSession) -> MeRead:
    return MeRead.of(await service.who_am_i(session, actor))


@router.get(
    "/staff-users", response_model=Page[StaffRead], tags=STAFF, summary="Staff logins I may see"
)
async def list_staff(
    actor: StaffReader,
    session: DbSession,
    page: Paging,
    active: Annotated[
        bool | None, Query(description="only active (true) or inactive (false)")
    ] = None,
    role: Annotated[Role | None, Query(description="only staff holding this role")] = None,
) -> Page[StaffRead]:
    rows, cursor = await service.list_staff(session, actor, page=page, active=active, role=role)
    return Page[StaffRead](items=[StaffRead.of(r) for r in rows], next_cursor=cursor)


@router.get("/staff-users/{staff_user_id}", response_model=StaffRead, tags=STAFF)
async def get_staff(actor: StaffReader, session: DbSession, staff_user_id: uuid.UUID) -> StaffRead:
    return StaffRead.of(await service.get_staff(session, actor, staff_user_id=staff_user_id))


@router.post("/staff-users", response_model=StaffRead, status_code=201, tags=STAFF)
async def create_staff(actor: StaffWriter, session: DbSession, body: StaffCreate) -> StaffRead:
    user = await service.create_staff(session, actor, **body.model_dump())
    return StaffRead.of(await service.get_staff(session, actor, staff_user_id=user.id))


@router.patch(
    "/staff-users/{staff_user_id}",
    response_model=StaffRead,
    tags=STAFF,
    summary="Change a staff login; changing roles, communities or active ends their sessions",
)
async def update_staff(
    actor: StaffWriter, session: DbSession, staff_user_id: uuid.UUID, body: StaffUpdate
) -> StaffRead:
    member = await service.update_staff(
        session, actor, staff_user_id=staff_user_id, **body.changes()
    )
    return StaffRead.of(member)


@router.post(
    "/staff-users/{staff_user_id}/password",
    status_code=204,
    tags=STAFF,
    summary="Set a new password; lifts a lock-out and ends their sessions",
)
async def reset_staff_password(
    actor: StaffWriter, session: DbSession, staff_user_id: uuid.UUID, body: PasswordReset
) -> Response:
    await service.reset_staff_password(
        session, actor, staff_user_id=staff_user_id, password=body.password
    )
    return Response(status_code=204)


@router.get(
    "/audit",
    response_model=Page[AuditEntryRead],
    tags=["audit"],
    summary="The audit trail I may read (my communities', or the company's), newest first",
)
async def list_audit(
    actor: AuditReader,
    session: DbSession,
    page: Paging,
    action: Annotated[
        str | None, Query(max_length=80, pattern=AUDIT_KEY, description="e.g. staff.login")
    ] = None,
    principal_id: Annotated[str | None, Query(max_length=64, pattern=AUDIT_KEY)] = None,
    target_id: Annotated[str | None, Query(max_length=64, pattern=AUDIT_KEY)] = None,
) -> Page[AuditEntryRead]:
    rows, cursor = await service.list_audit_entries(
        session, actor, page=page, action=action, principal_id=principal_id, target_id=target_id
    )
    return Page[AuditEntryRead].of(rows, cursor)
