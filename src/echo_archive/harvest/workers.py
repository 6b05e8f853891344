"""Worker processes for CPU-bound parsing (feedparser holds the GIL).

Both the harvest cycle (:mod:`echo_archive.harvest.cycle`) and the importer
(:mod:`echo_archive.harvest.importer`) parse in a few worker processes while
the parent process keeps the vault: the workers only turn bytes into
sightings and never touch the vault, its databases or its lock.

Start method: a *forked* worker starts in milliseconds with every module
already imported; a *spawned* one starts a new interpreter and imports the
sources again (about 0.3 s of CPU each, inside the timed work). Forking is
only safe while the parent runs a single thread (another thread might hold a
lock the child would inherit locked, Python docs, ``os.fork``) and is not
done on macOS (system frameworks are not fork-safe). :func:`parse_pool`
therefore forks on Linux when the process has one thread, else spawns; and
with ``fork`` it starts every worker at once, before the executor starts its
own manager thread and before the caller starts any (an asyncio resolver
thread, say). A forked worker leaves through ``os._exit``, so no inherited
handle is finalized in the child.
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
from concurrent.futures import ProcessPoolExecutor

__all__ = ["parse_pool", "start_method"]


def start_method() -> str:
    """``"fork"`` on Linux when this process runs a single thread, else ``"spawn"``."""
    if sys.platform.startswith("linux") and threading.active_count() == 1:
        return "fork"
    return "spawn"


def parse_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes for parsing, started now when they are forked.

    Args:
        workers: how many processes (at least 1).

    Returns:
        The executor; with ``fork`` its processes already exist.

    Raises:
        ValueError: ``workers`` is less than 1.
        OSError: the processes cannot be started (no fork, no semaphores...).
        RuntimeError: a forked worker died at once (``BrokenProcessPool``).
    """
    method = start_method()
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method))
    if method == "fork":
        # The first submit forks every worker (ProcessPoolExecutor does not fork
        # on demand), while this process still has a single thread.
        pool.submit(int).result()
    return pool
