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

    # --- billing (issue "Billing, cashier and ledger") ---
    BILLING_READ = "billing.read"  # fee items, bills, balances, receipts, statements
    BILLING_CONFIGURE = "billing.configure"  # fee items, prices, late-fee and discount rules
    BILLING_RUNS = "billing.runs.manage"  # preview, issue and revert billing runs
    METER_READINGS_WRITE = "billing.meters.write"  # enter or import meter readings
    CASHIER = "billing.cashier"  # take payments at the counter, shifts, receipts
    RECEIPTS_VOID = "billing.receipts.void"  # same-day void with a reason
    ADJUSTMENTS_REQUEST = "billing.adjustments.request"  # credit notes, late-fee waivers
    ADJUSTMENTS_APPROVE = "billing.adjustments.approve"
    LEDGER_READ = "billing.ledger.read"  # journal, reports computed from the ledger
    # --- online payments (issue "Online payments: WeChat Pay v3 and Alipay") ---
    PAYMENTS_READ = "payments.read"  # payment orders, refunds, reconciliation, exceptions
    PAYMENTS_MERCHANTS = "payments.merchants.manage"  # merchant accounts and their keys
    PAYMENTS_REFUND_REQUEST = "payments.refunds.request"
    PAYMENTS_REFUND_APPROVE = "payments.refunds.approve"  # finance approves, then money moves
    PAYMENTS_RECONCILE = "payments.reconcile"  # run reconciliation, resolve exceptions
    # --- access control (issue "Access control, visitors and vehicle gates") ---
    ACCESS_READ = "access.read"  # devices, access points, events, passes
    ACCESS_DEVICES_MANAGE = "access.devices.manage"  # provision, disable, rebind devices
    ACCESS_VISITORS = "access.visitors.manage"  # walk-in visitors, revoke passes
    ACCESS_OPERATE = "access.operate"  # open a door or gate from the console
    # --- service desk (issue "Service desk") ---
    DESK_ORDERS_READ = "desk.orders.read"  # work orders, timelines, reports
    DESK_ORDERS_WRITE = "desk.orders.write"  # create from a call, dispatch, escalate, close
    DESK_ORDERS_WORK = "desk.orders.work"  # a technician's own queue: accept, record, finish
    DESK_CONFIGURE = "desk.configure"  # categories, SLAs, working hours, holidays
    NOTICES_WRITE = "notices.write"  # draft announcements
    NOTICES_APPROVE = "notices.approve"  # approve and publish announcements
    NOTIFICATIONS_READ = "notifications.read"  # delivery log, templates
    VOTES_MANAGE = "votes.manage"  # owner votes and surveys: create, open, close, export
    # --- open platform (issue "Open platform") ---
    PLATFORM_APPS_MANAGE = "platform.apps.manage"  # install, grant scopes to, revoke partner apps
    PLATFORM_ACCESS_LOG_READ = "platform.access_log.read"  # what partner apps read, per day
    PLATFORM_DEVELOPER = "platform.developer"  # a partner developer in the developer portal
    PLATFORM_PARCELS_WRITE = "platform.parcels.write"  # scope parcels:write (partner apps only)
    PLATFORM_NOTIFY = "platform.notifications.send"  # scope notifications:send (apps only)

    RESIDENT_SELF = "resident.self"  # a resident acting on their own account

    OPERATOR_TENANTS = "operator.tenants.manage"
    OPERATOR_APPS_REVIEW = "operator.apps.review"  # partner apps: approve, reject, suspend


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

_FOUNDATION_AND_ESTATE: dict[Role, frozenset[Permission]] = {
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


# Each domain grants its permissions to roles in its own table (one block per
# domain, so work on two domains never edits the same lines); ROLE_PERMISSIONS
# is their union.
_BILLING: dict[Role, frozenset[Permission]] = {
    Role.COMPANY_ADMIN: frozenset(
        {
            Permission.BILLING_READ,
            Permission.BILLING_CONFIGURE,
            Permission.BILLING_RUNS,
            Permission.METER_READINGS_WRITE,
            Permission.ADJUSTMENTS_REQUEST,
            Permission.ADJUSTMENTS_APPROVE,
            Permission.LEDGER_READ,
        }
    ),
    Role.COMMUNITY_MANAGER: frozenset(
        {
            Permission.BILLING_READ,
            Permission.METER_READINGS_WRITE,
            Permission.ADJUSTMENTS_REQUEST,
        }
    ),
    Role.FINANCE: frozenset(
        {
            Permission.BILLING_READ,
            Permission.BILLING_CONFIGURE,
            Permission.BILLING_RUNS,
            Permission.METER_READINGS_WRITE,
            Permission.CASHIER,
            Permission.RECEIPTS_VOID,
            Permission.ADJUSTMENTS_REQUEST,
            Permission.ADJUSTMENTS_APPROVE,
            Permission.LEDGER_READ,
        }
    ),
    Role.CASHIER: frozenset(
        {
            Permission.BILLING_READ,
            Permission.CASHIER,
            Permission.RECEIPTS_VOID,
            Permission.ADJUSTMENTS_REQUEST,
        }
    ),
    Role.FRONT_DESK: frozenset({Permission.BILLING_READ}),
}

_ACCESS: dict[Role, frozenset[Permission]] = {
    Role.COMPANY_ADMIN: frozenset(
        {
            Permission.ACCESS_READ,
            Permission.ACCESS_DEVICES_MANAGE,
            Permission.ACCESS_VISITORS,
            Permission.ACCESS_OPERATE,
        }
    ),
    Role.COMMUNITY_MANAGER: frozenset(
        {
            Permission.ACCESS_READ,
            Permission.ACCESS_DEVICES_MANAGE,
            Permission.ACCESS_VISITORS,
            Permission.ACCESS_OPERATE,
        }
    ),
    Role.FRONT_DESK: frozenset({Permission.ACCESS_READ, Permission.ACCESS_VISITORS}),
    Role.SECURITY_GUARD: frozenset(
        {Permission.ACCESS_READ, Permission.ACCESS_VISITORS, Permission.ACCESS_OPERATE}
    ),
}

_DESK: dict[Role, frozenset[Permission]] = {
    Role.COMPANY_ADMIN: frozenset(
        {
            Permission.DESK_ORDERS_READ,
            Permission.DESK_ORDERS_WRITE,
            Permission.DESK_CONFIGURE,
            Permission.NOTICES_WRITE,
            Permission.NOTICES_APPROVE,
            Permission.NOTIFICATIONS_READ,
            Permission.VOTES_MANAGE,
        }
    ),
    Role.COMMUNITY_MANAGER: frozenset(
        {
            Permission.DESK_ORDERS_READ,
            Permission.DESK_ORDERS_WRITE,
            Permission.DESK_CONFIGURE,
            Permission.NOTICES_WRITE,
            Permission.NOTICES_APPROVE,
            Permission.NOTIFICATIONS_READ,
            Permission.VOTES_MANAGE,
        }
    ),
    Role.FRONT_DESK: frozenset(
        {
            Permission.DESK_ORDERS_READ,
            Permission.DESK_ORDERS_WRITE,
            Permission.NOTICES_WRITE,
            Permission.NOTIFICATIONS_READ,
        }
    ),
    Role.TECHNICIAN: frozenset({Permission.DESK_ORDERS_WORK}),
}


_PAYMENTS: dict[Role, frozenset[Permission]] = {
    Role.COMPANY_ADMIN: frozenset({Permission.PAYMENTS_READ, Permission.PAYMENTS_MERCHANTS}),
    Role.FINANCE: frozenset(
        {
            Permission.PAYMENTS_READ,
            Permission.PAYMENTS_REFUND_REQUEST,
            Permission.PAYMENTS_REFUND_APPROVE,
            Permission.PAYMENTS_RECONCILE,
        }
    ),
    Role.CASHIER: frozenset({Permission.PAYMENTS_READ, Permission.PAYMENTS_REFUND_REQUEST}),
    Role.COMMUNITY_MANAGER: frozenset({Permission.PAYMENTS_READ}),
}


_PLATFORM: dict[Role, frozenset[Permission]] = {
    Role.COMPANY_ADMIN: frozenset(
        {Permission.PLATFORM_APPS_MANAGE, Permission.PLATFORM_ACCESS_LOG_READ}
    ),
}


def _union(*tables: dict[Role, frozenset[Permission]]) -> dict[Role, frozenset[Permission]]:
    """Merge the domain tables; a company admin holds every staff permission of them all.

    Staff may only grant roles whose permissions they hold themselves, so the
    admin's set must cover every role's (including a technician's own queue).
    """
    merged = {
        role: frozenset().union(*(table.get(role, frozenset()) for table in tables))
        for role in Role
    }
    merged[Role.COMPANY_ADMIN] = frozenset().union(*merged.values())
    return merged


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = _union(
    _FOUNDATION_AND_ESTATE, _BILLING, _ACCESS, _DESK, _PLATFORM, _PAYMENTS
)


def permissions_of(roles: list[str] | tuple[str, ...] | frozenset[str]) -> frozenset[Permission]:
    granted: set[Permission] = set()
    for name in roles:
        try:
            granted |= ROLE_PERMISSIONS[Role(name)]
        except ValueError:
            continue  # a role this version does not know grants nothing
    return frozenset(granted)
