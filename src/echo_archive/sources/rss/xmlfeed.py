"""XML feeds of the ``rss`` source: RSS 0.9x/1.0 (RDF)/2.0 and Atom 0.3/1.0, read with feedparser.

RSS 2.0 (https://www.rssboard.org/rss-specification), RSS 1.0
(https://web.resource.org/rss/1.0/spec) and Atom (RFC 4287) documents are
parsed by ``feedparser`` with HTML kept as sent; this module decides what is
not a feed (HTML and OPML pages, obsolete-feed notices), repairs truncated
documents after their last complete entry, and builds one
:class:`~echo_archive.model.Item` per entry with the rules of the package
docstring (:mod:`echo_archive.sources.rss`).
"""

from __future__ import annotations

import contextlib
import html
import io
import re
import xml.sax
from collections.abc import Iterable, Mapping
from typing import Any
from xml.parsers import expat

import feedparser
import feedparser.mixin

from echo_archive.errors import ParseError
from echo_archive.model import Item
from echo_archive.sources.rss.dates import read_date
from echo_archive.sources.rss.items import (
    KIND,
    ParsedFeed,
    _absolute,
    _absolute_url,
    _count,
    _date_extra,
    _enclosure,
    _native_id,
    _text,
    _unique,
    _web_base,
)
from echo_archive.sources.rss.sniff import (
    _FEED_ROOTS,
    _HTML_ROOTS,
    _SNIFF_BYTES,
    _UTF8_BOM,
    _XML_SPACE,
    _decode_for_sniffing,
    _describe_html,
    _html_text,
    _line_column,
    _sniff_root,
)

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


_URL_RE = re.compile(r"https?://[^\s<>\"']+")


def _prepare_xml(body: bytes) -> bytes:
    """Drop whitespace before the first ``<`` (keeping a UTF-8 BOM) for strict XML parsers."""
    bom = _UTF8_BOM if body.startswith(_UTF8_BOM) else b""
    rest = body[len(bom) :].lstrip(_XML_SPACE)
    return bom + rest if rest.startswith(b"<") else body


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
        if item.native_id in seen:  # kept: the pipeline makes it a version or a duplicate
            duplicates += 1
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
    published_at = read_date(published_raw, _get(entry, "published_parsed"))
    updated_at = read_date(updated_raw, _get(entry, "updated_parsed"))
    published, updated = published_at.value, updated_at.value

    extra = _date_extra(
        version, published_raw, updated_raw, updated, (published_at.warning, updated_at.warning)
    )
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
        source=KIND,
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
