"""``echoctl items`` and ``show``: list harvested items; one item's whole history.

Registered on the main app by :mod:`echo_archive.cli` (``register(app)``).
"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from typing import Annotated, Any

import typer
from rich.markup import escape

from echo_archive.cli.common import JsonOpt, VaultOpt, compact_table, out, vault_dir
from echo_archive.cli.common import emit as _emit
from echo_archive.cli.common import errors as _errors
from echo_archive.cli.common import fail as _fail
from echo_archive.errors import LogError
from echo_archive.vault.merkle import leaf_hash
from echo_archive.vault.vault import Vault

__all__ = ["register"]


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
    table = compact_table(f"{len(rows)} item(s), newest first")
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


def register(app: typer.Typer) -> None:
    """Add ``items`` and ``show`` to ``app``."""
    app.command()(items)
    app.command()(show)
