"""The schemas of every entry type ECHO writes, and of the item blob.

One class per (type, kind, version), declared with :func:`register`. The
field descriptions below are what ``docs/entries.md`` prints.

Adding an entry type (``repair``, ``alert``, ``audit``...), a kind (a
``withdrawn`` tombstone) or a new version of a shape is one class here:
subclass :class:`EntryMeta`, set ``entry_type`` (and ``kind_value``/``schema_version``
when needed) and ``blob_roles``, declare the fields, decorate with ``@register``,
then regenerate the reference page (``python -m echo_archive.schemas``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Annotated, ClassVar, Final, Literal

from pydantic import AfterValidator, Field, StringConstraints

from echo_archive.schemas.base import (
    BlobDocument,
    Count,
    Digest,
    Doc,
    EntryMeta,
    HeaderName,
    Index,
    JsonObject,
    Name,
    Number,
    Timestamp,
    register,
)

__all__ = [
    "CORRECTION_KINDS",
    "MAX_CORRECTION_TEXT",
    "MAX_REASON",
    "AnnotationMeta",
    "AuditMeta",
    "FileCapture",
    "HttpCapture",
    "InterventionMeta",
    "ItemBlob",
    "ItemMeta",
    "ItemMetaV2",
    "ReinstatementMeta",
    "RemovedItemMeta",
    "RepairMeta",
    "RetractionMeta",
    "TombstoneMeta",
    "VersionMeta",
    "VersionMetaV2",
    "WithdrawnMeta",
    "text_problem",
]


class ItemBlob(BlobDocument):
    """The item blob: the item's content as the source gave it, with its counters.

    RFC 8785 canonical JSON. The content fields (all but ``capture``,
    ``counters`` and ``fetched_at``) are the content document whose SHA-256 is
    the entry's ``content_digest``: two sightings with the same content are
    one item version.
    """

    author: str = Field(description="The author's name or handle, or empty.")
    capture: Digest = Field(description="Leaf hash of the capture entry the item was parsed from.")
    counters: dict[str, Number] = Field(
        description="Volatile numbers (score, comments, stars...): observed, not versioned."
    )
    deleted: bool = Field(description="The source marks the item deleted or removed.")
    extra: JsonObject = Field(description="Source-specific content fields.")
    feed: Name = Field(description="The configured feed's name.")
    fetched_at: Timestamp = Field(description="When the capture's response arrived.")
    native_id: Name = Field(description="The item's id at the source, unique within the feed.")
    published_at: Timestamp | Literal[""] = Field(
        description="Publication time as the source states it, or empty when unknown."
    )
    source: Name = Field(description="The source kind (rss, hn, reddit, github, fred...).")
    text: str = Field(description="The body text as the source sent it (HTML kept), or empty.")
    title: str = Field(description="The title, or empty.")
    url: str = Field(description="The item's link, or empty.")


@register
class FileCapture(EntryMeta):
    """A local file archived as evidence (``echoctl add``); blob ``body`` holds its bytes."""

    entry_type: ClassVar[str] = "capture"
    kind_value: ClassVar[str | None] = "file"
    blob_roles: ClassVar[Mapping[str, type[BlobDocument] | None]] = {"body": None}

    kind: Literal["file"] = Field(default="file", description="``file``.")
    name: Name = Field(description="The file's base name (no directory).")
    size: Count = Field(description="Its size in bytes.")
    mtime: Timestamp = Field(description="Its modification time.")


@register
class HttpCapture(EntryMeta):
    """One HTTP exchange as received (harvest) or recorded (import); blob ``body`` holds its body.

    URLs are stored with credentials redacted. Only the response headers that
    matter are kept, names lowercased, repeated ones joined with ``", "``
    (RFC 9110 §5.3).
    """

    entry_type: ClassVar[str] = "capture"
    kind_value: ClassVar[str | None] = "http"
    blob_roles: ClassVar[Mapping[str, type[BlobDocument] | None]] = {"body": None}

    kind: Literal["http"] = Field(default="http", description="``http``.")
    source: Name = Field(description="The source kind of the feed the exchange belongs to.")
    feed: Name = Field(description="The feed's name.")
    method: Name = Field(description="The request method (RFC 9110 §9).")
    url: Name = Field(description="The requested URL.")
    final_url: Name = Field(description="The URL of the final response after redirects.")
    redirects: list[str] = Field(description="The URLs redirected through, in order.")
    status: int = Field(ge=0, le=999, description="The final HTTP status code (0: none, HAR).")
    headers: dict[HeaderName, str] = Field(
        description="Kept response headers, lowercase name -> value."
    )
    fetched_at: Timestamp = Field(
        description="When the response arrived (for a recording: the time it states)."
    )
    elapsed_ms: Count = Field(description="Milliseconds from request to end of body.")
    recorded_at: Timestamp | None = Field(
        description="The recording's own timestamp (claimed, not attested), or null when live."
    )
    truncated: bool = Field(description="The body was cut at the size limit.")
    parse_error: str | None = Field(description="Why the source could not parse the body, or null.")
    parse_warning: str | None = Field(
        default=None,
        description="A problem the source worked around, or null. Absent on captures "
        "written before warnings were recorded (read as null).",
    )


class _ItemFields(EntryMeta):
    """The fields every item-related entry carries."""

    source: Name = Field(description="The item's source kind.")
    feed: Name = Field(description="The item's feed.")
    native_id: Name = Field(description="The item's id at the source.")
    capture: Digest = Field(description="Leaf hash of the capture entry it was seen in.")
    content_digest: Digest = Field(
        description="SHA-256 of the item's content document (the item blob without "
        "capture, counters and fetched_at)."
    )


@register
class ItemMeta(_ItemFields):
    """The first version of an item; blob ``item`` holds the item blob."""

    entry_type: ClassVar[str] = "item"
    blob_roles: ClassVar[Mapping[str, type[BlobDocument] | None]] = {"item": ItemBlob}

    previous: None = Field(description="null: a new item follows no entry.")


@register
class VersionMeta(_ItemFields):
    """A later version of an item whose content changed; blob ``item`` holds the item blob."""

    entry_type: ClassVar[str] = "version"
    blob_roles: ClassVar[Mapping[str, type[BlobDocument] | None]] = {"item": ItemBlob}

    previous: Index = Field(description="Log index of the item's entry this version follows.")


_OBSERVED_AT = (
    "When the source states this content held: the source's own time when it gives one "
    "(FRED: the vintage, see ``echo_archive.sources.fred.observed_at``), else the "
    "capture's ``recorded_at``, else its ``fetched_at``. An item's history is ordered "
    "by it (ties by log index), not by log index. Version 1 entries have none: their "
    "capture's ``recorded_at``, else ``fetched_at``, stands for it."
)


@register
class ItemMetaV2(_ItemFields):
    """The first version of an item, with its observed time; blob ``item`` holds the item blob.

    Version 2 of :class:`ItemMeta` adds ``observed_at`` (issue 9, "history
    independent of arrival order").
    """

    entry_type: ClassVar[str] = "item"
    schema_version: ClassVar[int] = 2
    blob_roles: ClassVar[Mapping[str, type[BlobDocument] | None]] = {"item": ItemBlob}

    v: Literal[2] = Field(default=2, description="``2``.")
    previous: None = Field(description="null: a new item follows no entry.")
    observed_at: Timestamp = Field(description=_OBSERVED_AT)


@register
class VersionMetaV2(_ItemFields):
    """A later version of an item, with its observed time; blob ``item`` holds the item blob.

    Version 2 of :class:`VersionMeta` adds ``observed_at``. ``previous`` still
    links the item's entries in log order (arrival); a version observed
    before the item's current one is history, not the current content.
    """

    entry_type: ClassVar[str] = "version"
    schema_version: ClassVar[int] = 2
    blob_roles: ClassVar[Mapping[str, type[BlobDocument] | None]] = {"item": ItemBlob}

    v: Literal[2] = Field(default=2, description="``2``.")
    previous: Index = Field(
        description="Log index of the item's latest entry when this one was written "
        "(the entries of an item, in log order)."
    )
    observed_at: Timestamp = Field(description=_OBSERVED_AT)


@register
class TombstoneMeta(_ItemFields):
    """An item known to the archive is deleted or removed at the source; no blob.

    ``content_digest`` is the digest of the item's last content.
    """

    entry_type: ClassVar[str] = "tombstone"

    previous: Index = Field(description="Log index of the item's entry this tombstone follows.")
    reason: Name = Field(
        description="Why, in the source's words: ``[deleted]``, ``[removed]``, ``dead``, "
        "``HTTP 404``, ``null (no such item)``..."
    )


@register
class RemovedItemMeta(_ItemFields):
    """An item first seen already deleted or removed at the source; blob ``item`` holds its remains.

    The archive never saw the live version: the first sighting is a Reddit
    thing marked ``[deleted]`` / ``[removed]`` or carrying
    ``removed_by_category``, or a Hacker News item marked ``deleted`` /
    ``dead``. The deletion is evidence in itself, so the item is archived in
    this removed state with what the source still shows (id, times, subreddit
    or parent, author or title when shown), its item blob's ``deleted`` set.
    An item of this kind starts the item's history (``previous`` is null);
    if the source later shows the item live, that sighting is a ``version``
    following it.
    """

    entry_type: ClassVar[str] = "item"
    kind_value: ClassVar[str | None] = "removed"
    blob_roles: ClassVar[Mapping[str, type[BlobDocument] | None]] = {"item": ItemBlob}

    kind: Literal["removed"] = Field(default="removed", description="``removed``.")
    previous: None = Field(description="null: the first entry of the item.")
    reason: Name = Field(
        description="Why, in the source's words: ``[deleted]``, ``[removed]``, "
        "``[removed] (removed_by_category: moderator)``, ``deleted``, ``dead``."
    )


@register
class WithdrawnMeta(_ItemFields):
    """An item that disappeared from its feed document while older items stayed; no blob.

    Not a deletion at the source: the publisher took the entry out of the
    RSS/Atom/JSON Feed document. The window rule: an item is withdrawn only
    when an item that the previous document listed *after* it (document
    order: feeds list newest first) is still in the new document; an item
    that fell off the end of the window (nothing after it remains) is not.
    ``content_digest`` is the digest of the item's last content. A later
    fetch of its link answering 404 or 410 is a plain tombstone following
    this one.
    """

    entry_type: ClassVar[str] = "tombstone"
    kind_value: ClassVar[str | None] = "withdrawn"

    kind: Literal["withdrawn"] = Field(default="withdrawn", description="``withdrawn``.")
    previous: Index = Field(description="Log index of the item's entry this tombstone follows.")
    reason: Name = Field(
        description="What was seen: ``absent from the feed document while older items remain``."
    )


@register
class RepairMeta(EntryMeta):
    """A repair the archive made to itself (``echoctl repair``, the service); no blob.

    DESIGN.md invariant 10: the archive's own operation is on the record.
    Written after the repair ran, whether it succeeded or not, by
    :func:`echo_archive.control.repair.run_repairs`. A repair never rewrites
    or removes a log entry or evidence: it seals an unsealed tail, rebuilds a
    derived index, removes temporary files of failed writes, checkpoints the
    SQLite WAL, half-opens a breaker, or (approved) deletes operational rows.
    """

    entry_type: ClassVar[str] = "repair"
    blob_roles: ClassVar[Mapping[str, type[BlobDocument] | None]] = {}

    name: Name = Field(
        description="The repair (``seal_tail``, ``rebuild_derived``, ``remove_temp_files``, "
        "``optimize_databases``, ``half_open_breakers``, ``prune_reports``...)."
    )
    risk: Literal["low", "high"] = Field(
        description="``low``: cannot lose evidence, runs on its own; ``high``: destructive, "
        "runs only when approved."
    )
    check: str | None = Field(
        description="The health check that called for it (``unsealed_tail``...), or null."
    )
    reason: str = Field(description="That check's one-line summary when the repair ran, or empty.")
    actor: Name = Field(description="Who ran it: ``echoctl repair``, ``service``...")
    approved: bool = Field(description="An operator approved it (``--approve NAME``).")
    plan: JsonObject = Field(description="What it was to do (its dry run).")
    result: JsonObject = Field(description="What it did (counts, names, sizes).")
    ok: bool = Field(description="It completed without error.")
    error: str | None = Field(description="Why it failed, or null.")
    started_at: Timestamp = Field(description="When it started.")
    finished_at: Timestamp = Field(description="When it finished.")


@register
class AuditMeta(EntryMeta):
    """A change of who may do what, or a use of break-glass (the HTTP API); no blob.

    DESIGN.md invariant 10 (the archive's own operation is on the record) and
    issue 11's audit trail: every API key or user change, every break-glass
    use and every burst of failed logins is one entry, written through the
    vault's writer by :func:`echo_archive.api.audit.record`. Never a secret (invariant 9): no
    key, password, hash or token is ever in it, only names and the key's
    public id.
    """

    entry_type: ClassVar[str] = "audit"
    blob_roles: ClassVar[Mapping[str, type[BlobDocument] | None]] = {}

    actor: Name = Field(
        description="Who did it: ``key:<name>``, ``user:<name>``, or the login name of a "
        "command-line operator (``cli:<login>``)."
    )
    action: Name = Field(
        description="What: ``key.create``, ``key.revoke``, ``user.add``, ``user.remove``, "
        "``user.passwd``, ``breakglass.start``, ``login.failure_burst``..."
    )
    target: str = Field(
        description="What it was done to (``key:<name>``, ``user:<name>``), or empty."
    )
    outcome: Literal["ok", "refused", "failed"] = Field(
        description="``ok``: done; ``refused``: not allowed or invalid; ``failed``: an error."
    )
    reason: str = Field(description="Why, as the actor stated it or the refusal says, or empty.")
    request_id: str | None = Field(description="The HTTP request's id, or null (command line).")
    details: JsonObject = Field(
        description="What was set (``role``, ``group``, ``expires_at``, ``key_id``, "
        "``until``...): never a secret."
    )


@register
class InterventionMeta(EntryMeta):
    """One step of an intervention of the supervisor or an operator; no blob.

    DESIGN.md invariant 10: the archive's own operation is on the record.
    Written by :class:`echo_archive.control.interventions.InterventionManager`
    at each step of an intervention's life, through the vault's writer,
    before the step's state is stored: ``planned`` (validated, with its dry
    run), ``approved`` / ``rejected`` (an operator's decision on a high-risk
    one), ``executed`` (done, or failed: ``ok``), ``assessed`` (its effect on
    its signal measured after ``assess_after`` seconds) and ``rolled_back``
    (undone: by an operator, or on its own when the effect was bad). The
    entries of one intervention share its ``id``. An intervention acts on
    operational state only (schedules, host limits, breakers, derived
    indexes, saved reports): it never rewrites or removes a log entry.
    """

    entry_type: ClassVar[str] = "intervention"
    blob_roles: ClassVar[Mapping[str, type[BlobDocument] | None]] = {}

    id: Name = Field(
        description="The intervention's id (short, stable: ``echoctl interventions show ID``)."
    )
    event: Literal["planned", "approved", "rejected", "executed", "assessed", "rolled_back"] = (
        Field(description="The step this entry records.")
    )
    action: Name = Field(
        description="The intervention's kind (``meta.kind`` is reserved for entry kinds): "
        "``pause_feed``, ``resume_feed``, ``stretch_interval``, "
        "``lower_host_rate``, ``force_breaker``, ``quarantine_feed``, ``rebuild_index``, "
        "``run_verify``, ``free_disk``."
    )
    risk: Literal["low", "high"] = Field(
        description="``low``: may run on its own within the hourly budget; ``high``: runs only "
        "when approved."
    )
    target: Name = Field(
        description="What it acts on: a feed name, a host, a derived index name, or ``vault``."
    )
    params: JsonObject = Field(description="The kind's parameters, as validated.")
    state: Name = Field(
        description="The intervention's state after this step: ``pending_approval``, "
        "``deferred``, ``approved``, ``executed``, ``assessed``, ``rolled_back``, "
        "``rejected``, ``failed``..."
    )
    actor: Name = Field(
        description="Who took the step: ``supervisor``, ``service``, an operator's name..."
    )
    reason: str = Field(
        description="Why: the proposal's reason (planned), the operator's (rejected, rolled "
        "back), the measured effect (automatic rollback); or empty."
    )
    signal: str = Field(description="The signal it should improve, or empty.")
    goal: Literal["down", "up"] = Field(description="Whether that signal should go down or up.")
    evidence: dict[str, Number] = Field(
        description="The signal values that led to it (name -> value), at planning."
    )
    dry_run: str = Field(description="What it does, in words (its dry run, at planning).")
    result: JsonObject = Field(
        description="What the step did: the state needed to roll back (executed), what the "
        "rollback restored (rolled_back), the measured effect (assessed: ``before``, "
        "``after``, ``change``, ``verdict``, ``margin``); empty for the other steps."
    )
    ok: bool = Field(description="The step completed without error.")
    error: str | None = Field(description="Why it failed, or null.")
    at: Timestamp = Field(description="When the step was taken.")


MAX_REASON: Final = 1000
"""Characters a correction's ``reason`` may hold at most (one line)."""

MAX_CORRECTION_TEXT: Final = 10_000
"""Characters a correction's ``text`` (an annotation's body) may hold at most."""

CORRECTION_KINDS: Final = ("annotation", "retraction", "reinstatement")
"""The kinds of a ``correction`` entry, one schema class each."""

_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
"""The bidirectional embedding, override and isolate controls (Unicode UAX #9 §2.1-2.4):
text that reorders what a reader sees ("Trojan Source", CVE-2021-42574)."""


def text_problem(value: str, multiline: bool) -> str | None:
    """Why an editor's text is refused, or None: a control or reordering character, or blank.

    The rule of a correction's ``reason`` (one line) and ``text``
    (``multiline``). Refused anywhere: Unicode general category ``Cc`` (C0, DEL, C1) except,
    when ``multiline``, line feed and tab; the line and paragraph separators
    (U+2028, U+2029); the bidi controls of :data:`_BIDI_CONTROLS`.
    """
    if not value.strip():
        return "is empty or only white space"
    for position, char in enumerate(value):
        if multiline and char in "\n\t":
            continue
        if (
            unicodedata.category(char) in ("Cc", "Zl", "Zp")
            or char in _BIDI_CONTROLS
            or (not multiline and char == "\t")
        ):
            return f"holds the control character U+{ord(char):04X} at position {position}"
    return None


def _one_line(value: str) -> str:
    problem = text_problem(value, multiline=False)
    if problem is not None:
        raise ValueError(problem)
    return value


def _body(value: str) -> str:
    problem = text_problem(value, multiline=True)
    if problem is not None:
        raise ValueError(problem)
    return value


Reason = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_REASON),
    AfterValidator(_one_line),
    Doc(f"one line of text, 1 to {MAX_REASON} characters, no control characters"),
]
"""A correction's reason: one line, 1 to :data:`MAX_REASON` characters, no control,
separator or bidi control character, not blank."""

CorrectionText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_CORRECTION_TEXT),
    AfterValidator(_body),
    Doc(f"text, 1 to {MAX_CORRECTION_TEXT} characters, no control characters but LF and tab"),
]
"""An annotation's body: 1 to :data:`MAX_CORRECTION_TEXT` characters; line feeds and
tabs allowed, no other control, separator or bidi control character, not blank."""

Actor = Annotated[
    str,
    StringConstraints(min_length=5, max_length=200, pattern=r"^(key|user|cli):."),
    AfterValidator(_one_line),
    Doc("actor (key:NAME, user:NAME or cli:LOGIN)"),
]
"""Who made a correction: ``key:<name>``, ``user:<name>`` or ``cli:<login>``."""

RequestId = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,64}$"),
    Doc("request id ([A-Za-z0-9._-], 1 to 64)"),
]
"""An HTTP request's id, as :func:`echo_archive.api.deps.request_id` keeps or makes it."""


class _CorrectionFields(EntryMeta):
    """The fields of every ``correction`` entry (one class per kind below)."""

    entry_type: ClassVar[str] = "correction"
    blob_roles: ClassVar[Mapping[str, type[BlobDocument] | None]] = {}

    source: Name = Field(description="The corrected item's source kind.")
    feed: Name = Field(description="The corrected item's feed.")
    native_id: Name = Field(description="The corrected item's id at the source.")
    entry: Index = Field(
        description="Log index of the item's current entry (item, version or tombstone) "
        "when the correction was made: the version the editor saw."
    )
    content_digest: Digest = Field(description="That entry's ``content_digest``.")
    previous: Index | None = Field(
        description="Log index of the item's latest correction when this one was written, "
        "or null for its first (the item's corrections, in log order)."
    )
    reason: Reason = Field(description="Why, in the editor's words (required).")
    text: CorrectionText | None = Field(
        description="An annotation's body, or a retraction's or reinstatement's notice; or null."
    )
    actor: Actor = Field(
        description="Who: ``key:<name>``, ``user:<name>`` (the HTTP API's principal) or "
        "``cli:<login>`` (``echoctl corrections add``)."
    )
    request_id: RequestId | None = Field(
        description="The HTTP request's id, or null (command line)."
    )
    at: Timestamp = Field(description="When the editor made it (the writer's request time).")


@register
class AnnotationMeta(_CorrectionFields):
    """An editor's note on an item, with a reason; no blob. The item is unchanged.

    DESIGN.md invariants 1 and 10: a correction is a new entry that names
    the item (``source``, ``feed``, ``native_id``) and the entry the editor
    saw; nothing of the item is rewritten. Written by
    :func:`echo_archive.services.corrections.correct_item` through the
    vault's writer. An annotation is allowed in every state of the item,
    retracted included, any number of times. A correction is its own audit
    record (issue 11, "retroactive correction with full audit"): it carries
    the actor, the reason, the request id and the time, in the same Merkle
    log, so no ``audit`` entry is written beside it.
    """

    kind_value: ClassVar[str | None] = "annotation"

    kind: Literal["annotation"] = Field(default="annotation", description="``annotation``.")


@register
class RetractionMeta(_CorrectionFields):
    """An editor retracts an item, with a reason: the archive no longer stands behind it; no blob.

    The item's entries stay in the log and provable (invariant 1): its
    history shows it ``retracted`` from this entry on. Refused (by
    :func:`echo_archive.services.corrections.correct_item`, under the
    writer lock) when the item is already retracted: the latest of its
    retractions and reinstatements is a retraction. Readers derive the
    state the same way, from the latest of them in log order, so a log
    written by another tool that broke the rule still reads one way.
    """

    kind_value: ClassVar[str | None] = "retraction"

    kind: Literal["retraction"] = Field(default="retraction", description="``retraction``.")


@register
class ReinstatementMeta(_CorrectionFields):
    """An editor withdraws an item's retraction, with a reason; no blob.

    The retraction stays in the log (a correction is never rewritten
    either): the item is no longer ``retracted`` from this entry on.
    Refused when the item is not retracted.
    """

    kind_value: ClassVar[str | None] = "reinstatement"

    kind: Literal["reinstatement"] = Field(
        default="reinstatement", description="``reinstatement``."
    )
