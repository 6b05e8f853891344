"""One harvest cycle: plan, fetch, parse, version and archive every due feed.

Feeds run concurrently on one event loop; the fetch engine enforces the
per-host limits, retries and breakers, so feeds on one host queue politely
while others proceed. For each feed:

1. its source plans the first requests, with the credentials it names
   (:meth:`~echo_archive.sources.base.Source.credential_env`: ``FRED_API_KEY``
   or the feed's ``api_key_env``, ``GITHUB_TOKEN``, ``REDDIT_CLIENT_ID`` and
   ``REDDIT_CLIENT_SECRET``) read from the environment and applied by the
   source; a token exchange the source plans (Reddit's application-only
   OAuth) is sent first, its answer parsed by the source, and neither is
   archived nor logged;
2. each request is fetched; follow-up requests (pages, items, comments) join
   the feed's queue, up to ``max_requests`` per feed per cycle;
3. each exchange received (except a 304, which adds nothing) is parsed, and
   every ``batch_size`` exchanges the batch is archived
   (:func:`~echo_archive.harvest.commit.commit_batch`, run on the vault's
   :class:`~echo_archive.vault.writer.VaultWriter`, awaited without blocking
   the loop): captures, items, versions, tombstones, observations, under a
   signed checkpoint. The writer lock is held only while a batch commits,
   never while a feed waits on the network, so other processes (an
   ``echoctl add``) write in between.

A failing feed (an unplannable feed, unreachable host, open breaker,
malformed responses) is reported in plain words and never stops the others
(DESIGN.md invariant 7). Stopping (:meth:`HarvestRun.stop`, wired to
SIGINT/SIGTERM by the CLI) stops starting requests, lets in-flight ones
finish, and archives everything already fetched.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import structlog

from echo_archive.errors import EchoError, EntryError, ParseError
from echo_archive.harvest.commit import commit_batch
from echo_archive.harvest.engine import Fetcher, host_key
from echo_archive.harvest.state import HarvestState
from echo_archive.harvest.stores import VaultState
from echo_archive.harvest.workers import parse_pool
from echo_archive.index.items import known_many
from echo_archive.model import Exchange, Item, ParseResult, Request, Tombstone
from echo_archive.pipeline.batch import BatchCounts, Sighting
from echo_archive.pipeline.versioning import content_json
from echo_archive.pipeline.withdrawals import (
    CONFIRM_WITHDRAWN,
    MAX_CONFIRMATIONS,
    WindowEntry,
    confirmation_reason,
    window_of,
    withdrawn,
)
from echo_archive.redaction import redact_text, redact_url
from echo_archive.sources.base import IF_ARCHIVED, Feed, Source
from echo_archive.sources.ratelimits import parse_poll_interval
from echo_archive.sources.registry import SOURCES
from echo_archive.vault.entry import canonical_json, format_timestamp
from echo_archive.vault.vault import Vault
from echo_archive.vault.writer import VaultWriter

__all__ = [
    "FeedReport",
    "HarvestReport",
    "HarvestRun",
    "due_feeds",
]

log = structlog.get_logger("echo_archive.harvest")

Progress = Callable[[str, str], None]
"""Called as ``(feed name, event)`` where event is ``"request"``, ``"done"`` or ``"failed"``."""


def _now() -> str:
    return format_timestamp(time.time_ns())


HARVESTED = "harvested"
"""A feed's status: at least one request got a usable answer (2xx/3xx, body whole)."""
FAILED = "failed"
"""A feed's status: no request got a usable answer (all timed out, were cut, got
4xx/5xx, or the feed could not be planned)."""
SKIPPED = "skipped"
"""A feed's status: nothing was requested because its host is paused (Retry-After)."""


@dataclass
class FeedReport:
    """What one feed did in one cycle.

    Attributes:
        name, source: the feed.
        requests: responses by HTTP status (as text), and ``"error"`` for
            fetches that received nothing.
        not_modified: 304 responses (nothing new, nothing stored).
        captures, new, versions, duplicates, tombstones, withdrawn, parse_errors, bytes:
            what was archived (see :class:`~echo_archive.pipeline.batch.BatchCounts`;
            ``withdrawn``: tombstones of entries taken out of the feed document).
        seconds: wall time of the feed's cycle.
        breaker: the state of the feed's host breaker(s) at the end.
        hosts: the hosts the feed requested (breaker names).
        poll_interval: the longest poll interval the source asked for
            (GitHub ``X-Poll-Interval``, seconds), or None.
        error: the feed's failure in plain words, or None.
        failed: True when the feed got no usable response at all: every
            request timed out, failed to connect, was cut, or got a 4xx/5xx
            answer (or the feed could not be planned). A skipped feed is not failed.
        status: :data:`HARVESTED`, :data:`FAILED` or :data:`SKIPPED` (its host
            is paused after a ``Retry-After`` beyond the cap; see ``paused_until``).
        paused_until: RFC 3339 time until which a host of the feed is paused,
            when a request of the feed was skipped for it, else None.
    """

    name: str
    source: str
    requests: dict[str, int] = field(default_factory=dict)
    not_modified: int = 0
    captures: int = 0
    new: int = 0
    versions: int = 0
    duplicates: int = 0
    tombstones: int = 0
    withdrawn: int = 0
    parse_errors: int = 0
    bytes: int = 0
    seconds: float = 0.0
    breaker: str = ""
    error: str | None = None
    failed: bool = False
    hosts: list[str] = field(default_factory=list)
    poll_interval: float | None = None
    status: str = HARVESTED
    paused_until: str | None = None

    def absorb(self, counts: BatchCounts) -> None:
        """Add a committed batch's counts."""
        counts.add_to(self)


@dataclass
class HarvestReport:
    """The outcome of one cycle: one :class:`FeedReport` per feed, in order.

    Attributes:
        started_at, finished_at: RFC 3339 times.
        seconds: wall time.
        interrupted: True when a stop signal cut the cycle short.
        feeds: the per-feed reports.
        checkpoint_size: the log size covered by the last checkpoint.
    """

    started_at: str
    finished_at: str = ""
    seconds: float = 0.0
    interrupted: bool = False
    feeds: list[FeedReport] = field(default_factory=list)
    checkpoint_size: int = 0

    @property
    def all_failed(self) -> bool:
        """True when there were feeds and none was harvested (failed or skipped)."""
        return bool(self.feeds) and all(f.status != HARVESTED for f in self.feeds)

    @property
    def some_failed(self) -> bool:
        """True when at least one feed was not harvested (failed or skipped)."""
        return any(f.status != HARVESTED for f in self.feeds)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping of the report (``all_failed`` and ``some_failed`` added)."""
        data = asdict(self)
        data["all_failed"] = self.all_failed
        data["some_failed"] = self.some_failed
        return data


def _secrets(source: Source, feed: Feed, env: Mapping[str, str]) -> dict[str, str]:
    """The environment variables ``source`` names for ``feed`` that are set (nothing else)."""
    return {name: env[name] for name in source.credential_env(feed) if env.get(name)}


def due_feeds(
    feeds: Sequence[Feed], runs: Mapping[str, tuple[float, float | None]], now: float
) -> tuple[list[Feed], dict[str, float]]:
    """Split feeds into the due ones and the others (with seconds until each is due).

    A feed is due when it never ran, or when ``max(interval, poll interval the
    source asked for)`` seconds have passed since its last cycle started
    (GitHub: "the X-Poll-Interval header specifies how often (in seconds) you
    are allowed to poll").

    Args:
        feeds: the candidate feeds.
        runs: ``{feed: (last start epoch, poll interval or None)}``.
        now: POSIX seconds.

    Returns:
        ``(due feeds in order, {feed not due: seconds until due})``.
    """
    due: list[Feed] = []
    waiting: dict[str, float] = {}
    for feed in feeds:
        last = runs.get(feed.name)
        if last is None:
            due.append(feed)
            continue
        every = max(feed.interval, last[1] or 0.0)
        left = last[0] + every - now
        if left <= 0:
            due.append(feed)
        else:
            waiting[feed.name] = left
    return due, waiting


class HarvestRun:
    """One harvest cycle over a set of feeds.

    Args:
        vault: the vault's writer; every write of the cycle (batches, feed
            runs, the report) is queued on it and awaited. Given a writer
            :class:`~echo_archive.vault.vault.Vault` instead, the run opens
            its own writer on the same vault for the cycle (the vault itself
            is then only read, on the event loop's thread).
        fetcher: the fetch engine (built with :class:`VaultBreakerStore` and
            :class:`VaultConditionalCache` so breakers and validators persist).
        sources: source kind -> source.
        max_requests: requests per feed per cycle (follow-ups included).
        batch_size: exchanges per commit.
        env: where credentials are read from (default ``os.environ``).
        progress: optional callback ``(feed name, event)``.
        reddit_token_url: Reddit's OAuth2 token endpoint (tests point it
            elsewhere); the same as ``token_urls={"reddit": url}``.
        token_urls: source kind → the URL its token requests go to instead
            of the one the source plans (tests).
        parse_workers: processes that parse responses beside the event loop
            (feedparser and JSON decoding are CPU-bound and hold the GIL); 0
            parses on the loop. The sources must be the registry's (the
            workers use :data:`~echo_archive.sources.registry.SOURCES`).
    """

    def __init__(
        self,
        vault: Vault | VaultWriter,
        fetcher: Fetcher,
        sources: Mapping[str, Source],
        *,
        max_requests: int = 500,
        batch_size: int = 50,
        env: Mapping[str, str] | None = None,
        progress: Progress | None = None,
        reddit_token_url: str | None = None,
        token_urls: Mapping[str, str] | None = None,
        parse_workers: int = 0,
    ) -> None:
        self._target = vault
        self.fetcher = fetcher
        self.sources = sources
        self.max_requests = max_requests
        self.batch_size = batch_size
        self.env = env if env is not None else os.environ
        self.progress = progress
        self._stopping = False
        self._tasks: list[asyncio.Future[None]] = []
        self._tokens: dict[
            tuple[str, str, tuple[tuple[str, str], ...], bytes, bool], asyncio.Future[str]
        ] = {}
        self._pool: ProcessPoolExecutor | None = None
        self._reader: VaultState | None = None  # reads the item index (known ids)
        # feed name → (URL, window) of the document parsed this cycle, saved after its commit
        self._windows: dict[str, tuple[str, list[WindowEntry]]] = {}
        if parse_workers > 0:
            try:
                self._pool = parse_pool(parse_workers)
            except (OSError, RuntimeError, ValueError, NotImplementedError) as exc:
                log.warning("harvest.parse_workers_unavailable", error=str(exc))
        self.token_urls = dict(token_urls or {})
        if reddit_token_url is not None:
            self.token_urls["reddit"] = reddit_token_url

    def stop(self) -> None:
        """Stop starting requests; in-flight ones finish and fetched data is archived."""
        self._stopping = True
        self.fetcher.stop_starting()

    def cancel(self) -> None:
        """Cancel this run's feeds now, leaving the fetcher running for other runs.

        For a fetcher shared by several runs (``echoctl serve`` runs each feed
        under a timeout): the run's in-flight requests are cancelled and what
        was fetched is archived, as for :meth:`abort`, but the fetcher keeps
        starting requests for the others. The report says ``aborted``.
        """
        for task in self._tasks:
            task.cancel()

    def abort(self) -> None:
        """Cancel in-flight requests now; what was already fetched is still archived.

        The vault stays consistent: a commit runs on the writer thread and is
        never interrupted half-way (cancelling its awaiter does not cancel
        it); each feed commits its fetched exchanges as it unwinds.
        """
        self.stop()
        for task in self._tasks:
            task.cancel()

    async def run(self, feeds: Sequence[Feed]) -> HarvestReport:
        """Harvest ``feeds`` once, concurrently, and save the report in the vault.

        Returns:
            The report (also stored in the vault's ``harvest_reports``).

        Raises:
            StorageError: the vault failed (the CLI exits 1).
            VaultLockedError: another process held the writer lock for longer
                than the vault's ``wait`` when a batch was to commit.
        """
        target = self._target
        if isinstance(target, VaultWriter):
            self.writer = target
            try:
                return await self._run(feeds)
            finally:
                if not target.closed:  # the queued breaker and validator saves too
                    await asyncio.to_thread(target.flush)
        self.writer = VaultWriter.open(
            target.path, wait=target.wait, break_stale=target.break_stale, derived=target.derived
        )
        try:
            return await self._run(feeds)
        finally:
            await asyncio.to_thread(self.writer.close)

    async def _run(self, feeds: Sequence[Feed]) -> HarvestReport:
        started = time.perf_counter()
        report = HarvestReport(started_at=_now())
        report.feeds = [FeedReport(f.name, f.source) for f in feeds]
        self._tasks = [
            asyncio.ensure_future(self._feed(f, r))
            for f, r in zip(feeds, report.feeds, strict=True)
        ]
        outcomes = await asyncio.gather(*self._tasks, return_exceptions=True)
        for feed_report, outcome in zip(report.feeds, outcomes, strict=True):
            if isinstance(outcome, asyncio.CancelledError):
                feed_report.error = feed_report.error or "aborted: in-flight requests cancelled"
            elif isinstance(outcome, BaseException):
                raise outcome
        report.interrupted = self._stopping
        report.finished_at = _now()
        report.seconds = time.perf_counter() - started
        for feed_report in report.feeds:  # what is saved and shown holds no credential
            feed_report.error = feed_report.error and redact_text(feed_report.error)
        await self.writer.submit_async(_save_report, report)
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        return report

    async def _feed(self, feed: Feed, report: FeedReport) -> None:
        started = time.perf_counter()
        started_epoch = time.time()
        try:
            await self._feed_cycle(feed, report)
        finally:
            report.seconds = time.perf_counter() - started
            breakers = self.fetcher.breakers()
            report.breaker = ", ".join(
                f"{h}: {breakers[h].current_state().name.lower()}"
                for h in report.hosts
                if h in breakers
            )
            if report.failed:
                report.status = FAILED
            if report.status == HARVESTED:  # a failed or skipped feed stays due
                await self.writer.submit_async(
                    _put_feed_run, feed.name, started_epoch, report.poll_interval
                )
            if self.progress:
                self.progress(feed.name, "failed" if report.failed else "done")

    async def _feed_cycle(self, feed: Feed, report: FeedReport) -> None:
        if feed.error is not None:  # its echo.toml table is invalid: plan nothing, fail alone
            report.failed, report.error = True, feed.error
            return
        source = self.sources.get(feed.source)
        if source is None:
            report.failed, report.error = True, f"unknown source kind {feed.source!r}"
            return
        secrets = _secrets(source, feed, self.env)
        try:
            feed = source.with_credentials(feed, secrets)
            queue = deque(source.plan(feed))
            token = await self._token(source, feed, secrets)
        except EchoError as exc:
            report.failed, report.error = True, str(exc)
            return
        statuses: Counter[str] = Counter()
        pending: list[Sighting] = []
        errors: list[str] = []
        received = 0
        hosts: set[str] = set()
        try:
            received = await self._drain(
                feed, source, queue, statuses, pending, errors, hosts, report, secrets, token
            )
        except asyncio.CancelledError:
            report.requests = dict(statuses)
            report.hosts = sorted(hosts)
            await self._commit(pending, report)  # archive what was fetched before the abort
            raise
        await self._commit(pending, report)
        window = self._windows.pop(feed.name, None)
        if window is not None:  # only once the document's sightings are committed
            await self.writer.submit_async(_put_window, feed.name, *window)
        report.requests = dict(statuses)
        report.hosts = sorted(hosts)
        if received == 0 and statuses.keys() - {"skipped"}:
            report.failed = True  # requests went out and none got a usable answer
        elif received == 0 and statuses:
            report.status = SKIPPED  # nothing was sent: the host is paused
        if errors:
            unique = list(dict.fromkeys(errors))
            more = f" (+{len(unique) - 3} more)" if len(unique) > 3 else ""
            report.error = "; ".join(unique[:3]) + more

    async def _drain(
        self,
        feed: Feed,
        source: Source,
        queue: deque[Request],
        statuses: Counter[str],
        pending: list[Sighting],
        errors: list[str],
        hosts: set[str],
        report: FeedReport,
        secrets: Mapping[str, str],
        token: str | None,
    ) -> int:
        """Fetch the feed's queue; returns how many usable responses were received.

        Usable: received whole, without error, status below 400 (a 304 too).
        A request skipped because its host is paused counts as ``skipped``
        in ``statuses`` and sets ``report.paused_until``.
        """
        received = 0
        while queue and not self._stopping:
            if sum(statuses.values()) >= self.max_requests:
                errors.append(f"stopped at the cap of {self.max_requests} requests per cycle")
                break
            request = source.authorize(feed, queue.popleft(), secrets, token)
            hosts.add(host_key(request.url))
            if self.progress:
                self.progress(feed.name, "request")
            outcome = await self.fetcher.fetch(
                request, source_kind=feed.source, allow_private=feed.allow_private
            )
            exchange = outcome.exchange
            if outcome.paused_until is not None:
                statuses["skipped"] += 1
                until = format_timestamp(int(outcome.paused_until * 1e9))
                report.paused_until = max(until, report.paused_until or until)
                errors.append(f"skipped: {outcome.error}")
                continue
            statuses["error" if exchange is None else str(exchange.status)] += 1
            if exchange is None:
                errors.append(outcome.error or "no response")
                continue
            if outcome.error is None and exchange.status < 400:
                received += 1
            poll = parse_poll_interval(exchange.headers)
            if poll is not None:
                report.poll_interval = max(poll, report.poll_interval or 0.0)
            if outcome.not_modified:
                report.not_modified += 1
                continue
            if outcome.error:  # cut body, or a 429/5xx given up on: keep it, raw first
                errors.append(outcome.error)
                pending.append(Sighting(feed, request, exchange, None, outcome.error))
            else:
                pending.append(await self._parse(source, feed, request, exchange, queue, errors))
            if len(pending) >= self.batch_size:
                await self._commit(pending, report)
                pending.clear()
        return received

    async def _token(self, source: Source, feed: Feed, secrets: Mapping[str, str]) -> str | None:
        """Run the token exchange ``source`` plans for ``feed``, if any, and return the token.

        The source plans the request (:meth:`~echo_archive.sources.base.Source.token_request`)
        and reads the answer (:meth:`~echo_archive.sources.base.Source.parse_token`);
        this sends it. The exchange is never archived and neither it nor the
        token is logged (the body is a credential). Tokens are kept for the
        run, per token request (so per client): feeds of one client share one exchange.

        Returns:
            The token, or None when the source plans no token request.

        Raises:
            SourceError: the credentials are missing (names the variables).
            ParseError: the exchange failed or its answer holds no token.
        """
        request = source.token_request(feed, secrets)
        if request is None:
            return None
        if source.kind in self.token_urls:
            request = replace(request, url=self.token_urls[source.kind])
        key = (source.kind, request.url, request.headers, request.body, feed.allow_private)
        pending = self._tokens.get(key)
        if pending is None:  # the first feed of this client asks; the others wait for it
            pending = self._tokens[key] = asyncio.ensure_future(
                self._exchange_token(source, feed, request)
            )
        try:
            return await asyncio.shield(pending)
        except EchoError:
            if self._tokens.get(key) is pending:
                del self._tokens[key]  # a later feed tries again
            raise

    async def _exchange_token(self, source: Source, feed: Feed, request: Request) -> str:
        """Send a token request and let the source read the answer (see :meth:`_token`).

        Raises:
            ParseError: no answer, or the source found no token in it.
        """
        outcome = await self.fetcher.fetch(
            request, source_kind=source.kind, allow_private=feed.allow_private
        )
        exchange = outcome.exchange
        if exchange is None:
            raise ParseError(
                f"{source.kind} token request failed: {outcome.error or 'no response'}",
                request.url,
            )
        return source.parse_token(feed, request, exchange)

    async def _parse(
        self,
        source: Source,
        feed: Feed,
        request: Request,
        exchange: Any,
        queue: deque[Request],
        errors: list[str],
    ) -> Sighting:
        if CONFIRM_WITHDRAWN in request.purpose:
            return _confirmation(feed, request, exchange)
        try:
            result = None
            if self._pool is not None:  # parsing is CPU work: keep it off the event loop
                result = await self._parse_in_pool(self._pool, feed, request, exchange)
            if result is None:
                result = source.parse(feed, request, exchange)
        except ParseError as exc:
            errors.append(str(exc))
            return Sighting(feed, request, exchange, None, str(exc))
        except Exception as exc:  # a parser bug fails this response alone, kept with the error
            log.warning("harvest.parser_failed", feed=feed.name, url=exchange.url, error=repr(exc))
            message = redact_text(f"{exchange.url}: parser failed: {type(exc).__name__}: {exc}")
            errors.append(message)
            return Sighting(feed, request, exchange, None, message)
        queue.extend(self._wanted(source, feed, result.follow))
        if source.document_window and exchange.status == 200 and not exchange.truncated:
            result = self._withdrawals(source, feed, request, result, queue)
        return _representable(Sighting(feed, request, exchange, result), errors)

    def _withdrawals(
        self,
        source: Source,
        feed: Feed,
        request: Request,
        result: ParseResult,
        queue: deque[Request],
    ) -> ParseResult:
        """Add a ``withdrawn`` tombstone per entry taken out of the feed document.

        The window rule (:func:`~echo_archive.pipeline.withdrawals.withdrawn`)
        compares this document with the feed's previous one (the operational
        ``feed_windows`` table; none for the first document or a new URL).
        Only items the archive holds in the active state get one; the link of
        each (at most :data:`~echo_archive.pipeline.withdrawals.MAX_CONFIRMATIONS`)
        is queued to be fetched once: 404 or 410 is then a deletion.
        """
        url = redact_url(request.url)  # the stored window's key holds no credential
        current = window_of(result.items)
        if not current:
            return result  # an empty document proves nothing; the old window stays
        if self._reader is None:
            self._reader = VaultState(self.writer)
        catalog = self._reader.read().catalog
        stored = HarvestState(catalog).window(feed.name, url)
        if stored is None:
            self._windows[feed.name] = (url, current)
            return result
        previous = [e for e in map(WindowEntry.from_json, stored) if e is not None]
        if previous == current:
            return result  # the same window: nothing withdrawn, nothing to store again
        self._windows[feed.name] = (url, current)
        found = withdrawn(previous, current)
        if not found:
            return result
        rows = known_many(catalog, {(source.kind, feed.name, w.entry.native_id) for w in found})
        tombstones: list[Tombstone] = []
        for gone in found:
            row = rows.get((source.kind, feed.name, gone.entry.native_id))
            if row is None or row.state != "active":
                continue  # never archived, or already withdrawn or deleted
            tombstones.append(
                Tombstone(source.kind, feed.name, gone.entry.native_id, gone.reason, withdrawn=True)
            )
            link = gone.entry.link
            if link is not None and len(tombstones) <= MAX_CONFIRMATIONS:
                queue.append(Request(url=link, purpose={CONFIRM_WITHDRAWN: gone.entry.native_id}))
        if not tombstones:
            return result
        return replace(result, tombstones=(*result.tombstones, *tombstones))

    def _wanted(self, source: Source, feed: Feed, follow: Sequence[Request]) -> list[Request]:
        """The follow-ups to send, in order.

        A follow-up marked :data:`~echo_archive.sources.base.IF_ARCHIVED` is
        kept only when ``feed`` already archived an item of that native id (one
        item-index query for the response); the others are all kept.
        """
        keys = {
            (source.kind, feed.name, str(r.purpose[IF_ARCHIVED]))
            for r in follow
            if IF_ARCHIVED in r.purpose
        }
        if not keys:
            return list(follow)
        if self._reader is None:
            self._reader = VaultState(self.writer)
        archived = known_many(self._reader.read().catalog, keys)
        return [
            r
            for r in follow
            if IF_ARCHIVED not in r.purpose
            or (source.kind, feed.name, str(r.purpose[IF_ARCHIVED])) in archived
        ]

    async def _parse_in_pool(
        self, pool: ProcessPoolExecutor, feed: Feed, request: Request, exchange: Any
    ) -> ParseResult | None:
        """Parse in a worker; None when the pool is broken (the caller parses here).

        The executor's future is shielded: an abort cancels this coroutine but
        never the queued future itself, since cancelling a queued future races
        the pool's bookkeeping when a worker dies (CPython 3.11 raises
        ``InvalidStateError`` in the executor's manager thread, which then
        leaves the other workers running and the process hanging at exit).
        A worker that dies (OOM killer, segfault) breaks the pool: this cycle
        parses the rest here; any other failure of the worker (not a
        :class:`ParseError`) is logged and the response parsed here.

        Raises:
            ParseError: the response is malformed (raised by the source in the worker).
        """
        loop = asyncio.get_running_loop()
        try:
            future = loop.run_in_executor(
                pool, _parse_in_worker, feed.source, feed, request, exchange
            )
        except RuntimeError as exc:  # BrokenProcessPool at submit, or shut down
            self._pool_broke(pool, exc)
            return None
        future.add_done_callback(_retrieve)  # an abandoned result raises no warning later
        try:
            return await asyncio.shield(future)
        except ParseError:
            raise
        except BrokenProcessPool as exc:
            self._pool_broke(pool, exc)
            return None
        except Exception as exc:  # the worker failed, not the response (pickling...)
            log.warning("harvest.parse_worker_failed", feed=feed.name, error=repr(exc))
            return None

    def _pool_broke(self, pool: ProcessPoolExecutor, exc: BaseException) -> None:
        if self._pool is pool:
            log.warning("harvest.parse_workers_failed", error=repr(exc))
            self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)

    async def _commit(self, pending: list[Sighting], report: FeedReport) -> None:
        """Archive ``pending`` on the writer (the batch is built holding the lock)."""
        if not pending:
            return
        counts, _ = await self.writer.submit_async(_commit_batch, list(pending))
        report.absorb(counts)


def _commit_batch(vault: Vault, sightings: list[Sighting]) -> tuple[BatchCounts, object]:
    """A writer job: commit one batch, ``logged_at`` the time it commits."""
    return commit_batch(vault, sightings, _now())


def _confirmation(feed: Feed, request: Request, exchange: Exchange) -> Sighting:
    """The sighting of a withdrawn entry's link: a tombstone when it answered 404 or 410.

    The answer is archived as a capture but not parsed (it is a web page, not
    a feed document): its ``parse_error`` says what it is, and it counts as
    no parse error (:attr:`~echo_archive.pipeline.batch.Sighting.parsed`).
    """
    native_id = str(request.purpose[CONFIRM_WITHDRAWN])
    reason = confirmation_reason(exchange.status, redact_url(exchange.url))
    tombstones = () if reason is None else (Tombstone(feed.source, feed.name, native_id, reason),)
    note = (
        f"not parsed: the link of item {native_id!r}, withdrawn from the feed, "
        f"fetched once to confirm (HTTP {exchange.status})"
    )
    return Sighting(feed, request, exchange, ParseResult(tombstones=tombstones), note, parsed=False)


def _put_window(vault: Vault, feed: str, url: str, window: list[WindowEntry]) -> None:
    """A writer job: keep the window of ``feed``'s last parsed document."""
    HarvestState(vault.catalog).put_window(feed, url, [e.to_json() for e in window], _now())


def _put_feed_run(vault: Vault, feed: str, started_epoch: float, poll: float | None) -> None:
    """A writer job: record when ``feed``'s cycle started."""
    HarvestState(vault.catalog).put_feed_run(feed, started_epoch, poll)


def _save_report(vault: Vault, report: HarvestReport) -> None:
    """A writer job: the checkpoint size covering the cycle, then the report, saved."""
    report.checkpoint_size = vault.size
    HarvestState(vault.catalog).save_report(report.started_at, report.to_json())


def _representable(sighting: Sighting, errors: list[str]) -> Sighting:
    """The sighting with its items' canonical JSON computed, without the items JCS cannot hold.

    An item whose content or counters RFC 8785 cannot represent (an integer
    beyond 2^53...) would fail the whole commit; it is left out here, named
    in ``errors`` and in the capture's ``parse_warning``, and the rest of the
    response is archived (DESIGN.md invariant 7).
    """
    if sighting.result is None:
        return sighting
    kept: list[Item] = []
    contents: list[bytes] = []
    dropped: list[str] = []
    for item in sighting.result.items:
        try:
            content = content_json(item)
            canonical_json(dict(item.counters))
        except EntryError as exc:
            dropped.append(f"item {item.native_id!r} left out: {exc}")
            continue
        kept.append(item)
        contents.append(content)
    if not dropped:
        return replace(sighting, contents=tuple(contents))
    note = redact_text(f"{sighting.exchange.url}: {len(dropped)} item(s) left out; {dropped[0]}")
    errors.append(note)
    warning = f"{sighting.result.warning}; {note}" if sighting.result.warning else note
    result = replace(sighting.result, items=tuple(kept), warning=warning)
    return replace(sighting, result=result, contents=tuple(contents))


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a finished future's exception as retrieved (its awaiter may be gone)."""
    if not future.cancelled():
        future.exception()


def _parse_in_worker(kind: str, feed: Feed, request: Request, exchange: Any) -> ParseResult:
    """Parse in a worker process with the registry's source for ``kind``."""
    return SOURCES[kind].parse(feed, request, exchange)
