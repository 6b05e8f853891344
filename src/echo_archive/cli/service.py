"""``echoctl serve`` and ``echoctl status``: the long-running service, and what it is doing."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from echo_archive.cli.common import (
    JsonOpt,
    VaultOpt,
    WaitOpt,
    compact_table,
    emit,
    err,
    errors,
    fail,
    open_vault,
    out,
    safe,
    vault_dir,
)
from echo_archive.service.client import ServiceClient, offline_status
from echo_archive.service.runner import Service
from echo_archive.vault.lock import DEFAULT_WAIT

__all__ = ["register"]


def serve(
    ctx: typer.Context,
    listen: Annotated[
        str | None,
        typer.Option(
            "--listen",
            metavar="HOST:PORT",
            help="Serve HTTP here (default: \\[service] listen, 127.0.0.1:8383; port 0: any free "
            "port). Only loopback until the API's authentication exists.",
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option(
            "--tls-cert",
            metavar="PATH",
            help="Serve HTTPS with this PEM certificate (chain); needs --tls-key.",
        ),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option(
            "--tls-key",
            metavar="PATH",
            help="The PEM private key of --tls-cert (unencrypted; keep it mode 0600).",
        ),
    ] = None,
    vault: VaultOpt = None,
    wait: WaitOpt = DEFAULT_WAIT,
) -> None:
    """Run ECHO unattended: harvest each feed on schedule, serve health, metrics and status.

    In the foreground (systemd or a container supervises it). It owns the
    vault's writer, harvests the due feeds at once and then each on its own
    schedule (interval plus a per-feed jitter; failing feeds back off;
    next-run times persist, so a restart neither skips nor doubles a run),
    at most [service] max_concurrent at a time, each cut short after
    [service] feed_timeout seconds. It serves GET /healthz, /readyz, /metrics
    (Prometheus) and /status on --listen, and the control socket service.sock
    in the vault (`echoctl status`, `echoctl harvest --now FEED`). SIGHUP
    re-reads echo.toml (a bad file is rejected, the old one kept; a change of
    the file is also picked up within 2 s). SIGTERM or Ctrl-C: no new run,
    runs in flight get [service] grace seconds, everything fetched is
    archived; a second signal cuts them short. Harvesting pauses while the
    disk is nearly full and resumes when space returns. With --tls-cert and
    --tls-key (both or neither) it serves HTTPS and the printed URL says
    https; or put a reverse proxy in front (README, "TLS").

    Exit codes: 0 stopped by a signal; 1 the vault, echo.toml or the address
    failed (or a service already runs on this vault); 2 bad usage.
    """
    with errors():
        service = Service(
            vault_dir(ctx, vault), listen=listen, wait=wait, tls_cert=tls_cert, tls_key=tls_key
        )

        def ready(url: str) -> None:
            err.print(f"echoctl serve: listening on {url} (Ctrl-C stops)")

        try:
            asyncio.run(service.run(ready))
        except OSError as exc:
            fail(f"cannot serve on {listen or service.config.service.listen}: {exc}")


def status(ctx: typer.Context, vault: VaultOpt = None, as_json: JsonOpt = False) -> None:
    """Show what the service is doing, or last did when none runs.

    Running or not, the log size, each feed's last run (outcome, failures)
    and next run, the checks, firing alerts and pending interventions. With
    a running service (found through service.json in the vault) it is asked
    over its control socket; without one, the persisted schedules and the
    last saved harvest report are read from the vault. Times are RFC 3339 UTC.
    """
    with errors():
        path = vault_dir(ctx, vault)
        client = ServiceClient.find(path)
        if client is not None:
            with client:
                doc = client.status()
        else:
            with open_vault(ctx, vault) as v:
                doc = offline_status(v)
    if as_json:
        emit(doc)
        return
    _print_status(doc)


def _print_status(doc: dict[str, Any]) -> None:
    if doc.get("running"):
        state = "ready" if doc.get("ready") else "not ready"
        paused = ", harvesting PAUSED (disk)" if doc.get("paused") else ""
        out.print(
            f"service: running (pid {doc.get('pid')}, {safe(doc.get('url'))}), {state}{paused}"
        )
        config = doc.get("config") or {}
        if config.get("error"):
            out.print(f"[yellow]echo.toml rejected (old one kept):[/] {safe(config['error'])}")
    else:
        out.print("service: not running (what the vault last recorded)")
    out.print(f"log size: {doc.get('log_size', 0):,} entries")
    feeds = doc.get("feeds") or []
    if feeds:
        table = compact_table("feeds")
        for column in ("feed", "last run", "outcome", "failures", "next run", "state"):
            table.add_column(column)
        now = time.time()
        for f in feeds:
            nxt = f.get("next_epoch")
            when = (
                "-"
                if nxt is None
                else f"{f.get('next_run')}"
                + (" (due)" if nxt <= now else f" (in {nxt - now:.0f} s)")
            )
            flags = "running" if f.get("running") else ("paused" if f.get("paused") else "")
            table.add_row(
                safe(f.get("feed")),
                safe(f.get("last_run") or "-"),
                safe(f.get("last_outcome") or "-"),
                str(f.get("failures", 0)),
                safe(when),
                flags,
            )
        out.print(table)
    last = doc.get("last_report")
    if last:
        failed = [f for f in last.get("feeds", []) if f.get("status") != "harvested"]
        out.print(
            f"last harvest report: #{last.get('id')} at {safe(last.get('started_at'))}, "
            f"{len(failed)} feed(s) not harvested"
        )
    checks = doc.get("checks") or {}
    bad = {k: v for k, v in checks.items() if v}
    out.print("checks: " + (", ".join(f"{safe(k)}={v}" for k, v in bad.items()) or "ok"))
    alerts = [a for a in doc.get("alerts") or [] if isinstance(a, dict)]
    firing = [a for a in alerts if a.get("state") == "firing"]
    out.print(
        f"alerts firing: {len(firing)}"
        + (f" ({len(alerts) - len(firing)} pending)" if len(alerts) > len(firing) else "")
    )
    for alert in firing:
        labels = {k: v for k, v in (alert.get("labels") or {}).items() if k != "alertname"}
        muted = " (silenced)" if alert.get("silenced_by") else ""
        shown = ", ".join(f"{safe(k)}={safe(v)}" for k, v in sorted(labels.items()))
        out.print(f"  {safe(alert.get('rule'))} {{{shown}}}{muted}")
    out.print(f"interventions pending: {len(doc.get('interventions') or [])}")


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``status`` to ``app``."""
    app.command()(serve)
    app.command()(status)
