"""`echoctl add -r DIR` and re-running `add`: deterministic order, no symlink out, no duplicates."""

from __future__ import annotations

import json
import os
from pathlib import Path

from typer.testing import CliRunner

from echo_archive.cli import app
from echo_archive.vault.vault import Vault

runner = CliRunner()


def _tree(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"not yours")
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "b.txt").write_bytes(b"bee")
    (d / "a.txt").write_bytes(b"ay")
    (d / "sub" / "c.txt").write_bytes(b"sea")
    os.symlink(d / "a.txt", d / "link-in")
    os.symlink(outside / "secret.txt", d / "link-out")
    os.symlink(outside, d / "linkdir")
    return d


def _add(vault: Path, *args: str) -> list[dict[str, object]]:
    result = runner.invoke(app, ["--vault", str(vault), "add", *args, "--json"])
    assert result.exit_code == 0, (result.stdout, result.stderr)
    doc = json.loads(result.stdout)
    assert isinstance(doc, list)
    return doc


def test_add_recursive_is_ordered_and_stays_inside(tmp_path: Path) -> None:
    vault = tmp_path / "v"
    Vault.create(vault).close()
    d = _tree(tmp_path)
    result = runner.invoke(app, ["--vault", str(vault), "add", "-r", str(d), "--json"])
    assert result.exit_code == 0, result.stderr
    added = json.loads(result.stdout)
    assert [Path(str(a["file"])).relative_to(d).as_posix() for a in added] == [
        "a.txt",
        "b.txt",
        "link-in",
        "sub/c.txt",
    ]
    assert all(a["already"] is False for a in added)
    assert "link-out: a symlink leading out of the directory" in result.stderr
    assert "linkdir: a symlinked directory (not followed)" in result.stderr
    with Vault.open(vault, readonly=True) as v:
        names = [e.meta.get("name") for _, e in v.iter_entries() if e.type == "capture"]
        bodies = [v.blobs.get(e.blobs[0].digest) for _, e in v.iter_entries() if e.blobs]
    assert names == ["a.txt", "b.txt", "link-in", "c.txt"]
    assert b"not yours" not in bodies
    plain = runner.invoke(app, ["--vault", str(vault), "add", str(d)])
    assert plain.exit_code == 1
    assert "a directory; give -r" in plain.stderr


def test_add_again_after_a_crash_archives_only_what_is_missing(tmp_path: Path) -> None:
    vault = tmp_path / "v"
    Vault.create(vault).close()
    d = _tree(tmp_path)
    first = _add(vault, str(d / "a.txt"))  # what the crashed run got in
    with Vault.open(vault, readonly=True) as v:
        size = v.size
    rerun = _add(vault, "-r", str(d))
    archived = [Path(str(a["file"])).name for a in rerun if a["already"] is False]
    held = [(Path(str(a["file"])).name, a["index"]) for a in rerun if a["already"] is True]
    assert archived == ["b.txt", "link-in", "c.txt"]  # link-in: same bytes, another name
    assert held == [("a.txt", first[0]["index"])]
    with Vault.open(vault, readonly=True) as v:
        assert v.size == size + 3
        size = v.size
    assert all(a["already"] is True for a in _add(vault, "-r", str(d)))  # nothing new
    (d / "b.txt").write_bytes(b"changed")  # same name, new bytes: archived
    changed = [a for a in _add(vault, "-r", str(d)) if a["already"] is False]
    assert [Path(str(a["file"])).name for a in changed] == ["b.txt"]
    again = _add(vault, "--again", str(d / "a.txt"))
    assert again[0]["already"] is False
    with Vault.open(vault, readonly=True) as v:
        assert v.size == size + 2
    plain = runner.invoke(app, ["--vault", str(vault), "add", str(d / "a.txt")])
    assert plain.exit_code == 0
    assert f"already archived at entry {first[0]['index']}: " in plain.stdout
