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

from collections.abc import Mapping
from typing import ClassVar, Literal

from pydantic import Field

from echo_archive.schemas.base import (
    BlobDocument,
    Count,
    Digest,
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
    "AuditMeta",
    "FileCapture",
    "HttpCapture",
    "InterventionMeta",
    "ItemBlob",
    "ItemMeta",
    "ItemMetaV2",
    "RemovedItemMeta",
    "RepairMeta",
    "TombstoneMeta",
    "VersionMeta",
    "VersionMetaV2",
    "WithdrawnMeta",
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
