"""Routes of the ``stream`` resource kind: the live stream, as Server-Sent Events and WebSocket.

``GET /v1/stream`` is an ``text/event-stream`` (WHATWG HTML Living Standard
§9.2 "Server-sent events"); ``GET /v1/ws`` is its WebSocket twin (RFC 6455),
carrying the same events as JSON text messages ``{"event", "id", "data"}``.
Both are fed by the service's event bus (:mod:`echo_archive.events`) and by
the log itself.

Events (the SSE ``event:`` field, the WebSocket message's ``event``):

* ``item_archived``, ``version``, ``tombstone``: an entry of type ``item``,
  ``version`` or ``tombstone`` joined the log. The **id is the entry's log
  index**; ``data`` is :func:`entry_summary` (the items listing's fields that
  an entry holds, plus ``kind`` and ``index``). Needs ``items:read``; a
  principal scoped to a feed group sees only its group's feeds.
* ``alert_fired``, ``alert_resolved``, ``intervention_planned``,
  ``intervention_executed``, ``intervention_rolled_back``: operations events,
  only for a principal holding ``operations:read``; ``data`` is the bus
  event's JSON (``{"kind", "at", "index", "data"}``). They carry **no id**:
  an SSE event without an ``id:`` field leaves the client's last event ID
  where the last entry put it (§9.2.6, "the last event ID buffer" is not
  reset), so ``Last-Event-ID`` always names a log index. They are live only:
  a resumed stream does not replay them (the alerts in force are at
  ``/v1/alerts``, the interventions at ``/v1/interventions``).
* ``ready``: first, once: ``{"cursor", "log_size", "kinds", "feeds",
  "keepalive"}``, with the id of the cursor the stream starts after (``-1``
  before the first entry), so a client that reconnects before any entry
  arrived still resumes from where it connected.
* ``keepalive`` (WebSocket only; SSE sends a comment line ``: keep-alive``):
  every :data:`KEEPALIVE` seconds without traffic, with the cursor as id. On
  SSE the cursor travels as an id-only block (``id: N`` and a blank line:
  "set the last event ID" and dispatch nothing, §9.2.6) whenever a filter
  skipped entries past the last id sent, so a filtered client does not
  rescan them when it resumes.
* ``closed``: last, when the stream ends because the credential stopped being
  valid (revoked, expired: it is checked again at each keep-alive).

Resuming: ``Last-Event-ID: N`` (the header a browser's ``EventSource`` sends
on reconnection), else the ``last_event_id`` query parameter (for clients that
cannot set headers; the header wins, as an ``EventSource`` keeps the URL's
parameter but updates the header), else, on the WebSocket, a first client
message (``hello=true``). ``N`` is ``-1`` (the whole log) or a log index below
the log's size. The stream subscribes to the bus *first*, then replays from
the log every committed entry of the streamed kinds with index > ``N``, then
follows the bus: every entry event only says "the log reached index i"; the
entries up to i are read from the log (through a cache shared by all
streams), in index order, skipping what was already sent. So nothing is lost
and nothing is sent twice, and the events of one entry are the same live and
replayed.

A slow consumer: the streams share one bus subscription (one hand-off from
the publisher's thread per event, however many streams), which fans each
event out to every stream's own queue on the event loop; that queue is
bounded (:data:`QUEUE_SIZE`) and drops its oldest events when the consumer
falls behind (as :class:`~echo_archive.events.Subscription` does). A drop never loses an entry:
on a drop, and at each keep-alive, the stream reads the log's size and
replays from the log every entry past its cursor (entries committed by
another process, which publish no bus event, arrive the same way). Dropped
operations events are lost (they are not in the log); the stream then sends
an ``overflow`` event (no id) ``{"dropped": n}``.

A disconnect (``http.disconnect``, a WebSocket close) ends the stream and
releases its queue at once (and the shared bus subscription with the last stream).
"""

# No ``from __future__ import annotations``: FastAPI evaluates the routes' ``Annotated``
# dependencies at runtime, and they name ``items_read``, local to build.
import asyncio
import contextlib
import json
import re
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Annotated, Any, Final, Protocol

import anyio
import structlog
from fastapi import APIRouter, Depends, HTTPException, Request, WebSocket
from fastapi.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect, WebSocketState

from echo_archive.api.deps import ApiContext, Auth, ServiceView, denied, request_error
from echo_archive.api.roles import Permission, Principal, authorize, listing_feeds
from echo_archive.config import FEED_NAME_PATTERN
from echo_archive.errors import EchoError, PermissionDenied, RequestError
from echo_archive.events import Event, Subscription
from echo_archive.index.items import entry_state
from echo_archive.vault.entry import Entry
from echo_archive.vault.vault import Vault

__all__ = [
    "CACHE_SIZE",
    "ENTRY_KINDS",
    "KEEPALIVE",
    "OPERATIONS_KINDS",
    "QUEUE_SIZE",
    "RETRY_MS",
    "STREAM_KINDS",
    "EventStreamResponse",
    "LogFrames",
    "StreamMessage",
    "build",
    "entry_summary",
    "parse_kinds",
    "parse_last_event_id",
]

log = structlog.get_logger("echo_archive.api.stream")

ENTRY_KINDS: Final[Mapping[str, str]] = {
    "item": "item_archived",
    "version": "version",
    "tombstone": "tombstone",
}
"""Entry type -> its event kind (the service's ``ENTRY_EVENTS``, which a test compares)."""

OPERATIONS_KINDS: Final = frozenset(
    {
        "alert_fired",
        "alert_resolved",
        "intervention_planned",
        "intervention_executed",
        "intervention_rolled_back",
    }
)
"""The operations events streamed (``operations:read``); live only, no id."""

STREAM_KINDS: Final = frozenset(ENTRY_KINDS.values()) | OPERATIONS_KINDS
"""Every kind ``kinds`` may name."""

KEEPALIVE: Final = 15.0
"""Seconds without traffic before a keep-alive (§9.2.7: "a comment line ... every 15 seconds")."""

RETRY_MS: Final = 3000
"""The reconnection time the stream asks of an ``EventSource`` (``retry:``, milliseconds)."""

QUEUE_SIZE: Final = 1024
"""Bus events a stream holds before the oldest are dropped (entries then come from the log)."""

HUB_QUEUE_SIZE: Final = 65536
"""Bus events the streams' shared subscription holds (it only fans out: it keeps up)."""

CACHE_SIZE: Final = 8192
"""Entries whose stream messages are kept in memory, shared by every stream (the newest)."""

CHUNK: Final = 256
"""Entries read from the log at once (a replay yields to the event loop between chunks)."""

MAX_INDEX: Final = 2**63 - 1
"""The largest log index accepted (SQLite's INTEGER)."""

HELLO_TIMEOUT: Final = 10.0
"""Seconds a ``hello=true`` WebSocket has to send its first message."""

MAX_CLIENT_MESSAGES: Final = 16
"""Messages a WebSocket client may send (the hello included) before it is closed (1008)."""

MAX_TEXT: Final = 1024
"""Characters a query parameter, header or client message of the stream may hold."""

WS_POLICY: Final = 1008
"""Close code of a refused credential or permission (RFC 6455 §7.4.1, "policy violation")."""

WS_BAD_REQUEST: Final = 4400
"""Close code of a bad parameter or hello (RFC 6455 §7.4.2: 4000-4999 are the application's)."""

_INDEX = re.compile(r"-1|0|[1-9][0-9]{0,18}")
_ITEMS_READ: Final = Permission("items", "read")
_OPERATIONS_READ: Final = Permission("operations", "read")


@dataclass(frozen=True)
class StreamMessage:
    """One event of the stream, encoded once and sent to every stream that shows it.

    Its encodings (:attr:`sse`, :attr:`ws`) are made on first use and kept:
    an entry's message is shared by every stream (:class:`LogFrames`).

    Attributes:
        event: the event name (one of :data:`STREAM_KINDS`, or ``ready``,
            ``keepalive``, ``overflow``, ``closed``).
        id: the log index (entries; the cursor for ``ready``/``keepalive``), or None.
        data: the data, as compact JSON text (one line: JSON escapes CR and LF).
        feed: the feed of an entry's event (for the feed filter), else None.
    """

    event: str
    id: int | None
    data: str
    feed: str | None = None

    @cached_property
    def sse(self) -> bytes:
        """The SSE block: ``event:``, ``id:`` (when there is one), ``data:``, a blank line."""
        head = f"event: {self.event}\n"
        if self.id is not None:
            head += f"id: {self.id}\n"
        return f"{head}data: {self.data}\n\n".encode()

    @cached_property
    def ws(self) -> str:
        """The WebSocket text message ``{"event", "id", "data"}``."""
        ident = "null" if self.id is None else str(self.id)
        return f'{{"event":{json.dumps(self.event)},"id":{ident},"data":{self.data}}}'


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def parse_last_event_id(text: str, where: str, size: int) -> int:
    """The cursor a client resumes after: ``-1`` or a log index below ``size``.

    Args:
        text: what the client sent (surrounding spaces are ignored).
        where: the parameter's name, for the message.
        size: the log's acknowledged size.

    Raises:
        RequestError: not ``-1`` or a decimal integer without leading zeros,
            above :data:`MAX_INDEX`, or at or beyond ``size`` (the message
            names ``where`` and the log's size).
    """
    value = text.strip()
    if not _INDEX.fullmatch(value):
        shown = value[:40] + ("..." if len(value) > 40 else "")
        raise RequestError(
            f"{where} {shown!r}: expected -1 or a log index (a decimal integer, the id of an event)"
        )
    number = int(value)
    if number > MAX_INDEX or number >= size:
        raise RequestError(
            f"{where} {number}: beyond the log, whose size is {size} (an id of another vault?)"
        )
    return number


def parse_kinds(text: str | None, may_operate: bool) -> frozenset[str]:
    """The event kinds a stream shows: those named in ``text``, or every one it may see.

    Args:
        text: comma-separated kinds (``item_archived,version``), or None.
        may_operate: the principal holds ``operations:read``.

    Raises:
        RequestError: an empty list, or a kind not in :data:`STREAM_KINDS`
            (the message names it and lists the kinds).
        PermissionDenied: an operations kind asked without ``operations:read``
            (raised by the caller's check; here the kinds are only parsed).
    """
    if text is None:
        entry_kinds = frozenset(ENTRY_KINDS.values())
        return entry_kinds | OPERATIONS_KINDS if may_operate else entry_kinds
    names = [k.strip() for k in text.split(",")]
    if not any(names):
        raise RequestError(f"kinds: empty (kinds: {', '.join(sorted(STREAM_KINDS))})")
    for name in names:
        if name not in STREAM_KINDS:
            shown = name[:40] + ("..." if len(name) > 40 else "")
            raise RequestError(
                f"kinds: unknown kind {shown!r} (kinds: {', '.join(sorted(STREAM_KINDS))})"
            )
    return frozenset(names)


def entry_summary(vault: Vault, index: int, entry: Entry) -> dict[str, Any] | None:
    """The data of the event of the entry at ``index``, or None when it is not streamed.

    ``{"kind", "index", "type", "entry_kind", "state", "source", "feed",
    "native_id", "ref", "logged_at", "title", "url"}``: ``kind`` is the event
    kind (:data:`ENTRY_KINDS`), ``entry_kind`` the entry's own kind
    (``withdrawn``, ``removed``) or None, ``state`` the item's state once this
    entry is its latest (:func:`~echo_archive.index.items.entry_state`),
    ``ref`` the item's reference (``SOURCE:FEED:NATIVE_ID``, as
    ``GET /v1/items/{ref}`` takes), ``title`` and ``url`` from the entry's
    item blob (``""`` for a tombstone, or when the blob cannot be read).

    Args:
        vault: the vault the entry is in (a reader).
        index: the entry's log index.
        entry: the entry.
    """
    kind = ENTRY_KINDS.get(entry.type)
    if kind is None:
        return None
    meta = entry.meta
    title = url = ""
    if entry.blobs:
        try:
            doc = json.loads(vault.blobs.get(entry.blobs[0].digest))
        except (EchoError, ValueError) as exc:
            log.warning("stream.item_blob_unreadable", index=index, error=repr(exc))
        else:
            if isinstance(doc, dict):
                title = str(doc.get("title") or "")
                url = str(doc.get("url") or "")
    source, feed, native_id = meta.get("source"), meta.get("feed"), meta.get("native_id")
    return {
        "kind": kind,
        "index": index,
        "type": entry.type,
        "entry_kind": meta.get("kind"),
        "state": entry_state(entry.type, meta),
        "source": source,
        "feed": feed,
        "native_id": native_id,
        "ref": f"{source}:{feed}:{native_id}",
        "logged_at": entry.logged_at,
        "title": title,
        "url": url,
    }


class LogFrames:
    """The stream messages of the log's entries, read once and shared by every stream.

    Holds the messages of the :data:`CACHE_SIZE` entries read last (None for
    an entry that is not streamed: a capture, an audit entry...), so that a
    commit seen by a thousand streams is read from the log once. Used on the
    event loop's thread only.

    Args:
        reader: the vault, read-only.
        size: entries kept.
    """

    def __init__(self, reader: Vault, size: int = CACHE_SIZE) -> None:
        self.reader = reader
        self.size = size
        self._cache: OrderedDict[int, StreamMessage | None] = OrderedDict()
        self.reads = 0
        """Entries read from the log so far (the rest came from the cache)."""

    def acknowledged(self) -> int:
        """The log's size covered by the latest signed checkpoint (the acknowledged entries).

        Raises:
            LogError: no checkpoint is stored.
            NoteError: the stored checkpoint does not verify.
        """
        return self.reader.latest_checkpoint().size

    def _message(self, index: int, entry: Entry) -> StreamMessage | None:
        data = entry_summary(self.reader, index, entry)
        if data is None:
            return None
        return StreamMessage(data["kind"], index, _json(data), feed=data["feed"])

    def _put(self, index: int, message: StreamMessage | None) -> None:
        self._cache[index] = message
        while len(self._cache) > self.size:
            self._cache.popitem(last=False)

    def _read(self, first: int, end: int) -> list[tuple[int, StreamMessage | None]]:
        """Entries ``first .. end-1`` from the log (fewer when the reader does not hold them)."""
        out: list[tuple[int, StreamMessage | None]] = []
        try:
            rows = list(self.reader.iter_entries(first, end))
        except EchoError:  # a malformed stored entry: read one by one, skip the bad one
            rows = []
            for index in range(first, end):
                try:
                    rows.append((index, self.reader.entry(index)))
                except EchoError as exc:
                    log.error("stream.entry_unreadable", index=index, error=repr(exc))
                    if index >= self.reader.log_state()[0]:
                        break
                    out.append((index, None))
        self.reads += len(rows)
        out.extend((index, self._message(index, entry)) for index, entry in rows)
        out.sort(key=lambda pair: pair[0])
        expected = first
        kept: list[tuple[int, StreamMessage | None]] = []
        for index, message in out:
            if index != expected:
                break  # a hole: the reader does not see the rest yet
            kept.append((index, message))
            self._put(index, message)
            expected += 1
        return kept

    def frames(self, first: int, end: int) -> list[tuple[int, StreamMessage | None]]:
        """``(index, message or None)`` for the entries ``first .. end-1``, in order.

        Stops early at the first index the reader does not hold (not visible
        yet, or beyond the log), so the caller's cursor never skips an entry.

        Raises:
            StorageError: the log cannot be read.
        """
        out: list[tuple[int, StreamMessage | None]] = []
        index = first
        while index < end:
            if index in self._cache:
                out.append((index, self._cache[index]))
                index += 1
                continue
            stop = index + 1
            while stop < end and stop not in self._cache:
                stop += 1
            got = self._read(index, stop)
            out.extend(got)
            if len(got) < stop - index:
                break
            index = stop
        return out


class _Source(Protocol):
    """What a stream reads its bus events from (a :class:`_Queue`, or a bus Subscription)."""

    dropped: int

    async def get(self) -> Event: ...

    def get_nowait(self) -> Event | None: ...


class _Queue:
    """One stream's bounded queue, fed on the event loop by :class:`_Hub` (drops its oldest).

    The same contract as :class:`~echo_archive.events.Subscription`, without
    a cross-thread hand-off per stream: the hub's one subscription crosses
    from the publisher's thread once per event, then fans out here.

    Args:
        maxsize: events kept (the oldest dropped and counted in ``dropped``).
        kinds: only these kinds.
    """

    def __init__(self, maxsize: int, kinds: frozenset[str]) -> None:
        self._events: deque[Event] = deque(maxlen=maxsize)
        self._ready = asyncio.Event()
        self.kinds = kinds
        self.dropped = 0

    def push(self, event: Event) -> None:
        """Queue ``event`` when its kind is shown (on the loop's thread)."""
        if event.kind not in self.kinds:
            return
        if len(self._events) == self._events.maxlen:
            self.dropped += 1
        self._events.append(event)
        self._ready.set()

    def lost(self, count: int) -> None:
        """Count ``count`` events the hub's own subscription dropped, and wake the stream."""
        self.dropped += count
        self._ready.set()

    async def get(self) -> Event:
        """The next event (waits for one, or for a :meth:`lost`)."""
        while not self._events:
            self._ready.clear()
            await self._ready.wait()
            if not self._events:
                raise _Lost
        return self._events.popleft()

    def get_nowait(self) -> Event | None:
        """The next event, or None."""
        return self._events.popleft() if self._events else None


class _Lost(Exception):
    """Raised by :meth:`_Queue.get` when it was woken by a drop, not an event."""


@dataclass
class _Stream:
    """One client's stream: its subscription, filters, cursor and what is left to send.

    Attributes:
        frames: the shared log reader.
        sub: the client's bus subscription.
        unsubscribe: releases it.
        kinds: the kinds shown.
        feeds: the feeds shown (None: every feed).
        cursor: every streamed entry up to this log index was sent or filtered out.
        target: the log reached at least this index (what to send up to).
        recheck: awaits True while the credential is still valid.
    """

    frames: LogFrames
    sub: _Source
    unsubscribe: Callable[[], None]
    kinds: frozenset[str]
    feeds: frozenset[str] | None
    cursor: int
    target: int
    recheck: Callable[[], Awaitable[bool]]
    keepalive: float = KEEPALIVE
    id_sent: int | None = None
    dropped_seen: int = 0
    ops: deque[StreamMessage] = field(default_factory=deque)
    closed: bool = False

    def close(self) -> None:
        """Release the subscription (idempotent)."""
        if not self.closed:
            self.closed = True
            self.unsubscribe()

    def _shows(self, message: StreamMessage) -> bool:
        if message.event not in self.kinds:
            return False
        return self.feeds is None or message.feed in self.feeds

    def _replay(self) -> list[StreamMessage]:
        """The next chunk of entries past the cursor, up to the target."""
        end = min(self.target + 1, self.cursor + 1 + CHUNK)
        out: list[StreamMessage] = []
        got = self.frames.frames(self.cursor + 1, end)
        for index, message in got:
            self.cursor = index
            if message is not None and self._shows(message):
                out.append(message)
        if not got or got[-1][0] < end - 1:
            self.target = self.cursor  # the reader holds no more yet: the next signal resumes
        return out

    def _take(self, event: Event) -> None:
        if event.kind in OPERATIONS_KINDS:
            self.ops.append(StreamMessage(event.kind, None, _json(event.to_json())))
        elif event.index is not None and event.index > self.target:
            self.target = min(event.index, MAX_INDEX)

    def _caught_up(self) -> None:
        """Aim at the log's acknowledged size (after a drop, at a keep-alive)."""
        try:
            self.target = max(self.target, self.frames.acknowledged() - 1)
        except EchoError as exc:
            log.error("stream.log_unreadable", error=repr(exc))

    def _overflow(self) -> list[StreamMessage]:
        dropped = self.sub.dropped
        if dropped == self.dropped_seen:
            return []
        lost, self.dropped_seen = dropped - self.dropped_seen, dropped
        self._caught_up()
        return [StreamMessage("overflow", None, _json({"dropped": lost}))]

    async def next(self) -> list[StreamMessage] | None:
        """The next messages to send (waits for some), or None when the stream must end.

        Returns a keep-alive message (``keepalive``, id = cursor) after
        :attr:`keepalive` seconds without any; then the credential is checked
        again, and None is returned when it no longer holds.
        """
        while True:
            out = self._overflow()
            while self.ops:
                out.append(self.ops.popleft())
            if self.target > self.cursor:
                out.extend(self._replay())
            if out:
                return out
            if self.target > self.cursor:
                await asyncio.sleep(0)
                continue
            try:
                async with asyncio.timeout(self.keepalive):
                    event = await self.sub.get()
            except _Lost:
                continue  # the hub's subscription dropped: catch up from the log
            except TimeoutError:
                if not await self.recheck():
                    return None
                self._caught_up()
                if self.target > self.cursor:
                    continue
                return [StreamMessage("keepalive", self.cursor, "{}")]
            self._take(event)
            while (more := self.sub.get_nowait()) is not None:
                self._take(more)


class _Hub:
    """What every stream of one application shares: the log frames, the bus, the count."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx
        self.frames = LogFrames(ctx.reader)
        self.open = 0
        self._queues: set[_Queue] = set()
        self._unsubscribe: Callable[[], None] | None = None
        self._pump: asyncio.Task[None] | None = None

    def _attach(self, service: ServiceView, queue: _Queue) -> Callable[[], None]:
        """Feed ``queue`` from the bus; subscribes the hub while any stream is open.

        The hub holds one bus subscription (one hand-off from the publisher's
        thread per event, whatever the number of streams), made with the
        first stream and released with the last.
        """
        self._queues.add(queue)
        if self._unsubscribe is None:
            assert service.loop is not None
            sub, self._unsubscribe = service.bus.queue(service.loop, HUB_QUEUE_SIZE, STREAM_KINDS)
            self._pump = service.loop.create_task(self._run(sub))

        def detach() -> None:
            self._queues.discard(queue)
            if not self._queues and self._unsubscribe is not None:
                self._unsubscribe()
                self._unsubscribe = None
                if self._pump is not None:
                    self._pump.cancel()
                    self._pump = None

        return detach

    async def _run(self, sub: Subscription) -> None:
        """Hand each bus event to every open stream's queue (the hub's pump task)."""
        seen = 0
        while True:
            event = await sub.get()
            if sub.dropped != seen:
                lost, seen = sub.dropped - seen, sub.dropped
                for queue in list(self._queues):
                    queue.lost(lost)
            pending: Event | None = event
            while pending is not None:
                for queue in list(self._queues):
                    queue.push(pending)
                pending = sub.get_nowait()

    def start(
        self,
        kinds: frozenset[str],
        feeds: frozenset[str] | None,
        resume: tuple[str, str] | None,
        recheck: Callable[[], Awaitable[bool]],
    ) -> tuple[_Stream, StreamMessage]:
        """Subscribe, then fix the cursor; the stream and its ``ready`` message.

        Args:
            kinds: the kinds shown.
            feeds: the feeds shown (None: all).
            resume: ``(text, parameter name)`` of the cursor sent, or None (from now).
            recheck: awaits True while the credential holds.

        Raises:
            HTTPException: 503 without a running service; 400 for a bad ``resume``.
        """
        service = self.ctx.service
        if service is None or service.loop is None:
            raise HTTPException(
                status_code=503,
                detail={"code": "unavailable", "message": "the live stream needs echoctl serve"},
            )
        sub = _Queue(QUEUE_SIZE, kinds)
        unsubscribe = self._attach(service, sub)
        try:
            size = self.frames.acknowledged()
            cursor = size - 1 if resume is None else parse_last_event_id(resume[0], resume[1], size)
        except RequestError as exc:
            unsubscribe()
            raise request_error(exc) from None
        except BaseException:
            unsubscribe()
            raise
        stream = _Stream(
            self.frames, sub, unsubscribe, kinds, feeds, cursor, max(cursor, size - 1), recheck
        )
        self.open += 1
        ready = {
            "cursor": cursor,
            "log_size": size,
            "kinds": sorted(kinds),
            "feeds": None if feeds is None else sorted(feeds),
            "keepalive": KEEPALIVE,
        }
        return stream, StreamMessage("ready", cursor, _json(ready))

    def finish(self, stream: _Stream) -> None:
        """Release ``stream``'s subscription (once)."""
        if not stream.closed:
            stream.close()
            self.open -= 1


class EventStreamResponse(Response):
    """A ``text/event-stream`` response that runs one live stream until the client leaves.

    Sends ``retry:`` and the ``ready`` event, then each batch of messages as
    it comes (WHATWG HTML §9.2.5, the ``text/event-stream`` format, UTF-8),
    and a comment line ``: keep-alive`` (with ``id: N`` when the cursor
    moved past the last id sent) after :data:`KEEPALIVE` seconds of silence.
    Listens for ``http.disconnect`` beside it and ends the stream (releasing
    its bus subscription) at once when the client leaves.

    Args:
        stream: the stream (None only for the OpenAPI document's response class).
        ready: the first message.
        finish: called once when the stream ends (releases it).
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        stream: _Stream | None = None,
        ready: StreamMessage | None = None,
        finish: Callable[[_Stream], None] | None = None,
    ) -> None:
        self.status_code = 200
        self.background = None
        self.body = b""
        self._stream, self._ready, self._finish = stream, ready, finish
        self.raw_headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"),  # no buffering in a reverse proxy (nginx)
        ]

    @staticmethod
    def encode(messages: Iterable[StreamMessage], stream: _Stream) -> bytes:
        """The SSE bytes of ``messages`` (a keep-alive becomes a comment line)."""
        parts: list[bytes] = []
        for message in messages:
            if message.event == "keepalive":
                if message.id is not None and message.id != stream.id_sent:
                    stream.id_sent = message.id
                    parts.append(f": keep-alive\nid: {message.id}\n\n".encode())
                else:
                    parts.append(b": keep-alive\n\n")
                continue
            if message.id is not None:
                stream.id_sent = message.id
            parts.append(message.sse)
        return b"".join(parts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the stream (ASGI); returns when the client disconnects or the credential ends."""
        stream, ready, finish = self._stream, self._ready, self._finish
        if stream is None or ready is None or finish is None:
            raise RuntimeError("EventStreamResponse without a stream")
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            async with anyio.create_task_group() as group:

                async def watch() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    group.cancel_scope.cancel()

                group.start_soon(watch)
                first = f"retry: {RETRY_MS}\n\n".encode() + self.encode([ready], stream)
                await send({"type": "http.response.body", "body": first, "more_body": True})
                while True:
                    batch = await stream.next()
                    if batch is None:
                        gone = StreamMessage("closed", None, _json({"reason": "credentials"}))
                        body = self.encode([gone], stream)
                        await send({"type": "http.response.body", "body": body})
                        break
                    body = self.encode(batch, stream)
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                group.cancel_scope.cancel()
        finally:
            finish(stream)


def _scope_of(
    principal: Principal, feed: str | None, kinds_text: str | None, now: float
) -> tuple[frozenset[str], frozenset[str] | None]:
    """The kinds and feeds a principal's stream shows (raises the 400/403)."""
    if feed is not None and (len(feed) > 64 or not re.fullmatch(FEED_NAME_PATTERN, feed)):
        shown = feed[:40] + ("..." if len(feed) > 40 else "")
        raise request_error(RequestError(f"feed {shown!r}: not a feed name ({FEED_NAME_PATTERN})"))
    if kinds_text is not None and len(kinds_text) > MAX_TEXT:
        raise request_error(RequestError(f"kinds: longer than {MAX_TEXT} characters"))
    try:
        feeds = listing_feeds(principal, _ITEMS_READ, feed, now=now)
    except PermissionDenied as exc:
        raise denied(exc) from None
    try:
        authorize(principal, _OPERATIONS_READ, now=now)
        may_operate = True
    except PermissionDenied:
        may_operate = False
    try:
        kinds = parse_kinds(kinds_text, may_operate)
    except RequestError as exc:
        raise request_error(exc) from None
    if kinds & OPERATIONS_KINDS and not may_operate:
        try:
            authorize(principal, _OPERATIONS_READ, now=now)
        except PermissionDenied as exc:
            raise denied(exc) from None
    return kinds, feeds


def _handshake_request(websocket: WebSocket) -> Request:
    """The WebSocket handshake as the HTTP GET request it is (RFC 6455 §4.1), for :class:`Auth`."""
    return Request({**websocket.scope, "type": "http", "method": "GET"})


def _same_origin(websocket: WebSocket) -> bool:
    """True unless a browser's ``Origin`` names another host than ``Host`` (RFC 6455 §10.2)."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    host = websocket.headers.get("host", "")
    _, _, rest = origin.partition("://")
    return bool(host) and rest.rstrip("/").lower() == host.lower()


def _resume_of(header: list[str], query: str | None) -> tuple[str, str] | None:
    """The resume cursor a request sent: the header (once) before the query parameter."""
    if len(header) > 1:
        raise request_error(RequestError("Last-Event-ID: sent more than once"))
    for text, where in ((header[0] if header else None, "Last-Event-ID"), (query, "last_event_id")):
        if text is None or not text.strip():
            continue
        if len(text) > MAX_TEXT:
            raise request_error(RequestError(f"{where}: longer than {MAX_TEXT} characters"))
        return text, where
    return None


def build(ctx: ApiContext, auth: Auth) -> APIRouter:
    """The router of ``GET /v1/stream`` (SSE) and ``GET /v1/ws`` (WebSocket) over ``ctx``.

    Both need ``items:read`` (through ``auth``); see the module docstring for
    the events, ids, resume and slow-consumer rules.
    """
    router = APIRouter(prefix="/v1", tags=["stream"])
    hub = _Hub(ctx)
    items_read = auth.require(_ITEMS_READ)

    def recheck_of(request: Request) -> Callable[[], Awaitable[bool]]:
        async def recheck() -> bool:
            try:
                found = await auth.principal(request)
                authorize(found, _ITEMS_READ, now=ctx.clock())
            except (HTTPException, PermissionDenied):
                return False
            return True

        return recheck

    @router.get(
        "/stream",
        summary="The live stream: new items, versions, tombstones, alerts, interventions (SSE).",
        response_class=EventStreamResponse,
        status_code=200,
        responses={
            200: {
                "description": (
                    "A `text/event-stream` (WHATWG HTML §9.2): `ready`, then `item_archived`, "
                    "`version`, `tombstone` (id = the entry's log index; data = the entry's "
                    "summary), `alert_fired`, `alert_resolved`, `intervention_*` (no id), "
                    "`overflow`, `closed`; `: keep-alive` comments every 15 s."
                ),
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            400: {"description": "a bad `Last-Event-ID`, `last_event_id`, `kinds` or `feed`"},
            401: {"description": "no valid credential"},
            403: {"description": "the role lacks items:read (or operations:read for `kinds`)"},
            503: {"description": "no running service (the stream is fed by its event bus)"},
        },
    )
    async def stream(
        request: Request,
        principal: Annotated[Principal, Depends(items_read)],
        kinds: str | None = None,
        feed: str | None = None,
        last_event_id: str | None = None,
    ) -> EventStreamResponse:
        """Server-Sent Events of the archive's commits and operations, resumable by log index.

        Query: ``kinds`` (comma-separated :data:`STREAM_KINDS`; default: the
        entry kinds, and the operations kinds for an ``operations:read``
        holder), ``feed`` (only this feed's entries; a scoped principal only
        its group's feeds), ``last_event_id`` (resume after this log index,
        ``-1`` for the whole log; the ``Last-Event-ID`` header wins).

        Raises:
            HTTPException: 400 for a bad parameter (naming it), 401/403, 503
                without a running service.
        """
        chosen, feeds = _scope_of(principal, feed, kinds, ctx.clock())
        resume = _resume_of(request.headers.getlist("last-event-id"), last_event_id)
        started, ready = hub.start(chosen, feeds, resume, recheck_of(request))
        return EventStreamResponse(started, ready, hub.finish)

    @router.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        """The WebSocket twin of ``GET /v1/stream``: the same events as JSON text messages.

        Each message is ``{"event", "id", "data"}`` (``id``: the log index,
        or null). Query: ``kinds``, ``feed``, ``last_event_id`` as for the
        SSE stream, and ``hello=true``: the server then waits (at most
        :data:`HELLO_TIMEOUT` s) for a first client message
        ``{"last_event_id": N}`` (``N`` an integer, ``-1``, or null for "from
        now") before it streams. A ``keepalive`` message (id = cursor) comes
        after 15 s of silence. The client sends nothing else (more than
        :data:`MAX_CLIENT_MESSAGES` messages: closed 1008).

        Authentication is that of every route, read from the handshake (an
        HTTP GET): ``Authorization: Bearer`` or ``X-API-Key`` for programs; a
        browser, which cannot set headers on a WebSocket, is authenticated by
        what :class:`~echo_archive.api.deps.Auth` accepts without them (the
        dashboard's cookie session), and then only when its ``Origin`` is the
        service's own host (RFC 6455 §10.2, against cross-site WebSocket
        hijacking). Close codes (RFC 6455 §7.4): 1008 when the credential is
        missing, invalid, lacks the permission or stops being valid, or the
        origin is foreign; 4400 for a bad parameter or hello (the reason
        names it); 1011 when the service cannot stream (no running service).
        """
        await websocket.accept()
        request = _handshake_request(websocket)
        params = websocket.query_params
        try:
            if not _same_origin(websocket) and not (
                websocket.headers.get("authorization") or websocket.headers.get("x-api-key")
            ):
                raise HTTPException(status_code=403, detail={"message": "foreign Origin"})
            principal = await auth.principal(request)
            authorize(principal, _ITEMS_READ, now=ctx.clock())
            chosen, feeds = _scope_of(
                principal, params.get("feed"), params.get("kinds"), ctx.clock()
            )
            resume = _resume_of([], params.get("last_event_id"))
            hello = params.get("hello", "false").lower()
            if hello not in ("true", "false", "1", "0"):
                raise request_error(RequestError(f"hello {hello[:20]!r}: expected true or false"))
            if hello in ("true", "1"):
                resume = await _hello(websocket)
            started, ready = hub.start(chosen, feeds, resume, recheck_of(request))
        except PermissionDenied as exc:
            await _close(websocket, WS_POLICY, f"403 {exc}")
            return
        except HTTPException as exc:
            code = WS_BAD_REQUEST if exc.status_code == 400 else WS_POLICY
            if exc.status_code == 503:
                code = 1011
            await _close(websocket, code, f"{exc.status_code} {_message(exc)}")
            return
        except WebSocketDisconnect:
            return
        try:
            await _run_ws(websocket, started, ready)
        finally:
            hub.finish(started)

    return router


def _message(exc: HTTPException) -> str:
    detail: Any = exc.detail
    if isinstance(detail, dict):
        return str(detail.get("message", ""))
    return str(detail)


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    """Close with ``code``; the reason cut to the 123 bytes a close frame holds (RFC 6455 §5.5)."""
    data = reason.encode()[:123].decode(errors="ignore")
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await websocket.close(code=code, reason=data)


async def _hello(websocket: WebSocket) -> tuple[str, str] | None:
    """The resume cursor of a ``hello=true`` client's first message (raises the 400)."""
    try:
        async with asyncio.timeout(HELLO_TIMEOUT):
            text = await websocket.receive_text()
    except TimeoutError:
        raise request_error(RequestError("hello: no first message")) from None
    except KeyError:  # a binary frame: receive_text reads message["text"]
        raise request_error(RequestError("hello: expected a text message")) from None
    if len(text) > MAX_TEXT:
        raise request_error(RequestError(f"hello: longer than {MAX_TEXT} characters"))
    try:
        doc = json.loads(text)
    except ValueError:
        raise request_error(RequestError("hello: not JSON")) from None
    if not isinstance(doc, dict) or set(doc) - {"last_event_id"}:
        raise request_error(RequestError('hello: expected {"last_event_id": N}'))
    value = doc.get("last_event_id")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise request_error(RequestError("hello: last_event_id must be an integer or null"))
    return str(value), "hello's last_event_id"


async def _run_ws(websocket: WebSocket, stream: _Stream, ready: StreamMessage) -> None:
    """Send the stream's messages until the client leaves or the credential ends."""
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            count = 1
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                count += 1
                if count > MAX_CLIENT_MESSAGES:
                    await _close(websocket, WS_POLICY, "the stream takes no messages")
                    break
            group.cancel_scope.cancel()

        group.start_soon(watch)
        try:
            await websocket.send_text(ready.ws)
            while True:
                batch = await stream.next()
                if batch is None:
                    await websocket.send_text(
                        StreamMessage("closed", None, _json({"reason": "credentials"})).ws
                    )
                    await _close(websocket, WS_POLICY, "credentials no longer valid")
                    break
                for message in batch:
                    await websocket.send_text(message.ws)
        except (WebSocketDisconnect, RuntimeError):
            pass  # the client left mid-send
        finally:
            group.cancel_scope.cancel()
        if websocket.application_state is WebSocketState.CONNECTED:
            await _close(websocket, 1000, "")
