"""``echoctl items`` pages and ``echoctl reports``: the shells over the services, in-process."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from echo_archive.cli import app
from echo_archive.harvest.cycle import FeedReport, HarvestReport
from echo_archive.harvest.state import HarvestState
from echo_archive.vault.vault import Vault

from .itemdata import at, commit_items

runner = CliRunner()


def _vault(tmp_path: Path) -> Path:
    path = tmp_path / "vault"
    with Vault.create(path) as v:
        commit_items(v, "a", [(f"n{i}", f"title {i}") for i in range(7)], seen_at=at(0))
        commit_items(v, "b", [("m0", "other")], seen_at=at(3600))
        commit_items(v, "a", [("n3", "title 3 changed")], ["n5"], seen_at=at(7200))
    return path


def _items(path: Path, *args: str) -> list[str]:
    result = runner.invoke(app, ["--vault", str(path), "items", *args])
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_items_pages_follow_the_printed_cursor(tmp_path: Path) -> None:
    path = _vault(tmp_path)
    seen: list[str] = []
    args = ["--feed", "a", "--limit", "3"]
    cursor: list[str] = []
    for _ in range(10):
        lines = _items(path, *args, *cursor)
        assert lines[0].startswith(("3 item(s), newest first", "1 item(s), newest first"))
        more = [line for line in lines if line.startswith("more: --cursor ")]
        rows = [line for line in lines[3:] if not line.startswith("more: ")]
        seen.extend(line.split()[2] for line in rows)
        if not more:
            break
        cursor = ["--cursor", more[0].removeprefix("more: --cursor ")]
    assert seen == [f"n{i}" for i in reversed(range(7))]  # first archived order, newest first
    page = json.loads(
        runner.invoke(app, ["--vault", str(path), "items", "--json", "--total", "--oldest"]).output
    )
    assert page["next"] is None
    assert page["total"] == 8
    assert [e["native_id"] for e in page["entries"]] == [f"n{i}" for i in range(7)] + ["m0"]
    tomb = next(e for e in page["entries"] if e["native_id"] == "n5")
    assert (tomb["state"], tomb["type"]) == ("tombstoned", "tombstone")


def test_items_filters_and_usage_errors(tmp_path: Path) -> None:
    path = _vault(tmp_path)
    lines = _items(path, "--since", "2026-12-05T14:00:00+01:00", "--until", "2026-12-05T14:00:00Z")
    assert [line.split()[2] for line in lines[3:]] == ["m0"]  # 13:00Z; until 14:00Z excludes
    lines = _items(path, "--since", "2026-12-05T14:00:00+01:00", "--state", "active")
    assert {line.split()[2] for line in lines[3:]} == {"m0", "n3"}
    for args, message in (
        (["--cursor", "nope"], "cursor 'nope': not a cursor this listing issued"),
        (["--since", "2026-12-05"], "since '2026-12-05': expected an RFC 3339 date-time"),
        (["--state", "gone"], "state 'gone': expected one of active, tombstoned"),
    ):
        result = runner.invoke(app, ["--vault", str(path), "items", *args])
        assert result.exit_code == 2, result.output
        assert message in " ".join(result.output.split())
    page = json.loads(
        runner.invoke(app, ["--vault", str(path), "items", "--json", "--limit", "2"]).output
    )
    other = runner.invoke(
        app, ["--vault", str(path), "items", "--feed", "b", "--cursor", page["next"]]
    )
    assert other.exit_code == 2
    assert "other filters or order" in other.output
    assert runner.invoke(app, ["--vault", str(path), "items", "--limit", "1001"]).exit_code == 2


def test_show_names_a_missing_item_and_a_bad_reference(tmp_path: Path) -> None:
    path = _vault(tmp_path)
    missing = runner.invoke(app, ["--vault", str(path), "show", "rss:a:nope"])
    assert missing.exit_code == 1
    assert "no item rss:a:nope" in missing.output
    bad = runner.invoke(app, ["--vault", str(path), "show", "rss:a"])
    assert bad.exit_code == 2
    shown = runner.invoke(app, ["--vault", str(path), "show", "rss:a:n3", "--json"])
    history = json.loads(shown.output)["history"]
    assert [h["type"] for h in history] == ["version", "item"]
    plain = runner.invoke(app, ["--vault", str(path), "show", "rss:a:n3"])
    assert "rss:a:n3" in plain.output  # no emoji code is rendered (":a:" stays text)


def test_reports_lists_and_shows_saved_reports(tmp_path: Path) -> None:
    path = tmp_path / "vault"
    with Vault.create(path) as v:
        for n in range(3):
            report = HarvestReport(
                started_at=at(60 * n),
                seconds=1.5,
                feeds=[FeedReport("a", "rss", new=n), FeedReport("b", "hn", failed=n == 2)],
            )
            HarvestState(v.catalog).save_report(report.started_at, report.to_json())
    listed = json.loads(runner.invoke(app, ["--vault", str(path), "reports", "--json"]).output)
    assert [e["id"] for e in listed["entries"]] == [3, 2, 1]
    assert [e["failed"] for e in listed["entries"]] == [1, 0, 0]
    assert listed["next"] is None
    first = runner.invoke(app, ["--vault", str(path), "reports", "--limit", "2"])
    assert first.exit_code == 0, first.output
    cursor = re.search(r"more: --cursor (\S+)", first.output)
    assert cursor
    rest = runner.invoke(app, ["--vault", str(path), "reports", "--cursor", cursor.group(1)])
    assert rest.exit_code == 0, rest.output
    assert rest.output.splitlines()[0] == "1 report(s), newest first"
    shown = runner.invoke(app, ["--vault", str(path), "reports", "2"])
    assert shown.exit_code == 0, shown.output
    assert f"harvest {at(60)}" in shown.output
    assert "2 of 2 feed(s) harvested" in shown.output
    whole = json.loads(runner.invoke(app, ["--vault", str(path), "reports", "2", "--json"]).output)
    assert whole["feeds"][0]["new"] == 1
    gone = runner.invoke(app, ["--vault", str(path), "reports", "9"])
    assert gone.exit_code == 1
    assert "no saved harvest report 9" in gone.output


def test_items_filters_naming_nothing_say_what_exists(tmp_path: Path) -> None:
    path = _vault(tmp_path)
    for args, message in (
        (
            ["--feed", "nope"],
            "feed 'nope': no item of this feed in the vault; feeds with items: a, b",
        ),
        (
            ["--source", "hn"],
            "source 'hn': no item of this source in the vault; sources with items: rss",
        ),
        (["--source", "rss", "--feed", "zz"], "feed 'zz': no item of this feed"),
    ):
        result = runner.invoke(app, ["--vault", str(path), "items", *args])
        assert result.exit_code == 1, result.output
        assert message in " ".join(result.output.split())
    # a filter that exists but matches nothing now is an empty page, not an error
    assert _items(path, "--feed", "b", "--since", "2030-01-01T00:00:00Z")[0].startswith("0 item(s)")
    error = runner.invoke(app, ["--vault", str(path), "items", "--feed", "nope", "--json"])
    assert json.loads(error.stderr)["error"]["code"] == "not_found"
