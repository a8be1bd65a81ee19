"""open platform: partners, apps, installations, OAuth, webhooks, access log

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from linli.db.rls import grant_app, protect_tenant_table

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GLOBAL_TABLES = (
    "platform_partners",
    "platform_developers",
    "platform_apps",
    "platform_app_credentials",
)
TENANT_TABLES = (
    "app_installations",
    "app_installation_communities",
    "app_authorization_codes",
    "app_tokens",
    "app_access_log",
    "webhook_deliveries",
)


def _created() -> sa.Column[Any]:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def _tenant_keys() -> list[sa.Column[Any]]:
    return [
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        _created(),
    ]


def _global_keys() -> list[sa.Column[Any]]:
    return [sa.Column("id", sa.Uuid(), primary_key=True), _created()]


def _tenant_fk(columns: list[str], target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id", *columns], [f"{target}.tenant_id", f"{target}.id"], ondelete="CASCADE"
    )


def _text_array(length: int) -> sa.ARRAY:  # type: ignore[type-arg]
    return sa.ARRAY(sa.String(length))


def upgrade() -> None:
    op.create_table(
        "platform_partners",
        *_global_keys(),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("contact_email", sa.String(200), nullable=False),
    )
    op.create_table(
        "platform_developers",
        *_global_keys(),
        sa.Column(
            "partner_id",
            sa.Uuid(),
            sa.ForeignKey("platform_partners.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("email", sa.String(200), nullable=False, unique=True),
        sa.Column("display_name", sa.String(100), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "platform_apps",
        *_global_keys(),
        sa.Column(
            "partner_id",
            sa.Uuid(),
            sa.ForeignKey("platform_partners.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("name", sa.String(60), nullable=False),
        sa.Column("description", sa.String(2000), nullable=False),
        sa.Column("icon", sa.LargeBinary(), nullable=True),
        sa.Column("icon_type", sa.String(20), nullable=False),
        sa.Column("requested_scopes", _text_array(40), nullable=False),
        sa.Column("events", _text_array(80), nullable=False),
        sa.Column("webhook_url", sa.String(500), nullable=False),
        sa.Column("webhook_secret_enc", sa.LargeBinary(), nullable=False),
        sa.Column("webhook_disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("entry_url", sa.String(500), nullable=False),
        sa.Column("console_url", sa.String(500), nullable=False),
        sa.Column("redirect_uris", _text_array(500), nullable=False),
        sa.Column("review_status", sa.String(10), nullable=False),
        sa.Column("review_note", sa.String(1000), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "platform_app_credentials",
        *_global_keys(),
        sa.Column(
            "app_id",
            sa.Uuid(),
            sa.ForeignKey("platform_apps.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("environment", sa.String(4), nullable=False),
        sa.Column("client_id", sa.String(60), nullable=False, unique=True),
        sa.Column("secret_hash", sa.LargeBinary(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )

    op.create_table(
        "app_installations",
        *_tenant_keys(),
        sa.Column(
            "app_id",
            sa.Uuid(),
            sa.ForeignKey("platform_apps.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("granted_scopes", _text_array(40), nullable=False),
        sa.Column("installed_by", sa.Uuid(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_app_installations"),
    )
    op.create_index(
        "uq_app_installations_active",
        "app_installations",
        ["tenant_id", "app_id"],
        unique=True,
        postgresql_where=sa.text("revoked_at IS NULL"),
    )
    op.create_index("ix_app_installations_app_id", "app_installations", ["app_id"])
    op.create_table(
        "app_installation_communities",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("installation_id", sa.Uuid(), nullable=False),
        sa.Column("community_id", sa.Uuid(), nullable=False),
        _tenant_fk(["installation_id"], "app_installations"),
        _tenant_fk(["community_id"], "communities"),
        sa.PrimaryKeyConstraint(
            "tenant_id", "installation_id", "community_id", name="pk_app_installation_communities"
        ),
    )
    op.create_table(
        "app_authorization_codes",
        *_tenant_keys(),
        sa.Column("installation_id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.String(60), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("redirect_uri", sa.String(500), nullable=False),
        sa.Column("scopes", _text_array(40), nullable=False),
        sa.Column("code_challenge", sa.String(128), nullable=False),
        sa.Column("nonce", sa.String(200), nullable=False),
        sa.Column("code_hash", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        _tenant_fk(["installation_id"], "app_installations"),
        sa.UniqueConstraint(
            "tenant_id", "code_hash", name="uq_app_authorization_codes_tenant_id_code_hash"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_app_authorization_codes"),
    )
    op.create_table(
        "app_tokens",
        *_tenant_keys(),
        sa.Column("installation_id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.String(60), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=True),
        sa.Column("scopes", _text_array(40), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        _tenant_fk(["installation_id"], "app_installations"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_app_tokens"),
    )
    op.create_index(
        "ix_app_tokens_tenant_id_installation_id", "app_tokens", ["tenant_id", "installation_id"]
    )
    op.create_table(
        "app_access_log",
        *_tenant_keys(),
        sa.Column("installation_id", sa.Uuid(), nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("endpoint", sa.String(200), nullable=False),
        sa.Column("resource", sa.String(60), nullable=False),
        sa.Column("community_id", sa.Uuid(), nullable=True),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        _tenant_fk(["installation_id"], "app_installations"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_app_access_log"),
    )
    op.create_index("ix_app_access_log_tenant_id_at", "app_access_log", ["tenant_id", "at"])
    op.create_index(
        "ix_app_access_log_tenant_id_installation_id_at",
        "app_access_log",
        ["tenant_id", "installation_id", "at"],
    )
    op.create_table(
        "webhook_deliveries",
        *_tenant_keys(),
        sa.Column("installation_id", sa.Uuid(), nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(80), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(300), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        _tenant_fk(["installation_id"], "app_installations"),
        sa.UniqueConstraint(
            "tenant_id",
            "installation_id",
            "event_id",
            name="uq_webhook_deliveries_tenant_id_installation_id_event_id",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_webhook_deliveries"),
    )
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["tenant_id", "installation_id", "status", "next_attempt_at"],
    )
    op.create_index(
        "ix_webhook_deliveries_app_id_created_at", "webhook_deliveries", ["app_id", "created_at"]
    )

    for table in GLOBAL_TABLES:
        grant_app(table)
    for table in TENANT_TABLES:
        protect_tenant_table(table)


def downgrade() -> None:
    for table in reversed(TENANT_TABLES):
        op.drop_table(table)
    for table in reversed(GLOBAL_TABLES):
        op.drop_table(table)
