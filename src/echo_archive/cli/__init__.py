"""``echoctl``: the command line, thin shells over the library.

The package holds the Typer app and its global options (this module), what
every command shares (:mod:`echo_archive.cli.common`: consoles, ``--vault`` and
``--json``, error exits, JSON output, the one way to find the vault) and one
module per command group:

- :mod:`echo_archive.cli.vault`: ``init``, ``add``, ``verify``, ``checkpoint``,
  ``log inclusion|consistency``, ``prove``, ``verify-proof``;
- :mod:`echo_archive.cli.feeds`: ``feeds add|list|remove|enable|disable``;
- :mod:`echo_archive.cli.harvest`: ``harvest``, ``breakers``;
- :mod:`echo_archive.cli.service`: ``serve``, ``status``;
- :mod:`echo_archive.cli.items`: ``items``, ``show``;
- :mod:`echo_archive.cli.search`: ``search``;
- :mod:`echo_archive.cli.captures`: ``captures``, ``cat``;
- :mod:`echo_archive.cli.reports`: ``reports``;
- :mod:`echo_archive.cli.imports`: ``import``;
- :mod:`echo_archive.cli.health`: ``health``, ``repair``;
- :mod:`echo_archive.cli.alerts`: ``alerts rules|list``, ``silence add|list|expire``;
- :mod:`echo_archive.cli.auth`: ``keys create|list|revoke``, ``users
  add|list|remove|passwd``, ``audit``, ``breakglass``;
- :mod:`echo_archive.cli.interventions`: ``interventions list|show|approve|reject|rollback``;
- :mod:`echo_archive.cli.corrections`: ``corrections add|list``.

Every command takes ``--vault PATH`` (default ``echoctl --vault``, else
``$ECHO_VAULT``, else ``./vault``) and most take ``--json`` for
machine-readable output. Exit codes: 0 success; 1 a check failed or the vault
could not do what was asked (the message says what and where); 2 bad usage;
3 (``harvest``) every due feed failed; ``health`` exits by its worst check
(0 ok, 1 warning, 2 critical, 3 could not run).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import structlog
import typer
from typer._click import exceptions as click  # Typer vendors Click
from typer._click.core import Parameter
from typer.core import TyperGroup, TyperOption

from echo_archive import __version__
from echo_archive.cli import auth as _auth
from echo_archive.cli import captures as _captures
from echo_archive.cli import harvest as _harvest
from echo_archive.cli import health as _health
from echo_archive.cli import imports as _imports
from echo_archive.cli import items as _items
from echo_archive.cli import reports as _reports
from echo_archive.cli import search as _search
from echo_archive.cli import service as _service
from echo_archive.cli import vault as _vault
from echo_archive.cli.alerts import alerts_app, silence_app
from echo_archive.cli.common import VaultOpt, error_json, fail, out
from echo_archive.cli.corrections import corrections_app
from echo_archive.cli.feeds import feeds_app
from echo_archive.cli.interventions import interventions_app
from echo_archive.redaction import redact_event

__all__ = ["app", "main"]


def _usage_subject(exc: click.ClickException) -> str | None:
    """The option or argument a Click usage error is about (``--limit``), if it names one."""
    if isinstance(exc, click.NoSuchOption):
        return exc.option_name
    param = getattr(exc, "param", None)
    if isinstance(param, Parameter):
        if param.param_type_name == "option" and param.opts:
            return param.opts[0]
        return (param.name or "").upper() or None  # an argument as --help shows it: REF
    return None


class _JsonErrorsGroup(TyperGroup):
    """The ``echoctl`` group: with ``--json`` anywhere before ``--``, usage errors are JSON too.

    Click reports a usage error (unknown option, bad or missing value; exit 2)
    itself; this runs Click non-standalone and prints the error as
    :func:`echo_archive.cli.common.error_json` on stderr when ``--json`` was
    given, else as Typer would. Exit codes are unchanged.
    """

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the command line; see :meth:`click.Command.main`."""
        argv = list(sys.argv[1:] if args is None else args)
        head = argv[: argv.index("--")] if "--" in argv else argv
        if not standalone_mode or "--json" not in head:
            return super().main(
                argv, prog_name, complete_var, standalone_mode, windows_expand_args, **extra
            )
        try:
            code = super().main(argv, prog_name, complete_var, False, windows_expand_args, **extra)
        except click.ClickException as exc:
            ctx = exc.ctx if isinstance(exc, click.UsageError) else None
            command = ctx.command_path if ctx is not None else None
            doc = error_json(
                code=_snake_click(exc),
                exit_code=exc.exit_code,
                message=exc.format_message(),
                what=_usage_subject(exc),
                command=command or "echoctl",
            )
            print(json.dumps(doc, sort_keys=True), file=sys.stderr, flush=True)
            sys.exit(exc.exit_code)
        except typer.Abort:
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def _snake_click(exc: click.ClickException) -> str:
    """``NoSuchOption`` -> ``no_such_option``; ``UsageError`` -> ``usage``."""
    name = type(exc).__name__.removesuffix("Error") or "usage"
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def _flag_type_rich(self: TyperOption, ctx: Any) -> str | None:
    """No value placeholder for a flag (``--json``, ``--all``, ``--help``): it takes no value.

    Typer's rich help (0.29, ``TyperOption.display_type_rich``)
    shows ``<bool>`` beside every boolean flag, as though it took a value,
    while its plain help (``get_help_record``) and click show none; an option
    that takes a value keeps its placeholder (``<int>``, ``SECONDS``).
    """
    if self.is_flag or self.count:
        return None
    return _typer_type_rich(self, ctx)


_typer_type_rich = TyperOption.display_type_rich
TyperOption.display_type_rich = _flag_type_rich  # type: ignore[method-assign]

app = typer.Typer(
    name="echoctl",
    cls=_JsonErrorsGroup,
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
_service.register(app)
_items.register(app)
_search.register(app)
_harvest.register_breakers(app)
_captures.register(app)
_reports.register(app)
_imports.register(app)
_vault.register(app)
_health.register(app)
app.add_typer(alerts_app, name="alerts")
app.add_typer(silence_app, name="silence")
_auth.register(app)
app.add_typer(interventions_app, name="interventions")
app.add_typer(corrections_app, name="corrections")


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
