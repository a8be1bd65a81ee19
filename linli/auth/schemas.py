"""API shapes of staff and operator sign-in, staff management, "who am I" and the audit log."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from linli.auth.permissions import Role
from linli.auth.service import StaffMember, WhoAmI
from linli.auth.tokens import IssuedTokens
from linli.core.schemas import ReadSchema, Schema

USERNAME = r"^[A-Za-z0-9_.-]{3,64}$"
PASSWORD_MIN = 10
PASSWORD_MAX = 200


class StaffLogin(Schema):
    company: str = Field(min_length=1, max_length=40, description="Company code, e.g. 'hyyw'")
    login: str = Field(
        min_length=1, max_length=64, description="Username or mainland mobile number"
    )
    password: str = Field(min_length=1, max_length=PASSWORD_MAX)


class OperatorLogin(Schema):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=PASSWORD_MAX)


class RefreshRequest(Schema):
    refresh_token: str = Field(min_length=1, max_length=200)


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme name, not a secret
    expires_in: int = Field(description="seconds the access token stays valid")
    refresh_token: str | None = Field(
        description="rotating refresh token; null for operators, who sign in again"
    )

    @classmethod
    def of(cls, tokens: IssuedTokens) -> TokenResponse:
        return cls(
            access_token=tokens.access_token,
            expires_in=tokens.expires_in,
            refresh_token=tokens.refresh_token or None,
        )


class StaffCreate(Schema):
    username: str = Field(pattern=USERNAME, description="Case-insensitive, unique in the company")
    display_name: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)
    phone: str | None = Field(
        None, max_length=32, description="Mainland mobile; lets them sign in by phone"
    )
    roles: list[Role] = Field(min_length=1, max_length=len(Role))
    all_communities: bool = Field(False, description="Works in every community of the company")
    community_ids: list[uuid.UUID] = Field(default_factory=list, max_length=5000)


class StaffUpdate(Schema):
    """Only the fields given change; ``phone: null`` removes the phone."""

    display_name: str | None = Field(None, min_length=1, max_length=100)
    phone: str | None = Field(None, max_length=32)
    roles: list[Role] | None = Field(None, min_length=1, max_length=len(Role))
    all_communities: bool | None = None
    community_ids: list[uuid.UUID] | None = Field(None, max_length=5000)
    is_active: bool | None = None

    def changes(self) -> dict[str, Any]:
        given = self.model_dump(exclude_unset=True)
        # null means "no change" for every field but the phone, where it means "remove".
        return {k: v for k, v in given.items() if v is not None or k == "phone"}


class PasswordReset(Schema):
    password: str = Field(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)


class StaffRead(BaseModel):
    id: uuid.UUID
    username: str
    display_name: str
    phone: str | None = Field(description="masked, e.g. 139****5678")
    roles: list[str]
    all_communities: bool
    community_ids: list[uuid.UUID]
    is_active: bool
    locked: bool = Field(description="locked out after failed sign-ins")
    last_login_at: dt.datetime | None
    created_at: dt.datetime

    @classmethod
    def of(cls, member: StaffMember) -> StaffRead:
        user = member.user
        return cls(
            id=user.id,
            username=user.username,
            display_name=user.display_name,
            phone=member.phone_masked,
            roles=sorted(user.roles),
            all_communities=user.all_communities,
            community_ids=member.community_ids,
            is_active=user.is_active,
            locked=member.locked,
            last_login_at=user.last_login_at,
            created_at=user.created_at,
        )


class TenantRef(ReadSchema):
    id: uuid.UUID
    slug: str
    name: str


class CommunityRef(ReadSchema):
    id: uuid.UUID
    code: str
    name: str


class MeRead(BaseModel):
    kind: str = Field(description="staff | resident | app | operator")
    id: uuid.UUID
    display_name: str
    tenant: TenantRef | None
    roles: list[str]
    permissions: list[str]
    all_communities: bool
    communities: list[CommunityRef] = Field(description="the communities I work in (first 200)")
    more_communities: bool

    @classmethod
    def of(cls, me: WhoAmI) -> MeRead:
        actor = me.actor
        return cls(
            kind=actor.kind.value,
            id=actor.id,
            display_name=actor.display_name,
            tenant=TenantRef.model_validate(me.tenant) if me.tenant else None,
            roles=sorted(actor.roles),
            permissions=me.permissions,
            all_communities=actor.all_communities,
            communities=[CommunityRef.model_validate(c) for c in me.communities],
            more_communities=me.more_communities,
        )


class AuditEntryRead(ReadSchema):
    id: uuid.UUID
    principal_kind: str
    principal_id: str
    action: str
    target_type: str
    target_id: str
    request_id: str | None
    ip: str | None
    detail: dict[str, Any]
    community_id: uuid.UUID | None = Field(
        None, description="the community of the target; none for company-wide actions"
    )
    created_at: dt.datetime

    @field_validator("ip", mode="before")
    @classmethod
    def address_text(cls, value: object) -> str | None:
        return None if value is None else str(value)  # psycopg gives inet as ipaddress objects
