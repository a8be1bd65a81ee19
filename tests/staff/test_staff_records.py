from __future__ import annotations

import datetime as dt

from linli.auth.actor import Actor
from linli.auth.permissions import Role
from linli.core.errors import ValidationFailed
from linli.db.engine import unit_of_work
from linli.estate.rows import CertificateRow, StaffRecordRow
from linli.staff import service
from tests.factories import bearer, make_company, make_staff, staff_token


def _rows() -> list[StaffRecordRow]:
    return [
        StaffRecordRow(
            "E001",
            "刘电工",
            "13912345678",
            "工程部",
            "电工",
            "own",
            dt.date(2020, 3, 1),
            dt.date(1985, 6, 1),
            "vocational",
            ("C01",),
            (CertificateRow("电工证", "T123456", dt.date(2027, 1, 1)),),
        ),
        StaffRecordRow(
            "E002", "陈保安", None, "秩序部", "保安", "outsourced", None, None, "senior", ("C02",)
        ),
        StaffRecordRow(
            "E003",
            "周经理",
            None,
            "管理处",
            "项目经理",
            "own",
            None,
            None,
            "bachelor",
            ("C01", "C02"),
        ),
    ]


async def test_upsert_staff_records_idempotent_and_scoped(client) -> None:
    company = await make_company(communities=2)
    actor = Actor.system(company.id)
    async with unit_of_work(company.id) as session:
        first = await service.upsert_staff_records(session, actor, rows=_rows())
        again = await service.upsert_staff_records(session, actor, rows=_rows())
    assert (first.created, first.updated, first.unchanged) == (3, 0, 0)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    changed = _rows()
    changed[0] = StaffRecordRow(
        "E001",
        "刘电工",
        "13912345678",
        "工程部",
        "电工",
        "own",
        dt.date(2020, 3, 1),
        dt.date(1985, 6, 1),
        "vocational",
        ("C01",),
        (CertificateRow("电工证", "T123456", dt.date(2030, 1, 1)),),
    )
    async with unit_of_work(company.id) as session:
        third = await service.upsert_staff_records(session, actor, rows=changed)
    assert (third.created, third.updated, third.unchanged) == (0, 1, 2)

    manager = await make_staff(
        company, roles=[Role.COMMUNITY_MANAGER], community_ids=[company.communities[0]]
    )
    token = bearer(
        staff_token(
            company,
            manager,
            roles=[Role.COMMUNITY_MANAGER],
            all_communities=False,
            community_ids=[company.communities[0]],
        )
    )
    listed = (await client.get("/api/v1/staff-records", headers=token)).json()["items"]
    assert sorted(r["employee_no"] for r in listed) == ["E001", "E003"]
    electrician = next(r for r in listed if r["employee_no"] == "E001")
    assert electrician["certificates"][0]["expires_on"] == "2030-01-01"
    assert electrician["phone_masked"] == "139****5678"
    other = await make_company(communities=1)
    assert (
        await client.get(
            f"/api/v1/staff-records/{electrician['id']}", headers=bearer(staff_token(other))
        )
    ).status_code == 404
    scoped = Actor.staff(
        id=manager,
        tenant_id=company.id,
        roles=frozenset({"community_manager"}),
        all_communities=False,
        community_ids=frozenset({company.communities[0]}),
    )
    async with unit_of_work(company.id) as session:
        try:
            await service.upsert_staff_records(session, scoped, rows=_rows()[1:2])
        except ValidationFailed as exc:
            assert exc.instance_code == "unknown_community"
        else:
            raise AssertionError("expected ValidationFailed")


async def test_create_record_through_api(client) -> None:
    company = await make_company(communities=1)
    token = bearer(staff_token(company))
    body = {
        "employee_no": "A100",
        "name": "孙保洁",
        "department": "环境部",
        "position": "保洁员",
        "employment_type": "outsourced",
        "education": "junior",
        "community_ids": [str(company.communities[0])],
        "certificates": [{"cert_type": "健康证", "number": "J-1", "expires_on": "2027-05-01"}],
    }
    created = await client.post(
        "/api/v1/staff-records", headers=token | {"Idempotency-Key": "staff-rec-0001"}, json=body
    )
    assert created.status_code == 201, created.text
    assert created.json()["community_ids"] == [str(company.communities[0])]
    dup = await client.post("/api/v1/staff-records", headers=token, json=body)
    assert dup.status_code == 409 and dup.json()["code"] == "employee_no_taken"
    patched = await client.patch(
        f"/api/v1/staff-records/{created.json()['id']}",
        headers=token,
        json={"position": "保洁主管"},
    )
    assert patched.json()["position"] == "保洁主管"
    # Phone and certificates change through the same PATCH (the certificates as a whole list).
    record_url = f"/api/v1/staff-records/{created.json()['id']}"
    renewed = await client.patch(
        record_url,
        headers=token,
        json={
            "phone": "139 0013 9001",
            "certificates": [
                {"cert_type": "健康证", "number": "J-2", "expires_on": "2028-05-01"},
                {"cert_type": "电工证", "number": "T-9", "expires_on": None},
            ],
        },
    )
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["phone_masked"] == "139****9001"
    assert sorted(c["number"] for c in renewed.json()["certificates"]) == ["J-2", "T-9"]
    wrong = await client.patch(record_url, headers=token, json={"phone": "12345"})
    assert wrong.status_code == 422
    cleared = await client.patch(record_url, headers=token, json={"phone": None})
    assert cleared.json()["phone_masked"] is None
    desk = bearer(staff_token(company, roles=[Role.FRONT_DESK]))
    assert (await client.get("/api/v1/staff-records", headers=desk)).status_code == 403
