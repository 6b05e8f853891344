"""Notification channels: the log, a webhook (Alertmanager's payload), email over SMTP.

The alert engine decides *what* to notify (:meth:`AlertEngine.evaluate
<echo_archive.control.alerts.AlertEngine.evaluate>`); a :class:`Dispatcher`
sends it, off the evaluation path: ``await dispatcher.deliver(notifications)``
(or :meth:`Dispatcher.deliver_sync` from synchronous code). Every
notification goes to every channel concurrently; a channel that fails
(after its bounded retries) gives a failed :class:`DeliveryResult` and a log
line, never an exception: one broken channel never stops the others or the
engine.

* :class:`LogChannel`: one structlog event ``alerts.notification`` per
  notification (credentials redacted, :mod:`echo_archive.redaction`).
* :class:`WebhookChannel`: ``POST`` of Alertmanager's webhook payload,
  version 4 (prometheus.io, Alertmanager configuration, ``<webhook_config>``:
  ``version``, ``groupKey``, ``status``, ``receiver``, ``groupLabels``,
  ``commonLabels``, ``commonAnnotations``, ``externalURL``, ``alerts``), so a
  real Alertmanager-compatible receiver takes it. A timeout per attempt, at
  most ``max_attempts`` attempts on a connection error, 429 or 5xx, apart
  by full-jitter backoff (AWS "Exponential Backoff and Jitter"); a 4xx other
  than 429 is not retried (as Alertmanager's notifier).
* :class:`EmailChannel`: one message per notification over SMTP (stdlib
  :mod:`smtplib`, optional STARTTLS and login), a plain-text part and an HTML
  part in which every label and annotation is HTML-escaped; the subject is
  Alertmanager's default (``[FIRING:2] EchoFeedStale (bbc-world warning)``),
  made inert. By default without resolved alerts (Alertmanager's email
  ``send_resolved`` default is false).

Each channel has ``send_resolved``: when false it gets only a notification's
firing alerts, and nothing when none fires.
"""

from __future__ import annotations

import asyncio
import html
import random
import smtplib
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol

import httpx
import structlog

from echo_archive.control.alerts import Alert, Notification, rfc3339
from echo_archive.harvest.retry import full_jitter
from echo_archive.redaction import redact_text, redact_url
from echo_archive.terminal import inert

__all__ = [
    "Channel",
    "ChannelError",
    "DeliveryResult",
    "Dispatcher",
    "EmailChannel",
    "LogChannel",
    "WebhookChannel",
    "email_message",
]

log = structlog.get_logger("echo_archive.control.channels")


class ChannelError(Exception):
    """A channel could not send a notification (the message says why, redacted)."""


class Channel(Protocol):
    """Something that sends notifications.

    Attributes:
        name: how results and logs name it (``log``, ``webhook <url>``, ``email <host>``).
        send_resolved: whether it gets resolved alerts.
    """

    name: str
    send_resolved: bool

    async def send(self, notification: Notification) -> None:
        """Send one notification.

        Raises:
            ChannelError: it could not (after its own retries).
        """
        ...


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What happened to one notification on one channel.

    Attributes:
        channel: the channel's name.
        group_key: the notification's group.
        status: the notification's status (``firing`` / ``resolved``).
        ok: True when sent.
        error: why not (redacted), or None.
    """

    channel: str
    group_key: str
    status: str
    ok: bool
    error: str | None = None


class Dispatcher:
    """Sends notifications through channels; never raises for a channel's failure.

    Args:
        channels: the channels.
    """

    def __init__(self, channels: Sequence[Channel] = ()) -> None:
        self.channels = tuple(channels)

    async def deliver(self, notifications: Sequence[Notification]) -> list[DeliveryResult]:
        """Send every notification through every channel, concurrently.

        Returns:
            One result per (notification, channel) that had something to send,
            in order of notifications then channels.
        """
        jobs: list[tuple[Channel, Notification]] = []
        for notification in notifications:
            for channel in self.channels:
                shown = notification if channel.send_resolved else notification.only_firing()
                if shown is not None:
                    jobs.append((channel, shown))
        return list(await asyncio.gather(*(self._one(c, n) for c, n in jobs)))

    async def _one(self, channel: Channel, notification: Notification) -> DeliveryResult:
        try:
            await channel.send(notification)
        except Exception as exc:  # a failing channel never stops the others or the engine
            error = redact_text(str(exc) or type(exc).__name__)
            log.error(
                "alerts.delivery_failed",
                channel=redact_text(channel.name),
                group_key=notification.group_key,
                error=error,
            )
            return DeliveryResult(
                channel.name, notification.group_key, notification.status, False, error
            )
        return DeliveryResult(channel.name, notification.group_key, notification.status, True)

    def deliver_sync(self, notifications: Sequence[Notification]) -> list[DeliveryResult]:
        """:meth:`deliver` from synchronous code (runs its own event loop).

        Raises:
            RuntimeError: called inside a running event loop (await :meth:`deliver`).
        """
        return asyncio.run(self.deliver(notifications))


def _alert_line(alert: Alert) -> dict[str, object]:
    return {
        "alertname": alert.labels.get("alertname", alert.rule),
        "status": "resolved" if alert.state == "resolved" else "firing",
        "labels": {k: redact_text(v) for k, v in alert.labels.items()},
        "summary": redact_text(alert.annotations.get("summary", "")),
        "fingerprint": alert.fingerprint,
    }


class LogChannel:
    """Notifications as structured log events (``alerts.notification``, level warning).

    Args:
        send_resolved: whether resolved alerts are logged too (default true).
    """

    def __init__(self, *, send_resolved: bool = True) -> None:
        self.name = "log"
        self.send_resolved = send_resolved

    async def send(self, notification: Notification) -> None:
        """Log ``notification``: group key, status, receiver and each alert's labels and summary."""
        log.warning(
            "alerts.notification",
            receiver=notification.receiver,
            group_key=redact_text(notification.group_key),
            status=notification.status,
            alerts=[_alert_line(a) for a in notification.alerts],
        )


Sleep = Callable[[float], Awaitable[None]]


class WebhookChannel:
    """``POST`` Alertmanager's webhook JSON payload (version 4) to a URL.

    Args:
        url: the receiver's URL (``http`` or ``https``); shown redacted.
        timeout: seconds per attempt (connect, read, write, pool).
        max_attempts: attempts at most (>= 1), on a connection error, 429 or 5xx.
        backoff: base seconds of the full-jitter backoff between attempts
            (capped at 30 s).
        send_resolved: whether resolved alerts are sent (Alertmanager's
            webhook default: true).
        transport: an httpx transport (tests); default: the network.
        sleep: the coroutine that waits between attempts (tests inject one).
        rng: the jitter's random source.

    Raises:
        ValueError: ``url`` is not http(s), ``timeout`` <= 0, ``max_attempts`` < 1.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        max_attempts: int = 3,
        backoff: float = 1.0,
        send_resolved: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook url {redact_url(url)!r}: must be http:// or https://")
        if not timeout > 0 or max_attempts < 1:
            raise ValueError("webhook: timeout must be > 0 seconds and max_attempts >= 1")
        self.url = url
        self.name = f"webhook {redact_url(url)}"
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.send_resolved = send_resolved
        self._transport = transport
        self._sleep = sleep
        self._rng = rng or random.Random()

    async def send(self, notification: Notification) -> None:
        """POST the payload; retry as the class says.

        Raises:
            ChannelError: every attempt failed, or the receiver answered a 4xx
                other than 429 (the status and attempts named; URL redacted).
        """
        payload = notification.to_webhook()
        problem = ""
        async with httpx.AsyncClient(
            timeout=self.timeout, transport=self._transport, follow_redirects=False, trust_env=False
        ) as client:
            for attempt in range(1, self.max_attempts + 1):
                try:
                    response = await client.post(
                        self.url, json=payload, headers={"User-Agent": "echo-archive-alerts"}
                    )
                except httpx.HTTPError as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                else:
                    if response.status_code < 300:
                        return
                    problem = f"HTTP {response.status_code}"
                    if response.status_code < 500 and response.status_code != 429:
                        raise ChannelError(f"{self.name}: {problem} (not retried)")
                if attempt < self.max_attempts:
                    await self._sleep(full_jitter(attempt - 1, self.backoff, 30.0, self._rng))
        raise ChannelError(
            redact_text(f"{self.name}: {problem} after {self.max_attempts} attempt(s)")
        )


def _subject(notification: Notification) -> str:
    """Alertmanager's default subject: ``[FIRING:2] <group values> (<other common values>)``."""
    status = notification.status.upper()
    count = f":{len(notification.firing)}" if notification.status == "firing" else ""
    group = " ".join(notification.group_labels[k] for k in sorted(notification.group_labels))
    common = notification.common_labels
    extra = " ".join(common[k] for k in sorted(common) if k not in notification.group_labels)
    text = f"[{status}{count}] {group}" + (f" ({extra})" if extra else "")
    return inert(redact_text(text))[:250]


def _text_body(notification: Notification) -> str:
    lines = [
        f"{len(notification.firing)} firing, {len(notification.resolved)} resolved",
        f"group: {notification.group_key}",
    ]
    for alert in notification.alerts:
        state = "RESOLVED" if alert.state == "resolved" else "FIRING"
        lines += ["", f"[{state}] {alert.labels.get('alertname', alert.rule)}"]
        lines += [f"  {k} = {v}" for k, v in sorted(alert.labels.items())]
        lines += [f"  {k}: {v}" for k, v in sorted(alert.annotations.items())]
        lines.append(f"  since {rfc3339(alert.fired_at or alert.active_at)}")
        if alert.resolved_at is not None:
            lines.append(f"  resolved {rfc3339(alert.resolved_at)}")
    if notification.external_url:
        lines += ["", f"ECHO: {notification.external_url}"]
    return "\n".join(inert(redact_text(line)) for line in lines) + "\n"


def _html_body(notification: Notification) -> str:
    def esc(text: str) -> str:
        return html.escape(inert(text))

    parts = [
        "<!DOCTYPE html><html><body>",
        f"<p>{len(notification.firing)} firing, {len(notification.resolved)} resolved</p>",
    ]
    for alert in notification.alerts:
        state = "RESOLVED" if alert.state == "resolved" else "FIRING"
        name = redact_text(alert.labels.get("alertname", alert.rule))
        parts.append(f"<h3>[{state}] {esc(name)}</h3><table>")
        for k, v in sorted(alert.labels.items()):
            parts.append(f"<tr><th>{esc(k)}</th><td>{esc(redact_text(v))}</td></tr>")
        parts.append("</table><dl>")
        for k, v in sorted(alert.annotations.items()):
            parts.append(f"<dt>{esc(k)}</dt><dd>{esc(redact_text(v))}</dd>")
        parts.append("</dl>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def email_message(
    notification: Notification, sender: str, recipients: Sequence[str]
) -> EmailMessage:
    """The email of ``notification``: headers, a plain-text part and an HTML part.

    Every label and annotation is HTML-escaped in the HTML part (text from a
    source never acts in a mail reader) and made inert in the subject and
    the text part.
    """
    message = EmailMessage()
    message["Subject"] = _subject(notification)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(notification.at, usegmt=True)
    message["Message-ID"] = make_msgid(domain="echo-archive")
    message["X-Echo-Group-Key"] = inert(redact_text(notification.group_key))[:900]
    message.set_content(_text_body(notification))
    message.add_alternative(_html_body(notification), subtype="html")
    return message


class EmailChannel:
    """One email per notification over SMTP (stdlib :mod:`smtplib`, run in a thread).

    Args:
        host: the SMTP server.
        port: its port (25, 587 with STARTTLS...).
        sender: the ``From`` address.
        recipients: the ``To`` addresses (at least one).
        starttls: upgrade the connection with STARTTLS (certificate verified).
        username: log in as this user (after STARTTLS), or None.
        password: the password for ``username`` (read from the environment
            variable the configuration names; never stored or printed).
        timeout: seconds for the SMTP connection and each command.
        send_resolved: whether resolved alerts are mailed (default false, as
            Alertmanager's ``email_config``).

    Raises:
        ValueError: no recipient, or a username without a password.
    """

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        recipients: Sequence[str],
        *,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        send_resolved: bool = False,
    ) -> None:
        if not recipients:
            raise ValueError("email: at least one recipient (to)")
        if username and password is None:
            raise ValueError("email: a username needs a password (password_env)")
        self.host, self.port = host, port
        self.sender, self.recipients = sender, tuple(recipients)
        self.starttls, self.username, self._password = starttls, username, password
        self.timeout = timeout
        self.send_resolved = send_resolved
        self.name = f"email {host}:{port}"

    def __repr__(self) -> str:
        shown = "set" if self._password else None
        return f"EmailChannel({self.host!r}, {self.port}, password={shown})"

    async def send(self, notification: Notification) -> None:
        """Mail ``notification`` (in a worker thread; the event loop keeps running).

        Raises:
            ChannelError: the server refused or could not be reached (named).
        """
        await asyncio.to_thread(self.send_sync, notification)

    def send_sync(self, notification: Notification) -> None:
        """Mail ``notification`` from synchronous code.

        Raises:
            ChannelError: as :meth:`send`.
        """
        message = email_message(notification, self.sender, self.recipients)
        started = time.monotonic()
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username and self._password is not None:
                    smtp.login(self.username, self._password)
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise ChannelError(
                f"{self.name}: {type(exc).__name__}: {redact_text(str(exc))} "
                f"(after {time.monotonic() - started:.1f} s)"
            ) from exc
