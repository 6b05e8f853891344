"""The service with authentication configured: a public address is allowed, routes need a key.

Real keys made by ``echoctl keys create``; the service runs in this process
and is called over real HTTP (httpx against uvicorn).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from echo_archive.errors import RequestError
from echo_archive.service.runner import Service, parse_listen
from echo_archive.service.scheduler import ManualClock
from tests.conftest import run_echoctl
from tests.test_service import in_process, make_vault, wait_for

pytestmark = pytest.mark.slow

ALERTS = "\n[alerts]\ngroup_wait = 0\nevaluation_interval = 0.3\n"


def _key(vault: Path, name: str, role: str) -> str:
    done = run_echoctl("--vault", str(vault), "keys", "create", name, "--role", role, "--json")
    assert done.returncode == 0, done.stderr
    key: str = json.loads(done.stdout)["key"]
    return key


def _frozen() -> ManualClock:
    clock = ManualClock(time.time())
    clock.stop_at = clock.now
    return clock


def test_no_key_no_public_address_then_keys_close_every_route_but_healthz(
    tmp_path: Path,
) -> None:
    vault = make_vault(tmp_path, "")
    with pytest.raises(RequestError, match="until authentication is configured"):
        Service(vault, listen="0.0.0.0:0")
    analyst = _key(vault, "monitor", "analyst")
    viewer = _key(vault, "reader", "viewer")
    wildcard = "0.0.0.0"  # noqa: S104 - the point: a non-loopback address, allowed with keys
    assert parse_listen(f"{wildcard}:8383", public_ok=True) == (wildcard, 8383)
    with in_process(vault, _frozen(), listen=f"{wildcard}:0") as service:
        assert service.public
        port = (service.url or "").rsplit(":", 1)[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            assert client.get("/healthz").status_code == 200
            for route in ("/readyz", "/metrics", "/status", "/v1/whoami"):
                bare = client.get(route)
                assert bare.status_code == 401, (route, bare.text)
                assert bare.headers["WWW-Authenticate"].startswith("Bearer")
                bogus = client.get(route, headers={"X-API-Key": "echo_bogus"})
                assert bogus.status_code in (400, 401)
            ok = {"Authorization": f"Bearer {analyst}"}
            wait_for(lambda: client.get("/readyz", headers=ok).status_code == 200, what="ready")
            assert client.get("/status", headers=ok).json()["running"] is True
            assert "echo_log_size_entries" in client.get("/metrics", headers=ok).text
            assert client.get("/v1/whoami", headers=ok).json()["role"] == "analyst"
            # a viewer holds no operations:read
            assert client.get("/status", headers={"X-API-Key": viewer}).status_code == 403
            # revoking takes effect at the next request
            done = run_echoctl("--vault", str(vault), "keys", "revoke", "monitor")
            assert done.returncode == 0, done.stderr
            assert client.get("/status", headers=ok).status_code == 401


def test_a_break_glass_elevation_is_exported_and_alerted(tmp_path: Path) -> None:
    vault = make_vault(tmp_path, "", ALERTS)
    ok = {"Authorization": f"Bearer {_key(vault, 'monitor', 'analyst')}"}
    _key(vault, "root", "admin")
    with (
        in_process(vault, _frozen()) as service,
        httpx.Client(base_url=service.url or "", timeout=10) as client,
    ):
        assert "echo_breakglass_active 0.0" in client.get("/metrics", headers=ok).text
        glass = run_echoctl(
            "--vault",
            str(vault),
            "breakglass",
            "--for",
            "key:root",
            "--reason",
            "restore a bad deploy",
        )
        assert glass.returncode == 0, glass.stderr
        assert "echo_breakglass_active 1.0" in client.get("/metrics", headers=ok).text
        wait_for(
            lambda: any(
                a["rule"] == "EchoBreakGlassActive"
                for a in client.get("/status", headers=ok).json()["alerts"]
            ),
            what="the EchoBreakGlassActive alert",
        )


def test_a_revocation_after_another_processs_commit_takes_effect(tmp_path: Path) -> None:
    vault = make_vault(tmp_path, "")
    key = _key(vault, "monitor", "analyst")
    with (
        in_process(vault, _frozen()) as service,
        httpx.Client(base_url=service.url or "", timeout=10) as client,
    ):
        ok = {"Authorization": f"Bearer {key}"}
        assert client.get("/status", headers=ok).status_code == 200
        for name in ("other", "third"):  # other processes commit (their audit entries)
            _key(vault, name, "viewer")
        done = run_echoctl("--vault", str(vault), "keys", "revoke", "monitor")
        assert done.returncode == 0, done.stderr
        assert client.get("/status", headers=ok).status_code == 401
