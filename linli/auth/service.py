"""Staff and operator accounts, sign-in and tokens: the only place their rules live.

Residents sign in through :mod:`linli.auth.residents`.

Sign-in failures are written in a transaction of their own (:func:`unit_of_work`
inside the service). The caller's unit of work rolls back when we raise, and a
failed attempt must still count towards lock-out and leave an audit row; this is
the one deliberate exception to "services never commit".
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import ipaddress
import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

import structlog
from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    any_,
    delete,
    exists,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from linli.auth.actor import Actor, PrincipalKind
from linli.auth.models import StaffCommunityGrant, StaffRefreshToken, StaffUser
from linli.auth.passwords import DUMMY_HASH, hash_password, needs_rehash, verify_password
from linli.auth.permissions import Permission, Role, permissions_of
from linli.auth.tokens import (
    IssuedTokens,
    hash_secret,
    issue_access_token,
    new_refresh_secret,
    reusable_successor,
)
from linli.config import get_settings
from linli.core import audit, crypto, ratelimit
from linli.core.errors import (
    Conflict,
    FieldError,
    NotFound,
    PermissionDenied,
    Unauthorized,
    ValidationFailed,
)
from linli.core.ids import new_id
from linli.core.models import AuditEntry
from linli.core.pagination import PageParams, make_page, paginate_statement
from linli.core.persistence import flush_or_conflict
from linli.db.engine import set_tenant, unit_of_work
from linli.tenancy import service as tenancy_service
from linli.tenancy.models import Community, Operator, Tenant, TenantStatus

log = structlog.get_logger("linli.auth")

_NO_COMMUNITY = uuid.UUID(int=0)
# A staff refresh token is "<tenant id>.<secret>": the tenant must be known before the
# lookup, because RLS shows a transaction only one company's tokens.
_REFRESH_SEPARATOR = "."
# What /auth/me lists at most; a company-wide admin of a large company uses the
# communities API (paged) rather than one huge answer.
ME_COMMUNITY_LIMIT = 200


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _audit_ip(ip: str | None) -> str | None:
    """Only a real address goes into the ``inet`` audit column (test clients may send names)."""
    if not ip:
        return None
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return None


def _sees_all_communities(actor: Actor) -> bool:
    return actor.all_communities or actor.kind is PrincipalKind.SYSTEM


def _tenant_of(actor: Actor) -> uuid.UUID:
    if actor.tenant_id is None:
        raise PermissionDenied()
    return actor.tenant_id


# --- errors with stable codes -----------------------------------------------------------------


def _invalid_credentials() -> Unauthorized:
    # One message for unknown company, unknown login and wrong password: no account probing.
    return Unauthorized("The company code, login or password is wrong.", code="invalid_credentials")


def _locked(until: dt.datetime) -> Unauthorized:
    seconds = max(1, math.ceil((until - _now()).total_seconds()))
    return Unauthorized(
        "Too many failed sign-ins. The account is locked; try again in {minutes} minutes.",
        code="account_locked",
        headers={"Retry-After": str(seconds)},
        minutes=max(1, math.ceil(seconds / 60)),
    )


def _disabled() -> Unauthorized:
    return Unauthorized("This account is disabled.", code="account_disabled")


def _bad_refresh() -> Unauthorized:
    return Unauthorized("The refresh token is invalid.", code="refresh_token_invalid")


def _reused_refresh() -> Unauthorized:
    return Unauthorized(
        "The refresh token was already used; please sign in again.",
        code="refresh_token_reused",
        keep_changes=True,  # the family revocation must survive the refusal
    )


# --- passwords (argon2 is CPU-bound: keep it off the event loop) ------------------------------


async def _verify(password_hash: str, password: str) -> bool:
    return await asyncio.to_thread(verify_password, password_hash, password)


async def _burn_time(password: str) -> None:
    """Verify against a dummy hash so an unknown account answers as slowly as a known one."""
    await _verify(DUMMY_HASH, password)


async def _hash(password: str) -> str:
    return await asyncio.to_thread(hash_password, password)


# --- staff sign-in ----------------------------------------------------------------------------


def _account_key(*parts: str) -> str:
    """Rate-limit key of a login name: the limiter's storage never sees it (it may be a phone)."""
    return crypto.blind_index("\x1f".join(parts), purpose="login-limit").hex()[:32]


def _normal_login(login: str) -> str:
    login = login.strip()
    return crypto.normalize_phone(login) or login.lower()


async def _find_staff(session: AsyncSession, tenant_id: uuid.UUID, login: str) -> StaffUser | None:
    phone = crypto.normalize_phone(login)
    statement = select(StaffUser).where(StaffUser.tenant_id == tenant_id)
    if phone is not None:
        statement = statement.where(StaffUser.phone_hash == crypto.blind_index(phone))
    else:
        statement = statement.where(StaffUser.username == login.strip().lower())
    return cast(StaffUser | None, await session.scalar(statement))


async def _grants(
    session: AsyncSession, tenant_id: uuid.UUID, staff_id: uuid.UUID
) -> list[uuid.UUID]:
    rows = await session.scalars(
        select(StaffCommunityGrant.community_id)
        .where(StaffCommunityGrant.tenant_id == tenant_id, StaffCommunityGrant.staff_id == staff_id)
        .order_by(StaffCommunityGrant.community_id)
    )
    return list(rows)


def _staff_actor(
    staff: StaffUser, community_ids: Iterable[uuid.UUID], *, ip: str | None, request_id: str | None
) -> Actor:
    return Actor.staff(
        id=staff.id,
        tenant_id=staff.tenant_id,
        roles=frozenset(staff.roles),
        all_communities=staff.all_communities,
        community_ids=frozenset(community_ids),
        request_id=request_id,
        ip=_audit_ip(ip),
        display_name=staff.display_name,
    )


async def _issue_staff_tokens(
    session: AsyncSession,
    actor: Actor,
    *,
    family_id: uuid.UUID | None = None,
    family_expires_at: dt.datetime | None = None,
) -> IssuedTokens:
    """A new access token and the next link of a refresh family (a new family at sign-in)."""
    settings = get_settings()
    tenant_id = _tenant_of(actor)
    access_token, expires_in = issue_access_token(actor, settings=settings)
    refresh_token = f"{tenant_id}{_REFRESH_SEPARATOR}{new_refresh_secret()}"
    await session.execute(
        insert(StaffRefreshToken).values(
            tenant_id=tenant_id,
            id=new_id(),
            staff_id=actor.id,
            family_id=family_id or new_id(),
            token_hash=hash_secret(refresh_token),
            # The family has one absolute lifetime: rotating does not extend it.
            expires_at=family_expires_at or _now() + dt.timedelta(days=settings.refresh_token_days),
        )
    )
    return IssuedTokens(
        access_token=access_token, expires_in=expires_in, refresh_token=refresh_token, actor=actor
    )


async def login_staff(
    session: AsyncSession,
    *,
    company: str,
    login: str,
    password: str,
    ip: str | None,
    request_id: str | None,
) -> IssuedTokens:
    """Sign a staff member in with company code + username or phone + password.

    ``session`` is a unit of work with no tenant set; the tenant is set here once
    the company is known. Raises ``Unauthorized`` (invalid_credentials,
    account_locked, account_disabled) or ``RateLimited``.
    """
    settings = get_settings()
    slug = company.strip().lower()
    if ip:
        ratelimit.hit(settings.login_rate_per_ip, "login-ip", ip)
    ratelimit.hit(
        settings.login_rate_per_account, "login-staff", _account_key(slug, _normal_login(login))
    )

    tenant = await tenancy_service.get_tenant_by_slug(session, slug)
    if tenant is None:
        await _burn_time(password)
        log.info("auth.login_failed", principal_kind="staff", reason="unknown_company")
        raise _invalid_credentials()
    await set_tenant(session, tenant.id)
    staff = await _find_staff(session, tenant.id, login)
    if staff is None:
        await _burn_time(password)
        await _record_failure(tenant.id, None, reason="unknown_login", ip=ip, request_id=request_id)
        raise _invalid_credentials()
    if staff.locked_until is not None and staff.locked_until > _now():
        await _record_failure(tenant.id, staff.id, reason="locked", ip=ip, request_id=request_id)
        raise _locked(staff.locked_until)
    if not await _verify(staff.password_hash, password):
        locked_until = await _count_failure(staff, ip=ip, request_id=request_id)
        if locked_until is not None:
            raise _locked(locked_until)
        raise _invalid_credentials()
    # Only someone who knows the password learns that the account or company is disabled.
    if not staff.is_active or tenant.status != TenantStatus.ACTIVE:
        reason = "inactive" if not staff.is_active else "tenant_suspended"
        await _record_failure(tenant.id, staff.id, reason=reason, ip=ip, request_id=request_id)
        raise _disabled()

    values: dict[str, Any] = {"failed_logins": 0, "locked_until": None, "last_login_at": _now()}
    if needs_rehash(staff.password_hash):
        values["password_hash"] = await _hash(password)
    await session.execute(
        update(StaffUser)
        .where(StaffUser.tenant_id == tenant.id, StaffUser.id == staff.id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    actor = _staff_actor(
        staff, await _grants(session, tenant.id, staff.id), ip=ip, request_id=request_id
    )
    tokens = await _issue_staff_tokens(session, actor)
    await audit.record(session, actor, "staff.login", target_type="staff", target_id=staff.id)
    return tokens


async def _count_failure(
    staff: StaffUser, *, ip: str | None, request_id: str | None
) -> dt.datetime | None:
    """Count a wrong password; lock the account at the limit. Returns the lock's end, if locked."""
    settings = get_settings()
    async with unit_of_work(staff.tenant_id) as own:
        failures = await own.scalar(
            select(StaffUser.failed_logins)
            .where(StaffUser.tenant_id == staff.tenant_id, StaffUser.id == staff.id)
            .with_for_update()
        )
        failures = (failures or 0) + 1
        locked_until: dt.datetime | None = None
        if failures >= settings.login_max_failures:
            locked_until = _now() + dt.timedelta(minutes=settings.login_lock_minutes)
            failures = 0  # the count starts afresh once the lock has run out
        values: dict[str, Any] = {"failed_logins": failures}
        if locked_until is not None:
            values["locked_until"] = locked_until
        await own.execute(
            update(StaffUser)
            .where(StaffUser.tenant_id == staff.tenant_id, StaffUser.id == staff.id)
            .values(**values)
        )
        actor = Actor.system(staff.tenant_id)
        actor = replace(actor, ip=_audit_ip(ip), request_id=request_id)
        await audit.record(
            own,
            actor,
            "staff.login_failed",
            target_type="staff",
            target_id=staff.id,
            detail={"reason": "wrong_password"},
        )
        if locked_until is not None:
            await audit.record(
                own,
                actor,
                "staff.locked",
                target_type="staff",
                target_id=staff.id,
                detail={"minutes": settings.login_lock_minutes},
            )
    log.info(
        "auth.login_failed",
        principal_kind="staff",
        reason="wrong_password",
        locked=bool(locked_until),
    )
    return locked_until


async def _record_failure(
    tenant_id: uuid.UUID,
    staff_id: uuid.UUID | None,
    *,
    reason: str,
    ip: str | None,
    request_id: str | None,
) -> None:
    """Audit a refused sign-in that changes no account (the login name is not recorded)."""
    async with unit_of_work(tenant_id) as own:
        actor = replace(Actor.system(tenant_id), ip=_audit_ip(ip), request_id=request_id)
        await audit.record(
            own,
            actor,
            "staff.login_failed",
            target_type="staff",
            target_id=staff_id or "-",
            detail={"reason": reason},
        )
    log.info("auth.login_failed", principal_kind="staff", reason=reason)


# --- staff refresh tokens ---------------------------------------------------------------------


def _tenant_of_refresh(refresh_token: str) -> uuid.UUID | None:
    prefix, separator, secret = refresh_token.partition(_REFRESH_SEPARATOR)
    if not separator or not secret:
        return None
    try:
        return uuid.UUID(prefix)
    except ValueError:
        return None


async def refresh_staff(
    session: AsyncSession, *, refresh_token: str, ip: str | None, request_id: str | None
) -> IssuedTokens:
    """Swap a refresh token for a new pair, with roles and grants read afresh.

    Presenting a token that was already used revokes its whole family: either the
    holder or a thief has the newer one, and we cannot tell which.
    """
    tenant_id = _tenant_of_refresh(refresh_token)
    if tenant_id is None:
        raise _bad_refresh()
    await set_tenant(session, tenant_id)
    row = await session.scalar(
        select(StaffRefreshToken).where(
            StaffRefreshToken.tenant_id == tenant_id,
            StaffRefreshToken.token_hash == hash_secret(refresh_token),
        )
    )
    if row is None:
        raise _bad_refresh()
    if row.used_at is not None:
        return await _share_successor_or_revoke(session, row, ip=ip, request_id=request_id)
    if row.revoked_at is not None:
        raise Unauthorized(
            "The session was ended; please sign in again.", code="refresh_token_revoked"
        )
    if row.expires_at <= _now():
        raise Unauthorized(
            "The session has expired; please sign in again.", code="refresh_token_expired"
        )
    sibling = select(StaffRefreshToken.id).where(
        StaffRefreshToken.tenant_id == tenant_id,
        StaffRefreshToken.family_id == row.family_id,
        StaffRefreshToken.revoked_at.is_not(None),
    )
    claimed = await session.execute(
        update(StaffRefreshToken)
        .where(
            StaffRefreshToken.tenant_id == tenant_id,
            StaffRefreshToken.id == row.id,
            StaffRefreshToken.used_at.is_(None),
            StaffRefreshToken.revoked_at.is_(None),
            # A family revoked while this link was being minted must not live on through it.
            ~exists(sibling),
        )
        .values(used_at=_now())
        .execution_options(synchronize_session=False)
    )
    if cast(Any, claimed).rowcount != 1:
        # Rotated by another request a moment ago (our UPDATE waited for its commit):
        # read what it committed, then share its successor or treat it as theft.
        await session.refresh(row)
        return await _share_successor_or_revoke(session, row, ip=ip, request_id=request_id)
    actor = await _refreshed_staff_actor(session, row, ip=ip, request_id=request_id)
    issued = await _issue_staff_tokens(
        session, actor, family_id=row.family_id, family_expires_at=row.expires_at
    )
    await session.execute(
        update(StaffRefreshToken)
        .where(StaffRefreshToken.tenant_id == tenant_id, StaffRefreshToken.id == row.id)
        .values(successor_enc=crypto.encrypt(issued.refresh_token))
        .execution_options(synchronize_session=False)
    )
    return issued


async def _refreshed_staff_actor(
    session: AsyncSession, row: StaffRefreshToken, *, ip: str | None, request_id: str | None
) -> Actor:
    """The staff member as they are now (roles and grants read afresh), if still allowed in."""
    tenant = await session.get(Tenant, row.tenant_id)
    staff = await session.get(StaffUser, (row.tenant_id, row.staff_id))
    if (
        staff is None
        or tenant is None
        or not staff.is_active
        or tenant.status != TenantStatus.ACTIVE
    ):
        raise _disabled()
    grants = await _grants(session, row.tenant_id, staff.id)
    return _staff_actor(staff, grants, ip=ip, request_id=request_id)


async def _share_successor_or_revoke(
    session: AsyncSession, row: StaffRefreshToken, *, ip: str | None, request_id: str | None
) -> IssuedTokens:
    """A used link: within the reuse interval, its still-unused successor; else theft."""
    successor_secret = reusable_successor(row.used_at, row.successor_enc)
    if successor_secret is not None and row.revoked_at is None:
        successor = await session.scalar(
            select(StaffRefreshToken).where(
                StaffRefreshToken.tenant_id == row.tenant_id,
                StaffRefreshToken.token_hash == hash_secret(successor_secret),
                StaffRefreshToken.used_at.is_(None),
                StaffRefreshToken.revoked_at.is_(None),
                StaffRefreshToken.expires_at > _now(),
            )
        )
        if successor is not None:
            actor = await _refreshed_staff_actor(session, row, ip=ip, request_id=request_id)
            access_token, expires_in = issue_access_token(actor)
            log.info("auth.refresh_shared", principal_kind="staff")
            return IssuedTokens(access_token, expires_in, successor_secret, actor)
    await _revoke_family_after_reuse(session, row, ip=ip, request_id=request_id)
    raise _reused_refresh()


async def _revoke_family_after_reuse(
    session: AsyncSession, row: StaffRefreshToken, *, ip: str | None, request_id: str | None
) -> None:
    """Revoke the whole family in the caller's transaction; the caller raises with keep_changes.

    Not in a transaction of our own: an UPDATE that lost the race still holds the
    row lock on the token, and a second connection would wait on it for ever.
    """
    await session.execute(
        update(StaffRefreshToken)
        .where(
            StaffRefreshToken.tenant_id == row.tenant_id,
            StaffRefreshToken.family_id == row.family_id,
            StaffRefreshToken.revoked_at.is_(None),
        )
        .values(revoked_at=_now())
        .execution_options(synchronize_session=False)
    )
    actor = replace(Actor.system(row.tenant_id), ip=_audit_ip(ip), request_id=request_id)
    await audit.record(
        session, actor, "staff.refresh_reused", target_type="staff", target_id=row.staff_id
    )
    log.warning("auth.refresh_reuse", principal_kind="staff")


async def logout_staff(
    session: AsyncSession,
    *,
    refresh_token: str,
    ip: str | None = None,
    request_id: str | None = None,
) -> None:
    """End the session family of ``refresh_token``. Unknown tokens are ignored (idempotent)."""
    tenant_id = _tenant_of_refresh(refresh_token)
    if tenant_id is None:
        return
    await set_tenant(session, tenant_id)
    row = await session.scalar(
        select(StaffRefreshToken).where(
            StaffRefreshToken.tenant_id == tenant_id,
            StaffRefreshToken.token_hash == hash_secret(refresh_token),
        )
    )
    if row is None:
        return
    await session.execute(
        update(StaffRefreshToken)
        .where(
            StaffRefreshToken.tenant_id == tenant_id,
            StaffRefreshToken.family_id == row.family_id,
            StaffRefreshToken.revoked_at.is_(None),
        )
        .values(revoked_at=_now())
        .execution_options(synchronize_session=False)
    )
    actor = Actor(
        kind=PrincipalKind.STAFF,
        id=row.staff_id,
        tenant_id=tenant_id,
        ip=_audit_ip(ip),
        request_id=request_id,
    )
    await audit.record(session, actor, "staff.logout", target_type="staff", target_id=row.staff_id)


async def _revoke_staff_tokens(
    session: AsyncSession, tenant_id: uuid.UUID, staff_id: uuid.UUID
) -> None:
    """End every session of a staff member (their access tokens die within minutes)."""
    await session.execute(
        update(StaffRefreshToken)
        .where(
            StaffRefreshToken.tenant_id == tenant_id,
            StaffRefreshToken.staff_id == staff_id,
            StaffRefreshToken.revoked_at.is_(None),
        )
        .values(revoked_at=_now())
        .execution_options(synchronize_session=False)
    )


# --- operators --------------------------------------------------------------------------------


def operator_actor(
    operator: Operator, *, ip: str | None = None, request_id: str | None = None
) -> Actor:
    return Actor(
        kind=PrincipalKind.OPERATOR,
        id=operator.id,
        display_name=operator.display_name,
        ip=_audit_ip(ip),
        request_id=request_id,
    )


async def login_operator(
    session: AsyncSession, *, username: str, password: str, ip: str | None, request_id: str | None
) -> IssuedTokens:
    """Sign a platform operator in. Operators get no refresh token (``refresh_token == ""``):
    they hold the keys to every company, so their sessions end with the access token.
    """
    settings = get_settings()
    name = username.strip().lower()
    if ip:
        ratelimit.hit(settings.login_rate_per_ip, "login-ip", ip)
    ratelimit.hit(settings.login_rate_per_account, "login-operator", _account_key(name))
    operator = await session.scalar(select(Operator).where(Operator.username == name))
    if operator is None:
        await _burn_time(password)
        log.info("auth.login_failed", principal_kind="operator", reason="unknown_login")
        raise _invalid_credentials()
    if not await _verify(operator.password_hash, password):
        async with unit_of_work() as own:
            actor = replace(Actor.system(), ip=_audit_ip(ip), request_id=request_id)
            await audit.record(
                own,
                actor,
                "operator.login_failed",
                target_type="operator",
                target_id=operator.id,
                detail={"reason": "wrong_password"},
            )
        log.info("auth.login_failed", principal_kind="operator", reason="wrong_password")
        raise _invalid_credentials()
    if not operator.is_active:
        raise _disabled()
    if needs_rehash(operator.password_hash):
        operator.password_hash = await _hash(password)
    actor = operator_actor(operator, ip=ip, request_id=request_id)
    access_token, expires_in = issue_access_token(actor, settings=settings)
    await audit.record(
        session, actor, "operator.login", target_type="operator", target_id=operator.id
    )
    return IssuedTokens(
        access_token=access_token, expires_in=expires_in, refresh_token="", actor=actor
    )


async def create_operator(
    session: AsyncSession, *, username: str, display_name: str, password: str
) -> Operator:
    operator = Operator(
        username=username.strip().lower(),
        display_name=display_name,
        password_hash=await _hash(password),
        is_active=True,
    )
    session.add(operator)
    await flush_or_conflict(
        session, Conflict("This operator username is already used.", code="operator_taken")
    )
    await audit.record(
        session, Actor.system(), "operator.create", target_type="operator", target_id=operator.id
    )
    return operator


# --- staff management -------------------------------------------------------------------------


class Unset(enum.Enum):
    """Marks an argument the caller did not give (``None`` is a value: "clear it")."""

    UNSET = "unset"


UNSET = Unset.UNSET


@dataclass(frozen=True)
class StaffMember:
    """A staff login with its community grants, as the management API shows it."""

    user: StaffUser
    community_ids: list[uuid.UUID]

    @property
    def phone_masked(self) -> str | None:
        if self.user.phone_enc is None:
            return None
        return crypto.mask_phone(crypto.decrypt(self.user.phone_enc))

    @property
    def locked(self) -> bool:
        return self.user.locked_until is not None and self.user.locked_until > _now()


def _in_my_communities(actor: Actor) -> ColumnElement[bool]:
    return exists(
        select(StaffCommunityGrant.staff_id).where(
            StaffCommunityGrant.tenant_id == StaffUser.tenant_id,
            StaffCommunityGrant.staff_id == StaffUser.id,
            StaffCommunityGrant.community_id.in_(list(actor.community_ids) or [_NO_COMMUNITY]),
        )
    )


def readable_staff(actor: Actor) -> Select[StaffUser]:
    """Staff this actor may see: the company's (RLS), narrowed to the actor's communities.

    A community manager sees the people granted one of their communities, not
    company-wide staff.
    """
    statement = select(StaffUser).where(StaffUser.tenant_id == _tenant_of(actor))
    if not _sees_all_communities(actor):
        statement = statement.where(_in_my_communities(actor))
    return statement


async def _grants_of(
    session: AsyncSession, tenant_id: uuid.UUID, staff_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """Community grants of many staff in one statement (no N+1 on lists)."""
    grants: dict[uuid.UUID, list[uuid.UUID]] = {i: [] for i in staff_ids}
    if not staff_ids:
        return grants
    rows = await session.execute(
        select(StaffCommunityGrant.staff_id, StaffCommunityGrant.community_id)
        .where(
            StaffCommunityGrant.tenant_id == tenant_id, StaffCommunityGrant.staff_id.in_(staff_ids)
        )
        .order_by(StaffCommunityGrant.staff_id, StaffCommunityGrant.community_id)
    )
    for staff_id, community_id in rows.all():
        grants[staff_id].append(community_id)
    return grants


async def list_staff(
    session: AsyncSession,
    actor: Actor,
    *,
    page: PageParams,
    active: bool | None = None,
    role: Role | None = None,
) -> tuple[list[StaffMember], str | None]:
    statement = readable_staff(actor)
    if active is not None:
        statement = statement.where(StaffUser.is_active.is_(active))
    if role is not None:
        statement = statement.where(any_(StaffUser.roles) == Role(role).value)
    rows, cursor = make_page(
        list((await session.scalars(paginate_statement(statement, StaffUser.id, page))).all()), page
    )
    grants = await _grants_of(session, _tenant_of(actor), [r.id for r in rows])
    return [StaffMember(user=r, community_ids=grants[r.id]) for r in rows], cursor


async def _readable_user(
    session: AsyncSession, actor: Actor, staff_user_id: uuid.UUID
) -> StaffUser:
    user = await session.scalar(readable_staff(actor).where(StaffUser.id == staff_user_id))
    if user is None:
        raise NotFound("Staff member not found.", code="staff_not_found")
    return user


async def get_staff(
    session: AsyncSession, actor: Actor, *, staff_user_id: uuid.UUID
) -> StaffMember:
    user = await _readable_user(session, actor, staff_user_id)
    return StaffMember(user=user, community_ids=await _grants(session, user.tenant_id, user.id))


def _check_grantable(
    actor: Actor,
    *,
    roles: Iterable[str] = (),
    all_communities: bool = False,
    community_ids: Iterable[uuid.UUID] = (),
) -> None:
    """Nobody hands out more than they hold: permissions, company-wide scope or communities."""
    if actor.kind is PrincipalKind.SYSTEM:
        return
    if not permissions_of(list(roles)) <= actor.permissions:
        raise PermissionDenied(
            "You cannot give or change roles with more rights than your own.",
            code="role_not_grantable",
        )
    if all_communities and not actor.all_communities:
        raise PermissionDenied(
            "Only company-wide staff can grant every community.", code="scope_not_grantable"
        )
    outside = [c for c in community_ids if not actor.may_see_community(c)]
    if outside:
        raise PermissionDenied(
            "You can only grant communities you work in yourself.", code="scope_not_grantable"
        )


async def _check_communities(
    session: AsyncSession, actor: Actor, community_ids: Sequence[uuid.UUID]
) -> None:
    """Every granted community exists in this company (another company's ids do not)."""
    wanted = set(community_ids)
    if not wanted:
        return
    everything = replace(actor, all_communities=True)  # existence, not the actor's scope
    found = set(
        (
            await session.scalars(
                _community_statement(everything)
                .where(Community.id.in_(wanted))
                .with_only_columns(Community.id)
            )
        ).all()
    )
    missing = wanted - found
    if missing:
        raise ValidationFailed(
            "Some communities do not exist.",
            code="unknown_community",
            errors=[
                FieldError(
                    "community_ids", "No such community in this company.", "unknown_community"
                )
            ],
        )


def _community_statement(actor: Actor) -> Select[Community]:
    return tenancy_service.readable_communities(actor)


def _checked_username(username: str) -> str:
    name = username.strip().lower()
    # A username that reads as a phone number would shadow someone's phone login.
    if crypto.normalize_phone(name) is not None:
        raise ValidationFailed(
            errors=[
                FieldError("username", "A username cannot be a phone number.", "username_is_phone")
            ]
        )
    return name


def _phone_columns(phone: str | None) -> tuple[bytes | None, bytes | None]:
    if not phone:
        return None, None
    normalized = crypto.normalize_phone(phone)
    if normalized is None:
        raise ValidationFailed(
            errors=[FieldError("phone", "Not a valid mainland mobile number.", "invalid_phone")]
        )
    return crypto.encrypt(normalized), crypto.blind_index(normalized)


def _taken() -> Conflict:
    return Conflict("This username or phone is already used in the company.", code="staff_taken")


async def _set_grants(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    staff_id: uuid.UUID,
    community_ids: Sequence[uuid.UUID],
) -> None:
    await session.execute(
        delete(StaffCommunityGrant).where(
            StaffCommunityGrant.tenant_id == tenant_id, StaffCommunityGrant.staff_id == staff_id
        )
    )
    if community_ids:
        try:
            async with session.begin_nested():
                await session.execute(
                    insert(StaffCommunityGrant),
                    [
                        {"tenant_id": tenant_id, "staff_id": staff_id, "community_id": c}
                        for c in dict.fromkeys(community_ids)
                    ],
                )
        except IntegrityError as exc:  # the composite FK: a community of another company
            raise ValidationFailed(
                "Some communities do not exist.",
                code="unknown_community",
                errors=[
                    FieldError(
                        "community_ids", "No such community in this company.", "unknown_community"
                    )
                ],
            ) from exc


async def create_staff(
    session: AsyncSession,
    actor: Actor,
    *,
    username: str,
    display_name: str,
    password: str,
    roles: Sequence[Role | str],
    phone: str | None = None,
    all_communities: bool = False,
    community_ids: Sequence[uuid.UUID] = (),
) -> StaffUser:
    """Add a staff login with roles and community grants (usernames are case-insensitive)."""
    tenant_id = _tenant_of(actor)
    role_names = sorted({Role(r).value for r in roles})
    _check_grantable(
        actor, roles=role_names, all_communities=all_communities, community_ids=community_ids
    )
    await _check_communities(session, actor, community_ids)
    phone_enc, phone_hash = _phone_columns(phone)
    staff = StaffUser(
        tenant_id=tenant_id,
        id=new_id(),
        username=_checked_username(username),
        display_name=display_name,
        password_hash=await _hash(password),
        roles=role_names,
        all_communities=all_communities,
        phone_enc=phone_enc,
        phone_hash=phone_hash,
        is_active=True,
        failed_logins=0,
    )
    session.add(staff)
    await flush_or_conflict(session, _taken())
    await _set_grants(session, tenant_id, staff.id, list(community_ids))
    await audit.record(
        session,
        actor,
        "staff.create",
        target_type="staff",
        target_id=staff.id,
        detail={
            "roles": role_names,
            "all_communities": all_communities,
            "communities": [str(c) for c in community_ids],
        },
    )
    return staff


async def update_staff(
    session: AsyncSession,
    actor: Actor,
    *,
    staff_user_id: uuid.UUID,
    display_name: str | None = None,
    phone: str | Unset | None = UNSET,
    roles: Sequence[Role | str] | None = None,
    all_communities: bool | None = None,
    community_ids: Sequence[uuid.UUID] | None = None,
    is_active: bool | None = None,
) -> StaffMember:
    """Change a staff member. Changing what their tokens carry ends their sessions."""
    user = await _readable_user(session, actor, staff_user_id)
    tenant_id = user.tenant_id
    current_grants = await _grants(session, tenant_id, user.id)
    # Someone holding fewer rights than the target cannot touch them at all.
    _check_grantable(actor, roles=user.roles)
    changed: list[str] = []
    access_changed = False

    new_roles = sorted({Role(r).value for r in roles}) if roles is not None else None
    new_grants = sorted(set(community_ids)) if community_ids is not None else None
    if (
        actor.kind is PrincipalKind.STAFF
        and actor.id == user.id
        and (
            (new_roles is not None and new_roles != sorted(user.roles))
            or (all_communities is not None and all_communities != user.all_communities)
            or (new_grants is not None and new_grants != current_grants)
            or is_active is False
        )
    ):
        raise Conflict(
            "You cannot change your own roles or communities, or deactivate yourself.",
            code="cannot_change_self",
        )
    if display_name is not None and display_name != user.display_name:
        user.display_name = display_name
        changed.append("display_name")
    if not isinstance(phone, Unset):
        phone_enc, phone_hash = _phone_columns(phone)
        if phone_hash != user.phone_hash:
            user.phone_enc, user.phone_hash = phone_enc, phone_hash
            changed.append("phone")
    if new_roles is not None and new_roles != sorted(user.roles):
        _check_grantable(actor, roles=new_roles)
        user.roles = new_roles
        changed.append("roles")
        access_changed = True
    if all_communities is not None and all_communities != user.all_communities:
        _check_grantable(actor, all_communities=all_communities)
        user.all_communities = all_communities
        changed.append("all_communities")
        access_changed = True
    if new_grants is not None and new_grants != current_grants:
        # Only communities the actor works in may be added or taken away.
        _check_grantable(actor, community_ids=set(new_grants) ^ set(current_grants))
        await _check_communities(session, actor, new_grants)
        await _set_grants(session, tenant_id, user.id, new_grants)
        current_grants = new_grants
        changed.append("community_ids")
        access_changed = True
    if is_active is not None and is_active != user.is_active:
        user.is_active = is_active
        if is_active:
            user.failed_logins, user.locked_until = 0, None
        changed.append("is_active")
        access_changed = True
    if not changed:
        return StaffMember(user=user, community_ids=current_grants)
    await flush_or_conflict(session, _taken())
    if access_changed:
        await _revoke_staff_tokens(session, tenant_id, user.id)
    detail: dict[str, Any] = {"fields": changed}
    if "roles" in changed:
        detail["roles"] = user.roles
    if "is_active" in changed:
        detail["is_active"] = user.is_active
    action = (
        "staff.deactivate" if changed == ["is_active"] and not user.is_active else "staff.update"
    )
    await audit.record(
        session, actor, action, target_type="staff", target_id=user.id, detail=detail
    )
    return StaffMember(user=user, community_ids=current_grants)


async def reset_staff_password(
    session: AsyncSession, actor: Actor, *, staff_user_id: uuid.UUID, password: str
) -> None:
    """Set a new password, lift any lock-out and end every session of the staff member."""
    user = await _readable_user(session, actor, staff_user_id)
    _check_grantable(actor, roles=user.roles)
    user.password_hash = await _hash(password)
    user.failed_logins, user.locked_until = 0, None
    await session.flush()
    await _revoke_staff_tokens(session, user.tenant_id, user.id)
    await audit.record(
        session, actor, "staff.password_reset", target_type="staff", target_id=user.id
    )


# --- who am I, audit trail --------------------------------------------------------------------


@dataclass(frozen=True)
class WhoAmI:
    actor: Actor
    tenant: Tenant | None
    communities: list[Community]
    more_communities: bool

    @property
    def permissions(self) -> list[str]:
        hidden = (Permission.PUBLIC, Permission.AUTHENTICATED)
        return sorted(p.value for p in Permission if p not in hidden and self.actor.can(p))


async def who_am_i(session: AsyncSession, actor: Actor) -> WhoAmI:
    """The caller as their token names them, with the company and communities they work in."""
    tenant: Tenant | None = None
    communities: list[Community] = []
    more = False
    if actor.kind is PrincipalKind.STAFF and actor.tenant_id is not None:
        tenant = await session.get(Tenant, actor.tenant_id)
        rows: Sequence[Community] = (
            await session.scalars(
                _community_statement(actor).order_by(Community.code).limit(ME_COMMUNITY_LIMIT + 1)
            )
        ).all()
        communities, more = list(rows[:ME_COMMUNITY_LIMIT]), len(rows) > ME_COMMUNITY_LIMIT
    return WhoAmI(actor=actor, tenant=tenant, communities=communities, more_communities=more)


async def list_audit_entries(
    session: AsyncSession,
    actor: Actor,
    *,
    page: PageParams,
    action: str | None = None,
    principal_id: str | None = None,
    target_id: str | None = None,
) -> tuple[list[AuditEntry], str | None]:
    """The audit trail the actor may read, newest first (UUIDv7 ids: id order is time order).

    Staff of every community read the company's whole trail; staff of some
    communities read what happened in those, plus their own actions.
    """
    statement = select(AuditEntry).where(AuditEntry.tenant_id == _tenant_of(actor))
    if not actor.all_communities:
        statement = statement.where(
            or_(
                AuditEntry.community_id.in_(actor.community_ids or [uuid.UUID(int=0)]),
                and_(
                    AuditEntry.principal_kind == actor.kind.value,
                    AuditEntry.principal_id == str(actor.id),
                ),
            )
        )
    if action:
        statement = statement.where(AuditEntry.action == action)
    if principal_id:
        statement = statement.where(AuditEntry.principal_id == principal_id)
    if target_id:
        statement = statement.where(AuditEntry.target_id == target_id)
    after = page.after_id()
    if after is not None:
        statement = statement.where(AuditEntry.id < after)
    rows = (
        await session.scalars(statement.order_by(AuditEntry.id.desc()).limit(page.limit + 1))
    ).all()
    return make_page(list(rows), page)
