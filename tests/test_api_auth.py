"""The API's authentication and authorization core over real vaults (issue 11, "Who may do what").

Roles x permissions (inheritance, feed-group scope, break-glass), API keys
(hash-only storage, constant-time check, revocation and expiry, last use),
users (argon2id), JWT checks, and the audit entries every change writes.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import argon2
import jwt
import pytest

from echo_archive.api import breakglass
from echo_archive.api.audit import audit_meta, list_audit
from echo_archive.api.keys import KeyStore, create_key, list_keys, revoke_key
from echo_archive.api.roles import (
    ACTIONS,
    KINDS,
    Permission,
    Principal,
    Role,
    authorize,
    parse_role,
)
from echo_archive.api.router import auth_configured
from echo_archive.api.users import (
    TokenIssuer,
    add_user,
    authenticate_password,
    list_users,
    remove_user,
    set_password,
    token_secret,
)
from echo_archive.errors import AuthenticationError, PermissionDenied, RequestError
from echo_archive.vault.vault import Vault
from echo_archive.vault.writer import VaultWriter

# The matrix as the README states it, written out independently of roles.py.
EXPECTED = {
    "viewer": {"items:read", "proofs:read", "feeds:read", "corrections:read"},
    "analyst": {"captures:read", "operations:read"},
    "editor": {"items:write", "feeds:write", "corrections:write", "operations:write"},
    "admin": {
        "feeds:admin",
        "corrections:approve",
        "operations:approve",
        "audit:read",
        "keys:read",
        "keys:admin",
        "users:read",
        "users:admin",
    },
}
ORDER = ["viewer", "analyst", "editor", "admin"]
GROUPS = {"newsroom": ["bbc-world", "hn-top"]}


def held(role: str) -> set[str]:
    out: set[str] = set()
    for r in ORDER[: ORDER.index(role) + 1]:
        out |= EXPECTED[r]
    return out


def who(role: str, feeds: frozenset[str] | None = None) -> Principal:
    return Principal(
        name="p",
        kind="key",
        role=parse_role(role),
        group=None if feeds is None else "newsroom",
        feeds=feeds,
    )


ALL = [f"{k}:{a}" for k in KINDS for a in ACTIONS]


@pytest.mark.parametrize("role", ORDER)
@pytest.mark.parametrize("perm", ALL)
def test_each_role_holds_exactly_its_permissions_with_inheritance(role: str, perm: str) -> None:
    principal = who(role)
    if perm in held(role):
        authorize(principal, Permission.parse(perm))
    else:
        with pytest.raises(PermissionDenied) as caught:
            authorize(principal, Permission.parse(perm))
        assert caught.value.permission == perm
        assert perm in str(caught.value)
        assert role in str(caught.value)


def test_each_role_holds_everything_of_the_one_below() -> None:
    for lower, higher in zip(Role, list(Role)[1:], strict=False):
        assert who(lower.label).permissions(0) < who(higher.label).permissions(0)


def test_a_group_scope_holds_only_for_the_groups_feeds() -> None:
    scoped = who("editor", frozenset(GROUPS["newsroom"]))
    authorize(scoped, Permission("items", "write"), "bbc-world")
    authorize(scoped, Permission("items", "read"))  # a listing, limited by the caller
    authorize(scoped, Permission("proofs", "read"))
    with pytest.raises(PermissionDenied, match=r"feed 'reddit-x'.*newsroom"):
        authorize(scoped, Permission("items", "write"), "reddit-x")
    with pytest.raises(PermissionDenied, match="name a feed"):
        authorize(scoped, Permission("feeds", "write"))
    with pytest.raises(PermissionDenied, match="unscoped"):
        authorize(scoped, Permission("operations", "write"))
    admin = who("admin", frozenset(GROUPS["newsroom"]))
    with pytest.raises(PermissionDenied, match="unscoped"):
        authorize(admin, Permission("keys", "admin"))  # no unscoped key from a scoped admin
    empty = who("viewer", frozenset())  # a group echo.toml no longer defines
    with pytest.raises(PermissionDenied):
        authorize(empty, Permission("items", "read"), "bbc-world")


def test_break_glass_adds_its_permissions_only_while_it_lasts() -> None:
    admin = Principal("root", "user", Role.ADMIN, elevated_until=100.0)
    authorize(admin, Permission("operations", "admin"), now=50.0)
    with pytest.raises(PermissionDenied):
        authorize(admin, Permission("operations", "admin"), now=100.0)
    editor = Principal("ed", "user", Role.EDITOR, elevated_until=100.0)
    with pytest.raises(PermissionDenied):
        authorize(editor, Permission("operations", "admin"), now=50.0)


def test_unknown_permission_and_role_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown resource kind"):
        Permission.parse("blobs:read")
    with pytest.raises(ValueError, match="unknown action"):
        Permission.parse("items:delete")
    with pytest.raises(ValueError, match="roles: viewer, analyst, editor, admin"):
        parse_role("root")


# ---------------------------------------------------------------------------- keys


@pytest.fixture
def writer(vault_path: Path) -> Iterator[VaultWriter]:
    with VaultWriter.open(vault_path) as w:
        yield w


@pytest.fixture
def reader(vault_path: Path, writer: VaultWriter) -> Iterator[Vault]:
    with Vault.open(vault_path, readonly=True) as v:
        yield v


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_key_lifecycle_hash_only_last_use_revocation(
    vault_path: Path, writer: VaultWriter, reader: Vault
) -> None:
    clock = Clock(time.time())
    assert not auth_configured(reader)
    key, rec = create_key(writer, "ci", Role.EDITOR, now=clock.now, actor="cli:test")
    assert key.startswith(f"echo_{rec.id}_")
    assert len(key) == 5 + 16 + 1 + 43
    assert auth_configured(reader)
    store = KeyStore(reader, writer, GROUPS, clock)
    principal = store.authenticate(key)
    assert (principal.name, principal.role, principal.key_id) == ("ci", Role.EDITOR, rec.id)
    for f in store.pending:
        f.result()
    (stored,) = list_keys(reader)
    assert stored.last_used_at == clock.now
    # a busy key does not write again within the minute
    clock.now += 30
    store.authenticate(key)
    for f in store.pending:
        f.result()
    assert list_keys(reader)[0].last_used_at == stored.last_used_at
    clock.now += 31
    store.authenticate(key)
    for f in store.pending:
        f.result()
    assert list_keys(reader)[0].last_used_at == clock.now
    # only the hash is stored: no file of the vault holds the key text
    writer.flush()
    for path in vault_path.rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path
    # a wrong secret with the right id, and a malformed key, are refused
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    with pytest.raises(AuthenticationError, match="unknown API key"):
        store.authenticate(forged)
    with pytest.raises(AuthenticationError, match="malformed"):
        store.authenticate("echo_\x1b[2J")
    # revoked: refused at the next check
    revoke_key(writer, "ci", now=clock.now, actor="cli:test", reason="rotated")
    with pytest.raises(AuthenticationError, match="revoked"):
        store.authenticate(key)
    assert not auth_configured(reader)


def test_an_expired_key_is_refused(writer: VaultWriter, reader: Vault) -> None:
    clock = Clock(time.time())
    key, _ = create_key(
        writer, "short", Role.VIEWER, now=clock.now, expires_at=clock.now + 10, actor="cli:t"
    )
    store = KeyStore(reader, writer, GROUPS, clock)
    store.authenticate(key)
    clock.now += 10
    with pytest.raises(AuthenticationError, match="expired"):
        store.authenticate(key)


def test_key_creation_refuses_bad_input(writer: VaultWriter) -> None:
    now = time.time()
    with pytest.raises(RequestError, match="key name"):
        create_key(writer, "evil\x1b[31m", Role.ADMIN, now=now, actor="t")
    with pytest.raises(RequestError, match=r"not in \[api.groups\]"):
        create_key(writer, "k", Role.ADMIN, now=now, group="nope", groups=GROUPS, actor="t")
    with pytest.raises(RequestError, match="not in the future"):
        create_key(writer, "k", Role.ADMIN, now=now, expires_at=now - 1, actor="t")
    create_key(writer, "k", Role.ADMIN, now=now, actor="t")
    with pytest.raises(RequestError, match="already used"):
        create_key(writer, "k", Role.VIEWER, now=now, actor="t")


def test_a_scoped_key_gets_its_groups_feeds(writer: VaultWriter, reader: Vault) -> None:
    now = time.time()
    key, _ = create_key(
        writer, "news", Role.ANALYST, now=now, group="newsroom", groups=GROUPS, actor="t"
    )
    found = KeyStore(reader, None, GROUPS, lambda: now).authenticate(key)
    assert found.group == "newsroom"
    assert found.feeds == frozenset(GROUPS["newsroom"])


# ---------------------------------------------------------------------------- users and JWT


def test_users_argon2id_verify_wrong_password_fails_and_rehash(
    vault_path: Path, writer: VaultWriter, reader: Vault
) -> None:
    now = time.time()
    add_user(writer, "alice", Role.ADMIN, "correct horse", now=now, actor="cli:t")
    (row,) = reader.catalog.query("SELECT hash FROM api_users WHERE name = 'alice'")
    assert str(row[0]).startswith("$argon2id$")
    found = authenticate_password(reader, "alice", "correct horse", groups={})
    assert found.role is Role.ADMIN
    assert found.kind == "user"
    with pytest.raises(AuthenticationError, match="invalid user name or password"):
        authenticate_password(reader, "alice", "wrong horse", groups={})
    with pytest.raises(AuthenticationError, match="invalid user name or password"):
        authenticate_password(reader, "bob", "correct horse", groups={})
    with pytest.raises(RequestError, match="password"):
        add_user(writer, "short", Role.VIEWER, "x", now=now, actor="t")
    # a hash made with weaker parameters is replaced at the next login
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    writer.submit(
        lambda v: v.catalog.execute(
            "UPDATE api_users SET hash = ? WHERE name = 'alice'", (weak.hash("correct horse"),)
        )
    ).result()
    authenticate_password(reader, "alice", "correct horse", groups={}, writer=writer)
    (row,) = reader.catalog.query("SELECT hash FROM api_users WHERE name = 'alice'")
    assert not argon2.PasswordHasher().check_needs_rehash(str(row[0]))
    set_password(writer, "alice", "battery staple", now=now, actor="cli:t")
    authenticate_password(reader, "alice", "battery staple", groups={})
    for path in vault_path.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"correct horse" not in data
            assert b"battery staple" not in data
    remove_user(writer, "alice", actor="cli:t")
    assert list_users(reader) == []


def _b64(doc: dict[str, object]) -> str:
    raw = json.dumps(doc, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_jwt_checks_signature_expiry_audience_and_algorithm(
    vault_path: Path, writer: VaultWriter, reader: Vault
) -> None:
    now = time.time()
    add_user(writer, "alice", Role.EDITOR, "correct horse", now=now, actor="cli:t")
    issuer = TokenIssuer(reader, reader.origin, {}, time.time)
    user = authenticate_password(reader, "alice", "correct horse", groups={})
    token = issuer.issue_token(user, 900)
    assert issuer.verify_token(token).name == "alice"
    assert (vault_path / "api-token.key").stat().st_mode & 0o777 == 0o600
    secret = token_secret(vault_path)
    claims = jwt.decode(token, secret, algorithms=["HS256"], audience="echo-api")
    bad = {
        "wrong signature": jwt.encode(claims, b"x" * 32, algorithm="HS256"),
        "wrong audience": jwt.encode({**claims, "aud": "other"}, secret, algorithm="HS256"),
        "wrong issuer": jwt.encode({**claims, "iss": "evil"}, secret, algorithm="HS256"),
        "other HMAC algorithm": jwt.encode(claims, secret * 2, algorithm="HS512"),
        "alg none": _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(claims) + ".",
        "RS256 header": _b64({"alg": "RS256", "typ": "JWT"})
        + "."
        + _b64(claims)
        + "."
        + token.rsplit(".", 1)[1],
        "no exp": jwt.encode(
            {k: v for k, v in claims.items() if k != "exp"}, secret, algorithm="HS256"
        ),
    }
    for what, forged in bad.items():
        with pytest.raises(AuthenticationError, match="invalid access token") as caught:
            issuer.verify_token(forged)
        assert forged not in str(caught.value), what
    past = TokenIssuer(reader, reader.origin, {}, lambda: now - 3600)
    with pytest.raises(AuthenticationError, match="expired"):
        issuer.verify_token(past.issue_token(user, 60))
    remove_user(writer, "alice", actor="cli:t")
    with pytest.raises(AuthenticationError, match="unknown user"):
        issuer.verify_token(token)
    with pytest.raises(RequestError, match="users"):
        issuer.issue_token(Principal("k", "key", Role.ADMIN), 60)
    assert secret.hex() not in repr(issuer)
    assert repr(secret) not in repr(issuer)


# ---------------------------------------------------------------------------- audit


def test_every_change_is_an_audit_entry_read_back_validated_and_secret_free(
    writer: VaultWriter, reader: Vault
) -> None:
    now = time.time()
    key, rec = create_key(writer, "ci", Role.ADMIN, now=now, actor="cli:alice")
    revoke_key(writer, rec.id, now=now, actor="cli:alice", reason="leaked")
    add_user(writer, "bob", Role.ADMIN, "correct horse", now=now, actor="cli:alice")
    set_password(writer, "bob", "battery staple", now=now, actor="cli:alice")
    bob = Principal("bob", "user", Role.ADMIN)
    breakglass.start(writer, bob, reason="restore after disk failure", minutes=5, now=now)
    viewer = Principal("eve", "key", Role.VIEWER)
    with pytest.raises(PermissionDenied, match="unscoped admin"):
        breakglass.start(writer, viewer, reason="let me in please", minutes=5, now=now)
    remove_user(writer, "bob", actor="cli:alice")
    entries = list_audit(reader)
    assert [(e.action, e.outcome) for e in entries] == [
        ("key.create", "ok"),
        ("key.revoke", "ok"),
        ("user.add", "ok"),
        ("user.passwd", "ok"),
        ("breakglass.start", "ok"),
        ("breakglass.start", "refused"),
        ("user.remove", "ok"),
    ]
    assert entries[1].reason == "leaked"
    assert entries[0].details["key_id"] == rec.id
    assert [e.action for e in list_audit(reader, actor="bob")] == ["breakglass.start"]
    assert len(list_audit(reader, actor="cli:alice")) == 5
    assert list_audit(reader, since="2999-01-01T00:00:00Z") == []
    for e in entries:
        raw = reader.entry(e.index).raw
        for secret in (key, "correct horse", "battery staple", key.rsplit("_", 1)[1]):
            assert secret.encode() not in raw
    assert [e.actor for e in breakglass.active_elevations(reader, now + 1)] == ["user:bob"]
    assert breakglass.active_elevations(reader, now + 301) == []
    with pytest.raises(ValueError, match="secret"):
        audit_meta("cli:x", "key.create", details={"password": "x"})
    with pytest.raises(RequestError):
        list_audit(reader, since="yesterday")


# ---------------------------------------------------------------------------- [api]


def test_api_section_reads_validates_and_renders(vault_path: Path) -> None:
    from echo_archive.config import load_config, render
    from echo_archive.errors import ConfigError

    toml = vault_path / "echo.toml"
    base = toml.read_text()
    assert load_config(toml).api.token_ttl == 900
    assert load_config(toml).api.rate_limit == 1000
    assert load_config(toml).api.public == []
    toml.write_text(
        base + '\n[api]\npublic = ["proofs"]\ntoken_ttl = 60\n[api.groups]\nnewsroom = ["a"]\n'
    )
    config = load_config(toml)
    assert config.api.groups == {"newsroom": ["a"]}
    assert config.api.public == ["proofs"]
    toml.write_text(render(config))
    assert load_config(toml).api == config.api  # a rewrite of echo.toml keeps [api]
    toml.write_text(base + '\n[api]\npublic = ["items"]\n')
    with pytest.raises(ConfigError, match="unknown route group items"):
        load_config(toml)
    toml.write_text(base + '\n[api.groups]\n"bad group" = []\n')
    with pytest.raises(ConfigError, match="group 'bad group'"):
        load_config(toml)


def test_no_change_stands_without_its_audit_entry(
    writer: VaultWriter, reader: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    from echo_archive.api import tables
    from echo_archive.errors import StorageError

    def fail(*_: object) -> int:
        raise StorageError("log: disk full (injected)")

    monkeypatch.setattr(tables, "record", fail)
    with pytest.raises(StorageError, match="injected"):
        create_key(writer, "ci", Role.ADMIN, now=time.time(), actor="cli:t")
    with pytest.raises(StorageError, match="injected"):
        add_user(writer, "bob", Role.ADMIN, "correct horse", now=time.time(), actor="cli:t")
    assert list_keys(reader) == []
    assert list_users(reader) == []
    assert list_audit(reader) == []


def test_a_scoped_listing_is_limited_to_the_groups_feeds() -> None:
    from echo_archive.api.roles import listing_feeds

    read = Permission("items", "read")
    scoped = who("viewer", frozenset(GROUPS["newsroom"]))
    assert listing_feeds(scoped, read) == frozenset({"bbc-world", "hn-top"})
    assert listing_feeds(scoped, read, "hn-top") == frozenset({"hn-top"})
    with pytest.raises(PermissionDenied, match="reddit-x"):
        listing_feeds(scoped, read, "reddit-x")
    assert listing_feeds(who("viewer"), read) is None
    assert listing_feeds(who("viewer"), read, "reddit-x") == frozenset({"reddit-x"})
    with pytest.raises(PermissionDenied, match="captures:read"):
        listing_feeds(who("viewer"), Permission("captures", "read"))
