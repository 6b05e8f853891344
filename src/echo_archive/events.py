"""Typed in-process events and the bus that carries them (DESIGN.md, process model).

The long-running service (``echoctl serve``) publishes what happens (a commit
archived items, a feed failed, a check changed, an alert fired...) on one
:class:`EventBus`; the alert rules, the metrics and the HTTP API's live
stream subscribe to it. Events are frozen value types with a ``kind``
(``snake_case``, stable: it is the live stream's event name) and
``to_json()``; times are POSIX seconds (float) at publication.

A subscriber is a callable run synchronously, in publication order, on the
publisher's thread; it must be quick and must not raise (an exception it
raises is logged and swallowed: one broken subscriber never stops the others
or the publisher). An asyncio consumer subscribes a :class:`Subscription`
queue (:meth:`EventBus.queue`), bounded: when a slow consumer's queue is full
its oldest events are dropped and counted (``dropped``), never the
publisher's time.

Kinds: ``item_archived``, ``version``, ``tombstone``, ``feed_run``
(started/finished), ``feed_failed``, ``feed_recovered``, ``breaker_changed``,
``check_result``, ``alert_fired``, ``alert_resolved``,
``intervention_planned``, ``intervention_executed``,
``intervention_rolled_back``, ``stability_changed``, ``config_reloaded``,
``config_rejected``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import structlog

__all__ = [
    "EVENT_KINDS",
    "Event",
    "EventBus",
    "Subscription",
]

log = structlog.get_logger("echo_archive.events")

EVENT_KINDS: Final = frozenset(
    {
        "item_archived",
        "version",
        "tombstone",
        "feed_run",
        "feed_failed",
        "feed_recovered",
        "breaker_changed",
        "check_result",
        "alert_fired",
        "alert_resolved",
        "intervention_planned",
        "intervention_executed",
        "intervention_rolled_back",
        "stability_changed",
        "config_reloaded",
        "config_rejected",
    }
)
"""Every event kind the service publishes (the live stream's event names)."""


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened in the service.

    Attributes:
        kind: one of :data:`EVENT_KINDS`.
        data: JSON-ready details (feed name, counts, log index, alert name...);
            never a secret, never unescaped source text meant for a terminal.
        at: POSIX seconds when it was published.
        index: the log index it concerns (an entry's), or None; the live
            stream uses it as the SSE event id.
    """

    kind: str
    data: Mapping[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)
    index: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in EVENT_KINDS:
            raise ValueError(f"event kind {self.kind!r}: not one of {sorted(EVENT_KINDS)}")

    def to_json(self) -> dict[str, Any]:
        """``{"kind", "at", "index", "data"}``."""
        return {"kind": self.kind, "at": self.at, "index": self.index, "data": dict(self.data)}


Subscriber = Callable[[Event], None]


class Subscription:
    """A bounded queue of events for one asyncio consumer.

    Args:
        loop: the event loop the consumer awaits on.
        maxsize: events kept (>= 1); when full, the oldest is dropped.
        kinds: only these kinds, or every kind when empty.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        maxsize: int = 10_000,
        kinds: frozenset[str] = frozenset(),
    ) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize {maxsize}: must be at least 1")
        self._loop = loop
        self._events: deque[Event] = deque(maxlen=maxsize)
        self._ready = asyncio.Event()
        self.kinds = kinds
        self.dropped = 0
        """Events dropped because the consumer fell behind by ``maxsize``."""

    def _offer(self, event: Event) -> None:
        """Called on the publisher's thread: hand the event to the consumer's loop."""
        if self.kinds and event.kind not in self.kinds:
            return
        # A closed loop raises RuntimeError: its consumer is gone, nobody is listening.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._push, event)

    def _push(self, event: Event) -> None:
        if len(self._events) == self._events.maxlen:
            self.dropped += 1
        self._events.append(event)
        self._ready.set()

    async def get(self) -> Event:
        """The next event (waits for one)."""
        while not self._events:
            self._ready.clear()
            await self._ready.wait()
        return self._events.popleft()

    def get_nowait(self) -> Event | None:
        """The next event, or None when none is waiting."""
        return self._events.popleft() if self._events else None


class EventBus:
    """Publish events to every subscriber, thread-safe.

    ``publish`` may be called from any thread (the writer thread publishes
    what a commit archived); subscribers run on that thread, in order.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[Subscriber] = []
        self.published = 0
        """Events published so far."""

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call ``subscriber(event)`` for every event; returns a function that unsubscribes."""
        with self._lock:
            self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            with self._lock:
                if subscriber in self._subscribers:
                    self._subscribers.remove(subscriber)

        return unsubscribe

    def queue(
        self,
        loop: asyncio.AbstractEventLoop,
        maxsize: int = 10_000,
        kinds: frozenset[str] = frozenset(),
    ) -> tuple[Subscription, Callable[[], None]]:
        """A :class:`Subscription` for an asyncio consumer, and its unsubscribe function."""
        sub = Subscription(loop, maxsize, kinds)
        return sub, self.subscribe(sub._offer)

    def publish(self, event: Event) -> None:
        """Give ``event`` to every subscriber; a subscriber's exception is logged, not raised."""
        with self._lock:
            subscribers = list(self._subscribers)
            self.published += 1
        for subscriber in subscribers:
            try:
                subscriber(event)
            except Exception as exc:  # one broken subscriber never stops the others
                log.error("events.subscriber_failed", kind=event.kind, error=repr(exc))

    def emit(self, kind: str, index: int | None = None, **data: Any) -> Event:
        """Build an :class:`Event` of ``kind`` with ``data`` and publish it; returns it.

        Raises:
            ValueError: ``kind`` is not one of :data:`EVENT_KINDS`.
        """
        event = Event(kind, data, index=index)
        self.publish(event)
        return event
