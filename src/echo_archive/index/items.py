"""The item index: the current state of every item, by (source, feed, native id).

``items(source, feed, native_id, idx, first_idx, digest, tombstoned,
versions, seen_at, last_idx, observed_at)``: for each item, the log index of
its *current* ``item``, ``version`` or ``tombstone`` entry (``idx``: the one
observed last, ties by log index; see below), of its first entry in the log
(``first_idx``) and of its latest entry in the log (``last_idx``: what the
next entry's ``previous`` names), the content digest of its current version
(``digest``: a tombstone keeps the one it buried), its state
(``tombstoned``, a code of :data:`STATE_CODES`: 0 active, 1 tombstoned, 2
withdrawn from its feed, 3 removed at the source when first seen), how many
versions it has (``item`` and ``version`` entries), when the current
entry's capture was fetched (``seen_at``: the capture entry's
``fetched_at``, found by the leaf hash the entry names, :mod:`.leaves`) and
the current entry's observed time (``observed_at``).

Observed time (:func:`entry_observed_at`): a version 2 ``item``/``version``
entry's ``observed_at``; for every other entry (version 1 entries written
before it existed, tombstones) its capture's ``recorded_at``, else its
``fetched_at``. History is ordered by observed time, ties by log index; so
an older vintage imported after a newer one is history, not the current value
(issue 9; rules in :mod:`echo_archive.pipeline.versioning`).

``item_contents(source, feed, native_id, digest, first_idx)``
(:class:`ItemContentIndex`): every content digest an item ever had, with the
log index of the first entry that had it. The pipeline reads it so that
content an item already had is not archived again as a version.

Both are derived: everything comes from the entries (``echoctl rebuild
items``, ``echoctl rebuild item_contents``). The pipeline reads them to
decide whether a sighting is new, a version or a duplicate
(:mod:`echo_archive.pipeline.versioning`). Revision 2 of the item index
(``idx`` by observed time, ``last_idx``, ``observed_at``) replaces the rows a
build before it wrote: the first writer rebuilds it (:attr:`ItemIndex.revision`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Final

from echo_archive.index.leaves import index_of_leaf, parse_leaf_ref
from echo_archive.vault.catalog import Catalog, Row, as_bytes
from echo_archive.vault.derived import LogView
from echo_archive.vault.entry import Entry
from echo_archive.vault.merkle import leaf_hash

__all__ = [
    "ITEM_TYPES",
    "STATE_CODES",
    "ItemContentIndex",
    "ItemIndex",
    "ItemRow",
    "capture_time",
    "count_items",
    "entry_observed_at",
    "item_feeds",
    "item_filters",
    "item_page",
    "known",
    "known_contents",
    "known_many",
    "list_items",
    "next_row",
]

ITEM_TYPES = frozenset({"item", "version", "tombstone"})
"""The entry types an item's history is made of."""

STATE_CODES: Final[Mapping[str, int]] = MappingProxyType(
    {"active": 0, "tombstoned": 1, "withdrawn": 2, "removed": 3}
)
"""An item's state, as the ``tombstoned`` column stores it (0 and 1 as before the others).

``active``: its latest entry is content (an ``item`` or ``version``);
``tombstoned``: a ``tombstone`` (deleted or removed at the source);
``withdrawn``: a ``tombstone`` of kind ``withdrawn`` (taken out of its feed
document); ``removed``: an ``item`` of kind ``removed`` (gone at the source the
first time it was seen; the live version was never archived).
"""
_STATE_NAMES: Final = {code: name for name, code in STATE_CODES.items()}


def entry_state(entry_type: str, meta: Mapping[str, Any]) -> str:
    """The state (a key of :data:`STATE_CODES`) of an item whose latest entry is this one."""
    kind = meta.get("kind")
    if entry_type == "tombstone":
        return "withdrawn" if kind == "withdrawn" else "tombstoned"
    return "removed" if kind == "removed" else "active"


_COLUMNS = (
    "source, feed, native_id, idx, first_idx, digest, tombstoned, versions, seen_at, "
    "last_idx, observed_at"
)
_OLD_COLUMNS = "source, feed, native_id, idx, first_idx, digest, tombstoned, versions, seen_at"
"""The columns of revision 1 (a vault no writer of this build has opened yet)."""
_IN_CHUNK = 500  # native ids per "IN (...)" query, well under SQLite's 32,766 parameters


@dataclass(frozen=True, slots=True)
class ItemRow:
    """An ``items`` row: the current entry of an item (the one observed last).

    ``tombstoned`` is True in every state but ``active``; ``state`` names it
    (:data:`STATE_CODES`). ``last_idx`` is the item's latest entry in the log
    (-1: the same as ``idx``); ``observed_at`` the current entry's observed
    time (RFC 3339 UTC, ``""`` when unknown).
    """

    source: str
    feed: str
    native_id: str
    idx: int
    digest: bytes
    tombstoned: bool
    versions: int
    first_idx: int
    seen_at: str = ""
    state: str = "active"
    last_idx: int = -1
    observed_at: str = ""

    @property
    def latest(self) -> int:
        """The log index of the item's latest entry in the log (``last_idx``, else ``idx``)."""
        return self.last_idx if self.last_idx >= 0 else self.idx


def _row(found: Row) -> ItemRow:
    return ItemRow(
        str(found[0]),
        str(found[1]),
        str(found[2]),
        idx=int(found[3]),
        first_idx=int(found[4]),
        digest=as_bytes(found[5]),
        tombstoned=bool(found[6]),
        versions=int(found[7]),
        seen_at=str(found[8]),
        state=_STATE_NAMES.get(int(found[6]), "tombstoned"),
        last_idx=int(found[9]) if len(found) > 9 else int(found[3]),
        observed_at=str(found[10]) if len(found) > 10 else str(found[8]),
    )


def _columns_of(catalog: Catalog) -> str:
    """The ``items`` columns to read: revision 2's, or revision 1's on a table a build before wrote.

    A reader may open a vault no writer of this build has opened yet (its
    ``items`` table lacks ``last_idx`` and ``observed_at``); it reads what is there.
    """
    names = {str(r[1]) for r in catalog.query("PRAGMA table_info(items)")}
    return _COLUMNS if "observed_at" in names else _OLD_COLUMNS


def known_many(
    catalog: Catalog, keys: Iterable[tuple[str, str, str]]
) -> dict[tuple[str, str, str], ItemRow]:
    """Return the ``items`` rows of many items at once (a few queries, not one per item).

    Args:
        catalog: the vault's catalog.
        keys: ``(source, feed, native_id)`` triples (repeats allowed).

    Returns:
        The rows found, by key; a key never archived is absent (and every key
        is, before the index exists).
    """
    wanted: dict[tuple[str, str], set[str]] = {}
    for source, feed, native_id in keys:
        wanted.setdefault((source, feed), set()).add(native_id)
    found: dict[tuple[str, str, str], ItemRow] = {}
    if not wanted or "items" not in catalog.tables():
        return found
    columns = _columns_of(catalog)
    for (source, feed), ids in wanted.items():
        pending = sorted(ids)
        for start in range(0, len(pending), _IN_CHUNK):
            chunk = pending[start : start + _IN_CHUNK]
            sql = (
                f"SELECT {columns} FROM items WHERE source = ? AND feed = ? "  # noqa: S608 - only "?" marks are formatted in
                f"AND native_id IN ({','.join('?' * len(chunk))})"
            )
            for row in catalog.query(sql, (source, feed, *chunk)):
                item = _row(row)
                found[(item.source, item.feed, item.native_id)] = item
    return found


def known(catalog: Catalog, source: str, feed: str, native_id: str) -> ItemRow | None:
    """Return the ``items`` row of one item, or None when it was never archived."""
    return known_many(catalog, [(source, feed, native_id)]).get((source, feed, native_id))


def known_contents(
    catalog: Catalog, keys: Iterable[tuple[str, str, str]]
) -> dict[tuple[str, str, str], frozenset[bytes]]:
    """Every content digest (32 bytes each) each item ever had (the ``item_contents`` index).

    Args:
        catalog: the vault's catalog.
        keys: ``(source, feed, native_id)`` triples (repeats allowed).

    Returns:
        The digests by key; a key with none (never archived, or the index is
        not built yet) is absent.
    """
    wanted: dict[tuple[str, str], set[str]] = {}
    for source, feed, native_id in keys:
        wanted.setdefault((source, feed), set()).add(native_id)
    found: dict[tuple[str, str, str], set[bytes]] = {}
    if not wanted or "item_contents" not in catalog.tables():
        return {}
    for (source, feed), ids in wanted.items():
        pending = sorted(ids)
        for start in range(0, len(pending), _IN_CHUNK):
            chunk = pending[start : start + _IN_CHUNK]
            sql = (
                "SELECT native_id, digest FROM item_contents WHERE source = ? AND feed = ? "  # noqa: S608 - only "?" marks are formatted in
                f"AND native_id IN ({','.join('?' * len(chunk))})"
            )
            for row in catalog.query(sql, (source, feed, *chunk)):
                found.setdefault((source, feed, str(row[0])), set()).add(as_bytes(row[1]))
    return {key: frozenset(digests) for key, digests in found.items()}


def capture_time(meta: Mapping[str, Any]) -> str:
    """The time a capture stands for: its ``recorded_at`` (a recording's time), else ``fetched_at``.

    Args:
        meta: a capture entry's meta.

    Returns:
        An RFC 3339 UTC time, or ``""`` when the meta has neither (a file capture).
    """
    recorded = meta.get("recorded_at")
    if isinstance(recorded, str) and recorded:
        return recorded
    fetched = meta.get("fetched_at")
    return fetched if isinstance(fetched, str) else ""


def entry_observed_at(entry: Entry, capture: Mapping[str, Any] | None) -> str:
    """The observed time of an item, version or tombstone entry (module docstring).

    Args:
        entry: the entry.
        capture: the meta of the capture entry it names, or None when not found.

    Returns:
        Its ``observed_at`` (version 2 item and version entries), else the
        capture's :func:`capture_time`, else ``""``.
    """
    own = entry.meta.get("observed_at")
    if isinstance(own, str) and own:
        return own
    return capture_time(capture) if capture is not None else ""


def list_items(
    catalog: Catalog,
    *,
    source: str | None = None,
    feed: str | None = None,
    since_idx: int = 0,
    since: str = "",
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """List items (latest state), newest first.

    Args:
        catalog: the vault's catalog.
        source: only this source kind.
        feed: only this feed.
        since_idx: only items whose latest entry index is at least this.
        since: only items whose latest version or tombstone was seen at or
            after this RFC 3339 time (string comparison of UTC times).
        limit: at most this many rows.

    Returns:
        Rows with keys ``source, feed, native_id, idx, first_idx, tombstoned,
        versions, seen_at, state``.
    """
    if "items" not in catalog.tables():
        return []
    sql = (
        "SELECT source, feed, native_id, idx, first_idx, tombstoned, versions, seen_at "
        "FROM items WHERE idx >= ? AND seen_at >= ?"
    )
    args: list[Any] = [since_idx, since]
    if source:
        sql += " AND source = ?"
        args.append(source)
    if feed:
        sql += " AND feed = ?"
        args.append(feed)
    sql += " ORDER BY idx DESC LIMIT ?"
    args.append(limit)
    keys = ("source", "feed", "native_id", "idx", "first_idx", "tombstoned", "versions", "seen_at")
    return [_listed(dict(zip(keys, row, strict=True))) for row in catalog.query(sql, args)]


def item_page(
    catalog: Catalog,
    *,
    source: str | None = None,
    feed: str | None = None,
    tombstoned: bool | None = None,
    since: str | None = None,
    until: str | None = None,
    after: int | None = None,
    state: str | None = None,
    newest_first: bool = True,
    limit: int = 100,
    feeds: Collection[str] | None = None,
) -> list[dict[str, Any]]:
    """One keyset page of items, ordered by ``first_idx`` (the item's first entry).

    ``first_idx`` never changes once an item is archived (a version or a
    tombstone moves ``idx``, not it), so walking the pages while entries
    are appended yields every item exactly once.

    Args:
        catalog: the vault's catalog.
        source: only this source kind.
        feed: only this feed.
        tombstoned: only items in any state but ``active`` (True) or only
            ``active`` ones (False); None: both.
        since: only items whose ``seen_at`` is at or after this canonical
            UTC time (``YYYY-MM-DDTHH:MM:SS.ffffffZ``, the stored form).
        until: only items whose ``seen_at`` is before this canonical UTC time.
        after: the ``first_idx`` of the last item of the previous page.
        newest_first: descending ``first_idx`` (else ascending).
        limit: at most this many rows.
        state: only items in this state (a key of :data:`STATE_CODES`).
        feeds: only items of one of these feeds (an API principal's feed
            group; empty: none); None: no such limit.

    Returns:
        Rows with keys ``source, feed, native_id, idx, first_idx, tombstoned,
        versions, seen_at, state``.

    Raises:
        KeyError: ``state`` is not a key of :data:`STATE_CODES`.
    """
    if "items" not in catalog.tables():
        return []
    where, args = item_filters(source, feed, tombstoned, since, until, state, feeds)
    if after is not None:
        where.append("first_idx < ?" if newest_first else "first_idx > ?")
        args.append(after)
    sql = (
        "SELECT source, feed, native_id, idx, first_idx, tombstoned, versions, seen_at "
        "FROM items"
        + (" WHERE " + " AND ".join(where) if where else "")  # fixed clauses, "?" marks
        + f" ORDER BY first_idx {'DESC' if newest_first else 'ASC'} LIMIT ?"
    )
    args.append(limit)
    keys = ("source", "feed", "native_id", "idx", "first_idx", "tombstoned", "versions", "seen_at")
    return [_listed(dict(zip(keys, row, strict=True))) for row in catalog.query(sql, args)]


def _listed(row: dict[str, Any]) -> dict[str, Any]:
    """A listed row: ``tombstoned`` as a boolean, ``state`` its name (:data:`STATE_CODES`)."""
    code = int(row["tombstoned"])
    row["tombstoned"] = bool(code)
    row["state"] = _STATE_NAMES.get(code, "tombstoned")
    return row


def count_items(
    catalog: Catalog,
    *,
    source: str | None = None,
    feed: str | None = None,
    tombstoned: bool | None = None,
    since: str | None = None,
    until: str | None = None,
    state: str | None = None,
    feeds: Collection[str] | None = None,
) -> int:
    """How many items match the filters of :func:`item_page` (a count over the index)."""
    if "items" not in catalog.tables():
        return 0
    where, args = item_filters(source, feed, tombstoned, since, until, state, feeds)
    sql = "SELECT count(*) FROM items" + (  # noqa: S608 - fixed clauses with "?" marks
        " WHERE " + " AND ".join(where) if where else ""
    )
    row = catalog.query_one(sql, args)
    return int(row[0]) if row else 0


def item_feeds(catalog: Catalog) -> list[tuple[str, str]]:
    """Every ``(source, feed)`` pair that has items, sorted (for "what exists" in errors).

    Returns:
        The distinct pairs of the ``items`` table; ``[]`` when it does not exist.
    """
    if "items" not in catalog.tables():
        return []
    rows = catalog.query("SELECT DISTINCT source, feed FROM items ORDER BY source, feed")
    return [(str(r[0]), str(r[1])) for r in rows]


def item_filters(
    source: str | None,
    feed: str | None,
    tombstoned: bool | None,
    since: str | None,
    until: str | None,
    state: str | None = None,
    feeds: Collection[str] | None = None,
) -> tuple[list[str], list[Any]]:
    """The ``WHERE`` clauses (``?`` marks) and arguments of the item filters of :func:`item_page`.

    The clauses name ``items`` columns unqualified (``source``, ``feed``,
    ``tombstoned``, ``seen_at``): usable in any query whose other tables lack
    those names (the search service joins ``items`` to its FTS5 table).
    ``feeds`` (a set of feed names; empty matches nothing) is ``feed IN (...)``.

    Raises:
        KeyError: ``state`` is not a key of :data:`STATE_CODES`.
    """
    where: list[str] = []
    args: list[Any] = []
    if tombstoned is not None:
        where.append("tombstoned != 0" if tombstoned else "tombstoned = 0")
    for clause, value in (
        ("source = ?", source),
        ("feed = ?", feed),
        ("tombstoned = ?", None if state is None else STATE_CODES[state]),
        ("seen_at >= ?", since),
        ("seen_at < ?", until),
    ):
        if value is not None:
            where.append(clause)
            args.append(value)
    if feeds is not None:
        names = sorted(feeds)
        where.append("feed IN (" + ", ".join("?" * len(names)) + ")" if names else "0")
        args.extend(names)
    return where, args


class ItemIndex:
    """The ``items`` derived index (see the module docstring)."""

    name = "items"
    tables = ("items",)
    ddl = """
    CREATE TABLE IF NOT EXISTS items(
        source TEXT NOT NULL,
        feed TEXT NOT NULL,
        native_id TEXT NOT NULL,
        idx INTEGER NOT NULL,
        first_idx INTEGER NOT NULL,
        digest BLOB NOT NULL,
        tombstoned INTEGER NOT NULL,
        versions INTEGER NOT NULL,
        seen_at TEXT NOT NULL,
        last_idx INTEGER NOT NULL,
        observed_at TEXT NOT NULL,
        PRIMARY KEY(source, feed, native_id)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS items_first ON items(first_idx)
    """
    requires = ("leaves",)
    per_entry = False
    key_columns = 3
    columns = (
        "source",
        "feed",
        "native_id",
        "idx",
        "first_idx",
        "digest",
        "tombstoned",
        "versions",
        "seen_at",
        "last_idx",
        "observed_at",
    )
    rebuildable = True
    revision = 2
    """Revision 2: ``idx`` is the entry observed last (was: the latest in the log),
    with ``last_idx`` and ``observed_at``; a table of revision 1 is rebuilt by the
    first writer (:meth:`echo_archive.vault.vault.Vault.attach`)."""

    def apply(
        self,
        tx: Catalog,
        first_index: int,
        entries: Sequence[Entry],
        log: LogView,
        given: object | None = None,
    ) -> None:
        """Fold the item, version and tombstone entries into their items' rows.

        An entry becomes its item's current one when it is observed at or after
        the current one (its log index is larger, so it wins a tie); every
        entry moves ``last_idx`` and an ``item``/``version`` counts a version.

        Raises:
            DerivedIndexError: never; an entry without the item keys is skipped
                (the entry schema rejects it on write).
            StorageError: a write failed.
        """
        keys = [_key(e) for e in entries if e.type in ITEM_TYPES]
        state: dict[tuple[str, str, str], ItemRow | None] = dict(
            known_many(tx, [k for k in keys if k is not None])
        )
        captures: dict[bytes, Mapping[str, Any]] = {}  # leaf hash -> meta, captures of this batch
        changed: dict[tuple[str, str, str], ItemRow] = {}
        for i, entry in enumerate(entries):
            if entry.type == "capture":
                captures[leaf_hash(entry.raw)] = entry.meta
                continue
            if entry.type not in ITEM_TYPES:
                continue
            key = _key(entry)
            if key is None:
                continue
            row = state.get(key)
            idx = first_index + i
            capture = _capture_meta(tx, log, entry, idx, captures)
            new = next_row(key, row, entry, idx, capture)
            state[key] = changed[key] = new
        tx.executemany(
            f"INSERT INTO items({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "  # noqa: S608 - constant columns
            "ON CONFLICT(source, feed, native_id) DO UPDATE SET idx = excluded.idx, "
            "first_idx = excluded.first_idx, digest = excluded.digest, "
            "tombstoned = excluded.tombstoned, versions = excluded.versions, "
            "seen_at = excluded.seen_at, last_idx = excluded.last_idx, "
            "observed_at = excluded.observed_at",
            [
                (
                    r.source,
                    r.feed,
                    r.native_id,
                    r.idx,
                    r.first_idx,
                    r.digest,
                    STATE_CODES[r.state],
                    r.versions,
                    r.seen_at,
                    r.latest,
                    r.observed_at,
                )
                for r in changed.values()
            ],
        )

    def rows(self, catalog: Catalog, indexes: Collection[int] | None = None) -> Iterator[Row]:
        """Yield every row, ordered by its key ``(source, feed, native_id)``."""
        return catalog.query(f"SELECT {_COLUMNS} FROM items ORDER BY source, feed, native_id")  # noqa: S608 - constant columns


def next_row(
    key: tuple[str, str, str],
    row: ItemRow | None,
    entry: Entry,
    idx: int,
    capture: Mapping[str, Any] | None,
) -> ItemRow:
    """The ``items`` row of ``key`` once ``entry`` (at log index ``idx``) is added to ``row``.

    The one rule the index applies and the pipeline predicts
    (:mod:`echo_archive.pipeline.batch`), so a batch and its commit agree.

    Args:
        key: the item's ``(source, feed, native_id)``.
        row: its row before the entry, or None for its first entry.
        entry: an ``item``, ``version`` or ``tombstone`` entry of the item.
        idx: the entry's log index (larger than every index in ``row``).
        capture: the meta of the capture the entry names, or None when not found.

    Returns:
        The new row: the entry is current when observed at or after ``row``'s
        current entry; ``last_idx`` is ``idx``; ``versions`` counts it unless
        it is a tombstone.
    """
    tombstone = entry.type == "tombstone"
    versions = (row.versions if row else 0) + (0 if tombstone else 1)
    observed = entry_observed_at(entry, capture)
    if row is not None and observed < row.observed_at:
        return replace(row, versions=versions, last_idx=idx)
    now = entry_state(entry.type, entry.meta)
    digest = _digest(entry.meta.get("content_digest"))
    if tombstone and row is not None and not digest:
        digest = row.digest
    fetched = capture.get("fetched_at", "") if capture is not None else ""
    return ItemRow(
        *key,
        idx=idx,
        digest=digest,
        tombstoned=now != "active",
        versions=versions,
        first_idx=row.first_idx if row else idx,
        seen_at=str(fetched),
        state=now,
        last_idx=idx,
        observed_at=observed,
    )


class ItemContentIndex:
    """The ``item_contents`` derived index: every content digest each item had (see the module)."""

    name = "item_contents"
    tables = ("item_contents",)
    ddl = """
    CREATE TABLE IF NOT EXISTS item_contents(
        source TEXT NOT NULL,
        feed TEXT NOT NULL,
        native_id TEXT NOT NULL,
        digest BLOB NOT NULL,
        first_idx INTEGER NOT NULL,
        PRIMARY KEY(source, feed, native_id, digest)
    ) WITHOUT ROWID
    """
    requires: tuple[str, ...] = ()
    per_entry = False
    key_columns = 4
    columns = ("source", "feed", "native_id", "digest", "first_idx")
    rebuildable = True

    def apply(
        self,
        tx: Catalog,
        first_index: int,
        entries: Sequence[Entry],
        log: LogView,
        given: object | None = None,
    ) -> None:
        """Add the content digest of each ``item`` and ``version`` entry new to its item.

        A tombstone adds none (its ``content_digest`` is the buried version's).

        Raises:
            StorageError: a write failed.
        """
        rows = []
        for i, entry in enumerate(entries):
            if entry.type not in ("item", "version"):
                continue
            key = _key(entry)
            digest = _digest(entry.meta.get("content_digest"))
            if key is None or not digest:
                continue
            rows.append((*key, digest, first_index + i))
        tx.executemany(
            "INSERT INTO item_contents(source, feed, native_id, digest, first_idx) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            rows,
        )

    def rows(self, catalog: Catalog, indexes: Collection[int] | None = None) -> Iterator[Row]:
        """Yield every row, ordered by its key ``(source, feed, native_id, digest)``."""
        return catalog.query(
            "SELECT source, feed, native_id, digest, first_idx FROM item_contents "
            "ORDER BY source, feed, native_id, digest"
        )


def _key(entry: Entry) -> tuple[str, str, str] | None:
    meta = entry.meta
    parts = (meta.get("source"), meta.get("feed"), meta.get("native_id"))
    if not all(isinstance(p, str) for p in parts):
        return None
    return (str(parts[0]), str(parts[1]), str(parts[2]))


def _digest(ref: object) -> bytes:
    found = parse_leaf_ref(ref)  # the same "sha256:<hex>" form
    return found if found is not None else b""


def _capture_meta(
    tx: Catalog, log: LogView, entry: Entry, idx: int, batch: Mapping[bytes, Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    """The meta of the capture ``entry`` names (in this batch or before), or None when not found."""
    leaf = parse_leaf_ref(entry.meta.get("capture"))
    if leaf is None:
        return None
    if leaf in batch:
        return batch[leaf]
    capture = index_of_leaf(tx, leaf, before=idx)
    if capture is None:
        return None
    return log.entry(capture).meta
