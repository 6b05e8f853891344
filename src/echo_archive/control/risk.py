r"""Collapse risk: the probability that a watched signal breaches its threshold within a horizon.

Each watched signal (a :class:`Watch`: a signal key or key prefix, a
threshold and a side) gets an online Holt linear-trend model, in the
innovations (error-correction) form of exponential smoothing ETS(A,A,N)
(C. C. Holt, 1957, "Forecasting seasonals and trends by exponentially
weighted moving averages"; R. J. Hyndman and G. Athanasopoulos,
*Forecasting: Principles and Practice*, 3rd ed., §8.2 and §8.7,
https://otexts.com/fpp3/). Once per supervisor cycle, for a value ``y``:

.. code-block:: text

    e     = y - (l + b)                     one-step forecast error
    l     = l + b + alpha * e               level
    b     = b + beta * e                    trend, per cycle
    s2    = (1 - gamma) * s2 + gamma * e^2  EWMA of the squared one-step errors

and the forecast ``h`` cycles ahead (``h = horizon / cycle seconds``) is
normal with

.. code-block:: text

    mean  = l + h * b
    var   = s2 * (1 + (h - 1) * (alpha^2 + alpha*beta*h + beta^2 * h * (2h - 1) / 6))

(the ETS(A,A,N) forecast variance, FPP3 Table 8.8). The risk is the normal
tail beyond the threshold: ``P = 1 - Phi((threshold - mean) / sd)`` for an
upper threshold, ``Phi((threshold - mean) / sd)`` for a lower one, with
``Phi`` the standard normal CDF; it is 1 when the latest value is already
past the threshold, and 0 until ``min_samples`` values were seen. The
endpoint of a linear trend is its extreme, so the probability at the horizon
stands for "within the horizon". A *growth* watch puts the threshold at the
level times ``1 + growth`` (the risk that the signal grows by that fraction
within the horizon, as a leak would). The *collapse risk* is the largest
risk of any watched signal.

Like the drift detectors, the models are operational and not persisted
(they relearn in ``min_samples`` cycles after a restart); their number is
bounded by ``max_series`` (least recently updated dropped first).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["BreachRisk", "RiskModel", "RiskOptions", "Watch", "breach_probability"]


@dataclass(frozen=True, slots=True)
class Watch:
    """A signal (or every signal whose key starts with ``prefix:``) and its breach threshold.

    Attributes:
        signal: a signal key (``disk_free_ratio``) or a key prefix naming a
            family (``host_error_rate`` watches ``host_error_rate:<host>``).
        threshold: the value that must not be crossed (signal units).
        above: True when crossing upwards breaches (memory), False downwards (free disk).
        growth: when set, the threshold is relative: ``level * (1 + growth)``
            (``above``) or ``level * (1 - growth)`` (below), the risk of the
            signal moving by that fraction of its current level within the
            horizon (memory growth, a leak); ``threshold`` is then unused.
        name: what the risk is called in a report (default: ``signal``).
    """

    @property
    def label(self) -> str:
        """:attr:`name`, or :attr:`signal` when no name was given."""
        return self.name or self.signal

    signal: str
    threshold: float
    above: bool = True
    growth: float | None = None
    name: str = ""

    def matches(self, key: str) -> bool:
        """Whether ``key`` is this signal or one of its family."""
        return key == self.signal or key.startswith(self.signal + ":")


@dataclass(frozen=True, slots=True)
class RiskOptions:
    """Parameters of the trend models (module docstring).

    Attributes:
        alpha: level smoothing, in (0, 1].
        beta: trend smoothing, in [0, alpha].
        gamma: smoothing of the squared errors, in (0, 1].
        min_samples: values before a risk is reported (>= 2).
        min_sd: the smallest forecast standard deviation, as a fraction of
            ``|threshold|`` (keeps a perfectly flat signal from being certain).
        max_series: models kept at most.

    Raises:
        ValueError: a parameter out of range.
    """

    alpha: float = 0.5
    beta: float = 0.1
    gamma: float = 0.2
    min_samples: int = 8
    min_sd: float = 1e-3
    max_series: int = 4096

    def __post_init__(self) -> None:
        if not 0 < self.alpha <= 1 or not 0 <= self.beta <= self.alpha:
            raise ValueError("risk alpha must be in (0, 1] and beta in [0, alpha]")
        if not 0 < self.gamma <= 1 or self.min_samples < 2 or self.min_sd < 0:
            raise ValueError("risk gamma in (0, 1], min_samples >= 2, min_sd >= 0 are required")
        if self.max_series < 1:
            raise ValueError(f"max_series {self.max_series}: must be at least 1")


@dataclass(frozen=True, slots=True)
class BreachRisk:
    """The risk of one signal.

    Attributes:
        signal: the signal key.
        watch: the watch's :attr:`Watch.label` (several watches may watch one signal).
        probability: P(breach within the horizon), in [0, 1].
        value: the latest value.
        level, trend: the model's level and per-cycle trend.
        forecast: the expected value at the horizon.
        threshold: the watched threshold; ``above`` its side.
        horizon: seconds ahead.
    """

    signal: str
    watch: str
    probability: float
    value: float
    level: float
    trend: float
    forecast: float
    threshold: float
    above: bool
    horizon: float

    def to_json(self) -> dict[str, Any]:
        """The fields, JSON-ready."""
        return {
            "signal": self.signal,
            "watch": self.watch,
            "probability": self.probability,
            "value": self.value,
            "level": self.level,
            "trend": self.trend,
            "forecast": self.forecast,
            "threshold": self.threshold,
            "above": self.above,
            "horizon_seconds": self.horizon,
        }


def _phi(x: float) -> float:
    """The standard normal CDF."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def breach_probability(mean: float, sd: float, threshold: float, above: bool) -> float:
    """P(X beyond ``threshold``) for X ~ Normal(``mean``, ``sd``); a point mass when sd is 0."""
    if sd <= 0:
        beyond = mean > threshold if above else mean < threshold
        return 1.0 if beyond else 0.0
    z = (threshold - mean) / sd
    return 1.0 - _phi(z) if above else _phi(z)


class _Holt:
    __slots__ = ("b", "l", "n", "s2")

    def __init__(self, y: float) -> None:
        self.l, self.b, self.s2, self.n = y, 0.0, 0.0, 1

    def update(self, y: float, o: RiskOptions) -> None:
        e = y - (self.l + self.b)
        self.l = self.l + self.b + o.alpha * e
        self.b = self.b + o.beta * e
        self.s2 = (1 - o.gamma) * self.s2 + o.gamma * e * e
        self.n += 1

    def forecast(self, h: float, o: RiskOptions) -> tuple[float, float]:
        a, b = o.alpha, o.beta
        var = self.s2 * (1 + (h - 1) * (a * a + a * b * h + b * b * h * (2 * h - 1) / 6))
        return self.l + h * self.b, math.sqrt(max(0.0, var))


class RiskModel:
    """Trend models of the watched signals; :meth:`update` gives each one's breach risk.

    Args:
        watches: what to watch (the first watch a key matches is its watch).
        options: the model parameters (None: the defaults).
    """

    def __init__(self, watches: Iterable[Watch], options: RiskOptions | None = None) -> None:
        self.watches = tuple(watches)
        self.options = options or RiskOptions()
        self._models: OrderedDict[str, _Holt] = OrderedDict()

    def watching(self, key: str) -> list[Watch]:
        """The watches of signal ``key`` (empty when it is not watched)."""
        return [w for w in self.watches if w.matches(key)]

    def update(
        self, signals: Mapping[str, float], horizon: float, cycle: float
    ) -> list[BreachRisk]:
        """Feed one cycle's values; the risks of the watched signals seen, by key and watch order.

        Args:
            signals: ``{signal key: value}`` of the cycle.
            horizon: seconds ahead (> 0).
            cycle: seconds per cycle (> 0): ``h = horizon / cycle`` steps.

        Raises:
            ValueError: ``horizon`` or ``cycle`` is not positive.
        """
        if horizon <= 0 or cycle <= 0:
            raise ValueError(f"horizon {horizon} and cycle {cycle}: both must be positive")
        o = self.options
        steps = max(1.0, horizon / cycle)
        out: list[BreachRisk] = []
        for key in sorted(signals):
            value = signals[key]
            watches = self.watching(key)
            if not watches or not math.isfinite(value):
                continue
            model = self._models.get(key)
            if model is None:
                model = self._models[key] = _Holt(value)
                while len(self._models) > o.max_series:
                    self._models.popitem(last=False)
            else:
                model.update(value, o)
                self._models.move_to_end(key)
            mean, model_sd = model.forecast(steps, o)
            for watch in watches:
                threshold = watch.threshold
                if watch.growth is not None:
                    sign = 1.0 if watch.above else -1.0
                    threshold = model.l * (1.0 + sign * watch.growth)
                sd = max(model_sd, o.min_sd * abs(threshold))
                past = value > threshold if watch.above else value < threshold
                if past and watch.growth is None:
                    p = 1.0
                elif model.n < o.min_samples:
                    p = 0.0
                else:
                    p = breach_probability(mean, sd, threshold, watch.above)
                out.append(
                    BreachRisk(
                        key,
                        watch.label,
                        p,
                        value,
                        model.l,
                        model.b,
                        mean,
                        threshold,
                        watch.above,
                        horizon,
                    )
                )
        return out

    def forget(self, key: str) -> None:
        """Drop the model of ``key``."""
        self._models.pop(key, None)
