"""Hacker News edits: ``/v0/updates.json`` re-fetches archived items, ``/v0/maxitem.json``.

A real loopback server plays the HN API (https://github.com/HackerNews/API):
between two harvests an archived story's text changes and the story is
listed in ``updates`` (and no longer in the top list), so only the
``updates`` path can find the edit. The second harvest archives it as a
version; changed items the feed never archived are not fetched.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from echo_archive.errors import ParseError, SourceError
from echo_archive.model import Exchange, Request
from echo_archive.services import add_feed, harvest_once, list_feeds, open_vault, remove_feed
from echo_archive.services.harvesting import select_feeds
from echo_archive.services.items import ItemKey, item_history
from echo_archive.sources.base import IF_ARCHIVED, Feed
from echo_archive.sources.hn import HnSource

from .httpfaults import FaultServer, Reply


def _story(text: str) -> dict[str, Any]:
    return {"id": 1, "type": "story", "by": "pg", "time": 1_700_000_000, "title": "T", "text": text}


@pytest.mark.slow
def test_an_edited_archived_item_in_updates_is_fetched_again_and_archived_as_a_version(
    vault_path: Path,
) -> None:
    with FaultServer() as server:
        server.route("/v0/topstories.json", [Reply.json([1]), Reply.json([])])
        server.route("/v0/item/1.json", [Reply.json(_story("first")), Reply.json(_story("edited"))])
        server.route("/v0/maxitem.json", Reply.json(99))
        changed = {"items": [1, 42, 1, 500], "profiles": ["pg"]}
        server.route("/v0/updates.json", Reply.json(changed))
        for feed in list_feeds(vault_path):
            remove_feed(vault_path, feed.name)
        params = {"list": "top", "limit": 5, "base_url": server.url("/v0"), "updates": True}
        add_feed(vault_path, "hn-local", "hn", params=params, allow_private=True)

        with open_vault(vault_path, write=True) as w:
            feeds = select_feeds(w, ["hn-local"]).feeds
            first = asyncio.run(harvest_once(w, feeds)).feeds[0]
            # item 1 was not archived yet when updates was read: fetched once, from the list
            assert server.hits("/v0/item/1.json") == 1
            second = asyncio.run(harvest_once(w, feeds)).feeds[0]
        assert server.hits("/v0/item/1.json") == 2  # the re-fetch from updates
        assert server.hits("/v0/item/42.json") == 0  # changed, but never archived by the feed
        assert server.hits("/v0/item/500.json") == 0  # above maxitem
        assert server.hits("/v0/maxitem.json") == 2
        assert server.hits("/v0/updates.json") == 2

    assert (first.new, first.versions, first.status) == (1, 0, "harvested")
    assert (second.new, second.versions, second.status) == (0, 1, "harvested")
    assert second.requests == {"200": 4}  # list, maxitem, updates, item 1
    with open_vault(vault_path) as r:
        history = item_history(r, ItemKey("hn", "hn-local", "1")).history
    assert [h.item["text"] for h in history] == ["edited", "first"]  # newest first


def _exchange(url: str, body: bytes) -> Exchange:
    return Exchange(method="GET", url=url, status=200, headers=(), body=body)


def test_updates_and_maxitem_are_planned_only_when_asked() -> None:
    source = HnSource()
    base = "http://api.test/v0"
    plain = source.plan(Feed("hn", "hn", {"list": "top", "base_url": base}))
    assert [r.url for r in plain] == [f"{base}/topstories.json"]
    feed = Feed("hn", "hn", {"list": "top", "base_url": base, "updates": True})
    planned = source.plan(feed)
    assert [r.url for r in planned] == [f"{base}/topstories.json", f"{base}/maxitem.json"]
    with pytest.raises(SourceError, match=r"params\.updates must be true or false"):
        source.plan(Feed("hn", "hn", {"list": "top", "updates": "yes"}))

    maxitem = source.parse(feed, planned[1], _exchange(planned[1].url, b"41"))
    (updates,) = maxitem.follow
    assert updates.url == f"{base}/updates.json"
    assert updates.purpose == {"kind": "updates", "maxitem": 41}
    body = b'{"items": [7, 50, 7, 3], "profiles": ["pg", "dang"]}'
    result = source.parse(feed, updates, _exchange(updates.url, body))
    assert [r.url for r in result.follow] == [f"{base}/item/7.json", f"{base}/item/3.json"]
    assert [r.purpose[IF_ARCHIVED] for r in result.follow] == ["7", "3"]
    assert all(r.purpose["depth"] == 0 for r in result.follow)  # comment_depth 0: no kids

    with pytest.raises(ParseError, match="maxitem must be an item id"):
        source.parse(feed, planned[1], _exchange(planned[1].url, b'"x"'))
    with pytest.raises(ParseError, match=r"profiles entry 3"):
        source.parse(feed, updates, _exchange(updates.url, b'{"items": [], "profiles": [3]}'))
    with pytest.raises(ParseError, match="updates must be a JSON object"):
        source.parse(feed, updates, _exchange(updates.url, b"[1]"))
    replayed = Request(f"{base}/updates.json")  # no purpose: routed by its path
    assert len(source.parse(feed, replayed, _exchange(replayed.url, b'{"items": [2]}')).follow) == 1
