"""Pinned verification: published checkpoints and remembered ones bind a vault to its past.

``verify --vkey KEY --checkpoint FILE...`` fails unless the vault holds each
pinned checkpoint (same size and root, signed by the pinned key) and every
later checkpoint is consistent with it (RFC 9162 §2.1.4); the newest
checkpoint verified per origin is remembered outside the vault and a vault
that later shows an older or a different state fails (rollback and fork
detection, RFC 9162 §8.3). Real vaults, real SQLite, the real CLI.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from echo_archive.services.verification import remembered_path, verify
from echo_archive.vault.signing import load_key_signer
from echo_archive.vault.vault import VKEY_FILE, Vault

from .conftest import run_echoctl, sample_records

ORIGIN = "echo.archive/test0000deadbeef"


def _grow(vault: Path, n: int, start: int) -> str:
    """Commit ``n`` records; return the checkpoint note then current (published)."""
    with Vault.open(vault) as v:
        v.commit(sample_records(n, start=start))
        return v.latest_checkpoint().note


def _verify(vault: Path, *args: str, state: Path) -> tuple[int, dict[str, object]]:
    r = run_echoctl("--vault", str(vault), "verify", "--json", "--verified-dir", str(state), *args)
    return r.returncode, json.loads(r.stdout)


def _pin_messages(report: dict[str, object]) -> list[str]:
    return [p["message"] for p in report["problems"] if p["kind"] == "pin"]  # type: ignore[attr-defined,index]


def _fork(vault: Path, path: Path) -> Path:
    """Another vault of the same origin signed by the same key (an operator's second tree)."""
    key = vault / "keys" / "signing.key"
    with Vault.open(vault, readonly=True) as v:
        signer = load_key_signer(key, v.verifier)
    Vault.create(path, signer=signer).close()
    copy = path / "keys" / "signing.key"
    copy.write_bytes(key.read_bytes())
    copy.chmod(0o600)
    return path


def _drop_newest_checkpoint(vault: Path) -> int:
    con = sqlite3.connect(vault / "catalog.sqlite")
    size = con.execute("SELECT max(size) FROM checkpoints").fetchone()[0]
    con.execute("DELETE FROM checkpoints WHERE size = ?", (size,))
    con.commit()
    con.close()
    return int(size)


@pytest.mark.slow
def test_a_pinned_checkpoint_the_vault_dropped_fails(vault_path: Path, tmp_path: Path) -> None:
    _grow(vault_path, 3, 0)
    published = tmp_path / "published.txt"
    published.write_text(_grow(vault_path, 2, 3))
    vkey = (vault_path / VKEY_FILE).read_text().strip()
    state = tmp_path / "state"
    rc, report = _verify(vault_path, "--vkey", vkey, "--checkpoint", str(published), state=state)
    assert rc == 0, report["problems"]
    _drop_newest_checkpoint(vault_path)  # the attack: it used to pass as an unsealed tail
    rc, report = _verify(
        vault_path, "--vkey", vkey, "--checkpoint", str(published), "--no-remember", state=state
    )
    assert rc == 1
    (msg,) = _pin_messages(report)
    assert "newest checkpoint is of size 3" in msg
    assert f"origin {ORIGIN}, size 5, root " in msg
    assert str(published) in msg


@pytest.mark.slow
def test_a_later_checkpoint_inconsistent_with_the_pin_fails(
    vault_path: Path, tmp_path: Path
) -> None:
    published = tmp_path / "published.txt"
    published.write_text(_grow(vault_path, 3, 0))
    # a fork: the same key signs another tree of the same size, then grows it
    other = _fork(vault_path, tmp_path / "fork")
    _grow(other, 3, 100)
    _grow(other, 2, 200)
    rc, report = _verify(other, "--checkpoint", str(published), "--no-remember", state=tmp_path)
    assert rc == 1
    (msg,) = _pin_messages(report)
    assert "a fork (two trees signed for one size)" in msg
    assert "size 3" in msg


@pytest.mark.slow
def test_a_pin_by_another_key_or_a_wrong_vkey_fails_naming_both(
    vault_path: Path, tmp_path: Path
) -> None:
    note = tmp_path / "cp.txt"
    note.write_text(_grow(vault_path, 2, 0))
    other = tmp_path / "other"
    Vault.create(other, origin="echo.archive/0ther0000000000").close()
    wrong = (other / VKEY_FILE).read_text().strip()
    rc, report = _verify(
        vault_path, "--vkey", wrong, "--checkpoint", str(note), "--no-remember", state=tmp_path
    )
    assert rc == 1
    msgs = _pin_messages(report)
    assert any("not the pinned key echo.archive/0ther0000000000+" in m for m in msgs), msgs
    assert any("pinned checkpoint refused" in m for m in msgs), msgs
    bad = run_echoctl("--vault", str(vault_path), "verify", "--vkey", "garbage")
    assert bad.returncode == 2


@pytest.mark.slow
def test_the_newest_verified_checkpoint_is_remembered_and_a_rollback_fails(
    vault_path: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    _grow(vault_path, 3, 0)
    _grow(vault_path, 2, 3)
    rc, report = _verify(vault_path, state=state)
    assert rc == 0, report["problems"]
    remembered = remembered_path(ORIGIN, state)
    doc = json.loads(remembered.read_text())
    assert doc["origin"] == ORIGIN
    assert doc["note"].splitlines()[1] == "5"
    assert not remembered.is_relative_to(vault_path)  # outside the vault
    size = _drop_newest_checkpoint(vault_path)  # rollback by removing the newest checkpoint
    assert size == 5
    rc, report = _verify(vault_path, state=state)
    assert rc == 1
    (msg,) = _pin_messages(report)
    assert "rolled back" in msg
    assert "the checkpoint verified at" in msg
    assert str(remembered) in msg
    assert json.loads(remembered.read_text()) == doc  # a failed verify remembers nothing


def test_the_remembered_checkpoint_moves_forward_only(vault_path: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    _grow(vault_path, 2, 0)
    with Vault.open(vault_path, readonly=True) as r:
        assert verify(r, state_dir=state).ok
    first = json.loads(remembered_path(ORIGIN, state).read_text())
    _grow(vault_path, 3, 2)
    with Vault.open(vault_path, readonly=True) as r:
        assert verify(r, state_dir=state).ok
    second = json.loads(remembered_path(ORIGIN, state).read_text())
    assert first["note"].splitlines()[1] == "2"
    assert second["note"].splitlines()[1] == "5"
    # another vault of the same origin (a fork: other entries) is refused against the memory
    fork = _fork(vault_path, tmp_path / "fork")
    _grow(fork, 6, 50)
    with Vault.open(fork, readonly=True) as r:
        report = verify(r, state_dir=state)
    assert not report.ok
    assert [p.kind for p in report.problems] == ["pin"]
    assert "a fork" in report.problems[0].message
