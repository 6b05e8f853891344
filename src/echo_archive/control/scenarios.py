"""A labelled fault-scenario set for the supervisor, in accelerated, seeded simulation.

Each :class:`Scenario` describes a small ECHO deployment (4 hosts, 2 feeds
each, every feed run once a cycle) and at most one fault, switched on for
the cycles ``[start, end)``; :class:`ScenarioRun` plays it cycle by cycle
and yields real :class:`~echo_archive.control.observe.Observation` s: its
simulated fetches go through a real
:class:`~echo_archive.harvest.hoststats.HostStats` and its feed runs are
``feed_run`` events on a real :class:`~echo_archive.events.EventBus`, read by
the real :class:`~echo_archive.control.observe.Observer`. The set (``clean``
plus one per fault class of issue 10):

=================  ==============================================  ======================
scenario           fault (from ``start`` for ``end - start`` cycles)  finding it should raise
=================  ==============================================  ======================
``clean``          none                                            none
``host_5xx``       ``h1.example`` answers 50% of requests with 503  ``host_failing``
``throttle_429``   ``h2.example`` answers 40% with 429              ``host_throttled``
``slow``           ``h3.example``'s median latency 8 s (0.3 s)      ``host_slow``
``silent_feed``    feed ``f3`` keeps answering but yields no item   ``feed_silent``
``parse_errors``   60% of feed ``f5``'s responses fail to parse     ``feed_parse_errors``
``disk_filling``   free disk falls from 40% to the critical 5%      ``disk_filling``
                   in 50 cycles (within the 60-cycle horizon),
                   then retention frees it
``leak``           resident memory grows 4 MiB a cycle (from        ``memory_leak``
                   300 MiB), then a restart frees it
=================  ==============================================  ======================

Clean behaviour (every cycle, every scenario): each fetch fails with 0.5%
5xx, 0.2% 429 and 0.3% transport errors and is retried up to 3 attempts
(the engine's default); latencies are log-normal (median 0.3 s, sigma 0.4);
items per run are Poisson (means 5 to 30 by feed); 0.2% of responses fail to
parse; CPU, memory, lag, disk and the writer carry small Gaussian noise.

Supervisor on: :meth:`ScenarioRun.apply` gives the model the proposals'
effect the way the intervention manager would carry them out, for the rest
of the run (no assessment, no rollback: that is the manager's): a
``lower_host_rate`` multiplies the host's fetches a cycle by its factor, a
``force_breaker`` ``forced_open`` stops them, a ``stretch_interval`` runs
the feed every ``factor`` cycles, a ``quarantine_feed`` stops the feed. A
``free_disk`` is not modelled (how much retention frees is unknown here).
The real breakers' own opening is not modelled either. Cycles are 60
simulated seconds; nothing sleeps.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final

from echo_archive.control.interventions import Proposal
from echo_archive.control.observe import (
    DiskObservation,
    Observation,
    Observer,
    ProcessObservation,
    Pulls,
)
from echo_archive.control.supervisor import Supervisor
from echo_archive.events import EventBus
from echo_archive.harvest.hoststats import HostStats

__all__ = [
    "CYCLE",
    "FEEDS",
    "HOSTS",
    "RECOVERY",
    "SCENARIOS",
    "Episode",
    "Scenario",
    "ScenarioRun",
    "play",
    "scenario",
]

CYCLE: Final = 60.0
"""Simulated seconds per cycle."""

HOSTS: Final = ("h0.example", "h1.example", "h2.example", "h3.example")
"""The simulated hosts."""

FEEDS: Final = {
    f"f{i}": (HOSTS[i // 2], mean) for i, mean in enumerate((5, 12, 20, 8, 15, 30, 6, 10))
}
"""Feed name -> (host, mean items per run)."""

FETCHES: Final = 10
"""Fetches a feed run makes at the host's full rate."""

MAX_ATTEMPTS: Final = 3
"""Attempts per fetch (the engine's default retry policy)."""

_MIB: Final = 1024 * 1024
_T0: Final = 1_800_000_000.0


@dataclass(frozen=True, slots=True)
class Scenario:
    """One labelled scenario.

    Attributes:
        name: its name (``host_5xx``).
        description: one line.
        finding: the finding kind the supervisor should raise while faulty (None: clean).
        target: the finding's target (a host, a feed, ``vault``, ``process``).
        start, end: the faulty cycles, ``[start, end)`` (clean: empty).
        cycles: cycles played in all.
    """

    name: str
    description: str
    finding: str | None = None
    target: str = ""
    start: int = 30
    end: int = 90
    cycles: int = 120

    def faulty(self, cycle: int) -> bool:
        """Whether ``cycle`` (0-based) is labelled faulty."""
        return self.finding is not None and self.start <= cycle < self.end


SCENARIOS: Final = (
    Scenario("clean", "no fault", start=0, end=0),
    Scenario("host_5xx", "a host answers 50% 503 for an hour", "host_failing", "h1.example"),
    Scenario("throttle_429", "a host answers 40% 429 for an hour", "host_throttled", "h2.example"),
    Scenario("slow", "a host's median latency is 8 s for an hour", "host_slow", "h3.example"),
    Scenario("silent_feed", "a feed keeps answering but yields no item", "feed_silent", "f3"),
    Scenario("parse_errors", "60% of a feed's responses fail to parse", "feed_parse_errors", "f5"),
    Scenario(
        "disk_filling",
        "free disk falls to the critical 5% in 50 cycles",
        "disk_filling",
        "vault",
        end=80,
    ),
    Scenario("leak", "resident memory grows 4 MiB a cycle", "memory_leak", "process"),
)
"""The scenario set (module docstring)."""


def scenario(name: str) -> Scenario:
    """The scenario called ``name``.

    Raises:
        KeyError: no scenario has that name.
    """
    for s in SCENARIOS:
        if s.name == name:
            return s
    raise KeyError(f"no scenario {name!r} (known: {', '.join(s.name for s in SCENARIOS)})")


@dataclass
class _Effects:
    rate: dict[str, float] = field(default_factory=dict)
    forced_open: set[str] = field(default_factory=set)
    stretch: dict[str, float] = field(default_factory=dict)
    quarantined: set[str] = field(default_factory=set)


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's Poisson sampler (means here are small)."""
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


class ScenarioRun:
    """One seeded play of a :class:`Scenario` (iterate it for ``(cycle, observation)``).

    Args:
        scenario: what to play.
        seed: the random seed (same seed, same observations, until proposals are applied).

    Attributes:
        requests: requests sent to each host so far (every attempt).
        faulty_requests: requests sent to the scenario's target host during
            its faulty cycles (0 for other scenarios).
    """

    def __init__(self, scenario: Scenario, seed: int) -> None:
        self.scenario = scenario
        self.rng = random.Random(seed)
        self.bus = EventBus()
        self.stats = HostStats()
        self.effects = _Effects()
        self.requests: dict[str, int] = dict.fromkeys(HOSTS, 0)
        self.faulty_requests = 0
        self._cycle = 0
        self._process = ProcessObservation()
        self._disk = DiskObservation()
        self.observer = Observer(
            self.bus,
            self.stats,
            Pulls(
                process=lambda: self._process,
                disk=lambda: self._disk,
                queue_depth=lambda: _poisson(self.rng, 1.0),
                commit_latency=lambda: abs(self.rng.gauss(0.05, 0.01)),
                breakers=self._breakers,
                feed_hosts=lambda: {name: host for name, (host, _) in FEEDS.items()},
            ),
            start=_T0,
        )

    def _breakers(self) -> dict[str, str]:
        return {h: "forced_open" if h in self.effects.forced_open else "closed" for h in HOSTS}

    def apply(self, proposals: Sequence[Proposal]) -> None:
        """Give the model the effect of ``proposals`` (module docstring), from the next cycle."""
        e = self.effects
        for p in proposals:
            factor = p.params.get("factor")
            if p.kind == "lower_host_rate" and isinstance(factor, int | float):
                e.rate[p.target] = e.rate.get(p.target, 1.0) * float(factor)
            elif p.kind == "force_breaker" and p.params.get("state") == "forced_open":
                e.forced_open.add(p.target)
            elif p.kind == "stretch_interval" and isinstance(factor, int | float):
                e.stretch[p.target] = e.stretch.get(p.target, 1.0) * float(factor)
            elif p.kind == "quarantine_feed":
                e.quarantined.add(p.target)

    def __iter__(self) -> Iterator[tuple[int, Observation]]:
        while self._cycle < self.scenario.cycles:
            yield self._cycle, self.step()

    def step(self) -> Observation:
        """Play the next cycle and return its observation."""
        i, s = self._cycle, self.scenario
        fault = s.name if s.faulty(i) else "clean"
        for name, (host, mean) in FEEDS.items():
            self._run_feed(i, name, host, mean, fault)
        self._resources(i, fault)
        self._cycle += 1
        return self.observer.observe(_T0 + (i + 1) * CYCLE)

    def _attempt(self, host: str, fault: str) -> int | None:
        """One attempt: the status (None: no answer); recorded in the host stats."""
        rng, target = self.rng, self.scenario.target
        p5xx, p429 = 0.005, 0.002
        median = 0.3
        if host == target and fault == "host_5xx":
            p5xx = 0.5
        if host == target and fault == "throttle_429":
            p429 = 0.4
        if host == target and fault == "slow":
            median = 8.0
        roll = rng.random()
        status: int | None = 200
        if roll < p5xx:
            status = 503
        elif roll < p5xx + p429:
            status = 429
        elif roll < p5xx + p429 + 0.003:
            status = None
        self.stats.record(host, status, median * math.exp(rng.gauss(0.0, 0.4)))
        self.requests[host] += 1
        if host == target and self.scenario.faulty(self._cycle):
            self.faulty_requests += 1
        return status

    def _run_feed(self, cycle: int, name: str, host: str, mean: float, fault: str) -> None:
        e, rng = self.effects, self.rng
        if name in e.quarantined or cycle % max(1, round(e.stretch.get(name, 1.0))):
            return
        fetches = 0 if host in e.forced_open else max(1, round(FETCHES * e.rate.get(host, 1.0)))
        ok = 0
        for _ in range(fetches):
            for _attempt in range(MAX_ATTEMPTS):
                status = self._attempt(host, fault)
                if status is not None and status < 500 and status != 429:
                    ok += 1
                    break
        p_parse = 0.6 if fault == "parse_errors" and name == self.scenario.target else 0.002
        parse_errors = sum(1 for _ in range(ok) if rng.random() < p_parse)
        silent = fault == "silent_feed" and name == self.scenario.target
        items = 0 if silent or not ok else _poisson(rng, mean * ok / FETCHES)
        self.bus.emit(
            "feed_run",
            feed=name,
            phase="finished",
            outcome="harvested" if ok else "failed",
            new=items,
            versions=0,
            tombstones=0,
            captures=ok,
            parse_errors=parse_errors,
            seconds=1.0,
        )

    def _resources(self, cycle: int, fault: str) -> None:
        rng, s = self.rng, self.scenario
        rss = 300 * _MIB + rng.gauss(0.0, 2 * _MIB)
        free = 0.40 - 1e-5 * cycle + rng.gauss(0.0, 0.0005)
        if fault == "leak":  # after the fault: the leaking process was restarted
            rss += 4 * _MIB * (cycle - s.start + 1)
        if fault == "disk_filling":  # after the fault: retention freed the space
            free -= 0.35 / 50 * (cycle - s.start + 1)
        free = min(1.0, max(0.0, free))
        self._process = ProcessObservation(
            cpu_fraction=abs(rng.gauss(0.1, 0.02)),
            rss_bytes=int(rss),
            open_fds=40 + _poisson(rng, 2.0),
            loop_lag_seconds=abs(rng.gauss(0.01, 0.005)),
        )
        total = 100 * 1024**3
        self._disk = DiskObservation(free_bytes=int(free * total), free_ratio=free)


RECOVERY: Final = 10
"""Cycles after a fault's end that count neither as faulty nor as clean (the signals settle)."""


@dataclass(frozen=True, slots=True)
class Episode:
    """How the supervisor did on one seeded play of a scenario.

    Attributes:
        scenario: the scenario's name.
        seed: the seed.
        detected_at: the first faulty cycle whose report held the expected
            finding for the expected target (None: never, or a clean scenario).
        cycles_to_detect: ``detected_at - start + 1`` (1: the fault's first cycle).
        clean_cycles: cycles labelled clean (outside the fault and the
            :data:`RECOVERY` cycles after it).
        false_alarms: clean cycles whose report held any finding.
        off_target: faulty cycles with a finding other than the expected one.
        faulty_requests: requests sent to the faulty host during the fault.
        proposals: ``kind -> count`` of the proposals made.
    """

    scenario: str
    seed: int
    detected_at: int | None
    cycles_to_detect: int | None
    clean_cycles: int
    false_alarms: int
    off_target: int
    faulty_requests: int
    proposals: dict[str, int]


def play(scenario: Scenario, seed: int, supervisor: Supervisor, *, act: bool = True) -> Episode:
    """Play ``scenario`` with ``seed`` under ``supervisor`` and score it.

    Args:
        scenario: what to play.
        seed: the random seed.
        supervisor: a fresh :class:`~echo_archive.control.supervisor.Supervisor`.
        act: apply the proposals' effect to the model (supervisor on); False
            observes only (supervisor off, for the request comparison).
    """
    run = ScenarioRun(scenario, seed)
    detected: int | None = None
    clean = false_alarms = off_target = 0
    proposals: dict[str, int] = {}
    for cycle, observation in run:
        report = supervisor.cycle(observation)
        for p in report.proposals:
            proposals[p.kind] = proposals.get(p.kind, 0) + 1
        if act:
            run.apply(report.proposals)
        expected = [
            f for f in report.findings if (f.kind, f.target) == (scenario.finding, scenario.target)
        ]
        if scenario.faulty(cycle):
            if expected and detected is None:
                detected = cycle
            if len(report.findings) > len(expected):
                off_target += 1
        elif scenario.finding is None or not scenario.end <= cycle < scenario.end + RECOVERY:
            clean += 1
            false_alarms += 1 if report.findings else 0
    return Episode(
        scenario=scenario.name,
        seed=seed,
        detected_at=detected,
        cycles_to_detect=None if detected is None else detected - scenario.start + 1,
        clean_cycles=clean,
        false_alarms=false_alarms,
        off_target=off_target,
        faulty_requests=run.faulty_requests,
        proposals=proposals,
    )
