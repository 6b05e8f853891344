"""``scheduler``: deciding what is due among 10,000 feeds (``Scheduler.due`` / ``next_wake``).

A fresh vault's ``schedules`` table gets :data:`FEEDS` rows (one transaction,
:meth:`ScheduleStore.put_many`): intervals from 5 minutes to a day, each feed
having last run at a time spread over its interval, so that at the
benchmark's time about :data:`DUE_SHARE` of them are due. A real
:class:`Scheduler` loads them through the vault's writer (a
:class:`ManualClock` holds the time still; nothing runs) and then each tick's
decision is timed:

* ``due(now)``: the feeds due now, most overdue first (what ``tick_once``
  starts from);
* ``next_wake()``: when the next idle feed is due (how long the loop sleeps);
* the two together: what one loop iteration decides.

Each is called :data:`WARMUP` times untimed, then :data:`CALLS` times timed,
one at a time; the figures are the median and p99 of the wall time (target
< 10 ms), and beside them the p99 of the CPU time the calls took (the
thread's clock): on a loaded 2-core machine a call that waits for a core
shows in the wall p99 and not in the CPU p99.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

from echo_archive.service.schedule import FeedSchedule, ScheduleStore
from echo_archive.service.scheduler import ManualClock, RunResult, Scheduler, SchedulerOptions
from echo_archive.sources.base import Feed
from echo_archive.vault.vault import Vault
from echo_archive.vault.writer import VaultWriter
from workload import Result, percentile, say

FEEDS = 10_000
DUE_SHARE = 0.1
WARMUP = 50
CALLS = 1000
TARGET_MS = 10.0
T0 = 1_800_000_000.0
INTERVALS = (300.0, 900.0, 3600.0, 6 * 3600.0, 86_400.0)


def _rows() -> tuple[list[Feed], list[FeedSchedule]]:
    feeds: list[Feed] = []
    rows: list[FeedSchedule] = []
    for i in range(FEEDS):
        interval = INTERVALS[i % len(INTERVALS)]
        name = f"feed-{i:05d}"
        feeds.append(Feed(name, "rss", {"url": f"http://127.0.0.1:9/{i}.xml"}, interval))
        # a fraction DUE_SHARE of each interval class is overdue at T0, the rest spread ahead
        phase = ((i * 7919) % FEEDS) / FEEDS
        next_epoch = T0 - interval * DUE_SHARE + interval * phase
        start = next_epoch - interval
        rows.append(
            FeedSchedule(
                name,
                next_epoch=next_epoch,
                last_start=start,
                last_end=start + 1.0,
                last_outcome="harvested",
                runs=1 + i % 50,
                paused=i % 97 == 0,
            )
        )
    return feeds, rows


async def _never(feed: Feed, timeout: float) -> RunResult:
    raise AssertionError("the benchmark starts no run")


def _time_ms(fn: object, calls: int) -> tuple[list[float], list[float]]:
    """Wall and CPU (this thread's) milliseconds of each of ``calls`` calls of ``fn``."""
    assert callable(fn)
    for _ in range(WARMUP):
        fn()
    wall, cpu = [], []
    for _ in range(calls):
        t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        fn()
        c1, t1 = time.thread_time_ns(), time.perf_counter_ns()
        wall.append((t1 - t0) / 1e6)
        cpu.append((c1 - c0) / 1e6)
    return wall, cpu


def run(out: Path) -> Result:
    """Time the scheduler's decision over :data:`FEEDS` stored schedules."""
    result = Result("scheduler")
    path = out / "scheduler" / "vault"
    shutil.rmtree(path.parent, ignore_errors=True)
    path.parent.mkdir(parents=True)
    Vault.create(path).close()
    feeds, rows = _rows()
    say(f"scheduler: {FEEDS:,} feeds in {path}/catalog.sqlite, ~{DUE_SHARE:.0%} due")
    with VaultWriter.open(path) as writer:
        t0 = time.perf_counter()
        writer.submit(lambda v: ScheduleStore(v.catalog).put_many(rows, T0))
        store_s = time.perf_counter() - t0

        Timings = tuple[list[float], list[float]]

        async def main() -> tuple[float, Timings, Timings, Timings, int]:
            sched = Scheduler(
                writer, feeds, _never, options=SchedulerOptions(), clock=ManualClock(T0)
            )
            t1 = time.perf_counter()
            await sched.load()
            load_s = time.perf_counter() - t1
            due = _time_ms(sched.due, CALLS)
            wake = _time_ms(sched.next_wake, CALLS)
            both = _time_ms(lambda: (sched.due(), sched.next_wake()), CALLS)
            return load_s, due, wake, both, len(sched.due())

        load_s, due, wake, both, due_now = asyncio.run(main())
    shutil.rmtree(path.parent, ignore_errors=True)
    for label, (wall, cpu) in (
        ("due()", due),
        ("next_wake()", wake),
        ("due() + next_wake()", both),
    ):
        result.add(f"{label} p50", percentile(wall, 50), "ms", below=TARGET_MS)
        result.add(f"{label} p99", percentile(wall, 99), "ms", below=TARGET_MS)
        result.add(f"{label} p99, CPU time", percentile(cpu, 99), "ms")
    result.add("loading 10,000 schedules (Scheduler.load)", load_s * 1000, "ms")
    result.notes.append(
        f"{FEEDS:,} feeds, {due_now:,} due at the benchmark's time ({FEEDS // 97 + 1} paused); "
        f"storing the rows took {store_s * 1000:.0f} ms in one transaction, loading them "
        f"{load_s * 1000:.0f} ms (once per start or reload, not per tick)"
    )
    result.details = {
        "feeds": FEEDS,
        "due": due_now,
        "calls": CALLS,
        "store_ms": store_s * 1000,
        "load_ms": load_s * 1000,
    }
    return result
