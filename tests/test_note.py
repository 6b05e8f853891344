"""Tests of C2SP signed-note, tlog-checkpoint and tlog-proof (vault.note, .checkpoint, .tlogproof).

Known answers come from two third-party sources:

* the example of Go's golang.org/x/mod/sumdb/note package documentation (the
  PeterNeumann key pair and signed note), which our Ed25519 signing reproduces
  byte for byte (Ed25519 is deterministic);
* the tessera test log in ``../shared/conformance/tessera-log`` (checkpoints,
  entry bundles and hash tiles written by transparency-dev/tessera).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from echo_archive.errors import NoteError, NoteFormatError, SignatureError
from echo_archive.vault.checkpoint import (
    MAX_TREE_SIZE,
    Checkpoint,
    open_checkpoint,
    sign_checkpoint,
)
from echo_archive.vault.merkle import leaf_hash, root_hash
from echo_archive.vault.note import (
    MAX_NOTE_SIZE,
    MAX_SIGNATURES,
    Note,
    NoteSignature,
    Signer,
    Verifier,
    format_signer_key,
    generate_signer,
    key_id,
    parse_note,
    parse_signer_key,
    parse_vkey,
    sign_note,
    verify_note,
)
from echo_archive.vault.tlogproof import (
    MAX_PROOF_HASHES,
    TlogProof,
    format_tlog_proof,
    parse_tlog_proof,
)

# --------------------------------------------------------------------------- vectors

# golang.org/x/mod/sumdb/note package documentation (a published test key).
PN_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PN_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PN_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PN_SIG_LINE = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2p"
    "ZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG_LINE = (
    "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5"
    "ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)
PN_NOTE = PN_TEXT + "\n" + PN_SIG_LINE

# c2sp.org/signed-note example (only parsed: its key is not published).
C2SP_NOTE = (
    "Ognuno sta solo sul cuor della terra\n"
    "trafitto da un raggio di sole:\n"
    "\n"
    "ed è subito sera.\n"
    "\n"
    "— quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+Eh"
    "fLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n"
)

# ../shared/conformance/README.md
TESSERA_VKEY = "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx"
TESSERA_ORIGIN = "example.com/log/testdata"
TESSERA_WORDS = (
    "one two three four five six seven eit nain ten ileven twelf threeten fourten fivten"
)
TESSERA_ENTRIES = [word.encode("ascii") for word in TESSERA_WORDS.split(" ")]
CONFORMANCE = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "tessera-log"

# Deterministic local keys (module level, so hypothesis tests need no fixtures).
SEED_A = bytes(range(32))
SEED_B = bytes(range(32, 64))


def _signer(name: str, seed: bytes) -> Signer:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    return Signer(name, key_id(name, b"\x01" + public), seed)


LOG = _signer("example.com/log", SEED_A)
OTHER = _signer("example.com/other", SEED_B)
IMPOSTOR = _signer("example.com/log", SEED_B)  # same name as LOG, different key


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def raw_key_id(name: str, raw: bytes) -> str:
    """Key id hex computed without name validation (to isolate other faults)."""
    return hashlib.sha256(name.encode("utf-8", "surrogatepass") + b"\n" + raw).digest()[:4].hex()


def noncanonical(text: str) -> str:
    """Set an unused padding bit of a padded base64 string: same bytes, other text."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    stripped = text.rstrip("=")
    assert stripped != text, "needs a padded encoding"
    last = alphabet.index(stripped[-1])
    changed = stripped[:-1] + alphabet[last + 1] + text[len(stripped) :]
    assert base64.b64decode(changed) == base64.b64decode(text)
    return changed


def flip_b64_byte(text: str, index: int) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[index] ^= 0x01
    return b64(bytes(raw))


def sig_line(name: str, raw: bytes) -> str:
    return f"— {name} {b64(raw)}\n"


# --------------------------------------------------------------------------- key ids and keys


def test_key_id_known_answers() -> None:
    tessera_raw = base64.b64decode(TESSERA_VKEY.split("+", 2)[2])
    assert key_id(TESSERA_ORIGIN, tessera_raw) == bytes.fromhex("33d7b496")
    pn_raw = base64.b64decode(PN_VKEY.split("+", 2)[2])
    assert key_id("PeterNeumann", pn_raw) == bytes.fromhex("c74f20a3")
    # The spec's definition, spelled out.
    expected = hashlib.sha256(b"example.com/log\n\x01" + LOG.public_key).digest()[:4]
    assert key_id("example.com/log", b"\x01" + LOG.public_key) == expected
    assert LOG.key_id == expected


@pytest.mark.parametrize("name", ["", "a b", "a+b", "a\u00a0b", "a\x01b"])
def test_key_id_rejects_invalid_names(name: str) -> None:
    with pytest.raises(NoteFormatError, match="key name"):
        key_id(name, b"\x01" + bytes(32))


def test_key_id_rejects_empty_key() -> None:
    with pytest.raises(NoteFormatError, match="missing"):
        key_id("a", b"")


@pytest.mark.parametrize("vkey", [PN_VKEY, TESSERA_VKEY, LOG.verifier.vkey])
def test_parse_vkey_round_trip(vkey: str) -> None:
    verifier = parse_vkey(vkey)
    assert verifier.vkey == vkey
    assert parse_vkey(verifier.vkey) == verifier
    assert len(verifier.public_key) == 32
    assert verifier.key_id.hex() == vkey.split("+")[1]


def test_parse_vkey_accepts_uppercase_key_id() -> None:
    name, kid, key = PN_VKEY.split("+", 2)
    assert parse_vkey(f"{name}+{kid.upper()}+{key}") == parse_vkey(PN_VKEY)


def test_verifier_from_public_key_and_validation() -> None:
    verifier = Verifier.from_public_key("example.com/log", LOG.public_key)
    assert verifier == LOG.verifier
    with pytest.raises(NoteFormatError, match="key id does not match"):
        Verifier("example.com/log", bytes(4), LOG.public_key)
    with pytest.raises(NoteFormatError, match="32 bytes"):
        Verifier("example.com/log", LOG.key_id, LOG.public_key[:31])
    with pytest.raises(NoteFormatError, match="key name is empty"):
        Verifier("", LOG.key_id, LOG.public_key)


def test_verifier_verify() -> None:
    sig = LOG.sign(b"message")
    assert len(sig) == 64
    assert LOG.verifier.verify(b"message", sig)
    assert not LOG.verifier.verify(b"messagf", sig)
    assert not LOG.verifier.verify(b"message", sig[:-1])
    assert not LOG.verifier.verify(b"message", sig + b"\x00")
    assert not IMPOSTOR.verifier.verify(b"message", sig)
    assert not LOG.verifier.verify(b"message", bytes(64))


_PUB = b"\x01" + LOG.public_key
_NAME = "example.com/log"
_KID = raw_key_id(_NAME, _PUB)


def _vk(name: str = _NAME, raw: bytes = _PUB, kid: str | None = None) -> str:
    return f"{name}+{raw_key_id(name, raw) if kid is None else kid}+{b64(raw)}"


BAD_VKEYS: list[tuple[str, object, str]] = [
    ("empty", "", "key name is empty|no '\\+'"),
    ("no plus", _NAME, "no '\\+'"),
    ("one plus", f"{_NAME}+{_KID}", "one '\\+'"),
    ("empty name", _vk(name=""), "key name is empty"),
    ("space in name", _vk(name="example.com/a b"), "space character \\(U\\+0020\\)"),
    ("tab in name", _vk(name="a\tb"), "space character \\(U\\+0009\\)"),
    ("nbsp in name", _vk(name="a\u00a0b"), "space character \\(U\\+00A0\\)"),
    ("ideographic space", _vk(name="a\u3000b"), "space character \\(U\\+3000\\)"),
    ("line separator", _vk(name="a\u2028b"), "space character \\(U\\+2028\\)"),
    ("en quad", _vk(name="a\u2000b"), "space character \\(U\\+2000\\)"),
    ("control in name", _vk(name="a\x01b"), "control character"),
    ("surrogate in name", _vk(name="a\ud800b"), "surrogate"),
    ("plus in name", _vk(name="a+b"), "8 hexadecimal digits"),
    ("key id too short", _vk(kid=_KID[:7]), "8 hexadecimal digits"),
    ("key id too long", _vk(kid=_KID + "0"), "8 hexadecimal digits"),
    ("key id not hex", _vk(kid="zzzzzzzz"), "8 hexadecimal digits"),
    ("key id 0x", _vk(kid="0x" + _KID[:6]), "8 hexadecimal digits"),
    ("key id spaced", _vk(kid=_KID[:4] + " " + _KID[5:]), "8 hexadecimal digits"),
    ("key id mismatch", _vk(kid=_KID[:7] + ("0" if _KID[7] != "0" else "1")), "does not match"),
    ("key id of another name", _vk(kid=raw_key_id("example.com/log2", _PUB)), "does not match"),
    ("empty key", f"{_NAME}+{_KID}+", "key is empty"),
    ("key bad char", _vk()[:-1] + "!", "base64"),
    ("key extra padding", _vk() + "=", "base64"),
    ("key url-safe", TESSERA_VKEY.replace("+oO5", "-oO5"), "base64"),
    ("key with space", _vk()[:-4] + " " + _vk()[-3:], "base64"),
    ("algorithm 0x02", _vk(raw=b"\x02" + LOG.public_key), "signature type 0x02"),
    ("algorithm 0x04", _vk(raw=b"\x04" + LOG.public_key), "signature type 0x04"),
    ("key 31 bytes", _vk(raw=_PUB[:-1]), "must be 32 bytes, not 31"),
    ("key 33 bytes", _vk(raw=_PUB + b"\x00"), "must be 32 bytes, not 33"),
    ("only algorithm", _vk(raw=b"\x01"), "must be 32 bytes, not 0"),
    ("trailing newline", _vk() + "\n", "whitespace"),
    ("leading space", " " + _vk(), "whitespace"),
    ("bytes", _vk().encode(), "expected str"),
    ("private key", PN_SKEY, "8 hexadecimal digits"),
]


@pytest.mark.parametrize(
    ("text", "pattern"), [(t, p) for _, t, p in BAD_VKEYS], ids=[c[0] for c in BAD_VKEYS]
)
def test_parse_vkey_rejects(text: object, pattern: str) -> None:
    with pytest.raises(NoteFormatError, match=pattern):
        parse_vkey(text)  # type: ignore[arg-type]


def test_signer_key_known_answer() -> None:
    signer = parse_signer_key(PN_SKEY)
    assert signer.name == "PeterNeumann"
    assert signer.key_id == bytes.fromhex("c74f20a3")
    assert signer.verifier.vkey == PN_VKEY
    assert format_signer_key(signer) == PN_SKEY


def test_generate_signer_round_trip() -> None:
    signer = generate_signer("example.com/fresh")
    assert signer.name == "example.com/fresh"
    text = format_signer_key(signer)
    assert text.startswith("PRIVATE+KEY+example.com/fresh+" + signer.key_id.hex() + "+")
    again = parse_signer_key(text)
    assert again == signer
    assert parse_vkey(signer.verifier.vkey) == signer.verifier
    assert generate_signer("example.com/fresh").seed != signer.seed
    with pytest.raises(NoteFormatError, match="key name"):
        generate_signer("bad name")


def test_signer_repr_hides_seed() -> None:
    signer = parse_signer_key(PN_SKEY)
    secret_b64 = PN_SKEY.rsplit("+", 1)[1]
    for text in (repr(signer), str(signer), f"{signer!r}", f"{signer}"):
        assert signer.seed.hex() not in text
        assert repr(signer.seed) not in text
        assert b64(signer.seed) not in text
        assert secret_b64 not in text
        assert "hidden" in text
        assert "PeterNeumann" in text
    fields = {f.name: f for f in dataclasses.fields(Signer)}
    assert fields["seed"].repr is False


def test_signer_validation() -> None:
    with pytest.raises(NoteFormatError, match="key id does not match"):
        Signer("example.com/log", bytes(4), SEED_A)
    with pytest.raises(NoteFormatError, match="32 bytes"):
        Signer("example.com/log", LOG.key_id, SEED_A[:31])
    with pytest.raises(NoteFormatError, match="key name"):
        Signer("a b", LOG.key_id, SEED_A)


_SEED_RAW = b"\x01" + SEED_A
_GOOD_SKEY = format_signer_key(LOG)


def _sk(name: str = _NAME, raw: bytes = _SEED_RAW, kid: str | None = None) -> str:
    if kid is None:
        kid = raw_key_id(name, b"\x01" + LOG.public_key)
    return f"PRIVATE+KEY+{name}+{kid}+{b64(raw)}"


BAD_SKEYS: list[tuple[str, object, str]] = [
    ("empty", "", "PRIVATE\\+KEY"),
    ("just prefix", "PRIVATE+KEY", "PRIVATE\\+KEY"),
    ("lowercase prefix", _GOOD_SKEY.replace("PRIVATE+KEY", "private+key"), "PRIVATE\\+KEY"),
    ("KEYS prefix", _GOOD_SKEY.replace("PRIVATE+KEY", "PRIVATE+KEYS"), "PRIVATE\\+KEY"),
    ("public key", LOG.verifier.vkey, "PRIVATE\\+KEY"),
    ("no name separator", "PRIVATE+KEY+" + b64(_SEED_RAW), "expected PRIVATE"),
    ("empty name", _sk(name=""), "key name is invalid"),
    ("space in name", _sk(name="a b"), "key name is invalid"),
    ("nbsp in name", _sk(name="a\u00a0b"), "key name is invalid"),
    ("no key separator", f"PRIVATE+KEY+{_NAME}+{_KID}", "expected PRIVATE"),
    ("key id short", _sk(kid=_KID[:7]), "8 hexadecimal digits"),
    ("key id not hex", _sk(kid="ghijklmn"), "8 hexadecimal digits"),
    ("key id mismatch", _sk(kid="00000000"), "does not match"),
    ("key id of the seed", _sk(kid=raw_key_id(_NAME, _SEED_RAW)), "does not match"),
    ("empty key", f"PRIVATE+KEY+{_NAME}+{_KID}+", "key is empty"),
    ("bad base64", _GOOD_SKEY[:-2] + "!!", "base64"),
    ("extra padding", _GOOD_SKEY + "=", "base64"),
    ("algorithm 0x02", _sk(raw=b"\x02" + SEED_A), "signature type 0x02"),
    ("seed 31 bytes", _sk(raw=_SEED_RAW[:-1]), "must be 32 bytes, not 31"),
    ("seed 33 bytes", _sk(raw=_SEED_RAW + b"\x00"), "must be 32 bytes, not 33"),
    ("trailing newline", _GOOD_SKEY + "\n", "whitespace"),
    ("leading space", " " + _GOOD_SKEY, "whitespace"),
    ("bytes", _GOOD_SKEY.encode(), "expected str"),
]


@pytest.mark.parametrize(
    ("text", "pattern"), [(t, p) for _, t, p in BAD_SKEYS], ids=[c[0] for c in BAD_SKEYS]
)
def test_parse_signer_key_rejects_without_leaking(text: object, pattern: str) -> None:
    with pytest.raises(NoteFormatError, match=pattern) as info:
        parse_signer_key(text)  # type: ignore[arg-type]
    message = str(info.value)
    secrets = [b64(_SEED_RAW), b64(SEED_A), SEED_A.hex()]
    if isinstance(text, str):
        secrets.append(text.rsplit("+", 1)[-1])
    for secret in secrets:
        for start in range(max(1, len(secret) - 7)):
            window = secret[start : start + 8]
            if len(window) == 8:
                assert window not in message, f"{window!r} leaked into {message!r}"


# --------------------------------------------------------------------------- notes


def test_sign_note_go_known_answer() -> None:
    signer = parse_signer_key(PN_SKEY)
    assert sign_note(PN_TEXT, [signer]) == PN_NOTE


def test_verify_note_go_known_answer() -> None:
    verifier = parse_vkey(PN_VKEY)
    for data in (PN_NOTE, PN_NOTE.encode("utf-8")):
        note = verify_note(data, [verifier])
        assert note.text == PN_TEXT
        assert note.signatures == (
            NoteSignature("PeterNeumann", bytes.fromhex("c74f20a3"), note.signatures[0].signature),
        )
        assert note.signatures[0].line + "\n" == PN_SIG_LINE


def test_verify_note_ignores_unknown_cosigner() -> None:
    doubly = PN_NOTE + ENOCH_SIG_LINE
    parsed = parse_note(doubly)
    assert [s.name for s in parsed.signatures] == ["PeterNeumann", "EnochRoot"]
    note = verify_note(doubly, [parse_vkey(PN_VKEY)])
    assert [s.name for s in note.signatures] == ["PeterNeumann"]
    # The unknown signature may come first, too.
    note = verify_note(PN_TEXT + "\n" + ENOCH_SIG_LINE + PN_SIG_LINE, [parse_vkey(PN_VKEY)])
    assert [s.name for s in note.signatures] == ["PeterNeumann"]


def test_parse_c2sp_example() -> None:
    note = parse_note(C2SP_NOTE)
    assert note.text == (
        "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\n"
        "ed è subito sera.\n"
    )
    assert len(note.signatures) == 1
    assert note.signatures[0].name == "quasimodo.example/salvatore"
    assert len(note.signatures[0].signature) == 64


@pytest.mark.parametrize(
    "text",
    ["a\n", "\n", "a\n\nb\n", "a\n\n\n", "è ✓ 𝄞\n", "— x y\n", "tab\u00a0and spaces  \n"],
)
def test_sign_verify_round_trip(text: str) -> None:
    signed = sign_note(text, [LOG, OTHER])
    note = verify_note(signed, [LOG.verifier])
    assert note.text == text
    assert [s.name for s in note.signatures] == [LOG.name]
    both = verify_note(signed, [OTHER.verifier, LOG.verifier])
    assert [s.name for s in both.signatures] == [LOG.name, OTHER.name]
    assert parse_note(signed).text == text


def test_note_dataclasses_validate() -> None:
    with pytest.raises(NoteFormatError):
        Note("no newline", ())
    with pytest.raises(NoteFormatError):
        Note("a\x00\n", ())
    with pytest.raises(NoteFormatError, match="4 bytes"):
        NoteSignature("a", b"123", b"s")
    with pytest.raises(NoteFormatError, match="empty"):
        NoteSignature("a", b"1234", b"")
    with pytest.raises(NoteFormatError, match="key name"):
        NoteSignature("a+b", b"1234", b"s")


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("", "end with a newline"),
        ("no final newline", "end with a newline"),
        ("crlf\r\n", "U\\+000D"),
        ("nul\x00\n", "U\\+0000"),
        ("tab\tinside\n", "line 1, column 4: control character U\\+0009"),
        ("ok\nescape \x1b\n", "line 2"),
        ("lone \ud800 surrogate\n", "surrogate"),
        (b"bytes\n", "expected str"),
    ],
)
def test_sign_note_rejects_bad_text(text: object, pattern: str) -> None:
    with pytest.raises(NoteFormatError, match=pattern):
        sign_note(text, [LOG])  # type: ignore[arg-type]


def test_sign_note_rejects_signer_counts() -> None:
    with pytest.raises(NoteFormatError, match="at least one signer"):
        sign_note("a\n", [])
    with pytest.raises(NoteFormatError, match="limit"):
        sign_note("a\n", [LOG] * (MAX_SIGNATURES + 1))
    with pytest.raises(NoteFormatError, match="exceed"):
        sign_note("a" * MAX_NOTE_SIZE + "\n", [LOG])


_PN_B64 = PN_SIG_LINE.split()[2]
_SHORT = b64(b"\xc7\x4f\x20\xa3")
BAD_NOTES: list[tuple[str, object, str]] = [
    ("empty", "", "is empty"),
    ("empty bytes", b"", "is empty"),
    ("int", 42, "expected str or bytes"),
    ("invalid utf-8", PN_NOTE.encode() + b"\xff", "UTF-8 at byte offset"),
    ("overlong utf-8", b"\xc0\xaf\n\n" + PN_SIG_LINE.encode(), "UTF-8 at byte offset 0"),
    ("utf-8 surrogate", b"\xed\xa0\x80\n\n" + PN_SIG_LINE.encode(), "UTF-8"),
    ("lone surrogate", "\udc00\n\n" + PN_SIG_LINE, "line 1: not valid Unicode"),
    ("crlf", PN_NOTE.replace("\n", "\r\n"), "line 1, column 57: control character U\\+000D"),
    ("tab in text", "a\tb\n\n" + PN_SIG_LINE, "line 1, column 2: control character U\\+0009"),
    ("nul in text", PN_TEXT + "\x00\n\n" + PN_SIG_LINE, "line 3, column 1"),
    ("escape in sig", PN_TEXT + "\n" + PN_SIG_LINE[:-2] + "\x1b\n", "line 4"),
    ("form feed", "a\x0c\n\n" + PN_SIG_LINE, "U\\+000C"),
    ("no blank line", PN_TEXT + PN_SIG_LINE, "no empty line"),
    ("only text", PN_TEXT, "no empty line"),
    ("ends with blank line", PN_NOTE + "\n", "line 5: note ends with an empty line"),
    ("no signatures", PN_TEXT + "\n", "note ends with an empty line"),
    ("no final newline", PN_NOTE[:-1], "line 4: last line does not end with a newline"),
    ("junk after signatures", PN_NOTE + "junk\n", "line 5: signature line must start"),
    ("hyphens", PN_TEXT + "\n" + PN_SIG_LINE.replace("—", "--"), "line 4: .*em dash"),
    ("en dash", PN_TEXT + "\n" + PN_SIG_LINE.replace("—", "–"), "em dash"),
    ("no space after dash", PN_TEXT + "\n" + PN_SIG_LINE.replace("— ", "—"), "em dash"),
    ("leading space", PN_TEXT + "\n " + PN_SIG_LINE, "em dash"),
    ("no signature", PN_TEXT + "\n— PeterNeumann\n", "no space between"),
    ("empty name", PN_TEXT + "\n—  " + _PN_B64 + "\n", "key name is empty"),
    ("plus in name", PN_TEXT + "\n— Peter+Neumann " + _PN_B64 + "\n", "contains '\\+'"),
    ("nbsp in name", PN_TEXT + "\n— Peter\u00a0Neumann " + _PN_B64 + "\n", "U\\+00A0"),
    ("two spaces", PN_TEXT + "\n— PeterNeumann  " + _PN_B64 + "\n", "line 4: signature is not"),
    ("trailing space", PN_TEXT + "\n— PeterNeumann " + _PN_B64 + " \n", "canonical"),
    ("empty signature", PN_TEXT + "\n— PeterNeumann \n", "0 bytes"),
    ("bad base64", PN_TEXT + "\n— PeterNeumann " + _PN_B64[:-2] + "!=\n", "canonical"),
    ("unpadded", PN_TEXT + "\n— PeterNeumann " + _PN_B64.rstrip("=") + "\n", "canonical"),
    ("noncanonical", PN_TEXT + "\n— PeterNeumann " + noncanonical(_PN_B64) + "\n", "canonical"),
    ("key id only", PN_TEXT + "\n— PeterNeumann " + _SHORT + "\n", "4 bytes; needs"),
    (
        "too many signatures",
        PN_TEXT + "\n" + PN_SIG_LINE * (MAX_SIGNATURES + 1),
        f"{MAX_SIGNATURES + 1} signature lines exceed",
    ),
    ("too large", "a" * MAX_NOTE_SIZE + "\n\n" + PN_SIG_LINE, "exceeds the limit"),
    ("too large in utf-8", "é" * (MAX_NOTE_SIZE // 2) + "\n\n" + PN_SIG_LINE, "exceeds the limit"),
    ("too large bytes", b"a" * MAX_NOTE_SIZE + b"\n\n" + PN_SIG_LINE.encode(), "exceeds the limit"),
]


@pytest.mark.parametrize(
    ("data", "pattern"), [(d, p) for _, d, p in BAD_NOTES], ids=[c[0] for c in BAD_NOTES]
)
def test_parse_note_rejects(data: object, pattern: str) -> None:
    with pytest.raises(NoteFormatError, match=pattern):
        parse_note(data)  # type: ignore[arg-type]
    # verify_note parses first: the same text is a format error there too.
    with pytest.raises(NoteFormatError, match=pattern):
        verify_note(data, [parse_vkey(PN_VKEY)])  # type: ignore[arg-type]


def test_parse_note_accepts_many_signatures_up_to_the_limit() -> None:
    for count in (16, MAX_SIGNATURES):
        note = parse_note(PN_TEXT + "\n" + PN_SIG_LINE * count)
        assert len(note.signatures) == count
        # Duplicates by a known key are each verified and reported once.
        assert len(verify_note(PN_TEXT + "\n" + PN_SIG_LINE * count, [parse_vkey(PN_VKEY)])
                   .signatures) == 1  # fmt: skip


def test_verify_note_other_key_only() -> None:
    signed = sign_note("hello\n", [OTHER])
    with pytest.raises(SignatureError) as info:
        verify_note(signed, [LOG.verifier])
    message = str(info.value)
    assert f"example.com/log+{LOG.key_id.hex()}" in message  # expected
    assert f"example.com/other+{OTHER.key_id.hex()}" in message  # found


def test_verify_note_same_name_other_key_is_ignored() -> None:
    # Same name, different key (so different key id): an unknown key, ignored.
    signed = sign_note("hello\n", [IMPOSTOR])
    with pytest.raises(SignatureError, match="no signature by a known key"):
        verify_note(signed, [LOG.verifier])
    # ...and ignored beside a good signature.
    note = verify_note(sign_note("hello\n", [IMPOSTOR, LOG]), [LOG.verifier])
    assert [s.key_id for s in note.signatures] == [LOG.key_id]


def test_verify_note_known_name_and_id_with_bad_signature_rejects_note() -> None:
    # A line claiming LOG's name and key id, but signed by another key.
    forged = sig_line(LOG.name, LOG.key_id + IMPOSTOR.sign(b"hello\n"))
    with pytest.raises(SignatureError, match=r"line 3: signature by known key .* does not verify"):
        verify_note("hello\n\n" + forged, [LOG.verifier])
    # The spec says a failing known signature SHOULD reject the note even when
    # another signature by the same key verifies.
    good = sign_note("hello\n", [LOG])
    with pytest.raises(SignatureError, match="line 4"):
        verify_note(good + forged, [LOG.verifier])


def test_verify_note_unknown_key_sharing_the_id_is_ignored() -> None:
    # Same key id as LOG but another name: unknown, so not verified (garbage ok).
    stranger = sig_line("someone.else", LOG.key_id + bytes(64))
    note = verify_note(sign_note("hello\n", [LOG]) + stranger, [LOG.verifier])
    assert [s.name for s in note.signatures] == [LOG.name]


def test_verify_note_needs_verifiers() -> None:
    with pytest.raises(SignatureError, match="no verifier keys"):
        verify_note(sign_note("hello\n", [LOG]), [])


def test_verify_note_rejects_ambiguous_verifiers() -> None:
    # Only reachable by a forged key id collision; simulate it.
    twin = Verifier.from_public_key(LOG.name, LOG.public_key)
    object.__setattr__(twin, "public_key", IMPOSTOR.public_key)
    with pytest.raises(SignatureError, match="ambiguous"):
        verify_note(sign_note("hello\n", [LOG]), [LOG.verifier, twin])
    # The same key listed twice is fine.
    verify_note(sign_note("hello\n", [LOG]), [LOG.verifier, LOG.verifier])


@pytest.mark.parametrize("position", [0, 3, 4, 5, 20, 40, 66, 67])
def test_verify_note_flipped_signature_byte(position: int) -> None:
    signed = sign_note("hello\nworld\n", [LOG])
    head, encoded = signed.rsplit(" ", 1)
    tampered = head + " " + flip_b64_byte(encoded.rstrip("\n"), position) + "\n"
    with pytest.raises(SignatureError):
        verify_note(tampered, [LOG.verifier])


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t.replace("hello", "hellp"),
        lambda t: t.replace("hello\n", "hello \n"),
        lambda t: "x" + t,
        lambda t: t.replace("world\n", "world\n\n"),
    ],
)
def test_verify_note_tampered_text(tamper: Callable[[str], str]) -> None:
    signed = sign_note("hello\nworld\n", [LOG])
    with pytest.raises(SignatureError):
        verify_note(tamper(signed), [LOG.verifier])


# --------------------------------------------------------------------------- checkpoints

ROOT = hashlib.sha256(b"root").digest()


@pytest.mark.parametrize("extensions", [(), ("ext one",), ("a", "b c", "— d")])
def test_checkpoint_body_round_trip(extensions: tuple[str, ...]) -> None:
    cp = Checkpoint("example.com/log", 1234, ROOT, extensions)
    body = cp.body()
    assert body.startswith(f"example.com/log\n1234\n{b64(ROOT)}\n")
    assert body.endswith("\n")
    assert body.count("\n") == 3 + len(extensions)
    assert Checkpoint.parse_body(body) == cp


def test_checkpoint_tessera_style_body() -> None:
    body = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    cp = Checkpoint.parse_body(body)
    assert (cp.origin, cp.size, cp.extensions) == ("example.com/behind-the-sofa", 20852163, ())
    assert cp.body() == body


def test_checkpoint_extremes() -> None:
    for size in (0, 1, MAX_TREE_SIZE):
        cp = Checkpoint("o", size, ROOT)
        assert Checkpoint.parse_body(cp.body()).size == size
    # Origins need not be URLs (clients must not assume a format).
    assert Checkpoint.parse_body(f"a log with spaces+plus\n0\n{b64(ROOT)}\n").origin == (
        "a log with spaces+plus"
    )


_R = b64(ROOT)
BAD_BODIES: list[tuple[str, object, str]] = [
    ("not str", b"o\n1\n" + _R.encode() + b"\n", "expected str"),
    ("empty", "", "end with a newline"),
    ("no final newline", f"o\n1\n{_R}", "end with a newline"),
    ("one line", "o\n", "1 line\\(s\\); needs at least 3"),
    ("two lines", "o\n1\n", "2 line\\(s\\)"),
    ("empty origin", f"\n1\n{_R}\n", "line 1: origin is empty"),
    ("empty size", f"o\n\n{_R}\n", "line 2: tree size ''"),
    ("leading zero", f"o\n01\n{_R}\n", "line 2: tree size '01'"),
    ("double zero", f"o\n00\n{_R}\n", "line 2"),
    ("negative", f"o\n-1\n{_R}\n", "line 2"),
    ("plus sign", f"o\n+1\n{_R}\n", "line 2"),
    ("leading space", f"o\n 1\n{_R}\n", "line 2"),
    ("trailing space", f"o\n1 \n{_R}\n", "line 2"),
    ("decimal point", f"o\n1.0\n{_R}\n", "line 2"),
    ("hex", f"o\n0x10\n{_R}\n", "line 2"),
    ("exponent", f"o\n1e3\n{_R}\n", "line 2"),
    ("underscore", f"o\n1_000\n{_R}\n", "line 2"),
    ("arabic-indic digit", f"o\n\u0661\n{_R}\n", "line 2"),
    ("fullwidth digit", f"o\n\uff11\n{_R}\n", "line 2"),
    ("above uint64", f"o\n{MAX_TREE_SIZE + 1}\n{_R}\n", "line 2: tree size exceeds a uint64"),
    ("empty root", "o\n1\n\n", "line 3: root hash is 0 bytes"),
    ("root bad char", f"o\n1\n{_R[:-2]}!=\n", "line 3: root hash is not canonical"),
    ("root unpadded", f"o\n1\n{_R.rstrip('=')}\n", "line 3: root hash is not canonical"),
    ("root noncanonical", f"o\n1\n{noncanonical(_R)}\n", "line 3: root hash is not canonical"),
    ("root url-safe", "o\n1\n" + b64(b"\xfb" * 32).replace("+", "-") + "\n", "line 3"),
    ("root trailing space", f"o\n1\n{_R} \n", "line 3"),
    ("root 31 bytes", f"o\n1\n{b64(ROOT[:31])}\n", "line 3: root hash is 31 bytes, not 32"),
    ("root 33 bytes", f"o\n1\n{b64(ROOT + b'x')}\n", "line 3: root hash is 33 bytes"),
    ("root hex", f"o\n1\n{ROOT.hex()}\n", "line 3: root hash is 48 bytes"),
    ("empty extension", f"o\n1\n{_R}\n\n", "line 4: extension line is empty"),
    ("empty later extension", f"o\n1\n{_R}\ne\n\nf\n", "line 5: extension line is empty"),
    ("crlf", f"o\r\n1\r\n{_R}\r\n", "line 1, column 2: control character"),
    ("control in origin", f"o\x07\n1\n{_R}\n", "line 1.*U\\+0007"),
    ("control in extension", f"o\n1\n{_R}\nx\ty\n", "line 4.*U\\+0009"),
    ("surrogate", f"o\ud800\n1\n{_R}\n", "surrogate"),
]


@pytest.mark.parametrize(
    ("body", "pattern"), [(b, p) for _, b, p in BAD_BODIES], ids=[c[0] for c in BAD_BODIES]
)
def test_checkpoint_parse_body_rejects(body: object, pattern: str) -> None:
    with pytest.raises(NoteFormatError, match=pattern):
        Checkpoint.parse_body(body)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"origin": ""}, "origin is empty"),
        ({"origin": "a\nb"}, "origin contains a newline"),
        ({"origin": "a\x00"}, "origin contains a control character"),
        ({"size": -1}, "not a uint64"),
        ({"size": MAX_TREE_SIZE + 1}, "not a uint64"),
        ({"size": True}, "must be an int"),
        ({"size": 1.0}, "must be an int"),
        ({"root_hash": ROOT[:31]}, "32 bytes"),
        ({"root_hash": b64(ROOT)}, "32 bytes"),
        ({"extensions": ["x"]}, "tuple"),
        ({"extensions": ("",)}, "extension line 1 is empty"),
        ({"extensions": ("ok", "a\nb")}, "extension line 2 contains a newline"),
    ],
)
def test_checkpoint_constructor_rejects(kwargs: dict[str, object], pattern: str) -> None:
    fields: dict[str, object] = {"origin": "o", "size": 1, "root_hash": ROOT}
    fields.update(kwargs)
    with pytest.raises(NoteFormatError, match=pattern):
        Checkpoint(**fields)  # type: ignore[arg-type]


def test_sign_and_open_checkpoint() -> None:
    cp = Checkpoint(LOG.name, 42, ROOT)
    signed = sign_checkpoint(cp, LOG)
    assert signed.startswith(cp.body() + "\n— example.com/log ")
    assert open_checkpoint(signed, LOG.verifier) == cp
    assert open_checkpoint(signed.encode(), LOG.verifier) == cp
    assert open_checkpoint(signed, LOG.verifier, origin=LOG.name) == cp
    with_ext = Checkpoint(LOG.name, 42, ROOT, ("ext",))
    assert open_checkpoint(sign_checkpoint(with_ext, LOG), LOG.verifier) == with_ext


def test_open_checkpoint_with_witness_cosignature() -> None:
    signed = sign_note(Checkpoint(LOG.name, 7, ROOT).body(), [LOG, OTHER])
    assert open_checkpoint(signed, LOG.verifier).size == 7
    # Witness-first order makes no difference.
    signed = sign_note(Checkpoint(LOG.name, 7, ROOT).body(), [OTHER, LOG])
    assert open_checkpoint(signed, LOG.verifier).size == 7


def test_open_checkpoint_by_another_key() -> None:
    cp = Checkpoint(LOG.name, 42, ROOT)
    for signer in (OTHER, IMPOSTOR):
        with pytest.raises(SignatureError, match="no signature by a known key"):
            open_checkpoint(sign_checkpoint(cp, signer), LOG.verifier)


def test_open_checkpoint_origin_mismatch() -> None:
    cp = Checkpoint("example.com/some-other-log", 42, ROOT)
    signed = sign_checkpoint(cp, LOG)
    with pytest.raises(SignatureError, match=r"origin 'example\.com/some-other-log' is not"):
        open_checkpoint(signed, LOG.verifier)
    assert open_checkpoint(signed, LOG.verifier, origin="example.com/some-other-log") == cp
    with pytest.raises(SignatureError, match="not the expected origin 'x'"):
        open_checkpoint(sign_checkpoint(Checkpoint(LOG.name, 1, ROOT), LOG), LOG.verifier, "x")


def test_open_checkpoint_signed_but_malformed_body() -> None:
    for body in (f"{LOG.name}\n01\n{_R}\n", f"{LOG.name}\n1\n", f"{LOG.name}\n1\n{_R}\n\n"):
        signed = sign_note(body, [LOG])
        with pytest.raises(NoteFormatError):
            open_checkpoint(signed, LOG.verifier)


@pytest.mark.parametrize("line", [0, 1, 2])
def test_open_checkpoint_tampered_line(line: int) -> None:
    signed = sign_checkpoint(Checkpoint(LOG.name, 42, ROOT), LOG)
    lines = signed.split("\n")
    lines[line] = [LOG.name + "x", "43", b64(hashlib.sha256(b"other").digest())][line]
    with pytest.raises(SignatureError):
        open_checkpoint("\n".join(lines), LOG.verifier)


def test_open_checkpoint_appended_extension_breaks_signature() -> None:
    signed = sign_checkpoint(Checkpoint(LOG.name, 42, ROOT), LOG)
    body, sigs = signed.split("\n\n")
    with pytest.raises(SignatureError):
        open_checkpoint(body + "\nextra line\n\n" + sigs, LOG.verifier)


@pytest.mark.parametrize("position", [0, 2, 3, 4, 10, 35, 36, 67])
def test_open_checkpoint_flipped_signature_byte(position: int) -> None:
    signed = sign_checkpoint(Checkpoint(LOG.name, 42, ROOT), LOG)
    head, encoded = signed.rsplit(" ", 1)
    tampered = head + " " + flip_b64_byte(encoded.rstrip("\n"), position) + "\n"
    with pytest.raises(SignatureError):
        open_checkpoint(tampered, LOG.verifier)


# --------------------------------------------------------------------------- tlog-proof

HASHES = tuple(hashlib.sha256(bytes([i])).digest() for i in range(5))
CP_NOTE = sign_checkpoint(Checkpoint(LOG.name, 100, ROOT), LOG)


@pytest.mark.parametrize("extra", [None, b"x", b"age-v1.2.1-darwin-arm64.tar.gz" * 3])
@pytest.mark.parametrize("count", [0, 1, 5])
def test_tlog_proof_round_trip(extra: bytes | None, count: int) -> None:
    proof = TlogProof(index=73, proof=HASHES[:count], checkpoint=CP_NOTE, extra=extra)
    text = format_tlog_proof(proof)
    lines = text.split("\n")
    assert lines[0] == "c2sp.org/tlog-proof@v1"
    offset = 0 if extra is None else 1
    if extra is not None:
        assert lines[1] == "extra " + b64(extra)
    assert lines[1 + offset] == "index 73"
    assert lines[2 + offset : 2 + offset + count] == [b64(h) for h in HASHES[:count]]
    assert lines[2 + offset + count] == ""
    assert text.endswith("\n\n" + CP_NOTE) or count == 0
    assert parse_tlog_proof(text) == proof
    assert parse_tlog_proof(text.encode()) == proof
    assert format_tlog_proof(parse_tlog_proof(text)) == text
    assert open_checkpoint(parse_tlog_proof(text).checkpoint, LOG.verifier).size == 100


def test_tlog_proof_keeps_cosigned_checkpoint_verbatim() -> None:
    cosigned = sign_note(Checkpoint(LOG.name, 3, ROOT).body(), [LOG, OTHER])
    text = format_tlog_proof(TlogProof(0, HASHES[:2], cosigned))
    assert parse_tlog_proof(text).checkpoint == cosigned


_TP_HEAD = "c2sp.org/tlog-proof@v1\n"
_TP_H = [b64(h) for h in HASHES]


def _tp(*lines: str, checkpoint: str = CP_NOTE) -> str:
    return "".join(line + "\n" for line in lines) + "\n" + checkpoint


BAD_PROOFS: list[tuple[str, object, str]] = [
    ("empty", "", "line 1: missing"),
    ("int", 7, "expected str or bytes"),
    ("bad utf-8", _tp("c2sp.org/tlog-proof@v1", "index 1").encode() + b"\xff", "UTF-8"),
    ("header v2", _tp("c2sp.org/tlog-proof@v2", "index 1"), "line 1: expected exactly"),
    ("header case", _tp("C2SP.org/tlog-proof@v1", "index 1"), "line 1"),
    ("header space", _tp("c2sp.org/tlog-proof@v1 ", "index 1"), "line 1"),
    ("header crlf", _tp("c2sp.org/tlog-proof@v1\r", "index 1"), "line 1"),
    ("header no newline", "c2sp.org/tlog-proof@v1", "line 1: does not end with a newline"),
    ("header only", _TP_HEAD, "line 2: missing"),
    ("no index", _tp("c2sp.org/tlog-proof@v1", _TP_H[0]), "line 2: expected 'index <n>'"),
    ("index capital", _tp("c2sp.org/tlog-proof@v1", "Index 1"), "line 2: expected 'index"),
    ("index tab", _tp("c2sp.org/tlog-proof@v1", "index\t1"), "line 2: expected 'index"),
    ("index empty", _tp("c2sp.org/tlog-proof@v1", "index "), "line 2: index ''"),
    ("index leading zero", _tp("c2sp.org/tlog-proof@v1", "index 01"), "line 2: index '01'"),
    ("index negative", _tp("c2sp.org/tlog-proof@v1", "index -1"), "line 2"),
    ("index plus", _tp("c2sp.org/tlog-proof@v1", "index +1"), "line 2"),
    ("index two spaces", _tp("c2sp.org/tlog-proof@v1", "index  1"), "line 2"),
    ("index trailing space", _tp("c2sp.org/tlog-proof@v1", "index 1 "), "line 2"),
    ("index unicode digit", _tp("c2sp.org/tlog-proof@v1", "index \u0661"), "line 2"),
    ("index underscore", _tp("c2sp.org/tlog-proof@v1", "index 1_0"), "line 2"),
    (
        "index above uint64",
        _tp("c2sp.org/tlog-proof@v1", f"index {MAX_TREE_SIZE + 1}"),
        "line 2: index exceeds a uint64",
    ),
    ("extra empty", _tp("c2sp.org/tlog-proof@v1", "extra ", "index 1"), "line 2: extra data is"),
    ("extra bad", _tp("c2sp.org/tlog-proof@v1", "extra a!==", "index 1"), "line 2: extra data"),
    (
        "extra noncanonical",
        _tp("c2sp.org/tlog-proof@v1", "extra " + noncanonical(b64(b"ab")), "index 1"),
        "line 2: extra data is not canonical",
    ),
    ("extra double space", _tp(_TP_HEAD[:-1], "extra  YQ==", "index 1"), "line 2: extra"),
    ("extra no space", _tp(_TP_HEAD[:-1], "extraYQ==", "index 1"), "line 2: expected 'index"),
    ("extra twice", _tp(_TP_HEAD[:-1], "extra YQ==", "extra YQ==", "index 1"), "line 3"),
    ("extra after index", _tp(_TP_HEAD[:-1], "index 1", "extra YQ=="), "line 3: proof hash"),
    ("extra without index", _tp(_TP_HEAD[:-1], "extra YQ=="), "line 3: expected 'index"),
    ("hash 31 bytes", _tp(_TP_HEAD[:-1], "index 1", b64(bytes(31))), "line 3: .*31 bytes"),
    ("hash 33 bytes", _tp(_TP_HEAD[:-1], "index 1", _TP_H[0], b64(bytes(33))), "line 4: .*33"),
    ("hash bad", _tp(_TP_HEAD[:-1], "index 1", _TP_H[0][:-2] + "!="), "line 3: proof hash is not"),
    ("hash noncanonical", _tp(_TP_HEAD[:-1], "index 1", noncanonical(_TP_H[1])), "line 3"),
    ("hash hex", _tp(_TP_HEAD[:-1], "index 1", HASHES[0].hex()), "line 3: proof hash is 48"),
    ("hash with space", _tp(_TP_HEAD[:-1], "index 1", _TP_H[0] + " "), "line 3"),
    (
        "too many hashes",
        _tp(_TP_HEAD[:-1], "index 1", *([_TP_H[0]] * (MAX_PROOF_HASHES + 1))),
        f"line {3 + MAX_PROOF_HASHES}: more than {MAX_PROOF_HASHES}",
    ),
    ("no empty line", _TP_HEAD + "index 1\n" + _TP_H[0] + "\n", "line 4: missing"),
    ("no empty line, cp", _TP_HEAD + "index 1\n" + CP_NOTE, "line 3: proof hash is not"),
    ("no checkpoint", _TP_HEAD + "index 1\n\n", "line 4: missing; expected the checkpoint"),
    ("two empty lines", _TP_HEAD + "index 1\n\n\n" + CP_NOTE, "line 4: origin is empty"),
    ("checkpoint unsigned", _tp(_TP_HEAD[:-1], "index 1", checkpoint="o\n100\n" + _R + "\n"), "no"),
    (
        "checkpoint trailing",
        _tp(_TP_HEAD[:-1], "index 1") + "\n",
        "line 9: note ends with an empty",
    ),
    ("checkpoint junk", _tp(_TP_HEAD[:-1], "index 1") + "junk\n", "line 9: signature line"),
    (
        "checkpoint no newline",
        _tp(_TP_HEAD[:-1], "index 1", _TP_H[0])[:-1],
        "line 9: last line does not end",
    ),
    (
        "checkpoint body",
        _tp(_TP_HEAD[:-1], "index 1", checkpoint=sign_note(f"o\n010\n{_R}\n", [LOG])),
        "line 5: tree size '010'",
    ),
    (
        "checkpoint crlf",
        _tp(_TP_HEAD[:-1], "index 1", checkpoint=CP_NOTE.replace("\n", "\r\n")),
        "line 4, column 16",
    ),
    ("index == size", _tp(_TP_HEAD[:-1], "index 100"), "line 2: index 100 is not below .* 100"),
    ("index > size", _tp(_TP_HEAD[:-1], "extra YQ==", "index 1000"), "line 3: index 1000"),
    ("crlf", _tp(_TP_HEAD[:-1], "index 1").replace("\n", "\r\n"), "line 1"),
    ("too large", _tp(_TP_HEAD[:-1], "extra " + "A" * (4 << 20), "index 1"), "exceeds the limit"),
    (
        "extra too large",
        _tp(_TP_HEAD[:-1], "extra " + b64(bytes((1 << 20) + 1)), "index 1"),
        "line 2: extra data exceeds",
    ),
]


@pytest.mark.parametrize(
    ("text", "pattern"), [(t, p) for _, t, p in BAD_PROOFS], ids=[c[0] for c in BAD_PROOFS]
)
def test_parse_tlog_proof_rejects(text: object, pattern: str) -> None:
    with pytest.raises(NoteFormatError, match=pattern):
        parse_tlog_proof(text)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"index": -1}, "not a uint64"),
        ({"index": MAX_TREE_SIZE + 1}, "not a uint64"),
        ({"index": False}, "must be an int"),
        ({"index": 100}, "not below the checkpoint's tree size 100"),
        ({"proof": list(HASHES)}, "tuple"),
        ({"proof": (HASHES[0], HASHES[1][:31])}, "proof hash 1 must be 32 bytes"),
        ({"proof": (b64(HASHES[0]),)}, "proof hash 0 must be 32 bytes"),
        ({"proof": (HASHES[0],) * (MAX_PROOF_HASHES + 1)}, "exceed the limit"),
        ({"extra": b""}, "extra data is empty"),
        ({"extra": "text"}, "bytes or None"),
        ({"extra": bytes((1 << 20) + 1)}, "exceeds the limit"),
        ({"checkpoint": b"bytes"}, "signed note text"),
        ({"checkpoint": "o\n100\n" + _R + "\n"}, "no empty line"),
        ({"checkpoint": sign_note("not\na checkpoint\n", [LOG])}, "1 line|2 line"),
    ],
)
def test_tlog_proof_constructor_rejects(kwargs: dict[str, object], pattern: str) -> None:
    fields: dict[str, object] = {"index": 1, "proof": HASHES, "checkpoint": CP_NOTE}
    fields.update(kwargs)
    with pytest.raises(NoteFormatError, match=pattern):
        TlogProof(**fields)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- properties

_LINE_CHARS = st.characters(min_codepoint=0x20, exclude_categories=["Cs"])
_LINES = st.lists(st.text(_LINE_CHARS, max_size=20), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(lines=_LINES)
def test_property_sign_verify_round_trip(lines: list[str]) -> None:
    text = "\n".join(lines) + "\n"
    signed = sign_note(text, [LOG, OTHER])
    assert verify_note(signed, [LOG.verifier]).text == text
    assert verify_note(signed.encode("utf-8"), [OTHER.verifier]).text == text
    with pytest.raises(SignatureError):
        verify_note(signed, [IMPOSTOR.verifier])


@settings(max_examples=60, deadline=None)
@given(
    origin=st.text(_LINE_CHARS, min_size=1, max_size=30),
    size=st.integers(0, MAX_TREE_SIZE),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(st.text(_LINE_CHARS, min_size=1, max_size=10), max_size=3),
)
def test_property_checkpoint_round_trip(
    origin: str, size: int, root: bytes, extensions: list[str]
) -> None:
    cp = Checkpoint(origin, size, root, tuple(extensions))
    assert Checkpoint.parse_body(cp.body()) == cp
    assert open_checkpoint(sign_checkpoint(cp, LOG), LOG.verifier, origin=origin) == cp


@settings(max_examples=40, deadline=None)
@given(
    size=st.integers(1, MAX_TREE_SIZE),
    data=st.data(),
    proof=st.lists(st.binary(min_size=32, max_size=32), max_size=8),
    extra=st.none() | st.binary(min_size=1, max_size=40),
)
def test_property_tlog_proof_round_trip(
    size: int, data: st.DataObject, proof: list[bytes], extra: bytes | None
) -> None:
    index = data.draw(st.integers(0, size - 1))
    checkpoint = sign_checkpoint(Checkpoint(LOG.name, size, ROOT), LOG)
    p = TlogProof(index, tuple(proof), checkpoint, extra)
    assert parse_tlog_proof(format_tlog_proof(p)) == p


_ANY = st.text(st.characters(exclude_categories=["Cs"]) | st.sampled_from("\n— +="), max_size=80)


@settings(max_examples=200, deadline=None)
@given(text=_ANY | st.binary(max_size=80).map(lambda b: b.decode("latin-1")))
def test_property_parsers_fail_only_with_note_errors(text: str) -> None:
    for parse in (parse_note, parse_vkey, parse_signer_key, Checkpoint.parse_body):
        with contextlib.suppress(NoteFormatError):
            parse(text)
    for parse_any in (parse_tlog_proof, parse_note):
        for value in (text, text.encode("utf-8", "surrogatepass")):
            with contextlib.suppress(NoteFormatError):
                parse_any(value)
    with contextlib.suppress(NoteError):
        verify_note(text, [LOG.verifier])


@settings(max_examples=100, deadline=None)
@given(position=st.integers(0, 200), byte=st.integers(1, 255))
def test_property_any_byte_change_is_rejected(position: int, byte: int) -> None:
    signed = sign_checkpoint(Checkpoint(LOG.name, 42, ROOT), LOG).encode("utf-8")
    index = position % len(signed)
    tampered = bytearray(signed)
    tampered[index] ^= byte
    with pytest.raises(NoteError):
        open_checkpoint(bytes(tampered), LOG.verifier)


# --------------------------------------------------------------------------- tessera conformance


@pytest.fixture(scope="module")
def tessera() -> Path:
    """Locate the tessera-log conformance folder; fail in CI, skip elsewhere, when missing."""
    if not (CONFORMANCE / "checkpoint").is_file():
        reason = (
            f"conformance data not found at {CONFORMANCE} "
            "(see ../shared/conformance/README.md, tessera-log/)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return CONFORMANCE


def _checkpoint_files(root: Path) -> dict[int, Path]:
    files: dict[int, Path] = {}
    for path in root.glob("checkpoint.*"):
        suffix = path.name.removeprefix("checkpoint.")
        assert re.fullmatch(r"0|[1-9][0-9]*", suffix), path
        files[int(suffix)] = path
    return files


def _tile_coordinates(base: Path, path: Path) -> tuple[int, int]:
    """Tile index and width from a C2SP tlog-tiles path (``x001/234/067[.p/W]``)."""
    parts = list(path.relative_to(base).parts)
    width = 256
    if len(parts) >= 2 and parts[-2].endswith(".p"):
        width = int(parts[-1])
        assert 1 <= width <= 255, path
        parts = [*parts[:-2], parts[-2].removesuffix(".p")]
    groups = [p.removeprefix("x") for p in parts]
    assert all(re.fullmatch(r"[0-9]{3}", g) for g in groups), path
    assert all(p.startswith("x") for p in parts[:-1]), path
    assert not parts[-1].startswith("x"), path
    return int("".join(groups)), width


def _tile_files(base: Path) -> list[tuple[int, int, bytes]]:
    tiles = [(*_tile_coordinates(base, p), p.read_bytes()) for p in base.rglob("*") if p.is_file()]
    assert tiles, f"no tiles under {base}"
    return sorted(tiles)


def _parse_entry_bundle(data: bytes) -> list[bytes]:
    """Split a C2SP tlog-tiles entry bundle: uint16 big-endian length-prefixed entries."""
    entries: list[bytes] = []
    pos = 0
    while pos < len(data):
        assert pos + 2 <= len(data), "truncated length prefix"
        length = int.from_bytes(data[pos : pos + 2], "big")
        pos += 2
        assert pos + length <= len(data), "truncated entry"
        entries.append(data[pos : pos + length])
        pos += length
    return entries


def test_tessera_checkpoints_verify(tessera: Path) -> None:
    verifier = parse_vkey(TESSERA_VKEY)
    files = _checkpoint_files(tessera)
    assert sorted(files) == list(range(len(TESSERA_ENTRIES) + 1))
    for size, path in files.items():
        cp = open_checkpoint(path.read_bytes(), verifier)
        assert cp.size == size, path
        assert cp.origin == TESSERA_ORIGIN
        assert cp.extensions == ()
        note = verify_note(path.read_text(encoding="utf-8"), [verifier])
        assert note.text == cp.body()
        assert [s.key_id for s in note.signatures] == [bytes.fromhex("33d7b496")]
    latest = open_checkpoint((tessera / "checkpoint").read_bytes(), verifier)
    assert latest.size == len(TESSERA_ENTRIES)
    assert latest == open_checkpoint(files[latest.size].read_bytes(), verifier)


def test_tessera_entry_bundles(tessera: Path) -> None:
    widths: list[int] = []
    for index, width, data in _tile_files(tessera / "tile" / "entries"):
        entries = _parse_entry_bundle(data)
        assert len(entries) == width
        start = index * 256
        assert entries == TESSERA_ENTRIES[start : start + width]
        widths.append(start + width)
    assert max(widths) == len(TESSERA_ENTRIES)
    assert sorted(widths) == list(range(1, len(TESSERA_ENTRIES) + 1))


def test_tessera_level0_hash_tiles(tessera: Path) -> None:
    expected = [hashlib.sha256(b"\x00" + e).digest() for e in TESSERA_ENTRIES]
    assert [leaf_hash(e) for e in TESSERA_ENTRIES] == expected
    covered: list[int] = []
    for index, width, data in _tile_files(tessera / "tile" / "0"):
        assert len(data) == 32 * width
        hashes = [data[i : i + 32] for i in range(0, len(data), 32)]
        start = index * 256
        assert hashes == expected[start : start + width]
        covered.append(start + width)
    assert max(covered) == len(TESSERA_ENTRIES)


def test_tessera_roots_recomputed(tessera: Path) -> None:
    verifier = parse_vkey(TESSERA_VKEY)
    leaves = [leaf_hash(e) for e in TESSERA_ENTRIES]
    assert root_hash([]) == hashlib.sha256(b"").digest()
    for size, path in _checkpoint_files(tessera).items():
        cp = open_checkpoint(path.read_bytes(), verifier)
        assert root_hash(leaves[:size]) == cp.root_hash, f"root mismatch at size {size}"


@pytest.mark.parametrize("line", [0, 1, 2])
def test_tessera_tampered_checkpoint(tessera: Path, line: int) -> None:
    verifier = parse_vkey(TESSERA_VKEY)
    lines = (tessera / "checkpoint.5").read_text(encoding="utf-8").split("\n")
    other_root = b64(root_hash([leaf_hash(e) for e in TESSERA_ENTRIES[:6]]))
    lines[line] = ["example.com/log/testdatb", "6", other_root][line]
    with pytest.raises(SignatureError):
        open_checkpoint("\n".join(lines), verifier)


def test_tessera_checkpoint_wrong_key_and_flipped_signature(tessera: Path) -> None:
    signed = (tessera / "checkpoint.7").read_text(encoding="utf-8")
    with pytest.raises(SignatureError):
        open_checkpoint(signed, LOG.verifier)
    # A key of the same name but another key id: ignored, so nothing verifies.
    same_name = Verifier.from_public_key(TESSERA_ORIGIN, LOG.public_key)
    with pytest.raises(SignatureError, match="33d7b496"):
        open_checkpoint(signed, same_name)
    head, encoded = signed.rsplit(" ", 1)
    for position in (4, 30, 67):
        tampered = head + " " + flip_b64_byte(encoded.rstrip("\n"), position) + "\n"
        with pytest.raises(SignatureError, match="does not verify"):
            open_checkpoint(tampered, parse_vkey(TESSERA_VKEY))
    with pytest.raises(SignatureError, match="origin"):
        open_checkpoint(signed, parse_vkey(TESSERA_VKEY), origin="example.com/log/other")


def test_tessera_checkpoint_in_tlog_proof(tessera: Path) -> None:
    signed = (tessera / "checkpoint").read_text(encoding="utf-8")
    proof = TlogProof(index=14, proof=HASHES[:4], checkpoint=signed, extra=b"fivten")
    text = format_tlog_proof(proof)
    parsed = parse_tlog_proof(text)
    assert parsed == proof
    assert parsed.checkpoint == signed
    assert open_checkpoint(parsed.checkpoint, parse_vkey(TESSERA_VKEY)).size == 15
