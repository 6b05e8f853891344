"""Retry decisions: Retry-After, full-jitter backoff, retry budgets and the retry policy.

Pure building blocks of the fetch engine: nothing here sleeps or touches the
network. Server-given times are compared with ``now_epoch`` (POSIX seconds);
randomness comes from an injected :class:`random.Random`, so every decision is
reproducible in tests.

Rules and where they come from:

* Retry-After: RFC 9110 §10.2.3 (delay-seconds or HTTP-date), HTTP-date
  forms per RFC 9110 §5.6.7 (IMF-fixdate, obsolete RFC 850 and asctime).
* Only idempotent methods are retried: RFC 9110 §9.2.2 (ECHO only sends GET
  and HEAD).
* Backoff: "full jitter" from the AWS Architecture Blog, "Exponential Backoff
  and Jitter" (Marc Brooker, 2015):
  ``sleep = random_between(0, min(cap, base * 2 ** attempt))``.
* Retry budget: Google SRE book, chapter 21 "Handling Overload" → "Deciding
  to retry": a per-request limit on attempts and a per-client retry ratio
  (retries allowed only while they are at most 10% of requests).
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import random
import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from echo_archive.errors import ConfigError
from echo_archive.model import header

__all__ = [
    "IDEMPOTENT_METHODS",
    "RETRYABLE_FAILURES",
    "RETRYABLE_STATUSES",
    "FailureKind",
    "RetryBudget",
    "RetryDecision",
    "RetryPolicy",
    "failure_kind",
    "full_jitter",
    "parse_http_date",
    "parse_retry_after",
]

Headers = Sequence[tuple[str, str]]
"""Response headers as ``(name, value)`` pairs (:attr:`~echo_archive.model.Exchange.headers`)."""

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
"""RFC 9110 §9.2.2: PUT, DELETE and the safe methods (§9.2.1: GET, HEAD, OPTIONS, TRACE)."""

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524})
"""Statuses worth another attempt.

408 Request Timeout (RFC 9110 §15.5.9: "the client MAY repeat that request"),
429 Too Many Requests (RFC 6585 §4), 500, 502, 503, 504 (RFC 9110 §15.6), and
Cloudflare's origin errors 520 (unknown), 521 (web server down), 522
(connection timed out), 523 (origin unreachable), 524 (a timeout occurred).
Every other 4xx is the client's fault and is never retried.
"""


class FailureKind(StrEnum):
    """A transport failure (no HTTP response), named after httpx's exception classes."""

    CONNECT_ERROR = "connect_error"
    CONNECT_TIMEOUT = "connect_timeout"
    POOL_TIMEOUT = "pool_timeout"
    READ_TIMEOUT = "read_timeout"
    WRITE_TIMEOUT = "write_timeout"
    READ_ERROR = "read_error"
    WRITE_ERROR = "write_error"
    REMOTE_PROTOCOL_ERROR = "remote_protocol_error"
    LOCAL_PROTOCOL_ERROR = "local_protocol_error"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    DECODING_ERROR = "decoding_error"
    UNSUPPORTED_PROTOCOL = "unsupported_protocol"


RETRYABLE_FAILURES = frozenset(
    {
        FailureKind.CONNECT_ERROR,
        FailureKind.CONNECT_TIMEOUT,
        FailureKind.POOL_TIMEOUT,
        FailureKind.READ_TIMEOUT,
        FailureKind.WRITE_TIMEOUT,
        FailureKind.READ_ERROR,
        FailureKind.WRITE_ERROR,
        FailureKind.REMOTE_PROTOCOL_ERROR,
    }
)
"""Transient transport failures: the connection failed or broke; an idempotent
request may be sent again. Redirect loops, undecodable bodies, unsupported
URLs and our own protocol errors would fail again the same way."""

# Exception class name → kind, most specific first (httpx names; then builtins).
_EXCEPTION_KINDS: dict[str, FailureKind] = {
    "ConnectTimeout": FailureKind.CONNECT_TIMEOUT,
    "PoolTimeout": FailureKind.POOL_TIMEOUT,
    "ReadTimeout": FailureKind.READ_TIMEOUT,
    "WriteTimeout": FailureKind.WRITE_TIMEOUT,
    "ConnectError": FailureKind.CONNECT_ERROR,
    "ReadError": FailureKind.READ_ERROR,
    "WriteError": FailureKind.WRITE_ERROR,
    "RemoteProtocolError": FailureKind.REMOTE_PROTOCOL_ERROR,
    "LocalProtocolError": FailureKind.LOCAL_PROTOCOL_ERROR,
    "TooManyRedirects": FailureKind.TOO_MANY_REDIRECTS,
    "DecodingError": FailureKind.DECODING_ERROR,
    "UnsupportedProtocol": FailureKind.UNSUPPORTED_PROTOCOL,
    "ConnectionRefusedError": FailureKind.CONNECT_ERROR,
    "ConnectionResetError": FailureKind.READ_ERROR,
    "ConnectionAbortedError": FailureKind.READ_ERROR,
    "BrokenPipeError": FailureKind.WRITE_ERROR,
    "TimeoutError": FailureKind.READ_TIMEOUT,
}


def failure_kind(exc: BaseException) -> FailureKind | None:
    """Classify a transport exception by its class names (httpx's, then builtins).

    Matching by name keeps this module free of an httpx import: the first
    class in ``type(exc).__mro__`` with a known name decides
    (``httpx.ConnectTimeout`` → ``connect_timeout``, ``ConnectionResetError``
    → ``read_error``...).

    Args:
        exc: the exception raised while sending or receiving.

    Returns:
        The kind, or None when the exception is not a known transport failure
        (a bug, not something to retry).
    """
    for cls in type(exc).__mro__:
        kind = _EXCEPTION_KINDS.get(cls.__name__)
        if kind is not None:
            return kind
    return None


# --- Retry-After -------------------------------------------------------------

_DAY_NAMES = "Mon|Tue|Wed|Thu|Fri|Sat|Sun"
_LONG_DAY_NAMES = "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
        start=1,
    )
}
_MONTH_NAMES = "|".join(_MONTHS)
_TIME = r"([0-9]{2}):([0-9]{2}):([0-9]{2})"
# RFC 9110 §5.6.7: IMF-fixdate = day-name "," SP date1 SP time-of-day SP GMT
#   e.g. "Sun, 06 Nov 1994 08:49:37 GMT"
_IMF_FIXDATE = re.compile(
    rf"(?:{_DAY_NAMES}), ([0-9]{{2}}) ({_MONTH_NAMES}) ([0-9]{{4}}) {_TIME} GMT"
)
# obsolete rfc850-date = day-name-l "," SP date2 SP time-of-day SP GMT
#   e.g. "Sunday, 06-Nov-94 08:49:37 GMT"
_RFC850_DATE = re.compile(
    rf"(?:{_LONG_DAY_NAMES}), ([0-9]{{2}})-({_MONTH_NAMES})-([0-9]{{2}}) {_TIME} GMT"
)
# obsolete asctime-date = day-name SP date3 SP time-of-day SP year
#   date3 = month SP ( 2DIGIT / ( SP DIGIT )), e.g. "Sun Nov  6 08:49:37 1994"
_ASCTIME_DATE = re.compile(
    rf"(?:{_DAY_NAMES}) ({_MONTH_NAMES}) ([0-9]{{2}}| [0-9]) {_TIME} ([0-9]{{4}})"
)
_DELAY_SECONDS = re.compile(r"[0-9]+")


def _two_digit_year(yy: int, now_epoch: float) -> int:
    """Expand an RFC 850 two-digit year (RFC 9110 §5.6.7).

    "Recipients of a timestamp value in rfc850-date format, which uses a
    two-digit year, MUST interpret a timestamp that appears to be more than 50
    years in the future as representing the most recent year in the past that
    had the same last two digits": the latest year ending in ``yy`` that is at
    most 50 years after the current year.
    """
    this_year = dt.datetime.fromtimestamp(now_epoch, tz=dt.UTC).year
    year = this_year - this_year % 100 + yy
    if year > this_year + 50:
        year -= 100
    elif year + 100 <= this_year + 50:
        year += 100
    return year


def _epoch(year: int, month: int, day: int, hour: int, minute: int, second: int) -> float | None:
    """POSIX seconds of a UTC date and time, or None when it does not exist (Feb 30, 25:00)."""
    try:
        dt.date(year, month, day)
    except ValueError:
        return None
    # second 60: RFC 9110 §5.6.7 allows a leap second; timegm() carries it over.
    if hour > 23 or minute > 59 or second > 60:
        return None
    return float(calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)))


def parse_http_date(value: str, now_epoch: float) -> float | None:
    """Parse an HTTP-date (RFC 9110 §5.6.7) into POSIX seconds.

    Accepts the preferred IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``) and,
    as a recipient MUST, the two obsolete forms: RFC 850
    (``Sunday, 06-Nov-94 08:49:37 GMT``, two-digit year expanded relative to
    ``now_epoch``) and ANSI C asctime (``Sun Nov  6 08:49:37 1994``). HTTP-date
    is case-sensitive (§5.6.7); the day name is not checked against the date.

    Args:
        value: the field value (surrounding spaces and tabs are ignored).
        now_epoch: POSIX seconds (only for RFC 850 two-digit years).

    Returns:
        POSIX seconds, or None when ``value`` is not an HTTP-date or names a
        day or time that does not exist.
    """
    text = value.strip(" \t")
    if match := _IMF_FIXDATE.fullmatch(text):
        day, month, year, hour, minute, second = match.groups()
        return _epoch(int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second))
    if match := _RFC850_DATE.fullmatch(text):
        day, month, yy, hour, minute, second = match.groups()
        year = _two_digit_year(int(yy), now_epoch)
        return _epoch(year, _MONTHS[month], int(day), int(hour), int(minute), int(second))
    if match := _ASCTIME_DATE.fullmatch(text):
        month, day, hour, minute, second, year = match.groups()
        return _epoch(
            int(year), _MONTHS[month], int(day.strip()), int(hour), int(minute), int(second)
        )
    return None


def parse_retry_after(value: str, now_epoch: float) -> float | None:
    """Parse a ``Retry-After`` field value into seconds to wait (RFC 9110 §10.2.3).

    ``Retry-After = HTTP-date / delay-seconds``, where ``delay-seconds =
    1*DIGIT`` (a non-negative integer, RFC 9110 §10.2.3) and HTTP-date is any
    of the three forms of §5.6.7 (see :func:`parse_http_date`).

    Args:
        value: the field value, e.g. ``"120"`` or ``"Fri, 31 Dec 1999 23:59:59 GMT"``.
        now_epoch: POSIX seconds, to turn a date into a delay.

    Returns:
        Seconds to wait (a date in the past gives 0.0), or None when the value
        is neither form (``"-5"``, ``"1.5"``, ``"soon"``, an empty string).
    """
    text = value.strip(" \t")
    if _DELAY_SECONDS.fullmatch(text):
        return float(int(text))
    when = parse_http_date(text, now_epoch)
    if when is None:
        return None
    return max(0.0, when - now_epoch)


# --- Backoff -----------------------------------------------------------------


def full_jitter(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Return a "full jitter" backoff delay in seconds.

    AWS Architecture Blog, "Exponential Backoff and Jitter":
    ``sleep = random_between(0, min(cap, base * 2 ** attempt))``. Spreading
    retries uniformly over the whole window is what ends retry storms: clients
    that failed together do not come back together.

    Args:
        attempt: 0 for the first retry, 1 for the second, ... (>= 0).
        base: seconds; the window of the first retry (>= 0).
        cap: seconds; the largest window (>= 0).
        rng: the random source (seeded in tests).

    Returns:
        Seconds, ``0 <= delay <= min(cap, base * 2 ** attempt)``.

    Raises:
        ValueError: ``attempt``, ``base`` or ``cap`` is negative.
    """
    if attempt < 0 or base < 0 or cap < 0:
        raise ValueError(f"full_jitter needs attempt, base, cap >= 0, got {attempt}, {base}, {cap}")
    try:
        window = min(cap, base * 2.0**attempt)
    except OverflowError:  # 2.0 ** attempt beyond a float: the cap rules
        window = cap
    return rng.uniform(0.0, window)


class RetryBudget:
    """A per-client retry budget over a sliding time window.

    Google SRE book, ch. 21 "Handling Overload" → "Deciding to retry":
    "Implement a per-client retry budget. Each client keeps track of the ratio
    of requests that correspond to retries. A request will only be retried as
    long as this ratio is below 10%." Here a retry is allowed while, counting
    it, ``retries <= ratio * requests + min_retries`` over the last
    ``window`` seconds. ``min_retries`` is a small reserve so that a client
    with little traffic can still retry at all (as Finagle's ``RetryBudget``
    does with ``minRetriesPerSec``); set it to 0 for the pure ratio.

    Args:
        ratio: retries allowed per request (0.1 = 10%), >= 0.
        window: seconds of history that count (> 0).
        min_retries: retries allowed in a window regardless of the ratio (>= 0).

    Raises:
        ConfigError: a value is out of range.
    """

    def __init__(self, ratio: float = 0.1, window: float = 60.0, min_retries: int = 3) -> None:
        if not (math.isfinite(ratio) and ratio >= 0):
            raise ConfigError(f"retry budget ratio must be >= 0, got {ratio!r}")
        if not (math.isfinite(window) and window > 0):
            raise ConfigError(f"retry budget window must be > 0 seconds, got {window!r}")
        if min_retries < 0:
            raise ConfigError(f"retry budget min_retries must be >= 0, got {min_retries!r}")
        self.ratio = ratio
        self.window = window
        self.min_retries = min_retries
        self._requests: deque[float] = deque()
        self._retries: deque[float] = deque()

    def _expire(self, now: float) -> None:
        horizon = now - self.window
        for times in (self._requests, self._retries):
            while times and times[0] <= horizon:
                times.popleft()

    def record_request(self, now: float) -> None:
        """Count a new request (a first attempt, not a retry).

        Args:
            now: seconds on the clock the budget is used with (monotonic or epoch).
        """
        self._expire(now)
        self._requests.append(now)

    def record_retry(self, now: float) -> None:
        """Count a retry that is being sent.

        Args:
            now: seconds, same clock as :meth:`record_request`.
        """
        self._expire(now)
        self._retries.append(now)

    def can_retry(self, now: float) -> bool:
        """Return True when one more retry stays within the budget.

        Args:
            now: seconds, same clock as :meth:`record_request`.
        """
        self._expire(now)
        allowed = self.ratio * len(self._requests) + self.min_retries
        return len(self._retries) + 1 <= allowed + 1e-9

    def counts(self, now: float) -> tuple[int, int]:
        """Return ``(requests, retries)`` counted in the window ending at ``now``."""
        self._expire(now)
        return len(self._requests), len(self._retries)


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """Whether and when to send a request again.

    Attributes:
        retry: True to send it again after ``delay``.
        delay: seconds to wait before the retry. When ``retry`` is False
            because the server's Retry-After exceeds the cap, the server's delay
            (so the caller can reschedule the feed); otherwise 0.0.
        reason: in plain words, for the log (``"503: retry-after 120 s"``,
            ``"404 is not retryable"``, ``"retry-after 3600 s exceeds cap 300 s"``).
    """

    retry: bool
    delay: float
    reason: str


def _fmt(seconds: float) -> str:
    return f"{seconds:g}"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to retry a failed request, and after how long.

    Attributes:
        max_attempts: attempts per request, the first included (SRE book
            "Handling Overload": a per-request budget "of up to three attempts").
        base: seconds; full-jitter window of the first retry.
        cap: seconds; the largest full-jitter window.
        retry_after_cap: seconds; a longer ``Retry-After`` is not waited for
            now (the request is given up and the caller reschedules).
        budget: the per-client :class:`RetryBudget`, or None for no budget. It
            is shared (mutable) even though the policy is frozen.

    Raises:
        ConfigError: a value is out of range.
    """

    max_attempts: int = 3
    base: float = 0.5
    cap: float = 30.0
    retry_after_cap: float = 300.0
    budget: RetryBudget | None = None

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(f"retry max_attempts must be >= 1, got {self.max_attempts!r}")
        for name in ("base", "cap", "retry_after_cap"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"retry {name} must be >= 0 seconds, got {value!r}")

    def decide(
        self,
        method: str,
        outcome: int | str,
        headers: Headers,
        attempt: int,
        now_epoch: float,
        rng: random.Random,
    ) -> RetryDecision:
        """Decide whether to retry a request that got ``outcome``.

        In order: the method must be idempotent (RFC 9110 §9.2.2); the outcome
        must be retryable (:data:`RETRYABLE_STATUSES`,
        :data:`RETRYABLE_FAILURES`); attempts must remain (``max_attempts``); a
        ``Retry-After`` (RFC 9110 §10.2.3) must not exceed ``retry_after_cap``;
        the budget must allow a retry (SRE book). The delay is the
        ``Retry-After`` when the response has a valid one, else full jitter
        (AWS blog) with exponent ``attempt - 1``. When the answer is yes, the
        retry is counted in the budget.

        The retry still goes through the host's limits
        (:class:`~echo_archive.harvest.limits.HostLimits`), which pause a host
        whose rate-limit budget is exhausted.

        Args:
            method: the request method (any case).
            outcome: the HTTP status received, or a :class:`FailureKind` (or its
                string value) when no response came.
            headers: the response headers ``(name, value)`` (empty without a response).
            attempt: attempts made so far, the failed one included (1 after the
                first try).
            now_epoch: POSIX seconds (for an HTTP-date Retry-After and the budget).
            rng: the random source for the jitter.

        Returns:
            The decision and its reason.

        Raises:
            ValueError: ``attempt`` < 1.
        """
        if attempt < 1:
            raise ValueError(f"attempt counts from 1, got {attempt}")
        verb = method.upper()
        if verb not in IDEMPOTENT_METHODS:
            return RetryDecision(False, 0.0, f"{verb} is not idempotent (RFC 9110 §9.2.2)")

        retry_after: float | None = None
        if isinstance(outcome, int):
            label = str(outcome)
            if outcome not in RETRYABLE_STATUSES:
                if outcome < 400:
                    return RetryDecision(False, 0.0, f"{outcome} is not a failure")
                reason = f"{outcome} is not retryable"
                if outcome == 403 and _is_zero(header(headers, "x-ratelimit-remaining")):
                    reason += " (rate limit exhausted: the host is paused until its reset)"
                return RetryDecision(False, 0.0, reason)
            value = header(headers, "retry-after")
            if value is not None:
                retry_after = parse_retry_after(value, now_epoch)
        else:
            label = str(outcome)
            if outcome not in {kind.value for kind in RETRYABLE_FAILURES}:
                return RetryDecision(False, 0.0, f"{label} is not retryable")

        if attempt >= self.max_attempts:
            return RetryDecision(
                False, 0.0, f"{label}: attempt {attempt} of {self.max_attempts}, no attempts left"
            )
        if retry_after is not None and retry_after > self.retry_after_cap:
            return RetryDecision(
                False,
                retry_after,
                f"retry-after {_fmt(retry_after)} s exceeds cap {_fmt(self.retry_after_cap)} s",
            )
        if self.budget is not None and not self.budget.can_retry(now_epoch):
            requests, retries = self.budget.counts(now_epoch)
            return RetryDecision(
                False,
                0.0,
                f"{label}: retry budget exhausted ({retries} retries for {requests} requests "
                f"in {_fmt(self.budget.window)} s)",
            )
        if retry_after is not None:
            delay, how = retry_after, f"retry-after {_fmt(retry_after)} s"
        else:
            delay = full_jitter(attempt - 1, self.base, self.cap, rng)
            how = f"full jitter {delay:.3f} s"
        if self.budget is not None:
            self.budget.record_retry(now_epoch)
        return RetryDecision(True, delay, f"{label}: attempt {attempt} failed, {how}")


def _is_zero(value: str | None) -> bool:
    """True when a header value is a zero count (``"0"``, Reddit's ``"0.0"``)."""
    if value is None:
        return False
    try:
        return float(value.strip()) == 0
    except ValueError:
        return False
