"""The API's edge middleware: rate limit, body limits, security headers, CORS, gzip, logs, metrics.

The API's real routes (``echo_archive.api.routes.mount``) over a real vault,
wrapped by ``echo_archive.api.middleware.install`` and called through
``httpx.ASGITransport``; the rate limiter runs on a clock the test moves (no
sleeping). Slow clients and oversized bodies are tried against the real
service (uvicorn) on loopback, over raw sockets.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
import tomlkit
import websockets.exceptions
import websockets.sync.client
from fastapi import FastAPI
from fastapi.responses import JSONResponse, StreamingResponse
from prometheus_client.parser import text_string_to_metric_families

from echo_archive.api.deps import ApiContext
from echo_archive.api.keys import create_key
from echo_archive.api.middleware import CSP, install
from echo_archive.api.ratelimit import ClientKeys, RateLimiter, client_address
from echo_archive.api.roles import Role
from echo_archive.api.routes import mount
from echo_archive.config import ApiSection, ConfigError, load_config
from echo_archive.service.scheduler import ManualClock
from echo_archive.services.vaults import create_vault
from echo_archive.vault.vault import Vault
from echo_archive.vault.writer import VaultWriter
from tests.test_service import in_process


def quiet_vault(tmp_path: Path, extra: str = "") -> Path:
    """A new vault (in this process) with no feeds, and ``extra`` appended to its echo.toml."""
    vault = tmp_path / "vault"
    create_vault(vault)
    toml = vault / "echo.toml"
    doc = tomlkit.parse(toml.read_text(encoding="utf-8"))
    doc.pop("feeds", None)
    toml.write_text(tomlkit.dumps(doc) + extra, encoding="utf-8")
    return vault


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ctx(vault_path: Path) -> Iterator[ApiContext]:
    with VaultWriter.open(vault_path) as writer, Vault.open(vault_path, readonly=True) as reader:
        yield ApiContext(reader=reader, writer=writer, config=ApiSection())


def app_of(ctx: ApiContext, clock: Clock | None = None, **extra: Any) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None)
    mount(app, ctx)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/big")
    async def big() -> dict[str, Any]:
        return {"entries": [{"n": i, "text": "the same words again"} for i in range(2000)]}

    @app.get("/sandboxed")
    async def sandboxed() -> JSONResponse:
        return JSONResponse({}, headers={"Content-Security-Policy": "sandbox"})

    install(app, ctx, clock=clock or Clock(), **extra)
    return app


def client(app: FastAPI, address: str = "192.0.2.10") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://echo.test")


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# ---------------------------------------------------------------- rate limit


def test_the_1001st_request_in_a_minute_is_429_with_retry_after(ctx: ApiContext) -> None:
    clock = Clock()
    app = app_of(ctx, clock)

    async def go() -> None:
        async with client(app) as c, client(app, "198.51.100.7") as other:
            for i in range(1000):
                r = await c.get("/v1/whoami")
                assert r.status_code == 401, (i, r.status_code)
            assert r.headers["ratelimit"] == '"default";r=0;t=60'
            assert r.headers["ratelimit-policy"] == '"default";q=1000;w=60'
            refused = await c.get("/v1/whoami")
            assert refused.status_code == 429
            assert refused.headers["retry-after"] == "1"  # T = 60 s / 1000, rounded up
            assert refused.json()["detail"]["code"] == "rate_limited"
            assert refused.headers["x-content-type-options"] == "nosniff"
            assert "x-request-id" in refused.headers
            # another client is not limited
            assert (await other.get("/v1/whoami")).status_code == 401
            # /healthz is exempt
            assert (await c.get("/healthz")).status_code == 200
            # one emission interval later one more request is allowed, and only one
            clock.now += 0.06
            assert (await c.get("/v1/whoami")).status_code == 401
            assert (await c.get("/v1/whoami")).status_code == 429
            # a minute later the whole allowance is back
            clock.now += 60
            for _ in range(1000):
                assert (await c.get("/v1/whoami")).status_code == 401
            assert (await c.get("/v1/whoami")).status_code == 429

    run(go())


def test_invented_keys_share_the_address_bucket_a_real_key_has_its_own(ctx: ApiContext) -> None:
    ctx.config = ApiSection(rate_limit=5)
    key, _ = create_key(ctx.writer, "bot", Role.VIEWER, now=time.time(), actor="cli:t")
    app = app_of(ctx)

    async def go() -> None:
        async with client(app) as c:
            # the real key's first request is counted as unproven from this address
            assert (await c.get("/v1/whoami", headers={"X-API-Key": key})).status_code == 200
            invented = [f"echo_{i:016x}_{'A' * 43}" for i in range(10)]
            codes = [
                (await c.get("/v1/whoami", headers={"X-API-Key": k})).status_code for k in invented
            ]
            # 4 left in the unproven bucket of this address, then refused: no fresh buckets
            assert codes == [401] * 4 + [429] * 6
            # the key, proven, has its own bucket: 5 a minute
            mine = [
                (await c.get("/v1/whoami", headers={"Authorization": f"Bearer {key}"}))
                for _ in range(6)
            ]
            assert [r.status_code for r in mine] == [200] * 5 + [429]
            # anonymous requests from the address are a third bucket
            assert (await c.get("/v1/whoami")).status_code == 401

    run(go())


def test_a_known_key_id_does_not_drain_its_owner(ctx: ApiContext) -> None:
    ctx.config = ApiSection(rate_limit=3)
    key, rec = create_key(ctx.writer, "bot", Role.VIEWER, now=time.time(), actor="cli:t")
    app = app_of(ctx)
    forged = f"echo_{rec.id}_{'B' * 43}"  # the public id, a wrong secret

    async def go() -> None:
        async with client(app) as owner, client(app, "203.0.113.66") as attacker:
            assert (await owner.get("/v1/whoami", headers={"X-API-Key": key})).status_code == 200
            for _ in range(10):
                await attacker.get("/v1/whoami", headers={"X-API-Key": forged})
            ok = [(await owner.get("/v1/whoami", headers={"X-API-Key": key})) for _ in range(3)]
            assert [r.status_code for r in ok] == [200, 200, 200]

    run(go())


def test_gcra_memory_is_bounded() -> None:
    clock = Clock()
    limiter = RateLimiter(10, 60, clock=clock, max_buckets=2000)
    for i in range(5000):
        assert limiter.take(f"anon:{i}").allowed
    assert len(limiter) <= 2 * 2000
    clock.now += 61  # every bucket back at full allowance: all are dropped at the next sweep
    for i in range(3000):
        limiter.take(f"anon:new{i}")
    assert len(limiter) <= 3000


def test_ipv6_clients_are_keyed_by_their_64() -> None:
    a = client_address({"client": ("2001:db8:1:2::1", 1)})
    b = client_address({"client": ("2001:db8:1:2:ffff::9", 1)})
    c = client_address({"client": ("2001:db8:1:3::1", 1)})
    assert a == b == "2001:db8:1:2::/64"
    assert c != a
    assert client_address({"client": ("::ffff:192.0.2.1", 1)}) == "192.0.2.1"
    keys = ClientKeys("echo_session")
    assert keys.bucket({"client": ("192.0.2.1", 1), "headers": []})[0] == "anon:192.0.2.1"


# ---------------------------------------------------------------- headers


def test_security_headers_on_every_response(ctx: ApiContext) -> None:
    app = app_of(ctx)

    async def go() -> None:
        async with client(app) as c:
            for path in ("/healthz", "/v1/whoami", "/no/such/route"):
                r = await c.get(path, headers={"X-Request-ID": "abc-123"})
                assert r.headers["content-security-policy"] == CSP
                assert r.headers["x-content-type-options"] == "nosniff"
                assert r.headers["referrer-policy"] == "no-referrer"
                assert r.headers["x-frame-options"] == "DENY"
                assert r.headers["cross-origin-resource-policy"] == "same-origin"
                assert "strict-transport-security" not in r.headers  # plain HTTP
                assert r.headers["x-request-id"] == "abc-123"
                assert r.headers["server-timing"].startswith("app;dur=")
                assert float(r.headers["x-process-time"]) >= 0
            # a forged id (spaces, CR LF) is replaced by a fresh one
            r = await c.get("/healthz", headers={"X-Request-ID": "a b"})
            assert r.headers["x-request-id"] != "a b"
            assert len(r.headers["x-request-id"]) == 16
            # a route's own CSP (a capture body's sandbox) is kept, not weakened or replaced
            r = await c.get("/sandboxed")
            assert r.headers.get_list("content-security-policy") == ["sandbox"]

    run(go())


def test_hsts_only_over_tls(ctx: ApiContext) -> None:
    app = app_of(ctx)

    async def go() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://echo.test") as c:
            r = await c.get("/healthz")
            assert r.headers["strict-transport-security"] == "max-age=31536000"

    run(go())


def test_cors_denied_by_default_allowed_for_a_listed_origin(ctx: ApiContext) -> None:
    preflight = {
        "Origin": "https://evil.example",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }

    async def go(app: FastAPI, origin: str) -> tuple[httpx.Response, httpx.Response]:
        async with client(app) as c:
            pre = await c.options("/v1/whoami", headers={**preflight, "Origin": origin})
            simple = await c.get("/healthz", headers={"Origin": origin})
            return pre, simple

    pre, simple = run(go(app_of(ctx), "https://evil.example"))
    assert pre.status_code == 400
    assert "access-control-allow-origin" not in pre.headers
    assert "access-control-allow-origin" not in simple.headers
    ctx.config = ApiSection(cors_origins=["https://dash.example.org"])
    listed = app_of(ctx)
    pre, simple = run(go(listed, "https://dash.example.org"))
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] == "https://dash.example.org"
    assert "authorization" in pre.headers["access-control-allow-headers"].lower()
    assert simple.headers["access-control-allow-origin"] == "https://dash.example.org"
    pre, simple = run(go(listed, "https://evil.example"))
    assert "access-control-allow-origin" not in pre.headers
    assert "access-control-allow-origin" not in simple.headers


def test_cors_origins_are_validated(tmp_path: Path) -> None:
    for bad, said in (
        ('["*"]', "'*' is not accepted"),
        ('["https://a.example/path"]', "no path"),
        ('["ftp://a.example"]', "http or https"),
    ):
        toml = tmp_path / "echo.toml"
        toml.write_text(
            '[vault]\norigin = "echo.test/1"\ncreated = "2026-01-01T00:00:00Z"\n'
            f"[api]\ncors_origins = {bad}\n"
        )
        with pytest.raises(ConfigError, match=said):
            load_config(toml)
    toml.write_text(
        '[vault]\norigin = "echo.test/1"\ncreated = "2026-01-01T00:00:00Z"\n'
        '[api]\nforwarded_allow_ips = ["proxy.example"]\n'
    )
    with pytest.raises(ConfigError, match="not an IP address"):
        load_config(toml)


# ---------------------------------------------------------------- gzip


def test_gzip_on_a_big_json_response_and_not_on_a_small_one(ctx: ApiContext) -> None:
    app = app_of(ctx)

    async def go() -> None:
        async with client(app) as c:
            r = await c.get("/big", headers={"Accept-Encoding": "gzip"})
            assert r.headers["content-encoding"] == "gzip"
            assert int(r.headers["content-length"]) < 20_000
            assert len(r.json()["entries"]) == 2000  # httpx decoded it
            small = await c.get("/healthz", headers={"Accept-Encoding": "gzip"})
            assert "content-encoding" not in small.headers

    run(go())


def test_an_event_stream_is_not_buffered_by_compression(ctx: ApiContext) -> None:
    """The first event reaches the client while the stream is still open and waiting."""
    app = app_of(ctx)
    proceed = asyncio.Event()

    async def events() -> Any:
        yield b"id: 1\ndata: first\n\n" + b": padding\n" * 200
        await proceed.wait()  # held until the client has the first event
        yield b"id: 2\ndata: second\n\n"

    @app.get("/events")
    async def stream() -> StreamingResponse:
        return StreamingResponse(events(), media_type="text/event-stream")

    async def go() -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []
        first = asyncio.Event()
        request = {"type": "http.request", "body": b"", "more_body": False}
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        await queue.put(request)

        async def receive() -> dict[str, Any]:
            return await queue.get()

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            if message["type"] == "http.response.body" and b"first" in message.get("body", b""):
                first.set()

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/events",
            "raw_path": b"/events",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"echo.test"), (b"accept-encoding", b"gzip")],
            "client": ("192.0.2.1", 1),
            "server": ("echo.test", 80),
        }
        task = asyncio.ensure_future(app(scope, receive, send))
        await asyncio.wait_for(first.wait(), 30)  # a hang here is the failure: buffered
        assert not task.done()
        proceed.set()
        await asyncio.wait_for(task, 30)
        return sent

    sent = run(go())
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = dict(start["headers"])
    assert b"content-encoding" not in headers
    assert headers[b"content-type"].startswith(b"text/event-stream")
    assert b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body").endswith(
        b"data: second\n\n"
    )


# ---------------------------------------------------------------- body limits (ASGI)


def test_a_declared_oversize_body_is_413_before_it_is_read(ctx: ApiContext) -> None:
    ctx.config = ApiSection(max_body=2048)
    app = app_of(ctx)

    async def go() -> None:
        async with client(app) as c:
            r = await c.post("/v1/keys", content=b"x" * 4096)
            assert r.status_code == 413
            assert r.json()["detail"]["code"] == "too_large"
            assert r.headers["x-content-type-options"] == "nosniff"

            async def chunks() -> Any:
                for _ in range(8):
                    yield b"y" * 1024

            streamed = await c.post("/v1/keys", content=chunks())  # no Content-Length
            assert streamed.status_code == 413
            bad = await c.post("/v1/keys", content=b"{}", headers={"Content-Length": "-1"})
            assert bad.status_code == 400

    run(go())


# ---------------------------------------------------------------- logs and metrics


def test_an_access_log_line_holds_no_credential(ctx: ApiContext) -> None:
    key, _ = create_key(ctx.writer, "bot", Role.ADMIN, now=time.time(), actor="cli:t")
    seen: list[tuple[str, str, int, float]] = []
    app = app_of(ctx, observe=lambda *a: seen.append(a))

    async def go() -> None:
        async with client(app) as c:
            await c.get(
                "/v1/keys?token=sekrit-token&password=hunter22&key=k3y",
                headers={"Authorization": f"Bearer {key}", "Cookie": "echo_session=a.b.c"},
            )
            await c.get("/v1/whoami", headers={"X-API-Key": key + "x"})

    with structlog.testing.capture_logs() as logs:
        run(go())
    lines = [e for e in logs if e.get("event") == "http.request"]
    assert len(lines) == 2
    first = lines[0]
    assert first["method"] == "GET"
    assert first["route"] == "/v1/keys"
    assert first["status"] == 200
    assert first["principal"] == "key:bot"
    assert isinstance(first["duration_s"], float)
    assert len(first["request_id"]) == 16
    assert lines[1]["status"] == 401
    assert lines[1]["principal"] is None
    text = json.dumps(logs)
    for secret in (key, "sekrit-token", "hunter22", "k3y", "a.b.c"):
        assert secret not in text
    assert [(r, m, s) for r, m, s, _ in seen] == [
        ("/v1/keys", "GET", 200),
        ("/v1/whoami", "GET", 401),
    ]


# ---------------------------------------------------------------- the real server


def _read_all(sock: socket.socket) -> bytes:
    """What the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def _raw_get(port: int, path: str = "/healthz") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        return data


@pytest.mark.slow
def test_real_server_limits_slow_clients_and_route_metrics(tmp_path: Path) -> None:
    vault = quiet_vault(tmp_path, "\n[api]\nmax_body = 4096\n")
    with in_process(vault, ManualClock(time.time())) as service:
        assert service.url is not None
        port = int(service.url.rsplit(":", 1)[1])
        # slowloris: headers one byte at a time, never finished
        slow = socket.create_connection(("127.0.0.1", port), timeout=30)
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHo")
        # a huge body declared and sent slowly: refused at once (413), no waiting for it
        huge = socket.create_connection(("127.0.0.1", port), timeout=30)
        huge.sendall(
            b"POST /v1/keys HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000000\r\n\r\n{"
        )
        answer = _read_all(huge)
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
        assert b"too_large" in answer
        # a chunked body sent slowly, under the limit so far: it hangs, holding a connection
        trickle = socket.create_connection(("127.0.0.1", port), timeout=30)
        trickle.sendall(
            b"POST /v1/keys HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n400\r\n" + b" " * 1024 + b"\r\n"
        )
        try:
            for _ in range(3):
                slow.sendall(b"s")
                # while both hang, another client is served
                assert _raw_get(port).startswith(b"HTTP/1.1 200 ")
                with httpx.Client(base_url=service.url, timeout=30) as c:
                    assert c.get("/v1/whoami").status_code == 401
            # the trickle goes past 4096 bytes: cut off with 413
            for _ in range(4):
                trickle.sendall(b"400\r\n" + b" " * 1024 + b"\r\n")
            data = _read_all(trickle)
            assert data.startswith(b"HTTP/1.1 413 "), data[:200]
        finally:
            for s in (slow, huge, trickle):
                s.close()
        # too many header bytes: refused whole (431), or by h11 while incomplete (400)
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
            assert s.recv(65536).startswith(b"HTTP/1.1 431 ")
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000)
            assert s.recv(65536).startswith(b"HTTP/1.1 400 ")
        with httpx.Client(base_url=service.url, timeout=30) as c:
            text = c.get("/metrics").text
        families = {f.name: f for f in text_string_to_metric_families(text)}
        requests = families["echo_http_requests"].samples
        routes = {s.labels["route"] for s in requests}
        assert {"/healthz", "/v1/whoami"} <= routes
        assert all(r.startswith("/") or r == "unmatched" for r in routes)
        # the declared one is refused before routing (unmatched), the streamed one after
        assert {"unmatched", "/v1/keys"} <= {
            s.labels["route"] for s in requests if s.labels["status"] == "413" and s.value
        }
        durations = families["echo_http_request_duration_seconds"].samples
        assert any(s.labels.get("route") == "/healthz" for s in durations)


@pytest.mark.slow
def test_x_forwarded_for_picks_no_bucket_unless_the_proxy_is_trusted(tmp_path: Path) -> None:
    """Four anonymous requests from loopback naming four addresses: one client, unless trusted."""

    def statuses(vault: Path) -> list[int]:
        with (
            in_process(vault, ManualClock(time.time())) as service,
            httpx.Client(base_url=service.url or "", timeout=30) as c,
        ):
            found = [
                c.get("/v1/whoami", headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code
                for i in range(4)
            ]
            # a WebSocket handshake is a request too: refused with 429 once the bucket is empty
            ws_url = (service.url or "").replace("http://", "ws://") + "/v1/ws"
            try:
                with websockets.sync.client.connect(ws_url, open_timeout=30):
                    found.append(101)
            except websockets.exceptions.InvalidStatus as exc:
                found.append(exc.response.status_code)
            return found

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    plain = quiet_vault(tmp_path / "a", "\n[api]\nrate_limit = 3\n")
    assert statuses(plain) == [401, 401, 401, 429, 429]
    proxied = quiet_vault(
        tmp_path / "b", '\n[api]\nrate_limit = 3\nforwarded_allow_ips = ["127.0.0.1"]\n'
    )
    # four addresses, four buckets; the handshake (no XFF) is 127.0.0.1's first request
    assert statuses(proxied)[:4] == [401, 401, 401, 401]
