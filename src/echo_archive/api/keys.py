"""API keys: created, listed, revoked, and checked on every request.

A key is ``echo_<key id>_<secret>``: ``echo_`` (so a leaked key is
recognisable to secret scanners, as GitHub's ``ghp_`` tokens are), a 16-hex
key id (public: it names the key in lists and audit entries) and
``secrets.token_urlsafe(32)`` (256 random bits, Python's ``secrets`` module,
the CSPRNG the stdlib documents for tokens). It is printed once to its
creator; only ``SHA-256(key text)`` is stored (``api_keys`` in the catalog,
:mod:`echo_archive.api.tables`).

Why a plain SHA-256 and not argon2: a slow, salted password hash exists to
make guessing a *low-entropy* secret expensive (OWASP Password Storage Cheat
Sheet; NIST SP 800-63B §5.1.1.2 asks for it for memorized secrets). A
256-bit random key cannot be guessed, so a fast one-way hash suffices (NIST
SP 800-63B §5.1.2.2 for look-up secrets of at least 112 bits of entropy:
"a password hashing scheme is not required"; OWASP's Secrets Management
Cheat Sheet on API keys), and keeps every request's check cheap. Users'
passwords are argon2id (:mod:`echo_archive.api.users`).

Checking (:func:`authenticate`) reads the key's row on every request (no
cache: a revocation holds at the next request), compares the hash with
:func:`hmac.compare_digest` (constant time; a dummy hash is compared when the
id is unknown, so the time does not tell), and refuses revoked and expired
keys. The last use is written through the vault's writer at most once a
minute per key (:data:`LAST_USED_EVERY`), so a busy key does not write on
every request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Final

from echo_archive.api.audit import audit_meta
from echo_archive.api.roles import Principal, Role, parse_role
from echo_archive.api.tables import audited_change, on_writer, present
from echo_archive.control.alerts import rfc3339
from echo_archive.errors import AuthenticationError, NotFoundError, RequestError
from echo_archive.vault.vault import Vault
from echo_archive.vault.writer import VaultWriter

__all__ = [
    "KEY_PATTERN",
    "KEY_PREFIX",
    "LAST_USED_EVERY",
    "NAME_PATTERN",
    "KeyRecord",
    "KeyStore",
    "check_group",
    "check_name",
    "create_key",
    "hash_key",
    "list_keys",
    "revoke_key",
]

KEY_PREFIX: Final = "echo_"
"""The prefix every API key starts with."""

KEY_PATTERN: Final = re.compile(r"echo_([0-9a-f]{16})_[A-Za-z0-9_-]{43}")
"""A well-formed key: prefix, 16-hex key id, 43 base64url characters (32 bytes)."""

NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""Key, user and group names: ASCII letters, digits, ``.``, ``_``, ``-``; 1 to 64 characters."""

LAST_USED_EVERY: Final = 60.0
"""Seconds: a key's ``last_used_at`` is written at most this often."""

_DUMMY = hashlib.sha256(b"echo no such key").digest()


def check_name(name: str, what: str = "name") -> str:
    """``name`` when it is a valid key, user or group name (:data:`NAME_PATTERN`).

    Raises:
        RequestError: it is not (control characters, terminal escapes,
            spaces, too long); the message shows it escaped.
    """
    if not NAME_PATTERN.fullmatch(name):
        raise RequestError(
            f"{what} {name!r}: use 1 to 64 ASCII letters, digits, '.', '_' or '-' "
            "(starting with a letter or digit)"
        )
    return name


def check_group(group: str | None, groups: Mapping[str, object] | None) -> None:
    """Refuse a feed group that ``[api.groups]`` (``groups``) does not define (None passes).

    Raises:
        RequestError: a bad name, or a group not configured (the message lists the known ones).
    """
    if group is None:
        return
    check_name(group, "group")
    if groups is None or group not in groups:
        known = ", ".join(sorted(groups or {})) or "none"
        raise RequestError(f"group {group!r}: not in [api.groups] of echo.toml ({known})")


def hash_key(key_text: str) -> bytes:
    """SHA-256 of the key text (32 bytes): what the catalog stores."""
    return hashlib.sha256(key_text.encode("ascii")).digest()


@dataclass(frozen=True)
class KeyRecord:
    """One API key as stored, without its hash (what lists show).

    Attributes:
        id: the public key id (16 hex).
        name: its unique name.
        role: its role.
        group: its feed group, or None.
        created_at: POSIX seconds.
        expires_at: POSIX seconds it stops working, or None.
        revoked_at: POSIX seconds it was revoked, or None.
        last_used_at: POSIX seconds of its last use (to a minute), or None.
        created_by: the actor that created it.
    """

    id: str
    name: str
    role: Role
    group: str | None
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    last_used_at: float | None
    created_by: str

    def state(self, now: float) -> str:
        """``active``, ``revoked`` or ``expired`` at POSIX time ``now``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"

    def to_json(self, now: float) -> dict[str, Any]:
        """Every attribute (times as POSIX seconds and RFC 3339), plus ``state``; no secret."""

        def text(t: float | None) -> str | None:
            return None if t is None else rfc3339(t)

        return {
            "id": self.id,
            "name": self.name,
            "role": self.role.label,
            "group": self.group,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
            "last_used_at": self.last_used_at,
            "created": text(self.created_at),
            "expires": text(self.expires_at),
            "revoked": text(self.revoked_at),
            "last_used": text(self.last_used_at),
            "created_by": self.created_by,
            "state": self.state(now),
        }


_COLUMNS = "id, name, role, grp, created_at, expires_at, revoked_at, last_used_at, created_by"


def _record(row: tuple[Any, ...]) -> KeyRecord:
    return KeyRecord(
        id=str(row[0]),
        name=str(row[1]),
        role=parse_role(str(row[2])),
        group=None if row[3] is None else str(row[3]),
        created_at=float(row[4]),
        expires_at=None if row[5] is None else float(row[5]),
        revoked_at=None if row[6] is None else float(row[6]),
        last_used_at=None if row[7] is None else float(row[7]),
        created_by=str(row[8]),
    )


def list_keys(vault: Vault) -> list[KeyRecord]:
    """Every API key (active, expired, revoked), by name; never a key or its hash."""
    if not present(vault.catalog):
        return []
    rows = vault.catalog.query(f"SELECT {_COLUMNS} FROM api_keys ORDER BY name")  # noqa: S608
    return [_record(tuple(r)) for r in rows]


def create_key(
    writer: Vault | VaultWriter,
    name: str,
    role: Role,
    *,
    now: float,
    group: str | None = None,
    groups: Mapping[str, object] | None = None,
    expires_at: float | None = None,
    actor: str,
    request_id: str | None = None,
) -> tuple[str, KeyRecord]:
    """Create an API key and its ``audit`` entry (``key.create``) through the vault's writer.

    Args:
        writer: the vault's writer.
        name: a unique name (:data:`NAME_PATTERN`).
        role: its role.
        now: POSIX seconds (its ``created_at``).
        group: a feed group to scope it to, or None.
        groups: the configured groups (``[api.groups]``); ``group`` must be one.
        expires_at: POSIX seconds it stops working, or None (never).
        actor: who creates it (``cli:<login>``, ``key:<name>``).
        request_id: the HTTP request's id, or None.

    Returns:
        ``(key_text, record)``: the key, to be shown once and never again,
        and its stored record.

    Raises:
        RequestError: a bad name, an unknown group, an expiry not in the
            future, or a name already taken.
        StorageError, VaultLockedError: the catalog or the log cannot be written.
    """
    check_name(name, "key name")
    check_group(group, groups)
    if expires_at is not None and expires_at <= now:
        raise RequestError(f"expiry {rfc3339(expires_at)}: not in the future")
    key_id = secrets.token_hex(8)
    key_text = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    rec = KeyRecord(key_id, name, role, group, now, expires_at, None, None, actor)

    def job(vault: Vault) -> None:
        taken = vault.catalog.query_one("SELECT 1 FROM api_keys WHERE name = ?", (name,))
        if taken is not None:
            raise RequestError(f"key name {name!r}: already used (see `echoctl keys list`)")
        meta = audit_meta(
            actor,
            "key.create",
            target=f"key:{name}",
            request_id=request_id,
            details={
                "key_id": key_id,
                "role": role.label,
                "group": group,
                "expires_at": expires_at,
            },
        )
        audited_change(
            vault,
            f"creating API key {name}",
            f"INSERT INTO api_keys({_COLUMNS}, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
            (
                key_id,
                name,
                role.label,
                group,
                now,
                expires_at,
                None,
                None,
                actor,
                hash_key(key_text),
            ),
            meta,
            undo=("DELETE FROM api_keys WHERE id = ?", (key_id,)),
        )

    on_writer(writer, job)
    return key_text, rec


def revoke_key(
    writer: Vault | VaultWriter,
    name_or_id: str,
    *,
    now: float,
    actor: str,
    reason: str = "",
    request_id: str | None = None,
) -> KeyRecord:
    """Revoke a key (by name or id) at ``now``, with its ``audit`` entry (``key.revoke``).

    A key already revoked stays as it was (and no entry is written). The
    next request presenting it gets 401: :func:`authenticate` reads the row
    each time.

    Returns:
        The key's record, revoked.

    Raises:
        NotFoundError: no key has that name or id.
        StorageError, VaultLockedError: the catalog or the log cannot be written.
    """

    def job(vault: Vault) -> KeyRecord:
        row = vault.catalog.query_one(
            f"SELECT {_COLUMNS} FROM api_keys WHERE name = ? OR id = ?",  # noqa: S608
            (name_or_id, name_or_id),
        )
        if row is None:
            raise NotFoundError(f"no API key named {name_or_id!r} (see `echoctl keys list`)")
        found = _record(tuple(row))
        if found.revoked_at is not None:
            return found
        audited_change(
            vault,
            f"revoking API key {found.name}",
            "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            (now, found.id),
            audit_meta(
                actor,
                "key.revoke",
                target=f"key:{found.name}",
                reason=reason,
                request_id=request_id,
                details={"key_id": found.id, "role": found.role.label},
            ),
        )
        return KeyRecord(**{**found.__dict__, "revoked_at": now})

    return on_writer(writer, job)


class KeyStore:
    """Checks presented API keys against a vault's ``api_keys`` (one per process).

    Args:
        reader: a vault to read the rows from (a read-only one beside the writer).
        writer: the vault's writer, for ``last_used_at`` (None: never written).
        groups: ``[api.groups]``: group name -> its feeds.
        clock: POSIX seconds.
    """

    def __init__(
        self,
        reader: Vault,
        writer: Vault | VaultWriter | None,
        groups: Mapping[str, list[str]],
        clock: Callable[[], float],
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._groups = groups
        self._clock = clock
        self._touched: dict[str, float] = {}
        self._lock = threading.Lock()
        self.pending: list[Future[Any]] = []
        """The ``last_used_at`` writes submitted and not yet seen done (tests wait on them)."""

    def authenticate(self, presented: str) -> Principal:
        """The principal of API key ``presented``, or raise.

        Raises:
            AuthenticationError: the text is not a well-formed key, or no key
                has that id and hash (compared in constant time), or the key
                is revoked or expired. The message never holds the key.
        """
        found = KEY_PATTERN.fullmatch(presented)
        if found is None:
            raise AuthenticationError("malformed API key")
        key_id = found.group(1)
        row = None
        if present(self._reader.catalog):
            row = self._reader.catalog.query_one(
                f"SELECT {_COLUMNS}, hash FROM api_keys WHERE id = ?",  # noqa: S608
                (key_id,),
            )
        stored = _DUMMY if row is None else bytes(row[9])
        matches = hmac.compare_digest(stored, hash_key(presented))
        if row is None or not matches:
            raise AuthenticationError("unknown API key")
        rec = _record(tuple(row[:9]))
        now = self._clock()
        state = rec.state(now)
        if state != "active":
            raise AuthenticationError(f"API key {rec.id} is {state}")
        self._touch(rec, now)
        feeds = None
        if rec.group is not None:
            feeds = frozenset(self._groups.get(rec.group, ()))
        return Principal(
            name=rec.name, kind="key", role=rec.role, group=rec.group, feeds=feeds, key_id=rec.id
        )

    def _touch(self, rec: KeyRecord, now: float) -> None:
        """Write ``last_used_at = now`` unless it was written less than a minute ago."""
        if self._writer is None:
            return
        with self._lock:
            last = max(self._touched.get(rec.id, 0.0), rec.last_used_at or 0.0)
            if now - last < LAST_USED_EVERY:
                return
            self._touched[rec.id] = now
        floor = now - LAST_USED_EVERY

        def job(vault: Vault) -> None:
            with vault.writing(), vault.catalog.transaction(f"noting the use of key {rec.id}"):
                vault.catalog.execute(
                    "UPDATE api_keys SET last_used_at = ? WHERE id = ? "
                    "AND (last_used_at IS NULL OR last_used_at <= ?)",
                    (now, rec.id, floor),
                )

        if isinstance(self._writer, VaultWriter):
            future = self._writer.submit(job)
            future.add_done_callback(_retrieve)
            self.pending = [f for f in self.pending if not f.done()] + [future]
        else:
            job(self._writer)


def _retrieve(future: Future[Any]) -> None:
    """Consume a ``last_used_at`` write's error (a lost write loses only a time)."""
    future.exception()
