"""The supervisor in the running service: observe, score, plan, act, on real loopback hosts.

The service runs in this process on a frozen virtual clock
(:class:`~echo_archive.service.scheduler.ManualClock`); feed runs are asked
for with "harvest now" and supervisor cycles are run on the service's loop
(``Service.supervise_once``), so a test decides what a cycle saw. The hosts
are real loopback HTTP servers (tests/httpfaults.py), the fetch engine,
vault and writer are the service's own.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from echo_archive.service.runner import Service
from echo_archive.service.scheduler import ManualClock
from tests.conftest import run_echoctl
from tests.httpfaults import FaultServer, LoggedRequest, Reply
from tests.test_service import feed_table, in_process, make_vault, on_loop, rss, wait_for

pytestmark = pytest.mark.slow

FAST = """
[service]
tick = 1
health_every = 30
"""


def _runs(service: Service, feed: str) -> int:
    return sum(1 for name, _start, _outcome in service.scheduler.completed if name == feed)


def _harvest(service: Service, *feeds: str) -> None:
    """Ask for one run of each feed and wait until each has finished."""
    before = {f: _runs(service, f) for f in feeds}
    for f in feeds:
        assert on_loop(service, lambda f=f: service.scheduler.harvest_now(f))
    for f in feeds:
        wait_for(lambda f=f: _runs(service, f) > before[f], 60, f"a run of {f}")


def test_a_host_failing_a_third_of_requests_lowers_the_score_and_is_planned_for(
    tmp_path: Path,
) -> None:
    served = {"n": 0}

    def third_fails(_req: LoggedRequest) -> Reply:  # below the breaker's 50 %: it stays closed
        served["n"] += 1
        if served["n"] % 3 == 0:
            return Reply(500, body=b"oops")
        return Reply(200, headers=[("Content-Type", "application/rss+xml")], body=rss(3))

    with FaultServer() as bad, FaultServer() as good:
        bad.route("/f.xml", third_fails)
        good.route(
            "/f.xml", Reply(200, headers=[("Content-Type", "application/rss+xml")], body=rss(3))
        )
        feeds = feed_table("bad", bad.url("/f.xml"), 3600) + feed_table(
            "good", good.url("/f.xml"), 3600
        )
        vault = make_vault(tmp_path, feeds, FAST)
        clock = ManualClock(time.time())
        clock.stop_at = clock.now
        with in_process(vault, clock) as service:
            wait_for(lambda: _runs(service, "bad") and _runs(service, "good"), 60, "first runs")
            reports = []
            for _ in range(3):
                for _run in range(4):
                    _harvest(service, "bad", "good")
                clock.now += 60
                clock.stop_at = clock.now
                reports.append(on_loop(service, service.supervise_once))
            last = reports[-1]
            bad_host = bad.url("/").split("//", 1)[1].rstrip("/")
            kinds = {(p.kind, p.target) for r in reports for p in r.proposals}
            assert ("lower_host_rate", bad_host) in kinds, kinds
            good_host = good.url("/").split("//", 1)[1].rstrip("/")
            assert not any(t == good_host for _k, t in kinds)
            # lower_host_rate is low risk: the manager executed it at once, on the record
            acted = {(iv["kind"], iv["target"]): iv for iv in service.open_interventions}
            lowered = acted[("lower_host_rate", bad_host)]
            assert lowered["state"] == "executed"
            assert lowered["entries"]  # its log entries
            listed = run_echoctl("--vault", str(vault), "interventions", "list", "--json")
            assert listed.returncode == 0, listed.stderr
            assert "lower_host_rate" in listed.stdout
            assert 0.0 <= last.score < 1.0
            assert last.stability.components["error"] < 1.0
            with httpx.Client(base_url=service.url or "", timeout=10) as client:
                doc = client.get("/status").json()
                assert any(iv["kind"] == "lower_host_rate" for iv in doc["interventions"])
                assert doc["stability"]["score"] == pytest.approx(last.score)
                assert doc["stability"]["band"] in {"stable", "degraded", "unstable"}
                families = {
                    f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)
                }
            score = families["echo_stability_score"].samples[0].value
            assert score == pytest.approx(last.score)
            components = {
                s.labels["component"] for s in families["echo_stability_component"].samples
            }
            assert components == {"resource", "error", "performance", "dependency"}


def test_one_set_of_default_weights_and_a_reload_gives_the_supervisor_new_ones(
    tmp_path: Path,
) -> None:
    from echo_archive.config import SupervisorWeights
    from echo_archive.control.stability import StabilityWeights

    config = SupervisorWeights()
    value = StabilityWeights()
    assert (value.resource, value.error, value.performance, value.dependency) == (
        config.resource,
        config.error,
        config.performance,
        config.dependency,
    )
    vault = make_vault(tmp_path, "")
    clock = ManualClock(time.time())
    clock.stop_at = clock.now
    with in_process(vault, clock) as service:
        assert service.supervisor is not None
        assert service.supervisor.options.weights == value
        assert service.supervisor.options.horizon == 3600
        with (vault / "echo.toml").open("a", encoding="utf-8") as fh:
            fh.write(
                "\n[supervisor]\nhorizon = 600\n[supervisor.weights]\n"
                "resource = 0.1\nerror = 0.7\nperformance = 0.1\ndependency = 0.1\n"
            )
        assert on_loop(service, service.reload) is None
        options = service.supervisor.options
        assert options.horizon == 600
        assert options.weights == StabilityWeights(0.1, 0.7, 0.1, 0.1)
        # a file whose weights do not sum to 1 is rejected; the supervisor keeps its weights
        text = (vault / "echo.toml").read_text(encoding="utf-8")
        (vault / "echo.toml").write_text(text.replace("error = 0.7", "error = 0.9"), "utf-8")
        error = on_loop(service, service.reload)
        assert error is not None
        assert "sum to 1" in error
        assert service.supervisor.options.weights == StabilityWeights(0.1, 0.7, 0.1, 0.1)
