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
    the same entry always gets the same id. Within one document the first
    entry with an id wins; later entries with the same id are dropped and
    counted in :attr:`ParsedFeed.duplicates`.
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
"""

from __future__ import annotations

import calendar
import contextlib
import hashlib
import html
import io
import json
import re
import time
import unicodedata
import xml.sax
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar
from urllib.parse import urljoin, urlsplit
from xml.parsers import expat

import feedparser
import feedparser.datetimes
import feedparser.mixin

from echo_archive.errors import ParseError, SourceError
from echo_archive.model import Exchange, Item, ParseResult, Request
from echo_archive.sources.base import Feed

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

# feedparser resolves <guid> and atom:id against the base URI, as if they
# were links: guid "12345" fetched from https://a.example/ becomes
# "https://a.example/12345", so an item's id would change with the URL a
# feed is fetched from. An id is an identifier, compared character by
# character (RFC 4287 §4.2.6; RSS 2.0 <guid>), so ECHO keeps it as written.
# This is the only feedparser setting changed, once, for the whole process:
# ``id`` leaves the set of elements feedparser treats as relative URIs.
feedparser.mixin._FeedParserMixin.can_be_relative_uri = frozenset(
    feedparser.mixin._FeedParserMixin.can_be_relative_uri - {"id"}
)

_GZIP_MAGIC = b"\x1f\x8b"
_UTF8_BOM = b"\xef\xbb\xbf"
_XML_SPACE = b" \t\r\n"
_SNIFF_BYTES = 8192
_HTML_ROOTS = frozenset({"html", "head", "body", "frameset"})
_FEED_ROOTS = frozenset({"rss", "feed", "rdf", "channel"})
_JSON_FEED_PREFIX = "https://jsonfeed.org/version/"

# The prolog before the root element: XML declaration and processing
# instructions, comments, a DOCTYPE (with an optional internal subset).
_PROLOG_RE = re.compile(
    r"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE(?:[^\[>]*\[.*?\])?[^>]*>)",
    re.DOTALL | re.IGNORECASE,
)
_ROOT_RE = re.compile(r"\s*<([A-Za-z_][\w.:-]*)")
_TITLE_RE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.DOTALL | re.IGNORECASE)
_HREF_RE = re.compile(r"""href\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
_MOVED_PAGE_RE = re.compile(r"\b(moved|redirect)", re.IGNORECASE)
_OUTLINE_RE = re.compile(r"<outline\b", re.IGNORECASE)
_ENTRY_END_RE = re.compile(r"</(?:[\w.-]+:)?(?:item|entry)\s*>", re.IGNORECASE)
# "(Obsolete Feed)", "Feed has moved", "This feed has been moved to ...".
_OBSOLETE_RE = re.compile(
    r"\bobsolete feed\b|\bfeed (?:has )?(?:been )?moved\b|\bfeed is obsolete\b", re.IGNORECASE
)
_MRSS_NS = b"search.yahoo.com/mrss"
_MRSS_PREFIX_RE = re.compile(
    r"""xmlns:([\w.-]+)\s*=\s*["']https?://search\.yahoo\.com/mrss/?["']"""
)
_RFC3339_RE = re.compile(r"\s*\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")
_ISO_DATETIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?"
    r"\s*(Z|z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?"
)
_EPOCH_RE = re.compile(r"\d{10}")  # Unix seconds, 2001-09-09 to 2286-11-20
_TWELVE_HOUR_RE = re.compile(
    r"\b(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp])\.?\s?[Mm]\.?(?![A-Za-z])"
)
_URL_RE = re.compile(r"https?://[^\s<>\"']+")

# RFC 822 dates with localized day and month names, a fallback for what
# feedparser cannot read ("Seg, 24 Set 2018 19:42:40 -0300" is Portuguese).
_LOCAL_DATE_RE = re.compile(
    r"^\s*(?:[^\W\d_]+\.?,?\s+)?(\d{1,2})\s+([^\W\d_]+)\.?\s+(\d{4}|\d{2})"
    r"\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*(Z|UT|UTC|GMT|[+-]\d{2}:?\d{2})?\s*$"
)
_MONTHS = {
    "jan": 1, "ene": 1, "gen": 1,
    "feb": 2, "fev": 2,
    "mar": 3, "mrt": 3,
    "apr": 4, "abr": 4, "avr": 4,
    "may": 5, "mai": 5, "mag": 5, "mei": 5,
    "jun": 6, "juin": 6, "giu": 6,
    "jul": 7, "juil": 7, "lug": 7,
    "aug": 8, "ago": 8, "aou": 8,
    "sep": 9, "set": 9,
    "oct": 10, "out": 10, "okt": 10, "ott": 10,
    "nov": 11,
    "dec": 12, "dez": 12, "dic": 12,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """One feed document, parsed and normalised.

    Attributes:
        version: the format (``rss20``, ``rss10`` for RSS 1.0 RDF, ``rss091u``,
            ``atom10``, ``json11``...; feedparser's names for XML formats).
        title: the feed's title, or ``""``.
        link: the feed's home page link, or ``""``.
        items: the items, in document order, duplicates removed.
        warning: what the parser complained about while still finding entries
            (not well-formed XML, an encoding override, truncation), or None.
        duplicates: entries dropped because an earlier entry had the same id.
        skipped: entries dropped because they were empty (no id, link, title,
            text or date, as illegal nesting produces) or cut off by truncation.
    """

    version: str
    title: str
    link: str
    items: tuple[Item, ...]
    warning: str | None = None
    duplicates: int = 0
    skipped: int = 0


class RssSource:
    """The ``rss`` source kind (implements :class:`~echo_archive.sources.base.Source`).

    Feed parameters:
        url: the feed document's absolute ``http`` or ``https`` URL.
    """

    kind: ClassVar[str] = "rss"

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
        if not isinstance(url, str) or not url.strip():
            raise SourceError(f"feed {feed.name!r}: params.url is missing (the feed document URL)")
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


def _date_extra(version: str, published_raw: str, updated_raw: str, updated: str) -> dict[str, Any]:
    """The ``extra`` fields every format shares: the format, raw dates, normalized update time."""
    extra: dict[str, Any] = {"format": version}
    if published_raw:
        extra["published_raw"] = published_raw
    if updated_raw:
        extra["updated_raw"] = updated_raw
    if updated:
        extra["updated"] = updated
    return extra


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
        body = _gunzip(body, url, warnings)
    stripped = body.removeprefix(_UTF8_BOM).lstrip(_XML_SPACE)
    if not stripped:
        raise ParseError("empty body", url, "byte 0")
    if stripped[:1] in (b"{", b"["):
        return _parse_json_feed(body, url, feed_name, warnings)
    return _parse_xml_feed(body, url, content_type, feed_name, warnings)


# --------------------------------------------------------------------------- bytes


def _gunzip(body: bytes, url: str, warnings: list[str]) -> bytes:
    """Decompress a gzip body (one or more members), at most MAX_DECOMPRESSED_BYTES.

    A stream that ends early keeps what was decompressed and adds a warning.

    Raises:
        ParseError: the stream is corrupt or decompresses to too many bytes.
    """
    out = bytearray()
    data = body
    while data:
        inflater = zlib.decompressobj(wbits=31)
        try:
            out += inflater.decompress(data, MAX_DECOMPRESSED_BYTES + 1 - len(out))
        except zlib.error as exc:
            raise ParseError(
                f"corrupt gzip body: {exc}", url, f"byte {len(body) - len(data)}"
            ) from exc
        if len(out) > MAX_DECOMPRESSED_BYTES:
            raise ParseError(
                f"gzip body decompresses to more than {MAX_DECOMPRESSED_BYTES} bytes", url
            )
        if not inflater.eof:
            warnings.append(f"gzip stream truncated after {len(out)} decompressed bytes")
            break
        data = inflater.unused_data.lstrip(b"\x00")
    return bytes(out)


def _prepare_xml(body: bytes) -> bytes:
    """Drop whitespace before the first ``<`` (keeping a UTF-8 BOM) for strict XML parsers."""
    bom = _UTF8_BOM if body.startswith(_UTF8_BOM) else b""
    rest = body[len(bom) :].lstrip(_XML_SPACE)
    return bom + rest if rest.startswith(b"<") else body


def _decode_for_sniffing(data: bytes) -> str:
    """Decode bytes well enough to find tag names (never fails; not for content)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", "replace")
    if data[:1] == b"\x00" or data[1:2] == b"\x00":
        return data.decode("utf-16-be" if data[:1] == b"\x00" else "utf-16-le", "replace")
    return data.removeprefix(_UTF8_BOM).decode("utf-8", "replace")


def _line_column(text: str, offset: int) -> str:
    """Return ``"line L column C"`` (1-based) of ``offset`` in ``text``."""
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"line {line} column {column}"


def _sniff_root(text: str) -> tuple[str, int]:
    """Return the root element's lowercased local name and its offset (``("", 0)`` if none)."""
    pos = 0
    while True:
        match = _PROLOG_RE.match(text, pos)
        if match is None:
            break
        pos = match.end()
    root = _ROOT_RE.match(text, pos)
    if root is None:
        return "", pos
    name = root.group(1).rsplit(":", 1)[-1].lower()
    return name, root.start(1) - 1


def _clip(text: str, limit: int = 80) -> str:
    """Collapse whitespace, unescape entities and shorten ``text`` for a message."""
    text = " ".join(html.unescape(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- XML


def _parse_xml_feed(
    body: bytes, url: str, content_type: str, feed_name: str, warnings: list[str]
) -> ParsedFeed:
    """Parse RSS/RDF/Atom with feedparser; see :func:`parse_document`."""
    data = _prepare_xml(body)
    head = _decode_for_sniffing(body[:_SNIFF_BYTES])
    root, root_at = _sniff_root(head)
    position = _line_column(head, root_at)
    result: Any = _feedparse(data, url, content_type)
    version = str(_get(result, "version") or "")
    entries: list[Any] = list(_get(result, "entries") or [])
    # feedparser reports lines of the text it parsed: ours without the leading
    # whitespace, with an XML declaration prepended when there was none.
    line_shift = body[: len(body) - len(data)].count(b"\n")
    if not data.removeprefix(_UTF8_BOM).startswith(b"<?xml"):
        line_shift -= 1
    problem = _bozo_text(result, line_shift)

    # A page that is HTML or OPML at its root is not a feed, unless a feed
    # with entries is embedded in it (an Atom <feed> inside an XHTML <body>).
    embedded = bool(version and entries)
    if root in _HTML_ROOTS and not embedded:
        page = _html_text(body[:_SNIFF_BYTES], content_type)
        raise ParseError(f"not a feed: {_describe_html(page)}", url, position)
    text = _decode_for_sniffing(data)
    if root == "opml" and not embedded:
        outlines = len(_OUTLINE_RE.findall(text))
        raise ParseError(f"not a feed: OPML subscription list ({outlines} outlines)", url, position)
    if not version and not entries:
        detail = f" ({problem})" if problem else ""
        if root in _FEED_ROOTS:  # a feed's root, but nothing readable in it
            raise ParseError(f"malformed feed: unreadable <{root}> document{detail}", url, position)
        what = f"XML document with root element <{root}>" if root else "unrecognized document"
        raise ParseError(f"not a feed: {what}{detail}", url, position)
    if root not in _FEED_ROOTS:
        warnings.append(f"{version} feed found inside a <{root or '?'}> document")
    if problem:
        warnings.append(problem)

    skipped = 0
    truncated = False
    if root in _FEED_ROOTS and not _root_closed(text, root):
        # Truncated: re-parse strictly up to the last complete entry, so the
        # kept items are exactly what the whole document would have given.
        repaired = _close_after_last_entry(data)
        retry: Any = None
        if repaired is not None:
            with contextlib.suppress(ParseError):
                retry = _feedparse(repaired, url, content_type)
        if retry is not None and _get(retry, "version") and not _sax_failed(retry):
            kept: list[Any] = list(_get(retry, "entries") or [])
            result = retry
        else:  # the lenient parser's entries, less the one being written at the cut
            kept = entries[: len(_ENTRY_END_RE.findall(text))]
        skipped += max(0, _count_real(entries) - _count_real(kept))
        truncated = True
        entries = kept

    feed_info: Any = _get(result, "feed") or {}
    _reject_obsolete_notice(feed_info, entries, url, position)

    not_content = _media_descriptions(data, str(_get(result, "encoding") or "utf-8"))
    feed_author = ""
    if version.startswith("atom"):
        feed_author = _author_name(feed_info)
    # Relative links resolve against the document URL; a saved file
    # (``file:<name>``) has none that means anything, so its links resolve
    # against the feed's own home page link, else stay as written.
    base = _web_base(url) or _web_base(str(_get(feed_info, "link") or ""))
    items: list[Item] = []
    seen: set[str] = set()
    duplicates = 0
    for entry in entries:
        if not _has_content(entry):
            skipped += 1
            continue
        item = _xml_item(entry, base, version, feed_name, feed_author, not_content)
        if item.native_id in seen:
            duplicates += 1
            continue
        seen.add(item.native_id)
        items.append(item)
    if truncated:
        warnings.append(
            f"document truncated: the root element <{root}> is never closed; "
            f"kept the {len(items)} items complete before the cut"
        )
    return ParsedFeed(
        version=version,
        title=str(_get(feed_info, "title") or ""),
        link=str(_get(feed_info, "link") or ""),
        items=tuple(items),
        warning="; ".join(warnings) or None,
        duplicates=duplicates,
        skipped=skipped,
    )


def _feedparse(data: bytes, url: str, content_type: str) -> Any:
    """Run feedparser on ``data`` with HTML kept as sent and ``url`` as the base URI.

    Args:
        data: the document.
        url: the document URL: the base URI of relative links when it is an
            http(s) URL; otherwise there is none (links stay as written,
            ``xml:base`` still applies).
        content_type: the response ``Content-Type`` (may be ``""``).

    Raises:
        ParseError: feedparser itself crashed on the document. On damaged
            input it can raise TypeError, ValueError or UnicodeDecodeError
            from deep inside (an undecodable encoding declaration, an
            attribute it expected); any exception it raises is reported as a
            malformed feed, never passed on (DESIGN.md invariant 7).
    """
    # Without a Content-Type, say application/xml: feedparser then takes the
    # encoding from the XML declaration or BOM, else UTF-8 (RFC 7303 §4.3),
    # instead of its ISO-8859-1 fallback for headers lacking a Content-Type.
    headers = {"content-type": _xml_media_type(content_type)}
    base = _web_base(url)
    if base:
        headers["content-location"] = base
    # A BytesIO, never bytes: feedparser treats a bytes/str argument as a file
    # name or URL first, which would be I/O driven by the response body.
    try:
        return feedparser.parse(
            io.BytesIO(data),
            response_headers=headers,
            sanitize_html=False,
            resolve_relative_uris=False,
        )
    except Exception as exc:  # third-party parser on hostile input: see Raises
        raise ParseError(
            f"malformed feed: the feed parser failed ({type(exc).__name__}: {exc})", url
        ) from exc


def _web_base(url: str) -> str:
    """``url`` when it is an absolute http(s) URL (a usable base URI), else ``""``."""
    text = url.strip()
    parts = urlsplit(text)
    return text if parts.scheme.lower() in ("http", "https") and parts.netloc else ""


def _xml_media_type(content_type: str) -> str:
    """The ``Content-Type`` feedparser is told: ``application/xml`` when none or no charset.

    RFC 7303 §3 and §8.5: a ``text/xml`` (or other ``text/*+xml``) document
    without a ``charset`` parameter takes its encoding from the BOM or the
    XML declaration, like ``application/xml``; feedparser still applies the
    old RFC 3023 rule (US-ASCII) and warns of an override that is none.
    """
    media, _, params = content_type.partition(";")
    media = media.strip().lower()
    if not media or (media.startswith("text/") and "charset" not in params.lower()):
        return "application/xml"
    return content_type


def _sax_failed(result: Any) -> bool:
    """True when feedparser's strict XML parser gave up on the document."""
    return isinstance(_get(result, "bozo_exception"), xml.sax.SAXException)


def _close_after_last_entry(data: bytes) -> bytes | None:
    """Cut a truncated XML document after its last complete entry and close what is open.

    The document is scanned with expat (tag names only; the encoding is
    overridden with ISO-8859-1, which accepts any byte, since only ASCII
    names matter). The cut goes after the last ``</item>`` or ``</entry>``
    that leaves no item or entry open (an illegally nested inner item does
    not count), and end tags for the still-open ancestors are appended.

    Returns:
        The repaired document, or None when no entry is complete or the part
        before the cut is not well-formed (expat stopped before the end).
    """
    parser = expat.ParserCreate(encoding="ISO-8859-1")
    stack: list[str] = []
    safe: list[tuple[int, tuple[str, ...]]] = []

    def is_entry(name: str) -> bool:
        return name.rsplit(":", 1)[-1].lower() in ("item", "entry")

    def start(name: str, _attrs: Any) -> None:
        stack.append(name)

    def end(name: str) -> None:
        stack.pop()
        if is_entry(name) and not any(is_entry(n) for n in stack):
            close = data.find(b">", parser.CurrentByteIndex)
            safe[:] = [(close + 1, tuple(stack))]

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(data, False)  # not final: an unfinished tail is no error
    except expat.ExpatError:
        return None
    if not safe:
        return None
    cut, still_open = safe[0]
    closing = b"".join(b"</" + n.encode("latin-1") + b">" for n in reversed(still_open))
    return data[:cut] + closing


_META_CHARSET_RE = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)""", re.IGNORECASE)
_CHARSET_PARAM_RE = re.compile(r"""charset\s*=\s*["']?([\w.:-]+)""", re.IGNORECASE)


def _html_text(head: bytes, content_type: str) -> str:
    """The start of an HTML page as text, for a message (never fails).

    The encoding is the ``charset`` of the Content-Type, else a ``<meta>``
    charset (HTML Living Standard §13.2.3.2, the prescan, simplified), else
    UTF-8 when the bytes are UTF-8, else windows-1252 (what browsers assume).
    """
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return _decode_for_sniffing(head)
    found = _CHARSET_PARAM_RE.search(content_type) or _META_CHARSET_RE.search(head[:4096])
    names = []
    if found is not None:
        name = found.group(1)
        names.append(name.decode("ascii", "replace") if isinstance(name, bytes) else name)
    for name in (*names, "utf-8"):
        try:
            return head.removeprefix(_UTF8_BOM).decode(name)
        except (LookupError, UnicodeDecodeError):
            continue
    return head.decode("cp1252", "replace")


def _describe_html(head: str) -> str:
    """Describe an HTML page for a "not a feed" message (its title, a moved-to link)."""
    match = _TITLE_RE.search(head)
    title = _clip(match.group(1)) if match else ""
    what = f"HTML page titled {title!r}" if title else "HTML page"
    if _MOVED_PAGE_RE.search(head[:2048]) and len(head) < 2048:
        href = _HREF_RE.search(head)
        if href:
            what += f" pointing to {href.group(1)}"
    return what


def _bozo_text(result: Any, line_shift: int) -> str:
    """Return feedparser's complaint (its ``bozo_exception``) as text, or ``""``.

    ``line_shift`` maps the parser's line numbers back to lines of the body.
    """
    if not _get(result, "bozo"):
        return ""
    exc = _get(result, "bozo_exception")
    if exc is None:
        return "not well-formed"
    name = type(exc).__name__
    line = getattr(exc, "getLineNumber", None)
    column = getattr(exc, "getColumnNumber", None)
    if callable(line) and callable(column):
        message = str(getattr(exc, "getMessage", lambda: str(exc))())
        return f"{name}: {message} at line {line() + line_shift} column {column() + 1}"
    return f"{name}: {exc}"


def _root_closed(text: str, root: str) -> bool:
    """True when the root element's end tag appears in the document."""
    return re.search(rf"</(?:[\w.-]+:)?{re.escape(root)}\s*>", text, re.IGNORECASE) is not None


def _reject_obsolete_notice(
    feed_info: Mapping[str, Any], entries: list[Any], url: str, position: str
) -> None:
    """Raise "not a feed" for a one-entry notice that the feed has moved or is obsolete.

    The rule is narrow on purpose: at most one entry, and the feed title or
    description or that entry's title says "obsolete feed" or "feed has moved".
    """
    if len(entries) > 1:
        return
    texts = [str(_get(feed_info, "title") or ""), str(_get(feed_info, "subtitle") or "")]
    texts += [str(_get(e, "title") or "") for e in entries]
    if not any(_OBSOLETE_RE.search(t) for t in texts):
        return
    pool = texts + [str(_get(e, "summary") or "") for e in entries]
    new_url = next((m.group(0) for t in pool for m in _URL_RE.finditer(t)), "")
    where = f" (moved to {new_url.rstrip('.,;')})" if new_url else ""
    raise ParseError(f"not a feed: obsolete-feed notice{where}", url, position)


def _squash(text: str) -> str:
    """``text`` with runs of whitespace collapsed and the ends stripped."""
    return " ".join(text.split())


def _media_descriptions(data: bytes, encoding: str) -> frozenset[str]:
    """The texts of the document's Media RSS ``<media:description>`` elements, squashed.

    feedparser files a ``media:description`` under the entry's ``content``
    (or ``summary``), where it would pass for the article text; these texts
    let :func:`_xml_item` tell them apart from ``content:encoded`` and the like.
    """
    if _MRSS_NS not in data:
        return frozenset()
    try:
        text = data.decode(encoding, "replace")
    except LookupError:
        text = data.decode("utf-8", "replace")
    found: set[str] = set()
    for prefix in set(_MRSS_PREFIX_RE.findall(text)):
        pattern = (
            rf"<{re.escape(prefix)}:description\b[^>]*>(.*?)</{re.escape(prefix)}:description\s*>"
        )
        for match in re.finditer(pattern, text, re.DOTALL):
            raw = match.group(1).strip()
            if raw.startswith("<![CDATA[") and raw.endswith("]]>"):
                raw = raw[9:-3]
            else:
                raw = html.unescape(raw)
            found.add(_squash(raw))
    return frozenset(found)


def _count_real(entries: Iterable[Mapping[str, Any]]) -> int:
    """The number of entries that are not empty (see :func:`_has_content`)."""
    return sum(1 for entry in entries if _has_content(entry))


def _has_content(entry: Mapping[str, Any]) -> bool:
    """True when an entry carries an id, link, title, text or a date."""
    keys = ("id", "link", "title", "summary", "content", "published", "updated")
    return any(_get(entry, key) for key in keys)


def _xml_item(
    entry: Any,
    base: str,
    version: str,
    feed_name: str,
    feed_author: str,
    not_content: frozenset[str] = frozenset(),
) -> Item:
    """Build an Item from one feedparser entry.

    Args:
        entry: the feedparser entry.
        base: the document URL, the base of relative links.
        version: the document format (``extra["format"]``).
        feed_name: the feed name for ``Item.feed``.
        feed_author: the author to inherit when the entry has none (Atom), or ``""``.
        not_content: normalised texts that feedparser files under ``content``
            but are not the entry's content (Media RSS descriptions).
    """
    title = str(_get(entry, "title") or "")
    link = _entry_link(entry, base, version)
    contents = [
        str(_get(c, "value") or "")
        for c in _get(entry, "content") or []
        if _squash(str(_get(c, "value") or "")) not in not_content
    ]
    text = next((c for c in contents if c), "") or str(_get(entry, "summary") or "")
    published_raw = str(_get(entry, "published") or "")
    updated_raw = str(_get(entry, "updated") or "")
    published = _normalize_date(published_raw, _get(entry, "published_parsed"))
    updated = _normalize_date(updated_raw, _get(entry, "updated_parsed"))

    extra = _date_extra(version, published_raw, updated_raw, updated)
    names = [n for n in (_author_name(a) for a in _get(entry, "authors") or []) if n]
    if len(names) > 1:
        extra["authors"] = names
    categories = _terms(_get(entry, "tags") or [])
    if categories:
        extra["categories"] = categories
    enclosures = [
        _enclosure(_absolute(base, _get(e, "href")), _get(e, "type"), _get(e, "length"))
        for e in _get(entry, "links") or []
        if _get(e, "rel") == "enclosure" and _get(e, "href")
    ]
    if enclosures:
        extra["enclosures"] = enclosures
    media = _media(base, _get(entry, "media_content") or [])
    if media:
        extra["media"] = media
    thumbnails = _unique(
        _absolute(base, _get(t, "url"))
        for t in _get(entry, "media_thumbnail") or []
        if _get(t, "url")
    )
    if thumbnails:
        extra["thumbnails"] = thumbnails
    comments = _absolute_url(base, _get(entry, "comments")) or _replies_link(base, entry)
    if comments:
        extra["comments"] = comments
    for key, name in (("wfw_commentrss", "comment_feed"), ("feedburner_origlink", "orig_link")):
        value = _absolute_url(base, _get(entry, key))
        if value:
            extra[name] = value

    counters: dict[str, int | float] = {}
    count = _count(_get(entry, "slash_comments"))
    if count is None:
        count = _count(_get(entry, "thr_total"))
    if count is not None:
        counters["comments"] = count

    native_id = _native_id(_get(entry, "id"), link, title, published_raw or updated_raw)
    return Item(
        source=RssSource.kind,
        feed=feed_name,
        native_id=native_id,
        url=link,
        title=title,
        text=text,
        author=_author_name(entry) or _author_name(_get(entry, "source")) or feed_author,
        published_at=published or updated,
        extra=extra,
        counters=counters,
    )


def _entry_link(entry: Any, base: str, version: str) -> str:
    """The entry's link (``url``), resolved against ``base``; ``""`` when it has none.

    feedparser copies the id into ``link`` when the entry has no alternate
    link element (its ``guidislink`` flag is set, and ``links`` holds no
    ``rel="alternate"``; a link element that comes after the id replaces
    the copy). That is RSS 2.0's permalink rule (a ``<guid>`` without
    ``isPermaLink="false"`` is the item's URL) and holds when the guid is an
    absolute http(s) URL; a guid that is not one is no link. An Atom id is
    never a link (RFC 4287 §4.2.6: an identifier; the link is
    ``atom:link rel="alternate"``, §4.2.7.2).
    """
    raw = _text(_get(entry, "link")).strip()
    alternates = [
        link for link in _get(entry, "links") or [] if _get(link, "rel") in ("alternate", None)
    ]
    from_id = bool(raw) and bool(_get(entry, "guidislink")) and not alternates
    if from_id and (version.startswith("atom") or not _web_base(raw)):
        return ""
    return _absolute(base, raw)


def _get(obj: Any, key: str) -> Any:
    """Look ``key`` up in a feedparser dict without its aliases, or None.

    ``FeedParserDict.get`` maps some keys to others (``updated`` falls back
    to ``published`` with a DeprecationWarning, ``description`` to
    ``summary``); a plain :meth:`dict.get` reads only what was parsed.
    """
    return dict.get(obj, key) if isinstance(obj, dict) else None


def _author_name(obj: Any) -> str:
    """The author of a feedparser entry or feed: ``author_detail.name``, else ``author``."""
    if not isinstance(obj, Mapping):
        return ""
    detail = _get(obj, "author_detail")
    if isinstance(detail, Mapping) and _get(detail, "name"):
        return str(detail["name"]).strip()
    return str(_get(obj, "author") or _get(obj, "name") or "").strip()


def _terms(tags: Iterable[Any]) -> list[str]:
    """Category terms (else labels) of feedparser tags, in order, without repeats."""
    return _unique(str(_get(t, "term") or _get(t, "label") or "").strip() for t in tags)


def _media(base: str, contents: Iterable[Any]) -> list[dict[str, str]]:
    """Media RSS ``media:content`` elements as ``url``/``type``/``medium``, unique by URL."""
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for content in contents:
        media_url = _absolute(base, _get(content, "url"))
        if not media_url or media_url in seen:
            continue
        seen.add(media_url)
        record = {"url": media_url}
        for key in ("type", "medium"):
            if _get(content, key):
                record[key] = str(content[key])
        out.append(record)
    return out


def _replies_link(base: str, entry: Any) -> str:
    """The Atom ``link rel="replies"`` (RFC 4685 §3) of an entry, or ``""``."""
    for link in _get(entry, "links") or []:
        if _get(link, "rel") == "replies" and _get(link, "href"):
            return _absolute(base, link["href"])
    return ""


# --------------------------------------------------------------------------- JSON Feed


def _parse_json_feed(body: bytes, url: str, feed_name: str, warnings: list[str]) -> ParsedFeed:
    """Parse a JSON Feed 1.0/1.1 document (https://www.jsonfeed.org/version/1.1/)."""
    try:
        doc = json.loads(body)
    except json.JSONDecodeError as exc:
        # A document that names itself a JSON Feed is a damaged feed (kept,
        # flagged), not some other JSON: a cut-off download reads like this.
        what = (
            "malformed feed: invalid JSON Feed"
            if _JSON_FEED_PREFIX.encode() in body[:4096]
            else ("not a feed: malformed JSON")
        )
        raise ParseError(
            f"{what} ({exc.msg})", url, f"line {exc.lineno} column {exc.colno}"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ParseError(
            f"not a feed: JSON is not UTF-8 ({exc.reason})", url, f"byte {exc.start}"
        ) from exc
    if not isinstance(doc, dict):
        raise ParseError(f"not a feed: a JSON {type(doc).__name__}, not a JSON Feed", url, "$")
    spec = doc.get("version")
    if not isinstance(spec, str) or not spec.startswith(_JSON_FEED_PREFIX):
        raise ParseError(
            f"not a feed: a JSON object without a JSON Feed version (version={spec!r})",
            url,
            "$.version",
        )
    number = spec.removeprefix(_JSON_FEED_PREFIX).strip("/")
    version = "json" + number.replace(".", "") + ("0" if "." not in number else "")
    raw_items = doc.get("items")
    if not isinstance(raw_items, list):
        raise ParseError("malformed feed: JSON Feed has no items list", url, "$.items")
    # Relative URLs resolve against the document URL; a saved file has none
    # that means anything, so its feed_url, else its home_page_url, serves.
    base = _web_base(url)
    for declared in (doc.get("feed_url"), doc.get("home_page_url")):
        if not base and isinstance(declared, str):
            base = _web_base(declared)
    feed_author = _json_author(doc)

    items: list[Item] = []
    seen: set[str] = set()
    duplicates = skipped = 0
    for index, raw in enumerate(raw_items):
        if not isinstance(raw, dict):
            skipped += 1
            warnings.append(f"$.items[{index}] is not an object")
            continue
        item = _json_item(raw, base, version, feed_name, feed_author)
        if item.native_id in seen:
            duplicates += 1
            continue
        seen.add(item.native_id)
        items.append(item)
    return ParsedFeed(
        version=version,
        title=_text(doc.get("title")),
        link=_absolute(base, doc.get("home_page_url")),
        items=tuple(items),
        warning="; ".join(warnings) or None,
        duplicates=duplicates,
        skipped=skipped,
    )


def _text(value: Any) -> str:
    """A JSON scalar as text (``""`` for null, objects and lists)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        return ""
    return str(value)


def _json_author(obj: Mapping[str, Any]) -> str:
    """The first author name of a JSON Feed object: 1.1 ``authors``, else 1.0 ``author``."""
    authors = obj.get("authors")
    if isinstance(authors, list):
        for author in authors:
            if isinstance(author, dict) and _text(author.get("name")):
                return _text(author.get("name"))
    author = obj.get("author")
    if isinstance(author, dict):
        return _text(author.get("name"))
    return ""


def _json_item(
    raw: Mapping[str, Any], base: str, version: str, feed_name: str, feed_author: str
) -> Item:
    """Build an Item from one JSON Feed item (ids are coerced to strings, JSON Feed 1.1)."""
    title = _text(raw.get("title"))
    link = _absolute(base, raw.get("url"))
    text = (
        _text(raw.get("content_html"))
        or _text(raw.get("content_text"))
        or _text(raw.get("summary"))
    )
    published_raw = _text(raw.get("date_published"))
    updated_raw = _text(raw.get("date_modified"))
    published = _iso_to_rfc3339(published_raw)
    updated = _iso_to_rfc3339(updated_raw)

    extra = _date_extra(version, published_raw, updated_raw, updated)
    tags = raw.get("tags")
    if isinstance(tags, list):
        categories = _unique(_text(t).strip() for t in tags)
        if categories:
            extra["categories"] = categories
    attachments = raw.get("attachments")
    if isinstance(attachments, list):
        enclosures = [
            _enclosure(_absolute(base, a.get("url")), a.get("mime_type"), a.get("size_in_bytes"))
            for a in attachments
            if isinstance(a, dict) and a.get("url")
        ]
        if enclosures:
            extra["enclosures"] = enclosures
    for key in ("external_url", "image", "banner_image"):
        value = _absolute(base, raw.get(key))
        if value:
            extra[key] = value
    for key in ("summary", "language"):
        if _text(raw.get(key)):
            extra[key] = _text(raw.get(key))
    authors = raw.get("authors")
    if isinstance(authors, list):
        names = [_text(a.get("name")) for a in authors if isinstance(a, dict)]
        names = [n for n in names if n]
        if len(names) > 1:
            extra["authors"] = names

    return Item(
        source=RssSource.kind,
        feed=feed_name,
        native_id=_native_id(raw.get("id"), link, title, published_raw or updated_raw),
        url=link,
        title=title,
        text=text,
        author=_json_author(raw) or feed_author,
        published_at=published or updated,
        extra=extra,
    )


# --------------------------------------------------------------------------- shared helpers


def _native_id(raw_id: Any, link: str, title: str, raw_date: str) -> str:
    """The id rule of the module docstring: id, else link, else sha256 of title and date."""
    native = _text(raw_id).strip()
    if native:
        return native
    if link:
        return link
    digest = hashlib.sha256(f"{title}\n{raw_date}".encode()).hexdigest()
    return f"sha256:{digest}"


def _absolute(base: str, value: Any) -> str:
    """``value`` as an absolute URL resolved against ``base`` (``""`` when empty)."""
    text = _text(value).strip()
    if not text:
        return ""
    try:
        return urljoin(base, text)
    except ValueError:  # e.g. an invalid IPv6 literal: keep what was sent
        return text


def _absolute_url(base: str, value: Any) -> str:
    """Like :func:`_absolute`, but ``""`` for text that cannot be a URI reference.

    For fields that must hold a URL (RSS ``<comments>``, ``wfw:commentRss``,
    ``feedburner:origLink``): free text such as "Some text" holds white space,
    which a URI never does (RFC 3986 §2; feeds that put a comment count or a
    sentence there are common), and is dropped rather than turned into a
    made-up URL.
    """
    text = _text(value).strip()
    if not text or any(c.isspace() for c in text):
        return ""
    return _absolute(base, text)


def _enclosure(url: str, media_type: Any, length: Any) -> dict[str, Any]:
    """An enclosure record: ``url``, ``type`` (or ``""``) and ``length`` in bytes (or None)."""
    return {"url": url, "type": _text(media_type), "length": _count(length)}


def _count(value: Any) -> int | None:
    """A non-negative integer read from an int or a decimal string, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    text = _text(value).strip()
    return int(text) if text.isdigit() else None


def _unique(values: Iterable[str]) -> list[str]:
    """The non-empty values in first-seen order, without repeats."""
    out: list[str] = []
    for value in values:
        if value and value not in out:
            out.append(value)
    return out


def _format_utc(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds (``2026-11-22T01:41:19.000000Z``), or ``""``.

    ``""`` when the moment falls outside years 1-9999 once moved to UTC.
    """
    try:
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except (OverflowError, ValueError):
        return ""


def _struct_time_to_rfc3339(value: Any) -> str:
    """Convert feedparser's ``*_parsed`` (a UTC ``struct_time``) to RFC 3339, or ``""``."""
    if not isinstance(value, time.struct_time):
        return ""
    try:
        return _format_utc(datetime.fromtimestamp(calendar.timegm(value), tz=UTC))
    except (OverflowError, ValueError, OSError):
        return ""


def _normalize_date(raw: str, parsed: Any) -> str:
    """Normalise an entry date to RFC 3339 UTC, or ``""`` when it cannot be read.

    A wrong date is worse than none, so feedparser's reading is used only
    where it is reliable:

    * a date shaped like RFC 3339 (``YYYY-MM-DDTHH:MM``...) is read here and
      only here (:func:`_iso_to_rfc3339`): its fractional seconds survive,
      and an impossible one (``2024-02-30``, ``...-05:00Z``) gives ``""``
      where feedparser would roll it into March or drop the offset;
    * ten digits are a Unix time in seconds (feedparser reads them as an
      ISO 8601 ordinal date);
    * a 12-hour time (``1:55 PM``, ``07:02:38 pm``) is turned into 24-hour
      time before feedparser reads the date (it ignores AM/PM);
    * anything else is feedparser's parse, then the localized RFC 822
      fallback (:func:`_localized_date`).

    Args:
        raw: the date as written in the document.
        parsed: feedparser's ``*_parsed`` value for it (a UTC ``struct_time``) or None.
    """
    text = raw.strip()
    if not text:
        return ""
    if _RFC3339_RE.match(text):
        return _iso_to_rfc3339(text)
    if _EPOCH_RE.fullmatch(text):
        return _format_utc(datetime.fromtimestamp(int(text), tz=UTC))
    if _TWELVE_HOUR_RE.search(text):
        return _struct_time_to_rfc3339(_feedparser_date(_TWELVE_HOUR_RE.sub(_to_24h, text)))
    return _struct_time_to_rfc3339(parsed) or _localized_date(raw)


def _to_24h(match: re.Match[str]) -> str:
    """``1:55 PM`` as ``13:55:00`` (12 AM is 00, 12 PM is 12)."""
    hour, minute, second, half = match.groups()
    hour24 = int(hour) % 12 + (12 if half.lower() == "p" else 0)
    return f"{hour24:02d}:{minute}:{second or '00'}"


def _feedparser_date(text: str) -> Any:
    """The date feedparser reads in ``text`` (a UTC ``struct_time``), or None."""
    try:
        return feedparser.datetimes._parse_date(text)
    except Exception:  # a third-party parser on hostile text: no date, never a crash
        return None


def _iso_to_rfc3339(raw: str) -> str:
    """Convert an RFC 3339 / ISO 8601 date-time to RFC 3339 UTC, or ``""``.

    RFC 3339 §5.6: ``T`` and ``Z`` may be lowercase (its NOTE), the
    fraction may have any number of digits (microseconds are kept), a
    leap second (``:60``) is read as ``:59``. Also accepted, as feeds write
    them: a space for ``T``, ``±hhmm`` offsets, ``UTC``/``GMT`` for ``Z``,
    and no offset at all (taken as UTC, as JSON Feed producers mean it).
    Anything else, or a date that does not exist, gives ``""``.
    """
    match = _ISO_DATETIME_RE.fullmatch(raw.strip())
    if match is None:
        return _localized_date(raw)
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    offset = timedelta(0)
    if zone and zone[0] in "+-":
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
        if zone[0] == "-":
            offset = -offset
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            min(int(second or 0), 59),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=timezone(offset),
        )
    except ValueError:
        return ""
    return _format_utc(moment)


def _localized_date(raw: str) -> str:
    """Read an RFC 822 date with non-English day/month names; ``""`` when it is not one.

    Only numeric offsets and GMT/UTC/Z are accepted as zones (no zone means UTC).
    """
    match = _LOCAL_DATE_RE.match(raw)
    if match is None:
        return ""
    day, month_name, year, hour, minute, second, zone = match.groups()
    folded = unicodedata.normalize("NFKD", month_name.lower())
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    month = _MONTHS.get(folded[:4]) or _MONTHS.get(folded[:3])
    if month is None:
        return ""
    full_year = int(year)
    if len(year) == 2:
        full_year += 2000 if full_year < 50 else 1900
    offset = timedelta(0)
    if zone and zone[0] in "+-":
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        if zone[0] == "-":
            offset = -offset
    try:
        moment = datetime(
            full_year,
            month,
            int(day),
            int(hour),
            int(minute),
            int(second or 0),
            tzinfo=timezone(offset),
        )
    except ValueError:
        return ""
    return _format_utc(moment)
