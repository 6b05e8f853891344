"""C2SP transparency-log checkpoints (c2sp.org/tlog-checkpoint).

Terms:

* **checkpoint**: a signed note (see :mod:`echo_archive.vault.note`) whose
  text states the head of a log's Merkle tree at some size, in three or more
  non-empty lines::

      <origin>
      <tree size>
      <base64 root hash>
      [extension lines...]

* **origin**: the first line; a non-empty, unique identifier of the log, by
  convention a schema-less URL such as ``example.com/log42`` (clients must not
  assume it follows that form). The log's key name SHOULD equal it, and
  :func:`open_checkpoint` requires that by default.
* **tree size**: the second line; the number of leaves, in ASCII decimal
  without leading zeros (``0`` for the empty tree).
* **root hash**: the third line; the standard base64 of the 32-byte
  RFC 6962 / RFC 9162 Merkle tree hash at that size.
* **extension lines**: any further lines; opaque, optional, non-empty (their
  use is NOT RECOMMENDED by the spec).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from echo_archive.errors import NoteFormatError, SignatureError
from echo_archive.vault.note import (
    Signer,
    Verifier,
    _b64decode,
    _b64encode,
    _check_no_controls,
    _decode_text,
    sign_note,
    verify_note,
)

__all__ = [
    "MAX_TREE_SIZE",
    "ROOT_HASH_SIZE",
    "Checkpoint",
    "open_checkpoint",
    "parse_uint64",
    "sign_checkpoint",
]

ROOT_HASH_SIZE = 32
"""Length of a SHA-256 Merkle root hash in bytes."""

MAX_TREE_SIZE = (1 << 64) - 1
"""Largest tree size accepted (a uint64, as in the reference implementations)."""

_DECIMAL = re.compile(r"0|[1-9][0-9]*")


def _line_problem(line: object) -> str | None:
    if not isinstance(line, str):
        return f"must be a string, not {type(line).__name__}"
    if not line:
        return "is empty"
    if "\n" in line:
        return "contains a newline"
    if any(ord(ch) < 0x20 for ch in line):
        return "contains a control character"
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in line):
        return "is not valid Unicode (lone surrogate)"
    return None


@dataclass(frozen=True)
class Checkpoint:
    """The note text of a checkpoint (tlog-checkpoint, "Note text").

    Args:
        origin: the log's origin line (non-empty).
        size: the tree size, ``0 <= size <= MAX_TREE_SIZE``.
        root_hash: the 32-byte Merkle tree hash at ``size``.
        extensions: extension lines, each non-empty, without newline.

    Raises:
        NoteFormatError: any field is out of its domain.

    """

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problem = _line_problem(self.origin)
        if problem is not None:
            raise NoteFormatError(f"checkpoint: origin {problem}")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise NoteFormatError(f"checkpoint: tree size must be an int, not {self.size!r}")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise NoteFormatError(f"checkpoint: tree size {self.size} is not a uint64")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != ROOT_HASH_SIZE:
            raise NoteFormatError(f"checkpoint: root hash must be {ROOT_HASH_SIZE} bytes")
        if not isinstance(self.extensions, tuple):
            raise NoteFormatError("checkpoint: extensions must be a tuple of lines")
        for number, extension in enumerate(self.extensions, start=1):
            problem = _line_problem(extension)
            if problem is not None:
                raise NoteFormatError(f"checkpoint: extension line {number} {problem}")

    def body(self) -> str:
        """Return the checkpoint's note text (tlog-checkpoint, "Note text").

        Returns:
            The origin, the decimal tree size, the base64 root hash, then the
            extension lines, each line ending in a newline.

        """
        lines = [self.origin, str(self.size), _b64encode(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse_body(cls, text: str) -> Checkpoint:
        """Parse a checkpoint's note text strictly (tlog-checkpoint, "Note text").

        The text is not authenticated by this: use :func:`open_checkpoint` on a
        signed note.

        Args:
            text: the note text, ending with a newline.

        Returns:
            The checkpoint.

        Raises:
            NoteFormatError: fewer than three lines; a missing final newline; an
                empty line; a control character; a tree size that is not decimal
                without leading zeros or exceeds a uint64; a root hash that is
                not canonical standard base64 of exactly 32 bytes. The message
                names the line.

        """
        return _parse_body(text, 1)


def parse_uint64(text: str, where: str) -> int:
    """Parse a decimal uint64 without leading zeros (C2SP tlog-checkpoint, tlog-proof).

    Args:
        text: the digits.
        where: how to name the field in errors (``"checkpoint: line 2: tree size"``).

    Raises:
        NoteFormatError: not such a number, or above 2^64 - 1.
    """
    if _DECIMAL.fullmatch(text) is None:
        raise NoteFormatError(f"{where} {text!r} is not a decimal number without leading zeros")
    value = int(text)
    if value > MAX_TREE_SIZE:
        raise NoteFormatError(f"{where} exceeds a uint64")
    return value


def _parse_body(text: object, first_line: int) -> Checkpoint:
    """Parse a checkpoint body; line numbers in errors start at ``first_line``."""
    what = "checkpoint"
    if not isinstance(text, str):
        raise NoteFormatError(f"{what}: expected str, not {type(text).__name__}")
    text = _decode_text(text, what)
    if not text.endswith("\n"):
        raise NoteFormatError(f"{what}: text must end with a newline")
    _check_no_controls(text, what, first_line)
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteFormatError(
            f"{what}: {len(lines)} line(s); needs at least 3 (origin, tree size, root hash)"
        )
    origin, size_text, root_text, *extensions = lines
    if not origin:
        raise NoteFormatError(f"{what}: line {first_line}: origin is empty")
    size = parse_uint64(size_text, f"{what}: line {first_line + 1}: tree size")
    root = _b64decode(root_text)
    if root is None:
        raise NoteFormatError(
            f"{what}: line {first_line + 2}: root hash is not canonical standard base64"
        )
    if len(root) != ROOT_HASH_SIZE:
        raise NoteFormatError(
            f"{what}: line {first_line + 2}: root hash is {len(root)} bytes, not {ROOT_HASH_SIZE}"
        )
    for offset, extension in enumerate(extensions):
        if not extension:
            raise NoteFormatError(
                f"{what}: line {first_line + 3 + offset}: extension line is empty"
            )
    return Checkpoint(origin, size, root, tuple(extensions))


def sign_checkpoint(cp: Checkpoint, signer: Signer) -> str:
    """Sign a checkpoint as a note (tlog-checkpoint, "Signatures").

    The spec says the key name SHOULD match the origin; this does not enforce it,
    but :func:`open_checkpoint` does by default.

    Args:
        cp: the checkpoint.
        signer: the log's key.

    Returns:
        The signed note text.

    Raises:
        NoteFormatError: the note would be malformed (see
            :func:`echo_archive.vault.note.sign_note`).

    """
    return sign_note(cp.body(), [signer])


def open_checkpoint(text: str | bytes, verifier: Verifier, origin: str | None = None) -> Checkpoint:
    """Verify a signed checkpoint and parse it (tlog-checkpoint; signed-note "Signatures").

    The signature is verified before the body is interpreted. Signatures by
    other keys (cosigners, rotated keys) are ignored.

    Args:
        text: the signed note, as text or UTF-8 bytes.
        verifier: the log's key.
        origin: the expected origin line; by default ``verifier.name``.

    Returns:
        The verified checkpoint.

    Raises:
        NoteFormatError: the note or its body is malformed.
        SignatureError: no valid signature by ``verifier``, a signature by it
            that does not verify, or the origin is not the expected one (a
            validly signed checkpoint of another log).

    """
    note = verify_note(text, [verifier])
    cp = _parse_body(note.text, 1)
    expected = verifier.name if origin is None else origin
    if cp.origin != expected:
        raise SignatureError(
            f"checkpoint: origin {cp.origin!r} is not the expected origin {expected!r}"
        )
    return cp
