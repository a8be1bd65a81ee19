"""Meter readings from a spreadsheet (抄表导入): water, electricity and gas readings of one
community, as ``.xlsx`` or ``.csv`` (UTF-8 or GBK), read with the import framework's
reader (:mod:`linli.imports.parsing`) and its cell parsers.

``check`` reads and checks every row and writes nothing (the dry run): each problem is
reported with its row, column and message; readings lower than the last one (unless
the meter was replaced) are errors, readings that jump far above the usual usage
(``LINLI_BILLING_METER_JUMP_FACTOR``) are kept but flagged, and billed only once
someone confirms them. ``apply`` writes the checked rows set-based, all or nothing or
skipping bad rows. A meter has one reading per month: importing the same file again
changes nothing, a corrected file replaces that month's reading (if no later one exists).
"""

from __future__ import annotations

import datetime as dt
import enum
import io
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import UploadFile
from openpyxl import Workbook
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from linli.auth.actor import Actor
from linli.billing.models import (
    FeeItem,
    FeeKind,
    MeterFlag,
    MeterImportJob,
    MeterImportStatus,
    MeterReading,
)
from linli.billing.settings import get_billing_settings
from linli.core import audit
from linli.core.errors import DomainError, FieldError, NotFound, ValidationFailed
from linli.core.i18n import gettext
from linli.core.ids import new_id
from linli.db.engine import unit_of_work
from linli.estate import service as estate
from linli.imports import normalize as n
from linli.imports.parsing import FileRefused, read_sheet, sniff
from linli.imports.service import check_size, file_limit
from linli.jobs import defer_in_transaction

MAX_READING = Decimal("999999999999")
MAX_STORED_ERRORS = 5000
HEADER_SEARCH_ROWS = 20


class ImportMode(enum.StrEnum):
    ALL_OR_NOTHING = "all_or_nothing"
    SKIP_BAD_ROWS = "skip_bad_rows"


@dataclass(frozen=True)
class Column:
    field: str
    header: str  # the template's header
    synonyms: tuple[str, ...]
    required: bool = False


COLUMNS = (
    Column("building_no", "楼栋", ("楼号", "栋号", "楼栋号", "幢号", "栋", "building")),
    Column("unit_no", "单元", ("单元号", "unit")),
    Column("house", "房号", ("房间号", "门牌号", "房屋", "房屋编号", "house"), required=True),
    Column("meter", "表类型", ("表计类型", "仪表类型", "收费项目", "费用项目", "meter"), True),
    Column("read_on", "抄表日期", ("抄表时间", "日期", "read_on", "date"), required=True),
    Column("reading", "本期读数", ("本次读数", "读数", "本月读数", "reading"), required=True),
    Column("meter_replaced", "换表", ("是否换表", "换表标记", "meter_replaced")),
)
HEADER_OF = {c.field: c.header for c in COLUMNS}
# Meter words people write instead of the fee item's own name or code.
METER_WORDS = {
    "水": ("水表", "水", "water"),
    "电": ("电表", "电", "electricity"),
    "气": ("燃气表", "气表", "燃气", "gas"),
}


def _key(value: Any) -> str:
    return n.clean_text(value).replace(" ", "").replace("*", "").lower()


def _header_index(mapping: dict[str, str] | None) -> dict[str, str]:
    index = {}
    for column in COLUMNS:
        for word in (column.header, *column.synonyms, column.field):
            index[_key(word)] = column.field
    for fieldname, header in (mapping or {}).items():
        if fieldname in HEADER_OF and header:
            index[_key(header)] = fieldname
    return index


@dataclass
class Issue:
    row: int
    column: str
    code: str
    msgid: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def message(self) -> str:
        return gettext(self.msgid).format(**self.params)

    def as_json(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "code": self.code, "message": self.message}


@dataclass
class CheckedRow:
    row: int
    house_id: uuid.UUID
    house: str
    fee_item_id: uuid.UUID
    meter: str
    read_on: dt.date
    reading: Decimal
    previous: Decimal | None
    usage: Decimal
    flag: str
    action: str  # create / update / unchanged
    existing_id: uuid.UUID | None = None


@dataclass
class MeterCheck:
    community_id: uuid.UUID
    format: str = ""
    encoding: str | None = None
    total_rows: int = 0
    rows: list[CheckedRow] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)

    @property
    def bad_rows(self) -> int:
        return len({issue.row for issue in self.issues})

    @property
    def flagged(self) -> list[CheckedRow]:
        return [r for r in self.rows if r.flag == MeterFlag.JUMP.value]

    def count(self, action: str) -> int:
        return sum(1 for r in self.rows if r.action == action)


@dataclass
class _Parsed:
    row: int
    house_key: tuple[str, str | None, str]
    meter: str
    read_on: dt.date
    reading: Decimal
    replaced: bool


async def read_upload(upload: UploadFile) -> bytes:
    """The upload's bytes, refused past the import framework's size limit."""
    if upload.size is not None:
        check_size(upload.size)
    limit = file_limit()
    chunks: list[bytes] = []
    total = 0
    while chunk := await upload.read(1024 * 1024):
        total += len(chunk)
        check_size(total if total <= limit else limit + 1)
        chunks.append(chunk)
    return b"".join(chunks)


def template_xlsx() -> bytes:
    """The template (抄表导入模板): the headers and one example row."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "抄表"
    sheet.append([c.header for c in COLUMNS])
    sheet.append(["3", "2", "1201", "水费", dt.date(2026, 3, 31), 1234.5, "否"])
    for letter in "ABCDEFG":
        sheet.column_dimensions[letter].width = 14
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _find_header(
    rows: list[tuple[int, list[Any]]], index: dict[str, str]
) -> tuple[int, dict[int, str]]:
    for number, cells in rows[:HEADER_SEARCH_ROWS]:
        found = {col: index[_key(cell)] for col, cell in enumerate(cells) if _key(cell) in index}
        if {"house", "meter", "read_on", "reading"} <= set(found.values()):
            return number, found
    missing = "、".join(c.header for c in COLUMNS if c.required)
    raise FileRefused(
        "No header row with the columns {columns} was found.",
        code="meter_import_no_header",
        columns=missing,
    )


def _parse_reading(value: Any) -> Decimal:
    text_value = n.clean_text(value).replace(",", "")
    try:
        reading = Decimal(text_value)
    except InvalidOperation:
        raise n.CellError(
            "invalid_reading", "“{value}” is not a reading.", value=text_value[:20]
        ) from None
    if not reading.is_finite() or reading < 0 or reading > MAX_READING:
        raise n.CellError("invalid_reading", "“{value}” is not a reading.", value=text_value[:20])
    return reading.quantize(Decimal("0.01"))


def _parse_rows(data: bytes, mapping: dict[str, str] | None, checked: MeterCheck) -> list[_Parsed]:
    fmt = sniff(data)
    sheet = read_sheet(data, fmt)
    checked.format, checked.encoding = fmt.value, sheet.encoding
    rows = list(sheet.rows)
    limit = get_billing_settings().meter_import_max_rows
    if len(rows) > limit + HEADER_SEARCH_ROWS:
        raise FileRefused(
            "The file has more than {limit} rows.", code="meter_import_too_many_rows", limit=limit
        )
    header_row, columns = _find_header(rows, _header_index(mapping))
    parsed = []
    for number, cells in rows:
        if number <= header_row:
            continue
        raw = {
            fieldname: cells[col] if col < len(cells) else "" for col, fieldname in columns.items()
        }
        if all(n.is_blank(v) for v in raw.values()):
            continue
        checked.total_rows += 1
        errors: dict[str, n.CellError] = {}

        def take(
            fieldname: str,
            parse: Any,
            raw: dict[str, Any] = raw,
            errors: dict[str, n.CellError] = errors,
        ) -> Any:
            value = raw.get(fieldname, "")
            if n.is_blank(value):
                if fieldname in ("house", "meter", "read_on", "reading"):
                    errors[fieldname] = n.CellError("required", "This value is required.")
                return None
            try:
                return parse(value)
            except n.CellError as problem:
                errors[fieldname] = problem
                return None

        house_text = take("house", n.clean_text)
        building = take("building_no", lambda v: n.clean_text(v))
        unit = take("unit_no", lambda v: n.clean_text(v))
        meter = take("meter", n.clean_text)
        read_on = take("read_on", n.parse_date)
        reading = take("reading", _parse_reading)
        replaced = take("meter_replaced", n.parse_bool) or False
        house_key: tuple[str, str | None, str] | None = None
        if house_text:
            if building:
                house_key = (building, unit or None, house_text)
            else:
                ref = estate.parse_house_ref(house_text)
                if ref is None:
                    errors["house"] = n.CellError(
                        "invalid_house",
                        "Write the house as 3-2-1201, or fill the building column.",
                    )
                else:
                    house_key = (ref.building_no, ref.unit_no, ref.house_no)
        for fieldname, error in errors.items():
            checked.issues.append(
                Issue(number, HEADER_OF[fieldname], error.code, error.msgid, dict(error.params))
            )
        if errors or house_key is None:
            continue
        parsed.append(_Parsed(number, house_key, meter, read_on, reading, bool(replaced)))
    return parsed


def _meter_lookup(items: list[FeeItem]) -> dict[str, FeeItem]:
    lookup: dict[str, FeeItem] = {}
    for item in items:
        for word, aliases in METER_WORDS.items():
            if word in item.name:
                for alias in aliases:
                    lookup.setdefault(_key(alias), item)
    for item in items:  # the item's own code and name win over the words above
        lookup[_key(item.code)] = item
        lookup[_key(item.name)] = item
    return lookup


async def check(
    session: AsyncSession,
    actor: Actor,
    *,
    community_id: uuid.UUID,
    data: bytes,
    mapping: dict[str, str] | None = None,
) -> MeterCheck:
    """The dry run: read and check every row against the houses, the community's metered
    fee items and the readings already recorded. Writes nothing."""
    community = await estate.get_community(session, actor, community_id=community_id)
    checked = MeterCheck(community.id)
    parsed = _parse_rows(data, mapping, checked)
    items = list(
        (
            await session.scalars(
                select(FeeItem).where(
                    FeeItem.community_id == community.id,
                    FeeItem.kind == FeeKind.METERED.value,
                    FeeItem.active.is_(True),
                )
            )
        ).all()
    )
    meters = _meter_lookup(items)
    keys = {(community.code, *p.house_key) for p in parsed}
    resolved = await estate.resolve_houses(session, actor, keys=keys)
    good: list[tuple[_Parsed, uuid.UUID, FeeItem]] = []
    for p in parsed:
        house_id = resolved.ids.get((community.code, *p.house_key))
        item = meters.get(_key(p.meter))
        if house_id is None:
            checked.issues.append(
                Issue(
                    p.row,
                    HEADER_OF["house"],
                    "unknown_house",
                    "House {house} is not in this community.",
                    {"house": "-".join(x for x in p.house_key if x)},
                )
            )
        if item is None:
            checked.issues.append(
                Issue(
                    p.row,
                    HEADER_OF["meter"],
                    "unknown_meter",
                    "“{value}” is not a metered fee item of this community.",
                    {"value": p.meter[:40]},
                )
            )
        if house_id is not None and item is not None:
            good.append((p, house_id, item))
    await _check_history(session, checked, good)
    checked.issues.sort(key=lambda issue: (issue.row, issue.column))
    checked.rows.sort(key=lambda r: r.row)
    return checked


async def _check_history(
    session: AsyncSession,
    checked: MeterCheck,
    good: list[tuple[_Parsed, uuid.UUID, FeeItem]],
) -> None:
    """Readings in date order per meter, the file's and the recorded ones together."""
    factor = get_billing_settings().meter_jump_factor
    history: dict[tuple[uuid.UUID, uuid.UUID], list[MeterReading]] = defaultdict(list)
    if good:
        recorded = await session.scalars(
            select(MeterReading)
            .where(
                MeterReading.house_id.in_({h for _, h, _ in good}),
                MeterReading.fee_item_id.in_({i.id for _, _, i in good}),
            )
            .order_by(MeterReading.read_on)
        )
        for reading in recorded:
            history[(reading.house_id, reading.fee_item_id)].append(reading)
    by_meter: dict[tuple[uuid.UUID, uuid.UUID], list[tuple[_Parsed, FeeItem]]] = defaultdict(list)
    for p, house_id, item in good:
        by_meter[(house_id, item.id)].append((p, item))
    for (house_id, item_id), rows in by_meter.items():
        # One reading per meter and month: a later row of the file repeating a month is
        # the duplicate, whatever its date.
        seen: dict[tuple[int, int], int] = {}
        kept: list[tuple[_Parsed, FeeItem]] = []
        for p, item in sorted(rows, key=lambda x: x[0].row):
            month = (p.read_on.year, p.read_on.month)
            if month in seen:
                checked.issues.append(
                    Issue(
                        p.row,
                        HEADER_OF["read_on"],
                        "duplicate_row",
                        "This meter already has a reading for that month in row {first_row}.",
                        {"first_row": seen[month]},
                    )
                )
                continue
            seen[month] = p.row
            kept.append((p, item))
        # (read_on, reading, usage) of the readings before, recorded or from the file
        timeline = [(r.read_on, r.reading, r.usage) for r in history[(house_id, item_id)]]
        for p, item in sorted(kept, key=lambda x: (x[0].read_on, x[0].row)):
            month = (p.read_on.year, p.read_on.month)
            same_month = [
                r
                for r in history[(house_id, item_id)]
                if (r.read_on.year, r.read_on.month) == month
            ]
            existing = same_month[0] if same_month else None
            later = [
                r
                for r in history[(house_id, item_id)]
                if r.read_on > p.read_on and (r.read_on.year, r.read_on.month) != month
            ]
            if later:  # readings after it were computed from the one before it
                checked.issues.append(
                    Issue(
                        p.row,
                        HEADER_OF["read_on"],
                        "reading_not_latest",
                        "This meter already has a later reading ({day}); an earlier month "
                        "cannot be added or replaced any more.",
                        {"day": later[0].read_on.isoformat()},
                    )
                )
                continue
            before = [
                t
                for t in timeline
                if t[0] < p.read_on and (existing is None or t[0] != existing.read_on)
            ]
            previous = before[-1][1] if before else None
            flag = MeterFlag.OK
            if p.replaced:
                usage, flag = p.reading, MeterFlag.METER_REPLACED
            elif previous is None:
                usage = Decimal(0)
            elif p.reading < previous:
                checked.issues.append(
                    Issue(
                        p.row,
                        HEADER_OF["reading"],
                        "meter_reading_backwards",
                        "The reading {reading} is lower than the last one ({previous}); "
                        "if the meter was replaced, write 是 in the 换表 column.",
                        {"reading": str(p.reading), "previous": str(previous)},
                    )
                )
                continue
            else:
                usage = p.reading - previous
                past = [t[2] for t in before[-3:] if t[2] > 0]
                if past and usage > factor * (sum(past, Decimal(0)) / len(past)):
                    flag = MeterFlag.JUMP
            action = "create"
            if existing is not None:
                unchanged = existing.read_on == p.read_on and existing.reading == p.reading
                action = "unchanged" if unchanged else "update"
                if unchanged:
                    flag = MeterFlag(existing.flag)
            timeline = sorted([*before, (p.read_on, p.reading, usage)])
            checked.rows.append(
                CheckedRow(
                    p.row,
                    house_id,
                    "-".join(x for x in p.house_key if x),
                    item_id,
                    item.name,
                    p.read_on,
                    p.reading,
                    previous,
                    usage,
                    flag.value,
                    action,
                    existing.id if existing is not None else None,
                )
            )


@dataclass
class ImportCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped_rows: int = 0
    flagged: int = 0


async def apply(
    session: AsyncSession, actor: Actor, *, checked: MeterCheck, mode: ImportMode
) -> ImportCounts:
    """Write a checked file: new readings inserted, replaced months updated, in two
    statements whatever the size. ``all_or_nothing`` refuses a file with any error."""
    if checked.issues and mode is ImportMode.ALL_OR_NOTHING:
        raise ValidationFailed(
            "The file has {count} rows with errors; nothing was imported.",
            code="meter_import_has_errors",
            errors=[FieldError(f"row {i.row}", i.message, i.code) for i in checked.issues[:100]],
            count=checked.bad_rows,
        )
    bad = {issue.row for issue in checked.issues}
    rows = [r for r in checked.rows if r.row not in bad]
    await write_rows(session, actor, community_id=checked.community_id, rows=rows)
    new = [r for r in rows if r.action == "create"]
    changed = [r for r in rows if r.action == "update"]
    counts = ImportCounts(
        created=len(new),
        updated=len(changed),
        unchanged=len(rows) - len(new) - len(changed),
        skipped_rows=len(bad),
        flagged=sum(1 for r in new + changed if r.flag == MeterFlag.JUMP.value),
    )
    await audit.record(
        session,
        actor,
        "meter_reading.import",
        target_type="community",
        target_id=checked.community_id,
        detail=counts.__dict__,
    )
    return counts


async def write_rows(
    session: AsyncSession, actor: Actor, *, community_id: uuid.UUID, rows: list[CheckedRow]
) -> None:
    """New readings inserted, replaced months updated: two statements whatever the size."""
    new = [r for r in rows if r.action == "create"]
    changed = [r for r in rows if r.action == "update"]
    tenant_id = actor.tenant_id
    if new:
        await session.execute(
            text(
                "INSERT INTO meter_readings (tenant_id, id, community_id, house_id, fee_item_id,"
                " read_on, reading, previous_reading, usage, flag, entered_by, created_at)"
                " SELECT :tenant, x.id, :community, x.house, x.item, x.read_on, x.reading,"
                " x.previous, x.usage, x.flag, :actor, now()"
                " FROM unnest(CAST(:ids AS uuid[]), CAST(:houses AS uuid[]),"
                " CAST(:items AS uuid[]), CAST(:days AS date[]), CAST(:readings AS numeric[]),"
                " CAST(:previous AS numeric[]), CAST(:usages AS numeric[]),"
                " CAST(:flags AS varchar[]))"
                " AS x(id, house, item, read_on, reading, previous, usage, flag)"
            ),
            {
                "tenant": tenant_id,
                "community": community_id,
                "actor": actor.id,
                "ids": [new_id() for _ in new],
                "houses": [r.house_id for r in new],
                "items": [r.fee_item_id for r in new],
                "days": [r.read_on for r in new],
                "readings": [r.reading for r in new],
                "previous": [r.previous for r in new],
                "usages": [r.usage for r in new],
                "flags": [r.flag for r in new],
            },
        )
    if changed:
        await session.execute(
            text(
                "UPDATE meter_readings m SET read_on = x.read_on, reading = x.reading,"
                " previous_reading = x.previous, usage = x.usage, flag = x.flag,"
                " entered_by = :actor"
                " FROM unnest(CAST(:ids AS uuid[]), CAST(:days AS date[]),"
                " CAST(:readings AS numeric[]), CAST(:previous AS numeric[]),"
                " CAST(:usages AS numeric[]), CAST(:flags AS varchar[]))"
                " AS x(id, read_on, reading, previous, usage, flag) WHERE m.id = x.id"
            ),
            {
                "actor": actor.id,
                "ids": [r.existing_id for r in changed],
                "days": [r.read_on for r in changed],
                "readings": [r.reading for r in changed],
                "previous": [r.previous for r in changed],
                "usages": [r.usage for r in changed],
                "flags": [r.flag for r in changed],
            },
        )


async def flagged_readings(
    session: AsyncSession, actor: Actor, *, community_id: uuid.UUID, limit: int = 200
) -> list[tuple[MeterReading, str]]:
    """Readings waiting for someone to confirm a jump, with their house label."""
    community = await estate.get_community(session, actor, community_id=community_id)
    rows = list(
        (
            await session.scalars(
                select(MeterReading)
                .where(
                    MeterReading.community_id == community.id,
                    MeterReading.flag == MeterFlag.JUMP.value,
                )
                .order_by(MeterReading.read_on.desc(), MeterReading.id)
                .limit(limit)
            )
        ).all()
    )
    labels = await estate.house_refs(session, actor, house_ids=[r.house_id for r in rows])
    return [(r, labels.get(r.house_id, "")) for r in rows]


# --- the background job (导入任务) --------------------------------------------------------------

TASK_NAME = "linli.billing.import_meter_readings"
BATCH_ROWS = 5000
_FINISHED = frozenset(
    {MeterImportStatus.DONE.value, MeterImportStatus.REJECTED.value, MeterImportStatus.FAILED.value}
)


def finished(job: MeterImportJob) -> bool:
    return job.status in _FINISHED


def progress(job: MeterImportJob) -> float:
    if finished(job):
        return 1.0
    return job.processed_rows / job.total_rows if job.total_rows else 0.0


async def start_job(
    session: AsyncSession,
    actor: Actor,
    *,
    community_id: uuid.UUID,
    data: bytes,
    file_name: str,
    mode: ImportMode,
    mapping: dict[str, str] | None = None,
) -> MeterImportJob:
    """Store the file and queue the job that checks and writes it (the worker's queue
    ``billing``); the file is refused now if it is no spreadsheet at all."""
    community = await estate.get_community(session, actor, community_id=community_id)
    check_size(len(data))
    sniff(data)
    assert actor.tenant_id is not None
    job = MeterImportJob(
        tenant_id=actor.tenant_id,
        id=new_id(),
        community_id=community.id,
        mode=mode.value,
        file_name=n.clean_text(file_name)[:255] or "upload",
        content=data,
        mapping=dict(mapping or {}),
        created_by=actor.id,
    )
    session.add(job)
    await session.flush()
    await audit.record(
        session,
        actor,
        "meter_reading.import_start",
        target_type="community",
        target_id=community.id,
        detail={"job": str(job.id), "size": len(data), "mode": mode.value},
    )
    await defer_in_transaction(
        session,
        TASK_NAME,
        queue="billing",
        lock=f"meter-import:{job.id}",
        tenant_id=str(actor.tenant_id),
        job_id=str(job.id),
    )
    return job


async def get_job(session: AsyncSession, actor: Actor, *, job_id: uuid.UUID) -> MeterImportJob:
    job = await session.scalar(
        select(MeterImportJob).where(
            MeterImportJob.id == job_id,
            estate.community_scope(actor, MeterImportJob.community_id),
        )
    )
    if job is None:
        raise NotFound("Import job not found.", code="meter_import_job_not_found")
    return job


async def _update(tenant_id: uuid.UUID, job_id: uuid.UUID, **values: Any) -> None:
    """Progress in its own short transaction, visible while the write is still open."""
    async with unit_of_work(tenant_id) as session:
        await session.execute(
            update(MeterImportJob).where(MeterImportJob.id == job_id).values(**values)
        )


async def run_job(tenant_id: uuid.UUID, job_id: uuid.UUID, *, batch_rows: int = BATCH_ROWS) -> str:
    """Check and write one job; all its readings commit together (a retry after a crash
    starts over and finds what a committed attempt wrote unchanged)."""
    async with unit_of_work(tenant_id) as session:
        job = await session.scalar(
            select(MeterImportJob)
            .where(MeterImportJob.id == job_id)
            .with_for_update(skip_locked=True)
        )
        if job is None:
            return "missing-or-busy"
        if finished(job):
            return job.status
        job.status = MeterImportStatus.RUNNING.value
        job.attempts += 1
        job.started_at = dt.datetime.now(dt.UTC)
        job.processed_rows = 0
        data, community_id, mode = job.content, job.community_id, ImportMode(job.mode)
        mapping = dict(job.mapping)
    actor = Actor.system(tenant_id)
    try:
        async with unit_of_work(tenant_id) as session:
            checked = await check(
                session, actor, community_id=community_id, data=data, mapping=mapping
            )
            del data
            await _update(
                tenant_id,
                job_id,
                total_rows=checked.total_rows,
                processed_rows=checked.bad_rows,
                error_rows=checked.bad_rows,
                errors=[i.as_json() for i in checked.issues[:MAX_STORED_ERRORS]],
            )
            if checked.issues and mode is ImportMode.ALL_OR_NOTHING:
                status = MeterImportStatus.REJECTED
            else:
                status = MeterImportStatus.DONE
                bad = {issue.row for issue in checked.issues}
                rows = [r for r in checked.rows if r.row not in bad]
                processed = checked.bad_rows
                for start in range(0, len(rows), batch_rows):
                    batch = rows[start : start + batch_rows]
                    await write_rows(session, actor, community_id=community_id, rows=batch)
                    processed += len(batch)
                    await _update(tenant_id, job_id, processed_rows=processed)
                await audit.record(
                    session,
                    actor,
                    "meter_reading.import",
                    target_type="community",
                    target_id=community_id,
                    detail={"job": str(job_id), "rows": len(rows)},
                )
            await session.execute(
                update(MeterImportJob)
                .where(MeterImportJob.id == job_id)
                .values(
                    status=status.value,
                    processed_rows=checked.total_rows,
                    created_count=checked.count("create") if status.value == "done" else 0,
                    updated_count=checked.count("update") if status.value == "done" else 0,
                    unchanged_count=checked.count("unchanged") if status.value == "done" else 0,
                    flagged_count=len(checked.flagged),
                    finished_at=func.now(),
                    failure=None,
                )
            )
    except DomainError as error:
        # The file cannot be read (no header, too many rows...): running again would fail too.
        await _update(
            tenant_id,
            job_id,
            status=MeterImportStatus.FAILED.value,
            failure=error.detail()[:400],
            finished_at=func.now(),
        )
        return MeterImportStatus.FAILED.value
    return status.value
