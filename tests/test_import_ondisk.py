"""``import_files`` on what users have on disk (issue 9, Fidelity), and two recording fixes.

Real files of the shared corpora, read in place: the FRED CSV downloads, and
bodies taken byte for byte out of the corpus cassettes and saved as a user
saves them (``item/41247023.json``, ``topstories.json``, ``GDP.json``), then
hostile variants (a vintage CSV with holes, a JSON Feed cut mid-string, ids
with no list name, a bare integer). Each is imported into a real vault that
must verify afterwards; what it holds is read back from the catalog.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from echo_archive.harvest.importer import Hints, ImportReport, import_files
from echo_archive.harvest.recordings import read_recording, sniff_format
from echo_archive.index.items import list_items
from echo_archive.model import Exchange, Request
from echo_archive.sources.fred import parse_csv
from echo_archive.sources.registry import get_source
from echo_archive.vault.vault import Vault
from echo_archive.vault.verify import verify_vault

from .conftest import run_echoctl, shared_dir
from .independent import fred_csv_objects

HN_JOB = "hackernews/topnews-vcr/hacker_news_job.yml"
FRED_GDP = "fred/pyfredapi-2024/test_series__test_get_series[json].yaml"
FRED_VINTAGES = "fred/pyfredapi-2024/test_series__test_get_series_all_releases[json].yaml"
JSON_FEED = "feeds/feedjira/json_feed.json"
PYGITHUB_RELEASE = "github/pygithub/GitRelease.testGetLatestRelease.txt"
REDDIT_PRAW = "reddit/praw/TestSubredditListings.test_hot.json"


def corpus(rel: str) -> Path:
    return shared_dir("corpora") / rel


def run(path: Path, files: list[Path], **kwargs: Any) -> ImportReport:
    """Import ``files`` (no workers) and check the vault verifies afterwards."""
    with Vault.open(path) as vault:
        report = import_files(vault, files, workers=0, **kwargs)
        assert verify_vault(vault).ok
    return report


def items(path: Path) -> dict[str, dict[str, Any]]:
    """Native id -> the catalog row of every item in the vault."""
    with Vault.open(path, readonly=True) as vault:
        return {r["native_id"]: r for r in list_items(vault.catalog, limit=1_000_000)}


def capture_metas(path: Path) -> list[dict[str, Any]]:
    with Vault.open(path, readonly=True) as vault:
        entries = [vault.entry(i) for i in range(vault.size)]
    return [dict(e.meta) for e in entries if e.type == "capture"]


def item_docs(path: Path) -> dict[str, dict[str, Any]]:
    """Native id -> the item blob (latest) of every item and version entry."""
    with Vault.open(path, readonly=True) as vault:
        out = {}
        for _, entry in vault.iter_entries(0):
            if entry.type in ("item", "version"):
                doc = json.loads(vault.blob(entry.blobs[0].digest))
                out[doc["native_id"]] = doc
        return out


def recorded(rel: str, contains: str) -> Exchange:
    """The first recorded exchange of a corpus cassette whose URL contains ``contains``."""
    return next(e for e in read_recording(corpus(rel)).exchanges if contains in e.url)


# --------------------------------------------------------------------------- FRED CSV


@pytest.mark.slow
def test_corpus_fred_csv_downloads_are_archived_cell_by_cell(vault_path: Path) -> None:
    files = sorted(corpus("fred/csv").glob("*.csv"))
    report = run(vault_path, files)
    assert [(f.kind, f.format, f.new, f.parse_errors) for f in report.files] == [
        ("body", "fred-csv", 15395, 0),
        ("body", "fred-csv", 5070, 0),
        ("body", "fred-csv", 624, 0),
    ]
    held = item_docs(vault_path)
    expected = [obj for path in files for obj in fred_csv_objects(path)]
    assert len(expected) == 21_089
    for obj in expected:  # every cell, "." (missing) kept as FRED writes it
        doc = held[obj.native_id]
        assert doc["text"] == obj.fields["text"], obj.where
        assert doc["extra"]["missing"] == (obj.fields["text"] == "."), obj.where
    assert sum(d["extra"]["missing"] for d in held.values()) == 871
    captures = capture_metas(vault_path)
    assert [c["url"] for c in captures] == [f"file:{p.name}" for p in files]


def test_alfred_vintage_csv_columns_are_vintages() -> None:
    body = (
        b"observation_date,GDP_20200730,GDP_20200827,GDP_2020_13_01\r\n"
        b"2020-01-01,21561.139,21561.100,7\r\n"
        b"2020-04-01,,.,8\r\n"
    )
    found = {i.native_id: i for i in parse_csv(body, "file:x.csv", feed_name="f")}
    # the empty cell of the first vintage: no observation in that vintage
    assert sorted(found) == [
        "GDP:2020-01-01@2020-07-30",
        "GDP:2020-01-01@2020-08-27",
        "GDP:2020-04-01@2020-08-27",
        "GDP_2020_13_01:2020-01-01",  # not a date: an ordinary series column
        "GDP_2020_13_01:2020-04-01",
    ]
    first = found["GDP:2020-01-01@2020-07-30"]
    assert first.extra["realtime_start"] == "2020-07-30"
    assert first.extra["realtime_end"] == "2020-08-26"  # the day before the next vintage
    assert first.published_at == "2020-07-30T00:00:00.000000Z"
    last = found["GDP:2020-04-01@2020-08-27"]
    assert (last.text, last.extra["missing"], last.extra["realtime_end"]) == (
        ".",
        True,
        "9999-12-31",
    )
    assert first.extra["series_id"] == "GDP"


def test_hostile_fred_csv_is_kept_with_its_parse_error(vault_path: Path, tmp_path: Path) -> None:
    bad = tmp_path / "DGS10.csv"
    bad.write_bytes(b"DATE,DGS10\n1962-01-02,4.06\n1962-01-03,4.03,9\n")
    report = run(vault_path, [bad])
    f = report.files[0]
    assert (f.kind, f.format, f.captures, f.parse_errors, f.new) == ("body", "fred-csv", 1, 1, 0)
    assert "expected 2 fields, found 3" in f.parse_error_samples[0]
    assert "line 3" in f.parse_error_samples[0]


# --------------------------------------------------------------------------- saved bodies


def test_saved_hacker_news_item_and_list_bodies(vault_path: Path, tmp_path: Path) -> None:
    item = recorded(HN_JOB, "/item/41247023.json")
    stories = recorded(HN_JOB, "/topstories.json")
    (tmp_path / "item").mkdir()
    saved_item = tmp_path / "item" / "41247023.json"
    saved_item.write_bytes(item.body)
    saved_list = tmp_path / "topstories.json"
    saved_list.write_bytes(stories.body)
    report = run(vault_path, [saved_item, saved_list])
    assert [(f.kind, f.format, f.captures, f.new) for f in report.files] == [
        ("body", "hn-item", 1, 1),
        ("body", "hn-list", 1, 0),  # a list names items; it holds none
    ]
    row = items(vault_path)["41247023"]
    assert (row["source"], row["feed"]) == ("hn", "import-hn")
    doc = item_docs(vault_path)["41247023"]
    assert doc["title"] == json.loads(item.body)["title"]
    assert [c["url"] for c in capture_metas(vault_path)] == [
        "file:41247023.json",
        "file:topstories.json",
    ]


def test_ids_without_a_list_name_need_source_hn(vault_path: Path, tmp_path: Path) -> None:
    ids = tmp_path / "saved.json"
    ids.write_bytes(recorded(HN_JOB, "/topstories.json").body)
    f = run(vault_path, [ids]).files[0]
    assert f.kind == "unrecognized"
    assert "looks like a Hacker News story list body" in f.reasons[0]
    assert "`--source hn`" in f.reasons[0]
    f = run(vault_path, [ids], hints=Hints(source="hn")).files[0]
    assert (f.kind, f.format, f.captures) == ("body", "hn-list", 1)


def test_saved_fred_observations_body_series_from_name_or_hint(
    vault_path: Path, tmp_path: Path
) -> None:
    page = recorded(FRED_GDP, "series_id=GDP")
    named = tmp_path / "GDP.json"
    named.write_bytes(page.body)
    anonymous = tmp_path / "observations.json"
    anonymous.write_bytes(page.body)
    report = run(vault_path, [named, anonymous])
    live = get_source("fred").parse(
        get_source("fred").import_feed(page.url),  # type: ignore[arg-type]
        Request(url=page.url),
        page,
    )
    first, second = report.files
    assert (first.kind, first.format, first.new) == ("body", "fred-json", len(live.items))
    assert second.kind == "unrecognized"
    assert "give the series with `--series ID`" in second.reasons[0]
    held = items(vault_path)
    assert {i.native_id for i in live.items} <= set(held)
    # with --series the anonymous file is the same series: duplicates, nothing new
    f = run(vault_path, [anonymous], hints=Hints(series="GDP")).files[0]
    assert (f.kind, f.new, f.duplicates) == ("body", 0, len(live.items))


@pytest.mark.slow
def test_saved_fred_vintage_body_is_read_as_vintages(vault_path: Path, tmp_path: Path) -> None:
    page = recorded(FRED_VINTAGES, "realtime_start=1776-07-04")
    saved = tmp_path / "GDP.json"
    saved.write_bytes(page.body)
    f = run(vault_path, [saved]).files[0]
    live = get_source("fred").parse(
        get_source("fred").import_feed(page.url),  # type: ignore[arg-type]
        Request(url=page.url),
        page,
    )
    assert all("@" in i.native_id for i in live.items)
    assert (f.kind, f.new) == ("body", len({i.native_id for i in live.items}))
    assert {i.native_id for i in live.items} == set(items(vault_path))


def test_unrecognized_files_say_what_they_look_like(vault_path: Path, tmp_path: Path) -> None:
    maxitem = tmp_path / "maxitem.json"
    maxitem.write_bytes(b"41250000\n")
    page = tmp_path / "page.html"
    page.write_bytes(b"<!DOCTYPE html><html><body>hello</body></html>")
    other = tmp_path / "other.json"
    other.write_bytes(b'{"a": 1, "b": [2]}')
    report = run(vault_path, [maxitem, page, other])
    assert [f.kind for f in report.files] == ["unrecognized"] * 3
    integer, html, obj = (f.reasons[0] for f in report.files)
    assert integer.startswith("JSON: the integer 41250000")
    assert "use `echoctl add` to archive it as a file" in integer
    assert "use `echoctl add` to archive it as a file" in html
    assert obj.startswith("JSON: an object (keys: a, b)")
    assert capture_metas(vault_path) == []  # nothing written
    assert sniff_format(maxitem) is None


def test_source_hint_on_a_file_that_is_not_json(vault_path: Path, tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_bytes(b"not json at all")
    f = run(vault_path, [text], hints=Hints(source="hn")).files[0]
    assert f.kind == "unrecognized"
    assert "--source hn" in f.reasons[0]


@pytest.mark.slow
def test_cli_import_source_and_series_options(vault_path: Path, tmp_path: Path) -> None:
    anonymous = tmp_path / "observations.json"
    anonymous.write_bytes(recorded(FRED_GDP, "series_id=GDP").body)
    done = run_echoctl("--vault", str(vault_path), "import", "--json", str(anonymous))
    assert done.returncode == 1, done.stderr
    assert "--series ID" in json.loads(done.stdout)["files"][0]["reasons"][0]
    done = run_echoctl(
        "--vault", str(vault_path), "import", "--json", "--series", "GDP", str(anonymous)
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["files"][0]["format"] == "fred-json"
    done = run_echoctl("--vault", str(vault_path), "import", "--source", "rss", str(anonymous))
    assert done.returncode == 2
    assert "hn, fred" in done.stderr
    done = run_echoctl("--vault", str(vault_path), "import", "--series", "G D P", str(anonymous))
    assert done.returncode == 2
    assert "not a FRED series id" in done.stderr


# --------------------------------------------------------------------------- JSON Feed


def _cut_feed(tmp_path: Path, cut_after_items: int, extra: bytes) -> tuple[Path, list[str]]:
    """The corpus JSON Feed cut ``extra`` bytes into its entry ``cut_after_items``."""
    body = corpus(JSON_FEED).read_bytes()
    doc = json.loads(body)
    ids = [i["id"] for i in doc["items"]]
    start = body.index(json.dumps(ids[cut_after_items])[1:-1].encode())
    path = tmp_path / "feed.json"
    path.write_bytes(body[: start + extra.__len__()])
    return path, ids[:cut_after_items]


def test_truncated_json_feed_keeps_its_complete_entries(vault_path: Path, tmp_path: Path) -> None:
    path, complete = _cut_feed(tmp_path, 7, b"http://ine")
    f = run(vault_path, [path]).files[0]
    assert (f.kind, f.format, f.new) == ("feed", "json10", 7)
    assert sorted(items(vault_path)) == sorted(complete)
    (capture,) = capture_metas(vault_path)
    assert capture["truncated"] is True
    assert "document truncated" in capture["parse_warning"]


def test_json_feed_cut_inside_a_string_with_brackets(vault_path: Path, tmp_path: Path) -> None:
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "t",
        "items": [
            {"id": "a", "content_text": 'x}] "quoted" \\ ]}'},
            {"id": "b", "content_text": "has } and ] inside, cut here: }]"},
        ],
    }
    body = json.dumps(feed).encode()
    path = tmp_path / "cut.json"
    path.write_bytes(body[: body.index(b"cut here") + 4])
    f = run(vault_path, [path]).files[0]
    assert (f.kind, f.new) == ("feed", 1)
    assert item_docs(vault_path)["a"]["text"] == 'x}] "quoted" \\ ]}'


def test_json_feed_cut_before_any_entry_stays_unrecognized(
    vault_path: Path, tmp_path: Path
) -> None:
    path = tmp_path / "cut.json"
    path.write_bytes(
        b'{"version": "https://jsonfeed.org/version/1.1", "title": "t", "items": [{"id'
    )
    f = run(vault_path, [path]).files[0]
    assert f.kind == "unrecognized"
    assert "malformed feed" in f.reasons[0]


# --------------------------------------------------------------------------- recordings


def _octokit_cassette(tmp_path: Path, uri: str) -> Path:
    """A Ruby VCR JSON cassette (VCR's :json serializer) holding a real release body."""
    release = recorded(PYGITHUB_RELEASE, "/releases/latest")
    cassette = {
        "http_interactions": [
            {
                "request": {
                    "method": "get",
                    "uri": uri,
                    "body": {"encoding": "US-ASCII", "string": ""},
                    "headers": {"Accept": ["application/vnd.github.v3+json"]},
                },
                "response": {
                    "status": {"code": 200, "message": "OK"},
                    "headers": {"Content-Type": ["application/json; charset=utf-8"]},
                    "body": {"encoding": "UTF-8", "string": f"[{release.body.decode()}]"},
                },
                "recorded_at": "Tue, 01 Oct 2019 10:00:00 GMT",
            }
        ],
        "recorded_with": "VCR 5.0.0",
    }
    path = tmp_path / "releases.json"
    path.write_text(json.dumps(cassette))
    return path


@pytest.mark.parametrize(
    "uri",
    [
        "https://api.github.com/repos/api-playground/<GITHUB_TEST_REPOSITORY>/releases",
        "https://api.github.com/repos/%3CGITHUB_TEST_ORGANIZATION%3E/<GITHUB_TEST_REPOSITORY>/releases",
    ],
)
def test_placeholder_urls_keep_their_releases(vault_path: Path, tmp_path: Path, uri: str) -> None:
    f = run(vault_path, [_octokit_cassette(tmp_path, uri)]).files[0]
    assert (f.kind, f.format) == ("recording", "ruby-vcr-json")
    assert (f.parse_errors, f.new) == (0, 1)
    (native_id,) = items(vault_path)
    assert native_id.startswith("release:")


def test_json_cassettes_are_named_by_their_format(tmp_path: Path) -> None:
    assert sniff_format(corpus(REDDIT_PRAW)) == "vcrpy-json"
    ruby = _octokit_cassette(tmp_path, "https://api.github.com/repos/o/r/releases")
    assert sniff_format(ruby) == "ruby-vcr-json"
    assert read_recording(ruby).format == "ruby-vcr-json"
    assert sniff_format(corpus("github/github3py/Repository_events.json")) == "betamax"
