"""The transparency log's node-hash storage: tiles in the catalog.

The log is an RFC 9162 Merkle tree over entries. Its node hashes are stored
in the catalog's ``tiles`` table: one row per (level, tile index) holding up
to :data:`TILE_WIDTH` consecutive 32-byte hashes of that level (tile ``t`` of
level ``L`` holds node hashes ``t*256 .. t*256+255`` of level ``L``). A node
``(L, i)`` is the root of the perfect subtree over leaves
``[i * 2^L, (i+1) * 2^L)``; level 0 holds the leaf hashes.

Only *perfect* subtrees are stored, and they never change once complete, so a
full tile is immutable and a partial (right-edge) tile only grows. Proofs for
any tree size up to the current one read O(log n) nodes
(:class:`TileReader`); nothing is ever rebuilt to answer a proof.

Appends (:class:`TileWriter`) compute the new perfect nodes with a compact
range and produce the tile rows to write in the same catalog transaction as
the entries, so hashes and entries always agree.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from echo_archive.errors import LogError
from echo_archive.vault.catalog import as_bytes
from echo_archive.vault.merkle import HASH_SIZE, CompactRange

__all__ = ["TILE_WIDTH", "PendingAppend", "TileReader", "TileWriter", "iter_level", "read_tile"]

TILE_WIDTH = 256
_TILE_BYTES = TILE_WIDTH * HASH_SIZE


class TileReader:
    """A :class:`~echo_archive.vault.merkle.NodeReader` over the ``tiles`` table.

    Tiles are kept in an LRU cache. Full tiles never change; a cached partial
    tile is re-read only when a node beyond its cached end is asked for.

    Args:
        conn: a catalog connection (read-only or the writer's).
        cache_tiles: how many tiles to cache (each at most 8 KiB; 8192 tiles
            cover every node of a 1,000,000-leaf tree in 64 MiB).

    """

    def __init__(self, conn: sqlite3.Connection, cache_tiles: int = 8192) -> None:
        self._conn = conn
        self._cache: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self._cap = cache_tiles
        self._lock = threading.Lock()  # the HTTP API reads one log from many threads

    def tile(self, level: int, index: int, need: int = 0) -> bytes:
        """Return the hashes of tile ``index`` at ``level`` (empty bytes if absent).

        Args:
            level: the tree level.
            index: the tile index at that level.
            need: the number of bytes the caller needs; a cached partial tile
                at least that long is returned without a read. Stored hashes
                never change and a partial tile only grows, so any cached
                prefix stays correct.
        """
        key = (level, index)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and (len(hit) == _TILE_BYTES or len(hit) >= need > 0):
                self._cache.move_to_end(key)
                return hit
        row = self._conn.execute(
            "SELECT hashes FROM tiles WHERE level = ? AND idx = ?", key
        ).fetchone()
        data = as_bytes(row[0]) if row else b""
        if data and self._cap:
            with self._lock:
                self._cache[key] = data
                self._cache.move_to_end(key)
                if len(self._cache) > self._cap:
                    self._cache.popitem(last=False)
        return data

    def get_nodes(self, ids: Sequence[tuple[int, int]]) -> list[bytes]:
        """Return the stored hashes of perfect-subtree nodes ``(level, index)``, in order.

        Raises:
            LogError: a node is not stored (beyond the tree, or the tiles are damaged).

        """
        out = []
        for level, index in ids:
            tile_index, offset = divmod(index, TILE_WIDTH)
            start = offset * HASH_SIZE
            data = self.tile(level, tile_index, need=start + HASH_SIZE)
            node = data[start : start + HASH_SIZE]
            if len(node) != HASH_SIZE:
                raise LogError(f"log node (level {level}, index {index}) is not stored")
            out.append(node)
        return out


def iter_level(conn: sqlite3.Connection, level: int, first: int = 0) -> Iterator[tuple[int, bytes]]:
    """Yield ``(node index, hash)`` of every stored node at ``level`` from ``first``, in order.

    Yields tile by tile from one cursor; gaps between tiles show as jumps in index.
    """
    cur = conn.execute(
        "SELECT idx, hashes FROM tiles WHERE level = ? AND idx >= ? ORDER BY idx",
        (level, first // TILE_WIDTH),
    )
    for tile_index, hashes in cur:
        base = tile_index * TILE_WIDTH
        data = as_bytes(hashes)
        for k in range(max(0, first - base), len(data) // HASH_SIZE):
            yield base + k, data[k * HASH_SIZE : (k + 1) * HASH_SIZE]


def read_tile(conn: sqlite3.Connection, level: int, index: int) -> bytes:
    """The stored hashes of tile ``index`` at ``level``, read uncached (empty bytes if absent).

    For serving tiles (the C2SP tlog-tiles read paths): one row, no shared
    cache touched, so concurrent readers need no lock. A full tile is
    :data:`TILE_WIDTH` 32-byte hashes; the right-edge tile of a level holds
    fewer, and only grows.

    Args:
        conn: a catalog connection.
        level: the tree level (0: leaf hashes).
        index: the tile index at that level (node hashes ``index*256 ..``).
    """
    row = conn.execute(
        "SELECT hashes FROM tiles WHERE level = ? AND idx = ?", (level, index)
    ).fetchone()
    return as_bytes(row[0]) if row else b""


@dataclass(frozen=True, slots=True)
class PendingAppend:
    """The result of preparing an append, to be written in one transaction.

    Attributes:
        size: the tree size after the append.
        root: the root hash after the append (32 bytes).
        rows: tile rows ``(level, tile index, hashes)`` to insert or replace.
        compact: the compact range after the append.
        edges: the right-edge (partial) tile of each level after the append.

    """

    size: int
    root: bytes
    rows: list[tuple[int, int, bytes]]
    compact: CompactRange
    edges: dict[int, tuple[int, bytes]]


class TileWriter:
    """Computes tile rows for appends, keeping the tree's right edge in memory.

    Args:
        conn: the writer's catalog connection.
        size: the committed tree size.

    Raises:
        LogError: the stored tiles cannot describe a tree of ``size`` leaves.

    """

    def __init__(self, conn: sqlite3.Connection, size: int) -> None:
        reader = TileReader(conn, cache_tiles=0)
        self.size = size
        self.compact = CompactRange.from_reader(size, reader)
        self.edges: dict[int, tuple[int, bytes]] = {}
        level = 0
        while size >> level:
            count = size >> level
            tile_index, width = divmod(count, TILE_WIDTH)
            data = reader.tile(level, tile_index)[: width * HASH_SIZE] if width else b""
            if len(data) != width * HASH_SIZE:
                raise LogError(
                    f"tile (level {level}, index {tile_index}) holds {len(data) // HASH_SIZE} "
                    f"hashes; a tree of {size} leaves needs {width}"
                )
            self.edges[level] = (tile_index, data)
            level += 1

    def prepare(self, leaf_hashes: Sequence[bytes]) -> PendingAppend:
        """Compute the tile rows and new root for appending ``leaf_hashes``.

        Nothing is changed until :meth:`accept` is called with the result after
        the transaction commits, so a failed transaction leaves this writer intact.
        """
        compact = self.compact.copy()
        rows: list[tuple[int, int, bytes]] = []
        edges = dict(self.edges)
        for level, first, hashes in compact.extend_levels(leaf_hashes):
            # The level's right-edge tile, then the run of new nodes, cut into tiles.
            tile_index, data = edges.get(level, (first // TILE_WIDTH, b""))
            run = data + b"".join(hashes)
            for start in range(0, len(run), _TILE_BYTES):
                rows.append((level, tile_index, run[start : start + _TILE_BYTES]))
                tile_index += 1
            tail = len(run) % _TILE_BYTES
            edges[level] = (tile_index - 1, rows[-1][2]) if tail else (tile_index, b"")
        return PendingAppend(compact.size, compact.root(), rows, compact, edges)

    @staticmethod
    def write(conn: sqlite3.Connection, pending: PendingAppend) -> None:
        """Write ``pending``'s tile rows and log state (inside the caller's transaction)."""
        conn.executemany(
            "INSERT OR REPLACE INTO tiles(level, idx, hashes) VALUES (?, ?, ?)", pending.rows
        )
        conn.execute(
            "INSERT OR REPLACE INTO log_state(id, size, root) VALUES (1, ?, ?)",
            (pending.size, pending.root),
        )

    def accept(self, pending: PendingAppend) -> None:
        """Adopt ``pending`` as the committed state (call after the commit succeeded)."""
        self.size = pending.size
        self.compact = pending.compact
        self.edges = pending.edges
