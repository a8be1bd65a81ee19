"""FastAPI dependencies: who is calling, may they, and their unit of work.

An endpoint declares its permission by taking an ``Authorizer``:

    actor: Annotated[Actor, Depends(Authorizer(Permission.COMMUNITIES_READ))]

:class:`DeclaredRoute` finds that declaration and writes it into the OpenAPI
operation as ``x-linli-permission``; a test walks the schema and fails on any
operation without one.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Annotated, Any, cast

from fastapi import Depends, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession

from linli.auth.actor import Actor, PrincipalKind
from linli.auth.permissions import Permission
from linli.auth.tokens import decode_access_token
from linli.core.errors import PermissionDenied, Unauthorized
from linli.db.engine import unit_of_work

ALL_KINDS = tuple(PrincipalKind)


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


async def current_principal(request: Request) -> Actor | None:
    """The principal named by the Bearer token, or None. Once per request.

    The header is read here rather than through a ``HTTPBearer`` dependency: one
    dependency less on every request, and the scheme is still documented (see
    :func:`document_bearer_scheme`). A header of another scheme counts as absent.
    Dependencies call it directly (not through ``Depends``), which is why it keeps
    its answer on the request itself.
    """
    state = request.state
    known = getattr(state, "linli_principal", _UNSET)
    if known is not _UNSET:
        return cast("Actor | None", known)
    principal = await _principal_of(request)
    state.linli_principal = principal
    return principal


_UNSET = object()


async def _principal_of(request: Request) -> Actor | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    actor = decode_access_token(token, ALL_KINDS)
    stamped = _with_request(actor, request)
    if stamped.kind is PrincipalKind.APP:
        await _guard_app(stamped, request)
    return stamped


class AppHooks:
    """What the open platform plugs in for partner-app tokens (set by ``linli.platform``).

    ``guard`` refuses a revoked token or installation and counts rate limits;
    ``observe`` records the call in the company's access log after the handler ran.
    Without a guard an app token is refused: fail closed.
    """

    guard: Callable[[Actor, Request], Awaitable[None]] | None = None
    observe: Callable[[Request, Actor, Response | None, BaseException | None], None] | None = None


app_hooks = AppHooks()


async def _guard_app(actor: Actor, request: Request) -> None:
    request.state.linli_app = actor  # observed (logged) even when refused below
    if app_hooks.guard is None:
        raise Unauthorized("The access token is invalid.", code="token_invalid")
    await app_hooks.guard(actor, request)


def _with_request(actor: Actor, request: Request) -> Actor:
    # The verified actor is shared between requests (see tokens._VerifiedTokens);
    # each request gets its own copy carrying its request id and address. A shallow
    # copy plus two writes costs a fraction of dataclasses.replace's __init__ pass.
    stamped = copy.copy(actor)
    object.__setattr__(stamped, "request_id", getattr(request.state, "request_id", None))
    object.__setattr__(stamped, "ip", client_ip(request))
    return stamped


BEARER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "Access token from /api/v1/auth/*/token",
}


def document_bearer_scheme(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the bearer scheme to an OpenAPI schema and require it where a permission is."""
    schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = BEARER_SCHEME
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            permission = operation.get("x-linli-permission")
            if permission and permission != Permission.PUBLIC:
                operation.setdefault("security", [{"bearer": []}])
    return schema


class Authorizer:
    """Requires a principal of one of ``kinds`` holding ``permission``."""

    def __init__(
        self,
        permission: Permission,
        *,
        kinds: tuple[PrincipalKind, ...] = (PrincipalKind.STAFF,),
    ) -> None:
        self.permission = permission
        self.kinds = kinds

    async def __call__(self, request: Request) -> Actor:
        return authorize(await current_principal(request), self.permission, self.kinds)


def authorize(
    principal: Actor | None, permission: Permission, kinds: tuple[PrincipalKind, ...]
) -> Actor:
    if principal is None:
        raise Unauthorized()
    kind_ok = principal.kind in kinds or (
        # A partner app may do what staff may, within the scopes and communities it
        # was granted: its permissions come from its scopes (linli.platform.scopes).
        principal.kind is PrincipalKind.APP and PrincipalKind.STAFF in kinds
    )
    if not kind_ok or not principal.can(permission):
        raise PermissionDenied()
    return principal


class Public:
    """Declares an endpoint open to anyone (login, health). Returns the principal if any."""

    permission = Permission.PUBLIC

    async def __call__(self, request: Request) -> Actor | None:
        return await current_principal(request)


public = Public()


async def db_session(
    principal: Annotated[Actor | None, Depends(current_principal)],
) -> AsyncIterator[AsyncSession]:
    """The request's unit of work, bound to the caller's tenant; commits before the response."""
    async with unit_of_work(principal.tenant_id if principal else None) as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(db_session, scope="function")]


def declared_permission(dependant: Dependant) -> str | None:
    for sub in dependant.dependencies:
        call = sub.call
        permission = getattr(call, "permission", None)
        if isinstance(call, (Authorizer, Public)) or (
            permission is not None and getattr(call, "declares_permission", False)
        ):
            return str(permission)
        found = declared_permission(sub)
        if found:
            return found
    return None


class DeclaredRoute(APIRoute):
    """An APIRoute that publishes the permission its dependencies declare."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        permission = declared_permission(self.dependant)
        if permission:
            self.openapi_extra = {**(self.openapi_extra or {}), "x-linli-permission": permission}

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            # Only partner-app calls are observed; for everyone else this is one getattr.
            try:
                response = await handler(request)
            except BaseException as exc:
                _observe_app(request, None, exc)
                raise
            _observe_app(request, response, None)
            return response

        return handle


def _observe_app(request: Request, response: Response | None, exc: BaseException | None) -> None:
    actor = getattr(request.state, "linli_app", None)
    if actor is not None and app_hooks.observe is not None:
        app_hooks.observe(request, actor, response, exc)


Handler = Callable[..., Coroutine[Any, Any, Any]]
