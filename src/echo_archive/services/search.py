r"""Full-text search over items: a safe query mini-syntax, bm25 ranking, snippets, keyset pages.

The index is :mod:`echo_archive.index.search` (SQLite FTS5 over each item's
current title, text, author and URL). This service is what the CLI
(``echoctl search``) and the coming ``GET /v1/search?q=`` call alike.

Query mini-syntax (:func:`parse_query`), translated into an FTS5 MATCH
expression in which every term is a double-quoted string (fts5.html section
3.1, "FTS5 Strings"; an embedded ``"`` is doubled), so that no input can
reach FTS5's own syntax (``NEAR``, ``AND``/``NOT``, ``^``, ``+``, column
filters ``title:``, parentheses):

===================  ==========================================================
``word``             items containing the word (stemmed: ``archives`` finds
                     ``archived``); words in a row must all match (AND)
``"two words"``      the phrase: the words next to each other, in order
``word*``            a prefix: any word starting so (``"word" *`` in FTS5)
``a OR b``           either (``OR`` in capitals; binds tighter than the AND
                     between terms: ``x a OR b`` is ``x AND (a OR b)``)
``-word``            items without the word (or ``-"phrase"``); at least one
                     term must be positive
===================  ==========================================================

Control characters are spaces (as in indexed text). A term with no letter
or digit (``***``, ``((``) is dropped (the tokenizer would find no word in
it); a query of at most :data:`MAX_QUERY_CHARS` characters and
:data:`MAX_TERMS` terms is accepted. Anything else (an
unclosed quote, a dangling ``OR``, only exclusions, nothing searchable) is
a :class:`~echo_archive.errors.QueryError` naming what is wrong.

Ranking: FTS5's ``bm25()`` with the column weights of
:data:`echo_archive.index.search.WEIGHTS` (title 10, body 1, author 3, url 2;
fts5.html section 5.1.1), best first; ties by the item's first log index,
oldest first. The ``score`` returned is bm25's value (negative; more negative
is better), kept as given so a cursor can hold it exactly.

Common words: bm25 scores every match, about 2.5 µs each (a word in every
one of 10^6 items: 2.5 s a page). So when more than ``window`` items (default
:data:`RANK_WINDOW`) match, the ranking is over the ``window`` newest of them
(by first log index: FTS5 walks its doclists in rowid order and skips the
rest, ``rowid >= floor``), and the page says so (``ranked_over`` in the API);
``window=0`` ranks every match. The floor is fixed by the first page and kept
in the cursor, so a walk ranks one window throughout.

Pages: keyset pagination over ``(score, first_index)``, a total order even
under bm25 ties, with an opaque cursor
(:func:`echo_archive.services.paging.encode_rank_cursor`) bound to the query
and the filters. bm25 depends on the whole index (document frequencies,
average lengths), so a commit between two pages changes the scores: a walk
is exact (no repeat, no gap) over an unchanged index and otherwise
best-effort, like every search engine's deep pages.

Snippets (fts5.html section 5.1.3, ``snippet()``; ``highlight()`` for the
title): FTS5 marks each matched phrase with ``\x02`` and ``\x03``, which
never occur in indexed text (control characters are removed at indexing),
and this service splits the text on them into :class:`TextPart`\ s: data, a
text and whether it is a hit, never markup. A shell renders the parts its own
way (the CLI: each part through ``terminal.inert``, hits in bold); the API
returns them as JSON.

States: tombstoned, withdrawn and removed items stay in the index; by
default only ``active`` items are returned; ``state`` picks another state,
``"any"`` all of them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from echo_archive.errors import QueryError, RequestError, StorageError
from echo_archive.index.items import STATE_CODES, item_filters
from echo_archive.index.search import WEIGHTS, without_controls
from echo_archive.services.paging import (
    Page,
    check_limit,
    decode_rank_cursor,
    encode_rank_cursor,
    fingerprint,
    parse_instant,
)
from echo_archive.vault.catalog import Catalog
from echo_archive.vault.vault import Vault

__all__ = [
    "MAX_QUERY_CHARS",
    "MAX_TERMS",
    "RANK_WINDOW",
    "SEARCH_STATES",
    "SearchHit",
    "SearchPage",
    "TextPart",
    "parse_query",
    "search",
]

MAX_QUERY_CHARS: Final = 1000
"""The longest query accepted, in characters."""

MAX_TERMS: Final = 32
"""The most terms (words, phrases, prefixes, exclusions) a query may hold."""

SEARCH_STATES: Final = (*STATE_CODES, "any")
"""The ``state`` filter's values: an item state, or ``any`` (every state)."""

_OPEN: Final = "\x02"
_CLOSE: Final = "\x03"
_SNIPPET_TOKENS: Final = 24
RANK_WINDOW: Final = 2_000
"""Matches bm25 ranks at most by default: the newest (module docstring, "Common words")."""

_BM25: Final = "bm25(search_fts, " + ", ".join(repr(w) for w in WEIGHTS) + ")"


@dataclass(frozen=True, slots=True)
class TextPart:
    """A piece of a title or snippet: its text, and whether it matched the query."""

    text: str
    hit: bool

    def to_json(self) -> dict[str, Any]:
        """``{"text": ..., "hit": true|false}``."""
        return {"text": self.text, "hit": self.hit}


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One search result: an item, its score and where the query matched.

    Attributes:
        index: the log index of the item's current entry (``echoctl show INDEX``).
        first_index: the log index of its first entry (the tie-break of the order).
        source, feed, native_id: the item's identity.
        state: its state (an item state of :data:`echo_archive.index.items.STATE_CODES`).
        seen_at: when its current entry's capture was fetched (RFC 3339 UTC).
        score: bm25 (negative; lower is a better match).
        title: the indexed title (plain text: tags, entities and control characters removed).
        author, url: as indexed.
        title_parts: the title split into hits and non-hits.
        snippet: the best-matching fragment of any column (about 24 words;
            ``…`` where it was cut), split into hits and non-hits.
    """

    index: int
    first_index: int
    source: str
    feed: str
    native_id: str
    state: str
    seen_at: str
    score: float
    title: str
    author: str
    url: str
    title_parts: tuple[TextPart, ...]
    snippet: tuple[TextPart, ...]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping; ``title_parts`` and ``snippet`` as lists of :class:`TextPart`."""
        out: dict[str, Any] = {
            name: getattr(self, name)
            for name in self.__slots__
            if name not in ("title_parts", "snippet")
        }
        out["title_parts"] = [p.to_json() for p in self.title_parts]
        out["snippet"] = [p.to_json() for p in self.snippet]
        return out


SearchPage = Page[SearchHit]
"""A page of search results: ``entries`` best first, ``next`` cursor, optional ``total``."""


# ----------------------------------------------------------------------------- query syntax


@dataclass(frozen=True, slots=True)
class _Term:
    text: str
    phrase: bool
    prefix: bool
    negative: bool

    def fts(self) -> str:
        quoted = '"' + self.text.replace('"', '""') + '"'
        return quoted + " *" if self.prefix else quoted


def _lex(q: str) -> list[_Term | str]:
    """Split ``q`` into terms and the ``OR`` operator.

    Raises:
        QueryError: an unclosed quote.
    """
    out: list[_Term | str] = []
    i, n = 0, len(q)
    while i < n:
        c = q[i]
        if c.isspace():
            i += 1
            continue
        negative = False
        if c == "-" and i + 1 < n and not q[i + 1].isspace():
            negative = True
            i += 1
        if q[i] == '"':
            end = q.find('"', i + 1)
            if end < 0:
                raise QueryError(f"query: the quote at character {i + 1} is never closed")
            text = q[i + 1 : end]
            i = end + 1
            prefix = i < n and q[i] == "*"
            i += 1 if prefix else 0
            out.append(_Term(text, True, prefix, negative))
            continue
        start = i
        while i < n and not q[i].isspace() and q[i] != '"':
            i += 1
        word = q[start:i]
        if word == "OR" and not negative:
            out.append("OR")
            continue
        prefix = word.endswith("*")
        word = word.rstrip("*")
        out.append(_Term(word, False, prefix and bool(word), negative))  # "***": dropped
    return out


def _searchable(term: _Term) -> bool:
    return any(ch.isalnum() for ch in term.text)


def parse_query(q: str) -> str:
    """Translate the mini-syntax (module docstring) into an FTS5 MATCH expression.

    Args:
        q: the query as the user typed it.

    Returns:
        The MATCH expression: only double-quoted strings, ``*`` after a
        string, ``AND``, ``OR``, ``NOT`` and parentheses.

    Raises:
        QueryError: ``q`` is empty, longer than :data:`MAX_QUERY_CHARS`, holds
            more than :data:`MAX_TERMS` terms, an unclosed quote, a dangling
            ``OR``, an excluded ``OR`` alternative, only exclusions, or nothing
            searchable (the message says which).
    """
    if len(q) > MAX_QUERY_CHARS:
        raise QueryError(f"query: {len(q):,} characters; at most {MAX_QUERY_CHARS:,} are accepted")
    tokens = _lex(without_controls(q))
    if sum(isinstance(t, _Term) for t in tokens) > MAX_TERMS:
        raise QueryError(f"query: more than {MAX_TERMS} terms")
    groups: list[list[_Term]] = []
    negatives: list[_Term] = []
    pending_or = False
    for token in tokens:
        if isinstance(token, str):  # the OR operator
            if not groups or pending_or:
                raise QueryError("query: OR needs a term on each side")
            pending_or = True
            continue
        assert isinstance(token, _Term)
        if token.negative:
            if pending_or:
                raise QueryError("query: an excluded term (-word) cannot be an OR alternative")
            if _searchable(token):
                negatives.append(token)
            continue
        if pending_or:
            groups[-1].append(token)
            pending_or = False
        else:
            groups.append([token])
    if pending_or:
        raise QueryError("query: OR needs a term on each side")
    kept = [[t for t in group if _searchable(t)] for group in groups]
    kept = [group for group in kept if group]
    if not kept:
        if negatives:
            raise QueryError("query: only exclusions (-word); add a word to search for")
        raise QueryError(f"query {q[:40]!r}: no word to search for")
    parts = [
        group[0].fts() if len(group) == 1 else "(" + " OR ".join(t.fts() for t in group) + ")"
        for group in kept
    ]
    expr = " AND ".join(parts)
    for term in negatives:
        expr = f"({expr}) NOT {term.fts()}"
    return expr


# ----------------------------------------------------------------------------- search


def _parts(marked: str) -> tuple[TextPart, ...]:
    """Split FTS5 output marked with the open and close markers into text parts."""
    parts: list[TextPart] = []
    for i, piece in enumerate(marked.split(_OPEN)):
        if i == 0:
            if piece:
                parts.append(TextPart(piece, False))
            continue
        hit, _, rest = piece.partition(_CLOSE)
        if hit:
            parts.append(TextPart(hit, True))
        if rest:
            parts.append(TextPart(rest, False))
    return tuple(parts)


def search(
    vault: Vault,
    q: str,
    *,
    source: str | None = None,
    feed: str | None = None,
    state: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
    total: bool = False,
    window: int | None = None,
    feeds: Collection[str] | None = None,
) -> SearchPage:
    """One page of the items matching ``q``, best bm25 match first (module docstring).

    Args:
        vault: an open vault (a reader is enough).
        q: the query, in the mini-syntax (:func:`parse_query`).
        source: only items of this source kind.
        feed: only items of this feed.
        state: only items in this state (one of :data:`SEARCH_STATES`;
            ``any``: every state); None: ``active`` only.
        since: only items whose current entry was seen at or after this
            RFC 3339 date-time (with an offset; compared as instants).
        until: only items whose current entry was seen before it.
        limit: hits per page, 1 to :data:`~echo_archive.services.paging.MAX_LIMIT`.
        cursor: the ``next`` of the previous page (same query and filters).
        total: also count every match (scores every match: slower on common words).
        window: rank at most this many of the newest matches (module
            docstring); None: :data:`RANK_WINDOW`; 0: every match.
        feeds: only items of one of these feeds (an API principal's feed
            group; empty: none); None: every feed.

    Returns:
        The page (``entries`` are :class:`SearchHit`); empty when the vault
        has no search index yet.

    Raises:
        QueryError: ``q`` cannot be used (:func:`parse_query`).
        RequestError: a bad ``state``, ``limit``, ``window`` or time.
        CursorError: the cursor is malformed or was issued for another query.
        StorageError: the catalog cannot be read.
    """
    limit = check_limit(limit)
    span = RANK_WINDOW if window is None else window
    if isinstance(span, bool) or not isinstance(span, int) or span < 0:
        raise RequestError(f"window {window!r}: expected an integer >= 0 (0: rank every match)")
    match = parse_query(q)
    wanted = "active" if state is None else state
    if wanted not in SEARCH_STATES:
        raise RequestError(f"state {state!r}: expected one of {', '.join(SEARCH_STATES)}")
    low = None if since is None else parse_instant(since, "since")
    high = None if until is None else parse_instant(until, "until")
    tag = fingerprint(
        {
            "search": match,
            "source": source,
            "feed": feed,
            "state": wanted,
            "since": low,
            "until": high,
            **({} if feeds is None else {"feeds": sorted(feeds)}),
        }
    )
    after = None if cursor is None else decode_rank_cursor(cursor, tag)
    catalog = vault.catalog
    if "search_fts" not in catalog.tables():
        return Page(entries=[], next=None, total=0 if total else None, ranked_from=0)
    filters, values = item_filters(
        source, feed, None, low, high, None if wanted == "any" else wanted, feeds
    )
    where = ["search_fts MATCH ?", *filters]
    args: list[Any] = [match, *values]
    base = "FROM search_fts JOIN items i ON i.first_idx = search_fts.rowid WHERE " + " AND ".join(
        where
    )
    floor = 0
    try:
        if after is not None:
            floor = after[2]
        elif span:
            edge = catalog.query_one(
                f"SELECT search_fts.rowid {base} ORDER BY search_fts.rowid DESC LIMIT 1 OFFSET ?",
                [*args, span],
            )
            # more than span matches: rank the span newest (rowid above the (span+1)-th)
            floor = 0 if edge is None else int(edge[0]) + 1
    except StorageError as exc:
        if "fts5" in str(exc.__cause__ or exc):
            raise QueryError(f"query {q[:40]!r}: the index refused it ({exc.__cause__})") from exc
        raise
    page_where, page_args = "", list(args)
    if floor:
        page_where = " AND search_fts.rowid >= ?"
        page_args.append(floor)
    if after is not None:
        page_where += " AND (score > ? OR (score = ? AND search_fts.rowid > ?))"
        page_args += [after[0], after[0], after[1]]
    sql = (
        f"SELECT search_fts.rowid, {_BM25} AS score, i.source, i.feed, i.native_id, "
        f"i.idx, i.tombstoned, i.seen_at {base}{page_where} "
        "ORDER BY score, search_fts.rowid LIMIT ?"
    )
    try:
        rows = list(catalog.query(sql, [*page_args, limit + 1]))
        more = len(rows) > limit
        rows = rows[:limit]
        shown = _shown(catalog, match, [int(r[0]) for r in rows])
        count = None
        if total:
            found = catalog.query_one(f"SELECT count(*) {base}", args)
            count = int(found[0]) if found else 0
    except StorageError as exc:
        if "fts5" in str(exc.__cause__ or exc):  # a backstop: parse_query emits valid syntax
            raise QueryError(f"query {q[:40]!r}: the index refused it ({exc.__cause__})") from exc
        raise
    names = {code: name for name, code in STATE_CODES.items()}
    hits: list[SearchHit] = []
    for rowid, score, src, fd, native_id, idx, code, seen_at in rows:
        title, author, url, title_marked, snippet = shown.get(int(rowid), ("", "", "", "", ""))
        hits.append(
            SearchHit(
                index=int(idx),
                first_index=int(rowid),
                source=str(src),
                feed=str(fd),
                native_id=str(native_id),
                state=names.get(int(code), "tombstoned"),
                seen_at=str(seen_at),
                score=float(score),
                title=title,
                author=author,
                url=url,
                title_parts=_parts(title_marked),
                snippet=_parts(snippet),
            )
        )
    token = None
    if more and hits:
        token = encode_rank_cursor(hits[-1].score, hits[-1].first_index, tag, floor)
    return Page(entries=hits, next=token, total=count, ranked_from=floor)


def _shown(
    catalog: Catalog, match: str, rowids: Sequence[int]
) -> Mapping[int, tuple[str, str, str, str, str]]:
    """Title, author, url, the marked title and the marked snippet of the page's rows only.

    Computed after the page is chosen, so a common word's thousands of
    matches are scored but not cut into snippets.
    """
    if not rowids:
        return {}
    marks = ", ".join("?" * len(rowids))
    sql = (
        "SELECT rowid, title, author, url, "  # noqa: S608 - fixed clauses, "?" marks
        f"highlight(search_fts, 0, char(2), char(3)), "
        f"snippet(search_fts, -1, char(2), char(3), '…', {_SNIPPET_TOKENS}) "
        f"FROM search_fts WHERE search_fts MATCH ? AND rowid IN ({marks})"
    )
    return {
        int(r[0]): (str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]))
        for r in catalog.query(sql, [match, *rowids])
    }
