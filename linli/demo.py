"""The demo property company that ``linli demo`` and ``linli seed --demo`` create.

Idempotent: running it again finds what exists and creates only what is
missing, so ``make demo`` can be run every morning. Accounts that already
exist are left alone (someone may have changed their password); the printed
table says which ones were created this time.

The passwords are fixed and printed on purpose: this is a demo on a laptop.
It refuses to run with ``LINLI_ENV=prod``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select

from linli.auth.actor import Actor
from linli.auth.permissions import Role
from linli.config import get_settings
from linli.core.errors import Conflict

DEMO_SLUG = "demo"
DEMO_NAME = "海纳物业 (演示)"
STAFF_PASSWORD = "linli-demo-2024"  # noqa: S105 - printed demo login
OPERATOR_USERNAME = "operator"
OPERATOR_PASSWORD = "linli-operator-2024"  # noqa: S105 - printed demo login


@dataclass(frozen=True)
class DemoCommunity:
    code: str
    name: str
    address: str


COMMUNITIES = (
    DemoCommunity("HNHY", "海纳花园", "广东省深圳市南山区科技园南区海天二路 33 号"),
    DemoCommunity("LLW", "邻里湾", "广东省广州市天河区珠江新城花城大道 88 号"),
)


@dataclass(frozen=True)
class DemoStaff:
    username: str
    display_name: str
    role: Role
    # Index into COMMUNITIES; None = every community (company admin).
    community: int | None


STAFF = (
    DemoStaff("admin", "王总", Role.COMPANY_ADMIN, None),
    DemoStaff("manager", "李经理", Role.COMMUNITY_MANAGER, 0),
    DemoStaff("finance", "张会计", Role.FINANCE, 0),
    DemoStaff("cashier", "刘出纳", Role.CASHIER, 0),
    DemoStaff("frontdesk", "陈小姐", Role.FRONT_DESK, 1),
    DemoStaff("technician", "赵师傅", Role.TECHNICIAN, 1),
    DemoStaff("guard", "孙师傅", Role.SECURITY_GUARD, 1),
)

# Numbers of the 137 0013 7xxx range (unused by tests); residents sign in with a code the dev
# SMS provider writes to the log.
RESIDENTS = (
    ("13700137001", "周先生"),
    ("13700137002", "吴女士"),
    ("13700137003", "郑阿姨"),
)


@dataclass(frozen=True)
class DemoLogin:
    """One row of the table ``linli demo`` prints."""

    kind: str  # staff | operator | resident | developer
    role: str  # a Role value for staff, else the kind
    login: str
    secret: str  # the password, or how to get a one-time code
    who: str
    scope: str
    created: bool


@dataclass(frozen=True)
class DemoResult:
    tenant_id: uuid.UUID
    company: str
    slug: str
    logins: list[DemoLogin]
    # community id -> simulated devices seeded there (the demo runs a simulator for them)
    simulated_devices: dict[uuid.UUID, int] = field(default_factory=dict)


Step = Callable[[str], None]


def _no_step(_: str) -> None:
    return None


def steps_count() -> int:
    """How many progress steps :func:`seed_demo` reports (for a progress bar)."""
    return 9 + len(COMMUNITIES) + len(STAFF) + len(RESIDENTS)


async def seed_demo(*, step: Step = _no_step) -> DemoResult:
    """Create (or complete) the demo company, its staff, an operator and some residents."""
    if get_settings().env == "prod":
        raise RuntimeError(
            "refusing to seed demo accounts with known passwords when LINLI_ENV=prod"
        )
    from linli.auth import service as auth_service
    from linli.db.engine import unit_of_work
    from linli.tenancy import service as tenancy_service
    from linli.tenancy.models import Community, Operator

    logins: list[DemoLogin] = []
    async with unit_of_work() as session:
        tenant = await tenancy_service.get_tenant_by_slug(session, DEMO_SLUG)
        admin_created = tenant is None
        if tenant is None:
            tenant = await tenancy_service.create_tenant(
                session,
                Actor.system(),
                slug=DEMO_SLUG,
                name=DEMO_NAME,
                admin_username=STAFF[0].username,
                admin_display_name=STAFF[0].display_name,
                admin_password=STAFF_PASSWORD,
            )
        tenant_id, company = tenant.id, tenant.name
    step("company")

    system = Actor.system(tenant_id)
    community_ids: list[uuid.UUID] = []
    async with unit_of_work(tenant_id) as session:
        for community in COMMUNITIES:
            # RLS shows this company's rows only; codes are unique within a company.
            existing_id = await session.scalar(
                select(Community.id).where(Community.code == community.code)
            )
            if existing_id is None:
                created_community = await tenancy_service.create_community(
                    session,
                    system,
                    code=community.code,
                    name=community.name,
                    address=community.address,
                )
                existing_id = created_community.id
            community_ids.append(existing_id)
            step(f"community {community.code}")

    from linli.estate.demo import seed_demo_estate

    # The portal's demo residents own houses in the first community.
    await seed_demo_estate(tenant_id, [c.code for c in COMMUNITIES], RESIDENTS)
    step("estate")

    from linli.billing.seed import seed_demo as seed_demo_billing

    # Fee items of every community and last month's bills, so the cashier has work.
    await seed_demo_billing(tenant_id)
    step("billing")

    from linli.access.seed import seed_demo as seed_demo_access

    # Gates, building doors and their devices; `linli device-sim` brings them online.
    await seed_demo_access(tenant_id, community_ids)
    simulated = await _simulated_devices(tenant_id)
    step("access control")

    from linli.notices import seed as notices_seed

    await notices_seed.seed_demo(tenant_id=tenant_id, community_code=COMMUNITIES[0].code)
    step("announcements")

    for member in STAFF:
        scope = "all" if member.community is None else COMMUNITIES[member.community].name
        if member is STAFF[0]:
            created = admin_created
        else:
            created = True
            try:
                async with unit_of_work(tenant_id) as session:
                    await auth_service.create_staff(
                        session,
                        system,
                        username=member.username,
                        display_name=member.display_name,
                        password=STAFF_PASSWORD,
                        roles=[member.role],
                        all_communities=member.community is None,
                        community_ids=[]
                        if member.community is None
                        else [community_ids[member.community]],
                    )
            except Conflict:
                created = False  # seeded by an earlier run
        logins.append(
            DemoLogin(
                "staff",
                member.role.value,
                member.username,
                STAFF_PASSWORD,
                member.display_name,
                scope,
                created,
            )
        )
        step(f"staff {member.username}")

    async with unit_of_work() as session:
        operator = await session.scalar(
            select(Operator).where(Operator.username == OPERATOR_USERNAME)
        )
        if operator is None:
            await auth_service.create_operator(
                session,
                username=OPERATOR_USERNAME,
                display_name="平台运营",
                password=OPERATOR_PASSWORD,
            )
    logins.append(
        DemoLogin(
            "operator",
            "operator",
            OPERATOR_USERNAME,
            OPERATOR_PASSWORD,
            "平台运营",
            "-",
            operator is None,
        )
    )
    step("operator")

    from linli.auth import residents
    from linli.auth.models import ResidentAccount
    from linli.core import crypto

    for phone, name in RESIDENTS:
        async with unit_of_work() as session:
            known = await session.scalar(
                select(ResidentAccount.id).where(
                    ResidentAccount.phone_hash == crypto.blind_index(phone)
                )
            )
            await residents.ensure_resident_account(session, phone=phone, display_name=name)
            created = known is None
        logins.append(
            DemoLogin("resident", "resident", phone, "SMS code (in the log)", name, "-", created)
        )
        step(f"resident {name}")

    # The service desk needs its technician (above); the vote, the owners of the estate.
    from linli.votes.seed import seed_demo as seed_votes
    from linli.workorders.seed import seed_demo as seed_workorders

    await seed_workorders(tenant_id)
    step("work orders")
    await seed_votes(tenant_id)
    step("owner vote")

    # A partner (a parcel-locker company) with an approved app, for the developer
    # portal and examples/parcel_locker.
    from linli.platform.seed import seed_demo_partner

    partner = await seed_demo_partner()
    logins.append(
        DemoLogin(
            "developer",
            "developer",
            partner.developer_email,
            partner.developer_password,
            "丰邻快递柜 (partner)",
            "-",
            False,
        )
    )
    step("partner app")

    return DemoResult(
        tenant_id=tenant_id,
        company=company,
        slug=DEMO_SLUG,
        logins=logins,
        simulated_devices=simulated,
    )


async def _simulated_devices(tenant_id: uuid.UUID) -> dict[uuid.UUID, int]:
    """Per community, how many demo devices `linli device-sim` should bring online."""
    from sqlalchemy import func

    from linli.access.models import Device
    from linli.db.engine import unit_of_work

    async with unit_of_work(tenant_id) as session:
        rows = await session.execute(
            select(Device.community_id, func.count())
            .where(Device.vendor == "linli-sim")
            .group_by(Device.community_id)
        )
        return {community: count for community, count in rows.tuples()}
