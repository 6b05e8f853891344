"""``echoctl search``: full-text search over the archived items (titles, text, authors, URLs).

A thin shell over :func:`echo_archive.services.search.search`; registered on
the main app by :mod:`echo_archive.cli` (``register(app)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import typer

from echo_archive.cli.common import JsonOpt, VaultOpt, open_vault, out, safe
from echo_archive.cli.common import emit as _emit
from echo_archive.cli.common import errors as _errors
from echo_archive.services.paging import MAX_LIMIT
from echo_archive.services.search import SearchHit, TextPart
from echo_archive.services.search import search as search_items

__all__ = ["register", "render_parts"]


def render_parts(parts: Sequence[TextPart]) -> str:
    """Rich markup of a title or snippet: each part made inert (``safe``), hits in bold.

    Whitespace runs (newlines of a body) become one space. The only markup
    is this function's own ``[bold]``; a part's text can never open a style
    or send a terminal escape (:func:`echo_archive.cli.common.safe`).
    """
    shown: list[str] = []
    for part in parts:
        text = " ".join(part.text.split())
        if part.text[:1].isspace():
            text = " " + text
        if part.text[-1:].isspace() and text.strip():
            text += " "
        if not text:
            continue
        shown.append(f"[bold]{safe(text)}[/bold]" if part.hit else safe(text))
    return "".join(shown).strip()


def _line(hit: SearchHit) -> str:
    title = render_parts(hit.title_parts) or safe(" ".join(hit.title.split())) or "(no title)"
    state = "" if hit.state == "active" else f"  [dim]({safe(hit.state)})[/dim]"
    return f"[cyan]{hit.index}[/cyan]  {safe(hit.feed)}  {title}{state}"


def search(
    ctx: typer.Context,
    query: Annotated[
        str,
        typer.Argument(
            help='Words (all must match), "a phrase", prefix*, a OR b, -excluded '
            "(every term is searched literally: no FTS5 syntax)."
        ),
    ],
    source: Annotated[str | None, typer.Option(help="Only items of this source kind.")] = None,
    feed: Annotated[str | None, typer.Option(help="Only items of this feed.")] = None,
    state: Annotated[
        str | None,
        typer.Option(
            help="Only items in this state: active (the default), tombstoned, withdrawn, "
            "removed, or any."
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="Only items whose current entry was seen at or after this RFC 3339 time "
            "(with an offset: 2026-12-05T13:00:00Z)."
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(help="Only items whose current entry was seen before this RFC 3339 time."),
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=MAX_LIMIT, help="At most this many hits (one page).")
    ] = 20,
    cursor: Annotated[
        str | None,
        typer.Option(help="Continue after the page that printed this cursor (same query)."),
    ] = None,
    total: Annotated[bool, typer.Option("--total", help="Also count every match.")] = False,
    vault: VaultOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search the archived items' titles, text, authors and URLs, best match first.

    Ranked by bm25 (a title match counts most), with a snippet of where each
    item matched, hits in bold. Only active items unless --state says
    otherwise. When more match, the last line gives the --cursor of the next
    page. --json prints {"entries": [...], "next": CURSOR or null, "total": N
    or null}, each entry with its title_parts and snippet as
    [{"text": ..., "hit": true|false}, ...].
    """
    with _errors(), open_vault(ctx, vault) as v:
        page = search_items(
            v,
            query,
            source=source,
            feed=feed,
            state=state,
            since=since,
            until=until,
            limit=limit,
            cursor=cursor,
            total=total,
        )
    if as_json:
        _emit(
            {
                "entries": [h.to_json() for h in page.entries],
                "next": page.next,
                "total": page.total,
                "ranked_from": page.ranked_from,
            }
        )
        return
    counted = f" of {page.total}" if page.total is not None else ""
    out.print(f"{len(page.entries)}{counted} hit(s), best first", markup=False)
    for hit in page.entries:
        out.print(_line(hit))
        snippet = render_parts(hit.snippet)
        if snippet and hit.snippet != hit.title_parts:
            out.print(f"    {snippet}")
    if page.next is not None:
        out.print(f"more: --cursor {page.next}", markup=False)


def register(app: typer.Typer) -> None:
    """Add ``search`` to ``app``."""
    app.command()(search)
