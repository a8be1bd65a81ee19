"""Bulk import through the API, against the real database and the estate services."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import text

from linli.auth.permissions import Role
from linli.db.engine import unit_of_work
from linli.imports import service
from tests.factories import bearer, make_company, staff_token
from tests.imports.helpers import (
    HOUSE_HEADER,
    count_houses,
    csv_bytes,
    errors_by_row,
    house_rows,
    post_import,
    with_cached_formula_values,
    xlsx,
)


@pytest.fixture
async def company():  # type: ignore[no-untyped-def]
    return await make_company(communities=2)


def auth(company) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return bearer(staff_token(company))


async def run_job(company, job_id: str) -> dict:  # type: ignore[no-untyped-def, type-arg]
    await service.run_job(company.id, uuid.UUID(job_id))
    return {}


async def test_dry_run_reports_and_writes_nothing(client, company) -> None:
    data = xlsx(
        [HOUSE_HEADER, *house_rows("C01", 3), ["C01", "1", "1", "999", 3, "abc", None, "住宅", ""]]
    )
    response = await post_import(client, auth(company), data)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["dry_run"] is True
    assert (report["total_rows"], report["valid_rows"], report["error_rows"]) == (4, 3, 1)
    assert report["errors"][0]["code"] == "invalid_number"
    assert report["errors"][0]["row"] == 5 and report["errors"][0]["column"] == "建筑面积"
    assert await count_houses(company.id) == 0
    async with unit_of_work(company.id) as session:
        assert (await session.execute(text("SELECT count(*) FROM import_jobs"))).scalar_one() == 0


async def test_messages_follow_accept_language(client, company) -> None:
    data = xlsx([HOUSE_HEADER, ["C01", "1", "1", "101", 1, "abc", None, None, None]])
    english = (await post_import(client, auth(company), data, locale="en")).json()
    assert english["errors"][0]["message"] == "\u201cabc\u201d is not a number."
    # zh_CN is the default locale. (Accept-Language "zh-CN" currently negotiates to
    # "zh_Hans_CN" in linli.core.i18n, which has no catalog: reported to the lead.)
    chinese = (await post_import(client, auth(company), data)).json()
    assert chinese["errors"][0]["message"] == "\u201cabc\u201d不是数字。"


async def test_merged_grouping_cells_fill_down_and_merged_values_are_flagged(
    client, company
) -> None:
    rows = [
        ["房屋信息表（2024）"],  # a title row above the header, merged across
        HOUSE_HEADER,
        ["C01", "5", "1", "101", 1, "90", None, None, None],
        [None, None, "1", "102", 1, "90", None, None, None],
        [None, None, "2", "201", 2, None, None, None, None],
        [None, "6", "1", "101", 1, "95", None, None, None],
    ]
    data = xlsx(rows, merges=["A1:I1", "A3:A6", "B3:B5", "F4:F5"])
    report = (await post_import(client, auth(company), data)).json()
    assert report["total_rows"] == 4
    errors = errors_by_row(report)
    assert set(errors) == {5}
    assert errors[5][0]["code"] == "merged_cell" and errors[5][0]["column"] == "建筑面积"
    assert "4" in errors[5][0]["message"]
    imported = await post_import(client, auth(company), data, dry_run=False, mode="skip_bad_rows")
    await service.run_job(company.id, uuid.UUID(imported.json()["id"]))
    async with unit_of_work(company.id) as session:
        rows_in_db = (
            await session.execute(
                text(
                    "SELECT b.building_no, h.house_no FROM houses h "
                    "JOIN buildings b ON b.id = h.building_id "
                    "ORDER BY 1, 2"
                )
            )
        ).all()
    assert [tuple(r) for r in rows_in_db] == [("5", "101"), ("5", "102"), ("6", "101")]


async def test_blank_rows_are_skipped_and_row_numbers_stay_excel_numbers(client, company) -> None:
    rows = [
        HOUSE_HEADER,
        house_rows("C01", 1)[0],
        [],
        [None, "  ", None],
        house_rows("C01", 1, start=201)[0],
        ["C01", "1", "1", "301", 1, "-5", None, None, None],
    ]
    report = (await post_import(client, auth(company), xlsx(rows))).json()
    assert report["total_rows"] == 3
    assert [e["row"] for e in report["errors"]] == [6]


async def test_full_width_digits_and_spaces(client, company) -> None:
    rows = [
        HOUSE_HEADER,
        ["Ｃ０１", "３号楼", "２单元", "１２０１", "１２", "８９．５ ㎡", None, "住宅", "已入住"],
        ["\u3000C01 ", " 3 ", "2", " 1202\u3000", 12, 90, None, None, None],
    ]
    job = await post_import(client, auth(company), xlsx(rows), dry_run=False)
    await service.run_job(company.id, uuid.UUID(job.json()["id"]))
    async with unit_of_work(company.id) as session:
        found = (
            await session.execute(
                text(
                    "SELECT b.building_no, u.unit_no, h.house_no, h.floor, h.building_area "
                    "FROM houses h JOIN buildings b ON b.id = h.building_id "
                    "JOIN units u ON u.id = h.unit_id ORDER BY h.house_no"
                )
            )
        ).all()
    assert [tuple(map(str, r)) for r in found] == [
        ("3", "2", "1201", "12", "89.50"),
        ("3", "2", "1202", "12", "90.00"),
    ]


async def test_duplicated_houses_and_the_two_ways_of_writing_a_house(client, company) -> None:
    header = ["小区", "房屋", "建筑面积"]
    rows = [
        header,
        ["C01", "3-2-1201", 90],
        ["C01", "3-2-1202", 90],
        ["C01", "3栋2单元1201", 91],
        ["C01", "3号楼2单元1202室", 92],
        ["C02", "3-2-1201", 90],
    ]
    report = (await post_import(client, auth(company), xlsx(rows))).json()
    errors = errors_by_row(report)
    assert set(errors) == {4, 5}
    assert errors[4][0]["code"] == "duplicate_row" and "2" in errors[4][0]["message"]
    assert errors[5][0]["code"] == "duplicate_row" and "3" in errors[5][0]["message"]
    assert report["valid_rows"] == 3  # C02's 3-2-1201 is another house


async def test_excel_dates_as_numbers(client, company) -> None:
    header = [
        "姓名",
        "手机号",
        "出生日期",
        "小区编码",
        "楼栋",
        "单元",
        "房号",
        "与房屋关系",
        "租期开始",
        "租期结束",
    ]
    rows = [
        header,
        ["张伟", "13800138000", 31048, "C01", "1", "1", "101", "租户", 45000, "2024/3/14"],
        ["李娜", "13900139000", "1985年1月1日", "C01", "1", "1", "101", "业主", None, None],
        ["王芳", "13700137000", 60, "C01", "1", "1", "101", "业主", None, None],
    ]
    report = (await post_import(client, auth(company), xlsx(rows), kind="residents")).json()
    errors = errors_by_row(report)
    assert errors[4][0]["field"] == "birth_date" and "1900-02-29" in errors[4][0]["message"]
    # Row 2 and 3 have readable dates; their house does not exist yet, which is the only complaint.
    assert {e["code"] for e in errors[2] + errors[3]} == {"unknown_house"}


async def test_gbk_and_utf8_bom_csv(client, company) -> None:
    rows = [
        ["小区编码", "房号", "建筑面积(㎡)", "房屋类型"],
        ["C01", "7栋1单元301", "88.8", "商铺"],
        ["C01", "7栋1单元302", "88.8", "办公"],
    ]
    for encoding, name in (("gbk", "gbk.csv"), ("utf-8-sig", "bom.csv"), ("gb18030", "gb.csv")):
        report = (
            await post_import(client, auth(company), csv_bytes(rows, encoding), filename=name)
        ).json()
        assert report["valid_rows"] == 2, (encoding, report)
        assert report["format"] == "csv"
    job = await post_import(
        client, auth(company), csv_bytes(rows, "gbk"), filename="gbk.csv", dry_run=False
    )
    await service.run_job(company.id, uuid.UUID(job.json()["id"]))
    assert await count_houses(company.id) == 2


async def test_file_over_the_size_limit_is_refused(client, company) -> None:
    big = b"PK\x03\x04" + b"\0" * (50 * 1024 * 1024 + 10)
    response = await post_import(client, auth(company), big, filename="big.xlsx")
    assert response.status_code == 413
    assert response.json()["code"] == "import_file_too_large"
    assert "50 MB" in response.json()["detail"]
    huge = await client.post(
        "/api/v1/imports",
        headers=auth(company) | {"Content-Length": str(200 * 1024 * 1024)},
        content=b"x" * 1024,
    )
    assert huge.status_code == 413  # refused from the header, before the body is read
    assert await count_houses(company.id) == 0


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"%PDF-1.7\n1 0 obj <<>> endobj", "import_not_spreadsheet"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, "import_legacy_excel"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "import_not_spreadsheet"),
        (b"\x00\x01\x02binary\x00", "import_not_spreadsheet"),
        (b"", "import_file_empty"),
        (b"PK\x03\x04garbage", "import_file_damaged"),
    ],
)
async def test_files_that_are_not_spreadsheets(client, company, payload: bytes, code: str) -> None:
    response = await post_import(client, auth(company), payload, filename="houses.xlsx")
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == code and body["detail"]
    job = await post_import(client, auth(company), payload, filename="houses.xlsx", dry_run=False)
    assert job.status_code == 422  # refused at upload, no job is queued


async def test_a_word_document_is_not_a_spreadsheet(client, company) -> None:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
    response = await post_import(client, auth(company), buffer.getvalue(), filename="houses.xlsx")
    assert response.json()["code"] == "import_not_spreadsheet"


async def test_formulas_use_saved_values_and_flag_missing_ones(client, company) -> None:
    rows = [
        HOUSE_HEADER,
        ["C01", "1", "1", "101", 1, "=70*1.25", None, None, None],
        ["C01", "1", "1", "102", 1, "=70*1.3", None, None, None],
    ]
    data = with_cached_formula_values(xlsx(rows), {"F2": "87.5"})
    report = (await post_import(client, auth(company), data)).json()
    errors = errors_by_row(report)
    assert set(errors) == {3}
    assert errors[3][0]["code"] == "formula_without_value" and "F3" in errors[3][0]["message"]
    assert report["valid_rows"] == 1


async def test_rows_naming_another_companys_community(client, company) -> None:
    other = await make_company(communities=3)
    rows = [
        HOUSE_HEADER,
        ["C01", "1", "1", "101", 1, 90, None, None, None],
        [str(other.communities[0]), "1", "1", "102", 1, 90, None, None, None],
        ["C03", "1", "1", "103", 1, 90, None, None, None],
    ]  # other company has C03, we do not
    data = xlsx(rows)
    report = (await post_import(client, auth(company), data)).json()
    errors = errors_by_row(report)
    assert set(errors) == {3, 4}
    assert {e["code"] for e in errors[3] + errors[4]} == {"unknown_community"}
    job = await post_import(client, auth(company), data, dry_run=False, mode="skip_bad_rows")
    await service.run_job(company.id, uuid.UUID(job.json()["id"]))
    assert await count_houses(company.id) == 1
    assert await count_houses(other.id) == 0


async def test_community_scope_of_a_manager(client, company) -> None:
    manager = staff_token(
        company,
        roles=(Role.COMMUNITY_MANAGER,),
        all_communities=False,
        community_ids=[company.communities[0]],
    )
    rows = [
        HOUSE_HEADER,
        ["C01", "1", "1", "101", 1, 90, None, None, None],
        ["C02", "1", "1", "101", 1, 90, None, None, None],
    ]
    report = (await post_import(client, bearer(manager), xlsx(rows))).json()
    assert [e["code"] for e in report["errors"]] == ["unknown_community"]


async def test_all_or_nothing_skip_bad_rows_and_reimport(client, company) -> None:
    good = house_rows("C01", 5)
    data = xlsx([HOUSE_HEADER, *good, ["C01", "1", "1", "999", 1, "0", None, None, None]])
    headers = auth(company)

    strict = (await post_import(client, headers, data, dry_run=False)).json()
    assert strict["status"] == "queued"
    await service.run_job(company.id, uuid.UUID(strict["id"]))
    polled = (await client.get(f"/api/v1/imports/{strict['id']}", headers=headers)).json()
    assert (
        polled["status"] == "rejected"
        and polled["error_rows"] == 1
        and polled["errors"][0]["row"] == 7
    )
    assert await count_houses(company.id) == 0

    lenient = (await post_import(client, headers, data, dry_run=False, mode="skip_bad_rows")).json()
    await service.run_job(company.id, uuid.UUID(lenient["id"]))
    polled = (await client.get(f"/api/v1/imports/{lenient['id']}", headers=headers)).json()
    assert polled["status"] == "done" and polled["progress"] == 1.0
    assert (polled["created_count"], polled["updated_count"], polled["unchanged_count"]) == (
        5,
        0,
        0,
    )
    assert await count_houses(company.id) == 5

    again = (await post_import(client, headers, data, dry_run=False, mode="skip_bad_rows")).json()
    await service.run_job(company.id, uuid.UUID(again["id"]))
    polled = (await client.get(f"/api/v1/imports/{again['id']}", headers=headers)).json()
    assert (polled["created_count"], polled["updated_count"], polled["unchanged_count"]) == (
        0,
        0,
        5,
    )
    assert await count_houses(company.id) == 5
    async with unit_of_work(company.id) as session:  # the same file is stored once
        assert (await session.execute(text("SELECT count(*) FROM import_files"))).scalar_one() == 1

    changed = xlsx([HOUSE_HEADER, *good[:4], [*good[4][:5], "99.00", *good[4][6:]]])
    third = (await post_import(client, headers, changed, dry_run=False)).json()
    await service.run_job(company.id, uuid.UUID(third["id"]))
    polled = (await client.get(f"/api/v1/imports/{third['id']}", headers=headers)).json()
    assert (polled["created_count"], polled["updated_count"], polled["unchanged_count"]) == (
        0,
        1,
        4,
    )


async def test_a_finished_job_run_again_changes_nothing(client, company) -> None:
    data = xlsx([HOUSE_HEADER, *house_rows("C01", 3)])
    job = (await post_import(client, auth(company), data, dry_run=False)).json()
    assert await service.run_job(company.id, uuid.UUID(job["id"])) == "done"
    assert await service.run_job(company.id, uuid.UUID(job["id"])) == "done"
    polled = (await client.get(f"/api/v1/imports/{job['id']}", headers=auth(company))).json()
    assert polled["created_count"] == 3


async def test_a_write_that_dies_half_way_leaves_nothing_and_the_retry_completes(
    client, company
) -> None:
    data = xlsx([HOUSE_HEADER, *house_rows("C01", 10)])
    job = (await post_import(client, auth(company), data, dry_run=False)).json()
    real = service.writer_for(service.ImportKind.HOUSES)
    calls = 0

    async def dies_on_second_batch(session, actor, rows):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ConnectionError("worker killed")
        return await real(session, actor, rows)

    service.WRITER_OVERRIDES[service.ImportKind.HOUSES] = dies_on_second_batch
    try:
        with pytest.raises(ConnectionError):
            await service.run_job(company.id, uuid.UUID(job["id"]), batch_rows=4)
    finally:
        service.WRITER_OVERRIDES.clear()
    assert await count_houses(company.id) == 0
    polled = (await client.get(f"/api/v1/imports/{job['id']}", headers=auth(company))).json()
    assert polled["status"] == "queued" and polled["failure_code"] == "interrupted"
    assert await service.run_job(company.id, uuid.UUID(job["id"]), batch_rows=4) == "done"
    assert await count_houses(company.id) == 10


async def test_the_worker_runs_the_queued_job(client, company) -> None:
    from linli.jobs import job_app

    data = xlsx([HOUSE_HEADER, *house_rows("C02", 4)])
    job = (await post_import(client, auth(company), data, dry_run=False)).json()
    async with job_app.open_async():
        await job_app.run_worker_async(
            queues=["imports"], wait=False, install_signal_handlers=False
        )
    polled = (await client.get(f"/api/v1/imports/{job['id']}", headers=auth(company))).json()
    assert polled["status"] == "done" and polled["created_count"] == 4


async def test_company_b_cannot_read_company_a_job(client, company) -> None:
    other = await make_company()
    job = (
        await post_import(
            client, auth(company), xlsx([HOUSE_HEADER, *house_rows("C01", 1)]), dry_run=False
        )
    ).json()
    response = await client.get(f"/api/v1/imports/{job['id']}", headers=auth(other))
    assert response.status_code == 404
    assert response.json()["code"] == "import_job_not_found"
    # Nor another staff member of the same company limited to some communities.
    manager = staff_token(
        company,
        uuid.uuid4(),
        roles=(Role.COMMUNITY_MANAGER,),
        all_communities=False,
        community_ids=company.communities,
    )
    assert (
        await client.get(f"/api/v1/imports/{job['id']}", headers=bearer(manager))
    ).status_code == 404


async def test_permissions_are_required(client, company) -> None:
    front_desk = staff_token(company, roles=(Role.FRONT_DESK,))
    data = xlsx([HOUSE_HEADER, *house_rows("C01", 1)])
    assert (await post_import(client, bearer(front_desk), data)).status_code == 403
    assert (await client.get("/api/v1/imports/templates/houses.xlsx")).status_code == 401
    assert (
        await client.get("/api/v1/exports/houses.xlsx", headers=bearer(front_desk))
    ).status_code == 403


async def test_user_mapping_overrides_synonyms(client, company) -> None:
    rows = [["项目", "位置", "面积", "备注"], ["C01", "2-1-501", 100, "x"]]
    unmapped = await post_import(client, auth(company), xlsx(rows))
    assert unmapped.status_code == 422 and unmapped.json()["code"] == "import_missing_columns"
    mapping = json.dumps({"位置": "address", "备注": None})
    report = (await post_import(client, auth(company), xlsx(rows), mapping=mapping)).json()
    assert report["valid_rows"] == 1
    assert report["columns"] == {"项目": "community", "位置": "address", "面积": "building_area"}
    assert report["ignored_columns"] == ["备注"]
    bad = await post_import(
        client, auth(company), xlsx(rows), mapping=json.dumps({"位置": "castle"})
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "mapping"
    broken = await post_import(client, auth(company), xlsx(rows), mapping="{not json")
    assert broken.status_code == 422 and broken.json()["errors"][0]["field"] == "mapping"


async def test_real_world_headers_are_recognised(client, company) -> None:
    rows = [
        ["小区名称", "楼号", "单元号", "房间号", "建面", "用途"],
        ["小区1号", "8", "1", "101", "100", "住宅"],
    ]
    report = (await post_import(client, auth(company), xlsx(rows))).json()
    assert report["valid_rows"] == 1, report


async def test_residents_vehicles_and_staff_end_to_end(client, company) -> None:
    headers = auth(company)
    houses = xlsx(
        [["小区编码", "房屋", "建筑面积"], ["C01", "3-2-1201", 90], ["C01", "3-2-1202", 90]]
    )
    job = (await post_import(client, headers, houses, dry_run=False)).json()
    assert await service.run_job(company.id, uuid.UUID(job["id"])) == "done"

    residents = xlsx(
        [
            [
                "业主姓名",
                "联系电话",
                "身份证号码",
                "性别",
                "出生日期",
                "小区",
                "房号",
                "身份",
                "起租日期",
                "到期日期",
            ],
            [
                "张伟",
                "138 0013 8000",
                "11010519491231002X",
                "男",
                18264,
                "C01",
                "3栋2单元1201",
                "业主",
                None,
                None,
            ],
            ["李娜", "13900139000", None, "女", "1990/2/3", "C01", "3-2-1201", "家属", None, None],
            [
                "王芳",
                "13700137000",
                None,
                None,
                None,
                "C01",
                "3-2-1202",
                "租户",
                "2024年1月1日",
                45658,
            ],
            ["赵六", "13600136000", None, None, None, "C01", "9-9-999", "业主", None, None],
        ]
    )
    report = (
        await post_import(client, headers, residents, kind="residents", filename="r.xlsx")
    ).json()
    assert [(e["row"], e["code"]) for e in report["errors"]] == [(5, "unknown_house")]
    job = (
        await post_import(
            client, headers, residents, kind="residents", dry_run=False, mode="skip_bad_rows"
        )
    ).json()
    assert await service.run_job(company.id, uuid.UUID(job["id"])) == "done"
    polled = (await client.get(f"/api/v1/imports/{job['id']}", headers=headers)).json()
    assert (polled["created_count"], polled["error_rows"]) == (3, 1)
    again = (
        await post_import(
            client, headers, residents, kind="residents", dry_run=False, mode="skip_bad_rows"
        )
    ).json()
    await service.run_job(company.id, uuid.UUID(again["id"]))
    polled = (await client.get(f"/api/v1/imports/{again['id']}", headers=headers)).json()
    assert (polled["created_count"], polled["updated_count"], polled["unchanged_count"]) == (
        0,
        0,
        3,
    )

    vehicles = xlsx(
        [
            ["车牌号", "小区编码", "房号", "车主手机号", "品牌"],
            ["粤B·12345", "C01", "3-2-1201", "13800138000", "比亚迪"],
            ["粤BD12345", "C01", None, None, None],
            ["粤b12345", "C01", None, None, None],
            ["ABC", "C01", None, None, None],
        ]
    )
    report = (await post_import(client, headers, vehicles, kind="vehicles")).json()
    assert [(e["row"], e["code"]) for e in report["errors"]] == [
        (4, "duplicate_row"),
        (5, "invalid_plate"),
    ]
    job = (
        await post_import(
            client, headers, vehicles, kind="vehicles", dry_run=False, mode="skip_bad_rows"
        )
    ).json()
    assert await service.run_job(company.id, uuid.UUID(job["id"])) == "done"

    staff = xlsx(
        [
            [
                "工号",
                "姓名",
                "手机",
                "部门",
                "岗位",
                "用工性质",
                "入职时间",
                "学历",
                "证书",
                "负责小区",
            ],
            [
                "E01",
                "李强",
                "13900139001",
                "工程部",
                "电工",
                "自有",
                44256,
                "大专",
                "电工证:T1、消防证",
                "C01、C02",
            ],
            ["E02", "周杰", None, "秩序部", "保安", "外包", "2022-5-1", None, None, "C01"],
            ["E03", "吴敏", None, None, None, None, None, "博士后", None, "C09"],
        ]
    )
    report = (await post_import(client, headers, staff, kind="staff")).json()
    assert sorted((e["row"], e["code"]) for e in report["errors"]) == [
        (4, "invalid_choice"),
        (4, "unknown_community"),
    ]
    job = (
        await post_import(client, headers, staff, kind="staff", dry_run=False, mode="skip_bad_rows")
    ).json()
    assert await service.run_job(company.id, uuid.UUID(job["id"])) == "done"
    polled = (await client.get(f"/api/v1/imports/{job['id']}", headers=headers)).json()
    assert polled["created_count"] == 2
