"""Things gone at the source the first time they are seen are archived in the removed state.

Issue 9, Fidelity, "Deleted when first seen": a Reddit thing that is
``[deleted]`` / ``[removed]`` or carries ``removed_by_category``, or a Hacker
News item ``deleted`` / ``dead``, seen for the first time, is archived as an
``item`` entry of kind ``removed`` holding what the source still shows; a
thing archived live and then seen gone gets a tombstone, as before.

The corpus counts come from an independent reading of the raw bodies (plain
``json`` over the recorded exchanges, not the source parsers).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from echo_archive.cli import app
from echo_archive.harvest.commit import commit_batch
from echo_archive.harvest.importer import import_files
from echo_archive.harvest.recordings import read_recording
from echo_archive.index.items import known
from echo_archive.model import Exchange, Request
from echo_archive.pipeline.batch import BatchCounts, Sighting
from echo_archive.schemas import RemovedItemMeta, validate_meta
from echo_archive.services.items import ItemQuery, item_history, list_items
from echo_archive.sources.base import Feed
from echo_archive.sources.hn import HnSource
from echo_archive.sources.reddit import RedditSource
from echo_archive.vault.entry import Entry, format_timestamp
from echo_archive.vault.vault import Vault

from .conftest import shared_dir

runner = CliRunner()
LOGGED = format_timestamp(1_765_000_000_000_000_000)
UA = {"app_id": "org.example.echo", "version": "0.1.0", "username": "echo_bot"}
REDDIT = Feed(
    name="reddit-test", source="reddit", params={"subreddit": "AskReddit", "user_agent": UA}
)
HN = Feed(name="hn-top", source="hn", params={"list": "top"})
HN_API = "https://hacker-news.firebaseio.com/v0"


# ------------------------------------------------------------------ the independent reader


def _things(document: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every ``t1``/``t3`` thing anywhere in a decoded Reddit body: (fullname, data)."""
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            data = node.get("data")
            if node.get("kind") in ("t1", "t3") and isinstance(data, dict):
                yield f"{node['kind']}_{data.get('id')}", data
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _is_gone(kind: str, data: dict[str, Any]) -> bool:
    """Reddit's own markers of a deleted or removed thing, read straight from the JSON."""
    text = data.get("body" if kind == "t1" else "selftext")
    if data.get("removed_by_category"):
        return True
    return text == "[removed]" or (text == "[deleted]" and data.get("author") == "[deleted]")


def _reddit_reading() -> tuple[dict[str, dict[str, Any]], set[str]]:
    """(gone fullname -> its data as first seen gone, fullnames seen live) over the corpus."""
    gone: dict[str, dict[str, Any]] = {}
    live: set[str] = set()
    for path in sorted(shared_dir("corpora", "reddit").rglob("*.json")):
        if path.name == "provenance.json":
            continue
        for exchange in read_recording(path).exchanges:
            try:
                document = json.loads(exchange.body)
            except ValueError:
                continue
            for fullname, data in _things(document):
                if _is_gone(fullname[:2], data):
                    gone.setdefault(fullname, data)
                else:
                    live.add(fullname)
    return gone, live


def _entries(vault: Vault) -> list[Entry]:
    return [vault.entry(i) for i in range(vault.size)]


# ------------------------------------------------------------------ the corpora


def test_reddit_corpus_every_gone_thing_is_archived(tmp_path: Path) -> None:
    gone, live = _reddit_reading()
    never_live = set(gone) - live
    # The independent reading: 13 gone things, all "[deleted]" comments; 12 are
    # never live anywhere in the corpus (t1_cu5tovd is live in other cassettes).
    assert (len(gone), len(never_live)) == (13, 12)
    files = sorted(p for p in shared_dir("corpora", "reddit").rglob("*") if p.is_file())
    with Vault.create(tmp_path / "vault") as vault:
        import_files(vault, files)
        entries = _entries(vault)
        removed = {
            e.meta["native_id"]: e for e in entries if e.type == "item" and e.meta.get("kind")
        }
        tombstoned = {e.meta["native_id"] for e in entries if e.type == "tombstone"}
        listed = list_items(vault, ItemQuery(source="reddit", state="removed", limit=500))
        blobs = {nid: json.loads(vault.blobs.get(e.blobs[0].digest)) for nid, e in removed.items()}
    print({"expected": len(gone), "removed items": len(removed), "tombstones": len(tombstoned)})
    # Expected by the reading vs archived: each gone thing has a removed item or a
    # tombstone, and each never seen live is a removed item. One is missing, and
    # not by this parser: t1_cu5tovd is "[deleted]" only in an api/morechildren
    # response of TestCommentForest.test_replace__all_with_comment_limit, an
    # exchange the importer skips (it archives no capture of it at all).
    assert set(gone) - tombstoned - set(removed) == {"t1_cu5tovd"}
    assert never_live <= set(removed)
    assert len(removed) == 12
    assert set(removed) <= set(gone)
    for nid, entry in removed.items():
        assert entry.meta["kind"] == "removed"
        assert entry.meta["previous"] is None
        assert entry.meta["reason"] == "[deleted]"
        data, blob = gone[nid], blobs[nid]
        # What the source still shows is kept: the id, the times, the parent and subreddit.
        assert blob["deleted"] is True
        assert blob["native_id"] == nid
        assert blob["text"] == "[deleted]"
        assert blob["author"] == data["author"]  # as the source shows it ("[deleted]")
        assert blob["extra"]["subreddit"] == data["subreddit"]
        assert blob["extra"]["parent_id"] == data["parent_id"]
        assert blob["extra"]["link_id"] == data["link_id"]
        assert blob["published_at"].startswith(
            format_timestamp(int(data["created_utc"]) * 10**9)[:19]
        )
    # Listed in the removed state (items in it now, not brought back by a later sighting).
    assert {e.native_id for e in listed.entries} == set(removed)
    assert all(e.state == "removed" for e in listed.entries)


def test_hn_corpus_reading_matches_the_archive(tmp_path: Path) -> None:
    expected = set()
    files = []
    for path in sorted(shared_dir("corpora", "hackernews").rglob("*")):
        if not path.is_file() or path.suffix not in (".yml", ".json"):
            continue
        if path.name == "provenance.json":
            continue
        files.append(path)
        for exchange in read_recording(path).exchanges:
            try:
                doc = json.loads(exchange.body)
            except ValueError:
                continue
            if isinstance(doc, dict) and (doc.get("deleted") is True or doc.get("dead") is True):
                expected.add(str(doc["id"]))
    with Vault.create(tmp_path / "vault") as vault:
        import_files(vault, files)
        gone = {
            e.meta["native_id"]
            for e in _entries(vault)
            if e.type == "tombstone" or (e.type == "item" and e.meta.get("kind") == "removed")
        }
    # The corpus holds no deleted or dead item (552 item bodies): expected 0, archived 0.
    assert expected == set()
    assert gone == expected


# ------------------------------------------------------------------ Hacker News, one item


def _hn_sighting(body: dict[str, Any], fetched_at: str) -> Sighting:
    item_id = body["id"]
    url = f"{HN_API}/item/{item_id}.json"
    exchange = Exchange(
        "GET",
        url,
        200,
        (("content-type", "application/json; charset=utf-8"),),
        json.dumps(body).encode(),
        final_url=url,
        fetched_at=fetched_at,
    )
    request = Request(url=url, purpose={"kind": "item", "depth": 0, "id": item_id})
    return Sighting(HN, request, exchange, HnSource().parse(HN, request, exchange))


def _commit(vault: Vault, sightings: list[Sighting]) -> BatchCounts:
    counts, _ = commit_batch(vault, sightings, LOGGED)
    return counts


def _real_hn_story() -> dict[str, Any]:
    """A real story body from the corpus (the first ``type: story`` item; it holds no comment)."""
    for path in sorted(shared_dir("corpora", "hackernews").rglob("*")):
        if not path.is_file() or path.suffix not in (".yml", ".json"):
            continue
        if path.name == "provenance.json":
            continue
        for exchange in read_recording(path).exchanges:
            try:
                doc = json.loads(exchange.body)
            except ValueError:
                continue
            if isinstance(doc, dict) and doc.get("type") == "story" and "by" in doc:
                return dict(doc)
    raise AssertionError("no story in the hackernews corpus")


def test_hn_deleted_at_first_sight_is_a_removed_item_and_comes_back(tmp_path: Path) -> None:
    live = _real_hn_story()
    # What the API sends for a deleted item: id, time, type, deleted (by, title... gone).
    deleted = {k: live[k] for k in ("id", "time", "type")} | {"deleted": True}
    with Vault.create(tmp_path / "vault") as vault:
        counts = _commit(vault, [_hn_sighting(deleted, "2026-12-05T12:00:00.000000Z")])
        assert (counts.new, counts.removed, counts.unknown_tombstones) == (1, 1, 0)
        row = known(vault.catalog, "hn", "hn-top", str(live["id"]))
        assert row is not None
        assert (row.state, row.tombstoned, row.versions) == ("removed", True, 1)
        entry = vault.entry(row.idx)
        assert validate_meta(entry.type, entry.meta, ["item"], "x") is RemovedItemMeta
        assert entry.meta["reason"] == "deleted"
        blob = json.loads(vault.blobs.get(entry.blobs[0].digest))
        assert (blob["deleted"], blob["extra"]["type"]) == (True, "story")
        assert blob["published_at"] == format_timestamp(live["time"] * 10**9)
        assert blob["author"] == ""
        assert blob["title"] == ""
        # Seen gone again: nothing new. Seen live later (undeleted): a version.
        again = _commit(vault, [_hn_sighting(deleted, "2026-12-05T13:00:00.000000Z")])
        assert (again.new, again.duplicates, again.tombstones) == (0, 1, 0)
        back = _commit(vault, [_hn_sighting(live, "2026-12-05T14:00:00.000000Z")])
        assert back.versions == 1
        row = known(vault.catalog, "hn", "hn-top", str(live["id"]))
        assert row is not None
        assert (row.state, row.versions) == ("active", 2)


def test_hn_dead_story_keeps_what_the_api_still_shows(tmp_path: Path) -> None:
    live = _real_hn_story()
    dead = dict(live) | {"dead": True}
    with Vault.create(tmp_path / "vault") as vault:
        _commit(vault, [_hn_sighting(dead, "2026-12-05T12:00:00.000000Z")])
        history = item_history(vault, f"hn:hn-top:{live['id']}")
    assert history.state == "removed"
    (only,) = history.history
    assert only.meta["reason"] == "dead"
    assert only.item is not None
    assert (only.item["author"], only.item["title"]) == (live["by"], live["title"])


def test_hn_known_item_then_deleted_is_a_tombstone(tmp_path: Path) -> None:
    live = _real_hn_story()
    deleted = {k: live[k] for k in ("id", "time", "type")} | {"deleted": True}
    with Vault.create(tmp_path / "vault") as vault:
        _commit(vault, [_hn_sighting(live, "2026-12-05T12:00:00.000000Z")])
        counts = _commit(vault, [_hn_sighting(deleted, "2026-12-05T13:00:00.000000Z")])
        assert (counts.tombstones, counts.removed, counts.new) == (1, 0, 0)
        history = item_history(vault, f"hn:hn-top:{live['id']}")
    assert history.state == "tombstoned"
    assert [h.type for h in history.history] == ["tombstone", "item"]


# ------------------------------------------------------------------ Reddit, edited real things


def _reddit_corpus_exchange(name: str) -> Exchange:
    path = shared_dir("corpora", "reddit") / name
    return next(
        ex for ex in read_recording(path).exchanges if "access_token" not in ex.url and ex.body
    )


def _reddit_sighting(exchange: Exchange, body: Any) -> Sighting:
    edited = Exchange(
        exchange.method,
        exchange.url,
        exchange.status,
        exchange.headers,
        json.dumps(body).encode(),
        final_url=exchange.final_url,
        fetched_at="2026-12-05T12:00:00.000000Z",
    )
    request = Request(url=exchange.url)
    return Sighting(REDDIT, request, edited, RedditSource().parse(REDDIT, request, edited))


def test_reddit_removed_text_alone_and_removed_by_category(tmp_path: Path) -> None:
    listing = _reddit_corpus_exchange("praw/TestSubredditListings.test_hot.json")
    body = json.loads(listing.body)
    children = body["data"]["children"]
    first, second = children[0]["data"], children[1]["data"]
    edited = copy.deepcopy(body)
    # A moderator's removal: the text says [removed], the author is still shown.
    edited["data"]["children"][0]["data"]["selftext"] = "[removed]"
    edited["data"]["children"][1]["data"]["removed_by_category"] = "moderator"
    with Vault.create(tmp_path / "vault") as vault:
        counts = _commit(vault, [_reddit_sighting(listing, edited)])
        assert counts.removed == 2
        removed = list_items(vault, ItemQuery(state="removed"))
        found = {e.native_id: e for e in removed.entries}
        assert set(found) == {f"t3_{first['id']}", f"t3_{second['id']}"}
        one = item_history(vault, f"reddit:reddit-test:t3_{first['id']}").history[0]
        two = item_history(vault, f"reddit:reddit-test:t3_{second['id']}").history[0]
    assert one.meta["reason"] == "[removed]"
    assert one.item is not None
    assert (one.item["author"], one.item["title"]) == (first["author"], first["title"])
    assert two.meta["reason"] == "[removed] (removed_by_category: moderator)"
    assert two.item is not None
    assert two.item["extra"]["removed_by_category"] == "moderator"
    assert two.item["extra"]["subreddit"] == second["subreddit"]
    assert found[f"t3_{first['id']}"].title == first["title"]


# ------------------------------------------------------------------ the CLI


def test_cli_items_state_removed_and_show(tmp_path: Path) -> None:
    live = _real_hn_story()
    deleted = {k: live[k] for k in ("id", "time", "type")} | {"deleted": True}
    other = dict(live) | {"id": live["id"] + 1}
    path = tmp_path / "vault"
    with Vault.create(path) as vault:
        _commit(vault, [_hn_sighting(deleted, "2026-12-05T12:00:00.000000Z")])
        _commit(vault, [_hn_sighting(other, "2026-12-05T12:00:00.000000Z")])
    result = runner.invoke(app, ["--vault", str(path), "items", "--state", "removed", "--json"])
    assert result.exit_code == 0, result.output
    entries = json.loads(result.output)["entries"]
    assert [(e["native_id"], e["state"]) for e in entries] == [(str(live["id"]), "removed")]
    table = runner.invoke(app, ["--vault", str(path), "items"])
    assert table.exit_code == 0, table.output
    rows = {line.split()[2]: line for line in table.output.splitlines()[3:]}
    assert "removed" in rows[str(live["id"])].split()
    assert "removed" not in rows[str(other["id"])].split()
    shown = runner.invoke(app, ["--vault", str(path), "show", f"hn:hn-top:{live['id']}"])
    assert shown.exit_code == 0, shown.output
    assert "removed at the source when first seen" in " ".join(shown.output.split())
    assert "deleted" in shown.output
    as_json = runner.invoke(
        app, ["--vault", str(path), "show", f"hn:hn-top:{live['id']}", "--json"]
    )
    assert json.loads(as_json.output)["state"] == "removed"
