"""The service's Prometheus metrics (text exposition format 0.0.4, prometheus-client).

Counters and histograms are fed by the event bus and the writer; gauges are
read from the scheduler and the vault when ``/metrics`` is scraped (a custom
collector), so a scrape always shows the current state. Every name has the
``echo_`` prefix; the process's own CPU, memory and file descriptors come from
prometheus-client's ``ProcessCollector`` (``process_*``). The alerting rules
``echoctl alerts rules`` prints are written over these names.

- ``echo_feed_runs_total{feed,outcome}`` (counter): feed runs ended, by outcome
- ``echo_feed_failure_ratio{feed}`` (gauge): failed share of the feed's last 20 runs
- ``echo_feed_last_success_timestamp_seconds{feed}`` (gauge): when its last successful run started
- ``echo_feed_next_run_timestamp_seconds{feed}`` (gauge): when it is next due
- ``echo_feed_items_last_run{feed}`` (gauge): new items + versions of its last run
- ``echo_feed_parse_errors_total{feed}`` (counter): responses that failed to parse
- ``echo_items_archived_total{kind}`` (counter): new items, versions, tombstones
- ``echo_breaker_state{host,state}`` (gauge): 1 for the host breaker's state
- ``echo_log_size_entries`` (gauge): entries in the log
- ``echo_writer_queue_depth`` (gauge): jobs waiting for the writer
- ``echo_commit_seconds`` (histogram): duration of each writer job/commit
- ``echo_scheduler_running_feeds`` (gauge): feed runs in flight
- ``echo_scheduler_due_feeds`` (gauge): feeds due and not yet started
- ``echo_scheduler_ticks_total`` (counter): looks at the schedules
- ``echo_scheduler_paused`` (gauge): 1 while harvesting is paused
- ``echo_event_loop_lag_seconds`` (gauge): last measured event-loop lag
- ``echo_disk_free_bytes``, ``echo_disk_free_ratio`` (gauge): free space where the vault lives
- ``echo_check_severity{check}`` (gauge): 0 ok, 1 warning, 2 critical
- ``echo_events_total{kind}`` (counter): events published on the bus
"""

from __future__ import annotations

import shutil
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Mapping
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

from echo_archive.events import Event, EventBus

__all__ = ["CONTENT_TYPE", "FAILURE_WINDOW", "ServiceMetrics", "StateSource"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The Prometheus text exposition format's media type."""

FAILURE_WINDOW = 20
"""``echo_feed_failure_ratio`` is over this many last runs of the feed."""

BREAKER_STATES = ("closed", "open", "half_open", "forced_open", "disabled")


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


class _StateCollector(Collector):
    def __init__(self, owner: ServiceMetrics) -> None:
        self._owner = owner

    def collect(self) -> Iterator[Metric]:
        state = self._owner.state
        if state is None:
            return
        owner = self._owner
        ratio = GaugeMetricFamily(
            "echo_feed_failure_ratio",
            f"Failed share of the feed's last {FAILURE_WINDOW} runs.",
            labels=["feed"],
        )
        for feed, outcomes in sorted(owner.outcomes.items()):
            if outcomes:
                ratio.add_metric([feed], sum(1 for ok in outcomes if not ok) / len(outcomes))
        yield ratio
        last_ok = GaugeMetricFamily(
            "echo_feed_last_success_timestamp_seconds",
            "POSIX seconds the feed's last successful run started.",
            labels=["feed"],
        )
        nxt = GaugeMetricFamily(
            "echo_feed_next_run_timestamp_seconds",
            "POSIX seconds the feed is next due.",
            labels=["feed"],
        )
        for feed, (next_epoch, success) in sorted(state.schedules().items()):
            nxt.add_metric([feed], next_epoch)
            if success is not None:
                last_ok.add_metric([feed], success)
        yield last_ok
        yield nxt
        items = GaugeMetricFamily(
            "echo_feed_items_last_run",
            "New items plus versions archived by the feed's last run.",
            labels=["feed"],
        )
        for feed, count in sorted(owner.items_last_run.items()):
            items.add_metric([feed], count)
        yield items
        breakers = GaugeMetricFamily(
            "echo_breaker_state",
            "1 for the state the host's circuit breaker is in (resilience4j states).",
            labels=["host", "state"],
        )
        for host, current in sorted(state.breakers().items()):
            for name in BREAKER_STATES:
                breakers.add_metric([host, name], 1.0 if name == current else 0.0)
        yield breakers
        yield GaugeMetricFamily(
            "echo_log_size_entries", "Entries in the log.", value=state.log_size()
        )
        yield GaugeMetricFamily(
            "echo_writer_queue_depth", "Jobs waiting for the writer.", value=state.queue_depth()
        )
        yield GaugeMetricFamily(
            "echo_scheduler_running_feeds", "Feed runs in flight.", value=state.running()
        )
        yield GaugeMetricFamily(
            "echo_scheduler_due_feeds", "Feeds due and not yet started.", value=state.due()
        )
        yield CounterMetricFamily(
            "echo_scheduler_ticks", "Looks at the schedules.", value=state.ticks()
        )
        yield GaugeMetricFamily(
            "echo_scheduler_paused",
            "1 while harvesting is paused (disk critical).",
            value=1.0 if state.paused() else 0.0,
        )
        yield GaugeMetricFamily(
            "echo_event_loop_lag_seconds", "Last measured event-loop lag.", value=state.loop_lag()
        )
        usage = shutil.disk_usage(state.vault_path)
        yield GaugeMetricFamily(
            "echo_disk_free_bytes", "Free bytes where the vault lives.", value=usage.free
        )
        yield GaugeMetricFamily(
            "echo_disk_free_ratio",
            "Free share of the file system the vault lives on.",
            value=usage.free / usage.total if usage.total else 0.0,
        )
        checks = GaugeMetricFamily(
            "echo_check_severity",
            "Last result of each health check: 0 ok, 1 warning, 2 critical.",
            labels=["check"],
        )
        for name, severity in sorted(state.checks().items()):
            checks.add_metric([name], severity)
        yield checks


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
        self.runs = Counter(
            "echo_feed_runs",
            "Feed runs ended, by outcome.",
            ["feed", "outcome"],
            registry=self.registry,
        )
        self.parse_errors = Counter(
            "echo_feed_parse_errors",
            "Responses that failed to parse.",
            ["feed"],
            registry=self.registry,
        )
        self.items = Counter(
            "echo_items_archived",
            "Items archived: new, version, tombstone.",
            ["kind"],
            registry=self.registry,
        )
        self.events = Counter(
            "echo_events",
            "Events published on the service's bus.",
            ["kind"],
            registry=self.registry,
        )
        self.commit_seconds = Histogram(
            "echo_commit_seconds",
            "Duration of each writer job or coalesced commit, seconds.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
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
        self.items_last_run[feed] = new + versions
        for kind, count in (("new", new), ("version", versions)):
            if count:
                self.items.labels(kind).inc(count)
        tombstones = int(data.get("tombstones", 0))
        if tombstones:
            self.items.labels("tombstone").inc(tombstones)
        errors = int(data.get("parse_errors", 0))
        if errors:
            self.parse_errors.labels(feed).inc(errors)

    def render(self) -> bytes:
        """The exposition text of every metric (:data:`CONTENT_TYPE`)."""
        return generate_latest(self.registry)
