"""Commit a batch of sightings to the vault: the I/O half of the pipeline.

:func:`~echo_archive.pipeline.batch.build_batch` turns sightings into entries,
blobs and derived rows without touching a file; this module gives it what
the vault knows of the items (the item index, read on the writer's catalog)
and writes what it built, in the commit protocol's order (README, "Commit
protocol and crash safety"): the blobs durable first, then the entries with
the derived rows in one catalog transaction, then a signed checkpoint. The
harvest cycle (:mod:`echo_archive.harvest.cycle`) and imports
(:mod:`echo_archive.harvest.importer`) call it on the vault's one writer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from echo_archive.index import ensure_indexes
from echo_archive.index.items import ItemRow, known_contents, known_many
from echo_archive.pipeline.batch import BatchCounts, ItemKey, Sighting, build_batch
from echo_archive.vault.vault import CommitResult, Vault

__all__ = ["commit_batch"]


def commit_batch(
    vault: Vault, sightings: Sequence[Sighting], logged_at: str
) -> tuple[BatchCounts, CommitResult | None]:
    """Archive ``sightings``: blobs durable, then entries and derived rows, then a checkpoint.

    The standard derived indexes are attached to ``vault`` first if they are
    not (:func:`echo_archive.index.ensure_indexes`); the vault applies them
    to the entries in the transaction that appends them, with this batch's
    observations handed to the observation index and its blobs (by digest)
    to the search index.

    Args:
        vault: the writer.
        sightings: the batch, in order.
        logged_at: RFC 3339 time the batch joins the log.

    Returns:
        The counts, and the commit result (None for an empty batch).

    Raises:
        StorageError: a write failed (nothing of the batch is acknowledged).
        EntryError: an item could not be made into an entry (nothing is written).
    """
    if not sightings:
        return BatchCounts(), None
    ensure_indexes(vault)
    start = vault.log_state()[0]
    catalog = vault.catalog

    def lookup(
        keys: Sequence[ItemKey],
    ) -> tuple[Mapping[ItemKey, ItemRow], Mapping[ItemKey, frozenset[bytes]]]:
        return known_many(catalog, keys), known_contents(catalog, keys)

    batch = build_batch(sightings, lookup, start, logged_at)
    digests = vault.blobs.put_many(batch.blobs)
    given = {
        "observations": batch.observations,
        "search": dict(zip(digests, batch.blobs, strict=True)),  # no re-read of the item blobs
    }
    result = vault.append(batch.entries, given=given)
    return batch.counts, result
