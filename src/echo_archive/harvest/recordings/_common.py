"""What every recording reader shares.

The formats, :class:`Recording`, the YAML loader (``!binary``), field checks, content decoding (RFC
9110 §8.4), file reading and the collection of interactions.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import http.client
import io
import re
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import yaml
import zstandard

from echo_archive.errors import RecordingError
from echo_archive.model import Exchange, header, header_values

FORMATS: Final[tuple[str, ...]] = (
    "betamax",
    "vcrpy-json",
    "ruby-vcr-json",
    "pygithub",
    "ruby-vcr",
    "vcrpy",
    "exvcr",
    "har",
    "warc",
)
"""Every value ``Recording.format`` can take."""

_HEAD_SIZE: Final = 64 * 1024
#: A whole file that is one JSON scalar (``8863``, ``"x"``, ``true``): JSON, not "unknown bytes".
_JSON_SCALAR_RE: Final = re.compile(
    rb'(?:-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|"[^"\\]*(?:\\.[^"\\]*)*"|true|false|null)\s*'
)
_GZIP_MAGIC: Final = b"\x1f\x8b"
_ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"
_BOM: Final = b"\xef\xbb\xbf"
# Media types whose body *is* a gzip file: without a Content-Encoding header
# such a body is the resource itself and must not be unpacked.
_GZIP_FILE_TYPES: Final = frozenset(
    {
        "application/gzip",
        "application/x-gzip",
        "application/x-gtar",
        "application/x-tar",
        "application/x-compressed-tar",
        "application/octet-stream",
    }
)
_YAML_KEY_RE: Final = re.compile(rb"^(?:http_)?interactions:", re.MULTILINE)
_METHOD_RE: Final = re.compile(rb"[A-Z]+")
_STATUS_TEXT_RE: Final = re.compile(r"\d{3}")
_UTC_FORMAT: Final = "%Y-%m-%dT%H:%M:%S.%fZ"
# Ruby encoding names that Python spells differently.
_ENCODING_ALIASES: Final = {"ascii-8bit": "latin-1", "binary": "latin-1", "us-ascii": "ascii"}
# How many unmatched WARC request records to remember while streaming.
_WARC_REQUEST_MEMORY: Final = 256


@dataclass(frozen=True, slots=True)
class Recording:
    """The exchanges read from one recording file.

    Attributes:
        path: the file read.
        format: the detected container format, one of :data:`FORMATS`.
        exchanges: the exchanges, in recording order.
        problems: what was wrong with individual interactions, each naming the
            interaction index (``"interaction 3: skipped: response.status
            missing"``). Interactions marked ``skipped`` are not in
            ``exchanges``; those marked ``kept`` are, with the field named
            left out (an unreadable timestamp, an undecodable body coding).
    """

    path: Path
    format: str
    exchanges: tuple[Exchange, ...]
    problems: tuple[str, ...] = field(default=())


class _Malformed(Exception):
    """One interaction cannot be turned into an :class:`Exchange` (the message says why)."""


@dataclass(frozen=True, slots=True)
class _BadBinary:
    """A ``!binary`` YAML scalar whose base64 text did not decode."""

    reason: str


# ---------------------------------------------------------------------------
# YAML loading: SafeLoader only, plus Ruby's ``!binary`` tag.


def _b64decode(text: str) -> bytes:
    """Decode base64 strictly (RFC 4648 §4), ignoring only line breaks and spaces.

    Raises:
        binascii.Error: a character outside the alphabet, or bad padding.
    """
    return base64.b64decode("".join(text.split()), validate=True)


def _construct_ruby_binary(loader: Any, node: Any) -> bytes | _BadBinary:
    """Construct a Ruby/Psych ``!binary`` scalar: base64 text to bytes.

    Args:
        loader: the YAML loader.
        node: the scalar node.

    Returns:
        The decoded bytes, or a :class:`_BadBinary` marker (so one bad body
        spoils only its own interaction, not the whole file).
    """
    text = loader.construct_scalar(node)
    try:
        return _b64decode(str(text))
    except (binascii.Error, ValueError) as exc:
        return _BadBinary(f"!binary scalar is not base64: {exc}")


_SafeBase: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _RecordingLoader(_SafeBase):  # type: ignore[misc]
    """PyYAML's safe loader (libyaml-backed when available) that also knows ``!binary``.

    Only the constructors of ``yaml.SafeLoader`` are registered, so no YAML
    document can instantiate Python objects.
    """


_RecordingLoader.add_constructor("!binary", _construct_ruby_binary)


# ---------------------------------------------------------------------------
# Small value helpers shared by the readers.


def _rfc3339(value: object) -> str | None:
    """Normalize a timestamp to RFC 3339 UTC ``YYYY-MM-DDTHH:MM:SS.ffffffZ``.

    Accepts ISO 8601 / RFC 3339 text (``2016-03-22T05:49:01``, ``...Z``,
    ``...+02:00``), RFC 5322 / RFC 9110 HTTP dates (``Thu, 15 Feb 2024
    15:06:19 GMT``) and ``datetime`` objects (YAML parses bare timestamps).
    A time without a zone is taken as UTC, as betamax and vcrpy record it.

    Args:
        value: the recorded value.

    Returns:
        The normalized string, or None when ``value`` is None or empty.

    Raises:
        ValueError: the value is present but is not a date.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        text = value.strip()
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            try:
                moment = email.utils.parsedate_to_datetime(text)
            except (TypeError, ValueError, IndexError) as exc:
                raise ValueError(f"not a date: {value!r}") from exc
    else:
        raise ValueError(f"not a date: {value!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(_UTC_FORMAT)


def _timestamp(value: object, notes: list[str]) -> str | None:
    """Return :func:`_rfc3339` of ``value``, noting (not failing) an unreadable one."""
    try:
        return _rfc3339(value)
    except ValueError:
        notes.append(f"kept: recorded_at {value!r} is not a date, left out")
        return None


def _mapping(parent: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    """Return ``parent[key]`` if it is a JSON/YAML object, else raise :class:`_Malformed`."""
    value = parent.get(key)
    if not isinstance(value, Mapping):
        raise _Malformed(f"{where}{key} is missing or not an object")
    return value


def _text(value: object, where: str) -> str:
    """Return ``value`` if it is a non-empty string, else raise :class:`_Malformed`."""
    if not isinstance(value, str) or not value:
        raise _Malformed(f"{where} is missing or not a string")
    return value


def _status(value: object, where: str) -> int:
    """Return a status code (int or digits) in 100..999, else raise :class:`_Malformed`."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 999:
        raise _Malformed(f"{where} {value!r} is not an HTTP status code")
    return value


def _header_value(value: object, where: str) -> str:
    """Return a header value as text (numbers and booleans that YAML typed become text)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise _Malformed(f"{where} has a value that is not text: {value!r}")


def _header_pairs(value: object, where: str) -> tuple[tuple[str, str], ...]:
    """Turn recorded headers into ``(name, value)`` pairs in recorded order.

    Accepts ``{name: [values]}`` (VCR, betamax: one pair per value, in order),
    ``{name: "value"}`` (github3.py, ExVCR), ``[[name, value], ...]`` and
    ``[{"name", "value"}, ...]`` (HAR 1.2 §headers).

    Args:
        value: the recorded headers (None means none).
        where: the field's path, for messages.

    Returns:
        The header pairs.

    Raises:
        _Malformed: the headers have another shape.
    """
    if value is None:
        return ()
    pairs: list[tuple[str, str]] = []
    if isinstance(value, Mapping):
        for name, values in value.items():
            if not isinstance(name, str):
                raise _Malformed(f"{where} has a non-text header name {name!r}")
            if isinstance(values, list | tuple):
                pairs.extend((name, _header_value(item, where)) for item in values)
            elif values is not None:
                pairs.append((name, _header_value(values, where)))
        return tuple(pairs)
    if isinstance(value, list | tuple):
        for item in value:
            if isinstance(item, Mapping) and isinstance(item.get("name"), str):
                pairs.append((item["name"], _header_value(item.get("value", ""), where)))
            elif isinstance(item, list | tuple) and len(item) == 2 and isinstance(item[0], str):
                pairs.append((item[0], _header_value(item[1], where)))
            else:
                raise _Malformed(f"{where} has an entry that is not a header: {item!r}")
        return tuple(pairs)
    raise _Malformed(f"{where} is not a header mapping or list")


def _encode_text(text: str, encoding: object) -> bytes:
    """Encode recorded body text back to bytes with the recorded charset (UTF-8 fallback)."""
    if isinstance(encoding, str) and encoding:
        codec = _ENCODING_ALIASES.get(encoding.lower(), encoding)
        try:
            return text.encode(codec)
        except (LookupError, UnicodeEncodeError):
            pass
    return text.encode("utf-8", "surrogatepass")


def _vcr_body(value: object, where: str) -> bytes:
    """Return the raw body bytes of a VCR-family body field (before content-decoding).

    Accepts None (no body), text, bytes (a YAML ``!!binary``/``!binary``
    scalar) and ``{"string": ..., "base64_string": ..., "encoding": ...}``
    (betamax; Ruby VCR with ``preserve_exact_body_bytes``).

    Args:
        value: the recorded body field.
        where: the field's path, for messages.

    Returns:
        The body bytes as recorded.

    Raises:
        _Malformed: the body has another shape or bad base64.
    """
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    if isinstance(value, _BadBinary):
        raise _Malformed(f"{where}: {value.reason}")
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if isinstance(value, Mapping):
        encoded = value.get("base64_string")
        if isinstance(encoded, str) and encoded:
            try:
                return _b64decode(encoded)
            except (binascii.Error, ValueError) as exc:
                raise _Malformed(f"{where}.base64_string is not base64: {exc}") from exc
        text = value.get("string")
        if isinstance(text, str):
            return _encode_text(text, value.get("encoding"))
        if text is None or isinstance(text, bytes | _BadBinary):
            return _vcr_body(text, f"{where}.string")
    raise _Malformed(f"{where} is neither text nor a body object")


# ---------------------------------------------------------------------------
# Content decoding (RFC 9110 §8.4.1).


def _gunzip(data: bytes) -> bytes:
    """Decompress every gzip member of ``data`` (RFC 1952); ignore trailing padding.

    Raises:
        _Malformed: the stream is corrupt or truncated.
    """
    out: list[bytes] = []
    rest = data
    while rest[:2] == _GZIP_MAGIC:
        inflater = zlib.decompressobj(wbits=31)
        try:
            out.append(inflater.decompress(rest))
        except zlib.error as exc:
            raise _Malformed(f"body starts with the gzip magic but is corrupt: {exc}") from exc
        if not inflater.eof:
            raise _Malformed("body starts with the gzip magic but is truncated")
        rest = inflater.unused_data
    return b"".join(out)


def _inflate(data: bytes) -> bytes | None:
    """Decode HTTP ``deflate`` (zlib format, RFC 1950; raw RFC 1951 as sent by some servers).

    Returns:
        The decoded bytes, or None when ``data`` is not deflate-coded (the
        recorder already decoded it).
    """
    try:
        return zlib.decompress(data)
    except zlib.error:
        pass
    try:
        inflater = zlib.decompressobj(wbits=-15)
        out = inflater.decompress(data)
    except zlib.error:
        return None
    if not inflater.eof or inflater.unused_data:
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return out
    return None  # plain text that happened to parse as raw deflate: a stale header


def _unzstd(data: bytes) -> bytes:
    """Decompress a zstd stream (RFC 8878), frames without a content size included."""
    try:
        with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)) as reader:
            return reader.read()
    except zstandard.ZstdError as exc:
        raise _Malformed(f"body starts with the zstd magic but is corrupt: {exc}") from exc


def _codings(headers: tuple[tuple[str, str], ...]) -> list[str]:
    """The content codings of every ``Content-Encoding`` field, in order, lowercased."""
    return [
        token.strip().lower()
        for value in header_values(headers, "content-encoding")
        for token in value.split(",")
        if token.strip() and token.strip().lower() != "identity"
    ]


def _content_decode(raw: bytes, headers: tuple[tuple[str, str], ...], notes: list[str]) -> bytes:
    """Undo the content codings of a recorded body, trusting the bytes over the header.

    Codings listed in ``Content-Encoding`` are undone last-applied first. A
    coding whose signature is absent (a header saying ``gzip`` over plain
    text) means the recorder already decoded the body: decoding stops there.
    Without any ``Content-Encoding``, a body starting with the gzip magic is
    still gunzipped unless its media type says it is a gzip *file*.

    Args:
        raw: the body as recorded.
        headers: the response headers.
        notes: where to note a coding that cannot be undone here.

    Returns:
        The decoded body.

    Raises:
        _Malformed: the body has a coding's signature but does not decode.
    """
    if not raw:
        return raw
    codings = _codings(headers)
    if not codings:
        media_type = (header(headers, "content-type") or "").split(";", 1)[0].strip().lower()
        if raw[:2] == _GZIP_MAGIC and media_type not in _GZIP_FILE_TYPES:
            try:
                return _gunzip(raw)
            except _Malformed:
                return raw  # binary data that merely starts with 1f 8b
        return raw
    data = raw
    for coding in reversed(codings):
        if coding in ("gzip", "x-gzip"):
            if data[:2] != _GZIP_MAGIC:
                break
            data = _gunzip(data)
        elif coding == "deflate":
            inflated = _inflate(data)
            if inflated is None:
                break
            data = inflated
        elif coding == "zstd":
            if data[:4] != _ZSTD_MAGIC:
                break
            data = _unzstd(data)
        else:
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                notes.append(
                    f"kept: body left as recorded, Content-Encoding {coding!r} not decoded"
                )
            break
    return data


# ---------------------------------------------------------------------------
# Format detection.


def _read_bytes(path: Path) -> bytes:
    """Read a whole file, turning OS errors into :class:`RecordingError`."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def _read_head(path: Path) -> bytes:
    """Read the first 64 KiB of a file, turning OS errors into :class:`RecordingError`."""
    try:
        with path.open("rb") as fh:
            return fh.read(_HEAD_SIZE)
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read: {exc.strerror or exc}") from exc


# ---------------------------------------------------------------------------
# Collecting interactions.


def _collect(
    path: Path,
    fmt: str,
    items: Iterable[object],
    convert: Callable[[object, list[str]], Exchange],
    label: Callable[[int, object], str] | None = None,
) -> Recording:
    """Convert each interaction, skipping (and describing) the malformed ones.

    Args:
        path: the file, for messages.
        fmt: the format name.
        items: the interactions, in order.
        convert: turns one interaction into an exchange, appending notes on
            kept-but-incomplete fields to its second argument.
        label: names interaction ``i`` in messages (default ``interaction i``).

    Returns:
        The recording.

    Raises:
        RecordingError: there were interactions and every one was malformed.
    """
    exchanges: list[Exchange] = []
    problems: list[str] = []
    skipped = 0
    count = 0
    for index, item in enumerate(items):
        count += 1
        name = label(index, item) if label else f"interaction {index}"
        notes: list[str] = []
        try:
            exchange = convert(item, notes)
        except _Malformed as exc:
            skipped += 1
            problems.append(f"{name}: skipped: {exc}")
            continue
        exchanges.append(exchange)
        problems.extend(f"{name}: {note}" for note in notes)
    if count and skipped == count:
        raise RecordingError(
            f"{path}: every one of the {count} interactions is malformed; first: {problems[0]}"
        )
    return Recording(path=path, format=fmt, exchanges=tuple(exchanges), problems=tuple(problems))


def _export_time(exchange: Exchange) -> str:
    """The time to write for an exchange: ``fetched_at``, else its ``Date`` header, else now."""
    for candidate in (exchange.fetched_at, exchange.recorded_at, exchange.header("date")):
        try:
            normalized = _rfc3339(candidate)
        except ValueError:
            continue
        if normalized:
            return normalized
    return datetime.now(UTC).strftime(_UTC_FORMAT)


def _reason(status: int) -> str:
    """The standard reason phrase of a status code (``""`` when unregistered)."""
    return http.client.responses.get(status, "")
