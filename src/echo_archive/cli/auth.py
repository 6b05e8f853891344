"""``echoctl keys``, ``echoctl users``, ``echoctl audit`` and ``echoctl breakglass``.

Thin shells over :mod:`echo_archive.api` (API keys, users, the audit trail,
break-glass). Registered on the main app by :mod:`echo_archive.cli`. A new
key is printed once, to its creator, and never again; no command prints a
hash; passwords are read with a hidden prompt (or from stdin when it is not a
terminal), never from argv. Names from the catalog are printed through
:func:`~echo_archive.cli.common.safe`.
"""

from __future__ import annotations

import getpass
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from echo_archive.api.audit import cli_actor, list_audit
from echo_archive.api.breakglass import start as start_breakglass
from echo_archive.api.keys import create_key, list_keys, revoke_key
from echo_archive.api.roles import Principal, parse_role
from echo_archive.api.router import parse_expiry
from echo_archive.api.users import (
    MAX_PASSWORD,
    add_user,
    list_users,
    remove_user,
    set_password,
)
from echo_archive.cli.common import (
    JsonOpt,
    VaultOpt,
    WaitOpt,
    compact_table,
    emit,
    errors,
    fail,
    open_vault,
    open_writer,
    out,
    safe,
    vault_dir,
)
from echo_archive.config import load_config
from echo_archive.control.alerts import rfc3339
from echo_archive.errors import RequestError
from echo_archive.vault.lock import DEFAULT_WAIT

__all__ = ["keys_app", "register", "users_app"]

keys_app = typer.Typer(
    help="API keys for programs using the HTTP API (only a hash is stored).",
    no_args_is_help=True,
)
users_app = typer.Typer(
    help="Users (people) of the HTTP API, with argon2id password hashes.",
    no_args_is_help=True,
)

RoleOpt = Annotated[
    str, typer.Option("--role", metavar="ROLE", help="viewer, analyst, editor or admin.")
]
GroupOpt = Annotated[
    str | None,
    typer.Option(
        "--group",
        metavar="GROUP",
        help="Scope the role to a feed group of \\[api.groups] in echo.toml.",
    ),
]


def _groups(ctx: typer.Context, vault: Path | None) -> dict[str, list[str]]:
    """``[api.groups]`` of the vault's ``echo.toml`` (none without the file)."""
    toml = vault_dir(ctx, vault) / "echo.toml"
    return dict(load_config(toml).api.groups) if toml.is_file() else {}


def _when(epoch: float | None) -> str:
    return "-" if epoch is None else rfc3339(epoch).split(".")[0] + "Z"


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Argument(help="A unique name for the key (letters, digits, . _ -).")
    ],
    role: RoleOpt,
    group: GroupOpt = None,
    expires: Annotated[
        str | None,
        typer.Option(
            "--expires",
            metavar="DURATION_OR_RFC3339",
            help="When it stops working: a duration from now (90d, 12h) or an RFC 3339 time.",
        ),
    ] = None,
    vault: VaultOpt = None,
    wait: WaitOpt = DEFAULT_WAIT,
    as_json: JsonOpt = False,
) -> None:
    r"""Create an API key and print it, this once: only its SHA-256 is stored.

    The key (``echo_<key id>_<secret>``, 256 random bits) goes in
    ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``. ``--role`` gives
    what it may do (see "Who may do what" in the README); ``--group`` scopes
    it to the feeds of a group of ``\[api.groups]``. The creation is an
    ``audit`` entry. --json: ``{"key", "record"}`` (the record as ``keys list
    --json`` prints it).
    """
    now = time.time()
    with errors():
        try:
            parsed_role = parse_role(role)
        except ValueError as exc:
            raise RequestError(f"--role: {exc}") from None
        expires_at = None if expires is None else parse_expiry(expires, now)
        groups = _groups(ctx, vault)
        with open_writer(ctx, vault, wait) as w:
            key, rec = create_key(
                w,
                name,
                parsed_role,
                now=now,
                group=group,
                groups=groups,
                expires_at=expires_at,
                actor=cli_actor(),
            )
    if as_json:
        emit({"key": key, "record": rec.to_json(now)})
        return
    out.print(f"API key {safe(rec.name)} (id {rec.id}, role {rec.role.label}) created.")
    out.print("Store it now: it is shown this once and cannot be recovered.")
    out.out(key, highlight=False)


@keys_app.command("list")
def keys_list(ctx: typer.Context, vault: VaultOpt = None, as_json: JsonOpt = False) -> None:
    """List the API keys: name, id, role, group, state, created, expires, last used.

    Never a key or its hash. State is ``active``, ``expired`` or
    ``revoked``; last use is kept to the minute. --json: a list of records
    (``id``, ``name``, ``role``, ``group``, ``state``, times in POSIX seconds
    and RFC 3339, ``created_by``).
    """
    now = time.time()
    with errors(), open_vault(ctx, vault) as v:
        found = list_keys(v)
    if as_json:
        emit([k.to_json(now) for k in found])
        return
    table = compact_table(f"{len(found)} API key(s)")
    for col in ("name", "id", "role", "group", "state", "created", "expires", "last used"):
        table.add_column(col, overflow="fold")
    for k in found:
        table.add_row(
            safe(k.name),
            k.id,
            k.role.label,
            safe(k.group or "-"),
            k.state(now),
            _when(k.created_at),
            _when(k.expires_at),
            _when(k.last_used_at),
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    ctx: typer.Context,
    name_or_id: Annotated[str, typer.Argument(metavar="NAME_OR_ID", help="The key's name or id.")],
    reason: Annotated[
        str, typer.Option("--reason", metavar="TEXT", help="Why (kept in the audit entry).")
    ] = "",
    vault: VaultOpt = None,
    wait: WaitOpt = DEFAULT_WAIT,
    as_json: JsonOpt = False,
) -> None:
    """Revoke an API key: the next request presenting it gets 401.

    Audited (``key.revoke``). A key already revoked stays as it was; an
    unknown one is an error (exit 1). --json: its record.
    """
    now = time.time()
    with errors(), open_writer(ctx, vault, wait) as w:
        rec = revoke_key(w, name_or_id, now=now, actor=cli_actor(), reason=reason)
    if as_json:
        emit(rec.to_json(now))
        return
    out.print(f"API key {safe(rec.name)} (id {rec.id}) revoked at {_when(rec.revoked_at)}")


def _read_password(confirm: bool) -> str:
    """A password from a hidden prompt (twice), or the first line of stdin when piped."""
    if not sys.stdin.isatty():
        line = sys.stdin.readline(MAX_PASSWORD + 2)
        return line.removesuffix("\n").removesuffix("\r")
    first = getpass.getpass("Password: ")
    if confirm and getpass.getpass("Password again: ") != first:
        fail("the two passwords differ", 2, kind="request")
    return first


@users_app.command("add")
def users_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user's name (letters, digits, . _ -).")],
    role: RoleOpt,
    group: GroupOpt = None,
    vault: VaultOpt = None,
    wait: WaitOpt = DEFAULT_WAIT,
    as_json: JsonOpt = False,
) -> None:
    """Add a user; the password is read with a hidden prompt (or from stdin), never argv.

    Stored as an argon2id hash (RFC 9106 parameters). The user gets access
    tokens from ``POST /v1/token``. Audited (``user.add``). --json: the user
    (``name``, ``role``, ``group``, times).
    """
    now = time.time()
    with errors():
        try:
            parsed_role = parse_role(role)
        except ValueError as exc:
            raise RequestError(f"--role: {exc}") from None
        groups = _groups(ctx, vault)
        password = _read_password(confirm=True)
        with open_writer(ctx, vault, wait) as w:
            rec = add_user(
                w,
                name,
                parsed_role,
                password,
                now=now,
                actor=cli_actor(),
                group=group,
                groups=groups,
            )
    if as_json:
        emit(rec.to_json())
        return
    out.print(f"user {safe(rec.name)} added (role {rec.role.label})")


@users_app.command("list")
def users_list(ctx: typer.Context, vault: VaultOpt = None, as_json: JsonOpt = False) -> None:
    """List the users: name, role, group, created, updated (never a hash).

    --json: a list of users (``name``, ``role``, ``group``, ``created_at``,
    ``updated_at`` in POSIX seconds).
    """
    with errors(), open_vault(ctx, vault) as v:
        found = list_users(v)
    if as_json:
        emit([u.to_json() for u in found])
        return
    table = compact_table(f"{len(found)} user(s)")
    for col in ("name", "role", "group", "created", "updated"):
        table.add_column(col, overflow="fold")
    for u in found:
        table.add_row(
            safe(u.name),
            u.role.label,
            safe(u.group or "-"),
            _when(u.created_at),
            _when(u.updated_at),
        )
    out.print(table)


@users_app.command("remove")
def users_remove(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user's name.")],
    vault: VaultOpt = None,
    wait: WaitOpt = DEFAULT_WAIT,
    as_json: JsonOpt = False,
) -> None:
    """Remove a user: their access tokens stop working at once. Audited (``user.remove``).

    --json: ``{"removed": NAME}``.
    """
    with errors(), open_writer(ctx, vault, wait) as w:
        remove_user(w, name, actor=cli_actor())
    if as_json:
        emit({"removed": name})
        return
    out.print(f"user {safe(name)} removed")


@users_app.command("passwd")
def users_passwd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user's name.")],
    vault: VaultOpt = None,
    wait: WaitOpt = DEFAULT_WAIT,
    as_json: JsonOpt = False,
) -> None:
    """Set a user's password (hidden prompt, or stdin). Audited (``user.passwd``).

    --json: ``{"user": NAME, "changed": true}``.
    """
    now = time.time()
    with errors():
        password = _read_password(confirm=True)
        with open_writer(ctx, vault, wait) as w:
            set_password(w, name, password, now=now, actor=cli_actor())
    if as_json:
        emit({"user": name, "changed": True})
        return
    out.print(f"password of {safe(name)} changed")


def audit(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="RFC3339", help="Only entries logged at or after it."),
    ] = None,
    actor: Annotated[
        str | None,
        typer.Option(
            "--actor", metavar="NAME", help="Only this actor's (key:ci, cli:alice, or a name)."
        ),
    ] = None,
    vault: VaultOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the audit trail: the ``audit`` entries of the log, oldest first.

    Every key or user change and every break-glass use, each validated
    against its schema as it is read: index, time, actor, action, target,
    outcome, reason. Provable like any entry (``echoctl prove INDEX``).
    --json: a list of ``{"index", "logged_at", "actor", "action", "target",
    "outcome", "reason", "request_id", "details"}``.
    """
    with errors(), open_vault(ctx, vault) as v:
        found = list_audit(v, since=since, actor=actor)
    if as_json:
        emit([e.to_json() for e in found])
        return
    table = compact_table(f"{len(found)} audit entr{'y' if len(found) == 1 else 'ies'}")
    for col in ("index", "logged at", "actor", "action", "target", "outcome", "reason"):
        table.add_column(col, overflow="fold")
    for e in found:
        table.add_row(
            str(e.index),
            e.logged_at.split(".")[0] + "Z",
            safe(e.actor),
            safe(e.action),
            safe(e.target),
            e.outcome,
            safe(e.reason),
        )
    out.print(table)


def breakglass(
    ctx: typer.Context,
    reason: Annotated[
        str, typer.Option("--reason", metavar="TEXT", help="Why the emergency access (required).")
    ],
    for_: Annotated[
        str,
        typer.Option(
            "--for", metavar="KIND:NAME", help="The admin it elevates: key:NAME or user:NAME."
        ),
    ],
    minutes: Annotated[
        int, typer.Option("--minutes", metavar="N", help="How long it lasts (1 to 240).")
    ] = 30,
    vault: VaultOpt = None,
    wait: WaitOpt = DEFAULT_WAIT,
    as_json: JsonOpt = False,
) -> None:
    """Give an unscoped admin key or user a time-boxed emergency elevation, with a reason.

    While it lasts the admin also holds the break-glass permissions
    (``operations:admin``, ``items:admin``). Every use is an ``audit`` entry
    (``breakglass.start``; refused attempts too). --json: the elevation
    (``id``, ``actor``, ``reason``, ``started_at``, ``ends_at``, ``entry``).
    """
    now = time.time()
    with errors():
        kind, _, name = for_.partition(":")
        with open_vault(ctx, vault) as v:
            if kind == "key":
                matches = [(k.role, k.group) for k in list_keys(v) if k.name == name]
            elif kind == "user":
                matches = [(u.role, u.group) for u in list_users(v) if u.name == name]
            else:
                raise RequestError(f"--for {for_!r}: expected key:NAME or user:NAME")
        if not matches:
            raise RequestError(f"--for {for_!r}: no such {kind}")
        role, group = matches[0]
        principal = Principal(
            name=name,
            kind="key" if kind == "key" else "user",
            role=role,
            group=group,
            feeds=None if group is None else frozenset(),
        )
        with open_writer(ctx, vault, wait) as w:
            found = start_breakglass(
                w, principal, reason=reason, minutes=minutes, now=now, actor=cli_actor()
            )
    if as_json:
        emit(found.to_json())
        return
    out.print(
        f"break-glass for {safe(found.actor)} until {_when(found.ends_at)} "
        f"(audit entry {found.entry})"
    )


def register(app: typer.Typer) -> None:
    """Add ``keys``, ``users``, ``audit`` and ``breakglass`` to ``app``."""
    app.add_typer(keys_app, name="keys")
    app.add_typer(users_app, name="users")
    app.command("audit")(audit)
    app.command("breakglass")(breakglass)
