"""``Idempotency-Key``: a repeated request gets the stored response, not a second effect.

The key row is inserted in the same transaction as the change. A concurrent
duplicate blocks on that row until the first commits, then replays its
response; if the first rolls back, the key is free again. A different body
with the same key is a client bug and gets 422.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from linli.auth.actor import Actor
from linli.core.errors import FieldError, ValidationFailed
from linli.core.models import IdempotencyKey

REPLAY_HEADER = "Idempotent-Replayed"


class Idempotency:
    def __init__(self, key: str | None, request_hash: str) -> None:
        self.key = key
        self.request_hash = request_hash

    async def run(
        self,
        session: AsyncSession,
        actor: Actor,
        action: Callable[[], Awaitable[Any]],
        *,
        status_code: int = 200,
    ) -> Any:
        """Run ``action`` once per key; return its result or the stored replay."""
        if not self.key:
            return await action()
        principal = actor.principal
        inserted = await session.execute(
            insert(IdempotencyKey)
            .values(principal=principal, key=self.key, request_hash=self.request_hash)
            .on_conflict_do_nothing()
            .returning(IdempotencyKey.key)
        )
        if inserted.first() is None:
            stored = (
                await session.execute(
                    select(IdempotencyKey).where(
                        IdempotencyKey.principal == principal, IdempotencyKey.key == self.key
                    )
                )
            ).scalar_one()
            if stored.request_hash != self.request_hash:
                raise ValidationFailed(
                    "This Idempotency-Key was used with a different request.",
                    code="idempotency_key_reused",
                    errors=[FieldError("Idempotency-Key", "used with a different body", "reused")],
                )
            return JSONResponse(
                stored.response_body,
                status_code=stored.status_code or 200,
                headers={REPLAY_HEADER: "true"},
            )
        result = await action()
        body = jsonable_encoder(result)
        stored = (
            await session.execute(
                select(IdempotencyKey).where(
                    IdempotencyKey.principal == principal, IdempotencyKey.key == self.key
                )
            )
        ).scalar_one()
        stored.status_code = status_code
        stored.response_body = body
        await session.flush()
        return result


async def idempotency(
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=8,
            max_length=200,
            description="Repeat-safe key: the same key and body replay the first response",
        ),
    ] = None,
) -> Idempotency:
    body = await request.body()
    digest = hashlib.sha256(
        request.method.encode() + b" " + request.url.path.encode() + b"\n" + body
    )
    return Idempotency(idempotency_key, digest.hexdigest())


IdempotencyDep = Annotated[Idempotency, Depends(idempotency)]
