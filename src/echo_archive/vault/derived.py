"""Derived indexes: catalog tables rebuilt from the log and the blobs, never trusted alone.

The truth of a vault is its log (entries, tiles, checkpoints) and its blobs.
A *derived index* is a set of catalog tables computed from them (the item
index, captures, observations, the leaf-hash lookup; later full-text search
and near-duplicates): kept current at every commit, rebuildable on demand,
and compared with a rebuild by ``echoctl verify`` (DESIGN.md invariant 8).

This module defines the one small interface a derived index implements
(:class:`DerivedIndex`) and the vault's side of it: how far each index has
applied the log (table ``derived_state``), :func:`rebuild` and
:func:`compare`. The implementations live above the vault
(:mod:`echo_archive.index`); the vault knows them only through this
interface, so it knows nothing of feeds, sources or harvesting.

How an index is kept current:

* at every commit, :meth:`Vault.append <echo_archive.vault.vault.Vault.append>`
  calls :meth:`DerivedIndex.apply` of every *attached* index with the new
  entries, inside the transaction that appends them (they commit or roll
  back together), and records the new log size in ``derived_state``;
* a writer attaching an index whose ``derived_state`` is behind the log (its
  tables are new, or entries were appended by a writer that did not attach
  it) applies the missing entries first (*catch-up*). An index with no
  ``derived_state`` row whose tables already existed is taken as current:
  vaults written before ``derived_state`` existed kept those tables in the
  same transactions as the entries;
* :func:`rebuild` empties an index's tables and applies the whole log again,
  in one transaction (readers see the old rows until it commits);
* an index whose rows a newer build derives differently (new columns, a new
  rule) declares a higher ``revision`` (absent means 1; table
  ``derived_revisions``). A writer attaching it over tables of another
  revision drops them, recreates them and applies the whole log
  (:func:`reset_if_stale`); ``verify`` does not compare such tables (a
  warning: the next writer rebuilds them). Derived rows are never evidence,
  so dropping them loses nothing.

:meth:`DerivedIndex.apply` must give the same rows whether the entries come
one commit at a time or all at once: "rebuild equals incremental", which
``tests/test_derived.py`` checks over random harvests and imports.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from echo_archive.errors import DerivedIndexError
from echo_archive.vault.catalog import Catalog, Row, SQLiteCatalog
from echo_archive.vault.entry import Entry

__all__ = [
    "DERIVED_STATE_DDL",
    "CompareReport",
    "DerivedIndex",
    "Difference",
    "LogView",
    "applied_size",
    "apply_range",
    "compare",
    "index_revision",
    "order_indexes",
    "rebuild",
    "record_applied",
    "record_revision",
    "reset_if_stale",
    "stored_revision",
]

DERIVED_STATE_DDL = """
CREATE TABLE IF NOT EXISTS derived_state(
    name TEXT PRIMARY KEY,
    size INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS derived_revisions(
    name TEXT PRIMARY KEY,
    revision INTEGER NOT NULL
) WITHOUT ROWID
"""
"""``derived_state(name, size)``: each attached index has applied entries ``0 .. size-1``;
``derived_revisions(name, revision)``: the revision of the rules its rows were derived by
(no row: revision 1)."""

CHUNK = 2000
"""Entries applied per :meth:`DerivedIndex.apply` call when catching up or rebuilding."""


class LogView(Protocol):
    """What a derived index may read of the log and the blobs (a :class:`Vault` is one)."""

    def entry(self, index: int) -> Entry:
        """The entry at ``index``.

        Raises:
            LogError: no entry at that index.
        """
        ...

    def entries(self, first: int, end: int) -> list[Entry]:
        """The entries ``first .. end-1``, in order.

        Raises:
            LogError: a row of the range is missing.
        """
        ...

    def blob(self, digest: bytes) -> bytes:
        """The bytes of the blob ``digest`` (SHA-256, 32 bytes).

        Raises:
            BlobNotFoundError: the store does not hold it.
        """
        ...


class DerivedIndex(Protocol):
    """One derived index: a name, its tables, and how entries become its rows.

    Attributes:
        name: the index's name (``items``, ``captures``...; ``echoctl rebuild NAME``).
        tables: the tables it owns (emptied by :func:`rebuild`).
        ddl: ``CREATE TABLE IF NOT EXISTS`` / ``CREATE INDEX IF NOT EXISTS``
            statements of those tables (see :meth:`Catalog.create_tables`).
        requires: names of the indexes whose rows :meth:`apply` reads; they
            are applied before this one.
        per_entry: True when the rows of an entry depend on that entry (and
            its blobs) alone, so :func:`compare` can rebuild a sample of
            entries; False when they depend on earlier entries too (compared
            whole).
    """

    @property
    def name(self) -> str:
        """The index's name."""
        ...

    @property
    def tables(self) -> tuple[str, ...]:
        """The tables it owns."""
        ...

    @property
    def ddl(self) -> str:
        """The statements creating its tables."""
        ...

    @property
    def requires(self) -> tuple[str, ...]:
        """The indexes it reads, applied before it."""
        ...

    @property
    def per_entry(self) -> bool:
        """Whether an entry's rows depend on that entry alone."""
        ...

    def apply(
        self,
        tx: Catalog,
        first_index: int,
        entries: Sequence[Entry],
        log: LogView,
        given: object | None = None,
    ) -> None:
        """Write the rows derived from ``entries``, inside the caller's open transaction.

        Args:
            tx: the catalog, inside the transaction that appends ``entries``
                (or a rebuild's transaction).
            first_index: the log index of ``entries[0]``; entries are contiguous.
            entries: the entries, in log order.
            log: the log and blobs as committed before ``entries`` (for
                earlier entries and blob contents).
            given: what the committer already knows and the entries do not
                hold (observations of duplicate sightings exist only in
                capture bodies: the pipeline hands them over instead of a
                re-parse); None on catch-up and rebuild.

        Raises:
            DerivedIndexError: the rows cannot be derived (names the entry).
            StorageError: a write failed (the transaction rolls back).
        """
        ...

    def rows(self, catalog: Catalog, indexes: Collection[int] | None = None) -> Iterator[Row]:
        """Yield the index's rows as compared by :func:`compare`, in a stable order.

        Args:
            catalog: the catalog to read.
            indexes: only the rows derived from these entry indexes (a
                ``per_entry`` index only); None for every row.

        Each row starts with its key columns (:attr:`key_columns` of them).
        """
        ...

    @property
    def key_columns(self) -> int:
        """How many leading columns of a :meth:`rows` row are its key."""
        ...

    @property
    def columns(self) -> tuple[str, ...]:
        """The names of the columns of a :meth:`rows` row, in order."""
        ...

    @property
    def rebuildable(self) -> bool:
        """False when this instance cannot rebuild (attached without what a rebuild needs).

        :func:`compare` is then skipped (``verify`` warns) and :func:`rebuild` refused.
        """
        ...


@dataclass(frozen=True)
class Difference:
    """One row that differs between the stored index and its rebuild.

    Attributes:
        index: the derived index's name.
        key: the row's key, in words (``source=hn feed=hn-top native_id=42``).
        stored: the stored row (None when the rebuild has a row the store lacks).
        rebuilt: the rebuilt row (None when the store has a row the rebuild lacks).
        columns: the names of the row's columns.
    """

    index: str
    key: str
    stored: Row | None
    rebuilt: Row | None
    columns: tuple[str, ...] = ()

    def message(self) -> str:
        """The difference in plain words: the differing columns, stored versus rebuilt."""
        if self.stored is None:
            return f"row missing: the rebuild has {self._named(self.rebuilt)}"
        if self.rebuilt is None:
            return f"extra row: stored {self._named(self.stored)} is not in the rebuild"
        parts = [
            f"{self._column(i)} stored {_value(a)}, rebuilt {_value(b)}"
            for i, (a, b) in enumerate(zip(self.stored, self.rebuilt, strict=False))
            if _norm(a) != _norm(b)
        ]
        return "; ".join(parts) or "rows differ"

    def _column(self, i: int) -> str:
        return self.columns[i] if i < len(self.columns) else f"column {i + 1}"

    def _named(self, row: Row | None) -> str:
        if row is None:
            return "nothing"
        return "(" + ", ".join(f"{self._column(i)}={_value(v)}" for i, v in enumerate(row)) + ")"


@dataclass
class CompareReport:
    """The outcome of :func:`compare` for one index.

    Attributes:
        index: its name.
        rows: rows compared (the rebuild's).
        entries: entries rebuilt for the comparison.
        full: whether the whole index was compared (else a sample of entries).
        behind: entries the index has not applied yet (0 when current).
        differences: every differing row (at most ``limit`` kept).
        more: differences beyond the kept ones.
    """

    index: str
    rows: int = 0
    entries: int = 0
    full: bool = True
    behind: int = 0
    differences: list[Difference] = field(default_factory=list)
    more: int = 0

    @property
    def ok(self) -> bool:
        """True when the stored rows equal the rebuild's and the index is current."""
        return not self.differences and not self.behind


def _value(value: object) -> str:
    """A column value in a message: bytes as short hex, text quoted and cut at 80 characters."""
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        return "0x" + data.hex()[:16] + ("…" if len(data) > 8 else "")
    text = repr(value)
    return text if len(text) <= 80 else text[:79] + "…"


def order_indexes(indexes: Iterable[DerivedIndex]) -> list[DerivedIndex]:
    """Order ``indexes`` so every index follows those it requires.

    Raises:
        DerivedIndexError: a required index is absent, or two share a name.
    """
    by_name: dict[str, DerivedIndex] = {}
    for index in indexes:
        if index.name in by_name:
            raise DerivedIndexError(f"two derived indexes are named {index.name!r}")
        by_name[index.name] = index
    ordered: list[DerivedIndex] = []
    placed: set[str] = set()

    def place(index: DerivedIndex, chain: tuple[str, ...]) -> None:
        if index.name in placed:
            return
        for need in index.requires:
            if need in chain:
                raise DerivedIndexError(f"derived indexes require each other: {(*chain, need)}")
            if need not in by_name:
                raise DerivedIndexError(
                    f"derived index {index.name!r} requires {need!r}, which is not attached"
                )
            place(by_name[need], (*chain, index.name))
        placed.add(index.name)
        ordered.append(index)

    for index in by_name.values():
        place(index, ())
    return ordered


def applied_size(catalog: Catalog, name: str) -> int | None:
    """How many entries index ``name`` has applied, or None when it has no ``derived_state`` row."""
    if "derived_state" not in catalog.tables():
        return None
    row = catalog.query_one("SELECT size FROM derived_state WHERE name = ?", (name,))
    return None if row is None else int(row[0])


def record_applied(tx: Catalog, name: str, size: int) -> None:
    """Record that index ``name`` has applied entries ``0 .. size-1`` (caller's transaction)."""
    tx.execute(
        "INSERT INTO derived_state(name, size) VALUES (?, ?) "
        "ON CONFLICT(name) DO UPDATE SET size = excluded.size",
        (name, size),
    )


def apply_range(
    tx: Catalog,
    indexes: Sequence[DerivedIndex],
    log: LogView,
    first: int,
    end: int,
    *,
    chunk: int = CHUNK,
) -> None:
    """Apply entries ``first .. end-1`` to ``indexes`` (in order), ``chunk`` entries at a time.

    Runs inside the caller's transaction on ``tx``.

    Raises:
        DerivedIndexError, StorageError: as :meth:`DerivedIndex.apply`.
        LogError: an entry of the range is missing.
    """
    for start in range(first, end, chunk):
        entries = log.entries(start, min(end, start + chunk))
        for index in indexes:
            index.apply(tx, start, entries, log, None)


def index_revision(index: DerivedIndex) -> int:
    """The revision of the rules ``index`` derives its rows by (its ``revision``, else 1)."""
    revision = getattr(index, "revision", 1)
    return revision if isinstance(revision, int) and not isinstance(revision, bool) else 1


def stored_revision(catalog: Catalog, name: str) -> int:
    """The revision the stored rows of index ``name`` were derived by (1 when none is recorded)."""
    if "derived_revisions" not in catalog.tables():
        return 1
    row = catalog.query_one("SELECT revision FROM derived_revisions WHERE name = ?", (name,))
    return 1 if row is None else int(row[0])


def record_revision(tx: Catalog, name: str, revision: int) -> None:
    """Record that index ``name``'s rows are derived by ``revision`` (caller's transaction)."""
    tx.execute(
        "INSERT INTO derived_revisions(name, revision) VALUES (?, ?) "
        "ON CONFLICT(name) DO UPDATE SET revision = excluded.revision",
        (name, revision),
    )


def reset_if_stale(catalog: Catalog, index: DerivedIndex) -> bool:
    """Drop and recreate ``index``'s tables when they hold rows of another revision.

    The tables are dropped (a new revision may add columns), recreated from
    ``index.ddl``, and the index recorded as having applied nothing, in one
    transaction; the caller then applies the whole log (catch-up). Tables
    that do not exist yet are left to the caller to create.

    Args:
        catalog: the writer's catalog (outside any transaction), with the
            ``derived_state`` tables created.
        index: the index.

    Returns:
        True when the tables were reset.

    Raises:
        StorageError: the catalog cannot be written (nothing changed).
    """
    revision = index_revision(index)
    present = catalog.tables()
    if not set(index.tables) & present or stored_revision(catalog, index.name) == revision:
        return False
    statements = [s.strip() for s in index.ddl.split(";") if s.strip()]
    with catalog.transaction(f"rebuilding derived index {index.name} of another revision"):
        for table in index.tables:
            if table in present:
                catalog.execute(f"DROP TABLE {table}")  # a table name the index declares
        for statement in statements:
            catalog.execute(statement)
        record_applied(catalog, index.name, 0)
        record_revision(catalog, index.name, revision)
    return True


def _clear(tx: Catalog, index: DerivedIndex) -> None:
    for table in index.tables:
        tx.execute(f"DELETE FROM {table}")  # noqa: S608 - a table name the index declares


def rebuild(catalog: Catalog, index: DerivedIndex, log: LogView, size: int) -> None:
    """Empty ``index``'s tables and apply entries ``0 .. size-1`` again, in one transaction.

    The indexes it requires must be current in ``catalog``.

    Args:
        catalog: the writer's catalog (outside any transaction).
        index: the index to rebuild.
        log: the log and blobs.
        size: the log size to rebuild up to (the committed size).

    Raises:
        DerivedIndexError, StorageError, LogError: the rebuild failed and was
            rolled back; the index keeps its old rows.
    """
    if not index.rebuildable:
        raise DerivedIndexError(f"derived index {index.name} cannot be rebuilt as attached")
    catalog.create_tables(DERIVED_STATE_DDL)
    reset_if_stale(catalog, index)
    catalog.create_tables(index.ddl)
    with catalog.transaction(f"rebuilding derived index {index.name}"):
        _clear(catalog, index)
        apply_range(catalog, [index], log, 0, size)
        record_applied(catalog, index.name, size)
        record_revision(catalog, index.name, index_revision(index))


def _sample_runs(size: int, sample: float, rng: random.Random, run: int = 64) -> list[range]:
    """Random runs of ``run`` consecutive entries covering about ``sample`` of ``0 .. size-1``."""
    runs = -(-size // run)
    chosen = sorted(rng.sample(range(runs), max(1, round(runs * sample)))) if runs else []
    return [range(r * run, min(size, (r + 1) * run)) for r in chosen]


def compare(
    catalog: Catalog,
    index: DerivedIndex,
    requires: Mapping[str, DerivedIndex],
    log: LogView,
    size: int,
    *,
    sample: float = 1.0,
    seed: int | None = None,
    limit: int = 100,
) -> CompareReport:
    """Rebuild ``index`` into a scratch catalog and compare its rows with the stored ones.

    Nothing is written to ``catalog``. A ``per_entry`` index with ``sample < 1``
    is rebuilt and compared over random runs of entries covering about
    ``sample`` of the log; any other index is rebuilt and compared whole.

    Args:
        catalog: the vault's catalog (a reader is enough), inside one snapshot
            ideally, so the log and the index agree.
        index: the index.
        requires: the indexes it requires, by name (rebuilt into the scratch
            catalog first).
        log: the log and blobs.
        size: the log size (entries ``0 .. size-1``).
        sample: fraction of entries to rebuild, in (0, 1].
        seed: the sampling seed (random when None).
        limit: at most this many differences are kept (the rest counted).

    Returns:
        The report: every differing row by key, stored versus rebuilt.

    Raises:
        ValueError: ``sample`` outside (0, 1].
        DerivedIndexError: the rebuild cannot be computed.
    """
    if not 0 < sample <= 1:
        raise ValueError(f"sample must be in (0, 1], got {sample}")
    report = CompareReport(index.name)
    if not set(index.tables) <= catalog.tables():
        report.behind = size
        return report
    done = applied_size(catalog, index.name)
    report.behind = max(0, size - done) if done is not None else 0
    partial = index.per_entry and sample < 1
    report.full = not partial
    scratch = SQLiteCatalog.memory(f"rebuild of {index.name}")
    try:
        needed = order_indexes([*requires.values(), index])
        for each in needed:
            scratch.create_tables(each.ddl)
        with scratch.transaction(f"rebuilding {index.name} for comparison"):
            if partial:
                wanted: set[int] = set()
                for run in _sample_runs(size, sample, random.Random(seed)):
                    apply_range(scratch, [index], log, run.start, run.stop)
                    wanted.update(run)
                report.entries = len(wanted)
                stored = index.rows(catalog, wanted)
                rebuilt = index.rows(scratch, wanted)
            else:
                apply_range(scratch, needed, log, 0, size)
                report.entries = size
                stored = index.rows(catalog)
                rebuilt = index.rows(scratch)
            _diff(index, stored, rebuilt, report, limit)
    finally:
        scratch.close()
    return report


def _diff(
    index: DerivedIndex,
    stored: Iterator[Row],
    rebuilt: Iterator[Row],
    report: CompareReport,
    limit: int,
) -> None:
    """Merge two key-ordered row streams, recording every difference."""
    k = index.key_columns
    a, b = next(stored, None), next(rebuilt, None)

    def note(d: Difference) -> None:
        if len(report.differences) < limit:
            report.differences.append(d)
        else:
            report.more += 1

    while a is not None or b is not None:
        ka = _sort_key(a[:k]) if a is not None else None
        kb = _sort_key(b[:k]) if b is not None else None
        if a is not None and ka is not None and (kb is None or ka < kb):
            note(Difference(index.name, _key_text(a, k), a, None, index.columns))
            a = next(stored, None)
        elif b is not None and kb is not None and (ka is None or kb < ka):
            note(Difference(index.name, _key_text(b, k), None, b, index.columns))
            b = next(rebuilt, None)
            report.rows += 1
        else:
            assert a is not None
            assert b is not None
            if tuple(_norm(v) for v in a) != tuple(_norm(v) for v in b):
                note(Difference(index.name, _key_text(a, k), a, b, index.columns))
            a, b = next(stored, None), next(rebuilt, None)
            report.rows += 1


def _norm(value: object) -> object:
    """A column value as compared: BLOB-ish as bytes, booleans as ints."""
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, bool):
        return int(value)
    return value


def _sort_key(key: Row) -> tuple[tuple[int, object], ...]:
    """A total order over key tuples of mixed SQLite types (NULL < numbers < text < bytes)."""
    out: list[tuple[int, object]] = []
    for v in key:
        if v is None:
            out.append((0, 0))
        elif isinstance(v, int | float):
            out.append((1, v))
        elif isinstance(v, str):
            out.append((2, v))
        else:
            out.append((3, bytes(v) if isinstance(v, bytearray | memoryview) else v))
    return tuple(out)


def _key_text(row: Row, k: int) -> str:
    return " ".join(_value(v) for v in row[:k])
