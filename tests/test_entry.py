"""Entries: RFC 8785 canonical JSON (fast path proven equal to the reference) and schema v1."""

from __future__ import annotations

import json

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from echo_archive.errors import EntryError
from echo_archive.vault.entry import Entry, canonical_json, format_timestamp, parse_entry

_SAFE = 2**53 - 1
_keys = st.text(max_size=12)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-_SAFE, _SAFE)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_keys, inner, max_size=5),
    max_leaves=30,
)


@pytest.mark.slow
@settings(max_examples=600)
@given(_json)
def test_canonical_json_equals_the_rfc8785_reference(value: object) -> None:
    try:
        expected = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError, ValueError):
        with pytest.raises(EntryError):
            canonical_json(value)
        return
    assert canonical_json(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        {"controls": "".join(chr(c) for c in range(0x20)) + "\x7f\u2028\u2029/<>&'\"\\"},
        {"nested": {"b": [1, {"z": None, "a": True}], "a": "é😀"}},
        {"ints": [0, -0, _SAFE, -_SAFE]},
        {"é": 1, "z": 2, "😀": 3, "\ue000": 4},  # non-ASCII keys: UTF-16 order
        [1.0, 1e21, 5e-324, 0.1, -0.0],
        {"deep": [[{"é": [1, "x"]}], True]},  # a non-ASCII key below a list
        {"mixed": [None, "s", 1, True, [2.5], {"k": -3}]},  # a float below a list
    ],
)
def test_canonical_json_known_cases(value: object) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


@pytest.mark.parametrize(
    "bad",
    [
        {"n": 2**53},
        {"n": float("nan")},
        {1: "x"},
        {"s": "\ud800"},
        {"x": {1, 2}},
        {"n": [True, [1, -(2**53)]]},  # an unsafe integer below two lists
        {"n": {"k": [{2: "x"}]}},  # a non-string key below a list
    ],
)
def test_canonical_json_rejects_what_jcs_cannot_hold(bad: object) -> None:
    with pytest.raises(EntryError, match="RFC 8785"):
        canonical_json(bad)


def _entry(**over: object) -> bytes:
    doc = {
        "v": 1,
        "type": "capture",
        "logged_at": "2026-11-22T01:41:19.123456Z",
        "blobs": {"body": {"digest": "sha256:" + "ab" * 32, "size": 3}},
        "meta": _FILE,
    }
    doc.update(over)
    return rfc8785.dumps(doc)


_FILE = {"kind": "file", "name": "memo.pdf", "size": 3, "mtime": "2026-11-20T09:12:44.000000Z"}


def test_parse_entry_round_trip() -> None:
    e = Entry.build("capture", "2026-11-22T01:41:19.123456Z", {"body": (b"\xab" * 32, 3)}, _FILE)
    assert e.raw == _entry()
    parsed = parse_entry(e.raw)
    assert parsed == e
    assert parsed.blobs[0].digest_text == "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"not json", "not JSON"),
        (b'{"v": 1}', "canonical"),
        (_entry(v=2), "version"),
        (_entry(type="Capture"), "type"),
        (_entry(logged_at="2026-11-22 01:41:19"), "logged_at"),
        (_entry(meta=[]), "meta"),
        (_entry(blobs={"body": {"digest": "md5:00", "size": 1}}), "digest"),
        (_entry(blobs={"body": {"digest": "sha256:" + "ab" * 32, "size": -1}}), "size"),
        (_entry(extra=1), "unexpected"),
        (rfc8785.dumps({"v": 1}), "missing"),
        (_entry(type="nosuchtype"), "entry type 'nosuchtype' is unknown"),
        (_entry(meta={**_FILE, "size": "3"}), "capture meta .*field size"),
        (_entry(blobs={}), "capture blobs: roles"),
    ],
)
def test_parse_entry_names_what_is_wrong(raw: bytes, match: str) -> None:
    with pytest.raises(EntryError, match=match):
        parse_entry(raw, where="entry 9")
    with pytest.raises(EntryError, match="entry 9"):
        parse_entry(raw, where="entry 9")


def test_format_timestamp() -> None:
    assert format_timestamp(0) == "1970-01-01T00:00:00.000000Z"
    assert format_timestamp(1_763_775_679_123_456_789) == "2025-11-22T01:41:19.123456Z"
    assert json.loads(_entry())["logged_at"].endswith("Z")
