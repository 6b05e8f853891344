"""Retry-After parsing, full-jitter backoff, retry budgets and retry decisions (harvest.retry)."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from echo_archive.errors import ConfigError
from echo_archive.harvest.retry import (
    RETRYABLE_STATUSES,
    FailureKind,
    RetryBudget,
    RetryDecision,
    RetryPolicy,
    failure_kind,
    full_jitter,
    parse_http_date,
    parse_retry_after,
)

from .conftest import shared_dir

RFC_EXAMPLE_EPOCH = 784111777.0  # Sun, 06 Nov 1994 08:49:37 GMT (RFC 9110 §5.6.7 example)
NOW_2026 = 1_780_000_000.0  # 2026-05-28

# shared/corpora/reddit/prawcore/
#   TestSession.test_request__too__many_requests__with_retry_headers.json,
# interaction 1: GET https://oauth.reddit.com/api/v1/me → 429 Too Many Requests.
REDDIT_429 = (
    ("Date", "Mon, 24 May 2021 01:25:56 GMT"),
    ("retry-after", "4"),
)
REDDIT_429_EPOCH = 1621819556.0

# shared/corpora/github/pygithub/SpecificExceptions.testRateLimitExceeded.txt, exchange 2.
GITHUB_403_EXHAUSTED = (
    ("status", "403 Forbidden"),
    ("x-ratelimit-remaining", "0"),
    ("x-ratelimit-limit", "60"),
)


class TestRetryAfter:
    @pytest.mark.parametrize(
        ("value", "seconds"),
        [("0", 0.0), ("4", 4.0), ("120", 120.0), (" 5\t", 5.0), ("007", 7.0), ("3600", 3600.0)],
    )
    def test_delay_seconds(self, value: str, seconds: float) -> None:
        assert parse_retry_after(value, NOW_2026) == seconds

    @pytest.mark.parametrize(
        "value",
        [
            "Sun, 06 Nov 1994 08:49:37 GMT",  # IMF-fixdate
            "Sunday, 06-Nov-94 08:49:37 GMT",  # obsolete RFC 850
            "Sun Nov  6 08:49:37 1994",  # obsolete asctime
        ],
    )
    def test_http_date_forms(self, value: str) -> None:
        now = RFC_EXAMPLE_EPOCH - 30
        assert parse_http_date(value, now) == RFC_EXAMPLE_EPOCH
        assert parse_retry_after(value, now) == 30.0

    def test_asctime_two_digit_day(self) -> None:
        assert parse_http_date("Wed Nov 16 08:49:37 1994", 0.0) == RFC_EXAMPLE_EPOCH + 10 * 86400

    def test_past_date_is_zero(self) -> None:
        assert parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", NOW_2026) == 0.0

    def test_rfc850_two_digit_year_more_than_50_years_ahead_is_past(self) -> None:
        # RFC 9110 §5.6.7: "94" read in 2026 is 1994, not 2094
        assert parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", NOW_2026) == RFC_EXAMPLE_EPOCH
        year_2076 = parse_http_date("Wednesday, 01-Jan-76 00:00:00 GMT", NOW_2026)
        year_1977 = parse_http_date("Saturday, 01-Jan-77 00:00:00 GMT", NOW_2026)
        assert year_2076 == 3345062400.0  # 2076: exactly 50 years ahead, kept
        assert year_1977 == 220924800.0  # 2077 would be 51 years ahead
        # and late in a century, a small year is in the next one
        assert parse_http_date("Thursday, 01-Jan-05 00:00:00 GMT", 3_786_912_000.0) == 4260211200.0

    def test_leap_second(self) -> None:
        # 2016-12-31T23:59:60Z is 2017-01-01T00:00:00Z in POSIX time
        assert parse_http_date("Sat, 31 Dec 2016 23:59:60 GMT", 0.0) == 1483228800.0

    @pytest.mark.parametrize(
        "value",
        [
            "",
            "soon",
            "-5",  # delay-seconds is 1*DIGIT: no sign
            "+5",
            "1.5",
            "5 s",
            "٥",  # a non-ASCII digit
            "Sun, 06 Nov 1994 08:49:37 UTC",  # GMT only
            "Sun, 06 Nov 1994 08:49:37",
            "sun, 06 nov 1994 08:49:37 GMT",  # HTTP-date is case-sensitive
            "Sun, 6 Nov 1994 08:49:37 GMT",  # date1 has a 2-digit day
            "Sun, 31 Feb 1994 08:49:37 GMT",  # no such day
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:60:00 GMT",
            "Sun, 06 Nov 1994 08:49:61 GMT",
            "Sun, 06-Nov-94 08:49:37 GMT",  # RFC 850 needs the long day name
            "Sunday, 06 Nov 1994 08:49:37 GMT",
            "Sun Nov 6 08:49:37 1994",  # asctime pads the day with a space
            "2026-05-28T00:00:00Z",
        ],
    )
    def test_garbage_is_none(self, value: str) -> None:
        assert parse_retry_after(value, NOW_2026) is None

    def test_reddit_429_literal(self) -> None:
        assert parse_retry_after(dict(REDDIT_429)["retry-after"], REDDIT_429_EPOCH) == 4.0


class TestFullJitter:
    @given(
        attempt=st.integers(0, 2000),
        base=st.floats(0.0, 100.0),
        cap=st.floats(0.0, 1000.0),
        seed=st.integers(0, 2**32),
    )
    def test_bounds(self, attempt: int, base: float, cap: float, seed: int) -> None:
        delay = full_jitter(attempt, base, cap, random.Random(seed))
        try:
            window = min(cap, base * 2**attempt)
        except OverflowError:
            window = cap
        assert 0.0 <= delay <= window

    def test_seeded_is_reproducible_and_spreads(self) -> None:
        first = [full_jitter(3, 0.5, 30.0, random.Random(7)) for _ in range(3)]
        assert len(set(first)) == 1
        rng = random.Random(42)
        delays = [full_jitter(3, 0.5, 30.0, rng) for _ in range(2000)]
        assert max(delays) <= 4.0
        assert min(delays) < 0.1
        assert max(delays) > 3.9  # the whole window [0, 4] is used

    def test_cap(self) -> None:
        rng = random.Random(1)
        assert all(full_jitter(50, 1.0, 10.0, rng) <= 10.0 for _ in range(100))
        assert full_jitter(3, 1.0, 0.0, rng) == 0.0

    def test_negative_arguments(self) -> None:
        with pytest.raises(ValueError, match="full_jitter"):
            full_jitter(-1, 1.0, 1.0, random.Random(0))


class TestRetryBudget:
    def test_ten_percent_of_requests(self) -> None:
        budget = RetryBudget(ratio=0.1, window=60.0, min_retries=0)
        for t in range(9):
            budget.record_request(float(t))
        assert not budget.can_retry(9.0)  # 1 retry > 0.1 * 9
        budget.record_request(9.0)
        assert budget.can_retry(9.0)  # 1 retry <= 0.1 * 10
        budget.record_retry(9.0)
        assert not budget.can_retry(9.0)  # exhausted
        for t in range(10, 20):
            budget.record_request(float(t))
        assert budget.can_retry(19.0)  # 2 retries <= 0.1 * 20
        assert budget.counts(19.0) == (20, 1)

    def test_sliding_window_forgets(self) -> None:
        budget = RetryBudget(ratio=0.1, window=60.0, min_retries=0)
        for _ in range(10):
            budget.record_request(0.0)
        budget.record_retry(0.0)
        assert budget.counts(59.9) == (10, 1)
        assert budget.counts(60.0) == (0, 0)
        assert not budget.can_retry(60.0)  # no traffic, no ratio

    def test_min_retries_reserve(self) -> None:
        budget = RetryBudget(ratio=0.1, window=60.0, min_retries=2)
        assert budget.can_retry(0.0)
        budget.record_retry(0.0)
        budget.record_retry(0.0)
        assert not budget.can_retry(0.0)

    @pytest.mark.parametrize("kwargs", [{"ratio": -0.1}, {"window": 0.0}, {"min_retries": -1}])
    def test_validation(self, kwargs: dict[str, float]) -> None:
        with pytest.raises(ConfigError):
            RetryBudget(**kwargs)  # type: ignore[arg-type]


def decide(
    policy: RetryPolicy,
    outcome: int | str,
    headers: tuple[tuple[str, str], ...] = (),
    *,
    method: str = "GET",
    attempt: int = 1,
    now: float = NOW_2026,
    seed: int = 0,
) -> RetryDecision:
    return policy.decide(method, outcome, headers, attempt, now, random.Random(seed))


class TestRetryPolicy:
    @pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524])
    def test_retryable_statuses_use_full_jitter(self, status: int) -> None:
        policy = RetryPolicy(base=0.5, cap=30.0)
        decision = decide(policy, status)
        assert decision.retry
        assert 0.0 <= decision.delay <= 0.5  # first retry: window = base
        assert decision.reason.startswith(f"{status}: attempt 1 failed, full jitter")
        assert decision.delay == full_jitter(0, 0.5, 30.0, random.Random(0))

    @pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 410, 418, 422, 451, 501, 505])
    def test_other_errors_are_not_retried(self, status: int) -> None:
        decision = decide(RetryPolicy(), status)
        assert decision == RetryDecision(False, 0.0, f"{status} is not retryable")

    @pytest.mark.parametrize("status", [200, 204, 301, 304])
    def test_success_is_not_a_failure(self, status: int) -> None:
        assert decide(RetryPolicy(), status) == RetryDecision(
            False, 0.0, f"{status} is not a failure"
        )

    def test_retryable_set_is_exactly_the_documented_one(self) -> None:
        assert {408, 429, 500, 502, 503, 504, *range(520, 525)} == RETRYABLE_STATUSES

    def test_429_with_retry_after_seconds(self) -> None:
        decision = decide(RetryPolicy(), 429, REDDIT_429, now=REDDIT_429_EPOCH)
        assert decision == RetryDecision(True, 4.0, "429: attempt 1 failed, retry-after 4 s")

    def test_503_with_retry_after_date(self) -> None:
        headers = (("Retry-After", "Sun, 06 Nov 1994 08:51:37 GMT"),)
        decision = decide(RetryPolicy(), 503, headers, now=RFC_EXAMPLE_EPOCH)
        assert decision.retry
        assert decision.delay == 120.0

    def test_retry_after_beyond_cap_is_not_waited_for(self) -> None:
        decision = decide(RetryPolicy(retry_after_cap=300.0), 503, (("Retry-After", "3600"),))
        assert decision == RetryDecision(False, 3600.0, "retry-after 3600 s exceeds cap 300 s")

    def test_retry_after_at_cap_is_waited_for(self) -> None:
        decision = decide(RetryPolicy(retry_after_cap=300.0), 429, (("Retry-After", "300"),))
        assert decision.retry
        assert decision.delay == 300.0

    def test_garbage_retry_after_falls_back_to_jitter(self) -> None:
        decision = decide(RetryPolicy(base=2.0), 429, (("Retry-After", "-5"),))
        assert decision.retry
        assert 0.0 <= decision.delay <= 2.0
        assert "full jitter" in decision.reason

    def test_retry_after_on_a_non_retryable_status_is_ignored(self) -> None:
        assert not decide(RetryPolicy(), 404, (("Retry-After", "1"),)).retry

    def test_github_403_rate_limited_is_not_retried_but_explained(self) -> None:
        decision = decide(RetryPolicy(), 403, GITHUB_403_EXHAUSTED)
        assert not decision.retry
        assert "rate limit exhausted" in decision.reason

    @pytest.mark.parametrize("method", ["POST", "post", "PATCH", "CONNECT"])
    def test_non_idempotent_methods_are_never_retried(self, method: str) -> None:
        decision = decide(RetryPolicy(), 503, method=method)
        assert not decision.retry
        assert "not idempotent" in decision.reason

    @pytest.mark.parametrize("method", ["GET", "head", "OPTIONS", "PUT", "DELETE"])
    def test_idempotent_methods_are_retried(self, method: str) -> None:
        assert decide(RetryPolicy(), 503, method=method).retry

    @pytest.mark.parametrize(
        "kind",
        [
            FailureKind.CONNECT_ERROR,
            FailureKind.CONNECT_TIMEOUT,
            "read_timeout",
            "pool_timeout",
            "read_error",
            "remote_protocol_error",
        ],
    )
    def test_transport_failures_are_retried(self, kind: str) -> None:
        decision = decide(RetryPolicy(), kind)
        assert decision.retry
        assert decision.reason.startswith(f"{kind}: attempt 1 failed")

    @pytest.mark.parametrize(
        "kind", [FailureKind.TOO_MANY_REDIRECTS, "decoding_error", "local_protocol_error", "boom"]
    )
    def test_other_failures_are_not_retried(self, kind: str) -> None:
        decision = decide(RetryPolicy(), kind)
        assert decision == RetryDecision(False, 0.0, f"{kind} is not retryable")

    def test_attempts_are_capped_and_windows_grow(self) -> None:
        policy = RetryPolicy(max_attempts=3, base=1.0, cap=30.0)
        for attempt in (1, 2):
            for seed in range(50):
                decision = decide(policy, 500, attempt=attempt, seed=seed)
                assert decision.retry
                assert decision.delay <= 1.0 * 2 ** (attempt - 1)
        last = decide(policy, 500, attempt=3)
        assert last == RetryDecision(False, 0.0, "500: attempt 3 of 3, no attempts left")

    def test_attempt_counts_from_one(self) -> None:
        with pytest.raises(ValueError, match="attempt"):
            decide(RetryPolicy(), 500, attempt=0)

    def test_budget_is_checked_and_spent(self) -> None:
        budget = RetryBudget(ratio=0.1, window=60.0, min_retries=0)
        policy = RetryPolicy(budget=budget)
        for _ in range(10):
            budget.record_request(NOW_2026)
        assert decide(policy, 503).retry
        assert budget.counts(NOW_2026) == (10, 1)
        refused = decide(policy, 503)
        assert not refused.retry
        assert refused.reason == "503: retry budget exhausted (1 retries for 10 requests in 60 s)"
        assert budget.counts(NOW_2026) == (10, 1)

    def test_refusals_do_not_spend_budget(self) -> None:
        budget = RetryBudget(ratio=0.0, window=60.0, min_retries=1)
        policy = RetryPolicy(budget=budget)
        decide(policy, 404)
        decide(policy, 503, method="POST")
        decide(policy, 503, attempt=3)
        decide(policy, 503, (("Retry-After", "9999"),))
        assert budget.counts(NOW_2026) == (0, 0)
        assert decide(policy, 503).retry

    @pytest.mark.parametrize(
        "kwargs",
        [{"max_attempts": 0}, {"base": -1.0}, {"cap": float("nan")}, {"retry_after_cap": -1.0}],
    )
    def test_validation(self, kwargs: dict[str, float]) -> None:
        with pytest.raises(ConfigError):
            RetryPolicy(**kwargs)  # type: ignore[arg-type]


class TestFailureKind:
    def test_by_class_name(self) -> None:
        class ConnectTimeout(Exception):
            pass

        class ReadTimeout(TimeoutError):
            pass

        assert failure_kind(ConnectTimeout()) is FailureKind.CONNECT_TIMEOUT
        assert failure_kind(ReadTimeout()) is FailureKind.READ_TIMEOUT
        assert failure_kind(ConnectionRefusedError()) is FailureKind.CONNECT_ERROR
        assert failure_kind(ConnectionResetError()) is FailureKind.READ_ERROR
        assert failure_kind(ValueError()) is None

    def test_httpx_exceptions(self) -> None:
        httpx = pytest.importorskip("httpx")
        assert failure_kind(httpx.ConnectTimeout("x")) is FailureKind.CONNECT_TIMEOUT
        assert failure_kind(httpx.ConnectError("x")) is FailureKind.CONNECT_ERROR
        assert failure_kind(httpx.ReadTimeout("x")) is FailureKind.READ_TIMEOUT
        assert failure_kind(httpx.PoolTimeout("x")) is FailureKind.POOL_TIMEOUT
        assert failure_kind(httpx.RemoteProtocolError("x")) is FailureKind.REMOTE_PROTOCOL_ERROR
        assert failure_kind(httpx.TooManyRedirects("x")) is FailureKind.TOO_MANY_REDIRECTS
        assert failure_kind(httpx.DecodingError("x")) is FailureKind.DECODING_ERROR


def test_reddit_literal_matches_corpus() -> None:
    path = shared_dir("corpora", "reddit", "prawcore").joinpath(
        "TestSession.test_request__too__many_requests__with_retry_headers.json"
    )
    interaction = json.loads(path.read_text(encoding="utf-8"))["interactions"][1]
    assert interaction["response"]["status"]["code"] == 429
    headers = interaction["response"]["headers"]
    assert headers["retry-after"] == ["4"]
    assert headers["Date"] == ["Mon, 24 May 2021 01:25:56 GMT"]
