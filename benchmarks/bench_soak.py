"""``soak``: many accelerated cycles of 50 loopback feeds with faults, through the real scheduler.

A fresh vault holds :data:`FEEDS` RSS feeds (interval :data:`INTERVAL`
seconds of virtual time) on the loopback server of ``bench_harvest`` in its
fault mode (its own process: its memory is not ours), 10 ports, per-host
limits raised so that they do not pace the run (``[limits]``). The real
:class:`Scheduler` runs them on a :class:`ManualClock` (tests/test_scheduler.py's
virtual clock: time jumps to the next due feed when nothing is in flight),
each run a real :class:`HarvestRun` through one shared :class:`Fetcher` and
the vault's writer, as ``echoctl serve`` runs them. The server's faults
(``bench_harvest.fault_reply``): 503s, 429s with ``Retry-After``, truncated
documents (parse errors), late replies, and a new item every 10th request.

A cycle is one interval of virtual time, in which every feed is due once:
:data:`CYCLES` cycles (``SOAK_CYCLES`` in the environment to change it) are
``CYCLES x FEEDS`` runs. Every :data:`SAMPLE_EVERY` cycles the process's RSS
and open file descriptors are sampled; the figures:

* RSS growth from the end of the warm-up (:data:`WARMUP_SHARE` of the
  cycles) to the end: target < 10 %;
* open fds at the end minus at the end of the warm-up: target 0 (< 1);
* runs whose report was not saved (runs finished - reports saved): target 0.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from pathlib import Path

import psutil

from bench_harvest import DOCUMENT, FeedServer
from bench_service import feed_table, fresh_vault
from echo_archive.harvest.cycle import HarvestRun
from echo_archive.harvest.state import HarvestState
from echo_archive.service.scheduler import ManualClock, RunResult, Scheduler, SchedulerOptions
from echo_archive.services.harvesting import build_fetcher
from echo_archive.sources.base import Feed
from echo_archive.sources.registry import SOURCES
from echo_archive.vault.vault import Vault
from echo_archive.vault.writer import VaultWriter
from workload import Result, say

FEEDS = 50
HOSTS = 10
INTERVAL = 600.0
CYCLES = int(os.environ.get("SOAK_CYCLES", "1000"))
WARMUP_SHARE = 0.1
SAMPLE_EVERY = max(1, CYCLES // 50)
RSS_TARGET = 10.0  # percent
T0 = 1_800_000_000.0


def _config(server: FeedServer) -> str:
    limits = "".join(
        f'\n[limits."{host}"]\nrate = 1000\nburst = 100\nconcurrency = 8\n' for host in server.hosts
    )
    feeds = "".join(
        feed_table(f"feed-{k:02d}", server.url(k % HOSTS, f"/feed/{k}.xml"), INTERVAL)
        for k in range(FEEDS)
    )
    return limits + feeds


def run(out: Path) -> Result:
    """Run the soak (see the module) and report memory, fds and reports."""
    result = Result("soak")
    root, path = fresh_vault(out, "soak")
    proc = psutil.Process()
    samples: list[tuple[int, int, int]] = []  # (cycle, rss bytes, open fds)
    blocks: list[tuple[int, int]] = []  # (cycle, Python's allocated memory blocks)
    with FeedServer(HOSTS, 0.0, DOCUMENT, faults=True) as server:
        with (path / "echo.toml").open("a", encoding="utf-8") as fh:
            fh.write(_config(server))
        feeds = [
            Feed(
                f"feed-{k:02d}",
                "rss",
                {"url": server.url(k % HOSTS, f"/feed/{k}.xml")},
                INTERVAL,
                allow_private=True,
            )
            for k in range(FEEDS)
        ]
        say(f"soak: {CYCLES:,} cycles of {FEEDS} feeds ({CYCLES * FEEDS:,} runs), faults on")
        started = time.perf_counter()
        with VaultWriter.open(path) as writer:
            outcomes = asyncio.run(_soak(writer, feeds, proc, samples, blocks))
        seconds = time.perf_counter() - started
        stats = server.stats()
    with Vault.open(path, readonly=True) as vault:
        saved = len(HarvestState(vault.catalog).reports(limit=CYCLES * FEEDS + 1000))
        size = vault.size
    catalog_mb = (path / "catalog.sqlite").stat().st_size / 1e6
    blobs_mb = (path / "blobs" / "blobs.sqlite").stat().st_size / 1e6
    runs = sum(outcomes.values())
    warm = next(s for s in samples if s[0] >= CYCLES * WARMUP_SHARE)
    last = samples[-1]
    growth = (last[1] - warm[1]) / warm[1] * 100
    result.add("RSS growth after warm-up", growth, "%", below=RSS_TARGET)
    result.add("open fds: end minus after warm-up", last[2] - warm[2], "fds", below=1)
    result.add("runs without a saved report", runs - saved, "runs", below=1)
    result.add("RSS after warm-up", warm[1] / 1e6, "MB")
    result.add("RSS at the end", last[1] / 1e6, "MB")
    result.add("runs per second (wall)", runs / seconds, "runs/s")
    warm_blocks = next(b for c, b in blocks if c >= CYCLES * WARMUP_SHARE)
    result.add(
        "Python allocated blocks: growth after warm-up",
        (blocks[-1][1] - warm_blocks) / warm_blocks * 100,
        "%",
    )
    result.notes.append(
        f"the databases at the end: catalog {catalog_mb:.0f} MB, blobs {blobs_mb:.0f} MB; "
        "SQLite keeps up to 32 MiB of catalog pages cached per connection "
        "(vault/catalog.py), so RSS grows with a small catalog until the cache is full; "
        "Python's allocated blocks (sys.getallocatedblocks) tell the heap apart"
    )
    result.notes.append(
        f"{CYCLES:,} cycles x {FEEDS} feeds = {runs:,} runs in {seconds:.0f} s wall "
        f"({CYCLES * INTERVAL / 86400:.1f} days of virtual time); outcomes {dict(outcomes)}; "
        f"{saved:,} reports saved; log size {size:,}; the server answered "
        f"{stats['requests']:,} requests"
    )
    result.notes.append(
        "RSS/fds by cycle: "
        + ", ".join(
            f"{c}: {r / 1e6:.0f} MB/{f}" for c, r, f in samples[:: max(1, len(samples) // 10)]
        )
    )
    result.details = {
        "samples": samples,
        "blocks": blocks,
        "outcomes": outcomes,
        "seconds": seconds,
        "catalog_mb": catalog_mb,
        "blobs_mb": blobs_mb,
    }
    shutil.rmtree(root, ignore_errors=True)
    return result


async def _soak(
    writer: VaultWriter,
    feeds: list[Feed],
    proc: psutil.Process,
    samples: list[tuple[int, int, int]],
    blocks: list[tuple[int, int]],
) -> dict[str, int]:
    fetcher, stores = build_fetcher(writer)
    outcomes: dict[str, int] = {}
    try:
        async with fetcher:

            async def run_feed(feed: Feed, timeout: float) -> RunResult:
                run = HarvestRun(writer, fetcher, SOURCES, env={})
                report = await asyncio.wait_for(run.run([feed]), timeout)
                fr = report.feeds[0]
                outcomes[fr.status] = outcomes.get(fr.status, 0) + 1
                return RunResult(
                    fr.status,
                    poll_interval=fr.poll_interval,
                    new=fr.new,
                    versions=fr.versions,
                    captures=fr.captures,
                    parse_errors=fr.parse_errors,
                    error=fr.error,
                )

            clock = ManualClock(T0, settle=0.05)
            end = T0 + CYCLES * INTERVAL
            clock.stop_at = end
            sched = Scheduler(
                writer,
                feeds,
                run_feed,
                options=SchedulerOptions(max_concurrent=4, feed_timeout=60.0, tick=INTERVAL),
                clock=clock,
            )
            task = asyncio.ensure_future(sched.run())
            next_sample = 0
            while clock.time() < end:
                cycle = int((clock.time() - T0) // INTERVAL)
                if cycle >= next_sample:
                    samples.append((cycle, proc.memory_info().rss, proc.num_fds()))
                    blocks.append((cycle, sys.getallocatedblocks()))
                    next_sample = cycle + SAMPLE_EVERY
                    if cycle and cycle % (SAMPLE_EVERY * 10) == 0:
                        say(
                            f"  soak: cycle {cycle:,}/{CYCLES:,}, RSS {samples[-1][1] / 1e6:.0f} MB"
                        )
                await asyncio.sleep(0.05)
            sched.stop()
            await task
            samples.append((CYCLES, proc.memory_info().rss, proc.num_fds()))
            blocks.append((CYCLES, sys.getallocatedblocks()))
    finally:
        stores.close()
    return outcomes
