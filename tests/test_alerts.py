"""The alert engine over hours of simulated time.

Prometheus's rule states, Alertmanager's grouping, deduplication, repeat
interval, silences, inhibition; state kept across restarts.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from echo_archive.config import ALERT_RULE_NAMES, AlertsSection
from echo_archive.control.alertrules import (
    DEFAULT_INHIBIT_RULES,
    DEFAULT_RULE_NAMES,
    DEFAULT_RULES,
    rules_from_config,
)
from echo_archive.control.alerts import (
    AlertEngine,
    AlertState,
    Condition,
    Notification,
    Op,
    Route,
    Rule,
    Sample,
    fingerprint,
    group_key,
    samples_from_checks,
)
from echo_archive.control.alertstore import MemoryAlertStore, VaultAlertStore
from echo_archive.control.matchers import Matcher, MatchOp, parse_matcher
from echo_archive.control.silences import new_silence, parse_duration, prom_duration
from echo_archive.events import Event, EventBus
from echo_archive.vault.vault import Vault

T0 = 1_800_000_000.0
CYCLE = 60.0  # the service evaluates once a minute in these tests


def failing(*feeds: str, ratio: float = 0.5) -> list[Sample]:
    return [Sample.of("echo_feed_failure_ratio", ratio, feed=f) for f in feeds]


def fail_rule(for_: float = 600, keep: float = 0) -> Rule:
    return Rule(
        "EchoFeedFailureRateHigh",
        Condition("echo_feed_failure_ratio", Op.GT, 0.3),
        for_=for_,
        keep_firing_for=keep,
        labels={"severity": "warning"},
        annotations={"summary": "Feed {{ $labels.feed }} is failing ({{ $value }})"},
    )


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def run(
    engine: AlertEngine, clock: Clock, seconds: float, samples: Iterable[Sample]
) -> list[tuple[float, Notification]]:
    """Evaluate every CYCLE for ``seconds`` with the same samples; the notifications by time."""
    got = []
    samples = list(samples)
    end = clock.t + seconds
    while clock.t < end:
        got += [(clock.t, n) for n in engine.evaluate(samples)]
        clock.t += CYCLE
    return got


def test_fingerprint_is_prometheus_label_set_fingerprint() -> None:
    # prometheus/common model/signature_test.go, TestLabelSetToFingerprint.
    assert fingerprint({}) == f"{14695981039346656037:016x}"
    labels = {"name": "garland, briggs", "fear": "love is not enough"}
    assert int(fingerprint(labels), 16) == 5799056148416392346
    assert group_key({"alertname": "X", "feed": "a"}) == '{}:{alertname="X", feed="a"}'


def test_pending_then_firing_after_for_then_one_notification_after_group_wait() -> None:
    clock = Clock()
    engine = AlertEngine([fail_rule(for_=600)], now=clock)
    assert engine.evaluate(failing("bbc")) == []
    (alert,) = engine.alerts()
    assert alert.state == "pending"
    assert alert.annotations["summary"] == "Feed bbc is failing (0.5)"
    got = run(engine, clock, 3600, failing("bbc"))
    assert len(got) == 1  # one notification in the hour: dedup
    at, note = got[0]
    # fires at T0+600, the new group waits group_wait (30 s): the cycle at T0+660 sends it
    assert at == T0 + 660
    assert note.status == "firing"
    (fired,) = note.alerts
    assert fired.fired_at == T0 + 600
    assert fired.labels == {
        "alertname": "EchoFeedFailureRateHigh",
        "feed": "bbc",
        "severity": "warning",
    }


def test_a_pending_alert_that_clears_is_dropped_unnotified() -> None:
    clock = Clock()
    engine = AlertEngine([fail_rule(for_=600)], now=clock)
    assert run(engine, clock, 300, failing("bbc")) == []
    assert [a.state for a in engine.alerts()] == ["pending"]
    assert run(engine, clock, 3600, []) == []
    assert engine.alerts() == []


def test_rule_without_for_fires_at_first_evaluation() -> None:
    clock = Clock()
    engine = AlertEngine([fail_rule(for_=0)], route=Route(group_wait=0), now=clock)
    (note,) = engine.evaluate(failing("bbc"))
    assert note.alerts[0].fired_at == T0


def test_keep_firing_for_then_resolved_notification() -> None:
    clock = Clock()
    engine = AlertEngine([fail_rule(for_=0, keep=900)], now=clock)
    fired = run(engine, clock, 600, failing("bbc"))
    assert [n.status for _, n in fired] == ["firing"]
    cleared_at = clock.t
    # the condition stops holding: still firing for 900 s, then resolved, sent at the next look
    got = run(engine, clock, 3 * 3600, [])
    assert [n.status for _, n in got] == ["resolved"]
    at, note = got[0]
    (alert,) = note.alerts
    assert alert.state == "resolved"
    assert alert.resolved_at is not None
    assert cleared_at + 900 - CYCLE <= alert.resolved_at <= cleared_at + 900 + CYCLE
    assert at >= alert.resolved_at
    payload = note.to_webhook()
    assert payload["status"] == "resolved"
    assert payload["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"
    assert engine.alerts() == []
    assert engine.state().groups == {}


def test_grouping_dedup_new_alert_and_repeat_interval_over_nine_hours() -> None:
    clock = Clock()
    engine = AlertEngine(
        [fail_rule(for_=0)],
        route=Route(group_wait=30, group_interval=300, repeat_interval=4 * 3600),
        now=clock,
    )
    got = run(engine, clock, 600, failing("a", "b", "c"))
    assert len(got) == 1  # three alerts, one group, one notification
    (_, first) = got[0]
    assert {a.labels["feed"] for a in first.alerts} == {"a", "b", "c"}
    assert first.group_labels == {"alertname": "EchoFeedFailureRateHigh"}
    assert first.common_labels == {"alertname": "EchoFeedFailureRateHigh", "severity": "warning"}
    # a fourth feed fails: notified at the group's next look (group_interval), with all four
    got = run(engine, clock, 600, failing("a", "b", "c", "d"))
    assert len(got) == 1
    assert len(got[0][1].alerts) == 4
    since = got[0][0]
    # unchanged for nine hours: repeated every repeat_interval (looked at every 5 minutes)
    got = run(engine, clock, 9 * 3600, failing("a", "b", "c", "d"))
    assert len(got) == 2
    gaps = [got[0][0] - since, got[1][0] - got[0][0]]
    assert all(4 * 3600 <= g <= 4 * 3600 + 300 for g in gaps), gaps


def test_group_by_feed_makes_one_group_per_feed() -> None:
    clock = Clock()
    engine = AlertEngine(
        [fail_rule(for_=0)], route=Route(group_by=("alertname", "feed"), group_wait=0), now=clock
    )
    notes = engine.evaluate(failing("a", "b"))
    assert sorted(n.group_key for n in notes) == [
        '{}:{alertname="EchoFeedFailureRateHigh", feed="a"}',
        '{}:{alertname="EchoFeedFailureRateHigh", feed="b"}',
    ]


def test_a_silence_mutes_until_it_expires() -> None:
    clock = Clock()
    store = MemoryAlertStore()
    engine = AlertEngine([fail_rule(for_=0)], store=store, now=clock)
    store.add_silence(
        new_silence(
            [parse_matcher("feed=~b.*")],
            duration=2 * 3600,
            comment="known outage",
            created_by="ops",
            now=clock.t,
        )
    )
    got = run(engine, clock, 3600, failing("bbc"))
    assert got == []
    (alert,) = engine.alerts()
    assert alert.state == "firing"
    assert alert.silenced_by == (store.stored[0].id,)
    got = run(engine, clock, 2 * 3600, failing("bbc"))
    assert len(got) == 1
    at, note = got[0]
    assert T0 + 2 * 3600 <= at <= T0 + 2 * 3600 + 300 + CYCLE
    assert not note.alerts[0].muted


def test_a_silence_matching_another_feed_mutes_nothing() -> None:
    clock = Clock()
    store = MemoryAlertStore()
    engine = AlertEngine([fail_rule(for_=0)], store=store, now=clock)
    store.add_silence(
        new_silence(
            [Matcher("feed", MatchOp.EQ, "other")],
            duration=3600,
            comment="x",
            created_by="ops",
            now=clock.t,
        )
    )
    assert len(run(engine, clock, 600, failing("bbc"))) == 1


def test_storage_critical_inhibits_feeds_failing_until_it_resolves() -> None:
    clock = Clock()
    rules = [fail_rule(for_=0), next(r for r in DEFAULT_RULES if r.name == "EchoStorageCritical")]
    engine = AlertEngine(rules, inhibit_rules=DEFAULT_INHIBIT_RULES, now=clock)
    full = [*failing("a", "b"), Sample.of("echo_disk_free_ratio", 0.01)]
    got = run(engine, clock, 3600, full)
    assert [n.group_labels["alertname"] for _, n in got] == ["EchoStorageCritical"]
    assert {a.rule: a.inhibited for a in engine.alerts()} == {
        "EchoFeedFailureRateHigh": True,
        "EchoStorageCritical": False,
    }
    # space freed, feeds still failing: the storage alert resolves, the feed alerts go out
    got = run(engine, clock, 1800, [*failing("a", "b"), Sample.of("echo_disk_free_ratio", 0.5)])
    statuses = sorted((n.group_labels["alertname"], n.status) for _, n in got)
    assert statuses == [("EchoFeedFailureRateHigh", "firing"), ("EchoStorageCritical", "resolved")]


def test_an_alert_never_inhibits_itself() -> None:
    from echo_archive.control.alerts import InhibitRule

    clock = Clock()
    warn = Matcher("severity", MatchOp.EQ, "warning")
    engine = AlertEngine(
        [fail_rule(for_=0)],
        inhibit_rules=[InhibitRule((warn,), (warn,), ("feed",))],
        route=Route(group_wait=0),
        now=clock,
    )
    (note,) = engine.evaluate(failing("a"))
    assert not note.alerts[0].inhibited


def test_restart_over_the_same_store_neither_notifies_again_nor_forgets(tmp_path: Path) -> None:
    path = tmp_path / "vault"
    Vault.create(path, origin="echo.archive/test0000deadbeef").close()
    clock = Clock()
    with Vault.open(path) as v:
        engine = AlertEngine([fail_rule(for_=600)], store=VaultAlertStore(v, clock), now=clock)
        got = run(engine, clock, 1200, failing("a"))
        assert len(got) == 1
        pending = run(engine, clock, 300, failing("a", "b"))  # b pending for 300 s
        assert pending == []
    # a new process, the same vault: what fires is remembered, nothing is sent again,
    # b's pending period goes on where it was
    with Vault.open(path) as v:
        again = AlertEngine([fail_rule(for_=600)], store=VaultAlertStore(v, clock), now=clock)
        assert {a.labels["feed"]: a.state for a in again.alerts()} == {
            "a": "firing",
            "b": "pending",
        }
        got = run(again, clock, 900, failing("a", "b"))
        assert len(got) == 1  # only because b started firing: a new alert in the group
        assert {a.labels["feed"] for a in got[0][1].alerts} == {"a", "b"}
        assert run(again, clock, 3600, failing("a", "b")) == []
    with Vault.open(path, readonly=True) as v:
        from echo_archive.control.alertstore import alert_status

        assert [a.labels["feed"] for a in alert_status(v, clock.t)] == ["a", "b"]


def test_transitions_are_published_on_the_bus() -> None:
    clock = Clock()
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe(seen.append)
    engine = AlertEngine([fail_rule(for_=120)], bus=bus, now=clock)
    run(engine, clock, 600, failing("a"))
    run(engine, clock, 600, [])
    assert [e.kind for e in seen] == ["alert_fired", "alert_resolved"]
    assert seen[0].data["labels"]["feed"] == "a"
    assert seen[0].data["severity"] == "warning"
    assert seen[1].data["fingerprint"] == seen[0].data["fingerprint"]


def test_a_store_that_fails_never_stops_the_engine() -> None:
    class Broken(MemoryAlertStore):
        def save_state(self, state: AlertState) -> None:
            raise OSError("No space left on device")

        def silences(self) -> list:  # type: ignore[type-arg]
            raise OSError("disk I/O error")

    clock = Clock()
    engine = AlertEngine([fail_rule(for_=0)], store=Broken(), now=clock)
    assert len(run(engine, clock, 600, failing("a"))) == 1


def test_annotations_from_hostile_labels_are_inert_and_redacted() -> None:
    clock = Clock()
    rule = Rule(
        "EchoCheckCritical",
        Condition("echo_check_severity", Op.GE, 2),
        annotations={"summary": "check {{ $labels.check }}"},
    )
    engine = AlertEngine([rule], route=Route(group_wait=0), now=clock)
    evil = "x\x1b[2J\u202e https://u:pw@h.example/?token=abc"
    (note,) = engine.evaluate([Sample.of("echo_check_severity", 2, check=evil)])
    summary = note.alerts[0].annotations["summary"]
    assert "\x1b" not in summary
    assert "\u202e" not in summary
    assert "pw" not in summary
    assert "abc" not in summary
    assert note.alerts[0].labels["check"] == evil  # labels are data: exact


def test_age_conditions_samples_from_checks_and_unlabelled_mappings() -> None:
    stale = Condition("echo_feed_last_success_timestamp_seconds", Op.GT, 3600, age=True)
    assert stale.promql() == "time() - echo_feed_last_success_timestamp_seconds > 3600"
    old = Sample.of("echo_feed_last_success_timestamp_seconds", T0 - 7200, feed="a")
    assert stale.holds(old, T0)
    assert not stale.holds(old, T0 - 5000)

    class Check:
        def __init__(self, name: str, severity: int) -> None:
            self.name, self.severity = name, severity

    assert samples_from_checks([Check("disk", 2)]) == [
        Sample("echo_check_severity", {"check": "disk"}, 2.0)
    ]
    clock = Clock()
    storage = next(r for r in DEFAULT_RULES if r.name == "EchoStorageCritical")
    engine = AlertEngine([storage], route=Route(group_wait=0), now=clock)
    assert len(engine.evaluate({"echo_disk_free_ratio": 0.01})) == 1


def test_rules_render_as_promql_and_reject_what_they_cannot_mean() -> None:
    breaker = next(r for r in DEFAULT_RULES if r.name == "EchoBreakerOpen")
    assert breaker.promql() == 'echo_breaker_state{state="open"} > 0'
    assert breaker.to_prometheus()["for"] == "5m"
    with pytest.raises(ValueError, match="not an exported ECHO metric"):
        Condition("feed_failure_rate", Op.GT, 0.3)
    with pytest.raises(ValueError, match="may be templated"):
        Rule("X", Condition("echo_disk_free_ratio", Op.LT, 1), annotations={"a": "{{ .Foo }}"})
    assert prom_duration(5400) == "1h30m"
    assert prom_duration(0.25) == "250ms"
    assert parse_duration("1d12h") == 36 * 3600
    assert parse_duration("90") == 90
    with pytest.raises(ValueError, match="duration"):
        parse_duration("soon")


def test_config_overrides_rules_and_names_match() -> None:
    assert DEFAULT_RULE_NAMES == ALERT_RULE_NAMES
    section = AlertsSection.model_validate(
        {
            "rules": {
                "EchoFeedFailureRateHigh": {"threshold": 0.5, "for": 60, "severity": "critical"},
                "EchoStorageLow": {"enabled": False},
            }
        }
    )
    rules = {r.name: r for r in rules_from_config(section)}
    assert "EchoStorageLow" not in rules
    fail = rules["EchoFeedFailureRateHigh"]
    assert fail.promql() == "echo_feed_failure_ratio > 0.5"
    assert fail.for_ == 60
    assert fail.labels["severity"] == "critical"


def test_silences_refuse_matching_everything() -> None:
    with pytest.raises(ValueError, match="empty string"):
        new_silence(
            [parse_matcher('severity=~".*"')], duration=60, comment="x", created_by="a", now=T0
        )
    with pytest.raises(ValueError, match="comment"):
        new_silence([parse_matcher("feed=a")], duration=60, comment=" ", created_by="a", now=T0)
    assert str(parse_matcher('feed!~"bbc-.*"')) == 'feed!~"bbc-.*"'
    assert parse_matcher("team!=x").matches({})  # a missing label is ""
    assert not parse_matcher("feed=~bbc").matches({"feed": "xbbc"})  # anchored
    with pytest.raises(ValueError, match="expected NAME=VALUE"):
        parse_matcher("just text")
