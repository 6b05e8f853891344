r"""A :class:`~echo_archive.vault.blobs.BlobStore` as a plain directory: one file per blob.

The second blob backend (the first is :class:`~echo_archive.vault.blobs.SQLiteBlobStore`).
It needs nothing but a POSIX filesystem, so a store can be copied, rsync'd or
served as static files, and it is the model for an object-store backend (one
object per blob, named by its digest). Chosen per vault with ``[blobs] backend =
"directory"`` in ``echo.toml`` (:func:`create_blob_store`, :func:`open_blob_store`).

Layout of a store directory::

    FORMAT                  "echo-blobs directory 1": what this directory is
    ab/abcd...ef.zst        one file per blob (first 2 hex digits of the digest, then all 64)
    tmp/.tmp-*.zst          a blob being written; a crash can leave one behind,
                            and it may be deleted while no writer runs

A blob file is a 16-byte header, ``b"ECHOBLB\x01"`` then the uncompressed size
as an unsigned 64-bit big-endian integer, followed by one zstd frame of the
content. Files are write-once: a blob whose file exists is never written again.

Writes (POSIX rename durability, as restic's local backend and git's loose
objects do): every new blob of a batch is written to a temporary file in
``tmp/``, each file is fsync'd, renamed to its final name, and then each
directory that received a file (and ``tmp/``) is fsync'd; :meth:`put_many`
returns after that, so a returned blob is durable. A batch that fails removes
the files it renamed into place, so none of it is visible. A crash (SIGKILL,
power loss) midway can leave some of the batch's blobs in place: they are
orphans, harmless (the vault commits entries only after its blobs are durable,
DESIGN.md invariant 2). Blobs bigger than ``large_threshold`` bytes stream
(through :meth:`put_file` and :meth:`open`) so they never have to fit in memory.

Costs: each new blob costs one file fsync and a share of the directory fsyncs
(at most 257 per batch), so batches of small blobs are slower than in the SQLite
store (one fsync per batch). :meth:`stats`, :meth:`iter_digests` and
:meth:`check_all` walk the directory (O(blobs); :meth:`stats` reads every
header). Readers and the writer need no coordination: a file appears whole,
by rename, or not at all.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import random
import struct
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, Final, Literal

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
from echo_archive.vault.blobs import (
    _CHUNK,
    DB_NAME,
    DEFAULT_LARGE_THRESHOLD,
    DEFAULT_LEVEL,
    BlobStats,
    BlobStore,
    SQLiteBlobStore,
    _fsync_dir,
    _LargeReader,
    _LocalStore,
    _require_digest,
    _slices,
    _TempLarge,
    _unlink_quietly,
    digest_hex,
)

__all__ = [
    "BACKENDS",
    "FORMAT_FILE",
    "FORMAT_TEXT",
    "BackendName",
    "DirectoryBlobStore",
    "create_blob_store",
    "open_blob_store",
]

BackendName = Literal["sqlite", "directory"]
"""The name of a blob backend, as written in ``echo.toml`` (``[blobs] backend``)."""

BACKENDS: Final[tuple[BackendName, ...]] = ("sqlite", "directory")
"""The blob backends a vault may use."""

FORMAT_FILE: Final = "FORMAT"
"""Name of the file saying a directory is a directory blob store, and of which format."""

FORMAT_TEXT: Final = "echo-blobs directory 1\n"
"""The content of :data:`FORMAT_FILE` for this format."""

TMP_DIR: Final = "tmp"
"""Folder of blobs being written."""

_MAGIC: Final = b"ECHOBLB\x01"
_HEADER: Final = struct.Struct(">8sQ")  # magic, uncompressed size (bytes)
_PROGRESS_EVERY: Final = 1000  # blobs between two progress() calls in check_all
_HEX: Final = frozenset("0123456789abcdef")


class DirectoryBlobStore(_LocalStore):
    """A :class:`BlobStore` in a plain directory: one zstd file per blob (see the module doc).

    An instance holds one zstd compressor and decompressor and is not safe to
    use from several threads at once. One writer instance writes; any number
    of read-only instances read concurrently (a file appears by rename, whole).

    Args:
        directory: the store directory (made by :meth:`create`).
        readonly: refuse writes (they raise :class:`BlobError`).
        large_threshold: blobs bigger than this many bytes are written and read
            streaming (:meth:`put_file`, :meth:`open`).
        level: zstd compression level for new blobs.

    Raises:
        VaultNotFoundError: no directory store exists at ``directory``.
        BlobError: ``directory`` holds something else (another backend's store,
            a directory store of an unknown format); the message says what.
        StorageError: the directory cannot be read.
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
        self._tmp = self._dir / TMP_DIR
        self._readonly = readonly
        self._large_threshold = large_threshold
        self._level = level
        self._closed = False
        marker = self._dir / FORMAT_FILE
        try:
            text = marker.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            if (self._dir / DB_NAME).exists():
                raise BlobError(
                    f"{self._dir} holds a SQLite blob store ({DB_NAME}), not a directory store"
                ) from None
            raise VaultNotFoundError(
                f"no directory blob store at {self._dir}: {marker} does not exist"
            ) from None
        except OSError as exc:
            raise StorageError(f"cannot read {marker}: {exc}") from exc
        if text != FORMAT_TEXT:
            raise BlobError(
                f"{marker} says {text[:80]!r}: not a directory blob store of a known format "
                f"(expected {FORMAT_TEXT!r})"
            )
        self._cctx = zstandard.ZstdCompressor(level=level)
        self._threads = threading.local()  # each reading thread's decompressor (_LocalStore)

    @classmethod
    def create(
        cls,
        directory: Path,
        *,
        large_threshold: int = DEFAULT_LARGE_THRESHOLD,
        level: int = DEFAULT_LEVEL,
    ) -> DirectoryBlobStore:
        """Create an empty store in ``directory`` (made if needed) and open it for writing.

        Args:
            directory: an absent or empty directory.
            large_threshold: as for the constructor, bytes.
            level: as for the constructor.

        Returns:
            The new store, open for writing.

        Raises:
            VaultExistsError: ``directory`` exists and is not empty.
            StorageError: the files could not be created; those it made are removed.

        """
        directory = Path(directory)
        if directory.exists():
            if not directory.is_dir():
                raise StorageError(f"cannot create blob store in {directory}: not a directory")
            leftover = next(iter(sorted(directory.iterdir())), None)
            if leftover is not None:
                raise VaultExistsError(
                    f"cannot create a blob store in {directory}: it is not empty ({leftover})"
                )
        made_dir = not directory.exists()
        marker = directory / FORMAT_FILE
        try:
            directory.mkdir(parents=True, exist_ok=True)
            (directory / TMP_DIR).mkdir()
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(FORMAT_TEXT)
                fh.flush()
                os.fsync(fh.fileno())
            _fsync_dir(directory)
            _fsync_dir(directory.parent)
        except OSError as exc:
            _unlink_quietly(marker)
            with contextlib.suppress(OSError):
                (directory / TMP_DIR).rmdir()
                if made_dir:
                    directory.rmdir()
            if isinstance(exc, FileExistsError):
                raise VaultExistsError(f"a blob store already exists at {directory}") from exc
            raise StorageError(f"cannot create blob store in {directory}: {exc}") from exc
        return cls(directory, large_threshold=large_threshold, level=level)

    # ------------------------------------------------------------------ properties

    def __repr__(self) -> str:
        mode = "ro" if self._readonly else "rw"
        return f"DirectoryBlobStore({str(self._dir)!r}, {mode})"

    def path_of(self, digest: bytes) -> Path:
        """Return the file a blob is (or would be) stored in.

        Args:
            digest: a 32-byte digest.

        Returns:
            ``<directory>/<first 2 hex digits>/<64 hex digits>.zst``.

        Raises:
            BlobError: ``digest`` is not 32 bytes.

        """
        name = _require_digest(digest).hex()
        return self._dir / name[:2] / f"{name}.zst"

    # ---------------------------------------------------------------------- writes

    def _store(self, batch: dict[bytes, bytes | _TempLarge]) -> None:
        """Store the new blobs of ``batch`` (digest → bytes or prepared file), durably."""
        self._require_open()
        temps: dict[bytes, _TempLarge] = {
            d: b for d, b in batch.items() if isinstance(b, _TempLarge)
        }
        installed: list[Path] = []
        try:
            try:
                new = [d for d in batch if not self.path_of(d).exists()]
                if new:
                    faults.point("blob.write")
                    unsynced: list[Path] = []
                    for digest in new:
                        if digest in temps:
                            continue
                        blob = batch[digest]
                        assert isinstance(blob, bytes | bytearray | memoryview)
                        if len(blob) > self._large_threshold:
                            temps[digest] = self._write_temp(_slices(bytes(blob)), len(blob))
                        else:
                            temps[digest] = self._write_small(blob)
                            unsynced.append(temps[digest].path)
                    faults.point("blob.fsync")
                    for temp_path in unsynced:
                        _fsync_file(temp_path)
                    dirs: set[Path] = set()
                    for digest in new:
                        final = self.path_of(digest)
                        if temps[digest].size > self._large_threshold:
                            faults.point("blob.large.rename")
                        if not final.parent.is_dir():
                            final.parent.mkdir(exist_ok=True)
                            dirs.add(self._dir)
                        os.replace(temps[digest].path, final)
                        installed.append(final)
                        dirs.add(final.parent)
                    for d in sorted(dirs, key=lambda p: p != self._dir):  # fan-out dirs first
                        _fsync_dir(d)
                    _fsync_dir(self._tmp)
            except BaseException:
                for final in installed:
                    _unlink_quietly(final)
                raise
            finally:
                for temp in temps.values():  # prepared files not renamed into place
                    _unlink_quietly(temp.path)
        except (OSError, zstandard.ZstdError) as exc:
            raise StorageError(f"cannot store {len(batch)} blob(s) in {self._dir}: {exc}") from exc

    def _new_temp(self) -> tuple[int, Path]:
        self._tmp.mkdir(exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".tmp-", suffix=".zst", dir=self._tmp)
        os.fchmod(fd, 0o644)  # readers of the store may run as others (mkstemp makes 0600)
        return fd, Path(name)

    def _write_small(self, blob: bytes | bytearray | memoryview) -> _TempLarge:
        """Write one small blob's file (header + frame) to ``tmp/``, not yet fsync'd."""
        data = self._cctx.compress(blob)
        fd, temp = self._new_temp()
        try:
            with open(fd, "wb") as fh:
                fh.write(_HEADER.pack(_MAGIC, len(blob)))
                fh.write(data)
        except BaseException:
            _unlink_quietly(temp)
            raise
        return _TempLarge(temp, len(blob), _HEADER.size + len(data))

    def _write_temp(self, chunks: Iterable[bytes | memoryview], size: int) -> _TempLarge:
        """Compress ``chunks`` to a new file in ``tmp/`` as they come, then fsync it."""
        faults.point("blob.large.write")
        fd, temp = self._new_temp()
        try:
            with open(fd, "wb") as fh:
                fh.write(_HEADER.pack(_MAGIC, 0))  # the size is known at the end
                cobj = zstandard.ZstdCompressor(level=self._level).compressobj(size=size)
                total = 0
                for chunk in chunks:
                    total += len(chunk)
                    fh.write(cobj.compress(chunk))
                fh.write(cobj.flush())
                zsize = fh.tell()
                fh.seek(0)
                fh.write(_HEADER.pack(_MAGIC, total))
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:
            _unlink_quietly(temp)
            raise
        return _TempLarge(temp, total, zsize)

    def _require_open(self) -> None:
        if self._closed:
            raise StorageError(f"blob store {self._dir} is closed")

    # ----------------------------------------------------------------------- reads

    def _open_file(self, digest: bytes) -> tuple[BinaryIO, int, Path]:
        """Open a blob's file and read its header: ``(file at the frame, size, path)``."""
        self._require_open()
        path = self.path_of(digest)
        try:
            fh = open(path, "rb")  # noqa: SIM115 (returned to the caller, who closes it)
        except FileNotFoundError:
            raise BlobNotFoundError(f"no blob {digest_hex(digest)} in {self._dir}") from None
        except OSError as exc:
            raise StorageError(f"cannot read blob file {path}: {exc}") from exc
        try:
            header = fh.read(_HEADER.size)
            if len(header) != _HEADER.size:
                raise BlobCorruptError(
                    f"blob {digest_hex(digest)} is corrupt: {path} is {len(header)} bytes, "
                    f"shorter than its {_HEADER.size}-byte header (truncated)"
                )
            magic, size = _HEADER.unpack(header)
            if magic != _MAGIC:
                raise BlobCorruptError(
                    f"blob {digest_hex(digest)} is corrupt: {path} does not start with "
                    f"{_MAGIC!r} (found {magic!r})"
                )
        except OSError as exc:
            fh.close()
            raise StorageError(f"cannot read blob file {path}: {exc}") from exc
        except BaseException:
            fh.close()
            raise
        return fh, size, path

    def _read_verified(self, digest: bytes) -> bytes:
        """Read, decompress and verify a whole blob (streaming when large)."""
        fh, size, path = self._open_file(digest)
        if size <= self._large_threshold:
            try:
                data = fh.read()
            except OSError as exc:
                raise StorageError(f"cannot read blob file {path}: {exc}") from exc
            finally:
                fh.close()
            return self._decode(digest, size, data)
        parts: list[bytes] = []
        with _LargeReader(fh, digest, size, path) as reader:  # closes the file
            while chunk := reader.read(_CHUNK):
                parts.append(chunk)
        return b"".join(parts)

    def _decode(self, digest: bytes, size: int, data: bytes) -> bytes:
        def corrupt(problem: str) -> BlobCorruptError:
            return BlobCorruptError(f"blob {digest_hex(digest)} is corrupt: {problem}")

        try:
            # A corrupt frame header must not make the decompressor allocate at will.
            declared = zstandard.frame_content_size(data)
            if declared not in (-1, size):
                raise corrupt(
                    f"size mismatch: header records {size} bytes, frame declares {declared}"
                )
            content = self._dctx.decompress(data, max_output_size=size, allow_extra_data=False)
        except zstandard.ZstdError as exc:
            raise corrupt(f"decompression failed: {exc}") from exc
        if len(content) != size:
            raise corrupt(f"size mismatch: header records {size} bytes, content has {len(content)}")
        actual = hashlib.sha256(content).digest()
        if actual != digest:
            raise corrupt(f"digest mismatch: content hashes to {digest_hex(actual)}")
        return content

    def get(self, digest: bytes) -> bytes:
        """Return a blob's bytes, verified against its digest.

        Args:
            digest: the blob's 32-byte digest.

        Returns:
            The uncompressed bytes (a large blob is read whole into memory).

        Raises:
            BlobNotFoundError: no such blob.
            BlobCorruptError: the file's header is damaged, or its content does
                not decompress or does not hash to ``digest``; the message says which.
            BlobError: ``digest`` is not 32 bytes.
            StorageError: the store could not be read.

        """
        return self._read_verified(digest)

    def open(self, digest: bytes) -> BinaryIO:
        """Open a blob for streaming reads of its uncompressed bytes.

        A small blob is decoded and verified at once (a :class:`io.BytesIO`); a
        large one is decompressed as it is read, and the read that reaches its
        end raises :class:`BlobCorruptError` if it has the wrong size or digest.

        Args:
            digest: the blob's 32-byte digest.

        Returns:
            A readable binary file object; close it when done.

        Raises:
            BlobNotFoundError: no such blob.
            BlobCorruptError: the blob is corrupt (for a large blob, later from ``read``).
            BlobError: ``digest`` is not 32 bytes.
            StorageError: the store could not be read.

        """
        fh, size, path = self._open_file(digest)
        if size <= self._large_threshold:
            try:
                return io.BytesIO(self._decode(digest, size, fh.read()))
            except OSError as exc:
                raise StorageError(f"cannot read blob file {path}: {exc}") from exc
            finally:
                fh.close()
        return io.BufferedReader(_LargeReader(fh, digest, size, path), _CHUNK)

    def has(self, digest: bytes) -> bool:
        """Return whether a blob's file exists (its content is not read).

        Args:
            digest: a 32-byte digest.

        Returns:
            True if the store has a file for this digest.

        Raises:
            BlobError: ``digest`` is not 32 bytes.
            StorageError: the store is closed.

        """
        self._require_open()
        return self.path_of(digest).is_file()

    def missing(self, digests: Iterable[bytes]) -> set[bytes]:
        """Return which of many digests the store does not have (one ``stat`` each).

        Args:
            digests: 32-byte digests, in any number (repeats allowed).

        Returns:
            The digests among ``digests`` with no stored blob.

        Raises:
            BlobError: one of ``digests`` is not 32 bytes.
            StorageError: the store is closed.

        """
        wanted = {_require_digest(d) for d in digests}
        return {d for d in wanted if not self.has(d)}

    def size(self, digest: bytes) -> int:
        """Return a blob's uncompressed size, from its file's header.

        Args:
            digest: the blob's 32-byte digest.

        Returns:
            The size, bytes.

        Raises:
            BlobNotFoundError: no such blob.
            BlobCorruptError: the file's header is damaged.
            BlobError: ``digest`` is not 32 bytes.
            StorageError: the store could not be read.

        """
        fh, size, _ = self._open_file(digest)
        fh.close()
        return size

    def iter_digests(self) -> Iterator[bytes]:
        """Iterate over the digests of all stored blobs, each exactly once, ascending.

        Walks the fan-out directories in name order; files that are not blob
        files (other names) are skipped. Blobs stored while iterating may or
        may not appear.

        Returns:
            An iterator over 32-byte digests, ascending.

        Raises:
            StorageError: the directory could not be read (raised from the iterator).

        """
        self._require_open()
        return self._walk()

    def _walk(self) -> Iterator[bytes]:
        try:
            fans = sorted(
                e.name
                for e in os.scandir(self._dir)
                if len(e.name) == 2 and set(e.name) <= _HEX and e.is_dir()
            )
            for fan in fans:
                names = sorted(
                    e.name
                    for e in os.scandir(self._dir / fan)
                    if len(e.name) == 68 and e.name.endswith(".zst") and e.name.startswith(fan)
                )
                for name in names:
                    hexdigits = name[:64]
                    if set(hexdigits) <= _HEX:
                        yield bytes.fromhex(hexdigits)
        except OSError as exc:
            raise StorageError(f"cannot read blob store {self._dir}: {exc}") from exc

    def stats(self) -> BlobStats:
        """Return the store's totals, by walking it and reading every file's header.

        Returns:
            Count, uncompressed bytes (from the headers) and stored bytes (file
            sizes, headers included).

        Raises:
            StorageError: the store could not be read.

        """
        count = total = stored = 0
        for digest in self.iter_digests():
            path = self.path_of(digest)
            try:
                with open(path, "rb") as fh:
                    header = fh.read(_HEADER.size)
                    stored += os.fstat(fh.fileno()).st_size
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise StorageError(f"cannot read blob file {path}: {exc}") from exc
            count += 1
            if len(header) == _HEADER.size:
                total += _HEADER.unpack(header)[1]
        return BlobStats(count=count, bytes=total, stored_bytes=stored)

    # ---------------------------------------------------------------------- checks

    def check(self, digest: bytes) -> None:
        """Re-read one blob, decompress it and re-hash it.

        Args:
            digest: the blob's 32-byte digest.

        Raises:
            BlobNotFoundError: no such blob.
            BlobCorruptError: the blob is corrupt; the message names the digest
                and what mismatched (header, decompression, size, digest).
            BlobError: ``digest`` is not 32 bytes.
            StorageError: the store could not be read.

        """
        self._read_verified(digest)

    def check_all(
        self, sample: float = 1.0, progress: Callable[[int], None] | None = None
    ) -> Iterator[tuple[bytes, str]]:
        """Check every blob (or a random fraction), in ascending digest order.

        Args:
            sample: the fraction of blobs to check, in (0, 1]; each blob is
                picked independently with this probability.
            progress: called with the number of blobs checked so far, every
                1000 blobs and once at the end.

        Returns:
            An iterator yielding ``(digest, problem)`` for each bad blob.

        Raises:
            ValueError: ``sample`` is not in (0, 1].
            StorageError: the directory could not be read (raised from the iterator).

        """
        if not 0.0 < sample <= 1.0:
            raise ValueError(f"sample must be in (0, 1], not {sample}")
        self._require_open()
        return self._check_all(sample, progress)

    def _check_all(
        self, sample: float, progress: Callable[[int], None] | None
    ) -> Iterator[tuple[bytes, str]]:
        rng = random.Random()
        checked = 0
        reported = -1
        for digest in self._walk():
            if sample < 1.0 and rng.random() >= sample:
                continue
            try:
                self._read_verified(digest)
            except BlobNotFoundError:
                pass  # removed since the walk listed it: nothing to check
            except (BlobCorruptError, StorageError) as exc:
                yield digest, str(exc)
            checked += 1
            if progress is not None and checked % _PROGRESS_EVERY == 0:
                progress(checked)
                reported = checked
        if progress is not None and reported != checked:
            progress(checked)

    # ------------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Mark the store closed (idempotent); the instance is unusable afterwards."""
        self._closed = True


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create_blob_store(
    backend: BackendName,
    directory: Path,
    *,
    large_threshold: int = DEFAULT_LARGE_THRESHOLD,
    level: int = DEFAULT_LEVEL,
) -> BlobStore:
    """Create an empty blob store of ``backend`` in ``directory`` and open it for writing.

    Args:
        backend: ``"sqlite"`` (:class:`SQLiteBlobStore`) or ``"directory"``
            (:class:`DirectoryBlobStore`).
        directory: the store directory (absent or empty).
        large_threshold: bytes; see the backends.
        level: zstd level.

    Returns:
        The new store.

    Raises:
        ValueError: unknown backend.
        VaultExistsError: a store already exists there.
        StorageError: the store could not be created.

    """
    if backend == "sqlite":
        return SQLiteBlobStore.create(directory, large_threshold=large_threshold, level=level)
    if backend == "directory":
        return DirectoryBlobStore.create(directory, large_threshold=large_threshold, level=level)
    raise ValueError(f"unknown blob backend {backend!r}; known: {', '.join(BACKENDS)}")


def open_blob_store(
    backend: BackendName,
    directory: Path,
    *,
    readonly: bool = False,
    large_threshold: int = DEFAULT_LARGE_THRESHOLD,
    level: int = DEFAULT_LEVEL,
) -> BlobStore:
    """Open the blob store of ``backend`` in ``directory``.

    Args:
        backend: as for :func:`create_blob_store`.
        directory: the store directory.
        readonly: refuse writes.
        large_threshold: bytes; see the backends.
        level: zstd level.

    Returns:
        The open store.

    Raises:
        ValueError: unknown backend.
        VaultNotFoundError: no store of that backend is there.
        BlobError: the directory holds another backend's store or an unknown format.
        StorageError: the store could not be opened.

    """
    if backend == "sqlite":
        if not (directory / DB_NAME).exists() and (directory / FORMAT_FILE).exists():
            raise BlobError(
                f"{directory} holds a directory blob store ({FORMAT_FILE}), but the vault's "
                'echo.toml says [blobs] backend = "sqlite"'
            )
        return SQLiteBlobStore(
            directory, readonly=readonly, large_threshold=large_threshold, level=level
        )
    if backend == "directory":
        return DirectoryBlobStore(
            directory, readonly=readonly, large_threshold=large_threshold, level=level
        )
    raise ValueError(f"unknown blob backend {backend!r}; known: {', '.join(BACKENDS)}")
