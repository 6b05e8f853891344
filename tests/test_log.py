"""The tile writer (vault/log.py) against an in-memory tree, on a real SQLite catalog.

The tiles a sequence of appends writes (a level at a time, cut into rows of
256 hashes) must be exactly the perfect nodes of the tree (RFC 9162 §2.1.1),
whatever the batch sizes, and a writer reopened on the stored tiles must carry
on as if it had never stopped.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from echo_archive.vault.catalog import connect, create_schema, transaction
from echo_archive.vault.log import TILE_WIDTH, TileReader, TileWriter
from echo_archive.vault.merkle import MemoryTree, leaf_hashes


def _stored_levels(path: Path) -> dict[int, bytes]:
    conn = connect(path, readonly=True)
    try:
        out: dict[int, bytes] = {}
        rows = conn.execute("SELECT level, idx, hashes FROM tiles ORDER BY level, idx")
        for level, idx, hashes in rows:
            assert len(out.get(level, b"")) == idx * TILE_WIDTH * 32, "a tile row is missing"
            out[level] = out.get(level, b"") + hashes
        return out
    finally:
        conn.close()


@settings(max_examples=25, deadline=None)
@given(
    batches=st.lists(
        st.one_of(st.integers(0, 3), st.integers(250, 260), st.integers(0, 1100)), max_size=6
    ),
    reopen=st.lists(st.booleans(), min_size=6, max_size=6),
)
def test_tiles_written_a_level_at_a_time_are_the_trees_perfect_nodes(
    batches: list[int], reopen: list[bool]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "catalog.sqlite"
        create_schema(path, "test.example/log")
        conn = connect(path, readonly=False)
        tree = MemoryTree()
        writer = TileWriter(conn, 0)
        count = 0
        for n, again in zip(batches, reopen, strict=False):
            leaves = leaf_hashes(b"entry %d" % i for i in range(count, count + n))
            pending = writer.prepare(leaves)
            with transaction(conn, "append"):
                TileWriter.write(conn, pending)
            writer.accept(pending)
            tree.append_leaves(leaves)
            count += n
            assert pending.size == count
            assert pending.root == tree.root()
            if again:  # a new writer on the stored tiles (a restart) continues the same tree
                writer = TileWriter(conn, count)
                assert writer.compact == pending.compact
                assert writer.edges == pending.edges
        conn.close()
        stored = _stored_levels(path)
        expected = {lvl: b"".join(row) for lvl, row in enumerate(tree.levels) if row}
        assert stored == expected
        if count:
            reader = TileReader(connect(path, readonly=True))
            ids = [(0, count - 1), (0, 0)]
            assert reader.get_nodes(ids) == tree.get_nodes(ids)
