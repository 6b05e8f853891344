"""Harvest once: pick the due feeds, run one cycle, save its report; the per-host breakers.

A *cycle* fetches every chosen feed concurrently under per-host limits,
retries and circuit breakers (:class:`~echo_archive.harvest.cycle.HarvestRun`),
archives each response as a capture, parses it into items, versions and
tombstones, and saves the cycle's report in the vault. Signals and rendering
are the shell's: a caller that wants to stop a cycle gets its run through
``on_start`` and calls ``run.stop()`` or ``run.abort()``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from echo_archive.config import EchoConfig, FeedConfig, InvalidFeed, load_config
from echo_archive.errors import NotFoundError, RequestError
from echo_archive.harvest.cycle import HarvestReport, HarvestRun, Progress, due_feeds
from echo_archive.harvest.engine import FetchConfig, Fetcher, reset_command
from echo_archive.harvest.limits import HostLimits, limits_from_config
from echo_archive.harvest.state import HarvestState
from echo_archive.harvest.stores import VaultBreakerStore, VaultConditionalCache, VaultPauseStore
from echo_archive.harvest.transport import ReplayTransport
from echo_archive.sources.base import Feed
from echo_archive.sources.registry import SOURCES
from echo_archive.vault.entry import format_timestamp
from echo_archive.vault.vault import CONFIG_FILE, Vault
from echo_archive.vault.writer import VaultWriter

__all__ = [
    "PARALLEL_PARSE_FEEDS",
    "BreakerView",
    "FeedSelection",
    "FetcherStores",
    "breaker_views",
    "breakers",
    "build_fetcher",
    "harvest_once",
    "host_limits",
    "reset_breaker",
    "select_feeds",
]

PARALLEL_PARSE_FEEDS: Final = 10
"""From this many feeds in a cycle, responses are parsed in worker processes."""


@dataclass(frozen=True, slots=True)
class FeedSelection:
    """The feeds a cycle runs, and those left out because they are not due.

    Attributes:
        feeds: the feeds to harvest, in ``echo.toml`` order (or as named).
        not_due: feed name -> seconds until it is due.
    """

    feeds: Sequence[Feed]
    not_due: Mapping[str, float] = field(default_factory=dict)


def select_feeds(
    vault: Vault,
    names: Sequence[str] = (),
    *,
    run_all: bool = False,
    now: float | None = None,
) -> FeedSelection:
    """Choose the feeds of a cycle.

    A ``[[feeds]]`` table that is not a usable feed (see
    :class:`~echo_archive.config.InvalidFeed`) is selected like the others
    (by its name, or when enabled) as a feed carrying its ``error``: the
    harvest reports it failed with that error and runs the others.

    With ``names``, exactly those feeds (enabled or not). Otherwise the
    enabled feeds; unless ``run_all``, only the due ones: a feed is due when
    ``max(interval, the poll interval its source asked for)`` seconds have
    passed since its last cycle started (GitHub ``X-Poll-Interval``).

    Args:
        vault: an open vault (its ``echo.toml`` and feed runs are read).
        names: feed names to run, or empty for the enabled ones.
        run_all: run the enabled feeds whether due or not.
        now: POSIX seconds (default: the clock).

    Returns:
        The selection (possibly with no feed: none is due).

    Raises:
        RequestError: a name is not a configured feed, or no feed is enabled.
    """
    config = load_config(vault.config_path)
    tables = config.all_feeds()  # an invalid table becomes a feed that fails with its error
    configured = [f for f in tables if f.enabled]
    if names:
        known: dict[str, FeedConfig | InvalidFeed] = {}
        for table in tables:
            known.setdefault(table.to_feed().name, table)
        unknown = [n for n in names if n not in known]
        if unknown:
            raise RequestError(f"unknown feed(s): {', '.join(unknown)} (see `echoctl feeds list`)")
        configured = [known[n] for n in names]
    if not configured:
        raise RequestError("no enabled feeds to harvest (add one with `echoctl feeds add`)")
    feeds = [f.to_feed() for f in configured]
    if names or run_all:
        return FeedSelection(feeds)
    due, waiting = due_feeds(
        feeds, HarvestState(vault.catalog).feed_runs(), time.time() if now is None else now
    )
    return FeedSelection(due, waiting)


async def harvest_once(
    vault: Vault | VaultWriter,
    feeds: Sequence[Feed],
    *,
    replay: Sequence[Path] = (),
    max_requests: int = 500,
    progress: Progress | None = None,
    on_start: Callable[[HarvestRun], None] | None = None,
    parse_workers: int | None = None,
) -> HarvestReport:
    """Harvest ``feeds`` once and save the report in the vault (``harvest_reports``).

    Args:
        vault: the vault's writer: every write of the cycle goes through it,
            holding the writer lock only while a batch commits (a writer
            vault works too: the cycle then opens its own writer).
        feeds: the feeds (see :func:`select_feeds`).
        replay: answer from these recordings (cassettes, HAR, WARC) instead
            of the network; an unrecorded request fails with "not recorded".
        max_requests: requests per feed per cycle, follow-ups included (>= 1).
        progress: optional callback ``(feed name, event)``.
        on_start: called with the run before it starts (to stop or abort it).
        parse_workers: processes parsing responses; None: up to 2 from
            :data:`PARALLEL_PARSE_FEEDS` feeds on, else none.

    Returns:
        The cycle's report (also saved in the vault).

    Raises:
        RequestError: ``max_requests`` below 1.
        RecordingError: a replay recording cannot be read.
        StorageError: the vault failed (what was committed stays archived).
    """
    if max_requests < 1:
        raise RequestError(f"max_requests {max_requests}: must be at least 1")
    transport = ReplayTransport.from_paths(list(replay)) if replay else None
    fetcher, stores = build_fetcher(vault, transport=transport)
    if parse_workers is None:
        # Parsing is CPU-bound: with many feeds it runs in worker processes.
        parse_workers = min(2, os.cpu_count() or 1) if len(feeds) >= PARALLEL_PARSE_FEEDS else 0
    try:
        async with fetcher:
            run = HarvestRun(
                vault,
                fetcher,
                SOURCES,
                max_requests=max_requests,
                progress=progress,
                parse_workers=parse_workers,
            )
            if on_start is not None:
                on_start(run)
            return await run.run(feeds)
    finally:
        stores.close()


@dataclass(slots=True)
class FetcherStores:
    """The vault-backed stores a :class:`Fetcher` built by :func:`build_fetcher` keeps state in.

    Attributes:
        breakers: per-host circuit-breaker states (operational table ``breakers``).
        cache: conditional-request validators (``http_validators``).
        pauses: per-host ``Retry-After`` pauses (``host_pauses``).
    """

    breakers: VaultBreakerStore
    cache: VaultConditionalCache
    pauses: VaultPauseStore

    def close(self) -> None:
        """Close the three stores' read connections (after the fetcher is closed)."""
        self.breakers.close()
        self.cache.close()
        self.pauses.close()


def host_limits(config: EchoConfig) -> HostLimits:
    """The per-host limits a vault's configuration gives: ``[limits]`` over the sources' profiles.

    Rates are requests/s (:class:`~echo_archive.harvest.limits.HostLimits`).

    Raises:
        ConfigError: a ``[limits]`` value is out of range.
    """
    overrides = {h: (lim.rate, lim.burst, lim.concurrency) for h, lim in config.limits.items()}
    return limits_from_config(overrides)


def build_fetcher(
    vault: Vault | VaultWriter, *, transport: Any = None
) -> tuple[Fetcher, FetcherStores]:
    """The fetch engine of a vault, as its ``echo.toml`` configures it.

    Per-host limits come from ``[limits]`` over the sources' host profiles,
    ``[harvest] allow_private`` from the configuration; breakers, validators
    and host pauses persist in the vault. One fetcher serves every feed of a
    process (``harvest_once`` builds one per cycle; ``echoctl serve`` one for
    its lifetime), so per-host limits hold across feeds.

    Args:
        vault: the vault (its writer, to persist the stores' writes).
        transport: an ``httpx`` transport instead of the live network (a
            :class:`~echo_archive.harvest.transport.ReplayTransport`), or None.

    Returns:
        ``(fetcher, stores)``: use the fetcher as an async context manager;
        close the stores after it.

    Raises:
        ConfigError: ``echo.toml`` cannot be read or is invalid.
    """
    config = load_config(vault.path / CONFIG_FILE)
    stores = FetcherStores(
        VaultBreakerStore(vault), VaultConditionalCache(vault), VaultPauseStore(vault)
    )
    fetcher = Fetcher(
        FetchConfig(allow_private=config.harvest.allow_private),
        transport=transport,
        limits=host_limits(config),
        breakers=stores.breakers,
        pauses=stores.pauses,
        cache=stores.cache,
    )
    return fetcher, stores


def breakers(vault: Vault) -> dict[str, dict[str, Any]]:
    """Every stored per-host circuit-breaker state, by breaker name (host).

    Each state is the breaker's JSON (``state``: CLOSED, OPEN, HALF_OPEN,
    FORCED_OPEN or DISABLED, resilience4j's names; ``opened_at``...).
    """
    return HarvestState(vault.catalog).breakers()


@dataclass(frozen=True, slots=True)
class BreakerView:
    """One stored per-host circuit breaker, as an operator reads it.

    Attributes:
        name: the breaker's name, the host key (``api.github.com``, ``127.0.0.1:8080``).
        state: ``closed``, ``open``, ``half_open``, ``forced_open`` or
            ``disabled`` (resilience4j's states, lowercase), as stored.
        opened_at: RFC 3339 UTC time the breaker last opened, or None.
        half_opens_at: RFC 3339 UTC time an OPEN breaker lets trial calls
            through (``opened_at`` + the harvester's
            ``wait_duration_in_open_state``, 300 s), or, for a HALF_OPEN one,
            when it half-opened; None otherwise (a FORCED_OPEN breaker never
            half-opens by itself: reset it).
        reset: the command that closes it (``echoctl breakers --reset NAME``),
            for a breaker that is not closed; else None.
        raw: the stored state (:meth:`CircuitBreaker.to_state
            <echo_archive.harvest.breaker.CircuitBreaker.to_state>`, epoch seconds).
    """

    name: str
    state: str
    opened_at: str | None
    half_opens_at: str | None
    reset: str | None
    raw: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The stored state plus ``opened``, ``half_opens_at`` (RFC 3339) and ``reset``."""
        return {
            **self.raw,
            "opened": self.opened_at,
            "half_opens_at": self.half_opens_at,
            "reset": self.reset,
        }


def _rfc3339(epoch: object) -> str | None:
    """POSIX seconds (a stored number) as RFC 3339 UTC, or None for anything else."""
    if isinstance(epoch, bool) or not isinstance(epoch, int | float):
        return None
    return format_timestamp(int(epoch * 1e9))


def breaker_views(vault: Vault) -> list[BreakerView]:
    """Every stored breaker with its times in RFC 3339 and when it half-opens, by name.

    The half-open time uses the breaker configuration ``harvest`` runs with
    (:attr:`FetchConfig.breaker <echo_archive.harvest.engine.FetchConfig.breaker>`:
    ``wait_duration_in_open_state`` 300 s, resilience4j semantics).
    """
    wait = FetchConfig().breaker.wait_duration_in_open_state
    views: list[BreakerView] = []
    for name, raw in breakers(vault).items():
        state = str(raw.get("state", "?")).lower()
        opened = raw.get("opened_at")
        half_opens: str | None = None
        if state == "open" and isinstance(opened, int | float):
            half_opens = _rfc3339(opened + wait)
        elif state == "half_open":
            half_opens = _rfc3339(raw.get("half_open_at"))
        views.append(
            BreakerView(
                name=name,
                state=state,
                opened_at=_rfc3339(opened),
                half_opens_at=half_opens,
                reset=None if state == "closed" else reset_command(name),
                raw=raw,
            )
        )
    return views


def reset_breaker(vault: Vault | VaultWriter, name: str) -> None:
    """Close breaker ``name``: forget its state, so it starts CLOSED.

    Args:
        vault: the vault's writer (or a writer vault).
        name: the breaker's name (see :func:`breakers`).

    Raises:
        NotFoundError: no breaker has that name.
        VaultLockedError: another process kept the writer lock past the wait.
        StorageError: the catalog cannot be written.
    """
    if isinstance(vault, VaultWriter):
        found = vault.submit(_delete_breaker, name).result()
    else:
        found = _delete_breaker(vault, name)
    if not found:
        raise NotFoundError(f"no breaker named {name!r} (see `echoctl breakers`)")


def _delete_breaker(vault: Vault, name: str) -> bool:
    """Forget breaker ``name`` (a writer job); whether it existed."""
    with vault.writing():
        return HarvestState(vault.catalog).delete_breaker(name)
