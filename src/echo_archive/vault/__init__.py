r"""The vault: ECHO's trust core.

A vault keeps records so that anyone can later check, offline and without
trusting the operator, that a record was archived and that the archive was
never rewritten. Terms (DESIGN.md glossary):

blob
    Bytes stored by content: its address (*digest*) is the SHA-256 of its
    uncompressed bytes, written ``sha256:<hex>``. Stored zstd-compressed,
    write-once, deduplicated (:mod:`.blobs`).
entry
    The RFC 8785 canonical JSON object logged for one record; it names its
    blobs by digest (:mod:`.entry` documents the schema).
capture
    An entry of type ``capture``: bytes as received (a local file for
    ``echoctl add``; an HTTP exchange for the harvester).
leaf hash
    ``SHA-256(0x00 || entry)`` (RFC 9162 §2.1.1).
log, tree size, root hash
    The append-only RFC 9162 Merkle tree over all entries; its size is the
    number of entries, its root hash the Merkle Tree Hash of them
    (:mod:`.merkle` computes, :mod:`.log` stores node hashes in tiles).
checkpoint, origin
    A C2SP tlog-checkpoint: ``origin\\nsize\\nbase64(root)\\n`` signed as a C2SP
    signed note with the vault's Ed25519 key. The origin names the log
    (``echo.archive/<16 hex>``) and never changes (:mod:`.checkpoint`).
verifier key
    The public key in C2SP signed-note form ``name+hexkeyid+base64(0x01||key)``
    (:mod:`.note`).
inclusion proof, consistency proof
    RFC 9162 §2.1.3 and §2.1.4 proofs that an entry is in a tree, and that a
    tree is an append-only extension of an earlier one.
evidence bundle
    One file with an entry, its blobs, an inclusion proof (C2SP tlog-proof)
    and the signed checkpoint: checkable offline (:mod:`.evidence`).
acknowledged
    A record whose :meth:`Vault.commit` returned: its blobs are durable, its
    entry and log hashes committed, and a signed checkpoint covers it.
unsealed tail
    Entries committed to the catalog but not yet covered by a checkpoint (a
    crash between the two steps); the next writer seals them.
orphan
    A blob that no entry names (left by a commit that failed after writing
    its blobs); harmless, pruned by later maintenance.

derived index
    Catalog tables computed from the log and the blobs (the item index,
    captures, observations, the leaf-hash lookup), applied in the commit
    transaction, rebuildable, compared with a rebuild by :mod:`.verify`.
    The vault defines the interface (:mod:`.derived`); the indexes live
    above it (:mod:`echo_archive.index`).

The vault knows nothing of feeds, sources or harvesting and imports nothing
above itself (an import-linter contract and ``tests/test_derived.py`` check
it): it reads only its own tables of ``echo.toml`` (:mod:`.settings`).

Modules: :mod:`.merkle` (pure hashing and proofs), :mod:`.note`,
:mod:`.checkpoint`, :mod:`.tlogproof` (C2SP formats), :mod:`.entry`,
:mod:`.blobs` (blob store interface, SQLite backend), :mod:`.blobdir`
(directory backend), :mod:`.catalog` (the catalog interface, its SQLite
implementation and format version, and the classification of every table)
and :mod:`.log` (tiles), :mod:`.derived` (the derived-index interface,
rebuild, comparison), :mod:`.settings` (the vault's configuration tables),
:mod:`.signing` (checkpoint signers), :mod:`.lock` (writer lock),
:mod:`.vault` (the commit protocol), :mod:`.writer` (the one writer of a
process), :mod:`.verify` (whole-vault verification), :mod:`.evidence`
(bundles).
"""
