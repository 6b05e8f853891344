"""Interventions: every kind against a real vault, a real Scheduler and a real Fetcher.

The manager runs over the vault's real writer; the feeds' schedules live in
the real ``schedules`` table (through a real :class:`Scheduler`), the host
limits and breakers in a real :class:`Fetcher` built from the vault
(:func:`build_fetcher`, breakers persisted in ``HarvestState``). Time is an
injected clock. The CLI runs as a real subprocess.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from echo_archive.config import INTERVENTION_RISKS, SupervisorSection
from echo_archive.control.interventions import (
    KINDS,
    ActuatorUnavailableError,
    Intervention,
    InterventionError,
    InterventionManager,
    InterventionOptions,
    InterventionStateError,
    Proposal,
    State,
    list_interventions,
    measure_effect,
)
from echo_archive.errors import NotFoundError
from echo_archive.events import Event, EventBus
from echo_archive.harvest.breaker import BreakerState, CircuitBreaker
from echo_archive.harvest.engine import Fetcher
from echo_archive.harvest.limits import HostLimits
from echo_archive.harvest.state import HarvestState
from echo_archive.schemas import InterventionMeta, validate_meta
from echo_archive.service.actuator import ServiceActuator, StoredActuator
from echo_archive.service.schedule import ScheduleStore
from echo_archive.service.scheduler import RunResult, Scheduler
from echo_archive.services.harvesting import FetcherStores, build_fetcher
from echo_archive.services.vaults import open_writer
from echo_archive.sources.base import Feed
from echo_archive.vault.entry import parse_entry
from echo_archive.vault.vault import Vault
from echo_archive.vault.verify import verify_vault
from echo_archive.vault.writer import VaultWriter
from tests.conftest import run_echoctl

T0 = 1_800_000_000.0
HOST = "feeds.example.org"
FEEDS = ("alpha", "beta", "gamma")


def feed(name: str) -> Feed:
    return Feed(name=name, source="rss", params={"url": f"https://{HOST}/{name}"}, interval=3600)


async def never_run(f: Feed, _timeout: float) -> RunResult:
    raise AssertionError("the scheduler is not run in these tests")


@dataclass
class Clock:
    now: float = T0

    def __call__(self) -> float:
        return self.now


@dataclass
class Harness:
    writer: VaultWriter
    scheduler: Scheduler
    fetcher: Fetcher
    manager: InterventionManager
    clock: Clock
    events: list[Event] = field(default_factory=list)
    closed: list[Intervention] = field(default_factory=list)


@asynccontextmanager
async def harness(path: Path, options: InterventionOptions | None = None) -> AsyncIterator[Harness]:
    writer = open_writer(path)
    stores: FetcherStores | None = None
    try:
        scheduler = Scheduler(writer, [feed(n) for n in FEEDS], never_run)
        await scheduler.load()
        fetcher, stores = build_fetcher(writer)
        async with fetcher:
            clock = Clock()
            bus = EventBus()
            manager = InterventionManager(
                writer, ServiceActuator(writer, scheduler, fetcher), options, clock, bus
            )
            h = Harness(writer, scheduler, fetcher, manager, clock)
            bus.subscribe(h.events.append)
            manager.on_closed = h.closed.append
            yield h
    finally:
        if stores is not None:
            stores.close()
        writer.close()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def entries(path: Path) -> list[dict[str, Any]]:
    """The ``intervention`` entries' metas, in log order (each validated as read back)."""
    found = []
    with Vault.open(path, readonly=True) as v:
        for index, entry in v.iter_entries():
            if entry.type == "intervention":
                again = parse_entry(entry.raw, f"entry {index}")
                assert validate_meta("intervention", json.loads(again.raw)["meta"], {}, "e") is (
                    InterventionMeta
                )
                found.append(dict(entry.meta))
    return found


def stored(path: Path) -> list[Intervention]:
    with Vault.open(path, readonly=True) as v:
        return list_interventions(v)


def log_size(path: Path) -> int:
    with Vault.open(path, readonly=True) as v:
        return v.size


# ---------------------------------------------------------------------------- the kinds


def test_pause_and_resume_execute_and_roll_back_on_the_scheduler(vault_path: Path) -> None:
    async def main() -> None:
        async with harness(vault_path) as h:
            iv = await h.manager.propose(
                Proposal("pause_feed", "alpha", reason="alpha keeps failing")
            )
            assert iv.state == State.EXECUTED
            assert iv.dry_run.startswith("pause feed alpha")
            assert h.scheduler.schedules["alpha"].paused
            assert iv.undo == {"paused": False}
            back = await h.manager.rollback(iv.id, "ops", "false alarm")
            assert back.state == State.ROLLED_BACK
            assert not h.scheduler.schedules["alpha"].paused
            assert h.closed == [back]
            # resume_feed needs a paused feed
            with pytest.raises(InterventionError, match="resume_feed: feed beta is not paused"):
                await h.manager.propose(Proposal("resume_feed", "beta"))
            await h.scheduler.set_paused("beta", True)
            resumed = await h.manager.propose(Proposal("resume_feed", "beta"))
            assert resumed.state == State.EXECUTED
            assert not h.scheduler.schedules["beta"].paused
            await h.manager.rollback(resumed.id, "ops", "keep it paused")
            assert h.scheduler.schedules["beta"].paused

    run(main())
    with Vault.open(vault_path, readonly=True) as v:
        rows = ScheduleStore(v.catalog).all()
    assert not rows["alpha"].paused
    assert rows["beta"].paused
    assert [(e["event"], e["action"]) for e in entries(vault_path)] == [
        ("planned", "pause_feed"),
        ("executed", "pause_feed"),
        ("rolled_back", "pause_feed"),
        ("planned", "resume_feed"),
        ("executed", "resume_feed"),
        ("rolled_back", "resume_feed"),
    ]


def test_stretch_interval_multiplies_and_restores_the_stretch(vault_path: Path) -> None:
    async def main() -> None:
        async with harness(vault_path) as h:
            iv = await h.manager.propose(Proposal("stretch_interval", "beta", {"factor": 3}))
            assert iv.dry_run == "stretch the interval of feed beta from 1x to 3x"
            assert h.scheduler.schedules["beta"].stretch == 3.0
            await h.manager.rollback(iv.id, "ops", "too slow")
            assert h.scheduler.schedules["beta"].stretch == 1.0
            for bad, message in (
                ({"factor": 0.5}, r"factor must be in \(1, 8\], got 0.5"),
                ({"factor": "x"}, "factor must be a number"),
                ({"factor": 2, "speed": 1}, "unknown parameter speed"),
            ):
                with pytest.raises(InterventionError, match=message):
                    await h.manager.propose(Proposal("stretch_interval", "beta", bad))

    run(main())


def test_lower_host_rate_respects_its_floor_and_rolls_back(vault_path: Path) -> None:
    async def main() -> None:
        async with harness(vault_path) as h:
            limits = h.fetcher.limits
            before = limits.config_for(HOST).rate
            bucket = limits.bucket(HOST)
            iv = await h.manager.propose(Proposal("lower_host_rate", HOST, {"factor": 0.5}))
            assert iv.state == State.EXECUTED
            assert limits.config_for(HOST).rate == pytest.approx(before / 2)
            assert bucket.rate == pytest.approx(before / 2)
            assert iv.undo == {"rate": before, "applied": before / 2}
            # the same kind on the same target while one is open: the open one
            again = await h.manager.propose(Proposal("lower_host_rate", HOST, {"factor": 0.1}))
            assert again.id == iv.id
            await h.manager.rollback(iv.id, "ops", "recovered")
            assert limits.config_for(HOST).rate == before
            assert bucket.rate == before
            floored = await h.manager.propose(
                Proposal("lower_host_rate", HOST, {"factor": 0.001, "floor": 0.25})
            )
            assert limits.config_for(HOST).rate == 0.25
            assert "floor 0.25" in floored.dry_run
            await h.manager.rollback(floored.id, "ops", "done")
            with pytest.raises(InterventionError, match="not above the floor"):
                await h.manager.propose(
                    Proposal("lower_host_rate", HOST, {"factor": 0.5, "floor": before})
                )

    run(main())


def test_force_breaker_waits_for_approval_then_forces_the_live_and_stored_breaker(
    vault_path: Path,
) -> None:
    async def main() -> None:
        async with harness(vault_path) as h:
            iv = await h.manager.propose(
                Proposal("force_breaker", HOST, {"state": "forced_open"}, reason="50% 5xx")
            )
            assert iv.state == State.PENDING_APPROVAL
            assert iv.risk == "high"
            assert h.fetcher.breaker(HOST).state is BreakerState.CLOSED  # nothing done yet
            assert "forced open (FORCED_OPEN" in iv.dry_run
            done = await h.manager.approve(iv.id, "ops")
            assert done.state == State.EXECUTED
            assert done.decided_by == "ops"
            breaker = h.fetcher.breaker(HOST)
            assert breaker.state is BreakerState.FORCED_OPEN
            assert not breaker.allow()
            h.writer.flush()
            with Vault.open(vault_path, readonly=True) as v:
                assert HarvestState(v.catalog).breaker(HOST)["state"] == "FORCED_OPEN"
            with pytest.raises(InterventionStateError, match="it is executed"):
                await h.manager.approve(iv.id, "ops")
            await h.manager.rollback(iv.id, "ops", "host is back")
            assert h.fetcher.breaker(HOST).state is BreakerState.CLOSED
            closed = await h.manager.propose(
                Proposal("force_breaker", HOST, {"state": "forced_closed"})
            )
            await h.manager.approve(closed.id, "ops")
            assert h.fetcher.breaker(HOST).state is BreakerState.DISABLED
            with pytest.raises(InterventionError, match="state must be one of"):
                await h.manager.propose(Proposal("force_breaker", "other.org", {"state": "open"}))

    run(main())


def test_quarantine_holds_a_feed_until_released_by_rollback(vault_path: Path) -> None:
    async def main() -> None:
        async with harness(vault_path) as h:
            iv = await h.manager.propose(
                Proposal(
                    "quarantine_feed",
                    "gamma",
                    reason="responses keep failing to parse",
                    signal="feed_parse_error_rate:gamma",
                    evidence={"feed_parse_error_rate:gamma": 0.8},
                    assess_after=60,
                )
            )
            assert iv.state == State.PENDING_APPROVAL
            assert not h.scheduler.schedules["gamma"].paused
            iv = await h.manager.approve(iv.id, "ops")
            assert h.scheduler.schedules["gamma"].paused
            with pytest.raises(InterventionError, match=f"quarantined by intervention {iv.id}"):
                await h.manager.propose(Proposal("resume_feed", "gamma"))
            # a bad effect never releases a quarantine on its own
            h.clock.now += 120
            (assessed,) = await h.manager.assess(h.clock.now, lambda _s: 0.95)
            assert assessed.state == State.ASSESSED
            assert assessed.effect is not None
            assert assessed.effect["verdict"] == "worse"
            assert h.scheduler.schedules["gamma"].paused
            with pytest.raises(InterventionError, match="quarantined"):
                await h.manager.propose(Proposal("resume_feed", "gamma"))
            released = await h.manager.rollback(iv.id, "ops", "parser fixed")
            assert released.state == State.ROLLED_BACK
            assert not h.scheduler.schedules["gamma"].paused

    run(main())


def test_rebuild_index_and_run_verify_run_and_cannot_be_rolled_back(vault_path: Path) -> None:
    async def main() -> None:
        async with harness(vault_path) as h:
            names = await h.manager.actuator.indexes()
            assert "items" in names
            iv = await h.manager.propose(Proposal("rebuild_index", "items"))
            assert iv.state == State.EXECUTED
            assert iv.undo == {"rebuilt": ["items"]}
            with pytest.raises(InterventionError, match="rebuild_index cannot be rolled back"):
                await h.manager.rollback(iv.id, "ops", "why not")
            with pytest.raises(InterventionError, match="no derived index named 'nope'"):
                await h.manager.propose(Proposal("rebuild_index", "nope"))
            check = await h.manager.propose(Proposal("run_verify", "vault", {"sample": 1}))
            assert check.state == State.EXECUTED
            assert check.undo["ok"] is True
            assert check.undo["problems"] == 0
            with pytest.raises(InterventionError, match="the target must be 'vault'"):
                await h.manager.propose(Proposal("run_verify", "elsewhere"))

    run(main())


def _save_reports(path: Path, n: int) -> None:
    with Vault.open(path) as v, v.writing():
        state = HarvestState(v.catalog)
        for i in range(n):
            state.save_report(f"2026-12-0{1 + i}T00:00:00.000000Z", {"feeds": [], "n": i})


def _report_count(path: Path) -> int:
    with Vault.open(path, readonly=True) as v:
        return len(HarvestState(v.catalog).reports(limit=1000))


def test_free_disk_shows_its_dry_run_and_deletes_only_when_approved(vault_path: Path) -> None:
    toml = vault_path / "echo.toml"
    toml.write_text(toml.read_text() + "\n[health]\nreport_retention = 2\n")
    _save_reports(vault_path, 5)

    async def main() -> Intervention:
        async with harness(vault_path) as h:
            with pytest.raises(InterventionError, match="choose reports, orphans or both"):
                await h.manager.propose(
                    Proposal("free_disk", "vault", {"reports": False, "orphans": False})
                )
            iv = await h.manager.propose(Proposal("free_disk", "vault"))
            assert iv.state == State.PENDING_APPROVAL
            assert "delete 3 saved harvest reports (keeping the newest 2)" in iv.dry_run
            assert _report_count(vault_path) == 5  # the dry run deleted nothing
            done = await h.manager.approve(iv.id, "ops")
            assert done.state == State.EXECUTED
            with pytest.raises(InterventionError, match="free_disk cannot be rolled back"):
                await h.manager.rollback(iv.id, "ops", "oops")
            # open until assessed: proposing it again plans nothing new
            assert (await h.manager.propose(Proposal("free_disk", "vault"))).id == iv.id
            h.clock.now += iv.assess_after
            (closed,) = await h.manager.assess(h.clock.now, lambda _s: None)
            assert closed.state == State.ASSESSED
            assert closed.effect is not None
            assert closed.effect["verdict"] == "unmeasured"
            with pytest.raises(InterventionError, match="nothing to free"):
                await h.manager.propose(Proposal("free_disk", "vault", {"orphans": False}))
            return done

    done = run(main())
    assert _report_count(vault_path) == 2
    (repair,) = done.undo["repairs"]
    assert repair["name"] == "prune_reports"
    assert repair["status"] == "done"
    with Vault.open(vault_path, readonly=True) as v:
        kinds = [e.type for _, e in v.iter_entries()]
    assert "repair" in kinds  # the repair's own entry, beside the intervention's


# ---------------------------------------------------------------------------- the manager


def test_the_hourly_budget_defers_and_never_drops(vault_path: Path) -> None:
    async def main() -> None:
        async with harness(vault_path, InterventionOptions(per_hour=2)) as h:
            a = await h.manager.propose(Proposal("pause_feed", "alpha"))
            h.clock.now += 60
            b = await h.manager.propose(Proposal("stretch_interval", "beta"))
            h.clock.now += 60
            c = await h.manager.propose(Proposal("pause_feed", "gamma"))
            assert [a.state, b.state, c.state] == ["executed", "executed", "deferred"]
            assert not h.scheduler.schedules["gamma"].paused
            assert await h.manager.run_pending() == []  # still over budget
            h.clock.now = T0 + 3600 + 1  # a's execution left the window
            (ran,) = await h.manager.run_pending()
            assert ran.id == c.id
            assert ran.state == State.EXECUTED
            assert h.scheduler.schedules["gamma"].paused
            kinds = [e.kind for e in h.events]
            assert kinds.count("intervention_planned") == 3
            assert kinds.count("intervention_executed") == 3
            assert all(e.index is not None for e in h.events)

    run(main())


def test_zero_budget_and_not_auto_kinds(vault_path: Path) -> None:
    async def main() -> None:
        options = InterventionOptions(per_hour=0, auto=frozenset({"pause_feed"}))
        async with harness(vault_path, options) as h:
            paused = await h.manager.propose(Proposal("pause_feed", "alpha"))
            assert paused.state == State.DEFERRED
            stretched = await h.manager.propose(Proposal("stretch_interval", "beta"))
            assert stretched.state == State.PENDING_APPROVAL  # low risk, but not auto
            approved = await h.manager.approve(paused.id, "ops")  # an operator may run it now
            assert approved.state == State.EXECUTED
            assert not approved.auto
            rejected = await h.manager.reject(stretched.id, "ops", "not now")
            assert rejected.state == State.REJECTED
            assert h.closed[-1].id == stretched.id
            with pytest.raises(InterventionError, match="give a reason"):
                await h.manager.reject(paused.id, "ops", " ")
            with pytest.raises(InterventionStateError, match="cannot reject"):
                await h.manager.reject(paused.id, "ops", "late")

    run(main())


def test_a_bad_effect_rolls_back_on_its_own_a_good_one_is_kept(vault_path: Path) -> None:
    signal = "feed_error_rate:alpha"

    async def main() -> None:
        async with harness(vault_path) as h:
            bad = await h.manager.propose(
                Proposal(
                    "pause_feed",
                    "alpha",
                    signal=signal,
                    evidence={signal: 0.5},
                    assess_after=600,
                )
            )
            good = await h.manager.propose(
                Proposal(
                    "stretch_interval",
                    "beta",
                    signal="host_error_rate:x",
                    evidence={"host_error_rate:x": 0.4},
                    assess_after=600,
                )
            )
            assert await h.manager.assess(T0 + 599, lambda _s: 1.0) == []  # not yet due
            values = {signal: 0.9, "host_error_rate:x": 0.1}
            done = await h.manager.assess(T0 + 600, values.get)
            by_id = {iv.id: iv for iv in done}
            assert by_id[bad.id].state == State.ROLLED_BACK
            assert by_id[bad.id].effect == {
                "before": 0.5,
                "after": 0.9,
                "change": pytest.approx(0.4),
                "margin": 0.1,
                "verdict": "worse",
            }
            assert not h.scheduler.schedules["alpha"].paused  # undone
            assert by_id[good.id].state == State.ASSESSED
            assert h.scheduler.schedules["beta"].stretch == 2.0  # kept
            assert {iv.id for iv in h.closed} == {bad.id, good.id}
            assert "intervention_rolled_back" in [e.kind for e in h.events]

    run(main())
    steps = [(e["id"], e["event"], e["actor"]) for e in entries(vault_path)]
    rolled = [s for s in steps if s[1] == "rolled_back"]
    assert len(rolled) == 1
    assert rolled[0][2] == "supervisor"
    assessed = [e for e in entries(vault_path) if e["event"] == "assessed"]
    assert {e["result"]["verdict"] for e in assessed} == {"worse", "better"}


def test_measure_effect_rule() -> None:
    assert measure_effect(0.5, 0.52, "down", 0.1)["verdict"] == "unchanged"
    assert measure_effect(0.5, 0.6, "down", 0.1)["verdict"] == "worse"
    assert measure_effect(0.5, 0.3, "down", 0.1)["verdict"] == "better"
    assert measure_effect(10, 5, "up", 0.1)["verdict"] == "worse"
    assert measure_effect(0.0, 0.0, "down", 0.1)["verdict"] == "unchanged"
    assert measure_effect(None, 1.0, "down", 0.1)["verdict"] == "unmeasured"
    assert measure_effect(1.0, float("nan"), "down", 0.1)["verdict"] == "unmeasured"


def test_entries_read_back_validate_and_the_vault_verifies(vault_path: Path) -> None:
    async def main() -> None:
        async with harness(vault_path) as h:
            iv = await h.manager.propose(
                Proposal(
                    "stretch_interval",
                    "alpha",
                    {"factor": 2.0},
                    reason="slow host",
                    signal="latency_p95:alpha",
                    goal="down",
                    evidence={"latency_p95:alpha": 2.5},
                )
            )
            pending = await h.manager.propose(Proposal("force_breaker", HOST, {"state": "auto"}))
            del pending
            await h.manager.rollback(iv.id, "ops", "enough")

    with pytest.raises(InterventionError, match="already CLOSED"):
        run(main())
    metas = entries(vault_path)
    assert [m["event"] for m in metas] == ["planned", "executed"]
    planned = metas[0]
    assert planned["params"] == {"factor": 2}  # I-JSON: a whole float is an integer
    assert planned["evidence"] == {"latency_p95:alpha": 2.5}
    assert planned["reason"] == "slow host"
    assert planned["risk"] == "low"
    with Vault.open(vault_path, readonly=True) as v:
        assert verify_vault(v).ok


def test_a_restart_keeps_every_intervention_where_it_was(vault_path: Path) -> None:
    async def first() -> tuple[str, str]:
        async with harness(vault_path) as h:
            held = await h.manager.propose(Proposal("quarantine_feed", "beta"))
            ran = await h.manager.propose(Proposal("pause_feed", "alpha", assess_after=60))
            return held.id, ran.id

    held_id, ran_id = run(first())

    async def second() -> None:
        async with harness(vault_path) as h:
            assert {iv.id: iv.state for iv in await h.manager.list()} == {
                held_id: "pending_approval",
                ran_id: "executed",
            }
            assert h.scheduler.schedules["alpha"].paused  # the scheduler read it back too
            assert (await h.manager.get(ran_id)).undo == {"paused": False}
            approved = await h.manager.approve(held_id, "ops")
            assert approved.state == State.EXECUTED
            assert {iv.id for iv in await h.manager.list("executed")} == {held_id, ran_id}
            with pytest.raises(NotFoundError, match="no intervention with id"):
                await h.manager.get("0000000000")

    run(second())


@pytest.mark.parametrize(
    ("proposal", "message"),
    [
        (Proposal("delete_everything", "vault"), "unknown intervention kind 'delete_everything'"),
        (Proposal("\x1b[2Jpause", "alpha"), r"unknown intervention kind '\\x1b\[2Jpause'"),
        (Proposal("pause_feed", "alpha\x1b]0;owned\x07"), r"not a feed name"),
        (Proposal("pause_feed", "nosuchfeed"), "no scheduled feed named 'nosuchfeed'"),
        (Proposal("pause_feed", "alpha", {"x": 1}), "unknown parameter x"),
        (Proposal("lower_host_rate", "evil.org\x1b[31m"), "is not a host"),
        (Proposal("lower_host_rate", HOST, {"factor": float("inf")}), "must be a JSON scalar"),
        (Proposal("stretch_interval", "alpha", {"factor": True}), "must be a number"),
        (Proposal("pause_feed", "alpha", goal="sideways"), "goal must be"),  # type: ignore[arg-type]
        (Proposal("pause_feed", "alpha", signal="x\x1b"), "is not a signal key"),
        (Proposal("pause_feed", "alpha", assess_after=-1), "assess_after"),
    ],
)
def test_hostile_proposals_are_refused_clearly_and_write_nothing(
    vault_path: Path, proposal: Proposal, message: str
) -> None:
    async def main() -> None:
        async with harness(vault_path) as h:
            with pytest.raises(InterventionError, match=message) as info:
                await h.manager.propose(proposal)
            assert "\x1b" not in str(info.value)
            assert "\x07" not in str(info.value)
            assert h.events == []

    before = log_size(vault_path)
    run(main())
    assert log_size(vault_path) == before
    assert stored(vault_path) == []


def test_the_kinds_are_the_ones_the_config_accepts() -> None:
    assert {k: v.risk.value for k, v in KINDS.items()} == dict(INTERVENTION_RISKS)
    assert InterventionOptions.from_config(SupervisorSection()) == InterventionOptions()


# ---------------------------------------------------------------------------- the parts


def test_breaker_modes_follow_resilience4j() -> None:
    now = [T0]
    breaker = CircuitBreaker("h", clock=lambda: now[0])
    breaker.set_mode("forced_open")
    assert breaker.state is BreakerState.FORCED_OPEN
    assert not breaker.allow()
    breaker.record(False, 0.1)  # FORCED_OPEN records nothing
    assert breaker.metrics().calls == 0
    breaker.set_mode("forced_closed")
    assert breaker.state is BreakerState.DISABLED
    assert breaker.allow()
    breaker.set_mode("auto")
    assert breaker.state is BreakerState.CLOSED
    breaker.transition_to_open()
    breaker.set_mode("auto")  # under its own rules: left as it is
    assert breaker.state is BreakerState.OPEN
    restored = CircuitBreaker.from_state("h", None, breaker.to_state())
    assert restored.state is BreakerState.OPEN
    with pytest.raises(ValueError, match="breaker mode 'off'"):
        breaker.set_mode("off")


def test_host_limits_set_rate_keeps_the_rest_of_the_profile() -> None:
    limits = HostLimits()
    config = limits.config_for("api.github.com")
    bucket = limits.bucket("api.github.com")
    old = limits.set_rate("API.github.com", config.rate / 4)
    assert old == config.rate
    lowered = limits.config_for("api.github.com")
    assert lowered.rate == config.rate / 4
    assert bucket.rate == config.rate / 4
    assert (lowered.burst, lowered.concurrency, lowered.rate_limit_headers) == (
        config.burst,
        config.concurrency,
        config.rate_limit_headers,
    )
    limits.set_rate("api.github.com", old)
    assert limits.config_for("api.github.com").rate == old
    assert bucket.rate == old


# ---------------------------------------------------------------------------- without a service


def _stored_manager(path: Path, defer: bool = False) -> Callable[[], Any]:
    @asynccontextmanager
    async def ctx() -> AsyncIterator[InterventionManager]:
        writer = open_writer(path)
        try:
            yield InterventionManager(writer, StoredActuator(writer, defer=defer))
        finally:
            writer.close()

    return ctx


def test_the_stored_actuator_acts_on_stored_state_and_defers_the_rest(vault_path: Path) -> None:
    async def plan() -> tuple[str, str, str]:
        async with harness(vault_path, InterventionOptions(auto=frozenset())) as h:
            p = await h.manager.propose(Proposal("pause_feed", "alpha"))
            r = await h.manager.propose(Proposal("lower_host_rate", HOST))
            b = await h.manager.propose(Proposal("force_breaker", HOST, {"state": "forced_open"}))
            return p.id, r.id, b.id

    pause_id, rate_id, breaker_id = run(plan())
    offline = _stored_manager(vault_path)

    async def approve_offline() -> None:
        async with offline() as m:
            assert (await m.approve(pause_id, "ops")).state == State.EXECUTED
            assert (await m.approve(breaker_id, "ops")).state == State.EXECUTED
            waiting = await m.approve(rate_id, "ops")
            assert waiting.state == State.APPROVED  # the rate lives in a running fetcher
            with pytest.raises(ActuatorUnavailableError):
                await m.actuator.set_host_rate(HOST, 0.1)

    run(approve_offline())
    with Vault.open(vault_path, readonly=True) as v:
        assert ScheduleStore(v.catalog).all()["alpha"].paused
        assert HarvestState(v.catalog).breaker(HOST)["state"] == "FORCED_OPEN"

    async def service_cycle() -> None:
        async with harness(vault_path) as h:
            assert h.scheduler.schedules["alpha"].paused  # read at start
            assert h.fetcher.breaker(HOST).state is BreakerState.FORCED_OPEN
            rate = h.fetcher.limits.config_for(HOST).rate
            (ran,) = await h.manager.run_pending()
            assert ran.id == rate_id
            assert ran.state == State.EXECUTED
            assert h.fetcher.limits.config_for(HOST).rate == rate / 2

    run(service_cycle())

    async def restart() -> None:
        async with harness(vault_path) as h:
            rate = h.fetcher.limits.config_for(HOST).rate  # a new engine: as configured
            (again,) = await h.manager.reapply()
            assert again.id == rate_id
            assert h.fetcher.limits.config_for(HOST).rate == rate / 2

    run(restart())

    deferred = _stored_manager(vault_path, defer=True)

    async def rollback_while_a_service_runs() -> None:
        async with deferred() as m:
            asked = await m.rollback(pause_id, "ops", "resume it")
            assert asked.state == State.ROLLBACK_REQUESTED

    run(rollback_while_a_service_runs())

    async def next_cycle() -> None:
        async with harness(vault_path) as h:
            (done,) = await h.manager.run_pending()
            assert done.id == pause_id
            assert done.state == State.ROLLED_BACK
            assert done.decided_by == "ops"
            assert not h.scheduler.schedules["alpha"].paused

    run(next_cycle())


# ---------------------------------------------------------------------------- the CLI


def test_cli_lists_shows_approves_rejects_and_rolls_back(vault_path: Path) -> None:
    async def plan() -> list[str]:
        async with harness(vault_path) as h:
            a = await h.manager.propose(
                Proposal("force_breaker", HOST, {"state": "forced_open"}, reason="5xx \x1b[2J")
            )
            h.clock.now += 1
            b = await h.manager.propose(Proposal("quarantine_feed", "gamma"))
            h.clock.now += 1
            c = await h.manager.propose(Proposal("stretch_interval", "beta"))
            return [a.id, b.id, c.id]

    a, b, c = run(plan())
    v = ("--vault", str(vault_path))
    listed = run_echoctl(*v, "interventions", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    docs = json.loads(listed.stdout)
    assert [d["id"] for d in docs] == [a, b, c]
    assert docs[0]["reason"] == "5xx \x1b[2J"  # --json: the exact string
    table = run_echoctl(*v, "interventions", "list")
    assert table.returncode == 0
    assert "\x1b" not in table.stdout
    assert a in table.stdout
    shown = run_echoctl(*v, "interventions", "show", a)
    assert shown.returncode == 0
    assert "\\x1b[2J" in shown.stdout
    assert "\x1b" not in shown.stdout
    pending = run_echoctl(*v, "interventions", "list", "--state", "pending_approval", "--json")
    assert [d["id"] for d in json.loads(pending.stdout)] == [a, b]
    approved = run_echoctl(*v, "interventions", "approve", a, "--by", "ops", "--json")
    assert approved.returncode == 0, approved.stderr
    assert json.loads(approved.stdout)["state"] == "executed"
    no_reason = run_echoctl(*v, "interventions", "reject", b)
    assert no_reason.returncode == 2
    assert "--reason" in no_reason.stderr
    rejected = run_echoctl(*v, "interventions", "reject", b, "--reason", "not needed", "--json")
    assert json.loads(rejected.stdout)["state"] == "rejected"
    again = run_echoctl(*v, "interventions", "approve", b)
    assert again.returncode == 1
    assert "it is rejected" in again.stderr
    back = run_echoctl(*v, "interventions", "rollback", c, "--reason", "too slow", "--json")
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["state"] == "rolled_back"
    unknown = run_echoctl(*v, "interventions", "show", "nope\x1b[1m")
    assert unknown.returncode == 1
    assert "\x1b" not in unknown.stderr
    bad_state = run_echoctl(*v, "interventions", "list", "--state", "weird")
    assert bad_state.returncode == 2
    assert "unknown state" in bad_state.stderr
    with Vault.open(vault_path, readonly=True) as r:
        assert HarvestState(r.catalog).breaker(HOST)["state"] == "FORCED_OPEN"
        assert ScheduleStore(r.catalog).all()["beta"].stretch == 1.0
    events = [(e["id"], e["event"]) for e in entries(vault_path)]
    assert (a, "approved") in events
    assert (b, "rejected") in events
    assert (c, "rolled_back") in events
