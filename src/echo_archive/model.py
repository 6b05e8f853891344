"""Frozen value types shared by the harvest, sources and pipeline layers.

Terms (DESIGN.md glossary):

request
    What a source asks the fetch engine to fetch: method, URL, headers, and a
    ``purpose`` mapping the source reads back when the response arrives
    (which listing page, which comment depth...).
exchange
    One HTTP exchange as received (or as recorded): the request, the final
    URL and the redirect chain, the status, the response headers (all of them,
    in order, names as sent), the body after content-decoding, when it was
    fetched and how long it took. A *capture* is an exchange archived in the
    vault (invariant 5, raw first).
item
    One normalized signal parsed from an exchange: source, feed, native id,
    url, title, text, author, published time, a source-specific ``extra``
    mapping and the volatile ``counters`` (score, comments, stars...) that are
    observed, not versioned.
tombstone
    The statement that an item known to the archive is deleted or removed at
    the source (``[deleted]``, ``[removed]``, HN ``deleted``/``dead``, 404/410).

Times are RFC 3339 UTC strings (``2026-11-22T01:41:19.123456Z``); durations
are float seconds; bodies are bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Exchange", "Item", "ParseResult", "Request", "Tombstone", "header", "header_values"]


def header(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    """Return the first value of header ``name`` (case-insensitive), or None.

    The one header lookup of ECHO: the engine, the retry policy, the rate-limit
    readers, the sources and the recording readers all use it.

    Args:
        headers: ``(name, value)`` pairs as received (a tuple, a list...).
        name: the header name, any case (RFC 9110 §5.1: field names are case-insensitive).
    """
    lower = name.lower()
    for key, value in headers:
        if key.lower() == lower:
            return value
    return None


def header_values(headers: Iterable[tuple[str, str]], name: str) -> list[str]:
    """Return every value of header ``name`` (case-insensitive), in order.

    For fields that may repeat (``Link``, ``Content-Encoding``,
    ``WARC-Concurrent-To``); RFC 9110 §5.3 lets a recipient combine them.

    Args:
        headers: ``(name, value)`` pairs as received.
        name: the header name, any case.
    """
    lower = name.lower()
    return [value for key, value in headers if key.lower() == lower]


@dataclass(frozen=True, slots=True)
class Request:
    """A request a source wants fetched.

    Attributes:
        url: absolute URL.
        method: HTTP method (only GET and HEAD are retried: they are idempotent,
            RFC 9110 §9.2.2).
        headers: extra request headers ``(name, value)``.
        purpose: what the source needs to know when the response arrives
            (JSON-ready mapping; e.g. ``{"page": "listing", "depth": 0}``).
        body: the request body (a form for an OAuth token request), or empty.
    """

    url: str
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    purpose: Mapping[str, Any] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class Exchange:
    """One HTTP exchange as received or recorded.

    Attributes:
        method: the request method.
        url: the requested URL.
        final_url: the URL of the final response after redirects.
        status: the final HTTP status code.
        headers: the final response's headers ``(name, value)``, in order.
        body: the response body after content-decoding (gzip, deflate, br).
        fetched_at: RFC 3339 UTC time the response arrived (for a recording,
            the time the recording says; see ``recorded_at``).
        elapsed: seconds from sending the request to the end of the body.
        redirects: the URLs redirected through, in order (empty when none).
        request_headers: the request's headers ``(name, value)``.
        recorded_at: for an exchange read from a recording (cassette, HAR,
            WARC), the recording's own timestamp; None for a live fetch. It is
            *claimed* by the recording, not attested by the log.
        truncated: True when the body was cut at the size limit.
    """

    method: str
    url: str
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    final_url: str = ""
    fetched_at: str = ""
    elapsed: float = 0.0
    redirects: tuple[str, ...] = ()
    request_headers: tuple[tuple[str, str], ...] = ()
    recorded_at: str | None = None
    truncated: bool = False

    def header(self, name: str) -> str | None:
        """Return the first value of response header ``name`` (case-insensitive), or None."""
        return header(self.headers, name)

    @property
    def content_type(self) -> str:
        """The media type without parameters, lowercased (``""`` when absent)."""
        value = self.header("content-type") or ""
        return value.split(";", 1)[0].strip().lower()


@dataclass(frozen=True, slots=True)
class Item:
    """One normalized signal parsed from an exchange.

    Attributes:
        source: the source kind (``rss``, ``hn``, ``reddit``, ``github``, ``fred``).
        feed: the configured feed's name.
        native_id: the item's id at the source (guid, HN id, ``t3_abc``,
            event id, ``SERIES:DATE``...), unique within (source, feed).
        url: the item's link, or ``""``.
        title: the title, or ``""``.
        text: the body text as the source sent it (HTML kept), or ``""``.
        author: the author's name or handle, or ``""``.
        published_at: RFC 3339 UTC publication time, or ``""`` when unknown.
        extra: source-specific fields that are part of the content (JSON-ready).
        counters: volatile numbers (score, comment count, stars...) recorded as
            observations, excluded from the content digest.
        deleted: True when the source marks the item deleted or removed.
        observed_at: RFC 3339 UTC time from which the source states this
            content held, when the source itself says (FRED: the vintage an
            observation is valid from); ``""`` to use the capture's time
            (its recording's time, else its fetch time). Not content: it
            orders an item's versions (:mod:`echo_archive.pipeline.versioning`)
            and is left out of the content digest.
    """

    source: str
    feed: str
    native_id: str
    url: str = ""
    title: str = ""
    text: str = ""
    author: str = ""
    published_at: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
    counters: Mapping[str, int | float] = field(default_factory=dict)
    deleted: bool = False
    observed_at: str = ""


@dataclass(frozen=True, slots=True)
class Tombstone:
    """An item known by id is gone at the source.

    Attributes:
        source, feed, native_id: which item.
        reason: in plain words (``"[deleted]"``, ``"HTTP 404"``, ``"dead"``).
        remains: what the source still shows of the gone item (id, times,
            subreddit or parent, author or title when shown), as an item whose
            ``deleted`` flag is set; None when it shows nothing (a 404, a
            ``null`` body). When the archive never saw the item, the pipeline
            archives these remains as an item in the removed state; when it
            did, the tombstone follows its latest version.
        withdrawn: True when the item was not deleted at the source but taken
            out of its feed document while older items stayed (a ``tombstone``
            of kind ``withdrawn``; :mod:`echo_archive.pipeline.withdrawals`).
    """

    source: str
    feed: str
    native_id: str
    reason: str
    remains: Item | None = None
    withdrawn: bool = False


@dataclass(frozen=True, slots=True)
class ParseResult:
    """What a source makes of one exchange.

    Attributes:
        items: the items found, in document order.
        follow: further requests (next page, items of an id list, comment trees).
        tombstones: items known to be gone.
        cursor: the source's pagination cursor after this page (``after``,
            a Link ``next`` URL...), or None at the end.
        warning: a problem the source worked around (a truncated or
            ill-formed document it still read), or None; recorded on the
            capture beside the items.
    """

    items: tuple[Item, ...] = ()
    follow: tuple[Request, ...] = ()
    tombstones: tuple[Tombstone, ...] = ()
    cursor: str | None = None
    warning: str | None = None
