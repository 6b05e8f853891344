"""``supervisor``: the supervisor on the labelled fault-scenario set, on and off.

Every scenario of :data:`echo_archive.control.scenarios.SCENARIOS` is played
with :data:`SEEDS` seeds (120 accelerated cycles of 60 simulated seconds each,
a fault from cycle 30) under a fresh :class:`Supervisor` with the default
:class:`SupervisorOptions`, which acts on its proposals in the scenario
model (supervisor on). Figures, per scenario and overall:

* detection recall: the share of faulty episodes in which the expected
  finding (kind and target) was raised during the fault (target >= 95%);
* median cycles to detect: from the fault's first cycle, counted from 1
  (target <= 2);
* false alarms: clean cycles (the clean scenario, and the others' cycles
  before the fault and after its 10 recovery cycles) with any finding
  (target <= 1%);
* requests sent to the failing host during the fault, supervisor on
  against off (the same seeds, the proposals not applied): the on/off
  ratio for the three host faults (target <= 0.5, "at least halved", for
  the failing hosts: 5xx and 429s; the slow host's ratio is shown without
  one, as a slow host still answers). Off,
  the supervisor still observes; the effects the model gives the proposals
  are documented in :mod:`echo_archive.control.scenarios` (rate factor,
  breaker forced open, interval stretched, feed quarantined) and stand for
  the intervention manager, which is not part of this benchmark.

The simulated time is the scenario's; the benchmark's own cost is reported
as the supervisor's mean time per cycle (microseconds, no target).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from echo_archive.control.scenarios import SCENARIOS, Episode, play
from echo_archive.control.supervisor import Supervisor
from workload import Result, say

SEEDS = 20
HOST_FAULTS = ("host_5xx", "throttle_429", "slow")
RECALL_TARGET = 0.95
FALSE_ALARM_TARGET = 0.01
CYCLES_TARGET = 2.0
REQUEST_RATIO_TARGET = 0.5


def run(out: Path) -> Result:
    """Play every scenario with :data:`SEEDS` seeds, supervisor on (and off for host faults)."""
    del out  # nothing is written: the scenarios are simulated in memory
    result = Result("supervisor")
    episodes: dict[str, list[Episode]] = {}
    off: dict[str, list[Episode]] = {}
    cycles = 0
    started = time.perf_counter()
    for s in SCENARIOS:
        episodes[s.name] = [play(s, seed, Supervisor()) for seed in range(SEEDS)]
        cycles += s.cycles * SEEDS
    elapsed = time.perf_counter() - started
    for name in HOST_FAULTS:
        s = next(x for x in SCENARIOS if x.name == name)
        off[name] = [play(s, seed, Supervisor(), act=False) for seed in range(SEEDS)]

    header = (
        f"{'scenario':<14}{'recall':>8}{'median':>8}{'max':>6}{'false alarms':>20}"
        f"{'requests on/off':>24}  proposals (seed 0)"
    )
    say(header)
    detected = faulty = alarms = clean = 0
    delays: list[int] = []
    for s in SCENARIOS:
        eps = episodes[s.name]
        a = sum(e.false_alarms for e in eps)
        c = sum(e.clean_cycles for e in eps)
        alarms, clean = alarms + a, clean + c
        recall_cell = median_cell = max_cell = "-"
        if s.finding is not None:
            hits = [e.cycles_to_detect for e in eps if e.cycles_to_detect is not None]
            detected, faulty = detected + len(hits), faulty + len(eps)
            delays += hits
            recall = len(hits) / len(eps)
            recall_cell = f"{recall:.0%}"
            if hits:
                median_cell, max_cell = f"{statistics.median(hits):g}", f"{max(hits)}"
                result.add(
                    f"{s.name}: median cycles to detect",
                    statistics.median(hits),
                    "cycles",
                    at_most=CYCLES_TARGET,
                )
            result.add(
                f"{s.name}: detection recall", 100 * recall, "%", at_least=100 * RECALL_TARGET
            )
        ratio_cell = "-"
        if s.name in off:
            sent_on = sum(e.faulty_requests for e in eps)
            sent_off = sum(e.faulty_requests for e in off[s.name])
            ratio = sent_on / sent_off if sent_off else 0.0
            ratio_cell = f"{sent_on}/{sent_off} = {ratio:.2f}"
            # the target is for failing hosts (5xx, 429s); a slow host answers, it is shown as is
            result.add(
                f"{s.name}: requests to the faulty host, on / off",
                ratio,
                "x",
                at_most=None if s.name == "slow" else REQUEST_RATIO_TARGET,
            )
        say(
            f"{s.name:<14}{recall_cell:>8}{median_cell:>8}{max_cell:>6}"
            f"{f'{a}/{c} = {a / c:.2%}' if c else '-':>20}{ratio_cell:>24}  {eps[0].proposals}"
        )
    result.add(
        "detection recall, all faults", 100 * detected / faulty, "%", at_least=100 * RECALL_TARGET
    )
    result.add(
        "median cycles to detect, all faults",
        statistics.median(delays),
        "cycles",
        at_most=CYCLES_TARGET,
    )
    result.add(
        "false alarms on clean cycles", 100 * alarms / clean, "%", at_most=100 * FALSE_ALARM_TARGET
    )
    result.add("supervisor time per cycle (with its Observer)", 1e6 * elapsed / cycles, "µs")
    result.details = {
        "seeds": SEEDS,
        "episodes": {
            name: [
                {
                    "seed": e.seed,
                    "cycles_to_detect": e.cycles_to_detect,
                    "false_alarms": e.false_alarms,
                    "clean_cycles": e.clean_cycles,
                    "faulty_requests": e.faulty_requests,
                    "proposals": e.proposals,
                }
                for e in eps
            ]
            for name, eps in episodes.items()
        },
    }
    result.notes.append(
        f"{SEEDS} seeds a scenario, 120 cycles each (fault in cycles 30-89; disk_filling 30-79); "
        "a detection is the expected finding for the expected target during the fault"
    )
    result.notes.append(
        "requests on/off: the proposals' effect is the scenario model's (rate factor, breaker "
        "forced open, interval stretched), standing for the intervention manager"
    )
    return result
