"""Check a vault (optionally against pinned checkpoints), or an evidence bundle offline.

**Remembered checkpoints.** After a vault verifies, the newest checkpoint
verified for its origin is kept in a small state file outside the vault,
``<dir>/<origin, percent-encoded>`` (JSON: origin, verifier key, the signed
note verbatim, when). ``<dir>`` is the ``state_dir`` argument, else
``$ECHO_VERIFIED_DIR``, else ``$XDG_STATE_HOME/echo/verified`` (XDG Base
Directory: ``~/.local/state`` when unset). A later verify of that origin
takes it as a pin (:mod:`echo_archive.vault.pinning`): a vault that shows an
older or inconsistent state than one already verified fails (rollback and
fork detection, as a CT monitor keeps the STHs it has seen, RFC 9162 §8.3).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from echo_archive.errors import EchoError, NoteError, NotFoundError, RequestError
from echo_archive.vault.entry import format_timestamp
from echo_archive.vault.evidence import BundleReport, verify_bundle
from echo_archive.vault.note import Verifier, parse_vkey
from echo_archive.vault.pinning import Pin, check_pins, open_pin
from echo_archive.vault.vault import Vault
from echo_archive.vault.verify import (
    DERIVED_SAMPLE,
    Problem,
    Progress,
    VerifyReport,
    verify_vault,
)

__all__ = ["rebuild", "remembered_path", "verify", "verify_evidence"]

VERIFIED_DIR_ENV = "ECHO_VERIFIED_DIR"
"""The environment variable that moves the remembered-checkpoint directory."""


def verified_dir(state_dir: Path | None = None) -> Path:
    """The directory of remembered checkpoints (see the module docstring for the order)."""
    if state_dir is not None:
        return state_dir
    if os.environ.get(VERIFIED_DIR_ENV):
        return Path(os.environ[VERIFIED_DIR_ENV])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "echo" / "verified"


def remembered_path(origin: str, state_dir: Path | None = None) -> Path:
    """The state file remembering the newest checkpoint verified for ``origin``."""
    return verified_dir(state_dir) / quote(origin, safe="")


def _remembered(vault: Vault, path: Path, report: VerifyReport) -> Pin | None:
    """The remembered checkpoint of the vault's origin as a pin (None if none); problems added."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        report.problems.append(
            Problem("pin", str(path), f"cannot read the remembered checkpoint: {exc}")
        )
        return None
    if not isinstance(doc, dict) or not all(
        isinstance(doc.get(k), str) for k in ("vkey", "note", "verified_at")
    ):
        report.problems.append(Problem("pin", str(path), "remembered checkpoint is malformed"))
        return None
    if doc["vkey"] != vault.verifier.vkey:
        report.problems.append(
            Problem(
                "pin",
                "verifier key",
                f"origin {vault.origin}: the vault's verifier key {vault.verifier.vkey} is not "
                f"the key {doc['vkey']} of the checkpoint verified at {doc['verified_at']} "
                f"({path})",
            )
        )
        return None
    source = f"the checkpoint verified at {doc['verified_at']}, remembered in {path}"
    try:
        return open_pin(doc["note"], parse_vkey(doc["vkey"]), source)
    except EchoError as exc:
        report.problems.append(Problem("pin", str(path), str(exc)))
        return None


def _remember(vault: Vault, path: Path, previous: Pin | None, report: VerifyReport) -> None:
    """Keep the vault's newest checkpoint in ``path`` if newer than ``previous``."""
    newest = vault.latest_checkpoint()
    if previous is not None and previous.checkpoint.size >= newest.size:
        return
    doc = {
        "origin": vault.origin,
        "vkey": vault.verifier.vkey,
        "note": newest.note,
        "verified_at": format_timestamp(time.time_ns()),
    }
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        report.warnings.append(f"cannot remember the verified checkpoint in {path}: {exc}")


def verify(
    vault: Vault,
    *,
    sample: float = 1.0,
    progress: Progress | None = None,
    full: bool = False,
    vkey: str | None = None,
    checkpoints: Sequence[tuple[str, str]] = (),
    remember: bool = True,
    state_dir: Path | None = None,
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
        vkey: the log's published verifier key (C2SP signed-note vkey text):
            the vault's key must be it, and ``checkpoints`` must be signed by it.
        checkpoints: published checkpoints, ``(source, signed note text)``
            pairs (C2SP tlog-checkpoint); each must be held by the vault, same
            size and root, and every later checkpoint consistent with it
            (:func:`~echo_archive.vault.pinning.check_pins`, RFC 9162 §2.1.4).
        remember: check against, and update, the newest checkpoint verified
            for this origin before (:func:`remembered_path`).
        state_dir: the directory of remembered checkpoints (default: see the
            module docstring).

    Returns:
        The report; ``report.ok`` when everything holds, else its problems
        (pin failures are of kind ``pin`` and name origin, sizes and roots).

    Raises:
        RequestError: ``sample`` outside (0, 1], or ``vkey`` is not a verifier key.
        StorageError: the vault cannot be read at all.
    """
    if not 0 < sample <= 1:
        raise RequestError(f"sample {sample}: must be in (0, 1]")
    pinned_key: Verifier = vault.verifier
    if vkey is not None:
        try:
            pinned_key = parse_vkey(vkey.strip())
        except NoteError as exc:
            raise RequestError(f"--vkey: not a verifier key ({exc})") from exc
    derived_sample = 1.0 if full else DERIVED_SAMPLE
    report = verify_vault(vault, sample=sample, progress=progress, derived_sample=derived_sample)
    if pinned_key.vkey != vault.verifier.vkey:
        report.problems.append(
            Problem(
                "pin",
                "verifier key",
                f"origin {vault.origin}: the vault's verifier key is "
                f"{vault.verifier.name}+{vault.verifier.key_id.hex()}, not the pinned key "
                f"{pinned_key.name}+{pinned_key.key_id.hex()}",
            )
        )
    pins: list[Pin] = []
    for source, note in checkpoints:
        try:
            pins.append(open_pin(note, pinned_key, source))
        except EchoError as exc:
            report.problems.append(Problem("pin", source, f"pinned checkpoint refused: {exc}"))
    path = remembered_path(vault.origin, state_dir)
    previous = _remembered(vault, path, report) if remember else None
    if previous is not None:
        pins.append(previous)
    for p in check_pins(vault, pins):
        report.problems.append(Problem("pin", p.ref, p.message))
    if remember and report.ok:
        _remember(vault, path, previous, report)
    return report


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
