"""Library services for feeds, harvesting, breakers and saved reports, on a loopback server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from echo_archive.errors import (
    ConfigError,
    CursorError,
    NotFoundError,
    RequestError,
    SourceError,
    VaultNotFoundError,
)
from echo_archive.harvest.cycle import HarvestRun
from echo_archive.harvest.state import HarvestState
from echo_archive.services import (
    ItemQuery,
    add_feed,
    get_capture,
    get_report,
    harvest_once,
    item_history,
    list_feeds,
    list_items,
    list_reports,
    open_capture_body,
    open_vault,
    remove_feed,
    select_feeds,
    set_feed_enabled,
)
from echo_archive.services.harvesting import breakers, reset_breaker
from echo_archive.services.items import ItemKey
from echo_archive.vault.writer import VaultWriter

from .httpfaults import FaultServer, Reply


def _rss(*titles: str) -> bytes:
    items = "".join(
        f"<item><guid>urn:{t}</guid><title>{t}</title><link>https://example.org/{t}</link></item>"
        for t in titles
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Local</title>'
        f"<link>https://example.org/</link>{items}</channel></rss>"
    ).encode()


@pytest.fixture
def server() -> FaultServer:
    with FaultServer() as s:
        yield s  # type: ignore[misc]


def _only_local_feed(vault: Path, server: FaultServer) -> None:
    for feed in list_feeds(vault):  # the starter feeds would reach the network
        remove_feed(vault, feed.name)
    add_feed(
        vault,
        "local",
        "rss",
        interval=3600,
        params={"url": server.url("/feed.xml")},
        allow_private=True,  # the feed server listens on loopback
    )


def test_feeds_add_list_enable_disable_remove(vault_path: Path) -> None:
    before = [f.name for f in list_feeds(vault_path)]
    feed = add_feed(vault_path, "mine", "rss", interval=600, params={"url": "https://x.org/f.xml"})
    assert feed.interval == 600
    assert [f.name for f in list_feeds(vault_path)] == [*before, "mine"]
    assert set_feed_enabled(vault_path, "mine", False).changed
    assert not set_feed_enabled(vault_path, "mine", False).changed
    assert not next(f for f in list_feeds(vault_path) if f.name == "mine").enabled
    assert set_feed_enabled(vault_path, "mine", True).enabled
    removed = remove_feed(vault_path, "mine")
    assert removed is not None
    assert removed.name == "mine"
    assert [f.name for f in list_feeds(vault_path)] == before
    with pytest.raises(RequestError, match="interval"):
        add_feed(vault_path, "fast", "rss", interval=5, params={"url": "https://x.org/f.xml"})
    with pytest.raises(RequestError):
        add_feed(vault_path, "Bad Name", "rss", params={"url": "https://x.org/f.xml"})
    with pytest.raises(SourceError):
        add_feed(vault_path, "nourl", "rss")
    with pytest.raises(ConfigError):
        remove_feed(vault_path, "mine")
    with pytest.raises(VaultNotFoundError, match="no vault at"):
        list_feeds(vault_path.parent / "nowhere")


def test_harvest_once_then_items_captures_and_the_saved_report(
    vault_path: Path, server: FaultServer
) -> None:
    server.route("/feed.xml", Reply(200, [("Content-Type", "application/rss+xml")], _rss("a", "b")))
    _only_local_feed(vault_path, server)
    runs: list[HarvestRun] = []
    events: list[tuple[str, str]] = []
    with open_vault(vault_path, write=True) as w:
        with pytest.raises(RequestError, match="unknown feed"):
            select_feeds(w, ["nope"])
        selection = select_feeds(w)
        assert [f.name for f in selection.feeds] == ["local"]
        report = asyncio.run(
            harvest_once(
                w,
                selection.feeds,
                on_start=runs.append,
                progress=lambda name, event: events.append((name, event)),
            )
        )
        assert len(runs) == 1
        assert ("local", "done") in events
        (feed,) = report.feeds
        assert (feed.name, feed.new, feed.captures, feed.failed) == ("local", 2, 1, False)
        again = select_feeds(w)  # it ran: not due for an hour
        assert not again.feeds
        assert 3500 < again.not_due["local"] <= 3600
        assert [f.name for f in select_feeds(w, run_all=True).feeds] == ["local"]
        server.route(
            "/feed.xml",
            Reply(200, [("Content-Type", "application/rss+xml")], _rss("a2", "a", "b")),
        )
        asyncio.run(harvest_once(w, select_feeds(w, ["local"]).feeds))
        with pytest.raises(RequestError, match="max_requests"):
            asyncio.run(harvest_once(w, selection.feeds, max_requests=0))
    with open_vault(vault_path) as r:
        page = list_items(r, ItemQuery(feed="local", total=True))
        assert page.total == 3
        assert {i.title for i in page.entries} == {"a", "b", "a2"}
        history = item_history(r, ItemKey("rss", "local", "urn:a"))
        (only,) = history.history
        capture = get_capture(r, only.capture_index)  # type: ignore[arg-type]
        assert capture.meta["url"] == server.url("/feed.xml")
        assert capture.meta["status"] == 200
        with open_capture_body(r, capture) as body:
            assert body.read() == _rss("a", "b")
        with pytest.raises(NotFoundError, match=r"is not a capture \(type 'item'\)"):
            get_capture(r, only.index)
        reports = list_reports(r, limit=1)
        assert len(reports.entries) == 1
        assert reports.next is not None
        rest = list_reports(r, limit=10, cursor=reports.next)
        assert rest.next is None
        ids = [s.id for s in (*reports.entries, *rest.entries)]
        assert ids == sorted(ids, reverse=True)
        assert len(ids) == 2
        newest = get_report(r, ids[0])
        assert newest.report["feeds"][0]["new"] == 1  # a2
        assert get_report(r, ids[1]).report["feeds"][0]["new"] == 2
        assert newest.report["started_at"] == reports.entries[0].started_at
        with pytest.raises(NotFoundError, match="no saved harvest report 999"):
            get_report(r, 999)
        with pytest.raises(CursorError):
            list_reports(r, cursor=page.next or "x")


def test_select_feeds_needs_an_enabled_feed(vault_path: Path) -> None:
    for feed in list_feeds(vault_path):
        set_feed_enabled(vault_path, feed.name, False)
    with open_vault(vault_path) as r, pytest.raises(RequestError, match="no enabled feeds"):
        select_feeds(r)


def test_breakers_list_and_reset(vault_path: Path) -> None:
    with open_vault(vault_path, write=True) as w:
        HarvestState(w.catalog).put_breaker(
            "api.github.com", {"state": "OPEN", "opened_at": 1.0}, "t"
        )
        HarvestState(w.catalog).put_breaker(
            "api.reddit.com", {"state": "OPEN", "opened_at": 1.0}, "t"
        )
        assert breakers(w)["api.github.com"]["state"] == "OPEN"
        reset_breaker(w, "api.github.com")
        assert list(breakers(w)) == ["api.reddit.com"]
        with pytest.raises(NotFoundError, match="no breaker named 'x'"):
            reset_breaker(w, "x")
    with VaultWriter.open(vault_path) as writer:  # the process's one writer
        reset_breaker(writer, "api.reddit.com")
        with pytest.raises(NotFoundError):
            reset_breaker(writer, "api.reddit.com")
    with open_vault(vault_path) as r:
        assert breakers(r) == {}


def test_harvest_once_through_the_process_writer(vault_path: Path, server: FaultServer) -> None:
    server.route("/feed.xml", Reply(200, [("Content-Type", "application/rss+xml")], _rss("w")))
    _only_local_feed(vault_path, server)
    with open_vault(vault_path) as r:
        feeds = select_feeds(r).feeds
    with VaultWriter.open(vault_path) as writer:
        report = asyncio.run(harvest_once(writer, feeds))
    assert report.feeds[0].new == 1
    with open_vault(vault_path) as r:
        assert [i.title for i in list_items(r, ItemQuery()).entries] == ["w"]
        assert list_reports(r).entries[0].feeds == 1
