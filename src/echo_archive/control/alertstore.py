"""Operational alert state in the catalog: alerts, groups and their notifications, silences.

Operational, not derived (DESIGN.md invariant 8): what the alert engine
remembers between runs so that a restart neither notifies again nor forgets
what fires. None of it is evidence, none of it can be rebuilt from the log;
losing it loses nothing archived (the next cycle finds the firing alerts
again and notifies them once more).

* ``alert_instances``: each alert pending or firing (and resolved ones not
  yet notified), by fingerprint, as JSON
  (:meth:`Alert.to_json <echo_archive.control.alerts.Alert.to_json>`).
* ``alert_groups``: each aggregation group with its notification log (when
  it was last notified, which alerts that notification carried, when it is
  next looked at), by group key, as JSON.
* ``alert_silences``: every silence (``echoctl silence add``), its matchers
  as JSON (Alertmanager's API shape), start and end (POSIX seconds), author
  and comment. Expired silences are kept 5 days (Alertmanager's default
  retention), then deleted by the next ``silence add``.

The tables are created by the first writer that uses them (vaults written
before get them then); a reader of a vault that has none sees no state.
Writes go through the vault's writer (:class:`VaultAlertStore` given a
:class:`~echo_archive.vault.writer.VaultWriter` submits each as a job).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from echo_archive.control.alerts import Alert, AlertState, GroupState
from echo_archive.control.matchers import Matcher
from echo_archive.control.silences import Silence
from echo_archive.errors import NotFoundError
from echo_archive.vault.catalog import Catalog
from echo_archive.vault.vault import Vault
from echo_archive.vault.writer import VaultWriter

__all__ = [
    "ALERT_STATE_DDL",
    "SILENCE_RETENTION",
    "AlertTables",
    "MemoryAlertStore",
    "VaultAlertStore",
    "add_silence",
    "alert_status",
    "expire_silence",
    "list_silences",
]

T = TypeVar("T")

SILENCE_RETENTION = 5 * 86400.0
"""Seconds an expired silence is kept (Alertmanager's ``--data.retention``, 120 h)."""

ALERT_STATE_DDL = """
CREATE TABLE IF NOT EXISTS alert_instances(
    fingerprint TEXT PRIMARY KEY,
    alert TEXT NOT NULL,
    updated_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alert_groups(
    group_key TEXT PRIMARY KEY,
    grp TEXT NOT NULL,
    updated_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alert_silences(
    id TEXT PRIMARY KEY,
    matchers TEXT NOT NULL,
    starts_at REAL NOT NULL,
    ends_at REAL NOT NULL,
    created_by TEXT NOT NULL,
    comment TEXT NOT NULL,
    updated_at REAL NOT NULL
) WITHOUT ROWID
"""

_TABLES = frozenset({"alert_instances", "alert_groups", "alert_silences"})


class AlertTables:
    """Reads and writes the operational alert tables of one catalog.

    Args:
        catalog: the vault's catalog (the writer's, to write).

    Raises:
        StorageError: a writer's catalog cannot create the tables.
    """

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        present = catalog.tables()
        if not catalog.readonly and not present >= _TABLES:
            catalog.create_tables(ALERT_STATE_DDL)
            present = catalog.tables()
        self._present = present >= _TABLES

    # ------------------------------------------------------------- alert state
    def load_state(self) -> AlertState:
        """The saved alerts and groups (rows that do not parse are skipped)."""
        if not self._present:
            return AlertState()
        alerts: dict[str, Alert] = {}
        for (raw,) in self._catalog.query("SELECT alert FROM alert_instances"):
            try:
                alert = Alert.from_json(json.loads(raw))
            except (KeyError, TypeError, ValueError):
                continue  # operational: a row a newer build wrote is forgotten, not fatal
            alerts[alert.fingerprint] = alert
        groups: dict[str, GroupState] = {}
        for (raw,) in self._catalog.query("SELECT grp FROM alert_groups"):
            try:
                group = GroupState.from_json(json.loads(raw))
            except (KeyError, TypeError, ValueError):
                continue
            groups[group.key] = group
        return AlertState(alerts, groups)

    def save_state(self, state: AlertState, now: float) -> None:
        """Replace the saved alerts and groups with ``state`` (one transaction)."""
        with self._catalog.transaction("saving the alert state"):
            self._catalog.execute("DELETE FROM alert_instances")
            self._catalog.executemany(
                "INSERT INTO alert_instances(fingerprint, alert, updated_at) VALUES (?, ?, ?)",
                [
                    (fp, json.dumps(a.to_json(), sort_keys=True), now)
                    for fp, a in sorted(state.alerts.items())
                ],
            )
            self._catalog.execute("DELETE FROM alert_groups")
            self._catalog.executemany(
                "INSERT INTO alert_groups(group_key, grp, updated_at) VALUES (?, ?, ?)",
                [
                    (key, json.dumps(g.to_json(), sort_keys=True), now)
                    for key, g in sorted(state.groups.items())
                ],
            )

    # ------------------------------------------------------------- silences
    def silences(self) -> list[Silence]:
        """Every stored silence, by start time then id."""
        if not self._present:
            return []
        rows = self._catalog.query(
            "SELECT id, matchers, starts_at, ends_at, created_by, comment, updated_at "
            "FROM alert_silences ORDER BY starts_at, id"
        )
        found = []
        for row in rows:
            matchers = tuple(Matcher.from_json(m) for m in json.loads(row[1]))
            found.append(
                Silence(
                    id=str(row[0]),
                    matchers=matchers,
                    starts_at=float(row[2]),
                    ends_at=float(row[3]),
                    created_by=str(row[4]),
                    comment=str(row[5]),
                    updated_at=float(row[6]),
                )
            )
        return found

    def add_silence(self, silence: Silence) -> None:
        """Store ``silence``; delete silences expired more than :data:`SILENCE_RETENTION` ago."""
        with self._catalog.transaction(f"storing silence {silence.id}"):
            self._catalog.execute(
                "DELETE FROM alert_silences WHERE ends_at < ?",
                (silence.updated_at - SILENCE_RETENTION,),
            )
            self._catalog.execute(
                "INSERT INTO alert_silences(id, matchers, starts_at, ends_at, created_by, "
                "comment, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    silence.id,
                    json.dumps([m.to_json() for m in silence.matchers], sort_keys=True),
                    silence.starts_at,
                    silence.ends_at,
                    silence.created_by,
                    silence.comment,
                    silence.updated_at,
                ),
            )

    def expire_silence(self, silence_id: str, now: float) -> Silence:
        """End silence ``silence_id`` at ``now`` (one already ended stays as it was).

        Returns:
            The silence as it is now.

        Raises:
            NotFoundError: no silence has that id.
        """
        with self._catalog.transaction(f"expiring silence {silence_id}"):
            self._catalog.execute(
                "UPDATE alert_silences SET ends_at = ?, updated_at = ? "
                "WHERE id = ? AND ends_at > ?",
                (now, now, silence_id, now),
            )
            self._catalog.execute(  # a pending silence expired never starts
                "UPDATE alert_silences SET starts_at = min(starts_at, ends_at) WHERE id = ?",
                (silence_id,),
            )
        for silence in self.silences():
            if silence.id == silence_id:
                return silence
        raise NotFoundError(f"no silence with id {silence_id!r} (see `echoctl silence list --all`)")


class MemoryAlertStore:
    """An :class:`~echo_archive.control.alerts.AlertStore` in memory (tests, no vault)."""

    def __init__(self) -> None:
        self.state = AlertState()
        self.stored: list[Silence] = []
        self.saves = 0
        """How many times :meth:`save_state` was called."""

    def load_state(self) -> AlertState:
        """The state last saved."""
        return self.state

    def save_state(self, state: AlertState) -> None:
        """Keep ``state``."""
        self.state = state
        self.saves += 1

    def silences(self) -> list[Silence]:
        """The silences added."""
        return list(self.stored)

    def add_silence(self, silence: Silence) -> None:
        """Add ``silence``."""
        self.stored.append(silence)


class VaultAlertStore:
    """The alert store of a vault: its operational tables, written through its writer.

    Args:
        target: the vault's :class:`~echo_archive.vault.writer.VaultWriter`
            (each read and write is a job on its thread, in order with the
            other writes) or a writer :class:`~echo_archive.vault.vault.Vault`
            (used directly under its lock).
        clock: POSIX seconds for the rows' ``updated_at``.

    Raises:
        StorageError, VaultLockedError: from the writer, on each call.
    """

    def __init__(self, target: Vault | VaultWriter, clock: Callable[[], float]) -> None:
        self._target = target
        self._clock = clock

    def _run(self, fn: Callable[[AlertTables], T]) -> T:
        def job(vault: Vault) -> T:
            with vault.writing():
                return fn(AlertTables(vault.catalog))

        if isinstance(self._target, VaultWriter):
            return self._target.submit(job).result()
        return job(self._target)

    def load_state(self) -> AlertState:
        """The saved alert state."""
        return self._run(lambda t: t.load_state())

    def save_state(self, state: AlertState) -> None:
        """Replace the saved alert state (one writer job, one transaction)."""
        now = self._clock()
        self._run(lambda t: t.save_state(state, now))

    def silences(self) -> list[Silence]:
        """Every stored silence."""
        return self._run(lambda t: t.silences())

    def add_silence(self, silence: Silence) -> None:
        """Store ``silence``."""
        self._run(lambda t: t.add_silence(silence))

    def expire_silence(self, silence_id: str) -> Silence:
        """End silence ``silence_id`` now; see :meth:`AlertTables.expire_silence`."""
        now = self._clock()
        return self._run(lambda t: t.expire_silence(silence_id, now))


# ---------------------------------------------------------------------------- the shells' calls


def alert_status(vault: Vault, now: float) -> list[Alert]:
    """The saved alerts pending and firing, each marked with the silences muting it at ``now``.

    What ``echoctl alerts list`` shows (a running service's last evaluation,
    or the last one before it stopped). Reads only: works on a read-only vault.

    Returns:
        The alerts by state (firing first), then rule and fingerprint.
    """
    tables = AlertTables(vault.catalog)
    silences = tables.silences()
    alerts = []
    for alert in tables.load_state().alerts.values():
        if alert.state == "resolved":
            continue
        muting = tuple(s.id for s in silences if s.mutes(alert.labels, now))
        alerts.append(replace(alert, silenced_by=muting))
    return sorted(alerts, key=lambda a: (a.state != "firing", a.rule, a.fingerprint))


def list_silences(vault: Vault, now: float, *, expired: bool = False) -> list[Silence]:
    """The stored silences active or pending at ``now`` (and the expired ones with ``expired``)."""
    return [
        s for s in AlertTables(vault.catalog).silences() if expired or s.state(now) != "expired"
    ]


def add_silence(writer: Vault | VaultWriter, silence: Silence) -> Silence:
    """Store ``silence`` through the vault's writer; returns it.

    Raises:
        StorageError, VaultLockedError: the catalog cannot be written.
    """
    VaultAlertStore(writer, lambda: silence.updated_at).add_silence(silence)
    return silence


def expire_silence(writer: Vault | VaultWriter, silence_id: str, now: float) -> Silence:
    """End silence ``silence_id`` at ``now`` through the vault's writer.

    Returns:
        The silence, ended.

    Raises:
        NotFoundError: no silence has that id.
        StorageError, VaultLockedError: the catalog cannot be written.
    """
    return VaultAlertStore(writer, lambda: now).expire_silence(silence_id)
