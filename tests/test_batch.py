"""Captures, items, versions and tombstones from real recorded traffic, in a real vault."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from echo_archive.errors import EntrySchemaError, ParseError
from echo_archive.harvest.commit import commit_batch
from echo_archive.harvest.recordings import read_recording
from echo_archive.index.items import known, list_items
from echo_archive.index.observations import observations_of
from echo_archive.model import Exchange, Item, Request
from echo_archive.pipeline.batch import Sighting, item_blob, with_contents
from echo_archive.pipeline.versioning import content_document, content_json
from echo_archive.redaction import redact_url
from echo_archive.sources.base import Feed, Source
from echo_archive.sources.fred import FredSource
from echo_archive.sources.hn import HnSource
from echo_archive.vault.entry import canonical_json, format_timestamp
from echo_archive.vault.merkle import leaf_hash
from echo_archive.vault.vault import Vault
from echo_archive.vault.verify import verify_vault

from .conftest import shared_dir

TS = "2026-11-22T01:41:19.123456Z"


def _sightings(feed: Feed, source: Source, exchanges: Sequence[Exchange]) -> list[Sighting]:
    out = []
    for ex in exchanges:
        request = Request(url=ex.url)
        try:
            out.append(Sighting(feed, request, ex, source.parse(feed, request, ex)))
        except ParseError as exc:
            out.append(Sighting(feed, request, ex, None, str(exc)))
    return out


@pytest.fixture
def hn_exchanges() -> tuple[Exchange, ...]:
    path = (
        shared_dir("corpora", "hackernews") / "topnews-vcr" / "hackernews_top_stories_details.yml"
    )
    return read_recording(path).exchanges


def test_same_recorded_data_twice_adds_nothing(
    vault_path: Path, hn_exchanges: tuple[Exchange, ...]
) -> None:
    feed = Feed("hn-top", "hn", {"list": "top", "limit": 500})
    sightings = _sightings(feed, HnSource(), hn_exchanges)
    with Vault.open(vault_path) as v:
        first, result = commit_batch(v, sightings, TS)
        assert result is not None
        assert first.captures == 501
        assert first.new == 500
        assert first.versions == first.duplicates == first.tombstones == 0
        assert first.observations == 500  # every story has a score
        second, _ = commit_batch(v, sightings, TS)
        assert second.captures == 501  # raw first: every exchange is kept
        assert second.new == second.versions == 0
        assert second.duplicates == 500
        assert v.size == 501 + 500 + 501
        report = verify_vault(v)
        assert report.ok, report.problems[:3]
        items = list_items(v.catalog, feed="hn-top", limit=1000)
        assert len(items) == 500
        assert all(row["versions"] == 1 for row in items)


def test_item_entries_name_their_capture_and_blob(
    vault_path: Path, hn_exchanges: tuple[Exchange, ...]
) -> None:
    feed = Feed("hn-top", "hn", {"list": "top", "limit": 500})
    with Vault.open(vault_path) as v:
        commit_batch(v, _sightings(feed, HnSource(), hn_exchanges[:3]), TS)
        capture = v.entry(0)
        assert capture.type == "capture"
        meta = dict(capture.meta)
        assert meta["kind"] == "http"
        assert meta["status"] == 200
        assert meta["url"] == "https://hacker-news.firebaseio.com/v0/topstories.json"
        assert v.blobs.get(capture.blobs[0].digest) == hn_exchanges[0].body
        item_capture = v.entry(1)
        assert item_capture.type == "capture"
        item = v.entry(2)
        assert item.type == "item"
        assert item.meta["capture"] == "sha256:" + leaf_hash(item_capture.raw).hex()
        doc = json.loads(v.blobs.get(item.blobs[0].digest))
        assert doc["source"] == "hn"
        assert doc["native_id"] == item.meta["native_id"]
        assert "score" in doc["counters"]
        obs = observations_of(v.catalog, "hn", "hn-top", item.meta["native_id"])
        assert obs[0]["capture_idx"] == 1


def test_revised_fred_value_becomes_a_version(vault_path: Path) -> None:
    path = (
        shared_dir("corpora", "fred") / "pyfredapi-2024" / "test_series__test_get_series[json].yaml"
    )
    exchanges = [  # the importer stamps an untimed recorded exchange with the import time
        replace(e, fetched_at=e.fetched_at or TS)
        for e in read_recording(path).exchanges
        if "observations" in e.url
    ]
    feed = Feed("fred-gdp", "fred", {"series_id": "GDP", "api_key": "k"})
    per_exchange = [_sightings(feed, FredSource(), [e]) for e in exchanges]
    with Vault.open(vault_path) as v:
        counts = [commit_batch(v, s, TS)[0] for s in per_exchange]
        assert counts[0].new == 315
        assert sum(c.versions for c in counts) >= 1
        versions = [
            row for row in list_items(v.catalog, feed="fred-gdp", limit=1000) if row["versions"] > 1
        ]
        assert [row["native_id"] for row in versions] == ["GDP:2024-07-01"]
        latest = v.entry(versions[0]["idx"])
        assert latest.type == "version"
        previous = v.entry(latest.meta["previous"])
        assert previous.type == "item"
        new_value = json.loads(v.blobs.get(latest.blobs[0].digest))["text"]
        old_value = json.loads(v.blobs.get(previous.blobs[0].digest))["text"]
        assert {old_value, new_value} == {"29349.924", "29374.914"}
        assert verify_vault(v).ok


def test_tombstone_for_a_deleted_hn_item(
    vault_path: Path, hn_exchanges: tuple[Exchange, ...]
) -> None:
    feed = Feed("hn-top", "hn", {"list": "top", "limit": 500})
    story = next(e for e in hn_exchanges if "/item/" in e.url)
    item_id = json.loads(story.body)["id"]
    gone = Exchange(
        method="GET",
        url=story.url,
        status=200,
        headers=story.headers,
        body=json.dumps({"id": item_id, "deleted": True, "type": "story", "time": 1}).encode(),
        fetched_at=TS,
    )
    with Vault.open(vault_path) as v:
        commit_batch(v, _sightings(feed, HnSource(), [story]), TS)
        counts, _ = commit_batch(v, _sightings(feed, HnSource(), [gone]), TS)
        assert counts.tombstones == 1
        again, _ = commit_batch(v, _sightings(feed, HnSource(), [gone]), TS)
        assert again.tombstones == 0
        assert again.duplicates == 1
        row = known(v.catalog, "hn", "hn-top", str(item_id))
        assert row is not None
        assert row.tombstoned
        tomb = v.entry(row.idx)
        assert tomb.type == "tombstone"
        assert tomb.meta["reason"] == "deleted"
        # The 2024 recording again, after the 2026 deletion: not a comeback (issue 9).
        stale, _ = commit_batch(v, _sightings(feed, HnSource(), [story]), TS)
        assert (stale.versions, stale.duplicates) == (0, 1)
        later = replace(story, fetched_at="2026-11-23T00:00:00.000000Z", recorded_at=None)
        back, _ = commit_batch(v, _sightings(feed, HnSource(), [later]), TS)
        assert back.versions == 1  # the item came back


def test_malformed_response_is_kept_as_a_capture_with_its_error(vault_path: Path) -> None:
    feed = Feed("hn-top", "hn", {"list": "top"})
    bad = Exchange(
        method="GET",
        url="https://hacker-news.firebaseio.com/v0/topstories.json",
        status=200,
        headers=(("Content-Type", "application/json"),),
        body=b"[1, 2, ",
        fetched_at=TS,
    )
    with Vault.open(vault_path) as v:
        counts, _ = commit_batch(v, _sightings(feed, HnSource(), [bad]), TS)
        assert counts.captures == 1
        assert counts.parse_errors == 1
        assert counts.new == 0
        meta = v.entry(0).meta
        assert "line 1" in meta["parse_error"]
        assert v.blobs.get(v.entry(0).blobs[0].digest) == b"[1, 2, "


def test_credentials_are_redacted_from_stored_urls() -> None:
    assert redact_url(
        "https://api.stlouisfed.org/fred/series/observations?series_id=GDP&api_key=abc123&x=1"
    ) == ("https://api.stlouisfed.org/fred/series/observations?series_id=GDP&api_key=REDACTED&x=1")
    assert redact_url("https://x/?access_token=t") == "https://x/?access_token=REDACTED"


# --------------------------------------------------------------------------- item blobs

_text = st.text(max_size=20) | st.sampled_from(
    [',"deleted":', ',"native_id":', '"}', "\\", '{"author":', "é😀"]
)
_extra_keys = st.sampled_from(["deleted", "native_id", "author", "capture", "x", "é"]) | _text
_extra_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_extra_keys, inner, max_size=3),
    max_leaves=12,
)
_name = st.tuples(_text, st.text(min_size=1, max_size=1)).map("".join)  # ids are non-empty
_items = st.builds(
    Item,
    source=_name,
    feed=_name,
    native_id=_name,
    url=_text,
    title=_text,
    text=_text,
    author=_text,
    published_at=st.just("") | st.integers(0, 2**62).map(format_timestamp),
    extra=st.dictionaries(_extra_keys, _extra_values, max_size=4),
    counters=st.dictionaries(st.sampled_from(["score", "ups", "é"]), st.integers(0, 10**6)),
    deleted=st.booleans(),
)


def _full_blob(item: Item, capture: str, fetched_at: str) -> bytes:
    doc = content_document(item)
    doc.update(counters=dict(item.counters), capture=capture, fetched_at=fetched_at)
    return canonical_json(doc)


@pytest.mark.slow
@settings(max_examples=400, deadline=None)
@given(_items)
def test_item_blob_spliced_from_the_content_equals_full_canonicalization(item: Item) -> None:
    capture, fetched_at = "sha256:" + "ab" * 32, TS
    expected = _full_blob(item, capture, fetched_at)
    assert item_blob(item, capture, fetched_at, content_json(item)) == expected
    assert item_blob(item, capture, fetched_at) == expected
    assert json.loads(expected)["native_id"] == item.native_id


def test_item_blob_with_a_non_string_field_is_refused_by_its_schema() -> None:
    # A source bug handing a non-string title must not make a wrong splice: the item blob
    # schema refuses it before any splice (it used to fall back to full canonicalization).
    item = Item("rss", "f", "1", title={"native_id": 1, "deleted": 2})  # type: ignore[arg-type]
    content = content_json(item)
    assert content.rfind(b',"native_id":') > content.find(b',"title":')  # the trap is real
    with pytest.raises(EntrySchemaError, match=r"^item blob of rss:f:1: .*field title"):
        item_blob(item, "sha256:" + "0" * 64, TS, content)


def test_precomputed_contents_commit_the_same_entries(
    tmp_path: Path, hn_exchanges: tuple[Exchange, ...]
) -> None:
    feed = Feed("hn-top", "hn", {"list": "top", "limit": 500})
    sightings = _sightings(feed, HnSource(), hn_exchanges[:60])
    prepared = [with_contents(s) for s in sightings]
    assert sum(s.contents is not None for s in prepared) == 59  # the list response has no items
    roots = []
    for name, batch in (("plain", sightings), ("prepared", prepared)):
        v = Vault.create(tmp_path / name, origin="echo.test/batch")
        with v:
            counts, result = commit_batch(v, batch, TS)
            assert result is not None
            assert counts.new == 59
            roots.append([v.entry(i).raw for i in range(v.size)])
    assert roots[0] == roots[1]
