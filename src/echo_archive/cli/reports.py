"""``echoctl reports``: the saved report of every harvest cycle.

Registered on the main app by :mod:`echo_archive.cli` (``register(app)``).
"""

from __future__ import annotations

from typing import Annotated

import typer

from echo_archive.cli.common import JsonOpt, VaultOpt, compact_table, open_vault, out
from echo_archive.cli.common import emit as _emit
from echo_archive.cli.common import errors as _errors
from echo_archive.cli.harvest import print_report
from echo_archive.services.paging import MAX_LIMIT
from echo_archive.services.reports import get_report, list_reports

__all__ = ["register"]


def reports(
    ctx: typer.Context,
    report_id: Annotated[
        int | None,
        typer.Argument(
            min=1, help="Show this report whole (default: list them).", show_default=False
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=MAX_LIMIT, help="At most this many reports (one page).")
    ] = 20,
    cursor: Annotated[
        str | None, typer.Option(help="Continue after the page that printed this cursor.")
    ] = None,
    vault: VaultOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the saved harvest reports, newest first; with an ID, show that report's table.

    Every `echoctl harvest` saves its report in the vault. The list gives
    each report's id, start time, feeds run and failed, and seconds; when
    more reports remain, the last line gives the --cursor of the next page.
    --json prints {"entries": [...], "next": CURSOR or null}, or with an ID
    the report as `echoctl harvest --json` printed it.
    """
    with _errors(), open_vault(ctx, vault) as v:
        if report_id is not None:
            saved = get_report(v, report_id)
        else:
            page = list_reports(v, limit=limit, cursor=cursor)
    if report_id is not None:
        if as_json:
            _emit(dict(saved.report))
        else:
            print_report(saved.harvest_report())
        return
    if as_json:
        _emit({"entries": [e.to_json() for e in page.entries], "next": page.next})
        return
    table = compact_table(f"{len(page.entries)} report(s), newest first")
    for col in ("id", "started (UTC)", "feeds", "failed", "s"):
        table.add_column(col, justify="left" if col == "started (UTC)" else "right")
    for e in page.entries:
        table.add_row(
            str(e.id),
            e.started_at[:19].replace("T", " ") + (" (interrupted)" if e.interrupted else ""),
            str(e.feeds),
            str(e.failed),
            f"{e.seconds:.1f}",
            style="red" if e.feeds and e.failed == e.feeds else None,
        )
    out.print(table)
    if page.next is not None:
        out.print(f"more: --cursor {page.next}", markup=False)


def register(app: typer.Typer) -> None:
    """Add ``reports`` to ``app``."""
    app.command()(reports)
