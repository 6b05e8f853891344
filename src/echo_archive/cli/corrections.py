"""``echoctl corrections add|list``: an editor's annotations, retractions and reinstatements.

Thin shells over :mod:`echo_archive.services.corrections` (the calls the
HTTP API's ``/v1/items/{ref}/corrections`` makes). Registered on the main app
by :mod:`echo_archive.cli` (``corrections_app``). A correction is a new
``correction`` entry in the log, written through the vault's writer
(waiting its turn for the writer lock like every writer); the item's own
entries are never touched. Reasons, texts and actors are printed inert
(:func:`~echo_archive.cli.common.safe`).
"""

from __future__ import annotations

import time
from typing import Annotated

import typer

from echo_archive.api.audit import cli_actor
from echo_archive.cli.common import (
    JsonOpt,
    VaultOpt,
    WaitOpt,
    compact_table,
    emit,
    errors,
    fail,
    open_vault,
    open_writer,
    out,
    safe,
)
from echo_archive.services.corrections import (
    CORRECTION_KINDS,
    MAX_CORRECTION_TEXT,
    MAX_REASON,
    Correction,
    correct_item,
    corrections_of,
    list_corrections,
)
from echo_archive.services.paging import MAX_LIMIT
from echo_archive.vault.lock import DEFAULT_WAIT
from echo_archive.vault.vault import Vault

__all__ = ["corrections_app"]

corrections_app = typer.Typer(
    help="An editor's corrections of items: annotate, retract or reinstate one with a "
    "reason (new log entries; nothing is rewritten).",
    no_args_is_help=True,
)

RefArg = Annotated[
    str, typer.Argument(metavar="REF", help="An item's entry index, or SOURCE:FEED:NATIVE_ID.")
]


@corrections_app.command("add")
def add(
    ctx: typer.Context,
    ref: RefArg,
    kind: Annotated[
        str,
        typer.Option(
            "--kind",
            metavar="KIND",
            help="annotation, retraction or reinstatement (withdraws a retraction).",
        ),
    ],
    reason: Annotated[
        str,
        typer.Option(
            "--reason",
            metavar="TEXT",
            help=f"Why, one line (1 to {MAX_REASON} characters, no control characters).",
        ),
    ],
    text: Annotated[
        str | None,
        typer.Option(
            "--text",
            metavar="TEXT",
            help=f"The annotation's body or a notice (up to {MAX_CORRECTION_TEXT} characters).",
        ),
    ] = None,
    vault: VaultOpt = None,
    wait: WaitOpt = DEFAULT_WAIT,
    as_json: JsonOpt = False,
) -> None:
    """Annotate, retract or reinstate an item, with a reason: a new ``correction`` entry.

    The entry names the item, the entry of it you saw, its previous
    correction, you (``cli:<login>``), the reason and the time; the item's
    entries are unchanged and the correction is provable like any entry
    (``echoctl prove INDEX``). A retraction of a retracted item, or a
    reinstatement of one not retracted, is refused (exit 1); a bad kind,
    reason or text is bad usage (exit 2); an unknown item is exit 1.
    --json: the correction (``index``, ``kind``, ``item``, ``reason``...).
    """
    if kind not in CORRECTION_KINDS:
        fail(f"--kind {kind!r}: expected one of {', '.join(CORRECTION_KINDS)}", 2, kind="request")
    with errors(), open_writer(ctx, vault, wait) as w, w.reader() as r:
        _, made = correct_item(w, r, ref, kind, reason, text, cli_actor(), None, time.time())
    if as_json:
        emit(made.to_json())
        return
    out.print(
        f"{made.kind} of {safe(made.key)} recorded as entry {made.index} "
        f"(previous correction: {'-' if made.previous is None else made.previous})"
    )


@corrections_app.command("list")
def list_(
    ctx: typer.Context,
    ref: Annotated[
        str | None,
        typer.Argument(
            metavar="[REF]",
            help="Only this item's corrections (entry index or SOURCE:FEED:NATIVE_ID).",
        ),
    ] = None,
    vault: VaultOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List corrections, oldest first: of one item, or of every item.

    Each validated against its schema as it is read: index, kind, item,
    time, actor, reason. Read-only: works beside a running service. --json: a
    list of corrections (``index``, ``logged_at``, ``kind``, ``item``,
    ``source``, ``feed``, ``native_id``, ``entry``, ``content_digest``,
    ``previous``, ``reason``, ``text``, ``actor``, ``request_id``, ``at``).
    """
    with errors(), open_vault(ctx, vault) as v:
        found = corrections_of(v, ref) if ref is not None else _every(v)
    if as_json:
        emit([c.to_json() for c in found])
        return
    table = compact_table(f"{len(found)} correction(s)")
    for col in ("index", "kind", "item", "at", "actor", "reason"):
        table.add_column(col, overflow="fold")
    for c in found:
        table.add_row(
            str(c.index),
            c.kind,
            safe(c.key),
            c.at.split(".")[0] + "Z",
            safe(c.actor),
            safe(c.reason),
        )
    out.print(table)


def _every(v: Vault) -> list[Correction]:
    """Every correction of the vault, oldest first (walking the listing's pages)."""
    found: list[Correction] = []
    cursor = None
    while True:
        page = list_corrections(v, order="oldest", limit=MAX_LIMIT, cursor=cursor)
        found.extend(page.entries)
        if page.next is None:
            return found
        cursor = page.next
