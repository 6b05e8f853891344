"""The on-disk format version: recorded by init, checked on every open.

A catalog that is not an ECHO catalog of a known format (0 bytes, not SQLite,
a foreign SQLite database, a newer format, another log's) is refused by every
command, naming the file and what was found, and nothing in the vault changes.
A catalog written before the format was recorded in its header is format 1
and still opens and verifies.
"""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from echo_archive.errors import VaultFormatError
from echo_archive.vault import catalog
from echo_archive.vault.vault import Vault
from echo_archive.vault.verify import verify_vault

from .conftest import run_echoctl, sample_records


def _snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under ``root``: (size, mtime, first bytes): to prove nothing changed."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            st = p.stat()
            out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns, p.read_bytes()[:4096])
    return out


def _echoctl(*args: str) -> subprocess.CompletedProcess[str]:
    return run_echoctl(*args)


def _foreign_sqlite(path: Path, app_id: int = 0) -> None:
    path.unlink()  # replace the catalog by another program's database
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT)")
    con.execute("INSERT INTO notes(body) VALUES ('someone else''s data')")
    if app_id:
        con.execute(f"PRAGMA application_id = {app_id}")
    con.commit()
    con.close()


def test_init_records_the_format(vault_path: Path) -> None:
    con = sqlite3.connect(vault_path / "catalog.sqlite")
    assert con.execute("PRAGMA application_id").fetchone()[0] == catalog.APPLICATION_ID
    assert con.execute("PRAGMA user_version").fetchone()[0] == catalog.FORMAT_VERSION
    meta = dict(con.execute("SELECT key, value FROM meta"))
    con.close()
    assert meta["schema_version"] == str(catalog.FORMAT_VERSION)
    header = (vault_path / "catalog.sqlite").read_bytes()[:100]
    assert header[68:72] == b"ECHC"
    assert catalog.check_format(vault_path / "catalog.sqlite") == (
        catalog.FORMAT_VERSION,
        "echo.archive/test0000deadbeef",
    )


def _zero_bytes(p: Path) -> None:
    p.write_bytes(b"")


def _text(p: Path) -> None:
    p.write_bytes(b"these are my notes, not a database\n" * 10)


def _foreign(p: Path) -> None:
    _foreign_sqlite(p)


def _foreign_app(p: Path) -> None:
    _foreign_sqlite(p, app_id=0x47504B47)  # a GeoPackage's application_id


def _newer(p: Path) -> None:
    con = sqlite3.connect(p)
    con.execute(f"PRAGMA user_version = {catalog.FORMAT_VERSION + 7}")
    con.close()


def _other_log(p: Path) -> None:
    Vault.create(p.parent.parent / "other", origin="echo.archive/0ther0000000000").close()
    p.unlink()
    (p.parent.parent / "other" / "catalog.sqlite").rename(p)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("damage", "found"),
    [
        (_zero_bytes, "is a 0-byte file, not an ECHO catalog"),
        (_text, "is not an SQLite database"),
        (
            _foreign,
            r"an SQLite database but not an ECHO catalog \(no application_id; tables: notes\)",
        ),
        (_foreign_app, r"foreign SQLite database \(application_id 0x47504b47"),
        (_newer, "of format 8, newer than this echo-archive knows"),
        (_other_log, "is the catalog of log 'echo.archive/0ther0000000000'"),
    ],
)
def test_unknown_catalogs_are_refused_and_nothing_changes(
    vault_path: Path, damage: object, found: str
) -> None:
    cat = vault_path / "catalog.sqlite"
    for suffix in ("-wal", "-shm"):
        Path(f"{cat}{suffix}").unlink(missing_ok=True)
    damage(cat)  # type: ignore[operator]
    before = _snapshot(vault_path)
    for readonly in (True, False):
        with pytest.raises(VaultFormatError, match=found) as info:
            Vault.open(vault_path, readonly=readonly)
        assert str(cat) in str(info.value)
        assert "nothing was changed" in str(info.value)
    assert _snapshot(vault_path) == before
    # every command, in a real process: a one-line error naming the file, no traceback
    commands = [["add", str(vault_path / "echo.toml")]]
    if damage is _zero_bytes:
        commands += [["verify"], ["checkpoint"], ["items"], ["log", "inclusion", "0"]]
    for args in commands:
        r = _echoctl("--vault", str(vault_path), *args)
        assert r.returncode != 0, (args, r.stdout)
        assert "Traceback" not in r.stderr, r.stderr
        assert str(cat) in r.stderr, (args, r.stderr)
    assert _snapshot(vault_path) == before


def _as_written_by_format1_code(vault_path: Path) -> None:
    """Make the catalog exactly what ECHO wrote before the format was recorded.

    The only difference between a format-1 catalog written then and now is the
    SQLite header (``application_id`` and ``user_version`` were left at 0): same
    tables, same ``meta`` rows (``schema_version = 1``, ``origin``), same rows.
    """
    con = sqlite3.connect(vault_path / "catalog.sqlite", isolation_level=None)
    con.execute("PRAGMA application_id = 0")
    con.execute("PRAGMA user_version = 0")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    header = (vault_path / "catalog.sqlite").read_bytes()[:100]
    assert header[60:64] == header[68:72] == b"\0\0\0\0"


def test_a_catalog_without_a_recorded_format_is_format_1(vault_path: Path) -> None:
    with Vault.open(vault_path) as v:
        v.commit(sample_records(30))
    _as_written_by_format1_code(vault_path)
    assert catalog.check_format(vault_path / "catalog.sqlite")[0] == 1
    with Vault.open(vault_path, readonly=True) as r:
        report = verify_vault(r)
        assert report.ok, report.problems
        assert report.entries == 30
    with Vault.open(vault_path) as w:
        w.commit(sample_records(5, start=30))
    with Vault.open(vault_path, readonly=True) as r:
        assert verify_vault(r).ok
        assert r.size == 35
    r2 = _echoctl("--vault", str(vault_path), "verify")
    assert r2.returncode == 0, r2.stderr


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every leaf command of the CLI, as its words (``("log", "inclusion")``)."""
    found: list[tuple[str, ...]] = []
    for name, sub in sorted(getattr(group, "commands", {}).items()):
        if hasattr(sub, "commands"):
            found += _commands(sub, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


# The arguments each command gets; a command missing here fails the test below, so a
# new command cannot skip the check. None: the command never opens the catalog
# (it reads echo.toml, a bundle file, or creates a new vault elsewhere).
_ARGS: dict[tuple[str, ...], list[str] | None] = {
    ("add",): ["{toml}"],
    ("alerts", "list"): [],
    ("alerts", "rules"): None,
    ("audit",): [],
    ("breakglass",): ["--for", "user:alice", "--reason", "incident 42 database down"],
    ("breakers",): [],
    ("captures",): [],
    ("cat",): ["0", "--out", "{out}"],
    ("corrections", "add"): ["1", "--kind", "annotation", "--reason", "a check"],
    ("corrections", "list"): [],
    ("checkpoint",): [],
    ("feeds", "add"): None,
    ("feeds", "disable"): None,
    ("feeds", "enable"): None,
    ("feeds", "list"): None,
    ("feeds", "remove"): None,
    ("harvest",): ["--replay", "{toml}", "--all"],
    ("health",): [],
    ("repair",): ["--dry-run"],
    # serve runs until stopped: its opening of the writer is the one `add` uses
    ("serve",): None,
    ("status",): [],
    ("import",): ["{toml}"],
    ("interventions", "approve"): ["some-id"],
    ("interventions", "list"): [],
    ("interventions", "reject"): ["some-id", "--reason", "x"],
    ("interventions", "rollback"): ["some-id", "--reason", "x"],
    ("interventions", "show"): ["some-id"],
    ("init",): None,
    ("items",): [],
    ("keys", "create"): ["ci", "--role", "viewer"],
    ("keys", "list"): [],
    ("keys", "revoke"): ["ci"],
    ("log", "consistency"): ["1"],
    ("log", "inclusion"): ["0"],
    ("prove",): ["0", "--out", "{out}"],
    ("rebuild",): [],
    ("reports",): [],
    ("search",): ["word"],
    ("show",): ["0"],
    ("silence", "add"): ["feed=a", "--comment", "x"],
    ("silence", "expire"): ["some-id"],
    ("silence", "list"): [],
    ("users", "add"): ["alice", "--role", "viewer"],
    ("users", "list"): [],
    ("users", "passwd"): ["alice"],
    ("users", "remove"): ["alice"],
    ("verify",): [],
    ("verify-proof",): None,
}


@pytest.mark.slow
@pytest.mark.parametrize("damage", [_zero_bytes, _foreign])
def test_every_command_that_opens_the_catalog_refuses_an_unknown_one(
    vault_path: Path, tmp_path: Path, damage: object
) -> None:
    import typer

    from echo_archive.cli import app

    commands = _commands(typer.main.get_command(app))
    assert set(commands) == set(_ARGS), "a command is missing from _ARGS (or gone)"
    cat = vault_path / "catalog.sqlite"
    for suffix in ("-wal", "-shm"):
        Path(f"{cat}{suffix}").unlink(missing_ok=True)
    damage(cat)  # type: ignore[operator]
    before = _snapshot(vault_path)
    fill = {"{toml}": str(vault_path / "echo.toml"), "{out}": str(tmp_path / "out.bin")}
    for words in commands:
        args = _ARGS[words]
        if args is None:
            continue
        r = _echoctl("--vault", str(vault_path), *words, *[fill.get(a, a) for a in args])
        assert r.returncode != 0, (words, r.stdout)
        assert "Traceback" not in r.stderr, (words, r.stderr)
        assert str(cat) in r.stderr, (words, r.stderr)
        assert "not an ECHO catalog" in r.stderr, (words, r.stderr)
    assert _snapshot(vault_path) == before
    assert not (tmp_path / "out.bin").exists()
