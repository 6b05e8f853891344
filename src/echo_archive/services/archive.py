"""Archive local files as evidence: one ``capture`` entry per file, its bytes as a blob.

The capture entry of a local file has the ``meta`` of
:func:`echo_archive.schemas.file_capture` (``kind: "file"``, base name,
size, mtime) and one blob, ``body``, holding the file's bytes (see
``docs/entries.md``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from echo_archive import schemas
from echo_archive.errors import InputError
from echo_archive.vault.entry import parse_entry
from echo_archive.vault.vault import CommitResult, Record, Vault
from echo_archive.vault.writer import VaultWriter

__all__ = [
    "AddResult",
    "ArchivedFile",
    "FileSelection",
    "add_files",
    "already_archived",
    "archive_files",
    "check_files",
    "file_capture",
    "file_digest",
    "select_files",
]

_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class ArchivedFile:
    """One archived file.

    Attributes:
        file: the path as given.
        index: the log index of its capture entry.
        digest: its content's digest (``sha256:<hex>``).
        size: its size in bytes.
        checkpoint_size: the tree size of the checkpoint that covers it.
    """

    file: Path
    index: int
    digest: str
    size: int
    checkpoint_size: int

    def to_json(self) -> dict[str, Any]:
        """``{"file", "index", "digest", "size", "checkpoint_size"}`` (the path as text)."""
        return {
            "file": str(self.file),
            "index": self.index,
            "digest": self.digest,
            "size": self.size,
            "checkpoint_size": self.checkpoint_size,
        }


def check_files(paths: Sequence[Path]) -> None:
    """Check that every path is a readable regular file, before anything is written.

    Raises:
        InputError: a path is missing, not a regular file, or not readable
            (the first such path is named).
    """
    for f in paths:
        if not f.is_file():
            raise InputError(f"{f}: not a regular file (missing, or a directory)")
        if not os.access(f, os.R_OK):
            raise InputError(f"{f}: not readable")


def file_capture(path: Path) -> Record:
    """The record of a local file's capture entry (its meta; its bytes streamed from disk).

    Raises:
        InputError: the file cannot be stat'ed.
        EntrySchemaError: the name is empty (the schema refuses it).
    """
    try:
        st = path.stat()
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from exc
    meta = schemas.file_capture(path.name, st.st_size, st.st_mtime_ns)
    return Record(type="capture", meta=meta, blobs={"body": path})


def archive_files(
    vault: Vault | VaultWriter,
    paths: Sequence[Path],
    *,
    on_batch: Callable[[Sequence[ArchivedFile]], None] | None = None,
) -> list[ArchivedFile]:
    """Archive local files as evidence, ``[log] batch_size`` files per commit.

    All paths are checked before anything is written; a missing or
    unreadable file stops the call with nothing archived. Each batch is
    acknowledged (covered by a signed checkpoint) before ``on_batch`` is
    called with it.

    Through a :class:`~echo_archive.vault.writer.VaultWriter`, every batch is
    queued at once (coalesced with other queued commits), and ``on_batch``
    is called in order as each is acknowledged.

    Args:
        vault: the vault's writer (or a writer vault, committing itself).
        paths: the files, archived in this order.
        on_batch: called after each commit with that batch's files.

    Returns:
        Every archived file, in order.

    Raises:
        InputError: a path is not a readable regular file (nothing archived).
        VaultError: the vault is open read-only.
        VaultLockedError: another process kept the writer lock past the wait.
        StorageError: a write failed; batches committed before stay archived.
    """
    check_files(paths)
    done: list[ArchivedFile] = []
    batch = vault.settings.log.batch_size
    chunks = [paths[start : start + batch] for start in range(0, len(paths), batch)]
    queued: list[tuple[Sequence[Path], Callable[[], CommitResult]]] = []
    for chunk in chunks:
        records = [file_capture(f) for f in chunk]
        if isinstance(vault, VaultWriter):
            queued.append((chunk, vault.commit(records).result))
        else:
            queued.append((chunk, partial(vault.commit, records)))
    for chunk, outcome in queued:
        result = outcome()
        archived = [
            ArchivedFile(
                file=f,
                index=receipt.index,
                digest=receipt.entry.blobs[0].digest_text,
                size=receipt.entry.blobs[0].size,
                checkpoint_size=result.checkpoint.size,
            )
            for f, receipt in zip(chunk, result.receipts, strict=True)
        ]
        done.extend(archived)
        if on_batch is not None:
            on_batch(archived)
    return done


@dataclass(frozen=True, slots=True)
class FileSelection:
    """The files a set of paths names, in archiving order, and what was left out.

    Attributes:
        files: the regular files, in order (each argument in the order
            given; a directory's files sorted by their path below it).
        skipped: ``(path, reason)`` of each entry of a directory left out
            (a symlink leading out of the directory, a special file).
    """

    files: list[Path]
    skipped: list[tuple[Path, str]]


def _inside(path: Path, root: Path) -> bool:
    """Whether ``path`` resolves to ``root`` or below it (symlinks resolved)."""
    try:
        path.resolve(strict=True).relative_to(root)
    except (OSError, ValueError):
        return False
    return True


def select_files(paths: Sequence[Path], *, recursive: bool = False) -> FileSelection:
    """The files to archive for ``paths``: files as given, directories walked with ``recursive``.

    A directory is walked top-down with its entries sorted by name
    (``os.walk``, code-point order), so the order is the same on every run
    and machine. Symlinked directories are not entered; a symlink to a file
    is archived only when it resolves inside the directory given (a link
    leading out of it is skipped with the reason, as is a special file: a
    FIFO, socket or device).

    Args:
        paths: files and directories, as given by the user.
        recursive: walk directories (else a directory is an error).

    Returns:
        The selection.

    Raises:
        InputError: a path does not exist, or is a directory without
            ``recursive`` (named, with the fix).
    """
    files: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    for given in paths:
        if given.is_dir() and not given.is_symlink():
            if not recursive:
                raise InputError(f"{given}: a directory; give -r to archive the files below it")
            root = given.resolve()
            for top, dirs, names in os.walk(given, followlinks=False):
                dirs.sort()
                for name in sorted(names):
                    path = Path(top) / name
                    if path.is_symlink() and not _inside(path, root):
                        skipped.append((path, "a symlink leading out of the directory"))
                    elif not path.is_file():
                        skipped.append((path, "not a regular file"))
                    else:
                        files.append(path)
                for name in dirs:
                    if (Path(top) / name).is_symlink():
                        skipped.append((Path(top) / name, "a symlinked directory (not followed)"))
        elif not given.exists():
            raise InputError(f"{given}: no such file")
        else:
            files.append(given)
    return FileSelection(files, skipped)


def file_digest(path: Path) -> bytes:
    """SHA-256 of a file's bytes (32 bytes), read in 1 MiB chunks.

    Raises:
        InputError: the file cannot be read.
    """
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from exc
    return digest.digest()


def already_archived(vault: Vault, files: Iterable[Path]) -> dict[Path, int]:
    """The files a file capture of the vault already holds: same base name and same bytes.

    Each file is hashed; the captures whose ``body`` blob has that digest
    are found through the catalog's digest index (``entry_blobs``), so the
    cost is one lookup per file, not a pass over the log.

    Args:
        vault: an open vault (a reader is enough).
        files: the files (each is read to hash it).

    Returns:
        ``{path: log index of the earliest capture with that name and digest}``.

    Raises:
        InputError: a file cannot be read.
        StorageError: the catalog could not be read.
    """
    found: dict[Path, int] = {}
    for f in files:
        digest = file_digest(f)
        rows = vault.catalog.query(
            "SELECT e.idx, e.entry FROM entry_blobs b JOIN entries e ON e.idx = b.idx "
            "WHERE b.digest = ? AND b.role = 'body' AND e.type = 'capture' ORDER BY e.idx",
            (digest,),
        )
        for idx, raw in rows:
            entry = parse_entry(bytes(raw), where=f"entry {idx}")
            if entry.meta.get("kind") == "file" and entry.meta.get("name") == f.name:
                found[f] = int(idx)
                break
    return found


@dataclass(frozen=True, slots=True)
class AddResult:
    """What ``add`` did.

    Attributes:
        archived: the files archived now, in order.
        already: ``(path, index)`` of each file left out because capture
            ``index`` holds the same name and bytes.
        skipped: ``(path, reason)`` of each directory entry left out.
    """

    archived: list[ArchivedFile]
    already: list[tuple[Path, int]]
    skipped: list[tuple[Path, str]]


def add_files(
    writer: VaultWriter,
    paths: Sequence[Path],
    *,
    recursive: bool = False,
    again: bool = False,
    on_batch: Callable[[Sequence[ArchivedFile]], None] | None = None,
) -> AddResult:
    """Archive files and directories (``echoctl add``; the HTTP API calls the same).

    :func:`select_files`, then (unless ``again``) leave out each file that
    :func:`already_archived` finds, then :func:`archive_files`. Re-running
    an ``add`` that crashed part-way archives only what the crash lost.

    Args:
        writer: the vault's writer.
        paths: files and directories.
        recursive: walk directories.
        again: archive files the vault already holds too.
        on_batch: as :func:`archive_files`.

    Returns:
        What was archived, left out as already held, and skipped.

    Raises:
        InputError, VaultError, VaultLockedError, StorageError: as
            :func:`select_files` and :func:`archive_files`.
    """
    selection = select_files(paths, recursive=recursive)
    check_files(selection.files)
    held: dict[Path, int] = {}
    if not again:
        with writer.reader() as reader:
            held = already_archived(reader, selection.files)
    todo = [f for f in selection.files if f not in held]
    archived = archive_files(writer, todo, on_batch=on_batch) if todo else []
    already = [(f, held[f]) for f in selection.files if f in held]
    return AddResult(archived, already, selection.skipped)
