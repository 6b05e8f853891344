"""``echoctl items`` and ``show``: list harvested items; one item's whole history.

Registered on the main app by :mod:`echo_archive.cli` (``register(app)``).
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Annotated

import typer

from echo_archive.cli.common import JsonOpt, VaultOpt, compact_table, open_vault, out, safe
from echo_archive.cli.common import emit as _emit
from echo_archive.cli.common import errors as _errors
from echo_archive.services.diffs import VersionDiff, version_diffs
from echo_archive.services.items import ItemHistory, ItemQuery, item_history, list_items
from echo_archive.services.paging import MAX_LIMIT
from echo_archive.terminal import inert

__all__ = ["register"]


def items(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option(help="Only items of this source kind.")] = None,
    feed: Annotated[str | None, typer.Option(help="Only items of this feed.")] = None,
    state: Annotated[
        str | None,
        typer.Option(help="Only items in this state: active, tombstoned, withdrawn or removed."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="Only items whose latest version or tombstone was seen at or after this "
            "RFC 3339 time (with an offset: 2026-12-05T13:00:00Z, ...+01:00)."
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(help="Only items last seen before this RFC 3339 time (with an offset)."),
    ] = None,
    oldest: Annotated[
        bool, typer.Option("--oldest", help="Oldest first (default: newest first).")
    ] = False,
    limit: Annotated[
        int, typer.Option(min=1, max=MAX_LIMIT, help="At most this many items (one page).")
    ] = 50,
    cursor: Annotated[
        str | None,
        typer.Option(help="Continue after the page that printed this cursor (same filters)."),
    ] = None,
    total: Annotated[bool, typer.Option("--total", help="Also count every matching item.")] = False,
    vault: VaultOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List harvested items, newest first: native id, title, versions, state, entry index.

    Items are in the order they were first archived (a new version does not
    move an item), one page of --limit at a time: when more match, the last
    line gives the --cursor of the next page. --json prints the page as
    {"entries": [...], "next": CURSOR or null, "total": N or null}.
    """
    query = ItemQuery(
        source=source,
        feed=feed,
        state=state,
        since=since,
        until=until,
        order="oldest" if oldest else "newest",
        limit=limit,
        cursor=cursor,
        total=total,
    )
    with _errors(), open_vault(ctx, vault) as v:
        page = list_items(v, query)
    if as_json:
        _emit(
            {
                "entries": [e.to_json() for e in page.entries],
                "next": page.next,
                "total": page.total,
            }
        )
        return
    rows = page.entries
    # One line per item: the id and title are cut with an ellipsis to fit the
    # terminal (``--json`` gives them whole); the entry index and feed never are.
    cells = [
        (
            str(row.index),
            inert(row.feed),
            inert(row.native_id),
            inert(" ".join(row.title.split())),
            str(row.versions),
            _STATE_LABEL.get(row.state, row.type),
            row.seen_at[:16].replace("T", " "),
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
    counted = f" of {page.total}" if page.total is not None else ""
    table = compact_table(f"{len(rows)}{counted} item(s), {query.order} first")
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
        table.add_row(*(safe(c) for c in cell))
    out.print(table)
    if page.next is not None:
        out.print(f"more: --cursor {page.next}", markup=False)


def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="An item's entry index, or SOURCE:FEED:NATIVE_ID.")],
    diff: Annotated[
        bool,
        typer.Option("--diff", help="Show what changed between versions, as unified diffs."),
    ] = False,
    vault: VaultOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show an item: latest content, every version and tombstone, captures and observations.

    With --diff: what changed from each version to the next, oldest first, as
    unified diffs of the text fields (title, url, author, published_at, text,
    extra); --json then prints {"key", "diffs": [{"older", "newer", "type",
    "fields", "lines"}]}.
    """
    with _errors(), open_vault(ctx, vault) as v:
        history = item_history(v, ref)
    if diff:
        diffs = version_diffs(history)
        if as_json:
            _emit({"key": str(history.key), "diffs": [d.to_json() for d in diffs]})
            return
        _print_diffs(history, diffs)
        return
    if as_json:
        _emit(history.to_json())
        return
    _print_item(history)


def _print_diffs(item: ItemHistory, diffs: list[VersionDiff]) -> None:
    """The plain-text form of ``echoctl show --diff`` (every line made inert)."""
    out.print(f"[bold]{safe(item.key)}[/]: {len(diffs)} change(s), oldest first")
    if not diffs:
        out.print("  one version only: nothing changed")
    for d in diffs:
        what = ", ".join(d.fields) if d.fields else "no text field"
        if d.type == "tombstone":
            what = "tombstoned"
        out.print(f"\nentry {d.older} -> entry {d.newer} ({d.type}): {safe(what)}")
        for line in d.lines:
            style = "green" if line.startswith("+") else "red" if line.startswith("-") else None
            text = safe(line)
            out.print(f"[{style}]{text}[/]" if style else text)


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


_STATE_LABEL = {"tombstoned": "tombstone", "withdrawn": "withdrawn", "removed": "removed"}
"""The ``state`` column of ``echoctl items`` for items not active (else the entry type)."""
_STATE_SHOWN = {
    "tombstoned": "tombstoned",
    "withdrawn": "withdrawn from its feed",
    "removed": "removed at the source when first seen (live version never archived)",
}
"""How ``echoctl show`` names a state that is not active."""


def _print_item(item: ItemHistory) -> None:
    """The plain-text form of ``echoctl show``: content, history, captures, observations."""
    latest = item.latest
    history, observations, captures = item.history, item.observations, item.captures
    out.print(f"[bold]{safe(str(latest.get('title') or '(no title)'))}[/]")
    if latest.get("url"):
        out.print(f"  {safe(str(latest['url']))}")
    facts = [str(item.key)]
    if latest.get("author"):
        facts.append(f"by {latest['author']}")
    if latest.get("published_at"):
        facts.append(f"published {latest['published_at']}")
    out.print("  " + safe(" · ".join(facts)))
    text = _readable(str(latest.get("text") or ""))
    if text:
        out.print("  " + safe(text[:300] + ("…" if len(text) > 300 else "")))
    if item.state != "active":
        reason = history[0].meta.get("reason", "")
        what = _STATE_SHOWN.get(item.state, item.state)
        out.print(f"  [red]{what}[/] at entry {history[0].index}: {safe(str(reason))}")
    if item.retracted:
        out.print("  [red]retracted by an editor[/] (see its corrections below)")
    out.print(f"\nhistory ({len(history)} entr{'y' if len(history) == 1 else 'ies'}, newest first)")
    for h in history:
        capture = h.capture_index
        out.print(
            f"  entry {h.index}  {h.type:<9} logged {h.logged_at}  "
            f"content {str(h.meta.get('content_digest', ''))[:19]}…"
            + (f"  from capture {capture}" if capture is not None else "")
        )
    if captures:
        out.print(f"\ncaptures ({len(captures)})")
        for c in captures:
            flag = f"  [yellow]{safe(str(c['error']))}[/]" if c["error"] else ""
            out.print(
                f"  entry {c['index']}  {c['fetched_at']}  {c['status']}  {safe(c['url'])}{flag}"
            )
    if item.corrections:
        out.print(f"\ncorrections ({len(item.corrections)}, oldest first)")
        for fix in item.corrections:
            out.print(
                f"  entry {fix.index}  {fix.kind:<13} {fix.at}  "
                f"{safe(fix.actor)}: {safe(fix.reason)}"
            )
    if observations:
        last = observations[-1]
        counters = " ".join(f"{k}={v}" for k, v in sorted(last["counters"].items()))
        out.print(
            f"\nobservations ({len(observations)}); latest {last['seen_at']}: {safe(counters)}"
        )


def register(app: typer.Typer) -> None:
    """Add ``items`` and ``show`` to ``app``."""
    app.command()(items)
    app.command()(show)
