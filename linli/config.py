"""Settings. Every setting is an environment variable named ``LINLI_*``.

The README lists each one; keep that table in step with this file.
"""

from __future__ import annotations

import functools
import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_home() -> Path:
    return Path.home() / ".local" / "share" / "linli"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LINLI_", env_file=".env", extra="ignore")

    env: str = Field("dev", description="dev | test | prod; prod refuses the built-in dev secrets")
    home: Path = Field(
        default_factory=_default_home, description="data dir of embedded servers and keys"
    )

    # Database: owner DSN runs migrations; the app connects as a role that owns nothing.
    database_url: str | None = Field(
        None, description="owner/migration DSN; unset = embedded PostgreSQL under LINLI_HOME"
    )
    database_app_url: str | None = Field(
        None,
        description="DSN of the non-owner app role; default = database_url with user linli_app",
    )
    database_app_password: SecretStr = Field(
        SecretStr(""), description="password given to the linli_app role when migrate creates it"
    )
    database_pool_size: int = Field(10, description="connections per process")
    database_read_pool_size: int = Field(
        4, ge=1, le=100, description="connections per process of the one-round-trip read path"
    )

    mqtt_url: str | None = Field(
        None, description="mqtt://host:port of a broker; unset = embedded amqtt"
    )
    embedded_mqtt_port: int = Field(1884, description="port of the embedded broker")

    # Outbox delivery (workers).
    event_consumers: str = Field(
        "mqtt,notifications,platform-webhooks",
        description=(
            "comma-separated consumers of outbox events:"
            " mqtt, notifications, platform-webhooks, http-sink"
        ),
    )
    event_sink_url: str | None = Field(
        None, description="URL the http-sink consumer POSTs events to; unset = http-sink disabled"
    )
    event_sink_secret: SecretStr | None = Field(
        None, description="HMAC key of http-sink signatures; unset = derived from LINLI_SECRET_KEY"
    )
    event_sink_timeout_seconds: float = Field(10.0, description="http-sink request timeout")
    outbox_retention_days: int = Field(30, description="delivered events older than this go")
    worker_heartbeat_seconds: float = Field(10.0, description="how often a worker says it lives")
    worker_poll_seconds: float = Field(
        0.2,
        gt=0,
        le=60,
        description=(
            "how often an idle worker looks for new jobs (jobs raise no NOTIFY: it would"
            " serialise every committing transaction that queues one)"
        ),
    )
    worker_stalled_seconds: float = Field(
        30.0, description="a worker silent this long is dead; its jobs are run again"
    )
    worker_shutdown_seconds: float = Field(
        30.0, description="on SIGTERM, time running jobs get to finish before being requeued"
    )

    secret_key: SecretStr | None = Field(
        None,
        description="signs tokens and cookies; unset in dev = a key generated under LINLI_HOME",
    )
    data_key: SecretStr | None = Field(
        None, description="encrypts personal data at rest (32-byte urlsafe base64); dev: generated"
    )
    access_token_minutes: int = Field(15, description="lifetime of access tokens")
    refresh_token_days: int = Field(30, description="lifetime of a refresh-token family")
    refresh_reuse_seconds: int = Field(
        30,
        ge=0,
        le=300,
        description="seconds a rotated refresh token still yields its successor (racing tabs)",
    )

    login_max_failures: int = Field(5, description="failed logins before an account locks")
    login_lock_minutes: int = Field(15, description="how long a locked account stays locked")
    rate_limit_url: str = Field(
        "memory://", description="limits storage: memory:// or redis://host"
    )
    login_rate_per_ip: str = Field("20/minute", description="login attempts per client IP")
    login_rate_per_account: str = Field(
        "10/minute", description="login attempts per company and login name (known or not)"
    )
    otp_rate_per_phone: str = Field("5/hour", description="OTP codes sent per phone")
    otp_rate_per_ip: str = Field("20/hour", description="OTP codes sent per client IP")
    otp_ttl_seconds: int = Field(300, description="how long a one-time code is valid")
    otp_max_attempts: int = Field(5, description="wrong guesses before a code is burnt")
    otp_verify_rate_per_phone: str = Field("20/hour", description="code checks per phone")
    otp_verify_rate_per_ip: str = Field("60/hour", description="code checks per client IP")

    sms_provider: str = Field("log", description="log (writes the code to the log) or http")
    sms_http_url: str | None = Field(None, description="endpoint of the http SMS provider")
    sms_http_key_id: str = Field("linli", description="API key id sent to the http SMS provider")
    sms_http_secret: SecretStr | None = Field(
        None, description="HMAC secret that signs requests to the http SMS provider"
    )
    sms_http_template: str = Field("login_code", description="SMS template name at the provider")
    sms_http_timeout_seconds: float = Field(5.0, description="http SMS provider request timeout")

    wechat_appid: str = Field("wx-demo-appid", description="WeChat public account appid")
    wechat_secret: SecretStr = Field(SecretStr("wx-demo-secret"), description="its AppSecret")
    wechat_api_base: str = Field("https://api.weixin.qq.com", description="WeChat API base URL")
    wechat_open_base: str = Field(
        "https://open.weixin.qq.com", description="WeChat authorize page base URL"
    )
    wechat_state_max_age_seconds: int = Field(
        600, description="how long a WeChat sign-in may take between authorize and callback"
    )
    wechat_timeout_seconds: float = Field(10.0, description="WeChat API request timeout")

    max_body_bytes: int = Field(1_048_576, description="largest request body accepted")
    import_max_bytes: int = Field(
        50 * 1024 * 1024, description="largest spreadsheet accepted by bulk import (bytes)"
    )
    default_locale: str = Field("zh_CN", description="zh_CN or en")
    public_url: str = Field("http://127.0.0.1:8000", description="how users reach this server")
    cookie_secure: bool = Field(False, description="mark cookies Secure (set true behind HTTPS)")
    log_level: str = Field("INFO", description="DEBUG | INFO | WARNING")
    log_json: bool = Field(True, description="JSON logs (false = readable console lines)")

    def home_dir(self) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        return self.home

    def _dev_secret(self, name: str, nbytes: int) -> str:
        """A per-installation secret kept under LINLI_HOME, so dev restarts keep sessions."""
        if self.env == "prod":
            raise RuntimeError(f"LINLI_{name.upper()} must be set when LINLI_ENV=prod")
        return _dev_secret_file(str(self.home), name, nbytes)

    def signing_key(self) -> str:
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        return self._dev_secret("secret_key", 48)

    def encryption_key(self) -> str:
        if self.data_key is not None:
            return self.data_key.get_secret_value()
        import base64

        path = self.home_dir() / "data_key.key"
        if self.env == "prod":
            raise RuntimeError("LINLI_DATA_KEY must be set when LINLI_ENV=prod")
        if not path.exists():
            path.write_text(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
            path.chmod(0o600)
        return path.read_text().strip()


@lru_cache
@functools.lru_cache(maxsize=16)
def _dev_secret_file(home: str, name: str, nbytes: int) -> str:
    """Read (creating once) a dev secret; cached, as every request signs or checks a token."""
    path = Path(home) / f"{name}.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(nbytes))
        path.chmod(0o600)
    return path.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    return Settings()


def settings_classes() -> list[type[BaseSettings]]:
    """:class:`Settings`, then each domain's own settings class (``linli/<domain>/settings.py``).

    A domain may keep its settings beside its code, under its own ``LINLI_<X>_``
    prefix; the README table and its test cover them all through this list.
    """
    import importlib
    import inspect
    import pkgutil

    import linli

    found: list[type[BaseSettings]] = [Settings]
    for package in sorted(pkgutil.iter_modules(linli.__path__), key=lambda p: p.name):
        if not package.ispkg:
            continue
        if not (Path(linli.__path__[0]) / package.name / "settings.py").exists():
            continue
        module = importlib.import_module(f"linli.{package.name}.settings")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseSettings) and cls.__module__ == module.__name__:
                found.append(cls)
    return found


def env_name(cls: type[BaseSettings], field: str) -> str:
    prefix = str(cls.model_config.get("env_prefix") or "")
    return f"{prefix}{field}".upper()
