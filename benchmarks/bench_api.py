"""``api``: the HTTP API under load, and datasette serving the same catalog, side by side.

**The vault.** ``--api-items`` items (default :data:`DEFAULT_ITEMS`), archived
as RSS 2.0 documents of :data:`PER_FEED` items each through ``echoctl
import`` (the real import path: a capture per document, an item entry per
item, the derived indexes, the search index among them, kept at commit).
The vault is kept in ``<out>/api-vault`` and reused when it holds the same
number of items. An admin API key is made through the library before the
service starts.

**The load.** ``echoctl serve`` in its own process on loopback, ``[api]
rate_limit`` raised out of the way when the configuration has it (the
per-client limit is for hostile clients, not for a benchmark); then wrk
(Debian's package; a separate process, :data:`THREADS` threads,
:data:`CONNECTIONS` connections, :data:`SECONDS` s per endpoint, with the
key in ``X-API-Key``) against, one after the other:

* a deep keyset page ``/v1/items?limit=100&cursor=...`` (the cursor of the
  page halfway through the listing, found by walking it);
* ``/v1/items/{ref}`` of an item in the middle;
* ``/v1/proofs/inclusion?index=&size=`` of that item's entry;
* a full level-0 tile ``/tile/0/<N>`` (C2SP tlog-tiles);
* ``/v1/search?q=`` with the most common word of the items.

For each: requests/s and the latency p50/p95/p99 wrk measured (its Lua
``done`` hook prints them), the non-2xx count, and the service's resident
memory (psutil, sampled during the load; its maximum). Target (issue 11): p95 <
50 ms; RSS < 300 MB.

**The peer.** datasette (PyPI), started on the same ``catalog.sqlite`` once
the service has stopped (``--immutable``: datasette's fastest mode, no
locking), with the same wrk run against the equivalent items query: a page
of 100 rows of the ``items`` table halfway through, by the same keyset as
ECHO's (``_sort=first_idx&first_idx__gt=<the middle item's>``: ``WHERE
first_idx > ? ORDER BY first_idx LIMIT 100`` over the same index).
Target: ECHO's requests/s >= datasette's; the ratio is reported.

Run alone: ``.venv/bin/python benchmarks/run.py --only api [--api-items N]``.
"""

from __future__ import annotations

import json
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import httpx
import psutil

from bench_service import Serve
from echo_archive.api.keys import create_key
from echo_archive.api.roles import Role
from echo_archive.config import ApiSection
from echo_archive.vault.writer import VaultWriter
from workload import Result, say

DEFAULT_ITEMS = 100_000
PER_FEED = 1_000
THREADS = 2
CONNECTIONS = 50
SECONDS = 30
P95_TARGET_MS = 50.0
RSS_TARGET_MB = 300.0
WORDS = [
    "archive",
    "proof",
    "merkle",
    "signal",
    "news",
    "feed",
    "item",
    "tree",
    "log",
    "checkpoint",
    "vault",
    "witness",
    "capture",
    "editor",
    "market",
    "climate",
    "election",
    "court",
    "budget",
    "storm",
    "energy",
    "health",
    "science",
]
COMMON = "signal"
"""Every item's text holds it (see :func:`_feed_document`)."""

LUA = """
done = function(summary, latency, requests)
  io.write(string.format(
    "ECHO-WRK {\\"requests\\": %d, \\"seconds\\": %f, \\"p50\\": %f, \\"p95\\": %f, "
    .. "\\"p99\\": %f, \\"errors\\": %d, \\"non2xx\\": %d}\\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3,
    latency:percentile(95) / 1e3, latency:percentile(99) / 1e3,
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout, summary.errors.status))
end
"""


def _feed_document(f: int) -> str:
    parts = [
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Bench {f}</title><link>https://bench.example/{f}</link>"
        "<description>benchmark feed</description>"
    ]
    for i in range(PER_FEED):
        n = f * PER_FEED + i
        text = " ".join(WORDS[(n * 7 + k * 3) % len(WORDS)] for k in range(60)) + " " + COMMON
        parts.append(
            f"<item><title>Item {n} {WORDS[n % len(WORDS)]}</title>"
            f"<link>https://bench.example/{f}/{n}</link><guid>bench-{n}</guid>"
            "<pubDate>Mon, 07 Dec 2026 10:00:00 GMT</pubDate>"
            f"<author>a{n % 97}@bench.example</author>"
            f"<description>{escape(text)}</description></item>"
        )
    parts.append("</channel></rss>")
    return "".join(parts)


def _items_in(vault: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{vault / 'catalog.sqlite'}?mode=ro", uri=True)
        try:
            return int(con.execute("SELECT count(*) FROM items").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return -1


def build(out: Path, items: int) -> tuple[Path, float]:
    """The vault of ``items`` items (reused when it has them); seconds spent importing."""
    vault = out / "api-vault"
    if vault.exists() and _items_in(vault) == items:
        say(f"api: reusing {vault} ({items:,} items)")
        return vault, 0.0
    shutil.rmtree(vault, ignore_errors=True)
    docs = out / "api-feeds"
    shutil.rmtree(docs, ignore_errors=True)
    docs.mkdir(parents=True)
    paths = []
    for f in range((items + PER_FEED - 1) // PER_FEED):
        path = docs / f"feed-{f:05d}.xml"
        path.write_text(_feed_document(f), encoding="utf-8")
        paths.append(path)
    echoctl = [sys.executable, "-m", "echo_archive"]
    subprocess.run([*echoctl, "init", str(vault)], check=True, capture_output=True)
    started = time.perf_counter()
    for start in range(0, len(paths), 100):
        done = subprocess.run(
            [*echoctl, "--vault", str(vault), "import", *map(str, paths[start : start + 100])],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise SystemExit(f"echoctl import failed: {done.stderr[-2000:]}")
        say(f"api: imported {min(start + 100, len(paths)) * PER_FEED:,} items")
    seconds = time.perf_counter() - started
    shutil.rmtree(docs, ignore_errors=True)
    return vault, seconds


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wrk(url: str, headers: dict[str, str], script: Path, pid: int | None) -> dict[str, Any]:
    """One wrk run against ``url``: its figures, and the max RSS (MB) of ``pid`` meanwhile."""
    cmd = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "-s", str(script)]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    peak = [0.0]
    stop = threading.Event()

    def sample() -> None:
        if pid is None:
            return
        proc = psutil.Process(pid)
        while not stop.wait(0.5):
            peak[0] = max(peak[0], proc.memory_info().rss / 1e6)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    done = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=SECONDS + 120)
    stop.set()
    sampler.join()
    line = next((x for x in done.stdout.splitlines() if x.startswith("ECHO-WRK ")), None)
    if line is None:
        raise SystemExit(f"wrk printed no figures: {done.stdout[-1000:]} {done.stderr[-1000:]}")
    figures: dict[str, Any] = json.loads(line[len("ECHO-WRK ") :])
    figures["rps"] = figures["requests"] / figures["seconds"]
    figures["rss_mb"] = peak[0]
    return figures


def _deep_cursor(client: httpx.Client, items: int) -> tuple[str, dict[str, Any]]:
    """The cursor of the page halfway through ``/v1/items``, and an item of that page."""
    cursor: str | None = None
    seen = 0
    while True:
        params: dict[str, Any] = {"limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/v1/items", params=params).raise_for_status().json()
        seen += len(page["entries"])
        cursor = page.get("next")
        if cursor is None or seen >= items // 2:
            break
    if cursor is None:
        raise SystemExit("the items listing ended before its middle")
    first = client.get("/v1/items", params={"limit": 1, "cursor": cursor}).raise_for_status()
    return cursor, first.json()["entries"][0]


def run(out: Path, items: int | None = None) -> Result:
    """The ``api`` benchmark on a vault of ``items`` items (None: :data:`DEFAULT_ITEMS`)."""
    count = items or DEFAULT_ITEMS
    result = Result("api")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian's package wrk)")
    vault, build_s = build(out, count)
    if build_s:
        result.add("import of the vault", count / build_s, "items/s")
    toml = vault / "echo.toml"
    if "rate_limit" in ApiSection.model_fields and "rate_limit" not in toml.read_text("utf-8"):
        with toml.open("a", encoding="utf-8") as fh:
            fh.write("\n[api]\nrate_limit = 100000000\n")
    with VaultWriter.open(vault) as writer:
        key = create_key(
            writer, f"bench-{time.time_ns()}", Role.ADMIN, now=time.time(), actor="cli:bench"
        )[0]
    script = out / "report.lua"
    script.write_text(LUA, encoding="utf-8")
    headers = {"X-API-Key": key}
    serve = Serve(vault, out / "api-serve.log")
    serve.start()
    runs: dict[str, dict[str, Any]] = {}
    try:
        serve.wait_ready(headers=headers)
        assert serve.url is not None
        assert serve.proc is not None
        with httpx.Client(base_url=serve.url, headers=headers, timeout=120) as client:
            cursor, item = _deep_cursor(client, count)
            ref = item.get("ref") or item.get("id") or item.get("index")
            index = item.get("index")
            size = int(client.get("/v1/checkpoint").text.splitlines()[1])
        targets = {
            "items deep page": f"/v1/items?limit=100&cursor={cursor}",
            "item": f"/v1/items/{ref}",
            "inclusion proof": f"/v1/proofs/inclusion?index={index}&size={size}",
            "tile": "/tile/0/000",
            "search common word": f"/v1/search?q={COMMON}",
        }
        for name, path in targets.items():
            say(f"api: wrk {name}: {path[:80]}")
            runs[name] = wrk(serve.url + path, headers, script, serve.proc.pid)
    finally:
        serve.stop()
    datasette = shutil.which("datasette") or str(Path(sys.executable).with_name("datasette"))
    port = _free_port()
    catalog = vault / "catalog.sqlite"
    con = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True)
    try:  # the same keyset as ECHO's listing: first_idx > the middle one, in first_idx order
        middle = con.execute(
            "SELECT first_idx FROM items ORDER BY first_idx LIMIT 1 OFFSET ?", (count // 2,)
        ).fetchone()[0]
    finally:
        con.close()
    (out / "api-runs.json").write_text(json.dumps(runs, indent=1), encoding="utf-8")
    peer = subprocess.Popen(
        [
            datasette,
            "serve",
            "--immutable",
            str(catalog),
            "-p",
            str(port),
            "--setting",
            "sql_time_limit_ms",
            "10000",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        page = f"{base}/catalog/items.json?_size=100&_sort=first_idx&first_idx__gt={middle}"
        for _ in range(300):
            try:
                if httpx.get(page, timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        say("api: wrk datasette items page")
        runs["datasette items deep page"] = wrk(page, {}, script, peer.pid)
    finally:
        peer.terminate()
        peer.wait(30)
    for name, fig in runs.items():
        if name.startswith("datasette"):
            result.add(f"{name}: requests/s", fig["rps"], "req/s")
            result.add(f"{name}: p95", fig["p95"], "ms")
            continue
        result.add(f"{name}: requests/s", fig["rps"], "req/s")
        result.add(f"{name}: p95", fig["p95"], "ms", below=P95_TARGET_MS)
        result.notes.append(
            f"{name}: p50 {fig['p50']:.1f} ms, p99 {fig['p99']:.1f} ms, "
            f"{fig['non2xx']} non-2xx, {fig['errors']} socket errors"
        )
    ours = runs["items deep page"]["rps"]
    theirs = runs["datasette items deep page"]["rps"]
    result.add("items page requests/s, ECHO / datasette", ours / theirs, "x", at_least=1.0)
    result.add(
        "service RSS under load (max)",
        max(f["rss_mb"] for n, f in runs.items() if not n.startswith("datasette")),
        "MB",
        below=RSS_TARGET_MB,
    )
    result.details["runs"] = runs
    result.details["items"] = count
    return result
