"""Corrections: annotate, retract, reinstate an item; new entries, nothing rewritten.

Real vaults with items committed through the real harvest commit path
(:func:`tests.itemdata.commit_items`), corrections committed through the
real writer, read back, proved offline, verified and tampered with; the CLI
in a subprocess.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Literal

import pytest
import rfc8785

from echo_archive.errors import CursorError, EntrySchemaError, NotFoundError, RequestError
from echo_archive.index import ensure_indexes
from echo_archive.schemas import MAX_CORRECTION_TEXT, MAX_REASON
from echo_archive.services.corrections import (
    Correction,
    CorrectionRefused,
    correct_item,
    corrections_of,
    is_retracted,
    list_corrections,
)
from echo_archive.services.items import ItemKey, item_history
from echo_archive.services.proofs import evidence_bundle
from echo_archive.services.verification import verify_evidence
from echo_archive.vault.vault import Vault
from echo_archive.vault.verify import verify_vault
from echo_archive.vault.writer import VaultWriter

from .conftest import run_echoctl
from .itemdata import at, commit_items

NOW = 1_765_000_000.25


@pytest.fixture
def items(vault_path: Path) -> Path:
    """A vault with rss:world:{a1,a2} (a1 in two versions) and rss:tech:b1."""
    with Vault.open(vault_path) as v:
        commit_items(v, "world", [("a1", "first title"), ("a2", "other")], seen_at=at(0))
        commit_items(v, "world", [("a1", "edited title")], seen_at=at(60))
        commit_items(v, "tech", [("b1", "tech item")], seen_at=at(120))
    return vault_path


def _correct(v: Vault, ref: str, kind: str, reason: str = "editor's check", **kw: object) -> int:
    args: dict[str, object] = {
        "text": None,
        "actor": "key:desk",
        "request_id": None,
        "now": NOW,
        **kw,
    }
    index, _ = correct_item(v, v, ref, kind, reason, **args)  # type: ignore[arg-type]
    return index


def _raw_rows(path: Path) -> list[tuple[int, bytes]]:
    conn = sqlite3.connect(path / "catalog.sqlite")
    rows = [(int(i), bytes(e)) for i, e in conn.execute("SELECT idx, entry FROM entries")]
    conn.close()
    return rows


def test_an_annotation_is_a_new_entry_the_item_shows_and_nothing_is_rewritten(
    items: Path,
) -> None:
    before = _raw_rows(items)
    with Vault.open(items) as v:
        shown = item_history(v, "rss:world:a1")
        index, made = correct_item(
            v,
            v,
            "rss:world:a1",
            "annotation",
            "the title was edited after publication",
            "Context: the publisher\nchanged the headline.\tSee the second version.",
            "user:ed",
            "req-1.a_b",
            NOW,
        )
        assert index == v.size - 1
        entry = v.entry(index)
        assert entry.type == "correction"
        assert entry.meta["kind"] == "annotation"
        assert (entry.meta["source"], entry.meta["feed"], entry.meta["native_id"]) == (
            "rss",
            "world",
            "a1",
        )
        assert entry.meta["entry"] == shown.history[0].index  # the version the editor saw
        assert entry.meta["content_digest"] == shown.history[0].meta["content_digest"]
        assert entry.meta["previous"] is None
        assert entry.meta["at"] == "2025-12-06T05:46:40.250000Z"
        assert made == Correction.from_entry(index, entry)
        history = item_history(v, "rss:world:a1")
        assert [c.index for c in history.corrections] == [index]
        assert history.retracted is False
        doc = history.to_json()
        assert doc["retracted"] is False
        assert doc["corrections"][0]["reason"] == "the title was edited after publication"
        assert doc["corrections"][0]["item"] == "rss:world:a1"
        assert doc["history"] == shown.to_json()["history"]  # the item itself is unchanged
        assert list(item_history(v, "rss:world:a2").corrections) == []
        assert item_history(v, "rss:world:a2").to_json()["corrections"] == []
    after = _raw_rows(items)
    assert after[: len(before)] == before  # every earlier entry byte for byte
    assert len(after) == len(before) + 1


def test_a_correction_is_provable_offline_and_the_vault_verifies(items: Path) -> None:
    with Vault.open(items) as v:
        index = _correct(v, "rss:world:a1", "retraction", "fabricated quote")
        _correct(v, "rss:world:a1", "annotation", "context added", text="see the desk note")
        bundle = evidence_bundle(v, index)
    report = verify_evidence(bundle.data)
    assert report.ok, report.checks
    assert report.index == index
    assert report.entry is not None
    assert report.entry.type == "correction"
    assert report.entry.meta["reason"] == "fabricated quote"
    with Vault.open(items, readonly=True) as v:
        verified = verify_vault(v)
    assert verified.ok, verified.problems
    assert verified.warnings == []


def test_a_tampered_correction_fails_verify(items: Path) -> None:
    with Vault.open(items) as v:
        index = _correct(v, "rss:world:a1", "retraction", "fabricated quote")
        _correct(v, "rss:tech:b1", "annotation", "fine")
    conn = sqlite3.connect(items / "catalog.sqlite")
    (raw,) = conn.execute("SELECT entry FROM entries WHERE idx = ?", (index,)).fetchone()
    # rewording the reason keeps the schema: only the Merkle tree notices
    reworded = bytes(raw).replace(b"fabricated quote", b"a fine quote....")
    # a control character breaks the schema (and the tree)
    hostile = rfc8785.dumps(
        {**json.loads(raw), "meta": {**json.loads(raw)["meta"], "reason": "ok\x1b[2J"}}
    )
    conn.close()
    for changed, kinds in ((reworded, set()), (hostile, {"schema"})):
        assert changed != bytes(raw)
        conn = sqlite3.connect(items / "catalog.sqlite")
        with conn:
            conn.execute("UPDATE entries SET entry = ? WHERE idx = ?", (changed, index))
        conn.close()
        with Vault.open(items, readonly=True) as v:
            report = verify_vault(v)
        assert not report.ok
        mine = [p for p in report.problems if p.ref == f"entry {index}"]
        assert mine, report.problems
        assert kinds <= {p.kind for p in mine}
        assert any(p.ref.startswith("checkpoint") for p in report.problems)


def test_retraction_and_reinstatement_follow_the_sequence_rules(items: Path) -> None:
    with Vault.open(items) as v:
        first = _correct(v, "rss:world:a1", "retraction", "fabricated quote")
        assert item_history(v, "rss:world:a1").retracted is True
        size = v.size
        with pytest.raises(
            CorrectionRefused, match=r"already retracted \(entry \d+, by key:desk\)"
        ):
            _correct(v, "rss:world:a1", "retraction", "again")
        assert v.size == size  # nothing written
        note = _correct(v, "rss:world:a1", "annotation", "still retracted, noted")
        back = _correct(v, "rss:world:a1", "reinstatement", "the quote was confirmed")
        assert item_history(v, "rss:world:a1").retracted is False
        with pytest.raises(CorrectionRefused, match="not retracted; nothing to reinstate"):
            _correct(v, "rss:world:a1", "reinstatement", "again")
        with pytest.raises(CorrectionRefused, match="not retracted"):
            _correct(v, "rss:tech:b1", "reinstatement", "never retracted")
        again = _correct(v, "rss:world:a1", "retraction", "a second look")
        found = corrections_of(v, "rss:world:a1")
        assert [c.index for c in found] == [first, note, back, again]
        assert [c.kind for c in found] == [
            "retraction",
            "annotation",
            "reinstatement",
            "retraction",
        ]
        assert [c.previous for c in found] == [None, first, note, back]  # the item's chain
        assert is_retracted(found)
        # any entry index of the item names it, its first version's included
        first_version = item_history(v, "rss:world:a1").history[-1].index
        assert [c.index for c in corrections_of(v, first_version)] == [first, note, back, again]
        assert corrections_of(v, ItemKey("rss", "tech", "b1")) == []


def test_a_retraction_through_the_writer_thread(items: Path) -> None:
    with VaultWriter.open(items) as w, Vault.open(items, readonly=True) as reader:
        index, made = correct_item(
            w, reader, "rss:tech:b1", "retraction", "wrong feed", None, "cli:ops", None, NOW
        )
        assert made.kind == "retraction"
        assert item_history(reader, "rss:tech:b1").retracted is True
        with pytest.raises(CorrectionRefused):
            correct_item(
                w, reader, "rss:tech:b1", "retraction", "twice", None, "cli:ops", None, NOW
            )
    with Vault.open(items, readonly=True) as v:
        assert [c.index for c in corrections_of(v, "rss:tech:b1")] == [index]


@pytest.mark.parametrize(
    ("kind", "reason", "text", "error", "match"),
    [
        ("retract", "r", None, RequestError, r"^kind 'retract': expected one of annotation, "),
        (None, "r", None, RequestError, "^kind None"),
        ("annotation", "x" * (MAX_REASON + 1), None, RequestError, r"^reason: 1001 characters"),
        ("annotation", "", None, RequestError, "^reason: is empty"),
        ("annotation", " \u3000 ", None, RequestError, "^reason: is empty"),
        ("annotation", "a\x1b[2Jb", None, RequestError, r"^reason: .*U\+001B at position 1"),
        ("annotation", "two\nlines", None, RequestError, r"^reason: .*U\+000A"),
        ("annotation", "evil\u202eafter", None, RequestError, r"^reason: .*U\+202E"),
        ("annotation", "c1\x85", None, RequestError, r"^reason: .*U\+0085"),
        ("annotation", 42, None, RequestError, "^reason: expected a string, not int"),
        ("annotation", "ok", "y" * (MAX_CORRECTION_TEXT + 1), RequestError, "^text: 10001"),
        ("annotation", "ok", "a\x00b", RequestError, r"^text: .*U\+0000"),
        ("annotation", "ok", "line\u2028sep", RequestError, r"^text: .*U\+2028"),
        ("annotation", "ok", "", RequestError, "^text: is empty"),
    ],
)
def test_hostile_input_is_a_clear_error_and_writes_nothing(
    items: Path, kind: object, reason: object, text: object, error: type[Exception], match: str
) -> None:
    with Vault.open(items) as v:
        size = v.size
        with pytest.raises(error, match=match):
            correct_item(v, v, "rss:world:a1", kind, reason, text, "key:k", None, NOW)  # type: ignore[arg-type]
        assert v.size == size


def test_unknown_items_and_bad_references(items: Path) -> None:
    with Vault.open(items) as v:
        size = v.size
        with pytest.raises(NotFoundError, match="no item rss:world:zz"):
            _correct(v, "rss:world:zz", "annotation")
        with pytest.raises(NotFoundError, match=r"^no item at entry 9999"):
            _correct(v, "9999", "annotation")
        with pytest.raises(NotFoundError, match="beyond any log"):
            _correct(v, "9" * 40, "annotation")
        with pytest.raises(NotFoundError, match="entry 0 is a capture, not an item"):
            _correct(v, "0", "annotation")
        with pytest.raises(RequestError, match="expected an entry index or SOURCE:FEED:NATIVE_ID"):
            _correct(v, "no-colons", "annotation")
        with pytest.raises(EntrySchemaError, match="field actor"):
            _correct(v, "rss:world:a1", "annotation", actor="root")
        with pytest.raises(EntrySchemaError, match="field request_id"):
            _correct(v, "rss:world:a1", "annotation", request_id="a b")
        assert v.size == size
        with pytest.raises(NotFoundError):
            corrections_of(v, "rss:world:zz")


def test_a_writer_without_the_index_hides_no_correction(items: Path) -> None:
    """A correction appended by a writer that did not attach the index is still found."""
    with Vault.open(items) as v:  # no derived indexes attached
        assert not v.derived
        index = _correct(v, "rss:world:a2", "annotation", "tail")
    with Vault.open(items, readonly=True) as v:
        assert [c.index for c in corrections_of(v, "rss:world:a2")] == [index]
        assert [c.index for c in list_corrections(v).entries] == [index]
    with Vault.open(items) as v:
        ensure_indexes(v)  # catches up
        rows = v.catalog.query("SELECT idx, source, feed, native_id, kind FROM corrections")
        assert list(map(tuple, rows)) == [(index, "rss", "world", "a2", "annotation")]
        report = verify_vault(v)
        assert report.ok, report.problems


def test_listing_pages_filters_and_scope(items: Path) -> None:
    with Vault.open(items) as v:
        ensure_indexes(v)
        made = [
            _correct(v, "rss:world:a1", "annotation", "one"),
            _correct(v, "rss:tech:b1", "retraction", "two"),
            _correct(v, "rss:world:a2", "annotation", "three"),
            _correct(v, "rss:world:a1", "retraction", "four"),
            _correct(v, "rss:tech:b1", "reinstatement", "five"),
        ]
        seen: list[int] = []
        page = list_corrections(v, limit=2)
        assert page.total == 5
        while True:
            assert len(page.entries) <= 2
            seen.extend(c.index for c in page.entries)
            if page.next is None:
                break
            page = list_corrections(v, limit=2, cursor=page.next)
        assert seen == made[::-1]
        oldest = list_corrections(v, order="oldest", limit=3)
        assert [c.index for c in oldest.entries] == made[:3]
        assert oldest.next is not None
        rest = list_corrections(v, order="oldest", limit=3, cursor=oldest.next)
        assert [c.index for c in rest.entries] == made[3:]
        assert rest.next is None
        assert [c.reason for c in list_corrections(v, kind="retraction").entries] == [
            "four",
            "two",
        ]
        assert {c.feed for c in list_corrections(v, feed="tech").entries} == {"tech"}
        scoped = list_corrections(v, feeds=["world"])
        assert (scoped.total, {c.feed for c in scoped.entries}) == (3, {"world"})
        assert list_corrections(v, feeds=["world"], feed="tech").total == 0
        assert list_corrections(v, feeds=[]).total == 0
        with pytest.raises(CursorError, match="other filters"):
            list_corrections(v, kind="annotation", cursor=page_after_first(v))
        with pytest.raises(RequestError, match=r"^kind 'nope'"):
            list_corrections(v, kind="nope")
        with pytest.raises(RequestError, match=r"^limit 0"):
            list_corrections(v, limit=0)
        report = verify_vault(v)
        assert report.ok, report.problems


def page_after_first(v: Vault) -> str:
    token = list_corrections(v, limit=1).next
    assert token is not None
    return token


def test_cli_round_trip(items: Path) -> None:
    vault = ("--vault", str(items))
    added = run_echoctl(
        *vault,
        "corrections",
        "add",
        "rss:world:a1",
        "--kind",
        "retraction",
        "--reason",
        "fabricated quote",
        "--text",
        "details\nhere",
        "--json",
    )
    assert added.returncode == 0, added.stderr
    made = json.loads(added.stdout)
    assert made["kind"] == "retraction"
    assert made["actor"].startswith("cli:")
    assert made["item"] == "rss:world:a1"
    again = run_echoctl(
        *vault, "corrections", "add", "rss:world:a1", "--kind", "retraction", "--reason", "x"
    )
    assert again.returncode == 1
    assert "already retracted" in again.stderr
    hostile = run_echoctl(
        *vault,
        "corrections",
        "add",
        "rss:world:a1",
        "--kind",
        "annotation",
        "--reason",
        "a\x1bb",
        "--json",
    )
    assert hostile.returncode == 2
    assert json.loads(hostile.stderr)["error"]["code"] == "request"
    assert "U+001B" in json.loads(hostile.stderr)["error"]["message"]
    bad_kind = run_echoctl(
        *vault, "corrections", "add", "rss:world:a1", "--kind", "x", "--reason", "r"
    )
    assert bad_kind.returncode == 2
    missing = run_echoctl(
        *vault, "corrections", "add", "rss:world:nope", "--kind", "annotation", "--reason", "r"
    )
    assert missing.returncode == 1
    assert "no item rss:world:nope" in missing.stderr
    listed = run_echoctl(*vault, "corrections", "list", "rss:world:a1", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [c["index"] for c in json.loads(listed.stdout)] == [made["index"]]
    everything = run_echoctl(*vault, "corrections", "list", "--json")
    assert [c["index"] for c in json.loads(everything.stdout)] == [made["index"]]
    human = run_echoctl(*vault, "corrections", "list", drop=("FORCE_COLOR",))
    assert human.returncode == 0, human.stderr
    assert "fabricated quote" in human.stdout
    assert "retraction" in human.stdout
    shown = run_echoctl(*vault, "show", "rss:world:a1", "--json")
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert doc["retracted"] is True
    assert [c["index"] for c in doc["corrections"]] == [made["index"]]


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_pages_walk_across_indexed_and_unindexed_corrections(
    items: Path, order: Literal["newest", "oldest"]
) -> None:
    """Pages mix the index's rows and corrections a writer without the index appended."""
    with Vault.open(items) as v:
        ensure_indexes(v)
        indexed = [_correct(v, "rss:world:a1", "annotation", f"indexed {i}") for i in range(3)]
    with Vault.open(items) as v:  # no derived indexes attached: these are the index's tail
        tail = [_correct(v, "rss:tech:b1", "annotation", f"tail {i}") for i in range(2)]
        tail.append(_correct(v, "rss:world:a2", "retraction", "tail retraction"))
    everything = indexed + tail
    expected = everything[::-1] if order == "newest" else everything
    with Vault.open(items, readonly=True) as v:
        assert v.catalog.query_one("SELECT count(*) FROM corrections") == (3,)  # not the tail
        for limit in (1, 2, 4, 10):
            seen: list[int] = []
            cursor = None
            while True:
                page = list_corrections(v, order=order, limit=limit, cursor=cursor)
                assert page.total == 6
                seen += [c.index for c in page.entries]
                if page.next is None:
                    break
                cursor = page.next
            assert seen == expected, limit
        world = list_corrections(v, feed="world", order=order)
        assert world.total == 4
        assert [c.index for c in world.entries] == [
            i for i in expected if i in indexed or i == tail[-1]
        ]
        retractions = list_corrections(v, kind="retraction")
        assert [c.index for c in retractions.entries] == [tail[-1]]
        assert retractions.total == 1
