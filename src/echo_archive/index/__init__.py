"""Derived indexes: catalog tables computed from the log and the blobs, rebuildable.

Each module holds one index implementing
:class:`~echo_archive.vault.derived.DerivedIndex` (the interface the vault
defines and applies at every commit):

========================  ===============================================  ==============
index (``rebuild NAME``)  what it answers                                  rebuilt from
========================  ===============================================  ==============
``leaves``                the log index of an entry by its leaf hash       entries
``items``                 each item's current entry (observed last),       entries
                          latest entry, digest, versions
``item_contents``         every content digest each item ever had          entries
``captures``              each HTTP capture's feed, URL, status, time      entries
``observations``          the counters of every sighting of an item        capture bodies
                                                                           (re-parsed)
``search``                full-text search (FTS5) over each item's         entries, item
                          current title, text, author and URL              blobs
``corrections``           the ``correction`` entries of each item          entries
========================  ===============================================  ==============

This package sits above the vault and below the sources and the pipeline
(DESIGN.md, layers): it imports the vault only, never a source. The
observation index re-parses capture bodies through a function a higher
layer passes in (:data:`~echo_archive.index.observations.Reparse`;
:func:`echo_archive.harvest.reparse.derived_indexes` gives it).
"""

from __future__ import annotations

from echo_archive.index.captures import CaptureIndex
from echo_archive.index.corrections import CorrectionIndex
from echo_archive.index.items import ItemContentIndex, ItemIndex
from echo_archive.index.leaves import LeafIndex, index_of_leaf
from echo_archive.index.observations import ObservationIndex, Reparse
from echo_archive.index.search import SearchIndex
from echo_archive.vault.derived import DerivedIndex
from echo_archive.vault.vault import Vault

__all__ = [
    "INDEX_NAMES",
    "CaptureIndex",
    "CorrectionIndex",
    "ItemContentIndex",
    "ItemIndex",
    "LeafIndex",
    "ObservationIndex",
    "SearchIndex",
    "ensure_indexes",
    "index_of_leaf",
    "standard_indexes",
]

INDEX_NAMES = (
    "leaves",
    "items",
    "item_contents",
    "captures",
    "observations",
    "search",
    "corrections",
)
"""The names of the standard derived indexes, in the order they are applied."""


def standard_indexes(reparse: Reparse | None = None) -> list[DerivedIndex]:
    """The standard derived indexes, in application order.

    Args:
        reparse: how the observation index re-parses a capture (needed to
            rebuild it; None is enough to keep it current at commits).
    """
    return [
        LeafIndex(),
        ItemIndex(),
        ItemContentIndex(),
        CaptureIndex(),
        ObservationIndex(reparse),
        SearchIndex(),
        CorrectionIndex(),
    ]


def ensure_indexes(vault: Vault, reparse: Reparse | None = None) -> None:
    """Attach every standard index not yet attached to ``vault`` (see :meth:`Vault.attach`).

    Raises:
        DerivedIndexError, StorageError: as :meth:`Vault.attach`.
    """
    attached = {index.name for index in vault.derived}
    missing = [i for i in standard_indexes(reparse) if i.name not in attached]
    if missing:
        vault.attach(missing)
