"""Bulk import and export of parking areas + spaces and of common facilities.

Dry run with a message per bad row, all-or-nothing or skip-bad-rows, and re-importing
the same file (or the export) changes nothing: natural keys are community + area + space
number, and community + facility name.
"""

from __future__ import annotations

import io
import uuid
from typing import Any

from openpyxl import load_workbook
from sqlalchemy import text

from linli.db.engine import unit_of_work
from linli.imports import service
from tests.estate.factories import make_houses, make_resident
from tests.factories import bearer, make_company, staff_token
from tests.imports.helpers import errors_by_row, post_import, xlsx

PARKING_HEADER = [
    "小区编码",
    "停车场",
    "是否地下",
    "车位号",
    "车位类型",
    "楼栋",
    "单元",
    "房号",
    "持有人手机号",
    "租期开始",
    "租期结束",
    "车位面积",
]


async def _spaces(tenant_id: uuid.UUID) -> list[tuple[Any, ...]]:
    async with unit_of_work(tenant_id) as session:
        rows = await session.execute(
            text(
                "SELECT a.name, a.underground, s.space_no, s.usage::text, s.house_id,"
                " s.resident_id, s.lease_start, s.lease_end, s.area_m2"
                " FROM parking_spaces s JOIN parking_areas a ON a.id = s.area_id"
                " ORDER BY a.name, s.space_no"
            )
        )
        return [tuple(r) for r in rows.all()]


async def _job(client: Any, headers: dict[str, str], company: Any, data: bytes, **kw: Any) -> Any:
    started = await post_import(client, headers, data, dry_run=False, **kw)
    assert started.status_code == 202, started.text
    await service.run_job(company.id, uuid.UUID(started.json()["id"]))
    job = await client.get(f"/api/v1/imports/{started.json()['id']}", headers=headers)
    return job.json()


async def test_parking_dry_run_import_reimport_and_export(client) -> None:
    company = await make_company(communities=2)
    headers = bearer(staff_token(company))
    [house, _] = await make_houses(company, buildings=1, units=1, floors=1, per_floor=2)
    owner = await make_resident(company, house_id=house, name="业主甲", phone="13700002222")
    rows = [
        PARKING_HEADER,
        ["C01", "地下车库B1", "是", "B1-001", "产权", "1", "1", "101", "", "", "", "12.5"],
        [
            None,
            None,
            None,
            "B1-002",
            "租赁",
            "",
            "",
            "",
            "137 0000 2222",
            "2026-01-01",
            "2026-12-31",
            "",
        ],
        [None, None, None, "B1-003", "", "", "", "", "", "", "", ""],
        ["C01", "地面停车场", "否", "Ｇ－０１", "临时", "", "", "", "", "", "", ""],
    ]
    bad = [
        ["C01", "地下车库B1", "", "B1-004", "临时", "1", "1", "101", "", "", "", ""],
        ["C01", "地下车库B1", "", "B1-005", "产权", "", "", "", "", "2026-01-01", "", ""],
        ["C01", "地下车库B1", "", "B1-006", "租赁", "9", "9", "909", "", "", "", ""],
        ["C01", "地下车库B1", "", "B1-007", "租赁", "", "", "", "13911112222", "", "", ""],
        ["C01", "地下车库B1", "", "B1-001", "产权", "", "", "", "", "", "", ""],
        ["C09", "地下车库B1", "", "B1-008", "", "", "", "", "", "", "", ""],
        ["C01", "地下车库B1", "", "B1 车位", "", "", "", "", "", "", "", ""],
        ["C01", "地下车库B1", "", "B1-009", "包月", "", "", "", "", "", "", ""],
    ]
    data = xlsx(rows + bad, merges=["A2:A4", "B2:B4"])
    report = (await post_import(client, headers, data, kind="parking_spaces")).json()
    assert (report["total_rows"], report["valid_rows"], report["error_rows"]) == (12, 4, 8)
    by_row = errors_by_row(report)
    codes = {row: {e["code"] for e in errors} for row, errors in by_row.items()}
    assert codes == {
        6: {"temporary_space_bound"},
        7: {"lease_not_allowed"},
        8: {"unknown_house"},
        9: {"resident_not_found"},
        10: {"duplicate_row"},
        11: {"unknown_community"},
        12: {"invalid_value"},
        13: {"invalid_choice"},
    }
    assert by_row[8][0]["column"] == "房号" and by_row[9][0]["column"] == "持有人手机号"
    assert await _spaces(company.id) == []  # a dry run writes nothing

    strict = await _job(client, headers, company, data, kind="parking_spaces")
    assert strict["status"] == "rejected" and await _spaces(company.id) == []
    lenient = await _job(
        client, headers, company, data, kind="parking_spaces", mode="skip_bad_rows"
    )
    assert lenient["status"] == "done", lenient
    assert (lenient["created_count"], lenient["error_rows"]) == (4, 8)
    spaces = await _spaces(company.id)
    assert [(s[0], s[1], s[2], s[3]) for s in spaces] == [
        ("地下车库B1", True, "B1-001", "owned"),
        ("地下车库B1", True, "B1-002", "rented"),
        ("地下车库B1", True, "B1-003", "temporary"),
        ("地面停车场", False, "G-01", "temporary"),
    ]
    assert spaces[0][4] == house and str(spaces[0][8]) == "12.50"
    assert spaces[1][5] == owner and str(spaces[1][7]) == "2026-12-31"

    good = xlsx(rows, merges=["A2:A4", "B2:B4"])
    again = await _job(client, headers, company, good, kind="parking_spaces")
    assert again["status"] == "done"
    assert (again["created_count"], again["updated_count"], again["unchanged_count"]) == (0, 0, 4)
    assert await _spaces(company.id) == spaces

    exported = await client.get("/api/v1/exports/parking_spaces.xlsx", headers=headers)
    assert exported.status_code == 200
    sheet = load_workbook(io.BytesIO(exported.content)).active
    assert sheet is not None
    table = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert table[0] == PARKING_HEADER
    assert table[1][:5] == ["C01", "地下车库B1", "是", "B1-001", "产权"]
    assert table[2][8] == "13700002222"
    # The export imports back unchanged.
    round_trip = await _job(client, headers, company, exported.content, kind="parking_spaces")
    assert (round_trip["created_count"], round_trip["updated_count"]) == (0, 0), round_trip
    assert await _spaces(company.id) == spaces


async def test_facilities_import_and_export(client) -> None:
    company = await make_company(communities=1)
    headers = bearer(staff_token(company))
    await make_houses(company, buildings=3, units=1, floors=1, per_floor=1)
    header = ["小区", "设施名称", "设施类型", "所在楼栋", "位置"]
    rows = [
        header,
        ["C01", "3栋1号电梯", "电梯", "3号楼", "3栋大堂"],
        ["C01", "水泵房", "泵房", "", "地下一层"],
        ["C01", "儿童乐园", "", "", ""],
    ]
    bad = [
        ["C01", "7栋电梯", "电梯", "7", ""],
        ["C01", "喷泉", "景观", "", ""],
        ["C01", "水泵房", "泵房", "", ""],
    ]
    report = (await post_import(client, headers, xlsx(rows + bad), kind="facilities")).json()
    assert report["valid_rows"] == 3
    assert {r: {e["code"] for e in es} for r, es in errors_by_row(report).items()} == {
        5: {"unknown_building"},
        6: {"invalid_choice"},
        7: {"duplicate_row"},
    }
    done = await _job(client, headers, company, xlsx(rows), kind="facilities")
    assert (done["status"], done["created_count"]) == ("done", 3), done
    listed = await client.get("/api/v1/estate/facilities", headers=headers)
    kinds = {f["name"]: f["kind"] for f in listed.json()["items"]}
    assert kinds == {"3栋1号电梯": "lift", "水泵房": "pump_room", "儿童乐园": "other"}
    again = await _job(client, headers, company, xlsx(rows), kind="facilities")
    assert again["unchanged_count"] == 3 and again["created_count"] == again["updated_count"] == 0

    exported = await client.get("/api/v1/exports/facilities.xlsx", headers=headers)
    sheet = load_workbook(io.BytesIO(exported.content)).active
    assert sheet is not None
    table = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert table[0] == ["小区编码", "设施名称", "设施类型", "所在楼栋", "位置"]
    assert ["C01", "3栋1号电梯", "电梯", "3", "3栋大堂"] in table


async def test_templates_of_the_new_kinds(client) -> None:
    company = await make_company(communities=1)
    headers = bearer(staff_token(company))
    for kind, first in (("parking_spaces", "*小区编码"), ("facilities", "*小区编码")):
        response = await client.get(f"/api/v1/imports/templates/{kind}.xlsx", headers=headers)
        assert response.status_code == 200
        sheet = load_workbook(io.BytesIO(response.content)).active
        assert sheet is not None
        header = [c.value for c in sheet[1]]
        assert header[0] == first
    parking = load_workbook(
        io.BytesIO(
            (
                await client.get("/api/v1/imports/templates/parking_spaces.xlsx", headers=headers)
            ).content
        )
    ).active
    assert parking is not None
    assert [c.value for c in parking[1]][:5] == [
        "*小区编码",
        "*停车场",
        "是否地下",
        "*车位号",
        "车位类型",
    ]


async def test_another_companys_community_writes_nothing(client) -> None:
    a = await make_company(communities=1)
    b = await make_company(communities=1)
    data = xlsx(
        [
            PARKING_HEADER,
            [str(a.communities[0]), "B1", "", "B1-001", "", "", "", "", "", "", "", ""],
        ]
    )
    report = (await post_import(client, bearer(staff_token(b)), data, kind="parking_spaces")).json()
    assert report["errors"][0]["code"] == "unknown_community"
    assert await _spaces(a.id) == [] and await _spaces(b.id) == []
