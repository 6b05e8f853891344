"""The scheduler's persisted state and its rules: when each feed is next due.

Operational, not derived (DESIGN.md invariant 8): the ``schedules`` table of
the catalog holds, per feed, the POSIX time it is next due (``next_epoch``),
its last run (start, end, outcome), its consecutive failures, whether it is
paused and by how much its interval is stretched (both set by the supervisor's
interventions or an operator). Losing it loses no evidence: the next service
start falls back on ``feed_runs`` (when each feed's last successful cycle
started) and runs what is due.

The rules, one place (:func:`next_due`):

* **Interval.** After a run that started at ``start``, a feed is next due at
  ``start + base + jitter``, where ``base = max(interval × stretch, the poll
  interval its source asked for)`` (GitHub ``X-Poll-Interval``).
* **Backoff.** After ``k`` consecutive failed runs (``k >= 1``), ``base`` is
  multiplied by ``min(2 ** (k - 1), MAX_BACKOFF)``: the first failure retries
  after one interval (the fetch engine has already retried within the run,
  with full jitter), then 2×, 4×, 8×. A success resets ``k``.
* **Jitter.** ``jitter = min(base × JITTER_FRACTION, MAX_JITTER) × u`` with
  ``u`` in [0, 1) drawn from SHA-256 of the feed name and its run count:
  deterministic (a restart computes the same time), different per feed and
  per run (feeds added together spread out), never earlier than the interval
  (politeness). changedetection.io spreads its watches the same way.
* **Persistent** (systemd timers' ``Persistent=true``): ``next_epoch`` is
  written when a run ends. A restart neither skips nor doubles runs: a feed
  whose time passed while the service was down is due at once and runs once
  (not once per missed interval); a run cut short by a crash has no end
  recorded, so its feed is due again and its run is redone once.
* **Order.** Due feeds start most overdue first; a "harvest now" request jumps
  the queue; one run per feed at a time; at most ``max_concurrent`` at once.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Final

from echo_archive.vault.catalog import Catalog
from echo_archive.vault.entry import format_timestamp

__all__ = [
    "JITTER_FRACTION",
    "MAX_BACKOFF",
    "MAX_JITTER",
    "SCHEDULE_DDL",
    "FeedSchedule",
    "ScheduleStore",
    "due_order",
    "finished",
    "jitter_fraction",
    "next_due",
]

JITTER_FRACTION: Final = 0.1
"""Jitter is at most this fraction of a feed's (stretched, backed-off) interval."""

MAX_JITTER: Final = 300.0
"""Jitter never exceeds this many seconds, however long the interval."""

MAX_BACKOFF: Final = 8
"""A failing feed's interval is multiplied by at most this factor."""

OUTCOMES: Final = frozenset({"harvested", "failed", "skipped", "timeout", "aborted"})
"""How a run ended: the harvest report's status, or ``timeout`` / ``aborted`` (cut short)."""

SCHEDULE_DDL: Final = """
CREATE TABLE IF NOT EXISTS schedules(
    feed TEXT PRIMARY KEY,
    next_epoch REAL NOT NULL,
    last_start REAL,
    last_end REAL,
    last_outcome TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    runs INTEGER NOT NULL DEFAULT 0,
    paused INTEGER NOT NULL DEFAULT 0,
    stretch REAL NOT NULL DEFAULT 1.0,
    updated_at TEXT NOT NULL
) WITHOUT ROWID
"""


@dataclass(frozen=True, slots=True)
class FeedSchedule:
    """One feed's row of ``schedules``.

    Attributes:
        feed: the feed's name.
        next_epoch: POSIX seconds when it is next due.
        last_start: POSIX seconds its last run started, or None.
        last_end: POSIX seconds its last run ended, or None (never ran, or
            the last run was cut short by a crash).
        last_outcome: one of :data:`OUTCOMES`, or None.
        failures: consecutive failed runs (0 after a success).
        runs: completed runs so far (the jitter's counter).
        paused: True while the feed is paused (it is never due).
        stretch: the interval's multiplier (>= 1; an intervention stretches it).
    """

    feed: str
    next_epoch: float
    last_start: float | None = None
    last_end: float | None = None
    last_outcome: str | None = None
    failures: int = 0
    runs: int = 0
    paused: bool = False
    stretch: float = 1.0

    def to_json(self) -> dict[str, object]:
        """The row with its times also as RFC 3339 UTC (``next_run``, ``last_run``)."""
        return {
            "feed": self.feed,
            "next_epoch": self.next_epoch,
            "next_run": _rfc3339(self.next_epoch),
            "last_start": self.last_start,
            "last_run": _rfc3339(self.last_start),
            "last_end": self.last_end,
            "last_outcome": self.last_outcome,
            "failures": self.failures,
            "runs": self.runs,
            "paused": self.paused,
            "stretch": self.stretch,
        }


def _rfc3339(epoch: float | None) -> str | None:
    return None if epoch is None else format_timestamp(int(epoch * 1e9))


def jitter_fraction(feed: str, run: int) -> float:
    """A number in [0, 1) from SHA-256 of ``feed`` and ``run``: the same on every restart."""
    digest = hashlib.sha256(f"{feed}\x00{run}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def next_due(
    feed: str,
    *,
    interval: float,
    start: float,
    outcome: str,
    failures: int,
    runs: int,
    stretch: float = 1.0,
    poll_interval: float | None = None,
) -> float:
    """POSIX seconds when ``feed`` is next due after a run (the module's rules).

    Args:
        feed: the feed's name (seeds the jitter).
        interval: its configured interval, seconds (> 0).
        start: POSIX seconds the run started.
        outcome: how it ended (:data:`OUTCOMES`).
        failures: consecutive failures *including* this run's (0 on success).
        runs: completed runs including this one (seeds the jitter).
        stretch: the interval's multiplier (>= 1).
        poll_interval: the poll interval its source asked for, seconds, or None.

    Raises:
        ValueError: ``interval`` not positive, ``stretch`` below 1, or an
            unknown ``outcome``.
    """
    if interval <= 0:
        raise ValueError(f"interval {interval}: must be positive seconds")
    if stretch < 1:
        raise ValueError(f"stretch {stretch}: must be at least 1")
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome {outcome!r}: not one of {sorted(OUTCOMES)}")
    base = max(interval * stretch, poll_interval or 0.0)
    if failures > 0:
        base *= min(2 ** (failures - 1), MAX_BACKOFF)
    return start + base + min(base * JITTER_FRACTION, MAX_JITTER) * jitter_fraction(feed, runs)


def finished(
    row: FeedSchedule,
    *,
    interval: float,
    start: float,
    end: float,
    outcome: str,
    poll_interval: float | None = None,
) -> FeedSchedule:
    """``row`` after a run that started at ``start`` and ended at ``end`` with ``outcome``.

    A run cut short by a stop (``aborted``) is not the feed's failure: the
    feed is due again at once (at the next start) and its backoff is
    unchanged. Otherwise failures count up (or reset on ``harvested``), the
    run count grows and the next run follows :func:`next_due`, never before
    ``end``.

    Raises:
        ValueError: as :func:`next_due`.
    """
    if outcome == "aborted":
        return replace(row, next_epoch=start, last_start=start, last_end=end, last_outcome=outcome)
    failures = 0 if outcome == "harvested" else row.failures + 1
    runs = row.runs + 1
    due = next_due(
        row.feed,
        interval=interval,
        start=start,
        outcome=outcome,
        failures=failures,
        runs=runs,
        stretch=row.stretch,
        poll_interval=poll_interval,
    )
    return replace(
        row,
        next_epoch=max(due, end),
        last_start=start,
        last_end=end,
        last_outcome=outcome,
        failures=failures,
        runs=runs,
    )


def due_order(
    schedules: Iterable[FeedSchedule], now: float, *, running: Iterable[str] = ()
) -> list[str]:
    """Feeds due at ``now``, most overdue first; paused and running feeds left out.

    O(n) over the schedules plus a sort of the due ones (10,000 feeds take a
    few milliseconds: ``make bench`` measures it).
    """
    busy = set(running)
    due = [
        (s.next_epoch, s.feed)
        for s in schedules
        if s.next_epoch <= now and not s.paused and s.feed not in busy
    ]
    due.sort()
    return [feed for _, feed in due]


class ScheduleStore:
    """Reads and writes the ``schedules`` table of one catalog.

    Args:
        catalog: the vault's catalog (the writer's, to write; a reader's
            catalog of a vault without the table reads no rows).

    Raises:
        StorageError: a writer's catalog cannot create the table.
    """

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        if not catalog.readonly and "schedules" not in catalog.tables():
            catalog.create_tables(SCHEDULE_DDL)
        self._present = "schedules" in catalog.tables()

    def all(self) -> dict[str, FeedSchedule]:
        """Every stored schedule, by feed name."""
        if not self._present:
            return {}
        rows = self._catalog.query(
            "SELECT feed, next_epoch, last_start, last_end, last_outcome, failures, runs, "
            "paused, stretch FROM schedules"
        )
        return {
            str(r[0]): FeedSchedule(
                feed=str(r[0]),
                next_epoch=float(r[1]),
                last_start=None if r[2] is None else float(r[2]),
                last_end=None if r[3] is None else float(r[3]),
                last_outcome=None if r[4] is None else str(r[4]),
                failures=int(r[5]),
                runs=int(r[6]),
                paused=bool(r[7]),
                stretch=float(r[8]),
            )
            for r in rows
        }

    def put(self, schedule: FeedSchedule, now: float | None = None) -> None:
        """Store ``schedule`` (insert or replace; its own transaction)."""
        self.put_many([schedule], now, what=f"storing the schedule of feed {schedule.feed}")

    def put_many(
        self,
        schedules: Iterable[FeedSchedule],
        now: float | None = None,
        *,
        what: str = "storing schedules",
    ) -> None:
        """Store every row of ``schedules`` (insert or replace) in one transaction.

        Args:
            schedules: the rows.
            now: POSIX seconds for ``updated_at`` (default: the clock).
            what: what the transaction does, for error messages.

        Raises:
            StorageError: the transaction failed (nothing of it is stored).
        """
        stamp = format_timestamp(int((time.time() if now is None else now) * 1e9))
        rows = (
            (
                s.feed,
                s.next_epoch,
                s.last_start,
                s.last_end,
                s.last_outcome,
                s.failures,
                s.runs,
                int(s.paused),
                s.stretch,
                stamp,
            )
            for s in schedules
        )
        with self._catalog.transaction(what):
            self._catalog.executemany(
                "INSERT OR REPLACE INTO schedules(feed, next_epoch, last_start, last_end, "
                "last_outcome, failures, runs, paused, stretch, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def start(self, feed: str, start: float, current: FeedSchedule) -> FeedSchedule:
        """Record that ``feed``'s run started at ``start`` (its end unknown until it ends)."""
        row = replace(current, last_start=start, last_end=None)
        self.put(row, start)
        return row

    def set_paused(self, feed: str, paused: bool, current: FeedSchedule) -> FeedSchedule:
        """Pause or resume ``feed``; returns the stored row."""
        row = replace(current, paused=paused)
        self.put(row)
        return row

    def set_stretch(self, feed: str, stretch: float, current: FeedSchedule) -> FeedSchedule:
        """Stretch ``feed``'s interval by ``stretch`` (>= 1); returns the stored row.

        Raises:
            ValueError: ``stretch`` below 1.
        """
        if stretch < 1:
            raise ValueError(f"stretch {stretch}: must be at least 1")
        row = replace(current, stretch=stretch)
        self.put(row)
        return row


def initial(
    feed: str,
    interval: float,
    feed_runs: Mapping[str, tuple[float, float | None]],
    now: float,
) -> FeedSchedule:
    """The schedule of a feed the service has not scheduled yet.

    Due at once unless a harvest (``echoctl harvest``) ran it within its
    interval: then due one interval (or the source's poll interval) after
    that run started.
    """
    last = feed_runs.get(feed)
    if last is None:
        return FeedSchedule(feed, next_epoch=now)
    started, poll = last
    return FeedSchedule(
        feed, next_epoch=min(now, started) + max(interval, poll or 0.0), last_start=started
    )
