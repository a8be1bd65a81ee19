"""The company's record of every partner-app API call (数据访问记录), and what it shows.

Each call is noted in memory after its handler ran and written in batches (one
multi-row INSERT per company) by a background flusher, so logging costs the
call a list append. Refused calls (outside the scopes, another community,
another company, a revoked token) are logged like the others, with their status.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import Request, Response
from sqlalchemy import Date, cast, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from linli.auth.actor import Actor
from linli.core import lifecycle
from linli.core.errors import DomainError
from linli.core.ids import new_id
from linli.core.logging import get_logger
from linli.db.engine import unit_of_work
from linli.platform.models import AccessLogEntry, PartnerApp

log = get_logger(__name__)

FLUSH_SECONDS = 0.5
FLUSH_ROWS = 500
# An app is flagged on a day when it read more than this many times its usual daily
# records (the median of the previous 14 days), and at least ANOMALY_MIN_RECORDS.
ANOMALY_FACTOR = 5
ANOMALY_MIN_RECORDS = 100

_pending: list[dict[str, Any]] = []
_flusher: asyncio.Task[None] | None = None
_wake: asyncio.Event | None = None


def _resource(path: str) -> str:
    parts = [p for p in path.split("/") if p and not p.startswith("{") and p not in ("api", "v1")]
    return ".".join(parts[-2:])[:60] or "-"


def _records(response: Response | None) -> int:
    if response is None or not 200 <= response.status_code < 300:
        return 0
    body = getattr(response, "body", None)
    if not body or not response.media_type or "json" not in response.media_type:
        return 0
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return 0
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        return len(data["items"])
    if isinstance(data, list):
        return len(data)
    return 1


def _community(request: Request) -> uuid.UUID | None:
    raw = request.path_params.get("community_id") or request.query_params.get("community_id")
    try:
        return uuid.UUID(str(raw)) if raw else None
    except ValueError:
        return None


def observe(
    request: Request, actor: Actor, response: Response | None, exc: BaseException | None
) -> None:
    """Note one app call; called by the route wrapper of :mod:`linli.auth.deps`."""
    app_id = getattr(request.state, "linli_app_id", None)
    if response is not None:
        limits = getattr(request.state, "linli_ratelimit", None)
        if limits:
            response.headers.update(limits)
    if actor.tenant_id is None or app_id is None:
        return  # an unknown or revoked token: there is no installation to log against
    if exc is None:
        status = response.status_code if response is not None else 500
    else:
        status = exc.status if isinstance(exc, DomainError) else 500
    route = request.scope.get("route")
    path = getattr(route, "path", request.url.path)
    _pending.append(
        {
            "tenant_id": actor.tenant_id,
            "id": new_id(),
            "installation_id": actor.id,
            "app_id": app_id,
            "at": dt.datetime.now(dt.UTC),
            "method": request.method[:8],
            "endpoint": str(path)[:200],
            "resource": _resource(str(path)),
            "community_id": _community(request),
            "records": _records(response),
            "status": status,
        }
    )
    _ensure_flusher()
    if len(_pending) >= FLUSH_ROWS and _wake is not None:
        _wake.set()


def _ensure_flusher() -> None:
    global _flusher, _wake
    if _flusher is not None and not _flusher.done():
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    _wake = asyncio.Event()
    _flusher = loop.create_task(_flush_forever(), name="platform-access-log")


async def _flush_forever() -> None:
    assert _wake is not None
    while True:
        try:
            await asyncio.wait_for(_wake.wait(), FLUSH_SECONDS)
        except TimeoutError:
            pass
        _wake.clear()
        try:
            await flush()
        except Exception as exc:  # keep the rows for the next round rather than die
            log.warning("platform.access_log_flush_failed", error=type(exc).__name__)
        if not _pending:
            await asyncio.sleep(FLUSH_SECONDS)


async def flush() -> int:
    """Write every noted call, one INSERT per company. Returns the rows written."""
    if not _pending:
        return 0
    rows = _pending[:]
    del _pending[: len(rows)]
    by_tenant: dict[uuid.UUID, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_tenant[row["tenant_id"]].append(row)
    written = 0
    for tenant_id, batch in by_tenant.items():
        try:
            async with unit_of_work(tenant_id) as session:
                await session.execute(insert(AccessLogEntry), batch)
            written += len(batch)
        except Exception:
            _pending.extend(batch)
            raise
    return written


# --- what the company sees ---------------------------------------------------------------


@dataclass(frozen=True)
class DayRow:
    day: dt.date
    app_id: uuid.UUID
    app_name: str
    calls: int
    records: int
    refused: int
    anomaly: bool = False


async def daily(session: AsyncSession, actor: Actor, *, days: int = 30) -> list[DayRow]:
    """Calls, records read and refusals per app and day, with anomaly flags."""
    if actor.tenant_id is None:
        return []
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=days + 14)
    day = cast(func.timezone("Asia/Shanghai", AccessLogEntry.at), Date)
    rows = (
        await session.execute(
            select(
                day.label("day"),
                AccessLogEntry.app_id,
                PartnerApp.name,
                func.count(),
                func.coalesce(func.sum(AccessLogEntry.records), 0),
                func.count().filter(AccessLogEntry.status >= 400),
            )
            .join(PartnerApp, PartnerApp.id == AccessLogEntry.app_id)
            .where(AccessLogEntry.at >= since)
            .group_by(day, AccessLogEntry.app_id, PartnerApp.name)
            .order_by(day, PartnerApp.name)
        )
    ).all()
    history: dict[uuid.UUID, list[int]] = defaultdict(list)
    result: list[DayRow] = []
    cutoff = (dt.datetime.now(dt.UTC) - dt.timedelta(days=days)).date()
    for d, app_id, name, calls, records, refused in rows:
        past = history[app_id][-14:]
        usual = sorted(past)[len(past) // 2] if past else 0
        anomaly = (
            bool(past)
            and records >= ANOMALY_MIN_RECORDS
            and records > ANOMALY_FACTOR * max(usual, 1)
        )
        history[app_id].append(int(records))
        if d >= cutoff:
            result.append(DayRow(d, app_id, name, calls, int(records), refused, anomaly))
    return result


async def export_csv(session: AsyncSession, actor: Actor, *, days: int = 90) -> str:
    """Every logged call of the last ``days``, as CSV (the company's own copy)."""
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    rows = await session.execute(
        select(
            AccessLogEntry.at,
            PartnerApp.name,
            AccessLogEntry.app_id,
            AccessLogEntry.installation_id,
            AccessLogEntry.method,
            AccessLogEntry.endpoint,
            AccessLogEntry.resource,
            AccessLogEntry.community_id,
            AccessLogEntry.records,
            AccessLogEntry.status,
        )
        .join(PartnerApp, PartnerApp.id == AccessLogEntry.app_id)
        .where(AccessLogEntry.at >= since)
        .order_by(AccessLogEntry.at)
    )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "at",
            "app",
            "app_id",
            "installation_id",
            "method",
            "endpoint",
            "resource",
            "community_id",
            "records",
            "status",
        ]
    )
    for row in rows:
        writer.writerow(["" if v is None else str(v) for v in row])
    return out.getvalue()


async def recent(session: AsyncSession, actor: Actor, *, limit: int = 100) -> list[Any]:
    rows = await session.execute(
        select(AccessLogEntry, PartnerApp.name)
        .join(PartnerApp, PartnerApp.id == AccessLogEntry.app_id)
        .order_by(AccessLogEntry.at.desc())
        .limit(limit)
    )
    return list(rows.all())


# Calls noted in the last half second are written when the server stops, not lost.
lifecycle.on_shutdown("platform.access_log", flush)
