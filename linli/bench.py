"""The benchmark harness behind ``linli bench NAME [--size N] [--json]``.

Each benchmark is a script ``bench/<name>.py`` (dashes in NAME become
underscores) that accepts ``--size N`` and ``--json`` and prints one JSON
object as its last line of standard output (see ARCHITECTURE.md
"Benchmarks"). The harness runs it as a child process, so a benchmark starts
from a cold interpreter and can start servers of its own, checks the object
has the agreed keys, and returns it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REQUIRED_KEYS = ("name", "size", "seconds", "rate", "unit", "limit_rate", "ratio", "checks")
LATENCY_KEYS = ("p50_ms", "p99_ms", "limit_p99_ms")


class BenchError(Exception):
    """A benchmark that cannot be found, fails, or prints something that is not a result."""


def bench_dir() -> Path:
    """``bench/`` of the source tree this package runs from (editable install), else of the cwd."""
    beside_package = Path(__file__).resolve().parent.parent / "bench"
    if beside_package.is_dir():
        return beside_package
    return Path.cwd() / "bench"


def script_name(name: str) -> str:
    return name.strip().replace("-", "_")


def available(directory: Path | None = None) -> list[str]:
    """Benchmark names as users type them (dashes)."""
    directory = directory or bench_dir()
    if not directory.is_dir():
        return []
    return sorted(
        p.stem.replace("_", "-") for p in directory.glob("*.py") if not p.name.startswith("_")
    )


def find_script(name: str, directory: Path | None = None) -> Path:
    directory = directory or bench_dir()
    stem = script_name(name)
    if not stem.isidentifier():
        raise BenchError(f"not a benchmark name: {name!r}")
    script = directory / f"{stem}.py"
    if not script.is_file():
        known = ", ".join(available(directory)) or "none"
        raise BenchError(f"no benchmark {name!r} (looked for {script}); available: {known}")
    return script


def validate(result: Any) -> dict[str, Any]:
    if not isinstance(result, dict):
        raise BenchError("the benchmark printed JSON that is not an object")
    missing = [key for key in REQUIRED_KEYS if key not in result]
    if missing:
        raise BenchError(f"the benchmark result lacks {', '.join(missing)}")
    if not isinstance(result["checks"], dict):
        raise BenchError("the benchmark's 'checks' is not an object")
    return result


def parse_output(stdout: str) -> dict[str, Any]:
    """The result object: the last line of standard output that parses as JSON."""
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return validate(json.loads(line))
            except json.JSONDecodeError:
                continue
    raise BenchError("the benchmark printed no JSON result")


@dataclass(frozen=True)
class BenchRun:
    result: dict[str, Any]
    wall_seconds: float
    stderr: str


def run(
    name: str,
    *,
    size: int | None = None,
    directory: Path | None = None,
    on_line: Callable[[str], None] | None = None,
) -> BenchRun:
    """Run ``bench/<name>.py`` and return its result. ``on_line`` sees its stderr as it comes."""
    script = find_script(name, directory)
    command = [sys.executable, str(script), "--json"]
    if size is not None:
        if size < 1:
            raise BenchError("--size must be at least 1")
        command += ["--size", str(size)]
    started = time.perf_counter()
    child = subprocess.Popen(  # noqa: S603 - our interpreter running a script of bench/
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=os.environ.copy(),
    )
    assert child.stdout is not None and child.stderr is not None
    # stdout drains on a thread: a chatty benchmark must not block on a full pipe
    # while we sit reading its stderr.
    out_chunks: list[str] = []
    stdout_pipe = child.stdout
    reader = threading.Thread(target=lambda: out_chunks.append(stdout_pipe.read()), daemon=True)
    reader.start()
    err_lines: list[str] = []
    for line in child.stderr:
        err_lines.append(line)
        if on_line is not None:
            on_line(line.rstrip("\n"))
    code = child.wait()
    reader.join()
    stdout = "".join(out_chunks)
    stderr = "".join(err_lines)
    if code != 0:
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        raise BenchError(f"benchmark {name!r} exited with status {code}\n{tail}")
    return BenchRun(parse_output(stdout), time.perf_counter() - started, stderr)
