"""The one writer per vault: queue, batching, async awaiting, turns across processes.

Real vaults, real threads, real subprocesses holding the lock; no timing
assertions (speed is in ``benchmarks/bench_writer.py``): where a test needs
"while the writer is busy", a writer job blocks on an event the test sets.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import Future
from pathlib import Path

import pytest

from echo_archive.errors import EntryError, VaultError, VaultLockedError
from echo_archive.harvest.state import HarvestState
from echo_archive.vault.vault import Record, Vault
from echo_archive.vault.verify import verify_vault
from echo_archive.vault.writer import VaultWriter
from tests.conftest import sample_records

TIMEOUT = 60.0  # seconds a test waits for something that must happen, before failing


def _blocker(writer: VaultWriter) -> tuple[threading.Event, Future[None]]:
    """Queue a job that keeps the writer busy until the returned event is set."""
    go = threading.Event()

    def hold(vault: Vault) -> None:
        assert go.wait(TIMEOUT), "the test never released the writer"

    return go, writer.submit(hold)


def _rids(vault: Vault) -> dict[str, int]:
    """``{record id: entry index}`` of every file capture named ``rid-<record id>``."""
    found = {}
    for index in range(vault.log_state()[0]):
        name = json.loads(vault.entry(index).raw)["meta"].get("name", "")
        if name.startswith("rid-"):
            found[name[4:]] = index
    return found


def _rid_meta(rid: str) -> dict[str, object]:
    """A ``file`` capture meta (docs/entries.md) naming the record ``rid``."""
    return {"kind": "file", "name": f"rid-{rid}", "size": 0, "mtime": "2026-11-20T09:12:44.000000Z"}


def _record(rid: str) -> Record:
    return Record("capture", _rid_meta(rid), {"body": f"body of {rid}".encode()})


def test_queued_commits_coalesce_into_one_checkpoint_each_caller_its_receipts(
    vault_path: Path,
) -> None:
    with VaultWriter.open(vault_path) as writer:
        go, held = _blocker(writer)
        futures = [writer.commit(sample_records(k + 1, start=100 * k)) for k in range(10)]
        go.set()
        held.result(TIMEOUT)
        results = [f.result(TIMEOUT) for f in futures]
        with writer.reader() as reader:
            sizes = reader.checkpoint_sizes()
    # one durable commit for the ten callers: one checkpoint covers them all
    assert {r.checkpoint.size for r in results} == {55}
    assert sizes == [0, 55]
    indexes = [[rec.index for rec in r.receipts] for r in results]
    assert [len(i) for i in indexes] == list(range(1, 11))
    flat = [i for each in indexes for i in each]
    assert flat == list(range(55))  # each caller's records contiguous, callers in order
    for k, r in enumerate(results):
        names = [rec.entry.meta["name"] for rec in r.receipts]
        assert names == [f"item-{i}.json" for i in range(100 * k, 100 * k + k + 1)]


def test_an_invalid_record_fails_only_its_callers_commit(vault_path: Path) -> None:
    with VaultWriter.open(vault_path) as writer:
        go, _ = _blocker(writer)
        good1 = writer.commit([_record("a")])
        bad = writer.commit([_record("b"), Record("capture", {"kind": "test", "x": float("nan")})])
        good2 = writer.commit([_record("c")])
        go.set()
        assert good1.result(TIMEOUT).receipts[0].entry.meta["name"] == "rid-a"
        with pytest.raises(EntryError, match="nan"):
            bad.result(TIMEOUT)
        assert good2.result(TIMEOUT).receipts[0].entry.meta["name"] == "rid-c"
        writer.flush()
        with writer.reader() as reader:
            assert sorted(_rids(reader)) == ["a", "c"]  # nothing of the failed commit
            assert verify_vault(reader).ok


def test_jobs_run_in_order_and_a_failing_job_fails_alone(vault_path: Path) -> None:
    seen: list[int] = []

    def note(vault: Vault, k: int) -> int:
        seen.append(k)
        if k == 3:
            raise ValueError("job 3 fails")
        return k * k

    with VaultWriter.open(vault_path) as writer:
        futures = [writer.submit(note, k) for k in range(6)]
        commit = writer.commit([_record("after")])
        for k, f in enumerate(futures):
            if k == 3:
                with pytest.raises(ValueError, match="job 3"):
                    f.result(TIMEOUT)
            else:
                assert f.result(TIMEOUT) == k * k
        assert commit.result(TIMEOUT).receipts[0].index == 0
    assert seen == list(range(6))


def test_many_threads_submitting_get_distinct_receipts_and_the_vault_verifies(
    vault_path: Path,
) -> None:
    threads, each = 8, 40
    receipts: dict[str, int] = {}
    lock = threading.Lock()
    with VaultWriter.open(vault_path) as writer:

        def produce(t: int) -> None:
            for k in range(each):
                rid = f"{t}-{k}"
                result = writer.commit([_record(rid)]).result(TIMEOUT)
                with lock:
                    receipts[rid] = result.receipts[0].index
                assert result.checkpoint.size > result.receipts[0].index

        pool = [threading.Thread(target=produce, args=(t,)) for t in range(threads)]
        for th in pool:
            th.start()
        for th in pool:
            th.join(TIMEOUT)
    assert len(receipts) == threads * each
    assert len(set(receipts.values())) == threads * each  # every receipt distinct
    with Vault.open(vault_path, readonly=True) as reader:
        assert verify_vault(reader).ok
        assert _rids(reader) == receipts
        assert reader.size == threads * each


def test_async_callers_await_without_blocking_the_loop(vault_path: Path) -> None:
    # The writer's job waits until the loop shows it kept running (a heartbeat
    # sets the event): were the awaiting coroutines blocking the loop, the job
    # would time out and every commit fail.
    async def main(writer: VaultWriter) -> list[int]:
        beat = threading.Event()
        beats = 0

        def wait_for_heartbeat(vault: Vault) -> None:
            assert beat.wait(TIMEOUT), "the event loop was blocked while awaiting the writer"

        async def heartbeat() -> None:
            nonlocal beats
            while True:
                beats += 1
                if beats >= 3:
                    beat.set()
                await asyncio.sleep(0.001)

        ticker = asyncio.ensure_future(heartbeat())
        blocked = writer.submit_async(wait_for_heartbeat)
        producers = [writer.commit_async([_record(f"p{k}")]) for k in range(5)]
        await blocked
        results = await asyncio.gather(*producers)
        ticker.cancel()
        assert beats >= 3
        return [r.receipts[0].index for r in results]

    with VaultWriter.open(vault_path) as writer:
        indexes = asyncio.run(main(writer))
    assert sorted(indexes) == list(range(5))


def test_cancelling_an_awaiter_does_not_cancel_the_commit(vault_path: Path) -> None:
    async def main(writer: VaultWriter) -> None:
        go, _ = _blocker(writer)
        task = asyncio.ensure_future(writer.commit_async([_record("kept")]))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        go.set()

    with VaultWriter.open(vault_path) as writer:
        asyncio.run(main(writer))
    with Vault.open(vault_path, readonly=True) as reader:
        assert "kept" in _rids(reader)


def test_readers_never_wait_for_the_writer(vault_path: Path) -> None:
    with VaultWriter.open(vault_path) as writer:
        writer.commit([_record("first")]).result(TIMEOUT)
        go, _ = _blocker(writer)  # the writer is busy, holding the lock
        with writer.reader() as reader:
            assert reader.size == 1
            assert json.loads(reader.entry(0).raw)["meta"]["name"] == "rid-first"
        go.set()


def test_close_drains_the_queue_and_then_refuses(vault_path: Path) -> None:
    writer = VaultWriter.open(vault_path)
    go, _ = _blocker(writer)
    futures = [writer.commit([_record(f"d{k}")]) for k in range(20)]
    go.set()
    writer.close()
    assert all(f.done() for f in futures)
    assert sorted(f.result().receipts[0].index for f in futures) == list(range(20))
    with pytest.raises(VaultError, match="closed"):
        writer.commit([_record("late")])
    writer.close()  # twice is fine


def test_a_writer_needs_a_writable_vault(vault_path: Path) -> None:
    with Vault.open(vault_path, readonly=True) as reader, pytest.raises(VaultError):
        VaultWriter(reader)


# --------------------------------------------------------------------------- across processes

_HOLDER = textwrap.dedent(
    """
    import sys
    from echo_archive.vault.vault import Record, Vault
    v = Vault.open(sys.argv[1])
    with v.writing():
        if len(sys.argv) > 2:  # write while holding, so the other writer must catch up
            mtime = "2026-11-20T09:12:44.000000Z"
            meta = {"kind": "file", "name": "rid-" + sys.argv[2], "size": 1, "mtime": mtime}
            v.commit([Record("capture", meta, {"body": b"x"})])
        print("locked", flush=True)
        sys.stdin.readline()  # hold until told
    print("released", flush=True)
    """
)


def _holder(vault_path: Path, *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(vault_path), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    return proc


def _release(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == "released"
    proc.communicate(timeout=TIMEOUT)  # closes the pipes


def test_a_second_writer_waits_its_turn_and_catches_up(vault_path: Path) -> None:
    with VaultWriter.open(vault_path, wait=TIMEOUT) as writer:
        writer.commit([_record("mine-1")]).result(TIMEOUT)
        proc = _holder(vault_path, "theirs")  # appends one entry while holding the lock
        try:
            pending = writer.commit([_record("mine-2")])
            assert not pending.done()  # waits for the holder (checked before releasing it)
        finally:
            _release(proc)
        result = pending.result(TIMEOUT)
        assert result.receipts[0].index == 2  # after the other process's entry
    with Vault.open(vault_path, readonly=True) as reader:
        assert _rids(reader) == {"mine-1": 0, "theirs": 1, "mine-2": 2}
        assert verify_vault(reader).ok


def test_a_holder_past_the_wait_gets_a_clear_error_naming_it(vault_path: Path) -> None:
    with VaultWriter.open(vault_path, wait=0.2) as writer:
        proc = _holder(vault_path)
        try:
            with pytest.raises(VaultLockedError) as info:
                writer.commit([_record("refused")]).result(TIMEOUT)
        finally:
            _release(proc)
        message = str(info.value)
        assert f"pid {proc.pid}" in message
        assert socket.gethostname() in message
        assert " since " in message
        assert "waited 0.2 s" in message
        assert info.value.holder["pid"] == proc.pid
        # the failure was that batch's only: the next commit takes its turn
        assert writer.commit([_record("later")]).result(TIMEOUT).receipts[0].index == 0


def test_a_lock_left_by_another_host_is_refused_through_the_writer(vault_path: Path) -> None:
    with VaultWriter.open(vault_path) as writer:  # opening took and released the lock
        (vault_path / "lock").write_text(
            json.dumps({"host": "elsewhere.example", "pid": 1, "since": "x"})
        )
        with pytest.raises(VaultLockedError, match="another host"):
            writer.commit([_record("no")]).result(TIMEOUT)
    with VaultWriter.open(vault_path, break_stale=True) as writer:
        assert writer.commit([_record("yes")]).result(TIMEOUT).receipts[0].index == 0
    assert (vault_path / "lock").read_text() == ""  # released cleanly


# --------------------------------------------------------------------------- crash

_PRODUCERS = textwrap.dedent(
    """
    import sys, threading
    from pathlib import Path
    from echo_archive.vault.vault import Record
    from echo_archive.vault.writer import VaultWriter

    path, seed = Path(sys.argv[1]), sys.argv[2]
    writer = VaultWriter.open(path)
    out = threading.Lock()

    def produce(t):
        for k in range(100000):
            rid = f"{seed}-{t}-{k}"
            body = (rid + ":" + "z" * (k % 3000)).encode()
            mtime = "2026-11-20T09:12:44.000000Z"
            meta = {"kind": "file", "name": "rid-" + rid, "size": len(body), "mtime": mtime}
            record = Record("capture", meta, {"body": body})
            index = writer.commit([record]).result().receipts[0].index
            with out:
                print(index, rid, flush=True)

    threads = [threading.Thread(target=produce, args=(t,)) for t in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(8))
def test_sigkill_mid_batch_with_several_producers_keeps_every_acknowledged_record(
    vault_path: Path, trial: int
) -> None:
    acked: dict[str, int] = {}
    for round_ in range(3):  # crash after crash on the same vault
        proc = subprocess.Popen(
            [sys.executable, "-c", _PRODUCERS, str(vault_path), f"{trial}.{round_}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None
        wanted = 20 + 37 * ((trial * 3 + round_) % 7)  # kill at varied points of the stream
        lines: list[bytes] = []
        while len(lines) < wanted:
            line = proc.stdout.readline()
            if not line:
                pytest.fail(f"producers stopped early: {proc.stderr.read().decode()[-2000:]}")
            lines.append(line)
        os.kill(proc.pid, signal.SIGKILL)
        rest, _ = proc.communicate(timeout=TIMEOUT)
        lines += rest.split(b"\n")[:-1]  # a kill can cut the last line short
        for line in lines:  # receipts; the log lines (a sealed tail...) are not
            words = line.decode().split()
            if len(words) == 2 and words[0].isdigit():
                acked[words[1]] = int(words[0])
        with Vault.open(vault_path, readonly=True) as reader:
            report = verify_vault(reader)
            assert report.ok, report.problems[:5]
            present = _rids(reader)
            for rid, index in acked.items():
                assert present.get(rid) == index, f"acknowledged {rid} not at {index}"
            assert reader.size >= len(acked)
    with Vault.open(vault_path) as writer:  # the next writer seals any unsealed tail
        assert writer.size == writer.log_state()[0]
    with Vault.open(vault_path, readonly=True) as reader:
        report = verify_vault(reader)
        assert report.ok, report.problems
        assert not report.warnings, report.warnings


def test_services_write_through_the_writer(vault_path: Path, tmp_path: Path) -> None:
    from echo_archive.errors import NotFoundError
    from echo_archive.services.archive import archive_files
    from echo_archive.services.harvesting import reset_breaker

    files = []
    for k in range(5):
        path = tmp_path / f"f{k}.txt"
        path.write_text(f"file {k}")
        files.append(path)
    seen: list[int] = []
    with VaultWriter.open(vault_path) as writer:
        writer.submit(
            lambda v: HarvestState(v.catalog).put_breaker("h.example", {"state": "OPEN"}, "t")
        )
        archived = archive_files(writer, files, on_batch=lambda b: seen.extend(a.index for a in b))
        reset_breaker(writer, "h.example")
        with pytest.raises(NotFoundError):
            reset_breaker(writer, "h.example")
        with writer.reader() as reader:
            assert HarvestState(reader.catalog).breakers() == {}
            assert verify_vault(reader).ok
    assert [a.index for a in archived] == seen == list(range(5))
    assert [a.file for a in archived] == files


def test_on_commit_hears_every_durable_commit_and_a_failing_listener_undoes_nothing(
    vault_path: Path,
) -> None:
    heard: list[tuple[int, list[int]]] = []
    with VaultWriter.open(vault_path) as writer:
        writer.on_commit = lambda r: heard.append(
            (r.checkpoint.size, [x.index for x in r.receipts])
        )
        writer.commit([_record("a"), _record("b")]).result(TIMEOUT)
        writer.submit(lambda v: v.commit([_record("c")])).result(TIMEOUT)  # a job's own commit
        with pytest.raises(EntryError):
            writer.commit([Record("capture", {"kind": "test", "x": float("nan")})]).result(TIMEOUT)

        def broken(_result: object) -> None:
            raise RuntimeError("listener bug")

        writer.on_commit = broken
        done = writer.commit([_record("d")]).result(TIMEOUT)
        assert done.receipts[0].index == 3
        writer.flush()
        with writer.reader() as reader:
            assert sorted(_rids(reader)) == ["a", "b", "c", "d"]
    assert heard == [(2, [0, 1]), (3, [2])]  # nothing for the refused commit
