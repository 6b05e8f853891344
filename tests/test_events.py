"""The in-process event bus: order, isolation of a broken subscriber, bounded async queues."""

from __future__ import annotations

import asyncio
import threading

import pytest

from echo_archive.events import EVENT_KINDS, Event, EventBus


def test_subscribers_see_events_in_order_and_unsubscribe() -> None:
    bus = EventBus()
    seen: list[tuple[str, int | None]] = []
    stop = bus.subscribe(lambda e: seen.append((e.kind, e.index)))
    bus.emit("item_archived", index=7, feed="a", items=3)
    bus.emit("feed_failed", feed="b", error="timeout")
    stop()
    bus.emit("feed_recovered", feed="b")
    assert seen == [("item_archived", 7), ("feed_failed", None)]
    assert bus.published == 3


def test_a_broken_subscriber_never_stops_the_others() -> None:
    bus = EventBus()
    got: list[str] = []

    def broken(_e: Event) -> None:
        raise RuntimeError("boom")

    bus.subscribe(broken)
    bus.subscribe(lambda e: got.append(e.kind))
    bus.emit("alert_fired", alertname="StorageCritical")
    assert got == ["alert_fired"]


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="not one of"):
        Event("made_up")
    assert "tombstone" in EVENT_KINDS


def test_async_queue_from_another_thread_drops_oldest_when_full() -> None:
    async def main() -> tuple[list[int | None], int]:
        bus = EventBus()
        sub, stop = bus.queue(asyncio.get_running_loop(), maxsize=3, kinds=frozenset({"version"}))

        def publish() -> None:
            for i in range(5):
                bus.emit("version", index=i)
                bus.emit("tombstone", index=100 + i)  # filtered out

        t = threading.Thread(target=publish)
        t.start()
        t.join()
        await asyncio.sleep(0.05)  # let call_soon_threadsafe callbacks run
        got = []
        while (e := sub.get_nowait()) is not None:
            got.append(e.index)
        stop()
        return got, sub.dropped

    got, dropped = asyncio.run(main())
    assert got == [2, 3, 4]
    assert dropped == 2
