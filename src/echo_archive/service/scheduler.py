"""The scheduler: runs each feed when it is due, one run per feed, under a timeout and a cap.

A tick looks at the schedules (:mod:`echo_archive.service.schedule`), starts
the due feeds most overdue first (a "harvest now" request first of all) while
fewer than ``max_concurrent`` runs are in flight, and sleeps until the next
feed is due, a run ends or a request arrives, at most ``tick`` seconds. Each
run is a task of its own with a per-feed timeout: one stuck feed never holds
the others back (Huginn's "one stuck job blocking all" is what this avoids),
and a run that raises fails that feed alone; the loop itself never dies of a
run's error (Huginn's silent scheduler death). Every schedule write goes
through the vault's writer.

The clock is injected (:class:`Clock`): tests run days of schedule in
seconds with :class:`ManualClock`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

import structlog

from echo_archive.events import EventBus
from echo_archive.harvest.state import HarvestState
from echo_archive.service.schedule import (
    FeedSchedule,
    ScheduleStore,
    due_order,
    finished,
    initial,
)
from echo_archive.sources.base import Feed
from echo_archive.vault.vault import Vault
from echo_archive.vault.writer import VaultWriter

__all__ = [
    "Clock",
    "ManualClock",
    "RunResult",
    "Scheduler",
    "SchedulerOptions",
    "SystemClock",
]

log = structlog.get_logger("echo_archive.service.scheduler")


class Clock(Protocol):
    """Where the scheduler reads the time and waits."""

    def time(self) -> float:
        """POSIX seconds now."""
        ...

    async def wait(self, event: asyncio.Event, timeout: float) -> None:
        """Return when ``event`` is set or ``timeout`` seconds have passed."""
        ...


class SystemClock:
    """The real clock (``time.time``) and real waits."""

    def time(self) -> float:
        """POSIX seconds now."""
        return time.time()

    async def wait(self, event: asyncio.Event, timeout: float) -> None:
        """Return when ``event`` is set or ``timeout`` seconds have passed."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), max(0.0, timeout))


class ManualClock:
    """A virtual clock for tests: a wait that nothing ends advances time by its timeout.

    Virtual time moves only in :meth:`wait` (and :meth:`advance`). Before it
    moves, the wait gives whatever is in flight (a run's writer jobs, on the
    writer thread) up to ``settle`` real seconds to end it: a run ending sets
    the scheduler's event, and time does not run away from work in progress.

    Args:
        start: the starting POSIX seconds.
        settle: real seconds a wait lets work in flight end it first.

    Attributes:
        stop_at: when set, a wait never moves time past it (a test's horizon:
            the scheduler then idles there until stopped).
    """

    def __init__(self, start: float, settle: float = 0.02) -> None:
        self.now = start
        self.settle = settle
        self.stop_at: float | None = None

    def time(self) -> float:
        """The virtual POSIX seconds."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the virtual time forward."""
        self.now += seconds

    async def wait(self, event: asyncio.Event, timeout: float) -> None:
        """Return when ``event`` is set within ``settle`` real seconds; else advance ``timeout``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), self.settle)
        if not event.is_set():
            target = self.now + max(0.0, timeout)
            self.now = target if self.stop_at is None else max(self.now, min(target, self.stop_at))


@dataclass(frozen=True, slots=True)
class RunResult:
    """How one feed run ended.

    Attributes:
        outcome: ``harvested``, ``failed``, ``skipped``, ``timeout`` or ``aborted``.
        poll_interval: the poll interval the source asked for, seconds, or None.
        new, versions, tombstones, captures, parse_errors: what the run archived.
        error: the failure in plain words (redacted), or None.
    """

    outcome: str
    poll_interval: float | None = None
    new: int = 0
    versions: int = 0
    tombstones: int = 0
    captures: int = 0
    parse_errors: int = 0
    error: str | None = None


RunFeed = Callable[[Feed, float], Awaitable[RunResult]]
"""Runs one feed once with a timeout (seconds) and says how it ended."""


COMPLETED_KEPT = 10_000
"""How many finished runs :attr:`Scheduler.completed` remembers (the oldest are dropped)."""


@dataclass(slots=True)
class SchedulerOptions:
    """How the scheduler runs feeds (``[service]`` of ``echo.toml``).

    Attributes:
        max_concurrent: feeds in flight at once (>= 1).
        feed_timeout: seconds one feed run may take before it is cut short.
        tick: the longest sleep between two looks at the schedules, seconds.
    """

    max_concurrent: int = 4
    feed_timeout: float = 600.0
    tick: float = 30.0


@dataclass(slots=True)
class _State:
    schedules: dict[str, FeedSchedule] = field(default_factory=dict)
    running: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    urgent: list[str] = field(default_factory=list)


class Scheduler:
    """Run each feed when due (see the module), until :meth:`stop`.

    Args:
        writer: the vault's writer (schedules are written through it).
        feeds: the feeds to schedule (enabled ones; replaced by :meth:`set_feeds`).
        run_feed: runs one feed (the service's harvest; tests inject one).
        options: the caps and timeouts.
        clock: the clock (default: :class:`SystemClock`).
        bus: where ``feed_run``, ``feed_failed`` and ``feed_recovered`` events go.
    """

    def __init__(
        self,
        writer: VaultWriter,
        feeds: Sequence[Feed],
        run_feed: RunFeed,
        *,
        options: SchedulerOptions | None = None,
        clock: Clock | None = None,
        bus: EventBus | None = None,
    ) -> None:
        self.writer = writer
        self.run_feed = run_feed
        self.options = options or SchedulerOptions()
        self.clock: Clock = clock or SystemClock()
        self.bus = bus or EventBus()
        self._feeds: dict[str, Feed] = {}
        self._state = _State()
        self._wake = asyncio.Event()
        self._stopping = False
        self.paused_all = False
        """While True no run starts (disk critical); runs in flight finish."""
        self.ticks = 0
        """Looks at the schedules so far (the loop is alive while it grows)."""
        self.last_tick: float | None = None
        """POSIX seconds of the last look at the schedules."""
        self.completed: deque[tuple[str, float, str]] = deque(maxlen=COMPLETED_KEPT)
        """``(feed, start, outcome)`` of the last :data:`COMPLETED_KEPT` runs finished, in order.

        Bounded: a service runs for months (the soak benchmark watches its memory).
        """
        self._loaded = False
        self._pending_feeds = list(feeds)

    # ------------------------------------------------------------------ reading
    @property
    def schedules(self) -> Mapping[str, FeedSchedule]:
        """The schedules of the configured feeds, by name (a snapshot)."""
        return dict(self._state.schedules)

    @property
    def running(self) -> list[str]:
        """Feeds with a run in flight."""
        return sorted(self._state.running)

    def due(self, now: float | None = None) -> list[str]:
        """Feeds due now (or at ``now``), most overdue first, not counting running ones."""
        at = self.clock.time() if now is None else now
        return due_order(self._state.schedules.values(), at, running=self._state.running)

    def next_wake(self) -> float | None:
        """POSIX seconds when the next idle, unpaused feed is due, or None."""
        times = [
            s.next_epoch
            for s in self._state.schedules.values()
            if not s.paused and s.feed not in self._state.running
        ]
        return min(times) if times else None

    # ------------------------------------------------------------------ changing
    async def load(self) -> None:
        """Read the stored schedules (once, before the first tick)."""
        await self.set_feeds(self._pending_feeds)

    async def set_feeds(self, feeds: Sequence[Feed]) -> None:
        """Schedule exactly ``feeds`` (a reload): new ones get a first schedule, gone ones drop.

        A new feed is due at once, unless ``echoctl harvest`` ran it within
        its interval (see :func:`~echo_archive.service.schedule.initial`).
        """
        stored, runs, reports = await self.writer.submit_async(_read_state)
        now = self.clock.time()
        self._feeds = {f.name: f for f in feeds}
        schedules: dict[str, FeedSchedule] = {}
        for feed in feeds:
            current = self._state.schedules.get(feed.name)
            if current is None:
                current = stored.get(feed.name)
                if current is not None and current.last_end is None:
                    current = _reconcile(feed, current, reports)
                    await self.writer.submit_async(_put, current)
            if current is None:
                current = initial(feed.name, feed.interval, runs, now)
                await self.writer.submit_async(_put, current)
            schedules[feed.name] = current
        self._state.schedules = schedules
        self._state.urgent = [n for n in self._state.urgent if n in self._feeds]
        self._loaded = True
        self._wake.set()

    def harvest_now(self, feed: str) -> bool:
        """Run ``feed`` next, ahead of the due ones; False when it is not scheduled.

        A feed already running is not started twice: the request is kept and
        served when that run ends.
        """
        if feed not in self._feeds:
            return False
        if feed not in self._state.urgent:
            self._state.urgent.append(feed)
        self._wake.set()
        return True

    async def set_paused(self, feed: str, paused: bool) -> FeedSchedule:
        """Pause or resume one feed (persisted); returns its schedule.

        Raises:
            KeyError: ``feed`` is not scheduled.
        """
        row = replace(self._state.schedules[feed], paused=paused)
        await self.writer.submit_async(_put, row)
        self._state.schedules[feed] = row
        self._wake.set()
        return row

    async def set_stretch(self, feed: str, stretch: float) -> FeedSchedule:
        """Stretch one feed's interval by ``stretch`` (>= 1, persisted).

        Raises:
            KeyError: ``feed`` is not scheduled.
            ValueError: ``stretch`` below 1.
        """
        if stretch < 1:
            raise ValueError(f"stretch {stretch}: must be at least 1")
        row = replace(self._state.schedules[feed], stretch=stretch)
        await self.writer.submit_async(_put, row)
        self._state.schedules[feed] = row
        return row

    def stop(self) -> None:
        """Start no new run; :meth:`run` returns once the runs in flight end (see :meth:`drain`)."""
        self._stopping = True
        self._wake.set()

    def wake(self) -> None:
        """Look at the schedules now (after a change made from outside)."""
        self._wake.set()

    # ------------------------------------------------------------------ running
    async def run(self) -> None:
        """Tick until :meth:`stop`; then wait for the runs in flight.

        Never raises for a run's failure (logged, and that feed's schedule
        records it); a failure to write the schedule is logged and retried
        at the next tick.
        """
        if not self._loaded:
            await self.load()
        while not self._stopping:
            self._wake.clear()
            try:
                self.tick_once()
            except Exception as exc:  # the loop never dies silently
                log.error("scheduler.tick_failed", error=repr(exc))
            wake = self.next_wake()
            now = self.clock.time()
            sleep = self.options.tick if wake is None else min(self.options.tick, wake - now)
            if self._state.urgent and len(self._state.running) < self.options.max_concurrent:
                sleep = 0.0
            await self.clock.wait(self._wake, max(0.0, sleep))
        await self.drain()

    def tick_once(self) -> list[str]:
        """Start what is due now, within the cap; returns the feeds started."""
        self.ticks += 1
        now = self.clock.time()
        self.last_tick = now
        if self.paused_all or self._stopping:
            return []
        started: list[str] = []
        urgent = [n for n in self._state.urgent if n not in self._state.running]
        for name in [*urgent, *self.due(now)]:
            if len(self._state.running) >= self.options.max_concurrent:
                break
            if name in self._state.running or name not in self._feeds:
                continue
            if name in self._state.urgent:
                self._state.urgent.remove(name)
            task = asyncio.ensure_future(self._run_one(self._feeds[name], now))
            self._state.running[name] = task
            started.append(name)
        return started

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for the runs in flight; after ``timeout`` seconds cancel the rest and wait."""
        tasks = list(self._state.running.values())
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)

    async def _run_one(self, feed: Feed, start: float) -> None:
        current = self._state.schedules[feed.name]
        try:
            current = replace(current, last_start=start, last_end=None)
            await self.writer.submit_async(_put, current)
            self.bus.emit("feed_run", feed=feed.name, phase="started", at_epoch=start)
            try:
                result = await self.run_feed(feed, self.options.feed_timeout)
            except asyncio.CancelledError:
                result = RunResult("aborted", error="aborted: the service stopped")
                raise
            except Exception as exc:  # a run's bug fails that feed alone
                log.error("scheduler.run_failed", feed=feed.name, error=repr(exc))
                result = RunResult("failed", error=f"internal error: {type(exc).__name__}")
            await self._finish(feed, current, start, result)
        except asyncio.CancelledError:
            # Cut short by a stop: the run's end is not recorded, so the feed
            # stays due and its run is redone once at the next start.
            raise
        except Exception as exc:
            log.error("scheduler.schedule_write_failed", feed=feed.name, error=repr(exc))
        finally:
            self._state.running.pop(feed.name, None)
            self._wake.set()

    async def _finish(
        self, feed: Feed, current: FeedSchedule, start: float, result: RunResult
    ) -> None:
        ok = result.outcome == "harvested"
        end = self.clock.time()
        row = finished(
            self._state.schedules.get(feed.name, current),
            interval=feed.interval,
            start=start,
            end=end,
            outcome=result.outcome,
            poll_interval=result.poll_interval,
        )
        failures = row.failures
        await self.writer.submit_async(_put, row)
        if feed.name in self._feeds:
            self._state.schedules[feed.name] = row
        self.completed.append((feed.name, start, result.outcome))
        if result.outcome == "aborted":
            self.bus.emit("feed_run", feed=feed.name, phase="finished", outcome="aborted")
            return
        self.bus.emit(
            "feed_run",
            feed=feed.name,
            phase="finished",
            outcome=result.outcome,
            new=result.new,
            versions=result.versions,
            tombstones=result.tombstones,
            captures=result.captures,
            parse_errors=result.parse_errors,
            seconds=end - start,
            next_epoch=row.next_epoch,
        )
        if not ok:
            self.bus.emit(
                "feed_failed",
                feed=feed.name,
                outcome=result.outcome,
                failures=failures,
                error=result.error,
            )
        elif current.failures > 0:
            self.bus.emit("feed_recovered", feed=feed.name, after_failures=current.failures)


RECONCILE_REPORTS = 200
"""How many of the latest saved reports a start reads to finish runs a crash cut off."""


def _read_state(
    vault: Vault,
) -> tuple[
    dict[str, FeedSchedule],
    dict[str, tuple[float, float | None]],
    list[tuple[float, float, dict[str, Any]]],
]:
    """A writer job: the stored schedules, ``feed_runs`` and the latest reports' feeds.

    The reports come as ``(started epoch, finished epoch, feed report)``, one
    per feed of each of the :data:`RECONCILE_REPORTS` latest saved reports.
    """
    state = HarvestState(vault.catalog)
    reports: list[tuple[float, float, dict[str, Any]]] = []
    for report_id, _started in state.reports(limit=RECONCILE_REPORTS):
        doc = state.report(report_id) or {}
        began, ended = _epoch(doc.get("started_at")), _epoch(doc.get("finished_at"))
        if began is None or ended is None:
            continue
        reports.extend((began, ended, f) for f in doc.get("feeds", []) if isinstance(f, dict))
    return ScheduleStore(vault.catalog).all(), state.feed_runs(), reports


def _epoch(text: object) -> float | None:
    """An RFC 3339 UTC time of a saved report as POSIX seconds, or None."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _reconcile(
    feed: Feed, row: FeedSchedule, reports: list[tuple[float, float, dict[str, Any]]]
) -> FeedSchedule:
    """A run whose end was never recorded: finished, if its report was saved, else due.

    A crash between the save of a run's report and the write of its
    schedule leaves a row with a start and no end although the run
    completed: the report (started at or after the row's start) says how it
    ended, and the row is finished from it, so the run is not done twice.
    Without such a report the run was cut short: the row stays due.
    """
    if row.last_start is None:
        return row
    for began, ended, doc in sorted(reports, key=lambda r: r[0]):
        if doc.get("name") != feed.name or began < row.last_start:
            continue
        outcome = doc.get("status")
        if outcome not in ("harvested", "failed", "skipped"):
            break
        poll = doc.get("poll_interval")
        return finished(
            row,
            interval=feed.interval,
            start=row.last_start,
            end=ended,
            outcome=str(outcome),
            poll_interval=float(poll) if isinstance(poll, int | float) else None,
        )
    return row


def _put(vault: Vault, row: FeedSchedule) -> None:
    """A writer job: store one schedule row."""
    ScheduleStore(vault.catalog).put(row)
