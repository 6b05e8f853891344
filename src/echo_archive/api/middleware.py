"""The HTTP API's edge: limits, security headers, CORS, compression, timing, logs, metrics.

:func:`install` wraps the service's application in, from the outside in:

1. :class:`EdgeMiddleware`, on every response:

   * ``X-Request-ID`` (:func:`~echo_archive.api.deps.scope_request_id`: the
     client's when well formed, else a new one);
   * ``Server-Timing: app;dur=<ms>`` (W3C Server Timing, the
     ``server-timing`` header's ``dur`` parameter in milliseconds) and
     ``X-Process-Time: <seconds>``, measured to the start of the response;
   * security headers (:data:`SECURITY_HEADERS`): ``Content-Security-Policy:
     default-src 'none'; frame-ancestors 'none'`` (CSP Level 3; the API
     serves data, never pages, so nothing may load, run or frame it;
     a route that sets its own CSP, such as a capture body's ``sandbox``,
     keeps it untouched: never weakened, and a page a route serves on
     purpose, such as API docs served with no CDN, sets the CSP it needs),
     ``X-Content-Type-Options: nosniff`` (Fetch Standard), ``Referrer-Policy:
     no-referrer`` (W3C Referrer Policy), ``X-Frame-Options: DENY`` (RFC
     7034, for browsers without ``frame-ancestors``),
     ``Cross-Origin-Resource-Policy: same-origin`` (Fetch Standard, CORP);
     ``Strict-Transport-Security: max-age=31536000`` (RFC 6797) only on a
     response over TLS (``scope["scheme"] == "https"``): RFC 6797 §7.2 says
     a server must not send it over plain HTTP;
   * one structured access-log event ``http.request`` (structlog): method,
     route template (``/v1/items/{ref}``, never the raw path), status,
     ``duration_s``, ``request_id``, ``client`` and the principal
     (``key:<name>`` / ``user:<name>``) when the request authenticated; never
     a header, a cookie, a credential or a query string;
   * per-route metrics through ``observe(route, method, status, seconds)``
     (the service's ``echo_http_requests_total`` and
     ``echo_http_request_duration_seconds``), labelled by route template and
     a known method only, so their cardinality is bounded by the routes.

2. :class:`RateLimitMiddleware`: ``[api] rate_limit`` requests a minute per
   client (:mod:`echo_archive.api.ratelimit`); past it **429** (RFC 6585 §4)
   with ``Retry-After`` and the draft RateLimit fields. ``/healthz`` is exempt.
   A WebSocket handshake counts as one request (refused: 429, or close 1013).
3. Starlette's ``CORSMiddleware`` over ``[api] cors_origins`` (none by
   default: no ``Access-Control-Allow-Origin`` for anyone, and preflights
   are refused).
4. :class:`BodyLimitMiddleware`: ``[api] max_body`` bytes; a larger
   ``Content-Length`` is **413** before the body is read, and a chunked body
   is counted as it arrives and cut off at the limit (**413**, RFC 9110
   §15.5.14); a malformed ``Content-Length`` is 400 (RFC 9112 §6.3). More
   than :data:`MAX_HEADERS` header fields or :data:`MAX_HEADER_BYTES` of
   them is **431** (RFC 6585 §5).
5. Starlette's ``GZipMiddleware`` (``gzip`` when the client accepts it and
   the body is at least :data:`GZIP_MINIMUM` bytes). It leaves
   ``text/event-stream`` alone (the installed Starlette excludes it by
   default) and compresses other streamed bodies chunk by chunk with a
   ``Z_SYNC_FLUSH`` after each, so nothing streamed is held back.

Header limits, two of them: uvicorn's h11 (``echoctl serve`` runs uvicorn
with ``http="h11"`` and ``h11_max_incomplete_event_size`` =
:data:`MAX_HEADER_BYTES`) holds at most that much of a request line and
headers not yet complete (more is a 400 and the connection closes: a
slowloris's buffer stays bounded); a complete block that came in one read is
then held to :data:`MAX_HEADERS` fields and :data:`MAX_HEADER_BYTES` bytes
here (431).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Final

import structlog
from fastapi import FastAPI, HTTPException
from starlette.datastructures import MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from echo_archive.api.deps import ApiContext, scope_request_id
from echo_archive.api.ratelimit import ClientKeys, RateLimiter, client_address
from echo_archive.api.session import CSRF_HEADER, SESSION_COOKIE

__all__ = [
    "CSP",
    "GZIP_MINIMUM",
    "HSTS",
    "MAX_HEADER_BYTES",
    "METHODS",
    "SECURITY_HEADERS",
    "BodyLimitMiddleware",
    "EdgeMiddleware",
    "Observer",
    "RateLimitMiddleware",
    "install",
]

CSP: Final = "default-src 'none'; frame-ancestors 'none'"
"""The Content-Security-Policy of every response that sets none itself."""

SECURITY_HEADERS: Final[tuple[tuple[str, str], ...]] = (
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cross-origin-resource-policy", "same-origin"),
)
"""Added to every response that lacks them (a route's own value is kept)."""

HSTS: Final = "max-age=31536000"
"""``Strict-Transport-Security`` over TLS: one year (RFC 6797 §6.1.1)."""

GZIP_MINIMUM: Final = 1024
"""Bytes a body needs at least to be compressed (smaller ones gain nothing)."""

MAX_HEADER_BYTES: Final = 16 * 1024
"""Bytes of request line and headers uvicorn's h11 accepts (h11's default
``max_incomplete_event_size``, 16 KiB)."""

MAX_HEADERS: Final = 100
"""Header fields a request may have at most (431 beyond)."""

METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""The method labels of the metrics; any other method is counted as ``other``."""

EXEMPT: Final = frozenset({"/healthz"})
"""Paths the rate limit never refuses (liveness probes)."""

Observer = Callable[[str, str, int, float], None]
"""``observe(route, method, status, seconds)``: one request done (the service's metrics)."""

log = structlog.get_logger("echo_archive.api.access")


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/v1/items/{ref}``), or ``unmatched``."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else "unmatched"


def _principal_name(scope: Scope) -> str | None:
    found = scope.get("echo.principal")
    kind, name = getattr(found, "kind", None), getattr(found, "name", None)
    return f"{kind}:{name}" if isinstance(kind, str) and isinstance(name, str) else None


class EdgeMiddleware:
    """Request id, timing and security headers, the access log and per-route metrics (module).

    Args:
        app: the ASGI application inside.
        observe: called once per HTTP request with ``(route template,
            method, status, seconds)``; None: no metrics.
        timer: seconds of a monotonic clock (``time.perf_counter``).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        observe: Observer | None = None,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.app = app
        self.observe = observe
        self.timer = timer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one connection scope (HTTP requests only; others pass through)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = self.timer()
        rid = scope_request_id(scope)
        tls = scope.get("scheme") == "https"
        status = 500
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = int(message["status"])
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    if name not in headers:
                        headers.append(name, value)
                if tls and "strict-transport-security" not in headers:
                    headers.append("strict-transport-security", HSTS)
                elapsed = self.timer() - start
                headers["x-request-id"] = rid
                headers.append("server-timing", f"app;dur={elapsed * 1000:.3f}")
                headers["x-process-time"] = f"{elapsed:.6f}"
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            if not started:
                await _json(send_with_headers, 500, "internal", "internal server error")
            raise
        finally:
            self._done(scope, status, self.timer() - start, rid)

    def _done(self, scope: Scope, status: int, seconds: float, rid: str) -> None:
        method = str(scope.get("method", "GET")).upper()
        method = method if method in METHODS else "other"
        route = route_template(scope)
        log.info(
            "http.request",
            method=method,
            route=route,
            status=status,
            duration_s=round(seconds, 6),
            request_id=rid,
            client=client_address(scope),
            principal=_principal_name(scope),
        )
        if self.observe is not None:
            self.observe(route, method, status, seconds)


class RateLimitMiddleware:
    """``[api] rate_limit`` per client: 429 with ``Retry-After`` past it (RFC 6585 §4).

    Every HTTP request but :data:`EXEMPT` paths takes one unit of its
    client's bucket (:class:`~echo_archive.api.ratelimit.ClientKeys`); the
    response carries the draft ``RateLimit-Policy`` and ``RateLimit`` fields
    (:meth:`~echo_archive.api.ratelimit.Decision.headers`). A refusal is
    ``{"detail": {"code": "rate_limited", "message"}}``.

    Args:
        app: the ASGI application inside.
        limiter: the buckets.
        keys: who a request's client is.
    """

    def __init__(self, app: ASGIApp, *, limiter: RateLimiter, keys: ClientKeys) -> None:
        self.app = app
        self.limiter = limiter
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count the request; refuse it with 429, or pass it on and learn its credential.

        A WebSocket handshake (``/v1/ws``) is counted too; refused, it is
        answered 429 through the ASGI ``websocket.http.response`` extension
        when the server offers it (uvicorn does), else closed with 1013 (Try
        Again Later, RFC 6455 §7.4.1 registry).
        """
        kind = scope["type"]
        if kind not in ("http", "websocket") or scope.get("path") in EXEMPT:
            await self.app(scope, receive, send)
            return
        bucket, digest = self.keys.bucket(scope)
        decision = self.limiter.take(bucket)
        fields = decision.headers()
        if kind == "websocket":
            if decision.allowed:
                await self.app(scope, receive, send)
            else:
                await _refuse_websocket(scope, receive, send, fields)
            return
        if not decision.allowed:
            await _json(
                send,
                429,
                "rate_limited",
                f"more than {decision.limit} requests in {decision.period} s from this client; "
                f"retry in {decision.retry_after} s",
                fields,
            )
            return

        async def send_with_fields(message: Message) -> None:
            if message["type"] == "http.response.start":
                # the dependencies have run: learn (or forget) the credential now, not
                # when a long response (a live stream) ends
                self.keys.settle(digest, scope.get("echo.principal"), int(message["status"]))
                headers = MutableHeaders(scope=message)
                for name, value in fields:
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_fields)


class _BodyTooLarge(HTTPException):
    """Raised from ``receive`` past the limit; FastAPI and Starlette answer it as a 413."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(
            status_code=413,
            detail={"code": "too_large", "message": f"request body larger than {limit} bytes"},
        )


class BodyLimitMiddleware:
    """At most ``max_body`` bytes of request body (RFC 9110 §15.5.14: 413 Content Too Large).

    And at most :data:`MAX_HEADERS` header fields and :data:`MAX_HEADER_BYTES`
    of them (RFC 6585 §5: 431 Request Header Fields Too Large).

    Args:
        app: the ASGI application inside.
        max_body: bytes (``[api] max_body``).
    """

    def __init__(self, app: ASGIApp, *, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse a declared oversize body at once; count a streamed one and cut it at the limit."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        fields = scope.get("headers", ())
        size = sum(len(k) + len(v) + 4 for k, v in fields)
        if len(fields) > MAX_HEADERS or size > MAX_HEADER_BYTES:
            await _json(
                send,
                431,
                "headers_too_large",
                f"{len(fields)} header fields of {size} bytes; at most {MAX_HEADERS} fields "
                f"and {MAX_HEADER_BYTES} bytes are accepted",
            )
            return
        lengths = [v for k, v in scope.get("headers", ()) if k == b"content-length"]
        if lengths:
            text = bytes(lengths[0]).decode("latin-1").strip()
            if len(set(lengths)) != 1 or not text.isdigit() or len(text) > 19:
                await _json(send, 400, "invalid_request", "malformed Content-Length")
                return
            if int(text) > self.max_body:
                await _json(
                    send,
                    413,
                    "too_large",
                    f"request body of {text} bytes; at most {self.max_body} are accepted",
                )
                return
        received = 0
        started = False
        limit = self.max_body

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge(limit)
            return message

        async def tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited, tracking)
        except _BodyTooLarge as exc:
            if started:
                raise
            await _json(send, 413, "too_large", f"request body larger than {exc.limit} bytes")


async def _refuse_websocket(
    scope: Scope, receive: Receive, send: Send, fields: list[tuple[str, str]]
) -> None:
    """Refuse a WebSocket handshake: HTTP 429 with ``fields`` if the server can, else 1013."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    if "websocket.http.response" in scope.get("extensions", {}):
        body = b'{"detail": {"code": "rate_limited", "message": "too many requests"}}'
        raw = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in fields]
        await send({"type": "websocket.http.response.start", "status": 429, "headers": raw})
        await send({"type": "websocket.http.response.body", "body": body, "more_body": False})
        return
    await send({"type": "websocket.close", "code": 1013, "reason": "rate limited"})


async def _json(
    send: Send,
    status: int,
    code: str,
    message: str,
    headers: list[tuple[str, str]] | None = None,
) -> None:
    """Send a whole JSON error response ``{"detail": {"code", "message"}}`` (the API's shape)."""
    body = json.dumps({"detail": {"code": code, "message": message}}).encode()
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers or ()]
    if status in (400, 413, 431):
        raw.append((b"connection", b"close"))  # the rest of the body is not read
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def install(
    app: FastAPI,
    ctx: ApiContext,
    *,
    observe: Observer | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> RateLimiter:
    """Wrap ``app`` in the edge middleware of ``ctx.config`` (``[api]``), as the module lists.

    Args:
        app: the service's application (before it serves).
        ctx: the API context (its ``config`` gives ``rate_limit``,
            ``max_body`` and ``cors_origins``).
        observe: the per-route metrics' observer, or None.
        clock: the rate limiter's monotonic clock, seconds (tests inject one).

    Returns:
        The rate limiter (its buckets; tests read them).
    """
    config = ctx.config
    limiter = RateLimiter(config.rate_limit, 60, clock=clock)
    # Starlette: the last middleware added is the outermost.
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MINIMUM, compresslevel=6)
    app.add_middleware(BodyLimitMiddleware, max_body=config.max_body)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(config.cors_origins),
        allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=[
            "Authorization",
            "X-API-Key",
            CSRF_HEADER,
            "X-Request-ID",
            "Last-Event-ID",
        ],
        expose_headers=["Retry-After", "RateLimit", "RateLimit-Policy", "X-Request-ID"],
        allow_credentials=False,
        max_age=600,
    )
    app.add_middleware(RateLimitMiddleware, limiter=limiter, keys=ClientKeys(SESSION_COOKIE))
    app.add_middleware(EdgeMiddleware, observe=observe)
    return limiter
