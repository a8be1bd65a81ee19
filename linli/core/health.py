"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from linli.auth.deps import DeclaredRoute, public
from linli.core import mqtt
from linli.db.engine import get_engine

router = APIRouter(route_class=DeclaredRoute, tags=["health"])

Public = Annotated[object, Depends(public)]


@router.get("/healthz", summary="The process is up")
async def healthz(_: Public) -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database and the MQTT broker answer")
async def readyz(_: Public) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(2):
            async with get_engine().connect() as conn:
                await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # readiness reports, it does not raise
        checks["database"] = f"error: {type(exc).__name__}"
    checks["mqtt"] = "ok" if await mqtt.ping() else "error: unreachable"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(_: Public) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
