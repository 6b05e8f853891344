"""Versioning, not blind dedup: decide what a sighting of an item adds to the archive.

Rules (issue "Harvest engine and sources", section Records):

* an item never seen before (by source, feed and native id) is **new**;
* an item seen before with the same content digest is a **duplicate**
  (counted, not stored again; its counters are still an observation);
* an item seen before with a different content digest is a new **version**
  linked to the previous one;
* an item marked deleted/removed at the source, or a tombstone for a known
  item, is a **tombstone** linked to the latest version; a repeated tombstone
  is a duplicate; an item seen again after its tombstone is a new version
  (it came back).

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
    """What the archive knows of an item: its latest entry.

    Attributes:
        index: log index of the latest item, version or tombstone entry.
        digest: content digest of the latest version (32 bytes); for a
            tombstone, the digest of the version it buried.
        tombstoned: True when the latest entry is a tombstone.
        versions: how many versions were archived (1 after the first sighting).
    """

    index: int
    digest: bytes
    tombstoned: bool = False
    versions: int = 1


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


def decide(item: Item, known: Known | None, digest: bytes | None = None) -> Decision:
    """Decide what a sighting of ``item`` adds, given what the archive knows.

    Args:
        item: the parsed item.
        known: the archive's latest entry for the same (source, feed, native id),
            or None when the item was never archived.
        digest: ``content_digest(item)`` when already computed (say, by the
            worker process that parsed it); computed here when None.

    Returns:
        The decision; an item whose ``deleted`` flag is set becomes a tombstone
        of the known item (or a new item carrying the flag when never seen).
    """
    if digest is None:
        digest = content_digest(item)
    if known is None:
        return Decision("new", None, digest)
    if item.deleted:
        if known.tombstoned:
            return Decision("duplicate", known.index, digest)
        return Decision("tombstone", known.index, digest)
    if known.tombstoned or digest != known.digest:
        return Decision("version", known.index, digest)
    return Decision("duplicate", known.index, digest)


def decide_tombstone(tombstone: Tombstone, known: Known | None) -> Decision | None:
    """Decide what a tombstone adds.

    Returns:
        A ``tombstone`` decision linked to the known item's latest entry; a
        ``duplicate`` when it is already tombstoned; None when the item was
        never archived (there is nothing to bury; the caller may count it).
    """
    if known is None:
        return None
    if known.tombstoned:
        return Decision("duplicate", known.index, known.digest)
    return Decision("tombstone", known.index, known.digest)
