"""Withdrawn from a feed: the window rule (pure), then real harvests of a loopback feed.

The harvests run the real ``HarvestRun`` against a real loopback server whose
feed document changes between runs, on a real vault; the item states are read
back through the item index and the log.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from echo_archive.harvest.cycle import HarvestRun
from echo_archive.harvest.engine import FetchConfig, Fetcher
from echo_archive.harvest.limits import DEFAULT_LIMITS, HostLimits, LimitConfig
from echo_archive.index.items import known
from echo_archive.pipeline.withdrawals import WindowEntry, window_of, withdrawn
from echo_archive.sources.base import Feed
from echo_archive.sources.registry import SOURCES
from echo_archive.vault.vault import Vault

from .conftest import run_echoctl
from .httpfaults import FaultServer, Reply

# --- the window rule -----------------------------------------------------------------


def _w(*ids: str) -> list[WindowEntry]:
    return [WindowEntry(i) for i in ids]


def test_an_entry_taken_out_above_older_ones_is_withdrawn() -> None:
    found = withdrawn(_w("e", "d", "c", "b", "a"), _w("f", "e", "c", "b", "a"))
    assert [(w.entry.native_id, w.witness.native_id, w.by_date) for w in found] == [
        ("d", "c", False)
    ]
    assert "'c', listed after it in the previous document" in found[0].reason


def test_entries_rolled_off_the_end_are_not_withdrawn() -> None:
    assert withdrawn(_w("c", "b", "a"), _w("e", "d", "c")) == []
    assert withdrawn(_w("c", "b", "a"), _w("z")) == []  # a whole new window


def test_an_empty_document_proves_nothing() -> None:
    assert withdrawn(_w("b", "a"), []) == []


def test_dates_decide_when_entries_have_them() -> None:
    # oldest first: the oldest rolls off at the top, and that is not a withdrawal
    previous = [
        WindowEntry("a", None, "2026-01-01T00:00:00Z"),
        WindowEntry("b", None, "2026-01-02T00:00:00Z"),
        WindowEntry("c", None, "2026-01-03T00:00:00Z"),
        WindowEntry("d", None, "2026-01-04T00:00:00Z"),
    ]
    rolled = [previous[1], previous[2], previous[3], WindowEntry("e", None, "2026-01-05T00:00Z")]
    assert withdrawn(previous, rolled) == []
    pulled = [previous[0], previous[1], previous[3]]  # c taken out, a and b older remain
    (gone,) = withdrawn(previous, pulled)
    assert gone.entry.native_id == "c"
    assert gone.by_date
    assert gone.witness.native_id == "a"
    assert "published 2026-01-01T00:00:00Z" in gone.reason


def test_offsets_are_compared_as_instants() -> None:
    previous = [
        WindowEntry("late", None, "2026-01-02T01:00:00+05:00"),  # 2026-01-01T20:00Z
        WindowEntry("early", None, "2026-01-01T21:00:00Z"),
    ]
    # as text "late" sorts after "early"; as instants it is 20:00Z, before 21:00Z
    (gone,) = withdrawn(previous, [previous[0]])
    assert gone.entry.native_id == "early"  # "late" is kept and older: a withdrawal
    assert withdrawn(previous, [previous[1]]) == []  # nothing kept is older than "late"


def test_window_of_keeps_document_order_first_sighting_and_http_links() -> None:
    from echo_archive.model import Item

    items = [
        Item("rss", "f", "a", url="https://x.org/a", published_at="2026-01-01T00:00:00Z"),
        Item("rss", "f", "b", url="javascript:alert(1)"),
        Item("rss", "f", "a", url="https://x.org/a2"),
    ]
    assert window_of(items) == [
        WindowEntry("a", "https://x.org/a", "2026-01-01T00:00:00Z"),
        WindowEntry("b", None, None),
    ]


ids = st.lists(st.sampled_from("abcdefghij"), unique=True, max_size=10)


@given(ids, ids)
def test_the_rule_by_document_order(previous: list[str], current: list[str]) -> None:
    found = {w.entry.native_id: w for w in withdrawn(_w(*previous), _w(*current))}
    for position, native_id in enumerate(previous):
        later_kept = [i for i in previous[position + 1 :] if i in current]
        expected = native_id not in current and bool(later_kept) and bool(current)
        assert (native_id in found) == expected
        if expected:
            assert found[native_id].witness.native_id == later_kept[0]
    assert set(found) <= set(previous) - set(current)


# --- real harvests -------------------------------------------------------------------------


def _rss(*entries: tuple[str, str]) -> bytes:
    items = "".join(
        f"<item><guid>{guid}</guid><title>{guid}</title><link>{link}</link></item>"
        for guid, link in entries
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        f"<link>https://x.org/</link><description>d</description>{items}</channel></rss>"
    ).encode()


def _harvest(vault_path: Path, url: str) -> object:
    quick = LimitConfig(rate=1000.0, burst=1000.0, concurrency=8)
    limits = HostLimits(profiles={**DEFAULT_LIMITS, "rss": quick})

    async def go() -> object:
        with Vault.open(vault_path) as vault:
            async with Fetcher(FetchConfig(max_attempts=1, allow_private=True), limits=limits) as f:
                run = HarvestRun(vault, f, SOURCES)
                return await run.run([Feed("news", "rss", {"url": url}, allow_private=True)])

    return asyncio.run(go())


def _state(vault_path: Path, native_id: str) -> str | None:
    with Vault.open(vault_path, readonly=True) as vault:
        row = known(vault.catalog, "rss", "news", native_id)
    return None if row is None else row.state


def _window_row(vault_path: Path) -> tuple[str, str] | None:
    """The stored window of feed "news": ``(entries JSON, updated_at)``."""
    con = sqlite3.connect(f"file:{vault_path / 'catalog.sqlite'}?mode=ro", uri=True)
    try:
        row = con.execute(
            "SELECT entries, updated_at FROM feed_windows WHERE feed = 'news'"
        ).fetchone()
    finally:
        con.close()
    return None if row is None else (str(row[0]), str(row[1]))


def _tombstones(vault_path: Path) -> list[dict[str, object]]:
    with Vault.open(vault_path, readonly=True) as vault:
        return [
            dict(e.meta)
            for e in (vault.entry(i) for i in range(vault.size))
            if e.type == "tombstone"
        ]


def test_a_pulled_story_is_withdrawn_then_deleted_when_its_link_is_gone(
    vault_path: Path,
) -> None:
    with FaultServer() as server:
        link = server.url
        server.route(
            "/feed.xml",
            [
                Reply(200, body=_rss(("c", link("/c")), ("b", link("/b")), ("a", link("/a")))),
                Reply(200, body=_rss(("d", link("/d")), ("c", link("/c")), ("a", link("/a")))),
                Reply(200, body=_rss(("d", link("/d")), ("a", link("/a")))),
                Reply(200, body=_rss(("d", link("/d")), ("a", link("/a")))),
            ],
        )
        server.route("/b", Reply(410, body=b"gone"))
        server.route("/c", Reply(200, body=b"<html>still here</html>"))
        _harvest(vault_path, link("/feed.xml"))
        assert _state(vault_path, "b") == "active"
        _harvest(vault_path, link("/feed.xml"))  # b taken out while a (older) stays
        assert [r.path for r in server.requests][-2:] == ["/feed.xml", "/b"]
        assert _state(vault_path, "b") == "tombstoned"  # withdrawn, then 410: deleted
        _harvest(vault_path, link("/feed.xml"))  # c taken out; its page still answers
        assert _state(vault_path, "c") == "withdrawn"
        stored = _window_row(vault_path)
        _harvest(vault_path, link("/feed.xml"))  # same document: nothing new, no fetch
        assert _window_row(vault_path) == stored  # an unchanged window is not written again
        assert stored is not None
        assert '"c"' not in stored[0]
        paths = [r.path for r in server.requests]
    assert paths.count("/b") == 1
    assert paths.count("/c") == 1
    kinds = [(t["native_id"], t.get("kind"), t["reason"]) for t in _tombstones(vault_path)]
    assert [(n, k) for n, k, _ in kinds] == [("b", "withdrawn"), ("b", None), ("c", "withdrawn")]
    assert "('a', listed after it in the previous document, is still listed)" in str(kinds[0][2])
    assert str(kinds[1][2]).startswith("HTTP 410 at its link http://127.0.0.1:")
    assert _state(vault_path, "a") == "active"
    assert _state(vault_path, "d") == "active"
    # the item index written at harvest equals its rebuild from the log (states included),
    # and the confirmation captures, not feed documents, are not re-parsed
    checked = run_echoctl("--vault", str(vault_path), "verify", "--full", "--json")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    shown = run_echoctl("--vault", str(vault_path), "items", "--state", "withdrawn", "--json")
    assert [i["native_id"] for i in json.loads(shown.stdout)["entries"]] == ["c"]


def test_rolled_off_and_back_again(vault_path: Path) -> None:
    with FaultServer() as server:
        server.route(
            "/feed.xml",
            [
                Reply(200, body=_rss(("b", "https://x.org/b"), ("a", "https://x.org/a"))),
                Reply(200, body=_rss(("c", "https://x.org/c"), ("b", "https://x.org/b"))),
            ],
        )
        _harvest(vault_path, server.url("/feed.xml"))
        _harvest(vault_path, server.url("/feed.xml"))
    assert _state(vault_path, "a") == "active"  # rolled off the end: no signal
    assert _tombstones(vault_path) == []
