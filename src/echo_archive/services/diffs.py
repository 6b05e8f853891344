"""What changed between an item's versions: unified diffs of its text fields.

Each pair of consecutive contents of an item's history (its ``item`` entry,
then each ``version``, oldest first) gives one :class:`VersionDiff`: for each
text field that differs, a unified diff (:func:`difflib.unified_diff`, the
format of POSIX ``diff -u``) of the field's lines, the older entry as
``---`` and the newer as ``+++``. ``extra`` (the source-specific fields) is
compared as indented JSON with sorted keys. A tombstone has no content: it
ends the history, and is reported as the last step with no diff lines.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from echo_archive.errors import RequestError
from echo_archive.services.items import HistoryEntry, ItemHistory

__all__ = ["TEXT_FIELDS", "VersionDiff", "diff_between", "version_diffs"]

TEXT_FIELDS: Final = ("title", "url", "author", "published_at", "text", "extra")
"""The item fields compared, in the order their diffs are given."""


@dataclass(frozen=True, slots=True)
class VersionDiff:
    """What changed from one entry of an item's history to the next.

    Attributes:
        older: the log index of the older content entry.
        newer: the log index of the newer entry (a version, or a tombstone).
        type: the newer entry's type (``version`` or ``tombstone``).
        fields: the names of the fields that differ, in :data:`TEXT_FIELDS` order.
        lines: the unified diff lines (no line ends), field after field.
    """

    older: int
    newer: int
    type: str
    fields: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """``{"older", "newer", "type", "fields", "lines"}``."""
        return {
            "older": self.older,
            "newer": self.newer,
            "type": self.type,
            "fields": list(self.fields),
            "lines": list(self.lines),
        }


def _field_lines(doc: Mapping[str, Any], name: str) -> list[str]:
    value = doc.get(name)
    if value is None or value == "":
        return []
    if name == "extra":
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).splitlines()
    return str(value).splitlines()


def _diff(older: HistoryEntry, newer: HistoryEntry) -> VersionDiff:
    """What changed from the content entry ``older`` to ``newer`` (a tombstone: no lines)."""
    if newer.item is None:  # a tombstone: the content ends here
        return VersionDiff(older.index, newer.index, newer.type)
    old = older.item or {}
    fields: list[str] = []
    lines: list[str] = []
    for name in TEXT_FIELDS:
        before, after = _field_lines(old, name), _field_lines(newer.item, name)
        if before == after:
            continue
        fields.append(name)
        lines.extend(
            difflib.unified_diff(
                before,
                after,
                fromfile=f"entry {older.index} {name}",
                tofile=f"entry {newer.index} {name}",
                lineterm="",
            )
        )
    return VersionDiff(older.index, newer.index, newer.type, fields, lines)


def version_diffs(history: ItemHistory) -> list[VersionDiff]:
    """The diffs between consecutive entries of an item's history, oldest first.

    Args:
        history: from :func:`echo_archive.services.items.item_history`.

    Returns:
        One diff per step after the first entry (empty for an item of one
        content and no tombstone).
    """
    steps = list(reversed(history.history))  # oldest first
    diffs: list[VersionDiff] = []
    previous = steps[0] if steps else None
    for entry in steps[1:]:
        assert previous is not None
        diffs.append(_diff(previous, entry))
        if entry.item is not None:
            previous = entry
    return diffs


def diff_between(history: ItemHistory, older: int, newer: int) -> VersionDiff:
    """What changed from one entry of an item's history to another (any two, by log index).

    Args:
        history: from :func:`echo_archive.services.items.item_history`.
        older: the log index of the entry to compare from (content: an
            ``item`` or ``version`` entry).
        newer: the log index of the entry to compare to (any entry of the
            history; a tombstone gives a diff with no lines).

    Returns:
        The diff (``older`` as ``---``, ``newer`` as ``+++``, unified diff of
        each text field that differs).

    Raises:
        RequestError: an index is not an entry of this item's history, or
            ``older`` is a tombstone (it has no content to compare from); the
            message lists the item's entries.
    """
    by_index = {h.index: h for h in history.history}
    listed = ", ".join(f"{h.index} ({h.type})" for h in reversed(history.history))
    for name, index in (("from", older), ("to", newer)):
        if index not in by_index:
            raise RequestError(
                f"{name} {index}: not an entry of item {history.key}; its entries: {listed}"
            )
    if by_index[older].item is None:
        raise RequestError(
            f"from {older}: a tombstone has no content to compare from; its entries: {listed}"
        )
    return _diff(by_index[older], by_index[newer])
