"""Withdrawn from a feed: the window rule, and the fetch of its link that confirms a deletion.

A feed document (RSS, Atom, JSON Feed) lists a *window* of the feed's
latest entries. Entries leave the window in two ways: the oldest roll off
as new ones arrive, which says nothing; or the publisher takes one out
while older ones stay, which is a signal worth keeping (a story pulled,
a correction hidden). The second is recorded as a ``tombstone`` of kind
``withdrawn`` (:class:`~echo_archive.schemas.WithdrawnMeta`), distinct from
a deletion at the source.

The window rule (:func:`withdrawn`), comparing the previous document of
the feed with the new one: an entry of the previous document missing from
the new one is *withdrawn* when an entry older than it is still in the new
document:

* older by publication time when both have one (``published_at``,
  compared as instants);
* otherwise older by document order: listed after it in the previous
  document (feeds list newest first, RSS 2.0 and Atom practice; a feed
  listing oldest first rolls off at the top, where nothing of the kept
  entries is older by date either, when it dates its entries).

The entry that proves the rule holds (the older one still listed) is the
*witness*, named in the tombstone's ``reason``.

Then the harvester fetches the withdrawn entry's link once
(:data:`CONFIRM_WITHDRAWN` requests, at most :data:`MAX_CONFIRMATIONS`
per document): an answer 404 or 410 (RFC 9110 §15.5.5, §15.5.11) is a
plain tombstone, deleted at the source, following the withdrawn one; any
other answer leaves the entry withdrawn. The answer is archived as a
capture like any other (raw first), marked as not parsed.

Pure: the harvester supplies both windows (:class:`WindowEntry` lists,
kept between runs in the operational ``feed_windows`` table).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from echo_archive.model import Item

__all__ = [
    "CONFIRM_WITHDRAWN",
    "DELETED_STATUSES",
    "MAX_CONFIRMATIONS",
    "WindowEntry",
    "Withdrawal",
    "confirmation_reason",
    "window_of",
    "withdrawn",
]

CONFIRM_WITHDRAWN: Final = "confirm_withdrawn"
"""The request purpose key of a confirmation fetch; its value is the entry's native id."""

MAX_CONFIRMATIONS: Final = 10
"""Links fetched to confirm withdrawals, per feed document (the rest stay withdrawn)."""

DELETED_STATUSES: Final = frozenset({404, 410})
"""Answers of a withdrawn entry's link that mean deleted (RFC 9110 §15.5.5, §15.5.11)."""


@dataclass(frozen=True, slots=True)
class WindowEntry:
    """One entry of a feed document's window, in document order.

    Attributes:
        native_id: the entry's id (RSS ``guid``, Atom ``id``...).
        link: its link (``http``/``https``), or None.
        published_at: its RFC 3339 publication time, or None.
    """

    native_id: str
    link: str | None = None
    published_at: str | None = None

    def to_json(self) -> list[str | None]:
        """``[native_id, link, published_at]``, as the ``feed_windows`` table stores it."""
        return [self.native_id, self.link, self.published_at]

    @classmethod
    def from_json(cls, value: object) -> WindowEntry | None:
        """The entry stored as :meth:`to_json`, or None when ``value`` is not one."""
        if not isinstance(value, list) or len(value) != 3 or not isinstance(value[0], str):
            return None
        link, published = value[1], value[2]
        return cls(
            value[0],
            link if isinstance(link, str) else None,
            published if isinstance(published, str) else None,
        )


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """An entry withdrawn from its feed document.

    Attributes:
        entry: the entry as the previous document listed it.
        witness: the older entry still listed (the proof of the window rule).
        by_date: True when ``witness`` is older by publication time, False by
            document order.
    """

    entry: WindowEntry
    witness: WindowEntry
    by_date: bool

    @property
    def reason(self) -> str:
        """The tombstone's ``reason``: what was seen, naming the witness."""
        if self.by_date:
            why = f"published {self.witness.published_at}"
        else:
            why = "listed after it in the previous document"
        return (
            "absent from the feed document while older items remain "
            f"({self.witness.native_id!r}, {why}, is still listed)"
        )


def window_of(items: Sequence[Item]) -> list[WindowEntry]:
    """The window of a parsed feed document: its entries in document order, first sighting of an id.

    Args:
        items: the document's items, in document order.
    """
    seen: set[str] = set()
    window: list[WindowEntry] = []
    for item in items:
        if item.native_id in seen:
            continue
        seen.add(item.native_id)
        link = (
            item.url if item.url and item.url.lower().startswith(("http://", "https://")) else None
        )
        window.append(WindowEntry(item.native_id, link, item.published_at or None))
    return window


def _instant(text: str | None) -> dt.datetime | None:
    """An RFC 3339 time as an aware datetime, or None (absent, unreadable or without offset)."""
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


def withdrawn(previous: Sequence[WindowEntry], current: Sequence[WindowEntry]) -> list[Withdrawal]:
    """Apply the window rule (module docstring): the entries withdrawn between two documents.

    Args:
        previous: the feed's previous document's window, in document order.
        current: the new document's window.

    Returns:
        The withdrawals, in the previous document's order. Empty when the new
        document is empty (an empty document proves nothing: a broken feed).
    """
    present = {entry.native_id for entry in current}
    if not present:
        return []
    kept = [entry for entry in previous if entry.native_id in present]
    dated = [(when, entry) for entry in kept if (when := _instant(entry.published_at))]
    oldest = min(dated, key=lambda pair: pair[0]) if dated else None
    found: list[Withdrawal] = []
    later_kept: WindowEntry | None = None  # the nearest kept entry listed after, walking back
    for entry in reversed(previous):
        if entry.native_id in present:
            later_kept = entry
            continue
        when = _instant(entry.published_at)
        if when is not None and oldest is not None:
            if oldest[0] < when:
                found.append(Withdrawal(entry, oldest[1], by_date=True))
            continue  # dated, and nothing kept is older: it rolled off
        if later_kept is not None:
            found.append(Withdrawal(entry, later_kept, by_date=False))
    found.reverse()
    return found


def confirmation_reason(status: int, link: str) -> str | None:
    """The tombstone ``reason`` for a confirmation answer, or None when it is not a deletion.

    Args:
        status: the HTTP status of the withdrawn entry's link.
        link: the link, redacted (it is stored).
    """
    if status not in DELETED_STATUSES:
        return None
    return f"HTTP {status} at its link {link} (fetched once after it was withdrawn from the feed)"
