"""The supervisor's core: stability score, drift, collapse risk, planning rules, scenarios."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from echo_archive.control.drift import DriftBank, DriftOptions, SignalDetector
from echo_archive.control.metrics import METRIC_NAMES
from echo_archive.control.observe import (
    DiskObservation,
    FeedObservation,
    HostObservation,
    Observation,
    ProcessObservation,
    WriterObservation,
)
from echo_archive.control.risk import RiskModel, Watch, breach_probability
from echo_archive.control.scenarios import SCENARIOS, ScenarioRun, play, scenario
from echo_archive.control.stability import (
    BandTracker,
    StabilityThresholds,
    StabilityWeights,
    band,
    stability,
)
from echo_archive.control.supervisor import Supervisor, SupervisorOptions
from echo_archive.events import Event, EventBus
from echo_archive.service.metrics import SUPERVISOR_METRICS, ServiceMetrics, StateSource

T0 = 1_800_000_000.0
MIB = 1024 * 1024


def host(name: str = "a.example", requests: int = 20, **kw: object) -> HostObservation:
    return HostObservation(name, requests=requests, latency_p50=0.2, latency_p95=0.4, **kw)  # type: ignore[arg-type]


def obs(i: int, *, hosts: tuple[HostObservation, ...] = (), **kw: object) -> Observation:
    return Observation(at=T0 + 60 * i, seconds=60.0, hosts=hosts, **kw)  # type: ignore[arg-type]


# ----------------------------------------------------------------- stability score

rates = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


def _observation(
    error: float, throttled: float, lag: float, free: float, rss: int, open_share: float
) -> Observation:
    requests = 100
    fail = round(requests * error)
    return Observation(
        at=T0,
        seconds=60,
        hosts=(
            HostObservation(
                "a.example",
                requests=requests,
                server_errors=fail,
                throttled=min(requests - fail, round(requests * throttled)),
                latency_p50=0.1,
                latency_p95=lag * 3,
            ),
            HostObservation("b.example", requests=round(100 * open_share), breaker="open"),
        ),
        feeds=(FeedObservation("f", runs=4, failed=round(4 * error), captures=10, harvested=2),),
        process=ProcessObservation(cpu_fraction=0.2, rss_bytes=rss, loop_lag_seconds=lag),
        disk=DiskObservation(free_bytes=10**9, free_ratio=free),
        writer=WriterObservation(queue_depth=2, commit_latency_seconds=lag),
    )


@settings(max_examples=200, deadline=None)
@given(
    error=rates,
    throttled=rates,
    lag=st.floats(min_value=0, max_value=60, allow_nan=False),
    free=rates,
    rss=st.integers(min_value=0, max_value=2**40),
    open_share=rates,
    weights=st.tuples(*[st.floats(min_value=0, max_value=10)] * 4).filter(lambda w: sum(w) > 0),
)
def test_the_score_and_its_components_stay_in_0_1(
    error: float,
    throttled: float,
    lag: float,
    free: float,
    rss: int,
    open_share: float,
    weights: tuple[float, float, float, float],
) -> None:
    s = stability(
        _observation(error, throttled, lag, free, rss, open_share), StabilityWeights(*weights)
    )
    assert 0.0 <= s.score <= 1.0
    assert set(s.components) == {"resource", "error", "performance", "dependency"}
    assert all(0.0 <= v <= 1.0 for v in s.components.values())
    assert s.band == band(s.score, StabilityThresholds())


@settings(max_examples=200, deadline=None)
@given(low=rates, high=rates, lag=st.floats(min_value=0, max_value=10), free=rates)
def test_the_score_is_monotone_in_the_error_rate(
    low: float, high: float, lag: float, free: float
) -> None:
    low, high = min(low, high), max(low, high)
    better = stability(_observation(low, 0.0, lag, free, 100 * MIB, 0.0))
    worse = stability(_observation(high, 0.0, lag, free, 100 * MIB, 0.0))
    assert worse.score <= better.score + 1e-12
    assert worse.components["error"] <= better.components["error"] + 1e-12


def test_the_documented_formula_on_one_observation() -> None:
    o = Observation(
        at=T0,
        seconds=60,
        hosts=(
            HostObservation("a", requests=30, server_errors=3, latency_p95=6.0),
            HostObservation("b", requests=10, breaker="open", latency_p95=6.0),
        ),
        disk=DiskObservation(free_ratio=0.125),
    )
    s = stability(o)
    # error: 3 failed of 40 requests = 0.075; 1 - 0.075 / 0.3 = 0.75
    assert s.failure_rate == pytest.approx(0.075)
    assert s.components["error"] == pytest.approx(0.75)
    # resource: disk (0.125 - 0.05) / (0.20 - 0.05) = 0.5 (memory and CPU unknown: 1)
    assert s.components["resource"] == pytest.approx(0.5)
    # performance: p95 6 s on the ramp 2..10 s = 0.5
    assert s.components["performance"] == pytest.approx(0.5)
    # dependency: 30 of 40 requests to a closed breaker
    assert s.components["dependency"] == pytest.approx(0.75)
    expected = (0.25 * 0.5 + 0.35 * 0.75 + 0.2 * 0.5 + 0.2 * 0.75) / 1.0
    assert s.score == pytest.approx(expected)
    assert stability(Observation(at=T0, seconds=60)).score == 1.0  # nothing seen: fine


def test_bad_weights_and_thresholds_are_refused() -> None:
    with pytest.raises(ValueError, match="weights"):
        StabilityWeights(0, 0, 0, 0)
    with pytest.raises(ValueError, match="weights"):
        StabilityWeights(resource=-1)
    with pytest.raises(ValueError, match="disk"):
        StabilityThresholds(disk_ok_ratio=0.01)


def test_band_changes_are_published_as_stability_changed() -> None:
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe(seen.append)
    sup = Supervisor(bus=bus)
    bad = host(server_errors=20)
    sup.cycle(obs(0, hosts=(host(),)))
    report = sup.cycle(obs(1, hosts=(bad,), disk=DiskObservation(free_ratio=0.05)))
    # error 0 and resource 0: (0.2 * 1 + 0.2 * 1) / 1 = 0.4 < 0.5
    assert report.score == pytest.approx(0.4)
    assert report.band_change == ("stable", "unstable")
    assert sup.cycle(obs(2, hosts=(bad,))).band_change == ("unstable", "degraded")  # 0.65
    assert sup.cycle(obs(3, hosts=(bad,))).band_change is None
    assert [e.kind for e in seen] == ["stability_changed"] * 2
    assert seen[0].data["old"] == "stable"
    assert seen[0].data["new"] == "unstable"
    assert BandTracker(StabilityThresholds()).update(0.9) is None


# ----------------------------------------------------------------- drift


def test_drift_found_on_a_step_change_and_not_on_stationary_noise() -> None:
    rng = random.Random(1234)
    bank = DriftBank()
    quiet = [bank.update({"x": 10 + rng.gauss(0, 1)}, T0 + i) for i in range(2000)]
    assert not any(quiet)
    stepped = DriftBank()
    found = []
    for i in range(200):
        level = 10.0 if i < 100 else 0.0
        found += stepped.update({"x": level + rng.gauss(0, 1)}, T0 + i)
    assert found, "a 10-sd step must be found"
    first = found[0]
    assert first.signal == "x"
    assert first.direction == "down"
    assert first.at <= T0 + 102  # within 3 values of the step
    assert first.baseline == pytest.approx(10.0, abs=1.0)


def test_drift_up_with_adwin_on_a_ratio() -> None:
    rng = random.Random(5)
    bank = DriftBank(DriftOptions(method="adwin"))
    found = []
    for i in range(400):
        p = 0.05 if i < 200 else 0.6
        found += bank.update({"r": 1.0 if rng.random() < p else 0.0}, float(i))
    assert any(d.direction == "up" and d.at >= 200 for d in found)
    assert not any(d.at < 200 for d in found)


def test_drift_detectors_are_lazy_and_bounded() -> None:
    bank = DriftBank(DriftOptions(max_detectors=3))
    for i in range(5):
        bank.update({f"s{i}": 1.0}, T0)
    assert len(bank) == 3
    assert bank.evicted == 2
    assert "s0" not in bank
    assert "s4" in bank
    bank.update({"nan": math.nan}, T0)  # an unknown value is skipped
    assert "nan" not in bank
    with pytest.raises(ValueError, match="finite"):
        SignalDetector(DriftOptions()).update(math.inf)
    with pytest.raises(ValueError, match="method"):
        DriftOptions(method="cusum")  # type: ignore[arg-type]


# ----------------------------------------------------------------- risk


def test_risk_rises_with_a_trend() -> None:
    rng = random.Random(3)
    flat = RiskModel([Watch("disk_free_ratio", 0.05, above=False)])
    falling = RiskModel([Watch("disk_free_ratio", 0.05, above=False)])
    for i in range(40):
        noise = rng.gauss(0, 0.002)
        f = flat.update({"disk_free_ratio": 0.4 + noise}, horizon=3600, cycle=60)
        g = falling.update({"disk_free_ratio": 0.4 - 0.01 * i + noise}, horizon=3600, cycle=60)
    assert f[0].probability < 0.01
    assert g[0].probability > 0.9
    assert g[0].trend < 0
    assert g[0].forecast < 0.05


def test_risk_is_one_past_the_threshold_and_zero_before_enough_samples() -> None:
    model = RiskModel([Watch("rss_bytes", 100.0)])
    assert model.update({"rss_bytes": 50.0}, 600, 60)[0].probability == 0.0
    assert model.update({"rss_bytes": 150.0}, 600, 60)[0].probability == 1.0
    assert model.update({"other": 1.0}, 600, 60) == []
    assert breach_probability(0.0, 1.0, 0.0, above=True) == pytest.approx(0.5)
    assert breach_probability(5.0, 0.0, 1.0, above=False) == 0.0
    with pytest.raises(ValueError, match="positive"):
        model.update({"rss_bytes": 1.0}, 0, 60)


# ----------------------------------------------------------------- planning rules


def _feed(name: str, items: int, **kw: object) -> FeedObservation:
    return FeedObservation(name, runs=1, harvested=1, items=items, captures=5, **kw)  # type: ignore[arg-type]


def test_a_failing_host_lowers_its_rate_then_forces_its_breaker_open_when_sustained() -> None:
    sup = Supervisor()
    kinds: list[list[str]] = []
    made = []
    for i in range(8):
        report = sup.cycle(obs(i, hosts=(host(server_errors=10, transport_errors=2),)))
        kinds.append([p.kind for p in report.proposals])
        made += report.proposals
    assert kinds[0] == []  # one cycle is not enough (confirm_cycles = 2)
    assert kinds[1] == ["lower_host_rate"]
    assert kinds[4] == ["force_breaker"]  # sustain_cycles = 5
    assert all(k == [] for k in (kinds[2], kinds[3], *kinds[5:]))  # never twice while outstanding
    lower = next(p for p in made if p.kind == "lower_host_rate")
    assert lower.target == "a.example"
    assert lower.params == {"factor": 0.5}
    assert lower.signal == "host_error_rate:a.example"
    assert lower.goal == "down"
    assert lower.evidence == {"host_error_rate:a.example": pytest.approx(0.6)}
    assert lower.assess_after == SupervisorOptions().assess_after
    force = next(p for p in made if p.kind == "force_breaker")
    assert force.params == {"state": "forced_open"}
    assert sup.outstanding == {("lower_host_rate", "a.example"), ("force_breaker", "a.example")}


def test_a_proposal_can_come_again_once_the_manager_ended_it() -> None:
    sup = Supervisor()
    failing = (host(server_errors=15),)
    sup.cycle(obs(0, hosts=failing))
    assert [p.kind for p in sup.cycle(obs(1, hosts=failing)).proposals] == ["lower_host_rate"]
    assert sup.cycle(obs(2, hosts=failing)).proposals == ()
    sup.ended("lower_host_rate", "a.example")
    assert [p.kind for p in sup.cycle(obs(3, hosts=failing)).proposals] == ["lower_host_rate"]


def test_a_quiet_cycle_neither_confirms_nor_resets_a_streak() -> None:
    sup = Supervisor()
    sup.cycle(obs(0, hosts=(host(server_errors=15),)))
    idle = sup.cycle(obs(1, hosts=(host(requests=2, server_errors=2),)))  # < min_requests
    assert idle.proposals == ()
    assert idle.findings == ()
    report = sup.cycle(obs(2, hosts=(host(server_errors=15),)))
    assert [p.kind for p in report.proposals] == ["lower_host_rate"]


def test_sustained_429s_lower_the_rate_and_stretch_the_feeds_of_that_host() -> None:
    sup = Supervisor()
    feeds = (_feed("f1", 3, host="a.example"), _feed("f2", 3, host="b.example"))
    for i in range(2):
        report = sup.cycle(obs(i, hosts=(host(throttled=8),), feeds=feeds))
    assert sorted((p.kind, p.target) for p in report.proposals) == [
        ("lower_host_rate", "a.example"),
        ("stretch_interval", "f1"),
    ]
    stretch = next(p for p in report.proposals if p.kind == "stretch_interval")
    assert stretch.params == {"factor": 2.0}
    assert stretch.signal == "host_throttle_rate:a.example"
    assert [f.kind for f in report.findings] == ["host_throttled"]


def test_slow_responses_lower_the_host_rate() -> None:
    sup = Supervisor()
    slow = HostObservation("s.example", requests=10, latency_p50=6.0, latency_p95=9.0)
    sup.cycle(obs(0, hosts=(slow,)))
    report = sup.cycle(obs(1, hosts=(slow,)))
    assert [(p.kind, p.signal) for p in report.proposals] == [
        ("lower_host_rate", "host_latency_p95:s.example")
    ]
    assert [f.kind for f in report.findings] == ["host_slow"]


def test_a_feed_that_silently_turns_empty_is_a_finding_without_action() -> None:
    sup = Supervisor()
    rng = random.Random(9)
    for i in range(20):
        report = sup.cycle(obs(i, feeds=(_feed("news", 10 + rng.randint(-3, 3)),)))
        assert report.findings == ()
    sup.cycle(obs(20, feeds=(_feed("news", 0),)))
    report = sup.cycle(obs(21, feeds=(_feed("news", 0),)))
    assert [(f.kind, f.target, f.signal) for f in report.findings] == [
        ("feed_silent", "news", "feed_items:news")
    ]
    assert report.proposals == ()
    assert report.to_json()["findings"][0]["evidence"] == {"feed_items:news": 0.0}


def test_a_feed_that_rarely_yields_is_not_called_silent() -> None:
    sup = Supervisor()
    for i in range(30):
        report = sup.cycle(obs(i, feeds=(_feed("sparse", 1 if i % 3 == 0 else 0),)))
        assert report.findings == ()


def test_repeated_parse_errors_from_one_feed_propose_quarantine() -> None:
    sup = Supervisor()
    broken = _feed("f", 1, parse_errors=4)
    fine = _feed("g", 5)
    sup.cycle(obs(0, feeds=(broken, fine)))
    report = sup.cycle(obs(1, feeds=(broken, fine)))
    assert [(p.kind, p.target, p.signal) for p in report.proposals] == [
        ("quarantine_feed", "f", "feed_parse_error_rate:f")
    ]
    assert report.proposals[0].evidence == {"feed_parse_error_rate:f": pytest.approx(0.8)}


def test_a_filling_disk_proposes_free_disk_with_goal_up() -> None:
    sup = Supervisor()
    proposals = []
    for i in range(30):
        free = 0.4 - 0.012 * i
        proposals += sup.cycle(obs(i, disk=DiskObservation(free_ratio=free))).proposals
    assert [(p.kind, p.target, p.goal, p.signal) for p in proposals] == [
        ("free_disk", "vault", "up", "disk_free_ratio")
    ]
    assert sup.last is not None
    assert sup.last.collapse_risk > 0.5


def test_a_memory_leak_is_a_finding() -> None:
    sup = Supervisor()
    rng = random.Random(2)
    kinds = []
    for i in range(40):
        rss = 300 * MIB + rng.gauss(0, MIB) + (5 * MIB * (i - 20) if i >= 20 else 0)
        report = sup.cycle(obs(i, process=ProcessObservation(rss_bytes=int(rss))))
        kinds.append([f.kind for f in report.findings])
        assert report.proposals == ()
    assert not any(kinds[:20])
    assert ["memory_leak"] in kinds[20:26]


def test_samples_use_exported_metric_names() -> None:
    sup = Supervisor()
    for i in range(3):
        report = sup.cycle(obs(i, hosts=(host(server_errors=15),)))
    samples = report.samples()
    assert {s.name for s in samples} <= METRIC_NAMES
    by_name = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in samples}
    assert by_name[("echo_stability_score", ())] == report.score
    assert by_name[("echo_collapse_risk", ())] == report.collapse_risk
    assert by_name[("echo_supervisor_finding", (("kind", "host_failing"), ("target", "a.example")))]
    assert {"echo_drift_detected", "echo_stability_component"} <= METRIC_NAMES
    doc = report.to_json()
    assert doc["stability"]["score"] == report.score
    assert isinstance(doc["risks"], list)


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="cycle"):
        SupervisorOptions(cycle=0)
    with pytest.raises(ValueError, match="risk_threshold"):
        SupervisorOptions(risk_threshold=1.5)
    with pytest.raises(ValueError, match="confirm_cycles"):
        SupervisorOptions(confirm_cycles=0)


# ----------------------------------------------------------------- scenarios


def test_scenarios_are_seeded_and_labelled() -> None:
    s = scenario("host_5xx")
    a = [o.to_json() for _, o in ScenarioRun(s, 7)]
    b = [o.to_json() for _, o in ScenarioRun(s, 7)]
    assert a == b
    assert len(a) == s.cycles
    assert not s.faulty(s.start - 1)
    assert s.faulty(s.start)
    assert not s.faulty(s.end)
    assert not scenario("clean").faulty(0)
    during = a[s.start + 5]
    failing = next(h for h in during["hosts"] if h["host"] == "h1.example")
    assert failing["error_rate"] > 0.3
    with pytest.raises(KeyError, match="known"):
        scenario("nope")


@pytest.mark.parametrize("case", [s for s in SCENARIOS if s.finding is not None], ids=str)
def test_each_fault_scenario_is_detected(case: object) -> None:
    s = scenario(case.name)  # type: ignore[attr-defined]
    episode = play(s, 11, Supervisor())
    assert episode.detected_at is not None, s.name
    assert episode.false_alarms <= 2


def test_acting_on_proposals_cuts_requests_to_a_failing_host() -> None:
    s = scenario("host_5xx")
    on = play(s, 3, Supervisor(), act=True)
    off = play(s, 3, Supervisor(), act=False)
    assert on.proposals == off.proposals == {"lower_host_rate": 1, "force_breaker": 1}
    assert on.faulty_requests * 2 <= off.faulty_requests


def test_options_are_replaceable_dataclasses() -> None:
    o = replace(SupervisorOptions(), cycle=30.0, horizon=600.0)
    sup = Supervisor(o)
    assert sup.options.cycle == 30.0
    assert {w.label for w in o.watches()} >= {"disk_free_ratio", "rss_bytes", "rss_growth"}


def test_a_scrape_shows_the_supervisor_families_empty_then_filled(tmp_path: Path) -> None:
    sup = Supervisor()
    for i in range(3):
        sup.cycle(obs(i, hosts=(host(server_errors=15),)))
    report = sup.last
    assert report is not None
    metrics = ServiceMetrics()
    for source, filled in ((tuple, False), (report.samples, True)):
        metrics.state = StateSource(
            schedules=dict,
            running=int,
            due=int,
            paused=bool,
            breakers=dict,
            log_size=int,
            queue_depth=int,
            loop_lag=float,
            checks=dict,
            ticks=int,
            vault_path=tmp_path,
            supervisor=source,
        )
        text = metrics.render().decode()
        families = {f.name: f for f in text_string_to_metric_families(text)}
        assert set(SUPERVISOR_METRICS) <= set(families)
        score = [s.value for s in families["echo_stability_score"].samples]
        finding = [dict(s.labels) for s in families["echo_supervisor_finding"].samples]
        if filled:
            assert score == [report.score]
            assert finding == [{"kind": "host_failing", "target": "a.example"}]
        else:
            assert score == []
            assert finding == []
