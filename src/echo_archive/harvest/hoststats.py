"""Per-host request counters of the fetch engine: what the supervisor observes of each host.

:class:`HostStats` is fed from the one place :class:`~echo_archive.harvest.engine.Fetcher`
finishes an attempt (where it records the attempt in the host's breaker), so
it counts exactly what the breaker counts: every attempt is one request, a
replay miss and an address the SSRF guard refused are not counted. Each
request falls in one class:

``ok``
    A response that is neither 5xx nor 429 (a 4xx means the host works).
``server``
    An HTTP 5xx response.
``throttled``
    An HTTP 429 (Too Many Requests, RFC 6585 §4).
``transport``
    No response: a connect or read failure, a timeout (httpx's transport
    errors, :class:`~echo_archive.harvest.retry.FailureKind`).

Counters are cumulative since the fetcher started (a reader takes
differences between two :meth:`HostStats.snapshot` calls); latencies (the
seconds of each attempt) are kept in a bounded ring of the last
:data:`LATENCY_RING` per host with a running count, so a reader can take
the ones added since its last snapshot. Recording is O(1) and takes a lock
(the engine runs on one event loop; a reader may be on another thread).
The number of hosts is bounded (:data:`MAX_HOSTS`): past it, new hosts are
counted together under :data:`OTHER_HOST`. Operational state, not persisted
(it restarts at zero with the process).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Final

__all__ = ["LATENCY_RING", "MAX_HOSTS", "OTHER_HOST", "HostSnapshot", "HostStats"]

LATENCY_RING: Final = 512
"""Latencies kept per host (the most recent attempts')."""

MAX_HOSTS: Final = 10_000
"""Hosts counted apart; beyond this many, new hosts share :data:`OTHER_HOST`."""

OTHER_HOST: Final = "(other)"
"""The key of the hosts counted together once :data:`MAX_HOSTS` is reached."""


@dataclass(frozen=True, slots=True)
class HostSnapshot:
    """One host's counters at one instant (cumulative since the fetcher started).

    Attributes:
        requests: attempts sent (every class below).
        server_errors: HTTP 5xx responses.
        throttled: HTTP 429 responses.
        transport_errors: attempts with no response (connect/read failures, timeouts).
        latency_count: latencies recorded so far (== ``requests``).
        latencies: the seconds of the most recent attempts, oldest first, at
            most :data:`LATENCY_RING`.
    """

    requests: int = 0
    server_errors: int = 0
    throttled: int = 0
    transport_errors: int = 0
    latency_count: int = 0
    latencies: tuple[float, ...] = ()

    def latencies_since(self, earlier: HostSnapshot | None) -> tuple[float, ...]:
        """The latencies recorded after ``earlier`` (None: all kept), as far as the ring holds."""
        added = self.latency_count - (earlier.latency_count if earlier is not None else 0)
        if added <= 0:
            return ()
        return self.latencies[-added:] if added < len(self.latencies) else self.latencies


class _Counts:
    __slots__ = ("latencies", "requests", "server", "throttled", "transport")

    def __init__(self) -> None:
        self.requests = 0
        self.server = 0
        self.throttled = 0
        self.transport = 0
        self.latencies: deque[float] = deque(maxlen=LATENCY_RING)


class HostStats:
    """Cumulative per-host request counters and recent latencies (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hosts: dict[str, _Counts] = {}

    def record(self, host: str, status: int | None, seconds: float) -> None:
        """Count one finished attempt.

        Args:
            host: the host key (:func:`~echo_archive.harvest.engine.host_key`).
            status: the final response's status code, or None when no response
                came (a transport failure or timeout).
            seconds: how long the attempt took (>= 0).
        """
        with self._lock:
            counts = self._hosts.get(host)
            if counts is None:
                if len(self._hosts) >= MAX_HOSTS:
                    host = OTHER_HOST
                counts = self._hosts.setdefault(host, _Counts())
            counts.requests += 1
            if status is None:
                counts.transport += 1
            elif status == 429:
                counts.throttled += 1
            elif status >= 500:
                counts.server += 1
            counts.latencies.append(max(0.0, float(seconds)))

    def snapshot(self) -> dict[str, HostSnapshot]:
        """Every host's counters now, by host key (a new dict of frozen values)."""
        with self._lock:
            return {
                host: HostSnapshot(
                    requests=c.requests,
                    server_errors=c.server,
                    throttled=c.throttled,
                    transport_errors=c.transport,
                    latency_count=c.requests,
                    latencies=tuple(c.latencies),
                )
                for host, c in self._hosts.items()
            }
