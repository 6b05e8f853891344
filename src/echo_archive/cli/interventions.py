"""``echoctl interventions list|show|approve|reject|rollback``: the supervisor's interventions.

Thin shells over :class:`echo_archive.control.interventions.InterventionManager`
(the same calls the service and its HTTP API make). Registered on the main
app by :mod:`echo_archive.cli` (``interventions_app``).

Without a running service, a step acts on the vault's stored state through
:class:`~echo_archive.service.actuator.StoredActuator` (the pause flag and
stretch in ``schedules``, the breakers in ``HarvestState``, rebuild, verify
and retention through the library), waiting its turn for the writer lock
like every other writer. What only a running service can do (a host's
request rate lives in its fetch engine), and every step while a service
runs on the vault, is recorded (``approved``, ``rollback_requested``) and
executed by the service at its next supervisor cycle. Targets, reasons and
dry runs are printed inert (:func:`~echo_archive.cli.common.safe`).
"""

from __future__ import annotations

import asyncio
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
    login_name,
    open_vault,
    open_writer,
    out,
    safe,
    vault_dir,
)
from echo_archive.config import load_config
from echo_archive.control.alerts import rfc3339
from echo_archive.control.interventions import (
    Intervention,
    InterventionManager,
    InterventionOptions,
    State,
    get_intervention,
    list_interventions,
)
from echo_archive.service.actuator import StoredActuator
from echo_archive.service.runner import read_service_file
from echo_archive.vault.lock import DEFAULT_WAIT
from echo_archive.vault.vault import CONFIG_FILE
from echo_archive.vault.writer import VaultWriter

__all__ = ["interventions_app"]

interventions_app = typer.Typer(
    help="The supervisor's interventions: list them, approve or reject the high-risk ones, "
    "roll one back.",
    no_args_is_help=True,
)

IdArg = Annotated[str, typer.Argument(metavar="ID", help="The intervention's id.")]
ByOpt = Annotated[
    str | None,
    typer.Option("--by", metavar="NAME", help="Who decides (default: the login name)."),
]


def _second(epoch: float | None) -> str:
    return "-" if epoch is None else rfc3339(epoch).split(".")[0] + "Z"


def _manager(writer: VaultWriter, path: Path) -> InterventionManager:
    """The manager over the stored state; every change deferred when a service runs."""
    toml = path / CONFIG_FILE
    options = (
        InterventionOptions.from_config(load_config(toml).supervisor)
        if toml.is_file()
        else InterventionOptions()
    )
    running = read_service_file(path) is not None
    return InterventionManager(writer, StoredActuator(writer, defer=running), options)


def _print(iv: Intervention) -> None:
    out.print(f"intervention {iv.id}: {iv.kind} {safe(iv.target)} ({iv.risk} risk), {iv.state}")
    rows = [
        ("what", iv.dry_run),
        ("why", iv.reason),
        ("params", ", ".join(f"{k}={v}" for k, v in sorted(iv.params.items())) or "-"),
        ("signal", f"{iv.signal} (goal {iv.goal})" if iv.signal else "-"),
        ("planned", f"{_second(iv.created_at)} by {iv.created_by}"),
        ("executed", _second(iv.executed_at)),
        ("assess at", _second(iv.assess_at)),
        ("decided by", f"{iv.decided_by}: {iv.decision_reason}" if iv.decided_by else "-"),
        ("effect", str(dict(iv.effect)) if iv.effect else "-"),
        ("error", iv.error or "-"),
        ("entries", ", ".join(map(str, iv.entries)) or "-"),
    ]
    for name, value in rows:
        out.print(f"  {name:<11} {safe(value)}")


def _done(iv: Intervention, as_json: bool) -> None:
    """Print the outcome of a step; exit 1 when it failed."""
    if as_json:
        emit(iv.to_json())
    else:
        _print(iv)
        if iv.state in (State.APPROVED, State.ROLLBACK_REQUESTED):
            out.print(
                "  recorded: the service executes it at its next supervisor cycle",
                markup=False,
            )
    if iv.state == State.FAILED or (iv.error and iv.error.startswith("rollback failed")):
        raise typer.Exit(1)


@interventions_app.command("list")
def list_(
    ctx: typer.Context,
    state: Annotated[
        str | None,
        typer.Option(
            "--state",
            metavar="STATE",
            help="Only this state: pending_approval, deferred, approved, executed, "
            "assessed, rolled_back, rejected, failed...",
        ),
    ] = None,
    vault: VaultOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the interventions, oldest first: id, kind, target, risk, state, when, what.

    Read-only: works beside a running service and on a read-only vault.
    --json: a list of interventions (``id``, ``kind``, ``target``, ``params``,
    ``risk``, ``state``, ``reason``, ``dry_run``, ``signal``, ``goal``,
    ``evidence``, ``effect``, ``entries``...; times in POSIX seconds).
    """
    with errors(), open_vault(ctx, vault) as v:
        found = list_interventions(v, state)
    if as_json:
        emit([iv.to_json() for iv in found])
        return
    table = compact_table(f"{len(found)} intervention(s)")
    for col in ("id", "kind", "target", "risk", "state", "planned", "what"):
        table.add_column(col, overflow="fold")
    for iv in found:
        table.add_row(
            iv.id,
            iv.kind,
            safe(iv.target),
            iv.risk,
            iv.state,
            _second(iv.created_at),
            safe(iv.dry_run),
        )
    out.print(table)


@interventions_app.command("show")
def show(
    ctx: typer.Context, iv_id: IdArg, vault: VaultOpt = None, as_json: JsonOpt = False
) -> None:
    """Show one intervention: its dry run, reason, signal, decisions, effect and log entries.

    An unknown ID is an error (exit 1). --json: the intervention, as `list --json`.
    """
    with errors(), open_vault(ctx, vault) as v:
        iv = get_intervention(v, iv_id)
    if as_json:
        emit(iv.to_json())
        return
    _print(iv)


@interventions_app.command("approve")
def approve(
    ctx: typer.Context,
    iv_id: IdArg,
    by: ByOpt = None,
    vault: VaultOpt = None,
    wait: WaitOpt = DEFAULT_WAIT,
    as_json: JsonOpt = False,
) -> None:
    """Approve a high-risk (or deferred) intervention and execute it.

    Without a running service it executes at once on the vault's stored
    state (pause flag, stretch, breakers; rebuild, verify, free disk) and
    prints what it did; what only the service can do (a host's rate), and
    anything while a service runs, is recorded as approved and executed at
    the service's next cycle. Each step is an ``intervention`` entry in the
    log. Exit 1 when it failed or the ID is unknown. --json: the intervention.
    """
    path = vault_dir(ctx, vault)
    with errors(), open_writer(ctx, vault, wait) as w:
        iv = asyncio.run(_manager(w, path).approve(iv_id, by or login_name()))
    _done(iv, as_json)


ReasonOpt = Annotated[str, typer.Option("--reason", metavar="TEXT", help="Why (required).")]


def _decide(
    ctx: typer.Context,
    step: str,
    iv_id: str,
    reason: str,
    by: str | None,
    vault: Path | None,
    wait: float,
    as_json: bool,
) -> None:
    """Reject or roll back ``iv_id`` through the manager (``step``: ``reject`` or ``rollback``)."""
    if not reason.strip():
        fail(f"--reason TEXT is required: say why ({step})", 2, kind="request")
    path = vault_dir(ctx, vault)
    with errors(), open_writer(ctx, vault, wait) as w:
        manager = _manager(w, path)
        call = manager.reject if step == "reject" else manager.rollback
        iv = asyncio.run(call(iv_id, by or login_name(), reason))
    _done(iv, as_json)


@interventions_app.command("reject")
def reject(
    ctx: typer.Context,
    iv_id: IdArg,
    reason: ReasonOpt = "",
    by: ByOpt = None,
    vault: VaultOpt = None,
    wait: WaitOpt = DEFAULT_WAIT,
    as_json: JsonOpt = False,
) -> None:
    """Reject an intervention that has not run (pending approval, deferred or approved).

    Needs --reason; recorded as an ``intervention`` entry. Exit 1 when it
    already ran or the ID is unknown, 2 without a reason. --json: the intervention.
    """
    _decide(ctx, "reject", iv_id, reason, by, vault, wait, as_json)


@interventions_app.command("rollback")
def rollback(
    ctx: typer.Context,
    iv_id: IdArg,
    reason: ReasonOpt = "",
    by: ByOpt = None,
    vault: VaultOpt = None,
    wait: WaitOpt = DEFAULT_WAIT,
    as_json: JsonOpt = False,
) -> None:
    """Roll back an executed intervention (this releases a quarantined feed).

    Needs --reason. Restores what it changed (the pause flag, the stretch,
    the breaker's saved state, the host's rate); irreversible kinds
    (rebuild_index, run_verify, free_disk) are refused (exit 2). Without a
    running service a stored change is undone at once; otherwise it is
    recorded and the service undoes it at its next cycle. --json: the intervention.
    """
    _decide(ctx, "rollback", iv_id, reason, by, vault, wait, as_json)
