"""estate registry, residents, vehicles, house claims, staff records

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from linli.db.rls import grant_app, protect_tenant_table

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_TABLES = (
    'buildings', 'units', 'houses', 'parking_areas', 'parking_spaces', 'facilities', 'residents', 'resident_houses', 'vehicles', 'house_claims', 'staff_records', 'staff_certificates', 'staff_record_communities',
)
# Global (no RLS) although it has tenant_id: a directory phone blind index -> companies that a
# portal user, who belongs to no tenant, needs before any tenant can be set. The schema guard
# allows it by name (tests/core/test_schema_guard.py GLOBAL_TENANT_DIRECTORIES).
GLOBAL_TABLES = ("resident_companies",)


def upgrade() -> None:
    # Community estate profile (linli.tenancy.models.Community).
    op.add_column("communities", sa.Column("area_m2", sa.Numeric(12, 2), nullable=True))
    op.add_column("communities", sa.Column("contact_phone", sa.String(32), server_default="", nullable=False))
    op.add_column(
        "communities",
        sa.Column("fee_settings", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
    )
    # Types created once here: two tables share resident_relation.
    postgresql.ENUM('residence', 'shop', 'office', 'storage', name='house_type').create(op.get_bind(), checkfirst=True)
    postgresql.ENUM('unsold', 'delivered', 'occupied', 'vacant', 'renovating', name='house_status').create(op.get_bind(), checkfirst=True)
    postgresql.ENUM('owned', 'rented', 'temporary', name='parking_usage').create(op.get_bind(), checkfirst=True)
    postgresql.ENUM('male', 'female', name='gender').create(op.get_bind(), checkfirst=True)
    postgresql.ENUM('owner', 'co_owner', 'family', 'tenant', name='resident_relation').create(op.get_bind(), checkfirst=True)
    postgresql.ENUM('pending', 'approved', 'rejected', name='claim_status').create(op.get_bind(), checkfirst=True)
    postgresql.ENUM('own', 'outsourced', name='employment_type').create(op.get_bind(), checkfirst=True)
    op.create_table('buildings',
    sa.Column('community_id', sa.Uuid(), nullable=False),
    sa.Column('building_no', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('floors_above', sa.SmallInteger(), nullable=True),
    sa.Column('floors_below', sa.SmallInteger(), nullable=True),
    sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'community_id'], ['communities.tenant_id', 'communities.id'], name=op.f('fk_buildings_tenant_id_community_id')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_buildings')),
    sa.UniqueConstraint('tenant_id', 'community_id', 'building_no', name=op.f('uq_buildings_tenant_id_community_id_building_no'))
    )
    op.create_table('units',
    sa.Column('community_id', sa.Uuid(), nullable=False),
    sa.Column('building_id', sa.Uuid(), nullable=False),
    sa.Column('unit_no', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'building_id'], ['buildings.tenant_id', 'buildings.id'], name=op.f('fk_units_tenant_id_building_id'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id', 'community_id'], ['communities.tenant_id', 'communities.id'], name=op.f('fk_units_tenant_id_community_id')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_units')),
    sa.UniqueConstraint('tenant_id', 'building_id', 'unit_no', name=op.f('uq_units_tenant_id_building_id_unit_no'))
    )
    op.create_table('houses',
    sa.Column('community_id', sa.Uuid(), nullable=False),
    sa.Column('building_id', sa.Uuid(), nullable=False),
    sa.Column('unit_id', sa.Uuid(), nullable=True),
    sa.Column('house_no', sa.String(length=20), nullable=False),
    sa.Column('floor', sa.SmallInteger(), nullable=True),
    sa.Column('building_area', sa.Numeric(precision=10, scale=2), nullable=False),
    sa.Column('inner_area', sa.Numeric(precision=10, scale=2), nullable=True),
    sa.Column('house_type', postgresql.ENUM('residence', 'shop', 'office', 'storage', name='house_type', create_type=False), nullable=False),
    sa.Column('status', postgresql.ENUM('unsold', 'delivered', 'occupied', 'vacant', 'renovating', name='house_status', create_type=False), nullable=False),
    sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'building_id'], ['buildings.tenant_id', 'buildings.id'], name=op.f('fk_houses_tenant_id_building_id')),
    sa.ForeignKeyConstraint(['tenant_id', 'community_id'], ['communities.tenant_id', 'communities.id'], name=op.f('fk_houses_tenant_id_community_id')),
    sa.ForeignKeyConstraint(['tenant_id', 'unit_id'], ['units.tenant_id', 'units.id'], name=op.f('fk_houses_tenant_id_unit_id')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_houses')),
    sa.UniqueConstraint('tenant_id', 'building_id', 'unit_id', 'house_no', name=op.f('uq_houses_tenant_id_building_id_unit_id_house_no'), postgresql_nulls_not_distinct=True)
    )
    op.create_index(op.f('ix_houses_tenant_id_community_id_house_no'), 'houses', ['tenant_id', 'community_id', 'house_no'], unique=False)
    op.create_index(op.f('ix_houses_tenant_id_unit_id'), 'houses', ['tenant_id', 'unit_id'], unique=False)
    op.create_table('parking_areas',
    sa.Column('community_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('underground', sa.Boolean(), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'community_id'], ['communities.tenant_id', 'communities.id'], name=op.f('fk_parking_areas_tenant_id_community_id')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_parking_areas')),
    sa.UniqueConstraint('tenant_id', 'community_id', 'name', name=op.f('uq_parking_areas_tenant_id_community_id_name'))
    )
    op.create_table('parking_spaces',
    sa.Column('community_id', sa.Uuid(), nullable=False),
    sa.Column('area_id', sa.Uuid(), nullable=False),
    sa.Column('space_no', sa.String(length=20), nullable=False),
    sa.Column('usage', postgresql.ENUM('owned', 'rented', 'temporary', name='parking_usage', create_type=False), nullable=False),
    sa.Column('house_id', sa.Uuid(), nullable=True),
    sa.Column('area_m2', sa.Numeric(precision=10, scale=2), nullable=True),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'area_id'], ['parking_areas.tenant_id', 'parking_areas.id'], name=op.f('fk_parking_spaces_tenant_id_area_id'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id', 'community_id'], ['communities.tenant_id', 'communities.id'], name=op.f('fk_parking_spaces_tenant_id_community_id')),
    sa.ForeignKeyConstraint(['tenant_id', 'house_id'], ['houses.tenant_id', 'houses.id'], name=op.f('fk_parking_spaces_tenant_id_house_id')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_parking_spaces')),
    sa.UniqueConstraint('tenant_id', 'area_id', 'space_no', name=op.f('uq_parking_spaces_tenant_id_area_id_space_no'))
    )
    op.create_index(op.f('ix_parking_spaces_tenant_id_house_id'), 'parking_spaces', ['tenant_id', 'house_id'], unique=False)
    op.create_table('facilities',
    sa.Column('community_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('location', sa.String(length=200), nullable=False),
    sa.Column('building_id', sa.Uuid(), nullable=True),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'building_id'], ['buildings.tenant_id', 'buildings.id'], name=op.f('fk_facilities_tenant_id_building_id')),
    sa.ForeignKeyConstraint(['tenant_id', 'community_id'], ['communities.tenant_id', 'communities.id'], name=op.f('fk_facilities_tenant_id_community_id')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_facilities')),
    sa.UniqueConstraint('tenant_id', 'community_id', 'name', name=op.f('uq_facilities_tenant_id_community_id_name'))
    )
    op.create_table('residents',
    sa.Column('name', sa.String(length=100, collation='C'), nullable=False),
    sa.Column('phone_enc', sa.LargeBinary(), nullable=True),
    sa.Column('phone_hash', sa.LargeBinary(), nullable=True),
    sa.Column('id_card_enc', sa.LargeBinary(), nullable=True),
    sa.Column('id_card_hash', sa.LargeBinary(), nullable=True),
    sa.Column('gender', postgresql.ENUM('male', 'female', name='gender', create_type=False), nullable=True),
    sa.Column('birth_date', sa.Date(), nullable=True),
    sa.Column('tags', sa.ARRAY(sa.String(length=32)), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_residents')),
    sa.UniqueConstraint('tenant_id', 'id_card_hash', name=op.f('uq_residents_tenant_id_id_card_hash')),
    sa.UniqueConstraint('tenant_id', 'phone_hash', name=op.f('uq_residents_tenant_id_phone_hash'))
    )
    op.create_index('ix_residents_tenant_id_name', 'residents', ['tenant_id', 'name'], unique=False)
    op.create_table('resident_houses',
    sa.Column('resident_id', sa.Uuid(), nullable=False),
    sa.Column('house_id', sa.Uuid(), nullable=False),
    sa.Column('community_id', sa.Uuid(), nullable=False),
    sa.Column('relation', postgresql.ENUM('owner', 'co_owner', 'family', 'tenant', name='resident_relation', create_type=False), nullable=False),
    sa.Column('lease_start', sa.Date(), nullable=True),
    sa.Column('lease_end', sa.Date(), nullable=True),
    sa.Column('moved_in_on', sa.Date(), nullable=True),
    sa.Column('moved_out_on', sa.Date(), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'community_id'], ['communities.tenant_id', 'communities.id'], name=op.f('fk_resident_houses_tenant_id_community_id')),
    sa.ForeignKeyConstraint(['tenant_id', 'house_id'], ['houses.tenant_id', 'houses.id'], name=op.f('fk_resident_houses_tenant_id_house_id')),
    sa.ForeignKeyConstraint(['tenant_id', 'resident_id'], ['residents.tenant_id', 'residents.id'], name=op.f('fk_resident_houses_tenant_id_resident_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_resident_houses'))
    )
    op.create_index(op.f('ix_resident_houses_tenant_id_resident_id'), 'resident_houses', ['tenant_id', 'resident_id'], unique=False)
    op.create_index(op.f('ix_resident_houses_tenant_id_house_id'), 'resident_houses', ['tenant_id', 'house_id'], unique=False)
    op.create_index('uq_resident_houses_current', 'resident_houses', ['tenant_id', 'house_id', 'resident_id'], unique=True, postgresql_where=sa.text('moved_out_on IS NULL'))
    op.create_table('vehicles',
    sa.Column('community_id', sa.Uuid(), nullable=False),
    sa.Column('plate', sa.String(length=10), nullable=False),
    sa.Column('new_energy', sa.Boolean(), nullable=False),
    sa.Column('resident_id', sa.Uuid(), nullable=True),
    sa.Column('house_id', sa.Uuid(), nullable=True),
    sa.Column('brand', sa.String(length=40), nullable=False),
    sa.Column('color', sa.String(length=20), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'community_id'], ['communities.tenant_id', 'communities.id'], name=op.f('fk_vehicles_tenant_id_community_id')),
    sa.ForeignKeyConstraint(['tenant_id', 'house_id'], ['houses.tenant_id', 'houses.id'], name=op.f('fk_vehicles_tenant_id_house_id')),
    sa.ForeignKeyConstraint(['tenant_id', 'resident_id'], ['residents.tenant_id', 'residents.id'], name=op.f('fk_vehicles_tenant_id_resident_id'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_vehicles')),
    sa.UniqueConstraint('tenant_id', 'community_id', 'plate', name=op.f('uq_vehicles_tenant_id_community_id_plate'))
    )
    op.create_index(op.f('ix_vehicles_tenant_id_resident_id'), 'vehicles', ['tenant_id', 'resident_id'], unique=False)
    op.create_index(op.f('ix_vehicles_tenant_id_house_id'), 'vehicles', ['tenant_id', 'house_id'], unique=False)
    op.create_table('house_claims',
    sa.Column('community_id', sa.Uuid(), nullable=False),
    sa.Column('house_id', sa.Uuid(), nullable=False),
    sa.Column('account_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('relation', postgresql.ENUM('owner', 'co_owner', 'family', 'tenant', name='resident_relation', create_type=False), nullable=False),
    sa.Column('status', postgresql.ENUM('pending', 'approved', 'rejected', name='claim_status', create_type=False), nullable=False),
    sa.Column('reason', sa.String(length=400), nullable=False),
    sa.Column('reviewed_by', sa.Uuid(), nullable=True),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['resident_accounts.id'], name=op.f('fk_house_claims_account_id'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id', 'community_id'], ['communities.tenant_id', 'communities.id'], name=op.f('fk_house_claims_tenant_id_community_id')),
    sa.ForeignKeyConstraint(['tenant_id', 'house_id'], ['houses.tenant_id', 'houses.id'], name=op.f('fk_house_claims_tenant_id_house_id')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_house_claims'))
    )
    op.create_index('uq_house_claims_pending', 'house_claims', ['tenant_id', 'house_id', 'account_id'], unique=True, postgresql_where=sa.text("status = 'pending'"))
    op.create_index(op.f('ix_house_claims_tenant_id_community_id_status'), 'house_claims', ['tenant_id', 'community_id', 'status'], unique=False)
    op.create_table('resident_companies',
    sa.Column('phone_hash', sa.LargeBinary(), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_resident_companies_tenant_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('phone_hash', 'tenant_id', name=op.f('pk_resident_companies'))
    )
    op.create_table('staff_records',
    sa.Column('employee_no', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('phone_enc', sa.LargeBinary(), nullable=True),
    sa.Column('phone_hash', sa.LargeBinary(), nullable=True),
    sa.Column('department', sa.String(length=100), nullable=False),
    sa.Column('position', sa.String(length=100), nullable=False),
    sa.Column('employment_type', postgresql.ENUM('own', 'outsourced', name='employment_type', create_type=False), nullable=False),
    sa.Column('hire_date', sa.Date(), nullable=True),
    sa.Column('birth_date', sa.Date(), nullable=True),
    sa.Column('education', sa.String(length=20), nullable=False),
    sa.Column('staff_user_id', sa.Uuid(), nullable=True),
    sa.Column('left_on', sa.Date(), nullable=True),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'staff_user_id'], ['staff_users.tenant_id', 'staff_users.id'], name=op.f('fk_staff_records_tenant_id_staff_user_id'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_staff_records')),
    sa.UniqueConstraint('tenant_id', 'employee_no', name=op.f('uq_staff_records_tenant_id_employee_no'))
    )
    op.create_index(op.f('ix_staff_records_tenant_id_staff_user_id'), 'staff_records', ['tenant_id', 'staff_user_id'], unique=False)
    op.create_table('staff_certificates',
    sa.Column('record_id', sa.Uuid(), nullable=False),
    sa.Column('cert_type', sa.String(length=60), nullable=False),
    sa.Column('number', sa.String(length=60), nullable=False),
    sa.Column('expires_on', sa.Date(), nullable=True),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'record_id'], ['staff_records.tenant_id', 'staff_records.id'], name=op.f('fk_staff_certificates_tenant_id_record_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_staff_certificates')),
    sa.UniqueConstraint('tenant_id', 'record_id', 'cert_type', 'number', name=op.f('uq_staff_certificates_tenant_id_record_id_cert_type_number'))
    )
    op.create_table('staff_record_communities',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('record_id', sa.Uuid(), nullable=False),
    sa.Column('community_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'community_id'], ['communities.tenant_id', 'communities.id'], name=op.f('fk_staff_record_communities_tenant_id_community_id'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id', 'record_id'], ['staff_records.tenant_id', 'staff_records.id'], name=op.f('fk_staff_record_communities_tenant_id_record_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'record_id', 'community_id', name=op.f('pk_staff_record_communities'))
    )
    op.create_index(op.f('ix_staff_record_communities_tenant_id_community_id'), 'staff_record_communities', ['tenant_id', 'community_id'], unique=False)

    for table in TENANT_TABLES:
        protect_tenant_table(table)
    for table in GLOBAL_TABLES:
        grant_app(table)


def downgrade() -> None:
    op.drop_table('staff_record_communities')
    op.drop_table('staff_certificates')
    op.drop_table('staff_records')
    op.drop_table('resident_companies')
    op.drop_table('house_claims')
    op.drop_table('vehicles')
    op.drop_table('resident_houses')
    op.drop_table('residents')
    op.drop_table('facilities')
    op.drop_table('parking_spaces')
    op.drop_table('parking_areas')
    op.drop_table('houses')
    op.drop_table('units')
    op.drop_table('buildings')
    op.execute('DROP TYPE IF EXISTS house_type')
    op.execute('DROP TYPE IF EXISTS house_status')
    op.execute('DROP TYPE IF EXISTS parking_usage')
    op.execute('DROP TYPE IF EXISTS gender')
    op.execute('DROP TYPE IF EXISTS resident_relation')
    op.execute('DROP TYPE IF EXISTS claim_status')
    op.execute('DROP TYPE IF EXISTS employment_type')
    op.drop_column("communities", "fee_settings")
    op.drop_column("communities", "contact_phone")
    op.drop_column("communities", "area_m2")
