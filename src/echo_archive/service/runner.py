"""``echoctl serve``: the long-running process of one vault.

:class:`Service` owns the vault's single writer and one fetch engine shared
by every feed run (so per-host limits and breakers hold across feeds), runs
the :class:`~echo_archive.service.scheduler.Scheduler`, publishes events on
an :class:`~echo_archive.events.EventBus` (metrics subscribe), watches
``echo.toml`` and the disk, and serves HTTP (:mod:`echo_archive.service.http`)
on ``[service] listen`` and on the control socket.

Lifecycle:

* **Start.** ``echo.toml`` is read (a bad file: :class:`ConfigError`, exit 1);
  a non-loopback ``listen`` is refused (no authentication yet); a second
  service on the same vault is refused (:class:`ServiceRunningError`); the
  writer opens (waiting ``wait`` seconds for another process's lock); the
  due feeds run at once.
* **SIGHUP** (or ``POST /control/reload``, or a change of ``echo.toml`` seen
  within ``RELOAD_POLL`` seconds): ``echo.toml`` is re-read; a bad file is
  rejected with a ``config_rejected`` event and a logged error, and the old
  configuration is kept. New feeds are scheduled, removed or disabled ones
  dropped, changed intervals apply from their next run. ``[limits]`` and
  ``[harvest]`` changes take effect at the next start (the fetch engine is
  built once).
* **SIGTERM / SIGINT.** No new run starts; runs in flight get ``[service]
  grace`` seconds to finish, then are cut short; everything fetched is
  archived either way (a cut-short feed is due again at the next start). A
  second signal cuts them short at once.
* **Disk.** When free space is critical by ``[health]``'s thresholds
  (:func:`~echo_archive.control.health.disk_pressure`: below the smaller of
  ``disk_critical_free_fraction`` of the file system and
  ``disk_critical_free_bytes``), harvesting pauses (the service keeps
  serving, checking and alerting); it resumes once free space is above the
  warning thresholds again (the gap is the hysteresis).
* **Health.** A quick health pass every ``[service] health_every`` seconds,
  a full one (with the incremental verify and the derived-index check,
  within their ``[health]`` budgets) every ``verify_every`` seconds.
* **Clock.** The clock going backwards (it reads before the newest
  checkpoint, or before a time this service already saw, by more than
  ``[health] clock_tolerance``) is ``echo_clock_backwards`` 1 and the
  ``EchoClockBackwards`` alert; nothing stops.
* **Supervisor.** Every ``[supervisor] cycle`` seconds (the Echo
  Controller, :mod:`echo_archive.control.supervisor`): the
  :class:`~echo_archive.control.observe.Observer` closes the cycle's
  observation (feed runs from the bus, per-host requests from the fetcher,
  the process, disk and writer), the supervisor scores stability, finds
  drifts and risks and proposes interventions; its figures feed
  ``/metrics`` (and so the alert rules) and ``/status``.
* **Alerts.** Every ``[alerts] evaluation_interval`` seconds the alert
  engine (:mod:`echo_archive.control.alerts`) evaluates its rules over the
  series ``/metrics`` shows (:meth:`ServiceMetrics.samples`) and hands its
  notifications to the channels in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import shutil
import signal
import socket
import sqlite3
import ssl
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import psutil
import structlog
import uvicorn

from echo_archive import __version__
from echo_archive.api.breakglass import active_elevations
from echo_archive.api.middleware import MAX_HEADER_BYTES
from echo_archive.api.router import auth_configured
from echo_archive.config import EchoConfig, load_config
from echo_archive.control.alertrules import engine_from_config
from echo_archive.control.alerts import AlertEngine, Notification, Sample
from echo_archive.control.alertstore import VaultAlertStore
from echo_archive.control.health import (
    HealthConfig,
    HealthReport,
    RuntimeStats,
    Severity,
    disk_pressure,
    run_checks,
)
from echo_archive.control.interventions import (
    Intervention,
    InterventionError,
    InterventionManager,
    InterventionOptions,
)
from echo_archive.control.observe import Observer, ProcessSampler, Pulls, disk_pull
from echo_archive.control.stability import StabilityWeights
from echo_archive.control.supervisor import CycleReport, Supervisor, SupervisorOptions
from echo_archive.errors import ConfigError, EchoError, RequestError
from echo_archive.events import EventBus
from echo_archive.harvest.cycle import HarvestRun
from echo_archive.harvest.engine import Fetcher, host_key
from echo_archive.harvest.state import HarvestState
from echo_archive.redaction import redact_text
from echo_archive.service.actuator import ServiceActuator
from echo_archive.service.http import build_app
from echo_archive.service.metrics import ServiceMetrics, StateSource
from echo_archive.service.scheduler import Clock, RunResult, Scheduler, SchedulerOptions
from echo_archive.services.harvesting import FetcherStores, build_fetcher
from echo_archive.services.vaults import open_writer
from echo_archive.sources.base import Feed
from echo_archive.sources.registry import SOURCES
from echo_archive.vault.entry import format_timestamp
from echo_archive.vault.lock import DEFAULT_WAIT, pid_alive
from echo_archive.vault.vault import CONFIG_FILE, CommitResult, Vault
from echo_archive.vault.writer import VaultWriter

__all__ = [
    "CONTROL_SOCKET",
    "SERVICE_FILE",
    "Service",
    "ServiceRunningError",
    "check_tls",
    "is_loopback",
    "parse_listen",
]

log = structlog.get_logger("echo_archive.service")

SERVICE_FILE: Final = "service.json"
"""In the vault: the running service's pid, HTTP address and control socket (removed at exit)."""

CONTROL_SOCKET: Final = "service.sock"
"""In the vault: the control socket (a Unix socket, mode 0600)."""

RELOAD_POLL: Final = 2.0
"""Seconds between two looks at ``echo.toml``'s modification time."""

DISK_POLLS: Final = 12
"""The disk is looked at this many times per ``[service] health_every``."""

ENTRY_EVENTS: Final = {"item": "item_archived", "version": "version", "tombstone": "tombstone"}
"""Entry type -> the event kind the service publishes for each such entry it commits."""

LAG_PROBE: Final = 1.0
"""Seconds between two event-loop lag probes."""


class ServiceRunningError(EchoError):
    """Another ``echoctl serve`` already runs on this vault (the message names its pid)."""


def parse_listen(listen: str, *, public_ok: bool = False) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8383`` for IPv6) -> ``(host, port)``.

    Args:
        listen: the address.
        public_ok: a non-loopback host is allowed (the vault has an API key
            or a user: :func:`~echo_archive.api.router.auth_configured`).

    Raises:
        RequestError: not ``HOST:PORT``, a port outside 0-65535, or a host that
            is not loopback while no authentication is configured (issue 11,
            "Public by choice only").
    """
    host, sep, port_text = listen.rpartition(":")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise RequestError(f"--listen {listen!r}: expected HOST:PORT, e.g. 127.0.0.1:8383")
    host = host.removeprefix("[").removesuffix("]")
    if not public_ok and not is_loopback(host):
        raise RequestError(
            f"--listen {listen!r}: only a loopback address (127.0.0.1, ::1, localhost) "
            "until authentication is configured (`echoctl keys create` or `echoctl users add`)"
        )
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an IP address or ``localhost``) is a loopback address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _auth_configured(path: Path) -> bool:
    """:func:`~echo_archive.api.router.auth_configured` of the vault at ``path``.

    False when the vault cannot be read (the start then fails on it, clearly).
    """
    try:
        with Vault.open(path, readonly=True) as vault:
            return auth_configured(vault)
    except (EchoError, OSError):
        return False


def check_tls(cert: Path | None, key: Path | None) -> tuple[Path, Path] | None:
    """The TLS certificate chain and private key to serve with, checked; None for plain HTTP.

    Both files are PEM (what uvicorn's ``ssl_certfile``/``ssl_keyfile`` and
    Python's :meth:`ssl.SSLContext.load_cert_chain` read). They are loaded
    once here, so a missing, unreadable or mismatched pair is an error at
    start, naming the file, never at the first connection. The key is never
    printed or logged.

    Args:
        cert: ``--tls-cert``: the certificate (chain) file.
        key: ``--tls-key``: its private key file (unencrypted).

    Raises:
        RequestError: only one of the two was given, a file cannot be read,
            or the pair does not load (not PEM, or the key is not the
            certificate's).
    """
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise RequestError("--tls-cert and --tls-key go together: give both, or neither")
    for what, path in (("--tls-cert", cert), ("--tls-key", key)):
        try:
            with Path(path).open("rb") as fh:
                fh.read(1)
        except OSError as exc:
            raise RequestError(f"{what} {path}: cannot read it ({exc.strerror})") from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(str(cert), str(key))
    except ssl.SSLError as exc:
        raise RequestError(
            f"--tls-cert {cert} / --tls-key {key}: not a PEM certificate and its private key "
            f"({exc.reason or exc.__class__.__name__})"
        ) from None
    return Path(cert).resolve(), Path(key).resolve()


class _Server(uvicorn.Server):
    """uvicorn's server without its own signal handlers: the service handles signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def read_service_file(vault: Path) -> dict[str, Any] | None:
    """The running service's ``service.json`` (pid, url, control socket), or None.

    None when there is no file, it is unreadable, or its pid is gone (a
    service killed with SIGKILL leaves one behind).
    """
    try:
        data = json.loads((vault / SERVICE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("pid"), int):
        return None
    if data.get("host") != socket.gethostname() or not pid_alive(data["pid"]):
        return None
    return data


class Service:
    """The service of one vault (see the module).

    Args:
        vault_path: the vault directory.
        listen: ``HOST:PORT`` instead of ``[service] listen`` (port 0: any free port).
        wait: seconds the writer waits for another process's writer lock.
        clock: the scheduler's clock (tests inject one).
        env: where credentials are read from (default ``os.environ``).
        tls_cert, tls_key: serve HTTPS with this PEM certificate (chain) and
            private key (:func:`check_tls`); both or neither.

    Raises:
        RequestError: a bad ``listen``, or bad TLS files (:func:`check_tls`).
        ConfigError: ``echo.toml`` is bad.
    """

    def __init__(
        self,
        vault_path: Path,
        *,
        listen: str | None = None,
        wait: float = DEFAULT_WAIT,
        clock: Clock | None = None,
        env: Mapping[str, str] | None = None,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
    ) -> None:
        self.tls = check_tls(tls_cert, tls_key)
        """The certificate and key files when serving HTTPS, else None."""
        self.path = Path(vault_path).resolve()
        self.wait = wait
        self.env = env if env is not None else os.environ
        self.config: EchoConfig = load_config(self.path / CONFIG_FILE)
        self.host, self.port = parse_listen(
            listen or self.config.service.listen, public_ok=_auth_configured(self.path)
        )
        self.public = not is_loopback(self.host)
        """Bound to a non-loopback address: every route but ``/healthz`` needs credentials."""
        self.bus = EventBus()
        self.metrics = ServiceMetrics(self.bus)
        self._clock = clock
        self.started_at = time.time()
        self.url: str | None = None
        self.config_error: str | None = None
        self.config_loaded_at = time.time()
        self.loop_lag = 0.0
        self.disk_paused = False
        self.checks: dict[str, int] = {}
        self.stale: frozenset[str] = frozenset()
        self.silent: frozenset[str] = frozenset()
        self.verify_failures = 0
        self.clock_behind = 0.0
        self._clock_checkpoint_behind = False
        self._wall_seen = 0.0
        self.alert_engine: AlertEngine | None = None
        self.supervisor: Supervisor | None = None
        self.observer: Observer | None = None
        self.interventions: InterventionManager | None = None
        self.open_interventions: list[dict[str, Any]] = []
        self._last_signals: dict[str, float] = {}
        self._feed_hosts: dict[str, str] = {}
        self.firing: list[dict[str, Any]] = []
        self._deliveries: set[asyncio.Future[Any]] = set()
        self._runs: dict[str, HarvestRun] = {}
        self._stop = asyncio.Event()
        self._stopping = False
        self._signals = 0
        self._config_mtime = self._mtime()
        self.writer: VaultWriter
        self.reader: Vault
        self.fetcher: Fetcher
        self.scheduler: Scheduler
        self._stores: FetcherStores
        self._ready = False
        self.loop: asyncio.AbstractEventLoop | None = None
        """The event loop the service runs on (set by :meth:`run`): other threads hand it
        work with ``loop.call_soon_threadsafe``."""

    # ------------------------------------------------------------------ queries
    def not_ready(self) -> list[str]:
        """Why the service is not ready (empty when it is): ``/readyz``."""
        reasons: list[str] = []
        if not self._ready:
            return ["starting"]
        if self._stopping:
            reasons.append("stopping")
        if self.writer.closed:
            reasons.append("the vault's writer is closed")
        last = self.scheduler.last_tick
        horizon = 3 * self.scheduler.options.tick + 5
        if last is None or self.scheduler.clock.time() - last > horizon:
            reasons.append(f"the scheduler has not ticked for over {horizon:.0f} s")
        return reasons

    def status(self) -> dict[str, Any]:
        """The JSON summary of ``/status`` and ``echoctl status``.

        Keys: ``running`` (true), ``pid``, ``version``, ``vault``, ``url``,
        ``started_at`` (RFC 3339), ``ready``, ``paused`` (disk critical),
        ``log_size``, ``config`` (``loaded_at``, ``error``), ``feeds`` (one per
        scheduled feed: the schedule, ``running``), ``running_feeds``,
        ``due``, ``checks`` (name -> severity), ``event_loop_lag_seconds``,
        ``writer_queue_depth``, ``clock_backwards``, ``alerts`` (pending
        and firing alerts, as ``echoctl alerts list --json`` shows them),
        ``stability`` (the supervisor's latest cycle: ``at``, ``score`` in
        [0, 1], ``band``, ``components``, ``collapse_risk``, ``drifts``,
        ``findings``; None before its first cycle) and ``interventions``
        (those not ended: planned, deferred, pending approval, approved,
        executed and awaiting assessment, as ``echoctl interventions list
        --json`` shows them).
        """
        sched = self.scheduler
        running = set(sched.running)
        feeds = []
        for name, row in sched.schedules.items():
            doc = row.to_json()
            doc["running"] = name in running
            feeds.append(doc)
        return {
            "running": True,
            "pid": os.getpid(),
            "version": __version__,
            "vault": str(self.path),
            "url": self.url,
            "started_at": _rfc3339(self.started_at),
            "ready": not self.not_ready(),
            "paused": sched.paused_all,
            "log_size": self._log_size(),
            "config": {"loaded_at": _rfc3339(self.config_loaded_at), "error": self.config_error},
            "feeds": feeds,
            "running_feeds": sorted(running),
            "due": sched.due(),
            "checks": dict(self.checks),
            "event_loop_lag_seconds": self.loop_lag,
            "writer_queue_depth": self.writer.queue_depth,
            "clock_backwards": self.clock_backwards,
            "alerts": list(self.firing),
            "interventions": list(self.open_interventions),
            "stability": self._stability(),
        }

    def _stability(self) -> dict[str, Any] | None:
        """The supervisor's latest cycle for ``/status`` (None before its first cycle)."""
        report = self.supervisor.last if self.supervisor is not None else None
        if report is None:
            return None
        doc = report.to_json()
        return {
            "at": _rfc3339(report.at),
            "score": report.score,
            "band": doc["stability"].get("band"),
            "components": doc["stability"].get("components"),
            "collapse_risk": report.collapse_risk,
            "drifts": doc["drifts"],
            "findings": doc["findings"],
        }

    @property
    def clock_backwards(self) -> bool:
        """Whether the clock went backwards (see the module): ``echo_clock_backwards``."""
        return self._clock_checkpoint_behind or self.clock_behind > 0

    def _log_size(self) -> int:
        try:
            return self.reader.size
        except EchoError:
            return 0

    def auth_required(self) -> bool:
        """Whether ``/readyz``, ``/metrics``, ``/status`` and the API need credentials now.

        Always when bound to a non-loopback address; on loopback, once the
        vault has an API key or a user (so creating the first key closes the
        open loopback routes at the next request).
        """
        if self.public:
            return True
        try:
            return auth_configured(self.reader)
        except (EchoError, sqlite3.Error):
            return True  # cannot tell: closed

    # ------------------------------------------------------------------ control
    def harvest_now(self, feed: str) -> bool:
        """Run ``feed`` next, ahead of the due ones; False when it is not scheduled.

        See :meth:`Scheduler.harvest_now <echo_archive.service.scheduler.Scheduler.harvest_now>`.
        """
        return self.scheduler.harvest_now(feed)

    def request_stop(self) -> None:
        """Stop gracefully (SIGTERM); called twice, cut runs in flight short at once."""
        self._signals += 1
        if self._signals > 1:
            self._cut_short()
        self._stop.set()

    async def reload(self) -> str | None:
        """Re-read ``echo.toml``; returns None, or the error that got it rejected (old kept)."""
        self._config_mtime = self._mtime()
        try:
            config = await asyncio.to_thread(load_config, self.path / CONFIG_FILE)
            engine = self._alert_engine(config)  # a channel that cannot be built rejects it too
        except ConfigError as exc:
            message = redact_text(str(exc))
            self.config_error = message
            log.error("service.config_rejected", error=message)
            self.bus.emit("config_rejected", error=message)
            return message
        self.alert_engine = engine
        self.config = config
        if self.interventions is not None:
            self.interventions.options = InterventionOptions.from_config(config.supervisor)
        if self.supervisor is not None:  # weights, horizon, assess_after: read at each cycle
            self.supervisor.options = _supervisor_options(config)
        self.config_error = None
        self.config_loaded_at = time.time()
        feeds = self._enabled(config)
        self._feed_hosts = _feed_hosts(feeds)
        await self.scheduler.set_feeds(feeds)
        self.bus.emit("config_reloaded", feeds=[f.name for f in feeds])
        log.info("service.config_reloaded", feeds=len(feeds))
        return None

    def _alert_engine(self, config: EchoConfig) -> AlertEngine:
        """The alert engine of ``config``'s ``[alerts]`` (state and silences in the vault).

        Raises:
            ConfigError: a channel cannot be built (a ``password_env`` that is unset...).
        """
        clock = self.scheduler.clock
        return engine_from_config(
            config.alerts,
            store=VaultAlertStore(self.writer, clock.time),
            bus=self.bus,
            now=clock.time,
            env=self.env,
        )

    @staticmethod
    def _enabled(config: EchoConfig) -> list[Feed]:
        return [table.to_feed() for table in config.all_feeds() if table.enabled]

    def _mtime(self) -> float | None:
        try:
            return (self.path / CONFIG_FILE).stat().st_mtime
        except OSError:
            return None

    def _cut_short(self) -> None:
        for run in list(self._runs.values()):
            run.cancel()

    # ------------------------------------------------------------------ running
    async def run(self, on_ready: Callable[[str], None] | None = None) -> int:
        """Serve until stopped; returns the exit code (0).

        Args:
            on_ready: called with the HTTP URL once the service listens.

        Raises:
            ServiceRunningError: another service runs on this vault.
            VaultLockedError: another process kept the writer lock past ``wait``.
            OSError: the address cannot be bound (in use...).
            StorageError: the vault cannot be opened.
        """
        other = read_service_file(self.path)
        if other is not None and other.get("pid") != os.getpid():
            raise ServiceRunningError(
                f"a service already runs on {self.path} (pid {other['pid']}, {other.get('url')}); "
                "stop it first, or ask it: `echoctl status`"
            )
        loop = asyncio.get_running_loop()
        self.loop = loop
        self.writer = open_writer(self.path, wait=self.wait)
        self.writer.on_job = self.metrics.observe_commit
        self.writer.on_commit = self._publish_entries
        try:
            self.reader = Vault.open(self.path, readonly=True)
            self.fetcher, self._stores = build_fetcher(self.writer)
            try:
                async with self.fetcher:
                    return await self._serve(loop, on_ready)
            finally:
                self._stores.close()
                self.reader.close()
        finally:
            await asyncio.to_thread(self.writer.close)
            self._remove_files()

    async def _serve(
        self, loop: asyncio.AbstractEventLoop, on_ready: Callable[[str], None] | None
    ) -> int:
        svc = self.config.service
        self.scheduler = Scheduler(
            self.writer,
            self._enabled(self.config),
            self._run_feed,
            options=SchedulerOptions(
                max_concurrent=svc.max_concurrent, feed_timeout=svc.feed_timeout, tick=svc.tick
            ),
            clock=self._clock,
            bus=self.bus,
        )
        await self.scheduler.load()
        self._wall_seen = self.scheduler.clock.time()
        self.alert_engine = await asyncio.to_thread(self._alert_engine, self.config)
        self._feed_hosts = _feed_hosts(self._enabled(self.config))
        self.supervisor = Supervisor(_supervisor_options(self.config), bus=self.bus)
        self.interventions = InterventionManager(
            self.writer,
            ServiceActuator(self.writer, self.scheduler, self.fetcher),
            InterventionOptions.from_config(self.config.supervisor),
            clock=self.scheduler.clock.time,
            bus=self.bus,
        )
        self.interventions.on_closed = self._intervention_ended
        try:  # a lowered host rate lives in the fetch engine: put it back after a restart
            await self.interventions.reapply()
        except Exception as exc:  # never stops the start
            log.error("service.interventions_reapply_failed", error=repr(exc))
        self.observer = Observer(
            self.bus,
            self.fetcher.host_stats,
            Pulls(
                process=ProcessSampler(),
                loop_lag=lambda: self.loop_lag,
                disk=disk_pull(self.path),
                queue_depth=lambda: self.writer.queue_depth,
                commit_latency=lambda: self.metrics.last_commit_seconds,
                breakers=self._breaker_states,
                feed_hosts=lambda: self._feed_hosts,
            ),
            start=self.scheduler.clock.time(),
        )
        self.metrics.state = StateSource(
            schedules=self._schedule_gauges,
            running=lambda: len(self.scheduler.running),
            due=lambda: len(self.scheduler.due()),
            paused=lambda: self.scheduler.paused_all,
            breakers=self._breaker_states,
            log_size=self._log_size,
            queue_depth=lambda: self.writer.queue_depth,
            loop_lag=lambda: self.loop_lag,
            checks=lambda: dict(self.checks),
            ticks=lambda: self.scheduler.ticks,
            vault_path=self.path,
            stale=lambda: self.stale,
            silent=lambda: self.silent,
            clock_backwards=lambda: self.clock_backwards,
            verify_failures=lambda: self.verify_failures,
            supervisor=self._supervisor_samples,
            breakglass=self._breakglass_active,
        )
        proxies = self.config.api.forwarded_allow_ips
        tcp = _Server(
            uvicorn.Config(
                build_app(self),
                host=self.host,
                port=self.port,
                log_config=None,
                access_log=False,  # the API's edge middleware logs each request
                lifespan="off",
                timeout_graceful_shutdown=5,
                # h11: its 16 KiB bound on request line + headers is the documented one
                http="h11",
                h11_max_incomplete_event_size=MAX_HEADER_BYTES,
                # X-Forwarded-For/-Proto only from [api] forwarded_allow_ips (default none:
                # uvicorn would otherwise trust 127.0.0.1, and any local client could pick
                # the rate limiter's client address)
                proxy_headers=bool(proxies),
                forwarded_allow_ips=list(proxies) or None,
                ssl_certfile=None if self.tls is None else str(self.tls[0]),
                ssl_keyfile=None if self.tls is None else str(self.tls[1]),
            )
        )
        sock_path = self.path / CONTROL_SOCKET
        with contextlib.suppress(FileNotFoundError):
            sock_path.unlink()  # left by a killed service (read_service_file found none alive)
        uds: _Server | None = None
        if len(os.fsencode(sock_path)) < 104:  # sun_path's limit (104 on BSDs, 108 on Linux)
            uds = _Server(
                uvicorn.Config(
                    build_app(self, control=True),
                    uds=str(sock_path),
                    log_config=None,
                    access_log=False,
                    lifespan="off",
                    timeout_graceful_shutdown=5,
                )
            )
        else:
            log.warning("service.no_control_socket", reason="the vault's path is too long")
        servers = [s for s in (tcp, uds) if s is not None]
        serving = [asyncio.ensure_future(s.serve()) for s in servers]
        while not all(s.started for s in servers):
            if any(t.done() for t in serving):
                for t in serving:  # a bind failure (address in use): say it
                    if t.done() and t.exception() is not None:
                        raise t.exception()  # type: ignore[misc]
                raise OSError(f"cannot listen on {self.host}:{self.port}")
            await asyncio.sleep(0.02)
        if uds is not None:
            os.chmod(sock_path, 0o600)
        port = tcp.servers[0].sockets[0].getsockname()[1] if tcp.servers else self.port
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"{'https' if self.tls else 'http'}://{host}:{port}"
        self._write_service_file(sock_path if uds is not None else None)
        for sig, handler in (
            (signal.SIGTERM, self.request_stop),
            (signal.SIGINT, self.request_stop),
            (signal.SIGHUP, lambda: asyncio.ensure_future(self.reload())),
        ):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, handler)
        helpers = [
            asyncio.ensure_future(self.scheduler.run()),
            asyncio.ensure_future(self._watch_config()),
            asyncio.ensure_future(self._probe_lag()),
            asyncio.ensure_future(self._watch_disk()),
            asyncio.ensure_future(self._health_loop()),
            asyncio.ensure_future(self._alert_loop()),
            asyncio.ensure_future(self._supervise()),
        ]
        self._ready = True
        log.info("service.listening", url=self.url, feeds=len(self.scheduler.schedules))
        if on_ready is not None:
            on_ready(self.url)
        try:
            await self._stop.wait()
        finally:
            self._stopping = True
            await self._shutdown(helpers, servers, serving)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.remove_signal_handler(sig)
        return 0

    async def _shutdown(
        self,
        helpers: Sequence[asyncio.Future[None]],
        servers: Sequence[_Server],
        serving: Sequence[asyncio.Future[None]],
    ) -> None:
        self.scheduler.stop()
        grace = self.config.service.grace
        tasks = [helpers[0]]
        done, _ = await asyncio.wait(tasks, timeout=grace)
        if not done:  # grace is over: cut the runs short (what was fetched is archived)
            log.warning("service.grace_over", running=self.scheduler.running)
            self._cut_short()
            await asyncio.wait(tasks, timeout=30)
            await self.scheduler.drain(timeout=5)
        for task in helpers[1:]:
            task.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
        if self._deliveries:  # notifications on their way get a moment (bounded retries)
            await asyncio.wait(self._deliveries, timeout=10)
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*serving, return_exceptions=True)

    async def _run_feed(self, feed: Feed, timeout: float) -> RunResult:
        """Harvest one feed once through the shared fetcher, cut short after ``timeout`` s."""
        run = HarvestRun(
            self.writer,
            self.fetcher,
            SOURCES,
            max_requests=self.config.service.max_requests,
            env=self.env,
        )
        timed_out = False

        def expire() -> None:
            nonlocal timed_out
            timed_out = True
            run.cancel()

        self._runs[feed.name] = run
        timer = asyncio.get_running_loop().call_later(timeout, expire)
        try:
            report = await run.run([feed])
        finally:
            timer.cancel()
            self._runs.pop(feed.name, None)
        fr = report.feeds[0]
        error: str | None
        if timed_out:
            outcome, error = (
                "timeout",
                f"timed out after {timeout:g} s (what was fetched is archived)",
            )
        elif self._stopping and fr.error and fr.error.startswith("aborted"):
            outcome, error = "aborted", fr.error
        else:
            outcome, error = fr.status, fr.error
        return RunResult(
            outcome,
            poll_interval=fr.poll_interval,
            new=fr.new,
            versions=fr.versions,
            tombstones=fr.tombstones + fr.withdrawn,
            captures=fr.captures,
            parse_errors=fr.parse_errors,
            error=error,
        )

    async def _watch_config(self) -> None:
        while True:
            await asyncio.sleep(RELOAD_POLL)
            mtime = self._mtime()
            if mtime != self._config_mtime:
                await self.reload()

    async def _probe_lag(self) -> None:
        """Measure the event-loop lag, and watch the clock for a jump backwards, every second."""
        loop = asyncio.get_running_loop()
        while True:
            began = loop.time()
            await asyncio.sleep(LAG_PROBE)
            self.loop_lag = max(0.0, loop.time() - began - LAG_PROBE)
            self._watch_clock()

    def _watch_clock(self) -> None:
        """Compare the clock with the latest time seen; publish a change of ``clock_backwards``."""
        now = self.scheduler.clock.time()
        before = self.clock_backwards
        tolerance = self.config.health.clock_tolerance
        behind = self._wall_seen - now
        self.clock_behind = behind if behind > tolerance else 0.0
        self._wall_seen = max(self._wall_seen, now)
        if self.clock_backwards != before:
            if self.clock_backwards:
                log.error("service.clock_backwards", behind_seconds=behind)
            else:
                log.warning("service.clock_recovered")
            self.bus.emit(
                "check_result",
                check="clock",
                severity=2 if self.clock_backwards else 0,
                summary="the clock went backwards" if self.clock_backwards else "the clock is ok",
            )

    async def _health_loop(self) -> None:
        """Run the health checks: quick every ``health_every`` s, full every ``verify_every`` s.

        The quick pass is ``echoctl health --quick``'s; the full one adds the
        incremental verify and the derived-index check within their
        ``[health]`` budgets. Results feed ``/status``, ``echo_check_severity``,
        ``echo_feed_stale``/``echo_feed_silent``, ``echo_verify_failures_total``
        (mismatches the incremental verify found) and a ``check_result`` event
        for each check whose severity changed. A pass that fails is logged and
        tried again at the next interval.
        """
        process = psutil.Process()
        rss: deque[tuple[float, int]] = deque(maxlen=1440)
        last_full = float("-inf")
        while True:
            rss.append((time.time(), process.memory_info().rss))
            runtime = RuntimeStats(
                writer_queue_depth=self.writer.queue_depth,
                event_loop_lag_s=self.loop_lag,
                rss_bytes_history=tuple(rss),
            )
            began = time.monotonic()
            full = began - last_full >= self.config.service.verify_every
            try:
                report = await asyncio.to_thread(
                    run_checks,
                    self.path,
                    quick=not full,
                    runtime=runtime,
                    writer=self.writer,
                    now=self.scheduler.clock.time(),
                )
            except Exception as exc:  # a failing pass never stops the service
                log.error("service.health_failed", error=repr(exc))
            else:
                if full:
                    last_full = began
                self._take_report(report)
            await asyncio.sleep(self.config.service.health_every)

    def _take_report(self, report: HealthReport) -> None:
        """Keep what a health pass found (see :meth:`_health_loop`)."""
        for check in report.checks:
            severity = int(check.severity)
            if self.checks.get(check.name) != severity:
                self.bus.emit(
                    "check_result",
                    check=check.name,
                    severity=severity,
                    summary=check.summary,
                )
            self.checks[check.name] = severity
            details = check.details
            if check.name == "stale_feeds":
                self.stale = frozenset(str(k) for k in dict(details.get("stale") or {}))
            elif check.name == "silent_feeds":
                self.silent = frozenset(str(k) for k in dict(details.get("silent") or {}))
            elif check.name == "clock":
                self._clock_checkpoint_behind = check.severity is Severity.CRITICAL
            elif check.name == "incremental_verify":
                problems = details.get("problems") or []
                self.verify_failures += len(problems) if isinstance(problems, list) else 0

    async def _alert_loop(self) -> None:
        """Evaluate the alert rules every ``[alerts] evaluation_interval`` seconds.

        The evaluation (and its state write through the writer) runs in a
        thread; the notifications it returns are delivered in the background,
        so a slow webhook or mail server never delays the next evaluation.
        """
        while True:
            engine = self.alert_engine
            if engine is not None:
                samples = self.metrics.samples()
                try:
                    notes = await asyncio.to_thread(
                        engine.evaluate, samples, self.scheduler.clock.time()
                    )
                except Exception as exc:  # never stops the service: logged, tried again
                    log.error("service.alerts_failed", error=repr(exc))
                else:
                    self.firing = [a.to_json() for a in engine.alerts()]
                    if notes:
                        self._deliver(engine, notes)
            await asyncio.sleep(self.config.alerts.evaluation_interval)

    async def _supervise(self) -> None:
        """Run a supervisor cycle every ``[supervisor] cycle`` seconds (see the module).

        A cycle that fails is logged and the next one runs as usual: the
        supervisor never stops the service. ``[supervisor] enabled = false``
        observes and plans nothing.
        """
        while True:
            await asyncio.sleep(self.config.supervisor.cycle)
            if not self.config.supervisor.enabled:
                continue
            try:
                await self.supervise_once()
            except Exception as exc:  # never stops the service
                log.error("service.supervisor_failed", error=repr(exc))

    async def supervise_once(self) -> CycleReport:
        """One supervisor cycle now; returns its report.

        Observe, score, detect and plan (:meth:`Supervisor.cycle`); hand each
        proposal to the intervention manager (low-risk kinds within the
        hourly budget execute, high-risk ones wait for approval); execute
        what ``echoctl interventions`` approved or asked to roll back
        (``run_pending``); measure the effect of the executed ones whose
        ``assess_after`` has passed against this cycle's signals, rolling
        back those that made things worse (``assess``).
        """
        assert self.supervisor is not None
        assert self.observer is not None
        assert self.interventions is not None
        now = self.scheduler.clock.time()
        observation = self.observer.observe(now)
        report = self.supervisor.cycle(observation)
        self._last_signals = observation.signals()
        for finding in report.findings:
            log.info("service.supervisor_finding", **finding.to_json())
        for proposal in report.proposals:
            try:
                await self.interventions.propose(proposal)
            except InterventionError as exc:  # refused by its validation: said, not fatal
                log.warning(
                    "service.intervention_refused",
                    intervention=proposal.kind,
                    target=proposal.target,
                    error=str(exc),
                )
                self.supervisor.ended(proposal.kind, proposal.target)
        await self.interventions.run_pending()
        await self.interventions.assess(now, self._last_signals.get)
        await self._refresh_interventions()
        return report

    async def _refresh_interventions(self) -> None:
        """Keep the interventions not ended for ``/status``."""
        assert self.interventions is not None
        rows = await self.interventions.list()
        self.open_interventions = [iv.to_json() for iv in rows if iv.state in _OPEN_STATES]

    def _intervention_ended(self, iv: Intervention) -> None:
        """The manager's ``on_closed``: the supervisor may propose ``(kind, target)`` again."""
        if self.supervisor is not None:
            self.supervisor.ended(iv.kind, iv.target)

    def _breakglass_active(self) -> int:
        """Emergency elevations in force now (0 when the API's tables are not there)."""
        try:
            return len(active_elevations(self.reader, time.time()))
        except (EchoError, sqlite3.Error):
            return 0

    def _supervisor_samples(self) -> list[Sample]:
        report = self.supervisor.last if self.supervisor is not None else None
        return report.samples() if report is not None else []

    def _deliver(self, engine: AlertEngine, notes: list[Notification]) -> None:
        task = asyncio.ensure_future(engine.deliver(notes))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def _watch_disk(self) -> None:
        """Pause harvesting while free disk space is critical; resume once it is ok again.

        :func:`~echo_archive.control.health.disk_pressure` with ``[health]``'s
        thresholds, looked at :data:`DISK_POLLS` times per ``health_every``.
        """
        while True:
            try:
                usage = await asyncio.to_thread(shutil.disk_usage, self.path)
            except OSError:
                usage = None
            if usage is not None:
                cfg = HealthConfig.from_section(self.config.health)
                pressure = disk_pressure(usage.free, usage.total, cfg)
                if pressure is Severity.CRITICAL and not self.scheduler.paused_all:
                    self.scheduler.paused_all = True
                    self.checks["disk_free"] = 2
                    log.error("service.disk_critical", free_bytes=usage.free, paused=True)
                    self.bus.emit("check_result", check="disk_free", severity=2, free=usage.free)
                elif pressure is Severity.OK and self.scheduler.paused_all:
                    self.scheduler.paused_all = False
                    self.checks["disk_free"] = 0
                    log.warning("service.disk_recovered", free_bytes=usage.free, paused=False)
                    self.bus.emit("check_result", check="disk_free", severity=0, free=usage.free)
                    self.scheduler.wake()
            await asyncio.sleep(self.config.service.health_every / DISK_POLLS)

    def _schedule_gauges(self) -> dict[str, tuple[float, float | None]]:
        out: dict[str, tuple[float, float | None]] = {}
        for name, row in self.scheduler.schedules.items():
            success = row.last_start if row.last_outcome == "harvested" else None
            out[name] = (row.next_epoch, success)
        return out

    def _breaker_states(self) -> dict[str, str]:
        states = HarvestState(self.reader.catalog).breakers()
        return {host: str(raw.get("state", "?")).lower() for host, raw in states.items()}

    def _publish_entries(self, result: CommitResult) -> None:
        """One event per item, version and tombstone a durable commit logged (writer thread).

        Kinds: ``item_archived``, ``version``, ``tombstone`` (:data:`ENTRY_EVENTS`);
        the event's ``index`` is the entry's log index (the live stream's
        event id), its data ``type``, ``kind`` (the entry's own kind, such as
        ``withdrawn`` or ``removed``, or None), ``source``, ``feed``,
        ``native_id`` and ``logged_at``.
        """
        for receipt in result.receipts:
            entry = receipt.entry
            kind = ENTRY_EVENTS.get(entry.type)
            if kind is None:
                continue
            meta = entry.meta
            self.bus.emit(
                kind,
                receipt.index,
                type=entry.type,
                entry_kind=meta.get("kind"),
                source=meta.get("source"),
                feed=meta.get("feed"),
                native_id=meta.get("native_id"),
                logged_at=entry.logged_at,
            )

    # ------------------------------------------------------------------ files
    def _write_service_file(self, sock: Path | None) -> None:
        doc = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "url": self.url,
            "control": None if sock is None else str(sock),
            "started_at": _rfc3339(self.started_at),
            "version": __version__,
        }
        tmp = self.path / f".{SERVICE_FILE}.tmp"
        tmp.write_text(json.dumps(doc, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, self.path / SERVICE_FILE)

    def _remove_files(self) -> None:
        data = None
        with contextlib.suppress(OSError, ValueError):
            data = json.loads((self.path / SERVICE_FILE).read_text(encoding="utf-8"))
        if isinstance(data, dict) and data.get("pid") == os.getpid():
            with contextlib.suppress(OSError):
                (self.path / SERVICE_FILE).unlink()
            with contextlib.suppress(OSError):
                (self.path / CONTROL_SOCKET).unlink()


_OPEN_STATES: Final = frozenset(
    {
        "planned",
        "deferred",
        "pending_approval",
        "approved",
        "executed",
        "rollback_requested",
    }
)
"""Intervention states that have not ended (shown by ``/status``)."""


def _supervisor_options(config: EchoConfig) -> SupervisorOptions:
    """``[supervisor]``'s keys where :class:`SupervisorOptions` has them (the rest: defaults)."""
    section = config.supervisor
    w = section.weights
    return SupervisorOptions(
        enabled=section.enabled,
        cycle=section.cycle,
        weights=StabilityWeights(
            resource=w.resource, error=w.error, performance=w.performance, dependency=w.dependency
        ),
        horizon=section.horizon,
        assess_after=section.assess_after,
    )


def _feed_hosts(feeds: Sequence[Feed]) -> dict[str, str]:
    """``{feed: host key}`` of each feed's first planned request (the supervisor's map)."""
    out: dict[str, str] = {}
    for feed in feeds:
        source = SOURCES.get(feed.source)
        try:
            requests = source.plan(feed) if source is not None else []
        except Exception as exc:  # a plan that needs credentials or state: no host known
            log.debug("service.feed_host_unknown", feed=feed.name, error=repr(exc))
            continue
        if requests:
            out[feed.name] = host_key(requests[0].url)
    return out


def _rfc3339(epoch: float | None) -> str | None:
    return None if epoch is None else format_timestamp(int(epoch * 1e9))
