"""The writer lock: one writer at a time per vault, and the lock names its holder.

The lock is the file ``lock`` in the vault. A writer holds an exclusive
``flock(2)`` on it *while it writes* (a batch of commits, then it releases:
see :class:`~echo_archive.vault.vault.Vault.writing`) and writes its *holder
record* into it: ``{"host": ..., "pid": ..., "since": ...}`` (JSON; ``since``
is when this holder took the lock). The kernel drops the ``flock`` when the
holder dies, however it dies, so a crashed writer never blocks the next one.
Releasing cleanly empties the record.

Taking the lock:

* the ``flock`` is held by someone else: the taker waits its turn, up to
  ``wait`` seconds (:data:`DEFAULT_WAIT` unless told; ``flock(2)`` has no
  timeout, so it retries every few milliseconds, backing off to
  :data:`POLL_MAX` seconds, sleeping in between), then raises
  :class:`VaultLockedError` naming the holder (host, pid, since) from the
  record;
* the ``flock`` is free but the record is not empty (the previous writer died
  without releasing): on the same host with a dead pid, the lock is *stale* and
  is taken over, with a ``vault.lock.stale_taken_over`` warning in the log; a
  record from another host is refused (its process cannot be checked from here,
  and a shared filesystem may not carry ``flock``) unless ``break_stale=True``.

Readers take no lock: SQLite's WAL mode lets them read while the writer writes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import structlog

from echo_archive.errors import StorageError, VaultLockedError

__all__ = ["DEFAULT_WAIT", "POLL_MAX", "WriterLock", "pid_alive"]

log = structlog.get_logger("echo_archive.vault.lock")

DEFAULT_WAIT = 5.0
"""Seconds a writer waits for the lock by default before :class:`VaultLockedError` (``--wait``)."""

POLL_MAX = 0.025
"""Longest sleep, in seconds, between two tries at a busy lock (the first is 1 ms)."""


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (signal 0; a process of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WriterLock:
    """An exclusive writer lock on one vault, held until :meth:`release`.

    Args:
        path: the lock file (``<vault>/lock``); created if absent.
        break_stale: take over a record left by a writer on another host.
        wait: seconds to wait for a lock held by another live process
            (0: do not wait). Must not be negative.

    Raises:
        VaultLockedError: another live process still held the lock after
            ``wait`` seconds, or a record left by another host cannot be
            checked; ``holder`` names it.
        StorageError: the lock file cannot be opened or written.
        ValueError: ``wait`` is negative.

    """

    def __init__(self, path: Path, *, break_stale: bool = False, wait: float = 0.0) -> None:
        if wait < 0:
            raise ValueError(f"wait must be 0 or more seconds, got {wait}")
        self.path = path
        self.holder: dict[str, Any] = {}
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StorageError(f"cannot open the writer lock {path}: {exc}") from exc
        try:
            self._acquire(break_stale, wait)
        except BaseException:
            os.close(self._fd)
            raise

    def _read_record(self) -> dict[str, Any]:
        os.lseek(self._fd, 0, os.SEEK_SET)
        data = os.read(self._fd, 4096)
        if not data.strip():
            return {}
        try:
            record = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return {"unreadable": data[:200].decode("utf-8", "replace")}
        return record if isinstance(record, dict) else {"unreadable": str(record)[:200]}

    def _flock(self, wait: float) -> None:
        """Take the ``flock``, retrying with backoff for up to ``wait`` seconds."""
        deadline = time.monotonic() + wait
        pause = 0.001
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
            time.sleep(min(pause, left))
            pause = min(pause * 2, POLL_MAX)
        record = self._read_record()
        waited = f"; waited {wait:g} s (--wait SECONDS waits longer)" if wait else ""
        raise VaultLockedError(
            f"vault is locked by a running writer: {_describe(record)} "
            f"(lock file {self.path}){waited}",
            record,
        )

    def _acquire(self, break_stale: bool, wait: float) -> None:
        self._flock(wait)
        previous = self._read_record()
        host = socket.gethostname()
        if previous:
            same_host = previous.get("host") == host
            pid = previous.get("pid")
            # On the same host the flock is authoritative: a live pid that does not hold it
            # is a reused pid, so the record is stale either way; it is logged as such.
            if not same_host and not break_stale:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                raise VaultLockedError(
                    f"vault lock {self.path} was left by {_describe(previous)}, on another host; "
                    "make sure that writer is gone, then open with break_stale "
                    "(echoctl --break-lock)",
                    previous,
                )
            log.warning(
                "vault.lock.stale_taken_over",
                lock=str(self.path),
                previous_host=previous.get("host"),
                previous_pid=pid,
                previous_since=previous.get("since"),
                previous_pid_alive=isinstance(pid, int) and same_host and pid_alive(pid),
            )
        self.holder = {
            "host": host,
            "pid": os.getpid(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        self._write(json.dumps(self.holder).encode())

    def _write(self, data: bytes) -> None:
        # Not fsync'd: the record only names the holder (the kernel's flock is what
        # excludes), and the lock is now taken per batch of writes, where an fsync
        # would cost as much as the commit's own. After a power loss the record is
        # empty or stale, and a stale same-host record is taken over as above.
        try:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, data, 0)
        except OSError as exc:
            raise StorageError(f"cannot write the writer lock {self.path}: {exc}") from exc

    def release(self) -> None:
        """Empty the holder record and drop the lock. Safe to call twice."""
        if self._fd < 0:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        with contextlib.suppress(OSError):
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = -1


def _describe(record: dict[str, Any]) -> str:
    if not record:
        return "an unknown process (holder record empty)"
    if "unreadable" in record:
        return f"an unknown process (holder record unreadable: {record['unreadable']!r})"
    return f"pid {record.get('pid')} on host {record.get('host')} since {record.get('since')}"
