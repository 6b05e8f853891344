"""Tests of the ``reddit`` source (echo_archive.sources.reddit) against real Reddit responses.

Every exchange of every cassette under ``../shared/corpora/reddit`` (PRAW and
prawcore betamax recordings of ``oauth.reddit.com``; see its PROVENANCE.md) is
parsed, except the OAuth token ``POST``s, which are not content. Each one is
asserted to give a listing, a comment page, a morechildren response, an empty
result or a ParseError. The expected values below (ids, titles, authors,
times, cursors) were read from the cassettes with ``json`` and ``grep``.

Where one thing is in several responses (a listing, a comment page, a
permalink page, api/info, morechildren, recordings of different years), the
tests check that it has one content digest unless it really changed.

Where a test needs a variant no recording has (``[removed]`` text, a
``removed_by_category``, a truncated or damaged body), it edits a real
response in memory and says so.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from echo_archive.errors import ParseError, SourceError
from echo_archive.harvest.importer import import_files
from echo_archive.harvest.recordings import read_recording
from echo_archive.model import Exchange, Item, ParseResult, Request
from echo_archive.pipeline.versioning import content_digest
from echo_archive.sources.base import Feed, Source
from echo_archive.sources.reddit import (
    MORECHILDREN_BATCH,
    RedditPage,
    RedditSource,
    user_agent,
)
from echo_archive.vault.vault import Vault

from .conftest import shared_dir

UA = {"app_id": "org.example.echo", "version": "0.1.0", "username": "echo_bot"}
USER_AGENT = "python:org.example.echo:0.1.0 (by /u/echo_bot)"
FEED = Feed(
    name="r-askreddit", source="reddit", params={"subreddit": "AskReddit", "user_agent": UA}
)
SOURCE = RedditSource()
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")

# --------------------------------------------------------------------------- corpus expectations

#: What each content exchange of each cassette gives, in recording order (token
#: POSTs left out): L listing, C comment page (array of listings), M
#: morechildren response, - empty result (204/205), E ParseError. The two
#: prawcore files that hold nothing but a failing token POST have "".
OUTCOMES: dict[str, str] = {
    "praw/TestAuthImplicit.test_implicit__with_invalid_token.json": "E",  # 401
    "praw/TestComment.test_parent__chain.json": "LCCCCC",
    "praw/TestComment.test_refresh__deleted_comment.json": "LC",
    "praw/TestComment.test_refresh__removed_comment.json": "LC",
    "praw/TestComment.test_refresh__with_reply_sort_and_limit.json": "LC",
    "praw/TestCommentForest.test_replace__all_with_comment_limit.json": "C" + "M" * 44 + "C" * 6,
    "praw/TestCommentForest.test_replace__on_direct_comment.json": "LCC",
    "praw/TestDomainListing.test_new.json": "L",
    "praw/TestDomainListing.test_rising.json": "L",  # empty
    "praw/TestFront.test_best.json": "L",
    "praw/TestFront.test_hot.json": "L",
    "praw/TestFront.test_new.json": "L",
    "praw/TestListingGenerator.test_no_items.json": "L",  # empty
    # mod notes: {"deleted": true}, {"mod_notes": ...}, a t5 "about" thing, a 500, 400s
    "praw/TestModNotes.test_delete_note__all_notes.json": "E" * 28,
    "praw/TestMore.test_comments.json": "MC",
    "praw/TestMore.test_comments__continue_thread_type.json": "CC",
    "praw/TestMultiredditListings.test_rising.json": "L",
    "praw/TestPollData.test_get_user_selection.json": "C",
    "praw/TestReddit.test_bad_request_without_json_text_html_response.json": "E",
    "praw/TestReddit.test_bad_request_without_json_text_plain_response.json": "E",
    "praw/TestReddit.test_bare_badrequest.json": "E",
    "praw/TestReddit.test_info_url.json": "L",
    "praw/TestReddit.test_live_now__no_featured.json": "-",  # 204
    "praw/TestRedditor.test_trophies__user_not_exist.json": "E",
    "praw/TestRedditorListings.test_comments__new.json": "L",
    "praw/TestRedditorListings.test_new.json": "L",
    "praw/TestRedditorListings.test_saved__other_user.json": "E",  # 403
    "praw/TestRedditors.test_partial_redditors__not_found.json": "EEE",  # 404, 404, a t2 map
    "praw/TestSubmission.test_comments.json": "C",
    "praw/TestSubmission.test_duplicates.json": "C",
    "praw/TestSubmission.test_invalid_attribute.json": "C",
    "praw/TestSubmission.test_resolve_from_share_url__invalid_url.json": "E",  # 301
    "praw/TestSubreddit.test_search.json": "L",
    "praw/TestSubreddit.test_sticky__not_set.json": "E",
    "praw/TestSubreddit.test_traffic__not_public.json": "E",
    "praw/TestSubredditListings.test_comments.json": "L",
    "praw/TestSubredditListings.test_controversial.json": "L",
    "praw/TestSubredditListings.test_hot.json": "L",
    "praw/TestSubredditListings.test_new.json": "L",
    "praw/TestSubredditListings.test_rising.json": "L",
    "praw/TestSubredditListings.test_top.json": "L",
    "praw/TestSubredditQuarantine.test_opt_out.json": "EE",  # 302, then 403
    "praw/TestSubredditStreams.test_comments__with_continue_after_id.json": "LL",
    "praw/TestSubredditStreams.test_comments__with_pause.json": "LLL",
    "praw/TestSubredditStreams.test_submissions.json": "LL",
    "praw/TestSubreddits.test_popular.json": "L",  # t5 only
    "praw/TestSubreddits.test_premium__without_premium.json": "L",
    "praw/TestSubreddits.test_search.json": "L",
    "praw/TestSubreddits.test_stream.json": "LLL",
    "praw/TestWikiPage.test_invalid_page.json": "E",
    "prawcore/TestAuthorizer.test_refresh__with_invalid_token.json": "",
    "prawcore/TestSession.test_request__accepted.json": "E",  # 202 {}
    "prawcore/TestSession.test_request__bad_gateway.json": "EEE",
    "prawcore/TestSession.test_request__bad_json.json": "E",
    "prawcore/TestSession.test_request__bad_request.json": "E",
    "prawcore/TestSession.test_request__cloudflare_connection_timed_out.json": "EEE",
    "prawcore/TestSession.test_request__cloudflare_unknown_error.json": "EEE",
    "prawcore/TestSession.test_request__conflict.json": "E",
    "prawcore/TestSession.test_request__forbidden.json": "E",
    "prawcore/TestSession.test_request__gateway_timeout.json": "EEE",
    "prawcore/TestSession.test_request__get.json": "L",
    "prawcore/TestSession.test_request__internal_server_error.json": "EEE",
    "prawcore/TestSession.test_request__no_content.json": "-",  # 204
    "prawcore/TestSession.test_request__not_found.json": "E",
    "prawcore/TestSession.test_request__okay_with_0_byte_content.json": "E",
    "prawcore/TestSession.test_request__raw_json.json": "C",
    "prawcore/TestSession.test_request__redirect.json": "E",
    "prawcore/TestSession.test_request__redirect_301.json": "E",
    "prawcore/TestSession.test_request__service_unavailable.json": "EEE",
    "prawcore/TestSession.test_request__too__many_requests__with_retry_headers.json": "E",
    "prawcore/TestSession.test_request__too__many_requests__without_retry_headers.json": "",
    "prawcore/TestSession.test_request__unavailable_for_legal_reasons.json": "E",
    "prawcore/TestSession.test_request__unexpected_status_code.json": "-",  # 205
    "prawcore/TestSession.test_request__unsupported_media_type.json": "E",
    "prawcore/TestSession.test_request__uri_too_long.json": "E",
    "prawcore/TestSession.test_request__with_insufficient_scope.json": "E",
    "prawcore/TestSession.test_request__with_invalid_access_token.json": "E",
}
_SHAPE_LETTER = {"listing": "L", "comments": "C", "morechildren": "M", "empty": "-"}

# README ("Contents"): 1,185 link objects (t3), 2,440 comments (t1), 284 more
# stubs and 252 subreddits (t5), counted as objects over every body, so a
# response recorded in two cassettes counts twice.
README_T3, README_T1, README_MORE, README_T5 = 1185, 2440, 284, 252

# Measured with this parser over every content exchange (the sum of what each
# exchange gives, as the engine would see it):
#   t3: 1,185 items + 0 tombstones + 0 duplicates in one response = README 1,185.
#   t1: 2,414 items + 26 "[deleted]" tombstones = README 2,440; two more
#       tombstones say a comment is absent from its own permalink page.
#   more: 284 stubs seen (22 of them "continue this thread") = README 284.
#   t5: 251 skipped in listings + 1 single "about" thing refused = README 252.
MEASURED_T3_ITEMS, MEASURED_T1_ITEMS = 1185, 2414
MEASURED_T1_DELETED, MEASURED_ABSENT = 26, 2
MEASURED_MORE, MEASURED_CONTINUE, MEASURED_T5_SKIPPED = 284, 22, 251
# Distinct ids over the whole corpus (several cassettes record the same
# thread): 1,160 links, and 1,235 comments that are items somewhere plus 12 that
# are only ever "[deleted]" = the 1,247 distinct t1 ids in the bodies
# (t1_cu5tovd is alive in the 2016 TestMore recordings and "[deleted]" in
# TestCommentForest, so it is in both sets).
UNIQUE_T3, UNIQUE_T1, UNIQUE_T1_ONLY_DELETED = 1160, 1235, 12


def corpus_dir() -> Path:
    """The shared reddit corpus (skips when absent, fails in CI)."""
    return shared_dir("corpora", "reddit")


@functools.cache
def exchanges(name: str) -> tuple[Exchange, ...]:
    """The content exchanges of one cassette: every exchange but the OAuth token POSTs."""
    recording = read_recording(corpus_dir() / name)
    return tuple(ex for ex in recording.exchanges if not is_token_request(ex))


def is_token_request(exchange: Exchange) -> bool:
    """True for the OAuth token POST that opens most cassettes (not content)."""
    path: str = urlsplit(exchange.url).path
    return path.rstrip("/") == "/api/v1/access_token"


def page(
    name: str,
    index: int,
    feed: Feed = FEED,
    purpose: Mapping[str, Any] | None = None,
) -> RedditPage:
    """Parse content exchange ``index`` of cassette ``name``."""
    exchange = exchanges(name)[index]
    request = Request(url=exchange.url, method=exchange.method, purpose=purpose or {})
    return SOURCE.parse_page(feed, request, exchange)


def error(name: str, index: int = 0) -> ParseError:
    """The ParseError content exchange ``index`` of ``name`` raises."""
    with pytest.raises(ParseError) as info:
        page(name, index)
    return info.value


def by_id(result: ParseResult, native_id: str) -> Item:
    """The item ``native_id`` of a result."""
    matches = [item for item in result.items if item.native_id == native_id]
    assert len(matches) == 1, f"{native_id}: {len(matches)} matches"
    return matches[0]


def feed_with(**params: Any) -> Feed:
    """A feed of r/AskReddit with extra parameters."""
    return Feed(
        name="t", source="reddit", params={"subreddit": "AskReddit", "user_agent": UA, **params}
    )


def query(url: str) -> dict[str, str]:
    """The query parameters of a URL."""
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def raw_thing(name: str, index: int, fullname: str) -> dict[str, Any]:
    """The ``data`` object of thing ``fullname`` as Reddit sent it in content exchange ``index``."""
    stack: list[Any] = [json.loads(exchanges(name)[index].body)]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            data = node.get("data")
            if isinstance(data, dict) and f"{node.get('kind')}_{data.get('id')}" == fullname:
                return data
            stack.extend(node.values())
    raise AssertionError(f"{fullname} is not in exchange {index} of {name}")


def edit_thing(fullname: str, change: Mapping[str, Any], drop: tuple[str, ...] = ()) -> Any:
    """An ``edit`` for :func:`edited_exchange`: update (and drop keys of) one thing's data."""

    def edit(document: Any) -> None:
        stack: list[Any] = [document]
        while stack:
            node = stack.pop()
            if isinstance(node, list):
                stack.extend(node)
            elif isinstance(node, dict):
                data = node.get("data")
                if isinstance(data, dict) and f"{node.get('kind')}_{data.get('id')}" == fullname:
                    data.update(change)
                    for key in drop:
                        data.pop(key, None)
                    return
                stack.extend(node.values())
        raise AssertionError(f"{fullname} is not in the document")

    return edit


def edited_exchange(exchange: Exchange, edit: Any) -> Exchange:
    """A copy of a real exchange whose JSON body was changed by ``edit(document)``."""
    document = json.loads(exchange.body)
    edit(document)
    return Exchange(
        method=exchange.method,
        url=exchange.url,
        status=exchange.status,
        headers=exchange.headers,
        body=json.dumps(document).encode(),
    )


# --------------------------------------------------------------------------- the whole corpus


def test_every_corpus_file_is_classified() -> None:
    names = sorted(str(path.relative_to(corpus_dir())) for path in corpus_dir().glob("*/*.json"))
    assert names == sorted(OUTCOMES)
    assert len(names) == 77


@pytest.mark.parametrize("name", sorted(OUTCOMES))
def test_corpus_exchange_outcomes(name: str) -> None:
    letters = []
    for index, exchange in enumerate(exchanges(name)):
        failure: ParseError | None = None
        try:
            parsed = page(name, index)
        except ParseError as exc:
            failure = exc
        if failure is not None:
            assert failure.url == (exchange.final_url or exchange.url)
            letters.append("E")
            continue
        letters.append(_SHAPE_LETTER[parsed.shape])
        for item in parsed.result.items:
            assert item.source == "reddit"
            assert item.feed == FEED.name
            assert re.fullmatch(r"t[13]_[0-9a-z]+", item.native_id)
            assert RFC3339_UTC.match(item.published_at), item
            assert item.url.startswith("http"), item
            assert not item.deleted
    assert "".join(letters) == OUTCOMES[name]


def test_only_token_requests_are_left_out() -> None:
    total = 0
    for name in OUTCOMES:
        recording = read_recording(corpus_dir() / name)
        tokens = [ex for ex in recording.exchanges if is_token_request(ex)]
        assert all(ex.method == "POST" for ex in tokens)
        total += len(recording.exchanges)
    assert total == 261  # README: 261 recorded interactions


def test_corpus_totals_against_the_readme() -> None:
    counts: Counter[str] = Counter()
    unique: dict[str, set[str]] = {"t1": set(), "t3": set()}
    deleted: set[str] = set()
    for name, outcome in OUTCOMES.items():
        for index, letter in enumerate(outcome):
            if letter == "E":
                continue
            parsed = page(name, index)
            for item in parsed.result.items:
                counts[item.native_id[:2]] += 1
                unique[item.native_id[:2]].add(item.native_id)
            for tombstone in parsed.result.tombstones:
                if tombstone.reason == "absent from its permalink page":
                    counts["absent"] += 1
                else:
                    counts["deleted_" + tombstone.native_id[:2]] += 1
                    deleted.add(tombstone.native_id)
            counts["more"] += parsed.more_stubs
            counts["continue"] += parsed.continue_stubs
            counts["duplicates"] += parsed.duplicates
            counts.update({f"skipped_{k}": v for k, v in parsed.skipped.items()})
    print(dict(counts), {k: len(v) for k, v in unique.items()}, len(deleted))

    assert counts["t3"] == MEASURED_T3_ITEMS
    assert counts["t1"] == MEASURED_T1_ITEMS
    assert counts["deleted_t1"] == MEASURED_T1_DELETED
    assert counts["deleted_t3"] == 0
    assert counts["absent"] == MEASURED_ABSENT
    assert counts["more"] == MEASURED_MORE
    assert counts["continue"] == MEASURED_CONTINUE
    assert counts["skipped_t5"] == MEASURED_T5_SKIPPED
    assert counts["duplicates"] == 0
    # The README's object counts, re-derived from what the parser emits.
    assert counts["t3"] + counts["deleted_t3"] + counts["duplicates"] == README_T3
    assert counts["t1"] + counts["deleted_t1"] == README_T1
    assert counts["more"] == README_MORE
    assert counts["skipped_t5"] + 1 == README_T5  # + the single t5 of r/<TEST_SUBREDDIT>/about

    assert len(unique["t3"]) == UNIQUE_T3
    assert len(unique["t1"]) == UNIQUE_T1
    assert len(deleted - unique["t1"]) == UNIQUE_T1_ONLY_DELETED
    assert deleted & unique["t1"] == {"t1_cu5tovd"}


# --------------------------------------------------------------------------- listings


def test_askreddit_hot_listing() -> None:
    parsed = page("praw/TestSubredditListings.test_hot.json", 0)
    result = parsed.result
    assert parsed.shape == "listing"
    assert len(result.items) == 102  # limit=100 plus two stickied posts
    first = result.items[0]
    assert first.native_id == "t3_46c00m"
    assert first.title == "THE ASKREDDIT MOBILE DESIGN EXTRAVAGANZA CONTEST!"
    assert first.author == "orangejulius"
    assert first.published_at == "2016-02-18T00:30:45.000000Z"  # created_utc 1455755445.0
    # A self post: its URL is its permalink on www.reddit.com.
    assert first.url == (
        "https://www.reddit.com/r/AskReddit/comments/46c00m/"
        "the_askreddit_mobile_design_extravaganza_contest/"
    )
    assert first.text.startswith("Hi everybody! (Hi Doctor Nick!)\n\nAskReddit needs")
    assert first.extra["subreddit"] == "AskReddit"
    assert first.extra["is_self"] is True
    assert first.extra["stickied"] is True
    assert first.extra["link_flair_text"] == "Modpost"
    assert first.extra["edited"] == "2016-02-20T23:51:05.000000Z"  # edited: 1456012265.0
    assert first.counters == {"score": 1382, "ups": 1382, "num_comments": 433}  # ratio null
    assert result.cursor == "t3_48dlnt"
    assert result.follow == ()  # pages defaults to 1
    assert result.tombstones == ()


def test_link_post_url_and_counters() -> None:
    result = page("praw/TestFront.test_best.json", 0).result
    item = by_id(result, "t3_8h7u4g")
    assert item.url == "https://i.redd.it/mepzb8ckr1w01.jpg"
    assert item.extra["is_self"] is False
    assert item.extra["domain"] == "i.redd.it"
    assert item.text == ""
    assert item.counters == {"score": 29273, "ups": 29273, "num_comments": 349}  # no ratio sent


def test_search_listing_permalink_query_is_dropped_from_the_url() -> None:
    item = by_id(page("praw/TestSubreddit.test_search.json", 0).result, "t3_4at068")
    assert item.url == (
        "https://www.reddit.com/r/p18s/comments/4at068/"
        "たびたび話題になるサイドバーの閲覧中ユーザ数についてまた調べた/"
    )
    sent = raw_thing("praw/TestSubreddit.test_search.json", 0, "t3_4at068")["permalink"]
    assert sent.endswith("/?ref=search_posts")
    # The same path without the query that only search results add.
    assert item.extra["permalink"] == sent.removesuffix("?ref=search_posts")
    assert item.extra["permalink"] == (
        "/r/p18s/comments/4at068/たびたび話題になるサイドバーの閲覧中ユーザ数についてまた調べた/"
    )


def test_emoji_and_non_latin_text_survive_exactly() -> None:
    search = page("praw/TestSubreddit.test_search.json", 0).result
    item = by_id(search, "t3_4at068")
    assert item.title == "たびたび話題になるサイドバーの閲覧中ユーザ数について（また）調べた"
    assert item.author == "nmtake"
    assert item.published_at == "2016-03-17T13:33:54.000000Z"
    best = by_id(page("praw/TestFront.test_best.json", 0).result, "t3_8h7u4g")
    assert best.title.endswith("Too cute \u2764\ufe0f")  # heart + variation selector 16
    domain = by_id(page("praw/TestDomainListing.test_new.json", 0).result, "t3_5d7pr9")
    # A byte order mark and fullwidth letters, exactly as the author typed them.
    assert domain.title == "\ufeffＷ ｅ ａ ｋ Ｗ ｅ ｄ ｎ ｅ ｓ ｄ ａ ｙ"
    stream = page("praw/TestSubredditStreams.test_comments__with_continue_after_id.json", 0)
    comment = by_id(stream.result, "t1_k3yiw5z")
    assert "🥇" in comment.text
    assert "😈" in comment.text


def test_raw_json_bodies_carry_no_html_entities() -> None:
    result = page("prawcore/TestSession.test_request__raw_json.json", 0).result
    assert by_id(result, "t3_45xjdr").title == "WANT_RAW_JSON test: < > &"


def test_comment_listing_items() -> None:
    result = page("praw/TestSubredditListings.test_comments.json", 0).result
    first = result.items[0]
    assert first.native_id == "t1_d4y8bdp"
    assert first.title == ""
    assert first.text == "great, life is so much better when you can do what you enjoy for a living"
    assert first.author == "preppypuppy"
    assert first.published_at == "2016-07-04T00:04:50.000000Z"
    # No permalink in 2016 comment objects: the URL is built from the link id.
    assert first.url == "https://www.reddit.com/comments/4r4inc/_/d4y8bdp"
    assert first.extra["link_id"] == "t3_4r4inc"
    assert first.extra["parent_id"] == "t3_4r4inc"
    assert first.counters == {"score": 1, "ups": 1, "controversiality": 0}
    assert result.cursor == "t1_d4y8a9e"


def test_user_overview_mixes_links_and_comments() -> None:
    result = page("praw/TestRedditorListings.test_new.json", 0).result
    kinds = Counter(item.native_id[:2] for item in result.items)
    assert kinds == {"t1": 96, "t3": 4}
    assert {item.author for item in result.items} == {"spez"}
    assert result.cursor == "t1_cu31naq"


def test_subreddit_listings_are_skipped_not_items() -> None:
    parsed = page("praw/TestSubreddits.test_popular.json", 0)
    assert parsed.result.items == ()
    assert parsed.skipped == {"t5": 15}
    assert parsed.result.cursor == "t5_2qi58"


def test_pagination_cursor_from_a_stream_and_the_next_page() -> None:
    name = "praw/TestSubredditStreams.test_submissions.json"
    one = page(name, 0)
    assert len(one.result.items) == 100
    assert one.result.cursor == "t3_5jo10c"
    assert one.result.follow == ()  # pages=1

    purpose = {"page": "listing", "number": 1, "count": 0, "more_budget": 5}
    (follow,) = page(name, 0, feed_with(pages=3), purpose).result.follow
    assert follow.url.startswith("https://www.reddit.com/r/AskReddit/new.json?")
    assert query(follow.url) == {
        "raw_json": "1",
        "limit": "100",
        "after": "t3_5jo10c",
        "count": "100",
    }
    assert dict(follow.headers)["User-Agent"] == USER_AGENT
    assert follow.purpose == {"page": "listing", "number": 2, "count": 100, "more_budget": 5}

    # The last allowed page does not follow on.
    last = {"page": "listing", "number": 3, "count": 200, "more_budget": 5}
    assert page(name, 0, feed_with(pages=3), last).result.follow == ()
    # The "before=" page of the stream has after: null: the end.
    two = page(name, 1, feed_with(pages=3))
    assert len(two.result.items) == 4
    assert two.result.cursor is None
    assert two.result.follow == ()


@pytest.mark.parametrize(
    ("name", "index"),
    [
        ("praw/TestListingGenerator.test_no_items.json", 0),
        ("praw/TestDomainListing.test_rising.json", 0),
        ("praw/TestSubreddits.test_premium__without_premium.json", 0),
        ("praw/TestSubredditStreams.test_comments__with_pause.json", 1),
    ],
)
def test_empty_listings_give_nothing_and_follow_nothing(name: str, index: int) -> None:
    parsed = page(name, index, feed_with(pages=5, comments=True))
    assert parsed.shape == "listing"
    assert parsed.result == ParseResult()


def test_comment_trees_are_requested_for_posts_with_comments() -> None:
    feed = feed_with(listing="hot", pages=2, comments=True)
    purpose = {"page": "listing", "number": 1, "count": 0, "more_budget": 5}
    result = page("praw/TestSubredditListings.test_hot.json", 0, feed, purpose).result
    *trees, next_page = result.follow
    assert len(trees) == 102  # every post has comments
    assert trees[0].url == "https://www.reddit.com/comments/46c00m.json?raw_json=1&depth=3"
    assert trees[0].purpose == {
        "page": "comments",
        "link_id": "t3_46c00m",
        "focus": None,
        "more_budget": 1,
    }
    # The cycle's budget of 5 is handed out, one call each, to the first five trees.
    assert [r.purpose["more_budget"] for r in trees[:6]] == [1, 1, 1, 1, 1, 0]
    assert next_page.purpose["more_budget"] == 0
    assert query(next_page.url)["after"] == "t3_48dlnt"
    assert query(next_page.url)["count"] == "102"


def test_posts_without_comments_get_no_tree_request() -> None:
    result = page("praw/TestSubredditStreams.test_submissions.json", 1, feed_with(comments=True))
    assert len(result.result.items) == 4
    posts_with_comments = [i for i in result.result.items if i.counters["num_comments"] > 0]
    assert len(result.result.follow) == len(posts_with_comments)


# --------------------------------------------------------------------------- comment pages


def test_comment_page_with_empty_string_replies() -> None:
    parsed = page("praw/TestSubmission.test_comments.json", 0)
    assert parsed.shape == "comments"
    submission, parent, reply = parsed.result.items
    assert submission.native_id == "t3_2gmzqe"
    assert submission.title == "[PRAW] HTTPS enabled PRAW testing needed"
    assert submission.author == "bboe"
    assert submission.counters["upvote_ratio"] == 0.84
    # cklfmye's replies is a Listing holding cklhv0f, whose replies is "".
    assert parent.native_id == "t1_cklfmye"
    assert parent.author == "paneer_burrito"
    assert reply.native_id == "t1_cklhv0f"
    assert reply.extra["parent_id"] == "t1_cklfmye"
    assert reply.author == "bboe"
    assert reply.published_at == "2014-09-18T03:13:54.000000Z"
    assert parsed.result.follow == ()
    assert parsed.result.cursor is None


def test_comment_forest_is_walked_depth_first_in_document_order() -> None:
    parsed = page("praw/TestMore.test_comments__continue_thread_type.json", 0)
    ids = [item.native_id for item in parsed.result.items]
    # The permalink page of cu5v5h7: the post, then cu5v5h7 -> cu5vad7 -> cu5w1ko.
    assert ids == ["t3_3hahrw", "t1_cu5v5h7", "t1_cu5vad7", "t1_cu5w1ko"]
    assert parsed.result.tombstones == ()  # the focus comment is there


def test_more_stubs_become_morechildren_requests() -> None:
    feed = feed_with(oauth=True, more_budget=20)
    parsed = page("praw/TestMore.test_comments.json", 1, feed)
    assert parsed.shape == "comments"
    assert parsed.more_stubs == 18
    assert parsed.continue_stubs == 6
    assert len(parsed.result.items) == 471
    more, *threads = parsed.result.follow
    assert more.url.startswith("https://oauth.reddit.com/api/morechildren?")
    params = query(more.url)
    assert params["raw_json"] == "1"
    assert params["api_type"] == "json"
    assert params["link_id"] == "t3_3hahrw"
    children = params["children"].split(",")
    assert len(children) == 24
    assert more.purpose["children"] == children
    assert len(threads) == 6
    assert parsed.unfetched_ids == 0
    assert parsed.unfetched_threads == 0
    # 20 calls allowed, 7 made: the 13 left are shared among them (2 each, the first six).
    assert [r.purpose["more_budget"] for r in parsed.result.follow] == [2, 2, 2, 2, 2, 2, 1]


def test_continue_this_thread_stubs_follow_the_parent_permalink() -> None:
    name = "praw/TestMore.test_comments__continue_thread_type.json"
    parsed = page(name, 1, feed_with(more_budget=7))
    threads = [r for r in parsed.result.follow if r.purpose["page"] == "comments"]
    assert [r.purpose["focus"] for r in threads] == [
        "t1_cu61zil",
        "t1_cu5v5h7",
        "t1_cu5uyz1",
        "t1_cu5x40j",
        "t1_cu5w5nv",
        "t1_cu61tk1",
    ]
    assert (
        threads[1].url == "https://www.reddit.com/comments/3hahrw/_/cu5v5h7.json?raw_json=1&depth=3"
    )
    # PRAW followed that stub to the page recorded first in the cassette.
    assert urlsplit(exchanges(name)[0].url).path == "/comments/3hahrw/_/cu5v5h7"


def test_the_budget_caps_the_calls_and_the_rest_is_counted() -> None:
    name = "praw/TestMore.test_comments__continue_thread_type.json"
    for budget in range(10):
        parsed = page(name, 1, feed_with(more_budget=budget))
        follow = parsed.result.follow
        spent = len(follow) + sum(r.purpose["more_budget"] for r in follow)
        assert spent <= budget
        assert len(follow) == min(budget, 7)  # one morechildren batch + six threads
        assert parsed.unfetched_threads == 6 - max(0, min(budget, 7) - 1)
        assert parsed.unfetched_ids == (24 if budget == 0 else 0)
    # The purpose's budget wins over the feed's.
    assert page(name, 1, feed_with(more_budget=9), {"more_budget": 0}).result.follow == ()


def test_morechildren_response() -> None:
    name = "praw/TestMore.test_comments.json"
    asked = ["cu5tt8h", "cu5v9yd", "cu5twf5", "cu5tkk4", "cu5tead"]
    asked += ["cu5rxpy", "cu5oufs", "cu5tpek", "cu5pbdh"]  # as PRAW sent them
    purpose = {"page": "morechildren", "link_id": "t3_3hahrw", "children": asked, "more_budget": 0}
    parsed = page(name, 0, purpose=purpose)
    assert parsed.shape == "morechildren"
    assert [item.native_id for item in parsed.result.items] == [
        "t1_cu5tead",
        "t1_cu5tt8h",
        "t1_cu5v9yd",
        "t1_cu5twf5",
        "t1_cu5oufs",
        "t1_cu5pbdh",
        "t1_cu5rxpy",
    ]
    first = parsed.result.items[0]
    assert first.text == "He saw the chance and he took it, this kid is going places"
    assert first.author == "lava1o"
    assert first.published_at == "2015-08-17T12:55:04.000000Z"
    assert first.url == "https://www.reddit.com/comments/3hahrw/_/cu5tead"
    assert first.counters["score"] == -2
    assert parsed.missing == 2  # cu5tkk4 and cu5tpek did not come back
    assert parsed.result.follow == ()


def test_morechildren_responses_with_nested_stubs() -> None:
    # The 44 morechildren calls of TestCommentForest: their more stubs are
    # followed with the link id the things carry, within the budget.
    name = "praw/TestCommentForest.test_replace__all_with_comment_limit.json"
    stubs = follow = 0
    for index in range(1, 45):
        parsed = page(name, index, feed_with(more_budget=1))
        stubs += parsed.more_stubs
        follow += len(parsed.result.follow)
        for request in parsed.result.follow:
            assert request.purpose["link_id"] == "t3_3hahrw"
    assert stubs > 0
    assert 0 < follow <= 44


def test_morechildren_errors_are_parse_errors() -> None:
    exchange = exchanges("praw/TestMore.test_comments.json")[0]

    def add_error(document: dict[str, Any]) -> None:
        document["json"]["errors"] = [["TOO_MANY_REQUESTS", "slow down", None]]
        del document["json"]["data"]

    broken = edited_exchange(exchange, add_error)
    with pytest.raises(ParseError, match="TOO_MANY_REQUESTS") as info:
        SOURCE.parse(FEED, Request(exchange.url), broken)
    assert info.value.position == "$.json.errors"


# --------------------------------------------------------------------------- deleted and removed


def test_deleted_comment() -> None:
    name = "praw/TestComment.test_refresh__deleted_comment.json"
    info = page(name, 0).result  # api/info?id=t1_d7ltvl0
    assert info.items == ()
    (tombstone,) = info.tombstones
    assert (tombstone.native_id, tombstone.reason) == ("t1_d7ltvl0", "[deleted]")
    assert tombstone.source == "reddit"
    assert tombstone.feed == FEED.name
    # Its permalink page no longer holds it: the forest is empty.
    tree = page(name, 1).result
    assert [item.native_id for item in tree.items] == ["t3_52o2fl"]
    (absent,) = tree.tombstones
    assert (absent.native_id, absent.reason) == ("t1_d7ltvl0", "absent from its permalink page")


def test_removed_comment() -> None:
    name = "praw/TestComment.test_refresh__removed_comment.json"
    # api/info still shows the comment...
    (item,) = page(name, 0).result.items
    assert item.native_id == "t1_dma3mi5"
    assert item.author == "Gooneybirdable"
    # ...but its permalink page answers with the thread without it.
    tree = page(name, 1)
    assert len(tree.result.items) == 201
    assert "t1_dma3mi5" not in {i.native_id for i in tree.result.items}
    (absent,) = tree.result.tombstones
    assert (absent.native_id, absent.reason) == ("t1_dma3mi5", "absent from its permalink page")


def test_deleted_comments_in_a_tree_keep_their_replies() -> None:
    parsed = page("praw/TestCommentForest.test_replace__on_direct_comment.json", 1)
    deleted = sorted(t.native_id for t in parsed.result.tombstones)
    assert deleted == ["t1_d8r9gyy", "t1_d8r9nuo", "t1_d8ra3dn", "t1_d8ra666", "t1_d8rbuag"]
    assert {t.reason for t in parsed.result.tombstones} == {"[deleted]"}
    items = {item.native_id: item for item in parsed.result.items}
    assert not set(deleted) & set(items)
    # Replies under a deleted comment are still items.
    orphans = [i for i in items.values() if i.extra.get("parent_id") in deleted]
    assert orphans


def test_comment_alive_in_one_recording_and_deleted_in_a_later_one() -> None:
    alive = by_id(page("praw/TestMore.test_comments.json", 1).result, "t1_cu5tovd")
    assert alive.text == "How often do you fall over?"
    assert alive.author == "donthurtthisguy"
    later = page("praw/TestCommentForest.test_replace__all_with_comment_limit.json", 15)
    assert ("t1_cu5tovd", "[deleted]") in {(t.native_id, t.reason) for t in later.result.tombstones}


def test_account_deleted_but_text_kept_is_an_item() -> None:
    # author "[deleted]" with the body intact: the comment itself still exists.
    item = by_id(page("praw/TestMore.test_comments.json", 1).result, "t1_cu5p1yt")
    assert item.author == "[deleted]"
    assert item.text.startswith("Wanted to repost this in /r/ChildrenFall")


def test_removed_text_is_a_tombstone() -> None:
    # No recording has "[removed]": a real comment is edited to look removed.
    exchange = exchanges("praw/TestSubmission.test_comments.json")[0]

    def remove(document: list[Any]) -> None:
        data = document[1]["data"]["children"][0]["data"]
        data["author"], data["body"] = "[deleted]", "[removed]"

    parsed = SOURCE.parse(FEED, Request(exchange.url), edited_exchange(exchange, remove))
    assert [t.native_id for t in parsed.tombstones] == ["t1_cklfmye"]
    assert parsed.tombstones[0].reason == "[removed]"
    assert [i.native_id for i in parsed.items] == ["t3_2gmzqe", "t1_cklhv0f"]


def test_removed_self_post_and_removed_by_category() -> None:
    exchange = exchanges("praw/TestSubredditListings.test_new.json")[0]

    def remove(document: dict[str, Any]) -> None:
        children = document["data"]["children"]
        children[0]["data"].update(author="[deleted]", selftext="[removed]")
        children[1]["data"]["removed_by_category"] = "moderator"
        children[2]["data"]["removed_by_category"] = "deleted"
        children[3]["data"]["removed_by_category"] = None  # not removed

    original = SOURCE.parse(FEED, Request(exchange.url), exchange)
    parsed = SOURCE.parse(FEED, Request(exchange.url), edited_exchange(exchange, remove))
    ids = [item.native_id for item in original.items]
    assert [(t.native_id, t.reason) for t in parsed.tombstones] == [
        (ids[0], "[removed]"),
        (ids[1], "[removed] (removed_by_category: moderator)"),
        (ids[2], "[deleted] (removed_by_category: deleted)"),
    ]
    assert [item.native_id for item in parsed.items] == ids[3:]


def test_a_thing_twice_in_one_response_is_kept_each_time() -> None:
    exchange = exchanges("praw/TestSubredditListings.test_new.json")[0]

    def double(document: dict[str, Any]) -> None:
        document["data"]["children"].append(document["data"]["children"][0])

    parsed = SOURCE.parse_page(FEED, Request(exchange.url), edited_exchange(exchange, double))
    original = SOURCE.parse(FEED, Request(exchange.url), exchange)
    assert parsed.result.items == (*original.items, original.items[0])
    assert parsed.duplicates == 1
    # its comment page is asked for once
    assert len(parsed.result.follow) == len(original.follow)


# ------------------------------------------------ one thing through several endpoints: one digest

PARENT_CHAIN = "praw/TestComment.test_parent__chain.json"
# Its content exchanges: 0 is GET api/info?id=t1_dkk4qjd, then the permalink
# pages (context=100, the shape continue-this-thread is fetched in) of
# t1_dkk4qjd (1), t1_dkk4qin (2), t1_dkk4q9c (3), t1_dkk4pzk (4), t1_dkk4pqs (5).
FOREST = "praw/TestCommentForest.test_replace__all_with_comment_limit.json"  # 2017-03-16
MORE_2016 = "praw/TestMore.test_comments.json"  # 2016-03-22
CONTINUE_2016 = "praw/TestMore.test_comments__continue_thread_type.json"  # 2016-03-22
SPEZ_NEW = "praw/TestRedditorListings.test_new.json"  # /user/spez/?sort=new, 2016-03-01
SPEZ_COMMENTS = "praw/TestRedditorListings.test_comments__new.json"  # /user/spez/comments, 03-12
# Measured over every content exchange (PRAW POSTs api/morechildren, so the
# 2017 morechildren responses are in; the importer, which reads GETs only, sees
# 715 such things): things that are items in more than one exchange, and those
# whose content really changed between recordings: spez edited t1_d0hkebe, and
# five 2016 commenters of t3_3hahrw had deleted their account by 2017 (author
# "[deleted]", body kept). With depth and spoiler in the digest, 493 things had
# two or more digests: 486 by depth alone, t3_3hahrw by spoiler, these six.
SEEN_SEVERAL_TIMES = 722
EDITED = "t1_d0hkebe"
ACCOUNT_DELETED = {"t1_cu5srn0", "t1_cu5tcm9", "t1_cu5ubt8", "t1_cu62n0l", "t1_cu6lknl"}


def digest_of(name: str, index: int, native_id: str) -> bytes:
    """The content digest of item ``native_id`` in content exchange ``index`` of ``name``."""
    return content_digest(by_id(page(name, index).result, native_id))


def test_every_thing_seen_several_times_has_one_digest_unless_changed() -> None:
    sightings: dict[str, list[Item]] = {}
    for name, outcome in OUTCOMES.items():
        for index, letter in enumerate(outcome):
            if letter in "LCM":
                for item in page(name, index).result.items:
                    sightings.setdefault(item.native_id, []).append(item)
    several = {native_id: items for native_id, items in sightings.items() if len(items) > 1}
    assert len(several) == SEEN_SEVERAL_TIMES
    changed = {
        native_id
        for native_id, items in several.items()
        if len({content_digest(item) for item in items}) > 1
    }
    assert changed == ACCOUNT_DELETED | {EDITED}
    for native_id in ACCOUNT_DELETED:
        items = several[native_id]
        assert len({item.author for item in items}) == 2
        assert "[deleted]" in {item.author for item in items}
        assert len({(item.text, item.url, item.published_at) for item in items}) == 1
        assert len({json.dumps(item.extra, sort_keys=True) for item in items}) == 1
        assert items[0].extra["link_id"] == "t3_3hahrw"


def test_depth_is_relative_to_the_page_and_left_out() -> None:
    # The same comments on two permalink pages: Reddit counts depth from the
    # top of each page (api/info sends no depth at all).
    assert "depth" not in raw_thing(PARENT_CHAIN, 0, "t1_dkk4qjd")
    assert [raw_thing(PARENT_CHAIN, i, "t1_dkk4qjd")["depth"] for i in (1, 2)] == [8, 9]
    assert [raw_thing(PARENT_CHAIN, i, "t1_dkk4qin")["depth"] for i in (1, 2)] == [7, 8]
    assert [raw_thing(PARENT_CHAIN, i, "t1_dkk4qc2")["depth"] for i in (1, 2)] == [0, 1]
    for native_id, indexes in (
        ("t1_dkk4qjd", (0, 1, 2)),
        ("t1_dkk4qin", (1, 2)),
        ("t1_dkk4qc2", (1, 2)),
    ):
        items = [by_id(page(PARENT_CHAIN, i).result, native_id) for i in indexes]
        assert all("depth" not in item.extra for item in items)
        assert len({content_digest(item) for item in items}) == 1, native_id
    item = by_id(page(PARENT_CHAIN, 2).result, "t1_dkk4qin")
    assert item.extra == {
        "subreddit": "<TEST_SUBREDDIT>",  # PRAW's placeholder in the cassette
        "subreddit_id": raw_thing(PARENT_CHAIN, 2, "t1_dkk4qin")["subreddit_id"],
        "parent_id": "t1_dkk4qhx",
        "link_id": "t3_6otocc",
        "distinguished": None,
        "stickied": False,
        "edited": False,
    }


def test_api_info_and_the_permalink_page_give_one_digest() -> None:
    name = "praw/TestComment.test_refresh__with_reply_sort_and_limit.json"  # 2019-01-04
    info, permalink = raw_thing(name, 0, "t1_e4j4830"), raw_thing(name, 1, "t1_e4j4830")
    assert ("depth" in info, permalink["depth"]) == (False, 0)
    assert (info["score"], permalink["score"]) == (62, 63)  # a vote between the two calls
    first, second = (by_id(page(name, i).result, "t1_e4j4830") for i in (0, 1))
    assert (first.counters["score"], second.counters["score"]) == (62, 63)  # counters differ
    assert content_digest(first) == content_digest(second)  # content does not
    # Kept: sent the same way by both endpoints.
    assert first.extra == second.extra
    assert first.extra["distinguished"] == "admin"
    # Left out although both sent them: is_submitter is derived, author_fullname
    # duplicates author, permalink is the URL.
    assert info["is_submitter"] is False
    assert "author_fullname" in info
    assert "permalink" in info
    assert not {"is_submitter", "author_fullname", "permalink", "depth"} & set(first.extra)
    assert first.url == f"https://www.reddit.com{info['permalink']}"


def test_continue_this_thread_pages_of_2016_and_2017_give_one_digest() -> None:
    # /comments/3hahrw/_/cu5v5h7 recorded twice: 2016 (no depth) and 2017
    # (depth counted from cu5v5h7 at 0).
    assert urlsplit(exchanges(FOREST)[46].url).path == "/comments/3hahrw/_/cu5v5h7"
    assert urlsplit(exchanges(CONTINUE_2016)[0].url).path == "/comments/3hahrw/_/cu5v5h7"
    for native_id, depth in (("t1_cu5v5h7", 0), ("t1_cu5vad7", 1), ("t1_cu5w1ko", 2)):
        assert raw_thing(FOREST, 46, native_id)["depth"] == depth
        assert "depth" not in raw_thing(CONTINUE_2016, 0, native_id)
        assert digest_of(FOREST, 46, native_id) == digest_of(CONTINUE_2016, 0, native_id)
    # And the post's whole 2016 comment tree (GET /comments/3hahrw).
    assert digest_of(MORE_2016, 1, "t1_cu5v5h7") == digest_of(FOREST, 46, "t1_cu5v5h7")


def test_absent_spoiler_and_is_video_mean_false() -> None:
    # t3_3hahrw: the 2016 comment page predates spoiler tags; the 2017 one says false.
    assert "spoiler" not in raw_thing(MORE_2016, 1, "t3_3hahrw")
    assert raw_thing(FOREST, 0, "t3_3hahrw")["spoiler"] is False
    old, new = (
        by_id(page(MORE_2016, 1).result, "t3_3hahrw"),
        by_id(page(FOREST, 0).result, "t3_3hahrw"),
    )
    assert (old.extra["spoiler"], new.extra["spoiler"]) == (False, False)
    assert (old.extra["is_video"], new.extra["is_video"]) == (False, False)  # sent by neither
    assert content_digest(old) == content_digest(new)
    # A value that is sent is kept: a Reddit-hosted video of 2018.
    video = by_id(page("praw/TestFront.test_best.json", 0).result, "t3_8h7yxa")
    assert (video.extra["is_video"], video.extra["domain"]) == (True, "v.redd.it")


def test_fields_reddit_sends_differently_do_not_change_the_digest() -> None:
    # A copy of a real 2019 permalink page whose comment and post carry the
    # fields that depend on the endpoint or the date, changed or removed.
    name = "praw/TestComment.test_refresh__with_reply_sort_and_limit.json"
    exchange = exchanges(name)[1]
    original = SOURCE.parse(FEED, Request(exchange.url), exchange)
    link_id = by_id(original, "t1_e4j4830").extra["link_id"]
    changes: list[tuple[str, Mapping[str, Any], tuple[str, ...]]] = [
        ("t1_e4j4830", {"depth": 5}, ()),
        ("t1_e4j4830", {}, ("depth", "is_submitter", "author_fullname")),
        ("t1_e4j4830", {"permalink": raw_thing(name, 1, "t1_e4j4830")["permalink"] + "?x=1"}, ()),
        ("t1_e4j4830", {"is_submitter": True}, ()),
        (
            link_id,
            {"permalink": raw_thing(name, 1, link_id)["permalink"] + "?ref=search_posts"},
            (),
        ),
        (link_id, {"post_hint": "rich:video", "removed_by_category": None}, ()),
        (link_id, {"crosspost_parent": None}, ()),
        (link_id, {}, ("spoiler", "is_video", "author_fullname", "post_hint")),
    ]
    for native_id, change, drop in changes:
        varied = edited_exchange(exchange, edit_thing(native_id, change, drop))
        parsed = SOURCE.parse(FEED, Request(exchange.url), varied)
        assert content_digest(by_id(parsed, native_id)) == content_digest(
            by_id(original, native_id)
        ), (native_id, change, drop)


def test_an_edit_still_makes_a_new_version() -> None:
    # Real: spez edited t1_d0hkebe between the two recordings of his pages.
    before = by_id(page(SPEZ_NEW, 0).result, EDITED)
    after = by_id(page(SPEZ_COMMENTS, 0).result, EDITED)
    assert before.extra["edited"] is False
    assert after.extra["edited"] == "2016-03-04T19:05:20.000000Z"  # edited: 1457118320.0
    assert before.text != after.text
    assert content_digest(before) != content_digest(after)

    # Constructed: a real permalink page with one thing changed at a time.
    exchange = exchanges(PARENT_CHAIN)[2]
    original = SOURCE.parse(FEED, Request(exchange.url), exchange)
    body = by_id(original, "t1_dkk4qin").text
    edits: list[tuple[str, Mapping[str, Any]]] = [
        ("t1_dkk4qin", {"body": body + " (edit: typo)", "edited": 1500707700.0}),
        ("t1_dkk4qin", {"edited": 1500707700.0}),  # edited, same text
        ("t1_dkk4qin", {"body": body + "!"}),
        ("t3_6otocc", {"title": "another title"}),
        ("t3_6otocc", {"selftext": "new text", "edited": 1500707700.0}),
        # Moderator actions on kept fields are changes at the source too.
        ("t1_dkk4qin", {"distinguished": "moderator"}),
        ("t1_dkk4qin", {"stickied": True}),
        ("t3_6otocc", {"locked": True}),
        ("t3_6otocc", {"over_18": True}),
        ("t3_6otocc", {"spoiler": True}),
        ("t3_6otocc", {"link_flair_text": "Solved"}),
    ]
    for native_id, change in edits:
        varied = edited_exchange(exchange, edit_thing(native_id, change))
        parsed = SOURCE.parse(FEED, Request(exchange.url), varied)
        assert content_digest(by_id(parsed, native_id)) != content_digest(
            by_id(original, native_id)
        ), (native_id, change)


def test_whole_corpus_import_makes_only_the_real_version(tmp_path: Path) -> None:
    files = sorted(path for path in corpus_dir().rglob("*") if path.is_file())
    with Vault.create(tmp_path / "vault") as vault:
        report = import_files(vault, files)
        entries = [vault.entry(index) for index in range(vault.size)]
    versions = [entry for entry in entries if entry.type == "version"]
    assert report.totals()["versions"] == 1
    assert [entry.meta["native_id"] for entry in versions] == ["t1_d0hkebe"]


# ------------------------------------------------------------------ errors and odd responses


def test_truncated_json_names_the_position() -> None:
    exc = error("prawcore/TestSession.test_request__bad_json.json")
    assert exc.position == "line 1 column 93"  # the 92-byte body lacks its closing brace
    assert "malformed JSON" in str(exc)
    assert "application/json" in str(exc)


def test_zero_byte_200_is_an_empty_body_error() -> None:
    exc = error("prawcore/TestSession.test_request__okay_with_0_byte_content.json")
    assert "empty body" in str(exc)
    assert exc.position == "byte 0"


@pytest.mark.parametrize(
    "name",
    [
        "praw/TestReddit.test_live_now__no_featured.json",  # 204
        "prawcore/TestSession.test_request__no_content.json",  # 204
        "prawcore/TestSession.test_request__unexpected_status_code.json",  # 205
    ],
)
def test_no_content_is_an_empty_result(name: str) -> None:
    parsed = page(name, 0)
    assert parsed.shape == "empty"
    assert parsed.result == ParseResult()


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("praw/TestReddit.test_bad_request_without_json_text_html_response.json", "text/html"),
        ("praw/TestReddit.test_bad_request_without_json_text_plain_response.json", "text/plain"),
    ],
)
def test_400_with_html_or_text_body_names_the_content_type(name: str, content_type: str) -> None:
    message = str(error(name))
    assert "HTTP 400 Bad Request" in message
    assert f"{content_type} body" in message


def test_status_errors_name_the_status_and_reddits_words() -> None:
    too_many = str(
        error("prawcore/TestSession.test_request__too__many_requests__with_retry_headers.json")
    )
    assert "HTTP 429 Too Many Requests" in too_many
    assert "text/html body" in too_many
    assert "Retry-After 4" in too_many
    not_found = str(error("prawcore/TestSession.test_request__not_found.json"))
    assert "HTTP 404 Not Found" in not_found
    assert "PAGE_NOT_CREATED" in not_found
    assert "HTTP 503 Service Unavailable; empty application/json body" in str(
        error("prawcore/TestSession.test_request__service_unavailable.json")
    )
    assert "HTTP 522" in str(
        error("prawcore/TestSession.test_request__cloudflare_connection_timed_out.json")
    )
    redirect = str(error("prawcore/TestSession.test_request__redirect.json"))
    assert "HTTP 302 Found" in redirect
    assert "redirect to https://oauth.reddit.com/r/RelayForReddit/.json?raw_json=1" in redirect
    assert "HTTP 451" in str(
        error("prawcore/TestSession.test_request__unavailable_for_legal_reasons.json")
    )
    mid_sequence = error("praw/TestModNotes.test_delete_note__all_notes.json", 2)
    assert "HTTP 500 Internal Server Error" in str(mid_sequence)


def test_json_of_another_shape_is_refused() -> None:
    about = error("praw/TestModNotes.test_delete_note__all_notes.json", 13)
    assert "not a Reddit listing: a single 't5' thing" in str(about)
    assert about.position == "$"
    assert "an empty JSON object" in str(error("prawcore/TestSession.test_request__accepted.json"))


COMMENTS_URL = "https://www.reddit.com/comments/abc.json?raw_json=1&depth=3"


def _listing_exchange(
    body: bytes,
    status: int = 200,
    url: str = "https://www.reddit.com/r/AskReddit/new.json?raw_json=1",
    **extra: Any,
) -> Exchange:
    return Exchange(
        method="GET",
        url=url,
        status=status,
        headers=(("Content-Type", "application/json; charset=UTF-8"),),
        body=body,
        **extra,
    )


@pytest.mark.parametrize(
    ("body", "position"),
    [
        (b'{"kind": "Listing", "data": {"children": 3}}', "$.data.children"),
        (b'{"kind": "Listing", "data": {"children": [7]}}', "$.data.children[0]"),
        (b'{"kind": "Listing", "data": {"children": [{"kind": "t3"}]}}', "$.data.children[0]"),
        (
            b'{"kind": "Listing", "data": {"children": [{"kind": "t3", "data": {"id": "A/B"}}]}}',
            "$.data.children[0].data.id",
        ),
        (
            b'{"kind": "Listing", "data": {"children": [{"kind": "t1", "data": {"id": "a",'
            b' "replies": 5}}]}}',
            "$.data.children[0].data.replies",
        ),
        (b'[{"kind": "Listing", "data": {"children": []}}, 4]', "$[1]"),
        (b"[]", "$"),
        (b'"Listing"', "$"),
        (b"\xff\xfe{}", "byte 0"),
        # Nested too deeply: the decoder names the first bracket over its depth limit.
        (b"[" * 100_000, "line 1 column 801"),
    ],
)
def test_malformed_structures_name_the_position(body: bytes, position: str) -> None:
    with pytest.raises(ParseError) as info:
        SOURCE.parse(FEED, Request("https://www.reddit.com/x"), _listing_exchange(body))
    assert info.value.position == position


def test_body_cut_at_the_size_limit() -> None:
    exchange = _listing_exchange(b'{"kind": "Listing", "data": {"children": []}}', truncated=True)
    with pytest.raises(ParseError, match="size limit"):
        SOURCE.parse(FEED, Request(exchange.url), exchange)


def test_deep_comment_trees_are_walked_without_recursion() -> None:
    # A reply chain 150 comments deep (750 levels of JSON nesting; the json
    # module itself refuses much deeper documents, see the "[" * 100_000 case).
    leaf: Any = ""
    for n in range(150):
        leaf = {
            "kind": "Listing",
            "data": {"children": [{"kind": "t1", "data": {"id": f"c{n}", "replies": leaf}}]},
        }
    body = json.dumps([{"kind": "Listing", "data": {"children": []}}, leaf]).encode()
    parsed = SOURCE.parse(FEED, Request(COMMENTS_URL), _listing_exchange(body, url=COMMENTS_URL))
    assert [item.native_id for item in parsed.items] == [f"t1_c{n}" for n in reversed(range(150))]
    # No created_utc: no time rather than a wrong one.
    assert parsed.items[0].published_at == ""
    assert parsed.items[0].url == ""


def test_damaged_bodies_raise_only_parse_error() -> None:
    exchange = exchanges("praw/TestSubmission.test_comments.json")[0]
    body = exchange.body
    for cut in range(0, len(body), 97):
        damaged = Exchange(exchange.method, exchange.url, 200, exchange.headers, body[:cut])
        with pytest.raises(ParseError):
            SOURCE.parse(FEED, Request(exchange.url), damaged)
    for offset in range(0, len(body), 61):
        flipped = bytearray(body)
        flipped[offset] ^= 0x55
        damaged = Exchange(exchange.method, exchange.url, 200, exchange.headers, bytes(flipped))
        with contextlib.suppress(ParseError):  # parsing may also succeed
            SOURCE.parse(FEED, Request(exchange.url), damaged)


def test_huge_morechildren_stub_is_batched_and_capped() -> None:
    children = [f"x{n:05d}" for n in range(1000)]
    forest = {
        "kind": "Listing",
        "data": {
            "children": [
                {
                    "kind": "more",
                    "data": {"id": "x", "count": 1000, "children": children, "parent_id": "t3_abc"},
                }
            ]
        },
    }
    body = json.dumps([{"kind": "Listing", "data": {"children": []}}, forest]).encode()
    parsed = SOURCE.parse_page(
        feed_with(more_budget=3),
        Request(COMMENTS_URL),
        _listing_exchange(body, url=COMMENTS_URL),
    )
    assert len(parsed.result.follow) == 3
    assert [len(query(r.url)["children"].split(",")) for r in parsed.result.follow] == [
        MORECHILDREN_BATCH
    ] * 3
    assert parsed.unfetched_ids == 700


# --------------------------------------------------------------------------- plan and parameters


def test_reddit_source_satisfies_the_protocol() -> None:
    source: Source = RedditSource()
    assert source.kind == "reddit"


def test_user_agent_format() -> None:
    assert user_agent("org.example.echo", "0.1.0", "echo_bot") == USER_AGENT
    assert user_agent("org.example.echo", "v1.2.3", "/u/echo_bot") == (
        "python:org.example.echo:v1.2.3 (by /u/echo_bot)"
    )
    with pytest.raises(SourceError, match="version"):
        user_agent("org.example.echo", "1 0", "echo_bot")


def test_plan_subreddit_listing() -> None:
    (request,) = RedditSource().plan(feed_with(listing="top", t="week", limit=25))
    assert request.method == "GET"
    assert request.url == "https://www.reddit.com/r/AskReddit/top.json?raw_json=1&limit=25&t=week"
    assert request.headers == (("User-Agent", USER_AGENT), ("Accept", "application/json"))
    assert request.purpose == {"page": "listing", "number": 1, "count": 0, "more_budget": 5}


def test_plan_defaults_to_new_with_limit_100() -> None:
    (request,) = RedditSource().plan(FEED)
    assert request.url == "https://www.reddit.com/r/AskReddit/new.json?raw_json=1&limit=100"


@pytest.mark.parametrize(
    ("params", "url"),
    [
        (
            {"user": "u/spez", "listing": "top", "t": "all"},
            "https://www.reddit.com/user/spez/overview.json?raw_json=1&sort=top&limit=100&t=all",
        ),
        (
            {"front": True, "listing": "best"},
            "https://www.reddit.com/best.json?raw_json=1&limit=100",
        ),
        (
            {"front": True, "listing": "hot", "oauth": True},
            "https://oauth.reddit.com/hot?raw_json=1&limit=100",
        ),
        (
            {"subreddit": "r/python+rust", "oauth": True},
            "https://oauth.reddit.com/r/python+rust/new?raw_json=1&limit=100",
        ),
        (
            {"subreddit": "python", "base_url": "http://127.0.0.1:8080/"},
            "http://127.0.0.1:8080/r/python/new.json?raw_json=1&limit=100",
        ),
        (
            {"subreddit": "python", "listing": "controversial", "t": "hour"},
            "https://www.reddit.com/r/python/controversial.json?raw_json=1&limit=100&t=hour",
        ),
    ],
)
def test_plan_urls(params: dict[str, Any], url: str) -> None:
    (request,) = RedditSource().plan(Feed("t", "reddit", {**params, "user_agent": UA}))
    assert request.url == url
    assert query(request.url)["raw_json"] == "1"


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({}, "exactly one of subreddit, user or front"),
        ({"subreddit": "python", "user": "spez"}, "exactly one of subreddit, user or front"),
        ({"subreddit": "no spaces"}, "params.subreddit"),
        ({"user": "a/b"}, "params.user"),
        ({"front": "yes"}, "params.front"),
        ({"subreddit": "python", "listing": "oldest"}, "params.listing"),
        ({"subreddit": "python", "listing": "best"}, "params.listing"),
        ({"user": "spez", "listing": "rising"}, "params.listing"),
        ({"subreddit": "python", "t": "week"}, "params.t"),
        ({"subreddit": "python", "listing": "top", "t": "decade"}, "params.t"),
        ({"subreddit": "python", "limit": 0}, "params.limit"),
        ({"subreddit": "python", "limit": 101}, "params.limit"),
        ({"subreddit": "python", "limit": "100"}, "params.limit"),
        ({"subreddit": "python", "limit": True}, "params.limit"),
        ({"subreddit": "python", "pages": 0}, "params.pages"),
        ({"subreddit": "python", "more_budget": -1}, "params.more_budget"),
        ({"subreddit": "python", "comments": "yes"}, "params.comments"),
        ({"subreddit": "python", "oauth": 1}, "params.oauth"),
        ({"subreddit": "python", "base_url": "ftp://example.org"}, "params.base_url"),
        ({"subreddit": "python", "sub": "x"}, "unknown parameter(s) sub"),
    ],
)
def test_plan_refuses_bad_params(params: dict[str, Any], named: str) -> None:
    feed = Feed("bad", "reddit", {**params, "user_agent": UA})
    with pytest.raises(SourceError) as info:
        RedditSource().plan(feed)
    assert named in str(info.value)
    assert "'bad'" in str(info.value)


@pytest.mark.parametrize(
    ("agent", "named"),
    [
        (None, "params.user_agent is missing"),
        ("python:x:1 (by /u/me)", "params.user_agent is missing"),
        ({"version": "1", "username": "me"}, "params.user_agent.app_id"),
        ({"app_id": "x", "username": "me"}, "params.user_agent.version"),
        ({"app_id": "x", "version": "1"}, "params.user_agent.username"),
        ({"app_id": "x:y", "version": "1", "username": "me"}, "params.user_agent.app_id"),
    ],
)
def test_plan_requires_the_user_agent_parts(agent: Any, named: str) -> None:
    params: dict[str, Any] = {"subreddit": "python"}
    if agent is not None:
        params["user_agent"] = agent
    with pytest.raises(SourceError, match=re.escape(named)):
        RedditSource().plan(Feed("t", "reddit", params))


def test_parse_checks_the_feed_too() -> None:
    exchange = exchanges("praw/TestListingGenerator.test_no_items.json")[0]
    with pytest.raises(SourceError, match=r"params\.limit"):
        RedditSource().parse(feed_with(limit=500), Request(exchange.url), exchange)
