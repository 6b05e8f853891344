"""Tests of GH Archive hour files (echo_archive.sources.gharchive) on a real hour.

``../shared/corpora/gharchive/2015-01-01-0.json.gz`` is the real GH Archive
hour of 2015-01-01 00:00-00:59 UTC (7,702 events; see its PROVENANCE.md). The
per-type counts are the README's; the event values were read from the file
with ``zcat | head`` and ``zcat | sed -n``.

Broken files are real copies with one defect put in on purpose, written to
``tmp_path``: the defects are the ones GH Archive's issue tracker reports
(#53: two events on one line; #169/#271: an event cut short with the next
one glued to it; #190: NUL bytes; #241: a truncated file).
"""

from __future__ import annotations

import functools
import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

from echo_archive.errors import ParseError
from echo_archive.model import Item
from echo_archive.sources import gharchive, github
from echo_archive.sources.gharchive import items_from_hour, iter_events, recorded_at_from_name

from .conftest import shared_dir

HOUR = "2015-01-01-0.json.gz"
TOTAL = 7702
TYPES = {
    "PushEvent": 4280,
    "CreateEvent": 815,
    "IssueCommentEvent": 650,
    "WatchEvent": 642,
    "IssuesEvent": 373,
    "PullRequestEvent": 315,
    "ForkEvent": 213,
    "DeleteEvent": 141,
    "GollumEvent": 90,
    "PullRequestReviewCommentEvent": 85,
    "CommitCommentEvent": 56,
    "ReleaseEvent": 24,
    "MemberEvent": 16,
    "PublicEvent": 2,
}


def hour_path() -> Path:
    return shared_dir("corpora", "gharchive") / HOUR


@functools.cache
def _lines() -> tuple[bytes, ...]:
    with gzip.open(hour_path(), "rb") as stream:
        return tuple(stream)


def lines() -> list[bytes]:
    """The hour's decompressed lines (each ends with a newline)."""
    return list(_lines())


def write_hour(path: Path, data: list[bytes]) -> Path:
    with gzip.open(path, "wb", compresslevel=1) as out:
        out.writelines(data)
    return path


def test_the_real_hour() -> None:
    """All 7,702 events become items; the README's per-type counts, exactly."""
    path = hour_path()
    results = list(items_from_hour(path, "gha-2015"))
    errors = [r for r in results if isinstance(r, ParseError)]
    items = [r for r in results if isinstance(r, Item)]
    assert errors == []
    assert len(items) == TOTAL
    assert Counter(item.extra["type"] for item in items) == TYPES
    assert len({item.native_id for item in items}) == TOTAL
    assert all(item.source == "github" and item.feed == "gha-2015" for item in items)
    assert all(item.published_at.startswith("2015-01-01T00:") for item in items)
    # Measured: ``org`` is present on 2,342 events ("only for some events").
    assert sum("org" in item.extra for item in items) == 2342


def test_specific_events() -> None:
    items = {r.native_id: r for r in items_from_hour(hour_path(), "gha") if isinstance(r, Item)}
    first = items["2489368070"]  # line 1
    assert first == Item(
        source="github",
        feed="gha",
        native_id="2489368070",
        url=(
            "https://github.com/davidjhulse/davesbingrewardsbot/commit/"
            "a9b22a6d80c1e0bb49c1cf75a3c075b642c28f81"
        ),
        title="PushEvent davidjhulse/davesbingrewardsbot refs/heads/master",
        text="a9b22a6 Altered BingBot.jar",
        author="davidjhulse",
        published_at="2015-01-01T00:00:00.000000Z",
        extra={
            "type": "PushEvent",
            "repo": "davidjhulse/davesbingrewardsbot",
            "ref": "refs/heads/master",
            "public": True,
        },
    )
    okhttp = items["2489368095"]  # line 4: in the ``square`` organisation, 8 commits
    assert okhttp.extra["org"] == "square"
    assert okhttp.author == "JakeWharton"
    assert okhttp.text.count("\n") == 7
    release = items["2489369515"]  # line 355
    assert release.title == "ReleaseEvent dealii/dealii deal.II version 8.2.0"
    assert release.url == "https://github.com/dealii/dealii/releases/tag/v8.2.0"
    assert release.text.startswith("published v8.2.0\n\nThis version has a significant number")
    public = items["2489373118"]  # line 1277
    assert public.extra == {"type": "PublicEvent", "repo": "SabinaS/csee6868", "public": True}
    assert public.text == "made public"
    last = items["2489395761"]  # line 7702
    assert last.published_at == "2015-01-01T00:59:58.000000Z"
    assert last.text == "348743f Create README.md"


def test_iter_events_line_numbers() -> None:
    numbered = list(iter_events(hour_path()))
    assert len(numbered) == TOTAL
    assert [n for n, _ in numbered] == list(range(1, TOTAL + 1))
    line, event = numbered[354]
    assert line == 355
    assert isinstance(event, dict)
    assert event["id"] == "2489369515"
    assert event["type"] == "ReleaseEvent"


def test_one_function_for_api_and_archive() -> None:
    """GH Archive items come from the events API's own converter: equal items for equal events."""
    assert gharchive.event_item is github.event_item
    _, event = next(iter_events(hour_path()))
    assert isinstance(event, dict)
    from_archive = next(iter(items_from_hour(hour_path(), "f")))
    assert from_archive == github.event_item(event, "f")


def test_broken_line_inserted(tmp_path: Path) -> None:
    """One broken line after line 100: one ParseError at line 101, every event kept."""
    data = lines()
    broken = data[100][: len(data[100]) // 2] + b"\n"  # line 101 cut in half
    path = write_hour(tmp_path / HOUR, [*data[:100], broken, *data[100:]])
    results = list(items_from_hour(path, "gha"))
    errors = [r for r in results if isinstance(r, ParseError)]
    assert len(errors) == 1
    assert errors[0].position.startswith("line 101 column ")
    assert errors[0].url == str(path)
    assert "malformed JSON" in str(errors[0])
    items = [r for r in results if isinstance(r, Item)]
    assert len(items) == TOTAL
    assert Counter(item.extra["type"] for item in items) == TYPES
    # The events after the broken line keep their (shifted) line numbers.
    numbered = list(iter_events(path))
    assert numbered[101][0] == 102
    assert isinstance(numbered[101][1], dict)
    assert numbered[101][1]["id"] == _event_id(data[100])


def _event_id(line: bytes) -> str:
    return line.split(b'"', 4)[3].decode()


def test_two_events_on_one_line(tmp_path: Path) -> None:
    """gharchive.org issue #53: consecutive events written on the same line."""
    data = lines()
    glued = data[0].rstrip(b"\n") + data[1]
    path = write_hour(tmp_path / HOUR, [glued, *data[2:]])
    numbered = list(iter_events(path))
    assert len(numbered) == TOTAL
    assert [n for n, _ in numbered[:3]] == [1, 1, 2]
    assert all(isinstance(event, dict) for _, event in numbered)


def test_event_cut_short_with_the_next_glued_on(tmp_path: Path) -> None:
    """gharchive.org issues #169 and #271: ``..."url":"https://api.{"id":"...`` on one line."""
    data = lines()
    cut = data[9][:300]  # inside event 10 (a string value is left open)
    path = write_hour(tmp_path / HOUR, [*data[:9], cut + data[10], *data[11:]])
    results = list(iter_events(path))
    errors = [(n, r) for n, r in results if isinstance(r, ParseError)]
    assert len(errors) == 1
    assert errors[0][0] == 10
    events = [r for _, r in results if isinstance(r, dict)]
    assert len(events) == TOTAL - 1  # only the cut event is lost
    assert events[9]["id"] == _event_id(data[10])


def test_nul_bytes_blank_lines_and_non_objects(tmp_path: Path) -> None:
    """gharchive.org issue #190: NUL bytes; plus blank lines and a line that is not an object."""
    data = lines()
    path = write_hour(
        tmp_path / HOUR,
        [b"\x00" * 64 + data[0], b"\n", b"   \r\n", b"[1, 2]\n", b'"text"\n', *data[1:]],
    )
    results = list(items_from_hour(path, "gha"))
    errors = [r for r in results if isinstance(r, ParseError)]
    assert [e.position for e in errors] == ["line 4", "line 5"]
    assert "JSON list, not an event object" in str(errors[0])
    assert sum(isinstance(r, Item) for r in results) == TOTAL


def test_event_without_id_or_type(tmp_path: Path) -> None:
    data = lines()
    path = write_hour(tmp_path / HOUR, [b'{"type": "PushEvent", "actor": {}}\n', b"{}\n", *data])
    errors = [r for r in items_from_hour(path, "gha") if isinstance(r, ParseError)]
    assert [e.position for e in errors] == ["line 1", "line 2"]
    assert "no usable id" in str(errors[0])
    assert "no type" in str(errors[1])


def test_invalid_utf8_line(tmp_path: Path) -> None:
    data = lines()
    path = write_hour(tmp_path / HOUR, [*data[:5], b'{"id":"1","type":"\xff"}\n', *data[5:]])
    errors = [r for _, r in iter_events(path) if isinstance(r, ParseError)]
    assert len(errors) == 1
    assert errors[0].position == "line 6 byte 19"
    assert "not UTF-8" in str(errors[0])


def test_truncated_gzip_keeps_what_was_read(tmp_path: Path) -> None:
    """gharchive.org issue #241: a truncated file; everything before the cut is kept."""
    whole = hour_path().read_bytes()
    path = tmp_path / HOUR
    path.write_bytes(whole[: len(whole) // 2])
    results = list(iter_events(path))
    *events, (line, error) = results
    assert isinstance(error, ParseError)
    assert "gzip stream truncated or corrupt" in str(error)
    assert all(isinstance(event, dict) for _, event in events)
    assert line == len(events) + 1
    assert 3000 < len(events) < TOTAL
    assert error.position == f"line {line}"


def test_plain_json_lines_file(tmp_path: Path) -> None:
    """A gunzipped hour (no gzip magic) is read as plain JSON Lines."""
    path = tmp_path / "2015-01-01-0.json"
    path.write_bytes(b"".join(lines()[:50]))
    assert sum(isinstance(r, Item) for r in items_from_hour(path, "gha")) == 50


def test_missing_file_raises() -> None:
    with pytest.raises(FileNotFoundError):
        list(iter_events("/nonexistent/2015-01-01-0.json.gz"))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("2015-01-01-0.json.gz", "2015-01-01T00:00:00.000000Z"),
        ("2015-01-01-15.json.gz", "2015-01-01T15:00:00.000000Z"),
        ("2011-02-12-05.json.gz", "2011-02-12T05:00:00.000000Z"),
        ("/data/gha/2020-10-30-17.json", "2020-10-30T17:00:00.000000Z"),
        ("2015-01-01-24.json.gz", None),
        ("2015-02-30-1.json.gz", None),
        ("2015-01-01.json.gz", None),
        ("events.json.gz", None),
    ],
)
def test_recorded_at_from_name(name: str, expected: str | None) -> None:
    assert recorded_at_from_name(name) == expected
    assert recorded_at_from_name(Path(name)) == expected


def test_recorded_at_of_the_corpus_hour() -> None:
    assert recorded_at_from_name(hour_path()) == "2015-01-01T00:00:00.000000Z"


# --------------------------------------------------------------------------- 2011-2014 hours
# Hours before 2015 hold Timeline API events (GH Archive README, "Schema"): no
# id, the actor a login string, ``repository`` instead of ``repo``, a push's
# commits as ``payload.shas``. The events below have that shape (field names
# and nesting as in a 2012 hour); the corpus holds no such hour.

TIMELINE_PUSH = {
    "created_at": "2012-03-10T14:00:02-08:00",
    "payload": {
        "shas": [["0a1b2c3d4e", "dev@example.com", "Fix typo\n\nlong text", "Dev", True]],
        "size": 1,
        "ref": "refs/heads/master",
        "head": "0a1b2c3d4e",
    },
    "public": True,
    "type": "PushEvent",
    "url": "https://github.com/octo/hello/compare/9f8e...0a1b",
    "actor": "octo",
    "actor_attributes": {"login": "octo", "type": "User", "name": "Octo Cat"},
    "repository": {"url": "https://github.com/octo/hello", "id": 1296269, "owner": "octo",
                   "name": "hello", "watchers": 3, "forks": 1},
}  # fmt: skip
TIMELINE_ISSUE = {
    "created_at": "2012-03-10T14:00:05-08:00",
    "payload": {"action": "opened", "number": 7, "issue": 12345},
    "public": True,
    "type": "IssuesEvent",
    "url": "https://github.com/octo/hello/issues/7",
    "actor": "bob",
    "actor_attributes": {"login": "bob"},
    "repository": {"url": "https://github.com/octo/hello", "owner": "octo", "name": "hello"},
}


def test_timeline_hours_of_2011_to_2014_are_read(tmp_path: Path) -> None:
    hour = tmp_path / "2012-03-10-22.json.gz"
    lines = [json.dumps(TIMELINE_PUSH), json.dumps(TIMELINE_ISSUE)]
    hour.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    push, issue = list(items_from_hour(hour, "import-github"))
    assert isinstance(push, Item)
    assert isinstance(issue, Item)
    assert push.native_id.startswith("timeline:")
    assert len(push.native_id) == 9 + 64
    assert push.title == "PushEvent octo/hello refs/heads/master"
    assert push.url == "https://github.com/octo/hello/compare/9f8e...0a1b"
    assert push.text == "0a1b2c3 Fix typo"
    assert push.author == "octo"
    assert push.published_at == "2012-03-10T22:00:02.000000Z"
    assert push.extra["schema"] == "timeline"
    assert push.extra["repo"] == "octo/hello"
    assert (issue.title, issue.url, issue.extra["number"]) == (
        "IssuesEvent octo/hello #7",
        "https://github.com/octo/hello/issues/7",
        7,
    )
    # The same event gives the same id in every reading; another event another id.
    again = list(items_from_hour(hour, "import-github"))
    assert [i.native_id for i in again if isinstance(i, Item)] == [push.native_id, issue.native_id]
    assert push.native_id != issue.native_id


def test_events_api_events_are_not_taken_for_timeline_events() -> None:
    assert gharchive.timeline_to_event({"id": "1", "type": "PushEvent", "actor": {}}) is None
    assert gharchive.timeline_to_event({"type": "X", "actor": {"login": "a"}}) is None
