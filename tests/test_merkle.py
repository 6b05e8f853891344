"""Tests of :mod:`echo_archive.vault.merkle` (RFC 6962 / RFC 9162 Merkle tree).

Three independent sources of truth:

* third-party conformance vectors (transparency-dev/merkle), see
  ``../shared/conformance/README.md``;
* a naive recursive transcription of the RFC 9162 definitions (MTH, PATH,
  SUBPROOF) in this file, compared exhaustively on small trees;
* properties checked with Hypothesis: every generated proof verifies, and every
  single mutation of a proof, index, size or root is rejected unless the mutated
  claim makes the verifier perform the byte-identical computation (explained at
  :func:`_path_sides`).

All trees here have pairwise distinct leaves, so distinct subtrees have distinct
hashes (barring a SHA-256 collision).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Sequence
from functools import cache
from hashlib import sha256
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from echo_archive.errors import (
    ConsistencyProofError,
    InclusionProofError,
    LogError,
    ProofError,
    RootMismatchError,
)
from echo_archive.vault.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    CompactRange,
    MemoryTree,
    NodeReader,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    leaf_hashes,
    node_hash,
    range_nodes,
    root_hash,
    subtree_hash,
    verify_consistency,
    verify_inclusion,
)

CONFORMANCE = Path(__file__).resolve().parents[2] / "shared" / "conformance"
MERKLE_VECTORS = CONFORMANCE / "merkle"

# The base tree of the vectors (README: testonly/constants.go upstream).
BASE_ENTRIES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
BASE_ROOT = bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")

SMALL = 640  # sizes of the small tree: every proof up to here is cheap
LARGE = (1 << 17) + 4321  # a tree large enough for deep, ragged right edges


# --------------------------------------------------------------------------- fixtures (cached)


def _entry_leaf(i: int) -> bytes:
    return leaf_hash(b"entry %d" % i)


@cache
def small_tree() -> MemoryTree:
    return MemoryTree(_entry_leaf(i) for i in range(SMALL))


@cache
def small_roots() -> tuple[bytes, ...]:
    """Root of every prefix of the small tree, by appending to a CompactRange."""
    compact = CompactRange()
    roots = [compact.root()]
    for h in small_tree().levels[0]:
        compact.append(h)
        roots.append(compact.root())
    return tuple(roots)


@cache
def large_tree() -> MemoryTree:
    tree = MemoryTree()
    # Uneven chunks exercise incremental node building.
    step = 9973
    for start in range(0, LARGE, step):
        tree.append_leaves(_entry_leaf(i) for i in range(start, min(start + step, LARGE)))
    return tree


class CountingReader:
    """A NodeReader wrapper that records every get_nodes call."""

    def __init__(self, inner: NodeReader) -> None:
        self.inner = inner
        self.calls: list[list[tuple[int, int]]] = []

    def get_nodes(self, ids: Sequence[tuple[int, int]]) -> list[bytes]:
        self.calls.append(list(ids))
        return self.inner.get_nodes(ids)


# --------------------------------------------------------------------------- RFC reference


def _split(n: int) -> int:
    """Largest power of two smaller than n (n >= 2), RFC 9162 §2.1.1."""
    return 1 << ((n - 1).bit_length() - 1)


def ref_mth(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over leaf hashes, transcribed from RFC 9162 §2.1.1."""
    if not leaves:
        return sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    digest: bytes = sha256(b"\x01" + ref_mth(leaves[:k]) + ref_mth(leaves[k:])).digest()
    return digest


def ref_path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]), transcribed from RFC 9162 §2.1.3.1."""
    n = len(leaves)
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*ref_path(m, leaves[:k]), ref_mth(leaves[k:])]
    return [*ref_path(m - k, leaves[k:]), ref_mth(leaves[:k])]


def ref_subproof(m: int, leaves: Sequence[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b), transcribed from RFC 9162 §2.1.4.1."""
    n = len(leaves)
    if m == n:
        return [] if b else [ref_mth(leaves)]
    k = _split(n)
    if m <= k:
        return [*ref_subproof(m, leaves[:k], b), ref_mth(leaves[k:])]
    return [*ref_subproof(m - k, leaves[k:], False), ref_mth(leaves[:k])]


def _path_sides(m: int, n: int) -> tuple[bool, ...]:
    """For PATH(m, D[n]): whether each proof hash is the *left* sibling, leaf-most first.

    The RFC 9162 §2.1.3.2 verifier's whole computation is determined by this
    sequence (it decides from ``m`` and ``n`` on which side each proof hash goes),
    so a claim ``(m', n')`` with the same sequence makes the verifier hash exactly
    the same bytes: it *must* accept (a proof binds a leaf to a root, not to a tree
    size; the signed checkpoint binds the size to the root). A different sequence
    puts some proof hash on the other side of a different subtree, so, with
    distinct leaves, the recomputed root differs unless SHA-256 collides.
    """
    if n == 1:
        return ()
    k = _split(n)
    if m < k:
        return (*_path_sides(m, k), False)
    return (*_path_sides(m - k, n - k), True)


def _consistency_shape(m: int, n: int, b: bool = True) -> tuple[bool, tuple[bool, ...]]:
    """For SUBPROOF(m, D[n], b): (starting node omitted?, sides of the other hashes).

    The consistency verifier (RFC 9162 §2.1.4.2) seeds with the first proof hash,
    or with the old root when that node was omitted, then folds every other hash
    in on the side given here (into both roots when it is a left sibling, into
    the new root only when it is a right one). Same reasoning as
    :func:`_path_sides`: equal shapes mean an identical computation.
    """
    if m == n:
        return b, ()
    k = _split(n)
    if m <= k:
        omitted, sides = _consistency_shape(m, k, b)
        return omitted, (*sides, False)
    omitted, sides = _consistency_shape(m - k, n - k, False)
    return omitted, (*sides, True)


def _rfc_subtrees(n: int) -> set[tuple[int, int]]:
    """Every (begin, end) that the recursive split of the tree of size n visits."""
    out: set[tuple[int, int]] = set()
    todo = [(0, n)]
    while todo:
        b, e = todo.pop()
        out.add((b, e))
        if e - b > 1:
            k = _split(e - b)
            todo += [(b, b + k), (b + k, e)]
    return out


# --------------------------------------------------------------------------- helpers


def _flip(h: bytes, bit: int) -> bytes:
    buf = bytearray(h)
    buf[bit >> 3] ^= 1 << (bit & 7)
    return bytes(buf)


def _ok(verify: Callable[..., None], *args: Any) -> bool:
    """Run a verifier; True when it accepts, False when it raises ProofError."""
    try:
        verify(*args)
    except ProofError:
        return False
    return True


def _b64(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


# --------------------------------------------------------------------------- known answers


def test_known_answers() -> None:
    assert HASH_SIZE == 32
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    assert leaf_hash(b"abc") == sha256(b"\x00abc").digest()
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert node_hash(a, b) == sha256(b"\x01" + a + b).digest()
    assert root_hash([]) == EMPTY_ROOT
    assert MemoryTree().root() == EMPTY_ROOT
    assert CompactRange().root() == EMPTY_ROOT
    assert root_hash([a]) == a
    assert root_hash([a, b]) == node_hash(a, b)


def test_base_tree_root() -> None:
    leaves = [leaf_hash(e) for e in BASE_ENTRIES]
    assert root_hash(leaves) == BASE_ROOT
    assert MemoryTree(leaves).root() == BASE_ROOT
    compact = CompactRange()
    compact.extend(leaves)
    assert compact.root() == BASE_ROOT


# --------------------------------------------------------------------------- conformance vectors


def _require_vectors() -> Path:
    """Return the merkle vectors folder; fail (in CI) or skip (locally) when it is missing."""
    if MERKLE_VECTORS.is_dir() and any(MERKLE_VECTORS.rglob("*.json")):
        return MERKLE_VECTORS
    message = (
        f"Merkle conformance vectors not found at {MERKLE_VECTORS} "
        "(expected ../shared/conformance/merkle next to the repository; see its README.md)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _vector_params() -> list[Any]:
    files = sorted(
        p
        for kind in ("inclusion", "consistency")
        if (MERKLE_VECTORS / kind).is_dir()
        for p in (MERKLE_VECTORS / kind).rglob("*.json")
    )
    if not files:
        return [pytest.param(None, id="vectors-missing")]
    return [pytest.param(p, id=p.relative_to(MERKLE_VECTORS).as_posix()) for p in files]


def _run_vector(path: Path) -> tuple[dict[str, Any], Callable[[], None]]:
    data = json.loads(path.read_text())
    proof = [_b64(p) for p in data["proof"] or []]
    kind = path.relative_to(MERKLE_VECTORS).parts[0]
    if kind == "inclusion":

        def check() -> None:
            verify_inclusion(
                _b64(data["leafHash"]), data["leafIdx"], data["treeSize"], proof, _b64(data["root"])
            )

    else:
        assert kind == "consistency"

        def check() -> None:
            verify_consistency(
                data["size1"], data["size2"], proof, _b64(data["root1"]), _b64(data["root2"])
            )

    return data, check


@pytest.mark.parametrize("path", _vector_params())
def test_conformance_vector(path: Path | None) -> None:
    if path is None:
        _require_vectors()
        return
    data, check = _run_vector(path)
    if data["wantErr"]:
        with pytest.raises(ProofError):
            check()
    else:
        check()


def test_conformance_happy_paths_match_generated_proofs() -> None:
    root_dir = _require_vectors()
    tree = MemoryTree(leaf_hash(e) for e in BASE_ENTRIES)
    assert tree.root() == BASE_ROOT
    matched = {"inclusion": 0, "consistency": 0}
    for path in sorted(root_dir.glob("inclusion/*/happy-path.json")):
        data = json.loads(path.read_text())
        size, index = data["treeSize"], data["leafIdx"]
        if size > tree.size or tree.root(size) != _b64(data["root"]):
            continue  # not a prefix of the base tree
        assert tree.levels[0][index] == _b64(data["leafHash"]), path
        want = [_b64(p) for p in data["proof"] or []]
        assert inclusion_proof(index, size, tree) == want, path
        matched["inclusion"] += 1
    for path in sorted(root_dir.glob("consistency/*/happy-path.json")):
        data = json.loads(path.read_text())
        old, new = data["size1"], data["size2"]
        if new > tree.size:
            continue
        if tree.root(old) != _b64(data["root1"]) or tree.root(new) != _b64(data["root2"]):
            continue
        want = [_b64(p) for p in data["proof"] or []]
        assert consistency_proof(old, new, tree) == want, path
        matched["consistency"] += 1
    # The comparison must not be vacuous.
    assert matched["inclusion"] >= 1
    assert matched["consistency"] >= 1


# --------------------------------------------------------------------------- against the RFC text


def test_proofs_equal_rfc_reference_exhaustively() -> None:
    leaves = [_entry_leaf(i) for i in range(40)]
    tree = MemoryTree(leaves)
    for n in range(1, len(leaves) + 1):
        prefix = leaves[:n]
        root = ref_mth(prefix)
        assert tree.root(n) == root == root_hash(prefix)
        for m in range(n):
            proof = inclusion_proof(m, n, tree)
            assert proof == ref_path(m, prefix), (m, n)
            verify_inclusion(leaves[m], m, n, proof, root)
        for m in range(1, n + 1):
            proof = consistency_proof(m, n, tree)
            assert proof == ref_subproof(m, prefix, True), (m, n)
            verify_consistency(m, n, proof, ref_mth(leaves[:m]), root)


def test_subtree_hash_accepts_exactly_rfc_subtrees() -> None:
    leaves = [_entry_leaf(i) for i in range(48)]
    tree = MemoryTree(leaves)
    subtrees = set().union(*(_rfc_subtrees(n) for n in range(1, len(leaves) + 1)))
    for begin in range(len(leaves)):
        for end in range(begin + 1, len(leaves) + 1):
            if (begin, end) in subtrees:
                assert subtree_hash(begin, end, tree) == ref_mth(leaves[begin:end])
            else:
                with pytest.raises(LogError):
                    subtree_hash(begin, end, tree)
    assert subtree_hash(5, 5, tree) == EMPTY_ROOT


@given(begin=st.integers(0, 1 << 40), length=st.integers(0, 1 << 40))
def test_range_nodes_is_the_minimal_perfect_decomposition(begin: int, length: int) -> None:
    end = begin + length
    nodes = range_nodes(begin, end)
    pos = begin
    for level, index in nodes:
        assert level >= 0
        assert index >= 0
        assert index << level == pos  # contiguous, left to right, aligned
        pos += 1 << level
        parent_begin = (index >> 1) << (level + 1)
        # Maximal: the parent is not inside the range.
        assert not (begin <= parent_begin and parent_begin + (2 << level) <= end)
    assert pos == end
    assert len(nodes) <= 2 * max(length, 1).bit_length()


def test_range_nodes_examples() -> None:
    assert range_nodes(0, 0) == []
    assert range_nodes(0, 8) == [(3, 0)]
    assert range_nodes(0, 7) == [(2, 0), (1, 2), (0, 6)]
    assert range_nodes(3, 13) == [(0, 3), (2, 1), (2, 2), (0, 12)]
    assert range_nodes(5, 6) == [(0, 5)]
    assert range_nodes(6, 16) == [(1, 3), (3, 1)]
    with pytest.raises(LogError):
        range_nodes(5, 4)
    with pytest.raises(LogError):
        range_nodes(-1, 4)


# --------------------------------------------------------------------------- inclusion: properties


def _assert_inclusion_mutations_fail(
    data: st.DataObject,
    roots: Callable[[int], bytes],
    max_size: int,
    leaf: bytes,
    index: int,
    size: int,
    proof: list[bytes],
) -> None:
    root = roots(size)
    other_leaf = _entry_leaf(index + 1)  # distinct from leaf

    # Proof hashes: a flipped bit anywhere, dropped, duplicated, added, resized.
    for i in range(len(proof)):
        bit = data.draw(st.integers(0, 8 * HASH_SIZE - 1), label=f"bit in proof[{i}]")
        bad = list(proof)
        bad[i] = _flip(proof[i], bit)
        with pytest.raises(RootMismatchError):
            verify_inclusion(leaf, index, size, bad, root)
        for shape_change in (
            [*proof[:i], *proof[i + 1 :]],  # dropped
            [*proof[:i], proof[i], *proof[i:]],  # duplicated
            [*proof[:i], proof[i][:-1], *proof[i + 1 :]],  # 31 bytes
            [*proof[:i], proof[i] + b"\x00", *proof[i + 1 :]],  # 33 bytes
        ):
            with pytest.raises(InclusionProofError):
                verify_inclusion(leaf, index, size, shape_change, root)
    for pos in {0, len(proof) // 2, len(proof)}:
        for extra in (other_leaf, root, leaf):
            with pytest.raises(InclusionProofError):
                verify_inclusion(leaf, index, size, [*proof[:pos], extra, *proof[pos:]], root)

    # Leaf and root.
    bit = data.draw(st.integers(0, 8 * HASH_SIZE - 1), label="bit in leaf/root")
    for bad_leaf in (_flip(leaf, bit), other_leaf):
        with pytest.raises(RootMismatchError):
            verify_inclusion(bad_leaf, index, size, proof, root)
    with pytest.raises(InclusionProofError):
        verify_inclusion(leaf[:-1], index, size, proof, root)
    for bad_root in (_flip(root, bit), EMPTY_ROOT, roots(size - 1), roots(min(size + 1, max_size))):
        if bad_root == root:
            continue  # roots(min(size + 1, max_size)) when size == max_size
        with pytest.raises(RootMismatchError):
            verify_inclusion(leaf, index, size, proof, bad_root)

    # Index: with distinct leaves a different index is never valid (different
    # leaves have different root-to-leaf paths, so different side sequences).
    xor = data.draw(st.integers(1, 2 * size), label="index xor")
    for bad_index in {index - 1, index + 1, index ^ 1, index ^ xor, index + size, -1, size}:
        assert _path_sides(index, size) != (
            _path_sides(bad_index, size) if 0 <= bad_index < size else None
        )
        with pytest.raises(ProofError):
            verify_inclusion(leaf, bad_index, size, proof, root)

    # Size: valid exactly when the verifier's computation is unchanged (see
    # _path_sides), e.g. index 0 in sizes 3 and 4 both hash (((leaf, p0), p1)).
    xor = data.draw(st.integers(1, 2 * size), label="size xor")
    for bad_size in {size - 1, size + 1, size ^ xor, 2 * size, size // 2, 0}:
        if bad_size == size:
            continue
        accepted = _ok(verify_inclusion, leaf, index, bad_size, proof, root)
        same_computation = 0 <= index < bad_size and _path_sides(index, bad_size) == _path_sides(
            index, size
        )
        assert accepted == same_computation, (index, size, bad_size)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_inclusion_proofs_small_trees(data: st.DataObject) -> None:
    tree = small_tree()
    roots = small_roots()
    size = data.draw(st.integers(1, SMALL), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    root = roots[size]
    assert tree.root(size) == root == root_hash(tree.levels[0][:size])
    assert CompactRange.from_reader(size, tree).root() == root
    leaf = tree.levels[0][index]
    proof = inclusion_proof(index, size, tree)
    assert all(len(p) == HASH_SIZE for p in proof)
    verify_inclusion(leaf, index, size, proof, root)
    _assert_inclusion_mutations_fail(
        data, lambda n: roots[max(n, 0)], SMALL, leaf, index, size, proof
    )


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_inclusion_proofs_large_tree(data: st.DataObject) -> None:
    tree = large_tree()
    size = data.draw(
        st.one_of(st.integers(SMALL, LARGE), st.sampled_from([1 << 16, (1 << 17) - 1, LARGE])),
        label="size",
    )
    index = data.draw(
        st.one_of(st.integers(0, size - 1), st.sampled_from([0, size - 1, size // 2])),
        label="index",
    )
    root = tree.root(size)
    assert root == CompactRange.from_reader(size, tree).root()
    assert root == root_hash(tree.levels[0][:size])
    leaf = tree.levels[0][index]
    proof = inclusion_proof(index, size, tree)
    verify_inclusion(leaf, index, size, proof, root)
    _assert_inclusion_mutations_fail(
        data, lambda n: tree.root(min(max(n, 0), LARGE)), LARGE, leaf, index, size, proof
    )


def test_inclusion_proof_does_not_bind_tree_size() -> None:
    # Documents the one legitimately valid mutation above: PATH(0, D[3]) and
    # PATH(0, D[4]) put both hashes on the right, so the verifier accepts the
    # size-3 proof and root with size 4. The checkpoint binds size and root.
    tree = small_tree()
    proof = inclusion_proof(0, 3, tree)
    verify_inclusion(tree.levels[0][0], 0, 4, proof, small_roots()[3])
    with pytest.raises(RootMismatchError):
        verify_inclusion(tree.levels[0][0], 0, 4, proof, small_roots()[4])


# ------------------------------------------------------------------------- consistency: properties


def _consistency_valid(
    old2: int, new2: int, proof: list[bytes], r1: bytes, r2: bytes, old: int, new: int
) -> bool:
    """Whether a mutated claim must verify: identical computation (see _consistency_shape)."""
    if old2 <= 0 or old2 > new2:
        return False
    if old2 == new2:
        return not proof and r1 == r2
    if old == new:  # the (empty) proof of equal sizes never fits a real size change
        return False
    return _consistency_shape(old2, new2) == _consistency_shape(old, new)


def _assert_consistency_mutations_fail(
    data: st.DataObject,
    roots: Callable[[int], bytes],
    old: int,
    new: int,
    proof: list[bytes],
) -> None:
    r1, r2 = roots(old), roots(new)
    junk = _entry_leaf(10**9)

    for i in range(len(proof)):
        bit = data.draw(st.integers(0, 8 * HASH_SIZE - 1), label=f"bit in proof[{i}]")
        bad = list(proof)
        bad[i] = _flip(proof[i], bit)
        with pytest.raises(RootMismatchError):
            verify_consistency(old, new, bad, r1, r2)
        for shape_change in (
            [*proof[:i], *proof[i + 1 :]],
            [*proof[:i], proof[i], *proof[i:]],
            [*proof[:i], proof[i][:-1], *proof[i + 1 :]],
            [*proof[:i], proof[i] + b"\x00", *proof[i + 1 :]],
        ):
            with pytest.raises(ConsistencyProofError):
                verify_consistency(old, new, shape_change, r1, r2)
    for pos in {0, len(proof) // 2, len(proof)}:
        for extra in (junk, r1, r2):
            with pytest.raises(ConsistencyProofError):
                verify_consistency(old, new, [*proof[:pos], extra, *proof[pos:]], r1, r2)

    # Roots.
    bit = data.draw(st.integers(0, 8 * HASH_SIZE - 1), label="bit in roots")
    for bad1, bad2 in ((_flip(r1, bit), r2), (r1, _flip(r2, bit)), (junk, r2), (r1, junk)):
        with pytest.raises(RootMismatchError):
            verify_consistency(old, new, proof, bad1, bad2)
    for bad1, bad2 in ((r1[:-1], r2), (r1, r2 + b"\x00")):
        with pytest.raises(ConsistencyProofError):
            verify_consistency(old, new, proof, bad1, bad2)
    # Swapped roots are only "the same claim" when the roots are equal (old == new).
    assert _ok(verify_consistency, old, new, proof, r2, r1) == (old == new)
    # The real root of another size in place of either root.
    for other in {old - 1, old + 1, new - 1, new + 1}:
        alt = roots(other)
        if alt not in (r1, r2):
            with pytest.raises(RootMismatchError):
                verify_consistency(old, new, proof, alt, r2)
            with pytest.raises(RootMismatchError):
                verify_consistency(old, new, proof, r1, alt)

    # Old size: a different old size with the same new size never gives the
    # same computation (each old size starts from a different node of the tree).
    xor = data.draw(st.integers(1, 2 * new), label="old xor")
    for bad_old in {old - 1, old + 1, old ^ 1, old ^ xor, 0, new + 1}:
        if bad_old == old:
            continue
        accepted = _ok(verify_consistency, bad_old, new, proof, r1, r2)
        expected = _consistency_valid(bad_old, new, proof, r1, r2, old, new)
        assert not expected, (old, new, bad_old)
        assert accepted == expected, (old, new, bad_old)

    # New size: valid exactly when the computation is unchanged (e.g. 1 -> 3 and
    # 1 -> 4 both hash ((r1, p0), p1)); sizes are bound by the checkpoints.
    xor = data.draw(st.integers(1, 2 * new), label="new xor")
    for bad_new in {new - 1, new + 1, new ^ xor, 2 * new, new // 2, old - 1}:
        if bad_new == new:
            continue
        accepted = _ok(verify_consistency, old, bad_new, proof, r1, r2)
        expected = _consistency_valid(old, bad_new, proof, r1, r2, old, new)
        assert accepted == expected, (old, new, bad_new)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_consistency_proofs_small_trees(data: st.DataObject) -> None:
    tree = small_tree()
    roots = small_roots()
    new = data.draw(st.integers(1, SMALL), label="new")
    old = data.draw(st.one_of(st.integers(1, new), st.just(new)), label="old")
    proof = consistency_proof(old, new, tree)
    assert (proof == []) == (old == new)
    verify_consistency(old, new, proof, roots[old], roots[new])
    _assert_consistency_mutations_fail(
        data, lambda n: roots[min(max(n, 0), SMALL)], old, new, proof
    )


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_consistency_proofs_large_tree(data: st.DataObject) -> None:
    tree = large_tree()
    new = data.draw(st.integers(SMALL, LARGE), label="new")
    old = data.draw(st.one_of(st.integers(1, new), st.sampled_from([1, 1 << 9, new - 1])))
    proof = consistency_proof(old, new, tree)
    verify_consistency(old, new, proof, tree.root(old), tree.root(new))
    _assert_consistency_mutations_fail(
        data, lambda n: tree.root(min(max(n, 0), LARGE)), old, new, proof
    )


def test_consistency_proof_does_not_bind_new_size() -> None:
    tree = small_tree()
    roots = small_roots()
    proof = consistency_proof(1, 3, tree)
    verify_consistency(1, 4, proof, roots[1], roots[3])
    with pytest.raises(RootMismatchError):
        verify_consistency(1, 4, proof, roots[1], roots[4])


# --------------------------------------------------------------------------- verifier edge cases


def test_verify_inclusion_malformed_inputs() -> None:
    tree = small_tree()
    leaf, root = tree.levels[0][0], small_roots()[1]
    verify_inclusion(leaf, 0, 1, [], root)  # a single leaf is its own root
    for index, size in ((-1, 1), (1, 1), (0, 0), (0, -1)):
        with pytest.raises(InclusionProofError):
            verify_inclusion(leaf, index, size, [], root)
    with pytest.raises(InclusionProofError):
        verify_inclusion(b"", 0, 1, [], root)
    with pytest.raises(InclusionProofError):
        verify_inclusion(leaf, 0, 1, [], b"")
    with pytest.raises(InclusionProofError):
        verify_inclusion(leaf, 0, 1, [root], root)
    with pytest.raises(RootMismatchError) as info:
        verify_inclusion(leaf, 0, 1, [], EMPTY_ROOT)
    assert info.value.expected == EMPTY_ROOT
    assert info.value.computed == leaf


def test_verify_consistency_malformed_inputs() -> None:
    roots = small_roots()
    # Size 0 is rejected by policy, even with the empty root on both sides.
    with pytest.raises(ConsistencyProofError):
        verify_consistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)
    with pytest.raises(ConsistencyProofError):
        verify_consistency(0, 5, [], EMPTY_ROOT, roots[5])
    with pytest.raises(ConsistencyProofError):
        verify_consistency(-1, 5, [], EMPTY_ROOT, roots[5])
    with pytest.raises(ConsistencyProofError):
        verify_consistency(6, 5, [], roots[6], roots[5])
    # Equal sizes: empty proof and equal roots.
    verify_consistency(5, 5, [], roots[5], roots[5])
    with pytest.raises(ConsistencyProofError):
        verify_consistency(5, 5, [roots[5]], roots[5], roots[5])
    with pytest.raises(RootMismatchError) as info:
        verify_consistency(5, 5, [], roots[5], roots[4])
    assert info.value.expected == roots[5]
    assert info.value.computed == roots[4]
    with pytest.raises(ConsistencyProofError):
        verify_consistency(5, 5, [], roots[5][:31], roots[5][:31])
    # Old size < new size never has an empty proof.
    with pytest.raises(ConsistencyProofError):
        verify_consistency(4, 5, [], roots[4], roots[5])


def test_generation_rejects_out_of_range_requests() -> None:
    tree = small_tree()
    for index, size in ((0, 0), (3, 3), (-1, 3), (0, -2)):
        with pytest.raises(LogError):
            inclusion_proof(index, size, tree)
    for old, new in ((0, 3), (4, 3), (-1, 3)):
        with pytest.raises(LogError):
            consistency_proof(old, new, tree)
    with pytest.raises(LogError):
        inclusion_proof(0, SMALL + 1, tree)  # nodes beyond the stored tree
    assert consistency_proof(7, 7, tree) == []


# --------------------------------------------------------------------------- reads per proof


def test_one_get_nodes_call_per_proof() -> None:
    tree = MemoryTree(_entry_leaf(i) for i in range(140))
    for size in range(1, tree.size + 1):
        budget = 2 * size.bit_length() + 2
        for index in range(size):
            reader = CountingReader(tree)
            proof = inclusion_proof(index, size, reader)
            assert len(reader.calls) == (1 if proof else 0), (index, size)
            assert sum(map(len, reader.calls)) <= budget
        for old in range(1, size + 1):
            reader = CountingReader(tree)
            proof = consistency_proof(old, size, reader)
            assert len(reader.calls) == (1 if proof else 0), (old, size)
            assert sum(map(len, reader.calls)) <= budget
        reader = CountingReader(tree)
        CompactRange.from_reader(size, reader)
        assert len(reader.calls) == 1
        assert len(reader.calls[0]) == size.bit_count()
        reader = CountingReader(tree)
        subtree_hash(0, size, reader)
        assert len(reader.calls) == 1


def test_reader_answers_are_checked() -> None:
    class Short:
        def get_nodes(self, ids: Sequence[tuple[int, int]]) -> list[bytes]:
            return [b"\x00" * HASH_SIZE] * (len(ids) - 1)

    class Truncated:
        def get_nodes(self, ids: Sequence[tuple[int, int]]) -> list[bytes]:
            return [b"\x00" * (HASH_SIZE - 1)] * len(ids)

    for reader in (Short(), Truncated()):
        with pytest.raises(LogError):
            inclusion_proof(0, 5, reader)
        with pytest.raises(LogError):
            consistency_proof(3, 5, reader)
        with pytest.raises(LogError):
            CompactRange.from_reader(5, reader)


# --------------------------------------------------------------------------- compact range


def test_compact_range_round_trips_and_emits_exactly_the_stored_nodes() -> None:
    tree = small_tree()
    compact = CompactRange()
    emitted: list[tuple[int, int, bytes]] = []
    for size in range(301):
        if size:
            emitted += compact.append(tree.levels[0][size - 1])
        assert compact.size == size
        rebuilt = CompactRange.from_reader(size, tree)
        assert rebuilt == compact
        assert rebuilt.peaks == compact.peaks
        assert [(lvl, idx) for lvl, idx, _ in compact.peaks] == range_nodes(0, size)
        assert compact.root() == small_roots()[size] == root_hash(tree.levels[0][:size])
        prefix = MemoryTree(tree.levels[0][:size])
        assert sorted(emitted) == sorted(
            (lvl, idx, h) for lvl, row in enumerate(prefix.levels) for idx, h in enumerate(row)
        )
    # One extend over the whole run emits the same nodes, in the same order.
    assert CompactRange().extend(tree.levels[0][:300]) == emitted
    # Within a level, nodes complete left to right (the tile writer relies on it).
    for level in range(10):
        indexes = [idx for lvl, idx, _ in emitted if lvl == level]
        assert indexes == list(range(len(indexes)))


@settings(max_examples=60, deadline=None)
@given(start=st.integers(0, 300), chunks=st.lists(st.integers(0, 300), max_size=5))
def test_extend_and_extend_levels_equal_repeated_append(start: int, chunks: list[int]) -> None:
    leaves = small_tree().levels[0]
    by_extend = CompactRange.from_reader(start, small_tree())
    by_append = by_extend.copy()
    by_levels = by_extend.copy()
    pos = start
    for n in chunks:
        batch = leaves[pos : pos + n]
        expected = [node for h in batch for node in by_append.append(h)]
        assert by_extend.extend(iter(batch)) == expected
        # A level at a time: one run per level, bottom up, each contiguous and
        # left to right, holding exactly the nodes completed one by one.
        runs = by_levels.extend_levels(batch)
        assert [level for level, _, _ in runs] == list(range(len(runs)))
        flat = [(lvl, first + k, h) for lvl, first, hashes in runs for k, h in enumerate(hashes)]
        assert sorted(flat) == sorted(expected)
        assert len(flat) == len(expected)
        assert all(small_tree().get_nodes([(lvl, idx)]) == [h] for lvl, idx, h in flat)
        pos += len(batch)
        assert by_extend == by_append == by_levels
        assert by_levels.peaks == by_append.peaks
        assert by_extend.root() == by_levels.root() == small_roots()[pos]


def test_extend_levels_rejects_a_bad_hash_and_changes_nothing() -> None:
    leaves = small_tree().levels[0]
    compact = CompactRange()
    assert compact.extend_levels([]) == []
    compact.extend_levels(leaves[:7])
    with pytest.raises(LogError):
        compact.extend_levels([leaves[7], b"short", leaves[8]])
    assert compact == CompactRange.from_reader(7, small_tree())
    assert compact.root() == small_roots()[7]


def test_leaf_hashes_is_leaf_hash_over_a_batch_and_gives_the_vectors_root() -> None:
    assert leaf_hashes(BASE_ENTRIES) == [leaf_hash(e) for e in BASE_ENTRIES]
    assert root_hash(leaf_hashes(BASE_ENTRIES)) == BASE_ROOT
    assert leaf_hashes([]) == []
    compact = CompactRange()
    compact.extend_levels(leaf_hashes(BASE_ENTRIES))
    assert compact.root() == BASE_ROOT


def test_compact_range_copy_is_independent_and_bad_input_changes_nothing() -> None:
    leaves = small_tree().levels[0]
    compact = CompactRange()
    compact.extend(leaves[:5])
    snapshot = compact.copy()
    compact.append(leaves[5])
    assert snapshot.size == 5
    assert snapshot.root() == small_roots()[5]
    assert compact.root() == small_roots()[6]
    with pytest.raises(LogError):
        compact.extend([leaves[6], b"short"])
    with pytest.raises(LogError):
        compact.append(b"short")
    assert compact.size == 6
    assert compact.root() == small_roots()[6]
    with pytest.raises(LogError):
        CompactRange.from_reader(-1, small_tree())
    assert CompactRange.from_reader(0, small_tree()) == CompactRange()
    assert "size=6" in repr(compact)


# --------------------------------------------------------------------------- memory tree


def test_memory_tree_chunking_and_bounds() -> None:
    leaves = small_tree().levels[0][:257]
    whole = MemoryTree(leaves)
    pieces = MemoryTree()
    for start, stop in ((0, 1), (1, 2), (2, 100), (100, 100), (100, 256), (256, 257)):
        pieces.append_leaves(leaves[start:stop])
    assert pieces.levels == whole.levels
    assert whole.root() == root_hash(leaves)
    assert whole.root(0) == EMPTY_ROOT
    with pytest.raises(LogError):
        whole.root(258)
    with pytest.raises(LogError):
        whole.root(-1)
    for bad in ((0, 257), (0, -1), (-1, 0), (9, 0), (8, 1)):
        with pytest.raises(LogError):
            whole.get_nodes([bad])
    assert whole.get_nodes([(8, 0)]) == [root_hash(leaves[:256])]
    with pytest.raises(LogError):
        MemoryTree([b"short"])
    with pytest.raises(LogError):
        root_hash([leaves[0], b"short"])
    assert isinstance(whole, NodeReader)
