"""Checkpoint signing, as a component separate from the log's storage.

A vault *stores* checkpoints and *verifies* them against a verifier key
(``verifier.vkey``); who *signs* them is not its business. The signer is
passed in (:class:`CheckpointSigner`): by default the Ed25519 key in
``keys/signing.key`` (:class:`KeySigner`, :func:`load_key_signer`), but it may
be any object that turns a checkpoint into a signed note under the vault's
verifier key (a key held elsewhere, an HSM, a signing service).

A vault with no signer can still store checkpoints: those signed by another
log's key. A *replica* holds its primary's verifier key and appends the
primary's entries together with the primary's signed checkpoint note for them
(:meth:`~echo_archive.vault.vault.Vault.append` with ``checkpoint=``), which is
checked against the verifier key and the recomputed root before anything is
written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from echo_archive.errors import NoteError, StorageError, VaultError
from echo_archive.vault.checkpoint import Checkpoint, sign_checkpoint
from echo_archive.vault.note import Signer, Verifier, parse_signer_key

__all__ = ["CheckpointSigner", "KeySigner", "load_key_signer"]


@runtime_checkable
class CheckpointSigner(Protocol):
    """Signs checkpoints of one log (C2SP tlog-checkpoint, signed-note).

    Attributes:
        verifier: the public key the notes it signs verify with; a vault uses a
            signer only when this is the vault's own verifier key.

    """

    @property
    def verifier(self) -> Verifier:
        """The verifier key of the notes this signer produces."""
        ...

    def sign(self, checkpoint: Checkpoint) -> str:
        """Return ``checkpoint`` as a signed note (its text, verbatim).

        Args:
            checkpoint: the checkpoint to sign (origin, tree size, root hash).

        Returns:
            The signed note text, which must verify with :attr:`verifier`.

        Raises:
            OSError: signing failed (a remote signer unreachable...).
            NoteError: the note would be malformed.

        """
        ...


class KeySigner:
    """A :class:`CheckpointSigner` holding an Ed25519 key in memory (the default).

    Args:
        key: the signed-note Ed25519 key (:class:`~echo_archive.vault.note.Signer`).

    """

    def __init__(self, key: Signer) -> None:
        self._key = key

    def __repr__(self) -> str:
        return f"KeySigner({self._key!r})"

    @property
    def verifier(self) -> Verifier:
        """The key's verifier key."""
        return self._key.verifier

    def sign(self, checkpoint: Checkpoint) -> str:
        """Sign ``checkpoint`` with the key (tlog-checkpoint "Signatures").

        Raises:
            NoteFormatError: the note would be malformed.

        """
        return sign_checkpoint(checkpoint, self._key)


def load_key_signer(path: Path, verifier: Verifier) -> KeySigner:
    """Load the signing key file ``path`` (``keys/signing.key``) as a signer.

    A key file group or others may read, write or run (any of the mode bits
    ``0o077``) is refused: a secret key others could copy no longer proves
    that checkpoints come from the log's operator (the rule OpenSSH applies to
    private keys). The message gives the fix, ``chmod 600 <path>``.

    Args:
        path: the key file (C2SP signed-note private key, one line).
        verifier: the vault's verifier key; the key must match it.

    Returns:
        The signer.

    Raises:
        StorageError: the file cannot be read.
        VaultError: the file's mode lets group or others access it, the file
            is not a key, or not the key of ``verifier``.

    """
    try:
        mode = path.stat().st_mode & 0o777
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise StorageError(f"cannot read signing key {path}: {exc}") from exc
    if mode & 0o077:
        raise VaultError(
            f"signing key {path} has mode {mode:04o}: group or others may access it, so it "
            f"is refused for signing; run `chmod 600 {path}` (and check who copied it)"
        )
    try:
        key = parse_signer_key(text)
    except NoteError as exc:
        raise VaultError(f"signing key {path} is unusable: {exc}") from exc
    if key.verifier.vkey != verifier.vkey:
        raise VaultError(f"signing key {path} does not match verifier key in the vault")
    return KeySigner(key)
