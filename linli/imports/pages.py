"""Console pages of bulk import (数据导入) and export (数据导出).

Thin like the JSON API next door: the upload goes to the same import service
(dry run, or a stored file and a queued job), the job page polls a small
cookie-authenticated JSON route, and exports stream from the export service.
Every route declares its permission, as console pages do.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, Response, StreamingResponse

from linli.auth.actor import Actor
from linli.auth.deps import DeclaredRoute
from linli.auth.permissions import Permission
from linli.core.errors import DomainError, FieldError, ValidationFailed
from linli.imports import export, service, templates
from linli.imports.api import XLSX, job_out, parse_mapping, read_upload
from linli.imports.kinds import ImportKind
from linli.imports.models import ImportMode, ImportStatus
from linli.imports.schemas import render_errors
from linli.web import nav
from linli.web.nav import N_
from linli.web.pages import StaffDb, console_shell
from linli.web.session import ConsoleCsrf, StaffPage, describe
from linli.web.templating import redirect, render

router = APIRouter(route_class=DeclaredRoute, include_in_schema=False)

nav.register(
    nav.NavItem(
        "imports", N_("Import and export"), "/console/imports", Permission.IMPORTS_RUN, "list", 85
    )
)

PAGE_PATH = "/console/imports"

Importer = Annotated[Actor, Depends(StaffPage(Permission.IMPORTS_RUN))]
Exporter = Annotated[Actor, Depends(StaffPage(Permission.EXPORTS_RUN))]

KIND_LABELS = {
    ImportKind.HOUSES: N_("Houses"),
    ImportKind.RESIDENTS: N_("Residents with houses"),
    ImportKind.VEHICLES: N_("Vehicles"),
    ImportKind.STAFF: N_("Staff records"),
    ImportKind.PARKING: N_("Parking areas and spaces"),
    ImportKind.FACILITIES: N_("Common facilities"),
}
MODE_LABELS = {
    ImportMode.ALL_OR_NOTHING: N_("All or nothing: import only if every row is valid"),
    ImportMode.SKIP_BAD_ROWS: N_("Skip bad rows: import the valid rows"),
}
STATUS_LABELS = {
    ImportStatus.QUEUED: N_("Queued"),
    ImportStatus.RUNNING: N_("Running"),
    ImportStatus.DONE: N_("Done"),
    ImportStatus.REJECTED: N_("Rejected: nothing was written"),
    ImportStatus.FAILED: N_("Failed: nothing was written"),
}
TERMINAL = frozenset({ImportStatus.DONE, ImportStatus.REJECTED, ImportStatus.FAILED})


def read_mapping(raw: str) -> dict[str, str | None]:
    """Column mapping typed in the page: ``file header = field`` per line, or the API's JSON.

    An empty right-hand side means "ignore this column", as ``null`` does in JSON.
    """
    text = raw.strip()
    if not text or text.startswith("{"):
        return parse_mapping(text or None)
    mapping: dict[str, str | None] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        header, sep, target = line.partition("=")
        if not sep or not header.strip():
            raise ValidationFailed(
                errors=[
                    FieldError(
                        "mapping",
                        N_("Write one column per line, like 房间号 = house_no."),
                        code="invalid_mapping",
                    )
                ]
            )
        mapping[header.strip()] = target.strip() or None
    return mapping


async def _page(
    request: Request,
    session: StaffDb,
    actor: Actor,
    *,
    kind: ImportKind = ImportKind.HOUSES,
    mode: ImportMode = ImportMode.ALL_OR_NOTHING,
    mapping: str = "",
    report: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    shell = await console_shell(request, session, actor)
    return render(
        request,
        "imports/index.html",
        shell
        | {
            "kinds": KIND_LABELS,
            "modes": MODE_LABELS,
            "kind": kind,
            "mode": mode,
            "mapping": mapping,
            "report": report,
            "error": error,
            "may_export": actor.can(Permission.EXPORTS_RUN),
            "limit_mb": service.file_limit() // (1024 * 1024),
        },
        status_code=status_code,
    )


@router.get(PAGE_PATH, name="console.imports")
async def imports_page(request: Request, actor: Importer, session: StaffDb) -> Response:
    return await _page(request, session, actor)


@router.post(PAGE_PATH, dependencies=[ConsoleCsrf])
async def upload(
    request: Request,
    actor: Importer,
    session: StaffDb,
    file: Annotated[UploadFile, File()],
    kind: Annotated[ImportKind, Form()],
    mode: Annotated[ImportMode, Form()] = ImportMode.ALL_OR_NOTHING,
    mapping: Annotated[str, Form(max_length=4000)] = "",
    action: Annotated[str, Form(max_length=20)] = "dry_run",
) -> Response:
    name = file.filename or "upload"
    try:
        data = await read_upload(file)
        columns = read_mapping(mapping)
        # A savepoint: a refusal half-way through start_import must leave nothing behind
        # although this page's transaction commits (it renders the refusal).
        async with session.begin_nested():
            if action == "import":
                job = await service.start_import(
                    session, actor, kind=kind, mode=mode, data=data, file_name=name, mapping=columns
                )
                return redirect(request, f"{PAGE_PATH}/jobs/{job.id}")
            checked = await service.dry_run(
                session, actor, kind=kind, data=data, file_name=name, mapping=columns
            )
    except DomainError as exc:
        # A refused file (too large, not a spreadsheet, bad mapping) is shown on the form.
        return await _page(
            request,
            session,
            actor,
            kind=kind,
            mode=mode,
            mapping=mapping,
            error=describe(exc),
            status_code=exc.status,
        )
    issues = [i.as_json() for i in checked.issues[: service.MAX_REPORTED_ERRORS]]
    report = {
        "file_name": name,
        "total_rows": checked.total_rows,
        "valid_rows": len(checked.rows),
        "error_rows": checked.error_rows,
        "columns": checked.columns,
        "ignored_columns": checked.ignored_columns,
        "errors": render_errors(issues),
        "errors_truncated": len(checked.issues) > len(issues),
    }
    return await _page(
        request, session, actor, kind=kind, mode=mode, mapping=mapping, report=report
    )


@router.get(PAGE_PATH + "/jobs/{job_id}", name="console.imports.job")
async def job_page(
    request: Request, actor: Importer, session: StaffDb, job_id: uuid.UUID
) -> Response:
    job = job_out(await service.get_job(session, actor, job_id=job_id))
    shell = await console_shell(request, session, actor)
    return render(
        request,
        "imports/job.html",
        shell
        | {
            "job": job,
            "kind_label": KIND_LABELS.get(ImportKind(job.kind), job.kind),
            "mode_label": MODE_LABELS.get(ImportMode(job.mode), job.mode),
            "status_label": STATUS_LABELS.get(ImportStatus(job.status), job.status),
            "finished": ImportStatus(job.status) in TERMINAL,
        },
    )


@router.get(PAGE_PATH + "/jobs/{job_id}/progress", name="console.imports.progress")
async def job_progress(actor: Importer, session: StaffDb, job_id: uuid.UUID) -> Response:
    """The job as the API shows it, for the job page's script (the API wants a Bearer token)."""
    job = job_out(await service.get_job(session, actor, job_id=job_id))
    body = job.model_dump(mode="json", exclude={"errors"})
    body["finished"] = ImportStatus(job.status) in TERMINAL
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


def _attachment(filename: str) -> dict[str, str]:
    return {
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
        "Cache-Control": "no-store",
    }


@router.get(PAGE_PATH + "/templates/{kind}.xlsx", name="console.imports.template")
async def template_download(actor: Importer, kind: ImportKind) -> Response:
    filename = f"{templates.SHEET_TITLES[kind]}导入模板.xlsx"
    return Response(templates.build_template(kind), media_type=XLSX, headers=_attachment(filename))


@router.get("/console/exports/{kind}.xlsx", name="console.exports")
async def export_download(actor: Exporter, session: StaffDb, kind: ImportKind) -> Response:
    handle, _ = await export.write_export(session, actor, kind=kind)
    filename = f"{templates.SHEET_TITLES[kind]}.xlsx"
    return StreamingResponse(
        export.iter_file(handle), media_type=XLSX, headers=_attachment(filename)
    )
