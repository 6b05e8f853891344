"""The C2SP tlog-tiles read paths of the log (c2sp.org/tlog-tiles), at the log's root.

Any tlog-tiles client, witness or mirror reads and checks ECHO's log
through these, as it reads a Tessera or Sunlight log:

* ``GET /checkpoint``: the latest checkpoint, a C2SP tlog-checkpoint signed
  note (origin line = the vault's origin, Ed25519 signature by the vault's
  key: verify it with the verifier key that ``echoctl init`` prints and
  ``echoctl checkpoint --json`` shows as ``vkey``), ``Content-Type:
  text/plain; charset=utf-8``, cached a few seconds at most (tlog-tiles,
  "Checkpoints"). Route group ``checkpoint``.
* ``GET /tile/<L>/<N>[.p/<W>]``: a Merkle tree tile, ``application/octet-stream``:
  the ``W`` (full: 256) consecutive 32-byte hashes ``MTH(D[(N*256+i) *
  256**L : (N*256+i+1) * 256**L])`` (tlog-tiles, "Merkle Tree"). ECHO stores
  the node hashes of every level of its tree (:mod:`echo_archive.vault.log`);
  tile level ``L`` is its tree level ``8*L``. Route group ``tiles``.
* ``GET /tile/entries/<N>[.p/<W>]``: an entry bundle, ``application/octet-stream``:
  entries ``N*256 .. N*256+W-1``, each a big-endian uint16 length then the
  entry's bytes (tlog-tiles, "Log entries"). The bytes are the entry as
  stored: its RFC 8785 canonical JSON, exactly what the leaf hash
  ``SHA-256(0x00 || entry)`` (RFC 9162 §2.1.1) is computed over, so each
  hashes to the matching hash of the level-0 tile. Bundles are sent
  ``Content-Encoding: gzip`` to a client whose ``Accept-Encoding`` takes it
  (they "SHOULD be compressed at the HTTP layer"; ``Vary: Accept-Encoding``).
  Route group ``tiles``.

**Paths** (tlog-tiles, "Merkle Tree"): ``<L>`` is decimal 0 to 63 without
leading zeros; ``<N>`` is zero-padded 3-digit path elements, every one but
the last prefixed ``x`` (1234067 is ``x001/x234/067``), in the one
canonical form (no leading ``x000`` element; as Go's ``sumdb/tlog``
``ParseTilePath``, a path must be the encoding of the tile it names);
``<W>`` is decimal 1 to 255 without leading zeros. Anything else is **400**
naming what is wrong.

**Which tiles exist**: those of the tree of the *latest checkpoint* (a
client may only ask for what a checkpoint it verified needs, tlog-tiles,
"Partial Tiles"). A full tile is served once the checkpointed tree covers it;
a partial tile ``.p/W`` whenever its ``W`` hashes (entries) are in that tree,
also after the full tile exists (the content of ``N.p/W`` never changes; the
spec lets a log keep serving it). Beyond the tree: **404**. ECHO never prunes
(its minimum index is 0, tlog-tiles "Pruning").

**Caching**: full tiles and bundles are immutable (``max-age=31536000,
immutable``); partial ones are short-lived (``max-age=60``), the checkpoint
``max-age=5``. They are ``public`` only when ``[api] public`` opens the
route group; otherwise ``private``, so a shared cache never hands a
credentialed answer to another client (RFC 9111 §3.5).

**Entries over 65,535 bytes.** A uint16 length cannot say more, and the spec
has no other encoding in the bundle ("TODO: check if current logs need
bigger leaves"). ECHO's vault sets no size limit on an entry, so one may in
principle be larger (a capture whose kept headers are huge). A bundle
holding such an entry is then refused with **501** ``{"code":
"entry_too_large", "message", "index", "size"}`` instead of serving bytes
that do not hash to the level-0 tile: tiles, checkpoints and proofs are not
affected, and the entry is read at ``GET /v1/entries/{index}``.
"""

# No ``from __future__ import annotations``: FastAPI reads the routes' ``Annotated``
# dependencies at runtime.

import gzip
import re
import struct
from dataclasses import dataclass
from typing import Annotated, Final

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from echo_archive.api.deps import ApiContext, Auth, request_error
from echo_archive.api.roles import Principal
from echo_archive.errors import EchoError, LogError, NotFoundError, RequestError
from echo_archive.services.proofs import latest_checkpoint
from echo_archive.vault.log import TILE_WIDTH
from echo_archive.vault.vault import Vault

__all__ = [
    "IMMUTABLE",
    "MAX_ENTRY_SIZE",
    "MAX_LEVEL",
    "TILE_HEIGHT",
    "EntryTooLarge",
    "TilePath",
    "accepts_gzip",
    "build",
    "checkpoint_response",
    "entry_bundle",
    "format_index",
    "parse_tile_path",
    "tile_data",
    "tile_width",
]

TILE_HEIGHT: Final = 8
"""Levels of the tree one tile spans: 256 = 2**8 hashes (tlog-tiles, "Merkle Tree")."""

MAX_LEVEL: Final = 63
"""The highest tile level a path may name (tlog-tiles, "Merkle Tree")."""

MAX_ENTRY_SIZE: Final = 0xFFFF
"""The most bytes an entry of a bundle can have: its length is a big-endian uint16."""

MAX_INDEX_ELEMENTS: Final = 7
"""Path elements of ``<N>`` at most: 7 groups of 3 digits hold any uint64 (20 digits)."""

IMMUTABLE: Final = "max-age=31536000, immutable"
"""``Cache-Control`` of a full tile or bundle (RFC 8246), after ``public``/``private``."""

PARTIAL: Final = "max-age=60"
"""``Cache-Control`` of a partial tile or bundle: short-lived (it may be dropped later)."""

CHECKPOINT: Final = "max-age=5"
"""``Cache-Control`` of the checkpoint: "no caching beyond a few seconds" (tlog-tiles)."""

OCTETS: Final = "application/octet-stream"

_LEVEL = re.compile(r"0|[1-9][0-9]?", re.ASCII)
_WIDTH = re.compile(r"[1-9][0-9]{0,2}", re.ASCII)
_GROUP = re.compile(r"[0-9]{3}", re.ASCII)
_MAX_PATH = 128


@dataclass(frozen=True, slots=True)
class TilePath:
    """A parsed tile or entry-bundle path.

    Attributes:
        level: the tile level 0..63, or None for an entry bundle.
        index: the tile index ``N`` (a non-negative integer).
        width: ``W`` of a partial tile (1..255), or None for a full one (256).
    """

    level: int | None
    index: int
    width: int | None

    @property
    def count(self) -> int:
        """How many hashes (entries) the tile holds: ``width``, or 256 when full."""
        return TILE_WIDTH if self.width is None else self.width

    def path(self) -> str:
        """The canonical path after ``/tile/`` (``0/x001/234.p/5``, ``entries/000``)."""
        head = "entries" if self.level is None else str(self.level)
        tail = "" if self.width is None else f".p/{self.width}"
        return f"{head}/{format_index(self.index)}{tail}"


class EntryTooLarge(EchoError):
    """An entry of a bundle is longer than :data:`MAX_ENTRY_SIZE` bytes (no uint16 length).

    Attributes:
        index: the entry's index.
        size: its length in bytes.
    """

    def __init__(self, index: int, size: int) -> None:
        super().__init__(
            f"entry {index} is {size} bytes, more than the {MAX_ENTRY_SIZE} a tlog-tiles "
            "entry bundle's uint16 length can say (c2sp.org/tlog-tiles, 'Log entries'); "
            f"read it at /v1/entries/{index} (its leaf hash is in the level-0 tile)"
        )
        self.index = index
        self.size = size


def format_index(index: int) -> str:
    """The tlog-tiles path encoding of a tile index (``1234067`` -> ``x001/x234/067``).

    Zero-padded 3-digit elements, all but the last prefixed ``x``, as few as
    the number needs (tlog-tiles, "Merkle Tree").

    Raises:
        ValueError: ``index`` is negative.
    """
    if index < 0:
        raise ValueError(f"tile index {index} is negative")
    text = f"{index % 1000:03d}"
    index //= 1000
    while index:
        text = f"x{index % 1000:03d}/{text}"
        index //= 1000
    return text


def parse_tile_path(path: str) -> TilePath:
    """Parse the part of a tile path after ``/tile/`` strictly (tlog-tiles, "Merkle Tree").

    Args:
        path: ``<L>/<N>[.p/<W>]`` or ``entries/<N>[.p/<W>]``.

    Returns:
        The tile it names.

    Raises:
        RequestError: the path is not the canonical encoding of a tile: the
            message names the part (level, index element, width) that is wrong.
    """
    if len(path) > _MAX_PATH:
        raise RequestError(f"tile path longer than {_MAX_PATH} characters")
    parts = path.split("/")
    if len(parts) < 2:
        raise RequestError(f"tile path {path!r}: expected <L>/<N>[.p/<W>] or entries/<N>[.p/<W>]")
    head, rest = parts[0], parts[1:]
    level: int | None
    if head == "entries":
        level = None
    elif _LEVEL.fullmatch(head) and int(head) <= MAX_LEVEL:
        level = int(head)
    else:
        raise RequestError(
            f"tile level {head!r}: must be 'entries' or a decimal 0 to {MAX_LEVEL} "
            "without leading zeros"
        )
    width: int | None = None
    if len(rest) >= 2 and rest[-2].endswith(".p"):
        w = rest[-1]
        if not _WIDTH.fullmatch(w) or int(w) >= TILE_WIDTH:
            raise RequestError(
                f"partial tile width {w!r}: must be a decimal 1 to {TILE_WIDTH - 1} "
                "without leading zeros"
            )
        width = int(w)
        rest = [*rest[:-2], rest[-2][: -len(".p")]]
    if len(rest) > MAX_INDEX_ELEMENTS:
        raise RequestError(
            f"tile index of {len(rest)} path elements: at most {MAX_INDEX_ELEMENTS} (a uint64)"
        )
    index = 0
    for number, element in enumerate(rest, 1):
        last = number == len(rest)
        digits = element if last else element.removeprefix("x")
        if (not last and not element.startswith("x")) or not _GROUP.fullmatch(digits):
            want = "3 digits" if last else "'x' and 3 digits"
            raise RequestError(f"tile index element {element!r}: expected {want}")
        index = index * 1000 + int(digits)
    found = TilePath(level, index, width)
    if found.path() != path:
        raise RequestError(
            f"tile path {path!r} is not canonical: the tile is at /tile/{found.path()}"
        )
    return found


def tile_width(size: int, level: int, index: int) -> int:
    """How many hashes tile ``index`` of tile level ``level`` holds in the tree of ``size``.

    The tree of ``size`` leaves has ``size // 256**level`` hashes at tile
    level ``level`` (tlog-tiles, "Partial Tiles": the partial tile has
    ``floor(s / 256**l) mod 256``).

    Returns:
        0 (no such tile), 1..255 (partial), or 256 (full).
    """
    count = size >> (TILE_HEIGHT * level)
    return max(0, min(TILE_WIDTH, count - index * TILE_WIDTH))


def _check_exists(tile: TilePath, have: int, size: int) -> None:
    """Raise NotFoundError when the tree of ``size`` does not hold ``tile`` (``have`` hashes)."""
    if have < tile.count:
        what = "entry bundle" if tile.level is None else f"tile (level {tile.level})"
        raise NotFoundError(
            f"{what} {tile.index}{'' if tile.width is None else f'.p/{tile.width}'} is "
            f"beyond the tree of the latest checkpoint (size {size})"
        )


def _tree_size(vault: Vault) -> int:
    """The latest checkpoint's tree size (NotFoundError when none is stored: nothing to serve)."""
    try:
        return latest_checkpoint(vault).size
    except LogError as exc:
        raise NotFoundError(str(exc)) from None


def tile_data(vault: Vault, tile: TilePath) -> bytes:
    """The bytes of a Merkle tree tile (``tile.level`` not None) of the latest checkpoint's tree.

    Args:
        vault: an open vault (a reader is enough).
        tile: from :func:`parse_tile_path`.

    Returns:
        ``tile.count`` hashes of 32 bytes, concatenated.

    Raises:
        NotFoundError: no checkpoint is stored, or its tree does not hold the tile.
        LogError: the stored tiles lack hashes the tree has (a damaged vault).
    """
    assert tile.level is not None
    size = _tree_size(vault)
    _check_exists(tile, tile_width(size, tile.level, tile.index), size)
    return vault.tile_hashes(TILE_HEIGHT * tile.level, tile.index, tile.count)


def entry_bundle(vault: Vault, tile: TilePath) -> bytes:
    """The bytes of an entry bundle (``tile.level`` None) of the latest checkpoint's tree.

    Args:
        vault: an open vault (a reader is enough).
        tile: from :func:`parse_tile_path`.

    Returns:
        Each entry of ``tile.index*256 ..`` (``tile.count`` of them) as a
        big-endian uint16 length and its stored bytes (tlog-tiles, "Log entries").

    Raises:
        NotFoundError: no checkpoint is stored, or its tree does not hold the bundle.
        EntryTooLarge: an entry is longer than :data:`MAX_ENTRY_SIZE`.
        LogError: an entry of the tree is not stored (a damaged vault).
    """
    assert tile.level is None
    size = _tree_size(vault)
    _check_exists(tile, tile_width(size, 0, tile.index), size)
    first = tile.index * TILE_WIDTH
    out = bytearray()
    for offset, raw in enumerate(vault.entry_bytes(first, first + tile.count)):
        if len(raw) > MAX_ENTRY_SIZE:
            raise EntryTooLarge(first + offset, len(raw))
        out += struct.pack(">H", len(raw)) + raw
    return bytes(out)


def accepts_gzip(accept_encoding: str) -> bool:
    """True when an ``Accept-Encoding`` value (RFC 9110 §12.5.3) accepts ``gzip``.

    ``gzip`` (or ``x-gzip``, §8.4.1.3) or ``*`` with a non-zero ``q``; an
    explicit ``gzip;q=0`` refuses it. A malformed weight counts as refusal.
    """
    star = False
    for item in accept_encoding.lower().split(","):
        coding, _, params = item.strip().partition(";")
        q = 1.0
        name, _, value = params.strip().partition("=")
        if name.strip() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                q = 0.0
        if coding.strip() in ("gzip", "x-gzip"):
            return q > 0
        if coding.strip() == "*":
            star = q > 0
    return star


def _cache(open_to_all: bool, directive: str) -> str:
    """The ``Cache-Control`` value: ``public`` only on a route group open to all."""
    return f"{'public' if open_to_all else 'private'}, {directive}"


async def checkpoint_response(vault: Vault, open_to_all: bool) -> Response:
    """The latest checkpoint as served at ``/checkpoint`` and ``/v1/checkpoint``.

    The C2SP tlog-checkpoint signed note verbatim, ``text/plain;
    charset=utf-8``, ``Cache-Control`` :data:`CHECKPOINT` (tlog-tiles,
    "Checkpoints": mutable, no caching beyond a few seconds), ``public`` when
    ``open_to_all`` (its route group is open) else ``private``.

    Raises:
        HTTPException: 404 when the vault stores no checkpoint.
    """
    try:
        signed = await run_in_threadpool(latest_checkpoint, vault)
    except LogError as exc:
        raise request_error(NotFoundError(str(exc))) from None
    return Response(
        signed.note.encode("utf-8"),
        media_type="text/plain; charset=utf-8",
        headers={"Cache-Control": _cache(open_to_all, CHECKPOINT)},
    )


def build(ctx: ApiContext, auth: Auth) -> APIRouter:
    """The router of ``/checkpoint``, ``/tile/<L>/<N>[.p/<W>]`` and ``/tile/entries/<N>[.p/<W>]``.

    Permission ``proofs:read``; route groups ``checkpoint`` (``/checkpoint``)
    and ``tiles`` (the tiles), which ``[api] public`` may open to anyone.
    """
    router = APIRouter(prefix="", tags=["tiles"])
    read_checkpoint = auth.require("proofs:read", public="checkpoint")
    read_tiles = auth.require("proofs:read", public="tiles")
    checkpoint_open = read_checkpoint.open_to_all
    tiles_open = read_tiles.open_to_all

    @router.get(
        "/checkpoint",
        summary="The latest checkpoint (C2SP tlog-checkpoint signed note), text/plain.",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "the signed note"}},
    )
    async def checkpoint(_: Annotated[Principal, Depends(read_checkpoint)]) -> Response:
        """The note verbatim: origin, tree size, base64 root hash, blank line, signature line."""
        return await checkpoint_response(ctx.reader, checkpoint_open)

    @router.get(
        "/tile/{path:path}",
        summary="A tlog-tiles Merkle tree tile or entry bundle (application/octet-stream).",
        response_class=Response,
        responses={
            200: {"content": {OCTETS: {}}, "description": "the tile's hashes or entries"},
            400: {"description": "not the canonical path of a tile"},
            404: {"description": "beyond the tree of the latest checkpoint"},
            501: {"description": "the bundle holds an entry over 65,535 bytes"},
        },
    )
    async def tile(
        request: Request, path: str, _: Annotated[Principal, Depends(read_tiles)]
    ) -> Response:
        """``<L>/<N>[.p/<W>]``: W (or 256) hashes; ``entries/<N>[.p/<W>]``: the entries."""
        try:
            found = parse_tile_path(path)
            reader = tile_data if found.level is not None else entry_bundle
            data = await run_in_threadpool(reader, ctx.reader, found)
        except (RequestError, NotFoundError) as exc:
            raise request_error(exc) from None
        except EntryTooLarge as exc:
            raise HTTPException(
                status_code=501,
                detail={
                    "code": "entry_too_large",
                    "message": str(exc),
                    "index": exc.index,
                    "size": exc.size,
                },
            ) from None
        directive = IMMUTABLE if found.width is None else PARTIAL
        headers = {"Cache-Control": _cache(tiles_open, directive)}
        if found.level is None:
            headers["Vary"] = "Accept-Encoding"
            if accepts_gzip(request.headers.get("accept-encoding", "")):
                data = gzip.compress(data, compresslevel=6, mtime=0)
                headers["Content-Encoding"] = "gzip"
        return Response(data, media_type=OCTETS, headers=headers)

    return router
