"""The configuration file ``echo.toml`` and its model.

A vault's ``echo.toml`` (TOML 1.0) is written by ``echoctl init`` and read by
every command. Unknown keys are errors (a typo must not be silently ignored),
and every error names the file and the key path that was wrong
(``feeds.2.source: unknown source 'rs' ...``).

::

    [vault]
    origin = "echo.archive/3f9a0c1d2e4b5a69"   # the log's origin; never changes
    created = "2026-11-22T01:41:19.123456Z"

    [blobs]
    backend = "sqlite"           # "sqlite" or "directory"; chosen at init, never changed
    large_threshold = 16777216   # bytes; larger blobs are stored as files
    zstd_level = 3

    [log]
    batch_size = 1000            # records per commit when adding many files

    [[feeds]]                    # one table per feed (see FeedConfig)
    name = "r-python-new"
    source = "reddit"
    interval = 900               # seconds between harvests
    enabled = true

    [feeds.params]               # source-specific; checked by the source's plan()
    subreddit = "python"
    listing = "new"

    [feeds.params.user_agent]
    app_id = "echo-archive"
    version = "0.1.0"
    username = "echo-archive-user"

This module checks the *shape* of a feed (name, source kind, interval,
enabled, params as a table); whether its ``params`` make sense is the
source's business (:func:`echo_archive.sources.registry.check_feed`: only
declared parameters, and the source's ``plan()`` accepts them, else a
:class:`~echo_archive.errors.SourceError` naming the parameter), checked
when a feed is added and for each feed when ``echo.toml`` is loaded.

**One bad feed fails alone** (DESIGN.md invariant 7). :func:`load_config`
checks each ``[[feeds]]`` table on its own: a table that is not a usable
feed (``interval = 10``, ``enabled = "yes"``, ``url = 42``, an unknown
parameter) becomes an :class:`InvalidFeed` in
:attr:`EchoConfig.invalid_feeds`, named by its ``name`` and its position
(``feed 'bbc' (feeds.9, the 10th [[feeds]] table): interval: must be an
integer >= 60 (seconds), got 10``); the other feeds load, every command
works, ``echoctl feeds list`` shows the bad feed with its error and a harvest
reports it failed with that error. A bad part of the file outside the feed
tables (``[log]``, ``[limits]``, ``feeds`` not an array of tables) still
fails the whole load, naming the key.
The source kinds (:data:`SOURCE_KINDS`) and their default intervals
(:data:`DEFAULT_INTERVALS`) are read from the registry
(:mod:`echo_archive.sources.registry`, the only list of sources), on first
use: importing this module loads no source, so they and
:data:`DEFAULT_FEEDS` are computed when first asked for (PEP 562 module
``__getattr__``). The vault reads only its own tables
(:mod:`echo_archive.vault.settings`), which this module composes.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import tomlkit
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from tomlkit.items import Item, Table

from echo_archive import __version__
from echo_archive.errors import ConfigError
from echo_archive.vault.settings import (
    BlobSection,
    LogSection,
    VaultSection,
    VaultSettings,
    format_problems,
    read_toml,
    settings_document,
)

__all__ = [
    "ALERT_RULE_NAMES",
    "API_ROUTE_GROUPS",
    "DEFAULT_FEEDS",
    "DEFAULT_INTERVALS",
    "FEEDS_HEADER",
    "FEED_NAME_PATTERN",
    "INTERVENTION_RISKS",
    "MIN_INTERVAL",
    "REDDIT_USERNAME_PLACEHOLDER",
    "SOURCE_KINDS",
    "AlertRuleSection",
    "AlertsSection",
    "ApiSection",
    "BlobSection",
    "EchoConfig",
    "EmailSection",
    "FeedConfig",
    "HarvestSection",
    "HealthSection",
    "HostLimitSection",
    "InvalidFeed",
    "LogSection",
    "ServiceSection",
    "SupervisorSection",
    "SupervisorWeights",
    "VaultSection",
    "WebhookSection",
    "feed_label",
    "feed_table",
    "feeds_header",
    "format_problems",
    "load_config",
    "new_config",
    "parse_config",
    "render",
    "render_new",
]

if TYPE_CHECKING:
    from echo_archive.sources.base import Feed

    SOURCE_KINDS: tuple[str, ...]
    """The source kinds a feed may name: the keys of ``sources.registry.SOURCES``."""

    DEFAULT_INTERVALS: Mapping[str, int]
    """Seconds between harvests of a feed that names no ``interval``, by source kind.

    Each source declares its own (``default_interval``, with the reason beside it).
    """


def _source_kinds() -> tuple[str, ...]:
    """The registry's source kinds, in registry order (loads the sources layer)."""
    from echo_archive.sources.registry import SOURCES

    return tuple(SOURCES)


def _default_intervals() -> Mapping[str, int]:
    """The registry's default intervals by source kind (loads the sources layer)."""
    from echo_archive.sources.registry import DEFAULT_INTERVALS as INTERVALS

    return INTERVALS


def __getattr__(name: str) -> Any:
    """Compute :data:`SOURCE_KINDS`, :data:`DEFAULT_INTERVALS` and :data:`DEFAULT_FEEDS` on use.

    Raises:
        AttributeError: no such name in this module.
    """
    if name == "SOURCE_KINDS":
        return _source_kinds()
    if name == "DEFAULT_INTERVALS":
        return _default_intervals()
    if name == "DEFAULT_FEEDS":
        return _default_feeds()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


MIN_INTERVAL: Final = 60
"""The shortest ``interval`` allowed, in seconds (no source wants to be polled faster)."""

FEED_NAME_PATTERN: Final = r"^[a-z0-9][a-z0-9._-]{0,63}$"
"""A feed name: a lowercase slug of 1 to 64 characters (``hn-top``, ``r-python-new``)."""

REDDIT_USERNAME_PLACEHOLDER: Final = "echo-archive-user"
"""The Reddit username of the default reddit feeds' User-Agent, to be replaced by the operator's."""

FEEDS_HEADER: Final = (
    "Feeds: what `echoctl harvest` collects, one [[feeds]] table each (README.md, 'Feeds').\n"
    "interval is in seconds; edit here or with `echoctl feeds add|remove|enable|disable`."
)
"""The comment ``render`` writes above the feeds (one line per ``\\n``)."""

_COMMENT_WS: Final = "   "
_REDDIT_USERNAME_COMMENT: Final = "CHANGE to your Reddit username (Reddit's API rules)"
_VALUE_ERROR_PREFIX: Final = re.compile(r"^(Value|Assertion) error, ")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_toml_value(value: Any, where: str) -> None:
    """Raise ValueError unless ``value`` can be written as TOML (no None, finite keys)."""
    if isinstance(value, Mapping):
        for key, sub in value.items():
            if not isinstance(key, str) or not key:
                raise ValueError(f"{where}: key {key!r} is not a non-empty string")
            _check_toml_value(sub, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for i, sub in enumerate(value):
            _check_toml_value(sub, f"{where}.{i}")
    elif isinstance(value, float):
        if math.isnan(value):
            raise ValueError(f"{where}: nan is not a usable parameter value")
    elif not isinstance(value, str | bool | int | dt.date | dt.time):
        raise ValueError(f"{where}: {value!r} is not a TOML value")


class FeedConfig(_Strict):
    """``[[feeds]]``: one feed, a configured stream of one source.

    Attributes:
        name: unique feed name, a lowercase slug (:data:`FEED_NAME_PATTERN`).
        source: the source kind, one of :data:`SOURCE_KINDS`.
        interval: seconds between harvests, at least :data:`MIN_INTERVAL`
            (default: :data:`DEFAULT_INTERVALS` of the source).
        enabled: whether the harvester collects this feed.
        params: source-specific parameters (``url``, ``subreddit``, ``repo``...),
            as written in ``echo.toml``; checked by the source's ``plan()``.
        allow_private: let this feed's requests (and their redirects) connect
            to private addresses: loopback, RFC 1918, link-local, CGNAT...
            (:mod:`echo_archive.harvest.addresses`; off by default, the SSRF
            guard). For a feed served on the local machine or network.

    """

    name: str = Field(strict=True)
    source: str = Field(strict=True)
    interval: int = Field(default=3600, ge=MIN_INTERVAL, strict=True)
    enabled: bool = Field(default=True, strict=True)
    params: dict[str, Any] = Field(default_factory=dict)
    allow_private: bool = Field(default=False, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _default_interval(cls, data: Any) -> Any:
        """Fill a missing (or None) ``interval`` with the source's default."""
        if isinstance(data, Mapping) and data.get("interval") is None:
            source = data.get("source")
            intervals = _default_intervals()
            if isinstance(source, str) and source in intervals:
                return {**data, "interval": intervals[source]}
        return data

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not re.fullmatch(FEED_NAME_PATTERN, value):
            raise ValueError(
                f"{value!r} is not a feed name: 1 to 64 of a-z, 0-9, '.', '_', '-', "
                "starting with a letter or digit"
            )
        return value

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: str) -> str:
        kinds = _source_kinds()
        if value not in kinds:
            raise ValueError(f"unknown source {value!r} (known: {', '.join(sorted(kinds))})")
        return value

    @field_validator("params")
    @classmethod
    def _toml_params(cls, value: dict[str, Any]) -> dict[str, Any]:
        _check_toml_value(value, "params")
        return value

    def to_feed(self) -> Feed:
        """Return the feed as the sources see it.

        Returns:
            A :class:`~echo_archive.sources.base.Feed` with a copy of the params
            and the interval as float seconds.

        """
        # Imported here: the vault reads echo.toml and must not load the sources layer.
        from echo_archive.sources.base import Feed

        return Feed(
            name=self.name,
            source=self.source,
            params=dict(self.params),
            interval=float(self.interval),
            allow_private=self.allow_private,
        )


_FEED_KEYS: Final = ("name", "source", "interval", "enabled", "allow_private", "params")


def _ordinal(n: int) -> str:
    """``1`` → ``1st``, ``2`` → ``2nd``, ``11`` → ``11th``, ``23`` → ``23rd``."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def feed_label(position: int, name: object) -> str:
    """How a message names the ``[[feeds]]`` table at ``position`` (0-based).

    Returns:
        ``feed 'bbc' (feeds.9, the 10th [[feeds]] table)``, or without a usable
        name ``the 10th [[feeds]] table (feeds.9)``.
    """
    where = f"feeds.{position}, the {_ordinal(position + 1)} [[feeds]] table"
    if isinstance(name, str) and name:
        return f"feed {name!r} ({where})"
    return f"the {_ordinal(position + 1)} [[feeds]] table (feeds.{position})"


def _feed_problem(err: Any) -> str:
    """One pydantic error of a feed table in plain words: ``interval: must be ... (got 10)``."""
    where = ".".join(str(p) for p in err["loc"])
    kind, got = err["type"], err.get("input")
    shown = f"got {got!r}"
    if kind == "missing":
        msg = "is missing (required)"
    elif kind == "extra_forbidden":
        msg = f"is not a feed key (known: {', '.join(_FEED_KEYS)}; source settings go in params)"
    elif where == "interval" and kind in ("greater_than_equal", "int_type", "int_from_float"):
        msg = f"must be an integer >= {MIN_INTERVAL} (seconds between harvests), {shown}"
    elif kind in ("bool_type", "bool_parsing"):
        msg = f"must be true or false, {shown}"
    elif kind == "string_type":
        msg = f"must be a string, {shown}"
    elif kind in ("int_type", "int_parsing", "int_from_float"):
        msg = f"must be an integer, {shown}"
    elif kind == "dict_type":
        msg = f"must be a table ([feeds.params]), {shown}"
    else:
        msg = _VALUE_ERROR_PREFIX.sub("", err["msg"])
    return f"{where}: {msg}" if where else msg


class InvalidFeed(_Strict):
    """A ``[[feeds]]`` table that is not a usable feed: kept as written, named, failed alone.

    Attributes:
        position: its index among the ``[[feeds]]`` tables, from 0 (``feeds.9``).
        name: its ``name`` when that is a string, else None.
        source: its ``source`` when that is a string, else None.
        enabled: False only when the table says ``enabled = false``; a harvest
            of the enabled feeds reports an enabled invalid feed failed.
        interval: its ``interval`` when that is an integer, else None.
        params: its ``params`` when that is a table, else ``{}`` (real values:
            redact before showing).
        error: what is wrong, naming the feed and each bad key
            (``feed 'bbc' (feeds.9, the 10th [[feeds]] table): interval: ...``).
    """

    position: int
    name: str | None = None
    source: str | None = None
    enabled: bool = True
    interval: int | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    error: str

    @classmethod
    def of(cls, position: int, table: Mapping[str, Any], problems: str) -> InvalidFeed:
        """The invalid feed of ``table`` at ``position``, whose problems are ``problems``."""

        def typed(key: str, kind: type) -> Any:
            value = table.get(key)
            return value if isinstance(value, kind) and not isinstance(value, bool) else None

        params = table.get("params")
        return cls(
            position=position,
            name=typed("name", str),
            source=typed("source", str),
            enabled=table.get("enabled") is not False,
            interval=typed("interval", int),
            params=dict(params) if isinstance(params, Mapping) else {},
            error=f"{feed_label(position, table.get('name'))}: {problems}",
        )

    def to_feed(self) -> Feed:
        """The feed as a harvest sees it: its ``error`` set, so it plans nothing and fails.

        Returns:
            A :class:`~echo_archive.sources.base.Feed` named by ``name`` (or
            ``feeds.N`` without one), no params, and ``error``.
        """
        from echo_archive.sources.base import Feed

        interval = self.interval if self.interval and self.interval >= MIN_INTERVAL else 3600
        return Feed(
            name=self.name or f"feeds.{self.position}",
            source=self.source or "",
            interval=float(interval),
            error=self.error,
        )


def _check_feed_table(position: int, table: Mapping[str, Any]) -> FeedConfig | InvalidFeed:
    """Validate one ``[[feeds]]`` table: its shape, and its params with its source.

    Both are checked even when the shape is wrong (when the source kind and the
    params table are usable), so one message lists every problem of the feed.
    """
    from echo_archive.errors import SourceError
    from echo_archive.sources.base import Feed
    from echo_archive.sources.registry import SOURCES, check_feed

    problems: list[str] = []
    feed: FeedConfig | None = None
    try:
        feed = FeedConfig.model_validate(table)
    except ValidationError as exc:
        problems += [_feed_problem(e) for e in exc.errors()]
    name, source, params = table.get("name"), table.get("source"), table.get("params", {})
    shown = name if isinstance(name, str) else f"feeds.{position}"
    if isinstance(source, str) and source in SOURCES and isinstance(params, Mapping):
        try:
            check_feed(feed.to_feed() if feed else Feed(shown, source, dict(params)))
        except SourceError as exc:
            problems.append(str(exc).removeprefix(f"feed {shown!r}: "))
    if feed is not None and not problems:
        return feed
    return InvalidFeed.of(position, table, "; ".join(problems))


class HostLimitSection(_Strict):
    """``[limits."<host>"]``: how hard a harvest may hit one host (overrides the source default).

    Attributes:
        rate: steady requests per second (> 0); live rate-limit headers can only lower it.
        burst: requests that may leave back to back (token bucket capacity, >= 1).
        concurrency: requests in flight at once (>= 1).
    """

    rate: float = Field(gt=0, le=1000)
    burst: float = Field(default=1.0, ge=1, le=1000)
    concurrency: int = Field(default=1, ge=1, le=64)


class HarvestSection(_Strict):
    """``[harvest]``: vault-wide harvest settings.

    Attributes:
        allow_private: let every feed connect to private addresses (loopback,
            RFC 1918, link-local, CGNAT...; :mod:`echo_archive.harvest.addresses`).
            Off by default: the SSRF guard refuses them on the first request and
            on every redirect. A single feed can allow them with its own
            ``allow_private = true`` instead.
    """

    allow_private: bool = Field(default=False, strict=True)


_GIB: Final = 1024**3
_DAY: Final = 86400.0


class HealthSection(_Strict):
    """``[health]``: thresholds and budgets of the health checks.

    Read by :mod:`echo_archive.control.health` (:class:`HealthConfig
    <echo_archive.control.health.HealthConfig>`).

    Every key is optional; unknown keys are errors naming the key. Times are
    seconds, sizes bytes, fractions in (0, 1).

    Attributes:
        disk_warning_free_fraction, disk_warning_free_bytes: ``disk_free`` is a
            warning when the filesystem's free space is below the smaller of
            ``fraction * total`` and ``bytes`` (10%, 2 GiB): a large disk warns
            by bytes, a small one by fraction.
        disk_critical_free_fraction, disk_critical_free_bytes: likewise critical
            (5%, 512 MiB); the service pauses harvesting then.
        disk_warning_days, disk_critical_days: ``disk_free`` is a warning
            (critical) when the vault's growth would fill the free space within
            this many days (7, 1), projected by least squares over the size
            samples of the last ``growth_window`` seconds.
        size_sample_interval: seconds between two recorded vault size samples (3600).
        growth_window: seconds of size samples the projection uses (7 days).
        verify_period: the incremental verify re-reads every blob within this
            many seconds (30 days; restic ``check --read-data-subset``).
        verify_budget: seconds one incremental verify may spend (60).
        derived_sample: fraction of entries whose derived rows are rebuilt and
            compared by ``derived_indexes`` (0.05).
        stale_intervals: a feed is stale when it had no successful harvest for
            this many of its intervals (3).
        silent_runs, silent_history, silent_usual_fraction: a feed is silent
            when each of its last ``silent_runs`` harvested runs (3) yielded no
            new item, version or tombstone while at least
            ``silent_usual_fraction`` (0.5) of the ``silent_history`` runs
            before them (10, at least 3 present) did.
        parse_error_rate, parse_error_runs, parse_error_min_captures: a feed's
            parse errors over its captures in its last ``parse_error_runs``
            runs (10) above ``parse_error_rate`` (0.2), counted once it has at
            least ``parse_error_min_captures`` captures (5), is a warning.
        writer_queue_warning: queued writer jobs above which ``writer`` warns (1000).
        commit_latency_warning: p95 commit seconds above which ``writer`` warns (5).
        memory_growth: resident memory growth after ``memory_warmup`` seconds
            (0.10: 10%) above which ``memory`` warns.
        memory_warmup: seconds of service start-up excluded from ``memory`` (300).
        loop_lag_warning, loop_lag_critical: event-loop lag seconds (0.5, 5).
        temp_min_age: seconds a temporary file must be old to count as left
            over by a failed write (3600).
        clock_tolerance: seconds the clock may read before the newest
            checkpoint's signing time before ``clock`` is critical (5).
        state_wait: seconds :func:`~echo_archive.control.health.run_checks`
            waits for the writer lock to save its state (5).
        report_retention: saved harvest reports kept by ``prune_reports`` (1000).
        orphan_grace: seconds an orphan blob must have been seen for before
            ``prune_orphans`` plans it (7 days).
    """

    disk_warning_free_fraction: float = Field(default=0.10, gt=0, lt=1)
    disk_critical_free_fraction: float = Field(default=0.05, gt=0, lt=1)
    disk_warning_free_bytes: int = Field(default=2 * _GIB, ge=0)
    disk_critical_free_bytes: int = Field(default=_GIB // 2, ge=0)
    disk_warning_days: float = Field(default=7.0, ge=0)
    disk_critical_days: float = Field(default=1.0, ge=0)
    size_sample_interval: float = Field(default=3600.0, gt=0)
    growth_window: float = Field(default=7 * _DAY, gt=0)
    verify_period: float = Field(default=30 * _DAY, gt=0)
    verify_budget: float = Field(default=60.0, gt=0)
    derived_sample: float = Field(default=0.05, gt=0, le=1)
    stale_intervals: float = Field(default=3.0, gt=0)
    silent_runs: int = Field(default=3, ge=1)
    silent_history: int = Field(default=10, ge=3)
    silent_usual_fraction: float = Field(default=0.5, gt=0, le=1)
    parse_error_rate: float = Field(default=0.2, gt=0, le=1)
    parse_error_runs: int = Field(default=10, ge=1)
    parse_error_min_captures: int = Field(default=5, ge=1)
    writer_queue_warning: int = Field(default=1000, ge=1)
    commit_latency_warning: float = Field(default=5.0, gt=0)
    memory_growth: float = Field(default=0.10, gt=0)
    memory_warmup: float = Field(default=300.0, ge=0)
    loop_lag_warning: float = Field(default=0.5, gt=0)
    loop_lag_critical: float = Field(default=5.0, gt=0)
    temp_min_age: float = Field(default=3600.0, ge=0)
    clock_tolerance: float = Field(default=5.0, ge=0)
    state_wait: float = Field(default=5.0, ge=0)
    report_retention: int = Field(default=1000, ge=1)
    orphan_grace: float = Field(default=7 * _DAY, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> HealthSection:
        pairs = [
            ("disk_critical_free_fraction", "disk_warning_free_fraction"),
            ("disk_critical_free_bytes", "disk_warning_free_bytes"),
            ("disk_critical_days", "disk_warning_days"),
            ("loop_lag_warning", "loop_lag_critical"),
        ]
        for low, high in pairs:
            if getattr(self, low) > getattr(self, high):
                raise ValueError(
                    f"{low} ({getattr(self, low)}) must not exceed {high} ({getattr(self, high)})"
                )
        return self


class ServiceSection(_Strict):
    """``[service]``: how ``echoctl serve`` runs (:mod:`echo_archive.service`).

    Attributes:
        listen: ``HOST:PORT`` it serves HTTP on; loopback by default. A
            non-loopback address is refused until the API's authentication
            is configured (the HTTP API issue).
        max_concurrent: feed runs in flight at once.
        feed_timeout: seconds one feed run may take before it is cut short
            (what it fetched is archived; the feed is retried later).
        tick: the longest sleep between two looks at the schedules, seconds.
        grace: seconds SIGTERM waits for runs in flight before cancelling them.
        max_requests: requests per feed run, follow-ups included.
        health_every: seconds between two quick health passes.
        verify_every: seconds between two full health passes (the quick
            pass plus the incremental verify and the derived-index check,
            each within its ``[health]`` budget) in place of a quick one.
    """

    listen: str = Field(default="127.0.0.1:8383", pattern=r"^\[?[0-9A-Za-z.:_-]+\]?:[0-9]{1,5}$")
    max_concurrent: int = Field(default=4, ge=1, le=256, strict=True)
    feed_timeout: float = Field(default=600.0, gt=0, le=86_400)
    tick: float = Field(default=30.0, gt=0, le=3_600)
    grace: float = Field(default=30.0, ge=0, le=3_600)
    max_requests: int = Field(default=500, ge=1, strict=True)
    health_every: float = Field(default=60.0, gt=0, le=86_400)
    verify_every: float = Field(default=3_600.0, gt=0, le=30 * 86_400)


ALERT_RULE_NAMES: Final = (
    "EchoFeedFailureRateHigh",
    "EchoTamperingDetected",
    "EchoStorageCritical",
    "EchoStorageLow",
    "EchoFeedStale",
    "EchoFeedSilent",
    "EchoBreakerOpen",
    "EchoClockBackwards",
    "EchoBreakGlassActive",
    "EchoCheckCritical",
)
"""The default alert rules' names, the keys ``[alerts.rules.<name>]`` accepts (the rules
themselves are :data:`echo_archive.control.alertrules.DEFAULT_RULES`, the same names)."""


class WebhookSection(_Strict):
    """``[[alerts.webhooks]]``: one webhook receiving Alertmanager's JSON payload (version 4).

    Attributes:
        url: where notifications are POSTed (``http://`` or ``https://``;
            shown redacted, so a token in its query is never printed).
        timeout: seconds per attempt.
        max_attempts: attempts at most on a connection error, 429 or 5xx (1 to 10).
        send_resolved: also send resolved alerts (Alertmanager's default: true).
    """

    url: str = Field(strict=True)
    timeout: float = Field(default=10.0, gt=0, le=300)
    max_attempts: int = Field(default=3, ge=1, le=10, strict=True)
    send_resolved: bool = Field(default=True, strict=True)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value


class EmailSection(_Strict):
    """``[alerts.email]``: notifications by email over SMTP.

    Attributes:
        host: the SMTP server.
        port: its port (default 25; 587 for submission with STARTTLS).
        sender: the ``From`` address (key ``from``).
        to: the recipients (at least one).
        starttls: upgrade with STARTTLS (the certificate is verified).
        username: log in as this user, or none.
        password_env: the name of the environment variable that holds the
            password (``ECHO_SMTP_PASSWORD``); the password itself is never
            in ``echo.toml`` (a ``password`` key is refused) nor printed.
        timeout: seconds for the connection and each SMTP command.
        send_resolved: also mail resolved alerts (Alertmanager's default: false).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    host: str = Field(strict=True, min_length=1)
    port: int = Field(default=25, ge=1, le=65535, strict=True)
    sender: str = Field(alias="from", strict=True, min_length=3)
    to: list[str] = Field(min_length=1)
    starttls: bool = Field(default=False, strict=True)
    username: str | None = None
    password_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    timeout: float = Field(default=30.0, gt=0, le=300)
    send_resolved: bool = Field(default=False, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _no_password(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "password" in data:
            raise ValueError(
                "password: not allowed in echo.toml; put it in an environment variable "
                "and name that variable in password_env"
            )
        return data


class AlertRuleSection(_Strict):
    """``[alerts.rules.<RuleName>]``: change one default alert rule.

    Attributes:
        enabled: false turns the rule off.
        threshold: the number the metric is compared with.
        for_: the pending period, seconds (key ``for``).
        keep_firing_for: seconds it keeps firing after its condition stops.
        severity: its ``severity`` label (``warning``, ``critical``...).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    enabled: bool = Field(default=True, strict=True)
    threshold: float | None = None
    for_: float | None = Field(default=None, alias="for", ge=0)
    keep_firing_for: float | None = Field(default=None, ge=0)
    severity: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*$")

    @field_validator("threshold")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value


class AlertsSection(_Strict):
    """``[alerts]``: alert rules, grouping and channels (Alertmanager's semantics).

    Durations are seconds. Without this table: the default rules, grouped by
    ``alertname``, Alertmanager's default timing, the log channel only.

    Attributes:
        group_by: the labels that make a notification group (``["..."]``: every label).
        group_wait: seconds a new group waits before its first notification.
        group_interval: seconds between notifications of a changed group.
        repeat_interval: seconds before an unchanged firing group is notified again.
        send_resolved: the log channel also logs resolved alerts.
        external_url: ECHO's URL, for the webhook payload's ``externalURL``.
        evaluation_interval: seconds between two evaluations of the rules
            by the service (Prometheus's ``evaluation_interval``).
        log: notify through the log (structlog events).
        webhooks: ``[[alerts.webhooks]]`` tables.
        email: ``[alerts.email]``.
        rules: ``[alerts.rules.<RuleName>]`` changes of the default rules;
            an unknown rule name is refused, naming the known ones.
    """

    group_by: list[str] = Field(default_factory=lambda: ["alertname"])
    group_wait: float = Field(default=30.0, ge=0, le=86400)
    group_interval: float = Field(default=300.0, gt=0, le=86400)
    repeat_interval: float = Field(default=14400.0, gt=0, le=30 * 86400)
    send_resolved: bool = Field(default=True, strict=True)
    external_url: str = Field(default="", strict=True)
    evaluation_interval: float = Field(default=15.0, gt=0, le=3_600)
    log: bool = Field(default=True, strict=True)
    webhooks: list[WebhookSection] = Field(default_factory=list)
    email: EmailSection | None = None
    rules: dict[str, AlertRuleSection] = Field(default_factory=dict)

    @field_validator("group_by")
    @classmethod
    def _label_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if name != "..." and not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", name):
                raise ValueError(f"{name!r} is not a label name")
        return value

    @field_validator("external_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL, or empty")
        return value

    @field_validator("rules")
    @classmethod
    def _known_rules(cls, value: dict[str, AlertRuleSection]) -> dict[str, AlertRuleSection]:
        unknown = sorted(set(value) - set(ALERT_RULE_NAMES))
        if unknown:
            raise ValueError(
                f"unknown rule {', '.join(unknown)} (known: {', '.join(ALERT_RULE_NAMES)})"
            )
        return value


# ---------------------------------------------------------------------------- [api]
API_ROUTE_GROUPS: Final = ("checkpoint", "tiles", "proofs")
"""The route groups ``[api] public`` may open to anyone (the verification material)."""


class ApiSection(_Strict):
    """``[api]``: the HTTP API's access rules (:mod:`echo_archive.api`).

    Attributes:
        public: route groups anyone may read without credentials (of
            :data:`API_ROUTE_GROUPS`; default none: every route but
            ``/healthz`` needs credentials).
        groups: ``[api.groups]``: feed group name -> its feeds; a key or
            user scoped to a group holds its role only for those feeds.
        token_ttl: seconds a JWT access token lives (default 900).
        rate_limit: requests a minute per client (default 1000, the
            design's figure; :mod:`echo_archive.api.ratelimit`: a client is
            an API key, a user, or, without a credential proven good, the
            client address), 1 to 10^9 (a load test raises it out of the way).
        max_body: bytes a request body may hold (default 1 MiB, 1,048,576);
            a larger ``Content-Length`` is 413 at once, a chunked body is
            counted as it arrives and cut off at the limit (RFC 9110 §15.5.14).
        cors_origins: origins (``scheme://host[:port]``, no path) whose
            browser scripts may call the API (CORS, Fetch Standard §3.2);
            default none: no cross-origin reads. ``*`` is refused (it would
            open credentialed reads to every site).
        forwarded_allow_ips: addresses of reverse proxies whose
            ``X-Forwarded-For`` / ``X-Forwarded-Proto`` are believed (uvicorn's
            ``forwarded_allow_ips``); default none: the client address is
            the peer of the TCP connection, so no client can pick its
            rate-limit bucket by sending the header.
    """

    public: list[str] = Field(default_factory=list)
    groups: dict[str, list[str]] = Field(default_factory=dict)
    token_ttl: int = Field(default=900, ge=1, le=86_400, strict=True)
    rate_limit: int = Field(default=1000, ge=1, le=1_000_000_000, strict=True)
    max_body: int = Field(default=1_048_576, ge=1024, le=1_073_741_824, strict=True)
    cors_origins: list[str] = Field(default_factory=list)
    forwarded_allow_ips: list[str] = Field(default_factory=list)

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin == "*":
                raise ValueError(
                    "'*' is not accepted: list each origin allowed (https://dash.example.org)"
                )
            if not re.fullmatch(
                r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?",
                origin,
            ):
                raise ValueError(
                    f"origin {origin!r}: expected scheme://host[:port] with http or https "
                    "and no path or trailing slash (RFC 6454 §6.2)"
                )
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        for text in value:
            try:
                ipaddress.ip_network(text, strict=False)
            except ValueError:
                raise ValueError(
                    f"forwarded_allow_ips: {text!r} is not an IP address or network "
                    "(127.0.0.1, 10.0.0.0/8, ::1)"
                ) from None
        return value

    @field_validator("public")
    @classmethod
    def _known_groups(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(API_ROUTE_GROUPS))
        if unknown:
            raise ValueError(
                f"unknown route group {', '.join(unknown)} (known: {', '.join(API_ROUTE_GROUPS)})"
            )
        return value

    @field_validator("groups")
    @classmethod
    def _group_names(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
                raise ValueError(f"group {name!r}: use ASCII letters, digits, '.', '_' or '-'")
        return value


INTERVENTION_RISKS: Final[Mapping[str, str]] = {
    "pause_feed": "low",
    "resume_feed": "low",
    "stretch_interval": "low",
    "lower_host_rate": "low",
    "rebuild_index": "low",
    "run_verify": "low",
    "force_breaker": "high",
    "quarantine_feed": "high",
    "free_disk": "high",
}
"""Every intervention kind and its risk: the names ``[supervisor] auto`` accepts (the kinds
themselves are :data:`echo_archive.control.interventions.KINDS`, the same names and risks)."""


class SupervisorWeights(_Strict):
    """``[supervisor.weights]``: how the stability score weighs its four components.

    The supervisor's own value type is
    :class:`echo_archive.control.stability.StabilityWeights` (the service
    builds it from this table); its defaults are this table's, so there is
    one set of defaults: 0.25, 0.35, 0.2, 0.2 (errors weigh most, as the
    design's failure-rate alert is its first rule).

    The stability score is ``resource × w_r + error × w_e + performance × w_p
    + dependency × w_d`` (each component in [0, 1]); the weights are >= 0
    and must sum to 1 (within 1e-9), so the score stays in [0, 1].

    Attributes:
        resource: disk, memory, CPU, writer queue.
        error: request and parse error rates.
        performance: latencies, event-loop lag.
        dependency: breakers and the hosts behind them.

    Raises:
        ValueError: the weights do not sum to 1 (the message gives the sum).
    """

    resource: float = Field(default=0.25, ge=0, le=1)
    error: float = Field(default=0.35, ge=0, le=1)
    performance: float = Field(default=0.2, ge=0, le=1)
    dependency: float = Field(default=0.2, ge=0, le=1)

    @model_validator(mode="after")
    def _sum_one(self) -> SupervisorWeights:
        total = self.resource + self.error + self.performance + self.dependency
        if abs(total - 1.0) > 1e-9:
            raise ValueError(
                f"resource + error + performance + dependency must sum to 1, got {total!r}"
            )
        return self


class SupervisorSection(_Strict):
    """``[supervisor]``: the Echo Controller of ``echoctl serve`` and its interventions.

    Read by the service: the cycle, weights and horizon go to the supervisor
    (:mod:`echo_archive.control.supervisor`), the budget, the automatic
    kinds, ``assess_after`` and ``rollback_margin`` to the intervention
    manager (:class:`~echo_archive.control.interventions.InterventionOptions`).

    Attributes:
        enabled: run the supervisor (false: observe nothing, plan nothing).
        cycle: seconds between two observations of the system state.
        interventions_per_hour: at most this many interventions execute on
            their own in any hour (a sliding 3600 s); those over the budget
            are ``deferred`` and run when the budget allows, never dropped.
        auto: the kinds that may execute without approval; low-risk kinds
            only (a high-risk kind always waits for approval). Default: every
            low-risk kind.
        assess_after: seconds after execution at which the supervisor's
            proposals have their effect measured (its default for
            ``Proposal.assess_after``).
        rollback_margin: an executed intervention is rolled back when its
            signal moved against its goal by more than this fraction of the
            larger of the two values (planned, measured).
        weights: ``[supervisor.weights]`` (:class:`SupervisorWeights`).
        horizon: seconds ahead the collapse risk looks (the probability of a
            threshold breach within it).
    """

    enabled: bool = Field(default=True, strict=True)
    cycle: float = Field(default=60.0, gt=0, le=86_400)
    interventions_per_hour: int = Field(default=6, ge=0, le=3_600, strict=True)
    auto: list[str] = Field(
        default_factory=lambda: [k for k, r in INTERVENTION_RISKS.items() if r == "low"]
    )
    assess_after: float = Field(default=600.0, gt=0, le=7 * 86_400)
    rollback_margin: float = Field(default=0.1, ge=0, le=10)
    weights: SupervisorWeights = SupervisorWeights()
    horizon: float = Field(default=3_600.0, gt=0, le=30 * 86_400)

    @field_validator("auto")
    @classmethod
    def _low_risk_kinds(cls, value: list[str]) -> list[str]:
        for kind in value:
            risk = INTERVENTION_RISKS.get(kind)
            if risk is None:
                raise ValueError(
                    f"unknown intervention kind {kind!r} (kinds: {', '.join(INTERVENTION_RISKS)})"
                )
            if risk != "low":
                raise ValueError(
                    f"{kind} is high risk: it always waits for approval and cannot be in auto"
                )
        return value


class EchoConfig(_Strict):
    """The whole ``echo.toml``: the vault's own tables plus the feeds and host limits.

    The ``[vault]``, ``[blobs]`` and ``[log]`` sections are the vault's
    (:mod:`echo_archive.vault.settings`, which reads them alone); this model
    composes them with the tables of the layers above.

    Attributes:
        vault: ``[vault]``.
        blobs: ``[blobs]``.
        log: ``[log]``.
        harvest: ``[harvest]`` (:class:`HarvestSection`).
        health: ``[health]`` (:class:`HealthSection`).
        service: ``[service]`` (:class:`ServiceSection`).
        alerts: ``[alerts]`` (:class:`AlertsSection`): alert rules and channels.
        api: ``[api]`` (:class:`ApiSection`): the HTTP API's access rules.
        supervisor: ``[supervisor]`` (:class:`SupervisorSection`): the supervisor and
            its interventions.
        feeds: ``[[feeds]]``, in file order; names are unique.
        limits: ``[limits."<host>"]`` tables, by host name (``host:port`` for a
            non-default port), overriding the per-source defaults.
        invalid_feeds: the ``[[feeds]]`` tables that are not usable feeds
            (:func:`parse_config` puts them here, each with its error; the
            valid ones are in ``feeds``). :func:`render` does not write them.

    """

    vault: VaultSection
    blobs: BlobSection = BlobSection()
    log: LogSection = LogSection()
    harvest: HarvestSection = HarvestSection()
    health: HealthSection = HealthSection()
    service: ServiceSection = ServiceSection()
    alerts: AlertsSection = AlertsSection()
    api: ApiSection = ApiSection()
    supervisor: SupervisorSection = SupervisorSection()
    feeds: list[FeedConfig] = Field(default_factory=list)
    limits: dict[str, HostLimitSection] = Field(default_factory=dict)
    invalid_feeds: list[InvalidFeed] = Field(default_factory=list)

    @field_validator("feeds")
    @classmethod
    def _unique_names(cls, feeds: list[FeedConfig]) -> list[FeedConfig]:
        seen: dict[str, int] = {}
        for i, feed in enumerate(feeds):
            if feed.name in seen:
                raise ValueError(
                    f"duplicate feed name {feed.name!r} (feeds.{seen[feed.name]} and feeds.{i})"
                )
            seen[feed.name] = i
        return feeds

    @property
    def settings(self) -> VaultSettings:
        """The vault's tables alone, as the vault reads them."""
        return VaultSettings(vault=self.vault, blobs=self.blobs, log=self.log)

    def feed(self, name: str) -> FeedConfig:
        """Return the feed called ``name``.

        Args:
            name: the feed name.

        Returns:
            The feed.

        Raises:
            ConfigError: no feed has that name (the message lists the names),
                or its table is invalid (the message is its error).

        """
        for feed in self.feeds:
            if feed.name == name:
                return feed
        for invalid in self.invalid_feeds:
            if invalid.name == name:
                raise ConfigError(invalid.error)
        names = ", ".join(f.name for f in self.feeds) or "none"
        raise ConfigError(f"no feed named {name!r} (feeds: {names})")

    def all_feeds(self) -> list[FeedConfig | InvalidFeed]:
        """Every ``[[feeds]]`` table, valid or not, in file order."""
        tables: list[FeedConfig | InvalidFeed] = list(self.feeds)
        for invalid in self.invalid_feeds:
            tables.insert(invalid.position, invalid)
        return tables


def load_config(path: Path) -> EchoConfig:
    """Read and validate ``echo.toml`` (see :func:`parse_config`).

    Args:
        path: the file.

    Returns:
        The configuration; the ``[[feeds]]`` tables that are not usable feeds
        are in ``invalid_feeds``, each with its error.

    Raises:
        ConfigError: the file is missing, not TOML, or a part outside the feed
            tables breaks the model; the message names the file and each
            offending key path (``log.batch_size: ...``).

    """
    return parse_config(read_toml(path), path)


def parse_config(data: Mapping[str, Any], path: Path | str) -> EchoConfig:
    """Validate the parsed TOML of ``echo.toml``, each ``[[feeds]]`` table on its own.

    Each feed table is checked for its shape (:class:`FeedConfig`) and its
    params by its source (:func:`echo_archive.sources.registry.check_feed`:
    declared keys only, and ``plan()`` accepts them). A table that fails
    becomes an :class:`InvalidFeed` named by its ``name`` and position; so
    does a second table with a name already taken. The rest of the file must
    be valid.

    Args:
        data: the document (``tomllib`` output).
        path: the file, for messages.

    Returns:
        The configuration: valid feeds in ``feeds``, the others in ``invalid_feeds``.

    Raises:
        ConfigError: a part outside the feed tables is invalid, or ``feeds``
            is not an array of tables (names the file and the key path).

    """
    raw = data.get("feeds")
    tables: list[Mapping[str, Any]] = []
    if isinstance(raw, list) and all(isinstance(t, Mapping) for t in raw):
        tables = raw
        data = {k: v for k, v in data.items() if k != "feeds"}
    # else: absent, or not an array of tables (the model names the key below)
    try:
        config = EchoConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {format_problems(exc)}") from exc
    feeds: list[FeedConfig] = []
    invalid: list[InvalidFeed] = []
    seen: dict[str, int] = {}
    for position, table in enumerate(tables):
        checked = _check_feed_table(position, table)
        if isinstance(checked, FeedConfig) and checked.name in seen:
            first = feed_label(seen[checked.name], checked.name)
            checked = InvalidFeed.of(position, table, f"name: {checked.name!r} is taken by {first}")
        if isinstance(checked, InvalidFeed):
            invalid.append(checked)
        else:
            seen[checked.name] = position
            feeds.append(checked)
    return config.model_copy(update={"feeds": feeds, "invalid_feeds": invalid})


# ---------------------------------------------------------------------------- defaults


def _reddit_user_agent() -> dict[str, str]:
    return {
        "app_id": "echo-archive",
        "version": __version__,
        "username": REDDIT_USERNAME_PLACEHOLDER,
    }


if TYPE_CHECKING:
    DEFAULT_FEEDS: list[FeedConfig]
    """The feeds of a new vault (see :func:`_default_feeds`)."""


@functools.cache
def _default_feeds() -> list[FeedConfig]:
    """The feeds of a new vault: real public feeds, so a first harvest archives real data.

    Three news feeds (BBC World, The Guardian World, NPR News), the Hacker News
    top 30, the new posts of r/python and r/worldnews (anonymous, 10 queries a
    minute; the User-Agent's username is a placeholder to replace), the public
    events of python/cpython and torvalds/linux, and the FRED 10-year Treasury
    constant-maturity yield (DGS10) through the keyless CSV download.

    Returns:
        The list (shared: copy a feed before changing it; :func:`new_config` does).
    """
    return [
        FeedConfig(
            name="bbc-world",
            source="rss",
            params={"url": "https://feeds.bbci.co.uk/news/world/rss.xml"},
        ),
        FeedConfig(
            name="guardian-world",
            source="rss",
            params={"url": "https://www.theguardian.com/world/rss"},
        ),
        FeedConfig(
            name="npr-news",
            source="rss",
            params={"url": "https://feeds.npr.org/1001/rss.xml"},
        ),
        FeedConfig(name="hn-top", source="hn", params={"list": "top", "limit": 30}),
        FeedConfig(
            name="r-python-new",
            source="reddit",
            params={"subreddit": "python", "listing": "new", "user_agent": _reddit_user_agent()},
        ),
        FeedConfig(
            name="r-worldnews-new",
            source="reddit",
            params={"subreddit": "worldnews", "listing": "new", "user_agent": _reddit_user_agent()},
        ),
        FeedConfig(
            name="gh-python-cpython",
            source="github",
            params={"repo": "python/cpython", "kind": "events"},
        ),
        FeedConfig(
            name="gh-torvalds-linux",
            source="github",
            params={"repo": "torvalds/linux", "kind": "events"},
        ),
        FeedConfig(name="fred-dgs10", source="fred", params={"series_id": "DGS10"}),
    ]


def render_new(settings: VaultSettings) -> str:
    """The ``echo.toml`` text of a new vault: ``settings`` and :data:`DEFAULT_FEEDS`.

    What ``echoctl init`` passes to :meth:`Vault.create
    <echo_archive.vault.vault.Vault.create>` as its ``render``.
    """
    config = new_config(settings.vault.origin, settings.vault.created)
    return render(config.model_copy(update={"blobs": settings.blobs, "log": settings.log}))


def new_config(
    origin: str, created: str, blobs_backend: Literal["sqlite", "directory"] = "sqlite"
) -> EchoConfig:
    """Return the configuration of a new vault: default settings and :data:`DEFAULT_FEEDS`.

    Args:
        origin: the log origin.
        created: RFC 3339 UTC time of creation.
        blobs_backend: the blob store backend (``[blobs] backend``).

    Returns:
        The configuration ``echoctl init`` writes.

    """
    return EchoConfig(
        vault=VaultSection(origin=origin, created=created),
        blobs=BlobSection(backend=blobs_backend),
        feeds=[feed.model_copy(deep=True) for feed in _default_feeds()],
    )


# ---------------------------------------------------------------------------- rendering


def _comment(item: Item, text: str) -> None:
    """Attach an end-of-line comment to ``item``, three spaces after the value."""
    item.comment(text)
    item.trivia.comment_ws = _COMMENT_WS


def _add(table: Table, key: str, value: Any, comment: str | None = None) -> None:
    item = tomlkit.item(value)
    if comment:
        _comment(item, comment)
    table.add(key, item)


def feed_table(feed: FeedConfig) -> Table:
    """Build the ``[[feeds]]`` table of one feed, as ``render`` and ``echoctl feeds add`` write it.

    Keys in order ``name``, ``source``, ``interval``, ``enabled``, then the
    ``params`` as a ``[feeds.params]`` sub-table (nested tables as
    ``[feeds.params.<key>]``). A reddit User-Agent whose username is
    :data:`REDDIT_USERNAME_PLACEHOLDER` gets a comment saying to change it.

    Args:
        feed: the feed.

    Returns:
        A tomlkit table (strings escaped by tomlkit), to append to the ``feeds``
        array of tables.

    """
    table = tomlkit.table()
    table.add("name", feed.name)
    table.add("source", feed.source)
    table.add("interval", feed.interval)
    table.add("enabled", feed.enabled)
    if feed.allow_private:
        _add(table, "allow_private", True, "may connect to private addresses (SSRF guard off)")
    if feed.params:
        params = tomlkit.table()
        for key, value in feed.params.items():
            params.add(key, value)
        agent = params.get("user_agent") if feed.source == "reddit" else None
        if isinstance(agent, Table) and agent.get("username") == REDDIT_USERNAME_PLACEHOLDER:
            _comment(agent["username"], _REDDIT_USERNAME_COMMENT)
        table.add("params", params)
    return table


def feeds_header() -> list[Item]:
    """Return the comment lines of :data:`FEEDS_HEADER`, as tomlkit items."""
    return [tomlkit.comment(line) for line in FEEDS_HEADER.splitlines()]


def render(config: EchoConfig) -> str:
    """Render a configuration as the TOML text ``echoctl init`` writes.

    The document is built with tomlkit, so every string is escaped correctly;
    the settings carry their explanatory comments, and the feeds follow as
    ``[[feeds]]`` tables under :data:`FEEDS_HEADER`.

    Args:
        config: the configuration.

    Returns:
        TOML text that :func:`load_config` reads back as ``config``.

    """
    doc = settings_document(config.settings)
    if config.harvest.allow_private:
        section = tomlkit.table()
        _add(section, "allow_private", True, "every feed may reach private addresses")
        doc.add(tomlkit.nl())
        doc.add("harvest", section)
    if config.alerts != AlertsSection():
        doc.add(tomlkit.nl())
        doc.add(
            "alerts", tomlkit.item(config.alerts.model_dump(by_alias=True, exclude_defaults=True))
        )
    if config.api != ApiSection():
        doc.add(tomlkit.nl())
        doc.add("api", tomlkit.item(config.api.model_dump(exclude_defaults=True)))
    if config.supervisor != SupervisorSection():
        doc.add(tomlkit.nl())
        doc.add("supervisor", tomlkit.item(config.supervisor.model_dump(exclude_defaults=True)))
    doc.add(tomlkit.nl())
    for line in feeds_header():
        doc.add(line)
    if config.feeds:
        aot = tomlkit.aot()
        for feed in config.feeds:
            aot.append(feed_table(feed))
        doc.add("feeds", aot)
    return tomlkit.dumps(doc)
