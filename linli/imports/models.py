"""Import jobs (导入任务) and the files they read.

Uploaded bytes live in ``import_files`` in the tenant's own database rather
than under ``LINLI_HOME``: the job row and its file commit in one transaction
(a job never points at a missing file), a worker on another machine reads them
with no shared disk, RLS fences them per company like every other tenant row,
and backups carry them. They are kept apart from ``import_jobs`` so that polling
a job's progress never drags megabytes of TOAST along.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import BigInteger, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from linli.db.base import Base, TenantOwned, tenant_fk


class ImportStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"  # written (skip_bad_rows: the good rows)
    REJECTED = "rejected"  # all_or_nothing and some row is bad: nothing written
    FAILED = "failed"  # the file could not be read or the write failed: nothing written


class ImportMode(enum.StrEnum):
    ALL_OR_NOTHING = "all_or_nothing"
    SKIP_BAD_ROWS = "skip_bad_rows"


class ImportFile(TenantOwned, Base):
    """One uploaded spreadsheet, stored once per company by its SHA-256."""

    __tablename__ = "import_files"
    __table_args__ = (UniqueConstraint("tenant_id", "sha256"),)

    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)


class ImportJob(TenantOwned, Base):
    """A bulk import of one file: its choices, progress and error report."""

    __tablename__ = "import_jobs"
    __table_args__ = (tenant_fk(["file_id"], "import_files"),)

    kind: Mapped[str] = mapped_column(String(20))
    mode: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(16), default=ImportStatus.QUEUED.value)
    file_id: Mapped[uuid.UUID] = mapped_column()
    file_name: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    mapping: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # The uploader's roles and community grants when they uploaded: the job runs
    # later, in a worker, and must not reach further than its uploader could.
    actor_scope: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_by: Mapped[uuid.UUID] = mapped_column()
    total_rows: Mapped[int] = mapped_column(Integer, default=0)
    processed_rows: Mapped[int] = mapped_column(Integer, default=0)
    error_rows: Mapped[int] = mapped_column(Integer, default=0)
    created_count: Mapped[int] = mapped_column(Integer, default=0)
    updated_count: Mapped[int] = mapped_column(Integer, default=0)
    unchanged_count: Mapped[int] = mapped_column(Integer, default=0)
    # [{row, column, field, code, msgid, params}], capped; error_rows has the full count.
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    failure_code: Mapped[str | None] = mapped_column(String(60), default=None)
    failure: Mapped[dict[str, Any] | None] = mapped_column(JSONB, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    finished_at: Mapped[dt.datetime | None] = mapped_column(default=None)
