"""Settings of the access-control domain (``LINLI_ACCESS_*``)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class AccessSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LINLI_ACCESS_", env_file=".env", extra="ignore")

    ingest_id: str = Field(
        "linli-access-ingest",
        pattern=r"^[A-Za-z0-9._-]{1,64}$",
        description=(
            "MQTT client id of the event ingest's persistent session: the broker keeps"
            " events for it while it restarts; one id per ingest process"
        ),
    )


@lru_cache
def get_access_settings() -> AccessSettings:
    return AccessSettings()
