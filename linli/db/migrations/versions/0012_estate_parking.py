"""estate: archiving parking, facilities and vehicles; space holders and leases; residents
registered in a community before they have a house

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ARCHIVED = ("parking_areas", "parking_spaces", "facilities", "vehicles")


def upgrade() -> None:
    for table in ARCHIVED:
        op.add_column(table, sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("parking_spaces", sa.Column("resident_id", sa.Uuid(), nullable=True))
    op.add_column("parking_spaces", sa.Column("lease_start", sa.Date(), nullable=True))
    op.add_column("parking_spaces", sa.Column("lease_end", sa.Date(), nullable=True))
    op.create_foreign_key(
        "fk_parking_spaces_tenant_id_resident_id",
        "parking_spaces",
        "residents",
        ["tenant_id", "resident_id"],
        ["tenant_id", "id"],
    )
    op.create_index(
        "ix_parking_spaces_tenant_id_resident_id", "parking_spaces", ["tenant_id", "resident_id"]
    )
    op.add_column("residents", sa.Column("community_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        "fk_residents_tenant_id_community_id",
        "residents",
        "communities",
        ["tenant_id", "community_id"],
        ["tenant_id", "id"],
    )
    op.create_index(
        "ix_residents_tenant_id_community_id", "residents", ["tenant_id", "community_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_residents_tenant_id_community_id", table_name="residents")
    op.drop_constraint("fk_residents_tenant_id_community_id", "residents", type_="foreignkey")
    op.drop_column("residents", "community_id")
    op.drop_index("ix_parking_spaces_tenant_id_resident_id", table_name="parking_spaces")
    op.drop_constraint(
        "fk_parking_spaces_tenant_id_resident_id", "parking_spaces", type_="foreignkey"
    )
    for column in ("lease_end", "lease_start", "resident_id"):
        op.drop_column("parking_spaces", column)
    for table in ARCHIVED:
        op.drop_column(table, "archived_at")
