"""The README documents every LINLI_* setting, exactly as linli/config.py defines it."""

from __future__ import annotations

import re

from linli.cli import settings_markdown
from linli.config import Settings
from tests.cli.helpers import ROOT


def test_readme_has_the_generated_settings_table() -> None:
    readme = (ROOT / "README.md").read_text()
    table = settings_markdown()
    documented = set(re.findall(r"`(LINLI_[A-Z0-9_]+)`", readme))
    missing = sorted(
        f"LINLI_{name.upper()}"
        for name in Settings.model_fields
        if f"LINLI_{name.upper()}" not in documented
    )
    assert not missing, f"README lacks {missing}: paste the output of `linli settings-table`"
    assert table in readme, (
        "README's settings table is stale: paste the output of `linli settings-table`"
    )


def test_readme_starts_with_the_two_commands() -> None:
    head = (ROOT / "README.md").read_text()[:600]
    assert "make demo" in head and "make test" in head
