"""Routes of the ``corrections`` resource kind (see :mod:`echo_archive.api.routes`).

Issue 11, "Corrections": an editor annotates, retracts or reinstates an item
with a reason; it is a new ``correction`` entry in the log
(:mod:`echo_archive.services.corrections`), the item shows it, nothing is
rewritten.

* ``POST /v1/items/{ref}/corrections``: JSON ``{"kind", "reason", "text"?}``
  -> 201 ``{"index", "record"}``. Needs ``corrections:write`` on the item's
  feed (a scoped editor only on its group's feeds). 400 naming the field of
  a bad body, 404 for an unknown item, 409 when the sequence rules refuse it
  (a retraction of a retracted item, a reinstatement of one not retracted),
  413 for a body over :data:`MAX_BODY` bytes, 415 for a body that is not
  ``application/json``. The correction is its own audit record (actor,
  reason, request id, time): no ``audit`` entry is written beside it.
* ``GET /v1/items/{ref}/corrections``: ``{"item", "retracted", "total",
  "entries"}``, oldest first. Needs ``corrections:read`` on the item's feed.
* ``GET /v1/corrections``: ``{"total", "entries", "next"}``, a keyset page of
  every item's corrections (``kind``, ``feed``, ``order``, ``limit``,
  ``cursor``). Needs ``corrections:read``; a scoped principal sees its
  group's feeds only.

``ref`` is an entry index of the item or ``SOURCE:FEED:NATIVE_ID`` (the
native id may hold ``/`` and ``:``).
"""

# No ``from __future__ import annotations``: FastAPI reads the routes' ``Annotated``
# dependencies at runtime, and they name ``auth``, local to build.

from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from echo_archive.api.deps import (
    ApiContext,
    Auth,
    Requirement,
    check,
    denied,
    request_error,
    request_id,
)
from echo_archive.api.roles import Permission, Principal, listing_feeds
from echo_archive.errors import (
    CursorError,
    NotFoundError,
    ParseError,
    PermissionDenied,
    RequestError,
)
from echo_archive.jsondecode import decode_json
from echo_archive.schemas import CORRECTION_KINDS, MAX_CORRECTION_TEXT, MAX_REASON
from echo_archive.services.corrections import (
    CorrectionRefused,
    check_correction,
    correct_item,
    corrections_of_key,
    is_retracted,
    item_key_of,
    list_corrections,
)
from echo_archive.services.paging import MAX_LIMIT

__all__ = [
    "MAX_BODY",
    "CorrectionOut",
    "CorrectionPage",
    "NewCorrection",
    "RoleRequirement",
    "build",
]

MAX_BODY: Final = 256 * 1024
"""Bytes a correction's JSON body may hold at most (a 10,000-character text, escaped, fits)."""

_READ = Permission("corrections", "read")
_WRITE = Permission("corrections", "write")


class RoleRequirement(Requirement):
    """A :class:`~echo_archive.api.deps.Requirement` that checks the role only, not the feed scope.

    A write to one item names its feed only once the item is found, and
    :meth:`Auth.require <echo_archive.api.deps.Auth.require>` refuses a
    scoped principal's write that names no feed (the rule of
    :func:`~echo_archive.api.roles.authorize`). This dependency answers 401
    without a valid credential and 403 when the role lacks the permission
    (before the body is read); the route then checks the item's feed with
    :func:`~echo_archive.api.deps.check`. Being a ``Requirement``, the
    OpenAPI document names its permission like any other route's.
    """

    async def __call__(self, request: Request) -> Principal:
        """The principal of ``request`` when its role holds the permission (else 401/403)."""
        found = await self.auth.principal(request)
        now = self.auth.ctx.clock()
        if self.permission not in found.permissions(now):
            check(found, self.permission, now=now)  # raises the 403 naming it
        return found


class NewCorrection(BaseModel):
    """The body of ``POST /v1/items/{ref}/corrections`` (documented; read by hand for 400s)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["annotation", "retraction", "reinstatement"] = Field(
        description="``annotation`` (a note), ``retraction`` (the archive no longer stands "
        "behind the item) or ``reinstatement`` (withdraws a retraction)."
    )
    reason: str = Field(
        min_length=1,
        max_length=MAX_REASON,
        description="Why, one line: no control, line-separator or bidi control character.",
    )
    text: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_CORRECTION_TEXT,
        description="The annotation's body or a notice (line feeds and tabs allowed), or null.",
    )


class CorrectionOut(BaseModel):
    """A ``correction`` entry as read back (``docs/entries.md``, kind ``annotation``...)."""

    index: int = Field(description="Its log index.")
    logged_at: str = Field(description="When it joined the log (RFC 3339 UTC).")
    kind: str = Field(description="``annotation``, ``retraction`` or ``reinstatement``.")
    item: str = Field(description="The item, ``SOURCE:FEED:NATIVE_ID``.")
    source: str = Field(description="The item's source kind.")
    feed: str = Field(description="The item's feed.")
    native_id: str = Field(description="The item's id at the source.")
    entry: int = Field(description="The item's entry the editor saw (log index).")
    content_digest: str = Field(description="That entry's content digest.")
    previous: int | None = Field(description="The item's previous correction, or null.")
    reason: str = Field(description="Why.")
    text: str | None = Field(description="The annotation's body or notice, or null.")
    actor: str = Field(description="``key:<name>``, ``user:<name>`` or ``cli:<login>``.")
    request_id: str | None = Field(description="The HTTP request's id, or null.")
    at: str = Field(description="When the editor made it (RFC 3339 UTC).")


class Created(BaseModel):
    """The answer of ``POST /v1/items/{ref}/corrections``."""

    index: int = Field(description="The new entry's log index (prove it: /v1/proofs/inclusion).")
    record: CorrectionOut


class ItemCorrections(BaseModel):
    """The answer of ``GET /v1/items/{ref}/corrections``."""

    item: str = Field(description="The item, ``SOURCE:FEED:NATIVE_ID``.")
    retracted: bool = Field(
        description="The latest of its retractions and reinstatements is a retraction."
    )
    total: int
    entries: list[CorrectionOut] = Field(description="Oldest first.")


class CorrectionPage(BaseModel):
    """The answer of ``GET /v1/corrections`` (Miniflux's ``{total, entries}`` and a ``next``)."""

    total: int = Field(description="Matches in all.")
    entries: list[CorrectionOut]
    next: str | None = Field(description="The cursor of the next page, or null on the last.")


class ErrorDetail(BaseModel):
    """``{"code", "message"}`` (403 adds ``missing`` and ``feed``)."""

    code: str
    message: str


class ErrorBody(BaseModel):
    """The API's one error shape."""

    detail: ErrorDetail


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    words = {
        400: "A bad body, reference or parameter; the message names it.",
        401: "No valid credential.",
        403: "The principal lacks the permission on the item's feed.",
        404: "No such item.",
        409: "The sequence rules refuse it (already retracted, not retracted).",
        413: f"The body is larger than {MAX_BODY} bytes.",
        415: "The body is not application/json.",
    }
    return {c: {"model": ErrorBody, "description": words[c]} for c in codes}


def _conflict(exc: CorrectionRefused) -> HTTPException:
    return HTTPException(status_code=409, detail={"code": "conflict", "message": str(exc)})


def _fail(status: int, code: str, message: str) -> HTTPException:
    return HTTPException(status_code=status, detail={"code": code, "message": message})


async def _read_body(request: Request) -> dict[str, Any]:
    """The request's JSON object, read within :data:`MAX_BODY` bytes; keys checked.

    Raises:
        HTTPException: 415 not JSON, 413 too large, 400 not an object or an unknown field.
    """
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise _fail(415, "unsupported_media_type", "send the body as application/json")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise _fail(413, "too_large", f"body larger than {MAX_BODY} bytes")
    try:
        doc = decode_json(raw, "request body", max_depth=4, max_bytes=MAX_BODY)
    except ParseError as exc:
        raise request_error(RequestError(f"body: {exc}")) from None
    if not isinstance(doc, dict):
        raise request_error(RequestError("body: expected a JSON object"))
    unknown = sorted(set(doc) - {"kind", "reason", "text"})
    if unknown:
        raise request_error(
            RequestError(f"{unknown[0][:40]!r}: unknown field (known: kind, reason, text)")
        )
    for name in ("kind", "reason"):
        if name not in doc:
            raise request_error(RequestError(f"{name}: required"))
    return doc


def _limit(text: str | None) -> int:
    if text is None:
        return 50
    if not text.isascii() or not text.isdigit() or len(text) > 7:
        raise RequestError(f"limit {text[:20]!r}: expected an integer, 1 to {MAX_LIMIT}")
    return int(text)


def build(ctx: ApiContext, auth: Auth) -> APIRouter:
    """The router of this module's routes over ``ctx`` (authorization through ``auth``)."""
    router = APIRouter(prefix="/v1", tags=["corrections"])
    write = RoleRequirement(auth, _WRITE, None)

    @router.post(
        "/items/{ref:itemref}/corrections",
        status_code=201,
        summary="Annotate, retract or reinstate an item, with a reason (a new log entry).",
        response_model=Created,
        responses=_errors(400, 401, 403, 404, 409, 413, 415),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": NewCorrection.model_json_schema()}},
            }
        },
    )
    async def add(
        request: Request,
        ref: str,
        principal: Annotated[Principal, Depends(write)],
    ) -> dict[str, Any]:
        """Commit a ``correction`` entry through the vault's writer; 201 with it.

        The role is checked before the body is read (403 naming
        ``corrections:write``, :class:`RoleRequirement`), the feed scope once
        the item is known. Sequence rules, limits and errors:
        :mod:`echo_archive.services.corrections`.
        """
        doc = await _read_body(request)
        kind, reason, text = doc["kind"], doc["reason"], doc.get("text")
        try:
            check_correction(kind, reason, text)
            key = await run_in_threadpool(item_key_of, ctx.reader, ref)
        except (RequestError, NotFoundError) as exc:
            raise request_error(exc) from None
        check(principal, _WRITE, key.feed, now=ctx.clock())
        try:
            index, made = await run_in_threadpool(
                correct_item,
                ctx.writer,
                ctx.reader,
                key,
                kind,
                reason,
                text,
                f"{principal.kind}:{principal.name}",
                request_id(request),
                ctx.clock(),
            )
        except CorrectionRefused as exc:
            raise _conflict(exc) from None
        except (RequestError, NotFoundError) as exc:
            raise request_error(exc) from None
        return {"index": index, "record": made.to_json()}

    @router.get(
        "/items/{ref:itemref}/corrections",
        summary="An item's corrections, oldest first, and whether it is retracted.",
        response_model=ItemCorrections,
        responses=_errors(400, 401, 403, 404),
    )
    async def of_item(
        ref: str,
        principal: Annotated[Principal, Depends(auth.require(_READ))],
    ) -> dict[str, Any]:
        """``{"item", "retracted", "total", "entries"}``."""
        try:
            key = await run_in_threadpool(item_key_of, ctx.reader, ref)
        except (RequestError, NotFoundError) as exc:
            raise request_error(exc) from None
        check(principal, _READ, key.feed, now=ctx.clock())
        found = await run_in_threadpool(corrections_of_key, ctx.reader, key)
        return {
            "item": str(key),
            "retracted": is_retracted(found),
            "total": len(found),
            "entries": [c.to_json() for c in found],
        }

    @router.get(
        "/corrections",
        summary="Every item's corrections: a keyset page, newest first by default.",
        response_model=CorrectionPage,
        responses=_errors(400, 401, 403),
    )
    async def listing(
        principal: Annotated[Principal, Depends(auth.require(_READ))],
        kind: Annotated[
            str | None,
            Query(description=f"Only this kind: {', '.join(CORRECTION_KINDS)}."),
        ] = None,
        feed: Annotated[str | None, Query(description="Only this feed's items.")] = None,
        order: Annotated[str, Query(description="``newest`` (default) or ``oldest``.")] = "newest",
        limit: Annotated[
            str | None, Query(description=f"Entries per page, 1 to {MAX_LIMIT}.")
        ] = None,
        cursor: Annotated[
            str | None, Query(description="The ``next`` of the previous page.")
        ] = None,
    ) -> dict[str, Any]:
        """``{"total", "entries", "next"}``; a scoped principal sees its group's feeds only."""
        try:
            feeds = listing_feeds(principal, _READ, feed, now=ctx.clock())
        except PermissionDenied as exc:
            raise denied(exc) from None
        try:
            if order not in ("newest", "oldest"):
                raise RequestError(f"order {order[:20]!r}: expected newest or oldest")
            page = await run_in_threadpool(
                lambda: list_corrections(
                    ctx.reader,
                    kind=kind,
                    feeds=feeds,
                    order="newest" if order == "newest" else "oldest",
                    limit=_limit(limit),
                    cursor=cursor,
                )
            )
        except (RequestError, CursorError) as exc:
            raise request_error(exc) from None
        return {
            "total": page.total,
            "entries": [c.to_json() for c in page.entries],
            "next": page.next,
        }

    return router
