"""Where the fetch engine's state persists between runs: breakers and host pauses.

The engine (:mod:`echo_archive.harvest.engine`) takes these as protocols:
a :class:`BreakerStore` keeps each host's circuit-breaker state (resilience4j
semantics, :mod:`echo_archive.harvest.breaker`), a :class:`HostPauseStore`
each host's ``Retry-After`` pause (RFC 9110 §10.2.3), so a restart neither
resets an open breaker nor hits a host that asked to be left alone. The
memory implementations here serve tests and one-off runs; the vault-backed
ones (``VaultBreakerStore``, ``VaultPauseStore`` in
:mod:`echo_archive.harvest.job`) write the operational tables of
:mod:`echo_archive.harvest.state`. The conditional-request cache is
:mod:`echo_archive.harvest.conditional`.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

__all__ = ["BreakerStore", "HostPauseStore", "MemoryBreakerStore", "MemoryPauseStore"]


class BreakerStore(Protocol):
    """Where breaker states persist, by name (``CircuitBreaker.to_state`` mappings).

    The engine names each breaker by its :func:`~echo_archive.harvest.engine.host_key`.
    """

    def load(self, name: str) -> dict[str, Any] | None:
        """Return the saved state of breaker ``name``, or None when none was saved."""
        ...

    def save(self, name: str, state: dict[str, Any]) -> None:
        """Save the state of breaker ``name`` (a JSON-ready mapping)."""
        ...


class MemoryBreakerStore:
    """A :class:`BreakerStore` in a dict; states go through JSON, as a real store's would."""

    def __init__(self) -> None:
        self.states: dict[str, str] = {}

    def load(self, name: str) -> dict[str, Any] | None:
        """Return a fresh copy of the saved state of ``name``, or None."""
        text = self.states.get(name)
        if text is None:
            return None
        loaded: dict[str, Any] = json.loads(text)
        return loaded

    def save(self, name: str, state: dict[str, Any]) -> None:
        """Save ``state`` as JSON text.

        Raises:
            TypeError: ``state`` is not JSON-ready.
        """
        self.states[name] = json.dumps(state, sort_keys=True)


class HostPauseStore(Protocol):
    """Where host pauses asked by ``Retry-After`` persist across runs (politeness).

    A pause is the POSIX time (seconds) before which the engine sends nothing
    to a host (a :func:`~echo_archive.harvest.engine.host_key`). The engine
    saves each pause it takes (at most ``FetchConfig.retry_after_cap``
    seconds long) and, on its first fetch to a host, skips the host while a
    saved pause lasts.
    """

    def load_pause(self, host: str) -> float | None:
        """Return the saved end of ``host``'s pause (POSIX seconds), or None."""
        ...

    def save_pause(self, host: str, until_epoch: float, reason: str) -> None:
        """Save that ``host`` is paused until ``until_epoch`` (POSIX seconds), and why."""
        ...


class MemoryPauseStore:
    """A :class:`HostPauseStore` in a dict (tests, one-off runs)."""

    def __init__(self) -> None:
        self.pauses: dict[str, tuple[float, str]] = {}

    def load_pause(self, host: str) -> float | None:
        """Return the saved end of ``host``'s pause (POSIX seconds), or None."""
        found = self.pauses.get(host)
        return None if found is None else found[0]

    def save_pause(self, host: str, until_epoch: float, reason: str) -> None:
        """Save ``host``'s pause end (POSIX seconds) and its reason."""
        self.pauses[host] = (until_epoch, reason)
