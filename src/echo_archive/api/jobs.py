"""Harvest jobs: ``POST /v1/feeds/{name}/harvest`` answers 202 with a job, finished by the bus.

changedetection.io's pattern for work that takes time: the request queues the
work and returns at once (``202 Accepted``, RFC 9110 §15.3.3, with a
``Location`` of the job), and the client polls ``GET /v1/jobs/{id}``.

A :class:`Job` follows one "harvest now" of one feed through the service's
event bus (:mod:`echo_archive.events`), on which the scheduler publishes
``feed_run`` (``phase`` ``started``, then ``finished`` with ``outcome``,
``new``, ``versions``, ``tombstones``, ``captures``, ``parse_errors``,
``seconds``, ``next_epoch``) and ``feed_failed`` (``error``) for every run
(:mod:`echo_archive.service.scheduler`):

* ``queued``: asked for; no run of the feed has *started* since.
* ``running``: a run of the feed started after the job was made. A run
  already in flight when the job was made does not count (its ``finished``
  is ignored): the scheduler serves the request with a run of its own after
  it (``Scheduler.harvest_now``).
* ``succeeded``: that run finished ``harvested``; ``result`` is the
  ``feed_run`` data (counts, seconds).
* ``failed``: it finished otherwise (``failed``, ``timeout``, ``skipped``,
  ``aborted``), with the ``feed_failed`` error in ``result["error"]``; or the
  feed stopped being scheduled while the job was queued (a reload removed or
  disabled it: ``config_reloaded`` without it).

Jobs live in memory only (operational state of one service process, gone at
its restart; the runs themselves are in the schedules and harvest reports):
the newest :data:`MAX_JOBS` are kept; when one more is made, the oldest
finished job goes first (the oldest job when none has finished), and an id
no longer kept is 404 like an unknown one.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

from echo_archive.events import Event, EventBus
from echo_archive.vault.entry import format_timestamp

__all__ = ["MAX_JOBS", "Job", "JobState", "JobStore"]

MAX_JOBS: Final = 1000
"""Jobs kept in memory at most (the oldest finished ones are forgotten first)."""

JobState = Literal["queued", "running", "succeeded", "failed"]
"""The states of a job, in the order it goes through them."""

_RESULT_KEYS: Final = (
    "outcome",
    "new",
    "versions",
    "tombstones",
    "captures",
    "parse_errors",
    "seconds",
    "next_epoch",
)


def _rfc3339(epoch: float | None) -> str | None:
    return None if epoch is None else format_timestamp(int(epoch * 1e9))


@dataclass(frozen=True)
class Job:
    """One "harvest now" of one feed.

    Attributes:
        id: 32 hex characters (128 random bits).
        feed: the feed's name.
        state: :data:`JobState`.
        created, started, finished: POSIX seconds, or None (not yet).
        result: what the run gave (``outcome``, counts, ``seconds``, ``error``), or None.
        awaiting_error: its run just finished failed; the ``feed_failed`` that
            follows gives ``result["error"]`` (not shown).
    """

    id: str
    feed: str
    state: JobState
    created: float
    started: float | None = None
    finished: float | None = None
    result: dict[str, Any] | None = field(default=None)
    awaiting_error: bool = field(default=False, repr=False)

    @property
    def done(self) -> bool:
        """True once the job has succeeded or failed."""
        return self.state in ("succeeded", "failed")

    def to_json(self) -> dict[str, Any]:
        """``{"id", "feed", "state", "created", "started", "finished", "result"}``.

        Times are RFC 3339 UTC strings (null until they happen).
        """
        return {
            "id": self.id,
            "feed": self.feed,
            "state": self.state,
            "created": _rfc3339(self.created),
            "started": _rfc3339(self.started),
            "finished": _rfc3339(self.finished),
            "result": None if self.result is None else dict(self.result),
        }


class JobStore:
    """The jobs of one API over one running service, moved along by its event bus.

    Thread-safe: the bus may call :meth:`observe` on any thread.

    Args:
        clock: POSIX seconds (the job times).
        limit: jobs kept at most (:data:`MAX_JOBS`).
    """

    def __init__(self, clock: Callable[[], float], limit: int = MAX_JOBS) -> None:
        if limit < 1:
            raise ValueError(f"limit {limit}: must be at least 1")
        self._clock = clock
        self._limit = limit
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._unsubscribe: Callable[[], None] | None = None

    def attach(self, bus: EventBus) -> None:
        """Subscribe to ``bus`` (once; a second call does nothing)."""
        with self._lock:
            if self._unsubscribe is None:
                self._unsubscribe = bus.subscribe(self.observe)

    def detach(self) -> None:
        """Unsubscribe from the bus (jobs already made keep their last state)."""
        with self._lock:
            stop, self._unsubscribe = self._unsubscribe, None
        if stop is not None:
            stop()

    def create(self, feed: str) -> Job:
        """A new ``queued`` job for ``feed`` (the caller has asked the service to run it)."""
        job = Job(secrets.token_hex(16), feed, "queued", self._clock())
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > self._limit:
                oldest = next((k for k, j in self._jobs.items() if j.done), None)
                del self._jobs[oldest if oldest is not None else next(iter(self._jobs))]
        return job

    def get(self, job_id: str) -> Job | None:
        """The job ``job_id``, or None (unknown, or no longer kept)."""
        with self._lock:
            return self._jobs.get(job_id)

    def __len__(self) -> int:
        with self._lock:
            return len(self._jobs)

    def observe(self, event: Event) -> None:
        """Move the jobs the event concerns (a bus subscriber; quick, never raises)."""
        if event.kind == "config_reloaded":
            self._unscheduled(event.data.get("feeds") or ())
            return
        if event.kind not in ("feed_run", "feed_failed"):
            return
        feed = event.data.get("feed")
        now = self._clock()
        with self._lock:
            for job_id, job in list(self._jobs.items()):
                if job.feed != feed:
                    continue
                moved = self._move(job, event, now)
                if moved is not job:
                    self._jobs[job_id] = moved

    @staticmethod
    def _move(job: Job, event: Event, now: float) -> Job:
        """The job after ``event`` (``feed_run`` or ``feed_failed`` of its feed)."""
        data = event.data
        if event.kind == "feed_failed":
            # published just after the failed run's ``finished``: give that job its error
            if job.awaiting_error and job.result is not None:
                result = {**job.result, "error": data.get("error")}
                return replace(job, result=result, awaiting_error=False)
            return job
        phase = data.get("phase")
        if job.awaiting_error:
            job = replace(job, awaiting_error=False)  # no feed_failed came for it
        if phase == "started" and job.state == "queued":
            return replace(job, state="running", started=now)
        if phase == "finished" and job.state == "running":
            result = {k: data[k] for k in _RESULT_KEYS if k in data}
            result["error"] = None
            ok = data.get("outcome") == "harvested"
            state: JobState = "succeeded" if ok else "failed"
            return replace(
                job,
                state=state,
                finished=now,
                result=result,
                awaiting_error=not ok and data.get("outcome") != "aborted",
            )
        return job

    def _unscheduled(self, feeds: Iterable[object]) -> None:
        """Fail the queued jobs whose feed a reload no longer schedules."""
        kept = {str(f) for f in feeds}
        now = self._clock()
        with self._lock:
            for job_id, job in list(self._jobs.items()):
                if job.state == "queued" and job.feed not in kept:
                    self._jobs[job_id] = replace(
                        job,
                        state="failed",
                        finished=now,
                        result={"error": "the feed is no longer scheduled (removed or disabled)"},
                    )
