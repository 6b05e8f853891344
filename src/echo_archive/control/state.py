"""Operational health state in the catalog: the incremental verify's progress, size samples.

Operational, not derived (DESIGN.md invariant 8): what the health checks
remember between runs. None of it is evidence and none of it can be rebuilt
from the log; losing it loses nothing archived (the next incremental verify
starts again from entry 0 and blob 0, the disk projection waits for new
samples).

* ``health_state(name, value, updated_at)``: one JSON document per name.
  ``verify`` holds the incremental verify's progress
  (:class:`VerifyProgress`: the entries verified, the root recomputed at that
  size, the rotating blob cursor of the current pass over the blob store and
  when that pass began, the last complete pass). ``orphans`` holds when each
  orphan blob was first seen (for ``prune_orphans``'s grace period).
* ``health_samples(at, vault_bytes, free_bytes)``: the vault's size on disk
  and the filesystem's free bytes at POSIX time ``at`` (seconds), one sample
  per ``[health] size_sample_interval`` at most, kept for twice the growth
  window; ``disk_free`` projects the days until full from them.

The tables are created by the first writer that saves state (an additive
change: a vault without them reads as "no state yet").
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from echo_archive.vault.catalog import Catalog
from echo_archive.vault.entry import format_timestamp

__all__ = ["HEALTH_STATE_DDL", "HealthState", "VerifyProgress"]

HEALTH_STATE_DDL = """
CREATE TABLE IF NOT EXISTS health_state(
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS health_samples(
    at REAL PRIMARY KEY,
    vault_bytes INTEGER NOT NULL,
    free_bytes INTEGER NOT NULL
)
"""

_TABLES = frozenset({"health_state", "health_samples"})


@dataclass(frozen=True)
class VerifyProgress:
    """How far the incremental verify got (the ``verify`` row of ``health_state``).

    Attributes:
        entries: entries ``0 .. entries-1`` were verified (each once, when new).
        root: hex root hash of the tree of ``entries`` entries, recomputed from
            the entries (the next run checks the stored tree still gives it).
        blob_cursor: hex digest of the last blob re-hashed in the current pass
            over the blob store (ascending digest order), or "" at its start.
        pass_started: POSIX seconds the current pass began (0: never).
        pass_blobs: blobs re-hashed in the current pass.
        last_pass: POSIX seconds the last complete pass ended (0: none yet).
        last_run: POSIX seconds of the last incremental verify (0: none).
    """

    entries: int = 0
    root: str = ""
    blob_cursor: str = ""
    pass_started: float = 0.0
    pass_blobs: int = 0
    last_pass: float = 0.0
    last_run: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping of the attributes."""
        return asdict(self)

    @classmethod
    def from_json(cls, doc: object) -> VerifyProgress:
        """Read :meth:`to_json` output; anything malformed reads as no progress."""
        if not isinstance(doc, dict):
            return cls()
        try:
            return cls(
                entries=int(doc.get("entries", 0)),
                root=str(doc.get("root", "")),
                blob_cursor=str(doc.get("blob_cursor", "")),
                pass_started=float(doc.get("pass_started", 0.0)),
                pass_blobs=int(doc.get("pass_blobs", 0)),
                last_pass=float(doc.get("last_pass", 0.0)),
                last_run=float(doc.get("last_run", 0.0)),
            )
        except (TypeError, ValueError):
            return cls()


class HealthState:
    """Reads and writes the operational health tables of one catalog.

    Args:
        catalog: the vault's catalog (a reader's to read; the writer's, inside
            the writer lock, to write).

    Raises:
        StorageError: a writer's catalog cannot create the tables.
    """

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        present = catalog.tables()
        if not catalog.readonly and not present >= _TABLES:
            catalog.create_tables(HEALTH_STATE_DDL)
            present = catalog.tables()
        self._present = present >= _TABLES

    def get(self, name: str) -> Any:
        """The JSON value stored under ``name``, or None."""
        if not self._present:
            return None
        row = self._catalog.query_one("SELECT value FROM health_state WHERE name = ?", (name,))
        return None if row is None else json.loads(row[0])

    def put(self, name: str, value: Any, now: float) -> None:
        """Store ``value`` (JSON-ready) under ``name`` (its own small transaction)."""
        with self._catalog.transaction(f"storing health state {name}"):
            self._catalog.execute(
                "INSERT INTO health_state(name, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at",
                (name, json.dumps(value, sort_keys=True), format_timestamp(int(now * 1e9))),
            )

    def progress(self) -> VerifyProgress:
        """The incremental verify's progress (none yet: all zero)."""
        return VerifyProgress.from_json(self.get("verify"))

    def samples(self, since: float) -> list[tuple[float, int, int]]:
        """Size samples ``(at, vault_bytes, free_bytes)`` taken since ``since``, oldest first."""
        if not self._present:
            return []
        rows = self._catalog.query(
            "SELECT at, vault_bytes, free_bytes FROM health_samples WHERE at >= ? ORDER BY at",
            (since,),
        )
        return [(float(r[0]), int(r[1]), int(r[2])) for r in rows]

    def last_sample(self) -> tuple[float, int, int] | None:
        """The newest size sample, or None."""
        if not self._present:
            return None
        row = self._catalog.query_one(
            "SELECT at, vault_bytes, free_bytes FROM health_samples ORDER BY at DESC LIMIT 1"
        )
        return None if row is None else (float(row[0]), int(row[1]), int(row[2]))

    def add_sample(self, at: float, vault_bytes: int, free_bytes: int, keep_since: float) -> None:
        """Record a size sample and drop those older than ``keep_since`` (one transaction)."""
        with self._catalog.transaction("storing a vault size sample"):
            self._catalog.execute(
                "INSERT INTO health_samples(at, vault_bytes, free_bytes) VALUES (?, ?, ?) "
                "ON CONFLICT(at) DO UPDATE SET vault_bytes = excluded.vault_bytes, "
                "free_bytes = excluded.free_bytes",
                (at, vault_bytes, free_bytes),
            )
            self._catalog.execute("DELETE FROM health_samples WHERE at < ?", (keep_since,))
