"""Tests of the ``hn`` source (echo_archive.sources.hn) against recorded Hacker News traffic.

Every exchange of every cassette under ``../shared/corpora/hackernews`` (557
interactions recorded from ``hacker-news.firebaseio.com/v0`` by topnews' Ruby
VCR and hack_pop's ExVCR; see its PROVENANCE.md) is parsed: list bodies must
give one follow-up per id up to ``limit``, item bodies exactly one item. The
expected values were read from the cassettes themselves.

The corpus has no comments, polls, deleted, dead or missing (``null``) items.
Those cases are built here from the shapes the API README documents
(https://github.com/HackerNews/API, "Items"), and are marked as synthetic.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import pytest

from echo_archive.errors import ParseError, SourceError
from echo_archive.harvest.recordings import read_recording
from echo_archive.model import Exchange, Item, ParseResult, Request
from echo_archive.sources.base import Feed, Source
from echo_archive.sources.hn import DEFAULT_BASE_URL, LISTS, HnSource, item_page_url

from .conftest import shared_dir

API = "https://hacker-news.firebaseio.com/v0"
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
HN_PAGE = re.compile(r"^https://news\.ycombinator\.com/item\?id=(\d+)$")

#: Every cassette of the corpus → (interactions, id lists, items).
CASSETTES: dict[str, tuple[int, int, int]] = {
    "hack_pop-exvcr/hackernews.json": (31, 1, 30),
    "hack_pop-exvcr/hackernews_story_12991490.json": (1, 0, 1),
    "topnews-vcr/hacker_news_item.yml": (1, 0, 1),
    "topnews-vcr/hacker_news_job.yml": (21, 1, 20),
    "topnews-vcr/hacker_news_top_stories.yml": (1, 1, 0),
    "topnews-vcr/hackernews_top_stories_details.yml": (501, 1, 500),
    "topnews-vcr/hackernews_top_story_ids.yml": (1, 1, 0),
}
DETAILS = "topnews-vcr/hackernews_top_stories_details.yml"

SOURCE = HnSource()


def feed(**params: Any) -> Feed:
    """A ``hn`` feed over the top stories with extra parameters."""
    return Feed(name="hn-top", source="hn", params={"list": "top", **params})


@functools.cache
def _exchanges(path: Path) -> tuple[Exchange, ...]:
    return read_recording(path).exchanges


def exchanges(relative: str) -> tuple[Exchange, ...]:
    """The exchanges of one cassette of the shared corpus."""
    return _exchanges(shared_dir("corpora", "hackernews") / relative)


def replay(
    exchange: Exchange, f: Feed | None = None, purpose: dict[str, Any] | None = None
) -> ParseResult:
    """Parse a recorded exchange as the engine would after asking for its URL."""
    request = Request(url=exchange.url, purpose=purpose or {})
    return SOURCE.parse(f or feed(), request, exchange)


def synthetic(
    body: object | bytes, item_id: int = 1, status: int = 200, depth: int = 0, **params: Any
) -> ParseResult:
    """Parse a made-up item response (shapes from the API README) for ``item_id``."""
    url = f"{API}/item/{item_id}.json"
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    exchange = Exchange(method="GET", url=url, final_url=url, status=status, headers=(), body=raw)
    request = Request(url=url, purpose={"kind": "item", "depth": depth, "id": item_id})
    return SOURCE.parse(feed(**params), request, exchange)


@functools.cache
def _corpus_items() -> tuple[tuple[str, Item], ...]:
    out = []
    for relative in CASSETTES:
        for exchange in exchanges(relative):
            if "/item/" in exchange.url:
                (item,) = replay(exchange).items
                out.append((relative, item))
    return tuple(out)


def corpus_items(relative: str | None = None) -> list[Item]:
    """Every item of the corpus (one per item exchange, repeats kept), or of one cassette."""
    return [item for rel, item in _corpus_items() if relative in (None, rel)]


# --------------------------------------------------------------------------- plan


def test_hn_source_satisfies_the_source_protocol() -> None:
    source: Source = HnSource()
    assert source.kind == "hn"


@pytest.mark.parametrize(
    ("name", "endpoint"),
    [
        ("top", "topstories"),
        ("new", "newstories"),
        ("best", "beststories"),
        ("ask", "askstories"),
        ("show", "showstories"),
        ("job", "jobstories"),
    ],
)
def test_plan_requests_the_story_list(name: str, endpoint: str) -> None:
    (request,) = SOURCE.plan(Feed("f", "hn", {"list": name}))
    assert request.url == f"{DEFAULT_BASE_URL}/{endpoint}.json"
    assert request.method == "GET"
    assert request.purpose == {"kind": "list"}
    assert LISTS[name] == endpoint


def test_plan_uses_base_url_without_trailing_slash() -> None:
    (request,) = SOURCE.plan(feed(base_url="http://127.0.0.1:8080/v0/"))
    assert request.url == "http://127.0.0.1:8080/v0/topstories.json"


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({}, "params.list"),
        ({"list": "jobs"}, "params.list"),
        ({"list": "top", "limit": 0}, "params.limit"),
        ({"list": "top", "limit": True}, "params.limit"),
        ({"list": "top", "limit": "30"}, "params.limit"),
        ({"list": "top", "comment_depth": -1}, "params.comment_depth"),
        ({"list": "top", "base_url": "ftp://example.org/v0"}, "params.base_url"),
        ({"list": "top", "base_url": 7}, "params.base_url"),
    ],
)
def test_plan_rejects_invalid_parameters(params: dict[str, Any], named: str) -> None:
    with pytest.raises(SourceError, match=re.escape(named)) as info:
        SOURCE.plan(Feed("bad-feed", "hn", params))
    assert "'bad-feed'" in str(info.value)


# --------------------------------------------------------------------------- the corpus


@pytest.mark.parametrize("relative", sorted(CASSETTES))
def test_every_exchange_of_every_cassette_parses(relative: str) -> None:
    """List bodies give ``limit`` follow-ups; item bodies give exactly one item."""
    recorded = exchanges(relative)
    interactions, lists, items = CASSETTES[relative]
    assert len(recorded) == interactions
    seen_lists = seen_items = 0
    for exchange in recorded:
        assert exchange.status == 200
        body = json.loads(exchange.body)
        if isinstance(body, list):
            seen_lists += 1
            for limit in (1, 30, 500, 1000):
                result = replay(exchange, feed(limit=limit))
                assert len(result.follow) == min(limit, len(body))
                assert not result.items
                assert not result.tombstones
                assert [r.url for r in result.follow] == [
                    f"{DEFAULT_BASE_URL}/item/{i}.json" for i in body[:limit]
                ]
                assert all(r.purpose["kind"] == "item" for r in result.follow)
                assert all(r.purpose["depth"] == 0 for r in result.follow)
        else:
            seen_items += 1
            result = replay(exchange)
            (item,) = result.items
            assert not result.tombstones
            assert not result.follow  # comment_depth 0, no polls in the corpus
            assert item.source == "hn"
            assert item.feed == "hn-top"
            assert item.native_id == str(body["id"])
            assert item.title == body["title"]
            assert item.author == body["by"]
            assert item.text == body.get("text", "")
            assert item.url == (body.get("url") or item_page_url(body["id"]))
            assert RFC3339_UTC.match(item.published_at)
            assert item.extra == {"type": body["type"]}
            assert "kids" not in item.extra
            assert item.counters["score"] == body["score"]
            if "descendants" in body:
                assert item.counters["descendants"] == body["descendants"]
            if "kids" in body:
                assert item.counters["kids"] == len(body["kids"])
            else:
                assert "kids" not in item.counters
    assert (seen_lists, seen_items) == (lists, items)


def test_routing_by_purpose_matches_routing_by_url() -> None:
    recorded = exchanges("topnews-vcr/hacker_news_item.yml")[0]
    by_url = replay(recorded)
    by_purpose = replay(recorded, purpose={"kind": "item", "depth": 0, "id": 39382092})
    assert by_url == by_purpose
    ids = exchanges("topnews-vcr/hackernews_top_story_ids.yml")[0]
    assert replay(ids) == replay(ids, purpose={"kind": "list"})


def test_details_list_follows_exactly_the_recorded_item_requests() -> None:
    """The topnews recorder fetched all 500 ids in list order; limit=500 plans the same 500 URLs."""
    recorded = exchanges(DETAILS)
    result = replay(recorded[0], feed(limit=500))
    assert [r.url for r in result.follow] == [e.url for e in recorded[1:]]
    assert [r.purpose["id"] for r in result.follow][:3] == [41243992, 41244648, 41236718]


def test_default_limit_is_30() -> None:
    result = replay(exchanges(DETAILS)[0])
    assert len(result.follow) == 30


def test_details_cassette_facts() -> None:
    """The README's facts about hackernews_top_stories_details.yml, measured on items."""
    items = corpus_items(DETAILS)
    assert len(items) == 500
    assert len({i.native_id for i in items}) == 500
    without_url = [i for i in items if HN_PAGE.match(i.url)]
    assert len(without_url) == 27  # Ask HN and other text posts
    for item in without_url:
        match = HN_PAGE.match(item.url)
        assert match is not None
        assert match.group(1) == item.native_id
        assert item.text  # text posts carry HTML text
    stories = [i for i in items if i.extra["type"] == "story"]
    assert len(stories) == 499
    assert sum("kids" not in i.counters for i in stories) == 60
    assert (
        sum(i.counters.get("kids", 0) > 0 and i.counters["descendants"] == 0 for i in items) == 11
    )
    assert sum(any(ord(c) > 127 for c in i.title) for i in items) == 45


def test_corpus_wide_facts() -> None:
    """README: 548 stories and 4 jobs; 63 stories without kids; 12 with kids and descendants 0."""
    items = corpus_items()
    assert len(items) == 552
    kinds = [i.extra["type"] for i in items]
    assert kinds.count("story") == 548
    assert kinds.count("job") == 4
    stories = [i for i in items if i.extra["type"] == "story"]
    assert all("descendants" in i.counters for i in stories)
    assert sum("kids" not in i.counters for i in stories) == 63
    assert (
        sum(i.counters.get("kids", 0) > 0 and i.counters["descendants"] == 0 for i in items) == 12
    )
    jobs = [i for i in items if i.extra["type"] == "job"]
    assert {j.native_id for j in jobs} == {"12955174", "12991490", "41245073"}
    for job in jobs:
        assert "descendants" not in job.counters
        assert "kids" not in job.counters
        assert job.counters["score"] == 1


def test_launch_hn_item_41247211_exact_values() -> None:
    """A non-ASCII (``!binary`` in the YAML) text post with kids but ``descendants: 0``."""
    (item,) = [
        i for i in corpus_items("topnews-vcr/hacker_news_job.yml") if i.native_id == "41247211"
    ]
    assert item.title == "Launch HN: Promi (YC S24) \u2013 AI-powered ecommerce discounts"
    assert item.author == "pmoot"
    assert item.published_at == "2024-08-14T15:28:43.000000Z"  # time 1723649323
    assert item.url == "https://news.ycombinator.com/item?id=41247211"
    assert item.text.startswith(
        "We\u2019re Peter and Jiaxin, and we\u2019re building Promi (<a href="
    )
    assert "https:&#x2F;&#x2F;www.usepromi.com" in item.text  # HTML entities kept as sent
    assert item.counters == {"score": 2, "descendants": 0, "kids": 1}
    assert item.extra == {"type": "story"}


def test_story_41243992_exact_values() -> None:
    (item,) = [i for i in corpus_items(DETAILS) if i.native_id == "41243992"]
    assert item.title == "Examples of Great URL Design (2023)"
    assert item.url == "https://blog.jim-nielsen.com/2023/examples-of-great-urls/"
    assert item.author == "r4um"
    assert item.published_at == "2024-08-14T08:42:22.000000Z"
    assert item.counters == {"score": 336, "descendants": 134, "kids": 43}


def test_exvcr_non_ascii_titles_decode() -> None:
    titles = {i.native_id: i.title for i in corpus_items("hack_pop-exvcr/hackernews.json")}
    assert titles["12949114"] == "\u201cI have toyota corola\u201d"
    assert titles["12953368"] == (
        "Shazam Keeps Your Mac\u2019s Microphone Always On, Even When You Turn It Off"
    )


def test_job_with_text_and_no_url_gets_the_item_page() -> None:
    (exchange,) = exchanges("hack_pop-exvcr/hackernews_story_12991490.json")
    (item,) = replay(exchange).items
    assert item.url == "https://news.ycombinator.com/item?id=12991490"
    assert item.title == "Upcall, an on-demand API Callforce, is hiring an Operations Manager"
    assert item.text.startswith("Our Operations team is the heart and soul of Upcall.")
    assert "&amp;" in item.text
    assert item.published_at == "2016-11-19T01:37:05.000000Z"  # time 1479519425
    assert item.counters == {"score": 1}
    assert item.extra == {"type": "job"}


# --------------------------------------------------------------------------- comment trees


def test_comment_depth_follows_kids_of_a_real_story() -> None:
    exchange = exchanges("topnews-vcr/hacker_news_item.yml")[0]
    kids = json.loads(exchange.body)["kids"]
    assert replay(exchange, feed(comment_depth=0)).follow == ()
    result = replay(exchange, feed(comment_depth=1))
    assert [r.url for r in result.follow] == [f"{API}/item/{k}.json" for k in kids]
    assert [r.purpose for r in result.follow] == [
        {"kind": "item", "depth": 1, "id": k} for k in kids
    ]


# Synthetic, shaped like the API README's comment example (item 2921983).
COMMENT = {
    "by": "norvig",
    "id": 2921983,
    "kids": [2922097, 2922429, 2924562],
    "parent": 2921506,
    "text": "Aw shucks, guys ... you make me blush with your compliments.<p>Tell you what",
    "time": 1314211127,
    "type": "comment",
}


def test_comment_item_has_parent_and_item_page_url() -> None:
    result = synthetic(COMMENT, 2921983, depth=1, comment_depth=1)
    (item,) = result.items
    assert item.native_id == "2921983"
    assert item.url == "https://news.ycombinator.com/item?id=2921983"
    assert item.title == ""
    assert item.text == COMMENT["text"]
    assert item.author == "norvig"
    assert item.published_at == "2011-08-24T18:38:47.000000Z"
    assert item.extra == {"type": "comment", "parent": 2921506}
    assert item.counters == {"kids": 3}
    assert result.follow == ()  # depth 1 is the limit


@pytest.mark.parametrize(
    ("depth", "limit", "follows"), [(0, 0, 0), (0, 1, 3), (1, 1, 0), (1, 3, 3)]
)
def test_comment_follow_ups_are_depth_limited(depth: int, limit: int, follows: int) -> None:
    result = synthetic(COMMENT, 2921983, depth=depth, comment_depth=limit)
    assert len(result.follow) == follows
    assert all(r.purpose["depth"] == depth + 1 for r in result.follow)


def test_deleted_comment_is_a_tombstone_and_its_replies_are_still_followed() -> None:
    body = {
        "deleted": True,
        "id": 8000,
        "kids": [8001],
        "parent": 7999,
        "time": 1,
        "type": "comment",
    }
    result = synthetic(body, 8000, depth=1, comment_depth=2)
    assert result.items == ()
    (tomb,) = result.tombstones
    assert (tomb.source, tomb.feed, tomb.native_id, tomb.reason) == (
        "hn",
        "hn-top",
        "8000",
        "deleted",
    )
    assert [r.url for r in result.follow] == [f"{API}/item/8001.json"]


def test_dead_story_is_a_tombstone() -> None:
    body = {
        "by": "spammer",
        "dead": True,
        "id": 9000,
        "score": 1,
        "time": 1,
        "title": "x",
        "type": "story",
    }
    result = synthetic(body, 9000)
    assert result.items == ()
    assert [(t.native_id, t.reason) for t in result.tombstones] == [("9000", "dead")]


def test_null_body_is_a_tombstone_for_the_requested_id() -> None:
    result = synthetic(None, 99999999)
    assert [(t.native_id, t.reason) for t in result.tombstones] == [
        ("99999999", "null (no such item)")
    ]
    # Without a purpose (replayed traffic) the id comes from the URL.
    url = f"{API}/item/123.json"
    exchange = Exchange("GET", url, 200, (), b"null")
    result = SOURCE.parse(feed(), Request(url=url), exchange)
    assert [(t.native_id, t.reason) for t in result.tombstones] == [("123", "null (no such item)")]


@pytest.mark.parametrize("status", [404, 410])
def test_missing_item_status_is_a_tombstone(status: int) -> None:
    result = synthetic(b"", 4242, status=status)
    assert [(t.native_id, t.reason) for t in result.tombstones] == [("4242", f"HTTP {status}")]


# Synthetic, shaped like the API README's poll (126809) and pollopt (160705) examples.
POLL = {
    "by": "pg",
    "descendants": 54,
    "id": 126809,
    "kids": [126822, 126823],
    "parts": [126810, 126811, 126812],
    "score": 46,
    "text": "",
    "time": 1204403652,
    "title": "Poll: What would happen if News.YC had explicit support for polls?",
    "type": "poll",
}


def test_poll_keeps_parts_and_follows_its_options() -> None:
    result = synthetic(POLL, 126809)
    (item,) = result.items
    assert item.extra == {"type": "poll", "parts": [126810, 126811, 126812]}
    assert item.counters == {"score": 46, "descendants": 54, "kids": 2}
    assert item.url == "https://news.ycombinator.com/item?id=126809"
    assert item.title == POLL["title"]
    # Poll options are content: followed at the poll's depth even with comment_depth 0.
    assert [r.purpose for r in result.follow] == [
        {"kind": "item", "depth": 0, "id": p} for p in (126810, 126811, 126812)
    ]


def test_pollopt_item() -> None:
    body = {
        "by": "pg",
        "id": 160705,
        "poll": 160704,
        "score": 335,
        "text": "Yes, ban them; I'm tired of seeing Valleywag stories on News.YC.",
        "time": 1207886576,
        "type": "pollopt",
    }
    (item,) = synthetic(body, 160705).items
    assert item.extra == {"type": "pollopt", "poll": 160704}
    assert item.counters == {"score": 335}
    assert item.text == body["text"]
    assert item.published_at == "2008-04-11T04:02:56.000000Z"


def test_job_with_empty_url_gets_the_item_page() -> None:
    """The API README's job example (192327) has ``"url": ""``."""
    body = {
        "by": "justin",
        "id": 192327,
        "score": 6,
        "text": "Justin.tv",
        "time": 1210981217,
        "title": "Justin.tv is looking for a Lead Flash Engineer!",
        "type": "job",
        "url": "",
    }
    (item,) = synthetic(body, 192327).items
    assert item.url == "https://news.ycombinator.com/item?id=192327"


# --------------------------------------------------------------------------- errors


def test_truncated_item_body_names_line_and_column() -> None:
    exchange = exchanges("topnews-vcr/hacker_news_item.yml")[0]
    cut = exchange.body[:50]  # ends with the opening quote of the "kids" key
    assert cut.endswith(b'39382092,"')
    with pytest.raises(ParseError, match="malformed JSON") as info:
        synthetic(cut, 39382092)
    assert info.value.position == "line 1 column 50"
    assert info.value.url == f"{API}/item/39382092.json"


@pytest.mark.parametrize(
    ("body", "position"),
    [
        (b"", "byte 0"),
        (b"[1, 2,", "line 1 column 7"),
        (b"[\xff]", "byte 1"),
    ],
)
def test_malformed_list_bodies(body: bytes, position: str) -> None:
    url = f"{API}/topstories.json"
    exchange = Exchange("GET", url, 200, (), body)
    with pytest.raises(ParseError) as info:
        SOURCE.parse(feed(), Request(url=url, purpose={"kind": "list"}), exchange)
    assert info.value.position == position


@pytest.mark.parametrize(
    ("body", "position"),
    [
        (b'{"ids": [1]}', "$"),
        (b'[1, 2, "3"]', "$[2]"),
        (b"[1, true]", "$[1]"),
        (b"[1, -2]", "$[1]"),
    ],
)
def test_list_of_the_wrong_shape(body: bytes, position: str) -> None:
    url = f"{API}/newstories.json"
    exchange = Exchange("GET", url, 200, (), body)
    with pytest.raises(ParseError) as info:
        SOURCE.parse(feed(list="new"), Request(url=url), exchange)
    assert info.value.position == position


def test_duplicate_ids_in_a_list_are_followed_once() -> None:
    url = f"{API}/topstories.json"
    exchange = Exchange("GET", url, 200, (), b"[3, 1, 3, 2]")
    result = SOURCE.parse(feed(), Request(url=url), exchange)
    assert [r.purpose["id"] for r in result.follow] == [3, 1, 2]


@pytest.mark.parametrize(
    ("body", "position"),
    [
        ([1, 2], "$"),
        ({"type": "story"}, "$.id"),
        ({"id": "5", "type": "story"}, "$.id"),
        ({"id": 5, "kids": "6"}, "$.kids"),
        ({"id": 5, "kids": [6, None]}, "$.kids[1]"),
        ({"id": 5, "title": 7}, "$.title"),
        ({"id": 5, "time": "yesterday"}, "$.time"),
        ({"id": 5, "score": True}, "$.score"),
        ({"id": 5, "parent": "x"}, "$.parent"),
        ({"id": 6}, "$.id"),  # answers a request for item 5
    ],
)
def test_item_of_the_wrong_shape(body: object, position: str) -> None:
    with pytest.raises(ParseError) as info:
        synthetic(body, 5)
    assert info.value.position == position


@pytest.mark.parametrize("status", [500, 503, 401, 204])
def test_other_statuses_are_parse_errors_naming_the_status(status: int) -> None:
    with pytest.raises(ParseError, match=f"HTTP {status}"):
        synthetic(b"", 77, status=status)


def test_list_404_is_an_error_not_a_tombstone() -> None:
    url = f"{API}/topstories.json"
    exchange = Exchange("GET", url, 404, (), b"")
    with pytest.raises(ParseError, match="HTTP 404"):
        SOURCE.parse(feed(), Request(url=url, purpose={"kind": "list"}), exchange)


def test_304_gives_an_empty_result() -> None:
    assert synthetic(b"", 77, status=304) == ParseResult()


def test_unknown_url_without_purpose_is_an_error() -> None:
    url = f"{API}/user/pg.json"
    exchange = Exchange("GET", url, 200, (), b"{}")
    with pytest.raises(ParseError, match="not a Hacker News story list or item URL"):
        SOURCE.parse(feed(), Request(url=url), exchange)


def test_follow_ups_use_the_feed_base_url() -> None:
    base = "http://127.0.0.1:9/v0"
    exchange = exchanges("topnews-vcr/hackernews_top_story_ids.yml")[0]
    result = replay(exchange, feed(base_url=base + "/", limit=2))
    assert [r.url for r in result.follow] == [
        f"{base}/item/41243992.json",
        f"{base}/item/41244648.json",
    ]


def test_time_out_of_range_gives_empty_published_at() -> None:
    (item,) = synthetic({"id": 5, "type": "story", "time": 10**20}, 5).items
    assert item.published_at == ""
