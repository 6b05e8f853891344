"""betamax / VCR JSON cassettes (``betamax``, ``vcrpy-json``, ``ruby-vcr-json``).

One interaction shape, one reader (see the package docstring).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final

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
    _timestamp,
    _vcr_body,
)
from echo_archive.model import Exchange


def _vcr_exchange(item: object, notes: list[str], default_time: object = None) -> Exchange:
    """Convert one betamax / Ruby VCR / vcrpy interaction.

    Shape: ``{"request": {"method", "uri", "headers", "body"}, "response":
    {"status": {"code", "message"} | "status_code": int, "headers", "body",
    "url"?}, "recorded_at"?}``.

    Args:
        item: the interaction.
        notes: where to note fields left out.
        default_time: the cassette-level ``recorded_at`` (betamax), if any.

    Returns:
        The exchange.

    Raises:
        _Malformed: a required field is missing or of the wrong type.
    """
    if not isinstance(item, Mapping):
        raise _Malformed("not an object")
    request = _mapping(item, "request", "")
    response = _mapping(item, "response", "")
    method = _text(request.get("method"), "request.method").upper()
    url = _text(request.get("uri", request.get("url")), "request.uri")
    status_field = response.get("status")
    if isinstance(status_field, Mapping):
        status = _status(status_field.get("code"), "response.status.code")
    elif status_field is None:
        if response.get("status_code") is None:
            raise _Malformed("response.status is missing")
        status = _status(response.get("status_code"), "response.status_code")
    else:
        status = _status(status_field, "response.status")
    headers = _header_pairs(response.get("headers"), "response.headers")
    request_headers = _header_pairs(request.get("headers"), "request.headers")
    body = _content_decode(_vcr_body(response.get("body"), "response.body"), headers, notes)
    final_url = response.get("url")
    recorded_at = _timestamp(item.get("recorded_at", default_time), notes)
    return Exchange(
        method=method,
        url=url,
        status=status,
        headers=headers,
        body=body,
        final_url=final_url if isinstance(final_url, str) and final_url else url,
        fetched_at=recorded_at or "",
        request_headers=request_headers,
        recorded_at=recorded_at,
    )


_JSON_VCR_FORMATS: Final = ("betamax", "vcrpy-json", "ruby-vcr-json")
"""The JSON cassette formats of one shape, read by one reader (:func:`read_betamax`)."""


def _betamax(path: Path, doc: object, fmt: str = "betamax") -> Recording:
    """Read a parsed betamax / VCR JSON cassette (see :func:`read_betamax`)."""
    if not isinstance(doc, Mapping):
        raise RecordingError(f"{path}: not a betamax cassette: not a JSON object")
    items = doc.get("interactions")
    if not isinstance(items, list):
        items = doc.get("http_interactions")
    if not isinstance(items, list):
        raise RecordingError(
            f"{path}: not a betamax cassette: no 'interactions' or 'http_interactions' list"
        )
    default_time = doc.get("recorded_at")
    return _collect(path, fmt, items, lambda item, notes: _vcr_exchange(item, notes, default_time))
