"""Library services for items: keyset pages with opaque cursors, times as instants, history.

Items are committed through the real harvest commit path
(:func:`~echo_archive.harvest.commit.commit_batch`) into real vaults.
"""

from __future__ import annotations

import base64
import json
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from echo_archive.errors import CursorError, LogError, NotFoundError, RequestError
from echo_archive.index.items import item_page
from echo_archive.schemas import file_capture
from echo_archive.services.items import (
    ItemKey,
    ItemQuery,
    ItemSummary,
    item_history,
    list_items,
    parse_item_ref,
)
from echo_archive.services.paging import MAX_LIMIT, Page, encode_cursor, parse_instant
from echo_archive.vault.entry import format_timestamp
from echo_archive.vault.vault import Record, Vault

from .itemdata import at as _at
from .itemdata import commit_items as _commit

SETTINGS = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _walk(v: Vault, query: ItemQuery) -> list[ItemSummary]:
    """Every entry of every page, following ``next``."""
    seen: list[ItemSummary] = []
    page = list_items(v, query)
    while True:
        seen.extend(page.entries)
        assert len(page.entries) <= query.limit
        if page.next is None:
            return seen
        assert page.entries, "a page with a next cursor holds entries"
        page = list_items(v, _with(query, cursor=page.next))


def _with(query: ItemQuery, **changes: object) -> ItemQuery:
    fields = {name: getattr(query, name) for name in query.__slots__}
    fields.update(changes)
    return ItemQuery(**fields)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- pages

ops = st.lists(
    st.tuples(
        st.sampled_from(["a", "b"]),  # feed
        st.lists(st.tuples(st.integers(0, 30), st.sampled_from(["x", "y", "z"])), max_size=6),
        st.lists(st.integers(0, 30), max_size=2),  # tombstones
    ),
    min_size=1,
    max_size=8,
)


@SETTINGS
@given(
    batches=ops,
    limit=st.integers(1, 7),
    order=st.sampled_from(["newest", "oldest"]),
    feed=st.sampled_from([None, "a"]),
)
def test_walking_every_page_yields_every_item_once_in_order(
    tmp_path_factory: pytest.TempPathFactory,
    batches: list[tuple[str, list[tuple[int, str]], list[int]]],
    limit: int,
    order: str,
    feed: str | None,
) -> None:
    path = tmp_path_factory.mktemp("v") / "vault"
    with Vault.create(path) as v:
        for name, items, tombs in batches:
            unique = dict((f"n{nid}", title) for nid, title in items)
            _commit(
                v, name, list(unique.items()), [f"n{t}" for t in tombs if f"n{t}" not in unique]
            )
    with Vault.open(path, readonly=True) as r:
        query = ItemQuery(feed=feed, limit=limit, order=order, total=True)  # type: ignore[arg-type]
        if feed is not None and not item_page(r.catalog, feed=feed, limit=1):
            with pytest.raises(NotFoundError, match=f"feed '{feed}': no item of this feed"):
                list_items(r, query)  # a filter naming no feed with items says so
            return
        walked = _walk(r, query)
        first = list_items(r, query)
        every = item_page(r.catalog, feed=feed, limit=10_000, newest_first=order == "newest")
    keys = [(i.source, i.feed, i.native_id) for i in walked]
    assert len(keys) == len(set(keys))  # each item once
    assert [i.first_index for i in walked] == [int(row["first_idx"]) for row in every]
    assert first.total == len(every)
    firsts = [i.first_index for i in walked]
    assert firsts == sorted(firsts, reverse=order == "newest")
    for item in walked:
        assert feed is None or item.feed == feed
        assert (item.state == "tombstoned") == (item.type == "tombstone")


@SETTINGS
@given(
    rounds=st.lists(
        st.tuples(
            st.lists(st.integers(0, 40), max_size=4),  # native ids new or versioned
            st.lists(st.integers(0, 40), max_size=2),  # tombstoned
        ),
        min_size=1,
        max_size=12,
    ),
    limit=st.integers(1, 5),
    order=st.sampled_from(["newest", "oldest"]),
)
def test_pages_stay_exact_while_entries_are_appended_between_them(
    tmp_path_factory: pytest.TempPathFactory,
    rounds: list[tuple[list[int], list[int]]],
    limit: int,
    order: str,
) -> None:
    path = tmp_path_factory.mktemp("v") / "vault"
    with Vault.create(path) as w:
        _commit(w, "a", [(f"n{i}", "first") for i in range(12)])
        with Vault.open(path, readonly=True) as r:
            before = {i.native_id: i.first_index for i in _walk(r, ItemQuery(limit=MAX_LIMIT))}
            query = ItemQuery(limit=limit, order=order)  # type: ignore[arg-type]
            page = list_items(r, query)
            walked = list(page.entries)
            step = 0
            while page.next is not None:
                if step < len(rounds):  # another writer's commit lands between two pages
                    changed, tombs = rounds[step]
                    titled = {f"n{i}": f"v{step}" for i in changed}
                    gone = [f"n{i}" for i in tombs if f"n{i}" not in titled]
                    _commit(w, "a", list(titled.items()), gone)
                step += 1
                page = list_items(r, _with(query, cursor=page.next))
                walked.extend(page.entries)
    ids = [i.native_id for i in walked]
    assert len(ids) == len(set(ids)), "an item was listed twice"
    firsts = [i.first_index for i in walked]
    assert firsts == sorted(firsts, reverse=order == "newest")
    assert set(before) <= set(ids), "an item that existed when the walk began was skipped"
    if order == "newest":  # the items archived during the walk sort before its start
        assert set(ids) == set(before)
    for item in walked:
        if item.native_id in before:
            assert item.first_index == before[item.native_id]


def test_a_walk_beside_a_writer_thread_sees_every_item_once(tmp_path: Path) -> None:
    path = tmp_path / "vault"
    with Vault.create(path) as w:
        _commit(w, "a", [(f"n{i}", "first") for i in range(60)])
    stop = threading.Event()
    failures: list[BaseException] = []

    def writer() -> None:
        try:
            with Vault.open(path) as v:
                n = 0
                while not stop.is_set() and n < 200:
                    _commit(v, "a", [(f"n{n % 60}", f"v{n}"), (f"new{n}", "x")])
                    n += 1
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    thread = threading.Thread(target=writer)
    with Vault.open(path, readonly=True) as r:
        thread.start()
        try:
            walked = _walk(r, ItemQuery(limit=3, feed="a"))
        finally:
            stop.set()
            thread.join()
    assert not failures
    ids = [i.native_id for i in walked]
    assert len(ids) == len(set(ids))
    assert {f"n{i}" for i in range(60)} <= set(ids)
    firsts = [i.first_index for i in walked]
    assert firsts == sorted(firsts, reverse=True)


# --------------------------------------------------------------------------- cursors


@pytest.fixture
def items_vault(tmp_path: Path) -> Path:
    path = tmp_path / "vault"
    with Vault.create(path) as v:
        _commit(v, "a", [(f"n{i}", f"t{i}") for i in range(5)], seen_at=_at(0))
        _commit(v, "b", [(f"m{i}", f"t{i}") for i in range(5)], seen_at=_at(3600))
        _commit(v, "a", [("n1", "changed")], ["n2"], seen_at=_at(7200))
    return path


def _token(doc: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("cursor", "message"),
    [
        ("", "not a cursor this listing issued"),
        ("!!!", "not a cursor this listing issued"),
        ("bm90IGpzb24", "not a cursor this listing issued"),  # "not json"
        (_token([1, 2]), "not a version-1 cursor"),
        (_token({"v": 2, "k": 3, "q": "x"}), "not a version-1 cursor"),
        (_token({"v": 1, "k": -1, "q": "x"}), "not an entry index"),
        (_token({"v": 1, "k": True, "q": "x"}), "not an entry index"),
        (_token({"v": 1, "k": "3", "q": "x"}), "not an entry index"),
        (_token({"v": 1, "k": 3, "q": "x", "extra": 1}), "not a version-1 cursor"),
        (_token({"v": 1, "k": 3, "q": "0123456789abcdef"}), "other filters or order"),
        ("A" * 600, "not a cursor this listing issued"),
        ("é", "not a cursor this listing issued"),
        (_token("[" * 5000), "not a cursor this listing issued"),
    ],
)
def test_bad_cursors_are_refused_clearly(items_vault: Path, cursor: str, message: str) -> None:
    with Vault.open(items_vault, readonly=True) as r, pytest.raises(CursorError) as caught:
        list_items(r, ItemQuery(cursor=cursor))
    assert message in str(caught.value)
    assert str(caught.value).startswith("cursor ")


def test_a_cursor_only_continues_the_listing_that_issued_it(items_vault: Path) -> None:
    with Vault.open(items_vault, readonly=True) as r:
        page = list_items(r, ItemQuery(feed="a", limit=2))
        assert page.next is not None
        for other in (
            ItemQuery(feed="b", limit=2, cursor=page.next),
            ItemQuery(limit=2, cursor=page.next),
            ItemQuery(feed="a", order="oldest", limit=2, cursor=page.next),
            ItemQuery(feed="a", state="active", limit=2, cursor=page.next),
            ItemQuery(feed="a", since="2026-12-05T12:00:00Z", limit=2, cursor=page.next),
        ):
            with pytest.raises(CursorError, match="other filters or order"):
                list_items(r, other)
        # the page size may change between pages: it is not a filter
        more = list_items(r, ItemQuery(feed="a", limit=10, cursor=page.next))
        assert [i.native_id for i in more.entries] == ["n2", "n1", "n0"]
        assert more.next is None
    # a cursor is an opaque token safe in a URL query
    assert all(c.isalnum() or c in "-_" for c in page.next)


def test_requests_are_checked(items_vault: Path) -> None:
    with Vault.open(items_vault, readonly=True) as r:
        for query, message in (
            (ItemQuery(limit=0), "limit 0: must be 1 to 1000"),
            (ItemQuery(limit=MAX_LIMIT + 1), "limit 1001"),
            (ItemQuery(state="deleted"), "state 'deleted': expected one of active, tombstoned"),
            (ItemQuery(order="random"), "order 'random'"),  # type: ignore[arg-type]
            (ItemQuery(since="2026-12-05"), "since '2026-12-05': expected an RFC 3339"),
            (ItemQuery(until="2026-12-05T12:00:00"), "until '2026-12-05T12:00:00'"),
            (ItemQuery(since="2026-02-30T00:00:00Z"), "not a real date"),
        ):
            with pytest.raises(RequestError, match=message):
                list_items(r, query)
        assert list_items(r, ItemQuery(limit=MAX_LIMIT)).next is None


def test_an_empty_vault_lists_an_empty_last_page(vault_path: Path) -> None:
    with Vault.open(vault_path, readonly=True) as r:
        assert list_items(r, ItemQuery(total=True)) == Page(entries=[], next=None, total=0)


# --------------------------------------------------------------------------- times


def test_state_and_time_filters(items_vault: Path) -> None:
    with Vault.open(items_vault, readonly=True) as r:
        gone = list_items(r, ItemQuery(state="tombstoned")).entries
        assert [(i.native_id, i.type, i.state) for i in gone] == [("n2", "tombstone", "tombstoned")]
        active = list_items(r, ItemQuery(state="active", total=True))
        assert active.total == 9
        # the same instant written with three offsets
        for since in (
            "2026-12-05T13:00:00Z",
            "2026-12-05T14:00:00+01:00",
            "2026-12-05T08:00:00-05:00",
        ):
            ids = {i.native_id for i in list_items(r, ItemQuery(since=since)).entries}
            assert ids == {"m0", "m1", "m2", "m3", "m4", "n1", "n2"}
        ids = {
            i.native_id
            for i in list_items(
                r,
                ItemQuery(
                    since="2026-12-05T07:00:00.000001-05:00", until="2026-12-05T15:00:00+01:00"
                ),
            ).entries
        }
        assert ids == {"m0", "m1", "m2", "m3", "m4"}  # until is exclusive: n1, n2 are at 14:00Z


@settings(max_examples=200, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime(1900, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
    minutes=st.integers(-23 * 60 - 59, 23 * 60 + 59),
)
def test_instants_compare_as_instants_whatever_the_offset(moment: datetime, minutes: int) -> None:
    zone = timezone(timedelta(minutes=minutes))
    local = moment.astimezone(zone)
    sign = "+" if minutes >= 0 else "-"
    text = local.strftime("%Y-%m-%dT%H:%M:%S") + f".{local.microsecond:06d}"
    text += f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    micros = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    assert parse_instant(text) == format_timestamp(micros * 1000)


def test_instant_parsing_edges() -> None:
    assert parse_instant("2026-12-05T12:00:00Z") == "2026-12-05T12:00:00.000000Z"
    assert parse_instant("2026-12-05t12:00:00z") == "2026-12-05T12:00:00.000000Z"
    assert parse_instant("2026-12-05 13:00:00.5+01:00") == "2026-12-05T12:00:00.500000Z"
    # finer than the stored microseconds: rounded up, so >= and < keep their meaning
    assert parse_instant("2026-12-05T12:00:00.0000001Z") == "2026-12-05T12:00:00.000001Z"
    assert parse_instant("2026-12-05T12:00:00.0000010Z") == "2026-12-05T12:00:00.000001Z"
    assert parse_instant("2016-12-31T23:59:60Z") == "2017-01-01T00:00:00.000000Z"
    assert parse_instant("0001-01-01T00:00:00Z") == "0001-01-01T00:00:00.000000Z"
    for bad in (
        "",
        "yesterday",
        "2026-12-05T12:00:00",
        "2026-12-05T25:00:00Z",
        "2026-13-05T12:00:00Z",
        "2026-12-05T12:00:00+24:00",
        "2026-12-05T12:00:00+01:60",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59.9999999Z",
        "２０２６-12-05T12:00:00Z",
    ):
        with pytest.raises(RequestError, match="since"):
            parse_instant(bad, "since")


def test_a_stored_cursor_of_another_listing_kind_is_refused(items_vault: Path) -> None:
    with Vault.open(items_vault, readonly=True) as r, pytest.raises(CursorError):
        list_items(r, ItemQuery(cursor=encode_cursor(5, "reports-listing")))


# --------------------------------------------------------------------------- history


def test_history_from_any_entry_of_the_item(items_vault: Path) -> None:
    with Vault.open(items_vault, readonly=True) as r:
        by_key = item_history(r, "rss:a:n1")
        assert by_key.key == ItemKey("rss", "a", "n1")
        assert [h.type for h in by_key.history] == ["version", "item"]
        assert by_key.latest["title"] == "changed"
        assert not by_key.tombstoned
        oldest = by_key.history[-1].index
        assert item_history(r, oldest) == by_key
        assert item_history(r, str(oldest)) == by_key
        for h in by_key.history:  # the capture each entry was parsed from
            capture = r.entry(h.capture_index)  # type: ignore[arg-type]
            assert capture.type == "capture"
            assert capture.meta["feed"] == "a"
        assert [c["index"] for c in by_key.captures] == sorted(
            {h.capture_index for h in by_key.history}
        )
        gone = item_history(r, ItemKey("rss", "a", "n2"))
        assert gone.tombstoned
        assert gone.history[0].item is None
        assert gone.history[0].meta["reason"] == "gone at the source"
        assert gone.latest["title"] == "t2"
        data = json.loads(json.dumps(gone.to_json()))
        assert set(data) == {
            "state",
            "retracted",
            "history",
            "observations",
            "captures",
            "corrections",
        }
        assert data["state"] == "tombstoned"
        assert (data["retracted"], data["corrections"]) == (False, [])


def test_history_errors(items_vault: Path) -> None:
    with Vault.open(items_vault, readonly=True) as r:
        with pytest.raises(NotFoundError, match="no item rss:a:nope"):
            item_history(r, "rss:a:nope")
        with pytest.raises(RequestError, match="expected an entry index or SOURCE:FEED"):
            item_history(r, "rss:a")
        with pytest.raises(LogError, match="is a capture, not an item"):
            item_history(r, 0)
        with pytest.raises(LogError, match="no entry at index 999"):
            item_history(r, 999)
    assert parse_item_ref("hn:top:a:b") == ItemKey("hn", "top", "a:b")


def test_entries_that_are_not_items_are_never_listed(tmp_path: Path) -> None:
    path = tmp_path / "vault"
    with Vault.create(path) as v:
        v.commit([Record("capture", file_capture("x", 1, 0), {"body": b"x"})])
        _commit(v, "a", [("n0", "t")])
    with Vault.open(path, readonly=True) as r:
        page = list_items(r, ItemQuery(total=True))
    assert [(i.native_id, i.index, i.first_index) for i in page.entries] == [("n0", 2, 2)]
    assert page.total == 1
