"""Circuit breaker with resilience4j semantics and persistence (harvest.breaker).

All times come from an injected fake wall clock; nothing sleeps.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from echo_archive.errors import ConfigError
from echo_archive.harvest.breaker import (
    BreakerConfig,
    BreakerState,
    CircuitBreaker,
    SlidingWindowType,
    StateTransition,
)

T0 = 1_780_000_000.0  # epoch seconds, 2026-05-28

CLOSED = BreakerState.CLOSED
OPEN = BreakerState.OPEN
HALF_OPEN = BreakerState.HALF_OPEN
DISABLED = BreakerState.DISABLED
FORCED_OPEN = BreakerState.FORCED_OPEN


class FakeClock:
    """A wall clock that only moves when told."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# count window 10, minimum 5 calls, 50% failures, 60 s open, 10 trial calls
SMALL = BreakerConfig(
    sliding_window_size=10,
    minimum_number_of_calls=5,
    failure_rate_threshold=50.0,
    wait_duration_in_open_state=60.0,
    permitted_number_of_calls_in_half_open_state=10,
)


def make(
    config: BreakerConfig = SMALL, clock: FakeClock | None = None
) -> tuple[CircuitBreaker, FakeClock, list[StateTransition]]:
    clock = clock or FakeClock()
    events: list[StateTransition] = []
    return CircuitBreaker("api.example.org", config, clock, events.append), clock, events


def calls(breaker: CircuitBreaker, outcomes: str, duration: float = 0.1) -> None:
    """Make one allowed call per character: ``S`` success, ``F`` failure."""
    for outcome in outcomes:
        assert breaker.allow()
        breaker.record(outcome == "S", duration)


def trip(breaker: CircuitBreaker) -> None:
    calls(breaker, "FFFFF")
    assert breaker.state is OPEN


class TestConfig:
    def test_defaults_are_resilience4j_defaults(self) -> None:
        config = BreakerConfig()
        assert config.failure_rate_threshold == 50.0
        assert config.slow_call_rate_threshold == 100.0
        assert config.slow_call_duration_threshold == 60.0
        assert config.sliding_window_type is SlidingWindowType.COUNT_BASED
        assert config.sliding_window_size == 100
        assert config.minimum_number_of_calls == 100
        assert config.wait_duration_in_open_state == 60.0
        assert config.permitted_number_of_calls_in_half_open_state == 10
        assert config.max_wait_duration_in_half_open_state == 0.0
        assert config.automatic_transition_from_open_to_half_open_enabled is False

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"failure_rate_threshold": 0.0},
            {"failure_rate_threshold": 100.1},
            {"slow_call_rate_threshold": -1.0},
            {"slow_call_duration_threshold": 0.0},
            {"sliding_window_size": 0},
            {"minimum_number_of_calls": 0},
            {"permitted_number_of_calls_in_half_open_state": 0},
            {"wait_duration_in_open_state": 0.0},
            {"max_wait_duration_in_half_open_state": -1.0},
            {"sliding_window_type": "SESSION_BASED"},
        ],
    )
    def test_validation(self, kwargs: dict[str, Any]) -> None:
        with pytest.raises(ConfigError, match=next(iter(kwargs))):
            BreakerConfig(**kwargs)


class TestClosed:
    def test_new_breaker_is_closed_and_allows(self) -> None:
        breaker, _, _ = make()
        assert breaker.state is CLOSED
        assert breaker.allow()

    def test_below_minimum_calls_never_opens(self) -> None:
        breaker, _, _ = make()
        calls(breaker, "FFFF")  # 4 failures, 4 < 5 calls: rates not evaluated
        assert breaker.state is CLOSED
        metrics = breaker.metrics()
        assert (metrics.failure_rate, metrics.calls, metrics.failed) == (None, 4, 4)

    def test_fifth_call_evaluates_80_percent(self) -> None:
        breaker, _, events = make()
        calls(breaker, "FFFFS")  # 4/5 = 80% >= 50%
        assert breaker.state is OPEN
        assert events[-1].reason == "failure rate 80% >= 50% over 5 calls"

    def test_40_percent_stays_closed(self) -> None:
        breaker, _, _ = make()
        calls(breaker, "FFSSS")  # 2/5 = 40%
        assert breaker.state is CLOSED
        assert breaker.metrics().failure_rate == 40.0

    def test_60_percent_opens(self) -> None:
        breaker, clock, events = make()
        calls(breaker, "SSFF")
        assert breaker.state is CLOSED
        calls(breaker, "F")  # 3/5 = 60%
        assert breaker.state is OPEN
        assert breaker.opened_at == clock.now
        assert events == [
            StateTransition(
                "api.example.org", CLOSED, OPEN, T0, "failure rate 60% >= 50% over 5 calls"
            )
        ]

    def test_exactly_the_threshold_opens(self) -> None:
        # resilience4j compares with >=: 2/4 = 50% opens at a 50% threshold
        breaker, _, _ = make(BreakerConfig(sliding_window_size=10, minimum_number_of_calls=4))
        calls(breaker, "FSFS")
        assert breaker.state is OPEN

    def test_count_window_keeps_the_last_n_calls(self) -> None:
        breaker, _, _ = make()
        calls(breaker, "S" * 10 + "FFFF")  # window: SSSSSSFFFF = 40%
        assert breaker.state is CLOSED
        assert breaker.metrics().calls == 10
        calls(breaker, "F")  # window: SSSSSFFFFF = 50%
        assert breaker.state is OPEN

    def test_count_window_caps_minimum_at_window_size(self) -> None:
        # resilience4j: minimumNumberOfCalls = min(minimumNumberOfCalls, slidingWindowSize)
        breaker, _, _ = make(BreakerConfig(sliding_window_size=5, minimum_number_of_calls=100))
        calls(breaker, "SSSF")
        assert breaker.state is CLOSED
        calls(breaker, "F")  # 5 calls (the whole window), 40%
        assert breaker.state is CLOSED
        calls(breaker, "F")  # SSFFF = 60%
        assert breaker.state is OPEN

    def test_default_config_needs_100_calls(self) -> None:
        breaker, _, _ = make(BreakerConfig())
        calls(breaker, "F" * 99)
        assert breaker.state is CLOSED
        calls(breaker, "F")
        assert breaker.state is OPEN

    def test_negative_duration_is_an_error(self) -> None:
        breaker, _, _ = make()
        with pytest.raises(ValueError, match="duration"):
            breaker.record(True, -1.0)


class TestSlowCalls:
    SLOW = BreakerConfig(
        sliding_window_size=10,
        minimum_number_of_calls=4,
        slow_call_duration_threshold=2.0,
        slow_call_rate_threshold=50.0,
    )

    def test_slow_call_rate_opens(self) -> None:
        breaker, _, events = make(self.SLOW)
        calls(breaker, "SS", duration=3.0)
        calls(breaker, "S", duration=1.0)
        assert breaker.state is CLOSED  # 3 calls < 4
        calls(breaker, "S", duration=1.0)  # 2/4 slow = 50%
        assert breaker.state is OPEN
        assert events[-1].reason == "slow call rate 50% >= 50% over 4 calls"

    def test_slow_means_longer_than_the_threshold(self) -> None:
        breaker, _, _ = make(self.SLOW)
        calls(breaker, "SSSS", duration=2.0)  # equal to the threshold: not slow
        assert breaker.state is CLOSED
        assert breaker.metrics().slow == 0

    def test_slow_failures_count_in_both_rates(self) -> None:
        breaker, _, events = make(self.SLOW)
        calls(breaker, "SSS", duration=0.1)
        calls(breaker, "F", duration=5.0)
        metrics = breaker.metrics()
        assert (metrics.failed, metrics.slow, metrics.slow_failed, metrics.successful) == (
            1,
            1,
            1,
            3,
        )
        assert breaker.state is CLOSED  # 25% and 25%
        calls(breaker, "F", duration=5.0)  # window of 5: 40% failed, 40% slow
        calls(breaker, "F", duration=5.0)  # 50% and 50%: both thresholds
        assert breaker.state is OPEN
        assert events[-1].reason == (
            "failure rate 50% >= 50% and slow call rate 50% >= 50% over 6 calls"
        )

    def test_default_slow_threshold_is_100_percent_of_calls_over_60_s(self) -> None:
        breaker, _, _ = make(BreakerConfig(sliding_window_size=4, minimum_number_of_calls=4))
        calls(breaker, "SSS", duration=61.0)
        calls(breaker, "S", duration=60.0)  # 75% slow: below 100%
        assert breaker.state is CLOSED
        calls(breaker, "SSS", duration=61.0)  # the 60 s call is still in the window
        assert breaker.state is CLOSED
        calls(breaker, "S", duration=61.0)  # 4/4 slow = 100%
        assert breaker.state is OPEN


class TestOpenAndHalfOpen:
    def test_open_rejects_and_counts_not_permitted(self) -> None:
        breaker, _, _ = make()
        trip(breaker)
        assert not breaker.allow()
        assert not breaker.allow()
        metrics = breaker.metrics()
        assert metrics.not_permitted == 2
        assert metrics.calls == 5  # rejections are not recorded in the window
        assert metrics.failure_rate == 100.0  # the metrics that opened it are kept

    def test_late_outcomes_are_recorded_without_transition(self) -> None:
        breaker, _, _ = make()
        trip(breaker)
        breaker.record(True, 0.1)  # a call allowed before the breaker opened
        assert breaker.state is OPEN
        assert breaker.metrics().calls == 6

    def test_half_open_lazily_on_the_next_allow_after_the_wait(self) -> None:
        breaker, clock, events = make()
        trip(breaker)
        clock.advance(59.999)
        assert not breaker.allow()
        assert breaker.wait_remaining() == pytest.approx(0.001, abs=1e-6)
        clock.advance(0.001)
        assert breaker.state is OPEN  # no scheduler: nothing happens by itself
        assert breaker.current_state() is OPEN
        assert breaker.wait_remaining() == 0.0
        assert breaker.allow()
        assert breaker.state is HALF_OPEN
        assert events[-1] == StateTransition(
            "api.example.org", OPEN, HALF_OPEN, T0 + 60.0, "wait duration 60 s in OPEN elapsed"
        )

    def test_automatic_transition_is_seen_by_current_state(self) -> None:
        config = BreakerConfig(
            sliding_window_size=10,
            minimum_number_of_calls=5,
            automatic_transition_from_open_to_half_open_enabled=True,
        )
        breaker, clock, _ = make(config)
        trip(breaker)
        clock.advance(60.0)
        assert breaker.current_state() is HALF_OPEN

    def test_half_open_permits_exactly_the_configured_trial_calls(self) -> None:
        breaker, clock, _ = make()
        trip(breaker)
        clock.advance(60.0)
        assert [breaker.allow() for _ in range(11)] == [True] * 10 + [False]
        metrics = breaker.metrics()
        assert (metrics.calls, metrics.not_permitted) == (0, 1)

    def test_half_open_closes_when_trials_are_below_thresholds(self) -> None:
        breaker, clock, events = make()
        trip(breaker)
        clock.advance(60.0)
        for _ in range(10):
            assert breaker.allow()
        for outcome in "FFFFSSSSS":
            breaker.record(outcome == "S", 0.1)
        assert breaker.state is HALF_OPEN  # 9 of 10 trials: not decided yet
        breaker.record(True, 0.1)  # 4/10 = 40%
        assert breaker.state is CLOSED
        assert events[-1].reason == (
            "failure rate 40% and slow call rate 0% below thresholds over 10 calls"
        )
        assert breaker.metrics().calls == 0  # fresh metrics

    def test_half_open_reopens_when_trials_fail(self) -> None:
        breaker, clock, _ = make()
        trip(breaker)
        clock.advance(60.0)
        calls(breaker, "SSSSSFFFF")
        assert breaker.state is HALF_OPEN
        calls(breaker, "F")  # 5/10 = 50%
        assert breaker.state is OPEN
        assert breaker.opened_at == T0 + 60.0
        clock.advance(59.0)
        assert not breaker.allow()  # the wait starts again
        clock.advance(1.0)
        assert breaker.allow()

    def test_max_wait_in_half_open_reopens(self) -> None:
        config = BreakerConfig(
            sliding_window_size=10,
            minimum_number_of_calls=5,
            permitted_number_of_calls_in_half_open_state=3,
            max_wait_duration_in_half_open_state=30.0,
        )
        breaker, clock, events = make(config)
        trip(breaker)
        clock.advance(60.0)
        assert breaker.allow()  # one trial call goes out and never reports back
        clock.advance(29.0)
        assert breaker.current_state() is HALF_OPEN
        clock.advance(1.0)
        assert not breaker.allow()
        assert breaker.state is OPEN
        assert events[-1].reason == "max wait duration 30 s in HALF_OPEN elapsed"

    def test_zero_max_wait_waits_indefinitely(self) -> None:
        breaker, clock, _ = make()
        trip(breaker)
        clock.advance(60.0)
        assert breaker.allow()
        clock.advance(10 * 365 * 86400.0)
        assert breaker.current_state() is HALF_OPEN


class TestTimeBasedWindow:
    CONFIG = BreakerConfig(
        sliding_window_type=SlidingWindowType.TIME_BASED,
        sliding_window_size=10,  # seconds
        minimum_number_of_calls=3,
    )

    def test_calls_older_than_the_window_expire(self) -> None:
        clock = FakeClock(1000.2)
        breaker, _, _ = make(self.CONFIG, clock)
        calls(breaker, "F")  # second 1000
        clock.now = 1001.5
        calls(breaker, "F")  # second 1001
        clock.now = 1010.5  # window: seconds 1001..1010
        calls(breaker, "F")
        assert breaker.state is CLOSED  # only 2 calls in the window
        assert breaker.metrics().calls == 2
        clock.now = 1010.9
        calls(breaker, "F")  # 3 failures in seconds 1001..1010
        assert breaker.state is OPEN

    def test_metrics_move_the_window(self) -> None:
        clock = FakeClock(1000.0)
        breaker, _, _ = make(self.CONFIG, clock)
        calls(breaker, "SS")
        assert breaker.metrics(now=1009.99).calls == 2
        assert breaker.metrics(now=1010.0).calls == 0

    def test_minimum_is_not_capped_by_window_size(self) -> None:
        config = BreakerConfig(
            sliding_window_type=SlidingWindowType.TIME_BASED,
            sliding_window_size=10,
            minimum_number_of_calls=20,
        )
        breaker, _, _ = make(config)
        calls(breaker, "F" * 19)
        assert breaker.state is CLOSED
        calls(breaker, "F")
        assert breaker.state is OPEN

    def test_half_open_uses_a_count_window(self) -> None:
        breaker, clock, _ = make(self.CONFIG)
        calls(breaker, "FFF")
        assert breaker.state is OPEN
        clock.advance(60.0)
        calls(breaker, "SSSSSSSSS")
        clock.advance(3600.0)  # time does not expire trial calls
        calls(breaker, "S")
        assert breaker.state is CLOSED


class TestManualStates:
    def test_forced_open_rejects_everything_until_closed(self) -> None:
        breaker, clock, events = make()
        breaker.force_open()
        assert breaker.state is FORCED_OPEN
        clock.advance(10_000.0)
        assert not breaker.allow()
        assert breaker.state is FORCED_OPEN  # no wait ends a forced open
        assert breaker.wait_remaining() == math.inf
        breaker.record(False, 0.1)  # ignored
        assert breaker.metrics().calls == 0
        assert breaker.metrics().not_permitted == 1
        breaker.transition_to_closed()
        assert breaker.allow()
        assert [(e.from_state, e.to_state) for e in events] == [
            (CLOSED, FORCED_OPEN),
            (FORCED_OPEN, CLOSED),
        ]

    def test_disabled_allows_everything_and_records_nothing(self) -> None:
        breaker, _, _ = make()
        breaker.disable()
        calls(breaker, "F" * 100)
        assert breaker.state is DISABLED
        assert breaker.metrics().calls == 0

    def test_reset_clears_window_and_counters(self) -> None:
        breaker, _, events = make()
        trip(breaker)
        breaker.allow()
        breaker.reset()
        assert breaker.state is CLOSED
        metrics = breaker.metrics()
        assert (metrics.calls, metrics.not_permitted, metrics.failure_rate) == (0, 0, None)
        assert breaker.opened_at is None
        assert events[-1].reason == "reset"
        calls(breaker, "FFFF")
        assert breaker.state is CLOSED  # the old failures are gone

    def test_manual_open_and_half_open(self) -> None:
        breaker, clock, _ = make()
        breaker.transition_to_open()
        assert not breaker.allow()
        assert breaker.wait_remaining() == 60.0
        breaker.transition_to_half_open()
        assert breaker.allow()
        clock.advance(1.0)
        assert breaker.state is HALF_OPEN


def restart(
    breaker: CircuitBreaker, clock: FakeClock, config: BreakerConfig | None = None
) -> CircuitBreaker:
    """Persist through JSON and rebuild, as after a process restart."""
    text = json.dumps(breaker.to_state(), allow_nan=False)
    return CircuitBreaker.from_state(
        breaker.name, config or breaker.config, json.loads(text), clock
    )


class TestPersistence:
    def test_state_is_json_ready(self) -> None:
        breaker, _, _ = make()
        trip(breaker)
        breaker.allow()
        assert breaker.to_state() == {
            "version": 1,
            "name": "api.example.org",
            "state": "OPEN",
            "opened_at": T0,
            "half_open_at": None,
            "not_permitted": 1,
            "window": {"type": "COUNT_BASED", "size": 10, "outcomes": ["failure"] * 5},
        }

    def test_open_breaker_survives_a_restart_before_its_wait(self) -> None:
        breaker, clock, _ = make()
        trip(breaker)
        clock.advance(30.0)  # the process dies 30 s after the breaker opened...
        restored = restart(breaker, FakeClock(clock.now + 20.0))  # ...and is back 20 s later
        assert restored.state is OPEN
        assert not restored.allow()
        assert restored.wait_remaining() == pytest.approx(10.0)
        assert restored.metrics().failure_rate == 100.0
        assert restored.metrics().not_permitted == 1

    def test_open_breaker_restored_after_its_wait_half_opens(self) -> None:
        breaker, clock, _ = make()
        trip(breaker)
        new_clock = FakeClock(clock.now + 61.0)
        restored = restart(breaker, new_clock)
        assert restored.state is OPEN
        assert restored.allow()
        assert restored.state is HALF_OPEN

    def test_closed_window_carries_over(self) -> None:
        breaker, clock, _ = make()
        calls(breaker, "SSFF")
        restored = restart(breaker, clock)
        assert restored.state is CLOSED
        assert restored.metrics().calls == 4
        calls(restored, "F")  # 3/5 as if there had been no restart
        assert restored.state is OPEN

    def test_smaller_count_window_keeps_the_newest_calls(self) -> None:
        breaker, clock, _ = make()
        calls(breaker, "FFSSSSS")
        smaller = BreakerConfig(sliding_window_size=4, minimum_number_of_calls=4)
        restored = restart(breaker, clock, smaller)
        metrics = restored.metrics()
        assert (metrics.calls, metrics.failed) == (4, 0)

    def test_changed_window_type_starts_empty(self) -> None:
        breaker, clock, _ = make()
        calls(breaker, "SSFF")
        config = BreakerConfig(
            sliding_window_type=SlidingWindowType.TIME_BASED, sliding_window_size=60
        )
        assert restart(breaker, clock, config).metrics().calls == 0

    def test_time_window_round_trip_and_expiry(self) -> None:
        clock = FakeClock(1000.5)
        breaker, _, _ = make(TestTimeBasedWindow.CONFIG, clock)
        calls(breaker, "SF")
        clock.now = 1004.0
        calls(breaker, "S", duration=1.0)
        state = breaker.to_state()
        assert state["window"] == {
            "type": "TIME_BASED",
            "size": 10,
            "buckets": [[1000, 2, 1, 0, 0], [1004, 1, 0, 0, 0]],
        }
        restored = restart(breaker, FakeClock(1009.0))
        assert restored.metrics().calls == 3
        assert restored.metrics(now=1010.0).calls == 1  # second 1000 left the window

    def test_half_open_gets_back_permits_of_lost_calls(self) -> None:
        breaker, clock, _ = make()
        trip(breaker)
        clock.advance(60.0)
        calls(breaker, "SSS")  # 3 trials done
        for _ in range(7):
            assert breaker.allow()  # 7 in flight when the process dies
        restored = restart(breaker, clock)
        assert restored.state is HALF_OPEN
        assert [restored.allow() for _ in range(8)] == [True] * 7 + [False]
        calls_left = "SSSSSSS"
        for outcome in calls_left:
            restored.record(outcome == "S", 0.1)
        assert restored.state is CLOSED

    @pytest.mark.parametrize("action", ["force_open", "disable"])
    def test_operator_states_survive(self, action: str) -> None:
        breaker, clock, _ = make()
        getattr(breaker, action)()
        restored = restart(breaker, FakeClock(clock.now + 1e6))
        assert restored.state is breaker.state
        assert restored.allow() is (action == "disable")

    def test_restore_emits_no_transition(self) -> None:
        breaker, clock, _ = make()
        trip(breaker)
        events: list[StateTransition] = []
        CircuitBreaker.from_state("x", SMALL, breaker.to_state(), clock, events.append)
        assert events == []

    @pytest.mark.parametrize(
        ("patch", "message"),
        [
            ({"version": 2}, "unknown version"),
            ({"state": "AJAR"}, "unknown state"),
            ({"state": "OPEN", "opened_at": None}, "needs opened_at"),
            ({"state": "HALF_OPEN", "half_open_at": None}, "needs half_open_at"),
            ({"opened_at": "yesterday"}, "opened_at"),
            ({"opened_at": float("nan")}, "opened_at"),
            ({"not_permitted": -1}, "not_permitted"),
            ({"window": None}, "window must be a mapping"),
            ({"window": {"type": "COUNT_BASED", "size": 0, "outcomes": []}}, "size"),
            ({"window": {"type": "COUNT_BASED", "size": 3, "outcomes": ["ok"]}}, "outcomes"),
            ({"window": {"type": "TIME_BASED", "size": 3, "buckets": [[1, 1, 2, 0, 0]]}}, "bucket"),
            ({"window": {"type": "SESSION", "size": 3}}, "unknown window type"),
        ],
    )
    def test_bad_saved_state(self, patch: dict[str, Any], message: str) -> None:
        breaker, clock, _ = make()
        trip(breaker)
        data = {**breaker.to_state(), **patch}
        with pytest.raises(ValueError, match=message):
            CircuitBreaker.from_state("api.example.org", SMALL, data, clock)

    def test_not_a_mapping(self) -> None:
        with pytest.raises(ValueError, match="not a mapping"):
            CircuitBreaker.from_state("x", SMALL, [], FakeClock())  # type: ignore[arg-type]


@given(st.lists(st.tuples(st.booleans(), st.sampled_from([0.5, 3.0])), max_size=40))
def test_closed_count_window_matches_a_reference(outcomes: list[tuple[bool, float]]) -> None:
    """A CLOSED breaker opens exactly when the last-N reference crosses a threshold."""
    config = BreakerConfig(
        sliding_window_size=8,
        minimum_number_of_calls=5,
        failure_rate_threshold=50.0,
        slow_call_rate_threshold=75.0,
        slow_call_duration_threshold=2.0,
    )
    breaker = CircuitBreaker("ref", config, FakeClock())
    seen: list[tuple[bool, float]] = []
    for success, duration in outcomes:
        assert breaker.allow()
        breaker.record(success, duration)
        seen.append((success, duration))
        window = seen[-8:]
        failed = sum(1 for s, _ in window if not s)
        slow = sum(1 for _, d in window if d > 2.0)
        expected_open = len(window) >= 5 and (
            failed * 100 / len(window) >= 50.0 or slow * 100 / len(window) >= 75.0
        )
        assert (breaker.state is OPEN) == expected_open
        if expected_open:
            break
