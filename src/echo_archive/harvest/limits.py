"""Per-host request limits: token buckets, concurrency caps and live rate-limit headers.

Pure building blocks of the fetch engine: nothing here sleeps or touches the
network. Every time-dependent call takes ``now`` (monotonic seconds, e.g.
``time.monotonic()``) and, where a server speaks in wall-clock time,
``now_epoch`` (POSIX seconds, e.g. ``time.time()``). The engine sleeps for the
delays these functions return.

Terms:

token bucket
    ``rate`` tokens per second accrue up to ``burst`` tokens; a request takes
    one. :meth:`TokenBucket.acquire` *reserves* a token and says how long to
    wait for it, so concurrent callers queue in order.
limit profile
    A named :class:`LimitConfig` (``fred``, ``reddit``, ``reddit-oauth``,
    ``github``, ``hn``, ``rss``), declared by its source
    (:class:`~echo_archive.sources.base.HostProfile`, with the rule it
    follows); :data:`DEFAULT_LIMITS` and :data:`DEFAULT_HOSTS` are read from
    the registry. Any other host is a generic feed host (``rss``).
rate-limit headers
    What a server says about its budget: GitHub and Reddit send
    ``x-ratelimit-*`` headers with *different* meanings of ``reset`` (epoch
    seconds at GitHub, seconds remaining at Reddit).
    :func:`parse_rate_limit` reads them into a :class:`RateLimitInfo`;
    :func:`pace` turns that into a rate that spreads the remaining budget until
    the reset; :meth:`HostLimits.observe` applies it to the host's bucket.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from echo_archive.errors import ConfigError
from echo_archive.sources.ratelimits import (
    GITHUB_ASSUMED_RESET,
    REDDIT_ASSUMED_RESET,
    Headers,
    LimitConfig,
    RateLimitInfo,
    check_rate,
    pace,
    parse_poll_interval,
    parse_rate_limit,
)
from echo_archive.sources.registry import DEFAULT_PROFILE, LIMIT_PROFILES, PROFILE_HOSTS

__all__ = [
    "DEFAULT_HOSTS",
    "DEFAULT_LIMITS",
    "GITHUB_ASSUMED_RESET",
    "REDDIT_ASSUMED_RESET",
    "HostLimits",
    "LimitConfig",
    "RateLimitInfo",
    "TokenBucket",
    "limits_from_config",
    "pace",
    "parse_poll_interval",
    "parse_rate_limit",
]


class TokenBucket:
    """A token bucket: ``rate`` tokens per second, at most ``burst`` saved up.

    The bucket starts full. :meth:`acquire` reserves a token and returns how
    long to wait for it; the balance may go negative (tokens owed), so the
    next caller waits behind the previous one and requests leave at ``rate``
    on average with at most ``burst`` back to back. A pause
    (:meth:`pause_until`) hands out no token before its end and accrues none
    while it lasts.

    Not thread-safe: use it from one event loop.

    Args:
        rate: tokens added per second (requests/s), > 0.
        burst: bucket capacity in tokens (requests sent back to back), >= 1.

    Raises:
        ConfigError: ``rate`` is not a positive finite number, or ``burst`` < 1.
    """

    def __init__(self, rate: float, burst: float) -> None:
        check_rate(rate)
        if not (math.isfinite(burst) and burst >= 1):
            raise ConfigError(f"token bucket burst must be >= 1, got {burst!r}")
        self._rate = float(rate)
        self._burst = float(burst)
        self._tokens = float(burst)
        self._last: float | None = None
        self._paused_until = -math.inf

    @property
    def rate(self) -> float:
        """The current refill rate in tokens (requests) per second."""
        return self._rate

    @property
    def burst(self) -> float:
        """The capacity in tokens."""
        return self._burst

    @property
    def paused_until(self) -> float:
        """The monotonic time before which no token is handed out (``-inf`` when never paused)."""
        return self._paused_until

    def _refill(self, now: float) -> None:
        """Accrue tokens from the last update (or the end of a pause) up to ``now``."""
        if self._last is None:
            self._last = now
            return
        if now <= self._last:
            return  # time does not run backwards for a monotonic clock; ignore
        accrue_from = max(self._last, self._paused_until)
        if now > accrue_from:
            self._tokens = min(self._burst, self._tokens + (now - accrue_from) * self._rate)
        self._last = now

    def available(self, now: float) -> float:
        """Return the tokens in the bucket at ``now`` without taking one (negative when owed).

        Args:
            now: monotonic seconds.
        """
        self._refill(now)
        return self._tokens

    def acquire(self, now: float) -> float:
        """Reserve one token and return the seconds to wait before using it.

        Args:
            now: monotonic seconds.

        Returns:
            0.0 when a token is available now (and not paused); otherwise the
            seconds until the reserved token exists (and the pause is over).
            The token is taken either way: call once per request.
        """
        self._refill(now)
        start = max(now, self._paused_until)
        ready = start if self._tokens >= 1 else start + (1 - self._tokens) / self._rate
        self._tokens -= 1
        return max(0.0, ready - now)

    def refund(self, now: float) -> None:
        """Give back one token (capped at ``burst``): the request it paid for did not count.

        Used for GitHub conditional requests answered ``304 Not Modified``,
        which do not count against the primary rate limit (GitHub REST docs,
        "Best practices for using the REST API" → "Use conditional requests").

        Args:
            now: monotonic seconds.
        """
        self._refill(now)
        self._tokens = min(self._burst, self._tokens + 1)

    def set_rate(self, rate: float, now: float | None = None) -> None:
        """Change the refill rate.

        Args:
            rate: the new rate in requests/s, > 0 (to stop, use :meth:`pause_until`).
            now: monotonic seconds; when given, tokens accrued so far at the old
                rate are credited first.

        Raises:
            ConfigError: ``rate`` is not a positive finite number.
        """
        check_rate(rate)
        if now is not None:
            self._refill(now)
        self._rate = float(rate)

    def pause_until(self, until: float) -> None:
        """Hand out no token before ``until`` (a 429, or a rate-limit budget at 0).

        Pauses only extend: an earlier ``until`` than the current pause is ignored.
        A reservation returned before the pause is not moved; the engine checks
        :meth:`pause_remaining` before sending.

        Args:
            until: monotonic seconds.
        """
        self._paused_until = max(self._paused_until, until)

    def pause_remaining(self, now: float) -> float:
        """Return the seconds left in the current pause (0.0 when not paused).

        Args:
            now: monotonic seconds.
        """
        return max(0.0, self._paused_until - now)


DEFAULT_LIMITS: Mapping[str, LimitConfig] = LIMIT_PROFILES
"""The default limit profiles, by name: every source's ``host_profiles`` (each cites its rule)."""

DEFAULT_HOSTS: Mapping[str, str] = PROFILE_HOSTS
"""Known API hosts → limit profile, from the sources; any other host uses the ``rss`` profile."""


def limits_from_config(overrides: Mapping[str, tuple[float, float, int]]) -> HostLimits:
    """Build :class:`HostLimits` with per-host overrides ``{host: (rate, burst, concurrency)}``.

    A host that a default profile knows (``api.github.com``, ``oauth.reddit.com``...)
    keeps that profile's rate-limit header dialect, so live pacing still works.

    Raises:
        ConfigError: a value is out of range.
    """
    configs = {}
    for host, (rate, burst, concurrency) in overrides.items():
        profile = DEFAULT_HOSTS.get(host.lower())
        dialect = DEFAULT_LIMITS[profile].rate_limit_headers if profile else None
        configs[host] = LimitConfig(rate, burst, concurrency, dialect)
    return HostLimits(configs)


class HostLimits:
    """Per-host concurrency caps and token buckets, adjusted by live rate-limit headers.

    Each host gets a :class:`LimitConfig`: an explicit one from ``configs``,
    else the profile named by ``hosts`` (defaults: :data:`DEFAULT_HOSTS`) in
    ``profiles`` (defaults: :data:`DEFAULT_LIMITS`), else the ``rss`` profile.
    Buckets are created on first use. Not thread-safe: use from one event loop.

    Args:
        configs: explicit per-host configs (from ``echo.toml``), by host name.
        hosts: host name → profile name (default :data:`DEFAULT_HOSTS`).
        profiles: profile name → config (default :data:`DEFAULT_LIMITS`).
        default_profile: the profile of any other host.

    Raises:
        ConfigError: ``default_profile`` or a profile named in ``hosts`` is
            not in ``profiles``.
    """

    def __init__(
        self,
        configs: Mapping[str, LimitConfig] | None = None,
        *,
        hosts: Mapping[str, str] = DEFAULT_HOSTS,
        profiles: Mapping[str, LimitConfig] = DEFAULT_LIMITS,
        default_profile: str = DEFAULT_PROFILE,
    ) -> None:
        for host, profile in [*hosts.items(), ("(any other host)", default_profile)]:
            if profile not in profiles:
                raise ConfigError(f"limit profile {profile!r} for {host} is not defined")
        self._configs = {host.lower(): cfg for host, cfg in (configs or {}).items()}
        self._hosts = {host.lower(): profile for host, profile in hosts.items()}
        self._profiles = dict(profiles)
        self._default = default_profile
        self._buckets: dict[str, TokenBucket] = {}
        self._in_flight: dict[str, int] = {}

    def config_for(self, host: str) -> LimitConfig:
        """Return the limit config of ``host`` (case-insensitive)."""
        host = host.lower()
        if host in self._configs:
            return self._configs[host]
        return self._profiles[self._hosts.get(host, self._default)]

    def set_rate(self, host: str, rate: float, now: float | None = None) -> float:
        """Set ``host``'s configured request rate (its ceiling), e.g. an intervention lowering it.

        The host keeps its burst, concurrency and rate-limit header dialect;
        live rate-limit headers can still only lower the rate below this
        ceiling (:meth:`observe`). The host's bucket, if it exists, takes the
        new rate at once when it is lower than the bucket's current rate, or
        when the ceiling is raised (a rollback: the headers pace it down again).

        Args:
            host: the host name (case-insensitive).
            rate: the new ceiling in requests/s, > 0.
            now: monotonic seconds (tokens accrued at the old rate are credited first).

        Returns:
            The previous ceiling in requests/s (what a rollback sets back).

        Raises:
            ConfigError: ``rate`` is not a positive finite number.
        """
        check_rate(rate)
        host = host.lower()
        old = self.config_for(host)
        self._configs[host] = LimitConfig(rate, old.burst, old.concurrency, old.rate_limit_headers)
        bucket = self._buckets.get(host)
        if bucket is not None and (rate < bucket.rate or rate > old.rate):
            bucket.set_rate(rate, now)
        return old.rate

    def bucket(self, host: str) -> TokenBucket:
        """Return the token bucket of ``host``, creating it at the configured rate."""
        host = host.lower()
        bucket = self._buckets.get(host)
        if bucket is None:
            config = self.config_for(host)
            bucket = self._buckets[host] = TokenBucket(config.rate, config.burst)
        return bucket

    def acquire(self, host: str, now: float) -> float:
        """Reserve a request token for ``host``; see :meth:`TokenBucket.acquire`.

        Args:
            host: the host name.
            now: monotonic seconds.

        Returns:
            Seconds to wait before sending (0.0 = now).
        """
        return self.bucket(host).acquire(now)

    def try_acquire_slot(self, host: str) -> bool:
        """Take one of ``host``'s concurrency slots if one is free.

        Returns:
            True when the request may start (call :meth:`release_slot` when it
            ends, whatever the outcome); False when ``concurrency`` requests are
            already in flight.
        """
        host = host.lower()
        count = self._in_flight.get(host, 0)
        if count >= self.config_for(host).concurrency:
            return False
        self._in_flight[host] = count + 1
        return True

    def release_slot(self, host: str) -> None:
        """Give back a concurrency slot taken by :meth:`try_acquire_slot`.

        Raises:
            ValueError: no request to ``host`` is in flight (a double release).
        """
        host = host.lower()
        count = self._in_flight.get(host, 0)
        if count <= 0:
            raise ValueError(f"no request to {host} is in flight")
        self._in_flight[host] = count - 1

    def in_flight(self, host: str) -> int:
        """Return the number of requests to ``host`` in flight."""
        return self._in_flight.get(host.lower(), 0)

    def observe(
        self,
        host: str,
        headers: Headers,
        now: float,
        now_epoch: float,
        *,
        status: int | None = None,
    ) -> RateLimitInfo | None:
        """Adjust ``host``'s bucket to the rate-limit headers of a response.

        * budget at 0 → pause the bucket until the reset;
        * otherwise → rate = min(configured rate, :func:`pace`), so the
          configured rate stays a ceiling and the budget lasts until the reset;
        * a response that did not count (GitHub 304) → its token is refunded.

        Args:
            host: the host that answered.
            headers: the response headers ``(name, value)``.
            now: monotonic seconds when the response arrived.
            now_epoch: POSIX seconds at the same instant.
            status: the response status, when known.

        Returns:
            The parsed budget, or None when the host's profile follows no
            rate-limit headers or the response had none (nothing changed).
        """
        config = self.config_for(host)
        if config.rate_limit_headers is None:
            return None
        info = parse_rate_limit(headers, config.rate_limit_headers, now_epoch, status=status)
        if info is None:
            return None
        bucket = self.bucket(host)
        if not info.counted:
            bucket.refund(now)
        rate = pace(info, now_epoch)
        if rate == 0.0:
            bucket.pause_until(now + (info.reset_at_epoch - now_epoch))
        else:
            bucket.set_rate(min(config.rate, rate), now)
        return info
