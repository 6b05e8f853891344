"""The verification routes under ``/v1``: checkpoints, Merkle proofs, evidence bundles.

Every answer here is checkable offline with the log's verifier key (DESIGN.md
invariant 6), by ``echoctl verify-proof`` or any RFC 9162 / C2SP client:

* ``GET /v1/checkpoint``: the latest checkpoint, the C2SP tlog-checkpoint
  signed note verbatim, ``text/plain; charset=utf-8``, ``Cache-Control:
  max-age=5`` (:func:`~echo_archive.api.routes.tiles.checkpoint_response`). Route group
  ``checkpoint``; ``proofs:read``.
* ``GET /v1/checkpoints?cursor=&limit=``: every checkpoint the vault keeps
  (one per signed tree size), by size ascending, keyset-paged:
  ``{"total", "entries", "next"}``; each entry ``{"origin", "size",
  "root_hash" (base64), "root_hash_hex", "signed_at" (RFC 3339), "note",
  "vkey"}``; ``next`` is the cursor of the next page or null; ``limit`` 1 to
  1000 (default 100). Route group ``checkpoint``; ``proofs:read``.
* ``GET /v1/proofs/inclusion?index=&size=``: the RFC 9162 §2.1.3 inclusion
  proof of entry ``index`` in the tree of ``size`` entries (default: the
  latest checkpoint's): ``{"index", "size", "leaf_hash", "root_hash",
  "proof", "checkpoint", "tlog_proof"}``, hashes in standard base64
  (RFC 4648 §4), ``proof`` leaf first; ``checkpoint`` is the checkpoint of
  that size (as in the listing) and ``tlog_proof`` the same proof as a C2SP
  tlog-proof text (the one an evidence bundle carries), both null when no
  checkpoint was signed at exactly that size. Route group ``proofs``;
  ``proofs:read``.
* ``GET /v1/proofs/consistency?old=&new=``: the RFC 9162 §2.1.4 consistency
  proof between tree sizes ``old`` (at least 1) and ``new`` (default: the
  latest checkpoint's): ``{"old_size", "new_size", "old_root", "new_root",
  "proof", "old_checkpoint", "new_checkpoint"}`` (checkpoints null when none
  was signed at that size). Route group ``proofs``; ``proofs:read``.
* ``GET /v1/evidence/{ref}?size=``: the evidence bundle (``echo-evidence/v1``,
  :mod:`echo_archive.vault.evidence`) of an entry index or a blob digest
  (``sha256:<hex>``: the earliest entry naming it), against the checkpoint of
  ``size`` (default: the latest); the body is the bundle file, byte for
  byte what ``echoctl prove`` writes, so saving it gives a file ``echoctl
  verify-proof`` checks. It holds the entry's blobs (item content), so it
  needs ``items:read`` on the entry's feed (a principal scoped to a feed
  group gets only its feeds' entries, and no entry without a feed); never
  public.

Numbers (``index``, ``size``, ``old``, ``new``, ``limit``) are ASCII decimal
without a sign; a malformed, repeated, negative or out-of-range one is 400
``{"code": "request", "message"}`` naming the parameter. Sizes beyond the
latest checkpoint are refused: only acknowledged entries (covered by a
signed checkpoint, DESIGN.md invariant 2) are proved.
"""

# No ``from __future__ import annotations``: FastAPI reads the routes' ``Annotated``
# dependencies at runtime.

import re
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from echo_archive.api.deps import ApiContext, Auth, denied, request_error
from echo_archive.api.roles import Permission, Principal, authorize
from echo_archive.api.routes.tiles import checkpoint_response
from echo_archive.errors import LogError, NotFoundError, PermissionDenied, RequestError
from echo_archive.services.paging import (
    MAX_LIMIT,
    check_limit,
    decode_cursor,
    encode_cursor,
    fingerprint,
)
from echo_archive.services.proofs import (
    checkpoint_json,
    consistency,
    evidence_bundle,
    inclusion,
    latest_checkpoint,
)
from echo_archive.vault.checkpoint import MAX_TREE_SIZE
from echo_archive.vault.tlogproof import TlogProof, format_tlog_proof
from echo_archive.vault.vault import SignedCheckpoint, Vault

__all__ = [
    "DEFAULT_LIMIT",
    "build",
    "checkpoints_page",
    "consistency_json",
    "evidence_for",
    "inclusion_json",
    "parse_count",
]

DEFAULT_LIMIT: Final = 100
"""Checkpoints per page of ``/v1/checkpoints`` when ``limit`` is not given."""

ITEMS_READ: Final = Permission("items", "read")

_DECIMAL = re.compile(r"[0-9]{1,20}", re.ASCII)
_LISTING = fingerprint({"listing": "checkpoints", "order": "size"})


def parse_count(text: str | None, name: str, *, minimum: int = 0) -> int | None:
    """A query parameter as a non-negative integer (None when absent).

    Args:
        text: the parameter's value as sent, or None.
        name: the parameter's name, for the message.
        minimum: the smallest value accepted.

    Returns:
        The value, or None when ``text`` is None.

    Raises:
        RequestError: not ASCII decimal digits (no sign, no spaces), below
            ``minimum``, or above 2^63 - 1 (a tree size is a uint64, C2SP
            tlog-checkpoint; SQLite holds 63 bits); the message names ``name``.
    """
    if text is None:
        return None
    if not _DECIMAL.fullmatch(text):
        raise RequestError(f"{name} {text[:40]!r}: expected a non-negative decimal integer")
    value = int(text)
    limit = min(MAX_TREE_SIZE, 2**63 - 1)
    if value > limit:
        raise RequestError(f"{name} {value}: larger than {limit}")
    if value < minimum:
        raise RequestError(f"{name} {value}: must be at least {minimum}")
    return value


def _one(request: Request, name: str) -> str | None:
    """The single value of query parameter ``name``, or None (RequestError when repeated)."""
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise RequestError(f"{name}: given {len(values)} times; give it once")
    return values[0] if values else None


def _required(value: int | None, name: str) -> int:
    """``value``, or RequestError naming ``name`` when the parameter was not given."""
    if value is None:
        raise RequestError(f"{name}: required (a non-negative decimal integer)")
    return value


def _checkpoint_at(vault: Vault, size: int) -> SignedCheckpoint | None:
    """The checkpoint signed at exactly ``size``, or None."""
    try:
        return vault.checkpoint_at(size)
    except LogError:
        return None


def _tree(vault: Vault, size: int | None, name: str) -> tuple[int, SignedCheckpoint]:
    """``(size, latest checkpoint)``; RequestError naming ``name`` beyond the latest checkpoint."""
    latest = latest_checkpoint(vault)
    if size is None:
        return latest.size, latest
    if size > latest.size:
        raise RequestError(
            f"{name} {size}: beyond the tree of the latest checkpoint (size {latest.size})"
        )
    return size, latest


def inclusion_json(vault: Vault, index: int, size: int | None) -> dict[str, Any]:
    """The answer of ``/v1/proofs/inclusion`` (see the module docstring for its shape).

    Args:
        vault: an open vault (a reader is enough).
        index: the entry index (0-based).
        size: the tree size (default: the latest checkpoint's).

    Raises:
        RequestError: ``size`` is 0 or beyond the latest checkpoint, or
            ``index`` is not below it (naming the parameter).
    """
    n, latest = _tree(vault, size, "size")
    if n == 0:
        raise RequestError("size 0: the empty tree includes no entry")
    if index >= n:
        raise RequestError(f"index {index}: not below the tree size {n}")
    proof = inclusion(vault, index, n)
    signed = latest if latest.size == n else _checkpoint_at(vault, n)
    doc = proof.to_json()
    vkey = vault.verifier.vkey
    doc["checkpoint"] = None if signed is None else checkpoint_json(signed, vkey)
    doc["tlog_proof"] = (
        None
        if signed is None
        else format_tlog_proof(TlogProof(index=index, proof=proof.proof, checkpoint=signed.note))
    )
    return doc


def consistency_json(vault: Vault, old: int, new: int | None) -> dict[str, Any]:
    """The answer of ``/v1/proofs/consistency`` (see the module docstring for its shape).

    Args:
        vault: an open vault (a reader is enough).
        old: the earlier tree size (at least 1: a proof from the empty tree is
            refused, as RFC 9162 §2.1.4.2 verifiers do).
        new: the later tree size (default: the latest checkpoint's).

    Raises:
        RequestError: ``new`` beyond the latest checkpoint, or ``old`` above ``new``.
    """
    n, latest = _tree(vault, new, "new")
    if old > n:
        raise RequestError(f"old {old}: larger than new ({n})")
    proof = consistency(vault, old, n)
    doc = proof.to_json()
    vkey = vault.verifier.vkey
    for key, size in (("old_checkpoint", old), ("new_checkpoint", n)):
        signed = latest if latest.size == size else _checkpoint_at(vault, size)
        doc[key] = None if signed is None else checkpoint_json(signed, vkey)
    return doc


def checkpoints_page(vault: Vault, cursor: str | None, limit: int) -> dict[str, Any]:
    """A page of ``/v1/checkpoints``: ``{"total", "entries", "next"}``, by size ascending.

    Args:
        vault: an open vault (a reader is enough).
        cursor: the ``next`` of the previous page, or None for the first.
        limit: checkpoints per page, 1 to 1000.

    Raises:
        RequestError: ``limit`` out of range.
        CursorError: a cursor this listing did not issue.
    """
    check_limit(limit)
    after = -1 if cursor is None else decode_cursor(cursor, _LISTING)
    found = vault.checkpoints_after(after, limit + 1)
    more = len(found) > limit
    page = found[:limit]
    vkey = vault.verifier.vkey
    return {
        "total": vault.checkpoint_count(),
        "entries": [checkpoint_json(s, vkey) for s in page],
        "next": encode_cursor(page[-1].size, _LISTING) if more and page else None,
    }


def evidence_for(
    vault: Vault, principal: Principal, ref: str, size: int | None, now: float
) -> bytes:
    """The evidence bundle of ``ref`` for ``principal``, after checking ``items:read`` on its feed.

    Args:
        vault: an open vault (a reader is enough).
        principal: who asks.
        ref: an entry index or a blob digest (``sha256:<hex>``).
        size: the checkpoint's tree size (default: the latest).
        now: POSIX seconds (for a break-glass elevation).

    Returns:
        The bundle's bytes (:func:`echo_archive.services.proofs.evidence_bundle`).

    Raises:
        NotFoundError: nothing matches ``ref``, or no checkpoint of ``size``.
        RequestError: ``ref`` is too long, or the entry is not covered by that checkpoint.
        PermissionDenied: the principal may not read the entry's feed.
    """
    if len(ref) > 80:
        raise RequestError("ref: longer than 80 characters (an entry index or sha256:<hex>)")
    try:
        index = vault.resolve(ref)
    except LogError as exc:
        raise NotFoundError(str(exc)) from None
    latest = latest_checkpoint(vault)
    if index >= latest.size:
        raise NotFoundError(f"entry {index} is not covered by a checkpoint yet")
    if size is not None:
        if _checkpoint_at(vault, size) is None:
            raise NotFoundError(f"size {size}: no checkpoint was signed at that tree size")
        if index >= size:
            raise RequestError(f"size {size}: the entry {index} is not in that tree")
    feed = vault.entry(index).meta.get("feed")
    feed = feed if isinstance(feed, str) else None
    if principal.feeds is not None and feed is None:
        raise PermissionDenied(
            f"{ITEMS_READ}: {principal.kind} {principal.name!r} is scoped to feed group "
            f"{principal.group!r}; entry {index} belongs to no feed",
            str(ITEMS_READ),
            None,
        )
    authorize(principal, ITEMS_READ, feed, now=now)
    return evidence_bundle(vault, index, size).data


def build(ctx: ApiContext, auth: Auth) -> APIRouter:
    """The router of the ``/v1`` verification routes (see the module docstring)."""
    router = APIRouter(prefix="/v1", tags=["verification"])
    read_checkpoint = auth.require("proofs:read", public="checkpoint")
    read_proofs = auth.require("proofs:read", public="proofs")
    read_items = auth.require("items:read")

    @router.get(
        "/checkpoint",
        summary="The latest checkpoint (C2SP tlog-checkpoint signed note), text/plain.",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "the signed note"}},
    )
    async def checkpoint(_: Annotated[Principal, Depends(read_checkpoint)]) -> Response:
        """The note verbatim: origin, tree size, base64 root hash, blank line, signature line."""
        return await checkpoint_response(ctx.reader, read_checkpoint.open_to_all)

    @router.get("/checkpoints", summary="Every checkpoint kept, by tree size (keyset pages).")
    async def checkpoints(
        request: Request,
        _: Annotated[Principal, Depends(read_checkpoint)],
        cursor: Annotated[str | None, Query(max_length=512, description="`next` of a page")] = None,
        limit: Annotated[
            str | None, Query(description=f"1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})")
        ] = None,
    ) -> dict[str, Any]:
        """``{"total", "entries", "next"}``; each entry as ``echoctl checkpoint --json``."""
        try:
            n = parse_count(_one(request, "limit"), "limit", minimum=1)
            token = _one(request, "cursor")
            return await run_in_threadpool(
                checkpoints_page, ctx.reader, token, DEFAULT_LIMIT if n is None else n
            )
        except RequestError as exc:
            raise request_error(exc) from None

    @router.get(
        "/proofs/inclusion",
        summary="RFC 9162 §2.1.3 inclusion proof, with the checkpoint it verifies against.",
        responses={400: {"description": "a bad or out-of-range parameter (named)"}},
    )
    async def proof_inclusion(
        request: Request,
        _: Annotated[Principal, Depends(read_proofs)],
        index: Annotated[str | None, Query(description="The entry index (0-based).")] = None,
        size: Annotated[
            str | None, Query(description="The tree size (default: the latest checkpoint's).")
        ] = None,
    ) -> dict[str, Any]:
        """``{"index", "size", "leaf_hash", "root_hash", "proof", "checkpoint", "tlog_proof"}``."""
        try:
            i = _required(parse_count(_one(request, "index"), "index"), "index")
            n = parse_count(_one(request, "size"), "size", minimum=1)
            return await run_in_threadpool(inclusion_json, ctx.reader, i, n)
        except RequestError as exc:
            raise request_error(exc) from None

    @router.get(
        "/proofs/consistency",
        summary="RFC 9162 §2.1.4 consistency proof between two tree sizes, with checkpoints.",
        responses={400: {"description": "a bad or out-of-range parameter (named)"}},
    )
    async def proof_consistency(
        request: Request,
        _: Annotated[Principal, Depends(read_proofs)],
        old: Annotated[str | None, Query(description="The earlier tree size (at least 1).")] = None,
        new: Annotated[
            str | None,
            Query(description="The later tree size (default: the latest checkpoint's)."),
        ] = None,
    ) -> dict[str, Any]:
        """``{"old_size", "new_size", "old_root", "new_root", "proof", "old_checkpoint", ...}``."""
        try:
            o = _required(parse_count(_one(request, "old"), "old", minimum=1), "old")
            n = parse_count(_one(request, "new"), "new", minimum=1)
            return await run_in_threadpool(consistency_json, ctx.reader, o, n)
        except RequestError as exc:
            raise request_error(exc) from None

    @router.get(
        "/evidence/{ref}",
        summary="The evidence bundle of an entry (echo-evidence/v1; `echoctl verify-proof`).",
        response_class=Response,
        responses={
            200: {"content": {"application/json": {}}, "description": "the bundle file"},
            403: {"description": "the entry's feed is outside the principal's scope"},
            404: {"description": "no such entry, or no checkpoint of that size"},
        },
    )
    async def evidence(
        request: Request,
        ref: str,
        principal: Annotated[Principal, Depends(read_items)],
        size: Annotated[
            str | None,
            Query(description="Prove against the checkpoint of this size (default: latest)."),
        ] = None,
    ) -> Response:
        """The bundle's bytes (indented JSON, sorted keys, a final newline)."""
        try:
            n = parse_count(_one(request, "size"), "size", minimum=1)
            data = await run_in_threadpool(evidence_for, ctx.reader, principal, ref, n, ctx.clock())
        except (RequestError, NotFoundError) as exc:
            raise request_error(exc) from None
        except PermissionDenied as exc:
            raise denied(exc) from None
        return Response(
            data,
            media_type="application/json",
            headers={"Cache-Control": "private, no-store"},
        )

    return router
