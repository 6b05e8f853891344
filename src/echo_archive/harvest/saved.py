"""What a file on disk is when it is an API response body saved by hand.

Users keep what they downloaded: a FRED CSV download (``fredgraph.csv``, a
series CSV, an ALFRED vintage CSV), a Hacker News item or story list body
(``item/8863.json``, ``topstories.json``), a FRED ``series/observations``
body. :func:`recognize` tells such a file from its bytes (and its name) and
says which source reads it and how (the feed and the request to hand the
source's own ``parse``); :mod:`echo_archive.harvest.importer` archives the
file as one capture (``file:<name>``) and the items that parse gives, as it
does a saved feed document.

Rules (the first that applies wins):

* **FRED CSV**: the first line is a header whose first column is ``DATE``
  or ``observation_date`` (FRED's two header generations; see
  :func:`echo_archive.sources.fred.parse_csv`, which reads it, ALFRED vintage
  columns ``SERIES_YYYYMMDD`` included).
* **JSON**, decoded by :func:`echo_archive.jsondecode.decode_json`:

  - an object whose keys are all Hacker News item fields
    (https://github.com/HackerNews/API, "Items"), with an integer ``id`` and
    a ``type`` of ``story``, ``comment``, ``job``, ``poll`` or ``pollopt``:
    a Hacker News item body;
  - an array of item ids in a file named ``<list>stories.json`` (the API's
    list endpoints: ``topstories``, ``newstories``...): a story list body;
  - an object with an ``observations`` array (FRED
    ``fred/series/observations``, https://fred.stlouisfed.org/docs/api/fred/series_observations.html)
    whose series is given (``--series``) or is the file's name (``GDP.json``);
    a body whose observations carry real-time windows other than the
    envelope's answers a vintage request, and is read as one (native ids
    ``SERIES:DATE@REALTIME_START``).

  Other JSON is *not* a saved body: the reason says what it looks like
  (an array of ids without a list name, a bare integer such as
  ``maxitem.json``, an observations body without a series) and what to do.

:class:`Hints` (``echoctl import --source``/``--series``) force the reading:
``source="hn"`` reads any JSON object as an item and any array as a story
list; ``source="fred"`` (implied by ``series``) reads an observations body or
a CSV download.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from echo_archive.errors import ParseError
from echo_archive.jsondecode import decode_json
from echo_archive.model import Request
from echo_archive.sources.base import Feed

__all__ = ["HINT_SOURCES", "Hints", "SavedBody", "recognize"]

HINT_SOURCES: Final = ("hn", "fred")
"""The sources ``--source`` may name for a saved body."""

#: Fields of a Hacker News item (https://github.com/HackerNews/API, "Items").
_HN_FIELDS: Final = frozenset(
    {
        "id",
        "deleted",
        "type",
        "by",
        "time",
        "text",
        "dead",
        "parent",
        "poll",
        "kids",
        "url",
        "score",
        "title",
        "parts",
        "descendants",
    }
)
_HN_TYPES: Final = frozenset({"story", "comment", "job", "poll", "pollopt"})
_HN_LIST_NAME_RE: Final = re.compile(r"^(?:top|new|best|ask|show|job)stories\.json$")
_CSV_HEADER_RE: Final = re.compile(rb"^(?:\xef\xbb\xbf)?\s*(?:DATE|observation_date)\s*,", re.I)


@dataclass(frozen=True)
class Hints:
    """What the user said about the files (``echoctl import --source/--series``).

    Attributes:
        source: ``hn`` or ``fred``: read a saved body as that source's; None: recognize.
        series: the FRED series id of a saved observations body (implies ``fred``).
    """

    source: str | None = None
    series: str | None = None


@dataclass(frozen=True)
class SavedBody:
    """A file recognized as a saved API body.

    Attributes:
        format: ``fred-csv``, ``fred-json``, ``hn-item`` or ``hn-list``.
        source: the source kind that parses it (``fred``, ``hn``).
        feed: the import feed its items go to (``import-fred``, ``import-hn``).
        request: the request to hand the source's ``parse`` (URL ``file:<name>``;
            the purpose says what the body is, as a live request's does).
        media_type: the capture's ``Content-Type``.
    """

    format: str
    source: str
    feed: Feed
    request: Request
    media_type: str


def recognize(path: Path, data: bytes, hints: Hints | None = None) -> SavedBody | str | None:
    """Tell whether a file is a saved API body (see the module docstring for the rules).

    Args:
        path: the file (its name counts for lists and FRED series).
        data: its bytes.
        hints: what the user said (``--source``, ``--series``); None: nothing.

    Returns:
        The :class:`SavedBody`; or a reason (str) when the file looks like a
        saved body that cannot be read without a hint, or is JSON ECHO reads
        nothing from (what it looks like, and what to do); or None when it is
        not JSON nor a FRED CSV (it may still be a feed document).
    """
    url = f"file:{path.name}"
    hints = hints or Hints()
    source = "fred" if hints.series else hints.source
    if _CSV_HEADER_RE.match(data[:256]) and source in (None, "fred"):
        return _fred(url, "fred-csv", "text/csv", hints.series)
    try:
        doc: Any = decode_json(data, url)
    except ParseError:
        if source is not None:
            return f"not JSON nor a FRED CSV download, which --source {source} needs"
        return None
    if source == "hn" or (source is None and _is_hn_item(doc)):
        if isinstance(doc, dict):
            return _hn_item(url, doc)
        if isinstance(doc, list):
            return _hn_list(url)
        return f"{_json_shape(doc)}, neither a Hacker News item nor a story list"
    if isinstance(doc, list) and doc and all(_is_id(v) for v in doc):
        if source is None and _HN_LIST_NAME_RE.match(path.name):
            return _hn_list(url)
        return (
            f"looks like a Hacker News story list body ({len(doc)} item ids): "
            "import it with `--source hn`"
        )
    if isinstance(doc, dict) and isinstance(doc.get("observations"), list):
        series = hints.series or path.stem
        if hints.series is None and not _SERIES_NAME_RE.match(series):
            return (
                "looks like a FRED observations body, and its file name is not a "
                "series id: give the series with `--series ID`"
            )
        saved = _fred(url, "fred-json", "application/json", series)
        if _is_vintage_body(doc):
            params = {**saved.feed.params, "realtime_start": doc["realtime_start"]}
            saved = replace(saved, feed=replace(saved.feed, params=params))
        return saved
    if source == "fred":
        return f"{_json_shape(doc)}, not a FRED observations body"
    if _is_id(doc):
        return (
            f"JSON: the integer {doc} (Hacker News `maxitem.json` holds one), "
            "no items in it; use `echoctl add` to archive it as a file"
        )
    if isinstance(doc, dict) and "id" in doc and "type" in doc and "time" in doc:
        return (
            "looks like a Hacker News item body (with fields the API does not "
            "send): import it with `--source hn`"
        )
    return f"{_json_shape(doc)} ECHO reads no items from; use `echoctl add` to archive it as a file"


_SERIES_NAME_RE: Final = re.compile(r"^[A-Z0-9][A-Z0-9_.-]{0,63}$")
"""A file name taken as a FRED series id: upper case, as FRED writes them (``GDP``, ``DGS10``)."""


def _fred(url: str, fmt: str, media: str, series: str | None) -> SavedBody:
    purpose: dict[str, Any] = {"kind": "observations", "format": fmt.removeprefix("fred-")}
    params: dict[str, Any] = {}
    if series is not None:
        purpose["series_id"] = series
        params["series_id"] = series
    return SavedBody(
        fmt, "fred", Feed("import-fred", "fred", params), Request(url, purpose=purpose), media
    )


def _hn_item(url: str, doc: dict[str, Any]) -> SavedBody:
    purpose: dict[str, Any] = {"kind": "item", "depth": 0}
    if _is_id(doc.get("id")):
        purpose["id"] = doc["id"]
    return SavedBody(
        "hn-item", "hn", Feed("import-hn", "hn"), Request(url, purpose=purpose), "application/json"
    )


def _hn_list(url: str) -> SavedBody:
    request = Request(url, purpose={"kind": "list"})
    return SavedBody("hn-list", "hn", Feed("import-hn", "hn"), request, "application/json")


def _is_vintage_body(doc: dict[str, Any]) -> bool:
    """Whether an observations body answers a vintage request (ALFRED).

    Without one, the API stamps every observation with the request's own
    real-time window (the envelope's ``realtime_start``/``realtime_end``);
    an observation with another window is a vintage.
    """
    window = (doc.get("realtime_start"), doc.get("realtime_end"))
    return isinstance(window[0], str) and any(
        isinstance(obs, dict) and (obs.get("realtime_start"), obs.get("realtime_end")) != window
        for obs in doc["observations"]
    )


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_hn_item(doc: object) -> bool:
    return (
        isinstance(doc, dict)
        and set(doc) <= _HN_FIELDS
        and _is_id(doc.get("id"))
        and doc.get("type") in _HN_TYPES
    )


def _json_shape(doc: object) -> str:
    """``JSON: an object (keys: a, b)``, ``JSON: an array of 3 values``... for reasons."""
    if isinstance(doc, dict):
        keys = ", ".join(sorted(str(k) for k in doc)[:8]) or "none"
        return f"JSON: an object (keys: {keys})"
    if isinstance(doc, list):
        return f"JSON: an array of {len(doc)} value(s)"
    if isinstance(doc, str):
        return "JSON: a string"
    return f"JSON: {'null' if doc is None else type(doc).__name__} {doc!r}"
