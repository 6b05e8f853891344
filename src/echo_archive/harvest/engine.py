"""The async fetch engine: one polite, resilient HTTP fetch per call, never an exception.

:class:`Fetcher` turns a :class:`~echo_archive.model.Request` into a
:class:`FetchOutcome` holding the :class:`~echo_archive.model.Exchange` as
received (invariant 5, raw first) or an error in plain words (invariant 7: bad
input produces a clear error for that source and nothing else). It composes the
pure building blocks of this package, which it does not re-implement:

* :class:`~echo_archive.harvest.limits.HostLimits`: per-host concurrency slots
  and token buckets, adjusted after every response from rate-limit headers
  (GitHub ``x-ratelimit-*`` epoch resets, Reddit seconds-remaining resets,
  GitHub 304 refunds).
* :class:`~echo_archive.harvest.retry.RetryPolicy`: only idempotent methods
  (RFC 9110 §9.2.2) are retried, on 408/429/5xx/Cloudflare 52x and on
  connect/read failures; ``Retry-After`` (RFC 9110 §10.2.3, both forms) is
  honoured up to a cap; otherwise full-jitter backoff (AWS "Exponential
  Backoff and Jitter"); a per-client retry budget (Google SRE "Handling
  Overload").
* :class:`~echo_archive.harvest.breaker.CircuitBreaker`: one per host,
  resilience4j semantics, persisted through a :class:`BreakerStore`.
  Every attempt is one call (three failed attempts of one fetch are three
  failures); 4xx answers are successes (the host works), 5xx, 429 and
  transport failures are failures; a replay miss is not recorded.
* Conditional requests (RFC 9110 §13.1.1 If-None-Match, §13.1.3
  If-Modified-Since) from a :class:`~echo_archive.harvest.conditional.ConditionalCache`
  (:mod:`echo_archive.harvest.conditional`).
* Redirects followed by hand, hop by hop (:mod:`echo_archive.harvest.redirects`);
  bounded content-decoding (:mod:`echo_archive.harvest.decoding`); breaker and
  pause persistence through :mod:`echo_archive.harvest.stores`; connections by
  the SSRF-guarded live transport (:mod:`echo_archive.harvest.network`).

Terms:

host (key)
    What limits, breakers and slots are keyed by: the URL's lowercase host
    name, plus ``:port`` when the port is explicit and not the scheme's default
    (:func:`host_key`; ``api.github.com``, ``127.0.0.1:8080``).
attempt
    One send of the request (redirect hops included) and the reading of the
    final response's body. A fetch makes up to ``max_attempts`` attempts.
    The slot, breaker and retry decisions belong to the request's host; a
    redirect hop to another host takes a token of that host's bucket (and
    its rate-limit headers are observed) but uses neither its slot nor its
    breaker.
outcome
    What :meth:`Fetcher.fetch` returns: the last exchange received (or None),
    the error text (or None), attempts made, and the conditional-request flags.

One fetch, step by step::

    stop_starting()? ─► "shutting down: not started"
    take a concurrency slot of the host (wait for one)
    host paused (a Retry-After over the cap, this run or saved by an earlier one)?
                             ─► error "host H paused until T ...: not requested"
    add If-None-Match / If-Modified-Since from the cache (GET, HEAD)
    loop:
        breaker open?            ─► error "circuit breaker open for host H until T"
        wait for a token of the host bucket (paused by Retry-After / budget 0)
        breaker.allow()          ─► (refund the token) error as above
        attempt, within total_timeout:
            send; on 301/302/303/307/308 follow Location by hand, one token per hop,
                  every hop in Exchange.redirects; loop / limit ─► error
            limits.observe(...) after every response
            stream the body: raw bytes <= max_body_bytes, decoded <= max_decompressed_bytes
        breaker.record(success, duration)        (success: a response, not 5xx/429)
        a 408/429/5xx Retry-After pauses the host (at most retry_after_cap; saved in the
            HostPauseStore); one above the cap ends the fetch and skips the host's
            other fetches until the pause ends ("host H paused until T")
        RetryPolicy.decide(...) ─► done, or retry (after the pause, else full jitter)
    200 ─► store validators; 304 ─► refresh validators, not_modified=True

Sizes: the body is streamed and counted as it arrives, never loaded whole.
``max_body_bytes`` bounds the bytes received on the wire; content-decoding
is done here (:class:`~echo_archive.harvest.decoding.ContentDecoder`), chunk by
chunk with :mod:`zlib` ``max_length``, so the decoded
size is bounded by ``max_decompressed_bytes`` *before* it is produced (httpx's
own decoders inflate each received chunk whole, so one 64 KiB chunk of a gzip
bomb could become ~64 MiB and of a zstd bomb gigabytes). The engine therefore
asks for ``Accept-Encoding: gzip, deflate`` only; a response in another coding
is kept as received, with an error saying so.

Errors never raise out of :meth:`Fetcher.fetch` for network or HTTP problems;
exceptions that escape are programming errors (or a failing
:class:`BreakerStore` / :class:`ConditionalCache`, which belong to the caller).
"""

from __future__ import annotations

import asyncio
import http
import math
import random
import socket
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

import httpx
import structlog

from echo_archive import __version__
from echo_archive.errors import ConfigError
from echo_archive.harvest.addresses import ALLOW_PRIVATE_EXTENSION, AddressRefused
from echo_archive.harvest.breaker import (
    BreakerConfig,
    BreakerState,
    CircuitBreaker,
    StateTransition,
)
from echo_archive.harvest.conditional import (
    ConditionalCache,
    Validators,
    conditional_headers,
    refreshed_validators,
)
from echo_archive.harvest.decoding import ACCEPT_ENCODING, ContentDecoder
from echo_archive.harvest.hoststats import HostStats
from echo_archive.harvest.limits import HostLimits
from echo_archive.harvest.network import LiveTransport
from echo_archive.harvest.redirects import (
    DEFAULT_PORTS,
    REDIRECT_STATUSES,
    Hop,
    RedirectError,
    next_hop,
)
from echo_archive.harvest.retry import (
    RETRYABLE_STATUSES,
    FailureKind,
    RetryBudget,
    RetryDecision,
    RetryPolicy,
    failure_kind,
    parse_retry_after,
)
from echo_archive.harvest.stores import BreakerStore, HostPauseStore
from echo_archive.harvest.transport import RECORDED_AT_EXTENSION, NotRecordedError
from echo_archive.model import Exchange, Request
from echo_archive.redaction import redact_headers, redact_url
from echo_archive.vault.entry import format_timestamp

__all__ = [
    "DEFAULT_USER_AGENT",
    "MIB",
    "FetchConfig",
    "FetchOutcome",
    "Fetcher",
    "host_key",
    "reset_command",
]

MIB: Final = 1024 * 1024
"""One mebibyte in bytes."""

DEFAULT_USER_AGENT: Final = f"echo-archive/{__version__}"
"""The ``User-Agent`` sent unless the config or the request says otherwise."""


_DEFAULT_PORTS: Final = DEFAULT_PORTS
_BODYLESS_METHODS: Final = frozenset({"GET", "HEAD"})

_log = structlog.get_logger("echo_archive.harvest.engine")


# --- small helpers ----------------------------------------------------------------


def host_key(url: str) -> str:
    """Return the key limits, breakers and slots use for the host of ``url``.

    Args:
        url: an absolute http(s) URL.

    Returns:
        The lowercase host name, plus ``:port`` when the URL names a port other
        than its scheme's default (``example.com``, ``127.0.0.1:8080``).

    Raises:
        httpx.InvalidURL: ``url`` cannot be parsed.
    """
    parsed = httpx.URL(url)
    host = parsed.host.lower()
    if parsed.port is not None and parsed.port != _DEFAULT_PORTS.get(parsed.scheme):
        return f"{host}:{parsed.port}"
    return host


def reset_command(host: str) -> str:
    """The command that closes the breaker of ``host``: ``echoctl breakers --reset HOST``.

    Every "breaker open" error names it (the operator's fix), and
    ``echoctl breakers`` shows it beside each open breaker.

    Args:
        host: a :func:`host_key` (the breaker's name).
    """
    return f"echoctl breakers --reset {host}"


def _authority(url: str) -> str:
    """``host:port`` with the effective port, for connection messages."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return url
    port = parsed.port if parsed.port is not None else _DEFAULT_PORTS.get(parsed.scheme, 0)
    return f"{parsed.host}:{port}"


def _decode_pairs(raw: Sequence[tuple[bytes, bytes]]) -> tuple[tuple[str, str], ...]:
    """Decode raw header pairs as ISO-8859-1 (RFC 9110 §5.5: octets, historically latin-1)."""
    return tuple((name.decode("latin-1"), value.decode("latin-1")) for name, value in raw)


def _size(n: int) -> str:
    """A byte count in words: ``32 MiB``, ``64 KiB`` or ``1000 bytes``."""
    if n >= MIB and n % MIB == 0:
        return f"{n // MIB} MiB"
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024} KiB"
    return f"{n} bytes"


def _phrase(status: int) -> str:
    """The standard reason phrase of ``status`` (RFC 9110 §15), or ``""`` for unknown codes."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


_E = TypeVar("_E", bound=BaseException)


def _in_chain(exc: BaseException, kind: type[_E]) -> _E | None:
    """The first exception of ``kind`` in ``exc``'s cause/context chain (groups included)."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, kind):
            return current
        if isinstance(current, BaseExceptionGroup):
            stack.extend(current.exceptions)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                stack.append(linked)
    return None


def _refused(exc: BaseException) -> bool:
    """True when a connect failure was a refusal (ECONNREFUSED) somewhere in its cause chain."""
    return _in_chain(exc, ConnectionRefusedError) is not None or "refused" in str(exc).lower()


def _dns_failure(exc: BaseException) -> str | None:
    """The resolver's message when a connect failure was a name lookup (``socket.gaierror``)."""
    found = _in_chain(exc, socket.gaierror)
    if found is None:
        return None
    return found.strerror or str(found)


# --- configuration and outcome -----------------------------------------------------


def _default_breaker() -> BreakerConfig:
    """Breaker settings for harvesting (see :attr:`FetchConfig.breaker`)."""
    return BreakerConfig(
        failure_rate_threshold=50.0,
        slow_call_duration_threshold=60.0,
        sliding_window_size=20,
        minimum_number_of_calls=5,
        wait_duration_in_open_state=300.0,
        permitted_number_of_calls_in_half_open_state=2,
    )


@dataclass(frozen=True, slots=True)
class FetchConfig:
    """How the engine fetches.

    Attributes:
        connect_timeout: seconds to establish a connection (and to wait for a
            free pooled connection).
        read_timeout: seconds to wait for each read from the socket (headers
            or the next part of the body) and each write.
        total_timeout: seconds one attempt may take in all: every redirect hop
            and the whole body. Waits for tokens, slots and retries between
            attempts are not counted.
        max_body_bytes: bytes received on the wire (before content-decoding)
            kept for one response; beyond it the body is cut, ``truncated``.
        max_decompressed_bytes: bytes of decoded body kept; a body that
            inflates beyond it (a gzip bomb) is cut, ``truncated``.
        max_redirects: redirects followed per attempt (a further one is an error).
        user_agent: the ``User-Agent`` header (a request's own header wins:
            Reddit wants ``<platform>:<app id>:<version> (by /u/<user>)``).
        max_attempts: attempts per fetch, the first included (>= 1).
        backoff_base: seconds; full-jitter window of the first retry.
        backoff_cap: seconds; the largest full-jitter window.
        retry_after_cap: seconds; a longer ``Retry-After`` is not waited for
            (the fetch gives up and ``FetchOutcome.retry_after`` says how long
            the server asked for, so the caller can reschedule).
        retry_budget_ratio: retries allowed per request over the budget window
            (SRE "Handling Overload": 10%), or None for no budget.
        retry_budget_window: seconds of history the budget counts.
        retry_budget_min_retries: retries always allowed in a window.
        max_queue_wait: seconds a fetch may wait for its host's next token
            (a paused or slow bucket); a longer wait is an error instead.
        breaker: the per-host breaker configuration. The default suits
            harvesting (hosts see a few calls per hour, not thousands):
            resilience4j semantics with a count window of 20 calls, evaluated
            from 5 calls, opening at a 50% failure rate, 300 s open, 2 trial calls.
        trust_env: let httpx read ``.netrc`` and CA settings from the
            environment (off by default: a harvest must not pick up credentials
            it was not given). Proxies from the environment are never used by
            the live transport (the SSRF guard must see the address it connects to).
        allow_private: let every fetch connect to private addresses (loopback,
            RFC 1918, link-local...; :mod:`echo_archive.harvest.addresses`);
            off by default, the SSRF guard. ``[harvest] allow_private`` in
            ``echo.toml``; one feed's ``allow_private`` reaches
            :meth:`Fetcher.fetch` instead.

    Raises:
        ConfigError: a value is out of range (the message names the field).
    """

    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    total_timeout: float = 120.0
    max_body_bytes: int = 32 * MIB
    max_decompressed_bytes: int = 64 * MIB
    max_redirects: int = 5
    user_agent: str = DEFAULT_USER_AGENT
    max_attempts: int = 3
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    retry_after_cap: float = 300.0
    retry_budget_ratio: float | None = 0.1
    retry_budget_window: float = 60.0
    retry_budget_min_retries: int = 3
    max_queue_wait: float = 300.0
    breaker: BreakerConfig = field(default_factory=_default_breaker)
    trust_env: bool = False
    allow_private: bool = False

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "read_timeout", "total_timeout"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ConfigError(f"fetch {name} must be > 0 seconds, got {value!r}")
        for name in ("max_body_bytes", "max_decompressed_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"fetch {name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.max_redirects, int) or self.max_redirects < 0:
            raise ConfigError(f"fetch max_redirects must be >= 0, got {self.max_redirects!r}")
        if not (math.isfinite(self.max_queue_wait) and self.max_queue_wait >= 0):
            raise ConfigError(f"fetch max_queue_wait must be >= 0, got {self.max_queue_wait!r}")
        if not self.user_agent or any(c in self.user_agent for c in "\r\n"):
            raise ConfigError(f"fetch user_agent must be one non-empty line: {self.user_agent!r}")
        self.retry_policy()  # RetryPolicy and RetryBudget validate their own fields

    def retry_policy(self) -> RetryPolicy:
        """Return a new :class:`RetryPolicy` with a fresh budget from these settings.

        Raises:
            ConfigError: a retry setting is out of range.
        """
        budget = (
            None
            if self.retry_budget_ratio is None
            else RetryBudget(
                self.retry_budget_ratio, self.retry_budget_window, self.retry_budget_min_retries
            )
        )
        return RetryPolicy(
            max_attempts=self.max_attempts,
            base=self.backoff_base,
            cap=self.backoff_cap,
            retry_after_cap=self.retry_after_cap,
            budget=budget,
        )


@dataclass(frozen=True, slots=True)
class FetchOutcome:
    """What one :meth:`Fetcher.fetch` produced.

    Attributes:
        exchange: the last response received (possibly a redirect, an error
            status, or a cut body), or None when nothing was received.
        error: what went wrong, in plain words, or None. Set for transport
            failures, cut bodies, redirect loops, an open breaker, shutdown,
            a replay miss, and for a 408/429/5xx given up on. A 4xx such as 404
            is an answer, not an error: ``error`` is None and the source reads
            the status.
        attempts: requests sent (0 when none was: breaker open, shutting down).
        not_modified: the final status is 304 (RFC 9110 §15.4.5).
        from_cache_validators: ``If-None-Match``/``If-Modified-Since`` were
            added from the :class:`ConditionalCache`.
        seconds: monotonic seconds the whole fetch took, waits included.
        retry_after: seconds the server asked to wait (``Retry-After``) when
            the fetch gave up on it (above the cap, or out of attempts), else None.
        paused_until: POSIX seconds until which the host is paused when this
            fetch was not sent because of that pause (a ``Retry-After`` above
            the cap, in this run or saved by an earlier one), else None.
    """

    exchange: Exchange | None
    error: str | None
    attempts: int
    not_modified: bool = False
    from_cache_validators: bool = False
    seconds: float = 0.0
    retry_after: float | None = None
    paused_until: float | None = None

    @property
    def ok(self) -> bool:
        """True when an exchange was received in full and no error is reported."""
        return self.exchange is not None and self.error is None


# --- bounded content decoding -------------------------------------------------------


# --- attempt internals ----------------------------------------------------------------


class _GiveUp(Exception):
    """Stop this fetch now with this message (no retry): a final error."""

    def __init__(
        self, message: str, *, truncated: bool = False, paused_until: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.truncated = truncated
        self.paused_until = paused_until


@dataclass
class _Progress:
    """What one attempt has received so far (kept when it fails midway)."""

    method: str
    request_url: str
    url: str
    started: float
    redirects: list[str] = field(default_factory=list)
    request_headers: tuple[tuple[str, str], ...] = ()
    status: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    arrived: float = 0.0
    recorded_at: str | None = None
    body: bytearray = field(default_factory=bytearray)
    raw_bytes: int = 0
    truncated: bool = False


@dataclass
class _AttemptResult:
    """One attempt's result, as the retry loop needs it."""

    exchange: Exchange | None
    error: str | None = None
    failure: FailureKind | None = None
    transport_failed: bool = False
    final: bool = False
    not_recorded: bool = False
    refused: bool = False


# --- the fetcher -----------------------------------------------------------------------


class Fetcher:
    """The async fetch engine (see the module docstring for one fetch, step by step).

    Use it from one event loop, as an async context manager or with
    :meth:`aclose` at the end::

        async with Fetcher(FetchConfig()) as fetcher:
            outcome = await fetcher.fetch(Request(url), source_kind="rss")

    Args:
        config: how to fetch.
        transport: the httpx transport (None: the SSRF-guarded network transport,
            :class:`~echo_archive.harvest.network.LiveTransport`). A
            :class:`~echo_archive.harvest.transport.ReplayTransport` replays
            recordings; tests may pass any ``httpx.AsyncBaseTransport``.
        limits: per-host limits (None: :class:`HostLimits` with the default
            profiles). Shared state: give each Fetcher its own.
        breakers: where breaker states persist (None: not persisted).
        pauses: where host pauses asked by ``Retry-After`` persist across runs
            (None: not persisted).
        cache: where validators for conditional requests live (None: no
            conditional requests are added).
        clock: monotonic seconds (token buckets, elapsed times).
        wall: POSIX seconds (``fetched_at``, Retry-After dates, breakers,
            retry budget, rate-limit resets).
        rng: the random source for jitter (None: a new ``random.Random()``).
        sleep: the coroutine used for every deliberate wait (backoff, token
            and Retry-After waits): ``asyncio.sleep`` or a test's recorder.

    Attributes:
        host_stats: per-host request counters and latencies of every attempt
            the breakers count (:mod:`echo_archive.harvest.hoststats`): what
            the supervisor observes of each host.
    """

    def __init__(
        self,
        config: FetchConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        limits: HostLimits | None = None,
        breakers: BreakerStore | None = None,
        pauses: HostPauseStore | None = None,
        cache: ConditionalCache | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config = config
        self.limits = limits if limits is not None else HostLimits()
        self._store = breakers
        self._pause_store = pauses
        self._paused: dict[str, float] = {}
        self._cache = cache
        self._clock = clock
        self._wall = wall
        self._rng = rng if rng is not None else random.Random()
        self._sleep = sleep
        self._policy = config.retry_policy()
        self._breakers: dict[str, CircuitBreaker] = {}
        self.host_stats = HostStats()
        self._slot_waiters: dict[str, asyncio.Condition] = {}
        self._stopping = False
        self._stop_event = asyncio.Event()
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False
        if transport is None:
            transport = LiveTransport(
                allow_private=config.allow_private, trust_env=config.trust_env
            )
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(
                connect=config.connect_timeout,
                read=config.read_timeout,
                write=config.read_timeout,
                pool=config.connect_timeout,
            ),
            follow_redirects=False,
            headers={"User-Agent": config.user_agent, "Accept-Encoding": ACCEPT_ENCODING},
            trust_env=config.trust_env,
        )

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- lifecycle ---------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Fetches started and not yet returned."""
        return self._in_flight

    @property
    def stopping(self) -> bool:
        """True after :meth:`stop_starting` (or :meth:`aclose`)."""
        return self._stopping

    def _should_stop(self) -> bool:
        """Whether shutdown has begun (a call, so type checkers re-read it after each await)."""
        return self._stopping

    def stop_starting(self) -> None:
        """Begin a graceful shutdown: start no new request, let those in flight finish.

        From now on a new fetch, and one still waiting for its slot or token,
        returns at once with the error ``"shutting down: not started"``; an
        attempt on the wire finishes, but no retry follows it (a backoff wait
        is cut short, the error ends in ``"not retried: shutting down"``).
        Call it from the event loop the Fetcher runs on.
        """
        self._stopping = True
        self._stop_event.set()

    async def wait_idle(self) -> None:
        """Wait until no fetch is in flight."""
        await self._idle.wait()

    async def aclose(self) -> None:
        """Stop starting, wait for fetches in flight, then close the HTTP client (idempotent)."""
        self.stop_starting()
        await self.wait_idle()
        if not self._closed:
            self._closed = True
            await self._client.aclose()

    # --- breakers --------------------------------------------------------------------

    def breakers(self) -> dict[str, CircuitBreaker]:
        """Return the breakers created so far, by host key (a new dict; the breakers are live)."""
        return dict(self._breakers)

    def breaker(self, host: str) -> CircuitBreaker:
        """Return the breaker of ``host`` (a :func:`host_key`), loading or creating it.

        A saved state is restored with :meth:`CircuitBreaker.from_state` (an
        OPEN breaker stays open until its wait is over, on the wall clock); an
        unreadable saved state is replaced by a fresh CLOSED breaker.
        """
        host = host.lower()
        found = self._breakers.get(host)
        if found is not None:
            return found
        saved = self._store.load(host) if self._store is not None else None
        try:
            breaker = self._new_breaker(host, saved)
        except ValueError as exc:
            _log.warning("breaker_state_unreadable", host=host, error=str(exc))
            breaker = self._new_breaker(host, None)
        self._breakers[host] = breaker
        return breaker

    def _new_breaker(self, host: str, saved: Mapping[str, Any] | None) -> CircuitBreaker:
        """A breaker of ``host`` restored from ``saved`` (None: a fresh CLOSED one).

        Raises:
            ValueError: ``saved`` is not a breaker state.
        """
        if saved is None:
            return CircuitBreaker(
                host, self.config.breaker, clock=self._wall, on_transition=self._on_transition
            )
        return CircuitBreaker.from_state(
            host, self.config.breaker, saved, clock=self._wall, on_transition=self._on_transition
        )

    def reset_breaker(self, host: str) -> None:
        """Close the breaker of ``host`` with empty metrics (operator action), and persist it.

        Args:
            host: a :func:`host_key` (``api.github.com``, ``127.0.0.1:8080``).
        """
        breaker = self.breaker(host)
        breaker.reset(self._wall())
        self._save(breaker)

    def set_breaker_mode(self, host: str, mode: str) -> dict[str, Any]:
        """Force the breaker of ``host`` open or closed, or back to its rules; persist it.

        See :meth:`CircuitBreaker.set_mode
        <echo_archive.harvest.breaker.CircuitBreaker.set_mode>` (``forced_open``:
        resilience4j FORCED_OPEN; ``forced_closed``: DISABLED; ``auto``: CLOSED
        out of a forced state).

        Args:
            host: a :func:`host_key`.
            mode: one of :data:`~echo_archive.harvest.breaker.BREAKER_MODES`.

        Returns:
            The breaker's state before the change (:meth:`CircuitBreaker.to_state`),
            what :meth:`restore_breaker` takes to undo it.

        Raises:
            ValueError: an unknown ``mode``.
        """
        breaker = self.breaker(host)
        before = breaker.to_state()
        breaker.set_mode(mode, self._wall())
        self._save(breaker)
        return before

    def restore_breaker(self, host: str, state: Mapping[str, Any] | None) -> None:
        """Put the breaker of ``host`` back as ``state`` (a saved :meth:`CircuitBreaker.to_state`).

        None restores a fresh CLOSED breaker. Used to roll back
        :meth:`set_breaker_mode`; persisted.

        Raises:
            ValueError: ``state`` is not a breaker state (see
                :meth:`CircuitBreaker.from_state`).
        """
        host = host.lower()
        breaker = self._new_breaker(host, state)
        self._breakers[host] = breaker
        self._save(breaker)

    def _on_transition(self, event: StateTransition) -> None:
        _log.warning(
            "breaker_transition",
            host=event.name,
            from_state=event.from_state.value,
            to_state=event.to_state.value,
            reason=event.reason,
        )
        breaker = self._breakers.get(event.name)
        if breaker is not None:
            self._save(breaker)

    def _save(self, breaker: CircuitBreaker) -> None:
        if self._store is not None:
            self._store.save(breaker.name, breaker.to_state())

    def _rejection(self, breaker: CircuitBreaker, host: str) -> str:
        """The error text for a call the breaker did not permit."""
        state = breaker.state
        reset = f"to reset it: `{reset_command(host)}`"
        if state is BreakerState.FORCED_OPEN:
            return f"circuit breaker forced open for host {host} ({reset})"
        if state is BreakerState.HALF_OPEN:
            permitted = breaker.config.permitted_number_of_calls_in_half_open_state
            return (
                f"circuit breaker half-open for host {host}: {permitted} trial calls in "
                f"progress ({reset})"
            )
        until = self._wall() + breaker.wait_remaining(self._wall())
        trials = breaker.config.permitted_number_of_calls_in_half_open_state
        return (
            f"circuit breaker open for host {host} until {_rfc3339(until)}: it half-opens "
            f"then for {trials} trial call{'' if trials == 1 else 's'} ({reset})"
        )

    # --- host pauses (Retry-After over the cap) ----------------------------------------

    def paused_until(self, host: str) -> float | None:
        """Return when ``host``'s pause ends (POSIX seconds), or None when it is not paused.

        A host is paused when a ``Retry-After`` (RFC 9110 §10.2.3) asked for
        longer than :attr:`FetchConfig.retry_after_cap`, in this run or (from
        the :class:`HostPauseStore`) an earlier one; the pause lasts at most
        ``retry_after_cap`` seconds from that answer.

        Args:
            host: a :func:`host_key`.
        """
        host = host.lower()
        if host not in self._paused:
            saved = self._pause_store.load_pause(host) if self._pause_store else None
            self._paused[host] = saved if saved is not None else -math.inf
        until = self._paused[host]
        return until if until > self._wall() else None

    def _paused_message(self, host: str, until: float) -> str:
        """The error of a fetch not sent because ``host`` is paused until ``until``."""
        return (
            f"host {host} paused until {_rfc3339(until)} (it answered Retry-After "
            f"beyond the {self.config.retry_after_cap:g} s cap): not requested"
        )

    def _pause_host(self, host: str, asked: float, *, skip: bool) -> float:
        """Pause ``host`` for ``min(asked, retry_after_cap)`` seconds; return its end (POSIX s).

        The token bucket waits out the pause; with ``skip`` the host's other
        fetches are not sent before its end (:meth:`paused_until`). The pause
        is saved in the :class:`HostPauseStore`, so the next run keeps it.
        """
        pause = min(asked, self.config.retry_after_cap)
        self.limits.bucket(host).pause_until(self._clock() + pause)
        until = self._wall() + pause
        if skip:
            self._paused[host] = max(until, self._paused.get(host, -math.inf))
        if self._pause_store is not None:
            self._pause_store.save_pause(
                host,
                until,
                f"Retry-After {asked:g} s (capped at {self.config.retry_after_cap:g} s)",
            )
        return until

    # --- slots, tokens, waits --------------------------------------------------------

    async def _acquire_slot(self, host: str) -> None:
        waiters = self._slot_waiters.setdefault(host, asyncio.Condition())
        async with waiters:
            while not self.limits.try_acquire_slot(host):
                await waiters.wait()

    async def _release_slot(self, host: str) -> None:
        self.limits.release_slot(host)
        waiters = self._slot_waiters.get(host)
        if waiters is not None:
            async with waiters:
                waiters.notify()

    async def _pause(self, seconds: float) -> bool:
        """Wait ``seconds`` with the injected sleep; False when shutdown cut it short."""
        if self._should_stop():
            return False
        if seconds <= 0:
            return True
        sleeper = asyncio.ensure_future(self._sleep(seconds))
        stopper = asyncio.ensure_future(self._stop_event.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, stopper):
                task.cancel()
            await asyncio.gather(sleeper, stopper, return_exceptions=True)
        if sleeper.done() and not sleeper.cancelled():
            sleeper.result()  # an injected sleep that failed is a programming error
            return True
        return False

    async def _take_token(self, host: str, stopped: str = "shutting down: not started") -> None:
        """Wait for a token of ``host``'s bucket (and the end of any pause).

        Args:
            host: the host key.
            stopped: the error text when shutdown cuts the wait short.

        Raises:
            _GiveUp: the wait would exceed ``max_queue_wait``, or shutdown began.
        """
        bucket = self.limits.bucket(host)
        limit = self.config.max_queue_wait
        now = self._clock()
        paused = bucket.pause_remaining(now)
        if paused > limit:
            raise _GiveUp(
                f"rate limit: host {host} is paused for {paused:.0f} s "
                f"(more than max_queue_wait {limit:g} s)"
            )
        wait = bucket.acquire(now)
        if wait > limit:
            bucket.refund(self._clock())
            raise _GiveUp(
                f"rate limit: host {host} has no request token for {wait:.1f} s "
                f"(more than max_queue_wait {limit:g} s)"
            )
        if wait > 0:
            paused_until = bucket.paused_until
            if not await self._pause(wait):
                raise _GiveUp(stopped)
            skip = self.paused_until(host)
            if skip is not None:  # a Retry-After beyond the cap came while we waited
                raise _GiveUp(self._paused_message(host, skip), paused_until=skip)
            if bucket.paused_until > paused_until:  # paused again while we waited
                extra = bucket.pause_remaining(self._clock())
                if extra > limit:
                    raise _GiveUp(
                        f"rate limit: host {host} is paused for {extra:.0f} s "
                        f"(more than max_queue_wait {limit:g} s)"
                    )
                if not await self._pause(extra):
                    raise _GiveUp(stopped)

    # --- fetch -------------------------------------------------------------------------

    async def fetch(
        self, request: Request, *, source_kind: str, allow_private: bool = False
    ) -> FetchOutcome:
        """Fetch ``request`` politely and resiliently; never raise for network or HTTP trouble.

        Args:
            request: what to fetch (``url`` absolute http/https; ``method``;
                extra ``headers``, which win over the engine's defaults).
            source_kind: the source kind asking (``rss``, ``github``...), for
                the log. Limits follow the host's profile
                (:meth:`HostLimits.config_for`), not this value.
            allow_private: this fetch (its feed) may connect to private
                addresses, on the first request and every redirect; otherwise
                the live transport refuses them ("refused to connect to ...",
                final, not retried, not a breaker failure) unless
                ``FetchConfig.allow_private`` is set.

        Returns:
            The outcome: the exchange (or None), the error in plain words (or
            None), attempts made, conditional-request flags, time taken.

        Raises:
            Exception: only programming errors, and whatever the injected
                :class:`BreakerStore` or :class:`ConditionalCache` raises.
        """
        started = self._clock()
        if self._should_stop():
            return FetchOutcome(None, "shutting down: not started", 0)
        safe_url = redact_url(request.url)
        try:
            parsed = httpx.URL(request.url)
            if parsed.scheme not in _DEFAULT_PORTS or not parsed.host:
                raise httpx.InvalidURL("not an absolute http or https URL")
            host = host_key(request.url)
        except httpx.InvalidURL as exc:
            return FetchOutcome(None, f"invalid URL {safe_url}: {exc}", 0)
        self._in_flight += 1
        self._idle.clear()
        try:
            await self._acquire_slot(host)
            try:
                outcome = await self._fetch_in_slot(
                    request, host, source_kind, started, allow_private
                )
            finally:
                await self._release_slot(host)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()
        return outcome

    async def _fetch_in_slot(
        self,
        request: Request,
        host: str,
        source_kind: str,
        started: float,
        allow_private: bool = False,
    ) -> FetchOutcome:
        method = request.method.upper()
        headers = list(request.headers)
        sent_validators = False
        old: Validators | None = None
        cache_key = redact_url(request.url)  # a persisted cache must not keep credentials
        if self._cache is not None and method in _BODYLESS_METHODS:
            old = self._cache.get(cache_key)
            headers, sent_validators = conditional_headers(headers, old)

        def outcome(
            result: _AttemptResult | None,
            attempts: int,
            error: str | None,
            retry_after: float | None = None,
            paused_until: float | None = None,
        ) -> FetchOutcome:
            exchange = result.exchange if result is not None else None
            not_modified = exchange is not None and exchange.status == 304
            if exchange is not None and error is None and self._cache is not None:
                self._update_cache(cache_key, old, exchange)
            return FetchOutcome(
                exchange=exchange,
                error=error,
                attempts=attempts,
                not_modified=not_modified,
                from_cache_validators=sent_validators,
                seconds=self._clock() - started,
                retry_after=retry_after,
                paused_until=paused_until,
            )

        if self._should_stop():
            return outcome(None, 0, "shutting down: not started")
        paused = self.paused_until(host)
        if paused is not None:
            return outcome(None, 0, self._paused_message(host, paused), paused_until=paused)
        breaker = self.breaker(host)
        if self._policy.budget is not None:
            self._policy.budget.record_request(self._wall())

        attempts = 0
        last: _AttemptResult | None = None
        while True:
            # 1. permission: an open breaker is known before waiting for a token
            if breaker.wait_remaining(self._wall()) > 0 and not breaker.allow(self._wall()):
                return outcome(last, attempts, _after(last, self._rejection(breaker, host)))
            try:
                await self._take_token(host)
            except _GiveUp as stop:
                return outcome(
                    last, attempts, _after(last, stop.message), paused_until=stop.paused_until
                )
            if self._should_stop():
                self.limits.bucket(host).refund(self._clock())
                return outcome(last, attempts, _after(last, "shutting down: not started"))
            if not breaker.allow(self._wall()):
                self.limits.bucket(host).refund(self._clock())
                return outcome(last, attempts, _after(last, self._rejection(breaker, host)))

            # 2. one attempt
            attempts += 1
            began = self._clock()
            result = await self._attempt(
                method, request.url, headers, request.body, allow_private=allow_private
            )
            duration = max(0.0, self._clock() - began)
            last = result
            if not result.not_recorded and not result.refused:
                status = result.exchange.status if result.exchange is not None else None
                success = (
                    status is not None
                    and not result.transport_failed
                    and status < 500
                    and status != 429
                )
                breaker.record(success, duration, self._wall())
                self._save(breaker)
                self.host_stats.record(host, None if result.transport_failed else status, duration)
            if result.final:
                return outcome(result, attempts, result.error)

            # 3. retry?
            exchange = result.exchange
            reason = _reason_phrase(exchange)
            if result.failure is not None:
                decision = self._policy.decide(method, result.failure, (), attempts, *self._now())
                error = result.error or str(result.failure)
                message = _given_up(error, attempts, decision)
            elif exchange is not None:
                if exchange.status not in RETRYABLE_STATUSES:
                    return outcome(result, attempts, result.error)
                decision = self._policy.decide(
                    method, exchange.status, exchange.headers, attempts, *self._now()
                )
                message = _given_up(f"HTTP {exchange.status} {reason}".rstrip(), attempts, decision)
            else:  # pragma: no cover - an attempt always yields an exchange or a failure
                return outcome(result, attempts, result.error or "no response")
            asked = _retry_after(exchange, self._wall())
            if asked is not None:
                # RFC 9110 §10.2.3: the *service* asked for the pause, so the whole host
                # waits, whether or not this fetch retries (a retry waits in _take_token),
                # never longer than retry_after_cap. Above the cap this fetch gives up and
                # the host's other fetches are skipped until the (capped) pause ends.
                over = asked > self.config.retry_after_cap
                until = self._pause_host(host, asked, skip=over)
                if over:
                    message += f"; host {host} paused until {_rfc3339(until)}"
            if not decision.retry:
                return outcome(result, attempts, message, asked)
            if self._should_stop():
                return outcome(result, attempts, f"{message}; not retried: shutting down")

            # 4. wait before the retry (a Retry-After wait happens in _take_token)
            _log.info(
                "fetch_retry",
                url=redact_url(request.url),
                source_kind=source_kind,
                attempt=attempts,
                delay=decision.delay,
                reason=decision.reason,
            )
            if asked is None and not await self._pause(decision.delay):
                return outcome(result, attempts, f"{message}; not retried: shutting down")

    def _now(self) -> tuple[float, random.Random]:
        """The ``now_epoch, rng`` arguments of :meth:`RetryPolicy.decide`."""
        return self._wall(), self._rng

    def _update_cache(self, url: str, old: Validators | None, exchange: Exchange) -> None:
        """Store the validators the answer gives (:func:`refreshed_validators`), if any changed."""
        assert self._cache is not None
        fresh = refreshed_validators(old, exchange)
        if fresh is not None:
            self._cache.put(url, fresh)

    # --- one attempt -------------------------------------------------------------------

    async def _attempt(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes = b"",
        *,
        allow_private: bool = False,
    ) -> _AttemptResult:
        """Send once (following redirects) within ``total_timeout`` and read the body."""
        progress = _Progress(method=method, request_url=url, url=url, started=self._clock())
        deadline = asyncio.timeout(self.config.total_timeout)
        try:
            async with deadline:
                await self._exchange(method, url, headers, progress, body, allow_private)
        except _GiveUp as stop:
            progress.truncated |= stop.truncated
            return _AttemptResult(self._build(progress), stop.message, final=True)
        except NotRecordedError as exc:
            return _AttemptResult(None, str(exc), final=True, not_recorded=True)
        except AddressRefused as exc:  # SSRF guard: nothing was sent to that address
            message = str(exc)
            if progress.redirects:
                message = f"redirect to {redact_url(progress.url)} not followed: {message}"
            return _AttemptResult(self._build(progress), message, final=True, refused=True)
        except TimeoutError:
            if not deadline.expired():
                raise
            message = f"total timeout after {self.config.total_timeout:g} s"
            if progress.status is not None:
                progress.truncated = True
                message += f" (body cut at {progress.raw_bytes} bytes)"
            return _AttemptResult(
                self._build(progress),
                message,
                failure=FailureKind.READ_TIMEOUT,
                transport_failed=True,
            )
        except httpx.TransportError as exc:
            if progress.status is not None:
                progress.truncated = True
            kind = failure_kind(exc)
            return _AttemptResult(
                self._build(progress),
                self._describe(exc, progress),
                failure=kind,
                transport_failed=True,
                final=kind is None,
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:  # not transport trouble: final
            return _AttemptResult(self._build(progress), f"{type(exc).__name__}: {exc}", final=True)
        return _AttemptResult(self._build(progress))

    async def _exchange(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        progress: _Progress,
        body: bytes = b"",
        allow_private: bool = False,
    ) -> None:
        """Send the request (and its body), follow redirects by hand, stream the final body.

        Every hop is a request of its own through the transport, so the SSRF
        guard checks each redirect target's resolved address.
        """
        extensions = {ALLOW_PRIVATE_EXTENSION: True} if allow_private else None
        current = Hop(httpx.URL(url), method, body, tuple(headers))
        seen = [str(current.url)]
        for hop in range(self.config.max_redirects + 1):
            hop_host = host_key(str(current.url))
            if hop > 0:
                await self._take_token(hop_host, "shutting down: redirect not followed")
            sent = self._client.build_request(
                current.method,
                current.url,
                headers=list(current.headers),
                content=current.body or None,
                extensions=extensions,
            )
            progress.url = str(current.url)
            progress.request_headers = redact_headers(_decode_pairs(sent.headers.raw))
            progress.status = None
            response = await self._client.send(sent, stream=True)
            try:
                progress.arrived = self._wall()
                progress.status = response.status_code
                progress.headers = _decode_pairs(response.headers.raw)
                recorded = response.extensions.get(RECORDED_AT_EXTENSION)
                progress.recorded_at = recorded if isinstance(recorded, str) else None
                self.limits.observe(
                    hop_host, progress.headers, self._clock(), self._wall(), status=progress.status
                )
                location = response.headers.get("location")
                if response.status_code not in REDIRECT_STATUSES or location is None:
                    await self._read_body(response, progress)
                    return
                progress.redirects.append(str(current.url))
                try:
                    current = next_hop(
                        current,
                        response.status_code,
                        location,
                        seen,
                        hop,
                        self.config.max_redirects,
                    )
                except RedirectError as exc:
                    raise _GiveUp(str(exc)) from None
                seen.append(str(current.url))
            finally:
                await response.aclose()

    async def _read_body(self, response: httpx.Response, progress: _Progress) -> None:
        """Stream the body into ``progress`` within the size limits.

        Raises:
            _GiveUp: the body was cut (size limit, decoded-size limit, bad coding).
            httpx.TransportError: the connection failed midway.
        """
        cfg = self.config
        encoding = response.headers.get("content-encoding")
        preloaded = response.is_stream_consumed  # built with content=: httpx decoded it already
        decoder = ContentDecoder.for_header(
            None if preloaded else encoding, cfg.max_decompressed_bytes
        )
        unsupported = decoder is None
        if decoder is None:
            decoder = ContentDecoder("identity", cfg.max_decompressed_bytes)
        async for chunk in _raw_chunks(response):
            room = cfg.max_body_bytes - progress.raw_bytes
            taken = chunk[:room]
            progress.raw_bytes += len(taken)
            try:
                progress.body += decoder.feed(taken)
            except zlib.error as exc:
                raise _GiveUp(
                    f"content-decoding ({decoder.coding}) failed after "
                    f"{progress.raw_bytes} bytes: {exc}",
                    truncated=True,
                ) from None
            if decoder.over:
                raise _GiveUp(
                    f"decompressed body over {cfg.max_decompressed_bytes} bytes: "
                    f"cut after {progress.raw_bytes} bytes received",
                    truncated=True,
                )
            if len(taken) < len(chunk):
                raise _GiveUp(
                    f"body over {_size(cfg.max_body_bytes)}: cut at {cfg.max_body_bytes} bytes",
                    truncated=True,
                )
        try:
            progress.body += decoder.finish()
        except zlib.error as exc:
            raise _GiveUp(
                f"content-decoding ({decoder.coding}) failed at the end of the body: {exc}",
                truncated=True,
            ) from None
        if decoder.over:
            raise _GiveUp(
                f"decompressed body over {cfg.max_decompressed_bytes} bytes: "
                f"cut after {progress.raw_bytes} bytes received",
                truncated=True,
            )
        if unsupported:
            raise _GiveUp(
                f"content-coding {encoding!r} not supported: body kept as received (encoded)"
            )

    def _build(self, progress: _Progress) -> Exchange | None:
        """The exchange received so far, or None when no response arrived."""
        if progress.status is None:
            return None
        return Exchange(
            method=progress.method,
            url=redact_url(progress.request_url),
            status=progress.status,
            headers=redact_headers(progress.headers),
            body=bytes(progress.body),
            final_url=redact_url(progress.url),
            fetched_at=format_timestamp(int(progress.arrived * 1e9)),
            elapsed=max(0.0, self._clock() - progress.started),
            redirects=tuple(redact_url(u) for u in progress.redirects),
            request_headers=progress.request_headers,
            recorded_at=progress.recorded_at,
            truncated=progress.truncated,
        )

    def _describe(self, exc: httpx.TransportError, progress: _Progress) -> str:
        """A transport failure in plain words, naming the host and the limit that applied."""
        cfg = self.config
        where = _authority(progress.url)
        if isinstance(exc, httpx.ConnectTimeout):
            return f"connect timeout after {cfg.connect_timeout:g} s to {where}"
        if isinstance(exc, httpx.PoolTimeout):
            return f"no free connection to {where} after {cfg.connect_timeout:g} s"
        if isinstance(exc, httpx.ConnectError):
            if _refused(exc):
                return f"connection refused to {where}"
            dns = _dns_failure(exc)
            if dns is not None:
                return f"cannot resolve host {urlsplit(progress.url).hostname} (DNS: {dns})"
            return f"cannot connect to {where}: {exc or type(exc).__name__}"
        cut = f" (body cut at {progress.raw_bytes} bytes)" if progress.status is not None else ""
        if isinstance(exc, httpx.ReadTimeout):
            return f"read timeout after {cfg.read_timeout:g} s from {where}{cut}"
        if isinstance(exc, httpx.WriteTimeout):
            return f"write timeout after {cfg.read_timeout:g} s to {where}"
        if isinstance(exc, httpx.UnsupportedProtocol):
            return f"unsupported URL {redact_url(progress.url)}: {exc}"
        if isinstance(exc, httpx.RemoteProtocolError) and progress.status is not None:
            return f"connection closed mid-body by {where}: {exc}{cut}"
        detail = str(exc) or type(exc).__name__
        return f"{type(exc).__name__} from {where}: {detail}{cut}"


# --- outcome wording -----------------------------------------------------------------


async def _raw_chunks(response: httpx.Response) -> AsyncIterator[bytes]:
    """The body as received, chunk by chunk (one chunk when a test transport pre-read it)."""
    if response.is_stream_consumed:
        yield response.content
        return
    async for chunk in response.aiter_raw():
        yield chunk


def _reason_phrase(exchange: Exchange | None) -> str:
    """The standard reason phrase of an exchange's status (``""`` without an exchange)."""
    return "" if exchange is None else _phrase(exchange.status)


def _given_up(message: str, attempts: int, decision: RetryDecision) -> str:
    """``message`` plus why it was not retried, when that is news (a cap, a budget, a method)."""
    text = message if attempts == 1 else f"{message} after {attempts} attempts"
    reason = decision.reason
    label, sep, rest = reason.partition(": ")
    if sep and label and " " not in label:
        reason = rest
    routine = ("no attempts left", "is not retryable", "is not a failure")
    if decision.retry or reason.endswith(routine):
        return text
    return f"{text}: not retried: {reason}"


def _after(last: _AttemptResult | None, message: str) -> str:
    """An error that stopped a retry: ``<previous error>; not retried: <message>``."""
    if last is None:
        return message
    previous = last.error
    if previous is None and last.exchange is not None:
        previous = f"HTTP {last.exchange.status} {_reason_phrase(last.exchange)}".rstrip()
    if previous is None:
        return message
    if message.startswith("shutting down"):
        message = "shutting down"
    return f"{previous}; not retried: {message}"


def _rfc3339(epoch: float) -> str:
    """POSIX seconds as an RFC 3339 UTC time (``2026-12-07T13:05:00.000000Z``)."""
    return format_timestamp(int(epoch * 1e9))


def _retry_after(exchange: Exchange | None, now_epoch: float) -> float | None:
    """The ``Retry-After`` of a 429/503 (or any retryable status) in seconds, or None."""
    if exchange is None or exchange.status not in RETRYABLE_STATUSES:
        return None
    value = exchange.header("retry-after")
    if value is None:
        return None
    return parse_retry_after(value, now_epoch)
