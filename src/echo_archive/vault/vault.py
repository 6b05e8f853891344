"""The vault: create, open, commit records, seal checkpoints, answer proofs.

On disk (embedded default)::

    vault/
      echo.toml              configuration: the vault reads [vault], [blobs], [log]
                             (:mod:`.settings`); other tables belong to the layers above
      keys/signing.key       Ed25519 signing key, mode 0600 (never printed or logged;
                             refused for signing when group or others may read it)
      verifier.vkey          the C2SP signed-note verifier key (public, mode 0644, so
                             a user who may only read the vault can verify it; vaults
                             made before keep keys/verifier.vkey, read as a fallback
                             and copied here by the next writer)
      catalog.sqlite         entries, log tiles, checkpoints; derived indexes and
                             operational state (SQLite, WAL; :mod:`.catalog` classifies
                             every table)
      blobs/                 the blob store, of the backend echo.toml names:
        blobs.sqlite         "sqlite" (default): small blobs as zstd rows (SQLite, WAL),
        large/..               large blobs one zstd file each (vault.blobs);
        FORMAT, ab/..        "directory": one zstd file per blob (vault.blobdir)
      lock                   the writer lock (holder host, pid, since), held while writing

Commit protocol (DESIGN.md invariant 2; restic/borg write ordering):

1. every blob of the batch is written to the blob store and made durable;
2. the entries, their blob index rows, the new log tiles, the new tree
   size and root, and the rows of every attached derived index
   (:mod:`.derived`) are written in **one** catalog transaction;
3. a checkpoint for the new tree is signed and stored.

:meth:`Vault.commit` returns only after step 3: a returned record is
*acknowledged*, durable and covered by a signed checkpoint. A crash before
step 2 commits leaves only orphan blobs (unreferenced, harmless); a crash
between 2 and 3 leaves an *unsealed tail* of complete entries that the next
writer to open the vault seals with a checkpoint (:meth:`Vault.seal`). There
is never a half-visible entry.

Writers take turns (DESIGN.md invariant 1, one writer at a time): a writer
holds the writer lock only *while it writes* (:meth:`Vault.writing`, taken
by every write for its duration, or held by a caller across a batch of
writes), and on taking it catches up with what another process may have
written since (the log's size and root, an unsealed tail to seal). In a
process, every write goes through one :class:`~echo_archive.vault.writer.VaultWriter`.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import structlog

from echo_archive import faults
from echo_archive.errors import (
    BlobError,
    BlobNotFoundError,
    DerivedIndexError,
    LogError,
    NoteError,
    StorageError,
    VaultError,
    VaultExistsError,
    VaultFormatError,
    VaultNotFoundError,
)
from echo_archive.schemas import EntryMeta
from echo_archive.vault import catalog
from echo_archive.vault.blobdir import BackendName, create_blob_store, open_blob_store
from echo_archive.vault.blobs import BlobStore, parse_digest
from echo_archive.vault.catalog import Catalog, SQLiteCatalog
from echo_archive.vault.checkpoint import Checkpoint, open_checkpoint
from echo_archive.vault.derived import (
    DERIVED_STATE_DDL,
    DerivedIndex,
    applied_size,
    apply_range,
    index_revision,
    order_indexes,
    record_applied,
    record_revision,
    reset_if_stale,
)
from echo_archive.vault.derived import rebuild as rebuild_index
from echo_archive.vault.entry import Entry, format_timestamp, parse_entry
from echo_archive.vault.lock import DEFAULT_WAIT, WriterLock
from echo_archive.vault.log import TILE_WIDTH, TileReader, TileWriter, iter_level, read_tile
from echo_archive.vault.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    CompactRange,
    consistency_proof,
    inclusion_proof,
    leaf_hashes,
    subtree_hash,
)
from echo_archive.vault.note import (
    Signer,
    Verifier,
    format_signer_key,
    generate_signer,
    parse_vkey,
)
from echo_archive.vault.settings import (
    BlobSection,
    VaultSection,
    VaultSettings,
    load_settings,
    render_settings,
)
from echo_archive.vault.signing import CheckpointSigner, KeySigner, load_key_signer

__all__ = [
    "CommitResult",
    "Receipt",
    "Record",
    "SignedCheckpoint",
    "Vault",
    "default_vault_path",
]

log = structlog.get_logger("echo_archive.vault")

CONFIG_FILE = "echo.toml"
SIGNING_KEY_FILE = "keys/signing.key"
VKEY_FILE = "verifier.vkey"
"""The public verifier key, outside the 0700 ``keys/`` so readers of the vault can read it."""
LEGACY_VKEY_FILE = "keys/verifier.vkey"
"""Where vaults made before :data:`VKEY_FILE` keep the verifier key (still read)."""
CATALOG_FILE = "catalog.sqlite"
BLOBS_DIR = "blobs"
LOCK_FILE = "lock"

DERIVED_CHUNK = 2000
"""Entries per transaction when a writer catches an attached index up with the log."""


def default_vault_path() -> Path:
    """The vault path when none is given: ``$ECHO_VAULT``, else ``./vault``."""
    return Path(os.environ.get("ECHO_VAULT") or "vault")


@dataclass(frozen=True)
class Record:
    """One record to archive: an entry type, its metadata, and its blobs.

    Attributes:
        type: the entry type (``"capture"``...; see :mod:`echo_archive.vault.entry`).
        meta: type-specific metadata: a schema instance (:mod:`echo_archive.schemas`)
            or a JSON object of the type's schema (validated at commit).
        blobs: role -> content, as bytes or as a path to a file streamed from disk.

    """

    type: str
    meta: Mapping[str, Any] | EntryMeta
    blobs: Mapping[str, bytes | Path] = field(default_factory=dict)


@dataclass(frozen=True)
class Receipt:
    """What :meth:`Vault.commit` returns for each record.

    Attributes:
        index: the entry's index in the log.
        leaf_hash: SHA-256(0x00 || entry), 32 bytes.
        entry: the entry as logged.

    """

    index: int
    leaf_hash: bytes
    entry: Entry


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint and its signed note text (C2SP tlog-checkpoint), verbatim."""

    checkpoint: Checkpoint
    note: str
    signed_at: str

    @property
    def size(self) -> int:
        """The tree size the checkpoint commits to."""
        return self.checkpoint.size


@dataclass(frozen=True)
class CommitResult:
    """The outcome of a commit: one receipt per record, and the covering checkpoint."""

    receipts: list[Receipt]
    checkpoint: SignedCheckpoint


def _write_public(path: Path, text: str) -> None:
    """Write a public file (mode 0644 whatever the umask) durably, via a rename."""
    tmp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            os.fchmod(fh.fileno(), 0o644)
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _read_verifier(path: Path) -> tuple[Path, Verifier]:
    """Read the vault's verifier key: :data:`VKEY_FILE`, else :data:`LEGACY_VKEY_FILE`.

    Returns:
        The file it was read from and the key.

    Raises:
        StorageError: neither file can be read (the message names both and,
            for an old vault whose ``keys/`` the user may not enter, the fix).
        VaultError: the file does not hold a verifier key, or both files
            exist and hold different keys.

    """
    found: list[tuple[Path, Verifier]] = []
    failures: list[str] = []
    for name in (VKEY_FILE, LEGACY_VKEY_FILE):
        p = path / name
        try:
            text = p.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            continue
        except OSError as exc:
            failures.append(f"{p}: {exc.strerror or exc}")
            continue
        try:
            found.append((p, parse_vkey(text)))
        except NoteError as exc:
            raise VaultError(f"{p}: {exc}") from exc
    if not found:
        hint = (
            f"; a vault made before {VKEY_FILE} existed keeps it in the owner-only "
            f"{LEGACY_VKEY_FILE}: open it once as its owner (any writing command copies it "
            f"to {path / VKEY_FILE}, mode 0644)"
            if failures
            else ""
        )
        raise StorageError(
            f"cannot read the verifier key of {path}: "
            + ("; ".join(failures) if failures else f"neither {VKEY_FILE} nor {LEGACY_VKEY_FILE}")
            + hint
        )
    if len(found) == 2 and found[0][1].vkey != found[1][1].vkey:
        raise VaultError(
            f"{found[0][0]} and {found[1][0]} hold different verifier keys "
            f"({found[0][1].vkey!r} and {found[1][1].vkey!r}); remove the wrong one"
        )
    return found[0]


def _migrate_verifier(path: Path, verifier: Verifier) -> None:
    """Copy an old vault's verifier key to :data:`VKEY_FILE` (0644), for its readers.

    Best effort: a vault whose directory cannot be written (a writer that will
    fail on its first write anyway) keeps reading the old file.
    """
    try:
        _write_public(path / VKEY_FILE, verifier.vkey + "\n")
        _fsync_dir(path)
    except OSError as exc:
        log.warning("vault.verifier_key_not_copied", path=str(path / VKEY_FILE), error=str(exc))
        return
    log.info("vault.verifier_key_copied", path=str(path / VKEY_FILE))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Vault:
    """An open vault (use :meth:`create` and :meth:`open`, not the constructor).

    A writer (``readonly=False``) takes the writer lock for each write (or a
    caller holds it across several with :meth:`writing`) and releases it
    after; readers take no lock and see each committed state as it lands. An
    open writer is used by one thread at a time (in a process, the
    :class:`~echo_archive.vault.writer.VaultWriter` thread).

    Attributes:
        wait: seconds a write waits for the writer lock held by another
            process before :class:`~echo_archive.errors.VaultLockedError`.
    """

    def __init__(
        self,
        path: Path,
        settings: VaultSettings,
        verifier: Verifier,
        cat: SQLiteCatalog,
        blobs: BlobStore,
        *,
        signer: CheckpointSigner | None,
        break_stale: bool = False,
        wait: float = DEFAULT_WAIT,
        readonly: bool | None = None,
    ) -> None:
        self.path = path
        self.settings = settings
        self.verifier = verifier
        self.on_commit: Callable[[CommitResult], None] | None = None
        """Called with each :class:`CommitResult` of :meth:`commit` and :meth:`append` once
        it is durable (the checkpoint signed), on the committing thread; the service
        publishes one event per entry from it. It must be quick; what it raises is logged."""
        self.blobs = blobs
        self.wait = wait
        self._catalog = cat
        self._conn = cat.connection  # the log storage (:mod:`.log`) reads and writes SQLite
        self._signer = signer
        self._writable = signer is not None if readonly is None else not readonly
        self._break_stale = break_stale
        self._lock: WriterLock | None = None
        self._depth = 0
        self._sealed_on_taking: SignedCheckpoint | None = None
        self._seen_version: int | None = None  # data_version at the end of a clean session
        self._reader = TileReader(self._conn)
        self._tiles: TileWriter | None = None
        self._derived: list[DerivedIndex] = []

    # ------------------------------------------------------------------ life cycle
    @classmethod
    def create(
        cls,
        path: Path,
        *,
        origin: str | None = None,
        blobs_backend: BackendName = "sqlite",
        signer: CheckpointSigner | None = None,
        render: Callable[[VaultSettings], str] | None = None,
        derived: Iterable[DerivedIndex] = (),
    ) -> Vault:
        """Create a new vault at ``path`` and open it as the writer.

        Creates the configuration, a fresh Ed25519 signing key (file mode 0600)
        and its verifier key, a unique origin ``echo.archive/<16 hex>``, the
        catalog and blob store, and signs the checkpoint of the empty tree.
        Everything is built in a temporary sibling directory and renamed into
        place, so a failed ``init`` leaves nothing behind.

        Args:
            path: the vault directory; must not exist, or be an empty directory.
            origin: the log origin (default: random, ``echo.archive/<16 hex>``,
                or the name of ``signer``'s key).
            blobs_backend: the blob store backend, ``"sqlite"`` or ``"directory"``
                (recorded as ``[blobs] backend`` in ``echo.toml``).
            signer: sign checkpoints with this instead of a new key: only its
                verifier key is written (no ``keys/signing.key``), and a writer
                must pass it to :meth:`open` to commit.
            render: makes the text of ``echo.toml`` from the vault's settings
                (the layers above add their tables: ``echoctl init`` writes
                the starter feeds); default: the vault's tables alone
                (:func:`~echo_archive.vault.settings.render_settings`).
            derived: derived indexes to attach (see :meth:`open`).

        Raises:
            VaultExistsError: ``path`` exists and is not an empty directory.
            VaultError: ``origin`` is not the name of ``signer``'s key.
            StorageError: a file cannot be written.

        """
        key = None
        if signer is None:
            origin = origin or f"echo.archive/{secrets.token_hex(8)}"
            key = generate_signer(origin)
            own: CheckpointSigner = KeySigner(key)
        else:
            if origin not in (None, signer.verifier.name):
                raise VaultError(
                    f"origin {origin!r} is not the name of the signer's key "
                    f"{signer.verifier.name!r}"
                )
            origin, own = signer.verifier.name, signer
        empty = own.sign(Checkpoint(origin=origin, size=0, root_hash=EMPTY_ROOT))
        cls._build(path, origin, own.verifier, key, empty, blobs_backend, render)
        return cls.open(path, signer=signer, derived=derived)

    @classmethod
    def create_replica(
        cls,
        path: Path,
        *,
        verifier_key: str,
        checkpoint: str,
        blobs_backend: BackendName = "sqlite",
    ) -> Vault:
        """Create a replica of another log at ``path`` and open it as the writer.

        A replica has no signing key: it holds its primary's verifier key and
        stores the primary's signed checkpoints, appended with the primary's
        entries (:meth:`append` with ``checkpoint=``). Its origin is the
        primary's.

        Args:
            path: the vault directory; must not exist, or be an empty directory.
            verifier_key: the primary's verifier key (C2SP signed-note vkey).
            checkpoint: the primary's signed checkpoint of the empty tree (size 0;
                an ECHO vault issues it at ``init``: ``checkpoint_at(0).note``).
            blobs_backend: as for :meth:`create`.

        Raises:
            VaultExistsError: ``path`` exists and is not an empty directory.
            VaultError: the key is malformed, or ``checkpoint`` does not verify
                with it or is not of the empty tree.
            StorageError: a file cannot be written.

        """
        try:
            verifier = parse_vkey(verifier_key.strip())
            cp = open_checkpoint(checkpoint, verifier)
        except NoteError as exc:
            raise VaultError(f"cannot start a replica at {path}: {exc}") from exc
        if cp.size != 0 or cp.root_hash != EMPTY_ROOT:
            raise VaultError(
                f"a replica starts from its primary's checkpoint of the empty tree; "
                f"this one is of size {cp.size}"
            )
        cls._build(path, cp.origin, verifier, None, checkpoint, blobs_backend)
        return cls.open(path)

    @classmethod
    def _build(
        cls,
        path: Path,
        origin: str,
        verifier: Verifier,
        key: Signer | None,
        empty_note: str,
        blobs_backend: BackendName,
        render: Callable[[VaultSettings], str] | None = None,
    ) -> None:
        """Lay out a new vault in a temporary sibling and rename it to ``path``."""
        path = Path(path)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            what = "a vault" if (path / CONFIG_FILE).exists() else "a non-empty path"
            raise VaultExistsError(f"{path} already holds {what}; refusing to initialize over it")
        parent = path.absolute().parent
        tmp = parent / f".{path.name}.init-{secrets.token_hex(4)}"
        try:
            parent.mkdir(parents=True, exist_ok=True)
            tmp.mkdir()
            (tmp / "keys").mkdir(mode=0o700)
            if key is not None:
                key_path = tmp / SIGNING_KEY_FILE
                fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(format_signer_key(key) + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())
            _write_public(tmp / VKEY_FILE, verifier.vkey + "\n")
            created = format_timestamp(time.time_ns())
            settings = VaultSettings(
                vault=VaultSection(origin=origin, created=created),
                blobs=BlobSection(backend=blobs_backend),
            )
            text = (render or render_settings)(settings)
            (tmp / CONFIG_FILE).write_text(text, encoding="utf-8")
            catalog.create_schema(tmp / CATALOG_FILE, origin)
            create_blob_store(blobs_backend, tmp / BLOBS_DIR).close()
            conn = catalog.connect(tmp / CATALOG_FILE, readonly=False)
            try:
                with catalog.transaction(conn, "writing the empty tree"):
                    conn.execute(
                        "INSERT INTO log_state(id, size, root) VALUES (1, 0, ?)", (EMPTY_ROOT,)
                    )
                    conn.execute(
                        "INSERT INTO checkpoints(size, root, note, signed_at) VALUES (?, ?, ?, ?)",
                        (0, EMPTY_ROOT, empty_note, created),
                    )
            finally:
                conn.close()
            for sub in (tmp / "keys", tmp / BLOBS_DIR, tmp):
                _fsync_dir(sub)
            if path.exists():
                path.rmdir()
            tmp.rename(path)
            _fsync_dir(parent)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise StorageError(f"cannot create vault at {path}: {exc}") from exc
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        log.info("vault.created", path=str(path), origin=origin, signing_key=key is not None)

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        readonly: bool = False,
        break_stale: bool = False,
        wait: float = DEFAULT_WAIT,
        signer: CheckpointSigner | None = None,
        derived: Iterable[DerivedIndex] = (),
    ) -> Vault:
        """Open the vault at ``path``.

        A writer takes the writer lock for a moment (waiting up to ``wait``
        seconds for another writer to finish), completes any unsealed tail
        left by a crash (:meth:`seal`), attaches ``derived`` (:meth:`attach`)
        and releases it; each later write takes it again (:meth:`writing`). A
        reader takes no lock and changes nothing.

        Args:
            path: the vault directory.
            readonly: open as a reader.
            break_stale: take over a lock left by a writer on another host.
            wait: seconds a write waits for the lock held by another process
                (:data:`~echo_archive.vault.lock.DEFAULT_WAIT` by default; 0
                does not wait); kept as :attr:`wait` for every later write.
            signer: sign checkpoints with this (writers; its verifier key must be
                the vault's). Default: the key in ``keys/signing.key`` if there is
                one, else none (a replica: it stores checkpoints signed elsewhere).
            derived: derived indexes to keep current at every commit.

        Raises:
            VaultNotFoundError: no vault at ``path``.
            VaultFormatError: ``catalog.sqlite`` is not an ECHO catalog of a known
                format (0-byte, foreign, newer), or is another log's; nothing is changed.
            VaultLockedError: another live writer still held the lock after
                ``wait`` seconds (writers only); the message names it.
            ConfigError: a vault table of ``echo.toml`` is invalid.
            StorageError: a file cannot be read.
            DerivedIndexError: a derived index cannot catch up with the log.
            ValueError: ``wait`` is negative.

        """
        if wait < 0:
            raise ValueError(f"wait must be 0 or more seconds, got {wait}")
        path = Path(path)
        if not (path / CONFIG_FILE).is_file():
            raise VaultNotFoundError(
                f"no vault at {path} (no {CONFIG_FILE}); create one with `echoctl init {path}`"
            )
        settings = load_settings(path / CONFIG_FILE)
        vkey_path, verifier = _read_verifier(path)
        if verifier.name != settings.vault.origin:
            raise VaultError(
                f"{vkey_path} names key {verifier.name!r} but the vault origin is "
                f"{settings.vault.origin!r}"
            )
        _, catalog_origin = catalog.check_format(path / CATALOG_FILE)  # before anything is written
        if catalog_origin != settings.vault.origin:
            raise VaultFormatError(
                f"{path / CATALOG_FILE} is the catalog of log {catalog_origin!r} but "
                f"{path / CONFIG_FILE} names origin {settings.vault.origin!r}; nothing was changed"
            )
        if signer is not None and signer.verifier.vkey != verifier.vkey:
            raise VaultError(
                f"the signer's key {signer.verifier.vkey!r} is not the vault's verifier "
                f"key {verifier.vkey!r} ({vkey_path})"
            )
        if not readonly and vkey_path != path / VKEY_FILE:
            _migrate_verifier(path, verifier)
        if readonly:
            signer = None
        elif signer is None and (path / SIGNING_KEY_FILE).exists():
            signer = load_key_signer(path / SIGNING_KEY_FILE, verifier)
        cat = SQLiteCatalog.open(path / CATALOG_FILE, readonly=readonly)
        try:
            blobs = open_blob_store(
                settings.blobs.backend,
                path / BLOBS_DIR,
                readonly=readonly,
                large_threshold=settings.blobs.large_threshold,
                level=settings.blobs.zstd_level,
            )
        except BaseException:
            cat.close()
            raise
        vault = cls(
            path,
            settings,
            verifier,
            cat,
            blobs,
            signer=signer,
            break_stale=break_stale,
            wait=wait,
            readonly=readonly,
        )
        try:
            if readonly:
                vault.attach(derived)
            else:
                with vault.writing():  # catches up: seals a tail left by a crash
                    vault.attach(derived)
        except BaseException:
            vault.close()
            raise
        return vault

    def close(self) -> None:
        """Close the databases (and drop the writer lock if held). Safe to call twice."""
        self.blobs.close()
        self._catalog.close()
        if self._lock:
            self._lock.release()
            self._lock = None

    @contextmanager
    def writing(self, wait: float | None = None) -> Iterator[Self]:
        """Hold the writer lock for the writes inside the block (re-entrant).

        On taking the lock the vault catches up with what another process
        wrote since this one last held it: the cached right edge of the log
        is reloaded if the log's size or root moved, and an unsealed tail (a
        writer that crashed between its catalog transaction and its
        checkpoint) is sealed. Every write (:meth:`commit`, :meth:`append`,
        :meth:`seal`) runs inside this; a caller holds it across several
        writes to take the lock once (the
        :class:`~echo_archive.vault.writer.VaultWriter` does, per batch). The
        lock is released when the outermost block exits, however it exits.

        Args:
            wait: seconds to wait for another process to release the lock
                (default: :attr:`wait`). Ignored when already held.

        Yields:
            This vault.

        Raises:
            VaultError: the vault is open read-only.
            VaultLockedError: another process still held the lock after
                ``wait`` seconds, or a lock record left by another host is
                refused (see :class:`~echo_archive.vault.lock.WriterLock`).
            LogError: the stored log does not agree with its recorded root.
            StorageError: the lock or an unsealed tail's checkpoint cannot be written.
        """
        self._require_writer()
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        lock = WriterLock(
            self.path / LOCK_FILE,
            break_stale=self._break_stale,
            wait=self.wait if wait is None else wait,
        )
        self._lock, self._depth = lock, 1
        try:
            self._catch_up()
            yield self
            self._seen_version = self._data_version()  # a clean session: nothing left to seal
        finally:
            self._lock, self._depth = None, 0
            lock.release()

    @property
    def break_stale(self) -> bool:
        """Whether writes take over a writer lock record left by another host."""
        return self._break_stale

    @property
    def holds_lock(self) -> bool:
        """True while this vault holds the writer lock (inside :meth:`writing`)."""
        return self._lock is not None

    def _data_version(self) -> int:
        """SQLite's ``PRAGMA data_version``: changes when another connection commits."""
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def _catch_up(self) -> None:
        """Reload the cached log edge if another writer moved the log; seal an unsealed tail.

        Skipped when no other connection committed to the catalog since this
        vault's last clean session ended (SQLite ``PRAGMA data_version``, which
        "will be different if changes were committed to the database by any
        other connection in the interim").
        """
        self._sealed_on_taking = None
        seen, self._seen_version = self._seen_version, None
        if seen is not None and seen == self._data_version():
            return
        tiles = self._tiles
        if tiles is not None:
            size, root = self.log_state()
            if tiles.size != size or tiles.compact.root() != root:
                log.info("vault.log_moved", cached=tiles.size, size=size, path=str(self.path))
                self._tiles = None
        self._sealed_on_taking = self._seal()
        self._catch_up_derived()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def origin(self) -> str:
        """The log origin (C2SP tlog-checkpoint first line)."""
        return self.settings.vault.origin

    @property
    def config_path(self) -> Path:
        """The vault's ``echo.toml`` (the layers above read their own tables from it)."""
        return self.path / CONFIG_FILE

    @property
    def catalog(self) -> Catalog:
        """The catalog, for the derived indexes and the operational state above the vault.

        Writes go through :meth:`Catalog.transaction`; a reader's catalog refuses them.
        """
        return self._catalog

    @property
    def derived(self) -> tuple[DerivedIndex, ...]:
        """The attached derived indexes, in the order they are applied."""
        return tuple(self._derived)

    def attach(self, indexes: Iterable[DerivedIndex]) -> None:
        """Keep ``indexes`` current at every commit from now on.

        A writer creates their missing tables and applies every entry they
        have not applied yet (catch-up, :data:`DERIVED_CHUNK` entries per
        transaction; see :mod:`.derived` for how an index's progress is
        recorded). A reader only records them. An index already attached (by
        name) is left as it is.

        Raises:
            DerivedIndexError: an index requires one that is not attached, or
                cannot apply an entry (what was applied before stays).
            StorageError: the catalog cannot be written.
        """
        known = {index.name for index in self._derived}
        new = [index for index in indexes if index.name not in known]
        if not new:
            return
        ordered = order_indexes([*self._derived, *new])
        if self._signer is None:
            self._derived = ordered
            return
        with self.writing():
            for index in new:
                self._register(index)
            self._derived = ordered
            self._catch_up_derived()

    def _register(self, index: DerivedIndex) -> int:
        """Create ``index``'s missing tables; give it a ``derived_state`` row if it has none.

        The row says the log size when all its tables already existed (a vault
        written before ``derived_state``, which kept them in the entries'
        transactions), else 0 (caught up next). Creating is idempotent, so an
        index or table a newer version of an index adds is added here. Tables
        holding rows of another revision of the index are dropped and
        recreated, and the index applies the whole log again
        (:func:`~echo_archive.vault.derived.reset_if_stale`).

        Returns:
            How many entries the index has applied.
        """
        had = set(index.tables) <= self._catalog.tables()
        self._catalog.create_tables(DERIVED_STATE_DDL)
        if reset_if_stale(self._catalog, index):
            log.info("vault.derived_reset", index=index.name, revision=index_revision(index))
            return 0
        self._catalog.create_tables(index.ddl)
        done = applied_size(self._catalog, index.name)
        if done is None:
            done = self.log_state()[0] if had else 0
            with self._catalog.transaction(f"recording derived index {index.name}"):
                record_applied(self._catalog, index.name, done)
                record_revision(self._catalog, index.name, index_revision(index))
        elif not had:
            with self._catalog.transaction(f"recording derived index {index.name}"):
                record_revision(self._catalog, index.name, index_revision(index))
        return done

    def _catch_up_derived(self) -> None:
        """Apply to each attached index the entries it has not applied (writer, lock held)."""
        size = self.log_state()[0]
        for index in self._derived:
            done = applied_size(self._catalog, index.name)
            if done is None:
                done = self._register(index)
            for start in range(done, size, DERIVED_CHUNK):
                end = min(size, start + DERIVED_CHUNK)
                with self._catalog.transaction(f"catching up derived index {index.name}"):
                    apply_range(self._catalog, [index], self, start, end)
                    record_applied(self._catalog, index.name, end)
            if done < size:
                log.info("vault.derived_caught_up", index=index.name, first=done, size=size)

    @property
    def readonly(self) -> bool:
        """True when opened as a reader."""
        return not self._writable

    @property
    def signer(self) -> CheckpointSigner | None:
        """The checkpoint signer of a writer, or None (a reader, or a replica)."""
        return self._signer

    def rebuild(self, names: Sequence[str] | None = None) -> list[str]:
        """Rebuild attached derived indexes from the log and the blobs (``echoctl rebuild``).

        Each index's tables are emptied and every entry applied again, in one
        transaction per index (readers keep seeing the old rows until it
        commits); indexes are rebuilt in application order, so one that
        requires another reads the rebuilt rows.

        Args:
            names: the indexes to rebuild (default: every attached one).

        Returns:
            The names rebuilt, in the order they were.

        Raises:
            VaultError: the vault is open read-only.
            DerivedIndexError: a name is not an attached index, or a rebuild
                failed (that index keeps its old rows; those before stay rebuilt).
            StorageError: the catalog cannot be written.
        """
        self._require_writer()
        attached = {index.name for index in self._derived}
        wanted = list(attached) if names is None else list(names)
        unknown = [n for n in wanted if n not in attached]
        if unknown:
            known = ", ".join(index.name for index in self._derived) or "none"
            raise DerivedIndexError(
                f"no derived index named {', '.join(map(repr, unknown))} (indexes: {known})"
            )
        done = []
        with self.writing():
            size = self.log_state()[0]
            for index in self._derived:
                if index.name in wanted:
                    rebuild_index(self._catalog, index, self, size)
                    log.info("vault.derived_rebuilt", index=index.name, size=size)
                    done.append(index.name)
        return done

    # ------------------------------------------------------------------ state
    def log_state(self) -> tuple[int, bytes]:
        """Return the committed ``(tree size, root hash)``, sealed or not."""
        row = self._conn.execute("SELECT size, root FROM log_state WHERE id = 1").fetchone()
        if row is None:
            raise LogError(f"{self.path / CATALOG_FILE}: log_state row is missing")
        return int(row[0]), catalog.as_bytes(row[1])

    @property
    def size(self) -> int:
        """The size of the tree of the latest signed checkpoint (acknowledged entries)."""
        return self.latest_checkpoint().size

    def latest_checkpoint(self) -> SignedCheckpoint:
        """Return the latest stored checkpoint, verified against the verifier key.

        Raises:
            LogError: no checkpoint is stored.
            NoteError: the stored checkpoint does not verify.

        """
        row = self._conn.execute(
            "SELECT note, signed_at FROM checkpoints ORDER BY size DESC LIMIT 1"
        ).fetchone()
        if row is None:
            raise LogError(f"{self.path}: no checkpoint stored")
        return self._open_note(row[0], row[1])

    def checkpoint_at(self, size: int) -> SignedCheckpoint:
        """Return the stored checkpoint of tree size ``size``.

        Raises:
            LogError: no checkpoint of that size was issued.

        """
        row = self._conn.execute(
            "SELECT note, signed_at FROM checkpoints WHERE size = ?", (size,)
        ).fetchone()
        if row is None:
            raise LogError(f"no checkpoint was issued at tree size {size}")
        return self._open_note(row[0], row[1])

    def checkpoint_sizes(self) -> list[int]:
        """Return the tree sizes of every stored checkpoint, ascending."""
        return [r[0] for r in self._conn.execute("SELECT size FROM checkpoints ORDER BY size")]

    def checkpoint_count(self) -> int:
        """Return how many checkpoints are stored (one per signed tree size)."""
        row = self._conn.execute("SELECT count(*) FROM checkpoints").fetchone()
        return int(row[0])

    def checkpoints_after(self, after: int, limit: int) -> list[SignedCheckpoint]:
        """Return up to ``limit`` stored checkpoints of tree size above ``after``, ascending.

        A keyset read (the size is the key): a deep page costs what the first
        does. Each note is verified against the verifier key as it is read.

        Args:
            after: the size to start after (-1: from the first).
            limit: the most checkpoints to return (at least 1).

        Raises:
            NoteError: a stored checkpoint does not verify.
        """
        rows = self._conn.execute(
            "SELECT note, signed_at FROM checkpoints WHERE size > ? ORDER BY size LIMIT ?",
            (after, max(1, limit)),
        ).fetchall()
        return [self._open_note(note, signed_at) for note, signed_at in rows]

    def _open_note(self, note: str, signed_at: str) -> SignedCheckpoint:
        cp = open_checkpoint(note, self.verifier, self.origin)
        return SignedCheckpoint(cp, note, signed_at)

    # ------------------------------------------------------------------ writing
    def _require_writer(self) -> None:
        if not self._writable:
            raise VaultError(f"vault {self.path} is open read-only")

    def _require_signer(self) -> CheckpointSigner:
        self._require_writer()
        if self._signer is None:
            raise VaultError(
                f"vault {self.path} has no checkpoint signer (no {SIGNING_KEY_FILE}, none "
                f"passed to open): it stores checkpoints signed by {self.verifier.name!r}; "
                "append entries with their signed checkpoint (Vault.append(..., checkpoint=))"
            )
        return self._signer

    def _tile_writer(self) -> TileWriter:
        if self._tiles is None:
            self._tiles = TileWriter(self._conn, self.log_state()[0])
        return self._tiles

    def commit(self, records: Sequence[Record]) -> CommitResult:
        """Archive ``records`` and return only once a signed checkpoint covers them.

        Entries are built (and so validated) before any small blob is written;
        a file blob is streamed into the store first, as its digest is only
        known after reading it.

        Args:
            records: the records, in the order their entries join the log.

        Returns:
            A receipt per record (index, leaf hash, entry) and the checkpoint.

        Raises:
            VaultError: the vault is open read-only, or has no signer (a replica).
            VaultLockedError: another process held the writer lock for longer
                than :attr:`wait` (nothing is written).
            EntryError: a record does not make a valid entry (nothing is logged).
            StorageError: a write failed. Nothing is acknowledged. If the failure
                came after the catalog transaction, the entries are logged but
                unsealed; the next commit or :meth:`seal` covers them.
        """
        self._require_signer()
        if not records:
            return CommitResult([], self.latest_checkpoint())
        with self.writing():
            result = self._commit(records)
        self._committed(result)
        return result

    def _commit(self, records: Sequence[Record]) -> CommitResult:
        small: list[bytes] = []
        refs: list[dict[str, tuple[bytes, int]]] = []
        for rec in records:
            ref: dict[str, tuple[bytes, int]] = {}
            for role, content in rec.blobs.items():
                if isinstance(content, bytes):
                    ref[role] = (hashlib.sha256(content).digest(), len(content))
                    small.append(content)
                else:
                    ref[role] = self.blobs.put_file(Path(content))
            refs.append(ref)
        logged_at = format_timestamp(time.time_ns())
        entries = [
            Entry.build(rec.type, logged_at, ref, rec.meta)
            for rec, ref in zip(records, refs, strict=True)
        ]
        if small:  # 1. blobs, durable
            self.blobs.put_many(small)
        return self._append(entries)

    def append(
        self,
        entries: Sequence[Entry],
        *,
        given: Mapping[str, object] | None = None,
        checkpoint: str | None = None,
    ) -> CommitResult:
        """Append already-built entries whose blobs are already in the store.

        This is the log append on its own (used when entries come from
        elsewhere: an import, a replica): the entries keep their own
        ``logged_at``. Returns only once a signed checkpoint covers them.

        Args:
            entries: parsed entries (:func:`~echo_archive.vault.entry.parse_entry`
                or :meth:`Entry.build`), in log order.
            given: by derived index name, what the committer knows that the
                entries do not hold, passed to that index's
                :meth:`~echo_archive.vault.derived.DerivedIndex.apply` (the
                pipeline's observations of duplicate sightings).
            checkpoint: a checkpoint note for the tree after the append, signed
                elsewhere (a replica appending its primary's entries with the
                primary's checkpoint). It must verify with the vault's verifier
                key, name its origin, and commit to exactly the size and root
                recomputed from the stored log plus ``entries``; it is then
                stored in the same transaction as the entries. Without it the
                vault's signer signs a new checkpoint.

        Returns:
            A receipt per entry and the checkpoint.

        Raises:
            VaultError: the vault is open read-only, or has no signer and no
                ``checkpoint`` is given.
            VaultLockedError: as for :meth:`commit`.
            BlobNotFoundError: an entry names a blob the store does not hold
                (nothing is written).
            NoteError: ``checkpoint`` is malformed or does not verify with the
                vault's verifier key (nothing is written).
            LogError: the log grew under this writer (another writer appended
                without the lock), or ``checkpoint`` is of another tree size or
                root than the log with ``entries`` appended (nothing is written).
            StorageError: as for :meth:`commit`.
        """
        if checkpoint is None:
            self._require_signer()
        else:
            self._require_writer()
        if not entries:
            return CommitResult([], self.latest_checkpoint())
        with self.writing():
            result = self._append_checked(entries, given, checkpoint)
        self._committed(result)
        return result

    def _committed(self, result: CommitResult) -> None:
        """Tell :attr:`on_commit` what a durable commit logged (what it raises is logged)."""
        if self.on_commit is None or not result.receipts:
            return
        try:
            self.on_commit(result)
        except Exception as exc:  # the commit is durable: a listener never undoes it
            log.error("vault.on_commit_failed", error=repr(exc))

    def _append_checked(
        self,
        entries: Sequence[Entry],
        given: Mapping[str, object] | None,
        note: str | None = None,
    ) -> CommitResult:
        named = {b.digest: i for i, e in enumerate(entries) for b in e.blobs}
        missing = self.blobs.missing(named)
        if missing:
            first = min(missing, key=named.__getitem__)
            raise BlobNotFoundError(
                f"entry {named[first]} of the batch names blob sha256:{first.hex()}, which the "
                f"store does not hold ({len(missing)} missing in all); nothing was appended"
            )
        return self._append(entries, given, note)

    def _append(
        self,
        entries: Sequence[Entry],
        given: Mapping[str, object] | None = None,
        note: str | None = None,
    ) -> CommitResult:
        """Steps 2 and 3 of the commit protocol for entries whose blobs are durable.

        With ``note`` (a checkpoint signed elsewhere), step 3 is checking it
        against the recomputed tree before step 2 and storing it inside step 2's
        transaction.
        """
        signer = self._require_signer() if note is None else None
        self._require_writer()
        leaves = leaf_hashes([e.raw for e in entries])
        tiles = self._tile_writer()
        start = tiles.size
        pending = tiles.prepare(leaves)
        signed = None if note is None else self._check_note(note, pending.size, pending.root)
        # 2. entries, blob index, tiles, log state: one transaction.
        with self._catalog.transaction(f"appending entries {start}..{pending.size - 1}"):
            faults.point("catalog.begin")
            logged = self._conn.execute("SELECT size FROM log_state WHERE id = 1").fetchone()
            if logged is None or logged[0] != start:  # the lock makes this impossible; guard
                self._tiles = None
                raise LogError(
                    f"the log holds {None if logged is None else logged[0]} entries, not the "
                    f"{start} this writer last saw: another writer appended without the lock; "
                    "nothing was appended"
                )
            self._conn.executemany(
                "INSERT INTO entries(idx, type, entry) VALUES (?, ?, ?)",
                [(start + i, e.type, e.raw) for i, e in enumerate(entries)],
            )
            self._conn.executemany(
                "INSERT INTO entry_blobs(idx, role, digest) VALUES (?, ?, ?)",
                [(start + i, b.role, b.digest) for i, e in enumerate(entries) for b in e.blobs],
            )
            TileWriter.write(self._conn, pending)
            for index in self._derived:
                index.apply(self._catalog, start, entries, self, (given or {}).get(index.name))
                record_applied(self._catalog, index.name, pending.size)
            if signed is not None:
                self._store_checkpoint(signed)
            faults.point("catalog.commit")
        tiles.accept(pending)
        # 3. checkpoint.
        if signed is not None:
            checkpoint = signed
        else:
            assert signer is not None
            checkpoint = self._sign_and_store(signer, pending.size, pending.root)
        receipts = [
            Receipt(start + i, leaf, e)
            for i, (leaf, e) in enumerate(zip(leaves, entries, strict=True))
        ]
        return CommitResult(receipts, checkpoint)

    def _check_note(self, note: str, size: int, root: bytes) -> SignedCheckpoint:
        """Verify a checkpoint note against the verifier key and the tree ``(size, root)``."""
        cp = open_checkpoint(note, self.verifier, self.origin)
        if cp.size != size or cp.root_hash != root:
            raise LogError(
                f"checkpoint note of {cp.origin!r} commits to size {cp.size} root "
                f"{cp.root_hash.hex()}, but the log with these entries has size {size} root "
                f"{root.hex()}; nothing was appended"
            )
        return SignedCheckpoint(cp, note, format_timestamp(time.time_ns()))

    def _store_checkpoint(self, checkpoint: SignedCheckpoint) -> None:
        """Insert a verified checkpoint's row (inside the caller's transaction)."""
        self._conn.execute(
            "INSERT INTO checkpoints(size, root, note, signed_at) VALUES (?, ?, ?, ?)",
            (
                checkpoint.size,
                checkpoint.checkpoint.root_hash,
                checkpoint.note,
                checkpoint.signed_at,
            ),
        )

    def _sign_and_store(self, signer: CheckpointSigner, size: int, root: bytes) -> SignedCheckpoint:
        cp = Checkpoint(origin=self.origin, size=size, root_hash=root)
        try:
            faults.point("checkpoint.sign")
            note = signer.sign(cp)
        except OSError as exc:
            raise StorageError(f"signing the checkpoint of size {size} failed: {exc}") from exc
        # The signer is pluggable: store only a note that verifies and says what was asked.
        checkpoint = self._check_note(note, size, root)
        with self._catalog.transaction(f"storing the checkpoint of size {size}"):
            faults.point("checkpoint.write")
            self._store_checkpoint(checkpoint)
        return checkpoint

    def seal(self) -> SignedCheckpoint | None:
        """Sign a checkpoint covering entries committed but not yet covered (after a crash).

        Returns:
            The new checkpoint, or None when the latest checkpoint already covers the log.

        Raises:
            VaultError: read-only vault, or an unsealed tail and no signer.
            VaultLockedError: as for :meth:`commit`.
            LogError: the stored tiles do not agree with the log state.
            StorageError: the checkpoint cannot be stored.

        """
        self._require_writer()
        if self._depth:
            return self._seal()
        with self.writing():  # taking the lock seals the tail
            return self._sealed_on_taking or self._seal()

    def _seal(self) -> SignedCheckpoint | None:
        self._require_writer()
        size, root = self.log_state()
        latest = self.latest_checkpoint()
        if latest.size == size:
            return None
        if latest.size > size:
            raise LogError(
                f"latest checkpoint covers {latest.size} entries but the log holds {size}: "
                "the catalog lost committed entries; run `echoctl verify`"
            )
        tiles = self._tile_writer()
        if tiles.compact.root() != root:
            raise LogError(
                f"stored log hashes do not give the recorded root at size {size}; "
                "run `echoctl verify`"
            )
        signer = self._require_signer()
        log.warning(
            "vault.sealing_unsealed_tail", first=latest.size, last=size - 1, path=str(self.path)
        )
        return self._sign_and_store(signer, size, root)

    # ------------------------------------------------------------------ reading
    def entry(self, index: int) -> Entry:
        """Return the entry at ``index``.

        Raises:
            LogError: no entry at that index.
            EntryError: the stored entry is malformed.

        """
        row = self._conn.execute("SELECT entry FROM entries WHERE idx = ?", (index,)).fetchone()
        if row is None:
            raise LogError(f"no entry at index {index} (log size {self.log_state()[0]})")
        return parse_entry(catalog.as_bytes(row[0]), where=f"entry {index}")

    def entries(self, first: int, end: int) -> list[Entry]:
        """Return the entries ``first .. end-1``, in order.

        Raises:
            LogError: an index of the range has no entry.
            EntryError: a stored entry is malformed.
        """
        found = [entry for _, entry in self.iter_entries(first, end)]
        if len(found) != max(0, end - first):
            raise LogError(f"entries {first}..{end - 1}: {len(found)} of them are stored")
        return found

    def entry_bytes(self, first: int, end: int) -> list[bytes]:
        """Return the stored bytes of entries ``first .. end-1``, in order, unparsed.

        These are exactly the bytes each leaf hash is computed over
        (``SHA-256(0x00 || entry)``, RFC 9162 §2.1.1): the RFC 8785 canonical
        JSON written at append. For serving entry bundles (C2SP tlog-tiles).

        Raises:
            LogError: an index of the range has no entry.
        """
        rows = self._conn.execute(
            "SELECT idx, entry FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx",
            (first, end),
        ).fetchall()
        if len(rows) != max(0, end - first):
            raise LogError(f"entries {first}..{end - 1}: {len(rows)} of them are stored")
        return [catalog.as_bytes(raw) for _, raw in rows]

    def iter_entries(self, first: int = 0, end: int | None = None) -> Iterator[tuple[int, Entry]]:
        """Yield ``(index, entry)`` for the stored entries ``first .. end-1`` (default: all).

        Raises:
            EntryError: a stored entry is malformed.
        """
        stop = self.log_state()[0] if end is None else end
        rows = self._catalog.query(
            "SELECT idx, entry FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx",
            (first, stop),
        )
        for idx, raw in rows:
            yield int(idx), parse_entry(catalog.as_bytes(raw), where=f"entry {idx}")

    def blob(self, digest: bytes) -> bytes:
        """Return the bytes of blob ``digest`` (32 bytes).

        Raises:
            BlobNotFoundError: the store does not hold it.
            BlobCorruptError: the stored bytes do not hash to the digest.
        """
        return self.blobs.get(digest)

    def stored_nodes(self, level: int, first: int = 0) -> Iterator[tuple[int, bytes]]:
        """Yield ``(node index, hash)`` of every stored log node at ``level``, in order.

        For :mod:`.verify`, which compares them with the hashes it recomputes.

        Args:
            level: the tree level (0: leaf hashes).
            first: start at this node index (default: the first).
        """
        return iter_level(self._conn, level, first)

    def tile_hashes(self, level: int, index: int, width: int) -> bytes:
        """Return the first ``width`` node hashes of stored tile ``index`` at ``level``.

        Tile ``index`` of level ``level`` holds the hashes of nodes
        ``index*256 .. index*256+255`` of that level (:mod:`.log`); a node of
        level ``L`` is the root of the perfect subtree over ``2^L`` leaves, so
        the tiles of level ``8*l`` are the C2SP tlog-tiles tiles of level ``l``.

        Args:
            level: the tree level (0: leaf hashes).
            index: the tile index.
            width: how many hashes, 1 to 256.

        Returns:
            ``width * 32`` bytes.

        Raises:
            LogError: ``width`` is out of range, or the tile holds fewer hashes
                (beyond the tree, or damaged tiles).
        """
        if not 1 <= width <= TILE_WIDTH:
            raise LogError(f"tile width {width}: must be 1 to {TILE_WIDTH}")
        data = read_tile(self._conn, level, index)
        need = width * HASH_SIZE
        if len(data) < need:
            raise LogError(
                f"tile (level {level}, index {index}) holds {len(data) // HASH_SIZE} "
                f"hashes, not {width}"
            )
        return data[:need]

    def right_edge(self, size: int) -> CompactRange:
        """The compact range (right-edge peaks) of the stored tree of ``size`` entries.

        Read from the stored node hashes (O(log n) nodes); an incremental
        verify seeds its recomputation from it (:func:`.verify.verify_entries`).

        Raises:
            LogError: ``size`` is beyond the log, or a node is not stored.
        """
        self._check_size(size)
        return CompactRange.from_reader(size, self._reader)

    def resolve(self, ref: str) -> int:
        """Find an entry index from a reference: an index, or a blob digest.

        Args:
            ref: ``"42"`` (an index), or ``"sha256:<hex>"`` / bare 64 hex (a blob
                digest: the earliest entry naming that blob).

        Raises:
            LogError: nothing matches.

        """
        text = ref.strip()
        if text.isdigit():
            index = int(text)
            size = self.log_state()[0]
            if index >= size:
                raise LogError(f"entry index {index} is beyond the log (size {size})")
            return index
        try:
            digest = parse_digest(text)
        except BlobError as exc:
            raise LogError(f"{ref!r} is neither an entry index nor a blob digest") from exc
        row = self._conn.execute(
            "SELECT min(idx) FROM entry_blobs WHERE digest = ?", (digest,)
        ).fetchone()
        if row is None or row[0] is None:
            raise LogError(f"no entry names blob sha256:{digest.hex()}")
        return int(row[0])

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 §2.1.3.1 inclusion proof of entry ``index`` in the tree of ``size``.

        Args:
            index: the entry index.
            size: the tree size (default: the latest checkpoint's).

        Raises:
            LogError: ``index >= size`` or ``size`` beyond the log.

        """
        size = self.size if size is None else size
        self._check_size(size)
        return inclusion_proof(index, size, self._reader)

    def consistency_proof(self, old: int, new: int | None = None) -> list[bytes]:
        """RFC 9162 §2.1.4.1 consistency proof between tree sizes ``old`` and ``new``.

        Raises:
            LogError: sizes out of order or beyond the log.

        """
        new = self.size if new is None else new
        self._check_size(new)
        return consistency_proof(old, new, self._reader)

    def _check_size(self, size: int) -> None:
        logged = self.log_state()[0]
        if size > logged:
            raise LogError(f"tree size {size} is beyond the log (size {logged})")

    def leaf_hash(self, index: int) -> bytes:
        """The stored leaf hash of entry ``index`` (32 bytes).

        Raises:
            LogError: no such entry.

        """
        self._check_size(index + 1)
        return self._reader.get_nodes([(0, index)])[0]

    def root_at(self, size: int) -> bytes:
        """The root hash of the tree of the first ``size`` entries, from stored hashes."""
        self._check_size(size)
        return EMPTY_ROOT if size == 0 else subtree_hash(0, size, self._reader)
