"""Interventions: typed actions the supervisor plans, with validate, dry run, execute and rollback.

This module starts with the shape both sides agree on: the supervisor
(:mod:`echo_archive.control.supervisor`) plans :class:`Proposal` s; the
intervention manager validates them, runs the low-risk ones within the
hourly budget, holds the high-risk ones for approval, measures each one's
effect on its target signal and rolls back the ones that made it worse.
Every step is a log entry (DESIGN.md invariant 10).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

__all__ = ["Proposal", "Risk"]


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
