"""``idle`` and ``recovery``: ``echoctl serve`` as a real subprocess.

``idle``: a fresh vault with :data:`IDLE_FEEDS` RSS feeds on a loopback feed
server (``bench_harvest.FeedServer``: :data:`IDLE_HOSTS` ports, the real
TechCrunch document), every feed with a one-day interval. The service starts,
runs every feed once, and then has nothing to do until the next day: its CPU
time (user + system, ``psutil``) over :data:`IDLE_SECONDS` of wall time between
runs is the figure, as a fraction of one core (target < 1 %). The window
holds at least one quick health pass (``[service] health_every``, 60 s) and
every periodic loop of the service (lag probe 1 s, ``echo.toml`` watch 2 s,
disk watch 5 s, scheduler tick 30 s).

``recovery``: the N-leaf vault of ``commit`` (``workload.ensure_vault``). The
service starts and is ready; it is SIGKILLed; it is started again, and the
figure is the seconds from the restart (``Popen``) to the first ``/readyz``
200 (target < 5 s). The log size before the kill and after the restart must be
equal (no acknowledged record lost). Then ``echoctl health --quick --json``
runs on that vault (its own process; the service stopped first so the two do
not share the CPU), and its wall time is the second figure (target < 30 s);
each check's seconds are in the notes. The page cache is as the build left it
(warm): nothing is dropped on a shared machine.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench_harvest import DOCUMENT, FeedServer
from echo_archive.service.runner import SERVICE_FILE
from echo_archive.vault.vault import Vault
from workload import ORIGIN, Result, say

IDLE_FEEDS = 100
IDLE_HOSTS = 10
IDLE_SECONDS = 60.0
IDLE_TARGET = 0.01  # of one core
READY_TARGET = 5.0  # seconds
QUICK_TARGET = 30.0  # seconds
POLL = 0.02  # seconds between two looks at /readyz


class Serve:
    """``echoctl serve`` on ``vault`` in a subprocess, its log in ``log``."""

    def __init__(self, vault: Path, log: Path) -> None:
        self.vault = vault
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.url: str | None = None

    def start(self) -> None:
        """Start the service (time zero of :meth:`wait_ready`)."""
        log = self.log.open("ab")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "echo_archive",
                "--vault",
                str(self.vault),
                "serve",
                "--listen",
                "127.0.0.1:0",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        log.close()
        self.url = None

    def wait_ready(self, timeout: float = 300.0, headers: dict[str, str] | None = None) -> float:
        """Seconds from :meth:`start` to the first ``/readyz`` 200 (``headers``: a credential)."""
        assert self.proc is not None
        deadline = time.perf_counter() + timeout
        with httpx.Client(timeout=5, headers=headers) as client:
            while time.perf_counter() < deadline:
                if self.proc.poll() is not None:
                    raise SystemExit(f"echoctl serve exited {self.proc.returncode}; see {self.log}")
                if self.url is None:
                    self.url = self._url()
                if self.url is not None:
                    try:
                        if client.get(self.url + "/readyz").status_code == 200:
                            return time.perf_counter() - self.started
                    except httpx.HTTPError:
                        pass
                time.sleep(POLL)
        raise SystemExit(f"/readyz not 200 within {timeout:g} s; see {self.log}")

    def _url(self) -> str | None:
        assert self.proc is not None
        try:
            doc = json.loads((self.vault / SERVICE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return str(doc["url"]) if doc.get("pid") == self.proc.pid else None

    def status(self) -> dict[str, Any]:
        """``GET /status``."""
        assert self.url is not None
        doc: dict[str, Any] = httpx.get(self.url + "/status", timeout=30).json()
        return doc

    def kill(self) -> None:
        """SIGKILL, and reap."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=60)

    def stop(self) -> int:
        """SIGTERM, and wait for the graceful stop; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=60)


def feed_table(name: str, url: str, interval: float) -> str:
    """A ``[[feeds]]`` table of ``echo.toml``: an RSS feed that may reach loopback."""
    return (
        f'\n[[feeds]]\nname = "{name}"\nsource = "rss"\ninterval = {interval:g}\n'
        f'enabled = true\nallow_private = true\n\n[feeds.params]\nurl = "{url}"\n'
    )


def fresh_vault(out: Path, name: str) -> tuple[Path, Path]:
    """``(<out>/<name>, its new empty vault)``, whatever was there removed."""
    root = out / name
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    vault = root / "vault"
    Vault.create(vault, origin=ORIGIN).close()
    return root, vault


def run_idle(out: Path) -> Result:
    """The ``idle`` benchmark (see the module)."""
    result = Result("idle")
    root, vault = fresh_vault(out, "idle")
    with FeedServer(IDLE_HOSTS, 0.0, DOCUMENT) as server:
        tables = "".join(
            feed_table(f"feed-{k:03d}", server.url(k % IDLE_HOSTS, f"/feed/{k}.xml"), 86_400)
            for k in range(IDLE_FEEDS)
        )
        with (vault / "echo.toml").open("a", encoding="utf-8") as fh:
            fh.write(tables)
        service = Serve(vault, root / "serve.log")
        service.start()
        try:
            ready = service.wait_ready()
            say(f"idle: ready in {ready:.2f} s; waiting for the first run of {IDLE_FEEDS} feeds")
            deadline = time.monotonic() + 600
            while True:
                feeds = service.status()["feeds"]
                done = sum(1 for f in feeds if f["runs"] >= 1 and not f["running"])
                if done == IDLE_FEEDS:
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"only {done}/{IDLE_FEEDS} feeds ran within 600 s")
                time.sleep(1.0)
            first_runs = time.perf_counter() - service.started
            outcomes = {f["last_outcome"] for f in feeds}
            time.sleep(5.0)  # let the last writes and the first health pass settle
            assert service.proc is not None
            proc = psutil.Process(service.proc.pid)
            say(f"idle: every feed ran once ({sorted(outcomes)}); measuring {IDLE_SECONDS:g} s")
            cpu0, ctx0, wall0 = proc.cpu_times(), proc.num_ctx_switches(), time.monotonic()
            checks0 = service.status()["checks"]
            time.sleep(IDLE_SECONDS)
            cpu1, ctx1, wall1 = proc.cpu_times(), proc.num_ctx_switches(), time.monotonic()
            rss = proc.memory_info().rss
            threads = proc.num_threads()
            fds = proc.num_fds()
            feeds_after = service.status()["feeds"]
            code = service.stop()
        finally:
            if service.proc is not None and service.proc.poll() is None:
                service.kill()
    wall = wall1 - wall0
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    wakeups = (ctx1.voluntary - ctx0.voluntary) / wall
    runs_in_window = sum(f["runs"] for f in feeds_after) - sum(f["runs"] for f in feeds)
    result.add("idle CPU, fraction of one core", cpu / wall * 100, "%", below=IDLE_TARGET * 100)
    result.add("CPU seconds in the window", cpu, "s")
    result.add("voluntary context switches per second", wakeups, "/s")
    result.add("resident memory after", rss / 1e6, "MB")
    result.notes.append(
        f"{IDLE_FEEDS} feeds over {IDLE_HOSTS} loopback hosts, interval 1 day; all ran once "
        f"{first_runs:.1f} s after the start ({sorted(outcomes)}); window {wall:.1f} s with "
        f"{runs_in_window} run(s) in it; {threads} threads, {fds} open fds; "
        f"checks {checks0}; graceful stop exit {code}"
    )
    result.details = {
        "cpu_seconds": cpu,
        "wall_seconds": wall,
        "user": cpu1.user - cpu0.user,
        "system": cpu1.system - cpu0.system,
        "voluntary_ctx_per_s": wakeups,
        "involuntary_ctx_per_s": (ctx1.involuntary - ctx0.involuntary) / wall,
        "rss_bytes": rss,
        "threads": threads,
        "fds": fds,
    }
    shutil.rmtree(root, ignore_errors=True)
    return result


def run_recovery(vault: Path, out: Path, items: int) -> Result:
    """The ``recovery`` benchmark on the N-leaf ``vault`` (see the module)."""
    result = Result("recovery")
    log = out / "recovery-serve.log"
    log.unlink(missing_ok=True)
    service = Serve(vault, log)
    service.start()
    try:
        # the first start catches the derived indexes up when the vault was filled by the
        # raw Vault API (workload.fill): minutes at 10^6, once; the restart has none to do
        first = service.wait_ready(timeout=3600)
        size_before = int(service.status()["log_size"])
        say(f"recovery: first start ready in {first:.2f} s (log size {size_before:,}); SIGKILL")
        service.kill()
        left = (vault / SERVICE_FILE).exists()
        service.start()
        again = service.wait_ready()
        size_after = int(service.status()["log_size"])
        say(f"recovery: restarted, /readyz 200 after {again:.2f} s (log size {size_after:,})")
        code = service.stop()
    finally:
        if service.proc is not None and service.proc.poll() is None:
            service.kill()
    result.add("restart after SIGKILL: /readyz 200", again, "s", below=READY_TARGET)
    result.add("first start: /readyz 200 (with any derived catch-up)", first, "s")
    result.add("acknowledged entries lost", size_before - size_after, "entries", below=1)
    env = {**os.environ, "ECHO_VERIFIED_DIR": str(out / "verified")}
    t0 = time.perf_counter()
    command = [sys.executable, "-m", "echo_archive", "--vault", str(vault), "health"]
    done = subprocess.run(
        [*command, "--quick", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    quick = time.perf_counter() - t0
    if done.returncode not in (0, 1):
        raise SystemExit(f"echoctl health --quick exited {done.returncode}: {done.stderr}")
    report = json.loads(done.stdout)
    result.add("echoctl health --quick (wall)", quick, "s", below=QUICK_TARGET)
    seconds = {
        c["name"]: {k: v.get("seconds") for k, v in c["details"].items() if isinstance(v, dict)}
        for c in report["checks"]
        if c["name"] == "quick_check"
    }
    result.notes.append(
        f"N = {items:,}: a stale service.json after the SIGKILL: {left}; log size "
        f"{size_before:,} before, {size_after:,} after; graceful stop exit {code}"
    )
    result.notes.append(
        f"health --quick: worst {report['worst']}; quick_check seconds {seconds}; "
        f"summary: {next(c['summary'] for c in report['checks'] if c['name'] == 'quick_check')}"
    )
    result.details = {
        "first_ready_s": first,
        "restart_ready_s": again,
        "quick_s": quick,
        "health": report,
    }
    return result
