"""The benchmark harness (``linli bench``) and the ``api-read`` benchmark's measuring parts."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

from linli import bench as harness
from tests.cli.helpers import ROOT, assert_clear_error, linli


def _api_read() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_api_read", ROOT / "bench" / "api_read.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _script(directory: Path, name: str, body: str) -> None:
    (directory / f"{name}.py").write_text(textwrap.dedent(body))


GOOD = """
    import json, sys
    size = int(sys.argv[sys.argv.index("--size") + 1]) if "--size" in sys.argv else 7
    print("warming up", file=sys.stderr)
    print("some chatter")
    print(json.dumps({"name": "tiny-one", "size": size, "seconds": 0.1, "rate": 5.0, "unit": "x/s",
                      "limit_rate": 10.0, "ratio": 0.5, "checks": {"duplicates": 0}}))
"""


def test_harness_runs_a_script_maps_dashes_and_passes_size(tmp_path: Path) -> None:
    _script(tmp_path, "tiny_one", GOOD)
    lines: list[str] = []
    ran = harness.run("tiny-one", size=42, directory=tmp_path, on_line=lines.append)
    assert ran.result["size"] == 42 and ran.result["ratio"] == 0.5
    assert lines == ["warming up"]
    assert harness.run("tiny-one", directory=tmp_path).result["size"] == 7
    assert harness.available(tmp_path) == ["tiny-one"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('print(\'{"name": "x"}\')', "lacks"),
        ("print('no json here')", "no JSON"),
        ("import sys; print('boom', file=sys.stderr); sys.exit(3)", "status 3"),
        ("print('[1, 2]')", "no JSON"),
    ],
)
def test_harness_rejects_what_is_not_a_result(tmp_path: Path, body: str, message: str) -> None:
    _script(tmp_path, "bad", body)
    with pytest.raises(harness.BenchError, match=message):
        harness.run("bad", directory=tmp_path)


def test_harness_refuses_unknown_and_odd_names(tmp_path: Path) -> None:
    _script(tmp_path, "known", GOOD)
    with pytest.raises(harness.BenchError, match="available: known"):
        harness.find_script("unknown", tmp_path)
    with pytest.raises(harness.BenchError, match="not a benchmark name"):
        harness.find_script("../etc/passwd", tmp_path)


def test_cli_bench_unknown_name_is_a_clear_error() -> None:
    done = linli("bench", "no-such-bench", "--json")
    assert_clear_error(done, "no benchmark 'no-such-bench'", "api-read")


def test_every_benchmark_script_has_the_harness_interface() -> None:
    for name in harness.available():
        script = harness.find_script(name)
        helped = subprocess.run(
            [sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60
        )
        assert helped.returncode == 0, (name, helped.stderr)
        assert "--size" in helped.stdout and "--json" in helped.stdout, name


WRK_OUTPUT = """\
Running 10s test @ http://127.0.0.1:40000/api/v1/communities?limit=20
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    21.05ms    6.10ms  98.20ms   80.12%
    Req/Sec     1.19k   110.32     1.40k    70.00%
  Latency Distribution
     50%   19.87ms
     75%   23.01ms
     90%   28.44ms
     99%  812.00us
  23712 requests in 10.01s, 21.19MB read
  Non-2xx or 3xx responses: 3
  Socket errors: connect 0, read 1, write 0, timeout 2
Requests/sec:   2368.74
Transfer/sec:      2.12MB
"""


def test_parse_wrk_reads_rate_percentiles_and_errors() -> None:
    parsed = _api_read().parse_wrk(WRK_OUTPUT)
    assert parsed["rate"] == pytest.approx(2368.74)
    assert parsed["p50_ms"] == pytest.approx(19.87)
    assert parsed["p99_ms"] == pytest.approx(0.812)
    assert parsed["requests"] == 23712 and parsed["seconds"] == pytest.approx(10.01)
    assert parsed["non_2xx"] == 3 and parsed["socket_errors"] == 3
    without_errors = WRK_OUTPUT.replace("  Non-2xx or 3xx responses: 3\n", "")
    assert _api_read().parse_wrk(without_errors)["non_2xx"] == 0
    with pytest.raises(RuntimeError):
        _api_read().parse_wrk("wrk: connection refused")


async def test_python_load_generator_counts_statuses_and_sends_the_token() -> None:
    seen_auth: list[bytes] = []
    served = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                seen_auth.extend(
                    line for line in head.split(b"\r\n") if line.startswith(b"Authorization")
                )
                served += 1
                status = b"500 Internal Server Error" if served % 4 == 0 else b"200 OK"
                body = b'{"ok": true}'
                writer.write(
                    b"HTTP/1.1 " + status + b"\r\ncontent-length: %d\r\n\r\n" % len(body) + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        result = await _api_read()._generate(f"http://127.0.0.1:{port}/x?y=1", "tok", 3, 0.5)
    assert result["requests"] > 20
    assert result["non_2xx"] == pytest.approx(result["requests"] / 4, abs=3)
    assert result["socket_errors"] == 0
    assert set(seen_auth) == {b"Authorization: Bearer tok"}
    assert 0 < result["p50_ms"] <= result["p99_ms"]


@pytest.mark.slow
def test_api_read_benchmark_end_to_end_small() -> None:
    """A short real run: server, sign-in, both loads, JSON result with clean checks."""
    done = subprocess.run(
        [sys.executable, "bench/api_read.py", "--size", "3", "--connections", "4",
         "--duration", "1", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert harness.validate(result) is result
    assert result["name"] == "api-read" and result["unit"] == "requests/s"
    assert result["checks"]["non_2xx"] == 0 and result["checks"]["socket_errors"] == 0
    assert result["checks"]["items_per_page"] == 3
    assert result["token"] == "POST /api/v1/auth/staff/token"
    assert result["rate"] > 0 and result["limit_rate"] > 0
    assert 0 < result["p50_ms"] <= result["p99_ms"]
