"""Items: list them (filters, keyset pages) and give one item's whole history.

An *item* is what a source published under one native id in one feed; its
entries in the log are an ``item`` entry, then a ``version`` entry for each
change and a ``tombstone`` when the source deleted it (or a ``withdrawn``
tombstone when its feed document dropped it), each naming the one
before (``meta.previous``) and the capture it was parsed from
(``meta.capture``, the capture entry's leaf hash). ``previous`` links the
entries in log order (arrival); the history is ordered by *observed time*
(the source's own time, FRED's vintage, else the capture's time; ties by log
index; :func:`echo_archive.index.items.entry_observed_at`), so an older
vintage imported after a newer one is shown in its place in the past, not as
the current value. The item index (``items`` table) holds each item's current
entry (the one observed last); observations hold the volatile counters of
every sighting. An item gone at the source the first
time it was seen starts with an ``item`` entry of kind ``removed`` holding
what the source still showed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from echo_archive.errors import LogError, NotFoundError, RequestError
from echo_archive.index.captures import capture_rows
from echo_archive.index.items import (
    STATE_CODES,
    count_items,
    entry_observed_at,
    entry_state,
    item_feeds,
    item_page,
    known,
    known_many,
)
from echo_archive.index.leaves import capture_index
from echo_archive.index.observations import observations_of
from echo_archive.services.paging import (
    Page,
    check_limit,
    encode_cursor,
    page_window,
)
from echo_archive.services.search import search
from echo_archive.vault.entry import Entry
from echo_archive.vault.vault import Vault

if TYPE_CHECKING:
    from echo_archive.services.corrections import Correction

__all__ = [
    "ITEM_ENTRY_TYPES",
    "STATES",
    "HistoryEntry",
    "ItemHistory",
    "ItemKey",
    "ItemQuery",
    "ItemSummary",
    "capture_of",
    "item_history",
    "list_items",
    "parse_item_ref",
]

ITEM_ENTRY_TYPES: Final = ("item", "version", "tombstone")
"""The entry types that make an item's history."""

STATES: Final = tuple(STATE_CODES)
"""An item's states, one per item (:data:`echo_archive.index.items.STATE_CODES`).

``active``: its latest entry is content; ``tombstoned``: deleted or removed at
the source after it was archived live; ``withdrawn``: taken out of its feed
document while older entries stayed; ``removed``: gone at the source the
first time it was seen (the live version was never archived).
"""


@dataclass(frozen=True, slots=True)
class ItemKey:
    """The identity of an item: source kind, feed name, the source's native id."""

    source: str
    feed: str
    native_id: str

    def __str__(self) -> str:
        """``SOURCE:FEED:NATIVE_ID``, the reference ``echoctl show`` takes."""
        return f"{self.source}:{self.feed}:{self.native_id}"


@dataclass(frozen=True, slots=True)
class ItemQuery:
    """Which items to list, and which page.

    Attributes:
        source: only items of this source kind.
        feed: only items of this feed.
        state: only items in this state (one of :data:`STATES`); None: all.
        since: only items whose latest version or tombstone was seen at or
            after this RFC 3339 date-time (an offset is required; compared as
            instants).
        until: only items last seen *before* this RFC 3339 date-time.
        order: ``"newest"`` (the item archived last first) or ``"oldest"``.
        limit: entries per page, 1 to :data:`~echo_archive.services.paging.MAX_LIMIT`.
        cursor: the ``next`` of the previous page, None for the first page.
        total: also count every match (a count over the whole index).
        feeds: only items of one of these feeds (an API principal's feed
            group, :func:`echo_archive.api.roles.listing_feeds`; empty: none);
            None: every feed. Bound into the cursor like the other filters.
        q: a full-text query (the mini-syntax of
            :func:`echo_archive.services.search.parse_query`): only matching
            items, best match first (bm25; ``order`` is then not used, and
            ``state`` None means every state).
    """

    source: str | None = None
    feed: str | None = None
    state: str | None = None
    since: str | None = None
    until: str | None = None
    order: Literal["newest", "oldest"] = "newest"
    limit: int = 50
    cursor: str | None = None
    total: bool = False
    feeds: frozenset[str] | None = None
    q: str | None = None


@dataclass(frozen=True, slots=True)
class ItemSummary:
    """An item as listed: its latest state and what its latest entry's blob says.

    Attributes:
        index: the log index of the item's latest entry (item, version or tombstone).
        first_index: the log index of its first entry (the listing's sort key).
        source, feed, native_id: the item's identity.
        type: the latest entry's type (``item``, ``version``, ``tombstone``).
        state: one of :data:`STATES`.
        versions: how many contents the item had (item + versions).
        seen_at: when its latest entry's capture was fetched (RFC 3339 UTC).
        title, url: from the latest entry's item blob (``""`` for a tombstone).
    """

    index: int
    first_index: int
    source: str
    feed: str
    native_id: str
    type: str
    state: str
    versions: int
    seen_at: str
    title: str
    url: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping (the attribute names as keys)."""
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One entry of an item's history.

    Attributes:
        index: its log index.
        type: ``item``, ``version`` or ``tombstone``.
        logged_at: when it joined the log (RFC 3339 UTC; attested by a checkpoint).
        meta: the entry's metadata (source, feed, native_id, capture,
            content_digest, previous; a tombstone's reason).
        item: the item blob (the normalized content), None for a tombstone.
        capture_index: the log index of the capture it was parsed from, or
            None when that capture cannot be found.
        observed_at: when the source states this content held (RFC 3339
            UTC; the history's order): the entry's ``observed_at``, else its
            capture's recording or fetch time, ``""`` when neither is found.
    """

    index: int
    type: str
    logged_at: str
    meta: Mapping[str, Any]
    item: Mapping[str, Any] | None
    capture_index: int | None
    observed_at: str = ""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping (the attribute names as keys)."""
        return {
            "index": self.index,
            "type": self.type,
            "logged_at": self.logged_at,
            "observed_at": self.observed_at,
            "meta": dict(self.meta),
            "item": None if self.item is None else dict(self.item),
            "capture_index": self.capture_index,
        }


@dataclass(frozen=True, slots=True)
class ItemHistory:
    """An item's whole history.

    Attributes:
        key: the item's identity.
        history: its entries by observed time, newest first (ties: the later
            log index first); ``history[0]`` is the current entry.
        observations: its sightings' counters, oldest first (``seen_at``,
            ``capture_idx``, ``counters``).
        captures: the captures it was parsed from or seen in, ascending
            (``index, feed, url, status, fetched_at, error``).
        corrections: its ``correction`` entries (annotations, retractions,
            reinstatements), oldest first (:mod:`echo_archive.services.corrections`).
    """

    key: ItemKey
    history: Sequence[HistoryEntry]
    observations: Sequence[Mapping[str, Any]]
    captures: Sequence[Mapping[str, Any]]
    corrections: Sequence[Correction] = ()

    @property
    def latest(self) -> Mapping[str, Any]:
        """The item blob of the newest observed content (a tombstone has none), or ``{}``."""
        return next((h.item for h in self.history if h.item), None) or {}

    @property
    def tombstoned(self) -> bool:
        """True when the latest entry is a tombstone (deleted at the source or withdrawn)."""
        return self.history[0].type == "tombstone"

    @property
    def state(self) -> str:
        """The item's state (one of :data:`STATES`), from its latest entry."""
        latest = self.history[0]
        return entry_state(latest.type, latest.meta)

    @property
    def retracted(self) -> bool:
        """True when an editor retracted the item (its entries are unchanged).

        Its latest retraction or reinstatement (log order) is a retraction.
        """
        marks = [c.kind for c in self.corrections if c.kind in ("retraction", "reinstatement")]
        return bool(marks) and marks[-1] == "retraction"

    def to_json(self) -> dict[str, Any]:
        """``{"state", "retracted", "history", "observations", "captures", "corrections"}``."""
        return {
            "state": self.state,
            "retracted": self.retracted,
            "history": [h.to_json() for h in self.history],
            "observations": [dict(o) for o in self.observations],
            "captures": [dict(c) for c in self.captures],
            "corrections": [c.to_json() for c in self.corrections],
        }


def _item_doc(vault: Vault, entry: Entry) -> dict[str, Any] | None:
    """The item blob an entry names (JSON), or None when it names none (a tombstone)."""
    if not entry.blobs:
        return None
    doc = json.loads(vault.blobs.get(entry.blobs[0].digest))
    return doc if isinstance(doc, dict) else None


def list_items(vault: Vault, query: ItemQuery) -> Page[ItemSummary]:
    """One page of items matching ``query``, ordered by when each was first archived.

    The sort key is the log index of the item's first entry, which a later
    version or tombstone does not change: walking the pages with ``next``
    while entries are appended yields every item that existed when the walk
    began exactly once, in order (with ``order="oldest"``, items archived
    during the walk follow at its end). Filters on ``state`` and ``since``/
    ``until`` use the item's latest state, which a concurrent version or
    tombstone may change.

    Args:
        vault: an open vault (a reader is enough).
        query: the filters, order, page size and cursor.

    Returns:
        The page: its items, the ``next`` cursor (None on the last page), and
        ``total`` when ``query.total``.

    With ``query.q`` the page is a full-text search's
    (:func:`echo_archive.services.search.search`, its ranked keyset cursor):
    the same summaries, best match first.

    Raises:
        RequestError: a bad ``state``, ``order``, ``limit`` or time (the
            message names the parameter and the expected form).
        QueryError: ``q`` cannot be used (the message says why).
        CursorError: the cursor is malformed or was issued for other filters.
        NotFoundError: ``source`` or ``feed`` names no source or feed that
            has items (the message names the value and lists those that do,
            within ``feeds`` when given).
    """
    limit = check_limit(query.limit)
    if query.state is not None and query.state not in STATES:
        raise RequestError(f"state {query.state!r}: expected one of {', '.join(STATES)}")
    if query.q is not None:
        return _searched(vault, query, limit)
    scope = None if query.feeds is None else sorted(query.feeds)
    window = page_window(
        {"source": query.source, "feed": query.feed, "state": query.state, "feeds": scope},
        order=query.order,
        since=query.since,
        until=query.until,
        cursor=query.cursor,
    )
    since, until, tag, after = window.since, window.until, window.tag, window.after
    selection: dict[str, Any] = {
        "source": query.source,
        "feed": query.feed,
        "state": query.state,
        "since": since,
        "until": until,
        "feeds": query.feeds,
    }
    rows = item_page(
        vault.catalog,
        **selection,
        after=after,
        newest_first=query.order == "newest",
        limit=limit + 1,
    )
    if not rows and after is None:
        _check_filters_exist(vault, query.source, query.feed, query.feeds)
    more = len(rows) > limit
    entries = [_summary(vault, row) for row in rows[:limit]]
    token = encode_cursor(entries[-1].first_index, tag) if more and entries else None
    total = count_items(vault.catalog, **selection) if query.total else None
    return Page(entries=entries, next=token, total=total)


def _summary(vault: Vault, row: Mapping[str, Any]) -> ItemSummary:
    """The summary of an item index row (``idx, first_idx, source, feed, native_id, state...``)."""
    entry = vault.entry(int(row["idx"]))
    doc = _item_doc(vault, entry) or {}
    return ItemSummary(
        index=int(row["idx"]),
        first_index=int(row["first_idx"]),
        source=str(row["source"]),
        feed=str(row["feed"]),
        native_id=str(row["native_id"]),
        type=entry.type,
        state=str(row["state"]),
        versions=int(row["versions"]),
        seen_at=str(row["seen_at"]),
        title=str(doc.get("title") or ""),
        url=str(doc.get("url") or ""),
    )


def _searched(vault: Vault, query: ItemQuery, limit: int) -> Page[ItemSummary]:
    """The page of ``list_items`` for a query with ``q``: search hits as summaries."""
    assert query.q is not None
    page = search(
        vault,
        query.q,
        source=query.source,
        feed=query.feed,
        state=query.state or "any",
        since=query.since,
        until=query.until,
        limit=limit,
        cursor=query.cursor,
        total=query.total,
        feeds=query.feeds,
    )
    if not page.entries and query.cursor is None:
        _check_filters_exist(vault, query.source, query.feed, query.feeds)
    rows = known_many(vault.catalog, [(h.source, h.feed, h.native_id) for h in page.entries])
    entries = []
    for hit in page.entries:
        row = rows.get((hit.source, hit.feed, hit.native_id))
        versions = row.versions if row is not None else 1
        entries.append(
            _summary(
                vault,
                {
                    "idx": hit.index,
                    "first_idx": hit.first_index,
                    "source": hit.source,
                    "feed": hit.feed,
                    "native_id": hit.native_id,
                    "state": hit.state,
                    "versions": versions,
                    "seen_at": hit.seen_at,
                },
            )
        )
    return Page(entries=entries, next=page.next, total=page.total, ranked_from=page.ranked_from)


def _check_filters_exist(
    vault: Vault, source: str | None, feed: str | None, scope: frozenset[str] | None = None
) -> None:
    """Raise when a ``source`` or ``feed`` filter names nothing that has items.

    Called only for an empty first page, so a listing that finds items pays
    nothing. Within a ``scope`` (a set of feeds) only its feeds are named: a scoped
    principal learns nothing of the others.

    Raises:
        NotFoundError: naming the value and the sources or feeds that exist.
    """
    if source is None and feed is None:
        return
    pairs = [p for p in item_feeds(vault.catalog) if scope is None or p[1] in scope]
    sources = sorted({s for s, _ in pairs})
    feeds = sorted({f for _, f in pairs})
    if source is not None and source not in sources:
        raise NotFoundError(
            f"source {source!r}: no item of this source in the vault; "
            f"sources with items: {', '.join(sources) or 'none'}"
        )
    if feed is not None and feed not in feeds:
        raise NotFoundError(
            f"feed {feed!r}: no item of this feed in the vault; "
            f"feeds with items: {', '.join(feeds) or 'none'}"
        )
    if source is not None and feed is not None and (source, feed) not in pairs:
        of_feed = sorted(s for s, f in pairs if f == feed)
        raise NotFoundError(
            f"feed {feed!r}: no item of source {source!r}; its items are of {', '.join(of_feed)}"
        )


def parse_item_ref(ref: str) -> int | ItemKey:
    """Read an item reference: an entry index, or ``SOURCE:FEED:NATIVE_ID``.

    Args:
        ref: ``"42"`` or ``"hn:hn-top:8863"`` (the native id may hold ``:``).

    Returns:
        The entry index, or the item's key.

    Raises:
        RequestError: neither form.
    """
    text = ref.strip()
    if text.isdigit() and text.isascii():  # "²" is a digit to str.isdigit, not to int()
        return int(text)
    parts = text.split(":", 2)
    if len(parts) != 3 or not all(parts):
        raise RequestError(f"{ref!r}: expected an entry index or SOURCE:FEED:NATIVE_ID")
    return ItemKey(*parts)


def capture_of(vault: Vault, entry: Entry, index: int) -> int | None:
    """The log index of the capture an item, version or tombstone entry was parsed from.

    The entry names its capture by leaf hash (``meta.capture``, ``sha256:<hex>``,
    RFC 9162 §2.1.1); the stored leaf-hash lookup (:mod:`echo_archive.index.leaves`)
    finds it in one query.

    Args:
        vault: an open vault.
        entry: the entry (its ``meta.capture`` is read).
        index: the entry's log index.

    Returns:
        The capture's index, or None when the entry names none or it is not found.
    """
    return capture_index(vault.catalog, entry, index)


def item_history(vault: Vault, ref: str | int | ItemKey) -> ItemHistory:
    """An item's whole history from any of its entries or its key.

    From the item's latest entry in the log the walk follows
    ``meta.previous`` back to the first (every entry of the item, in log
    order); the entries are then ordered by observed time, newest first
    (ties by log index). An older version's index gives the same whole history.

    Args:
        vault: an open vault (a reader is enough).
        ref: an entry index (of any item, version or tombstone entry of the
            item), an :class:`ItemKey`, or a reference text for
            :func:`parse_item_ref`.

    Returns:
        The history, its observations and captures.

    Raises:
        RequestError: ``ref`` is text in neither form.
        NotFoundError: no item has that key.
        LogError: the index is beyond the log, or its entry is not an item,
            version or tombstone.
    """
    target = parse_item_ref(ref) if isinstance(ref, str) else ref
    if isinstance(target, ItemKey):
        row = known(vault.catalog, target.source, target.feed, target.native_id)
        if row is None:
            raise NotFoundError(f"no item {target}")
        index = row.latest
    else:
        index = target
    if not 0 <= index < 2**63:  # SQLite integers are 64-bit: no log reaches it
        raise LogError(f"entry {index}: beyond any log")
    entry = vault.entry(index)
    if entry.type not in ITEM_ENTRY_TYPES:
        raise LogError(f"entry {index} is a {entry.type}, not an item, version or tombstone")
    key = ItemKey(str(entry.meta["source"]), str(entry.meta["feed"]), str(entry.meta["native_id"]))
    latest_row = known(vault.catalog, key.source, key.feed, key.native_id)
    if latest_row is not None:  # an older version's index shows the whole item
        index = latest_row.latest
    history: list[HistoryEntry] = []
    cursor: int | None = index
    while cursor is not None:
        e = vault.entry(cursor)
        capture_index = capture_of(vault, e, cursor)
        capture = vault.entry(capture_index).meta if capture_index is not None else None
        history.append(
            HistoryEntry(
                index=cursor,
                type=e.type,
                logged_at=e.logged_at,
                meta=dict(e.meta),
                item=_item_doc(vault, e),
                capture_index=capture_index,
                observed_at=entry_observed_at(e, capture),
            )
        )
        previous = e.meta.get("previous")
        cursor = previous if isinstance(previous, int) and previous < cursor else None
    history.sort(key=lambda h: (h.observed_at, h.index), reverse=True)
    observations = observations_of(vault.catalog, key.source, key.feed, key.native_id)
    seen_in = {int(o["capture_idx"]) for o in observations}
    seen_in.update(h.capture_index for h in history if h.capture_index is not None)
    captures = capture_rows(vault.catalog, seen_in)
    # imported here: services.corrections imports this module
    from echo_archive.services.corrections import corrections_of_key

    return ItemHistory(
        key=key,
        history=history,
        observations=observations,
        captures=captures,
        corrections=corrections_of_key(vault, key),
    )
