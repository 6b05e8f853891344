"""The live stream (``GET /v1/stream``, SSE) and its WebSocket twin (``GET /v1/ws``).

Against the real service on loopback (uvicorn, in this process: ``in_process``),
with keys made by ``echoctl keys create`` and items committed through the
service's own writer (the real harvest commit path, ``tests/itemdata.py``).
SSE is parsed by httpx-sse's decoder, with the WHATWG rule it leaves to the
caller applied (§9.2.6: an event whose data buffer is empty is not
dispatched, though its ``id:`` still sets the last event ID); the
WebSocket is read with the ``websockets`` client.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from httpx_sse import EventSource
from websockets.asyncio.client import connect

from echo_archive.api.roles import Role
from echo_archive.api.routes.stream import ENTRY_KINDS, LogFrames, _Stream
from echo_archive.api.session import SESSION_COOKIE
from echo_archive.api.users import add_user
from echo_archive.events import EventBus
from echo_archive.service.runner import ENTRY_EVENTS, Service
from echo_archive.service.scheduler import ManualClock
from echo_archive.vault.vault import Vault
from echo_archive.vault.writer import VaultWriter
from tests.conftest import run_echoctl
from tests.itemdata import commit_items
from tests.test_service import in_process, make_vault, on_loop, wait_for

PASSWORD = "correct horse battery"  # noqa: S105 - a test user's password
GROUPS = '\n[api.groups]\nnewsroom = ["alpha"]\n'


def _key(vault: Path, name: str, role: str, group: str | None = None) -> str:
    args = ["--vault", str(vault), "keys", "create", name, "--role", role, "--json"]
    if group is not None:
        args += ["--group", group]
    done = run_echoctl(*args)
    assert done.returncode == 0, done.stderr
    key: str = json.loads(done.stdout)["key"]
    return key


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, str]]]:
    """One vault for the module's service tests (``echoctl`` is slow to start), and its keys.

    Each test commits to feeds of its own, so none sees another's entries
    where it counts them.
    """
    vault = make_vault(tmp_path_factory.mktemp("stream"), "", GROUPS)
    with VaultWriter.open(vault) as writer:
        add_user(writer, "ana", Role.VIEWER, PASSWORD, now=time.time(), actor="cli:test")
    keys = {
        "viewer": _key(vault, "reader", "viewer"),
        "scoped": _key(vault, "newsdesk", "viewer", group="newsroom"),
        "analyst": _key(vault, "monitor", "analyst"),
    }
    return vault, {name: {"X-API-Key": key} for name, key in keys.items()}


def _frozen() -> ManualClock:
    clock = ManualClock(time.time())
    clock.stop_at = clock.now
    return clock


def _commit(service: Service, feed: str, ids: range, prefix: str = "n", pad: int = 0) -> None:
    """One capture of ``feed`` with an item per id (its title ``pad`` characters longer)."""
    items = [(f"{prefix}{i}", f"Title {i}" + " x" * (pad // 2)) for i in ids]
    service.writer.submit(commit_items, feed, items).result(60)


def _subscribers(service: Service) -> int:
    # the bus has no public count; its list is what a leaked stream would stay in
    return len(service.bus._subscribers)


class Sse:
    """An SSE reader over an httpx streaming response, following §9.2.6 for dispatch."""

    def __init__(self, response: httpx.Response) -> None:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        self.last_id = ""
        self.retry: int | None = None
        self._events = EventSource(response).iter_sse()

    def __iter__(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """``(event name, last event ID, data)`` of each dispatched event."""
        for sse in self._events:
            self.last_id = sse.id
            if sse.retry is not None:
                self.retry = sse.retry
            if not sse.data:
                continue  # "If the data buffer is an empty string ... return" (no event)
            yield sse.event or "message", sse.id, json.loads(sse.data)

    def take(self, n: int, kinds: tuple[str, ...] = tuple(ENTRY_KINDS.values())) -> list[Any]:
        out = []
        for event, ident, data in self:
            if event in kinds:
                assert ident == str(data["index"])
                out.append(data)
                if len(out) == n:
                    break
        return out


def _native_ids(events: list[dict[str, Any]]) -> list[str]:
    return [e["native_id"] for e in events]


def _assert_in_order(events: list[dict[str, Any]]) -> None:
    indexes = [e["index"] for e in events]
    assert indexes == sorted(set(indexes)), "out of order or duplicated"


def test_the_service_publishes_the_entry_kinds_the_stream_names() -> None:
    assert dict(ENTRY_EVENTS) == dict(ENTRY_KINDS)


@pytest.mark.slow
def test_sse_resume_after_a_gap_of_1000_entries_loses_and_repeats_nothing(
    served: tuple[Path, dict[str, dict[str, str]]],
) -> None:
    vault, keys = served
    auth = {"Authorization": f"Bearer {keys['viewer']['X-API-Key']}"}
    with (
        in_process(vault, _frozen()) as service,
        httpx.Client(base_url=service.url or "", timeout=60) as client,
    ):
        baseline = _subscribers(service)
        _commit(service, "gamma", range(3), prefix="before")
        with client.stream("GET", "/v1/stream", headers=auth) as response:
            assert response.headers["cache-control"] == "no-cache"
            sse = Sse(response)
            event, ready_id, ready = next(iter(sse))
            assert event == "ready"
            assert sse.retry == 3000
            assert ready["log_size"] == int(ready_id) + 1  # starts after what was there
            assert set(ready["kinds"]) == set(ENTRY_KINDS.values())  # a viewer: no alerts
            assert _subscribers(service) == baseline + 1
            _commit(service, "gamma", range(5), prefix="live")
            first = sse.take(5)
            assert _native_ids(first) == [f"live{i}" for i in range(5)]
            assert first[0]["kind"] == "item_archived"
            assert first[0]["title"] == "Title 0"
            assert first[0]["url"] == "https://example.org/live0"
            assert first[0]["ref"] == "rss:gamma:live0"
            assert first[0]["state"] == "active"
            last = sse.last_id
        # the client left: its subscription is released
        wait_for(lambda: _subscribers(service) == baseline, what="the subscription released")
        for batch in range(10):  # 1,000 entries (and 10 captures) committed during the gap
            _commit(service, "gamma", range(batch * 100, batch * 100 + 100))
        headers = {**auth, "Last-Event-ID": last}
        # the header wins over the URL's parameter (an EventSource keeps its first URL)
        with client.stream(
            "GET", "/v1/stream", params={"last_event_id": "-1"}, headers=headers
        ) as response:
            sse = Sse(response)
            event, ident, ready = next(iter(sse))
            assert (event, ident, ready["cursor"]) == ("ready", last, int(last))
            resumed = sse.take(1000)
            assert _native_ids(resumed) == [f"n{i}" for i in range(1000)]
            _assert_in_order(resumed)
            assert resumed[0]["index"] > int(last)
            _commit(service, "gamma", range(3), prefix="after")
            live = sse.take(3)
            assert _native_ids(live) == ["after0", "after1", "after2"]
            assert live[0]["index"] > resumed[-1]["index"]
        wait_for(lambda: _subscribers(service) == baseline, what="the subscription released")
        # the query parameter resumes too (for clients that cannot set headers)
        with client.stream(
            "GET",
            "/v1/stream",
            params={"last_event_id": last, "kinds": "item_archived"},
            headers=auth,
        ) as response:
            sse = Sse(response)
            again = sse.take(1003)
            assert _native_ids(again) == _native_ids(resumed) + _native_ids(live)
        wait_for(lambda: _subscribers(service) == baseline, what="the subscription released")


@pytest.mark.slow
def test_websocket_twin_resumes_by_query_and_by_hello(
    served: tuple[Path, dict[str, dict[str, str]]],
) -> None:
    vault, keys = served
    auth = keys["viewer"]
    with in_process(vault, _frozen()) as service:
        baseline = _subscribers(service)
        base = (service.url or "").replace("http://", "ws://") + "/v1/ws"

        async def read(ws: Any, n: int) -> list[dict[str, Any]]:
            out = []
            while len(out) < n:
                message = json.loads(await ws.recv())
                if message["event"] in ENTRY_KINDS.values():
                    assert message["id"] == message["data"]["index"]
                    out.append(message["data"])
            return out

        async def session() -> None:
            loop = asyncio.get_running_loop()
            async with connect(base, additional_headers=auth) as ws:
                ready = json.loads(await ws.recv())
                assert ready["event"] == "ready"
                await loop.run_in_executor(None, _commit, service, "delta", range(4), "live")
                first = await read(ws, 4)
                assert _native_ids(first) == [f"live{i}" for i in range(4)]
                last = first[-1]["index"]
            await loop.run_in_executor(
                None, wait_for, lambda: _subscribers(service) == baseline, 30.0, "released"
            )
            for batch in range(10):
                await loop.run_in_executor(
                    None, _commit, service, "delta", range(batch * 100, batch * 100 + 100)
                )
            async with connect(f"{base}?last_event_id={last}", additional_headers=auth) as ws:
                ready = json.loads(await ws.recv())
                assert (ready["event"], ready["id"]) == ("ready", last)
                resumed = await read(ws, 1000)
                assert _native_ids(resumed) == [f"n{i}" for i in range(1000)]
                _assert_in_order(resumed)
                await loop.run_in_executor(None, _commit, service, "delta", range(2), "after")
                live = await read(ws, 2)
                assert _native_ids(live) == ["after0", "after1"]
            async with connect(f"{base}?hello=true", additional_headers=auth) as ws:
                await ws.send(json.dumps({"last_event_id": last}))
                ready = json.loads(await ws.recv())
                assert (ready["event"], ready["id"]) == ("ready", last)
                assert _native_ids(await read(ws, 1002)) == _native_ids(resumed + live)
            await loop.run_in_executor(
                None, wait_for, lambda: _subscribers(service) == baseline, 30.0, "released"
            )

        asyncio.run(session())


def _sse_blocks(raw: bytes) -> list[tuple[str, str, str]]:
    """``(event, last event ID, data)`` dispatched from a ``text/event-stream`` body.

    The interpretation of WHATWG HTML §9.2.6: lines end at CRLF, LF or CR; a
    line starting with ``:`` is a comment; ``field: value`` (one leading
    space dropped); a blank line dispatches, unless the data buffer is
    empty; ``id`` persists across events.
    """
    out, last_id, event, data = [], "", "", []
    text = raw.decode().replace("\r\n", "\n").replace("\r", "\n")
    for line in text.split("\n"):
        if not line:
            if data:
                out.append((event or "message", last_id, "\n".join(data)))
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id" and "\0" not in value:
            last_id = value
    return out


def _dechunk(raw: bytes) -> bytes:
    """The body of an HTTP/1.1 response in the chunked coding (RFC 9112 §7.1), as far as it goes."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head[:80]
    assert b"transfer-encoding: chunked" in head.lower()
    body = b""
    while rest:
        size_line, sep, rest = rest.partition(b"\r\n")
        if not sep:
            break
        size = int(size_line.split(b";")[0], 16)
        if size == 0 or len(rest) < size + 2:
            body += rest[:size]
            break
        body, rest = body + rest[:size], rest[size + 2 :]
    return body


@pytest.mark.slow
def test_a_client_that_stops_reading_starves_nobody_and_then_gets_every_entry(
    served: tuple[Path, dict[str, dict[str, str]]],
) -> None:
    vault, keys = served
    key = keys["viewer"]["X-API-Key"]
    # 3,000 events of about 4 KB: 12 MB, past the kernel's socket buffers (4 MB at
    # most here), uvicorn's 64 KiB and the stream's queue of 1,024 events
    total = 3000
    with (
        in_process(vault, _frozen()) as service,
        httpx.Client(base_url=service.url or "", timeout=60) as client,
    ):
        baseline = _subscribers(service)
        host, port = (service.url or "").removeprefix("http://").rsplit(":", 1)
        slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window: back-pressure
        slow.settimeout(60)
        slow.connect((host, int(port)))
        slow.sendall(
            f"GET /v1/stream?feed=epsilon HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"X-API-Key: {key}\r\n\r\n".encode()
        )
        try:
            with client.stream(
                "GET", "/v1/stream?feed=epsilon", headers=keys["viewer"]
            ) as response:
                brisk = Sse(response)
                assert next(iter(brisk))[0] == "ready"
                for batch in range(total // 200):
                    _commit(service, "epsilon", range(batch * 200, batch * 200 + 200), pad=4000)
                # the reading client got everything while the other read nothing
                assert _native_ids(brisk.take(total)) == [f"n{i}" for i in range(total)]
            raw = b""
            # until the last event and the end of its chunk (each chunk holds whole events)
            while raw.count(b"event: item_archived") < total or not raw.endswith(b"\n\n\r\n"):
                chunk = slow.recv(1 << 20)
                assert chunk, "the stream ended early"
                raw += chunk
        finally:
            slow.close()
        events = _sse_blocks(_dechunk(raw))
        overflow = [json.loads(d) for e, _, d in events if e == "overflow"]
        assert overflow, "the queue never overflowed: the test did not test the fallback"
        assert all(o["dropped"] > 0 for o in overflow)
        items = [json.loads(d) for e, _, d in events if e == "item_archived"]
        assert _native_ids(items) == [f"n{i}" for i in range(total)]  # none lost, none twice
        _assert_in_order(items)
        assert [i for e, i, _ in events if e == "item_archived"] == [str(d["index"]) for d in items]
        wait_for(lambda: _subscribers(service) == baseline, what="released")


@pytest.mark.slow
def test_scope_permissions_and_hostile_parameters(
    served: tuple[Path, dict[str, dict[str, str]]],
) -> None:
    vault, keys = served
    viewer, scoped, analyst = keys["viewer"], keys["scoped"], keys["analyst"]
    with (
        in_process(vault, _frozen()) as service,
        httpx.Client(base_url=service.url or "", timeout=60) as client,
    ):
        baseline = _subscribers(service)
        # no credentials: 401 (and 1008 on the WebSocket)
        bare = client.get("/v1/stream")
        assert bare.status_code == 401
        assert bare.headers["WWW-Authenticate"].startswith("Bearer")
        assert client.get("/v1/stream", headers={"X-API-Key": "echo_bogus"}).status_code in (
            400,
            401,
        )
        bad = {
            "kinds=item_archived,nonsense": "nonsense",
            "kinds=": "kinds",
            "last_event_id=abc": "last_event_id",
            "last_event_id=99999999999999999999999999": "last_event_id",
            "last_event_id=007": "last_event_id",
            "last_event_id=-2": "last_event_id",
            "last_event_id=1000000": "beyond the log",
            "feed=../etc": "feed",
        }
        for query, named in bad.items():
            got = client.get(f"/v1/stream?{query}", headers=viewer)
            assert got.status_code == 400, (query, got.text)
            assert named in got.json()["detail"]["message"], (query, got.text)
        got = client.get("/v1/stream", headers={**viewer, "Last-Event-ID": "\x01junk"})
        assert got.status_code == 400
        assert "Last-Event-ID" in got.json()["detail"]["message"]
        # alerts need operations:read; a scoped key may not leave its feeds
        assert client.get("/v1/stream?kinds=alert_fired", headers=viewer).status_code == 403
        assert client.get("/v1/stream?feed=beta", headers=scoped).status_code == 403
        assert client.get("/v1/stream?kinds=alert_fired", headers=scoped).status_code == 403
        with client.stream("GET", "/v1/stream", headers=analyst) as response:
            sse = Sse(response)
            events = iter(sse)
            _, ready_id, ready = next(events)
            assert "alert_fired" in ready["kinds"]  # an analyst holds operations:read
            on_loop(
                service, lambda: service.bus.emit("alert_fired", name="EchoTest", state="firing")
            )
            event, ident, data = next(events)
            assert (event, data["kind"], data["data"]["name"]) == (
                "alert_fired",
                "alert_fired",
                "EchoTest",
            )
            assert ident == ready_id  # no id: the last event ID still names a log index
        wait_for(lambda: _subscribers(service) == baseline, what="released")
        # the scoped key sees only its group's feeds; the unscoped one sees both
        with (
            client.stream("GET", "/v1/stream", headers=scoped) as mine,
            client.stream("GET", "/v1/stream?feed=beta", headers=viewer) as theirs,
        ):
            own, other = Sse(mine), Sse(theirs)
            assert next(iter(own))[2]["feeds"] == ["alpha"]
            assert next(iter(other))[2]["feeds"] == ["beta"]
            _commit(service, "beta", range(3), prefix="b")
            _commit(service, "alpha", range(2), prefix="a")
            _commit(service, "beta", range(3, 5), prefix="b")
            seen = own.take(2)
            assert _native_ids(seen) == ["a0", "a1"]
            assert {e["feed"] for e in seen} == {"alpha"}
            assert _native_ids(other.take(5)) == ["b0", "b1", "b2", "b3", "b4"]
        wait_for(lambda: _subscribers(service) == baseline, what="released")
        # a resumed scoped stream replays only its feeds' entries, from the log
        with client.stream(
            "GET", "/v1/stream", params={"last_event_id": "-1"}, headers=scoped
        ) as response:
            assert _native_ids(Sse(response).take(2)) == ["a0", "a1"]
        wait_for(lambda: _subscribers(service) == baseline, what="released")

        base = (service.url or "").replace("http://", "ws://") + "/v1/ws"

        async def refused(url: str, headers: dict[str, str]) -> int | None:
            async with connect(url, additional_headers=headers) as ws:
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await ws.recv()
                assert closed.value.rcvd is not None
                return closed.value.rcvd.code

        assert asyncio.run(refused(base, {})) == 1008
        assert asyncio.run(refused(base, {"X-API-Key": "echo_bogus"})) in (1008, 4400)
        assert asyncio.run(refused(f"{base}?kinds=alert_fired", viewer)) == 1008
        assert asyncio.run(refused(f"{base}?kinds=bogus", viewer)) == 4400
        assert asyncio.run(refused(f"{base}?feed=beta", scoped)) == 1008
        wait_for(lambda: _subscribers(service) == baseline, what="released")


def test_a_slow_consumer_whose_queue_drops_still_gets_every_entry_from_the_log(
    vault_path: Path,
) -> None:
    writer = Vault.open(vault_path)
    for batch in range(6):
        commit_items(
            writer, "alpha", [(f"n{i}", f"t{i}") for i in range(batch * 10, batch * 10 + 10)]
        )
    indexes = [i for i, e in writer.iter_entries() if e.type == "item"]
    reader = Vault.open(vault_path, readonly=True)

    async def run() -> list[Any]:
        bus = EventBus()
        sub, unsubscribe = bus.queue(asyncio.get_running_loop(), 4)

        async def valid() -> bool:
            return True

        stream = _Stream(
            LogFrames(reader), sub, unsubscribe, frozenset({"item_archived"}), None, -1, -1, valid
        )
        for index in indexes:  # 60 events into a queue of 4: 56 dropped
            bus.emit("item_archived", index)
        await asyncio.sleep(0)  # let the loop deliver them
        assert sub.dropped == len(indexes) - 4
        got: list[Any] = []
        while len([m for m in got if m.event == "item_archived"]) < len(indexes):
            batch = await stream.next()
            assert batch is not None
            got.extend(batch)
        stream.close()
        assert not bus._subscribers
        return got

    try:
        got = asyncio.run(run())
    finally:
        reader.close()
        writer.close()
    items = [m for m in got if m.event == "item_archived"]
    assert [m.id for m in items] == indexes
    assert [json.loads(m.data)["native_id"] for m in items] == [f"n{i}" for i in range(60)]
    overflow = [json.loads(m.data) for m in got if m.event == "overflow"]
    assert overflow == [{"dropped": len(indexes) - 4}]


def test_a_keepalive_carries_the_cursor_and_a_lapsed_credential_ends_the_stream(
    vault_path: Path,
) -> None:
    writer = Vault.open(vault_path)
    commit_items(writer, "alpha", [("n0", "t0")])
    reader = Vault.open(vault_path, readonly=True)
    valid = [True]

    async def run() -> tuple[list[Any] | None, list[Any] | None]:
        bus = EventBus()
        sub, unsubscribe = bus.queue(asyncio.get_running_loop(), 4)

        async def recheck() -> bool:
            return valid[0]

        size = reader.latest_checkpoint().size
        stream = _Stream(
            LogFrames(reader), sub, unsubscribe, frozenset({"version"}), None, -1, -1, recheck
        )
        stream.keepalive = 0.05
        first = await stream.next()  # nothing to send: a keep-alive, at the log's end
        valid[0] = False
        second = await stream.next()
        stream.close()
        assert [(m.event, m.id) for m in first or []] == [("keepalive", size - 1)]
        return first, second

    try:
        _, second = asyncio.run(run())
    finally:
        reader.close()
        writer.close()
    assert second is None


@pytest.mark.slow
def test_a_browser_session_streams_and_a_foreign_origin_websocket_is_refused(
    served: tuple[Path, dict[str, dict[str, str]]],
) -> None:
    vault, _ = served
    with (
        in_process(vault, _frozen()) as service,
        httpx.Client(base_url=service.url or "", timeout=60) as client,
    ):
        baseline = _subscribers(service)
        login = client.post("/v1/session", data={"username": "ana", "password": PASSWORD})
        assert login.status_code == 200, login.text
        session = {"Cookie": f"{SESSION_COOKIE}={login.cookies[SESSION_COOKIE]}"}
        client.cookies.clear()
        # an EventSource sends its cookies and no header credential: a GET needs no CSRF token
        with client.stream("GET", "/v1/stream", headers=session) as response:
            assert next(iter(Sse(response)))[0] == "ready"
        url = service.url or ""
        base = url.replace("http://", "ws://") + "/v1/ws"

        async def first(origin: str) -> tuple[str | None, int | None]:
            async with connect(base, origin=origin, additional_headers=session) as ws:
                try:
                    return json.loads(await ws.recv())["event"], None
                except websockets.ConnectionClosed as closed:
                    return None, None if closed.rcvd is None else closed.rcvd.code

        assert asyncio.run(first(url)) == ("ready", None)  # the service's own origin
        # cross-site WebSocket hijacking: the cookie rides along, the Origin gives it away
        assert asyncio.run(first("http://evil.example")) == (None, 1008)
        wait_for(lambda: _subscribers(service) == baseline, what="released")
