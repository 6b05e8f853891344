"""Conformance suite for :class:`echo_archive.vault.blobs.BlobStore` backends.

Every backend must pass :class:`BlobStoreSuite`. A test module subclasses it as
``class TestMyBackend(BlobStoreSuite)`` and provides a ``store_factory`` fixture
returning a :class:`StoreFactory` for one fresh, empty backend location per test
(a temporary directory, a bucket prefix...). The factory's stores must route
blobs bigger than ``factory.large_threshold`` bytes (keep it small, e.g. 64 KiB,
so the large-blob path is fast to test) through the backend's large-blob path.

A backend must reach the blob fault points of :mod:`echo_archive.faults` at the
equivalent steps of its write path (``blob.write`` before writing a batch,
``blob.fsync`` before making it durable, ``blob.large.write`` and
``blob.large.rename`` around a large blob's object), so the fault tests here
apply to it.

Backend-specific behaviour (on-disk corruption, layout) is tested beside each
backend, not here.
"""

from __future__ import annotations

import errno
import hashlib
import json
import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from echo_archive import faults
from echo_archive.errors import BlobError, BlobNotFoundError, StorageError
from echo_archive.vault.blobs import BlobStore, digest_hex


class StoreFactory(Protocol):
    """Makes the stores of one backend at one (per-test) location.

    The fixture providing it closes, at teardown, every store it made that a
    test left open.
    """

    large_threshold: int
    """Blobs bigger than this many bytes take the large-blob path."""

    def create(self) -> BlobStore:
        """Create the empty store at this test's location and open it for writing."""
        ...

    def open(self, *, readonly: bool = False) -> BlobStore:
        """Open the store made by :meth:`create` (again), optionally read-only."""
        ...


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def json_blob(i: int, size: int = 2048) -> bytes:
    """A realistic ~``size``-byte JSON document, distinct for each ``i``."""
    rng = random.Random(i)
    words = ["signal", "archive", "entry", "merkle", "capture", "item", "source", "feed"]
    doc = {
        "id": f"{rng.getrandbits(128):032x}",
        "seq": i,
        "source": rng.choice(["rss:example.org", "mqtt:sensors/3", "http:api.example.com"]),
        "body": "",
        "metrics": {"value": rng.random(), "count": rng.randint(0, 10**6)},
    }
    base = len(json.dumps(doc))
    doc["body"] = " ".join(rng.choice(words) for _ in range(max(0, size - base) // 6))
    return json.dumps(doc, sort_keys=True).encode()


def write_file(path: Path, size: int, seed: int = 0) -> bytes:
    """Write ``size`` bytes, half compressible text and half random, to ``path``."""
    rng = random.Random(seed)
    parts = []
    total = 0
    while total < size:
        chunk = (
            rng.randbytes(4096)
            if rng.random() < 0.5
            else (b"line %d of the capture\n" % rng.randint(0, 99)) * 160
        )
        parts.append(chunk)
        total += len(chunk)
    data = b"".join(parts)[:size]
    path.write_bytes(data)
    return data


class BlobStoreSuite:
    """The behaviour every BlobStore backend must have."""

    @pytest.fixture(autouse=True)
    def _disarm_faults(self) -> Iterator[None]:
        faults.disarm()
        yield
        faults.disarm()

    # --------------------------------------------------------------- round trips

    @pytest.mark.parametrize(
        "kind",
        ["empty", "one-byte", "json-2KiB", "random-2KiB", "json-1MiB", "random-200KiB"],
    )
    def test_round_trip(self, store_factory: StoreFactory, kind: str) -> None:
        rng = random.Random(kind)
        blob = {
            "empty": b"",
            "one-byte": b"\x00",
            "json-2KiB": json_blob(1),
            "random-2KiB": rng.randbytes(2048),
            "json-1MiB": json_blob(2, 2**20),
            "random-200KiB": rng.randbytes(200 * 1024),
        }[kind]
        with store_factory.create() as store:
            [digest] = store.put_many([blob])
            assert digest == sha(blob)
            assert store.has(digest)
            assert store.get(digest) == blob
            assert store.size(digest) == len(blob)
            with store.open(digest) as fh:
                assert fh.read() == blob
            store.check(digest)
            assert list(store.check_all()) == []
            stats = store.stats()
            assert (stats.count, stats.bytes) == (1, len(blob))
            assert stats.stored_bytes > 0

    def test_one_reader_serves_many_threads_at_once(self, store_factory: StoreFactory) -> None:
        # the HTTP API reads one read-only store from its whole thread pool: a shared
        # zstd context decompressed garbage (the digest check raised BlobCorruptError)
        rng = random.Random(7)
        blobs = [json_blob(i, 4096 + rng.randrange(8192)) for i in range(64)]
        with store_factory.create() as writer:
            digests = writer.put_many(blobs)
        reader = store_factory.open(readonly=True)
        wanted = dict(zip(digests, blobs, strict=True))
        errors: list[BaseException] = []

        def read(seed: int) -> None:
            order = random.Random(seed)
            try:
                for _ in range(300):
                    digest = order.choice(digests)
                    assert reader.get(digest) == wanted[digest]
            except BaseException as exc:  # reported below, with the thread's seed
                errors.append(exc)

        threads = [threading.Thread(target=read, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert errors == []

    def test_digest_is_sha256_in_order(self, store_factory: StoreFactory) -> None:
        blobs = [json_blob(i) for i in range(20)]
        with store_factory.create() as store:
            assert store.put_many(blobs) == [hashlib.sha256(b).digest() for b in blobs]

    def test_put_many_empty_batch(self, store_factory: StoreFactory) -> None:
        with store_factory.create() as store:
            assert store.put_many([]) == []
            assert store.stats().count == 0

    def test_put_is_idempotent(self, store_factory: StoreFactory) -> None:
        big = random.Random(3).randbytes(store_factory.large_threshold + 1)
        blobs = [json_blob(i) for i in range(10)] + [big]
        with store_factory.create() as store:
            first = store.put_many(blobs)
            before = store.stats()
            assert store.put_many(blobs) == first
            assert store.put_many(list(reversed(blobs))) == list(reversed(first))
            assert store.stats() == before
            assert before.count == len(blobs)
            assert before.bytes == sum(map(len, blobs))

    def test_duplicates_within_one_batch(self, store_factory: StoreFactory) -> None:
        a, b = json_blob(1), json_blob(2)
        big = b"L" * (store_factory.large_threshold + 10)
        with store_factory.create() as store:
            digests = store.put_many([a, b, a, big, a, big, b""])
            assert digests == [sha(a), sha(b), sha(a), sha(big), sha(a), sha(big), sha(b"")]
            stats = store.stats()
            assert stats.count == 4
            assert stats.bytes == len(a) + len(b) + len(big)
            assert sorted(store.iter_digests()) == sorted({sha(a), sha(b), sha(big), sha(b"")})
            assert store.get(sha(big)) == big

    # ------------------------------------------------------------------- lookups

    def test_missing_blob_raises_not_found(self, store_factory: StoreFactory) -> None:
        absent = sha(b"never stored")
        with store_factory.create() as store:
            store.put_many([b"something else"])
            assert not store.has(absent)
            for call in (store.get, store.size, store.check, store.open):
                with pytest.raises(BlobNotFoundError, match=digest_hex(absent)):
                    call(absent)

    def test_missing_reports_exactly_the_absent(self, store_factory: StoreFactory) -> None:
        stored = [json_blob(i, 200) for i in range(700)]
        absent = [sha(b"absent %d" % i) for i in range(600)]
        with store_factory.create() as store:
            digests = store.put_many(stored)
            assert store.missing([]) == set()
            assert store.missing(digests) == set()
            assert store.missing(absent) == set(absent)
            mixed = digests[::3] + absent[::2] + digests[:5] + absent[:5]
            assert store.missing(iter(mixed)) == set(absent[::2]) | set(absent[:5])
            assert store.missing([absent[0]]) == {absent[0]}

    def test_iter_digests_covers_everything_once(self, store_factory: StoreFactory) -> None:
        big = [bytes([i]) * (store_factory.large_threshold + 1) for i in range(2)]
        with store_factory.create() as store:
            stored: list[bytes] = []
            for start in range(0, 1500, 500):
                stored += store.put_many([json_blob(i, 100) for i in range(start, start + 500)])
            stored += store.put_many(big)
            seen = list(store.iter_digests())
            assert len(seen) == len(set(seen)) == len(stored) == store.stats().count
            assert set(seen) == set(stored)

    # ----------------------------------------------------------------- put_file

    def test_put_file_small(self, store_factory: StoreFactory, tmp_path: Path) -> None:
        path = tmp_path / "small.bin"
        data = write_file(path, store_factory.large_threshold // 2, seed=1)
        empty = tmp_path / "empty.bin"
        empty.write_bytes(b"")
        with store_factory.create() as store:
            assert store.put_file(path) == (sha(data), len(data))
            assert store.get(sha(data)) == data
            assert store.put_file(empty) == (sha(b""), 0)
            assert store.get(sha(b"")) == b""

    def test_put_file_at_threshold_boundaries(
        self, store_factory: StoreFactory, tmp_path: Path
    ) -> None:
        with store_factory.create() as store:
            for delta in (-1, 0, 1):
                path = tmp_path / f"edge{delta}"
                data = write_file(path, store_factory.large_threshold + delta, seed=delta)
                assert store.put_file(path) == (sha(data), len(data))
                assert store.get(sha(data)) == data
            assert list(store.check_all()) == []

    def test_put_file_large_streams(self, store_factory: StoreFactory, tmp_path: Path) -> None:
        path = tmp_path / "large.bin"
        data = write_file(path, 5 * store_factory.large_threshold + 12345, seed=2)
        with store_factory.create() as store:
            digest, size = store.put_file(path)
            assert (digest, size) == (sha(data), len(data))
            assert store.size(digest) == len(data)
            with store.open(digest) as fh:
                parts = []
                while chunk := fh.read(7919):
                    parts.append(chunk)
            assert b"".join(parts) == data
            with store.open(digest) as fh:
                assert fh.read() == data
                assert fh.read() == b""
            assert store.get(digest) == data
            store.check(digest)
            # the same content again, by file or in memory: stored once
            assert store.put_file(path) == (digest, size)
            assert store.put_many([data]) == [digest]
            assert store.stats().count == 1

    def test_put_file_of_stored_content_dedups(
        self, store_factory: StoreFactory, tmp_path: Path
    ) -> None:
        blob = json_blob(7)
        path = tmp_path / "same.json"
        path.write_bytes(blob)
        with store_factory.create() as store:
            store.put_many([blob])
            assert store.put_file(path) == (sha(blob), len(blob))
            assert store.stats().count == 1

    def test_put_file_unreadable_source_raises_oserror(
        self, store_factory: StoreFactory, tmp_path: Path
    ) -> None:
        with store_factory.create() as store, pytest.raises(FileNotFoundError):
            store.put_file(tmp_path / "no-such-file")

    def test_open_small_is_a_binary_reader(self, store_factory: StoreFactory) -> None:
        blob = json_blob(9)
        with store_factory.create() as store:
            [digest] = store.put_many([blob])
            with store.open(digest) as fh:
                assert fh.read(10) == blob[:10]
                assert fh.read() == blob[10:]

    # -------------------------------------------------------------- persistence

    def test_persists_across_close_and_reopen(self, store_factory: StoreFactory) -> None:
        blobs = [json_blob(i) for i in range(50)]
        big = random.Random(5).randbytes(store_factory.large_threshold * 2)
        with store_factory.create() as store:
            digests = store.put_many([*blobs, big])
            stats = store.stats()
        with store_factory.open() as store:
            assert store.stats() == stats
            assert [store.get(d) for d in digests] == [*blobs, big]
            assert list(store.check_all()) == []
            more = store.put_many([json_blob(1000)])
        with store_factory.open(readonly=True) as store:
            assert store.has(more[0])
            assert store.stats().count == stats.count + 1

    def test_readonly_instance_sees_commits_and_cannot_write(
        self, store_factory: StoreFactory, tmp_path: Path
    ) -> None:
        path = tmp_path / "f.bin"
        write_file(path, 100)
        with store_factory.create() as writer:
            first = writer.put_many([json_blob(1)])
            with store_factory.open(readonly=True) as reader:
                assert reader.get(first[0]) == json_blob(1)
                second = writer.put_many([json_blob(2)])
                assert reader.get(second[0]) == json_blob(2)  # sees later commits too
                assert reader.stats() == writer.stats()
                with pytest.raises(BlobError):
                    reader.put_many([json_blob(3)])
                with pytest.raises(BlobError):
                    reader.put_file(path)
                assert not writer.has(sha(json_blob(3)))
                assert list(reader.check_all()) == []

    # ------------------------------------------------------------------- checks

    def test_check_all_progress_and_sampling(self, store_factory: StoreFactory) -> None:
        with store_factory.create() as store:
            store.put_many([json_blob(i, 64) for i in range(2500)])
            calls: list[int] = []
            assert list(store.check_all(progress=calls.append)) == []
            assert calls[-1] == 2500
            assert calls == sorted(calls)
            assert len(calls) >= 2  # periodic, not only at the end
            sampled: list[int] = []
            assert list(store.check_all(sample=0.2, progress=sampled.append)) == []
            assert 250 < sampled[-1] < 750  # binomial(2500, 0.2): mean 500, sd 20
            for bad in (0.0, -0.5, 1.5):
                with pytest.raises(ValueError, match="sample"):
                    store.check_all(sample=bad)

    def test_check_all_on_empty_store(self, store_factory: StoreFactory) -> None:
        calls: list[int] = []
        with store_factory.create() as store:
            assert list(store.check_all(progress=calls.append)) == []
        assert calls in ([], [0])

    # --------------------------------------------------------- fault injection

    @pytest.mark.parametrize(
        ("point", "action"),
        [("blob.write", "EIO"), ("blob.fsync", "ENOSPC"), ("blob.fsync", "EIO")],
    )
    def test_failed_batch_is_invisible_and_retry_succeeds(
        self, store_factory: StoreFactory, point: str, action: str
    ) -> None:
        earlier = [json_blob(i) for i in range(5)]
        big = random.Random(8).randbytes(store_factory.large_threshold + 100)
        batch = [json_blob(i) for i in range(100, 200)] + [earlier[0], big]
        with store_factory.create() as store:
            store.put_many(earlier)
            stats = store.stats()
            faults.arm(point, action)
            with pytest.raises(StorageError) as info:
                store.put_many(batch)
            assert isinstance(info.value.__cause__, OSError)
            assert info.value.__cause__.errno == getattr(errno, action)
            faults.disarm()
            assert store.stats() == stats
            new = {sha(b) for b in batch} - {sha(earlier[0])}
            assert store.missing({sha(b) for b in batch}) == new
        with store_factory.open() as store:
            assert store.stats() == stats
            assert store.missing(new) == new
            assert list(store.check_all()) == []
            assert store.put_many(batch) == [sha(b) for b in batch]
            assert store.missing(new) == set()
            assert store.get(sha(big)) == big
            assert list(store.check_all()) == []

    @pytest.mark.parametrize("point", ["blob.large.write", "blob.large.rename", "blob.fsync"])
    def test_failed_large_put_file_is_invisible(
        self, store_factory: StoreFactory, tmp_path: Path, point: str
    ) -> None:
        path = tmp_path / "large.bin"
        data = write_file(path, 3 * store_factory.large_threshold, seed=4)
        with store_factory.create() as store:
            faults.arm(point, "ENOSPC")
            with pytest.raises(StorageError) as info:
                store.put_file(path)
            assert isinstance(info.value.__cause__, OSError)
            faults.disarm()
            assert not store.has(sha(data))
            assert store.stats().count == 0
        with store_factory.open() as store:
            assert not store.has(sha(data))
            assert list(store.check_all()) == []
            assert store.put_file(path) == (sha(data), len(data))
            assert store.get(sha(data)) == data

    @pytest.mark.parametrize("point", ["blob.large.write", "blob.large.rename"])
    def test_failed_large_blob_in_batch_fails_whole_batch(
        self, store_factory: StoreFactory, point: str
    ) -> None:
        small = json_blob(1)
        big = b"B" * (store_factory.large_threshold + 1)
        with store_factory.create() as store:
            faults.arm(point, "EIO")
            with pytest.raises(StorageError):
                store.put_many([small, big])
            faults.disarm()
            assert store.missing([sha(small), sha(big)]) == {sha(small), sha(big)}
            assert store.put_many([small, big]) == [sha(small), sha(big)]
            assert list(store.check_all()) == []

    # ------------------------------------------------------------------ property

    def test_random_batches_round_trip(self, store_factory: StoreFactory) -> None:
        # One store for all examples (content addressing makes that safe); the
        # property is an inner function so each backend's class runs its own.
        store = store_factory.create()

        @settings(max_examples=40, deadline=None)
        @given(
            pool=st.lists(st.binary(max_size=300), min_size=1, max_size=8),
            picks=st.lists(st.integers(min_value=0, max_value=7), max_size=20),
        )
        def round_trip(pool: list[bytes], picks: list[int]) -> None:
            batch = [pool[i % len(pool)] for i in picks]
            digests = store.put_many(batch)
            assert digests == [sha(b) for b in batch]
            for blob, digest in zip(batch, digests, strict=True):
                assert store.get(digest) == blob
                assert store.size(digest) == len(blob)
            assert store.missing(digests) == set()
            everything = set(store.iter_digests())
            assert set(digests) <= everything
            assert store.stats().count == len(everything)

        round_trip()
