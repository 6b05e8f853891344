"""Re-parse an archived capture, for rebuilding the observation index.

Observations of duplicate sightings exist only in capture bodies, so the
observation index (:mod:`echo_archive.index.observations`, below the sources
in the layers) is rebuilt by re-parsing: this module gives it the function
that does, built from the sources and the import routing
(:func:`~echo_archive.harvest.importer.feed_for`).

A capture is re-parsed as it was first parsed, from what its entry holds:

* an HTTP exchange (harvested or imported): the feed named by the entry, with
  its parameters from ``echo.toml`` when it is still configured, else those
  the importer gives the URL; the request is the entry's method and URL (the
  request's ``purpose`` is not logged: every source reads a response by its
  URL when the purpose is absent, as for replayed traffic);
* a whole file (``file:<name>``): a GH Archive hour (source ``github``) or a
  saved feed document (source ``rss``).

What the re-parse gives depends on today's sources: when a source changed
how it reads a response since the capture was archived, ``echoctl verify``
names the observations that differ, and ``echoctl rebuild observations``
adopts today's reading.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from echo_archive.config import load_config
from echo_archive.errors import ConfigError, SourceError
from echo_archive.harvest.importer import feed_for
from echo_archive.index import standard_indexes
from echo_archive.index.observations import Reparse
from echo_archive.model import Exchange, Item, Request
from echo_archive.sources import gharchive
from echo_archive.sources.base import Feed
from echo_archive.sources.registry import SOURCES
from echo_archive.vault.derived import DerivedIndex
from echo_archive.vault.entry import Entry

__all__ = ["derived_indexes", "exchange_of", "indexes_for", "make_reparse"]

Counted = tuple[str, str, str, Mapping[str, int | float]]


def exchange_of(entry: Entry, body: bytes) -> Exchange:
    """The exchange an HTTP capture entry records, with its body.

    Only the headers the entry kept are present (those that matter to a
    parser: content type, encoding, rate limits...).
    """
    meta = entry.meta
    headers = meta.get("headers") or {}
    return Exchange(
        method=str(meta.get("method", "GET")),
        url=str(meta.get("url", "")),
        status=int(meta.get("status", 0)),
        headers=tuple((str(k), str(v)) for k, v in dict(headers).items()),
        body=body,
        final_url=str(meta.get("final_url") or meta.get("url", "")),
        fetched_at=str(meta.get("fetched_at", "")),
        redirects=tuple(str(u) for u in meta.get("redirects") or ()),
        recorded_at=meta.get("recorded_at"),
        truncated=bool(meta.get("truncated", False)),
    )


def _items(entry: Entry, body: bytes, feeds: Mapping[str, Feed]) -> Sequence[Item]:
    meta = entry.meta
    source, name = str(meta.get("source", "")), str(meta.get("feed", ""))
    exchange = exchange_of(entry, body)
    url = exchange.url
    if url.startswith("file:") and source == "github":  # a GH Archive hour, read whole
        with tempfile.TemporaryDirectory(prefix="echo-reparse-") as tmp:
            path = Path(tmp) / (Path(url[5:]).name or "hour.json")
            path.write_bytes(body)
            return [i for i in gharchive.items_from_hour(path, name) if isinstance(i, Item)]
    if source not in SOURCES:
        raise SourceError(f"capture names source {source!r}, which this version does not know")
    feed = feeds.get(name)
    if feed is None or feed.source != source:
        found = feed_for(url) if not url.startswith("file:") else None
        params = found.params if found is not None and found.source == source else {}
        if source == "rss":
            params = {"url": url}
        feed = Feed(name, source, params)
    request = Request(url=url, method=exchange.method)
    result = SOURCES[source].parse(feed, request, exchange)
    return [item if item.feed == name else replace(item, feed=name) for item in result.items]


def make_reparse(feeds: Mapping[str, Feed] | None = None) -> Reparse:
    """A :data:`~echo_archive.index.observations.Reparse` over today's sources.

    Args:
        feeds: the configured feeds by name (their parameters are used for
            captures of these feeds); None or empty: the import parameters.

    Returns:
        ``reparse(capture entry, body) -> [(source, feed, native_id, counters)]``;
        it raises :class:`~echo_archive.errors.SourceError` when the body
        cannot be parsed.
    """
    known = dict(feeds or {})

    def reparse(entry: Entry, body: bytes) -> list[Counted]:
        return [
            (item.source, item.feed, item.native_id, dict(item.counters))
            for item in _items(entry, body, known)
        ]

    return reparse


def derived_indexes(feeds: Mapping[str, Feed] | None = None) -> list[DerivedIndex]:
    """The standard derived indexes, the observation index able to re-parse captures.

    What a writer attaches (``echoctl`` opens every vault with them).
    """
    return standard_indexes(make_reparse(feeds))


def indexes_for(config_path: Path) -> list[DerivedIndex]:
    """The standard derived indexes for the vault whose ``echo.toml`` is ``config_path``.

    The configured feeds' parameters serve re-parsing; a configuration that
    does not load (a bad feed) falls back on the import parameters, so no
    command that needs the indexes fails for it.
    """
    try:
        config = load_config(config_path)
    except ConfigError:
        return derived_indexes()
    return derived_indexes({f.name: f.to_feed() for f in config.feeds})
