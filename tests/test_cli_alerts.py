"""``echoctl alerts rules|list`` and ``echoctl silence add|list|expire``.

The rules are checked by ``promtool check rules`` (Debian's prometheus package)
where it is installed.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from echo_archive.cli import app
from echo_archive.control.alertrules import DEFAULT_RULES
from echo_archive.control.alerts import AlertEngine, Route, Sample
from echo_archive.control.alertstore import VaultAlertStore
from echo_archive.control.metrics import METRIC_NAMES, METRICS
from echo_archive.vault.vault import Vault
from tests.conftest import require_tool

runner = CliRunner()


def _promtool() -> str:
    return require_tool("promtool", "Debian's prometheus: .ci/run installs it when missing")


def test_alerts_rules_is_a_rules_file_promtool_accepts(tmp_path: Path, vault_path: Path) -> None:
    result = runner.invoke(app, ["--vault", str(vault_path), "alerts", "rules"])
    assert result.exit_code == 0, result.output
    doc = yaml.safe_load(result.stdout)
    (group,) = doc["groups"]
    assert [r["alert"] for r in group["rules"]] == [r.name for r in DEFAULT_RULES]
    for rule in group["rules"]:
        metric = rule["expr"].removeprefix("time() - ").split(" ")[0].split("{")[0]
        assert metric in METRIC_NAMES
    path = tmp_path / "echo-rules.yml"
    path.write_text(result.stdout)
    check = subprocess.run(
        [_promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {len(DEFAULT_RULES)} rules found" in check.stdout


def test_promtool_unit_test_agrees_with_the_engine(tmp_path: Path) -> None:
    """The same rule fires at the same minute in Prometheus (promtool test rules) and in ECHO."""
    promtool = _promtool()
    rules = tmp_path / "rules.yml"
    rules.write_text(
        runner.invoke(app, ["--vault", str(tmp_path / "none"), "alerts", "rules"]).stdout
    )
    # feed a fails 50% from minute 0: pending for 10m, firing at 10m
    test = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": 'echo_feed_failure_ratio{feed="a"}', "values": "0.5x30"}
                ],
                "alert_rule_test": [
                    {"eval_time": "9m", "alertname": "EchoFeedFailureRateHigh", "exp_alerts": []},
                    {
                        "eval_time": "10m",
                        "alertname": "EchoFeedFailureRateHigh",
                        "exp_alerts": [
                            {
                                "exp_labels": {"feed": "a", "severity": "warning"},
                                "exp_annotations": {
                                    "summary": "Feed a is failing",
                                    "description": "0.5 of the recent runs of feed a failed "
                                    "(threshold 0.3). See `echoctl reports` for the errors.",
                                },
                            }
                        ],
                    },
                ],
            }
        ],
    }
    path = tmp_path / "test.yml"
    path.write_text(yaml.safe_dump(test))
    check = subprocess.run(
        [promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr
    # ECHO's engine: not firing at minute 9, firing at minute 10, the same annotations
    t = [0.0]
    engine = AlertEngine(list(DEFAULT_RULES), route=Route(), now=lambda: t[0])
    sample = [Sample.of("echo_feed_failure_ratio", 0.5, feed="a")]
    for minute in range(11):
        t[0] = minute * 60.0
        engine.evaluate(sample)
        states = [a.state for a in engine.alerts()]
        assert states == (["firing"] if minute >= 10 else ["pending"]), minute
    (alert,) = engine.alerts()
    expected = test["tests"][0]["alert_rule_test"][1]["exp_alerts"][0]  # type: ignore[index]
    assert alert.annotations == expected["exp_annotations"]


def test_alerts_rules_applies_the_vault_configuration(vault_path: Path) -> None:
    toml = vault_path / "echo.toml"
    toml.write_text(
        toml.read_text()
        + "\n[alerts.rules.EchoFeedFailureRateHigh]\nthreshold = 0.6\nfor = 120\n"
        + "\n[alerts.rules.EchoStorageLow]\nenabled = false\n"
    )
    result = runner.invoke(app, ["--vault", str(vault_path), "alerts", "rules", "--json"])
    assert result.exit_code == 0, result.output
    rules = {r["name"]: r for r in json.loads(result.stdout)}
    assert rules["EchoFeedFailureRateHigh"]["expr"] == "echo_feed_failure_ratio > 0.6"
    assert rules["EchoFeedFailureRateHigh"]["for"] == 120
    assert "EchoStorageLow" not in rules
    toml.write_text(toml.read_text() + "\n[alerts.rules.EchoNope]\n")
    bad = runner.invoke(app, ["--vault", str(vault_path), "alerts", "rules"])
    assert bad.exit_code == 1
    assert "unknown rule EchoNope" in bad.output


def test_metrics_constant_is_what_the_service_exports() -> None:
    names = [m.name for m in METRICS]
    assert len(names) == len(set(names))
    assert all(n.startswith("echo_") for n in names)
    counters = [m for m in METRICS if m.type == "counter"]
    assert all(m.name.endswith("_total") and not m.base_name.endswith("_total") for m in counters)
    assert {
        "echo_feed_runs_total", "echo_feed_failure_ratio",
        "echo_feed_last_success_timestamp_seconds", "echo_feed_items_last_run",
        "echo_breaker_state", "echo_disk_free_ratio", "echo_disk_free_bytes",
        "echo_check_severity", "echo_clock_backwards", "echo_verify_failures_total",
        "echo_log_size_entries", "echo_writer_queue_depth", "echo_commit_seconds",
    } <= set(names)  # fmt: skip


def test_silence_add_list_expire_and_alerts_list(
    vault_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from echo_archive.cli.common import out

    monkeypatch.setattr(out, "width", 250)  # the tables below on one line each
    v = ["--vault", str(vault_path)]
    added = runner.invoke(
        app,
        [*v, "silence", "add", "alertname=EchoFeedStale", 'feed=~"bbc-.*"', "--for", "2h",
         "--comment", "BBC is down", "--author", "ops", "--json"],
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    silence = json.loads(added.stdout)
    assert silence["matchers_text"] == ['alertname="EchoFeedStale"', 'feed=~"bbc-.*"']
    assert silence["endsAt"] - silence["startsAt"] == 7200
    assert silence["status"] == {"state": "active"}

    # a service cycle (in this process) sees it: the stale BBC feed fires, muted
    with Vault.open(vault_path) as vault:
        engine = AlertEngine(
            list(DEFAULT_RULES), route=Route(group_wait=0), store=VaultAlertStore(vault, time.time)
        )
        samples = [Sample.of("echo_feed_stale", 1, feed=f) for f in ("bbc-world", "npr\x1b[2J")]
        (note,) = engine.evaluate(samples)
        assert [a.labels["feed"] for a in note.alerts] == ["npr\x1b[2J"]  # bbc is silenced

    listed = runner.invoke(app, [*v, "alerts", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    alerts = {a["labels"]["feed"]: a for a in json.loads(listed.stdout)}
    assert alerts["bbc-world"]["silenced_by"] == [silence["id"]]
    assert alerts["npr\x1b[2J"]["silenced_by"] == []
    table = runner.invoke(app, [*v, "alerts", "list"], env={"COLUMNS": "200"})
    assert table.exit_code == 0
    assert "firing (muted)" in table.stdout
    assert "\x1b" not in table.stdout  # the hostile label printed inert
    assert "npr\\x1b[2J" in table.stdout

    shown = runner.invoke(app, [*v, "silence", "list"], env={"COLUMNS": "200"})
    assert silence["id"] in shown.stdout
    assert "BBC is down" in shown.stdout
    expired = runner.invoke(app, [*v, "silence", "expire", silence["id"], "--json"])
    assert expired.exit_code == 0, expired.output
    assert json.loads(expired.stdout)["status"] == {"state": "expired"}
    assert runner.invoke(app, [*v, "silence", "list", "--json"]).stdout.strip() == "[]"
    everything = json.loads(runner.invoke(app, [*v, "silence", "list", "--all", "--json"]).stdout)
    assert [s["id"] for s in everything] == [silence["id"]]
    unknown = runner.invoke(app, [*v, "silence", "expire", "nope"])
    assert unknown.exit_code == 1
    assert "no silence with id 'nope'" in unknown.output


def test_silence_add_refuses_bad_input_with_exit_2(vault_path: Path) -> None:
    v = ["--vault", str(vault_path)]
    cases = [
        (["silence", "add", "nonsense", "--comment", "x"], "expected NAME=VALUE"),
        (["silence", "add", 'severity=~".*"', "--comment", "x"], "empty string"),
        (["silence", "add", "feed=a"], "needs a comment"),
        (["silence", "add", "feed=a", "--comment", "x", "--for", "soon"], "duration 'soon'"),
    ]
    for args, message in cases:
        result = runner.invoke(app, [*v, *args])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, result.output
    listed = json.loads(runner.invoke(app, [*v, "silence", "list", "--all", "--json"]).stdout)
    assert listed == []


def test_alerts_list_on_a_vault_without_alert_tables_is_empty(vault_path: Path) -> None:
    result = runner.invoke(app, ["--vault", str(vault_path), "alerts", "list", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []
