"""Routes of the notifications domain. Thin: parse, call the service, shape the answer."""

from __future__ import annotations

from fastapi import APIRouter

from linli.auth.deps import DeclaredRoute

router = APIRouter(
    prefix="/api/v1/notifications", route_class=DeclaredRoute, tags=["notifications"]
)
