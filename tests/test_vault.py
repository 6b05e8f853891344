"""The vault's commit protocol, state, proofs and writer lock, on real files."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from echo_archive import faults
from echo_archive.errors import (
    EntryError,
    EntrySchemaError,
    LogError,
    StorageError,
    VaultError,
    VaultExistsError,
    VaultLockedError,
    VaultNotFoundError,
)
from echo_archive.vault.checkpoint import open_checkpoint
from echo_archive.vault.merkle import (
    EMPTY_ROOT,
    leaf_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)
from echo_archive.vault.note import parse_vkey
from echo_archive.vault.vault import Record, Vault
from echo_archive.vault.verify import verify_vault

from .conftest import file_meta, sample_records


def test_create_lays_out_the_vault(tmp_path: Path) -> None:
    path = tmp_path / "v"
    with Vault.create(path) as v:
        assert v.origin.startswith("echo.archive/")
        assert len(v.origin) == len("echo.archive/") + 16
        key = path / "keys" / "signing.key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        vkey = (path / "verifier.vkey").read_text().strip()  # 0644, outside keys/
        assert parse_vkey(vkey).name == v.origin == v.verifier.name
        assert v.log_state() == (0, EMPTY_ROOT)
        cp = v.latest_checkpoint()
        assert cp.size == 0
        assert cp.checkpoint.root_hash == EMPTY_ROOT
        assert open_checkpoint(cp.note, v.verifier).origin == v.origin
    for name in ("echo.toml", "catalog.sqlite", "blobs"):
        assert (path / name).exists()
    assert "PRIVATE" not in (path / "echo.toml").read_text()


def test_two_vaults_get_distinct_origins_and_keys(tmp_path: Path) -> None:
    with Vault.create(tmp_path / "a") as a, Vault.create(tmp_path / "b") as b:
        assert a.origin != b.origin
        assert a.verifier.public_key != b.verifier.public_key


def test_create_refuses_existing_vault_and_changes_nothing(vault_path: Path) -> None:
    before = {p: p.stat().st_mtime_ns for p in vault_path.rglob("*")}
    with pytest.raises(VaultExistsError, match="already holds a vault"):
        Vault.create(vault_path)
    assert {p: p.stat().st_mtime_ns for p in vault_path.rglob("*")} == before
    assert not list(vault_path.parent.glob(".vault.init-*"))


def test_create_refuses_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "keep.txt").write_text("mine")
    with pytest.raises(VaultExistsError, match="non-empty"):
        Vault.create(tmp_path / "d")
    assert (tmp_path / "d" / "keep.txt").read_text() == "mine"


def test_open_missing_vault(tmp_path: Path) -> None:
    with pytest.raises(VaultNotFoundError, match="echoctl init"):
        Vault.open(tmp_path / "nope")


def test_commit_returns_receipts_covered_by_a_signed_checkpoint(vault_path: Path) -> None:
    with Vault.open(vault_path) as v:
        r1 = v.commit(sample_records(5))
        r2 = v.commit(sample_records(3, start=5))
        assert [r.index for r in r1.receipts] == [0, 1, 2, 3, 4]
        assert [r.index for r in r2.receipts] == [5, 6, 7]
        assert r2.checkpoint.size == 8 == v.size
        leaves = [r.leaf_hash for r in r1.receipts + r2.receipts]
        assert all(leaf_hash(r.entry.raw) == r.leaf_hash for r in r1.receipts)
        assert r2.checkpoint.checkpoint.root_hash == root_hash(leaves)
        assert r1.checkpoint.checkpoint.root_hash == root_hash(leaves[:5])
        for i in range(8):
            verify_inclusion(leaves[i], i, 8, v.inclusion_proof(i), root_hash(leaves))
            verify_inclusion(
                leaves[i % 5], i % 5, 5, v.inclusion_proof(i % 5, 5), root_hash(leaves[:5])
            )
        verify_consistency(5, 8, v.consistency_proof(5), root_hash(leaves[:5]), root_hash(leaves))
        assert v.checkpoint_sizes() == [0, 5, 8]


def test_entries_name_their_blobs_and_survive_reopen(vault_path: Path) -> None:
    body = b'{"hello": "world"}'
    with Vault.open(vault_path) as v:
        r = v.commit([Record("capture", file_meta("é.json", len(body)), {"body": body})])
    with Vault.open(vault_path, readonly=True) as v:
        entry = v.entry(0)
        doc = json.loads(entry.raw)
        assert doc["type"] == "capture"
        assert doc["v"] == 1
        assert doc["blobs"]["body"] == {
            "digest": "sha256:" + hashlib.sha256(body).hexdigest(),
            "size": len(body),
        }
        assert doc["meta"] == file_meta("é.json", len(body))
        assert entry.raw == r.receipts[0].entry.raw
        assert v.blobs.get(entry.blobs[0].digest) == body
        assert v.resolve("sha256:" + hashlib.sha256(body).hexdigest()) == 0
        assert v.resolve("0") == 0
        with pytest.raises(LogError, match="beyond the log"):
            v.resolve("1")
        with pytest.raises(LogError, match="neither"):
            v.resolve("banana")


def test_same_bytes_twice_store_one_blob_and_two_entries(vault_path: Path) -> None:
    with Vault.open(vault_path) as v:
        v.commit([Record("capture", file_meta("same-1", 4), {"body": b"same"})])
        v.commit(
            [
                Record("capture", file_meta("same-2", 4), {"body": b"same"}),
                Record("capture", file_meta("same-3", 4), {"body": b"same"}),
            ]
        )
        assert v.blobs.stats().count == 1
        assert v.size == 3


def test_file_blobs_are_streamed_from_disk(vault_path: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 * 2**20))
    with Vault.open(vault_path) as v:
        r = v.commit([Record("capture", file_meta("big.bin", 3 * 2**20), {"body": big})])
        ref = r.receipts[0].entry.blobs[0]
        assert ref.size == 3 * 2**20
        assert ref.digest == hashlib.sha256(big.read_bytes()).digest()
        assert v.blobs.get(ref.digest) == big.read_bytes()


def test_bad_record_writes_nothing(vault_path: Path) -> None:
    with Vault.open(vault_path) as v:
        with pytest.raises(EntryError, match="type"):
            v.commit([Record("Not A Type", {}, {})])
        with pytest.raises(EntryError, match="canonical"):
            v.commit([Record("capture", {**file_meta("x"), "size": 2**60}, {"body": b""})])
        with pytest.raises(EntrySchemaError, match=r"new entry: capture meta .*field size"):
            v.commit([Record("capture", {**file_meta("x"), "size": -1}, {"body": b""})])
        with pytest.raises(EntrySchemaError, match=r"new entry: capture blobs: roles \[\]"):
            v.commit([Record("capture", file_meta("x"), {})])
        assert v.log_state()[0] == 0
        assert verify_vault(v).ok


def test_empty_commit_is_a_no_op(vault_path: Path) -> None:
    with Vault.open(vault_path) as v:
        assert v.commit([]).checkpoint.size == 0
        assert v.checkpoint_sizes() == [0]


def test_reader_sees_commits_while_the_writer_is_open(vault_path: Path) -> None:
    with Vault.open(vault_path) as w, Vault.open(vault_path, readonly=True) as r:
        assert r.size == 0
        w.commit(sample_records(4))
        assert r.size == 4
        assert r.entry(3).raw == w.entry(3).raw
        with pytest.raises(VaultError, match="read-only"):
            r.commit(sample_records(1))


@pytest.mark.parametrize(
    ("point", "errno_name"),
    [
        ("blob.write", "EIO"),
        ("blob.fsync", "ENOSPC"),
        ("catalog.begin", "EIO"),
        ("catalog.commit", "ENOSPC"),
        ("checkpoint.sign", "EIO"),
        ("checkpoint.write", "ENOSPC"),
    ],
)
def test_write_error_at_each_step_leaves_a_consistent_vault(
    vault_path: Path, point: str, errno_name: str
) -> None:
    with Vault.open(vault_path) as v:
        v.commit(sample_records(10))
        faults.arm(point, errno_name)
        with pytest.raises(StorageError):
            v.commit(sample_records(10, start=10))
        faults.disarm()
        logged = v.log_state()[0]
        # Before the catalog commits nothing is logged; after it, the entries are logged
        # but unsealed, and the next commit seals them together with its own.
        assert logged == (20 if point.startswith("checkpoint") else 10)
        r = v.commit(sample_records(5, start=20))
        assert r.checkpoint.size == logged + 5
        report = verify_vault(v)
        assert report.ok, report.problems
        assert report.warnings == []
    with Vault.open(vault_path, readonly=True) as v:
        assert verify_vault(v).ok


def test_unsealed_tail_is_sealed_by_the_next_writer(vault_path: Path) -> None:
    with Vault.open(vault_path) as v:
        v.commit(sample_records(3))
        faults.arm("checkpoint.write", "EIO")
        with pytest.raises(StorageError):
            v.commit(sample_records(2, start=3))
        faults.disarm()
    with Vault.open(vault_path, readonly=True) as r:
        report = verify_vault(r)
        assert report.ok
        assert report.log_size == 5
        assert report.checkpoint_size == 3
        assert "unsealed tail: entries 3..4" in report.warnings[0]
    with capture_logs() as logs, Vault.open(vault_path) as v:
        assert v.size == 5
    assert any(e["event"] == "vault.sealing_unsealed_tail" for e in logs)


_HOLDER = textwrap.dedent(
    """
    import sys, time
    from echo_archive.vault.vault import Vault
    v = Vault.open(sys.argv[1])
    with v.writing():  # a writer holds the lock only while it writes: hold it here
        print("locked", flush=True)
        time.sleep(60)
    """
)


def _start_holder(vault_path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(vault_path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_live_writer_lock_names_its_holder(vault_path: Path) -> None:
    proc = _start_holder(vault_path)
    try:
        with pytest.raises(VaultLockedError) as info:
            Vault.open(vault_path, wait=0.2)  # waits its turn, then names the holder
        assert f"pid {proc.pid}" in str(info.value)
        assert "waited 0.2 s" in str(info.value)
        assert socket.gethostname() in str(info.value)
        assert info.value.holder["pid"] == proc.pid
        with Vault.open(vault_path, readonly=True) as r:  # readers never block
            assert r.size == 0
    finally:
        proc.kill()
        proc.communicate()


def test_stale_lock_of_a_dead_writer_is_taken_over_and_logged(vault_path: Path) -> None:
    proc = _start_holder(vault_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    record = json.loads((vault_path / "lock").read_text())
    assert record["pid"] == proc.pid
    with capture_logs() as logs, Vault.open(vault_path) as v:
        v.commit(sample_records(1))
    taken = [e for e in logs if e["event"] == "vault.lock.stale_taken_over"]
    assert taken
    assert taken[0]["previous_pid"] == proc.pid
    assert (vault_path / "lock").read_text() == ""  # released cleanly


def test_lock_left_by_another_host_is_refused_unless_broken(vault_path: Path) -> None:
    (vault_path / "lock").write_text(
        json.dumps({"host": "elsewhere.example", "pid": 1, "since": "x"})
    )
    with pytest.raises(VaultLockedError, match="another host"):
        Vault.open(vault_path)
    with Vault.open(vault_path, break_stale=True) as v:
        assert v.size == 0


def test_signing_key_must_match_the_verifier_key(vault_path: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    Vault.create(other, origin="echo.archive/test0000deadbeef").close()
    (vault_path / "keys" / "signing.key").write_text((other / "keys" / "signing.key").read_text())
    with pytest.raises(VaultError, match="does not match"):
        Vault.open(vault_path)


def test_many_batches_keep_proofs_right_across_tile_edges(vault_path: Path) -> None:
    leaves: list[bytes] = []
    sizes = []
    with Vault.open(vault_path) as v:
        for batch in (1, 255, 1, 256, 300, 7, 513):
            r = v.commit(sample_records(batch, start=len(leaves), size=64))
            leaves += [x.leaf_hash for x in r.receipts]
            sizes.append(len(leaves))
        for n in sizes:
            root = root_hash(leaves[:n])
            assert v.root_at(n) == root
            for i in {0, n // 2, n - 1, 255 % n, 256 % n}:
                verify_inclusion(leaves[i], i, n, v.inclusion_proof(i, n), root)
        for a, b in itertools.pairwise(sizes):
            verify_consistency(
                a, b, v.consistency_proof(a, b), root_hash(leaves[:a]), root_hash(leaves[:b])
            )
    with Vault.open(vault_path, readonly=True) as r:
        report = verify_vault(r)
        assert report.ok
        assert report.entries == len(leaves)


def test_time_is_rfc3339_utc(vault_path: Path) -> None:
    with Vault.open(vault_path) as v:
        before = time.time()
        e = v.commit(sample_records(1)).receipts[0].entry
    assert e.logged_at.endswith("Z")
    parsed = time.mktime(time.strptime(e.logged_at[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    assert abs(parsed - before) < 5


def test_append_replays_entries_into_another_vault_with_the_same_root(
    vault_path: Path, tmp_path: Path
) -> None:
    from echo_archive.errors import BlobNotFoundError

    other = tmp_path / "replica"
    with Vault.open(vault_path) as v:
        v.commit(sample_records(40))
        entries = [v.entry(i) for i in range(40)]
        blobs = [v.blobs.get(e.blobs[0].digest) for e in entries]
        root = v.latest_checkpoint().checkpoint.root_hash
    with Vault.create(other) as r:
        with pytest.raises(BlobNotFoundError, match="entry 0 of the batch"):
            r.append(entries)
        assert r.log_state()[0] == 0
        r.blobs.put_many(blobs)
        result = r.append(entries)
        assert result.checkpoint.checkpoint.root_hash == root
        assert [x.entry.logged_at for x in result.receipts] == [e.logged_at for e in entries]
        assert verify_vault(r).ok
