"""The audit trail: ``audit`` entries in the log, written and read back.

Every API key or user change and every break-glass use is an ``audit``
entry (:class:`~echo_archive.schemas.AuditMeta`, documented in
``docs/entries.md``) in the same Merkle log as everything else, so the trail
is hash-chained, tamper-evident and provable (DESIGN.md invariant 10; issue
11, "Audit trail"). Entries are committed through the vault's writer and
validated against their schema when read back, like every entry.

No secret is ever in an entry (invariant 9): callers pass names, roles, the
public key id, times; :func:`record` refuses a ``details`` key that names a
secret (``key``, ``password``, ``hash``, ``token``, ``secret``) as a last
guard, and runs every string through :func:`~echo_archive.redaction.redact_text`.
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from echo_archive.redaction import redact_text
from echo_archive.schemas import AuditMeta
from echo_archive.services.paging import parse_instant
from echo_archive.vault.vault import Record, Vault
from echo_archive.vault.writer import VaultWriter

__all__ = ["AuditEntry", "audit_meta", "cli_actor", "list_audit", "record"]

_SECRET_WORDS = ("key", "password", "passwd", "hash", "token", "secret")
_ALLOWED_KEYS = frozenset({"key_id"})


@dataclass(frozen=True)
class AuditEntry:
    """One ``audit`` entry read back from the log.

    Attributes:
        index: its log index.
        logged_at: when it joined the log (RFC 3339 UTC).
        actor, action, target, outcome, reason, request_id, details: its
            meta (:class:`~echo_archive.schemas.AuditMeta`).
    """

    index: int
    logged_at: str
    actor: str
    action: str
    target: str
    outcome: str
    reason: str
    request_id: str | None
    details: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        """Every attribute, JSON-ready."""
        return {
            "index": self.index,
            "logged_at": self.logged_at,
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "outcome": self.outcome,
            "reason": self.reason,
            "request_id": self.request_id,
            "details": dict(self.details),
        }


def cli_actor() -> str:
    """The actor of a command-line change: ``cli:<login name>`` (``cli:unknown`` without one)."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):
        return "cli:unknown"


def audit_meta(
    actor: str,
    action: str,
    *,
    target: str = "",
    outcome: Literal["ok", "refused", "failed"] = "ok",
    reason: str = "",
    request_id: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> AuditMeta:
    """A validated ``audit`` meta (strings redacted; see :class:`~echo_archive.schemas.AuditMeta`).

    Raises:
        ValueError: a ``details`` key names a secret (``password``, ``token``...).
        EntrySchemaError: a field breaks the schema (an empty actor or action).
    """
    found = dict(details or {})
    for name in found:
        lowered = name.lower()
        if name not in _ALLOWED_KEYS and any(w in lowered for w in _SECRET_WORDS):
            raise ValueError(f"audit details {name!r}: a secret never enters the log")
    return AuditMeta(
        actor=redact_text(actor),
        action=action,
        target=redact_text(target),
        outcome=outcome,
        reason=redact_text(reason),
        request_id=request_id,
        details={k: redact_text(v) if isinstance(v, str) else v for k, v in found.items()},
    )


def record(target: Vault | VaultWriter, meta: AuditMeta) -> int:
    """Commit ``meta`` as an ``audit`` entry through the vault's writer; returns its log index.

    Args:
        target: the vault's writer (or a writer vault, inside a writer job).
        meta: from :func:`audit_meta`.

    Raises:
        StorageError, VaultLockedError: the entry could not be committed.
    """
    records = [Record("audit", meta)]
    if isinstance(target, VaultWriter):
        return target.commit(records).result().receipts[0].index
    return target.commit(records).receipts[0].index


def list_audit(
    vault: Vault,
    *,
    since: str | None = None,
    actor: str | None = None,
    limit: int | None = None,
) -> list[AuditEntry]:
    """The ``audit`` entries of the log, oldest first, each validated as it is read.

    Args:
        vault: a vault (a reader is enough).
        since: an RFC 3339 date-time; only entries logged at or after it.
        actor: only entries of this actor (exact: ``key:ci``, ``cli:alice``)
            or of this name under any kind (``alice`` matches ``user:alice``).
        limit: the newest ``limit`` entries at most.

    Raises:
        RequestError: ``since`` is not an RFC 3339 date-time.
        EntryError: a stored entry is malformed or breaks its schema.
    """
    floor = None if since is None else parse_instant(since, "--since")
    found: list[AuditEntry] = []
    rows = vault.catalog.query("SELECT idx FROM entries WHERE type = 'audit' ORDER BY idx")
    for (idx,) in list(rows):
        entry = vault.entry(int(idx))  # parse_entry: envelope and schema validated
        if floor is not None and entry.logged_at < floor:
            continue
        meta = entry.meta
        who = str(meta["actor"])
        if actor is not None and who != actor and who.partition(":")[2] != actor:
            continue
        found.append(
            AuditEntry(
                index=int(idx),
                logged_at=entry.logged_at,
                actor=who,
                action=str(meta["action"]),
                target=str(meta["target"]),
                outcome=str(meta["outcome"]),
                reason=str(meta["reason"]),
                request_id=meta["request_id"],
                details=dict(meta["details"]),
            )
        )
    if limit is not None:
        found = found[-limit:] if limit > 0 else []
    return found
