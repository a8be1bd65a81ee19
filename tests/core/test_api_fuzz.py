"""Schemathesis walks every operation of /openapi.json against a real server with
generated input (wrong types, odd strings, missing fields, huge numbers) and
fails on any 5xx: bad input must get a problem+json 4xx, never a crash.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.factories import Company, make_company, staff_token
from tests.live import LiveServer, live_server

ARTIFACTS = Path(__file__).resolve().parent.parent / "e2e" / "artifacts"


@pytest.fixture(scope="session")
def fuzz_server(linli_env: dict[str, str]) -> Iterator[LiveServer]:
    with live_server(dict(linli_env), ARTIFACTS / "fuzz-server.log") as server:
        yield server


@pytest.fixture(scope="session")
async def fuzz_company() -> Company:
    return await make_company(communities=2)


@pytest.fixture(scope="session")
def api_schema(fuzz_server: LiveServer) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{fuzz_server.url}/openapi.json")


def fuzz_operation(operation: Any, token: str) -> str | None:
    """Up to 12 generated requests to one operation; the first 5xx found, if any."""
    found: list[str] = []

    @given(case=operation.as_strategy())
    @settings(
        max_examples=12,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def call(case: schemathesis.Case) -> None:
        response = case.call(headers={"Authorization": f"Bearer {token}"}, timeout=10)
        if response.status_code >= 500:
            found[:] = [f"{response.status_code}: {case.as_curl_command()}"]
            raise AssertionError(found[0])

    try:
        call()
    except AssertionError:
        return found[0] if found else "failed"
    return None


@pytest.mark.slow
def test_no_input_crashes_the_api(
    api_schema: schemathesis.BaseSchema, fuzz_company: Company
) -> None:
    # schemathesis' own pytest plugin does not run under pytest 9, so drive its
    # strategies with hypothesis directly, one operation after another.
    token = staff_token(fuzz_company)
    failures: dict[str, str] = {}
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1
        failure = fuzz_operation(operation, token)
        if failure:
            failures[operation.label] = failure
    assert operations > 20, "the schema lists the API's operations"
    assert not failures, "server errors:\n" + "\n".join(f"{k} -> {v}" for k, v in failures.items())
