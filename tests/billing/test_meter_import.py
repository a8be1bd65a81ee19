"""Meter readings from a spreadsheet (抄表导入): the dry run's per-row errors, backwards and
jumping readings, all-or-nothing or skipping bad rows, idempotent re-import, GBK CSV and
xlsx with a column mapping, and another company's community."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from decimal import Decimal
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from linli.auth.actor import Actor
from linli.billing import meter_import, service
from linli.billing.meter_import import ImportMode
from linli.billing.models import FeeKind, MeterFlag, MeterReading
from linli.core.errors import NotFound, ValidationFailed
from linli.db.engine import unit_of_work
from tests.estate.factories import make_houses
from tests.factories import Company, bearer, make_company, staff_token

HEADER = "楼栋,单元,房号,表类型,抄表日期,本期读数,换表"
ROWS = [
    "1,1,101,水表,2026-03-31,120,",  # row 2: usage 10, as usual
    "1,1,102,水费,2026/3/31,50,",  # row 3: a first reading
    ",,1-1-103,WATER,2026-03-31,abc,",  # row 4: not a number
    "1,1,999,水费,2026-03-31,10,",  # row 5: no such house
    "1,1,103,电费,2026-03-31,10,",  # row 6: no electricity item here
    "1,1,103,水费,2026-03-31,400,",  # row 7: lower than February's 500
    "1,1,104,水费,2026-03-31,200,否",  # row 8: 190 used against 10 usually: a jump
    "1,1,101,水费,2026-03-15,121,",  # row 9: a second March reading of 101
]


def _csv(rows: list[str], encoding: str = "gbk") -> bytes:
    return "\r\n".join([HEADER, *rows]).encode(encoding)


async def _water(company: Company) -> tuple[list[uuid.UUID], uuid.UUID]:
    houses = await make_houses(company, units=1, floors=1, per_floor=4)
    system = Actor.system(company.id)
    async with unit_of_work(company.id) as session:
        water = await service.create_fee_item(
            session,
            system,
            community_id=company.communities[0],
            code="WATER",
            name="水费",
            kind=FeeKind.METERED,
            unit="m³",
        )
        await service.add_price(
            session,
            system,
            fee_item_id=water.id,
            effective_from=dt.date(2020, 1, 1),
            unit_price=Decimal(300),
        )
        history = {
            houses[0]: ((dt.date(2026, 1, 31), 100), (dt.date(2026, 2, 28), 110)),
            houses[2]: ((dt.date(2026, 2, 28), 500),),
            houses[3]: ((dt.date(2026, 1, 31), 0), (dt.date(2026, 2, 28), 10)),
        }
        for house, readings in history.items():
            for day, value in readings:
                await service.record_reading(
                    session,
                    system,
                    fee_item_id=water.id,
                    house_id=house,
                    read_on=day,
                    reading=Decimal(value),
                )
    return houses, water.id


async def _check(company: Company, data: bytes, **kwargs: object) -> meter_import.MeterCheck:
    async with unit_of_work(company.id) as session:
        return await meter_import.check(
            session,
            Actor.system(company.id),
            community_id=company.communities[0],
            data=data,
            **kwargs,  # type: ignore[arg-type]
        )


async def _import(company: Company, data: bytes, mode: ImportMode) -> meter_import.ImportCounts:
    async with unit_of_work(company.id) as session:
        actor = Actor.system(company.id)
        checked = await meter_import.check(
            session, actor, community_id=company.communities[0], data=data
        )
        return await meter_import.apply(session, actor, checked=checked, mode=mode)


async def _readings(company: Company) -> int:
    async with unit_of_work(company.id) as session:
        return int(await session.scalar(select(func.count()).select_from(MeterReading)) or 0)


async def test_dry_run_reports_every_bad_row_and_flags_jumps_then_imports_idempotently() -> None:
    company = await make_company(communities=1)
    houses, water = await _water(company)
    before = await _readings(company)

    checked = await _check(company, _csv(ROWS))
    assert checked.encoding == "gb18030" and checked.total_rows == 8
    assert [(i.row, i.column, i.code) for i in checked.issues] == [
        (4, "本期读数", "invalid_reading"),
        (5, "房号", "unknown_house"),
        (6, "表类型", "unknown_meter"),
        (7, "本期读数", "meter_reading_backwards"),
        (9, "抄表日期", "duplicate_row"),
    ]
    assert "500" in checked.issues[3].message
    good = {(r.row, r.house, r.usage, r.flag, r.action) for r in checked.rows}
    assert good == {
        (2, "1-1-101", Decimal(10), MeterFlag.OK.value, "create"),
        (3, "1-1-102", Decimal(0), MeterFlag.OK.value, "create"),
        (8, "1-1-104", Decimal(190), MeterFlag.JUMP.value, "create"),
    }
    assert [r.row for r in checked.flagged] == [8]
    assert await _readings(company) == before  # a dry run writes nothing

    with pytest.raises(ValidationFailed) as refused:
        await _import(company, _csv(ROWS), ImportMode.ALL_OR_NOTHING)
    assert refused.value.instance_code == "meter_import_has_errors"
    assert await _readings(company) == before

    counts = await _import(company, _csv(ROWS), ImportMode.SKIP_BAD_ROWS)
    assert (counts.created, counts.updated, counts.skipped_rows, counts.flagged) == (3, 0, 5, 1)
    assert await _readings(company) == before + 3
    async with unit_of_work(company.id) as session:
        flagged = await meter_import.flagged_readings(
            session, Actor.system(company.id), community_id=company.communities[0]
        )
    assert [(label, r.usage) for r, label in flagged] == [("1-1-104", Decimal(190))]

    # The same file again changes nothing; a corrected March reading replaces March's.
    again = await _import(company, _csv(ROWS), ImportMode.SKIP_BAD_ROWS)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    fixed = await _import(
        company, _csv(["1,1,101,水费,2026-03-30,125,"]), ImportMode.ALL_OR_NOTHING
    )
    assert (fixed.created, fixed.updated) == (0, 1)
    async with unit_of_work(company.id) as session:
        march = await session.scalar(
            select(MeterReading).where(
                MeterReading.house_id == houses[0],
                MeterReading.fee_item_id == water,
                MeterReading.read_on >= dt.date(2026, 3, 1),
            )
        )
    assert march is not None
    expected = (dt.date(2026, 3, 30), Decimal(125), Decimal(15))
    assert (march.read_on, march.reading, march.usage) == expected
    # February cannot be replaced any more: March exists.
    late = await _check(company, _csv(["1,1,101,水费,2026-02-27,111,"]))
    assert [i.code for i in late.issues] == ["reading_not_latest"]
    # A replaced meter may start lower.
    replaced = await _check(company, _csv(["1,1,103,水费,2026-03-31,3,是"]))
    assert not replaced.issues and replaced.rows[0].flag == MeterFlag.METER_REPLACED.value


async def test_xlsx_with_a_title_row_utf8_csv_and_a_column_mapping() -> None:
    company = await make_company(communities=1)
    await _water(company)
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["2026年3月抄表"])
    sheet.append(["房屋", "表计", "抄表时间", "本次读数"])
    sheet.append(["1-1-102", "水费", dt.date(2026, 3, 31), 42.5])
    out = io.BytesIO()
    book.save(out)
    unmapped = await _check_refused(company, out.getvalue())
    assert unmapped == "meter_import_no_header"
    checked = await _check(company, out.getvalue(), mapping={"meter": "表计"})
    assert checked.format == "xlsx" and not checked.issues
    assert [(r.row, r.house, r.reading) for r in checked.rows] == [(3, "1-1-102", Decimal("42.50"))]
    utf8 = await _check(company, _csv(ROWS[:2], encoding="utf-8-sig"))
    assert utf8.encoding == "utf-8" and len(utf8.rows) == 2
    template = load_workbook(io.BytesIO(meter_import.template_xlsx())).active
    assert template is not None
    assert [c.value for c in template[1]][:6] == [
        "楼栋",
        "单元",
        "房号",
        "表类型",
        "抄表日期",
        "本期读数",
    ]


async def _check_refused(company: Company, data: bytes) -> str:
    from linli.imports.parsing import FileRefused

    with pytest.raises(FileRefused) as refused:
        await _check(company, data)
    return refused.value.instance_code


async def test_another_companys_community_is_not_found_and_the_api_needs_the_permission(
    client: Any,
) -> None:
    company, other = await make_company(communities=1), await make_company(communities=1)
    await _water(company)
    async with unit_of_work(other.id) as session:
        with pytest.raises(NotFound):
            await meter_import.check(
                session,
                Actor.system(other.id),
                community_id=company.communities[0],
                data=_csv(ROWS),
            )
    files = {"file": ("readings.csv", _csv(ROWS), "text/csv")}
    foreign = await client.post(
        "/api/v1/billing/meter-readings/import",
        headers=bearer(staff_token(other)),
        data={"community_id": str(company.communities[0])},
        files=files,
    )
    assert foreign.status_code == 404, foreign.text
    dry = await client.post(
        "/api/v1/billing/meter-readings/import",
        headers=bearer(staff_token(company)),
        data={"community_id": str(company.communities[0])},
        files=files,
    )
    assert dry.status_code == 200, dry.text
    body = dry.json()
    assert body["dry_run"] and body["error_rows"] == 5 and body["create"] == 3
    assert body["errors"][0] == {
        "row": 4,
        "column": "本期读数",
        "code": "invalid_reading",
        "message": body["errors"][0]["message"],
    }
    assert [f["house"] for f in body["flagged"]] == ["1-1-104"]
    done = await client.post(
        "/api/v1/billing/meter-readings/import",
        headers=bearer(staff_token(company)),
        data={
            "community_id": str(company.communities[0]),
            "mode": "skip_bad_rows",
            "dry_run": "false",
        },
        files=files,
    )
    assert done.status_code == 200 and done.json()["imported"], done.text
    queued = await client.post(
        "/api/v1/billing/meter-readings/import-jobs",
        headers=bearer(staff_token(company)),
        data={"community_id": str(company.communities[0]), "mode": "skip_bad_rows"},
        files=files,
    )
    assert queued.status_code == 202 and queued.json()["status"] == "queued", queued.text
    job_id = queued.json()["id"]
    assert await meter_import.run_job(company.id, uuid.UUID(job_id)) == "done"
    polled = await client.get(
        f"/api/v1/billing/meter-readings/import-jobs/{job_id}",
        headers=bearer(staff_token(company)),
    )
    assert polled.json()["status"] == "done" and polled.json()["unchanged_count"] == 3
    assert polled.json()["errors"][0]["code"] == "invalid_reading"
    hidden = await client.get(
        f"/api/v1/billing/meter-readings/import-jobs/{job_id}",
        headers=bearer(staff_token(other)),
    )
    assert hidden.status_code == 404
    template = await client.get(
        "/api/v1/billing/meter-readings/template.xlsx", headers=bearer(staff_token(company))
    )
    assert template.status_code == 200 and template.content[:2] == b"PK"


async def test_the_background_job_rejects_or_skips_bad_rows_and_is_private() -> None:
    company, other = await make_company(communities=1), await make_company(communities=1)
    await _water(company)
    before = await _readings(company)
    actor = Actor.system(company.id)
    jobs = {}
    for mode in (ImportMode.ALL_OR_NOTHING, ImportMode.SKIP_BAD_ROWS):
        async with unit_of_work(company.id) as session:
            job = await meter_import.start_job(
                session,
                actor,
                community_id=company.communities[0],
                data=_csv(ROWS),
                file_name="三月.csv",
                mode=mode,
            )
            jobs[mode] = job.id
    rejected = await meter_import.run_job(company.id, jobs[ImportMode.ALL_OR_NOTHING])
    assert rejected == "rejected" and await _readings(company) == before
    done = await meter_import.run_job(company.id, jobs[ImportMode.SKIP_BAD_ROWS], batch_rows=2)
    assert done == "done" and await _readings(company) == before + 3
    assert await meter_import.run_job(company.id, jobs[ImportMode.SKIP_BAD_ROWS]) == "done"
    assert await _readings(company) == before + 3  # a second run changes nothing
    async with unit_of_work(company.id) as session:
        job = await meter_import.get_job(session, actor, job_id=jobs[ImportMode.SKIP_BAD_ROWS])
        assert (job.total_rows, job.processed_rows, job.error_rows) == (8, 8, 5)
        assert (job.created_count, job.flagged_count) == (3, 1)
        assert [e["row"] for e in job.errors] == [4, 5, 6, 7, 9]
        assert meter_import.progress(job) == 1.0
        unreadable = await meter_import.start_job(
            session,
            actor,
            community_id=company.communities[0],
            data="甲,乙\r\n1,2".encode("gbk"),
            file_name="x.csv",
            mode=ImportMode.SKIP_BAD_ROWS,
        )
    assert await meter_import.run_job(company.id, unreadable.id) == "failed"
    async with unit_of_work(other.id) as session:
        with pytest.raises(NotFound):
            await meter_import.get_job(
                session, Actor.system(other.id), job_id=jobs[ImportMode.SKIP_BAD_ROWS]
            )
        with pytest.raises(NotFound):
            await meter_import.start_job(
                session,
                Actor.system(other.id),
                community_id=company.communities[0],
                data=_csv(ROWS),
                file_name="x.csv",
                mode=ImportMode.SKIP_BAD_ROWS,
            )
