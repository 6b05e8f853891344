r"""The one decoder of JSON from outside: bounded, strict, and raising only ParseError.

Every JSON document ECHO did not write itself (a response body, a recording,
a token answer, a line of a file) is decoded by :func:`decode_json`, so one
set of limits and one wording of errors holds everywhere. It sits in the
bottom layer (it imports only :mod:`echo_archive.errors`): sources, the
harvest, the importer and the recording readers all use it.

Rules (RFC 8259 "The JavaScript Object Notation (JSON) Data Interchange
Format", and RFC 7493 I-JSON where RFC 8259 leaves behaviour unpredictable):

* the text MUST be UTF-8 (§8.1); an invalid byte sequence is an error naming
  its byte offset. A UTF-8 byte order mark is ignored, as §8.1 allows
  ("MAY ignore"); a UTF-16 or UTF-32 BOM is an error (not UTF-8);
* an empty or all-whitespace text is an error (§2: a JSON text is a value);
* ``NaN``, ``Infinity`` and ``-Infinity`` are not JSON (§6: "Numeric values
  that cannot be represented ... (such as Infinity and NaN) are not
  permitted"), and neither is a number that overflows a double (``1e999``);
* an integer longer than Python's integer string limit (4300 digits,
  ``sys.get_int_max_str_digits``) is an error, not a ``ValueError``;
* a string holding an unpaired surrogate escape (``"\ud800"``) is an error
  (RFC 7493 §2.1; it cannot be encoded as UTF-8 again);
* nesting deeper than ``max_depth`` arrays and objects (default
  :data:`MAX_DEPTH`) is an error found before decoding, so neither the
  decoder nor any code walking the value recursively can hit Python's
  recursion limit (§9: "An implementation may set limits on the maximum
  depth of nesting");
* a text longer than ``max_bytes`` (default :data:`MAX_BYTES`) is an error
  (§9: "may set limits on the size of texts that it accepts");
* a truncated text is an error that says so, at the end of the text.

Errors are :class:`~echo_archive.errors.ParseError` only, carrying ``where``
(the URL or file) and the position (``line L column C``, or ``byte N`` for
encoding and size problems). Duplicate object keys keep the last value
(§4 leaves this to the implementation; Python's ``json`` does so).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from itertools import accumulate
from typing import Any, Final

from echo_archive.errors import ParseError

__all__ = ["MAX_BYTES", "MAX_DEPTH", "decode_json", "iter_json_values"]

MAX_DEPTH: Final = 256
"""Default limit on nested arrays and objects (a Reddit comment tree of 40
levels is about 200; CPython's recursion limit is 1000)."""

MAX_BYTES: Final = 64 * 1024 * 1024
"""Default limit on the size of a JSON text, in bytes (64 MiB, twice the engine's body limit)."""

_UTF8_BOM: Final = b"\xef\xbb\xbf"
_WIDE_BOMS: Final = (
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\xfe\xff", "UTF-16"),
    (b"\xff\xfe", "UTF-16"),
)
_JSON_SPACE: Final = " \t\n\r"
_NOT_A_BRACKET: Final = bytes(c for c in range(256) if c not in b"[]{}")
_DELTA: Final = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_STRING_OR_CONSTANT: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|(-?Infinity|NaN)', re.DOTALL)
_STRING_OR_LONG_INT: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|(-?\d{4000,})', re.DOTALL)
_SURROGATE_HINT: Final = re.compile(r"\\u[dD][89a-fA-F]")
_ESCAPE: Final = re.compile(r"\\(?:u([dD][89a-fA-F][0-9a-fA-F]{2})|.)", re.DOTALL)


class _NotJsonNumber(ValueError):
    """A number RFC 8259 §6 does not permit (NaN, Infinity, an overflowing double)."""


def _reject_constant(name: str) -> Any:
    raise _NotJsonNumber(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _NotJsonNumber(text)
    return value


_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def _line_column(text: str, offset: int) -> str:
    """``line L column C`` (1-based) of a character offset in ``text``."""
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"line {line} column {column}"


def _depth_exceeded_at(text: str, max_depth: int) -> int | None:
    """The offset of the first bracket nested deeper than ``max_depth``, or None.

    A cheap count rules most texts out; otherwise strings are cut out and the
    running depth of the brackets left is computed at C speed; only a text
    that is too deep is walked character by character, to name the position.
    """
    if text.count("[") + text.count("{") <= max_depth:
        return None
    # Outside strings: escaped backslashes and quotes blanked, then every other piece
    # between quotes (RFC 8259 §7: a string is quote, chars or escapes, quote).
    blanked = text.replace("\\\\", "__").replace('\\"', "__")
    outside = "".join(blanked.split('"')[::2]).encode("utf-8", "surrogatepass")
    skeleton = outside.translate(None, _NOT_A_BRACKET)
    if max(accumulate(map(_DELTA.__getitem__, skeleton)), default=0) <= max_depth:
        return None
    depth, in_string, escaped = 0, False, False
    for offset, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > max_depth:
                return offset
        elif char in "]}":
            depth -= 1
    return None  # an unterminated string hid the brackets: the decoder reports it


def _unpaired_surrogate_at(text: str) -> int | None:
    r"""The offset of a ``\uD800``-``\uDFFF`` escape not forming a pair, or None."""
    if _SURROGATE_HINT.search(text) is None:
        return None
    pending: int | None = None  # offset of a high surrogate escape awaiting its low half
    end_of_pending = -1
    for match in _ESCAPE.finditer(text):
        unit = match.group(1)
        if unit is None:
            if pending is not None:
                return pending
            continue
        value = int(unit, 16)
        if value < 0xDC00:  # high
            if pending is not None:
                return pending
            pending, end_of_pending = match.start(), match.end()
        elif pending is not None and match.start() == end_of_pending:
            pending = None
        else:
            return match.start()
    return pending


def _first(pattern: re.Pattern[str], text: str) -> int:
    """The offset of the first match of ``pattern``'s group 1 outside strings (0 if none)."""
    for match in pattern.finditer(text):
        if match.group(1) is not None:
            return match.start(1)
    return 0


def _text_of(data: bytes | str, where: str) -> tuple[str, int]:
    """The text of ``data`` without a BOM, and the BOM's length in bytes.

    Raises:
        ParseError: a UTF-16/32 BOM, or bytes that are not UTF-8.
    """
    if isinstance(data, str):
        return (data[1:], 3) if data.startswith("\ufeff") else (data, 0)
    skip = 0
    if data.startswith(_UTF8_BOM):
        skip = len(_UTF8_BOM)
    else:
        for bom, name in _WIDE_BOMS:
            if data.startswith(bom):
                raise ParseError(
                    f"JSON is {name} (byte order mark), not UTF-8 (RFC 8259 §8.1)", where, "byte 0"
                )
    try:
        return data[skip:].decode("utf-8"), skip
    except UnicodeDecodeError as exc:
        raise ParseError(
            f"JSON is not UTF-8 ({exc.reason})", where, f"byte {skip + exc.start}"
        ) from None


def decode_json(
    data: bytes | str,
    where: str,
    *,
    max_depth: int = MAX_DEPTH,
    max_bytes: int | None = MAX_BYTES,
    what: str = "JSON",
) -> Any:
    """Decode one JSON text from outside ECHO (see the module docstring for the rules).

    Args:
        data: the text: bytes (UTF-8, a UTF-8 BOM ignored) or str.
        where: what the text is, for messages: the URL (already redacted) or
            the file path.
        max_depth: the deepest nesting of arrays and objects accepted.
        max_bytes: the largest text accepted, in bytes (UTF-8 length for a
            str); None for no limit (a recording file read whole).
        what: what is expected, for messages (``"JSON"``, ``"a JSON Feed"``).

    Returns:
        The decoded value (dict, list, str, int, float, bool or None).

    Raises:
        ParseError: the only exception; its message says what is wrong and its
            ``position`` where (``byte N``, ``line L column C``).
    """
    size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8", "surrogatepass"))
    if max_bytes is not None and size > max_bytes:
        raise ParseError(
            f"{what} text of {size} bytes is over the limit of {max_bytes} bytes",
            where,
            f"byte {max_bytes}",
        )
    text, _ = _text_of(data, where)
    if not text.strip(_JSON_SPACE):
        raise ParseError(f"empty text ({size} bytes), expected {what}", where, "byte 0")
    deep = _depth_exceeded_at(text, max_depth)
    if deep is not None:
        raise ParseError(
            f"{what} nested too deeply (deeper than {max_depth} arrays and objects)",
            where,
            _line_column(text, deep),
        )
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        rest = text[exc.pos :].strip(_JSON_SPACE)
        cut = ", truncated" if not rest else ""
        raise ParseError(
            f"malformed {what}{cut} ({exc.msg})", where, f"line {exc.lineno} column {exc.colno}"
        ) from None
    except _NotJsonNumber as exc:
        offset = (
            _first(_STRING_OR_CONSTANT, text) if str(exc) in ("NaN", "Infinity", "-Infinity") else 0
        )
        shown = str(exc) if len(str(exc)) <= 40 else str(exc)[:40] + "..."
        raise ParseError(
            f"{shown} is not a JSON number (RFC 8259 §6: no NaN, Infinity or overflowing numbers)",
            where,
            _line_column(text, offset) if offset else "",
        ) from None
    except RecursionError:  # unreachable after the depth check; kept as a last guard
        raise ParseError(f"{what} nested too deeply", where) from None
    except ValueError as exc:  # an integer over sys.get_int_max_str_digits
        offset = _first(_STRING_OR_LONG_INT, text)
        raise ParseError(
            f"number too long to read ({exc})", where, _line_column(text, offset)
        ) from None
    surrogate = _unpaired_surrogate_at(text)
    if surrogate is not None:
        raise ParseError(
            "string holds an unpaired UTF-16 surrogate escape (RFC 7493 §2.1)",
            where,
            _line_column(text, surrogate),
        )
    return value


def iter_json_values(
    text: str,
    where: str,
    *,
    line: int,
    lead: int = 0,
    resume: re.Pattern[str] | None = None,
    max_depth: int = MAX_DEPTH,
) -> Iterator[Any]:
    """Yield the JSON values of one line holding one or more of them glued together.

    For JSON Lines files whose lines sometimes hold two values (GH Archive's
    glued events). The same rules as :func:`decode_json` apply to each value;
    an error does not stop the line when ``resume`` finds where the next
    value starts after it.

    Args:
        text: the line, decoded (UTF-8 checked by the caller), without its
            line terminator.
        where: the file, for messages.
        line: the line number, for positions (``line N column C``).
        lead: characters stripped from the start of the line before
            ``text``, added to columns.
        resume: where a value may start again after an error (searched from
            just after where the failed value began); None stops the line at
            its first error.
        max_depth: the deepest nesting accepted (for the whole line).

    Yields:
        Each decoded value, or a :class:`~echo_archive.errors.ParseError`
        (yielded, not raised) for each value that could not be read.
    """
    deep = _depth_exceeded_at(text, max_depth)
    if deep is not None:
        yield ParseError(
            f"malformed JSON: nested too deeply (deeper than {max_depth} arrays and objects)",
            where,
            f"line {line} column {lead + deep + 1}",
        )
        return
    surrogate = _unpaired_surrogate_at(text)
    if surrogate is not None:
        yield ParseError(
            "malformed JSON: a string holds an unpaired UTF-16 surrogate escape (RFC 7493 §2.1)",
            where,
            f"line {line} column {lead + surrogate + 1}",
        )
        return
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos] in _JSON_SPACE:
            pos += 1
        if pos >= end:
            return
        start = pos
        try:
            value, pos = _DECODER.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            yield ParseError(
                f"malformed JSON: {exc.msg}", where, f"line {line} column {lead + exc.pos + 1}"
            )
            # The next value may start before the error position: in
            # ``"url":"https://api.{"id":"1"...`` the string ends at ``{"``.
            found = resume.search(text, start + 1) if resume is not None else None
            if found is None:
                return
            pos = found.start()
            continue
        except RecursionError:  # unreachable after the depth check; kept as a last guard
            yield ParseError("malformed JSON: nested too deeply", where, f"line {line}")
            return
        except ValueError as exc:  # NaN, Infinity, 1e999, an integer over the digit limit
            yield ParseError(
                f"malformed JSON: {str(exc)[:80]} is not a JSON number (RFC 8259 §6)",
                where,
                f"line {line}",
            )
            return
        yield value
