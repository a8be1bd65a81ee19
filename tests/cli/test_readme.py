"""The README documents every LINLI_* setting, exactly as linli/config.py and domains define it."""

from __future__ import annotations

import re

from linli.cli import settings_markdown
from linli.config import env_name, settings_classes
from tests.cli.helpers import ROOT


def test_readme_has_the_generated_settings_table() -> None:
    readme = (ROOT / "README.md").read_text()
    table = settings_markdown()
    documented = set(re.findall(r"`(LINLI_[A-Z0-9_]+)`", readme))
    classes = settings_classes()
    assert len(classes) > 1, "domain settings classes (linli/<domain>/settings.py) not found"
    missing = sorted(
        env_name(cls, name)
        for cls in classes
        for name in cls.model_fields
        if env_name(cls, name) not in documented
    )
    assert not missing, f"README lacks {missing}: paste the output of `linli settings-table`"
    assert table in readme, (
        "README's settings table is stale: paste the output of `linli settings-table`"
    )


def test_readme_starts_with_the_two_commands() -> None:
    head = (ROOT / "README.md").read_text()[:600]
    assert "make demo" in head and "make test" in head
