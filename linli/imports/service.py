"""Bulk import (批量导入): read a spreadsheet, check every row, then write it through
the estate services' set-based upserts.

Two passes over the file, never more: the dry run (or the job's first step)
reads and checks every row without writing; the job then writes the rows that
passed in batches. Writing happens in *one* transaction, so all-or-nothing
really is, a worker killed half-way leaves nothing behind, and the re-run that
procrastinate gives the job starts from a clean slate. Progress is written
beside it in short transactions of its own, which the console polls.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import importlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any, Protocol, cast

import structlog
from sqlalchemy import Select, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from linli.auth.actor import Actor, PrincipalKind
from linli.config import get_settings
from linli.core import audit
from linli.core.errors import DomainError, FieldError, NotFound, PayloadTooLarge, ValidationFailed
from linli.db.engine import current_tenant, unit_of_work
from linli.imports import kinds as k
from linli.imports.kinds import ImportKind
from linli.imports.models import ImportFile, ImportJob, ImportMode, ImportStatus
from linli.imports.normalize import CellError, clean_text, is_blank
from linli.imports.parsing import (
    FileFormat,
    FileRefused,
    RawSheet,
    column_letter,
    read_sheet,
    sniff,
)
from linli.jobs import defer_in_transaction
from linli.tenancy.models import Community

log = structlog.get_logger("linli.imports")

MAX_STORED_ERRORS = 5000  # per job; error_rows keeps the full count
MAX_REPORTED_ERRORS = 1000  # per dry-run response
HEADER_SEARCH_ROWS = 20  # real sheets put a title and notes above the header
BATCH_ROWS = 20000  # a batch is a handful of set-based statements whatever its size
TASK_NAME = "linli.imports.run_import"

_EXCEL_ERRORS = frozenset(
    {"#N/A", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#NULL!", "#SPILL!", "#CALC!"}
)


class UpsertCounts(Protocol):
    created: int
    updated: int
    unchanged: int


Writer = Callable[[AsyncSession, Actor, Sequence[Any]], Awaitable[UpsertCounts]]

# Where each kind is written: the owning domain's service, resolved at call time.
WRITER_PATHS: dict[ImportKind, tuple[str, str]] = {
    ImportKind.HOUSES: ("linli.estate.service", "upsert_houses"),
    ImportKind.RESIDENTS: ("linli.residents.service", "upsert_residents"),
    ImportKind.VEHICLES: ("linli.residents.service", "upsert_vehicles"),
    ImportKind.STAFF: ("linli.staff.service", "upsert_staff_records"),
    ImportKind.PARKING: ("linli.estate.service", "upsert_parking_spaces"),
    ImportKind.FACILITIES: ("linli.estate.service", "upsert_facilities"),
}
# Tests (and a future plug-in) may put a writer here; it wins over WRITER_PATHS.
WRITER_OVERRIDES: dict[ImportKind, Writer] = {}


def writer_for(kind: ImportKind) -> Writer:
    if kind in WRITER_OVERRIDES:
        return WRITER_OVERRIDES[kind]
    module_name, function_name = WRITER_PATHS[kind]
    try:
        upsert = getattr(importlib.import_module(module_name), function_name)
    except (ModuleNotFoundError, AttributeError) as exc:
        raise ImportUnavailable(kind=kind.value) from exc

    async def write(session: AsyncSession, actor: Actor, rows: Sequence[Any]) -> UpsertCounts:
        result: UpsertCounts = await upsert(session, actor, rows=rows)
        return result

    return write


class ImportUnavailable(DomainError):
    status = 501
    code = "import_kind_unavailable"
    default_message = "Importing {kind} is not available in this version."


# --- checking a file ----------------------------------------------------------------------


@dataclass
class RowIssue:
    row: int
    column: str
    field: str
    code: str
    msgid: str
    params: dict[str, Any] = dc_field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "column": self.column,
            "field": self.field,
            "code": self.code,
            "msgid": self.msgid,
            "params": self.params,
        }


@dataclass
class CheckedFile:
    """The outcome of reading and checking every row; nothing is written yet."""

    kind: ImportKind
    format: FileFormat
    encoding: str | None
    columns: dict[str, str]  # header as written -> field
    ignored_columns: list[str]
    total_rows: int = 0
    rows: list[tuple[int, dict[str, Any]]] = dc_field(default_factory=list)  # (excel row, values)
    issues: list[RowIssue] = dc_field(default_factory=list)
    bad_rows: set[int] = dc_field(default_factory=set)

    @property
    def error_rows(self) -> int:
        return len(self.bad_rows)


def file_limit() -> int:
    return get_settings().import_max_bytes


def check_size(size: int) -> None:
    limit = file_limit()
    if size > limit:
        raise PayloadTooLarge(
            "The file is larger than {limit_mb} MB; split it into smaller files.",
            code="import_file_too_large",
            limit_mb=limit // (1024 * 1024),
        )


async def community_context(session: AsyncSession, actor: Actor) -> k.RowContext:
    """The communities a row may name: the actor's own, by code, id or unique name."""
    from linli.tenancy import service as tenancy_service

    found = await session.scalars(tenancy_service.readable_communities(actor))
    communities: Sequence[Community] = found.all()
    spellings: dict[str, str] = {}
    names: dict[str, list[str]] = {}
    for community in communities:
        spellings[community.code] = community.code
        spellings[community.code.lower()] = community.code
        spellings[str(community.id)] = community.code
        names.setdefault(clean_text(community.name), []).append(community.code)
    for name, codes in names.items():
        if len(codes) == 1 and name:
            spellings.setdefault(name, codes[0])
    return k.RowContext(communities=spellings)


def check_file(
    data: bytes,
    *,
    kind: ImportKind,
    context: k.RowContext,
    mapping: dict[str, str | None] | None = None,
) -> CheckedFile:
    """Read ``data`` and check every row. Raises :class:`FileRefused` for a file-level problem."""
    check_size(len(data))
    fmt = sniff(data)
    sheet = read_sheet(data, fmt)
    rows = sheet.rows
    header_row, fields_by_col, columns, ignored = _find_header(rows, kind, mapping or {})
    checked = CheckedFile(
        kind=kind, format=fmt, encoding=sheet.encoding, columns=columns, ignored_columns=ignored
    )
    header_of = {f: h for h, f in columns.items()}
    for column in k.COLUMNS[kind]:
        header_of.setdefault(column.field, column.header)
    grouping = {c.field for c in k.COLUMNS[kind] if c.grouping}
    merged_into, merge_origins = _merged_cells(sheet, header_row, fields_by_col)
    origin_values: dict[tuple[int, int], Any] = {}
    build = k.BUILDERS[kind]
    first_seen: dict[tuple[Any, ...], int] = {}
    duplicate_msgid = k.DUPLICATE_MESSAGES[kind]
    duplicate_field = k.DUPLICATE_FIELD[kind]
    formulas = sheet.uncached_formulas
    mapped = sorted(fields_by_col.items())
    special_cells = bool(merged_into or merge_origins or formulas)

    for number, cells in rows:
        raw: dict[str, Any] = {}
        own = False  # did this row itself hold anything, beyond values filled down from a merge?
        width = len(cells)
        for col, fieldname in mapped:
            value = cells[col - 1] if col <= width else ""
            position = (number, col) if special_cells else None
            if position in merge_origins:
                origin_values[position] = value
            if position in formulas:
                value = CellError(
                    "formula_without_value",
                    "The formula in {cell} has no saved result; open the file in Excel or WPS, "
                    "save it, and upload it again.",
                    cell=f"{column_letter(col)}{number}",
                )
            elif isinstance(value, str) and value in _EXCEL_ERRORS:
                value = CellError(
                    "excel_error", "The cell holds the Excel error {value}.", value=value
                )
            if isinstance(value, CellError) or not _blank(value):
                own = True
            elif special_cells:
                origin = merged_into.get(position)  # type: ignore[arg-type]
                if origin is not None and origin[0] != number:
                    if fieldname in grouping:
                        value = origin_values.get(origin, "")
                    else:
                        value = CellError(
                            "merged_cell",
                            "This cell is merged with row {first_row}; only the community, "
                            "building and "
                            "unit columns may be merged. Unmerge it and fill every row.",
                            first_row=origin[0],
                        )
            raw[fieldname] = value
        if not own:
            continue  # blank rows, including ones inside a merged group, are skipped
        checked.total_rows += 1
        try:
            values = build(raw, context)
        except k.RowErrors as problem:
            checked.bad_rows.add(number)
            for fieldname, error in problem.errors.items():
                checked.issues.append(
                    RowIssue(
                        number,
                        header_of.get(fieldname, fieldname),
                        fieldname,
                        error.code,
                        error.msgid,
                        _json_params(error.params),
                    )
                )
            continue
        key = k.natural_key(kind, values)
        first = first_seen.setdefault(key, number)
        if first != number:
            checked.bad_rows.add(number)
            checked.issues.append(
                RowIssue(
                    number,
                    header_of.get(duplicate_field, duplicate_field),
                    duplicate_field,
                    "duplicate_row",
                    duplicate_msgid,
                    {"first_row": first},
                )
            )
            continue
        checked.rows.append((number, values))
    return checked


_blank = is_blank


def _json_params(params: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value if isinstance(value, (int, str)) else str(value) for key, value in params.items()
    }


def _find_header(
    rows: Any, kind: ImportKind, mapping: dict[str, str | None]
) -> tuple[int, dict[int, str], dict[str, str], list[str]]:
    """Find the header row among the first rows and map its columns to fields.

    The user's mapping (header -> field, or None to ignore) wins over synonyms.
    """
    known = {c.field for c in k.COLUMNS[kind]}
    user = {}
    for header, target in mapping.items():
        if target is not None and target not in known:
            raise ValidationFailed(
                errors=[
                    FieldError(
                        "mapping",
                        f"Unknown field '{target}' for {kind.value}.",
                        code="unknown_field",
                    )
                ]
            )
        user[k.header_key(header)] = target
    index = k.header_index(kind)
    best: tuple[int, dict[int, str], dict[str, str], list[str]] | None = None
    for number, cells in rows:
        if number > HEADER_SEARCH_ROWS:
            break
        fields_by_col: dict[int, str] = {}
        columns: dict[str, str] = {}
        ignored: list[str] = []
        for col, cell in enumerate(cells, start=1):
            text = clean_text(cell)
            if not text:
                continue
            key = k.header_key(text)
            target = user[key] if key in user else index.get(key)
            if target is None or target in fields_by_col.values():
                ignored.append(text)
                continue
            fields_by_col[col] = target
            columns[text] = target
        if len(fields_by_col) >= 2:
            best = (number, fields_by_col, columns, ignored)
            break
    if best is None:
        raise FileRefused(
            "No header row found: one of the first rows must name the columns, as in the template.",
            code="import_no_header",
        )
    present = set(best[1].values())
    missing = []
    for column in k.COLUMNS[kind]:
        if not column.required:
            continue
        if column.field == "house_no" and "address" in present:
            continue
        if column.field not in present:
            missing.append(column)
    if missing:
        raise FileRefused(
            "Required columns are missing: {columns}.",
            code="import_missing_columns",
            columns="、".join(c.header for c in missing),
            errors=[
                FieldError(c.header, "This column is required.", code="missing_column")
                for c in missing
            ],
        )
    return best


def _merged_cells(
    sheet: RawSheet, header_row: int, fields_by_col: dict[int, str]
) -> tuple[dict[tuple[int, int], tuple[int, int]], set[tuple[int, int]]]:
    """For each cell inside a merged range below the header: the range's top-left cell."""
    into: dict[tuple[int, int], tuple[int, int]] = {}
    origins: set[tuple[int, int]] = set()
    for r1, c1, r2, c2 in sheet.merged:
        if r2 <= header_row:
            continue
        origin = (r1, c1)
        origins.add(origin)
        for col in range(c1, c2 + 1):
            if col not in fields_by_col:
                continue
            for row in range(max(r1, header_row + 1), r2 + 1):
                if (row, col) != origin:
                    into[(row, col)] = origin
    return into, origins


# --- dry run and jobs ---------------------------------------------------------------------


def _parse_mapping(mapping: dict[str, str | None] | None) -> dict[str, str | None]:
    return {str(h): (None if t in (None, "") else str(t)) for h, t in (mapping or {}).items()}


async def dry_run(
    session: AsyncSession,
    actor: Actor,
    *,
    kind: ImportKind,
    data: bytes,
    file_name: str,
    mapping: dict[str, str | None] | None = None,
) -> CheckedFile:
    """Check every row and report; writes nothing (not even a job row)."""
    context = await community_context(session, actor)
    # Reading 100,000 rows is seconds of CPU: keep the event loop serving others meanwhile.
    checked = await asyncio.to_thread(
        check_file, data, kind=kind, context=context, mapping=_parse_mapping(mapping)
    )
    await check_references(session, actor, checked)
    return checked


async def check_references(session: AsyncSession, actor: Actor, checked: CheckedFile) -> None:
    """What rows point at must exist (houses, owners' phones, buildings): each row that
    points at nothing gets its own message in the dry run, instead of a refused job."""
    await check_houses_exist(session, actor, checked)
    await check_owner_phones(session, actor, checked)
    await check_buildings_exist(session, actor, checked)


def _drop_rows(checked: CheckedFile, issues: dict[int, RowIssue]) -> None:
    if not issues:
        return
    checked.bad_rows.update(issues)
    checked.issues.extend(issues.values())
    checked.rows = [(number, v) for number, v in checked.rows if number not in issues]
    checked.issues.sort(key=lambda issue: issue.row)


def _header(checked: CheckedFile, fieldname: str, default: str) -> str:
    return next((h for h, f in checked.columns.items() if f == fieldname), default)


async def check_owner_phones(session: AsyncSession, actor: Actor, checked: CheckedFile) -> None:
    """A vehicle's or parking space's owner, by phone, must be a resident of this company."""
    if checked.kind not in (ImportKind.VEHICLES, ImportKind.PARKING):
        return
    from linli.residents import service as residents_service

    phones = sorted({v["owner_phone"] for _, v in checked.rows if v.get("owner_phone")})
    if not phones:
        return
    known = await residents_service.resident_ids_by_phones(session, actor, phones)
    header = _header(checked, "owner_phone", "持有人手机号")
    _drop_rows(
        checked,
        {
            number: RowIssue(
                number,
                header,
                "owner_phone",
                "resident_not_found",
                "No resident has this phone: import the residents first.",
            )
            for number, v in checked.rows
            if v.get("owner_phone") and v["owner_phone"] not in known
        },
    )


async def check_buildings_exist(session: AsyncSession, actor: Actor, checked: CheckedFile) -> None:
    """A facility's building must be in the registry."""
    if checked.kind is not ImportKind.FACILITIES:
        return
    from linli.estate import service as estate_service

    keys = sorted(
        {(v["community_code"], v["building_no"]) for _, v in checked.rows if v.get("building_no")}
    )
    if not keys:
        return
    known = await estate_service.resolve_buildings(session, actor, keys=keys)
    header = _header(checked, "building_no", "所在楼栋")
    _drop_rows(
        checked,
        {
            number: RowIssue(
                number,
                header,
                "building_no",
                "unknown_building",
                "Building {building} is not in community {community}; import the houses first.",
                {"building": v["building_no"], "community": v["community_code"]},
            )
            for number, v in checked.rows
            if v.get("building_no") and (v["community_code"], v["building_no"]) not in known
        },
    )


async def check_houses_exist(session: AsyncSession, actor: Actor, checked: CheckedFile) -> None:
    """Residents, vehicles and parking spaces must point at houses already in the registry."""
    if checked.kind not in (ImportKind.RESIDENTS, ImportKind.VEHICLES, ImportKind.PARKING):
        return
    from linli.estate import service as estate_service

    keyed = [
        (number, (v["community_code"], v["building_no"], v["unit_no"], v["house_no"]))
        for number, v in checked.rows
        if v.get("house_no")
    ]
    known: set[tuple[str, str, str | None, str]] = set()
    wanted = sorted({key for _, key in keyed}, key=str)
    for start in range(0, len(wanted), 20000):
        resolved = await estate_service.resolve_houses(
            session, actor, keys=wanted[start : start + 20000]
        )
        known.update(resolved.ids)
    missing = {number for number, key in keyed if key not in known}
    if not missing:
        return
    header = next((h for h, f in checked.columns.items() if f == "house_no"), None) or next(
        (h for h, f in checked.columns.items() if f == "address"), "房号"
    )
    for number, values in checked.rows:
        if number in missing:
            checked.bad_rows.add(number)
            address = "-".join(
                p for p in (values["building_no"], values["unit_no"], values["house_no"]) if p
            )
            checked.issues.append(
                RowIssue(
                    number,
                    header,
                    "house_no",
                    "unknown_house",
                    "House {house} is not in community {community}; import the houses first.",
                    {"house": address, "community": values["community_code"]},
                )
            )
    checked.rows = [(number, v) for number, v in checked.rows if number not in missing]
    checked.issues.sort(key=lambda issue: issue.row)


async def start_import(
    session: AsyncSession,
    actor: Actor,
    *,
    kind: ImportKind,
    mode: ImportMode,
    data: bytes,
    file_name: str,
    mapping: dict[str, str | None] | None = None,
) -> ImportJob:
    """Store the file and queue the job that checks and writes it."""
    assert actor.tenant_id is not None
    check_size(len(data))
    sniff(data)  # refuse a PDF now, not minutes later in a worker
    writer_for(kind)  # and a kind this installation cannot write
    digest = hashlib.sha256(data).hexdigest()
    await session.execute(
        pg_insert(ImportFile)
        .values(
            tenant_id=actor.tenant_id, id=uuid.uuid4(), sha256=digest, size=len(data), content=data
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "sha256"])
    )
    file_id = await session.scalar(select(ImportFile.id).where(ImportFile.sha256 == digest))
    assert file_id is not None
    job = ImportJob(
        tenant_id=actor.tenant_id,
        kind=kind.value,
        mode=mode.value,
        status=ImportStatus.QUEUED.value,
        file_id=file_id,
        file_name=clean_text(file_name)[:255] or "upload",
        size=len(data),
        sha256=digest,
        mapping=_parse_mapping(mapping),
        actor_scope={
            "kind": actor.kind.value,
            "roles": sorted(actor.roles),
            "all_communities": actor.all_communities,
            "community_ids": sorted(str(c) for c in actor.community_ids),
            "display_name": actor.display_name,
        },
        created_by=actor.id,
    )
    session.add(job)
    await session.flush()
    await audit.record(
        session,
        actor,
        "import.start",
        target_type="import_job",
        target_id=job.id,
        detail={"kind": kind.value, "mode": mode.value, "size": len(data), "sha256": digest},
    )
    await defer_in_transaction(
        session,
        TASK_NAME,
        queue="imports",
        lock=f"import:{job.id}",
        tenant_id=str(actor.tenant_id),
        job_id=str(job.id),
    )
    return job


def readable_jobs(actor: Actor) -> Select[tuple[ImportJob]]:
    """Company-wide staff see every import; others only their own uploads."""
    statement: Select[tuple[ImportJob]] = select(ImportJob)
    if not actor.all_communities:
        statement = statement.where(ImportJob.created_by == actor.id)
    return statement


async def get_job(session: AsyncSession, actor: Actor, *, job_id: uuid.UUID) -> ImportJob:
    job: ImportJob | None = cast(
        "ImportJob | None", await session.scalar(readable_jobs(actor).where(ImportJob.id == job_id))
    )
    if job is None:
        raise NotFound("Import job not found.", code="import_job_not_found")
    return job


def job_actor(job: ImportJob) -> Actor:
    """The uploader as they were when they uploaded, acting from a worker."""
    scope = job.actor_scope
    if scope.get("kind", "staff") != PrincipalKind.STAFF.value:
        return Actor.system(job.tenant_id)
    return Actor.staff(
        id=job.created_by,
        tenant_id=job.tenant_id,
        roles=frozenset(scope.get("roles", ())),
        all_communities=bool(scope.get("all_communities")),
        community_ids=frozenset(uuid.UUID(c) for c in scope.get("community_ids", ())),
        request_id=f"import-{job.id}",
        display_name=str(scope.get("display_name", "")),
    )


_TERMINAL = frozenset({ImportStatus.DONE.value, ImportStatus.REJECTED.value})


async def run_job(tenant_id: uuid.UUID, job_id: uuid.UUID, *, batch_rows: int = BATCH_ROWS) -> str:
    """Check and write one import job. Safe to run again after a crash: see the module doc."""
    async with unit_of_work(tenant_id) as session:
        job = await session.scalar(
            select(ImportJob).where(ImportJob.id == job_id).with_for_update(skip_locked=True)
        )
        if job is None:
            return "missing-or-busy"
        if job.status in _TERMINAL:
            return job.status
        job.status = ImportStatus.RUNNING.value
        job.attempts += 1
        job.started_at = dt.datetime.now(dt.UTC)
        job.processed_rows = 0
        kind, mode = ImportKind(job.kind), ImportMode(job.mode)
        actor = job_actor(job)
        mapping = dict(job.mapping)
    try:
        async with unit_of_work(tenant_id) as session:
            data = await session.scalar(
                select(ImportFile.content).where(ImportFile.id == job.file_id)
            )
            assert data is not None
            context = await community_context(session, actor)
            checked = await asyncio.to_thread(
                check_file, data, kind=kind, context=context, mapping=mapping
            )
            del data
            await check_references(session, actor, checked)
    except DomainError as error:
        await _finish(tenant_id, job_id, ImportStatus.FAILED, failure=error)
        return ImportStatus.FAILED.value
    await _update(
        tenant_id,
        job_id,
        total_rows=checked.total_rows,
        processed_rows=checked.error_rows,
        error_rows=checked.error_rows,
        errors=[i.as_json() for i in checked.issues[:MAX_STORED_ERRORS]],
    )
    if checked.bad_rows and mode is ImportMode.ALL_OR_NOTHING:
        await _finish(tenant_id, job_id, ImportStatus.REJECTED)
        return ImportStatus.REJECTED.value

    write = writer_for(kind)
    make_row = k.row_factory(kind)
    created = updated = unchanged = 0
    processed = checked.error_rows
    try:
        async with unit_of_work(tenant_id) as session:
            for start in range(0, len(checked.rows), batch_rows):
                batch = [make_row(values) for _, values in checked.rows[start : start + batch_rows]]
                counts = await write(session, actor, batch)
                created += counts.created
                updated += counts.updated
                unchanged += counts.unchanged
                processed += len(batch)
                await _update(tenant_id, job_id, processed_rows=processed)
            await audit.record(
                session,
                actor,
                "import.finish",
                target_type="import_job",
                target_id=job_id,
                detail={
                    "created": created,
                    "updated": updated,
                    "unchanged": unchanged,
                    "skipped_rows": checked.error_rows,
                },
            )
            await session.execute(
                update(ImportJob)
                .where(ImportJob.id == job_id)
                .values(
                    status=ImportStatus.DONE.value,
                    processed_rows=checked.total_rows,
                    created_count=created,
                    updated_count=updated,
                    unchanged_count=unchanged,
                    finished_at=func.now(),
                    failure_code=None,
                    failure=None,
                )
            )
    except DomainError as error:
        # A rule of the estate services refused the batch: nothing was written, and
        # running again would be refused again.
        await _finish(tenant_id, job_id, ImportStatus.FAILED, failure=error)
        return ImportStatus.FAILED.value
    except Exception:
        # Lost connection, worker shutdown...: the transaction rolled back; show it
        # and let procrastinate retry the whole job.
        await _update(
            tenant_id, job_id, status=ImportStatus.QUEUED.value, failure_code="interrupted"
        )
        raise
    log.info(
        "import.done",
        job_id=str(job_id),
        kind=kind.value,
        rows=len(checked.rows),
        created=created,
        updated=updated,
        unchanged=unchanged,
    )
    return ImportStatus.DONE.value


async def _update(tenant_id: uuid.UUID, job_id: uuid.UUID, **values: Any) -> None:
    async with unit_of_work(tenant_id) as session:
        await session.execute(update(ImportJob).where(ImportJob.id == job_id).values(**values))


async def _finish(
    tenant_id: uuid.UUID,
    job_id: uuid.UUID,
    status: ImportStatus,
    *,
    failure: DomainError | None = None,
) -> None:
    values: dict[str, Any] = {"status": status.value, "finished_at": func.now()}
    if failure is not None:
        values["failure_code"] = failure.instance_code
        values["failure"] = {"msgid": failure.message, "params": _json_params(failure.params)}
    await _update(tenant_id, job_id, **values)


def assert_tenant(session: AsyncSession, actor: Actor) -> None:
    if current_tenant(session) != actor.tenant_id:
        raise NotFound()
