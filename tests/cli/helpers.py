"""Run ``linli`` the way a user does: a separate process with this test run's settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def linli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -m linli.cli ARGS`` with the environment the session fixture set up."""
    return subprocess.run(
        [sys.executable, "-m", "linli.cli", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        cwd=ROOT,
        timeout=timeout,
    )


def assert_clear_error(done: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Exit status 1, a one-line style error naming the problem, and no traceback."""
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout
    assert "error:" in done.stderr
    for fragment in fragments:
        assert fragment in done.stderr, done.stderr
