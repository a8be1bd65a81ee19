"""Settings of the billing domain (``LINLI_BILLING_*``)."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class BillingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LINLI_BILLING_", env_file=".env", extra="ignore")

    meter_jump_factor: Decimal = Field(
        Decimal(5),
        ge=Decimal("1.5"),
        le=Decimal(100),
        description=(
            "A meter reading whose usage is more than this many times the average of the"
            " house's last readings is flagged as a jump and not billed until confirmed"
        ),
    )
    meter_import_max_rows: int = Field(
        20000,
        ge=100,
        le=200000,
        description="Most rows one meter-reading spreadsheet may hold",
    )


@lru_cache
def get_billing_settings() -> BillingSettings:
    return BillingSettings()
