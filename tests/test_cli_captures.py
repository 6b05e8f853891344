"""`echoctl captures`, `cat` and `show --diff`: the real CLI over real vaults."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from echo_archive.cli import app
from echo_archive.vault.vault import Vault

from .itemdata import at, commit_items

runner = CliRunner()
BINARY = bytes(range(256)) * 64


def _vault(tmp_path: Path) -> tuple[Path, Path]:
    path = tmp_path / "vault"
    with Vault.create(path) as v:
        commit_items(v, "a", [("n1", "title 1"), ("n3", "title 3")], seen_at=at(0))
        commit_items(v, "b", [("m0", "other")], seen_at=at(3600), source="hn")
        commit_items(v, "a", [("n3", "title 3 changed")], ["n1"], seen_at=at(7200))
    blob = tmp_path / "evidence.bin"
    blob.write_bytes(BINARY)
    added = runner.invoke(app, ["--vault", str(path), "add", str(blob)])
    assert added.exit_code == 0, added.stderr
    return path, blob


def _captures(path: Path, *args: str) -> dict[str, object]:
    result = runner.invoke(app, ["--vault", str(path), "captures", "--json", *args])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert isinstance(doc, dict)
    return doc


def _indexes(doc: dict[str, object]) -> list[int]:
    entries = doc["entries"]
    assert isinstance(entries, list)
    return [int(e["index"]) for e in entries]


def test_captures_lists_with_filters_and_pages(tmp_path: Path) -> None:
    path, _ = _vault(tmp_path)
    every = _captures(path)
    entries = every["entries"]
    assert isinstance(entries, list)
    assert [e["kind"] for e in entries] == ["file", "http", "http", "http"]
    assert _indexes(every) == sorted(_indexes(every), reverse=True)
    assert entries[0]["name"] == "evidence.bin"
    assert entries[0]["size"] == len(BINARY)
    assert [e["feed"] for e in _captures(path, "--feed", "a")["entries"]] == ["a", "a"]  # type: ignore[union-attr]
    assert [e["feed"] for e in _captures(path, "--source", "hn")["entries"]] == ["b"]  # type: ignore[union-attr]
    assert _indexes(_captures(path, "--kind", "file")) == [entries[0]["index"]]
    assert len(_indexes(_captures(path, "--kind", "http"))) == 3
    # 12:00Z, 13:00Z, 14:00Z fetches: since 13:30+01:00 is 12:30Z; until 14:00Z is exclusive
    window = _captures(
        path,
        "--kind",
        "http",
        "--since",
        "2026-12-05T13:30:00+01:00",
        "--until",
        "2026-12-05T14:00:00Z",
    )
    assert [e["feed"] for e in window["entries"]] == ["b"]  # type: ignore[union-attr]
    walked: list[int] = []
    cursor: list[str] = []
    for _ in range(10):
        page = _captures(path, "--limit", "1", "--oldest", *cursor)
        walked += _indexes(page)
        if page["next"] is None:
            break
        cursor = ["--cursor", str(page["next"])]
    assert walked == sorted(_indexes(every))
    for args, message in (
        (["--kind", "ftp"], "kind 'ftp': expected one of http, file"),
        (["--since", "garbage"], "since 'garbage': expected an RFC 3339 date-time"),
    ):
        bad = runner.invoke(app, ["--vault", str(path), "captures", *args])
        assert bad.exit_code == 2, bad.output
        assert message in " ".join(bad.stderr.split())
    table = runner.invoke(app, ["--vault", str(path), "captures"])
    assert "evidence.bin" in table.stdout
    for args, message in (
        (
            ["--feed", "nope"],
            "feed 'nope': no capture of this feed in the vault; feeds with captures: a, b",
        ),
        (
            ["--source", "zz"],
            "source 'zz': no capture of this source in the vault; sources with captures: hn, rss",
        ),
    ):
        missing = runner.invoke(app, ["--vault", str(path), "captures", *args])
        assert missing.exit_code == 1, missing.output
        assert message in " ".join(missing.stderr.split())
    assert _captures(path, "--feed", "a", "--kind", "file")["entries"] == []  # exists, no match


def test_cat_gives_the_exact_bytes_and_never_overwrites(tmp_path: Path) -> None:
    path, _ = _vault(tmp_path)
    files = _captures(path, "--kind", "file")["entries"]
    http = _captures(path, "--kind", "http", "--oldest")["entries"]
    assert isinstance(files, list)
    assert isinstance(http, list)
    ref = str(files[0]["index"])
    target = tmp_path / "out.bin"
    done = runner.invoke(app, ["--vault", str(path), "cat", ref, "--out", str(target), "--json"])
    assert done.exit_code == 0, done.stderr
    assert target.read_bytes() == BINARY
    assert json.loads(done.stdout)["size"] == len(BINARY)
    target.write_bytes(b"mine")
    refused = runner.invoke(app, ["--vault", str(path), "cat", ref, "--out", str(target)])
    assert refused.exit_code == 1
    assert "exists; give --force" in refused.stderr
    assert target.read_bytes() == b"mine"
    forced = runner.invoke(app, ["--vault", str(path), "cat", ref, "--out", str(target), "--force"])
    assert forced.exit_code == 0, forced.stderr
    assert target.read_bytes() == BINARY
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".echoctl")] == []
    piped = runner.invoke(app, ["--vault", str(path), "cat", ref])
    assert piped.exit_code == 0
    assert piped.stdout_bytes == BINARY
    body = runner.invoke(app, ["--vault", str(path), "cat", str(http[0]["index"])])
    assert json.loads(body.stdout_bytes) == [["n1", "title 1"], ["n3", "title 3"]]
    with Vault.open(path, readonly=True) as v:
        entry = v.entry(int(http[0]["index"]))
        assert body.stdout_bytes == v.blobs.get(entry.blobs[0].digest)
    not_capture = runner.invoke(app, ["--vault", str(path), "cat", "1"])
    assert not_capture.exit_code == 1
    assert "not a capture" in not_capture.stderr
    assert runner.invoke(app, ["--vault", str(path), "cat", "x1"]).exit_code == 2


def test_cat_refuses_binary_on_a_terminal(tmp_path: Path) -> None:
    path, _ = _vault(tmp_path)
    files = _captures(path, "--kind", "file")["entries"]
    assert isinstance(files, list)
    leader, follower = os.openpty()
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "echo_archive",
                "--vault",
                str(path),
                "cat",
                str(files[0]["index"]),
            ],
            stdout=follower,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    finally:
        os.close(follower)
    os.set_blocking(leader, False)
    try:
        shown = os.read(leader, 65536)
    except OSError:  # nothing was written (EAGAIN), or the follower is gone (EIO)
        shown = b""
    os.close(leader)
    assert proc.returncode == 1
    assert b"refusing to write it to a terminal" in proc.stderr
    assert b"\x00" not in shown


def test_show_diff_gives_unified_diffs_of_text_fields(tmp_path: Path) -> None:
    path, _ = _vault(tmp_path)
    shown = runner.invoke(app, ["--vault", str(path), "show", "rss:a:n3", "--diff"])
    assert shown.exit_code == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "-title 3" in lines
    assert "+title 3 changed" in lines
    assert any(line.startswith("--- entry ") and line.endswith(" title") for line in lines)
    doc = json.loads(
        runner.invoke(app, ["--vault", str(path), "show", "rss:a:n3", "--diff", "--json"]).stdout
    )
    (step,) = doc["diffs"]
    assert (step["type"], step["fields"]) == ("version", ["title"])
    assert step["older"] < step["newer"]
    tomb = json.loads(
        runner.invoke(app, ["--vault", str(path), "show", "rss:a:n1", "--diff", "--json"]).stdout
    )
    assert [(d["type"], d["lines"]) for d in tomb["diffs"]] == [("tombstone", [])]
    one = runner.invoke(app, ["--vault", str(path), "show", "hn:b:m0", "--diff"])
    assert "nothing changed" in one.stdout
