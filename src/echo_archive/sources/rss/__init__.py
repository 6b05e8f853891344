r"""The ``rss`` source: RSS 0.9x/1.0 (RDF)/2.0, Atom 0.3/1.0 and JSON Feed 1.0/1.1.

A feed of this source is one document URL (``params.url``). A harvest is a
single ``GET``; feeds have no pagination and no follow-up requests, so
:meth:`RssSource.parse` never returns ``follow`` or a ``cursor``. The module
is pure: it builds :class:`~echo_archive.model.Request` objects and turns
bytes into :class:`~echo_archive.model.Item` objects, nothing else.

Formats and the specifications followed:

* RSS 2.0 (https://www.rssboard.org/rss-specification), RSS 0.90/0.91/0.92,
  RSS 1.0 (RDF, https://web.resource.org/rss/1.0/spec) and Atom 0.3 /
  Atom 1.0 (RFC 4287) are parsed with ``feedparser``; its version names are
  kept as the format name (``rss20``, ``rss10`` = RSS 1.0 RDF, ``rss090``,
  ``rss091u``, ``rss091n``, ``rss092``, ``rss``, ``atom03``, ``atom10``...).
* JSON Feed 1.0 and 1.1 (https://www.jsonfeed.org/version/1.1/) are parsed
  here with :mod:`json`; format names ``json10`` and ``json11``.

Normalisation rules (one item per ``<item>`` / ``<entry>`` / JSON Feed item):

``native_id``
    The entry id exactly as written (RSS ``<guid>``, Atom ``<id>``, JSON Feed
    ``id``; whitespace stripped, never resolved against a base URI: an id is
    compared character by character, RFC 4287 §4.2.6, so it does not change
    with the URL the feed was fetched from), else the entry link, else
    ``"sha256:" + hex(SHA-256(title + "\n" + date))`` where ``date`` is the
    raw published date string as written in the document (else the raw
    updated string, else ``""``), UTF-8 encoded. The rule is deterministic:
    the same entry always gets the same id. Within one document an entry
    repeating an earlier entry's id is kept, in document order, and counted
    in :attr:`ParsedFeed.duplicates`: the pipeline archives it as a version
    of the earlier entry when its content differs, else as a duplicate
    (nothing a document says is dropped silently).
``url``
    The entry link, resolved against ``xml:base`` and the document URL; a
    saved file (``file:<name>``) has no base of its own, so its links resolve
    against the feed's home page link when that is an http(s) URL, else stay
    as written. An RSS item without ``<link>`` takes its ``<guid>`` (RSS 2.0
    permalink rule) only when that is an absolute http(s) URL and not
    ``isPermaLink="false"``; an Atom entry without ``rel="alternate"`` link
    has no url (its id is not a link). ``""`` when there is none.
``text``
    The first full content (``content:encoded``, Atom ``<content>``, JSON
    Feed ``content_html`` then ``content_text``), else the summary
    (``<description>``, ``<summary>``). HTML is kept exactly as sent: no
    sanitising and no rewriting of relative URLs inside it.
``author``
    The first author's name (else the raw author string). Atom entries
    without an author inherit those of their ``atom:source``, else the feed's
    (RFC 4287 §4.2.1); JSON Feed items inherit the feed's ``authors`` /
    ``author`` (JSON Feed 1.1).
``published_at``
    Published, else updated, as RFC 3339 UTC with microseconds
    (``2026-11-22T01:41:19.000000Z``). RFC 822 dates written with non-English
    day and month names (``Seg, 24 Set 2018 19:42:40 -0300``) are read as a
    fallback; 12-hour times (``1:55 PM``) and ten-digit Unix times are read;
    RFC 3339 dates are read strictly (lowercase ``t``/``z`` allowed, §5.6).
    A date that cannot be read, or does not exist (``2024-02-30``), gives
    ``""``, never a guess; the raw strings are always kept in
    ``extra["published_raw"]`` / ``extra["updated_raw"]``.
``extra``
    ``format``, ``updated`` (normalised), ``published_raw``, ``updated_raw``,
    ``categories`` (terms), ``enclosures`` (``url``, ``type``, ``length``),
    ``media`` (Media RSS ``media:content``: ``url``, ``type``, ``medium``,
    duplicates by URL removed), ``thumbnails``, ``comments`` (URL),
    ``comment_feed`` (``wfw:commentRss``), ``orig_link``
    (``feedburner:origLink``), ``authors`` (when more than one), and for JSON
    Feed ``external_url``, ``image``, ``summary``, ``language``. The three
    URL fields drop text that cannot be a URL (white space inside: a
    ``<comments>`` holding "Some text"). Enclosure, media and thumbnail URLs
    resolve against the document URL only: feedparser does not report the
    ``xml:base`` in scope where they appear.
``counters``
    ``comments``: the comment count from ``slash:comments`` or ``thr:total``
    (RFC 4685), the only volatile numbers feeds carry.

Documents that are not feeds (an HTML page, an IIS "Object Moved" stub, an
OPML subscription list, a one-entry "this feed has moved" notice, JSON that is
not a JSON Feed) raise :class:`~echo_archive.errors.ParseError` whose message
starts with ``"not a feed: "``; a feed found inside an HTML page (an Atom
``<feed>`` in an XHTML ``<body>``) is parsed, with a warning. A document with
a feed's root element from which nothing can be read, or on which feedparser
itself crashes, raises ``"malformed feed: ..."``. A feed that is not
well-formed but still yields entries (illegal nesting, invalid characters, an
encoding that lies) is parsed; the parser's complaint is returned in
:attr:`ParsedFeed.warning`. A truncated XML feed (its root element never
closes) is cut after its last complete entry, closed and parsed again, so the
items kept are exactly those the whole document would give; the entry being
written at the cut is dropped and the warning says so. A truncated or
malformed JSON Feed raises :class:`~echo_archive.errors.ParseError` with the
line and column. Positions are lines and columns of the body as received
(after gzip decompression).

The package holds one concept per module:

:mod:`~echo_archive.sources.rss.sniff`
    What a body is before it is parsed: gzip decompression (bounded), byte
    order marks, the root element, the description of an HTML page.
:mod:`~echo_archive.sources.rss.xmlfeed`
    RSS, RDF and Atom through feedparser: "not a feed" and obsolete-feed
    rejection, truncation repair, one item per entry.
:mod:`~echo_archive.sources.rss.jsonfeed`
    JSON Feed 1.0 and 1.1.
:mod:`~echo_archive.sources.rss.dates`
    Entry dates to RFC 3339 UTC (RFC 3339, RFC 822, localized names, Unix
    times, 12-hour clocks).
:mod:`~echo_archive.sources.rss.items`
    What every format shares: :class:`ParsedFeed` and the rules of the item
    fields (ids, absolute URLs, counts).

This module holds the source itself (:class:`RssSource`) and
:func:`parse_document`, which picks the format. Names with a leading
underscore are internal to the package: its modules share them, nothing
outside it imports them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import ClassVar
from urllib.parse import urlsplit

from echo_archive.errors import ParseError, SourceError
from echo_archive.model import Exchange, ParseResult, Request
from echo_archive.sources.base import BaseSource, Feed, HostProfile
from echo_archive.sources.ratelimits import LimitConfig
from echo_archive.sources.rss.items import KIND, ParsedFeed
from echo_archive.sources.rss.jsonfeed import _parse_json_feed
from echo_archive.sources.rss.sniff import (
    _GZIP_MAGIC,
    _UTF8_BOM,
    _XML_SPACE,
    _gunzip,
)
from echo_archive.sources.rss.xmlfeed import _parse_xml_feed

__all__ = [
    "ACCEPT",
    "MAX_DECOMPRESSED_BYTES",
    "ParsedFeed",
    "RssSource",
    "parse_document",
]


#: The ``Accept`` header of a feed request: feed media types first, generic XML
#: and JSON lower, anything else last (RFC 9110 §12.5.1 quality values).
ACCEPT = (
    "application/atom+xml, application/rss+xml, application/feed+json, "
    "application/json;q=0.9, application/xml;q=0.8, text/xml;q=0.8, */*;q=0.1"
)


#: A gzip body on disk is decompressed up to this many bytes; more is refused
#: as a decompression bomb (DESIGN.md invariant 7, bad input never corrupts).
MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024


class RssSource(BaseSource):
    """The ``rss`` source kind (implements :class:`~echo_archive.sources.base.Source`).

    Feed parameters:
        url: the feed document's absolute ``http`` or ``https`` URL.

    Any host no other source's profile names is a feed host, limited by the
    ``rss`` profile. Recorded responses from such hosts are imported when
    their body is a feed document (the importer's fallback), so
    ``recorded_hosts`` is empty.
    """

    kind: ClassVar[str] = KIND
    # Feeds change a few times an hour at most; conditional GETs keep polling cheap.
    default_interval: ClassVar[int] = 3600
    host_profiles: ClassVar[tuple[HostProfile, ...]] = (
        # Generic feed hosts (RSS/Atom/JSON Feed): 1 req/s, 2 in flight.
        HostProfile("rss", (), LimitConfig(rate=1.0, burst=1.0, concurrency=2)),
    )
    params: ClassVar[Mapping[str, str]] = MappingProxyType(
        {"url": "the feed document's absolute http(s) URL (required)"}
    )
    # Each response is the whole feed document: entries taken out are "withdrawn".
    document_window: ClassVar[bool] = True

    def plan(self, feed: Feed) -> list[Request]:
        """Return the one ``GET`` of the feed document.

        Args:
            feed: the configured feed; ``feed.params["url"]`` is the document URL.

        Returns:
            A single request with an ``Accept`` header that prefers feed media types.

        Raises:
            SourceError: ``url`` is missing, not a string, or not an absolute
                http(s) URL (the message names the feed).
        """
        url = feed.params.get("url")
        if url is None:
            raise SourceError(f"feed {feed.name!r}: params.url is missing (the feed document URL)")
        if not isinstance(url, str):
            raise SourceError(
                f"feed {feed.name!r}: params.url must be a string (the feed document URL), "
                f"got {url!r}"
            )
        if not url.strip():
            raise SourceError(f"feed {feed.name!r}: params.url is empty (the feed document URL)")
        url = url.strip()
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            raise SourceError(f"feed {feed.name!r}: params.url {url!r} is not an http(s) URL")
        return [Request(url=url, headers=(("Accept", ACCEPT),), purpose={"page": "feed"})]

    def parse(self, feed: Feed, request: Request, exchange: Exchange) -> ParseResult:
        """Parse one fetched feed document into items.

        A ``304 Not Modified`` gives an empty result. The document URL used to
        resolve relative links is the exchange's final URL (after redirects).

        Args:
            feed: the feed the request was planned for (items carry its name).
            request: the request that was answered.
            exchange: the response; ``body`` is parsed.

        Returns:
            The items; never follow-up requests, tombstones or a cursor.

        Raises:
            ParseError: the status is not 2xx, the body is empty, it is not a
                feed, or it cannot be read (names the URL and the position).
        """
        url = exchange.final_url or exchange.url or request.url
        if exchange.status == 304:
            return ParseResult()
        if not 200 <= exchange.status < 300:
            raise ParseError(f"HTTP {exchange.status} response, not a feed document", url)
        parsed = parse_document(
            exchange.body, url, exchange.header("content-type") or "", feed_name=feed.name
        )
        return ParseResult(items=parsed.items, warning=parsed.warning)


def parse_document(
    body: bytes, url: str, content_type: str = "", *, feed_name: str = ""
) -> ParsedFeed:
    """Parse a feed document (RSS, RDF, Atom or JSON Feed) into items.

    The body may still be gzip-compressed (recorded files often are); that is
    detected by its magic bytes, whatever the headers say. Whitespace before
    the ``<?xml`` declaration is removed so that a strict XML parser accepts it.
    Encodings are taken from the ``charset`` of ``content_type``, the XML
    declaration or a byte order mark, as RFC 7303 orders them.

    Args:
        body: the document bytes as received.
        url: the document URL: named in errors and used as the base of relative links.
        content_type: the response ``Content-Type`` header value (may be ``""``).
        feed_name: the feed name the items are made for (``Item.feed``).

    Returns:
        The format, title, link and items of the document, plus the parser's
        warning and the number of duplicate and skipped entries.

    Raises:
        ParseError: the body is empty (``"empty body"``); it is not a feed
            (``"not a feed: <what it looks like>"``); the gzip stream is corrupt
            or too large; a JSON Feed is malformed. The position is a line and
            column or a byte offset in the (decompressed) body.
    """
    warnings: list[str] = []
    if body[:2] == _GZIP_MAGIC:
        body = _gunzip(body, url, warnings, MAX_DECOMPRESSED_BYTES)
    stripped = body.removeprefix(_UTF8_BOM).lstrip(_XML_SPACE)
    if not stripped:
        raise ParseError("empty body", url, "byte 0")
    if stripped[:1] in (b"{", b"["):
        return _with_date_warnings(_parse_json_feed(body, url, feed_name, warnings))
    return _with_date_warnings(_parse_xml_feed(body, url, content_type, feed_name, warnings))


def _with_date_warnings(parsed: ParsedFeed) -> ParsedFeed:
    """Add to the document's warning each item date that could not be read (issue 9).

    An item whose date is unreadable has an empty date, its raw string in
    ``extra`` (``published_raw``/``updated_raw``) and the reason in
    ``extra["date_warning"]``; the capture's warning names the item.
    """
    notes = [
        f"item {item.native_id!r}: {item.extra['date_warning']}"
        for item in parsed.items
        if item.extra.get("date_warning")
    ]
    if not notes:
        return parsed
    more = f" (+{len(notes) - 5} more)" if len(notes) > 5 else ""
    text = "; ".join(notes[:5]) + more
    warning = f"{parsed.warning}; {text}" if parsed.warning else text
    return dataclasses.replace(parsed, warning=warning)
