"""`echoctl harvest`, `items`, `show`, `breakers` in real subprocesses, SIGTERM included."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from echo_archive.harvest.recordings import read_recording
from echo_archive.harvest.state import HarvestState
from echo_archive.index.items import list_items
from echo_archive.vault.vault import Vault
from echo_archive.vault.verify import verify_vault

from .conftest import run_echoctl, shared_dir
from .httpfaults import FaultServer, Reply


def echoctl(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess."""
    return run_echoctl(*args, timeout=timeout)


@pytest.fixture
def hn_cassette() -> Path:
    return (
        shared_dir("corpora", "hackernews") / "topnews-vcr" / "hackernews_top_stories_details.yml"
    )


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    path = tmp_path / "v"
    assert echoctl("init", str(path)).returncode == 0
    return path


@pytest.mark.slow
def test_replayed_harvest_then_items_show_and_verify(vault: Path, hn_cassette: Path) -> None:
    args = ("--vault", str(vault), "harvest", "--feed", "hn-top", "--replay", str(hn_cassette))
    r = echoctl(*args, "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    (feed,) = report["feeds"]
    assert feed["name"] == "hn-top"
    assert feed["requests"] == {"200": 31}
    assert feed["new"] == 30
    assert feed["error"] is None
    again = json.loads(echoctl(*args, "--json").stdout)["feeds"][0]
    assert again["new"] == 0
    assert again["versions"] == 0
    assert again["duplicates"] == 30

    page = json.loads(echoctl("--vault", str(vault), "items", "--json", "--limit", "100").stdout)
    assert page["next"] is None
    items = page["entries"]
    assert len(items) == 30
    assert all(i["feed"] == "hn-top" and i["versions"] == 1 for i in items)
    # The table: one line per item within 80 columns (a subprocess has no
    # terminal, so Rich uses 80), newest first, the entry index whole.
    table = echoctl("--vault", str(vault), "items", "--limit", "100").stdout.splitlines()
    assert table[0] == "30 item(s), newest first"
    rows = table[3:]
    assert len(rows) == 30
    assert max(len(line) for line in table) <= 80
    assert [int(line.split()[0]) for line in rows] == [i["index"] for i in items]
    assert all(line.split()[1] == "hn-top" for line in rows)
    shown = echoctl("--vault", str(vault), "show", f"hn:hn-top:{items[0]['native_id']}", "--json")
    assert shown.returncode == 0, shown.stderr
    detail = json.loads(shown.stdout)
    assert detail["history"][0]["item"]["title"] == items[0]["title"]
    assert len(detail["observations"]) == 2  # seen in both cycles
    assert detail["captures"][0]["url"].startswith("https://hacker-news.firebaseio.com/v0/item/")
    assert echoctl("--vault", str(vault), "verify").returncode == 0


@pytest.mark.slow
def test_every_feed_failing_exits_4_and_keeps_the_vault(vault: Path, hn_cassette: Path) -> None:
    r = echoctl(
        "--vault", str(vault), "harvest", "--feed", "bbc-world", "--replay", str(hn_cassette)
    )
    assert r.returncode == 4, r.stdout + r.stderr
    assert "not recorded: GET https://feeds.bbci.co.uk/news/world/rss.xml" in r.stdout
    assert echoctl("--vault", str(vault), "verify").returncode == 0


def test_unknown_feed_is_a_usage_error(vault: Path) -> None:
    r = echoctl("--vault", str(vault), "harvest", "--feed", "nope")
    assert r.returncode == 2
    assert "unknown feed(s): nope" in r.stderr


@pytest.mark.slow
def test_breakers_list_and_reset(vault: Path) -> None:
    with Vault.open(vault) as v:
        HarvestState(v.catalog).put_breaker(
            "api.github.com", {"state": "OPEN", "opened_at": 1.0}, "t"
        )
    listed = json.loads(echoctl("--vault", str(vault), "breakers", "--json").stdout)
    assert listed["api.github.com"]["state"] == "OPEN"
    r = echoctl("--vault", str(vault), "breakers", "--reset", "api.github.com")
    assert r.returncode == 0, r.stderr
    assert json.loads(echoctl("--vault", str(vault), "breakers", "--json").stdout) == {}
    assert echoctl("--vault", str(vault), "breakers", "--reset", "x").returncode == 1


@pytest.mark.slow
def test_sigterm_mid_harvest_archives_everything_fetched(vault: Path, hn_cassette: Path) -> None:
    exchanges = read_recording(hn_cassette).exchanges[:41]
    with FaultServer() as server:
        for ex in exchanges:
            server.route(
                urlsplit(ex.url).path,
                Reply(200, [("Content-Type", "application/json")], ex.body, delay=0.2),
            )
        added = echoctl(
            "--vault",
            str(vault),
            "feeds",
            "add",
            "hn-local",
            "--source",
            "hn",
            "--param",
            "list=top",
            "--param",
            "limit=40",
            "--param",
            f"base_url={server.url('/v0')}",
            "--allow-private",
        )
        assert added.returncode == 0, added.stderr
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "echo_archive",
                "--vault",
                str(vault),
                "harvest",
                "--feed",
                "hn-local",
                "--grace",
                "5",
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while server.hits() < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.hits() >= 4
        os.kill(proc.pid, signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)
        served = server.hits()
    assert proc.returncode == 0, stderr
    assert "SIGTERM" in stderr
    report = json.loads(stdout)
    assert report["interrupted"] is True
    (feed,) = report["feeds"]
    assert 0 < feed["captures"] < 41  # stopped early
    assert feed["captures"] == served  # every response the server sent is archived
    with Vault.open(vault, readonly=True) as v:
        result = verify_vault(v)
        assert result.ok, result.problems[:3]
        assert not result.warnings
        assert len(list_items(v.catalog, feed="hn-local", limit=100)) == feed["new"] == served - 1


def test_report_table_fits_80_columns_and_keeps_feed_names_whole(tmp_path: Path) -> None:
    from rich.console import Console

    import echo_archive.cli.harvest as cli_harvest
    from echo_archive.harvest.cycle import FeedReport, HarvestReport

    feeds = [
        FeedReport(
            "gh-torvalds-linux-events",
            "github",
            requests={"200": 3, "304": 1, "error": 2},
            new=1234,
            bytes=12_345_678,
            seconds=12.3,
            breaker="api.github.com: closed, codeload.github.com: half_open",
        ),
        FeedReport("bbc-world", "rss", requests={"error": 1}, breaker="feeds.bbci.co.uk: open"),
    ]
    report = HarvestReport(started_at="2026-12-05T12:00:00.000000Z", feeds=feeds)
    console = Console(width=80, record=True, highlight=False, soft_wrap=True)
    real = cli_harvest.out
    cli_harvest.out = console
    try:
        cli_harvest.print_report(report)
    finally:
        cli_harvest.out = real
    text = console.export_text()
    lines = text.splitlines()
    assert max(len(line) for line in lines if "─" in line or "feed" in line) <= 80
    rows = {line.split()[0]: line for line in lines if line.startswith(("gh-", "bbc-"))}
    assert set(rows) == {"gh-torvalds-linux-events", "bbc-world"}
    assert rows["gh-torvalds-linux-events"].split()[-1] == "half_open"  # the worst host
    assert "12.3 MB" in rows["gh-torvalds-linux-events"]
    assert rows["bbc-world"].split()[-1] == "open"


def _rss(title: str) -> bytes:
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        "<link>https://example.org/</link><description>d</description>"
        f"<item><guid>https://example.org/a</guid><title>{title}</title>"
        "<description>&lt;p&gt;Body &amp;amp; more&lt;/p&gt;</description></item>"
        "</channel></rss>"
    ).encode()


@pytest.mark.slow
def test_show_from_an_old_version_gives_the_whole_item_with_its_captures(
    vault: Path, tmp_path: Path
) -> None:
    first, second = tmp_path / "one.xml", tmp_path / "two.xml"
    first.write_bytes(_rss("Before"))
    second.write_bytes(_rss("After"))
    for doc in (first, second):
        r = echoctl("--vault", str(vault), "import", str(doc))
        assert r.returncode == 0, r.stdout + r.stderr
    with Vault.open(vault, readonly=True) as v:
        kinds = [v.entry(i).type for i in range(v.size)]
    assert kinds == ["capture", "item", "capture", "version"]
    shown = echoctl("--vault", str(vault), "show", "1", "--json")  # the first version's index
    assert shown.returncode == 0, shown.stderr
    detail = json.loads(shown.stdout)
    assert [(h["index"], h["type"], h["item"]["title"]) for h in detail["history"]] == [
        (3, "version", "After"),
        (1, "item", "Before"),
    ]
    # RSS items carry no counters, so no observation names their captures: the
    # entries' capture leaf hashes do.
    assert [h["capture_index"] for h in detail["history"]] == [2, 0]
    assert [c["url"] for c in detail["captures"]] == ["file:one.xml", "file:two.xml"]
    plain = echoctl("--vault", str(vault), "show", "1").stdout
    assert plain.splitlines()[0] == "After"
    assert "Body & more" in plain  # the excerpt is text, the archive keeps the HTML
    assert "history (2 entries, newest first)" in plain
    assert "from capture 0" in plain
