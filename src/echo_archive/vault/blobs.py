"""The vault's content-addressed blob store.

Terms:

blob
    An immutable byte string stored in the vault (a capture's raw bytes, an item's
    JSON...). It is written once and never changed or deleted by this module;
    storing the same bytes again stores nothing new.
digest
    A blob's address: the SHA-256 of its *uncompressed* bytes (32 bytes). Its text
    form is ``sha256:`` followed by 64 lowercase hex digits (:func:`digest_hex`,
    :func:`parse_digest`). Every read re-hashes the bytes and compares them with
    the digest, so a blob that comes back is the blob that was stored.
large blob
    A blob bigger than the store's ``large_threshold`` (bytes; 16 MiB by default).
    It is kept as its own zstd file instead of a database row, written and read
    streaming so it never has to fit in memory. Its row records it with no data,
    so counts, iteration and checks cover small and large blobs alike.
orphan
    A blob that no log entry references, e.g. because a crash stopped a commit
    after its blobs were durable but before its entries were. Orphans are harmless
    (nothing points to them) and are detected elsewhere, by comparing the log with
    :meth:`BlobStore.iter_digests`; this module knows nothing about entries.

Layout of a :class:`SQLiteBlobStore` directory::

    blobs.sqlite            rows of every blob (+ -wal, -shm while in use)
    large/ab/abcd...ef.zst  one zstd file per large blob (first 2 hex digits, then all 64)
    large/.tmp-*.zst        a large blob being written; a crash can leave one
                            behind, and it may be deleted while no writer runs

Small blobs are zstd-compressed rows of a SQLite database in WAL mode with
``synchronous=FULL``: one batch is one transaction, so it costs one fsync and
is either wholly durable or wholly absent. A large blob's file is made durable
(fsync, rename, fsync of its directory) before its row commits, so a committed
row never points to a missing file. One writer thread uses a store; readers open
their own read-only instance (another thread or process) and never wait for the
writer.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO, Final, Protocol, Self, runtime_checkable

import zstandard

from echo_archive import faults
from echo_archive.errors import (
    BlobCorruptError,
    BlobError,
    BlobNotFoundError,
    StorageError,
    VaultExistsError,
    VaultNotFoundError,
)
from echo_archive.vault.catalog import readonly_uri

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = [
    "DB_NAME",
    "DEFAULT_LARGE_THRESHOLD",
    "DEFAULT_LEVEL",
    "DIGEST_PREFIX",
    "LARGE_DIR",
    "BlobStats",
    "BlobStore",
    "SQLiteBlobStore",
    "digest_hex",
    "parse_digest",
]

DIGEST_PREFIX: Final = "sha256:"
"""Prefix of a digest's text form."""

DB_NAME: Final = "blobs.sqlite"
"""Name of the database file inside a store directory."""

LARGE_DIR: Final = "large"
"""Name of the folder of large-blob files inside a store directory."""

DEFAULT_LARGE_THRESHOLD: Final = 16 * 2**20
"""Blobs bigger than this many bytes are stored as files by default."""

DEFAULT_LEVEL: Final = 3
"""Default zstd compression level."""

_DIGEST_SIZE: Final = 32
_HEX_SIZE: Final = 2 * _DIGEST_SIZE
_APPLICATION_ID: Final = 0x45434842  # "ECHB": PRAGMA application_id of blobs.sqlite
_FORMAT_VERSION: Final = 1  # PRAGMA user_version of blobs.sqlite

# Measured with 1,000,000 blobs of ~2 KiB JSON (~1.3 KiB compressed) in batches of
# 1000 on 2 cores: a rowid table with a UNIQUE index on the digest sustained ~42,000
# blobs/s (page 8192), a WITHOUT ROWID table keyed by digest ~17,000/s. Random
# digests scatter the ~1.3 KiB rows of a WITHOUT ROWID table over all its leaf pages,
# so each commit rewrites ~1000 full pages; in the rowid table rows append to the
# last pages and only the small (32-byte key) index takes random writes. 4096-byte
# pages wasted ~25% of the file (2.1 GB vs 1.7 GB) for no speed; 16384 was no faster.
_SCHEMA: Final = (
    """CREATE TABLE blobs (
    id     INTEGER PRIMARY KEY,   -- storage order: the order blobs were first stored
    digest BLOB NOT NULL UNIQUE,  -- SHA-256 of the uncompressed bytes (32 bytes)
    size   INTEGER NOT NULL,      -- uncompressed size, bytes
    zsize  INTEGER NOT NULL,      -- stored (compressed) size, bytes: of data or of the file
    data   BLOB                   -- one zstd frame, or NULL for a large blob (a file)
)""",
    """CREATE TABLE blob_totals (
    id           INTEGER PRIMARY KEY CHECK (id = 0),
    count        INTEGER NOT NULL,  -- rows in blobs
    bytes        INTEGER NOT NULL,  -- sum of size
    stored_bytes INTEGER NOT NULL   -- sum of zsize
)""",
    "INSERT INTO blob_totals VALUES (0, 0, 0, 0)",
)
_PAGE_SIZE: Final = 8192  # bytes; see the measurements above
_WRITER_CACHE_KIB: Final = 32 * 1024  # page cache of the writer (64 MiB measured no faster)
_READER_CACHE_KIB: Final = 16 * 1024  # page cache of a read-only instance
# A checkpoint every 10,000 pages (~80 MB of WAL) instead of SQLite's 1000 lets a page
# that several batches touch (digest index pages) be copied back once: +15% measured.
_WAL_AUTOCHECKPOINT: Final = 10_000  # pages
_BUSY_TIMEOUT: Final = 10.0  # seconds to wait for a lock (the rare WAL checkpoint/recovery)
_CHUNK: Final = 1 << 20  # bytes read or decompressed per step when streaming
_PROGRESS_EVERY: Final = 1000  # blobs between two progress() calls in check_all

_INSERT: Final = "INSERT INTO blobs (digest, size, zsize, data) VALUES (?, ?, ?, ?)"
_ADD_TOTALS: Final = (
    "UPDATE blob_totals SET count = count + ?, bytes = bytes + ?,"
    " stored_bytes = stored_bytes + ? WHERE id = 0"
)
_SELECT_ONE: Final = "SELECT size, zsize, data FROM blobs WHERE digest = ?"
_SCAN: Final = "SELECT digest, size, zsize, data FROM blobs ORDER BY id"
_SCAN_SAMPLE: Final = (
    "SELECT digest, size, zsize, data FROM blobs WHERE (random() & 4294967295) < ? ORDER BY id"
)
# Existence checks send the digests in IN lists of a few fixed lengths (short lists
# are padded by repeating a digest) so every query text is a constant, prepared once.
_IN_SIZES: Final = (1, 8, 64, 256)
_IN_QUERIES: Final = {
    n: "SELECT digest FROM blobs WHERE digest IN (" + ", ".join("?" * n) + ")"  # noqa: S608 (only "?" placeholders)
    for n in _IN_SIZES
}
# The same lists, counting: IN is set membership, so padding repeats are not counted twice.
# Measured on 50,000 stored blobs, batches of 1,000 all present (the usual case of a
# log append whose blobs were stored first): 6.0 ms counting vs 14.8 ms fetching the rows.
_COUNT_QUERIES: Final = {
    n: "SELECT count(*) FROM blobs WHERE digest IN (" + ", ".join("?" * n) + ")"  # noqa: S608 (only "?" placeholders)
    for n in _IN_SIZES
}


def digest_hex(d: bytes) -> str:
    """Return the text form of a digest.

    Args:
        d: a 32-byte SHA-256 digest.

    Returns:
        ``"sha256:"`` followed by 64 lowercase hex digits.

    Raises:
        BlobError: ``d`` is not 32 bytes.

    """
    if not isinstance(d, bytes) or len(d) != _DIGEST_SIZE:
        raise BlobError(f"not a SHA-256 digest (32 bytes): {d!r:.100}")
    return DIGEST_PREFIX + d.hex()


def parse_digest(s: str) -> bytes:
    """Parse a digest from its text form.

    Args:
        s: ``sha256:`` followed by 64 hex digits, or the 64 hex digits alone
            (either case).

    Returns:
        The 32-byte digest.

    Raises:
        BlobError: ``s`` is not a digest; the message quotes it.

    """
    text = s[len(DIGEST_PREFIX) :] if s.startswith(DIGEST_PREFIX) else s
    if len(text) == _HEX_SIZE and text.isascii() and text.isalnum():
        with contextlib.suppress(ValueError):
            return bytes.fromhex(text)
    raise BlobError(f"not a blob digest: {s!r:.100} (expected sha256:<64 hex digits>)")


def _require_digest(d: object) -> bytes:
    if isinstance(d, bytes) and len(d) == _DIGEST_SIZE:
        return d
    raise BlobError(f"not a SHA-256 digest (32 bytes): {d!r:.100}")


@dataclass(frozen=True, slots=True)
class BlobStats:
    """Totals of a blob store.

    Attributes:
        count: number of distinct blobs (small and large).
        bytes: sum of their uncompressed sizes, bytes.
        stored_bytes: sum of their compressed sizes as stored, bytes (database
            rows' data and large-blob files; excludes database overhead).

    """

    count: int
    bytes: int
    stored_bytes: int


@runtime_checkable
class BlobStore(Protocol):
    """A content-addressed, write-once store of blobs (the backend interface).

    Every backend (SQLite today, an object store tomorrow) implements these
    methods with the same meaning; ``tests/blobstore_suite.py`` is the suite each
    one must pass. One thread writes to a store; readers use their own instances.
    """

    def put_many(self, blobs: Sequence[bytes]) -> list[bytes]:
        """Store a batch of blobs durably, each distinct content once.

        Args:
            blobs: the blobs' bytes. Repeats within the batch, and blobs already
                in the store, are stored once.

        Returns:
            The digest of each blob, in the order given (repeats included).

        Raises:
            StorageError: the batch could not be stored (disk full, I/O error...);
                none of it is visible.
            BlobError: the store is read-only.

        """
        ...

    def put_file(self, path: Path) -> tuple[bytes, int]:
        """Store a file's content as one blob, reading it once, streaming.

        Args:
            path: the file to store.

        Returns:
            ``(digest, size)``: the blob's digest and its size in bytes.

        Raises:
            OSError: ``path`` cannot be opened or read.
            StorageError: the blob could not be stored; it is not visible.
            BlobError: the store is read-only.

        """
        ...

    def get(self, digest: bytes) -> bytes:
        """Return a blob's bytes, verified against its digest.

        Args:
            digest: the blob's 32-byte digest.

        Returns:
            The uncompressed bytes.

        Raises:
            BlobNotFoundError: no such blob (or its large file is gone).
            BlobCorruptError: the stored bytes do not decompress or do not hash
                to ``digest``.
            StorageError: the store could not be read.

        """
        ...

    def open(self, digest: bytes) -> BinaryIO:
        """Open a blob for streaming reads of its uncompressed bytes.

        The content is verified as it is read: the read that reaches the end
        raises :class:`BlobCorruptError` if the bytes do not hash to ``digest``.

        Args:
            digest: the blob's 32-byte digest.

        Returns:
            A readable binary file object; close it when done.

        Raises:
            BlobNotFoundError: no such blob (or its large file is gone).
            BlobCorruptError: the blob is visibly corrupt already (or, later,
                from ``read``).
            StorageError: the store could not be read.

        """
        ...

    def has(self, digest: bytes) -> bool:
        """Return whether a blob is stored.

        Args:
            digest: a 32-byte digest.

        Returns:
            True if the store has a blob with this digest.

        Raises:
            StorageError: the store could not be read.

        """
        ...

    def missing(self, digests: Iterable[bytes]) -> set[bytes]:
        """Return which of many digests the store does not have (batched lookups).

        Args:
            digests: 32-byte digests, in any number.

        Returns:
            The digests among ``digests`` with no stored blob.

        Raises:
            StorageError: the store could not be read.

        """
        ...

    def size(self, digest: bytes) -> int:
        """Return a blob's uncompressed size.

        Args:
            digest: the blob's 32-byte digest.

        Returns:
            The size, bytes.

        Raises:
            BlobNotFoundError: no such blob.
            StorageError: the store could not be read.

        """
        ...

    def iter_digests(self) -> Iterator[bytes]:
        """Iterate over the digests of all stored blobs, each exactly once.

        Returns:
            An iterator over 32-byte digests in the backend's storage order.

        Raises:
            StorageError: the store could not be read.

        """
        ...

    def check(self, digest: bytes) -> None:
        """Re-read one blob, decompress it and re-hash it.

        Args:
            digest: the blob's 32-byte digest.

        Raises:
            BlobNotFoundError: no such blob (or its large file is gone).
            BlobCorruptError: the blob is corrupt; the message names the digest
                and what mismatched (decompression, size or digest).
            StorageError: the store could not be read.

        """
        ...

    def check_all(
        self, sample: float = 1.0, progress: Callable[[int], None] | None = None
    ) -> Iterator[tuple[bytes, str]]:
        """Check every blob (or a random fraction), streaming in storage order.

        Args:
            sample: the fraction of blobs to check, in (0, 1]; each blob is
                picked independently with this probability.
            progress: called with the number of blobs checked so far, every
                so often and once at the end.

        Returns:
            An iterator yielding ``(digest, problem)`` for each bad blob.

        Raises:
            ValueError: ``sample`` is not in (0, 1].
            StorageError: the store could not be read.

        """
        ...

    def stats(self) -> BlobStats:
        """Return the store's totals.

        Returns:
            Count and sizes (bytes) of the stored blobs.

        Raises:
            StorageError: the store could not be read.

        """
        ...

    def close(self) -> None:
        """Release the store's resources; the instance is unusable afterwards."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class _TempLarge:
    """A large blob written to a temporary file, ready to be renamed into place."""

    path: Path
    size: int  # uncompressed, bytes
    zsize: int  # the file's size, bytes


class _SourceReadError(Exception):
    """Carries an OSError from reading put_file's source past the storage handlers."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


class _LocalStore:
    """What the two local :class:`BlobStore` backends share: writes' front half, lifecycle.

    :class:`SQLiteBlobStore` and
    :class:`~echo_archive.vault.blobdir.DirectoryBlobStore` both hash a batch
    and hand it to their own ``_store``, and both read a ``put_file`` source
    once, holding up to ``large_threshold`` bytes in memory and streaming the
    rest through ``_write_temp`` (compressed to a temporary file as it is
    read). A subclass sets ``_dir``, ``_readonly`` and ``_large_threshold``
    and implements ``_store``, ``_write_temp`` and ``close``.
    """

    _dir: Path
    _readonly: bool
    _large_threshold: int
    _threads: threading.local | None = None

    @property
    def _dctx(self) -> zstandard.ZstdDecompressor:
        """The calling thread's zstd decompressor (made at its first read).

        A zstd context must never be used by two threads at once
        (python-zstandard's documentation, "Thread and Object Reuse Safety"):
        a shared one decompressed garbage under the HTTP API's thread pool (the
        digest check caught it: a 500, no wrong byte served). Each reading
        thread gets its own.
        """
        local = self._threads
        if local is None:
            local = self._threads = threading.local()
        dctx: zstandard.ZstdDecompressor | None = getattr(local, "dctx", None)
        if dctx is None:
            dctx = local.dctx = zstandard.ZstdDecompressor()
        return dctx

    @property
    def directory(self) -> Path:
        """The store directory."""
        return self._dir

    @property
    def readonly(self) -> bool:
        """Whether this instance refuses writes (opened read-only)."""
        return self._readonly

    @property
    def large_threshold(self) -> int:
        """Blobs bigger than this many bytes are written and read streaming, as files."""
        return self._large_threshold

    def put_many(self, blobs: Sequence[bytes]) -> list[bytes]:
        """Store a batch of blobs durably, each distinct content once.

        Args:
            blobs: the blobs' bytes (any bytes-like objects). Repeats within the
                batch, and blobs already in the store, are stored once.

        Returns:
            The 32-byte digest of each blob, in the order given (repeats included).

        Raises:
            StorageError: the batch could not be stored (disk full, I/O error...);
                none of it is visible, and the files it wrote are removed.
            BlobError: the store is read-only.

        """
        self._require_writable()
        sha256 = hashlib.sha256
        digests = [sha256(blob).digest() for blob in blobs]
        if digests:
            # dict keeps first-seen order and one value per digest (equal digests, equal bytes)
            self._store(dict(zip(digests, blobs, strict=True)))
        return digests

    def put_file(self, path: Path) -> tuple[bytes, int]:
        """Store a file's content as one blob, reading it once, streaming.

        The file is hashed as it is read. If it ends within ``large_threshold``
        bytes it is stored like a :meth:`put_many` blob (that much is held in
        memory); otherwise it is compressed to a temporary file as it is read,
        then put in place, so memory use stays bounded whatever the file's size.

        Args:
            path: the file to store.

        Returns:
            ``(digest, size)``: the blob's 32-byte digest and its size, bytes.

        Raises:
            OSError: ``path`` cannot be opened or read (its errno kept).
            StorageError: the blob could not be stored; it is not visible.
            BlobError: the store is read-only.

        """
        self._require_writable()
        path = Path(path)
        hasher = hashlib.sha256()
        head: list[bytes] = []
        size = 0
        with open(path, "rb") as src:  # OSError here is the caller's: propagate it
            while size <= self._large_threshold:
                chunk = src.read(min(_CHUNK, self._large_threshold + 1 - size))
                if not chunk:
                    digest = hasher.digest()
                    self._store({digest: b"".join(head)})
                    return digest, size
                hasher.update(chunk)
                head.append(chunk)
                size += len(chunk)
            try:
                temp = self._write_temp(_read_rest(head, src, hasher), -1)
            except _SourceReadError as exc:
                raise exc.error from None
            except (OSError, zstandard.ZstdError) as exc:
                raise StorageError(f"cannot store {path} in {self._dir}: {exc}") from exc
        digest = hasher.digest()
        self._store({digest: temp})
        return digest, temp.size

    def _store(self, batch: dict[bytes, bytes | _TempLarge]) -> None:
        """Store the new blobs of ``batch`` (digest → bytes or prepared file), durably."""
        raise NotImplementedError

    def _write_temp(self, chunks: Iterable[bytes | memoryview], size: int) -> _TempLarge:
        """Compress ``chunks`` (``size`` bytes, -1: unknown) to a temporary file, fsync'd."""
        raise NotImplementedError

    def _require_writable(self) -> None:
        if self._readonly:
            raise BlobError(f"blob store {self._dir} is open read-only")

    def close(self) -> None:
        """Release the store (idempotent); the instance is unusable afterwards."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class SQLiteBlobStore(_LocalStore):
    """A :class:`BlobStore` in a local directory: SQLite rows plus large-blob files.

    An instance holds one SQLite connection (SQLite's serialized threading
    mode), one zstd compressor (writes come from one thread: the vault's
    writer) and one zstd decompressor per thread that reads (a zstd context
    must never be used by two threads at once: python-zstandard's
    documentation, "Thread and Object Reuse Safety"; the HTTP API reads one
    reader from its whole thread pool). One writer instance writes; any
    number of read-only instances (``readonly=True``, in other threads or
    processes) read concurrently without blocking it or being blocked by it.

    Args:
        directory: the store directory (made by :meth:`create`).
        readonly: open the database read-only (``mode=ro``); writes raise
            :class:`BlobError`.
        large_threshold: blobs bigger than this many bytes are stored as files.
        level: zstd compression level for new blobs.

    Raises:
        VaultNotFoundError: no blob store exists at ``directory``.
        BlobError: the database is not a blob store of a known format.
        StorageError: the database could not be opened.
        ValueError: ``large_threshold`` or ``level`` is out of range.

    """

    def __init__(
        self,
        directory: Path,
        *,
        readonly: bool = False,
        large_threshold: int = DEFAULT_LARGE_THRESHOLD,
        level: int = DEFAULT_LEVEL,
    ) -> None:
        if large_threshold < 0:
            raise ValueError(f"large_threshold must be >= 0 bytes, not {large_threshold}")
        if level > zstandard.MAX_COMPRESSION_LEVEL:
            raise ValueError(f"zstd level must be <= {zstandard.MAX_COMPRESSION_LEVEL}: {level}")
        self._dir = Path(directory)
        self._db_path = self._dir / DB_NAME
        self._large = self._dir / LARGE_DIR
        self._readonly = readonly
        self._large_threshold = large_threshold
        self._level = level
        if not self._db_path.is_file():
            raise VaultNotFoundError(
                f"no blob store at {self._dir}: {self._db_path} does not exist"
            )
        self._con = self._connect()
        # One compressor and decompressor for all small blobs (a context is costly to
        # make). Streams (large blobs, open()) use their own, as they can interleave.
        self._cctx = zstandard.ZstdCompressor(level=level)
        self._threads = threading.local()  # each reading thread's decompressor (_LocalStore)

    def _connect(self) -> sqlite3.Connection:
        con: sqlite3.Connection | None = None
        try:
            # a reader writes nothing, not even a -shm on a read-only filesystem
            uri = (
                readonly_uri(self._db_path)
                if self._readonly
                else f"{self._db_path.resolve().as_uri()}?mode=rw"
            )
            con = sqlite3.connect(
                uri,
                uri=True,
                timeout=_BUSY_TIMEOUT,
                isolation_level=None,  # transactions are explicit: BEGIN IMMEDIATE ... COMMIT
                check_same_thread=False,  # a read-only instance may be handed to a thread
            )
            app_id = con.execute("PRAGMA application_id").fetchone()[0]
            version = con.execute("PRAGMA user_version").fetchone()[0]
            if app_id != _APPLICATION_ID or version != _FORMAT_VERSION:
                raise BlobError(
                    f"{self._db_path} is not a blob store of a known format"
                    f" (application_id {app_id:#x}, version {version})"
                )
            if self._readonly:
                con.execute(f"PRAGMA cache_size = -{_READER_CACHE_KIB}")
                con.execute("PRAGMA query_only = ON")
            else:
                mode_now = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if mode_now != "wal":
                    raise StorageError(f"cannot put {self._db_path} in WAL mode (got {mode_now})")
                con.execute("PRAGMA synchronous = FULL")  # a COMMIT returns once durable
                con.execute(f"PRAGMA cache_size = -{_WRITER_CACHE_KIB}")
                con.execute(f"PRAGMA wal_autocheckpoint = {_WAL_AUTOCHECKPOINT}")
            # A TEXT value where a blob should be (damage, tampering) must come back as
            # bytes to be reported as corrupt, not fail to decode as UTF-8.
            con.text_factory = bytes
        except BaseException as exc:
            if con is not None:
                con.close()
            if isinstance(exc, sqlite3.Error):
                raise StorageError(f"cannot open blob store {self._db_path}: {exc}") from exc
            raise
        return con

    @classmethod
    def create(
        cls,
        directory: Path,
        *,
        large_threshold: int = DEFAULT_LARGE_THRESHOLD,
        level: int = DEFAULT_LEVEL,
    ) -> SQLiteBlobStore:
        """Create an empty store in ``directory`` (made if needed) and open it for writing.

        Args:
            directory: where to create ``blobs.sqlite`` and ``large/``.
            large_threshold: as for the constructor, bytes.
            level: as for the constructor.

        Returns:
            The new store, open for writing.

        Raises:
            VaultExistsError: a blob store (or some of its files) already exists there.
            StorageError: the files could not be created; those it made are removed.

        """
        directory = Path(directory)
        db_path = directory / DB_NAME
        large = directory / LARGE_DIR
        if directory.exists() and not directory.is_dir():
            raise StorageError(f"cannot create blob store in {directory}: not a directory")
        for p in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm"), large):
            if p.exists():
                raise VaultExistsError(f"a blob store already exists at {directory}: {p} exists")
        made: list[Path] = []
        try:
            directory.mkdir(parents=True, exist_ok=True)
            # O_EXCL claims the file: two racing creators cannot both succeed.
            os.close(os.open(db_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            made.append(db_path)
            large.mkdir()
            made.append(large)
            con = sqlite3.connect(
                f"{db_path.resolve().as_uri()}?mode=rw", uri=True, isolation_level=None
            )
            try:
                con.execute(f"PRAGMA page_size = {_PAGE_SIZE}")
                con.execute("PRAGMA journal_mode = WAL")
                con.execute("PRAGMA synchronous = FULL")
                con.execute("BEGIN IMMEDIATE")
                for statement in _SCHEMA:
                    con.execute(statement)
                con.execute(f"PRAGMA application_id = {_APPLICATION_ID}")
                con.execute(f"PRAGMA user_version = {_FORMAT_VERSION}")
                con.execute("COMMIT")
            finally:
                con.close()
            _fsync_dir(directory)
            _fsync_dir(directory.parent)
        except FileExistsError as exc:
            _remove_made(made)
            raise VaultExistsError(f"a blob store already exists at {directory}: {exc}") from exc
        except (OSError, sqlite3.Error) as exc:
            _remove_made(made)
            raise StorageError(f"cannot create blob store in {directory}: {exc}") from exc
        return cls(directory, large_threshold=large_threshold, level=level)

    # ------------------------------------------------------------------ properties

    def __repr__(self) -> str:
        mode = "ro" if self._readonly else "rw"
        return f"SQLiteBlobStore({str(self._dir)!r}, {mode})"

    # ---------------------------------------------------------------------- writes

    def _store(self, batch: dict[bytes, bytes | _TempLarge]) -> None:
        """Store the new blobs of ``batch`` (digest → bytes or prepared file) in one transaction."""
        con = self._con
        installed: list[bytes] = []
        try:
            try:
                con.execute("BEGIN IMMEDIATE")
                present = self._present(list(batch))
                rows: list[tuple[bytes, int, int, bytes | None]] = []
                compress = self._cctx.compress
                threshold = self._large_threshold
                for digest, blob in batch.items():
                    if digest in present:
                        continue
                    if isinstance(blob, _TempLarge):
                        self._install(blob.path, digest)
                        installed.append(digest)
                        rows.append((digest, blob.size, blob.zsize, None))
                        continue
                    size = len(blob)
                    if size > threshold:
                        temp = self._write_temp(_slices(blob), size)
                        self._install(temp.path, digest)
                        installed.append(digest)
                        rows.append((digest, size, temp.zsize, None))
                    else:
                        data = compress(blob)
                        rows.append((digest, size, len(data), data))
                if rows:
                    faults.point("blob.write")
                    con.executemany(_INSERT, rows)
                    con.execute(
                        _ADD_TOTALS,
                        (len(rows), sum(r[1] for r in rows), sum(r[2] for r in rows)),
                    )
                    faults.point("blob.fsync")
                con.execute("COMMIT")
            except BaseException:
                self._abort(installed)
                raise
            finally:
                for blob in batch.values():  # prepared files not renamed into place
                    if isinstance(blob, _TempLarge):
                        _unlink_quietly(blob.path)
        except (OSError, sqlite3.Error, zstandard.ZstdError) as exc:
            raise StorageError(
                f"cannot store {len(batch)} blob(s) in {self._db_path}: {exc}"
            ) from exc

    def _abort(self, installed: list[bytes]) -> None:
        """Roll back a failed batch and remove the large files it put in place."""
        with contextlib.suppress(sqlite3.Error):
            if self._con.in_transaction:
                self._con.execute("ROLLBACK")
        for digest in installed:
            with contextlib.suppress(sqlite3.Error):
                if not self._present([digest]):  # leave any file a committed row uses
                    _unlink_quietly(self._large_path(digest))

    def _write_temp(self, chunks: Iterable[bytes | memoryview], size: int = -1) -> _TempLarge:
        """Compress ``chunks`` to a new temporary file in ``large/`` and fsync it."""
        faults.point("blob.large.write")
        self._large.mkdir(exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".tmp-", suffix=".zst", dir=self._large)
        temp = Path(name)
        try:
            os.fchmod(fd, 0o644)  # like blobs.sqlite (mkstemp makes it 0600)
            with open(fd, "wb") as fh:
                cobj = zstandard.ZstdCompressor(level=self._level).compressobj(size=size)
                total = 0
                for chunk in chunks:
                    total += len(chunk)
                    fh.write(cobj.compress(chunk))
                fh.write(cobj.flush())
                fh.flush()
                os.fsync(fh.fileno())
                zsize = fh.tell()
        except BaseException:
            _unlink_quietly(temp)
            raise
        return _TempLarge(temp, total, zsize)

    def _install(self, temp: Path, digest: bytes) -> None:
        """Rename a temporary large-blob file to its final name, durably."""
        final = self._large_path(digest)
        try:
            faults.point("blob.large.rename")
            parent_new = not final.parent.is_dir()
            final.parent.mkdir(exist_ok=True)
            if parent_new:
                _fsync_dir(self._large)
            os.replace(temp, final)
        except BaseException:
            _unlink_quietly(temp)
            raise
        _fsync_dir(final.parent)
        if temp.parent != final.parent:
            _fsync_dir(temp.parent)

    def _present(self, digests: list[bytes]) -> set[bytes]:
        """Return which of ``digests`` have a row (batched IN queries)."""
        found: set[bytes] = set()
        con = self._con
        for n, params in _in_lists(digests):
            found.update(row[0] for row in con.execute(_IN_QUERIES[n], params))
        return found

    def _count_present(self, digests: list[bytes]) -> int:
        """Return how many of the distinct ``digests`` have a row (batched IN counts)."""
        con = self._con
        return sum(
            con.execute(_COUNT_QUERIES[n], params).fetchone()[0] for n, params in _in_lists(digests)
        )

    def _row(self, digest: bytes) -> tuple[int, int, bytes | None]:
        _require_digest(digest)
        try:
            row = self._con.execute(_SELECT_ONE, (digest,)).fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read blob store {self._db_path}: {exc}") from exc
        if row is None:
            raise BlobNotFoundError(f"no blob {digest_hex(digest)} in {self._dir}")
        size, zsize, data = row
        return size, zsize, data

    def get(self, digest: bytes) -> bytes:
        """Return a blob's bytes, verified against its digest.

        Args:
            digest: the blob's 32-byte digest.

        Returns:
            The uncompressed bytes (a large blob is read whole into memory).

        Raises:
            BlobNotFoundError: no such blob, or its large file is gone.
            BlobCorruptError: the stored bytes do not decompress or do not hash
                to ``digest``; the message says which.
            BlobError: ``digest`` is not 32 bytes.
            StorageError: the store could not be read.

        """
        size, zsize, data = self._row(digest)
        if data is None:
            parts: list[bytes] = []
            self._scan_large_or_raise(digest, size, zsize, parts)
            return b"".join(parts)
        content, problem = self._decode(digest, size, zsize, data)
        if problem:
            raise BlobCorruptError(f"blob {digest_hex(digest)} is corrupt: {problem}")
        return content

    def open(self, digest: bytes) -> BinaryIO:
        """Open a blob for streaming reads of its uncompressed bytes.

        A small blob is decoded and verified at once and returned as a
        :class:`io.BytesIO`. A large blob is decompressed from its file as it is
        read; the read that reaches its end raises :class:`BlobCorruptError` if the
        content does not have the recorded size or does not hash to ``digest``.

        Args:
            digest: the blob's 32-byte digest.

        Returns:
            A readable binary file object; close it when done.

        Raises:
            BlobNotFoundError: no such blob, or its large file is gone.
            BlobCorruptError: the blob is corrupt (for a large blob: its file has
                the wrong size now, or later from ``read``).
            StorageError: the store could not be read.

        """
        size, zsize, data = self._row(digest)
        if data is not None:
            content, problem = self._decode(digest, size, zsize, data)
            if problem:
                raise BlobCorruptError(f"blob {digest_hex(digest)} is corrupt: {problem}")
            return io.BytesIO(content)
        path = self._large_path(digest)
        try:
            fh = open(path, "rb")  # noqa: SIM115 (closed by the reader)
        except FileNotFoundError as exc:
            raise BlobNotFoundError(
                f"blob {digest_hex(digest)}: large blob file missing: {path}"
            ) from exc
        except OSError as exc:
            raise StorageError(f"cannot read large blob file {path}: {exc}") from exc
        try:
            actual = os.fstat(fh.fileno()).st_size
            if actual != zsize:
                raise BlobCorruptError(
                    f"blob {digest_hex(digest)} is corrupt: {_zsize_problem(zsize, actual, path)}"
                )
            return io.BufferedReader(_LargeReader(fh, digest, size, path), _CHUNK)
        except BaseException:
            fh.close()
            raise

    def has(self, digest: bytes) -> bool:
        """Return whether a blob is stored (a large blob's file is not looked at).

        Args:
            digest: a 32-byte digest.

        Returns:
            True if the store has a row for this digest.

        Raises:
            BlobError: ``digest`` is not 32 bytes.
            StorageError: the store could not be read.

        """
        _require_digest(digest)
        try:
            return bool(self._present([digest]))
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read blob store {self._db_path}: {exc}") from exc

    def missing(self, digests: Iterable[bytes]) -> set[bytes]:
        """Return which of many digests the store does not have.

        Lookups are batched (a few hundred digests per query).

        Args:
            digests: 32-byte digests, in any number (repeats allowed).

        Returns:
            The digests among ``digests`` with no stored blob.

        Raises:
            BlobError: one of ``digests`` is not 32 bytes.
            StorageError: the store could not be read.

        """
        wanted = {_require_digest(d) for d in digests}
        try:
            distinct = list(wanted)
            if self._count_present(distinct) == len(distinct):  # the usual case: all stored
                return set()
            return wanted - self._present(distinct)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read blob store {self._db_path}: {exc}") from exc

    def size(self, digest: bytes) -> int:
        """Return a blob's uncompressed size, as recorded.

        Args:
            digest: the blob's 32-byte digest.

        Returns:
            The size, bytes.

        Raises:
            BlobNotFoundError: no such blob.
            BlobError: ``digest`` is not 32 bytes.
            StorageError: the store could not be read.

        """
        _require_digest(digest)
        try:
            row = self._con.execute("SELECT size FROM blobs WHERE digest = ?", (digest,)).fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read blob store {self._db_path}: {exc}") from exc
        if row is None:
            raise BlobNotFoundError(f"no blob {digest_hex(digest)} in {self._dir}")
        size: int = row[0]
        return size

    def iter_digests(self) -> Iterator[bytes]:
        """Iterate over the digests of all stored blobs, each exactly once.

        The storage order of this backend's digest index is ascending byte order
        of the digests: the iteration reads only that index (~50 MB for a million
        blobs), not the blobs. Blobs stored while iterating may or may not appear.

        Returns:
            An iterator over 32-byte digests, ascending.

        Raises:
            StorageError: the store could not be read.

        """
        try:
            cursor = self._con.execute("SELECT digest FROM blobs ORDER BY digest")
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read blob store {self._db_path}: {exc}") from exc
        return self._iter_digests(cursor)

    def _iter_digests(self, cursor: sqlite3.Cursor) -> Iterator[bytes]:
        try:
            for (digest,) in cursor:
                yield digest
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read blob store {self._db_path}: {exc}") from exc
        finally:
            cursor.close()

    def stats(self) -> BlobStats:
        """Return the store's totals (kept up to date by each write, so O(1)).

        Returns:
            Count and sizes, bytes, of the stored blobs.

        Raises:
            StorageError: the store could not be read.

        """
        try:
            count, total, stored = self._con.execute(
                "SELECT count, bytes, stored_bytes FROM blob_totals WHERE id = 0"
            ).fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read blob store {self._db_path}: {exc}") from exc
        return BlobStats(count=count, bytes=total, stored_bytes=stored)

    # ---------------------------------------------------------------------- checks

    def check(self, digest: bytes) -> None:
        """Re-read one blob, decompress it and re-hash it.

        Args:
            digest: the blob's 32-byte digest.

        Raises:
            BlobNotFoundError: no such blob, or its large file is gone.
            BlobCorruptError: the blob is corrupt; the message names the digest
                and what mismatched (compressed size, decompression, size, digest).
            BlobError: ``digest`` is not 32 bytes.
            StorageError: the store could not be read.

        """
        size, zsize, data = self._row(digest)
        if data is None:
            self._scan_large_or_raise(digest, size, zsize, None)
            return
        _, problem = self._decode(digest, size, zsize, data)
        if problem:
            raise BlobCorruptError(f"blob {digest_hex(digest)} is corrupt: {problem}")

    def check_all(
        self, sample: float = 1.0, progress: Callable[[int], None] | None = None
    ) -> Iterator[tuple[bytes, str]]:
        """Check every blob (or a random fraction), streaming in storage order.

        One cursor walks the rows in the order they were stored (sequential reads);
        each blob is decompressed and re-hashed, large blobs from their files.
        A problem with one blob is reported and the walk goes on. Run it on a
        read-only instance to keep the writer free.

        Args:
            sample: the fraction of blobs to check, in (0, 1]; each blob is
                picked independently with this probability (SQLite's ``random()``).
            progress: called with the number of blobs checked so far, every
                1000 blobs and once at the end.

        Returns:
            An iterator yielding ``(digest, problem)`` for each bad blob, where
            ``problem`` says what is wrong (e.g. ``"digest mismatch: ..."``,
            ``"large blob file missing: ..."``).

        Raises:
            ValueError: ``sample`` is not in (0, 1].
            StorageError: the database could not be read (raised from the iterator).

        """
        if not 0.0 < sample <= 1.0:
            raise ValueError(f"sample must be in (0, 1], not {sample}")
        try:
            if sample >= 1.0:
                cursor = self._con.execute(_SCAN)
            else:
                cursor = self._con.execute(_SCAN_SAMPLE, (int(sample * 2**32),))
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read blob store {self._db_path}: {exc}") from exc
        return self._check_all(cursor, progress)

    def _check_all(
        self, cursor: sqlite3.Cursor, progress: Callable[[int], None] | None
    ) -> Iterator[tuple[bytes, str]]:
        decode = self._decode
        checked = 0
        reported = -1
        try:
            for digest, size, zsize, data in cursor:
                if data is None:
                    problem = self._large_problem(digest, size, zsize)
                else:
                    problem = decode(digest, size, zsize, data)[1]
                if problem:
                    yield digest, problem
                checked += 1
                if progress is not None and checked % _PROGRESS_EVERY == 0:
                    progress(checked)
                    reported = checked
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read blob store {self._db_path}: {exc}") from exc
        finally:
            cursor.close()
        if progress is not None and reported != checked:
            progress(checked)

    def _decode(self, digest: bytes, size: int, zsize: int, data: object) -> tuple[bytes, str]:
        """Decompress and verify a row's data; return ``(content, "")`` or ``(b"", problem)``."""
        if not isinstance(data, bytes):
            return b"", f"stored data is {type(data).__name__}, not a zstd frame"
        if len(data) != zsize:
            return b"", f"compressed size mismatch: row records {zsize} bytes, data has {len(data)}"
        try:
            # Check the frame's declared size first: a corrupt header must not make
            # the decompressor allocate an arbitrary amount of memory.
            declared = zstandard.frame_content_size(data)
            if declared not in (-1, size):
                return b"", f"size mismatch: row records {size} bytes, frame declares {declared}"
            content = self._dctx.decompress(data, max_output_size=size, allow_extra_data=False)
        except zstandard.ZstdError as exc:
            return b"", f"decompression failed: {exc}"
        if len(content) != size:
            return b"", f"size mismatch: row records {size} bytes, content has {len(content)}"
        actual = hashlib.sha256(content).digest()
        if actual != digest:
            return b"", f"digest mismatch: content hashes to {digest_hex(actual)}"
        return content, ""

    def _large_path(self, digest: bytes) -> Path:
        name = digest.hex()
        return self._large / name[:2] / f"{name}.zst"

    def _scan_large(self, digest: bytes, size: int, zsize: int, sink: list[bytes] | None) -> str:
        """Stream-verify a large blob's file; return a problem text or "".

        Raises:
            OSError: the file cannot be opened or read (FileNotFoundError if absent).

        """
        path = self._large_path(digest)
        with open(path, "rb") as fh:
            actual = os.fstat(fh.fileno()).st_size
            if actual != zsize:
                return _zsize_problem(zsize, actual, path)
            hasher = hashlib.sha256()
            seen = 0
            reader = zstandard.ZstdDecompressor().stream_reader(fh, read_size=_CHUNK)
            try:
                while chunk := reader.read(_CHUNK):
                    seen += len(chunk)
                    if seen > size:
                        return f"size mismatch: row records {size} bytes, content is longer"
                    hasher.update(chunk)
                    if sink is not None:
                        sink.append(chunk)
            except zstandard.ZstdError as exc:
                return f"decompression failed: {exc}"
        if seen != size:
            return f"size mismatch: row records {size} bytes, content has {seen}"
        computed = hasher.digest()
        if computed != digest:
            return f"digest mismatch: content hashes to {digest_hex(computed)}"
        return ""

    def _scan_large_or_raise(
        self, digest: bytes, size: int, zsize: int, sink: list[bytes] | None
    ) -> None:
        path = self._large_path(digest)
        try:
            problem = self._scan_large(digest, size, zsize, sink)
        except FileNotFoundError as exc:
            raise BlobNotFoundError(
                f"blob {digest_hex(digest)}: large blob file missing: {path}"
            ) from exc
        except OSError as exc:
            raise StorageError(f"cannot read large blob file {path}: {exc}") from exc
        if problem:
            raise BlobCorruptError(f"blob {digest_hex(digest)} is corrupt: {problem}")

    def _large_problem(self, digest: bytes, size: int, zsize: int) -> str:
        path = self._large_path(digest)
        try:
            return self._scan_large(digest, size, zsize, None)
        except FileNotFoundError:
            return f"large blob file missing: {path}"
        except OSError as exc:
            return f"cannot read large blob file {path}: {exc}"

    # ------------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Close the database connection (idempotent); the instance is unusable afterwards."""
        self._con.close()


class _LargeReader(io.RawIOBase):
    """Streams a large blob's decompressed bytes, verifying size and digest at the end."""

    def __init__(self, fh: BinaryIO, digest: bytes, size: int, path: Path) -> None:
        super().__init__()
        self._fh = fh
        self._digest = digest
        self._size = size
        self._path = path
        self._reader = zstandard.ZstdDecompressor().stream_reader(fh, read_size=_CHUNK)
        self._hasher = hashlib.sha256()
        self._seen = 0
        self._verified = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        """Read decompressed bytes into ``buffer``; verify the blob when its end is reached.

        Raises:
            BlobCorruptError: the content is longer or shorter than recorded, does
                not decompress, or does not hash to the blob's digest.
            StorageError: the file could not be read.

        """
        if self._verified:
            return 0
        view = memoryview(buffer).cast("B")
        try:
            n = self._reader.readinto(view)
        except zstandard.ZstdError as exc:
            raise self._corrupt(f"decompression failed: {exc}") from exc
        except OSError as exc:
            raise StorageError(f"cannot read large blob file {self._path}: {exc}") from exc
        if n:
            self._seen += n
            if self._seen > self._size:
                raise self._corrupt(
                    f"size mismatch: row records {self._size} bytes, content is longer"
                )
            self._hasher.update(view[:n])
            return n
        if self._seen != self._size:
            raise self._corrupt(
                f"size mismatch: row records {self._size} bytes, content has {self._seen}"
            )
        computed = self._hasher.digest()
        if computed != self._digest:
            raise self._corrupt(f"digest mismatch: content hashes to {digest_hex(computed)}")
        self._verified = True
        return 0

    def _corrupt(self, problem: str) -> BlobCorruptError:
        return BlobCorruptError(f"blob {digest_hex(self._digest)} is corrupt: {problem}")

    def close(self) -> None:
        """Close the decompressor and the file."""
        if not self.closed:
            try:
                self._reader.close()  # type: ignore[no-untyped-call]
            finally:
                self._fh.close()
        super().close()


def _in_lists(digests: list[bytes]) -> Iterator[tuple[int, list[bytes]]]:
    """Split ``digests`` into IN lists of the sizes in ``_IN_SIZES``, padded by repeats."""
    biggest = _IN_SIZES[-1]
    for start in range(0, len(digests), biggest):
        chunk = digests[start : start + biggest]
        n = next(s for s in _IN_SIZES if s >= len(chunk))
        yield n, chunk + [chunk[0]] * (n - len(chunk))


def _zsize_problem(expected: int, actual: int, path: Path) -> str:
    hint = " (truncated)" if actual < expected else ""
    return f"compressed size mismatch: row records {expected} bytes, file {path} has {actual}{hint}"


def _slices(blob: bytes) -> Iterator[memoryview]:
    view = memoryview(blob).cast("B")
    for start in range(0, len(view), _CHUNK):
        yield view[start : start + _CHUNK]


def _read_rest(head: list[bytes], src: BinaryIO, hasher: hashlib._Hash) -> Iterator[bytes]:
    """Yield ``head`` (already hashed), then the rest of ``src``, hashing it."""
    yield from head
    head.clear()  # let the first chunks be freed once compressed
    while True:
        try:
            chunk = src.read(_CHUNK)
        except OSError as exc:
            raise _SourceReadError(exc) from exc
        if not chunk:
            return
        hasher.update(chunk)
        yield chunk


def _fsync_dir(path: Path) -> None:
    """Make a directory's entries (new, renamed files) durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as exc:  # some filesystems cannot fsync a directory: nothing to do
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def _remove_made(made: list[Path]) -> None:
    for p in reversed(made):
        with contextlib.suppress(OSError):
            if p.is_dir():
                p.rmdir()
            else:
                p.unlink()
                for suffix in ("-wal", "-shm"):
                    Path(f"{p}{suffix}").unlink(missing_ok=True)
