"""Interventions: typed actions the supervisor plans, with validate, dry run, execute and rollback.

The supervisor (:mod:`echo_archive.control.supervisor`) plans
:class:`Proposal` s; the :class:`InterventionManager` validates each one,
runs the low-risk ones within the hourly budget, holds the high-risk ones
for approval, measures each one's effect on its target signal after
``assess_after`` seconds and rolls back the ones that made it worse. Every
step is an ``intervention`` entry in the log
(:class:`~echo_archive.schemas.InterventionMeta`; DESIGN.md invariant 10),
committed through the vault's writer before the step's state is stored.

Kinds (:data:`KINDS`; risk as in :data:`echo_archive.config.INTERVENTION_RISKS`):

==================  =====  ===============  =============================================
kind                risk   target           what it does (its rollback)
==================  =====  ===============  =============================================
``pause_feed``      low    feed             pause its schedule (resume it)
``resume_feed``     low    feed             resume a paused feed (pause it again);
                                            refused while the feed is quarantined
``stretch_interval`` low   feed             multiply its interval's stretch by
                                            ``factor`` in (1, 8], at most 64 (the old stretch)
``lower_host_rate`` low    host             multiply the host's request-rate ceiling by
                                            ``factor`` in (0, 1), never below ``floor``
                                            (default :data:`MIN_HOST_RATE`) (the old rate)
``rebuild_index``   low    index or "all"   rebuild a derived index (DESIGN.md invariant
                                            8; nothing to undo)
``run_verify``      low    ``vault``        verify a ``sample`` of the vault (reads only)
``force_breaker``   high   host             ``state`` forced_open (resilience4j
                                            FORCED_OPEN), forced_closed (DISABLED) or
                                            auto (CLOSED out of a forced state)
                                            (the saved breaker state)
``quarantine_feed`` high   feed             pause a feed whose responses keep failing to
                                            parse, marked quarantined until an operator
                                            releases it (``rollback``); never rolled
                                            back on its own
``free_disk``       high   ``vault``        retention through :mod:`echo_archive.control.repair`'s
                                            destructive repairs: ``reports`` (prune_reports)
                                            and/or ``orphans`` (prune_orphans); irreversible
==================  =====  ===============  =============================================

Life of an intervention (:class:`State`)::

    propose ─► planned ─┬─(low risk, in [supervisor] auto, within budget)─► executed
                        ├─(low risk, over budget)─► deferred ─(budget allows)─► executed
                        └─(high risk, or not auto)─► pending_approval
    pending_approval ─approve─► approved ─► executed      ─reject─► rejected
    executed ─(assess_after passed)─► assessed           (effect measured: better,
                                                           unchanged, unmeasured)
             └─(effect worse, reversible)─► rolled_back   (automatic rollback)
    executed | assessed ─rollback─► rolled_back           (an operator)
    any execution that raises ─► failed

An action the actuator cannot take where it runs (``echoctl interventions
approve`` with no service: a host's rate lives in the running service's
fetch engine) raises :class:`ActuatorUnavailableError`: the intervention
stays ``approved`` (or ``rollback_requested``) and the service executes it
at its next cycle (:meth:`InterventionManager.run_pending`).

The effect rule (:func:`measure_effect`): with ``before`` the signal's value
at planning (``Proposal.evidence[signal]``) and ``after`` its value when
assessed, the change *against* the goal is ``after - before`` (goal
``down``) or ``before - after`` (goal ``up``). It is ``worse`` when that
exceeds ``rollback_margin × max(|before|, |after|)`` (a relative margin, so
rates, latencies and byte counts are judged alike), ``better`` when the
change toward the goal exceeds the same margin, else ``unchanged``;
``unmeasured`` when either value is unknown.

State lives in the operational table ``interventions`` of the catalog (one
JSON document per intervention, by id): it survives a restart; closed
interventions are kept :data:`RETENTION` seconds there (for ever in the log).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Final, Literal, Protocol, TypeAlias

import structlog

from echo_archive.config import FEED_NAME_PATTERN, INTERVENTION_RISKS, SupervisorSection
from echo_archive.control.repair import json_object
from echo_archive.errors import EchoError, NotFoundError, RequestError
from echo_archive.events import EventBus
from echo_archive.harvest.breaker import BREAKER_MODES
from echo_archive.schemas import InterventionMeta
from echo_archive.terminal import inert
from echo_archive.vault.catalog import Catalog
from echo_archive.vault.entry import format_timestamp
from echo_archive.vault.vault import Record, Vault
from echo_archive.vault.writer import VaultWriter

__all__ = [
    "CLOSED_STATES",
    "INTERVENTIONS_DDL",
    "KINDS",
    "MAX_STRETCH",
    "MIN_HOST_RATE",
    "RETENTION",
    "Actuator",
    "ActuatorUnavailableError",
    "FeedControl",
    "Intervention",
    "InterventionContext",
    "InterventionError",
    "InterventionKind",
    "InterventionManager",
    "InterventionOptions",
    "InterventionStateError",
    "InterventionTable",
    "Proposal",
    "Risk",
    "State",
    "get_intervention",
    "list_interventions",
    "measure_effect",
]

log = structlog.get_logger("echo_archive.control.interventions")


class Risk(StrEnum):
    """How much an intervention can hurt: low ones run on their own, high ones wait for approval."""

    LOW = "low"
    HIGH = "high"


@dataclass(frozen=True, slots=True)
class Proposal:
    """One intervention the supervisor wants, before validation.

    Attributes:
        kind: the intervention kind (``pause_feed``, ``resume_feed``,
            ``stretch_interval``, ``lower_host_rate``, ``force_breaker``,
            ``quarantine_feed``, ``rebuild_index``, ``run_verify``,
            ``free_disk``).
        target: what it acts on: a feed name, a host, an index name, or
            ``"vault"``.
        params: the kind's parameters (``{"factor": 2.0}``, ``{"state":
            "forced_open"}``...), JSON scalars only.
        reason: why, in one sentence a person reads in ``echoctl
            interventions list`` (never source text).
        signal: the key of the signal it should improve, as the
            supervisor's observations name it (``host_error_rate:example.org``).
        goal: whether that signal should go ``down`` or ``up``.
        assess_after: seconds after execution at which the effect is measured.
        evidence: the signal values that led to it (name -> value).
    """

    kind: str
    target: str
    params: dict[str, float | int | str | bool] = field(default_factory=dict)
    reason: str = ""
    signal: str = ""
    goal: Literal["down", "up"] = "down"
    assess_after: float = 600.0
    evidence: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------------------- errors


class InterventionError(RequestError):
    """A proposal or a request about an intervention is not valid (the message names what).

    Raised before anything is written: an unknown kind, a bad target or
    parameter, an action with nothing to do (pausing a paused feed).
    """


class InterventionStateError(EchoError):
    """The intervention is not in a state that allows the step (approving a rejected one...)."""


class ActuatorUnavailableError(InterventionError):
    """The actuator cannot take this action where it runs; the running service will."""


# ---------------------------------------------------------------------------- constants

MAX_STRETCH: Final = 64.0
"""A feed's interval is stretched at most this many times (its schedule's ``stretch``)."""

MAX_STRETCH_FACTOR: Final = 8.0
"""One ``stretch_interval`` multiplies the stretch by at most this."""

MIN_HOST_RATE: Final = 1.0 / 600
"""The default floor of ``lower_host_rate``: one request every 10 minutes (requests/s)."""

RETENTION: Final = 30 * 86400.0
"""Seconds a closed intervention stays in the operational table (its entries stay for ever)."""

BUDGET_WINDOW: Final = 3600.0
"""The sliding window of ``[supervisor] interventions_per_hour``, seconds."""

_MAX_TEXT: Final = 500
_HOST = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.?)+(?::[0-9]{1,5})?$")
_HOST6 = re.compile(r"^\[[0-9a-f:.]{2,45}\](?::[0-9]{1,5})?$")
_SIGNAL = re.compile(r"^[A-Za-z0-9_.:/\[\]@-]{0,200}$")


class State(StrEnum):
    """Where an intervention is in its life (see the module's diagram)."""

    PLANNED = "planned"
    PENDING_APPROVAL = "pending_approval"
    DEFERRED = "deferred"
    APPROVED = "approved"
    EXECUTED = "executed"
    ROLLBACK_REQUESTED = "rollback_requested"
    ASSESSED = "assessed"
    ROLLED_BACK = "rolled_back"
    REJECTED = "rejected"
    FAILED = "failed"


CLOSED_STATES: Final = frozenset({State.ASSESSED, State.ROLLED_BACK, State.REJECTED, State.FAILED})
"""States in which an intervention has ended (``on_closed`` was called)."""


# ---------------------------------------------------------------------------- the actuator


@dataclass(frozen=True, slots=True)
class FeedControl:
    """What an intervention reads of one feed's schedule.

    Attributes:
        feed: the feed's name.
        paused: its schedule is paused.
        stretch: its interval's multiplier (>= 1).
    """

    feed: str
    paused: bool
    stretch: float


class Actuator(Protocol):
    """What interventions act on: feeds' schedules, hosts' rates, breakers, the vault's upkeep.

    Implemented for the running service by
    :class:`echo_archive.service.actuator.ServiceActuator` (the scheduler, the
    fetch engine's host limits and breakers, the library services) and, for
    ``echoctl interventions`` with no service, by
    :class:`echo_archive.service.actuator.StoredActuator` (the stored
    schedules and breakers). A method that cannot act where it runs raises
    :class:`ActuatorUnavailableError`. Rates are requests/s; times seconds.

    Attributes:
        live: True when it acts on a running service's live state.
    """

    live: bool

    async def feed(self, name: str) -> FeedControl | None:
        """The schedule of feed ``name``, or None when it is not scheduled."""
        ...

    async def set_paused(self, feed: str, paused: bool) -> None:
        """Pause or resume ``feed`` (persisted)."""
        ...

    async def set_stretch(self, feed: str, stretch: float) -> None:
        """Set ``feed``'s interval stretch (>= 1, persisted)."""
        ...

    async def host_rate(self, host: str) -> float:
        """The request-rate ceiling of ``host`` now, requests/s."""
        ...

    async def set_host_rate(self, host: str, rate: float) -> float:
        """Set ``host``'s request-rate ceiling; returns the previous one (requests/s)."""
        ...

    async def breaker(self, host: str) -> Mapping[str, Any] | None:
        """The state of ``host``'s breaker (``CircuitBreaker.to_state``), or None (never used)."""
        ...

    async def set_breaker_mode(self, host: str, mode: str) -> Mapping[str, Any] | None:
        """Force ``host``'s breaker (:data:`~echo_archive.harvest.breaker.BREAKER_MODES`).

        Returns its state before (None: it had none).
        """
        ...

    async def restore_breaker(self, host: str, state: Mapping[str, Any] | None) -> None:
        """Put ``host``'s breaker back as ``state`` (None: a fresh CLOSED breaker)."""
        ...

    async def indexes(self) -> list[str]:
        """The names of the vault's derived indexes."""
        ...

    async def rebuild(self, index: str | None) -> list[str]:
        """Rebuild one derived index (None: all); returns the names rebuilt."""
        ...

    async def verify(self, sample: float) -> dict[str, Any]:
        """Verify the vault, re-hashing a ``sample`` of blobs (reads only).

        Returns ``{"ok", "problems", "entries", "blobs", "first_problems"}``.
        """
        ...

    async def free_disk(
        self, reports: bool, orphans: bool, *, dry_run: bool
    ) -> list[dict[str, Any]]:
        """Plan (``dry_run``) or run the destructive retention repairs chosen.

        Returns the :class:`~echo_archive.control.repair.RepairOutcome` s as JSON.
        """
        ...


@dataclass(frozen=True, slots=True)
class InterventionContext:
    """What a kind's validate, dry run, execute and rollback read.

    Attributes:
        actuator: what it acts on.
        now: POSIX seconds.
        quarantined: feed -> id of the ``quarantine_feed`` intervention
            holding it (executed or assessed, not rolled back).
    """

    actuator: Actuator
    now: float
    quarantined: Mapping[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------- validation helpers


def _shown(text: object) -> str:
    """Text from outside, for an error message: inert on a terminal and at most 80 characters."""
    value = str(text)
    return inert(value[:80] + ("..." if len(value) > 80 else ""))


def _only(kind: str, params: Mapping[str, Any], allowed: Sequence[str]) -> None:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        names = ", ".join(_shown(u) for u in unknown)
        takes = ", ".join(allowed) if allowed else "none"
        raise InterventionError(f"{kind}: unknown parameter {names} (parameters: {takes})")


def _number(
    kind: str, params: Mapping[str, Any], key: str, default: float | None, lo: float, hi: float
) -> float:
    """``params[key]`` as a finite number in (lo, hi] (``default`` when absent, None: required)."""
    value = params.get(key, default)
    if value is None:
        raise InterventionError(f"{kind}: parameter {key} is required")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InterventionError(f"{kind}: {key} must be a number, got {_shown(repr(value))}")
    if not lo < value <= hi:
        raise InterventionError(f"{kind}: {key} must be in ({lo:g}, {hi:g}], got {value:g}")
    return float(value)


def _flag(kind: str, params: Mapping[str, Any], key: str, default: bool) -> bool:
    value = params.get(key, default)
    if not isinstance(value, bool):
        raise InterventionError(f"{kind}: {key} must be true or false, got {_shown(repr(value))}")
    return value


def _feed_name(kind: str, target: str) -> str:
    if not re.fullmatch(FEED_NAME_PATTERN, target):
        raise InterventionError(
            f"{kind}: target '{_shown(target)}' is not a feed name "
            "(lowercase a-z 0-9 . _ -, at most 64 characters)"
        )
    return target


async def _feed(kind: str, ctx: InterventionContext, target: str) -> FeedControl:
    control = await ctx.actuator.feed(_feed_name(kind, target))
    if control is None:
        raise InterventionError(f"{kind}: no scheduled feed named '{target}'")
    return control


def _host(kind: str, target: str) -> str:
    if len(target) > 260 or not (_HOST.fullmatch(target) or _HOST6.fullmatch(target)):
        raise InterventionError(
            f"{kind}: target '{_shown(target)}' is not a host (a lowercase host name or "
            "address, with :PORT for a non-default port, as `echoctl breakers` names it)"
        )
    return target


def _vault_target(kind: str, target: str) -> None:
    if target != "vault":
        raise InterventionError(f"{kind}: the target must be 'vault', got '{_shown(target)}'")


# ---------------------------------------------------------------------------- the kinds


class InterventionKind(Protocol):
    """One typed intervention.

    Attributes:
        name: its stable snake_case name (a :class:`Proposal`'s ``kind``).
        risk: :class:`Risk`.
        reversible: :meth:`rollback` can undo it.
        auto_rollback: a bad effect rolls it back on its own (else only an
            operator does: ``quarantine_feed``).
        volatile: what it changes lives only in the running service (a
            host's rate in its fetch engine): a restart loses it, and
            :meth:`InterventionManager.reapply` puts it back.
    """

    name: str
    risk: Risk
    reversible: bool
    auto_rollback: bool
    volatile: bool

    async def validate(
        self, ctx: InterventionContext, target: str, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Check ``target`` and ``params`` against the current state; returns the params, completed.

        Raises:
            InterventionError: naming what is wrong (nothing is written).
        """
        ...

    async def dry_run(
        self, ctx: InterventionContext, target: str, params: Mapping[str, Any]
    ) -> str:
        """What it would do, in words (reads only)."""
        ...

    async def execute(
        self, ctx: InterventionContext, target: str, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Do it; returns the JSON-ready state :meth:`rollback` needs (irreversible: what it did).

        Raises:
            ActuatorUnavailableError: the actuator cannot act here (the service will).
            EchoError, OSError, ValueError: it failed.
        """
        ...

    async def rollback(
        self,
        ctx: InterventionContext,
        target: str,
        params: Mapping[str, Any],
        undo: Mapping[str, Any],
    ) -> dict[str, Any]:
        """Undo :meth:`execute` from its ``undo``; returns what was restored.

        Raises:
            InterventionError: the kind is irreversible.
            ActuatorUnavailableError, EchoError, OSError, ValueError: as :meth:`execute`.
        """
        ...

    async def reapply(
        self,
        ctx: InterventionContext,
        target: str,
        params: Mapping[str, Any],
        undo: Mapping[str, Any],
    ) -> bool:
        """Put a volatile change back after a restart; whether there was one to put back.

        Raises:
            ActuatorUnavailableError, EchoError, ValueError: as :meth:`execute`.
        """
        ...


class _Kind:
    """What most kinds share: not volatile (their change is stored), nothing to reapply."""

    volatile: bool = False

    async def reapply(
        self,
        ctx: InterventionContext,
        target: str,
        params: Mapping[str, Any],
        undo: Mapping[str, Any],
    ) -> bool:
        """Nothing: the change is stored (a restart keeps it)."""
        return False


class _Irreversible(_Kind):
    reversible: bool = False
    auto_rollback: bool = False

    name: str

    async def rollback(
        self,
        ctx: InterventionContext,
        target: str,
        params: Mapping[str, Any],
        undo: Mapping[str, Any],
    ) -> dict[str, Any]:
        """Refused: nothing to undo, or it cannot be undone.

        Raises:
            InterventionError: always.
        """
        raise InterventionError(f"{self.name} cannot be rolled back (it has no undo)")


class PauseFeed(_Kind):
    """Pause a feed's schedule: it is not harvested until resumed (its schedule is kept)."""

    name: str = "pause_feed"
    risk: Risk = Risk.LOW
    reversible: bool = True
    auto_rollback: bool = True

    async def validate(
        self, ctx: InterventionContext, target: str, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A scheduled feed that is not paused; no parameters."""
        _only(self.name, params, ())
        if (await _feed(self.name, ctx, target)).paused:
            raise InterventionError(f"pause_feed: feed {target} is already paused")
        return {}

    async def dry_run(
        self, ctx: InterventionContext, target: str, params: Mapping[str, Any]
    ) -> str:
        """``pause feed X ...``."""
        return f"pause feed {target}: no harvest until it is resumed (its schedule is kept)"

    async def execute(
        self, ctx: InterventionContext, target: str, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Pause it; undo ``{"paused": false}``."""
        await ctx.actuator.set_paused(target, True)
        return {"paused": False}

    async def rollback(
        self,
        ctx: InterventionContext,
        target: str,
        params: Mapping[str, Any],
        undo: Mapping[str, Any],
    ) -> dict[str, Any]:
        """Set the pause flag back."""
        paused = bool(undo.get("paused", False))
        await ctx.actuator.set_paused(target, paused)
        return {"paused": paused}


class ResumeFeed(PauseFeed):
    """Resume a paused feed (refused while it is quarantined: release the quarantine instead)."""

    name: str = "resume_feed"

    async def validate(
        self, ctx: InterventionContext, target: str, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A paused, scheduled feed that no quarantine holds; no parameters."""
        _only(self.name, params, ())
        control = await _feed(self.name, ctx, target)
        holder = ctx.quarantined.get(target)
        if holder is not None:
            raise InterventionError(
                f"resume_feed: feed {target} is quarantined by intervention {holder}; release "
                f"it with `echoctl interventions rollback {holder} --reason ...`"
            )
        if not control.paused:
            raise InterventionError(f"resume_feed: feed {target} is not paused")
        return {}

    async def dry_run(
        self, ctx: InterventionContext, target: str, params: Mapping[str, Any]
    ) -> str:
        """``resume feed X``."""
        return f"resume feed {target}: it is harvested again on its schedule"

    async def execute(
        self, ctx: InterventionContext, target: str, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Resume it; undo ``{"paused": true}``."""
        await ctx.actuator.set_paused(target, False)
        return {"paused": True}


class StretchInterval(_Kind):
    """Stretch a feed's interval by ``factor`` (its ``stretch``, at most :data:`MAX_STRETCH`)."""

    name: str = "stretch_interval"
    risk: Risk = Risk.LOW
    reversible: bool = True
    auto_rollback: bool = True

    async def validate(
        self, ctx: InterventionContext, target: str, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """``factor`` in (1, 8] (default 2); the stretch not already at its maximum."""
        _only(self.name, params, ("factor",))
        factor = _number(self.name, params, "factor", 2.0, 1.0, MAX_STRETCH_FACTOR)
        control = await _feed(self.name, ctx, target)
        if control.stretch >= MAX_STRETCH:
            raise InterventionError(
                f"stretch_interval: feed {target} is already stretched {control.stretch:g}x "
                f"(at most {MAX_STRETCH:g}x)"
            )
        return {"factor": factor}

    async def dry_run(
        self, ctx: InterventionContext, target: str, params: Mapping[str, Any]
    ) -> str:
        """``stretch feed X's interval from 1x to 2x``."""
        control = await _feed(self.name, ctx, target)
        new = min(control.stretch * float(params["factor"]), MAX_STRETCH)
        return f"stretch the interval of feed {target} from {control.stretch:g}x to {new:g}x"

    async def execute(
        self, ctx: InterventionContext, target: str, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Stretch it; undo ``{"stretch": old}``."""
        control = await _feed(self.name, ctx, target)
        await ctx.actuator.set_stretch(
            target, min(control.stretch * float(params["factor"]), MAX_STRETCH)
        )
        return {"stretch": control.stretch}

    async def rollback(
        self,
        ctx: InterventionContext,
        target: str,
        params: Mapping[str, Any],
        undo: Mapping[str, Any],
    ) -> dict[str, Any]:
        """Set the old stretch back."""
        stretch = max(1.0, float(undo.get("stretch", 1.0)))
        await ctx.actuator.set_stretch(target, stretch)
        return {"stretch": stretch}


class LowerHostRate(_Kind):
    """Lower a host's request-rate ceiling by ``factor``, never below ``floor`` (requests/s)."""

    name: str = "lower_host_rate"
    risk: Risk = Risk.LOW
    reversible: bool = True
    auto_rollback: bool = True

    async def validate(
        self, ctx: InterventionContext, target: str, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """``factor`` in (0, 1) (default 0.5), ``floor`` > 0 (default :data:`MIN_HOST_RATE`)."""
        _only(self.name, params, ("factor", "floor"))
        _host(self.name, target)
        factor = _number(self.name, params, "factor", 0.5, 0.0, 1.0)
        if factor >= 1.0:
            raise InterventionError("lower_host_rate: factor must be below 1 (it lowers)")
        floor = _number(self.name, params, "floor", MIN_HOST_RATE, 0.0, 1e6)
        rate = await ctx.actuator.host_rate(target)
        if rate <= floor:
            raise InterventionError(
                f"lower_host_rate: host {target} is at {rate:g} requests/s, "
                f"not above the floor {floor:g}"
            )
        return {"factor": factor, "floor": floor}

    async def dry_run(
        self, ctx: InterventionContext, target: str, params: Mapping[str, Any]
    ) -> str:
        """``lower the request rate of host H from 1 to 0.5 requests/s``."""
        rate = await ctx.actuator.host_rate(target)
        new = max(rate * float(params["factor"]), float(params["floor"]))
        return (
            f"lower the request rate of host {target} from {rate:g} to {new:g} requests/s "
            f"(floor {float(params['floor']):g})"
        )

    volatile: bool = True

    async def execute(
        self, ctx: InterventionContext, target: str, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Lower it; undo ``{"rate": old, "applied": new}`` (requests/s)."""
        rate = await ctx.actuator.host_rate(target)
        new = max(rate * float(params["factor"]), float(params["floor"]))
        old = await ctx.actuator.set_host_rate(target, new)
        return {"rate": old, "applied": new}

    async def reapply(
        self,
        ctx: InterventionContext,
        target: str,
        params: Mapping[str, Any],
        undo: Mapping[str, Any],
    ) -> bool:
        """Set the host's ceiling to the rate applied (a new fetch engine starts configured)."""
        applied = undo.get("applied")
        if not isinstance(applied, int | float) or isinstance(applied, bool):
            return False
        await ctx.actuator.set_host_rate(target, float(applied))
        return True

    async def rollback(
        self,
        ctx: InterventionContext,
        target: str,
        params: Mapping[str, Any],
        undo: Mapping[str, Any],
    ) -> dict[str, Any]:
        """Set the old ceiling back."""
        rate = float(undo["rate"])
        await ctx.actuator.set_host_rate(target, rate)
        return {"rate": rate}


_MODE_WORDS: Final = {
    "forced_open": "forced open (FORCED_OPEN: every request refused)",
    "forced_closed": "forced closed (DISABLED: every request allowed, nothing counted)",
    "auto": "back to its own rules (CLOSED, fresh counts)",
}


def _breaker_state(raw: Mapping[str, Any] | None) -> str:
    return "CLOSED" if raw is None else str(raw.get("state", "CLOSED"))


class ForceBreaker(_Kind):
    """Force a host's breaker open or closed, or give it back to its rules (resilience4j)."""

    name: str = "force_breaker"
    risk: Risk = Risk.HIGH
    reversible: bool = True
    auto_rollback: bool = True

    async def validate(
        self, ctx: InterventionContext, target: str, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """``state``: ``forced_open``, ``forced_closed`` or ``auto``, different from now."""
        _only(self.name, params, ("state",))
        _host(self.name, target)
        mode = params.get("state")
        if mode not in BREAKER_MODES:
            raise InterventionError(
                f"force_breaker: state must be one of {', '.join(BREAKER_MODES)}, "
                f"got {_shown(repr(mode))}"
            )
        now = _breaker_state(await ctx.actuator.breaker(target))
        if (mode, now) in (("forced_open", "FORCED_OPEN"), ("forced_closed", "DISABLED")) or (
            mode == "auto" and now not in ("FORCED_OPEN", "DISABLED")
        ):
            raise InterventionError(f"force_breaker: the breaker of {target} is already {now}")
        return {"state": str(mode)}

    async def dry_run(
        self, ctx: InterventionContext, target: str, params: Mapping[str, Any]
    ) -> str:
        """``force the breaker of host H forced open (...) (now CLOSED)``."""
        now = _breaker_state(await ctx.actuator.breaker(target))
        return f"set the breaker of host {target} {_MODE_WORDS[str(params['state'])]} (now {now})"

    async def execute(
        self, ctx: InterventionContext, target: str, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Force it; undo ``{"breaker": the saved state before, or null}``."""
        before = await ctx.actuator.set_breaker_mode(target, str(params["state"]))
        return {"breaker": None if before is None else dict(before)}

    async def rollback(
        self,
        ctx: InterventionContext,
        target: str,
        params: Mapping[str, Any],
        undo: Mapping[str, Any],
    ) -> dict[str, Any]:
        """Restore the saved state."""
        saved = undo.get("breaker")
        await ctx.actuator.restore_breaker(target, saved if isinstance(saved, Mapping) else None)
        return {"state": _breaker_state(saved if isinstance(saved, Mapping) else None)}


class QuarantineFeed(PauseFeed):
    """Pause a feed whose responses keep failing to parse, until an operator releases it.

    Released only by rolling it back (``echoctl interventions rollback ID``),
    never on its own; ``resume_feed`` is refused while it holds.
    """

    name: str = "quarantine_feed"
    risk: Risk = Risk.HIGH
    auto_rollback: bool = False

    async def validate(
        self, ctx: InterventionContext, target: str, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A scheduled feed not already quarantined; no parameters."""
        _only(self.name, params, ())
        await _feed(self.name, ctx, target)
        holder = ctx.quarantined.get(target)
        if holder is not None:
            raise InterventionError(
                f"quarantine_feed: feed {target} is already quarantined by {holder}"
            )
        return {}

    async def dry_run(
        self, ctx: InterventionContext, target: str, params: Mapping[str, Any]
    ) -> str:
        """``quarantine feed X ...``."""
        return (
            f"quarantine feed {target}: pause it and keep it paused until an operator releases "
            "it (`echoctl interventions rollback ID`)"
        )

    async def execute(
        self, ctx: InterventionContext, target: str, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Pause it; undo ``{"paused": whether it was paused before}``."""
        control = await _feed(self.name, ctx, target)
        await ctx.actuator.set_paused(target, True)
        return {"paused": control.paused}


class RebuildIndex(_Irreversible):
    """Rebuild a derived index (or ``all``) from the log and the blobs (DESIGN.md invariant 8)."""

    name: str = "rebuild_index"
    risk: Risk = Risk.LOW

    async def validate(
        self, ctx: InterventionContext, target: str, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The target is an attached derived index, or ``all``; no parameters."""
        _only(self.name, params, ())
        names = await ctx.actuator.indexes()
        if target != "all" and target not in names:
            raise InterventionError(
                f"rebuild_index: no derived index named '{_shown(target)}' "
                f"(indexes: {', '.join(names) or 'none'}, or all)"
            )
        return {}

    async def dry_run(
        self, ctx: InterventionContext, target: str, params: Mapping[str, Any]
    ) -> str:
        """``rebuild the derived index X from the log and the blobs``."""
        what = "every derived index" if target == "all" else f"the derived index {target}"
        return f"rebuild {what} from the log and the blobs (evidence is untouched)"

    async def execute(
        self, ctx: InterventionContext, target: str, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Rebuild; ``{"rebuilt": [names]}``."""
        return {"rebuilt": await ctx.actuator.rebuild(None if target == "all" else target)}


class RunVerify(_Irreversible):
    """Verify the vault now, re-hashing a ``sample`` of the blobs (reads only)."""

    name: str = "run_verify"
    risk: Risk = Risk.LOW

    async def validate(
        self, ctx: InterventionContext, target: str, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Target ``vault``; ``sample`` in (0, 1] (default 0.05)."""
        _only(self.name, params, ("sample",))
        _vault_target(self.name, target)
        return {"sample": _number(self.name, params, "sample", 0.05, 0.0, 1.0)}

    async def dry_run(
        self, ctx: InterventionContext, target: str, params: Mapping[str, Any]
    ) -> str:
        """``verify the vault ...``."""
        return (
            f"verify the vault: every entry, log hash and checkpoint, "
            f"{float(params['sample']):.0%} of the blobs (reads only)"
        )

    async def execute(
        self, ctx: InterventionContext, target: str, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Verify; the report's summary."""
        return await ctx.actuator.verify(float(params["sample"]))


class FreeDisk(_Irreversible):
    """Free disk by retention: :mod:`~echo_archive.control.repair`'s destructive repairs.

    ``reports`` runs ``prune_reports`` (saved harvest reports beyond ``[health]
    report_retention``), ``orphans`` runs ``prune_orphans`` (blobs no entry
    names, past ``[health] orphan_grace``; this build can plan it only).
    Always high risk: the dry run is shown and it waits for approval.
    """

    name: str = "free_disk"
    risk: Risk = Risk.HIGH

    async def validate(
        self, ctx: InterventionContext, target: str, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Target ``vault``; ``reports`` (true), ``orphans`` (false); something to free."""
        _only(self.name, params, ("reports", "orphans"))
        _vault_target(self.name, target)
        reports = _flag(self.name, params, "reports", True)
        orphans = _flag(self.name, params, "orphans", False)
        if not (reports or orphans):
            raise InterventionError("free_disk: choose reports, orphans or both")
        if not await ctx.actuator.free_disk(reports, orphans, dry_run=True):
            raise InterventionError(
                "free_disk: nothing to free (saved reports within retention, no orphan blobs)"
            )
        return {"reports": reports, "orphans": orphans}

    async def dry_run(
        self, ctx: InterventionContext, target: str, params: Mapping[str, Any]
    ) -> str:
        """What the repairs' plans say, in words."""
        plans = await ctx.actuator.free_disk(
            bool(params["reports"]), bool(params["orphans"]), dry_run=True
        )
        words = []
        for outcome in plans:
            plan = outcome.get("plan", {})
            if outcome.get("name") == "prune_reports":
                words.append(
                    f"delete {plan.get('reports', 0)} saved harvest reports "
                    f"(keeping the newest {plan.get('keep', 0)})"
                )
            elif outcome.get("name") == "prune_orphans":
                words.append(
                    f"prune {plan.get('orphans', 0)} orphan blobs (this build can plan it "
                    "only: the blob stores cannot delete yet)"
                )
        return "free disk: " + "; ".join(words) + " (irreversible)"

    async def execute(
        self, ctx: InterventionContext, target: str, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Run the repairs; ``{"repairs": [outcomes]}``.

        Raises:
            InterventionError: none of them was done (each one's error named).
        """
        outcomes = await ctx.actuator.free_disk(
            bool(params["reports"]), bool(params["orphans"]), dry_run=False
        )
        if not any(o.get("status") == "done" for o in outcomes):
            errors = "; ".join(f"{o.get('name')}: {o.get('error')}" for o in outcomes)
            raise InterventionError(f"free_disk: nothing was freed ({errors or 'nothing to do'})")
        return {"repairs": outcomes}


KINDS: Final[Mapping[str, InterventionKind]] = {
    k.name: k
    for k in (
        PauseFeed(),
        ResumeFeed(),
        StretchInterval(),
        LowerHostRate(),
        ForceBreaker(),
        QuarantineFeed(),
        RebuildIndex(),
        RunVerify(),
        FreeDisk(),
    )
}
"""Every intervention kind, by name (risks: :data:`echo_archive.config.INTERVENTION_RISKS`)."""


def _kind(name: object) -> InterventionKind:
    found = KINDS.get(name) if isinstance(name, str) else None
    if found is None:
        raise InterventionError(
            f"unknown intervention kind '{_shown(name)}' (kinds: {', '.join(KINDS)})"
        )
    return found


# ---------------------------------------------------------------------------- the record


@dataclass(frozen=True, slots=True)
class Intervention:
    """One intervention, as stored and as the CLI and the API show it.

    Attributes:
        id: short and stable (10 hex digits of SHA-256 over the proposal and
            its planning time).
        kind, target, params: what it does (params as validated).
        risk: :class:`Risk` value.
        reason, signal, goal, evidence: from the :class:`Proposal`.
        assess_after: seconds after execution its effect is measured.
        state: :class:`State` value.
        dry_run: what it does, in words.
        created_at, updated_at: POSIX seconds.
        created_by: who proposed it (``supervisor``...).
        auto: it ran (or is to run) without approval, within the budget.
        decided_by, decision_reason: who approved, rejected or asked for the
            rollback, and why (empty when nobody did).
        executed_at, assess_at: POSIX seconds, or None.
        undo: what :meth:`InterventionKind.execute` returned.
        result: what the last action did (the rollback's restore...).
        effect: the measured effect (:func:`measure_effect`), or None.
        error: the last failure, or None.
        entries: the log indexes of its ``intervention`` entries, in order.
    """

    id: str
    kind: str
    target: str
    params: Mapping[str, Any]
    risk: str
    reason: str
    signal: str
    goal: str
    evidence: Mapping[str, float]
    assess_after: float
    state: str
    dry_run: str
    created_at: float
    updated_at: float
    created_by: str
    auto: bool = False
    decided_by: str = ""
    decision_reason: str = ""
    executed_at: float | None = None
    assess_at: float | None = None
    undo: Mapping[str, Any] = field(default_factory=dict)
    result: Mapping[str, Any] = field(default_factory=dict)
    effect: Mapping[str, Any] | None = None
    error: str | None = None
    entries: tuple[int, ...] = ()

    @property
    def closed(self) -> bool:
        """It has ended (assessed, rolled back, rejected, failed)."""
        return self.state in CLOSED_STATES

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping of the attributes (times in POSIX seconds, ``entries`` a list)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "target": self.target,
            "params": dict(self.params),
            "risk": self.risk,
            "reason": self.reason,
            "signal": self.signal,
            "goal": self.goal,
            "evidence": dict(self.evidence),
            "assess_after": self.assess_after,
            "state": self.state,
            "dry_run": self.dry_run,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "created_by": self.created_by,
            "auto": self.auto,
            "decided_by": self.decided_by,
            "decision_reason": self.decision_reason,
            "executed_at": self.executed_at,
            "assess_at": self.assess_at,
            "undo": dict(self.undo),
            "result": dict(self.result),
            "effect": None if self.effect is None else dict(self.effect),
            "error": self.error,
            "entries": list(self.entries),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Intervention:
        """Read :meth:`to_json` output.

        Raises:
            KeyError, TypeError, ValueError: ``doc`` is not one.
        """
        effect = doc.get("effect")
        return cls(
            id=str(doc["id"]),
            kind=str(doc["kind"]),
            target=str(doc["target"]),
            params=dict(doc["params"]),
            risk=str(doc["risk"]),
            reason=str(doc["reason"]),
            signal=str(doc["signal"]),
            goal=str(doc["goal"]),
            evidence={str(k): float(v) for k, v in dict(doc["evidence"]).items()},
            assess_after=float(doc["assess_after"]),
            state=str(State(doc["state"])),
            dry_run=str(doc["dry_run"]),
            created_at=float(doc["created_at"]),
            updated_at=float(doc["updated_at"]),
            created_by=str(doc["created_by"]),
            auto=bool(doc.get("auto", False)),
            decided_by=str(doc.get("decided_by", "")),
            decision_reason=str(doc.get("decision_reason", "")),
            executed_at=None if doc.get("executed_at") is None else float(doc["executed_at"]),
            assess_at=None if doc.get("assess_at") is None else float(doc["assess_at"]),
            undo=dict(doc.get("undo") or {}),
            result=dict(doc.get("result") or {}),
            effect=None if effect is None else dict(effect),
            error=None if doc.get("error") is None else str(doc["error"]),
            entries=tuple(int(i) for i in doc.get("entries", ())),
        )


INTERVENTIONS_DDL: Final = """
CREATE TABLE IF NOT EXISTS interventions(
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    doc TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
) WITHOUT ROWID
"""


class InterventionTable:
    """Reads and writes the operational table ``interventions`` of one catalog.

    Operational, not derived (DESIGN.md invariant 8): the log holds every
    step; the table holds where each intervention is, so that a restart
    resumes it. Created by the first writer that uses it; a reader of a
    vault without it sees no intervention.

    Args:
        catalog: the vault's catalog (the writer's, inside the writer lock, to write).

    Raises:
        StorageError: a writer's catalog cannot create the table.
    """

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        present = "interventions" in catalog.tables()
        if not catalog.readonly and not present:
            catalog.create_tables(INTERVENTIONS_DDL)
            present = True
        self._present = present

    def all(self) -> list[Intervention]:
        """Every stored intervention, oldest first (rows that do not parse are skipped)."""
        if not self._present:
            return []
        found = []
        for (raw,) in self._catalog.query("SELECT doc FROM interventions ORDER BY created_at, id"):
            try:
                found.append(Intervention.from_json(json.loads(raw)))
            except (KeyError, TypeError, ValueError):
                continue  # operational: a row a newer build wrote is skipped, not fatal
        return found

    def get(self, iv_id: str) -> Intervention | None:
        """The intervention ``iv_id``, or None."""
        if not self._present:
            return None
        row = self._catalog.query_one("SELECT doc FROM interventions WHERE id = ?", (iv_id,))
        if row is None:
            return None
        try:
            return Intervention.from_json(json.loads(row[0]))
        except (KeyError, TypeError, ValueError):
            return None

    def put(self, iv: Intervention) -> None:
        """Store ``iv``; forget closed ones last updated :data:`RETENTION` seconds before it."""
        with self._catalog.transaction(f"storing intervention {iv.id}"):
            self._catalog.execute(
                "INSERT INTO interventions(id, state, doc, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET state = excluded.state, "
                "doc = excluded.doc, updated_at = excluded.updated_at",
                (
                    iv.id,
                    iv.state,
                    json.dumps(iv.to_json(), sort_keys=True),
                    iv.created_at,
                    iv.updated_at,
                ),
            )
            marks = ",".join("?" * len(CLOSED_STATES))
            self._catalog.execute(
                f"DELETE FROM interventions WHERE state IN ({marks}) AND updated_at < ?",  # noqa: S608 - only ? marks
                (*sorted(CLOSED_STATES), iv.updated_at - RETENTION),
            )


def list_interventions(vault: Vault, state: str | None = None) -> list[Intervention]:
    """The stored interventions (in ``state`` only, when given), oldest first; reads only.

    Raises:
        InterventionError: ``state`` is not a :class:`State` value.
    """
    if state is not None and state not in set(State):
        raise InterventionError(
            f"unknown state '{_shown(state)}' (states: {', '.join(s.value for s in State)})"
        )
    found = InterventionTable(vault.catalog).all()
    return [iv for iv in found if state is None or iv.state == state]


def get_intervention(vault: Vault, iv_id: str) -> Intervention:
    """The intervention ``iv_id``; reads only.

    Raises:
        NotFoundError: no intervention has that id.
    """
    found = InterventionTable(vault.catalog).get(iv_id)
    if found is None:
        raise NotFoundError(
            f"no intervention with id '{_shown(iv_id)}' (see `echoctl interventions list`)"
        )
    return found


# ---------------------------------------------------------------------------- the effect


def measure_effect(
    before: float | None, after: float | None, goal: str, margin: float
) -> dict[str, Any]:
    """The effect of an intervention on its signal (the rule is in the module docstring).

    Args:
        before: the signal's value at planning, or None.
        after: its value now, or None.
        goal: ``down`` or ``up``.
        margin: ``[supervisor] rollback_margin`` (a fraction, >= 0).

    Returns:
        ``{"before", "after", "change" (after - before, or None), "margin",
        "verdict": "better" | "unchanged" | "worse" | "unmeasured"}``.
    """
    doc: dict[str, Any] = {"before": before, "after": after, "change": None, "margin": margin}
    if before is None or after is None or not (math.isfinite(before) and math.isfinite(after)):
        return {**doc, "verdict": "unmeasured"}
    change = after - before
    against = change if goal == "down" else -change
    threshold = margin * max(abs(before), abs(after))
    verdict = "worse" if against > threshold else "better" if -against > threshold else "unchanged"
    return {**doc, "change": change, "verdict": verdict}


# ---------------------------------------------------------------------------- the manager


@dataclass(frozen=True, slots=True)
class InterventionOptions:
    """How the manager runs interventions (``[supervisor]`` of ``echo.toml``).

    Attributes:
        per_hour: at most this many run on their own in any 3600 s
            (``interventions_per_hour``); 0 defers every automatic one.
        auto: the kinds that may run without approval (low-risk ones only).
        rollback_margin: see :func:`measure_effect`.
    """

    per_hour: int = 6
    auto: frozenset[str] = frozenset(k for k, r in INTERVENTION_RISKS.items() if r == "low")
    rollback_margin: float = 0.1

    @classmethod
    def from_config(cls, section: SupervisorSection) -> InterventionOptions:
        """The options of ``[supervisor]``."""
        return cls(
            per_hour=section.interventions_per_hour,
            auto=frozenset(section.auto),
            rollback_margin=section.rollback_margin,
        )


_Interventions: TypeAlias = list[Intervention]
"""A list of interventions (the manager's ``list`` method shadows the builtin in its class)."""


def _new_id(proposal: Proposal, at: float, taken: set[str]) -> str:
    seed = json.dumps(
        [proposal.kind, proposal.target, proposal.params, proposal.signal, repr(at)],
        sort_keys=True,
        default=str,
    )
    n = 0
    while True:
        iv_id = hashlib.sha256(f"{seed}/{n}".encode()).hexdigest()[:10]
        if iv_id not in taken:
            return iv_id
        n += 1


def _check_proposal(p: Proposal) -> InterventionKind:
    """The proposal's kind, after checking its generic fields (before any I/O)."""
    kind = _kind(p.kind)
    if not isinstance(p.target, str) or not p.target:
        raise InterventionError(f"{kind.name}: the target must be a non-empty string")
    if not isinstance(p.params, Mapping) or not all(isinstance(k, str) for k in p.params):
        raise InterventionError(f"{kind.name}: params must be a mapping of names to values")
    for key, value in p.params.items():
        if not isinstance(value, str | int | float | bool) or (
            isinstance(value, float) and not math.isfinite(value)
        ):
            raise InterventionError(
                f"{kind.name}: parameter {_shown(key)} must be a JSON scalar, "
                f"got {_shown(repr(value))}"
            )
    if not isinstance(p.reason, str) or len(p.reason) > _MAX_TEXT:
        raise InterventionError(
            f"{kind.name}: the reason must be text of at most {_MAX_TEXT} characters"
        )
    if not isinstance(p.signal, str) or not _SIGNAL.fullmatch(p.signal):
        raise InterventionError(f"{kind.name}: signal '{_shown(p.signal)}' is not a signal key")
    if p.goal not in ("down", "up"):
        raise InterventionError(
            f"{kind.name}: goal must be 'down' or 'up', got {_shown(repr(p.goal))}"
        )
    if (
        isinstance(p.assess_after, bool)
        or not isinstance(p.assess_after, int | float)
        or not 0 < p.assess_after <= 30 * 86400
    ):
        raise InterventionError(f"{kind.name}: assess_after must be seconds in (0, 30 days]")
    for key, value in p.evidence.items():
        if (
            not isinstance(key, str)
            or not _SIGNAL.fullmatch(key)
            or isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise InterventionError(
                f"{kind.name}: evidence {_shown(key)} must be a signal key with a finite number"
            )
    return kind


def _text(value: str) -> str:
    """Free text for the record: at most :data:`_MAX_TEXT` characters (stored as given)."""
    return value[:_MAX_TEXT]


class InterventionManager:
    """Validates, runs, holds for approval, assesses and rolls back interventions (see the module).

    Every method is a coroutine that never blocks the event loop: reads and
    writes are jobs on the vault's writer (``submit_async``), actions go
    through the actuator. The same calls serve the service (its supervisor,
    the HTTP API's ``/v1/interventions``) and ``echoctl interventions``.

    Args:
        writer: the vault's writer (every entry and state write goes through it).
        actuator: what the interventions act on.
        options: the budget, the automatic kinds, the rollback margin.
        clock: POSIX seconds.
        bus: where ``intervention_planned``, ``intervention_executed`` and
            ``intervention_rolled_back`` events go (None: nowhere).

    Events carry ``{"id", "intervention" (the kind), "target", "risk",
    "state", "error"}`` and, as ``index``, the log index of the step's entry.

    Attributes:
        on_closed: called with each intervention that ends (assessed,
            rolled back, rejected, failed), so the supervisor can forget it;
            it must be quick; its exceptions are logged, not raised.
    """

    def __init__(
        self,
        writer: VaultWriter,
        actuator: Actuator,
        options: InterventionOptions | None = None,
        clock: Callable[[], float] = time.time,
        bus: EventBus | None = None,
    ) -> None:
        self.writer = writer
        self.actuator = actuator
        self.options = options or InterventionOptions()
        self.clock = clock
        self.bus = bus
        self.on_closed: Callable[[Intervention], None] | None = None
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ reading
    async def list(self, state: str | None = None) -> _Interventions:
        """The interventions (in ``state`` when given), oldest first.

        Raises:
            InterventionError: an unknown ``state``.
        """
        return await self.writer.submit_async(list_interventions, state)

    async def get(self, iv_id: str) -> Intervention:
        """The intervention ``iv_id``.

        Raises:
            NotFoundError: no such id.
        """
        return await self.writer.submit_async(get_intervention, iv_id)

    def budget_used(self, rows: Sequence[Intervention], now: float) -> int:
        """Automatic executions within the last :data:`BUDGET_WINDOW` seconds."""
        return sum(
            1
            for iv in rows
            if iv.auto and iv.executed_at is not None and iv.executed_at > now - BUDGET_WINDOW
        )

    # ------------------------------------------------------------------ steps
    async def propose(self, proposal: Proposal, by: str = "supervisor") -> Intervention:
        """Validate ``proposal``, record it ``planned``, and run it, defer it or hold it.

        A low-risk kind in ``options.auto`` executes at once when the hourly
        budget allows, else it is ``deferred`` (run by :meth:`run_pending`
        once the budget allows); any other waits in ``pending_approval``. An
        open intervention of the same kind on the same target is returned
        as it is (one at a time: the supervisor proposing it again each
        cycle plans nothing new).

        Returns:
            The intervention, as it is after this call.

        Raises:
            InterventionError: unknown kind, bad target or parameters, nothing
                to do; nothing is written.
        """
        kind = _check_proposal(proposal)
        async with self._lock:
            now = self.clock()
            rows = await self.writer.submit_async(list_interventions)
            for iv in rows:
                if not iv.closed and iv.kind == kind.name and iv.target == proposal.target:
                    return iv
            ctx = self._context(rows, now)
            params = await kind.validate(ctx, proposal.target, dict(proposal.params))
            text = await kind.dry_run(ctx, proposal.target, params)
            auto = kind.risk is Risk.LOW and kind.name in self.options.auto
            if not auto:
                state = State.PENDING_APPROVAL
            elif self.budget_used(rows, now) >= self.options.per_hour:
                state = State.DEFERRED
            else:
                state = State.PLANNED
            iv = Intervention(
                id=_new_id(proposal, now, {r.id for r in rows}),
                kind=kind.name,
                target=proposal.target,
                params=params,
                risk=kind.risk.value,
                reason=_text(proposal.reason),
                signal=proposal.signal,
                goal=proposal.goal,
                evidence={k: float(v) for k, v in proposal.evidence.items()},
                assess_after=float(proposal.assess_after),
                state=state.value,
                dry_run=text,
                created_at=now,
                updated_at=now,
                created_by=_text(by) or "supervisor",
                auto=auto,
            )
            iv = await self._record(iv, "planned", by, iv.reason, expect=None)
            self._emit("intervention_planned", iv)
            if state is State.PLANNED:
                iv = await self._execute(iv, by)
            return iv

    async def approve(self, iv_id: str, by: str) -> Intervention:
        """Approve a pending (or deferred) intervention and execute it.

        Returns:
            It, ``executed`` (or ``failed``; or ``approved`` when the actuator
            cannot act here: the service executes it at its next cycle).

        Raises:
            NotFoundError: no such id.
            InterventionStateError: it is not pending approval or deferred.
        """
        async with self._lock:
            iv = await self.get(iv_id)
            expect = {State.PENDING_APPROVAL, State.DEFERRED}
            self._expect(iv, expect, "approve")
            iv = replace(
                iv,
                state=State.APPROVED.value,
                auto=False,
                decided_by=_text(by),
                updated_at=self.clock(),
            )
            iv = await self._record(iv, "approved", by, "", expect=expect)
            return await self._execute(iv, by)

    async def reject(self, iv_id: str, by: str, reason: str) -> Intervention:
        """Reject a pending, deferred or approved (not yet executed) intervention.

        Raises:
            InterventionError: no reason given.
            NotFoundError: no such id.
            InterventionStateError: it already ran or ended.
        """
        if not reason.strip():
            raise InterventionError("reject: give a reason (--reason TEXT)")
        async with self._lock:
            iv = await self.get(iv_id)
            expect = {State.PENDING_APPROVAL, State.DEFERRED, State.APPROVED}
            self._expect(iv, expect, "reject")
            iv = replace(
                iv,
                state=State.REJECTED.value,
                decided_by=_text(by),
                decision_reason=_text(reason),
                updated_at=self.clock(),
            )
            iv = await self._record(iv, "rejected", by, iv.decision_reason, expect=expect)
            self._closed(iv)
            return iv

    async def rollback(self, iv_id: str, by: str, reason: str) -> Intervention:
        """Undo an executed (or assessed) reversible intervention; a quarantine is released so.

        Returns:
            It, ``rolled_back`` (or ``rollback_requested`` when the actuator
            cannot act here; or unchanged with ``error`` set when the undo failed).

        Raises:
            InterventionError: no reason, or the kind is irreversible.
            NotFoundError: no such id.
            InterventionStateError: it has not executed, or is rolled back already.
        """
        if not reason.strip():
            raise InterventionError("rollback: give a reason (--reason TEXT)")
        async with self._lock:
            iv = await self.get(iv_id)
            self._expect(
                iv, {State.EXECUTED, State.ASSESSED, State.ROLLBACK_REQUESTED}, "roll back"
            )
            if not KINDS[iv.kind].reversible:
                raise InterventionError(f"{iv.kind} cannot be rolled back (it has no undo)")
            return await self._rollback(iv, by, _text(reason))

    async def run_pending(self) -> _Interventions:
        """Execute what waits for this actuator: approved ones, rollbacks asked for, deferred ones.

        The service calls it each supervisor cycle: approvals and rollbacks
        recorded by ``echoctl interventions`` while it ran, and deferred
        interventions once the hourly budget allows (re-validated first: one
        whose reason is gone fails, naming why).

        Returns:
            The interventions it acted on, as they are now.
        """
        done: _Interventions = []
        async with self._lock:
            rows = await self.writer.submit_async(list_interventions)
            now = self.clock()
            used = self.budget_used(rows, now)
            for iv in rows:
                if iv.state == State.APPROVED:
                    done.append(await self._execute(iv, iv.decided_by or "operator"))
                elif iv.state == State.ROLLBACK_REQUESTED:
                    done.append(await self._rollback(iv, iv.decided_by, iv.decision_reason))
                elif iv.state in (State.DEFERRED, State.PLANNED) and iv.auto:
                    if used >= self.options.per_hour:
                        continue
                    used += 1
                    done.append(await self._execute(iv, iv.created_by))
        return done

    async def reapply(self) -> _Interventions:
        """After a start: put back what volatile interventions changed (a host's rate).

        The service calls it once its fetch engine exists: each
        ``lower_host_rate`` executed or assessed and not rolled back sets its
        host's ceiling again to the rate it applied, oldest first (so the
        newest wins). Nothing is logged: the log already holds the step.

        Returns:
            The interventions put back.
        """
        done: _Interventions = []
        async with self._lock:
            rows = await self.writer.submit_async(list_interventions)
            ctx = self._context(rows, self.clock())
            for iv in rows:
                kind = KINDS[iv.kind]
                if not kind.volatile or iv.state not in (State.EXECUTED, State.ASSESSED):
                    continue
                try:
                    if await kind.reapply(ctx, iv.target, iv.params, iv.undo):
                        done.append(iv)
                except (EchoError, ValueError) as exc:
                    log.error("interventions.reapply_failed", id=iv.id, error=str(exc))
        return done

    async def assess(self, now: float, measure: Callable[[str], float | None]) -> _Interventions:
        """Measure the effect of each executed intervention whose ``assess_after`` has passed.

        Each gets an ``assessed`` entry with :func:`measure_effect` of its
        signal (the value at planning, ``evidence[signal]``, against
        ``measure(signal)`` now); one whose effect is ``worse`` and whose kind
        rolls back on its own is then rolled back (a ``rolled_back`` entry,
        actor ``supervisor``), the others are ``assessed``.

        Args:
            now: POSIX seconds.
            measure: the signal's current value, or None when unknown.

        Returns:
            The interventions assessed, as they are now.
        """
        done: _Interventions = []
        async with self._lock:
            rows = await self.writer.submit_async(list_interventions, State.EXECUTED.value)
            for iv in rows:
                if iv.assess_at is None or iv.assess_at > now:
                    continue
                after: float | None = None
                if iv.signal:
                    try:
                        after = measure(iv.signal)
                    except Exception as exc:  # a broken measure leaves it unmeasured
                        log.error("interventions.measure_failed", id=iv.id, error=repr(exc))
                effect = measure_effect(
                    iv.evidence.get(iv.signal), after, iv.goal, self.options.rollback_margin
                )
                kind = KINDS[iv.kind]
                bad = effect["verdict"] == "worse" and kind.reversible and kind.auto_rollback
                summary = (
                    f"{iv.signal}: {effect['before']} -> {effect['after']} "
                    f"({effect['verdict']}, goal {iv.goal})"
                    if iv.signal
                    else "no signal to measure"
                )
                new = replace(
                    iv,
                    state=State.EXECUTED.value if bad else State.ASSESSED.value,
                    effect=effect,
                    updated_at=now,
                )
                new = await self._record(
                    new, "assessed", "supervisor", summary, expect={State.EXECUTED}, result=effect
                )
                if bad:
                    new = await self._rollback(new, "supervisor", f"the effect was bad: {summary}")
                else:
                    self._closed(new)
                done.append(new)
        return done

    # ------------------------------------------------------------------ internals
    def _context(self, rows: Sequence[Intervention], now: float) -> InterventionContext:
        held = {
            iv.target: iv.id
            for iv in rows
            if iv.kind == "quarantine_feed" and iv.state in (State.EXECUTED, State.ASSESSED)
        }
        return InterventionContext(self.actuator, now, held)

    @staticmethod
    def _expect(iv: Intervention, states: set[State], step: str) -> None:
        if iv.state not in states:
            allowed = ", ".join(sorted(s.value for s in states))
            raise InterventionStateError(
                f"cannot {step} intervention {iv.id}: it is {iv.state} (only when {allowed})"
            )

    async def _execute(self, iv: Intervention, by: str) -> Intervention:
        kind = KINDS[iv.kind]
        rows = await self.writer.submit_async(list_interventions)
        now = self.clock()
        ctx = self._context([r for r in rows if r.id != iv.id], now)
        expect = {State(iv.state)}
        try:
            params = await kind.validate(ctx, iv.target, iv.params)
            undo = await kind.execute(ctx, iv.target, params)
        except ActuatorUnavailableError as exc:
            if iv.state == State.APPROVED:
                return iv  # recorded: the service executes it at its next cycle
            waiting = replace(iv, state=State.APPROVED.value, error=str(exc), updated_at=now)
            return await self._store(waiting, expect)
        except (EchoError, OSError, ValueError, KeyError, TypeError) as exc:
            failed = replace(iv, state=State.FAILED.value, error=str(exc), updated_at=now)
            failed = await self._record(
                failed, "executed", by, iv.reason, expect=expect, ok=False, error=str(exc)
            )
            self._emit("intervention_executed", failed)
            self._closed(failed)
            return failed
        done = replace(
            iv,
            state=State.EXECUTED.value,
            undo=undo,
            result=undo,
            executed_at=now,
            assess_at=now + iv.assess_after,
            error=None,
            updated_at=now,
        )
        done = await self._record(done, "executed", by, iv.reason, expect=expect, result=undo)
        self._emit("intervention_executed", done)
        return done

    async def _rollback(self, iv: Intervention, by: str, reason: str) -> Intervention:
        kind = KINDS[iv.kind]
        rows = await self.writer.submit_async(list_interventions)
        now = self.clock()
        ctx = self._context([r for r in rows if r.id != iv.id], now)
        expect = {State(iv.state)}
        try:
            restored = await kind.rollback(ctx, iv.target, iv.params, iv.undo)
        except ActuatorUnavailableError:
            asked = replace(
                iv,
                state=State.ROLLBACK_REQUESTED.value,
                decided_by=_text(by),
                decision_reason=reason,
                updated_at=now,
            )
            return (
                asked if iv.state == State.ROLLBACK_REQUESTED else await self._store(asked, expect)
            )
        except (EchoError, OSError, ValueError, KeyError, TypeError) as exc:
            kept = replace(iv, error=f"rollback failed: {exc}", updated_at=now)
            return await self._record(
                kept, "rolled_back", by, reason, expect=expect, ok=False, error=str(exc)
            )
        done = replace(
            iv,
            state=State.ROLLED_BACK.value,
            result=restored,
            decided_by=_text(by),
            decision_reason=reason,
            error=None,
            updated_at=now,
        )
        done = await self._record(done, "rolled_back", by, reason, expect=expect, result=restored)
        self._emit("intervention_rolled_back", done)
        self._closed(done)
        return done

    async def _store(self, iv: Intervention, expect: set[State] | None) -> Intervention:
        return await self.writer.submit_async(_write, iv, None, expect)

    async def _record(
        self,
        iv: Intervention,
        event: str,
        actor: str,
        reason: str,
        *,
        expect: set[State] | None,
        result: Mapping[str, Any] | None = None,
        ok: bool = True,
        error: str | None = None,
    ) -> Intervention:
        meta = InterventionMeta(
            id=iv.id,
            event=event,  # type: ignore[arg-type]
            action=iv.kind,
            risk=iv.risk,  # type: ignore[arg-type]
            target=iv.target,
            params=json_object(iv.params),
            state=iv.state,
            actor=_text(actor) or "unknown",
            reason=reason,
            signal=iv.signal,
            goal=iv.goal,  # type: ignore[arg-type]
            evidence=dict(iv.evidence),
            dry_run=iv.dry_run,
            result=json_object(result or {}),
            ok=ok,
            error=error,
            at=format_timestamp(int(self.clock() * 1e9)),
        )
        return await self.writer.submit_async(_write, iv, meta, expect)

    def _emit(self, kind: str, iv: Intervention) -> None:
        if self.bus is None:
            return
        self.bus.emit(
            kind,
            index=iv.entries[-1] if iv.entries else None,
            id=iv.id,
            intervention=iv.kind,
            target=iv.target,
            risk=iv.risk,
            state=iv.state,
            error=iv.error,
        )

    def _closed(self, iv: Intervention) -> None:
        if self.on_closed is None:
            return
        try:
            self.on_closed(iv)
        except Exception as exc:  # the supervisor's hook never breaks the manager
            log.error("interventions.on_closed_failed", id=iv.id, error=repr(exc))


def _write(
    vault: Vault, iv: Intervention, meta: InterventionMeta | None, expect: set[State] | None
) -> Intervention:
    """A writer job: check the stored state is one of ``expect``, log ``meta``, store ``iv``.

    The entry is committed before the row: the log never misses a step the
    table shows.

    Raises:
        InterventionStateError: the stored state moved on (another process took the step).
    """
    with vault.writing():
        table = InterventionTable(vault.catalog)
        if expect is not None:
            current = table.get(iv.id)
            if current is None or current.state not in expect:
                now = "gone" if current is None else current.state
                raise InterventionStateError(
                    f"intervention {iv.id} changed meanwhile (it is {now})"
                )
        if meta is not None:
            committed = vault.commit([Record("intervention", meta)])
            iv = replace(iv, entries=(*iv.entries, committed.receipts[0].index))
        table.put(iv)
        return iv
