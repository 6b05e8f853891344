"""C2SP transparency-log proofs (c2sp.org/tlog-proof, version ``v1``).

Terms:

* **tlog-proof**: a self-contained, offline-verifiable text proving that an
  entry is in a log: a header line, optional extra data, the entry index, a
  Merkle inclusion proof, an empty line, then a signed checkpoint verbatim::

      c2sp.org/tlog-proof@v1
      [extra <base64 opaque data>]
      index <decimal index>
      <base64 hash>            (zero or more lines, leaf's sibling first)

      <checkpoint signed note, verbatim>

* **extra data**: opaque, application-defined bytes. They are NOT
  authenticated and must not be trusted implicitly.
* **index**: the zero-based index of the entry in the log, ASCII decimal
  without leading zeros.
* **inclusion proof**: the RFC 6962 §2.1.1 audit path of the entry in the
  checkpointed tree: one 32-byte SHA-256 hash per line, from the leaf's sibling
  up to the root's child.
* **checkpoint**: a signed note in the c2sp.org/tlog-checkpoint format (see
  :mod:`echo_archive.vault.checkpoint`). It may carry witness cosignatures; it
  is kept verbatim and verified with
  :func:`echo_archive.vault.checkpoint.open_checkpoint`.

This module only parses and formats; verifying the checkpoint's signatures and
the inclusion proof is the caller's job.
"""

from __future__ import annotations

from dataclasses import dataclass

from echo_archive.errors import NoteFormatError
from echo_archive.vault.checkpoint import MAX_TREE_SIZE, _parse_body, parse_uint64
from echo_archive.vault.note import (
    _b64decode,
    _b64encode,
    _check_size,
    _decode_text,
    _parse_note,
)

__all__ = [
    "HEADER",
    "MAX_EXTRA_SIZE",
    "MAX_PROOF_HASHES",
    "MAX_TLOG_PROOF_SIZE",
    "TlogProof",
    "format_tlog_proof",
    "parse_tlog_proof",
]

HEADER = "c2sp.org/tlog-proof@v1"
"""The first line of every tlog-proof (tlog-proof, "Format")."""

MAX_PROOF_HASHES = 64
"""Most inclusion proof hashes: enough for any tree of up to 2**64 - 1 leaves."""

MAX_EXTRA_SIZE = 1 << 20
"""Largest extra data accepted, in bytes (a sanity limit; the spec sets none)."""

MAX_TLOG_PROOF_SIZE = 4 << 20
"""Largest tlog-proof text accepted, in UTF-8 bytes (a sanity limit; the spec sets none)."""

_HASH_SIZE = 32


@dataclass(frozen=True)
class TlogProof:
    """A parsed tlog-proof (tlog-proof, "Format").

    Construction validates every field, so a :class:`TlogProof` always formats
    to text that :func:`parse_tlog_proof` accepts. The checkpoint is checked to
    be a well-formed signed checkpoint whose tree size exceeds ``index``; its
    signatures are NOT verified.

    Args:
        index: the zero-based entry index, below the checkpoint's tree size.
        proof: the inclusion proof hashes (32 bytes each, at most
            :data:`MAX_PROOF_HASHES`), leaf's sibling first.
        checkpoint: the signed checkpoint note, verbatim.
        extra: opaque, unauthenticated extra data; ``None`` when absent (empty
            extra data is not representable: the spec omits the line).

    Raises:
        NoteFormatError: a field is out of its domain or the checkpoint is
            malformed.

    """

    index: int
    proof: tuple[bytes, ...]
    checkpoint: str
    extra: bytes | None = None

    def __post_init__(self) -> None:
        what = "tlog-proof"
        if isinstance(self.index, bool) or not isinstance(self.index, int):
            raise NoteFormatError(f"{what}: index must be an int, not {self.index!r}")
        if not 0 <= self.index <= MAX_TREE_SIZE:
            raise NoteFormatError(f"{what}: index {self.index} is not a uint64")
        if not isinstance(self.proof, tuple):
            raise NoteFormatError(f"{what}: proof must be a tuple of hashes")
        if len(self.proof) > MAX_PROOF_HASHES:
            raise NoteFormatError(
                f"{what}: {len(self.proof)} proof hashes exceed the limit of {MAX_PROOF_HASHES}"
            )
        for number, node in enumerate(self.proof):
            if not isinstance(node, bytes) or len(node) != _HASH_SIZE:
                raise NoteFormatError(f"{what}: proof hash {number} must be {_HASH_SIZE} bytes")
        if self.extra is not None:
            if not isinstance(self.extra, bytes):
                raise NoteFormatError(f"{what}: extra data must be bytes or None")
            if not self.extra:
                raise NoteFormatError(f"{what}: extra data is empty (use None for no extra data)")
            if len(self.extra) > MAX_EXTRA_SIZE:
                raise NoteFormatError(
                    f"{what}: extra data of {len(self.extra)} bytes exceeds the limit of "
                    f"{MAX_EXTRA_SIZE}"
                )
        if not isinstance(self.checkpoint, str):
            raise NoteFormatError(f"{what}: checkpoint must be the signed note text")
        size = _parse_body(_parse_note(self.checkpoint, f"{what} checkpoint", 1).text, 1).size
        if self.index >= size:
            raise NoteFormatError(
                f"{what}: index {self.index} is not below the checkpoint's tree size {size}"
            )


def format_tlog_proof(p: TlogProof) -> str:
    """Encode a proof as tlog-proof text (tlog-proof, "Format").

    Args:
        p: the proof.

    Returns:
        The text: header, optional ``extra`` line, ``index`` line, proof hashes,
        an empty line, and the checkpoint verbatim (ending with its newline).

    """
    lines = [HEADER]
    if p.extra is not None:
        lines.append(f"extra {_b64encode(p.extra)}")
    lines.append(f"index {p.index}")
    lines.extend(_b64encode(node) for node in p.proof)
    return "\n".join(lines) + "\n\n" + p.checkpoint


def parse_tlog_proof(text: str | bytes) -> TlogProof:
    """Parse tlog-proof text strictly (tlog-proof, "Format").

    Nothing is verified cryptographically: open the checkpoint with
    :func:`echo_archive.vault.checkpoint.open_checkpoint` and check the
    inclusion proof against its root.

    Args:
        text: the whole proof, as text or UTF-8 bytes.

    Returns:
        The proof.

    Raises:
        NoteFormatError: the header is not ``c2sp.org/tlog-proof@v1``; the
            ``extra`` line is empty or not canonical base64; the ``index`` line
            is missing or not decimal without leading zeros; a proof line is not
            canonical base64 of 32 bytes; the empty line or the checkpoint is
            missing; the checkpoint is not a well-formed signed checkpoint; the
            index is not below its tree size; or a size limit is exceeded. The
            message names the line.

    """
    what = "tlog-proof"
    _check_size(text, MAX_TLOG_PROOF_SIZE, what)
    data = _decode_text(text, what)
    pos = 0
    number = 0

    def next_line(expecting: str) -> str:
        nonlocal pos, number
        number += 1
        end = data.find("\n", pos)
        if end < 0:
            if pos == len(data):
                raise NoteFormatError(f"{what}: line {number}: missing; expected {expecting}")
            raise NoteFormatError(f"{what}: line {number}: does not end with a newline")
        line = data[pos:end]
        pos = end + 1
        return line

    if next_line(f"'{HEADER}'") != HEADER:
        raise NoteFormatError(f"{what}: line 1: expected exactly '{HEADER}'")

    extra: bytes | None = None
    line = next_line("'extra <data>' or 'index <n>'")
    if line.startswith("extra "):
        payload = line[len("extra ") :]
        decoded = _b64decode(payload)
        if decoded is None:
            raise NoteFormatError(
                f"{what}: line {number}: extra data is not canonical standard base64"
            )
        if not decoded:
            raise NoteFormatError(f"{what}: line {number}: extra data is empty")
        if len(decoded) > MAX_EXTRA_SIZE:
            raise NoteFormatError(
                f"{what}: line {number}: extra data exceeds the limit of {MAX_EXTRA_SIZE} bytes"
            )
        extra = decoded
        line = next_line("'index <n>'")

    if not line.startswith("index "):
        raise NoteFormatError(f"{what}: line {number}: expected 'index <n>'")
    index_text = line[len("index ") :]
    index = parse_uint64(index_text, f"{what}: line {number}: index")
    index_line = number

    proof: list[bytes] = []
    while True:
        line = next_line("an inclusion proof hash or the empty line before the checkpoint")
        if not line:
            break
        node = _b64decode(line)
        if node is None:
            raise NoteFormatError(
                f"{what}: line {number}: proof hash is not canonical standard base64"
            )
        if len(node) != _HASH_SIZE:
            raise NoteFormatError(
                f"{what}: line {number}: proof hash is {len(node)} bytes, not {_HASH_SIZE}"
            )
        proof.append(node)
        if len(proof) > MAX_PROOF_HASHES:
            raise NoteFormatError(
                f"{what}: line {number}: more than {MAX_PROOF_HASHES} proof hashes"
            )

    checkpoint = data[pos:]
    first = number + 1
    if not checkpoint:
        raise NoteFormatError(f"{what}: line {first}: missing; expected the checkpoint")
    note = _parse_note(checkpoint, f"{what} checkpoint", first)
    cp = _parse_body(note.text, first)
    if index >= cp.size:
        raise NoteFormatError(
            f"{what}: line {index_line}: index {index} is not below the checkpoint's "
            f"tree size {cp.size} (line {first + 1})"
        )
    return TlogProof(index, tuple(proof), checkpoint, extra)
