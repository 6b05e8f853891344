"""The service's Prometheus metrics (text exposition format 0.0.4, prometheus-client).

Counters and histograms are fed by the event bus and the writer; gauges are
read from the scheduler, the health checks and the vault when ``/metrics``
is scraped (a custom collector), so a scrape always shows the current
state. The names, types, labels and help texts are those of the one list,
:data:`echo_archive.control.metrics.METRICS` (a test checks that a scrape
shows exactly those families); the process's own CPU, memory and file
descriptors come from prometheus-client's ``ProcessCollector``
(``process_*``). The alert engine evaluates its rules over
:meth:`ServiceMetrics.samples`, the very series a scrape shows, and the
rules ``echoctl alerts rules`` prints are written over the same names.
"""

from __future__ import annotations

import shutil
from collections import defaultdict, deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from echo_archive.control.alerts import Sample
from echo_archive.control.metrics import METRIC_NAMES, metric
from echo_archive.events import Event, EventBus

__all__ = ["CONTENT_TYPE", "FAILURE_WINDOW", "SUPERVISOR_METRICS", "ServiceMetrics", "StateSource"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The Prometheus text exposition format's media type."""

FAILURE_WINDOW = 20
"""``echo_feed_failure_ratio`` is over this many last runs of the feed."""

HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds (seconds) of ``echo_http_request_duration_seconds``' buckets."""

BREAKER_STATES = ("closed", "open", "half_open", "forced_open", "disabled")

SUPERVISOR_METRICS = (
    "echo_stability_score",
    "echo_stability_component",
    "echo_collapse_risk",
    "echo_drift_detected",
    "echo_supervisor_finding",
)
"""The families the supervisor's samples fill (:class:`StateSource` ``supervisor``)."""


@dataclass(slots=True)
class StateSource:
    """Callables the collector reads at scrape time (each returns current values).

    Attributes:
        schedules: feed -> ``(next_epoch, last success start or None)``.
        running: feed runs in flight.
        due: feeds due and not started.
        paused: harvesting paused (disk critical).
        breakers: host -> state name (resilience4j's, lowercase).
        log_size: entries in the log.
        queue_depth: writer jobs waiting.
        loop_lag: last event-loop lag, seconds.
        checks: check name -> severity (0, 1, 2).
        ticks: looks at the schedules so far.
        vault_path: where the vault lives (disk free is measured there).
        stale: feeds the last health pass found stale (``echo_feed_stale``).
        silent: feeds the last health pass found silent (``echo_feed_silent``).
        clock_backwards: the clock reads before the newest checkpoint or
            before a time the service already saw (``echo_clock_backwards``).
        verify_failures: mismatches verification has found since the start
            (``echo_verify_failures_total``).
        breakglass: emergency elevations in force (``echo_breakglass_active``).
        supervisor: the supervisor's latest samples
            (:meth:`~echo_archive.control.supervisor.CycleReport.samples`:
            :data:`SUPERVISOR_METRICS`); none until it has run a cycle.
    """

    schedules: Callable[[], Mapping[str, tuple[float, float | None]]]
    running: Callable[[], int]
    due: Callable[[], int]
    paused: Callable[[], bool]
    breakers: Callable[[], Mapping[str, str]]
    log_size: Callable[[], int]
    queue_depth: Callable[[], int]
    loop_lag: Callable[[], float]
    checks: Callable[[], Mapping[str, int]]
    ticks: Callable[[], int]
    vault_path: Path
    stale: Callable[[], Collection[str]] = frozenset
    silent: Callable[[], Collection[str]] = frozenset
    clock_backwards: Callable[[], bool] = bool
    verify_failures: Callable[[], int] = int
    supervisor: Callable[[], Iterable[Sample]] = tuple
    breakglass: Callable[[], int] = int


def _gauge(name: str, value: float | None = None) -> GaugeMetricFamily:
    spec = metric(name)
    if value is None:
        return GaugeMetricFamily(name, spec.help, labels=list(spec.labels))
    return GaugeMetricFamily(name, spec.help, value=value)


def _counter(name: str, value: float) -> CounterMetricFamily:
    spec = metric(name)
    return CounterMetricFamily(spec.base_name, spec.help, value=value)


class _StateCollector(Collector):
    def __init__(self, owner: ServiceMetrics) -> None:
        self._owner = owner

    def collect(self) -> Iterator[Metric]:
        state = self._owner.state
        if state is None:
            return
        owner = self._owner
        ratio = _gauge("echo_feed_failure_ratio")
        for feed, outcomes in sorted(owner.outcomes.items()):
            if outcomes:
                ratio.add_metric([feed], sum(1 for ok in outcomes if not ok) / len(outcomes))
        yield ratio
        last_ok = _gauge("echo_feed_last_success_timestamp_seconds")
        nxt = _gauge("echo_feed_next_run_timestamp_seconds")
        schedules = state.schedules()
        for feed, (next_epoch, success) in sorted(schedules.items()):
            nxt.add_metric([feed], next_epoch)
            if success is not None:
                last_ok.add_metric([feed], success)
        yield last_ok
        yield nxt
        items = _gauge("echo_feed_items_last_run")
        for feed, count in sorted(owner.items_last_run.items()):
            items.add_metric([feed], count)
        yield items
        for name, flagged in (
            ("echo_feed_stale", set(state.stale())),
            ("echo_feed_silent", set(state.silent())),
        ):
            family = _gauge(name)
            for feed in sorted(set(schedules) | flagged):
                family.add_metric([feed], 1.0 if feed in flagged else 0.0)
            yield family
        breakers = _gauge("echo_breaker_state")
        for host, current in sorted(state.breakers().items()):
            for name in BREAKER_STATES:
                breakers.add_metric([host, name], 1.0 if name == current else 0.0)
        yield breakers
        yield _gauge("echo_log_size_entries", state.log_size())
        yield _gauge("echo_writer_queue_depth", state.queue_depth())
        yield _gauge("echo_scheduler_running_feeds", state.running())
        yield _gauge("echo_scheduler_due_feeds", state.due())
        yield _counter("echo_scheduler_ticks_total", state.ticks())
        yield _gauge("echo_scheduler_paused", 1.0 if state.paused() else 0.0)
        yield _gauge("echo_event_loop_lag_seconds", state.loop_lag())
        usage = shutil.disk_usage(state.vault_path)
        yield _gauge("echo_disk_free_bytes", usage.free)
        yield _gauge("echo_disk_free_ratio", usage.free / usage.total if usage.total else 0.0)
        checks = _gauge("echo_check_severity")
        for name, severity in sorted(state.checks().items()):
            checks.add_metric([name], severity)
        yield checks
        yield _gauge("echo_clock_backwards", 1.0 if state.clock_backwards() else 0.0)
        yield _counter("echo_verify_failures_total", state.verify_failures())
        yield _gauge("echo_breakglass_active", state.breakglass())
        families = {name: _gauge(name) for name in SUPERVISOR_METRICS}
        for sample in state.supervisor():
            gauge = families.get(sample.name)
            if gauge is not None:
                labels = [str(sample.labels.get(k, "")) for k in metric(sample.name).labels]
                gauge.add_metric(labels, sample.value)
        yield from families.values()


class ServiceMetrics:
    """The service's metric registry, fed by the bus and read at scrape time.

    Args:
        bus: the service's event bus (subscribed at construction).
    """

    def __init__(self, bus: EventBus | None = None) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # no ``*_created`` series: they double every counter
        self.registry = CollectorRegistry(auto_describe=True)
        self.state: StateSource | None = None
        self.outcomes: dict[str, deque[bool]] = defaultdict(lambda: deque(maxlen=FAILURE_WINDOW))
        self.items_last_run: dict[str, int] = {}
        self.last_commit_seconds: float | None = None
        """The latest writer job's or commit's duration, seconds (the supervisor reads it)."""
        self.runs = Counter(
            metric("echo_feed_runs_total").base_name,
            metric("echo_feed_runs_total").help,
            list(metric("echo_feed_runs_total").labels),
            registry=self.registry,
        )
        self.parse_errors = Counter(
            metric("echo_feed_parse_errors_total").base_name,
            metric("echo_feed_parse_errors_total").help,
            list(metric("echo_feed_parse_errors_total").labels),
            registry=self.registry,
        )
        self.items = Counter(
            metric("echo_items_archived_total").base_name,
            metric("echo_items_archived_total").help,
            list(metric("echo_items_archived_total").labels),
            registry=self.registry,
        )
        self.events = Counter(
            metric("echo_events_total").base_name,
            metric("echo_events_total").help,
            list(metric("echo_events_total").labels),
            registry=self.registry,
        )
        self.commit_seconds = Histogram(
            "echo_commit_seconds",
            metric("echo_commit_seconds").help,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        self.http_requests = Counter(
            metric("echo_http_requests_total").base_name,
            metric("echo_http_requests_total").help,
            list(metric("echo_http_requests_total").labels),
            registry=self.registry,
        )
        self.http_seconds = Histogram(
            "echo_http_request_duration_seconds",
            metric("echo_http_request_duration_seconds").help,
            list(metric("echo_http_request_duration_seconds").labels),
            buckets=HTTP_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_StateCollector(self))
        ProcessCollector(registry=self.registry)
        if bus is not None:
            bus.subscribe(self.observe)

    def observe(self, event: Event) -> None:
        """Count one event (a bus subscriber)."""
        self.events.labels(event.kind).inc()
        if event.kind != "feed_run" or event.data.get("phase") != "finished":
            return
        data: Mapping[str, Any] = event.data
        feed = str(data.get("feed"))
        outcome = str(data.get("outcome"))
        self.runs.labels(feed, outcome).inc()
        self.outcomes[feed].append(outcome == "harvested")
        new, versions = int(data.get("new", 0)), int(data.get("versions", 0))
        tombstones = int(data.get("tombstones", 0))
        self.items_last_run[feed] = new + versions + tombstones
        for kind, count in (("new", new), ("version", versions)):
            if count:
                self.items.labels(kind).inc(count)
        if tombstones:
            self.items.labels("tombstone").inc(tombstones)
        errors = int(data.get("parse_errors", 0))
        if errors:
            self.parse_errors.labels(feed).inc(errors)

    def observe_commit(self, seconds: float) -> None:
        """One writer job or commit took ``seconds`` (the writer's ``on_job``; writer thread)."""
        self.commit_seconds.observe(seconds)
        self.last_commit_seconds = seconds

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """One HTTP request answered (the API's edge middleware; on the event loop).

        Args:
            route: the route template (``/v1/items/{ref}``) or ``unmatched``:
                never a raw path, so the series stay bounded by the routes.
            method: an HTTP method (or ``other``).
            status: the response's status code.
            seconds: from arrival to the response's end.
        """
        self.http_requests.labels(route, method, str(status)).inc()
        self.http_seconds.labels(route).observe(seconds)

    def samples(self) -> list[Sample]:
        """Every series of :data:`~echo_archive.control.metrics.METRICS` as a scrape shows it now.

        What the alert engine evaluates (a histogram's ``_bucket``/``_sum``/
        ``_count`` series and ``process_*`` are left out: no rule reads them).

        Returns:
            One :class:`~echo_archive.control.alerts.Sample` per series.
        """
        out: list[Sample] = []
        for family in self.registry.collect():
            for sample in family.samples:
                if sample.name in METRIC_NAMES:
                    out.append(Sample(sample.name, dict(sample.labels), float(sample.value)))
        return out

    def render(self) -> bytes:
        """The exposition text of every metric (:data:`CONTENT_TYPE`)."""
        return generate_latest(self.registry)
