"""Health checks of a vault and of the service running it (``echoctl health``, ``/status``).

:func:`run_checks` runs every check and returns a :class:`HealthReport`:
one :class:`CheckResult` per check, each with a :class:`Severity` (``ok`` <
``warning`` < ``critical``), a one-line summary (source text made inert), JSON
details and the name of the repair (:mod:`echo_archive.control.repair`) that
would fix it, if one does. The checks, by name:

``disk_free``
    Free space of the vault's filesystem against ``[health]``'s warning and
    critical thresholds (the smaller of a fraction of the total and a number
    of bytes), and the days until full projected from the vault's growth: a
    least-squares line through the vault size samples of the last
    ``growth_window`` seconds (recorded at most every ``size_sample_interval``
    seconds in ``health_samples``, :mod:`echo_archive.control.state`).
``quick_check``
    ``PRAGMA quick_check`` of each SQLite database (the catalog, the blob
    store's): "ok" or the problems it lists (https://www.sqlite.org/pragma.html#pragma_quick_check:
    like ``integrity_check`` in O(N) but without checking that index content
    matches table content). A write-ahead log above :data:`WAL_REPAIR_BYTES`
    is a warning whose repair checkpoints it. In the quick pass a blob
    database larger than :data:`QUICK_CHECK_FULL_BYTES` gets a bounded,
    rotating check instead (a whole ``quick_check`` of 10^6 blobs takes
    over 30 s): each pass reads, from a cursor kept in ``health_state``,
    the rows of its ``blobs`` table in ``id`` order and as many entries of
    its digest index in digest order, with ``PRAGMA cell_size_check`` on,
    for at most :data:`QUICK_BLOB_BUDGET` seconds. Reading a page makes
    SQLite check its b-tree structure (a malformed page is an error), and
    each row's columns are checked against the schema (a 32-byte digest,
    sizes, ``zsize`` the length of ``data``). The pass is paced like the
    incremental verify (the rows it is behind ``verify_period`` by, plus 1%
    of them), so the whole database is read within ``verify_period`` and
    usually far sooner. What only a whole ``quick_check`` finds (the free
    list, pages no b-tree uses) is checked by every full pass
    (``echoctl health`` without ``--quick``, the service's every
    ``[service] verify_every``), which keeps the whole ``quick_check`` of
    every database.
``incremental_verify`` (not with ``quick``)
    Every entry logged since the last run is verified
    (:func:`~echo_archive.vault.verify.verify_entries`: schema, leaf hash,
    blob index rows, blobs present, every checkpoint reached signed and
    recomputed), then blobs are re-hashed in ascending digest order from a
    rotating cursor, so that the whole blob store is re-read within
    ``verify_period`` (restic ``check --read-data-subset``: a different
    subset each run until all was read): each run re-hashes the blobs its
    pass is behind schedule by, plus 1% of the store, within
    ``verify_budget`` seconds (a quarter of it kept for the blobs).
``derived_indexes`` (not with ``quick``)
    The derived indexes compared with a rebuild of a ``derived_sample`` of
    the entries (:func:`~echo_archive.vault.verify.verify_derived`, the
    comparison ``echoctl verify`` makes); a differing row is a warning fixed
    by ``rebuild_derived`` (derived state is rebuildable, invariant 8).
``breakers``
    Stored per-host circuit breakers: OPEN or FORCED_OPEN is a warning; an
    OPEN one whose wait has passed is half-opened by ``half_open_breakers``.
``stale_feeds``
    An enabled feed with no successful harvest for ``stale_intervals`` of its
    intervals (``feed_runs``; a feed that never succeeded counts from its
    first saved report).
``silent_feeds``
    A feed that usually yields items (new, versions, tombstones) suddenly
    yields none: see :class:`~echo_archive.config.HealthSection`; runs that
    were all 304 Not Modified count as neither.
``parse_errors``
    A feed's parse errors over its captures in its recent runs.
``clock``
    The system clock against the newest checkpoint's signing time and the
    last health run: time going backwards is critical.
``unsealed_tail``
    Entries logged but not covered by a checkpoint (a crash between the
    catalog commit and the checkpoint): a warning fixed by ``seal_tail``.
``temp_files``
    Temporary files of failed writes older than ``temp_min_age`` seconds
    (``blobs/large/.tmp-*``, ``blobs/tmp/.tmp-*``, the vault's own
    ``.<name>.tmp-*`` and ``.<name>.<hex>.tmp``): fixed by ``remove_temp_files``.
``writer``, ``memory``, ``event_loop``
    What only a running service knows (:class:`RuntimeStats`): writer queue
    depth and p95 commit latency, resident memory growth after warm-up,
    event-loop lag. Without a service: ``ok``, "not running in a service".

A check that fails to run (a file cannot be read) is critical, naming why.
"""

from __future__ import annotations

import enum
import math
import os
import re
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Final, NamedTuple

from echo_archive.config import HealthSection, load_config
from echo_archive.control.state import HealthState, VerifyProgress
from echo_archive.errors import BlobError, EchoError, VaultLockedError
from echo_archive.harvest.engine import FetchConfig
from echo_archive.harvest.state import HarvestState
from echo_archive.services.harvesting import breaker_views
from echo_archive.services.vaults import open_vault
from echo_archive.terminal import inert
from echo_archive.vault.catalog import readonly_uri
from echo_archive.vault.vault import BLOBS_DIR, CATALOG_FILE, CONFIG_FILE, Vault
from echo_archive.vault.verify import verify_derived, verify_entries
from echo_archive.vault.writer import VaultWriter

__all__ = [
    "CHECKS",
    "WAL_REPAIR_BYTES",
    "CheckResult",
    "DiskUsage",
    "HealthConfig",
    "HealthReport",
    "RuntimeStats",
    "Severity",
    "disk_critical",
    "disk_pressure",
    "disk_thresholds",
    "run_checks",
    "temp_files",
]

CHECKS: Final = (
    "disk_free",
    "quick_check",
    "incremental_verify",
    "derived_indexes",
    "breakers",
    "stale_feeds",
    "silent_feeds",
    "parse_errors",
    "clock",
    "unsealed_tail",
    "temp_files",
    "writer",
    "memory",
    "event_loop",
)
"""Every check's name, in the order :func:`run_checks` reports them."""

WAL_REPAIR_BYTES: Final = 64 * 1024 * 1024
"""A write-ahead log above this many bytes is a ``quick_check`` warning (``optimize_databases``)."""

QUICK_CHECK_FULL_BYTES: Final = 128 * 1024 * 1024
"""A blob database up to this size gets a whole ``PRAGMA quick_check`` in the quick pass too.

About 4 s of ``quick_check`` (1.2 GB of 10^6 blobs took 35 s on the
development machine); a larger one gets the rotating check in the quick pass.
"""

QUICK_BLOB_BUDGET: Final = 5.0
"""Seconds the quick pass's rotating check of a large blob database may take."""

QUICK_STATE: Final = "quick_check"
"""The ``health_state`` name of the rotating check's cursors (:class:`_BlobDbCursor`)."""

_STATEFUL: Final = ("incremental_verify", "disk_free", "quick_check")
"""The checks whose details say whether what they remember was saved."""

REPORT_SCAN: Final = 500
"""At most this many saved harvest reports, newest first, are read for the feed checks."""

_NOT_IN_SERVICE: Final = "not running in a service"


class Severity(enum.IntEnum):
    """How bad a check's finding is; ordered, so ``max`` gives the worst."""

    OK = 0
    WARNING = 1
    CRITICAL = 2

    @property
    def label(self) -> str:
        """``ok``, ``warning`` or ``critical``."""
        return self.name.lower()


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check.

    Attributes:
        name: the check's stable snake_case name (one of :data:`CHECKS`).
        severity: how bad.
        summary: one line for a person; source text in it is made inert
            (:func:`echo_archive.terminal.inert`).
        details: JSON-ready facts (exact strings, counts, bytes, seconds).
        repair: the name of the repair that would fix it
            (:data:`echo_archive.control.repair.REPAIRS`), or None.
    """

    name: str
    severity: Severity
    summary: str
    details: Mapping[str, Any] = field(default_factory=dict)
    repair: str | None = None

    def to_json(self) -> dict[str, Any]:
        """``{"name", "severity": "ok"|"warning"|"critical", "summary", "details", "repair"}``."""
        return {
            "name": self.name,
            "severity": self.severity.label,
            "summary": self.summary,
            "details": dict(self.details),
            "repair": self.repair,
        }


@dataclass(frozen=True)
class HealthReport:
    """Every check's result at one time.

    Attributes:
        checks: the results, in :data:`CHECKS` order (``quick`` leaves two out).
        at: POSIX seconds the checks ran at.
    """

    checks: tuple[CheckResult, ...]
    at: float

    @property
    def worst(self) -> Severity:
        """The highest severity of any check (``OK`` with none)."""
        return max((c.severity for c in self.checks), default=Severity.OK)

    def check(self, name: str) -> CheckResult | None:
        """The result of check ``name``, or None when it did not run."""
        return next((c for c in self.checks if c.name == name), None)

    def to_json(self) -> dict[str, Any]:
        """``{"at": seconds, "worst": label, "checks": [CheckResult.to_json()...]}``."""
        return {
            "at": self.at,
            "worst": self.worst.label,
            "checks": [c.to_json() for c in self.checks],
        }


@dataclass(frozen=True)
class RuntimeStats:
    """What only a running service knows; every field optional (None or empty: unknown).

    Attributes:
        writer_queue_depth: jobs queued on the vault's writer.
        commit_latency_p95_s: 95th percentile commit latency, seconds.
        event_loop_lag_s: the event loop's current lag, seconds.
        rss_bytes_history: ``(POSIX seconds, resident bytes)`` samples of the
            process since it started, oldest first.
    """

    writer_queue_depth: int | None = None
    commit_latency_p95_s: float | None = None
    event_loop_lag_s: float | None = None
    rss_bytes_history: Sequence[tuple[float, int]] = ()


class DiskUsage(NamedTuple):
    """A filesystem's size, as :func:`shutil.disk_usage` returns it (bytes)."""

    total: int
    used: int
    free: int


_DEFAULTS: Final = HealthSection()


@dataclass(frozen=True)
class HealthConfig:
    """Thresholds and budgets of the checks (``[health]`` of ``echo.toml``).

    Every field but ``disk_usage`` is a key of ``[health]``, with the same
    meaning and default (:class:`~echo_archive.config.HealthSection` documents
    each: times in seconds, sizes in bytes). ``disk_usage`` replaces
    :func:`shutil.disk_usage` (a callable of the vault path returning
    :class:`DiskUsage`-like ``(total, used, free)`` bytes), for tests and for
    a service that measures space its own way; it is not read from TOML.
    """

    disk_warning_free_fraction: float = _DEFAULTS.disk_warning_free_fraction
    disk_critical_free_fraction: float = _DEFAULTS.disk_critical_free_fraction
    disk_warning_free_bytes: int = _DEFAULTS.disk_warning_free_bytes
    disk_critical_free_bytes: int = _DEFAULTS.disk_critical_free_bytes
    disk_warning_days: float = _DEFAULTS.disk_warning_days
    disk_critical_days: float = _DEFAULTS.disk_critical_days
    size_sample_interval: float = _DEFAULTS.size_sample_interval
    growth_window: float = _DEFAULTS.growth_window
    verify_period: float = _DEFAULTS.verify_period
    verify_budget: float = _DEFAULTS.verify_budget
    derived_sample: float = _DEFAULTS.derived_sample
    stale_intervals: float = _DEFAULTS.stale_intervals
    silent_runs: int = _DEFAULTS.silent_runs
    silent_history: int = _DEFAULTS.silent_history
    silent_usual_fraction: float = _DEFAULTS.silent_usual_fraction
    parse_error_rate: float = _DEFAULTS.parse_error_rate
    parse_error_runs: int = _DEFAULTS.parse_error_runs
    parse_error_min_captures: int = _DEFAULTS.parse_error_min_captures
    writer_queue_warning: int = _DEFAULTS.writer_queue_warning
    commit_latency_warning: float = _DEFAULTS.commit_latency_warning
    memory_growth: float = _DEFAULTS.memory_growth
    memory_warmup: float = _DEFAULTS.memory_warmup
    loop_lag_warning: float = _DEFAULTS.loop_lag_warning
    loop_lag_critical: float = _DEFAULTS.loop_lag_critical
    temp_min_age: float = _DEFAULTS.temp_min_age
    clock_tolerance: float = _DEFAULTS.clock_tolerance
    state_wait: float = _DEFAULTS.state_wait
    report_retention: int = _DEFAULTS.report_retention
    orphan_grace: float = _DEFAULTS.orphan_grace
    disk_usage: Callable[[Path], tuple[int, int, int]] | None = None

    @classmethod
    def from_section(
        cls,
        section: HealthSection,
        *,
        disk_usage: Callable[[Path], tuple[int, int, int]] | None = None,
    ) -> HealthConfig:
        """The configuration of a ``[health]`` section (and an optional ``disk_usage``)."""
        values = {f.name: getattr(section, f.name) for f in fields(cls) if f.name != "disk_usage"}
        return cls(**values, disk_usage=disk_usage)

    @classmethod
    def load(cls, vault_path: Path) -> HealthConfig:
        """The ``[health]`` section of the vault's ``echo.toml`` (defaults where absent).

        Raises:
            ConfigError: ``echo.toml`` is missing or invalid (an unknown
                ``[health]`` key, a bad value: the message names the key).
        """
        return cls.from_section(load_config(Path(vault_path) / CONFIG_FILE).health)


def disk_thresholds(total: int, config: HealthConfig) -> tuple[int, int]:
    """``(warning_below, critical_below)``: free bytes under which disk is a warning, critical.

    Each threshold is the smaller of its fraction of the file system and its
    byte count (``[health] disk_*_free_fraction`` and ``disk_*_free_bytes``):
    a small disk is judged by the fraction, a large one by the bytes.

    Args:
        total: the file system's size, bytes.
        config: the thresholds.
    """
    warn = min(config.disk_warning_free_fraction * total, config.disk_warning_free_bytes)
    crit = min(config.disk_critical_free_fraction * total, config.disk_critical_free_bytes)
    return int(warn), int(crit)


def disk_pressure(free: int, total: int, config: HealthConfig) -> Severity:
    """How short free space is now (no projection): the one rule the service pauses by.

    ``critical`` below the critical threshold, ``warning`` below the warning
    one, else ``ok`` (:func:`disk_thresholds`). The service pauses
    harvesting at ``critical`` and resumes only at ``ok`` (the gap between
    the two thresholds is the hysteresis, so it does not flap). The
    ``disk_free`` check adds the days-until-full projection on top.

    Args:
        free: free bytes (``shutil.disk_usage(...).free``).
        total: the file system's size, bytes.
        config: the thresholds.
    """
    warn, crit = disk_thresholds(total, config)
    if free < crit:
        return Severity.CRITICAL
    if free < warn:
        return Severity.WARNING
    return Severity.OK


def disk_critical(report: HealthReport) -> bool:
    """Whether the report's ``disk_free`` check found free space critical now.

    A projection alone ("full in 0.5 days") makes the check critical but is
    not this: harvesting pauses only when space is short now
    (:func:`disk_pressure`).

    Args:
        report: a report of :func:`run_checks`.

    Returns:
        True when ``disk_free`` ran and its free bytes are below its critical threshold.
    """
    result = report.check("disk_free")
    if result is None or result.severity is not Severity.CRITICAL:
        return False
    free, below = result.details.get("free_bytes"), result.details.get("critical_below_bytes")
    if isinstance(free, int) and isinstance(below, int):
        return free < below
    return True  # the check could not run: it named the error; treat as critical


# ---------------------------------------------------------------------------- running


@dataclass
class _Run:
    """What the checks of one :func:`run_checks` share."""

    path: Path
    vault: Vault
    config: HealthConfig
    now: float
    runtime: RuntimeStats
    health: HealthState
    quick: bool = False
    writes: list[Callable[[Vault], None]] = field(default_factory=list)
    _reports: list[dict[str, Any]] | None = None

    def reports(self) -> list[dict[str, Any]]:
        """The saved harvest reports, newest first (at most :data:`REPORT_SCAN`)."""
        if self._reports is None:
            state = HarvestState(self.vault.catalog)
            found = []
            for report_id, _ in state.reports(limit=REPORT_SCAN):
                doc = state.report(report_id)
                if doc is not None:
                    found.append(doc)
            self._reports = found
        return self._reports

    def feed_runs(self, name: str) -> Iterator[dict[str, Any]]:
        """The saved runs of feed ``name``, newest first (its part of each report)."""
        for report in self.reports():
            for feed in report.get("feeds", []):
                if isinstance(feed, dict) and feed.get("name") == name:
                    yield {**feed, "_started_at": report.get("started_at", "")}


def run_checks(
    vault_path: Path,
    *,
    config: HealthConfig | None = None,
    now: float | None = None,
    runtime: RuntimeStats | None = None,
    quick: bool = False,
    writer: VaultWriter | None = None,
    save: bool = True,
) -> HealthReport:
    """Run every health check of the vault at ``vault_path`` (see the module docstring).

    The vault is read through a read-only view (no lock; never waits for the
    writer). What the checks remember (the incremental verify's progress, a
    vault size sample when one is due) is written afterwards through
    ``writer`` when given (the service's single writer), else through a
    writer opened for a moment (waiting up to ``state_wait`` seconds for the
    writer lock). That write is skipped, and said in the ``incremental_verify``
    and ``disk_free`` details (``state_saved: false``, ``state_note``), when
    the lock stays busy or when the vault has an unsealed tail (a writer
    opening the vault would seal it: that is ``echoctl repair``'s job, on the
    record).

    Args:
        vault_path: the vault directory.
        config: thresholds and budgets (default: ``[health]`` of its ``echo.toml``).
        now: POSIX seconds to judge by (default: the clock); tests move it.
        runtime: what the running service knows (default: nothing).
        quick: skip ``incremental_verify`` and ``derived_indexes``, and check
            a large blob database by its rotating, bounded check (the
            service's frequent pass; reads no entry or blob in bulk).
        writer: the vault's writer in this process, to save state through.
        save: save what the checks remember (False: write nothing at all, as
            ``echoctl repair --dry-run`` does; the next run repeats this one's
            incremental verify).

    Returns:
        The report; ``report.worst`` is the worst severity.

    Raises:
        VaultNotFoundError, VaultFormatError: there is no vault, or not one.
        ConfigError: ``echo.toml`` is invalid (when ``config`` is not given).
        StorageError: the catalog cannot be opened at all.
    """
    path = Path(vault_path)
    at = time.time() if now is None else now
    results: list[CheckResult] = []
    with open_vault(path) as vault:
        config = HealthConfig.load(path) if config is None else config
        run = _Run(
            path, vault, config, at, runtime or RuntimeStats(), HealthState(vault.catalog), quick
        )
        checks: list[tuple[str, Callable[[_Run], CheckResult]]] = [
            ("disk_free", _disk_free),
            ("quick_check", _quick_check),
        ]
        if not quick:
            checks += [("incremental_verify", _incremental_verify), ("derived_indexes", _derived)]
        checks += [
            ("breakers", _breakers),
            ("stale_feeds", _stale_feeds),
            ("silent_feeds", _silent_feeds),
            ("parse_errors", _parse_errors),
            ("clock", _clock),
            ("unsealed_tail", _unsealed_tail),
            ("temp_files", _temp_files),
            ("writer", _writer),
            ("memory", _memory),
            ("event_loop", _event_loop),
        ]
        for name, check in checks:
            results.append(_guarded(name, check, run))
        tail = next(r for r in results if r.name == "unsealed_tail")
        if run.writes and not save:
            results = [
                replace(r, details={**r.details, "state_saved": False, "state_note": "not saved"})
                if r.name in _STATEFUL
                else r
                for r in results
            ]
        elif run.writes:
            saved, note = _save(path, run.writes, writer, config, tail.severity is not Severity.OK)
            if not saved:
                results = [
                    replace(r, details={**r.details, "state_saved": False, "state_note": note})
                    if r.name in _STATEFUL
                    else r
                    for r in results
                ]
    return HealthReport(tuple(results), at)


def _guarded(name: str, check: Callable[[_Run], CheckResult], run: _Run) -> CheckResult:
    """Run one check; one that raises is critical, naming the error (the others go on)."""
    try:
        return check(run)
    except (EchoError, OSError, sqlite3.Error, ValueError) as exc:
        return CheckResult(
            name,
            Severity.CRITICAL,
            f"the check could not run: {inert(str(exc))}",
            {"error": str(exc), "error_type": type(exc).__name__},
        )


def _save(
    path: Path,
    writes: list[Callable[[Vault], None]],
    writer: VaultWriter | None,
    config: HealthConfig,
    unsealed: bool,
) -> tuple[bool, str]:
    """Run the state writes through ``writer`` or a short writer; ``(saved, why not)``."""

    def job(vault: Vault) -> None:
        with vault.writing():
            for write in writes:
                write(vault)

    if writer is not None:
        writer.submit(job).result()
        return True, ""
    if unsealed:
        return False, "not saved: the vault has an unsealed tail (`echoctl repair` seals it)"
    try:
        with Vault.open(path, wait=config.state_wait) as vault:
            job(vault)
    except VaultLockedError as exc:
        return False, f"not saved: {exc}"
    return True, ""


def _rfc3339(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text).timestamp()
    except (TypeError, ValueError):
        return None


def _mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


# ---------------------------------------------------------------------------- disk


def vault_bytes(path: Path) -> int:
    """The bytes of every file under the vault directory (symlinks not followed).

    Raises:
        OSError: the directory cannot be read.
    """
    total = 0
    stack = [path]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
                    elif entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
                except FileNotFoundError:
                    continue  # removed while walking (a temporary file)
    return total


def _slope(points: Sequence[tuple[float, int]]) -> float | None:
    """Least-squares bytes per second through ``(time, bytes)`` points, or None (< 2 times)."""
    if len(points) < 2:
        return None
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mb = sum(b for _, b in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    if var <= 0:
        return None
    return sum((t - mt) * (b - mb) for t, b in points) / var


def _disk_free(run: _Run) -> CheckResult:
    cfg = run.config
    usage = (cfg.disk_usage or shutil.disk_usage)(run.path)
    total, _, free = (int(usage[0]), int(usage[1]), int(usage[2]))
    warn_below, crit_below = disk_thresholds(total, cfg)
    last = run.health.last_sample()
    samples = run.health.samples(run.now - cfg.growth_window)
    points = [(t, b) for t, b, _ in samples if t <= run.now]
    size: int | None = None
    if last is None or run.now - last[0] >= cfg.size_sample_interval or run.now < last[0]:
        size = vault_bytes(run.path)
        points.append((run.now, size))
        at, keep = run.now, run.now - 2 * cfg.growth_window
        sample = (at, size, free)
        run.writes.append(lambda v: HealthState(v.catalog).add_sample(*sample, keep_since=keep))
    elif points:
        size = points[-1][1]
    slope = _slope(points)
    days = None if slope is None or slope <= 0 else free / slope / 86400.0
    severity = disk_pressure(free, total, cfg)
    why = []
    if severity is Severity.CRITICAL:
        why.append(f"below the critical {_mib(crit_below)}")
    elif severity is Severity.WARNING:
        why.append(f"below the warning {_mib(warn_below)}")
    if days is not None:
        if days < cfg.disk_critical_days:
            severity = Severity.CRITICAL
            why.append(f"full in {days:.1f} days at the vault's growth")
        elif days < cfg.disk_warning_days:
            severity = max(severity, Severity.WARNING)
            why.append(f"full in {days:.1f} days at the vault's growth")
    fraction = free / total if total else 0.0
    summary = f"{_mib(free)} free ({fraction:.1%})"
    if days is not None and not why:
        summary += f", about {days:.0f} days until full"
    if why:
        summary += ": " + "; ".join(why)
    details = {
        "total_bytes": total,
        "free_bytes": free,
        "free_fraction": fraction,
        "warning_below_bytes": int(warn_below),
        "critical_below_bytes": int(crit_below),
        "vault_bytes": size,
        "growth_bytes_per_day": None if slope is None else slope * 86400.0,
        "days_until_full": days,
        "samples": len(points),
    }
    return CheckResult("disk_free", severity, summary, details)


# ---------------------------------------------------------------------------- SQLite


def databases(path: Path) -> list[Path]:
    """The vault's SQLite databases: the catalog, and the blob store's when it has one."""
    found = [path / CATALOG_FILE]
    blobs_db = path / BLOBS_DIR / "blobs.sqlite"
    if blobs_db.is_file():
        found.append(blobs_db)
    return found


def _quick_check(run: _Run) -> CheckResult:
    details: dict[str, Any] = {}
    bad: list[str] = []
    big_wal: list[str] = []
    for db in databases(run.path):
        rel = str(db.relative_to(run.path))
        started = time.perf_counter()
        rotating = run.quick and db.name == _BLOBS_DB and db.stat().st_size > QUICK_CHECK_FULL_BYTES
        rotation: dict[str, Any] = {}
        conn = sqlite3.connect(readonly_uri(db), uri=True)
        try:
            conn.execute("PRAGMA query_only = ON")
            if rotating:
                rows, rotation = _rotating_blob_check(conn, run)
            else:
                rows = [str(r[0]) for r in conn.execute("PRAGMA quick_check(20)")]
        except sqlite3.DatabaseError as exc:  # too damaged to check (or to read) at all
            rows = [f"cannot be checked: {exc}"]
        finally:
            conn.close()
        try:
            wal = Path(f"{db}-wal").stat().st_size
        except FileNotFoundError:
            wal = 0
        ok = rows == ["ok"]
        details[rel] = {
            "ok": ok,
            "messages": [] if ok else rows,
            "wal_bytes": wal,
            "seconds": time.perf_counter() - started,
            "mode": "rotating" if rotating else "quick_check",
            **rotation,
        }
        if not ok:
            bad.append(rel)
        if wal > WAL_REPAIR_BYTES:
            big_wal.append(f"{rel} ({_mib(wal)})")
    if bad:
        return CheckResult(
            "quick_check",
            Severity.CRITICAL,
            f"PRAGMA quick_check found problems in {', '.join(bad)}: restore it from a "
            "replica or backup; `echoctl verify` names what is affected",
            details,
        )
    if big_wal:
        return CheckResult(
            "quick_check",
            Severity.WARNING,
            f"every database is ok; large write-ahead log: {', '.join(big_wal)}",
            details,
            "optimize_databases",
        )
    return CheckResult("quick_check", Severity.OK, f"{len(details)} database(s) ok", details)


_BLOBS_DB: Final = "blobs.sqlite"


@dataclass(frozen=True)
class _BlobDbCursor:
    """Where the rotating check of the blob database is (``health_state`` ``quick_check``).

    Attributes:
        row: the last ``blobs.id`` read in the current pass (0: its start).
        digest: hex of the last digest index entry read (``""``: its start).
        pass_started: POSIX seconds the current pass began (0: never).
        pass_rows: rows read in the current pass.
        last_pass: POSIX seconds the last complete pass ended (0: none yet).
    """

    row: int = 0
    digest: str = ""
    pass_started: float = 0.0
    pass_rows: int = 0
    last_pass: float = 0.0

    @classmethod
    def from_json(cls, doc: object) -> _BlobDbCursor:
        if not isinstance(doc, dict):
            return cls()
        try:
            return cls(
                row=int(doc.get("row", 0)),
                digest=str(doc.get("digest", "")),
                pass_started=float(doc.get("pass_started", 0.0)),
                pass_rows=int(doc.get("pass_rows", 0)),
                last_pass=float(doc.get("last_pass", 0.0)),
            )
        except (TypeError, ValueError):
            return cls()


def _rotation_quota(total: int, pass_started: float, done: int, now: float, period: float) -> int:
    """How many of ``total`` items a rotating pass reads now to finish within ``period``.

    The items it is behind schedule by (a pass that began at ``pass_started``
    has read ``done``; by ``now`` it should have read ``total × elapsed /
    period``), plus :data:`_PASS_LEAD` of ``total`` (restic ``check
    --read-data-subset``: a different subset each run until all was read).
    """
    target = math.ceil(total * min(1.0, max(0.0, now - pass_started) / period))
    return max(0, target - done) + math.ceil(total * _PASS_LEAD)


def _row_problem(digest: object, size: object, zsize: object, data: object) -> str | None:
    """What is wrong with one ``blobs`` row's columns (vault/blobs.py's schema), or None."""
    if not isinstance(digest, bytes) or len(digest) != 32:
        return "digest is not 32 bytes"
    if not isinstance(size, int) or size < 0 or not isinstance(zsize, int) or zsize < 0:
        return "size or zsize is not a non-negative integer"
    if data is not None and (not isinstance(data, bytes) or len(data) != zsize):
        return "data is not zsize bytes"
    return None


def _rotating_blob_check(conn: sqlite3.Connection, run: _Run) -> tuple[list[str], dict[str, Any]]:
    """The quick pass's bounded check of a large blob database (see the module).

    Returns:
        ``(messages, details)``: ``["ok"]`` or the problems found, and what
        was read (rows, index entries, the pass's progress).

    Raises:
        sqlite3.DatabaseError: a page could not be read (malformed): the
            cursor is not moved, so the next pass reads the same place again.
    """
    conn.execute("PRAGMA cell_size_check = ON")
    state = _BlobDbCursor.from_json(run.health.get(QUICK_STATE))
    (total,) = conn.execute("SELECT count FROM blob_totals WHERE id = 0").fetchone() or (0,)
    pass_started = state.pass_started or run.now
    quota = _rotation_quota(
        int(total), pass_started, state.pass_rows, run.now, run.config.verify_period
    )
    deadline = time.monotonic() + QUICK_BLOB_BUDGET
    problems: list[str] = []
    row, rows, rows_wrapped = state.row, 0, False
    scan = conn.execute(
        "SELECT id, digest, size, zsize, data FROM blobs WHERE id > ? ORDER BY id", (row,)
    )
    for blob_id, digest, size, zsize, data in scan:
        if rows >= quota or time.monotonic() > deadline:
            break
        problem = _row_problem(digest, size, zsize, data)
        if problem is not None and len(problems) < 20:
            problems.append(f"blobs row {blob_id}: {problem}")
        row, rows = int(blob_id), rows + 1
    else:
        rows_wrapped = True
    scan.close()
    last = bytes.fromhex(state.digest) if state.digest else b""
    entries, index_wrapped = 0, False
    scan = conn.execute(
        # SQLite names the index of vault/blobs.py's "digest BLOB NOT NULL UNIQUE" so
        "SELECT digest FROM blobs INDEXED BY sqlite_autoindex_blobs_1 "
        "WHERE digest > ? ORDER BY digest",
        (last,),
    )
    for (digest,) in scan:
        if entries >= max(rows, 1):  # as many index entries as rows (cheap: ~0.1 µs each)
            break
        if not isinstance(digest, bytes) or digest <= last:
            if len(problems) < 20:
                problems.append("the digest index is out of order after " + last.hex())
            break
        last, entries = digest, entries + 1
    else:
        index_wrapped = True
    scan.close()
    pass_rows, last_pass = state.pass_rows + rows, state.last_pass
    if rows_wrapped:  # every row was read in this pass: the next one starts over
        row, pass_rows, last_pass, pass_started = 0, 0, run.now, run.now
    if index_wrapped:
        last = b""
    if not problems:
        new = _BlobDbCursor(row, last.hex(), pass_started, pass_rows, last_pass)
        run.writes.append(lambda v: HealthState(v.catalog).put(QUICK_STATE, asdict(new), run.now))
    details = {
        "rows_checked": rows,
        "index_entries_checked": entries,
        "rows_total": int(total),
        "pass_rows": pass_rows,
        "pass_complete": rows_wrapped,
        "last_pass": last_pass or None,
        "budget_seconds": QUICK_BLOB_BUDGET,
    }
    return (problems or ["ok"]), details


# ---------------------------------------------------------------------------- verify


_BLOB_SHARE: Final = 0.25
"""The part of ``verify_budget`` kept for re-hashing blobs when entries are many."""

_PASS_LEAD: Final = 0.01
"""Each run re-hashes this fraction of the blob store beyond its schedule."""


def _incremental_verify(run: _Run) -> CheckResult:
    cfg, vault = run.config, run.vault
    progress = run.health.progress()
    started = time.monotonic()
    deadline = started + cfg.verify_budget
    size, _ = vault.log_state()
    sealed = vault.latest_checkpoint().size
    problems: list[dict[str, str]] = []
    if progress.entries > size:
        problems.append(
            {
                "kind": "log",
                "ref": "log size",
                "message": f"the log holds {size} entries but {progress.entries} were "
                "verified before (entries deleted?)",
            }
        )
        report_entries, root = 0, b""
    else:
        first_root = bytes.fromhex(progress.root) if progress.entries and progress.root else None
        report, root = verify_entries(
            vault,
            progress.entries,
            sealed,
            first_root=first_root,
            deadline=deadline - _BLOB_SHARE * cfg.verify_budget,
        )
        report_entries = report.entries
        problems += [{"kind": p.kind, "ref": p.ref, "message": p.message} for p in report.problems]
    entries_done = progress.entries + (report_entries if not problems else 0)

    # the rotating pass over the blob store, ascending digests from the cursor
    total = vault.blobs.stats().count
    pass_started = progress.pass_started or run.now
    pass_blobs = progress.pass_blobs
    last_pass = progress.last_pass
    target = math.ceil(total * min(1.0, max(0.0, run.now - pass_started) / cfg.verify_period))
    quota = _rotation_quota(total, pass_started, pass_blobs, run.now, cfg.verify_period)
    cursor = bytes.fromhex(progress.blob_cursor) if progress.blob_cursor else b""
    checked = 0
    bad_blobs = 0
    wrapped = False
    digests = vault.blobs.iter_digests()
    for digest in digests:
        if digest <= cursor:
            continue
        if checked >= quota or time.monotonic() > deadline:
            break
        try:
            vault.blobs.check(digest)
        except BlobError as exc:
            bad_blobs += 1
            if len(problems) < 50:
                problems.append(
                    {"kind": "blob", "ref": "sha256:" + digest.hex(), "message": str(exc)}
                )
        cursor = digest
        checked += 1
    else:
        wrapped = True
    close = getattr(digests, "close", None)
    if close is not None:
        close()
    pass_blobs += checked
    if wrapped:  # the pass reached the last digest: every blob was re-read in it
        last_pass, pass_started, pass_blobs, cursor = run.now, run.now, 0, b""
    behind = not wrapped and pass_blobs < target
    new = VerifyProgress(
        entries=entries_done,
        root=root.hex() if not problems and root else progress.root,
        blob_cursor=cursor.hex(),
        pass_started=pass_started,
        pass_blobs=pass_blobs,
        last_pass=last_pass,
        last_run=run.now,
    )
    run.writes.append(lambda v: HealthState(v.catalog).put("verify", new.to_json(), run.now))
    seconds = time.monotonic() - started
    details = {
        "entries_verified": report_entries,
        "entries_verified_total": entries_done,
        "log_size": size,
        "checkpoint_size": sealed,
        "entries_pending": max(0, sealed - entries_done),
        "blobs_checked": checked,
        "blobs_total": total,
        "pass_started": pass_started,
        "pass_blobs": pass_blobs,
        "pass_complete": wrapped,
        "last_pass": last_pass or None,
        "behind_schedule": behind,
        "budget_seconds": cfg.verify_budget,
        "seconds": seconds,
        "problems": problems[:50],
    }
    if problems:
        first = problems[0]
        return CheckResult(
            "incremental_verify",
            Severity.CRITICAL,
            f"{len(problems)} problem(s), first: {inert(first['ref'])}: {inert(first['message'])}",
            details,
        )
    summary = (
        f"verified {report_entries} new entries and re-hashed {checked} blobs "
        f"({pass_blobs if not wrapped else total}/{total} of this pass)"
    )
    if sealed > entries_done or behind:
        why = []
        if sealed > entries_done:
            why.append(f"{sealed - entries_done} entries left for the next run")
        if behind:
            why.append(
                f"the blob pass is behind its {cfg.verify_period / 86400:.0f}-day schedule "
                f"({pass_blobs}/{target} blobs): raise [health] verify_budget"
            )
        severity = Severity.WARNING if behind else Severity.OK
        return CheckResult("incremental_verify", severity, summary + "; " + "; ".join(why), details)
    return CheckResult("incremental_verify", Severity.OK, summary, details)


def _derived(run: _Run) -> CheckResult:
    report = verify_derived(run.vault, sample=run.config.derived_sample)
    differing = sorted({p.ref.split(" ", 1)[0] for p in report.problems})
    details = {
        "sample": run.config.derived_sample,
        "indexes": report.derived,
        "differing": differing,
        "warnings": report.warnings,
        "problems": [
            {"kind": p.kind, "ref": p.ref, "message": p.message} for p in report.problems[:20]
        ],
        "seconds": report.seconds,
    }
    if report.problems:
        return CheckResult(
            "derived_indexes",
            Severity.WARNING,
            f"{len(report.problems)} derived row(s) differ from a rebuild in "
            f"{', '.join(differing)}",
            details,
            "rebuild_derived",
        )
    return CheckResult(
        "derived_indexes",
        Severity.OK,
        f"{len(report.derived)} index(es) match a rebuild of "
        f"{run.config.derived_sample:.0%} of the entries",
        details,
    )


# ---------------------------------------------------------------------------- harvest state


def _breakers(run: _Run) -> CheckResult:
    wait = FetchConfig().breaker.wait_duration_in_open_state
    states: dict[str, Any] = {}
    flagged: list[str] = []
    due: list[str] = []
    for view in breaker_views(run.vault):
        states[view.name] = {
            "state": view.state,
            "opened_at": view.opened_at,
            "half_opens_at": view.half_opens_at,
        }
        if view.state in ("open", "forced_open"):
            flagged.append(f"{view.name} {view.state}")
        opened = view.raw.get("opened_at")
        if view.state == "open" and isinstance(opened, int | float) and opened + wait <= run.now:
            due.append(view.name)
    details = {"breakers": states, "half_open_due": due}
    if flagged:
        return CheckResult(
            "breakers",
            Severity.WARNING,
            f"{len(flagged)} breaker(s) not closed: {inert(', '.join(flagged))}",
            details,
            "half_open_breakers" if due else None,
        )
    return CheckResult("breakers", Severity.OK, f"{len(states)} breaker(s), none open", details)


def _enabled_feeds(run: _Run) -> list[tuple[str, int]]:
    """``(name, interval seconds)`` of each enabled, valid feed of ``echo.toml``."""
    config = load_config(run.vault.config_path)
    return [(f.name, f.interval) for f in config.feeds if f.enabled]


def _stale_feeds(run: _Run) -> CheckResult:
    runs = HarvestState(run.vault.catalog).feed_runs()
    stale: dict[str, Any] = {}
    feeds = _enabled_feeds(run)
    for name, interval in feeds:
        last = runs.get(name)
        every = max(float(interval), (last[1] or 0.0) if last else 0.0)
        limit = run.config.stale_intervals * every
        if last is not None:
            age = run.now - last[0]
            if age > limit:
                stale[name] = {"last_success": last[0], "age_seconds": age, "interval": every}
            continue
        tried = [_rfc3339(r["_started_at"]) for r in run.feed_runs(name)]
        first = min((t for t in tried if t is not None), default=None)
        if first is not None and run.now - first > limit:
            stale[name] = {"last_success": None, "first_run": first, "interval": every}
    details = {"stale": stale, "feeds": len(feeds), "stale_intervals": run.config.stale_intervals}
    if stale:
        return CheckResult(
            "stale_feeds",
            Severity.WARNING,
            f"{len(stale)} feed(s) without a successful harvest in "
            f"{run.config.stale_intervals:g} intervals: {inert(', '.join(sorted(stale)))}",
            details,
        )
    return CheckResult("stale_feeds", Severity.OK, f"{len(feeds)} enabled feed(s) fresh", details)


def _yield(feed_run: Mapping[str, Any]) -> int:
    return sum(int(feed_run.get(k) or 0) for k in ("new", "versions", "tombstones", "withdrawn"))


def _silent_feeds(run: _Run) -> CheckResult:
    cfg = run.config
    silent: dict[str, Any] = {}
    feeds = _enabled_feeds(run)
    for name, _ in feeds:
        counted = []
        for feed_run in run.feed_runs(name):
            if feed_run.get("status", "harvested") != "harvested":
                continue
            if _yield(feed_run) == 0 and int(feed_run.get("not_modified") or 0) > 0:
                continue  # all 304: the server says nothing changed
            counted.append(_yield(feed_run))
            if len(counted) >= cfg.silent_runs + cfg.silent_history:
                break
        recent, history = counted[: cfg.silent_runs], counted[cfg.silent_runs :]
        if len(recent) < cfg.silent_runs or len(history) < 3 or any(recent):
            continue
        usual = sum(1 for n in history if n > 0) / len(history)
        if usual >= cfg.silent_usual_fraction:
            silent[name] = {
                "recent_runs": len(recent),
                "history_runs": len(history),
                "history_yielding_fraction": usual,
                "history_items": sum(history),
            }
    details = {"silent": silent}
    if silent:
        return CheckResult(
            "silent_feeds",
            Severity.WARNING,
            f"{len(silent)} feed(s) that usually yield items yielded none in their last "
            f"{cfg.silent_runs} runs: {inert(', '.join(sorted(silent)))}",
            details,
        )
    return CheckResult("silent_feeds", Severity.OK, "no feed fell silent", details)


def _parse_errors(run: _Run) -> CheckResult:
    cfg = run.config
    rates: dict[str, Any] = {}
    high: list[str] = []
    for name, _ in _enabled_feeds(run):
        captures = errors = runs = 0
        for feed_run in run.feed_runs(name):
            captures += int(feed_run.get("captures") or 0)
            errors += int(feed_run.get("parse_errors") or 0)
            runs += 1
            if runs >= cfg.parse_error_runs:
                break
        if not captures:
            continue
        rate = errors / captures
        rates[name] = {"runs": runs, "captures": captures, "parse_errors": errors, "rate": rate}
        if captures >= cfg.parse_error_min_captures and rate > cfg.parse_error_rate:
            high.append(name)
    details = {"feeds": rates, "threshold": cfg.parse_error_rate, "high": high}
    if high:
        return CheckResult(
            "parse_errors",
            Severity.WARNING,
            f"{len(high)} feed(s) above a {cfg.parse_error_rate:.0%} parse-error rate: "
            f"{inert(', '.join(high))}",
            details,
        )
    return CheckResult("parse_errors", Severity.OK, "parse-error rates below threshold", details)


# ---------------------------------------------------------------------------- the log


def _clock(run: _Run) -> CheckResult:
    newest = run.vault.latest_checkpoint()
    signed = _rfc3339(newest.signed_at)
    last_run = run.health.progress().last_run or None
    tolerance = run.config.clock_tolerance
    details = {
        "now": run.now,
        "newest_checkpoint_signed_at": newest.signed_at,
        "newest_checkpoint_size": newest.size,
        "last_health_run": last_run,
        "tolerance_seconds": tolerance,
    }
    if signed is not None and run.now < signed - tolerance:
        return CheckResult(
            "clock",
            Severity.CRITICAL,
            f"the clock reads {signed - run.now:.0f} s before the newest checkpoint "
            f"(signed {newest.signed_at}): time went backwards",
            {**details, "behind_seconds": signed - run.now},
        )
    if last_run is not None and run.now < last_run - tolerance:
        return CheckResult(
            "clock",
            Severity.CRITICAL,
            f"the clock reads {last_run - run.now:.0f} s before the last health run: "
            "time went backwards",
            {**details, "behind_seconds": last_run - run.now},
        )
    return CheckResult("clock", Severity.OK, "the clock is after the newest checkpoint", details)


def _tail(vault: Vault) -> tuple[int, int]:
    """``(log size, newest checkpoint's size)``, read in one snapshot."""
    with vault.catalog.snapshot():
        return vault.log_state()[0], vault.latest_checkpoint().size


_TAIL_RECHECK: Final = 0.25
"""Seconds before an unsealed tail is read again: a live writer seals its own within a moment."""


def _unsealed_tail(run: _Run) -> CheckResult:
    size, sealed = _tail(run.vault)
    if size > sealed:  # a writer between its catalog commit and its checkpoint?
        time.sleep(_TAIL_RECHECK)
        later_size, later_sealed = _tail(run.vault)
        if later_sealed >= size:
            size, sealed = later_size, later_sealed
    details = {"log_size": size, "checkpoint_size": sealed, "unsealed": max(0, size - sealed)}
    if size > sealed:
        return CheckResult(
            "unsealed_tail",
            Severity.WARNING,
            f"entries {sealed}..{size - 1} are logged but not covered by a checkpoint "
            "(a commit was interrupted); they are not acknowledged until sealed",
            details,
            "seal_tail",
        )
    return CheckResult(
        "unsealed_tail", Severity.OK, f"every entry is sealed (size {size})", details
    )


# ---------------------------------------------------------------------------- files

_TEMP_NAME = re.compile(r"^\.(?:tmp-.*|.+\.tmp-[0-9a-f]+|.+\.[0-9a-f]+\.tmp)$")
"""Temporary files of failed writes: ``.tmp-*``, ``.<name>.tmp-<hex>``, ``.<name>.<hex>.tmp``."""


def temp_files(path: Path, now: float, min_age: float) -> list[tuple[Path, int, float]]:
    """Temporary files of failed writes in the vault, older than ``min_age`` seconds.

    Looks in the vault directory (``.<name>.tmp-<hex>`` of a public file
    written by rename, ``.<name>.<hex>.tmp`` of ``echo.toml`` rewritten by
    ``feeds``), ``blobs/large/`` and ``blobs/tmp/`` (``.tmp-*.zst`` of a blob
    being written: :mod:`echo_archive.vault.blobs`, :mod:`echo_archive.vault.blobdir`,
    which say they may be deleted while no writer runs).

    Args:
        path: the vault directory.
        now: POSIX seconds.
        min_age: seconds since the file's last modification.

    Returns:
        ``(path, bytes, age seconds)`` of each, sorted by path.
    """
    found = []
    for folder in (path, path / BLOBS_DIR / "large", path / BLOBS_DIR / "tmp"):
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            continue
        for entry in entries:
            if not _TEMP_NAME.match(entry.name) or not entry.is_file(follow_symlinks=False):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            age = now - st.st_mtime
            if age >= min_age:
                found.append((Path(entry.path), st.st_size, age))
    return sorted(found)


def _temp_files(run: _Run) -> CheckResult:
    found = temp_files(run.path, run.now, run.config.temp_min_age)
    size = sum(n for _, n, _ in found)
    details = {
        "files": [str(p.relative_to(run.path)) for p, _, _ in found],
        "bytes": size,
        "min_age_seconds": run.config.temp_min_age,
    }
    if found:
        return CheckResult(
            "temp_files",
            Severity.WARNING,
            f"{len(found)} temporary file(s) of failed writes ({_mib(size)})",
            details,
            "remove_temp_files",
        )
    return CheckResult("temp_files", Severity.OK, "no temporary file left over", details)


# ---------------------------------------------------------------------------- runtime


def _writer(run: _Run) -> CheckResult:
    rt, cfg = run.runtime, run.config
    if rt.writer_queue_depth is None and rt.commit_latency_p95_s is None:
        return CheckResult("writer", Severity.OK, _NOT_IN_SERVICE, {"in_service": False})
    details = {
        "in_service": True,
        "queue_depth": rt.writer_queue_depth,
        "commit_latency_p95_s": rt.commit_latency_p95_s,
        "queue_warning": cfg.writer_queue_warning,
        "latency_warning_s": cfg.commit_latency_warning,
    }
    why = []
    if rt.writer_queue_depth is not None and rt.writer_queue_depth > cfg.writer_queue_warning:
        why.append(f"{rt.writer_queue_depth} jobs queued")
    if rt.commit_latency_p95_s is not None and rt.commit_latency_p95_s > cfg.commit_latency_warning:
        why.append(f"p95 commit latency {rt.commit_latency_p95_s:.2f} s")
    if why:
        return CheckResult("writer", Severity.WARNING, "writer slow: " + "; ".join(why), details)
    return CheckResult("writer", Severity.OK, "writer keeps up", details)


def _memory(run: _Run) -> CheckResult:
    history = list(run.runtime.rss_bytes_history)
    if not history:
        return CheckResult("memory", Severity.OK, _NOT_IN_SERVICE, {"in_service": False})
    warm = [(t, b) for t, b in history if t >= history[0][0] + run.config.memory_warmup]
    details: dict[str, Any] = {"in_service": True, "samples": len(history)}
    if len(warm) < 2:
        return CheckResult("memory", Severity.OK, "warming up", details)
    base, latest = warm[0][1], warm[-1][1]
    growth = (latest - base) / base if base else 0.0
    details.update({"baseline_bytes": base, "latest_bytes": latest, "growth": growth})
    if growth > run.config.memory_growth:
        return CheckResult(
            "memory",
            Severity.WARNING,
            f"resident memory grew {growth:.0%} since warm-up ({_mib(base)} -> {_mib(latest)})",
            details,
        )
    return CheckResult("memory", Severity.OK, f"{_mib(latest)} resident, steady", details)


def _event_loop(run: _Run) -> CheckResult:
    lag, cfg = run.runtime.event_loop_lag_s, run.config
    if lag is None:
        return CheckResult("event_loop", Severity.OK, _NOT_IN_SERVICE, {"in_service": False})
    details = {"in_service": True, "lag_s": lag}
    if lag > cfg.loop_lag_critical:
        return CheckResult("event_loop", Severity.CRITICAL, f"event loop lags {lag:.2f} s", details)
    if lag > cfg.loop_lag_warning:
        return CheckResult("event_loop", Severity.WARNING, f"event loop lags {lag:.2f} s", details)
    return CheckResult("event_loop", Severity.OK, f"event loop lag {lag * 1000:.0f} ms", details)
