"""WARC 1.0 / 1.1 (``warc``, ISO 28500).

The streaming reader (``response`` records paired with their ``request`` records) and
:func:`write_warc`.
"""

from __future__ import annotations

import io
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import zstandard
from warcio.archiveiterator import ArchiveIterator
from warcio.bufferedreaders import ChunkedDataReader
from warcio.exceptions import ArchiveLoadFailed
from warcio.statusandheaders import StatusAndHeaders, StatusAndHeadersParser
from warcio.warcwriter import WARCWriter

from echo_archive.errors import RecordingError
from echo_archive.harvest.recordings._common import (
    _WARC_REQUEST_MEMORY,
    _codings,
    _content_decode,
    _export_time,
    _Malformed,
    _reason,
    _status,
    _timestamp,
)
from echo_archive.model import Exchange, header, header_values

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

    The records are :func:`write_records`'. A ``.gz`` file name gives a
    record-gzipped ``.warc.gz``.

    Args:
        exchanges: the exchanges, in order.
        path: the file to write (replaced if it exists).

    Raises:
        RecordingError: the file cannot be written.
    """
    path = Path(path)
    try:
        with path.open("wb") as fh:
            write_records(exchanges, fh, gzip=path.name.endswith(".gz"))
    except OSError as exc:
        raise RecordingError(f"{path}: cannot write: {exc.strerror or exc}") from exc


def write_records(
    exchanges: Iterable[Exchange], fh: BinaryIO, *, gzip: bool = False, requests: bool = True
) -> None:
    """Write exchanges to ``fh`` as WARC 1.1 (ISO 28500:2017) records.

    For each exchange a ``response`` record (``Content-Type:
    application/http;msgtype=response``, target ``final_url``) is written,
    then (with ``requests``) its ``request`` record
    (``application/http;msgtype=request``, target ``url``,
    ``WARC-Concurrent-To`` the response). ``WARC-Date`` is ``fetched_at``
    (else the ``Date`` header, else now). The HTTP payload is re-encoded to
    match the recorded ``Content-Encoding`` and ``Transfer-Encoding``, so
    the record is what a client would have received. Request bodies are not
    kept by :class:`Exchange` and are written empty.

    Args:
        exchanges: the exchanges, in order.
        fh: a binary stream to write to.
        gzip: compress each record (a ``.warc.gz``).
        requests: write each exchange's ``request`` record too.

    Raises:
        OSError: ``fh`` cannot be written.
    """
    writer = WARCWriter(fh, gzip=gzip, warc_version="1.1")
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
            http_headers=StatusAndHeaders(status_line, list(exchange.headers), protocol="HTTP/1.1"),
        )
        writer.write_record(response)
        if not requests:
            continue
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
