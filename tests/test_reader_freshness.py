"""A read-only Vault sees every commit other processes make, with a writer open beside it.

A regression test (found 2026-12-08): ``check_format`` read the catalog's
header with a plain ``open()``/``close()``, and a close of any descriptor
of a file drops every POSIX lock the process holds on it (fcntl(2)), among
them those of the process's live SQLite connections. A read-only Vault
opened beside the vault's writer then saw one more commit of another
process and no more (in ``echoctl serve``: a key revoked by ``echoctl keys
revoke`` stayed valid). ``check_format`` no longer opens a file its own
process holds through SQLite.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from echo_archive.vault.vault import Vault
from echo_archive.vault.writer import VaultWriter
from tests.conftest import run_echoctl


def _count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM api_keys").fetchone()[0])


def test_a_reader_beside_a_writer_sees_every_commit_of_other_processes(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    assert run_echoctl("init", str(vault)).returncode == 0
    for name in ("k0",):
        done = run_echoctl("--vault", str(vault), "keys", "create", name, "--role", "viewer")
        assert done.returncode == 0, done.stderr
    with VaultWriter.open(vault), Vault.open(vault, readonly=True) as reader:
        seen = []
        for name in ("k1", "k2", "k3"):
            done = run_echoctl("--vault", str(vault), "keys", "create", name, "--role", "viewer")
            assert done.returncode == 0, done.stderr
            row = reader.catalog.query_one("SELECT count(*) FROM api_keys")
            assert row is not None
            seen.append(int(row[0]))
        with sqlite3.connect(f"file:{vault / 'catalog.sqlite'}?mode=ro", uri=True) as fresh:
            assert _count(fresh) == 4
        assert seen == [2, 3, 4]
