"""Decoding JSON response bodies with errors that name the URL and the position."""

from __future__ import annotations

import json
from typing import Any

from echo_archive.errors import ParseError

__all__ = ["load_json"]


def load_json(body: bytes, url: str) -> Any:
    """Decode a JSON body (RFC 8259), naming the line and column of a syntax error.

    Args:
        body: the response body after content-decoding.
        url: the response URL, for the error message.

    Returns:
        The decoded JSON value.

    Raises:
        ParseError: the body is empty or whitespace (position ``byte 0``), is
            not JSON (``line L column C``), or is not UTF-8 (``byte N``).
    """
    if not body.strip():
        raise ParseError("empty body, expected JSON", url, "byte 0")
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise ParseError(
            f"malformed JSON ({exc.msg})", url, f"line {exc.lineno} column {exc.colno}"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ParseError(f"JSON is not UTF-8 ({exc.reason})", url, f"byte {exc.start}") from exc
