"""The machinery of the entry schemas: field types, the schema base class and the registry.

Every entry type's ``meta`` is one :class:`EntryMeta` subclass per (type, kind,
version), declared with :func:`register`; the reader picks the class from the
entry's ``type``, the meta's ``kind`` (for types that have kinds) and the
meta's ``v`` (absent means 1). Blob documents (the item blob) are
:class:`BlobDocument` subclasses named by the entry classes that carry them.

Schema versions (the policy, DESIGN.md "the versioned schemas of every entry type"):

* the envelope has its own ``v`` (:data:`echo_archive.vault.entry.ENTRY_VERSION`);
  it changes only when the envelope's shape changes;
* each (type, kind) has its own schema version, starting at 1. Version 1 is
  implicit: its metas carry no ``v`` key (so every entry written before the
  schemas existed is version 1, byte for byte). A change of shape (a new
  field, a field removed, a type narrowed or widened) is a new class with
  ``schema_version = N`` whose metas carry ``"v": N``; the old class stays registered
  for ever, because the log is append-only and its entries are permanent.
  Writers use the newest version; readers accept every registered one.
* ``v`` is never written as 1 and a version-1 class has no ``v`` field, so
  each meta has exactly one valid form.

Field types follow what ECHO writes: timestamps are RFC 3339 UTC with
microseconds and ``Z`` (:func:`format_timestamp`, RFC 3339 §5.6), digests
``sha256:`` + 64 lowercase hex, indexes and sizes integers >= 0, every number
I-JSON (integers within ±(2^53 - 1), finite floats; RFC 7493 §2.2, RFC 8785
§3.2.2.3).
"""

from __future__ import annotations

import math
import types
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin

import annotated_types
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)
from pydantic.fields import FieldInfo

from echo_archive.errors import EntrySchemaError

__all__ = [
    "SAFE_INT",
    "TIMESTAMP_PATTERN",
    "AsciiKey",
    "BlobDocument",
    "Count",
    "Digest",
    "Doc",
    "EntryMeta",
    "HeaderName",
    "Index",
    "JsonObject",
    "Name",
    "Number",
    "Timestamp",
    "entry_classes",
    "format_timestamp",
    "register",
    "schema_error",
    "schema_for",
    "validate_blob_document",
    "validate_meta",
]

SAFE_INT = 2**53 - 1
"""The largest I-JSON integer (RFC 7493 §2.2): beyond it, IEEE 754 doubles lose integers."""

TIMESTAMP_PATTERN = (
    r"^[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\.[0-9]{6}Z$"
)
"""An RFC 3339 §5.6 ``date-time`` as ECHO writes it: UTC, microseconds, ``Z``."""


class Doc:
    """A marker in a field's ``Annotated`` metadata: how the reference page names its type.

    Attributes:
        text: the type's name on ``docs/entries.md`` (``"timestamp"``, ``"digest"``...).
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def format_timestamp(ns: int) -> str:
    """Format a POSIX time in nanoseconds as RFC 3339 UTC with microseconds (``...Z``).

    Args:
        ns: nanoseconds since 1970-01-01T00:00:00Z (truncated to microseconds).

    Returns:
        ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (RFC 3339 §5.6), matching :data:`TIMESTAMP_PATTERN`.
    """
    seconds, rest = divmod(ns, 1_000_000_000)
    dt = datetime.fromtimestamp(seconds, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{rest // 1000:06d}Z"


def _float_problem(value: float) -> str | None:
    """Why a float is not I-JSON once canonicalized, or None.

    RFC 8785 §3.2.2.3 prints an integral float below 10^21 as digits without
    a fraction, so ``2.0**53`` reads back as the unsafe integer 9007199254740992.
    """
    if not math.isfinite(value):
        return f"{value} is not a finite number (I-JSON, RFC 7493 §2.2)"
    if SAFE_INT < abs(value) < 1e21 and value.is_integer():
        return f"{value!r} is written as an integer outside ±(2^53 - 1) (RFC 8785 §3.2.2.3)"
    return None


def _number(value: int | float) -> int | float:
    if isinstance(value, int):
        if -SAFE_INT <= value <= SAFE_INT:
            return value
        raise ValueError(f"integer {value} is outside ±(2^53 - 1) (I-JSON, RFC 7493 §2.2)")
    problem = _float_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _json_value_problem(value: object) -> str | None:
    """Return where and why ``value`` is not an I-JSON value, or None when it is one."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, v = stack.pop()
        t = type(v)
        if t is str or t is bool or v is None:
            continue
        if t is int:
            if not -SAFE_INT <= v <= SAFE_INT:
                return f"{path or '$'}: integer outside ±(2^53 - 1)"
        elif t is float:
            problem = _float_problem(v)
            if problem is not None:
                return f"{path or '$'}: {problem}"
        elif t is dict:
            for key, member in v.items():
                if type(key) is not str:
                    return f"{path or '$'}: key {key!r} is not a string"
                stack.append((f"{path}.{key}", member))
        elif t is list:
            stack.extend((f"{path}[{i}]", m) for i, m in enumerate(v))
        else:
            return f"{path or '$'}: {t.__name__} is not a JSON value"
    return None


def _json_object(value: dict[str, Any]) -> dict[str, Any]:
    problem = _json_value_problem(value)
    if problem is not None:
        raise ValueError(f"not an I-JSON object ({problem})")
    return value


class AsciiKey:
    """A marker in a string type's metadata: its pattern admits only ASCII (an object key).

    JCS orders object keys by UTF-16 code units (RFC 8785 §3.2.3); for ASCII
    keys that is the order the standard library sorts in, which is what lets
    a schema be :attr:`EntryMeta.plain_json`.
    """


HeaderName = Annotated[
    str,
    StringConstraints(pattern=r"^[!#$%&'*+.^_`|~0-9a-z-]+$"),
    AsciiKey(),
    Doc("lowercase header name (RFC 9110 §5.1 token)"),
]
"""A lowercase HTTP field name: an RFC 9110 §5.6.2 token without uppercase letters."""

Timestamp = Annotated[
    str, StringConstraints(pattern=TIMESTAMP_PATTERN), Doc("timestamp (RFC 3339 UTC, µs, Z)")
]
"""RFC 3339 UTC timestamp with microseconds and ``Z`` (``2026-11-22T01:41:19.123456Z``)."""

Digest = Annotated[
    str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$"), Doc("digest (sha256:<64 hex>)")
]
"""A SHA-256 digest as ``sha256:`` + 64 lowercase hex digits."""

Index = Annotated[int, Field(ge=0, le=SAFE_INT), Doc("log index (integer >= 0)")]
"""A log index: an integer in 0 .. 2^53 - 1."""

Count = Annotated[int, Field(ge=0, le=SAFE_INT), Doc("integer >= 0")]
"""A size, a duration in milliseconds, a count: an integer in 0 .. 2^53 - 1."""

Number = Annotated[int | float, AfterValidator(_number), Doc("I-JSON number")]
"""An integer within ±(2^53 - 1) or a finite float."""

Name = Annotated[str, StringConstraints(min_length=1), Doc("non-empty string")]
"""A non-empty string (names, ids, URLs, reasons)."""

JsonObject = Annotated[dict[str, Any], AfterValidator(_json_object), Doc("JSON object (I-JSON)")]
"""Any JSON object whose numbers are I-JSON (source-specific fields)."""


_CONFIG = ConfigDict(extra="forbid", strict=True, frozen=True, validate_default=False)


class EntryMeta(BaseModel):
    """Base of every entry type's ``meta`` schema (one subclass per type, kind and version).

    Class attributes a subclass sets:
        entry_type: the entry ``type`` it describes (``"capture"``...).
        kind_value: the value of the meta's ``kind`` field this class reads, or
            None when the type has no ``kind`` key (the class then has no ``kind``
            field); a class with a kind has a field ``kind: Literal[<kind_value>]``.
        schema_version: its schema version (1, or N >= 2 with a field
            ``v: Literal[N] = N``).
        blob_roles: the blob roles the entry names, each with the :class:`BlobDocument`
            its blob holds, or None for bytes of any shape.

    Instances are validated on construction (strict: no coercion, unknown
    fields rejected) and frozen; :meth:`to_meta` gives the JSON-ready mapping.
    """

    model_config = _CONFIG

    entry_type: ClassVar[str]
    kind_value: ClassVar[str | None] = None
    schema_version: ClassVar[int] = 1
    blob_roles: ClassVar[Mapping[str, type[BlobDocument] | None]] = {}
    plain_json: ClassVar[bool] = False
    """Set by :func:`register`: every valid meta is plain JSON (see :func:`_plain_field`)."""

    def __init__(self, **fields: Any) -> None:
        """Validate ``fields`` (strictly: no coercion, no unknown field) into a frozen meta.

        Raises:
            EntrySchemaError: a field is missing, unknown or of the wrong type
                (``new entry: capture meta (HttpCapture v1): field status: ...``).
        """
        try:
            super().__init__(**fields)
        except ValidationError as exc:
            what = f"{self.entry_type} meta"
            raise EntrySchemaError(schema_error("new entry", what, type(self), exc)) from None

    # Validators (validate_meta) must not call this __init__: marked as pydantic's own base
    # init, as pydantic-settings does, so pydantic_core builds instances without it.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    def to_meta(self) -> dict[str, Any]:
        """The meta as a JSON-ready dict (every field, ``None`` as ``null``).

        The instance's own field values, copied: equal to ``model_dump()`` for
        these flat schemas (no nested models; ``tests/test_schemas.py`` proves
        it on generated metas of every registered class), at a tenth of its cost.
        """
        return dict(self.__dict__)


class BlobDocument(BaseModel):
    """Base of the schema of a blob that holds a JSON document (the item blob).

    Class attributes:
        schema_version: its schema version (implicit 1, as for :class:`EntryMeta`).
    """

    model_config = _CONFIG

    schema_version: ClassVar[int] = 1


_REGISTRY: dict[str, dict[tuple[str | None, int], type[EntryMeta]]] = {}
_M = TypeVar("_M", bound=EntryMeta)
_LATEST_V1: dict[tuple[str, str | None], type[EntryMeta]] = {}
"""(type, kind) -> its version-1 class: :func:`validate_meta` finds most metas in one lookup."""


def _literal(cls: type[BaseModel], field: str) -> tuple[Any, ...] | None:
    info = cls.model_fields.get(field)
    if info is None or get_origin(info.annotation) is not Literal:
        return None
    return get_args(info.annotation)


_PLAIN_LEAVES: frozenset[Any] = frozenset({str, bool, type(None), None})


def _safe_bounds(metadata: Iterable[Any]) -> bool:
    """True when ``metadata`` bounds an integer within ±(2^53 - 1) (``Field(ge=..., le=...)``)."""
    flat: list[Any] = []
    for m in metadata:
        flat.extend(m.metadata if isinstance(m, FieldInfo) else [m])
    lo = next((m.ge for m in flat if isinstance(m, annotated_types.Ge)), None)
    hi = next((m.le for m in flat if isinstance(m, annotated_types.Le)), None)
    return lo is not None and hi is not None and lo >= -SAFE_INT and hi <= SAFE_INT


def _plain_field(annotation: Any, metadata: Iterable[Any] = ()) -> bool:
    """Whether every value of a field's type is plain JSON (the entry fast path's domain).

    Plain: strings, booleans, null, integers bounded within ±(2^53 - 1), and
    arrays and objects of those whose keys are :class:`AsciiKey` strings
    (:mod:`echo_archive.vault.entry` serializes those with the standard
    library). Floats, free-form objects (:data:`JsonObject`) and anything
    unknown are not plain.
    """
    metadata = list(metadata)
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *inner = get_args(annotation)
        return _plain_field(base, [*metadata, *inner])
    if annotation in _PLAIN_LEAVES:
        return True
    if annotation is int:
        return _safe_bounds(metadata)
    if origin is Literal:
        return all(
            type(a) in (str, bool, type(None)) or (type(a) is int and abs(a) <= SAFE_INT)
            for a in get_args(annotation)
        )
    if origin in (Union, types.UnionType):
        return all(_plain_field(a, metadata) for a in get_args(annotation))
    if origin is list:
        return _plain_field(get_args(annotation)[0])
    if origin is dict:
        key, value = get_args(annotation)
        ascii_key = get_origin(key) is Annotated and any(
            isinstance(m, AsciiKey) for m in get_args(key)[1:]
        )
        return ascii_key and _plain_field(value)
    return False


def register(cls: type[_M]) -> type[_M]:
    """Class decorator: add an :class:`EntryMeta` subclass to the registry.

    Adding an entry type, a kind or a version is this one declaration.

    Raises:
        TypeError: the class is inconsistent (its ``kind`` or ``v`` field does not
            match its class attributes) or its (type, kind, version) is taken.
    """
    name = cls.__name__
    if cls.kind_value is not None and _literal(cls, "kind") != (cls.kind_value,):
        raise TypeError(
            f"{name}: kind {cls.kind_value!r} needs a field kind: Literal[{cls.kind_value!r}]"
        )
    if cls.kind_value is None and "kind" in cls.model_fields:
        raise TypeError(f"{name}: a field 'kind' needs the class attribute kind_value")
    if cls.schema_version == 1 and "v" in cls.model_fields:
        raise TypeError(f"{name}: version 1 is implicit: no field 'v'")
    if cls.schema_version != 1 and _literal(cls, "v") != (cls.schema_version,):
        raise TypeError(
            f"{name}: version {cls.schema_version} needs a field v: Literal[{cls.schema_version}]"
        )
    if not all(role.isascii() for role in cls.blob_roles):
        raise TypeError(f"{name}: blob roles must be ASCII words")
    cls.plain_json = all(_plain_field(i.annotation, i.metadata) for i in cls.model_fields.values())
    versions = _REGISTRY.setdefault(cls.entry_type, {})
    key = (cls.kind_value, cls.schema_version)
    if key in versions:
        raise TypeError(f"{name}: {cls.entry_type} {key} is already {versions[key].__name__}")
    versions[key] = cls
    if cls.schema_version == 1:
        _LATEST_V1[cls.entry_type, cls.kind_value] = cls
    return cls


def entry_classes() -> Iterator[type[EntryMeta]]:
    """Every registered schema, by entry type, then kind, then version."""
    for etype in sorted(_REGISTRY):
        versions = _REGISTRY[etype]
        yield from (versions[k] for k in sorted(versions, key=lambda k: (k[0] or "", k[1])))


def schema_error(where: str, what: str, cls: type[BaseModel], exc: ValidationError) -> str:
    """Word a pydantic error as ``<where>: <what> (<Class> v<N>): <field>: <problem>; ...``."""
    problems = []
    for err in exc.errors(include_url=False, include_input=False)[:4]:
        loc = ".".join(str(p) for p in err["loc"]) or "(the object)"
        problems.append(f"field {loc}: {err['msg']}")
    more = exc.error_count() - len(problems)
    tail = f"; and {more} more" if more > 0 else ""
    version = getattr(cls, "schema_version", 1)
    return f"{where}: {what} ({cls.__name__} v{version}): {'; '.join(problems)}{tail}"


def schema_for(entry_type: str, meta: Mapping[str, Any], where: str) -> type[EntryMeta]:
    """The registered schema of a meta: chosen by entry type, ``kind`` and ``v``.

    Raises:
        EntrySchemaError: the type, kind or version is unknown to this build.
    """
    versions = _REGISTRY.get(entry_type)
    if versions is None:
        known = ", ".join(sorted(_REGISTRY))
        raise EntrySchemaError(f"{where}: entry type {entry_type!r} is unknown (known: {known})")
    kind = meta.get("kind")
    if kind is not None and type(kind) is not str:
        raise EntrySchemaError(f"{where}: {entry_type} meta field kind: {kind!r} is not a string")
    version = meta.get("v", 1)
    if "v" in meta and (type(version) is not int or version < 2):
        raise EntrySchemaError(
            f"{where}: {entry_type} meta field v: {version!r} is not a version >= 2 "
            "(version 1 is written without v)"
        )
    kinds = {k for k, _ in versions}
    if kind not in kinds:
        names = ", ".join(sorted(k or "(no kind)" for k in kinds))
        raise EntrySchemaError(
            f"{where}: {entry_type} meta field kind: {kind!r} is not a known kind (known: {names})"
        )
    cls = versions.get((kind, version))
    if cls is None:
        known_versions = sorted(v for k, v in versions if k == kind)
        raise EntrySchemaError(
            f"{where}: {entry_type} meta field v: {version!r} is not a known version "
            f"(known: {known_versions})"
        )
    return cls


def validate_meta(
    entry_type: str, meta: Mapping[str, Any], roles: Iterable[str], where: str
) -> type[EntryMeta]:
    """Validate an entry's ``meta`` and blob roles against its registered schema.

    Args:
        entry_type: the entry's ``type``.
        meta: the entry's ``meta`` object.
        roles: the blob roles the entry names (any iterable of strings).
        where: how to name the entry in errors (``"entry 42"``, ``"new entry"``).

    Returns:
        The schema class the meta validated against.

    Raises:
        EntrySchemaError: naming the entry, its type and the field that is wrong.
    """
    kind = meta.get("kind")
    cls = None
    if (kind is None or type(kind) is str) and "v" not in meta:  # the common case: one lookup
        cls = _LATEST_V1.get((entry_type, kind))
    if cls is None:
        cls = schema_for(entry_type, meta, where)
    try:
        cls.__pydantic_validator__.validate_python(meta)
    except ValidationError as exc:
        raise EntrySchemaError(schema_error(where, f"{entry_type} meta", cls, exc)) from None
    _check_roles(cls, set(roles), where)
    return cls


def _check_roles(cls: type[EntryMeta], roles: set[str], where: str) -> None:
    if roles != cls.blob_roles.keys():
        raise EntrySchemaError(
            f"{where}: {cls.entry_type} blobs: roles {sorted(roles)} differ from "
            f"{sorted(cls.blob_roles)} ({cls.__name__} v{cls.schema_version})"
        )


def validate_blob_document(cls: type[BlobDocument], doc: object, where: str) -> None:
    """Validate a decoded blob document (an item blob...) against ``cls``.

    Raises:
        EntrySchemaError: naming the blob and the field that is wrong.
    """
    try:
        cls.__pydantic_validator__.validate_python(doc)
    except ValidationError as exc:
        raise EntrySchemaError(schema_error(where, "blob document", cls, exc)) from None
