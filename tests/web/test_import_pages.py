"""The console's import and export page, through cookies and forms as a browser sends them."""

from __future__ import annotations

import io
import re
import uuid

import httpx
from openpyxl import load_workbook
from sqlalchemy import text

from linli.auth.permissions import Role
from linli.db.engine import unit_of_work
from linli.imports import service
from tests.factories import PASSWORD, make_company, make_staff
from tests.imports.helpers import HOUSE_HEADER, count_houses, house_rows, xlsx
from tests.web.pageutil import csrf_of, staff_sign_in, text_of

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def bad_house_file() -> bytes:
    # Row 4 (Excel numbering: header is row 1) has an area that is not a number.
    return xlsx(
        [HOUSE_HEADER, *house_rows("C01", 2), ["C01", "1", "1", "999", 3, "abc", None, "住宅", ""]]
    )


async def _sign_in_and_open(web: httpx.AsyncClient, slug: str, login: str) -> httpx.Response:
    signed_in = await staff_sign_in(web, company=slug, login=login, password=PASSWORD)
    assert signed_in.status_code == 303, signed_in.text
    return await web.get("/console/imports")


def upload(
    page: httpx.Response, data: bytes, *, action: str = "dry_run", mode: str = "all_or_nothing"
) -> dict[str, object]:
    return {
        "data": {"csrf_token": csrf_of(page), "kind": "houses", "mode": mode, "action": action},
        "files": {"file": ("houses.xlsx", data, XLSX_TYPE)},
    }


async def test_dry_run_shows_row_errors_and_writes_nothing(web: httpx.AsyncClient) -> None:
    company = await make_company()
    page = await _sign_in_and_open(web, company.slug, "admin")
    assert page.status_code == 200, page.text
    assert "数据导入" in text_of(page) and "数据导出" in text_of(page)
    assert 'href="/console/imports" aria-current="page"' in page.text  # the nav item

    report = await web.post("/console/imports", **upload(page, bad_house_file()))  # type: ignore[arg-type]
    assert report.status_code == 200, report.text
    table = report.text.split('data-testid="row-errors"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr>\s*<td>(\d+)</td>\s*<td>([^<]*)</td>\s*<td>([^<]*)</td>", table)
    assert rows == [("4", "建筑面积", "“abc”不是数字。")], rows
    assert re.search(r'data-testid="total-rows">3<', report.text)
    assert re.search(r'data-testid="valid-rows">2<', report.text)
    assert re.search(r'data-testid="error-rows">1<', report.text)
    assert await count_houses(company.id) == 0
    async with unit_of_work(company.id) as session:
        assert (await session.execute(text("SELECT count(*) FROM import_jobs"))).scalar_one() == 0
        assert (await session.execute(text("SELECT count(*) FROM import_files"))).scalar_one() == 0


async def test_import_skipping_bad_rows_runs_as_a_job_with_progress(
    web: httpx.AsyncClient,
) -> None:
    company = await make_company()
    page = await _sign_in_and_open(web, company.slug, "admin")
    started = await web.post(
        "/console/imports",
        **upload(page, bad_house_file(), action="import", mode="skip_bad_rows"),  # type: ignore[arg-type]
    )
    assert started.status_code == 303, started.text
    location = started.headers["location"]
    found = re.fullmatch(r"/console/imports/jobs/([0-9a-f-]{36})", location)
    assert found, location
    job_id = uuid.UUID(found.group(1))

    queued = (await web.get(f"{location}/progress")).json()
    assert queued["status"] == "queued" and queued["finished"] is False
    job_page = await web.get(location)
    assert job_page.status_code == 200 and "data-progress-url" in job_page.text

    assert await service.run_job(company.id, job_id) == "done"
    done = (await web.get(f"{location}/progress")).json()
    assert done["finished"] is True and done["progress"] == 1.0
    assert (done["created_count"], done["error_rows"]) == (2, 1)
    assert await count_houses(company.id) == 2
    finished = await web.get(location)
    assert re.search(r'data-testid="created-count"[^>]*>2<', finished.text)
    assert "“abc”不是数字。" in text_of(finished)


async def test_front_desk_without_imports_run_is_refused(web: httpx.AsyncClient) -> None:
    company = await make_company()
    await make_staff(company, roles=(Role.FRONT_DESK,), username="desk1")
    page = await _sign_in_and_open(web, company.slug, "desk1")
    assert page.status_code == 403
    dashboard = await web.get("/console")
    assert 'href="/console/imports"' not in dashboard.text  # no nav item either
    form = {"csrf_token": csrf_of(dashboard), "kind": "houses", "action": "dry_run"}
    files = {"file": ("houses.xlsx", bad_house_file(), XLSX_TYPE)}
    assert (await web.post("/console/imports", data=form, files=files)).status_code == 403
    assert (await web.get("/console/exports/houses.xlsx")).status_code == 403
    assert (await web.get("/console/imports/templates/houses.xlsx")).status_code == 403


async def test_upload_without_csrf_token_is_refused(web: httpx.AsyncClient) -> None:
    company = await make_company()
    page = await _sign_in_and_open(web, company.slug, "admin")
    assert page.status_code == 200
    form = {"kind": "houses", "action": "import", "mode": "skip_bad_rows"}
    files = {"file": ("houses.xlsx", bad_house_file(), XLSX_TYPE)}
    refused = await web.post("/console/imports", data=form, files=files)
    assert refused.status_code == 403
    forged = await web.post("/console/imports", data=form | {"csrf_token": "forged"}, files=files)
    assert forged.status_code == 403
    async with unit_of_work(company.id) as session:
        assert (await session.execute(text("SELECT count(*) FROM import_jobs"))).scalar_one() == 0


async def test_a_file_that_is_not_a_spreadsheet_is_explained_on_the_page(
    web: httpx.AsyncClient,
) -> None:
    company = await make_company()
    page = await _sign_in_and_open(web, company.slug, "admin")
    refused = await web.post(
        "/console/imports",
        **upload(page, b"%PDF-1.7 not a sheet", action="import"),  # type: ignore[arg-type]
    )
    assert refused.status_code in (400, 415, 422), refused.text
    assert refused.headers["content-type"].startswith("text/html")
    assert 'role="alert"' in refused.text
    async with unit_of_work(company.id) as session:
        assert (await session.execute(text("SELECT count(*) FROM import_files"))).scalar_one() == 0


async def test_export_and_template_download_as_xlsx(web: httpx.AsyncClient) -> None:
    company = await make_company()
    page = await _sign_in_and_open(web, company.slug, "admin")
    started = await web.post(
        "/console/imports",
        **upload(page, xlsx([HOUSE_HEADER, *house_rows("C01", 3)]), action="import"),  # type: ignore[arg-type]
    )
    job_id = uuid.UUID(started.headers["location"].rsplit("/", 1)[1])
    assert await service.run_job(company.id, job_id) == "done"

    exported = await web.get("/console/exports/houses.xlsx")
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"] == XLSX_TYPE
    assert "attachment" in exported.headers["content-disposition"]
    sheet = load_workbook(io.BytesIO(exported.content), read_only=True).worksheets[0]
    values = [row for row in sheet.iter_rows(values_only=True)]
    assert len(values) == 4  # header + 3 houses
    assert sorted(str(r[3]) for r in values[1:]) == ["101", "102", "103"]

    template = await web.get("/console/imports/templates/residents.xlsx")
    assert template.status_code == 200
    assert template.headers["content-type"] == XLSX_TYPE
    load_workbook(io.BytesIO(template.content))  # a real workbook


async def test_signed_out_progress_is_refused(web: httpx.AsyncClient) -> None:
    response = await web.get(f"/console/imports/jobs/{uuid.uuid4()}/progress")
    assert response.status_code in (303, 401)
