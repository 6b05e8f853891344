"""The scheduler: its rules, its persisted state, and days of schedule on a virtual clock.

The runs are injected (a function that says how a run ended, after some
virtual seconds); the schedules live in a real vault's catalog, written
through its real writer, and a "restart" is a new scheduler over the same
vault. The live service (real harvests, real signals) is tests/test_service.py.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from echo_archive.harvest.state import HarvestState
from echo_archive.service import scheduler as scheduler_module
from echo_archive.service.schedule import (
    JITTER_FRACTION,
    MAX_BACKOFF,
    MAX_JITTER,
    FeedSchedule,
    ScheduleStore,
    due_order,
    initial,
    jitter_fraction,
    next_due,
)
from echo_archive.service.scheduler import ManualClock, RunResult, Scheduler, SchedulerOptions
from echo_archive.sources.base import Feed
from echo_archive.vault.vault import Vault
from echo_archive.vault.writer import VaultWriter

T0 = 1_800_000_000.0
HOUR = 3600.0
DAY = 86_400.0


def feed(name: str, interval: float = HOUR) -> Feed:
    return Feed(name=name, source="rss", params={"url": "http://127.0.0.1:9/x"}, interval=interval)


# ------------------------------------------------------------------ rules
def test_next_due_interval_jitter_backoff_and_poll() -> None:
    ok = next_due("a", interval=HOUR, start=T0, outcome="harvested", failures=0, runs=1)
    assert T0 + HOUR <= ok < T0 + HOUR + min(HOUR * JITTER_FRACTION, MAX_JITTER)
    # deterministic: a restart computes the same time
    assert ok == next_due("a", interval=HOUR, start=T0, outcome="harvested", failures=0, runs=1)
    # different per feed and per run
    assert jitter_fraction("a", 1) != jitter_fraction("b", 1) != jitter_fraction("a", 2)
    # the poll interval a source asked for wins when longer
    polled = next_due(
        "a", interval=60, start=T0, outcome="harvested", failures=0, runs=1, poll_interval=HOUR
    )
    assert polled >= T0 + HOUR
    # backoff: 1x, 2x, 4x, 8x, then capped
    bases = []
    for k in range(1, 7):
        due = next_due("a", interval=HOUR, start=T0, outcome="failed", failures=k, runs=1)
        bases.append(round((due - T0) / HOUR))
    assert bases == [1, 2, 4, 8, MAX_BACKOFF, MAX_BACKOFF]
    stretched = next_due(
        "a", interval=HOUR, start=T0, outcome="harvested", failures=0, runs=1, stretch=3
    )
    assert stretched >= T0 + 3 * HOUR
    with pytest.raises(ValueError, match="stretch"):
        next_due("a", interval=HOUR, start=T0, outcome="harvested", failures=0, runs=1, stretch=0.5)
    with pytest.raises(ValueError, match="outcome"):
        next_due("a", interval=HOUR, start=T0, outcome="weird", failures=0, runs=1)


def test_jitter_spreads_feeds_added_together() -> None:
    dues = [
        next_due(f"feed-{i}", interval=HOUR, start=T0, outcome="harvested", failures=0, runs=1)
        for i in range(200)
    ]
    spread = max(dues) - min(dues)
    assert spread > 0.8 * MAX_JITTER  # 200 feeds cover most of the 300 s jitter window
    assert min(dues) >= T0 + HOUR  # never earlier than the interval


def test_due_order_most_overdue_first_skips_paused_and_running() -> None:
    rows = [
        FeedSchedule("late", T0 - 500),
        FeedSchedule("later", T0 - 900),
        FeedSchedule("future", T0 + 10),
        FeedSchedule("paused", T0 - 999, paused=True),
        FeedSchedule("busy", T0 - 999),
    ]
    assert due_order(rows, T0, running=["busy"]) == ["later", "late"]


def test_initial_schedule_follows_a_cli_harvest() -> None:
    assert initial("a", HOUR, {}, T0).next_epoch == T0
    after_cli = initial("a", HOUR, {"a": (T0 - 600, None)}, T0)
    assert after_cli.next_epoch == T0 - 600 + HOUR
    polled = initial("a", 60, {"a": (T0 - 30, 7200.0)}, T0)
    assert polled.next_epoch == T0 - 30 + 7200


def test_schedule_store_round_trip_and_readers(vault_path: Path) -> None:
    with Vault.open(vault_path) as v, v.writing():
        store = ScheduleStore(v.catalog)
        row = FeedSchedule(
            "a",
            T0,
            last_start=T0 - 5,
            last_end=T0 - 1,
            last_outcome="failed",
            failures=2,
            runs=7,
            paused=True,
            stretch=2.5,
        )
        store.put(row)
        more = [FeedSchedule(f"b{i}", T0 + i) for i in range(3)]
        store.put_many(more)  # one transaction
    with Vault.open(vault_path, readonly=True) as r:
        assert ScheduleStore(r.catalog).all() == {"a": row} | {m.feed: m for m in more}


def test_the_scheduler_remembers_a_bounded_number_of_finished_runs(
    vault_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A service runs for months: ``completed`` keeps the last runs only."""
    monkeypatch.setattr(scheduler_module, "COMPLETED_KEPT", 5)
    clock = ManualClock(T0)
    log: list[tuple[str, float]] = []
    sched = simulate(vault_path, [feed("hourly", HOUR)], clock, T0 + DAY, log)
    assert len(log) > 5  # more runs than it keeps
    assert len(sched.completed) == 5
    starts = [t for _, t, _ in sched.completed]
    assert starts == sorted(starts)  # the latest runs, in order
    assert starts[0] > T0  # the first runs were dropped


def test_a_vault_without_the_table_reads_no_schedules(vault_path: Path) -> None:
    with Vault.open(vault_path, readonly=True) as r:
        assert ScheduleStore(r.catalog).all() == {}


# ------------------------------------------------------------------ the loop
Runner = Callable[[Feed, float], Awaitable[RunResult]]


def scripted(
    clock: ManualClock,
    log: list[tuple[str, float]],
    *,
    outcome: Callable[[str, float], str] = lambda _f, _t: "harvested",
    duration: float = 5.0,
) -> Runner:
    async def run(f: Feed, _timeout: float) -> RunResult:
        log.append((f.name, clock.time()))
        clock.advance(duration)
        await asyncio.sleep(0)
        return RunResult(outcome(f.name, clock.time()), new=1)

    return run


async def run_until(sched: Scheduler, clock: ManualClock, until: float) -> None:
    clock.stop_at = until
    task = asyncio.ensure_future(sched.run())
    while clock.time() < until and not task.done():
        await asyncio.sleep(0.001)
    for _ in range(20):  # what became due exactly at the horizon starts
        await asyncio.sleep(0)
    sched.stop()
    await task


def simulate(
    vault: Path,
    feeds: list[Feed],
    clock: ManualClock,
    until: float,
    log: list[tuple[str, float]],
    **kw: object,
) -> Scheduler:
    async def main() -> Scheduler:
        with VaultWriter.open(vault) as w:
            options = SchedulerOptions(tick=6 * HOUR, max_concurrent=kw.pop("cap", 4))  # type: ignore[arg-type]
            sched = Scheduler(
                w,
                feeds,
                scripted(clock, log, **kw),
                options=options,  # type: ignore[arg-type]
                clock=clock,
            )
            await run_until(sched, clock, until)
            return sched

    return asyncio.run(main())


def test_three_days_each_feed_runs_on_its_interval(vault_path: Path) -> None:
    clock = ManualClock(T0)
    log: list[tuple[str, float]] = []
    feeds = [feed("hourly", HOUR), feed("four-hourly", 4 * HOUR), feed("daily", DAY)]
    sched = simulate(vault_path, feeds, clock, T0 + 3 * DAY, log)
    counts = Counter(name for name, _ in log)
    # interval + up to 10 % jitter per run: between 3 days/(1.1 interval) and 3 days/interval + 1
    for f in feeds:
        # (halved: on a loaded machine a run's writer jobs can outlast the virtual
        # clock's settle time, and a run then starts late, never early)
        low = int(3 * DAY / (f.interval * (1 + JITTER_FRACTION))) // 2
        assert low <= counts[f.name] <= int(3 * DAY / f.interval) + 1, (f.name, counts)
    for f in feeds:
        # the starts the scheduler chose (the run's own clock reading can be later
        # on a loaded machine, when virtual time moved while its writer job waited)
        starts = [t for name, t, _ in sched.completed if name == f.name]
        gaps = [b - a for a, b in itertools.pairwise(starts)]
        assert min(gaps) >= f.interval  # never early (politeness)


def test_restart_neither_skips_nor_doubles_and_a_missed_run_runs_once(vault_path: Path) -> None:
    clock = ManualClock(T0)
    log: list[tuple[str, float]] = []
    feeds = [feed("a", HOUR), feed("b", 2 * HOUR)]
    simulate(vault_path, feeds, clock, T0 + 10 * HOUR, log)
    before = Counter(n for n, _ in log)
    # restart at once: only what is due by its stored schedule runs (no double run)
    with Vault.open(vault_path, readonly=True) as r:
        stored = ScheduleStore(r.catalog).all()
    restart = clock.time()
    again: list[tuple[str, float]] = []
    simulate(vault_path, feeds, clock, restart + 1, again)
    assert {n for n, _ in again} == {n for n, s in stored.items() if s.next_epoch <= restart}
    combined = log + again
    for f in feeds:
        starts = [t for name, t in combined if name == f.name]
        assert all(b - a >= f.interval for a, b in itertools.pairwise(starts))
    # down for a whole day: each feed runs once at restart, then on its interval
    clock.advance(DAY)
    back = clock.time()
    after: list[tuple[str, float]] = []
    simulate(vault_path, feeds, clock, back + 30, after)
    assert Counter(n for n, _ in after) == {"a": 1, "b": 1}
    assert all(t - back < 30 for _, t in after)
    assert before["a"] >= 9


def test_a_run_cut_short_by_a_crash_is_redone_once(vault_path: Path) -> None:
    # the crash is simulated by what it leaves: a run started, its end never recorded
    with Vault.open(vault_path) as v, v.writing():
        ScheduleStore(v.catalog).put(FeedSchedule("a", T0 - 10, last_start=T0 - 10, runs=3))
    clock = ManualClock(T0)
    log: list[tuple[str, float]] = []
    simulate(vault_path, [feed("a")], clock, T0 + 30, log)
    assert [n for n, _ in log] == ["a"]


def test_failing_feed_backs_off_and_recovers(vault_path: Path) -> None:
    clock = ManualClock(T0)
    log: list[tuple[str, float]] = []
    fail_until = T0 + 20 * HOUR
    simulate(
        vault_path,
        [feed("flaky", HOUR)],
        clock,
        T0 + 40 * HOUR,
        log,
        outcome=lambda _f, t: "failed" if t < fail_until else "harvested",
    )
    starts = [t for _, t in log]
    gaps = [round((b - a) / HOUR, 1) for a, b in itertools.pairwise(starts)]
    # 1x, 2x, 4x, 8x backoff while failing (plus jitter), back to hourly after the success
    assert gaps[:4] >= [1, 2, 4, 8]
    assert all(g >= b for g, b in zip(gaps, [1, 2, 4, 8], strict=False))
    assert len(starts) < 20 + 10  # far fewer than one request an hour while it failed
    with Vault.open(vault_path, readonly=True) as r:
        assert ScheduleStore(r.catalog).all()["flaky"].failures == 0


def test_cap_on_concurrent_runs_and_harvest_now_jumps_the_queue(vault_path: Path) -> None:
    async def main() -> tuple[list[str], int]:
        clock = ManualClock(T0)
        started: list[str] = []
        in_flight = 0
        peak = 0
        gate = asyncio.Event()

        async def run(f: Feed, _timeout: float) -> RunResult:
            nonlocal in_flight, peak
            started.append(f.name)
            in_flight += 1
            peak = max(peak, in_flight)
            await gate.wait()
            in_flight -= 1
            return RunResult("harvested")

        feeds = [feed(f"f{i}") for i in range(6)] + [feed("vip")]
        with VaultWriter.open(vault_path) as w:
            sched = Scheduler(
                w, feeds, run, options=SchedulerOptions(max_concurrent=2), clock=clock
            )
            await sched.load()
            sched.harvest_now("vip")
            assert not sched.harvest_now("unknown")
            task = asyncio.ensure_future(sched.run())
            for _ in range(500):  # the runs start once their start is written (writer thread)
                if len(started) >= 2:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)  # time for a third start, were the cap broken
            first = list(started)
            gate.set()
            sched.stop()
            await task
            return first, peak

    first, peak = asyncio.run(main())
    assert first[0] == "vip"
    assert len(first) == 2  # the cap holds while both runs hang
    assert peak == 2


def test_one_stuck_feed_never_holds_the_others(vault_path: Path) -> None:
    async def main() -> Counter[str]:
        clock = ManualClock(T0)
        runs: Counter[str] = Counter()
        forever = asyncio.Event()

        async def run(f: Feed, _timeout: float) -> RunResult:
            runs[f.name] += 1
            if f.name == "stuck":
                await forever.wait()  # never answers (the real service cuts it at its timeout)
            clock.advance(1)
            return RunResult("harvested")

        with VaultWriter.open(vault_path) as w:
            sched = Scheduler(
                w,
                [feed("stuck", 60), feed("ok", 60)],
                run,
                options=SchedulerOptions(max_concurrent=2, tick=600),
                clock=clock,
            )
            task = asyncio.ensure_future(sched.run())
            clock.stop_at = T0 + 1800
            while clock.time() < T0 + 1800:
                await asyncio.sleep(0.001)
            sched.stop()
            await sched.drain(timeout=0.1)  # cancels the stuck run
            await task
            return runs

    runs = asyncio.run(main())
    assert runs["stuck"] == 1  # one run per feed at a time
    # every minute for half an hour: 30 runs on an idle machine; fewer when virtual
    # time moves on while a slow writer job is pending, but it keeps running
    assert runs["ok"] >= 10


def test_a_run_that_raises_fails_that_feed_alone(vault_path: Path) -> None:
    clock = ManualClock(T0)

    async def main() -> Scheduler:
        async def run(f: Feed, _timeout: float) -> RunResult:
            clock.advance(1)
            if f.name == "buggy":
                raise RuntimeError("a bug")
            return RunResult("harvested")

        with VaultWriter.open(vault_path) as w:
            sched = Scheduler(
                w,
                [feed("buggy"), feed("fine")],
                run,
                options=SchedulerOptions(tick=6 * HOUR),
                clock=clock,
            )
            await run_until(sched, clock, T0 + 5 * HOUR)
            return sched

    sched = asyncio.run(main())
    outcomes = Counter((n, o) for n, _, o in sched.completed)
    assert outcomes[("fine", "harvested")] >= 4
    assert outcomes[("buggy", "failed")] >= 1
    assert sched.schedules["buggy"].failures >= 1


def test_pause_all_starts_nothing_until_resumed(vault_path: Path) -> None:
    clock = ManualClock(T0)

    async def main() -> tuple[int, int]:
        log: list[tuple[str, float]] = []
        with VaultWriter.open(vault_path) as w:
            sched = Scheduler(w, [feed("a")], scripted(clock, log), clock=clock)
            sched.paused_all = True
            await sched.load()
            assert sched.tick_once() == []
            paused = len(log)
            sched.paused_all = False
            sched.tick_once()
            await asyncio.sleep(0)
            await sched.drain()
            return paused, len(log)

    assert asyncio.run(main()) == (0, 1)


def test_feed_runs_of_a_cli_harvest_are_respected(vault_path: Path) -> None:
    with Vault.open(vault_path) as v, v.writing():
        HarvestState(v.catalog).put_feed_run("a", T0 - 60, None)
    clock = ManualClock(T0)
    log: list[tuple[str, float]] = []
    simulate(vault_path, [feed("a", HOUR)], clock, T0 + 1800, log)
    assert log == []  # ran 60 s ago by `echoctl harvest`: not due for another ~59 minutes
