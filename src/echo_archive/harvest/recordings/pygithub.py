"""PyGithub's replay data files (``pygithub``): 10-line records separated by a blank line."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from echo_archive.errors import RecordingError
from echo_archive.harvest.recordings._common import (
    _METHOD_RE,
    _STATUS_TEXT_RE,
    Recording,
    _collect,
    _content_decode,
    _header_pairs,
    _Malformed,
    _status,
)
from echo_archive.model import Exchange


def _looks_like_pygithub(head: bytes) -> bool:
    """Whether ``head`` starts like a PyGithub replay record (scheme, METHOD, host, port, path)."""
    lines = [line.rstrip(b"\r") for line in head.split(b"\n", 8)]
    if len(lines) < 9:
        return False
    scheme, method, host, port, path, req_headers, _, status = lines[:8]
    return (
        scheme in (b"http", b"https")
        and _METHOD_RE.fullmatch(method) is not None
        and bool(host)
        and (port == b"None" or port.isdigit())
        and path.startswith(b"/")
        and req_headers.startswith(b"{")
        and status.strip().isdigit()
    )


# ---------------------------------------------------------------------------
# PyGithub replay text.


@dataclass(frozen=True, slots=True)
class _ReplayRecord:
    """One PyGithub replay record: its first line number and its 10 lines, or why it is none."""

    line: int
    lines: tuple[str, ...] = ()
    error: str = ""


def _pygithub_records(text: str) -> Iterator[_ReplayRecord]:
    """Split PyGithub replay text into records.

    Yields:
        One :class:`_ReplayRecord` per 10-line record, or with ``error`` set
        for text that is not one (the reader then resynchronizes at the next
        ``http``/``https`` line that follows a blank line).
    """
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    i = 0
    while i < len(lines):
        if lines[i] == "":
            i += 1
            continue
        start = i
        record = lines[i : i + 10]
        if len(record) == 9 and i + 9 == len(lines):
            record.append("")  # the file ends right after the headers: an empty body
        if len(record) < 10:
            yield _ReplayRecord(start + 1, error=f"only {len(record)} of the 10 lines of a record")
            return
        i += 10
        if i < len(lines) and lines[i] != "":
            yield _ReplayRecord(start + 1, error="the record is not followed by a blank line")
            while i < len(lines) and not (lines[i] in ("http", "https") and lines[i - 1] == ""):
                i += 1
            continue
        yield _ReplayRecord(start + 1, tuple(record))


def _pygithub_exchange(item: object, notes: list[str]) -> Exchange:
    """Convert one PyGithub replay record.

    Lines: scheme, METHOD, host, port (``None`` or digits), path?query,
    request headers (Python dict repr), request body, status, response
    headers (Python list-of-tuples repr; the ``('status', '200 OK')``
    pseudo-header of old files is dropped), body (decoded text, one line).

    Raises:
        _Malformed: a line does not hold what it should.
    """
    assert isinstance(item, _ReplayRecord)
    if item.error:
        raise _Malformed(item.error)
    scheme, method, host, port, path, req_repr, _, status_text, resp_repr, body = item.lines
    if scheme not in ("http", "https"):
        raise _Malformed(f"line 1 {scheme!r} is not http or https")
    if _METHOD_RE.fullmatch(method.encode()) is None:
        raise _Malformed(f"line 2 {method!r} is not an HTTP method")
    if not host:
        raise _Malformed("line 3 (host) is empty")
    if port != "None" and not port.isdigit():
        raise _Malformed(f"line 4 {port!r} is not a port")
    try:
        req_headers = ast.literal_eval(req_repr)
        resp_headers = ast.literal_eval(resp_repr)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
        raise _Malformed(f"headers are not a Python literal: {exc}") from exc
    if not isinstance(req_headers, dict):
        raise _Malformed("line 6 (request headers) is not a dict")
    if not isinstance(resp_headers, list):
        raise _Malformed("line 9 (response headers) is not a list")
    headers = tuple(
        pair
        for pair in _header_pairs(resp_headers, "response headers")
        if not (pair[0].lower() == "status" and _STATUS_TEXT_RE.match(pair[1]))
    )
    netloc = host if port == "None" else f"{host}:{port}"
    url = f"{scheme}://{netloc}{path}"
    return Exchange(
        method=method,
        url=url,
        status=_status(status_text, "line 8 (status)"),
        headers=headers,
        body=_content_decode(body.encode("utf-8", "surrogatepass"), headers, notes),
        final_url=url,
        request_headers=_header_pairs(req_headers, "request headers"),
    )


def _pygithub(path: Path, data: bytes) -> Recording:
    """Read PyGithub replay bytes (see :func:`read_pygithub`)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordingError(f"{path}: not a PyGithub replay file: not UTF-8: {exc}") from exc
    return _collect(
        path,
        "pygithub",
        _pygithub_records(text),
        _pygithub_exchange,
        label=lambda index, item: f"interaction {index} (line {getattr(item, 'line', '?')})",
    )
