"""Evidence bundles: one file that proves, offline, that a record was archived.

An *evidence bundle* (``echoctl prove``) is a JSON document holding everything
needed to check one log entry without the vault or its operator
(DESIGN.md invariant 6)::

    {
      "format": "echo-evidence/v1",
      "vkey": "<C2SP signed-note verifier key of the log>",
      "entry": "<the entry: RFC 8785 canonical JSON text, verbatim>",
      "blobs": {"sha256:<hex>": "<base64 of the blob's bytes>", ...},
      "tlog_proof": "<C2SP tlog-proof@v1: index, inclusion proof, signed checkpoint>"
    }

:func:`verify_bundle` checks, in order: the checkpoint's Ed25519 signature
against the verifier key (the bundled one, or one the caller pins) and its
origin; the entry is canonical JSON of the entry schema; the entry's leaf hash
(RFC 9162 §2.1.1) is included in the checkpointed tree by the inclusion proof
(RFC 9162 §2.1.3.2); and every blob the entry names is present with the named
size and SHA-256 digest. The format is strict: a top-level field other than
those above is an error, and a blob the entry does not name fails the bundle
(each named), so nothing unchecked travels as if it were evidence. A
signature by another key than the expected one is reported with both keys
(``name+keyid``, from the note's signature lines). Trusting the bundled key only shows the bundle is
self-consistent: pin the log's published key (``--vkey``) to bind it to the log.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from echo_archive.errors import EchoError, EvidenceError
from echo_archive.vault.checkpoint import Checkpoint, open_checkpoint
from echo_archive.vault.entry import Entry, parse_entry
from echo_archive.vault.merkle import leaf_hash, verify_inclusion
from echo_archive.vault.note import parse_note, parse_vkey
from echo_archive.vault.tlogproof import TlogProof, format_tlog_proof, parse_tlog_proof
from echo_archive.vault.vault import Vault

__all__ = ["BUNDLE_FORMAT", "BundleCheck", "BundleReport", "build_bundle", "verify_bundle"]

BUNDLE_FORMAT = "echo-evidence/v1"

BUNDLE_FIELDS = frozenset({"format", "vkey", "entry", "blobs", "tlog_proof"})
"""The top-level fields of a bundle; any other is refused (a strict format)."""


def build_bundle(vault: Vault, index: int, size: int | None = None) -> dict[str, Any]:
    """Build the evidence bundle for entry ``index`` against a stored checkpoint.

    Args:
        vault: an open vault.
        index: the entry index.
        size: the tree size of the checkpoint to prove against (default: the
            latest checkpoint); a checkpoint of exactly that size must exist.

    Returns:
        The bundle as a JSON-ready mapping (see the module docstring).

    Raises:
        LogError: no such entry, or no checkpoint of that size, or the entry is
            not covered by it.
        BlobError: a blob the entry names cannot be read intact.

    """
    signed = vault.latest_checkpoint() if size is None else vault.checkpoint_at(size)
    entry = vault.entry(index)
    proof = vault.inclusion_proof(index, signed.size)
    blobs = {
        ref.digest_text: base64.b64encode(vault.blobs.get(ref.digest)).decode("ascii")
        for ref in entry.blobs
    }
    tlog = format_tlog_proof(TlogProof(index=index, proof=tuple(proof), checkpoint=signed.note))
    return {
        "format": BUNDLE_FORMAT,
        "vkey": vault.verifier.vkey,
        "entry": entry.raw.decode("utf-8"),
        "blobs": blobs,
        "tlog_proof": tlog,
    }


@dataclass(frozen=True)
class BundleCheck:
    """One check of a bundle: its name, whether it held, and details."""

    name: str
    ok: bool
    detail: str


@dataclass
class BundleReport:
    """The outcome of :func:`verify_bundle`.

    Attributes:
        checks: every check made, in order.
        index: the entry index, size: the checkpoint's tree size, origin: the
            log origin (None when the bundle could not be read that far).
        entry: the parsed entry, when it parsed.
        key_pinned: whether the caller pinned the verifier key.

    """

    checks: list[BundleCheck] = field(default_factory=list)
    index: int | None = None
    size: int | None = None
    origin: str | None = None
    entry: Entry | None = None
    key_pinned: bool = False

    @property
    def ok(self) -> bool:
        """True when every check held (and there was at least one)."""
        return bool(self.checks) and all(c.ok for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping of the report."""
        return {
            "ok": self.ok,
            "index": self.index,
            "size": self.size,
            "origin": self.origin,
            "key_pinned": self.key_pinned,
            "entry": json.loads(self.entry.raw) if self.entry else None,
            "checks": [c.__dict__ for c in self.checks],
        }

    def _add(self, name: str, ok: bool, detail: str) -> bool:
        self.checks.append(BundleCheck(name, ok, detail))
        return ok


def _load(data: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EvidenceError(f"bundle is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise EvidenceError("bundle is not a JSON object")
    if doc.get("format") != BUNDLE_FORMAT:
        raise EvidenceError(f"bundle format is {doc.get('format')!r}, expected {BUNDLE_FORMAT!r}")
    unknown = sorted(set(doc) - BUNDLE_FIELDS)
    if unknown:
        raise EvidenceError(
            f"bundle has unknown top-level field(s) {', '.join(map(repr, unknown))}: a "
            f"{BUNDLE_FORMAT} bundle holds only {', '.join(sorted(BUNDLE_FIELDS))}; "
            "nothing outside what is checked may ride along with the evidence"
        )
    for key, kind in (("vkey", str), ("entry", str), ("tlog_proof", str), ("blobs", dict)):
        if not isinstance(doc.get(key), kind):
            raise EvidenceError(f"bundle field {key!r} is missing or not a {kind.__name__}")
    return doc


def _signers(note: str) -> str:
    """The keys (``name+keyid``) whose signature lines a note carries, for a message."""
    try:
        sigs = parse_note(note).signatures
    except EchoError:
        return "none readable"
    return ", ".join(f"{s.name}+{s.key_id.hex()}" for s in sigs) or "none"


def verify_bundle(data: bytes, vkey: str | None = None) -> BundleReport:
    """Check an evidence bundle offline.

    Args:
        data: the bundle file's bytes.
        vkey: a verifier key to pin (C2SP signed-note vkey text); when None, the
            key inside the bundle is used.

    Returns:
        The report; ``report.ok`` is True only when the checkpoint signature,
        the entry, the inclusion proof and every blob digest hold.

    Raises:
        EvidenceError: the bundle is not a bundle at all (not JSON, wrong
            format, missing or unknown top-level fields), or the pinned key
            is malformed.

    """
    doc = _load(data)
    report = BundleReport(key_pinned=vkey is not None)
    try:
        verifier = parse_vkey(vkey if vkey is not None else doc["vkey"])
    except EchoError as exc:
        if vkey is not None:
            raise EvidenceError(f"pinned verifier key is malformed: {exc}") from exc
        report._add("verifier key", False, f"bundled key is malformed: {exc}")
        return report
    if vkey is not None and doc["vkey"].strip() != verifier.vkey:
        report._add(
            "verifier key", True, f"pinned {verifier.name}; the bundle carries a different key"
        )
    try:
        tlog = parse_tlog_proof(doc["tlog_proof"])
    except EchoError as exc:
        report._add("tlog-proof", False, str(exc))
        return report
    report.index = tlog.index
    checkpoint: Checkpoint | None = None
    try:
        checkpoint = open_checkpoint(tlog.checkpoint, verifier)
        report.size, report.origin = checkpoint.size, checkpoint.origin
        report._add(
            "checkpoint signature",
            True,
            f"signed by {verifier.name} (key id {verifier.key_id.hex()}), size {checkpoint.size}",
        )
    except EchoError as exc:
        report._add(
            "checkpoint signature",
            False,
            f"{exc} (expected a signature by {'the pinned' if vkey is not None else 'the bundled'}"
            f" key {verifier.name}+{verifier.key_id.hex()}; the checkpoint is signed by "
            f"{_signers(tlog.checkpoint)})",
        )
    raw = doc["entry"].encode("utf-8")
    entry: Entry | None = None
    try:
        entry = parse_entry(raw, where=f"entry {tlog.index}")
        report.entry = entry
        report._add("entry", True, f"canonical JSON, type {entry.type}, logged {entry.logged_at}")
    except EchoError as exc:
        report._add("entry", False, str(exc))
    if checkpoint is not None:
        try:
            verify_inclusion(
                leaf_hash(raw), tlog.index, checkpoint.size, tlog.proof, checkpoint.root_hash
            )
            report._add(
                "inclusion proof",
                True,
                f"entry {tlog.index} is in the tree of size {checkpoint.size}",
            )
        except EchoError as exc:
            report._add("inclusion proof", False, str(exc))
    if entry is not None:
        _check_blobs(entry, doc["blobs"], report)
    return report


def _check_blobs(entry: Entry, blobs: dict[str, Any], report: BundleReport) -> None:
    named = {ref.digest_text for ref in entry.blobs}
    for extra in sorted(set(blobs) - named):
        report._add(
            f"blob {extra}",
            False,
            "in the bundle but not named by the entry (a bundle carries only the entry's blobs)",
        )
    for ref in entry.blobs:
        name = f"blob {ref.role} {ref.digest_text}"
        encoded = blobs.get(ref.digest_text)
        if not isinstance(encoded, str):
            report._add(name, False, "not in the bundle")
            continue
        try:
            content = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            report._add(name, False, f"not valid base64: {exc}")
            continue
        digest = hashlib.sha256(content).digest()
        if digest != ref.digest:
            report._add(name, False, f"bytes hash to sha256:{digest.hex()}")
        elif len(content) != ref.size:
            report._add(name, False, f"size {len(content)} bytes, entry says {ref.size}")
        else:
            report._add(name, True, f"{ref.size} bytes, digest matches")
