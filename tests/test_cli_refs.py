"""The `items` table within 80 columns, and the reference it shows is one `show` accepts."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from rich.cells import cell_len

from echo_archive.vault.vault import Vault

from .conftest import run_echoctl
from .itemdata import at, commit_items

FEED = "a-rather-long-feed-name-for-width-tests"


def echoctl(*args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess, with a terminal width of ``columns``."""
    return run_echoctl(*args, env={"COLUMNS": str(columns)})


@pytest.mark.slow
def test_items_table_fits_80_columns_and_its_refs_open_with_show(tmp_path: Path) -> None:
    path = tmp_path / "v"
    titles = [
        (
            "https://example.org/posts/2026/12/05/a-very-long-native-identifier-0",
            "日本語の長いタイトル" * 6,
        ),
        ("short", "a plain title " * 12),
        ("x" * 90, "\u202eevil\x1b[2J [bold]markup[/bold] " * 4),
    ]
    with Vault.create(path) as v:
        commit_items(v, FEED, titles, seen_at=at(0))
        commit_items(v, "b", [(f"n{i}", f"title {i}") for i in range(120)], seen_at=at(60))
    table = echoctl("--vault", str(path), "items", "--limit", "200")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert max(cell_len(line) for line in lines) <= 80, max(lines, key=cell_len)
    rows = lines[3:]
    page = json.loads(echoctl("--vault", str(path), "items", "--limit", "200", "--json").stdout)
    assert len(rows) == len(page["entries"]) == 123
    for row, entry in list(zip(rows, page["entries"], strict=True))[-5:]:  # ours: the long ones
        ref = row.split()[0]
        shown = echoctl("--vault", str(path), "show", ref, "--json")
        assert shown.returncode == 0, shown.stderr
        item = json.loads(shown.stdout)["history"][0]
        assert item["meta"]["native_id"] == entry["native_id"]
        assert item["item"]["title"] == entry["title"]
