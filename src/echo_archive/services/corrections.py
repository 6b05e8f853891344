"""Corrections: an editor annotates, retracts or reinstates an item, with a reason.

Issue 11, "Corrections": "an editor can annotate or retract an item with a
reason; it is a new entry, the item shows it, nothing is rewritten
(retroactive correction with full audit)". A correction is a ``correction``
entry in the log (kinds ``annotation``, ``retraction``, ``reinstatement``;
:class:`~echo_archive.schemas.AnnotationMeta` and ``docs/entries.md``): it
names the item (``source``, ``feed``, ``native_id``), the entry the editor
saw (``entry``, ``content_digest``) and the item's previous correction,
with the actor, the reason, an optional text, the request id and the time.
The item's own entries are never touched (DESIGN.md invariant 1); the
correction is provable like any entry (invariant 10).

Sequence rules (checked by :func:`correct_item` on the writer's thread,
with the writer lock held, so two editors cannot both retract):

* an ``annotation`` is allowed in every state, any number of times;
* a ``retraction`` is refused (:class:`CorrectionRefused`) when the item is
  already retracted: not idempotent, since each correction is an audit
  record with its own reason, and a second one would say nothing new;
* a ``reinstatement`` is refused when the item is not retracted.

An item is *retracted* when the latest of its retractions and
reinstatements, in log order, is a retraction (:func:`is_retracted`);
readers derive it the same way, whatever a log holds.

No ``audit`` entry is written beside a correction: the correction is its
own audit record (actor, reason, request id, time, in the same log).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar

from echo_archive.errors import EchoError, LogError, NotFoundError, RequestError
from echo_archive.index.corrections import (
    correction_indexes,
    indexed_count,
    indexed_page,
    unindexed,
)
from echo_archive.index.items import known
from echo_archive.schemas import (
    CORRECTION_KINDS,
    MAX_CORRECTION_TEXT,
    MAX_REASON,
    SAFE_INT,
    AnnotationMeta,
    EntryMeta,
    ReinstatementMeta,
    RetractionMeta,
    format_timestamp,
)
from echo_archive.schemas.entries import text_problem
from echo_archive.services.items import ITEM_ENTRY_TYPES, ItemKey, item_history, parse_item_ref
from echo_archive.services.paging import (
    Page,
    check_limit,
    decode_cursor,
    encode_cursor,
    fingerprint,
)
from echo_archive.vault.entry import Entry
from echo_archive.vault.vault import Record, Vault
from echo_archive.vault.writer import VaultWriter

__all__ = [
    "CORRECTION_KINDS",
    "MAX_CORRECTION_TEXT",
    "MAX_REASON",
    "MAX_REF",
    "Correction",
    "CorrectionRefused",
    "check_correction",
    "correct_item",
    "corrections_of",
    "corrections_of_key",
    "is_retracted",
    "item_key_of",
    "list_corrections",
]

T = TypeVar("T")

MAX_REF: Final = 4096
"""Characters an item reference may hold at most (hostile input is not looked up or echoed)."""

_SCHEMAS: Final[dict[str, type[EntryMeta]]] = {
    "annotation": AnnotationMeta,
    "retraction": RetractionMeta,
    "reinstatement": ReinstatementMeta,
}


class CorrectionRefused(EchoError):
    """A correction breaks the sequence rules (a retraction of a retracted item...).

    The shells report it as a conflict: HTTP 409, ``echoctl`` exit 1. The
    message names the item and its latest retraction or reinstatement.
    """


@dataclass(frozen=True, slots=True)
class Correction:
    """One ``correction`` entry read back from the log (validated against its schema).

    Attributes:
        index: its log index.
        logged_at: when it joined the log (RFC 3339 UTC; attested by a checkpoint).
        kind: ``annotation``, ``retraction`` or ``reinstatement``.
        source, feed, native_id: the item it corrects.
        entry: the item's entry the editor saw (log index).
        content_digest: that entry's content digest.
        previous: the item's correction before it (log index), or None.
        reason: why (one line).
        text: the annotation's body or notice, or None.
        actor: ``key:<name>``, ``user:<name>`` or ``cli:<login>``.
        request_id: the HTTP request's id, or None.
        at: when the editor made it (RFC 3339 UTC).
    """

    index: int
    logged_at: str
    kind: str
    source: str
    feed: str
    native_id: str
    entry: int
    content_digest: str
    previous: int | None
    reason: str
    text: str | None
    actor: str
    request_id: str | None
    at: str

    @property
    def key(self) -> ItemKey:
        """The corrected item's identity."""
        return ItemKey(self.source, self.feed, self.native_id)

    @classmethod
    def from_entry(cls, index: int, entry: Entry) -> Correction:
        """The correction of a parsed ``correction`` entry (its meta already validated)."""
        m = entry.meta
        return cls(
            index=index,
            logged_at=entry.logged_at,
            kind=str(m["kind"]),
            source=str(m["source"]),
            feed=str(m["feed"]),
            native_id=str(m["native_id"]),
            entry=int(m["entry"]),
            content_digest=str(m["content_digest"]),
            previous=m["previous"],
            reason=str(m["reason"]),
            text=m["text"],
            actor=str(m["actor"]),
            request_id=m["request_id"],
            at=str(m["at"]),
        )

    def to_json(self) -> dict[str, Any]:
        """Every attribute, JSON-ready, and ``item``: the ``SOURCE:FEED:NATIVE_ID`` reference."""
        doc = {name: getattr(self, name) for name in self.__slots__}
        doc["item"] = str(self.key)
        return doc


def is_retracted(corrections: Iterable[Correction]) -> bool:
    """True when the latest retraction or reinstatement (log order) is a retraction.

    Args:
        corrections: one item's corrections, in log order (ascending index).
    """
    last = None
    for c in corrections:
        if c.kind in ("retraction", "reinstatement"):
            last = c.kind
    return last == "retraction"


def check_correction(kind: object, reason: object, text: object) -> None:
    """Check an editor's input before anything is written; the message names the field.

    The rules of the ``correction`` schema (``docs/entries.md``): ``kind`` one
    of :data:`CORRECTION_KINDS`; ``reason`` a string of 1 to
    :data:`MAX_REASON` characters on one line; ``text`` None or 1 to
    :data:`MAX_CORRECTION_TEXT` characters (line feeds and tabs allowed);
    neither blank nor holding a control, separator or bidi control character.

    Raises:
        RequestError: ``kind: ...``, ``reason: ...`` or ``text: ...``.
    """
    if not isinstance(kind, str) or kind not in CORRECTION_KINDS:
        shown = repr(kind)[:40]
        raise RequestError(f"kind {shown}: expected one of {', '.join(CORRECTION_KINDS)}")
    for name, value, limit, multiline in (
        ("reason", reason, MAX_REASON, False),
        ("text", text, MAX_CORRECTION_TEXT, True),
    ):
        if value is None and name == "text":
            continue
        if not isinstance(value, str):
            raise RequestError(f"{name}: expected a string, not {type(value).__name__}")
        if len(value) > limit:
            raise RequestError(f"{name}: {len(value)} characters, at most {limit}")
        problem = text_problem(value, multiline=multiline)
        if problem is not None:
            raise RequestError(f"{name}: {problem}")


def item_key_of(vault: Vault, ref: str | int | ItemKey) -> ItemKey:
    """The identity of the item ``ref`` names (an entry index of it, or its key).

    Args:
        vault: an open vault (a reader is enough).
        ref: an entry index, an :class:`ItemKey`, or a reference text
            (:func:`~echo_archive.services.items.parse_item_ref`).

    Raises:
        RequestError: ``ref`` is text in neither form, or longer than :data:`MAX_REF`.
        NotFoundError: no item has that key, the index is beyond the log, or
            its entry is not an item, version or tombstone.
    """
    if isinstance(ref, str) and len(ref) > MAX_REF:
        raise RequestError(f"reference of {len(ref)} characters: at most {MAX_REF}")
    target = parse_item_ref(ref) if isinstance(ref, str) else ref
    if isinstance(target, ItemKey):
        if known(vault.catalog, target.source, target.feed, target.native_id) is None:
            raise NotFoundError(f"no item {target}")
        return target
    if not 0 <= target <= SAFE_INT:
        raise NotFoundError(f"no item at entry {target}: beyond any log")
    try:
        entry = vault.entry(target)
    except LogError as exc:
        raise NotFoundError(f"no item at entry {target}: {exc}") from None
    if entry.type not in ITEM_ENTRY_TYPES:
        raise NotFoundError(f"entry {target} is a {entry.type}, not an item, version or tombstone")
    m = entry.meta
    return ItemKey(str(m["source"]), str(m["feed"]), str(m["native_id"]))


def corrections_of_key(vault: Vault, key: ItemKey) -> list[Correction]:
    """The corrections of the item ``key``, oldest first (log order); no check the item exists.

    Raises:
        EntryError: a stored entry is malformed or breaks its schema.
    """
    found = []
    for idx in correction_indexes(vault.catalog, (key.source, key.feed, key.native_id)):
        c = _read(vault, idx)
        if c is not None and c.key == key:
            found.append(c)
    return found


def corrections_of(vault: Vault, ref: str | int | ItemKey) -> list[Correction]:
    """The corrections of the item ``ref`` names, oldest first (log order).

    Args:
        vault: an open vault (a reader is enough).
        ref: as :func:`item_key_of`.

    Raises:
        RequestError, NotFoundError: as :func:`item_key_of`.
        EntryError: a stored entry is malformed or breaks its schema.
    """
    return corrections_of_key(vault, item_key_of(vault, ref))


def _read(vault: Vault, idx: int) -> Correction | None:
    """The correction at ``idx`` (parsed and validated), or None when it is another type."""
    entry = vault.entry(idx)
    return Correction.from_entry(idx, entry) if entry.type == "correction" else None


def _on_writer(target: Vault | VaultWriter, fn: Callable[[Vault], T]) -> T:
    """Run ``fn(vault)`` on the writer (its thread, in order), the writer lock held."""

    def job(vault: Vault) -> T:
        with vault.writing():
            return fn(vault)

    if isinstance(target, VaultWriter):
        return target.submit(job).result()
    return job(target)


def correct_item(
    writer: Vault | VaultWriter,
    reader: Vault,
    ref: str | int | ItemKey,
    kind: str,
    reason: str,
    text: str | None,
    actor: str,
    request_id: str | None,
    now: float,
) -> tuple[int, Correction]:
    """Commit a correction of an item through the vault's single writer.

    The input is checked (:func:`check_correction`) and the item found in
    ``reader`` before the writer is asked; on the writer's thread the item
    is found again, with its current entry and corrections, the sequence
    rules of the module docstring are checked, and the entry is committed
    (acknowledged once a signed checkpoint covers it, DESIGN.md invariant 2).
    Nothing else is written: no item entry changes, no ``audit`` entry.

    Args:
        writer: the vault's :class:`~echo_archive.vault.writer.VaultWriter`,
            or a writer :class:`~echo_archive.vault.vault.Vault`.
        reader: a vault to read (the writer's vault will do).
        ref: the item: an entry index of it, its key, or a reference text.
        kind: ``annotation``, ``retraction`` or ``reinstatement``.
        reason: why, one line (1 to :data:`MAX_REASON` characters).
        text: the annotation's body or a notice, or None.
        actor: ``key:<name>``, ``user:<name>`` or ``cli:<login>``.
        request_id: the HTTP request's id, or None.
        now: POSIX seconds: the correction's ``at``.

    Returns:
        The new entry's log index and the correction as logged.

    Raises:
        RequestError: a bad kind, reason, text or reference (names the field).
        NotFoundError: no such item.
        CorrectionRefused: the sequence rules refuse it.
        EntrySchemaError: ``actor`` or ``request_id`` breaks the schema.
        StorageError, VaultLockedError: the entry could not be committed.
    """
    check_correction(kind, reason, text)
    key = item_key_of(reader, ref)
    at = format_timestamp(int(now * 1_000_000) * 1000)

    def job(vault: Vault) -> tuple[int, Correction]:
        history = item_history(vault, key)
        current = history.history[0]
        earlier = corrections_of_key(vault, key)
        retracted = is_retracted(earlier)
        if kind == "retraction" and retracted:
            last = [c for c in earlier if c.kind == "retraction"][-1]
            raise CorrectionRefused(
                f"{key}: already retracted (entry {last.index}, by {last.actor}); "
                "reinstate it first"
            )
        if kind == "reinstatement" and not retracted:
            raise CorrectionRefused(f"{key}: not retracted; nothing to reinstate")
        meta = _SCHEMAS[kind](
            source=key.source,
            feed=key.feed,
            native_id=key.native_id,
            entry=current.index,
            content_digest=str(current.meta["content_digest"]),
            previous=earlier[-1].index if earlier else None,
            reason=reason,
            text=text,
            actor=actor,
            request_id=request_id,
            at=at,
        )
        receipt = vault.commit([Record("correction", meta)]).receipts[0]
        return receipt.index, Correction.from_entry(receipt.index, receipt.entry)

    return _on_writer(writer, job)


def list_corrections(
    vault: Vault,
    *,
    kind: str | None = None,
    feed: str | None = None,
    feeds: Iterable[str] | None = None,
    order: Literal["newest", "oldest"] = "newest",
    limit: int = 50,
    cursor: str | None = None,
) -> Page[Correction]:
    """One keyset page of the corrections of every item, by log index.

    The sort key is the correction's log index: walking the pages with
    ``next`` while corrections are appended yields each one that existed
    when the walk began exactly once (with ``order="oldest"``, the new ones
    follow at the end).

    Args:
        vault: an open vault (a reader is enough).
        kind: only this kind (one of :data:`CORRECTION_KINDS`), or None.
        feed: only corrections of this feed's items, or None.
        feeds: only corrections of these feeds' items (a scoped principal's
            group), or None for every feed.
        order: ``"newest"`` (the latest first) or ``"oldest"``.
        limit: entries per page, 1 to :data:`~echo_archive.services.paging.MAX_LIMIT`.
        cursor: the ``next`` of the previous page, or None.

    Returns:
        The page; ``total`` is the number of matches in all.

    Raises:
        RequestError: a bad ``kind``, ``order`` or ``limit``.
        CursorError: the cursor is malformed or was issued for other filters.
        EntryError: a stored entry is malformed or breaks its schema.
    """
    limit = check_limit(limit)
    if kind is not None and kind not in CORRECTION_KINDS:
        raise RequestError(f"kind {kind[:40]!r}: expected one of {', '.join(CORRECTION_KINDS)}")
    if order not in ("newest", "oldest"):
        raise RequestError(f"order {order!r}: expected newest or oldest")
    scope = None if feeds is None else sorted(set(feeds))
    tag = fingerprint({"kind": kind, "feed": feed, "feeds": scope, "order": order})
    after = None if cursor is None else decode_cursor(cursor, tag)
    wanted = None if scope is None else set(scope)
    if feed is not None:
        wanted = {feed} if wanted is None else wanted & {feed}
    newest = order == "newest"
    catalog = vault.catalog
    # the corrections the index does not hold yet (normally none) all follow the indexed ones
    matching_tail = [
        c
        for c in (_read(vault, i) for i in unindexed(catalog))
        if c is not None
        and (kind is None or c.kind == kind)
        and (wanted is None or c.feed in wanted)
    ]
    tail = [
        c
        for c in matching_tail
        if after is None or (c.index < after if newest else c.index > after)
    ]
    want = limit + 1  # one more than a page: is there a next?
    found: list[Correction] = list(reversed(tail))[:want] if newest else []
    if len(found) < want:
        ids = indexed_page(
            catalog, kind=kind, feeds=wanted, after=after, newest=newest, limit=want - len(found)
        )
        found += [c for c in (_read(vault, i) for i in ids) if c is not None]
    if not newest and len(found) < want:
        found += tail[: want - len(found)]
    page = found[:limit]
    token = encode_cursor(page[-1].index, tag) if len(found) > limit and page else None
    total = indexed_count(catalog, kind=kind, feeds=wanted) + len(matching_tail)
    return Page(entries=page, next=token, total=total)
