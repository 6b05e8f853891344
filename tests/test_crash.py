"""Crash tests: SIGKILL a real writer process mid-commit, then open, verify, and count.

The child commits batches forever and prints each record id right after
``Vault.commit`` returns (the record is then acknowledged). The parent kills
it with SIGKILL, either after a random delay or at a chosen step of the commit
protocol (the ``ECHO_FAULT=point:KILL:n`` fault hook), then checks the
DESIGN.md invariant 2: the vault opens, ``verify`` passes, and every printed id
is in the log. Write errors (ENOSPC/EIO) injected at each step in a real
process are checked the same way.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from echo_archive.faults import POINTS
from echo_archive.vault.vault import Vault
from echo_archive.vault.verify import verify_vault

pytestmark = pytest.mark.slow

_CHILD = textwrap.dedent(
    """
    import os, random, sys
    from pathlib import Path
    from echo_archive.errors import StorageError
    from echo_archive.vault.vault import Record, Vault

    path, seed, p_large = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    rng = random.Random(seed)
    v = Vault.open(path)
    n = 0
    for _ in range(2000):  # bounded: a fault point that is never reached cannot hang the test
        records = []
        for _ in range(rng.randint(1, 8)):
            rid = f"{seed}-{n}"
            n += 1
            body: bytes | Path = (rid + ":" + "z" * rng.randint(0, 3000)).encode()
            size = len(body)
            if rng.random() < p_large:  # fresh bytes, so the large-blob path really writes
                big = path.parent / f"big-{rid}.bin"
                big.write_bytes(os.urandom(100_000))
                body, size = big, 100_000
            mtime = "2026-11-20T09:12:44.000000Z"
            meta = {"kind": "file", "name": rid, "size": size, "mtime": mtime}
            records.append(Record("capture", meta, {"body": body}))
        try:
            result = v.commit(records)
        except (StorageError, OSError) as exc:
            print("ERROR", type(exc).__name__, flush=True)
            sys.exit(3)
        for r in result.receipts:
            print(r.index, r.entry.meta["name"], flush=True)
    print("DONE", flush=True)
    """
)


def _make_vault(tmp_path: Path) -> Path:
    """A new vault whose blobs above 64 KiB go to files, so large-blob steps run too."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "vault"
    Vault.create(path).close()
    cfg = path / "echo.toml"
    cfg.write_text(cfg.read_text().replace("large_threshold = 16777216", "large_threshold = 65536"))
    return path


def _run_child(
    path: Path, seed: int, fault: str | None, delay: float | None
) -> tuple[list[str], int]:
    env = dict(os.environ)
    env.pop("ECHO_FAULT", None)
    if fault:
        env["ECHO_FAULT"] = fault
    # A fault in the large-blob path needs large blobs in every batch to be reached.
    p_large = "1.0" if fault and fault.startswith("blob.large") else "0.03"
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), str(seed), p_large],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    if delay is not None:
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
    try:
        stdout, stderr = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        pytest.fail(f"child did not stop (fault {fault}): {stderr.decode()[-2000:]}")
    # A kill can cut the last line short: only newline-terminated lines were printed whole.
    lines = stdout.decode().split("\n")[:-1]
    acked = [line for line in lines if line and line.split()[0].isdigit()]
    if fault and proc.returncode == 0:
        pytest.fail(f"fault {fault} was never reached in 2000 batches")
    if proc.returncode not in (-signal.SIGKILL, 3, 0):
        pytest.fail(f"child exited {proc.returncode}: {stderr.decode()[-2000:]}")
    return acked, proc.returncode


def _check_after_crash(path: Path, acked: dict[str, int], context: str) -> None:
    with Vault.open(path, readonly=True) as r:
        report = verify_vault(r)
        assert report.ok, f"{context}: {report.problems[:5]}"
        for rid, index in acked.items():
            entry = json.loads(r.entry(index).raw)
            assert entry["meta"]["name"] == rid, f"{context}: acknowledged {rid} not at {index}"
        assert r.size >= len(acked)
    with Vault.open(path) as w:  # the next writer seals any unsealed tail
        assert w.size == w.log_state()[0], context


def _trials() -> list[tuple[str | None, float | None]]:
    rng = random.Random(20261122)
    kill_points = sorted(POINTS)
    trials: list[tuple[str | None, float | None]] = []
    for point in kill_points:  # every step, at an early and a later hit
        trials.append((f"{point}:KILL:{rng.randint(1, 3)}", None))
        trials.append((f"{point}:KILL:{rng.randint(4, 12)}", None))
    while len(trials) < 56:  # random instants
        trials.append((None, rng.uniform(0.3, 1.5)))
    rng.shuffle(trials)
    return trials


def _final_check(path: Path, acked: dict[str, int]) -> None:
    with Vault.open(path, readonly=True) as r:  # every tail was sealed by the writer opens
        report = verify_vault(r)
        assert report.ok, report.problems[:5]
        assert not report.warnings, report.warnings
        assert len(acked) <= report.log_size


def test_sigkill_at_random_instants_and_at_every_step(tmp_path: Path) -> None:
    # Trials run in rounds of 14 on one vault each (crash after crash on the same
    # vault), so the full verify after every kill stays affordable.
    acked: dict[str, int] = {}
    kills = total = 0
    path = tmp_path
    for seed, (fault, delay) in enumerate(_trials()):
        if seed % 14 == 0:
            if seed:
                _final_check(path, acked)
            total += len(acked)
            path, acked = _make_vault(tmp_path / f"round{seed // 14}"), {}
        lines, code = _run_child(path, seed, fault, delay)
        for line in lines:
            index, rid = line.split()
            acked[rid] = int(index)
        kills += code == -signal.SIGKILL
        _check_after_crash(path, acked, f"trial {seed} (fault={fault}, delay={delay})")
    _final_check(path, acked)
    total += len(acked)
    assert kills >= 50
    # The trials did commit work between kills (how much depends on the machine's
    # speed: about 600 on an idle 2-core machine, 250 under a load of 7).
    assert total > 100


@pytest.mark.parametrize("point", sorted(POINTS))
@pytest.mark.parametrize("code", ["ENOSPC", "EIO"])
def test_injected_write_error_in_a_real_process(tmp_path: Path, point: str, code: str) -> None:
    path = _make_vault(tmp_path)
    lines, rc = _run_child(path, 1, f"{point}:{code}:2", None)
    assert rc == 3  # the child saw StorageError/OSError and stopped
    acked = {rid: int(index) for index, rid in (line.split() for line in lines)}
    _check_after_crash(path, acked, f"{point}:{code}")
