"""The demo property company that ``linli demo`` and ``linli seed --demo`` create.

Idempotent: running it again finds what exists and creates only what is
missing, so ``make demo`` can be run every morning. Accounts that already
exist are left alone (someone may have changed their password); the printed
table says which ones were created this time.

The passwords are fixed and printed on purpose: this is a demo on a laptop.
It refuses to run with ``LINLI_ENV=prod``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from linli.auth.actor import Actor
from linli.auth.permissions import Role
from linli.config import get_settings
from linli.core.errors import Conflict

if TYPE_CHECKING:
    from linli.platform.seed import PartnerWiring

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
    # the example partner app's credentials and the company's installation of it
    partner: PartnerWiring | None = None


Step = Callable[[str], None]


def _no_step(_: str) -> None:
    return None


def steps_count() -> int:
    """How many progress steps :func:`seed_demo` reports (for a progress bar)."""
    return 10 + len(COMMUNITIES) + len(STAFF) + len(RESIDENTS)


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

    # A partner (a parcel-locker company) with an approved app the company installed,
    # for the developer portal and examples/parcel_locker (which `linli demo` runs).
    from linli.auth.models import StaffUser
    from linli.platform.seed import wire_demo_partner

    async with unit_of_work(tenant_id) as session:
        admin_id = await session.scalar(
            select(StaffUser.id).where(StaffUser.username == STAFF[0].username)
        )
    if admin_id is None:  # the company's first admin was renamed or removed
        raise RuntimeError(f"the demo company has no staff user {STAFF[0].username!r}")
    wiring = await wire_demo_partner(
        tenant_id,
        community_ids,
        installed_by=admin_id,
        partner_url=f"http://127.0.0.1:{_partner_port()}",
    )
    partner = wiring.partner
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

    # WeChat Pay and Alipay merchant accounts per community, keyed to the sandboxes that
    # `linli demo` runs (`linli sandbox-pay`): residents pay online, the counter shows QRs.
    from linli.payments.sandboxes import seed_demo_accounts

    await seed_demo_accounts(tenant_id, community_ids)
    step("payment sandboxes")

    return DemoResult(
        tenant_id=tenant_id,
        company=company,
        slug=DEMO_SLUG,
        logins=logins,
        simulated_devices=simulated,
        partner=wiring,
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


# --- processes the demo runs beside the server -------------------------------------------------

PARTNER_PORT = 9100  # examples/parcel_locker; another free port when this one is taken
ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_APP = ROOT / "examples" / "parcel_locker" / "app.py"
SDK_PATH = ROOT / "sdk" / "python"


def _partner_port() -> int:
    with socket.socket() as sock:
        if sock.connect_ex(("127.0.0.1", PARTNER_PORT)) != 0:
            return PARTNER_PORT
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class DemoChild:
    """A process ``linli demo`` runs beside the server, stopped with it.

    ``env`` is the child's whole environment (plus PATH): a partner process gets
    its own credentials and nothing of linli's settings or secrets.
    """

    name: str
    argv: list[str]
    env: dict[str, str]
    url: str = ""  # printed with the demo logins
    note: str = ""


def parcel_locker_child(result: DemoResult, linli_url: str) -> DemoChild | None:
    """examples/parcel_locker, with the demo company's installation of it wired in."""
    wiring = result.partner
    if wiring is None or not EXAMPLE_APP.is_file():  # an installed wheel has no examples/
        return None
    return DemoChild(
        name="Partner app",
        argv=[sys.executable, str(EXAMPLE_APP)],
        env=example_app_env(wiring, linli_url),
        url=f"{wiring.partner_url}/",
        note="丰邻快递柜, an example partner: residents open it from 服务 in the portal",
    )


def example_app_env(wiring: PartnerWiring, linli_url: str) -> dict[str, str]:
    """The example app's configuration: the SDK on its path, its credentials, where it
    listens, and the installation it was given (a partner keeps these in its own store)."""
    port = wiring.partner_url.rsplit(":", 1)[1]
    return {
        "PYTHONPATH": str(SDK_PATH),  # the SDK only, not linli
        "LINLI_URL": linli_url.rstrip("/"),
        "CLIENT_ID": wiring.partner.client_id,
        "CLIENT_SECRET": wiring.partner.client_secret,
        "WEBHOOK_SECRET": wiring.partner.webhook_secret,
        "PORT": port,
        "PUBLIC_URL": wiring.partner_url,
        "INSTALLATIONS": f"{wiring.tenant_id}:{wiring.installation_id}",
        "PYTHONUNBUFFERED": "1",
    }


def payment_sandbox_settings(linli_url: str) -> dict[str, str]:
    """Point the demo's app at the payment sandboxes: providers post notifications back to
    ``linli_url``, and the portal sends payers to the sandbox's pay page."""
    from linli.payments import sandboxes

    return {
        "LINLI_PAYMENTS_PUBLIC_URL": linli_url.rstrip("/"),
        "LINLI_PAYMENTS_SANDBOX_WECHATPAY_URL": sandboxes.wechat_url(),
        "LINLI_PAYMENTS_SANDBOX_ALIPAY_URL": sandboxes.alipay_url(),
    }


ChildBuilder = Callable[[DemoResult, str], DemoChild | None]

# Every process ``linli demo`` starts beside the server (the device simulators are
# started by the server itself). Another sandbox for the demo (a payment provider's,
# say) is one builder appended here.
DEMO_CHILDREN: list[ChildBuilder] = [
    parcel_locker_child,
]


def demo_children(result: DemoResult, linli_url: str) -> list[DemoChild]:
    return [child for build in DEMO_CHILDREN if (child := build(result, linli_url)) is not None]


@contextlib.contextmanager
def running_children(children: Sequence[DemoChild]) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start ``children``; stop them (SIGTERM, then kill) when the block ends."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        for child in children:
            env = {"PATH": os.environ.get("PATH", ""), **child.env}
            started.append(subprocess.Popen(child.argv, env=env, cwd=ROOT))  # noqa: S603
        yield started
    finally:
        for process in started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in started:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
