"""The leaf-hash lookup: which log index holds the entry of a leaf hash (a derived index).

An item, version or tombstone entry names the capture it was parsed from by
that capture's leaf hash (``capture = "sha256:<hex>"``, RFC 9162 §2.1.1
``SHA-256(0x00 || entry)``); an evidence bundle or a witness names entries
the same way. ``leaves(leaf, idx)`` answers "which index holds this leaf" in
one lookup instead of hashing earlier entries. Every entry has a row; two
identical entries (same bytes, so the same leaf hash) each have theirs, and
a lookup answers the earliest.

Derived: rebuilt from the entries by hashing each (``echoctl rebuild leaves``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence

from echo_archive.vault.catalog import Catalog, Row
from echo_archive.vault.derived import LogView
from echo_archive.vault.entry import Entry
from echo_archive.vault.merkle import leaf_hash

__all__ = ["LeafIndex", "capture_index", "index_of_leaf", "parse_leaf_ref"]

_CHUNK = 500


class LeafIndex:
    """The ``leaves`` derived index (see the module docstring)."""

    name = "leaves"
    tables = ("leaves",)
    ddl = """
    CREATE TABLE IF NOT EXISTS leaves(
        leaf BLOB NOT NULL,
        idx INTEGER NOT NULL,
        PRIMARY KEY(leaf, idx)
    ) WITHOUT ROWID
    """
    requires: tuple[str, ...] = ()
    per_entry = True
    key_columns = 2
    columns = ("idx", "leaf")
    rebuildable = True

    def apply(
        self,
        tx: Catalog,
        first_index: int,
        entries: Sequence[Entry],
        log: LogView,
        given: object | None = None,
    ) -> None:
        """Insert one ``(leaf hash, index)`` row per entry (caller's transaction)."""
        tx.executemany(
            "INSERT INTO leaves(leaf, idx) VALUES (?, ?)",
            [(leaf_hash(e.raw), first_index + i) for i, e in enumerate(entries)],
        )

    def rows(self, catalog: Catalog, indexes: Collection[int] | None = None) -> Iterator[Row]:
        """Yield ``(idx, leaf)`` rows by index (only of ``indexes`` when given)."""
        if indexes is None:
            yield from catalog.query("SELECT idx, leaf FROM leaves ORDER BY idx, leaf")
            return
        wanted = sorted(set(indexes))
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            yield from catalog.query(
                f"SELECT idx, leaf FROM leaves WHERE idx IN ({marks}) ORDER BY idx, leaf",  # noqa: S608 - only "?" marks are formatted in
                chunk,
            )


def parse_leaf_ref(ref: object) -> bytes | None:
    """The 32 bytes of a ``sha256:<64 hex>`` leaf reference, or None when it is not one."""
    if not isinstance(ref, str) or not ref.startswith("sha256:") or len(ref) != 71:
        return None
    try:
        return bytes.fromhex(ref[7:])
    except ValueError:
        return None


def index_of_leaf(catalog: Catalog, leaf: bytes, *, before: int | None = None) -> int | None:
    """The log index of the entry whose leaf hash is ``leaf``, or None.

    The one way to find an entry by its leaf hash (``show``, the library's
    item history, evidence): one lookup in the ``leaves`` index.

    Args:
        catalog: the vault's catalog (:attr:`Vault.catalog
            <echo_archive.vault.vault.Vault.catalog>`).
        leaf: the leaf hash (32 bytes; RFC 9162 §2.1.1).
        before: only an entry below this index (an item's capture precedes it).

    Returns:
        The earliest such index (below ``before``), or None when no entry has
        that leaf hash, or the index was never built (a vault no writer has
        opened since it was added; the next writer builds it).
    """
    if "leaves" not in catalog.tables():
        return None
    if before is None:
        row = catalog.query_one("SELECT min(idx) FROM leaves WHERE leaf = ?", (leaf,))
    else:
        row = catalog.query_one(
            "SELECT min(idx) FROM leaves WHERE leaf = ? AND idx < ?", (leaf, before)
        )
    return None if row is None or row[0] is None else int(row[0])


def capture_index(catalog: Catalog, entry: Entry, index: int) -> int | None:
    """The log index of the capture an item, version or tombstone entry names, or None.

    The entry names its capture by leaf hash (``meta.capture``); the capture
    precedes it in the log.

    Args:
        catalog: the vault's catalog.
        entry: the entry.
        index: the entry's own log index.
    """
    leaf = parse_leaf_ref(entry.meta.get("capture"))
    return None if leaf is None else index_of_leaf(catalog, leaf, before=index)
