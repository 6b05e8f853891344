"""``writer``: durable writes through the vault's one writer (:class:`VaultWriter`).

(a) Latency: on a fresh vault, one producer commits one record at a time
through the writer and waits for each (``writer.commit([record]).result()``:
blobs, catalog transaction and signed checkpoint durable, the writer lock
taken and released around each); 20 warm-up writes, then 300 timed. Target:
p50 < 5 ms. Beside it, the floor under it: the p50 of one ``fsync(2)`` of a
small write on the same filesystem (a durable commit makes at least three:
the blob store's, the catalog transaction's and the checkpoint's), and the
p50 of the same single-record :meth:`Vault.commit` called directly, without
the writer.

(b) Throughput: on a fresh vault, one producer commits batches of
:data:`BATCH` records, waiting for each (the batched rate); then, on
another fresh vault, :data:`PRODUCERS` threads together commit the same
number of records, each in batches of ``BATCH / PRODUCERS``, waiting for
each: the writer coalesces what is queued into one commit. Target: the
producers together reach >= 80% of the one producer's rate. Both commit
:data:`TOTAL` records of :data:`workload.ITEM_SIZE` bytes.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from echo_archive.vault.vault import Vault
from echo_archive.vault.writer import VaultWriter
from workload import ORIGIN, Result, percentile, records, say

WARMUP = 20
WRITES = 300
P50_TARGET_MS = 5.0
BATCH = 256
PRODUCERS = 8
TOTAL = 40_960
RATIO_TARGET = 0.8


def run(out: Path) -> Result:
    """Time single durable writes and concurrent producers through the writer."""
    result = Result("writer")
    scratch = out / "writer"
    scratch.mkdir(parents=True, exist_ok=True)
    latencies = _latency(scratch / "latency")
    p50 = percentile(latencies, 50)
    result.add("single-record durable write p50", p50, "ms", below=P50_TARGET_MS)
    result.add("single-record durable write p99", percentile(latencies, 99), "ms")
    result.add("same, Vault.commit without the writer, p50", _direct(scratch / "direct"), "ms")
    result.add("fsync of a small write, p50 (3 per commit)", _fsync_p50(scratch), "ms")
    one = _producers(scratch / "one", 1, BATCH)
    many = _producers(scratch / "many", PRODUCERS, BATCH // PRODUCERS)
    result.add(f"1 producer, batches of {BATCH}", one, "items/s")
    result.add(f"{PRODUCERS} producers, batches of {BATCH // PRODUCERS}", many, "items/s")
    result.add(f"{PRODUCERS} producers / 1 producer", many / one, "x", at_least=RATIO_TARGET)
    result.notes.append(
        "each write is durable (blobs, catalog, signed checkpoint); the lock is taken per batch"
    )
    result.details = {
        "warmup": WARMUP,
        "writes": WRITES,
        "batch": BATCH,
        "producers": PRODUCERS,
        "total": TOTAL,
    }
    return result


def _fresh(path: Path) -> None:
    if path.exists():
        import shutil

        shutil.rmtree(path)
    Vault.create(path, origin=ORIGIN).close()


def _latency(path: Path) -> list[float]:
    """Milliseconds of each of :data:`WRITES` single-record commits, one at a time."""
    _fresh(path)
    say(f"writer: {WARMUP} warm-up + {WRITES} timed single-record durable writes")
    samples = []
    with VaultWriter.open(path) as writer:
        for i in range(WARMUP + WRITES):
            record = records(i, 1)
            t0 = time.perf_counter()
            writer.commit(record).result()
            if i >= WARMUP:
                samples.append((time.perf_counter() - t0) * 1000)
    return samples


def _direct(path: Path) -> float:
    """p50 milliseconds of single-record :meth:`Vault.commit` calls, no writer thread."""
    _fresh(path)
    samples = []
    with Vault.open(path) as vault:
        for i in range(WARMUP + WRITES):
            record = records(i, 1)
            t0 = time.perf_counter()
            vault.commit(record)
            if i >= WARMUP:
                samples.append((time.perf_counter() - t0) * 1000)
    return percentile(samples, 50)


def _fsync_p50(where: Path) -> float:
    """p50 milliseconds of ``fsync`` after a 100-byte append, on the vaults' filesystem."""
    path = where / "fsync.probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    samples = []
    try:
        for _ in range(WRITES):
            os.write(fd, b"x" * 100)
            t0 = time.perf_counter()
            os.fsync(fd)
            samples.append((time.perf_counter() - t0) * 1000)
    finally:
        os.close(fd)
        path.unlink()
    return percentile(samples, 50)


def _producers(path: Path, producers: int, batch: int) -> float:
    """Items/s of ``producers`` threads committing :data:`TOTAL` records in ``batch``-es."""
    _fresh(path)
    each = TOTAL // producers
    say(f"writer: {producers} producer(s) x {each:,} records in batches of {batch}")
    failures: list[BaseException] = []
    with VaultWriter.open(path) as writer:
        writer.commit(records(TOTAL, 1)).result()  # the writer is started and warm

        def produce(p: int) -> None:
            base = p * each
            try:
                for start in range(base, base + each, batch):
                    writer.commit(records(start, min(batch, base + each - start))).result()
            except BaseException as exc:  # reported below: a benchmark never hides a failure
                failures.append(exc)

        threads = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
        t0 = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        seconds = time.perf_counter() - t0
    if failures:
        raise failures[0]
    with Vault.open(path, readonly=True) as reader:
        if reader.size != TOTAL + 1:
            raise RuntimeError(f"{path}: {reader.size} entries, expected {TOTAL + 1}")
    return TOTAL / seconds
