"""Turn fetched exchanges and their parse results into log entries and catalog rows.

A *sighting* is one exchange of a feed with what its source made of it. For
a batch of sightings, :func:`build_batch` produces, in log order:

* a ``capture`` entry per exchange (raw first, DESIGN.md invariant 5): its
  body as a blob, and as metadata the method, URL and redirect chain, status,
  the response headers that matter, the fetch time and duration, the
  recording's own time when it came from one, whether the body was cut, and
  the parse error if the source could not parse it;
* after each capture, an ``item``, ``version`` or ``tombstone`` entry per
  item or tombstone the source found that adds something (versioning rules in
  :mod:`echo_archive.pipeline.versioning`); each names the capture it came
  from by the capture entry's leaf hash, and a version or tombstone names the
  log index of the entry it follows. The item itself is a canonical-JSON blob.

Duplicates add no entry; their counters, like every sighting's, become an
observation row. URLs are stored with credentials redacted.

:func:`build_batch` is pure: what the vault already knows of each item comes
from a :data:`KnownLookup` the caller passes (it reads the item index), and
nothing here reads or writes a file or a database (an import-linter contract
keeps it so). :func:`echo_archive.harvest.commit.commit_batch` does the
I/O: it looks the items up, stores the blobs and appends the entries, the
vault applying the derived indexes (:mod:`echo_archive.index`) in the same
catalog transaction, the observation index taking this batch's observations.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from echo_archive.errors import EntryError
from echo_archive.index.items import ItemRow, capture_time, next_row
from echo_archive.index.observations import ObservationRow
from echo_archive.model import Exchange, Item, ParseResult, Request, Tombstone
from echo_archive.pipeline.versioning import (
    Decision,
    Known,
    content_document,
    content_json,
    decide,
    decide_tombstone,
)
from echo_archive.redaction import redact_headers, redact_text, redact_url
from echo_archive.schemas import (
    HttpCapture,
    ItemBlob,
    ItemMetaV2,
    RemovedItemMeta,
    TombstoneMeta,
    VersionMetaV2,
    WithdrawnMeta,
    validate_blob_document,
)
from echo_archive.sources.base import Feed
from echo_archive.vault.entry import Entry, canonical_json
from echo_archive.vault.merkle import leaf_hash

__all__ = [
    "BatchCounts",
    "ItemKey",
    "KnownLookup",
    "Sighting",
    "build_batch",
    "item_blob",
    "with_contents",
]

KEPT_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "content-encoding",
        "etag",
        "last-modified",
        "cache-control",
        "expires",
        "date",
        "age",
        "retry-after",
        "location",
        "link",
        "x-poll-interval",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "x-ratelimit-used",
        "x-ratelimit-resource",
    }
)
"""Response headers kept in a capture entry (the ones that matter, issue 3 §Records)."""


@dataclass(frozen=True)
class Sighting:
    """One exchange of a feed and what its source made of it.

    Attributes:
        feed: the feed.
        request: the request the exchange answers.
        exchange: the exchange as received.
        result: the parse result, or None when parsing failed.
        error: the parse error in plain words, or None.
        contents: the canonical content JSON
            (:func:`~echo_archive.pipeline.versioning.content_json`) of each
            of ``result.items``, in order, when already computed (by the
            worker process that parsed them: :func:`with_contents`); None to
            compute them at commit.
        parsed: False when the exchange was deliberately not given to a
            parser (the link of a withdrawn entry, fetched to confirm a
            deletion): ``error`` then says what it is, stored as the
            capture's ``parse_error``, and it is not counted as a parse error.
    """

    feed: Feed
    request: Request
    exchange: Exchange
    result: ParseResult | None
    error: str | None = None
    contents: tuple[bytes, ...] | None = None
    parsed: bool = True


def with_contents(sighting: Sighting) -> Sighting:
    """Return ``sighting`` with the canonical content JSON of its items computed.

    Meant for the process that parsed the items, so the committing process
    does not canonicalize them. An item that canonical JSON cannot represent
    leaves ``contents`` None: the commit then meets the error and handles it.
    """
    if sighting.result is None or not sighting.result.items:
        return sighting
    try:
        contents = tuple(content_json(item) for item in sighting.result.items)
    except EntryError:
        return sighting
    return replace(sighting, contents=contents)


@dataclass
class BatchCounts:
    """What a batch added: entries by kind, duplicates, observations, bytes of bodies.

    ``removed`` counts the new items archived in the removed state (gone at
    the source when first seen); they are also counted in ``new``.
    ``unknown_tombstones`` counts tombstones of items never archived that
    carry nothing to archive (a 404, a ``null`` body). ``withdrawn`` counts
    the ``withdrawn`` tombstones (taken out of the feed document), also
    counted in ``tombstones``.
    """

    captures: int = 0
    new: int = 0
    removed: int = 0
    versions: int = 0
    duplicates: int = 0
    tombstones: int = 0
    withdrawn: int = 0
    unknown_tombstones: int = 0
    observations: int = 0
    parse_errors: int = 0
    bytes: int = 0

    def add_to(self, target: object) -> None:
        """Add these counts to the same-named integer attributes of ``target`` (a report)."""
        for name in self.__dataclass_fields__:
            if hasattr(target, name):
                setattr(target, name, getattr(target, name) + getattr(self, name))


@dataclass
class Batch:
    """Entries to append (with the blobs they name), what they do to the item index, observations.

    ``items`` is the item index as the batch leaves it (the derived index
    computes the same rows from the entries at commit); ``observations`` are
    handed to the observation index, as duplicates add no entry.
    """

    entries: list[Entry] = field(default_factory=list)
    blobs: list[bytes] = field(default_factory=list)
    items: dict[tuple[str, str, str], ItemRow] = field(default_factory=dict)
    observations: list[ObservationRow] = field(default_factory=list)
    counts: BatchCounts = field(default_factory=BatchCounts)


def capture_meta(
    feed: Feed, exchange: Exchange, error: str | None, warning: str | None = None
) -> HttpCapture:
    """The metadata of a capture entry (:class:`~echo_archive.schemas.HttpCapture`).

    Every URL, kept header and message passes through ECHO's one redaction
    (:mod:`echo_archive.redaction`): an entry is permanent (DESIGN.md invariant 9).

    Raises:
        EntrySchemaError: the exchange breaks the schema (an empty method or
            URL, a time not in RFC 3339...), naming the field.
    """
    headers: dict[str, str] = {}
    for name, value in redact_headers(exchange.headers):
        key = name.lower()
        if key in KEPT_HEADERS:
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return HttpCapture(
        source=feed.source,
        feed=feed.name,
        method=exchange.method,
        url=redact_url(exchange.url),
        final_url=redact_url(exchange.final_url or exchange.url),
        redirects=[redact_url(u) for u in exchange.redirects],
        status=exchange.status,
        headers=headers,
        fetched_at=exchange.fetched_at,
        elapsed_ms=round(exchange.elapsed * 1000),
        recorded_at=exchange.recorded_at,
        truncated=exchange.truncated,
        parse_error=None if error is None else redact_text(error),
        parse_warning=None if warning is None else redact_text(warning),
    )


def item_blob(item: Item, capture: str, fetched_at: str, content: bytes | None = None) -> bytes:
    """The item blob: canonical JSON of the content document plus counters, capture and fetch time.

    The blob is ``content_document(item)`` with ``counters``, ``capture``
    (the capture entry's leaf hash, ``sha256:<hex>``) and ``fetched_at``
    added, as RFC 8785 canonical JSON. Given ``content`` (the item's
    :func:`~echo_archive.pipeline.versioning.content_json`, already computed
    for its digest), the blob is spliced from it instead of canonicalizing
    again: JCS sorts keys (RFC 8785 §3.2.3), so ``capture`` and ``counters``
    go right before the top-level ``"deleted"`` key, which follows only
    ``author`` (a string: a raw ``,"deleted":`` cannot occur inside a JSON
    string, whose quotes are escaped), and ``fetched_at`` right before the
    top-level ``"native_id"`` key, which only string fields follow, so it is
    the last ``,"native_id":`` of the text. ``tests/test_batch.py`` checks the
    splice against full canonicalization on generated items.

    Raises:
        EntrySchemaError: the blob breaks :class:`~echo_archive.schemas.ItemBlob`
            (a time not in RFC 3339, an unsafe number...), naming the field.
        EntryError: the item holds something JCS cannot represent.
    """
    doc = content_document(item)
    doc["counters"] = dict(item.counters)
    doc["capture"] = capture
    doc["fetched_at"] = fetched_at
    where = f"item blob of {item.source}:{item.feed}:{item.native_id}"
    validate_blob_document(ItemBlob, doc, where)
    if content is not None and all(
        type(v) is str
        for v in (item.author, item.published_at, item.source, item.text, item.title, item.url)
    ):
        cut_before_deleted = content.find(b',"deleted":')
        cut_before_native_id = content.rfind(b',"native_id":')
        if content.startswith(b'{"author":') and 0 < cut_before_deleted < cut_before_native_id:
            return b"".join(
                (
                    content[:cut_before_deleted],
                    b',"capture":',
                    canonical_json(capture),
                    b',"counters":',
                    canonical_json(dict(item.counters)),
                    content[cut_before_deleted:cut_before_native_id],
                    b',"fetched_at":',
                    canonical_json(fetched_at),
                    content[cut_before_native_id:],
                )
            )
    return canonical_json(doc)


_ENTRY_TYPE = {"new": "item", "version": "version", "tombstone": "tombstone"}


ItemKey = tuple[str, str, str]
"""An item's key: ``(source, feed, native_id)``."""

KnownLookup = Callable[
    [Sequence[ItemKey]], tuple[Mapping[ItemKey, ItemRow], Mapping[ItemKey, frozenset[bytes]]]
]
"""What the archive knows of items: ``lookup(keys) -> (rows, contents)``.

For each ``(source, feed, native_id)`` it knows, ``rows`` holds its item-index
row (:class:`~echo_archive.index.items.ItemRow`) and ``contents`` every content
digest the item had (the ``item_contents`` index); unknown keys are absent.
The caller reads them (:func:`echo_archive.harvest.commit.commit_batch`:
:func:`~echo_archive.index.items.known_many` and
:func:`~echo_archive.index.items.known_contents` on the writer's catalog).
"""


def build_batch(
    sightings: Sequence[Sighting], lookup: KnownLookup, start_index: int, logged_at: str
) -> Batch:
    """Build the entries, blobs and derived rows for ``sightings`` (pure).

    Args:
        sightings: in the order their captures join the log.
        lookup: what the archive already knows of the items (:data:`KnownLookup`),
            asked once for every item and tombstone of the batch.
        start_index: the log index the first entry will get (the log size now).
        logged_at: RFC 3339 time the batch joins the log.

    Returns:
        The batch; ``batch.entries[k]`` will get index ``start_index + k``.

    Raises:
        EntryError: an item holds something canonical JSON cannot represent.
    """
    batch = Batch()
    keys = [
        (thing.source, thing.feed, thing.native_id)
        for s in sightings
        if s.result is not None
        for things in (s.result.items, s.result.tombstones)
        for thing in things
    ]
    found, had = lookup(keys)
    local: dict[tuple[str, str, str], ItemRow | None] = {key: found.get(key) for key in keys}
    contents: dict[tuple[str, str, str], frozenset[bytes]] = {
        key: had.get(key, frozenset()) for key in keys
    }

    def known(key: tuple[str, str, str]) -> Known | None:
        row = local[key]
        if row is None:
            return None
        return Known(
            row.latest,
            row.digest,
            row.tombstoned,
            row.versions,
            row.observed_at,
            contents[key],
            row.state,
        )

    def add(entry: Entry) -> int:
        batch.entries.append(entry)
        return start_index + len(batch.entries) - 1

    def record(key: tuple[str, str, str], entry: Entry, idx: int, capture: Entry) -> None:
        """Predict the item index's row (the index's own rule) and the item's contents."""
        local[key] = batch.items[key] = next_row(key, local[key], entry, idx, capture.meta)
        if entry.type != "tombstone":
            contents[key] = contents[key] | {_digest_of(entry)}

    for s in sightings:
        ex = s.exchange
        body_digest = _sha256(ex.body)
        batch.blobs.append(ex.body)
        capture = Entry.build(
            "capture",
            logged_at,
            {"body": (body_digest, len(ex.body))},
            capture_meta(s.feed, ex, s.error, s.result.warning if s.result else None),
        )
        capture_idx = add(capture)
        capture_ref = "sha256:" + leaf_hash(capture.raw).hex()
        captured_at = capture_time(capture.meta)
        batch.counts.captures += 1
        batch.counts.bytes += len(ex.body)
        if s.error is not None:
            batch.counts.parse_errors += int(s.parsed)
        if s.result is None:
            continue
        given = s.contents
        for position, item in enumerate(s.result.items):
            key = (item.source, item.feed, item.native_id)
            content = given[position] if given else content_json(item)
            observed = item.observed_at or captured_at
            decision = decide(item, known(key), _sha256(content), observed)
            if item.counters:
                batch.observations.append(
                    ObservationRow(*key, ex.fetched_at, capture_idx, dict(item.counters))
                )
                batch.counts.observations += 1
            if not decision.stores:
                batch.counts.duplicates += 1
                continue
            blob = item_blob(item, capture_ref, ex.fetched_at, content)
            batch.blobs.append(blob)
            meta = _META[decision.kind](
                **_item_fields(key, capture_ref, decision), observed_at=observed
            )
            entry = Entry.build(
                _ENTRY_TYPE[decision.kind], logged_at, {"item": (_sha256(blob), len(blob))}, meta
            )
            record(key, entry, add(entry), capture)
            _count(batch.counts, decision)
        for tomb in s.result.tombstones:
            _add_tombstone(batch, tomb, known, record, add, capture, capture_ref, logged_at)
    return batch


def _add_tombstone(
    batch: Batch,
    tomb: Tombstone,
    known: Callable[[tuple[str, str, str]], Known | None],
    record: Callable[[tuple[str, str, str], Entry, int, Entry], None],
    add: Callable[[Entry], int],
    capture: Entry,
    capture_ref: str,
    logged_at: str,
) -> None:
    key = (tomb.source, tomb.feed, tomb.native_id)
    decision = decide_tombstone(tomb, known(key))
    if decision is None and tomb.remains is not None:
        _add_removed(batch, tomb, tomb.remains, record, add, capture, capture_ref, logged_at)
        return
    if decision is None:
        batch.counts.unknown_tombstones += 1
        return
    if not decision.stores:
        batch.counts.duplicates += 1
        return
    fields = _item_fields(key, capture_ref, decision)
    meta: TombstoneMeta | WithdrawnMeta = (
        WithdrawnMeta(**fields, reason=tomb.reason)
        if tomb.withdrawn
        else TombstoneMeta(**fields, reason=tomb.reason)
    )
    entry = Entry.build("tombstone", logged_at, {}, meta)
    record(key, entry, add(entry), capture)
    batch.counts.tombstones += 1
    batch.counts.withdrawn += int(tomb.withdrawn)


def _add_removed(
    batch: Batch,
    tomb: Tombstone,
    remains: Item,
    record: Callable[[tuple[str, str, str], Entry, int, Entry], None],
    add: Callable[[Entry], int],
    capture: Entry,
    capture_ref: str,
    logged_at: str,
) -> None:
    """Archive a tombstone's remains as a new item in the removed state (``item`` kind ``removed``).

    For an item the archive never saw, gone at the source the first time it
    is seen: the deletion is evidence even without the live version.
    """
    key = (tomb.source, tomb.feed, tomb.native_id)
    remains = replace(remains, deleted=True)
    content = content_json(remains)
    digest = _sha256(content)
    seen_at = str(capture.meta.get("fetched_at", ""))
    blob = item_blob(remains, capture_ref, seen_at, content)
    batch.blobs.append(blob)
    decision = Decision("new", None, digest)
    meta = RemovedItemMeta(**_item_fields(key, capture_ref, decision), reason=tomb.reason)
    entry = Entry.build("item", logged_at, {"item": (_sha256(blob), len(blob))}, meta)
    record(key, entry, add(entry), capture)
    batch.counts.new += 1
    batch.counts.removed += 1


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _digest_of(entry: Entry) -> bytes:
    """The content digest (32 bytes) an item or version entry's meta names."""
    return bytes.fromhex(str(entry.meta["content_digest"]).removeprefix("sha256:"))


def _item_fields(key: tuple[str, str, str], capture: str, decision: Decision) -> dict[str, Any]:
    return {
        "source": key[0],
        "feed": key[1],
        "native_id": key[2],
        "capture": capture,
        "content_digest": "sha256:" + decision.digest.hex(),
        "previous": decision.previous,
    }


_META = {"new": ItemMetaV2, "version": VersionMetaV2}


def _count(counts: BatchCounts, decision: Decision) -> None:
    if decision.kind == "new":
        counts.new += 1
    elif decision.kind == "version":
        counts.versions += 1
    else:
        counts.tombstones += 1
