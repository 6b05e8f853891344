"""HAR 1.2 (``har``, http://www.softwareishard.com/blog/har-12-spec/).

The reader and :func:`write_har`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from echo_archive import __version__
from echo_archive.errors import RecordingError
from echo_archive.harvest.recordings._common import (
    Recording,
    _b64decode,
    _collect,
    _export_time,
    _header_pairs,
    _Malformed,
    _mapping,
    _reason,
    _status,
    _text,
    _timestamp,
)
from echo_archive.model import Exchange

# ---------------------------------------------------------------------------
# HAR 1.2.


def _har_exchange(item: object, notes: list[str]) -> Exchange:
    """Convert one HAR 1.2 ``log.entries[]`` entry.

    Uses ``request.method``, ``request.url``, ``request.headers``,
    ``response.status``, ``response.headers``, ``response.content.text`` (with
    ``content.encoding: "base64"`` when binary), ``startedDateTime`` and
    ``time`` (ms). HAR's ``content.text`` is the HTTP-decoded body by
    definition, so no content-decoding is applied (a gzip *file* served with
    ``Content-Encoding: gzip`` stays a gzip file). The custom field
    ``_finalUrl`` (written by :func:`write_har`) gives ``final_url``.

    Raises:
        _Malformed: a required field is missing, or the status is 0 (the
            browser got no response).
    """
    if not isinstance(item, Mapping):
        raise _Malformed("not an object")
    request = _mapping(item, "request", "")
    response = _mapping(item, "response", "")
    method = _text(request.get("method"), "request.method").upper()
    url = _text(request.get("url"), "request.url")
    status = _status(response.get("status"), "response.status")
    headers = _header_pairs(response.get("headers"), "response.headers")
    content = response.get("content") or {}
    if not isinstance(content, Mapping):
        raise _Malformed("response.content is not an object")
    text = content.get("text")
    if text is None:
        raw = b""
    elif not isinstance(text, str):
        raise _Malformed("response.content.text is not a string")
    elif str(content.get("encoding", "")).lower() == "base64":
        try:
            raw = _b64decode(text)
        except (binascii.Error, ValueError) as exc:
            raise _Malformed(f"response.content.text is not base64: {exc}") from exc
    else:
        raw = text.encode("utf-8", "surrogatepass")
    elapsed = item.get("time")
    final_url = item.get("_finalUrl")
    recorded_at = _timestamp(item.get("startedDateTime"), notes)
    return Exchange(
        method=method,
        url=url,
        status=status,
        headers=headers,
        body=raw,
        final_url=final_url if isinstance(final_url, str) and final_url else url,
        fetched_at=recorded_at or "",
        elapsed=float(elapsed) / 1000
        if isinstance(elapsed, int | float) and not isinstance(elapsed, bool) and elapsed > 0
        else 0.0,
        request_headers=_header_pairs(request.get("headers"), "request.headers"),
        recorded_at=recorded_at,
    )


def _har(path: Path, doc: object) -> Recording:
    """Read a parsed HAR document (see :func:`read_har`)."""
    log = doc.get("log") if isinstance(doc, Mapping) else None
    entries = log.get("entries") if isinstance(log, Mapping) else None
    if not isinstance(entries, list):
        raise RecordingError(f"{path}: not a HAR file: no 'log.entries' list")
    return _collect(path, "har", entries, _har_exchange)


def write_har(exchanges: Iterable[Exchange], path: Path) -> None:
    """Write exchanges as a HAR 1.2 file (W3C Web Performance WG draft).

    Every required HAR 1.2 field is written. Bodies that are valid UTF-8 go in
    ``content.text``; others are base64 with ``content.encoding: "base64"``.
    The body written is the decoded one (HAR's ``content.text`` is decoded by
    definition); headers are written as recorded. ``startedDateTime`` is
    ``fetched_at`` (else the ``Date`` header, else now). A ``final_url`` that
    differs from the URL is kept in the custom field ``_finalUrl``.

    Args:
        exchanges: the exchanges, in order.
        path: the file to write (replaced if it exists).

    Raises:
        RecordingError: the file cannot be written.
    """
    entries: list[dict[str, Any]] = []
    for exchange in exchanges:
        try:
            text, encoding = exchange.body.decode("utf-8"), None
        except UnicodeDecodeError:
            text, encoding = base64.b64encode(exchange.body).decode("ascii"), "base64"
        content: dict[str, Any] = {
            "size": len(exchange.body),
            "mimeType": exchange.header("content-type") or "",
            "text": text,
        }
        if encoding:
            content["encoding"] = encoding
        millis = round(exchange.elapsed * 1000, 3)
        entry: dict[str, Any] = {
            "startedDateTime": _export_time(exchange),
            "time": millis,
            "request": {
                "method": exchange.method,
                "url": exchange.url,
                "httpVersion": "HTTP/1.1",
                "cookies": [],
                "headers": [{"name": k, "value": v} for k, v in exchange.request_headers],
                "queryString": [
                    {"name": k, "value": v}
                    for k, v in parse_qsl(urlsplit(exchange.url).query, keep_blank_values=True)
                ],
                "headersSize": -1,
                "bodySize": -1,
            },
            "response": {
                "status": exchange.status,
                "statusText": _reason(exchange.status),
                "httpVersion": "HTTP/1.1",
                "cookies": [],
                "headers": [{"name": k, "value": v} for k, v in exchange.headers],
                "content": content,
                "redirectURL": exchange.header("location") or "",
                "headersSize": -1,
                "bodySize": -1,
            },
            "cache": {},
            "timings": {"send": 0, "wait": millis, "receive": 0},
        }
        if exchange.final_url and exchange.final_url != exchange.url:
            entry["_finalUrl"] = exchange.final_url
        entries.append(entry)
    document = {
        "log": {
            "version": "1.2",
            "creator": {"name": "echo_archive", "version": __version__},
            "entries": entries,
        }
    }
    try:
        Path(path).write_text(json.dumps(document, ensure_ascii=False, indent=1), "utf-8")
    except OSError as exc:
        raise RecordingError(f"{path}: cannot write: {exc.strerror or exc}") from exc
