"""Routes of the ``captures`` resource kind: captures, their bodies and WARC records; entries.

* ``GET /v1/captures``: a page of captures, newest first (``{"total":
  null, "entries", "next", "next_url"}``; captures are not counted, a count
  scans the log), filtered by ``feed``, ``source``, ``kind`` (``http`` or
  ``file``), ``since`` / ``until`` (RFC 3339 instants: the capture's
  ``fetched_at``, a file's ``logged_at``), ``order``, keyset ``cursor`` and
  ``limit`` (1 to 1000). Each entry is
  :class:`~echo_archive.services.captures.CaptureSummary` as JSON. Needs
  ``captures:read``; a scoped principal sees its group's HTTP captures only
  (a file capture belongs to no feed).
* ``GET /v1/captures.csv``, ``GET /v1/captures.ndjson``: every capture of
  the same filters, streamed page after page through the keyset (constant
  memory); CSV as :func:`~echo_archive.api.routes.items.csv_lines` writes
  it (RFC 4180, formula injection neutralized), NDJSON one JSON object a
  line, the entries of the JSON form.
* ``GET /v1/captures/{index}``: the capture's metadata
  (:meth:`~echo_archive.services.entries.Capture.to_json`).
* ``GET /v1/captures/{index}/body``: the bytes as received, streamed from
  the blob store. Archived HTML must never run on ECHO's origin, so the
  body is always served **as a download**: ``Content-Type:
  application/octet-stream`` (never the original type: a browser does not
  render or run it), ``Content-Disposition: attachment`` with a safe
  ASCII file name (RFC 6266 §4: ``capture-<index>`` and an extension from a
  fixed list by the original type; a file capture's own name reduced to
  ``[A-Za-z0-9._-]``), ``X-Content-Type-Options: nosniff`` (no sniffing
  back into HTML), ``Content-Security-Policy: sandbox; default-src 'none'``
  (should a browser render it anyway: no script, no origin, no fetch),
  ``Cross-Origin-Resource-Policy: same-origin``, and the original type
  in ``X-Echo-Content-Type`` (metadata, also in ``/v1/captures/{index}``).
  ``ETag`` is the body's SHA-256 digest, weak (``W/"<hex>"``, RFC 9110
  §8.8.3: the service's compression may content-code the bytes, and a
  strong validator would have to change with the coding).
* ``GET /v1/captures/{index}/warc``: the capture as one WARC/1.1
  ``response`` record (ISO 28500:2017, written by warcio;
  ``application/warc``, as an attachment). A file capture has none (404).
* ``GET /v1/entries/{index}``: any log entry
  (:meth:`~echo_archive.services.entries.EntryView.to_json`: index, leaf
  hash, type, logged_at, blobs, meta), authorized by its type: ``item``,
  ``version`` and ``tombstone`` entries need ``items:read`` and
  ``capture`` entries ``captures:read``, both on the entry's feed (a
  scoped principal: only its group's feeds, never a file capture);
  ``audit`` entries need ``audit:read``; every other type (repairs,
  interventions, corrections, checkpoints of operations) ``operations:read``.

Errors: 400 (a malformed parameter, named), 404 (no such entry, or not a
capture), 401/403 (:mod:`echo_archive.api.deps`).
"""

# No ``from __future__ import annotations``: FastAPI reads the routes' ``Annotated``
# dependencies at runtime, and they name ``auth``, local to build.

import dataclasses
import json
import re
from collections.abc import Callable, Coroutine, Iterator, Mapping
from typing import Annotated, Any, BinaryIO, Final

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from echo_archive.api.deps import ApiContext, Auth, check, denied, request_error
from echo_archive.api.roles import Permission, Principal, listing_feeds
from echo_archive.api.routes.items import (
    ERRORS,
    EXPORT_PAGE,
    Cursor,
    Instant,
    Limit,
    Name,
    Order,
    csv_lines,
    next_url,
)
from echo_archive.errors import (
    BlobError,
    LogError,
    NotFoundError,
    PermissionDenied,
    RequestError,
)
from echo_archive.services.captures import (
    CaptureQuery,
    CaptureSummary,
    capture_warc,
    list_captures,
    open_body,
)
from echo_archive.services.entries import Capture, EntryView, get_capture, get_entry
from echo_archive.services.paging import Page, pages

__all__ = ["BODY_HEADERS", "CAPTURE_COLUMNS", "body_filename", "build", "entry_permission"]

CAPTURE_COLUMNS: Final = tuple(CaptureSummary.__slots__)
"""The CSV columns of a captures listing, in order (the fields of ``CaptureSummary``)."""

CAPTURES_READ: Final = Permission("captures", "read")
ITEM_TYPES: Final = frozenset({"item", "version", "tombstone"})
CHUNK: Final = 64 * 1024
"""Bytes read from the blob store per chunk of a streamed body."""

BODY_HEADERS: Final = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "private, max-age=0",
}
"""The headers of every archived body served (module docstring): inert in any browser."""

_EXTENSIONS: Final = {
    "text/html": "html",
    "application/xhtml+xml": "xhtml",
    "application/json": "json",
    "application/feed+json": "json",
    "application/rss+xml": "xml",
    "application/atom+xml": "xml",
    "application/rdf+xml": "xml",
    "application/xml": "xml",
    "text/xml": "xml",
    "text/plain": "txt",
    "text/csv": "csv",
    "application/pdf": "pdf",
    "application/gzip": "gz",
    "application/zip": "zip",
}
_SAFE_NAME: Final = re.compile(r"[^A-Za-z0-9._-]+")

Index = Annotated[int, Path(ge=0, le=2**62, description="The entry's log index.")]
Kind = Annotated[
    str | None, Query(pattern="^(http|file)$", description="`http` (an exchange) or `file`.")
]


def body_filename(capture: Capture) -> str:
    """A safe ASCII download name of a capture's body (RFC 6266 §4.3: no path, no quote).

    ``capture-<index>.<ext>``: the extension from a fixed list by the
    original ``Content-Type`` (``bin`` otherwise); for a file capture its own
    base name, reduced to letters, digits, ``.``, ``_`` and ``-`` (at most
    80 characters, no leading dot), after the index.
    """
    meta = capture.meta
    if meta.get("kind") == "file":
        name = _SAFE_NAME.sub("_", str(meta.get("name", ""))).strip("._")[:80]
        return f"capture-{capture.index}-{name}" if name else f"capture-{capture.index}.bin"
    headers = meta.get("headers") or {}
    media = str(headers.get("content-type", "")).split(";")[0].strip().lower()
    return f"capture-{capture.index}.{_EXTENSIONS.get(media, 'bin')}"


def entry_permission(view: EntryView) -> tuple[Permission, str | None]:
    """The permission (and feed) reading an entry needs (module docstring's rule).

    Returns:
        ``(items:read, feed)`` for an item, version or tombstone entry;
        ``(captures:read, feed or None)`` for a capture; ``(audit:read,
        None)`` for an audit entry; ``(operations:read, None)`` for any other.
    """
    kind = view.entry.type
    feed = view.entry.meta.get("feed")
    feed_name = str(feed) if isinstance(feed, str) else None
    if kind in ITEM_TYPES:
        return Permission("items", "read"), feed_name
    if kind == "capture":
        return CAPTURES_READ, feed_name
    if kind == "audit":
        return Permission("audit", "read"), None
    return Permission("operations", "read"), None


def _check_feed(principal: Principal, permission: Permission, feed: str | None, now: float) -> None:
    """Authorize reading one resource of ``feed``; a scoped principal is refused a feedless one."""
    if feed is None and principal.feeds is not None:
        raise denied(
            PermissionDenied(
                f"{permission}: {principal.kind} {principal.name!r} is scoped to feed group "
                f"{principal.group!r}; this resource belongs to no feed of it",
                str(permission),
                None,
            )
        )
    check(principal, permission, feed, now=now)


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    """The stream's bytes, :data:`CHUNK` at a time; closes it at the end (or when abandoned)."""
    with stream:
        while chunk := stream.read(CHUNK):
            yield chunk


def build(ctx: ApiContext, auth: Auth) -> APIRouter:
    """The router of the captures and entries routes (module docstring) over ``ctx``."""
    router = APIRouter(prefix="/v1", tags=["captures"])
    reader = auth.require(CAPTURES_READ)

    async def capture_for(principal: Principal, index: int) -> Capture:
        try:
            capture = await run_in_threadpool(get_capture, ctx.reader, index)
        except LogError as exc:
            raise request_error(NotFoundError(str(exc))) from None
        except NotFoundError as exc:
            raise request_error(exc) from None
        feed = capture.meta.get("feed")
        _check_feed(principal, CAPTURES_READ, str(feed) if feed else None, ctx.clock())
        return capture

    @router.get(
        "/captures", summary="A page of captures (filters, keyset cursor).", responses=ERRORS
    )
    async def captures_list(
        request: Request,
        principal: Annotated[Principal, Depends(reader)],
        feed: Name = None,
        source: Name = None,
        kind: Kind = None,
        since: Instant = None,
        until: Instant = None,
        order: Order = None,
        cursor: Cursor = None,
        limit: Limit = 100,
    ) -> dict[str, Any]:
        """``{"total": null, "entries": [CaptureSummary], "next", "next_url"}``."""
        query = capture_query(
            principal,
            feed=feed,
            source=source,
            kind=kind,
            since=since,
            until=until,
            order=order,
            limit=limit,
            cursor=cursor,
        )
        page = await page_of(query)
        return {
            "total": page.total,
            "entries": [e.to_json() for e in page.entries],
            "next": page.next,
            "next_url": next_url(request, page.next),
        }

    def capture_query(
        principal: Principal,
        *,
        feed: str | None,
        source: str | None,
        kind: str | None,
        since: str | None,
        until: str | None,
        order: str | None,
        limit: int,
        cursor: str | None,
    ) -> CaptureQuery:
        try:
            scope = listing_feeds(principal, CAPTURES_READ, feed, now=ctx.clock())
        except PermissionDenied as exc:
            raise denied(exc) from None
        return CaptureQuery(
            feed=feed,
            source=source,
            kind=kind,
            since=since,
            until=until,
            order="oldest" if order == "oldest" else "newest",
            limit=limit,
            cursor=cursor,
            feeds=None if principal.feeds is None else scope,
        )

    async def page_of(query: CaptureQuery) -> Page[CaptureSummary]:
        try:
            return await run_in_threadpool(list_captures, ctx.reader, query)
        except (RequestError, NotFoundError) as exc:
            raise request_error(exc) from None

    def as_ndjson(rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
        for row in rows:
            yield json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n"

    def as_csv(rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
        return csv_lines(CAPTURE_COLUMNS, rows)

    def export_route(
        render: Callable[[Iterator[dict[str, Any]]], Iterator[bytes]], media: str
    ) -> Callable[..., Coroutine[Any, Any, StreamingResponse]]:
        async def endpoint(
            principal: Annotated[Principal, Depends(reader)],
            feed: Name = None,
            source: Name = None,
            kind: Kind = None,
            since: Instant = None,
            until: Instant = None,
            order: Order = None,
        ) -> StreamingResponse:
            """Every matching capture, streamed page after page (constant memory)."""
            query = capture_query(
                principal,
                feed=feed,
                source=source,
                kind=kind,
                since=since,
                until=until,
                order=order,
                limit=EXPORT_PAGE,
                cursor=None,
            )
            first = await page_of(query)  # its errors are 400s, before streaming

            def fetch(token: str | None) -> Page[CaptureSummary]:
                return list_captures(ctx.reader, dataclasses.replace(query, cursor=token))

            rows = (c.to_json() for page in pages(fetch, first) for c in page.entries)
            return StreamingResponse(
                render(rows), media_type=media, headers={"X-Content-Type-Options": "nosniff"}
            )

        return endpoint

    for suffix, media, render, what in (
        (".csv", "text/csv; charset=utf-8; header=present", as_csv, "CSV (RFC 4180)"),
        (".ndjson", "application/x-ndjson", as_ndjson, "NDJSON (one JSON object a line)"),
    ):
        router.add_api_route(
            f"/captures{suffix}",
            export_route(render, media),
            methods=["GET"],
            name=f"captures_export_{suffix[1:]}",
            summary=f"Every capture matching the filters as {what}, streamed.",
            responses={**ERRORS, 200: {"content": {media.split(";")[0]: {}}, "description": what}},
            response_class=StreamingResponse,
        )

    @router.get("/captures/{index}", summary="A capture's metadata.", responses=ERRORS)
    async def capture_show(
        principal: Annotated[Principal, Depends(reader)], index: Index
    ) -> dict[str, Any]:
        """``{"index", "logged_at", "meta", "body": {"digest", "size"} | null}``."""
        return (await capture_for(principal, index)).to_json()

    @router.get(
        "/captures/{index}/body",
        summary="A capture's bytes as received: a download, never rendered on ECHO's origin.",
        responses={
            **ERRORS,
            200: {"content": {"application/octet-stream": {}}, "description": "The bytes."},
        },
        response_class=StreamingResponse,
    )
    async def capture_body(
        principal: Annotated[Principal, Depends(reader)], index: Index
    ) -> StreamingResponse:
        """The body, streamed, with :data:`BODY_HEADERS` (module docstring); 404 without one."""
        capture = await capture_for(principal, index)
        try:
            stream = await run_in_threadpool(open_body, ctx.reader, capture)
        except NotFoundError as exc:
            raise request_error(exc) from None
        except BlobError as exc:
            raise HTTPException(
                status_code=500, detail={"code": "storage", "message": str(exc)}
            ) from None
        assert capture.body is not None
        headers = _download_headers(capture, body_filename(capture))
        headers["Content-Length"] = str(capture.body.size)
        headers["ETag"] = f'W/"{capture.body.digest.hex()}"'
        return StreamingResponse(
            _chunks(stream), media_type="application/octet-stream", headers=headers
        )

    @router.get(
        "/captures/{index}/warc",
        summary="A capture as one WARC/1.1 response record (ISO 28500).",
        responses={
            **ERRORS,
            200: {"content": {"application/warc": {}}, "description": "A WARC record."},
        },
        response_class=Response,
    )
    async def capture_record(
        principal: Annotated[Principal, Depends(reader)], index: Index
    ) -> Response:
        """The record (``application/warc``, an attachment); 404 for a file capture."""
        capture = await capture_for(principal, index)
        try:
            record = await run_in_threadpool(capture_warc, ctx.reader, capture)
        except NotFoundError as exc:
            raise request_error(exc) from None
        except BlobError as exc:
            raise HTTPException(
                status_code=500, detail={"code": "storage", "message": str(exc)}
            ) from None
        headers = _download_headers(capture, f"capture-{capture.index}.warc")
        return Response(record, media_type="application/warc", headers=headers)

    @router.get(
        "/entries/{index}", summary="Any log entry (authorized by its type).", responses=ERRORS
    )
    async def entry_show(
        principal: Annotated[Principal, Depends(auth.principal)], index: Index
    ) -> dict[str, Any]:
        """``{"index", "leaf_hash", "type", "logged_at", "blobs", "meta"}`` (rule: module doc)."""
        try:
            view = await run_in_threadpool(get_entry, ctx.reader, index)
        except LogError as exc:
            raise request_error(NotFoundError(str(exc))) from None
        permission, feed = entry_permission(view)
        if permission.kind in ("items", "captures"):
            _check_feed(principal, permission, feed, ctx.clock())
        else:
            check(principal, permission, now=ctx.clock())
        return view.to_json()

    return router


def _download_headers(capture: Capture, filename: str) -> dict[str, str]:
    """:data:`BODY_HEADERS`, ``Content-Disposition: attachment`` (RFC 6266), the original type."""
    headers = dict(BODY_HEADERS)
    headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    original = _original_type(capture.meta)
    if original:
        headers["X-Echo-Content-Type"] = original
    return headers


def _original_type(meta: Mapping[str, Any]) -> str:
    """The capture's original ``Content-Type`` as printable ASCII (else ``""``), at most 200."""
    value = str((meta.get("headers") or {}).get("content-type", ""))[:200]
    return value if value.isascii() and value.isprintable() else ""
