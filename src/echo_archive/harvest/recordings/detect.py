"""Detecting a recording's format from its content, never its name.

Also the public readers, which dispatch to each format's module.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from echo_archive.errors import ParseError, RecordingError
from echo_archive.harvest.recordings._common import (
    _BOM,
    _GZIP_MAGIC,
    _JSON_SCALAR_RE,
    _YAML_KEY_RE,
    Recording,
    _read_bytes,
    _read_head,
    _RecordingLoader,
)
from echo_archive.harvest.recordings.betamax import _JSON_VCR_FORMATS, _betamax
from echo_archive.harvest.recordings.exvcr import _exvcr
from echo_archive.harvest.recordings.har import _har
from echo_archive.harvest.recordings.pygithub import _looks_like_pygithub, _pygithub
from echo_archive.harvest.recordings.vcr_yaml import _yaml_vcr
from echo_archive.harvest.recordings.warc import _iter_warc
from echo_archive.jsondecode import decode_json
from echo_archive.model import Exchange


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
