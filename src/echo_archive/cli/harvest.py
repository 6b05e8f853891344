"""``echoctl harvest`` and ``breakers``: harvest the due feeds once; the per-host breakers.

Registered on the main app by :mod:`echo_archive.cli` (``register_harvest(app)``,
``register_breakers(app)``).
Exit codes of ``harvest`` (:data:`EXIT_SOME_FAILED`...): 0 every feed was
harvested; 3 some feeds failed or were skipped (the table says which and why);
4 no feed was harvested; 5 the vault failed (a write failed, the writer lock
was held past --wait, the catalog is not an ECHO catalog); 1 any other error
(a recording that cannot be read...); 2 bad usage (an unknown feed...).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from echo_archive.cli.common import (
    JsonOpt,
    VaultOpt,
    WaitOpt,
    compact_table,
    err,
    fail,
    open_vault,
    open_writer,
    out,
    safe,
    vault_dir,
)
from echo_archive.cli.common import emit as _emit
from echo_archive.cli.common import errors as _errors
from echo_archive.errors import VaultError, VaultNotFoundError
from echo_archive.harvest.cycle import FAILED, SKIPPED, HarvestReport, HarvestRun
from echo_archive.service.client import ServiceClient
from echo_archive.services.harvesting import (
    breaker_views,
    harvest_once,
    reset_breaker,
    select_feeds,
)
from echo_archive.vault.lock import DEFAULT_WAIT

__all__ = ["register_breakers", "register_harvest"]

EXIT_OK = 0
"""``harvest``: every feed of the cycle was harvested (or none was due)."""
EXIT_SOME_FAILED = 3
"""``harvest``: some feeds were harvested, others failed or were skipped (host paused)."""
EXIT_ALL_FAILED = 4
"""``harvest``: no feed was harvested (each failed or was skipped)."""
EXIT_VAULT_FAILED = 5
"""``harvest``: the vault failed (a write, the writer lock past --wait, a foreign catalog)."""


def exit_code(report: HarvestReport) -> int:
    """The exit code of ``harvest`` for ``report`` (see the module docstring).

    Returns:
        :data:`EXIT_OK`, :data:`EXIT_SOME_FAILED` or :data:`EXIT_ALL_FAILED`.
    """
    if report.all_failed:
        return EXIT_ALL_FAILED
    return EXIT_SOME_FAILED if report.some_failed else EXIT_OK


@contextmanager
def _vault_failures() -> Iterator[None]:
    """A vault error (but "no vault here", exit 1) ends ``harvest`` with exit 5."""
    try:
        yield
    except VaultNotFoundError:
        raise
    except VaultError as exc:
        name = type(exc).__name__.removesuffix("Error")
        kind = "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
        fail(str(exc), EXIT_VAULT_FAILED, kind=kind)


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


def _second(time: str | None) -> str:
    """An RFC 3339 time to the second (``2026-12-07T13:05:00Z``), for a table; ``-`` for None."""
    if time is None:
        return "-"
    head, dot, _ = time.partition(".")
    return f"{head}Z" if dot and time.endswith("Z") else time


def _size(n: int) -> str:
    """Bytes in at most 8 characters: ``512 B``, ``20.4 kB``, ``3.1 MB`` (SI units)."""
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def print_report(report: HarvestReport) -> None:
    """Print a harvest report: a table of its feeds, their errors, and a summary line."""
    # No vertical rules, so the ten columns fit in 80 characters; a feed name
    # is never cut (it is what a user types next).
    table = compact_table(f"harvest {report.started_at} ({report.seconds:.1f} s)")
    table.add_column("feed", no_wrap=True)
    table.add_column("requests", overflow="fold", min_width=8)
    for col in ("304", "new", "vers", "dups", "tomb", "bytes", "s"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("breaker", no_wrap=True)
    for f in report.feeds:
        table.add_row(
            safe(f.name),
            _statuses(f.requests),
            str(f.not_modified),
            str(f.new),
            str(f.versions),
            str(f.duplicates),
            str(f.tombstones),
            _size(f.bytes),
            f"{f.seconds:.1f}",
            _worst_breaker(f.breaker),
            style="red" if f.status == FAILED else "yellow" if f.status == SKIPPED else None,
        )
    out.print(table)
    for f in report.feeds:
        if f.status == SKIPPED:
            out.print(
                f"[yellow]skipped[/] {safe(f.name)}: host paused until {f.paused_until}; "
                f"{safe(f.error or '')}".rstrip("; ")
            )
        elif f.error:
            label = "[red]failed[/]" if f.failed else "[yellow]problem[/]"
            out.print(f"{label} {safe(f.name)}: {safe(f.error)}")
    if report.interrupted:
        err.print("[yellow]interrupted:[/] stopped early; everything fetched was archived")
    failed = sum(f.status == FAILED for f in report.feeds)
    skipped = sum(f.status == SKIPPED for f in report.feeds)
    out.print(
        f"{len(report.feeds) - failed - skipped} of {len(report.feeds)} feed(s) harvested"
        f"{f', {failed} failed' if failed else ''}{f', {skipped} skipped' if skipped else ''}; "
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
    now: Annotated[
        list[str] | None,
        typer.Option(
            "--now",
            metavar="FEED",
            help="Harvest this feed now (repeatable): a running `echoctl serve` runs it ahead "
            "of its queue; without one it is harvested here, as --feed FEED.",
        ),
    ] = None,
    max_requests: Annotated[
        int, typer.Option(min=1, help="Requests per feed per cycle, follow-ups included.")
    ] = 500,
    grace: Annotated[
        float, typer.Option(min=0.0, help="Seconds in-flight requests get after SIGINT/SIGTERM.")
    ] = 10.0,
    vault: VaultOpt = None,
    wait: WaitOpt = DEFAULT_WAIT,
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
    consistent). Every batch commits through the vault's writer, which holds
    the writer lock only while it commits (never while a feed waits on the
    network), waiting up to --wait seconds for another process's batch.
    A feed failed when none of its requests got a usable answer (all timed
    out, failed to connect, were cut, or got 4xx/5xx); a feed is skipped when
    its host is paused because it answered Retry-After beyond the 300 s cap
    (the pause, at most 300 s, is kept across runs; the report says until when).

    Exit codes (also "exit" in --json): 0 every feed harvested (or none due);
    3 some feeds failed or were skipped; 4 no feed was harvested; 5 the vault
    failed (a write failed, the writer lock was held past --wait, a foreign
    catalog); 1 another error (an unreadable recording); 2 bad usage.

    With --now FEED and a service running on the vault, the service is asked
    to run FEED next and the command returns at once (exit 0; the run's
    outcome is in `echoctl status` and the saved reports).
    """
    if now:
        if replay or run_all or feed:
            fail("--now cannot be combined with --feed, --all or --replay", 2)
        with _errors():
            client = ServiceClient.find(vault_dir(ctx, vault))
            if client is not None:
                with client:
                    queued = [client.harvest_now(name) for name in now]
                if as_json:
                    _emit({"queued": queued, "service": client.info.get("pid"), "exit": EXIT_OK})
                else:
                    for name in now:
                        err.print(
                            f"{safe(name)}: queued in the running service "
                            f"(pid {client.info.get('pid')}); see `echoctl status`"
                        )
                return
        feed = list(now)
    with (
        _errors(),
        _vault_failures(),
        open_writer(ctx, vault, wait) as w,
        open_vault(ctx, vault) as v,
    ):
        selection = select_feeds(v, feed or [], run_all=run_all)
        waiting = dict(selection.not_due)
        if waiting and not as_json:
            soonest = min(waiting, key=waiting.__getitem__)
            err.print(
                f"{len(waiting)} feed(s) not due yet (next: {soonest} in "
                f"{waiting[soonest]:.0f} s); --all harvests them anyway"
            )
        if not selection.feeds:
            if as_json:
                _emit({"feeds": [], "not_due": waiting, "exit": EXIT_OK})
            return
        progress = None
        if not as_json and err.is_terminal:

            def progress(name: str, event: str) -> None:
                if event in ("done", "failed"):
                    err.print(f"  {name}: {event}")

        def on_start(run: HarvestRun) -> None:
            _install_signals(asyncio.get_running_loop(), run, grace)

        report = asyncio.run(
            harvest_once(
                w,
                selection.feeds,
                replay=list(replay or []),
                max_requests=max_requests,
                progress=progress,
                on_start=on_start,
            )
        )
    code = exit_code(report)
    if as_json:
        _emit({**report.to_json(), "exit": code})
    else:
        print_report(report)
    if code != EXIT_OK:
        raise typer.Exit(code)


def breakers(
    ctx: typer.Context,
    reset: Annotated[
        str | None, typer.Option("--reset", help="Close this breaker (forget its state).")
    ] = None,
    vault: VaultOpt = None,
    wait: WaitOpt = DEFAULT_WAIT,
    as_json: JsonOpt = False,
) -> None:
    """List the per-host circuit breakers: state, when opened, when each will half-open.

    Times are RFC 3339 UTC. An OPEN breaker half-opens (lets trial calls
    through) 300 s after it opened; a forced-open one stays open until reset.
    Each breaker that is not closed is followed by the command that closes it,
    `echoctl breakers --reset HOST` (--reset forgets its state: it starts
    closed). --json: ``{HOST: stored state + "opened", "half_opens_at",
    "reset"}``; with --reset, ``{"reset": HOST, "state": "closed"}``.
    """
    with _errors():
        if reset is not None:
            with open_writer(ctx, vault, wait) as w:
                reset_breaker(w, reset)
            if as_json:
                _emit({"reset": reset, "state": "closed"})
            else:
                out.print(f"breaker {safe(reset)} reset: closed")
            return
        with open_vault(ctx, vault) as v:
            views = breaker_views(v)
    if as_json:
        _emit({view.name: view.to_json() for view in views})
        return
    table = compact_table(f"{len(views)} breaker(s)")
    for col in ("host", "state", "opened at", "half-opens at"):
        table.add_column(col, no_wrap=True)
    for view in views:
        table.add_row(
            safe(view.name), view.state, _second(view.opened_at), _second(view.half_opens_at)
        )
    out.print(table)
    for view in views:
        if view.reset is not None:
            out.print(f"{safe(view.name)} is {view.state}: to reset it, `{safe(view.reset)}`")


def register_harvest(app: typer.Typer) -> None:
    """Add ``harvest`` to ``app``."""
    app.command()(harvest)


def register_breakers(app: typer.Typer) -> None:
    """Add ``breakers`` to ``app``."""
    app.command()(breakers)
