"""audit rows carry the community of their target, for community-scoped reading

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("community_id", sa.Uuid(), nullable=True))
    op.create_index(
        "ix_audit_log_tenant_id_community_id_id",
        "audit_log",
        ["tenant_id", "community_id", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_audit_log_tenant_id_community_id_id", table_name="audit_log")
    op.drop_column("audit_log", "community_id")
