"""`echoctl harvest` outcomes and exit codes, and Retry-After pauses, in real subprocesses.

Every test runs the real CLI against real loopback HTTP servers
(:class:`~tests.httpfaults.FaultServer`): 0 every feed harvested, 3 some
failed or skipped, 4 none harvested, 5 the vault failed (an ``ENOSPC``
injected at the catalog commit through ``ECHO_FAULT``). A ``Retry-After``
beyond the cap pauses the host for the cap only (RFC 9110 §10.2.3), the other
feeds on it are reported skipped with the pause's end (RFC 3339), and the
next run keeps the pause (operational state, ``host_pauses``).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest

from echo_archive.harvest.breaker import CircuitBreaker
from echo_archive.harvest.engine import FetchConfig
from echo_archive.harvest.state import HarvestState
from echo_archive.services import add_feed, list_feeds, remove_feed
from echo_archive.vault.vault import Vault

from .conftest import run_echoctl
from .httpfaults import FaultServer, Reply, retry_after

RSS = [("Content-Type", "application/rss+xml")]


def _rss(*titles: str) -> bytes:
    items = "".join(
        f"<item><guid>urn:{t}</guid><title>{t}</title><link>https://example.org/{t}</link></item>"
        for t in titles
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Local</title>'
        f"<link>https://example.org/</link>{items}</channel></rss>"
    ).encode()


def _feeds(vault: Path, **urls: str) -> None:
    """Replace the starter feeds (they would reach the network) by RSS feeds ``name=url``."""
    for feed in list_feeds(vault):
        remove_feed(vault, feed.name)
    for name, url in urls.items():
        add_feed(vault, name, "rss", interval=3600, params={"url": url}, allow_private=True)


def _harvest(vault: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict]:  # type: ignore[type-arg]
    r = run_echoctl("--vault", str(vault), "harvest", "--all", "--json", *args, env=env)
    assert r.stdout or r.stderr, "harvest printed nothing"
    doc = json.loads(r.stdout) if r.stdout else json.loads(r.stderr)
    return r.returncode, doc


def _by_name(doc: dict) -> dict[str, dict]:  # type: ignore[type-arg]
    return {f["name"]: f for f in doc["feeds"]}


@pytest.mark.slow
def test_all_feeds_harvested_exits_0(vault_path: Path) -> None:
    with FaultServer() as server:
        server.route("/a.xml", Reply(200, RSS, _rss("a")))
        _feeds(vault_path, one=server.url("/a.xml"))
        code, doc = _harvest(vault_path)
    assert code == 0
    assert doc["exit"] == 0
    assert _by_name(doc)["one"]["status"] == "harvested"
    assert (doc["all_failed"], doc["some_failed"]) == (False, False)


@pytest.mark.slow
def test_a_feed_answered_only_4xx_is_failed_and_the_run_exits_3(vault_path: Path) -> None:
    with FaultServer() as server:
        server.route("/a.xml", Reply(200, RSS, _rss("a")))
        server.route("/gone.xml", Reply(404, body=b"no such feed"))
        _feeds(vault_path, good=server.url("/a.xml"), gone=server.url("/gone.xml"))
        code, doc = _harvest(vault_path)
        text = run_echoctl("--vault", str(vault_path), "harvest", "--all")
    feeds = _by_name(doc)
    assert code == 3
    assert doc["exit"] == 3
    assert feeds["good"]["status"] == "harvested"
    assert feeds["gone"]["status"] == "failed"
    assert feeds["gone"]["failed"] is True
    assert feeds["gone"]["requests"] == {"404": 1}
    assert text.returncode == 3
    assert "1 of 2 feed(s) harvested, 1 failed" in text.stdout


@pytest.mark.slow
def test_every_feed_timed_out_cut_or_5xx_exits_4(vault_path: Path) -> None:
    with FaultServer() as server:
        server.route("/down.xml", Reply(500))
        server.route("/cut.xml", Reply(200, RSS, _rss("a", "b"), content_length=100_000))
        _feeds(vault_path, down=server.url("/down.xml"), cut=server.url("/cut.xml"))
        code, doc = _harvest(vault_path, "--max-requests", "1")
    feeds = _by_name(doc)
    assert code == 4
    assert doc["exit"] == 4
    assert {f["status"] for f in feeds.values()} == {"failed"}
    assert doc["all_failed"] is True
    assert "500" in feeds["down"]["requests"]
    assert feeds["cut"]["error"]


@pytest.mark.slow
def test_a_vault_that_fails_to_write_exits_5(vault_path: Path) -> None:
    with FaultServer() as server:
        server.route("/a.xml", Reply(200, RSS, _rss("a")))
        _feeds(vault_path, one=server.url("/a.xml"))
        code, doc = _harvest(vault_path, env={"ECHO_FAULT": "catalog.commit:ENOSPC"})
    assert code == 5
    assert doc["error"]["exit"] == 5
    assert "No space left" in doc["error"]["message"] or "ENOSPC" in doc["error"]["message"]
    assert run_echoctl("--vault", str(vault_path), "verify").returncode == 0


def _instant(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@pytest.mark.slow
def test_retry_after_beyond_the_cap_pauses_the_host_for_the_cap_across_runs(
    vault_path: Path,
) -> None:
    with FaultServer() as server, FaultServer() as other:
        server.route("/busy.xml", retry_after(99999))
        server.route("/b.xml", Reply(200, RSS, _rss("b")))
        other.route("/c.xml", Reply(200, RSS, _rss("c")))
        _feeds(
            vault_path,
            busy=server.url("/busy.xml"),
            sibling=server.url("/b.xml"),
            elsewhere=other.url("/c.xml"),
        )
        before = dt.datetime.now(dt.UTC).timestamp()
        code, doc = _harvest(vault_path)
        feeds = _by_name(doc)
        assert code == 3, doc
        assert feeds["busy"]["status"] == "failed"
        assert "exceeds cap 300 s" in feeds["busy"]["error"]
        assert feeds["elsewhere"]["status"] == "harvested"
        # the feed after the 429 on the same host is skipped, not failed, and says until when
        assert feeds["sibling"]["status"] == "skipped"
        assert feeds["sibling"]["requests"] == {"skipped": 1}
        until = _instant(feeds["sibling"]["paused_until"])
        assert before + 299 <= until <= before + 301 + 60  # the 300 s cap, not 99999 s
        assert "paused until" in feeds["sibling"]["error"]
        with Vault.open(vault_path, readonly=True) as v:
            (saved,) = HarvestState(v.catalog).pauses().values()
        assert saved[0] == pytest.approx(until, abs=0.01)

        # the next run keeps the pause: nothing is sent to the paused host
        hits = server.hits()
        code, doc = _harvest(vault_path)
        feeds = _by_name(doc)
        assert code == 3
        assert server.hits() == hits
        assert feeds["busy"]["status"] == feeds["sibling"]["status"] == "skipped"
        assert _instant(feeds["busy"]["paused_until"]) == pytest.approx(until, abs=0.01)
        text = run_echoctl("--vault", str(vault_path), "harvest", "--all")
        assert "skipped busy: host paused until" in text.stdout


def test_exit_codes_are_in_the_help() -> None:
    r = run_echoctl("harvest", "--help", env={"COLUMNS": "200"})
    assert r.returncode == 0
    flat = " ".join(r.stdout.split())
    for phrase in ("0 every feed harvested", "3 some feeds failed", "4 no feed", "5 the vault"):
        assert phrase in flat


@pytest.mark.slow
def test_breakers_show_rfc3339_times_and_an_open_breaker_error_names_the_reset(
    vault_path: Path,
) -> None:
    opened = time.time()
    with FaultServer() as server:
        server.route("/a.xml", Reply(200, RSS, _rss("a")))
        _feeds(vault_path, one=server.url("/a.xml"))
        host = server.authority
        breaker = CircuitBreaker(host, FetchConfig().breaker)
        breaker.transition_to_open(opened)  # as the harvester saves it after failures
        with Vault.open(vault_path) as v:
            HarvestState(v.catalog).put_breaker(host, breaker.to_state(), "t")

        listed = run_echoctl("--vault", str(vault_path), "breakers", "--json")
        assert listed.returncode == 0, listed.stderr
        view = json.loads(listed.stdout)[host]
        assert view["state"] == "OPEN"  # the stored state is kept as it was
        assert _instant(view["opened"]) == pytest.approx(opened, abs=1e-3)
        assert _instant(view["half_opens_at"]) == pytest.approx(opened + 300, abs=1e-3)
        assert view["reset"] == f"echoctl breakers --reset {host}"
        table = run_echoctl("--vault", str(vault_path), "breakers")
        stamp = dt.datetime.fromtimestamp(opened, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert stamp in table.stdout
        assert f"{host} is open: to reset it, `echoctl breakers --reset {host}`" in table.stdout
        assert max(len(line) for line in table.stdout.splitlines()) <= 80

        code, doc = _harvest(vault_path)
        assert code == 4
        error = _by_name(doc)["one"]["error"]
        assert error.startswith(f"circuit breaker open for host {host} until ")
        assert f"(to reset it: `echoctl breakers --reset {host}`)" in error
        assert server.hits() == 0
        text = run_echoctl("--vault", str(vault_path), "harvest", "--all")
        assert f"echoctl breakers --reset {host}" in " ".join(text.stdout.split())

        reset = run_echoctl("--vault", str(vault_path), "breakers", "--reset", host, "--json")
        assert reset.returncode == 0, reset.stderr
        assert json.loads(reset.stdout) == {"reset": host, "state": "closed"}
        code, doc = _harvest(vault_path)
        assert code == 0
        assert server.hits() == 1
