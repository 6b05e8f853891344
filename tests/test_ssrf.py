"""The SSRF guard: private addresses refused on the first request and every redirect.

Real loopback servers (plain HTTP and TLS), the real engine and the real
``echoctl``. The guard judges the address a name resolved to and connects to
that address; the tests inject a resolver (names under ``.test`` that the
system cannot resolve) and, where a loopback server must play a public host,
a policy that lets exactly 127.0.0.1 through, so everything else is judged
by the real rule.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from echo_archive.harvest.addresses import IPAddress, refusal
from echo_archive.harvest.engine import FetchConfig, Fetcher, FetchOutcome
from echo_archive.harvest.limits import DEFAULT_LIMITS, HostLimits, LimitConfig
from echo_archive.harvest.network import LiveTransport
from echo_archive.harvest.stores import MemoryBreakerStore
from echo_archive.model import Request
from echo_archive.services.feeds import add_feed, list_feeds, remove_feed

from .conftest import run_echoctl
from .httpfaults import FaultServer, Reply, redirect

LOOPBACK = ipaddress.IPv4Address("127.0.0.1")
RSS = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
    b"<item><guid>a</guid><title>one</title><link>https://x.org/a</link></item>"
    b"</channel></rss>"
)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "unique local"),
        ("fc00::1", "unique local"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("fe80::1%2", "link-local"),
        ("100.64.0.1", "CGNAT"),
        ("100.127.255.255", "CGNAT"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 - an address judged, not bound
        ("0.1.2.3", "unspecified"),
        ("::", "unspecified"),
        ("255.255.255.255", "broadcast"),
        ("240.0.0.1", "reserved"),
        ("192.0.0.8", "IETF protocol"),
        ("fec0::1", "site-local"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:169.254.169.254", "link-local"),
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of 169.254.169.254
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("2002:0a00:0001::", "private"),  # 6to4 of 10.0.0.1
    ],
)
def test_special_purpose_addresses_are_refused(address: str, kind: str) -> None:
    why = refusal(ipaddress.ip_address(address))
    assert why is not None
    assert kind in why
    assert "RFC" in why


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "93.184.215.14",
        "151.101.1.140",
        "100.63.255.255",  # just below CGNAT
        "100.128.0.0",  # just above CGNAT
        "172.15.255.255",
        "172.32.0.0",
        "192.0.1.1",
        "2606:4700:4700::1111",
        "2a00:1450:4001::200e",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:0808:0808::",
    ],
)
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


# --- the engine ---------------------------------------------------------------


def _limits() -> HostLimits:
    quick = LimitConfig(rate=1000.0, burst=1000.0, concurrency=8)
    return HostLimits(profiles={**DEFAULT_LIMITS, "rss": quick})


def _only_loopback(address: IPAddress) -> str | None:
    """The test's policy: 127.0.0.1 plays a public host; every other address by the real rule."""
    return None if address == LOOPBACK else refusal(address)


class Names:
    """A resolver for names the system cannot resolve, counting its lookups."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.lookups.append(host)
        queue = self.answers.get(host)
        if not queue:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        found = queue.pop(0) if len(queue) > 1 else queue[0]
        return [ipaddress.ip_address(a) for a in found]


def _fetch(
    url: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    config: FetchConfig | None = None,
    allow_private: bool = False,
    breakers: MemoryBreakerStore | None = None,
) -> FetchOutcome:
    async def go() -> FetchOutcome:
        async with Fetcher(
            config or FetchConfig(max_attempts=3, backoff_base=0.01, backoff_cap=0.02),
            transport=transport,
            limits=_limits(),
            breakers=breakers,
        ) as fetcher:
            return await fetcher.fetch(Request(url), source_kind="rss", allow_private=allow_private)

    return asyncio.run(go())


def test_a_loopback_feed_is_refused_by_default_and_nothing_is_sent() -> None:
    breakers = MemoryBreakerStore()
    with FaultServer() as server:
        server.route("/feed.xml", Reply(200, body=RSS))
        outcome = _fetch(server.url("/feed.xml"), breakers=breakers)
        assert server.requests == []  # refused before a byte was sent
    assert outcome.exchange is None
    assert outcome.attempts == 1  # final: a refusal is never retried
    assert outcome.error is not None
    assert outcome.error.startswith("refused to connect to 127.0.0.1: a loopback address")
    assert "allow_private = true" in outcome.error
    assert breakers.load(server.authority) is None  # not a failure of the host


def test_an_ipv6_loopback_literal_is_refused() -> None:
    outcome = _fetch("http://[::1]:9/feed.xml")
    assert outcome.error is not None
    assert outcome.error.startswith("refused to connect to ::1: a loopback address")


def test_a_name_resolving_to_a_private_address_is_refused_naming_both() -> None:
    names = Names({"intranet.test": [["10.0.0.7"]]})
    outcome = _fetch("http://intranet.test/feed.xml", transport=LiveTransport(resolver=names))
    assert outcome.error is not None
    assert outcome.error.startswith(
        "refused to connect to 10.0.0.7 (host intranet.test): a private address (RFC 1918)"
    )


def test_one_private_address_among_public_ones_refuses_the_name() -> None:
    names = Names({"mixed.test": [["127.0.0.1", "169.254.169.254"]]})
    transport = LiveTransport(resolver=names, policy=_only_loopback)
    outcome = _fetch("http://mixed.test/x", transport=transport)
    assert outcome.error is not None
    assert "169.254.169.254 (host mixed.test)" in outcome.error


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/latest/meta-data/",
        "http://10.0.0.1/admin",
        "http://[fd12::1]:8080/",
        "http://0.0.0.0:{port}/feed.xml",
        "http://127.0.0.2:{port}/feed.xml",
        "http://localhost.test:{port}/feed.xml",
    ],
)
def test_a_redirect_to_a_private_address_is_not_followed(target: str) -> None:
    names = Names({"localhost.test": [["127.0.0.2"]], "public.test": [["127.0.0.1"]]})
    transport = LiveTransport(resolver=names, policy=_only_loopback)
    with FaultServer() as server:
        location = target.format(port=server.port)
        server.route("/feed.xml", redirect(location))
        outcome = _fetch(f"http://public.test:{server.port}/feed.xml", transport=transport)
        assert [r.path for r in server.requests] == ["/feed.xml"]  # the first hop only
    assert outcome.error is not None
    assert outcome.error.startswith("redirect to ")
    assert " not followed: refused to connect to " in outcome.error
    assert outcome.attempts == 1


def test_the_connection_goes_to_the_checked_address_not_a_second_lookup() -> None:
    # DNS rebinding: the first answer is "public", any later one private. The guard
    # resolves once per connection and connects to that address; the system resolver,
    # which cannot resolve rebind.test at all, is never asked.
    names = Names({"rebind.test": [["127.0.0.1"], ["10.0.0.1"]]})
    transport = LiveTransport(resolver=names, policy=_only_loopback)
    with FaultServer() as server:
        server.route("/feed.xml", Reply(200, body=RSS))
        outcome = _fetch(f"http://rebind.test:{server.port}/feed.xml", transport=transport)
        assert outcome.error is None
        assert outcome.exchange is not None
        assert outcome.exchange.body == RSS
        (seen,) = server.requests
        assert dict((k.lower(), v) for k, v in seen.headers)["host"] == (
            f"rebind.test:{server.port}"
        )
        assert names.lookups == ["rebind.test"]
        again = _fetch(f"http://rebind.test:{server.port}/feed.xml", transport=transport)
        assert again.error is not None
        assert "10.0.0.1 (host rebind.test)" in again.error
        assert len(server.requests) == 1


def test_an_unresolvable_name_is_a_dns_failure_as_before() -> None:
    outcome = _fetch(
        "http://nowhere.test/feed.xml",
        transport=LiveTransport(resolver=Names({})),
        config=FetchConfig(max_attempts=1),
    )
    assert outcome.error is not None
    assert "nowhere.test" in outcome.error
    assert "Name or service not known" in outcome.error


def test_allow_private_per_fetch_uses_its_own_connections() -> None:
    with FaultServer() as server:
        server.route("/feed.xml", Reply(200, body=RSS))

        async def go() -> tuple[FetchOutcome, FetchOutcome, FetchOutcome]:
            async with Fetcher(FetchConfig(), limits=_limits()) as fetcher:
                request = Request(server.url("/feed.xml"))
                allowed = await fetcher.fetch(request, source_kind="rss", allow_private=True)
                guarded = await fetcher.fetch(request, source_kind="rss")
                again = await fetcher.fetch(request, source_kind="rss", allow_private=True)
                return allowed, guarded, again

        allowed, guarded, again = asyncio.run(go())
        assert len(server.requests) == 2
    assert allowed.error is None
    assert allowed.exchange is not None
    assert allowed.exchange.status == 200
    assert guarded.error is not None
    assert guarded.error.startswith("refused to connect")
    assert again.error is None


def test_allow_private_vault_wide_in_fetch_config() -> None:
    with FaultServer() as server:
        server.route("/a", redirect("/b"))
        server.route("/b", Reply(200, body=b"ok"))
        outcome = _fetch(server.url("/a"), config=FetchConfig(allow_private=True))
    assert outcome.error is None
    assert outcome.exchange is not None
    assert outcome.exchange.body == b"ok"
    assert outcome.exchange.redirects == (server.url("/a"),)


# --- TLS: the certificate is still checked for the URL's host name ----------------


def _certificate(name: str) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), pem_key


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, bytes]]:
    cert, key = _certificate("feeds.test")
    (tmp_path / "cert.pem").write_bytes(cert)
    (tmp_path / "key.pem").write_bytes(key)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(RSS)))
            self.end_headers()
            self.wfile.write(RSS)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], cert
    finally:
        server.shutdown()
        server.server_close()


def test_tls_verifies_the_host_name_while_connecting_to_the_checked_address(
    tls_server: tuple[int, bytes],
) -> None:
    port, cert = tls_server
    trusted = ssl.create_default_context(cadata=cert.decode("ascii"))
    names = Names({"feeds.test": [["127.0.0.1"]], "other.test": [["127.0.0.1"]]})
    transport = LiveTransport(resolver=names, policy=_only_loopback, ssl_context=trusted)
    ok = _fetch(f"https://feeds.test:{port}/feed.xml", transport=transport)
    assert ok.error is None
    assert ok.exchange is not None
    assert ok.exchange.body == RSS
    # the same address under a name the certificate does not cover: refused by TLS
    wrong = _fetch(
        f"https://other.test:{port}/feed.xml",
        transport=LiveTransport(resolver=names, policy=_only_loopback, ssl_context=trusted),
        config=FetchConfig(max_attempts=1),
    )
    assert wrong.exchange is None
    assert wrong.error is not None
    assert "certificate" in wrong.error.lower()


# --- configuration and the CLI ------------------------------------------------------


def _local_only(vault: Path, url: str, *, allow_private: bool) -> None:
    for feed in list_feeds(vault):  # the starter feeds would reach the network
        assert feed.name is not None
        remove_feed(vault, feed.name)
    add_feed(vault, "local", "rss", params={"url": url}, allow_private=allow_private)


def _harvest(vault: Path) -> tuple[int, dict[str, object]]:
    done = run_echoctl("--vault", str(vault), "harvest", "--json")
    return done.returncode, json.loads(done.stdout)


def test_cli_harvest_refuses_a_loopback_feed_and_names_the_setting(vault_path: Path) -> None:
    with FaultServer() as server:
        server.route("/feed.xml", Reply(200, body=RSS))
        _local_only(vault_path, server.url("/feed.xml"), allow_private=False)
        code, report = _harvest(vault_path)
        assert server.requests == []
    assert code == 4  # no feed harvested
    (feed,) = report["feeds"]  # type: ignore[misc]
    assert feed["failed"] is True
    assert "refused to connect to 127.0.0.1: a loopback address" in feed["error"]


def test_cli_feeds_add_allow_private_lets_that_feed_through(vault_path: Path) -> None:
    with FaultServer() as server:
        server.route("/feed.xml", Reply(200, body=RSS))
        for feed in list_feeds(vault_path):
            assert feed.name is not None
            remove_feed(vault_path, feed.name)
        added = run_echoctl(
            "--vault", str(vault_path), "feeds", "add", "local", "--source", "rss",
            "--param", f"url={server.url('/feed.xml')}", "--allow-private", "--json",
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        assert json.loads(added.stdout)["allow_private"] is True
        text = (vault_path / "echo.toml").read_text()
        assert "allow_private = true" in text
        listed = run_echoctl("--vault", str(vault_path), "feeds", "list")
        assert "private ok" in listed.stdout
        code, report = _harvest(vault_path)
        assert len(server.requests) == 1
    assert code == 0, report
    (feed,) = report["feeds"]  # type: ignore[misc]
    assert feed["failed"] is False
    assert feed["new"] == 1


def test_cli_harvest_allow_private_vault_wide(vault_path: Path) -> None:
    with FaultServer() as server:
        server.route("/feed.xml", redirect("/moved.xml"))
        server.route("/moved.xml", Reply(200, body=RSS))
        _local_only(vault_path, server.url("/feed.xml"), allow_private=False)
        config = vault_path / "echo.toml"
        config.write_text(config.read_text() + "\n[harvest]\nallow_private = true\n")
        code, report = _harvest(vault_path)
        assert [r.path for r in server.requests] == ["/feed.xml", "/moved.xml"]
    assert code == 0, report


def test_a_non_boolean_allow_private_fails_that_feed_alone(vault_path: Path) -> None:
    config = vault_path / "echo.toml"
    config.write_text(
        config.read_text()
        + '\n[[feeds]]\nname = "bad"\nsource = "rss"\nallow_private = "yes"\n'
        + '[feeds.params]\nurl = "http://127.0.0.1:9/f.xml"\n'
    )
    listed = run_echoctl("--vault", str(vault_path), "feeds", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (bad,) = [f for f in json.loads(listed.stdout) if f["name"] == "bad"]
    assert "allow_private: must be true or false" in bad["error"]
