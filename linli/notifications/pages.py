"""Console and portal pages of the notifications domain."""

from __future__ import annotations

from fastapi import APIRouter

from linli.auth.deps import DeclaredRoute

router = APIRouter(route_class=DeclaredRoute, include_in_schema=False)
