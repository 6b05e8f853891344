"""Every route of the OpenAPI document, against the real service: credentials and roles.

The service runs in this process with uvicorn on loopback, keys for each
role made through the library (as ``echoctl keys create`` makes them), and
``[api] public = ["tiles"]``. The routes are read from the service's own
``/openapi.json``, so a route added later is covered without editing this
file:

* every operation states its permission (``x-echo-permission``) and its
  security requirement, except the few that are open by design
  (:data:`OPEN`);
* called without credentials, every operation answers 401 with the Bearer
  challenge (RFC 6750 §3), except :data:`OPEN` and the operations of a route
  group ``[api] public`` opens;
* the role x route matrix: each role's key gets 403 exactly on the
  operations whose permission the role does not hold (inheritance
  included: :data:`echo_archive.api.roles.ROLE_PERMISSIONS`), and neither
  401 nor 403 on the others.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from echo_archive.api.keys import create_key
from echo_archive.api.roles import ROLE_PERMISSIONS, Permission, Role
from echo_archive.service.runner import Service
from echo_archive.service.scheduler import ManualClock
from echo_archive.vault.writer import VaultWriter
from tests.test_service import in_process, make_vault

pytestmark = pytest.mark.slow

OPEN = frozenset({("get", "/healthz"), ("post", "/v1/token"), ("post", "/v1/session")})
"""Operations that need no credential by design: liveness, and logging in."""

PUBLIC_GROUP = "tiles"
"""The route group this module's service opens with ``[api] public``."""

_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")


def fill(path: str) -> str:
    """``path`` with each template parameter replaced by a value that names nothing."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1).lower()
        if "path" in name:
            return "0/000"
        if name in {"index", "size", "old", "new", "id", "n", "w", "l"} or name.endswith("_index"):
            return "1"
        return "no-such-name"

    return _PARAM.sub(value, path)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("openapi")
    vault = make_vault(tmp, f'\n[api]\npublic = ["{PUBLIC_GROUP}"]\n')
    now = time.time()
    with VaultWriter.open(vault) as writer:
        keys = {
            role.label: create_key(writer, f"k-{role.label}", role, now=now, actor="cli:test")[0]
            for role in Role
        }
    clock = ManualClock(now)
    clock.stop_at = clock.now
    with in_process(vault, clock) as service:
        yield service, keys


def operations(service: Service) -> list[tuple[str, str, dict[str, Any]]]:
    doc = httpx.get(f"{service.url}/openapi.json", timeout=30).json()
    found = [
        (method, path, op)
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]
    assert len(found) >= 8, "the OpenAPI document lists too few operations"
    assert {"bearer", "apiKey"} <= set(doc["components"]["securitySchemes"])
    return found


def call(service: Service, method: str, path: str, headers: dict[str, str]) -> int:
    """The status of one request (a streamed response is closed once its status is known)."""
    with (
        httpx.Client(base_url=service.url or "", timeout=30) as client,
        client.stream(method.upper(), fill(path), headers=headers) as response,
    ):
        return response.status_code


def test_every_operation_states_its_permission_and_security(
    served: tuple[Service, dict[str, str]],
) -> None:
    service, _ = served
    missing = [
        f"{method.upper()} {path}"
        for method, path, op in operations(service)
        if (method, path) not in OPEN and ("x-echo-permission" not in op or "security" not in op)
    ]
    assert missing == []


def test_without_credentials_every_operation_is_401_but_the_open_and_public_ones(
    served: tuple[Service, dict[str, str]],
) -> None:
    service, _ = served
    wrong: list[str] = []
    checked = 0
    for method, path, op in operations(service):
        if (method, path) in OPEN:
            continue
        status = call(service, method, path, {})
        opened = op.get("x-echo-public") == PUBLIC_GROUP
        checked += 1
        if opened and status == 401:
            wrong.append(f"{method.upper()} {path}: 401, but [api] public opens it")
        if not opened and status != 401:
            wrong.append(f"{method.upper()} {path}: {status} without credentials")
    assert checked >= 8
    assert wrong == []
    bare = httpx.get(f"{service.url}/v1/whoami", timeout=30)
    assert bare.status_code == 401
    assert bare.headers["WWW-Authenticate"].startswith('Bearer realm="echo"')


@pytest.mark.parametrize("role", [r.label for r in Role])
def test_each_role_gets_exactly_its_permissions_on_every_route(
    served: tuple[Service, dict[str, str]], role: str
) -> None:
    service, keys = served
    held = {str(p) for p in ROLE_PERMISSIONS[Role[role.upper()]]}
    wrong: list[str] = []
    checked = 0
    for method, path, op in operations(service):
        permission = op.get("x-echo-permission")
        if permission is None or permission == "any":
            continue
        Permission.parse(permission)  # a permission the roles know
        status = call(service, method, path, {"X-API-Key": keys[role]})
        checked += 1
        if permission in held and status in (401, 403):
            wrong.append(f"{method.upper()} {path} ({permission}): {status}, but {role} holds it")
        if permission not in held and status != 403:
            wrong.append(f"{method.upper()} {path} ({permission}): {status}, {role} lacks it")
    assert checked >= 5
    assert wrong == []


def test_a_malformed_body_is_a_400_that_echoes_nothing_on_every_operation(
    served: tuple[Service, dict[str, str]],
) -> None:
    service, keys = served
    marker = "hunter2-SECRET-marker"
    checked = 0
    wrong: list[str] = []
    doc = httpx.get(f"{service.url}/openapi.json", timeout=30).json()
    assert "HTTPValidationError" not in doc.get("components", {}).get("schemas", {})
    with httpx.Client(base_url=service.url or "", timeout=30) as client:
        for method, path, op in operations(service):
            assert "422" not in op.get("responses", {}), f"{method} {path} documents 422"
            body = op.get("requestBody", {}).get("content", {})
            if "application/json" not in body:
                continue
            checked += 1
            # every field of the wrong type, and a value that must never come back
            sent = {"name": [marker], "password": [marker], "reason": [marker], "kind": [marker]}
            got = client.request(
                method.upper(), fill(path), json=sent, headers={"X-API-Key": keys["admin"]}
            )
            if got.status_code == 422 or marker in got.text:
                wrong.append(f"{method.upper()} {path}: {got.status_code} {got.text[:200]}")
    assert checked >= 3
    assert wrong == []
