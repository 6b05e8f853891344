"""A scriptable loopback HTTP server for fault-injection tests of the fetch engine.

:class:`FaultServer` is a real HTTP/1.1 server (stdlib
``http.server.ThreadingHTTPServer``) on ``127.0.0.1``, port chosen by the OS,
serving from a daemon thread while the ``with`` block runs. Each path is
scripted with a :class:`Reply`, a list of replies (served in order, the last
one repeating: ``[503, 503, 200]``), or a function of the logged request.
Every request is logged (method, path, headers) and the server counts how many
requests it handles at once.

Faults a :class:`Reply` can play: any status and headers; a delay before the
status line (timeouts); a body trickled in small chunks (slow bodies, total
timeouts); a ``Content-Length`` larger than the body sent, then a close
(truncated bodies). Builders: :func:`retry_after`, :func:`redirect`,
:func:`gzip_bomb`, :func:`oversized`, :data:`MALFORMED_JSON`,
:data:`MALFORMED_XML`, :class:`ConditionalResource` (ETag / Last-Modified
with 304 on ``If-None-Match`` / ``If-Modified-Since``).

Bounded: a delay or trickle waits on the server's stop event, so leaving the
``with`` block wakes every handler; sockets time out after
:data:`HANDLER_TIMEOUT` seconds; a client that hangs up ends its handler.

Example::

    with FaultServer() as server:
        server.route("/feed", [Reply(503), Reply(200, body=b"ok")])
        url = server.url("/feed")
        ...
        assert server.hits("/feed") == 2
"""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import json
import socket
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from echo_archive.model import header

__all__ = [
    "HANDLER_TIMEOUT",
    "MALFORMED_JSON",
    "MALFORMED_XML",
    "ConditionalResource",
    "FakeTime",
    "FaultServer",
    "LoggedRequest",
    "Reply",
    "closed_port",
    "gzip_bomb",
    "gzipped",
    "http_date",
    "oversized",
    "redirect",
    "retry_after",
]

HANDLER_TIMEOUT = 10.0
"""Seconds a connection may sit idle before the server drops it."""

MALFORMED_JSON = b'{"items": [{"id": 1, "title": "cut'
"""A JSON document cut in the middle of a string."""

MALFORMED_XML = b'<?xml version="1.0"?><rss version="2.0"><channel><item><title>x</ti'
"""An RSS document cut in the middle of a tag."""


@dataclass(frozen=True)
class Reply:
    """One scripted response.

    Attributes:
        status: the status code.
        headers: extra response headers ``(name, value)``, in order.
        body: the body bytes (sent as is: give gzip bytes with a
            ``Content-Encoding`` header for a compressed body).
        delay: seconds to wait before the status line (a read timeout).
        trickle: ``(chunk_bytes, seconds_between_chunks)`` to send the body
            slowly, or None to send it at once.
        content_length: the ``Content-Length`` to announce (default: the body's
            length); larger than the body → the body is cut and the connection
            closed (a truncated body).
    """

    status: int = 200
    headers: Sequence[tuple[str, str]] = ()
    body: bytes = b""
    delay: float = 0.0
    trickle: tuple[int, float] | None = None
    content_length: int | None = None

    @classmethod
    def json(cls, value: Any, status: int = 200) -> Reply:
        """A JSON reply with ``Content-Type: application/json``."""
        return cls(
            status,
            headers=[("Content-Type", "application/json")],
            body=json.dumps(value).encode("utf-8"),
        )


@dataclass(frozen=True)
class LoggedRequest:
    """One request the server received.

    Attributes:
        method: the request method.
        path: the request target (path and query).
        headers: the request headers ``(name, value)`` as received, in order.
        at: ``time.monotonic()`` when the request line was read.
        body: the request body (read in full by ``Content-Length``).
    """

    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    at: float
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive: ``model.header``), or None."""
        return header(self.headers, name)


Route = Reply | Sequence[Reply] | Callable[[LoggedRequest], Reply]


def http_date(epoch: float) -> str:
    """Format POSIX seconds as an IMF-fixdate (RFC 9110 §5.6.7)."""
    return email.utils.formatdate(epoch, usegmt=True)


def retry_after(value: float | str, status: int = 429) -> Reply:
    """A 429 (or ``status``) with ``Retry-After``: seconds (an int) or an HTTP-date string."""
    text = value if isinstance(value, str) else str(int(value))
    return Reply(status, headers=[("Retry-After", text)], body=b"slow down")


def redirect(location: str, status: int = 302) -> Reply:
    """A redirect to ``location`` (absolute or relative)."""
    return Reply(status, headers=[("Location", location)])


def gzip_bomb(inflated: int) -> Reply:
    """A small gzip body (``Content-Encoding: gzip``) that inflates to ``inflated`` zero bytes.

    Built in 1 MiB steps, so even a large bomb costs little memory to make.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\0" * (1024 * 1024)
    parts = []
    left = inflated
    while left > 0:
        step = min(left, len(block))
        parts.append(compressor.compress(block[:step]))
        left -= step
    parts.append(compressor.flush())
    return Reply(
        200,
        headers=[("Content-Type", "application/octet-stream"), ("Content-Encoding", "gzip")],
        body=b"".join(parts),
    )


def gzipped(body: bytes, content_type: str = "application/json") -> Reply:
    """A 200 whose body is ``body`` gzip-compressed (``Content-Encoding: gzip``)."""
    return Reply(
        200,
        headers=[("Content-Type", content_type), ("Content-Encoding", "gzip")],
        body=gzip.compress(body),
    )


def oversized(size: int) -> Reply:
    """A 200 with ``size`` bytes of ``x`` (identity coding)."""
    return Reply(200, headers=[("Content-Type", "text/plain")], body=b"x" * size)


class ConditionalResource:
    """A resource with validators: 200 with ``ETag``/``Last-Modified``, 304 when they match.

    RFC 9110 §13.1.1: when ``If-None-Match`` names the current ETag (weak
    comparison, §8.8.3.2) or is ``*``, answer 304; §13.1.3: without
    ``If-None-Match``, answer 304 when ``If-Modified-Since`` equals the
    current Last-Modified. A 304 carries the validators (§15.4.5); set
    :attr:`not_modified_etag` to make the 304 announce a different ETag (a
    cache must then refresh what it stores).

    Attributes:
        etag: the current ETag (with quotes).
        last_modified: the current Last-Modified HTTP-date.
        body: the representation.
        not_modified_etag: an ETag to send on 304 instead of :attr:`etag`, or None.
    """

    def __init__(self, etag: str, last_modified: str, body: bytes) -> None:
        self.etag = etag
        self.last_modified = last_modified
        self.body = body
        self.not_modified_etag: str | None = None

    def __call__(self, request: LoggedRequest) -> Reply:
        validators = [("ETag", self.etag), ("Last-Modified", self.last_modified)]
        inm = request.header("if-none-match")
        ims = request.header("if-modified-since")
        if inm is not None:
            tags = [tag.strip().removeprefix("W/") for tag in inm.split(",")]
            matched = "*" in tags or self.etag.removeprefix("W/") in tags
        else:
            matched = ims is not None and ims == self.last_modified
        if matched:
            etag = self.not_modified_etag or self.etag
            return Reply(304, headers=[("ETag", etag), ("Last-Modified", self.last_modified)])
        return Reply(200, headers=[("Content-Type", "text/plain"), *validators], body=self.body)


class FakeTime:
    """A monotonic and a wall clock that move only when the code under test sleeps.

    Pass ``monotonic``, ``wall`` and ``sleep`` to the Fetcher: every delay it
    asks for is recorded in :attr:`sleeps`, advances both clocks by exactly
    that much, and really sleeps at most 10 ms (so socket I/O still happens).
    """

    def __init__(self) -> None:
        self.mono = 1000.0
        self.epoch = 1_800_000_000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        """Fake ``time.monotonic()``."""
        return self.mono

    def wall(self) -> float:
        """Fake ``time.time()``."""
        return self.epoch

    def advance(self, seconds: float) -> None:
        """Move both clocks forward."""
        self.mono += seconds
        self.epoch += seconds

    async def sleep(self, seconds: float) -> None:
        """Record ``seconds``, advance the clocks, yield to the loop briefly."""
        self.sleeps.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(min(seconds, 0.01))


def closed_port() -> int:
    """A loopback TCP port with nothing listening (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class _State:
    routes: dict[str, Route] = field(default_factory=dict)
    served: dict[str, int] = field(default_factory=dict)
    log: list[LoggedRequest] = field(default_factory=list)
    active: int = 0
    max_active: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)


class _Handler(BaseHTTPRequestHandler):
    """Plays the scripted replies (one instance per connection)."""

    protocol_version = "HTTP/1.1"
    timeout = HANDLER_TIMEOUT
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""

    def _handle(self) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        logged = LoggedRequest(
            method=self.command,
            path=self.path,
            headers=tuple((k, v) for k, v in self.headers.items()),
            at=time.monotonic(),
            body=self.rfile.read(length) if length > 0 else b"",
        )
        with state.lock:
            state.log.append(logged)
            state.active += 1
            state.max_active = max(state.max_active, state.active)
        try:
            self._play(self._reply_for(logged))
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True  # the client hung up or stalled: stop here
        finally:
            with state.lock:
                state.active -= 1

    def _reply_for(self, request: LoggedRequest) -> Reply:
        state = self.server.state
        path = request.path.split("?", 1)[0]
        with state.lock:
            route = state.routes.get(request.path, state.routes.get(path))
            key = request.path if request.path in state.routes else path
            count = state.served.get(key, 0)
            state.served[key] = count + 1
        if route is None:
            return Reply(404, headers=[("Content-Type", "text/plain")], body=b"no route")
        if isinstance(route, Reply):
            return route
        if callable(route):
            return route(request)
        replies = list(route)
        return replies[min(count, len(replies) - 1)]

    def _play(self, reply: Reply) -> None:
        stop = self.server.state.stop
        if reply.delay > 0 and stop.wait(reply.delay):
            self.close_connection = True
            return
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        body = b"" if self.command == "HEAD" else reply.body
        bodyless = reply.status in (204, 304) or 100 <= reply.status < 200
        length = reply.content_length if reply.content_length is not None else len(reply.body)
        if not bodyless:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        if bodyless:
            self.wfile.flush()
            return
        if reply.trickle is None:
            self.wfile.write(body)
        else:
            size, pause = reply.trickle
            for start in range(0, len(body), max(1, size)):
                self.wfile.write(body[start : start + size])
                self.wfile.flush()
                if stop.wait(pause):
                    break
        self.wfile.flush()
        if length > len(body) and self.command != "HEAD":
            self.close_connection = True  # announced more than sent: cut the body here

    do_GET = _handle
    do_HEAD = _handle
    do_POST = _handle
    do_PUT = _handle
    do_DELETE = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State


class FaultServer:
    """A loopback HTTP server with scripted routes (see the module docstring).

    Use as a context manager; routes may be added or replaced at any time.
    """

    def __init__(self) -> None:
        self._state = _State()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> FaultServer:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.state = self._state
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._state.stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        assert self._server is not None, "use FaultServer as a context manager"
        port: int = self._server.server_address[1]
        return port

    @property
    def authority(self) -> str:
        """``127.0.0.1:<port>``: the engine's host key for this server."""
        return f"127.0.0.1:{self.port}"

    def url(self, path: str = "/") -> str:
        """The absolute URL of ``path`` on this server."""
        return f"http://{self.authority}{path}"

    def route(self, path: str, route: Route) -> None:
        """Script ``path`` (with or without a query; an exact path+query wins).

        Args:
            path: the request path, e.g. ``"/feed"`` or ``"/feed?page=2"``.
            route: a :class:`Reply`; a sequence of replies served in order, the
                last repeating; or a function of the :class:`LoggedRequest`.
        """
        with self._state.lock:
            self._state.routes[path] = route
            self._state.served[path] = 0

    @property
    def requests(self) -> list[LoggedRequest]:
        """Every request received so far, in arrival order (a copy)."""
        with self._state.lock:
            return list(self._state.log)

    def hits(self, path: str | None = None) -> int:
        """Requests received for ``path`` (without query), or in all when None."""
        return sum(1 for r in self.requests if path is None or r.path.split("?", 1)[0] == path)

    @property
    def max_concurrent(self) -> int:
        """The most requests the server was handling at the same time."""
        with self._state.lock:
            return self._state.max_active
