"""Exports read the real registry: re-importable, fenced by company and community, masked."""

from __future__ import annotations

import io
import uuid

import python_calamine

from linli.auth.actor import Actor
from linli.auth.permissions import Role
from linli.db.engine import unit_of_work
from linli.estate.rows import StaffRecordRow, VehicleRow
from linli.imports import export, service
from linli.imports.kinds import ImportKind
from linli.imports.models import ImportJob
from linli.residents import service as residents
from linli.residents.models import Relation
from linli.staff import service as staff
from tests.estate.factories import make_houses, make_resident
from tests.factories import Company, bearer, make_company, staff_token
from tests.imports.helpers import post_import


def read_xlsx(data: bytes) -> list[list[object]]:
    workbook = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
    return workbook.get_sheet_by_index(0).to_python()


async def _estate(company: Company, *, phone: str) -> list[uuid.UUID]:
    houses = await make_houses(company, units=2, floors=2, per_floor=2)
    await make_resident(company, house_id=houses[0], name="王芳", phone=phone)
    await make_resident(
        company, house_id=houses[0], name="王小明", phone=None, relation=Relation.FAMILY
    )
    async with unit_of_work(company.id) as session:
        system = Actor.system(company.id)
        await residents.upsert_vehicles(
            session,
            system,
            rows=[
                VehicleRow(
                    plate="粤B12345",
                    community_code="C01",
                    building_no="1",
                    unit_no="1",
                    house_no="101",
                    owner_phone=phone,
                )
            ],
        )
        await staff.upsert_staff_records(
            session,
            system,
            rows=[StaffRecordRow(employee_no="E001", name="李强", community_codes=("C01",))],
        )
    return houses


async def test_an_exported_houses_file_imports_back_unchanged(client) -> None:  # type: ignore[no-untyped-def]
    company = await make_company()
    await _estate(company, phone="13800138001")
    headers = bearer(staff_token(company))
    exported = await client.get("/api/v1/exports/houses.xlsx", headers=headers)
    assert exported.status_code == 200
    rows = read_xlsx(exported.content)
    assert len(rows) == 1 + 8
    assert rows[1][:4] == ["C01", "1", "1", "101"]

    job = await post_import(client, headers, exported.content, dry_run=False)
    assert job.status_code == 202, job.text
    await service.run_job(company.id, uuid.UUID(job.json()["id"]))
    async with unit_of_work(company.id) as session:
        done = await session.get(ImportJob, (company.id, uuid.UUID(job.json()["id"])))
    assert done is not None
    assert (done.status, done.created_count, done.updated_count, done.unchanged_count) == (
        "done",
        0,
        0,
        8,
    )


async def test_every_list_exports_from_the_registry(client) -> None:  # type: ignore[no-untyped-def]
    company = await make_company()
    await _estate(company, phone="13800138002")
    headers = bearer(staff_token(company))
    sheets = {}
    for kind in ImportKind:
        response = await client.get(f"/api/v1/exports/{kind.value}.xlsx", headers=headers)
        assert response.status_code == 200, (kind, response.text)
        sheets[kind] = read_xlsx(response.content)
    residents_sheet = sheets[ImportKind.RESIDENTS]
    assert sorted(r[0] for r in residents_sheet[1:]) == ["王小明", "王芳"]
    owner = next(r for r in residents_sheet[1:] if r[0] == "王芳")
    assert owner[1] == "13800138002"  # the admin may contact residents
    assert sheets[ImportKind.VEHICLES][1][0] == "粤B12345"
    assert "13800138002" in sheets[ImportKind.VEHICLES][1]
    assert sheets[ImportKind.STAFF][1][:2] == ["E001", "李强"]


async def test_company_b_exports_none_of_company_a(client) -> None:  # type: ignore[no-untyped-def]
    company_a = await make_company()
    company_b = await make_company()
    await _estate(company_a, phone="13800138003")
    await make_houses(company_b, units=1, floors=1, per_floor=1)
    headers_b = bearer(staff_token(company_b))
    for kind in ImportKind:
        response = await client.get(f"/api/v1/exports/{kind.value}.xlsx", headers=headers_b)
        assert response.status_code == 200
        rows = read_xlsx(response.content)
        expected = 2 if kind is ImportKind.HOUSES else 1  # header (+ B's single house)
        assert len(rows) == expected, (kind, rows)
        assert "13800138003" not in str(rows) and "王芳" not in str(rows)


async def test_exports_follow_community_grants_and_mask_contacts(client) -> None:  # type: ignore[no-untyped-def]
    company = await make_company()
    await _estate(company, phone="13800138004")  # all in C01
    await make_houses(company, community=1, units=1, floors=1, per_floor=1)  # one in C02
    only_c02 = Actor.staff(
        id=company.admin_id,
        tenant_id=company.id,
        roles=frozenset({Role.COMPANY_ADMIN.value}),
        all_communities=False,
        community_ids=frozenset({company.communities[1]}),
    )
    no_contact = Actor.staff(
        id=company.admin_id,
        tenant_id=company.id,
        roles=frozenset({Role.FINANCE.value}),
        all_communities=True,
        community_ids=frozenset(),
    )
    async with unit_of_work(company.id) as session:
        handle, count = await export.write_export(session, only_c02, kind=ImportKind.HOUSES)
        houses = read_xlsx(handle.read())
        _, resident_count = await export.write_export(session, only_c02, kind=ImportKind.RESIDENTS)
        handle, _ = await export.write_export(session, no_contact, kind=ImportKind.RESIDENTS)
        masked = read_xlsx(handle.read())
        handle, _ = await export.write_export(session, no_contact, kind=ImportKind.VEHICLES)
        masked_vehicles = read_xlsx(handle.read())
    assert count == 1 and houses[1][0] == "C02"
    assert resident_count == 0
    owner = next(r for r in masked[1:] if r[0] == "王芳")
    assert owner[1] == "138****8004"
    assert "13800138004" not in str(masked) and "13800138004" not in str(masked_vehicles)
