"""The SQLite blob store: the backend conformance suite, plus its own behaviour.

The suite (``tests/blobstore_suite.py``) runs through :class:`TestSQLiteBlobStore`;
the rest tests what only this backend has: its files on disk, how it detects a
row or a large-blob file damaged behind its back, crash safety in a real process,
and that readers never wait for the writer.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

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
from echo_archive.vault.blobs import (
    DB_NAME,
    LARGE_DIR,
    BlobStats,
    BlobStore,
    SQLiteBlobStore,
    digest_hex,
    parse_digest,
)

# The suite is a sibling module: imported relatively when tests/ is a package (has an
# __init__.py), absolutely when pytest puts tests/ itself on sys.path (no __init__.py).
if TYPE_CHECKING or not __package__:
    from blobstore_suite import BlobStoreSuite, json_blob, sha, write_file
else:
    from .blobstore_suite import BlobStoreSuite, json_blob, sha, write_file

THRESHOLD = 64 * 1024  # bytes: small, so large-blob tests stay fast


class SQLiteFactory:
    """Makes SQLite blob stores in one directory; closes them at teardown."""

    large_threshold = THRESHOLD

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.opened: list[SQLiteBlobStore] = []

    def create(self) -> SQLiteBlobStore:
        store = SQLiteBlobStore.create(self.directory, large_threshold=self.large_threshold)
        self.opened.append(store)
        return store

    def open(self, *, readonly: bool = False) -> SQLiteBlobStore:
        store = SQLiteBlobStore(
            self.directory, readonly=readonly, large_threshold=self.large_threshold
        )
        self.opened.append(store)
        return store

    def close_all(self) -> None:
        for store in self.opened:
            store.close()


@pytest.fixture
def store_factory(tmp_path: Path) -> Iterator[SQLiteFactory]:
    factory = SQLiteFactory(tmp_path / "blobs")
    yield factory
    factory.close_all()


@pytest.fixture
def store(store_factory: SQLiteFactory) -> SQLiteBlobStore:
    return store_factory.create()


@pytest.fixture(autouse=True)
def _disarm_faults() -> Iterator[None]:
    faults.disarm()
    yield
    faults.disarm()


class TestSQLiteBlobStore(BlobStoreSuite):
    """The conformance suite, run against SQLiteBlobStore."""


def raw(store: SQLiteBlobStore) -> sqlite3.Connection:
    """A direct connection to the store's database, to damage it behind its back."""
    return sqlite3.connect(store.directory / DB_NAME, isolation_level=None)


def large_file(store: SQLiteBlobStore, digest: bytes) -> Path:
    h = digest.hex()
    return store.directory / LARGE_DIR / h[:2] / f"{h}.zst"


def drain(fh: BinaryIO) -> int:
    """Read a stream to its end in small steps; return how many bytes it gave."""
    total = 0
    while chunk := fh.read(4096):
        total += len(chunk)
    return total


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


# ------------------------------------------------------------------- digest text


def test_digest_text_round_trip() -> None:
    d = sha(b"abc")
    text = digest_hex(d)
    assert text == "sha256:" + d.hex()
    assert parse_digest(text) == d
    assert parse_digest(d.hex()) == d
    assert parse_digest(d.hex().upper()) == d


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sha256:",
        "sha256:" + "ab" * 31,
        "sha256:" + "ab" * 33,
        "sha256:" + "zz" * 32,
        "sha512:" + "ab" * 32,
        "SHA256:" + "ab" * 32,
        " " + "ab" * 32,
        "ab" * 31 + "a\u0663",  # an Arabic-Indic digit is alphanumeric, not hex
        "sha256:" + "ab" * 30 + "+1ab",
    ],
)
def test_parse_digest_rejects_and_names_bad_text(text: str) -> None:
    with pytest.raises(BlobError, match="not a blob digest") as info:
        parse_digest(text)
    assert repr(text)[:40] in str(info.value)


@pytest.mark.parametrize("bad", [b"", b"\x00" * 31, b"\x00" * 33])
def test_digest_hex_rejects_wrong_length(bad: bytes) -> None:
    with pytest.raises(BlobError):
        digest_hex(bad)


def test_methods_reject_malformed_digests(store: SQLiteBlobStore) -> None:
    for bad in (b"short", "sha256:" + "00" * 32):
        for call in (store.get, store.has, store.size, store.check, store.open):
            with pytest.raises(BlobError, match="not a SHA-256 digest"):
                call(bad)  # type: ignore[arg-type]
        with pytest.raises(BlobError):
            store.missing([bad])  # type: ignore[list-item]


# --------------------------------------------------------------- create and open


def test_is_a_blob_store(store: SQLiteBlobStore) -> None:
    assert isinstance(store, BlobStore)
    assert store.stats() == BlobStats(count=0, bytes=0, stored_bytes=0)


def test_create_refuses_an_existing_store(store_factory: SQLiteFactory) -> None:
    store_factory.create().close()
    with pytest.raises(VaultExistsError, match=str(store_factory.directory)):
        store_factory.create()


def test_create_refuses_leftover_files(tmp_path: Path) -> None:
    (tmp_path / LARGE_DIR).mkdir()
    with pytest.raises(VaultExistsError, match=LARGE_DIR):
        SQLiteBlobStore.create(tmp_path)
    assert not (tmp_path / DB_NAME).exists()


def test_create_makes_missing_parents_and_the_layout(tmp_path: Path) -> None:
    directory = tmp_path / "a" / "b"
    with SQLiteBlobStore.create(directory) as store:
        assert (directory / DB_NAME).is_file()
        assert (directory / LARGE_DIR).is_dir()
        con = raw(store)
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("PRAGMA page_size").fetchone()[0] == 8192
        con.close()


def test_open_missing_store_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(VaultNotFoundError, match=str(tmp_path / "nope")):
        SQLiteBlobStore(tmp_path / "nope")
    with pytest.raises(VaultNotFoundError):
        SQLiteBlobStore(tmp_path / "nope", readonly=True)
    assert not (tmp_path / "nope").exists()


def test_open_rejects_a_file_that_is_not_a_blob_store(tmp_path: Path) -> None:
    (tmp_path / DB_NAME).write_bytes(b"this is not a database, just text" * 100)
    with pytest.raises(StorageError, match=DB_NAME):
        SQLiteBlobStore(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    con = sqlite3.connect(other / DB_NAME)
    con.execute("CREATE TABLE t (x)")
    con.close()
    with pytest.raises(BlobError, match="not a blob store"):
        SQLiteBlobStore(other)


def test_constructor_validates_arguments(store_factory: SQLiteFactory) -> None:
    store_factory.create().close()
    with pytest.raises(ValueError, match="large_threshold"):
        SQLiteBlobStore(store_factory.directory, large_threshold=-1)
    with pytest.raises(ValueError, match="level"):
        SQLiteBlobStore(store_factory.directory, level=99)


def test_closed_store_raises_storage_error(store_factory: SQLiteFactory) -> None:
    store = store_factory.create()
    [digest] = store.put_many([b"x"])
    store.close()
    store.close()  # idempotent
    with pytest.raises(StorageError):
        store.get(digest)


# ------------------------------------------------------------------------ layout


def test_threshold_routes_blobs_to_rows_or_files(store: SQLiteBlobStore) -> None:
    at, above = b"a" * THRESHOLD, b"b" * (THRESHOLD + 1)
    d_at, d_above = store.put_many([at, above])
    con = raw(store)
    rows = dict(con.execute("SELECT digest, data IS NULL FROM blobs").fetchall())
    con.close()
    assert rows == {d_at: 0, d_above: 1}
    assert not large_file(store, d_at).exists()
    assert large_file(store, d_above).is_file()
    assert files_under(store.directory / LARGE_DIR) == [
        str(large_file(store, d_above).relative_to(store.directory / LARGE_DIR))
    ]


def test_iter_digests_is_ascending(store: SQLiteBlobStore) -> None:
    digests = store.put_many([json_blob(i, 50) for i in range(300)])
    assert list(store.iter_digests()) == sorted(digests)


def test_stats_match_the_rows(store: SQLiteBlobStore, tmp_path: Path) -> None:
    store.put_many([json_blob(i) for i in range(30)] + [b"", b"z" * (THRESHOLD * 3)])
    write_file(tmp_path / "f", THRESHOLD * 2)
    store.put_file(tmp_path / "f")
    store.put_many([json_blob(i) for i in range(20, 40)])
    con = raw(store)
    count, total, stored = con.execute(
        "SELECT count(*), sum(size), sum(zsize) FROM blobs"
    ).fetchone()
    con.close()
    assert store.stats() == BlobStats(count=count, bytes=total, stored_bytes=stored)
    assert count == 43


def test_check_all_reports_in_storage_order(store_factory: SQLiteFactory) -> None:
    store = store_factory.create()
    blobs = [json_blob(i) for i in range(50)]
    digests = store.put_many(blobs)
    store.close()
    victims = [digests[40], digests[3], digests[25]]
    con = raw(store)
    for victim in victims:
        con.execute("UPDATE blobs SET size = size + 1 WHERE digest = ?", (victim,))
    con.close()
    store = store_factory.open(readonly=True)
    assert [d for d, _ in store.check_all()] == sorted(victims, key=digests.index)


# -------------------------------------------------------------------- corruption


def _damage_row(store_factory: SQLiteFactory, blob: bytes, sql: str, *args: object) -> bytes:
    """Store ``blob`` among others, run ``sql`` on its row, return its digest."""
    store = store_factory.create()
    digest, *_ = store.put_many([blob, json_blob(100), json_blob(101)])
    store.close()
    con = raw(store)
    con.execute(sql, (*args, digest))
    con.close()
    return digest


def _assert_corrupt(store: SQLiteBlobStore, digest: bytes, problem: str) -> None:
    name = digest_hex(digest)
    with pytest.raises(BlobCorruptError, match=name) as info:
        store.check(digest)
    assert problem in str(info.value)
    with pytest.raises(BlobCorruptError, match=name):
        store.get(digest)
    with pytest.raises(BlobCorruptError, match=name):
        store.open(digest).read()
    reports = list(store.check_all())
    assert [d for d, _ in reports] == [digest]
    assert problem in reports[0][1]


@pytest.mark.parametrize("position", [0, 3, 5, 40, 150, -2, -1])
def test_flipped_byte_in_a_row_is_detected(store_factory: SQLiteFactory, position: int) -> None:
    blob = json_blob(1)
    store = store_factory.create()
    [digest] = store.put_many([blob])
    store.put_many([json_blob(2)])
    store.close()
    con = raw(store)
    (data,) = con.execute("SELECT data FROM blobs WHERE digest = ?", (digest,)).fetchone()
    damaged = bytearray(data)
    damaged[position] ^= 0x01
    con.execute("UPDATE blobs SET data = ? WHERE digest = ?", (bytes(damaged), digest))
    con.close()
    store = store_factory.open(readonly=True)
    problem = dict(store.check_all())[digest]
    assert problem.split(":")[0] in {"decompression failed", "size mismatch", "digest mismatch"}
    _assert_corrupt(store, digest, problem)


@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        ("UPDATE blobs SET size = size - 1 WHERE digest = ?", "size mismatch"),
        ("UPDATE blobs SET zsize = zsize + 5 WHERE digest = ?", "compressed size mismatch"),
        ("UPDATE blobs SET data = 12345 WHERE digest = ?", "not a zstd frame"),
        ("UPDATE blobs SET data = 'text' WHERE digest = ?", "compressed size mismatch"),
        ("UPDATE blobs SET data = data || x'00' WHERE digest = ?", "compressed size mismatch"),
        (
            "UPDATE blobs SET data = data || x'00', zsize = zsize + 1 WHERE digest = ?",
            "decompression failed",
        ),
    ],
)
def test_tampered_row_is_detected(store_factory: SQLiteFactory, sql: str, problem: str) -> None:
    digest = _damage_row(store_factory, json_blob(1), sql)
    _assert_corrupt(store_factory.open(), digest, problem)


def test_swapped_rows_are_a_digest_mismatch(store_factory: SQLiteFactory) -> None:
    store = store_factory.create()
    a, b = json_blob(1), json_blob(2, 2100)
    da, db = store.put_many([a, b])
    store.close()
    con = raw(store)
    data_b, size_b = con.execute("SELECT data, size FROM blobs WHERE digest = ?", (db,)).fetchone()
    con.execute(
        "UPDATE blobs SET data = ?, size = ?, zsize = ? WHERE digest = ?",
        (data_b, size_b, len(data_b), da),
    )
    con.close()
    store = store_factory.open()
    _assert_corrupt(store, da, "digest mismatch: content hashes to " + digest_hex(db))


@pytest.fixture
def large(store_factory: SQLiteFactory, tmp_path: Path) -> tuple[SQLiteBlobStore, bytes, Path]:
    """A store with one large blob (put_file) and a small one; returns (store, digest, file)."""
    store = store_factory.create()
    write_file(tmp_path / "big", 4 * THRESHOLD, seed=9)
    digest, _ = store.put_file(tmp_path / "big")
    store.put_many([json_blob(1)])
    return store, digest, large_file(store, digest)


def test_flipped_byte_in_a_large_file_is_detected(
    large: tuple[SQLiteBlobStore, bytes, Path],
) -> None:
    store, digest, path = large
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))
    problem = dict(store.check_all())[digest]
    assert problem.split(":")[0] in {"decompression failed", "size mismatch", "digest mismatch"}
    _assert_corrupt(store, digest, problem)


def test_truncated_large_file_is_detected(large: tuple[SQLiteBlobStore, bytes, Path]) -> None:
    store, digest, path = large
    with path.open("r+b") as fh:
        fh.truncate(path.stat().st_size // 2)
    _assert_corrupt(store, digest, "truncated")


def test_large_file_with_other_valid_content_is_detected(
    large: tuple[SQLiteBlobStore, bytes, Path], tmp_path: Path
) -> None:
    store, digest, path = large
    other = tmp_path / "other"
    data = bytearray((tmp_path / "big").read_bytes())
    data[0] ^= 1  # same size, different content
    other.write_bytes(bytes(data))
    other_digest, _ = store.put_file(other)
    os.replace(large_file(store, other_digest), path)
    con = raw(store)  # make the recorded sizes agree, so only the digest can tell
    con.execute("UPDATE blobs SET zsize = ? WHERE digest = ?", (path.stat().st_size, digest))
    con.close()
    problem = dict(store.check_all())[digest]
    assert problem.startswith("digest mismatch")
    with pytest.raises(BlobCorruptError, match="digest mismatch"):
        store.check(digest)


def test_deleted_large_file_is_reported(large: tuple[SQLiteBlobStore, bytes, Path]) -> None:
    store, digest, path = large
    path.unlink()
    assert store.has(digest)  # the row is there: check() is what looks at the file
    for call in (store.check, store.get, store.open):
        with pytest.raises(BlobNotFoundError, match=digest_hex(digest)):
            call(digest)
    reports = dict(store.check_all())
    assert list(reports) == [digest]
    assert reports[digest] == f"large blob file missing: {path}"


def test_open_large_verifies_at_the_end(large: tuple[SQLiteBlobStore, bytes, Path]) -> None:
    store, digest, path = large
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF  # same compressed size: open() cannot tell yet
    path.write_bytes(bytes(data))
    with store.open(digest) as fh, pytest.raises(BlobCorruptError, match=digest_hex(digest)):
        drain(fh)


# ----------------------------------------------------------- failures, cleanups


@pytest.mark.parametrize("point", ["blob.large.write", "blob.large.rename", "blob.fsync"])
def test_failed_large_write_leaves_no_file(
    store: SQLiteBlobStore, tmp_path: Path, point: str
) -> None:
    write_file(tmp_path / "big", 3 * THRESHOLD)
    before = files_under(store.directory / LARGE_DIR)
    faults.arm(point, "EIO")
    with pytest.raises(StorageError, match="Input/output error"):
        store.put_file(tmp_path / "big")
    faults.arm(point, "EIO")
    with pytest.raises(StorageError):
        store.put_many([b"q" * (THRESHOLD + 1)])
    assert files_under(store.directory / LARGE_DIR) == before


def test_write_errors_name_the_store(store: SQLiteBlobStore) -> None:
    faults.arm("blob.fsync", "ENOSPC")
    with pytest.raises(StorageError, match=str(store.directory)) as info:
        store.put_many([b"x"])
    assert "No space left on device" in str(info.value)


def test_put_file_that_is_a_directory_raises_oserror(
    store: SQLiteBlobStore, tmp_path: Path
) -> None:
    with pytest.raises(IsADirectoryError):
        store.put_file(tmp_path)


_CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from echo_archive.vault.blobs import SQLiteBlobStore
    store = SQLiteBlobStore(Path(sys.argv[1]), large_threshold=int(sys.argv[2]))
    store.put_many([b"survivor"])
    blobs = [b"doomed %d" % i for i in range(100)] + [b"D" * (int(sys.argv[2]) + 1)]
    store.put_many(blobs)
    print("not killed")
    """
)


@pytest.mark.parametrize("point", ["blob.fsync", "blob.write", "blob.large.rename"])
def test_killed_mid_commit_leaves_a_consistent_store(
    store_factory: SQLiteFactory, point: str
) -> None:
    store_factory.create().close()
    nth = 1 if point == "blob.large.rename" else 2  # the child's first batch has no large blob
    env = {**os.environ, "ECHO_FAULT": f"{point}:KILL:{nth}"}
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(store_factory.directory), str(THRESHOLD)],
        env=env,
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == -9, result.stderr.decode()
    store = store_factory.open()
    assert store.has(sha(b"survivor"))
    assert store.missing([sha(b"doomed 0"), sha(b"D" * (THRESHOLD + 1))]) == {
        sha(b"doomed 0"),
        sha(b"D" * (THRESHOLD + 1)),
    }
    assert store.stats().count == 1
    assert list(store.check_all()) == []
    assert store.put_many([b"doomed 0", b"D" * (THRESHOLD + 1)])
    assert list(store.check_all()) == []


# ------------------------------------------------------------------ concurrency


def test_reader_does_not_wait_for_a_writer_transaction(store_factory: SQLiteFactory) -> None:
    store = store_factory.create()
    [old] = store.put_many([b"committed"])
    holder = raw(store)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the write lock...
    holder.execute(
        "INSERT INTO blobs (digest, size, zsize, data) VALUES (?, 1, 1, x'00')",
        (sha(b"pending"),),
    )
    try:
        reader = store_factory.open(readonly=True)
        started = time.monotonic()
        assert reader.get(old) == b"committed"
        assert not reader.has(sha(b"pending"))  # ...and its rows are not visible
        assert list(reader.check_all()) == []
        assert reader.stats().count == 1
        assert time.monotonic() - started < 2.0  # the busy timeout is 10 s
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_reader_thread_alongside_the_writer(store_factory: SQLiteFactory) -> None:
    writer = store_factory.create()
    reader = store_factory.open(readonly=True)
    seen: list[int] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        try:
            while not done.is_set():
                seen.append(reader.stats().count)
                for digest in list(reader.iter_digests())[:20]:
                    reader.check(digest)
        except BaseException as exc:  # reported to the main thread
            errors.append(exc)

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for batch in range(20):
            writer.put_many([json_blob(batch * 100 + i, 500) for i in range(100)])
    finally:
        done.set()
        thread.join()
    assert errors == []
    assert seen == sorted(seen)
    assert reader.stats().count == 2000


# ------------------------------------------------------------------------ memory


def test_large_blobs_stream_in_bounded_memory(store: SQLiteBlobStore, tmp_path: Path) -> None:
    size = 24 * 2**20
    path = tmp_path / "huge"
    with path.open("wb") as fh:
        for i in range(size // 2**20):
            fh.write(bytes([i]) * 2**19 + os.urandom(2**19))
    tracemalloc.start()
    try:
        digest, stored = store.put_file(path)
        _, put_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        total = 0
        with store.open(digest) as fh:
            while chunk := fh.read(2**16):
                total += len(chunk)
        _, read_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        store.check(digest)
        _, check_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stored == total == size
    assert put_peak < 6 * 2**20
    assert read_peak < 6 * 2**20
    assert check_peak < 6 * 2**20
