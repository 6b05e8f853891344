"""The metrics ECHO exports, by name: what ``/metrics`` serves and the alert rules read.

One list (:data:`METRICS`) names every metric the service (``echoctl
serve``) exports in the Prometheus text format, with its type, help text
and labels. The alert engine (:mod:`echo_archive.control.alerts`) evaluates
its rules over samples of these same names, and ``echoctl alerts rules``
prints the same rules as PromQL over them, so a rule means the same thing
in ECHO and in an operator's own Prometheus.

Names follow the Prometheus naming conventions (prometheus.io, "Metric and
label naming"): the ``echo_`` prefix, base units (seconds, bytes, ratios in
[0, 1]), ``_total`` for counters, ``_timestamp_seconds`` for POSIX times. A
counter's name here includes ``_total``: ``prometheus_client.Counter`` adds
that suffix itself, so create it with :attr:`MetricSpec.base_name`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["METRICS", "METRIC_NAMES", "MetricSpec", "metric"]

MetricType = Literal["counter", "gauge", "histogram"]


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One exported metric.

    Attributes:
        name: the exported name (``echo_feed_runs_total``).
        type: ``counter``, ``gauge`` or ``histogram`` (Prometheus metric types).
        help: the ``# HELP`` text: what it measures and its unit.
        labels: its label names, in order (``("feed", "outcome")``).
    """

    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...] = ()

    @property
    def base_name(self) -> str:
        """The name to give ``prometheus_client`` (a counter without its ``_total``)."""
        return self.name.removesuffix("_total") if self.type == "counter" else self.name


METRICS: Final[tuple[MetricSpec, ...]] = (
    MetricSpec(
        "echo_feed_runs_total",
        "counter",
        "Harvest runs of a feed, by outcome (harvested, failed, skipped).",
        ("feed", "outcome"),
    ),
    MetricSpec(
        "echo_feed_failure_ratio",
        "gauge",
        "Fraction of a feed's recent runs that failed, in [0, 1].",
        ("feed",),
    ),
    MetricSpec(
        "echo_feed_last_success_timestamp_seconds",
        "gauge",
        "POSIX time (seconds) a feed's run last succeeded.",
        ("feed",),
    ),
    MetricSpec(
        "echo_feed_items_last_run",
        "gauge",
        "Items (new, versions, tombstones) a feed's last run archived.",
        ("feed",),
    ),
    MetricSpec(
        "echo_feed_stale",
        "gauge",
        "1 when a feed had no successful run in 3 of its intervals (health check), else 0.",
        ("feed",),
    ),
    MetricSpec(
        "echo_feed_silent",
        "gauge",
        "1 when a feed that usually yields items suddenly yields none (health check), else 0.",
        ("feed",),
    ),
    MetricSpec(
        "echo_breaker_state",
        "gauge",
        "1 for the state a host's circuit breaker is in (closed, open, half_open, "
        "forced_open, disabled), 0 for the others.",
        ("host", "state"),
    ),
    MetricSpec("echo_disk_free_ratio", "gauge", "Free fraction of the vault's filesystem, [0, 1]."),
    MetricSpec("echo_disk_free_bytes", "gauge", "Free bytes on the vault's filesystem."),
    MetricSpec(
        "echo_check_severity",
        "gauge",
        "Severity of a health check's last result: 0 ok, 1 warning, 2 critical.",
        ("check",),
    ),
    MetricSpec(
        "echo_clock_backwards",
        "gauge",
        "1 when the system clock is behind the newest checkpoint (time went backwards), else 0.",
    ),
    MetricSpec(
        "echo_verify_failures_total",
        "counter",
        "Mismatches verification found (a blob, entry, node or checkpoint): tampering.",
    ),
    MetricSpec("echo_log_size_entries", "gauge", "Entries in the transparency log (tree size)."),
    MetricSpec("echo_writer_queue_depth", "gauge", "Jobs waiting in the vault writer's queue."),
    MetricSpec(
        "echo_commit_seconds",
        "histogram",
        "Seconds each writer job or coalesced durable commit took (blobs to checkpoint).",
    ),
    MetricSpec(
        "echo_feed_next_run_timestamp_seconds",
        "gauge",
        "POSIX time (seconds) a feed is next due.",
        ("feed",),
    ),
    MetricSpec(
        "echo_feed_parse_errors_total",
        "counter",
        "Responses of a feed that failed to parse.",
        ("feed",),
    ),
    MetricSpec(
        "echo_items_archived_total",
        "counter",
        "Items archived, by kind (new, version, tombstone).",
        ("kind",),
    ),
    MetricSpec("echo_scheduler_running_feeds", "gauge", "Feed runs in flight."),
    MetricSpec("echo_scheduler_due_feeds", "gauge", "Feeds due and not yet started."),
    MetricSpec(
        "echo_scheduler_ticks_total", "counter", "Times the scheduler looked at the schedules."
    ),
    MetricSpec(
        "echo_scheduler_paused",
        "gauge",
        "1 while harvesting is paused (free disk space critical), else 0.",
    ),
    MetricSpec("echo_event_loop_lag_seconds", "gauge", "Last measured event-loop lag, seconds."),
    MetricSpec(
        "echo_breakglass_active",
        "gauge",
        "Emergency (break-glass) elevations in force now (echoctl breakglass).",
    ),
    MetricSpec(
        "echo_events_total", "counter", "Events published on the service's bus, by kind.", ("kind",)
    ),
    MetricSpec(
        "echo_stability_score",
        "gauge",
        "The supervisor's stability score, [0, 1] (1: stable; control/stability.py).",
    ),
    MetricSpec(
        "echo_stability_component",
        "gauge",
        "One component of the stability score (resource, error, performance, dependency), [0, 1].",
        ("component",),
    ),
    MetricSpec(
        "echo_collapse_risk",
        "gauge",
        "The largest probability that a watched signal breaches its threshold within the "
        "supervisor's horizon, [0, 1] (control/risk.py).",
    ),
    MetricSpec(
        "echo_drift_detected",
        "gauge",
        "1 in the supervisor cycle a drift of a signal was detected (control/drift.py).",
        ("signal",),
    ),
    MetricSpec(
        "echo_supervisor_finding",
        "gauge",
        "1 while the supervisor finds a fault (host_failing, feed_silent, memory_leak...) "
        "in a target (a host, a feed, vault, process).",
        ("kind", "target"),
    ),
    MetricSpec(
        "echo_http_requests_total",
        "counter",
        "HTTP requests the API answered, by route template (/v1/items/{ref}; unmatched for "
        "none), method and status code.",
        ("route", "method", "status"),
    ),
    MetricSpec(
        "echo_http_request_duration_seconds",
        "histogram",
        "Seconds from an HTTP request's arrival to its response's end, by route template.",
        ("route",),
    ),
)
"""Every metric ECHO exports, in the order ``/metrics`` lists them."""

METRIC_NAMES: Final = frozenset(spec.name for spec in METRICS)
"""The exported names (a rule may only read one of these)."""


def metric(name: str) -> MetricSpec:
    """The :class:`MetricSpec` called ``name``.

    Raises:
        KeyError: no exported metric has that name.
    """
    for spec in METRICS:
        if spec.name == name:
            return spec
    raise KeyError(f"no ECHO metric named {name!r} (known: {', '.join(sorted(METRIC_NAMES))})")
