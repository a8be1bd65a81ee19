"""Cross-cutting tables: audit log, outbox, idempotency keys."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import Index, String, func
from sqlalchemy.dialects.postgresql import INET, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from linli.db.base import Base, GlobalRow, TenantOwned, tenant_fk


class AuditEntry(TenantOwned, Base):
    """Who did what in a company: principal, action, target, when, request, IP."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index(None, "tenant_id", "created_at"),
        Index(None, "tenant_id", "community_id", "id"),
    )

    principal_kind: Mapped[str] = mapped_column(String(16))
    principal_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(80))
    target_type: Mapped[str] = mapped_column(String(60))
    target_id: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64), default=None)
    ip: Mapped[str | None] = mapped_column(INET, default=None)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # The community the target belongs to (None: company-wide, or not known), so a
    # community manager reads the trail of their communities and not the company's.
    community_id: Mapped[uuid.UUID | None] = mapped_column(default=None)


class PlatformAuditEntry(GlobalRow, Base):
    """Audit of actions outside any one company (operators, resident accounts)."""

    __tablename__ = "platform_audit_log"

    principal_kind: Mapped[str] = mapped_column(String(16))
    principal_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(80))
    target_type: Mapped[str] = mapped_column(String(60))
    target_id: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64), default=None)
    ip: Mapped[str | None] = mapped_column(INET, default=None)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class OutboxEvent(TenantOwned, Base):
    """An event written in the same transaction as the change it describes."""

    __tablename__ = "outbox_events"

    event_type: Mapped[str] = mapped_column(String(80))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    request_id: Mapped[str | None] = mapped_column(String(64), default=None)


class OutboxDelivery(Base):
    """That one consumer has handled one event; makes redelivery skip it."""

    __tablename__ = "outbox_deliveries"
    __table_args__ = (tenant_fk(["event_id"], "outbox_events", ondelete="CASCADE"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    consumer: Mapped[str] = mapped_column(String(40), primary_key=True)
    delivered_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class IdempotencyKey(Base):
    """A stored response, replayed when the same principal repeats an Idempotency-Key."""

    __tablename__ = "idempotency_keys"

    principal: Mapped[str] = mapped_column(String(120), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(default=None)
    response_body: Mapped[Any] = mapped_column(JSONB, default=None, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
