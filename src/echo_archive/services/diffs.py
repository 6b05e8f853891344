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

from echo_archive.services.items import ItemHistory

__all__ = ["TEXT_FIELDS", "VersionDiff", "version_diffs"]

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
        if entry.item is None:  # a tombstone: the content ends here
            diffs.append(VersionDiff(previous.index, entry.index, entry.type))
            continue
        old = previous.item or {}
        fields: list[str] = []
        lines: list[str] = []
        for name in TEXT_FIELDS:
            before, after = _field_lines(old, name), _field_lines(entry.item, name)
            if before == after:
                continue
            fields.append(name)
            lines.extend(
                difflib.unified_diff(
                    before,
                    after,
                    fromfile=f"entry {previous.index} {name}",
                    tofile=f"entry {entry.index} {name}",
                    lineterm="",
                )
            )
        diffs.append(VersionDiff(previous.index, entry.index, entry.type, fields, lines))
        previous = entry
    return diffs
