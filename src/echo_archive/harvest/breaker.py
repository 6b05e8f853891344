"""A circuit breaker with resilience4j CircuitBreaker semantics, persistable across restarts.

The model is resilience4j's CircuitBreaker (resilience4j documentation,
"CircuitBreaker"); names are the same in snake_case. A breaker stops calls to a
host or feed that keeps failing, then probes it with a few trial calls.

States::

    CLOSED ──(failure rate or slow-call rate >= threshold,
    ▲          once minimum_number_of_calls are in the window)──► OPEN
    │                                                             │
    │                    (wait_duration_in_open_state elapsed;    │
    │                     here: on the next allow())              ▼
    └──(all permitted trial calls done, both rates below)── HALF_OPEN
                          (either rate >= threshold, or
                           max_wait_duration_in_half_open_state
                           elapsed) ──► OPEN

    DISABLED     always allows, records nothing (manual: disable()).
    FORCED_OPEN  always rejects, records nothing (manual: force_open()).

* CLOSED: every call is allowed; its outcome goes into the sliding window.
  After each recorded call, once the window holds at least
  ``minimum_number_of_calls`` calls, the breaker opens when the failure rate
  >= ``failure_rate_threshold`` or the slow-call rate >=
  ``slow_call_rate_threshold`` (percent; resilience4j compares with ``>=``).
  A call is *slow* when its duration is greater than
  ``slow_call_duration_threshold``; a failed call can be slow too.
* OPEN: calls are rejected (resilience4j raises ``CallNotPermittedException``;
  here :meth:`CircuitBreaker.allow` returns False) and counted as *not
  permitted*, never recorded in the window. Outcomes of calls allowed before
  the breaker opened are still recorded, without a transition. After
  ``wait_duration_in_open_state`` the next :meth:`~CircuitBreaker.allow` moves
  to HALF_OPEN (resilience4j with ``automaticTransitionFromOpenToHalfOpenEnabled
  = false``; with it enabled, :meth:`~CircuitBreaker.current_state` also moves
  it, as there is no scheduler thread here).
* HALF_OPEN: ``permitted_number_of_calls_in_half_open_state`` calls are
  allowed, then others are rejected. A fresh count window of that size is
  used, with that many calls as its minimum: once they are all recorded the
  breaker closes if both rates are below their thresholds, else reopens. When
  ``max_wait_duration_in_half_open_state`` > 0 and it elapses first, the
  breaker reopens (0 = wait for the trial calls indefinitely).
* Sliding windows: COUNT_BASED keeps the last ``sliding_window_size`` calls
  (and caps the minimum number of calls at that size, as resilience4j does);
  TIME_BASED keeps the calls of the last ``sliding_window_size`` seconds in one
  aggregate per epoch second (resilience4j's N partial aggregations).
* Every transition starts fresh metrics, except into OPEN, which keeps the
  metrics that opened it (so :meth:`~CircuitBreaker.metrics` says why).

Persistence: :meth:`CircuitBreaker.to_state` gives a JSON-ready mapping with
the state, the times as **epoch seconds** and the window contents;
:meth:`CircuitBreaker.from_state` rebuilds the breaker after a restart. An
OPEN breaker stays open until ``opened_at + wait_duration_in_open_state`` on the
wall clock, so a restart never resets an open breaker. Times are therefore
wall-clock POSIX seconds from the injected ``clock`` (``time.time`` by
default); every method takes an optional ``now`` on the same clock.

Not thread-safe: use a breaker from one event loop.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple, TypeAlias

from echo_archive.errors import ConfigError

__all__ = [
    "BREAKER_MODES",
    "STATE_VERSION",
    "BreakerConfig",
    "BreakerMetrics",
    "BreakerState",
    "CircuitBreaker",
    "SlidingWindowType",
    "StateTransition",
]

STATE_VERSION = 1
"""The version of the :meth:`CircuitBreaker.to_state` format."""

BREAKER_MODES = ("forced_open", "forced_closed", "auto")
"""What :meth:`CircuitBreaker.set_mode` takes: FORCED_OPEN, DISABLED, or back to the rules."""


class BreakerState(StrEnum):
    """The states of a breaker (resilience4j ``CircuitBreaker.State``)."""

    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"
    DISABLED = "DISABLED"
    FORCED_OPEN = "FORCED_OPEN"


class SlidingWindowType(StrEnum):
    """How the CLOSED-state window is bounded (resilience4j ``SlidingWindowType``)."""

    COUNT_BASED = "COUNT_BASED"
    """The last ``sliding_window_size`` calls."""
    TIME_BASED = "TIME_BASED"
    """The calls of the last ``sliding_window_size`` seconds."""


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """A breaker's configuration; the defaults are resilience4j's.

    Attributes:
        failure_rate_threshold: percent (0, 100]; open at or above it.
            resilience4j ``failureRateThreshold``, default 50.
        slow_call_rate_threshold: percent (0, 100]; open at or above it.
            ``slowCallRateThreshold``, default 100.
        slow_call_duration_threshold: seconds (> 0); a call taking longer is
            slow. ``slowCallDurationThreshold``, default 60 s (60000 ms).
        sliding_window_type: COUNT_BASED or TIME_BASED.
            ``slidingWindowType``, default COUNT_BASED.
        sliding_window_size: calls (COUNT_BASED) or seconds (TIME_BASED), >= 1.
            ``slidingWindowSize``, default 100.
        minimum_number_of_calls: calls (>= 1) the window must hold before
            either rate is evaluated. ``minimumNumberOfCalls``, default 100.
        wait_duration_in_open_state: seconds (>= 0.001) in OPEN before trial
            calls. ``waitDurationInOpenState``, default 60 s (60000 ms).
        permitted_number_of_calls_in_half_open_state: trial calls (>= 1).
            ``permittedNumberOfCallsInHalfOpenState``, default 10.
        max_wait_duration_in_half_open_state: seconds (>= 0) in HALF_OPEN
            before reopening; 0 waits for the trial calls indefinitely.
            ``maxWaitDurationInHalfOpenState``, default 0.
        automatic_transition_from_open_to_half_open_enabled: when True,
            :meth:`CircuitBreaker.current_state` also moves OPEN → HALF_OPEN
            once the wait is over (not only :meth:`CircuitBreaker.allow`).
            ``automaticTransitionFromOpenToHalfOpenEnabled``, default False.

    Raises:
        ConfigError: a value is out of range (resilience4j's builder checks);
            the message names the field.
    """

    failure_rate_threshold: float = 50.0
    slow_call_rate_threshold: float = 100.0
    slow_call_duration_threshold: float = 60.0
    sliding_window_type: SlidingWindowType = SlidingWindowType.COUNT_BASED
    sliding_window_size: int = 100
    minimum_number_of_calls: int = 100
    wait_duration_in_open_state: float = 60.0
    permitted_number_of_calls_in_half_open_state: int = 10
    max_wait_duration_in_half_open_state: float = 0.0
    automatic_transition_from_open_to_half_open_enabled: bool = False

    def __post_init__(self) -> None:
        for name in ("failure_rate_threshold", "slow_call_rate_threshold"):
            value = getattr(self, name)
            if not (0 < value <= 100):
                raise ConfigError(f"breaker {name} must be in (0, 100] percent, got {value!r}")
        if not (math.isfinite(self.slow_call_duration_threshold)) or (
            self.slow_call_duration_threshold <= 0
        ):
            raise ConfigError(
                "breaker slow_call_duration_threshold must be > 0 seconds, "
                f"got {self.slow_call_duration_threshold!r}"
            )
        if self.sliding_window_type not in tuple(SlidingWindowType):
            raise ConfigError(
                f"breaker sliding_window_type must be COUNT_BASED or TIME_BASED, "
                f"got {self.sliding_window_type!r}"
            )
        for name in (
            "sliding_window_size",
            "minimum_number_of_calls",
            "permitted_number_of_calls_in_half_open_state",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"breaker {name} must be an integer >= 1, got {value!r}")
        if not (math.isfinite(self.wait_duration_in_open_state)) or (
            self.wait_duration_in_open_state < 0.001
        ):
            raise ConfigError(
                "breaker wait_duration_in_open_state must be >= 0.001 seconds, "
                f"got {self.wait_duration_in_open_state!r}"
            )
        if not (math.isfinite(self.max_wait_duration_in_half_open_state)) or (
            self.max_wait_duration_in_half_open_state < 0
        ):
            raise ConfigError(
                "breaker max_wait_duration_in_half_open_state must be >= 0 seconds, "
                f"got {self.max_wait_duration_in_half_open_state!r}"
            )


@dataclass(frozen=True, slots=True)
class BreakerMetrics:
    """A snapshot of a breaker's current window (resilience4j ``CircuitBreaker.Metrics``).

    Attributes:
        failure_rate: percent of failed calls, or None while the window holds
            fewer than the minimum number of calls (resilience4j reports -1).
        slow_call_rate: percent of slow calls, or None likewise.
        calls: calls in the window (resilience4j ``numberOfBufferedCalls``).
        failed: failed calls (slow or not).
        slow: slow calls (successful or failed).
        slow_failed: calls both slow and failed.
        successful: calls that did not fail (slow or not).
        not_permitted: calls rejected since the last transition that reset the
            metrics (resilience4j ``numberOfNotPermittedCalls``).
    """

    failure_rate: float | None
    slow_call_rate: float | None
    calls: int
    failed: int
    slow: int
    slow_failed: int
    successful: int
    not_permitted: int


@dataclass(frozen=True, slots=True)
class StateTransition:
    """One state change, passed to the breaker's ``on_transition`` callback.

    Attributes:
        name: the breaker's name.
        from_state: the state left.
        to_state: the state entered (may equal ``from_state`` for ``reset()``).
        at: epoch seconds.
        reason: in plain words (``"failure rate 60% >= 50%"``).
    """

    name: str
    from_state: BreakerState
    to_state: BreakerState
    at: float
    reason: str


class _Snapshot(NamedTuple):
    calls: int
    failed: int
    slow: int
    slow_failed: int


_OUTCOMES = {
    (False, False): "success",
    (True, False): "failure",
    (False, True): "slow_success",
    (True, True): "slow_failure",
}
_OUTCOME_FLAGS = {name: flags for flags, name in _OUTCOMES.items()}


class _CountWindow:
    """The last ``size`` calls (resilience4j ``FixedSizeSlidingWindowMetrics``)."""

    kind = SlidingWindowType.COUNT_BASED

    def __init__(self, size: int) -> None:
        self.size = size
        self._calls: deque[tuple[bool, bool]] = deque(maxlen=size)

    def record(self, failed: bool, slow: bool, now: float) -> None:
        self._calls.append((failed, slow))

    def snapshot(self, now: float) -> _Snapshot:
        failed = sum(1 for f, _ in self._calls if f)
        slow = sum(1 for _, s in self._calls if s)
        slow_failed = sum(1 for f, s in self._calls if f and s)
        return _Snapshot(len(self._calls), failed, slow, slow_failed)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.kind.value,
            "size": self.size,
            "outcomes": [_OUTCOMES[call] for call in self._calls],
        }

    def outcomes(self) -> list[tuple[bool, bool]]:
        return list(self._calls)


class _TimeWindow:
    """The calls of the last ``size`` epoch seconds, one aggregate per second.

    resilience4j ``SlidingTimeWindowMetrics``: N partial aggregations of one
    second each; the window is the current epoch second and the N - 1 before it.
    """

    kind = SlidingWindowType.TIME_BASED

    def __init__(self, size: int) -> None:
        self.size = size
        self._buckets: dict[int, list[int]] = {}
        self._head: int | None = None

    def _move(self, now: float) -> int:
        second = math.floor(now)
        head = second if self._head is None else max(self._head, second)
        self._head = head
        for key in [k for k in self._buckets if k <= head - self.size]:
            del self._buckets[key]
        return head

    def record(self, failed: bool, slow: bool, now: float) -> None:
        head = self._move(now)
        bucket = self._buckets.setdefault(head, [0, 0, 0, 0])
        bucket[0] += 1
        bucket[1] += failed
        bucket[2] += slow
        bucket[3] += failed and slow

    def snapshot(self, now: float) -> _Snapshot:
        self._move(now)
        totals = [sum(bucket[i] for bucket in self._buckets.values()) for i in range(4)]
        return _Snapshot(*totals)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.kind.value,
            "size": self.size,
            "buckets": [[second, *self._buckets[second]] for second in sorted(self._buckets)],
        }

    def rows(self) -> list[tuple[int, int, int, int, int]]:
        return [(second, b[0], b[1], b[2], b[3]) for second, b in sorted(self._buckets.items())]

    def load(self, rows: list[tuple[int, int, int, int, int]]) -> None:
        """Add saved per-second aggregates, then drop seconds outside the window."""
        for second, calls, failed, slow, slow_failed in rows:
            self._buckets[second] = [calls, failed, slow, slow_failed]
            self._head = second if self._head is None else max(self._head, second)
        if self._head is not None:
            self._move(self._head)


_Window: TypeAlias = _CountWindow | _TimeWindow


class _Metrics:
    """A window, the minimum number of calls to evaluate it, and the rejected-call count."""

    def __init__(self, window: _Window, minimum_calls: int) -> None:
        self.window = window
        self.minimum_calls = minimum_calls
        self.not_permitted = 0


class CircuitBreaker:
    """A circuit breaker with resilience4j semantics (see the module docstring).

    Typical use by the fetch engine::

        if not breaker.allow():
            ...  # skip the host/feed for now; breaker.wait_remaining() says how long
        started = time.monotonic()
        ok = await fetch(...)
        breaker.record(ok, time.monotonic() - started)

    Args:
        name: what the breaker protects (a host or feed name), for messages.
        config: the configuration (default: resilience4j's defaults).
        clock: wall-clock POSIX seconds (default :func:`time.time`), used when
            a method's ``now`` is omitted. Epoch time, so state persists.
        on_transition: called with a :class:`StateTransition` after every
            state change (for the log, metrics and alerts).
    """

    def __init__(
        self,
        name: str,
        config: BreakerConfig | None = None,
        clock: Callable[[], float] = time.time,
        on_transition: Callable[[StateTransition], None] | None = None,
    ) -> None:
        self.name = name
        self.config = config if config is not None else BreakerConfig()
        self._clock = clock
        self._on_transition = on_transition
        self._state = BreakerState.CLOSED
        self._metrics = self._closed_metrics()
        self._opened_at: float | None = None
        self._half_open_at: float | None = None
        self._permits_left = 0

    # --- metrics of each state ----------------------------------------------

    def _closed_window(self) -> _Window:
        cfg = self.config
        if cfg.sliding_window_type is SlidingWindowType.TIME_BASED:
            return _TimeWindow(cfg.sliding_window_size)
        return _CountWindow(cfg.sliding_window_size)

    def _closed_minimum(self) -> int:
        cfg = self.config
        if cfg.sliding_window_type is SlidingWindowType.COUNT_BASED:
            # resilience4j CircuitBreakerMetrics: min(minimumNumberOfCalls, slidingWindowSize)
            return min(cfg.minimum_number_of_calls, cfg.sliding_window_size)
        return cfg.minimum_number_of_calls

    def _closed_metrics(self) -> _Metrics:
        return _Metrics(self._closed_window(), self._closed_minimum())

    def _half_open_metrics(self) -> _Metrics:
        permitted = self.config.permitted_number_of_calls_in_half_open_state
        return _Metrics(_CountWindow(permitted), permitted)

    # --- state -----------------------------------------------------------------

    def _now(self, now: float | None) -> float:
        return self._clock() if now is None else now

    @property
    def state(self) -> BreakerState:
        """The stored state. Timed transitions happen lazily, see :meth:`current_state`."""
        return self._state

    @property
    def opened_at(self) -> float | None:
        """Epoch seconds when the breaker last opened, or None unless OPEN."""
        return self._opened_at

    def current_state(self, now: float | None = None) -> BreakerState:
        """Apply due timed transitions and return the state.

        HALF_OPEN → OPEN once ``max_wait_duration_in_half_open_state`` (> 0)
        has elapsed; OPEN → HALF_OPEN once the wait is over only when
        ``automatic_transition_from_open_to_half_open_enabled`` (otherwise that
        happens on the next :meth:`allow`).

        Args:
            now: epoch seconds (default: the clock).
        """
        self._advance(self._now(now), for_call=False)
        return self._state

    def _advance(self, now: float, *, for_call: bool) -> None:
        cfg = self.config
        if (
            self._state is BreakerState.OPEN
            and (for_call or cfg.automatic_transition_from_open_to_half_open_enabled)
            and self._opened_at is not None
            and now >= self._opened_at + cfg.wait_duration_in_open_state
        ):
            self._transition(
                BreakerState.HALF_OPEN,
                now,
                f"wait duration {cfg.wait_duration_in_open_state:g} s in OPEN elapsed",
            )
        if (
            self._state is BreakerState.HALF_OPEN
            and cfg.max_wait_duration_in_half_open_state > 0
            and self._half_open_at is not None
            and now >= self._half_open_at + cfg.max_wait_duration_in_half_open_state
        ):
            self._transition(
                BreakerState.OPEN,
                now,
                f"max wait duration {cfg.max_wait_duration_in_half_open_state:g} s "
                "in HALF_OPEN elapsed",
            )

    def _transition(self, to: BreakerState, now: float, reason: str) -> None:
        from_state = self._state
        if to is BreakerState.OPEN:
            self._opened_at = now  # keeps the metrics that opened it
            self._half_open_at = None
        elif to is BreakerState.HALF_OPEN:
            self._metrics = self._half_open_metrics()
            self._permits_left = self.config.permitted_number_of_calls_in_half_open_state
            self._opened_at = None
            self._half_open_at = now
        else:
            self._metrics = self._closed_metrics()
            self._opened_at = None
            self._half_open_at = None
        self._state = to
        if self._on_transition is not None:
            self._on_transition(StateTransition(self.name, from_state, to, now, reason))

    # --- calls -------------------------------------------------------------------

    def allow(self, now: float | None = None) -> bool:
        """Ask permission for one call (resilience4j ``tryAcquirePermission``).

        Args:
            now: epoch seconds (default: the clock).

        Returns:
            True when the call may go (CLOSED, DISABLED, or a HALF_OPEN trial
            permit was taken; an OPEN breaker whose wait is over moves to
            HALF_OPEN first). False when OPEN, FORCED_OPEN, or the HALF_OPEN
            permits are used up: the rejection is counted as not permitted and
            the call must not be made nor recorded.
        """
        now = self._now(now)
        self._advance(now, for_call=True)
        if self._state in (BreakerState.CLOSED, BreakerState.DISABLED):
            return True
        if self._state is BreakerState.HALF_OPEN and self._permits_left > 0:
            self._permits_left -= 1
            return True
        self._metrics.not_permitted += 1
        return False

    def record(self, success: bool, duration: float, now: float | None = None) -> None:
        """Record the outcome of a permitted call and apply the thresholds.

        Args:
            success: False when the call failed (what counts as a failure is
                the caller's decision: e.g. transport errors and 5xx, not 404).
            duration: seconds the call took (compared with
                ``slow_call_duration_threshold``; slow when greater).
            now: epoch seconds (default: the clock).

        Raises:
            ValueError: ``duration`` is negative or not a number.
        """
        if not (duration >= 0):
            raise ValueError(f"call duration must be >= 0 seconds, got {duration!r}")
        now = self._now(now)
        self._advance(now, for_call=False)
        if self._state in (BreakerState.DISABLED, BreakerState.FORCED_OPEN):
            return
        failed = not success
        slow = duration > self.config.slow_call_duration_threshold
        self._metrics.window.record(failed, slow, now)
        if self._state is BreakerState.OPEN:
            return  # a call allowed before the breaker opened: recorded, no transition
        verdict, why = self._evaluate(self._metrics.window.snapshot(now))
        if verdict == "above":
            self._transition(BreakerState.OPEN, now, why)
        elif verdict == "below" and self._state is BreakerState.HALF_OPEN:
            self._transition(BreakerState.CLOSED, now, why)

    def _rates(self, snap: _Snapshot) -> tuple[float | None, float | None]:
        if snap.calls == 0 or snap.calls < self._metrics.minimum_calls:
            return None, None
        return 100.0 * snap.failed / snap.calls, 100.0 * snap.slow / snap.calls

    def _evaluate(self, snap: _Snapshot) -> tuple[str, str]:
        """Classify a snapshot as ``below_minimum``, ``above`` or ``below``, with the reason.

        resilience4j ``CircuitBreakerMetrics.checkIfThresholdsExceeded``.
        """
        failure_rate, slow_rate = self._rates(snap)
        if failure_rate is None or slow_rate is None:
            return "below_minimum", ""
        cfg = self.config
        reasons = []
        if failure_rate >= cfg.failure_rate_threshold:
            reasons.append(f"failure rate {failure_rate:g}% >= {cfg.failure_rate_threshold:g}%")
        if slow_rate >= cfg.slow_call_rate_threshold:
            reasons.append(f"slow call rate {slow_rate:g}% >= {cfg.slow_call_rate_threshold:g}%")
        if reasons:
            return "above", f"{' and '.join(reasons)} over {snap.calls} calls"
        return "below", (
            f"failure rate {failure_rate:g}% and slow call rate {slow_rate:g}% "
            f"below thresholds over {snap.calls} calls"
        )

    def metrics(self, now: float | None = None) -> BreakerMetrics:
        """Return a snapshot of the current window.

        Args:
            now: epoch seconds (default: the clock); moves a TIME_BASED window.
        """
        snap = self._metrics.window.snapshot(self._now(now))
        failure_rate, slow_rate = self._rates(snap)
        return BreakerMetrics(
            failure_rate=failure_rate,
            slow_call_rate=slow_rate,
            calls=snap.calls,
            failed=snap.failed,
            slow=snap.slow,
            slow_failed=snap.slow_failed,
            successful=snap.calls - snap.failed,
            not_permitted=self._metrics.not_permitted,
        )

    def wait_remaining(self, now: float | None = None) -> float:
        """Return the seconds until an OPEN breaker lets trial calls through.

        Args:
            now: epoch seconds (default: the clock).

        Returns:
            Seconds left in OPEN; ``math.inf`` when FORCED_OPEN (only an
            operator closes it); 0.0 in any other state.
        """
        if self._state is BreakerState.FORCED_OPEN:
            return math.inf
        if self._state is BreakerState.OPEN and self._opened_at is not None:
            end = self._opened_at + self.config.wait_duration_in_open_state
            return max(0.0, end - self._now(now))
        return 0.0

    # --- manual transitions ------------------------------------------------------

    def reset(self, now: float | None = None) -> None:
        """Return to CLOSED with an empty window and counters (resilience4j ``reset``)."""
        self._transition(BreakerState.CLOSED, self._now(now), "reset")

    def transition_to_closed(self, now: float | None = None) -> None:
        """Move to CLOSED with fresh metrics (resilience4j ``transitionToClosedState``)."""
        self._transition(BreakerState.CLOSED, self._now(now), "manual transition")

    def transition_to_open(self, now: float | None = None) -> None:
        """Move to OPEN now; the wait starts now (resilience4j ``transitionToOpenState``)."""
        self._transition(BreakerState.OPEN, self._now(now), "manual transition")

    def transition_to_half_open(self, now: float | None = None) -> None:
        """Move to HALF_OPEN with fresh trial permits (``transitionToHalfOpenState``)."""
        self._transition(BreakerState.HALF_OPEN, self._now(now), "manual transition")

    def force_open(self, now: float | None = None) -> None:
        """Reject every call until a manual transition (``transitionToForcedOpenState``)."""
        self._transition(BreakerState.FORCED_OPEN, self._now(now), "forced open")

    def disable(self, now: float | None = None) -> None:
        """Allow every call and record nothing until a manual transition.

        resilience4j ``transitionToDisabledState``.
        """
        self._transition(BreakerState.DISABLED, self._now(now), "disabled")

    def set_mode(self, mode: str, now: float | None = None) -> None:
        """Force the breaker, or give it back to its own rules (an operator or an intervention).

        ``mode`` is one of :data:`BREAKER_MODES`:

        * ``forced_open``: FORCED_OPEN, every call rejected, nothing recorded,
          until another manual transition (resilience4j ``transitionToForcedOpenState``);
        * ``forced_closed``: DISABLED, every call allowed, nothing recorded
          (resilience4j ``transitionToDisabledState``: the breaker is out of the way);
        * ``auto``: out of a forced state (FORCED_OPEN or DISABLED) into CLOSED
          with fresh metrics (``transitionToClosedState``); a breaker already
          under its own rules (CLOSED, OPEN, HALF_OPEN) is left as it is.

        Args:
            mode: the mode.
            now: epoch seconds (default: the clock).

        Raises:
            ValueError: ``mode`` is not one of :data:`BREAKER_MODES`.
        """
        if mode == "forced_open":
            if self._state is not BreakerState.FORCED_OPEN:
                self.force_open(now)
        elif mode == "forced_closed":
            if self._state is not BreakerState.DISABLED:
                self.disable(now)
        elif mode == "auto":
            if self._state in (BreakerState.FORCED_OPEN, BreakerState.DISABLED):
                self.transition_to_closed(now)
        else:
            raise ValueError(f"breaker mode {mode!r}: expected one of {', '.join(BREAKER_MODES)}")

    # --- persistence ---------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Return the breaker's state as a JSON-ready mapping, for persistence.

        Returns:
            ``{"version": 1, "name", "state", "opened_at", "half_open_at",
            "not_permitted", "window"}`` where the times are epoch seconds (or
            None) and ``window`` is ``{"type": "COUNT_BASED", "size", "outcomes":
            ["success" | "failure" | "slow_success" | "slow_failure", ...]}``
            (oldest first) or ``{"type": "TIME_BASED", "size", "buckets":
            [[epoch_second, calls, failed, slow, slow_failed], ...]}``.
        """
        return {
            "version": STATE_VERSION,
            "name": self.name,
            "state": self._state.value,
            "opened_at": self._opened_at,
            "half_open_at": self._half_open_at,
            "not_permitted": self._metrics.not_permitted,
            "window": self._metrics.window.to_json(),
        }

    @classmethod
    def from_state(
        cls,
        name: str,
        config: BreakerConfig | None,
        data: Mapping[str, Any],
        clock: Callable[[], float] = time.time,
        on_transition: Callable[[StateTransition], None] | None = None,
    ) -> CircuitBreaker:
        """Rebuild a breaker from :meth:`to_state` output after a restart.

        The state is restored as saved, with no transition event: an OPEN
        breaker stays OPEN until ``opened_at + wait_duration_in_open_state``
        (the current config's wait) on the wall clock; FORCED_OPEN and
        DISABLED stay until an operator changes them; a HALF_OPEN breaker gets
        back the trial permits of calls that had not completed (they died with
        the old process). When the configured window differs from the saved
        one, a CLOSED or HALF_OPEN window keeps what still fits (the newest
        calls of a count window, the recent seconds of a time window) and
        starts empty if the window type changed.

        Args:
            name: the breaker's name (wins over the saved one, so renamed
                feeds keep their breaker).
            config: the current configuration (default: resilience4j's defaults).
            data: the mapping from :meth:`to_state` (e.g. read back from JSON).
            clock: wall-clock POSIX seconds (default :func:`time.time`).
            on_transition: as for the constructor.

        Returns:
            The restored breaker.

        Raises:
            ValueError: ``data`` is not a breaker state of a known version
                (the message names the breaker and the field).
        """
        breaker = cls(name, config, clock, on_transition)

        def bad(what: str) -> ValueError:
            return ValueError(f"breaker {name}: saved state: {what}")

        if not isinstance(data, Mapping):
            raise bad("not a mapping")
        if data.get("version") != STATE_VERSION:
            raise bad(f"unknown version {data.get('version')!r}")
        try:
            state = BreakerState(str(data.get("state")))
        except ValueError:
            raise bad(f"unknown state {data.get('state')!r}") from None
        opened_at = _optional_time(data.get("opened_at"), "opened_at", bad)
        half_open_at = _optional_time(data.get("half_open_at"), "half_open_at", bad)
        not_permitted = data.get("not_permitted", 0)
        if (
            not isinstance(not_permitted, int)
            or isinstance(not_permitted, bool)
            or (not_permitted < 0)
        ):
            raise bad(f"not_permitted must be a count, got {not_permitted!r}")
        if state is BreakerState.OPEN and opened_at is None:
            raise bad("an OPEN breaker needs opened_at")
        if state is BreakerState.HALF_OPEN and half_open_at is None:
            raise bad("a HALF_OPEN breaker needs half_open_at")
        saved = _load_window(data.get("window"), bad)

        metrics: _Metrics
        if state is BreakerState.OPEN:
            # the window that opened it: the CLOSED one, or the HALF_OPEN trial window
            minimum = breaker._closed_minimum()
            if isinstance(saved, _CountWindow):
                minimum = min(minimum, saved.size)
            metrics = _Metrics(saved, minimum)
        elif state is BreakerState.HALF_OPEN:
            metrics = breaker._half_open_metrics()
            _refill(metrics.window, saved)
        else:
            metrics = breaker._closed_metrics()
            if state is BreakerState.CLOSED:
                _refill(metrics.window, saved)
        metrics.not_permitted = not_permitted

        breaker._state = state
        breaker._metrics = metrics
        breaker._opened_at = opened_at if state is BreakerState.OPEN else None
        breaker._half_open_at = half_open_at if state is BreakerState.HALF_OPEN else None
        if state is BreakerState.HALF_OPEN:
            permitted = breaker.config.permitted_number_of_calls_in_half_open_state
            recorded = metrics.window.snapshot(half_open_at or 0.0).calls
            breaker._permits_left = max(0, permitted - recorded)
        return breaker


def _optional_time(value: object, field: str, bad: Callable[[str], ValueError]) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise bad(f"{field} must be epoch seconds or null, got {value!r}")
    return float(value)


def _load_window(value: object, bad: Callable[[str], ValueError]) -> _Window:
    """Rebuild a saved window exactly as saved (type and size)."""
    if not isinstance(value, Mapping):
        raise bad("window must be a mapping")
    size = value.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise bad(f"window size must be an integer >= 1, got {size!r}")
    kind = value.get("type")
    if kind == SlidingWindowType.COUNT_BASED.value:
        outcomes = value.get("outcomes")
        if not isinstance(outcomes, list) or not all(o in _OUTCOME_FLAGS for o in outcomes):
            raise bad("window outcomes must be a list of success/failure/slow_success/slow_failure")
        count_window = _CountWindow(size)
        for outcome in outcomes:
            failed, slow = _OUTCOME_FLAGS[outcome]
            count_window.record(failed, slow, 0.0)
        return count_window
    if kind == SlidingWindowType.TIME_BASED.value:
        buckets = value.get("buckets")
        rows: list[tuple[int, int, int, int, int]] = []
        if not isinstance(buckets, list):
            raise bad("window buckets must be a list")
        for row in buckets:
            if (
                not isinstance(row, list)
                or len(row) != 5
                or not all(isinstance(n, int) and not isinstance(n, bool) for n in row)
                or not (0 <= row[4] <= min(row[2], row[3]) and max(row[2], row[3]) <= row[1])
                or row[1] < 1
            ):
                raise bad(
                    f"window bucket must be [second, calls, failed, slow, slow_failed], got {row!r}"
                )
            rows.append((row[0], row[1], row[2], row[3], row[4]))
        time_window = _TimeWindow(size)
        time_window.load(rows)
        return time_window
    raise bad(f"unknown window type {kind!r}")


def _refill(target: _Window, saved: _Window) -> None:
    """Copy what fits of ``saved`` into the empty window ``target`` of the current config."""
    if isinstance(target, _CountWindow) and isinstance(saved, _CountWindow):
        for failed, slow in saved.outcomes():  # deque(maxlen) keeps the newest
            target.record(failed, slow, 0.0)
    elif isinstance(target, _TimeWindow) and isinstance(saved, _TimeWindow):
        target.load(saved.rows())
