"""Tamper tests: edit the real vault files and check that `verify` names what changed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from echo_archive.vault.checkpoint import Checkpoint, sign_checkpoint
from echo_archive.vault.note import generate_signer
from echo_archive.vault.vault import Record, Vault
from echo_archive.vault.verify import VerifyReport, verify_vault

from .conftest import file_meta, sample_records


@pytest.fixture
def filled(vault_path: Path) -> Path:
    """A vault with 600 entries in batches (checkpoints 0, 100, 300, 600) and one large blob."""
    with Vault.open(vault_path) as v:
        v.commit(sample_records(100))
        v.commit(sample_records(200, start=100))
        big = vault_path.parent / "big.bin"
        big.write_bytes(b"large blob " * 2_000_000)
        v.commit(
            [
                *sample_records(299, start=300),
                Record("capture", file_meta("big.bin", 22_000_000), {"body": big}),
            ]
        )
    return vault_path


def _verify(path: Path) -> VerifyReport:
    with Vault.open(path, readonly=True) as v:
        return verify_vault(v)


def _sql(path: Path, db: str, *statements: tuple[str, tuple[object, ...]]) -> None:
    conn = sqlite3.connect(path / db)
    with conn:
        for sql, args in statements:
            conn.execute(sql, args)
    conn.close()


def _refs(report: VerifyReport) -> set[str]:
    return {p.ref for p in report.problems}


def test_untouched_vault_verifies(filled: Path) -> None:
    report = _verify(filled)
    assert report.ok, report.problems
    assert report.entries == 600
    assert report.log_size == 600
    assert report.checkpoints == 4
    assert report.blobs == 600
    assert report.warnings == []


def _entry_blob_digest(path: Path, idx: int) -> bytes:
    conn = sqlite3.connect(path / "catalog.sqlite")
    (digest,) = conn.execute("SELECT digest FROM entry_blobs WHERE idx = ?", (idx,)).fetchone()
    conn.close()
    return bytes(digest)


def test_flipped_byte_in_a_small_blob(filled: Path) -> None:
    digest = _entry_blob_digest(filled, 42)
    conn = sqlite3.connect(filled / "blobs" / "blobs.sqlite")
    cols = [r[1] for r in conn.execute("PRAGMA table_info(blobs)")]
    assert "data" in cols
    (data,) = conn.execute("SELECT data FROM blobs WHERE digest = ?", (digest,)).fetchone()
    flipped = bytearray(data)
    flipped[len(flipped) // 2] ^= 0x01
    with conn:
        conn.execute("UPDATE blobs SET data = ? WHERE digest = ?", (bytes(flipped), digest))
    conn.close()
    report = _verify(filled)
    assert not report.ok
    assert _refs(report) == {"sha256:" + digest.hex()}


def test_flipped_byte_in_a_large_blob_file(filled: Path) -> None:
    digest = _entry_blob_digest(filled, 599)
    (file,) = (filled / "blobs").rglob(f"{digest.hex()}*")
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0x80
    file.write_bytes(bytes(data))
    report = _verify(filled)
    assert _refs(report) == {"sha256:" + digest.hex()}


def test_changed_entry_row(filled: Path) -> None:
    conn = sqlite3.connect(filled / "catalog.sqlite")
    (raw,) = conn.execute("SELECT entry FROM entries WHERE idx = 150").fetchone()
    conn.close()
    changed = bytes(raw).replace(b"item-150.json", b"item-151.json")
    assert changed != bytes(raw)
    _sql(filled, "catalog.sqlite", ("UPDATE entries SET entry = ? WHERE idx = 150", (changed,)))
    report = _verify(filled)
    assert "entry 150" in _refs(report)
    # every checkpoint covering entry 150 no longer matches its signed root
    assert {"checkpoint 300", "checkpoint 600"} <= _refs(report)
    assert "checkpoint 100" not in _refs(report)
    # the stored node hashes are intact: their mismatch is a consequence, not reported
    assert not [p for p in report.problems if p.kind == "node"]


def test_non_canonical_entry_row(filled: Path) -> None:
    conn = sqlite3.connect(filled / "catalog.sqlite")
    (raw,) = conn.execute("SELECT entry FROM entries WHERE idx = 7").fetchone()
    conn.close()
    _sql(
        filled,
        "catalog.sqlite",
        ("UPDATE entries SET entry = ? WHERE idx = 7", (bytes(raw) + b" ",)),
    )
    report = _verify(filled)
    assert any(p.ref == "entry 7" and "canonical" in p.message for p in report.problems)


def test_deleted_entry_row(filled: Path) -> None:
    _sql(filled, "catalog.sqlite", ("DELETE FROM entries WHERE idx = 20", ()))
    report = _verify(filled)
    assert any(p.ref == "entry 20" and "missing" in p.message for p in report.problems)


def test_deleted_last_entry_row(filled: Path) -> None:
    _sql(filled, "catalog.sqlite", ("DELETE FROM entries WHERE idx = 599", ()))
    report = _verify(filled)
    assert any(p.ref == "entry 599" and "missing" in p.message for p in report.problems)


def test_reordered_entry_rows(filled: Path) -> None:
    _sql(
        filled,
        "catalog.sqlite",
        ("UPDATE entries SET idx = -1 WHERE idx = 10", ()),
        ("UPDATE entries SET idx = 10 WHERE idx = 11", ()),
        ("UPDATE entries SET idx = 11 WHERE idx = -1", ()),
    )
    report = _verify(filled)
    assert {"entry 10", "entry 11"} <= _refs(report)


def test_inserted_entry_row(filled: Path) -> None:
    conn = sqlite3.connect(filled / "catalog.sqlite")
    (raw,) = conn.execute("SELECT entry FROM entries WHERE idx = 5").fetchone()
    conn.close()
    _sql(
        filled,
        "catalog.sqlite",
        ("INSERT INTO entries(idx, type, entry) VALUES (600, 'capture', ?)", (raw,)),
    )
    report = _verify(filled)
    assert any(p.ref == "entry 600" and "beyond the log" in p.message for p in report.problems)


def test_changed_blob_index_row(filled: Path) -> None:
    other = _entry_blob_digest(filled, 3)
    _sql(filled, "catalog.sqlite", ("UPDATE entry_blobs SET digest = ? WHERE idx = 4", (other,)))
    report = _verify(filled)
    assert _refs(report) == {"entry 4"}


def test_changed_leaf_hash_in_the_tiles(filled: Path) -> None:
    conn = sqlite3.connect(filled / "catalog.sqlite")
    (hashes,) = conn.execute("SELECT hashes FROM tiles WHERE level = 0 AND idx = 1").fetchone()
    conn.close()
    h = bytearray(hashes)
    h[5 * 32] ^= 1  # leaf 256 + 5
    _sql(
        filled,
        "catalog.sqlite",
        ("UPDATE tiles SET hashes = ? WHERE level = 0 AND idx = 1", (bytes(h),)),
    )
    report = _verify(filled)
    assert "entry 261" in _refs(report)


def test_changed_inner_node_hash(filled: Path) -> None:
    conn = sqlite3.connect(filled / "catalog.sqlite")
    (hashes,) = conn.execute("SELECT hashes FROM tiles WHERE level = 3 AND idx = 0").fetchone()
    conn.close()
    h = bytearray(hashes)
    h[2 * 32 + 7] ^= 1
    _sql(
        filled,
        "catalog.sqlite",
        ("UPDATE tiles SET hashes = ? WHERE level = 3 AND idx = 0", (bytes(h),)),
    )
    report = _verify(filled)
    assert "node (level 3, index 2)" in _refs(report)


def _note(path: Path, size: int) -> str:
    conn = sqlite3.connect(path / "catalog.sqlite")
    (note,) = conn.execute("SELECT note FROM checkpoints WHERE size = ?", (size,)).fetchone()
    conn.close()
    return str(note)


def test_replaced_checkpoint_root(filled: Path) -> None:
    note = _note(filled, 300)
    lines = note.split("\n")
    lines[2] = "A" * 43 + "="  # another root, same signature
    _sql(
        filled,
        "catalog.sqlite",
        ("UPDATE checkpoints SET note = ? WHERE size = 300", ("\n".join(lines),)),
    )
    report = _verify(filled)
    assert any(
        p.ref == "checkpoint 300" and "does not verify" in p.message for p in report.problems
    )


def test_forged_checkpoint_signed_by_another_key(filled: Path) -> None:
    with Vault.open(filled, readonly=True) as v:
        origin, root = v.origin, v.root_at(300)
    forged = sign_checkpoint(Checkpoint(origin, 300, root), generate_signer(origin))
    _sql(filled, "catalog.sqlite", ("UPDATE checkpoints SET note = ? WHERE size = 300", (forged,)))
    report = _verify(filled)
    assert _refs(report) == {"checkpoint 300"}


def test_checkpoint_row_disagreeing_with_its_note(filled: Path) -> None:
    _sql(
        filled,
        "catalog.sqlite",
        ("UPDATE checkpoints SET root = ? WHERE size = 100", (b"\x00" * 32,)),
    )
    report = _verify(filled)
    assert _refs(report) == {"checkpoint 100"}


def test_missing_blob_named_by_an_entry(filled: Path) -> None:
    digest = _entry_blob_digest(filled, 77)
    _sql(filled, "blobs/blobs.sqlite", ("DELETE FROM blobs WHERE digest = ?", (digest,)))
    report = _verify(filled)
    assert any(
        p.ref == "sha256:" + digest.hex() and "entry 77" in p.message for p in report.problems
    )


@pytest.mark.parametrize("fraction", [0.25, 1.0])
def test_sample_checks_a_fraction_of_blobs(filled: Path, fraction: float) -> None:
    with Vault.open(filled, readonly=True) as v:
        report = verify_vault(v, sample=fraction)
    assert report.ok
    assert report.entries == 600
    if fraction == 1.0:
        assert report.blobs == 600
    else:
        assert 60 <= report.blobs <= 250


def test_progress_reports_both_phases(filled: Path) -> None:
    seen: dict[str, tuple[int, int]] = {}

    def progress(phase: str, done: int, total: int) -> None:
        seen[phase] = (done, total)

    with Vault.open(filled, readonly=True) as v:
        verify_vault(v, progress=progress)
    assert seen["entries"] == (600, 600)
    assert seen["blobs"][1] == 600
