"""Routes of resident sign-in (phone code, WeChat) and the signed-in resident. Thin by design.

Page concerns (cookies, portal redirects) live with the web shell, which calls
the same functions of :mod:`linli.auth.residents`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

from linli.auth import residents
from linli.auth.actor import Actor, PrincipalKind
from linli.auth.deps import Authorizer, DbSession, DeclaredRoute, client_ip, public
from linli.auth.permissions import Permission
from linli.auth.tokens import IssuedTokens
from linli.auth.wechat import WechatOAuthClient
from linli.config import get_settings
from linli.core.errors import BadRequest
from linli.core.schemas import Schema

router = APIRouter(prefix="/api/v1", route_class=DeclaredRoute, tags=["resident auth"])

Anyone = Annotated[Actor | None, Depends(public)]
Resident = Annotated[
    Actor, Depends(Authorizer(Permission.RESIDENT_SELF, kinds=(PrincipalKind.RESIDENT,)))
]


def wechat_client() -> WechatOAuthClient:
    """The WeChat client of a request (tests point it at a local fake)."""
    return WechatOAuthClient(get_settings())


Wechat = Annotated[WechatOAuthClient, Depends(wechat_client)]


class OtpRequest(Schema):
    phone: str = Field(
        max_length=32, description="Mainland mobile number; +86, spaces, full-width ok"
    )


class OtpRequested(BaseModel):
    expires_in: int = Field(description="seconds the code stays valid")


class OtpVerify(Schema):
    phone: str = Field(max_length=32)
    code: str = Field(max_length=16, description="the 6-digit code from the text message")


class RefreshRequest(Schema):
    refresh_token: str = Field(min_length=1, max_length=200)


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the scheme name, not a secret
    expires_in: int
    refresh_token: str

    @classmethod
    def of(cls, tokens: IssuedTokens) -> TokenResponse:
        return cls(
            access_token=tokens.access_token,
            expires_in=tokens.expires_in,
            refresh_token=tokens.refresh_token,
        )


class WechatTokenResponse(TokenResponse):
    redirect: str = Field(description="the same-site path the sign-in was started for")


class ResidentMe(BaseModel):
    id: uuid.UUID
    phone: str | None = Field(
        description="masked, e.g. 138****0000; null for a WeChat-only account"
    )
    display_name: str
    avatar_url: str
    wechat_linked: bool
    created_at: dt.datetime


def _request_id(request: Request) -> str | None:
    value = getattr(request.state, "request_id", None)
    return str(value) if value else None


@router.post(
    "/auth/resident/otp",
    status_code=202,
    response_model=OtpRequested,
    summary="Text a one-time sign-in code",
    description="Answers 202 alike for phones with and without an account.",
)
async def request_otp(
    _: Anyone, session: DbSession, body: OtpRequest, request: Request
) -> OtpRequested:
    await residents.request_otp(session, phone=body.phone, ip=client_ip(request))
    return OtpRequested(expires_in=get_settings().otp_ttl_seconds)


@router.post(
    "/auth/resident/token", response_model=TokenResponse, summary="Sign in with phone and code"
)
async def sign_in_with_code(
    _: Anyone, session: DbSession, body: OtpVerify, request: Request
) -> TokenResponse:
    tokens = await residents.verify_otp(
        session,
        phone=body.phone,
        code=body.code,
        ip=client_ip(request),
        request_id=_request_id(request),
    )
    return TokenResponse.of(tokens)


@router.post(
    "/auth/resident/refresh", response_model=TokenResponse, summary="Rotate a refresh token"
)
async def refresh(
    _: Anyone, session: DbSession, body: RefreshRequest, request: Request
) -> TokenResponse:
    tokens = await residents.refresh_resident(
        session,
        refresh_token=body.refresh_token,
        ip=client_ip(request),
        request_id=_request_id(request),
    )
    return TokenResponse.of(tokens)


@router.post("/auth/resident/logout", status_code=204, summary="End the session of a refresh token")
async def logout(_: Anyone, session: DbSession, body: RefreshRequest, request: Request) -> Response:
    await residents.logout_resident(
        session,
        refresh_token=body.refresh_token,
        ip=client_ip(request),
        request_id=_request_id(request),
    )
    return Response(status_code=204)


@router.get(
    "/auth/resident/wechat/authorize",
    status_code=302,
    response_class=RedirectResponse,
    summary="Start a WeChat sign-in (302 to WeChat)",
)
async def wechat_authorize(
    _: Anyone,
    client: Wechat,
    redirect: Annotated[
        str, Query(max_length=1000, description="same-site path to return to")
    ] = "/",
    scope: Annotated[Literal["snsapi_base", "snsapi_userinfo"], Query()] = "snsapi_base",
) -> RedirectResponse:
    settings = client.settings
    state, _state = residents.new_wechat_state(redirect=redirect, scope=scope, settings=settings)
    url = residents.wechat_authorize_url(
        redirect_uri=residents.wechat_callback_url(settings),
        state=state,
        scope=scope,
        settings=settings,
    )
    return RedirectResponse(url, status_code=302)


@router.get(
    "/auth/resident/wechat/callback",
    response_model=WechatTokenResponse,
    summary="Finish a WeChat sign-in: exchange the code, return tokens",
)
async def wechat_callback(
    _: Anyone,
    session: DbSession,
    request: Request,
    client: Wechat,
    state: Annotated[str, Query(max_length=2000)],
    code: Annotated[str | None, Query(max_length=512)] = None,
) -> WechatTokenResponse:
    verified = residents.read_wechat_state(state, settings=client.settings)
    if not code:
        # WeChat comes back with the state alone when the person refuses.
        raise BadRequest("WeChat sign-in was cancelled.", code="wechat_denied")
    tokens = await residents.login_wechat(
        session, code=code, ip=client_ip(request), request_id=_request_id(request), client=client
    )
    base = TokenResponse.of(tokens)
    return WechatTokenResponse(**base.model_dump(), redirect=verified.redirect)


@router.get("/resident/me", response_model=ResidentMe, summary="The signed-in resident")
async def me(actor: Resident, session: DbSession) -> ResidentMe:
    profile = await residents.get_profile(session, actor)
    return ResidentMe(
        id=profile.id,
        phone=profile.phone,
        display_name=profile.display_name,
        avatar_url=profile.avatar_url,
        wechat_linked=profile.wechat_linked,
        created_at=profile.created_at,
    )
