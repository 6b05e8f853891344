"""What makes the log checkable: the signed checkpoint, Merkle proofs, evidence bundles.

Hashes are returned as bytes; :meth:`InclusionProof.to_json` and the others
give them as standard base64 (RFC 4648 §4), as the C2SP formats write them.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from echo_archive.errors import StorageError
from echo_archive.vault.evidence import build_bundle
from echo_archive.vault.vault import SignedCheckpoint, Vault

__all__ = [
    "ConsistencyProof",
    "EvidenceBundle",
    "InclusionProof",
    "checkpoint_json",
    "consistency",
    "evidence_bundle",
    "inclusion",
    "latest_checkpoint",
    "write_bundle",
]


def _b64(h: bytes) -> str:
    return base64.b64encode(h).decode("ascii")


def latest_checkpoint(vault: Vault) -> SignedCheckpoint:
    """The latest signed checkpoint (C2SP tlog-checkpoint), verified against the vault's key.

    Args:
        vault: an open vault (a reader is enough).

    Returns:
        The checkpoint and its signed note text, verbatim.

    Raises:
        LogError: no checkpoint is stored.
        NoteError: the stored checkpoint does not verify.
    """
    return vault.latest_checkpoint()


def checkpoint_json(signed: SignedCheckpoint, vkey: str) -> dict[str, Any]:
    """A checkpoint as JSON: origin, size, root (base64 and hex), signed_at, note, vkey.

    Args:
        signed: the checkpoint (from :func:`latest_checkpoint`).
        vkey: the verifier key to name beside it (C2SP signed-note format).

    Returns:
        ``{"origin", "size", "root_hash", "root_hash_hex", "signed_at", "note", "vkey"}``.
    """
    cp = signed.checkpoint
    return {
        "origin": cp.origin,
        "size": cp.size,
        "root_hash": _b64(cp.root_hash),
        "root_hash_hex": cp.root_hash.hex(),
        "signed_at": signed.signed_at,
        "note": signed.note,
        "vkey": vkey,
    }


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """An RFC 9162 §2.1.3 inclusion proof of entry ``index`` in the tree of ``size``.

    Attributes:
        index: the entry index (0-based).
        size: the tree size.
        leaf_hash: SHA-256(0x00 || entry), 32 bytes.
        root_hash: the root of the tree of ``size`` entries.
        proof: the audit path, leaf first (32-byte hashes).
    """

    index: int
    size: int
    leaf_hash: bytes
    root_hash: bytes
    proof: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        """``{"index", "size", "leaf_hash", "root_hash", "proof"}``, hashes in base64."""
        return {
            "index": self.index,
            "size": self.size,
            "leaf_hash": _b64(self.leaf_hash),
            "root_hash": _b64(self.root_hash),
            "proof": [_b64(h) for h in self.proof],
        }


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    """An RFC 9162 §2.1.4 consistency proof between tree sizes ``old_size`` and ``new_size``.

    Attributes:
        old_size, new_size: the tree sizes.
        old_root, new_root: their root hashes.
        proof: the proof hashes (32 bytes each).
    """

    old_size: int
    new_size: int
    old_root: bytes
    new_root: bytes
    proof: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        """``{"old_size", "new_size", "old_root", "new_root", "proof"}``, hashes in base64."""
        return {
            "old_size": self.old_size,
            "new_size": self.new_size,
            "old_root": _b64(self.old_root),
            "new_root": _b64(self.new_root),
            "proof": [_b64(h) for h in self.proof],
        }


def inclusion(vault: Vault, index: int, size: int | None = None) -> InclusionProof:
    """The inclusion proof of entry ``index`` in the tree of ``size`` entries.

    Args:
        vault: an open vault (a reader is enough).
        index: the entry index.
        size: the tree size (default: the latest checkpoint's).

    Returns:
        The proof with the leaf hash and the root it leads to.

    Raises:
        LogError: ``index >= size``, or ``size`` beyond the log.
    """
    n = vault.size if size is None else size
    proof = vault.inclusion_proof(index, n)
    return InclusionProof(index, n, vault.leaf_hash(index), vault.root_at(n), tuple(proof))


def consistency(vault: Vault, old: int, new: int | None = None) -> ConsistencyProof:
    """The consistency proof between tree sizes ``old`` and ``new``.

    Args:
        vault: an open vault (a reader is enough).
        old: the earlier tree size (at least 1).
        new: the later tree size (default: the latest checkpoint's).

    Returns:
        The proof with both roots.

    Raises:
        LogError: sizes out of order or beyond the log.
    """
    n = vault.size if new is None else new
    proof = vault.consistency_proof(old, n)
    return ConsistencyProof(old, n, vault.root_at(old), vault.root_at(n), tuple(proof))


@dataclass(frozen=True, slots=True)
class EvidenceBundle:
    """An evidence bundle (``echo-evidence/v1`` JSON; its proof part a C2SP tlog-proof).

    Attributes:
        index: the entry it proves.
        data: the bundle's bytes (indented JSON, sorted keys, a final newline).
    """

    index: int
    data: bytes


def evidence_bundle(vault: Vault, ref: str | int, size: int | None = None) -> EvidenceBundle:
    """The evidence bundle of an entry: entry, blobs, inclusion proof, checkpoint, verifier key.

    It is checked offline, with no vault, by
    :func:`echo_archive.services.verification.verify_evidence`.

    Args:
        vault: an open vault (a reader is enough).
        ref: an entry index, or a blob digest (``sha256:<hex>``: the earliest
            entry naming it).
        size: prove against the checkpoint of this tree size (default: the latest).

    Returns:
        The entry's index and the bundle's bytes.

    Raises:
        LogError: nothing matches ``ref``, no checkpoint of that size, or the
            entry is not covered by it.
        BlobError: a blob the entry names cannot be read intact.
    """
    index = ref if isinstance(ref, int) else vault.resolve(ref)
    bundle = build_bundle(vault, index, size)
    return EvidenceBundle(index, json.dumps(bundle, indent=1, sort_keys=True).encode() + b"\n")


def write_bundle(bundle: EvidenceBundle, path: Path) -> None:
    """Write a bundle to ``path`` atomically (a temporary file beside it, fsync, then a rename).

    Args:
        bundle: from :func:`evidence_bundle`.
        path: the file to write (replaced if it exists).

    Raises:
        StorageError: the file cannot be written (the message names it).
    """
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(bundle.data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc}") from exc
