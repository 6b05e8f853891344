"""Users (people) with argon2id password hashes, and JWT access tokens.

Passwords are hashed with argon2id through argon2-cffi's
:class:`argon2.PasswordHasher` at its defaults, which are RFC 9106 §4's
second recommended option (t=3, m=64 MiB, p=4, 16-byte salt, 32-byte tag)
and what OWASP's Password Storage Cheat Sheet accepts for argon2id. The
stored value is the PHC string (parameters and salt included); when the
parameters change, a successful login rehashes the password
(:meth:`~argon2.PasswordHasher.check_needs_rehash`). A password is never
stored, logged or printed, and never read from the command line's argv.

Access tokens are JWTs (RFC 7519) signed with HS256 (RFC 7518 §3.2) by
PyJWT, with a 256-bit secret kept in ``api-token.key`` in the vault (mode
0600, created on first use, never logged). :func:`verify_token` checks the
signature, ``exp``, ``iat``, ``aud`` and ``iss``, and accepts only the
algorithm ECHO signs with (the RFC 8725 §3.1 allow-list: ``alg: none`` and an
RS256/HS256 confusion are refused), as PyJWT's documentation asks
(``algorithms=[...]`` is required).
"""

from __future__ import annotations

import functools
import os
import secrets
import stat
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import argon2
import jwt

from echo_archive.api.audit import audit_meta
from echo_archive.api.keys import check_group, check_name
from echo_archive.api.roles import Principal, Role, parse_role
from echo_archive.api.tables import audited_change, on_writer, present
from echo_archive.errors import AuthenticationError, NotFoundError, RequestError, StorageError
from echo_archive.vault.vault import Vault
from echo_archive.vault.writer import VaultWriter

__all__ = [
    "ALGORITHM",
    "AUDIENCE",
    "HASHING_AT_ONCE",
    "MAX_PASSWORD",
    "MIN_PASSWORD",
    "TOKEN_SECRET_FILE",
    "TokenIssuer",
    "UserRecord",
    "add_user",
    "authenticate_password",
    "list_users",
    "remove_user",
    "set_password",
    "set_role",
    "token_secret",
]

ALGORITHM: Final = "HS256"
"""The only JWT algorithm ECHO signs with and accepts."""

AUDIENCE: Final = "echo-api"
"""The ``aud`` of ECHO's access tokens."""

TOKEN_SECRET_FILE: Final = "api-token.key"  # noqa: S105 - a file name, not a secret
"""The vault file holding the HS256 secret (mode 0600)."""

MIN_PASSWORD: Final = 8
"""Characters a password needs at least (NIST SP 800-63B §5.1.1.2: 8 at minimum)."""

MAX_PASSWORD: Final = 1024
"""Characters a password may have at most (bounds the hashing work of one request)."""

_HASHER = argon2.PasswordHasher()  # argon2id, RFC 9106's recommended parameters

HASHING_AT_ONCE: Final = 2
"""Password hashes computed at once at most (each takes 64 MiB): a burst of logins queues."""

_HASHING = threading.BoundedSemaphore(HASHING_AT_ONCE)


def _hash(password: str) -> str:
    with _HASHING:
        return _HASHER.hash(password)


def _verify(stored: str, password: str) -> bool:
    """True when ``password`` matches the PHC string ``stored`` (argon2-cffi's verify)."""
    with _HASHING:
        try:
            return _HASHER.verify(stored, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False


@dataclass(frozen=True)
class UserRecord:
    """One user as stored, without the hash.

    Attributes:
        name: the user's name.
        role: the role.
        group: the feed group the role is scoped to, or None.
        created_at, updated_at: POSIX seconds.
    """

    name: str
    role: Role
    group: str | None
    created_at: float
    updated_at: float

    def to_json(self) -> dict[str, Any]:
        """``{"name", "role", "group", "created_at", "updated_at"}``; never the hash."""
        return {
            "name": self.name,
            "role": self.role.label,
            "group": self.group,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def _check_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise RequestError(
            f"password: {MIN_PASSWORD} to {MAX_PASSWORD} characters, got {len(password)}"
        )


def list_users(vault: Vault) -> list[UserRecord]:
    """Every user, by name; never a hash."""
    if not present(vault.catalog):
        return []
    rows = vault.catalog.query(
        "SELECT name, role, grp, created_at, updated_at FROM api_users ORDER BY name"
    )
    return [
        UserRecord(str(r[0]), parse_role(str(r[1])), r[2], float(r[3]), float(r[4])) for r in rows
    ]


def add_user(
    writer: Vault | VaultWriter,
    name: str,
    role: Role,
    password: str,
    *,
    now: float,
    actor: str,
    group: str | None = None,
    groups: Mapping[str, object] | None = None,
    request_id: str | None = None,
) -> UserRecord:
    """Add a user with an argon2id hash of ``password``, and its ``audit`` entry (``user.add``).

    Raises:
        RequestError: a bad name or group, a name taken, a password shorter
            than :data:`MIN_PASSWORD` or longer than :data:`MAX_PASSWORD`.
        StorageError, VaultLockedError: the catalog or the log cannot be written.
    """
    check_name(name, "user name")
    check_group(group, groups)
    _check_password(password)
    hashed = _hash(password)

    def job(vault: Vault) -> None:
        if vault.catalog.query_one("SELECT 1 FROM api_users WHERE name = ?", (name,)):
            raise RequestError(f"user name {name!r}: already used (see `echoctl users list`)")
        audited_change(
            vault,
            f"adding user {name}",
            "INSERT INTO api_users(name, role, grp, hash, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (name, role.label, group, hashed, now, now),
            audit_meta(
                actor,
                "user.add",
                target=f"user:{name}",
                request_id=request_id,
                details={"role": role.label, "group": group},
            ),
            undo=("DELETE FROM api_users WHERE name = ?", (name,)),
        )

    on_writer(writer, job)
    return UserRecord(name, role, group, now, now)


def remove_user(
    writer: Vault | VaultWriter,
    name: str,
    *,
    actor: str,
    request_id: str | None = None,
) -> None:
    """Remove a user, with its ``audit`` entry (``user.remove``).

    Tokens already issued to the user stop working at once (verification
    reads the user's row).

    Raises:
        NotFoundError: no such user.
        StorageError, VaultLockedError: the catalog or the log cannot be written.
    """

    def job(vault: Vault) -> None:
        index = audited_change(
            vault,
            f"removing user {name}",
            "DELETE FROM api_users WHERE name = ?",
            (name,),
            audit_meta(actor, "user.remove", target=f"user:{name}", request_id=request_id),
        )
        if index is None:
            raise NotFoundError(f"no user named {name!r} (see `echoctl users list`)")

    on_writer(writer, job)


def set_password(
    writer: Vault | VaultWriter,
    name: str,
    password: str,
    *,
    now: float,
    actor: str,
    request_id: str | None = None,
) -> None:
    """Set a user's password (a new argon2id hash), with its ``audit`` entry (``user.passwd``).

    Raises:
        NotFoundError: no such user.
        RequestError: the password's length is out of bounds.
        StorageError, VaultLockedError: the catalog or the log cannot be written.
    """
    _check_password(password)
    hashed = _hash(password)

    def job(vault: Vault) -> None:
        index = audited_change(
            vault,
            f"setting the password of {name}",
            "UPDATE api_users SET hash = ?, updated_at = ? WHERE name = ?",
            (hashed, now, name),
            audit_meta(actor, "user.passwd", target=f"user:{name}", request_id=request_id),
        )
        if index is None:
            raise NotFoundError(f"no user named {name!r} (see `echoctl users list`)")

    on_writer(writer, job)


def set_role(
    writer: Vault | VaultWriter,
    name: str,
    role: Role,
    *,
    now: float,
    actor: str,
    group: str | None = None,
    groups: Mapping[str, object] | None = None,
    request_id: str | None = None,
) -> UserRecord:
    """Set a user's role and feed group, with its ``audit`` entry (``user.role``).

    Takes effect at the user's next request: a token is checked against the
    user's row each time (:meth:`TokenIssuer.verify_token`), so a lowered
    role holds at once. Nothing is written when both are already so.

    Args:
        writer: the vault's writer.
        name: the user.
        role: the new role.
        now: POSIX seconds (``updated_at``).
        actor: who (``key:<name>``, ``user:<name>``, ``cli:<login>``).
        group: the feed group the role is scoped to, or None (unscoped).
        groups: ``[api.groups]`` (the group must be one of them).
        request_id: the HTTP request's id, or None.

    Returns:
        The user as it is now.

    Raises:
        NotFoundError: no such user.
        RequestError: a bad or unknown group.
        StorageError, VaultLockedError: the catalog or the log cannot be written.
    """
    check_group(group, groups)

    def job(vault: Vault) -> UserRecord:
        row = vault.catalog.query_one(
            "SELECT role, grp, created_at, updated_at FROM api_users WHERE name = ?", (name,)
        )
        if row is None:
            raise NotFoundError(f"no user named {name!r} (see `echoctl users list`)")
        old_role, old_group = str(row[0]), row[1]
        if old_role == role.label and old_group == group:
            return UserRecord(name, role, group, float(row[2]), float(row[3]))
        audited_change(
            vault,
            f"setting the role of {name}",
            "UPDATE api_users SET role = ?, grp = ?, updated_at = ? WHERE name = ?",
            (role.label, group, now, name),
            audit_meta(
                actor,
                "user.role",
                target=f"user:{name}",
                request_id=request_id,
                details={
                    "role": role.label,
                    "group": group,
                    "old_role": old_role,
                    "old_group": old_group,
                },
            ),
            undo=(
                "UPDATE api_users SET role = ?, grp = ?, updated_at = ? WHERE name = ?",
                (old_role, old_group, float(row[3]), name),
            ),
        )
        return UserRecord(name, role, group, float(row[2]), now)

    return on_writer(writer, job)


def _principal(row: tuple[Any, ...], groups: Mapping[str, list[str]]) -> Principal:
    group = None if row[2] is None else str(row[2])
    feeds = None if group is None else frozenset(groups.get(group, ()))
    return Principal(
        name=str(row[0]), kind="user", role=parse_role(str(row[1])), group=group, feeds=feeds
    )


def authenticate_password(
    reader: Vault,
    name: str,
    password: str,
    *,
    groups: Mapping[str, list[str]],
    writer: Vault | VaultWriter | None = None,
) -> Principal:
    """The principal of user ``name`` when ``password`` is theirs, or raise.

    An unknown user costs the same hashing work as a wrong password (a
    dummy hash is verified), so the time does not tell which. With
    ``writer``, a hash made with older parameters is replaced by one with
    the current ones (argon2-cffi's ``check_needs_rehash``).

    Raises:
        AuthenticationError: ``invalid user name or password`` (either).
    """
    row = None
    if present(reader.catalog) and len(password) <= MAX_PASSWORD:
        row = reader.catalog.query_one(
            "SELECT name, role, grp, hash FROM api_users WHERE name = ?", (name,)
        )
    stored = _dummy_hash() if row is None else str(row[3])
    ok = _verify(stored, password)
    if not ok or row is None:
        raise AuthenticationError("invalid user name or password")
    if writer is not None and _HASHER.check_needs_rehash(stored):
        fresh = _hash(password)

        def job(vault: Vault) -> None:
            with vault.catalog.transaction(f"rehashing the password of {name}"):
                vault.catalog.execute(
                    "UPDATE api_users SET hash = ? WHERE name = ? AND hash = ?",
                    (fresh, name, stored),
                )

        on_writer(writer, job)
    return _principal(tuple(row), groups)


@functools.cache
def _dummy_hash() -> str:
    """A hash of a random password, verified for an unknown user (made on first use, not import)."""
    return _hash(secrets.token_urlsafe(16))


def token_secret(vault_path: Path) -> bytes:
    """The vault's HS256 secret (32 random bytes), created with mode 0600 on first use.

    Raises:
        StorageError: the file cannot be created or read, or it is readable
            by others than its owner (mode not 0600), or it is not 32 bytes.
    """
    path = Path(vault_path) / TOKEN_SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise StorageError(f"{path}: cannot create the token secret: {exc.strerror}") from None
    else:
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(32))
            fh.flush()
            os.fsync(fh.fileno())
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        data = path.read_bytes()
    except OSError as exc:
        raise StorageError(f"{path}: cannot read the token secret: {exc.strerror}") from None
    if mode & 0o077:
        raise StorageError(f"{path}: mode {mode:04o}, expected 0600 (chmod 600 it)")
    if len(data) != 32:
        raise StorageError(f"{path}: {len(data)} bytes, expected 32 (remove it to make a new one)")
    return data


class TokenIssuer:
    """Issues and verifies the JWT access tokens of one vault.

    Args:
        reader: the vault (its token secret; its users, re-read at each verification).
        issuer: the ``iss`` claim (the vault's origin).
        groups: ``[api.groups]``.
        clock: POSIX seconds.

    Raises:
        StorageError: the token secret cannot be read or made (:func:`token_secret`).
    """

    def __init__(
        self,
        reader: Vault,
        issuer: str,
        groups: Mapping[str, list[str]],
        clock: Callable[[], float],
    ) -> None:
        self._reader = reader
        self._secret = token_secret(reader.path)
        self.issuer = issuer
        self._groups = groups
        self._clock = clock

    def __repr__(self) -> str:
        return f"TokenIssuer(issuer={self.issuer!r})"  # never the secret

    def issue_token(self, principal: Principal, ttl: float) -> str:
        """A signed access token for user ``principal``, valid ``ttl`` seconds.

        Claims: ``sub`` (the user's name), ``iss``, ``aud`` (:data:`AUDIENCE`),
        ``iat``, ``nbf``, ``exp`` (RFC 7519 §4.1), ``jti``.

        Raises:
            RequestError: ``principal`` is not a user, or ``ttl`` is not positive.
        """
        if principal.kind != "user":
            raise RequestError(f"tokens are issued to users, not to a {principal.kind}")
        if not ttl > 0:
            raise RequestError(f"token ttl {ttl!r}: must be positive seconds")
        now = int(self._clock())
        claims = {
            "sub": principal.name,
            "iss": self.issuer,
            "aud": AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": now + int(ttl),
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify_token(self, token: str) -> Principal:
        """The principal of access token ``token``, or raise.

        Checks (PyJWT ``decode`` with ``algorithms=["HS256"]``): the signature,
        ``exp`` and ``nbf`` (at the clock), ``iat``, ``aud``, ``iss``, the
        required claims; then that the user still exists (its role as now).

        Raises:
            AuthenticationError: any check failed (the message says which, never the token).
        """
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "nbf", "aud", "iss", "sub"]},
                leeway=0,
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("access token expired") from None
        except jwt.InvalidTokenError as exc:
            raise AuthenticationError(f"invalid access token ({type(exc).__name__})") from None
        now = self._clock()
        if not isinstance(claims.get("exp"), int) or claims["exp"] <= now:
            raise AuthenticationError("access token expired")
        sub = claims.get("sub")
        row = None
        if isinstance(sub, str) and present(self._reader.catalog):
            row = self._reader.catalog.query_one(
                "SELECT name, role, grp FROM api_users WHERE name = ?", (sub,)
            )
        if row is None:
            raise AuthenticationError("access token of an unknown user")
        return _principal(tuple(row), self._groups)
