"""Signing separated from log storage: a vault stores checkpoints signed by another log's key.

A primary commits records; a replica (its verifier key, no signing key) appends
the primary's entries, batch by batch, each with the primary's signed
checkpoint note for the tree after that batch. The replica reaches the same
roots, holds the primary's notes verbatim and verifies; a note that is not the
primary's, or not of the recomputed tree, is refused and nothing is written.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from echo_archive.errors import LogError, NoteError, VaultError
from echo_archive.vault.checkpoint import Checkpoint, sign_checkpoint
from echo_archive.vault.entry import Entry, parse_entry
from echo_archive.vault.note import Verifier, generate_signer
from echo_archive.vault.signing import CheckpointSigner, KeySigner
from echo_archive.vault.vault import Vault
from echo_archive.vault.verify import verify_vault

from .conftest import sample_records


def _ship(primary: Vault, replica: Vault, start: int, stop: int) -> list[Entry]:
    """Copy entries ``start..stop`` and their blobs from the primary to the replica."""
    entries = [parse_entry(primary.entry(i).raw) for i in range(start, stop)]
    replica.blobs.put_many([primary.blobs.get(b.digest) for e in entries for b in e.blobs])
    return entries


def test_a_replica_stores_its_primarys_checkpoints(tmp_path: Path) -> None:
    with Vault.create(tmp_path / "primary") as primary:
        replica = Vault.create_replica(
            tmp_path / "replica",
            verifier_key=primary.verifier.vkey,
            checkpoint=primary.checkpoint_at(0).note,
        )
        with replica:
            assert replica.signer is None
            assert replica.origin == primary.origin
            assert not (tmp_path / "replica" / "keys" / "signing.key").exists()
            shipped = 0
            for n in (7, 1, 25):
                cp = primary.commit(sample_records(n, start=shipped)).checkpoint
                entries = _ship(primary, replica, shipped, cp.size)
                result = replica.append(entries, checkpoint=cp.note)
                assert result.checkpoint.note == cp.note
                assert [r.index for r in result.receipts] == list(range(shipped, cp.size))
                shipped = cp.size
                assert replica.log_state() == primary.log_state()
            assert replica.checkpoint_sizes() == primary.checkpoint_sizes() == [0, 7, 8, 33]
            for size in replica.checkpoint_sizes():
                assert replica.checkpoint_at(size).note == primary.checkpoint_at(size).note
            assert replica.root_at(20) == primary.root_at(20)
            assert replica.inclusion_proof(3, 33) == primary.inclusion_proof(3, 33)
            with pytest.raises(VaultError, match="no checkpoint signer"):
                replica.commit(sample_records(1, start=100))
            assert replica.size == 33
    with Vault.open(tmp_path / "replica", readonly=True) as r:
        report = verify_vault(r)
        assert report.ok, report.problems
        assert (report.entries, report.checkpoints) == (33, 4)
    with Vault.open(tmp_path / "replica") as w:  # reopens as a writer with no signer
        assert w.signer is None
        assert w.seal() is None


def test_a_replica_refuses_notes_that_do_not_hold(tmp_path: Path) -> None:
    with Vault.create(tmp_path / "primary") as primary:
        primary.commit(sample_records(10))
        good = primary.latest_checkpoint()
        stranger = generate_signer(primary.origin)  # same name, another key
        forged = sign_checkpoint(good.checkpoint, stranger)
        with Vault.create_replica(
            tmp_path / "replica",
            verifier_key=primary.verifier.vkey,
            checkpoint=primary.checkpoint_at(0).note,
        ) as replica:
            entries = _ship(primary, replica, 0, 10)
            before = replica.log_state(), replica.checkpoint_sizes()
            with pytest.raises(NoteError):
                replica.append(entries, checkpoint=forged)
            with pytest.raises(LogError, match="commits to size 10 root"):
                replica.append(entries[:9], checkpoint=good.note)  # one entry short
            reordered = [entries[1], entries[0], *entries[2:]]
            with pytest.raises(LogError, match="nothing was appended"):
                replica.append(reordered, checkpoint=good.note)
            assert (replica.log_state(), replica.checkpoint_sizes()) == before
            with pytest.raises(NoteError):
                replica.append(entries, checkpoint="not a note")
            replica.append(entries, checkpoint=good.note)
            assert replica.log_state() == primary.log_state()
    with pytest.raises(VaultError, match="empty tree"):
        Vault.create_replica(
            tmp_path / "late", verifier_key=primary.verifier.vkey, checkpoint=good.note
        )
    assert not (tmp_path / "late").exists()


class _CountingSigner:
    """A signer held outside the vault (here: in memory), counting what it signs."""

    def __init__(self, origin: str) -> None:
        self._key = KeySigner(generate_signer(origin))
        self.signed: list[int] = []

    @property
    def verifier(self) -> Verifier:
        return self._key.verifier

    def sign(self, checkpoint: Checkpoint) -> str:
        self.signed.append(checkpoint.size)
        return self._key.sign(checkpoint)


def test_a_signer_passed_in_signs_and_no_key_is_stored(tmp_path: Path) -> None:
    signer = _CountingSigner("echo.archive/external0000000")
    assert isinstance(signer, CheckpointSigner)
    with Vault.create(tmp_path / "v", signer=signer) as v:
        assert v.origin == "echo.archive/external0000000"
        v.commit(sample_records(3))
    assert signer.signed == [0, 3]
    assert not (tmp_path / "v" / "keys" / "signing.key").exists()
    # without the signer it cannot commit
    with Vault.open(tmp_path / "v") as v, pytest.raises(VaultError, match="no checkpoint signer"):
        v.commit(sample_records(1, start=3))
    with Vault.open(tmp_path / "v", signer=signer) as v:
        v.commit(sample_records(2, start=3))
    assert signer.signed == [0, 3, 5]
    with pytest.raises(VaultError, match="is not the vault's verifier key"):
        Vault.open(tmp_path / "v", signer=_CountingSigner("echo.archive/external0000000"))
    with Vault.open(tmp_path / "v", readonly=True) as r:
        assert verify_vault(r).ok


class _LyingSigner(_CountingSigner):
    def sign(self, checkpoint: Checkpoint) -> str:
        wrong = Checkpoint(checkpoint.origin, checkpoint.size, bytes(32))
        return super().sign(wrong if checkpoint.size else checkpoint)


def test_a_note_from_the_signer_that_does_not_hold_is_not_stored(tmp_path: Path) -> None:
    signer = _LyingSigner("echo.archive/liar000000000000")
    with Vault.create(tmp_path / "v", signer=signer) as v:
        with pytest.raises(LogError, match="commits to size 2 root 0000"):
            v.commit(sample_records(2))
        assert v.checkpoint_sizes() == [0]  # the entries are an unsealed tail, not acknowledged
        assert v.log_state()[0] == 2
