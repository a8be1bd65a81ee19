"""``linli`` commands against the real test database: help, tenants, users, db url, errors."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from linli.cli import app
from tests.auth.staff_helpers import sign_in
from tests.cli.helpers import assert_clear_error, linli
from tests.factories import PASSWORD, bearer, make_company

COMMANDS = [
    [],
    ["serve"],
    ["worker"],
    ["demo"],
    ["migrate"],
    ["seed"],
    ["bench"],
    ["db"],
    ["db", "url"],
    ["tenant"],
    ["tenant", "create"],
    ["user"],
    ["user", "create"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "linli")
def test_every_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_help_lists_every_command() -> None:
    output = CliRunner().invoke(app, ["--help"]).output
    for name in ("serve", "worker", "demo", "migrate", "seed", "bench", "db", "tenant", "user"):
        assert f" {name} " in output, name
    assert "settings-table" not in output  # a hidden maintenance command


def test_db_url_prints_the_owner_and_the_app_dsn(owner_dsn: str) -> None:
    owner = linli("db", "url", "--owner")
    assert owner.returncode == 0, owner.stderr
    assert make_url(owner.stdout.strip()) == make_url(owner_dsn).set(drivername="postgresql")
    app_dsn = make_url(linli("db", "url").stdout.strip())
    assert app_dsn.username == "linli_app"
    assert app_dsn.database == make_url(owner_dsn).database


def test_migrate_is_repeatable() -> None:
    done = linli("migrate")
    assert done.returncode == 0, done.stderr
    assert "up to date" in done.stdout


async def test_tenant_create_then_its_admin_signs_in(client) -> None:
    slug = f"cli-{secrets.token_hex(4)}"
    done = linli(
        "tenant", "create", "--slug", slug, "--name", "命令行物业",
        "--admin-username", "boss", "--admin-password", PASSWORD,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert slug in done.stdout
    assert (await sign_in(client, slug, "boss")).status_code == 200

    again = linli("tenant", "create", "--slug", slug, "--name", "x", "--admin-password", PASSWORD)
    assert_clear_error(again, "tenant_slug_taken")


async def test_user_create_staff_with_roles_and_community_grants(client) -> None:
    company = await make_company(communities=2)
    done = linli(
        "user", "create", "--tenant", company.slug, "--username", "desk1", "--password", PASSWORD,
        "--display-name", "前台一", "--role", "front_desk", "--community", "C02",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    signed_in = await sign_in(client, company, "desk1")
    assert signed_in.status_code == 200, signed_in.text
    token = signed_in.json()["access_token"]
    listed = (await client.get("/api/v1/communities", headers=bearer(token))).json()
    assert [c["id"] for c in listed["items"]] == [str(company.communities[1])]
    me = (await client.get("/api/v1/auth/me", headers=bearer(token))).json()
    assert "front_desk" in str(me)


async def test_user_create_operator_then_it_signs_in(client) -> None:
    username = f"op{secrets.token_hex(3)}"
    done = linli("user", "create", "--operator", "--username", username, "--password", PASSWORD)
    assert done.returncode == 0, done.stderr
    response = await client.post(
        "/api/v1/auth/operator/token", json={"username": username, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text


async def test_unknown_company_or_community_is_a_clear_error() -> None:
    company = await make_company(communities=1)
    base = ["user", "create", "--username", "someone", "--password", PASSWORD, "--role", "cashier"]
    assert_clear_error(linli(*base, "--tenant", "no-such-co"), "no-such-co")
    assert_clear_error(linli(*base, "--tenant", company.slug, "--community", "NOPE"), "NOPE")


BASE = ["user", "create", "--username", "someone", "--password", PASSWORD]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ([*BASE, "--role", "cashier"], "--tenant"),
        ([*BASE[:-1], "short", "--tenant", "co", "--role", "cashier"], "--password"),
        ([*BASE, "--tenant", "co"], "roles"),
        ([*BASE, "--operator", "--tenant", "co"], "--operator"),
        ([*BASE[:-1], "short", "--operator"], "--password"),
        (
            [
                "tenant",
                "create",
                "--slug",
                "Bad Slug!",
                "--name",
                "x",
                "--admin-password",
                PASSWORD,
            ],
            "--slug",
        ),
        (["seed"], "--demo"),
    ],
)
def test_bad_input_gets_a_clear_error_not_a_traceback(args: list[str], fragment: str) -> None:
    # Refused before any database work, so in-process is enough here.
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "error:" in result.stderr and fragment in result.stderr, result.stderr
    assert "Traceback" not in result.output


def test_an_unknown_role_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, [*BASE, "--tenant", "co", "--role", "emperor"])
    assert result.exit_code == 2
    assert "emperor" in result.stderr and "Traceback" not in result.output


async def test_seed_houses_generates_estate_data_into_the_named_company(client) -> None:
    from sqlalchemy import func, select

    from linli.db.engine import unit_of_work
    from linli.estate.models import House, ParkingSpace

    company = await make_company(communities=0)
    done = linli("seed", "--houses", "300", "--tenant", company.slug)
    assert done.returncode == 0, done.stderr
    assert "300 houses" in done.stdout
    assert "parking areas" in done.stdout
    async with unit_of_work(company.id) as session:
        assert await session.scalar(select(func.count()).select_from(House)) == 300
        assert await session.scalar(select(func.count()).select_from(ParkingSpace)) > 0
    assert_clear_error(linli("seed", "--houses", "5", "--tenant", "no-such-co"), "no-such-co")
    assert_clear_error(linli("seed"), "nothing to seed")
