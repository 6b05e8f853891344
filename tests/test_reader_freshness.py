"""A read-only Vault sees what other processes commit (a known bug recorded, strict xfail).

Found 2026-12-08 while wiring the API into the service: with the vault's
writer (``VaultWriter``) open in the same process, a read-only ``Vault``
opened after it sees the first commit another process makes, and then no
more: a fresh connection sees them. In the service this means, for
example, that a key revoked by ``echoctl keys revoke`` can stay valid until
the service restarts. Not yet understood: plain ``sqlite3`` connections with
the same URIs do not show it. When it is fixed, this test passes and the
strict xfail turns it red: remove the mark then.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from echo_archive.vault.vault import Vault
from echo_archive.vault.writer import VaultWriter
from tests.conftest import run_echoctl


def _count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM api_keys").fetchone()[0])


@pytest.mark.xfail(strict=True, reason="known bug, see the module docstring")
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
