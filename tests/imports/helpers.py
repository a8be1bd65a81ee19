"""Spreadsheets built inside the tests (no binary fixtures in the repository)."""

from __future__ import annotations

import io
import re
import uuid
import zipfile
from collections.abc import Iterable, Sequence
from typing import Any

from openpyxl import Workbook
from sqlalchemy import text

from linli.db.engine import unit_of_work

HOUSE_HEADER = [
    "小区编码",
    "楼栋",
    "单元",
    "房号",
    "楼层",
    "建筑面积",
    "套内面积",
    "房屋类型",
    "房屋状态",
]


def xlsx(
    rows: Sequence[Sequence[Any]], *, merges: Iterable[str] = (), title: str = "Sheet"
) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = title
    for row in rows:
        sheet.append(list(row))
    for area in merges:
        sheet.merge_cells(area)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def with_cached_formula_values(data: bytes, values: dict[str, str]) -> bytes:
    """What Excel does on save: store each formula's last result next to it."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                xml = content.decode()
                for ref, value in values.items():
                    xml, count = re.subn(
                        rf'(<c r="{ref}"[^>]*>)(<f>[^<]*</f>)<v ?/>', rf"\1\2<v>{value}</v>", xml
                    )
                    assert count == 1, ref
                content = xml.encode()
            target.writestr(item, content)
    return out.getvalue()


def csv_bytes(rows: Sequence[Sequence[Any]], encoding: str = "utf-8") -> bytes:
    lines = [",".join("" if v is None else str(v) for v in row) for row in rows]
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


def house_rows(code: str, count: int, *, building: str = "1", start: int = 101) -> list[list[Any]]:
    return [
        [code, building, "1", str(start + i), 1 + i // 4, "88.50", "70.10", "住宅", "已入住"]
        for i in range(count)
    ]


async def count_houses(tenant_id: uuid.UUID) -> int:
    async with unit_of_work(tenant_id) as session:
        return int((await session.execute(text("SELECT count(*) FROM houses"))).scalar_one())


async def post_import(
    client: Any,
    token_headers: dict[str, str],
    data: bytes,
    *,
    kind: str = "houses",
    filename: str = "houses.xlsx",
    dry_run: bool = True,
    mode: str = "all_or_nothing",
    mapping: str | None = None,
    locale: str | None = None,
) -> Any:
    form = {"kind": kind, "dry_run": "true" if dry_run else "false", "mode": mode}
    if mapping is not None:
        form["mapping"] = mapping
    return await client.post(
        "/api/v1/imports",
        headers=token_headers | ({"Accept-Language": locale} if locale else {}),
        data=form,
        files={"file": (filename, data, "application/octet-stream")},
    )


def errors_by_row(report: dict[str, Any]) -> dict[int, list[dict[str, Any]]]:
    grouped: dict[int, list[dict[str, Any]]] = {}
    for error in report["errors"]:
        grouped.setdefault(error["row"], []).append(error)
    return grouped
