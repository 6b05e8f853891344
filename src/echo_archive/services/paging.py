"""Pages of a listing: keyset pagination with opaque cursor tokens, and request times.

A listing returns a :class:`Page`: its ``entries``, the ``next`` cursor
(``None`` on the last page) and, when asked for, the ``total`` number of
matches (the shapes of Miniflux's ``{total, entries}`` and datasette's
``next`` token). A cursor is *keyset* pagination: it holds the sort key of the
last entry returned, not an offset, so a deep page costs what the first does
and appends made while a client walks the pages never shift it.

The token is opaque to callers: URL-safe base64 (RFC 4648 §5, no padding) of
a small JSON object ``{"v": 1, "k": <key>, "q": <fingerprint>}`` where the
fingerprint is a hash of the listing's filters and order, so a cursor handed
to a listing with other filters is refused (:class:`~echo_archive.errors.CursorError`)
instead of silently returning the wrong rows.

Times in requests (``since``, ``until``) are RFC 3339 ``date-time`` values
(RFC 3339 §5.6: a ``Z`` or ``±hh:mm`` offset is required) and are compared as
instants: they are converted to the catalog's canonical UTC form
(``YYYY-MM-DDTHH:MM:SS.ffffffZ``, fixed width, so text order is time order).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Generic, TypeVar

from echo_archive.errors import CursorError, ParseError, RequestError
from echo_archive.jsondecode import decode_json

__all__ = [
    "MAX_LIMIT",
    "Page",
    "check_limit",
    "decode_cursor",
    "decode_rank_cursor",
    "encode_cursor",
    "encode_rank_cursor",
    "fingerprint",
    "pages",
    "parse_instant",
]

T = TypeVar("T")

MAX_LIMIT: Final = 1000
"""The most entries one page holds (the limit of the coming ``/v1`` API)."""

_CURSOR_VERSION: Final = 1
_MAX_CURSOR_CHARS: Final = 512

# RFC 3339 §5.6 date-time; "T"/"t"/" " between date and time (§5.6 NOTE), "Z"/"z" or an offset.
_DATE_TIME: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))",
    re.ASCII,  # \d is 0-9 only: RFC 3339 DIGIT (RFC 5234 B.1)
)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing.

    Attributes:
        entries: the page's entries, in the listing's order.
        next: the cursor of the next page, or None when this is the last.
        total: how many entries match the filters in all, when it was asked
            for (it costs a count over the whole index), else None.
        ranked_from: a ranked listing (full-text search) that ranks only its
            newest matches: the smallest key it ranks (0: every match); None
            for other listings.
    """

    entries: Sequence[T]
    next: str | None
    total: int | None = None
    ranked_from: int | None = None


def pages(
    fetch: Callable[[str | None], Page[T]], first: Page[T] | None = None
) -> Iterator[Page[T]]:
    """Every page of a keyset listing, following ``next`` (one page in memory at a time).

    What a streamed export (``/v1/items.ndjson``) walks: each page is asked
    for only when the one before has been consumed, so memory stays that of
    one page however long the listing is.

    Args:
        fetch: the listing's page for a cursor (None: the first page).
        first: the first page when the caller already has it (so its errors
            were raised before streaming began); None: ``fetch(None)``.

    Yields:
        The pages, first to last (the last has ``next`` None).

    Raises:
        Whatever ``fetch`` raises (a cursor error, a storage error...).
    """
    page = fetch(None) if first is None else first
    while True:
        yield page
        if page.next is None or not page.entries:
            return
        page = fetch(page.next)


def check_limit(limit: int) -> int:
    """Return ``limit`` when it is a page size this library serves (1 to :data:`MAX_LIMIT`).

    Args:
        limit: the entries per page asked for.

    Returns:
        ``limit``, unchanged.

    Raises:
        RequestError: ``limit`` is below 1 or above :data:`MAX_LIMIT`.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise RequestError(f"limit {limit}: must be 1 to {MAX_LIMIT}")
    return limit


def fingerprint(filters: Mapping[str, Any]) -> str:
    """A short hash of a listing's filters and order, which a cursor carries.

    Args:
        filters: the filters (JSON-ready values).

    Returns:
        16 hex characters (SHA-256 of the sorted-key JSON of ``filters``).
    """
    text = json.dumps(filters, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_cursor(key: int, query: str) -> str:
    """The opaque cursor of the page after the entry whose sort key is ``key``.

    Args:
        key: the sort key of the last entry of the page (a non-negative integer).
        query: the listing's :func:`fingerprint`.

    Returns:
        The token (URL-safe base64 without padding; safe in a URL query).
    """
    return _encode(key, query)


def encode_rank_cursor(rank: float, tiebreak: int, query: str, floor: int = 0) -> str:
    """The cursor of the page after an entry of a ranked listing (full-text search).

    A ranked listing is ordered by ``(rank, tiebreak)``: a score, ties broken
    by a unique non-negative integer, so the key is a total order even when
    many entries share a score (bm25 ties).

    Args:
        rank: the last entry's score (a finite float; JSON keeps it exactly).
        tiebreak: its unique integer key.
        query: the listing's :func:`fingerprint`.
        floor: the smallest tiebreak the listing ranks (0: all); kept so that
            every page of a walk ranks the same window.

    Returns:
        The token, as :func:`encode_cursor`'s.
    """
    return _encode([rank, tiebreak, floor], query)


def _encode(key: object, query: str) -> str:
    doc = {"v": _CURSOR_VERSION, "k": key, "q": query}
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(token: str, query: str) -> int:
    """The sort key held by a cursor from :func:`encode_cursor` of the same listing.

    Args:
        token: the cursor as the caller gave it back.
        query: the listing's :func:`fingerprint` (the filters of this request).

    Returns:
        The key of the last entry of the previous page.

    Raises:
        CursorError: the token is not base64 JSON of a version-1 cursor, its key
            is not a non-negative integer, or it was issued by a listing with
            other filters or order (the message says which).
    """
    key = _decode(token, query, _entry_index)
    assert isinstance(key, int)
    return key


def _entry_index(key: object) -> str | None:
    """Why ``key`` is not a listing's position (a non-negative integer), or None."""
    if isinstance(key, bool) or not isinstance(key, int) or key < 0:
        return "its position is not an entry index"
    return None


def _ranked(key: object) -> str | None:
    """Why ``key`` is not a ranked position ``[finite number, int >= 0, int >= 0]``, or None."""
    if (
        isinstance(key, list)
        and len(key) == 3
        and isinstance(key[2], int)
        and not isinstance(key[2], bool)
        and key[2] >= 0
        and isinstance(key[0], int | float)
        and not isinstance(key[0], bool)
        and math.isfinite(key[0])
        and isinstance(key[1], int)
        and not isinstance(key[1], bool)
        and key[1] >= 0
    ):
        return None
    return "its position is not a ranked position"


def decode_rank_cursor(token: str, query: str) -> tuple[float, int, int]:
    """The ``(rank, tiebreak, floor)`` held by a cursor from :func:`encode_rank_cursor`.

    Raises:
        CursorError: as :func:`decode_cursor`, or the key is not a finite
            number and two non-negative integers.
    """
    key = _decode(token, query, _ranked)
    assert isinstance(key, list)
    return float(key[0]), int(key[1]), int(key[2])


def _shown(token: str) -> str:
    return token if len(token) <= 40 else token[:37] + "..."


def _decode(token: str, query: str, check: Callable[[object], str | None]) -> object:
    """The key of a version-1 cursor issued for ``query``, once ``check`` finds it well formed.

    Raises:
        CursorError: as :func:`decode_cursor`.
    """
    shown = _shown(token)
    if not token or len(token) > _MAX_CURSOR_CHARS or not token.isascii():
        raise CursorError(f"cursor {shown!r}: not a cursor this listing issued")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        doc = decode_json(raw, "cursor")
    except (binascii.Error, ParseError) as exc:
        raise CursorError(f"cursor {shown!r}: not a cursor this listing issued") from exc
    if not isinstance(doc, dict) or doc.get("v") != _CURSOR_VERSION or set(doc) != {"v", "k", "q"}:
        raise CursorError(f"cursor {shown!r}: not a version-{_CURSOR_VERSION} cursor")
    wrong = check(doc["k"])
    if wrong is not None:
        raise CursorError(f"cursor {shown!r}: {wrong}")
    if doc["q"] != query:
        raise CursorError(
            f"cursor {shown!r}: issued by a listing with other filters or order; "
            "start again without a cursor"
        )
    return doc["k"]


def parse_instant(text: str, what: str = "time") -> str:
    """An RFC 3339 date-time as the catalog's canonical UTC text, rounded up to microseconds.

    The offset is applied (``2026-12-05T13:00:00+01:00`` is
    ``2026-12-05T12:00:00.000000Z``); a fraction finer than microseconds is
    rounded *up*, so ``seen_at >= since`` and ``seen_at < until`` on the
    stored microsecond times mean the same as on the exact instants. A leap
    second (``:60``) is the instant after ``:59`` (as POSIX time counts it).

    Args:
        text: the date-time (RFC 3339 §5.6 ``date-time``: an offset is required).
        what: the name of the parameter, for the error message.

    Returns:
        ``YYYY-MM-DDTHH:MM:SS.ffffffZ``.

    Raises:
        RequestError: ``text`` is not an RFC 3339 date-time with an offset, or
            names a date or time that does not exist.
    """
    match = _DATE_TIME.fullmatch(text.strip())
    if match is None:
        raise RequestError(
            f"{what} {text!r}: expected an RFC 3339 date-time with an offset, "
            "e.g. 2026-12-05T13:00:00Z or 2026-12-05T14:00:00+01:00"
        )
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zulu, sign, off_h, off_m = match.groups()[6:]
    leap = second == 60
    try:
        moment = datetime(year, month, day, hour, minute, 59 if leap else second, tzinfo=UTC)
        if not zulu:
            offset = timedelta(hours=int(off_h), minutes=int(off_m))
            if int(off_h) > 23 or int(off_m) > 59:
                raise ValueError("offset out of range")
            moment -= offset if sign == "+" else -offset
    except (ValueError, OverflowError) as exc:
        raise RequestError(f"{what} {text!r}: not a real date and time ({exc})") from exc
    digits = fraction or ""
    micros = int((digits + "000000")[:6])
    if digits[6:].strip("0"):
        micros += 1  # round up: the stored times have microseconds
    try:
        moment += timedelta(seconds=1 if leap else 0, microseconds=micros)
    except OverflowError as exc:
        raise RequestError(f"{what} {text!r}: outside the years 0001 to 9999") from exc
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}.{moment.microsecond:06d}Z"
    )


@dataclass(frozen=True, slots=True)
class Window:
    """Where a keyset page starts, for one listing's filters.

    Attributes:
        since, until: the bounds as canonical instants (``parse_instant``), or None.
        tag: the filters' fingerprint, bound into every cursor of the listing.
        after: the key the page continues after (from the cursor), or None.
        newest: True for newest first, False for oldest first.
    """

    since: str | None
    until: str | None
    tag: str
    after: int | None
    newest: bool


def page_window(
    filters: Mapping[str, Any],
    *,
    order: str,
    since: str | None,
    until: str | None,
    cursor: str | None,
) -> Window:
    """Check a listing's order, times and cursor; where its page starts.

    The one preamble of every keyset listing (items, captures...): the
    cursor is bound to ``filters`` together with the order and the parsed
    times, so a cursor of one query never continues another.

    Args:
        filters: the listing's other filters (JSON-ready values).
        order: ``newest`` or ``oldest``.
        since: the lower bound, an RFC 3339 instant as given, or None.
        until: the upper bound (exclusive), likewise.
        cursor: the opaque cursor of the previous page, or None.

    Returns:
        The window.

    Raises:
        RequestError: a bad ``order`` or time (named, with the expected form).
        CursorError: the cursor is malformed or was issued for other filters.
    """
    if order not in ("newest", "oldest"):
        raise RequestError(f"order {order!r}: expected newest or oldest")
    low = None if since is None else parse_instant(since, "since")
    high = None if until is None else parse_instant(until, "until")
    tag = fingerprint({**filters, "since": low, "until": high, "order": order})
    after = None if cursor is None else decode_cursor(cursor, tag)
    return Window(low, high, tag, after, order == "newest")
