"""``echoctl captures`` and ``cat``: list captures; get a capture's archived bytes back.

Registered on the main app by :mod:`echo_archive.cli` (``register(app)``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Annotated, BinaryIO

import typer

from echo_archive.cli.common import (
    JsonOpt,
    VaultOpt,
    compact_table,
    open_vault,
    out,
    safe,
)
from echo_archive.cli.common import emit as _emit
from echo_archive.cli.common import errors as _errors
from echo_archive.cli.common import fail as _fail
from echo_archive.services.captures import CaptureQuery, list_captures, open_body, resolve_capture
from echo_archive.services.paging import MAX_LIMIT

__all__ = ["register"]

_SNIFF = 8192
_CHUNK = 1 << 20


def captures(
    ctx: typer.Context,
    feed: Annotated[str | None, typer.Option(help="Only HTTP captures of this feed.")] = None,
    source: Annotated[
        str | None, typer.Option(help="Only HTTP captures of this source kind.")
    ] = None,
    kind: Annotated[
        str | None, typer.Option(help="Only captures of this kind: http or file.")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="Only captures at or after this RFC 3339 time with an offset "
            "(fetched_at of an exchange, logged_at of a file)."
        ),
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Only captures before this RFC 3339 time.")
    ] = None,
    oldest: Annotated[
        bool, typer.Option("--oldest", help="Oldest first (default: newest first).")
    ] = False,
    limit: Annotated[
        int, typer.Option(min=1, max=MAX_LIMIT, help="At most this many captures (one page).")
    ] = 50,
    cursor: Annotated[
        str | None,
        typer.Option(help="Continue after the page that printed this cursor (same filters)."),
    ] = None,
    vault: VaultOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List captures, newest first: entry index, kind, time, status, size, URL or file name.

    The entry index is what `echoctl cat` takes. When more match, the last
    line gives the --cursor of the next page. --json prints
    {"entries": [...], "next": CURSOR or null}.
    """
    query = CaptureQuery(
        feed=feed,
        source=source,
        kind=kind,
        since=since,
        until=until,
        order="oldest" if oldest else "newest",
        limit=limit,
        cursor=cursor,
    )
    with _errors(), open_vault(ctx, vault) as v:
        page = list_captures(v, query)
    if as_json:
        _emit({"entries": [e.to_json() for e in page.entries], "next": page.next})
        return
    table = compact_table(f"{len(page.entries)} capture(s), {query.order} first")
    for header in ("entry", "kind", "at (UTC)", "status", "bytes", "feed", "url or file"):
        right = header in ("entry", "status", "bytes")
        table.add_column(
            header,
            justify="right" if right else "left",
            no_wrap=True,
            overflow="ellipsis",
            max_width=None if header != "feed" else 16,
        )
    for c in page.entries:
        table.add_row(
            str(c.index),
            c.kind,
            c.at[:16].replace("T", " "),
            str(c.status) if c.kind == "http" else "-",
            str(c.size),
            safe(c.feed) or "-",
            safe(c.url if c.kind == "http" else c.name),
        )
    out.print(table)
    if page.next is not None:
        out.print(f"more: --cursor {page.next}", markup=False)


def _looks_binary(head: bytes) -> bool:
    """True when bytes are not text a terminal shows as is: a NUL, or not UTF-8."""
    if b"\x00" in head:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start < len(head) - 4  # a character cut at the sniff's end is fine
    return False


def _write_out(stream: BinaryIO, target: Path, force: bool) -> int:
    """Copy ``stream`` to ``target`` through a temporary file; never overwrite unless ``force``.

    The bytes go to a temporary file in the target's directory, fsynced;
    then it is linked to ``target`` (fails if it exists: no race) or, with
    ``force``, renamed over it. On any error the temporary file is removed
    and ``target`` is untouched.

    Returns:
        The bytes written.

    Raises:
        FileExistsError: ``target`` exists and not ``force``.
        OSError: a write failed.
        BlobCorruptError: the stored bytes are damaged (found while reading).
    """
    directory = target.parent if str(target.parent) else Path()
    fd, tmp = tempfile.mkstemp(prefix=".echoctl-cat-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            shutil.copyfileobj(stream, f, _CHUNK)
            f.flush()
            os.fsync(f.fileno())
            written = f.tell()
        if force:
            os.replace(tmp, target)
        else:
            os.link(tmp, target)
            os.unlink(tmp)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return written


def cat(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="A capture's entry index (see echoctl captures).")],
    out_file: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Write the bytes to this file (never over one, unless --force)."
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="With --out: replace an existing file.")
    ] = False,
    vault: VaultOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a capture's archived bytes: a file added with `add`, or an HTTP body, exactly.

    The bytes are streamed from the blob store and checked against their
    SHA-256 digest while read (a damaged blob fails, exit 1). Without --out
    they go to stdout; binary bytes (a NUL, or not UTF-8) are refused on a
    terminal (exit 1: give --out or redirect). --out writes through a
    temporary file and refuses an existing file unless --force; the file is
    complete or absent. --json (with --out) prints {"index", "out", "size",
    "digest"}.
    """
    if as_json and out_file is None:
        _fail("--json needs --out FILE (the bytes cannot share stdout with JSON)", 2)
    with _errors(), open_vault(ctx, vault) as v:
        capture = resolve_capture(v, ref)
        with open_body(v, capture) as stream:
            if out_file is not None:
                if out_file.exists() and not force:
                    _fail(f"{out_file}: exists; give --force to replace it", 1)
                try:
                    written = _write_out(stream, out_file, force)
                except FileExistsError:
                    _fail(f"{out_file}: exists; give --force to replace it", 1)
                except OSError as exc:
                    _fail(f"{out_file}: {exc.strerror or exc}", 1)
            else:
                head = stream.read(_SNIFF)
                if sys.stdout.isatty() and _looks_binary(head):
                    _fail(
                        f"capture {capture.index}: binary (a NUL byte, or not UTF-8); "
                        "refusing to write it to a terminal: give --out FILE or redirect stdout",
                        1,
                    )
                sink = sys.stdout.buffer
                sink.write(head)
                shutil.copyfileobj(stream, sink, _CHUNK)
                sink.flush()
                return
    body = capture.body
    if as_json:
        _emit(
            {
                "index": capture.index,
                "out": str(out_file),
                "size": written,
                "digest": "" if body is None else body.digest_text,
            }
        )
    else:
        out.print(f"wrote {written} bytes of capture {capture.index} to {safe(out_file)}")


def register(app: typer.Typer) -> None:
    """Add ``captures`` and ``cat`` to ``app``."""
    app.command()(captures)
    app.command()(cat)
