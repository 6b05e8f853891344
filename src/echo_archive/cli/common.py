"""What every ``echoctl`` command module shares: consoles, options, errors, JSON output.

This is the one place that finds the vault a command works on
(:func:`vault_dir`) and reads the global ``--break-lock`` (:func:`break_lock`).

Exit codes (all commands): 0 success; 1 the vault or a check failed, or the
request could not be done (the message names what and where); 2 bad usage,
including a feed parameter its source rejects.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from echo_archive.errors import EchoError, RequestError, SourceError
from echo_archive.redaction import redact_text
from echo_archive.services.vaults import open_vault as _open_vault
from echo_archive.services.vaults import open_writer as _open_writer
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
    "errors",
    "fail",
    "open_vault",
    "open_writer",
    "out",
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


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr (redacted, markup escaped) and exit with ``code``."""
    err.print(f"[bold red]error:[/] {escape(redact_text(message))}")
    raise typer.Exit(code)


@contextmanager
def errors() -> Iterator[None]:
    """Turn ECHO errors into an error message: exit 2 for a bad request or parameter, else 1."""
    try:
        yield
    except (RequestError, SourceError) as exc:
        fail(str(exc), 2)
    except EchoError as exc:
        fail(str(exc))


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
