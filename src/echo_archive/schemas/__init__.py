"""Typed, versioned schemas of every entry type's ``meta`` and of the item blob.

The bottom layer (beside :mod:`echo_archive.model` and :mod:`echo_archive.errors`):
the vault validates every entry against these on write
(:meth:`echo_archive.vault.entry.Entry.build`), when an entry is parsed
(:func:`echo_archive.vault.entry.parse_entry`) and in ``verify``; writers build
metadata through the classes (:class:`HttpCapture`, :func:`file_capture`...).

The reference page ``docs/entries.md`` is generated from them
(``python -m echo_archive.schemas``; a test checks it is current). The version
policy and the field types are described in :mod:`echo_archive.schemas.base`.
"""

from __future__ import annotations

from echo_archive.schemas.base import (
    SAFE_INT,
    TIMESTAMP_PATTERN,
    BlobDocument,
    EntryMeta,
    entry_classes,
    format_timestamp,
    register,
    schema_for,
    validate_blob_document,
    validate_meta,
)
from echo_archive.schemas.entries import (
    CORRECTION_KINDS,
    MAX_CORRECTION_TEXT,
    MAX_REASON,
    AnnotationMeta,
    AuditMeta,
    FileCapture,
    HttpCapture,
    InterventionMeta,
    ItemBlob,
    ItemMeta,
    ItemMetaV2,
    ReinstatementMeta,
    RemovedItemMeta,
    RepairMeta,
    RetractionMeta,
    TombstoneMeta,
    VersionMeta,
    VersionMetaV2,
    WithdrawnMeta,
)

__all__ = [
    "CORRECTION_KINDS",
    "MAX_CORRECTION_TEXT",
    "MAX_REASON",
    "SAFE_INT",
    "TIMESTAMP_PATTERN",
    "AnnotationMeta",
    "AuditMeta",
    "BlobDocument",
    "EntryMeta",
    "FileCapture",
    "HttpCapture",
    "InterventionMeta",
    "ItemBlob",
    "ItemMeta",
    "ItemMetaV2",
    "ReinstatementMeta",
    "RemovedItemMeta",
    "RepairMeta",
    "RetractionMeta",
    "TombstoneMeta",
    "VersionMeta",
    "VersionMetaV2",
    "WithdrawnMeta",
    "entry_classes",
    "file_capture",
    "format_timestamp",
    "register",
    "schema_for",
    "validate_blob_document",
    "validate_meta",
]


def file_capture(name: str, size: int, mtime_ns: int) -> FileCapture:
    """The ``capture`` meta of a local file archived as evidence (``echoctl add``).

    Args:
        name: the file's base name.
        size: its size in bytes.
        mtime_ns: its modification time, nanoseconds since the epoch (``st_mtime_ns``).

    Returns:
        The validated meta (blob role ``body`` holds the file's bytes).

    Raises:
        EntrySchemaError: ``name`` is empty or ``size`` negative.
    """
    return FileCapture(name=name, size=size, mtime=format_timestamp(mtime_ns))
