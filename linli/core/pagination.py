"""Cursor pagination: stable under inserts, no OFFSET scans.

Lists are ordered by UUIDv7 id (creation order); the cursor is the last id of
the page, opaque to clients.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Iterable
from typing import Annotated, Any, Generic, Self, TypeVar, get_args

import orjson
from fastapi import Query, Response
from pydantic import BaseModel
from sqlalchemy import Select

from linli.core.errors import FieldError, ValidationFailed

T = TypeVar("T")

MAX_LIMIT = 200


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None

    @classmethod
    def of(cls, rows: Iterable[Any], cursor: str | None) -> Self:
        """``Page[X].of(rows, cursor)``: each row read into X (from attributes or a mapping)."""
        (item_type,) = get_args(cls.model_fields["items"].annotation)
        return cls(items=[item_type.model_validate(row) for row in rows], next_cursor=cursor)


class PageParams(BaseModel):
    cursor: str | None = None
    limit: int = 50

    def after_id(self) -> uuid.UUID | None:
        if not self.cursor:
            return None
        try:
            raw = base64.urlsafe_b64decode(self.cursor + "=" * (-len(self.cursor) % 4))
            return uuid.UUID(bytes=raw)
        except (ValueError, binascii.Error) as exc:
            raise ValidationFailed(
                errors=[FieldError("cursor", "The cursor is not valid.", "invalid_cursor")]
            ) from exc


async def page_params(
    cursor: Annotated[
        str | None, Query(max_length=64, description="next_cursor of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> PageParams:
    return PageParams(cursor=cursor, limit=limit)


def json_page(records: list[Any], cursor: str | None) -> Response:
    """A page of read-path records (dicts with exactly the item schema's fields) as JSON.

    For lists served by :mod:`linli.db.reads`: the records already have the shape
    of the documented item schema (a test compares both), so no schema pass runs.
    """
    return Response(
        orjson.dumps({"items": records, "next_cursor": cursor}, option=orjson.OPT_UTC_Z),
        media_type="application/json",
    )


def encode_cursor(last_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(last_id.bytes).decode().rstrip("=")


def paginate_statement(statement: Select[Any], id_column: Any, params: PageParams) -> Select[Any]:
    """Add keyset filter, order and limit (+1 row to know whether a next page exists)."""
    after = params.after_id()
    if after is not None:
        statement = statement.where(id_column > after)
    return statement.order_by(id_column).limit(params.limit + 1)


def make_page(
    rows: list[Any], params: PageParams, *, id_of: Any = lambda row: row.id
) -> tuple[list[Any], str | None]:
    if len(rows) > params.limit:
        rows = rows[: params.limit]
        return rows, encode_cursor(id_of(rows[-1]))
    return rows, None
