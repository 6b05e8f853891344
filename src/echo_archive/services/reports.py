"""Saved harvest reports: the report of every cycle, kept in the vault (operational state).

Each :func:`~echo_archive.services.harvesting.harvest_once` saves its report
(:meth:`echo_archive.harvest.cycle.HarvestReport.to_json`) with an id that
grows with each cycle. They are listed newest first, in keyset pages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from echo_archive.errors import NotFoundError
from echo_archive.harvest.cycle import FeedReport, HarvestReport
from echo_archive.harvest.state import HarvestState
from echo_archive.services.paging import (
    Page,
    check_limit,
    decode_cursor,
    encode_cursor,
    fingerprint,
)
from echo_archive.vault.vault import Vault

__all__ = ["ReportSummary", "SavedReport", "get_report", "list_reports"]

_QUERY = fingerprint({"listing": "harvest_reports", "order": "newest"})


@dataclass(frozen=True, slots=True)
class ReportSummary:
    """A saved report as listed.

    Attributes:
        id: the report's id (grows with each cycle).
        started_at: when its cycle started (RFC 3339 UTC).
        feeds: how many feeds the cycle ran.
        failed: how many of them failed.
        seconds: the cycle's wall time.
        interrupted: True when a stop signal cut it short.
    """

    id: int
    started_at: str
    feeds: int
    failed: int
    seconds: float
    interrupted: bool

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping (the attribute names as keys)."""
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class SavedReport:
    """A saved report: its id and the report's JSON (``started_at``, ``feeds``, ...)."""

    id: int
    report: Mapping[str, Any]

    def harvest_report(self) -> HarvestReport:
        """The report as a :class:`~echo_archive.harvest.cycle.HarvestReport` (to render it).

        Keys the dataclasses do not know (from a later version) are left out;
        missing ones take their defaults.
        """
        feed_keys = {f.name for f in fields(FeedReport)}
        top_keys = {f.name for f in fields(HarvestReport)} - {"feeds"}
        feeds = [
            FeedReport(**{k: v for k, v in f.items() if k in feed_keys})
            for f in self.report.get("feeds", [])
            if isinstance(f, Mapping) and "name" in f and "source" in f
        ]
        top = {k: v for k, v in self.report.items() if k in top_keys}
        top.setdefault("started_at", "")
        return HarvestReport(**top, feeds=feeds)


def _summary(report_id: int, started_at: str, doc: Mapping[str, Any] | None) -> ReportSummary:
    feeds = [f for f in (doc or {}).get("feeds", []) if isinstance(f, Mapping)]
    return ReportSummary(
        id=report_id,
        started_at=started_at,
        feeds=len(feeds),
        failed=sum(bool(f.get("failed")) for f in feeds),
        seconds=float((doc or {}).get("seconds") or 0.0),
        interrupted=bool((doc or {}).get("interrupted")),
    )


def list_reports(
    vault: Vault, *, limit: int = 50, cursor: str | None = None
) -> Page[ReportSummary]:
    """One page of saved reports, newest first.

    Args:
        vault: an open vault (a reader is enough).
        limit: entries per page, 1 to :data:`~echo_archive.services.paging.MAX_LIMIT`.
        cursor: the ``next`` of the previous page.

    Raises:
        RequestError: a bad ``limit``.
        CursorError: the cursor is malformed or is another listing's.
    """
    check_limit(limit)
    before = None if cursor is None else decode_cursor(cursor, _QUERY)
    state = HarvestState(vault.catalog)
    rows = state.reports(before=before, limit=limit + 1)
    entries = [_summary(i, started, state.report(i)) for i, started in rows[:limit]]
    token = encode_cursor(entries[-1].id, _QUERY) if len(rows) > limit else None
    return Page(entries=entries, next=token)


def get_report(vault: Vault, report_id: int) -> SavedReport:
    """The saved report ``report_id``.

    Raises:
        NotFoundError: no report has that id.
    """
    report = HarvestState(vault.catalog).report(report_id)
    if report is None:
        raise NotFoundError(f"no saved harvest report {report_id}")
    return SavedReport(report_id, report)
