"""billing: fee items, prices, meter readings, runs, bills, receipts, prepaid, ledger

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from linli.db.rls import protect_tenant_table

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_TABLES = (
    "fee_items",
    "fee_prices",
    "meter_readings",
    "billing_runs",
    "bills",
    "receipt_counters",
    "cashier_shifts",
    "receipts",
    "receipt_tenders",
    "allocations",
    "prepaid_accounts",
    "adjustments",
    "discount_rules",
    "journal_entries",
    "journal_lines",
)

# What was charged is fixed once a bill is issued; only settlement moves.
BILL_IMMUTABLE = """
CREATE FUNCTION billing_bill_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (NEW.amount_cents, NEW.house_id, NEW.fee_item_id, NEW.subject_id, NEW.period_start,
      NEW.period_end, NEW.due_on, NEW.quantity, NEW.community_id)
     IS DISTINCT FROM
     (OLD.amount_cents, OLD.house_id, OLD.fee_item_id, OLD.subject_id, OLD.period_start,
      OLD.period_end, OLD.due_on, OLD.quantity, OLD.community_id) THEN
    RAISE EXCEPTION 'bill % is issued and cannot change', OLD.id
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$
"""

# Double entry, checked by the database at commit whatever code wrote the lines.
ENTRY_BALANCED = """
CREATE FUNCTION billing_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE diff bigint;
BEGIN
  SELECT coalesce(sum(debit_cents), 0) - coalesce(sum(credit_cents), 0) INTO diff
  FROM journal_lines WHERE tenant_id = NEW.tenant_id AND entry_id = NEW.entry_id;
  IF diff <> 0 THEN
    RAISE EXCEPTION 'journal entry % does not balance (debits - credits = %)', NEW.entry_id, diff
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NULL;
END $$
"""

# The journal is append-only: a mistake is corrected by a reversing entry.
LINES_APPEND_ONLY = """
CREATE FUNCTION billing_journal_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the journal is append-only; post a reversing entry'
    USING ERRCODE = 'integrity_constraint_violation';
END $$
"""


def upgrade() -> None:
    op.create_table(
        "billing_runs",
        sa.Column("community_id", sa.Uuid(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("fee_item_ids", sa.ARRAY(sa.Uuid()), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("total_chunks", sa.Integer(), nullable=False),
        sa.Column("done_chunks", sa.Integer(), nullable=False),
        sa.Column("bill_count", sa.BigInteger(), nullable=False),
        sa.Column("total_cents", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("failure", sa.String(length=200), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reverted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reverted_by", sa.Uuid(), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "community_id"],
            ["communities.tenant_id", "communities.id"],
            name=op.f("fk_billing_runs_tenant_id_community_id"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_billing_runs")),
    )
    op.create_index(
        "uq_billing_runs_live",
        "billing_runs",
        ["tenant_id", "community_id", "period_start"],
        unique=True,
        postgresql_where=sa.text("status <> 'reverted'"),
    )
    op.create_table(
        "cashier_shifts",
        sa.Column("community_id", sa.Uuid(), nullable=False),
        sa.Column("cashier_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "opened_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("opening_float_cents", sa.BigInteger(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expected_cash_cents", sa.BigInteger(), nullable=True),
        sa.Column("counted_cash_cents", sa.BigInteger(), nullable=True),
        sa.Column("difference_cents", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.String(length=400), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("opening_float_cents >= 0", name=op.f("ck_cashier_shifts_float")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "community_id"],
            ["communities.tenant_id", "communities.id"],
            name=op.f("fk_cashier_shifts_tenant_id_community_id"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_cashier_shifts")),
    )
    op.create_index(
        "uq_cashier_shifts_open",
        "cashier_shifts",
        ["tenant_id", "cashier_id"],
        unique=True,
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_table(
        "fee_items",
        sa.Column("community_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("cycle", sa.String(length=16), nullable=False),
        sa.Column("bill_month", sa.Integer(), nullable=False),
        sa.Column("unit", sa.String(length=20), nullable=False),
        sa.Column("due_days", sa.Integer(), nullable=False),
        sa.Column("late_fee_grace_days", sa.Integer(), nullable=False),
        sa.Column("late_fee_daily_bp", sa.Integer(), nullable=False),
        sa.Column("late_fee_cap_pct", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("bill_month BETWEEN 1 AND 12", name=op.f("ck_fee_items_bill_month")),
        sa.CheckConstraint("due_days BETWEEN 0 AND 366", name=op.f("ck_fee_items_due_days")),
        sa.CheckConstraint(
            "late_fee_cap_pct BETWEEN 0 AND 100", name=op.f("ck_fee_items_late_fee_cap")
        ),
        sa.CheckConstraint(
            "late_fee_daily_bp BETWEEN 0 AND 1000", name=op.f("ck_fee_items_late_fee_rate")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "community_id"],
            ["communities.tenant_id", "communities.id"],
            name=op.f("fk_fee_items_tenant_id_community_id"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_fee_items")),
        sa.UniqueConstraint(
            "tenant_id",
            "community_id",
            "code",
            name=op.f("uq_fee_items_tenant_id_community_id_code"),
        ),
    )
    op.create_table(
        "journal_entries",
        sa.Column("community_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("source_id", sa.Uuid(), nullable=True),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column(
            "posted_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("memo", sa.String(length=200), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "community_id"],
            ["communities.tenant_id", "communities.id"],
            name=op.f("fk_journal_entries_tenant_id_community_id"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_journal_entries")),
    )
    op.create_index(
        op.f("ix_journal_entries_tenant_id_community_id_posted_at"),
        "journal_entries",
        ["tenant_id", "community_id", "posted_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_journal_entries_tenant_id_source_id"),
        "journal_entries",
        ["tenant_id", "source_id"],
        unique=False,
    )
    op.create_table(
        "receipt_counters",
        sa.Column("community_id", sa.Uuid(), nullable=False),
        sa.Column("last_no", sa.BigInteger(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "community_id"],
            ["communities.tenant_id", "communities.id"],
            name=op.f("fk_receipt_counters_tenant_id_community_id"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_receipt_counters")),
        sa.UniqueConstraint(
            "tenant_id", "community_id", name=op.f("uq_receipt_counters_tenant_id_community_id")
        ),
    )
    op.create_table(
        "discount_rules",
        sa.Column("fee_item_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("min_months", sa.Integer(), nullable=False),
        sa.Column("free_months", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "min_months >= 2 AND free_months >= 1 AND free_months < min_months",
            name=op.f("ck_discount_rules_months"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "fee_item_id"],
            ["fee_items.tenant_id", "fee_items.id"],
            name=op.f("fk_discount_rules_tenant_id_fee_item_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_discount_rules")),
    )
    op.create_table(
        "fee_prices",
        sa.Column("fee_item_id", sa.Uuid(), nullable=False),
        sa.Column("variant", sa.String(length=20), nullable=True),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("unit_price", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("tiers", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("unit_price >= 0", name=op.f("ck_fee_prices_unit_price")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "fee_item_id"],
            ["fee_items.tenant_id", "fee_items.id"],
            name=op.f("fk_fee_prices_tenant_id_fee_item_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_fee_prices")),
        sa.UniqueConstraint(
            "tenant_id",
            "fee_item_id",
            "variant",
            "effective_from",
            name=op.f("uq_fee_prices_tenant_id_fee_item_id_variant_effective_from"),
            postgresql_nulls_not_distinct=True,
        ),
    )
    op.create_table(
        "journal_lines",
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("community_id", sa.Uuid(), nullable=False),
        sa.Column("account", sa.String(length=20), nullable=False),
        sa.Column("fee_item_id", sa.Uuid(), nullable=True),
        sa.Column("house_id", sa.Uuid(), nullable=True),
        sa.Column("debit_cents", sa.BigInteger(), nullable=False),
        sa.Column("credit_cents", sa.BigInteger(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "debit_cents >= 0 AND credit_cents >= 0 AND (debit_cents = 0) <> (credit_cents = 0)",
            name=op.f("ck_journal_lines_one_side"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "community_id"],
            ["communities.tenant_id", "communities.id"],
            name=op.f("fk_journal_lines_tenant_id_community_id"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "entry_id"],
            ["journal_entries.tenant_id", "journal_entries.id"],
            name=op.f("fk_journal_lines_tenant_id_entry_id"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_journal_lines")),
    )
    op.create_index(
        op.f("ix_journal_lines_tenant_id_community_id_account"),
        "journal_lines",
        ["tenant_id", "community_id", "account"],
        unique=False,
    )
    op.create_index(
        op.f("ix_journal_lines_tenant_id_entry_id"),
        "journal_lines",
        ["tenant_id", "entry_id"],
        unique=False,
    )
    op.create_table(
        "bills",
        sa.Column("community_id", sa.Uuid(), nullable=False),
        sa.Column("building_id", sa.Uuid(), nullable=False),
        sa.Column("house_id", sa.Uuid(), nullable=False),
        sa.Column("fee_item_id", sa.Uuid(), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=True),
        sa.Column("late_fee_of", sa.Uuid(), nullable=True),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("settled_cents", sa.BigInteger(), nullable=False),
        sa.Column("late_fee_waived", sa.Boolean(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("amount_cents >= 0", name=op.f("ck_bills_amount")),
        sa.CheckConstraint(
            "settled_cents BETWEEN 0 AND amount_cents", name=op.f("ck_bills_settled")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "community_id"],
            ["communities.tenant_id", "communities.id"],
            name=op.f("fk_bills_tenant_id_community_id"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "fee_item_id"],
            ["fee_items.tenant_id", "fee_items.id"],
            name=op.f("fk_bills_tenant_id_fee_item_id"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "house_id"],
            ["houses.tenant_id", "houses.id"],
            name=op.f("fk_bills_tenant_id_house_id"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_bills")),
        sa.UniqueConstraint(
            "tenant_id",
            "fee_item_id",
            "subject_id",
            "period_start",
            name=op.f("uq_bills_tenant_id_fee_item_id_subject_id_period_start"),
        ),
    )
    op.create_index(
        "ix_bills_open",
        "bills",
        ["tenant_id", "community_id", "building_id", "house_id"],
        unique=False,
        postgresql_include=["due_on", "amount_cents", "settled_cents"],
        postgresql_where=sa.text("settled_cents < amount_cents"),
    )
    op.create_index(
        op.f("ix_bills_tenant_id_house_id_due_on"),
        "bills",
        ["tenant_id", "house_id", "due_on"],
        unique=False,
    )
    op.create_index(
        op.f("ix_bills_tenant_id_run_id"), "bills", ["tenant_id", "run_id"], unique=False
    )
    op.create_index(
        "ix_bills_late_fee_of",
        "bills",
        ["tenant_id", "late_fee_of"],
        unique=False,
        postgresql_where=sa.text("late_fee_of IS NOT NULL"),
    )
    op.create_table(
        "meter_readings",
        sa.Column("community_id", sa.Uuid(), nullable=False),
        sa.Column("house_id", sa.Uuid(), nullable=False),
        sa.Column("fee_item_id", sa.Uuid(), nullable=False),
        sa.Column("read_on", sa.Date(), nullable=False),
        sa.Column("reading", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("previous_reading", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("usage", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("flag", sa.String(length=16), nullable=False),
        sa.Column("entered_by", sa.Uuid(), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("reading >= 0", name=op.f("ck_meter_readings_reading")),
        sa.CheckConstraint("usage >= 0", name=op.f("ck_meter_readings_usage")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "community_id"],
            ["communities.tenant_id", "communities.id"],
            name=op.f("fk_meter_readings_tenant_id_community_id"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "fee_item_id"],
            ["fee_items.tenant_id", "fee_items.id"],
            name=op.f("fk_meter_readings_tenant_id_fee_item_id"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "house_id"],
            ["houses.tenant_id", "houses.id"],
            name=op.f("fk_meter_readings_tenant_id_house_id"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_meter_readings")),
        sa.UniqueConstraint(
            "tenant_id",
            "house_id",
            "fee_item_id",
            "read_on",
            name=op.f("uq_meter_readings_tenant_id_house_id_fee_item_id_read_on"),
        ),
    )
    op.create_table(
        "prepaid_accounts",
        sa.Column("community_id", sa.Uuid(), nullable=False),
        sa.Column("house_id", sa.Uuid(), nullable=False),
        sa.Column("balance_cents", sa.BigInteger(), nullable=False),
        sa.Column("auto_deduct", sa.Boolean(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("balance_cents >= 0", name=op.f("ck_prepaid_accounts_balance")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "community_id"],
            ["communities.tenant_id", "communities.id"],
            name=op.f("fk_prepaid_accounts_tenant_id_community_id"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "house_id"],
            ["houses.tenant_id", "houses.id"],
            name=op.f("fk_prepaid_accounts_tenant_id_house_id"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_prepaid_accounts")),
        sa.UniqueConstraint(
            "tenant_id", "house_id", name=op.f("uq_prepaid_accounts_tenant_id_house_id")
        ),
    )
    op.create_table(
        "receipts",
        sa.Column("community_id", sa.Uuid(), nullable=False),
        sa.Column("house_id", sa.Uuid(), nullable=False),
        sa.Column("receipt_no", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("allocated_cents", sa.BigInteger(), nullable=False),
        sa.Column("discount_cents", sa.BigInteger(), nullable=False),
        sa.Column("to_prepaid_cents", sa.BigInteger(), nullable=False),
        sa.Column("payer_name", sa.String(length=100), nullable=False),
        sa.Column("shift_id", sa.Uuid(), nullable=True),
        sa.Column("cashier_id", sa.Uuid(), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("voided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("voided_by", sa.Uuid(), nullable=True),
        sa.Column("void_reason", sa.String(length=400), nullable=False),
        sa.Column("allocation_plan", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("amount_cents > 0", name=op.f("ck_receipts_amount")),
        sa.CheckConstraint("to_prepaid_cents >= 0", name=op.f("ck_receipts_to_prepaid")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "community_id"],
            ["communities.tenant_id", "communities.id"],
            name=op.f("fk_receipts_tenant_id_community_id"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "house_id"],
            ["houses.tenant_id", "houses.id"],
            name=op.f("fk_receipts_tenant_id_house_id"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "shift_id"],
            ["cashier_shifts.tenant_id", "cashier_shifts.id"],
            name=op.f("fk_receipts_tenant_id_shift_id"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_receipts")),
        sa.UniqueConstraint(
            "tenant_id",
            "community_id",
            "receipt_no",
            name=op.f("uq_receipts_tenant_id_community_id_receipt_no"),
        ),
    )
    op.create_index(
        op.f("ix_receipts_tenant_id_house_id"), "receipts", ["tenant_id", "house_id"], unique=False
    )
    op.create_index(
        op.f("ix_receipts_tenant_id_shift_id"), "receipts", ["tenant_id", "shift_id"], unique=False
    )
    op.create_table(
        "adjustments",
        sa.Column("community_id", sa.Uuid(), nullable=False),
        sa.Column("bill_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=400), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.Uuid(), nullable=False),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("amount_cents >= 0", name=op.f("ck_adjustments_amount")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "bill_id"],
            ["bills.tenant_id", "bills.id"],
            name=op.f("fk_adjustments_tenant_id_bill_id"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "community_id"],
            ["communities.tenant_id", "communities.id"],
            name=op.f("fk_adjustments_tenant_id_community_id"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_adjustments")),
    )
    op.create_index(
        op.f("ix_adjustments_tenant_id_bill_id"),
        "adjustments",
        ["tenant_id", "bill_id"],
        unique=False,
    )
    op.create_table(
        "allocations",
        sa.Column("receipt_id", sa.Uuid(), nullable=False),
        sa.Column("bill_id", sa.Uuid(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("discount", sa.Boolean(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("amount_cents > 0", name=op.f("ck_allocations_amount")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "bill_id"],
            ["bills.tenant_id", "bills.id"],
            name=op.f("fk_allocations_tenant_id_bill_id"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "receipt_id"],
            ["receipts.tenant_id", "receipts.id"],
            name=op.f("fk_allocations_tenant_id_receipt_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_allocations")),
    )
    op.create_index(
        op.f("ix_allocations_tenant_id_bill_id"),
        "allocations",
        ["tenant_id", "bill_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_allocations_tenant_id_receipt_id"),
        "allocations",
        ["tenant_id", "receipt_id"],
        unique=False,
    )
    op.create_table(
        "receipt_tenders",
        sa.Column("receipt_id", sa.Uuid(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("confirmed", sa.Boolean(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("amount_cents > 0", name=op.f("ck_receipt_tenders_amount")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "receipt_id"],
            ["receipts.tenant_id", "receipts.id"],
            name=op.f("fk_receipt_tenders_tenant_id_receipt_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_receipt_tenders")),
    )
    op.create_index(
        op.f("ix_receipt_tenders_tenant_id_receipt_id"),
        "receipt_tenders",
        ["tenant_id", "receipt_id"],
        unique=False,
    )

    op.execute(BILL_IMMUTABLE)
    op.execute(
        "CREATE TRIGGER bills_immutable BEFORE UPDATE ON bills "
        "FOR EACH ROW EXECUTE FUNCTION billing_bill_immutable()"
    )
    op.execute(ENTRY_BALANCED)
    op.execute(
        "CREATE CONSTRAINT TRIGGER journal_lines_balanced AFTER INSERT ON journal_lines "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION billing_entry_balanced()"
    )
    op.execute(LINES_APPEND_ONLY)
    op.execute(
        "CREATE TRIGGER journal_lines_append_only BEFORE UPDATE OR DELETE ON journal_lines "
        "FOR EACH ROW EXECUTE FUNCTION billing_journal_append_only()"
    )
    for table in TENANT_TABLES:
        protect_tenant_table(table)


def downgrade() -> None:
    for table in (
        "receipt_tenders",
        "allocations",
        "adjustments",
        "receipts",
        "prepaid_accounts",
        "meter_readings",
        "bills",
        "journal_lines",
        "fee_prices",
        "discount_rules",
        "receipt_counters",
        "journal_entries",
        "fee_items",
        "cashier_shifts",
        "billing_runs",
    ):
        op.drop_table(table)
    op.execute("DROP FUNCTION IF EXISTS billing_bill_immutable()")
    op.execute("DROP FUNCTION IF EXISTS billing_entry_balanced()")
    op.execute("DROP FUNCTION IF EXISTS billing_journal_append_only()")
