"""API shapes of imports: the dry-run report and the job a console polls."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from linli.core.i18n import gettext


class RowErrorOut(BaseModel):
    """One problem in one cell: where (row as Excel numbers it, column header) and what."""

    row: int = Field(description="row number as shown in Excel (1 = first row)")
    column: str = Field(description="the column header as written in the file")
    field: str = Field(description="the linli field the column maps to")
    code: str = Field(description="stable error code, e.g. invalid_phone, unknown_community")
    message: str


def render_errors(errors: list[dict[str, Any]], locale: str | None = None) -> list[RowErrorOut]:
    """Stored errors keep the message id; they are translated for whoever reads them."""
    out = []
    for error in errors:
        stored_msgid: str = error["msgid"]  # a variable, so extraction does not take the key
        text = gettext(stored_msgid, locale)
        params = error.get("params") or {}
        if params:
            try:
                text = text.format(**params)
            except (KeyError, IndexError, ValueError):
                pass  # a translation with a broken placeholder still shows something
        out.append(
            RowErrorOut(
                row=error["row"],
                column=error["column"],
                field=error["field"],
                code=error["code"],
                message=text,
            )
        )
    return out


class DryRunReport(BaseModel):
    kind: str
    dry_run: bool = True
    file_name: str
    format: str
    encoding: str | None = None
    total_rows: int = Field(description="non-blank data rows in the file")
    valid_rows: int
    error_rows: int = Field(description="rows with at least one error")
    columns: dict[str, str] = Field(description="file header -> linli field, as recognised")
    ignored_columns: list[str] = Field(description="headers not imported")
    errors: list[RowErrorOut]
    errors_truncated: bool = False


class ImportJobOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    mode: str
    status: str
    file_name: str
    size: int
    sha256: str
    total_rows: int
    processed_rows: int
    error_rows: int
    created_count: int
    updated_count: int
    unchanged_count: int
    progress: float = Field(description="0..1, processed_rows / total_rows")
    errors: list[RowErrorOut] = []
    failure_code: str | None = None
    failure: str | None = None
    created_at: dt.datetime
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
