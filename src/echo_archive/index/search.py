r"""The full-text search index: each item's latest content in an SQLite FTS5 table.

``search_fts(rowid, title, body, author, url, idx)``
(:class:`SearchIndex`, ``echoctl rebuild search``): one row per item, whose
``rowid`` is the item's ``first_idx`` (the log index of its first entry,
which never changes; :mod:`echo_archive.index.items`), holding the content
of the item's *current* version (the one the item index names: observed
last) taken from its item blob (docs/entries.md, ``ItemBlob``):

========  ===========================================================  ======
column    from the item blob                                           weight
========  ===========================================================  ======
title     ``title``                                                    10
body      ``text`` (HTML tags dropped, entities decoded; first         1
          :data:`MAX_BODY_CHARS` characters)
author    ``author`` (a name or handle)                                3
url       ``url`` (split into words by the tokenizer)                  2
idx       the log index of the entry whose item blob was indexed       (not
                                                                       indexed)
========  ===========================================================  ======

Every source fills these four fields of the item blob (RSS/Atom/JSON Feed:
title, summary or content, author, link; Hacker News: title, text, by, url;
Reddit: title, selftext, author, url; GitHub: the event's or issue's title,
body, actor and html_url; FRED: the series title and notes), so the index
needs no per-source rule. The weights are the bm25 column weights
(:data:`WEIGHTS`; https://www.sqlite.org/fts5.html section 5.1.1, "The
bm25() function"): a word in a title counts ten times one in the body.

Text is indexed as plain text (:func:`plain_text`): HTML tags are replaced
by a space and entities decoded (a regular expression, not a parser: this is
for indexing, never for rendering), and control characters (C0 and C1 but
tab and newline) become spaces. So the snippet markers that
:mod:`echo_archive.services.search` asks FTS5 for (``\x02`` and ``\x03``)
never occur in indexed text and are unambiguous, and terminal escapes in a
title are already broken up (the CLI prints through ``terminal.inert`` anyway).

Which content: the item index row's ``digest`` (its current content digest;
a tombstone keeps the one it buried) looked up in ``item_contents`` gives
the first entry that had that content, whose item blob is indexed. The row
is thus a function of the item's final index rows, the same whether the
entries arrive one commit at a time or all at once ("rebuild equals
incremental", DESIGN.md invariant 8). An item whose blob is missing from the
store is left out (``verify`` reports the lost blob; the index never makes a
commit fail on its own account).

Tombstoned, withdrawn and removed items keep their row (the content they
last had, or, for ``removed``, the remains the source still showed): the
search service leaves them out by default and takes ``state`` to include
them (:func:`echo_archive.services.search.search`); their state is read from
the item index at query time, so a tombstone changes no search row.

Tokenizer: ``porter unicode61 remove_diacritics 2`` (fts5.html section 4.3,
"Tokenizers"). ``unicode61`` splits on Unicode separators and punctuation and
folds case for every script; ``remove_diacritics 2`` folds diacritics, also
those of composed characters ("café" matches "cafe"); ``porter`` stems English
words ("archived" matches "archives"), which most of the corpora are; other
languages are tokenized correctly and only miss stemming. A trigram tokenizer
(substring search) would triple the index and serve no query of the
mini-syntax; prefix queries (``arch*``) run on the main index without a
``prefix=`` option, fast enough at the benchmark's sizes (benchmarks/README.md).

Storage: a regular (content-storing) FTS5 table in the catalog. A
contentless table (``content=''``) cannot give snippets or highlights
(section 4.4.3) and an external-content one would need the text in another
catalog table anyway (the item blobs live in the blob store, compressed);
keeping it in the catalog makes it part of the commit transaction, so a
commit and its index rows are all or nothing. ``benchmarks/bench_search.py``
reports the size per item.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import Final

from echo_archive.errors import BlobNotFoundError
from echo_archive.index.items import ITEM_TYPES, ItemRow, known_many
from echo_archive.vault.catalog import Catalog, Row
from echo_archive.vault.derived import LogView
from echo_archive.vault.entry import Entry

__all__ = [
    "MAX_BODY_CHARS",
    "SEARCH_COLUMNS",
    "TOKENIZER",
    "WEIGHTS",
    "SearchDoc",
    "SearchIndex",
    "doc_of_blob",
    "insert_docs",
    "plain_text",
    "without_controls",
]

TOKENIZER: Final = "porter unicode61 remove_diacritics 2"
"""The FTS5 tokenizer (module docstring, "Tokenizer")."""

SEARCH_COLUMNS: Final = ("title", "body", "author", "url")
"""The indexed columns, in table order (the order of :data:`WEIGHTS`)."""

WEIGHTS: Final = (10.0, 1.0, 3.0, 2.0)
"""bm25 weights of :data:`SEARCH_COLUMNS` (fts5.html section 5.1.1)."""

MAX_BODY_CHARS: Final = 100_000
"""Characters of an item's text indexed at most (the rest is in the item blob)."""

_IN_CHUNK: Final = 500
_TAG: Final = re.compile(r"<[^>]*>")
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

SearchDoc = tuple[int, str, str, str, str, int]
"""A row of ``search_fts``: ``(rowid = first_idx, title, body, author, url, idx)``."""


def plain_text(text: str, limit: int | None = None) -> str:
    r"""``text`` as indexed: tags replaced by a space, entities decoded, control characters spaces.

    Args:
        text: a field of an item blob (may hold HTML).
        limit: keep at most this many characters (None: all).

    Returns:
        The text, without ``\x00``-``\x08``, ``\x0b``-``\x1f``, ``\x7f``-``\x9f``
        (so ``\x02``/``\x03``, the snippet markers, never occur in it).
    """
    if limit is not None:
        text = text[: limit * 2]  # tags and entities shrink; cut before the work
    if "<" in text:
        text = _TAG.sub(" ", text)
    if "&" in text:
        text = html.unescape(text)
    text = without_controls(text)
    return text if limit is None else text[:limit]


def without_controls(text: str) -> str:
    r"""``text`` with each control character (C0 and C1 but tab and newline, DEL) a space.

    What indexed text and search queries both go through (a NUL in a query
    would end FTS5's string early).
    """
    return _CONTROL.sub(" ", text)


def doc_of_blob(first_idx: int, idx: int, blob: bytes) -> SearchDoc | None:
    """The ``search_fts`` row of an item blob (docs/entries.md, ``ItemBlob``).

    Args:
        first_idx: the item's first log index (the row id).
        idx: the log index of the entry naming the blob.
        blob: the item blob (canonical JSON).

    Returns:
        The row, or None when the blob is not a JSON object.
    """
    try:
        doc = json.loads(blob)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None

    def field(name: str, limit: int | None = 4096) -> str:
        value = doc.get(name)
        return plain_text(value, limit) if isinstance(value, str) else ""

    return (
        first_idx,
        field("title"),
        field("text", MAX_BODY_CHARS),
        field("author"),
        field("url"),
        idx,
    )


def insert_docs(tx: Catalog, docs: Sequence[SearchDoc]) -> None:
    """Replace the ``search_fts`` rows of ``docs``' row ids by ``docs`` (caller's transaction).

    Raises:
        StorageError: a write failed.
    """
    if not docs:
        return
    tx.executemany("DELETE FROM search_fts WHERE rowid = ?", [(d[0],) for d in docs])
    tx.executemany(
        "INSERT INTO search_fts(rowid, title, body, author, url, idx) VALUES (?, ?, ?, ?, ?, ?)",
        docs,
    )


def _content_entries(
    tx: Catalog, rows: Iterable[ItemRow]
) -> dict[tuple[str, str, str], tuple[ItemRow, int]]:
    """Each row's current content: the first entry with its digest (``item_contents``)."""
    wanted: dict[tuple[str, str], dict[str, ItemRow]] = {}
    for row in rows:
        if row.digest:
            wanted.setdefault((row.source, row.feed), {})[row.native_id] = row
    found: dict[tuple[str, str, str], tuple[ItemRow, int]] = {}
    for (source, feed), by_id in wanted.items():
        ids = sorted(by_id)
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            sql = (
                "SELECT native_id, digest, first_idx FROM item_contents "  # noqa: S608 - only "?" marks are formatted in
                f"WHERE source = ? AND feed = ? AND native_id IN ({','.join('?' * len(chunk))})"
            )
            for native_id, digest, first_idx in tx.query(sql, (source, feed, *chunk)):
                row = by_id[str(native_id)]
                if bytes(digest) == row.digest:
                    found[(source, feed, row.native_id)] = (row, int(first_idx))
    return found


class SearchIndex:
    """The ``search`` derived index (see the module docstring)."""

    name = "search"
    tables = ("search_fts",)
    ddl = (
        "CREATE VIRTUAL TABLE IF NOT EXISTS search_fts USING fts5("
        "title, body, author, url, idx UNINDEXED, "
        f"tokenize = '{TOKENIZER}')"
    )
    requires = ("leaves", "items", "item_contents")
    """It reads the item indexes; ``leaves`` too, as ``items`` does, so a comparison
    (:func:`echo_archive.vault.derived.compare`, given the direct requirements)
    rebuilds all three first."""
    per_entry = False
    key_columns = 1
    columns = ("first_idx", "idx", "title", "body", "author", "url")
    rebuildable = True

    def apply(
        self,
        tx: Catalog,
        first_index: int,
        entries: Sequence[Entry],
        log: LogView,
        given: object | None = None,
    ) -> None:
        """Index the current content of every item an entry of ``entries`` belongs to.

        Runs after the item indexes (:attr:`requires`) in the same
        transaction, so their rows already include ``entries``. ``given``
        may map blob digests to their bytes (the committer's batch: no
        re-read from the store); any other blob is read through ``log``.

        Raises:
            StorageError: a write failed (the commit rolls back).
        """
        keys = {
            (str(e.meta.get("source")), str(e.meta.get("feed")), str(e.meta.get("native_id")))
            for e in entries
            if e.type in ITEM_TYPES
        }
        if not keys:
            return
        current = _content_entries(tx, known_many(tx, keys).values())
        end = first_index + len(entries)
        docs: list[SearchDoc] = []
        blobs: dict[bytes, bytes] = {}
        if isinstance(given, Mapping):
            blobs.update((k, v) for k, v in given.items() if isinstance(v, bytes))
        for row, idx in current.values():
            entry = entries[idx - first_index] if first_index <= idx < end else log.entry(idx)
            if not entry.blobs:
                continue
            digest = entry.blobs[0].digest
            try:
                blob = blobs.get(digest) or log.blob(digest)
            except BlobNotFoundError:
                continue  # verify reports the lost blob; the item is left out of search
            blobs[digest] = blob
            doc = doc_of_blob(row.first_idx, idx, blob)
            if doc is not None:
                docs.append(doc)
        docs.sort()
        insert_docs(tx, docs)

    def rows(self, catalog: Catalog, indexes: Collection[int] | None = None) -> Iterator[Row]:
        """Yield every row ``(first_idx, idx, title, body, author, url)``, by ``first_idx``."""
        return catalog.query(
            "SELECT rowid, idx, title, body, author, url FROM search_fts ORDER BY rowid"
        )
