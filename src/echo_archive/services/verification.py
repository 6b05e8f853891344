"""Check a vault, or an evidence bundle offline."""

from __future__ import annotations

from echo_archive.errors import NotFoundError, RequestError
from echo_archive.vault.evidence import BundleReport, verify_bundle
from echo_archive.vault.vault import Vault
from echo_archive.vault.verify import DERIVED_SAMPLE, Progress, VerifyReport, verify_vault

__all__ = ["rebuild", "verify", "verify_evidence"]


def verify(
    vault: Vault,
    *,
    sample: float = 1.0,
    progress: Progress | None = None,
    full: bool = False,
) -> VerifyReport:
    """Verify the whole vault: blobs, entries, log hashes, checkpoints, derived indexes.

    Re-hashes every blob (or a ``sample`` of them) against its address,
    recomputes every leaf and node hash from the catalog (RFC 9162 §2.1.1),
    recomputes the root of every stored checkpoint, checks its signature
    (C2SP signed-note, Ed25519) and the consistency of each with the next,
    then rebuilds the vault's derived indexes from the log and the blobs and
    compares them with the stored rows (the entries of a
    :data:`~echo_archive.vault.verify.DERIVED_SAMPLE` sample, or all with
    ``full``; the item index always whole), naming each differing row.

    Args:
        vault: an open vault (a reader is enough; nothing is written), opened
            with its derived indexes (:func:`~echo_archive.services.vaults.open_vault`).
        sample: fraction of blobs to re-hash, in (0, 1].
        progress: optional callback ``(phase, done, total)``.
        full: compare every derived row.

    Returns:
        The report; ``report.ok`` when everything holds, else its problems.

    Raises:
        RequestError: ``sample`` outside (0, 1].
        StorageError: the vault cannot be read at all.
    """
    if not 0 < sample <= 1:
        raise RequestError(f"sample {sample}: must be in (0, 1]")
    derived_sample = 1.0 if full else DERIVED_SAMPLE
    return verify_vault(vault, sample=sample, progress=progress, derived_sample=derived_sample)


def rebuild(vault: Vault, name: str | None = None) -> list[str]:
    """Rebuild one derived index (``leaves``, ``items``, ``captures``, ``observations``) or all.

    Args:
        vault: the writer, opened with its derived indexes.
        name: the index (default: every attached one).

    Returns:
        The names rebuilt, in order.

    Raises:
        NotFoundError: no attached index has that name.
        VaultError: the vault is open read-only.
        DerivedIndexError, StorageError: a rebuild failed (that index keeps its rows).
    """
    if name is not None and name not in {index.name for index in vault.derived}:
        known = ", ".join(index.name for index in vault.derived) or "none"
        raise NotFoundError(f"no derived index named {name!r} (indexes: {known})")
    return vault.rebuild(None if name is None else [name])


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
