"""``linli seed --demo``: the demo company, its logins, and that seeding twice changes nothing."""

from __future__ import annotations

from linli import demo
from linli.auth import sms
from linli.auth.permissions import Role
from linli.estate import demo as estate_demo
from tests.auth.staff_helpers import sign_in
from tests.cli.helpers import linli
from tests.factories import bearer


async def test_demo_seed_is_idempotent_and_every_printed_login_works(client) -> None:
    first = linli("seed", "--demo")
    assert first.returncode == 0, first.stderr
    second = linli("seed", "--demo")
    assert second.returncode == 0, second.stderr
    for member in demo.STAFF:
        assert member.username in first.stdout
    assert demo.STAFF_PASSWORD in first.stdout and demo.OPERATOR_PASSWORD in first.stdout

    # Every role of the permission table has a demo login.
    assert {member.role for member in demo.STAFF} == set(Role)

    communities_seen: dict[str, set[str]] = {}
    for member in demo.STAFF:
        response = await sign_in(client, demo.DEMO_SLUG, member.username, demo.STAFF_PASSWORD)
        assert response.status_code == 200, (member.username, response.text)
        token = response.json()["access_token"]
        listed = await client.get("/api/v1/communities", headers=bearer(token))
        assert listed.status_code == 200
        communities_seen[member.username] = {c["name"] for c in listed.json()["items"]}

    # Seeding twice made no second copy of anything.
    all_names = {c.name for c in demo.COMMUNITIES}
    assert communities_seen["admin"] == all_names and len(all_names) == 2
    for member in demo.STAFF[1:]:
        assert member.community is not None
        assert communities_seen[member.username] == {demo.COMMUNITIES[member.community].name}

    operator = await client.post(
        "/api/v1/auth/operator/token",
        json={"username": demo.OPERATOR_USERNAME, "password": demo.OPERATOR_PASSWORD},
    )
    assert operator.status_code == 200, operator.text
    tenants = await client.get(
        "/api/v1/operator/tenants", headers=bearer(operator.json()["access_token"])
    )
    assert [t["slug"] for t in tenants.json()["items"]].count(demo.DEMO_SLUG) == 1

    phone, name = demo.RESIDENTS[0]
    assert (
        await client.post("/api/v1/auth/resident/otp", json={"phone": phone})
    ).status_code == 202
    code = sms.dev_outbox()[phone]
    signed_in = await client.post(
        "/api/v1/auth/resident/token", json={"phone": phone, "code": code}
    )
    assert signed_in.status_code == 200, signed_in.text
    me = await client.get("/api/v1/resident/me", headers=bearer(signed_in.json()["access_token"]))
    assert me.json()["display_name"] == name

    # The demo estate: every community has its buildings and houses, people, cars and staff
    # records (the same after the second run), and the first portal resident owns a house.
    homes = await client.get(
        "/api/v1/resident/homes", headers=bearer(signed_in.json()["access_token"])
    )
    assert homes.status_code == 200, homes.text
    assert [h["my_relation"] for h in homes.json()["homes"]] == ["owner"]
    admin = await sign_in(client, demo.DEMO_SLUG, demo.STAFF[0].username, demo.STAFF_PASSWORD)
    admin_headers = bearer(admin.json()["access_token"])
    expected_houses = estate_demo.BUILDINGS * estate_demo.UNITS * estate_demo.FLOORS
    expected_houses *= estate_demo.PER_FLOOR * len(demo.COMMUNITIES)
    houses = await client.get("/api/v1/estate/houses?limit=200", headers=admin_headers)
    assert houses.status_code == 200, houses.text
    assert len(houses.json()["items"]) == expected_houses
    records = await client.get("/api/v1/staff-records?limit=200", headers=admin_headers)
    assert len(records.json()["items"]) == 6 * len(demo.COMMUNITIES)
    vehicles = await client.get("/api/v1/vehicles?limit=200", headers=admin_headers)
    assert len(vehicles.json()["items"]) > 0
