"""foundation: tenancy, auth, audit, outbox, idempotency

Revision ID: 0001
Revises: 
Create Date: 2026-11-25 02:02:45.033198
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from sqlalchemy.dialects import postgresql

from linli.db.rls import CURRENT_TENANT_FUNCTION, grant_app, protect_tenant_table

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(CURRENT_TENANT_FUNCTION)
    op.create_table('audit_log',
    sa.Column('principal_kind', sa.String(length=16), nullable=False),
    sa.Column('principal_id', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=80), nullable=False),
    sa.Column('target_type', sa.String(length=60), nullable=False),
    sa.Column('target_id', sa.String(length=64), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.Column('ip', postgresql.INET(), nullable=True),
    sa.Column('detail', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_audit_log'))
    )
    op.create_index(op.f('ix_audit_log_tenant_id_created_at'), 'audit_log', ['tenant_id', 'created_at'], unique=False)
    op.create_table('communities',
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('address', sa.String(length=400), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_communities')),
    sa.UniqueConstraint('tenant_id', 'code', name=op.f('uq_communities_tenant_id_code'))
    )
    op.create_table('idempotency_keys',
    sa.Column('principal', sa.String(length=120), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('response_body', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('principal', 'key', name=op.f('pk_idempotency_keys'))
    )
    op.create_table('operators',
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=100), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_operators')),
    sa.UniqueConstraint('username', name=op.f('uq_operators_username'))
    )
    op.create_table('otp_codes',
    sa.Column('phone_hash', sa.LargeBinary(), nullable=False),
    sa.Column('code_hash', sa.LargeBinary(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_otp_codes'))
    )
    op.create_index(op.f('ix_otp_codes_phone_hash_created_at'), 'otp_codes', ['phone_hash', 'created_at'], unique=False)
    op.create_table('outbox_events',
    sa.Column('event_type', sa.String(length=80), nullable=False),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_outbox_events'))
    )
    op.create_table('platform_audit_log',
    sa.Column('principal_kind', sa.String(length=16), nullable=False),
    sa.Column('principal_id', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=80), nullable=False),
    sa.Column('target_type', sa.String(length=60), nullable=False),
    sa.Column('target_id', sa.String(length=64), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.Column('ip', postgresql.INET(), nullable=True),
    sa.Column('detail', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_platform_audit_log'))
    )
    op.create_table('resident_accounts',
    sa.Column('phone_enc', sa.LargeBinary(), nullable=True),
    sa.Column('phone_hash', sa.LargeBinary(), nullable=True),
    sa.Column('display_name', sa.String(length=100), nullable=False),
    sa.Column('avatar_url', sa.String(length=500), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_resident_accounts')),
    sa.UniqueConstraint('phone_hash', name=op.f('uq_resident_accounts_phone_hash'))
    )
    op.create_table('staff_users',
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=100), nullable=False),
    sa.Column('phone_enc', sa.LargeBinary(), nullable=True),
    sa.Column('phone_hash', sa.LargeBinary(), nullable=True),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('roles', sa.ARRAY(sa.String(length=32)), nullable=False),
    sa.Column('all_communities', sa.Boolean(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('failed_logins', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_staff_users')),
    sa.UniqueConstraint('tenant_id', 'phone_hash', name=op.f('uq_staff_users_tenant_id_phone_hash')),
    sa.UniqueConstraint('tenant_id', 'username', name=op.f('uq_staff_users_tenant_id_username'))
    )
    op.create_table('tenants',
    sa.Column('slug', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('status', sa.Enum('active', 'suspended', name='tenant_status'), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tenants')),
    sa.UniqueConstraint('slug', name=op.f('uq_tenants_slug'))
    )
    op.create_table('outbox_deliveries',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('event_id', sa.Uuid(), nullable=False),
    sa.Column('consumer', sa.String(length=40), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'event_id'], ['outbox_events.tenant_id', 'outbox_events.id'], name=op.f('fk_outbox_deliveries_tenant_id_event_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'event_id', 'consumer', name=op.f('pk_outbox_deliveries'))
    )
    op.create_table('resident_refresh_tokens',
    sa.Column('account_id', sa.Uuid(), nullable=False),
    sa.Column('family_id', sa.Uuid(), nullable=False),
    sa.Column('token_hash', sa.LargeBinary(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['resident_accounts.id'], name=op.f('fk_resident_refresh_tokens_account_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_resident_refresh_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_resident_refresh_tokens_token_hash'))
    )
    op.create_index(op.f('ix_resident_refresh_tokens_family_id'), 'resident_refresh_tokens', ['family_id'], unique=False)
    op.create_table('resident_wechat_identities',
    sa.Column('account_id', sa.Uuid(), nullable=False),
    sa.Column('appid', sa.String(length=64), nullable=False),
    sa.Column('openid', sa.String(length=128), nullable=False),
    sa.Column('unionid', sa.String(length=128), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['resident_accounts.id'], name=op.f('fk_resident_wechat_identities_account_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_resident_wechat_identities')),
    sa.UniqueConstraint('appid', 'openid', name=op.f('uq_resident_wechat_identities_appid_openid'))
    )
    op.create_index(op.f('ix_resident_wechat_identities_unionid'), 'resident_wechat_identities', ['unionid'], unique=False)
    op.create_table('staff_community_grants',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('staff_id', sa.Uuid(), nullable=False),
    sa.Column('community_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'community_id'], ['communities.tenant_id', 'communities.id'], name=op.f('fk_staff_community_grants_tenant_id_community_id'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id', 'staff_id'], ['staff_users.tenant_id', 'staff_users.id'], name=op.f('fk_staff_community_grants_tenant_id_staff_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'staff_id', 'community_id', name=op.f('pk_staff_community_grants'))
    )
    op.create_table('staff_refresh_tokens',
    sa.Column('staff_id', sa.Uuid(), nullable=False),
    sa.Column('family_id', sa.Uuid(), nullable=False),
    sa.Column('token_hash', sa.LargeBinary(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'staff_id'], ['staff_users.tenant_id', 'staff_users.id'], name=op.f('fk_staff_refresh_tokens_tenant_id_staff_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_staff_refresh_tokens')),
    sa.UniqueConstraint('tenant_id', 'token_hash', name=op.f('uq_staff_refresh_tokens_tenant_id_token_hash'))
    )
    op.create_index(op.f('ix_staff_refresh_tokens_tenant_id_family_id'), 'staff_refresh_tokens', ['tenant_id', 'family_id'], unique=False)

    for table in TENANT_TABLES:
        protect_tenant_table(table)
    for table in GLOBAL_TABLES:
        grant_app(table)


TENANT_TABLES = (
    "audit_log", "communities", "outbox_events", "outbox_deliveries", "staff_users",
    "staff_community_grants", "staff_refresh_tokens",
)
GLOBAL_TABLES = (
    "tenants", "operators", "resident_accounts", "resident_wechat_identities",
    "resident_refresh_tokens", "otp_codes", "idempotency_keys", "platform_audit_log",
)


def downgrade() -> None:
    op.drop_index(op.f('ix_staff_refresh_tokens_tenant_id_family_id'), table_name='staff_refresh_tokens')
    op.drop_table('staff_refresh_tokens')
    op.drop_table('staff_community_grants')
    op.drop_index(op.f('ix_resident_wechat_identities_unionid'), table_name='resident_wechat_identities')
    op.drop_table('resident_wechat_identities')
    op.drop_index(op.f('ix_resident_refresh_tokens_family_id'), table_name='resident_refresh_tokens')
    op.drop_table('resident_refresh_tokens')
    op.drop_table('outbox_deliveries')
    op.drop_table('tenants')
    op.drop_table('staff_users')
    op.drop_table('resident_accounts')
    op.drop_table('platform_audit_log')
    op.drop_table('outbox_events')
    op.drop_index(op.f('ix_otp_codes_phone_hash_created_at'), table_name='otp_codes')
    op.drop_table('otp_codes')
    op.drop_table('operators')
    op.drop_table('idempotency_keys')
    op.drop_table('communities')
    op.drop_index(op.f('ix_audit_log_tenant_id_created_at'), table_name='audit_log')
    op.drop_table('audit_log')
    op.execute("DROP TYPE IF EXISTS tenant_status")
    op.execute("DROP FUNCTION IF EXISTS linli_current_tenant()")
