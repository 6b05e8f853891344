"""``harvest``: one harvest cycle of 200 RSS feeds against a slow loopback server.

The server (this file run with ``--serve``, in its own process so it takes no
CPU time or GIL from the harvester) listens on :data:`HOSTS` ports of
127.0.0.1; the engine's host key includes the port, so each port is a host
with its own limits. Feed ``k`` is ``http://127.0.0.1:<port k % HOSTS>/feed/<k>.xml``
(:data:`FEEDS_PER_HOST` feeds per host, interleaved); every response is the
real feed document ``feeds/feedjira/TechCrunch.xml`` from the shared corpora,
sent :data:`LATENCY` seconds after the request was read.

Every host has the same :class:`LimitConfig` (:data:`LIMIT`): ``rate`` tokens
per second into a bucket of ``burst`` that starts full, at most ``concurrency``
requests in flight. The lower bound those limits allow for ``n`` requests on
one host, each taking at least ``L`` seconds::

    rate:        request k (k = 1..n) cannot leave before (k - burst) / rate,
                 so the last one ends no sooner than max(0, n - burst) / rate + L
    concurrency: at most c in flight, each >= L: no sooner than ceil(n / c) * L
    bound(host)  = max(max(0, n - b) / r + L, ceil(n / c) * L)
    lower bound  = max over hosts of bound(host)

The concurrent cycle is one :meth:`HarvestRun.run` over the 200 feeds in a
fresh vault, with the real :class:`Fetcher` over real sockets (real sleeps),
breakers and validators in the vault. The serial time is measured, not
computed: the same 200 feeds, one :meth:`HarvestRun.run` per feed, one after
the other, same limits, in another fresh vault. Feeds alternate over the hosts,
so a host sees one request every ``HOSTS`` feeds and its rate never makes the
serial run wait: its time is 200 x (latency + the per-feed work).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import shutil
import subprocess
import sys
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from echo_archive.harvest.cycle import HarvestReport, HarvestRun
from echo_archive.harvest.engine import FetchConfig, Fetcher
from echo_archive.harvest.limits import HostLimits, LimitConfig
from echo_archive.harvest.stores import VaultBreakerStore, VaultConditionalCache
from echo_archive.model import Exchange
from echo_archive.sources.base import Feed
from echo_archive.sources.rss import RssSource
from echo_archive.vault.vault import Vault
from workload import ORIGIN, Result, say

CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"
DOCUMENT = CORPORA / "feeds" / "feedjira" / "TechCrunch.xml"

FEEDS = 200
HOSTS = 10
FEEDS_PER_HOST = FEEDS // HOSTS
LATENCY = 0.100  # seconds the server waits before each response
LIMIT = LimitConfig(rate=5.0, burst=1.0, concurrency=2)
RATIO_TARGET = 1.5  # cycle / lower bound
CLAIMED_SPEEDUP = 8.0  # the ECHO phase-2 report: "8x over serial"


def lower_bound(n: int, limit: LimitConfig, latency: float) -> tuple[float, float, float]:
    """The shortest time ``limit`` allows for ``n`` requests of ``latency`` s on one host.

    Returns:
        ``(bound, by_rate, by_concurrency)`` in seconds.
    """
    by_rate = max(0.0, n - limit.burst) / limit.rate + latency
    by_concurrency = math.ceil(n / limit.concurrency) * latency
    return max(by_rate, by_concurrency), by_rate, by_concurrency


def run(out: Path) -> Result:
    """Run the concurrent cycle and the serial run; report the cycle against the bound."""
    result = Result("harvest")
    if not DOCUMENT.is_file():
        raise SystemExit(f"the corpus feed {DOCUMENT} is missing")
    body = DOCUMENT.read_bytes()
    work = out / "harvest"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)

    bound, by_rate, by_conc = lower_bound(FEEDS_PER_HOST, LIMIT, LATENCY)
    n, r, b, c, lat = FEEDS_PER_HOST, LIMIT.rate, LIMIT.burst, LIMIT.concurrency, LATENCY
    say(
        f"harvest: {FEEDS} feeds on {HOSTS} loopback hosts ({n} each), {lat * 1000:.0f} ms "
        f"per response, {DOCUMENT.name} ({len(body):,} bytes) per feed"
    )
    say(f"  limits per host: rate r = {r:g} req/s, burst b = {b:g}, concurrency c = {c}")
    say(
        f"  lower bound = max over hosts of max(max(0, n - b) / r + L, ceil(n / c) * L)"
        f" = max({max(0, n - b):g} / {r:g} + {lat:g}, {math.ceil(n / c)} x {lat:g})"
        f" = max({by_rate:.2f}, {by_conc:.2f}) = {bound:.2f} s"
    )

    with FeedServer(HOSTS, LATENCY, DOCUMENT) as server:
        feeds = [
            Feed(f"feed-{k:03d}", "rss", {"url": server.url(k % HOSTS, f"/feed/{k}.xml")})
            for k in range(FEEDS)
        ]
        say("  concurrent cycle: one HarvestRun over the 200 feeds ...")
        cycle, report = asyncio.run(_concurrent(work / "concurrent", feeds, server.hosts))
        concurrent_stats = server.stats()
        _check(report, "concurrent")
        say(f"  concurrent cycle: {cycle:.2f} s ({cycle / bound:.2f}x the lower bound)")
        say("  serial run: one HarvestRun per feed, one feed at a time ...")
        serial, feed_seconds, serial_reports = asyncio.run(
            _serial(work / "serial", feeds, server.hosts)
        )
        for rep in serial_reports:
            _check(rep, "serial")
        say(f"  serial run: {serial:.2f} s")
    shutil.rmtree(work, ignore_errors=True)

    ratio = cycle / bound
    work_ms = (feed_seconds / FEEDS - LATENCY) * 1000
    parse_ms = _parse_ms(body)
    speedup = serial / cycle
    ceiling = FEEDS * LATENCY / bound
    new_items = sum(f.new for f in report.feeds)
    result.add("cycle seconds (200 feeds, concurrent)", cycle, "s")
    result.add("lower bound the limits allow", bound, "s")
    fig = result.add("ratio cycle / lower bound", ratio, "x")
    fig.target, fig.ok = f"<= {RATIO_TARGET:g}", ratio <= RATIO_TARGET
    result.add("serial seconds (measured, one feed at a time)", serial, "s")
    result.add("speedup serial / concurrent", speedup, "x")

    in_flight = concurrent_stats["max_in_flight"]
    result.notes.append(
        f"{FEEDS} RSS feeds over {HOSTS} hosts (127.0.0.1, {HOSTS} ports; the engine's host "
        f"key includes the port), {n} per host; each response is {DOCUMENT.name} "
        f"({len(body):,} bytes, {report.feeds[0].new} items) after {lat * 1000:.0f} ms; "
        f"the server runs in its own process"
    )
    result.notes.append(
        f"limits per host: rate r = {r:g} req/s, burst b = {b:g}, concurrency c = {c}; "
        f"lower bound = max over hosts of max(max(0, n - b) / r + L, ceil(n / c) * L) "
        f"= max({max(0, n - b):g}/{r:g} + {lat:g}, {math.ceil(n / c)} x {lat:g}) = {bound:.2f} s"
    )
    result.notes.append(
        f"concurrent cycle: {cycle:.2f} s, {new_items:,} new items, "
        f"{sum(f.captures for f in report.feeds)} captures; seen at the server: at most "
        f"{max(in_flight.values())} requests in flight per host (limit c = {c}), at most "
        f"{concurrent_stats['max_per_second']} requests to one host within 1 s (the bucket "
        f"hands out b + r x 1 s = {b + r:g}), closest two requests to one host "
        f"{concurrent_stats['min_gap'] * 1000:.0f} ms apart (1/r = {1000 / r:.0f} ms)"
    )
    result.notes.append(
        f"work per feed outside the {lat * 1000:.0f} ms wait (serial feed time - L: receive, "
        f"parse, version, commit), from the serial run, which parses on the event loop: "
        f"{work_ms:.1f} ms; {FEEDS} x {work_ms:.1f} ms = {FEEDS * work_ms / 1000:.2f} s, more "
        f"than the {bound:.2f} s bound if one thread did it all, hence the concurrent run's 2 "
        f"parse worker processes; parsing {DOCUMENT.name} alone takes {parse_ms:.1f} ms "
        f"(RssSource.parse, measured apart)"
    )
    result.notes.append(
        f"serial (measured): {serial:.2f} s wall for {FEEDS} HarvestRun.run([feed]) calls "
        f"(sum of the per-feed cycle times {feed_seconds:.2f} s, the rest is saving "
        f"{FEEDS} run reports); pure latency alone would be {FEEDS} x {lat:g} = "
        f"{FEEDS * lat:.1f} s"
    )
    result.notes.append(
        f"speedup {speedup:.2f}x over serial; the ECHO phase-2 report claims "
        f"{CLAIMED_SPEEDUP:g}x. These limits cap it at about {FEEDS} x L / bound = "
        f"{ceiling:.1f}x, so the claim depends on how many hosts the feeds spread over "
        f"and their limits, not on the engine alone"
    )
    result.details = {
        "feeds": FEEDS,
        "hosts": HOSTS,
        "latency_s": LATENCY,
        "limit": {"rate": r, "burst": b, "concurrency": c},
        "lower_bound_s": bound,
        "bound_by_rate_s": by_rate,
        "bound_by_concurrency_s": by_conc,
        "cycle_s": cycle,
        "serial_s": serial,
        "serial_feed_seconds_sum": feed_seconds,
        "work_per_feed_ms": work_ms,
        "parse_ms": parse_ms,
        "new_items": new_items,
        "server": concurrent_stats,
    }
    return result


def _parse_ms(body: bytes, rounds: int = 20) -> float:
    """Milliseconds :meth:`RssSource.parse` takes on ``body`` (median of ``rounds``)."""
    source = RssSource()
    feed = Feed("parse", "rss", {"url": "http://127.0.0.1/feed.xml"})
    (request,) = source.plan(feed)
    exchange = Exchange(
        "GET", request.url, 200, (("Content-Type", "application/rss+xml"),), body, request.url
    )
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        source.parse(feed, request, exchange)
        times.append(time.perf_counter() - t0)
    return sorted(times)[rounds // 2] * 1000


def _check(report: HarvestReport, label: str) -> None:
    bad = [f for f in report.feeds if f.error or f.failed or f.requests != {"200": 1}]
    if bad:
        first = bad[0]
        raise SystemExit(
            f"{label}: {len(bad)} feed(s) did not harvest cleanly, e.g. {first.name}: "
            f"{first.requests} {first.error}"
        )


def _fetcher(vault: Vault, hosts: list[str]) -> Fetcher:
    return Fetcher(
        FetchConfig(allow_private=True),  # the benchmark's feed servers are on loopback
        limits=HostLimits(dict.fromkeys(hosts, LIMIT)),
        breakers=VaultBreakerStore(vault),
        cache=VaultConditionalCache(vault),
    )


async def _concurrent(path: Path, feeds: list[Feed], hosts: list[str]) -> tuple[float, Any]:
    with Vault.create(path, origin=ORIGIN) as vault:
        async with _fetcher(vault, hosts) as fetcher:
            # As `echoctl harvest` does from 10 feeds: parsing in 2 worker processes
            # (their start-up is inside the timed cycle).
            job = HarvestRun(vault, fetcher, {"rss": RssSource()}, env={}, parse_workers=2)
            t0 = time.perf_counter()
            report = await job.run(feeds)
            seconds = time.perf_counter() - t0
    return seconds, report


async def _serial(
    path: Path, feeds: list[Feed], hosts: list[str]
) -> tuple[float, float, list[HarvestReport]]:
    reports = []
    with Vault.create(path, origin=ORIGIN) as vault:
        async with _fetcher(vault, hosts) as fetcher:
            job = HarvestRun(vault, fetcher, {"rss": RssSource()}, env={})
            t0 = time.perf_counter()
            for feed in feeds:
                reports.append(await job.run([feed]))
            seconds = time.perf_counter() - t0
    return seconds, sum(r.feeds[0].seconds for r in reports), reports


# --------------------------------------------------------------------------- the server


class FeedServer:
    """The loopback feed server in a child process (``--serve``): ports, URLs, statistics.

    Also serves ``bench_service`` (the ``idle`` benchmark's feeds) and, with
    ``faults``, ``bench_soak``: small generated feeds with scripted faults
    (:func:`fault_reply`) instead of ``document``.
    """

    def __init__(self, hosts: int, latency: float, document: Path, faults: bool = False) -> None:
        self._args = [str(hosts), str(latency), str(document), "faults" if faults else "plain"]
        self._proc: subprocess.Popen[str] | None = None
        self.ports: list[int] = []

    def __enter__(self) -> FeedServer:
        self._proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve", *self._args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise SystemExit("the loopback server did not start")
        self.ports = json.loads(line)["ports"]
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._proc is not None and self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.write("quit\n")
            self._proc.stdin.flush()
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    @property
    def hosts(self) -> list[str]:
        """The engine's host keys, one per port."""
        return [f"127.0.0.1:{p}" for p in self.ports]

    def url(self, host: int, path: str) -> str:
        """The URL of ``path`` on host number ``host``."""
        return f"http://127.0.0.1:{self.ports[host]}{path}"

    def stats(self) -> dict[str, Any]:
        """Requests so far: per-host peak in flight, smallest gap between arrivals; then reset."""
        assert self._proc is not None
        assert self._proc.stdin is not None
        assert self._proc.stdout is not None
        self._proc.stdin.write("stats\n")
        self._proc.stdin.flush()
        stats: dict[str, Any] = json.loads(self._proc.stdout.readline())
        return stats


RSS_TYPE = "application/rss+xml; charset=utf-8"


def fault_reply(
    path: str, hit: int, authority: str
) -> tuple[int, list[tuple[str, str]], bytes, float]:
    """The soak's reply to the ``hit``-th request (from 0) of ``/feed/<k>.xml``.

    ``(status, headers, body, delay seconds)``: a small RSS document of 5
    items whose newest changes every 10th request (new items, so versions and
    commits), with a fault by feed class ``k % 10``: 0, a 503 every 3rd
    request; 1, a 429 with ``Retry-After: 1`` every 4th; 2, a truncated
    document (a parse error) every 5th; 3, a reply 0.5 s late every 7th; the
    others none. Item links point back at this server (``authority``, the
    request's ``Host``), never elsewhere: the harvester checks the link of
    an item that left its feed, and such a page (``/item/...``) is a 200.
    """
    if path.startswith("/item/"):
        return 200, [("Content-Type", "text/html")], b"<html><body>still here</body></html>", 0.0
    try:
        k = int(path.rsplit("/", 1)[-1].split(".")[0])
    except ValueError:
        return 404, [], b"", 0.0
    kind = k % 10
    if kind == 0 and hit % 3 == 2:
        return 503, [], b"unavailable", 0.0
    if kind == 1 and hit % 4 == 3:
        return 429, [("Retry-After", "1")], b"slow down", 0.0
    first = hit // 10
    items = "".join(
        f"<item><guid>urn:soak:{k}:{i}</guid><title>Feed {k} item {i}</title>"
        f"<link>http://{authority}/item/{k}/{i}</link><description>Text {i}</description></item>"
        for i in range(first, first + 5)
    )
    body = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>soak</title>'
        f"<link>http://{authority}/</link><description>d</description>{items}</channel></rss>"
    ).encode()
    if kind == 2 and hit % 5 == 4:
        body = body[: len(body) // 2]
    delay = 0.5 if kind == 3 and hit % 7 == 6 else 0.0
    return 200, [("Content-Type", RSS_TYPE)], body, delay


def _serve(hosts: int, latency: float, document: Path, faults: bool = False) -> None:
    """Serve ``document`` after ``latency`` s on ``hosts`` ports until stdin says quit.

    With ``faults``, serve :func:`fault_reply` instead (after its own delay).
    """
    body = b"" if faults else document.read_bytes()
    hits: dict[str, int] = defaultdict(int)
    lock = threading.Lock()
    arrivals: dict[int, list[float]] = defaultdict(list)
    active: dict[int, int] = defaultdict(int)
    peak: dict[int, int] = defaultdict(int)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 30

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

        def do_GET(self) -> None:
            port = self.server.server_address[1]
            with lock:
                arrivals[port].append(time.monotonic())
                active[port] += 1
                peak[port] = max(peak[port], active[port])
            status, headers, content = 200, [("Content-Type", RSS_TYPE)], body
            delay = latency
            if faults:
                with lock:
                    hit = hits[self.path]
                    hits[self.path] += 1
                authority = f"127.0.0.1:{self.server.server_address[1]}"
                status, headers, content, delay = fault_reply(self.path, hit, authority)
            try:
                time.sleep(delay)
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)
                self.wfile.flush()
            finally:
                with lock:
                    active[port] -= 1

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 64

    servers = [Server(("127.0.0.1", 0), Handler) for _ in range(hosts)]
    for s in servers:
        threading.Thread(target=s.serve_forever, args=(0.05,), daemon=True).start()
    print(json.dumps({"ports": [s.server_address[1] for s in servers]}), flush=True)
    for line in sys.stdin:
        if line.strip() != "stats":
            break
        with lock:
            gaps = [b - a for times in arrivals.values() for a, b in itertools.pairwise(times)]
            report = {
                "requests": sum(len(t) for t in arrivals.values()),
                "max_in_flight": {str(p): peak[p] for p in arrivals},
                "min_gap": min(gaps) if gaps else 0.0,
                "max_per_second": max((_most_in(t, 1.0) for t in arrivals.values()), default=0),
            }
            arrivals.clear()
            peak.clear()
        print(json.dumps(report), flush=True)
    for s in servers:
        s.shutdown()
        s.server_close()


def _most_in(times: list[float], window: float) -> int:
    """The most of ``times`` (sorted) that fall within any ``window`` seconds."""
    most, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] > window:
            start += 1
        most = max(most, end - start + 1)
    return most


if __name__ == "__main__" and len(sys.argv) == 6 and sys.argv[1] == "--serve":
    _serve(int(sys.argv[2]), float(sys.argv[3]), Path(sys.argv[4]), sys.argv[5] == "faults")
