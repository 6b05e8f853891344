"""The supervisor's Observer, fed by a real Fetcher against real loopback HTTP servers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from echo_archive.control.observe import (
    DiskObservation,
    Observer,
    ProcessObservation,
    ProcessSampler,
    Pulls,
    disk_pull,
    percentile,
)
from echo_archive.control.supervisor import CycleReport, Supervisor
from echo_archive.events import EventBus
from echo_archive.harvest.engine import FetchConfig, Fetcher, host_key
from echo_archive.harvest.hoststats import LATENCY_RING, HostStats
from echo_archive.harvest.limits import DEFAULT_LIMITS, HostLimits, LimitConfig
from echo_archive.model import Request

from .httpfaults import FaultServer, Reply, closed_port

T0 = 1_800_000_000.0


def _fetcher() -> Fetcher:
    quick = LimitConfig(rate=1000.0, burst=1000.0, concurrency=8)
    return Fetcher(
        FetchConfig(
            connect_timeout=2.0,
            read_timeout=2.0,
            total_timeout=5.0,
            max_attempts=1,  # one attempt per fetch: the counts below are the requests sent
            allow_private=True,  # loopback servers
        ),
        limits=HostLimits(profiles={**DEFAULT_LIMITS, "rss": quick}),
    )


async def _fetch_all(fetcher: Fetcher, urls: list[str]) -> None:
    async with fetcher:
        for url in urls:
            await fetcher.fetch(Request(url), source_kind="rss")


def test_observer_counts_requests_errors_latency_and_breakers_of_real_fetches() -> None:
    bus = EventBus()
    dead = f"http://127.0.0.1:{closed_port()}/feed"
    with FaultServer() as good, FaultServer() as bad:
        good.route("/feed", Reply(200, body=b"<rss/>"))
        good.route("/slow", Reply(200, body=b"<rss/>", delay=0.25))
        bad.route("/5xx", Reply(503))
        bad.route("/429", Reply(429))
        fetcher = _fetcher()
        observer = Observer(
            bus,
            fetcher.host_stats,
            Pulls(
                breakers=lambda: {h: b.state.value for h, b in fetcher.breakers().items()},
                feed_hosts=lambda: {"news": good.authority},
                disk=lambda: DiskObservation(free_bytes=10, free_ratio=0.5),
                queue_depth=lambda: 3,
                loop_lag=lambda: 0.02,
            ),
            start=T0,
        )
        urls = [good.url("/feed")] * 6 + [good.url("/slow")] + [bad.url("/5xx")] * 3
        urls += [bad.url("/429")] * 2 + [dead]
        asyncio.run(_fetch_all(fetcher, urls))
        bus.emit(
            "feed_run",
            feed="news",
            phase="finished",
            outcome="harvested",
            new=4,
            versions=1,
            tombstones=1,
            captures=7,
            parse_errors=1,
            seconds=0.5,
        )
        bus.emit("feed_run", feed="news", phase="started")  # not a finished run: ignored
        bus.emit("feed_run", feed="down", phase="finished", outcome="failed", seconds=0.1)
        first = observer.observe(T0 + 60)
        assert good.hits() == 7
        assert bad.hits() == 5

    g, b, d = (first.host(k) for k in (good.authority, bad.authority, host_key(dead)))
    assert g is not None
    assert b is not None
    assert d is not None
    assert (g.requests, g.server_errors, g.throttled, g.transport_errors) == (7, 0, 0, 0)
    assert (b.requests, b.server_errors, b.throttled) == (5, 3, 2)
    assert b.error_rate == pytest.approx(3 / 5)
    assert b.throttle_rate == pytest.approx(2 / 5)
    assert (d.requests, d.transport_errors, d.error_rate) == (1, 1, 1.0)
    assert g.latency_p95 is not None
    assert g.latency_p95 >= 0.25
    assert g.latency_p50 is not None
    assert g.latency_p50 < 0.25
    assert g.breaker == "closed"
    assert b.breaker == "open"  # 5 failed calls of 5: resilience4j's 50% failure rate
    news, down = first.feed("news"), first.feed("down")
    assert news is not None
    assert down is not None
    assert (news.runs, news.items, news.items_per_run, news.host) == (1, 6, 6.0, good.authority)
    assert news.parse_error_rate == pytest.approx(1 / 7)
    assert (down.runs, down.failed, down.items_per_run, down.failure_rate) == (1, 1, None, 1.0)
    assert first.seconds == 60.0
    assert first.writer.queue_depth == 3
    assert first.process.loop_lag_seconds == 0.02
    assert first.disk.free_ratio == 0.5
    signals = first.signals()
    assert signals[f"host_error_rate:{bad.authority}"] == pytest.approx(0.6)
    assert signals["feed_items:news"] == 6.0
    assert "feed_items:down" not in signals

    # the next cycle holds only what happened since: nothing was fetched, no run ended
    second = observer.observe(T0 + 120)
    assert second.feeds == ()
    assert all(h.requests == 0 and h.latency_p95 is None for h in second.hosts)
    assert {h.host: h.breaker for h in second.hosts} == {  # seen by their breakers only
        good.authority: "closed",
        bad.authority: "open",
        host_key(dead): "closed",
    }
    observer.close()
    bus.emit("feed_run", feed="news", phase="finished", outcome="harvested", new=1)
    assert observer.observe(T0 + 180).feeds == ()  # unsubscribed

    report = Supervisor().cycle(first)  # the observation is what the supervisor takes
    assert 0.0 <= report.score < 1.0
    assert first.to_json()["hosts"][0]["host"] == sorted([g.host, b.host, d.host])[0]


def test_a_failing_pull_leaves_its_part_unknown(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> int:
        raise OSError("writer gone")

    observer = Observer(pulls=Pulls(queue_depth=broken, disk=disk_pull("/nonexistent/vault")))
    observation = observer.observe(T0)
    assert observation.writer.queue_depth is None
    assert observation.disk.free_ratio is None
    assert observation.seconds == 0.0  # no start given: a zero-length first cycle


def test_disk_pull_and_process_sampler_read_this_machine(tmp_path: Path) -> None:
    disk = disk_pull(tmp_path)()
    assert disk.free_bytes is not None
    assert disk.free_bytes > 0
    assert disk.free_ratio is not None
    assert 0 < disk.free_ratio <= 1
    sampler = ProcessSampler()
    first, second = sampler(), sampler()
    assert first.cpu_fraction is None  # no earlier sample to compare with
    assert isinstance(second, ProcessObservation)
    assert second.rss_bytes is not None
    assert second.rss_bytes > 0
    assert second.open_fds is not None
    assert second.open_fds > 0


def test_host_stats_keep_a_bounded_ring_and_give_the_latencies_since() -> None:
    stats = HostStats()
    for i in range(LATENCY_RING + 10):
        stats.record("h", 200, float(i))
    before = stats.snapshot()["h"]
    assert len(before.latencies) == LATENCY_RING
    assert before.requests == LATENCY_RING + 10
    stats.record("h", 500, 1000.0)
    stats.record("h", None, 2000.0)
    after = stats.snapshot()["h"]
    assert after.latencies_since(before) == (1000.0, 2000.0)
    assert (after.server_errors, after.transport_errors) == (1, 1)
    assert after.latencies_since(after) == ()


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 95) == 4.0
    assert percentile([5.0], 0) == 5.0
    with pytest.raises(ValueError, match="percentile"):
        percentile([1.0], 101)


def test_a_loopback_host_failing_a_third_of_requests_gets_a_lower_rate_proposed() -> None:
    """Real fetches, real counters, the supervisor's plan: below the breaker's 50%, above 20%."""
    served = {"n": 0}

    def every_third_fails(_request: object) -> Reply:
        served["n"] += 1
        return Reply(503) if served["n"] % 3 == 0 else Reply(200, body=b"<rss/>")

    bus = EventBus()
    with FaultServer() as flaky, FaultServer() as fine:
        flaky.route("/feed", every_third_fails)
        fine.route("/feed", Reply(200, body=b"<rss/>"))
        fetcher = _fetcher()
        observer = Observer(
            bus,
            fetcher.host_stats,
            Pulls(breakers=lambda: {h: b.state.value for h, b in fetcher.breakers().items()}),
            start=T0,
        )
        supervisor = Supervisor()

        async def two_cycles() -> list[CycleReport]:
            out = []
            async with fetcher:  # one fetcher, one client, across the cycles
                for cycle in range(2):
                    for _ in range(12):
                        await fetcher.fetch(Request(flaky.url("/feed")), source_kind="rss")
                        await fetcher.fetch(Request(fine.url("/feed")), source_kind="rss")
                    out.append(supervisor.cycle(observer.observe(T0 + 60 * (cycle + 1))))
            return out

        reports = asyncio.run(two_cycles())
    first, second = reports
    assert first.proposals == ()  # one cycle is not enough
    assert [(p.kind, p.target) for p in second.proposals] == [("lower_host_rate", flaky.authority)]
    assert [(f.kind, f.target) for f in second.findings] == [("host_failing", flaky.authority)]
    flaky_now = second.proposals[0].evidence[f"host_error_rate:{flaky.authority}"]
    assert flaky_now == pytest.approx(1 / 3)
    assert {h.host: h.breaker for h in observer.observe(T0 + 180).hosts} == {
        flaky.authority: "closed",  # 33% < the breaker's 50%: only the supervisor acts
        fine.authority: "closed",
    }
