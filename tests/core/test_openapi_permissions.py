"""Every operation declares its permission, and what it declares is what it enforces."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI

from linli.auth.actor import Actor
from linli.auth.deps import Authorizer, DeclaredRoute
from linli.auth.permissions import Permission

METHODS = ("get", "put", "post", "patch", "delete", "head", "options")
KNOWN = {p.value for p in Permission}
OPEN = {Permission.PUBLIC.value}


def operations(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method]


def undeclared(schema: dict[str, Any]) -> list[str]:
    """Operations with no permission, or one that is not a known :class:`Permission`."""
    bad = []
    for method, path, operation in operations(schema):
        declared = operation.get("x-linli-permission")
        if declared not in KNOWN:
            bad.append(f"{method.upper()} {path}: {declared!r}")
    return bad


def test_every_operation_declares_a_known_permission(app) -> None:
    schema = app.openapi()
    found = list(operations(schema))
    assert len(found) > 20  # the walk sees the real API, not an empty schema
    assert undeclared(schema) == []


def test_the_walk_catches_an_undeclared_endpoint() -> None:
    """The guard above must be able to fail: an endpoint without an Authorizer is reported."""
    router = APIRouter(route_class=DeclaredRoute)

    @router.get("/declared")
    async def declared(_: Annotated[Actor, Depends(Authorizer(Permission.STAFF_READ))]) -> None:
        return None

    @router.get("/forgotten")
    async def forgotten() -> None:
        return None

    probe = FastAPI()
    probe.include_router(router)
    assert undeclared(probe.openapi()) == ["GET /forgotten: None"]


def _fill(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda _: str(uuid.uuid4()), path)


async def test_no_protected_operation_answers_an_anonymous_caller(app, client) -> None:
    """A declared permission is enforced before anything else runs: anonymous gets 401."""
    checked = 0
    for method, path, operation in operations(app.openapi()):
        if operation.get("x-linli-permission") in OPEN:
            continue
        response = await client.request(method.upper(), _fill(path))
        assert response.status_code == 401, (
            method,
            path,
            response.status_code,
            response.text[:200],
        )
        assert response.headers["content-type"].startswith("application/problem+json")
        checked += 1
    assert checked > 10
