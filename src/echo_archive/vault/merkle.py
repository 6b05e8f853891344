"""RFC 6962 / RFC 9162 Merkle tree: hashing, proofs, and the right-edge compact range.

A small, pure module (no I/O, no dependencies beyond :mod:`hashlib`) that the log
storage layer, the verifier and the evidence tools share. Everything follows
RFC 9162 §2.1 (which restates RFC 6962 §2.1 with precise verification
algorithms); section numbers below refer to RFC 9162.

Terms
-----
entry
    The bytes of one log record (for ECHO: an RFC 8785 canonical JSON object).
leaf hash
    ``SHA-256(0x00 || entry)`` (§2.1.1), always :data:`HASH_SIZE` = 32 bytes.
    Functions named ``*_hash`` or taking ``leaf_hashes`` work on leaf hashes,
    never on raw entries, except :func:`leaf_hash` itself.
node hash
    ``SHA-256(0x01 || left || right)`` for two child hashes (§2.1.1). The 0x00 /
    0x01 prefixes keep leaves and interior nodes in separate domains, so a leaf
    can never be passed off as a node or the other way round.
tree size
    The number of leaves, ``n``. Leaves are numbered ``0 .. n-1`` in append order.
root hash
    The Merkle Tree Hash ``MTH(D[n])`` of the list of ``n`` entries (§2.1.1):
    :data:`EMPTY_ROOT` = ``SHA-256("")`` for ``n = 0``, the leaf hash for
    ``n = 1``, else ``node_hash(MTH(D[0:k]), MTH(D[k:n]))`` with ``k`` the
    largest power of two smaller than ``n``.
perfect subtree, node id
    A complete binary subtree of ``2**level`` leaves starting at a multiple of
    its size. Its id is ``(level, index)``: it covers leaves
    ``[index * 2**level, (index + 1) * 2**level)``; level 0 is the leaf hashes.
    Its hash never changes once all its leaves exist, so storage keeps exactly
    these nodes. The subtrees of the recursive MTH split whose size is not a power
    of two lie on the right edge of a tree and are *ephemeral*: they are
    recomputed from the perfect nodes that cover them (:func:`range_nodes`,
    :func:`subtree_hash`).
inclusion proof
    ``PATH(m, D[n])`` (§2.1.3.1): the sibling hashes on the way from leaf ``m`` up
    to the root of the tree of size ``n``, leaf-most first. With the leaf hash it
    recomputes the root hash (§2.1.3.2, :func:`verify_inclusion`).
consistency proof
    ``PROOF(m, D[n]) = SUBPROOF(m, D[n], true)`` (§2.1.4.1): the hashes that let a
    verifier holding the root of size ``m`` recompute it *and* the root of size
    ``n``, showing that the first ``m`` leaves were not changed
    (§2.1.4.2, :func:`verify_consistency`).
compact range
    The perfect subtrees that decompose a leaf range (:func:`range_nodes`). For
    ``[0, n)`` these are the "peaks" on the right edge of the tree, one per set
    bit of ``n``, largest first; they are all an appender needs to add leaves and
    to compute the root (:class:`CompactRange`).

Errors: generating a proof or reading nodes for an out-of-range request raises
:class:`~echo_archive.errors.LogError` (a request error); a proof that does not
verify raises a :class:`~echo_archive.errors.ProofError` subclass:
:class:`~echo_archive.errors.InclusionProofError` /
:class:`~echo_archive.errors.ConsistencyProofError` for malformed input and
:class:`~echo_archive.errors.RootMismatchError` when a recomputed root differs.

All hot paths are iterative and call :func:`hashlib.sha256` directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from hashlib import sha256
from typing import Protocol, runtime_checkable

from echo_archive.errors import (
    ConsistencyProofError,
    InclusionProofError,
    LogError,
    RootMismatchError,
)

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "MemoryTree",
    "NodeID",
    "NodeReader",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "leaf_hashes",
    "node_hash",
    "range_nodes",
    "root_hash",
    "subtree_hash",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
"""Size in bytes of every hash in the tree (SHA-256)."""

EMPTY_ROOT = sha256(b"").digest()
"""Root hash of the empty tree, ``MTH({}) = SHA-256()`` (RFC 9162 §2.1.1)."""

NodeID = tuple[int, int]
"""A perfect-subtree node id ``(level, index)``; see the module docstring."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


# --------------------------------------------------------------------------- hashing


def leaf_hash(entry: bytes) -> bytes:
    """Hash one log entry into a leaf hash (RFC 9162 §2.1.1).

    Args:
        entry: the entry's bytes, any length.

    Returns:
        ``SHA-256(0x00 || entry)``, 32 bytes.

    """
    return sha256(_LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash two child hashes into their parent (RFC 9162 §2.1.1).

    Args:
        left: hash of the left child, 32 bytes (not checked: this is a hot path).
        right: hash of the right child, 32 bytes (not checked).

    Returns:
        ``SHA-256(0x01 || left || right)``, 32 bytes.

    """
    return sha256(_NODE_PREFIX + left + right).digest()


def leaf_hashes(entries: Iterable[bytes]) -> list[bytes]:
    """Hash a batch of log entries into their leaf hashes (RFC 9162 §2.1.1).

    The batch form of :func:`leaf_hash`: one comprehension over the batch, no
    call per entry.

    Args:
        entries: the entries' bytes, in log order.

    Returns:
        ``SHA-256(0x00 || entry)`` per entry, 32 bytes each, in the same order.

    """
    sha = sha256
    prefix = _LEAF_PREFIX
    return [sha(prefix + entry).digest() for entry in entries]


def _parents(row: Sequence[bytes], start: int = 0) -> list[bytes]:
    """Hash the pairs ``row[start], row[start+1]``, ... into their parents (RFC 9162 §2.1.1).

    The one place a level of the tree is hashed into the level above. An
    unpaired last node is left out (the caller carries it or keeps it as a
    peak). Hashes are not checked (a hot path): callers check leaf hashes first.
    """
    sha = sha256
    prefix = _NODE_PREFIX
    return [
        sha(prefix + a + b).digest()
        for a, b in zip(row[start::2], row[start + 1 :: 2], strict=False)
    ]


def _check_leaf_hashes(hashes: Sequence[bytes]) -> None:
    """Raise LogError unless every element of ``hashes`` is 32 bytes long."""
    lengths = set(map(len, hashes))
    if lengths and lengths != {HASH_SIZE}:
        bad = next(i for i, h in enumerate(hashes) if len(h) != HASH_SIZE)
        raise LogError(
            f"leaf hash at position {bad} is {len(hashes[bad])} bytes, expected {HASH_SIZE}"
        )


def root_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """Compute the Merkle Tree Hash of a list of leaf hashes (RFC 9162 §2.1.1).

    Iterative, level by level: pairs of nodes are hashed into their parent and an
    unpaired last node is carried up unchanged, which yields exactly the MTH of
    the recursive definition. About one hash per leaf; 1,000,000 leaves take
    about 0.4 s.

    Args:
        leaf_hashes: ``n`` leaf hashes (already hashed with :func:`leaf_hash`),
            32 bytes each, in leaf order.

    Returns:
        The 32-byte root hash; :data:`EMPTY_ROOT` when ``n = 0``.

    Raises:
        LogError: a leaf hash is not 32 bytes.

    """
    _check_leaf_hashes(leaf_hashes)
    if not leaf_hashes:
        return EMPTY_ROOT
    row = list(leaf_hashes)
    while len(row) > 1:
        nxt = _parents(row)
        if len(row) & 1:
            nxt.append(row[-1])
        row = nxt
    return row[0]


# --------------------------------------------------------------------------- node access


@runtime_checkable
class NodeReader(Protocol):
    """Read access to the stored perfect-subtree hashes of a log.

    The storage layer implements this (it may batch the reads into one query);
    :class:`MemoryTree` is the in-memory implementation used in tests.
    """

    def get_nodes(self, ids: Sequence[NodeID]) -> list[bytes]:
        """Return the stored hashes of perfect-subtree nodes.

        Args:
            ids: node ids ``(level, index)``, each a perfect subtree that is
                complete in the log.

        Returns:
            One 32-byte hash per id, in the order of ``ids``.

        Raises:
            LogError: a node is not stored (out of range for the log).

        """
        ...


def _fetch(reader: NodeReader, ids: Sequence[NodeID]) -> list[bytes]:
    """Read ``ids`` with at most one ``get_nodes`` call and check the answer's shape."""
    if not ids:
        return []
    hashes = reader.get_nodes(ids)
    if len(hashes) != len(ids):
        raise LogError(f"node reader returned {len(hashes)} hashes for {len(ids)} node ids")
    for node_id, h in zip(ids, hashes, strict=True):
        if len(h) != HASH_SIZE:
            raise LogError(f"node reader returned a {len(h)}-byte hash for node {node_id}")
    return hashes


def _fold_right(hashes: Sequence[bytes]) -> bytes:
    """Combine the hashes of a range's decreasing perfect nodes, right to left."""
    sha = sha256
    prefix = _NODE_PREFIX
    h = hashes[-1]
    for i in range(len(hashes) - 2, -1, -1):
        h = sha(prefix + hashes[i] + h).digest()
    return h


def range_nodes(begin: int, end: int) -> list[NodeID]:
    """Decompose the leaf range ``[begin, end)`` into maximal perfect subtrees.

    Greedy from the left: each step takes the largest perfect subtree that starts
    at ``begin`` (aligned to its size) and fits before ``end``. The result is the
    unique minimal decomposition; node sizes first increase, then decrease. For
    ``[0, n)`` these are the peaks of the tree of size ``n``. Used for the
    non-perfect (ephemeral) subtrees of RFC 9162 §2.1.1.

    Args:
        begin: first leaf index, ``0 <= begin <= end``.
        end: one past the last leaf index.

    Returns:
        Node ids ``(level, index)``, left to right; empty when ``begin == end``.
        At most ``2 * log2(end - begin) + 2`` ids.

    Raises:
        LogError: ``begin < 0`` or ``end < begin``.

    """
    if begin < 0 or end < begin:
        raise LogError(f"invalid leaf range [{begin}, {end})")
    out: list[NodeID] = []
    while begin < end:
        level = (end - begin).bit_length() - 1
        if begin:
            align = (begin & -begin).bit_length() - 1
            if align < level:
                level = align
        out.append((level, begin >> level))
        begin += 1 << level
    return out


def subtree_hash(begin: int, end: int, reader: NodeReader) -> bytes:
    """Compute ``MTH(D[begin:end])`` of an RFC 9162 subtree from stored perfect nodes.

    The subtrees produced by the recursive split of RFC 9162 §2.1.1 are exactly
    the ranges whose ``begin`` is a multiple of the smallest power of two
    ``>= end - begin``. Such a range decomposes (:func:`range_nodes`) into perfect
    nodes of strictly decreasing size, and folding them right to left with
    :func:`node_hash` gives its MTH. Reads O(log n) nodes in one ``get_nodes``
    call (none when ``begin == end``).

    Args:
        begin: first leaf of the subtree.
        end: one past its last leaf; ``end >= begin``.
        reader: where the perfect nodes are read from.

    Returns:
        The subtree's 32-byte hash; :data:`EMPTY_ROOT` when ``begin == end``.

    Raises:
        LogError: the range is invalid or not an RFC 9162 subtree, or the reader
            cannot supply a node.

    """
    if begin < 0 or end < begin:
        raise LogError(f"invalid leaf range [{begin}, {end})")
    if begin == end:
        return EMPTY_ROOT
    span = 1 << (end - begin - 1).bit_length()
    if begin % span:
        raise LogError(
            f"leaf range [{begin}, {end}) is not a subtree of the RFC 9162 split: "
            f"{begin} is not a multiple of {span}"
        )
    return _fold_right(_fetch(reader, range_nodes(begin, end)))


# --------------------------------------------------------------------------- proof generation


def _path_ids(index: int, level: int, size: int, ids: list[NodeID]) -> tuple[int, int]:
    """Append the node ids of the audit path of node ``(level, index)`` in tree ``size``.

    The path from the node diverges from the path to the last leaf ``size - 1`` at
    a "fork" ``inner`` levels up. Below the fork every sibling is a perfect node.
    At the fork the sibling is the right-edge subtree ``[begin, size)``, which is
    ephemeral unless its size is a power of two: it is appended as its
    :func:`range_nodes` decomposition. Above the fork every sibling is a perfect
    left subtree: the nodes of ``[0, fork_begin)`` taken right to left
    (leaf-most first).

    Args:
        index: node index at ``level``; the node must be complete in ``size``.
        level: node level (0 for a leaf).
        size: tree size.
        ids: list to append the ids to.

    Returns:
        ``(start, stop)``: the slice of ``ids`` that holds the fork sibling's
        parts (``start == stop`` when there is no fork).

    """
    inner = (index ^ ((size - 1) >> level)).bit_length()
    ids.extend([(level + t, (index >> t) ^ 1) for t in range(inner - 1)])
    start = len(ids)
    if inner:
        fork_level = level + inner - 1
        ids.extend(range_nodes(((index >> (inner - 1)) | 1) << fork_level, size))
    stop = len(ids)
    left = range_nodes(0, (index >> inner) << (level + inner))
    left.reverse()
    ids.extend(left)
    return start, stop


def _path_proof(ids: list[NodeID], start: int, stop: int, reader: NodeReader) -> list[bytes]:
    """Fetch ``ids`` in one call and fold the fork sibling's parts into one hash."""
    hashes = _fetch(reader, ids)
    if stop - start > 1:
        hashes[start:stop] = [_fold_right(hashes[start:stop])]
    return hashes


def inclusion_proof(index: int, size: int, reader: NodeReader) -> list[bytes]:
    """Generate the inclusion proof ``PATH(index, D[size])`` (RFC 9162 §2.1.3.1).

    Computes every node id first, reads them all with exactly one
    ``reader.get_nodes`` call (no call when the proof is empty, i.e. ``size = 1``),
    then folds the parts of the ephemeral right-edge sibling into one hash.
    O(log n) time and reads.

    Args:
        index: the leaf index ``m``, ``0 <= m < size``.
        size: the tree size ``n`` the proof is for; the reader must hold every
            perfect node of the tree of that size.
        reader: where the perfect nodes are read from.

    Returns:
        The proof: 32-byte hashes in the RFC's order (leaf-most sibling first),
        ``inner + popcount(index >> inner)`` of them where
        ``inner = bit_length(index ^ (size - 1))``.

    Raises:
        LogError: ``size <= 0``, or ``index`` is not in ``[0, size)``, or the
            reader cannot supply a node.

    """
    if size <= 0 or not 0 <= index < size:
        raise LogError(f"leaf index {index} out of range for tree size {size}")
    ids: list[NodeID] = []
    start, stop = _path_ids(index, 0, size, ids)
    return _path_proof(ids, start, stop, reader)


def consistency_proof(old_size: int, new_size: int, reader: NodeReader) -> list[bytes]:
    """Generate the consistency proof ``PROOF(m, D[n])`` (RFC 9162 §2.1.4.1).

    ``SUBPROOF(m, D[n], true)`` descends to the perfect node ``(level, index)``
    that ends at ``m`` (``level`` = trailing zero bits of ``m``); the proof is that
    node's hash (omitted when ``m`` is a power of two, since it is then the old
    root itself) followed by that node's audit path in the tree of size ``n``.
    Exactly one ``reader.get_nodes`` call (none when ``m == n``). O(log n).

    Args:
        old_size: the earlier tree size ``m``, ``0 < m <= n``.
        new_size: the later tree size ``n``; the reader must hold every perfect
            node of the tree of that size.
        reader: where the perfect nodes are read from.

    Returns:
        The proof: 32-byte hashes in the RFC's order; ``[]`` when ``m == n``.

    Raises:
        LogError: ``old_size <= 0`` or ``old_size > new_size``, or the reader
            cannot supply a node.

    """
    if old_size <= 0 or old_size > new_size:
        raise LogError(f"no consistency proof from tree size {old_size} to {new_size}")
    if old_size == new_size:
        return []
    level = (old_size & -old_size).bit_length() - 1
    index = (old_size - 1) >> level
    ids: list[NodeID] = [] if index == 0 else [(level, index)]
    start, stop = _path_ids(index, level, new_size, ids)
    return _path_proof(ids, start, stop, reader)


# --------------------------------------------------------------------------- verification


def _path_size(index: int, level: int, size: int) -> int:
    """Length of the audit path of node ``(level, index)`` in the tree of ``size`` leaves."""
    inner = (index ^ ((size - 1) >> level)).bit_length()
    return inner + (index >> inner).bit_count()


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Verify an inclusion proof (RFC 9162 §2.1.3.2).

    Runs the RFC's algorithm step by step, after checking the shapes: the proof
    must have exactly the length ``PATH(index, D[size])`` has (a longer or shorter
    proof is rejected, as the RFC's ``sn`` checks would), and every hash must be
    32 bytes. A proof only binds the leaf to ``root``; the tree size is bound to
    the root by the signed checkpoint that carries both.

    Args:
        leaf_hash: the leaf hash (not the entry), exactly 32 bytes.
        index: the leaf index, ``0 <= index < size``.
        size: the tree size the proof is for.
        proof: the audit path, 32-byte hashes, leaf-most first.
        root: the expected root hash of the tree of ``size``, 32 bytes.

    Raises:
        InclusionProofError: the input is malformed: index out of range, a hash
            that is not 32 bytes, or a proof of the wrong length.
        RootMismatchError: the proof leads to a different root (its ``expected``
            is ``root``, its ``computed`` what the proof led to).

    """
    if not 0 <= index < size:
        raise InclusionProofError(f"leaf index {index} out of range for tree size {size}")
    if len(leaf_hash) != HASH_SIZE:
        raise InclusionProofError(f"leaf hash is {len(leaf_hash)} bytes, expected {HASH_SIZE}")
    if len(root) != HASH_SIZE:
        raise InclusionProofError(f"root hash is {len(root)} bytes, expected {HASH_SIZE}")
    want = _path_size(index, 0, size)
    if len(proof) != want:
        raise InclusionProofError(
            f"inclusion proof for leaf {index} in tree size {size} has {len(proof)} hashes, "
            f"expected {want}"
        )
    for i, p in enumerate(proof):
        if len(p) != HASH_SIZE:
            raise InclusionProofError(
                f"inclusion proof hash {i} is {len(p)} bytes, expected {HASH_SIZE}"
            )
    sha = sha256
    prefix = _NODE_PREFIX
    # Steps 2-3.
    fn = index
    sn = size - 1
    r = leaf_hash
    # Step 4.
    for p in proof:
        if sn == 0:  # 4a (unreachable after the length check; kept as the RFC states it)
            raise InclusionProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:  # 4b
            r = sha(prefix + p + r).digest()
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = sha(prefix + r + p).digest()
        fn >>= 1  # 4c
        sn >>= 1
    # Step 5.
    if sn != 0:
        raise InclusionProofError("inclusion proof is too short")
    if r != root:
        raise RootMismatchError(
            f"inclusion proof for leaf {index} in tree size {size} leads to root "
            f"{r.hex()}, expected {root.hex()}",
            expected=root,
            computed=r,
        )


def verify_consistency(
    old_size: int,
    new_size: int,
    proof: Sequence[bytes],
    old_root: bytes,
    new_root: bytes,
) -> None:
    """Verify a consistency proof between two tree sizes (RFC 9162 §2.1.4.2).

    Runs the RFC's algorithm step by step, after checking the shapes: the proof
    must have exactly the length ``PROOF(old_size, D[new_size])`` has and every
    hash must be 32 bytes. When ``old_size == new_size`` the proof must be empty
    and the two roots equal. By policy (as the reference verifier of
    transparency-dev/merkle) a proof from size 0 is rejected: every tree is
    trivially consistent with the empty tree, so such a "proof" proves nothing.

    Args:
        old_size: the earlier tree size, ``0 < old_size <= new_size``.
        new_size: the later tree size.
        proof: the consistency proof, 32-byte hashes, in the RFC's order.
        old_root: root hash of the tree of ``old_size``, 32 bytes.
        new_root: root hash of the tree of ``new_size``, 32 bytes.

    Raises:
        ConsistencyProofError: the input is malformed: ``old_size <= 0``,
            ``old_size > new_size``, a hash that is not 32 bytes, a proof of the
            wrong length (including a non-empty proof for equal sizes).
        RootMismatchError: the proof does not lead to ``old_root`` or to
            ``new_root``, or the sizes are equal and the roots differ.

    """
    if old_size <= 0:
        raise ConsistencyProofError(
            f"consistency proof from tree size {old_size} is not accepted (must be > 0)"
        )
    if old_size > new_size:
        raise ConsistencyProofError(
            f"old tree size {old_size} is larger than new tree size {new_size}"
        )
    if len(old_root) != HASH_SIZE:
        raise ConsistencyProofError(f"old root is {len(old_root)} bytes, expected {HASH_SIZE}")
    if len(new_root) != HASH_SIZE:
        raise ConsistencyProofError(f"new root is {len(new_root)} bytes, expected {HASH_SIZE}")
    for i, p in enumerate(proof):
        if len(p) != HASH_SIZE:
            raise ConsistencyProofError(
                f"consistency proof hash {i} is {len(p)} bytes, expected {HASH_SIZE}"
            )
    if old_size == new_size:
        if proof:
            raise ConsistencyProofError(
                f"consistency proof between equal tree sizes {old_size} must be empty, "
                f"got {len(proof)} hashes"
            )
        if old_root != new_root:
            raise RootMismatchError(
                f"roots of equal tree sizes {old_size} differ: {old_root.hex()} != "
                f"{new_root.hex()}",
                expected=old_root,
                computed=new_root,
            )
        return
    level = (old_size & -old_size).bit_length() - 1
    index = (old_size - 1) >> level
    want = _path_size(index, level, new_size) + (index != 0)
    if len(proof) != want:
        raise ConsistencyProofError(
            f"consistency proof from tree size {old_size} to {new_size} has {len(proof)} "
            f"hashes, expected {want}"
        )
    sha = sha256
    prefix = _NODE_PREFIX
    # Step 1 (an empty proof for old_size < new_size) is covered by the length check.
    path = list(proof)
    # Step 2.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    # Step 3.
    fn = old_size - 1
    sn = new_size - 1
    # Step 4.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # Step 5.
    fr = sr = path[0]
    # Step 6.
    for c in path[1:]:
        if sn == 0:  # 6a (unreachable after the length check; kept as the RFC states it)
            raise ConsistencyProofError("consistency proof is too long")
        if fn & 1 or fn == sn:  # 6b
            fr = sha(prefix + c + fr).digest()
            sr = sha(prefix + c + sr).digest()
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = sha(prefix + sr + c).digest()
        fn >>= 1  # 6c
        sn >>= 1
    # Step 7.
    if sn != 0:
        raise ConsistencyProofError("consistency proof is too short")
    if fr != old_root:
        raise RootMismatchError(
            f"consistency proof from tree size {old_size} to {new_size} leads to old root "
            f"{fr.hex()}, expected {old_root.hex()}",
            expected=old_root,
            computed=fr,
        )
    if sr != new_root:
        raise RootMismatchError(
            f"consistency proof from tree size {old_size} to {new_size} leads to new root "
            f"{sr.hex()}, expected {new_root.hex()}",
            expected=new_root,
            computed=sr,
        )


# --------------------------------------------------------------------------- compact range


class CompactRange:
    """The right edge of a growing tree: the perfect-subtree peaks of ``[0, size)``.

    Also called the Merkle stack. It holds one hash per set bit of ``size``
    (O(log n) memory), is enough to append leaves and to compute the root hash
    (RFC 9162 §2.1.1), and reports every perfect node each append completes, which
    is what a storage layer must persist. ``CompactRange()`` is the empty range.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._hashes: list[bytes] = []

    @property
    def size(self) -> int:
        """Number of leaves appended so far (the tree size)."""
        return self._size

    @property
    def peaks(self) -> list[tuple[int, int, bytes]]:
        """The right-edge perfect subtrees, left to right (largest first).

        Returns:
            ``(level, index, hash)`` per set bit of :attr:`size`; the same ids as
            ``range_nodes(0, size)``.

        """
        out: list[tuple[int, int, bytes]] = []
        size = self._size
        hashes = iter(self._hashes)
        for level in range(size.bit_length() - 1, -1, -1):
            if (size >> level) & 1:
                out.append((level, (size >> level) - 1, next(hashes)))
        return out

    def append(self, leaf_hash: bytes) -> list[tuple[int, int, bytes]]:
        """Append one leaf.

        Args:
            leaf_hash: the leaf hash (see :func:`leaf_hash`), 32 bytes.

        Returns:
            Every perfect node this leaf completes, bottom up, as
            ``(level, index, hash)``: the leaf itself ``(0, size_before, leaf_hash)``
            then one parent per trailing one bit of the size before the append.

        Raises:
            LogError: ``leaf_hash`` is not 32 bytes.

        """
        if len(leaf_hash) != HASH_SIZE:
            raise LogError(f"leaf hash is {len(leaf_hash)} bytes, expected {HASH_SIZE}")
        stack = self._hashes
        index = self._size
        h = leaf_hash
        out = [(0, index, h)]
        level = 0
        while index & 1:
            h = sha256(_NODE_PREFIX + stack.pop() + h).digest()
            index >>= 1
            level += 1
            out.append((level, index, h))
        stack.append(h)
        self._size += 1
        return out

    def extend(self, leaf_hashes: Iterable[bytes]) -> list[tuple[int, int, bytes]]:
        """Append many leaves (the fast path of :meth:`append`).

        All hashes are checked before anything changes, so a bad hash leaves the
        range untouched. About two SHA-256 calls per leaf.

        Args:
            leaf_hashes: leaf hashes, 32 bytes each, in append order.

        Returns:
            Every perfect node completed, as ``(level, index, hash)``, in the
            order repeated :meth:`append` calls would return them.

        Raises:
            LogError: a leaf hash is not 32 bytes.

        """
        hashes = leaf_hashes if isinstance(leaf_hashes, list | tuple) else list(leaf_hashes)
        _check_leaf_hashes(hashes)
        sha = sha256
        prefix = _NODE_PREFIX
        stack = self._hashes
        pop = stack.pop
        push = stack.append
        out: list[tuple[int, int, bytes]] = []
        emit = out.append
        size = self._size
        for h in hashes:
            emit((0, size, h))
            index = size
            level = 0
            while index & 1:
                h = sha(prefix + pop() + h).digest()
                index >>= 1
                level += 1
                emit((level, index, h))
            push(h)
            size += 1
        self._size = size
        return out

    def extend_levels(self, leaf_hashes: Sequence[bytes]) -> list[tuple[int, int, list[bytes]]]:
        """Append many leaves a level at a time; return the new nodes as one run per level.

        The batch form of :meth:`extend`, for storage that writes a level's
        nodes side by side (tiles): the new leaves are level 0; the nodes of
        level ``L + 1`` are the pairs of level ``L`` (with the old peak of level
        ``L`` in front when level ``L`` held an odd count), hashed in one
        comprehension per level (RFC 9162 §2.1.1, ``node_hash``). The nodes
        completed are exactly those :meth:`extend` returns, grouped by level;
        the new peaks are the last node of every level whose count is odd.
        About one SHA-256 call per leaf plus one per level, no per-node tuples.

        All hashes are checked before anything changes, so a bad hash leaves the
        range untouched.

        Args:
            leaf_hashes: leaf hashes, 32 bytes each, in append order.

        Returns:
            ``(level, first index, hashes)`` per level that gained nodes,
            bottom up: the perfect nodes ``(level, first) .. (level, first +
            len(hashes) - 1)`` this append completed, left to right. Empty when
            ``leaf_hashes`` is.

        Raises:
            LogError: a leaf hash is not 32 bytes.

        """
        hashes = list(leaf_hashes)
        _check_leaf_hashes(hashes)
        if not hashes:
            return []
        old = self._size
        new = old + len(hashes)
        old_peaks = {level: h for level, _, h in self.peaks}
        runs: list[tuple[int, int, list[bytes]]] = []
        row = hashes
        level = 0
        while row:
            first = old >> level
            runs.append((level, first, row))
            row = _parents([old_peaks[level], *row]) if first & 1 else _parents(row)
            level += 1
        peaks: list[bytes] = []
        for lvl in range(new.bit_length() - 1, -1, -1):
            count = new >> lvl
            if count & 1:
                if lvl < len(runs) and count > old >> lvl:
                    peaks.append(runs[lvl][2][-1])
                else:
                    peaks.append(old_peaks[lvl])
        self._hashes = peaks
        self._size = new
        return runs

    def root(self) -> bytes:
        """Return the root hash of the tree of :attr:`size` leaves (RFC 9162 §2.1.1).

        Returns:
            The peaks folded right to left; :data:`EMPTY_ROOT` when empty.

        """
        if not self._hashes:
            return EMPTY_ROOT
        return _fold_right(self._hashes)

    @classmethod
    def from_reader(cls, size: int, reader: NodeReader) -> CompactRange:
        """Rebuild the compact range of a stored tree.

        Reads the O(log n) peaks ``range_nodes(0, size)`` with one
        ``reader.get_nodes`` call (none when ``size == 0``).

        Args:
            size: the tree size, ``>= 0``.
            reader: where the perfect nodes are read from.

        Returns:
            A compact range equal to one built by appending the tree's leaves.

        Raises:
            LogError: ``size < 0``, or the reader cannot supply a node.

        """
        if size < 0:
            raise LogError(f"invalid tree size {size}")
        hashes = _fetch(reader, range_nodes(0, size))
        out = cls()
        out._size = size
        out._hashes = hashes
        return out

    def copy(self) -> CompactRange:
        """Return an independent copy (appending to one does not change the other)."""
        out = CompactRange()
        out._size = self._size
        out._hashes = list(self._hashes)
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactRange):
            return NotImplemented
        return self._size == other._size and self._hashes == other._hashes

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size}, root={self.root().hex()})"


# --------------------------------------------------------------------------- in-memory tree


class MemoryTree:
    """An in-memory log of leaf hashes that keeps every perfect node (a NodeReader).

    ``levels[0]`` holds the leaf hashes, ``levels[k][i]`` the hash of perfect node
    ``(k, i)``; only complete nodes are stored, as a storage layer would. Used in
    tests and benchmarks. Memory: about two hashes per leaf.

    Args:
        leaf_hashes: initial leaf hashes (32 bytes each), in order.

    """

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self.levels: list[list[bytes]] = [[]]
        self.append_leaves(leaf_hashes)

    @property
    def size(self) -> int:
        """Number of leaves (the tree size)."""
        return len(self.levels[0])

    def append_leaves(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append leaves and store every perfect node they complete.

        Args:
            leaf_hashes: leaf hashes, 32 bytes each, in append order.

        Raises:
            LogError: a leaf hash is not 32 bytes (nothing is appended).

        """
        new = list(leaf_hashes)
        _check_leaf_hashes(new)
        levels = self.levels
        levels[0].extend(new)
        level = 0
        while len(levels[level]) > 1:
            if level + 1 == len(levels):
                levels.append([])
            row = levels[level]
            up = levels[level + 1]
            start = 2 * len(up)
            up.extend(_parents(row, start))
            level += 1

    def root(self, size: int | None = None) -> bytes:
        """Return the root hash of the tree at ``size`` leaves (RFC 9162 §2.1.1).

        Computed from the stored perfect nodes (:func:`subtree_hash` of
        ``[0, size)``), so any earlier size works.

        Args:
            size: a tree size ``0 <= size <= self.size``; default the current size.

        Returns:
            The 32-byte root hash; :data:`EMPTY_ROOT` for size 0.

        Raises:
            LogError: ``size`` is out of range.

        """
        if size is None:
            size = self.size
        if not 0 <= size <= self.size:
            raise LogError(f"tree size {size} out of range (log has {self.size} leaves)")
        return subtree_hash(0, size, self)

    def get_nodes(self, ids: Sequence[NodeID]) -> list[bytes]:
        """Return the hashes of perfect nodes (the :class:`NodeReader` protocol).

        Args:
            ids: node ids ``(level, index)``.

        Returns:
            One 32-byte hash per id, in order.

        Raises:
            LogError: a node is not complete in this tree.

        """
        levels = self.levels
        out: list[bytes] = []
        for level, index in ids:
            if not (0 <= level < len(levels) and 0 <= index < len(levels[level])):
                raise LogError(f"node ({level}, {index}) not in tree of size {self.size}")
            out.append(levels[level][index])
        return out
