"""What every ``echoctl`` command module shares: consoles, options, errors, JSON output.

This is the one place that finds the vault a command works on
(:func:`vault_dir`) and reads the global ``--break-lock`` (:func:`break_lock`).

Exit codes (all commands): 0 success; 1 the vault or a check failed, or the
request could not be done (the message names what and where); 2 bad usage,
including a feed parameter its source rejects.

Text from outside (titles, URLs, file names, server messages) goes through
:func:`safe` (markup-escaped :func:`echo_archive.terminal.inert`) before it is
printed; ``--json`` output never does (the exact strings). With ``--json``,
errors are printed as JSON on stderr (:func:`error_json`); stdout then stays
empty, so it only ever holds a command's result.
"""

from __future__ import annotations

import getpass
import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer._click.globals import get_current_context  # Typer vendors Click

from echo_archive.errors import EchoError, RequestError, SourceError
from echo_archive.redaction import redact_text
from echo_archive.services.vaults import open_vault as _open_vault
from echo_archive.services.vaults import open_writer as _open_writer
from echo_archive.terminal import inert
from echo_archive.vault.vault import Vault, default_vault_path
from echo_archive.vault.writer import VaultWriter

__all__ = [
    "JsonOpt",
    "VaultOpt",
    "WaitOpt",
    "break_lock",
    "compact_table",
    "emit",
    "err",
    "error_json",
    "errors",
    "fail",
    "login_name",
    "open_vault",
    "open_writer",
    "out",
    "safe",
    "vault_dir",
]

out = Console(highlight=False, soft_wrap=True, emoji=False)  # ":a:" in an id stays text
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)

VaultOpt = Annotated[
    Path | None,
    typer.Option(
        "--vault",
        help="Vault directory (default: echoctl --vault, else $ECHO_VAULT, else ./vault).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
WaitOpt = Annotated[
    float,
    typer.Option(
        "--wait",
        min=0.0,
        metavar="SECONDS",
        help="Seconds to wait for another process writing to the vault to finish its batch, "
        "then fail naming it (exit 1); 0: do not wait.",
    ),
]
"""``--wait SECONDS`` of every command that writes (default
:data:`~echo_archive.vault.lock.DEFAULT_WAIT`, 5 s)."""


def safe(value: object) -> str:
    r"""``value`` as text safe to print through Rich markup on a terminal.

    Control, bidi/format characters shown escaped (:func:`echo_archive.terminal.inert`:
    ``ESC`` prints as ``\x1b``, U+202E as ``\u202e``), then Rich markup escaped
    (``[bold]`` prints literally). Use it for every string that came from a
    source, a file name or a server, in any human (non ``--json``) output.

    Args:
        value: any value (``str(value)`` is printed).

    Returns:
        The text to put in a Rich markup string or table cell.
    """
    return escape(inert(str(value)))


def _snake(name: str) -> str:
    """``VaultLockedError`` -> ``vault_locked``; ``UsageError`` -> ``usage``."""
    name = name.removesuffix("Error").removesuffix("Exception") or name
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _wants_json() -> bool:
    """Whether the command running was given ``--json`` (its ``as_json`` parameter)."""
    ctx = get_current_context(silent=True)
    while ctx is not None:
        if ctx.params.get("as_json") is True:
            return True
        ctx = ctx.parent
    return False


def error_json(
    *, code: str, exit_code: int, message: str, what: str | None, command: str | None
) -> dict[str, Any]:
    """The JSON form of an error, as ``--json`` prints it on stderr.

    ``{"error": {"code", "exit", "message", "what", "where"}}``: ``code`` a
    stable snake-case name of the error (``not_found``, ``request``,
    ``cursor``, ``vault_locked``, ``no_such_option``, ``bad_parameter``...),
    ``exit`` the process exit code (1 or 2), ``message`` the whole message
    (redacted, exact text: not made inert, JSON escapes it), ``what`` the
    parameter or thing that was wrong (``--since``, a path, ``cursor 'x'``) or
    null, ``where`` ``{"command": "echoctl items", "vault": PATH or null}``.

    Args:
        code: the error's name.
        exit_code: the exit code the command ends with.
        message: the message (redacted here).
        what: the subject of the error, if known.
        command: the command path (``echoctl items``), if known.

    Returns:
        The JSON-ready mapping.
    """
    ctx = get_current_context(silent=True)
    vault: str | None = None
    while ctx is not None and vault is None:
        value = ctx.params.get("vault")
        vault = str(value) if isinstance(value, Path) else None
        ctx = ctx.parent
    return {
        "error": {
            "code": code,
            "exit": exit_code,
            "message": redact_text(message),
            "what": None if what is None else redact_text(what),
            "where": {"command": command, "vault": vault},
        }
    }


def _subject(message: str) -> str | None:
    """The subject a message names before its first ``": "`` (ECHO's convention), or None."""
    head, sep, _ = message.partition(": ")
    return head if sep and head else None


def fail(message: str, code: int = 1, *, kind: str = "error") -> NoReturn:
    """Report an error and exit with ``code`` (1, or 2 for bad usage).

    Without ``--json``: ``error: message`` on stderr (redacted, made inert,
    markup escaped). With ``--json``: :func:`error_json` on stderr.

    Args:
        message: what was wrong and where.
        code: the exit code.
        kind: the error's ``code`` in the JSON form (``error`` by default).
    """
    if _wants_json():
        ctx = get_current_context(silent=True)
        doc = error_json(
            code=kind,
            exit_code=code,
            message=message,
            what=_subject(message),
            command=None if ctx is None else ctx.command_path,
        )
        print(json.dumps(doc, sort_keys=True), file=sys.stderr, flush=True)
    else:
        err.print(f"[bold red]error:[/] {safe(redact_text(message))}")
    raise typer.Exit(code)


@contextmanager
def errors() -> Iterator[None]:
    """Turn ECHO errors into an error message: exit 2 for a bad request or parameter, else 1."""
    try:
        yield
    except (RequestError, SourceError) as exc:
        fail(str(exc), 2, kind=_snake(type(exc).__name__))
    except EchoError as exc:
        fail(str(exc), kind=_snake(type(exc).__name__))


def emit(data: Any) -> None:
    """Print ``data`` as indented JSON with sorted keys on stdout."""
    out.out(json.dumps(data, indent=2, sort_keys=True), highlight=False)


def vault_dir(ctx: typer.Context, vault: Path | None) -> Path:
    """The vault: ``--vault``, else ``echoctl --vault``, else ``$ECHO_VAULT``, else ``./vault``.

    Args:
        ctx: the command's context; its root holds ``echoctl --vault``.
        vault: the command's own ``--vault`` option.

    Returns:
        The vault directory.
    """
    if vault is not None:
        return vault
    root = ctx.find_root().params.get("vault")
    return root if isinstance(root, Path) else default_vault_path()


def open_vault(ctx: typer.Context, vault: Path | None) -> Vault:
    """Open the command's vault (:func:`vault_dir`) as a reader: no lock, never waits.

    A command that writes opens the writer with :func:`open_writer` instead.
    Use inside :func:`errors`.

    Raises:
        VaultError: see :func:`echo_archive.services.vaults.open_vault`.
    """
    return _open_vault(vault_dir(ctx, vault))


def open_writer(ctx: typer.Context, vault: Path | None, wait: float) -> VaultWriter:
    """Open the command's vault's writer (the one way a command that writes opens it).

    Honours the global ``--break-lock``. Use inside :func:`errors`.

    Args:
        ctx: the command's context.
        vault: the command's own ``--vault``.
        wait: the command's ``--wait``.

    Raises:
        VaultError: see :func:`echo_archive.services.vaults.open_writer`.
    """
    return _open_writer(vault_dir(ctx, vault), break_stale=break_lock(ctx), wait=wait)


def break_lock(ctx: typer.Context) -> bool:
    """Whether ``echoctl --break-lock`` was given (take over a lock left on another host).

    Args:
        ctx: the command's context; its root holds the global option.

    Returns:
        True when the option was given.
    """
    return ctx.find_root().params.get("break_lock") is True


def compact_table(title: str) -> Table:
    """A table titled ``title``, no vertical rules: a header rule, two spaces between columns."""
    return Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )


def login_name() -> str:
    """Who runs the command, for records that name a person (``--by``, ``--author`` defaults).

    Returns:
        The login name (:func:`getpass.getuser`), or ``unknown`` when none can be found.
    """
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"
