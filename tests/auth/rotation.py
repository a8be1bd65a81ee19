"""Moving a refresh token's rotation into the past, beyond the reuse interval."""

from __future__ import annotations

import psycopg

from linli.auth.tokens import hash_secret
from linli.config import get_settings


def age_rotation(refresh_token: str, *, table: str, seconds: int = 3600) -> None:
    """``table`` is staff_refresh_tokens or resident_refresh_tokens (a constant, not input)."""
    assert table in ("staff_refresh_tokens", "resident_refresh_tokens")
    with psycopg.connect(get_settings().database_url or "") as conn:
        conn.execute(
            f"UPDATE {table} SET used_at = used_at - make_interval(secs => %s)"
            " WHERE token_hash = %s",
            (seconds, hash_secret(refresh_token)),
        )
