"""The catalog conformance suite (``tests/catalog_suite.py``) against :class:`SQLiteCatalog`."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from echo_archive.errors import StorageError
from echo_archive.vault.catalog import Catalog, SQLiteCatalog

# The suite is a sibling module: imported relatively when tests/ is a package (has an
# __init__.py), by name when pytest puts tests/ itself on sys.path (rootdir-less runs).
try:
    from catalog_suite import CatalogSuite
except ImportError:  # pragma: no cover - depends on how pytest was started
    from .catalog_suite import CatalogSuite


class _SQLiteFactory:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.made: list[Catalog] = []

    def open(self, *, readonly: bool = False) -> Catalog:
        if not self.path.exists():
            sqlite3.connect(self.path).close()  # an empty database file, as create_schema makes
        catalog = SQLiteCatalog.open(self.path, readonly=readonly)
        self.made.append(catalog)
        return catalog


class TestSQLiteCatalog(CatalogSuite):
    @pytest.fixture
    def catalog_factory(self, tmp_path: Path) -> Iterator[_SQLiteFactory]:
        factory = _SQLiteFactory(tmp_path / "catalog.sqlite")
        yield factory
        for catalog in factory.made:
            catalog.close()


def test_sqlite_catalog_is_a_catalog(tmp_path: Path) -> None:
    assert isinstance(SQLiteCatalog.memory(), Catalog)


def test_sqlite_catalog_of_a_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="no catalog at"):
        SQLiteCatalog.open(tmp_path / "absent.sqlite", readonly=True)


def test_sqlite_error_message_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    sqlite3.connect(path).close()
    catalog = SQLiteCatalog.open(path, readonly=False)
    try:
        with pytest.raises(StorageError, match=str(path)):
            catalog.execute("INSERT INTO nowhere VALUES (1)")
    finally:
        catalog.close()
