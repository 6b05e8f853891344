r"""The stability score: one number in [0, 1] saying how well ECHO is running.

The supervisor (:mod:`echo_archive.control.supervisor`) scores every
:class:`~echo_archive.control.observe.Observation`. Four component scores,
each in [0, 1] (1: fine), are combined by a weighted mean:

.. code-block:: text

    score = (w_r * resource + w_e * error + w_p * performance + w_d * dependency)
            / (w_r + w_e + w_p + w_d)

with the weights of :class:`StabilityWeights` (defaults 0.25, 0.35, 0.2,
0.2: errors weigh most, as the design's failure-rate alert is its first
rule; ``[supervisor] weights`` in ``echo.toml``). Two helpers:

.. code-block:: text

    clamp(x)          = min(1, max(0, x))
    ramp(x, ok, bad)  = 1 - clamp((x - ok) / (bad - ok))     1 at or below ok, 0 at or above bad

The components (thresholds of :class:`StabilityThresholds`; an unknown
measurement counts as fine, so a cycle with nothing to see scores 1):

``resource``
    The weakest resource decides: ``min(disk, memory, cpu)`` where
    ``disk = clamp((free_ratio - disk_critical_ratio) / (disk_ok_ratio -
    disk_critical_ratio))`` (1 with ``disk_ok_ratio`` free or more, 0 at the
    critical ratio, as ``[health]``'s 5%), ``memory = ramp(rss_bytes,
    rss_ok_bytes, rss_limit_bytes)`` and ``cpu = ramp(cpu_fraction, cpu_ok,
    cpu_limit)``.
``error``
    ``1 - clamp(failure_rate / error_threshold)`` where ``failure_rate`` is
    the largest of: failed requests (5xx, 429 and transport errors) over
    requests, summed over hosts; failed feed runs over feed runs; parse
    errors over captures. ``error_threshold`` is the design's failure-rate
    alert, 0.3: at that rate the error component is 0.
``performance``
    ``min(latency, lag, commit)``: ``latency = ramp(L, latency_ok,
    latency_limit)`` where ``L`` is the request-weighted mean of the hosts'
    p95 latencies (seconds), ``lag = ramp(loop_lag_seconds, lag_ok,
    lag_limit)`` (``[health]``'s event-loop warning and critical, 0.5 and 5 s)
    and ``commit = ramp(commit_latency_seconds, commit_ok, commit_limit)``.
``dependency``
    The share of requests that went to hosts whose breaker lets them
    through: ``sum_h(requests_h * c_h) / sum_h(requests_h)`` with ``c_h`` = 1
    for CLOSED or DISABLED (or no breaker yet), 0.5 for HALF_OPEN, 0 for OPEN
    or FORCED_OPEN (resilience4j states). With no request in the cycle the
    hosts count equally; with no host it is 1.

Every component is non-increasing in each "bad" measurement (error rates,
latencies, lag, memory, CPU) and non-decreasing in free disk, so the score
is too (tests check the score stays in [0, 1] and is monotone in the error
rate).

Bands: the score falls in ``stable`` (>= 0.8), ``degraded`` (>= 0.5) or
``unstable``; :class:`BandTracker` says when the band changes, which the
supervisor publishes as a ``stability_changed`` event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from echo_archive.config import SupervisorWeights
from echo_archive.control.observe import Observation

__all__ = [
    "COMPONENTS",
    "BandTracker",
    "Stability",
    "StabilityThresholds",
    "StabilityWeights",
    "band",
    "clamp",
    "failure_rate",
    "ramp",
    "stability",
]

COMPONENTS: Final = ("resource", "error", "performance", "dependency")
"""The component names, in the order of the formula."""

_GIB: Final = 1024**3


def clamp(x: float) -> float:
    """``min(1, max(0, x))``."""
    return min(1.0, max(0.0, x))


def ramp(x: float | None, ok: float, bad: float) -> float:
    """1 at or below ``ok``, 0 at or above ``bad``, linear between (None: 1)."""
    if x is None:
        return 1.0
    if bad <= ok:
        return 1.0 if x <= ok else 0.0
    return 1.0 - clamp((x - ok) / (bad - ok))


_DEFAULTS: Final = SupervisorWeights()
"""The one set of default weights: ``[supervisor.weights]``'s."""


@dataclass(frozen=True, slots=True)
class StabilityWeights:
    """The weights of the components (``[supervisor] weights``); >= 0, not all 0.

    Raises:
        ValueError: a negative weight, or every weight 0.
    """

    resource: float = _DEFAULTS.resource
    error: float = _DEFAULTS.error
    performance: float = _DEFAULTS.performance
    dependency: float = _DEFAULTS.dependency

    def __post_init__(self) -> None:
        values = [self.resource, self.error, self.performance, self.dependency]
        if any(w < 0 for w in values) or sum(values) <= 0:
            raise ValueError(f"stability weights {values}: each must be >= 0 and not all 0")


@dataclass(frozen=True, slots=True)
class StabilityThresholds:
    """The thresholds of the components (see the module docstring; seconds, bytes, ratios).

    Attributes:
        error_threshold: failure rate at which the error component is 0 (0.3).
        disk_ok_ratio, disk_critical_ratio: free-space ratios (0.20, 0.05).
        rss_ok_bytes, rss_limit_bytes: resident memory (512 MiB, 2 GiB).
        cpu_ok, cpu_limit: fractions of one core (0.5, 1.0).
        latency_ok, latency_limit: host p95 latency seconds (2, 10).
        lag_ok, lag_limit: event-loop lag seconds (0.5, 5).
        commit_ok, commit_limit: commit latency seconds (5, 30).
        stable, unstable: band limits: >= ``stable`` is stable, < ``unstable``
            is unstable, between is degraded (0.8, 0.5).

    Raises:
        ValueError: a threshold out of order or out of range.
    """

    error_threshold: float = 0.3
    disk_ok_ratio: float = 0.20
    disk_critical_ratio: float = 0.05
    rss_ok_bytes: float = 512 * 1024**2
    rss_limit_bytes: float = 2 * _GIB
    cpu_ok: float = 0.5
    cpu_limit: float = 1.0
    latency_ok: float = 2.0
    latency_limit: float = 10.0
    lag_ok: float = 0.5
    lag_limit: float = 5.0
    commit_ok: float = 5.0
    commit_limit: float = 30.0
    stable: float = 0.8
    unstable: float = 0.5

    def __post_init__(self) -> None:
        pairs = {
            "disk": (self.disk_critical_ratio, self.disk_ok_ratio),
            "rss": (self.rss_ok_bytes, self.rss_limit_bytes),
            "cpu": (self.cpu_ok, self.cpu_limit),
            "latency": (self.latency_ok, self.latency_limit),
            "lag": (self.lag_ok, self.lag_limit),
            "commit": (self.commit_ok, self.commit_limit),
            "bands": (self.unstable, self.stable),
        }
        for name, (low, high) in pairs.items():
            if not 0 <= low < high:
                raise ValueError(f"stability thresholds {name}: need 0 <= {low} < {high}")
        if not 0 < self.error_threshold <= 1:
            raise ValueError(f"error_threshold {self.error_threshold}: must be in (0, 1]")


@dataclass(frozen=True, slots=True)
class Stability:
    """A scored observation.

    Attributes:
        score: the weighted mean, in [0, 1].
        components: ``{"resource", "error", "performance", "dependency"}`` -> [0, 1].
        failure_rate: the failure rate the error component used, in [0, 1].
        band: ``stable``, ``degraded`` or ``unstable``.
    """

    score: float
    components: dict[str, float] = field(default_factory=dict)
    failure_rate: float = 0.0
    band: str = "stable"

    def to_json(self) -> dict[str, Any]:
        """``{"score", "band", "components", "failure_rate"}``."""
        return {
            "score": self.score,
            "band": self.band,
            "components": dict(self.components),
            "failure_rate": self.failure_rate,
        }


def band(score: float, thresholds: StabilityThresholds) -> str:
    """``stable`` (>= ``thresholds.stable``), ``degraded`` (>= ``unstable``) or ``unstable``."""
    if score >= thresholds.stable:
        return "stable"
    return "degraded" if score >= thresholds.unstable else "unstable"


_BREAKER_CREDIT: Final = {"open": 0.0, "forced_open": 0.0, "half_open": 0.5}


def failure_rate(observation: Observation) -> float:
    """The error component's failure rate of ``observation``, in [0, 1] (module docstring)."""
    requests = sum(h.requests for h in observation.hosts)
    failed = sum(h.server_errors + h.throttled + h.transport_errors for h in observation.hosts)
    runs = sum(f.runs for f in observation.feeds)
    failed_runs = sum(f.failed for f in observation.feeds)
    captures = sum(f.captures for f in observation.feeds)
    parse_errors = sum(f.parse_errors for f in observation.feeds)
    rates = [
        failed / requests if requests else 0.0,
        failed_runs / runs if runs else 0.0,
        parse_errors / captures if captures else 0.0,
    ]
    return clamp(max(rates))


def stability(
    observation: Observation,
    weights: StabilityWeights | None = None,
    thresholds: StabilityThresholds | None = None,
) -> Stability:
    """Score ``observation`` (formulas in the module docstring).

    Args:
        observation: one cycle's state.
        weights: the component weights (None: the defaults).
        thresholds: the component thresholds (None: the defaults).

    Returns:
        The :class:`Stability`: score and components in [0, 1].
    """
    w = weights or StabilityWeights()
    t = thresholds or StabilityThresholds()
    p, d = observation.process, observation.disk

    disk = 1.0
    if d.free_ratio is not None:
        span = t.disk_ok_ratio - t.disk_critical_ratio
        disk = clamp((d.free_ratio - t.disk_critical_ratio) / span)
    memory = ramp(
        None if p.rss_bytes is None else float(p.rss_bytes), t.rss_ok_bytes, t.rss_limit_bytes
    )
    resource = min(disk, memory, ramp(p.cpu_fraction, t.cpu_ok, t.cpu_limit))

    rate = failure_rate(observation)
    error = 1.0 - clamp(rate / t.error_threshold)

    weighted = [(h.requests, h.latency_p95) for h in observation.hosts if h.latency_p95 is not None]
    total = sum(n for n, _ in weighted)
    latency = sum(n * v for n, v in weighted) / total if total else None
    performance = min(
        ramp(latency, t.latency_ok, t.latency_limit),
        ramp(p.loop_lag_seconds, t.lag_ok, t.lag_limit),
        ramp(observation.writer.commit_latency_seconds, t.commit_ok, t.commit_limit),
    )

    dependency = 1.0
    if observation.hosts:
        credits = [(h.requests, _BREAKER_CREDIT.get(h.breaker, 1.0)) for h in observation.hosts]
        requests = sum(n for n, _ in credits)
        if requests:
            dependency = sum(n * c for n, c in credits) / requests
        else:
            dependency = sum(c for _, c in credits) / len(credits)

    components = {
        "resource": resource,
        "error": error,
        "performance": performance,
        "dependency": dependency,
    }
    weight = {
        "resource": w.resource,
        "error": w.error,
        "performance": w.performance,
        "dependency": w.dependency,
    }
    score = clamp(sum(weight[k] * components[k] for k in COMPONENTS) / sum(weight.values()))
    return Stability(score, components, rate, band(score, t))


class BandTracker:
    """Remembers the last band and says when a new score crosses into another one.

    Args:
        thresholds: the band limits.
        initial: the band assumed before the first score (``stable``).
    """

    def __init__(self, thresholds: StabilityThresholds, initial: str = "stable") -> None:
        self.thresholds = thresholds
        self.band = initial

    def update(self, score: float) -> tuple[str, str] | None:
        """``(old band, new band)`` when ``score`` is in another band than the last, else None."""
        new = band(score, self.thresholds)
        if new == self.band:
            return None
        old, self.band = self.band, new
        return old, new
