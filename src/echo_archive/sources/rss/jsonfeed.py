"""JSON Feed 1.0 and 1.1 documents of the ``rss`` source (https://www.jsonfeed.org/version/1.1/).

Format names ``json10`` and ``json11``; item fields follow the rules of the
package docstring (:mod:`echo_archive.sources.rss`). A malformed document
raises :class:`~echo_archive.errors.ParseError` with the line and column. A
truncated one (it names itself a JSON Feed, and its JSON stops short, as a
cut-off download does) is salvaged: the entries complete before the cut are
read, the warning says where the document stops, and
:attr:`~echo_archive.sources.rss.items.ParsedFeed.truncated` is set (the
capture is flagged truncated). Cut inside the ``items`` array before any
complete entry, or before it, it stays a malformed-feed ParseError.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from echo_archive.errors import ParseError
from echo_archive.jsondecode import decode_json
from echo_archive.model import Item
from echo_archive.sources.rss.dates import read_date
from echo_archive.sources.rss.items import (
    KIND,
    ParsedFeed,
    _absolute,
    _date_extra,
    _enclosure,
    _native_id,
    _text,
    _unique,
    _web_base,
)

_JSON_FEED_PREFIX = "https://jsonfeed.org/version/"


def _parse_json_feed(body: bytes, url: str, feed_name: str, warnings: list[str]) -> ParsedFeed:
    """Parse a JSON Feed 1.0/1.1 document (https://www.jsonfeed.org/version/1.1/)."""
    truncated = False
    try:
        doc = decode_json(body, url)
    except ParseError as exc:
        # A document that names itself a JSON Feed is a damaged feed (kept,
        # flagged), not some other JSON: a cut-off download reads like this.
        if _JSON_FEED_PREFIX.encode() not in body[:4096]:
            raise ParseError(f"not a feed: {exc.message}", url, exc.position) from exc
        salvaged = _salvage(body, url)
        if salvaged is None:
            message = f"malformed feed: invalid JSON Feed ({exc.message})"
            raise ParseError(message, url, exc.position) from exc
        doc, cut = salvaged
        truncated = True
        warnings.append(
            f"document truncated: invalid JSON Feed ({exc.message} at {exc.position}); "
            f"the entries complete before byte {cut} salvaged"
        )
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
        if item.native_id in seen:  # kept: the pipeline makes it a version or a duplicate
            duplicates += 1
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
        truncated=truncated,
    )


_OPEN: Final = {ord("{"): b"}", ord("["): b"]"}
_CLOSE: Final = frozenset(b"}]")
_SALVAGE_TRIES: Final = 64


def _salvage(body: bytes, url: str) -> tuple[Any, int] | None:
    r"""The JSON Feed object of a cut-off document, up to its last complete entry.

    One pass over the bytes (UTF-8 keeps ``{``, ``[``, ``"`` and ``\\`` out
    of multi-byte characters) finds every place where an element of an array
    directly inside the top-level object ends; from the last backwards (at
    most 64), the document cut there and closed (``]}``) is decoded by
    :func:`~echo_archive.jsondecode.decode_json`; the first that decodes to
    an object with an ``items`` array wins.

    Returns:
        ``(document, byte offset of the cut)``, or None when no cut decodes.
    """
    ends: list[int] = []
    stack: list[int] = []
    in_string = escaped = False
    for offset, byte in enumerate(body):
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in _OPEN:
            stack.append(byte)
        elif byte in _CLOSE:
            if not stack:
                return None
            stack.pop()
            if stack == [ord("{"), ord("[")]:
                ends.append(offset + 1)
    for cut in reversed(ends[-_SALVAGE_TRIES:]):
        try:
            doc = decode_json(body[:cut] + b"]}", url)
        except ParseError:
            continue
        if isinstance(doc, dict) and isinstance(doc.get("items"), list):
            return doc, cut
    return None


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
    published_at, updated_at = read_date(published_raw), read_date(updated_raw)
    published, updated = published_at.value, updated_at.value

    extra = _date_extra(
        version, published_raw, updated_raw, updated, (published_at.warning, updated_at.warning)
    )
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
        source=KIND,
        feed=feed_name,
        native_id=_native_id(raw.get("id"), link, title, published_raw or updated_raw),
        url=link,
        title=title,
        text=text,
        author=_json_author(raw) or feed_author,
        published_at=published or updated,
        extra=extra,
    )
