"""Tests of the ``github`` source (echo_archive.sources.github) against real GitHub API traffic.

Every exchange of the 84 recordings under ``../shared/corpora/github`` (297
interactions recorded by PyGithub and github3.py from 2012 to 2025; see its
PROVENANCE.md) is parsed. The expected values below (ids, types, actors,
dates, titles, counts) were read from the recordings with ``grep`` and
``json.tool`` and then measured with this parser; each count says where it
comes from.

Where a test needs a variant the corpus does not hold (a truncated body, a
301 without ``Location``, a ``Link`` header to another host), it edits a real
exchange with :func:`dataclasses.replace` and says so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import re
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from echo_archive.errors import ParseError, SourceError
from echo_archive.harvest.recordings import read_recording
from echo_archive.model import Exchange, Item, ParseResult, Request
from echo_archive.sources import github
from echo_archive.sources.base import Feed, Source
from echo_archive.sources.github import (
    REQUEST_HEADERS,
    GithubSource,
    Link,
    event_item,
    issue_item,
    pagination_links,
    parse_link_header,
    parse_page,
    poll_interval,
    release_item,
    renamed_to,
)

from .conftest import shared_dir

RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
SOURCE: Source = GithubSource()

# --------------------------------------------------------------------------- corpus access


def corpus() -> Path:
    """The shared GitHub corpus folder (skips when absent, fails in CI)."""
    return shared_dir("corpora", "github")


@functools.cache
def _read(name: str) -> tuple[Exchange, ...]:
    return read_recording(corpus() / name).exchanges


def exchanges(name: str) -> tuple[Exchange, ...]:
    """The exchanges of recording ``name`` (``pygithub/...`` or ``github3py/...``)."""
    return _read(name)


def all_recordings() -> list[str]:
    root = corpus()
    return sorted(
        f"{p.parent.name}/{p.name}"
        for p in root.glob("*/*")
        if p.suffix in (".txt", ".json") and p.name != "provenance.json"
    )


def feed(kind: str = "events", **params: object) -> Feed:
    if not {"repo", "org", "user"} & params.keys():
        params["repo"] = "owner/name"
    return Feed(name="gh", source="github", params={"kind": kind, **params})


def parse(ex: Exchange, kind: str = "events", page: int = 1, **params: object) -> ParseResult:
    request = Request(url=ex.url, headers=REQUEST_HEADERS, purpose={"kind": kind, "page": page})
    return SOURCE.parse(feed(kind, **params), request, ex)


def items_of(name: str, index: int, kind: str) -> tuple[Item, ...]:
    ex = exchanges(name)[index]
    return parse_page(ex.body, ex.url, kind, "gh").items


# Which listing an exchange's URL is, for the census. Issue events
# (``/issues/events``, ``/issues/{n}/events``) are not activity events: their
# objects have ``event``, not ``type``.
_EVENTS_PATH = re.compile(r"/(events(/public|/orgs/[^/]+)?|received_events)$")
_ISSUE_EVENTS_PATH = re.compile(r"/issues(/\d+)?/events$")
_ISSUES_PATH = re.compile(r"^/(repos/[^/]+/[^/]+|repositories/\d+)/issues(/\d+)?$|^/search/issues$")
_RELEASES_PATH = re.compile(r"/releases(/latest)?$")


def listing_kind(ex: Exchange) -> str | None:
    path = urlsplit(ex.url).path
    if _ISSUE_EVENTS_PATH.search(path):
        return None
    if _EVENTS_PATH.search(path):
        return "events"
    if _ISSUES_PATH.search(path):
        return "issues"
    if _RELEASES_PATH.search(path):
        return "releases"
    return None


# --------------------------------------------------------------------------- census


def test_every_exchange_of_the_corpus() -> None:
    """All 297 exchanges: listings give items, 202/204/304 nothing, errors a ParseError."""
    names = all_recordings()
    assert len(names) == 84  # 19 github3.py cassettes + 65 PyGithub replay files (README)
    statuses: Counter[int] = Counter()
    items: Counter[str] = Counter()
    listings: Counter[str] = Counter()
    types: Counter[str] = Counter()
    event_ids: set[str] = set()
    empty = 0
    errors: Counter[int] = Counter()
    for name in names:
        for ex in exchanges(name):
            statuses[ex.status] += 1
            kind = listing_kind(ex)
            if ex.status in (202, 204, 304):
                for each in github.KINDS:
                    assert parse(ex, each) == ParseResult()
                empty += 1
            elif not 200 <= ex.status < 300:
                for each in github.KINDS:
                    with pytest.raises(ParseError, match=rf"HTTP {ex.status}|rate limit"):
                        parse(ex, each)
                errors[ex.status] += 1
            elif kind is not None:
                result = parse(ex, kind)
                listings[kind] += 1
                items[kind] += len(result.items)
                for item in result.items:
                    assert item.source == "github"
                    assert item.feed == "gh"
                    assert item.published_at == "" or RFC3339_UTC.match(item.published_at)
                    json.dumps(dict(item.extra))  # JSON-ready
                    if kind == "events":
                        types[item.extra["type"]] += 1
                        event_ids.add(item.native_id)
            else:
                # Other endpoints (users, commits, stats...): never anything but a ParseError.
                for each in github.KINDS:
                    with contextlib.suppress(ParseError):
                        parse(ex, each)
    # The README's status census, exactly.
    assert sum(statuses.values()) == 297
    assert statuses == {
        200: 243, 304: 25, 502: 7, 301: 4, 204: 4, 404: 4, 202: 3, 403: 3,
        400: 1, 401: 1, 500: 1, 503: 1,
    }  # fmt: skip
    assert empty == 25 + 4 + 3
    assert errors == {502: 7, 301: 4, 404: 4, 403: 3, 400: 1, 401: 1, 500: 1, 503: 1}
    # Measured: 15 event pages, 76 issue pages (52 of them Issue33's trimmed
    # pages), 6 release pages.
    assert listings == {"events": 15, "issues": 76, "releases": 6}
    # The README: 449 event objects of 16 types; every one becomes an item.
    assert items["events"] == 449
    assert types == {
        "PushEvent": 144, "IssueCommentEvent": 86, "CreateEvent": 36, "IssuesEvent": 34,
        "WatchEvent": 29, "PullRequestEvent": 23, "CommitCommentEvent": 21, "DeleteEvent": 18,
        "DownloadEvent": 16, "ForkEvent": 15, "PullRequestReviewCommentEvent": 11,
        "GistEvent": 7, "MemberEvent": 5, "FollowEvent": 2, "GollumEvent": 1, "TeamAddEvent": 1,
    }  # fmt: skip
    # Measured: several recordings share pages (NamedUser.testGetPublicEvents
    # and Event.setUp; Repository.testGetEvents and testGetNetworkEvents).
    assert len(event_ids) == 344
    # Measured: 377 issue/PR objects on issue pages ("about 376" in the README),
    # less 4 duplicates inside one search page; Issue33's 1,288 trimmed
    # ``{"id": ...}`` objects give none.
    assert items["issues"] == 373
    # Measured: 2 + 1 (github3.py) + 1 + 3 x 10 (PyGithub) releases.
    assert items["releases"] == 34


# --------------------------------------------------------------------------- events


def test_organization_events_values() -> None:
    """pygithub/Organization.testGetEvents.txt, page 1 (2012, ``org`` present, no display_login)."""
    result = parse(exchanges("pygithub/Organization.testGetEvents.txt")[0], org="BeaverSoftware")
    assert len(result.items) == 26
    first = result.items[0]
    assert first == Item(
        source="github",
        feed="gh",
        native_id="1526182616",
        url="https://github.com/BeaverSoftware/CreatedByPyGithub",
        title="CreateEvent BeaverSoftware/CreatedByPyGithub",
        text="created repository",
        author="BeaverSoftware",
        published_at="2012-03-04T08:17:15.000000Z",
        extra={
            "type": "CreateEvent",
            "repo": "BeaverSoftware/CreatedByPyGithub",
            "org": "BeaverSoftware",
            "ref_type": "repository",
            "public": True,
        },
    )
    push = result.items[2]
    assert push.native_id == "1526010140"
    assert push.extra["type"] == "PushEvent"
    assert push.title == "PushEvent BeaverSoftware/TestPyGithub refs/heads/master"
    assert push.text == "390bcc2 This commit was created by PyGithub"
    assert push.url == (
        "https://github.com/BeaverSoftware/TestPyGithub/commit/"
        "390bcc2b855d419e9fd6727049aa9217db56a06a"
    )
    assert push.published_at == "2012-03-03T08:57:40.000000Z"
    assert all(item.extra.get("org") == "BeaverSoftware" for item in result.items)


def test_github3py_repository_events_values() -> None:
    """github3py/Repository_events.json (2018): an IssueCommentEvent on a pull request."""
    items = items_of("github3py/Repository_events.json", 1, "events")
    assert len(items) == 100
    comment = items[0]
    assert comment.native_id == "7293368743"
    assert comment.extra == {
        "type": "IssueCommentEvent",
        "repo": "sigmavirus24/github3.py",
        "action": "created",
        "number": 423,
        "public": True,
    }
    assert comment.author == "gh3test"
    assert comment.published_at == "2018-02-25T13:33:43.000000Z"
    assert comment.url == (
        "https://github.com/sigmavirus24/github3.py/pull/423#issuecomment-368309777"
    )
    assert comment.title == (
        "IssueCommentEvent sigmavirus24/github3.py #423: "
        "Add issue and create_comment methods to pull requests"
    )
    assert comment.text == "Testing pull request comment"
    closed = items[1]
    assert closed.native_id == "7291826507"
    assert closed.author == "tedivm"
    assert closed.url == "https://github.com/sigmavirus24/github3.py/issues/784"
    assert closed.text == "closed #784: This library currently can't be used to make Github Apps"


def test_github3py_all_events_values() -> None:
    """github3py/GitHub_all_events.json (2017): a GollumEvent, ``display_login`` present."""
    ex = exchanges("github3py/GitHub_all_events.json")[0]
    raw = json.loads(ex.body)
    assert raw[0]["actor"]["display_login"] == "bunnyamin"
    gollum = parse_page(ex.body, ex.url, "events", "gh").items[0]
    assert gollum.native_id == "7038898400"
    assert gollum.extra["type"] == "GollumEvent"
    assert gollum.author == "bunnyamin"
    assert gollum.published_at == "2017-12-29T00:41:43.000000Z"
    assert gollum.url == "https://github.com/bunnyamin/bld/wiki/keyboard"
    assert gollum.title == "GollumEvent bunnyamin/bld keyboard"
    assert gollum.text == "edited keyboard"


def test_payload_drift_2012_to_2020() -> None:
    """Fields come and go across recordings; every event still parses the same way."""
    display_login = {True: 0, False: 0}
    with_org = 0
    total = 0
    for name in all_recordings():
        for ex in exchanges(name):
            if ex.status != 200 or listing_kind(ex) != "events":
                continue
            raw = json.loads(ex.body)
            items = parse_page(ex.body, ex.url, "events", "gh").items
            assert len(items) == len(raw)
            for event, item in zip(raw, items, strict=True):
                total += 1
                display_login["display_login" in event["actor"]] += 1
                assert item.author == event["actor"]["login"]
                assert ("org" in item.extra) == ("org" in event)
                with_org += "org" in event
                assert item.native_id == event["id"]
    # Measured with grep over the event pages: display_login appears from 2016 on.
    assert total == 449
    assert display_login == {True: 156, False: 293}
    assert with_org == 101


def test_events_without_repository_2012() -> None:
    """2012 gist, follow and team events carry the placeholder repo ``"/"``."""
    items = {i.native_id: i for i in items_of("pygithub/Event.setUp.txt", 1, "events")}
    gist = items["1556113740"]
    assert gist.title == "GistEvent"
    assert gist.url == "https://gist.github.com/2793179"
    assert gist.extra["repo"] is None
    assert gist.text == "create gist 2793179"
    follow = items["1553918130"]
    assert follow.title == "FollowEvent nvie"
    assert follow.url == "https://github.com/nvie"
    assert follow.text == "followed nvie"
    team = next(
        i
        for i in items_of("pygithub/AuthenticatedUser.testGetOrganizationEvents.txt", 2, "events")
        if i.extra["type"] == "TeamAddEvent"
    )
    assert team.native_id == "1518480611"
    assert team.extra["public"] is False
    assert team.extra["org"] == "BeaverSoftware"
    assert team.title == "TeamAddEvent Owners"


def test_event_item_requires_id_type_and_actor() -> None:
    event = json.loads(exchanges("pygithub/Event.setUp.txt")[1].body)[0]
    assert event_item(event, "gh").native_id == "1556114751"
    for key in ("id", "type", "actor"):
        broken = {k: v for k, v in event.items() if k != key}
        with pytest.raises(ParseError, match=key if key != "id" else "no usable id") as info:
            event_item(broken, "gh", url="u", position="$[0]")
        assert info.value.position == "$[0]"
    with pytest.raises(ParseError, match="not an object"):
        event_item([event], "gh")
    numeric = {**event, "id": 1556114751}
    assert event_item(numeric, "gh").native_id == "1556114751"
    undated = {**event, "created_at": "yesterday"}
    item = event_item(undated, "gh")
    assert item.published_at == ""
    assert item.extra["created_at_raw"] == "yesterday"
    timeline = {**event, "created_at": "2012/05/26 03:01:39 -0700"}
    assert event_item(timeline, "gh").published_at == "2012-05-26T10:01:39.000000Z"


def test_unusable_objects_are_skipped_not_fatal() -> None:
    """A user list read as events: every object is skipped with its position."""
    ex = exchanges("pygithub/Repository.testGetStargazers.txt")[0]
    page = parse_page(ex.body, ex.url, "events", "gh")
    assert page.items == ()
    assert page.skipped == 30
    assert "$[0]" in page.problems[0]
    assert parse(ex).items == ()


# --------------------------------------------------------------------------- issues


def test_issue_list_values() -> None:
    """pygithub/Repository.testGetIssues.txt (2012): 16 open issues."""
    items = items_of("pygithub/Repository.testGetIssues.txt", 0, "issues")
    assert [i.native_id for i in items][:4] == ["issue:30", "issue:27", "issue:25", "issue:24"]
    assert len(items) == 16
    first = items[0]
    assert first.title == "Issue also created by PyGithub"
    assert first.url == "https://github.com/PyGithub/PyGithub/issues/30"
    assert first.text == "Body created by PyGithub"
    assert first.author == "jacquev6"
    assert first.published_at == "2012-05-27T05:40:15.000000Z"
    assert first.extra == {
        "number": 30,
        "state": "open",
        "labels": ["Question"],
        "updated_at": "2012-05-27T05:40:15.000000Z",
        "closed_at": None,
        "locked": None,
        "assignees": ["jacquev6"],
        "milestone": "Version 1.0: coherent public interface",
        "is_pr": False,
    }
    assert first.counters == {"comments": 0}
    assert items[1].title == "Facilitate IDE autocompletion"
    assert items[1].author == "bilderbuchi"
    # 2012 issues carry ``pull_request`` with null URLs: not pull requests.
    raw = json.loads(exchanges("pygithub/Repository.testGetIssues.txt")[0].body)
    assert raw[0]["pull_request"] == {"html_url": None, "diff_url": None, "patch_url": None}
    assert not any(i.extra["is_pr"] for i in items)


def test_issues_and_pull_requests_state_all() -> None:
    """github3py/Repository_issues_state_all.json (2017): issues and PRs mixed, two pages."""
    page1 = items_of("github3py/Repository_issues_state_all.json", 2, "issues")
    page2 = items_of("github3py/Repository_issues_state_all.json", 3, "issues")
    assert len(page1) == 100
    assert len(page2) == 50
    # Measured: 51 + 16 pull requests, 49 + 34 issues.
    assert Counter(i.extra["is_pr"] for i in page1) == {True: 51, False: 49}
    assert Counter(i.extra["is_pr"] for i in page2) == {True: 16, False: 34}
    assert page1[0].native_id == "issue:150"
    assert page1[0].title == "Different results from Betamax vs Requests"
    assert page1[0].extra["state"] == "closed"
    assert page1[0].extra["closed_at"] == "2017-12-17T01:47:44.000000Z"
    assert page1[0].extra["locked"] is False
    assert page1[0].counters == {"comments": 10}
    assert page1[1].native_id == "pr:149"
    assert page1[1].title == "Add a HISTORY entry for #132"


def test_single_issue_that_is_a_pull_request() -> None:
    """pygithub/Issue572.testIssueAsPullRequest.txt: ``/issues/2`` of a pull request."""
    (item,) = items_of("pygithub/Issue572.testIssueAsPullRequest.txt", 0, "issues")
    assert item.native_id == "pr:2"
    assert item.extra["is_pr"] is True


def test_search_envelope_and_duplicates() -> None:
    """github3py/GitHub_search_issues.json: ``{"items": [...]}`` with 4 repeated results."""
    ex = exchanges("github3py/GitHub_search_issues.json")[0]
    page = parse_page(ex.body, ex.url, "issues", "gh")
    assert len(json.loads(ex.body)["items"]) == 57
    assert len(page.items) == 53
    assert page.duplicates == 4
    assert len({i.native_id for i in page.items}) == 53


def test_issue_item_requires_a_number() -> None:
    with pytest.raises(ParseError, match="no number") as info:
        issue_item({"id": 166209}, "gh", url="u", position="$[0]")
    assert info.value.position == "$[0]"


# --------------------------------------------------------------------------- releases


def test_release_values() -> None:
    """github3py/Repository_releases.json: names null, assets with download counts."""
    first, second = items_of("github3py/Repository_releases.json", 1, "releases")
    assert first.native_id == "release:742079"
    assert first.title == "0.9.3"  # name is null: the tag
    assert first.url == "https://github.com/sigmavirus24/github3.py/releases/tag/0.9.3"
    assert first.author == "sigmavirus24"
    assert first.published_at == "2014-11-29T02:40:20.000000Z"
    assert first.text == ""
    assert first.extra["assets"] == [
        {
            "name": "github3.py-0.9.3-py2.py3-none-any.whl",
            "size": 104851,
            "content_type": "application/json",
        }
    ]
    assert first.counters == {
        "downloads": 30,
        "downloads:github3.py-0.9.3-py2.py3-none-any.whl": 30,
    }
    assert second.native_id == "release:76677"
    assert second.counters["downloads"] == 42
    assert second.extra["created_at"] == "2013-10-01T00:05:04.000000Z"
    assert second.text.startswith("- Add dependency on [uritemplate.py]")


def test_release_pages_and_latest() -> None:
    """PyGithub's three release pages of 10, and both ``/releases/latest`` objects."""
    name = "pygithub/RequesterThrottleTestCase.testDeferRequests.txt"
    pages = [items_of(name, i, "releases") for i in (1, 2, 3)]
    assert [len(p) for p in pages] == [10, 10, 10]
    assert pages[0][0].title == "v1.55"  # name "" falls back to the tag
    assert pages[0][0].extra["tag_name"] == "v1.55"
    (latest,) = items_of("github3py/Repository_latest_release.json", 1, "releases")
    assert latest.native_id.startswith("release:")
    (latest2,) = items_of("pygithub/GitRelease.testGetLatestRelease.txt", 0, "releases")
    assert latest2.extra["draft"] is False
    with pytest.raises(ParseError, match="tag_name"):
        release_item({"id": 1}, "gh")


# --------------------------------------------------------------------------- pagination


def test_open_issues_link_chain_14_pages() -> None:
    """pygithub/Issue33.testOpenIssues.txt: each page's ``next`` is the next request; 14 pages."""
    pages = exchanges("pygithub/Issue33.testOpenIssues.txt")
    assert len(pages) == 14
    for number, ex in enumerate(pages, 1):
        result = parse(ex, "issues", page=number, pages=14, repo="openframeworks/openFrameworks")
        assert result.items == ()  # bodies trimmed upstream to [{"id": ...}]
        if number < 14:
            (follow,) = result.follow
            assert follow.url == pages[number].url
            assert follow.url.endswith(f"?page={number + 1}")
            assert follow.purpose == {"kind": "issues", "page": number + 1}
            assert follow.headers == REQUEST_HEADERS
            assert result.cursor == follow.url
        else:
            assert result.follow == ()
            assert result.cursor is None
            links = pagination_links(ex)
            assert "next" not in links
            assert links["prev"].endswith("?page=13")
    trimmed = parse_page(pages[13].body, pages[13].url, "issues", "gh")
    assert trimmed.skipped == 13


def test_closed_issues_link_chain_38_pages() -> None:
    pages = exchanges("pygithub/Issue33.testClosedIssues.txt")
    assert len(pages) == 38
    urls = [
        parse(ex, "issues", page=n, pages=99, state="closed").cursor
        for n, ex in enumerate(pages, 1)
    ]
    assert urls[:-1] == [ex.url for ex in pages[1:]]
    assert urls[-1] is None


def test_pages_limit_stops_following_but_keeps_cursor() -> None:
    ex = exchanges("pygithub/Issue33.testOpenIssues.txt")[0]
    result = parse(ex, "issues", page=1, pages=1)
    assert result.follow == ()
    assert (
        result.cursor == "https://api.github.com/repos/openframeworks/openFrameworks/issues?page=2"
    )
    assert len(parse(ex, "issues", page=1, pages=2).follow) == 1


def test_last_link_and_reversed_iteration() -> None:
    """PaginatedList.testReversedIterationWithMultiplePages.txt jumps to ``last``."""
    first, last, before_last = exchanges(
        "pygithub/PaginatedList.testReversedIterationWithMultiplePages.txt"
    )
    links = pagination_links(first)
    assert links == {
        "next": "https://api.github.com/repos/openframeworks/openFrameworks/issues?page=2",
        "last": "https://api.github.com/repos/openframeworks/openFrameworks/issues?page=14",
    }
    assert last.url == links["last"]
    assert pagination_links(last)["prev"].endswith("?page=13")
    assert pagination_links(before_last)["next"] == last.url


def test_events_pages_and_empty_last_page() -> None:
    """Organization.testGetEvents: page 2 is ``[]`` with only ``rel="prev"``."""
    first, second = exchanges("pygithub/Organization.testGetEvents.txt")
    result = parse(first, org="BeaverSoftware", pages=5)
    assert result.follow[0].url == second.url == result.cursor
    end = parse(second, org="BeaverSoftware", page=2, pages=5)
    assert end == ParseResult()


def test_releases_follow_after_rename_to_repository_id() -> None:
    """Release pages 2 and 3 live at ``/repositories/3544490``: same origin, followed."""
    name = "pygithub/RequesterThrottleTestCase.testDeferRequests.txt"
    _, page1, page2, page3 = exchanges(name)
    kwargs = {"repo": "PyGithub/PyGithub", "pages": 3}
    assert parse(page1, "releases", 1, **kwargs).follow[0].url == page2.url
    assert parse(page2, "releases", 2, **kwargs).follow[0].url == page3.url
    assert parse(page3, "releases", 3, **kwargs).follow == ()


def test_next_link_to_another_origin_is_not_followed() -> None:
    """An edited real page whose ``next`` points off the API host: the token must not go there."""
    ex = exchanges("pygithub/Issue33.testOpenIssues.txt")[0]
    hostile = dataclasses.replace(
        ex, headers=(("Link", '<https://evil.example/issues?page=2>; rel="next"'),)
    )
    result = parse(hostile, "issues", pages=5)
    assert result.follow == ()
    assert result.cursor is None
    enterprise = dataclasses.replace(
        ex,
        url="https://ghe.example/api/v3/repos/o/r/issues",
        final_url="https://ghe.example/api/v3/repos/o/r/issues",
        headers=(("Link", '</api/v3/repos/o/r/issues?page=2>; rel="next"'),),
    )
    result = parse(enterprise, "issues", pages=5, base_url="https://ghe.example/api/v3")
    assert result.cursor == "https://ghe.example/api/v3/repos/o/r/issues?page=2"


# --------------------------------------------------------------------------- Link parser (RFC 8288)


def test_link_header_quoted_params_and_multiple_rels() -> None:
    value = (
        '<https://api.github.com/x?page=2>; rel="next"; title="a, b; c", '
        "<https://api.github.com/x?page=9>; rel=last, "
        '<https://api.github.com/x?page=1>; REL="first prev"; rel="ignored", '
        '<https://api.github.com/x?q=a,b>; rel="alternate"; title="say \\"hi\\""'
    )
    links = parse_link_header(value)
    assert links == [
        Link("https://api.github.com/x?page=2", ("next",), {"rel": "next", "title": "a, b; c"}),
        Link("https://api.github.com/x?page=9", ("last",), {"rel": "last"}),
        Link("https://api.github.com/x?page=1", ("first", "prev"), {"rel": "first prev"}),
        Link(
            "https://api.github.com/x?q=a,b",
            ("alternate",),
            {"rel": "alternate", "title": 'say "hi"'},
        ),
    ]


def test_link_header_relative_malformed_and_templates() -> None:
    value = 'garbage; rel="x", </users?since=135>; rel="next", <bad; rel=first'
    links = parse_link_header(value, base="https://api.github.com/users?per_page=10")
    assert links == [Link("https://api.github.com/users?since=135", ("next",), {"rel": "next"})]
    # github3.py's ``/users`` page: a URI template in ``rel="first"``.
    (ex,) = exchanges("github3py/GitHubIterator_catch_etags.json")
    assert pagination_links(ex) == {
        "next": "https://api.github.com/users?per_page=10&since=19",
        "first": "https://api.github.com/users{?since}",
    }
    assert parse_link_header("") == []
    assert parse_link_header("<a>") == [Link("a", (), {})]


def test_link_header_deprecation_link_and_several_fields() -> None:
    """PaginatedList.testTotalCountWithDeprecationLink.txt (2025): ``rel="deprecation"``."""
    (ex,) = exchanges("pygithub/PaginatedList.testTotalCountWithDeprecationLink.txt")
    links = pagination_links(ex)
    assert set(links) == {"deprecation"}
    assert links["deprecation"].startswith("https://github.blog/changelog/2025-03-06-")
    (parsed,) = parse_link_header(ex.header("link") or "")
    assert parsed.params["type"] == "text/html"
    two = dataclasses.replace(
        ex, headers=(("Link", '</a?page=2>; rel="next"'), ("link", '</a?page=5>; rel="last"'))
    )
    assert pagination_links(two) == {
        "next": "https://api.github.com/a?page=2",
        "last": "https://api.github.com/a?page=5",
    }


# --------------------------------------------------------------------------- status handling


def test_304_not_modified_are_empty() -> None:
    """The README's 25 conditional-request 304s (23 in ExposeAllAttributes), all empty bodies."""
    found = [ex for name in all_recordings() for ex in exchanges(name) if ex.status == 304]
    assert len(found) == 25
    for ex in found:
        assert ex.body == b""
        assert parse(ex) == ParseResult()
    assert (
        sum(ex.status == 304 for ex in exchanges("pygithub/ExposeAllAttributes.testAllClasses.txt"))
        == 23
    )


def test_202_while_statistics_are_computed_and_204() -> None:
    accepted = [
        exchanges("pygithub/Repository.testStatisticsCommitActivity.txt")[0],
        exchanges("pygithub/Repository.testStatisticsContributors.txt")[0],
        exchanges("github3py/Repository_code_frequency.json")[1],
    ]
    for ex in accepted:
        assert ex.status == 202
        assert json.loads(ex.body) == {}
        assert parse(ex) == ParseResult()
    (no_content,) = exchanges("pygithub/PaginatedList.testNoFirstPage.txt")
    assert no_content.status == 204
    assert parse(no_content, "issues") == ParseResult()


def test_primary_rate_limit_403() -> None:
    """SpecificExceptions.testRateLimitExceeded.txt: 403, x-ratelimit-remaining 0."""
    ex = exchanges("pygithub/SpecificExceptions.testRateLimitExceeded.txt")[1]
    assert ex.status == 403
    assert ex.header("x-ratelimit-remaining") == "0"
    with pytest.raises(ParseError, match=r"^.*: rate limit exceeded") as info:
        parse(ex)
    assert "API Rate Limit Exceeded for 92.104.200.119" in str(info.value)
    assert info.value.url == "https://api.github.com/users/jacquev6"
    with_reset = dataclasses.replace(ex, headers=(*ex.headers, ("X-RateLimit-Reset", "1368796000")))
    with pytest.raises(ParseError, match=r"resets at 1368796000 \(2013-05-17T13:06:40Z\)"):
        parse(with_reset)


def test_secondary_rate_limit_and_other_403() -> None:
    ex = exchanges("pygithub/SpecificExceptions.testAuthenticatedRateLimitExceeded.txt")[1]
    with pytest.raises(ParseError, match="secondary rate limit exceeded") as info:
        parse(ex)
    assert "abuse detection mechanism" in str(info.value)
    assert "retry after 60 s" in str(info.value)
    (agent,) = exchanges("pygithub/SpecificExceptions.testBadUserAgent.txt")
    with pytest.raises(ParseError, match="HTTP 403 Forbidden: Missing or invalid User Agent"):
        parse(agent)


def test_404_401_and_json_error_bodies() -> None:
    (unknown,) = exchanges("pygithub/Exceptions.testUnknownUser.txt")
    with pytest.raises(ParseError, match="HTTP 404 Not Found: Not Found"):
        parse(unknown)
    (bad,) = exchanges("pygithub/Exceptions.testBadAuthentication.txt")
    with pytest.raises(ParseError, match="HTTP 401 Unauthorized: Bad credentials"):
        parse(bad)
    server = exchanges("pygithub/Retry.testReturnsRepoAfter1Retry.txt")[0]
    with pytest.raises(ParseError, match="HTTP 500 Internal Server Error: Server Error"):
        parse(server)
    gist = exchanges("github3py/Gist_is_starred.json")[4]
    with pytest.raises(ParseError, match=r"HTTP 404 Not Found: JSON body without a message: \{\}"):
        parse(gist)


def test_503_html_body_names_the_content_type() -> None:
    """Exceptions.testNonJsonDataReturnedByGithub.txt: HTML under ``application/json``."""
    (ex,) = exchanges("pygithub/Exceptions.testNonJsonDataReturnedByGithub.txt")
    assert ex.body.startswith(b"<html>")
    with pytest.raises(ParseError) as info:
        parse(ex)
    message = str(info.value)
    assert "HTTP 503 Service Unavailable" in message
    assert "HTML" in message
    assert "application/json; charset=utf-8" in message
    # The same body under a 200: not JSON, content type named.
    ok = dataclasses.replace(ex, status=200)
    with pytest.raises(ParseError, match="not JSON: the body is HTML") as info:
        parse(ok)
    assert info.value.position == "line 1 column 1"


def test_malformed_json_names_the_position() -> None:
    ex = exchanges("pygithub/Event.setUp.txt")[1]
    cut = dataclasses.replace(ex, body=ex.body[:1000], truncated=True)
    with pytest.raises(ParseError, match="malformed JSON") as info:
        parse(cut)
    assert re.fullmatch(r"line 1 column \d+", info.value.position)
    with pytest.raises(ParseError, match="empty body"):
        parse(dataclasses.replace(ex, body=b"  "))
    with pytest.raises(ParseError, match="not UTF-8") as info:
        parse(dataclasses.replace(ex, body=b'[{"id": "\xff"}]'))
    assert info.value.position == "byte 9"
    with pytest.raises(ParseError, match="nested too deeply"):
        parse(dataclasses.replace(ex, body=b"[" * 100_000))
    with pytest.raises(ParseError, match="expected a JSON array of events, got a JSON int"):
        parse(dataclasses.replace(ex, body=b"42"))
    # A repository object where a listing was expected (a misconfigured feed).
    repo = exchanges("pygithub/ConditionalRequestUpdate.setUp.txt")[0]
    with pytest.raises(ParseError, match="expected a JSON array of issues, got an object"):
        parse(repo, "issues")
    message = dataclasses.replace(ex, body=b'{"message": "Not Found", "documentation_url": "x"}')
    with pytest.raises(ParseError, match="GitHub error object instead of a listing: Not Found"):
        parse(message)


def test_unfollowed_redirect_is_an_error() -> None:
    ex = exchanges("pygithub/Repository.testGetRepositoryWith301Redirect.txt")[0]
    with pytest.raises(
        ParseError, match=r"redirect to https://api\.github\.com/repositories/112116543"
    ):
        parse(ex)


# --------------------------------------------------------------------------- engine helpers


def test_renamed_to_reads_the_301_location() -> None:
    moved = exchanges("pygithub/Repository.testGetRepositoryWith301Redirect.txt")[0]
    assert renamed_to(moved) == "https://api.github.com/repositories/112116543"
    assert GithubSource().renamed_to(moved) == "https://api.github.com/repositories/112116543"
    betamax = exchanges("github3py/Repository_issues_state_all.json")[0]
    assert renamed_to(betamax) == "https://api.github.com/repositories/11439734"
    # A 301 that is not a rename: the /api/v3 prefix redirect.
    prefix = exchanges("pygithub/Requester.testBaseUrlPrefixRedirection.txt")[0]
    assert prefix.status == 301
    assert renamed_to(prefix) is None
    # The renamed repository's own 200, and the body's url when Location is missing (edited).
    assert (
        renamed_to(exchanges("pygithub/Repository.testGetRepositoryWith301Redirect.txt")[1]) is None
    )
    no_location = dataclasses.replace(
        moved, headers=tuple(h for h in moved.headers if h[0].lower() != "location")
    )
    assert renamed_to(no_location) == "https://api.github.com/repositories/112116543"
    relative = dataclasses.replace(moved, headers=(("Location", "/repositories/1/issues"),))
    assert renamed_to(relative) == "https://api.github.com/repositories/1/issues"


def test_poll_interval_values() -> None:
    """X-Poll-Interval: 60 s on every recorded events (and notifications) response that has it."""
    found = {
        (name, index): poll_interval(ex)
        for name in all_recordings()
        for index, ex in enumerate(exchanges(name))
        if ex.header("x-poll-interval") is not None
    }
    assert found == {
        ("github3py/GitHub_all_events.json", 0): 60.0,
        ("github3py/Organization_public_events.json", 1): 60.0,
        ("github3py/Repository_events.json", 1): 60.0,
        ("pygithub/ExposeAllAttributes.testAllClasses.txt", 29): 60.0,
        ("pygithub/ExposeAllAttributes.testAllClasses.txt", 30): 60.0,
        ("pygithub/ExposeAllAttributes.testAllClasses.txt", 52): 60.0,
        ("pygithub/Github.testGetEvents.txt", 0): 60.0,
    }
    (plain,) = exchanges("pygithub/Repository.testGetEvents.txt")
    assert poll_interval(plain) is None
    assert GithubSource().poll_interval(exchanges("github3py/GitHub_all_events.json")[0]) == 60.0


# --------------------------------------------------------------------------- plan


@pytest.mark.parametrize(
    ("params", "url"),
    [
        ({"repo": "PyGithub/PyGithub"}, "/repos/PyGithub/PyGithub/events?per_page=100"),
        ({"org": "BeaverSoftware", "per_page": 30}, "/orgs/BeaverSoftware/events?per_page=30"),
        ({"user": "jacquev6"}, "/users/jacquev6/events/public?per_page=100"),
        (
            {"repo": "betamaxpy/betamax", "kind": "issues", "state": "all"},
            "/repos/betamaxpy/betamax/issues?state=all&sort=updated&direction=desc&per_page=100",
        ),
        (
            {"repo": "o/r", "kind": "issues"},
            "/repos/o/r/issues?state=open&sort=updated&direction=desc&per_page=100",
        ),
        (
            {"repo": "sigmavirus24/github3.py", "kind": "releases"},
            "/repos/sigmavirus24/github3.py/releases?per_page=100",
        ),
    ],
)
def test_plan_urls(params: dict[str, object], url: str) -> None:
    (request,) = GithubSource().plan(Feed("gh", "github", {**params, "token": "ignored"}))
    assert request.url == "https://api.github.com" + url
    assert request.method == "GET"
    assert dict(request.headers) == {
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }
    assert request.purpose == {"kind": params.get("kind", "events"), "page": 1}


def test_plan_enterprise_base_url() -> None:
    (request,) = GithubSource().plan(
        Feed("gh", "github", {"repo": "o/r", "base_url": "https://ghe.example/api/v3/"})
    )
    assert request.url == "https://ghe.example/api/v3/repos/o/r/events?per_page=100"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "exactly one of params.repo"),
        ({"repo": "a/b", "org": "c"}, "exactly one of"),
        ({"repo": "not-a-repo"}, "'owner/name'"),
        ({"repo": "a/.."}, "'owner/name'"),
        ({"repo": 5}, "must be a string"),
        ({"org": "bad name"}, "not a GitHub login"),
        ({"org": "o", "kind": "issues"}, "needs params.repo"),
        ({"repo": "a/b", "kind": "commits"}, "params.kind must be one of"),
        ({"repo": "a/b", "kind": "issues", "state": "merged"}, "params.state"),
        ({"repo": "a/b", "per_page": 101}, r"1\.\.100"),
        ({"repo": "a/b", "per_page": True}, "must be an integer"),
        ({"repo": "a/b", "pages": 0}, ">= 1"),
        ({"repo": "a/b", "base_url": "ftp://x"}, "not an http"),
    ],
)
def test_plan_rejects_bad_params(params: dict[str, object], message: str) -> None:
    with pytest.raises(SourceError, match=message) as info:
        GithubSource().plan(Feed("bad-feed", "github", params))
    assert "'bad-feed'" in str(info.value)
    assert not isinstance(info.value, ParseError)


def test_parse_page_unknown_kind() -> None:
    with pytest.raises(SourceError, match="unknown github kind"):
        parse_page(b"[]", "u", "commits", "gh")


def test_kind_attribute() -> None:
    assert GithubSource.kind == "github"
