"""Pinned verification: check a vault against checkpoints the verifier already trusts.

A vault verified on its own can only show it is self-consistent: an operator
who deletes the newest checkpoint rows, or rewrites the log and re-signs
everything with the same key, still passes. What binds a vault to its past is
a checkpoint published or seen earlier (a *pin*). As a Certificate
Transparency monitor does (RFC 9162 §8.3: a client keeps the STHs it has seen
and checks each new one is consistent with them; C2SP tlog-witness: a
witness cosigns only checkpoints consistent with the newest it has seen),
:func:`check_pins` requires, for every pinned checkpoint (origin, size, root
hash, signed by the pinned key):

* the vault's log reaches that size (else the vault was rolled back or
  truncated: it shows an older state than one already seen);
* the vault still holds a checkpoint of that size with the same root (a
  different root is a fork: two different trees signed for one size);
* every later checkpoint the vault holds is consistent with the pinned one,
  by an RFC 9162 §2.1.4 consistency proof computed from the stored hashes
  and checked against the pinned root.

Every failure names the origin, the sizes and the roots (base64, as in the
checkpoint note).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

from echo_archive.errors import EchoError
from echo_archive.vault.checkpoint import Checkpoint, open_checkpoint
from echo_archive.vault.merkle import verify_consistency
from echo_archive.vault.note import Verifier
from echo_archive.vault.vault import Vault

__all__ = ["Pin", "PinProblem", "check_pins", "open_pin"]


@dataclass(frozen=True)
class Pin:
    """A checkpoint the verifier trusts, and where it came from (a file, the state file).

    Attributes:
        checkpoint: the verified checkpoint (origin, size, root).
        source: where it came from, for messages (``"published.txt"``,
            ``"the checkpoint verified on 2026-12-07T..."``).
    """

    checkpoint: Checkpoint
    source: str


@dataclass(frozen=True)
class PinProblem:
    """One failed pin check: ``ref`` (``"pinned checkpoint 12"``) and what failed."""

    ref: str
    message: str


def _b64(root: bytes) -> str:
    return base64.b64encode(root).decode("ascii")


def open_pin(note: str, verifier: Verifier, source: str) -> Pin:
    """Verify a published checkpoint (C2SP tlog-checkpoint signed note) against a pinned key.

    Args:
        note: the signed note text, verbatim.
        verifier: the pinned verifier key; the note must carry a valid
            signature by it and name its origin.
        source: where the note came from (a file name), for messages.

    Returns:
        The pin.

    Raises:
        NoteFormatError: the note is malformed (the message is prefixed with ``source``).
        SignatureError: no valid signature by ``verifier``, or another origin.
    """
    try:
        cp = open_checkpoint(note, verifier)
    except EchoError as exc:
        raise type(exc)(f"{source}: {exc}") from exc
    return Pin(cp, source)


def check_pins(vault: Vault, pins: Sequence[Pin]) -> list[PinProblem]:
    """Check that ``vault`` holds each pinned checkpoint and only consistent later ones.

    Args:
        vault: an open vault (a reader is enough).
        pins: the pinned checkpoints (any order).

    Returns:
        The problems (empty when every pin holds), each naming the origin,
        sizes and roots.

    Raises:
        StorageError: the catalog cannot be read.
    """
    problems: list[PinProblem] = []
    size, _ = vault.log_state()
    sizes = vault.checkpoint_sizes()
    latest = max(sizes) if sizes else 0
    for pin in pins:
        cp = pin.checkpoint
        ref = f"pinned checkpoint {cp.size}"
        where = f"({pin.source}; origin {cp.origin}, size {cp.size}, root {_b64(cp.root_hash)})"
        if cp.origin != vault.origin:
            problems.append(
                PinProblem(
                    ref, f"is a checkpoint of log {cp.origin!r}, not {vault.origin!r} {where}"
                )
            )
            continue
        if cp.size > latest:
            problems.append(
                PinProblem(
                    ref,
                    f"the vault's newest checkpoint is of size {latest} (log size {size}), older "
                    f"than the pinned one {where}: the vault was rolled back or its newest "
                    "checkpoints were removed",
                )
            )
            continue
        if cp.size not in sizes:
            tree = vault.root_at(cp.size) if cp.size <= size else None
            if tree is not None and tree != cp.root_hash:
                problems.append(
                    PinProblem(
                        ref,
                        f"the vault's tree of size {cp.size} has root {_b64(tree)}, not the "
                        f"pinned root {where}: a fork (two trees signed for one size)",
                    )
                )
                continue
            problems.append(
                PinProblem(
                    ref,
                    f"the vault holds no checkpoint of size {cp.size} {where} (it holds "
                    f"{len(sizes)} checkpoint(s) up to size {latest}): a checkpoint that "
                    "was published or verified is missing",
                )
            )
            continue
        held = vault.checkpoint_at(cp.size).checkpoint
        if held.root_hash != cp.root_hash:
            problems.append(
                PinProblem(
                    ref,
                    f"the vault's checkpoint of size {cp.size} has root {_b64(held.root_hash)}, "
                    f"not the pinned root {where}: a fork (two trees signed for one size)",
                )
            )
            continue
        for later in (s for s in sizes if s > cp.size):
            new = vault.checkpoint_at(later).checkpoint
            try:
                proof = vault.consistency_proof(cp.size, later) if cp.size else []
                if cp.size:
                    verify_consistency(cp.size, later, proof, cp.root_hash, new.root_hash)
            except EchoError as exc:
                problems.append(
                    PinProblem(
                        ref,
                        f"the vault's checkpoint of size {later} (root {_b64(new.root_hash)}) "
                        f"is not consistent with the pinned one {where}: {exc}",
                    )
                )
                break
    return problems
