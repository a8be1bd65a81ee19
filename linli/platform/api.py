"""Routes of the open platform. Thin: parse, call the service, shape the answer."""

from __future__ import annotations

from fastapi import APIRouter

from linli.auth.deps import DeclaredRoute

router = APIRouter(prefix="/api/v1/platform", route_class=DeclaredRoute, tags=["platform"])
