"""Hostile bodies: every source parser raises only ParseError, and one bad feed fails alone.

DESIGN.md invariant 7. The hostile set: deep nesting (arrays and objects),
huge integers and floats, NaN and Infinity, invalid UTF-8, byte order marks,
NUL bytes, unpaired surrogate escapes, empty bodies and truncations of real
recorded bodies; hypothesis adds arbitrary bytes and arbitrary JSON values.
The harvest tests run a real cycle against a loopback server.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from echo_archive.errors import ParseError
from echo_archive.harvest.cycle import HarvestReport, HarvestRun
from echo_archive.harvest.engine import FetchConfig, Fetcher
from echo_archive.harvest.limits import HostLimits, LimitConfig
from echo_archive.harvest.recordings import read_recording
from echo_archive.harvest.state import HarvestState
from echo_archive.harvest.stores import VaultBreakerStore
from echo_archive.jsondecode import MAX_DEPTH, decode_json, iter_json_values
from echo_archive.model import Exchange, ParseResult, Request
from echo_archive.sources.base import Feed, Source
from echo_archive.sources.fred import FredSource
from echo_archive.sources.github import GithubSource
from echo_archive.sources.hn import HnSource
from echo_archive.sources.reddit import RedditSource
from echo_archive.sources.rss import RssSource
from echo_archive.vault.vault import Vault
from echo_archive.vault.verify import verify_vault

from .conftest import shared_dir
from .httpfaults import FaultServer, Reply

UA = {"app_id": "org.example.echo", "version": "0.1.0", "username": "echo_bot"}


def _cases() -> dict[str, tuple[Source, Feed, Request, str]]:
    """One (source, feed, request, content type) per parser entry point."""
    hn, reddit, github, fred, rss = (
        HnSource(),
        RedditSource(),
        GithubSource(),
        FredSource(),
        RssSource(),
    )
    hn_feed = Feed("hn-top", "hn", {"list": "top"})
    item = Request(
        "https://hacker-news.firebaseio.com/v0/item/8863.json", purpose={"kind": "item", "depth": 0}
    )
    reddit_feed = Feed("r", "reddit", {"subreddit": "AskReddit", "user_agent": UA})
    comments = Request(
        "https://www.reddit.com/comments/abc.json?raw_json=1",
        purpose={"kind": "comments", "id": "abc"},
    )
    gh_feed = Feed("gh", "github", {"kind": "events", "repo": "o/r"})
    fred_api = Feed("f", "fred", {"series_id": "GDP", "api_key": "k"})
    fred_csv = Feed("f", "fred", {"series_id": "GDP"})
    rss_feed = Feed("rss", "rss", {"url": "https://example.org/feed"})
    json_ = "application/json"
    return {
        "hn list": (hn, hn_feed, hn.plan(hn_feed)[0], json_),
        "hn item": (hn, hn_feed, item, json_),
        "reddit listing": (reddit, reddit_feed, reddit.plan(reddit_feed)[0], json_),
        "reddit comments": (reddit, reddit_feed, comments, json_),
        "github events": (github, gh_feed, github.plan(gh_feed)[0], json_),
        "fred api": (fred, fred_api, fred.plan(fred_api)[0], json_),
        "fred csv": (fred, fred_csv, fred.plan(fred_csv)[0], "text/csv"),
        "rss json feed": (rss, rss_feed, rss.plan(rss_feed)[0], "application/feed+json"),
        "rss xml": (rss, rss_feed, rss.plan(rss_feed)[0], "application/rss+xml"),
    }


CASES = _cases()
JSON_FEED = b'{"version": "https://jsonfeed.org/version/1.1", "title": "t", "items": '

HOSTILE: dict[str, bytes] = {
    "empty": b"",
    "whitespace": b" \r\n\t ",
    "NUL bytes": b"\x00" * 64,
    "deep arrays (200 KB of '[')": b"[" * 200_000,
    "deep objects": b'{"a":' * 100_000,
    "deep but closed": b"[" * (MAX_DEPTH + 50) + b"]" * (MAX_DEPTH + 50),
    "deep inside a listing": b'{"kind": "Listing", "data": {"children": ' + b"[" * 100_000,
    "deep inside a JSON Feed": JSON_FEED + b"[" * 100_000,
    "deep inside items": b'[{"id": 1, "kids": ' + b"[" * 50_000,
    "huge integer": b'{"id": ' + b"9" * 5000 + b"}",
    "huge integer in a list": b"[" + b"7" * 10_000 + b"]",
    "huge float": b'{"id": 1, "time": 1e999, "score": -1e999}',
    "NaN": b'{"id": NaN, "time": NaN}',
    "Infinity": b"[Infinity, -Infinity]",
    "NaN in a JSON Feed": JSON_FEED + b'[{"id": NaN}]}',
    "invalid UTF-8": b'{"id": 1, "title": "\xc3\x28 \xff\xfe"}',
    "UTF-16 with BOM": '{"id": 1}'.encode("utf-16"),
    "UTF-32 with BOM": '{"id": 1}'.encode("utf-32"),
    "UTF-8 BOM, then garbage": b"\xef\xbb\xbf\xef\xbb\xbf{",
    "unpaired surrogate": b'{"id": 1, "type": "story", "title": "\\ud800"}',
    "truncated object": b'{"id": 1, "type": "story", "title": "cu',
    "control characters": b'{"id": 1, "title": "a\x01\x02b"}',
    "XML entity bomb": (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><rss version="2.0"><channel>'
        b"<title>&b;</title></channel></rss>"
    ),
    "deep XML": b"<rss>" + b"<a>" * 3_000,  # 100,000 levels: ~20 s in feedparser
    "CSV of huge numbers": b"observation_date,GDP\n2020-01-01," + b"9" * 5000 + b"\n",
    "CSV with NUL and bad UTF-8": b"observation_date,GDP\n2020-01-01,\x00\xff\n",
}


def _only_parse_error(case: str, body: bytes, truncated: bool = False) -> ParseResult | None:
    source, feed, request, content_type = CASES[case]
    exchange = Exchange(
        "GET",
        request.url,
        200,
        (("Content-Type", content_type),),
        body,
        final_url=request.url,
        truncated=truncated,
    )
    try:
        return source.parse(feed, request, exchange)
    except ParseError as exc:
        message = str(exc)
    assert message  # names what was wrong
    return None


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_bodies_raise_only_parse_error(case: str, name: str) -> None:
    _only_parse_error(case, HOSTILE[name])


RECORDED = {
    "hn item": ("hackernews", "topnews-vcr", "hackernews_top_stories_details.yml", 1),
    "hn list": ("hackernews", "topnews-vcr", "hackernews_top_stories_details.yml", 0),
    "reddit listing": ("reddit", "praw", "TestSubredditListings.test_hot.json", 0),
    "github events": ("github", "pygithub", "Event.setUp.txt", 1),
}
"""Real bodies from the shared corpora: the n-th ``GET`` answered 200 of a recording."""


@pytest.mark.parametrize("case", sorted(RECORDED))
def test_every_truncation_of_a_real_body_raises_only_parse_error(case: str) -> None:
    folder, sub, name, index = RECORDED[case]
    path = shared_dir("corpora", folder, sub) / name
    gets = [e for e in read_recording(path).exchanges if e.method == "GET" and e.status == 200]
    body = gets[index].body
    step = max(1, len(body) // 60)
    for cut in range(0, len(body), step):
        _only_parse_error(case, body[:cut])
        _only_parse_error(case, body[:cut], truncated=True)
        _only_parse_error(case, b"\xef\xbb\xbf" + body[:cut])


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["id", "kind", "data", "children", "items", "type", "title", "kids"])
            | st.text(max_size=5),
            children,
            max_size=5,
        )
    ),
    max_leaves=30,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(CASES)), _JSON_VALUES)
def test_arbitrary_json_values_raise_only_parse_error(case: str, value: Any) -> None:
    _only_parse_error(case, json.dumps(value).encode())


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(CASES)), st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_parse_error(case: str, body: bytes) -> None:
    _only_parse_error(case, body)


# --------------------------------------------------------------------------- the decoder


@pytest.mark.parametrize(
    ("body", "message", "position"),
    [
        (b"", "empty", "byte 0"),
        (b"[" * 200_000, "nested too deeply", f"line 1 column {MAX_DEPTH + 1}"),
        (b'{"a": NaN}', "NaN is not a JSON number", "line 1 column 7"),
        (b"[1e999]", "1e999 is not a JSON number", ""),
        (b"[" + b"9" * 5000 + b"]", "number too long", "line 1 column 2"),
        (b'{"a": "\xff"}', "not UTF-8", "byte 7"),
        (b"\xef\xbb\xbf" + b'{"a": "\xff"}', "not UTF-8", "byte 10"),
        ('{"a": 1}'.encode("utf-16"), "UTF-16", "byte 0"),
        (b'{"a": "\\udc00"}', "unpaired UTF-16 surrogate", "line 1 column 8"),
        (b'{"a": [1,\n 2', "truncated", "line 2 column 3"),
    ],
)
def test_decoder_errors_name_what_and_where(body: bytes, message: str, position: str) -> None:
    with pytest.raises(ParseError, match=message) as info:
        decode_json(body, "https://example.org/x")
    assert info.value.position == position
    assert info.value.url == "https://example.org/x"


def test_decoder_accepts_what_rfc_8259_allows() -> None:
    assert decode_json(b"\xef\xbb\xbf[1]", "x") == [1]
    assert decode_json(b'"\\ud83d\\ude00 \\\\ud800"', "x") == "\U0001f600 \\ud800"
    assert decode_json("[" * MAX_DEPTH + "]" * MAX_DEPTH, "x") is not None
    assert decode_json('["[[[[", {"]": "}}}"}]', "x") == ["[[[[", {"]": "}}}"}]
    with pytest.raises(ParseError, match="over the limit"):
        decode_json(b"[1, 2]", "x", max_bytes=3)


@given(_JSON_VALUES)
def test_decoder_round_trips_json_and_refuses_what_is_not(value: Any) -> None:
    text = json.dumps(value)
    try:
        expected = json.loads(text, parse_constant=lambda _: (_ for _ in ()).throw(ValueError()))
    except (ValueError, RecursionError):
        with pytest.raises(ParseError):
            decode_json(text, "x")
        return
    if "Infinity" in text or "NaN" in text or ("e+" in text and "inf" in repr(expected)):
        return
    assert decode_json(text, "x") == expected


def test_glued_values_of_a_line() -> None:
    got = list(iter_json_values('{"a": 1}{"b": NaN} [2]', "f", line=3))
    assert got[0] == {"a": 1}
    assert isinstance(got[1], ParseError)
    assert "NaN" in got[1].message
    assert got[1].position == "line 3"


# --------------------------------------------------------------------------- the feed boundary


def _harvest(vault_path: Path, feeds: list[Feed], host: str, sources: dict[str, Source]) -> Any:
    async def go() -> HarvestReport:
        with Vault.open(vault_path) as v:
            fetcher = Fetcher(
                FetchConfig(max_attempts=1, connect_timeout=2, allow_private=True),
                limits=HostLimits({host: LimitConfig(rate=1000.0, burst=100.0, concurrency=4)}),
                breakers=VaultBreakerStore(v),
            )
            async with fetcher:
                return await HarvestRun(v, fetcher, sources, env={}).run(feeds)

    return asyncio.run(go())


class _BuggyRss(RssSource):
    """A real RSS source with a parser bug for feeds named ``buggy*`` (not a ParseError)."""

    def parse(self, feed: Feed, request: Request, exchange: Exchange) -> ParseResult:
        if feed.name.startswith("buggy"):
            raise ZeroDivisionError("division by zero in a parser")
        return super().parse(feed, request, exchange)


RSS = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
    b"<link>https://example.org/</link><description>d</description>"
    b"<item><guid>https://example.org/a</guid><title>A</title></item>"
    b"</channel></rss>"
)


def test_one_hostile_feed_among_good_ones_fails_alone(vault_path: Path) -> None:
    hn_path = (
        shared_dir("corpora", "hackernews") / "topnews-vcr" / "hackernews_top_stories_details.yml"
    )
    json_type = [("Content-Type", "application/json")]
    with FaultServer() as server:
        for ex in read_recording(hn_path).exchanges[:6]:
            server.route(urlsplit(ex.url).path, Reply(200, json_type, ex.body))
        server.route("/deep/topstories.json", Reply(200, json_type, b"[" * 200_000))
        server.route("/nan/topstories.json", Reply(200, json_type, b"[NaN, Infinity]"))
        server.route("/big/topstories.json", Reply(200, json_type, b"[1]"))
        big = {"id": 1, "type": "story", "by": "x", "time": 1175714200, "title": "big"}
        server.route("/big/item/1.json", Reply.json({**big, "score": 10**30}))
        server.route("/feed.xml", Reply(200, [("Content-Type", "application/rss+xml")], RSS))
        feeds = [
            Feed("hn-good", "hn", {"list": "top", "limit": 5, "base_url": server.url("/v0")}),
            Feed("hn-deep", "hn", {"list": "top", "base_url": server.url("/deep")}),
            Feed("hn-nan", "hn", {"list": "top", "base_url": server.url("/nan")}),
            Feed("hn-big", "hn", {"list": "top", "base_url": server.url("/big")}),
            Feed("buggy-rss", "rss", {"url": server.url("/feed.xml")}),
            Feed("rss-good", "rss", {"url": server.url("/feed.xml")}),
        ]
        sources: dict[str, Source] = {"hn": HnSource(), "rss": _BuggyRss()}
        report = _harvest(vault_path, feeds, server.authority, sources)
    by_name = {f.name: f for f in report.feeds}
    assert by_name["hn-good"].new == 5
    assert by_name["hn-good"].error is None
    assert by_name["rss-good"].new == 1
    for name, words in (
        ("hn-deep", "nested too deeply"),
        ("hn-nan", "NaN is not a JSON number"),
        ("buggy-rss", "parser failed: ZeroDivisionError"),
        ("hn-big", "left out"),
    ):
        assert by_name[name].captures >= 1, name  # the hostile capture is kept
        assert words in (by_name[name].error or ""), (name, by_name[name].error)
        assert by_name[name].new == 0
    assert by_name["hn-deep"].parse_errors == by_name["buggy-rss"].parse_errors == 1
    with Vault.open(vault_path, readonly=True) as v:
        assert verify_vault(v).ok
        saved = HarvestState(v.catalog).last_report()
        assert saved is not None  # the report was saved
        assert {f["name"] for f in saved["feeds"]} == set(by_name)
        flagged = {
            (entry.meta["feed"], (entry.meta["parse_error"] or entry.meta["parse_warning"] or ""))
            for entry in (v.entry(i) for i in range(v.size))
            if entry.type == "capture"
        }
    errors = {feed: text for feed, text in flagged if text}
    assert "nested too deeply" in errors["hn-deep"]
    assert "ZeroDivisionError" in errors["buggy-rss"]
    assert "left out" in errors["hn-big"]
