"""Row-level security for tenant tables, shared by every migration.

A new tenant table calls :func:`protect_tenant_table` in its migration and gets
forced RLS, the isolation policy and the app role's grants with no copy-paste.
"""

from __future__ import annotations

from alembic import op

APP_ROLE = "linli_app"

CURRENT_TENANT_FUNCTION = """
CREATE OR REPLACE FUNCTION linli_current_tenant() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT NULLIF(current_setting('linli.tenant_id', true), '')::uuid $$
"""


def protect_tenant_table(table: str) -> None:
    """Force RLS on ``table`` so a transaction sees only its own tenant's rows."""
    op.execute(f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY')
    op.execute(f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY')
    op.execute(
        f'CREATE POLICY tenant_isolation ON "{table}" '
        "USING (tenant_id = linli_current_tenant()) "
        "WITH CHECK (tenant_id = linli_current_tenant())"
    )
    grant_app(table)


def grant_app(table: str) -> None:
    op.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON "{table}" TO {APP_ROLE}')
