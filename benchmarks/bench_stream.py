"""``stream``: 1,000 SSE subscribers of ``GET /v1/stream`` while the service commits items.

**The service.** ``echoctl serve`` in its own process on loopback, over a
fresh vault with one RSS feed (``allow_private``) on a loopback feed server
of this process, whose document gains :data:`PER_ROUND` new items each
round; a viewer API key made through the library; ``[api] rate_limit``
raised out of the way (1,000 connections from one loopback client are not
an attack).

**The load.** :data:`SUBSCRIBERS` subscribers in :data:`LOAD_PROCESSES`
separate processes (this file with ``--load``: asyncio, one raw HTTP/1.1
connection per subscriber, a small ``text/event-stream`` reader following
WHATWG HTML §9.2.6 for ``event:``/``data:`` and blank-line dispatch), each
with ``kinds=item_archived``. Once every subscriber has its ``ready``
event, :data:`ROUNDS` rounds: the feed server's document gains
:data:`PER_ROUND` items and the service is asked to harvest the feed now
(its control socket, ``POST /control/harvest/{feed}``, as ``echoctl harvest
--now``); the service fetches, parses and commits them through its writer,
which publishes one bus event per item.

**The figures.** For every (subscriber, item): the delay from the item's
commit (its entry's ``logged_at``, taken by the writer job before the
durable commit, so the delay includes the commit's fsyncs) to the moment the
subscriber's process read the event's bytes, over the wall clock both
processes share: p50, p99 and the maximum (target, issue 11: p99 < 1 s);
how many of the expected receipts arrived (all of them, or the stream lost
some); and the service's resident memory (psutil, sampled every 0.2 s,
its maximum under the load; target < 300 MB), beside its RSS before the
subscribers connected. Nothing asserts on a time.

Run alone: ``.venv/bin/python benchmarks/run.py --only stream``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench_service import Serve, feed_table, fresh_vault
from echo_archive.api.keys import create_key
from echo_archive.api.roles import Role
from echo_archive.config import ApiSection
from echo_archive.service.runner import CONTROL_SOCKET
from echo_archive.vault.writer import VaultWriter
from workload import Result, percentile, say

SUBSCRIBERS = 1000
LOAD_PROCESSES = 2
ROUNDS = 20
PER_ROUND = 10
ROUND_GAP = 1.5  # seconds between two harvests
P99_TARGET_S = 1.0
RSS_TARGET_MB = 300.0
FEED = "bench-stream"
FILES_NEEDED = 4 * SUBSCRIBERS  # the service's sockets, the load's, and room for the vault


class _Feed:
    """The document the loopback feed server serves: the items of every round so far."""

    def __init__(self) -> None:
        self.items = 0
        self.lock = threading.Lock()

    def grow(self, n: int) -> None:
        with self.lock:
            self.items += n

    def document(self) -> bytes:
        with self.lock:
            count = self.items
        entries = "".join(
            f"<item><guid>urn:bench:{i}</guid><title>Item {i}</title>"
            f"<link>https://example.org/{i}</link></item>"
            for i in range(count)
        )
        return (
            '<?xml version="1.0"?><rss version="2.0"><channel><title>bench</title>'
            f"<link>https://example.org/</link><description>d</description>{entries}"
            "</channel></rss>"
        ).encode()


def _feed_server(feed: _Feed) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = feed.document()
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _raise_nofile(needed: int) -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to ``needed`` (or the hard limit); returns (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        top = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (top, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def _wait_ready(serve: Serve, headers: dict[str, str], timeout: float = 300.0) -> None:
    """Wait for ``/readyz`` 200 (with the key: authentication is configured)."""
    assert serve.proc is not None
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=5) as client:
        while time.monotonic() < deadline:
            if serve.proc.poll() is not None:
                raise SystemExit(f"echoctl serve exited {serve.proc.returncode}; see {serve.log}")
            if serve.url is None:
                serve.url = serve._url()
            if serve.url is not None:
                try:
                    if client.get(serve.url + "/readyz", headers=headers).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
    raise SystemExit(f"/readyz not 200 within {timeout:g} s; see {serve.log}")


def _sample_rss(pid: int, stop: threading.Event, samples: list[float]) -> None:
    proc = psutil.Process(pid)
    while not stop.wait(0.2):
        try:
            samples.append(proc.memory_info().rss / 1e6)
        except psutil.Error:
            return


def run(out: Path) -> Result:
    """The ``stream`` benchmark (see the module)."""
    result = Result("stream")
    soft, hard = _raise_nofile(FILES_NEEDED)
    if soft < FILES_NEEDED:
        result.notes.append(f"RLIMIT_NOFILE soft limit {soft} (hard {hard}): below {FILES_NEEDED}")
    root, vault = fresh_vault(out, "stream")
    feed = _Feed()
    server = _feed_server(feed)
    url = f"http://127.0.0.1:{server.server_address[1]}/feed.xml"
    with (vault / "echo.toml").open("a", encoding="utf-8") as fh:
        fh.write(feed_table(FEED, url, 86_400))
        if "rate_limit" in ApiSection.model_fields:
            fh.write("\n[api]\nrate_limit = 10000000\n")
    with VaultWriter.open(vault) as writer:
        key = create_key(
            writer, f"bench-{time.time_ns()}", Role.ANALYST, now=time.time(), actor="cli:bench"
        )[0]
    headers = {"X-API-Key": key}
    serve = Serve(vault, root / "serve.log")
    serve.start()
    loads: list[subprocess.Popen[str]] = []
    try:
        _wait_ready(serve, headers)
        assert serve.url is not None
        assert serve.proc is not None
        service = psutil.Process(serve.proc.pid)
        rss_idle = service.memory_info().rss / 1e6
        expected = ROUNDS * PER_ROUND
        share = [SUBSCRIBERS // LOAD_PROCESSES] * LOAD_PROCESSES
        share[0] += SUBSCRIBERS - sum(share)
        for n in share:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--load", serve.url, key]
            cmd += [str(n), str(expected)]
            loads.append(
                subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            )
        for proc in loads:  # each prints one line once all its subscribers have `ready`
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line.startswith("connected"):
                raise SystemExit(f"a load process did not connect: {line!r}")
        say(f"stream: {SUBSCRIBERS} subscribers connected; {ROUNDS} rounds of {PER_ROUND} items")
        stop = threading.Event()
        samples: list[float] = []
        sampler = threading.Thread(target=_sample_rss, args=(serve.proc.pid, stop, samples))
        sampler.start()
        rss_connected = service.memory_info().rss / 1e6
        sock = vault / CONTROL_SOCKET
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock)), timeout=60) as control:
            for _ in range(ROUNDS):
                feed.grow(PER_ROUND)
                reply = control.post(f"http://echo/control/harvest/{FEED}")
                if reply.status_code != 202:
                    raise SystemExit(f"harvest now: {reply.status_code} {reply.text}")
                time.sleep(ROUND_GAP)
        reports = []
        for proc in loads:
            assert proc.stdout is not None
            reports.append(json.loads(proc.stdout.readline()))
        stop.set()
        sampler.join()
    finally:
        for proc in loads:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
        serve.stop()
        server.shutdown()
    delays = [d for r in reports for d in r["delays"]]
    received = sum(r["received"] for r in reports)
    duplicates = sum(r["duplicates"] for r in reports)
    disorder = sum(r["out_of_order"] for r in reports)
    p50, p99 = percentile(delays, 50), percentile(delays, 99)
    say(
        f"stream: {received:,}/{SUBSCRIBERS * expected:,} receipts; delay p50 {p50 * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms; service RSS "
        f"{max(samples or [0.0]):.0f} MB under load ({rss_idle:.0f} MB before)"
    )
    result.add("commit to receipt, p50", p50 * 1000, "ms")
    result.add("commit to receipt, p99", p99, "s", below=P99_TARGET_S)
    result.add("commit to receipt, max", max(delays), "s")
    result.add("receipts (of subscribers x items)", received / (SUBSCRIBERS * expected), "x")
    result.add("service RSS under load", max(samples or [0.0]), "MB", below=RSS_TARGET_MB)
    result.add("service RSS before the subscribers", rss_idle, "MB")
    result.notes.append(
        f"{SUBSCRIBERS} SSE subscribers in {LOAD_PROCESSES} processes; {ROUNDS} harvests of "
        f"{PER_ROUND} new items {ROUND_GAP:g} s apart; {received:,} receipts of "
        f"{SUBSCRIBERS * expected:,}, {duplicates} duplicates, {disorder} out of order; "
        f"RSS {rss_connected:.0f} MB once connected; delay from the entry's logged_at"
    )
    result.details = {
        "subscribers": SUBSCRIBERS,
        "rounds": ROUNDS,
        "per_round": PER_ROUND,
        "rss_samples_mb": len(samples),
        "nofile": [soft, hard],
    }
    return result


# --------------------------------------------------------------------------- the load process


def _logged_at(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class _Counts:
    def __init__(self, total: int) -> None:
        self.total = total
        self.ready = 0
        self.all_ready = asyncio.Event()


async def _subscriber(
    host: str, port: int, key: str, expected: int, counts: _Counts, out: dict[str, Any]
) -> None:
    """One SSE subscriber on a raw HTTP/1.1 connection (chunked coding, RFC 9112 §7.1)."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        (
            f"GET /v1/stream?kinds=item_archived HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"X-API-Key: {key}\r\nAccept: text/event-stream\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    status = await reader.readline()
    if b" 200 " not in status:
        raise SystemExit(f"GET /v1/stream: {status!r}")
    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
        pass
    buffer = b""
    got = 0
    last = -1
    try:
        while got < expected:
            size = int((await reader.readline()).strip() or b"0", 16)
            if size == 0:
                break
            chunk = (await reader.readexactly(size + 2))[:-2]
            now = time.time()
            buffer += chunk
            while b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                event, data = "message", []
                for line in block.decode().split("\n"):
                    name, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if name == "event":
                        event = value
                    elif name == "data":
                        data.append(value)
                if not data:
                    continue
                if event == "ready":
                    counts.ready += 1
                    if counts.ready == counts.total:
                        counts.all_ready.set()
                elif event == "item_archived":
                    doc = json.loads("\n".join(data))
                    if doc["index"] == last:
                        out["duplicates"] += 1
                    elif doc["index"] < last:
                        out["out_of_order"] += 1
                    last = doc["index"]
                    out["delays"].append(round(now - _logged_at(doc["logged_at"]), 4))
                    got += 1
    finally:
        out["received"] += got
        writer.close()


async def _load(url: str, key: str, n: int, expected: int) -> dict[str, Any]:
    host, _, port = url.removeprefix("http://").rpartition(":")
    counts = _Counts(n)
    out: dict[str, Any] = {"delays": [], "received": 0, "duplicates": 0, "out_of_order": 0}
    tasks = []
    for _ in range(n):
        tasks.append(asyncio.create_task(_subscriber(host, int(port), key, expected, counts, out)))
        await asyncio.sleep(0.002)  # a ramp, not a SYN flood on the listen backlog
    await counts.all_ready.wait()
    print("connected", flush=True)
    done, pending = await asyncio.wait(tasks, timeout=ROUNDS * ROUND_GAP + 120)
    for task in pending:
        task.cancel()
    for task in done:
        if task.exception() is not None:
            out.setdefault("errors", []).append(repr(task.exception()))
    return out


def _load_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench_stream.py --load")
    parser.add_argument("url")
    parser.add_argument("key")
    parser.add_argument("n", type=int)
    parser.add_argument("expected", type=int)
    args = parser.parse_args(argv)
    _raise_nofile(FILES_NEEDED)
    report = asyncio.run(_load(args.url, args.key, args.n, args.expected))
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        sys.exit(_load_main(sys.argv[2:]))
    raise SystemExit("run through benchmarks/run.py --only stream")
