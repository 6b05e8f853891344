"""Entry schemas: every type's meta and the item blob, on write, on parse and in verify."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from echo_archive.errors import EntryError, EntrySchemaError
from echo_archive.harvest.importer import import_files
from echo_archive.model import Exchange, Item
from echo_archive.pipeline.batch import capture_meta, item_blob
from echo_archive.pipeline.versioning import content_json
from echo_archive.schemas import (
    SAFE_INT,
    AnnotationMeta,
    AuditMeta,
    EntryMeta,
    FileCapture,
    HttpCapture,
    InterventionMeta,
    ItemBlob,
    ItemMeta,
    ItemMetaV2,
    ReinstatementMeta,
    RemovedItemMeta,
    RepairMeta,
    RetractionMeta,
    TombstoneMeta,
    VersionMeta,
    VersionMetaV2,
    WithdrawnMeta,
    entry_classes,
    file_capture,
    format_timestamp,
    register,
    validate_blob_document,
    validate_meta,
)
from echo_archive.schemas import base as schema_base
from echo_archive.schemas.__main__ import main as schemas_main
from echo_archive.schemas.reference import render
from echo_archive.sources.base import Feed
from echo_archive.vault.entry import Entry, parse_entry
from echo_archive.vault.vault import Record, Vault
from echo_archive.vault.verify import verify_vault

from .conftest import file_meta, shared_dir

REPO = Path(__file__).resolve().parents[1]
TS = "2026-11-22T01:41:19.123456Z"

# ------------------------------------------------------------------ strategies of valid metas
_ts = st.integers(0, 253_402_300_799 * 10**9).map(format_timestamp)
_digest = st.binary(min_size=32, max_size=32).map(lambda b: "sha256:" + b.hex())
_index = st.integers(0, SAFE_INT)
_name = st.text(min_size=1, max_size=20)
_text = st.text(max_size=20)
_number = st.integers(-SAFE_INT, SAFE_INT) | st.floats(
    allow_nan=False, allow_infinity=False
).filter(
    lambda f: not (SAFE_INT < abs(f) < 1e21 and f.is_integer())  # JCS writes those as integers
)
_item_fields = {
    "source": _name,
    "feed": _name,
    "native_id": _name,
    "capture": _digest,
    "content_digest": _digest,
}
VALID: dict[type[EntryMeta], st.SearchStrategy[dict[str, Any]]] = {
    FileCapture: st.fixed_dictionaries(
        {"kind": st.just("file"), "name": _name, "size": _index, "mtime": _ts}
    ),
    HttpCapture: st.fixed_dictionaries(
        {
            "kind": st.just("http"),
            "source": _name,
            "feed": _name,
            "method": st.sampled_from(["GET", "HEAD", "POST"]),
            "url": _name,
            "final_url": _name,
            "redirects": st.lists(_name, max_size=3),
            "status": st.integers(0, 999),
            "headers": st.dictionaries(st.sampled_from(["etag", "date", "link"]), _text),
            "fetched_at": _ts,
            "elapsed_ms": _index,
            "recorded_at": st.none() | _ts,
            "truncated": st.booleans(),
            "parse_error": st.none() | _text,
        },
        optional={"parse_warning": st.none() | _text},  # absent on captures before warnings
    ),
    ItemMeta: st.fixed_dictionaries({**_item_fields, "previous": st.none()}),
    VersionMeta: st.fixed_dictionaries({**_item_fields, "previous": _index}),
    ItemMetaV2: st.fixed_dictionaries(
        {**_item_fields, "v": st.just(2), "previous": st.none(), "observed_at": _ts}
    ),
    VersionMetaV2: st.fixed_dictionaries(
        {**_item_fields, "v": st.just(2), "previous": _index, "observed_at": _ts}
    ),
    TombstoneMeta: st.fixed_dictionaries({**_item_fields, "previous": _index, "reason": _name}),
    RemovedItemMeta: st.fixed_dictionaries(
        {**_item_fields, "kind": st.just("removed"), "previous": st.none(), "reason": _name}
    ),
    WithdrawnMeta: st.fixed_dictionaries(
        {**_item_fields, "kind": st.just("withdrawn"), "previous": _index, "reason": _name}
    ),
    RepairMeta: st.fixed_dictionaries(
        {
            "name": _name,
            "risk": st.sampled_from(["low", "high"]),
            "check": st.none() | _name,
            "reason": _text,
            "actor": _name,
            "approved": st.booleans(),
            "plan": st.dictionaries(_name, _text | st.integers(0, 100), max_size=3),
            "result": st.dictionaries(_name, st.booleans() | st.lists(_text), max_size=3),
            "ok": st.booleans(),
            "error": st.none() | _text,
            "started_at": _ts,
            "finished_at": _ts,
        }
    ),
    AuditMeta: st.fixed_dictionaries(
        {
            "actor": _name,
            "action": _name,
            "target": _text,
            "outcome": st.sampled_from(["ok", "refused", "failed"]),
            "reason": _text,
            "request_id": st.none() | _text,
            "details": st.dictionaries(_name, _text | st.integers(0, 100) | st.none(), max_size=3),
        }
    ),
    InterventionMeta: st.fixed_dictionaries(
        {
            "id": _name,
            "event": st.sampled_from(
                ["planned", "approved", "rejected", "executed", "assessed", "rolled_back"]
            ),
            "action": _name,
            "risk": st.sampled_from(["low", "high"]),
            "target": _name,
            "params": st.dictionaries(
                _name, _text | st.integers(0, 100) | st.booleans(), max_size=3
            ),
            "state": _name,
            "actor": _name,
            "reason": _text,
            "signal": _text,
            "goal": st.sampled_from(["down", "up"]),
            "evidence": st.dictionaries(_name, _number, max_size=3),
            "dry_run": _text,
            "result": st.dictionaries(_name, _text | st.none(), max_size=3),
            "ok": st.booleans(),
            "error": st.none() | _text,
            "at": _ts,
        }
    ),
}
# an editor's one-line reason and multi-line text: printable, no control characters (but LF, tab)
_line = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=30
).filter(
    lambda t: (
        t.strip() and not set(t) & set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
    )
)
_body = st.lists(_line, min_size=1, max_size=3).map("\n\t".join)


def _correction(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "kind": st.just(kind),
            "source": _name,
            "feed": _name,
            "native_id": _name,
            "entry": _index,
            "content_digest": _digest,
            "previous": st.none() | _index,
            "reason": _line,
            "text": st.none() | _body,
            "actor": st.sampled_from(["key:", "user:", "cli:"]).flatmap(
                lambda p: _line.map(lambda n: p + n)
            ),
            "request_id": st.none() | st.from_regex(r"\A[A-Za-z0-9._-]{1,64}\Z"),
            "at": _ts,
        }
    )


VALID[AnnotationMeta] = _correction("annotation")
VALID[RetractionMeta] = _correction("retraction")
VALID[ReinstatementMeta] = _correction("reinstatement")

ROLES = {
    "capture": {"body"},
    "item": {"item"},
    "version": {"item"},
    "tombstone": set(),
    "repair": set(),
    "audit": set(),
    "intervention": set(),
    "correction": set(),
}


def _valid_entry() -> st.SearchStrategy[tuple[type[EntryMeta], dict[str, Any]]]:
    return st.sampled_from(sorted(VALID, key=lambda c: c.__name__)).flatmap(
        lambda cls: VALID[cls].map(lambda meta: (cls, meta))
    )


def _build(cls: type[EntryMeta], meta: dict[str, Any]) -> Entry:
    blobs = {role: (b"\x11" * 32, 7) for role in cls.blob_roles}
    return Entry.build(cls.entry_type, TS, blobs, meta)


def test_every_registered_schema_has_a_strategy_here() -> None:
    assert set(entry_classes()) == set(VALID)
    for cls in entry_classes():
        assert set(cls.blob_roles) == ROLES[cls.entry_type]


@settings(max_examples=300)
@given(_valid_entry())
def test_valid_metas_round_trip_through_build_and_parse(
    case: tuple[type[EntryMeta], dict[str, Any]],
) -> None:
    cls, meta = case
    entry = _build(cls, meta)
    assert parse_entry(entry.raw, "entry 5") == entry
    assert entry.meta == meta
    assert validate_meta(cls.entry_type, json.loads(entry.raw)["meta"], cls.blob_roles, "e") is cls
    # the typed path (what batch.py and add use) writes the same bytes
    typed = Entry.build(
        cls.entry_type, TS, {r: (b"\x11" * 32, 7) for r in cls.blob_roles}, cls(**meta)
    )
    full = {**meta, "parse_warning": meta.get("parse_warning")} if cls is HttpCapture else meta
    assert typed.raw == _build(cls, full).raw
    # to_meta's copy of the field values is model_dump (the fast path, proven here)
    instance = cls(**meta)
    assert instance.to_meta() == instance.model_dump() == full
    assert [type(v) for v in instance.to_meta().values()] == [
        type(v) for v in instance.model_dump().values()
    ]


_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def _mutations(meta: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(field the error must name, mutated meta): an unknown key, each field mistyped."""
    yield "surprise", {**meta, "surprise": 1}
    for key, value in meta.items():
        if key == "kind":
            continue
        wrong: object = [value] if not isinstance(value, list) else "not a list"
        yield key, {**meta, key: wrong}
        if isinstance(value, str) and _DIGEST.fullmatch(value):
            yield key, {**meta, key: value.upper()}  # digests are lowercase hex
            yield key, {**meta, key: value[:-1]}
        if isinstance(value, int) and not isinstance(value, bool):
            yield key, {**meta, key: str(value)}  # strict: no coercion
            yield key, {**meta, key: True} if value not in (0, 1) else {**meta, key: -1}
    for key in meta:
        if key != "kind" and key != "parse_warning":
            yield key, {k: v for k, v in meta.items() if k != key}


@settings(max_examples=150)
@given(_valid_entry())
def test_mutated_metas_are_rejected_naming_entry_and_field(
    case: tuple[type[EntryMeta], dict[str, Any]],
) -> None:
    cls, meta = case
    for field, bad in _mutations(meta):
        if cls in (ItemMeta, ItemMetaV2) and field == "previous" and bad.get("previous") is None:
            continue  # previous: [None] / "None"... all rejected below; removing it is not None
        doc = json.loads(_build(cls, meta).raw)
        doc["meta"] = bad
        try:
            raw = rfc8785.dumps(doc)
        except (rfc8785.CanonicalizationError, ValueError):
            continue
        with pytest.raises(EntrySchemaError, match=rf"^entry 7: {cls.entry_type} meta .*{field}"):
            parse_entry(raw, "entry 7")
        with pytest.raises(EntrySchemaError, match=rf"^new entry: {cls.entry_type} meta .*{field}"):
            _build(cls, bad)


@pytest.mark.parametrize(
    ("etype", "meta", "roles", "match"),
    [
        ("capture", {"kind": "test", "n": 1}, ["body"], "kind: 'test' is not a known kind"),
        ("capture", {"name": "x"}, ["body"], "kind: None is not a known kind"),
        ("capture", {"kind": ["file"]}, ["body"], "kind: .* is not a string"),
        ("capture", {**file_meta("x"), "v": 1}, ["body"], "v: 1 is not a version >= 2"),
        ("capture", {**file_meta("x"), "v": 9}, ["body"], "v: 9 is not a known version"),
        ("capture", file_meta("x"), ["body", "extra"], r"roles \['body', 'extra'\] differ"),
        ("capture", {**file_meta("x"), "mtime": "2026-11-20T09:12:44Z"}, ["body"], "mtime"),
        ("capture", {**file_meta("x"), "mtime": "2026-13-20T09:12:44.000000Z"}, ["body"], "mtime"),
        ("capture", {**file_meta("x"), "size": 2**53}, ["body"], "size"),
        ("capture", {**file_meta("x"), "size": 1.0}, ["body"], "size"),
        ("capture", {**file_meta("x"), "name": ""}, ["body"], "name"),
        ("bogus", {}, [], "entry type 'bogus' is unknown"),
        ("audit", {}, [], "audit meta .* field actor: Field required"),
    ],
)
def test_known_bad_metas(etype: str, meta: dict[str, Any], roles: list[str], match: str) -> None:
    with pytest.raises(EntrySchemaError, match=match):
        validate_meta(etype, meta, roles, "entry 3")


def test_a_new_entry_type_or_version_is_one_declaration() -> None:
    @register
    class AlertMeta(EntryMeta):
        """An alert fired (a test type)."""

        entry_type: ClassVar[str] = "test-alert"
        rule: str

    @register
    class AlertMetaV2(EntryMeta):
        """An alert fired, with a severity (a test type)."""

        entry_type: ClassVar[str] = "test-alert"
        schema_version: ClassVar[int] = 2
        v: Literal[2] = 2
        rule: str
        severity: int

    try:
        assert validate_meta("test-alert", {"rule": "disk"}, [], "e") is AlertMeta
        v2 = AlertMetaV2(rule="disk", severity=3)
        assert v2.to_meta() == {"v": 2, "rule": "disk", "severity": 3}
        entry = Entry.build("test-alert", TS, {}, v2)
        assert parse_entry(entry.raw).meta == {"v": 2, "rule": "disk", "severity": 3}
        with pytest.raises(EntrySchemaError, match="field severity"):
            validate_meta("test-alert", {"v": 2, "rule": "disk"}, [], "e")
        with pytest.raises(TypeError, match="already"):
            register(AlertMeta)
    finally:
        del schema_base._REGISTRY["test-alert"]


def test_inconsistent_declarations_are_refused() -> None:
    class NoKindField(EntryMeta):
        entry_type: ClassVar[str] = "test-x"
        kind_value: ClassVar[str | None] = "a"

    class VersionField(EntryMeta):
        entry_type: ClassVar[str] = "test-x"
        v: Literal[1] = 1

    class MissingV(EntryMeta):
        entry_type: ClassVar[str] = "test-x"
        schema_version: ClassVar[int] = 2

    for cls, match in (
        (NoKindField, "needs a field kind"),
        (VersionField, "implicit"),
        (MissingV, "needs a field v"),
    ):
        with pytest.raises(TypeError, match=match):
            register(cls)
    assert "test-x" not in schema_base._REGISTRY


def test_typed_meta_of_the_wrong_type_or_roles_is_refused() -> None:
    meta = file_capture("memo.pdf", 3, 0)
    assert meta.to_meta() == {
        "kind": "file",
        "name": "memo.pdf",
        "size": 3,
        "mtime": format_timestamp(0),
    }
    with pytest.raises(EntryError, match="type 'item' given a FileCapture meta"):
        Entry.build("item", TS, {"body": (b"\x00" * 32, 3)}, meta)
    with pytest.raises(EntrySchemaError, match=r"capture blobs: roles \[\] differ"):
        Entry.build("capture", TS, {}, meta)
    with pytest.raises(
        EntrySchemaError, match=r"new entry: capture meta \(FileCapture v1\): field size"
    ):
        file_capture("memo.pdf", -1, 0)


def test_capture_meta_of_an_exchange_is_the_http_schema() -> None:
    feed = Feed("hn-top", "hn", {"list": "top"})
    ex = Exchange(
        "GET",
        "https://example.org/a?token=s3cret",
        200,
        (("ETag", '"x"'), ("Set-Cookie", "a=b"), ("Link", "<a>"), ("link", "<b>")),
        b"{}",
        fetched_at=TS,
        elapsed=0.25,
        redirects=("https://example.org/b",),
    )
    meta = capture_meta(feed, ex, None, "cut short")
    assert isinstance(meta, HttpCapture)
    doc = meta.to_meta()
    assert doc["headers"] == {"etag": '"x"', "link": "<a>, <b>"}
    assert doc["elapsed_ms"] == 250
    assert doc["parse_warning"] == "cut short"
    assert "s3cret" not in json.dumps(doc)
    with pytest.raises(EntrySchemaError, match="field fetched_at"):
        capture_meta(feed, Exchange("GET", "https://example.org/", 200, (), b""), None)


_items = st.builds(
    Item,
    source=_name,
    feed=_name,
    native_id=_name,
    url=_text,
    title=_text,
    text=_text,
    author=_text,
    published_at=st.just("") | _ts,
    extra=st.dictionaries(_text, _number | _text | st.lists(_number, max_size=3), max_size=3),
    counters=st.dictionaries(_text, _number, max_size=3),
    deleted=st.booleans(),
)


@settings(max_examples=200)
@given(_items, _digest, _ts)
def test_item_blobs_of_generated_items_match_the_blob_schema(
    item: Item, capture: str, ts: str
) -> None:
    doc = json.loads(item_blob(item, capture, ts, content_json(item)))
    validate_blob_document(ItemBlob, doc, "blob")
    for field, bad in (
        ("extra", []),
        ("counters", {"n": "1"}),
        ("capture", "sha256:00"),
        ("fetched_at", ""),
        ("published_at", "yesterday"),
        ("surprise", 1),
    ):
        with pytest.raises(EntrySchemaError, match=rf"^entry 4 blob item: .*field {field}"):
            validate_blob_document(ItemBlob, {**doc, field: bad}, "entry 4 blob item")


@pytest.mark.parametrize("bad", [2**53, float("nan"), 2.0**53, {"k": [1, {"d": 2**60}]}])
def test_item_blob_numbers_are_i_json(bad: object) -> None:
    capture = "sha256:" + "0" * 64
    doc = json.loads(item_blob(Item("hn", "hn-top", "1"), capture, TS))
    item = Item("hn", "hn-top", "1", extra={"x": bad})
    with pytest.raises(EntrySchemaError, match=r"^item blob of hn:hn-top:1: .*field extra"):
        item_blob(item, capture, TS)
    with pytest.raises(EntrySchemaError, match=r"field (extra|counters)"):
        validate_blob_document(ItemBlob, {**doc, "extra": {"x": bad}, "counters": {"n": bad}}, "b")


def test_verify_names_an_entry_that_breaks_its_schema(vault_path: Path) -> None:
    with Vault.open(vault_path) as v:
        v.commit([Record("capture", file_meta(f"f{i}", 1), {"body": b"%d" % i}) for i in range(4)])
    conn = sqlite3.connect(vault_path / "catalog.sqlite")
    (raw,) = conn.execute("SELECT entry FROM entries WHERE idx = 2").fetchone()
    changed = bytes(raw).replace(b'"name":"f2","size":1}', b'"name":"f2","size":-1}')
    assert changed != bytes(raw)
    assert rfc8785.dumps(json.loads(changed)) == changed
    with conn:
        conn.execute("UPDATE entries SET entry = ? WHERE idx = 2", (changed,))
    conn.close()
    with Vault.open(vault_path, readonly=True) as v:
        report = verify_vault(v)
    schema = [p for p in report.problems if p.kind == "schema"]
    assert [(p.ref, "field size" in p.message) for p in schema] == [("entry 2", True)]
    assert not report.ok


def test_reference_page_is_current() -> None:
    page = REPO / "docs" / "entries.md"
    assert page.read_text(encoding="utf-8") == render(), (
        "docs/entries.md is stale: run python -m echo_archive.schemas --write docs/entries.md"
    )
    assert schemas_main(["--check", str(page)]) == 0


def test_reference_check_fails_on_a_stale_page(tmp_path: Path) -> None:
    stale = tmp_path / "entries.md"
    stale.write_text(render().replace("HttpCapture", "HttpKapture"), encoding="utf-8")
    assert schemas_main(["--check", str(stale)]) == 1
    assert schemas_main(["--write", str(stale)]) == 0
    assert schemas_main(["--check", str(stale)]) == 0
    for cls in entry_classes():
        assert f"(`{cls.__name__}`)" in render()


def _item_entry(v: Vault, doc: dict[str, Any]) -> None:
    """Store ``doc`` as an item blob (canonical JSON, bypassing item_blob) and log its item."""
    blob = rfc8785.dumps(doc)
    (digest,) = v.blobs.put_many([blob])
    meta = ItemMeta(
        source=doc["source"],
        feed=doc["feed"],
        native_id=doc["native_id"],
        capture=doc["capture"],
        content_digest="sha256:" + "cd" * 32,
        previous=None,
    )
    with v.writing():
        v.append([Entry.build("item", TS, {"item": (digest, len(blob))}, meta)])


def test_verify_names_an_item_blob_that_breaks_its_schema(vault_path: Path) -> None:
    good = json.loads(item_blob(Item("hn", "hn-top", "1", title="ok"), "sha256:" + "0" * 64, TS))
    with Vault.open(vault_path) as v:
        _item_entry(v, good)
        _item_entry(v, {**good, "native_id": "2", "published_at": "yesterday"})
        _item_entry(v, {**good, "native_id": "3", "surprise": True})
    with Vault.open(vault_path, readonly=True) as v:
        report = verify_vault(v)
    found = sorted((p.ref, p.message.split(": ", 1)[1]) for p in report.problems)
    assert [ref for ref, _ in found] == ["entry 1", "entry 2"]
    assert [p.kind for p in report.problems] == ["schema", "schema"]
    assert "blob document (ItemBlob v1): field published_at" in found[0][1]
    assert "field surprise: Extra inputs are not permitted" in found[1][1]


def test_every_schema_echo_writes_today_is_plain_json() -> None:
    assert {cls.__name__: cls.plain_json for cls in entry_classes()} == dict.fromkeys(
        (
            "FileCapture",
            "HttpCapture",
            "ItemMeta",
            "ItemMetaV2",
            "RemovedItemMeta",
            "TombstoneMeta",
            "VersionMeta",
            "VersionMetaV2",
            "WithdrawnMeta",
            "AnnotationMeta",
            "RetractionMeta",
            "ReinstatementMeta",
        ),
        True,
    ) | {
        "RepairMeta": False,  # free-form plan and result; rare entries take the reference path
        "AuditMeta": False,  # free-form details; as rare
        "InterventionMeta": False,  # free-form params, evidence numbers and result: the same
    }


@settings(max_examples=400)
@given(_valid_entry())
def test_entry_fast_path_equals_the_rfc8785_reference(
    case: tuple[type[EntryMeta], dict[str, Any]],
) -> None:
    # built and parsed through the plain-JSON fast path: the bytes are the reference's
    cls, meta = case
    entry = _build(cls, meta)
    assert entry.raw == rfc8785.dumps(json.loads(entry.raw))
    assert parse_entry(rfc8785.dumps(json.loads(entry.raw))) == entry


def test_a_schema_with_floats_or_free_objects_takes_the_reference_path() -> None:
    @register
    class Reading(EntryMeta):
        """A float reading (a test type)."""

        entry_type: ClassVar[str] = "test-reading"
        value: float
        labels: dict[str, str]

    try:
        assert not Reading.plain_json
        for value, labels in ((0.1, {"é": "x", "z": "y"}), (1e21, {}), (-5e-324, {"😀": ""})):
            entry = Entry.build("test-reading", TS, {}, Reading(value=value, labels=labels))
            assert entry.raw == rfc8785.dumps(json.loads(entry.raw))
            assert parse_entry(entry.raw) == entry
    finally:
        del schema_base._REGISTRY["test-reading"]
        del schema_base._LATEST_V1["test-reading", None]


def test_a_lone_surrogate_is_refused_and_a_non_canonical_entry_named_first() -> None:
    with pytest.raises(EntryError, match="RFC 8785"):
        Entry.build("capture", TS, {"body": (b"\x00" * 32, 1)}, file_meta("\ud800"))
    raw = _build(FileCapture, file_meta("a")).raw
    spaced = raw.replace(b'"name":"a"', b'"name": "a"')
    with pytest.raises(EntryError, match="canonical form"):
        parse_entry(spaced)
    off_schema = raw.replace(b'"name":"a"', b'"name":""').replace(b"{", b"{ ", 1)
    with pytest.raises(EntryError, match="canonical form"):  # not canonical is said first
        parse_entry(off_schema)


@pytest.mark.slow
def test_every_corpus_import_entry_and_item_blob_is_of_its_schema(vault_path: Path) -> None:
    corpora = shared_dir("corpora")
    files = sorted(
        p
        for p in corpora.rglob("*")
        if p.is_file() and p.suffix != ".md" and p.name != "provenance.json"
    )
    with Vault.open(vault_path) as v:
        report = import_files(v, files)
    problems = [p for f in report.files for p in [*f.problems, *f.parse_error_samples]]
    assert not [
        p for p in problems if "meta (" in p or "blob document" in p or "representable" in p
    ]
    with Vault.open(vault_path, readonly=True) as v:
        assert v.size > 10_000  # 17,060 when written
        documents = 0
        for index in range(v.size):  # parse_entry checks every meta, here item blobs too
            entry = v.entry(index)
            for blob in entry.blobs:
                if blob.role == "item":
                    validate_blob_document(ItemBlob, json.loads(v.blobs.get(blob.digest)), "b")
                    documents += 1
        assert documents > 10_000
        verified = verify_vault(v)
    assert verified.ok, verified.problems[:5]
