"""Archive local files as evidence: one ``capture`` entry per file, its bytes as a blob.

The capture entry of a local file has the ``meta`` of
:func:`echo_archive.schemas.file_capture` (``kind: "file"``, base name,
size, mtime) and one blob, ``body``, holding the file's bytes (see
``docs/entries.md``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from echo_archive import schemas
from echo_archive.errors import InputError
from echo_archive.vault.vault import CommitResult, Record, Vault
from echo_archive.vault.writer import VaultWriter

__all__ = ["ArchivedFile", "archive_files", "check_files", "file_capture"]


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
