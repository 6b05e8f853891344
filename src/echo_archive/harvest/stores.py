"""Where the fetch engine's state persists between runs: breakers and host pauses.

The engine (:mod:`echo_archive.harvest.engine`) takes these as protocols:
a :class:`BreakerStore` keeps each host's circuit-breaker state (resilience4j
semantics, :mod:`echo_archive.harvest.breaker`), a :class:`HostPauseStore`
each host's ``Retry-After`` pause (RFC 9110 §10.2.3), so a restart neither
resets an open breaker nor hits a host that asked to be left alone. The
memory implementations here serve tests and one-off runs; the vault-backed
ones (:class:`VaultBreakerStore`, :class:`VaultPauseStore`, and
:class:`VaultConditionalCache` for :mod:`echo_archive.harvest.conditional`)
read and write the operational tables of :mod:`echo_archive.harvest.state`
through :class:`VaultState`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol

import structlog

from echo_archive.harvest.conditional import Validators
from echo_archive.harvest.state import HarvestState
from echo_archive.vault.entry import format_timestamp
from echo_archive.vault.vault import Vault
from echo_archive.vault.writer import VaultWriter

__all__ = [
    "BreakerStore",
    "HostPauseStore",
    "MemoryBreakerStore",
    "MemoryPauseStore",
    "VaultBreakerStore",
    "VaultConditionalCache",
    "VaultPauseStore",
    "VaultState",
]

log = structlog.get_logger("echo_archive.harvest")


def _now() -> str:
    return format_timestamp(time.time_ns())


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


class VaultState:
    """Reads harvest state from a reader; writes it through the writer when there is one.

    Given a :class:`~echo_archive.vault.writer.VaultWriter`, reads use a
    read-only vault of the calling thread (opened on first use; closed by
    :meth:`close`) and each write is queued on the writer without waiting
    (a failure is logged: breaker and validator state are operational).
    Given a :class:`~echo_archive.vault.vault.Vault`, both go to it directly.
    """

    def __init__(self, vault: Vault | VaultWriter) -> None:
        self._writer = vault if isinstance(vault, VaultWriter) else None
        self._vault = None if isinstance(vault, VaultWriter) else vault
        self._own: Vault | None = None

    def read(self) -> Vault:
        """The vault to read from: the given one, or this thread's reader of the writer's."""
        if self._vault is not None:
            return self._vault
        if self._own is None:
            assert self._writer is not None
            self._own = self._writer.reader()
        return self._own

    def write(self, what: str, fn: Callable[[Vault], object]) -> None:
        """Run ``fn`` on the vault, or queue it on the writer (a failure is logged as ``what``)."""
        if self._writer is None:
            assert self._vault is not None
            fn(self._vault)
            return
        future = self._writer.submit(fn)

        def done(f: Future[object]) -> None:
            if f.exception() is not None:
                log.warning("harvest.state_write_failed", what=what, error=str(f.exception()))

        future.add_done_callback(done)

    def close(self) -> None:
        """Close the reader this opened, if any."""
        if self._own is not None:
            self._own.close()
            self._own = None


class VaultBreakerStore(VaultState):
    """A :class:`~echo_archive.harvest.stores.BreakerStore` in the vault catalog.

    Args:
        vault: the vault's writer (reads from a reader view, saves queued on
            the writer), or a vault used directly.
    """

    def load(self, name: str) -> dict[str, Any] | None:
        """Return the saved state of breaker ``name``, or None."""
        return HarvestState(self.read().catalog).breaker(name)

    def save(self, name: str, state: dict[str, Any]) -> None:
        """Save the state of breaker ``name`` (queued on the writer)."""
        now, saved = _now(), dict(state)
        self.write(
            f"breaker {name}", lambda v: HarvestState(v.catalog).put_breaker(name, saved, now)
        )


class VaultConditionalCache(VaultState):
    """A :class:`~echo_archive.harvest.conditional.ConditionalCache` in the vault catalog.

    Args:
        vault: as for :class:`VaultBreakerStore`.
    """

    def get(self, url: str) -> Validators | None:
        """Return the validators last stored for ``url``, or None."""
        found = HarvestState(self.read().catalog).validators(url)
        return None if found is None else Validators(etag=found[0], last_modified=found[1])

    def put(self, url: str, validators: Validators) -> None:
        """Store the validators of ``url`` (queued on the writer)."""
        now, etag, modified = _now(), validators.etag, validators.last_modified
        self.write(
            f"validators of {url}",
            lambda v: HarvestState(v.catalog).put_validators(url, etag, modified, now),
        )


class VaultPauseStore(VaultState):
    """A :class:`~echo_archive.harvest.stores.HostPauseStore` in the vault catalog.

    Args:
        vault: as for :class:`VaultBreakerStore`.
    """

    def load_pause(self, host: str) -> float | None:
        """Return the saved end of ``host``'s pause (POSIX seconds), or None."""
        return HarvestState(self.read().catalog).pause(host)

    def save_pause(self, host: str, until_epoch: float, reason: str) -> None:
        """Save ``host``'s pause (queued on the writer)."""
        now = _now()
        self.write(
            f"pause of {host}",
            lambda v: HarvestState(v.catalog).put_pause(host, until_epoch, reason, now),
        )
