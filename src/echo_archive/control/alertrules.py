"""ECHO's default alert rules and inhibition, and the engine and channels ``[alerts]`` configures.

The rules DESIGN.md and issue 10 ask for, over the exported metrics
(:data:`echo_archive.control.metrics.METRICS`):

=========================== ============================================== ===== ==========
rule                        condition                                      for   severity
=========================== ============================================== ===== ==========
EchoFeedFailureRateHigh     ``echo_feed_failure_ratio > 0.3``              10m   warning
EchoTamperingDetected       ``echo_verify_failures_total > 0``             0     critical
EchoStorageCritical         ``echo_disk_free_ratio < 0.05``                0     critical
EchoStorageLow              ``echo_disk_free_ratio < 0.1``                 15m   warning
EchoFeedStale               ``echo_feed_stale > 0``                        0     warning
EchoFeedSilent              ``echo_feed_silent > 0``                       0     warning
EchoBreakerOpen             ``echo_breaker_state{state="open"} > 0``       5m    warning
EchoClockBackwards          ``echo_clock_backwards > 0``                   0     critical
EchoBreakGlassActive        ``echo_breakglass_active > 0``                 0     critical
EchoCheckCritical           ``echo_check_severity >= 2``                   5m    critical
=========================== ============================================== ===== ==========

``EchoTamperingDetected`` is the verify failure: a mismatch verification
found (a changed blob, entry, node or checkpoint) is evidence of tampering,
so it fires from the first one and stays firing while the counter is above
zero (silence it while you investigate). ``EchoBreakGlassActive`` fires while
an admin holds an emergency elevation (``echoctl breakglass``: every use is
audited and raises this alert). ``EchoClockBackwards`` keeps firing
for an hour after the clock is right again (``keep_firing_for``), so a jump
back is seen; ``EchoFeedFailureRateHigh`` keeps firing for 5 minutes
(against flapping).

Inhibition (Alertmanager ``inhibit_rules``): while ``EchoStorageCritical``
fires it mutes ``EchoFeedFailureRateHigh``, ``EchoFeedStale`` and
``EchoFeedSilent`` (a full disk pauses harvesting: the feeds failing are its
symptom, not news) and ``EchoStorageLow``.

``[alerts]`` in ``echo.toml`` (:class:`echo_archive.config.AlertsSection`)
can change each rule's threshold, ``for``, ``keep_firing_for`` and
severity, or disable it; and configures the route and the channels.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final

from echo_archive.config import ALERT_RULE_NAMES
from echo_archive.control.alerts import (
    AlertEngine,
    AlertStore,
    Condition,
    InhibitRule,
    Op,
    Route,
    Rule,
)
from echo_archive.control.channels import (
    Channel,
    Dispatcher,
    EmailChannel,
    LogChannel,
    WebhookChannel,
)
from echo_archive.control.matchers import Matcher, MatchOp
from echo_archive.errors import ConfigError

if TYPE_CHECKING:
    from echo_archive.config import AlertsSection
    from echo_archive.events import EventBus

__all__ = [
    "DEFAULT_INHIBIT_RULES",
    "DEFAULT_RULES",
    "DEFAULT_RULE_NAMES",
    "channels_from_config",
    "engine_from_config",
    "route_from_config",
    "rules_from_config",
]


def _rule(
    name: str,
    metric: str,
    op: Op,
    threshold: float,
    *,
    severity: str,
    summary: str,
    description: str,
    for_: float = 0.0,
    keep_firing_for: float = 0.0,
    matchers: tuple[Matcher, ...] = (),
) -> Rule:
    return Rule(
        name=name,
        condition=Condition(metric, op, threshold, matchers),
        for_=for_,
        keep_firing_for=keep_firing_for,
        labels={"severity": severity},
        annotations={"summary": summary, "description": description},
    )


DEFAULT_RULES: Final[tuple[Rule, ...]] = (
    _rule(
        "EchoFeedFailureRateHigh",
        "echo_feed_failure_ratio",
        Op.GT,
        0.3,
        for_=600,
        keep_firing_for=300,
        severity="warning",
        summary="Feed {{ $labels.feed }} is failing",
        description="{{ $value }} of the recent runs of feed {{ $labels.feed }} failed "
        "(threshold 0.3). See `echoctl reports` for the errors.",
    ),
    _rule(
        "EchoTamperingDetected",
        "echo_verify_failures_total",
        Op.GT,
        0,
        severity="critical",
        summary="Verification failed: the vault may have been tampered with",
        description="Verification found {{ $value }} mismatch(es) in blobs, entries, log "
        "nodes or checkpoints. Run `echoctl verify --full` and keep the vault as it is.",
    ),
    _rule(
        "EchoStorageCritical",
        "echo_disk_free_ratio",
        Op.LT,
        0.05,
        severity="critical",
        summary="The vault's disk is nearly full",
        description="Only {{ $value }} of the vault's filesystem is free: harvesting pauses "
        "until space is freed.",
    ),
    _rule(
        "EchoStorageLow",
        "echo_disk_free_ratio",
        Op.LT,
        0.1,
        for_=900,
        severity="warning",
        summary="The vault's disk is filling up",
        description="{{ $value }} of the vault's filesystem is free.",
    ),
    _rule(
        "EchoFeedStale",
        "echo_feed_stale",
        Op.GT,
        0,
        severity="warning",
        summary="Feed {{ $labels.feed }} is stale",
        description="Feed {{ $labels.feed }} had no successful run in 3 of its intervals.",
    ),
    _rule(
        "EchoFeedSilent",
        "echo_feed_silent",
        Op.GT,
        0,
        severity="warning",
        summary="Feed {{ $labels.feed }} went silent",
        description="Feed {{ $labels.feed }} usually yields items and now yields none.",
    ),
    _rule(
        "EchoBreakerOpen",
        "echo_breaker_state",
        Op.GT,
        0,
        for_=300,
        matchers=(Matcher("state", MatchOp.EQ, "open"),),
        severity="warning",
        summary="Circuit breaker open for host {{ $labels.host }}",
        description="Requests to {{ $labels.host }} are refused by its breaker "
        "(`echoctl breakers`).",
    ),
    _rule(
        "EchoClockBackwards",
        "echo_clock_backwards",
        Op.GT,
        0,
        keep_firing_for=3600,
        severity="critical",
        summary="The system clock went backwards",
        description="The clock is behind the newest checkpoint's time: new checkpoints "
        "would claim earlier times. Check NTP.",
    ),
    _rule(
        "EchoBreakGlassActive",
        "echo_breakglass_active",
        Op.GT,
        0,
        severity="critical",
        summary="An emergency (break-glass) elevation is in force",
        description="{{ $value }} admin elevation(s) taken with `echoctl breakglass` are in "
        "force; each was audited with its reason (`echoctl audit`).",
    ),
    _rule(
        "EchoCheckCritical",
        "echo_check_severity",
        Op.GE,
        2,
        for_=300,
        severity="critical",
        summary="Health check {{ $labels.check }} is critical",
        description="Health check {{ $labels.check }} has been critical for 5 minutes "
        "(`echoctl health`).",
    ),
)
"""The default rules (the table of the module docstring)."""

DEFAULT_RULE_NAMES: Final = tuple(r.name for r in DEFAULT_RULES)
"""Their names: the keys ``[alerts.rules.<name>]`` accepts (``config.ALERT_RULE_NAMES``)."""
if DEFAULT_RULE_NAMES != ALERT_RULE_NAMES:  # pragma: no cover - a test checks it too
    raise RuntimeError("echo_archive.config.ALERT_RULE_NAMES must list DEFAULT_RULES' names")

DEFAULT_INHIBIT_RULES: Final[tuple[InhibitRule, ...]] = (
    InhibitRule(
        source_matchers=(Matcher("alertname", MatchOp.EQ, "EchoStorageCritical"),),
        target_matchers=(
            Matcher(
                "alertname",
                MatchOp.RE,
                "EchoFeedFailureRateHigh|EchoFeedStale|EchoFeedSilent|EchoStorageLow",
            ),
        ),
    ),
)
"""Disk critical mutes the feeds' failures and the storage warning."""


def rules_from_config(section: AlertsSection | None) -> tuple[Rule, ...]:
    """The default rules with ``[alerts.rules.<name>]`` applied (disabled ones left out)."""
    if section is None:
        return DEFAULT_RULES
    rules = []
    for rule in DEFAULT_RULES:
        override = section.rules.get(rule.name)
        if override is None:
            rules.append(rule)
            continue
        if not override.enabled:
            continue
        changed = rule
        if override.threshold is not None:
            changed = replace(
                changed, condition=replace(changed.condition, threshold=override.threshold)
            )
        if override.for_ is not None:
            changed = replace(changed, for_=override.for_)
        if override.keep_firing_for is not None:
            changed = replace(changed, keep_firing_for=override.keep_firing_for)
        if override.severity is not None:
            changed = replace(changed, labels={**changed.labels, "severity": override.severity})
        rules.append(changed)
    return tuple(rules)


def route_from_config(section: AlertsSection | None) -> Route:
    """The route (grouping and timing) of ``[alerts]`` (Alertmanager's defaults without it)."""
    if section is None:
        return Route()
    return Route(
        group_by=tuple(section.group_by),
        group_wait=section.group_wait,
        group_interval=section.group_interval,
        repeat_interval=section.repeat_interval,
    )


def channels_from_config(
    section: AlertsSection | None, env: Mapping[str, str] | None = None
) -> list[Channel]:
    """The channels of ``[alerts]``: the log (unless ``log = false``), each webhook, the email.

    Args:
        section: ``[alerts]``, or None (the log channel alone).
        env: where ``alerts.email.password_env`` is looked up (default ``os.environ``).

    Raises:
        ConfigError: ``password_env`` names a variable that is not set (the
            message names the variable, never a value).
    """
    if section is None:
        return [LogChannel()]
    env = os.environ if env is None else env
    channels: list[Channel] = []
    if section.log:
        channels.append(LogChannel(send_resolved=section.send_resolved))
    for hook in section.webhooks:
        channels.append(
            WebhookChannel(
                hook.url,
                timeout=hook.timeout,
                max_attempts=hook.max_attempts,
                send_resolved=hook.send_resolved,
            )
        )
    mail = section.email
    if mail is not None:
        password = None
        if mail.password_env is not None:
            password = env.get(mail.password_env)
            if password is None:
                raise ConfigError(
                    f"alerts.email.password_env: the environment variable {mail.password_env} "
                    "is not set (it holds the SMTP password)"
                )
        channels.append(
            EmailChannel(
                mail.host,
                mail.port,
                mail.sender,
                mail.to,
                starttls=mail.starttls,
                username=mail.username,
                password=password,
                timeout=mail.timeout,
                send_resolved=mail.send_resolved,
            )
        )
    return channels


def engine_from_config(
    section: AlertsSection | None,
    *,
    store: AlertStore | None,
    bus: EventBus | None = None,
    now: Callable[[], float] | None = None,
    env: Mapping[str, str] | None = None,
    **extra: Any,
) -> AlertEngine:
    """The alert engine ``[alerts]`` describes: rules, inhibition, route, channels.

    Args:
        section: ``config.alerts`` (None: the defaults, the log channel only).
        store: where state and silences persist
            (:class:`~echo_archive.control.alertstore.VaultAlertStore`).
        bus: the service's event bus.
        now: the clock (default ``time.time``).
        env: for ``password_env`` (default ``os.environ``).
        extra: passed to :class:`~echo_archive.control.alerts.AlertEngine`.

    Raises:
        ConfigError: see :func:`channels_from_config`.
        StorageError: the store cannot be read.
    """
    kwargs: dict[str, Any] = dict(extra)
    if now is not None:
        kwargs["now"] = now
    return AlertEngine(
        rules_from_config(section),
        inhibit_rules=DEFAULT_INHIBIT_RULES,
        route=route_from_config(section),
        bus=bus,
        channels=Dispatcher(channels_from_config(section, env)),
        store=store,
        external_url=section.external_url if section is not None else "",
        **kwargs,
    )
