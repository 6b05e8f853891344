"""Log entries: the JSON objects whose hashes are the leaves of the log.

An *entry* is an RFC 8785 (JCS) canonical JSON object. Its bytes, exactly as
canonicalized, are what the log hashes into a leaf (``SHA-256(0x00 || entry)``,
RFC 9162 §2.1.1), so anyone holding the entry can recompute its leaf hash.

Entry schema, version 1 (``"v": 1``); every key is required and no other
top-level key is allowed, so a later change of shape must bump ``v``::

    {
      "v": 1,
      "type": "capture",                      # what the entry records (see below)
      "logged_at": "2026-11-22T01:41:19.123456Z",
      "blobs": {                               # role -> the blob it names
        "body": {"digest": "sha256:<64 hex>", "size": 2048}
      },
      "meta": { ... }                          # type-specific metadata (a JSON object)
    }

* ``type``: lowercase word (``[a-z][a-z0-9_.-]*``, at most 64 characters),
  one of the types registered in :mod:`echo_archive.schemas` (``capture``,
  ``item``, ``version``, ``tombstone``...); an unknown type is rejected.
* ``logged_at``: RFC 3339 UTC timestamp with microseconds and a ``Z`` suffix,
  the writer's clock when the batch holding the entry was assembled. It is the
  time the entry *joined the log*; a checkpoint covering the entry attests it
  (as claimed by the log operator; witnesses add independent evidence later).
* ``blobs``: each blob is addressed by the SHA-256 of its uncompressed bytes
  (``sha256:`` + lowercase hex) and its size in bytes. It may be empty.
* ``meta``: a JSON object of the type's schema (:mod:`echo_archive.schemas`,
  reference page ``docs/entries.md``): every field typed, unknown keys
  rejected, numbers I-JSON (integers within ±2^53; RFC 8785 §3.2.2.3), so
  nanosecond times are written as RFC 3339 strings. The schema also fixes
  which blob roles the entry names.

Every entry is checked against the envelope and its type's schema when it is
built (:meth:`Entry.build`) and when it is parsed (:func:`parse_entry`, which
``verify`` uses), so nothing off-schema joins the log or reads back unnoticed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import rfc8785

from echo_archive.errors import EntryError, EntrySchemaError
from echo_archive.schemas import EntryMeta, format_timestamp, validate_meta

__all__ = [
    "ENTRY_VERSION",
    "BlobRef",
    "Entry",
    "canonical_json",
    "format_timestamp",
    "parse_entry",
]

ENTRY_VERSION = 1
_TYPE_RE = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_TS_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
_KEYS = frozenset({"v", "type", "logged_at", "blobs", "meta"})


_Schema = type[EntryMeta]
_SAFE_INT = 2**53 - 1
_STR_TYPE: frozenset[type] = frozenset({str})
_LEAF_TYPES: frozenset[type] = frozenset({str, bool, type(None)})
_PLAIN_TYPES: frozenset[type] = _LEAF_TYPES | {int, dict, list}
_fast_dumps = json.JSONEncoder(
    ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
).encode


def _plain(value: Any) -> bool:
    """Return True when ``value`` holds only what the fast path serializes exactly as JCS.

    That is: dicts with ASCII string keys (so code-point order is UTF-16 order,
    RFC 8785 §3.2.3), strings, booleans, None, lists, and integers within
    ±(2^53 - 1) (printed in decimal, as ECMAScript does, RFC 8785 §3.2.2.3).
    Floats are left to the reference implementation: their shortest
    round-trip form (RFC 8785 §3.2.2.3) is where encoders differ.

    Each container's keys and values are checked by type sets built in C
    (``set(map(type, ...))``), not one Python step per value.
    """
    stack = [value]
    while stack:
        v = stack.pop()
        t = type(v)
        if t is dict:
            if not set(map(type, v)) <= _STR_TYPE or not "".join(v).isascii():
                return False
            members: Any = v.values()
        elif t is list:
            members = v
        elif t in _LEAF_TYPES:
            continue
        elif t is int:
            if -_SAFE_INT <= v <= _SAFE_INT:
                continue
            return False
        else:
            return False
        types = set(map(type, members))
        if types <= _LEAF_TYPES:
            continue
        if not types <= _PLAIN_TYPES:
            return False
        if int in types:
            ints = [m for m in members if type(m) is int]
            if min(ints) < -_SAFE_INT or max(ints) > _SAFE_INT:
                return False
        if dict in types or list in types:
            stack += [m for m in members if type(m) is dict or type(m) is list]
    return True


def canonical_json(value: Any) -> bytes:
    r"""Serialize ``value`` as RFC 8785 (JCS) canonical JSON bytes (UTF-8).

    Values made only of ASCII-keyed objects, strings, booleans, null, arrays
    and safe integers take a fast path through the standard library encoder,
    whose output for them is byte-identical to RFC 8785 §3.2.2.2 and §3.2.3
    (escapes ``\b \f \n \r \t \" \\`` and ``\u00xx`` in lowercase hex for the
    other controls, nothing else escaped, keys sorted); ``tests/test_entry.py``
    checks the identity against the ``rfc8785`` package on generated values.
    Everything else (floats, non-ASCII keys) goes through ``rfc8785``.

    Raises:
        EntryError: the value is not representable in JCS (a non-string key,
            an integer outside ±2^53, NaN or infinity, a lone surrogate...),
            naming the problem.
    """
    if _plain(value):
        try:
            return _fast_dumps(value).encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate: the reference implementation reports it
    try:
        return bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, TypeError, ValueError, UnicodeEncodeError) as exc:
        raise EntryError(f"value is not representable as RFC 8785 canonical JSON: {exc}") from exc


@dataclass(frozen=True, slots=True)
class BlobRef:
    """A blob named by an entry.

    Attributes:
        role: the blob's role in the entry (``"body"``...).
        digest: the SHA-256 of the blob's uncompressed bytes (32 bytes).
        size: the blob's uncompressed size in bytes.

    """

    role: str
    digest: bytes
    size: int

    @property
    def digest_text(self) -> str:
        """The digest as ``sha256:<64 lowercase hex>``."""
        return "sha256:" + self.digest.hex()


@dataclass(frozen=True, slots=True)
class Entry:
    """A parsed, schema-checked log entry.

    Attributes:
        raw: the canonical JSON bytes (what the leaf hash is computed over).
        type: the entry type (``"capture"``...).
        logged_at: RFC 3339 timestamp string when the entry joined the log.
        blobs: the blobs it names, ordered by role.
        meta: the type-specific metadata object.

    """

    raw: bytes
    type: str
    logged_at: str
    blobs: tuple[BlobRef, ...]
    meta: Mapping[str, Any]

    @classmethod
    def build(
        cls,
        type: str,
        logged_at: str,
        blobs: Mapping[str, tuple[bytes, int]],
        meta: Mapping[str, Any] | EntryMeta,
    ) -> Entry:
        """Build and canonicalize a version-1 entry.

        Args:
            type: the entry type (``[a-z][a-z0-9_.-]*``, at most 64 characters).
            logged_at: RFC 3339 UTC timestamp from :func:`format_timestamp`.
            blobs: role -> (digest of 32 bytes, size in bytes).
            meta: type-specific metadata: a schema instance
                (:class:`~echo_archive.schemas.HttpCapture`..., already validated
                when it was made), or a JSON object validated here against the
                type's schema.

        Returns:
            The entry, with ``raw`` holding its canonical bytes.

        Raises:
            EntrySchemaError: the meta or the blob roles break the type's schema
                (naming the field).
            EntryError: an envelope field breaks the schema, or a value is not
                JCS-representable.

        """
        schema: _Schema | None = None
        if isinstance(meta, EntryMeta):
            schema = meta.__class__
            if schema.entry_type != type:
                raise _fail("new entry", f"type {type!r} given a {schema.__name__} meta")
            meta = meta.to_meta()
        meta_doc = dict(meta)
        doc = {
            "v": ENTRY_VERSION,
            "type": type,
            "logged_at": logged_at,
            "blobs": {
                role: {"digest": "sha256:" + digest.hex(), "size": size}
                for role, (digest, size) in blobs.items()
            },
            "meta": meta_doc,
        }
        try:
            schema, refs = _check(doc, "new entry", schema)
        except EntryError:
            canonical_json(doc)  # a value JCS cannot hold is named first
            raise
        return Entry(_canonical(doc, schema), type, logged_at, refs, meta_doc)


def _fail(where: str, what: str) -> EntryError:
    return EntryError(f"{where}: {what}")


def _canonical(doc: dict[str, Any], schema: _Schema) -> bytes:
    """The RFC 8785 bytes of an entry ``doc`` that passed :func:`_check` against ``schema``.

    When the schema admits only plain JSON (:attr:`EntryMeta.plain_json`:
    ASCII keys, strings, booleans, null, safe integers, arrays and objects of
    them) and the envelope has been checked (ASCII keys and roles, safe sizes),
    the document is plain by construction and goes straight to the standard
    library encoder, skipping :func:`canonical_json`'s walk; ``tests/test_schemas.py``
    proves the bytes equal to the ``rfc8785`` package on generated entries of
    every registered schema.
    """
    if schema.plain_json:
        try:
            return _fast_dumps(doc).encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate: the reference implementation reports it
    return canonical_json(doc)


def _check(
    doc: Any, where: str, schema: _Schema | None = None
) -> tuple[_Schema, tuple[BlobRef, ...]]:
    """Check ``doc`` against the envelope and its type's schema (unless ``schema`` is given).

    Returns:
        The schema class of its meta, and its blob references ordered by role.
    """
    if not isinstance(doc, dict):
        raise _fail(where, "is not a JSON object")
    keys = set(doc)
    if keys != _KEYS:
        missing, extra = sorted(_KEYS - keys), sorted(keys - _KEYS)
        raise _fail(where, f"keys differ from schema v1 (missing {missing}, unexpected {extra})")
    if doc["v"] != ENTRY_VERSION or isinstance(doc["v"], bool):
        raise _fail(where, f"unsupported entry version {doc['v']!r} (this build reads v1)")
    etype = doc["type"]
    if not isinstance(etype, str) or not _TYPE_RE.fullmatch(etype):
        raise _fail(where, f"type {etype!r} is not a lowercase word [a-z][a-z0-9_.-]*")
    ts = doc["logged_at"]
    if not isinstance(ts, str) or not _TS_RE.fullmatch(ts):
        raise _fail(where, f"logged_at {ts!r} is not RFC 3339 UTC with microseconds")
    meta = doc["meta"]
    if not isinstance(meta, dict):
        raise _fail(where, "meta is not a JSON object")
    blobs = doc["blobs"]
    if not isinstance(blobs, dict):
        raise _fail(where, "blobs is not a JSON object")
    refs = []
    for role in sorted(blobs):
        ref = blobs[role]
        if not isinstance(ref, dict) or set(ref) != {"digest", "size"}:
            raise _fail(where, f"blob {role!r} is not {{digest, size}}")
        digest, size = ref["digest"], ref["size"]
        if not isinstance(digest, str) or not _DIGEST_RE.fullmatch(digest):
            raise _fail(where, f"blob {role!r} digest {digest!r} is not sha256:<64 hex>")
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= _SAFE_INT:
            raise _fail(where, f"blob {role!r} size {size!r} is not an integer in 0..2^53-1")
        refs.append(BlobRef(role, bytes.fromhex(digest[7:]), size))
    if schema is None:
        schema = validate_meta(etype, meta, blobs, where)
    elif blobs.keys() != schema.blob_roles.keys():
        raise EntrySchemaError(
            f"{where}: {etype} blobs: roles {sorted(blobs)} differ from "
            f"{sorted(schema.blob_roles)} ({schema.__name__} v{schema.schema_version})"
        )
    return schema, tuple(refs)


def parse_entry(raw: bytes, where: str = "entry") -> Entry:
    """Parse entry bytes, checking they are canonical JSON of schema v1 and of their type's schema.

    Args:
        raw: the entry bytes as stored in the log.
        where: how to name the entry in errors (``"entry 42"``).

    Returns:
        The parsed entry.

    Raises:
        EntrySchemaError: the meta or the blob roles break the type's schema
            (naming the entry and the field).
        EntryError: not UTF-8 JSON, not in RFC 8785 canonical form (so its leaf
            hash would be ambiguous), or not of the envelope schema.

    """
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(where, f"is not JSON: {exc}") from exc
    try:
        schema, refs = _check(doc, where)
    except EntryError:
        _require_canonical(raw, canonical_json, doc, where)  # that failure is named first
        raise
    _require_canonical(raw, lambda d: _canonical(d, schema), doc, where)
    return Entry(
        raw=raw, type=doc["type"], logged_at=doc["logged_at"], blobs=refs, meta=doc["meta"]
    )


def _require_canonical(
    raw: bytes, canonicalize: Callable[[Any], bytes], doc: Any, where: str
) -> None:
    try:
        canonical = canonicalize(doc)
    except EntryError as exc:
        raise _fail(where, f"is not representable as canonical JSON: {exc}") from exc
    if canonical != raw:
        raise _fail(where, "is not in RFC 8785 canonical form")
