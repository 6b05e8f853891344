"""Writers take turns across processes: real ``echoctl`` subprocesses, real lock holders.

* ``echoctl add`` while a harvest (a real subprocess) waits on a slow
  loopback server succeeds at once (``--wait 0``): a harvest holds the
  writer lock only while a batch commits;
* two ``echoctl add`` at once both succeed (the second waits its turn);
* a holder that keeps the lock past ``--wait`` gets exit 1 and an error
  naming it (host, pid, since).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from echo_archive.vault.vault import Vault
from echo_archive.vault.verify import verify_vault

from .httpfaults import FaultServer, LoggedRequest, Reply
from .test_cli_harvest import echoctl

TIMEOUT = 60.0
ITEMS = 52  # the harvest commits its first batch of 50 exchanges, then waits on the network
FIRST_BATCH = 50 + 49  # the list and 49 item captures, and their 49 items


def _files(tmp_path: Path, prefix: str, n: int) -> list[str]:
    out = []
    for k in range(n):
        path = tmp_path / f"{prefix}-{k}.txt"
        path.write_text(f"evidence {prefix} {k}\n")
        out.append(str(path))
    return out


def _entries(vault: Path) -> list[dict[str, object]]:
    with Vault.open(vault, readonly=True) as v:
        report = verify_vault(v)
        assert report.ok, report.problems[:3]
        assert not report.warnings, report.warnings
        return [json.loads(v.entry(i).raw) for i in range(v.size)]


@pytest.mark.slow
def test_add_during_a_running_harvest_succeeds_without_waiting(tmp_path: Path) -> None:
    vault = tmp_path / "v"
    assert echoctl("init", str(vault)).returncode == 0
    arrived, go = threading.Event(), threading.Event()

    def slow_item(request: LoggedRequest) -> Reply:
        number = int(request.path.rsplit("/", 1)[1].split(".")[0])
        if number >= 49:  # the 51st exchange: the first batch of 50 has committed
            arrived.set()
            go.wait(TIMEOUT)
        return Reply.json({"id": number, "type": "story", "title": f"story {number}", "time": 1})

    with FaultServer() as server:
        server.route("/v0/topstories.json", Reply.json(list(range(ITEMS))))
        for number in range(ITEMS):
            server.route(f"/v0/item/{number}.json", slow_item)
        added = echoctl(
            *("--vault", str(vault), "feeds", "add", "hn-slow", "--source", "hn"),
            *("--param", "list=top", "--param", f"limit={ITEMS}"),
            *("--param", f"base_url={server.url('/v0')}", "--allow-private"),
        )
        assert added.returncode == 0, added.stderr
        config = vault / "echo.toml"  # the loopback host is fast (default: 1 request/s)
        config.write_text(
            config.read_text() + f'\n[limits."{server.authority}"]\nrate = 1000\nburst = 100\n'
        )
        harvest = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "echo_archive",
                "--vault",
                str(vault),
                "harvest",
                "--feed",
                "hn-slow",
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert arrived.wait(TIMEOUT), "the harvest never reached the slow responses"
            # The harvest is waiting on the network, its first batch committed:
            # it does not hold the lock, so an add need not wait at all.
            files = _files(tmp_path, "during", 3)
            during = echoctl("--vault", str(vault), "add", "--wait", "0", *files, "--json")
        finally:
            go.set()
            stdout, stderr = harvest.communicate(timeout=TIMEOUT)
    assert during.returncode == 0, during.stderr
    assert harvest.returncode == 0, stderr
    (feed,) = json.loads(stdout)["feeds"]
    assert feed["new"] == ITEMS
    assert feed["captures"] == ITEMS + 1
    entries = _entries(vault)
    names = sorted(str(e["meta"]["name"]) for e in entries if e["meta"].get("kind") == "file")
    assert names == [f"during-{k}.txt" for k in range(3)]
    indexes = [row["index"] for row in json.loads(during.stdout)]
    assert all(index >= FIRST_BATCH for index in indexes)  # after the committed batch
    assert sum(e["type"] == "capture" and e["meta"].get("kind") == "http" for e in entries) == (
        ITEMS + 1
    )


@pytest.mark.slow
def test_two_concurrent_adds_both_succeed(tmp_path: Path) -> None:
    vault = tmp_path / "v"
    assert echoctl("init", str(vault)).returncode == 0
    batches = {p: _files(tmp_path, p, 40) for p in ("a", "b")}
    procs = {
        p: subprocess.Popen(
            [sys.executable, "-m", "echo_archive", "--vault", str(vault), "add", *files, "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p, files in batches.items()
    }
    outputs = {p: proc.communicate(timeout=TIMEOUT) for p, proc in procs.items()}
    for p, proc in procs.items():
        assert proc.returncode == 0, outputs[p][1]
    receipts = {p: json.loads(out) for p, (out, _) in outputs.items()}
    indexes = [row["index"] for rows in receipts.values() for row in rows]
    assert sorted(indexes) == list(range(80))  # every file once, no index twice
    entries = _entries(vault)
    for rows in receipts.values():
        for row in rows:
            assert entries[row["index"]]["meta"]["name"] == Path(row["file"]).name


_HOLDER = textwrap.dedent(
    """
    import sys
    from echo_archive.vault.vault import Vault
    v = Vault.open(sys.argv[1])
    with v.writing():
        print("locked", flush=True)
        sys.stdin.readline()
    """
)


@pytest.mark.slow
def test_a_holder_past_wait_fails_the_add_naming_it(tmp_path: Path) -> None:
    vault = tmp_path / "v"
    assert echoctl("init", str(vault)).returncode == 0
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(vault)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == "locked"
        files = _files(tmp_path, "late", 2)
        refused = echoctl("--vault", str(vault), "add", "--wait", "0.3", *files)
    finally:
        holder.communicate("go\n", timeout=TIMEOUT)
    assert refused.returncode == 1
    message = " ".join(refused.stderr.split())  # Rich may wrap the line
    assert "vault is locked by a running writer" in message
    assert f"pid {holder.pid}" in message
    assert f"host {socket.gethostname()}" in message
    assert " since " in message
    assert "waited 0.3 s" in message
    assert refused.stdout == ""  # nothing was archived, nothing claimed
    assert [e for e in _entries(vault) if e["meta"].get("kind") == "file"] == []
    retried = echoctl("--vault", str(vault), "add", *files)  # the holder is gone
    assert retried.returncode == 0, retried.stderr
