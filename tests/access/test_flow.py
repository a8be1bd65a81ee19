"""Residents, doors and virtual devices over the real broker and database, end to end."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any

from sqlalchemy import func, select

from linli.access import service
from linli.access.models import AccessEvent, Device, Pass
from linli.access.simulator import VirtualDevice
from linli.auth.permissions import Role
from linli.db.engine import unit_of_work
from tests.access.helpers import Site, eventually, make_site, running_fleet, running_ingest
from tests.factories import bearer, staff_token

API = "/api/v1/access"


async def _my_community(client: Any, site: Site) -> dict[str, Any]:
    response = await client.get(f"{API}/me/doors", headers=bearer(site.resident_token))
    assert response.status_code == 200, response.text
    (community,) = response.json()
    return dict(community)


async def _events(site: Site, **where: Any) -> list[AccessEvent]:
    async with unit_of_work(site.company.id) as session:
        statement = select(AccessEvent).order_by(AccessEvent.occurred_at)
        for key, value in where.items():
            statement = statement.where(getattr(AccessEvent, key) == value)
        return list((await session.scalars(statement)).all())


async def test_a_resident_sees_their_doors_and_opens_one_remotely(client: Any) -> None:
    site = await make_site()
    gate, entrance = VirtualDevice(site.devices["gate"]), VirtualDevice(site.devices["entrance"])
    async with running_ingest(), running_fleet([gate, entrance]):
        mine = await _my_community(client, site)
        doors = {d["access_point_id"]: d for d in mine["doors"]}
        # The gate and their own building; not the other building, not the car park (no car).
        assert set(doors) == {str(site.gate_id), str(site.entrance_id)}

        async def online() -> bool:
            doors = (await _my_community(client, site))["doors"]
            return all(d["online"] for d in doors)

        await eventually(online)
        body = {
            "company_id": str(site.company.id),
            "pass_id": mine["pass_id"],
            "access_point_id": str(site.entrance_id),
        }
        response = await client.post(
            f"{API}/me/open", json=body, headers=bearer(site.resident_token)
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "done"
        assert len(entrance.opened) == 1 and not gate.opened

        # The other building's door is not theirs: it is not even found.
        refused = await client.post(
            f"{API}/me/open",
            json=body | {"access_point_id": str(site.other_entrance_id)},
            headers=bearer(site.resident_token),
        )
        assert refused.status_code == 404

        history = await client.get(
            f"{API}/me/history",
            params={"company_id": str(site.company.id), "pass_id": mine["pass_id"]},
            headers=bearer(site.resident_token),
        )
        assert history.status_code == 200
        kinds = [(e["kind"], e["method"]) for e in history.json()]
        assert ("open", "remote") in kinds

        # Staff find the passage by the person's name, phone or id, and by the door.
        staff = bearer(staff_token(site.company))
        for person in ("李", site.phone, str(site.resident_id)):
            found = await client.get(f"{API}/events", params={"person": person}, headers=staff)
            assert [e["method"] for e in found.json()["items"]] == ["remote"], person
        nobody = await client.get(f"{API}/events", params={"person": "赵"}, headers=staff)
        assert nobody.json()["items"] == []
        door = await client.get(
            f"{API}/events", params={"access_point_id": str(site.gate_id)}, headers=staff
        )
        assert door.json()["items"] == []


async def test_opening_a_door_whose_device_is_offline_answers_with_a_clear_timeout(
    client: Any,
) -> None:
    site = await make_site()
    mine = await _my_community(client, site)
    hung = VirtualDevice(site.devices["gate"], answer=False)  # receives, never answers
    body = {
        "company_id": str(site.company.id),
        "pass_id": mine["pass_id"],
        "access_point_id": str(site.entrance_id),  # nothing runs there at all
    }
    started = time.monotonic()
    response = await client.post(
        f"{API}/me/open",
        json=body,
        headers=bearer(site.resident_token) | {"Accept-Language": "en"},
    )
    assert response.status_code == 504
    problem = response.json()
    assert problem["code"] == "device_timeout" and "did not answer" in problem["detail"]
    assert time.monotonic() - started < 10
    async with running_fleet([hung]):
        response = await client.post(
            f"{API}/me/open",
            json=body | {"access_point_id": str(site.gate_id)},
            headers=bearer(site.resident_token),
        )
    assert response.status_code == 504
    # Both attempts are on record as denied, with the reason.
    denied = await _events(site, kind="denied")
    assert [e.reason for e in denied] == ["timeout", "timeout"]


async def test_qr_codes_visitors_entries_and_revocation(client: Any) -> None:
    site = await make_site()
    gate = VirtualDevice(site.devices["gate"], heartbeat_seconds=0.3)
    entrance = VirtualDevice(site.devices["entrance"], heartbeat_seconds=0.3)
    resident = bearer(site.resident_token)
    async with running_ingest(), running_fleet([gate, entrance]):
        mine = await _my_community(client, site)
        ref = {"company_id": str(site.company.id), "pass_id": mine["pass_id"]}

        qr = await client.post(f"{API}/me/qr", json=ref, headers=resident)
        assert qr.status_code == 200
        token = qr.json()["token"]
        assert gate.scan(token).ok and entrance.scan(token).ok

        now = dt.datetime.now(dt.UTC)
        invite = {
            **ref,
            "name": "王五",
            "phone": "13800138000",
            "valid_from": (now - dt.timedelta(minutes=1)).isoformat(),
            "valid_until": (now + dt.timedelta(hours=2)).isoformat(),
            "entries": 1,
        }
        issued = await client.post(f"{API}/me/visitors", json=invite, headers=resident)
        assert issued.status_code == 201, issued.text
        link = issued.json()["link"].removeprefix("/pass/")
        page = await client.get(f"{API}/pass-links/{link}")  # no sign-in: the link is enough
        assert page.status_code == 200
        assert "13800138000" not in page.text and page.json()["holder_name"] == "王五"
        visitor_token = page.json()["token"]
        assert gate.scan(visitor_token).ok
        assert gate.scan(visitor_token).refusal.value == "entries_used"  # type: ignore[union-attr]
        tampered_link = link[:-2] + ("AA" if link[-2:] != "AA" else "BB")
        assert (await client.get(f"{API}/pass-links/{tampered_link}")).status_code == 404

        second = await client.post(
            f"{API}/me/visitors", json=invite | {"entries": 5}, headers=resident
        )
        second_id = second.json()["access_pass"]["id"]
        second_token = (
            await client.get(f"{API}/pass-links/{second.json()['link'].removeprefix('/pass/')}")
        ).json()["token"]
        assert gate.scan(second_token).ok
        revoked = await client.post(
            f"{API}/me/visitors/{second_id}/revoke", json=ref, headers=resident
        )
        assert revoked.status_code == 200 and revoked.json()["revoked_at"]

        async def synced() -> bool:
            return uuid.UUID(second_id) in gate.verifier.revoked

        await eventually(synced)  # the next heartbeat reports an old list; linli sends the rest
        assert gate.scan(second_token).refusal.value == "revoked"  # type: ignore[union-attr]
        revoked_page = await client.get(
            f"{API}/pass-links/{second.json()['link'].removeprefix('/pass/')}"
        )
        assert revoked_page.json()["revoked"] is True and revoked_page.json()["token"] is None

        # Every use is logged; the first visitor pass counts its one entry.
        first_id = uuid.UUID(issued.json()["access_pass"]["id"])

        async def logged() -> bool:
            events = await _events(site, pass_id=first_id)
            return sorted(e.kind for e in events) == ["denied", "open"]

        await eventually(logged)
        async with unit_of_work(site.company.id) as session:
            used = await session.scalar(select(Pass.used_entries).where(Pass.id == first_id))
        assert used == 1
        staff = bearer(staff_token(site.company))
        search = await client.get(f"{API}/events", params={"pass_id": str(first_id)}, headers=staff)
        assert {e["reason"] for e in search.json()["items"]} == {"", "entries_used"}
        by_name = await client.get(f"{API}/events", params={"person": "王五"}, headers=staff)
        assert {e["pass_id"] for e in by_name.json()["items"]} >= {str(first_id)}
        # The resident's history shows their invited visitors' passages too.
        history = await client.get(f"{API}/me/history", params=ref, headers=resident)
        assert any(e["pass_id"] == str(first_id) for e in history.json())


async def test_front_desk_walk_in_and_courier_passes(client: Any) -> None:
    site = await make_site()
    staff = bearer(staff_token(site.company))
    response = await client.post(
        f"{API}/visitors",
        json={"community_id": str(site.community_id), "name": "访客甲", "phone": "13912345678"},
        headers=staff,
    )
    assert response.status_code == 201, response.text
    walk_in = response.json()["access_pass"]
    assert walk_in["access_point_ids"] == [str(site.gate_id)] and walk_in["max_entries"] == 1
    now = dt.datetime.now(dt.UTC)
    courier = await client.post(
        f"{API}/courier-passes",
        json={
            "community_id": str(site.community_id),
            "name": "顺丰 张师傅",
            "valid_from": now.isoformat(),
            "valid_until": (now + dt.timedelta(hours=8)).isoformat(),
        },
        headers=staff,
    )
    assert courier.status_code == 201
    too_long = await client.post(
        f"{API}/courier-passes",
        json={
            "community_id": str(site.community_id),
            "name": "x",
            "valid_from": now.isoformat(),
            "valid_until": (now + dt.timedelta(days=30)).isoformat(),
        },
        headers=staff,
    )
    assert too_long.status_code == 422
    listed = await client.get(f"{API}/passes", params={"current": "true"}, headers=staff)
    assert {p["kind"] for p in listed.json()["items"]} == {"visitor", "courier"}
    revoke = await client.post(f"{API}/passes/{walk_in['id']}/revoke", headers=staff)
    assert revoke.status_code == 200
    async with unit_of_work(site.company.id) as session:
        version, revoked = await service.revocation_list(session, site.community_id)
    assert version == 1 and revoked == [uuid.UUID(walk_in["id"])]


async def test_provisioning_keeps_no_secret_and_disabling_stops_a_device(client: Any) -> None:
    site = await make_site()
    staff = bearer(staff_token(site.company))
    response = await client.post(
        f"{API}/devices",
        json={"access_point_id": str(site.gate_id), "kind": "intercom", "name": "对讲1"},
        headers=staff,
    )
    assert response.status_code == 201
    issued = response.json()
    assert issued["topics"]["cmd"].endswith(f"/{issued['device']['id']}/cmd")
    async with unit_of_work(site.company.id) as session:
        device = await session.scalar(
            select(Device).where(Device.id == uuid.UUID(issued["device"]["id"]))
        )
        assert device is not None
        assert issued["mqtt_password"].encode() not in device.mqtt_secret_hash
        assert service.secret_matches(issued["mqtt_password"], device.mqtt_secret_hash)
    disabled = await client.post(f"{API}/devices/{issued['device']['id']}/disable", headers=staff)
    assert disabled.status_code == 200 and disabled.json()["enabled"] is False
    listed = await client.get(
        f"{API}/devices", params={"community_id": str(site.community_id)}, headers=staff
    )
    assert len(listed.json()["items"]) == 4


async def test_staff_only_see_their_communities_and_residents_cannot_use_staff_routes(
    client: Any,
) -> None:
    site = await make_site()
    stranger = bearer(
        staff_token(site.company, all_communities=False, community_ids=[uuid.uuid4()])
    )
    listed = await client.get(f"{API}/access-points", headers=stranger)
    assert listed.status_code == 200 and listed.json()["items"] == []
    assert (
        await client.get(f"{API}/access-points/{site.gate_id}", headers=stranger)
    ).status_code == 404
    resident = bearer(site.resident_token)
    assert (await client.get(f"{API}/devices", headers=resident)).status_code == 403
    async with unit_of_work(site.company.id) as session:
        count = await session.scalar(select(func.count()).select_from(Device))
    assert count == 3


async def test_the_guard_booth_opens_a_gate_and_is_audited(client: Any) -> None:
    from linli.core.models import AuditEntry

    site = await make_site()
    gate = VirtualDevice(site.devices["gate"])
    guard = bearer(staff_token(site.company))
    async with running_fleet([gate]):
        response = await client.post(f"{API}/access-points/{site.gate_id}/open", headers=guard)
    assert response.status_code == 200 and response.json()["status"] == "done"
    assert len(gate.opened) == 1
    async with unit_of_work(site.company.id) as session:
        actions = (
            await session.scalars(
                select(AuditEntry.action).where(AuditEntry.action == "access.remote_open")
            )
        ).all()
    assert actions == ["access.remote_open"]
    cashier = bearer(staff_token(site.company, roles=[Role.CASHIER]))
    refused = await client.post(f"{API}/access-points/{site.gate_id}/open", headers=cashier)
    assert refused.status_code == 403
