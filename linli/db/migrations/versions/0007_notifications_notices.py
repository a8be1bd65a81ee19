"""service desk, part 2: notifications (messages, SMS, WeChat) and announcements

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from linli.db.rls import protect_tenant_table

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_TABLES = (
    "notifications",
    "notification_deliveries",
    "notification_preferences",
    "announcements",
    "announcement_targets",
    "announcement_reads",
)

# UUIDv7 made in SQL, for set-based inserts (one announcement fans out to 100,000 rows in
# one INSERT ... SELECT): 48 bits of Unix milliseconds, then random bits, with the version
# nibble turned from 4 into 7 (bits 52 and 53) and gen_random_uuid's RFC 4122 variant kept.
UUID7_FUNCTION = """
CREATE OR REPLACE FUNCTION linli_uuid7() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE
AS $$
  SELECT encode(
    set_bit(set_bit(
      overlay(uuid_send(gen_random_uuid())
              PLACING substring(
                int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
              FROM 1 FOR 6),
      52, 1), 53, 1),
    'hex')::uuid
$$
"""


def _tenant_fk(
    columns: list[str], target: str, ondelete: str | None = None
) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id", *columns],
        [f"{target}.tenant_id", f"{target}.id"],
        ondelete=ondelete,
    )


def _keys() -> list[sa.Column[Any]]:
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


def upgrade() -> None:
    op.execute(UUID7_FUNCTION)
    op.create_table(
        "notifications",
        *_keys(),
        sa.Column("resident_id", sa.Uuid(), nullable=True),
        sa.Column("staff_id", sa.Uuid(), nullable=True),
        sa.Column("community_id", sa.Uuid(), nullable=True),
        sa.Column("template", sa.String(60), nullable=False),
        sa.Column("params", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("link", sa.String(300), nullable=False),
        sa.Column("source_type", sa.String(40), nullable=False),
        sa.Column("source_id", sa.Uuid(), nullable=True),
        sa.Column("dedupe_key", sa.String(120), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(resident_id IS NULL) <> (staff_id IS NULL)",
            name=op.f("ck_notifications_one_recipient"),
        ),
        _tenant_fk(["resident_id"], "residents", "CASCADE"),
        _tenant_fk(["staff_id"], "staff_users", "CASCADE"),
        _tenant_fk(["community_id"], "communities"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_notifications")),
    )
    op.create_index(
        "uq_notifications_resident_dedupe",
        "notifications",
        ["tenant_id", "resident_id", "dedupe_key"],
        unique=True,
        postgresql_where=sa.text("resident_id IS NOT NULL"),
    )
    op.create_index(
        "uq_notifications_staff_dedupe",
        "notifications",
        ["tenant_id", "staff_id", "dedupe_key"],
        unique=True,
        postgresql_where=sa.text("staff_id IS NOT NULL"),
    )
    op.create_index(
        op.f("ix_notifications_tenant_id_dedupe_key"), "notifications", ["tenant_id", "dedupe_key"]
    )

    op.create_table(
        "notification_deliveries",
        *_keys(),
        sa.Column("notification_id", sa.Uuid(), nullable=False),
        sa.Column("recipient_key", sa.String(40), nullable=False),
        sa.Column("community_id", sa.Uuid(), nullable=True),
        sa.Column("template", sa.String(60), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.SmallInteger(), nullable=False),
        sa.Column("last_error", sa.String(200), nullable=False),
        sa.Column("provider_ref", sa.String(100), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        _tenant_fk(["notification_id"], "notifications", "CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_notification_deliveries")),
    )
    op.create_index(
        op.f("ix_notification_deliveries_tenant_id_notification_id_channel"),
        "notification_deliveries",
        ["tenant_id", "notification_id", "channel"],
        unique=True,
    )
    op.create_index(
        op.f("ix_notification_deliveries_tenant_id_created_at"),
        "notification_deliveries",
        ["tenant_id", "created_at"],
    )
    op.create_index(
        op.f("ix_notification_deliveries_tenant_id_recipient_key_template_channel_created_at"),
        "notification_deliveries",
        ["tenant_id", "recipient_key", "template", "channel", "created_at"],
    )

    op.create_table(
        "notification_preferences",
        *_keys(),
        sa.Column("resident_id", sa.Uuid(), nullable=False),
        sa.Column("locale", sa.String(10), nullable=False),
        sa.Column("opt_outs", postgresql.ARRAY(sa.String(80)), nullable=False),
        _tenant_fk(["resident_id"], "residents", "CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_notification_preferences")),
    )
    op.create_index(
        op.f("ix_notification_preferences_tenant_id_resident_id"),
        "notification_preferences",
        ["tenant_id", "resident_id"],
        unique=True,
    )

    op.create_table(
        "announcements",
        *_keys(),
        sa.Column("community_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(120), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("audience", sa.String(12), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("pinned", sa.Boolean(), nullable=False),
        sa.Column("channels", postgresql.ARRAY(sa.String(10)), nullable=False),
        sa.Column("publish_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reviewed_by", sa.Uuid(), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("review_note", sa.String(400), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recipients", sa.Integer(), nullable=False),
        _tenant_fk(["community_id"], "communities"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_announcements")),
    )
    op.create_index(
        op.f("ix_announcements_tenant_id_community_id_status"),
        "announcements",
        ["tenant_id", "community_id", "status"],
    )
    op.create_index(
        op.f("ix_announcements_tenant_id_status_publish_at"),
        "announcements",
        ["tenant_id", "status", "publish_at"],
    )

    op.create_table(
        "announcement_targets",
        *_keys(),
        sa.Column("announcement_id", sa.Uuid(), nullable=False),
        sa.Column("building_id", sa.Uuid(), nullable=True),
        sa.Column("house_id", sa.Uuid(), nullable=True),
        _tenant_fk(["announcement_id"], "announcements", "CASCADE"),
        _tenant_fk(["building_id"], "buildings", "CASCADE"),
        _tenant_fk(["house_id"], "houses", "CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_announcement_targets")),
        sa.UniqueConstraint(
            "tenant_id",
            "announcement_id",
            "building_id",
            "house_id",
            name=op.f("uq_announcement_targets_tenant_id_announcement_id_building_id_house_id"),
            postgresql_nulls_not_distinct=True,
        ),
    )

    op.create_table(
        "announcement_reads",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("announcement_id", sa.Uuid(), nullable=False),
        sa.Column("resident_id", sa.Uuid(), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
        _tenant_fk(["announcement_id"], "announcements", "CASCADE"),
        _tenant_fk(["resident_id"], "residents", "CASCADE"),
        sa.PrimaryKeyConstraint(
            "tenant_id", "announcement_id", "resident_id", name=op.f("pk_announcement_reads")
        ),
    )
    op.execute("GRANT EXECUTE ON FUNCTION linli_uuid7() TO linli_app")
    for table in TENANT_TABLES:
        protect_tenant_table(table)


def downgrade() -> None:
    for table in reversed(TENANT_TABLES):
        op.drop_table(table)
    op.execute("DROP FUNCTION IF EXISTS linli_uuid7()")
