"""Observations: the volatile counters (score, comments, stars) of every sighting of an item.

``observations(source, feed, native_id, seen_at, capture_idx, counters)``:
one row per item with counters in a parsed capture, duplicates included
(a duplicate adds no entry: its counters exist only in the capture's body).
``counters`` is JSON with sorted keys; rows of one capture keep the order
the source reported the items in.

Derived, with a re-parse: at commit the pipeline hands over the rows it
already has (``given``); a rebuild re-parses each HTTP capture body with a
:data:`Reparse` function passed in by a layer that knows the sources (this
index sits below them and imports none: DESIGN.md, layers).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from echo_archive.errors import DerivedIndexError
from echo_archive.vault.catalog import Catalog, Row
from echo_archive.vault.derived import LogView
from echo_archive.vault.entry import Entry

__all__ = ["ObservationIndex", "ObservationRow", "Reparse", "observations_of"]

_CHUNK = 500


@dataclass(frozen=True, slots=True)
class ObservationRow:
    """An ``observations`` row: the counters of one sighting of an item."""

    source: str
    feed: str
    native_id: str
    seen_at: str
    capture_idx: int
    counters: Mapping[str, int | float]


Reparse = Callable[[Entry, bytes], Sequence[tuple[str, str, str, Mapping[str, int | float]]]]
"""Re-parses a capture: ``(capture entry, body) -> [(source, feed, native_id, counters)]``.

One tuple per item the capture's source reports, in its order (counters may
be empty). Raises :class:`~echo_archive.errors.SourceError` when the body
cannot be parsed.
"""


class ObservationIndex:
    """The ``observations`` derived index.

    Args:
        reparse: re-parses a capture for a rebuild or a catch-up (None: such a
            rebuild raises :class:`DerivedIndexError` at the first HTTP capture).
    """

    name = "observations"
    tables = ("observations",)
    ddl = """
    CREATE TABLE IF NOT EXISTS observations(
        source TEXT NOT NULL,
        feed TEXT NOT NULL,
        native_id TEXT NOT NULL,
        seen_at TEXT NOT NULL,
        capture_idx INTEGER NOT NULL,
        counters TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS observations_item ON observations(source, feed, native_id)
    """
    requires: tuple[str, ...] = ()
    per_entry = True
    key_columns = 2
    columns = ("capture_idx", "n", "source", "feed", "native_id", "seen_at", "counters")

    def __init__(self, reparse: Reparse | None = None) -> None:
        self.reparse = reparse

    @property
    def rebuildable(self) -> bool:
        """True when a re-parse function was given."""
        return self.reparse is not None

    def apply(
        self,
        tx: Catalog,
        first_index: int,
        entries: Sequence[Entry],
        log: LogView,
        given: object | None = None,
    ) -> None:
        """Insert the observations of ``entries``' captures (``given`` rows, else a re-parse).

        Raises:
            DerivedIndexError: a capture must be re-parsed and no re-parse was given.
            StorageError: a write failed.
        """
        if isinstance(given, Sequence):
            rows = [o for o in given if isinstance(o, ObservationRow)]
        else:
            rows = self._reparsed(first_index, entries, log)
        tx.executemany(
            "INSERT INTO observations(source, feed, native_id, seen_at, capture_idx, counters) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    o.source,
                    o.feed,
                    o.native_id,
                    o.seen_at,
                    o.capture_idx,
                    json.dumps(dict(o.counters), sort_keys=True),
                )
                for o in rows
            ],
        )

    def _reparsed(
        self, first_index: int, entries: Sequence[Entry], log: LogView
    ) -> list[ObservationRow]:
        rows: list[ObservationRow] = []
        for i, entry in enumerate(entries):
            meta = entry.meta
            if entry.type != "capture" or meta.get("kind") != "http":
                continue
            if meta.get("parse_error") is not None or not entry.blobs:
                continue  # the source could not parse it: no sighting had counters
            idx = first_index + i
            if self.reparse is None:
                raise DerivedIndexError(
                    f"observations: capture entry {idx} must be re-parsed, and no re-parse "
                    "function was given (open the vault through the library, not the vault alone)"
                )
            body = log.blob(entry.blobs[0].digest)
            try:
                found = self.reparse(entry, body)
            except Exception as exc:  # a source's failure names the capture, never aborts others
                raise DerivedIndexError(
                    f"observations: re-parsing capture entry {idx} failed: {exc}"
                ) from exc
            seen_at = str(meta.get("fetched_at", ""))
            rows.extend(
                ObservationRow(source, feed, native_id, seen_at, idx, counters)
                for source, feed, native_id, counters in found
                if counters
            )
        return rows

    def rows(self, catalog: Catalog, indexes: Collection[int] | None = None) -> Iterator[Row]:
        """Yield ``(capture_idx, n, source, feed, native_id, seen_at, counters)``, n from 1."""
        select = (
            "SELECT capture_idx, ROW_NUMBER() OVER (PARTITION BY capture_idx ORDER BY rowid), "
            "source, feed, native_id, seen_at, counters FROM observations"
        )
        if indexes is None:
            yield from catalog.query(select + " ORDER BY capture_idx, rowid")
            return
        wanted = sorted(set(indexes))
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            yield from catalog.query(
                f"{select} WHERE capture_idx IN ({marks}) ORDER BY capture_idx, rowid",
                chunk,
            )


def observations_of(
    catalog: Catalog, source: str, feed: str, native_id: str
) -> list[dict[str, Any]]:
    """Return an item's observations, oldest first (``seen_at``, ``capture_idx``, ``counters``)."""
    if "observations" not in catalog.tables():
        return []
    rows = catalog.query(
        "SELECT seen_at, capture_idx, counters FROM observations "
        "WHERE source = ? AND feed = ? AND native_id = ? ORDER BY rowid",
        (source, feed, native_id),
    )
    return [{"seen_at": r[0], "capture_idx": r[1], "counters": json.loads(r[2])} for r in rows]
