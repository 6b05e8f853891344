"""Check a vault, or an evidence bundle offline."""

from __future__ import annotations

from echo_archive.errors import RequestError
from echo_archive.vault.evidence import BundleReport, verify_bundle
from echo_archive.vault.vault import Vault
from echo_archive.vault.verify import Progress, VerifyReport, verify_vault

__all__ = ["verify", "verify_evidence"]


def verify(vault: Vault, *, sample: float = 1.0, progress: Progress | None = None) -> VerifyReport:
    """Verify the whole vault: blobs, entries, log hashes, checkpoint signatures, consistency.

    Re-hashes every blob (or a ``sample`` of them) against its address,
    recomputes every leaf and node hash from the catalog (RFC 9162 §2.1.1),
    recomputes the root of every stored checkpoint, checks its signature
    (C2SP signed-note, Ed25519) and the consistency of each with the next.

    Args:
        vault: an open vault (a reader is enough; nothing is written).
        sample: fraction of blobs to re-hash, in (0, 1].
        progress: optional callback ``(phase, done, total)``.

    Returns:
        The report; ``report.ok`` when everything holds, else its problems.

    Raises:
        RequestError: ``sample`` outside (0, 1].
        StorageError: the vault cannot be read at all.
    """
    if not 0 < sample <= 1:
        raise RequestError(f"sample {sample}: must be in (0, 1]")
    return verify_vault(vault, sample=sample, progress=progress)


def verify_evidence(data: bytes, vkey: str | None = None) -> BundleReport:
    """Check an evidence bundle offline, without any vault.

    Args:
        data: the bundle's bytes.
        vkey: pin this verifier key (C2SP signed-note ``name+hash+key``)
            instead of trusting the one the bundle carries.

    Returns:
        The report: each check (signature, entry, inclusion proof, blob
        digests) and whether the key was pinned.

    Raises:
        EvidenceError: the bundle is not one (malformed JSON or parts), or
            ``vkey`` is not a verifier key.
    """
    return verify_bundle(data, vkey)
