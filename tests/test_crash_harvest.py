"""Crash tests through the harvest commit path: SIGKILL a real harvesting process, then verify.

:mod:`tests.test_crash` kills a process that calls ``Vault.commit`` directly.
Here the child runs the whole harvest path instead: a loopback HTTP server (a
thread of the child) serves four RSS feeds whose documents change every
cycle (new items, edited titles, one feed with a body above the large-blob
threshold), and the child harvests them again and again with
:func:`echo_archive.services.harvest_once` through the vault's writer, so
every commit carries captures, items, versions and the derived rows (item
index, captures, observations) in one transaction. After each cycle returns
the child prints every ``(feed, guid, title)`` it served in that cycle: those
are acknowledged (the cycle committed them).

The parent kills the child with SIGKILL, after a random delay or at a chosen
step of the commit protocol (``ECHO_FAULT=point:KILL:n``), then checks
DESIGN.md invariant 2 the way ``echoctl verify --full`` does: the vault
opens, every blob, hash, checkpoint and *every* derived row checks out
(``verify(full=True)`` rebuilds the derived indexes and compares them all),
and every acknowledged title is in the archive as an item or a version of
that guid. 52 trials here, with the 56 of :mod:`tests.test_crash`: 108
SIGKILL trials in all.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from echo_archive.faults import POINTS
from echo_archive.services import open_vault
from echo_archive.services.verification import verify
from echo_archive.vault.vault import Vault

pytestmark = pytest.mark.slow

TRIALS = 52
"""SIGKILL trials in this module (the issue asks for at least 100 with test_crash's 56)."""

_CHILD = textwrap.dedent(
    """
    import asyncio, hashlib, sys, threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from pathlib import Path
    from echo_archive.services import harvest_once, open_vault, select_feeds

    path, base = Path(sys.argv[1]), int(sys.argv[2])
    served: dict[str, list[tuple[str, str]]] = {}
    counter = {"n": base}

    def document(feed: str, cycle: int) -> tuple[bytes, list[tuple[str, str]]]:
        entries = []
        for k in range(6):  # six standing items, each retitled every few cycles
            entries.append((f"{feed}-g{k}", f"{feed} g{k} r{(cycle + k) // 3}"))
        for c in range(max(0, cycle - 3), cycle + 1):  # a window of the newest items
            entries.append((f"{feed}-n{c}", f"{feed} new {c}"))
        pad = ""
        if feed == "f0":  # a body above the vault's 64 KiB large-blob threshold
            seed = hashlib.sha256(f"{feed}{cycle}".encode()).hexdigest()
            pad = "<description>" + seed * 2200 + "</description>"
        items = "".join(
            f"<item><guid>urn:{g}</guid><title>{t}</title>"
            f"<link>https://example.org/{g}</link>{pad if i == 0 else ''}</item>"
            for i, (g, t) in enumerate(entries)
        )
        body = (
            '<?xml version="1.0"?><rss version="2.0"><channel><title>' + feed
            + "</title><link>https://example.org/</link>" + items + "</channel></rss>"
        ).encode()
        return body, entries

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            feed = self.path.strip("/").split(".")[0]
            body, entries = document(feed, counter["n"])
            served[feed] = entries
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    from echo_archive.services import add_feed, list_feeds, remove_feed
    names = [f"f{i}" for i in range(4)]
    known = {f.name: f for f in list_feeds(path)}
    for name in names:
        url = f"http://127.0.0.1:{port}/{name}.xml"
        if name in known:
            remove_feed(path, name)
        add_feed(path, name, "rss", interval=3600, params={"url": url}, allow_private=True)
    with open_vault(path, write=True) as writer:
        feeds = select_feeds(writer, names).feeds
        for _ in range(400):  # bounded: a fault that is never reached cannot hang the test
            served.clear()
            report = asyncio.run(harvest_once(writer, feeds, parse_workers=0))
            failed = {f.name for f in report.feeds if f.failed or f.error}
            for feed, entries in sorted(served.items()):
                if feed in failed:
                    continue
                for guid, title in entries:
                    print("ACK", feed, "urn:" + guid, title.replace(" ", "_"), flush=True)
            print("CYCLE", counter["n"], flush=True)
            counter["n"] += 1
    print("DONE", flush=True)
    """
)


def _make_vault(root: Path) -> Path:
    """A vault with no starter feeds, 64 KiB large-blob threshold, loopback unthrottled."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / "vault"
    Vault.create(path).close()
    cfg = path / "echo.toml"
    text = cfg.read_text().replace("large_threshold = 16777216", "large_threshold = 65536")
    assert "large_threshold = 65536" in text
    cfg.write_text(text + '\n[limits."127.0.0.1"]\nrate = 1000\nburst = 100\nconcurrency = 8\n')
    from echo_archive.services import list_feeds, remove_feed

    for feed in list_feeds(path):  # the starter feeds would reach the network
        remove_feed(path, feed.name)
    return path


def _run_child(
    path: Path, base: int, fault: str | None, delay: float | None
) -> tuple[set[tuple[str, str, str]], int, int]:
    """Run one child; returns (acknowledged (feed, guid, title)), its exit code, cycles done."""
    env = dict(os.environ)
    env.pop("ECHO_FAULT", None)
    if fault:
        env["ECHO_FAULT"] = fault
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), str(base)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    if delay is not None:
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
    try:
        stdout, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        pytest.fail(f"child did not stop (fault {fault}): {stderr.decode()[-2000:]}")
    if fault and proc.returncode == 0:
        pytest.fail(f"fault {fault} was never reached in 400 cycles")
    if proc.returncode not in (-signal.SIGKILL, 0):
        pytest.fail(f"child exited {proc.returncode}: {stderr.decode()[-3000:]}")
    # A kill can cut the last line short: only newline-terminated lines were printed whole.
    lines = stdout.decode().split("\n")[:-1]
    acked: set[tuple[str, str, str]] = set()
    pending: set[tuple[str, str, str]] = set()
    cycles = 0
    for line in lines:
        fields = line.split()
        if fields[0] == "ACK":
            pending.add((fields[1], fields[2], fields[3].replace("_", " ")))
        elif fields[0] == "CYCLE":  # the cycle's lines were all printed
            acked |= pending
            pending = set()
            cycles += 1
    acked |= pending  # printed after the cycle returned: acknowledged too
    return acked, proc.returncode, cycles


def _archived_titles(vault: Vault) -> set[tuple[str, str, str]]:
    """Every ``(feed, native_id, title)`` of an item or version entry's item blob."""
    found = set()
    for _, entry in vault.iter_entries(0):
        if entry.type in ("item", "version"):
            doc = json.loads(vault.blob(entry.blobs[0].digest))
            found.add((doc["feed"], doc["native_id"], doc["title"]))
    return found


def _check_after_crash(path: Path, acked: set[tuple[str, str, str]], context: str) -> None:
    with open_vault(path) as reader:
        report = verify(reader, full=True)
        assert report.ok, f"{context}: {report.problems[:5]}"
        missing = acked - _archived_titles(reader)
        assert not missing, f"{context}: acknowledged but not archived: {sorted(missing)[:5]}"


def _trials() -> list[tuple[str | None, float | None]]:
    rng = random.Random(20261207)
    trials: list[tuple[str | None, float | None]] = []
    for point in sorted(POINTS):  # every step of the commit protocol, early and later
        trials.append((f"{point}:KILL:{rng.randint(1, 4)}", None))
        trials.append((f"{point}:KILL:{rng.randint(5, 14)}", None))
    while len(trials) < TRIALS:  # random instants: mid-fetch, mid-parse, mid-commit
        trials.append((None, rng.uniform(1.0, 4.0)))
    rng.shuffle(trials)
    return trials


def test_sigkill_through_the_harvest_commit_path(tmp_path: Path) -> None:
    # Rounds of 13 trials on one vault each: crash after crash on the same vault,
    # each child resuming the feeds where the previous one was killed.
    acked: set[tuple[str, str, str]] = set()
    kills = cycles = total = 0
    path = tmp_path
    trials = _trials()
    assert len(trials) == TRIALS
    for n, (fault, delay) in enumerate(trials):
        if n % 13 == 0:
            if n:
                _check_after_crash(path, acked, f"end of round {n // 13}")
            total += len(acked)
            path, acked = _make_vault(tmp_path / f"round{n // 13}"), set()
        got, code, done = _run_child(path, n * 1000, fault, delay)
        acked |= got
        cycles += done
        kills += code == -signal.SIGKILL
        _check_after_crash(path, acked, f"trial {n} (fault={fault}, delay={delay})")
    total += len(acked)
    print(f"harvest crash trials: {kills} SIGKILLs, {cycles} cycles, {total} titles acknowledged")
    assert kills == TRIALS  # every trial ended in a SIGKILL, none ran to the end
    # The trials did harvest between kills; how much depends on the machine's speed
    # (the fault-point trials die in their first cycles by design): 15-40 cycles
    # and 400-1,000 acknowledged titles on a busy 2-core machine.
    assert cycles >= 8
    assert total > 100
