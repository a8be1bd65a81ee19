"""Registry of id makers for the cross-company sweep in ``tests/core/test_tenant_isolation.py``.

The sweep walks the OpenAPI schema and calls every GET/PUT/PATCH/DELETE operation
that has a ``{..._id}`` path parameter with company A's ids and company B's
token. It needs real ids of company A, one per path-parameter name; a domain
provides them by adding ``tests/<domain>/isolation_ids.py``:

    from tests.isolation import IsolationContext, id_maker

    @id_maker("building_id")
    async def a_building(ctx: IsolationContext) -> uuid.UUID:
        ...make one in ctx.company (services + unit_of_work, or ctx.client as ctx.admin)...

The sweep imports every such module. A new endpoint whose parameter has no
maker fails the sweep, naming the parameter: coverage cannot silently lapse.
A PATCH/PUT whose body needs fields to get past validation registers a sample
with :func:`sample_body`.
"""

from __future__ import annotations

import importlib
import pkgutil
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.factories import Company, bearer, make_staff, staff_token


@dataclass
class IsolationContext:
    """Company A as the sweep sees it; makers may cache what they made in ``made``."""

    company: Company
    client: Any  # httpx.AsyncClient on the app
    made: dict[str, Any] = field(default_factory=dict)

    @property
    def admin(self) -> dict[str, str]:
        return bearer(staff_token(self.company))


IdMaker = Callable[[IsolationContext], Awaitable[uuid.UUID | str]]

ID_MAKERS: dict[str, IdMaker] = {}
SAMPLE_BODIES: dict[tuple[str, str], dict[str, Any]] = {}


def id_maker(*params: str) -> Callable[[IdMaker], IdMaker]:
    def register(maker: IdMaker) -> IdMaker:
        for param in params:
            known = ID_MAKERS.get(param)
            if known is not None and known is not maker:
                raise ValueError(
                    f"two id makers for {{{param}}}: {known.__module__} and {maker.__module__}"
                )
            ID_MAKERS[param] = maker
        return maker

    return register


def sample_body(method: str, path: str, body: dict[str, Any]) -> None:
    """A body that passes validation for ``method path`` (default: ``{}``)."""
    SAMPLE_BODIES[(method.lower(), path)] = body


def load_domain_makers() -> dict[str, IdMaker]:
    """Import every ``tests/<package>/isolation_ids.py`` so its makers register."""
    root = Path(__file__).resolve().parent
    for package in pkgutil.iter_modules([str(root)]):
        if package.ispkg and (root / package.name / "isolation_ids.py").exists():
            importlib.import_module(f"tests.{package.name}.isolation_ids")
    return ID_MAKERS


@id_maker("community_id")
async def a_community(ctx: IsolationContext) -> uuid.UUID:
    return ctx.company.communities[0]


@id_maker("staff_user_id")
async def a_staff_user(ctx: IsolationContext) -> uuid.UUID:
    return await make_staff(
        ctx.company, community_ids=ctx.company.communities[:1], username="isolation-target"
    )
