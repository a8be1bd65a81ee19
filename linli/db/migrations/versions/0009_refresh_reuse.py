"""refresh tokens remember their successor (encrypted) for the reuse interval

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("staff_refresh_tokens", "resident_refresh_tokens")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("successor_enc", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        op.drop_column(table, "successor_enc")
