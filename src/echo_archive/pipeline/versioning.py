"""Versioning, not blind dedup: decide what a sighting of an item adds to the archive.

Rules (issue "Harvest engine and sources", section Records; issue 9,
"History independent of arrival order"):

* an item never seen before (by source, feed and native id) is **new**;
* an item seen before with the content digest of its *current* version is a
  **duplicate** (counted, not stored again; its counters are still an
  observation);
* an item seen before with a content digest it already had at *any* time is
  a **duplicate** too, unless the sighting is observed strictly after the
  item's current version (see below);
* an item seen before with content it never had is a new **version** linked
  to the item's latest entry in the log, whatever its observed time;
* an item marked deleted/removed at the source, or a tombstone for a known
  item, is a **tombstone** linked to the latest entry; a repeated tombstone
  is a duplicate; an item seen again after its tombstone is a new version
  (it came back) unless that content was already archived and the sighting
  is not newer than the tombstone;
* an item taken out of its feed document is a ``withdrawn`` tombstone
  (:mod:`echo_archive.pipeline.withdrawals`); a deletion found afterwards
  (its link answers 404 or 410) is a tombstone following it, not a duplicate.

Observed time. Every sighting has one (:attr:`echo_archive.model.Item.observed_at`
when the source states when its content held, as FRED does with vintages;
else the capture's recording time, else its fetch time). An item's history
is ordered by observed time, ties by log index, never by log index alone:
the log stays append-only, and an older vintage imported after a newer one
takes its place in the past instead of becoming the current value. The
*current* version is the one observed last.

Why "already had" needs the observed time. Importing recordings in any
order, or twice, must give the item the histories an import in recorded-time
order gives. Comparing a sighting with the current version only makes a
value that alternates between two recordings (``A`` recorded before ``B``,
imported ``A, B, A``) a new version each time. So content the item already
had is a duplicate when the sighting is *not newer* than the current
version: it tells nothing the history lacks (an older or repeated
sighting). A sighting observed strictly after the current version whose
content differs from it is a genuine return (``A -> B -> A`` at the
source, seen in time order): a version.

Consequences (documented rule, not a bug): (1) when an item really went
``A -> B -> A`` and the later ``A`` arrives before ``B`` (recordings imported
out of time order), that ``A`` is a duplicate of the first one and ``B``
lands after it in the history, so the return to ``A`` is not recorded;
order independence is exact when no content comes back after another
(FRED revisions of one vintage, the corpus's cases). (2) a capture that
carries no time of its own (a recording format that stores none, a saved
feed document) is observed when it is imported, so importing an older such
file after a newer one again makes its content a return.

Everything here is pure: the caller looks up what the vault knows
(:class:`Known`) and records the decision.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

from echo_archive.model import Item, Tombstone
from echo_archive.vault.entry import canonical_json

__all__ = [
    "Decision",
    "Known",
    "content_digest",
    "content_document",
    "content_json",
    "decide",
    "decide_tombstone",
]

Kind = Literal["new", "version", "duplicate", "tombstone"]


def content_document(item: Item) -> dict[str, Any]:
    """Return the item's content fields as a JSON-ready mapping (no counters).

    The mapping is what the content digest covers: source, feed, native id,
    url, title, text, author, published time, ``extra`` and the deleted flag.
    """
    return {
        "source": item.source,
        "feed": item.feed,
        "native_id": item.native_id,
        "url": item.url,
        "title": item.title,
        "text": item.text,
        "author": item.author,
        "published_at": item.published_at,
        "extra": dict(item.extra),
        "deleted": item.deleted,
    }


def content_json(item: Item) -> bytes:
    """The RFC 8785 canonical JSON (UTF-8 bytes) of :func:`content_document`.

    Raises:
        EntryError: ``extra`` holds something JCS cannot represent.
    """
    return canonical_json(content_document(item))


def content_digest(item: Item) -> bytes:
    """SHA-256 (32 bytes) of :func:`content_json`: what tells a version from a duplicate.

    Raises:
        EntryError: ``extra`` holds something JCS cannot represent.
    """
    return hashlib.sha256(content_json(item)).digest()


@dataclass(frozen=True, slots=True)
class Known:
    """What the archive knows of an item: its current state and every content it had.

    Attributes:
        index: log index of the item's latest item, version or tombstone
            entry in the log (what the next entry's ``previous`` names).
        digest: content digest (32 bytes) of the current version (the one
            observed last); for a current tombstone, the digest of the
            version it buried.
        tombstoned: True when the current entry is a tombstone.
        versions: how many versions were archived (1 after the first sighting).
        observed_at: the current entry's observed time (RFC 3339 UTC), or
            ``""`` when unknown (every sighting is then newer).
        contents: the content digests of every version the item had (the
            ``item_contents`` index); empty when unknown.
        state: the item's state (``active``, ``tombstoned``, ``withdrawn`` or
            ``removed``; :data:`echo_archive.index.items.STATE_CODES`).
    """

    index: int
    digest: bytes
    tombstoned: bool = False
    versions: int = 1
    observed_at: str = ""
    contents: frozenset[bytes] = frozenset()
    state: str = "active"


@dataclass(frozen=True, slots=True)
class Decision:
    """What to record for one sighting.

    Attributes:
        kind: ``new``, ``version``, ``duplicate`` or ``tombstone``.
        previous: the log index of the entry this one follows (None for new).
        digest: the content digest of the sighting (32 bytes).
    """

    kind: Kind
    previous: int | None
    digest: bytes

    @property
    def stores(self) -> bool:
        """True when the decision adds an entry to the log (all but duplicates)."""
        return self.kind != "duplicate"


def decide(
    item: Item, known: Known | None, digest: bytes | None = None, observed_at: str = ""
) -> Decision:
    """Decide what a sighting of ``item`` adds, given what the archive knows (module rules).

    Args:
        item: the parsed item.
        known: what the archive knows of the same (source, feed, native id),
            or None when the item was never archived.
        digest: ``content_digest(item)`` when already computed (say, by the
            worker process that parsed it); computed here when None.
        observed_at: the sighting's observed time (RFC 3339 UTC: the item's
            own ``observed_at``, else its capture's time); ``""`` counts as
            newer than nothing, so content already had is a duplicate.

    Returns:
        The decision; an item whose ``deleted`` flag is set becomes a tombstone
        of the known item (or a new item carrying the flag when never seen).
        A version's or tombstone's ``previous`` is ``known.index``.

    Raises:
        EntryError: ``digest`` is None and ``extra`` holds something JCS
            cannot represent.
    """
    if digest is None:
        digest = content_digest(item)
    if known is None:
        return Decision("new", None, digest)
    if item.deleted:
        if known.tombstoned:
            return Decision("duplicate", known.index, digest)
        return Decision("tombstone", known.index, digest)
    if not known.tombstoned and digest == known.digest:
        return Decision("duplicate", known.index, digest)
    newer = bool(observed_at) and observed_at > known.observed_at
    if digest in known.contents and not newer:
        return Decision("duplicate", known.index, digest)
    return Decision("version", known.index, digest)


def decide_tombstone(tombstone: Tombstone, known: Known | None) -> Decision | None:
    """Decide what a tombstone adds.

    Returns:
        A ``tombstone`` decision linked to the known item's latest entry; a
        ``duplicate`` when it is already tombstoned (a deletion of an item
        that is only ``withdrawn`` from its feed is not: it follows the
        withdrawn tombstone); None when the item was never archived (there
        is nothing to bury; the caller may count it).
    """
    if known is None:
        return None
    deletes_withdrawn = known.state == "withdrawn" and not tombstone.withdrawn
    if known.tombstoned and not deletes_withdrawn:
        return Decision("duplicate", known.index, known.digest)
    return Decision("tombstone", known.index, known.digest)
