"""Pipeline: pure functions from parsed items to what the vault records.

Pure: no module here opens a vault, a database, a file store or the network
(an import-linter contract in ``pyproject.toml``); what the vault already knows
is passed in (:data:`~echo_archive.pipeline.batch.KnownLookup`) and the I/O is
:mod:`echo_archive.harvest.commit`'s.

content digest
    SHA-256 of the RFC 8785 canonical JSON of an item's *content*: every
    field except the volatile counters, the capture it came from and when it
    was fetched. Two sightings of an item with equal content digests are the
    same version.
version
    A sighting of a known item (same source, feed and native id) whose content
    digest differs from the latest one archived: a new entry linked to the
    previous one, so edits become visible history.
duplicate
    A sighting whose content digest equals the latest archived one: counted,
    not stored again.
observation
    The volatile counters (score, comments, stars, points) of a sighting,
    with the time they were seen: recorded beside the item, never a new
    version. They stay verifiable, as the capture they were parsed from is
    in the log.
tombstone
    An entry recording that a known item is deleted or removed at the source.
"""
