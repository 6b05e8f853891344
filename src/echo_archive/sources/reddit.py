"""The ``reddit`` source: subreddit, user and front-page listings, and comment trees.

A feed of this source is one Reddit *listing* (a subreddit's ``new`` posts, a
user's ``top`` of the week, the front page's ``hot``...), optionally with the
comment tree of every post in it. The module is pure: it builds
:class:`~echo_archive.model.Request` objects and turns the JSON Reddit sends
into :class:`~echo_archive.model.Item` and
:class:`~echo_archive.model.Tombstone` objects; the fetch engine does the I/O,
the OAuth bearer token, rate limiting (Reddit allows 10 queries per minute
without OAuth, DESIGN.md "Source API rules") and retries (429, 5xx).

References:
* Reddit API documentation, https://www.reddit.com/dev/api/ (listings,
  ``GET /comments/{article}``, ``GET /api/morechildren``, the ``raw_json``
  parameter).
* Reddit's JSON reference, https://github.com/reddit-archive/reddit/wiki/JSON
  (the ``Listing`` envelope; ``t1`` comment, ``t3`` link, ``t5`` subreddit and
  ``more`` things; ``created_utc`` in Unix seconds; ``edited`` false or a time).
* Reddit API rules, https://github.com/reddit-archive/reddit/wiki/API (the
  User-Agent ``<platform>:<app ID>:<version string> (by /u/<reddit username>)``).

Feed parameters (``echo.toml``; see :class:`RedditSource`): exactly one of
``subreddit``, ``user`` or ``front``; ``listing``, ``t``, ``limit``,
``pages``, ``comments``, ``more_budget``, ``oauth``, ``user_agent`` (a table
of ``app_id``, ``version``, ``username``) and ``base_url``.

Requests. Every request carries ``raw_json=1`` (so text comes without HTML
entity escaping: ``<``, not ``&lt;``), the User-Agent
``python:{app_id}:{version} (by /u/{username})`` and ``Accept:
application/json``. Without OAuth the host is ``https://www.reddit.com`` and
paths end in ``.json``; with OAuth it is ``https://oauth.reddit.com`` (paths
without ``.json``) and the engine adds the bearer token.

Responses, by the shape of the JSON body (the request's ``purpose`` only adds
context: page number, budget, the post an ``api/morechildren`` call is for):

``listing``
    ``{"kind": "Listing", "data": {"after", "before", "dist", "children": [...]}}``.
    ``t3`` links and ``t1`` comments become items; ``t5`` subreddits, ``t2``
    accounts and other kinds are *not* items of a listing feed and are
    skipped without error (counted in :attr:`RedditPage.skipped`). The cursor
    is ``data.after``; while ``pages`` is not used up and ``after`` is not
    null, the next page is followed (``after=``, ``count=``). An empty
    listing gives no items and no follow-up.
``comments``
    A JSON array of listings: the submission, then the comment forest
    (``GET /comments/{id}`` with ``depth=3``). Every thing the server sent is
    walked, depth first in document order; ``replies`` is a Listing or ``""``
    (an empty string) when there are none. ``more`` stubs with ``children``
    ids are fetched with ``api/morechildren`` (up to 100 ids a call);
    "continue this thread" stubs (``id`` ``"_"``, ``count`` 0, no children)
    are fetched as the parent comment's permalink page
    (``/comments/{link}/_/{comment}``). At most ``more_budget`` such calls are
    made per harvest cycle (see below); the rest are counted.
``morechildren``
    ``{"json": {"errors": [], "data": {"things": [...]}}}``: a flat list of
    ``t1`` and ``more`` things, handled as above. A non-empty ``errors`` is a
    :class:`~echo_archive.errors.ParseError`.

Normalisation (``t3`` links and ``t1`` comments):

``native_id``
    The fullname: ``t3_{id}`` / ``t1_{id}``.
``url``
    Links: ``url`` (made absolute on ``https://www.reddit.com`` when it is a
    path); self posts: ``https://www.reddit.com{permalink}``. Comments:
    ``https://www.reddit.com{permalink}``, else
    ``https://www.reddit.com/comments/{link}/_/{id}`` (comment objects
    recorded up to 2017 have no ``permalink``). A query on a permalink (search results
    add ``?ref=search_posts``) is dropped from the URL, so one post has one URL
    whatever listing it came from.
``title``, ``text``, ``author``
    ``title`` (links only), ``selftext`` / ``body`` (Markdown exactly as sent;
    ``selftext_html`` / ``body_html`` are derived from it and not kept) and
    ``author``.
``published_at``
    ``created_utc`` (float Unix seconds) as RFC 3339 UTC with microseconds.
``extra``
    The fields in :data:`LINK_EXTRA` / :data:`COMMENT_EXTRA`, normalised as
    below (see "Which fields are content").
``counters``
    The volatile numbers in :data:`LINK_COUNTERS` / :data:`COMMENT_COUNTERS`.

Which fields are content. ``extra`` is covered by the content digest
(:func:`~echo_archive.pipeline.versioning.content_digest`), so a different
``extra`` for the same fullname is a new *version*. A version must mean the
thing changed at Reddit (an edit), never that it was seen through another
endpoint (a listing, ``/comments/{id}``, a continue-this-thread permalink page,
``api/morechildren``, ``api/info``, a user page, search) or in a response of
another year. So ``extra`` holds only fields intrinsic to the thing that every
endpoint reports the same way; the evidence is the shared corpus (PRAW
cassettes recorded 2016 to 2023), where one thing is often in several
responses:

* Kept as sent, present in every ``t1`` / ``t3`` of every endpoint and year:
  ``subreddit``, ``subreddit_id`` (absent and null in promoted posts, which
  is a property of the post), ``parent_id``, ``link_id`` (comments); ``domain``,
  ``is_self``, ``over_18``, ``locked``, ``link_flair_text`` (links);
  ``stickied`` and ``distinguished`` (both). Moderator actions (lock, sticky,
  NSFW, flair, distinguish) are changes at the source and do make versions.
* ``edited``: ``false`` (a boolean as sent), or the edit time as RFC 3339. It
  is content: an edit makes a new version, as does any change of ``title``,
  ``selftext`` / ``body`` or ``author``.
* ``permalink`` (links): without its query (search results add
  ``?ref=search_posts``) or fragment, so it is the same from every listing.
* ``spoiler`` and ``is_video`` (links, :data:`LINK_DEFAULTS`): ``false`` when
  absent. Responses from before Reddit had spoiler tags (late 2016: the
  corpus has the field from 2016-11-16 on, never before) or Reddit-hosted
  video (mid 2017: from 2017-07-22 on) leave them out, and then no post could
  be either, so the absence means exactly ``false``.
* ``crosspost_parent`` (links): only for a crosspost; left out when absent,
  null or empty (all three mean "not a crosspost").

Left out, because they depend on the endpoint or the date, not on the thing
(each made spurious versions, or would):

* ``depth`` (comments): relative to the page fetched. It restarts at 0 at the
  top of a permalink page (``t1_dkk4qin`` is depth 7 on the permalink page of
  ``t1_dkk4qjd`` and 8 on its own, in ``TestComment.test_parent__chain``), and
  is absent from listings, user pages, ``api/info`` and responses before 2017.
* ``is_submitter`` (comments): absent before August 2017 (the corpus has it
  from 2017-08-31 on), and the absence does not mean ``false``. It is derived:
  the comment's ``author`` is the post's ``author``, both archived.
* ``permalink`` (comments): absent from every comment the corpus holds up to
  2017-08-31 (sent from 2019 on); ``Item.url`` holds it (without a query)
  when it is sent.
* ``author_fullname``: absent from every response up to 2018-05-05 (sent from
  2019 on) and for deleted accounts; ``author`` (Reddit usernames cannot be
  renamed) names the same account.
* ``post_hint`` (links): Reddit's guess at the kind of link, made from the
  preview it scrapes after the post is made; absent when there is no preview
  (every ``api/info`` post of 2017 in the corpus). Not something the author
  wrote or edited.
* ``removed_by_category`` (links): absent from every response up to
  2019-01-04, null in 2020 while the post is up; when set, the post is a
  tombstone (below), never an item, so in an item it could only ever say
  "absent" or "null".

Tombstones instead of items: a thing whose ``body`` / ``selftext`` is
``"[removed]"`` (whoever the author: the text alone marks a removal), or is
``"[deleted]"`` with the ``author`` ``"[deleted]"`` too (reason: that text); a
``t3`` whose ``removed_by_category`` is set (reason
``"[removed] (removed_by_category: moderator)"``, ``"[deleted] (...)"`` when the
category is ``deleted``); and the *focus* comment of a permalink page
(``/comments/{link}/_/{comment}``) that the page does not contain, which is
how Reddit answers for a deleted or removed comment (reason ``"absent from its
permalink page"``). The replies of a tombstoned comment are still walked.
The tombstone of a thing the response still shows carries its *remains*
(:attr:`~echo_archive.model.Tombstone.remains`): the item as shown, its
``deleted`` flag set, ``author`` as sent (``"[deleted]"`` included: it is what
the source shows), and ``removed_by_category`` in ``extra`` when set, so that a
thing deleted the first time it is seen is archived in the removed state, not lost.
A thing that appears twice in one response is kept each time, in document
order (counted in :attr:`RedditPage.duplicates`): the pipeline archives the
later one as a version when its content differs, else counts a duplicate.

The ``api/morechildren`` budget. ``more_budget`` caps the ``api/morechildren``
and continue-this-thread calls of one harvest cycle. The cap holds across
pure, independent parses because the budget travels in each request's
``purpose``: a page that follows up hands out its remaining budget among the
requests it makes (evenly, earlier ones first), and a comment page spends its
share on ``api/morechildren`` batches first (up to 100 comments each), then on
continue-this-thread pages, and passes what is left to those calls for the
stubs *they* return. Comment pages of posts with ``num_comments`` 0 are not
fetched.

Errors. Non-2xx statuses raise :class:`~echo_archive.errors.ParseError`
naming the status, Reddit's JSON error fields or the body's content type
(retrying 429 and 5xx is the engine's job). 204 and 205 (no content) and 304
(not modified) give an empty result. A 2xx body that is empty, not UTF-8,
not JSON (a truncated body: ``line 1 column 93``), or JSON of another shape
raises :class:`~echo_archive.errors.ParseError` with the position.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http import HTTPStatus
from types import MappingProxyType
from typing import Any, ClassVar, Final
from urllib.parse import urlencode, urlsplit

from echo_archive import __version__
from echo_archive.errors import ParseError, SourceError
from echo_archive.jsondecode import decode_json
from echo_archive.model import Exchange, Item, ParseResult, Request, Tombstone
from echo_archive.sources.base import BaseSource, Feed, HostProfile, Secrets
from echo_archive.sources.ratelimits import LimitConfig

__all__ = [
    "CLIENT_ENV",
    "COMMENT_COUNTERS",
    "COMMENT_DEPTH",
    "COMMENT_EXTRA",
    "LINK_COUNTERS",
    "LINK_DEFAULTS",
    "LINK_EXTRA",
    "LISTINGS",
    "MORECHILDREN_BATCH",
    "OAUTH_BASE",
    "TIME_FILTERS",
    "TOKEN_URL",
    "WEB_BASE",
    "RedditConfig",
    "RedditPage",
    "RedditSource",
    "user_agent",
]

#: The public web host: item URLs, and the API host without OAuth (``.json`` paths).
WEB_BASE: Final = "https://www.reddit.com"
#: The API host for OAuth clients (:meth:`RedditSource.authorize` adds the token).
OAUTH_BASE: Final = "https://oauth.reddit.com"
#: The OAuth2 token endpoint (Reddit OAuth2 wiki, "Application Only OAuth").
TOKEN_URL: Final = "https://www.reddit.com/api/v1/access_token"  # noqa: S105 - a URL
#: The environment variables of an app-only OAuth client: its id and its secret.
CLIENT_ENV: Final = ("REDDIT_CLIENT_ID", "REDDIT_CLIENT_SECRET")
#: Listing sorts (``/r/{sub}/{listing}``); ``best`` exists for the front page only.
LISTINGS: Final = ("hot", "new", "rising", "controversial", "top", "best")
#: Values of ``t``, the time filter of the ``top`` and ``controversial`` listings.
TIME_FILTERS: Final = ("hour", "day", "week", "month", "year", "all")
#: Sorts a user's listing (``/user/{name}/overview?sort=``) accepts.
USER_SORTS: Final = ("hot", "new", "top", "controversial")
#: ``depth`` of a comment-tree request: deeper replies come back as
#: "continue this thread" stubs.
COMMENT_DEPTH: Final = 3
#: Most comment ids one ``api/morechildren`` call may ask for (Reddit API docs).
MORECHILDREN_BATCH: Final = 100
#: Most things one listing page may return (``limit``, Reddit API docs).
MAX_LIMIT: Final = 100

#: ``t3`` fields kept in ``Item.extra``: intrinsic to the post, and reported the
#: same way by every endpoint (see "Normalisation" in the module docstring).
LINK_EXTRA: Final = (
    "subreddit",
    "subreddit_id",
    "permalink",
    "domain",
    "is_self",
    "over_18",
    "spoiler",
    "locked",
    "stickied",
    "distinguished",
    "link_flair_text",
    "edited",
    "crosspost_parent",
    "is_video",
)
#: ``t1`` fields kept in ``Item.extra``: intrinsic to the comment, and reported
#: the same way by every endpoint (see "Normalisation" in the module docstring).
COMMENT_EXTRA: Final = (
    "subreddit",
    "subreddit_id",
    "parent_id",
    "link_id",
    "distinguished",
    "stickied",
    "edited",
)
#: ``t3`` flags whose absence means ``false``: responses recorded before Reddit
#: had the feature (spoiler tags, late 2016; Reddit-hosted video, mid 2017) leave
#: them out, and no post could be a spoiler or a hosted video then.
LINK_DEFAULTS: Final[Mapping[str, bool]] = MappingProxyType({"spoiler": False, "is_video": False})
#: ``t3`` volatile numbers kept in ``Item.counters``.
LINK_COUNTERS: Final = ("score", "ups", "num_comments", "upvote_ratio")
#: ``t1`` volatile numbers kept in ``Item.counters``.
COMMENT_COUNTERS: Final = ("score", "ups", "controversiality")

_PARAMS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "subreddit": "a subreddit name (python, r/python, python+rust)",
        "user": "a username: their overview of posts and comments",
        "front": "true for the front page (one of subreddit, user, front)",
        "listing": "hot, new (default), rising, controversial, top or best",
        "t": "hour, day, week, month, year or all (top and controversial only)",
        "limit": "things per page, 1..100 (default 100)",
        "pages": "the most pages to follow via after (default 1)",
        "comments": "fetch each post's comment tree (default false)",
        "more_budget": "the most morechildren calls per cycle (default 5)",
        "oauth": "use oauth.reddit.com with an app-only token (default false)",
        "user_agent": "a table {app_id, version, username} (required)",
        "base_url": "another API base URL (tests, proxies)",
    }
)
_IMPORT_AGENT: Final = {"app_id": "echo_archive", "version": __version__, "username": "echo-import"}
_REASONS: Final = {s.value: s.phrase for s in HTTPStatus}
_GONE_TEXTS: Final = ("[deleted]", "[removed]")
_ID36_RE: Final = re.compile(r"[0-9a-z]{1,16}")
_SUBREDDIT_RE: Final = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9_]{1,20}(?:\+[A-Za-z0-9][A-Za-z0-9_]{1,20})*"
)
_USERNAME_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,20}")
_APP_ID_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_VERSION_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
# /comments/{link}[/{slug}[/{comment}]][/][.json]
_COMMENTS_PATH_RE: Final = re.compile(
    r"/comments/(?P<link>[0-9a-z]+)(?:/[^/]*(?:/(?P<focus>[0-9a-z]+))?)?/?(?:\.json)?$"
)
_NO_CONTENT: Final = frozenset({204, 205, 304})
_ERROR_FIELDS: Final = ("error", "message", "reason", "explanation", "fields")


def user_agent(app_id: str, version: str, username: str) -> str:
    """Build the User-Agent Reddit's API rules require.

    Format: ``<platform>:<app ID>:<version string> (by /u/<reddit username>)``
    (https://github.com/reddit-archive/reddit/wiki/API), platform ``python``.

    Args:
        app_id: the application id (``org.example.echo``).
        version: the application version (``0.1.0``).
        username: the operator's Reddit username, with or without ``u/``.

    Returns:
        ``python:{app_id}:{version} (by /u/{username})``.

    Raises:
        SourceError: a part is empty or holds characters that would break the
            format (names the part).
    """
    name = _strip_prefix(username, ("/u/", "u/"))
    for part, value, pattern in (
        ("app_id", app_id, _APP_ID_RE),
        ("version", version, _VERSION_RE),
        ("username", name, _USERNAME_RE),
    ):
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise SourceError(
                f"params.user_agent.{part} {value!r} is missing or invalid "
                f"(User-Agent is 'python:<app_id>:<version> (by /u/<username>)')"
            )
    return f"python:{app_id}:{version} (by /u/{name})"


@dataclass(frozen=True, slots=True)
class RedditConfig:
    """A reddit feed's parameters, checked.

    Attributes:
        target: ``"subreddit"``, ``"user"`` or ``"front"``.
        name: the subreddit (``python``, ``python+rust``) or user name; ``""``
            for the front page.
        listing: one of :data:`LISTINGS`.
        t: one of :data:`TIME_FILTERS` (``top`` and ``controversial`` only), or None.
        limit: things per page, 1..100.
        pages: the most listing pages to follow via ``after``, >= 1.
        comments: fetch each post's comment tree.
        more_budget: the most ``api/morechildren`` (and continue-this-thread)
            calls per harvest cycle, >= 0.
        oauth: use ``https://oauth.reddit.com`` (:meth:`RedditSource.authorize` adds the token).
        user_agent: the User-Agent header value.
        base: the API base URL (no trailing slash).
    """

    target: str
    name: str
    listing: str
    t: str | None
    limit: int
    pages: int
    comments: bool
    more_budget: int
    oauth: bool
    user_agent: str
    base: str

    @classmethod
    def from_feed(cls, feed: Feed) -> RedditConfig:
        """Check a feed's parameters.

        Args:
            feed: the configured feed.

        Returns:
            The checked configuration.

        Raises:
            SourceError: a parameter is missing, unknown or invalid (the
                message names the feed and the parameter).
        """
        params = feed.params
        where = f"feed {feed.name!r}: params"
        unknown = sorted(str(key) for key in params if key not in _PARAMS)
        if unknown:
            raise SourceError(
                f"{where}: unknown parameter(s) {', '.join(unknown)} "
                f"(known: {', '.join(sorted(_PARAMS))})"
            )
        targets = [
            key for key in ("subreddit", "user", "front") if params.get(key) not in (None, False)
        ]
        if len(targets) != 1:
            raise SourceError(
                f"{where}: give exactly one of subreddit, user or front=true "
                f"(got {', '.join(targets) or 'none'})"
            )
        target = targets[0]
        name = ""
        if target == "subreddit":
            name = _strip_prefix(params["subreddit"], ("/r/", "r/"))
            if not _SUBREDDIT_RE.fullmatch(name):
                raise SourceError(
                    f"{where}.subreddit {params['subreddit']!r} is not a subreddit name"
                )
        elif target == "user":
            name = _strip_prefix(params["user"], ("/u/", "u/", "/user/", "user/"))
            if not _USERNAME_RE.fullmatch(name):
                raise SourceError(f"{where}.user {params['user']!r} is not a Reddit username")
        elif params["front"] is not True:
            raise SourceError(f"{where}.front must be true, not {params['front']!r}")

        listing = params.get("listing", "new")
        if listing not in LISTINGS:
            raise SourceError(f"{where}.listing {listing!r} is not one of {', '.join(LISTINGS)}")
        if listing == "best" and target != "front":
            raise SourceError(f"{where}.listing 'best' exists for the front page only")
        if target == "user" and listing not in USER_SORTS:
            raise SourceError(
                f"{where}.listing {listing!r}: a user listing is one of {', '.join(USER_SORTS)}"
            )
        t = params.get("t")
        if t is not None:
            if listing not in ("top", "controversial"):
                raise SourceError(
                    f"{where}.t applies to the top and controversial listings only, not {listing!r}"
                )
            if t not in TIME_FILTERS:
                raise SourceError(f"{where}.t {t!r} is not one of {', '.join(TIME_FILTERS)}")

        limit = _int_param(params, "limit", MAX_LIMIT, where, low=1, high=MAX_LIMIT)
        pages = _int_param(params, "pages", 1, where, low=1)
        more_budget = _int_param(params, "more_budget", 5, where, low=0)
        comments = _bool_param(params, "comments", False, where)
        oauth = _bool_param(params, "oauth", False, where)

        parts = params.get("user_agent")
        if not isinstance(parts, Mapping):
            raise SourceError(
                f"{where}.user_agent is missing: a table of app_id, version and username "
                f"(Reddit requires 'python:<app_id>:<version> (by /u/<username>)')"
            )
        try:
            agent = user_agent(
                parts.get("app_id", ""), parts.get("version", ""), parts.get("username", "")
            )
        except SourceError as exc:
            raise SourceError(f"feed {feed.name!r}: {exc}") from exc

        base = params.get("base_url", OAUTH_BASE if oauth else WEB_BASE)
        split = urlsplit(base) if isinstance(base, str) else None
        if split is None or split.scheme not in ("http", "https") or not split.netloc:
            raise SourceError(f"{where}.base_url {base!r} is not an http(s) URL")
        return cls(
            target=target,
            name=name,
            listing=listing,
            t=t,
            limit=limit,
            pages=pages,
            comments=comments,
            more_budget=more_budget,
            oauth=oauth,
            user_agent=agent,
            base=str(base).rstrip("/"),
        )

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        """The headers of every request: the User-Agent and ``Accept: application/json``."""
        return (("User-Agent", self.user_agent), ("Accept", "application/json"))

    def url(self, path: str, params: Iterable[tuple[str, str]]) -> str:
        """Build an API URL: ``raw_json=1`` first, then ``params`` in order.

        Args:
            path: the path without ``.json`` (``/r/python/new``).
            params: further query parameters.

        Returns:
            The absolute URL; the path ends in ``.json`` unless OAuth is used.
        """
        suffix = "" if self.oauth else ".json"
        query = urlencode([("raw_json", "1"), *params])
        return f"{self.base}{path}{suffix}?{query}"

    def listing_request(self, number: int, after: str | None, count: int, budget: int) -> Request:
        """The request of listing page ``number`` (1-based).

        Args:
            number: the page number.
            after: the ``after`` cursor (None for the first page).
            count: how many things the earlier pages held (Reddit's ``count``).
            budget: the ``api/morechildren`` budget left for this cycle.

        Returns:
            The request; its purpose is ``{"page": "listing", "number",
            "count", "more_budget"}``.
        """
        if self.target == "subreddit":
            path, params = f"/r/{self.name}/{self.listing}", []
        elif self.target == "user":
            path, params = f"/user/{self.name}/overview", [("sort", self.listing)]
        else:
            path, params = f"/{self.listing}", []
        params.append(("limit", str(self.limit)))
        if self.t:
            params.append(("t", self.t))
        if after:
            params += [("after", after), ("count", str(count))]
        return Request(
            url=self.url(path, params),
            headers=self.headers,
            purpose={"page": "listing", "number": number, "count": count, "more_budget": budget},
        )

    def comments_request(self, link36: str, budget: int, focus36: str | None = None) -> Request:
        """The request of a post's comment tree, or of one comment's permalink page.

        Args:
            link36: the post's base-36 id.
            budget: the ``api/morechildren`` budget this tree may spend.
            focus36: a comment's base-36 id, for its permalink page (how
                "continue this thread" is followed), or None.

        Returns:
            ``GET /comments/{link}[/_/{comment}]`` with ``depth=3``; purpose
            ``{"page": "comments", "link_id", "focus", "more_budget"}``.
        """
        path = f"/comments/{link36}" + (f"/_/{focus36}" if focus36 else "")
        return Request(
            url=self.url(path, [("depth", str(COMMENT_DEPTH))]),
            headers=self.headers,
            purpose={
                "page": "comments",
                "link_id": f"t3_{link36}",
                "focus": f"t1_{focus36}" if focus36 else None,
                "more_budget": budget,
            },
        )

    def morechildren_request(self, link_id: str, children: list[str], budget: int) -> Request:
        """The ``GET /api/morechildren`` request for up to 100 comment ids.

        Args:
            link_id: the post's fullname (``t3_...``).
            children: base-36 comment ids.
            budget: what the stubs in the response may still spend.

        Returns:
            The request (``api_type=json``, ``link_id``, ``children``
            comma-joined); purpose ``{"page": "morechildren", "link_id",
            "children", "more_budget"}``.
        """
        params = [("api_type", "json"), ("link_id", link_id), ("children", ",".join(children))]
        return Request(
            url=self.url("/api/morechildren", params),
            headers=self.headers,
            purpose={
                "page": "morechildren",
                "link_id": link_id,
                "children": list(children),
                "more_budget": budget,
            },
        )


@dataclass(frozen=True, slots=True)
class RedditPage:
    """One parsed Reddit response, with what was counted along the way.

    Attributes:
        shape: ``"listing"``, ``"comments"`` (an array of listings),
            ``"morechildren"`` or ``"empty"`` (204, 205, 304).
        result: the items, follow-up requests, tombstones and cursor.
        more_stubs: ``more`` things seen (continue-this-thread stubs included).
        continue_stubs: of those, "continue this thread" stubs.
        unfetched_ids: comment ids in ``more`` stubs not requested (budget spent,
            or no post to ask about).
        unfetched_threads: continue-this-thread stubs not followed.
        missing: ids an ``api/morechildren`` call asked for that did not come
            back (Reddit leaves out deleted comments without replies), when the
            request's purpose names them.
        duplicates: things the response held already (kept, in document order).
        skipped: things that are not items of a feed, by kind (``t5``: 3).
    """

    shape: str
    result: ParseResult
    more_stubs: int = 0
    continue_stubs: int = 0
    unfetched_ids: int = 0
    unfetched_threads: int = 0
    missing: int = 0
    duplicates: int = 0
    skipped: Mapping[str, int] = field(default_factory=dict)


class RedditSource(BaseSource):
    """The ``reddit`` source kind (implements :class:`~echo_archive.sources.base.Source`).

    Feed parameters:
        subreddit: a subreddit name (``python``, ``r/python``, ``python+rust``), or
        user: a username (``spez``, ``u/spez``: their overview of posts and comments), or
        front: ``true`` for the front page. Exactly one of the three.
        listing: ``hot``, ``new`` (default), ``rising``, ``controversial``,
            ``top`` or ``best`` (front page only); a user listing is one of
            ``hot``, ``new``, ``top``, ``controversial``.
        t: ``hour``, ``day``, ``week``, ``month``, ``year`` or ``all``; only
            with ``top`` and ``controversial``.
        limit: things per page, 1..100 (default 100).
        pages: the most pages to follow via ``after`` (default 1).
        comments: fetch each post's comment tree, ``depth=3`` (default false).
        more_budget: the most ``api/morechildren`` and continue-this-thread
            calls per cycle (default 5).
        oauth: use ``https://oauth.reddit.com`` (default false: ``https://www.reddit.com``
            with ``.json`` paths).
        user_agent: a table ``{app_id, version, username}`` (required).
        base_url: another API base URL (tests, proxies).

    Credentials: with ``oauth = true``, an application-only OAuth token
    (Reddit OAuth2 wiki, "Application Only OAuth"): :meth:`token_request`
    plans the ``POST`` to :data:`TOKEN_URL` with HTTP Basic credentials
    from ``REDDIT_CLIENT_ID`` and ``REDDIT_CLIENT_SECRET``,
    :meth:`parse_token` reads its ``access_token``, and :meth:`authorize`
    sends it as ``Authorization: bearer <token>``. Recordings: any response
    from ``reddit.com`` or a subdomain is imported into ``import-reddit``
    (responses are told apart by their shape).
    """

    kind: ClassVar[str] = "reddit"
    # 10 queries a minute without OAuth are shared by every reddit feed.
    default_interval: ClassVar[int] = 900
    host_profiles: ClassVar[tuple[HostProfile, ...]] = (
        # Reddit Data API wiki: 10 QPM without OAuth (www.reddit.com ``.json``).
        HostProfile(
            "reddit",
            ("www.reddit.com", "reddit.com", "old.reddit.com"),
            LimitConfig(rate=10 / 60, burst=1.0, concurrency=1, rate_limit_headers="reddit"),
        ),
        # Reddit Data API wiki: 100 QPM per OAuth client id, "averaged over a time
        # window (currently 10 minutes) to support bursty requests" → a small burst.
        HostProfile(
            "reddit-oauth",
            ("oauth.reddit.com",),
            LimitConfig(rate=100 / 60, burst=10.0, concurrency=1, rate_limit_headers="reddit"),
        ),
    )
    params: ClassVar[Mapping[str, str]] = _PARAMS
    recorded_hosts: ClassVar[tuple[str, ...]] = ("reddit.com", ".reddit.com")

    def import_feed(self, url: str) -> Feed | None:
        """``import-reddit``, whatever the path (responses are told apart by their shape).

        Args:
            url: the recorded request URL (its host is in ``recorded_hosts``).

        Returns:
            The synthetic feed: the front page with an import User-Agent
            (:class:`RedditConfig` insists on both; neither changes how a
            response parses).
        """
        return Feed("import-reddit", self.kind, {"front": True, "user_agent": dict(_IMPORT_AGENT)})

    def credential_env(self, feed: Feed) -> tuple[str, ...]:
        """``REDDIT_CLIENT_ID`` and ``REDDIT_CLIENT_SECRET`` for ``oauth = true``, else none."""
        return CLIENT_ENV if feed.params.get("oauth") is True else ()

    def token_request(self, feed: Feed, secrets: Secrets) -> Request | None:
        """Plan the app-only OAuth token request of an ``oauth = true`` feed.

        Reddit OAuth2 wiki, "Application Only OAuth": ``POST`` to
        :data:`TOKEN_URL`, HTTP Basic ``client_id:client_secret`` (RFC 7617),
        body ``grant_type=client_credentials`` (RFC 6749 §4.4), with the
        feed's User-Agent. The harvest layer sends it and never archives it.

        Args:
            feed: the configured feed.
            secrets: the variables named by :meth:`credential_env` that are set.

        Returns:
            The request, or None for a feed without ``oauth = true``.

        Raises:
            SourceError: a variable is missing (names both, never a value),
                or the feed's parameters are invalid.
        """
        if feed.params.get("oauth") is not True:
            return None
        client_id, secret = (secrets.get(name) for name in CLIENT_ENV)
        if not client_id or not secret:
            raise SourceError(
                f"feed {feed.name!r}: reddit oauth = true needs {CLIENT_ENV[0]} and "
                f"{CLIENT_ENV[1]} in the environment (an app-only OAuth client)"
            )
        agent = RedditConfig.from_feed(feed).user_agent
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode("ascii")
        return Request(
            url=TOKEN_URL,
            method="POST",
            headers=(
                ("Authorization", f"Basic {basic}"),
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("User-Agent", agent),
            ),
            body=b"grant_type=client_credentials",
            purpose={"kind": "token"},
        )

    def parse_token(self, feed: Feed, request: Request, exchange: Exchange) -> str:
        """Read ``access_token`` from the token endpoint's answer (RFC 6749 §5.1).

        Args:
            feed: the feed.
            request: the token request.
            exchange: its answer.

        Returns:
            The access token.

        Raises:
            ParseError: the status is not 200, the body is not a JSON object,
                or it holds no non-empty ``access_token``. Messages never
                quote the body (it may hold the token).
        """
        url = request.url
        if exchange.status != 200:
            raise ParseError(f"reddit OAuth token request failed: HTTP {exchange.status}", url)
        try:
            answer = decode_json(exchange.body, url)
        except ParseError:
            answer = None
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise ParseError("reddit OAuth token response holds no access_token", url)
        return token

    def authorize(
        self, feed: Feed, request: Request, secrets: Secrets, token: str | None
    ) -> Request:
        """Add ``Authorization: bearer <token>`` when the feed has a token.

        Args:
            feed: the feed.
            request: a planned or follow-up request.
            secrets: unused (the client secret goes only to the token endpoint).
            token: the token :meth:`parse_token` read, or None.

        Returns:
            The request, with the header when there is a token.
        """
        if not token:
            return request
        return replace(request, headers=(*request.headers, ("Authorization", f"bearer {token}")))

    def plan(self, feed: Feed) -> list[Request]:
        """Return the first listing page's request.

        Args:
            feed: the configured feed.

        Returns:
            One ``GET`` of the first listing page (``raw_json=1``, ``limit``, ``t``).

        Raises:
            SourceError: a parameter is missing, unknown or invalid (names it).
        """
        config = RedditConfig.from_feed(feed)
        return [config.listing_request(1, None, 0, config.more_budget)]

    def parse(self, feed: Feed, request: Request, exchange: Exchange) -> ParseResult:
        """Parse one exchange into items, tombstones, follow-ups and the cursor.

        Args:
            feed: the feed the request was planned for.
            request: the request answered (its ``purpose`` carries the page
                number and the budget; an empty purpose means page 1 with the
                feed's whole budget).
            exchange: the response.

        Returns:
            The parse result (see :meth:`parse_page` for the counts as well).

        Raises:
            SourceError: the feed's parameters are invalid.
            ParseError: a non-2xx status, or a malformed or unexpected body
                (names the URL and the position).
        """
        return self.parse_page(feed, request, exchange).result

    def parse_page(self, feed: Feed, request: Request, exchange: Exchange) -> RedditPage:
        """Parse one exchange, returning the counts along with the result.

        Args:
            feed: the feed the request was planned for.
            request: the request answered.
            exchange: the response.

        Returns:
            The parsed page.

        Raises:
            SourceError: the feed's parameters are invalid.
            ParseError: see :meth:`parse`.
        """
        config = RedditConfig.from_feed(feed)
        url = exchange.final_url or exchange.url or request.url
        status = exchange.status
        if status in _NO_CONTENT:
            return RedditPage(shape="empty", result=ParseResult())
        if not 200 <= status < 300:
            raise ParseError(_status_message(exchange), url)
        document = _load_json(exchange, url)
        purpose = request.purpose
        budget = _purpose_int(purpose, "more_budget", config.more_budget)
        walk = _Walk(feed.name, url)
        if isinstance(document, Mapping) and document.get("kind") == "Listing":
            return self._listing(config, walk, document, purpose, budget)
        if isinstance(document, Mapping) and "json" in document:
            return self._morechildren(config, walk, document, purpose, budget)
        if isinstance(document, list) and document:
            return self._comments(config, walk, document, purpose, budget, url)
        raise ParseError(f"not a Reddit listing: {_describe(document)}", url, "$")

    # ------------------------------------------------------------------ shapes

    def _listing(
        self,
        config: RedditConfig,
        walk: _Walk,
        document: Mapping[str, Any],
        purpose: Mapping[str, Any],
        budget: int,
    ) -> RedditPage:
        """Handle a ``Listing`` envelope: items, comment trees, the next page."""
        children = _listing_children(document, "$", walk.url)
        walk.things(children, "$.data.children")
        data = document["data"]
        after = data.get("after")
        cursor = after if isinstance(after, str) and after else None
        number = _purpose_int(purpose, "number", 1)
        count = _purpose_int(purpose, "count", 0) + len(children)

        follow: list[Request] = []
        if config.comments:
            posts = [
                link36
                for link36, num_comments in walk.posts
                if not (isinstance(num_comments, int) and num_comments == 0)
            ]
            shares = _shares(budget, len(posts))
            follow += [config.comments_request(p, s) for p, s in zip(posts, shares, strict=True)]
            budget -= sum(shares)
        if cursor and children and number < config.pages:
            follow.append(config.listing_request(number + 1, cursor, count, budget))
        # A listing holds no `more` stubs of a comment tree; any it holds cannot be
        # fetched (no post to ask about): they are counted, not followed.
        walk.pending_threads_as_unfetched()
        return walk.page("listing", follow, cursor)

    def _comments(
        self,
        config: RedditConfig,
        walk: _Walk,
        document: list[Any],
        purpose: Mapping[str, Any],
        budget: int,
        url: str,
    ) -> RedditPage:
        """Handle a comment page: an array of listings (submission, comment forest)."""
        for index, listing in enumerate(document):
            path = f"$[{index}]"
            walk.things(_listing_children(listing, path, walk.url), f"{path}.data.children")
        match = _COMMENTS_PATH_RE.search(urlsplit(url).path)
        link_id = _purpose_str(purpose, "link_id")
        if link_id is None:
            link_id = f"t3_{match['link']}" if match else walk.first_link_id
        focus = _purpose_str(purpose, "focus")
        if focus is None and match and match["focus"]:
            focus = f"t1_{match['focus']}"
        if focus and focus not in walk.seen:
            walk.tombstone(focus, "absent from its permalink page")
        follow = walk.follow_more(config, link_id, budget)
        return walk.page("comments", follow, None)

    def _morechildren(
        self,
        config: RedditConfig,
        walk: _Walk,
        document: Mapping[str, Any],
        purpose: Mapping[str, Any],
        budget: int,
    ) -> RedditPage:
        """Handle an ``api/morechildren`` response: ``{"json": {"errors", "data": {"things"}}}``."""
        envelope = document["json"]
        if not isinstance(envelope, Mapping):
            raise ParseError("json is not an object", walk.url, "$.json")
        errors = envelope.get("errors", [])
        if errors:
            raise ParseError(
                f"Reddit API errors: {_clip(json.dumps(errors))}", walk.url, "$.json.errors"
            )
        data = envelope.get("data")
        things = data.get("things") if isinstance(data, Mapping) else None
        if not isinstance(things, list):
            raise ParseError(
                "no things list in a morechildren response", walk.url, "$.json.data.things"
            )
        walk.things(things, "$.json.data.things")
        asked = purpose.get("children")
        if isinstance(asked, list):
            walk.missing = sum(1 for cid in asked if f"t1_{cid}" not in walk.seen)
        link_id = _purpose_str(purpose, "link_id") or walk.first_link_id
        follow = walk.follow_more(config, link_id, budget)
        return walk.page("morechildren", follow, None)


# ---------------------------------------------------------------------- the walk


class _Walk:
    """The state of parsing one response: items so far, stubs, counts."""

    def __init__(self, feed: str, url: str) -> None:
        self.feed = feed
        self.url = url
        self.items: list[Item] = []
        self.tombstones: list[Tombstone] = []
        self.seen: set[str] = set()
        self.posts: list[tuple[str, object]] = []  # (link36, num_comments) of t3 things
        self.more_ids: list[str] = []
        self.threads: list[str] = []  # parent comment ids (base 36) of continue stubs
        self.first_link_id: str | None = None
        self.more_stubs = 0
        self.continue_stubs = 0
        self.unfetched_ids = 0
        self.unfetched_threads = 0
        self.missing = 0
        self.duplicates = 0
        self.skipped: Counter[str] = Counter()

    def tombstone(self, native_id: str, reason: str) -> None:
        """Record a tombstone for ``native_id``."""
        self.seen.add(native_id)
        self.tombstones.append(Tombstone("reddit", self.feed, native_id, reason))

    def things(self, children: list[Any], path: str) -> None:
        """Walk things depth first in document order (iteratively: no recursion limit).

        Args:
            children: a listing's ``children`` (or a morechildren ``things``).
            path: the JSON path of ``children``, for error positions.

        Raises:
            ParseError: a thing is not ``{"kind", "data"}``, has no valid id, or
                its ``replies`` is neither a Listing nor ``""``.
        """
        stack: list[tuple[Any, str]] = [(c, f"{path}[{i}]") for i, c in enumerate(children)]
        stack.reverse()
        while stack:
            node, where = stack.pop()
            if not isinstance(node, Mapping):
                raise ParseError("a listing child is not an object", self.url, where)
            kind, data = node.get("kind"), node.get("data")
            if not isinstance(kind, str) or not isinstance(data, Mapping):
                raise ParseError("a listing child is not a thing {kind, data}", self.url, where)
            if kind == "t3":
                self._link(data, where)
            elif kind == "t1":
                self._comment(data, where)
                replies = data.get("replies")
                if replies in ("", None):
                    continue
                replies_path = f"{where}.data.replies"
                if not isinstance(replies, Mapping) or replies.get("kind") != "Listing":
                    raise ParseError(
                        "replies is neither a Listing nor an empty string", self.url, replies_path
                    )
                nested = _listing_children(replies, replies_path, self.url)
                stack.extend(
                    (c, f"{replies_path}.data.children[{i}]")
                    for i, c in reversed(list(enumerate(nested)))
                )
            elif kind == "more":
                self._more(data, where)
            else:
                self.skipped[kind] += 1

    def _id36(self, data: Mapping[str, Any], where: str, kind: str) -> str:
        """The thing's base-36 ``id``, checked."""
        value = data.get("id")
        if not isinstance(value, str) or not _ID36_RE.fullmatch(value):
            raise ParseError(
                f"a {kind} thing without a valid id: {value!r}", self.url, f"{where}.data.id"
            )
        return value

    def _claim(self, native_id: str) -> bool:
        """Mark ``native_id`` seen; False (and counted) when it was seen already.

        A repeat is still parsed and kept (nothing a response says is dropped):
        the pipeline archives it as a version when its content differs from
        the earlier sighting, else counts a duplicate.
        """
        if native_id in self.seen:
            self.duplicates += 1
            return False
        self.seen.add(native_id)
        return True

    def _link(self, data: Mapping[str, Any], where: str) -> None:
        """A ``t3`` link: an item, or a tombstone when deleted or removed."""
        link36 = self._id36(data, where, "t3")
        native_id = f"t3_{link36}"
        if self.first_link_id is None:
            self.first_link_id = native_id
        if self._claim(native_id):  # a repeat is kept, its comments not fetched twice
            self.posts.append((link36, data.get("num_comments")))
        reason = _gone(data, "selftext")
        category = data.get("removed_by_category")
        if isinstance(category, str) and category:
            gone = "[deleted]" if category == "deleted" else "[removed]"
            reason = f"{gone} (removed_by_category: {category})"
        permalink = _text(data.get("permalink"))
        link = _text(data.get("url"))
        if data.get("is_self") is True and permalink:
            url = _permalink_url(permalink)
        else:
            url = _absolute(link) if link else _permalink_url(permalink)
        extra = _extra(data, LINK_EXTRA, LINK_DEFAULTS)
        if reason and isinstance(category, str) and category:
            extra["removed_by_category"] = category
        item = Item(
            source="reddit",
            feed=self.feed,
            native_id=native_id,
            url=url,
            title=_text(data.get("title")),
            text=_text(data.get("selftext")),
            author=_text(data.get("author")),
            published_at=_utc(data.get("created_utc")),
            extra=extra,
            counters=_counters(data, LINK_COUNTERS),
            deleted=bool(reason),
        )
        if reason:
            self.tombstones.append(Tombstone("reddit", self.feed, native_id, reason, item))
        else:
            self.items.append(item)

    def _comment(self, data: Mapping[str, Any], where: str) -> None:
        """A ``t1`` comment: an item, or a tombstone when deleted or removed."""
        comment36 = self._id36(data, where, "t1")
        native_id = f"t1_{comment36}"
        link_id = data.get("link_id")
        if self.first_link_id is None and isinstance(link_id, str) and link_id.startswith("t3_"):
            self.first_link_id = link_id
        self._claim(native_id)  # a repeat is kept too
        reason = _gone(data, "body")
        permalink = _text(data.get("permalink"))
        if permalink:
            url = _permalink_url(permalink)
        elif isinstance(link_id, str) and _ID36_RE.fullmatch(link_id[3:]) and link_id[:3] == "t3_":
            url = f"{WEB_BASE}/comments/{link_id[3:]}/_/{comment36}"
        else:
            url = ""
        item = Item(
            source="reddit",
            feed=self.feed,
            native_id=native_id,
            url=url,
            text=_text(data.get("body")),
            author=_text(data.get("author")),
            published_at=_utc(data.get("created_utc")),
            extra=_extra(data, COMMENT_EXTRA),
            counters=_counters(data, COMMENT_COUNTERS),
            deleted=bool(reason),
        )
        if reason:
            self.tombstones.append(Tombstone("reddit", self.feed, native_id, reason, item))
        else:
            self.items.append(item)

    def _more(self, data: Mapping[str, Any], where: str) -> None:
        """A ``more`` stub: remember its children, or its parent for continue-this-thread."""
        self.more_stubs += 1
        children = data.get("children")
        if not isinstance(children, list):
            children = []
        if children:
            for child in children:
                if isinstance(child, str) and _ID36_RE.fullmatch(child):
                    self.more_ids.append(child)
                else:
                    self.unfetched_ids += 1
            return
        # "continue this thread": id "_", count 0, no children; the replies are
        # on the parent comment's permalink page.
        self.continue_stubs += 1
        parent = data.get("parent_id")
        if isinstance(parent, str) and parent.startswith("t1_") and _ID36_RE.fullmatch(parent[3:]):
            self.threads.append(parent[3:])
        else:
            self.unfetched_threads += 1

    def pending_threads_as_unfetched(self) -> None:
        """Count every remembered stub as unfetched (a listing cannot follow them)."""
        self.unfetched_ids += len(self.more_ids)
        self.unfetched_threads += len(self.threads)
        self.more_ids, self.threads = [], []

    def follow_more(self, config: RedditConfig, link_id: str | None, budget: int) -> list[Request]:
        """Requests for the ``more`` stubs seen, within ``budget``.

        ``api/morechildren`` batches (up to 100 ids, ids already in this
        response left out) come first, then continue-this-thread pages; the
        budget not spent on them is shared among them for the stubs their
        responses hold.

        Args:
            config: the feed's configuration.
            link_id: the post's fullname, or None (then nothing is followed).
            budget: the calls this response may still make.

        Returns:
            The follow-up requests.
        """
        link36 = link_id[3:] if link_id and link_id.startswith("t3_") else ""
        if not _ID36_RE.fullmatch(link36):
            self.pending_threads_as_unfetched()
            return []
        ids = [cid for cid in dict.fromkeys(self.more_ids) if f"t1_{cid}" not in self.seen]
        batches = [ids[i : i + MORECHILDREN_BATCH] for i in range(0, len(ids), MORECHILDREN_BATCH)]
        threads = list(dict.fromkeys(self.threads))
        calls: list[tuple[str, list[str]]] = [("more", b) for b in batches]
        calls += [("thread", [parent]) for parent in threads]
        taken = calls[: max(budget, 0)]
        for kind, ids_ in calls[len(taken) :]:
            if kind == "more":
                self.unfetched_ids += len(ids_)
            else:
                self.unfetched_threads += 1
        shares = _shares(max(budget, 0) - len(taken), len(taken))
        follow = []
        for (kind, ids_), share in zip(taken, shares, strict=True):
            if kind == "more":
                follow.append(config.morechildren_request(f"t3_{link36}", ids_, share))
            else:
                follow.append(config.comments_request(link36, share, focus36=ids_[0]))
        self.more_ids, self.threads = [], []
        return follow

    def page(self, shape: str, follow: list[Request], cursor: str | None) -> RedditPage:
        """Freeze the walk into a :class:`RedditPage`."""
        return RedditPage(
            shape=shape,
            result=ParseResult(
                items=tuple(self.items),
                follow=tuple(follow),
                tombstones=tuple(self.tombstones),
                cursor=cursor,
            ),
            more_stubs=self.more_stubs,
            continue_stubs=self.continue_stubs,
            unfetched_ids=self.unfetched_ids,
            unfetched_threads=self.unfetched_threads,
            missing=self.missing,
            duplicates=self.duplicates,
            skipped=dict(self.skipped),
        )


# ---------------------------------------------------------------------- helpers


def _strip_prefix(value: object, prefixes: tuple[str, ...]) -> str:
    """``value`` stripped of whitespace and of the first matching prefix (``""`` if not text)."""
    if not isinstance(value, str):
        return ""
    text = value.strip()
    for prefix in prefixes:
        if text.lower().startswith(prefix):
            return text[len(prefix) :].rstrip("/")
    return text


def _int_param(
    params: Mapping[str, Any],
    key: str,
    default: int,
    where: str,
    *,
    low: int,
    high: int | None = None,
) -> int:
    """An integer parameter within ``[low, high]``, or ``default`` when absent.

    Raises:
        SourceError: not an integer (booleans are not), or out of range (names ``key``).
    """
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SourceError(f"{where}.{key} {value!r} is not an integer")
    if value < low or (high is not None and value > high):
        bounds = f"{low}..{high}" if high is not None else f">= {low}"
        raise SourceError(f"{where}.{key} {value} is out of range ({bounds})")
    return value


def _bool_param(params: Mapping[str, Any], key: str, default: bool, where: str) -> bool:
    """A boolean parameter, or ``default`` when absent.

    Raises:
        SourceError: not ``true`` or ``false`` (names ``key``).
    """
    value = params.get(key, default)
    if not isinstance(value, bool):
        raise SourceError(f"{where}.{key} {value!r} is not true or false")
    return value


def _purpose_int(purpose: Mapping[str, Any], key: str, default: int) -> int:
    """An integer from a request's purpose, or ``default``."""
    value = purpose.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _purpose_str(purpose: Mapping[str, Any], key: str) -> str | None:
    """A non-empty string from a request's purpose, or None."""
    value = purpose.get(key)
    return value if isinstance(value, str) and value else None


def _shares(budget: int, n: int) -> list[int]:
    """Split ``budget`` into ``n`` near-equal parts, the larger ones first."""
    if n <= 0:
        return []
    base, extra = divmod(max(budget, 0), n)
    return [base + (1 if i < extra else 0) for i in range(n)]


def _clip(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _status_message(exchange: Exchange) -> str:
    """Describe a non-2xx response: status, reason, Reddit's error fields or the content type."""
    status = exchange.status
    reason = _REASONS.get(status, "")
    parts = [f"HTTP {status}" + (f" {reason}" if reason else "")]
    body = exchange.body
    content_type = exchange.content_type or "untyped"
    if not body:
        parts.append(f"empty {content_type} body")
    else:
        document: Any = None
        with contextlib.suppress(ParseError):
            document = decode_json(body, "")
        if isinstance(document, Mapping) and document:
            fields = {k: document[k] for k in _ERROR_FIELDS if k in document}
            detail = json.dumps(fields or document, ensure_ascii=False, default=str)
            parts.append(f"Reddit says {_clip(detail)}")
        elif document is not None:
            parts.append(f"{_describe(document)} in a {content_type} body")
        else:
            parts.append(f"{content_type} body ({len(body)} bytes), not a JSON error")
    location = exchange.header("location")
    if 300 <= status < 400 and location:
        parts.append(f"redirect to {location}")
    retry_after = exchange.header("retry-after")
    if retry_after:
        parts.append(f"Retry-After {retry_after}")
    return "; ".join(parts)


MAX_JSON_DEPTH: Final = 800
"""The deepest JSON nesting read in a Reddit response: a reply chain of 160
comments is 800 levels (five per comment: Listing, data, children, t1, data).
The comment tree is walked iteratively, and CPython's
JSON decoder recurses once per level under a limit of 1000 frames."""


def _load_json(exchange: Exchange, url: str) -> Any:
    """Decode a 2xx body as UTF-8 JSON (RFC 8259 §8.1).

    Raises:
        ParseError: the body is empty (``byte 0``), was cut at the size limit,
            is not UTF-8 (``byte N``), or is not JSON (``line L column C``);
            the message names the content type.
    """
    body = exchange.body
    content_type = exchange.content_type or "untyped"
    if not body:
        raise ParseError(
            f"empty body: HTTP {exchange.status} with 0 bytes, expected JSON", url, "byte 0"
        )
    if exchange.truncated:
        raise ParseError("body was cut at the size limit", url, f"byte {len(body)}")
    return decode_json(
        body, url, max_depth=MAX_JSON_DEPTH, what=f"JSON ({content_type} body, {len(body)} bytes)"
    )


def _describe(document: Any) -> str:
    """Say what a JSON document that is not a listing is, and Reddit's error if it holds one."""
    if isinstance(document, Mapping):
        if "kind" in document:
            return f"a single {document.get('kind')!r} thing"
        keys = ", ".join(sorted(str(k) for k in document)[:8])
        return f"a JSON object with keys [{keys}]" if keys else "an empty JSON object"
    if isinstance(document, list):
        return "an empty JSON array"
    return f"a JSON {type(document).__name__}"


def _listing_children(listing: Any, path: str, url: str) -> list[Any]:
    """The ``data.children`` of a ``Listing``.

    Raises:
        ParseError: ``listing`` is not ``{"kind": "Listing", "data": {"children": [...]}}``.
    """
    if not isinstance(listing, Mapping) or listing.get("kind") != "Listing":
        raise ParseError("not a Listing", url, path)
    data = listing.get("data")
    children = data.get("children") if isinstance(data, Mapping) else None
    if not isinstance(children, list):
        raise ParseError("a Listing without a children list", url, f"{path}.data.children")
    return children


def _gone(data: Mapping[str, Any], text_key: str) -> str:
    """Whether a thing is gone at the source, in Reddit's words, or ``""`` when it is not.

    ``"[removed]"`` when the text (``body`` / ``selftext``) is that marker,
    whoever the author (a moderator's removal can leave the author shown);
    ``"[deleted]"`` when the text is ``"[deleted]"`` and the author is too
    (the author deleted it; a live account's ``[deleted]`` text alone is
    ordinary text). Reddit's markers: the texts Reddit puts in place of a
    removed or deleted thing's body (reddit.com help, "removed vs deleted").
    """
    text = data.get(text_key)
    if text == "[removed]":
        return "[removed]"
    if data.get("author") == "[deleted]" and text in _GONE_TEXTS:
        return str(text)
    return ""


def _text(value: Any) -> str:
    """``value`` if it is a string, else ``""``."""
    return value if isinstance(value, str) else ""


def _absolute(link: str) -> str:
    """A Reddit path (``/r/...``) made absolute on ``https://www.reddit.com``; URLs unchanged."""
    if link.startswith("/") and not link.startswith("//"):
        return WEB_BASE + link
    return link


def _permalink_url(permalink: str) -> str:
    """A permalink as an absolute URL, without a query (search results add ``?ref=...``)."""
    return _absolute(permalink.split("?", 1)[0]) if permalink else ""


def _utc(value: Any) -> str:
    """Unix seconds (int or float) as RFC 3339 UTC with microseconds, ``""`` when not a time."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    try:
        moment = datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return ""
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _extra(
    data: Mapping[str, Any],
    keys: tuple[str, ...],
    defaults: Mapping[str, Any] = MappingProxyType({}),
) -> dict[str, Any]:
    """The fields ``keys`` of a thing, normalised so that every endpoint gives the same.

    Absent keys are left out unless ``defaults`` names them (then the default);
    ``edited`` is false/true or RFC 3339; ``permalink`` loses its query;
    ``crosspost_parent`` is left out when null or empty.
    """
    extra: dict[str, Any] = {}
    for key in keys:
        if key in data:
            extra[key] = data[key]
        elif key in defaults:
            extra[key] = defaults[key]
    if "edited" in extra and not isinstance(extra["edited"], bool):
        extra["edited"] = _utc(extra["edited"]) or extra["edited"]
    if isinstance(extra.get("permalink"), str):
        extra["permalink"] = extra["permalink"].split("?", 1)[0].split("#", 1)[0]
    if "crosspost_parent" in extra and not extra["crosspost_parent"]:
        del extra["crosspost_parent"]
    return extra


def _counters(data: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, int | float]:
    """The numeric fields ``keys`` that ``data`` holds (booleans and nulls left out)."""
    out: dict[str, int | float] = {}
    for key in keys:
        value = data.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            if isinstance(value, float) and not math.isfinite(value):
                continue
            out[key] = value
    return out
