"""Readers (and two writers) of recorded HTTP traffic.

A *recording* is a file of HTTP exchanges captured by some tool. Each reader
here turns one container format into :class:`~echo_archive.model.Exchange`
objects, so the replay transport, ``echoctl import`` and the tests share one
reader per format. The format is detected from the file's content, never from
its name (:func:`sniff_format`).

Formats (``Recording.format``) and the documents each reader follows:

``betamax``
    betamax / VCR JSON cassettes (betamax's ``cassette`` serializer; also the
    JSON shape of Ruby VCR and vcrpy): ``{"interactions" | "http_interactions":
    [{"request", "response", "recorded_at"}]}``. Covers github3.py's
    ``status_code`` variant, plain-string header values and ``base64_string``
    bodies.
``vcrpy-json``
    vcrpy JSON cassettes (vcrpy's ``jsonserializer``: ``{"interactions": [...],
    "version": 1}``, no ``recorded_with``; PRAW and prawcore record with it),
    read by the same reader as ``betamax``.
``ruby-vcr-json``
    Ruby VCR JSON cassettes (VCR's ``:json`` serializer: ``{"http_interactions":
    [...], "recorded_with": "VCR 6.0.0"}``), read by the same reader.
``pygithub``
    PyGithub's replay data files (``tests/ReplayData/*.txt``): 10-line records
    separated by a blank line.
``ruby-vcr``
    Ruby VCR YAML cassettes (VCR's ``:yaml`` serializer, Psych): ``!binary``
    scalars are base64.
``vcrpy``
    vcrpy YAML cassettes (vcrpy's ``yamlserializer``); ``!!binary`` is the YAML
    1.1 binary type (base64).
``exvcr``
    Elixir ExVCR JSON cassettes: a top-level list of ``{"request", "response"}``.
``har``
    HAR 1.2 (W3C Web Performance WG draft "HTTP Archive (HAR) format",
    http://www.softwareishard.com/blog/har-12-spec/).
``warc``
    WARC 1.0 / 1.1 (ISO 28500:2009, ISO 28500:2017), plain or record-gzipped,
    read with ``warcio``; ``response`` records paired with their ``request``
    records.

Bodies are content-decoded here (RFC 9110 §8.4; HAR bodies are decoded by
definition already). The gzip magic ``1f 8b`` is sniffed rather than trusting
``Content-Encoding`` alone, because recorders often store the decoded body and
keep the stale header (vcrpy 2024 files), and sometimes store the gzip bytes
(github3.py, vcrpy 2022 files). Headers are kept exactly as recorded,
``Content-Encoding`` included.

Leniency (the GH Archive advice): an interaction that cannot be read is skipped
and described in ``Recording.problems``; only a file that is not a recording
at all, or whose every interaction is malformed, raises
:class:`~echo_archive.errors.RecordingError`.
"""

from __future__ import annotations

import ast
import base64
import binascii
import email.utils
import http.client
import io
import json
import re
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

import yaml
import zstandard
from warcio.archiveiterator import ArchiveIterator
from warcio.bufferedreaders import ChunkedDataReader
from warcio.exceptions import ArchiveLoadFailed
from warcio.statusandheaders import StatusAndHeaders, StatusAndHeadersParser
from warcio.warcwriter import WARCWriter

from echo_archive import __version__
from echo_archive.errors import ParseError, RecordingError
from echo_archive.jsondecode import decode_json
from echo_archive.model import Exchange, header, header_values

__all__ = [
    "FORMATS",
    "DetectedRecording",
    "Recording",
    "detect_recording",
    "iter_exchanges",
    "read_betamax",
    "read_exvcr",
    "read_har",
    "read_pygithub",
    "read_recording",
    "read_ruby_vcr",
    "read_vcrpy",
    "read_warc",
    "sniff_format",
    "write_har",
    "write_warc",
]

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


def _sniff_head(head: bytes) -> str | None:
    """Classify a file by its first bytes: ``warc``, ``pygithub``, ``json``, ``yaml`` or None."""
    if head[:2] == _GZIP_MAGIC:
        try:
            start = zlib.decompressobj(wbits=31).decompress(head, 16)
        except zlib.error:
            return None
        return "warc" if start.startswith(b"WARC/") else None
    text = head.removeprefix(_BOM).lstrip()
    if text.startswith(b"WARC/"):
        return "warc"
    if text[:1] in (b"{", b"[") or _JSON_SCALAR_RE.fullmatch(text):
        return "json"
    if _looks_like_pygithub(head.removeprefix(_BOM)):
        return "pygithub"
    if _YAML_KEY_RE.search(head):
        return "yaml"
    return None


def _classify_json(doc: object) -> tuple[str | None, str]:
    """Tell which JSON recording format a parsed document is (or why it is none)."""
    if isinstance(doc, Mapping):
        log = doc.get("log")
        if isinstance(log, Mapping) and isinstance(log.get("entries"), list):
            return "har", ""
        if isinstance(doc.get("http_interactions"), list):
            recorder = doc.get("recorded_with")
            if isinstance(recorder, str) and recorder.startswith("VCR"):
                return "ruby-vcr-json", ""  # Ruby VCR's :json serializer ("VCR 6.0.0")
            return "betamax", ""
        if isinstance(doc.get("interactions"), list):
            if "version" in doc and "recorded_with" not in doc:
                return "vcrpy-json", ""  # vcrpy's jsonserializer ({"interactions", "version": 1})
            return "betamax", ""
        keys = ", ".join(sorted(str(key) for key in doc)[:8])
        return None, (
            "a JSON object without 'interactions', 'http_interactions' or 'log.entries'"
            f" (keys: {keys})"
        )
    if isinstance(doc, list):
        if any(
            isinstance(item, Mapping)
            and isinstance(item.get("request"), Mapping)
            and isinstance(item.get("response"), Mapping)
            for item in doc
        ):
            return "exvcr", ""
        return None, "a JSON list with no {request, response} objects"
    return None, f"a JSON {type(doc).__name__}, not an object or a list"


def _classify_yaml(doc: object) -> tuple[str | None, str]:
    """Tell which YAML recording format a parsed document is (or why it is none)."""
    if isinstance(doc, Mapping):
        if isinstance(doc.get("http_interactions"), list):
            return "ruby-vcr", ""
        if isinstance(doc.get("interactions"), list):
            return "vcrpy", ""
    return None, "a YAML document without an 'interactions' or 'http_interactions' list"


def _parse_json(path: Path, data: bytes) -> object:
    """Parse a JSON recording (:func:`~echo_archive.jsondecode.decode_json`, no size limit).

    Raises:
        RecordingError: the file is not JSON (the decoder's message, with its position).
    """
    try:
        return decode_json(data, str(path), max_bytes=None)
    except ParseError as exc:
        where = f" at {exc.position}" if exc.position else ""
        raise RecordingError(
            f"{path}: not a recognized recording: invalid JSON{where}: {exc.message}"
        ) from exc


def _parse_yaml(path: Path, data: bytes) -> object:
    """Parse YAML with the safe loader (plus ``!binary``) or raise :class:`RecordingError`."""
    try:
        return yaml.load(data, Loader=_RecordingLoader)  # noqa: S506 - a SafeLoader subclass
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise RecordingError(f"{path}: not a recognized recording: invalid YAML: {exc}") from exc


def _detect(path: Path) -> tuple[str | None, object, str]:
    """Detect a file's recording format by content.

    Args:
        path: the file.

    Returns:
        ``(format, document, why)``: the format (None when unrecognized), the
        parsed JSON/YAML document or the raw bytes of a PyGithub file (None
        for a WARC, which is streamed), and why the file is unrecognized.

    Raises:
        RecordingError: the file cannot be read, or is invalid JSON / YAML.
    """
    head = _read_head(path)
    kind = _sniff_head(head)
    if kind == "warc":
        return "warc", None, ""
    if kind is None:
        if not head:
            return None, None, "the file is empty"
        return (
            None,
            None,
            (
                "neither JSON, a YAML cassette, PyGithub replay text nor WARC"
                f" (starts with {head[:32]!r})"
            ),
        )
    data = _read_bytes(path)
    if kind == "pygithub":
        return "pygithub", data, ""
    if kind == "json":
        doc = _parse_json(path, data)
        fmt, why = _classify_json(doc)
        return fmt, doc, why
    doc = _parse_yaml(path, data)
    fmt, why = _classify_yaml(doc)
    return fmt, doc, why


@dataclass(frozen=True)
class DetectedRecording:
    """A file whose recording format was detected once, ready to be read without parsing it again.

    Attributes:
        path: the file.
        format: one of :data:`FORMATS`, or None when the file is not a recording.
        why: why the file is not a recording (plain words, without the path),
            or ``""`` when it is one.
    """

    path: Path
    format: str | None
    why: str
    _document: object = field(default=None, repr=False, compare=False)

    def exchanges(self, problems: list[str] | None = None) -> Iterator[Exchange]:
        """Yield the recording's exchanges in order (a WARC streamed record by record).

        The JSON/YAML document parsed to detect the format is read, not parsed again.

        Args:
            problems: if given, per-interaction problems are appended to it.

        Raises:
            RecordingError: the file is not a recording
                (``"<path>: not a recognized recording: <why>"``), or every one
                of its interactions is malformed.
        """
        sink: list[str] = problems if problems is not None else []
        if self.format is None:
            raise RecordingError(f"{self.path}: not a recognized recording: {self.why}")
        if self.format == "warc":
            yield from _iter_warc(self.path, sink)
            return
        recording = _read_detected(self.path, self.format, self._document)
        sink.extend(recording.problems)
        yield from recording.exchanges


def detect_recording(path: Path) -> DetectedRecording:
    """Detect a file's recording format from its content, parsing it once.

    WARC and PyGithub files are recognized from their first 64 KiB; JSON and
    YAML documents are parsed (once: :meth:`DetectedRecording.exchanges`
    reads the parsed document) to look at their structure. A file that is
    not JSON/YAML that parses is not a recording (``format`` None and the
    parser's message in ``why``), not an error.

    Args:
        path: the file.

    Returns:
        The detection.

    Raises:
        RecordingError: the file cannot be read.
    """
    path = Path(path)
    prefix = f"{path}: not a recognized recording: "
    try:
        fmt, doc, why = _detect(path)
    except RecordingError as exc:
        text = str(exc)
        if not text.startswith(prefix):
            raise
        return DetectedRecording(path, None, text[len(prefix) :])
    return DetectedRecording(path, fmt, why, doc)


def sniff_format(path: Path) -> str | None:
    """Detect the recording format of a file from its content (see :func:`detect_recording`).

    Args:
        path: the file.

    Returns:
        One of :data:`FORMATS`, or None when the file is not a recording (or
        is JSON/YAML that does not parse).

    Raises:
        RecordingError: the file cannot be read.
    """
    return detect_recording(path).format


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


def _yaml_vcr(path: Path, doc: object, fmt: str) -> Recording:
    """Read a parsed Ruby VCR (``http_interactions``) or vcrpy (``interactions``) YAML cassette."""
    key = "http_interactions" if fmt == "ruby-vcr" else "interactions"
    items = doc.get(key) if isinstance(doc, Mapping) else None
    if not isinstance(items, list):
        raise RecordingError(f"{path}: not a {fmt} cassette: no {key!r} list")
    return _collect(path, fmt, items, _vcr_exchange)


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


# ---------------------------------------------------------------------------
# WARC.


@dataclass(slots=True)
class _WarcRequest:
    """What a WARC ``request`` record contributes to an exchange."""

    record_id: str
    concurrent_to: tuple[str, ...]
    url: str
    method: str
    headers: tuple[tuple[str, str], ...]


@dataclass(slots=True)
class _WarcResponse:
    """A WARC ``response`` record read in full, waiting for its request."""

    index: int
    record_id: str
    concurrent_to: tuple[str, ...]
    url: str
    exchange: Exchange | None
    problem: str = ""
    notes: list[str] = field(default_factory=list)


def _target_uri(record: Any) -> str:
    """Return a record's ``WARC-Target-URI`` (WARC 1.0's ``<...>`` form unwrapped)."""
    uri = str(record.rec_headers.get_header("WARC-Target-URI") or "").strip()
    if uri.startswith("<") and uri.endswith(">"):
        uri = uri[1:-1]
    return uri


def _concurrent_to(record: Any) -> tuple[str, ...]:
    """Return every ``WARC-Concurrent-To`` record id (the field may repeat)."""
    return tuple(
        value.strip() for value in header_values(record.rec_headers.headers, "warc-concurrent-to")
    )


def _warc_request(record: Any) -> _WarcRequest:
    """Read a WARC ``request`` record's method and headers (its body is not kept)."""
    http_headers = record.http_headers
    method = ""
    headers: tuple[tuple[str, str], ...] = ()
    if http_headers is not None:
        method = str(http_headers.protocol or "").strip().upper()
        headers = tuple((str(k), str(v)) for k, v in http_headers.headers)
    return _WarcRequest(
        record_id=str(record.rec_headers.get_header("WARC-Record-ID") or ""),
        concurrent_to=_concurrent_to(record),
        url=_target_uri(record),
        method=method,
        headers=headers,
    )


def _warc_response(record: Any, index: int) -> _WarcResponse:
    """Read a WARC ``response`` record: status line, headers, de-chunked decoded payload."""
    pending = _WarcResponse(
        index=index,
        record_id=str(record.rec_headers.get_header("WARC-Record-ID") or ""),
        concurrent_to=_concurrent_to(record),
        url=_target_uri(record),
        exchange=None,
    )
    try:
        http_headers = record.http_headers
        if http_headers is None:
            raise _Malformed("no HTTP status line and headers in the record block")
        code = str(http_headers.get_statuscode() or "").strip()
        status = _status(code, "HTTP status")
        headers = tuple((str(k), str(v)) for k, v in http_headers.headers)
        stream = record.raw_stream
        if "chunked" in (header(headers, "transfer-encoding") or "").lower():
            stream = ChunkedDataReader(stream)
        raw = stream.read()
        record.raw_stream.read()  # whatever follows the last chunk
        missing = getattr(record.raw_stream, "limit", 0)
        if isinstance(missing, int) and missing > 0:
            raise _Malformed(f"the record is truncated ({missing} bytes of its block missing)")
        body = _content_decode(raw, headers, pending.notes)
        recorded_at = _timestamp(record.rec_headers.get_header("WARC-Date"), pending.notes)
        if not pending.url:
            raise _Malformed("no WARC-Target-URI")
    except _Malformed as exc:
        pending.problem = str(exc)
        return pending
    pending.exchange = Exchange(
        method="GET",
        url=pending.url,
        status=status,
        headers=headers,
        body=body,
        final_url=pending.url,
        fetched_at=recorded_at or "",
        recorded_at=recorded_at,
    )
    return pending


def _pairs(response: _WarcResponse, request: _WarcRequest) -> bool:
    """Whether a request record belongs to a response record.

    ``WARC-Concurrent-To`` (ISO 28500 §5.7) links them either way; without it
    the request of the same target URI that is adjacent in file order is taken.
    """
    if response.record_id and response.record_id in request.concurrent_to:
        return True
    if request.record_id and request.record_id in response.concurrent_to:
        return True
    return (
        not request.concurrent_to and not response.concurrent_to and (request.url == response.url)
    )


def _finish(response: _WarcResponse, request: _WarcRequest | None) -> Exchange:
    """Combine a response with its request (method, URL, request headers)."""
    assert response.exchange is not None
    if request is None:
        return response.exchange
    exchange = response.exchange
    return Exchange(
        method=request.method or exchange.method,
        url=request.url or exchange.url,
        status=exchange.status,
        headers=exchange.headers,
        body=exchange.body,
        final_url=exchange.final_url,
        fetched_at=exchange.fetched_at,
        request_headers=request.headers,
        recorded_at=exchange.recorded_at,
    )


def _iter_warc(path: Path, problems: list[str]) -> Iterator[Exchange]:
    """Stream the exchanges of a WARC file, one record in memory at a time.

    A ``response`` record is held until the next record arrives, so a
    ``request`` record written after it (warcio, wpull) can be paired; a
    request written before it (wget, Heritrix) is remembered (the last 256
    unpaired ones). Without any request the method is taken to be ``GET``.

    Args:
        path: the WARC file (``.warc`` or record-gzipped ``.warc.gz``).
        problems: where to append per-record problems.

    Yields:
        The exchanges, in file order.

    Raises:
        RecordingError: the file cannot be opened, or every response record
            in it is malformed.
    """
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    emitted = 0
    skipped = 0
    seen = 0
    first = len(problems)  # the caller's list may hold earlier problems
    requests: OrderedDict[int, _WarcRequest] = OrderedDict()
    pending: _WarcResponse | None = None

    def flush(response: _WarcResponse, request: _WarcRequest | None) -> Exchange | None:
        nonlocal skipped
        name = f"record {response.index}"
        if response.exchange is None:
            skipped += 1
            problems.append(f"{name}: skipped: {response.problem}")
            return None
        problems.extend(f"{name}: {note}" for note in response.notes)
        return _finish(response, request)

    def take_request(response: _WarcResponse) -> _WarcRequest | None:
        for key, request in reversed(requests.items()):
            if _pairs(response, request):
                del requests[key]
                return request
        return None

    with fh:
        index = -1
        try:
            for index, record in enumerate(ArchiveIterator(fh)):
                rec_type = record.rec_type
                if rec_type == "request":
                    request = _warc_request(record)
                    if pending is not None and _pairs(pending, request):
                        done = flush(pending, request)
                        pending = None
                        if done is not None:
                            emitted += 1
                            yield done
                        continue
                    requests[index] = request
                    while len(requests) > _WARC_REQUEST_MEMORY:
                        requests.popitem(last=False)
                    continue
                if pending is not None:
                    done = flush(pending, take_request(pending))
                    pending = None
                    if done is not None:
                        emitted += 1
                        yield done
                if rec_type is None:
                    seen += 1
                    skipped += 1
                    problems.append(f"record {index}: skipped: no WARC-Type (a cut record?)")
                elif rec_type == "revisit":
                    seen += 1
                    skipped += 1
                    problems.append(
                        f"record {index}: skipped: a revisit record (its payload is in"
                        " another capture)"
                    )
                elif rec_type == "response":
                    url = _target_uri(record)
                    if url and not url.lower().startswith(("http:", "https:")):
                        continue  # dns:, whois:... responses are not HTTP exchanges
                    seen += 1
                    pending = _warc_response(record, index)
                    earlier = take_request(pending)
                    if earlier is not None:
                        done = flush(pending, earlier)
                        pending = None
                        if done is not None:
                            emitted += 1
                            yield done
        except (ArchiveLoadFailed, EOFError, ValueError, OSError, zlib.error) as exc:
            problems.append(f"record {index + 1}: unreadable, stopped reading the file: {exc}")
            skipped += 1
        if pending is not None:
            done = flush(pending, take_request(pending))
            if done is not None:
                emitted += 1
                yield done
    if not emitted and skipped:
        raise RecordingError(
            f"{path}: every one of the {seen} response records is malformed;"
            f" first: {problems[first]}"
        )


# ---------------------------------------------------------------------------
# Public readers.


def _read_detected(path: Path, fmt: str, doc: object) -> Recording:
    """Dispatch a detected, already parsed file to its reader."""
    if fmt in _JSON_VCR_FORMATS:
        return _betamax(path, doc, fmt)
    if fmt in ("ruby-vcr", "vcrpy"):
        return _yaml_vcr(path, doc, fmt)
    if fmt == "exvcr":
        return _exvcr(path, doc)
    if fmt == "har":
        return _har(path, doc)
    if fmt == "pygithub":
        assert isinstance(doc, bytes)
        return _pygithub(path, doc)
    problems: list[str] = []
    exchanges = tuple(_iter_warc(path, problems))
    return Recording(path=path, format="warc", exchanges=exchanges, problems=tuple(problems))


def _read_as(path: Path, expected: str) -> Recording:
    """Detect a file's format, insist it is ``expected``, and read it."""
    fmt, doc, why = _detect(path)
    if fmt != expected and not (expected == "betamax" and fmt in _JSON_VCR_FORMATS):
        found = f"it is {fmt}" if fmt else why
        raise RecordingError(f"{path}: not a {expected} recording: {found}")
    return _read_detected(path, fmt, doc)


def read_recording(path: Path) -> Recording:
    """Read any supported recording, detecting its format from the content.

    Args:
        path: the recording file.

    Returns:
        The recording: format, exchanges and per-interaction problems.

    Raises:
        RecordingError: the file cannot be read, is not a recognized recording
            (``"<path>: not a recognized recording: <why>"``), or every one of
            its interactions is malformed.
    """
    path = Path(path)
    fmt, doc, why = _detect(path)
    if fmt is None:
        raise RecordingError(f"{path}: not a recognized recording: {why}")
    return _read_detected(path, fmt, doc)


def iter_exchanges(path: Path, problems: list[str] | None = None) -> Iterator[Exchange]:
    """Yield a recording's exchanges one by one; a WARC is streamed record by record.

    Other formats are parsed whole (they are single JSON/YAML/text documents)
    and then yielded. Errors surface when iteration starts. To detect the
    format and read the file without parsing it twice, use
    :func:`detect_recording` and :meth:`DetectedRecording.exchanges`.

    Args:
        path: the recording file.
        problems: if given, per-interaction problems are appended to it.

    Yields:
        The exchanges, in recording order.

    Raises:
        RecordingError: as :func:`read_recording`.
    """
    yield from detect_recording(Path(path)).exchanges(problems)


def read_betamax(path: Path) -> Recording:
    """Read a betamax / VCR JSON cassette.

    Format (betamax ``cassette`` serializer, also VCR's JSON shape)::

        {"interactions" | "http_interactions": [
           {"recorded_at": "2016-03-22T05:49:01",
            "request":  {"method", "uri", "headers": {name: [values]}, "body"},
            "response": {"status": {"code", "message"} | "status_code": 200,
                         "headers": {name: [values] | "value"},
                         "body": {"encoding", "string"} | {"base64_string"},
                         "url"}}]}

    ``base64_string`` bodies are decoded, then gunzipped when they are gzip.

    Args:
        path: the cassette.

    Returns:
        The recording (format ``betamax``).

    Raises:
        RecordingError: the file is not such a cassette, or every interaction
            is malformed.
    """
    return _read_as(Path(path), "betamax")


def read_pygithub(path: Path) -> Recording:
    """Read a PyGithub replay data file (``tests/ReplayData/*.txt``).

    Format: records of 10 lines separated by a blank line: scheme, METHOD,
    host, port (``None`` or digits), ``path?query``, request headers as a
    Python dict repr, request body (``None`` or JSON), status, response
    headers as a Python list-of-tuples repr (read with ``ast.literal_eval``,
    never ``eval``), and the decoded response body on one line (maybe empty).
    The ``('status', '200 OK')`` pseudo-header of old files is dropped. The
    format records no time, so ``recorded_at`` is None.

    Args:
        path: the replay file.

    Returns:
        The recording (format ``pygithub``).

    Raises:
        RecordingError: the file is not such a file, or every record is malformed.
    """
    return _read_as(Path(path), "pygithub")


def read_ruby_vcr(path: Path) -> Recording:
    """Read a Ruby VCR YAML cassette.

    Format (VCR's ``:yaml`` serializer)::

        http_interactions:
        - request: {method: get, uri, body: {encoding, string}, headers: {name: [values]}}
          response: {status: {code, message}, headers: {name: [values]},
                     body: {encoding, string | !binary base64}}
          recorded_at: Thu, 15 Feb 2024 15:06:19 GMT
        recorded_with: VCR 6.1.0

    Parsed with a ``yaml.SafeLoader`` subclass that adds one constructor, for
    Psych's ``!binary`` tag (base64 to bytes).

    Args:
        path: the cassette.

    Returns:
        The recording (format ``ruby-vcr``).

    Raises:
        RecordingError: the file is not such a cassette, or every interaction
            is malformed.
    """
    return _read_as(Path(path), "ruby-vcr")


def read_vcrpy(path: Path) -> Recording:
    """Read a vcrpy YAML cassette.

    Format (vcrpy ``yamlserializer``)::

        interactions:
        - request: {body, headers: {name: [values]}, method: GET, uri}
          response: {body: {string: text | !!binary gzip}, headers: {name: [values]},
                     status: {code, message}}
        version: 1

    ``!!binary`` bodies (YAML 1.1 binary) are gzip bytes in some files; others
    hold decoded text under a stale ``Content-Encoding: gzip``. Both are
    handled by sniffing the gzip magic. vcrpy records no time.

    Args:
        path: the cassette.

    Returns:
        The recording (format ``vcrpy``).

    Raises:
        RecordingError: the file is not such a cassette, or every interaction
            is malformed.
    """
    return _read_as(Path(path), "vcrpy")


def read_exvcr(path: Path) -> Recording:
    """Read an Elixir ExVCR JSON cassette.

    Format: a top-level JSON list of ``{"request": {"url", "method",
    "headers", "body"}, "response": {"status_code", "headers", "body",
    "type"}}``. ExVCR records no time.

    Args:
        path: the cassette.

    Returns:
        The recording (format ``exvcr``).

    Raises:
        RecordingError: the file is not such a cassette, or every interaction
            is malformed.
    """
    return _read_as(Path(path), "exvcr")


def read_har(path: Path) -> Recording:
    """Read a HAR 1.2 file (W3C Web Performance WG draft "HTTP Archive (HAR) format").

    Each ``log.entries[]`` entry becomes an exchange; ``startedDateTime`` is
    its ``recorded_at`` and ``time`` (ms) its ``elapsed``. Entries with status
    0 (no response) are skipped as problems.

    Args:
        path: the HAR file.

    Returns:
        The recording (format ``har``).

    Raises:
        RecordingError: the file is not HAR, or every entry is malformed.
    """
    return _read_as(Path(path), "har")


def read_warc(path: Path) -> Recording:
    """Read a WARC 1.0 / 1.1 file (ISO 28500:2009 / ISO 28500:2017) in full.

    Each HTTP ``response`` record becomes an exchange, paired with its
    ``request`` record (``WARC-Concurrent-To``, else adjacency and target
    URI) for the method and request headers. ``WARC-Date`` is
    ``recorded_at``; the payload is de-chunked and content-decoded. Revisit
    records are skipped as problems; non-HTTP responses (``dns:``) are
    ignored. Use :func:`iter_exchanges` to stream a large file instead.

    Args:
        path: the WARC file (plain or record-gzipped).

    Returns:
        The recording (format ``warc``).

    Raises:
        RecordingError: the file is not a WARC, or every response record is
            malformed.
    """
    return _read_as(Path(path), "warc")


# ---------------------------------------------------------------------------
# Writers.


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


def _wire_body(exchange: Exchange) -> bytes:
    """Re-apply the codings the headers declare, so a WARC payload matches its headers.

    ``Content-Encoding`` gzip / deflate / zstd are re-applied (other codings
    cannot be produced here and the body is written as is), then
    ``Transfer-Encoding: chunked`` framing (RFC 9112 §7.1) as one chunk. An
    empty body stays empty.
    """
    data = exchange.body
    if data:
        for coding in _codings(exchange.headers):
            if coding in ("gzip", "x-gzip"):
                compressor = zlib.compressobj(wbits=31)
                data = compressor.compress(data) + compressor.flush()
            elif coding == "deflate":
                data = zlib.compress(data)
            elif coding == "zstd":
                data = zstandard.ZstdCompressor().compress(data)
            else:
                break
    if "chunked" in (exchange.header("transfer-encoding") or "").lower():
        data = (f"{len(data):x}\r\n".encode() + data + b"\r\n" if data else b"") + b"0\r\n\r\n"
    return data


def write_warc(exchanges: Iterable[Exchange], path: Path) -> None:
    """Write exchanges as WARC 1.1 (ISO 28500:2017) request/response record pairs.

    For each exchange a ``response`` record (``Content-Type:
    application/http;msgtype=response``, target ``final_url``) is written,
    then its ``request`` record (``application/http;msgtype=request``, target
    ``url``, ``WARC-Concurrent-To`` the response). ``WARC-Date`` is
    ``fetched_at`` (else the ``Date`` header, else now). The HTTP payload is
    re-encoded to match the recorded ``Content-Encoding`` and
    ``Transfer-Encoding``, so the record is what a client would have received.
    Request bodies are not kept by :class:`Exchange` and are written empty.
    A ``.gz`` file name gives a record-gzipped ``.warc.gz``.

    Args:
        exchanges: the exchanges, in order.
        path: the file to write (replaced if it exists).

    Raises:
        RecordingError: the file cannot be written.
    """
    path = Path(path)
    try:
        with path.open("wb") as fh:
            writer = WARCWriter(fh, gzip=path.name.endswith(".gz"), warc_version="1.1")
            for exchange in exchanges:
                date = _export_time(exchange)  # WARC 1.1 §5.4 allows microseconds
                response_id = StatusAndHeadersParser.make_warc_id()
                payload = _wire_body(exchange)
                status_line = f"{exchange.status} {_reason(exchange.status)}".rstrip()
                response = writer.create_warc_record(
                    exchange.final_url or exchange.url,
                    "response",
                    payload=io.BytesIO(payload),
                    length=len(payload),
                    warc_content_type="application/http;msgtype=response",
                    warc_headers_dict={"WARC-Record-ID": response_id, "WARC-Date": date},
                    http_headers=StatusAndHeaders(
                        status_line, list(exchange.headers), protocol="HTTP/1.1"
                    ),
                )
                writer.write_record(response)
                parts = urlsplit(exchange.url)
                target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
                request = writer.create_warc_record(
                    exchange.url,
                    "request",
                    warc_content_type="application/http;msgtype=request",
                    warc_headers_dict={"WARC-Date": date, "WARC-Concurrent-To": response_id},
                    http_headers=StatusAndHeaders(
                        f"{exchange.method} {target} HTTP/1.1",
                        list(exchange.request_headers),
                        is_http_request=True,
                    ),
                )
                writer.write_record(request)
    except OSError as exc:
        raise RecordingError(f"{path}: cannot write: {exc.strerror or exc}") from exc
