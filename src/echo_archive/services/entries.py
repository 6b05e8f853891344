"""Read the log: one entry, one capture (its metadata and a stream of its body).

A *capture* is a ``capture`` entry: what was received, an HTTP exchange
(``meta.kind == "http"``: URL, status, headers that matter, times) or a local
file archived as evidence (``meta.kind == "file"``), with its bytes as the
``body`` blob, exactly as received (after content-decoding).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

from echo_archive.errors import NotFoundError
from echo_archive.vault.entry import BlobRef, Entry
from echo_archive.vault.vault import Vault

__all__ = ["Capture", "EntryView", "get_capture", "get_entry", "open_capture_body"]


@dataclass(frozen=True, slots=True)
class EntryView:
    """A log entry with its index and leaf hash.

    Attributes:
        index: its log index.
        leaf_hash: SHA-256(0x00 || entry), 32 bytes (RFC 9162 §2.1.1).
        entry: the parsed entry (``raw`` holds its canonical JSON bytes).
    """

    index: int
    leaf_hash: bytes
    entry: Entry

    def to_json(self) -> dict[str, Any]:
        """``{"index", "leaf_hash" (sha256:<hex>), "type", "logged_at", "blobs", "meta"}``."""
        return {
            "index": self.index,
            "leaf_hash": "sha256:" + self.leaf_hash.hex(),
            "type": self.entry.type,
            "logged_at": self.entry.logged_at,
            "blobs": {b.role: {"digest": b.digest_text, "size": b.size} for b in self.entry.blobs},
            "meta": dict(self.entry.meta),
        }


@dataclass(frozen=True, slots=True)
class Capture:
    """A capture entry: its metadata and the blob holding the bytes received.

    Attributes:
        index: its log index.
        logged_at: when it joined the log (RFC 3339 UTC).
        meta: the capture metadata (``kind``; for HTTP: ``url``, ``status``,
            ``headers``, ``fetched_at``, ``recorded_at``, ``parse_error``...).
        body: the ``body`` blob (digest and size), None if the entry names none.
    """

    index: int
    logged_at: str
    meta: Mapping[str, Any]
    body: BlobRef | None

    def to_json(self) -> dict[str, Any]:
        """``{"index", "logged_at", "meta", "body": {"digest", "size"} | null}``."""
        body = (
            None if self.body is None else {"digest": self.body.digest_text, "size": self.body.size}
        )
        return {
            "index": self.index,
            "logged_at": self.logged_at,
            "meta": dict(self.meta),
            "body": body,
        }


def get_entry(vault: Vault, index: int) -> EntryView:
    """The entry at ``index`` with its stored leaf hash.

    Args:
        vault: an open vault (a reader is enough).
        index: the log index (0-based).

    Returns:
        The entry, its index and its leaf hash.

    Raises:
        LogError: no entry at that index (or beyond the latest checkpoint).
        EntryError: the stored entry is malformed.
    """
    leaf = vault.leaf_hash(index)
    return EntryView(index, leaf, vault.entry(index))


def get_capture(vault: Vault, index: int) -> Capture:
    """The capture entry at ``index``.

    Args:
        vault: an open vault (a reader is enough).
        index: the capture's log index.

    Returns:
        Its metadata and its ``body`` blob reference.

    Raises:
        LogError: no entry at that index.
        NotFoundError: the entry is not a capture.
    """
    entry = vault.entry(index)
    if entry.type != "capture":
        raise NotFoundError(f"entry {index} is not a capture (type {entry.type!r})")
    body = next((b for b in entry.blobs if b.role == "body"), None)
    return Capture(index, entry.logged_at, dict(entry.meta), body)


def open_capture_body(vault: Vault, capture: Capture) -> BinaryIO:
    """A stream of a capture's body, the bytes as received (the caller closes it).

    Large bodies are streamed from the blob store, never read whole.

    Args:
        vault: the vault the capture was read from.
        capture: from :func:`get_capture`.

    Returns:
        A binary stream of the body's bytes, as received (after content-decoding).

    Raises:
        NotFoundError: the capture names no body blob.
        BlobNotFoundError: the blob is missing from the store.
        BlobCorruptError: the stored bytes are damaged (found while reading).
    """
    if capture.body is None:
        raise NotFoundError(f"capture {capture.index} has no body")
    return vault.blobs.open(capture.body.digest)
