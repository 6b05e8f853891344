"""What every feed format of the ``rss`` source shares: the parsed document and the item fields.

:class:`ParsedFeed` is what :func:`~echo_archive.sources.rss.parse_document`
returns for RSS, RDF, Atom and JSON Feed alike; the helpers here are the
rules of the item fields that do not depend on the format (the ``native_id``
rule, absolute URLs, enclosure records, counts), as the package docstring
(:mod:`echo_archive.sources.rss`) states them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from echo_archive.model import Item

#: The source kind of every item this package makes (``Item.source``).
KIND = "rss"


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """One feed document, parsed and normalised.

    Attributes:
        version: the format (``rss20``, ``rss10`` for RSS 1.0 RDF, ``rss091u``,
            ``atom10``, ``json11``...; feedparser's names for XML formats).
        title: the feed's title, or ``""``.
        link: the feed's home page link, or ``""``.
        items: the items, in document order, an entry repeating an earlier
            entry's id included (the pipeline archives it as a version of the
            earlier one when its content differs, else counts a duplicate).
        warning: what the parser complained about while still finding entries
            (not well-formed XML, an encoding override, truncation), or None.
        duplicates: entries (kept in ``items``) whose id an earlier entry of
            the document had.
        skipped: entries dropped because they were empty (no id, link, title,
            text or date, as illegal nesting produces) or cut off by truncation.
        truncated: the document was cut off (a JSON Feed whose complete
            entries were salvaged); the capture is flagged truncated.
    """

    version: str
    title: str
    link: str
    items: tuple[Item, ...]
    warning: str | None = None
    duplicates: int = 0
    skipped: int = 0
    truncated: bool = False


def _date_extra(
    version: str,
    published_raw: str,
    updated_raw: str,
    updated: str,
    warnings: Iterable[str | None] = (),
) -> dict[str, Any]:
    """The ``extra`` fields every format shares: the format, raw dates, normalized update time.

    ``warnings`` are the date readings' warnings (:class:`~echo_archive.sources.rss.dates.
    DateReading`); those that are set go in ``date_warning``, joined by ``; ``.
    """
    extra: dict[str, Any] = {"format": version}
    if published_raw:
        extra["published_raw"] = published_raw
    if updated_raw:
        extra["updated_raw"] = updated_raw
    if updated:
        extra["updated"] = updated
    problems = [w for w in warnings if w]
    if problems:
        extra["date_warning"] = "; ".join(problems)
    return extra


def _web_base(url: str) -> str:
    """``url`` when it is an absolute http(s) URL (a usable base URI), else ``""``."""
    text = url.strip()
    parts = urlsplit(text)
    return text if parts.scheme.lower() in ("http", "https") and parts.netloc else ""


def _text(value: Any) -> str:
    """A JSON scalar as text (``""`` for null, objects and lists)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        return ""
    return str(value)


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
