"""Alert rules and the alert engine, with Prometheus's and Alertmanager's semantics.

The service (``echoctl serve``) calls :meth:`AlertEngine.evaluate` once per
cycle with the current value of every signal, as :class:`Sample` s named by
the exported metrics (:data:`echo_archive.control.metrics.METRICS`), and
hands the notifications it returns to the channels
(:meth:`AlertEngine.deliver`, off the evaluation path). The engine is pure
apart from its store: no threads, no sleeping, the clock injected.

**Rules** (prometheus.io, Prometheus, "Alerting rules"). A :class:`Rule` is
one comparison over one metric (:class:`Condition`, rendered as PromQL by
``echoctl alerts rules``), a pending period ``for``, ``keep_firing_for``,
labels and annotation templates. Each sample for which the condition holds
is one alert, labelled by the sample's labels, the rule's labels and
``alertname``. States:

* *inactive*: the condition does not hold (no alert);
* *pending*: it holds, but not yet for ``for`` seconds (a rule with
  ``for = 0`` fires at its first evaluation); a pending alert whose
  condition stops holding is dropped, never notified;
* *firing*: it has held for ``for`` seconds; it stays firing until the
  condition has not held for ``keep_firing_for`` seconds;
* *resolved*: it stopped firing; sent once as resolved, then forgotten.

**Notifications** (prometheus.io, Alertmanager, "Configuration": ``route``,
``inhibit_rule``; "Silences"). Firing and resolved alerts are grouped by the
labels of ``group_by`` (:class:`Route`). A new group waits ``group_wait``
before its first notification (so alerts firing together arrive together),
then is looked at every ``group_interval``. At each look it notifies, with
every alert of the group, only when something changed (Alertmanager's
deduplication): an alert fires that the last notification did not carry,
an alert resolved that it carried as firing, or ``repeat_interval`` has
passed since the last notification; otherwise nothing is sent. Muted
alerts are left out: those an active silence matches
(:mod:`echo_archive.control.silences`) and those an :class:`InhibitRule`
inhibits (a firing *source* alert mutes the *target* alerts whose ``equal``
labels have its values; an alert never inhibits itself).

**State** (alerts pending and firing, each group's last notification) is
saved in the store after each evaluation that changed it (operational tables
of the vault's catalog, :mod:`echo_archive.control.alertstore`), and loaded
when an engine starts: a restart neither notifies again what was notified nor
forgets what fires, and a pending period goes on where it was. A
notification counts as sent when :meth:`AlertEngine.evaluate` returns it (a
channel that fails after its bounded retries logs the failure; the repeat
interval sends it again).

Times are POSIX seconds (float); durations are seconds.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

import structlog
import yaml

from echo_archive.control.matchers import Matcher, matches_all
from echo_archive.control.metrics import METRIC_NAMES
from echo_archive.control.silences import Silence, prom_duration
from echo_archive.redaction import redact_text
from echo_archive.terminal import inert

if TYPE_CHECKING:
    from echo_archive.control.channels import DeliveryResult, Dispatcher
    from echo_archive.events import EventBus

__all__ = [
    "ZERO_TIME",
    "Alert",
    "AlertEngine",
    "AlertState",
    "AlertStatus",
    "AlertStore",
    "Condition",
    "GroupState",
    "InhibitRule",
    "Notification",
    "Op",
    "Route",
    "Rule",
    "Sample",
    "Samples",
    "fingerprint",
    "group_key",
    "rfc3339",
    "rules_yaml",
    "samples_from_checks",
]

log = structlog.get_logger("echo_archive.control.alerts")

AlertStatus = Literal["pending", "firing", "resolved"]

ZERO_TIME: Final = "0001-01-01T00:00:00Z"
"""Alertmanager's ``endsAt`` of an alert still firing (Go's zero time)."""

_ALERT_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_TEMPLATE = re.compile(r"\{\{\s*(?:\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)|(\$value))\s*\}\}")
_ANNOTATION_CAP: Final = 1024
_FNV_OFFSET: Final = 14695981039346656037
_FNV_PRIME: Final = 1099511628211


def rfc3339(epoch: float) -> str:
    """POSIX seconds as RFC 3339 UTC with milliseconds: ``2026-12-07T21:00:00.000Z``."""
    whole = int(epoch // 1)
    ms = round((epoch - whole) * 1000)
    if ms == 1000:
        whole, ms = whole + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{ms:03d}Z"


def fingerprint(labels: Mapping[str, str]) -> str:
    """An alert's identity: Prometheus's label-set fingerprint, 16 hex digits.

    FNV-1a 64 over the label names and values sorted by name, each followed
    by the byte 0xff (``model.LabelSet.Fingerprint`` of prometheus/common,
    which Alertmanager shows as ``fingerprint``).
    """
    h = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode():
                h = ((h ^ byte) * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
            h = ((h ^ 0xFF) * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def _label_set(labels: Mapping[str, str]) -> str:
    """``{a="x", b="y"}``, sorted by name, as Alertmanager prints a label set."""
    inner = ", ".join(f"{k}={json.dumps(labels[k], ensure_ascii=False)}" for k in sorted(labels))
    return "{" + inner + "}"


def group_key(group_labels: Mapping[str, str]) -> str:
    """Alertmanager's group key of the root route: ``{}:{alertname="EchoFeedStale"}``."""
    return "{}:" + _label_set(group_labels)


# ---------------------------------------------------------------------------- samples


@dataclass(frozen=True, slots=True)
class Sample:
    """One value of one series: a metric name, its labels and the value.

    Attributes:
        name: an exported metric name (``echo_feed_failure_ratio``).
        labels: the series' labels (``{"feed": "bbc-world"}``), no ``__name__``.
        value: the value (a ratio, seconds, 0/1, a severity 0/1/2...).
    """

    name: str
    labels: Mapping[str, str]
    value: float

    @classmethod
    def of(cls, name: str, value: float, **labels: str) -> Sample:
        """``Sample.of("echo_feed_failure_ratio", 0.5, feed="bbc")``."""
        return cls(name, dict(labels), float(value))


Samples = Iterable[Sample] | Mapping[str, float]
"""What :meth:`AlertEngine.evaluate` takes: samples, or ``{metric name: value}`` for
series without labels (``{"echo_disk_free_ratio": 0.03}``)."""


def samples_from_checks(results: Iterable[Any]) -> list[Sample]:
    """``echo_check_severity{check=NAME}`` samples of health-check results.

    Args:
        results: objects with ``name`` (str) and ``severity`` (an int-like
            ``Severity``: 0 ok, 1 warning, 2 critical), such as
            ``echo_archive.control.health.CheckResult``.
    """
    return [
        Sample("echo_check_severity", {"check": str(r.name)}, float(int(r.severity)))
        for r in results
    ]


def _as_samples(samples: Samples) -> list[Sample]:
    if isinstance(samples, Mapping):
        return [Sample(name, {}, float(value)) for name, value in samples.items()]
    return list(samples)


# ---------------------------------------------------------------------------- rules


class Op(StrEnum):
    """A PromQL comparison operator (filtering: the series is kept when it holds)."""

    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="
    EQ = "=="
    NE = "!="

    def holds(self, left: float, right: float) -> bool:
        """``left op right``."""
        match self:
            case Op.GT:
                return left > right
            case Op.GE:
                return left >= right
            case Op.LT:
                return left < right
            case Op.LE:
                return left <= right
            case Op.EQ:
                return left == right
            case _:
                return left != right


def _number(value: float) -> str:
    """A threshold as PromQL writes it: ``0.3``, ``2``, ``86400``."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


@dataclass(frozen=True, slots=True)
class Condition:
    """``metric{matchers} op threshold``, or with ``age`` ``time() - metric{...} op threshold``.

    Attributes:
        metric: an exported metric name (:data:`~echo_archive.control.metrics.METRIC_NAMES`).
        op: the comparison.
        threshold: the number compared with.
        matchers: label matchers selecting the series (PromQL's ``{...}``).
        age: compare the seconds since the value (a POSIX time) instead of the value.

    Raises:
        ValueError: ``metric`` is not an exported metric, or ``threshold`` is not finite.
    """

    metric: str
    op: Op
    threshold: float
    matchers: tuple[Matcher, ...] = ()
    age: bool = False

    def __post_init__(self) -> None:
        if self.metric not in METRIC_NAMES:
            raise ValueError(f"rule over {self.metric!r}: not an exported ECHO metric")
        if not abs(self.threshold) < float("inf"):
            raise ValueError(f"threshold {self.threshold}: must be a finite number")

    def selector(self) -> str:
        """``metric{m1, m2}`` (or ``metric`` alone)."""
        if not self.matchers:
            return self.metric
        return self.metric + "{" + ", ".join(map(str, self.matchers)) + "}"

    def promql(self) -> str:
        """The PromQL expression: ``echo_feed_failure_ratio > 0.3``."""
        left = f"time() - {self.selector()}" if self.age else self.selector()
        return f"{left} {self.op.value} {_number(self.threshold)}"

    def holds(self, sample: Sample, now: float) -> bool:
        """Whether ``sample`` (of this metric) passes the matchers and the comparison."""
        if sample.name != self.metric or not matches_all(self.matchers, sample.labels):
            return False
        value = now - sample.value if self.age else sample.value
        return self.op.holds(value, self.threshold)

    def value(self, sample: Sample, now: float) -> float:
        """The value the comparison used (PromQL's result value, ``$value``)."""
        return now - sample.value if self.age else sample.value


def _fill(template: str, labels: Mapping[str, str], value: float) -> str:
    """Fill ``{{ $labels.NAME }}`` and ``{{ $value }}``, each value made inert and redacted."""

    def one(found: re.Match[str]) -> str:
        raw = _number(value) if found.group(2) else labels.get(found.group(1), "")
        return inert(redact_text(raw))

    return _TEMPLATE.sub(one, template)[:_ANNOTATION_CAP]


@dataclass(frozen=True)
class Rule:
    """An alerting rule (Prometheus, "Alerting rules").

    Its fields are a rules file's ``alert``, ``expr``, ``for``,
    ``keep_firing_for``, ``labels`` and ``annotations``.

    Attributes:
        name: the alert name (``alertname`` label), ``[a-zA-Z_:][a-zA-Z0-9_:]*``.
        condition: the expression.
        for_: pending period, seconds (>= 0; 0: fires at the first evaluation).
        keep_firing_for: seconds it stays firing after the condition last held (>= 0).
        labels: added to each alert (``severity``...); they override the sample's.
        annotations: ``summary``, ``description``...: templates where
            ``{{ $labels.NAME }}`` and ``{{ $value }}`` are filled (Prometheus's
            template syntax, so the same text works in Prometheus); filled
            values are made inert (:func:`echo_archive.terminal.inert`) and
            redacted, and each annotation is cut at 1024 characters.

    Raises:
        ValueError: a bad name, a negative duration, a label name that is
            not one, or a template using anything but those two forms.
    """

    name: str
    condition: Condition
    for_: float = 0.0
    keep_firing_for: float = 0.0
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _ALERT_NAME.fullmatch(self.name):
            raise ValueError(f"alert name {self.name!r}: expected [a-zA-Z_:][a-zA-Z0-9_:]*")
        if self.for_ < 0 or self.keep_firing_for < 0:
            raise ValueError(f"rule {self.name}: for and keep_firing_for must be >= 0 seconds")
        for key in (*self.labels, *self.annotations):
            if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", key):
                raise ValueError(f"rule {self.name}: {key!r} is not a label name")
        for key, text in self.annotations.items():
            if "{{" in _TEMPLATE.sub("", text) or "}}" in _TEMPLATE.sub("", text):
                raise ValueError(
                    f"rule {self.name}: annotation {key}: only {{{{ $labels.NAME }}}} and "
                    f"{{{{ $value }}}} may be templated, got {text!r}"
                )

    def promql(self) -> str:
        """The rule's expression in PromQL."""
        return self.condition.promql()

    def annotate(self, labels: Mapping[str, str], value: float) -> dict[str, str]:
        """The annotations of an alert with ``labels`` and ``value``."""
        return {k: _fill(v, labels, value) for k, v in self.annotations.items()}

    def to_prometheus(self) -> dict[str, Any]:
        """The rule as an entry of a Prometheus rules file's ``rules:`` list."""
        rule: dict[str, Any] = {"alert": self.name, "expr": self.promql()}
        if self.for_:
            rule["for"] = prom_duration(self.for_)
        if self.keep_firing_for:
            rule["keep_firing_for"] = prom_duration(self.keep_firing_for)
        if self.labels:
            rule["labels"] = dict(self.labels)
        if self.annotations:
            rule["annotations"] = dict(self.annotations)
        return rule

    def to_json(self) -> dict[str, Any]:
        """``{"name", "expr", "for", "keep_firing_for" (seconds), "labels", "annotations"}``."""
        return {
            "name": self.name,
            "expr": self.promql(),
            "for": self.for_,
            "keep_firing_for": self.keep_firing_for,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
        }


def rules_yaml(rules: Sequence[Rule], group: str = "echo") -> str:
    """A Prometheus rules file (``groups:``) holding ``rules`` as one group named ``group``.

    The output is what ``promtool check rules`` reads (prometheus.io,
    "Alerting rules" / "Recording rules": the rule file syntax).
    """
    doc = {"groups": [{"name": group, "rules": [r.to_prometheus() for r in rules]}]}
    return str(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100))


@dataclass(frozen=True, slots=True)
class InhibitRule:
    """Alertmanager's ``inhibit_rule``: firing *source* alerts mute matching *target* alerts.

    A target alert (one matching every ``target_matchers``) is muted while
    an alert matching every ``source_matchers`` fires whose labels named in
    ``equal`` have the target's values (a missing label counts as ``""``).
    An alert matching both sides is not inhibited by alerts that also match
    both (so it never inhibits itself).

    Attributes:
        source_matchers: select the inhibiting alerts.
        target_matchers: select the muted alerts.
        equal: label names whose values must be equal on both.
    """

    source_matchers: tuple[Matcher, ...]
    target_matchers: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()

    def inhibits(self, target: Alert, sources: Iterable[Alert]) -> bool:
        """Whether a firing alert of ``sources`` mutes ``target`` by this rule."""
        if not matches_all(self.target_matchers, target.labels):
            return False
        both = matches_all(self.source_matchers, target.labels)
        for source in sources:
            if source.state != "firing" or source.fingerprint == target.fingerprint:
                continue
            if not matches_all(self.source_matchers, source.labels):
                continue
            if both and matches_all(self.target_matchers, source.labels):
                continue
            if all(source.labels.get(n, "") == target.labels.get(n, "") for n in self.equal):
                return True
        return False


@dataclass(frozen=True, slots=True)
class Route:
    """Alertmanager's root ``route``: how alerts are grouped and how often notified.

    Attributes:
        receiver: the receiver's name (``receiver`` in the webhook payload).
        group_by: the labels that make a group (``("...",)``: every label,
            one group per alert, as Alertmanager's ``group_by: ['...']``).
        group_wait: seconds a new group waits before its first notification
            (Alertmanager's default 30 s).
        group_interval: seconds between looks at a group after that
            (default 5 minutes).
        repeat_interval: seconds before an unchanged group is notified again
            (default 4 hours).

    Raises:
        ValueError: a negative wait, a group_interval or repeat_interval <= 0.
    """

    receiver: str = "echo"
    group_by: tuple[str, ...] = ("alertname",)
    group_wait: float = 30.0
    group_interval: float = 300.0
    repeat_interval: float = 4 * 3600.0

    def __post_init__(self) -> None:
        if self.group_wait < 0 or self.group_interval <= 0 or self.repeat_interval <= 0:
            raise ValueError(
                "route: group_wait must be >= 0, group_interval and repeat_interval > 0 seconds"
            )

    def group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        """The labels of ``labels`` that name its group."""
        if "..." in self.group_by:
            return dict(labels)
        return {k: labels[k] for k in self.group_by if k in labels}


# ---------------------------------------------------------------------------- state


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert: a rule's condition holding for one series.

    Attributes:
        rule: the rule's name.
        labels: the series' labels, the rule's labels and ``alertname``.
        annotations: the rule's annotations, filled.
        state: ``pending``, ``firing`` or ``resolved``.
        active_at: when the condition began to hold (POSIX s).
        fired_at: when it began firing, or None while pending.
        last_true_at: when the condition last held.
        resolved_at: when it resolved, or None.
        value: the value the condition last compared.
        fingerprint: :func:`fingerprint` of ``labels``.
        silenced_by: ids of the active silences muting it (last evaluation).
        inhibited: whether an inhibition rule muted it (last evaluation).
    """

    rule: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    state: AlertStatus
    active_at: float
    fired_at: float | None
    last_true_at: float
    resolved_at: float | None
    value: float
    fingerprint: str
    silenced_by: tuple[str, ...] = ()
    inhibited: bool = False

    @property
    def muted(self) -> bool:
        """Silenced or inhibited: no notification carries it."""
        return bool(self.silenced_by) or self.inhibited

    def to_json(self) -> dict[str, Any]:
        """The alert as stored and as ``echoctl alerts list --json`` prints it (times POSIX s)."""
        return {
            "rule": self.rule,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "state": self.state,
            "active_at": self.active_at,
            "fired_at": self.fired_at,
            "last_true_at": self.last_true_at,
            "resolved_at": self.resolved_at,
            "value": self.value,
            "fingerprint": self.fingerprint,
            "silenced_by": list(self.silenced_by),
            "inhibited": self.inhibited,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Alert:
        """The alert :meth:`to_json` wrote.

        Raises:
            KeyError, TypeError, ValueError: ``data`` is not that shape.
        """
        state = data["state"]
        if state not in ("pending", "firing", "resolved"):
            raise ValueError(f"alert state {state!r}")
        labels = {str(k): str(v) for k, v in dict(data["labels"]).items()}
        return cls(
            rule=str(data["rule"]),
            labels=labels,
            annotations={str(k): str(v) for k, v in dict(data["annotations"]).items()},
            state=state,
            active_at=float(data["active_at"]),
            fired_at=None if data["fired_at"] is None else float(data["fired_at"]),
            last_true_at=float(data["last_true_at"]),
            resolved_at=None if data["resolved_at"] is None else float(data["resolved_at"]),
            value=float(data["value"]),
            fingerprint=fingerprint(labels),
            silenced_by=tuple(str(s) for s in data.get("silenced_by", ())),
            inhibited=bool(data.get("inhibited", False)),
        )

    def webhook(self, generator_url: str) -> dict[str, Any]:
        """The alert as an entry of Alertmanager's webhook payload ``alerts``.

        ``status``, ``labels``, ``annotations``, ``startsAt``, ``endsAt``
        (Go's zero time while firing), ``generatorURL``, ``fingerprint``.
        """
        resolved = self.state == "resolved" and self.resolved_at is not None
        return {
            "status": "resolved" if resolved else "firing",
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "startsAt": rfc3339(self.fired_at if self.fired_at is not None else self.active_at),
            "endsAt": rfc3339(self.resolved_at) if resolved and self.resolved_at else ZERO_TIME,
            "generatorURL": generator_url,
            "fingerprint": self.fingerprint,
        }


@dataclass(frozen=True, slots=True)
class GroupState:
    """One aggregation group and its notification log (Alertmanager's ``nflog`` entry).

    Attributes:
        key: :func:`group_key`.
        labels: its group labels.
        created_at: when its first alert arrived (POSIX s).
        next_flush: when it is next looked at (``created_at + group_wait``,
            then every ``group_interval``).
        notified_at: when its last notification went out, or None.
        notified_firing: fingerprints that notification carried as firing.
        notified_resolved: fingerprints it carried as resolved.
    """

    key: str
    labels: Mapping[str, str]
    created_at: float
    next_flush: float
    notified_at: float | None = None
    notified_firing: frozenset[str] = frozenset()
    notified_resolved: frozenset[str] = frozenset()

    def needs_update(
        self, firing: frozenset[str], resolved: frozenset[str], now: float, repeat: float
    ) -> bool:
        """Whether to notify now: Alertmanager's ``DedupStage.needsUpdate``.

        True when nothing was notified yet and something fires; when an alert
        fires that the last notification did not carry; when nothing fires
        any more but the last notification carried firing alerts; when an
        alert resolved that the last notification did not carry as resolved
        (while others still fire); or when ``repeat`` seconds passed since it.
        """
        if self.notified_at is None:
            return bool(firing)
        if not firing <= self.notified_firing:
            return True
        if not firing:
            return bool(self.notified_firing)
        if not resolved <= self.notified_resolved:
            return True
        return self.notified_at <= now - repeat

    def to_json(self) -> dict[str, Any]:
        """The group as stored (fingerprint lists sorted)."""
        return {
            "key": self.key,
            "labels": dict(self.labels),
            "created_at": self.created_at,
            "next_flush": self.next_flush,
            "notified_at": self.notified_at,
            "notified_firing": sorted(self.notified_firing),
            "notified_resolved": sorted(self.notified_resolved),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GroupState:
        """The group :meth:`to_json` wrote.

        Raises:
            KeyError, TypeError, ValueError: ``data`` is not that shape.
        """
        notified = data.get("notified_at")
        return cls(
            key=str(data["key"]),
            labels={str(k): str(v) for k, v in dict(data["labels"]).items()},
            created_at=float(data["created_at"]),
            next_flush=float(data["next_flush"]),
            notified_at=None if notified is None else float(notified),
            notified_firing=frozenset(str(f) for f in data.get("notified_firing", ())),
            notified_resolved=frozenset(str(f) for f in data.get("notified_resolved", ())),
        )


@dataclass(frozen=True, slots=True)
class AlertState:
    """What an engine remembers: its alerts by fingerprint and its groups by key."""

    alerts: Mapping[str, Alert] = field(default_factory=dict)
    groups: Mapping[str, GroupState] = field(default_factory=dict)


class AlertStore(Protocol):
    """Where alert state and silences persist (:mod:`echo_archive.control.alertstore`)."""

    def load_state(self) -> AlertState:
        """The saved state (empty when none). Raises ``StorageError``."""
        ...

    def save_state(self, state: AlertState) -> None:
        """Replace the saved state with ``state``. Raises ``StorageError``."""
        ...

    def silences(self) -> list[Silence]:
        """Every stored silence (active, pending, expired). Raises ``StorageError``."""
        ...


# ---------------------------------------------------------------------------- notifications


@dataclass(frozen=True, slots=True)
class Notification:
    """One notification of one group: what a channel sends.

    Attributes:
        receiver: the route's receiver name.
        group_key: :func:`group_key` of the group.
        group_labels: the group's labels.
        status: ``firing`` when any alert fires, else ``resolved``.
        alerts: the group's alerts, firing first then resolved (by fingerprint).
        at: when it was made (POSIX s).
        external_url: ECHO's URL (the service's HTTP address) or ``""``.
    """

    receiver: str
    group_key: str
    group_labels: Mapping[str, str]
    status: Literal["firing", "resolved"]
    alerts: tuple[Alert, ...]
    at: float
    external_url: str = ""

    @property
    def firing(self) -> tuple[Alert, ...]:
        """The firing alerts."""
        return tuple(a for a in self.alerts if a.state == "firing")

    @property
    def resolved(self) -> tuple[Alert, ...]:
        """The resolved alerts."""
        return tuple(a for a in self.alerts if a.state == "resolved")

    def _common(self, attr: str) -> dict[str, str]:
        maps = [getattr(a, attr) for a in self.alerts]
        if not maps:
            return {}
        first = maps[0]
        return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}

    @property
    def common_labels(self) -> dict[str, str]:
        """The labels every alert has with the same value."""
        return self._common("labels")

    @property
    def common_annotations(self) -> dict[str, str]:
        """The annotations every alert has with the same value."""
        return self._common("annotations")

    def only_firing(self) -> Notification | None:
        """The notification without its resolved alerts, or None when nothing fires.

        What a channel with ``send_resolved = false`` gets.
        """
        firing = self.firing
        return replace(self, alerts=firing, status="firing") if firing else None

    def to_webhook(self) -> dict[str, Any]:
        """Alertmanager's webhook payload, version 4.

        prometheus.io, Alertmanager configuration, ``<webhook_config>``:
        ``version``, ``groupKey``, ``truncatedAlerts``, ``status``,
        ``receiver``, ``groupLabels``, ``commonLabels``,
        ``commonAnnotations``, ``externalURL``, ``alerts``.
        """
        generator = f"{self.external_url.rstrip('/')}/status" if self.external_url else ""
        return {
            "version": "4",
            "groupKey": self.group_key,
            "truncatedAlerts": 0,
            "status": self.status,
            "receiver": self.receiver,
            "groupLabels": dict(self.group_labels),
            "commonLabels": self.common_labels,
            "commonAnnotations": self.common_annotations,
            "externalURL": self.external_url,
            "alerts": [a.webhook(generator) for a in self.alerts],
        }


# ---------------------------------------------------------------------------- the engine


class AlertEngine:
    """Evaluates rules each cycle and decides what to notify (see the module docstring).

    Args:
        rules: the alerting rules (names unique).
        inhibit_rules: Alertmanager inhibition rules.
        route: grouping and timing.
        bus: publishes ``alert_fired`` / ``alert_resolved`` events (data:
            ``name``, ``labels``, ``fingerprint``, ``severity``, ``summary``,
            ``state``, ``evaluated_at``) on each transition.
        channels: a :class:`~echo_archive.control.channels.Dispatcher` or a
            sequence of channels, used by :meth:`deliver`.
        store: where state and silences persist; loaded now. None: in memory only.
        silences: the same as ``store`` (the name of the first sketch of
            this interface); give one of them.
        now: the clock, POSIX seconds (``time.time``); :meth:`evaluate` uses it
            when not given a time.
        external_url: ECHO's HTTP URL for the payload's ``externalURL``.

    Raises:
        ValueError: two rules share a name.
        StorageError: the store cannot be read.
    """

    def __init__(
        self,
        rules: Sequence[Rule],
        *,
        inhibit_rules: Sequence[InhibitRule] = (),
        route: Route | None = None,
        bus: EventBus | None = None,
        channels: Dispatcher | Sequence[Any] = (),
        store: AlertStore | None = None,
        silences: AlertStore | None = None,
        now: Callable[[], float] = time.time,
        external_url: str = "",
    ) -> None:
        from echo_archive.control.channels import Dispatcher

        names = [r.name for r in rules]
        if len(set(names)) != len(names):
            raise ValueError(f"rule names must be unique: {names}")
        self.rules = tuple(rules)
        self.inhibit_rules = tuple(inhibit_rules)
        self.route = route or Route()
        self.bus = bus
        self.dispatcher = channels if isinstance(channels, Dispatcher) else Dispatcher(channels)
        self.store = store if store is not None else silences
        self.external_url = external_url
        self._now = now
        self._by_name = {r.name: r for r in self.rules}
        state = self.store.load_state() if self.store is not None else AlertState()
        self._alerts: dict[str, Alert] = dict(state.alerts)
        self._groups: dict[str, GroupState] = dict(state.groups)
        self._saved = AlertState(dict(self._alerts), dict(self._groups))
        self._silences: list[Silence] = []

    # ------------------------------------------------------------- reading
    def alerts(self) -> list[Alert]:
        """The alerts pending and firing now, by rule then fingerprint."""
        return sorted(
            (a for a in self._alerts.values() if a.state != "resolved"),
            key=lambda a: (a.rule, a.fingerprint),
        )

    def state(self) -> AlertState:
        """A snapshot of what the engine remembers (what the store gets)."""
        return AlertState(dict(self._alerts), dict(self._groups))

    # ------------------------------------------------------------- evaluating
    def evaluate(self, samples: Samples, now: float | None = None) -> list[Notification]:
        """One evaluation: update every alert from ``samples``, then return the notifications due.

        Args:
            samples: every signal's current value (a series absent here is a
                condition that does not hold).
            now: the evaluation time, POSIX seconds (default: the clock).

        Returns:
            The notifications to deliver (:meth:`deliver`), at most one per group.
            Never raises for a store failure: it is logged, and the engine
            carries on from memory.
        """
        at = self._now() if now is None else now
        transitions = self._update_alerts(_as_samples(samples), at)
        self._refresh_silences()
        self._mark_muted(at)
        notifications = self._flush(at)
        self._save()
        self._publish(transitions, at)
        return notifications

    def _update_alerts(self, samples: list[Sample], now: float) -> list[Alert]:
        by_metric: dict[str, list[Sample]] = defaultdict(list)
        for sample in samples:
            by_metric[sample.name].append(sample)
        transitions: list[Alert] = []
        seen: set[str] = set()
        for rule in self.rules:
            for sample in by_metric.get(rule.condition.metric, ()):
                if not rule.condition.holds(sample, now):
                    continue
                labels = {**sample.labels, **rule.labels, "alertname": rule.name}
                fp = fingerprint(labels)
                if fp in seen:
                    continue
                seen.add(fp)
                value = rule.condition.value(sample, now)
                annotations = rule.annotate(labels, value)
                old = self._alerts.get(fp)
                if old is None or old.state == "resolved":
                    alert = Alert(
                        rule.name, labels, annotations, "pending", now, None, now, None, value, fp
                    )
                else:
                    alert = replace(old, last_true_at=now, value=value, annotations=annotations)
                if alert.state == "pending" and now - alert.active_at >= rule.for_:
                    alert = replace(alert, state="firing", fired_at=now)
                    transitions.append(alert)
                self._alerts[fp] = alert
        for fp, alert in list(self._alerts.items()):
            if fp in seen or alert.state == "resolved":
                continue
            if alert.state == "pending":
                del self._alerts[fp]  # never fired: dropped, never notified
                continue
            known = self._by_name.get(alert.rule)
            keep = known.keep_firing_for if known is not None else 0.0
            if now - alert.last_true_at < keep:
                continue
            resolved = replace(alert, state="resolved", resolved_at=now)
            self._alerts[fp] = resolved
            transitions.append(resolved)
        return transitions

    def _refresh_silences(self) -> None:
        if self.store is None:
            return
        try:
            self._silences = self.store.silences()
        except Exception as exc:  # the last silences known hold; alerts go on
            log.error("alerts.silences_unreadable", error=redact_text(str(exc)))

    def _mark_muted(self, now: float) -> None:
        firing = [a for a in self._alerts.values() if a.state == "firing"]
        for fp, alert in list(self._alerts.items()):
            if alert.state == "pending":
                continue
            silenced = tuple(s.id for s in self._silences if s.mutes(alert.labels, now))
            inhibited = any(rule.inhibits(alert, firing) for rule in self.inhibit_rules)
            if silenced != alert.silenced_by or inhibited != alert.inhibited:
                self._alerts[fp] = replace(alert, silenced_by=silenced, inhibited=inhibited)

    def _flush(self, now: float) -> list[Notification]:
        members: dict[str, list[Alert]] = defaultdict(list)
        for alert in self._alerts.values():
            if alert.state == "pending":
                continue
            labels = self.route.group_labels(alert.labels)
            key = group_key(labels)
            if key not in self._groups:
                self._groups[key] = GroupState(key, labels, now, now + self.route.group_wait)
            members[key].append(alert)
        notifications: list[Notification] = []
        for key, group in list(self._groups.items()):
            alerts = sorted(
                members.get(key, ()), key=lambda a: (a.state != "firing", a.fingerprint)
            )
            if not alerts:
                del self._groups[key]
                continue
            if now < group.next_flush:
                continue
            group = replace(group, next_flush=now + self.route.group_interval)
            shown = tuple(a for a in alerts if not a.muted)
            firing = frozenset(a.fingerprint for a in shown if a.state == "firing")
            resolved = frozenset(a.fingerprint for a in shown if a.state == "resolved")
            if shown and group.needs_update(firing, resolved, now, self.route.repeat_interval):
                notifications.append(
                    Notification(
                        receiver=self.route.receiver,
                        group_key=key,
                        group_labels=dict(group.labels),
                        status="firing" if firing else "resolved",
                        alerts=shown,
                        at=now,
                        external_url=self.external_url,
                    )
                )
                group = replace(
                    group, notified_at=now, notified_firing=firing, notified_resolved=resolved
                )
            self._groups[key] = group
            for alert in alerts:
                if alert.state == "resolved":  # sent (or muted) once: forgotten
                    del self._alerts[alert.fingerprint]
            if all(a.state == "resolved" for a in alerts):
                del self._groups[key]
        return notifications

    def _save(self) -> None:
        if self.store is None:
            return
        state = self.state()
        if state == self._saved:
            return
        try:
            self.store.save_state(state)
        except Exception as exc:  # disk full must not stop the alert about it
            log.error("alerts.state_not_saved", error=redact_text(str(exc)))
            return
        self._saved = state

    def _publish(self, transitions: list[Alert], now: float) -> None:
        if self.bus is None:
            return
        for alert in transitions:
            kind = "alert_fired" if alert.state == "firing" else "alert_resolved"
            self.bus.emit(
                kind,
                name=alert.rule,
                labels=dict(alert.labels),
                fingerprint=alert.fingerprint,
                severity=alert.labels.get("severity", ""),
                summary=alert.annotations.get("summary", ""),
                state=alert.state,
                evaluated_at=now,
            )

    # ------------------------------------------------------------- delivering
    async def deliver(self, notifications: Sequence[Notification]) -> list[DeliveryResult]:
        """Send ``notifications`` through every channel, concurrently.

        See :meth:`Dispatcher.deliver <echo_archive.control.channels.Dispatcher.deliver>`.

        Never raises for a failing channel: each failure is a result (and logged).
        """
        return await self.dispatcher.deliver(notifications)

    def deliver_sync(self, notifications: Sequence[Notification]) -> list[DeliveryResult]:
        """:meth:`deliver` from synchronous code (not inside a running event loop).

        Raises:
            RuntimeError: called from a running event loop (await :meth:`deliver`).
        """
        return asyncio.run(self.deliver(notifications))
