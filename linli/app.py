"""The FastAPI application: every domain's router, middleware and error handling."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from linli import __version__
from linli.config import Settings, get_settings
from linli.core import logging as linli_logging
from linli.core.http import BodyLimitMiddleware, RequestContextMiddleware, install_problem_handlers
from linli.core.lifecycle import run_shutdown_hooks
from linli.db.engine import dispose_engine, get_engine
from linli.db.reads import close_read_pool

API_ROUTERS = (
    "linli.core.health",
    "linli.tenancy.api",
    "linli.auth.api",
    "linli.auth.resident_api",
    "linli.imports.api",
    "linli.estate.api",
    "linli.residents.api",
    "linli.staff.api",
    "linli.billing.api",
    "linli.payments.api",
    "linli.access.api",
    "linli.workorders.api",
    "linli.notices.api",
    "linli.notifications.api",
    "linli.votes.api",
    "linli.platform.api",
)
PAGE_ROUTERS = (
    "linli.web.pages",
    "linli.imports.pages",
    "linli.estate.pages",
    "linli.auth.pages",
    "linli.staff.pages",
    "linli.billing.pages",
    "linli.payments.pages",
    "linli.access.pages",
    "linli.workorders.pages",
    "linli.notices.pages",
    "linli.notifications.pages",
    "linli.votes.pages",
    "linli.platform.pages",
)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    linli_logging.configure(settings.log_level, json=settings.log_json)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        get_engine(settings)
        # Everything loaded so far (modules, routes, schemas) lives as long as the process:
        # out of the collector's sight, a full collection no longer walks it, which keeps
        # collection pauses out of the request latency tail.
        gc.collect()
        gc.freeze()
        yield
        await run_shutdown_hooks()
        await close_read_pool()
        await dispose_engine()

    app = FastAPI(
        title="linli API",
        version=__version__,
        summary="Open smart-community platform (邻里)",
        openapi_url="/openapi.json",
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    import importlib

    for module_name in (*API_ROUTERS, *PAGE_ROUTERS):
        module = importlib.import_module(module_name)
        app.include_router(module.router)
        mount = getattr(module, "mount_static", None)
        if mount is not None:
            mount(app)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        # Spreadsheet uploads: the import service refuses files over its own limit
        # with a clearer message; the slack covers the multipart envelope.
        path_limits={
            "/api/v1/imports": settings.import_max_bytes + 1024 * 1024,
            "/console/imports": settings.import_max_bytes + 1024 * 1024,
        },
    )
    app.add_middleware(RequestContextMiddleware)
    _document_security(app)
    return app


def _document_security(app: FastAPI) -> None:
    """OpenAPI shows the bearer scheme on every operation that declares a permission."""
    from linli.auth.deps import document_bearer_scheme

    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_bearer_scheme(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
