"""Resident accounts and sign-in: phone one-time codes and WeChat public-account OAuth.

A resident (业主/住户) is one person across every property company: the account
is a platform row keyed by the phone's blind index or a WeChat identity, never
by a tenant. Sign-ins are audited in ``platform_audit_log``.

Two things here deliberately outlive a failed request: a wrong guess at a code
and the revocation of a refresh-token family on reuse. The request's own
transaction rolls back when it answers 401, so those writes get a transaction of
their own; without that, brute force and token theft would leave no trace.
"""

from __future__ import annotations

import datetime as dt
import hmac
import ipaddress
import re
import secrets
import unicodedata
import uuid
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

import structlog
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from linli.auth.actor import Actor, PrincipalKind
from linli.auth.models import OtpCode, ResidentAccount, ResidentRefreshToken, ResidentWechatIdentity
from linli.auth.sms import SmsProvider, get_sms_provider
from linli.auth.tokens import (
    IssuedTokens,
    hash_secret,
    issue_access_token,
    new_refresh_secret,
    reusable_successor,
)
from linli.auth.wechat import SCOPES, Scope, WechatOAuthClient, WechatUserInfo, authorize_url
from linli.config import Settings, get_settings
from linli.core import audit, crypto, ratelimit
from linli.core.errors import BadRequest, FieldError, Unauthorized, ValidationFailed
from linli.core.ids import new_id
from linli.db.engine import unit_of_work

log = structlog.get_logger("linli.auth.residents")

CODE_DIGITS = 6
WECHAT_CALLBACK_PATH = "/api/v1/auth/resident/wechat/callback"
WECHAT_STATE_SALT = "linli.resident.wechat-state"
_CODE = re.compile(r"^[0-9]{6}$")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _normalize_phone(raw: str) -> str:
    phone = crypto.normalize_phone(raw)
    if phone is None:
        raise ValidationFailed(
            errors=[
                FieldError("phone", "Not a valid mainland mobile number.", code="invalid_phone")
            ]
        )
    return phone


def _normalize_code(raw: str) -> str:
    # Phones' IMEs type full-width digits (１２３４５６); they are the same code.
    code = unicodedata.normalize("NFKC", raw).strip()
    if not _CODE.match(code):
        raise ValidationFailed(
            errors=[FieldError("code", "The code is 6 digits.", code="invalid_code")]
        )
    return code


def _code_hash(phone: str, code: str) -> bytes:
    # Keyed and bound to the phone: a leaked table cannot be brute-forced offline
    # (a million candidates is nothing for a plain hash).
    return crypto.blind_index(f"{phone}:{code}", purpose="otp")


def _limit_key(phone_hash: bytes) -> str:
    """Rate-limit key of a phone: the limiter's storage (memory, redis) never sees the number."""
    return phone_hash.hex()[:32]


def _audit_ip(ip: str | None) -> str | None:
    """Only a real address goes into the ``inet`` audit column (test clients may send names)."""
    if not ip:
        return None
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return None


def resident_actor(
    account: ResidentAccount, *, ip: str | None = None, request_id: str | None = None
) -> Actor:
    return Actor(
        kind=PrincipalKind.RESIDENT,
        id=account.id,
        tenant_id=None,
        display_name=account.display_name,
        ip=_audit_ip(ip),
        request_id=request_id,
    )


# --- phone one-time codes -------------------------------------------------------------------


async def request_otp(
    session: AsyncSession,
    *,
    phone: str,
    ip: str | None,
    sms: SmsProvider | None = None,
    settings: Settings | None = None,
) -> None:
    """Send a fresh code to ``phone``. Answers alike whether or not the phone has an account."""
    settings = settings or get_settings()
    normalized = _normalize_phone(phone)
    phone_hash = crypto.blind_index(normalized)
    if ip:
        ratelimit.hit(settings.otp_rate_per_ip, "otp-send-ip", ip)
    ratelimit.hit(settings.otp_rate_per_phone, "otp-send-phone", _limit_key(phone_hash))

    now = _now()
    # Only the newest code counts; older live ones are closed explicitly as well.
    await session.execute(
        update(OtpCode)
        .where(
            OtpCode.phone_hash == phone_hash, OtpCode.used_at.is_(None), OtpCode.expires_at > now
        )
        .values(expires_at=now)
    )
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    session.add(
        OtpCode(
            phone_hash=phone_hash,
            code_hash=_code_hash(normalized, code),
            expires_at=now + dt.timedelta(seconds=settings.otp_ttl_seconds),
            attempts=0,
        )
    )
    await session.flush()
    # Sent inline, not through a job: the plain code must not rest in the job table,
    # and the person is waiting for it.
    await (sms or get_sms_provider(settings)).send_code(normalized, code)
    log.info("otp.requested")


@dataclass(frozen=True)
class _Attempt:
    id: uuid.UUID
    code_hash: bytes
    attempts: int
    expires_at: dt.datetime


async def _count_attempt(phone_hash: bytes) -> _Attempt | None:
    """Count one guess against the newest open code, committed whatever the guess's fate."""
    newest = (
        select(OtpCode.id)
        .where(OtpCode.phone_hash == phone_hash, OtpCode.used_at.is_(None))
        .order_by(OtpCode.created_at.desc(), OtpCode.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    async with unit_of_work() as own:
        row = (
            await own.execute(
                update(OtpCode)
                .where(OtpCode.id == newest)
                .values(attempts=OtpCode.attempts + 1)
                .returning(OtpCode.id, OtpCode.code_hash, OtpCode.attempts, OtpCode.expires_at)
            )
        ).one_or_none()
    if row is None:
        return None
    return _Attempt(id=row[0], code_hash=row[1], attempts=row[2], expires_at=row[3])


def _wrong_code() -> Unauthorized:
    return Unauthorized("The code is wrong or has expired.", code="otp_invalid")


async def verify_otp(
    session: AsyncSession,
    *,
    phone: str,
    code: str,
    ip: str | None,
    request_id: str | None,
    settings: Settings | None = None,
) -> IssuedTokens:
    """Check ``code`` for ``phone``; on success sign in, creating the account on first use."""
    settings = settings or get_settings()
    normalized = _normalize_phone(phone)
    code = _normalize_code(code)
    phone_hash = crypto.blind_index(normalized)
    if ip:
        ratelimit.hit(settings.otp_verify_rate_per_ip, "otp-verify-ip", ip)
    ratelimit.hit(settings.otp_verify_rate_per_phone, "otp-verify-phone", _limit_key(phone_hash))

    attempt = await _count_attempt(phone_hash)
    if attempt is None:
        raise _wrong_code()
    if attempt.attempts > settings.otp_max_attempts:
        raise _burnt()
    if attempt.expires_at <= _now():
        raise Unauthorized("The code has expired. Please request a new one.", code="otp_expired")
    if not hmac.compare_digest(attempt.code_hash, _code_hash(normalized, code)):
        log.info("otp.wrong_guess", attempts=attempt.attempts)
        if attempt.attempts >= settings.otp_max_attempts:
            raise _burnt()
        raise _wrong_code()
    used = await session.execute(
        update(OtpCode)
        .where(OtpCode.id == attempt.id, OtpCode.used_at.is_(None))
        .values(used_at=_now())
    )
    if cast(Any, used).rowcount != 1:  # a concurrent request won the same code
        raise _wrong_code()

    account, created = await _account_for_phone(session, normalized, phone_hash)
    return await _sign_in(
        session,
        account,
        method="otp",
        created=created,
        ip=ip,
        request_id=request_id,
        settings=settings,
    )


def _burnt() -> Unauthorized:
    return Unauthorized(
        "Too many wrong codes. Please request a new code.", code="otp_attempts_exceeded"
    )


async def _account_for_phone(
    session: AsyncSession, phone: str, phone_hash: bytes, display_name: str = ""
) -> tuple[ResidentAccount, bool]:
    # ON CONFLICT: two first sign-ins of one phone at once still make one person.
    inserted = await session.execute(
        pg_insert(ResidentAccount)
        .values(
            id=new_id(),
            phone_enc=crypto.encrypt(phone),
            phone_hash=phone_hash,
            display_name=display_name[:100],
            avatar_url="",
            is_active=True,
        )
        .on_conflict_do_nothing(index_elements=[ResidentAccount.phone_hash])
        .returning(ResidentAccount.id)
    )
    created = inserted.scalar_one_or_none() is not None
    account = (
        await session.scalars(
            select(ResidentAccount).where(ResidentAccount.phone_hash == phone_hash)
        )
    ).one()
    return account, created


async def ensure_resident_account(
    session: AsyncSession, *, phone: str, display_name: str = ""
) -> ResidentAccount:
    """The account of ``phone``, created if missing (demo seeding, imports)."""
    normalized = _normalize_phone(phone)
    account, created = await _account_for_phone(
        session, normalized, crypto.blind_index(normalized), display_name
    )
    if not created and display_name and not account.display_name:
        account.display_name = display_name[:100]
        await session.flush()
    return account


# --- tokens ----------------------------------------------------------------------------------


async def _sign_in(
    session: AsyncSession,
    account: ResidentAccount,
    *,
    method: str,
    created: bool,
    ip: str | None,
    request_id: str | None,
    settings: Settings,
    detail: dict[str, Any] | None = None,
) -> IssuedTokens:
    if not account.is_active:
        raise _disabled()
    account.last_login_at = _now()
    actor = resident_actor(account, ip=ip, request_id=request_id)
    tokens = await _issue_tokens(session, actor, settings=settings)
    await audit.record(
        session,
        actor,
        "resident.sign_in",
        target_type="resident_account",
        target_id=account.id,
        detail={"method": method, "new_account": created, **(detail or {})},
    )
    return tokens


def _disabled() -> Unauthorized:
    return Unauthorized("This account is disabled.", code="account_disabled")


async def _issue_tokens(
    session: AsyncSession,
    actor: Actor,
    *,
    settings: Settings,
    family_id: uuid.UUID | None = None,
    family_expires_at: dt.datetime | None = None,
) -> IssuedTokens:
    access_token, expires_in = issue_access_token(actor, settings=settings)
    secret = new_refresh_secret()
    session.add(
        ResidentRefreshToken(
            account_id=actor.id,
            family_id=family_id or new_id(),
            token_hash=hash_secret(secret),
            # A family lives refresh_token_days from sign-in; rotation does not extend it.
            expires_at=family_expires_at or _now() + dt.timedelta(days=settings.refresh_token_days),
        )
    )
    await session.flush()
    return IssuedTokens(
        access_token=access_token, expires_in=expires_in, refresh_token=secret, actor=actor
    )


def _bad_refresh() -> Unauthorized:
    return Unauthorized("The refresh token is invalid.", code="refresh_token_invalid")


async def refresh_resident(
    session: AsyncSession,
    *,
    refresh_token: str,
    ip: str | None,
    request_id: str | None,
    settings: Settings | None = None,
) -> IssuedTokens:
    """Swap a refresh token for a new pair. Presenting a used one revokes its whole family."""
    settings = settings or get_settings()
    token_hash = hash_secret(refresh_token)
    row = await session.scalar(
        select(ResidentRefreshToken).where(ResidentRefreshToken.token_hash == token_hash)
    )
    if row is None or row.revoked_at is not None:
        raise _bad_refresh()
    if row.used_at is not None:
        return await _share_successor_or_revoke(
            session, row, ip=ip, request_id=request_id, settings=settings
        )
    if row.expires_at <= _now():
        raise Unauthorized(
            "The refresh token has expired; please sign in again.", code="refresh_token_expired"
        )
    claimed = await session.execute(
        update(ResidentRefreshToken)
        .where(
            ResidentRefreshToken.id == row.id,
            ResidentRefreshToken.used_at.is_(None),
            ResidentRefreshToken.revoked_at.is_(None),
        )
        .values(used_at=_now())
        .execution_options(synchronize_session=False)
    )
    if cast(Any, claimed).rowcount != 1:
        # Another request rotated it a moment ago (our UPDATE waited for its commit): read
        # what it committed, then share its successor or treat two holders as theft.
        await session.refresh(row)
        return await _share_successor_or_revoke(
            session, row, ip=ip, request_id=request_id, settings=settings
        )
    actor = await _active_resident_actor(session, row, ip=ip, request_id=request_id)
    issued = await _issue_tokens(
        session, actor, settings=settings, family_id=row.family_id, family_expires_at=row.expires_at
    )
    await session.execute(
        update(ResidentRefreshToken)
        .where(ResidentRefreshToken.id == row.id)
        .values(successor_enc=crypto.encrypt(issued.refresh_token))
        .execution_options(synchronize_session=False)
    )
    return issued


async def _active_resident_actor(
    session: AsyncSession, row: ResidentRefreshToken, *, ip: str | None, request_id: str | None
) -> Actor:
    account = await session.get(ResidentAccount, row.account_id)
    if account is None or not account.is_active:
        raise _disabled()
    return resident_actor(account, ip=ip, request_id=request_id)


async def _share_successor_or_revoke(
    session: AsyncSession,
    row: ResidentRefreshToken,
    *,
    ip: str | None,
    request_id: str | None,
    settings: Settings,
) -> IssuedTokens:
    """A used link: within the reuse interval, its still-unused successor; else theft."""
    successor_secret = reusable_successor(row.used_at, row.successor_enc, settings=settings)
    if successor_secret is not None and row.revoked_at is None:
        successor = await session.scalar(
            select(ResidentRefreshToken).where(
                ResidentRefreshToken.token_hash == hash_secret(successor_secret),
                ResidentRefreshToken.used_at.is_(None),
                ResidentRefreshToken.revoked_at.is_(None),
                ResidentRefreshToken.expires_at > _now(),
            )
        )
        if successor is not None:
            actor = await _active_resident_actor(session, row, ip=ip, request_id=request_id)
            access_token, expires_in = issue_access_token(actor, settings=settings)
            return IssuedTokens(access_token, expires_in, successor_secret, actor)
    await _revoke_family_after_reuse(
        session, row.family_id, row.account_id, ip=ip, request_id=request_id
    )
    raise Unauthorized(
        "The refresh token was already used; please sign in again.",
        code="refresh_token_reused",
        keep_changes=True,  # the family revocation must survive the refusal
    )


async def _revoke_family_after_reuse(
    session: AsyncSession,
    family_id: uuid.UUID,
    account_id: uuid.UUID,
    *,
    ip: str | None,
    request_id: str | None,
) -> None:
    """Revoke in the caller's transaction (which then commits through keep_changes).

    A separate transaction would wait for ever on the row lock that the losing
    UPDATE of a refresh race still holds in the caller's transaction.
    """
    await session.execute(
        update(ResidentRefreshToken)
        .where(
            ResidentRefreshToken.family_id == family_id,
            ResidentRefreshToken.revoked_at.is_(None),
        )
        .values(revoked_at=func.now())
        .execution_options(synchronize_session=False)
    )
    actor = Actor(
        kind=PrincipalKind.RESIDENT, id=account_id, ip=_audit_ip(ip), request_id=request_id
    )
    await audit.record(
        session,
        actor,
        "resident.refresh_reuse",
        target_type="resident_account",
        target_id=account_id,
    )
    log.warning("auth.refresh_reuse", principal_kind="resident")


async def logout_resident(
    session: AsyncSession,
    *,
    refresh_token: str,
    ip: str | None = None,
    request_id: str | None = None,
) -> None:
    """End the session family of ``refresh_token``. Unknown tokens are ignored (idempotent)."""
    row = await session.scalar(
        select(ResidentRefreshToken).where(
            ResidentRefreshToken.token_hash == hash_secret(refresh_token)
        )
    )
    if row is None:
        return
    await session.execute(
        update(ResidentRefreshToken)
        .where(
            ResidentRefreshToken.family_id == row.family_id,
            ResidentRefreshToken.revoked_at.is_(None),
        )
        .values(revoked_at=_now())
        .execution_options(synchronize_session=False)
    )
    actor = Actor(
        kind=PrincipalKind.RESIDENT, id=row.account_id, ip=_audit_ip(ip), request_id=request_id
    )
    await audit.record(
        session,
        actor,
        "resident.sign_out",
        target_type="resident_account",
        target_id=row.account_id,
    )


# --- WeChat public-account OAuth --------------------------------------------------------------


@dataclass(frozen=True)
class WechatState:
    """What the signed ``state`` carries through WeChat and back.

    ``nonce`` lets a browser flow bind the state to a cookie it set (login CSRF).
    """

    redirect: str
    scope: Scope
    nonce: str


def check_redirect(target: str) -> str:
    """``target`` if it is a path on this site; anything that could leave the site is refused."""
    bad = ValidationFailed(
        errors=[
            FieldError(
                "redirect",
                "The redirect must be a path on this site, like /portal.",
                code="redirect_not_allowed",
            )
        ]
    )
    if (
        not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or len(target) > 1000
        or any(unicodedata.category(ch)[0] in "CZ" for ch in target)  # controls, spaces
    ):
        raise bad
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        raise bad
    return target


def _state_serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.signing_key(), salt=WECHAT_STATE_SALT)


def new_wechat_state(
    *, redirect: str, scope: Scope = "snsapi_base", settings: Settings | None = None
) -> tuple[str, WechatState]:
    """A signed, expiring state for the authorize URL, and what it says."""
    settings = settings or get_settings()
    if scope not in SCOPES:
        raise ValidationFailed(
            errors=[FieldError("scope", "Unknown WeChat scope.", code="invalid_scope")]
        )
    state = WechatState(
        redirect=check_redirect(redirect), scope=scope, nonce=secrets.token_urlsafe(12)
    )
    token = _state_serializer(settings).dumps(
        {"r": state.redirect, "s": state.scope, "n": state.nonce}
    )
    return token, state


def read_wechat_state(state: str, *, settings: Settings | None = None) -> WechatState:
    """Verify a state that came back from WeChat: our signature, not expired, sane content."""
    settings = settings or get_settings()
    try:
        data = _state_serializer(settings).loads(
            state, max_age=settings.wechat_state_max_age_seconds
        )
    except SignatureExpired as exc:
        raise BadRequest(
            "The WeChat sign-in took too long. Please try again.", code="wechat_state_expired"
        ) from exc
    except BadSignature as exc:
        raise BadRequest(
            "The WeChat sign-in state is invalid.", code="wechat_state_invalid"
        ) from exc
    try:
        redirect, scope, nonce = str(data["r"]), data["s"], str(data["n"])
        if scope not in SCOPES:
            raise ValueError(scope)
        return WechatState(redirect=check_redirect(redirect), scope=scope, nonce=nonce)
    except (KeyError, TypeError, ValueError, ValidationFailed) as exc:
        raise BadRequest(
            "The WeChat sign-in state is invalid.", code="wechat_state_invalid"
        ) from exc


def wechat_callback_url(settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    return f"{settings.public_url.rstrip('/')}{WECHAT_CALLBACK_PATH}"


def wechat_authorize_url(
    *, redirect_uri: str, state: str, scope: str = "snsapi_base", settings: Settings | None = None
) -> str:
    if scope not in SCOPES:
        raise ValidationFailed(
            errors=[FieldError("scope", "Unknown WeChat scope.", code="invalid_scope")]
        )
    return authorize_url(
        settings or get_settings(), redirect_uri=redirect_uri, state=state, scope=scope
    )


async def login_wechat(
    session: AsyncSession,
    *,
    code: str,
    ip: str | None,
    request_id: str | None,
    client: WechatOAuthClient | None = None,
) -> IssuedTokens:
    """Finish a WeChat sign-in: code → openid/unionid (→ profile) → account → tokens."""
    client = client or WechatOAuthClient()
    token = await client.exchange_code(code)
    info = await client.fetch_userinfo(token) if "snsapi_userinfo" in token.scopes else None
    unionid = (info.unionid if info else None) or token.unionid
    account, created = await _account_for_wechat(
        session, appid=client.appid, openid=token.openid, unionid=unionid, info=info
    )
    return await _sign_in(
        session,
        account,
        method="wechat",
        created=created,
        ip=ip,
        request_id=request_id,
        settings=client.settings,
        detail={"scope": "snsapi_userinfo" if info else "snsapi_base"},
    )


async def _account_for_wechat(
    session: AsyncSession,
    *,
    appid: str,
    openid: str,
    unionid: str | None,
    info: WechatUserInfo | None,
) -> tuple[ResidentAccount, bool]:
    created = False
    identity = await session.scalar(
        select(ResidentWechatIdentity).where(
            ResidentWechatIdentity.appid == appid, ResidentWechatIdentity.openid == openid
        )
    )
    if identity is None:
        account_id: uuid.UUID | None = None
        if unionid:
            # Same person through another public account or mini program of the platform.
            account_id = await session.scalar(
                select(ResidentWechatIdentity.account_id)
                .where(ResidentWechatIdentity.unionid == unionid)
                .order_by(ResidentWechatIdentity.created_at)
                .limit(1)
            )
        try:
            async with session.begin_nested():
                if account_id is None:
                    fresh = ResidentAccount(display_name="", avatar_url="", is_active=True)
                    session.add(fresh)
                    await session.flush()
                    account_id, created = fresh.id, True
                identity = ResidentWechatIdentity(
                    account_id=account_id, appid=appid, openid=openid, unionid=unionid
                )
                session.add(identity)
                await session.flush()
        except IntegrityError:
            # The same openid signed in concurrently and won; use its account.
            created = False
            identity = (
                await session.scalars(
                    select(ResidentWechatIdentity).where(
                        ResidentWechatIdentity.appid == appid,
                        ResidentWechatIdentity.openid == openid,
                    )
                )
            ).one()
    elif unionid and identity.unionid is None:
        identity.unionid = unionid
    account = await session.get(ResidentAccount, identity.account_id)
    assert account is not None  # the foreign key guarantees it
    if info is not None:
        if info.nickname and not account.display_name:
            account.display_name = info.nickname[:100]
        if info.headimgurl.startswith(("https://", "http://")) and len(info.headimgurl) <= 500:
            account.avatar_url = info.headimgurl
    await session.flush()
    return account, created


# --- the signed-in resident ------------------------------------------------------------------


@dataclass(frozen=True)
class ResidentProfile:
    id: uuid.UUID
    phone: str | None  # masked, e.g. 138****0000
    display_name: str
    avatar_url: str
    wechat_linked: bool
    created_at: dt.datetime


async def get_profile(session: AsyncSession, actor: Actor) -> ResidentProfile:
    if actor.kind is not PrincipalKind.RESIDENT:
        raise Unauthorized()
    account = await session.get(ResidentAccount, actor.id)
    if account is None or not account.is_active:
        raise _disabled()
    linked = await session.scalar(
        select(func.count())
        .select_from(ResidentWechatIdentity)
        .where(ResidentWechatIdentity.account_id == account.id)
    )
    return ResidentProfile(
        id=account.id,
        phone=crypto.mask_phone(crypto.decrypt(account.phone_enc)) if account.phone_enc else None,
        display_name=account.display_name,
        avatar_url=account.avatar_url,
        wechat_linked=bool(linked),
        created_at=account.created_at,
    )
