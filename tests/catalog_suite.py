"""Conformance suite for :class:`echo_archive.vault.catalog.Catalog` backends.

Every catalog backend must pass :class:`CatalogSuite`. A test module
subclasses it as ``class TestMyCatalog(CatalogSuite)`` and provides a
``catalog_factory`` fixture returning a :class:`CatalogFactory` for one fresh,
empty database per test (a temporary file, a PostgreSQL schema...).

What the suite holds a backend to is what the vault and the derived indexes
rely on: ``?`` parameters; 64-bit integers, reals, text (any Unicode), bytes
(any, NUL included) and NULL read back exactly; a write transaction commits
all or nothing and names what failed; a second writer transaction cannot
start inside the first; a read-only catalog refuses writes; a read snapshot
does not see a commit made after it began; upserts (``ON CONFLICT``) and
``RETURNING``; streaming queries; what was committed survives closing and
reopening.

Backend-specific behaviour (pragmas, file modes, WAL) is tested beside each
backend, not here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from echo_archive.errors import EchoError, StorageError
from echo_archive.vault.catalog import Catalog

DDL = """
CREATE TABLE IF NOT EXISTS t(
    k INTEGER PRIMARY KEY,
    txt TEXT,
    bin BLOB,
    num REAL
);
CREATE TABLE IF NOT EXISTS kv(
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS t_txt ON t(txt)
"""


class CatalogFactory(Protocol):
    """Makes the catalogs of one backend over one (per-test) database.

    The fixture providing it closes, at teardown, every catalog it made that
    a test left open.
    """

    def open(self, *, readonly: bool = False) -> Catalog:
        """Open (a new connection to) this test's database; created empty on first use."""
        ...


class CatalogSuite:
    """The conformance tests; subclass with a ``catalog_factory`` fixture."""

    @pytest.fixture
    def cat(self, catalog_factory: CatalogFactory) -> Iterator[Catalog]:
        c = catalog_factory.open()
        c.create_tables(DDL)
        yield c
        c.close()

    # ------------------------------------------------------------ tables
    def test_create_tables_reports_what_it_created_and_is_idempotent(
        self, catalog_factory: CatalogFactory
    ) -> None:
        c = catalog_factory.open()
        assert {"t", "kv"}.isdisjoint(c.tables())
        assert c.create_tables(DDL) == ["kv", "t"]
        assert {"t", "kv"} <= c.tables()
        assert c.create_tables(DDL) == []

    # ------------------------------------------------------------ values
    @settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        k=st.integers(min_value=-(2**63), max_value=2**63 - 1),
        txt=st.one_of(st.none(), st.text()),
        bin=st.one_of(st.none(), st.binary(max_size=300)),
        num=st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
    )
    def test_values_read_back_exactly(
        self, cat: Catalog, k: int, txt: str | None, bin: bytes | None, num: float | None
    ) -> None:
        with cat.transaction("writing a row"):
            cat.execute("DELETE FROM t")
            cat.execute("INSERT INTO t(k, txt, bin, num) VALUES (?, ?, ?, ?)", (k, txt, bin, num))
        row = cat.query_one("SELECT k, txt, bin, num FROM t WHERE k = ?", (k,))
        assert row is not None
        assert row[0] == k
        assert row[1] == txt
        assert (None if row[2] is None else bytes(row[2])) == bin
        assert row[3] == num

    def test_query_one_of_nothing_is_none(self, cat: Catalog) -> None:
        assert cat.query_one("SELECT k FROM t WHERE k = ?", (1,)) is None

    def test_query_streams_rows_in_order(self, cat: Catalog) -> None:
        with cat.transaction("writing rows"):
            cat.executemany(
                "INSERT INTO t(k, txt) VALUES (?, ?)", ((i, str(i)) for i in range(5000))
            )
        it = cat.query("SELECT k, txt FROM t ORDER BY k")
        assert next(it) == (0, "0")
        rest = list(it)
        assert len(rest) == 4999
        assert rest[-1] == (4999, "4999")

    def test_execute_returns_rows_changed(self, cat: Catalog) -> None:
        with cat.transaction("writing rows"):
            cat.executemany("INSERT INTO t(k) VALUES (?)", [(1,), (2,), (3,)])
            assert cat.execute("UPDATE t SET txt = 'x' WHERE k >= ?", (2,)) == 2
            assert cat.execute("DELETE FROM t WHERE k = ?", (9,)) == 0

    def test_upsert_and_returning(self, cat: Catalog) -> None:
        upsert = (
            "INSERT INTO kv(name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = excluded.value"
        )
        with cat.transaction("upserting"):
            cat.execute(upsert, ("a", 1))
            cat.execute(upsert, ("a", 2))
            got = cat.query_one("INSERT INTO t(txt) VALUES (?) RETURNING k", ("new",))
        assert cat.query_one("SELECT value FROM kv WHERE name = 'a'") == (2,)
        assert got is not None
        assert cat.query_one("SELECT txt FROM t WHERE k = ?", (got[0],)) == ("new",)

    # ------------------------------------------------------------ transactions
    def test_transaction_commits_everything(self, catalog_factory: CatalogFactory) -> None:
        writer = catalog_factory.open()
        writer.create_tables(DDL)
        reader = catalog_factory.open(readonly=True)
        with writer.transaction("writing"):
            assert writer.in_transaction
            writer.executemany("INSERT INTO t(k) VALUES (?)", [(1,), (2,)])
        assert not writer.in_transaction
        assert reader.query_one("SELECT count(*) FROM t") == (2,)

    def test_failed_statement_rolls_back_all_and_names_what(self, cat: Catalog) -> None:
        with cat.transaction("writing the first row"):
            cat.execute("INSERT INTO t(k) VALUES (1)")

        def add_rows() -> None:
            with cat.transaction("adding rows"):
                cat.execute("INSERT INTO t(k) VALUES (2)")
                cat.execute("INSERT INTO t(k) VALUES (1)")  # primary key taken

        with pytest.raises(StorageError, match="adding rows"):
            add_rows()
        assert not cat.in_transaction
        assert list(cat.query("SELECT k FROM t ORDER BY k")) == [(1,)]

    def test_any_exception_rolls_back_and_passes_through(self, cat: Catalog) -> None:

        def fail_midway() -> None:
            with cat.transaction("writing"):
                cat.execute("INSERT INTO t(k) VALUES (1)")
                raise KeyError("caller's own error")

        with pytest.raises(KeyError):
            fail_midway()
        assert cat.query_one("SELECT count(*) FROM t") == (0,)
        with cat.transaction("writing again"):  # the catalog is usable after a rollback
            cat.execute("INSERT INTO t(k) VALUES (1)")
        assert cat.query_one("SELECT count(*) FROM t") == (1,)

    def test_no_transaction_inside_a_transaction(self, cat: Catalog) -> None:
        with cat.transaction("outer"):
            cat.execute("INSERT INTO t(k) VALUES (1)")
            with pytest.raises(EchoError), cat.transaction("inner"):
                pass  # pragma: no cover - never entered
        assert cat.query_one("SELECT count(*) FROM t") == (1,)

    def test_sql_error_outside_a_transaction_is_a_storage_error(self, cat: Catalog) -> None:
        with pytest.raises(StorageError, match="no_such_table"):
            cat.query_one("SELECT * FROM no_such_table")
        with pytest.raises(StorageError):
            list(cat.query("SELECT * FROM no_such_table"))

    def test_readonly_refuses_writes(self, catalog_factory: CatalogFactory) -> None:
        catalog_factory.open().create_tables(DDL)
        reader = catalog_factory.open(readonly=True)
        assert reader.readonly
        with pytest.raises(StorageError), reader.transaction("writing"):
            reader.execute("INSERT INTO t(k) VALUES (1)")  # pragma: no cover
        with pytest.raises(StorageError):
            reader.execute("INSERT INTO t(k) VALUES (1)")
        assert reader.query_one("SELECT count(*) FROM t") == (0,)

    # ------------------------------------------------------------ snapshots
    def test_snapshot_does_not_see_a_later_commit(self, catalog_factory: CatalogFactory) -> None:
        writer = catalog_factory.open()
        writer.create_tables(DDL)
        with writer.transaction("first row"):
            writer.execute("INSERT INTO t(k) VALUES (1)")
        reader = catalog_factory.open(readonly=True)
        with reader.snapshot():
            assert reader.in_transaction
            assert reader.query_one("SELECT count(*) FROM t") == (1,)
            with writer.transaction("second row"):  # a reader never blocks the writer
                writer.execute("INSERT INTO t(k) VALUES (2)")
            assert reader.query_one("SELECT count(*) FROM t") == (1,)
        assert reader.query_one("SELECT count(*) FROM t") == (2,)

    # ------------------------------------------------------------ durability
    def test_committed_rows_survive_reopening(self, catalog_factory: CatalogFactory) -> None:
        c = catalog_factory.open()
        c.create_tables(DDL)
        with c.transaction("writing"):
            c.execute("INSERT INTO t(k, bin) VALUES (?, ?)", (7, b"\x00\xff"))
        c.close()
        c.close()  # closing twice is harmless
        again = catalog_factory.open(readonly=True)
        assert again.query_one("SELECT bin FROM t WHERE k = 7") == (b"\x00\xff",)
