"""One writer per vault in a process: a thread fed by a queue, batching and committing.

Every write of a process goes through one :class:`VaultWriter`: a thread that
owns the vault's writer connections and runs the queued work in order.
Callers never touch the writer's connections; readers open their own
read-only ones (:meth:`VaultWriter.reader`, or
:meth:`~echo_archive.vault.vault.Vault.open` with ``readonly=True``) and never
wait for the writer (SQLite WAL: a reader sees each committed state as it
lands).

Two kinds of work are queued:

* **record commits** (:meth:`VaultWriter.commit`): consecutive ones coalesce
  into one durable commit (one blob write, one catalog transaction, one
  signed checkpoint: the commit protocol of
  :mod:`echo_archive.vault.vault`), and each caller still gets its own
  :class:`~echo_archive.vault.vault.CommitResult` with its own receipts and
  the covering checkpoint;
* **write jobs** (:meth:`VaultWriter.submit`): any function of the writer
  :class:`~echo_archive.vault.vault.Vault` (a harvest batch's
  :func:`~echo_archive.harvest.commit.commit_batch`, a breaker or validator
  save, a report), run on the writer thread, in submission order.

Synchronous callers get a :class:`concurrent.futures.Future`; async callers
``await`` :meth:`VaultWriter.commit_async` / :meth:`VaultWriter.submit_async`,
which never block the event loop (:func:`asyncio.wrap_future`), and whose
cancellation never cancels the queued work (it is shielded: work once
submitted is done, or failed with its error).

Across processes, the writer takes the writer lock for each batch of queued
work and releases it when its queue is empty (or after holding it
:attr:`VaultWriter.max_hold` seconds, to give other processes their turn):
see :meth:`~echo_archive.vault.vault.Vault.writing`, which also catches up
with what another process wrote in between. A process that cannot get the
lock within the vault's ``wait`` fails the work of that batch with
:class:`~echo_archive.errors.VaultLockedError` naming the holder; later work
tries again.

A failed batch fails only the jobs in it, each with the error: a coalesced
commit that a record of one caller makes invalid
(:class:`~echo_archive.errors.EntryError`, nothing logged) is retried caller
by caller, so only that caller's future fails. :meth:`VaultWriter.close`
drains the queue (everything submitted before it is done) and closes the
vault. The writer thread starts on the first submission (so a process can
still fork its parse workers, :mod:`echo_archive.harvest.workers`, after
opening its writer); it is a daemon thread, and an ``atexit`` hook closes
writers still open at interpreter exit.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, Self, TypeVar

import structlog

from echo_archive.errors import EntryError, VaultError
from echo_archive.vault.derived import DerivedIndex
from echo_archive.vault.lock import DEFAULT_WAIT, POLL_MAX
from echo_archive.vault.vault import CommitResult, Record, Vault

__all__ = ["DEFAULT_MAX_HOLD", "DEFAULT_MAX_RECORDS", "VaultWriter"]

log = structlog.get_logger("echo_archive.vault.writer")

P = ParamSpec("P")
T = TypeVar("T")

DEFAULT_MAX_RECORDS = 4096
"""At most this many queued records coalesce into one commit."""

DEFAULT_MAX_HOLD = 1.0
"""Seconds a busy writer keeps the writer lock before letting other processes have a turn."""


@dataclass(eq=False)
class _Job:
    """One piece of queued work: records to commit, or a function of the vault."""

    future: Future[Any]
    records: Sequence[Record] | None = None
    call: Callable[[Vault], Any] | None = None
    what: str = ""
    started: bool = field(default=False)


_STOP = object()
_LIVE: weakref.WeakSet[VaultWriter] = weakref.WeakSet()


@atexit.register
def _close_live_writers() -> None:  # pragma: no cover - runs at interpreter exit
    for writer in list(_LIVE):
        with contextlib.suppress(Exception):
            writer.close()


class VaultWriter:
    """The one writer of a vault in this process: a thread fed by a queue.

    Use :meth:`open` (or pass a writer :class:`~echo_archive.vault.vault.Vault`
    the writer then owns: no other thread may use it after). Thread-safe:
    any thread, and any event loop, may submit.

    Args:
        vault: a vault opened as a writer; owned (and closed) by this writer.
        max_records: at most this many records coalesce into one commit.
        max_hold: seconds a continuously busy writer holds the writer lock
            before releasing it for a moment (other processes' turn).

    Raises:
        VaultError: ``vault`` is open read-only.
        ValueError: ``max_records`` < 1 or ``max_hold`` <= 0.
    """

    def __init__(
        self,
        vault: Vault,
        *,
        max_records: int = DEFAULT_MAX_RECORDS,
        max_hold: float = DEFAULT_MAX_HOLD,
    ) -> None:
        if vault.readonly:
            raise VaultError(f"vault {vault.path} is open read-only; a writer needs the writer")
        if max_records < 1:
            raise ValueError(f"max_records must be at least 1, got {max_records}")
        if max_hold <= 0:
            raise ValueError(f"max_hold must be positive seconds, got {max_hold}")
        self._vault = vault
        self.path: Path = vault.path
        self.settings = vault.settings
        self.verifier = vault.verifier
        self.origin: str = vault.origin
        self.max_records = max_records
        self.max_hold = max_hold
        self._queue: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._gate = threading.Lock()  # orders "closed" against enqueueing
        self._closed = False
        self._stop_seen = False
        # Started on the first submission, so a process can still fork its parse
        # workers (safe only while single-threaded) after opening its writer.
        self.on_job: Callable[[float], None] | None = None
        """Called on the writer thread with the seconds each job or coalesced commit took
        (the service's commit-latency histogram); it must be quick and must not raise."""
        self._thread = threading.Thread(
            target=self._main, name=f"echo-vault-writer {vault.path}", daemon=True
        )
        _LIVE.add(self)

    @property
    def on_commit(self) -> Callable[[CommitResult], None] | None:
        """The vault's :attr:`~echo_archive.vault.vault.Vault.on_commit` (set it here).

        Called on the writer thread with each durable commit's result (every
        commit and append, from record commits and from submitted jobs alike).
        """
        return self._vault.on_commit

    @on_commit.setter
    def on_commit(self, listener: Callable[[CommitResult], None] | None) -> None:
        self._vault.on_commit = listener

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        wait: float = DEFAULT_WAIT,
        break_stale: bool = False,
        max_records: int = DEFAULT_MAX_RECORDS,
        max_hold: float = DEFAULT_MAX_HOLD,
        derived: Iterable[DerivedIndex] = (),
    ) -> VaultWriter:
        """Open the vault at ``path`` as a writer and start its writer thread.

        Args:
            path: the vault directory.
            wait: seconds each batch waits for the writer lock held by
                another process (``--wait``).
            break_stale: take over a lock record left by another host.
            max_records: see the class.
            max_hold: see the class.
            derived: derived indexes the writer keeps current (see
                :meth:`~echo_archive.vault.vault.Vault.open`).

        Raises:
            VaultNotFoundError, ConfigError, StorageError: as for
                :meth:`~echo_archive.vault.vault.Vault.open`.
            VaultLockedError: another process held the lock for ``wait``
                seconds while the vault was opened (it seals a crashed tail).
        """
        vault = Vault.open(path, wait=wait, break_stale=break_stale, derived=derived)
        try:
            return cls(vault, max_records=max_records, max_hold=max_hold)
        except BaseException:
            vault.close()
            raise

    # ------------------------------------------------------------------ submitting
    def commit(self, records: Sequence[Record]) -> Future[CommitResult]:
        """Queue ``records`` for a durable commit; coalesced with other queued commits.

        Args:
            records: the records, in the order their entries join the log
                (they stay contiguous in the log).

        Returns:
            A future of this call's :class:`~echo_archive.vault.vault.CommitResult`:
            one receipt per record, in order, and the signed checkpoint
            covering them. Resolved only once the checkpoint is stored
            (the records are then acknowledged).

        Raises:
            VaultError: the writer is closed (at submission). The future
                raises what :meth:`~echo_archive.vault.vault.Vault.commit`
                raises (EntryError, StorageError, VaultLockedError).
        """
        return self._put(_Job(Future(), records=list(records), what="commit"))

    def submit(
        self, fn: Callable[Concatenate[Vault, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> Future[T]:
        """Queue ``fn(vault, *args, **kwargs)`` to run on the writer thread, in order.

        ``fn`` gets the writer :class:`~echo_archive.vault.vault.Vault` with
        the writer lock held (and caught up); it must not keep the vault or
        its connections beyond the call.

        Returns:
            A future of ``fn``'s result (or its exception).

        Raises:
            VaultError: the writer is closed.
        """

        def call(vault: Vault) -> T:
            return fn(vault, *args, **kwargs)

        name = getattr(fn, "__qualname__", repr(fn))
        return self._put(_Job(Future(), call=call, what=name))

    async def commit_async(self, records: Sequence[Record]) -> CommitResult:
        """:meth:`commit`, awaited without blocking the event loop.

        Cancelling the awaiting task does not cancel the commit.

        Raises:
            As :meth:`commit` and its future.
        """
        return await _await(self.commit(records))

    async def submit_async(
        self, fn: Callable[Concatenate[Vault, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """:meth:`submit`, awaited without blocking the event loop.

        Cancelling the awaiting task does not cancel the job.

        Raises:
            As :meth:`submit` and ``fn``.
        """
        return await _await(self.submit(fn, *args, **kwargs))

    def flush(self) -> None:
        """Block until everything submitted before this call is done (or failed).

        Raises:
            VaultError: the writer is closed.
        """
        self.submit(_nothing).result()

    def reader(self) -> Vault:
        """Open a new read-only view of the vault, for the calling thread (caller closes it).

        Readers never wait for the writer.
        """
        return Vault.open(self.path, readonly=True)

    @property
    def queue_depth(self) -> int:
        """Jobs queued and not yet taken by the writer thread (approximate, for monitoring)."""
        return self._queue.qsize()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def close(self, timeout: float | None = None) -> None:
        """Drain the queue (every job submitted before is done), stop the thread, close the vault.

        Safe to call twice, and from any thread except the writer's.

        Args:
            timeout: seconds to wait for the drain (None: as long as it takes).

        Raises:
            TimeoutError: the queue was not drained within ``timeout``.
        """
        with self._gate:
            if not self._closed:
                self._closed = True
                self._queue.put(_STOP)
            if not self._thread.is_alive() and self._thread.ident is None:
                self._thread.start()  # never started: it closes the vault at once
        if threading.current_thread() is self._thread:
            return
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"the writer of {self.path} did not drain within {timeout} s")
        _LIVE.discard(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _put(self, job: _Job) -> Future[Any]:
        with self._gate:
            if self._closed:
                raise VaultError(f"the writer of {self.path} is closed")
            self._queue.put(job)
            if self._thread.ident is None:
                self._thread.start()
        return job.future

    # ------------------------------------------------------------------ the thread
    def _main(self) -> None:
        try:
            while not self._stop_seen:
                first = self._queue.get()
                if first is _STOP:
                    break
                assert isinstance(first, _Job)
                self._serve([first])
        finally:
            self._fail_queued(VaultError(f"the writer of {self.path} stopped"))
            with contextlib.suppress(Exception):
                self._vault.close()

    def _take_queued(self) -> list[_Job]:
        """Every job queued now (stops at the close marker)."""
        jobs: list[_Job] = []
        while not self._stop_seen:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                self._stop_seen = True
                break
            assert isinstance(item, _Job)
            jobs.append(item)
        return jobs

    def _serve(self, pending: list[_Job]) -> None:
        """Take the lock, run ``pending`` and whatever queues meanwhile, release."""
        yielded = False
        pending += self._take_queued()  # all of it waits for the same lock
        try:
            with self._vault.writing():
                held_since = time.monotonic()
                while pending:
                    self._run(pending)
                    pending = []
                    if time.monotonic() - held_since > self.max_hold:
                        yielded = True
                        break
                    pending = self._take_queued()
        except BaseException as exc:  # the lock could not be taken (or caught up)
            for job in pending:
                if not job.started and job.future.set_running_or_notify_cancel():
                    job.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        if yielded:  # another process waiting polls every POLL_MAX s: give it the chance
            time.sleep(2 * POLL_MAX)

    def _run(self, jobs: list[_Job]) -> None:
        """Run ``jobs`` in order, coalescing consecutive record commits."""
        i = 0
        while i < len(jobs):
            job = jobs[i]
            began = time.perf_counter()
            if job.records is None:
                job.started = True
                self._call(job)
                i += 1
                self._observe(began)
                continue
            group = [job]
            count = len(job.records)
            i += 1
            while i < len(jobs):
                nxt = jobs[i].records
                if nxt is None or count + len(nxt) > self.max_records:
                    break
                group.append(jobs[i])
                count += len(nxt)
                i += 1
            self._commit(group)
            self._observe(began)

    def _observe(self, began: float) -> None:
        """Report a job's duration to :attr:`on_job` (its failure is swallowed: monitoring only)."""
        if self.on_job is not None:
            with contextlib.suppress(Exception):
                self.on_job(time.perf_counter() - began)

    def _call(self, job: _Job) -> None:
        if not job.future.set_running_or_notify_cancel():
            return
        assert job.call is not None
        try:
            result = job.call(self._vault)
        except BaseException as exc:
            job.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            job.future.set_result(result)

    def _commit(self, group: list[_Job]) -> None:
        for job in group:
            job.started = True
        live = [job for job in group if job.future.set_running_or_notify_cancel()]
        if not live:
            return
        records = [rec for job in live for rec in job.records or ()]
        try:
            result = self._vault.commit(records)
        except EntryError as exc:
            if len(live) == 1:
                live[0].future.set_exception(exc)
                return
            for job in live:  # one caller's invalid record: the others still commit
                try:
                    own = self._vault.commit(job.records or ())
                except BaseException as one:
                    job.future.set_exception(one)
                    if not isinstance(one, Exception):
                        raise
                else:
                    job.future.set_result(own)
            return
        except BaseException as exc:
            for job in live:
                job.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        start = 0
        for job in live:
            end = start + len(job.records or ())
            job.future.set_result(CommitResult(result.receipts[start:end], result.checkpoint))
            start = end

    def _fail_queued(self, exc: BaseException) -> None:
        with self._gate:
            self._closed = True
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Job) and item.future.set_running_or_notify_cancel():
                item.future.set_exception(exc)


def _nothing(vault: Vault) -> None:
    """A job that does nothing (:meth:`VaultWriter.flush` waits for it)."""


async def _await(future: Future[T]) -> T:
    """Await a writer future from a coroutine; cancelling the coroutine leaves the work be."""
    wrapped = asyncio.wrap_future(future)
    wrapped.add_done_callback(_retrieve)
    return await asyncio.shield(wrapped)


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark an abandoned future's exception as retrieved (its awaiter was cancelled)."""
    if not future.cancelled():
        future.exception()
