"""The item index: the latest state of every item, by (source, feed, native id).

``items(source, feed, native_id, idx, first_idx, digest, tombstoned,
versions, seen_at)``: for each item, the log index of its latest ``item``,
``version`` or ``tombstone`` entry (``idx``) and of its first (``first_idx``),
the content digest of its latest version (``digest``: a tombstone keeps the
one before it), its state (``tombstoned``, a code of :data:`STATE_CODES`: 0
active, 1 tombstoned, 2 withdrawn from its feed, 3 removed at the source
when first seen), how many versions it has (``item`` and ``version``
entries), and when its latest entry's capture was fetched (``seen_at``: the
capture entry's ``fetched_at``, found by the leaf hash the entry names,
:mod:`.leaves`).

Derived: everything comes from the entries (``echoctl rebuild items``). The
pipeline reads it to decide whether a sighting is new, a version or a
duplicate (:mod:`echo_archive.pipeline.versioning`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
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
    "ItemIndex",
    "ItemRow",
    "count_items",
    "item_feeds",
    "item_page",
    "known",
    "known_many",
    "list_items",
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


_COLUMNS = "source, feed, native_id, idx, first_idx, digest, tombstoned, versions, seen_at"
_IN_CHUNK = 500  # native ids per "IN (...)" query, well under SQLite's 32,766 parameters


@dataclass(frozen=True, slots=True)
class ItemRow:
    """An ``items`` row: the latest entry of an item.

    ``tombstoned`` is True in every state but ``active``; ``state`` names it
    (:data:`STATE_CODES`).
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
    )


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
    for (source, feed), ids in wanted.items():
        pending = sorted(ids)
        for start in range(0, len(pending), _IN_CHUNK):
            chunk = pending[start : start + _IN_CHUNK]
            sql = (
                f"SELECT {_COLUMNS} FROM items WHERE source = ? AND feed = ? "  # noqa: S608 - only "?" marks are formatted in
                f"AND native_id IN ({','.join('?' * len(chunk))})"
            )
            for row in catalog.query(sql, (source, feed, *chunk)):
                item = _row(row)
                found[(item.source, item.feed, item.native_id)] = item
    return found


def known(catalog: Catalog, source: str, feed: str, native_id: str) -> ItemRow | None:
    """Return the ``items`` row of one item, or None when it was never archived."""
    return known_many(catalog, [(source, feed, native_id)]).get((source, feed, native_id))


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

    Returns:
        Rows with keys ``source, feed, native_id, idx, first_idx, tombstoned,
        versions, seen_at, state``.

    Raises:
        KeyError: ``state`` is not a key of :data:`STATE_CODES`.
    """
    if "items" not in catalog.tables():
        return []
    where, args = _item_filters(source, feed, tombstoned, since, until, state)
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
) -> int:
    """How many items match the filters of :func:`item_page` (a count over the index)."""
    if "items" not in catalog.tables():
        return 0
    where, args = _item_filters(source, feed, tombstoned, since, until, state)
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


def _item_filters(
    source: str | None,
    feed: str | None,
    tombstoned: bool | None,
    since: str | None,
    until: str | None,
    state: str | None = None,
) -> tuple[list[str], list[Any]]:
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
    )
    rebuildable = True

    def apply(
        self,
        tx: Catalog,
        first_index: int,
        entries: Sequence[Entry],
        log: LogView,
        given: object | None = None,
    ) -> None:
        """Fold the item, version and tombstone entries into their items' rows.

        Raises:
            DerivedIndexError: never; an entry without the item keys is skipped
                (the entry schema rejects it on write).
            StorageError: a write failed.
        """
        keys = [_key(e) for e in entries if e.type in ITEM_TYPES]
        state: dict[tuple[str, str, str], ItemRow | None] = dict(
            known_many(tx, [k for k in keys if k is not None])
        )
        fetched: dict[bytes, str] = {}  # leaf hash of a capture in this batch -> fetched_at
        changed: dict[tuple[str, str, str], ItemRow] = {}
        for i, entry in enumerate(entries):
            if entry.type == "capture":
                fetched[leaf_hash(entry.raw)] = str(entry.meta.get("fetched_at", ""))
                continue
            if entry.type not in ITEM_TYPES:
                continue
            key = _key(entry)
            if key is None:
                continue
            row = state.get(key)
            idx = first_index + i
            tombstoned = entry.type == "tombstone"
            now = entry_state(entry.type, entry.meta)
            meta_digest = _digest(entry.meta.get("content_digest"))
            digest = row.digest if (tombstoned and row) else meta_digest
            new = ItemRow(
                *key,
                idx=idx,
                digest=digest,
                tombstoned=now != "active",
                versions=(row.versions if row else 0) + (0 if tombstoned else 1),
                first_idx=row.first_idx if row else idx,
                seen_at=_seen_at(tx, log, entry, idx, fetched),
                state=now,
            )
            state[key] = changed[key] = new
        tx.executemany(
            f"INSERT INTO items({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "  # noqa: S608 - constant columns
            "ON CONFLICT(source, feed, native_id) DO UPDATE SET idx = excluded.idx, "
            "first_idx = excluded.first_idx, digest = excluded.digest, "
            "tombstoned = excluded.tombstoned, versions = excluded.versions, "
            "seen_at = excluded.seen_at",
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
                )
                for r in changed.values()
            ],
        )

    def rows(self, catalog: Catalog, indexes: Collection[int] | None = None) -> Iterator[Row]:
        """Yield every row, ordered by its key ``(source, feed, native_id)``."""
        return catalog.query(f"SELECT {_COLUMNS} FROM items ORDER BY source, feed, native_id")  # noqa: S608 - constant columns


def _key(entry: Entry) -> tuple[str, str, str] | None:
    meta = entry.meta
    parts = (meta.get("source"), meta.get("feed"), meta.get("native_id"))
    if not all(isinstance(p, str) for p in parts):
        return None
    return (str(parts[0]), str(parts[1]), str(parts[2]))


def _digest(ref: object) -> bytes:
    found = parse_leaf_ref(ref)  # the same "sha256:<hex>" form
    return found if found is not None else b""


def _seen_at(tx: Catalog, log: LogView, entry: Entry, idx: int, fetched: dict[bytes, str]) -> str:
    """The ``fetched_at`` of the capture ``entry`` names, or "" when it names none found."""
    leaf = parse_leaf_ref(entry.meta.get("capture"))
    if leaf is None:
        return ""
    if leaf in fetched:
        return fetched[leaf]
    capture = index_of_leaf(tx, leaf, before=idx)
    if capture is None:
        return ""
    return str(log.entry(capture).meta.get("fetched_at", ""))
