"""Developer portal and the company's app directory and data-sovereignty pages."""

from __future__ import annotations

from fastapi import APIRouter

from linli.auth.deps import DeclaredRoute

router = APIRouter(route_class=DeclaredRoute, include_in_schema=False)
