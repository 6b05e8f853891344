"""Strict evidence bundles: nothing unchecked rides along, key mismatches name both keys.

``verify-proof`` refuses a bundle with a top-level field outside the
``echo-evidence/v1`` format and fails one carrying a blob its entry does not
name (each named); with the wrong ``--vkey`` it says which key signed the
checkpoint and which was expected (``name+keyid``, signed-note signature
lines); a malformed ``--vkey`` is a usage error (exit 2). Real processes,
real vaults.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from echo_archive.errors import EvidenceError
from echo_archive.vault.evidence import verify_bundle
from echo_archive.vault.vault import VKEY_FILE, Vault

from .conftest import run_echoctl, sample_records


@pytest.fixture
def bundle(vault_path: Path, tmp_path: Path) -> Path:
    with Vault.open(vault_path) as v:
        v.commit(sample_records(3))
    out = tmp_path / "b.json"
    r = run_echoctl("--vault", str(vault_path), "prove", "1", "--out", str(out))
    assert r.returncode == 0, r.stderr
    ok = run_echoctl("verify-proof", str(out), "--vkey", str(vault_path / VKEY_FILE))
    assert ok.returncode == 0, ok.stdout  # the untouched bundle is valid
    return out


def _rewrite(path: Path, change: object) -> None:
    doc = json.loads(path.read_text())
    change(doc)  # type: ignore[operator]
    path.write_text(json.dumps(doc))


def test_an_unknown_top_level_field_is_refused_by_name(bundle: Path, vault_path: Path) -> None:
    _rewrite(bundle, lambda d: d.update({"note": "trust me", "signed_by": "a notary"}))
    with pytest.raises(EvidenceError, match=r"unknown top-level field\(s\) 'note', 'signed_by'"):
        verify_bundle(bundle.read_bytes())
    r = run_echoctl("verify-proof", str(bundle), "--json")
    assert r.returncode == 1
    err = json.loads(r.stderr)["error"]
    assert "'note', 'signed_by'" in err["message"]


def test_a_blob_the_entry_does_not_name_fails_the_bundle(bundle: Path, vault_path: Path) -> None:
    smuggled = b"a document the log never archived"
    digest = "sha256:" + hashlib.sha256(smuggled).hexdigest()
    _rewrite(bundle, lambda d: d["blobs"].update({digest: base64.b64encode(smuggled).decode()}))
    report = verify_bundle(bundle.read_bytes())
    assert not report.ok
    failed = [c for c in report.checks if not c.ok]
    assert [c.name for c in failed] == [f"blob {digest}"]
    assert "not named by the entry" in failed[0].detail
    r = run_echoctl("verify-proof", str(bundle), "--vkey", str(vault_path / VKEY_FILE))
    assert r.returncode == 1
    assert digest in r.stdout
    assert "INVALID" in r.stdout


def test_a_wrong_vkey_names_the_key_that_signed_and_the_one_expected(
    bundle: Path, vault_path: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    Vault.create(other, origin="echo.archive/0ther0000000000").close()
    wrong = (other / VKEY_FILE).read_text().strip()
    ours = (vault_path / VKEY_FILE).read_text().strip()
    wrong_label = "+".join(wrong.split("+")[:2])
    ours_label = "+".join(ours.split("+")[:2])
    for args in ([], ["--json"]):
        r = run_echoctl("verify-proof", str(bundle), "--vkey", wrong, *args)
        assert r.returncode == 1
        text = r.stdout
        if args:
            sig = next(c for c in json.loads(text)["checks"] if c["name"] == "checkpoint signature")
            text = sig["detail"]
            assert not sig["ok"]
        assert f"expected one of [{wrong_label}]" in text, text
        assert f"found signatures by [{ours_label}]" in text, text
        assert f"the pinned key {wrong_label}" in text
        assert f"signed by {ours_label}" in text


@pytest.mark.parametrize("vkey", ["garbage", "echo.archive/x+zz+AQ", ""])
def test_a_malformed_vkey_is_a_usage_error(bundle: Path, vkey: str) -> None:
    r = run_echoctl("verify-proof", str(bundle), "--vkey", vkey)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "not a verifier key" in r.stderr
    j = run_echoctl("verify-proof", str(bundle), "--vkey", vkey, "--json")
    assert j.returncode == 2
    assert json.loads(j.stderr)["error"]["exit"] == 2
