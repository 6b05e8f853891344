"""``echoctl harvest``, ``items``, ``show`` and ``breakers``: the harvesting commands.

Registered on the main app by :mod:`echo_archive.cli` (``register(app)``).
Exit codes of ``harvest``: 0 the cycle ran (some feeds may have failed: the
table says which and why); 3 every due feed failed; 1 the vault failed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from echo_archive.cli_common import JsonOpt, VaultOpt, err, out, vault_dir
from echo_archive.cli_common import emit as _emit
from echo_archive.cli_common import errors as _errors
from echo_archive.cli_common import fail as _fail
from echo_archive.errors import LogError
from echo_archive.harvest.engine import FetchConfig, Fetcher
from echo_archive.harvest.importer import ImportReport, import_files
from echo_archive.harvest.job import (
    HarvestReport,
    HarvestRun,
    VaultBreakerStore,
    VaultConditionalCache,
    due_feeds,
)
from echo_archive.harvest.limits import limits_from_config
from echo_archive.harvest.transport import ReplayTransport
from echo_archive.sources.base import Feed
from echo_archive.sources.registry import SOURCES
from echo_archive.vault.merkle import leaf_hash
from echo_archive.vault.vault import Vault

__all__ = ["register"]

EXIT_ALL_FAILED = 3
PARALLEL_PARSE_FEEDS = 10
"""From this many feeds in a cycle, responses are parsed in worker processes."""


def _statuses(requests: dict[str, int]) -> str:
    return " ".join(f"{k}×{v}" for k, v in sorted(requests.items())) or "-"


_BREAKER_RANK = {"forced_open": 0, "open": 1, "half_open": 2, "disabled": 3, "closed": 4}


def _worst_breaker(breaker: str) -> str:
    """The least healthy state in ``"host: state, ..."`` (``open`` before ``half_open``...).

    The table shows one state per feed; ``echoctl breakers`` names every
    host's, and the error lines below the table name the host that failed.
    """
    if not breaker:
        return "-"
    states = [part.rpartition(": ")[2] for part in breaker.split(", ")]
    return min(states, key=lambda state: _BREAKER_RANK.get(state, -1))


def _size(n: int) -> str:
    """Bytes in at most 8 characters: ``512 B``, ``20.4 kB``, ``3.1 MB`` (SI units)."""
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _compact_table(title: str) -> Table:
    """A table without vertical rules: a header rule and two spaces between columns."""
    return Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )


def _print_report(report: HarvestReport) -> None:
    # No vertical rules, so the ten columns fit in 80 characters; a feed name
    # is never cut (it is what a user types next).
    table = _compact_table(f"harvest {report.started_at} ({report.seconds:.1f} s)")
    table.add_column("feed", no_wrap=True)
    table.add_column("requests", overflow="fold", min_width=8)
    for col in ("304", "new", "vers", "dups", "tomb", "bytes", "s"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("breaker", no_wrap=True)
    for f in report.feeds:
        table.add_row(
            f.name,
            _statuses(f.requests),
            str(f.not_modified),
            str(f.new),
            str(f.versions),
            str(f.duplicates),
            str(f.tombstones),
            _size(f.bytes),
            f"{f.seconds:.1f}",
            _worst_breaker(f.breaker),
            style="red" if f.failed else None,
        )
    out.print(table)
    for f in report.feeds:
        if f.error:
            label = "[red]failed[/]" if f.failed else "[yellow]problem[/]"
            out.print(f"{label} {escape(f.name)}: {escape(f.error)}")
    if report.interrupted:
        err.print("[yellow]interrupted:[/] stopped early; everything fetched was archived")
    failed = sum(f.failed for f in report.feeds)
    out.print(
        f"{len(report.feeds) - failed} of {len(report.feeds)} feed(s) harvested; "
        f"log covered by checkpoint size {report.checkpoint_size}"
    )


def _install_signals(loop: asyncio.AbstractEventLoop, run: HarvestRun, grace: float) -> None:
    hits = {"n": 0}

    def on_signal(signame: str) -> None:
        hits["n"] += 1
        if hits["n"] == 1:
            err.print(
                f"[yellow]{signame}:[/] stopping: no new requests; in-flight ones get {grace:g} s "
                "(send it again to abort now)"
            )
            run.stop()
            loop.call_later(grace, run.abort)
        else:
            err.print(f"[yellow]{signame} again:[/] aborting in-flight requests")
            run.abort()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig.name)


def _harvest(
    vault: Vault,
    feeds: list[Feed],
    replay: list[Path],
    grace: float,
    max_requests: int,
    progress: Callable[[str, str], None] | None,
) -> HarvestReport:
    async def main() -> HarvestReport:
        transport = ReplayTransport.from_paths(replay) if replay else None
        overrides = {
            host: (lim.rate, lim.burst, lim.concurrency)
            for host, lim in vault.config.limits.items()
        }
        fetcher = Fetcher(
            FetchConfig(),
            transport=transport,
            limits=limits_from_config(overrides),
            breakers=VaultBreakerStore(vault),
            cache=VaultConditionalCache(vault),
        )
        async with fetcher:
            # Parsing is CPU-bound: with many feeds it runs in worker processes.
            workers = min(2, os.cpu_count() or 1) if len(feeds) >= PARALLEL_PARSE_FEEDS else 0
            run = HarvestRun(
                vault,
                fetcher,
                SOURCES,
                max_requests=max_requests,
                progress=progress,
                parse_workers=workers,
            )
            _install_signals(asyncio.get_running_loop(), run, grace)
            return await run.run(feeds)

    return asyncio.run(main())


def harvest(
    ctx: typer.Context,
    feed: Annotated[
        list[str] | None,
        typer.Option(
            "--feed", help="Harvest only this feed (repeatable; default: every enabled feed)."
        ),
    ] = None,
    replay: Annotated[
        list[Path] | None,
        typer.Option(
            "--replay",
            help="Answer from these recordings (cassettes, HAR, WARC) instead of the network "
            "(repeatable); an unrecorded request fails with 'not recorded'.",
        ),
    ] = None,
    run_all: Annotated[
        bool,
        typer.Option("--all", help="Harvest every enabled feed, due or not (see the intervals)."),
    ] = False,
    max_requests: Annotated[
        int, typer.Option(min=1, help="Requests per feed per cycle, follow-ups included.")
    ] = 500,
    grace: Annotated[
        float, typer.Option(min=0.0, help="Seconds in-flight requests get after SIGINT/SIGTERM.")
    ] = 10.0,
    vault: VaultOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Harvest the due feeds once: fetch, archive raw captures, parse, version, seal.

    A feed is due when its interval (or GitHub's X-Poll-Interval, if longer)
    has passed since its last cycle; --all or --feed NAME runs feeds anyway.

    Feeds run concurrently under per-host limits, retries and circuit breakers;
    ETag/Last-Modified make repeat fetches cheap (a 304 adds nothing). Every
    response is kept as a capture; items, new versions and tombstones are
    logged; volatile counters (score, comments, stars) become observations.
    A table per feed shows requests by status, 304s, items new/versions/
    duplicates/tombstones, bytes, seconds, breaker state and the error in plain
    words; the report is saved in the vault. SIGINT/SIGTERM stops starting
    requests, lets in-flight ones finish within --grace seconds and archives
    everything fetched; a second signal aborts at once (the vault stays
    consistent). Exit 0 when the cycle ran (some feeds may have failed),
    3 when every feed failed, 1 when the vault failed.
    """
    with _errors(), Vault.open(vault_dir(ctx, vault)) as v:
        configured = [f for f in v.config.feeds if f.enabled]
        if feed:
            known = {f.name: f for f in v.config.feeds}
            unknown = [n for n in feed if n not in known]
            if unknown:
                _fail(f"unknown feed(s): {', '.join(unknown)} (see `echoctl feeds list`)", 2)
            configured = [known[n] for n in feed]
        if not configured:
            _fail("no enabled feeds to harvest (add one with `echoctl feeds add`)", 2)
        feeds = [f.to_feed() for f in configured]
        if not (feed or run_all):
            feeds, waiting = due_feeds(feeds, v.harvest.feed_runs(), time.time())
            if waiting and not as_json:
                soonest = min(waiting, key=waiting.__getitem__)
                err.print(
                    f"{len(waiting)} feed(s) not due yet (next: {soonest} in "
                    f"{waiting[soonest]:.0f} s); --all harvests them anyway"
                )
            if not feeds:
                if as_json:
                    _emit({"feeds": [], "not_due": waiting})
                return
        progress = None
        if not as_json and err.is_terminal:

            def progress(name: str, event: str) -> None:
                if event in ("done", "failed"):
                    err.print(f"  {name}: {event}")

        report = _harvest(v, feeds, list(replay or []), grace, max_requests, progress)
    if as_json:
        _emit(report.to_json())
    else:
        _print_report(report)
    if report.all_failed:
        raise typer.Exit(EXIT_ALL_FAILED)


def items(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option(help="Only items of this source kind.")] = None,
    feed: Annotated[str | None, typer.Option(help="Only items of this feed.")] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="Only items whose latest version was seen at or after this RFC 3339 time."
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many items.")] = 50,
    vault: VaultOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List harvested items, newest first: native id, title, versions, state, entry index."""
    with _errors(), Vault.open(vault_dir(ctx, vault), readonly=True) as v:
        rows = v.harvest.items(source=source, feed=feed, since=since or "", limit=limit)
        for row in rows:
            entry = v.entry(row["idx"])
            doc: dict[str, Any] = {}
            if entry.blobs:
                doc = json.loads(v.blobs.get(entry.blobs[0].digest))
            row["title"] = doc.get("title", "")
            row["url"] = doc.get("url", "")
            row["type"] = entry.type
    if as_json:
        _emit(rows)
        return
    # One line per item: the id and title are cut with an ellipsis to fit the
    # terminal (``--json`` gives them whole); the entry index and feed never are.
    cells = [
        (
            str(row["idx"]),
            row["feed"],
            row["native_id"],
            " ".join(str(row["title"]).split()),
            str(row["versions"]),
            "tombstone" if row["tombstoned"] else row["type"],
            str(row["seen_at"])[:16].replace("T", " "),
        )
        for row in rows
    ]
    headers = ("entry", "feed", "id", "title", "v", "state", "seen (UTC)")
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(headers)]
    widths[2] = min(widths[2], 18)
    fixed = sum(w for i, w in enumerate(widths) if i != 3) + 2 * (len(headers) - 1)
    room = out.width - fixed  # what is left for the title
    if room < 24:  # a narrow terminal: the id gives way first (to 8), then the feed (to 12)
        cut = min(widths[2] - 8, 24 - room) if widths[2] > 8 else 0
        widths[2] -= max(cut, 0)
        room += max(cut, 0)
        if room < 24 and widths[1] > 12:
            cut = min(widths[1] - 12, 24 - room)
            widths[1] -= cut
            room += cut
    widths[3] = min(widths[3], max(12, room))
    table = _compact_table(f"{len(rows)} item(s), newest first")
    for header, width in zip(headers, widths, strict=True):
        right = header in ("entry", "v")
        table.add_column(
            header,
            justify="right" if right else "left",
            no_wrap=True,
            overflow="ellipsis",
            width=width,
        )
    for cell in cells:
        table.add_row(*(escape(c) for c in cell))
    out.print(table)


def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="An item's entry index, or SOURCE:FEED:NATIVE_ID.")],
    vault: VaultOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show an item: latest content, every version and tombstone, captures and observations."""
    with _errors(), Vault.open(vault_dir(ctx, vault), readonly=True) as v:
        if ref.isdigit():
            index = int(ref)
        else:
            parts = ref.split(":", 2)
            if len(parts) != 3:
                _fail(f"{ref!r}: expected an entry index or SOURCE:FEED:NATIVE_ID", 2)
            row = v.harvest.known(*parts)
            if row is None:
                _fail(f"no item {ref}")
            index = row.idx
        entry = v.entry(index)
        if entry.type not in ("item", "version", "tombstone"):
            raise LogError(f"entry {index} is a {entry.type}, not an item, version or tombstone")
        meta = entry.meta
        latest_row = v.harvest.known(meta["source"], meta["feed"], meta["native_id"])
        if latest_row is not None:  # an older version's index shows the whole item
            index = latest_row.idx
        history: list[dict[str, Any]] = []
        cursor: int | None = index
        while cursor is not None:
            e = v.entry(cursor)
            doc = json.loads(v.blobs.get(e.blobs[0].digest)) if e.blobs else None
            history.append(
                {
                    "index": cursor,
                    "type": e.type,
                    "logged_at": e.logged_at,
                    "meta": dict(e.meta),
                    "item": doc,
                    "capture_index": _capture_index(v, e, cursor),
                }
            )
            previous = e.meta.get("previous")
            cursor = previous if isinstance(previous, int) else None
        observations = v.harvest.observations(meta["source"], meta["feed"], meta["native_id"])
        seen_in = {o["capture_idx"] for o in observations}
        seen_in.update(h["capture_index"] for h in history if h["capture_index"] is not None)
        captures = v.harvest.capture_rows(seen_in)
    data: dict[str, Any] = {
        "history": history,
        "observations": observations,
        "captures": captures,
    }
    if as_json:
        _emit(data)
        return
    _print_item(meta, history, observations, captures)


def _capture_index(v: Vault, entry: Any, index: int) -> int | None:
    """The log index of the capture an item/version/tombstone entry names by leaf hash, or None."""
    ref = entry.meta.get("capture")
    if not isinstance(ref, str):
        return None
    for candidate in v.harvest.captures_before(str(entry.meta.get("feed", "")), index):
        if "sha256:" + leaf_hash(v.entry(candidate).raw).hex() == ref:
            return candidate
    return None


class _TextOnly(HTMLParser):
    """Collects the character data of an HTML fragment (entities decoded), for an excerpt."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def _readable(text: str) -> str:
    """An item's text for a terminal: markup dropped, entities decoded, whitespace collapsed.

    Display only: the archived item keeps the HTML exactly as the source sent it.
    """
    if "<" in text or "&" in text:
        parser = _TextOnly()
        parser.feed(text)
        parser.close()
        text = " ".join(parser.parts)
    return " ".join(text.split())


def _print_item(
    meta: Any,
    history: list[dict[str, Any]],
    observations: list[dict[str, Any]],
    captures: list[dict[str, Any]],
) -> None:
    """The plain-text form of ``echoctl show``: content, history, captures, observations."""
    latest = next((h["item"] for h in history if h["item"]), None) or {}
    out.print(f"[bold]{escape(str(latest.get('title') or '(no title)'))}[/]")
    if latest.get("url"):
        out.print(f"  {escape(str(latest['url']))}")
    facts = [f"{meta['source']}:{meta['feed']}:{meta['native_id']}"]
    if latest.get("author"):
        facts.append(f"by {latest['author']}")
    if latest.get("published_at"):
        facts.append(f"published {latest['published_at']}")
    out.print("  " + escape(" · ".join(facts)))
    text = _readable(str(latest.get("text") or ""))
    if text:
        out.print("  " + escape(text[:300] + ("…" if len(text) > 300 else "")))
    if history[0]["type"] == "tombstone":
        reason = history[0]["meta"].get("reason", "")
        out.print(f"  [red]tombstoned[/] at entry {history[0]['index']}: {escape(str(reason))}")
    out.print(f"\nhistory ({len(history)} entr{'y' if len(history) == 1 else 'ies'}, newest first)")
    for h in history:
        capture = h["capture_index"]
        out.print(
            f"  entry {h['index']}  {h['type']:<9} logged {h['logged_at']}  "
            f"content {str(h['meta'].get('content_digest', ''))[:19]}…"
            + (f"  from capture {capture}" if capture is not None else "")
        )
    if captures:
        out.print(f"\ncaptures ({len(captures)})")
        for c in captures:
            flag = f"  [yellow]{escape(str(c['error']))}[/]" if c["error"] else ""
            out.print(
                f"  entry {c['index']}  {c['fetched_at']}  {c['status']}  {escape(c['url'])}{flag}"
            )
    if observations:
        last = observations[-1]
        counters = " ".join(f"{k}={v}" for k, v in sorted(last["counters"].items()))
        out.print(
            f"\nobservations ({len(observations)}); latest {last['seen_at']}: {escape(counters)}"
        )


def breakers(
    ctx: typer.Context,
    reset: Annotated[
        str | None, typer.Option("--reset", help="Close this breaker (forget its state).")
    ] = None,
    vault: VaultOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the per-host circuit breakers and their state; --reset NAME closes one."""
    with _errors():
        if reset is not None:
            with Vault.open(vault_dir(ctx, vault)) as w:
                if not w.harvest.delete_breaker(reset):
                    _fail(f"no breaker named {reset!r} (see `echoctl breakers`)")
            out.print(f"breaker {reset} reset: closed")
            return
        with Vault.open(vault_dir(ctx, vault), readonly=True) as v:
            states = v.harvest.breakers()
    if as_json:
        _emit(states)
        return
    table = Table(title=f"{len(states)} breaker(s)")
    for col in ("host", "state", "opened at (epoch s)"):
        table.add_column(col)
    for name, st in states.items():
        table.add_row(name, str(st.get("state", "?")).lower(), str(st.get("opened_at") or "-"))
    out.print(table)


def _print_import(report: ImportReport) -> None:
    for f in report.files:
        title = f"{f.path}: {f.kind}" + (f" ({f.format})" if f.format else "")
        table = Table(title=escape(title), title_justify="left", show_header=False)
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
            table.add_row(name, escape(str(value)))
        out.print(table)
        if f.error:
            out.print(f"  [red]error:[/] {escape(f.error)}")
        for reason in f.reasons:
            out.print(f"  [yellow]not recognized:[/] {escape(reason)}")
        if f.unrecognized > len(f.reasons) and f.kind != "unrecognized":
            out.print(f"  ... {f.unrecognized} response(s) not recognized in all")
        for sample in f.parse_error_samples:
            out.print(f"  [yellow]parse error:[/] {escape(sample)}")
        for problem in f.problems:
            out.print(f"  [yellow]problem:[/] {escape(problem)}")
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
            "replay, HAR, WARC), GH Archive hour files (.json.gz) and saved feed documents "
            "(RSS, Atom, JSON Feed).",
            show_default=False,
        ),
    ],
    batch_size: Annotated[
        int, typer.Option(min=1, help="Exchanges of a recording archived per commit.")
    ] = 200,
    vault: VaultOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Backfill the vault from recorded traffic, GH Archive hours and saved feed documents.

    Each file is recognized from its content: a GH Archive hour (gzip JSON
    Lines of events), a recording (cassette, HAR, WARC) or a feed document.
    Recorded GET responses are routed by URL to the source that reads them
    (Hacker News, Reddit, GitHub, FRED; other hosts only if the body is a
    feed) and archived as a live harvest would archive them: the raw capture
    first, then items, versions and tombstones, duplicates counted. Each
    capture keeps the recording's own timestamp as recorded_at; only the time
    an entry joined the log (logged_at) is attested by a checkpoint.

    A table per file shows what was imported and what was not recognized,
    with reasons. Exit 0 when every file was recognized, 1 when some file was
    not (or could not be read) or the vault failed.
    """
    with _errors(), Vault.open(vault_dir(ctx, vault)) as v:
        report = import_files(v, files, batch_size=batch_size)
    if as_json:
        _emit(report.to_json())
    else:
        _print_import(report)
    if not report.all_recognized:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``harvest``, ``items``, ``show``, ``breakers`` and ``import`` to ``app``."""
    app.command()(harvest)
    app.command()(items)
    app.command()(show)
    app.command()(breakers)
    app.command("import")(import_)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use echoctl")
