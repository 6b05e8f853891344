"""Hostile text on a terminal: titles and file names with escapes are printed inert.

A real loopback JSON Feed whose titles carry ``ESC[2J``, ``ESC[31m``, an OSC 52
clipboard write, a C1 CSI, bidi overrides/isolates and Rich markup is
harvested by the real CLI (subprocesses); ``items``, ``show``, ``reports``,
``feeds list`` and ``add`` then print no control or bidi character, and
``--json`` gives the exact titles back.
"""

from __future__ import annotations

import json
import subprocess
import unicodedata
from pathlib import Path

import pytest

from echo_archive.terminal import inert, is_inert

from .conftest import run_echoctl
from .httpfaults import FaultServer, Reply

TITLES = [
    "Clear\x1b[2Jscreen \x1b[31mred\x1b[0m end",
    "Clip \x1b]52;c;ZWNobyBwd25lZA==\x07 done",
    "C1 \x9b31m csi and del\x7f",
    "Trojan \u202eevil\u202c and \u2066isolate\u2069 [bold]markup[/bold]",
]


def echoctl(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess (no terminal: Rich adds no styling codes)."""
    return run_echoctl(*args, env={"COLUMNS": "200"}, drop=("FORCE_COLOR", "CLICOLOR_FORCE"))


def assert_inert(text: str) -> None:
    """No control (but newline), format/bidi or separator character in ``text``."""
    bad = [
        f"U+{ord(c):04X}"
        for c in text
        if c != "\n" and unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp")
    ]
    assert not bad, (bad, text)


def _feed(titles: list[str]) -> bytes:
    items = [
        {"id": f"https://example.org/{i}", "url": f"https://example.org/{i}", "title": t}
        for i, t in enumerate(titles)
    ]
    doc = {"version": "https://jsonfeed.org/version/1.1", "title": "hostile", "items": items}
    return json.dumps(doc).encode()


def test_inert_escapes_controls_bidi_and_keeps_text() -> None:
    assert inert("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert inert("\x9b\x7f\t\n") == "\\x9b\\x7f\\x09\\x0a"
    assert inert("x\u202ey\u2066z\u2069\u200f") == "x\\u202ey\\u2066z\\u2069\\u200f"
    assert inert("tag\U000e0041") == "tag\\U000e0041"
    assert inert("bad\udcff") == "bad\\udcff"
    kept = "Ünïcødé 日本語 فارسی\u200c ok 👩\u200d💻 [bold]"
    assert inert(kept) == kept
    assert all(is_inert(inert(t)) for t in TITLES)
    assert inert(inert(TITLES[0])) == inert(TITLES[0])


@pytest.mark.slow
def test_hostile_titles_and_file_names_print_inert(tmp_path: Path) -> None:
    vault = tmp_path / "v"
    assert echoctl("init", str(vault)).returncode == 0
    with FaultServer() as server:
        server.route(
            "/feed.json", Reply(200, [("Content-Type", "application/json")], _feed(TITLES))
        )
        server.route(
            "/broken.json", Reply(200, [("Content-Type", "application/json")], b"{\x1b]52;")
        )
        for name, path in (("hostile", "/feed.json"), ("broken", "/broken.json")):
            added = echoctl(
                "--vault", str(vault), "feeds", "add", name, "--source", "rss",
                "--param", f"url={server.url(path)}", "--allow-private",
            )  # fmt: skip
            assert added.returncode == 0, added.stderr
        harvested = echoctl(
            "--vault", str(vault), "harvest", "--feed", "hostile", "--feed", "broken"
        )
        assert harvested.returncode in (0, 1), harvested.stderr
        assert_inert(harvested.stdout + harvested.stderr)
    page = json.loads(echoctl("--vault", str(vault), "items", "--json").stdout)
    assert sorted(e["title"] for e in page["entries"]) == sorted(TITLES)  # exact, round-trip

    listed = echoctl("--vault", str(vault), "items")
    assert listed.returncode == 0, listed.stderr
    assert_inert(listed.stdout + listed.stderr)
    assert "\\x1b[2Jscreen" in listed.stdout
    assert "[bold]markup[/bold]" in listed.stdout  # Rich markup in a title is text

    for entry in page["entries"]:
        shown = echoctl("--vault", str(vault), "show", str(entry["index"]))
        assert shown.returncode == 0, shown.stderr
        assert_inert(shown.stdout + shown.stderr)
        assert inert(entry["title"]) in shown.stdout
        exact = json.loads(
            echoctl("--vault", str(vault), "show", str(entry["index"]), "--json").stdout
        )
        assert exact["history"][0]["item"]["title"] == entry["title"]

    for args in (("reports",), ("reports", "1"), ("feeds", "list")):
        r = echoctl("--vault", str(vault), *args)
        assert r.returncode == 0, (args, r.stderr)
        assert_inert(r.stdout + r.stderr)

    hostile = tmp_path / "evil\x1b[2J\u202etxt.exe [red]x[blink]"
    hostile.write_bytes(b"evidence")
    added = echoctl("--vault", str(vault), "add", str(hostile))
    assert added.returncode == 0, added.stderr
    assert_inert(added.stdout + added.stderr)
    assert "evil\\x1b[2J\\u202etxt.exe [red]x[blink]" in added.stdout
    (tmp_path / "j").mkdir()
    other = tmp_path / "j" / hostile.name
    other.write_bytes(b"other evidence")
    exact = json.loads(echoctl("--vault", str(vault), "add", str(other), "--json").stdout)
    assert exact[0]["file"] == str(other)
