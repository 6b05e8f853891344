"""The fetch engine against a real loopback server: limits, retries, breakers, sizes, redirects.

Every test drives the real :class:`Fetcher` over real sockets to
:class:`~tests.httpfaults.FaultServer`. Deliberate waits (backoff, Retry-After,
token waits) go through :class:`FakeTime`, which records each requested delay,
advances a fake monotonic and wall clock by it, and really sleeps at most
10 ms, so the tests are fast and the recorded delays are exact. Socket
timeouts (connect, read, total) are real and kept short.
"""

from __future__ import annotations

import asyncio
import gzip
import random
import time
import zlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest

from echo_archive.errors import ConfigError
from echo_archive.harvest.breaker import BreakerConfig, BreakerState
from echo_archive.harvest.conditional import MemoryConditionalCache, Validators
from echo_archive.harvest.engine import (
    DEFAULT_USER_AGENT,
    FetchConfig,
    Fetcher,
    FetchOutcome,
    host_key,
)
from echo_archive.harvest.limits import DEFAULT_LIMITS, HostLimits, LimitConfig
from echo_archive.harvest.stores import MemoryBreakerStore, MemoryPauseStore
from echo_archive.model import Request
from echo_archive.redaction import redact_headers
from echo_archive.vault.entry import format_timestamp

from .httpfaults import (
    MALFORMED_JSON,
    MALFORMED_XML,
    ConditionalResource,
    FakeTime,
    FaultServer,
    Reply,
    closed_port,
    gzip_bomb,
    gzipped,
    http_date,
    oversized,
    redirect,
    retry_after,
)

T = TypeVar("T")
MIB = 1024 * 1024


def fast_limits(**configs: LimitConfig) -> HostLimits:
    """Limits that never slow a test down: every host 1000 req/s, 8 in flight."""
    quick = LimitConfig(rate=1000.0, burst=1000.0, concurrency=8)
    return HostLimits(configs, profiles={**DEFAULT_LIMITS, "rss": quick})


def config(**overrides: Any) -> FetchConfig:
    settings: dict[str, Any] = {
        "connect_timeout": 2.0,
        "read_timeout": 2.0,
        "total_timeout": 5.0,
        "backoff_base": 0.1,
        "backoff_cap": 1.0,
        "allow_private": True,  # the fault servers listen on loopback (SSRF guard off)
    }
    settings.update(overrides)
    return FetchConfig(**settings)


def make(fake: FakeTime, cfg: FetchConfig | None = None, **kwargs: Any) -> Fetcher:
    kwargs.setdefault("limits", fast_limits())
    return Fetcher(
        cfg or config(),
        clock=fake.monotonic,
        wall=fake.wall,
        sleep=fake.sleep,
        rng=random.Random(7),
        **kwargs,
    )


def run(factory: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await factory()

    return asyncio.run(main())


def fetch_one(fetcher: Fetcher, url: str, **request: Any) -> FetchOutcome:
    async def go() -> FetchOutcome:
        async with fetcher:
            return await fetcher.fetch(Request(url, **request), source_kind="rss")

    return run(go)


# --- plain exchanges -----------------------------------------------------------------


def test_plain_get_returns_the_exchange_as_received() -> None:
    fake = FakeTime()
    with FaultServer() as server:
        server.route(
            "/feed",
            Reply(
                200,
                headers=[("Content-Type", "application/rss+xml"), ("X-B", "2"), ("X-A", "1")],
                body=b"<rss/>",
            ),
        )
        outcome = fetch_one(make(fake), server.url("/feed"))
        seen = server.requests[0]
    assert outcome.ok
    assert outcome.attempts == 1
    ex = outcome.exchange
    assert ex is not None
    assert (ex.method, ex.status, ex.body) == ("GET", 200, b"<rss/>")
    assert ex.url == ex.final_url == server.url("/feed")
    assert ex.redirects == ()
    assert ex.truncated is False
    names = [name for name, _ in ex.headers]
    assert names.index("X-B") < names.index("X-A")  # order as received
    assert ex.content_type == "application/rss+xml"
    assert ex.fetched_at == format_timestamp(int(fake.epoch * 1e9))
    assert ("User-Agent", DEFAULT_USER_AGENT) in ex.request_headers
    assert DEFAULT_USER_AGENT == "echo-archive/0.1.0"
    assert seen.header("user-agent") == DEFAULT_USER_AGENT
    assert seen.header("accept-encoding") == "gzip, deflate"


def test_secrets_are_redacted_in_the_exchange_but_sent() -> None:
    fake = FakeTime()
    with FaultServer() as server:
        server.route("/api", Reply(200, body=b"{}"))
        outcome = fetch_one(
            make(fake),
            server.url("/api?series_id=GDP&api_key=s3cret&file_type=json"),
            headers=(
                ("Authorization", "Bearer tok"),
                ("X-Api-Key", "k1"),
                ("Private-Token", "k2"),
                ("Accept", "application/json"),
            ),
        )
        seen = server.requests[0]
    ex = outcome.exchange
    assert ex is not None
    sent = dict(ex.request_headers)
    assert sent["Authorization"] == sent["X-Api-Key"] == sent["Private-Token"] == "<redacted>"
    assert sent["Accept"] == "application/json"
    assert "s3cret" not in ex.url
    assert "api_key=REDACTED" in ex.url
    assert ex.url.endswith("?series_id=GDP&api_key=REDACTED&file_type=json")
    assert seen.header("authorization") == "Bearer tok"
    assert "api_key=s3cret" in seen.path


def test_redact_headers_and_host_key() -> None:
    pairs = redact_headers([("Cookie", "a=b"), ("X-Auth-Token", "t"), ("Accept", "*/*")])
    assert pairs == (("Cookie", "<redacted>"), ("X-Auth-Token", "<redacted>"), ("Accept", "*/*"))
    assert host_key("https://API.GitHub.com/repos") == "api.github.com"
    assert host_key("https://api.github.com:443/x") == "api.github.com"
    assert host_key("http://127.0.0.1:8080/x") == "127.0.0.1:8080"


def test_zero_byte_200_is_an_exchange_with_an_empty_body() -> None:
    with FaultServer() as server:
        server.route("/empty", Reply(200))
        outcome = fetch_one(make(FakeTime()), server.url("/empty"))
    assert outcome.ok
    assert outcome.exchange is not None
    assert outcome.exchange.body == b""
    assert outcome.exchange.truncated is False


@pytest.mark.parametrize("body", [MALFORMED_JSON, MALFORMED_XML])
def test_malformed_documents_are_kept_byte_for_byte(body: bytes) -> None:
    with FaultServer() as server:
        server.route("/doc", Reply(200, headers=[("Content-Type", "application/json")], body=body))
        outcome = fetch_one(make(FakeTime()), server.url("/doc"))
    assert outcome.ok
    assert outcome.exchange is not None
    assert outcome.exchange.body == body


def test_invalid_url_is_an_error_without_a_request() -> None:
    outcome = fetch_one(make(FakeTime()), "ftp://example.invalid/file")
    assert outcome.exchange is None
    assert outcome.attempts == 0
    assert outcome.error is not None
    assert outcome.error.startswith("invalid URL ftp://example.invalid/file")


# --- retries -----------------------------------------------------------------------------


def test_429_retry_after_seconds_is_waited_then_retried() -> None:
    fake = FakeTime()
    with FaultServer() as server:
        server.route("/r", [retry_after(7), Reply(200, body=b"ok")])
        outcome = fetch_one(make(fake), server.url("/r"))
        assert server.hits("/r") == 2
    assert outcome.ok
    assert outcome.attempts == 2
    assert outcome.exchange is not None
    assert outcome.exchange.body == b"ok"
    assert fake.sleeps == [pytest.approx(7.0)]


def test_503_retry_after_http_date_is_waited_then_retried() -> None:
    fake = FakeTime()
    with FaultServer() as server:
        server.route("/r", [retry_after(http_date(fake.epoch + 42), status=503), Reply(200)])
        outcome = fetch_one(make(fake), server.url("/r"))
    assert outcome.ok
    assert outcome.attempts == 2
    assert len(fake.sleeps) == 1
    assert 41.0 <= fake.sleeps[0] <= 43.0


def test_retry_after_pauses_the_whole_host() -> None:
    fake = FakeTime()
    limits = fast_limits()

    async def go() -> tuple[FetchOutcome, FetchOutcome]:
        async with make(fake, limits=limits) as fetcher:
            first = await fetcher.fetch(Request(server.url("/r")), source_kind="rss")
            assert limits.bucket(server.authority).pause_remaining(fake.mono) == 0
            return first, await fetcher.fetch(Request(server.url("/other")), source_kind="rss")

    with FaultServer() as server:
        server.route("/r", [retry_after(30), Reply(200)])
        server.route("/other", Reply(200))
        first, second = run(go)
    assert first.ok
    assert second.ok
    assert fake.sleeps == [pytest.approx(30.0)]


def test_retry_after_above_the_cap_is_not_waited() -> None:
    fake = FakeTime()
    with FaultServer() as server:
        server.route("/r", retry_after(3600))
        outcome = fetch_one(make(fake, config(retry_after_cap=60.0)), server.url("/r"))
        assert server.hits("/r") == 1
    assert outcome.attempts == 1
    assert outcome.exchange is not None
    assert outcome.exchange.status == 429
    until = format_timestamp(int((fake.epoch + 60.0) * 1e9))  # the cap, not the 3600 s asked
    assert outcome.error == (
        "HTTP 429 Too Many Requests: not retried: retry-after 3600 s exceeds cap 60 s; "
        f"host {server.authority} paused until {until}"
    )
    assert outcome.retry_after == 3600.0
    assert outcome.paused_until is None  # this fetch was sent; the pause skips the next ones
    assert fake.sleeps == []


def test_a_refused_retry_after_pauses_the_host_up_to_the_cap_only() -> None:
    # RFC 9110 §10.2.3: the host is paused as asked, but never longer than the
    # cap (it was 86,400 s, failing every other feed on the host for the run).
    fake = FakeTime()
    store = MemoryPauseStore()
    until = fake.epoch + 60.0

    async def go() -> tuple[FetchOutcome, FetchOutcome, FetchOutcome]:
        cfg = config(retry_after_cap=60.0, max_queue_wait=120.0)
        async with make(fake, cfg, pauses=store) as fetcher:
            first = await fetcher.fetch(Request(server.url("/r")), source_kind="rss")
            second = await fetcher.fetch(Request(server.url("/other")), source_kind="rss")
            fake.advance(61.0)  # the capped pause is over: the host is asked again
            third = await fetcher.fetch(Request(server.url("/other")), source_kind="rss")
            return first, second, third

    with FaultServer() as server:
        server.route("/r", retry_after(99999))
        server.route("/other", Reply(200))
        first, second, third = run(go)
        assert server.hits("/other") == 1  # only the third fetch reached the host
    assert first.error is not None
    assert "exceeds cap" in first.error
    assert second.attempts == 0
    assert second.paused_until == pytest.approx(until)
    assert second.error == (
        f"host {server.authority} paused until {format_timestamp(int(until * 1e9))} "
        "(it answered Retry-After beyond the 60 s cap): not requested"
    )
    assert third.ok
    assert store.pauses[server.authority][0] == pytest.approx(until)
    assert fake.sleeps == []


def test_a_saved_pause_skips_the_host_in_the_next_run_until_it_ends() -> None:
    fake = FakeTime()
    store = MemoryPauseStore()
    until = fake.epoch + 30.0
    with FaultServer() as server:
        server.route("/r", Reply(200))
        store.save_pause(server.authority, until, "Retry-After 99999 s")
        skipped = fetch_one(make(fake, pauses=store), server.url("/r"))
        assert server.hits() == 0
        fake.advance(31.0)
        later = fetch_one(make(fake, pauses=store), server.url("/r"))
        assert server.hits() == 1
    assert skipped.paused_until == pytest.approx(until)
    assert skipped.error is not None
    assert "paused until" in skipped.error
    assert later.ok
    assert later.paused_until is None


def test_retry_after_http_date_far_ahead_pauses_no_longer_than_the_cap() -> None:
    fake = FakeTime()
    store = MemoryPauseStore()
    with FaultServer() as server:
        server.route("/r", retry_after(http_date(fake.epoch + 10 * 86400), status=503))
        outcome = fetch_one(
            make(fake, config(retry_after_cap=300.0), pauses=store), server.url("/r")
        )
    assert outcome.retry_after is not None
    assert outcome.retry_after > 86400
    assert store.pauses[server.authority][0] == pytest.approx(fake.epoch + 300.0)
    assert fake.sleeps == []


def test_5xx_burst_then_success_counts_attempts_and_jitters() -> None:
    fake = FakeTime()
    with FaultServer() as server:
        server.route("/b", [Reply(500), Reply(502), Reply(503), Reply(200, body=b"fine")])
        outcome = fetch_one(make(fake, config(max_attempts=4)), server.url("/b"))
        assert server.hits("/b") == 4
    assert outcome.ok
    assert outcome.attempts == 4
    assert outcome.exchange is not None
    assert outcome.exchange.body == b"fine"
    assert len(fake.sleeps) == 3
    for attempt, delay in enumerate(fake.sleeps):
        assert 0.0 <= delay <= min(1.0, 0.1 * 2**attempt)  # full jitter window


@pytest.mark.parametrize("status", [520, 522])
def test_cloudflare_origin_errors_are_retried(status: int) -> None:
    with FaultServer() as server:
        server.route("/cf", [Reply(status), Reply(200)])
        outcome = fetch_one(make(FakeTime()), server.url("/cf"))
    assert outcome.ok
    assert outcome.attempts == 2


def test_5xx_until_attempts_run_out_reports_the_last_response() -> None:
    with FaultServer() as server:
        server.route("/down", Reply(503, body=b"maintenance"))
        outcome = fetch_one(make(FakeTime()), server.url("/down"))
        assert server.hits("/down") == 3
    assert outcome.attempts == 3
    assert outcome.error == "HTTP 503 Service Unavailable after 3 attempts"
    assert outcome.exchange is not None
    assert outcome.exchange.status == 503
    assert outcome.exchange.body == b"maintenance"


@pytest.mark.parametrize("status", [404, 403, 400, 410])
def test_client_errors_are_answers_not_retried(status: int) -> None:
    with FaultServer() as server:
        server.route("/gone", Reply(status, body=b"no"))
        outcome = fetch_one(make(FakeTime()), server.url("/gone"))
        assert server.hits("/gone") == 1
    assert outcome.attempts == 1
    assert outcome.error is None
    assert outcome.exchange is not None
    assert outcome.exchange.status == status


def test_post_is_never_retried() -> None:
    fake = FakeTime()
    with FaultServer() as server:
        server.route("/submit", Reply(503))
        outcome = fetch_one(make(fake), server.url("/submit"), method="POST")
        assert server.hits("/submit") == 1
    assert outcome.attempts == 1
    assert outcome.error is not None
    assert "POST is not idempotent" in outcome.error
    assert fake.sleeps == []


def test_retry_budget_exhausted_stops_retries() -> None:
    cfg = config(retry_budget_ratio=0.0, retry_budget_min_retries=0)
    with FaultServer() as server:
        server.route("/down", Reply(503))
        outcome = fetch_one(make(FakeTime(), cfg), server.url("/down"))
    assert outcome.attempts == 1
    assert outcome.error is not None
    assert "retry budget exhausted" in outcome.error


# --- transport failures -------------------------------------------------------------------


def test_connection_refused_is_retried_then_reported() -> None:
    fake = FakeTime()
    port = closed_port()
    outcome = fetch_one(make(fake, config(max_attempts=2)), f"http://127.0.0.1:{port}/x")
    assert outcome.exchange is None
    assert outcome.attempts == 2
    assert outcome.error == f"connection refused to 127.0.0.1:{port} after 2 attempts"
    assert len(fake.sleeps) == 1


def test_a_name_that_does_not_resolve_is_named_as_a_dns_failure() -> None:
    # RFC 6761 §6.4: names under .invalid never resolve, online or off.
    outcome = fetch_one(
        make(FakeTime(), config(max_attempts=1)), "http://no-such-host.echo-test.invalid/feed"
    )
    assert outcome.exchange is None
    assert outcome.error is not None
    assert outcome.error.startswith("cannot resolve host no-such-host.echo-test.invalid (DNS: ")
    assert "[Errno" not in outcome.error


def test_read_timeout_before_headers() -> None:
    with FaultServer() as server:
        server.route("/slow", Reply(200, delay=3.0, body=b"late"))
        started = time.monotonic()
        outcome = fetch_one(
            make(FakeTime(), config(read_timeout=0.3, max_attempts=1)), server.url("/slow")
        )
        took = time.monotonic() - started
    assert outcome.exchange is None
    assert outcome.error == f"read timeout after 0.3 s from {server.authority}"
    assert took < 2.5


def test_total_timeout_cuts_a_trickling_body() -> None:
    body = b"y" * 4000
    with FaultServer() as server:
        server.route("/trickle", Reply(200, body=body, trickle=(20, 0.02)))
        cfg = config(read_timeout=2.0, total_timeout=0.5, max_attempts=1)
        started = time.monotonic()
        outcome = fetch_one(make(FakeTime(), cfg), server.url("/trickle"))
        took = time.monotonic() - started
    assert outcome.error is not None
    assert outcome.error.startswith("total timeout after 0.5 s (body cut at ")
    ex = outcome.exchange
    assert ex is not None
    assert ex.truncated is True
    assert 0 < len(ex.body) < len(body)
    assert body.startswith(ex.body)
    assert took < 3.0


def test_truncated_body_is_an_error_not_a_crash() -> None:
    with FaultServer() as server:
        server.route("/cut", Reply(200, body=b"z" * 100, content_length=1000))
        outcome = fetch_one(make(FakeTime(), config(max_attempts=2)), server.url("/cut"))
        assert server.hits("/cut") == 2
    assert outcome.attempts == 2
    assert outcome.error is not None
    assert outcome.error.startswith(f"connection closed mid-body by {server.authority}")
    assert outcome.exchange is not None
    assert outcome.exchange.truncated is True
    assert outcome.exchange.body == b"z" * 100


# --- sizes and content-coding ----------------------------------------------------------------


def test_gzip_body_is_decoded() -> None:
    with FaultServer() as server:
        server.route("/gz", gzipped(b'{"ok": true}' * 100))
        outcome = fetch_one(make(FakeTime()), server.url("/gz"))
    assert outcome.ok
    assert outcome.exchange is not None
    assert outcome.exchange.body == b'{"ok": true}' * 100
    assert outcome.exchange.header("content-encoding") == "gzip"  # headers as received


@pytest.mark.parametrize("wbits", [15, -15], ids=["zlib", "raw"])
def test_deflate_body_is_decoded_in_both_framings(wbits: int) -> None:

    compressor = zlib.compressobj(6, zlib.DEFLATED, wbits)
    payload = b"deflate me " * 50
    data = compressor.compress(payload) + compressor.flush()
    with FaultServer() as server:
        server.route("/d", Reply(200, headers=[("Content-Encoding", "deflate")], body=data))
        outcome = fetch_one(make(FakeTime()), server.url("/d"))
    assert outcome.ok
    assert outcome.exchange is not None
    assert outcome.exchange.body == payload


def test_corrupt_gzip_is_an_error_with_the_exchange() -> None:
    with FaultServer() as server:
        server.route(
            "/bad", Reply(200, headers=[("Content-Encoding", "gzip")], body=b"\x1f\x8bnot gzip")
        )
        outcome = fetch_one(make(FakeTime()), server.url("/bad"))
    assert outcome.attempts == 1
    assert outcome.error is not None
    assert outcome.error.startswith("content-decoding (gzip) failed")
    assert outcome.exchange is not None
    assert outcome.exchange.truncated


def test_incomplete_gzip_stream_is_an_error() -> None:

    data = gzip.compress(b"a" * 10_000)[:-12]  # no end marker, but a correct Content-Length
    with FaultServer() as server:
        server.route("/short", Reply(200, headers=[("Content-Encoding", "gzip")], body=data))
        outcome = fetch_one(make(FakeTime()), server.url("/short"))
    assert outcome.error == (
        "content-decoding (gzip) failed at the end of the body: "
        "compressed stream ends before its end marker"
    )
    assert outcome.exchange is not None
    assert outcome.exchange.truncated


def test_multi_member_gzip_is_decoded_whole() -> None:

    data = gzip.compress(b"first,") + gzip.compress(b"second")
    with FaultServer() as server:
        server.route("/two", Reply(200, headers=[("Content-Encoding", "gzip")], body=data))
        outcome = fetch_one(make(FakeTime()), server.url("/two"))
    assert outcome.ok
    assert outcome.exchange is not None
    assert outcome.exchange.body == b"first,second"


def test_unsupported_content_coding_keeps_the_body_with_an_error() -> None:
    with FaultServer() as server:
        server.route("/br", Reply(200, headers=[("Content-Encoding", "br")], body=b"\x0b\x02"))
        outcome = fetch_one(make(FakeTime()), server.url("/br"))
    assert outcome.error == "content-coding 'br' not supported: body kept as received (encoded)"
    assert outcome.exchange is not None
    assert outcome.exchange.body == b"\x0b\x02"


def test_gzip_bomb_is_cut_at_the_decompressed_limit() -> None:
    bomb = gzip_bomb(16 * MIB)
    assert len(bomb.body) < 64 * 1024
    cfg = config(max_decompressed_bytes=MIB)
    with FaultServer() as server:
        server.route("/bomb", bomb)
        outcome = fetch_one(make(FakeTime(), cfg), server.url("/bomb"))
    assert outcome.attempts == 1
    assert outcome.error is not None
    assert outcome.error.startswith(f"decompressed body over {MIB} bytes")
    ex = outcome.exchange
    assert ex is not None
    assert ex.truncated is True
    assert len(ex.body) == MIB
    assert ex.body == b"\0" * MIB


def test_oversized_body_is_cut_and_marked_truncated() -> None:
    cfg = config(max_body_bytes=64 * 1024)
    with FaultServer() as server:
        server.route("/big", oversized(MIB))
        outcome = fetch_one(make(FakeTime(), cfg), server.url("/big"))
    assert outcome.error == "body over 64 KiB: cut at 65536 bytes"
    assert outcome.attempts == 1
    ex = outcome.exchange
    assert ex is not None
    assert ex.truncated is True
    assert len(ex.body) == 64 * 1024


def test_default_size_limits_and_config_checks() -> None:
    cfg = FetchConfig()
    assert cfg.max_body_bytes == 32 * MIB
    assert cfg.max_decompressed_bytes == 64 * MIB
    assert cfg.max_redirects == 5
    with pytest.raises(ConfigError, match="read_timeout"):
        FetchConfig(read_timeout=0)
    with pytest.raises(ConfigError, match="max_body_bytes"):
        FetchConfig(max_body_bytes=0)
    with pytest.raises(ConfigError, match="max_attempts"):
        FetchConfig(max_attempts=0)


# --- redirects ---------------------------------------------------------------------------------


def test_redirect_chain_is_recorded_hop_by_hop() -> None:
    with FaultServer() as server:
        server.route("/a", redirect("/b", 301))
        server.route("/b", redirect(server.url("/c"), 307))
        server.route("/c", Reply(200, body=b"landed"))
        outcome = fetch_one(make(FakeTime()), server.url("/a"))
        hits = [server.hits(p) for p in ("/a", "/b", "/c")]
    assert outcome.ok
    ex = outcome.exchange
    assert ex is not None
    assert ex.url == server.url("/a")
    assert ex.final_url == server.url("/c")
    assert ex.redirects == (server.url("/a"), server.url("/b"))
    assert ex.body == b"landed"
    assert hits == [1, 1, 1]


def test_redirect_loop_is_detected() -> None:
    with FaultServer() as server:
        server.route("/x", redirect("/y"))
        server.route("/y", redirect("/x"))
        outcome = fetch_one(make(FakeTime()), server.url("/x"))
        assert server.hits() == 2
    x, y = server.url("/x"), server.url("/y")
    assert outcome.error == f"redirect loop: {x} → {y} → {x}"
    assert outcome.attempts == 1
    assert outcome.exchange is not None
    assert outcome.exchange.status == 302


def test_redirect_limit_is_enforced() -> None:
    with FaultServer() as server:
        for i in range(10):
            server.route(f"/r{i}", redirect(f"/r{i + 1}"))
        outcome = fetch_one(make(FakeTime(), config(max_redirects=3)), server.url("/r0"))
        assert server.hits() == 4
    assert outcome.error is not None
    assert outcome.error.startswith("too many redirects (more than 3): ")
    assert outcome.exchange is not None
    assert len(outcome.exchange.redirects) == 4


def test_cross_origin_redirect_drops_credentials() -> None:
    with FaultServer() as first, FaultServer() as second:
        second.route("/land", Reply(200, body=b"there"))
        first.route("/go", redirect(second.url("/land")))
        outcome = fetch_one(
            make(FakeTime()), first.url("/go"), headers=(("Authorization", "Bearer t"),)
        )
        assert first.requests[0].header("authorization") == "Bearer t"
        assert second.requests[0].header("authorization") is None
    assert outcome.ok


def test_303_turns_post_into_get() -> None:
    with FaultServer() as server:
        server.route("/form", redirect("/result", 303))
        server.route("/result", Reply(200))
        outcome = fetch_one(make(FakeTime()), server.url("/form"), method="POST")
        methods = [r.method for r in server.requests]
    assert outcome.ok
    assert methods == ["POST", "GET"]


# --- conditional requests ------------------------------------------------------------------------


def test_etag_flow_sends_validators_and_refreshes_them_on_304() -> None:
    fake = FakeTime()
    cache = MemoryConditionalCache()
    modified = http_date(1_700_000_000)
    resource = ConditionalResource('"v1"', modified, b"<feed/>")

    async def go() -> tuple[FetchOutcome, FetchOutcome]:
        async with make(fake, cache=cache) as fetcher:
            first = await fetcher.fetch(Request(server.url("/feed")), source_kind="rss")
            resource.not_modified_etag = '"v1-gzip"'
            second = await fetcher.fetch(Request(server.url("/feed")), source_kind="rss")
            return first, second

    with FaultServer() as server:
        server.route("/feed", resource)
        first, second = run(go)
        requests = server.requests
    assert first.ok
    assert not first.not_modified
    assert not first.from_cache_validators
    assert requests[0].header("if-none-match") is None
    assert second.ok
    assert second.not_modified
    assert second.from_cache_validators
    assert second.exchange is not None
    assert second.exchange.status == 304
    assert second.exchange.body == b""
    assert requests[1].header("if-none-match") == '"v1"'
    assert requests[1].header("if-modified-since") == modified
    assert cache.get(server.url("/feed")) == Validators('"v1-gzip"', modified)


def test_last_modified_alone_is_sent_as_if_modified_since() -> None:
    cache = MemoryConditionalCache()
    with FaultServer() as server:
        url = server.url("/lm")
        cache.put(url, Validators(None, "Tue, 14 Nov 2023 22:13:20 GMT"))
        server.route(
            "/lm", Reply(304, headers=[("Last-Modified", "Wed, 15 Nov 2023 00:00:00 GMT")])
        )
        outcome = fetch_one(make(FakeTime(), cache=cache), url)
        seen = server.requests[0]
    assert outcome.not_modified
    assert outcome.from_cache_validators
    assert seen.header("if-modified-since") == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert seen.header("if-none-match") is None
    assert cache.get(url) == Validators(None, "Wed, 15 Nov 2023 00:00:00 GMT")


def test_truncated_200_does_not_store_validators() -> None:
    cache = MemoryConditionalCache()
    with FaultServer() as server:
        server.route("/big", Reply(200, headers=[("ETag", '"big"')], body=b"x" * 5000))
        fetch_one(make(FakeTime(), config(max_body_bytes=1000), cache=cache), server.url("/big"))
    assert cache.entries == {}


# --- breakers ------------------------------------------------------------------------------------

SMALL_BREAKER = BreakerConfig(
    sliding_window_size=4,
    minimum_number_of_calls=2,
    failure_rate_threshold=50.0,
    wait_duration_in_open_state=30.0,
    permitted_number_of_calls_in_half_open_state=1,
)


def test_breaker_opens_rejects_persists_and_recovers() -> None:
    fake = FakeTime()
    store = MemoryBreakerStore()
    cfg = config(max_attempts=1, breaker=SMALL_BREAKER)

    async def open_it() -> list[FetchOutcome]:
        async with make(fake, cfg, breakers=store) as fetcher:
            outcomes = [
                await fetcher.fetch(Request(server.url("/down")), source_kind="rss")
                for _ in range(3)
            ]
            assert fetcher.breakers()[server.authority].state is BreakerState.OPEN
            return outcomes

    async def after_restart() -> tuple[FetchOutcome, FetchOutcome, BreakerState]:
        async with make(fake, cfg, breakers=store) as fetcher:  # a new process, same store
            rejected = await fetcher.fetch(Request(server.url("/down")), source_kind="rss")
            fake.advance(31.0)  # past wait_duration_in_open_state
            server.route("/down", Reply(200, body=b"back"))
            recovered = await fetcher.fetch(Request(server.url("/down")), source_kind="rss")
            return rejected, recovered, fetcher.breaker(server.authority).state

    with FaultServer() as server:
        server.route("/down", Reply(503))
        failed1, failed2, rejected = run(open_it)
        assert server.hits("/down") == 2  # the third call never reached the server
        saved = store.load(server.authority)
        assert saved is not None
        assert saved["state"] == "OPEN"
        rejected2, recovered, state = run(after_restart)
        assert server.hits("/down") == 3

    assert failed1.error == failed2.error == "HTTP 503 Service Unavailable"
    until = format_timestamp(int((1_800_000_000.0 + 30.0) * 1e9))
    for outcome in (rejected, rejected2):
        assert outcome.attempts == 0
        assert outcome.exchange is None
        assert outcome.error == (
            f"circuit breaker open for host {server.authority} until {until}: it half-opens "
            "then for 1 trial call (to reset it: "
            f"`echoctl breakers --reset {server.authority}`)"
        )
    assert recovered.ok
    assert recovered.attempts == 1
    assert recovered.exchange is not None
    assert recovered.exchange.body == b"back"
    assert state is BreakerState.CLOSED
    saved = store.load(server.authority)
    assert saved is not None
    assert saved["state"] == "CLOSED"


def test_breaker_reopens_when_the_trial_call_fails() -> None:
    fake = FakeTime()
    cfg = config(max_attempts=1, breaker=SMALL_BREAKER)

    async def go() -> tuple[BreakerState, FetchOutcome]:
        async with make(fake, cfg) as fetcher:
            for _ in range(2):
                await fetcher.fetch(Request(server.url("/down")), source_kind="rss")
            fake.advance(31.0)
            await fetcher.fetch(Request(server.url("/down")), source_kind="rss")  # trial fails
            state = fetcher.breaker(server.authority).state
            return state, await fetcher.fetch(Request(server.url("/down")), source_kind="rss")

    with FaultServer() as server:
        server.route("/down", Reply(500))
        state, rejected = run(go)
        assert server.hits("/down") == 3
    assert state is BreakerState.OPEN
    assert rejected.error is not None
    assert rejected.error.startswith("circuit breaker open")


def test_breaker_stops_retries_midway_and_reset_closes_it() -> None:
    fake = FakeTime()
    cfg = config(max_attempts=5, breaker=SMALL_BREAKER)

    async def go() -> tuple[FetchOutcome, FetchOutcome]:
        async with make(fake, cfg) as fetcher:
            first = await fetcher.fetch(Request(server.url("/down")), source_kind="rss")
            fetcher.reset_breaker(server.authority)
            assert fetcher.breaker(server.authority).state is BreakerState.CLOSED
            server.route("/down", Reply(200))
            return first, await fetcher.fetch(Request(server.url("/down")), source_kind="rss")

    with FaultServer() as server:
        server.route("/down", Reply(502))
        first, second = run(go)
    assert first.attempts == 2  # two failures open the breaker; no third attempt
    assert first.error is not None
    assert first.error.startswith("HTTP 502 Bad Gateway; not retried: circuit breaker open")
    assert second.ok


def test_client_errors_do_not_open_the_breaker() -> None:
    cfg = config(breaker=SMALL_BREAKER)

    async def go() -> BreakerState:
        async with make(FakeTime(), cfg) as fetcher:
            for _ in range(4):
                await fetcher.fetch(Request(server.url("/missing")), source_kind="rss")
            return fetcher.breaker(server.authority).state

    with FaultServer() as server:
        assert run(go) is BreakerState.CLOSED


# --- limits, isolation, shutdown ------------------------------------------------------------


def test_per_host_concurrency_limit_is_respected() -> None:
    with FaultServer() as server:
        limits = fast_limits(
            **{server.authority: LimitConfig(rate=1000.0, burst=1000.0, concurrency=2)}
        )
        server.route("/slow", Reply(200, delay=0.15, body=b"ok"))

        async def go() -> list[FetchOutcome]:
            async with make(FakeTime(), limits=limits) as fetcher:
                outcomes = await asyncio.gather(
                    *(
                        fetcher.fetch(Request(server.url("/slow")), source_kind="rss")
                        for _ in range(6)
                    )
                )
                assert limits.in_flight(server.authority) == 0
                return list(outcomes)

        outcomes = run(go)
        assert server.hits("/slow") == 6
        assert server.max_concurrent == 2  # the limit, reached and never exceeded
    assert all(o.ok for o in outcomes)


def test_token_bucket_spaces_requests() -> None:
    fake = FakeTime()
    with FaultServer() as server:
        limits = fast_limits(**{server.authority: LimitConfig(rate=0.5, burst=1.0)})
        server.route("/t", Reply(200))

        async def go() -> None:
            async with make(fake, limits=limits) as fetcher:
                for _ in range(3):
                    assert (await fetcher.fetch(Request(server.url("/t")), source_kind="rss")).ok

        run(go)
    assert fake.sleeps == [pytest.approx(2.0), pytest.approx(2.0)]


def test_rate_limit_headers_pause_the_host_until_reset() -> None:
    fake = FakeTime()
    with FaultServer() as server:
        github = LimitConfig(rate=10.0, burst=5.0, rate_limit_headers="github")
        limits = fast_limits(**{server.authority: github})
        reset = str(int(fake.epoch + 20))
        server.route(
            "/gh",
            Reply(200, headers=[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", reset)]),
        )

        async def go() -> None:
            async with make(fake, limits=limits) as fetcher:
                for _ in range(2):
                    assert (
                        await fetcher.fetch(Request(server.url("/gh")), source_kind="github")
                    ).ok

        run(go)
    assert fake.sleeps == [pytest.approx(20.0)]


def test_a_failing_host_does_not_affect_another() -> None:
    port = closed_port()
    with FaultServer() as bad, FaultServer() as good:
        bad.route("/x", Reply(503))
        good.route("/x", Reply(200, body=b"good"))

        async def go() -> tuple[list[FetchOutcome], dict[str, BreakerState]]:
            async with make(FakeTime(), config(max_attempts=2)) as fetcher:
                outcomes = await asyncio.gather(
                    fetcher.fetch(Request(bad.url("/x")), source_kind="rss"),
                    fetcher.fetch(Request(good.url("/x")), source_kind="rss"),
                    fetcher.fetch(Request(f"http://127.0.0.1:{port}/x"), source_kind="rss"),
                )
                states = {host: b.state for host, b in fetcher.breakers().items()}
                metrics = fetcher.breaker(good.authority).metrics()
                assert metrics.failed == 0
                assert metrics.calls == 1
                return list(outcomes), states

        (failing, fine, refused), states = run(go)
    assert fine.ok
    assert fine.exchange is not None
    assert fine.exchange.body == b"good"
    assert failing.error == "HTTP 503 Service Unavailable after 2 attempts"
    assert refused.error is not None
    assert refused.error.startswith("connection refused")
    assert set(states) == {bad.authority, good.authority, f"127.0.0.1:{port}"}


def test_stop_starting_lets_in_flight_finish_and_refuses_new() -> None:
    with FaultServer() as server:
        server.route("/slow", Reply(200, delay=0.3, body=b"done"))

        async def go() -> tuple[FetchOutcome, FetchOutcome]:
            fetcher = make(FakeTime())
            running = asyncio.create_task(
                fetcher.fetch(Request(server.url("/slow")), source_kind="rss")
            )
            await asyncio.sleep(0.1)
            assert fetcher.in_flight == 1
            fetcher.stop_starting()
            refused = await fetcher.fetch(Request(server.url("/slow")), source_kind="rss")
            await fetcher.aclose()  # waits for the one in flight
            assert running.done()
            return running.result(), refused

        finished, refused = run(go)
        assert server.hits("/slow") == 1
    assert finished.ok
    assert finished.exchange is not None
    assert finished.exchange.body == b"done"
    assert refused == FetchOutcome(None, "shutting down: not started", 0)


def test_stop_starting_cuts_a_retry_wait_short() -> None:
    with FaultServer() as server:
        server.route("/r", retry_after(20))

        async def go() -> FetchOutcome:
            fetcher = Fetcher(config(), limits=fast_limits())  # real clock, real sleep
            running = asyncio.create_task(
                fetcher.fetch(Request(server.url("/r")), source_kind="rss")
            )
            await asyncio.sleep(0.2)
            fetcher.stop_starting()
            outcome = await running
            await fetcher.aclose()
            return outcome

        started = time.monotonic()
        outcome = run(go)
        took = time.monotonic() - started
        assert server.hits("/r") == 1
    assert took < 5.0
    assert outcome.attempts == 1
    assert outcome.error == "HTTP 429 Too Many Requests; not retried: shutting down"


def test_any_httpx_transport_can_be_injected() -> None:

    def handler(request: httpx.Request) -> httpx.Response:
        body = gzip.compress(b"mocked " + request.url.path.encode())
        return httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=body)

    outcome = fetch_one(
        make(FakeTime(), transport=httpx.MockTransport(handler)), "https://example.invalid/p"
    )
    assert outcome.ok
    assert outcome.exchange is not None
    assert outcome.exchange.body == b"mocked /p"  # decoded once, whoever built the response
