"""The capture index: what each HTTP capture entry holds, to list captures without parsing.

``captures(idx, feed, url, status, fetched_at, error)``: for every capture
entry of kind ``http`` (a harvested or imported exchange), its feed, request
URL (credentials redacted, as in the entry), final status, fetch time and
parse error. Derived: every column is the capture entry's metadata
(``echoctl rebuild captures``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import Any

from echo_archive.vault.catalog import Catalog, Row
from echo_archive.vault.derived import LogView
from echo_archive.vault.entry import Entry

__all__ = ["CaptureIndex", "capture_rows"]

_CHUNK = 500
_COLUMNS = "idx, feed, url, status, fetched_at, error"


def _is_http_capture(entry: Entry) -> bool:
    return entry.type == "capture" and entry.meta.get("kind") == "http"


class CaptureIndex:
    """The ``captures`` derived index (see the module docstring)."""

    name = "captures"
    tables = ("captures",)
    ddl = """
    CREATE TABLE IF NOT EXISTS captures(
        idx INTEGER PRIMARY KEY,
        feed TEXT NOT NULL,
        url TEXT NOT NULL,
        status INTEGER NOT NULL,
        fetched_at TEXT NOT NULL,
        error TEXT
    )
    """
    requires: tuple[str, ...] = ()
    per_entry = True
    key_columns = 1
    columns = ("idx", "feed", "url", "status", "fetched_at", "error")
    rebuildable = True

    def apply(
        self,
        tx: Catalog,
        first_index: int,
        entries: Sequence[Entry],
        log: LogView,
        given: object | None = None,
    ) -> None:
        """Insert a row per HTTP capture entry (caller's transaction)."""
        rows = []
        for i, entry in enumerate(entries):
            if not _is_http_capture(entry):
                continue
            meta = entry.meta
            rows.append(
                (
                    first_index + i,
                    str(meta.get("feed", "")),
                    str(meta.get("url", "")),
                    int(meta.get("status", 0)),
                    str(meta.get("fetched_at", "")),
                    meta.get("parse_error"),
                )
            )
        tx.executemany(
            f"INSERT INTO captures({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",  # noqa: S608 - constant columns
            rows,
        )

    def rows(self, catalog: Catalog, indexes: Collection[int] | None = None) -> Iterator[Row]:
        """Yield rows by entry index (only of ``indexes`` when given)."""
        if indexes is None:
            yield from catalog.query(f"SELECT {_COLUMNS} FROM captures ORDER BY idx")  # noqa: S608 - constant columns
            return
        yield from _by_index(catalog, indexes)


def _by_index(catalog: Catalog, indexes: Iterable[int]) -> Iterator[Row]:
    wanted = sorted(set(indexes))
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        yield from catalog.query(
            f"SELECT {_COLUMNS} FROM captures WHERE idx IN ({marks}) ORDER BY idx",  # noqa: S608 - only "?" marks are formatted in
            chunk,
        )


def capture_rows(catalog: Catalog, indexes: Iterable[int]) -> list[dict[str, Any]]:
    """Return the ``captures`` rows of these capture entry indexes, ascending.

    Returns:
        Rows with keys ``index, feed, url, status, fetched_at, error``; an
        index that is not an HTTP capture has none.
    """
    if "captures" not in catalog.tables():
        return []
    keys = ("index", "feed", "url", "status", "fetched_at", "error")
    return [dict(zip(keys, r, strict=True)) for r in _by_index(catalog, indexes)]
