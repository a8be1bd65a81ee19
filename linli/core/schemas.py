"""Base of every API shape: unknown fields are an error, not silently dropped."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_has_nul(v) for v in value)
    return False


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _refuse_nul(cls, value: Any) -> Any:
        # PostgreSQL text and jsonb cannot hold NUL: refuse it here as a 422 naming the
        # field, instead of a database error (500) deep inside a service.
        if _has_nul(value):
            raise ValueError("Text must not contain NUL characters.")
        return value


class ReadSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True)
