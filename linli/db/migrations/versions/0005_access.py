"""access control: devices, credentials, visitors, gates, events

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

from alembic import op

from linli.db.rls import protect_tenant_table

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_TABLES = (
    "access_points",
    "access_devices",
    "access_community_keys",
    "access_passes",
    "access_revocations",
    "access_events",
    "access_parking_tariffs",
    "access_vehicle_entries",
)

DDL = """
CREATE TABLE access_points (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    community_id uuid NOT NULL,
    kind varchar(24) NOT NULL
        CONSTRAINT ck_access_points_kind
        CHECK (kind IN ('community_gate', 'building_entrance', 'parking_entrance')),
    name varchar(100) NOT NULL,
    building_id uuid,
    CONSTRAINT pk_access_points PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_access_points_tenant_id_community_id FOREIGN KEY (tenant_id, community_id)
        REFERENCES communities (tenant_id, id),
    CONSTRAINT fk_access_points_tenant_id_building_id FOREIGN KEY (tenant_id, building_id)
        REFERENCES buildings (tenant_id, id)
);
CREATE UNIQUE INDEX ix_access_points_tenant_id_community_id_name
    ON access_points (tenant_id, community_id, name);

CREATE TABLE access_devices (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    community_id uuid NOT NULL,
    access_point_id uuid NOT NULL,
    kind varchar(24) NOT NULL
        CONSTRAINT ck_access_devices_kind
        CHECK (kind IN ('door_controller', 'turnstile', 'vehicle_barrier', 'intercom')),
    name varchar(100) NOT NULL,
    vendor varchar(60) NOT NULL DEFAULT '',
    mqtt_secret_hash bytea NOT NULL,
    public_key bytea NOT NULL CONSTRAINT ck_access_devices_key CHECK (length(public_key) = 32),
    enabled boolean NOT NULL DEFAULT true,
    online boolean NOT NULL DEFAULT false,
    last_seen_at timestamptz,
    firmware varchar(60) NOT NULL DEFAULT '',
    revocations_version bigint NOT NULL DEFAULT 0,
    CONSTRAINT pk_access_devices PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_access_devices_tenant_id_community_id FOREIGN KEY (tenant_id, community_id)
        REFERENCES communities (tenant_id, id),
    CONSTRAINT fk_access_devices_tenant_id_access_point_id FOREIGN KEY (tenant_id, access_point_id)
        REFERENCES access_points (tenant_id, id)
);
CREATE UNIQUE INDEX ix_access_devices_tenant_id_community_id_name
    ON access_devices (tenant_id, community_id, name);
CREATE INDEX ix_access_devices_tenant_id_access_point_id
    ON access_devices (tenant_id, access_point_id);

CREATE TABLE access_community_keys (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    community_id uuid NOT NULL,
    kid smallint NOT NULL,
    public_key bytea NOT NULL,
    private_key_enc bytea NOT NULL,
    retired_at timestamptz,
    CONSTRAINT pk_access_community_keys PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_access_community_keys_tenant_id_community_id
        FOREIGN KEY (tenant_id, community_id) REFERENCES communities (tenant_id, id)
);
CREATE UNIQUE INDEX ix_access_community_keys_tenant_id_community_id_kid
    ON access_community_keys (tenant_id, community_id, kid);

CREATE TABLE access_passes (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    community_id uuid NOT NULL,
    kind varchar(24) NOT NULL
        CONSTRAINT ck_access_passes_kind CHECK (kind IN ('resident', 'visitor', 'courier')),
    holder_name varchar(100) NOT NULL,
    phone_enc bytea,
    phone_hash bytea,
    resident_id uuid,
    access_point_ids uuid[] NOT NULL,
    valid_from timestamptz NOT NULL,
    valid_until timestamptz NOT NULL,
    max_entries integer CONSTRAINT ck_access_passes_entries CHECK (max_entries > 0),
    used_entries integer NOT NULL DEFAULT 0,
    link_hash bytea,
    issued_by_kind varchar(16) NOT NULL,
    issued_by uuid NOT NULL,
    note varchar(200) NOT NULL DEFAULT '',
    revoked_at timestamptz,
    CONSTRAINT ck_access_passes_window CHECK (valid_until > valid_from),
    CONSTRAINT pk_access_passes PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_access_passes_tenant_id_community_id FOREIGN KEY (tenant_id, community_id)
        REFERENCES communities (tenant_id, id),
    CONSTRAINT fk_access_passes_tenant_id_resident_id FOREIGN KEY (tenant_id, resident_id)
        REFERENCES residents (tenant_id, id) ON DELETE SET NULL (resident_id)
);
CREATE INDEX ix_access_passes_tenant_id_community_id_kind_valid_until
    ON access_passes (tenant_id, community_id, kind, valid_until);
CREATE INDEX ix_access_passes_tenant_id_resident_id ON access_passes (tenant_id, resident_id);

CREATE TABLE access_revocations (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    community_id uuid NOT NULL,
    pass_id uuid NOT NULL,
    version bigint NOT NULL,
    expires_at timestamptz NOT NULL,
    CONSTRAINT pk_access_revocations PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_access_revocations_tenant_id_community_id FOREIGN KEY (tenant_id, community_id)
        REFERENCES communities (tenant_id, id),
    CONSTRAINT fk_access_revocations_tenant_id_pass_id FOREIGN KEY (tenant_id, pass_id)
        REFERENCES access_passes (tenant_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX ix_access_revocations_tenant_id_community_id_version
    ON access_revocations (tenant_id, community_id, version);
CREATE UNIQUE INDEX ix_access_revocations_tenant_id_pass_id
    ON access_revocations (tenant_id, pass_id);

CREATE TABLE access_events (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL,
    community_id uuid NOT NULL,
    device_id uuid NOT NULL,
    device_event_id varchar(64) NOT NULL,
    access_point_id uuid,
    occurred_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    kind varchar(24) NOT NULL,
    method varchar(16) NOT NULL DEFAULT '',
    direction varchar(3),
    pass_id uuid,
    resident_id uuid,
    plate varchar(10),
    reason varchar(40) NOT NULL DEFAULT '',
    detail jsonb NOT NULL DEFAULT '{}'::jsonb,
    CONSTRAINT pk_access_events PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX ix_access_events_tenant_id_device_id_device_event_id
    ON access_events (tenant_id, device_id, device_event_id);
CREATE INDEX ix_access_events_tenant_id_access_point_id_occurred_at
    ON access_events (tenant_id, access_point_id, occurred_at);
CREATE INDEX ix_access_events_tenant_id_resident_id_occurred_at
    ON access_events (tenant_id, resident_id, occurred_at) WHERE resident_id IS NOT NULL;
CREATE INDEX ix_access_events_tenant_id_pass_id
    ON access_events (tenant_id, pass_id) WHERE pass_id IS NOT NULL;
CREATE INDEX ix_access_events_occurred_at_brin ON access_events USING brin (occurred_at);

CREATE TABLE access_parking_tariffs (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    community_id uuid NOT NULL,
    free_minutes integer NOT NULL DEFAULT 30 CONSTRAINT ck_access_parking_tariffs_free
        CHECK (free_minutes >= 0),
    hourly numeric(14, 2) NOT NULL CONSTRAINT ck_access_parking_tariffs_hourly CHECK (hourly >= 0),
    daily_cap numeric(14, 2) NOT NULL
        CONSTRAINT ck_access_parking_tariffs_cap CHECK (daily_cap >= 0),
    CONSTRAINT pk_access_parking_tariffs PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_access_parking_tariffs_tenant_id_community_id
        FOREIGN KEY (tenant_id, community_id) REFERENCES communities (tenant_id, id)
);
CREATE UNIQUE INDEX ix_access_parking_tariffs_tenant_id_community_id
    ON access_parking_tariffs (tenant_id, community_id);

CREATE TABLE access_vehicle_entries (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    community_id uuid NOT NULL,
    plate varchar(10) NOT NULL,
    known boolean NOT NULL DEFAULT false,
    entry_device_id uuid,
    exit_device_id uuid,
    entered_at timestamptz NOT NULL,
    exited_at timestamptz,
    fee numeric(14, 2),
    paid_at timestamptz,
    CONSTRAINT pk_access_vehicle_entries PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_access_vehicle_entries_tenant_id_community_id
        FOREIGN KEY (tenant_id, community_id) REFERENCES communities (tenant_id, id)
);
CREATE UNIQUE INDEX uq_access_vehicle_entries_inside
    ON access_vehicle_entries (tenant_id, community_id, plate) WHERE exited_at IS NULL;
CREATE INDEX ix_access_vehicle_entries_tenant_id_community_id_entered_at
    ON access_vehicle_entries (tenant_id, community_id, entered_at);
"""


def upgrade() -> None:
    for statement in DDL.split(";"):
        if statement.strip():
            op.execute(statement)
    for table in TENANT_TABLES:
        protect_tenant_table(table)


def downgrade() -> None:
    for table in reversed(TENANT_TABLES):
        op.execute(f'DROP TABLE IF EXISTS "{table}"')
