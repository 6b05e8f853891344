"""C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys.

Terms used throughout the vault:

* **note**: a UTF-8 *text* of one or more lines, each ending in a newline
  (U+000A), followed by one empty line and one or more *signature lines*. The
  text is what gets signed; it includes its final newline but not the
  separating empty line, and MAY itself contain empty lines (the text ends at
  the *last* empty line of the note). A note MUST NOT contain ASCII control
  characters other than newline. The text of a note MUST be ignored until a
  signature by a trusted key has been verified (signed-note, "Format").
* **signature line**: ``— <key name> <base64(key id || signature)>`` and a
  newline: an em dash (U+2014), a space, the key name, a space, and the
  standard base64 (RFC 4648 §4) of the 4-byte key id followed by the signature
  bytes (signed-note, "Signatures").
* **key name**: a non-empty string without Unicode spaces and without ``+``
  (U+002B); by convention a schema-less URL such as ``example.com/log``.
* **key id**: four bytes that, together with the key name, identify a key and
  its algorithm: ``SHA-256(key name || 0x0A || signature type || public key)[:4]``.
  For Ed25519 the signature type byte is ``0x01`` and the public key is its
  32-byte RFC 8032 encoding (signed-note, "Ed25519 signatures").
* **verifier key** (vkey): the public text form of a key, as used by Go's
  ``golang.org/x/mod/sumdb/note`` and the transparency-log ecosystem:
  ``<name>+<8 hex digits of key id>+<base64(0x01 || 32-byte public key)>``.
* **signer key**: the secret text form, in the same ecosystem's format:
  ``PRIVATE+KEY+<name>+<8 hex digits of key id>+<base64(0x01 || 32-byte seed)>``.
  It must be kept secret; this module never puts any part of it in an error
  message or a ``repr``.

Only the Ed25519 signature type (``0x01``) is implemented, as the spec
recommends supporting only the types a design needs. Signatures by other key
types are parsed and, being unknown, ignored by :func:`verify_note`.

Parsing is strict: base64 must be canonical standard base64 with padding, and
limits apply (:data:`MAX_SIGNATURES` signature lines, :data:`MAX_NOTE_SIZE`
bytes), as the spec asks verifiers to bound the work a note can cause.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from echo_archive.errors import NoteFormatError, SignatureError

__all__ = [
    "ALG_ED25519",
    "KEY_ID_SIZE",
    "MAX_NOTE_SIZE",
    "MAX_SIGNATURES",
    "Note",
    "NoteSignature",
    "Signer",
    "Verifier",
    "format_signer_key",
    "generate_signer",
    "key_id",
    "parse_note",
    "parse_signer_key",
    "parse_vkey",
    "sign_note",
    "verify_note",
]

ALG_ED25519 = 0x01
"""Signature type identifier byte of Ed25519 (signed-note, "Signature types")."""

KEY_ID_SIZE = 4
"""Length of a key id in bytes."""

MAX_SIGNATURES = 100
"""Most signature lines a note may carry (the spec requires accepting at least 16)."""

MAX_NOTE_SIZE = 1 << 20
"""Largest note accepted, in UTF-8 bytes (1 MiB: room for 100 post-quantum signatures)."""

_ED25519_KEY_SIZE = 32
_ED25519_SIG_SIZE = 64
_SIG_PREFIX = "— "
_PRIVATE_PREFIX = "PRIVATE+KEY+"
_HEX_KEY_ID = re.compile(r"[0-9a-fA-F]{8}")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


# --------------------------------------------------------------------------- helpers


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _b64decode(text: str) -> bytes | None:
    """Decode canonical standard base64 (RFC 4648 §4, padded); None if it is not."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        return None
    # Reject non-canonical encodings (non-zero padding bits), so that one value
    # has exactly one textual form.
    if _b64encode(raw) != text:
        return None
    return raw


def _name_problem(name: object) -> str | None:
    """Say what makes ``name`` an invalid key name, or None when it is valid."""
    if not isinstance(name, str):
        return f"must be a string, not {type(name).__name__}"
    if not name:
        return "is empty"
    for ch in name:
        if ch == "+":
            return "contains '+' (U+002B)"
        if ch.isspace():
            return f"contains a space character (U+{ord(ch):04X})"
        if ord(ch) < 0x20:
            return f"contains a control character (U+{ord(ch):04X})"
        if 0xD800 <= ord(ch) <= 0xDFFF:
            return "is not valid Unicode (lone surrogate)"
    return None


def _check_name(name: object, where: str) -> None:
    problem = _name_problem(name)
    if problem is not None:
        raise NoteFormatError(f"{where}: key name {problem}")


def _decode_text(data: object, what: str) -> str:
    """Return ``data`` as ``str``, requiring well-formed UTF-8 (signed-note, "Format")."""
    if isinstance(data, bytes | bytearray | memoryview):
        raw = bytes(data)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteFormatError(f"{what}: not valid UTF-8 at byte offset {exc.start}") from None
    if isinstance(data, str):
        try:
            data.encode("utf-8")
        except UnicodeEncodeError as exc:
            line = data.count("\n", 0, exc.start) + 1
            raise NoteFormatError(
                f"{what}: line {line}: not valid Unicode (lone surrogate)"
            ) from None
        return data
    raise NoteFormatError(f"{what}: expected str or bytes, not {type(data).__name__}")


def _check_size(data: object, limit: int, what: str) -> None:
    """Reject input of more than ``limit`` UTF-8 bytes, cheaply before decoding."""
    if isinstance(data, memoryview):
        size = data.nbytes
    elif isinstance(data, bytes | bytearray | str):
        # len() is exact for bytes, and a lower bound of the UTF-8 size of a str.
        size = len(data)
        if isinstance(data, str) and size <= limit < 4 * size:
            size = len(data.encode("utf-8", "surrogatepass"))
    else:
        return
    if size > limit:
        raise NoteFormatError(f"{what}: {size} bytes exceeds the limit of {limit}")


def _check_no_controls(text: str, what: str, first_line: int = 1) -> None:
    """Reject ASCII control characters other than newline, naming the line."""
    match = _CONTROL.search(text)
    if match is not None:
        pos = match.start()
        line = text.count("\n", 0, pos) + first_line
        column = pos - (text.rfind("\n", 0, pos) + 1) + 1
        raise NoteFormatError(
            f"{what}: line {line}, column {column}: control character "
            f"U+{ord(text[pos]):04X} is not allowed"
        )


def _check_text(text: object, what: str) -> str:
    """Validate a note text (the signed part): str, non-empty, ends with newline."""
    if not isinstance(text, str):
        raise NoteFormatError(f"{what}: expected str, not {type(text).__name__}")
    text = _decode_text(text, what)
    if not text.endswith("\n"):
        raise NoteFormatError(f"{what}: text must be non-empty and end with a newline")
    _check_no_controls(text, what)
    return text


def _key_label(name: str, kid: bytes) -> str:
    return f"{name}+{kid.hex()}"


# --------------------------------------------------------------------------- keys


def key_id(name: str, alg_and_pubkey: bytes) -> bytes:
    """Compute the key id of a key (signed-note, "Signatures").

    Args:
        name: the key name (non-empty, no Unicode spaces, no ``+``).
        alg_and_pubkey: the signature type byte followed by the public key
            encoding; for Ed25519, ``0x01`` followed by the 32-byte key.

    Returns:
        The first 4 bytes of ``SHA-256(name || 0x0A || alg_and_pubkey)``.

    Raises:
        NoteFormatError: the name is invalid or ``alg_and_pubkey`` is empty.

    """
    _check_name(name, "key id")
    if not alg_and_pubkey:
        raise NoteFormatError("key id: the signature type byte and public key are missing")
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes(alg_and_pubkey)).digest()
    return digest[:KEY_ID_SIZE]


@dataclass(frozen=True)
class Verifier:
    """An Ed25519 public key that verifies note signatures (signed-note, "Ed25519 signatures").

    Construction validates that the name is a valid key name, the public key is
    32 bytes, and ``key_id`` is the key id of that name and key.

    Args:
        name: the key name.
        key_id: the 4-byte key id, ``key_id(name, 0x01 || public_key)``.
        public_key: the 32-byte RFC 8032 Ed25519 public key.

    Raises:
        NoteFormatError: any of the above does not hold.

    """

    name: str
    key_id: bytes
    public_key: bytes

    def __post_init__(self) -> None:
        _check_name(self.name, "verifier")
        if not isinstance(self.public_key, bytes) or len(self.public_key) != _ED25519_KEY_SIZE:
            raise NoteFormatError(
                f"verifier {self.name!r}: Ed25519 public key must be {_ED25519_KEY_SIZE} bytes"
            )
        expected = key_id(self.name, bytes([ALG_ED25519]) + self.public_key)
        if self.key_id != expected:
            raise NoteFormatError(
                f"verifier {self.name!r}: key id does not match the name and key "
                f"(expected {expected.hex()})"
            )
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key)
        except ValueError:
            raise NoteFormatError(
                f"verifier {self.name!r}: not a usable Ed25519 public key"
            ) from None

    @classmethod
    def from_public_key(cls, name: str, public_key: bytes) -> Verifier:
        """Build a verifier from a name and raw key, computing the key id.

        Args:
            name: the key name.
            public_key: the 32-byte Ed25519 public key.

        Returns:
            The verifier.

        Raises:
            NoteFormatError: invalid name or key.

        """
        _check_name(name, "verifier")
        return cls(name, key_id(name, bytes([ALG_ED25519]) + bytes(public_key)), public_key)

    @property
    def vkey(self) -> str:
        """The verifier key text: ``<name>+<hex key id>+<base64(0x01 || public key)>``."""
        return (
            f"{self.name}+{self.key_id.hex()}+{_b64encode(bytes([ALG_ED25519]) + self.public_key)}"
        )

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Check an Ed25519 signature (RFC 8032) over ``message``.

        Args:
            message: the signed bytes (for a note, its UTF-8 text).
            signature: the raw 64-byte signature, without the key id.

        Returns:
            True if the signature is valid for this key, else False.

        """
        if len(signature) != _ED25519_SIG_SIZE:
            return False
        key = Ed25519PublicKey.from_public_bytes(self.public_key)
        try:
            key.verify(bytes(signature), bytes(message))
        except InvalidSignature:
            return False
        return True


def _split_key(rest: str, where: str, shape: str, what: str) -> tuple[bytes, bytes]:
    """Split ``<hex key id>+<base64(0x01 || key)>`` into (key id, raw key with its type byte).

    Args:
        rest: the text after the key name and its ``+``.
        where: how to name the key in errors.
        shape: the expected overall shape, for the error message.
        what: ``"public"`` or ``"private"``, for the size error.

    Raises:
        NoteFormatError: the key id is not 8 hex digits, the key is not
            canonical base64, is empty, is not Ed25519 (0x01) or not 32 bytes.
    """
    hex_id, sep, key64 = rest.partition("+")
    if not sep:
        raise NoteFormatError(f"{where}: expected {shape}")
    if _HEX_KEY_ID.fullmatch(hex_id) is None:
        raise NoteFormatError(f"{where}: key id must be 8 hexadecimal digits")
    raw = _b64decode(key64)
    if raw is None:
        raise NoteFormatError(f"{where}: key is not canonical standard base64")
    if not raw:
        raise NoteFormatError(f"{where}: key is empty")
    if raw[0] != ALG_ED25519:
        raise NoteFormatError(
            f"{where}: unsupported signature type 0x{raw[0]:02x} (only Ed25519, 0x01)"
        )
    if len(raw) != 1 + _ED25519_KEY_SIZE:
        raise NoteFormatError(
            f"{where}: Ed25519 {what} key must be {_ED25519_KEY_SIZE} bytes, not {len(raw) - 1}"
        )
    return bytes.fromhex(hex_id), raw


def parse_vkey(text: str) -> Verifier:
    """Parse a verifier key ``<name>+<hex key id>+<base64(0x01 || public key)>``.

    Implements the key name rules of signed-note ("Format") and the Ed25519 key
    id of signed-note ("Ed25519 signatures"); the text form is that of Go's
    ``golang.org/x/mod/sumdb/note``. The key id hex may be in either case.

    Args:
        text: the verifier key, with no surrounding whitespace.

    Returns:
        The verifier.

    Raises:
        NoteFormatError: the text is malformed, the name is invalid, the key
            type is not Ed25519 (0x01), the key is not 32 bytes, or the key id
            does not match the name and key.

    """
    where = "verifier key"
    if not isinstance(text, str):
        raise NoteFormatError(f"{where}: expected str, not {type(text).__name__}")
    if text != text.strip():
        raise NoteFormatError(f"{where}: has leading or trailing whitespace")
    name, sep, rest = text.partition("+")
    if not sep:
        raise NoteFormatError(f"{where}: expected <name>+<key id>+<key>, found no '+'")
    _check_name(name, where)
    where = f"verifier key {name!r}"
    kid, raw = _split_key(rest, where, "<name>+<key id>+<key>, found one '+'", "public")
    expected = key_id(name, raw)
    if kid != expected:
        raise NoteFormatError(
            f"{where}: key id {kid.hex()} does not match the name and key "
            f"(expected {expected.hex()})"
        )
    return Verifier(name, kid, raw[1:])


@dataclass(frozen=True, repr=False)
class Signer:
    """An Ed25519 private key that signs notes under a key name.

    The seed is secret: it is excluded from ``repr`` and never appears in error
    messages. Construction derives the public key and checks the key id.

    Args:
        name: the key name.
        key_id: the 4-byte key id of the matching :class:`Verifier`.
        seed: the 32-byte RFC 8032 Ed25519 private key (seed).

    Raises:
        NoteFormatError: invalid name, seed length, or a key id that does not
            match the name and key.

    """

    name: str
    key_id: bytes
    seed: bytes = field(repr=False)
    public_key: bytes = field(init=False)

    def __post_init__(self) -> None:
        _check_name(self.name, "signer")
        if not isinstance(self.seed, bytes) or len(self.seed) != _ED25519_KEY_SIZE:
            raise NoteFormatError(
                f"signer {self.name!r}: Ed25519 private key must be {_ED25519_KEY_SIZE} bytes"
            )
        public = Ed25519PrivateKey.from_private_bytes(self.seed).public_key().public_bytes_raw()
        if self.key_id != key_id(self.name, bytes([ALG_ED25519]) + public):
            raise NoteFormatError(f"signer {self.name!r}: key id does not match the name and key")
        object.__setattr__(self, "public_key", public)

    def __repr__(self) -> str:
        return f"Signer(name={self.name!r}, key_id={self.key_id.hex()}, seed=<hidden>)"

    @property
    def verifier(self) -> Verifier:
        """The matching public :class:`Verifier`."""
        return Verifier(self.name, self.key_id, self.public_key)

    def sign(self, message: bytes) -> bytes:
        """Sign ``message`` with Ed25519 (RFC 8032).

        Args:
            message: the bytes to sign (for a note, its UTF-8 text).

        Returns:
            The raw 64-byte signature (without the key id).

        """
        return Ed25519PrivateKey.from_private_bytes(self.seed).sign(bytes(message))


def generate_signer(name: str) -> Signer:
    """Generate a new random Ed25519 signer for ``name``.

    Args:
        name: the key name (non-empty, no Unicode spaces, no ``+``).

    Returns:
        A new signer; its verifier is ``signer.verifier``.

    Raises:
        NoteFormatError: the name is invalid.

    """
    _check_name(name, "signer")
    seed = Ed25519PrivateKey.generate().private_bytes_raw()
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    return Signer(name, key_id(name, bytes([ALG_ED25519]) + public), seed)


def format_signer_key(signer: Signer) -> str:
    """Encode a signer as ``PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || seed)>``.

    This is the private key format of Go's ``golang.org/x/mod/sumdb/note``. The
    result is secret.

    Args:
        signer: the signer.

    Returns:
        The signer key text (no trailing newline).

    """
    return (
        f"{_PRIVATE_PREFIX}{signer.name}+{signer.key_id.hex()}+"
        f"{_b64encode(bytes([ALG_ED25519]) + signer.seed)}"
    )


def parse_signer_key(text: str) -> Signer:
    """Parse a signer key ``PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || seed)>``.

    Error messages never contain any part of ``text``: a malformed key could put
    secret material anywhere in it.

    Args:
        text: the signer key, with no surrounding whitespace (strip a key file's
            trailing newline before calling).

    Returns:
        The signer.

    Raises:
        NoteFormatError: the text is malformed, the name is invalid, the key
            type is not Ed25519 (0x01), the seed is not 32 bytes, or the key id
            does not match the name and derived public key.

    """
    where = "signer key"
    if not isinstance(text, str):
        raise NoteFormatError(f"{where}: expected str, not {type(text).__name__}")
    if text != text.strip():
        raise NoteFormatError(f"{where}: has leading or trailing whitespace")
    if not text.startswith(_PRIVATE_PREFIX):
        raise NoteFormatError(f"{where}: does not start with 'PRIVATE+KEY+'")
    name, sep, rest = text[len(_PRIVATE_PREFIX) :].partition("+")
    if not sep:
        raise NoteFormatError(f"{where}: expected PRIVATE+KEY+<name>+<key id>+<key>")
    if _name_problem(name) is not None:
        raise NoteFormatError(
            f"{where}: key name is invalid (empty, or contains a space, '+' or control character)"
        )
    kid, raw = _split_key(rest, where, "PRIVATE+KEY+<name>+<key id>+<key>", "private")
    seed = raw[1:]
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    if kid != key_id(name, bytes([ALG_ED25519]) + public):
        raise NoteFormatError(f"{where}: key id does not match the name and key")
    return Signer(name, kid, seed)


# --------------------------------------------------------------------------- notes


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a note (signed-note, "Signatures"), verified or not.

    Args:
        name: the key name on the line.
        key_id: the 4-byte key id (first 4 decoded bytes).
        signature: the signature bytes that follow the key id (at least 1).

    Raises:
        NoteFormatError: invalid name, key id length, or empty signature.

    """

    name: str
    key_id: bytes
    signature: bytes

    def __post_init__(self) -> None:
        _check_name(self.name, "note signature")
        if not isinstance(self.key_id, bytes) or len(self.key_id) != KEY_ID_SIZE:
            raise NoteFormatError(f"note signature by {self.name!r}: key id must be 4 bytes")
        if not isinstance(self.signature, bytes) or not self.signature:
            raise NoteFormatError(f"note signature by {self.name!r}: signature is empty")

    @property
    def line(self) -> str:
        """The signature line, without its newline: ``— <name> <base64(key id || sig)>``."""
        return f"{_SIG_PREFIX}{self.name} {_b64encode(self.key_id + self.signature)}"


@dataclass(frozen=True)
class Note:
    """A note's text and signatures (signed-note, "Format").

    From :func:`parse_note`, ``signatures`` holds every signature line, none of
    them verified; from :func:`verify_note`, only those that verified against a
    known key.

    Args:
        text: the note text, including its final newline, excluding the empty
            separator line.
        signatures: the signatures, in note order.

    Raises:
        NoteFormatError: the text is empty, does not end with a newline, or
            contains control characters.

    """

    text: str
    signatures: tuple[NoteSignature, ...]

    def __post_init__(self) -> None:
        _check_text(self.text, "note")


def _parse_note(data: object, what: str, first_line: int) -> Note:
    """Parse a signed note; line numbers in errors start at ``first_line``."""
    _check_size(data, MAX_NOTE_SIZE, what)
    text = _decode_text(data, what)
    if not text:
        raise NoteFormatError(f"{what}: is empty")
    _check_no_controls(text, what, first_line)
    split = text.rfind("\n\n")
    if split < 0:
        raise NoteFormatError(f"{what}: no empty line separating the text from the signature lines")
    body, block = text[: split + 1], text[split + 2 :]
    sig_line = first_line + body.count("\n") + 1
    if not block:
        raise NoteFormatError(
            f"{what}: line {sig_line - 1}: note ends with an empty line; no signature lines follow"
        )
    if not block.endswith("\n"):
        last = sig_line + block.count("\n")
        raise NoteFormatError(f"{what}: line {last}: last line does not end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteFormatError(
            f"{what}: {len(lines)} signature lines exceed the limit of {MAX_SIGNATURES}"
        )
    signatures: list[NoteSignature] = []
    for offset, line in enumerate(lines):
        number = sig_line + offset
        where = f"{what}: line {number}"
        if not line.startswith(_SIG_PREFIX):
            raise NoteFormatError(
                f"{where}: signature line must start with an em dash (U+2014) and a space"
            )
        name, sep, b64 = line[len(_SIG_PREFIX) :].partition(" ")
        if not sep:
            raise NoteFormatError(f"{where}: no space between the key name and the signature")
        _check_name(name, where)
        raw = _b64decode(b64)
        if raw is None:
            raise NoteFormatError(f"{where}: signature is not canonical standard base64")
        if len(raw) <= KEY_ID_SIZE:
            raise NoteFormatError(
                f"{where}: signature has {len(raw)} bytes; needs a 4-byte key id and a signature"
            )
        signatures.append(NoteSignature(name, raw[:KEY_ID_SIZE], raw[KEY_ID_SIZE:]))
    return Note(body, tuple(signatures))


def parse_note(data: str | bytes) -> Note:
    """Parse a signed note without verifying it (signed-note, "Format").

    The returned text MUST NOT be trusted: use :func:`verify_note` for that.

    Args:
        data: the whole note, as text or UTF-8 bytes.

    Returns:
        The note with every signature line, in order, unverified.

    Raises:
        NoteFormatError: not UTF-8, a control character other than newline, no
            empty line before the signatures, a malformed signature line (prefix,
            key name, canonical base64, at least 5 bytes), more than
            :data:`MAX_SIGNATURES` signatures, or more than :data:`MAX_NOTE_SIZE`
            bytes. The message names the line.

    """
    return _parse_note(data, "note", 1)


def _verify_parsed(note: Note, verifiers: Sequence[Verifier], first_line: int) -> Note:
    known: dict[tuple[str, bytes], Verifier] = {}
    for verifier in verifiers:
        slot = (verifier.name, verifier.key_id)
        previous = known.get(slot)
        if previous is not None and previous.public_key != verifier.public_key:
            raise SignatureError(
                f"ambiguous verifier keys: two different keys are named {_key_label(*slot)}"
            )
        known[slot] = verifier
    if not known:
        raise SignatureError("no verifier keys given: a note cannot be trusted without one")
    message = note.text.encode("utf-8")
    sig_line = first_line + note.text.count("\n") + 1
    verified: list[NoteSignature] = []
    seen: set[tuple[str, bytes]] = set()
    for offset, signature in enumerate(note.signatures):
        slot = (signature.name, signature.key_id)
        match = known.get(slot)
        if match is None:
            continue  # unknown key, even if it shares the name or id: ignore (spec MUST)
        if not match.verify(message, signature.signature):
            raise SignatureError(
                f"note: line {sig_line + offset}: signature by known key "
                f"{_key_label(*slot)} does not verify"
            )
        if slot not in seen:
            seen.add(slot)
            verified.append(signature)
    if not verified:
        expected = ", ".join(sorted(_key_label(*slot) for slot in known))
        found = ", ".join(_key_label(s.name, s.key_id) for s in note.signatures)
        raise SignatureError(
            f"note has no signature by a known key: expected one of [{expected}], "
            f"found signatures by [{found}]"
        )
    return Note(note.text, tuple(verified))


def verify_note(data: str | bytes, verifiers: Sequence[Verifier]) -> Note:
    """Parse a signed note and verify it against known keys (signed-note, "Signatures").

    A signature is by a known key when both its key name and key id match a
    verifier. Signatures by unknown keys are ignored, even when they share the
    name or the id (but not both) with a known key. Every signature by a known
    key must verify; at least one must be present.

    Args:
        data: the whole note, as text or UTF-8 bytes.
        verifiers: the trusted keys.

    Returns:
        The note; its ``signatures`` are only the verified ones (the first per
        key, in note order), so there is always at least one.

    Raises:
        NoteFormatError: the note is malformed (see :func:`parse_note`).
        SignatureError: no signature by a known key; a signature by a known key
            does not verify; no verifiers were given; or two different
            verifiers share a name and key id.

    """
    return _verify_parsed(_parse_note(data, "note", 1), verifiers, 1)


def sign_note(text: str, signers: Sequence[Signer]) -> str:
    """Sign a note text (signed-note, "Format" and "Ed25519 signatures").

    Args:
        text: the note text: non-empty, ending with a newline, without control
            characters other than newline. It may contain empty lines.
        signers: one or more signers; one signature line each, in order.

    Returns:
        The signed note: ``text``, an empty line, then one line
        ``— <name> <base64(key id || signature)>`` per signer.

    Raises:
        NoteFormatError: the text is invalid, there are no signers or more than
            :data:`MAX_SIGNATURES`, or the note would exceed :data:`MAX_NOTE_SIZE`.

    """
    text = _check_text(text, "note text")
    if not signers:
        raise NoteFormatError("note text: a signed note needs at least one signer")
    if len(signers) > MAX_SIGNATURES:
        raise NoteFormatError(
            f"note text: {len(signers)} signers exceed the limit of {MAX_SIGNATURES}"
        )
    message = text.encode("utf-8")
    lines = [NoteSignature(s.name, s.key_id, s.sign(message)).line + "\n" for s in signers]
    signed = text + "\n" + "".join(lines)
    size = len(signed.encode("utf-8"))
    if size > MAX_NOTE_SIZE:
        raise NoteFormatError(
            f"note text: signed note of {size} bytes would exceed the limit of {MAX_NOTE_SIZE}"
        )
    return signed
