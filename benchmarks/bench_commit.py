"""``commit``: N items of 2 KiB JSON into a fresh vault, 1,000 per durable commit.

Each :meth:`Vault.commit` stores 1,000 blobs (zstd, one fsync'd SQLite
transaction), appends 1,000 entries with their blob index rows and new log
tiles (one fsync'd catalog transaction) and signs and stores a checkpoint
(another one). Only the commit calls are timed; generating the items is not.

The vault is left at ``<out>/vault`` for ``proofs``, ``verify`` and ``pymerkle``.
"""

from __future__ import annotations

from pathlib import Path

from workload import VAULT_DIR, Result, build_vault, peak_rss_mb, say

SUSTAINED_TARGET = 10_000  # items/s over the last 10% of the items
RSS_TARGET = 300  # MB


def run(out: Path, items: int) -> Result:
    """Build ``<out>/vault`` from scratch with ``items`` items and report the rates."""
    result = Result("commit")
    path = out / VAULT_DIR
    say(f"commit: {items:,} items of 2,048 bytes into a fresh vault at {path}, 1,000 per commit")
    stats = build_vault(path, items, label="commit")
    batches = sorted(stats.batch_seconds)
    result.add("items/s overall", stats.items / stats.commit_seconds, "items/s")
    result.add(
        "items/s sustained (last 10%)",
        stats.tail_items / stats.tail_seconds,
        "items/s",
        at_least=SUSTAINED_TARGET,
    )
    result.add("peak RSS", peak_rss_mb(), "MB", below=RSS_TARGET)
    result.add("commit of 1,000: p50", batches[len(batches) // 2] * 1000, "ms")
    result.add("commit of 1,000: max", batches[-1] * 1000, "ms")
    result.details = {
        "items": stats.items,
        "commit_seconds": stats.commit_seconds,
        "tail_items": stats.tail_items,
        "tail_seconds": stats.tail_seconds,
        "generate_seconds": stats.generate_seconds,
        "vault_bytes": _du(path),
    }
    result.notes.append(
        f"timed: the Vault.commit calls only ({stats.commit_seconds:.1f} s); generating the "
        f"items took another {stats.generate_seconds:.1f} s, not counted"
    )
    result.notes.append(f"vault on disk: {_du(path) / 1e6:,.0f} MB")
    return result


def _du(path: Path) -> int:
    """Total size in bytes of the files under ``path``."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
