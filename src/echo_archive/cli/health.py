"""``echoctl health`` and ``echoctl repair``: the health checks and self-repair of a vault.

Thin shells over :func:`echo_archive.control.health.run_checks` and
:func:`echo_archive.control.repair.run_repairs`. Registered on the main app by
:mod:`echo_archive.cli` (``register(app)``).

Exit codes of ``health`` follow the Nagios plugin convention that monitoring
tools read: 0 every check ok, 1 the worst is a warning, 2 the worst is
critical, 3 the checks could not run (no vault, a bad ``echo.toml``). A usage
error (an unknown option) is Click's exit 2, as for every command: with
``--json`` it prints an ``{"error": ...}`` document on stderr and nothing on
stdout, which a script tells from a critical report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from echo_archive.cli.common import (
    JsonOpt,
    VaultOpt,
    WaitOpt,
    compact_table,
    emit,
    errors,
    fail,
    out,
    safe,
    vault_dir,
)
from echo_archive.control.health import HealthReport, Severity, run_checks
from echo_archive.control.repair import REPAIRS, describe, run_repairs
from echo_archive.errors import EchoError, RequestError
from echo_archive.terminal import inert
from echo_archive.vault.lock import DEFAULT_WAIT

__all__ = ["UNKNOWN_EXIT", "register"]

UNKNOWN_EXIT = 3
"""``echoctl health``'s exit code when the checks could not run (Nagios "UNKNOWN")."""

_STYLE = {Severity.OK: "green", Severity.WARNING: "yellow", Severity.CRITICAL: "bold red"}


def _print_report(report: HealthReport) -> None:
    table = compact_table(f"health: {report.worst.label}")
    for col in ("check", "severity", "summary"):
        table.add_column(col, overflow="fold")
    for check in report.checks:
        summary = check.summary + (f" (repair: {check.repair})" if check.repair else "")
        table.add_row(
            check.name,
            f"[{_STYLE[check.severity]}]{check.severity.label}[/]",
            safe(summary),
        )
    out.print(table)


def health(
    ctx: typer.Context,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="Skip the incremental verify and the derived-index comparison (fast).",
        ),
    ] = False,
    vault: VaultOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the health checks; exit 0 ok, 1 warning, 2 critical, 3 could not run.

    Checks disk free space (and days until full at the vault's growth), each
    SQLite database (PRAGMA quick_check), an incremental verify (new entries,
    then a rotating sample of blobs so all are re-read within [health]
    verify_period), the derived indexes against a sampled rebuild, breakers,
    stale and silent feeds, parse-error rates, the clock against the newest
    checkpoint, an unsealed tail and left-over temporary files. Each line
    names the repair that fixes it (`echoctl repair`). --json prints {"at",
    "worst", "checks": [{"name", "severity", "summary", "details",
    "repair"}]}.
    """
    path = vault_dir(ctx, vault)
    try:
        report = run_checks(path, quick=quick)
    except EchoError as exc:
        fail(str(exc), UNKNOWN_EXIT, kind="unknown")
    if as_json:
        emit(report.to_json())
    else:
        _print_report(report)
    raise typer.Exit(int(report.worst))


def repair(
    ctx: typer.Context,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Only show what would be done; change nothing."),
    ] = False,
    approve: Annotated[
        list[str] | None,
        typer.Option(
            "--approve",
            metavar="NAME",
            help="Execute this high-risk repair (prune_reports, prune_orphans); repeatable.",
        ),
    ] = None,
    wait: WaitOpt = DEFAULT_WAIT,
    vault: VaultOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Repair what the health checks find and can be repaired without losing evidence.

    Runs the health checks, then each low-risk repair a check calls for:
    seal an unsealed tail, rebuild a derived index that differs from its
    rebuild, remove temporary files of failed writes, checkpoint the SQLite
    write-ahead logs and PRAGMA optimize, half-open breakers whose wait has
    passed. High-risk repairs (prune_reports: saved harvest reports beyond
    [health] report_retention; prune_orphans: blobs no entry names) are only
    shown until approved with --approve NAME. Every executed repair is a
    `repair` entry in the log. --dry-run changes nothing at all. Exit 0 when
    no repair failed, 1 when one failed or the vault could not be opened, 2
    for bad usage. --json prints {"health": report, "repairs": [{"name",
    "risk", "status", "plan", "result", "error", "entry", "check"}]}.
    """
    path: Path = vault_dir(ctx, vault)
    names = list(approve or [])
    with errors():
        known = {r.name for r in REPAIRS}
        for name in names:
            if name not in known:
                raise RequestError(
                    f"--approve {name!r}: no such repair (repairs: {', '.join(sorted(known))})"
                )
        report = run_checks(path, save=not dry_run)
        outcomes = run_repairs(path, report, dry_run=dry_run, approve=names, wait=wait)
    failed = any(o.status == "failed" for o in outcomes)
    if as_json:
        emit({"health": report.to_json(), "repairs": [o.to_json() for o in outcomes]})
        raise typer.Exit(1 if failed else 0)
    _print_report(report)
    if not outcomes:
        out.print("nothing to repair", markup=False)
    for outcome in outcomes:
        out.print(describe(outcome), markup=False)
        if outcome.status in ("planned", "needs_approval"):
            for key, value in outcome.plan.items():
                out.print(describe_value(key, value), markup=False)
        if outcome.status == "needs_approval":
            out.print(f"  run again with --approve {outcome.name} to execute it", markup=False)
    raise typer.Exit(1 if failed else 0)


def describe_value(key: str, value: object) -> str:
    """``  key: value`` of a plan for a person, made inert and cut to a line."""
    text = inert(f"  {key}: {value}")
    return text if len(text) <= 200 else text[:199] + "…"


def register(app: typer.Typer) -> None:
    """Add ``health`` and ``repair`` to ``app``."""
    app.command()(health)
    app.command()(repair)
