"""Captures: list them (filters, keyset pages) and get one capture's archived bytes back.

A *capture* is a ``capture`` entry (:mod:`echo_archive.services.entries`):
an HTTP exchange (``kind: "http"``: source, feed, URL, status, fetch time)
or a local file archived with ``echoctl add`` (``kind: "file"``: base name,
size, mtime), its bytes in the ``body`` blob. The listing reads the log's
``entries`` rows (their JSON ``meta``) newest or oldest first by log index;
the bytes are streamed from the blob store (:func:`open_body`), never held
whole, and checked against their digest while read.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, Final, Literal

from echo_archive.errors import NotFoundError, RequestError
from echo_archive.harvest.recordings.warc import write_records
from echo_archive.harvest.reparse import exchange_of
from echo_archive.services.entries import Capture, get_capture, open_capture_body
from echo_archive.services.paging import (
    Page,
    check_limit,
    encode_cursor,
    page_window,
)
from echo_archive.vault.entry import parse_entry
from echo_archive.vault.vault import Vault

__all__ = [
    "KINDS",
    "CaptureQuery",
    "CaptureSummary",
    "capture_warc",
    "list_captures",
    "open_body",
    "parse_capture_ref",
    "resolve_capture",
]

KINDS: Final = ("http", "file")
"""The capture kinds: an HTTP exchange, a local file."""

_META: Final = "json_extract(CAST(entry AS TEXT), '$.meta.{}')"
_AT: Final = (
    "COALESCE(json_extract(CAST(entry AS TEXT), '$.meta.fetched_at'), "
    "json_extract(CAST(entry AS TEXT), '$.logged_at'))"
)


@dataclass(frozen=True, slots=True)
class CaptureQuery:
    """Which captures to list, and which page.

    Attributes:
        feed: only HTTP captures of this feed.
        source: only HTTP captures of this source kind (rss, hn...).
        kind: ``"http"`` or ``"file"`` only; None: both.
        since: only captures at or after this RFC 3339 date-time (offset
            required; compared as instants). A capture's time is its
            ``fetched_at`` (HTTP) or its ``logged_at`` (a file).
        until: only captures before this RFC 3339 date-time.
        order: ``"newest"`` (highest log index first) or ``"oldest"``.
        limit: entries per page, 1 to :data:`~echo_archive.services.paging.MAX_LIMIT`.
        cursor: the ``next`` of the previous page, None for the first.
        feeds: only HTTP captures of one of these feeds (an API principal's
            feed group; empty: none; a file capture belongs to no feed);
            None: no such limit. Bound into the cursor like the other filters.
    """

    feed: str | None = None
    source: str | None = None
    kind: str | None = None
    since: str | None = None
    until: str | None = None
    order: Literal["newest", "oldest"] = "newest"
    limit: int = 50
    cursor: str | None = None
    feeds: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class CaptureSummary:
    """A capture as listed.

    Attributes:
        index: its log index (the reference ``echoctl cat`` takes).
        kind: ``http`` or ``file``.
        at: its time (``fetched_at`` of an exchange, ``logged_at`` of a file).
        logged_at: when it joined the log.
        source, feed, url, status: of an HTTP capture (``""``/0 for a file).
        name: a file's base name (``""`` for an exchange).
        size: the body's size in bytes (0 without a body).
        digest: the body's ``sha256:<hex>``, or ``""``.
        error: an exchange's parse error, or ``""``.
    """

    index: int
    kind: str
    at: str
    logged_at: str
    source: str
    feed: str
    url: str
    status: int
    name: str
    size: int
    digest: str
    error: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping (the attribute names as keys)."""
        return {name: getattr(self, name) for name in self.__slots__}


def _summary(index: int, raw: bytes) -> CaptureSummary:
    entry = parse_entry(raw, where=f"entry {index}")
    meta: Mapping[str, Any] = entry.meta
    body = next((b for b in entry.blobs if b.role == "body"), None)
    kind = str(meta.get("kind", ""))
    return CaptureSummary(
        index=index,
        kind=kind,
        at=str(meta.get("fetched_at") or entry.logged_at),
        logged_at=entry.logged_at,
        source=str(meta.get("source", "")),
        feed=str(meta.get("feed", "")),
        url=str(meta.get("url", "")),
        status=int(meta.get("status", 0) or 0),
        name=str(meta.get("name", "")),
        size=0 if body is None else body.size,
        digest="" if body is None else body.digest_text,
        error=str(meta.get("parse_error") or ""),
    )


def list_captures(vault: Vault, query: CaptureQuery) -> Page[CaptureSummary]:
    """One page of captures matching ``query``, by log index.

    Keyset pages on the log index: walking them with ``next`` while entries
    are appended lists every capture once (with ``order="oldest"``, new
    ones follow at the end).

    Args:
        vault: an open vault (a reader is enough).
        query: the filters, order, page size and cursor.

    Returns:
        The page (``total`` is None).

    Raises:
        RequestError: a bad ``kind``, ``order``, ``limit`` or time (named, with
            the expected form).
        CursorError: the cursor is malformed or was issued for other filters.
        NotFoundError: ``feed`` or ``source`` names nothing any capture has
            (the message lists what exists).
        StorageError: the catalog could not be read.
    """
    limit = check_limit(query.limit)
    if query.kind is not None and query.kind not in KINDS:
        raise RequestError(f"kind {query.kind!r}: expected one of {', '.join(KINDS)}")
    scope = None if query.feeds is None else sorted(query.feeds)
    window = page_window(
        {"feed": query.feed, "source": query.source, "kind": query.kind, "feeds": scope},
        order=query.order,
        since=query.since,
        until=query.until,
        cursor=query.cursor,
    )
    since, until, tag, after, newest = (
        window.since,
        window.until,
        window.tag,
        window.after,
        window.newest,
    )
    where = ["type = 'capture'"]
    args: list[Any] = []
    for clause, value in (
        (_META.format("feed") + " = ?", query.feed),
        (_META.format("source") + " = ?", query.source),
        (_META.format("kind") + " = ?", query.kind),
        (_AT + " >= ?", since),
        (_AT + " < ?", until),
        ("idx < ?" if newest else "idx > ?", after),
    ):
        if value is not None:
            where.append(clause)
            args.append(value)
    if scope is not None:
        marks = ", ".join("?" * len(scope))
        where.append(f"{_META.format('feed')} IN ({marks})" if scope else "0")
        args.extend(scope)
    sql = (
        "SELECT idx, entry FROM entries WHERE "  # noqa: S608 - constant clauses, "?" values
        + " AND ".join(where)
        + f" ORDER BY idx {'DESC' if newest else 'ASC'} LIMIT ?"
    )
    args.append(limit + 1)
    rows = list(vault.catalog.query(sql, args))
    if not rows and after is None:
        _check_filters_exist(vault, query.feed, query.source, scope)
    entries = [_summary(int(idx), bytes(raw)) for idx, raw in rows[:limit]]
    token = encode_cursor(entries[-1].index, tag) if len(rows) > limit and entries else None
    return Page(entries=entries, next=token)


def _check_filters_exist(
    vault: Vault, feed: str | None, source: str | None, scope: Sequence[str] | None = None
) -> None:
    """Raise when ``feed`` or ``source`` names nothing any capture has (only for an empty page).

    Within a ``scope`` (feed names) only captures of its feeds count and are
    named: a scoped principal learns nothing of the others.

    Raises:
        NotFoundError: naming the value and listing the feeds or sources captures have.
    """
    within, within_args = "", list(scope or ())
    if scope is not None:
        marks = ", ".join("?" * len(scope))
        within = f" AND {_META.format('feed')} IN ({marks})" if scope else " AND 0"
    for name, value in (("feed", feed), ("source", source)):
        if value is None:
            continue
        column = _META.format(name)
        sql = f"SELECT 1 FROM entries WHERE type = 'capture' AND {column} = ?{within} LIMIT 1"  # noqa: S608 - constant column
        if vault.catalog.query_one(sql, (value, *within_args)) is None:
            rows = vault.catalog.query(
                f"SELECT DISTINCT {column} FROM entries WHERE type = 'capture' "  # noqa: S608 - constant column
                f"AND {column} IS NOT NULL{within} ORDER BY 1",
                within_args,
            )
            known = [str(r[0]) for r in rows]
            raise NotFoundError(
                f"{name} {value!r}: no capture of this {name} in the vault; "
                f"{name}s with captures: {', '.join(known) or 'none'}"
            )


def parse_capture_ref(ref: str) -> int:
    """Read a capture reference: its log index (``"42"``).

    Raises:
        RequestError: not a non-negative integer.
    """
    text = ref.strip()
    if not text.isdigit() or not text.isascii():
        raise RequestError(f"{ref!r}: expected a capture's entry index (see `echoctl captures`)")
    return int(text)


def resolve_capture(vault: Vault, ref: str | int) -> Capture:
    """The capture a reference names (see :func:`parse_capture_ref`).

    Raises:
        RequestError: a malformed reference.
        LogError: no entry at that index.
        NotFoundError: the entry is not a capture.
    """
    return get_capture(vault, parse_capture_ref(ref) if isinstance(ref, str) else ref)


def open_body(vault: Vault, capture: Capture) -> BinaryIO:
    """A stream of a capture's archived bytes (exactly as received or added).

    The one way to read them back (``echoctl cat``, the HTTP API): see
    :func:`echo_archive.services.entries.open_capture_body`.

    Raises:
        NotFoundError: the capture has no body.
        BlobNotFoundError, BlobCorruptError: the blob is missing or damaged.
    """
    return open_capture_body(vault, capture)


def capture_warc(vault: Vault, capture: Capture) -> bytes:
    """An HTTP capture as one WARC/1.1 ``response`` record (ISO 28500:2017 §6.3).

    The record is what :func:`echo_archive.harvest.recordings.warc.write_records`
    writes for an exchange (the one WARC writer of ECHO, warcio's): target
    URI the final URL, ``WARC-Date`` the capture's ``fetched_at``, an
    ``application/http;msgtype=response`` block with the status line, the
    headers the capture kept and the body re-encoded to the
    ``Content-Encoding`` they declare; ``WARC-Payload-Digest`` and
    ``WARC-Block-Digest`` as warcio computes them. The body is read whole
    (bodies are bounded by the harvester's size limit).

    Args:
        vault: the vault the capture was read from.
        capture: an HTTP capture (:func:`resolve_capture`).

    Returns:
        The record's bytes (uncompressed WARC).

    Raises:
        NotFoundError: the capture is a file (no HTTP exchange) or has no body.
        BlobNotFoundError, BlobCorruptError: the body blob is missing or damaged.
    """
    if capture.meta.get("kind") != "http":
        raise NotFoundError(
            f"capture {capture.index} is a file, not an HTTP exchange: it has no WARC "
            "response record (its bytes are its body)"
        )
    with open_body(vault, capture) as stream:
        body = stream.read()
    exchange = exchange_of(vault.entry(capture.index), body)
    out = io.BytesIO()
    write_records([exchange], out, requests=False)
    return out.getvalue()
