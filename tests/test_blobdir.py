"""The directory blob store: the backend conformance suite, plus its own behaviour.

The suite (``tests/blobstore_suite.py``) runs through :class:`TestDirectoryBlobStore`
exactly as it runs against the SQLite store in ``test_blobs.py``; the rest tests
what only this backend has: its files on disk, damage done to them behind its
back, refusing a directory that is not one of its stores, and a writer killed
mid-batch.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from echo_archive import faults
from echo_archive.errors import (
    BlobCorruptError,
    BlobError,
    BlobNotFoundError,
    StorageError,
    VaultExistsError,
    VaultNotFoundError,
)
from echo_archive.vault.blobdir import (
    FORMAT_FILE,
    FORMAT_TEXT,
    DirectoryBlobStore,
    create_blob_store,
    open_blob_store,
)
from echo_archive.vault.blobs import BlobStats, BlobStore, SQLiteBlobStore

if TYPE_CHECKING or not __package__:
    from blobstore_suite import BlobStoreSuite, json_blob, sha, write_file
    from conftest import file_meta
else:
    from .blobstore_suite import BlobStoreSuite, json_blob, sha, write_file
    from .conftest import file_meta

THRESHOLD = 64 * 1024  # bytes: small, so large-blob tests stay fast


class DirectoryFactory:
    """Makes directory blob stores in one directory; closes them at teardown."""

    large_threshold = THRESHOLD

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.opened: list[DirectoryBlobStore] = []

    def create(self) -> DirectoryBlobStore:
        store = DirectoryBlobStore.create(self.directory, large_threshold=self.large_threshold)
        self.opened.append(store)
        return store

    def open(self, *, readonly: bool = False) -> DirectoryBlobStore:
        store = DirectoryBlobStore(
            self.directory, readonly=readonly, large_threshold=self.large_threshold
        )
        self.opened.append(store)
        return store

    def close_all(self) -> None:
        for store in self.opened:
            store.close()


@pytest.fixture
def store_factory(tmp_path: Path) -> Iterator[DirectoryFactory]:
    factory = DirectoryFactory(tmp_path / "blobs")
    yield factory
    factory.close_all()


@pytest.fixture
def store(store_factory: DirectoryFactory) -> DirectoryBlobStore:
    return store_factory.create()


@pytest.fixture(autouse=True)
def _disarm_faults() -> Iterator[None]:
    faults.disarm()
    yield
    faults.disarm()


class TestDirectoryBlobStore(BlobStoreSuite):
    """The conformance suite, run against DirectoryBlobStore."""


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


def test_is_a_blob_store_with_its_layout(store: DirectoryBlobStore) -> None:
    assert isinstance(store, BlobStore)
    assert store.stats() == BlobStats(0, 0, 0)
    assert (store.directory / FORMAT_FILE).read_text() == FORMAT_TEXT
    small, big = json_blob(1), os.urandom(THRESHOLD + 1)
    d_small, d_big = store.put_many([small, big])
    assert files_under(store.directory) == sorted(
        [
            FORMAT_FILE,
            f"{d_small.hex()[:2]}/{d_small.hex()}.zst",
            f"{d_big.hex()[:2]}/{d_big.hex()}.zst",
        ]
    )
    assert store.path_of(d_small).read_bytes()[:8] == b"ECHOBLB\x01"
    assert int.from_bytes(store.path_of(d_big).read_bytes()[8:16], "big") == len(big)
    assert list(store.iter_digests()) == sorted([d_small, d_big])
    assert os.listdir(store.directory / "tmp") == []


def test_create_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("something")
    with pytest.raises(VaultExistsError, match="not empty"):
        DirectoryBlobStore.create(tmp_path)
    assert not (tmp_path / FORMAT_FILE).exists()


def test_open_refuses_what_is_not_a_directory_store(tmp_path: Path) -> None:
    with pytest.raises(VaultNotFoundError, match=FORMAT_FILE):
        DirectoryBlobStore(tmp_path / "absent")
    assert not (tmp_path / "absent").exists()
    SQLiteBlobStore.create(tmp_path / "sq").close()
    with pytest.raises(BlobError, match="SQLite blob store"):
        DirectoryBlobStore(tmp_path / "sq")
    DirectoryBlobStore.create(tmp_path / "dir").close()
    with pytest.raises(BlobError, match="directory blob store"):
        open_blob_store("sqlite", tmp_path / "dir")
    (tmp_path / "dir" / FORMAT_FILE).write_text("echo-blobs directory 2\n")
    with pytest.raises(BlobError, match="not a directory blob store of a known format"):
        DirectoryBlobStore(tmp_path / "dir")
    with pytest.raises(ValueError, match="unknown blob backend"):
        create_blob_store("s3", tmp_path / "s3")  # type: ignore[arg-type]


def test_closed_store_raises_storage_error(store: DirectoryBlobStore) -> None:
    [digest] = store.put_many([b"x"])
    store.close()
    store.close()
    for call in (store.get, store.has, store.check):
        with pytest.raises(StorageError, match="closed"):
            call(digest)


def test_damaged_files_are_detected(store: DirectoryBlobStore, tmp_path: Path) -> None:
    blobs = [json_blob(i) for i in range(4)]
    big_path = tmp_path / "big.bin"
    write_file(big_path, 3 * THRESHOLD, seed=9)
    digests = store.put_many(blobs)
    d_big, _ = store.put_file(big_path)
    flipped, truncated, foreign, emptied = digests
    data = bytearray(store.path_of(flipped).read_bytes())
    data[-3] ^= 0xFF
    store.path_of(flipped).write_bytes(bytes(data))
    store.path_of(truncated).write_bytes(b"ECHO")
    store.path_of(foreign).write_bytes(b"x" * 40)
    store.path_of(emptied).write_bytes(b"")
    raw = bytearray(store.path_of(d_big).read_bytes())
    raw[len(raw) // 2] ^= 0x01
    store.path_of(d_big).write_bytes(bytes(raw))
    problems = dict(store.check_all())
    assert set(problems) == {flipped, truncated, foreign, emptied, d_big}
    assert "truncated" in problems[truncated]
    assert "truncated" in problems[emptied]
    assert "does not start with" in problems[foreign]
    for digest in problems:
        with pytest.raises(BlobCorruptError, match=digest.hex()):
            store.get(digest)
    with store.open(d_big) as fh, pytest.raises(BlobCorruptError):  # noqa: PT012 (reads to the end)
        while fh.read(7919):
            pass


def test_other_valid_content_under_a_name_is_a_digest_mismatch(store: DirectoryBlobStore) -> None:
    a, b = store.put_many([json_blob(1), json_blob(2)])
    store.path_of(a).write_bytes(store.path_of(b).read_bytes())
    with pytest.raises(BlobCorruptError, match="digest mismatch"):
        store.check(a)
    store.path_of(b).unlink()
    with pytest.raises(BlobNotFoundError):
        store.get(b)
    assert store.missing([a, b]) == {b}


_KILLED_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from echo_archive.vault.blobdir import DirectoryBlobStore
    store = DirectoryBlobStore(Path(sys.argv[1]), large_threshold=65536)
    for batch in range(1000):
        digests = store.put_many([b"batch %d blob %d " % (batch, i) * 50 for i in range(50)])
        print(batch, flush=True)
    """
)


def test_killed_mid_batch_leaves_only_whole_blobs(store: DirectoryBlobStore) -> None:
    env = {**os.environ, "ECHO_FAULT": "blob.fsync:KILL:7"}
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_WRITER, str(store.directory)],
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    acked = [int(line) for line in proc.stdout.decode().split()]
    assert acked == list(range(6))
    with DirectoryBlobStore(store.directory, readonly=True) as reader:
        assert list(reader.check_all()) == []
        for batch in acked:
            for i in range(50):
                assert reader.has(sha(b"batch %d blob %d " % (batch, i) * 50))
        assert reader.stats().count == 6 * 50
    # the killed batch's temporary files are left in tmp/, never under a blob's name
    assert all(name.startswith(".tmp-") for name in os.listdir(store.directory / "tmp"))


# ----------------------------------------------------------------- in a vault


def test_vault_on_the_directory_backend(tmp_path: Path) -> None:
    from echo_archive.vault.vault import Record, Vault
    from echo_archive.vault.verify import verify_vault

    path = tmp_path / "v"
    big = tmp_path / "big.bin"
    data = write_file(big, 20 * 2**20 + 7, seed=3)  # above the default 16 MiB threshold
    with Vault.create(path, blobs_backend="directory") as v:
        assert isinstance(v.blobs, DirectoryBlobStore)
        result = v.commit(
            [
                Record(
                    "capture", file_meta(f"doc-{i}.json", len(json_blob(i))), {"body": json_blob(i)}
                )
                for i in range(20)
            ]
            + [Record("capture", file_meta("big.bin", len(data)), {"body": big})]
        )
        assert result.checkpoint.size == 21
    assert 'backend = "directory"' in (path / "echo.toml").read_text()
    assert (path / "blobs" / FORMAT_FILE).is_file()
    assert not (path / "blobs" / "blobs.sqlite").exists()
    with Vault.open(path, readonly=True) as r:
        report = verify_vault(r)
        assert report.ok, report.problems
        assert report.blobs == 21
        assert r.blobs.get(sha(json_blob(5))) == json_blob(5)
        assert r.blobs.get(sha(data)) == data
    # echo.toml naming the other backend than the store on disk is refused, naming both
    cfg = path / "echo.toml"
    cfg.write_text(cfg.read_text().replace('backend = "directory"', 'backend = "sqlite"'))
    with pytest.raises(BlobError, match=r'directory blob store.*backend = "sqlite"'):
        Vault.open(path, readonly=True)


@pytest.mark.slow
def test_echoctl_init_with_the_directory_backend(tmp_path: Path) -> None:
    vault = tmp_path / "v"
    env = dict(os.environ)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "echo_archive", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )

    r = run("init", str(vault), "--blobs", "directory")
    assert r.returncode == 0, r.stderr
    assert (vault / "blobs" / FORMAT_FILE).is_file()
    doc = tmp_path / "doc.txt"
    doc.write_text("evidence\n")
    r = run("--vault", str(vault), "add", str(doc))
    assert r.returncode == 0, r.stderr
    assert DirectoryBlobStore(vault / "blobs").get(sha(b"evidence\n")) == b"evidence\n"
    r = run("--vault", str(vault), "verify")
    assert r.returncode == 0, r.stderr
    r = run("init", str(tmp_path / "w"), "--blobs", "s3")
    assert r.returncode == 2
    assert "s3" in r.stderr
    assert not (tmp_path / "w").exists()


@pytest.mark.slow
def test_a_directory_backend_vault_survives_sigkill(tmp_path: Path) -> None:
    """The crash test's writer, killed at random instants and at each blob step, on this backend."""
    if TYPE_CHECKING or not __package__:
        from test_crash import _check_after_crash, _final_check, _run_child
    else:
        from .test_crash import _check_after_crash, _final_check, _run_child
    from echo_archive.vault.vault import Vault

    path = tmp_path / "vault"
    Vault.create(path, blobs_backend="directory").close()
    cfg = path / "echo.toml"
    cfg.write_text(cfg.read_text().replace("large_threshold = 16777216", "large_threshold = 65536"))
    rng = random.Random(20261207)
    trials: list[tuple[str | None, float | None]] = [
        (f"{point}:KILL:{rng.randint(1, 4)}", None)
        for point in ("blob.write", "blob.fsync", "blob.large.write", "blob.large.rename")
    ] + [(None, rng.uniform(0.3, 1.5)) for _ in range(6)]
    acked: dict[str, int] = {}
    kills = 0
    for seed, (fault, delay) in enumerate(trials):
        lines, code = _run_child(path, 100 + seed, fault, delay)
        for line in lines:
            index, rid = line.split()
            acked[rid] = int(index)
        kills += code == -signal.SIGKILL
        _check_after_crash(path, acked, f"trial {seed} (fault={fault}, delay={delay})")
    _final_check(path, acked)
    assert kills >= 8
    assert acked  # the trials did commit work between kills
