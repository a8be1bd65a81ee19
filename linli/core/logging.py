"""Structured JSON logs (structlog) with the request id, never with personal data.

The redaction processor is the last line of defence: code should not log phones
or tokens in the first place, but if a value slips through it is masked here.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO, cast

import orjson
import structlog

SENSITIVE_KEYS = re.compile(
    r"(password|passwd|secret|token|authorization|cookie|phone|mobile|id_card|idcard|code|otp)",
    re.IGNORECASE,
)
PHONE = re.compile(r"(?<!\d)(?:\+?86)?1[3-9]\d{9}(?!\d)")
BEARER = re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]+")
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
ID_CARD = re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)")

# Keys whose value is safe though the name looks sensitive.
SAFE_KEYS = {"status_code", "code_kind", "error_code", "problem_code", "event"}
# Values linli itself fills in on every line (the access log's fields among them): they
# hold no personal data by construction, so the per-line pattern scan skips them. The
# message and any path are still scanned: code writes those.
TRUSTED_KEYS = frozenset({"level", "timestamp", "logger", "request_id", "method", "status", "ms"})


def _mask_text(value: str) -> str:
    value = BEARER.sub("Bearer [redacted]", value)
    value = JWT.sub("[token]", value)
    value = ID_CARD.sub("[id-card]", value)
    return PHONE.sub("[phone]", value)


def _redact(value: Any, key: str = "") -> Any:
    if key and key not in SAFE_KEYS and SENSITIVE_KEYS.search(key):
        return "[redacted]"
    if isinstance(value, str):
        return _mask_text(value)
    if isinstance(value, dict):
        return {k: _redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact(v) for v in value]
    return value


def redact_processor(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
    return {k: v if k in TRUSTED_KEYS else _redact(v, k) for k, v in event_dict.items()}


def _json_line(event: Any, **_: Any) -> str:
    # orjson: a third of the stdlib encoder's time per line; non-JSON values as str().
    return orjson.dumps(event, default=str).decode()


def configure(level: str = "INFO", *, json: bool = True) -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_json_line)
        if json
        else structlog.dev.ConsoleRenderer()
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    structlog.configure(
        processors=[*shared, redact_processor, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=cast(TextIO, _CurrentStderr())),
        cache_logger_on_first_use=True,
    )
    # Route stdlib logging (uvicorn, procrastinate, alembic) through the same redaction.
    handler = _CurrentStderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                redact_processor,
                renderer,
            ],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    logging.getLogger("uvicorn.access").disabled = True  # our middleware logs requests
    # The embedded broker narrates every connection's state machine at INFO (ten lines
    # per MQTT connection); its warnings and errors still come through.
    for chatty in ("amqtt", "transitions"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLevelName(level)))


class _CurrentStderr:
    """A file that is whatever sys.stderr is at write time (test runners swap and close it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is now (test runners swap and close it)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
