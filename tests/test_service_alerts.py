"""The service's alerts, clock watch and disk pause, with real processes and real receivers.

* a failing feed fires ``EchoFeedFailureRateHigh``, delivered to a loopback
  webhook receiver in Alertmanager's payload, shown by ``/status``; the
  scrape passes ``promtool check metrics``;
* the clock jumping backwards (an injected clock, the service in-process)
  is detected, alerted, and nothing stops;
* free space running out on a small tmpfs pauses harvesting while the
  service keeps serving and alerting, and freeing it resumes harvesting,
  nothing lost (``verify --full``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from echo_archive.control.metrics import METRIC_NAMES, METRICS
from echo_archive.events import Event
from echo_archive.service.runner import Service
from echo_archive.service.scheduler import ManualClock
from echo_archive.vault.vault import Vault
from tests.conftest import run_echoctl
from tests.httpfaults import FaultServer, LoggedRequest, Reply
from tests.receivers import webhook_receiver
from tests.test_service import (
    feed_table,
    in_process,
    make_vault,
    rss,
    serving,
    status,
    wait_for,
)

pytestmark = pytest.mark.slow

FAST = """
[service]
tick = 1
health_every = 1.2

[alerts]
group_wait = 0
group_interval = 1
evaluation_interval = 0.3
"""


def _webhook(url: str) -> str:
    return f'\n[[alerts.webhooks]]\nurl = "{url}"\n'


def _promtool() -> str | None:
    found = shutil.which("promtool")
    if found is None and os.environ.get("CI") == "true":
        pytest.fail("promtool is missing in CI (.ci/run installs Debian's prometheus)")
    return found


def _alertnames(bodies: list[dict[str, Any]], status_: str = "firing") -> set[str]:
    return {
        a["labels"]["alertname"]
        for body in bodies
        for a in body["alerts"]
        if a["status"] == status_
    }


def test_failing_feed_alerts_through_the_webhook_and_metrics_pass_promtool(
    tmp_path: Path,
) -> None:
    with FaultServer() as server, webhook_receiver() as (hook, received):
        server.route("/bad.xml", Reply(404, body=b"gone"))
        server.route(
            "/ok.xml", Reply(200, headers=[("Content-Type", "application/rss+xml")], body=rss(3))
        )
        service = FAST + "\n[alerts.rules.EchoFeedFailureRateHigh]\nfor = 0\n" + _webhook(hook)
        feeds = feed_table("bad", server.url("/bad.xml")) + feed_table("ok", server.url("/ok.xml"))
        vault = make_vault(tmp_path, feeds, service)
        with serving(vault) as (proc, url):
            wait_for(
                lambda: "EchoFeedFailureRateHigh" in _alertnames(received.bodies),
                60,
                "the webhook notification",
            )
            body = next(b for b in received.bodies if b["status"] == "firing")
            assert body["version"] == "4"
            alert = next(
                a for a in body["alerts"] if a["labels"]["alertname"] == "EchoFeedFailureRateHigh"
            )
            assert alert["labels"]["feed"] == "bad"
            assert alert["labels"]["severity"] == "warning"
            assert "ok" not in {
                a["labels"].get("feed")
                for a in body["alerts"]
                if a["labels"]["alertname"] == "EchoFeedFailureRateHigh"
            }
            doc = status(vault)
            firing = [a for a in doc["alerts"] if a["rule"] == "EchoFeedFailureRateHigh"]
            assert firing, doc["alerts"]
            assert firing[0]["labels"]["feed"] == "bad"
            listed = run_echoctl("--vault", str(vault), "alerts", "list", "--json")
            assert listed.returncode == 0, listed.stderr
            assert "EchoFeedFailureRateHigh" in listed.stdout
            text = httpx.get(f"{url}/metrics", timeout=10).text
            families = {f.name: f for f in text_string_to_metric_families(text)}
            # one list: every family a scrape shows is in METRICS, and the reverse
            ours = {n for n in families if n.startswith("echo_")}
            expected = {s.base_name for s in METRICS}
            assert ours == expected, ours ^ expected
            stale = {s.labels["feed"]: s.value for s in families["echo_feed_stale"].samples}
            assert stale == {"bad": 0.0, "ok": 0.0}
            assert families["echo_clock_backwards"].samples[0].value == 0.0
            promtool = _promtool()
            if promtool is not None:
                done = subprocess.run(
                    [promtool, "check", "metrics"], input=text, capture_output=True, text=True
                )
                assert done.returncode == 0, done.stdout + done.stderr
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0
        # offline, status shows what the service last saved
        offline = status(vault)
        assert offline["running"] is False
        assert any(a["rule"] == "EchoFeedFailureRateHigh" for a in offline["alerts"])
        text = run_echoctl("--vault", str(vault), "status")
        assert text.returncode == 0, text.stderr
        assert "EchoFeedFailureRateHigh {feed=bad, severity=warning}" in text.stdout


def test_every_exported_name_is_one_the_rules_may_read() -> None:
    assert {s.name for s in METRICS} == METRIC_NAMES
    assert len(METRIC_NAMES) == len(METRICS)


@pytest.fixture
def inprocess(tmp_path: Path) -> Iterator[tuple[Service, ManualClock, str]]:
    served = {"n": 0}

    def changing(_req: LoggedRequest) -> Reply:  # two items, new ones at every request
        served["n"] += 1
        body = rss(2).replace(b"urn:item:", f"urn:{served['n']}:".encode())
        return Reply(200, headers=[("Content-Type", "application/rss+xml")], body=body)

    with FaultServer() as server:
        server.route("/a.xml", changing)
        vault = make_vault(tmp_path, feed_table("a", server.url("/a.xml"), interval=3600), FAST)
        clock = ManualClock(time.time())
        clock.stop_at = clock.now  # virtual time stands still unless the test moves it
        with in_process(vault, clock) as service:
            assert service.url is not None
            yield service, clock, service.url


def test_clock_jumping_backwards_is_detected_alerted_and_nothing_stops(
    inprocess: tuple[Service, ManualClock, str],
) -> None:
    _service, clock, url = inprocess
    with httpx.Client(base_url=url, timeout=10) as client:
        _clock_jump(client, clock)


def _clock_jump(client: httpx.Client, clock: ManualClock) -> None:
    wait_for(lambda: client.get("/readyz").status_code == 200, what="/readyz 200")
    assert client.get("/status").json()["clock_backwards"] is False
    clock.now -= 7200.0  # two hours back
    clock.stop_at = clock.now
    wait_for(lambda: client.get("/status").json()["clock_backwards"], what="the detection")
    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
    assert families["echo_clock_backwards"].samples[0].value == 1.0
    wait_for(
        lambda: any(
            a["rule"] == "EchoClockBackwards" for a in client.get("/status").json()["alerts"]
        ),
        what="the EchoClockBackwards alert",
    )
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200, client.get("/readyz").text
    # the clock catching up ends it (the alert keeps firing for its keep_firing_for)
    clock.now += 7200.0 + 10
    clock.stop_at = clock.now
    wait_for(lambda: not client.get("/status").json()["clock_backwards"], what="the recovery")


def _mount_tmpfs(where: Path, size: str) -> None:
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")


def test_disk_full_pauses_harvesting_alerts_and_resumes_losing_nothing(tmp_path: Path) -> None:
    mount = tmp_path / "small"
    _mount_tmpfs(mount, "64m")
    try:
        with FaultServer() as server, webhook_receiver() as (hook, received):
            server.route(
                "/a.xml",
                Reply(200, headers=[("Content-Type", "application/rss+xml")], body=rss(4)),
            )
            vault = make_vault(mount, feed_table("a", server.url("/a.xml")), FAST + _webhook(hook))
            with serving(vault) as (proc, url):
                client = httpx.Client(base_url=url, timeout=10)
                wait_for(lambda: status(vault)["feeds"][0]["runs"] >= 1, 60, "the first run")
                # fill the disk to 1 MiB free (critical: below 5 % of 64 MiB)
                filler = mount / "filler"
                free = shutil.disk_usage(mount).free
                with filler.open("wb") as fh:
                    fh.truncate(0)
                    block = b"\0" * (1 << 20)
                    for _ in range(max(0, free - (1 << 20)) >> 20):
                        fh.write(block)
                wait_for(lambda: client.get("/status").json()["paused"], 30, "the pause")
                wait_for(
                    lambda: "EchoStorageCritical" in _alertnames(received.bodies),
                    60,
                    "the storage alert",
                )
                assert client.get("/healthz").status_code == 200
                # while paused, "harvest now" asks are queued but nothing is fetched
                hits = server.hits("/a.xml")
                run_echoctl("--vault", str(vault), "harvest", "--now", "a")
                time.sleep(3)
                assert server.hits("/a.xml") == hits
                assert client.get("/status").json()["paused"] is True
                filler.unlink()
                wait_for(lambda: not client.get("/status").json()["paused"], 30, "the resumption")
                wait_for(lambda: server.hits("/a.xml") > hits, 30, "a run after resuming")
                wait_for(
                    lambda: "EchoStorageCritical" in _alertnames(received.bodies, "resolved"),
                    60,
                    "the resolved notification",
                )
                client.close()
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(timeout=60) == 0
            verify = run_echoctl("--vault", str(vault), "verify", "--full")
            assert verify.returncode == 0, verify.stdout + verify.stderr
            page = json.loads(run_echoctl("--vault", str(vault), "items", "--json").stdout)
            assert {e["native_id"] for e in page["entries"]} == {f"urn:item:{i}" for i in range(4)}
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_each_committed_item_is_an_event_whose_id_is_its_log_index(
    inprocess: tuple[Service, ManualClock, str],
) -> None:
    service, _clock, _url = inprocess
    seen: list[Event] = []
    service.bus.subscribe(seen.append)
    wait_for(lambda: service.scheduler.completed, what="the first run")
    assert service.loop is not None
    service.loop.call_soon_threadsafe(service.scheduler.harvest_now, "a")
    second = {"urn:2:0", "urn:2:1"}  # the items of the harvest-now run's response
    wait_for(
        lambda: second <= {e.data["native_id"] for e in seen if e.kind == "item_archived"},
        what="the second run's item events",
    )
    items = [e for e in seen if e.kind == "item_archived"]
    with Vault.open(service.path, readonly=True) as vault:
        for event in items:
            assert event.index is not None
            entry = vault.entry(event.index)
            assert entry.type == "item"
            assert entry.meta["native_id"] == event.data["native_id"]
            assert event.data["feed"] == "a"
    indexes = [e.index for e in items]
    assert indexes == sorted(indexes)
    assert len(set(indexes)) == len(indexes)
