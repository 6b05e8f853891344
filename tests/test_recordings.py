"""The recording readers against the real shared corpora, plus HAR and WARC round trips.

Every cassette and replay file under ``../shared/corpora/{reddit,github,hackernews,fred}``
is read; the detected formats, interaction counts and status histograms must equal what
the corpora README states. HAR and WARC have no corpus files, so those readers are tested
by writing real corpus exchanges out (with :func:`write_har`, :func:`write_warc` and
warcio's own writer) and reading them back.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import tempfile
import tracemalloc
import zlib
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from echo_archive.errors import RecordingError
from echo_archive.harvest.recordings import (
    FORMATS,
    Recording,
    iter_exchanges,
    read_betamax,
    read_exvcr,
    read_har,
    read_pygithub,
    read_recording,
    read_ruby_vcr,
    read_vcrpy,
    read_warc,
    sniff_format,
    write_har,
    write_warc,
)
from echo_archive.model import Exchange

from .conftest import shared_dir

FOLDERS = ("reddit", "github", "hackernews", "fred")

# (folder, subfolder) -> (format the README names, number of recording files)
#: The corpora README calls the PRAW/prawcore cassettes "betamax JSON"; they are
#: vcrpy's JSON serializer ({"interactions", "version": 1}, no "recorded_with";
#: PRAW and prawcore record with vcrpy), and reports name them so (issue 9).
LAYOUT = {
    ("reddit", "praw"): ("vcrpy-json", 50),
    ("reddit", "prawcore"): ("vcrpy-json", 27),
    ("github", "github3py"): ("betamax", 19),
    ("github", "pygithub"): ("pygithub", 65),
    ("hackernews", "topnews-vcr"): ("ruby-vcr", 5),
    ("hackernews", "hack_pop-exvcr"): ("exvcr", 2),
    ("fred", "pyfredapi-2022"): ("vcrpy", 4),
    ("fred", "pyfredapi-2024"): ("vcrpy", 18),
}

INTERACTIONS = {"reddit": 261, "github": 297, "hackernews": 557, "fred": 160}

STATUSES = {
    "reddit": Counter(
        {200: 204, 400: 12, 404: 6, 500: 4, 403: 4}
        | {code: 3 for code in (502, 503, 504, 520, 522)}
        | {code: 2 for code in (204, 401, 301, 302, 429)}
        | {code: 1 for code in (202, 205, 409, 414, 415, 451)}
    ),
    "github": Counter(
        {200: 243, 304: 25, 502: 7, 301: 4, 204: 4, 404: 4, 202: 3, 403: 3}
        | {code: 1 for code in (400, 401, 500, 503)}
    ),
    "hackernews": Counter({200: 557}),
    "fred": Counter({200: 149, 500: 7, 400: 4}),
}

# Provenance notes and the raw payload files (feeds, CSV, GH Archive) are not recordings.
NOT_RECORDINGS = {"PROVENANCE.md", "provenance.json"}
RAW_PAYLOAD_DIRS = {"csv", "feeds", "gharchive"}


def recording_files(folder: str) -> list[Path]:
    """Every recording file under a corpus folder (walked, not listed by hand)."""
    root = shared_dir("corpora", folder)
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file()
        and path.name not in NOT_RECORDINGS
        and not RAW_PAYLOAD_DIRS.intersection(path.relative_to(root).parts)
    )


@pytest.fixture(scope="module")
def corpus() -> dict[str, list[Recording]]:
    """Every corpus recording, read once, by folder."""
    return {
        folder: [read_recording(path) for path in recording_files(folder)] for folder in FOLDERS
    }


@pytest.fixture(scope="module")
def all_exchanges(corpus: dict[str, list[Recording]]) -> list[Exchange]:
    """Every exchange of the corpora, in folder and file order."""
    return [ex for folder in FOLDERS for rec in corpus[folder] for ex in rec.exchanges]


def by_name(corpus: dict[str, list[Recording]], folder: str, name: str) -> Recording:
    """The recording of the file called ``name`` in ``folder``."""
    (found,) = [rec for rec in corpus[folder] if rec.path.name == name]
    return found


def same_exchange(a: Exchange, b: Exchange) -> None:
    """Assert that ``b`` (read back from an export) carries everything ``a`` had."""
    assert (b.method, b.url, b.final_url, b.status) == (a.method, a.url, a.final_url, a.status)
    assert b.headers == a.headers
    assert b.request_headers == a.request_headers
    assert b.body == a.body
    if a.recorded_at is not None:
        assert b.recorded_at == a.recorded_at
        assert b.fetched_at == a.fetched_at


# --------------------------------------------------------------------------- corpus


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_file_is_read_with_the_format_the_readme_names(
    folder: str, corpus: dict[str, list[Recording]]
) -> None:
    files_per_subfolder: Counter[str] = Counter()
    for recording in corpus[folder]:
        subfolder = recording.path.parent.name
        expected_format, _ = LAYOUT[(folder, subfolder)]
        assert recording.format == expected_format, recording.path
        assert recording.format in FORMATS
        assert sniff_format(recording.path) == expected_format
        files_per_subfolder[subfolder] += 1
    expected = {sub: count for (top, sub), (_, count) in LAYOUT.items() if top == folder}
    assert dict(files_per_subfolder) == expected


@pytest.mark.parametrize("folder", FOLDERS)
def test_no_corpus_file_has_problems(folder: str, corpus: dict[str, list[Recording]]) -> None:
    # No known problems: every interaction of the shared corpora reads cleanly.
    assert {rec.path.name: rec.problems for rec in corpus[folder] if rec.problems} == {}


@pytest.mark.parametrize("folder", FOLDERS)
def test_interaction_counts_equal_the_readme(
    folder: str, corpus: dict[str, list[Recording]]
) -> None:
    assert sum(len(rec.exchanges) for rec in corpus[folder]) == INTERACTIONS[folder]


@pytest.mark.parametrize("folder", FOLDERS)
def test_status_histograms_equal_the_readme(
    folder: str, corpus: dict[str, list[Recording]]
) -> None:
    histogram = Counter(ex.status for rec in corpus[folder] for ex in rec.exchanges)
    assert histogram == STATUSES[folder]


def test_exchange_fields_are_filled(all_exchanges: list[Exchange]) -> None:
    for ex in all_exchanges:
        assert ex.method in {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"}
        assert ex.url.startswith("https://")
        assert ex.final_url
        assert ex.fetched_at == (ex.recorded_at or "")
        if ex.recorded_at is not None:
            assert len(ex.recorded_at) == len("2016-03-22T05:49:01.000000Z")
            assert ex.recorded_at.endswith("Z")
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in ex.headers)


def test_github3py_gzip_bodies_are_gunzipped(corpus: dict[str, list[Recording]]) -> None:
    # Count the gzip bodies in the raw cassettes independently of the reader.
    gzip_count = 0
    for recording in corpus["github"]:
        if recording.format != "betamax":
            continue
        raw = json.loads(recording.path.read_bytes())["http_interactions"]
        assert len(raw) == len(recording.exchanges)
        for interaction, ex in zip(raw, recording.exchanges, strict=True):
            encoded = interaction["response"]["body"].get("base64_string")
            if not encoded:
                continue
            stored = base64.b64decode(encoded)
            assert stored[:2] == b"\x1f\x8b"
            gzip_count += 1
            assert ex.body == gzip.decompress(stored)
            assert ex.body[:2] != b"\x1f\x8b"
            assert json.loads(ex.body) is not None
            assert (ex.header("content-encoding") or "").lower() == "gzip"
    assert gzip_count == 37


def test_github3py_variants(corpus: dict[str, list[Recording]]) -> None:
    # 2013-era file: "status_code" instead of "status", headers as plain strings.
    rate = by_name(corpus, "github", "GitHub_rate_limit.json").exchanges[0]
    assert rate.status == 200
    assert rate.recorded_at == "2013-12-11T14:04:30.000000Z"
    assert rate.header("X-RateLimit-Limit") == "60"
    assert json.loads(rate.body)["resources"]["core"]["limit"] == 60
    # 2021 file: header values as lists.
    stars = by_name(corpus, "github", "Repository_stargazers.json").exchanges
    assert [ex.status for ex in stars] == [301, 200, 200, 200, 200, 200, 200]
    assert stars[1].final_url == "https://api.github.com/repositories/11439734"


def test_hackernews_binary_bodies_are_base64_decoded(
    corpus: dict[str, list[Recording]],
) -> None:
    tagged = sum(
        rec.path.read_text("utf-8").count("string: !binary")
        for rec in corpus["hackernews"]
        if rec.format == "ruby-vcr"
    )
    non_ascii = sum(
        not ex.body.isascii()
        for rec in corpus["hackernews"]
        if rec.format == "ruby-vcr"
        for ex in rec.exchanges
    )
    assert tagged == non_ascii == 55
    job = by_name(corpus, "hackernews", "hacker_news_job.yml")
    (promi,) = [ex for ex in job.exchanges if ex.url.endswith("/v0/item/41247211.json")]
    text = promi.body.decode("utf-8")
    assert not text.isascii()
    item = json.loads(text)
    assert item["title"] == "Launch HN: Promi (YC S24) \u2013 AI-powered ecommerce discounts"
    assert item["by"] == "pmoot"
    assert "We\u2019re Peter and Jiaxin" in item["text"]
    assert len(promi.body) == int(promi.header("content-length") or 0) == 3791
    assert promi.recorded_at == "2024-08-14T16:45:23.000000Z"
    assert promi.method == "GET"


def test_hackernews_details_cassette(corpus: dict[str, list[Recording]]) -> None:
    details = by_name(corpus, "hackernews", "hackernews_top_stories_details.yml").exchanges
    assert len(details) == 501
    ids = json.loads(details[0].body)
    assert details[0].url == "https://hacker-news.firebaseio.com/v0/topstories.json"
    assert len(ids) == 500
    assert [ex.url.rsplit("/", 1)[1] for ex in details[1:]] == [f"{i}.json" for i in ids]
    assert details[0].request_headers[-1] == ("Host", "hacker-news.firebaseio.com")


def test_exvcr_bodies_match_their_byte_content_length(
    corpus: dict[str, list[Recording]],
) -> None:
    exvcr = [ex for rec in corpus["hackernews"] if rec.format == "exvcr" for ex in rec.exchanges]
    assert len(exvcr) == 32
    assert all(len(ex.body) == int(ex.header("Content-Length") or -1) for ex in exvcr)
    assert sum(len(ex.body.decode()) != len(ex.body) for ex in exvcr) == 4
    assert all(ex.recorded_at is None and ex.request_headers == () for ex in exvcr)


def test_fred_2022_binary_gzip_bodies(corpus: dict[str, list[Recording]]) -> None:
    decoded = 0
    for recording in corpus["fred"]:
        if recording.path.parent.name != "pyfredapi-2022":
            continue
        raw = yaml.safe_load(recording.path.read_bytes())["interactions"]
        for interaction, ex in zip(raw, recording.exchanges, strict=True):
            stored = interaction["response"]["body"]["string"]
            if isinstance(stored, bytes):
                assert stored[:2] == b"\x1f\x8b"
                assert ex.body == gzip.decompress(stored)
                decoded += 1
            assert isinstance(json.loads(ex.body), dict)
    assert decoded == 76
    # None of the 2022 bodies is a series/observations response; the real values are these.
    releases = by_name(corpus, "fred", "test_get_series_releases.yaml").exchanges[0]
    assert releases.header("Content-Encoding") == "gzip"
    assert json.loads(releases.body)["releases"][0]["id"] == 53
    errors = by_name(corpus, "fred", "test_get_geoseries_info.yaml").exchanges
    assert [ex.status for ex in errors] == [500] * 7 + [200] * 4
    assert errors[0].url.startswith("https://api.stlouisfed.org/geofred//series/group?")
    assert json.loads(errors[0].body) == {
        "error_code": 500,
        "error_message": "Internal Server Error",
    }


def test_fred_2024_stale_gzip_header_bodies(corpus: dict[str, list[Recording]]) -> None:
    stale = [
        ex
        for rec in corpus["fred"]
        if rec.path.parent.name == "pyfredapi-2024"
        for ex in rec.exchanges
        if ex.header("content-encoding") == "gzip"
    ]
    assert len(stale) == 66
    assert all(isinstance(json.loads(ex.body), dict) for ex in stale)
    with_observations = [ex for ex in stale if "observations" in json.loads(ex.body)]
    assert len(with_observations) == 12
    series = by_name(corpus, "fred", "test_series__test_get_series[json].yaml").exchanges[0]
    document = json.loads(series.body)
    assert series.header("Content-Encoding") == "gzip"
    assert document["observations"][0]["date"] < document["observations"][-1]["date"]
    assert {"date", "value", "realtime_start", "realtime_end"} <= set(document["observations"][0])
    assert series.recorded_at is None


def test_pygithub_issue33_link_pagination(corpus: dict[str, list[Recording]]) -> None:
    pages = by_name(corpus, "github", "Issue33.testOpenIssues.txt").exchanges
    assert len(pages) == 14
    links = [ex.header("link") or "" for ex in pages]
    assert all(links)
    # Every page but the last links to a next page; the last one has first/prev/last only.
    assert [('rel="next"' in link) for link in links] == [True] * 13 + [False]
    assert 'rel="prev"' in links[-1]
    assert pages[0].url == "https://api.github.com/repos/openframeworks/openFrameworks/issues"
    assert pages[1].url.endswith("/issues?page=2")
    assert ("Authorization", "token private_token_removed") in pages[0].request_headers
    assert json.loads(pages[0].body)[0] == {"id": 4772349}


def test_pygithub_drops_the_status_pseudo_header(corpus: dict[str, list[Recording]]) -> None:
    replay = [ex for rec in corpus["github"] if rec.format == "pygithub" for ex in rec.exchanges]
    assert len(replay) == 252
    assert all(ex.header("status") is None for ex in replay)
    assert all(ex.recorded_at is None for ex in replay)


def test_not_modified_bodies_are_empty(corpus: dict[str, list[Recording]]) -> None:
    not_modified = [ex for rec in corpus["github"] for ex in rec.exchanges if ex.status == 304]
    assert len(not_modified) == 25
    assert all(ex.body == b"" for ex in not_modified)
    assert any((ex.header("etag") or "").startswith('"') for ex in not_modified)


def test_header_lookup_is_case_insensitive(corpus: dict[str, list[Recording]]) -> None:
    github3py = by_name(corpus, "github", "Branch_latest_sha.json").exchanges[0]
    assert ("Content-Type", "application/json; charset=utf-8") in github3py.headers
    pygithub = by_name(corpus, "github", "Issue33.testOpenIssues.txt").exchanges[0]
    assert ("content-type", "application/json; charset=utf-8") in pygithub.headers
    for ex in (github3py, pygithub):
        assert ex.header("content-type") == ex.header("CONTENT-TYPE") == ex.header("Content-Type")
        assert ex.content_type == "application/json"


def test_reddit_specifics(corpus: dict[str, list[Recording]]) -> None:
    unavailable = by_name(
        corpus, "reddit", "TestSession.test_request__service_unavailable.json"
    ).exchanges
    assert unavailable[0].method == "POST"
    assert unavailable[0].url == "https://www.reddit.com/api/v1/access_token"
    # 503 x3 saying Content-Encoding: gzip over an empty body.
    assert [(ex.status, ex.header("content-encoding"), ex.body) for ex in unavailable[1:]] == [
        (503, "gzip", b"")
    ] * 3
    assert unavailable[1].recorded_at == "2016-07-25T07:04:17.000000Z"
    bad_json = by_name(corpus, "reddit", "TestSession.test_request__bad_json.json").exchanges[-1]
    assert bad_json.status == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(bad_json.body)
    zero = by_name(
        corpus, "reddit", "TestSession.test_request__okay_with_0_byte_content.json"
    ).exchanges[-1]
    assert (zero.status, zero.body) == (200, b"")
    too_many = by_name(
        corpus, "reddit", "TestSession.test_request__too__many_requests__with_retry_headers.json"
    ).exchanges[-1]
    assert too_many.status == 429
    assert too_many.header("retry-after") == "4"


# --------------------------------------------------------------------------- errors


def test_garbage_file_is_an_error_naming_the_file(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(RecordingError, match=r"garbage\.bin: not a recognized recording"):
        read_recording(garbage)
    assert sniff_format(garbage) is None
    with pytest.raises(RecordingError, match=r"garbage\.bin"):
        list(iter_exchanges(garbage))


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"just some text\n",
        b'{"kind": "Listing", "data": {"children": []}}',
        b"[1, 2, 3]",
        b'{"interactions": [',
        b"interactions: [unclosed\n",
    ],
    ids=["empty", "text", "json-object", "json-list", "truncated-json", "bad-yaml"],
)
def test_unrecognized_content_is_an_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "cassette.json"
    path.write_bytes(content)
    with pytest.raises(RecordingError, match=r"cassette\.json: not a recognized recording: \S"):
        read_recording(path)
    assert sniff_format(path) is None


def test_raw_payload_files_are_not_recordings() -> None:
    fred_csv = sorted(shared_dir("corpora", "fred", "csv").glob("*.csv"))[0]
    provenance = shared_dir("corpora", "reddit") / "provenance.json"
    gharchive = shared_dir("corpora", "gharchive") / "2015-01-01-0.json.gz"
    for path in (fred_csv, provenance, gharchive):
        assert sniff_format(path) is None
        with pytest.raises(RecordingError, match=rf"{path.name}: not a recognized recording"):
            read_recording(path)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(RecordingError, match=r"nope\.json: cannot read"):
        read_recording(missing)
    with pytest.raises(RecordingError, match=r"nope\.json"):
        sniff_format(missing)


def test_format_specific_readers_refuse_other_formats() -> None:
    cassette = shared_dir("corpora", "reddit", "prawcore") / "TestSession.test_request__get.json"
    replay = shared_dir("corpora", "github", "pygithub") / "Issue33.testOpenIssues.txt"
    ruby = shared_dir("corpora", "hackernews", "topnews-vcr") / "hacker_news_item.yml"
    exvcr = shared_dir("corpora", "hackernews", "hack_pop-exvcr") / "hackernews.json"
    vcrpy = shared_dir("corpora", "fred", "pyfredapi-2022") / "test_get_series_releases.yaml"
    # read_betamax reads the JSON cassette family; prawcore's is vcrpy's JSON
    assert read_betamax(cassette).format == "vcrpy-json"
    assert read_pygithub(replay).format == "pygithub"
    assert read_ruby_vcr(ruby).format == "ruby-vcr"
    assert read_exvcr(exvcr).format == "exvcr"
    assert read_vcrpy(vcrpy).format == "vcrpy"
    for reader in (read_pygithub, read_har, read_warc, read_vcrpy):
        with pytest.raises(RecordingError, match=r"not a \S+ recording: it is vcrpy-json"):
            reader(cassette)
    with pytest.raises(RecordingError, match="it is ruby-vcr"):
        read_vcrpy(ruby)


def test_malformed_interactions_are_skipped_and_listed(tmp_path: Path) -> None:
    source = shared_dir("corpora", "github", "github3py") / "Repository_stargazers.json"
    document = json.loads(source.read_bytes())
    interactions = document["http_interactions"]
    del interactions[1]["response"]["status"]
    interactions[2]["response"]["body"]["base64_string"] = "H4sI!!!"
    # gzip magic and a gzip header, but the stream is cut short
    stored = base64.b64decode(interactions[3]["response"]["body"]["base64_string"])
    interactions[3]["response"]["body"]["base64_string"] = base64.b64encode(stored[:40]).decode()
    interactions[4] = "not an interaction"
    interactions[5]["recorded_at"] = "yesterday-ish"
    path = tmp_path / "partly_broken.json"
    path.write_text(json.dumps(document))

    recording = read_recording(path)

    assert len(recording.exchanges) == len(interactions) - 4
    assert recording.problems == (
        "interaction 1: skipped: response.status is missing",
        "interaction 2: skipped: response.body.base64_string is not base64:"
        " Only base64 data is allowed",
        "interaction 3: skipped: body starts with the gzip magic but is truncated",
        "interaction 4: skipped: not an object",
        "interaction 5: kept: recorded_at 'yesterday-ish' is not a date, left out",
    )
    assert recording.exchanges[1].recorded_at is None
    assert recording.exchanges[1].fetched_at == ""


def test_every_interaction_malformed_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "all_broken.json"
    path.write_text(json.dumps({"interactions": [{"request": {}}, {"response": {}}]}))
    with pytest.raises(RecordingError, match=r"all_broken\.json: every one of the 2 interactions"):
        read_recording(path)


def test_bad_ruby_binary_spoils_only_its_interaction(tmp_path: Path) -> None:
    source = shared_dir("corpora", "hackernews", "topnews-vcr") / "hacker_news_job.yml"
    text = source.read_text("utf-8")
    marker = "string: !binary |-\n        "
    assert text.count(marker) == 1
    path = tmp_path / "job.yml"
    path.write_text(text.replace(marker, marker + "*"))  # not in the base64 alphabet
    recording = read_recording(path)
    original = read_recording(source)
    assert len(recording.exchanges) == len(original.exchanges) - 1
    (problem,) = recording.problems
    assert problem.startswith("interaction ")
    assert "!binary scalar is not base64" in problem


def test_bad_pygithub_record_is_skipped_with_its_line(tmp_path: Path) -> None:
    source = shared_dir("corpora", "github", "pygithub") / "Issue33.testOpenIssues.txt"
    lines = source.read_text("utf-8").split("\n")
    lines[8] = "[('status', '200 OK'), ('broken'"  # record 0's response headers
    lines[18] = "two hundred"  # record 1's status line
    path = tmp_path / "Issue33.txt"
    path.write_text("\n".join(lines))
    recording = read_recording(path)
    assert recording.format == "pygithub"
    assert len(recording.exchanges) == 12
    assert recording.problems[0].startswith(
        "interaction 0 (line 1): skipped: headers are not a Python literal"
    )
    assert recording.problems[1] == (
        "interaction 1 (line 12): skipped: line 8 (status) 'two hundred' is not an HTTP status code"
    )


# --------------------------------------------------------------------------- HAR


@pytest.mark.slow
def test_har_round_trip_of_every_corpus_exchange(
    all_exchanges: list[Exchange], tmp_path: Path
) -> None:
    path = tmp_path / "corpus.har"
    write_har(all_exchanges, path)
    assert sniff_format(path) == "har"
    recording = read_har(path)
    assert recording.format == "har"
    assert recording.problems == ()
    assert len(recording.exchanges) == len(all_exchanges) == sum(INTERACTIONS.values())
    for original, back in zip(all_exchanges, recording.exchanges, strict=True):
        same_exchange(original, back)


def test_har_document_has_the_required_fields(
    corpus: dict[str, list[Recording]], tmp_path: Path
) -> None:
    exchanges = by_name(corpus, "github", "Repository_stargazers.json").exchanges
    path = tmp_path / "stars.har"
    write_har(exchanges, path)
    log = json.loads(path.read_text("utf-8"))["log"]
    assert log["version"] == "1.2"
    assert log["creator"]["name"] == "echo_archive"
    entry = log["entries"][1]
    assert set(entry) >= {"startedDateTime", "time", "request", "response", "cache", "timings"}
    assert set(entry["request"]) >= {
        "method",
        "url",
        "httpVersion",
        "cookies",
        "headers",
        "queryString",
        "headersSize",
        "bodySize",
    }
    assert set(entry["response"]) >= {
        "status",
        "statusText",
        "httpVersion",
        "cookies",
        "headers",
        "content",
        "redirectURL",
        "headersSize",
        "bodySize",
    }
    assert entry["startedDateTime"] == "2021-11-01T00:41:20.000000Z"
    assert entry["response"]["content"]["mimeType"].startswith("application/json")
    assert json.loads(entry["response"]["content"]["text"])["id"] == 11439734


def test_har_binary_body_and_timestamps(tmp_path: Path) -> None:
    binary = bytes(range(256))
    document = {
        "log": {
            "version": "1.2",
            "creator": {"name": "test", "version": "0"},
            "entries": [
                {
                    "startedDateTime": "2024-02-15T17:06:19.5+02:00",
                    "time": 250,
                    "request": {"method": "get", "url": "https://example.org/a", "headers": []},
                    "response": {
                        "status": 200,
                        "headers": [{"name": "Content-Type", "value": "image/x-test"}],
                        "content": {
                            "size": 256,
                            "mimeType": "image/x-test",
                            "text": base64.b64encode(binary).decode(),
                            "encoding": "base64",
                        },
                    },
                },
                {
                    "startedDateTime": "2024-02-15T15:06:20Z",
                    "time": 0,
                    "request": {"method": "GET", "url": "https://example.org/b", "headers": []},
                    "response": {"status": 0, "headers": [], "content": {}},
                },
            ],
        }
    }
    path = tmp_path / "browser.har"
    path.write_text(json.dumps(document))
    recording = read_recording(path)
    (ex,) = recording.exchanges
    assert (ex.method, ex.body, ex.elapsed) == ("GET", binary, 0.25)
    assert ex.recorded_at == "2024-02-15T15:06:19.500000Z"
    assert recording.problems == (
        "interaction 1: skipped: response.status 0 is not an HTTP status code",
    )
    out = tmp_path / "again.har"
    write_har(recording.exchanges, out)
    content = json.loads(out.read_text("utf-8"))["log"]["entries"][0]["response"]["content"]
    assert content["encoding"] == "base64"
    same_exchange(ex, read_recording(out).exchanges[0])


# --------------------------------------------------------------------------- WARC


@pytest.mark.parametrize("name", ["corpus.warc", "corpus.warc.gz"])
def test_warc_round_trip_of_every_corpus_exchange(
    all_exchanges: list[Exchange], tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    write_warc(all_exchanges, path)
    assert sniff_format(path) == "warc"
    recording = read_warc(path)
    assert recording.format == "warc"
    assert recording.problems == ()
    assert len(recording.exchanges) == len(all_exchanges)
    for original, back in zip(all_exchanges, recording.exchanges, strict=True):
        same_exchange(original, back)
    streamed = iter_exchanges(path)
    assert next(streamed) == recording.exchanges[0]


def test_written_warc_records_follow_warc_1_1(
    corpus: dict[str, list[Recording]], tmp_path: Path
) -> None:
    exchanges = by_name(corpus, "github", "Branch_latest_sha.json").exchanges
    path = tmp_path / "branch.warc.gz"
    write_warc(exchanges, path)
    with path.open("rb") as fh:
        records = [
            (
                record.rec_headers.protocol,
                record.rec_type,
                record.rec_headers.get_header("Content-Type"),
                record.rec_headers.get_header("WARC-Date"),
                record.rec_headers.get_header("WARC-Record-ID"),
                record.rec_headers.get_header("WARC-Concurrent-To"),
                record.content_stream().read(),
            )
            for record in ArchiveIterator(fh, check_digests=True)
        ]
    assert [r[:4] for r in records[:2]] == [
        ("WARC/1.1", "response", "application/http;msgtype=response", exchanges[0].fetched_at),
        ("WARC/1.1", "request", "application/http;msgtype=request", exchanges[0].fetched_at),
    ]
    assert len(records) == 2 * len(exchanges)
    # warcio's own decoding of our (re-gzipped) payload gives the exchange's body back
    responses = [r for r in records if r[1] == "response"]
    requests = [r for r in records if r[1] == "request"]
    assert [r[6] for r in responses] == [ex.body for ex in exchanges]
    assert [r[5] for r in requests] == [r[4] for r in responses]


def _raw_github3py_gzip() -> tuple[dict[str, object], bytes]:
    """The first github3py interaction whose stored body is gzip, with those gzip bytes."""
    source = shared_dir("corpora", "github", "github3py") / "Branch_latest_sha.json"
    interaction = json.loads(source.read_bytes())["http_interactions"][0]
    stored = base64.b64decode(interaction["response"]["body"]["base64_string"])
    assert stored[:2] == b"\x1f\x8b"
    return interaction, stored


def test_warc_written_by_warcio_wget_style(tmp_path: Path) -> None:
    """A WARC/1.0 with request-before-response order, no Concurrent-To, chunked gzip payload."""
    interaction, stored = _raw_github3py_gzip()
    url = str(interaction["request"]["uri"])  # type: ignore[index]
    headers = [
        (name, value)
        for name, value in interaction["response"]["headers"].items()  # type: ignore[index]
        if name.lower() not in ("content-length", "transfer-encoding")
    ] + [("Transfer-Encoding", "chunked")]
    chunked = b"".join(
        f"{len(stored[i : i + 100]):x}\r\n".encode() + stored[i : i + 100] + b"\r\n"
        for i in range(0, len(stored), 100)
    )
    chunked += b"0\r\n\r\n"
    path = tmp_path / "wget.warc.gz"
    with path.open("wb") as fh:
        writer = WARCWriter(fh, gzip=True, warc_version="1.0")
        writer.write_record(
            writer.create_warc_record(
                "dns:api.github.com", "response", payload=io.BytesIO(b"1.2.3.4"), length=7
            )
        )
        request = writer.create_warc_record(
            url,
            "request",
            warc_headers_dict={"WARC-Date": "2018-01-01T18:52:25Z"},
            http_headers=StatusAndHeaders(
                "GET /repos/PyCQA/flake8 HTTP/1.1",
                [("Host", "api.github.com"), ("Accept-Encoding", "gzip")],
                is_http_request=True,
            ),
        )
        response = writer.create_warc_record(
            url,
            "response",
            payload=io.BytesIO(chunked),
            length=len(chunked),
            warc_headers_dict={"WARC-Date": "2018-01-01T18:52:25Z"},
            http_headers=StatusAndHeaders("200 OK", headers, protocol="HTTP/1.1"),
        )
        writer.write_record(request)
        writer.write_record(response)
        writer.write_record(
            writer.create_revisit_record(
                url,
                digest="sha1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                refers_to_uri=url,
                refers_to_date="2018-01-01T18:52:25Z",
            )
        )

    recording = read_recording(path)

    (ex,) = recording.exchanges
    assert ex.body == gzip.decompress(stored)
    assert json.loads(ex.body)["full_name"] == "PyCQA/flake8"
    assert (ex.method, ex.url, ex.status) == ("GET", url, 200)
    assert ex.request_headers == (("Host", "api.github.com"), ("Accept-Encoding", "gzip"))
    assert ex.recorded_at == "2018-01-01T18:52:25.000000Z"
    assert ex.header("content-encoding") == "gzip"
    assert recording.problems == (
        "record 3: skipped: a revisit record (its payload is in another capture)",
    )


def test_warc_with_only_revisits_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "revisits.warc"
    with path.open("wb") as fh:
        writer = WARCWriter(fh, gzip=False)
        writer.write_record(
            writer.create_revisit_record(
                "https://example.org/",
                digest="sha1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                refers_to_uri="https://example.org/",
                refers_to_date="2018-01-01T18:52:25Z",
            )
        )
    with pytest.raises(RecordingError, match=r"revisits\.warc: every one of the 1 response"):
        read_recording(path)


def test_damaged_warc_keeps_what_can_be_read(
    corpus: dict[str, list[Recording]], tmp_path: Path
) -> None:
    exchanges = by_name(corpus, "github", "Repository_stargazers.json").exchanges
    whole = tmp_path / "whole.warc"
    write_warc(exchanges, whole)
    data = whole.read_bytes()
    starts = [i for i in range(len(data)) if data.startswith(b"WARC/1.1\r\n", i)]
    assert len(starts) == 2 * len(exchanges)  # response, request, response, request...

    cut_in_block = tmp_path / "cut_in_block.warc"  # the 3rd response loses its last bytes
    cut_in_block.write_bytes(data[: starts[5] - 100])
    recording = read_recording(cut_in_block)
    assert len(recording.exchanges) == 2
    for original, back in zip(exchanges, recording.exchanges, strict=False):
        same_exchange(original, back)
    (problem,) = recording.problems
    assert problem.startswith("record 4: skipped: the record is truncated (")

    cut_in_header = tmp_path / "cut_in_header.warc"  # the 4th response's header is cut
    cut_in_header.write_bytes(data[: starts[6] + 20])
    recording = read_recording(cut_in_header)
    assert len(recording.exchanges) == 3
    assert recording.problems == ("record 6: skipped: no WARC-Type (a cut record?)",)

    garbage_between = tmp_path / "garbage.warc"  # not a record at all after the 2nd pair
    garbage_between.write_bytes(data[: starts[4]] + b"garbage\r\n\r\n" + data[starts[4] :])
    recording = read_recording(garbage_between)
    assert len(recording.exchanges) == 2
    (problem,) = recording.problems
    assert problem.startswith("record 4: unreadable, stopped reading the file: ")


def test_iter_exchanges_streams_a_warc(all_exchanges: list[Exchange], tmp_path: Path) -> None:
    path = tmp_path / "stream.warc"
    write_warc(all_exchanges, path)
    size = path.stat().st_size
    problems: list[str] = []
    tracemalloc.start()
    try:
        count = 0
        for back, original in zip(iter_exchanges(path, problems), all_exchanges, strict=True):
            assert back.status == original.status
            count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == len(all_exchanges)
    assert problems == []
    # one record (the largest body is ~1.2 MB) at a time, not the ~12 MB file
    assert peak < size / 2


def test_iter_exchanges_reports_problems_of_other_formats(tmp_path: Path) -> None:
    path = tmp_path / "one_bad.json"
    good = {
        "request": {"method": "GET", "uri": "https://example.org/", "headers": {}},
        "response": {"status": {"code": 200}, "headers": {}, "body": {"string": "ok"}},
    }
    path.write_text(json.dumps({"interactions": [good, {"request": {}}]}))
    problems: list[str] = []
    assert [ex.body for ex in iter_exchanges(path, problems)] == [b"ok"]
    assert problems == ["interaction 1: skipped: response is missing or not an object"]


# --------------------------------------------------------------------------- properties

_TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12).filter(
    lambda s: s.lower() not in {"content-encoding", "transfer-encoding", "content-length"}
)
_VALUE = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=30
)


@st.composite
def exchanges(draw: st.DrawFn) -> Exchange:
    """Arbitrary exchanges: binary bodies under every coding the writers re-apply."""
    headers = draw(st.lists(st.tuples(_TOKEN, _VALUE), max_size=5))
    coding = draw(st.sampled_from([None, "gzip", "deflate", "zstd"]))
    if coding:
        headers.append(("Content-Encoding", coding))
    if draw(st.booleans()):
        headers.append(("Transfer-Encoding", "chunked"))
    stamp = draw(st.datetimes(min_value=datetime(1970, 1, 1))).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return Exchange(
        method=draw(st.sampled_from(["GET", "POST", "DELETE"])),
        url="https://example.org/" + draw(st.text(alphabet="abc/?=&", max_size=10)),
        status=draw(st.integers(100, 599)),
        headers=tuple(headers),
        body=draw(st.binary(max_size=300)).lstrip(b"\x1f"),  # no accidental gzip magic
        final_url="https://example.org/final",
        fetched_at=stamp,
        request_headers=tuple(draw(st.lists(st.tuples(_TOKEN, _VALUE), max_size=3))),
        recorded_at=stamp,
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(exchanges(), min_size=1, max_size=4))
def test_har_and_warc_round_trip_arbitrary_exchanges(batch: list[Exchange]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        for name in ("x.har", "x.warc", "x.warc.gz"):
            path = Path(directory) / name
            (write_har if name.endswith(".har") else write_warc)(batch, path)
            recording = read_recording(path)
            assert recording.problems == ()
            for original, back in zip(batch, recording.exchanges, strict=True):
                same_exchange(original, back)


def test_gzip_sniffing_without_a_header(tmp_path: Path) -> None:
    body = b'{"ok": true}'
    packed = gzip.compress(body)
    interactions = [
        {  # gzip bytes stored, Content-Encoding header lost: still decoded
            "request": {"method": "GET", "uri": "https://example.org/a"},
            "response": {
                "status": {"code": 200},
                "headers": {"Content-Type": ["application/json"]},
                "body": {"base64_string": base64.b64encode(packed).decode()},
            },
        },
        {  # a .gz file served as such is the resource itself: kept
            "request": {"method": "GET", "uri": "https://example.org/b.gz"},
            "response": {
                "status": {"code": 200},
                "headers": {"Content-Type": ["application/gzip"]},
                "body": {"base64_string": base64.b64encode(packed).decode()},
            },
        },
        {  # deflate (zlib) with its header
            "request": {"method": "GET", "uri": "https://example.org/c"},
            "response": {
                "status": {"code": 200},
                "headers": {"Content-Encoding": ["deflate"]},
                "body": {"base64_string": base64.b64encode(zlib.compress(body)).decode()},
            },
        },
    ]
    path = tmp_path / "sniff.json"
    path.write_text(json.dumps({"interactions": interactions}))
    a, b, c = read_recording(path).exchanges
    assert a.body == body
    assert b.body == packed
    assert c.body == body


def test_gzip_file_served_gzip_encoded_survives_export(tmp_path: Path) -> None:
    """A body that is itself a gzip file under Content-Encoding: gzip is decoded once only."""
    _, stored = _raw_github3py_gzip()
    exchange = Exchange(
        method="GET",
        url="https://example.org/dump.json.gz",
        status=200,
        headers=(("Content-Type", "application/gzip"), ("Content-Encoding", "gzip")),
        body=stored,
        final_url="https://example.org/dump.json.gz",
        fetched_at="2018-01-01T18:52:25.000000Z",
        recorded_at="2018-01-01T18:52:25.000000Z",
    )
    for name in ("dump.har", "dump.warc.gz"):
        path = tmp_path / name
        (write_har if name.endswith(".har") else write_warc)([exchange], path)
        (back,) = read_recording(path).exchanges
        same_exchange(exchange, back)
