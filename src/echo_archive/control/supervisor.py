"""The supervisor (the design's Echo Controller): observe, score, detect drift, plan interventions.

Every ``cycle`` seconds the service hands an
:class:`~echo_archive.control.observe.Observation` to
:meth:`Supervisor.cycle`, which returns a :class:`CycleReport`:

1. the stability score and its components (:mod:`echo_archive.control.stability`);
2. the drifts completed this cycle, one online detector per signal
   (:mod:`echo_archive.control.drift`);
3. the breach risk of each watched signal within ``horizon`` seconds, and
   their maximum, the *collapse risk* (:mod:`echo_archive.control.risk`);
4. *findings*: what the supervisor believes is wrong, level-triggered (one
   per cycle while the condition holds), for alerts and people;
5. *proposals*: :class:`~echo_archive.control.interventions.Proposal` s for
   the intervention manager, edge-triggered: a ``(kind, target)`` is never
   proposed again while one is outstanding; the manager calls
   :meth:`Supervisor.ended` when it ends (done, rejected, rolled back).

:meth:`Supervisor.cycle` is pure apart from the supervisor's own memory
(detectors, trend models, streaks, the outstanding set) and the optional
``stability_changed`` event on the bus: the time is the observation's.

Planning rules (thresholds of :class:`SupervisorOptions`; "for N cycles"
counts consecutive cycles in which the host had at least ``min_requests``
requests, or the feed ran; a cycle without them leaves the count as it was):

======================  =====================  ===================================  =====
fault                   finding                proposals                            risk
======================  =====================  ===================================  =====
host failing            ``host_failing``       ``lower_host_rate`` (factor)         low
... sustained           ``host_failing``       ``force_breaker`` (forced_open)      high
sustained 429s          ``host_throttled``     ``lower_host_rate``, and             low
                                               ``stretch_interval`` of its feeds
slow responses          ``host_slow``          ``lower_host_rate``                  low
feed silently empty     ``feed_silent``        none: alerts use the finding         n/a
parse errors (a feed)   ``feed_parse_errors``  ``quarantine_feed``                  high
disk filling            ``disk_filling``       ``free_disk`` (``vault``, goal up)   high
memory leak             ``memory_leak``        none: alerts use the finding         n/a
======================  =====================  ===================================  =====

The conditions:

host failing
    ``host_error_rate`` (5xx and no answer over requests) >= ``host_error_rate``
    for ``confirm_cycles``; *sustained*: for ``sustain_cycles``, or its breach
    risk >= ``risk_threshold`` for ``sustain_cycles``.
sustained 429s
    ``host_throttle_rate`` >= ``throttle_rate`` for ``confirm_cycles``.
slow responses
    ``host_latency_p95`` >= ``slow_latency`` seconds for ``confirm_cycles``.
feed silently empty
    A feed that usually yields items (an EWMA, weight 0.1, of "yielded any"
    >= ``silent_usual`` after ``drift.warmup`` harvested cycles) yields none
    in ``silent_runs`` harvested cycles in a row, or its items per run drift
    down to 0.
parse errors (a feed)
    ``feed_parse_error_rate`` >= ``parse_error_rate`` for ``parse_error_cycles``.
disk filling
    ``disk_free_ratio``'s breach risk (below the critical ratio within the
    horizon) >= ``risk_threshold`` for ``confirm_cycles``.
memory leak
    ``rss_bytes``'s growth risk (up by more than ``memory_growth`` of its level
    within the horizon) >= ``risk_threshold`` for ``confirm_cycles``, or an
    upward drift of ``rss_bytes``.

Which kinds are high-risk (wait for approval) is the intervention
manager's rule (:mod:`echo_archive.control.interventions`); the column
says what the design expects of it. Each proposal names its ``signal``
(the key it should improve), ``goal`` (``down``, or ``up`` for free disk),
``assess_after`` (seconds) and the ``evidence`` (signal values) behind it.

Samples for the alert engine (:meth:`CycleReport.samples`, names in
:data:`~echo_archive.control.metrics.METRICS`): ``echo_stability_score``,
``echo_stability_component{component}``, ``echo_collapse_risk``,
``echo_drift_detected{signal}`` (1 in the cycle a drift completed) and
``echo_supervisor_finding{kind,target}``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from echo_archive.control.alerts import Sample
from echo_archive.control.drift import Drift, DriftBank, DriftOptions
from echo_archive.control.interventions import Proposal
from echo_archive.control.observe import Observation
from echo_archive.control.risk import BreachRisk, RiskModel, RiskOptions, Watch
from echo_archive.control.stability import (
    COMPONENTS,
    BandTracker,
    Stability,
    StabilityThresholds,
    StabilityWeights,
    stability,
)
from echo_archive.events import EventBus

__all__ = [
    "CycleReport",
    "Finding",
    "Supervisor",
    "SupervisorOptions",
]


@dataclass(frozen=True, slots=True)
class SupervisorOptions:
    """The supervisor's parameters (``[supervisor]`` of ``echo.toml`` where names overlap).

    Attributes:
        enabled: whether the service runs the supervisor.
        cycle: seconds between two cycles (60).
        weights: the stability score's component weights.
        thresholds: the stability components' thresholds.
        horizon: seconds ahead the collapse risk looks (3600).
        assess_after: seconds after execution at which a proposal's effect is measured (600).
        drift: the drift detectors' parameters.
        risk: the trend models' parameters.
        risk_threshold: a breach probability at or above which a risk rule holds (0.5).
        confirm_cycles: cycles a condition must hold before it is a finding (2).
        sustain_cycles: cycles a host must keep failing before ``force_breaker`` (5).
        min_requests: requests a host needs in a cycle for its rates to count (5).
        host_error_rate: 5xx and transport errors over requests that mean failing (0.2).
        throttle_rate: 429s over requests that mean throttled (0.1).
        slow_latency: p95 seconds that mean slow (5).
        parse_error_rate: parse errors over captures that count (0.2, ``[health]``'s).
        parse_error_cycles: cycles of parse errors before ``quarantine_feed`` (2).
        silent_runs: harvested cycles with no items before ``feed_silent`` (2).
        silent_usual: how usually (EWMA of "yielded any", weight 0.1) a feed
            must have yielded for its silence to count (0.8), after
            ``drift.warmup`` harvested cycles.
        memory_growth: resident memory growth within the horizon that means
            a leak (0.10, ``[health]``'s).
        rate_factor: ``lower_host_rate``'s factor (0.5: halve the rate).
        stretch_factor: ``stretch_interval``'s factor (2: double the interval).

    Raises:
        ValueError: a parameter out of range.
    """

    enabled: bool = True
    cycle: float = 60.0
    weights: StabilityWeights = field(default_factory=StabilityWeights)
    thresholds: StabilityThresholds = field(default_factory=StabilityThresholds)
    horizon: float = 3600.0
    assess_after: float = 600.0
    drift: DriftOptions = field(default_factory=DriftOptions)
    risk: RiskOptions = field(default_factory=RiskOptions)
    risk_threshold: float = 0.5
    confirm_cycles: int = 2
    sustain_cycles: int = 5
    min_requests: int = 5
    host_error_rate: float = 0.2
    throttle_rate: float = 0.1
    slow_latency: float = 5.0
    parse_error_rate: float = 0.2
    parse_error_cycles: int = 2
    silent_runs: int = 2
    silent_usual: float = 0.8
    memory_growth: float = 0.10
    rate_factor: float = 0.5
    stretch_factor: float = 2.0

    def __post_init__(self) -> None:
        if self.cycle <= 0 or self.horizon <= 0 or self.assess_after < 0:
            raise ValueError("supervisor cycle and horizon must be > 0, assess_after >= 0")
        for name in ("risk_threshold", "host_error_rate", "throttle_rate", "parse_error_rate"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"supervisor {name} {getattr(self, name)}: must be in (0, 1]")
        if not 0 < self.silent_usual <= 1 or self.memory_growth <= 0 or self.slow_latency <= 0:
            raise ValueError("supervisor silent_usual in (0, 1], memory_growth, slow_latency > 0")
        for name in ("confirm_cycles", "sustain_cycles", "parse_error_cycles", "silent_runs"):
            if getattr(self, name) < 1:
                raise ValueError(f"supervisor {name} {getattr(self, name)}: must be at least 1")
        if self.min_requests < 1 or not 0 < self.rate_factor < 1 or self.stretch_factor <= 1:
            raise ValueError("min_requests >= 1, rate_factor in (0, 1), stretch_factor > 1")

    def watches(self) -> tuple[Watch, ...]:
        """The signals the collapse risk watches, with their thresholds."""
        t = self.thresholds
        return (
            Watch("disk_free_ratio", t.disk_critical_ratio, above=False),
            Watch("rss_bytes", t.rss_limit_bytes),
            Watch("rss_bytes", 0.0, growth=self.memory_growth, name="rss_growth"),
            Watch("loop_lag_seconds", t.lag_limit),
            Watch("commit_latency_seconds", t.commit_limit),
            Watch("host_error_rate", self.host_error_rate),
            Watch("feed_parse_error_rate", self.parse_error_rate),
        )


@dataclass(frozen=True, slots=True)
class Finding:
    """Something the supervisor believes is wrong this cycle (module docstring's table).

    Attributes:
        kind: ``host_failing``, ``host_throttled``, ``host_slow``,
            ``feed_silent``, ``feed_parse_errors``, ``disk_filling`` or ``memory_leak``.
        target: the host, the feed, or ``vault`` / ``process``.
        signal: the signal key that shows it.
        reason: one sentence for a person (names and numbers only, never source text).
        evidence: signal values behind it.
    """

    kind: str
    target: str
    signal: str
    reason: str
    evidence: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The fields, JSON-ready."""
        return {
            "kind": self.kind,
            "target": self.target,
            "signal": self.signal,
            "reason": self.reason,
            "evidence": dict(self.evidence),
        }


@dataclass(frozen=True, slots=True)
class CycleReport:
    """What one supervisor cycle concluded.

    Attributes:
        at: POSIX seconds (the observation's).
        stability: the score, components and band.
        band_change: ``(old, new)`` when the band changed this cycle, else None.
        drifts: drifts completed this cycle.
        risks: each watched signal's breach risk.
        collapse_risk: the largest risk probability (0 without any), in [0, 1].
        findings: the findings holding this cycle.
        proposals: the interventions newly proposed this cycle.
    """

    at: float
    stability: Stability
    band_change: tuple[str, str] | None = None
    drifts: tuple[Drift, ...] = ()
    risks: tuple[BreachRisk, ...] = ()
    collapse_risk: float = 0.0
    findings: tuple[Finding, ...] = ()
    proposals: tuple[Proposal, ...] = ()

    @property
    def score(self) -> float:
        """The stability score, in [0, 1]."""
        return self.stability.score

    def to_json(self) -> dict[str, Any]:
        """Everything, JSON-ready (proposals as their fields)."""
        return {
            "at": self.at,
            "stability": self.stability.to_json(),
            "band_change": list(self.band_change) if self.band_change else None,
            "drifts": [d.to_json() for d in self.drifts],
            "risks": [r.to_json() for r in self.risks],
            "collapse_risk": self.collapse_risk,
            "findings": [f.to_json() for f in self.findings],
            "proposals": [_proposal_json(p) for p in self.proposals],
        }

    def samples(self) -> list[Sample]:
        """The report as alert-engine samples (names in ``METRICS``; module docstring)."""
        out = [
            Sample.of("echo_stability_score", self.stability.score),
            Sample.of("echo_collapse_risk", self.collapse_risk),
        ]
        out += [
            Sample.of("echo_stability_component", self.stability.components[c], component=c)
            for c in COMPONENTS
        ]
        out += [Sample.of("echo_drift_detected", 1.0, signal=d.signal) for d in self.drifts]
        out += [
            Sample.of("echo_supervisor_finding", 1.0, kind=f.kind, target=f.target)
            for f in self.findings
        ]
        return out


def _proposal_json(p: Proposal) -> dict[str, Any]:
    return {
        "kind": p.kind,
        "target": p.target,
        "params": dict(p.params),
        "reason": p.reason,
        "signal": p.signal,
        "goal": p.goal,
        "assess_after": p.assess_after,
        "evidence": dict(p.evidence),
    }


_USUAL_WEIGHT = 0.1
"""EWMA weight of a feed's "yielded any items" (see ``silent_usual``)."""


@dataclass
class _FeedMemory:
    harvested: int = 0
    usual: float = 0.0
    zeros: int = 0


class Supervisor:
    """The Echo Controller's planning core (module docstring).

    Args:
        options: parameters (None: the defaults).
        bus: where ``stability_changed`` events go (None: none published).
    """

    def __init__(self, options: SupervisorOptions | None = None, bus: EventBus | None = None):
        self.options = options or SupervisorOptions()
        self.bus = bus
        self.drift = DriftBank(self.options.drift)
        self.risk = RiskModel(self.options.watches(), self.options.risk)
        self.bands = BandTracker(self.options.thresholds)
        self._outstanding: set[tuple[str, str]] = set()
        self._streaks: dict[tuple[str, str], int] = {}
        self._feeds: dict[str, _FeedMemory] = {}
        self.last: CycleReport | None = None
        """The latest report (what ``/status`` and the API show)."""

    # ------------------------------------------------------------------ outstanding
    @property
    def outstanding(self) -> frozenset[tuple[str, str]]:
        """The ``(kind, target)`` of the proposals not yet ended."""
        return frozenset(self._outstanding)

    def ended(self, kind: str, target: str) -> None:
        """The manager's callback: the intervention ``(kind, target)`` ended (any way)."""
        self._outstanding.discard((kind, target))

    # ------------------------------------------------------------------ the cycle
    def cycle(self, observation: Observation) -> CycleReport:
        """Score ``observation``, detect drifts and risks, and plan (module docstring).

        Returns:
            The :class:`CycleReport`; also kept as :attr:`last`.
        """
        o = self.options
        signals = observation.signals()
        score = stability(observation, o.weights, o.thresholds)
        change = self.bands.update(score.score)
        drifts = self.drift.update(signals, observation.at)
        # the horizon in cycles of the length observed (the configured one for a first cycle)
        cycle = observation.seconds if observation.seconds > 0 else o.cycle
        risks = self.risk.update(signals, o.horizon, cycle)
        findings: list[Finding] = []
        proposals: list[Proposal] = []
        plan = _Plan(self, signals, findings, proposals)
        self._hosts(observation, risks, plan)
        self._feeds_rules(observation, drifts, plan)
        self._resources(drifts, risks, plan)
        report = CycleReport(
            at=observation.at,
            stability=score,
            band_change=change,
            drifts=tuple(drifts),
            risks=tuple(risks),
            collapse_risk=max((r.probability for r in risks), default=0.0),
            findings=tuple(findings),
            proposals=tuple(proposals),
        )
        if change is not None and self.bus is not None:
            self.bus.emit(
                "stability_changed",
                old=change[0],
                new=change[1],
                score=score.score,
                components=dict(score.components),
            )
        self.last = report
        return report

    def _streak(self, rule: str, target: str, holds: bool | None) -> int:
        """Count consecutive cycles ``holds``; None (not measurable) keeps the count."""
        key = (rule, target)
        if holds is None:
            return self._streaks.get(key, 0)
        count = self._streaks.get(key, 0) + 1 if holds else 0
        if count:
            self._streaks[key] = count
        else:
            self._streaks.pop(key, None)
        return count

    def _hosts(self, obs: Observation, risks: list[BreachRisk], plan: _Plan) -> None:
        o = self.options
        risk_of = {r.signal: r.probability for r in risks}
        for h in obs.hosts:
            seen = h.requests >= o.min_requests
            err_key, thr_key, lat_key = (
                f"host_error_rate:{h.host}",
                f"host_throttle_rate:{h.host}",
                f"host_latency_p95:{h.host}",
            )
            error = h.error_rate or 0.0
            failing = self._streak("failing", h.host, error >= o.host_error_rate if seen else None)
            risky = self._streak(
                "failing_risk",
                h.host,
                risk_of.get(err_key, 0.0) >= o.risk_threshold if seen else None,
            )
            if seen and failing >= o.confirm_cycles:
                reason = (
                    f"host {h.host}: {error:.0%} of {h.requests} requests failed (5xx or no "
                    f"answer) for {failing} cycles"
                )
                plan.find("host_failing", h.host, err_key, reason)
                plan.propose("lower_host_rate", h.host, err_key, reason, factor=o.rate_factor)
                if max(failing, risky) >= o.sustain_cycles:
                    plan.propose(
                        "force_breaker",
                        h.host,
                        err_key,
                        reason + "; sustained: open its breaker",
                        state="forced_open",
                    )
            throttle = h.throttle_rate or 0.0
            throttled = self._streak(
                "throttled", h.host, throttle >= o.throttle_rate if seen else None
            )
            if seen and throttled >= o.confirm_cycles:
                reason = f"host {h.host}: {throttle:.0%} of requests got 429 for {throttled} cycles"
                plan.find("host_throttled", h.host, thr_key, reason)
                plan.propose("lower_host_rate", h.host, thr_key, reason, factor=o.rate_factor)
                for f in obs.feeds:
                    if f.host == h.host:
                        plan.propose(
                            "stretch_interval",
                            f.feed,
                            thr_key,
                            reason + f"; feed {f.feed} polls it",
                            factor=o.stretch_factor,
                        )
            p95 = h.latency_p95
            slow = self._streak(
                "slow", h.host, (p95 is not None and p95 >= o.slow_latency) if seen else None
            )
            if seen and slow >= o.confirm_cycles and p95 is not None:
                reason = f"host {h.host}: p95 latency {p95:.1f} s for {slow} cycles"
                plan.find("host_slow", h.host, lat_key, reason)
                plan.propose("lower_host_rate", h.host, lat_key, reason, factor=o.rate_factor)

    def _feeds_rules(self, obs: Observation, drifts: list[Drift], plan: _Plan) -> None:
        o = self.options
        dropped = {d.signal for d in drifts if d.direction == "down" and d.value <= 0}
        for f in obs.feeds:
            items_key, parse_key = f"feed_items:{f.feed}", f"feed_parse_error_rate:{f.feed}"
            memory = self._feeds.setdefault(f.feed, _FeedMemory())
            if f.harvested:
                empty = f.items == 0
                memory.zeros = memory.zeros + 1 if empty else 0
                usual = memory.harvested >= o.drift.warmup and memory.usual >= o.silent_usual
                if usual and (memory.zeros >= o.silent_runs or (empty and items_key in dropped)):
                    plan.find(
                        "feed_silent",
                        f.feed,
                        items_key,
                        f"feed {f.feed}: no items in its last {memory.zeros} harvested "
                        "cycles, though it usually yields some",
                    )
                elif memory.zeros == 0 or not usual:
                    # a silence stops teaching what is usual: the feed stays "usual" while silent
                    memory.usual += _USUAL_WEIGHT * ((0.0 if empty else 1.0) - memory.usual)
                    memory.harvested += 1
            rate = f.parse_error_rate
            bad = self._streak(
                "parse", f.feed, None if rate is None else rate >= o.parse_error_rate
            )
            if rate is not None and bad >= o.parse_error_cycles:
                reason = (
                    f"feed {f.feed}: {f.parse_errors} of {f.captures} responses failed to parse, "
                    f"{bad} cycles in a row"
                )
                plan.find("feed_parse_errors", f.feed, parse_key, reason)
                plan.propose("quarantine_feed", f.feed, parse_key, reason)

    def _resources(self, drifts: list[Drift], risks: list[BreachRisk], plan: _Plan) -> None:
        o = self.options
        disk = next((r for r in risks if r.signal == "disk_free_ratio"), None)
        filling = self._streak(
            "disk", "vault", None if disk is None else disk.probability >= o.risk_threshold
        )
        if disk is not None and filling >= o.confirm_cycles:
            reason = (
                f"disk: {disk.value:.1%} free, projected {max(0.0, disk.forecast):.1%} in "
                f"{o.horizon:g} s (P(below {disk.threshold:.0%}) = {disk.probability:.2f})"
            )
            plan.find("disk_filling", "vault", "disk_free_ratio", reason)
            plan.propose("free_disk", "vault", "disk_free_ratio", reason, goal="up")
        growth = next((r for r in risks if r.watch == "rss_growth"), None)
        leaking = self._streak(
            "leak", "process", None if growth is None else growth.probability >= o.risk_threshold
        )
        drifted = any(d.signal == "rss_bytes" and d.direction == "up" for d in drifts)
        if growth is not None and (leaking >= o.confirm_cycles or drifted):
            plan.find(
                "memory_leak",
                "process",
                "rss_bytes",
                f"resident memory {growth.value / 2**20:.0f} MiB, growing "
                f"{growth.trend / 2**20:.1f} MiB a cycle",
            )


class _Plan:
    """Collects one cycle's findings and proposals, skipping outstanding proposals."""

    def __init__(
        self,
        supervisor: Supervisor,
        signals: dict[str, float],
        findings: list[Finding],
        proposals: list[Proposal],
    ) -> None:
        self.supervisor = supervisor
        self.signals = signals
        self.findings = findings
        self.proposals = proposals

    def _evidence(self, keys: Iterable[str]) -> dict[str, float]:
        return {k: self.signals[k] for k in keys if k in self.signals}

    def find(self, kind: str, target: str, signal: str, reason: str) -> None:
        self.findings.append(Finding(kind, target, signal, reason, self._evidence([signal])))

    def propose(
        self,
        kind: str,
        target: str,
        signal: str,
        reason: str,
        goal: Literal["down", "up"] = "down",
        **params: float | int | str | bool,
    ) -> None:
        key = (kind, target)
        if key in self.supervisor._outstanding:
            return
        self.supervisor._outstanding.add(key)
        self.proposals.append(
            Proposal(
                kind=kind,
                target=target,
                params=dict(params),
                reason=reason,
                signal=signal,
                goal=goal,
                assess_after=self.supervisor.options.assess_after,
                evidence=self._evidence([signal]),
            )
        )
