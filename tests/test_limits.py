"""Token buckets, per-host limits and live rate-limit headers (harvest.limits).

Header values are copied literally from the recorded traffic in
``shared/corpora`` (each test names its file); ``test_literals_match_corpora``
checks that the copies still match the files.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from echo_archive.errors import ConfigError
from echo_archive.harvest.limits import (
    DEFAULT_HOSTS,
    DEFAULT_LIMITS,
    GITHUB_ASSUMED_RESET,
    REDDIT_ASSUMED_RESET,
    HostLimits,
    LimitConfig,
    RateLimitInfo,
    TokenBucket,
    pace,
    parse_poll_interval,
    parse_rate_limit,
)

from .conftest import shared_dir

# --- literal header values from the corpora ------------------------------------

# shared/corpora/github/github3py/Branch_latest_sha.json, interactions 2 and 3:
# GET /repos/PyCQA/flake8/branches/stable/2.6 → 200, then a conditional GET
# (If-None-Match) of /repos/PyCQA/flake8/commits/stable/2.6 → 304; the 304 leaves
# X-RateLimit-Remaining at 45 ("304s don't count").
GITHUB_200 = (
    ("Date", "Mon, 01 Jan 2018 18:52:25 GMT"),
    ("X-RateLimit-Limit", "60"),
    ("X-RateLimit-Remaining", "45"),
    ("X-RateLimit-Reset", "1514833351"),
)
GITHUB_304 = GITHUB_200  # identical rate-limit headers on the 304
GITHUB_DATE_EPOCH = 1514832745.0  # Mon, 01 Jan 2018 18:52:25 GMT

# shared/corpora/github/pygithub/SpecificExceptions.testRateLimitExceeded.txt,
# second exchange: 403 "API Rate Limit Exceeded" (no x-ratelimit-reset recorded).
GITHUB_403_EXHAUSTED = (
    ("status", "403 Forbidden"),
    ("x-ratelimit-remaining", "0"),
    ("x-ratelimit-limit", "60"),
    ("date", "Fri, 17 May 2013 12:23:56 GMT"),
)
GITHUB_403_DATE_EPOCH = 1368793436.0  # Fri, 17 May 2013 12:23:56 GMT

# shared/corpora/github/github3py/GitHub_all_events.json: GET /events?per_page=25.
GITHUB_EVENTS = (
    ("Date", "Fri, 29 Dec 2017 00:41:43 GMT"),
    ("X-RateLimit-Limit", "60"),
    ("X-RateLimit-Remaining", "53"),
    ("X-RateLimit-Reset", "1514511495"),
    ("X-Poll-Interval", "60"),
)

# shared/corpora/reddit/praw/TestPollData.test_get_user_selection.json:
# GET https://oauth.reddit.com/comments/g9zfex/ → 200.
REDDIT_200 = (
    ("Date", "Wed, 29 Apr 2020 06:35:41 GMT"),
    ("x-ratelimit-remaining", "595.0"),
    ("x-ratelimit-reset", "259"),
    ("x-ratelimit-used", "5"),
)
REDDIT_DATE_EPOCH = 1588142141.0  # Wed, 29 Apr 2020 06:35:41 GMT


class TestTokenBucket:
    def test_starts_full_and_queues_reservations_at_the_rate(self) -> None:
        bucket = TokenBucket(rate=1.0, burst=1.0)
        assert bucket.acquire(0.0) == 0.0
        assert bucket.acquire(0.0) == pytest.approx(1.0)
        assert bucket.acquire(0.0) == pytest.approx(2.0)  # behind the previous reservation
        # at t=5 the debt (-2) is paid and one token (the cap) is back
        assert bucket.acquire(5.0) == 0.0
        assert bucket.available(5.0) == pytest.approx(0.0)

    def test_burst_then_rate(self) -> None:
        bucket = TokenBucket(rate=2.0, burst=3.0)
        waits = [bucket.acquire(10.0) for _ in range(5)]
        assert waits == pytest.approx([0.0, 0.0, 0.0, 0.5, 1.0])

    def test_tokens_accrue_up_to_burst_only(self) -> None:
        bucket = TokenBucket(rate=1.0, burst=2.0)
        bucket.acquire(0.0)
        bucket.acquire(0.0)
        assert bucket.available(1000.0) == pytest.approx(2.0)

    def test_pause_until_blocks_all_tokens_and_accrues_none(self) -> None:
        bucket = TokenBucket(rate=1.0, burst=5.0)
        bucket.pause_until(60.0)  # e.g. a 429 until the budget resets
        assert bucket.pause_remaining(0.0) == 60.0
        assert bucket.acquire(0.0) == pytest.approx(60.0)  # a saved token, usable at 60
        for _ in range(4):
            bucket.acquire(0.0)
        # the 5 saved tokens are taken; the 6th accrues 1 s after the pause (none during it)
        assert bucket.acquire(0.0) == pytest.approx(61.0)
        assert bucket.pause_remaining(60.0) == 0.0

    def test_pause_only_extends(self) -> None:
        bucket = TokenBucket(rate=1.0, burst=1.0)
        bucket.pause_until(100.0)
        bucket.pause_until(50.0)
        assert bucket.paused_until == 100.0

    def test_set_rate_credits_the_old_rate_first(self) -> None:
        bucket = TokenBucket(rate=1.0, burst=10.0)
        for _ in range(10):
            bucket.acquire(0.0)
        bucket.set_rate(0.1, now=4.0)  # 4 tokens accrued at 1/s before the change
        assert bucket.available(4.0) == pytest.approx(4.0)
        assert bucket.available(14.0) == pytest.approx(5.0)  # then 0.1/s
        assert bucket.rate == 0.1

    def test_refund_gives_back_one_token_capped_at_burst(self) -> None:
        bucket = TokenBucket(rate=1.0, burst=1.0)
        assert bucket.acquire(0.0) == 0.0
        bucket.refund(0.0)
        assert bucket.acquire(0.0) == 0.0
        bucket.refund(0.0)
        bucket.refund(0.0)
        assert bucket.available(0.0) == 1.0

    @pytest.mark.parametrize(("rate", "burst"), [(0.0, 1.0), (-1.0, 1.0), (math.inf, 1.0)])
    def test_rejects_bad_rate(self, rate: float, burst: float) -> None:
        with pytest.raises(ConfigError, match="rate"):
            TokenBucket(rate, burst)

    def test_rejects_bad_burst_and_rate_change(self) -> None:
        with pytest.raises(ConfigError, match="burst"):
            TokenBucket(1.0, 0.5)
        with pytest.raises(ConfigError, match="rate"):
            TokenBucket(1.0, 1.0).set_rate(0.0)

    @given(
        rate=st.floats(0.01, 100.0),
        burst=st.integers(1, 20),
        n=st.integers(1, 60),
    )
    def test_kth_reservation_waits_for_its_token(self, rate: float, burst: int, n: int) -> None:
        bucket = TokenBucket(rate, float(burst))
        for k in range(n):
            expected = max(0.0, (k - burst + 1) / rate)
            assert bucket.acquire(3.0) == pytest.approx(expected, rel=1e-9, abs=1e-9)


class TestDefaults:
    def test_source_rules(self) -> None:
        assert DEFAULT_LIMITS["fred"].rate <= 1.0  # FRED: at most 1 req/s
        assert DEFAULT_LIMITS["reddit"].rate * 60 == pytest.approx(10)  # 10 QPM anonymous
        assert DEFAULT_LIMITS["reddit-oauth"].rate * 60 == pytest.approx(100)  # 100 QPM OAuth
        assert DEFAULT_LIMITS["github"].concurrency == 1  # "make requests serially"
        assert DEFAULT_LIMITS["github"].rate_limit_headers == "github"
        assert DEFAULT_LIMITS["reddit"].rate_limit_headers == "reddit"
        hn = DEFAULT_LIMITS["hn"]
        assert (hn.rate, hn.concurrency) == (10.0, 4)
        rss = DEFAULT_LIMITS["rss"]
        assert (rss.rate, rss.concurrency) == (1.0, 2)

    def test_every_known_host_has_a_profile(self) -> None:
        assert set(DEFAULT_HOSTS.values()) <= set(DEFAULT_LIMITS)

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"rate": 0.0},
            {"rate": 1.0, "burst": 0.0},
            {"rate": 1.0, "concurrency": 0},
            {"rate": 1.0, "rate_limit_headers": "twitter"},
        ],
    )
    def test_limit_config_validation(self, kwargs: dict[str, object]) -> None:
        with pytest.raises(ConfigError):
            LimitConfig(**kwargs)  # type: ignore[arg-type]


class TestHostLimits:
    def test_config_by_host(self) -> None:
        limits = HostLimits({"Example.org": LimitConfig(rate=0.5, concurrency=3)})
        assert limits.config_for("api.stlouisfed.org") == DEFAULT_LIMITS["fred"]
        assert limits.config_for("oauth.reddit.com") == DEFAULT_LIMITS["reddit-oauth"]
        assert limits.config_for("www.reddit.com") == DEFAULT_LIMITS["reddit"]
        assert limits.config_for("API.GITHUB.COM") == DEFAULT_LIMITS["github"]
        assert limits.config_for("hacker-news.firebaseio.com") == DEFAULT_LIMITS["hn"]
        assert limits.config_for("blog.example.net") == DEFAULT_LIMITS["rss"]
        assert limits.config_for("example.org").rate == 0.5

    def test_unknown_profile_is_a_config_error(self) -> None:
        with pytest.raises(ConfigError, match="nope"):
            HostLimits(hosts={"a.example": "nope"})

    def test_concurrency_slots(self) -> None:
        limits = HostLimits()
        host = "hacker-news.firebaseio.com"  # 4 concurrent
        assert [limits.try_acquire_slot(host) for _ in range(5)] == [True] * 4 + [False]
        assert limits.in_flight(host) == 4
        limits.release_slot(host)
        assert limits.try_acquire_slot(host)
        assert limits.try_acquire_slot("api.github.com")  # GitHub: serially, 1 in flight
        assert not limits.try_acquire_slot("api.github.com")

    def test_double_release_is_an_error(self) -> None:
        with pytest.raises(ValueError, match="in flight"):
            HostLimits().release_slot("example.org")

    def test_acquire_paces_each_host_separately(self) -> None:
        limits = HostLimits()
        assert limits.acquire("api.stlouisfed.org", 0.0) == 0.0
        assert limits.acquire("api.stlouisfed.org", 0.0) == pytest.approx(1.0)  # FRED 1 req/s
        assert limits.acquire("www.reddit.com", 0.0) == 0.0
        assert limits.acquire("www.reddit.com", 0.0) == pytest.approx(6.0)  # 10 QPM

    def test_observe_github_paces_the_budget_until_reset(self) -> None:
        limits = HostLimits()
        info = limits.observe("api.github.com", GITHUB_200, now=100.0, now_epoch=GITHUB_DATE_EPOCH)
        assert info is not None
        # 45 requests left for 606 s: 0.0743 req/s, below the 1 req/s ceiling
        assert limits.bucket("api.github.com").rate == pytest.approx(45 / 606)

    def test_observe_github_304_refunds_its_token(self) -> None:
        limits = HostLimits()
        host = "api.github.com"
        assert limits.acquire(host, 100.0) == 0.0
        info = limits.observe(host, GITHUB_304, now=100.0, now_epoch=GITHUB_DATE_EPOCH, status=304)
        assert info is not None
        assert not info.counted
        assert limits.acquire(host, 100.0) == 0.0  # the 304 did not spend the token

    def test_observe_exhausted_budget_pauses_the_host(self) -> None:
        limits = HostLimits()
        host = "api.github.com"
        limits.observe(
            host, GITHUB_403_EXHAUSTED, now=500.0, now_epoch=GITHUB_403_DATE_EPOCH, status=403
        )
        bucket = limits.bucket(host)
        assert bucket.pause_remaining(500.0) == pytest.approx(GITHUB_ASSUMED_RESET)
        assert limits.acquire(host, 500.0) == pytest.approx(GITHUB_ASSUMED_RESET)

    def test_observe_reddit_keeps_the_configured_ceiling(self) -> None:
        limits = HostLimits()
        host = "oauth.reddit.com"
        info = limits.observe(host, REDDIT_200, now=0.0, now_epoch=REDDIT_DATE_EPOCH)
        assert info is not None
        # 595 left over 259 s = 2.3 req/s, above 100 QPM: the configured rate stays
        assert limits.bucket(host).rate == pytest.approx(100 / 60)

    def test_observe_ignores_hosts_without_header_dialect(self) -> None:
        limits = HostLimits()
        assert limits.observe("blog.example.net", GITHUB_200, 0.0, GITHUB_DATE_EPOCH) is None
        assert limits.bucket("blog.example.net").rate == DEFAULT_LIMITS["rss"].rate


class TestParseRateLimit:
    def test_github_reset_is_epoch_seconds(self) -> None:
        info = parse_rate_limit(GITHUB_200, "github", GITHUB_DATE_EPOCH)
        assert info == RateLimitInfo(remaining=45.0, reset_at_epoch=1514833351.0, limit=60.0)
        assert pace(info, GITHUB_DATE_EPOCH) == pytest.approx(45 / 606)

    def test_github_304_does_not_count(self) -> None:
        info = parse_rate_limit(GITHUB_304, "github", GITHUB_DATE_EPOCH, status=304)
        assert info is not None
        assert not info.counted
        assert info.remaining == 45.0

    def test_github_exhausted_without_reset_assumes_a_minute(self) -> None:
        info = parse_rate_limit(GITHUB_403_EXHAUSTED, "github", GITHUB_403_DATE_EPOCH, status=403)
        assert info is not None
        assert info.remaining == 0.0
        assert info.limit == 60.0
        assert info.reset_assumed
        assert info.reset_at_epoch == GITHUB_403_DATE_EPOCH + 60.0
        assert pace(info, GITHUB_403_DATE_EPOCH) == 0.0  # pause until the reset

    def test_github_used_and_resource(self) -> None:
        headers = (
            ("x-ratelimit-limit", "5000"),
            ("x-ratelimit-remaining", "4999"),
            ("x-ratelimit-used", "1"),
            ("x-ratelimit-reset", "1691591363"),
            ("x-ratelimit-resource", "core"),
        )
        info = parse_rate_limit(headers, "github", 1691591000.0)
        assert info is not None
        assert (info.used, info.resource) == (1.0, "core")

    def test_reddit_reset_is_seconds_remaining(self) -> None:
        info = parse_rate_limit(REDDIT_200, "reddit", REDDIT_DATE_EPOCH)
        assert info == RateLimitInfo(
            remaining=595.0, reset_at_epoch=REDDIT_DATE_EPOCH + 259, limit=600.0, used=5.0
        )
        assert pace(info, REDDIT_DATE_EPOCH) == pytest.approx(595 / 259)

    def test_same_reset_value_two_meanings(self) -> None:
        headers = (("x-ratelimit-remaining", "10"), ("x-ratelimit-reset", "259"))
        now = REDDIT_DATE_EPOCH
        github = parse_rate_limit(headers, "github", now)
        reddit = parse_rate_limit(headers, "reddit", now)
        assert github is not None
        assert reddit is not None
        assert github.reset_at_epoch == 259.0  # 1970-01-01T00:04:19Z: long past
        assert reddit.reset_at_epoch == now + 259.0
        assert pace(github, now) == math.inf  # window over: no bound
        assert pace(reddit, now) == pytest.approx(10 / 259)

    def test_reddit_without_reset_assumes_the_ten_minute_window(self) -> None:
        info = parse_rate_limit((("x-ratelimit-remaining", "6.0"),), "reddit", 1000.0)
        assert info is not None
        assert info.reset_assumed
        assert info.reset_at_epoch == 1000.0 + REDDIT_ASSUMED_RESET
        assert info.limit is None

    @pytest.mark.parametrize(
        ("headers", "kind"),
        [
            ((), "github"),
            ((("x-ratelimit-remaining", "many"),), "github"),
            ((("x-ratelimit-remaining", "-1"),), "reddit"),
            ((("x-ratelimit-remaining", "nan"),), "reddit"),
            (GITHUB_200, "fred"),
            (REDDIT_200, "hn"),
        ],
    )
    def test_absent_garbage_or_unknown_kind_gives_none(
        self, headers: tuple[tuple[str, str], ...], kind: str
    ) -> None:
        assert parse_rate_limit(headers, kind, 0.0) is None

    def test_garbage_github_reset_is_assumed(self) -> None:
        headers = (("x-ratelimit-remaining", "3"), ("x-ratelimit-reset", "tomorrow"))
        info = parse_rate_limit(headers, "github", 50.0)
        assert info is not None
        assert info.reset_assumed
        assert info.reset_at_epoch == 110.0


class TestPace:
    def test_spreads_remaining_over_time_to_reset(self) -> None:
        info = RateLimitInfo(remaining=30.0, reset_at_epoch=160.0)
        assert pace(info, 100.0) == pytest.approx(0.5)

    def test_zero_remaining_means_pause(self) -> None:
        assert pace(RateLimitInfo(remaining=0.0, reset_at_epoch=160.0), 100.0) == 0.0

    def test_past_reset_sets_no_bound(self) -> None:
        assert pace(RateLimitInfo(remaining=0.0, reset_at_epoch=100.0), 100.0) == math.inf


class TestPollInterval:
    def test_github_events(self) -> None:
        assert parse_poll_interval(GITHUB_EVENTS) == 60.0

    @pytest.mark.parametrize("value", ["", "soon", "-60", "1.5", "0", "٦٠"])
    def test_garbage(self, value: str) -> None:
        assert parse_poll_interval((("X-Poll-Interval", value),)) is None

    def test_absent(self) -> None:
        assert parse_poll_interval(GITHUB_200) is None


def _cassette_headers(path: str, index: int) -> dict[str, str]:
    """Response headers of interaction ``index`` of a betamax/VCR JSON cassette, lowercased."""
    data = json.loads(shared_dir("corpora").joinpath(path).read_text(encoding="utf-8"))
    interactions = data.get("http_interactions") or data["interactions"]
    headers = interactions[index]["response"]["headers"]
    return {k.lower(): (v[0] if isinstance(v, list) else v) for k, v in headers.items()}


def test_literals_match_corpora() -> None:
    """The header values copied above are the ones in shared/corpora."""
    for index, expected in ((1, GITHUB_200), (2, GITHUB_304)):
        recorded = _cassette_headers("github/github3py/Branch_latest_sha.json", index)
        assert {k.lower(): v for k, v in expected} == {
            k.lower(): recorded[k.lower()] for k, _ in expected
        }
    events = _cassette_headers("github/github3py/GitHub_all_events.json", 0)
    assert {k.lower(): v for k, v in GITHUB_EVENTS} == {
        k.lower(): events[k.lower()] for k, _ in GITHUB_EVENTS
    }
    reddit = _cassette_headers("reddit/praw/TestPollData.test_get_user_selection.json", 1)
    assert {k.lower(): v for k, v in REDDIT_200} == {
        k.lower(): reddit[k.lower()] for k, _ in REDDIT_200
    }
    replay = shared_dir("corpora", "github", "pygithub")
    text = replay.joinpath("SpecificExceptions.testRateLimitExceeded.txt").read_text()
    for name, value in GITHUB_403_EXHAUSTED:
        assert f"('{name}', '{value}')" in text
    assert "x-ratelimit-reset" not in text
