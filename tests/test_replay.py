"""The replay transport against the real shared corpora, through the real Fetcher.

Recordings are read with the same reader ``echoctl import`` uses; the
:class:`ReplayTransport` answers the Fetcher exactly as the source answered
the recorder (status, headers, decoded body), and a request that was never
recorded is an error naming it, not a network call.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from echo_archive.harvest.breaker import BreakerState
from echo_archive.harvest.engine import FetchConfig, Fetcher, FetchOutcome
from echo_archive.harvest.recordings import read_recording
from echo_archive.harvest.transport import (
    NotRecordedError,
    ReplayTransport,
    is_placeholder,
)
from echo_archive.model import Exchange, Request
from echo_archive.redaction import redact_url

from .conftest import shared_dir
from .httpfaults import FakeTime


def corpus_file(*parts: str) -> Path:
    path = shared_dir("corpora", *parts[:-1]) / parts[-1]
    assert path.is_file(), path
    return path


HN_ITEM = ("hackernews", "topnews-vcr", "hacker_news_item.yml")
FRED_CATEGORY = ("fred", "pyfredapi-2024", "test_category__test_get_category.yaml")
REDDIT_WIKI = ("reddit", "praw", "TestWikiPage.test_invalid_page.json")
GITHUB_GZIP = ("github", "github3py", "Branch_latest_sha.json")


def replay(transport: ReplayTransport, *requests: Request, **cfg: Any) -> list[FetchOutcome]:
    """Fetch ``requests`` one after another through a Fetcher over ``transport``."""
    fake = FakeTime()

    async def go() -> list[FetchOutcome]:
        async with Fetcher(
            FetchConfig(**cfg),
            transport=transport,
            clock=fake.monotonic,
            wall=fake.wall,
            sleep=fake.sleep,
        ) as fetcher:
            return [await fetcher.fetch(r, source_kind="replay") for r in requests]

    return asyncio.run(go())


def test_recorded_url_replays_the_exact_exchange() -> None:
    path = corpus_file(*HN_ITEM)
    (recorded,) = read_recording(path).exchanges
    (outcome,) = replay(ReplayTransport.from_paths([path]), Request(recorded.url))
    assert outcome.ok
    assert outcome.attempts == 1
    ex = outcome.exchange
    assert ex is not None
    assert ex.status == recorded.status == 200
    assert ex.body == recorded.body
    assert ex.recorded_at == recorded.recorded_at
    assert ex.header("content-type") == recorded.header("content-type")
    assert ex.header("content-length") == str(len(recorded.body))


def test_gzip_recorded_body_is_served_decoded_once() -> None:
    path = corpus_file(*GITHUB_GZIP)
    recorded = next(e for e in read_recording(path).exchanges if e.header("content-encoding"))
    assert recorded.body.startswith(b"{")  # the reader decoded the stored gzip
    (outcome,) = replay(ReplayTransport([recorded]), Request(recorded.url))
    assert outcome.ok
    assert outcome.exchange is not None
    assert outcome.exchange.body == recorded.body
    assert outcome.exchange.header("content-encoding") is None


def test_repeated_requests_are_answered_in_recording_order_then_the_last_repeats() -> None:
    path = corpus_file(*FRED_CATEGORY)
    recorded = read_recording(path).exchanges
    assert len(recorded) == 4
    assert len({e.url for e in recorded}) == 1
    # the live request carries a key, and its parameters in another order
    url = "https://api.stlouisfed.org/fred/category?file_type=json&api_key=abc123&category_id=125"
    outcomes = replay(ReplayTransport.from_paths([path]), *[Request(url)] * 6)
    dates = [o.exchange.header("date") if o.exchange else None for o in outcomes]
    want = [e.header("date") for e in recorded]
    assert dates == [*want, want[-1], want[-1]]
    for outcome in outcomes:
        assert outcome.exchange is not None
        assert "abc123" not in outcome.exchange.url
        assert outcome.exchange.body == recorded[0].body


def test_placeholders_in_recorded_paths_match_any_value() -> None:
    path = corpus_file(*REDDIT_WIKI)
    recorded = next(e for e in read_recording(path).exchanges if e.method == "GET")
    assert "<TEST_SUBREDDIT>" in recorded.url
    request = Request(
        "https://oauth.reddit.com/r/python/wiki/invalid?raw_json=1",
        headers=(("Authorization", "bearer live-token"),),
    )
    (outcome,) = replay(ReplayTransport.from_paths([path]), request)
    assert outcome.error is None  # a 404 is an answer
    ex = outcome.exchange
    assert ex is not None
    assert (ex.status, ex.body) == (404, recorded.body)
    assert dict(ex.request_headers)["Authorization"] == "<redacted>"


def test_unmatched_request_is_a_clear_error_after_one_attempt() -> None:
    transport = ReplayTransport.from_paths([corpus_file(*HN_ITEM)])
    url = "https://hacker-news.firebaseio.com/v0/item/1.json"
    fake = FakeTime()

    async def go() -> tuple[FetchOutcome, BreakerState, int]:
        async with Fetcher(
            FetchConfig(),
            transport=transport,
            clock=fake.monotonic,
            wall=fake.wall,
            sleep=fake.sleep,
        ) as fetcher:
            outcome = await fetcher.fetch(Request(url), source_kind="hn")
            breaker = fetcher.breaker("hacker-news.firebaseio.com")
            return outcome, breaker.state, breaker.metrics().calls

    outcome, state, calls = asyncio.run(go())
    assert outcome.exchange is None
    assert outcome.attempts == 1
    assert outcome.error == f"not recorded: GET {url}"
    assert fake.sleeps == []
    assert (state, calls) == (BreakerState.CLOSED, 0)  # a replay miss is not the host's fault


def test_not_recorded_error_redacts_secrets_and_is_a_transport_error() -> None:
    transport = ReplayTransport([])

    async def go() -> None:
        async with httpx.AsyncClient(transport=transport) as client:
            with pytest.raises(NotRecordedError) as info:
                await client.get("https://api.stlouisfed.org/fred/series?api_key=k&x=1")
            assert isinstance(info.value, httpx.TransportError)
            assert str(info.value) == (
                "not recorded: GET https://api.stlouisfed.org/fred/series?api_key=REDACTED&x=1"
            )

    asyncio.run(go())


def ex(url: str, body: bytes = b"", method: str = "GET") -> Exchange:
    return Exchange(method=method, url=url, status=200, headers=(), body=body)


def test_matching_rules() -> None:
    transport = ReplayTransport(
        [
            ex("https://h.example/a?x=1&y=2", b"xy"),
            ex("https://h.example/a?x=1&y=2&y=3", b"xyy"),
            ex("https://h.example/b?token=%3CACCESS_TOKEN%3E&q=%3CQUERY%3E", b"b"),
            ex("https://h.example/c", b"post", method="POST"),
            ex("https://H.EXAMPLE:443/d/", b"d"),
        ]
    )

    def body(method: str, url: str) -> bytes | None:
        found = transport.match(method, url)
        return None if found is None else found.body

    assert body("GET", "https://h.example/a?y=2&x=1") == b"xy"
    assert body("GET", "https://h.example/a?y=3&x=1&y=2") == b"xyy"
    assert body("GET", "https://h.example/a?x=1") is None
    assert body("GET", "https://h.example/a?x=1&y=9") is None
    assert body("GET", "https://h.example/b?q=anything") == b"b"  # secret ignored, value wild
    assert body("GET", "https://h.example/b") is None  # the placeholder stands for a value
    assert body("get", "https://h.example/a?x=1&y=2&api_key=zzz") == b"xy"
    assert body("GET", "https://h.example/c") is None
    assert body("POST", "https://h.example/c") == b"post"
    assert body("GET", "https://h.example/d/") == b"d"
    assert body("GET", "http://h.example/d/") is None  # scheme and port differ
    assert body("GET", "https://h.example/d") is None  # trailing slash matters


def test_redact_url_and_placeholders() -> None:
    assert redact_url("https://x/y?a=1&api_key=k&Access_Token=t#f") == (
        "https://x/y?a=1&api_key=REDACTED&Access_Token=REDACTED#f"
    )
    assert redact_url("https://user:pw@x/y") == "https://x/y"
    assert redact_url("https://x/y?page_token=abc") == "https://x/y?page_token=abc"
    assert is_placeholder("<TEST_SUBREDDIT>")
    assert is_placeholder("MOCK_API_KEY")
    assert not is_placeholder("python")


@pytest.mark.parametrize("folder", ["hackernews", "fred"])
def test_every_recorded_request_of_a_corpus_is_matched(folder: str) -> None:
    root = shared_dir("corpora", folder)
    for path in sorted(root.rglob("*.y*ml")) + sorted(root.rglob("*.json")):
        if path.name == "provenance.json":
            continue
        recording = read_recording(path)
        transport = ReplayTransport(recording.exchanges)
        for recorded in recording.exchanges:
            found = transport.match(recorded.method, recorded.url)
            assert found is not None, f"{path.name}: {recorded.method} {recorded.url}"
            assert found.url == recorded.url
