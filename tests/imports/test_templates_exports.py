from __future__ import annotations

import datetime as dt
import io
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import python_calamine

from linli.auth.actor import Actor
from linli.auth.permissions import Role
from linli.db.engine import unit_of_work
from linli.estate.rows import HouseRow, ResidentRow
from linli.imports import export
from linli.imports.kinds import TEMPLATE_COLUMNS, ImportKind
from tests.factories import bearer, make_company, staff_token
from tests.imports.helpers import post_import


def read_xlsx(data: bytes) -> list[list[object]]:
    workbook = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
    return workbook.get_sheet_by_index(0).to_python()


@pytest.mark.parametrize("kind", list(ImportKind))
async def test_templates_have_chinese_headers_and_a_sample_that_imports(
    client, kind: ImportKind
) -> None:
    company = await make_company()
    headers = bearer(staff_token(company))
    response = await client.get(f"/api/v1/imports/templates/{kind.value}.xlsx", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    rows = read_xlsx(response.content)
    assert [str(h).lstrip("*") for h in rows[0]] == [c.header for c in TEMPLATE_COLUMNS[kind]]
    assert len(rows) >= 2 and any(rows[1])
    report = (await post_import(client, headers, response.content, kind=kind.value)).json()
    # The sample row reads cleanly (residents/vehicles only miss their house, not imported here).
    assert {e["code"] for e in report["errors"]} <= {"unknown_house"}, report
    assert report["total_rows"] == 1


async def test_unknown_template_kind(client) -> None:
    company = await make_company()
    response = await client.get(
        "/api/v1/imports/templates/castles.xlsx", headers=bearer(staff_token(company))
    )
    assert response.status_code == 422


async def _residents(session, actor) -> AsyncIterator[ResidentRow]:  # type: ignore[no-untyped-def]
    for i in range(3):
        yield ResidentRow(
            name=f"住户{i}",
            phone=f"1380013800{i}",
            id_card="11010519491231002X",
            gender="female",
            birth_date=dt.date(1990, 1, i + 1),
            community_code="C01",
            building_no="3",
            unit_no="2",
            house_no=f"120{i}",
            relation="tenant",
            lease_start=dt.date(2024, 1, 1),
            lease_end=dt.date(2025, 1, 1),
        )


async def test_resident_export_masks_contacts_without_the_contact_permission(client) -> None:
    company = await make_company()
    export.SOURCE_OVERRIDES[ImportKind.RESIDENTS] = _residents
    try:
        admin = await client.get(
            "/api/v1/exports/residents.xlsx", headers=bearer(staff_token(company))
        )
        # A reader without residents.contact.read (e.g. a future exporter role).
        reader = Actor.staff(
            id=company.admin_id,
            tenant_id=company.id,
            roles=frozenset({Role.FINANCE.value}),
            all_communities=True,
            community_ids=frozenset(),
        )
        async with unit_of_work(company.id) as session:
            handle, count = await export.write_export(session, reader, kind=ImportKind.RESIDENTS)
            masked = read_xlsx(handle.read())
    finally:
        export.SOURCE_OVERRIDES.clear()
    assert admin.status_code == 200
    full = read_xlsx(admin.content)
    assert full[0][:3] == ["姓名", "手机号", "身份证号"]
    assert full[1][1] == "13800138000" and full[1][2] == "11010519491231002X"
    assert full[1][9] == "租户" and len(full) == 4
    assert count == 3
    assert masked[1][1] == "138****8000" and masked[1][2] == "110105********002X"


async def _houses(session, actor) -> AsyncIterator[HouseRow]:  # type: ignore[no-untyped-def]
    for i in range(2):
        yield HouseRow(
            community_code="C01",
            building_no="3",
            unit_no="2",
            house_no=f"120{i}",
            floor=12,
            building_area=Decimal("89.50"),
            inner_area=None,
            house_type="shop",
            status="vacant",
        )


async def test_an_export_imports_back_unchanged(client) -> None:
    company = await make_company()
    headers = bearer(staff_token(company))
    export.SOURCE_OVERRIDES[ImportKind.HOUSES] = _houses
    try:
        exported = await client.get("/api/v1/exports/houses.xlsx", headers=headers)
    finally:
        export.SOURCE_OVERRIDES.clear()
    assert exported.status_code == 200
    report = (await post_import(client, headers, exported.content)).json()
    assert (report["valid_rows"], report["error_rows"]) == (2, 0)
