"""Create and open vaults: the handle every other service takes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from echo_archive.config import render_new
from echo_archive.harvest.reparse import derived_indexes, indexes_for
from echo_archive.vault.blobdir import BackendName
from echo_archive.vault.lock import DEFAULT_WAIT
from echo_archive.vault.vault import CONFIG_FILE, Vault
from echo_archive.vault.writer import VaultWriter

__all__ = ["VaultInfo", "create_vault", "open_vault", "open_writer"]


@dataclass(frozen=True, slots=True)
class VaultInfo:
    """A vault's identity: where it is, its log origin and its verifier key (to publish)."""

    path: Path
    origin: str
    vkey: str


def create_vault(
    path: Path, *, origin: str | None = None, blobs_backend: BackendName = "sqlite"
) -> VaultInfo:
    """Create a vault: config, Ed25519 signing key (0600), verifier key, catalog, blob store.

    Its ``echo.toml`` holds the vault's settings and the starter feeds
    (:data:`~echo_archive.config.DEFAULT_FEEDS`); the standard derived
    indexes are created empty.

    Args:
        path: the directory (created; it must not exist or be empty).
        origin: the log origin (default: a unique ``echo.archive/<16 hex>``); never changes.
        blobs_backend: the blob store backend, ``"sqlite"`` or ``"directory"``
            (``[blobs] backend``; fixed for the vault's life).

    Returns:
        Its path, origin and verifier key.

    Raises:
        VaultExistsError: a vault or other files are already there (nothing changed).
        StorageError: the files cannot be written.
    """
    v = Vault.create(
        path,
        origin=origin,
        blobs_backend=blobs_backend,
        render=render_new,
        derived=derived_indexes(),
    )
    try:
        return VaultInfo(path, v.origin, v.verifier.vkey)
    finally:
        v.close()


def open_vault(
    path: Path, *, write: bool = False, break_stale: bool = False, wait: float = DEFAULT_WAIT
) -> Vault:
    """Open the vault at ``path``, as a reader (the default) or as the writer.

    The standard derived indexes are attached
    (:func:`~echo_archive.harvest.reparse.indexes_for`): the writer keeps them
    current (and catches up one that is behind), ``verify`` compares them,
    ``rebuild`` rebuilds them.

    A reader takes no lock and never waits; the writer takes the vault's
    writer lock for each write, waiting up to ``wait`` seconds for another
    process's (and completes an unsealed tail left by a crash). Use it as a
    context manager, or close it.

    Args:
        path: the vault directory.
        write: open as the writer.
        break_stale: take over a lock left by a writer on another host.
        wait: seconds each write waits for another process's writer lock.

    Raises:
        VaultNotFoundError: no vault at ``path``.
        VaultLockedError: another live writer kept the lock past ``wait`` (writers only).
        ConfigError: ``echo.toml`` is invalid.
        StorageError: a file cannot be read.
    """
    return Vault.open(
        path,
        readonly=not write,
        break_stale=break_stale,
        wait=wait,
        derived=indexes_for(Path(path) / CONFIG_FILE),
    )


def open_writer(
    path: Path, *, break_stale: bool = False, wait: float = DEFAULT_WAIT
) -> VaultWriter:
    """Open the vault's one writer of this process: the handle the write services take.

    The writer is a thread fed by a queue (:mod:`echo_archive.vault.writer`).

    Each batch of queued writes takes the writer lock, waiting up to ``wait``
    seconds for another process's batch, and releases it when the queue is
    empty. Use it as a context manager, or close it (closing drains the queue).

    Args:
        path: the vault directory.
        break_stale: take over a lock left by a writer on another host.
        wait: seconds each batch waits for another process's writer lock.

    Raises:
        VaultNotFoundError, ConfigError, StorageError: as for :func:`open_vault`.
        VaultLockedError: another live writer kept the lock past ``wait``
            while the vault was opened (the message names it).
    """
    return VaultWriter.open(
        path, wait=wait, break_stale=break_stale, derived=indexes_for(Path(path) / CONFIG_FILE)
    )
