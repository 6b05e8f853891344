"""Operational harvest state in the catalog: validators, breakers, feed runs, reports.

Operational, not derived (DESIGN.md invariant 8): this is what a harvester
remembers between runs to be polite and efficient. None of it is evidence,
none of it can be rebuilt from the log, and losing it loses nothing archived
(the next harvest refetches unconditionally, starts breakers closed, runs
every feed).

* ``http_validators``: the ETag / Last-Modified last received per URL
  (RFC 9110 §8.8), refreshed on 200 and 304, for conditional requests.
* ``breakers``: each host's circuit-breaker state (JSON), so a restart does
  not reset an open breaker.
* ``feed_runs``: when each feed's last cycle started (POSIX seconds) and the
  poll interval its source asked for (GitHub ``X-Poll-Interval``), so a
  harvest only runs the feeds that are due.
* ``harvest_reports``: the JSON report of each harvest cycle.
* ``host_pauses``: until when each host is paused because it answered
  ``Retry-After`` (RFC 9110 §10.2.3), at most the engine's cap
  (``FetchConfig.retry_after_cap``, 300 s) from that answer, so the next run
  stays polite too.
* ``feed_windows``: the window of the last feed document each feed's
  harvest parsed (its URL and its entries' ids, links and publication
  times, in document order), so the next harvest can tell an entry
  withdrawn from the document from one that rolled off its end
  (:mod:`echo_archive.pipeline.withdrawals`). Losing it loses no evidence:
  the next harvest only starts a new window.

The tables are created by the first writer that uses them (an additive
change: vaults written before keep theirs); a reader of a vault that has
none sees no state.
"""

from __future__ import annotations

import json
from typing import Any

from echo_archive.vault.catalog import Catalog

__all__ = ["HARVEST_STATE_DDL", "HarvestState"]

HARVEST_STATE_DDL = """
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
CREATE TABLE IF NOT EXISTS host_pauses(
    host TEXT PRIMARY KEY,
    until_epoch REAL NOT NULL,
    reason TEXT NOT NULL,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS feed_windows(
    feed TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    entries TEXT NOT NULL,
    updated_at TEXT NOT NULL
) WITHOUT ROWID
"""

_TABLES = frozenset({"http_validators", "breakers", "feed_runs", "harvest_reports"})
_PAUSES = "host_pauses"  # added later: a vault may have the other tables without it
_WINDOWS = "feed_windows"  # added later still


class HarvestState:
    """Reads and writes the operational harvest tables of one catalog.

    Args:
        catalog: the vault's catalog (:attr:`Vault.catalog
            <echo_archive.vault.vault.Vault.catalog>`; the writer's, to write).

    Raises:
        StorageError: a writer's catalog cannot create the tables.
    """

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        present = catalog.tables()
        if not catalog.readonly and not present >= _TABLES | {_PAUSES, _WINDOWS}:
            catalog.create_tables(HARVEST_STATE_DDL)
            present = catalog.tables()
        self._present = present >= _TABLES
        self._pauses = _PAUSES in present
        self._windows = _WINDOWS in present

    # ------------------------------------------------------------- validators
    def validators(self, url: str) -> tuple[str | None, str | None] | None:
        """Return ``(etag, last_modified)`` last stored for ``url``, or None."""
        if not self._present:
            return None
        row = self._catalog.query_one(
            "SELECT etag, last_modified FROM http_validators WHERE url = ?", (url,)
        )
        return None if row is None else (row[0], row[1])

    def put_validators(
        self, url: str, etag: str | None, last_modified: str | None, now: str
    ) -> None:
        """Store the validators of ``url`` (its own small transaction)."""
        with self._catalog.transaction(f"storing validators of {url}"):
            self._catalog.execute(
                "INSERT INTO http_validators(url, etag, last_modified, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT(url) DO UPDATE SET etag = excluded.etag, "
                "last_modified = excluded.last_modified, updated_at = excluded.updated_at",
                (url, etag, last_modified, now),
            )

    # ------------------------------------------------------------- breakers
    def breaker(self, name: str) -> dict[str, Any] | None:
        """Return the stored state of breaker ``name``, or None."""
        if not self._present:
            return None
        row = self._catalog.query_one("SELECT state FROM breakers WHERE name = ?", (name,))
        return None if row is None else dict(json.loads(row[0]))

    def put_breaker(self, name: str, state: dict[str, Any], now: str) -> None:
        """Store breaker ``name``'s state (its own small transaction)."""
        with self._catalog.transaction(f"storing breaker {name}"):
            self._catalog.execute(
                "INSERT INTO breakers(name, state, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET state = excluded.state, "
                "updated_at = excluded.updated_at",
                (name, json.dumps(state, sort_keys=True), now),
            )

    def breakers(self) -> dict[str, dict[str, Any]]:
        """Return every stored breaker state by name."""
        if not self._present:
            return {}
        rows = self._catalog.query("SELECT name, state FROM breakers ORDER BY name")
        return {r[0]: dict(json.loads(r[1])) for r in rows}

    def delete_breaker(self, name: str) -> bool:
        """Forget breaker ``name`` (it starts CLOSED next time). Returns whether it existed."""
        with self._catalog.transaction(f"resetting breaker {name}"):
            changed = self._catalog.execute("DELETE FROM breakers WHERE name = ?", (name,))
        return changed > 0

    # ------------------------------------------------------------- host pauses
    def pause(self, host: str) -> float | None:
        """Return the end (POSIX seconds) of ``host``'s saved pause, or None."""
        if not self._pauses:
            return None
        row = self._catalog.query_one("SELECT until_epoch FROM host_pauses WHERE host = ?", (host,))
        return None if row is None else float(row[0])

    def put_pause(self, host: str, until_epoch: float, reason: str, now: str) -> None:
        """Save that ``host`` is paused until ``until_epoch`` (its own small transaction).

        A pause only extends: an earlier end than the saved one is ignored.
        """
        with self._catalog.transaction(f"storing the pause of host {host}"):
            self._catalog.execute(
                "INSERT INTO host_pauses(host, until_epoch, reason, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT(host) DO UPDATE SET "
                "until_epoch = max(until_epoch, excluded.until_epoch), "
                "reason = excluded.reason, updated_at = excluded.updated_at",
                (host, until_epoch, reason, now),
            )

    def pauses(self) -> dict[str, tuple[float, str]]:
        """Return every saved host pause: ``{host: (end, POSIX seconds; reason)}``."""
        if not self._pauses:
            return {}
        rows = self._catalog.query("SELECT host, until_epoch, reason FROM host_pauses")
        return {r[0]: (float(r[1]), str(r[2])) for r in rows}

    # ------------------------------------------------------------- feed windows
    def window(self, feed: str, url: str) -> list[list[str | None]] | None:
        """The stored window of ``feed``'s last parsed document at ``url``, or None.

        Returns:
            ``[[native_id, link, published_at], ...]`` in document order, as
            :meth:`put_window` stored it; None when none is stored, or it was
            of another URL (the feed's URL changed: no comparison).
        """
        if not self._windows:
            return None
        row = self._catalog.query_one(
            "SELECT url, entries FROM feed_windows WHERE feed = ?", (feed,)
        )
        if row is None or row[0] != url:
            return None
        value = json.loads(row[1])
        return value if isinstance(value, list) else None

    def put_window(self, feed: str, url: str, entries: list[list[str | None]], now: str) -> None:
        """Store the window of ``feed``'s document at ``url`` (its own small transaction)."""
        with self._catalog.transaction(f"storing the window of feed {feed}"):
            self._catalog.execute(
                "INSERT INTO feed_windows(feed, url, entries, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(feed) DO UPDATE SET url = excluded.url, "
                "entries = excluded.entries, updated_at = excluded.updated_at",
                (feed, url, json.dumps(entries, separators=(",", ":")), now),
            )

    # ------------------------------------------------------------- feed runs
    def feed_runs(self) -> dict[str, tuple[float, float | None]]:
        """Return ``{feed: (last start, POSIX seconds; poll interval asked, seconds or None)}``."""
        if not self._present:
            return {}
        rows = self._catalog.query("SELECT feed, started_epoch, poll_interval FROM feed_runs")
        return {r[0]: (float(r[1]), None if r[2] is None else float(r[2])) for r in rows}

    def put_feed_run(self, feed: str, started_epoch: float, poll_interval: float | None) -> None:
        """Record that ``feed``'s cycle started at ``started_epoch`` (its own transaction)."""
        with self._catalog.transaction(f"recording the run of feed {feed}"):
            self._catalog.execute(
                "INSERT INTO feed_runs(feed, started_epoch, poll_interval) VALUES (?, ?, ?) "
                "ON CONFLICT(feed) DO UPDATE SET started_epoch = excluded.started_epoch, "
                "poll_interval = excluded.poll_interval",
                (feed, started_epoch, poll_interval),
            )

    # ------------------------------------------------------------- reports
    def reports(self, *, before: int | None = None, limit: int = 100) -> list[tuple[int, str]]:
        """Saved harvest reports, newest first: ``(id, started_at)`` with ``id < before``."""
        if not self._present:
            return []
        rows = self._catalog.query(
            "SELECT id, started_at FROM harvest_reports WHERE id < ? ORDER BY id DESC LIMIT ?",
            (before if before is not None else 2**63 - 1, limit),
        )
        return [(int(r[0]), str(r[1])) for r in rows]

    def report(self, report_id: int) -> dict[str, Any] | None:
        """The saved harvest report ``report_id`` (its JSON), or None."""
        if not self._present:
            return None
        row = self._catalog.query_one(
            "SELECT report FROM harvest_reports WHERE id = ?", (report_id,)
        )
        return None if row is None else dict(json.loads(row[0]))

    def save_report(self, started_at: str, report: dict[str, Any]) -> int:
        """Store a harvest report (JSON); returns its id."""
        with self._catalog.transaction("storing the harvest report"):
            row = self._catalog.query_one(
                "INSERT INTO harvest_reports(started_at, report) VALUES (?, ?) RETURNING id",
                (started_at, json.dumps(report, sort_keys=True)),
            )
        return int(row[0]) if row else 0

    def last_report(self) -> dict[str, Any] | None:
        """Return the latest harvest report, or None."""
        if not self._present:
            return None
        row = self._catalog.query_one("SELECT report FROM harvest_reports ORDER BY id DESC LIMIT 1")
        return None if row is None else dict(json.loads(row[0]))
