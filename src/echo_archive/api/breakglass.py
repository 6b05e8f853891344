"""Break-glass: an admin's time-boxed emergency elevation, with a stated reason, audited.

An unscoped admin (a key or user of role ``admin`` with no feed group) may
take an elevation for ``minutes`` (1 to :data:`MAX_MINUTES`) with a reason
of at least :data:`MIN_REASON` characters; while it lasts the principal also
holds :data:`~echo_archive.api.roles.BREAK_GLASS_PERMISSIONS`. Every start is
an ``audit`` entry (``breakglass.start``) and a row of ``api_elevations``;
a refused attempt is an ``audit`` entry too (outcome ``refused``). The model
is NIST SP 800-53 AC-2 / AC-6's emergency accounts and OWASP's guidance that
emergency access be time-limited, justified and reviewed: an elevation ends
on its own, and :func:`active_elevations` is what an alert fires on.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Final

from echo_archive.api.audit import audit_meta, record
from echo_archive.api.roles import Principal, Role
from echo_archive.api.tables import audited_change, on_writer, present
from echo_archive.errors import PermissionDenied, RequestError
from echo_archive.vault.vault import Vault
from echo_archive.vault.writer import VaultWriter

__all__ = ["MAX_MINUTES", "MIN_REASON", "Elevation", "active_elevations", "start"]

MAX_MINUTES: Final = 240
"""The longest elevation, minutes (four hours)."""

MIN_REASON: Final = 10
"""Characters a stated reason needs at least."""


@dataclass(frozen=True)
class Elevation:
    """One break-glass elevation.

    Attributes:
        id: its id (16 hex).
        actor: who holds it (``key:<name>``, ``user:<name>``).
        reason: the stated reason.
        started_at, ends_at: POSIX seconds.
        entry: the log index of its ``audit`` entry (None when read back).
    """

    id: str
    actor: str
    reason: str
    started_at: float
    ends_at: float
    entry: int | None = None

    def to_json(self) -> dict[str, Any]:
        """Every attribute, JSON-ready."""
        return {
            "id": self.id,
            "actor": self.actor,
            "reason": self.reason,
            "started_at": self.started_at,
            "ends_at": self.ends_at,
            "entry": self.entry,
        }


def start(
    writer: Vault | VaultWriter,
    principal: Principal,
    *,
    reason: str,
    minutes: int,
    now: float,
    actor: str | None = None,
    request_id: str | None = None,
) -> Elevation:
    """Start an elevation for ``principal`` (audited, refused attempts included).

    Args:
        writer: the vault's writer.
        principal: the admin to elevate (the elevation's holder, the entry's target).
        reason: why, as stated.
        minutes: how long (1 to :data:`MAX_MINUTES`).
        now: POSIX seconds it starts.
        actor: who grants it (``cli:<login>``); default the holder itself.
        request_id: the HTTP request's id, or None.

    Raises:
        PermissionDenied: ``principal`` is not an unscoped admin (the refusal is audited).
        RequestError: ``minutes`` is not 1 to :data:`MAX_MINUTES`, or the
            reason is shorter than :data:`MIN_REASON` characters.
        StorageError, VaultLockedError: the catalog or the log cannot be written.
    """
    holder = f"{principal.kind}:{principal.name}"
    actor = holder if actor is None else actor
    reason = reason.strip()
    if not 1 <= minutes <= MAX_MINUTES:
        raise RequestError(f"--minutes {minutes}: 1 to {MAX_MINUTES}")
    if len(reason) < MIN_REASON:
        raise RequestError(f"--reason: state why, in {MIN_REASON} characters at least")
    if principal.role is not Role.ADMIN or principal.feeds is not None:
        record_refusal = audit_meta(
            actor,
            "breakglass.start",
            target=holder,
            outcome="refused",
            reason=reason,
            request_id=request_id,
            details={"minutes": minutes},
        )
        on_writer(writer, lambda v: record(v, record_refusal))
        raise PermissionDenied(
            f"break-glass: {holder} is not an unscoped admin", "operations:admin", None
        )
    found = Elevation(secrets.token_hex(8), holder, reason, now, now + 60.0 * minutes)

    def job(vault: Vault) -> Elevation:
        index = audited_change(
            vault,
            f"starting break-glass {found.id}",
            "INSERT INTO api_elevations(id, actor, reason, started_at, ends_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (found.id, holder, reason, found.started_at, found.ends_at),
            audit_meta(
                actor,
                "breakglass.start",
                target=holder,
                reason=reason,
                request_id=request_id,
                details={"id": found.id, "minutes": minutes, "until": found.ends_at},
            ),
            undo=("DELETE FROM api_elevations WHERE id = ?", (found.id,)),
        )
        return Elevation(**{**found.__dict__, "entry": index})

    return on_writer(writer, job)


def active_elevations(vault: Vault, now: float) -> list[Elevation]:
    """The elevations in force at POSIX time ``now``, by start (a reader is enough)."""
    if not present(vault.catalog):
        return []
    rows = vault.catalog.query(
        "SELECT id, actor, reason, started_at, ends_at FROM api_elevations "
        "WHERE started_at <= ? AND ends_at > ? ORDER BY started_at, id",
        (now, now),
    )
    return [Elevation(str(r[0]), str(r[1]), str(r[2]), float(r[3]), float(r[4])) for r in rows]
