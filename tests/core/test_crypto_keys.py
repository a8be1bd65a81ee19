"""The derived data keys are cached, but a settings change (a new key) is followed."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag
from pydantic import SecretStr

from linli.config import get_settings
from linli.core import crypto


def test_batch_api_matches_single_calls() -> None:
    values = ["13800138000", None, "13900139000"]
    assert crypto.blind_index_many(values) == [
        crypto.blind_index("13800138000"),
        None,
        crypto.blind_index("13900139000"),
    ]
    encrypted = crypto.encrypt_many(values)
    assert encrypted[1] is None
    assert [crypto.decrypt(b) for b in encrypted if b is not None] == [values[0], values[2]]
    assert encrypted[0] != crypto.encrypt_many(values)[0]  # a fresh nonce each time


def test_a_new_key_in_settings_is_used_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    blob = crypto.encrypt("13800138000")
    index = crypto.blind_index("13800138000")
    # Another Settings object, as after get_settings.cache_clear() with a new LINLI_DATA_KEY;
    # the global settings cache is left alone (other modules hold the current object).
    other = get_settings().model_copy(
        update={"data_key": SecretStr("YW5vdGhlci1rZXktZm9yLWEtc2V0dGluZ3MtY2hhbmdlLXRlc3Q")}
    )
    monkeypatch.setattr(crypto, "get_settings", lambda: other)
    assert crypto.blind_index("13800138000") != index
    with pytest.raises(InvalidTag):
        crypto.decrypt(blob)
    monkeypatch.undo()
    assert crypto.blind_index("13800138000") == index
    assert crypto.decrypt(blob) == "13800138000"
