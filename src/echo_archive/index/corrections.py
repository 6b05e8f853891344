"""The correction index: which ``correction`` entries name which item, to find them in one query.

``corrections(idx, source, feed, native_id, kind)``: for every ``correction``
entry (an editor's annotation, retraction or reinstatement of an item,
:class:`~echo_archive.schemas.AnnotationMeta` and its kinds), the item it
names and its kind; indexed by item then log index, so an item's history
finds its corrections without reading the log (a scan of the entries by
type costs a pass over the whole log). Derived: every column is the entry's
metadata (``echoctl rebuild corrections``).

Readers do not trust it alone to be current:
:func:`correction_indexes` also reads the entries a writer that did not
attach the index appended after its ``derived_state`` (a range of the log
by index, not a scan), so no correction is ever hidden; a listing pages the
index's rows in SQL (:func:`indexed_page`, :func:`indexed_count`) and adds
those (:func:`unindexed`), which all follow the indexed ones.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence

from echo_archive.vault.catalog import Catalog, Row
from echo_archive.vault.derived import LogView, applied_size
from echo_archive.vault.entry import Entry

__all__ = [
    "CorrectionIndex",
    "correction_indexes",
    "indexed_count",
    "indexed_page",
    "unindexed",
]

_CHUNK = 500
_COLUMNS = "idx, source, feed, native_id, kind"
NAME = "corrections"


class CorrectionIndex:
    """The ``corrections`` derived index (see the module docstring)."""

    name = NAME
    tables = ("corrections",)
    ddl = """
    CREATE TABLE IF NOT EXISTS corrections(
        idx INTEGER PRIMARY KEY,
        source TEXT NOT NULL,
        feed TEXT NOT NULL,
        native_id TEXT NOT NULL,
        kind TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS corrections_item ON corrections(source, feed, native_id, idx)
    """
    requires: tuple[str, ...] = ()
    per_entry = True
    key_columns = 1
    columns = ("idx", "source", "feed", "native_id", "kind")
    rebuildable = True

    def apply(
        self,
        tx: Catalog,
        first_index: int,
        entries: Sequence[Entry],
        log: LogView,
        given: object | None = None,
    ) -> None:
        """Insert a row per ``correction`` entry (caller's transaction)."""
        rows = [
            (
                first_index + i,
                str(e.meta["source"]),
                str(e.meta["feed"]),
                str(e.meta["native_id"]),
                str(e.meta["kind"]),
            )
            for i, e in enumerate(entries)
            if e.type == "correction"
        ]
        if rows:
            tx.executemany(
                f"INSERT INTO corrections({_COLUMNS}) VALUES (?, ?, ?, ?, ?)",  # noqa: S608 - constant columns
                rows,
            )

    def rows(self, catalog: Catalog, indexes: Collection[int] | None = None) -> Iterator[Row]:
        """Yield rows by entry index (only of ``indexes`` when given)."""
        if indexes is None:
            yield from catalog.query(f"SELECT {_COLUMNS} FROM corrections ORDER BY idx")  # noqa: S608 - constant columns
            return
        wanted = sorted(set(indexes))
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            yield from catalog.query(
                f"SELECT {_COLUMNS} FROM corrections WHERE idx IN ({marks}) ORDER BY idx",  # noqa: S608 - only "?" marks are formatted in
                chunk,
            )


def correction_indexes(
    catalog: Catalog,
    item: tuple[str, str, str] | None = None,
    feeds: Iterable[str] | None = None,
) -> list[int]:
    """The log indexes of the ``correction`` entries of one item (or of all), ascending.

    From the index's rows, plus the ``correction`` entries of the log beyond
    what the index has applied (all of them when the index was never built):
    the caller reads each entry and checks it names ``item`` (rows of the
    tail are not filtered here).

    Args:
        catalog: the vault's catalog (a reader's is enough).
        item: ``(source, feed, native_id)``, or None for every item.
        feeds: only corrections of items of these feeds (from the index's
            rows; the tail is not filtered), or None.

    Returns:
        Entry indexes, ascending, without duplicates.
    """
    found: set[int] = set()
    applied = applied_size(catalog, NAME) if NAME in catalog.tables() else None
    if applied is not None:
        if item is not None:
            rows = catalog.query(
                "SELECT idx FROM corrections WHERE source = ? AND feed = ? AND native_id = ?",
                item,
            )
        elif feeds is not None:
            names = sorted(set(feeds))
            marks = ",".join("?" * len(names))
            rows = catalog.query(
                f"SELECT idx FROM corrections WHERE feed IN ({marks})",  # noqa: S608 - only "?" marks are formatted in
                names,
            )
        else:
            rows = catalog.query("SELECT idx FROM corrections")
        found.update(int(r[0]) for r in rows)
    tail = catalog.query(
        "SELECT idx FROM entries WHERE idx >= ? AND type = 'correction'", (applied or 0,)
    )
    found.update(int(r[0]) for r in tail)
    return sorted(found)


def _applied(catalog: Catalog) -> int | None:
    """How many entries the index has applied, or None when it cannot be read (not built)."""
    return applied_size(catalog, NAME) if NAME in catalog.tables() else None


def _where(kind: str | None, feeds: Iterable[str] | None) -> tuple[str, list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    if kind is not None:
        clauses.append("kind = ?")
        params.append(kind)
    if feeds is not None:
        names = sorted(set(feeds))
        clauses.append(f"feed IN ({','.join('?' * len(names))})")
        params.extend(names)
    return " AND ".join(clauses) or "1", params


def indexed_page(
    catalog: Catalog,
    *,
    kind: str | None = None,
    feeds: Iterable[str] | None = None,
    after: int | None = None,
    newest: bool = True,
    limit: int,
) -> list[int]:
    """One keyset page of the indexed corrections' log indexes (SQL, not a walk of the log).

    Args:
        catalog: the vault's catalog.
        kind: only this kind, or None.
        feeds: only items of these feeds, or None.
        after: continue after this log index (below it when ``newest``), or None.
        newest: descending log index (else ascending).
        limit: at most this many.

    Returns:
        Log indexes in the page's order; none when the index is not built
        (:func:`unindexed` then gives every correction).
    """
    if _applied(catalog) is None:
        return []
    where, params = _where(kind, feeds)
    if after is not None:
        where += " AND idx < ?" if newest else " AND idx > ?"
        params.append(after)
    order = "DESC" if newest else "ASC"
    rows = catalog.query(
        f"SELECT idx FROM corrections WHERE {where} ORDER BY idx {order} LIMIT ?",  # noqa: S608 - only "?" marks and constant words are formatted in
        [*params, limit],
    )
    return [int(r[0]) for r in rows]


def indexed_count(
    catalog: Catalog, *, kind: str | None = None, feeds: Iterable[str] | None = None
) -> int:
    """How many indexed corrections match (0 when the index is not built)."""
    if _applied(catalog) is None:
        return 0
    where, params = _where(kind, feeds)
    row = catalog.query_one(f"SELECT count(*) FROM corrections WHERE {where}", params)  # noqa: S608 - only "?" marks and constant words are formatted in
    return 0 if row is None else int(row[0])


def unindexed(catalog: Catalog) -> list[int]:
    """The log indexes of ``correction`` entries the index does not hold yet, ascending.

    Those a writer that did not attach the index appended after its
    ``derived_state`` (every one when the index is not built): a range of
    the log by index. Each is greater than every indexed one.
    """
    rows = catalog.query(
        "SELECT idx FROM entries WHERE idx >= ? AND type = 'correction' ORDER BY idx",
        (_applied(catalog) or 0,),
    )
    return [int(r[0]) for r in rows]
