"""Alert channels against real receivers.

A loopback HTTP server for the webhook (its JSON checked against Alertmanager's
payload), a local SMTP server (aiosmtpd) for email.
"""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
import structlog

from echo_archive.config import AlertsSection
from echo_archive.control.alertrules import channels_from_config
from echo_archive.control.alerts import (
    AlertEngine,
    Condition,
    Notification,
    Op,
    Route,
    Rule,
    Sample,
)
from echo_archive.control.channels import (
    Dispatcher,
    EmailChannel,
    LogChannel,
    WebhookChannel,
)
from echo_archive.errors import ConfigError
from tests.receivers import WebhookReceiver, webhook_receiver

T0 = 1_800_000_000.0


def _notification(*, resolved: bool = False) -> Notification:
    rule = Rule(
        "EchoFeedStale",
        Condition("echo_feed_stale", Op.GT, 0),
        labels={"severity": "warning"},
        annotations={"summary": "Feed {{ $labels.feed }} is stale"},
    )
    clock = [T0]
    engine = AlertEngine(
        [rule],
        route=Route(group_wait=0, group_interval=60),
        now=lambda: clock[0],
        external_url="http://127.0.0.1:8080",
    )
    feeds = ["bbc", "<b>npr</b>\x1b[2J"]
    (note,) = engine.evaluate([Sample.of("echo_feed_stale", 1, feed=f) for f in feeds])
    if not resolved:
        return note
    clock[0] += 120
    (note,) = engine.evaluate([Sample.of("echo_feed_stale", 1, feed="bbc")])
    return note


_Receiver = WebhookReceiver


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[_Receiver]]]:
    with webhook_receiver() as found:
        yield found


async def _no_sleep(seconds: float) -> None:
    del seconds


def _check_alertmanager_shape(body: dict[str, Any]) -> None:
    assert set(body) == {
        "version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels",
        "commonLabels", "commonAnnotations", "externalURL", "alerts",
    }  # fmt: skip
    assert body["version"] == "4"
    assert body["status"] in ("firing", "resolved")
    for key in ("groupLabels", "commonLabels", "commonAnnotations"):
        assert all(isinstance(v, str) for v in body[key].values())
    for alert in body["alerts"]:
        assert set(alert) == {
            "status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint",
        }  # fmt: skip
        assert len(alert["fingerprint"]) == 16
        assert alert["startsAt"].endswith("Z")


def test_webhook_posts_alertmanager_payload(receiver: tuple[str, type[_Receiver]]) -> None:
    url, handler = receiver
    note = _notification()
    results = Dispatcher([WebhookChannel(url, sleep=_no_sleep)]).deliver_sync([note])
    assert [r.ok for r in results] == [True]
    (body,) = handler.bodies
    _check_alertmanager_shape(body)
    assert body["groupKey"] == '{}:{alertname="EchoFeedStale"}'
    assert body["receiver"] == "echo"
    assert body["groupLabels"] == {"alertname": "EchoFeedStale"}
    assert body["commonLabels"] == {"alertname": "EchoFeedStale", "severity": "warning"}
    assert body["externalURL"] == "http://127.0.0.1:8080"
    feeds = {a["labels"]["feed"] for a in body["alerts"]}
    assert feeds == {"bbc", "<b>npr</b>\x1b[2J"}  # labels are exact data in JSON
    assert all(a["endsAt"] == "0001-01-01T00:00:00Z" for a in body["alerts"])
    assert all("\x1b" not in a["annotations"]["summary"] for a in body["alerts"])


def test_webhook_sends_resolved_alerts(receiver: tuple[str, type[_Receiver]]) -> None:
    url, handler = receiver
    note = _notification(resolved=True)
    Dispatcher([WebhookChannel(url, sleep=_no_sleep)]).deliver_sync([note])
    (body,) = handler.bodies
    _check_alertmanager_shape(body)
    states = sorted(a["status"] for a in body["alerts"])
    assert states == ["firing", "resolved"]
    resolved = next(a for a in body["alerts"] if a["status"] == "resolved")
    assert resolved["endsAt"] != "0001-01-01T00:00:00Z"


def test_webhook_retries_5xx_a_bounded_number_of_times(
    receiver: tuple[str, type[_Receiver]],
) -> None:
    url, handler = receiver
    handler.statuses = [503, 500]
    hook = WebhookChannel(url, max_attempts=3, sleep=_no_sleep)
    (ok,) = Dispatcher([hook]).deliver_sync([_notification()])
    assert ok.ok
    assert len(handler.bodies) == 1
    handler.statuses = [503, 503, 503, 503]
    (failed,) = Dispatcher([hook]).deliver_sync([_notification()])
    assert not failed.ok
    assert failed.error is not None
    assert "HTTP 503 after 3 attempt(s)" in failed.error
    assert "s3cret" not in failed.error + failed.channel  # the URL's token is redacted
    assert handler.statuses == [503]  # three attempts, no more


def test_a_failing_channel_never_stops_the_others(receiver: tuple[str, type[_Receiver]]) -> None:
    url, handler = receiver
    dead = WebhookChannel("http://127.0.0.1:9/none", timeout=2, max_attempts=2, sleep=_no_sleep)
    refused = WebhookChannel(url.replace("/hook", "/refuse"), sleep=_no_sleep)
    good = WebhookChannel(url, sleep=_no_sleep)
    results = Dispatcher([dead, refused, good, LogChannel()]).deliver_sync([_notification()])
    assert [r.ok for r in results] == [False, False, True, True]
    assert "not retried" in (results[1].error or "")
    assert len(handler.bodies) == 1


def test_log_channel_logs_a_redacted_event() -> None:
    with structlog.testing.capture_logs() as logs:
        Dispatcher([LogChannel()]).deliver_sync([_notification()])
    (event,) = [e for e in logs if e["event"] == "alerts.notification"]
    assert event["status"] == "firing"
    assert len(event["alerts"]) == 2


class _Collect:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 OK"


def test_email_reaches_a_local_smtp_server_escaped() -> None:
    from aiosmtpd.controller import Controller

    handler = _Collect()
    with socket.socket() as probe:  # a free port (aiosmtpd's start() connects to the port given)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        mail = EmailChannel(
            "127.0.0.1", port, "echo@example.org", ["ops@example.org", "b@example.org"]
        )
        note = _notification()
        (result,) = Dispatcher([mail]).deliver_sync([note])
        assert result.ok, result.error
        # resolved alerts are not mailed by default (Alertmanager's email send_resolved)
        assert Dispatcher([mail]).deliver_sync([_notification(resolved=True)])[0].ok
    finally:
        controller.stop()
    first, second = handler.messages
    assert handler.envelopes[0].rcpt_tos == ["ops@example.org", "b@example.org"]
    assert first["From"] == "echo@example.org"
    assert first["To"] == "ops@example.org, b@example.org"
    assert first["Subject"] == "[FIRING:2] EchoFeedStale (warning)"
    assert first["Date"]
    assert first["Message-ID"]
    text = first.get_body(("plain",))
    html = first.get_body(("html",))
    assert text is not None
    assert html is not None
    plain, markup = text.get_content(), html.get_content()
    assert "\x1b" not in plain
    assert "\x1b" not in markup
    assert "<b>npr</b>" not in markup  # HTML-escaped
    assert "&lt;b&gt;npr&lt;/b&gt;" in markup
    assert "FIRING" in plain
    assert second["Subject"] == "[FIRING:1] EchoFeedStale (bbc warning)"
    assert "RESOLVED" not in second.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_email_to_nowhere_fails_as_a_result() -> None:
    mail = EmailChannel("127.0.0.1", 9, "echo@example.org", ["ops@example.org"], timeout=2)
    (result,) = Dispatcher([mail]).deliver_sync([_notification()])
    assert not result.ok
    assert "email 127.0.0.1:9" in (result.error or "")


def test_channels_from_config_read_the_password_from_the_environment() -> None:
    section = AlertsSection.model_validate(
        {
            "webhooks": [{"url": "https://hooks.example/x?token=abc"}],
            "email": {
                "host": "smtp.example",
                "port": 587,
                "from": "echo@example.org",
                "to": ["ops@example.org"],
                "starttls": True,
                "username": "echo",
                "password_env": "ECHO_TEST_SMTP_PASSWORD",
            },
        }
    )
    with pytest.raises(ConfigError, match="ECHO_TEST_SMTP_PASSWORD is not set") as info:
        channels_from_config(section, env={})
    assert "hunter2" not in str(info.value)
    channels = channels_from_config(section, env={"ECHO_TEST_SMTP_PASSWORD": "hunter2"})
    assert [c.name for c in channels] == [
        "log",
        "webhook https://hooks.example/x?token=REDACTED",
        "email smtp.example:587",
    ]
    assert "hunter2" not in repr(channels)
