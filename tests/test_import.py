"""``import_files``: backfilling a real vault from the real shared corpora.

Every test imports real files (GH Archive hour, cassettes, a saved feed, an
HTML page served at a feed URL) into a real vault, then checks the counts the
report gives against what the vault holds, and that ``verify_vault`` passes.
HAR and WARC have no corpus files: they are written from corpus exchanges
with :func:`write_har` / :func:`write_warc`, and must import to exactly the
items the cassettes themselves give.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import structlog

from echo_archive.errors import VaultError
from echo_archive.harvest.importer import ImportReport, feed_for, import_files, route
from echo_archive.harvest.recordings import read_recording, write_har, write_warc
from echo_archive.harvest.workers import start_method
from echo_archive.index.items import list_items
from echo_archive.model import Exchange
from echo_archive.vault.vault import Vault
from echo_archive.vault.verify import verify_vault

from .conftest import lingering_children, shared_dir

HOUR = "2015-01-01-0.json.gz"
HN_DETAILS = "hackernews/topnews-vcr/hackernews_top_stories_details.yml"
HN_JOB = "hackernews/topnews-vcr/hacker_news_job.yml"
REDDIT_HOT = "reddit/praw/TestSubredditListings.test_hot.json"
GITHUB_EVENTS = "github/github3py/Repository_events.json"
GITHUB_ISSUES = "github/github3py/Repository_issues_state_all.json"
FRED_GDP = "fred/pyfredapi-2024/test_series__test_get_series[json].yaml"
TECHCRUNCH = "feeds/feedjira/TechCrunch.xml"
HTML_PAGE = "feeds/feedjira/titleunknown.xml"


def corpus(rel: str) -> Path:
    """A file of the shared corpora (skips when they are absent)."""
    return shared_dir("corpora") / rel


def run(path: Path, files: list[Path], **kwargs: Any) -> ImportReport:
    """Import ``files`` into the vault at ``path`` and check the vault verifies afterwards."""
    with Vault.open(path) as vault:
        report = import_files(vault, files, **kwargs)
        assert verify_vault(vault).ok
        assert report.checkpoint_size == vault.size
    return report


def items_of(path: Path) -> dict[tuple[str, str, str], str]:
    """(source, feed, native id) -> content digest of every item in the vault."""
    with Vault.open(path, readonly=True) as vault:
        rows = list_items(vault.catalog, limit=1_000_000)
        return {
            (r["source"], r["feed"], r["native_id"]): vault.entry(r["idx"]).meta["content_digest"]
            for r in rows
        }


def captures_of(path: Path) -> list[dict[str, Any]]:
    """The metadata of every capture entry, in log order."""
    with Vault.open(path, readonly=True) as vault:
        size = vault.size
        entries = [vault.entry(i) for i in range(size)]
    return [dict(e.meta) for e in entries if e.type == "capture"]


def fresh_vault(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    Vault.create(path, origin=f"echo.archive/{name}").close()
    return path


# --------------------------------------------------------------------------- routing


@pytest.mark.parametrize(
    ("url", "kind", "feed"),
    [
        ("https://hacker-news.firebaseio.com/v0/item/41245397.json", "hn", "import-hn"),
        ("https://hacker-news.firebaseio.com/v0/topstories.json", "hn", "import-hn"),
        ("https://hacker-news.firebaseio.com/v0/user/pg.json", "hn", None),
        ("https://oauth.reddit.com/r/python/hot?raw_json=1", "reddit", "import-reddit"),
        ("https://www.reddit.com/comments/abc.json", "reddit", "import-reddit"),
        ("https://api.github.com/repos/a/b/events", "github", "import-github"),
        ("https://api.github.com/users/u/received_events/public", "github", "import-github"),
        ("https://api.github.com/repos/A/B/issues?state=all", "github", "import-github/a/b"),
        ("https://api.github.com/repos/a/b/issues/7", "github", "import-github/a/b"),
        ("https://api.github.com/repos/a/b/issues/events", "github", None),
        ("https://api.github.com/repos/a/b/releases/latest", "github", "import-github"),
        ("https://api.github.com/rate_limit", "github", None),
        ("https://api.github.com/search/issues?q=x", "github", None),
        (
            "https://api.stlouisfed.org/fred/series/observations?series_id=GDP",
            "fred",
            "import-fred",
        ),
        ("https://fred.stlouisfed.org/graph/fredgraph.csv?id=GDP", "fred", "import-fred"),
        ("https://api.stlouisfed.org/fred/series/tags?series_id=GDP", "fred", None),
        ("https://example.com/feed.xml", None, None),
    ],
)
def test_route_and_feed_by_url(url: str, kind: str | None, feed: str | None) -> None:
    assert route(url) == kind
    found = feed_for(url)
    assert (found.name if found else None) == feed
    if found is not None:
        assert found.source == kind


# --------------------------------------------------------------------------- GH Archive


@pytest.mark.slow
def test_gharchive_hour_imports_every_event_once(
    vault_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hour = shared_dir("corpora", "gharchive") / HOUR
    started = time.perf_counter()
    first = run(vault_path, [hour])
    seconds = time.perf_counter() - started
    with capsys.disabled():
        print(f"\nGH Archive import: 7,702 items in {seconds:.2f} s, {7702 / seconds:,.0f} items/s")
    f = first.files[0]
    assert (f.kind, f.format, f.recognized) == ("gharchive", "gharchive", True)
    assert (f.new, f.versions, f.duplicates, f.items, f.captures) == (7702, 0, 0, 7702, 1)
    assert (f.broken_lines, f.parse_errors, f.unrecognized, f.error) == (0, 0, 0, None)
    assert f.recorded_from == f.recorded_to == "2015-01-01T00:00:00.000000Z"

    [capture] = captures_of(vault_path)
    assert capture["recorded_at"] == "2015-01-01T00:00:00.000000Z"
    assert capture["fetched_at"] == "2015-01-01T00:00:00.000000Z"
    assert capture["url"] == f"file:{HOUR}"
    assert capture["headers"]["content-type"] == "application/gzip"
    assert (capture["source"], capture["feed"]) == ("github", "import-github")
    with Vault.open(vault_path, readonly=True) as vault:
        entry = vault.entry(0)
        assert entry.logged_at != capture["recorded_at"]  # joined the log now, not in 2015
        assert entry.blobs[0].digest == hashlib.sha256(hour.read_bytes()).digest()
        assert vault.blobs.get(entry.blobs[0].digest) == hour.read_bytes()  # the file, exactly
        item = vault.entry(1)
        assert item.type == "item"
        assert item.meta["capture"].startswith("sha256:")
    items = items_of(vault_path)
    assert len(items) == 7702
    assert {key[:2] for key in items} == {("github", "import-github")}

    second = run(vault_path, [hour])
    g = second.files[0]
    assert (g.new, g.versions, g.duplicates, g.captures) == (0, 0, 7702, 1)
    assert len(items_of(vault_path)) == 7702


def test_gharchive_broken_lines_are_reported_not_fatal(vault_path: Path, tmp_path: Path) -> None:
    with gzip.open(shared_dir("corpora", "gharchive") / HOUR, "rb") as fh:
        lines = [fh.readline() for _ in range(3)]
    hour = tmp_path / "2015-01-01-5.json.gz"
    with gzip.open(hour, "wb") as out:
        out.write(lines[0] + b'{"id":"1","type":"PushEvent","act\n' + lines[1] + b"[1, 2]\n")
        out.write(lines[2][:40])  # the last line cut short
    report = run(vault_path, [hour])
    f = report.files[0]
    assert (f.kind, f.new, f.broken_lines) == ("gharchive", 2, 3)
    assert f.broken_line_numbers == [2, 4, 5]
    assert f.recorded_from == "2015-01-01T05:00:00.000000Z"
    [capture] = captures_of(vault_path)
    assert capture["parse_warning"].startswith("3 broken line(s) skipped (line 2, 4, 5)")
    assert capture["parse_error"] is None


# --------------------------------------------------------------------------- recordings


def test_hacker_news_cassette(vault_path: Path) -> None:
    report = run(vault_path, [corpus(HN_DETAILS)])
    f = report.files[0]
    assert (f.kind, f.format) == ("recording", "ruby-vcr")
    # 501 interactions: GET /v0/topstories.json (ids only, no items), then 500 items.
    assert (f.exchanges, f.captures, f.sources) == (501, 501, {"hn": 501})
    assert (f.new, f.versions, f.duplicates, f.parse_errors) == (500, 0, 0, 0)
    assert f.observations == 500  # score and descendants of every story
    assert (f.recorded_from, f.recorded_to) == (
        "2024-08-14T15:14:26.000000Z",
        "2024-08-14T15:15:22.000000Z",
    )
    captures = captures_of(vault_path)
    assert all(c["fetched_at"] == c["recorded_at"] for c in captures)
    assert {c["feed"] for c in captures} == {"import-hn"}


def test_reddit_cassette_skips_the_token_post(vault_path: Path) -> None:
    report = run(vault_path, [corpus(REDDIT_HOT)])
    f = report.files[0]
    assert (f.kind, f.format, f.exchanges, f.skipped) == ("recording", "vcrpy-json", 2, 1)
    assert (f.captures, f.new, f.duplicates, f.parse_errors) == (1, 102, 0, 0)
    assert {key[:2] for key in items_of(vault_path)} == {("reddit", "import-reddit")}
    [capture] = captures_of(vault_path)
    assert capture["method"] == "GET"
    assert capture["recorded_at"] == "2016-03-01T08:38:41.000000Z"


def test_github3py_cassette(vault_path: Path) -> None:
    report = run(vault_path, [corpus(GITHUB_EVENTS)])
    f = report.files[0]
    # GET /repos/sigmavirus24/github3.py (a repository object) is not read; the events page is.
    assert (f.exchanges, f.captures, f.new, f.unrecognized) == (2, 1, 100, 1)
    assert f.reasons == [
        "GET https://api.github.com/repos/sigmavirus24/github3.py: "
        "an endpoint the github source does not read"
    ]
    assert f.recognized  # the file is; one of its responses is not


def test_github_issues_get_a_feed_per_repository(vault_path: Path) -> None:
    report = run(vault_path, [corpus(GITHUB_ISSUES)])
    assert report.files[0].new == 150
    feeds = {key[1] for key in items_of(vault_path)}
    assert feeds == {"import-github/betamaxpy/betamax", "import-github/repositories/11439734"}


def test_fred_vcrpy_cassette(vault_path: Path) -> None:
    report = run(vault_path, [corpus(FRED_GDP)])
    f = report.files[0]
    assert (f.kind, f.format, f.exchanges, f.captures) == ("recording", "vcrpy", 4, 4)
    # Four GDP observation responses of 315 observations; one value differs between them.
    assert (f.items, f.new, f.versions, f.duplicates) == (1260, 315, 1, 944)
    captures = captures_of(vault_path)
    assert all(c["recorded_at"] is None for c in captures)  # vcrpy keeps no time
    assert all("api_key=REDACTED" in c["url"] or "api_key" not in c["url"] for c in captures)


def test_har_and_warc_give_the_cassettes_items(tmp_path: Path) -> None:
    cassettes = [corpus(HN_JOB), corpus(REDDIT_HOT)]
    exchanges: list[Exchange] = [e for path in cassettes for e in read_recording(path).exchanges]
    har, warc = tmp_path / "mixed.har", tmp_path / "mixed.warc.gz"
    write_har(exchanges, har)
    write_warc(exchanges, warc)

    direct = fresh_vault(tmp_path, "direct")
    run(direct, cassettes)
    expected = items_of(direct)
    assert len(expected) == 20 + 102

    for path, fmt in ((har, "har"), (warc, "warc")):
        vault = fresh_vault(tmp_path, fmt)
        report = run(vault, [path], batch_size=7)
        f = report.files[0]
        assert (f.kind, f.format, f.exchanges, f.skipped) == ("recording", fmt, 23, 1)
        assert (f.new, f.versions, f.captures) == (122, 0, 22)
        assert items_of(vault) == expected
        recorded = [c["recorded_at"] for c in captures_of(vault)]
        assert recorded == [c["recorded_at"] for c in captures_of(direct)]


def test_unrepresentable_item_is_left_out_and_the_rest_archived(
    vault_path: Path, tmp_path: Path
) -> None:
    base = "https://hacker-news.firebaseio.com/v0/item"
    good = {"id": 1, "type": "comment", "by": "a", "time": 1700000000, "parent": 2, "text": "x"}
    bad = {**good, "id": 3, "parent": 2**60}  # beyond I-JSON's 2^53: no canonical JSON
    exchanges = [
        Exchange("GET", f"{base}/{doc['id']}.json", 200, (), json.dumps(doc).encode())
        for doc in (good, bad)
    ]
    har = tmp_path / "hn.har"
    write_har(exchanges, har)
    report = run(vault_path, [har])
    f = report.files[0]
    assert (f.captures, f.new) == (2, 1)
    assert f.problem_count == 1
    assert "'3' left out" in f.problems[0]
    warnings = [c["parse_warning"] for c in captures_of(vault_path)]
    assert warnings[0] is None
    assert "1 item(s) left out" in warnings[1]


# --------------------------------------------------------------------------- documents


def test_saved_feed_document(vault_path: Path) -> None:
    report = run(vault_path, [corpus(TECHCRUNCH)])
    f = report.files[0]
    assert (f.kind, f.format, f.captures, f.new) == ("feed", "rss20", 1, 20)
    assert {key[:2] for key in items_of(vault_path)} == {("rss", "import-rss/techcrunch.com")}
    [capture] = captures_of(vault_path)
    assert capture["url"] == "file:TechCrunch.xml"
    assert capture["headers"]["content-type"] == "application/rss+xml"
    assert capture["recorded_at"] is None


def test_html_page_and_garbage_are_not_recognized(vault_path: Path, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(bytes(range(256)) * 8)
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    report = run(vault_path, [corpus(HTML_PAGE), garbage, empty])
    for f in report.files:
        assert (f.kind, f.recognized, f.captures, f.unrecognized) == ("unrecognized", False, 0, 1)
    assert "not a feed: HTML page titled" in report.files[0].reasons[0]
    assert "not a recording" in report.files[1].reasons[0]
    assert "the file is empty" in report.files[2].reasons[0]
    assert not report.all_recognized
    with Vault.open(vault_path, readonly=True) as vault:
        assert vault.size == 0  # nothing written


def test_a_mix_bad_files_do_not_stop_good_ones(vault_path: Path, tmp_path: Path) -> None:
    garbage = tmp_path / "noise.yml"
    garbage.write_text("interactions: [1, 2\n")  # YAML that does not parse
    broken = tmp_path / "broken.json"
    broken.write_text('{"interactions": [{"request": {}}]}')  # every interaction malformed
    missing = tmp_path / "missing.har"
    files = [
        garbage,
        corpus(HN_JOB),
        missing,
        broken,
        corpus(HTML_PAGE),
        corpus(TECHCRUNCH),
        tmp_path,  # a directory
    ]
    report = run(vault_path, files)
    kinds = [f.kind for f in report.files]
    assert kinds == ["unrecognized", "recording", "error", "error", "unrecognized", "feed", "error"]
    assert "No such file" in (report.files[2].error or "")
    assert "malformed" in (report.files[3].error or "")
    totals = report.totals()
    assert (totals["files"], totals["recognized_files"]) == (7, 2)
    assert (totals["new"], totals["captures"]) == (40, 22)
    data = json.loads(json.dumps(report.to_json()))
    assert data["all_recognized"] is False
    assert [f["recognized"] for f in data["files"]] == [k in ("recording", "feed") for k in kinds]


def test_import_needs_the_writer(vault_path: Path) -> None:
    with Vault.open(vault_path, readonly=True) as vault, pytest.raises(VaultError):
        import_files(vault, [])
    with Vault.open(vault_path) as vault, pytest.raises(ValueError, match="batch_size"):
        import_files(vault, [], batch_size=0)


# --------------------------------------------------------------------------- reading in workers

PARALLEL_SET = [
    REDDIT_HOT,
    HN_DETAILS,
    GITHUB_EVENTS,
    GITHUB_ISSUES,
    FRED_GDP,
    TECHCRUNCH,
    HTML_PAGE,
    HN_JOB,
]


def _log_shape(path: Path) -> list[tuple[str, str, str]]:
    """Per entry: type, feed (or source) and native id / URL: the log without its times."""
    with Vault.open(path, readonly=True) as vault:
        entries = [vault.entry(i) for i in range(vault.size)]
    return [
        (e.type, str(e.meta.get("feed")), str(e.meta.get("native_id", e.meta.get("url"))))
        for e in entries
    ]


def _counts(report: ImportReport) -> list[tuple[Any, ...]]:
    return [
        (f.kind, f.format, f.exchanges, f.captures, f.new, f.versions, f.duplicates, f.items)
        for f in report.files
    ]


@pytest.mark.slow
def test_workers_import_exactly_what_one_process_imports(tmp_path: Path) -> None:
    files = [corpus(rel) for rel in PARALLEL_SET] * 2  # the second pass: duplicates only
    serial = run(fresh_vault(tmp_path, "serial"), files, workers=0)
    parallel = run(fresh_vault(tmp_path, "parallel"), files, workers=2)
    assert _counts(parallel) == _counts(serial)
    assert serial.totals()["new"] > 500
    assert parallel.totals()["new"] == serial.totals()["new"]
    # Same entries in the same order: the log order is the order of the files.
    assert _log_shape(tmp_path / "parallel") == _log_shape(tmp_path / "serial")
    assert items_of(tmp_path / "parallel") == items_of(tmp_path / "serial")


_KILL: dict[str, Any] = {}


def _dies_on_the_victim(path: Path, batch_size: int) -> Any:
    """``_read_whole``, except that a worker handed the victim file is SIGKILLed."""
    if path == _KILL["victim"] and os.getpid() != _KILL["parent"]:
        os.kill(os.getpid(), signal.SIGKILL)  # a worker crash (OOM killer, segfault)
    return _KILL["real"](path, batch_size)


@pytest.mark.slow
def test_a_worker_killed_mid_import_costs_only_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import echo_archive.harvest.importer as importer

    if start_method() != "fork":
        pytest.skip("the patched reader reaches the workers only when they are forked")
    files = [corpus(rel) for rel in PARALLEL_SET]
    serial = run(fresh_vault(tmp_path, "serial"), files, workers=0)
    _KILL.update(victim=corpus(FRED_GDP), parent=os.getpid(), real=importer._read_whole)
    monkeypatch.setattr(importer, "_read_whole", _dies_on_the_victim)
    with structlog.testing.capture_logs() as logs:
        survived = run(fresh_vault(tmp_path, "survived"), files, workers=2)
    failed = [e for e in logs if e["event"] == "import.worker_failed"]
    assert failed, "no worker was killed: the test did not test anything"
    assert "BrokenProcessPool" in failed[0]["error"]
    assert _counts(survived) == _counts(serial)
    assert _log_shape(tmp_path / "survived") == _log_shape(tmp_path / "serial")
    # The broken pool's other workers are gone too: one left behind blocks the
    # interpreter's exit forever (it joins its children).
    assert not lingering_children(20)


@pytest.mark.slow
def test_files_above_the_stream_limit_are_read_here_batch_by_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import echo_archive.harvest.importer as importer

    submitted: list[Path] = []
    real_submit = importer._submit

    def spy(pool: Any, path: Path, batch_size: int) -> Any:
        future = real_submit(pool, path, batch_size)
        if future is not None:
            submitted.append(path)
        return future

    monkeypatch.setattr(importer, "STREAM_ABOVE", 100_000)
    monkeypatch.setattr(importer, "_submit", spy)
    files = [corpus(HN_DETAILS), corpus(HN_JOB), corpus(REDDIT_HOT)]
    sizes = {f: f.stat().st_size for f in files}
    assert sizes[files[0]] > 100_000 > sizes[files[1]]
    report = run(fresh_vault(tmp_path, "streamed"), files, workers=2, batch_size=50)
    assert submitted == [f for f in files if sizes[f] <= 100_000]
    details = report.files[0]
    assert details.captures == 501  # streamed in commits of 50 exchanges
    assert details.new == 500
    serial = run(fresh_vault(tmp_path, "serial"), files, workers=0, batch_size=50)
    assert _counts(report) == _counts(serial)


def test_workers_must_not_be_negative(vault_path: Path) -> None:
    with Vault.open(vault_path) as vault, pytest.raises(ValueError, match="workers"):
        import_files(vault, [], workers=-1)
