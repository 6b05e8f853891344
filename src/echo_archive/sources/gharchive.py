"""GH Archive hour files: GitHub's public event stream, one gzip JSON Lines file per hour.

GH Archive (https://www.gharchive.org/) records the public GitHub timeline
and publishes each hour as ``https://data.gharchive.org/YYYY-MM-DD-H.json.gz``
(the hour without a leading zero, UTC): a gzip file of JSON Lines, one event
object per line, in the schema of the GitHub events API ("GitHub event
types"; files from 2015 on). Each event becomes an item with
:func:`echo_archive.sources.github.event_item`, the very function the
``github`` source uses for the events API, so an event read from an hour file
and the same event fetched from the API give equal items (same native id,
same fields) and deduplicate.

Reading is streaming and lenient, as the GH Archive issues advise
(igrigorik/gharchive.org #53: two events on one line; #169 and #271: an event
cut short and the next one glued to it; #190: NUL bytes; #241: a truncated
last line):

* the file is decompressed line by line (``gzip.open``), never whole; a
  file without the gzip magic is read as plain JSON Lines;
* a line that does not parse yields one
  :class:`~echo_archive.errors.ParseError` naming the file and the line (and
  column), and reading goes on with the next line;
* inside a broken line, reading resumes at the next ``{"id":"<digits>"``
  (an event's start: event ids are strings, nested ids are numbers), so an
  intact event glued to a broken one is kept;
* several events on one line are all read; NUL bytes and whitespace around a
  line are ignored; blank lines are skipped;
* a truncated or corrupt gzip stream yields a final ParseError for the line
  where it ends; everything read before is kept.

Hours from 2011-02-12 to 2014-12-31 were recorded from GitHub's retired
Timeline API, in another schema (GH Archive README, "Schema"): no event
``id``, ``actor`` a login string (details in ``actor_attributes``),
``repository`` (``owner``, ``name``) instead of ``repo``, a push's commits
as ``payload.shas`` (``[sha, email, message, name, distinct]``), and a
``url`` naming the page the event is about. :func:`timeline_to_event`
turns such an event into the events API shape before
:func:`~echo_archive.sources.github.event_item` reads it; its native id is
``timeline:<sha256>`` of the event's sorted, compact JSON (the event has no
id of its own, and the same event always gives the same digest), its url
the timeline ``url``, and ``extra["schema"]`` is ``"timeline"``.

This module does no network I/O: downloading hour files is the engine's job.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from echo_archive.errors import ParseError
from echo_archive.jsondecode import iter_json_values
from echo_archive.model import Item
from echo_archive.sources.github import event_item

__all__ = ["items_from_hour", "iter_events", "recorded_at_from_name", "timeline_to_event"]

_GZIP_MAGIC: Final = b"\x1f\x8b"
_LINE_JUNK: Final = b" \t\r\n\x00"
# Where an event object starts: ``{"id":"2489368070"`` (nested objects carry numeric ids).
_EVENT_START_RE: Final = re.compile(r'\{\s*"id"\s*:\s*"\d+"')
_HOUR_NAME_RE: Final = re.compile(r"^(\d{4})-(\d{2})-(\d{2})-(\d{1,2})\.json(?:\.gz)?$")

StrPath = str | os.PathLike[str]


def recorded_at_from_name(path: StrPath) -> str | None:
    """Return the start of the hour an hour file covers, from its name.

    GH Archive names each file after the UTC hour it records
    (``2015-01-01-0.json.gz`` holds the events of 00:00-00:59 UTC on
    1 January 2015; the hour has no leading zero, one is accepted too).

    Args:
        path: the file's path; only its name is read.

    Returns:
        ``"2015-01-01T00:00:00.000000Z"`` (RFC 3339 UTC, the format of
        :attr:`~echo_archive.model.Exchange.recorded_at`), or None when the
        name is not an hour file's name or not a real date and hour.
    """
    match = _HOUR_NAME_RE.match(Path(path).name)
    if match is None:
        return None
    year, month, day, hour = (int(part) for part in match.groups())
    try:
        moment = datetime(year, month, day, hour, tzinfo=UTC)
    except ValueError:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iter_events(path: StrPath) -> Iterator[tuple[int, dict[str, Any] | ParseError]]:
    """Stream the events of an hour file, leniently (see the module docstring).

    Args:
        path: a GH Archive hour file (gzip JSON Lines; plain JSON Lines too).

    Yields:
        ``(line number, event)`` for each JSON object read (1-based physical
        line numbers of the decompressed text; two events on one line share
        it), and ``(line number, ParseError)`` for each part that could not be
        read. The error's ``url`` is the path and its ``position``
        ``"line L column C"`` (``"line L byte B"`` for bad UTF-8).

    Raises:
        OSError: the file cannot be opened.
    """
    where = os.fspath(path)
    stream = _open(where)
    with stream:
        number = 0
        try:
            for number, raw in enumerate(stream, 1):
                yield from _read_line(raw, number, where)
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            yield (
                number + 1,
                ParseError(
                    f"gzip stream truncated or corrupt after line {number}: {exc}",
                    where,
                    f"line {number + 1}",
                ),
            )


def _open(where: str) -> io.BufferedIOBase:
    """Open a file for reading bytes, decompressing it when it starts with the gzip magic."""
    with open(where, "rb") as probe:
        gzipped = probe.read(2) == _GZIP_MAGIC
    if gzipped:
        return gzip.open(where, "rb")
    return open(where, "rb")


def _read_line(
    raw: bytes, number: int, where: str
) -> Iterator[tuple[int, dict[str, Any] | ParseError]]:
    """Yield the events (and errors) of one physical line."""
    data = raw.strip(_LINE_JUNK)
    if not data:
        return
    lead = len(raw) - len(raw.lstrip(_LINE_JUNK))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        yield (
            number,
            ParseError(
                f"line is not UTF-8: {exc.reason}",
                where,
                f"line {number} byte {lead + exc.start + 1}",
            ),
        )
        return
    for value in iter_json_values(text, where, line=number, lead=lead, resume=_EVENT_START_RE):
        if isinstance(value, ParseError | dict):
            yield number, value
        else:
            yield (
                number,
                ParseError(
                    f"line holds a JSON {type(value).__name__}, not an event object",
                    where,
                    f"line {number}",
                ),
            )


def items_from_hour(path: StrPath, feed_name: str) -> Iterator[Item | ParseError]:
    """Stream the items of an hour file.

    Every event goes through :func:`echo_archive.sources.github.event_item`
    (source ``github``), so items match those of the events API.

    Args:
        path: a GH Archive hour file.
        feed_name: the feed the items are made for.

    Yields:
        An :class:`~echo_archive.model.Item` per usable event, in file order,
        and a :class:`~echo_archive.errors.ParseError` for each broken line
        (from :func:`iter_events`) or unusable event (no ``id``, ``type`` or
        ``actor``; position ``"line L"``). Reading never stops at an error.

    Raises:
        OSError: the file cannot be opened.
    """
    where = os.fspath(path)
    for number, event in iter_events(path):
        if isinstance(event, ParseError):
            yield event
            continue
        modern = timeline_to_event(event)
        try:
            item = event_item(modern or event, feed_name, url=where, position=f"line {number}")
        except ParseError as exc:
            yield exc
            continue
        if modern is not None:
            page = event.get("url")
            extra = {**item.extra, "schema": "timeline"}
            if isinstance(page, str) and page.startswith(("https://", "http://")):
                item = replace(item, url=page, extra=extra)
            else:
                item = replace(item, extra=extra)
        yield item


def timeline_to_event(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """The events API form of a 2011-2014 Timeline API event, or None for any other event.

    An event is a timeline event when it has no ``id`` and names its
    repository as ``repository`` or its actor as a string (see the module
    docstring for the mapping).

    Args:
        event: one decoded event object of an hour file.

    Returns:
        A new event object with ``id`` (``timeline:<sha256 hex>``),
        ``actor`` (``{"login": ...}``), ``repo`` (``{"name": "owner/name"}``)
        and, for a push, ``payload.commits``; or None when ``event`` is not a
        timeline event (it is then read as it is).
    """
    if "id" in event or not ("repository" in event or isinstance(event.get("actor"), str)):
        return None
    digest = hashlib.sha256(
        json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
            "utf-8", "surrogatepass"
        )
    ).hexdigest()
    attributes = event.get("actor_attributes")
    login = event.get("actor")
    if not isinstance(login, str) and isinstance(attributes, Mapping):
        login = attributes.get("login")
    modern: dict[str, Any] = {
        key: value for key, value in event.items() if key not in ("actor", "repository")
    }
    modern["id"] = f"timeline:{digest}"
    modern["actor"] = {"login": login if isinstance(login, str) else ""}
    repository = event.get("repository")
    if isinstance(repository, Mapping):
        owner, name = repository.get("owner"), repository.get("name")
        if isinstance(owner, str) and isinstance(name, str):
            modern["repo"] = {"name": f"{owner}/{name}", "id": repository.get("id")}
    payload = event.get("payload")
    if isinstance(payload, Mapping) and isinstance(payload.get("shas"), list):
        commits = []
        for sha in payload["shas"]:
            if isinstance(sha, list) and len(sha) >= 4:
                commits.append(
                    {"sha": sha[0], "message": sha[2], "author": {"email": sha[1], "name": sha[3]}}
                )
        modern["payload"] = {**payload, "commits": commits}
    return modern
