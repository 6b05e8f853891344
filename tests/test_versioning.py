"""Versioning decisions: new, duplicate, version, tombstone; counters never make a version."""

from __future__ import annotations

from dataclasses import replace

import pytest

from echo_archive.errors import EntryError
from echo_archive.model import Item, Tombstone
from echo_archive.pipeline.versioning import Known, content_digest, decide, decide_tombstone

BASE = Item(
    source="hn",
    feed="hn-top",
    native_id="41247211",
    url="https://example.org/promi",
    title="Launch HN: Promi (YC S24)",
    text="",
    author="pg",
    published_at="2024-08-14T15:01:02.000000Z",
    extra={"type": "story"},
    counters={"score": 10, "descendants": 2},
)


def test_first_sighting_is_new() -> None:
    d = decide(BASE, None)
    assert d.kind == "new"
    assert d.previous is None
    assert d.stores
    assert d.digest == content_digest(BASE)


def test_counter_changes_are_duplicates_not_versions() -> None:
    known = Known(index=7, digest=content_digest(BASE))
    bumped = replace(BASE, counters={"score": 999, "descendants": 40})
    d = decide(bumped, known)
    assert d.kind == "duplicate"
    assert d.previous == 7
    assert not d.stores


@pytest.mark.parametrize(
    "change",
    [
        {"title": "Launch HN: Promi (YC S24) – edited"},
        {"text": "<p>now with text</p>"},
        {"url": "https://example.org/other"},
        {"author": "someone"},
        {"published_at": "2024-08-14T15:01:03.000000Z"},
        {"extra": {"type": "story", "edited": 1723648000}},
    ],
)
def test_content_changes_make_a_version_linked_to_the_previous(change: dict[str, object]) -> None:
    known = Known(index=7, digest=content_digest(BASE))
    d = decide(replace(BASE, **change), known)  # type: ignore[arg-type]
    assert d.kind == "version"
    assert d.previous == 7


def test_deleted_item_tombstones_the_known_one_once() -> None:
    known = Known(index=7, digest=content_digest(BASE))
    gone = replace(BASE, deleted=True, text="[deleted]", author="[deleted]")
    d = decide(gone, known)
    assert d.kind == "tombstone"
    assert d.previous == 7
    again = decide(gone, Known(index=9, digest=known.digest, tombstoned=True))
    assert again.kind == "duplicate"


def test_item_back_after_tombstone_is_a_version() -> None:
    d = decide(BASE, Known(index=9, digest=content_digest(BASE), tombstoned=True))
    assert d.kind == "version"
    assert d.previous == 9


def test_tombstone_records() -> None:
    t = Tombstone("hn", "hn-top", "41247211", "dead")
    assert decide_tombstone(t, None) is None
    known = Known(index=3, digest=b"\x01" * 32)
    d = decide_tombstone(t, known)
    assert d is not None
    assert d.kind == "tombstone"
    assert d.previous == 3
    d2 = decide_tombstone(t, replace(known, tombstoned=True))
    assert d2 is not None
    assert d2.kind == "duplicate"


def test_digest_is_stable_and_rejects_non_json_extra() -> None:
    assert content_digest(BASE) == content_digest(replace(BASE, extra={"type": "story"}))
    with pytest.raises(EntryError):
        content_digest(replace(BASE, extra={"bad": float("nan")}))


# ------------------------------------------------ issue 9: content the item already had
T1, T2, T3 = (
    "2024-10-30T00:00:00.000000Z",
    "2024-12-19T00:00:00.000000Z",
    "2025-01-30T00:00:00.000000Z",
)
EDITED = replace(BASE, title="Launch HN: Promi (YC S24) – edited")


def _had_both(observed_at: str = T2) -> Known:
    """BASE observed at T1, then EDITED at T2 (current), both archived."""
    return Known(
        index=8,
        digest=content_digest(EDITED),
        observed_at=observed_at,
        contents=frozenset({content_digest(BASE), content_digest(EDITED)}),
    )


def test_content_already_had_and_not_newer_is_a_duplicate() -> None:
    # BASE again, from a recording observed at T1 (or at T2: the same moment): no flip back.
    assert decide(BASE, _had_both(), observed_at=T1).kind == "duplicate"
    assert decide(BASE, _had_both(), observed_at=T2).kind == "duplicate"
    assert decide(BASE, _had_both(), observed_at="").kind == "duplicate"


def test_content_already_had_observed_after_the_current_one_is_a_genuine_return() -> None:
    d = decide(BASE, _had_both(), observed_at=T3)  # A -> B -> A at the source, in time order
    assert d.kind == "version"
    assert d.previous == 8


def test_content_never_had_is_a_version_whenever_it_was_observed() -> None:
    other = replace(BASE, title="another title")
    assert decide(other, _had_both(), observed_at=T1).kind == "version"  # history in the past


def test_the_buried_content_again_is_a_return_only_when_newer_than_the_tombstone() -> None:
    buried = Known(
        index=9,
        digest=content_digest(BASE),
        tombstoned=True,
        observed_at=T2,
        contents=frozenset({content_digest(BASE)}),
    )
    assert decide(BASE, buried, observed_at=T1).kind == "duplicate"  # seen before the deletion
    assert decide(BASE, buried, observed_at=T3).kind == "version"  # came back
