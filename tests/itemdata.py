"""Items committed through the real harvest commit path, for the services and CLI tests."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from echo_archive.harvest.commit import commit_batch
from echo_archive.model import Exchange, Item, ParseResult, Request, Tombstone
from echo_archive.pipeline.batch import Sighting
from echo_archive.sources.base import Feed
from echo_archive.vault.entry import format_timestamp
from echo_archive.vault.vault import Vault

T0 = datetime(2026, 12, 5, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    """RFC 3339 UTC text of ``seconds`` after 2026-12-05T12:00:00Z."""
    return format_timestamp(int((T0 + timedelta(seconds=seconds)).timestamp() * 1e9))


def commit_items(
    v: Vault,
    feed: str,
    items: Sequence[tuple[str, str] | Item] = (),
    tombstones: Sequence[str] = (),
    seen_at: str | None = None,
    source: str = "rss",
) -> None:
    """Commit one capture of ``feed`` with these items and tombstones.

    An item is a (native id, title) pair, or an :class:`Item` as it is (its
    text and author too).
    """
    url = f"https://example.org/{feed}.xml"
    made = tuple(
        i
        if isinstance(i, Item)
        else Item(source, feed, i[0], url=f"https://example.org/{i[0]}", title=i[1])
        for i in items
    )
    result = ParseResult(
        items=made,
        tombstones=tuple(Tombstone(source, feed, nid, "gone at the source") for nid in tombstones),
    )
    body = json.dumps(
        [
            [i.native_id, i.title, i.text, i.author] if isinstance(i, Item) else list(i)
            for i in items
        ]
        + list(tombstones)
    ).encode()
    exchange = Exchange(
        "GET", url, 200, (("content-type", "application/json"),), body, fetched_at=seen_at or at(0)
    )
    sighting = Sighting(Feed(feed, source, {"url": url}), Request(url), exchange, result)
    commit_batch(v, [sighting], format_timestamp(1_765_000_000_000_000_000))
