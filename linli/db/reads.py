"""The hot path: one round trip per read or small write, rows as plain dicts.

The console reads far more than it writes, and for a short list the unit of work
(ORM session, a round trip each for BEGIN, ``SET LOCAL``, the query and COMMIT,
greenlet hops in between) costs several times the query itself. A read here sends
the tenant setting (with the transaction made read-only) and the query to the
server together, run as one implicit transaction, and gets the rows back in one
trip, on a small pool of the same app role: the same RLS policies, the same
per-transaction tenant rule.

Reads go in one pipeline of the extended protocol: psycopg prepares a statement
after a few runs, and under row-level security planning is the larger part of a
short query's server time (a simple-protocol message of the same read took 67-77 µs
of server CPU against 33-40 µs prepared).

Writes go as one simple-protocol message, parameters bound on the client (psycopg's
``ClientCursor``: values quoted and typed by psycopg's adapters, never by string
formatting of ours), because one such message may hold several statements, each
with typed literals, that PostgreSQL runs as one implicit transaction.

Statements are SQLAlchemy Core, compiled once per shape (:class:`ReadQuery`);
their parameters are named bind parameters, array parameters for id sets
(``= ANY(:ids)``) so one compiled form serves any number of ids.

A small write on a hot path (a door opened, a work order's state moved) goes
through :func:`write_rows`: the tenant setting and several statements in one
implicit transaction that commits at its end or rolls back whole. Anything with
business objects to load and change goes through :func:`linli.db.engine.unit_of_work`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from psycopg import AsyncClientCursor, AsyncConnection, AsyncCursor, pq
from psycopg.rows import RowMaker
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql import ClauseElement

from linli.config import Settings, get_settings
from linli.db.dsn import app_dsn


class Record(dict[str, Any]):
    """A row as a dict that also answers ``row.name``, like the ORM rows pages expect.

    Being a dict, it serializes straight to JSON (orjson) with no schema pass.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def record_row(cursor: AsyncCursor[Any]) -> RowMaker[Record]:
    # Names straight from the result: ``cursor.description`` builds a Column object per
    # column on every call, a measurable share of a short read.
    result = cursor.pgresult
    names = [(result.fname(i) or b"").decode() for i in range(result.nfields)] if result else []

    def make(values: Any) -> Record:
        return Record(zip(names, values, strict=True))

    return make


_DIALECT = postgresql.dialect(paramstyle="pyformat")  # type: ignore[no-untyped-call]
_pool: AsyncConnectionPool[AsyncConnection[Any]] | None = None


class ReadQuery:
    """A Core statement compiled once to SQL with named ``%(name)s`` parameters."""

    def __init__(self, statement: ClauseElement) -> None:
        compiled = statement.compile(dialect=_DIALECT)
        self.sql: str = str(compiled)
        self.defaults: dict[str, Any] = dict(compiled.params)

    def params(self, values: Mapping[str, Any]) -> dict[str, Any]:
        unknown = set(values) - set(self.defaults)
        if unknown:
            raise KeyError(f"the statement has no parameters {sorted(unknown)}")
        return {**self.defaults, **values}


BIND_TENANT_READ_ONLY = (
    "SELECT set_config('linli.tenant_id', %(tenant)s, true),"
    " set_config('transaction_read_only', 'on', true)"
)
BIND_TENANT = "SELECT set_config('linli.tenant_id', %(tenant)s, true)"
# For records the outside world already holds (the device logged the opening itself):
# the commit does not wait for the WAL flush; a database crash in the next few
# hundred milliseconds may lose the row, never half of it (PostgreSQL docs, "Asynchronous
# Commit").
BIND_TENANT_ASYNC_COMMIT = (
    "SELECT set_config('linli.tenant_id', %(tenant)s, true),"
    " set_config('synchronous_commit', 'off', true)"
)


async def _configure(conn: AsyncConnection[Any]) -> None:
    await conn.set_autocommit(True)  # each message is its own implicit transaction


def read_pool(settings: Settings | None = None) -> AsyncConnectionPool[AsyncConnection[Any]]:
    """The process's read pool, opened lazily on first use (inside the event loop)."""
    global _pool
    if _pool is None:
        settings = settings or get_settings()
        _pool = AsyncConnectionPool(
            app_dsn(settings),
            # Few connections: a read holds one for a single round trip, and on a
            # small machine every extra backend is one more process to schedule.
            min_size=1,
            max_size=settings.database_read_pool_size,
            # UTC, so timestamps serialize as the schema path does ("...Z").
            kwargs={"application_name": "linli-read", "options": "-c TimeZone=UTC"},
            configure=_configure,
            open=False,
            name="linli-read",
        )
    return _pool


async def close_read_pool() -> None:
    global _pool
    if _pool is not None:
        await _pool.close()
    _pool = None


async def _run_script(
    conn: AsyncConnection[Any], parts: list[tuple[str, Mapping[str, Any]]]
) -> list[list[Record]]:
    """Send ``parts`` as one simple-query message; the rows of each part but the first.

    PostgreSQL runs a multi-statement message as one implicit transaction: the tenant
    setting of the first part (local to that transaction) holds for the others and is
    gone after them, and an error in any part rolls back all of them.
    """
    cursor = AsyncClientCursor(conn, row_factory=record_row)
    script = "; ".join(cursor.mogrify(sql, params) for sql, params in parts)
    await cursor.execute(script)
    results: list[list[Record]] = []
    for _ in parts[1:]:
        if not cursor.nextset():
            raise RuntimeError("the server returned fewer results than statements")
        result = cursor.pgresult
        has_rows = result is not None and result.status == pq.ExecStatus.TUPLES_OK
        results.append(await cursor.fetchall() if has_rows else [])
    return results


async def read_rows(
    tenant_id: uuid.UUID | None, query: ReadQuery, values: Mapping[str, Any]
) -> list[Record]:
    """Run ``query`` in a read-only transaction bound to ``tenant_id``; one round trip."""
    pool = read_pool()
    if pool.closed:
        await pool.open()
    params = query.params(values)
    async with pool.connection() as conn:
        async with conn.pipeline():
            # No BEGIN/COMMIT: in the extended protocol every statement up to the
            # next Sync runs in one implicit transaction, so the tenant setting
            # (local to that transaction) holds for the query and is gone after it.
            # Should it ever be missing, RLS shows no rows: this fails closed.
            await conn.execute(
                BIND_TENANT_READ_ONLY, {"tenant": str(tenant_id) if tenant_id else ""}
            )
            cursor = conn.cursor(row_factory=record_row)
            await cursor.execute(query.sql, params)
        # Leaving the pipeline sends the Sync and reads every result: one round trip.
        rows: list[Record] = await cursor.fetchall()
    return rows


async def write_rows(
    tenant_id: uuid.UUID,
    statements: list[tuple[ReadQuery, Mapping[str, Any]]],
    *,
    wait_for_flush: bool = True,
) -> list[list[Record]]:
    """Run ``statements`` in one transaction bound to ``tenant_id``; one round trip.

    Each statement's rows (its ``RETURNING``) come back in order. When one fails,
    the whole transaction rolls back and the error propagates. ``wait_for_flush=False``
    commits asynchronously: only for records whose loss in a database crash is
    acceptable.
    """
    pool = read_pool()
    if pool.closed:
        await pool.open()
    bind = BIND_TENANT if wait_for_flush else BIND_TENANT_ASYNC_COMMIT
    parts: list[tuple[str, Mapping[str, Any]]] = [(bind, {"tenant": str(tenant_id)})]
    parts.extend((query.sql, query.params(values)) for query, values in statements)
    async with pool.connection() as conn:
        return await _run_script(conn, parts)
