"""``proofs``: inclusion and consistency proof generation on the N-leaf vault.

Opens ``<out>/vault`` as a reader (as ``echoctl log`` and a proof server do)
and times :meth:`Vault.inclusion_proof` ``(i, N)`` for random ``i`` and
:meth:`Vault.consistency_proof` ``(m, N)`` for random ``m``: 100 warm-up calls
each, then 2,000 timed calls each, one at a time. A few proofs are checked
against the signed root afterwards (untimed), so the figures are for correct
proofs.
"""

from __future__ import annotations

import random
from pathlib import Path

from echo_archive.vault.merkle import verify_consistency, verify_inclusion
from echo_archive.vault.vault import Vault
from workload import Result, percentile, say, timed_us

WARMUP = 100
QUERIES = 2000
P50_TARGET = 1000  # µs


def run(vault_path: Path, items: int) -> Result:
    """Time proof generation at tree size ``items``."""
    result = Result("proofs")
    rng = random.Random(9162)
    n = items
    with Vault.open(vault_path, readonly=True) as v:
        say(f"proofs: {WARMUP} warm-up + {QUERIES:,} timed proofs of each kind at size {n:,}")
        incl = [rng.randrange(n) for _ in range(WARMUP + QUERIES)]
        cons = [rng.randrange(1, n) if n > 1 else 1 for _ in range(WARMUP + QUERIES)]
        timed_us(lambda i: v.inclusion_proof(i, n), incl[:WARMUP])
        incl_us = timed_us(lambda i: v.inclusion_proof(i, n), incl[WARMUP:])
        timed_us(lambda m: v.consistency_proof(m, n), cons[:WARMUP])
        cons_us = timed_us(lambda m: v.consistency_proof(m, n), cons[WARMUP:])
        _check(v, n, incl[:20], cons[:20])
    for kind, samples in (("inclusion", incl_us), ("consistency", cons_us)):
        result.add(f"{kind} p50", percentile(samples, 50), "µs", below=P50_TARGET)
        result.add(f"{kind} p99", percentile(samples, 99), "µs")
    result.notes.append("RFC 9162 proofs from stored tiles, reader connection, one call at a time")
    result.details = {"tree_size": n, "warmup": WARMUP, "queries": QUERIES}
    return result


def _check(v: Vault, n: int, indexes: list[int], olds: list[int]) -> None:
    """Verify some generated proofs against the signed root (raises if one is wrong)."""
    root = v.checkpoint_at(n).checkpoint.root_hash
    for i in indexes:
        verify_inclusion(v.leaf_hash(i), i, n, v.inclusion_proof(i, n), root)
    for m in olds:
        verify_consistency(m, n, v.consistency_proof(m, n), v.root_at(m), root)
