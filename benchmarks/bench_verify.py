"""``verify``: :func:`verify_vault` on the N-leaf vault, beside ``sha256sum`` of its blobs.

``verify_vault`` (opened as a reader) checks every checkpoint signature,
re-parses and re-canonicalizes every entry (RFC 8785), re-hashes it into its
leaf, recomputes every node hash and root of the tree and compares them with
the stored tiles and signed roots, checks consistency between successive
checkpoints, and decompresses and re-hashes every blob.

For scale, the same uncompressed blob bytes (regenerated: the items are a pure
function of their index, checked against the store) are written into one file
and hashed by ``sha256sum``, which does one SHA-256 pass over them and nothing
else. The file is removed afterwards.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import time
from pathlib import Path

from echo_archive.vault.vault import Vault
from echo_archive.vault.verify import verify_vault
from workload import BATCH, Result, item_digest, make_item, say

ITEMS_TARGET = 20_000  # items/s


def run(vault_path: Path, out: Path, items: int) -> Result:
    """Verify ``vault_path``, then time ``sha256sum`` over the same blob bytes."""
    result = Result("verify")
    say(f"verify: verify_vault on {vault_path} ({items:,} entries), reader")
    with Vault.open(vault_path, readonly=True) as v:
        report = verify_vault(v)
        stats = v.blobs.stats()
        sample = random.Random(1).sample(range(items), min(50, items))
        missing = v.blobs.missing(item_digest(i) for i in sample)
    if not report.ok:
        raise SystemExit(f"verify_vault found problems: {report.problems[:5]}")
    if missing:
        raise SystemExit("the vault's blobs are not the regenerated items; rebuild it")
    secs = report.seconds
    result.add("items/s", report.entries / secs, "items/s", at_least=ITEMS_TARGET)
    result.add("blob bytes/s", report.blob_bytes / secs / 1e6, "MB/s")
    result.add("verify seconds", secs, "s")

    sha_secs = _sha256sum(out, items, stats.bytes)
    result.add("sha256sum seconds (same blob bytes)", sha_secs, "s")
    result.add("sha256sum MB/s", stats.bytes / sha_secs / 1e6, "MB/s")
    result.add("ratio verify / sha256sum", secs / sha_secs, "x")
    result.notes.append(
        f"verify_vault: {report.entries:,} entries, {report.blobs:,} blobs, "
        f"{report.blob_bytes / 1e6:,.0f} MB of blob bytes, {report.checkpoints:,} checkpoints "
        f"in {secs:.2f} s"
    )
    result.notes.append(
        "unlike sha256sum, verify also re-canonicalizes (RFC 8785) and re-hashes every entry, "
        "decompresses every blob, recomputes the whole tree against the stored hashes, and "
        "checks every checkpoint signature and the consistency between checkpoints"
    )
    result.notes.append(
        "both read warm files (the page cache holds what was just written); no cache is dropped"
    )
    result.details = {
        "entries": report.entries,
        "blobs": report.blobs,
        "blob_bytes": report.blob_bytes,
        "checkpoints": report.checkpoints,
        "verify_seconds": secs,
        "sha256sum_seconds": sha_secs,
    }
    return result


def _sha256sum(out: Path, items: int, expected_bytes: int) -> float:
    """Write the items' bytes into one file, time ``sha256sum`` on it, remove it."""
    if shutil.which("sha256sum") is None:
        raise SystemExit("sha256sum is not installed")
    path = out / "blobs.bin"
    say(f"verify: writing the {expected_bytes / 1e6:,.0f} MB of blob bytes to {path}")
    written = 0
    try:
        with path.open("wb") as fh:
            for start in range(0, items, BATCH):
                chunk = b"".join(make_item(i) for i in range(start, min(items, start + BATCH)))
                fh.write(chunk)
                written += len(chunk)
        if written != expected_bytes:
            raise SystemExit(
                f"regenerated {written} blob bytes but the store holds {expected_bytes}"
            )
        say("verify: sha256sum")
        t0 = time.perf_counter()
        subprocess.run(["sha256sum", str(path)], check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - t0
    finally:
        path.unlink(missing_ok=True)
