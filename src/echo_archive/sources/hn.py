"""The ``hn`` source: Hacker News through its Firebase API (https://github.com/HackerNews/API).

A feed of this source is one of the API's story lists (``params.list``). A
harvest starts with the list request and fans out from there:

1. ``GET {base}/{list}stories.json`` (``purpose={"kind": "list"}``) answers a
   bare JSON array of up to 500 item ids (200 for ask/show/job). The first
   ``limit`` ids become follow-up requests.
2. ``GET {base}/item/{id}.json`` (``purpose={"kind": "item", "depth": 0,
   "id": id}``) answers one item object, or ``null`` when no item has that id.
   When ``depth < comment_depth`` the item's ``kids`` (its direct comments,
   in ranked display order) are followed at ``depth + 1``, recursively. A
   poll's ``parts`` (its poll options, ``pollopt`` items) are always
   followed, at the poll's depth: they are the poll's content.

3. With ``params.updates = true``, two more requests start the cycle, from
   the API README, "Changed Items and Profiles" and "Max Item ID":
   ``GET {base}/updates.json`` (``purpose={"kind": "updates"}``) answers
   ``{"items": [ids], "profiles": [user names]}``, the items and profiles
   changed recently. Each changed item id becomes an item request marked
   ``if_archived`` (:data:`~echo_archive.sources.base.IF_ARCHIVED`): the
   harvester sends it only when the feed already archived that item, so an
   edited story or comment is fetched again and becomes a new version,
   while items the feed never had are not pulled in. These re-fetches follow
   no comments (only a poll's options). ``GET {base}/maxitem.json``
   (``purpose={"kind": "maxitem"}``) is asked first: it answers the current
   largest item id, is archived as a capture (a record of how far the site
   had got at that time), and its answer plans the ``updates`` request
   (``purpose={"kind": "updates", "maxitem": N}``), whose changed ids above
   ``N`` are ignored (items newer than that cannot be archived yet).

Item fields (the API README, "Items"): ``id``, ``deleted``, ``type`` (``job``,
``story``, ``comment``, ``poll``, ``pollopt``), ``by``, ``time`` (Unix
seconds), ``text`` (HTML), ``dead``, ``parent``, ``poll``, ``kids``, ``url``,
``score``, ``title``, ``parts``, ``descendants``. Every one but ``id`` is
optional: ``url`` is absent on text posts (Ask HN) and may be ``""`` on jobs,
``kids`` is absent when an item has no direct replies, ``descendants`` is
absent on jobs, comments and poll options.

Normalisation rules:

``native_id``
    ``str(id)``.
``url``
    The story's ``url``, else ``https://news.ycombinator.com/item?id={id}``
    (text posts, comments, poll options, jobs with an empty ``url``).
``title`` / ``text`` / ``author``
    ``title``, ``text`` (HTML exactly as sent, entities kept) and ``by``, or ``""``.
``published_at``
    ``time`` as RFC 3339 UTC with microseconds (``2024-08-14T15:28:43.000000Z``).
``extra``
    ``type`` and, when present, ``parent``, ``poll`` and ``parts``: fields
    that are fixed once the item exists.
``counters``
    ``score``, ``descendants`` and ``kids`` (the *number* of direct replies),
    each only when the API sent the field: they change as people vote and
    reply, so they are observations, never content. The ``kids`` id list
    itself is kept out of the item for the same reason; it is only used to
    follow the comment tree. ``descendants`` and ``kids`` are independent (a
    story may list kids yet say ``descendants: 0``), so neither is derived
    from the other.

Tombstones, not items, stand for items gone at the source: ``deleted: true``
(reason ``"deleted"``), ``dead: true`` (reason ``"dead"``), a ``null`` body
(reason ``"null (no such item)"``) and an HTTP 404 or 410 for an item
(reason ``"HTTP 404"``/``"HTTP 410"``). The kids of a deleted or dead comment
are still followed: its replies stay visible on the site. The tombstone of a
``deleted`` or ``dead`` item carries its *remains*
(:attr:`~echo_archive.model.Tombstone.remains`): the item as the API still
shows it (id, ``time``, ``type``, ``parent``; ``by``, ``title`` and ``text``
when sent, as they are for a dead item), its ``deleted`` flag set, so that an
item gone the first time it is seen is archived in the removed state.

Any other non-200 status, an empty or malformed body, or a body of the wrong
shape raises :class:`~echo_archive.errors.ParseError` naming the URL and the
position (``line 1 column 7`` for JSON syntax, ``$[3]`` or ``$.kids[0]`` for
shape). Retrying is the fetch engine's decision, not this module's. The API
sends no ETags; a ``304`` (which it never sends) gives an empty result.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, ClassVar, Final, TypeGuard
from urllib.parse import urlsplit

from echo_archive.errors import ParseError, SourceError
from echo_archive.jsondecode import decode_json
from echo_archive.model import Exchange, Item, ParseResult, Request, Tombstone
from echo_archive.sources.base import IF_ARCHIVED, BaseSource, Feed, HostProfile
from echo_archive.sources.ratelimits import LimitConfig

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_LIMIT",
    "LISTS",
    "HnSource",
    "item_page_url",
]

#: The API root (the README: "the v0 API ... at https://hacker-news.firebaseio.com/v0/").
DEFAULT_BASE_URL: Final = "https://hacker-news.firebaseio.com/v0"

#: How many ids of the list are followed when ``params.limit`` is not set.
DEFAULT_LIMIT: Final = 30

#: ``params.list`` → the list endpoint's name (``/v0/{name}.json``).
LISTS: Final[Mapping[str, str]] = {
    "top": "topstories",
    "new": "newstories",
    "best": "beststories",
    "ask": "askstories",
    "show": "showstories",
    "job": "jobstories",
}

_ITEM_PAGE: Final = "https://news.ycombinator.com/item?id={id}"
_ACCEPT: Final = (("Accept", "application/json"),)
_ITEM_PATH_RE: Final = re.compile(r"/item/(\d+)\.json$")
_LIST_PATH_RE: Final = re.compile(r"/(\w+stories)\.json$")
_UPDATES_PATH_RE: Final = re.compile(r"/updates\.json$")
_MAXITEM_PATH_RE: Final = re.compile(r"/maxitem\.json$")
_GONE_STATUSES: Final = frozenset({404, 410})
_RECORDED_PATH_RE: Final = re.compile(r"/(?:item/\d+|\w+stories)\.json$")
KIND: Final = "hn"


def item_page_url(item_id: int | str) -> str:
    """Return the item's page on the site (``https://news.ycombinator.com/item?id=...``).

    Args:
        item_id: the item id.

    Returns:
        The discussion page URL, used as an item's ``url`` when it has none.
    """
    return _ITEM_PAGE.format(id=item_id)


class HnSource(BaseSource):
    """The ``hn`` source kind (implements :class:`~echo_archive.sources.base.Source`).

    Feed parameters:
        list: ``top``, ``new``, ``best``, ``ask``, ``show`` or ``job``
            (required; ``job`` is the ``jobstories`` endpoint).
        limit: how many ids of the list to fetch as items (positive integer,
            default 30; the lists hold at most 500 ids).
        comment_depth: how deep to follow comment trees (non-negative integer,
            default 0 = no comments; 1 = direct comments; n = n levels).
        base_url: the API root, default ``https://hacker-news.firebaseio.com/v0``
            (for tests and replay).

    Recordings: responses from ``hacker-news.firebaseio.com`` for an item or
    a story list are imported into the feed ``import-hn`` (no parameters: a
    list gives follow-ups only, which an import ignores).
    """

    kind: ClassVar[str] = "hn"
    # The top list moves within minutes; a cycle is 1 + limit requests.
    default_interval: ClassVar[int] = 900
    host_profiles: ClassVar[tuple[HostProfile, ...]] = (
        # The HN Firebase API documents no rate limit: a polite default.
        HostProfile(
            "hn", ("hacker-news.firebaseio.com",), LimitConfig(rate=10.0, burst=10.0, concurrency=4)
        ),
    )
    params: ClassVar[Mapping[str, str]] = MappingProxyType(
        {
            "list": "top, new, best, ask, show or job (required)",
            "limit": "how many ids of the list become item requests (default 30)",
            "comment_depth": "how many comment levels to follow (default 0)",
            "base_url": "the API root (default https://hacker-news.firebaseio.com/v0)",
            "updates": "true to re-fetch archived items the API lists as changed "
            "(/v0/updates.json; edits become versions) and record /v0/maxitem.json "
            "(default false)",
        }
    )
    recorded_hosts: ClassVar[tuple[str, ...]] = ("hacker-news.firebaseio.com",)

    def import_feed(self, url: str) -> Feed | None:
        """``import-hn`` for an item or story-list URL, else None (not an endpoint read).

        Args:
            url: the recorded request URL (its host is in ``recorded_hosts``).

        Returns:
            The synthetic feed, or None.
        """
        return Feed("import-hn", KIND) if _RECORDED_PATH_RE.search(urlsplit(url).path) else None

    def plan(self, feed: Feed) -> list[Request]:
        """Return the request of the feed's story list.

        Args:
            feed: the configured feed.

        Returns:
            ``GET {base_url}/{list}stories.json`` with purpose ``{"kind": "list"}``;
            with ``params.updates``, then ``GET {base_url}/maxitem.json``
            (``{"kind": "maxitem"}``; its answer plans ``updates.json``).

        Raises:
            SourceError: ``list``, ``limit``, ``comment_depth``, ``base_url``
                or ``updates`` is missing or invalid (the message names the
                feed and the parameter).
        """
        endpoint = _list_endpoint(feed)
        _limit(feed)
        _comment_depth(feed)
        base = _base_url(feed)
        requests = [
            Request(url=f"{base}/{endpoint}.json", headers=_ACCEPT, purpose={"kind": "list"})
        ]
        if _updates(feed):
            requests.append(
                Request(url=f"{base}/maxitem.json", headers=_ACCEPT, purpose={"kind": "maxitem"})
            )
        return requests

    def parse(self, feed: Feed, request: Request, exchange: Exchange) -> ParseResult:
        """Parse a story list or an item response.

        What the response is comes from ``request.purpose["kind"]`` (``"list"``
        or ``"item"``), or, when the purpose does not say (replayed traffic),
        from the URL path (``/...stories.json`` or ``/item/{id}.json``).

        Args:
            feed: the feed the request was planned for (items carry its name;
                its ``limit``, ``comment_depth`` and ``base_url`` drive the follow-ups).
            request: the request that was answered.
            exchange: the response.

        Returns:
            For a list: one follow-up item request per id, the first ``limit``
            ids in list order. For an item: the item, or a tombstone, plus
            follow-ups for its comments and poll options.

        Raises:
            SourceError: the feed's parameters are invalid.
            ParseError: the status is not 200 (404/410 of an item excepted),
                the body is empty, not JSON, or not of the expected shape, or
                the URL is neither a list nor an item.
        """
        url = exchange.final_url or exchange.url or request.url
        kind, item_id = _route(request, url)
        if exchange.status == 304:
            return ParseResult()
        if kind == "item" and exchange.status in _GONE_STATUSES:
            if item_id is None:
                raise ParseError(f"HTTP {exchange.status} for an item of unknown id", url)
            reason = f"HTTP {exchange.status}"
            return ParseResult(tombstones=(Tombstone(self.kind, feed.name, str(item_id), reason),))
        if exchange.status != 200:
            raise ParseError(f"HTTP {exchange.status} response, expected 200", url)
        doc = decode_json(exchange.body, url)
        if kind == "list":
            return _parse_list(feed, doc, url)
        if kind == "maxitem":
            if not _is_id(doc):
                raise ParseError(f"maxitem must be an item id, got {_json_type(doc)}", url, "$")
            updates = Request(
                url=f"{_base_url(feed)}/updates.json",
                headers=_ACCEPT,
                purpose={"kind": "updates", "maxitem": doc},
            )
            return ParseResult(follow=(updates,))  # the capture records maxitem itself
        if kind == "updates":
            return _parse_updates(feed, doc, url, request.purpose.get("maxitem"))
        depth = _depth(request, url)
        return _parse_item(feed, doc, url, item_id, depth)


# --------------------------------------------------------------------------- parameters


def _list_endpoint(feed: Feed) -> str:
    """The endpoint name of ``params.list`` (``topstories``...)."""
    name = feed.params.get("list")
    if not isinstance(name, str) or name not in LISTS:
        choices = ", ".join(LISTS)
        raise SourceError(
            f"feed {feed.name!r}: params.list must be one of {choices} (got {name!r})"
        )
    return LISTS[name]


def _int_param(feed: Feed, name: str, default: int, minimum: int) -> int:
    """An integer parameter at least ``minimum`` (booleans refused)."""
    value = feed.params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SourceError(
            f"feed {feed.name!r}: params.{name} must be an integer >= {minimum} (got {value!r})"
        )
    return value


def _limit(feed: Feed) -> int:
    """``params.limit``: how many list ids become item requests."""
    return _int_param(feed, "limit", DEFAULT_LIMIT, 1)


def _comment_depth(feed: Feed) -> int:
    """``params.comment_depth``: how many comment levels to follow."""
    return _int_param(feed, "comment_depth", 0, 0)


def _updates(feed: Feed) -> bool:
    """``params.updates``: re-fetch archived items listed in ``/v0/updates.json``."""
    value = feed.params.get("updates", False)
    if not isinstance(value, bool):
        raise SourceError(
            f"feed {feed.name!r}: params.updates must be true or false (got {value!r})"
        )
    return value


def _base_url(feed: Feed) -> str:
    """``params.base_url`` without a trailing slash (default: the public API)."""
    base = feed.params.get("base_url", DEFAULT_BASE_URL)
    if not isinstance(base, str):
        raise SourceError(f"feed {feed.name!r}: params.base_url must be a string (got {base!r})")
    parts = urlsplit(base.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise SourceError(f"feed {feed.name!r}: params.base_url {base!r} is not an http(s) URL")
    return base.strip().rstrip("/")


# --------------------------------------------------------------------------- routing


def _route(request: Request, url: str) -> tuple[str, int | None]:
    """Return ``("list" | "item", item id or None)`` for a response.

    The purpose decides; the URL path is the fallback (replayed traffic has
    no purpose). The item id comes from ``purpose["id"]``, else the URL.
    """
    path = urlsplit(request.url or url).path
    item_match = _ITEM_PATH_RE.search(path) or _ITEM_PATH_RE.search(urlsplit(url).path)
    kind = request.purpose.get("kind")
    if kind not in ("list", "item", "updates", "maxitem"):
        if item_match:
            kind = "item"
        elif _LIST_PATH_RE.search(path):
            kind = "list"
        elif _UPDATES_PATH_RE.search(path):
            kind = "updates"
        elif _MAXITEM_PATH_RE.search(path):
            kind = "maxitem"
        else:
            raise ParseError("not a Hacker News story list or item URL", url)
    item_id: int | None = None
    raw_id = request.purpose.get("id")
    if isinstance(raw_id, int) and not isinstance(raw_id, bool):
        item_id = raw_id
    elif item_match:
        item_id = int(item_match.group(1))
    return str(kind), item_id


def _depth(request: Request, url: str) -> int:
    """The comment depth of an item request (``purpose["depth"]``, default 0)."""
    depth = request.purpose.get("depth", 0)
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise ParseError(f"request purpose has an invalid depth {depth!r}", url)
    return depth


# --------------------------------------------------------------------------- parsing


def _is_id(value: object) -> TypeGuard[int]:
    """True for an item id: a non-negative int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _item_request(base: str, item_id: int, depth: int) -> Request:
    """The follow-up request of one item at a comment depth."""
    return Request(
        url=f"{base}/item/{item_id}.json",
        headers=_ACCEPT,
        purpose={"kind": "item", "depth": depth, "id": item_id},
    )


def _parse_list(feed: Feed, doc: Any, url: str) -> ParseResult:
    """Turn an id list into item requests for its first ``limit`` ids (duplicates skipped)."""
    if not isinstance(doc, list):
        raise ParseError(f"a story list must be a JSON array, got {_json_type(doc)}", url, "$")
    limit = _limit(feed)
    base = _base_url(feed)
    follow: list[Request] = []
    seen: set[int] = set()
    for index, value in enumerate(doc):
        if not _is_id(value):
            raise ParseError(f"list entry {value!r} is not an item id", url, f"$[{index}]")
        if value in seen:
            continue
        seen.add(value)
        follow.append(_item_request(base, value, 0))
        if len(follow) >= limit:
            break
    return ParseResult(follow=tuple(follow))


def _parse_updates(feed: Feed, doc: Any, url: str, maxitem: object) -> ParseResult:
    """Turn ``/v0/updates.json`` into re-fetches of the changed items the feed archived.

    The API README, "Changed Items and Profiles": ``{"items": [ids],
    "profiles": [names]}``. Each item id (duplicates skipped) becomes an item
    request marked :data:`~echo_archive.sources.base.IF_ARCHIVED`, at the
    feed's ``comment_depth`` so that no comment is followed; ids above
    ``maxitem`` (the answer read just before) are ignored; profiles are
    checked (strings) and not fetched (ECHO archives items, not users).
    """
    if not isinstance(doc, dict):
        raise ParseError(f"updates must be a JSON object, got {_json_type(doc)}", url, "$")
    ids = _ids(doc, "items", url)
    profiles = doc.get("profiles", [])
    if not isinstance(profiles, list):
        raise ParseError("profiles must be an array of user names", url, "$.profiles")
    for index, name in enumerate(profiles):
        if not isinstance(name, str):
            raise ParseError(
                f"profiles entry {name!r} is not a user name", url, f"$.profiles[{index}]"
            )
    bound = maxitem if _is_id(maxitem) else None
    base = _base_url(feed)
    depth = _comment_depth(feed)
    follow: list[Request] = []
    seen: set[int] = set()
    for item_id in ids:
        if (bound is not None and item_id > bound) or item_id in seen:
            continue
        seen.add(item_id)
        request = _item_request(base, item_id, depth)
        purpose = {**request.purpose, IF_ARCHIVED: str(item_id)}
        follow.append(Request(url=request.url, headers=request.headers, purpose=purpose))
    return ParseResult(follow=tuple(follow))


def _ids(doc: Mapping[str, Any], key: str, url: str) -> list[int]:
    """An optional list of item ids (``kids``, ``parts``); ``[]`` when absent."""
    value = doc.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ParseError(f"{key} must be an array of ids", url, f"$.{key}")
    for index, entry in enumerate(value):
        if not _is_id(entry):
            raise ParseError(f"{key} entry {entry!r} is not an item id", url, f"$.{key}[{index}]")
    return list(value)


def _field(doc: Mapping[str, Any], key: str, kind: type, url: str) -> Any:
    """An optional field of a given JSON type (None when absent or null)."""
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) and kind is not bool:
        raise ParseError(f"{key} must be {kind.__name__}, got bool", url, f"$.{key}")
    if not isinstance(value, kind):
        raise ParseError(f"{key} must be {kind.__name__}, got {_json_type(value)}", url, f"$.{key}")
    return value


def _parse_item(
    feed: Feed, doc: Any, url: str, requested_id: int | None, depth: int
) -> ParseResult:
    """Turn one item body into an item or a tombstone, plus comment and poll-option requests."""
    if doc is None:
        if requested_id is None:
            raise ParseError("null item body for an item of unknown id", url, "$")
        tomb = Tombstone(HnSource.kind, feed.name, str(requested_id), "null (no such item)")
        return ParseResult(tombstones=(tomb,))
    if not isinstance(doc, dict):
        raise ParseError(f"an item must be a JSON object, got {_json_type(doc)}", url, "$")
    item_id = doc.get("id")
    if not _is_id(item_id):
        raise ParseError(f"item id {item_id!r} is not an integer id", url, "$.id")
    if requested_id is not None and item_id != requested_id:
        raise ParseError(f"item {item_id} answers a request for item {requested_id}", url, "$.id")

    base = _base_url(feed)
    follow: list[Request] = []
    kids = _ids(doc, "kids", url)
    parts = _ids(doc, "parts", url)
    if depth < _comment_depth(feed):
        follow.extend(_item_request(base, kid, depth + 1) for kid in kids)
    follow.extend(_item_request(base, part, depth) for part in parts)

    native_id = str(item_id)
    deleted = _field(doc, "deleted", bool, url)
    dead = _field(doc, "dead", bool, url)
    item_type = _field(doc, "type", str, url) or ""
    story_url = _field(doc, "url", str, url) or ""
    extra: dict[str, Any] = {"type": item_type}
    for key in ("parent", "poll"):
        value = doc.get(key)
        if value is not None:
            if not _is_id(value):
                raise ParseError(f"{key} {value!r} is not an item id", url, f"$.{key}")
            extra[key] = value
    if "parts" in doc and doc["parts"] is not None:
        extra["parts"] = parts
    counters: dict[str, int | float] = {}
    for key in ("score", "descendants"):
        value = _field(doc, key, int, url)
        if value is not None:
            counters[key] = value
    if "kids" in doc and doc["kids"] is not None:
        counters["kids"] = len(kids)

    item = Item(
        source=HnSource.kind,
        feed=feed.name,
        native_id=native_id,
        url=story_url or item_page_url(item_id),
        title=_field(doc, "title", str, url) or "",
        text=_field(doc, "text", str, url) or "",
        author=_field(doc, "by", str, url) or "",
        published_at=_unix_to_rfc3339(_field(doc, "time", int, url)),
        extra=extra,
        counters=counters,
        deleted=bool(deleted or dead),
    )
    if deleted or dead:
        reason = "deleted" if deleted else "dead"
        tomb = Tombstone(HnSource.kind, feed.name, native_id, reason, item)
        return ParseResult(follow=tuple(follow), tombstones=(tomb,))
    return ParseResult(items=(item,), follow=tuple(follow))


def _unix_to_rfc3339(seconds: int | None) -> str:
    """Unix seconds as RFC 3339 UTC with microseconds, or ``""`` when absent or out of range."""
    if seconds is None:
        return ""
    try:
        return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except (OverflowError, OSError, ValueError):
        return ""


def _json_type(value: object) -> str:
    """The JSON name of a decoded value's type (for messages)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
