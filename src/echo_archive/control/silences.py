"""Silences: mute the alerts whose labels match, for a while (Alertmanager's silences).

A silence (prometheus.io, Alertmanager, "Silences") is a set of matchers, a
start and an end time, who made it and why. While it is active
(``starts_at <= now < ends_at``) every alert matching **all** its matchers
is muted: it still fires and shows in ``echoctl alerts list``, but no
notification goes out for it. Expiring a silence sets its end to now; an
expired silence is kept (listed with ``--all``), as Alertmanager keeps them
for its retention period. As in Alertmanager, a silence needs at least one
matcher that does not match the empty string, so it can never mute every
alert (``severity=~".*"`` alone is refused).

Silences are operational state in the vault's catalog (table
``alert_silences``, :mod:`echo_archive.control.alertstore`), so ``echoctl
silence add`` in a shell mutes a running service's alerts at its next cycle.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from echo_archive.control.matchers import Matcher, matches_all

__all__ = ["Silence", "SilenceState", "new_silence", "parse_duration", "prom_duration"]

SilenceState = Literal["pending", "active", "expired"]

_DURATION = re.compile(r"(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_UNITS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1)


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration (``90s``, ``30m``, ``2h``, ``1d12h``, ``1w``) or a number.

    Units as Prometheus's duration format: ``y`` (365 days), ``w``, ``d``,
    ``h``, ``m``, ``s``, in that order, each at most once; a bare number is
    seconds.

    Raises:
        ValueError: ``text`` is neither (the message gives examples).
    """
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        found = _DURATION.fullmatch(text)
        if not text or found is None:
            raise ValueError(
                f"duration {text!r}: expected seconds or a duration such as 90s, 30m, 2h, 1d12h"
            ) from None
        seconds = float(sum(int(n) * u for n, u in zip(found.groups(), _UNITS, strict=True) if n))
    if seconds != seconds or seconds < 0 or seconds == float("inf"):
        raise ValueError(f"duration {text!r}: must be a finite number of seconds >= 0")
    return seconds


def prom_duration(seconds: float) -> str:
    """``seconds`` as a Prometheus duration: ``600`` -> ``10m``, ``5400`` -> ``1h30m``.

    Fractions of a second are written in ``ms``.

    Raises:
        ValueError: ``seconds`` is negative.
    """
    if seconds < 0:
        raise ValueError(f"duration {seconds}: must be >= 0")
    ms = round(seconds * 1000)
    whole, rest = divmod(ms, 1000)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, whole = divmod(whole, size)
        if n:
            parts.append(f"{n}{unit}")
    if rest:
        parts.append(f"{rest}ms")
    return "".join(parts) or "0s"


@dataclass(frozen=True, slots=True)
class Silence:
    """One silence (Alertmanager's ``silence`` object).

    Attributes:
        id: a UUID (as Alertmanager's).
        matchers: every one must match an alert for it to be muted.
        starts_at: POSIX seconds it starts muting.
        ends_at: POSIX seconds it stops (exclusive).
        created_by: who made it.
        comment: why.
        updated_at: POSIX seconds of its last change (creation, expiry).
    """

    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    updated_at: float = field(default=0.0)

    def state(self, now: float) -> SilenceState:
        """``pending`` before its start, ``active`` until its end, then ``expired``."""
        if now < self.starts_at:
            return "pending"
        return "active" if now < self.ends_at else "expired"

    def mutes(self, labels: Mapping[str, str], now: float) -> bool:
        """Whether this silence is active at ``now`` and matches ``labels``."""
        return self.state(now) == "active" and matches_all(self.matchers, labels)

    def to_json(self, now: float) -> dict[str, Any]:
        """The silence as JSON, close to Alertmanager's API shape.

        ``{"id", "matchers" (Alertmanager's shape), "startsAt", "endsAt",
        "updatedAt" (POSIX s), "createdBy", "comment", "status": {"state"}}``.
        """
        return {
            "id": self.id,
            "matchers": [m.to_json() for m in self.matchers],
            "startsAt": self.starts_at,
            "endsAt": self.ends_at,
            "createdBy": self.created_by,
            "comment": self.comment,
            "updatedAt": self.updated_at,
            "status": {"state": self.state(now)},
        }


def new_silence(
    matchers: Sequence[Matcher],
    *,
    duration: float,
    comment: str,
    created_by: str,
    now: float,
    starts_at: float | None = None,
) -> Silence:
    """A new silence from ``starts_at`` (default ``now``) for ``duration`` seconds.

    Raises:
        ValueError: no matcher, every matcher matches the empty string (it
            would mute everything), ``duration`` <= 0, or an empty comment
            (Alertmanager requires a comment and an author too).
    """
    if not matchers:
        raise ValueError("a silence needs at least one matcher (e.g. alertname=EchoFeedStale)")
    if all(m.matches({}) for m in matchers):
        raise ValueError(
            "a silence needs at least one matcher that does not match the empty string "
            f"(these would mute every alert: {', '.join(map(str, matchers))})"
        )
    if not duration > 0:
        raise ValueError(f"silence duration {duration}: must be > 0 seconds")
    if not comment.strip():
        raise ValueError("a silence needs a comment (why it mutes these alerts)")
    if not created_by.strip():
        raise ValueError("a silence needs an author (created_by)")
    start = now if starts_at is None else starts_at
    return Silence(
        id=str(uuid.uuid4()),
        matchers=tuple(matchers),
        starts_at=start,
        ends_at=start + duration,
        created_by=created_by,
        comment=comment,
        updated_at=now,
    )
