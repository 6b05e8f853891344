"""Routes of the ``items`` resource kind: listings (JSON, CSV, NDJSON, Atom), history, diff, search.

Every route needs ``items:read`` (:mod:`echo_archive.api.roles`); a principal
scoped to a feed group sees only its group's feeds: a listing is limited to
them (:func:`~echo_archive.api.roles.listing_feeds`), an item of another
feed is a 403, and "what exists" in an error message names only the
group's feeds.

* ``GET /v1/items``: a page of items, ``{"total", "entries", "next",
  "next_url"}`` (Miniflux's ``{total, entries}`` and datasette's ``next``
  token and URL). Filters: ``source``, ``feed``, ``state``, ``since`` /
  ``until`` (RFC 3339 date-times with an offset, compared as instants: the
  item's latest entry was seen at or after ``since`` and before ``until``),
  ``q`` (full-text, :mod:`echo_archive.services.search`: best match first),
  ``order`` (``newest`` or ``oldest`` first archived; not with ``q``),
  ``limit`` (1 to 1000, default 100), ``cursor`` (the ``next`` of the page
  before: keyset pagination, so walking the pages yields each item once
  while entries are appended), ``count`` (``total`` is counted on the
  first page, null on the next ones unless ``count=true``: a count costs a
  pass over the index, a keyset page does not). Each entry is
  :class:`~echo_archive.services.items.ItemSummary` as JSON.
* ``GET /v1/items.csv``, ``GET /v1/items.ndjson``: the whole result of the
  same filters, streamed page after page through the keyset (constant
  memory). CSV is RFC 4180 (CRLF line ends, every field quoted, a header
  row; ``text/csv; charset=utf-8; header=present``) with spreadsheet
  formula injection neutralized (OWASP "CSV Injection": a cell that starts
  with ``=``, ``+``, ``-``, ``@``, tab or CR gets a leading ``'``). NDJSON
  is one JSON object per line (``application/x-ndjson``), the entries of
  the JSON form.
* ``GET /v1/items.atom``: the same page as an Atom 1.0 feed (RFC 4287),
  built with an XML serializer: every query is a feed others can subscribe
  to. The feed's ``id`` is the query's URL without its cursor, its
  ``link rel="self"`` the URL asked, ``link rel="next"`` the next page
  (RFC 5005 §3, paged feeds). Each entry's ``id`` is the item's API URL
  (``/v1/items/{first_index}``, stable for the item), its ``title`` the
  item's title as text, ``updated`` when its latest entry was seen, ``link
  rel="alternate"`` the item's link at the source (only an ``http`` or
  ``https`` URL), ``link rel="related"`` its API URL.
* ``GET /v1/items/{ref}``: an item's latest content and whole history
  (:func:`~echo_archive.services.items.item_history`): ``ref`` is an entry
  index of any of its entries or ``SOURCE:FEED:NATIVE_ID`` (percent-encode
  a native id that holds ``/``, ``?`` or ``#``).
* ``GET /v1/items/{ref}/diff?from=&to=``: unified diffs of its text fields
  (:mod:`echo_archive.services.diffs`): between two of its entries, or
  without ``from``/``to`` every step of its history.
* ``GET /v1/search?q=``: full-text search over titles, text, authors and
  URLs (SQLite FTS5, bm25 ranking), with the filters of the listing.

Snippets are data, never markup: a hit's ``title_parts`` and ``snippet``
are lists of ``{"text", "hit"}``; ``text`` is plain text as the source
wrote it (it may hold ``<`` or ``&``). A client must insert each ``text``
as a text node (DOM ``textContent``) or HTML-escape it (``& < > " '``) and
wrap the hits in markup of its own (``<mark>``); it must never assign them
to ``innerHTML``.

Errors are the API's one shape (:func:`~echo_archive.api.deps.request_error`):
400 ``{"code": "request", "message"}`` naming the parameter and what is
wrong (a malformed instant, cursor or search query, a limit out of range,
control characters), 404 ``{"code": "not_found", "message"}``, and the
401/403 of :mod:`echo_archive.api.deps`. Query parameters that fail their
declared constraints are 400 too (:func:`~echo_archive.api.deps.validation_error`), never 422.
"""

# No ``from __future__ import annotations``: FastAPI reads the routes' ``Annotated``
# dependencies at runtime, and they name ``auth``, local to build.

import csv
import io
import json
import re
from collections.abc import Callable, Coroutine, Iterable, Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Final
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor

from echo_archive.api.deps import NO_CONTROLS, ApiContext, Auth, check, denied, request_error
from echo_archive.api.roles import Permission, Principal, listing_feeds
from echo_archive.errors import LogError, NotFoundError, PermissionDenied, RequestError
from echo_archive.services.diffs import diff_between, version_diffs
from echo_archive.services.items import (
    STATES,
    ItemHistory,
    ItemKey,
    ItemQuery,
    ItemSummary,
    item_history,
    list_items,
    parse_item_ref,
)
from echo_archive.services.paging import MAX_LIMIT, Page, pages
from echo_archive.services.search import MAX_QUERY_CHARS, SEARCH_STATES, search

__all__ = [
    "ERRORS",
    "ITEM_COLUMNS",
    "SUBRESOURCES",
    "ErrorBody",
    "RefConvertor",
    "atom_feed",
    "build",
    "csv_cell",
    "csv_lines",
    "next_url",
    "xml_text",
]

ITEMS_READ: Final = Permission("items", "read")

"""The pattern of every free-text query parameter: no C0 control character, no DEL."""

EXPORT_PAGE: Final = MAX_LIMIT
"""Items per page an export (CSV, NDJSON) walks the keyset with."""

ITEM_COLUMNS: Final = tuple(ItemSummary.__slots__)
"""The CSV columns of an item listing, in order (the fields of ``ItemSummary``)."""

ATOM_NS: Final = "http://www.w3.org/2005/Atom"

_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")
_NOT_XML: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class ErrorDetail(BaseModel):
    """The ``detail`` of an error response."""

    code: str
    message: str
    missing: str | None = None
    feed: str | None = None


class ErrorBody(BaseModel):
    """An error response: ``{"detail": {"code", "message"}}`` (403: also ``missing``, ``feed``)."""

    detail: ErrorDetail


ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    400: {
        "model": ErrorBody,
        "description": "A malformed parameter (named in the message): code `request`.",
    },
    401: {"model": ErrorBody, "description": "No valid credential (RFC 6750 §3): `unauthorized`."},
    403: {
        "model": ErrorBody,
        "description": "The role lacks the permission, or the feed is outside its group.",
    },
    404: {"model": ErrorBody, "description": "No such resource: code `not_found`."},
    "default": {"model": ErrorBody, "description": "Any other error, in the same shape."},
}
"""The error responses every route documents (OpenAPI)."""


SUBRESOURCES: Final = ("diff", "corrections")
"""What may follow an item's ref in a path (``/v1/items/{ref}/diff``...): never part of a ref."""


class RefConvertor(Convertor[str]):
    """The ``{ref:itemref}`` path convertor: any text, ``/`` and line ends included.

    Starlette's ``path`` convertor (``.*``) stops at a line feed, so a
    reference holding one would match no route (a bare 404 outside the API's
    error shape); this one takes every character, and the route's own
    validation refuses control characters with a 400. A ref never ends in
    ``/`` + one of :data:`SUBRESOURCES`, so ``/v1/items/{ref}`` leaves
    ``/v1/items/{ref}/corrections`` to its own route (reach an item whose
    native id ends so by an entry index).
    """

    regex = r"[\s\S]+" + "".join(f"(?<!/{name})" for name in SUBRESOURCES)

    def convert(self, value: str) -> str:
        """The text as it is."""
        return value

    def to_string(self, value: str) -> str:
        """The text as it is."""
        return value


register_url_convertor("itemref", RefConvertor())


def next_url(request: Request, token: str | None) -> str | None:
    """The URL of the next page: the request's own URL with ``cursor=token``, or None."""
    if token is None:
        return None
    return str(request.url.include_query_params(cursor=token))


def csv_cell(value: object) -> str:
    """A CSV cell's text with spreadsheet formula injection neutralized.

    OWASP "CSV Injection": a cell that starts with ``=``, ``+``, ``-``,
    ``@``, tab or carriage return is prefixed with ``'`` so a spreadsheet
    shows it as text instead of evaluating it. None is ``""``.
    """
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_lines(columns: Iterable[str], rows: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    """CSV (RFC 4180: CRLF line ends, every field quoted) of ``rows``, a header row first.

    Args:
        columns: the column names (the keys read from each row).
        rows: mappings (consumed lazily: one line is made per row).

    Yields:
        UTF-8 lines, each ending in CRLF.
    """
    names = list(columns)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_ALL)

    def line(cells: Iterable[object]) -> bytes:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([csv_cell(c) for c in cells])
        return buffer.getvalue().encode("utf-8")

    yield line(names)
    for row in rows:
        yield line(row.get(name) for name in names)


def xml_text(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot hold (§2.2 ``Char``: C0 controls...)."""
    return _NOT_XML.sub("", text)


def _web_link(url: str) -> str | None:
    """``url`` when it is an absolute http or https URL (else None: never ``javascript:``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme.lower() in ("http", "https") and parts.netloc else None


def atom_feed(
    entries: Iterable[ItemSummary],
    *,
    feed_id: str,
    self_url: str,
    next_link: str | None,
    item_url: Callable[[ItemSummary], str],
    title: str,
    now: str,
) -> bytes:
    """An Atom 1.0 feed (RFC 4287) of item summaries, made with an XML serializer.

    Args:
        entries: the items, in the feed's order.
        feed_id: the feed's ``atom:id`` (§4.2.6; an IRI: the query's URL).
        self_url: the ``link rel="self"`` (§4.2.7.2).
        next_link: the next page (RFC 5005 §3), or None.
        item_url: an item's API URL (its entry's ``id`` and ``related`` link).
        title: the feed's title (text).
        now: RFC 3339 time for ``updated`` when there is no entry.

    Returns:
        The document, UTF-8 with an XML declaration. Text from a source is
        element text (escaped by the serializer; characters XML cannot hold
        removed), never markup; only http(s) links are linked.
    """
    ET.register_namespace("", ATOM_NS)

    def el(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        node = ET.SubElement(
            parent, f"{{{ATOM_NS}}}{tag}", {k: xml_text(v) for k, v in attrs.items()}
        )
        if text is not None:
            node.text = xml_text(text)
        return node

    items = list(entries)
    root = ET.Element(f"{{{ATOM_NS}}}feed")
    el(root, "id", feed_id)
    el(root, "title", title, type="text")
    el(root, "updated", max((i.seen_at for i in items), default=now))
    author = el(root, "author")
    el(author, "name", "ECHO")
    el(root, "generator", "ECHO")
    el(root, "link", rel="self", href=self_url, type="application/atom+xml")
    if next_link is not None:
        el(root, "link", rel="next", href=next_link, type="application/atom+xml")
    for item in items:
        entry = el(root, "entry")
        api = item_url(item)
        el(entry, "id", api)
        el(entry, "title", item.title or f"{item.source}:{item.feed}:{item.native_id}", type="text")
        el(entry, "updated", item.seen_at)
        link = _web_link(item.url)
        if link is not None:
            el(entry, "link", rel="alternate", href=link)
        el(entry, "link", rel="related", href=api, type="application/json")
        for term in (item.source, item.feed, item.state):
            el(entry, "category", term=term)
        versions = f"{item.versions} version{'s' if item.versions != 1 else ''}"
        summary = f"{item.source} / {item.feed}: {item.state}, {versions}, entry {item.index}"
        el(entry, "summary", summary, type="text")
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return body


# --------------------------------------------------------------------------- parameters

Name = Annotated[
    str | None,
    Query(max_length=200, pattern=NO_CONTROLS, description="A source kind or feed name."),
]
Instant = Annotated[
    str | None,
    Query(
        max_length=64,
        pattern=NO_CONTROLS,
        description="An RFC 3339 date-time with an offset (2026-12-05T13:00:00Z).",
    ),
]
Cursor = Annotated[
    str | None,
    Query(
        max_length=512,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The `next` token of the page before (opaque).",
    ),
]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Entries per page, 1 to 1000.")]
SearchText = Annotated[
    str,
    Query(
        min_length=1,
        max_length=MAX_QUERY_CHARS,
        pattern=NO_CONTROLS,
        description='A full-text query: words, "phrases", prefix*, a OR b, -excluded.',
    ),
]
ItemState = Annotated[
    str | None,
    Query(pattern="^(" + "|".join(STATES) + ")$", description="Only items in this state."),
]
SearchState = Annotated[
    str | None,
    Query(
        pattern="^(" + "|".join(SEARCH_STATES) + ")$",
        description="Only items in this state (`any`: all); default `active`.",
    ),
]
Order = Annotated[
    str | None,
    Query(
        pattern="^(newest|oldest)$",
        description="`newest` (default) or `oldest` first archived; not with `q`.",
    ),
]
Ref = Annotated[
    str,
    Path(
        min_length=1,
        max_length=2000,
        pattern=NO_CONTROLS,
        description="An entry index of the item, or SOURCE:FEED:NATIVE_ID (percent-encoded).",
    ),
]
Count = Annotated[
    bool | None,
    Query(
        description="Count every match (`total`): by default on the first page only (no "
        "`cursor`), so deep pages cost what the first does; false: `total` is null."
    ),
]


SearchCount = Annotated[
    bool,
    Query(
        description="Count every match (`total`; null without): off by default, since a "
        "common word's count passes over every match (seconds at 10^6 items)."
    ),
]


def _listing_error(exc: Exception) -> HTTPException:
    """The HTTP error of a listing's failure (PermissionDenied, RequestError, NotFoundError)."""
    if isinstance(exc, PermissionDenied):
        return denied(exc)
    assert isinstance(exc, RequestError | NotFoundError)
    return request_error(exc)


def build(ctx: ApiContext, auth: Auth) -> APIRouter:
    """The router of the items routes (module docstring) over ``ctx``."""
    router = APIRouter(prefix="/v1", tags=["items"])
    reader = auth.require(ITEMS_READ)

    def scope(principal: Principal, feed: str | None) -> frozenset[str] | None:
        """The feeds a listing is limited to (None: unscoped); 403 outside the group."""
        try:
            found = listing_feeds(principal, ITEMS_READ, feed, now=ctx.clock())
        except PermissionDenied as exc:
            raise denied(exc) from None
        return None if principal.feeds is None else found

    def item_query(
        principal: Principal,
        *,
        source: str | None,
        feed: str | None,
        state: str | None,
        since: str | None,
        until: str | None,
        q: str | None,
        order: str | None,
        limit: int,
        cursor: str | None,
        total: bool,
    ) -> ItemQuery:
        if q is not None and order is not None:
            raise request_error(
                RequestError("order: not with q (search results are ranked by relevance)")
            )
        return ItemQuery(
            source=source,
            feed=feed,
            state=state,
            since=since,
            until=until,
            order="oldest" if order == "oldest" else "newest",
            limit=limit,
            cursor=cursor,
            total=total,
            feeds=scope(principal, feed),
            q=q,
        )

    async def page_of(query: ItemQuery) -> Page[ItemSummary]:
        try:
            return await run_in_threadpool(list_items, ctx.reader, query)
        except (RequestError, NotFoundError) as exc:
            raise _listing_error(exc) from None

    def item_url(request: Request) -> Callable[[ItemSummary], str]:
        base = str(request.base_url)
        return lambda item: f"{base}v1/items/{item.first_index}"

    @router.get(
        "/items",
        summary="A page of items (filters, full-text q, keyset cursor).",
        responses=ERRORS,
    )
    async def items_list(
        request: Request,
        principal: Annotated[Principal, Depends(reader)],
        source: Name = None,
        feed: Name = None,
        state: ItemState = None,
        since: Instant = None,
        until: Instant = None,
        q: Annotated[
            str | None,
            Query(max_length=MAX_QUERY_CHARS, pattern=NO_CONTROLS, description="Full-text query."),
        ] = None,
        order: Order = None,
        cursor: Cursor = None,
        limit: Limit = 100,
        count: Count = None,
    ) -> dict[str, Any]:
        """``{"total", "entries": [ItemSummary], "next", "next_url"}``."""
        query = item_query(
            principal,
            source=source,
            feed=feed,
            state=state,
            since=since,
            until=until,
            q=q,
            order=order,
            limit=limit,
            cursor=cursor,
            total=cursor is None if count is None else count,
        )
        page = await page_of(query)
        return {
            "total": page.total,
            "entries": [e.to_json() for e in page.entries],
            "next": page.next,
            "next_url": next_url(request, page.next),
        }

    async def export(
        query: ItemQuery, render: Callable[[Iterator[ItemSummary]], Iterator[bytes]]
    ) -> Iterator[bytes]:
        """The bytes of a streamed export; the first page is read now (its errors are 400s)."""
        first = await page_of(query)

        def fetch(token: str | None) -> Page[ItemSummary]:
            return list_items(ctx.reader, ItemQuery(**{**_fields(query), "cursor": token}))

        def summaries() -> Iterator[ItemSummary]:
            for page in pages(fetch, first):
                yield from page.entries

        return render(summaries())

    def ndjson(summaries: Iterator[ItemSummary]) -> Iterator[bytes]:
        for item in summaries:
            yield json.dumps(item.to_json(), ensure_ascii=False).encode("utf-8") + b"\n"

    def csv_rows(summaries: Iterator[ItemSummary]) -> Iterator[bytes]:
        return csv_lines(ITEM_COLUMNS, (i.to_json() for i in summaries))

    def export_route(
        render: Callable[[Iterator[ItemSummary]], Iterator[bytes]], media: str
    ) -> Callable[..., Coroutine[Any, Any, StreamingResponse]]:
        """The endpoint of one export form (``.csv``, ``.ndjson``): the filters, no page."""

        async def endpoint(
            principal: Annotated[Principal, Depends(reader)],
            source: Name = None,
            feed: Name = None,
            state: ItemState = None,
            since: Instant = None,
            until: Instant = None,
            q: Annotated[
                str | None,
                Query(
                    max_length=MAX_QUERY_CHARS, pattern=NO_CONTROLS, description="Full-text query."
                ),
            ] = None,
            order: Order = None,
        ) -> StreamingResponse:
            """Every matching item, streamed page after page (constant memory)."""
            query = item_query(
                principal,
                source=source,
                feed=feed,
                state=state,
                since=since,
                until=until,
                q=q,
                order=order,
                limit=EXPORT_PAGE,
                cursor=None,
                total=False,
            )
            chunks = await export(query, render)
            return StreamingResponse(
                chunks, media_type=media, headers={"X-Content-Type-Options": "nosniff"}
            )

        return endpoint

    for suffix, media, render, what in (
        (".csv", "text/csv; charset=utf-8; header=present", csv_rows, "CSV (RFC 4180)"),
        (".ndjson", "application/x-ndjson", ndjson, "NDJSON (one JSON object a line)"),
    ):
        router.add_api_route(
            f"/items{suffix}",
            export_route(render, media),
            methods=["GET"],
            summary=f"Every item matching the filters as {what}, streamed.",
            responses={**ERRORS, 200: {"content": {media.split(";")[0]: {}}, "description": what}},
            response_class=StreamingResponse,
        )

    @router.get(
        "/items.atom",
        summary="A page of items as an Atom 1.0 feed (RFC 4287): a query to subscribe to.",
        responses={
            **ERRORS,
            200: {"content": {"application/atom+xml": {}}, "description": "An Atom feed."},
        },
        response_class=Response,
    )
    async def items_atom(
        request: Request,
        principal: Annotated[Principal, Depends(reader)],
        source: Name = None,
        feed: Name = None,
        state: ItemState = None,
        since: Instant = None,
        until: Instant = None,
        q: Annotated[
            str | None,
            Query(max_length=MAX_QUERY_CHARS, pattern=NO_CONTROLS, description="Full-text query."),
        ] = None,
        order: Order = None,
        cursor: Cursor = None,
        limit: Limit = 100,
    ) -> Response:
        """The Atom feed of the page (module docstring)."""
        query = item_query(
            principal,
            source=source,
            feed=feed,
            state=state,
            since=since,
            until=until,
            q=q,
            order=order,
            limit=limit,
            cursor=cursor,
            total=False,
        )
        page = await page_of(query)
        filters = [f"{k}={v}" for k, v in request.query_params.items() if k != "cursor"]
        body = atom_feed(
            page.entries,
            feed_id=str(request.url.remove_query_params("cursor")),
            self_url=str(request.url),
            next_link=next_url(request, page.next),
            item_url=item_url(request),
            title="ECHO items" + (f" ({', '.join(filters)})" if filters else ""),
            now=_now_text(ctx.clock()),
        )
        return Response(body, media_type="application/atom+xml; charset=utf-8")

    async def history_of(principal: Principal, ref: str) -> ItemHistory:
        """The item's history after the scope check (403), or the 400/404."""
        try:
            target = parse_item_ref(ref)
            if isinstance(target, ItemKey):  # check the scope before looking: no oracle
                check(principal, ITEMS_READ, target.feed, now=ctx.clock())
            history = await run_in_threadpool(item_history, ctx.reader, target)
        except LogError as exc:
            raise request_error(NotFoundError(str(exc))) from None
        except (RequestError, NotFoundError) as exc:
            raise request_error(exc) from None
        check(principal, ITEMS_READ, history.key.feed, now=ctx.clock())
        return history

    def key_json(key: ItemKey) -> dict[str, str]:
        return {"source": key.source, "feed": key.feed, "native_id": key.native_id}

    @router.get(
        "/items/{ref:itemref}/diff",
        summary="What changed between two entries of an item (unified diffs of its fields).",
        responses=ERRORS,
    )
    async def item_diff(
        principal: Annotated[Principal, Depends(reader)],
        ref: Ref,
        from_: Annotated[
            int | None,
            Query(alias="from", ge=0, description="Entry index to compare from (default: first)."),
        ] = None,
        to: Annotated[
            int | None, Query(ge=0, description="Entry index to compare to (default: latest).")
        ] = None,
    ) -> dict[str, Any]:
        """``{"ref", "key", "state", "diffs": [{"older", "newer", "type", "fields", "lines"}]}``.

        Without ``from`` and ``to``: every step of the history, oldest first.
        With either: one diff, from ``from`` (default: the first content) to
        ``to`` (default: the latest entry). 400 when an index is not an
        entry of this item.
        """
        history = await history_of(principal, ref)
        if from_ is None and to is None:
            diffs = version_diffs(history)
        else:
            older = from_ if from_ is not None else history.history[-1].index
            newer = to if to is not None else history.history[0].index
            try:
                diffs = [diff_between(history, older, newer)]
            except RequestError as exc:
                raise request_error(exc) from None
        return {
            "ref": str(history.key),
            "key": key_json(history.key),
            "state": history.state,
            "diffs": [d.to_json() for d in diffs],
        }

    @router.get(
        "/items/{ref:itemref}",
        summary="An item's latest content and whole history.",
        responses=ERRORS,
    )
    async def item_show(
        principal: Annotated[Principal, Depends(reader)],
        ref: Ref,
    ) -> dict[str, Any]:
        """``{"ref", "key", "state", "latest", "history", "observations", "captures"}``.

        ``history``: every entry (item, versions, tombstones and withdrawn
        marks), newest observed first; ``latest``: the newest content's item
        document; ``captures``: the captures it was parsed from or seen in.
        """
        history = await history_of(principal, ref)
        return {
            **history.to_json(),
            "ref": str(history.key),
            "key": key_json(history.key),
            "latest": dict(history.latest),
        }

    @router.get(
        "/search",
        summary="Full-text search: titles, text, authors, URLs; bm25 ranked, with snippets.",
        responses=ERRORS,
    )
    async def search_items(
        request: Request,
        principal: Annotated[Principal, Depends(reader)],
        q: SearchText,
        source: Name = None,
        feed: Name = None,
        state: SearchState = None,
        since: Instant = None,
        until: Instant = None,
        cursor: Cursor = None,
        limit: Limit = 100,
        count: SearchCount = False,
        window: Annotated[
            int | None,
            Query(
                ge=0,
                le=10**9,
                description="Rank at most this many of the newest matches (0: every match); "
                "default 2,000.",
            ),
        ] = None,
    ) -> dict[str, Any]:
        """``{"total", "entries": [hit], "next", "next_url", "ranked_from"}``, best match first.

        ``total`` is null unless ``count=true`` (a count passes over every match).

        ``ranked_from``: a common word is ranked over its ``window`` newest
        matches only (bm25 scores every match it ranks); the smallest
        first log index ranked, 0 when every match was
        (:mod:`echo_archive.services.search`).

        A hit: ``index``, ``first_index``, ``source``, ``feed``,
        ``native_id``, ``state``, ``seen_at``, ``score`` (bm25: negative,
        lower is better), ``title``, ``author``, ``url``, ``title_parts``
        and ``snippet`` (lists of ``{"text", "hit"}``: plain text, to be
        inserted as text nodes or HTML-escaped by the client, never as
        HTML; module docstring). A malformed query is a 400 naming the
        problem (an unclosed quote, a dangling OR...).
        """
        feeds = scope(principal, feed)
        try:
            page = await run_in_threadpool(
                lambda: search(
                    ctx.reader,
                    q,
                    source=source,
                    feed=feed,
                    state=state,
                    since=since,
                    until=until,
                    limit=limit,
                    cursor=cursor,
                    total=count,
                    feeds=feeds,
                    window=window,
                )
            )
        except RequestError as exc:
            raise request_error(exc) from None
        return {
            "total": page.total,
            "entries": [h.to_json() for h in page.entries],
            "next": page.next,
            "next_url": next_url(request, page.next),
            "ranked_from": page.ranked_from,
        }

    return router


def _fields(query: ItemQuery) -> dict[str, Any]:
    return {name: getattr(query, name) for name in query.__slots__}


def _now_text(now: float) -> str:
    """RFC 3339 UTC text of POSIX seconds ``now`` (microseconds, ``Z``)."""
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
