"""Settings of online payments (``LINLI_PAYMENTS_*``)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PaymentsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LINLI_PAYMENTS_", env_file=".env", extra="ignore")

    public_url: str = Field(
        "http://127.0.0.1:8000",
        pattern=r"^https?://[^\s?#]+$",
        description=(
            "Base URL at which the payment providers reach this app: notifications are"
            " posted to {public_url}/api/v1/payments/notify/{provider}/{merchant_account_id}"
        ),
    )
    order_ttl_minutes: int = Field(
        30, ge=5, le=1440, description="A payment order not paid within this time is closed"
    )
    sandbox_wechatpay_url: str = Field(
        "",
        description=(
            "Demo only: the WeChat Pay sandbox (`linli sandbox-pay`); when set, the portal"
            " sends the payer to its pay page instead of the WeChat Pay sheet"
        ),
    )
    sandbox_alipay_url: str = Field(
        "", description="Demo only: the Alipay sandbox, like sandbox_wechatpay_url"
    )
    bench_verify_endpoint: bool = Field(
        False,
        description=(
            "Benchmarks only: serve POST /api/v1/payments/notify/{provider}/{id}/verify, which"
            " verifies and decrypts a notification and stops there (the payment-notify"
            " benchmark's limit); off in production"
        ),
    )


@lru_cache
def get_payments_settings() -> PaymentsSettings:
    return PaymentsSettings()
