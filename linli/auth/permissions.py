"""Roles and the permissions they carry. One table, read by every check.

A permission is ``domain.thing.verb``. Each endpoint declares exactly one (or
``public``) through its :class:`linli.auth.deps.Authorizer`, and the OpenAPI
test fails on an endpoint that declares none.
"""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    COMPANY_ADMIN = "company_admin"  # 公司管理员
    COMMUNITY_MANAGER = "community_manager"  # 项目经理 / 小区经理
    FINANCE = "finance"  # 财务
    CASHIER = "cashier"  # 收银员
    FRONT_DESK = "front_desk"  # 前台 / 客服
    TECHNICIAN = "technician"  # 维修工
    SECURITY_GUARD = "security_guard"  # 保安


class Permission(enum.StrEnum):
    PUBLIC = "public"
    AUTHENTICATED = "authenticated"  # any signed-in principal, e.g. "who am I"

    COMMUNITIES_READ = "tenancy.communities.read"
    COMMUNITIES_WRITE = "tenancy.communities.write"
    STAFF_READ = "auth.staff.read"
    STAFF_WRITE = "auth.staff.write"
    AUDIT_READ = "core.audit.read"
    IMPORTS_RUN = "imports.run"  # bulk import of estate data (dry run, jobs, templates)
    EXPORTS_RUN = "exports.run"  # spreadsheet exports of estate lists
    ESTATE_READ = "estate.read"  # buildings, houses, parking, facilities, tree and counts
    ESTATE_WRITE = "estate.write"
    RESIDENTS_READ = "residents.read"  # residents (phone / ID masked), relations, vehicles
    RESIDENTS_WRITE = "residents.write"
    RESIDENTS_READ_CONTACT = "residents.contact.read"  # full phone and ID-card numbers
    CLAIMS_REVIEW = "residents.claims.review"  # approve / reject portal house claims
    STAFF_RECORDS_READ = "staff.records.read"  # HR records (员工档案)
    STAFF_RECORDS_WRITE = "staff.records.write"

    RESIDENT_SELF = "resident.self"  # a resident acting on their own account

    OPERATOR_TENANTS = "operator.tenants.manage"


_EVERY_STAFF = frozenset({Permission.COMMUNITIES_READ})
# Estate, residents and staff records: company admins and community managers (in their
# granted communities — services scope every query) hold all of them.
_ESTATE_ALL = frozenset(
    {
        Permission.ESTATE_READ,
        Permission.ESTATE_WRITE,
        Permission.RESIDENTS_READ,
        Permission.RESIDENTS_WRITE,
        Permission.RESIDENTS_READ_CONTACT,
        Permission.CLAIMS_REVIEW,
        Permission.STAFF_RECORDS_READ,
        Permission.STAFF_RECORDS_WRITE,
    }
)

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.COMPANY_ADMIN: frozenset(
        {
            Permission.COMMUNITIES_READ,
            Permission.COMMUNITIES_WRITE,
            Permission.STAFF_READ,
            Permission.STAFF_WRITE,
            Permission.AUDIT_READ,
            Permission.IMPORTS_RUN,
            Permission.EXPORTS_RUN,
        }
    )
    | _ESTATE_ALL,
    Role.COMMUNITY_MANAGER: _EVERY_STAFF
    | {Permission.STAFF_READ, Permission.AUDIT_READ, Permission.IMPORTS_RUN, Permission.EXPORTS_RUN}
    | _ESTATE_ALL,
    Role.FINANCE: _EVERY_STAFF | {Permission.ESTATE_READ, Permission.RESIDENTS_READ},
    Role.CASHIER: _EVERY_STAFF | {Permission.ESTATE_READ, Permission.RESIDENTS_READ},
    Role.FRONT_DESK: _EVERY_STAFF
    | {
        Permission.ESTATE_READ,
        Permission.RESIDENTS_READ,
        Permission.RESIDENTS_WRITE,
        Permission.RESIDENTS_READ_CONTACT,
        Permission.CLAIMS_REVIEW,
    },
    Role.TECHNICIAN: _EVERY_STAFF | {Permission.ESTATE_READ},
    Role.SECURITY_GUARD: _EVERY_STAFF | {Permission.ESTATE_READ},
}


def permissions_of(roles: list[str] | tuple[str, ...] | frozenset[str]) -> frozenset[Permission]:
    granted: set[Permission] = set()
    for name in roles:
        try:
            granted |= ROLE_PERMISSIONS[Role(name)]
        except ValueError:
            continue  # a role this version does not know grants nothing
    return frozenset(granted)
