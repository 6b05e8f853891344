"""The catalog: the vault's SQLite database of entries, log hashes and checkpoints.

The catalog (``catalog.sqlite``, WAL mode) holds, for the embedded backend:

* ``entries(idx, type, entry)``: every log entry's canonical JSON bytes, by
  its index in the log (0-based, contiguous);
* ``entry_blobs(idx, role, digest)``: which entries name which blob (an index
  for finding an entry by blob digest; derived from ``entries``);
* ``tiles(level, idx, hashes)``: the log's node hashes. Level 0 holds the leaf
  hashes; level L holds the roots of perfect subtrees of 2^L leaves. Each row
  holds up to 256 consecutive node hashes of one level (tile ``idx`` holds
  nodes ``idx*256 ..``), in the spirit of C2SP tlog-tiles but with a tile per
  level so a proof needs only O(log n) row reads and no rehashing;
* ``log_state(size, root)``: the tree size and root hash after the last
  committed append (one row);
* ``checkpoints(size, root, note, signed_at)``: every signed checkpoint ever
  issued, verbatim;
* ``meta(key, value)``: schema version and the vault origin.

The writer commits entries, tiles and ``log_state`` in one transaction, so the
hashes always describe exactly the entries present. Readers use separate
read-only connections and never block the writer (SQLite WAL).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from echo_archive.errors import StorageError, VaultNotFoundError

__all__ = ["SCHEMA_VERSION", "as_bytes", "connect", "create_schema", "transaction"]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE entries(
    idx INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    entry BLOB NOT NULL
);
CREATE TABLE entry_blobs(
    idx INTEGER NOT NULL,
    role TEXT NOT NULL,
    digest BLOB NOT NULL,
    PRIMARY KEY(idx, role)
) WITHOUT ROWID;
CREATE INDEX entry_blobs_digest ON entry_blobs(digest);
CREATE TABLE tiles(
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    hashes BLOB NOT NULL,
    PRIMARY KEY(level, idx)
) WITHOUT ROWID;
CREATE TABLE log_state(
    id INTEGER PRIMARY KEY CHECK (id = 1),
    size INTEGER NOT NULL,
    root BLOB NOT NULL
);
CREATE TABLE checkpoints(
    size INTEGER PRIMARY KEY,
    root BLOB NOT NULL,
    note TEXT NOT NULL,
    signed_at TEXT NOT NULL
);
"""


def as_bytes(value: object) -> bytes:
    """Return a BLOB column's value as bytes, whatever SQLite type it holds.

    A damaged or hand-edited row may hold TEXT, INTEGER or NULL where a BLOB
    belongs; such a value is turned into bytes (UTF-8 for text, decimal for
    numbers, empty for NULL) so the caller's hash comparison reports the
    mismatch instead of crashing.
    """
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if value is None:
        return b""
    return str(value).encode("utf-8", "surrogatepass")


def connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    """Open the catalog database.

    Args:
        path: ``catalog.sqlite``.
        readonly: open a read-only connection (``mode=ro``), as readers do.

    Returns:
        A connection in autocommit mode (transactions are explicit, see
        :func:`transaction`), WAL journal, ``synchronous=FULL`` so a commit is
        durable when it returns.

    Raises:
        VaultNotFoundError: the file does not exist.
        StorageError: SQLite cannot open it.

    """
    if not path.exists():
        raise VaultNotFoundError(f"no catalog at {path}")
    mode = "ro" if readonly else "rw"
    try:
        conn = sqlite3.connect(
            f"file:{path}?mode={mode}", uri=True, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA busy_timeout = 10000")
        if not readonly:
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA cache_size = -32768")  # KiB: 32 MiB page cache
        conn.execute("PRAGMA temp_store = MEMORY")
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open catalog {path}: {exc}") from exc
    return conn


def create_schema(path: Path, origin: str) -> None:
    """Create a new, empty catalog at ``path`` (the file must not exist).

    Raises:
        StorageError: the file exists or cannot be written.

    """
    if path.exists():
        raise StorageError(f"catalog {path} already exists")
    try:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("PRAGMA page_size = 8192")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.executescript("BEGIN;" + _SCHEMA + "COMMIT;")
            with transaction(conn, "writing catalog metadata"):
                conn.execute(
                    "INSERT INTO meta(key, value) VALUES ('schema_version', ?), ('origin', ?)",
                    (str(SCHEMA_VERSION), origin),
                )
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StorageError(f"cannot create catalog {path}: {exc}") from exc


@contextmanager
def transaction(conn: sqlite3.Connection, what: str) -> Iterator[sqlite3.Connection]:
    """Run a write transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``), rolling back on error.

    Args:
        conn: a writable catalog connection.
        what: what the transaction does, for error messages.

    Raises:
        StorageError: any SQLite or OS error inside, with ``what`` in the message;
            the transaction is rolled back and nothing of it is visible.

    """
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        raise StorageError(f"catalog: cannot begin {what}: {exc}") from exc
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException as exc:
        if conn.in_transaction:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error | OSError):
            raise StorageError(f"catalog: {what} failed and was rolled back: {exc}") from exc
        raise
