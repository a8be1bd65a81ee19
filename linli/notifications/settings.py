"""Settings of the notifications domain (``LINLI_NOTIFY_*``).

Kept beside the domain so the service desk could be built alongside others;
the lead folds them into the README's settings table. The WeChat account
itself (appid, secret, API base) and the SMS provider are the shared
``LINLI_WECHAT_*`` and ``LINLI_SMS_*`` settings of :mod:`linli.config`.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class NotificationSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LINLI_NOTIFY_", env_file=".env", extra="ignore")

    wechat_templates: dict[str, str] = Field(
        default_factory=dict,
        description=(
            'JSON: notification template -> WeChat template_id, e.g. {"workorder.assigned": "Xy…"};'
            " a template without one is not sent by WeChat (logged as skipped)"
        ),
    )
    max_attempts: int = Field(6, description="tries of one SMS/WeChat delivery before it fails")
    retry_base_seconds: int = Field(
        4, description="first retry wait; doubles per attempt (4, 8, 16 … s), capped at an hour"
    )
    portal_url: str = Field(
        "", description="link in WeChat messages; unset = LINLI_PUBLIC_URL + the message's link"
    )


@lru_cache
def get_notification_settings() -> NotificationSettings:
    return NotificationSettings()
