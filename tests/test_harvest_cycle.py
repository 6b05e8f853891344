"""A whole harvest cycle against a real loopback server serving real recorded bodies."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from echo_archive.harvest.cycle import HarvestReport, HarvestRun
from echo_archive.harvest.engine import FetchConfig, Fetcher
from echo_archive.harvest.limits import HostLimits, LimitConfig
from echo_archive.harvest.recordings import read_recording
from echo_archive.harvest.state import HarvestState
from echo_archive.harvest.stores import VaultBreakerStore, VaultConditionalCache
from echo_archive.index.items import list_items
from echo_archive.sources.base import Feed
from echo_archive.sources.hn import HnSource
from echo_archive.sources.reddit import RedditSource
from echo_archive.sources.rss import RssSource
from echo_archive.vault.vault import Vault
from echo_archive.vault.verify import verify_vault

from .conftest import shared_dir
from .httpfaults import MALFORMED_XML, FaultServer, Reply, closed_port

SOURCES = {"hn": HnSource(), "rss": RssSource()}


def _serve_hn(server: FaultServer, limit: int) -> None:
    path = (
        shared_dir("corpora", "hackernews") / "topnews-vcr" / "hackernews_top_stories_details.yml"
    )
    for ex in read_recording(path).exchanges[: limit + 1]:
        server.route(
            urlsplit(ex.url).path, Reply(200, [("Content-Type", "application/json")], ex.body)
        )


def _run(vault_path: Path, feeds: list[Feed], fast_host: str = "") -> HarvestReport:
    """Run one cycle; ``fast_host`` (the loopback server) gets a generous limit."""

    async def go() -> HarvestReport:
        with Vault.open(vault_path) as v:
            fast = LimitConfig(rate=1000.0, burst=100.0, concurrency=4)
            limits = HostLimits({fast_host: fast} if fast_host else None)
            fetcher = Fetcher(
                FetchConfig(
                    max_attempts=2,
                    backoff_base=0.01,
                    backoff_cap=0.02,
                    connect_timeout=2,
                    allow_private=True,
                ),
                limits=limits,
                breakers=VaultBreakerStore(v),
                cache=VaultConditionalCache(v),
                sleep=lambda s: asyncio.sleep(min(s, 0.01)),
            )
            async with fetcher:
                return await HarvestRun(v, fetcher, SOURCES, env={}).run(feeds)

    return asyncio.run(go())


@pytest.fixture
def server() -> FaultServer:
    with FaultServer() as s:
        yield s  # type: ignore[misc]


@pytest.mark.slow
def test_harvest_twice_adds_nothing_the_second_time(vault_path: Path, server: FaultServer) -> None:
    _serve_hn(server, 20)
    feed = Feed("hn-top", "hn", {"list": "top", "limit": 20, "base_url": server.url("/v0")})
    first = _run(vault_path, [feed], server.authority)
    (report,) = first.feeds
    assert report.error is None
    assert not report.failed
    assert report.requests == {"200": 21}
    assert report.new == 20
    assert report.captures == 21
    second = _run(vault_path, [feed], server.authority)
    (again,) = second.feeds
    assert again.new == 0
    assert again.versions == 0
    assert again.duplicates == 20
    with Vault.open(vault_path, readonly=True) as v:
        assert verify_vault(v).ok
        saved = HarvestState(v.catalog).last_report()
        assert saved is not None
        assert saved["feeds"][0]["duplicates"] == 20


def test_one_failing_feed_never_stops_the_others(vault_path: Path, server: FaultServer) -> None:
    _serve_hn(server, 5)
    server.route("/bad.xml", Reply(200, [("Content-Type", "application/rss+xml")], MALFORMED_XML))
    feeds = [
        Feed("hn-top", "hn", {"list": "top", "limit": 5, "base_url": server.url("/v0")}),
        Feed("dead", "rss", {"url": f"http://127.0.0.1:{closed_port()}/feed.xml"}),
        Feed("broken", "rss", {"url": server.url("/bad.xml")}),
        Feed("unplannable", "rss", {}),
    ]
    report = _run(vault_path, feeds, server.authority)
    by_name = {f.name: f for f in report.feeds}
    assert by_name["hn-top"].new == 5
    assert by_name["hn-top"].error is None
    assert by_name["dead"].failed
    assert "refused" in (by_name["dead"].error or "")
    assert by_name["broken"].captures == 1
    assert by_name["broken"].new == 0
    assert not by_name["broken"].failed
    assert by_name["unplannable"].failed
    assert "url" in (by_name["unplannable"].error or "")
    assert not report.all_failed
    with Vault.open(vault_path, readonly=True) as v:
        assert verify_vault(v).ok
        captures = [v.entry(i) for i in range(v.size) if v.entry(i).type == "capture"]
        broken = [c for c in captures if c.meta["feed"] == "broken"]
        assert broken
        assert broken[0].meta["parse_warning"] or broken[0].meta["parse_error"]


def test_every_feed_failing_is_reported(vault_path: Path) -> None:
    feeds = [Feed("dead", "rss", {"url": f"http://127.0.0.1:{closed_port()}/feed.xml"})]
    report = _run(vault_path, feeds)
    assert report.all_failed


def test_conditional_requests_use_stored_validators(vault_path: Path, server: FaultServer) -> None:
    body = (shared_dir("corpora", "feeds") / "feedjira" / "TechCrunch.xml").read_bytes()

    def route(req):  # type: ignore[no-untyped-def]
        if req.header("If-None-Match") == '"v1"':
            return Reply(304, [("ETag", '"v1"')])
        return Reply(200, [("Content-Type", "application/rss+xml"), ("ETag", '"v1"')], body)

    server.route("/tc.xml", route)
    feed = Feed("techcrunch", "rss", {"url": server.url("/tc.xml")})
    first = _run(vault_path, [feed], server.authority).feeds[0]
    assert first.new > 0
    second = _run(vault_path, [feed], server.authority).feeds[0]
    assert second.not_modified == 1
    assert second.captures == 0
    assert second.new == 0


def test_due_feeds_follow_interval_and_poll_interval() -> None:
    from echo_archive.harvest.cycle import due_feeds

    feeds = [
        Feed("never", "rss", {}, interval=60),
        Feed("recent", "rss", {}, interval=600),
        Feed("old", "rss", {}, interval=600),
        Feed("gh", "github", {}, interval=60),
    ]
    runs = {"recent": (1000.0, None), "old": (300.0, None), "gh": (1000.0, 120.0)}
    due, waiting = due_feeds(feeds, runs, now=1000.0 + 90)
    assert [f.name for f in due] == ["never", "old"]
    assert waiting == {"recent": 510.0, "gh": 30.0}  # GitHub's X-Poll-Interval (120 s) wins


def test_failed_feeds_stay_due_and_good_ones_wait(vault_path: Path, server: FaultServer) -> None:
    _serve_hn(server, 2)
    good = Feed("hn-top", "hn", {"list": "top", "limit": 2, "base_url": server.url("/v0")})
    dead = Feed("dead", "rss", {"url": f"http://127.0.0.1:{closed_port()}/feed.xml"})
    _run(vault_path, [good, dead], server.authority)
    with Vault.open(vault_path, readonly=True) as v:
        runs = HarvestState(v.catalog).feed_runs()
    assert "hn-top" in runs
    assert "dead" not in runs


def test_reddit_app_only_oauth_token_is_fetched_and_used(
    vault_path: Path, server: FaultServer
) -> None:
    listing = next(
        ex
        for ex in read_recording(
            shared_dir("corpora", "reddit") / "praw" / "TestSubredditListings.test_hot.json"
        ).exchanges
        if "/hot" in ex.url
    )
    server.route(
        "/api/v1/access_token",
        lambda req: (
            Reply.json({"access_token": "tok-123", "token_type": "bearer"})
            if req.method == "POST"
            and req.body == b"grant_type=client_credentials"
            and req.header("Authorization") == "Basic aWQ6c2VjcmV0"  # base64("id:secret")
            else Reply(401)
        ),
    )
    server.route(
        "/r/python/hot",
        lambda req: (
            Reply(200, [("Content-Type", "application/json")], listing.body)
            if req.header("Authorization") == "bearer tok-123"
            else Reply(403)
        ),
    )
    ua = {"app_id": "echo-archive", "version": "0.1.0", "username": "tester"}
    feed = Feed(
        "r-python",
        "reddit",
        {
            "subreddit": "python",
            "listing": "hot",
            "oauth": True,
            "base_url": server.url(""),
            "user_agent": ua,
        },
    )

    async def go(env: dict[str, str]) -> HarvestReport:
        with Vault.open(vault_path) as v:
            fast = LimitConfig(rate=1000.0, burst=100.0, concurrency=4)
            fetcher = Fetcher(
                FetchConfig(max_attempts=1, allow_private=True),
                limits=HostLimits({server.authority: fast}),
            )
            async with fetcher:
                run = HarvestRun(
                    v,
                    fetcher,
                    {"reddit": RedditSource()},
                    env=env,
                    reddit_token_url=server.url("/api/v1/access_token"),
                )
                return await run.run([feed])

    missing = asyncio.run(go({})).feeds[0]
    assert missing.failed
    assert "REDDIT_CLIENT_ID" in (missing.error or "")
    report = asyncio.run(go({"REDDIT_CLIENT_ID": "id", "REDDIT_CLIENT_SECRET": "secret"})).feeds[0]
    assert report.error is None, report.error
    assert report.requests == {"200": 1}  # the token exchange is not a capture
    assert report.new > 0
    with Vault.open(vault_path, readonly=True) as v:
        for i in range(v.size):
            assert b"tok-123" not in v.entry(i).raw


@pytest.mark.slow
def test_parsing_in_worker_processes_gives_the_same_archive(
    tmp_path: Path, server: FaultServer
) -> None:
    from echo_archive.sources.registry import SOURCES as REGISTRY

    _serve_hn(server, 8)
    server.route("/bad.xml", Reply(200, [("Content-Type", "application/rss+xml")], b"<html>"))
    feeds = [
        Feed("hn-top", "hn", {"list": "top", "limit": 8, "base_url": server.url("/v0")}),
        Feed("bad", "rss", {"url": server.url("/bad.xml")}),
    ]

    async def go(path: Path, workers: int) -> HarvestReport:
        with Vault.open(path) as v:
            limits = HostLimits({server.authority: LimitConfig(1000.0, 100.0, 4)})
            async with Fetcher(
                FetchConfig(max_attempts=1, allow_private=True), limits=limits
            ) as fetcher:
                run = HarvestRun(v, fetcher, REGISTRY, env={}, parse_workers=workers)
                return await run.run(feeds)

    results = []
    for workers in (0, 2):
        path = tmp_path / f"v{workers}"
        Vault.create(path).close()
        report = asyncio.run(go(path, workers))
        with Vault.open(path, readonly=True) as v:
            items = sorted(r["native_id"] for r in list_items(v.catalog, limit=100))
        by_name = {f.name: f for f in report.feeds}
        results.append((by_name["hn-top"].new, items, by_name["bad"].parse_errors))
    assert results[0] == results[1]
    assert results[0][0] == 8
    assert results[0][2] == 1  # a ParseError crosses the process boundary intact


@pytest.mark.slow
def test_a_parse_worker_killed_mid_harvest_costs_only_time(
    tmp_path: Path, server: FaultServer
) -> None:
    import os
    import signal

    import structlog

    from echo_archive.sources.registry import SOURCES as REGISTRY

    _serve_hn(server, 8)
    feeds = [Feed("hn-top", "hn", {"list": "top", "limit": 8, "base_url": server.url("/v0")})]
    killed: list[int] = []

    async def go(path: Path, workers: int) -> HarvestReport:
        with Vault.open(path) as v:
            limits = HostLimits({server.authority: LimitConfig(1000.0, 100.0, 1)})
            async with Fetcher(
                FetchConfig(max_attempts=1, allow_private=True), limits=limits
            ) as fetcher:
                requests = 0

                def progress(feed: str, event: str) -> None:
                    nonlocal requests
                    requests += event == "request"
                    pool = run._pool
                    if requests == 4 and pool is not None and not killed:
                        for pid in list(pool._processes or {}):  # a worker crash (OOM killer)
                            os.kill(pid, signal.SIGKILL)
                            killed.append(pid)

                run = HarvestRun(
                    v, fetcher, REGISTRY, env={}, parse_workers=workers, progress=progress
                )
                return await run.run(feeds)

    results = []
    for workers in (0, 2):
        path = tmp_path / f"v{workers}"
        Vault.create(path).close()
        with structlog.testing.capture_logs() as logs:
            report = asyncio.run(go(path, workers))
        with Vault.open(path, readonly=True) as v:
            items = sorted(r["native_id"] for r in list_items(v.catalog, limit=100))
            assert verify_vault(v).ok
        results.append((report.feeds[0].new, report.feeds[0].error, items))
    assert killed, "no worker was killed: the test did not test anything"
    assert any(e["event"] == "harvest.parse_workers_failed" for e in logs)
    assert results[0] == results[1]
    assert results[1][0] == 8
