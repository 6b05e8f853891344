"""What the supervisor sees each cycle: an :class:`Observation` of the system's state.

The supervisor (the Echo Controller, :mod:`echo_archive.control.supervisor`)
works in cycles of ``[supervisor] cycle`` seconds. An :class:`Observer`
accumulates what happens between two cycles and :meth:`Observer.observe`
closes the cycle, returning a frozen :class:`Observation`:

per feed (:class:`FeedObservation`)
    From the scheduler's ``feed_run`` events (phase ``finished``) on the
    :class:`~echo_archive.events.EventBus`: runs, failed runs, the last
    outcome, items (new + versions + tombstones) per run, captures, parse
    errors, the mean run duration in seconds, and the feed's host.
per host (:class:`HostObservation`)
    From the fetcher's :class:`~echo_archive.harvest.hoststats.HostStats`
    (differences between two snapshots): requests, errors by class (5xx,
    429, transport: timeouts and connection failures), latency p50/p95 in
    seconds (nearest-rank percentiles of the cycle's attempts), and the
    host's breaker state (resilience4j state names, lower case).
process (:class:`ProcessObservation`)
    CPU as a fraction of one core over the cycle, resident set size in
    bytes, open file descriptors, event-loop lag in seconds.
disk (:class:`DiskObservation`), writer (:class:`WriterObservation`)
    Free bytes and free ratio of the vault's filesystem; the writer's queue
    depth (jobs) and commit latency (seconds).

Everything the observer cannot see by itself is pulled through injected
callables (:class:`Pulls`), so the service passes psutil, ``shutil.disk_usage``
and its writer, and tests and the benchmark pass their own. A pull that
raises is logged and its part of the observation left unknown (None); an
observation never fails. Nothing here is source text: feed names and host
keys come from the configuration.

Signals: :meth:`Observation.signals` flattens an observation into
``{signal key: value}``, the keys the drift detectors, the collapse risk and
:class:`~echo_archive.control.interventions.Proposal` ``.signal`` use:
``feed_items:<feed>``, ``feed_parse_error_rate:<feed>``,
``feed_failure_rate:<feed>``, ``host_error_rate:<host>`` (5xx and transport
errors over requests), ``host_throttle_rate:<host>`` (429s over requests),
``host_latency_p95:<host>``, ``cpu_fraction``, ``rss_bytes``, ``open_fds``,
``loop_lag_seconds``, ``disk_free_ratio``, ``disk_free_bytes``,
``writer_queue_depth``, ``commit_latency_seconds``.
"""

from __future__ import annotations

import math
import os
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import structlog

from echo_archive.events import Event, EventBus
from echo_archive.harvest.hoststats import HostSnapshot, HostStats

__all__ = [
    "DiskObservation",
    "FeedObservation",
    "HostObservation",
    "Observation",
    "Observer",
    "ProcessObservation",
    "ProcessSampler",
    "Pulls",
    "WriterObservation",
    "disk_pull",
    "percentile",
]

log = structlog.get_logger("echo_archive.control.observe")

MAX_FEEDS: Final = 10_000
"""Feeds observed apart in one cycle (a bound on memory; more are dropped and logged)."""


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank ``q``-th percentile of ``values`` (NIST/Hyndman-Fan definition 1).

    Args:
        values: samples, any order.
        q: the percentile, in [0, 100].

    Returns:
        The smallest value with at least ``q`` % of the samples at or below
        it, or None for no samples.

    Raises:
        ValueError: ``q`` outside [0, 100].
    """
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q}: must be within [0, 100]")
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class FeedObservation:
    """One feed's runs finished during the cycle.

    Attributes:
        feed: the feed's name.
        runs: runs finished (every outcome).
        failed: runs that did not harvest (``failed``, ``timeout``).
        outcome: the last run's outcome (``harvested``, ``failed``...).
        items: items archived (new + versions + tombstones) over the runs.
        harvested: runs that harvested (the denominator of :attr:`items_per_run`).
        captures: captures the runs saved.
        parse_errors: responses that failed to parse.
        seconds: mean run duration, seconds.
        host: the host key of the feed's URL, or "" when unknown.
    """

    feed: str
    runs: int = 0
    failed: int = 0
    outcome: str = ""
    items: int = 0
    harvested: int = 0
    captures: int = 0
    parse_errors: int = 0
    seconds: float = 0.0
    host: str = ""

    @property
    def items_per_run(self) -> float | None:
        """Mean items per harvested run, or None when no run harvested."""
        return self.items / self.harvested if self.harvested else None

    @property
    def parse_error_rate(self) -> float | None:
        """Parse errors over captures, in [0, 1], or None without captures."""
        if self.captures <= 0:
            return None
        return min(1.0, self.parse_errors / self.captures)

    @property
    def failure_rate(self) -> float | None:
        """Failed runs over runs, in [0, 1], or None without runs."""
        return self.failed / self.runs if self.runs else None

    def to_json(self) -> dict[str, Any]:
        """The fields and the derived rates, JSON-ready."""
        return {
            "feed": self.feed,
            "host": self.host,
            "runs": self.runs,
            "failed": self.failed,
            "outcome": self.outcome,
            "items": self.items,
            "harvested": self.harvested,
            "items_per_run": self.items_per_run,
            "captures": self.captures,
            "parse_errors": self.parse_errors,
            "parse_error_rate": self.parse_error_rate,
            "seconds": self.seconds,
        }


@dataclass(frozen=True, slots=True)
class HostObservation:
    """One host's requests during the cycle.

    Attributes:
        host: the host key (``example.org``, ``127.0.0.1:8080``).
        requests: attempts sent.
        server_errors: HTTP 5xx answers.
        throttled: HTTP 429 answers.
        transport_errors: attempts with no answer (timeouts, connection failures).
        latency_p50, latency_p95: seconds, or None without requests.
        breaker: the breaker's state (``closed``, ``open``, ``half_open``,
            ``forced_open``, ``disabled``), or "" when the host has none yet.
    """

    host: str
    requests: int = 0
    server_errors: int = 0
    throttled: int = 0
    transport_errors: int = 0
    latency_p50: float | None = None
    latency_p95: float | None = None
    breaker: str = ""

    @property
    def error_rate(self) -> float | None:
        """5xx and transport errors over requests, in [0, 1], or None without requests."""
        if self.requests <= 0:
            return None
        return min(1.0, (self.server_errors + self.transport_errors) / self.requests)

    @property
    def throttle_rate(self) -> float | None:
        """429 answers over requests, in [0, 1], or None without requests."""
        return min(1.0, self.throttled / self.requests) if self.requests > 0 else None

    def to_json(self) -> dict[str, Any]:
        """The fields and the derived rates, JSON-ready."""
        return {
            "host": self.host,
            "requests": self.requests,
            "server_errors": self.server_errors,
            "throttled": self.throttled,
            "transport_errors": self.transport_errors,
            "error_rate": self.error_rate,
            "throttle_rate": self.throttle_rate,
            "latency_p50_seconds": self.latency_p50,
            "latency_p95_seconds": self.latency_p95,
            "breaker": self.breaker,
        }


@dataclass(frozen=True, slots=True)
class ProcessObservation:
    """The service process; every field None when unknown.

    Attributes:
        cpu_fraction: CPU time over wall time since the last sample, as a
            fraction of one core (may exceed 1 with several threads busy).
        rss_bytes: resident set size, bytes.
        open_fds: open file descriptors.
        loop_lag_seconds: the event loop's lag, seconds.
    """

    cpu_fraction: float | None = None
    rss_bytes: int | None = None
    open_fds: int | None = None
    loop_lag_seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The fields, JSON-ready."""
        return {
            "cpu_fraction": self.cpu_fraction,
            "rss_bytes": self.rss_bytes,
            "open_fds": self.open_fds,
            "loop_lag_seconds": self.loop_lag_seconds,
        }


@dataclass(frozen=True, slots=True)
class DiskObservation:
    """The vault's filesystem; None when unknown.

    Attributes:
        free_bytes: bytes free.
        free_ratio: free over total, in [0, 1].
    """

    free_bytes: int | None = None
    free_ratio: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The fields, JSON-ready."""
        return {"free_bytes": self.free_bytes, "free_ratio": self.free_ratio}


@dataclass(frozen=True, slots=True)
class WriterObservation:
    """The vault's single writer; None when unknown.

    Attributes:
        queue_depth: jobs waiting in its queue.
        commit_latency_seconds: a recent commit's duration (the p95 when the
            service tracks one), seconds.
    """

    queue_depth: int | None = None
    commit_latency_seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The fields, JSON-ready."""
        return {
            "queue_depth": self.queue_depth,
            "commit_latency_seconds": self.commit_latency_seconds,
        }


@dataclass(frozen=True, slots=True)
class Observation:
    """One cycle's system state (see the module docstring).

    Attributes:
        at: POSIX seconds when the cycle closed.
        seconds: the cycle's length, seconds (since the previous observation).
        feeds: the feeds with runs finished in the cycle, by name order.
        hosts: the hosts with requests in the cycle or a breaker, by key order.
        process, disk, writer: the process, the vault's disk and its writer.
    """

    at: float
    seconds: float
    feeds: tuple[FeedObservation, ...] = ()
    hosts: tuple[HostObservation, ...] = ()
    process: ProcessObservation = field(default_factory=ProcessObservation)
    disk: DiskObservation = field(default_factory=DiskObservation)
    writer: WriterObservation = field(default_factory=WriterObservation)

    def feed(self, name: str) -> FeedObservation | None:
        """The observation of feed ``name``, or None when it did not run this cycle."""
        return next((f for f in self.feeds if f.feed == name), None)

    def host(self, key: str) -> HostObservation | None:
        """The observation of host ``key``, or None when it was not seen this cycle."""
        return next((h for h in self.hosts if h.host == key), None)

    def signals(self) -> dict[str, float]:
        """``{signal key: value}`` of everything known this cycle (keys: module docstring)."""
        out: dict[str, float] = {}

        def put(key: str, value: float | None) -> None:
            if value is not None and math.isfinite(value):
                out[key] = float(value)

        for f in self.feeds:
            put(f"feed_items:{f.feed}", f.items_per_run)
            put(f"feed_parse_error_rate:{f.feed}", f.parse_error_rate)
            put(f"feed_failure_rate:{f.feed}", f.failure_rate)
        for h in self.hosts:
            put(f"host_error_rate:{h.host}", h.error_rate)
            put(f"host_throttle_rate:{h.host}", h.throttle_rate)
            put(f"host_latency_p95:{h.host}", h.latency_p95)
        p, d, w = self.process, self.disk, self.writer
        put("cpu_fraction", p.cpu_fraction)
        put("rss_bytes", None if p.rss_bytes is None else float(p.rss_bytes))
        put("open_fds", None if p.open_fds is None else float(p.open_fds))
        put("loop_lag_seconds", p.loop_lag_seconds)
        put("disk_free_ratio", d.free_ratio)
        put("disk_free_bytes", None if d.free_bytes is None else float(d.free_bytes))
        put("writer_queue_depth", None if w.queue_depth is None else float(w.queue_depth))
        put("commit_latency_seconds", w.commit_latency_seconds)
        return out

    def to_json(self) -> dict[str, Any]:
        """``{"at", "seconds", "feeds": [...], "hosts": [...], "process", "disk", "writer"}``."""
        return {
            "at": self.at,
            "seconds": self.seconds,
            "feeds": [f.to_json() for f in self.feeds],
            "hosts": [h.to_json() for h in self.hosts],
            "process": self.process.to_json(),
            "disk": self.disk.to_json(),
            "writer": self.writer.to_json(),
        }


# ---------------------------------------------------------------------------- pulls


class ProcessSampler:
    """CPU, memory and file descriptors of a process through psutil.

    CPU is ``psutil.Process.cpu_times()`` user + system seconds over the wall
    seconds since the previous call (psutil docs, ``cpu_percent``: the same
    ratio, here as a fraction of one core). The first call reports None for CPU.

    Args:
        pid: the process (None: this one).
        clock: monotonic seconds.
    """

    def __init__(self, pid: int | None = None, clock: Callable[[], float] = time.monotonic):
        import psutil  # imported here: only a service samples itself

        self._process = psutil.Process(pid)
        self._clock = clock
        self._last: tuple[float, float] | None = None

    def __call__(self) -> ProcessObservation:
        """One sample (loop lag is not the process's: None here)."""
        with self._process.oneshot():
            times = self._process.cpu_times()
            rss = int(self._process.memory_info().rss)
            fds = int(self._process.num_fds()) if hasattr(self._process, "num_fds") else None
        cpu_seconds, now = float(times.user + times.system), self._clock()
        cpu: float | None = None
        if self._last is not None and now > self._last[0]:
            cpu = max(0.0, (cpu_seconds - self._last[1]) / (now - self._last[0]))
        self._last = (now, cpu_seconds)
        return ProcessObservation(cpu_fraction=cpu, rss_bytes=rss, open_fds=fds)


def disk_pull(path: Path | str) -> Callable[[], DiskObservation]:
    """A disk pull for the filesystem holding ``path`` (:func:`shutil.disk_usage`).

    Raises (when called):
        OSError: the path cannot be examined (the observer logs it and leaves
            the disk unknown).
    """

    def pull() -> DiskObservation:
        usage = shutil.disk_usage(os.fspath(path))
        ratio = usage.free / usage.total if usage.total else 0.0
        return DiskObservation(free_bytes=int(usage.free), free_ratio=ratio)

    return pull


@dataclass(frozen=True)
class Pulls:
    """What the observer reads at the end of a cycle, each None when not available.

    Attributes:
        process: a :class:`ProcessObservation` of the service (e.g. :class:`ProcessSampler`).
        loop_lag: the event loop's lag, seconds (the service's probe).
        disk: the vault's filesystem (e.g. :func:`disk_pull`).
        queue_depth: the writer's queue depth (``VaultWriter.queue_depth``).
        commit_latency: the writer's recent commit latency, seconds.
        breakers: ``{host key: breaker state}`` (resilience4j names, any case).
        feed_hosts: ``{feed name: host key}`` of the configured feeds.
    """

    process: Callable[[], ProcessObservation] | None = None
    loop_lag: Callable[[], float | None] | None = None
    disk: Callable[[], DiskObservation] | None = None
    queue_depth: Callable[[], int | None] | None = None
    commit_latency: Callable[[], float | None] | None = None
    breakers: Callable[[], Mapping[str, str]] | None = None
    feed_hosts: Callable[[], Mapping[str, str]] | None = None


def _pull(name: str, fn: Callable[[], Any] | None) -> Any:
    if fn is None:
        return None
    try:
        return fn()
    except Exception as exc:  # an unreadable part is unknown, never a failed cycle
        log.warning("observe.pull_failed", pull=name, error=repr(exc))
        return None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


class Observer:
    """Accumulates one cycle's feed runs and host requests; :meth:`observe` closes it.

    Args:
        bus: the service's event bus: ``feed_run`` events (phase ``finished``)
            are counted (None: feed runs are given with :meth:`on_event`).
        hosts: the fetcher's :attr:`~echo_archive.harvest.engine.Fetcher.host_stats`
            (None: no host is observed).
        pulls: the process, disk, writer, breaker and feed-host readers.
        start: POSIX seconds the first cycle starts at (None: the first
            :meth:`observe` closes a cycle of length 0).

    The bus may call :meth:`on_event` from any thread; it takes a lock.
    Call :meth:`close` to unsubscribe.
    """

    def __init__(
        self,
        bus: EventBus | None = None,
        hosts: HostStats | None = None,
        pulls: Pulls | None = None,
        *,
        start: float | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._feeds: dict[str, FeedObservation] = {}
        """This cycle's runs by feed, ``seconds`` summed (a mean once the cycle closes)."""
        self._hosts = hosts
        self._pulls = pulls or Pulls()
        self._previous: dict[str, HostSnapshot] = hosts.snapshot() if hosts is not None else {}
        self._last = start
        self.dropped = 0
        """Feed runs not counted because :data:`MAX_FEEDS` feeds were already seen."""
        self._unsubscribe = bus.subscribe(self.on_event) if bus is not None else None

    def close(self) -> None:
        """Stop listening to the bus."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def on_event(self, event: Event) -> None:
        """Count a finished ``feed_run`` (other events are ignored); never raises."""
        data = event.data
        if event.kind != "feed_run" or data.get("phase") != "finished":
            return
        name = data.get("feed")
        if not isinstance(name, str):
            return
        outcome = str(data.get("outcome", ""))
        seconds = data.get("seconds")
        harvested = outcome == "harvested"
        items = _int(data.get("new")) + _int(data.get("versions")) + _int(data.get("tombstones"))
        took = 0.0
        if isinstance(seconds, int | float) and math.isfinite(seconds) and seconds > 0:
            took = float(seconds)
        with self._lock:
            acc = self._feeds.get(name)
            if acc is None:
                if len(self._feeds) >= MAX_FEEDS:
                    self.dropped += 1
                    return
                acc = FeedObservation(name)
            self._feeds[name] = replace(
                acc,
                runs=acc.runs + 1,
                outcome=outcome,
                failed=acc.failed + (outcome in ("failed", "timeout")),
                harvested=acc.harvested + harvested,
                items=acc.items + (items if harvested else 0),
                captures=acc.captures + _int(data.get("captures")),
                parse_errors=acc.parse_errors + _int(data.get("parse_errors")),
                seconds=acc.seconds + took,
            )

    def observe(self, now: float) -> Observation:
        """Close the cycle at ``now`` (POSIX seconds) and start the next one.

        Returns:
            The :class:`Observation` of the cycle since the previous call (or
            since ``start``).
        """
        with self._lock:
            feeds, self._feeds = self._feeds, {}
        seconds = max(0.0, now - self._last) if self._last is not None else 0.0
        self._last = now
        p = self._pulls
        feed_hosts: Mapping[str, str] = _pull("feed_hosts", p.feed_hosts) or {}
        breakers: Mapping[str, str] = _pull("breakers", p.breakers) or {}
        feed_obs = tuple(
            replace(
                acc,
                seconds=acc.seconds / acc.runs if acc.runs else 0.0,
                host=str(feed_hosts.get(name, "")),
            )
            for name, acc in sorted(feeds.items())
        )
        process = _pull("process", p.process) or ProcessObservation()
        lag = _pull("loop_lag", p.loop_lag)
        if lag is not None:
            process = ProcessObservation(
                process.cpu_fraction, process.rss_bytes, process.open_fds, float(lag)
            )
        return Observation(
            at=now,
            seconds=seconds,
            feeds=feed_obs,
            hosts=self._host_observations(breakers),
            process=process,
            disk=_pull("disk", p.disk) or DiskObservation(),
            writer=WriterObservation(
                queue_depth=_pull("queue_depth", p.queue_depth),
                commit_latency_seconds=_pull("commit_latency", p.commit_latency),
            ),
        )

    def _host_observations(self, breakers: Mapping[str, str]) -> tuple[HostObservation, ...]:
        current = self._hosts.snapshot() if self._hosts is not None else {}
        previous, self._previous = self._previous, current
        out: list[HostObservation] = []
        for host in sorted(set(current) | set(breakers)):
            now_s, then = current.get(host, HostSnapshot()), previous.get(host)
            base = then or HostSnapshot()
            latencies = now_s.latencies_since(then)
            requests = now_s.requests - base.requests
            state = str(breakers.get(host, "")).lower()
            if requests <= 0 and not state:
                continue
            out.append(
                HostObservation(
                    host=host,
                    requests=max(0, requests),
                    server_errors=max(0, now_s.server_errors - base.server_errors),
                    throttled=max(0, now_s.throttled - base.throttled),
                    transport_errors=max(0, now_s.transport_errors - base.transport_errors),
                    latency_p50=percentile(latencies, 50),
                    latency_p95=percentile(latencies, 95),
                    breaker=state,
                )
            )
        return tuple(out)
