"""Company B can never reach company A: every id endpoint through the API, and raw SQL under RLS.

The API sweep walks the OpenAPI schema, so an endpoint added tomorrow is covered
as soon as it exists; ids come from makers registered per path parameter (see
``tests/isolation.py``).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import psycopg
import pytest
from psycopg import errors as pg_errors

from linli.auth.permissions import ROLE_PERMISSIONS, Role
from linli.config import get_settings
from linli.db.dsn import app_dsn
from tests.factories import Company, bearer, make_company, make_staff, staff_token
from tests.isolation import SAMPLE_BODIES, IsolationContext, load_domain_makers

SWEPT = ("get", "put", "patch", "delete")
STAFF_PERMISSIONS = {p.value for perms in ROLE_PERMISSIONS.values() for p in perms}
PARAM = re.compile(r"\{([^}]+)\}")


def _swept_operations(schema: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    """(method, path, params) of staff operations that take an id in their path."""
    found = []
    for path, item in schema["paths"].items():
        params = PARAM.findall(path)
        if not any(p.endswith("_id") for p in params):
            continue
        for method in SWEPT:
            operation = item.get(method)
            if operation and operation.get("x-linli-permission") in STAFF_PERMISSIONS:
                found.append((method, path, params))
    return found


def _everything_token(company: Company) -> dict[str, str]:
    """An admin of B holding every role and every community: only the tenant fence is left."""
    return bearer(staff_token(company, roles=tuple(Role), all_communities=True))


def _without_instance(body: Any) -> str:
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "instance"}  # echoes the requested path
    return json.dumps(body, ensure_ascii=False)


async def test_company_b_gets_404_on_every_id_endpoint_with_company_a_ids(app, client) -> None:
    makers = load_domain_makers()
    operations = _swept_operations(app.openapi())
    assert operations, "the sweep found no id endpoints at all"
    missing = sorted({p for _, _, params in operations for p in params if p not in makers})
    assert not missing, (
        f"no id maker for path parameters {missing}: register one in"
        " tests/<domain>/isolation_ids.py (see tests/isolation.py)"
    )

    a = await make_company(communities=2)
    b = await make_company(communities=2)
    ctx = IsolationContext(company=a, client=client)
    ids: dict[str, str] = {}
    for param in sorted({p for _, _, params in operations for p in params}):
        ids[param] = str(await makers[param](ctx))
    secrets = {*ids.values(), a.slug, str(a.id)}

    intruder = _everything_token(b)
    reached: list[str] = []
    for method, path, _ in operations:
        url = path.format(**ids)
        body = SAMPLE_BODIES.get((method, path), {}) if method in ("put", "patch") else None
        response = await client.request(method.upper(), url, headers=intruder, json=body)
        text = (
            response.text
            if not response.headers.get("content-type", "").startswith("application/problem+json")
            else _without_instance(response.json())
        )
        if response.status_code != 404 or any(s in text for s in secrets):
            reached.append(
                f"{method.upper()} {path} -> {response.status_code}: {response.text[:200]}"
            )
    assert not reached, "company B reached company A:\n" + "\n".join(reached)

    # The control: the same ids are real, and still whole, for company A itself.
    owner = _everything_token(a)
    for method, path, _ in operations:
        if method != "get":
            continue
        response = await client.get(path.format(**ids), headers=owner)
        assert response.status_code == 200, (path, response.status_code, response.text[:200])


def _app_connect() -> psycopg.Connection[Any]:
    return psycopg.connect(app_dsn(get_settings()))


def _set_tenant(conn: psycopg.Connection[Any], tenant: uuid.UUID | None) -> None:
    conn.execute("SELECT set_config('linli.tenant_id', %s, true)", (str(tenant) if tenant else "",))


def _count(conn: psycopg.Connection[Any], table: str, tenant: uuid.UUID | None = None) -> int:
    if tenant is None:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    else:
        row = conn.execute(
            f"SELECT count(*) FROM {table} WHERE tenant_id = %s", (tenant,)
        ).fetchone()
    assert row is not None
    return int(row[0])


TABLES = ("communities", "staff_users", "audit_log")


async def test_raw_sql_as_the_app_role_sees_only_the_tenant_it_set() -> None:
    a = await make_company(communities=2)
    b = await make_company(communities=3)
    await make_staff(b, username="b-only")
    with _app_connect() as conn:
        with conn.transaction():
            _set_tenant(conn, a.id)
            for table in TABLES:
                assert _count(conn, table, b.id) == 0, table
                assert _count(conn, table, a.id) > 0, table
                assert _count(conn, table) == _count(conn, table, a.id), table
            assert _count(conn, "communities", a.id) == 2
            # Writes cannot reach B's rows either.
            assert (
                conn.execute(
                    "UPDATE communities SET name = 'x' WHERE tenant_id = %s", (b.id,)
                ).rowcount
                == 0
            )
            assert (
                conn.execute("DELETE FROM staff_users WHERE tenant_id = %s", (b.id,)).rowcount == 0
            )

        insert = (
            "INSERT INTO audit_log (tenant_id, id, principal_kind, principal_id, action,"
            " target_type, target_id, detail)"
            " VALUES (%s, %s, 'system', '0', 'probe', 'probe', '0', '{}')"
        )
        with pytest.raises(pg_errors.InsufficientPrivilege, match="row-level security"):
            with conn.transaction():
                _set_tenant(conn, a.id)
                conn.execute(insert, (b.id, uuid.uuid4()))
        with pytest.raises(pg_errors.InsufficientPrivilege, match="row-level security"):
            with conn.transaction():
                _set_tenant(conn, a.id)
                conn.execute(
                    "UPDATE communities SET tenant_id = %s WHERE tenant_id = %s", (b.id, a.id)
                )

        class Rollback(Exception):
            pass

        # The control: the same insert for the tenant that is set goes in.
        with pytest.raises(Rollback), conn.transaction():
            _set_tenant(conn, a.id)
            conn.execute(insert, (a.id, uuid.uuid4()))
            raise Rollback

        with conn.transaction():
            # SET LOCAL ends with the transaction: the next one starts with no tenant.
            for table in TABLES:
                assert _count(conn, table) == 0, table
            _set_tenant(conn, None)
            for table in TABLES:
                assert _count(conn, table) == 0, table


def test_the_app_role_cannot_switch_rls_off() -> None:
    with _app_connect() as conn:
        with pytest.raises(pg_errors.InsufficientPrivilege), conn.transaction():
            conn.execute("SET LOCAL row_security = off")
            conn.execute("SELECT count(*) FROM communities")
        with pytest.raises(pg_errors.InsufficientPrivilege), conn.transaction():
            conn.execute("ALTER TABLE communities NO FORCE ROW LEVEL SECURITY")
        with pytest.raises(pg_errors.InsufficientPrivilege), conn.transaction():
            conn.execute("DROP POLICY tenant_isolation ON communities")


def test_the_app_role_is_no_superuser_cannot_bypass_rls_and_owns_nothing() -> None:
    with _app_connect() as conn:
        row = conn.execute(
            "SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert row is not None
        user, superuser, bypass = row
        assert (superuser, bypass) == (False, False), user
        owned = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)"
            " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
        assert owned == []
        # Nor can it become the owner: membership would let it SET ROLE past RLS.
        member = conn.execute(
            "SELECT pg_has_role(current_user, c.relowner, 'MEMBER') FROM pg_class c"
            " WHERE c.oid = 'public.communities'::regclass"
        ).fetchone()
        assert member == (False,)
