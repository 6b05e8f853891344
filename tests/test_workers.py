"""The parse pool (echo_archive.harvest.workers): fork when safe, spawn otherwise."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from echo_archive.harvest.workers import parse_pool, start_method

_CHILD = """
import os, sys
from echo_archive.harvest.workers import parse_pool, start_method

def pid(_):
    return os.getpid()

if __name__ == "__main__":
    assert start_method() == "fork", start_method()
    pool = parse_pool(2)
    started = sorted(pool._processes)  # forked at once, before any work was submitted
    pids = set(pool.map(pid, range(40)))
    pool.shutdown()
    print(len(started), int(pids <= set(started)), int(os.getpid() in pids))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork is used on Linux only")
def test_a_single_threaded_linux_process_forks_every_worker_at_once(tmp_path: Path) -> None:
    # In a fresh interpreter: this one may hold threads left by other tests.
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2", "1", "0"]


def test_a_process_with_other_threads_spawns() -> None:
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        assert start_method() == "spawn"
    finally:
        release.set()
        other.join()


def test_at_least_one_worker() -> None:
    with pytest.raises(ValueError, match="max_workers"):
        parse_pool(0)
