"""``echoctl import``: backfill the vault from recordings, GH Archive hours and feed documents.

Registered on the main app by :mod:`echo_archive.cli` (``register(app)``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from echo_archive.cli.common import JsonOpt, VaultOpt, WaitOpt, open_writer, out, safe
from echo_archive.cli.common import emit as _emit
from echo_archive.cli.common import errors as _errors
from echo_archive.harvest.importer import ImportReport
from echo_archive.services.importing import DEFAULT_BATCH_SIZE, import_files
from echo_archive.vault.lock import DEFAULT_WAIT

__all__ = ["register"]


def _print_import(report: ImportReport) -> None:
    for f in report.files:
        title = f"{f.path}: {f.kind}" + (f" ({f.format})" if f.format else "")
        table = Table(title=safe(title), title_justify="left", show_header=False)
        table.add_column("what")
        table.add_column("value", style=None if f.recognized else "red")
        rows: list[tuple[str, object]] = [
            ("exchanges", f.exchanges),
            ("by source", " ".join(f"{k}×{v}" for k, v in sorted(f.sources.items())) or "-"),
            ("captures", f.captures),
            ("items new / versions / duplicates", f"{f.new} / {f.versions} / {f.duplicates}"),
        ]
        optional: list[tuple[str, int]] = [
            ("tombstones", f.tombstones),
            ("parse errors (kept on their captures)", f.parse_errors),
            ("304 not modified (skipped)", f.not_modified),
            ("not GET (skipped)", f.skipped),
            ("not recognized", f.unrecognized),
            ("broken lines", f.broken_lines),
        ]
        rows += [(name, n) for name, n in optional if n]
        if f.recorded_from:
            span = f.recorded_from
            if f.recorded_to and f.recorded_to != f.recorded_from:
                span = f"{f.recorded_from} .. {f.recorded_to}"
            rows.append(("recorded at (claimed by the file)", span))
        rows.append(("seconds", f"{f.seconds:.1f}"))
        for name, value in rows:
            table.add_row(name, safe(str(value)))
        out.print(table)
        if f.error:
            out.print(f"  [red]error:[/] {safe(f.error)}")
        for reason in f.reasons:
            out.print(f"  [yellow]not recognized:[/] {safe(reason)}")
        if f.unrecognized > len(f.reasons) and f.kind != "unrecognized":
            out.print(f"  ... {f.unrecognized} response(s) not recognized in all")
        for sample in f.parse_error_samples:
            out.print(f"  [yellow]parse error:[/] {safe(sample)}")
        for problem in f.problems:
            out.print(f"  [yellow]problem:[/] {safe(problem)}")
        if f.problem_count > len(f.problems):
            out.print(f"  ... {f.problem_count} problem(s) in all")
    totals = report.totals()
    out.print(
        f"{totals['recognized_files']} of {totals['files']} file(s) recognized; "
        f"{totals['new']} new item(s), {totals['versions']} version(s), "
        f"{totals['duplicates']} duplicate(s) in {totals['captures']} capture(s); "
        f"log covered by checkpoint size {report.checkpoint_size}"
    )


def import_(
    ctx: typer.Context,
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Recordings (betamax/VCR JSON, vcrpy and Ruby VCR YAML, ExVCR, PyGithub "
            "replay, HAR, WARC), GH Archive hour files (.json.gz), saved feed documents "
            "(RSS, Atom, JSON Feed) and saved API bodies (FRED CSV downloads, Hacker News "
            "items and story lists, FRED observations).",
            show_default=False,
        ),
    ],
    batch_size: Annotated[
        int, typer.Option(min=1, help="Exchanges of a recording archived per commit.")
    ] = DEFAULT_BATCH_SIZE,
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            help="Read a saved API body as this source's (hn: an item or story list; "
            "fred: an observations body or CSV download) instead of recognizing it.",
            show_default=False,
        ),
    ] = None,
    series: Annotated[
        str | None,
        typer.Option(
            "--series",
            help="The FRED series of a saved observations body (default: the file name).",
            show_default=False,
        ),
    ] = None,
    vault: VaultOpt = None,
    wait: WaitOpt = DEFAULT_WAIT,
    as_json: JsonOpt = False,
) -> None:
    """Backfill the vault from recorded traffic, GH Archive hours and saved feed documents.

    Each file is recognized from its content: a GH Archive hour (gzip JSON
    Lines of events), a recording (cassette, HAR, WARC), a saved API body
    (a FRED CSV download or ALFRED vintage CSV, a Hacker News item or story
    list, a FRED observations body: series from --series or the file name)
    or a feed document. --source hn|fred reads a saved body as that source's.
    Recorded GET responses are routed by URL to the source that reads them
    (Hacker News, Reddit, GitHub, FRED; other hosts only if the body is a
    feed) and archived as a live harvest would archive them: the raw capture
    first, then items, versions and tombstones, duplicates counted. Each
    capture keeps the recording's own timestamp as recorded_at; only the time
    an entry joined the log (logged_at) is attested by a checkpoint.

    A table per file shows what was imported and what was not recognized,
    with reasons. Every batch commits through the vault's writer, waiting up
    to --wait seconds for another process's batch. Exit 0 when every file was
    recognized, 1 when some file was not (or could not be read) or the vault
    failed (or stayed locked past --wait).
    """
    with _errors(), open_writer(ctx, vault, wait) as w:
        report = import_files(w, files, batch_size=batch_size, source=source, series=series)
    if as_json:
        _emit(report.to_json())
    else:
        _print_import(report)
    if not report.all_recognized:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``import`` to ``app``."""
    app.command("import")(import_)
