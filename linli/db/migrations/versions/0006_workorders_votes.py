"""service desk, part 1: work orders with SLA, owner votes and surveys

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from linli.db.rls import protect_tenant_table

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_TABLES = (
    "votes",
    "work_order_calendars",
    "work_order_categories",
    "work_order_holidays",
    "vote_matters",
    "work_order_coverage",
    "vote_ballots",
    "vote_electorate",
    "vote_proxies",
    "work_orders",
    "work_order_charges",
    "work_order_events",
    "work_order_photos",
)
ENUMS = (
    "vote_kind",
    "vote_status",
    "work_order_kind",
    "work_order_priority",
    "work_holiday_kind",
    "ballot_cast_by",
    "work_order_status",
    "work_order_source",
    "work_order_charge_kind",
)

# Ballots are append-only: the database itself refuses to change or remove one, so
# the hash chain is a second proof, not the only fence.
BALLOT_GUARD = """
CREATE OR REPLACE FUNCTION linli_refuse_ballot_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'ballots are append-only (% refused)', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$
"""


def upgrade() -> None:
    postgresql.ENUM("owners_assembly", "survey", name="vote_kind").create(
        op.get_bind(), checkfirst=True
    )
    postgresql.ENUM("draft", "open", "closed", name="vote_status").create(
        op.get_bind(), checkfirst=True
    )
    postgresql.ENUM("repair", "complaint", "inquiry", name="work_order_kind").create(
        op.get_bind(), checkfirst=True
    )
    postgresql.ENUM("urgent", "high", "normal", "low", name="work_order_priority").create(
        op.get_bind(), checkfirst=True
    )
    postgresql.ENUM("holiday", "workday", name="work_holiday_kind").create(
        op.get_bind(), checkfirst=True
    )
    postgresql.ENUM("owner", "proxy", "paper", name="ballot_cast_by").create(
        op.get_bind(), checkfirst=True
    )
    postgresql.ENUM(
        "new",
        "assigned",
        "in_progress",
        "finished",
        "closed",
        "cancelled",
        name="work_order_status",
    ).create(op.get_bind(), checkfirst=True)
    postgresql.ENUM("portal", "phone", "staff", name="work_order_source").create(
        op.get_bind(), checkfirst=True
    )
    postgresql.ENUM("part", "labour", name="work_order_charge_kind").create(
        op.get_bind(), checkfirst=True
    )
    op.create_table(
        "votes",
        sa.Column("community_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            postgresql.ENUM("owners_assembly", "survey", name="vote_kind", create_type=False),
            nullable=False,
        ),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column(
            "status",
            postgresql.ENUM("draft", "open", "closed", name="vote_status", create_type=False),
            nullable=False,
        ),
        sa.Column("opens_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("electorate_houses", sa.Integer(), nullable=False),
        sa.Column("electorate_area", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("ballot_count", sa.Integer(), nullable=False),
        sa.Column("chain_head", sa.LargeBinary(), nullable=False),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
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
            name=op.f("fk_votes_tenant_id_community_id"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_votes")),
    )
    op.create_index(
        op.f("ix_votes_tenant_id_community_id_status"),
        "votes",
        ["tenant_id", "community_id", "status"],
        unique=False,
    )
    op.create_table(
        "work_order_calendars",
        sa.Column("community_id", sa.Uuid(), nullable=False),
        sa.Column("weekly", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
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
            name=op.f("fk_work_order_calendars_tenant_id_community_id"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_work_order_calendars")),
        sa.UniqueConstraint(
            "tenant_id", "community_id", name=op.f("uq_work_order_calendars_tenant_id_community_id")
        ),
    )
    op.create_table(
        "work_order_categories",
        sa.Column("community_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "kind",
            postgresql.ENUM(
                "repair", "complaint", "inquiry", name="work_order_kind", create_type=False
            ),
            nullable=False,
        ),
        sa.Column(
            "default_priority",
            postgresql.ENUM(
                "urgent", "high", "normal", "low", name="work_order_priority", create_type=False
            ),
            nullable=False,
        ),
        sa.Column("sla", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
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
            name=op.f("fk_work_order_categories_tenant_id_community_id"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_work_order_categories")),
        sa.UniqueConstraint(
            "tenant_id",
            "community_id",
            "name",
            name=op.f("uq_work_order_categories_tenant_id_community_id_name"),
        ),
    )
    op.create_table(
        "work_order_holidays",
        sa.Column("community_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column(
            "kind",
            postgresql.ENUM("holiday", "workday", name="work_holiday_kind", create_type=False),
            nullable=False,
        ),
        sa.Column("name", sa.String(length=100), nullable=False),
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
            name=op.f("fk_work_order_holidays_tenant_id_community_id"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_work_order_holidays")),
        sa.UniqueConstraint(
            "tenant_id",
            "community_id",
            "day",
            name=op.f("uq_work_order_holidays_tenant_id_community_id_day"),
        ),
    )
    op.create_table(
        "vote_matters",
        sa.Column("vote_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("article_item", sa.SmallInteger(), nullable=True),
        sa.Column("options", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "vote_id"],
            ["votes.tenant_id", "votes.id"],
            name=op.f("fk_vote_matters_tenant_id_vote_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_vote_matters")),
        sa.UniqueConstraint(
            "tenant_id",
            "vote_id",
            "position",
            name=op.f("uq_vote_matters_tenant_id_vote_id_position"),
        ),
    )
    op.create_table(
        "work_order_coverage",
        sa.Column("technician_id", sa.Uuid(), nullable=False),
        sa.Column("community_id", sa.Uuid(), nullable=False),
        sa.Column("category_id", sa.Uuid(), nullable=True),
        sa.Column("building_id", sa.Uuid(), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "building_id"],
            ["buildings.tenant_id", "buildings.id"],
            name=op.f("fk_work_order_coverage_tenant_id_building_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "category_id"],
            ["work_order_categories.tenant_id", "work_order_categories.id"],
            name=op.f("fk_work_order_coverage_tenant_id_category_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "community_id"],
            ["communities.tenant_id", "communities.id"],
            name=op.f("fk_work_order_coverage_tenant_id_community_id"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "technician_id"],
            ["staff_users.tenant_id", "staff_users.id"],
            name=op.f("fk_work_order_coverage_tenant_id_technician_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_work_order_coverage")),
        sa.UniqueConstraint(
            "tenant_id",
            "technician_id",
            "community_id",
            "category_id",
            "building_id",
            name=op.f(
                "uq_work_order_coverage_tenant_id_technician_id_community_id_category_id_building_id"
            ),
            postgresql_nulls_not_distinct=True,
        ),
    )
    op.create_index(
        op.f("ix_work_order_coverage_tenant_id_community_id"),
        "work_order_coverage",
        ["tenant_id", "community_id"],
        unique=False,
    )
    op.create_table(
        "vote_ballots",
        sa.Column("vote_id", sa.Uuid(), nullable=False),
        sa.Column("house_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column(
            "cast_by",
            postgresql.ENUM("owner", "proxy", "paper", name="ballot_cast_by", create_type=False),
            nullable=False,
        ),
        sa.Column("account_id", sa.Uuid(), nullable=True),
        sa.Column("proxy_id", sa.Uuid(), nullable=True),
        sa.Column("recorded_by", sa.Uuid(), nullable=True),
        sa.Column("area", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("choices", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("cast_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("prev_hash", sa.LargeBinary(), nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "house_id"],
            ["houses.tenant_id", "houses.id"],
            name=op.f("fk_vote_ballots_tenant_id_house_id"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "vote_id"],
            ["votes.tenant_id", "votes.id"],
            name=op.f("fk_vote_ballots_tenant_id_vote_id"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_vote_ballots")),
        sa.UniqueConstraint(
            "tenant_id",
            "vote_id",
            "house_id",
            name=op.f("uq_vote_ballots_tenant_id_vote_id_house_id"),
        ),
        sa.UniqueConstraint(
            "tenant_id", "vote_id", "seq", name=op.f("uq_vote_ballots_tenant_id_vote_id_seq")
        ),
    )
    op.create_table(
        "vote_electorate",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("vote_id", sa.Uuid(), nullable=False),
        sa.Column("house_id", sa.Uuid(), nullable=False),
        sa.Column("area", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "house_id"],
            ["houses.tenant_id", "houses.id"],
            name=op.f("fk_vote_electorate_tenant_id_house_id"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "vote_id"],
            ["votes.tenant_id", "votes.id"],
            name=op.f("fk_vote_electorate_tenant_id_vote_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "vote_id", "house_id", name=op.f("pk_vote_electorate")
        ),
    )
    op.create_table(
        "vote_proxies",
        sa.Column("vote_id", sa.Uuid(), nullable=False),
        sa.Column("house_id", sa.Uuid(), nullable=False),
        sa.Column("proxy_account_id", sa.Uuid(), nullable=False),
        sa.Column("proxy_name", sa.String(length=100), nullable=False),
        sa.Column("document_ref", sa.String(length=100), nullable=False),
        sa.Column("recorded_by", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "house_id"],
            ["houses.tenant_id", "houses.id"],
            name=op.f("fk_vote_proxies_tenant_id_house_id"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "vote_id"],
            ["votes.tenant_id", "votes.id"],
            name=op.f("fk_vote_proxies_tenant_id_vote_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_vote_proxies")),
        sa.UniqueConstraint(
            "tenant_id",
            "vote_id",
            "house_id",
            name=op.f("uq_vote_proxies_tenant_id_vote_id_house_id"),
        ),
    )
    op.create_table(
        "work_orders",
        sa.Column("community_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column(
            "kind",
            postgresql.ENUM(
                "repair", "complaint", "inquiry", name="work_order_kind", create_type=False
            ),
            nullable=False,
        ),
        sa.Column("category_id", sa.Uuid(), nullable=False),
        sa.Column(
            "priority",
            postgresql.ENUM(
                "urgent", "high", "normal", "low", name="work_order_priority", create_type=False
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            postgresql.ENUM(
                "new",
                "assigned",
                "in_progress",
                "finished",
                "closed",
                "cancelled",
                name="work_order_status",
                create_type=False,
            ),
            nullable=False,
        ),
        sa.Column(
            "source",
            postgresql.ENUM(
                "portal", "phone", "staff", name="work_order_source", create_type=False
            ),
            nullable=False,
        ),
        sa.Column("house_id", sa.Uuid(), nullable=True),
        sa.Column("building_id", sa.Uuid(), nullable=True),
        sa.Column("location", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("preferred_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("preferred_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reporter_account_id", sa.Uuid(), nullable=True),
        sa.Column("reporter_name", sa.String(length=100), nullable=False),
        sa.Column("contact_phone_enc", sa.LargeBinary(), nullable=True),
        sa.Column("created_by_staff_id", sa.Uuid(), nullable=True),
        sa.Column("assignee_id", sa.Uuid(), nullable=True),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("response_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completion_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("response_warn_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completion_warn_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("response_warned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completion_warned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("response_minutes", sa.Integer(), nullable=True),
        sa.Column("completion_minutes", sa.Integer(), nullable=True),
        sa.Column("response_met", sa.Boolean(), nullable=True),
        sa.Column("completion_met", sa.Boolean(), nullable=True),
        sa.Column("rating", sa.SmallInteger(), nullable=True),
        sa.Column("rating_comment", sa.String(length=500), nullable=False),
        sa.Column("reopen_count", sa.SmallInteger(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "assignee_id"],
            ["staff_users.tenant_id", "staff_users.id"],
            name=op.f("fk_work_orders_tenant_id_assignee_id"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "building_id"],
            ["buildings.tenant_id", "buildings.id"],
            name=op.f("fk_work_orders_tenant_id_building_id"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "category_id"],
            ["work_order_categories.tenant_id", "work_order_categories.id"],
            name=op.f("fk_work_orders_tenant_id_category_id"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "community_id"],
            ["communities.tenant_id", "communities.id"],
            name=op.f("fk_work_orders_tenant_id_community_id"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "house_id"],
            ["houses.tenant_id", "houses.id"],
            name=op.f("fk_work_orders_tenant_id_house_id"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_work_orders")),
    )
    op.create_index(
        "ix_work_orders_open_due",
        "work_orders",
        ["tenant_id", "completion_due_at"],
        unique=False,
        postgresql_where="status IN ('new', 'assigned', 'in_progress')",
    )
    op.create_index(
        op.f("ix_work_orders_tenant_id_assignee_id_status"),
        "work_orders",
        ["tenant_id", "assignee_id", "status"],
        unique=False,
    )
    op.create_index(
        op.f("ix_work_orders_tenant_id_community_id_status"),
        "work_orders",
        ["tenant_id", "community_id", "status"],
        unique=False,
    )
    op.create_index(
        op.f("ix_work_orders_tenant_id_reporter_account_id"),
        "work_orders",
        ["tenant_id", "reporter_account_id"],
        unique=False,
    )
    op.create_table(
        "work_order_charges",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            postgresql.ENUM("part", "labour", name="work_order_charge_kind", create_type=False),
            nullable=False,
        ),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=10, scale=2), nullable=False),
        sa.Column("unit_price", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("recorded_by", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "order_id"],
            ["work_orders.tenant_id", "work_orders.id"],
            name=op.f("fk_work_order_charges_tenant_id_order_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_work_order_charges")),
    )
    op.create_index(
        op.f("ix_work_order_charges_tenant_id_order_id"),
        "work_order_charges",
        ["tenant_id", "order_id"],
        unique=False,
    )
    op.create_table(
        "work_order_events",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("actor_kind", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=False),
        sa.Column("actor_name", sa.String(length=100), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("detail", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "order_id"],
            ["work_orders.tenant_id", "work_orders.id"],
            name=op.f("fk_work_order_events_tenant_id_order_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_work_order_events")),
    )
    op.create_index(
        op.f("ix_work_order_events_tenant_id_order_id"),
        "work_order_events",
        ["tenant_id", "order_id"],
        unique=False,
    )
    op.create_table(
        "work_order_photos",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("content_type", sa.String(length=40), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_by", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "order_id"],
            ["work_orders.tenant_id", "work_orders.id"],
            name=op.f("fk_work_order_photos_tenant_id_order_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_work_order_photos")),
    )
    op.create_index(
        op.f("ix_work_order_photos_tenant_id_order_id"),
        "work_order_photos",
        ["tenant_id", "order_id"],
        unique=False,
    )
    for table in TENANT_TABLES:
        protect_tenant_table(table)
    op.execute(BALLOT_GUARD)
    op.execute(
        "CREATE TRIGGER vote_ballots_append_only BEFORE UPDATE OR DELETE ON vote_ballots "
        "FOR EACH ROW EXECUTE FUNCTION linli_refuse_ballot_change()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS vote_ballots_append_only ON vote_ballots")
    op.execute("DROP FUNCTION IF EXISTS linli_refuse_ballot_change()")
    op.drop_table("work_order_photos")
    op.drop_table("work_order_events")
    op.drop_table("work_order_charges")
    op.drop_table("work_orders")
    op.drop_table("vote_proxies")
    op.drop_table("vote_electorate")
    op.drop_table("vote_ballots")
    op.drop_table("work_order_coverage")
    op.drop_table("vote_matters")
    op.drop_table("work_order_holidays")
    op.drop_table("work_order_categories")
    op.drop_table("work_order_calendars")
    op.drop_table("votes")
    for name in ENUMS:
        op.execute(f"DROP TYPE IF EXISTS {name}")
