"""Library services over a real vault: archive files, entries and captures, proofs, evidence."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import pytest

from echo_archive.errors import (
    InputError,
    LogError,
    RequestError,
    VaultError,
    VaultExistsError,
    VaultLockedError,
    VaultNotFoundError,
)
from echo_archive.services import (
    archive_files,
    consistency,
    create_vault,
    evidence_bundle,
    get_capture,
    get_entry,
    inclusion,
    latest_checkpoint,
    open_capture_body,
    open_vault,
    verify,
    verify_evidence,
)
from echo_archive.services.archive import ArchivedFile
from echo_archive.services.proofs import write_bundle
from echo_archive.vault.merkle import leaf_hash, verify_consistency, verify_inclusion
from echo_archive.vault.writer import VaultWriter


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    made = []
    for i in range(5):
        f = tmp_path / f"doc{i}.txt"
        f.write_bytes(f"evidence {i}\n".encode() * (i + 1))
        made.append(f)
    return made


def test_create_open_and_archive_files_in_batches(tmp_path: Path, files: list[Path]) -> None:
    path = tmp_path / "vault"
    info = create_vault(path, origin="echo.archive/services-test")
    assert info.origin == "echo.archive/services-test"
    assert info.vkey.startswith("echo.archive/services-test+")
    with pytest.raises(VaultExistsError):
        create_vault(path)
    config = path / "echo.toml"
    config.write_text(config.read_text().replace("batch_size = 1000", "batch_size = 2"))
    batches: list[list[ArchivedFile]] = []
    with open_vault(path, write=True) as w:
        with w.writing(), pytest.raises(VaultLockedError):  # a write holds the lock
            open_vault(path, write=True, wait=0)
        done = archive_files(w, files, on_batch=lambda b: batches.append(list(b)))
    assert [len(b) for b in batches] == [2, 2, 1]
    assert [a.index for a in done] == [0, 1, 2, 3, 4]
    assert [a.checkpoint_size for a in done] == [2, 2, 4, 4, 5]
    for a in done:
        data = a.file.read_bytes()
        assert a.digest == "sha256:" + hashlib.sha256(data).hexdigest()
        assert a.size == len(data)
        assert a.to_json()["file"] == str(a.file)
    with open_vault(path) as r:
        assert verify(r).ok
        capture = get_capture(r, 3)
        assert capture.meta["kind"] == "file"
        assert capture.meta["name"] == "doc3.txt"
        assert capture.meta["size"] == files[3].stat().st_size
        assert capture.body is not None
        assert capture.body.digest_text == done[3].digest
        with open_capture_body(r, capture) as body:
            assert body.read() == files[3].read_bytes()
        view = get_entry(r, 3)
        assert view.leaf_hash == leaf_hash(view.entry.raw)
        assert view.to_json()["blobs"]["body"]["digest"] == done[3].digest


def test_nothing_is_archived_when_one_file_is_unusable(vault_path: Path, files: list[Path]) -> None:
    with open_vault(vault_path, write=True) as w:
        with pytest.raises(InputError, match=r"missing\.txt: not a regular file"):
            archive_files(w, [*files, files[0].parent / "missing.txt"])
        with pytest.raises(InputError, match="not a regular file"):
            archive_files(w, [files[0].parent])
        if os.geteuid() != 0:  # root reads everything
            files[1].chmod(0)
            with pytest.raises(InputError, match=r"doc1\.txt: not readable"):
                archive_files(w, files)
        assert w.log_state()[0] == 0


def test_a_large_capture_body_is_streamed(tmp_path: Path) -> None:
    path = tmp_path / "vault"
    create_vault(path)
    config = path / "echo.toml"
    text = config.read_text()
    assert "large_threshold = 16777216" in text
    config.write_text(text.replace("large_threshold = 16777216", "large_threshold = 4096"))
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(300_000))
    with open_vault(path, write=True) as w:
        (done,) = archive_files(w, [big])
    with open_vault(path) as r:
        capture = get_capture(r, done.index)
        digest = hashlib.sha256()
        with open_capture_body(r, capture) as body:
            while chunk := body.read(65536):
                assert len(chunk) <= 65536
                digest.update(chunk)
        assert "sha256:" + digest.hexdigest() == done.digest


def test_entry_and_capture_errors(vault_path: Path, files: list[Path]) -> None:
    with open_vault(vault_path, write=True) as w:
        archive_files(w, files[:1])
        w.commit([])
    with open_vault(vault_path) as r:
        with pytest.raises(LogError):
            get_entry(r, 1)
        with pytest.raises(LogError):
            get_capture(r, 7)


def test_proofs_verify_by_rfc_9162(vault_path: Path, files: list[Path]) -> None:
    with open_vault(vault_path, write=True) as w:
        for f in files:
            archive_files(w, [f])
    with open_vault(vault_path) as r:
        cp = latest_checkpoint(r)
        assert cp.size == 5
        for index in range(5):
            for size in range(index + 1, 6):
                p = inclusion(r, index, size)
                verify_inclusion(p.leaf_hash, p.index, p.size, p.proof, p.root_hash)
        p = inclusion(r, 2)
        assert p.size == 5
        assert p.root_hash == cp.checkpoint.root_hash
        assert set(p.to_json()) == {"index", "size", "leaf_hash", "root_hash", "proof"}
        for old in range(1, 6):
            c = consistency(r, old)
            verify_consistency(c.old_size, c.new_size, c.proof, c.old_root, c.new_root)
        with pytest.raises(LogError):
            inclusion(r, 5, 5)
        with pytest.raises(LogError):
            consistency(r, 3, 9)


def test_evidence_bundle_round_trip(vault_path: Path, files: list[Path], tmp_path: Path) -> None:
    with open_vault(vault_path, write=True) as w:
        done = archive_files(w, files)
    with open_vault(vault_path) as r:
        by_digest = evidence_bundle(r, done[2].digest)
        assert by_digest.index == 2
        assert evidence_bundle(r, 2) == by_digest
        assert evidence_bundle(r, "2").data == by_digest.data
        vkey = r.verifier.vkey
        with pytest.raises(LogError):
            evidence_bundle(r, "sha256:" + "0" * 64)
    out = tmp_path / "bundle.json"
    write_bundle(by_digest, out)
    assert out.read_bytes() == by_digest.data
    assert not out.with_name("bundle.json.tmp").exists()
    report = verify_evidence(out.read_bytes(), vkey)
    assert report.ok
    assert report.key_pinned
    doc = json.loads(by_digest.data)
    doc["blobs"] = {k: "AAAA" for k in doc["blobs"]}
    assert not verify_evidence(json.dumps(doc).encode(), vkey).ok


def test_verify_checks_its_sample(vault_path: Path) -> None:
    with open_vault(vault_path) as r:
        for bad in (0.0, -1.0, 1.5):
            with pytest.raises(RequestError, match="sample"):
                verify(r, sample=bad)
        assert verify(r, sample=0.5).ok


def test_a_reader_cannot_write(vault_path: Path, files: list[Path]) -> None:
    with open_vault(vault_path) as r, pytest.raises(VaultError, match="read-only"):
        archive_files(r, files[:1])
    with pytest.raises(VaultNotFoundError, match="no vault at"):
        open_vault(vault_path.parent / "nowhere")


def test_archive_through_the_process_writer_from_two_threads(
    vault_path: Path, files: list[Path]
) -> None:
    results: dict[int, list[ArchivedFile]] = {}
    with VaultWriter.open(vault_path) as w:
        threads = [
            threading.Thread(target=lambda n=n: results.update({n: archive_files(w, files[n::2])}))
            for n in range(2)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    indexes = sorted(a.index for batch in results.values() for a in batch)
    assert indexes == list(range(len(files)))
    with open_vault(vault_path) as r:
        assert verify(r).ok
        for batch in results.values():
            for a in batch:
                with open_capture_body(r, get_capture(r, a.index)) as body:
                    assert body.read() == a.file.read_bytes()
