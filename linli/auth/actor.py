"""Who is acting: the typed principal every service function receives."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field

from linli.auth.permissions import Permission, permissions_of


class PrincipalKind(enum.StrEnum):
    STAFF = "staff"
    RESIDENT = "resident"
    APP = "app"
    OPERATOR = "operator"
    SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    kind: PrincipalKind
    id: uuid.UUID
    tenant_id: uuid.UUID | None = None
    roles: frozenset[str] = frozenset()
    all_communities: bool = False
    community_ids: frozenset[uuid.UUID] = frozenset()
    scopes: frozenset[str] = frozenset()
    request_id: str | None = None
    ip: str | None = None
    display_name: str = ""
    permissions: frozenset[Permission] = field(default=frozenset())
    token_id: uuid.UUID | None = None  # an app token's jti, checked against revocation

    @classmethod
    def staff(
        cls,
        *,
        id: uuid.UUID,
        tenant_id: uuid.UUID,
        roles: frozenset[str],
        all_communities: bool,
        community_ids: frozenset[uuid.UUID],
        request_id: str | None = None,
        ip: str | None = None,
        display_name: str = "",
    ) -> Actor:
        return cls(
            kind=PrincipalKind.STAFF,
            id=id,
            tenant_id=tenant_id,
            roles=roles,
            all_communities=all_communities,
            community_ids=community_ids,
            request_id=request_id,
            ip=ip,
            display_name=display_name,
            permissions=permissions_of(roles),
        )

    @classmethod
    def app(
        cls,
        *,
        installation_id: uuid.UUID,
        tenant_id: uuid.UUID,
        scopes: frozenset[str],
        permissions: frozenset[Permission],
        community_ids: frozenset[uuid.UUID],
        token_id: uuid.UUID | None,
        display_name: str = "",
    ) -> Actor:
        """A partner app installation (开放平台应用): scopes map to ``permissions``,
        confined to the communities the company granted (never company-wide)."""
        return cls(
            kind=PrincipalKind.APP,
            id=installation_id,
            tenant_id=tenant_id,
            all_communities=False,
            community_ids=community_ids,
            scopes=scopes,
            display_name=display_name,
            permissions=permissions,
            token_id=token_id,
        )

    @classmethod
    def system(cls, tenant_id: uuid.UUID | None = None) -> Actor:
        """Work done by linli itself (jobs, seeding), audited as ``system``."""
        return cls(kind=PrincipalKind.SYSTEM, id=uuid.UUID(int=0), tenant_id=tenant_id)

    def can(self, permission: Permission) -> bool:
        if permission in (Permission.PUBLIC, Permission.AUTHENTICATED):
            return True
        if self.kind is PrincipalKind.RESIDENT:
            return permission is Permission.RESIDENT_SELF
        if self.kind is PrincipalKind.OPERATOR:
            return permission in (Permission.OPERATOR_TENANTS, Permission.OPERATOR_APPS_REVIEW)
        if self.kind is PrincipalKind.SYSTEM:
            return True
        return permission in self.permissions

    def may_see_community(self, community_id: uuid.UUID) -> bool:
        return self.all_communities or community_id in self.community_ids

    @property
    def principal(self) -> str:
        """Stable string naming the principal, e.g. for idempotency keys."""
        tenant = self.tenant_id or "-"
        return f"{self.kind}:{tenant}:{self.id}"
