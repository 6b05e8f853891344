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

**Format version.** The catalog says what it is in its SQLite header:
``PRAGMA application_id`` = :data:`APPLICATION_ID` (``"ECHC"``) and ``PRAGMA
user_version`` = the on-disk format, :data:`FORMAT_VERSION`, also kept as the
``meta`` row ``schema_version``. :func:`check_format` runs before a vault is
opened and refuses (changing nothing) a 0-byte file, a file that is not an
SQLite database, a foreign SQLite database and a newer format. Catalogs
written before the format was recorded in the header (application_id 0) are
recognised as format 1 by their ``meta`` row and tables.

The writer commits entries, tiles and ``log_state`` in one transaction, so the
hashes always describe exactly the entries present. Readers use separate
read-only connections and never block the writer (SQLite WAL).

Every table of the catalog is one of three kinds (DESIGN.md invariant 8):

* **the truth**: ``entries``, ``tiles``, ``log_state``, ``checkpoints`` (and
  the blobs of the blob store). Never rewritten; :mod:`.verify` recomputes
  every hash from them.
* **derived**: rebuildable from the truth. ``entry_blobs`` (the vault's own,
  checked entry by entry by :mod:`.verify`), ``derived_state`` (how far each
  derived index has applied the log) and the tables of each derived index
  (:mod:`.derived`: the item index, captures, observations, the leaf-hash
  lookup, defined above the vault in :mod:`echo_archive.index`);
* **operational**: the state a harvester keeps between runs (breakers,
  conditional-request validators, feed runs, harvest reports), defined in
  :mod:`echo_archive.harvest.state`. Losing it loses no evidence.

What the vault and the derived indexes need from SQL is :class:`Catalog`:
statements and queries with ``?`` parameters, explicit write transactions,
read snapshots. :class:`SQLiteCatalog` is the embedded implementation; a
PostgreSQL catalog is added by passing the conformance suite
(``tests/catalog_suite.py``).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from echo_archive.errors import StorageError, VaultError, VaultFormatError, VaultNotFoundError

__all__ = [
    "APPLICATION_ID",
    "FORMAT_VERSION",
    "SCHEMA_VERSION",
    "Catalog",
    "Params",
    "Row",
    "SQLiteCatalog",
    "as_bytes",
    "check_format",
    "connect",
    "create_schema",
    "readonly_uri",
    "transaction",
]

Params = Sequence[Any]
"""Positional parameters of a statement, bound to its ``?`` marks in order."""

Row = tuple[Any, ...]
"""One result row: column values in ``SELECT`` order (BLOB as bytes, INTEGER as int)."""

FORMAT_VERSION = 1
"""The on-disk format of catalogs this code writes (``PRAGMA user_version``)."""

SCHEMA_VERSION = FORMAT_VERSION  # the name the ``meta`` row has always used

APPLICATION_ID = 0x45434843
"""``PRAGMA application_id`` of a catalog: ``"ECHC"`` (SQLite file header, offset 68)."""

KNOWN_FORMATS = frozenset({1})
"""The formats this code opens."""

_SQLITE_MAGIC = b"SQLite format 3\x00"
_CORE_TABLES = frozenset({"meta", "entries", "entry_blobs", "tiles", "log_state", "checkpoints"})

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


def readonly_uri(path: Path) -> str:
    """The SQLite URI that reads ``path`` without writing anything beside it.

    A read-only connection (``mode=ro``) to a WAL database still needs the
    ``-shm`` index and reads the ``-wal`` file; SQLite creates them when they
    are missing, which fails in a directory the user may not write ("unable
    to open database file") or on a read-only filesystem. Per
    https://www.sqlite.org/wal.html §"Read-Only Databases" (3.22+) such a
    database can be read when the ``-shm`` and ``-wal`` already exist, or when
    it is opened ``immutable`` (https://www.sqlite.org/uri.html): then SQLite
    neither locks nor looks at the ``-wal``, which is only right when the
    ``-wal`` is absent or empty (the main file is then the whole database).

    So: ``mode=ro`` when SQLite can make or use what it needs (the directory
    is writable, or both ``-wal`` and ``-shm`` exist and are readable), else
    ``mode=ro&immutable=1`` when there is no write-ahead log to miss.

    Args:
        path: an SQLite database file (the catalog, a blob store's database).

    Returns:
        A ``file:`` URI for ``sqlite3.connect(uri, uri=True)``.

    Raises:
        StorageError: the directory is not writable and a non-empty ``-wal``
            sits beside the file with no readable ``-shm``: its committed
            transactions cannot be read without writing; the message names the
            files and the fix (a writer opening the vault checkpoints it).

    """
    uri = f"{path.resolve().as_uri()}?mode=ro"
    wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
    try:
        wal_size = wal.stat().st_size
    except FileNotFoundError:
        wal_size = 0
    except OSError as exc:
        raise StorageError(f"cannot read {wal}: {exc}") from exc
    writable_dir = os.access(path.parent, os.W_OK)
    if writable_dir and (not shm.exists() or os.access(shm, os.R_OK | os.W_OK)):
        return uri
    if wal_size == 0:
        return uri + "&immutable=1"
    if wal.exists() and shm.exists() and os.access(shm, os.R_OK) and os.access(wal, os.R_OK):
        return uri  # SQLite >= 3.22 reads a WAL database through a read-only -shm
    raise StorageError(
        f"{path} has committed transactions in its write-ahead log {wal} ({wal_size} bytes) "
        f"but {shm} is missing or unreadable and {path.parent} is not writable, so it cannot "
        "be read without writing; open the vault once as its owner (any command, e.g. "
        "`echoctl verify`, checkpoints the log into the main file) or read a copy"
    )


def connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    """Open the catalog database.

    Args:
        path: ``catalog.sqlite``.
        readonly: open a read-only connection, as readers do: it writes
            nothing, not even a ``-shm`` beside a catalog on a read-only
            filesystem or in a directory the user may not write
            (:func:`readonly_uri`).

    Returns:
        A connection in autocommit mode (transactions are explicit, see
        :func:`transaction`), WAL journal, ``synchronous=FULL`` so a commit is
        durable when it returns.

    Raises:
        VaultNotFoundError: the file does not exist.
        StorageError: SQLite cannot open it (or cannot read it without
            writing, see :func:`readonly_uri`).

    """
    if not path.exists():
        raise VaultNotFoundError(f"no catalog at {path}")
    uri = readonly_uri(path) if readonly else f"{path.resolve().as_uri()}?mode=rw"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
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
            conn.executescript(
                "BEGIN;"
                + _SCHEMA
                + f"PRAGMA application_id = {APPLICATION_ID};"
                + f"PRAGMA user_version = {FORMAT_VERSION};"
                + "COMMIT;"
            )
            with transaction(conn, "writing catalog metadata"):
                conn.execute(
                    "INSERT INTO meta(key, value) VALUES ('schema_version', ?), ('origin', ?)",
                    (str(SCHEMA_VERSION), origin),
                )
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StorageError(f"cannot create catalog {path}: {exc}") from exc


_HELD: dict[tuple[int, int], int] = {}
"""``(st_dev, st_ino)`` -> how many :class:`SQLiteCatalog` connections this process holds open."""

_HELD_LOCK = threading.Lock()


def _file_key(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _held_in_process(path: Path) -> bool:
    """Whether a :class:`SQLiteCatalog` of this process has the file at ``path`` open."""
    key = _file_key(path)
    with _HELD_LOCK:
        return key is not None and _HELD.get(key, 0) > 0


def _check_header(path: Path, header: bytes) -> None:
    """Refuse an empty file, a non-SQLite file and a foreign SQLite database by its header."""
    if not header:
        raise VaultFormatError(f"{path} is a 0-byte file, not an ECHO catalog; nothing was changed")
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise VaultFormatError(
            f"{path} is not an SQLite database (it starts with {header[:16]!r}), so not an "
            "ECHO catalog; nothing was changed"
        )
    app_id = int.from_bytes(header[68:72], "big")
    if app_id not in (0, APPLICATION_ID):
        raise VaultFormatError(
            f"{path} is a foreign SQLite database (application_id {app_id:#010x}, an ECHO "
            f"catalog has {APPLICATION_ID:#010x}); nothing was changed"
        )


def check_format(path: Path) -> tuple[int, str]:
    """Say which ECHO catalog format ``path`` holds, refusing anything else.

    Reads the SQLite file header (https://www.sqlite.org/fileformat.html §1.3:
    the magic string, ``application_id`` at offset 68, ``user_version`` at 60)
    and then, read-only, the ``meta`` rows. Nothing is written.

    Args:
        path: ``catalog.sqlite``.

    Returns:
        ``(format, origin)``: the format version (one of :data:`KNOWN_FORMATS`)
        and the origin recorded in the catalog.

    Raises:
        VaultNotFoundError: the file does not exist.
        VaultFormatError: the file is empty, not an SQLite database, a foreign
            SQLite database, or an ECHO catalog of an unknown (e.g. newer)
            format; the message names the file and what it found.
        StorageError: the file cannot be read.

    """
    try:
        if _held_in_process(path):
            # SQLite holds this file open in this process: closing a descriptor of our
            # own would drop every POSIX lock the process holds on it (fcntl(2): locks
            # are per process and file, released at any close), and with them what
            # the live connections' WAL reads rely on. It was checked when first
            # opened; the PRAGMA checks below check it again through SQLite.
            header = None
        else:
            with open(path, "rb") as fh:
                header = fh.read(100)
    except FileNotFoundError:
        raise VaultNotFoundError(f"no catalog at {path}") from None
    except OSError as exc:
        raise StorageError(f"cannot read catalog {path}: {exc}") from exc
    if header is not None:
        _check_header(path, header)
    # With no write-ahead log the main file is the whole database: read it as immutable,
    # so SQLite creates no -shm/-wal beside a file that may not be ours.
    try:
        quiet = Path(f"{path}-wal").stat().st_size == 0
    except FileNotFoundError:
        quiet = True
    except OSError as exc:
        raise StorageError(f"cannot read catalog {path}: {exc}") from exc
    uri = f"{path.resolve().as_uri()}?mode=ro&immutable=1" if quiet else readonly_uri(path)
    try:
        conn = sqlite3.connect(uri, uri=True)
        try:
            conn.execute("PRAGMA query_only = ON")
            app_id, version = (
                conn.execute("PRAGMA application_id").fetchone()[0],
                conn.execute("PRAGMA user_version").fetchone()[0],
            )
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            meta: dict[str, str] = {}
            if "meta" in tables:
                meta = {str(k): str(v) for k, v in conn.execute("SELECT key, value FROM meta")}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise VaultFormatError(
            f"{path} cannot be read as an SQLite database ({exc}); nothing was changed"
        ) from exc
    if app_id == 0:  # written before the header recorded the format: format 1 if it looks so
        missing = sorted(_CORE_TABLES - tables)
        if missing or meta.get("schema_version") != "1" or "origin" not in meta:
            found = ", ".join(sorted(t for t in tables if not t.startswith("sqlite_"))) or "none"
            raise VaultFormatError(
                f"{path} is an SQLite database but not an ECHO catalog (no application_id; "
                f"tables: {found}); nothing was changed"
            )
        return 1, meta["origin"]
    if app_id != APPLICATION_ID:
        raise VaultFormatError(f"{path}: application_id changed to {app_id:#010x} while reading")
    if version not in KNOWN_FORMATS:
        newer = version > max(KNOWN_FORMATS)
        raise VaultFormatError(
            f"{path} is an ECHO catalog of format {version}, "
            + (
                f"newer than this echo-archive knows (up to {max(KNOWN_FORMATS)}): upgrade "
                "echo-archive to open it"
                if newer
                else f"which this echo-archive cannot open (it knows {sorted(KNOWN_FORMATS)})"
            )
            + "; nothing was changed"
        )
    if "origin" not in meta or _CORE_TABLES - tables:
        raise VaultFormatError(
            f"{path} says it is an ECHO catalog of format {version} but lacks "
            f"{', '.join(sorted(_CORE_TABLES - tables)) or 'its origin row'}; nothing was changed"
        )
    return int(version), meta["origin"]


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


@runtime_checkable
class Catalog(Protocol):
    """What the vault and the derived indexes need from a SQL catalog.

    Statements are SQL in the dialect SQLite and PostgreSQL share: ``?``
    parameter marks (an implementation rewrites them if its driver wants
    others), ``INSERT ... ON CONFLICT`` upserts, ``RETURNING``, column types
    ``INTEGER`` (64-bit), ``REAL``, ``TEXT``, ``BLOB``. Table definitions
    (:meth:`create_tables`) are the one dialect-specific part; each
    implementation maps them.

    Writes happen only inside :meth:`transaction`, which commits every
    statement in it or none. Reads outside a transaction each see the latest
    committed state; inside :meth:`snapshot` they all see one state.
    """

    @property
    def where(self) -> str:
        """Where the catalog lives, for messages (a path, a database name)."""
        ...

    @property
    def readonly(self) -> bool:
        """True when opened for reading only (every write raises :class:`StorageError`)."""
        ...

    @property
    def in_transaction(self) -> bool:
        """True inside :meth:`transaction` or :meth:`snapshot`."""
        ...

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return the number of rows it changed (0 for DDL).

        Raises:
            StorageError: the statement failed (names the catalog and the error).
        """
        ...

    def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        """Run one statement once per parameter row.

        Raises:
            StorageError: a row failed (the enclosing transaction rolls back).
        """
        ...

    def query(self, sql: str, params: Params = ()) -> Iterator[Row]:
        """Run a query and yield its rows, streaming (not all held in memory).

        Raises:
            StorageError: the query failed.
        """
        ...

    def query_one(self, sql: str, params: Params = ()) -> Row | None:
        """Run a query (or a statement with ``RETURNING``); return its first row or None.

        Raises:
            StorageError: the query failed.
        """
        ...

    def transaction(self, what: str) -> contextlib.AbstractContextManager[None]:
        """A write transaction: commits on leaving, rolls back on any exception.

        Args:
            what: what the transaction does, for error messages.

        Raises:
            StorageError: the transaction cannot begin (another writer holds
                the catalog past the busy timeout, a read-only catalog) or a
                statement inside failed; nothing of it is visible.
        """
        ...

    def snapshot(self) -> contextlib.AbstractContextManager[None]:
        """A read snapshot: every query inside sees one committed state.

        Raises:
            StorageError: the snapshot cannot begin.
        """
        ...

    def tables(self) -> set[str]:
        """The names of the tables the catalog holds."""
        ...

    def create_tables(self, ddl: str) -> list[str]:
        """Create the tables (and indexes) of ``ddl`` that do not exist yet.

        Args:
            ddl: ``CREATE TABLE IF NOT EXISTS`` / ``CREATE INDEX IF NOT EXISTS``
                statements separated by ``;`` (SQLite dialect; another backend
                maps types and table options).

        Returns:
            The names of the tables that were created (empty when all existed).

        Raises:
            StorageError: the catalog cannot be written; nothing was created.
        """
        ...

    def close(self) -> None:
        """Close the catalog; safe to call twice."""
        ...


class SQLiteCatalog:
    """The embedded :class:`Catalog`: one SQLite database file (WAL, ``synchronous=FULL``).

    Use :meth:`open` for a vault's ``catalog.sqlite`` and :meth:`memory` for a
    scratch catalog (a rebuild compared with the stored rows). One instance
    wraps one connection; it is used by one thread at a time (the vault's
    writer, or one reader).

    Args:
        conn: a connection in autocommit mode (``isolation_level=None``).
        where: the database's path or name, for messages.
        readonly: whether ``conn`` was opened read-only.
    """

    def __init__(self, conn: sqlite3.Connection, where: str, *, readonly: bool) -> None:
        self._conn = conn
        self._where = where
        self._readonly = readonly
        self._depth = 0  # 1 inside a transaction or snapshot
        self._held: tuple[int, int] | None = None

    @classmethod
    def open(cls, path: Path, *, readonly: bool) -> SQLiteCatalog:
        """Open the catalog file at ``path`` (see :func:`connect`).

        Raises:
            VaultNotFoundError: the file does not exist.
            StorageError: SQLite cannot open it.
        """
        catalog = cls(connect(path, readonly=readonly), str(path), readonly=readonly)
        key = _file_key(path)
        if key is not None:  # check_format must not open and close a file of its own on it
            with _HELD_LOCK:
                _HELD[key] = _HELD.get(key, 0) + 1
            catalog._held = key
        return catalog

    @classmethod
    def memory(cls, name: str = "scratch catalog") -> SQLiteCatalog:
        """Open a new, empty in-memory catalog (gone when closed)."""
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        return cls(conn, name, readonly=False)

    @property
    def where(self) -> str:
        """The database file (or the scratch catalog's name)."""
        return self._where

    @property
    def readonly(self) -> bool:
        """True when opened read-only."""
        return self._readonly

    @property
    def in_transaction(self) -> bool:
        """True inside :meth:`transaction` or :meth:`snapshot`."""
        return self._depth > 0

    @property
    def connection(self) -> sqlite3.Connection:
        """The SQLite connection, for the vault's own log storage (:mod:`.log`) only."""
        return self._conn

    def _fail(self, what: str, exc: BaseException) -> StorageError:
        return StorageError(f"catalog {self._where}: {what}: {exc}")

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return the rows it changed (see :meth:`Catalog.execute`)."""
        try:
            return self._conn.execute(sql, params).rowcount
        except sqlite3.Error as exc:
            raise self._fail(f"statement failed ({_head(sql)})", exc) from exc

    def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        """Run one statement per parameter row (see :meth:`Catalog.executemany`)."""
        try:
            self._conn.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise self._fail(f"statement failed ({_head(sql)})", exc) from exc

    def query(self, sql: str, params: Params = ()) -> Iterator[Row]:
        """Yield the rows of a query, streaming (see :meth:`Catalog.query`)."""
        try:
            cur = self._conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise self._fail(f"query failed ({_head(sql)})", exc) from exc
        return _rows(cur, self, sql)

    def query_one(self, sql: str, params: Params = ()) -> Row | None:
        """Return the first row of a query, or None (see :meth:`Catalog.query_one`)."""
        try:
            cur = self._conn.execute(sql, params)
            try:
                row = cur.fetchone()
                if row is not None and sql.lstrip()[:6].upper() != "SELECT":
                    cur.fetchall()  # a RETURNING statement completes only when drained
            finally:
                # A SELECT stepped once but not to its end holds its read snapshot
                # until reset: close now, or this connection goes on seeing the past.
                cur.close()
            return None if row is None else tuple(row)
        except sqlite3.Error as exc:
            raise self._fail(f"query failed ({_head(sql)})", exc) from exc

    @contextmanager
    def transaction(self, what: str) -> Iterator[None]:
        """A write transaction: ``BEGIN IMMEDIATE`` ... ``COMMIT`` (as in :class:`Catalog`)."""
        if self._depth:
            raise VaultError(f"catalog {self._where}: {what} inside another transaction")
        if self._readonly:
            raise StorageError(f"catalog {self._where} is open read-only: cannot {what}")
        self._depth = 1
        try:
            with transaction(self._conn, what):
                yield
        except StorageError as exc:
            if what in str(exc):
                raise
            raise StorageError(f"{what} failed and was rolled back: {exc}") from exc
        finally:
            self._depth = 0

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read snapshot (a deferred transaction rolled back at the end)."""
        if self._depth:
            raise VaultError(f"catalog {self._where}: a snapshot inside a transaction")
        try:
            self._conn.execute("BEGIN")
            # A deferred transaction takes its snapshot at the first read.
            self._conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        except sqlite3.Error as exc:
            raise self._fail("cannot begin a read snapshot", exc) from exc
        self._depth = 1
        try:
            yield
        finally:
            self._depth = 0
            with suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")

    def tables(self) -> set[str]:
        """The names of the tables in the database."""
        rows = self.query("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {str(r[0]) for r in rows}

    def create_tables(self, ddl: str) -> list[str]:
        """Create the missing tables and indexes of ``ddl`` in one transaction."""
        before = self.tables()
        statements = [s.strip() for s in ddl.split(";") if s.strip()]
        with self.transaction("creating tables"):
            for statement in statements:
                self.execute(statement)
        return sorted(self.tables() - before)

    def close(self) -> None:
        """Close the connection (safe to call twice)."""
        self._conn.close()
        key, self._held = self._held, None
        if key is not None:
            with _HELD_LOCK:
                left = _HELD.get(key, 0) - 1
                if left > 0:
                    _HELD[key] = left
                else:
                    _HELD.pop(key, None)


def _head(sql: str) -> str:
    """The first words of a statement, for an error message."""
    text = " ".join(sql.split())
    return text if len(text) <= 60 else text[:57] + "..."


def _rows(cur: sqlite3.Cursor, catalog: SQLiteCatalog, sql: str) -> Iterator[Row]:
    try:
        yield from cur
    except sqlite3.Error as exc:
        raise catalog._fail(f"query failed while reading rows ({_head(sql)})", exc) from exc
