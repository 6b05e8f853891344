"""What interventions act on: the running service's parts, or a vault's stored state.

Two implementations of :class:`~echo_archive.control.interventions.Actuator`:

* :class:`ServiceActuator`, inside ``echoctl serve``: feeds through the
  :class:`~echo_archive.service.scheduler.Scheduler` (``set_paused``,
  ``set_stretch``: persisted in ``schedules`` and live at once), host rates
  through the shared :class:`~echo_archive.harvest.engine.Fetcher`'s host
  limits (:meth:`HostLimits.set_rate
  <echo_archive.harvest.limits.HostLimits.set_rate>`: live only; a restart
  goes back to the configured rate), breakers through the fetcher
  (:meth:`~echo_archive.harvest.engine.Fetcher.set_breaker_mode`: live and
  persisted).
* :class:`StoredActuator`, for ``echoctl interventions`` with no service:
  the pause flag and stretch in the ``schedules`` table and the breakers in
  ``HarvestState``, which the next service start reads. A host's rate lives
  only in a running fetch engine, so setting one raises
  :class:`~echo_archive.control.interventions.ActuatorUnavailableError`: the
  approval is recorded and the service applies it at its next cycle
  (:meth:`InterventionManager.run_pending
  <echo_archive.control.interventions.InterventionManager.run_pending>`).
  With ``defer=True`` (a service runs on the vault) every change is left to
  the service that way, so its live state and the stored one never part.

Both rebuild, verify and free disk alike (:class:`VaultActions`): through
the library services (:func:`~echo_archive.services.verification.rebuild`,
:func:`~echo_archive.services.verification.verify`) and the destructive
repairs of :func:`~echo_archive.control.repair.run_repairs`, on the vault's
writer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

from echo_archive.config import load_config
from echo_archive.control.health import HealthReport
from echo_archive.control.interventions import ActuatorUnavailableError, FeedControl
from echo_archive.control.repair import run_repairs
from echo_archive.harvest.breaker import CircuitBreaker
from echo_archive.harvest.engine import FetchConfig, Fetcher
from echo_archive.harvest.state import HarvestState
from echo_archive.service.schedule import ScheduleStore
from echo_archive.service.scheduler import Scheduler
from echo_archive.services.harvesting import host_limits
from echo_archive.services.vaults import open_vault
from echo_archive.services.verification import rebuild, verify
from echo_archive.vault.entry import format_timestamp
from echo_archive.vault.vault import CONFIG_FILE, Vault
from echo_archive.vault.writer import VaultWriter

__all__ = ["FREE_DISK_REPAIRS", "ServiceActuator", "StoredActuator", "VaultActions"]

FREE_DISK_REPAIRS: Final = {"reports": "prune_reports", "orphans": "prune_orphans"}
"""``free_disk``'s parameters -> the destructive repairs of :mod:`echo_archive.control.repair`."""


class VaultActions:
    """Rebuild, verify and free disk on a vault through its writer (shared by both actuators).

    Args:
        writer: the vault's writer.
        actor: who acts, for the ``repair`` entries free_disk writes.
    """

    def __init__(self, writer: VaultWriter, actor: str) -> None:
        self.writer = writer
        self.path: Path = writer.path
        self.actor = actor

    async def indexes(self) -> list[str]:
        """The names of the vault's derived indexes."""
        return await self.writer.submit_async(lambda v: [d.name for d in v.derived])

    async def rebuild(self, index: str | None) -> list[str]:
        """Rebuild ``index`` (None: every one) on the writer; the names rebuilt.

        Raises:
            NotFoundError: no such index. DerivedIndexError, StorageError: it failed.
        """
        return await self.writer.submit_async(_rebuild, index)

    async def verify(self, sample: float) -> dict[str, Any]:
        """Verify the vault on a reader of its own, off the event loop (nothing is written).

        Returns:
            ``{"ok", "problems" (count), "entries", "blobs", "first_problems"
            (up to 5, as text)}``.
        """
        return await asyncio.to_thread(_verify, self.path, sample)

    async def free_disk(
        self, reports: bool, orphans: bool, *, dry_run: bool
    ) -> list[dict[str, Any]]:
        """Plan or run ``prune_reports`` / ``prune_orphans`` (approved: they are chosen).

        Each executed repair writes its own ``repair`` entry
        (:func:`~echo_archive.control.repair.run_repairs`), off the event loop.

        Returns:
            The outcomes of the chosen repairs that found something to do, as JSON.
        """
        chosen = [
            n
            for key, n in FREE_DISK_REPAIRS.items()
            if {"reports": reports, "orphans": orphans}[key]
        ]
        outcomes = await asyncio.to_thread(
            run_repairs,
            self.path,
            HealthReport((), time.time()),
            dry_run=dry_run,
            approve=chosen,
            writer=self.writer,
            actor=self.actor,
        )
        return [o.to_json() for o in outcomes if o.name in chosen]


def _rebuild(vault: Vault, index: str | None) -> list[str]:
    """A writer job: rebuild one derived index or all."""
    with vault.writing():
        return rebuild(vault, index)


def _verify(path: Path, sample: float) -> dict[str, Any]:
    with open_vault(path) as reader:
        report = verify(reader, sample=sample, remember=False)
    return {
        "ok": report.ok,
        "problems": len(report.problems),
        "entries": report.entries,
        "blobs": report.blobs,
        "first_problems": [str(p) for p in report.problems[:5]],
    }


class ServiceActuator(VaultActions):
    """The running service's actuator (see the module).

    Args:
        writer: the service's writer.
        scheduler: its scheduler.
        fetcher: its shared fetch engine.
    """

    live: bool = True

    def __init__(self, writer: VaultWriter, scheduler: Scheduler, fetcher: Fetcher) -> None:
        super().__init__(writer, "service")
        self.scheduler = scheduler
        self.fetcher = fetcher

    async def feed(self, name: str) -> FeedControl | None:
        """The scheduler's schedule of ``name``, or None."""
        row = self.scheduler.schedules.get(name)
        return None if row is None else FeedControl(row.feed, row.paused, row.stretch)

    async def set_paused(self, feed: str, paused: bool) -> None:
        """Pause or resume through the scheduler (persisted, live).

        Raises:
            KeyError: ``feed`` is not scheduled.
        """
        await self.scheduler.set_paused(feed, paused)

    async def set_stretch(self, feed: str, stretch: float) -> None:
        """Stretch through the scheduler (persisted, from the feed's next run).

        Raises:
            KeyError: not scheduled. ValueError: ``stretch`` below 1.
        """
        await self.scheduler.set_stretch(feed, stretch)

    async def host_rate(self, host: str) -> float:
        """The fetch engine's request-rate ceiling of ``host``, requests/s."""
        return self.fetcher.limits.config_for(host).rate

    async def set_host_rate(self, host: str, rate: float) -> float:
        """Set the fetch engine's ceiling for ``host`` (live); the previous one.

        Raises:
            ConfigError: ``rate`` is not a positive finite number.
        """
        return self.fetcher.limits.set_rate(host, rate, time.monotonic())

    async def breaker(self, host: str) -> Mapping[str, Any] | None:
        """The live breaker of ``host`` (loaded or created CLOSED)."""
        return self.fetcher.breaker(host).to_state()

    async def set_breaker_mode(self, host: str, mode: str) -> Mapping[str, Any] | None:
        """Force the live breaker (persisted); its state before."""
        return self.fetcher.set_breaker_mode(host, mode)

    async def restore_breaker(self, host: str, state: Mapping[str, Any] | None) -> None:
        """Put the live breaker back as ``state`` (persisted)."""
        self.fetcher.restore_breaker(host, state)


_DEFERRED: Final = (
    "a service runs on this vault: recorded for it to execute at its next supervisor cycle"
)


class StoredActuator(VaultActions):
    """The actuator of ``echoctl interventions`` with no running service (see the module).

    Args:
        writer: the vault's writer (this process's).
        defer: leave every change to the running service (one runs on the vault).
        actor: who acts (for ``repair`` entries).
    """

    live: bool = False

    def __init__(
        self, writer: VaultWriter, *, defer: bool = False, actor: str = "echoctl interventions"
    ) -> None:
        super().__init__(writer, actor)
        self.defer = defer

    def _changing(self) -> None:
        if self.defer:
            raise ActuatorUnavailableError(_DEFERRED)

    async def feed(self, name: str) -> FeedControl | None:
        """The stored schedule of ``name``, or None (never scheduled by a service)."""
        row = (await self.writer.submit_async(_schedules)).get(name)
        return None if row is None else FeedControl(row.feed, row.paused, row.stretch)

    async def set_paused(self, feed: str, paused: bool) -> None:
        """Set the stored pause flag (a service reads it at its start).

        Raises:
            ActuatorUnavailableError: ``defer``. KeyError: no stored schedule.
        """
        self._changing()
        await self.writer.submit_async(_change_schedule, feed, {"paused": paused})

    async def set_stretch(self, feed: str, stretch: float) -> None:
        """Set the stored stretch.

        Raises:
            ActuatorUnavailableError: ``defer``. KeyError: no stored schedule.
            ValueError: ``stretch`` below 1.
        """
        self._changing()
        if stretch < 1:
            raise ValueError(f"stretch {stretch}: must be at least 1")
        await self.writer.submit_async(_change_schedule, feed, {"stretch": stretch})

    async def host_rate(self, host: str) -> float:
        """The configured ceiling of ``host`` (``[limits]`` over the sources' profiles)."""
        config = await asyncio.to_thread(load_config, self.path / CONFIG_FILE)
        return host_limits(config).config_for(host).rate

    async def set_host_rate(self, host: str, rate: float) -> float:
        """Refused: a host's rate lives in a running fetch engine.

        Raises:
            ActuatorUnavailableError: always (the service applies it at its next cycle).
        """
        raise ActuatorUnavailableError(
            "a host's request rate lives in the running service's fetch engine: recorded, "
            "`echoctl serve` applies it at its next supervisor cycle"
        )

    async def breaker(self, host: str) -> Mapping[str, Any] | None:
        """The stored state of ``host``'s breaker, or None."""
        return await self.writer.submit_async(lambda v: HarvestState(v.catalog).breaker(host))

    async def set_breaker_mode(self, host: str, mode: str) -> Mapping[str, Any] | None:
        """Force the stored breaker; its stored state before (None: none).

        Raises:
            ActuatorUnavailableError: ``defer``. ValueError: an unknown mode.
        """
        self._changing()
        return await self.writer.submit_async(_force_stored, host, mode)

    async def restore_breaker(self, host: str, state: Mapping[str, Any] | None) -> None:
        """Store ``state`` back (None: forget it, so the breaker starts CLOSED).

        Raises:
            ActuatorUnavailableError: ``defer``.
        """
        self._changing()
        await self.writer.submit_async(_restore_stored, host, state)

    async def rebuild(self, index: str | None) -> list[str]:
        """As :meth:`VaultActions.rebuild`, unless ``defer``.

        Raises:
            ActuatorUnavailableError: ``defer``.
        """
        self._changing()
        return await super().rebuild(index)

    async def free_disk(
        self, reports: bool, orphans: bool, *, dry_run: bool
    ) -> list[dict[str, Any]]:
        """As :meth:`VaultActions.free_disk`, unless ``defer`` (a dry run is always allowed).

        Raises:
            ActuatorUnavailableError: ``defer`` and not ``dry_run``.
        """
        if not dry_run:
            self._changing()
        return await super().free_disk(reports, orphans, dry_run=dry_run)


def _schedules(vault: Vault) -> dict[str, Any]:
    return dict(ScheduleStore(vault.catalog).all())


def _change_schedule(vault: Vault, feed: str, change: dict[str, Any]) -> None:
    """A writer job: change one stored schedule row.

    Raises:
        KeyError: ``feed`` has no stored schedule.
    """
    with vault.writing():
        store = ScheduleStore(vault.catalog)
        row = store.all().get(feed)
        if row is None:
            raise KeyError(f"feed {feed} has no stored schedule (a service never scheduled it)")
        store.put(replace(row, **change))


def _force_stored(vault: Vault, host: str, mode: str) -> dict[str, Any] | None:
    with vault.writing():
        state = HarvestState(vault.catalog)
        raw = state.breaker(host)
        config = FetchConfig().breaker
        breaker = (
            CircuitBreaker(host, config)
            if raw is None
            else CircuitBreaker.from_state(host, config, raw)
        )
        breaker.set_mode(mode)
        state.put_breaker(host, breaker.to_state(), format_timestamp(time.time_ns()))
        return raw


def _restore_stored(vault: Vault, host: str, saved: Mapping[str, Any] | None) -> None:
    with vault.writing():
        state = HarvestState(vault.catalog)
        if saved is None:
            state.delete_breaker(host)
        else:
            state.put_breaker(host, dict(saved), format_timestamp(time.time_ns()))
