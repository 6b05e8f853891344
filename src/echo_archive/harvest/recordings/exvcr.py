"""Elixir ExVCR JSON cassettes (``exvcr``): a top-level list of ``{"request", "response"}``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from echo_archive.errors import RecordingError
from echo_archive.harvest.recordings._common import (
    Recording,
    _collect,
    _content_decode,
    _header_pairs,
    _Malformed,
    _mapping,
    _status,
    _text,
    _vcr_body,
)
from echo_archive.model import Exchange


def _exvcr_exchange(item: object, notes: list[str]) -> Exchange:
    """Convert one ExVCR interaction.

    Shape: ``{"request": {"url", "method", "headers"}, "response":
    {"status_code", "headers", "body", "type"}}``. ExVCR keeps no timestamp.

    Raises:
        _Malformed: a required field is missing or of the wrong type.
    """
    if not isinstance(item, Mapping):
        raise _Malformed("not an object")
    request = _mapping(item, "request", "")
    response = _mapping(item, "response", "")
    method = _text(request.get("method"), "request.method").upper()
    url = _text(request.get("url"), "request.url")
    status = _status(response.get("status_code"), "response.status_code")
    headers = _header_pairs(response.get("headers"), "response.headers")
    request_headers = _header_pairs(request.get("headers"), "request.headers")
    raw = _vcr_body(response.get("body"), "response.body")
    return Exchange(
        method=method,
        url=url,
        status=status,
        headers=headers,
        body=_content_decode(raw, headers, notes),
        final_url=url,
        request_headers=request_headers,
    )


def _exvcr(path: Path, doc: object) -> Recording:
    """Read a parsed ExVCR cassette (see :func:`read_exvcr`)."""
    if not isinstance(doc, list):
        raise RecordingError(f"{path}: not an ExVCR cassette: not a JSON list")
    return _collect(path, "exvcr", doc, _exvcr_exchange)
