"""Sync and async clients for one installation of a partner app."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

TOKEN_PATH = "/api/v1/platform/oauth/token"  # noqa: S105 - a path, not a secret
# Every public path the SDK calls (a test checks them against linli's OpenAPI).
PATHS: dict[str, tuple[str, str]] = {
    "token": ("post", TOKEN_PATH),
    "houses": ("get", "/api/v1/estate/houses"),
    "residents": ("get", "/api/v1/residents"),
    "resident": ("get", "/api/v1/residents/{resident_id}"),
    "courier_pass": ("post", "/api/v1/access/courier-passes"),
    "notify": ("post", "/api/v1/platform/app/notifications"),
    "parcel": ("post", "/api/v1/platform/app/parcels"),
    "introspect": ("post", "/api/v1/platform/oauth/introspect"),
}
RENEW_BEFORE_SECONDS = 30


class ApiError(Exception):
    """linli answered with an error: ``status`` and the problem's or OAuth error's ``code``."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Installation:
    """Where the app acts: the company (tenant) and its installation there.

    Both ids arrive with the ``platform.app.installed`` webhook.
    """

    tenant_id: uuid.UUID | str
    installation_id: uuid.UUID | str


@dataclass
class _Token:
    value: str = ""
    expires_at: float = 0.0
    scope: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fresh(self) -> bool:
        return bool(self.value) and time.time() < self.expires_at - RENEW_BEFORE_SECONDS


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        body = response.json()
    except ValueError:
        body = {}
    code = str(body.get("code") or body.get("error") or "error")
    detail = str(body.get("detail") or body.get("error_description") or response.text[:200])
    raise ApiError(response.status_code, code, detail)


def _token_form(client_id: str, installation: Installation, scope: str | None) -> dict[str, str]:
    form = {
        "grant_type": "client_credentials",
        "tenant_id": str(installation.tenant_id),
        "installation_id": str(installation.installation_id),
    }
    if scope:
        form["scope"] = scope
    return form


class LinliClient:
    """Synchronous client. ``with LinliClient(...) as linli: linli.houses()``."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        installation: Installation,
        *,
        scope: str | None = None,
        timeout: float = 10.0,
        http: httpx.Client | None = None,
    ) -> None:
        self.installation = installation
        self._auth = (client_id, client_secret)
        self._scope = scope
        self._http = http or httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)
        self._token = _Token()

    def __enter__(self) -> LinliClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def access_token(self) -> str:
        with self._token.lock:
            if not self._token.fresh():
                response = self._http.post(
                    TOKEN_PATH,
                    data=_token_form(self._auth[0], self.installation, self._scope),
                    auth=self._auth,
                )
                _raise_for(response)
                body = response.json()
                self._token.value = body["access_token"]
                self._token.expires_at = time.time() + int(body["expires_in"])
                self._token.scope = body.get("scope", "")
            return self._token.value

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.access_token()}", **kwargs.pop("headers", {})}
        response = self._http.request(method, path, headers=headers, **kwargs)
        _raise_for(response)
        return response.json() if response.content else None

    # --- typed helpers over the public API -----------------------------------------------

    def houses(self, **params: Any) -> list[dict[str, Any]]:
        return list(self.request("GET", PATHS["houses"][1], params=params)["items"])

    def residents(self, **params: Any) -> list[dict[str, Any]]:
        return list(self.request("GET", PATHS["residents"][1], params=params)["items"])

    def resident(self, resident_id: uuid.UUID | str) -> dict[str, Any]:
        path = PATHS["resident"][1].format(resident_id=resident_id)
        result: dict[str, Any] = self.request("GET", path)
        return result

    def issue_courier_pass(
        self,
        *,
        community_id: uuid.UUID | str,
        name: str,
        valid_from: str,
        valid_until: str,
        entries: int | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        body = {
            "community_id": str(community_id),
            "name": name,
            "valid_from": valid_from,
            "valid_until": valid_until,
            "entries": entries,
        }
        headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
        result: dict[str, Any] = self.request(
            "POST", PATHS["courier_pass"][1], json=body, headers=headers
        )
        return result

    def notify_parcel(
        self, *, resident_id: uuid.UUID | str, place: str, code: str
    ) -> dict[str, Any]:
        body = {"resident_id": str(resident_id), "place": place, "code": code}
        result: dict[str, Any] = self.request("POST", PATHS["parcel"][1], json=body)
        return result

    def notify(
        self, *, resident_id: uuid.UUID | str, title: str, body: str, link: str = ""
    ) -> dict[str, Any]:
        payload = {"resident_id": str(resident_id), "title": title, "body": body, "link": link}
        result: dict[str, Any] = self.request("POST", PATHS["notify"][1], json=payload)
        return result


class AsyncLinliClient:
    """Asynchronous client with the same helpers: ``await linli.houses()``."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        installation: Installation,
        *,
        scope: str | None = None,
        timeout: float = 10.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        import asyncio

        self.installation = installation
        self._auth = (client_id, client_secret)
        self._scope = scope
        self._http = http or httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout)
        self._token = _Token()
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> AsyncLinliClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def access_token(self) -> str:
        async with self._lock:
            if not self._token.fresh():
                response = await self._http.post(
                    TOKEN_PATH,
                    data=_token_form(self._auth[0], self.installation, self._scope),
                    auth=self._auth,
                )
                _raise_for(response)
                body = response.json()
                self._token.value = body["access_token"]
                self._token.expires_at = time.time() + int(body["expires_in"])
                self._token.scope = body.get("scope", "")
            return self._token.value

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        token = await self.access_token()
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        response = await self._http.request(method, path, headers=headers, **kwargs)
        _raise_for(response)
        return response.json() if response.content else None

    async def houses(self, **params: Any) -> list[dict[str, Any]]:
        return list((await self.request("GET", PATHS["houses"][1], params=params))["items"])

    async def residents(self, **params: Any) -> list[dict[str, Any]]:
        return list((await self.request("GET", PATHS["residents"][1], params=params))["items"])

    async def issue_courier_pass(
        self,
        *,
        community_id: uuid.UUID | str,
        name: str,
        valid_from: str,
        valid_until: str,
        entries: int | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        body = {
            "community_id": str(community_id),
            "name": name,
            "valid_from": valid_from,
            "valid_until": valid_until,
            "entries": entries,
        }
        headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
        result: dict[str, Any] = await self.request(
            "POST", PATHS["courier_pass"][1], json=body, headers=headers
        )
        return result

    async def notify_parcel(
        self, *, resident_id: uuid.UUID | str, place: str, code: str
    ) -> dict[str, Any]:
        body = {"resident_id": str(resident_id), "place": place, "code": code}
        result: dict[str, Any] = await self.request("POST", PATHS["parcel"][1], json=body)
        return result
