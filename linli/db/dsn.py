"""Which database linli talks to, as which role."""

from __future__ import annotations

from sqlalchemy.engine import make_url

from linli.config import Settings
from linli.db.rls import APP_ROLE


def owner_dsn(settings: Settings) -> str:
    """The DSN that owns the schema and runs migrations (libpq form)."""
    if settings.database_url:
        return _libpq(settings.database_url)
    from linli.db import embedded

    return embedded.start(settings.home_dir() / "pgdata")


def app_dsn(settings: Settings) -> str:
    """The DSN of the role the application uses: it owns nothing and cannot bypass RLS."""
    if settings.database_app_url:
        return _libpq(settings.database_app_url)
    url = make_url(owner_dsn(settings)).set(
        username=APP_ROLE, password=settings.database_app_password.get_secret_value() or None
    )
    return url.render_as_string(hide_password=False)


def sqlalchemy_url(dsn: str) -> str:
    """psycopg 3 driver URL for SQLAlchemy."""
    url = make_url(dsn)
    return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def _libpq(dsn: str) -> str:
    url = make_url(dsn)
    return url.set(drivername="postgresql").render_as_string(hide_password=False)
