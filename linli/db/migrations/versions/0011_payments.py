"""payments: merchant accounts, payment orders and lines, refunds, notifications,
reconciliation runs and exceptions

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from linli.db.rls import grant_app, protect_tenant_table

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_TABLES = (
    "payment_merchant_accounts",
    "payment_orders",
    "payment_order_lines",
    "payment_refunds",
    "payment_notifications",
    "payment_reconciliation_runs",
    "payment_exceptions",
)


def _keys() -> list[Any]:
    return [
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
    ]


def _pk(table: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint("tenant_id", "id", name=f"pk_{table}")


def _fk(table: str, columns: list[str], target: str, *, cascade: bool = False) -> Any:
    return sa.ForeignKeyConstraint(
        ["tenant_id", *columns],
        [f"{target}.tenant_id", f"{target}.id"],
        name=f"fk_{table}_tenant_id_{'_'.join(columns)}",
        ondelete="CASCADE" if cascade else None,
    )


def _cents(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.BigInteger(), nullable=nullable)


def _str(name: str, length: int) -> sa.Column[Any]:
    return sa.Column(name, sa.String(length), nullable=False)


def _at(name: str, *, nullable: bool = True) -> sa.Column[Any]:
    if nullable:
        return sa.Column(name, sa.DateTime(timezone=True), nullable=True)
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "payment_merchant_routes",
        sa.Column("id", sa.Uuid(), primary_key=True),
        _at("created_at", nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        _str("provider", 20),
    )
    grant_app("payment_merchant_routes")

    t = "payment_merchant_accounts"
    op.create_table(
        t,
        *_keys(),
        sa.Column("community_id", sa.Uuid(), nullable=False),
        _str("provider", 20),
        _str("merchant_id", 64),
        _str("name", 100),
        sa.Column("config_enc", sa.LargeBinary(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        _at("updated_at", nullable=False),
        _pk(t),
        _fk(t, ["community_id"], "communities"),
    )
    op.create_index(
        "uq_payment_merchant_accounts_active",
        t,
        ["tenant_id", "community_id", "provider"],
        unique=True,
        postgresql_where=sa.text("active"),
    )

    t = "payment_orders"
    op.create_table(
        t,
        *_keys(),
        sa.Column("community_id", sa.Uuid(), nullable=False),
        sa.Column("house_id", sa.Uuid(), nullable=False),
        sa.Column("merchant_account_id", sa.Uuid(), nullable=False),
        sa.Column("receipt_id", sa.Uuid(), nullable=False),
        _str("provider", 20),
        _str("channel", 16),
        _str("purpose", 16),
        _str("out_trade_no", 32),
        _str("description", 120),
        _cents("amount_cents"),
        _str("status", 20),
        _str("posting", 10),
        _at("expires_at", nullable=False),
        sa.Column("prepay", postgresql.JSONB(), nullable=False),
        _str("provider_trade_no", 64),
        _cents("paid_cents"),
        _cents("refunded_cents"),
        _at("paid_at"),
        _at("closed_at"),
        _str("failure", 200),
        _str("created_by_kind", 16),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        _at("updated_at", nullable=False),
        _pk(t),
        _fk(t, ["community_id"], "communities"),
        _fk(t, ["house_id"], "houses"),
        _fk(t, ["merchant_account_id"], "payment_merchant_accounts"),
        _fk(t, ["receipt_id"], "receipts"),
        sa.UniqueConstraint(
            "tenant_id",
            "merchant_account_id",
            "out_trade_no",
            name="uq_payment_orders_tenant_id_merchant_account_id_out_trade_no",
        ),
        sa.CheckConstraint("amount_cents > 0", name="ck_payment_orders_amount"),
        sa.CheckConstraint(
            "refunded_cents BETWEEN 0 AND paid_cents", name="ck_payment_orders_refunded"
        ),
    )
    op.create_index("ix_payment_orders_tenant_id_receipt_id", t, ["tenant_id", "receipt_id"])
    op.create_index(
        "ix_payment_orders_tenant_id_house_id_created_at",
        t,
        ["tenant_id", "house_id", "created_at"],
    )
    op.create_index(
        "ix_payment_orders_tenant_id_community_id_created_at",
        t,
        ["tenant_id", "community_id", "created_at"],
    )
    op.create_index(
        "ix_payment_orders_open",
        t,
        ["tenant_id", "expires_at"],
        postgresql_where=sa.text("status IN ('created', 'paying')"),
    )

    t = "payment_order_lines"
    op.create_table(
        t,
        *_keys(),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("bill_id", sa.Uuid(), nullable=True),
        _str("kind", 16),
        _cents("amount_cents"),
        _pk(t),
        _fk(t, ["order_id"], "payment_orders", cascade=True),
        _fk(t, ["bill_id"], "bills"),
        sa.CheckConstraint("amount_cents > 0", name="ck_payment_order_lines_amount"),
    )
    op.create_index("ix_payment_order_lines_tenant_id_order_id", t, ["tenant_id", "order_id"])

    t = "payment_refunds"
    op.create_table(
        t,
        *_keys(),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        _str("out_refund_no", 64),
        _cents("amount_cents"),
        _str("reason", 200),
        _str("status", 16),
        sa.Column("requested_by", sa.Uuid(), nullable=False),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        _at("decided_at"),
        _str("provider_refund_no", 64),
        _at("refunded_at"),
        _str("failure", 200),
        _pk(t),
        _fk(t, ["order_id"], "payment_orders"),
        sa.UniqueConstraint(
            "tenant_id", "out_refund_no", name="uq_payment_refunds_tenant_id_out_refund_no"
        ),
        sa.CheckConstraint("amount_cents > 0", name="ck_payment_refunds_amount"),
    )
    op.create_index("ix_payment_refunds_tenant_id_order_id", t, ["tenant_id", "order_id"])

    t = "payment_notifications"
    op.create_table(
        t,
        *_keys(),
        sa.Column("merchant_account_id", sa.Uuid(), nullable=False),
        _str("event_id", 80),
        _str("kind", 10),
        _str("out_trade_no", 64),
        _str("outcome", 30),
        _pk(t),
        _fk(t, ["merchant_account_id"], "payment_merchant_accounts"),
        sa.UniqueConstraint(
            "tenant_id",
            "merchant_account_id",
            "event_id",
            name="uq_payment_notifications_tenant_id_merchant_account_id_event_id",
        ),
    )

    t = "payment_reconciliation_runs"
    op.create_table(
        t,
        *_keys(),
        sa.Column("merchant_account_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        _str("status", 10),
        sa.Column("provider_count", sa.BigInteger(), nullable=False),
        _cents("provider_cents"),
        _cents("provider_refund_cents"),
        sa.Column("our_count", sa.BigInteger(), nullable=False),
        _cents("our_cents"),
        sa.Column("matched_count", sa.BigInteger(), nullable=False),
        sa.Column("exception_count", sa.BigInteger(), nullable=False),
        _str("failure", 200),
        _at("finished_at"),
        _pk(t),
        _fk(t, ["merchant_account_id"], "payment_merchant_accounts"),
    )
    op.create_index(
        "ix_payment_reconciliation_runs_account_day",
        t,
        ["tenant_id", "merchant_account_id", "day"],
    )

    t = "payment_exceptions"
    op.create_table(
        t,
        *_keys(),
        sa.Column("merchant_account_id", sa.Uuid(), nullable=False),
        _str("kind", 30),
        _str("out_trade_no", 64),
        _str("out_refund_no", 64),
        sa.Column("order_id", sa.Uuid(), nullable=True),
        sa.Column("run_id", sa.Uuid(), nullable=True),
        _cents("expected_cents", nullable=True),
        _cents("actual_cents", nullable=True),
        _str("detail", 400),
        _str("status", 10),
        sa.Column("resolved_by", sa.Uuid(), nullable=True),
        _at("resolved_at"),
        _str("resolution", 400),
        _pk(t),
        _fk(t, ["merchant_account_id"], "payment_merchant_accounts"),
        _fk(t, ["order_id"], "payment_orders"),
        _fk(t, ["run_id"], "payment_reconciliation_runs"),
    )
    op.create_index(
        "ix_payment_exceptions_tenant_id_status_created_at",
        t,
        ["tenant_id", "status", "created_at"],
    )
    op.create_index(
        "uq_payment_exceptions_open",
        t,
        ["tenant_id", "merchant_account_id", "kind", "out_trade_no", "out_refund_no"],
        unique=True,
        postgresql_where=sa.text("status = 'open'"),
    )
    for table in TENANT_TABLES:
        protect_tenant_table(table)


def downgrade() -> None:
    for table in reversed(TENANT_TABLES):
        op.drop_table(table)
    op.drop_table("payment_merchant_routes")
