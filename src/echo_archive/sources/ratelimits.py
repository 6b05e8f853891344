"""Source API rate-limit and polling headers: what a response says about the budget.

Pure header parsing, shared by the sources (which report what a response
says) and the fetch engine (which paces requests by it). The dialects differ
per source; each function cites the API documentation it follows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from echo_archive.errors import ConfigError
from echo_archive.model import header

__all__ = [
    "DIALECTS",
    "GITHUB_ASSUMED_RESET",
    "REDDIT_ASSUMED_RESET",
    "Headers",
    "LimitConfig",
    "RateLimitInfo",
    "check_rate",
    "pace",
    "parse_poll_interval",
    "parse_rate_limit",
]

Headers = Sequence[tuple[str, str]]
"""Response headers as ``(name, value)`` pairs (:attr:`~echo_archive.model.Exchange.headers`)."""

GITHUB_ASSUMED_RESET = 60.0
"""Seconds to assume until a GitHub reset when ``x-ratelimit-reset`` is missing.

GitHub REST docs, "Rate limits for the REST API" → "Exceeding the rate limit":
when no ``retry-after`` or ``x-ratelimit-reset`` tells the time, "wait for at
least one minute before retrying".
"""

REDDIT_ASSUMED_RESET = 600.0
"""Seconds to assume until a Reddit reset when ``x-ratelimit-reset`` is missing.

Reddit Data API wiki: the per-client QPM limit is "averaged over a time window
(currently 10 minutes)".
"""


DIALECTS = ("github", "reddit")
"""The ``x-ratelimit-*`` header dialects :func:`parse_rate_limit` reads (``reset`` differs)."""


def check_rate(rate: float) -> None:
    """Check a request rate.

    Args:
        rate: requests per second.

    Raises:
        ConfigError: ``rate`` is not a positive finite number.
    """
    if not (math.isfinite(rate) and rate > 0):
        raise ConfigError(f"rate must be a positive number of requests/s, got {rate!r}")


@dataclass(frozen=True, slots=True)
class LimitConfig:
    """How hard ECHO may hit one host.

    Attributes:
        rate: steady request rate in requests/s (> 0); live rate-limit headers
            can only lower it (:meth:`HostLimits.observe`).
        burst: requests that may leave back to back (token bucket capacity, >= 1).
        concurrency: requests in flight at once (>= 1).
        rate_limit_headers: which ``x-ratelimit-*`` dialect the host speaks
            (``"github"``, ``"reddit"``), or None to ignore such headers.

    Raises:
        ConfigError: a value is out of range (the message names the field).
    """

    rate: float
    burst: float = 1.0
    concurrency: int = 1
    rate_limit_headers: str | None = None

    def __post_init__(self) -> None:
        check_rate(self.rate)
        if not (math.isfinite(self.burst) and self.burst >= 1):
            raise ConfigError(f"limit burst must be >= 1, got {self.burst!r}")
        if self.concurrency < 1:
            raise ConfigError(f"limit concurrency must be >= 1, got {self.concurrency!r}")
        if self.rate_limit_headers not in (None, *DIALECTS):
            raise ConfigError(
                f"limit rate_limit_headers must be 'github', 'reddit' or None, "
                f"got {self.rate_limit_headers!r}"
            )


def _number(value: str | None) -> float | None:
    """Parse a non-negative finite decimal (``"599.0"``, ``"60"``); None for anything else."""
    if value is None:
        return None
    text = value.strip()
    if not text or not all(c in "0123456789." for c in text):
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True, slots=True)
class RateLimitInfo:
    """A server's statement about its rate-limit budget, from one response.

    Attributes:
        remaining: requests left in the current window (Reddit sends a float).
        reset_at_epoch: POSIX seconds when the window resets.
        limit: requests per window, or None when not said (Reddit: derived as
            ``remaining + used``).
        used: requests used in the window, or None when not said.
        resource: GitHub's ``x-ratelimit-resource`` (``core``, ``search``...), or None.
        counted: False when this response did not count against the budget
            (GitHub ``304 Not Modified``).
        reset_assumed: True when the reset time was not sent and
            ``reset_at_epoch`` is a conservative guess
            (:data:`GITHUB_ASSUMED_RESET`, :data:`REDDIT_ASSUMED_RESET`).
    """

    remaining: float
    reset_at_epoch: float
    limit: float | None = None
    used: float | None = None
    resource: str | None = None
    counted: bool = True
    reset_assumed: bool = False


def parse_rate_limit(
    headers: Headers, source_kind: str, now_epoch: float, *, status: int | None = None
) -> RateLimitInfo | None:
    """Read a response's rate-limit headers in the dialect of ``source_kind``.

    GitHub (REST docs, "Rate limits for the REST API" → "Checking the status of
    your rate limit"): ``x-ratelimit-limit``, ``x-ratelimit-remaining``,
    ``x-ratelimit-used``, ``x-ratelimit-resource`` and ``x-ratelimit-reset`` =
    the reset time in **epoch seconds**. A ``304`` to a conditional request
    does not count against the primary limit ("Best practices" → "Use
    conditional requests"), reported as ``counted=False``.

    Reddit (Data API wiki): ``x-ratelimit-used``, ``x-ratelimit-remaining``
    (a float such as ``"595.0"``) and ``x-ratelimit-reset`` = **seconds
    remaining** until the window resets. There is no limit header; the limit is
    ``used + remaining``.

    GitHub's absolute reset is compared with the local clock (``now_epoch``):
    a skewed local clock skews :func:`pace` by the same amount.

    Args:
        headers: the response headers ``(name, value)``.
        source_kind: ``"github"`` or ``"reddit"``; any other kind has no
            documented rate-limit headers and gives None.
        now_epoch: POSIX seconds when the response arrived (converts Reddit's
            relative reset; fallback for a missing reset).
        status: the response status, when known (GitHub 304 → ``counted=False``).

    Returns:
        The budget, or None when ``x-ratelimit-remaining`` is absent or not a
        non-negative number, or the kind has no such headers. A missing or
        malformed reset is replaced by a conservative guess
        (``reset_assumed=True``).
    """
    remaining = _number(header(headers, "x-ratelimit-remaining"))
    if remaining is None:
        return None
    used = _number(header(headers, "x-ratelimit-used"))
    reset = _number(header(headers, "x-ratelimit-reset"))
    if source_kind == "github":
        limit = _number(header(headers, "x-ratelimit-limit"))
        resource = header(headers, "x-ratelimit-resource")
        if reset is None:
            return RateLimitInfo(
                remaining=remaining,
                reset_at_epoch=now_epoch + GITHUB_ASSUMED_RESET,
                limit=limit,
                used=used,
                resource=resource,
                counted=status != 304,
                reset_assumed=True,
            )
        return RateLimitInfo(
            remaining=remaining,
            reset_at_epoch=reset,
            limit=limit,
            used=used,
            resource=resource,
            counted=status != 304,
        )
    if source_kind == "reddit":
        limit = remaining + used if used is not None else None
        assumed = reset is None
        seconds = REDDIT_ASSUMED_RESET if reset is None else reset
        return RateLimitInfo(
            remaining=remaining,
            reset_at_epoch=now_epoch + seconds,
            limit=limit,
            used=used,
            reset_assumed=assumed,
        )
    return None


def pace(info: RateLimitInfo, now_epoch: float) -> float:
    """Return the request rate that spreads the remaining budget evenly until the reset.

    Args:
        info: the budget from :func:`parse_rate_limit`.
        now_epoch: POSIX seconds.

    Returns:
        Requests/s: ``remaining / (reset_at_epoch - now_epoch)``; ``0.0`` when
        nothing remains (pause until the reset); ``math.inf`` when the reset
        time has passed (the budget has refilled, so it sets no bound).
    """
    seconds = info.reset_at_epoch - now_epoch
    if seconds <= 0:
        return math.inf
    if info.remaining <= 0:
        return 0.0
    return info.remaining / seconds


def parse_poll_interval(headers: Headers) -> float | None:
    """Return GitHub's ``X-Poll-Interval`` in seconds, or None when absent or malformed.

    GitHub REST docs, "REST API endpoints for events": "the X-Poll-Interval
    header specifies how often (in seconds) you are allowed to poll"; a feed
    must not be polled more often than that.

    Args:
        headers: the response headers ``(name, value)``.

    Returns:
        The interval in seconds (> 0), or None.
    """
    value = header(headers, "x-poll-interval")
    if value is None:
        return None
    text = value.strip()
    if not text.isascii() or not text.isdigit():
        return None
    seconds = float(int(text))
    return seconds if seconds > 0 else None
