"""``echoctl``: the command line, thin shells over the library.

The package holds the Typer app and its global options (this module), what
every command shares (:mod:`echo_archive.cli.common`: consoles, ``--vault`` and
``--json``, error exits, JSON output, the one way to find the vault) and one
module per command group:

- :mod:`echo_archive.cli.vault`: ``init``, ``add``, ``verify``, ``checkpoint``,
  ``log inclusion|consistency``, ``prove``, ``verify-proof``;
- :mod:`echo_archive.cli.feeds`: ``feeds add|list|remove|enable|disable``;
- :mod:`echo_archive.cli.harvest`: ``harvest``, ``breakers``;
- :mod:`echo_archive.cli.items`: ``items``, ``show``;
- :mod:`echo_archive.cli.reports`: ``reports``;
- :mod:`echo_archive.cli.imports`: ``import``.

Every command takes ``--vault PATH`` (default ``echoctl --vault``, else
``$ECHO_VAULT``, else ``./vault``) and most take ``--json`` for
machine-readable output. Exit codes: 0 success; 1 a check failed or the vault
could not do what was asked (the message says what and where); 2 bad usage;
3 (``harvest``) every due feed failed.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated, Any

import structlog
import typer

from echo_archive import __version__
from echo_archive.cli import harvest as _harvest
from echo_archive.cli import imports as _imports
from echo_archive.cli import items as _items
from echo_archive.cli import reports as _reports
from echo_archive.cli import vault as _vault
from echo_archive.cli.common import VaultOpt, fail, out
from echo_archive.cli.feeds import feeds_app
from echo_archive.redaction import redact_event

__all__ = ["app", "main"]

app = typer.Typer(
    name="echoctl",
    help="ECHO: a verifiable signal archive. Archive records into an append-only, "
    "signed Merkle-tree log and prove them offline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(_vault.log_app, name="log")
app.add_typer(feeds_app, name="feeds")
# The order of ``echoctl --help``: the harvesting commands, then the vault's.
_harvest.register_harvest(app)
_items.register(app)
_harvest.register_breakers(app)
_reports.register(app)
_imports.register(app)
_vault.register(app)


class _StderrLogger:
    """A structlog logger that writes each line to the *current* ``sys.stderr``."""

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


def _stderr_logger(*_args: Any) -> _StderrLogger:
    return _StderrLogger()


def _configure_logging(level: str) -> None:
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_event,  # no log line shows a credential (DESIGN.md invariant 9)
            structlog.processors.JSONRenderer(sort_keys=True),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )


def _version(value: bool) -> None:
    if value:
        out.print(f"echoctl {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    vault: VaultOpt = None,
    break_lock: Annotated[
        bool,
        typer.Option(
            "--break-lock",
            help="Take over a writer lock left by a process on another host "
            "(make sure it is gone).",
        ),
    ] = False,
    log_level: Annotated[
        str,
        typer.Option("--log-level", help="JSON log level on stderr: debug, info, warning, error."),
    ] = "warning",
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """ECHO: archive records into a signed, append-only Merkle-tree log and prove them offline."""
    # ``--vault`` and ``--break-lock`` are read by each command from the root
    # context (:func:`echo_archive.cli.common.vault_dir`, ``break_lock``).
    if log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        fail(f"--log-level {log_level!r}: expected debug, info, warning or error", 2)
    _configure_logging(log_level)


def main() -> None:
    """Entry point of the ``echoctl`` console script."""
    app()
