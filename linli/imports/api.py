"""Routes of bulk import and export. Thin: read the upload, call the service, shape."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Response, UploadFile
from fastapi.responses import StreamingResponse

from linli.auth.actor import Actor
from linli.auth.deps import Authorizer, DbSession, DeclaredRoute
from linli.auth.permissions import Permission
from linli.core.errors import FieldError, ValidationFailed
from linli.imports import export, service, templates
from linli.imports.kinds import ImportKind
from linli.imports.models import ImportJob, ImportMode
from linli.imports.schemas import DryRunReport, ImportJobOut, render_errors

router = APIRouter(prefix="/api/v1", route_class=DeclaredRoute, tags=["imports"])

Importer = Annotated[Actor, Depends(Authorizer(Permission.IMPORTS_RUN))]
Exporter = Annotated[Actor, Depends(Authorizer(Permission.EXPORTS_RUN))]

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_CHUNK = 1024 * 1024


async def read_upload(upload: UploadFile) -> bytes:
    """The upload's bytes, refusing it (before reading) when over the import limit.

    Starlette has already spooled the part to a temporary file; it is read once, here.
    """
    if upload.size is not None:
        service.check_size(upload.size)
    limit = service.file_limit()
    chunks: list[bytes] = []
    total = 0
    while chunk := await upload.read(_CHUNK):
        total += len(chunk)
        service.check_size(total if total <= limit else limit + 1)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_mapping(raw: str | None) -> dict[str, str | None]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in value.items()
    ):
        raise ValidationFailed(
            errors=[
                FieldError(
                    "mapping",
                    'Must be a JSON object like {"房间号": "house_no"}.',
                    code="invalid_json",
                )
            ]
        )
    return value


def job_out(job: ImportJob) -> ImportJobOut:
    failure = None
    if job.failure:
        failure = render_errors(
            [{"row": 0, "column": "", "field": "", "code": job.failure_code or "", **job.failure}]
        )[0].message
    total = job.total_rows
    progress = (
        1.0
        if job.status in ("done", "rejected")
        else (job.processed_rows / total if total else 0.0)
    )
    return ImportJobOut(
        id=job.id,
        kind=job.kind,
        mode=job.mode,
        status=job.status,
        file_name=job.file_name,
        size=job.size,
        sha256=job.sha256,
        total_rows=total,
        processed_rows=job.processed_rows,
        error_rows=job.error_rows,
        created_count=job.created_count,
        updated_count=job.updated_count,
        unchanged_count=job.unchanged_count,
        progress=round(min(progress, 1.0), 4),
        errors=render_errors(job.errors),
        failure_code=job.failure_code,
        failure=failure,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


@router.post(
    "/imports",
    response_model=DryRunReport | ImportJobOut,
    summary="Upload a spreadsheet: dry run (report only) or start an import job",
    responses={202: {"model": ImportJobOut, "description": "import job queued"}},
)
async def create_import(
    actor: Importer,
    session: DbSession,
    response: Response,
    file: Annotated[UploadFile, File(description=".xlsx or .csv (UTF-8 or GBK)")],
    kind: Annotated[ImportKind, Form()],
    mode: Annotated[ImportMode, Form()] = ImportMode.ALL_OR_NOTHING,
    dry_run: Annotated[bool, Form()] = True,
    mapping: Annotated[
        str | None, Form(description='JSON: {"file header": "field" | null}')
    ] = None,
) -> Any:
    data = await read_upload(file)
    columns = parse_mapping(mapping)
    name = file.filename or "upload"
    if dry_run:
        checked = await service.dry_run(
            session, actor, kind=kind, data=data, file_name=name, mapping=columns
        )
        issues = [i.as_json() for i in checked.issues[: service.MAX_REPORTED_ERRORS]]
        return DryRunReport(
            kind=kind.value,
            file_name=name,
            format=checked.format.value,
            encoding=checked.encoding,
            total_rows=checked.total_rows,
            valid_rows=len(checked.rows),
            error_rows=checked.error_rows,
            columns=checked.columns,
            ignored_columns=checked.ignored_columns,
            errors=render_errors(issues),
            errors_truncated=len(checked.issues) > len(issues),
        )
    job = await service.start_import(
        session, actor, kind=kind, mode=mode, data=data, file_name=name, mapping=columns
    )
    await session.refresh(job)
    response.status_code = 202
    response.headers["Location"] = f"/api/v1/imports/{job.id}"
    return job_out(job)


@router.get("/imports/templates/{kind}.xlsx", summary="Import template with Chinese headers")
async def download_template(actor: Importer, kind: ImportKind) -> Response:
    filename = f"{templates.SHEET_TITLES[kind]}导入模板.xlsx"
    return Response(
        templates.build_template(kind),
        media_type=XLSX,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"},
    )


@router.get(
    "/imports/{job_id}",
    response_model=ImportJobOut,
    summary="Progress and error report of an import",
)
async def get_import(actor: Importer, session: DbSession, job_id: uuid.UUID) -> ImportJobOut:
    return job_out(await service.get_job(session, actor, job_id=job_id))


@router.get(
    "/exports/{kind}.xlsx", summary="Export a list as .xlsx (same columns as the import template)"
)
async def export_list(actor: Exporter, session: DbSession, kind: ImportKind) -> StreamingResponse:
    handle, _ = await export.write_export(session, actor, kind=kind)
    filename = f"{templates.SHEET_TITLES[kind]}.xlsx"
    return StreamingResponse(
        export.iter_file(handle),
        media_type=XLSX,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"},
    )
