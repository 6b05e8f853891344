"""schemathesis over the service's own OpenAPI document, with an admin key.

The real service runs in this process (uvicorn on loopback) over a vault
holding items and keys; schemathesis (property-based testing of an API
from its OpenAPI document) reads ``/openapi.json`` from it and calls every
operation with generated parameters and bodies, valid and invalid. Checks:
no response is a 5xx (``not_a_server_error``) and every response matches
the schema its operation documents (``response_schema_conformance``). The
live stream is left out: it does not end.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from echo_archive.api.keys import create_key
from echo_archive.api.roles import Role
from echo_archive.service.runner import Service
from echo_archive.service.scheduler import ManualClock
from echo_archive.vault.writer import VaultWriter
from tests.test_service import in_process, make_vault

pytestmark = pytest.mark.slow

EXAMPLES = 12
"""Generated cases per operation (hypothesis ``max_examples``)."""


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, str]]:
    tmp = tmp_path_factory.mktemp("fuzz")
    vault = make_vault(tmp, '\n[api]\npublic = ["checkpoint"]\n')
    now = time.time()
    with VaultWriter.open(vault) as writer:
        name = f"fuzz-{secrets.token_hex(6)}"  # no generated name revokes it by chance
        key = create_key(writer, name, Role.ADMIN, now=now, actor="cli:test")[0]
    clock = ManualClock(now)
    clock.stop_at = clock.now
    with in_process(vault, clock) as service:
        yield service, key


def test_no_5xx_and_every_response_matches_its_schema(fuzzed: tuple[Service, str]) -> None:
    service, key = fuzzed
    schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json").exclude(
        path_regex=r"^/v1/(stream|ws)"
    )
    failures: list[str] = []
    operations = 0
    calls: list[int] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            response = case.call(base_url=service.url, headers={"X-API-Key": key}, timeout=30)
            calls.append(response.status_code)
            case.validate_response(
                response, checks=[not_a_server_error, response_schema_conformance]
            )

        try:
            check()
        except Exception as exc:  # every operation is fuzzed; failures are reported together
            failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:2000]}")
    assert operations >= 8
    assert len(calls) >= 2 * operations, "schemathesis made too few calls to mean anything"
    assert any(200 <= status < 300 for status in calls), "no call succeeded"
    assert failures == [], "\n\n".join(failures)
