"""``pymerkle``: the vault side by side with pymerkle 7.0's ``SqliteTree``.

(a) **Log append** of the same M = min(N, 200,000) entries (our canonical-JSON
capture entries), 1,000 per durable commit, each side into a fresh store.
Ours: one :meth:`Vault.append` per batch, which writes the entry and blob
index rows, the log's node-hash tiles and the tree state in one transaction,
then signs and stores a checkpoint (the blobs the entries name are stored
beforehand, untimed: the ``commit`` benchmark measures the whole path).
pymerkle: one ``append_entries`` call per batch, one SQLite transaction
inserting ``(entry, hash)`` rows; its connection's ``synchronous`` is checked
and set to FULL if it is not, so both sides fsync every commit.

(b) **Proofs** at N leaves: pymerkle's tree is extended to N with its bulk
``append_entries`` (100,000 entries per transaction, not timed), reopened, and
asked for inclusion proofs (``prove_inclusion(i + 1, N)``; its indexes count
from 1) and consistency proofs (``prove_consistency(m, N)``), the same random
queries as ours on ``<out>/vault``. Ten warm-up queries per kind on each side
are not timed; pymerkle's in-memory subroot cache (1 GiB by default) stays on
and keeps warming during the run, which only helps pymerkle.

Ours emits RFC 9162 proofs; pymerkle's proofs are its own format (a path with
a bit rule), so the two are not cross-verified.
"""

from __future__ import annotations

import random
import shutil
import time
from pathlib import Path

from pymerkle import SqliteTree

from echo_archive.vault.entry import Entry, format_timestamp
from echo_archive.vault.vault import Vault
from workload import (
    BATCH,
    ORIGIN,
    Result,
    item_meta,
    make_item,
    percentile,
    say,
    timed_us,
)

APPEND_ITEMS = 200_000
QUERIES = 200
WARMUP = 10
BULK_CHUNK = 100_000
SPEEDUP_TARGET = 50  # pymerkle p50 / ours p50


def run(vault_path: Path, out: Path, items: int) -> Result:
    """Run (a) and (b); the scratch stores under ``<out>/pymerkle`` are removed at the end."""
    result = Result("pymerkle")
    scratch = out / "pymerkle"
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    try:
        _append(result, scratch, items)
        _proofs(result, scratch, vault_path, items)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result.notes.append(
        "ours emits RFC 9162 proofs; pymerkle's proofs are its own format (not RFC 9162), "
        "so they are not cross-verified"
    )
    return result


def _entries(vault: Vault, start: int, stop: int) -> list[Entry]:
    """Store items ``start..stop`` as blobs and build their capture entries (not timed)."""
    bodies = [make_item(i) for i in range(start, stop)]
    digests = vault.blobs.put_many(bodies)
    logged_at = format_timestamp(time.time_ns())
    return [
        Entry.build("capture", logged_at, {"body": (d, len(b))}, item_meta(start + k))
        for k, (d, b) in enumerate(zip(digests, bodies, strict=True))
    ]


def _append(result: Result, scratch: Path, items: int) -> None:
    m = min(items, APPEND_ITEMS)
    say(f"pymerkle (a): log append of the same {m:,} entries, {BATCH:,} per durable commit")
    ours_seconds = 0.0
    raws: list[bytes] = []
    with Vault.create(scratch / "vault", origin=ORIGIN) as v:
        for start in range(0, m, BATCH):
            batch = _entries(v, start, min(m, start + BATCH))
            raws.extend(e.raw for e in batch)
            t0 = time.perf_counter()
            v.append(batch)
            ours_seconds += time.perf_counter() - t0
        if v.size != m:
            raise SystemExit(f"our log holds {v.size} entries, expected {m}")
    ours_rate = m / ours_seconds
    say(f"  ours: {m:,} entries, {ours_rate:,.0f} entries/s")

    tree = SqliteTree(str(scratch / "pymerkle.sqlite"), algorithm="sha256")
    try:
        sync, journal = _durability(tree)
        seconds = 0.0
        for start in range(0, m, BATCH):
            batch_raw = raws[start : start + BATCH]
            t0 = time.perf_counter()
            tree.append_entries(batch_raw)
            seconds += time.perf_counter() - t0
        if tree.get_size() != m:
            raise SystemExit(f"pymerkle holds {tree.get_size()} leaves, expected {m}")
    finally:
        tree.close()
    theirs_rate = m / seconds
    say(f"  pymerkle: {m:,} entries, {theirs_rate:,.0f} entries/s")
    result.add(f"(a) log append M={m:,}: ours", ours_rate, "entries/s")
    result.add(f"(a) log append M={m:,}: pymerkle", theirs_rate, "entries/s")
    result.add("(a) append ratio ours/pymerkle", ours_rate / theirs_rate, "x", at_least=1)
    result.notes.append(
        f"(a) the same {m:,} canonical-JSON capture entries (~{sum(map(len, raws)) // m} bytes "
        "each) on both sides, 1,000 per durable commit. Ours: Vault.append per batch = entry "
        "rows + blob index rows + node-hash tiles + tree state in one fsync'd transaction, "
        "then an Ed25519-signed checkpoint in a second one (blobs were stored beforehand, "
        "untimed). pymerkle: append_entries per batch (one transaction of entry + leaf-hash "
        "rows). The full Vault.commit including 2 KiB blobs is the `commit` benchmark."
    )
    result.notes.append(f"(a) pymerkle's SQLite: {sync}, journal_mode={journal}")
    result.details["append"] = {
        "entries": m,
        "ours_seconds": ours_seconds,
        "pymerkle_seconds": seconds,
        "pymerkle_sqlite": {"synchronous": sync, "journal_mode": journal},
    }


def _durability(tree: SqliteTree) -> tuple[str, str]:
    """Make pymerkle's commits durable (synchronous=FULL) and say what was found."""
    level = tree.con.execute("PRAGMA synchronous").fetchone()
    journal = tree.con.execute("PRAGMA journal_mode").fetchone()
    # pymerkle's row_factory returns the single column itself.
    if level == 2:
        return "synchronous=FULL (its default here; unchanged)", str(journal)
    tree.con.execute("PRAGMA synchronous = FULL")
    return f"synchronous was {level}, set to FULL (2) for a fair comparison", str(journal)


def _proofs(result: Result, scratch: Path, vault_path: Path, items: int) -> None:
    n = items
    db = str(scratch / "pymerkle.sqlite")
    tree = SqliteTree(db, algorithm="sha256")
    try:
        have = tree.get_size()
        if have < n:
            say(f"pymerkle (b): extending pymerkle's tree from {have:,} to {n:,} leaves (bulk)")
        t0 = time.perf_counter()
        for start in range(have, n, BULK_CHUNK):
            stop = min(n, start + BULK_CHUNK)
            tree.append_entries([make_item(i) for i in range(start, stop)], chunksize=BULK_CHUNK)
        build = time.perf_counter() - t0
        if tree.get_size() != n:
            raise SystemExit(f"pymerkle holds {tree.get_size()} leaves, expected {n}")
    finally:
        tree.close()

    rng = random.Random(6962)
    incl = [rng.randrange(n) for _ in range(WARMUP + QUERIES)]
    cons = [rng.randrange(1, n) if n > 1 else 1 for _ in range(WARMUP + QUERIES)]
    say(f"pymerkle (b): {QUERIES} inclusion and {QUERIES} consistency proofs at {n:,}, each side")
    with Vault.open(vault_path, readonly=True) as v:
        timed_us(lambda i: v.inclusion_proof(i, n), incl[:WARMUP])
        ours_incl = timed_us(lambda i: v.inclusion_proof(i, n), incl[WARMUP:])
        timed_us(lambda m: v.consistency_proof(m, n), cons[:WARMUP])
        ours_cons = timed_us(lambda m: v.consistency_proof(m, n), cons[WARMUP:])
    tree = SqliteTree(db, algorithm="sha256")  # fresh: an empty subroot cache
    try:
        timed_us(lambda i: tree.prove_inclusion(i + 1, n), incl[:WARMUP])
        theirs_incl = timed_us(lambda i: tree.prove_inclusion(i + 1, n), incl[WARMUP:])
        timed_us(lambda m: tree.prove_consistency(m, n), cons[:WARMUP])
        theirs_cons = timed_us(lambda m: tree.prove_consistency(m, n), cons[WARMUP:])
        cache = tree.get_cache_info()
    finally:
        tree.close()
    for kind, ours, theirs in (
        ("inclusion", ours_incl, theirs_incl),
        ("consistency", ours_cons, theirs_cons),
    ):
        o, t = percentile(ours, 50), percentile(theirs, 50)
        result.add(f"(b) {kind} p50 at N: ours", o, "µs")
        result.add(f"(b) {kind} p50 at N: pymerkle", t, "µs")
        result.add(f"(b) {kind} ratio pymerkle/ours", t / o, "x", at_least=SPEEDUP_TARGET)
    result.notes.append(
        f"(b) {QUERIES} random queries per kind on each side after {WARMUP} warm-up ones; "
        f"pymerkle's tree built in bulk in {build:.0f} s (not timed); its subroot cache ended "
        f"with {cache.hits:,} hits, {cache.misses:,} misses"
    )
    result.details["proofs"] = {
        "tree_size": n,
        "queries": QUERIES,
        "warmup": WARMUP,
        "pymerkle_build_seconds": build,
        "pymerkle_cache": {"hits": cache.hits, "misses": cache.misses},
        "ours_p99_us": {
            "inclusion": percentile(ours_incl, 99),
            "consistency": percentile(ours_cons, 99),
        },
        "pymerkle_p99_us": {
            "inclusion": percentile(theirs_incl, 99),
            "consistency": percentile(theirs_cons, 99),
        },
    }
