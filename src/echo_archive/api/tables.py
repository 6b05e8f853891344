"""The API's operational tables in the catalog: API keys, users, break-glass elevations.

Operational, not derived (DESIGN.md invariant 8), as the alert tables of
:mod:`echo_archive.control.alertstore`: what the API must remember that the
log does not hold. None of it can be rebuilt from the log (only hashes are
stored, never a key or a password), and every change of it is also an
``audit`` entry in the log (:mod:`echo_archive.api.audit`), so the history
of who could do what is on the record even if these rows are lost.

* ``api_keys``: one row per API key: ``id`` (the public key id), ``name``
  (unique), ``role``, ``grp`` (feed group or NULL), ``hash`` (SHA-256 of the
  whole key text, 32 bytes), ``created_at``, ``expires_at`` (or NULL),
  ``revoked_at`` (or NULL), ``last_used_at`` (or NULL; POSIX seconds, updated
  at most once a minute), ``created_by``.
* ``api_users``: one row per user: ``name``, ``role``, ``grp``, ``hash`` (the
  argon2id PHC string), ``created_at``, ``updated_at``.
* ``api_elevations``: break-glass elevations: ``id``, ``actor``, ``reason``,
  ``started_at``, ``ends_at`` (POSIX seconds).

The tables are created by the first writer that uses them; a reader of a
vault that has none sees no keys and no users (so nothing authenticates).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from echo_archive.api.audit import record
from echo_archive.schemas import AuditMeta
from echo_archive.vault.catalog import Catalog, Params
from echo_archive.vault.vault import Vault
from echo_archive.vault.writer import VaultWriter

__all__ = ["API_DDL", "audited_change", "ensure_tables", "on_writer", "present"]

T = TypeVar("T")

API_DDL = """
CREATE TABLE IF NOT EXISTS api_keys(
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    grp TEXT,
    hash BLOB NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL,
    revoked_at REAL,
    last_used_at REAL,
    created_by TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS api_users(
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    grp TEXT,
    hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS api_elevations(
    id TEXT PRIMARY KEY,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    started_at REAL NOT NULL,
    ends_at REAL NOT NULL
) WITHOUT ROWID
"""

_TABLES = frozenset({"api_keys", "api_users", "api_elevations"})


def present(catalog: Catalog) -> bool:
    """True when the catalog holds the API's tables (a writer created them)."""
    return catalog.tables() >= _TABLES


def ensure_tables(catalog: Catalog) -> None:
    """Create the API's tables in a writer's catalog when missing.

    Raises:
        StorageError: the catalog cannot be written.
    """
    if not present(catalog):
        catalog.create_tables(API_DDL)


def on_writer(target: Vault | VaultWriter, fn: Callable[[Vault], T]) -> T:
    """Run ``fn(vault)`` with the writer lock held and the tables present; return its result.

    Args:
        target: the vault's :class:`~echo_archive.vault.writer.VaultWriter`
            (``fn`` is a job on its thread, in order with the other writes) or
            a writer :class:`~echo_archive.vault.vault.Vault` (used directly).
        fn: the work, given the writer vault.

    Raises:
        StorageError, VaultLockedError: from the writer; what ``fn`` raises.
    """

    def job(vault: Vault) -> T:
        with vault.writing():
            ensure_tables(vault.catalog)
            return fn(vault)

    if isinstance(target, VaultWriter):
        return target.submit(job).result()
    return job(target)


def audited_change(
    vault: Vault,
    what: str,
    sql: str,
    params: Params,
    meta: AuditMeta,
    *,
    undo: tuple[str, Params] | None = None,
) -> int | None:
    """Change the API's tables by one statement, then commit its ``audit`` entry.

    The one way a key, user or elevation changes: the statement runs in a
    catalog transaction; when it changed a row, ``meta`` is committed as an
    ``audit`` entry (:func:`echo_archive.api.audit.record`). If that commit
    fails, ``undo`` (a statement and its parameters) takes the change back,
    so no change stands without its entry (a change with no ``undo``, such
    as a revocation, stands and the error is raised: refusing more is safe).

    Args:
        vault: the writer vault (inside :func:`on_writer`).
        what: what the change does, for error messages.
        sql: the statement.
        params: its parameters.
        meta: the audit entry (:func:`echo_archive.api.audit.audit_meta`).
        undo: the statement that takes the change back, or None.

    Returns:
        The audit entry's log index, or None when the statement changed no row
        (nothing is recorded then).

    Raises:
        StorageError, VaultLockedError: the catalog or the log cannot be written.
    """
    with vault.catalog.transaction(what):
        changed = vault.catalog.execute(sql, params)
    if not changed:
        return None
    try:
        return record(vault, meta)
    except BaseException:
        if undo is not None:
            with vault.catalog.transaction(f"undoing: {what}"):
                vault.catalog.execute(*undo)
        raise
