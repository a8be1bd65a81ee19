"""Benchmark ``import-residents``: a 100,000-row .xlsx of residents with houses,
dry run + import end to end, against the configured database (embedded by default).

Prints one JSON object (see ARCHITECTURE.md "Benchmarks"). ``limit_rate`` is a
raw ``COPY`` of the same rows into a scratch table: what PostgreSQL alone takes
to swallow them, with no parsing, checking, encryption or upsert.

    python bench/import_residents.py [--size 100000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import json
import secrets
import sys
import tempfile
import time
from typing import Any

from openpyxl import Workbook

HEADER = [
    "姓名",
    "手机号",
    "身份证号",
    "性别",
    "出生日期",
    "小区编码",
    "楼栋",
    "单元",
    "房号",
    "与房屋关系",
    "租期开始",
    "租期结束",
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = [
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "强",
    "磊",
    "洋",
    "艳",
    "勇",
    "军",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
]
RELATIONS = ["业主", "家庭成员", "家庭成员", "租户"]


def id_card(serial: int, born: dt.date) -> str:
    from linli.residents.validators import id_card_check_char

    first17 = f"110105{born:%Y%m%d}{serial % 1000:03d}"
    return first17 + id_card_check_char(first17)


def house_of(i: int) -> tuple[str, str, str]:
    """Two residents per house; 4 units x 30 floors x 2 houses per building."""
    house = i // 2
    building, rest = divmod(house, 240)
    unit, rest = divmod(rest, 60)
    floor, number = divmod(rest, 2)
    return str(building + 1), str(unit + 1), f"{floor + 1}{number + 1:02d}"


def resident_rows(size: int) -> list[list[Any]]:
    rows = []
    for i in range(size):
        building, unit, house = house_of(i)
        # The ID number is region + birth date + serial: (birth, serial) must differ for every
        # row, or two people with different phones would share an ID number.
        born = dt.date(1950, 1, 1) + dt.timedelta(days=((i // 1000) * 173) % 18000)
        relation = RELATIONS[i % 4]
        tenant = relation == "租户"
        rows.append(
            [
                SURNAMES[i % len(SURNAMES)] + GIVEN[i % len(GIVEN)] + GIVEN[(i // 16) % len(GIVEN)],
                f"139{i:08d}",
                id_card(i, born) if i % 3 == 0 else None,
                "男" if i % 2 else "女",
                born,
                "B01",
                building,
                unit,
                house,
                relation,
                dt.date(2024, 1, 1) if tenant else None,
                dt.date(2025, 12, 31) if tenant else None,
            ]
        )
    return rows


def write_xlsx(header: list[str], rows: list[list[Any]]) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("住户")
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    with tempfile.TemporaryFile() as handle:
        workbook.save(handle)
        handle.seek(0)
        return handle.read()


async def run(size: int) -> dict[str, Any]:
    from sqlalchemy import select

    from linli.auth.actor import Actor
    from linli.auth.models import StaffUser
    from linli.auth.permissions import Role
    from linli.config import get_settings
    from linli.db.dsn import owner_dsn
    from linli.db.engine import dispose_engine, unit_of_work
    from linli.db.migrate import upgrade
    from linli.imports import service
    from linli.imports.kinds import ImportKind
    from linli.imports.models import ImportJob, ImportMode
    from linli.tenancy import service as tenancy_service

    settings = get_settings()
    owner = owner_dsn(settings)
    upgrade(owner)
    slug = f"bench-{secrets.token_hex(4)}"
    async with unit_of_work() as session:
        tenant = await tenancy_service.create_tenant(
            session,
            Actor.system(),
            slug=slug,
            name="基准测试物业",
            admin_username="admin",
            admin_display_name="管理员",
            admin_password=secrets.token_urlsafe(16),
        )
        await tenancy_service.create_community(
            session, Actor.system(tenant.id), code="B01", name="基准小区"
        )
        admin_id = (
            await session.scalars(select(StaffUser.id).where(StaffUser.tenant_id == tenant.id))
        ).one()
    actor = Actor.staff(
        id=admin_id,
        tenant_id=tenant.id,
        roles=frozenset({Role.COMPANY_ADMIN.value}),
        all_communities=True,
        community_ids=frozenset(),
    )

    rows = resident_rows(size)
    houses = sorted({house_of(i) for i in range(size)})
    houses_file = write_xlsx(
        ["小区编码", "楼栋", "单元", "房号", "建筑面积"],
        [["B01", b, u, h, "89.50"] for b, u, h in houses],
    )
    residents_file = write_xlsx(HEADER, rows)

    async def import_file(kind: ImportKind, data: bytes) -> tuple[Any, ImportJob]:
        async with unit_of_work(tenant.id) as session:
            checked = await service.dry_run(
                session, actor, kind=kind, data=data, file_name="bench.xlsx"
            )
        async with unit_of_work(tenant.id) as session:
            job = await service.start_import(
                session,
                actor,
                kind=kind,
                mode=ImportMode.ALL_OR_NOTHING,
                data=data,
                file_name="bench.xlsx",
            )
        await service.run_job(tenant.id, job.id)
        async with unit_of_work(tenant.id) as session:
            finished = await session.get(ImportJob, (tenant.id, job.id))
            assert finished is not None
        return checked, finished

    started = time.perf_counter()
    await import_file(ImportKind.HOUSES, houses_file)
    houses_seconds = time.perf_counter() - started

    started = time.perf_counter()
    checked, job = await import_file(ImportKind.RESIDENTS, residents_file)
    seconds = time.perf_counter() - started

    limit_seconds = copy_limit(owner, rows)
    await dispose_engine()
    rate = size / seconds
    limit_rate = size / limit_seconds
    return {
        "name": "import-residents",
        "size": size,
        "seconds": round(seconds, 3),
        "rate": round(rate, 1),
        "unit": "rows/s",
        "limit_rate": round(limit_rate, 1),
        "ratio": round(rate / limit_rate, 4),
        "checks": {
            "dry_run_errors": checked.error_rows,
            "status": job.status,
            "created": job.created_count,
            "updated": job.updated_count,
            "unchanged": job.unchanged_count,
            "error_rows": job.error_rows,
            "houses": len(houses),
            "houses_seconds": round(houses_seconds, 3),
            "file_bytes": len(residents_file),
            "under_30s": seconds < 30,
        },
    }


def copy_limit(owner: str, rows: list[list[Any]]) -> float:
    """Seconds PostgreSQL takes to COPY the same rows, as text, into a scratch table."""
    import psycopg

    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join("\\N" if v is None else str(v) for v in row) + "\n")
    payload = buffer.getvalue()
    with psycopg.connect(owner) as conn:
        conn.execute(
            "CREATE TEMP TABLE bench_copy (name text, phone text, id_card text, gender text,"
            " birth date, community text, building text, unit text, house text, relation text,"
            " lease_start date, lease_end date)"
        )
        started = time.perf_counter()
        with conn.cursor().copy("COPY bench_copy FROM STDIN") as copy:
            copy.write(payload)
        elapsed = time.perf_counter() - started
        conn.rollback()
    return elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.size))
    print(json.dumps(result, ensure_ascii=False))
    if not args.json:
        print(
            f"{args.size} residents: {result['seconds']} s, {result['rate']} rows/s",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
