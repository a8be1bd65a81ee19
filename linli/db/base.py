"""Declarative base and the shape every tenant-owned table shares.

A tenant table has ``tenant_id`` first in its primary key, and its foreign keys
to other tenant tables are composite ``(tenant_id, x_id)``: the database itself
refuses a row that points into another company, and ``tenant_id`` is the Citus
distribution column when a large installation scales out.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, ClassVar

from sqlalchemy import DateTime, ForeignKeyConstraint, MetaData, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from linli.core.ids import new_id

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dt.datetime: DateTime(timezone=True)}


class Timestamped:
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class TenantOwned(Timestamped):
    """Mixin for tables owned by one property company (tenant)."""

    tenant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)


class GlobalRow(Timestamped):
    """Mixin for platform tables that belong to no single tenant."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)


def tenant_fk(columns: list[str], target: str, *, ondelete: str | None = None) -> Any:
    """Composite foreign key ``(tenant_id, *columns) -> target(tenant_id, id)``."""
    return ForeignKeyConstraint(
        ["tenant_id", *columns],
        [f"{target}.tenant_id", f"{target}.id"],
        ondelete=ondelete,
    )
