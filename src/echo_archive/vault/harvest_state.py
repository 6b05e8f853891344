"""Harvest state in the catalog: the item index, observations, validators, breakers, reports.

Everything here is *derived or operational* state; the log stays the record.

* ``items``: for each (source, feed, native id), the log index of its latest
  item/version/tombstone entry, the content digest of its latest version, and
  whether it is tombstoned. Written in the same transaction as the entries it
  describes (:meth:`Vault.append` ``derived``), so it never disagrees with the
  log after a crash. Rebuildable from the log.
* ``observations``: the volatile counters (score, comments, stars) of each
  sighting with its time and the capture it was parsed from. The capture is in
  the log, so every observation can be re-derived and checked.
* ``captures``: for each capture entry, its feed, URL, status, time and parse
  error, to list and show captures without parsing every entry.
* ``http_validators``: the ETag / Last-Modified last received per URL
  (RFC 9110 §8.8), refreshed on 200 and 304, for conditional requests.
* ``breakers``: each host's circuit-breaker state (JSON), so a restart does
  not reset an open breaker.
* ``feed_runs``: when each feed's last cycle started (POSIX seconds) and the
  poll interval its source asked for (GitHub ``X-Poll-Interval``), so a
  harvest only runs the feeds that are due.
* ``harvest_reports``: the JSON report of each harvest cycle.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from echo_archive.vault import catalog

__all__ = [
    "HARVEST_SCHEMA",
    "CaptureRow",
    "HarvestState",
    "ItemRow",
    "ObservationRow",
    "ensure_harvest_schema",
]

_KNOWN_SQL = (
    "SELECT native_id, idx, digest, tombstoned, versions, first_idx, seen_at "
    "FROM items WHERE source = ? AND feed = ? AND native_id IN ("
)
_IN_CHUNK = 500  # native ids per "IN (...)" query, well under SQLite's 32,766 parameters

HARVEST_SCHEMA = """
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
CREATE TABLE IF NOT EXISTS observations(
    source TEXT NOT NULL,
    feed TEXT NOT NULL,
    native_id TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    capture_idx INTEGER NOT NULL,
    counters TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS items_first ON items(first_idx);
CREATE INDEX IF NOT EXISTS observations_item ON observations(source, feed, native_id);
CREATE TABLE IF NOT EXISTS captures(
    idx INTEGER PRIMARY KEY,
    feed TEXT NOT NULL,
    url TEXT NOT NULL,
    status INTEGER NOT NULL,
    fetched_at TEXT NOT NULL,
    error TEXT
);
CREATE TABLE IF NOT EXISTS http_validators(
    url TEXT PRIMARY KEY,
    etag TEXT,
    last_modified TEXT,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS breakers(
    name TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS feed_runs(
    feed TEXT PRIMARY KEY,
    started_epoch REAL NOT NULL,
    poll_interval REAL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS harvest_reports(
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    report TEXT NOT NULL
);
"""


def ensure_harvest_schema(conn: sqlite3.Connection) -> None:
    """Create the harvest tables when missing (an additive migration; idempotent).

    Raises:
        StorageError: the catalog cannot be written.
    """
    with catalog.transaction(conn, "creating the harvest tables"):
        for statement in filter(None, (s.strip() for s in HARVEST_SCHEMA.split(";"))):
            conn.execute(statement)


@dataclass(frozen=True, slots=True)
class ItemRow:
    """An ``items`` row to upsert: the latest entry of an item after a decision."""

    source: str
    feed: str
    native_id: str
    idx: int
    digest: bytes
    tombstoned: bool
    versions: int
    first_idx: int
    seen_at: str = ""


@dataclass(frozen=True, slots=True)
class ObservationRow:
    """An ``observations`` row: counters of one sighting."""

    source: str
    feed: str
    native_id: str
    seen_at: str
    capture_idx: int
    counters: dict[str, int | float]


@dataclass(frozen=True, slots=True)
class CaptureRow:
    """A ``captures`` row: what a capture entry holds, for listing."""

    idx: int
    feed: str
    url: str
    status: int
    fetched_at: str
    error: str | None


class HarvestState:
    """Reads and writes the harvest tables over one catalog connection.

    Args:
        conn: the vault's catalog connection (the writer's, to write).
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    # ------------------------------------------------------------- items
    def known(self, source: str, feed: str, native_id: str) -> ItemRow | None:
        """Return the ``items`` row of an item, or None when it was never archived."""
        return self.known_many([(source, feed, native_id)]).get((source, feed, native_id))

    def known_many(
        self, keys: Iterable[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], ItemRow]:
        """Return the ``items`` rows of many items at once (a few queries, not one per item).

        Args:
            keys: ``(source, feed, native_id)`` triples (repeats allowed).

        Returns:
            The rows found, by key; a key never archived is absent.
        """
        wanted: dict[tuple[str, str], set[str]] = {}
        for source, feed, native_id in keys:
            wanted.setdefault((source, feed), set()).add(native_id)
        found: dict[tuple[str, str, str], ItemRow] = {}
        for (source, feed), ids in wanted.items():
            pending = sorted(ids)
            for start in range(0, len(pending), _IN_CHUNK):
                chunk = pending[start : start + _IN_CHUNK]
                sql = _KNOWN_SQL + ",".join("?" * len(chunk)) + ")"  # only "?" marks
                rows = self._conn.execute(sql, (source, feed, *chunk))
                for row in rows:
                    key = (source, feed, str(row[0]))
                    found[key] = ItemRow(
                        *key,
                        idx=int(row[1]),
                        digest=catalog.as_bytes(row[2]),
                        tombstoned=bool(row[3]),
                        versions=int(row[4]),
                        first_idx=int(row[5]),
                        seen_at=str(row[6]),
                    )
        return found

    @staticmethod
    def write(
        conn: sqlite3.Connection,
        items: Iterable[ItemRow],
        observations: Iterable[ObservationRow],
        captures: Iterable[CaptureRow],
    ) -> None:
        """Upsert item rows and insert observation and capture rows (caller's transaction)."""
        conn.executemany(
            "INSERT OR REPLACE INTO items(source, feed, native_id, idx, first_idx, digest, "
            "tombstoned, versions, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    r.source,
                    r.feed,
                    r.native_id,
                    r.idx,
                    r.first_idx,
                    r.digest,
                    int(r.tombstoned),
                    r.versions,
                    r.seen_at,
                )
                for r in items
            ],
        )
        conn.executemany(
            "INSERT INTO observations(source, feed, native_id, seen_at, capture_idx, counters) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    o.source,
                    o.feed,
                    o.native_id,
                    o.seen_at,
                    o.capture_idx,
                    json.dumps(o.counters, sort_keys=True),
                )
                for o in observations
            ],
        )
        conn.executemany(
            "INSERT INTO captures(idx, feed, url, status, fetched_at, error) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(c.idx, c.feed, c.url, c.status, c.fetched_at, c.error) for c in captures],
        )

    def items(
        self,
        *,
        source: str | None = None,
        feed: str | None = None,
        since_idx: int = 0,
        since: str = "",
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """List items (latest state), newest first.

        Args:
            source: only this source kind.
            feed: only this feed.
            since_idx: only items whose latest entry index is at least this.
            since: only items whose latest version or tombstone was seen at or
                after this RFC 3339 time (string comparison of UTC times).
            limit: at most this many rows.
        """
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
        keys = (
            "source",
            "feed",
            "native_id",
            "idx",
            "first_idx",
            "tombstoned",
            "versions",
            "seen_at",
        )
        return [dict(zip(keys, row, strict=True)) for row in self._conn.execute(sql, args)]

    def item_page(
        self,
        *,
        source: str | None = None,
        feed: str | None = None,
        tombstoned: bool | None = None,
        since: str | None = None,
        until: str | None = None,
        after: int | None = None,
        newest_first: bool = True,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """One keyset page of items, ordered by ``first_idx`` (the item's first entry).

        ``first_idx`` never changes once an item is archived (a version or a
        tombstone moves ``idx``, not it), so walking the pages while entries
        are appended yields every item exactly once.

        Args:
            source: only this source kind.
            feed: only this feed.
            tombstoned: only tombstoned (True) or live (False) items; None: both.
            since: only items whose ``seen_at`` is at or after this canonical
                UTC time (``YYYY-MM-DDTHH:MM:SS.ffffffZ``, the stored form).
            until: only items whose ``seen_at`` is before this canonical UTC time.
            after: the ``first_idx`` of the last item of the previous page.
            newest_first: descending ``first_idx`` (else ascending).
            limit: at most this many rows.

        Returns:
            Rows with keys ``source, feed, native_id, idx, first_idx, tombstoned,
            versions, seen_at``.
        """
        where, args = self._item_filters(source, feed, tombstoned, since, until)
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
        keys = (
            "source",
            "feed",
            "native_id",
            "idx",
            "first_idx",
            "tombstoned",
            "versions",
            "seen_at",
        )
        rows = [dict(zip(keys, row, strict=True)) for row in self._conn.execute(sql, args)]
        for row in rows:
            row["tombstoned"] = bool(row["tombstoned"])
        return rows

    def count_items(
        self,
        *,
        source: str | None = None,
        feed: str | None = None,
        tombstoned: bool | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> int:
        """How many items match the filters of :meth:`item_page` (a count over the index)."""
        where, args = self._item_filters(source, feed, tombstoned, since, until)
        sql = "SELECT count(*) FROM items" + (  # noqa: S608 - fixed clauses with "?" marks
            " WHERE " + " AND ".join(where) if where else ""
        )
        return int(self._conn.execute(sql, args).fetchone()[0])

    @staticmethod
    def _item_filters(
        source: str | None,
        feed: str | None,
        tombstoned: bool | None,
        since: str | None,
        until: str | None,
    ) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        args: list[Any] = []
        for clause, value in (
            ("source = ?", source),
            ("feed = ?", feed),
            ("tombstoned = ?", None if tombstoned is None else int(tombstoned)),
            ("seen_at >= ?", since),
            ("seen_at < ?", until),
        ):
            if value is not None:
                where.append(clause)
                args.append(value)
        return where, args

    def observations(self, source: str, feed: str, native_id: str) -> list[dict[str, Any]]:
        """Return an item's observations, oldest first (seen_at, capture_idx, counters)."""
        rows = self._conn.execute(
            "SELECT seen_at, capture_idx, counters FROM observations "
            "WHERE source = ? AND feed = ? AND native_id = ? ORDER BY rowid",
            (source, feed, native_id),
        )
        return [{"seen_at": r[0], "capture_idx": r[1], "counters": json.loads(r[2])} for r in rows]

    def capture_rows(self, indexes: Iterable[int]) -> list[dict[str, Any]]:
        """Return the ``captures`` rows of these capture entry indexes, ascending."""
        wanted = sorted(set(indexes))
        rows: list[dict[str, Any]] = []
        keys = ("index", "feed", "url", "status", "fetched_at", "error")
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            cur = self._conn.execute(
                "SELECT idx, feed, url, status, fetched_at, error FROM captures "  # noqa: S608 - only placeholders are formatted in
                f"WHERE idx IN ({marks}) ORDER BY idx",
                chunk,
            )
            rows.extend(dict(zip(keys, r, strict=True)) for r in cur)
        return rows

    def captures_before(self, feed: str, before: int, limit: int = 64) -> list[int]:
        """Indexes of the feed's capture entries below ``before``, nearest first, at most ``limit``.

        An item entry follows the capture it was parsed from in the same
        commit, so its capture is among the first of these; the caller
        confirms which by its leaf hash (the item names it).
        """
        rows = self._conn.execute(
            "SELECT idx FROM captures WHERE feed = ? AND idx < ? ORDER BY idx DESC LIMIT ?",
            (feed, before, limit),
        )
        return [int(r[0]) for r in rows]

    # ------------------------------------------------------------- validators
    def validators(self, url: str) -> tuple[str | None, str | None] | None:
        """Return ``(etag, last_modified)`` last stored for ``url``, or None."""
        row = self._conn.execute(
            "SELECT etag, last_modified FROM http_validators WHERE url = ?", (url,)
        ).fetchone()
        return None if row is None else (row[0], row[1])

    def put_validators(
        self, url: str, etag: str | None, last_modified: str | None, now: str
    ) -> None:
        """Store the validators of ``url`` (its own small transaction)."""
        with catalog.transaction(self._conn, f"storing validators of {url}"):
            self._conn.execute(
                "INSERT OR REPLACE INTO http_validators(url, etag, last_modified, updated_at) "
                "VALUES (?, ?, ?, ?)",
                (url, etag, last_modified, now),
            )

    # ------------------------------------------------------------- breakers
    def breaker(self, name: str) -> dict[str, Any] | None:
        """Return the stored state of breaker ``name``, or None."""
        row = self._conn.execute("SELECT state FROM breakers WHERE name = ?", (name,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def put_breaker(self, name: str, state: dict[str, Any], now: str) -> None:
        """Store breaker ``name``'s state (its own small transaction)."""
        with catalog.transaction(self._conn, f"storing breaker {name}"):
            self._conn.execute(
                "INSERT OR REPLACE INTO breakers(name, state, updated_at) VALUES (?, ?, ?)",
                (name, json.dumps(state, sort_keys=True), now),
            )

    def breakers(self) -> dict[str, dict[str, Any]]:
        """Return every stored breaker state by name."""
        rows = self._conn.execute("SELECT name, state FROM breakers ORDER BY name")
        return {r[0]: dict(json.loads(r[1])) for r in rows}

    def delete_breaker(self, name: str) -> bool:
        """Forget breaker ``name`` (it starts CLOSED next time). Returns whether it existed."""
        with catalog.transaction(self._conn, f"resetting breaker {name}"):
            cur = self._conn.execute("DELETE FROM breakers WHERE name = ?", (name,))
        return cur.rowcount > 0

    # ------------------------------------------------------------- feed runs
    def feed_runs(self) -> dict[str, tuple[float, float | None]]:
        """Return ``{feed: (last start, POSIX seconds; poll interval asked, seconds or None)}``."""
        rows = self._conn.execute("SELECT feed, started_epoch, poll_interval FROM feed_runs")
        return {r[0]: (float(r[1]), None if r[2] is None else float(r[2])) for r in rows}

    def put_feed_run(self, feed: str, started_epoch: float, poll_interval: float | None) -> None:
        """Record that ``feed``'s cycle started at ``started_epoch`` (its own transaction)."""
        with catalog.transaction(self._conn, f"recording the run of feed {feed}"):
            self._conn.execute(
                "INSERT OR REPLACE INTO feed_runs(feed, started_epoch, poll_interval) "
                "VALUES (?, ?, ?)",
                (feed, started_epoch, poll_interval),
            )

    # ------------------------------------------------------------- reports
    def reports(self, *, before: int | None = None, limit: int = 100) -> list[tuple[int, str]]:
        """Saved harvest reports, newest first: ``(id, started_at)`` with ``id < before``."""
        rows = self._conn.execute(
            "SELECT id, started_at FROM harvest_reports WHERE id < ? ORDER BY id DESC LIMIT ?",
            (before if before is not None else 2**63 - 1, limit),
        )
        return [(int(r[0]), str(r[1])) for r in rows]

    def report(self, report_id: int) -> dict[str, Any] | None:
        """The saved harvest report ``report_id`` (its JSON), or None."""
        row = self._conn.execute(
            "SELECT report FROM harvest_reports WHERE id = ?", (report_id,)
        ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def save_report(self, started_at: str, report: dict[str, Any]) -> int:
        """Store a harvest report (JSON); returns its id."""
        with catalog.transaction(self._conn, "storing the harvest report"):
            cur = self._conn.execute(
                "INSERT INTO harvest_reports(started_at, report) VALUES (?, ?)",
                (started_at, json.dumps(report, sort_keys=True)),
            )
        return int(cur.lastrowid or 0)

    def last_report(self) -> dict[str, Any] | None:
        """Return the latest harvest report, or None."""
        row = self._conn.execute(
            "SELECT report FROM harvest_reports ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return None if row is None else dict(json.loads(row[0]))
