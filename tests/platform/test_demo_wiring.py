"""`linli demo`'s partner wiring without the whole demo: the demo's own functions seed the
partner, install its app for a company and start examples/parcel_locker as its child
process against a live linli. The resident sees its entry, signs in to it with linli
(SSO), and the app receives webhooks and issues a courier gate pass through the API."""

from __future__ import annotations

import time
import uuid
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg

from linli.access.models import AccessPointKind
from linli.auth.actor import Actor, PrincipalKind
from linli.core.tasks import deliver_to
from linli.db.engine import unit_of_work
from linli.demo import DemoResult, demo_children, running_children
from linli.platform import service, webhooks
from linli.platform.seed import DEMO_APP_NAME, wire_demo_partner
from tests.conftest import TEST_HOME, free_port
from tests.estate.factories import make_houses, make_resident, make_resident_account, random_phone
from tests.factories import bearer, make_company
from tests.live import live_server


def _wait_for(url: str, predicate, timeout: float = 20) -> dict:  # type: ignore[no-untyped-def, type-arg]
    deadline = time.monotonic() + timeout
    last: dict = {}  # type: ignore[type-arg]
    while time.monotonic() < deadline:
        try:
            last = httpx.get(url, timeout=2).json()
            if predicate(last):
                return last
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the example app did not get there: {last}")


async def test_demo_starts_the_example_partner_wired_to_the_company(owner_dsn: str) -> None:
    company = await make_company(communities=1)
    houses = await make_houses(company)
    phone = random_phone()
    await make_resident(company, house_id=houses[0], name="周先生", phone=phone)
    account_id, resident_token = await make_resident_account(phone, "周先生")
    async with unit_of_work(company.id) as session:
        from linli.access import service as access_service

        await access_service.create_access_point(
            session,
            Actor.system(company.id),
            community_id=company.communities[0],
            kind=AccessPointKind.COMMUNITY_GATE,
            name="南门",
        )
    partner_url = f"http://127.0.0.1:{free_port()}"
    first = await wire_demo_partner(
        company.id, company.communities, installed_by=company.admin_id, partner_url=partner_url
    )
    # run again (every `make demo`): same installation, fresh credentials
    wiring = await wire_demo_partner(
        company.id, company.communities, installed_by=company.admin_id, partner_url=partner_url
    )
    assert wiring.installation_id == first.installation_id
    assert wiring.partner.client_id != first.partner.client_id

    # the resident portal lists the partner's entry
    resident = Actor(kind=PrincipalKind.RESIDENT, id=account_id)
    async with unit_of_work() as session:
        entries = await service.portal_entries(session, resident)
    assert [(e.app.name, e.app.entry_url) for e in entries] == [
        (DEMO_APP_NAME, f"{partner_url}/h5")
    ]

    log_dir = TEST_HOME / "demo-wiring"
    with live_server({}, log_dir / "linli.log") as server:
        result = DemoResult(tenant_id=company.id, company="", slug="", logins=[], partner=wiring)
        children = demo_children(result, server.url)
        assert [c.url for c in children] == [f"{partner_url}/"]
        # the partner process gets its own settings only, none of linli's
        leaked = [n for n in children[0].env if n.startswith("LINLI_") and n != "LINLI_URL"]
        assert leaked == []
        with running_children(children) as processes:
            status_url = f"{partner_url}/status"
            _wait_for(status_url, lambda s: "handled" in s)

            # webhooks reach it, signed with the secret the demo handed it
            await _deliver(owner_dsn, company.id, "platform.app.installed", wiring.installation_id)
            _wait_for(status_url, lambda s: any(h.get("installed") for h in s["handled"]))

            # single sign-on from the portal entry into the partner's H5 page
            with httpx.Client(timeout=10) as browser:
                entry = browser.get(f"{entries[0].app.entry_url}?tenant_id={company.id}")
                assert entry.status_code == 303
                consent = urlsplit(entry.headers["location"])
                assert f"{consent.scheme}://{consent.netloc}" == server.url
                assert consent.path == "/portal/apps/authorize"
                params = {k: v[0] for k, v in parse_qs(consent.query).items()}
                allowed = httpx.post(
                    f"{server.url}/api/v1/platform/oauth/authorize",
                    params=params,
                    headers=bearer(resident_token),
                )
                assert allowed.status_code == 200, allowed.text
                back = browser.get(allowed.json()["redirect_to"])
                assert back.status_code == 303 and back.headers["location"] == "/h5/home"
                home = browser.get(f"{partner_url}/h5/home")
                assert home.status_code == 200 and "您好，周先生" in home.text
                # the resident calls a courier: a gate pass through linli's access API
                called = browser.post(f"{partner_url}/h5/courier-pass")
                assert called.status_code == 200 and 'data-testid="pass-issued"' in called.text
            status = _wait_for(
                status_url, lambda s: any(h["type"] == "h5.courier_pass" for h in s["handled"])
            )
            assert all(p.poll() is None for p in processes)
        assert all(p.poll() is not None for p in processes)  # stopped with the demo
    issued = next(h for h in status["handled"] if h["type"] == "h5.courier_pass")
    assert issued["community_id"] == str(company.communities[0])
    async with unit_of_work(company.id) as session:
        from linli.access import service as access_service

        gate_pass = await access_service.get_pass(
            session, Actor.system(company.id), pass_id=uuid.UUID(issued["pass_id"])
        )
    assert gate_pass.holder_name == "丰邻快递员"


async def _deliver(
    owner_dsn: str, tenant_id: uuid.UUID, event_type: str, installation_id: uuid.UUID
) -> None:
    """What the demo's worker does: outbox -> webhook rows -> signed POSTs."""
    with psycopg.connect(owner_dsn) as conn:
        rows = conn.execute(
            "SELECT id FROM outbox_events WHERE tenant_id = %s AND event_type = %s ORDER BY id",
            (tenant_id, event_type),
        ).fetchall()
    for (event_id,) in rows:
        await deliver_to(tenant_id, event_id, webhooks.WebhookConsumer())
    await webhooks.dispatch_installation(tenant_id, installation_id)
