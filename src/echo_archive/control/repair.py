"""Self-repair: typed repairs of what the health checks find (``echoctl repair``, the service).

Each :class:`Repair` has a ``name``, a ``risk`` and the health check that
calls for it; :meth:`Repair.plan` says what it would do (a dry run: reads
only, JSON-ready, None when there is nothing to do) and
:meth:`Repair.execute` does it, on the writer with the writer lock held.

* **low risk** (cannot lose evidence; runs on its own when its check calls
  for it): ``seal_tail`` (sign a checkpoint over an unsealed tail),
  ``rebuild_derived`` (rebuild a derived index that differs from its rebuild:
  derived state is rebuildable, DESIGN.md invariant 8), ``remove_temp_files``
  (temporary files of failed writes, which the blob stores document as safe
  to delete while no writer runs: the writer lock is held),
  ``optimize_databases`` (``PRAGMA wal_checkpoint(TRUNCATE)`` and ``PRAGMA
  optimize``, https://www.sqlite.org/pragma.html), ``half_open_breakers``
  (an OPEN breaker whose ``wait_duration_in_open_state`` has passed moves to
  HALF_OPEN, resilience4j ``transitionToHalfOpenState``).
* **high risk** (destructive: always planned, executed only when approved):
  ``prune_reports`` (delete saved harvest reports beyond ``[health]
  report_retention``: operational rows, never evidence), ``prune_orphans``
  (blobs no entry names, seen for ``orphan_grace`` seconds; planned only: the
  blob stores have no delete operation yet, so executing it is refused).

Every executed repair is a ``repair`` entry in the log (DESIGN.md invariant
10; :class:`~echo_archive.schemas.RepairMeta`), written right after it ran,
whether it succeeded or failed. Nothing here rewrites or removes a log entry,
a checkpoint or a blob that an entry names (restic ``repair index``: rebuild
what is derived, never repair evidence away).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, Protocol

from echo_archive.control.health import (
    HealthConfig,
    HealthReport,
    Severity,
    databases,
    temp_files,
)
from echo_archive.errors import EchoError, RequestError
from echo_archive.harvest.breaker import BreakerState, CircuitBreaker
from echo_archive.harvest.engine import FetchConfig
from echo_archive.harvest.state import HarvestState
from echo_archive.schemas import RepairMeta
from echo_archive.services.vaults import open_vault
from echo_archive.terminal import inert
from echo_archive.vault.entry import format_timestamp
from echo_archive.vault.lock import DEFAULT_WAIT
from echo_archive.vault.vault import Record, Vault
from echo_archive.vault.writer import VaultWriter

__all__ = [
    "REPAIRS",
    "Repair",
    "RepairContext",
    "RepairOutcome",
    "RepairUnavailableError",
    "json_object",
    "run_repairs",
]

Risk = Literal["low", "high"]


class RepairUnavailableError(EchoError):
    """A repair cannot be executed by this build (it can still be planned)."""


@dataclass(frozen=True)
class RepairContext:
    """What a repair's plan and execute read.

    Attributes:
        path: the vault directory.
        report: the health report the repairs answer.
        config: the health configuration (retention, grace, temp age).
        now: POSIX seconds.
    """

    path: Path
    report: HealthReport
    config: HealthConfig
    now: float


class Repair(Protocol):
    """A typed repair.

    Attributes:
        name: its stable snake_case name (what ``--approve`` takes).
        risk: ``low`` (runs on its own) or ``high`` (destructive: needs approval).
        check: the health check whose ``repair`` names it, or None (high-risk
            repairs are planned whatever the report says).
    """

    name: str
    risk: Risk
    check: str | None

    def plan(self, vault: Vault, ctx: RepairContext) -> dict[str, Any] | None:
        """What it would do (JSON-ready), read from a reader; None: nothing to do."""

    def execute(self, vault: Vault, plan: Mapping[str, Any], ctx: RepairContext) -> dict[str, Any]:
        """Do it on the writer (lock held); returns what was done (JSON-ready).

        Raises:
            EchoError, OSError: it failed (what was done before stays done).
        """


@dataclass(frozen=True)
class RepairOutcome:
    """What became of one repair.

    Attributes:
        name, risk: the repair.
        status: ``planned`` (dry run), ``needs_approval`` (high risk, not
            approved: dry run only), ``done``, ``failed``, ``unavailable``
            (approved but this build cannot execute it).
        plan: its dry run.
        result: what it did (``done``/``failed``), else empty.
        error: why it failed, or None.
        entry: the log index of its ``repair`` entry, or None (not executed).
        check: the health check that called for it, or None.
    """

    name: str
    risk: Risk
    status: str
    plan: Mapping[str, Any]
    result: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    entry: int | None = None
    check: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping (the attribute names as keys)."""
        return {
            "name": self.name,
            "risk": self.risk,
            "status": self.status,
            "plan": dict(self.plan),
            "result": dict(self.result),
            "error": self.error,
            "entry": self.entry,
            "check": self.check,
        }


# ---------------------------------------------------------------------------- the repairs


class SealTail:
    """Sign a checkpoint over entries logged but not covered by one (``unsealed_tail``).

    A writer taking the lock seals a tail itself (:meth:`Vault.writing`), so
    executing mostly finds it sealed by its own writer; the result names the
    checkpoint that covers the planned entries.
    """

    name: str = "seal_tail"
    risk: Risk = "low"
    check: str | None = "unsealed_tail"

    def plan(self, vault: Vault, ctx: RepairContext) -> dict[str, Any] | None:
        """``{"first", "last"}``: the unsealed entries; None when none."""
        size, sealed = vault.log_state()[0], vault.latest_checkpoint().size
        return None if size <= sealed else {"first": sealed, "last": size - 1}

    def execute(self, vault: Vault, plan: Mapping[str, Any], ctx: RepairContext) -> dict[str, Any]:
        """Seal; ``{"checkpoint_size", "signed_at"}`` of the covering checkpoint."""
        vault.seal()
        latest = vault.latest_checkpoint()
        if latest.size <= int(plan["last"]):
            raise EchoError(f"the newest checkpoint covers {latest.size} entries only")
        return {"checkpoint_size": latest.size, "signed_at": latest.signed_at}


class RebuildDerived:
    """Rebuild each derived index that differs from its rebuild (``derived_indexes``)."""

    name: str = "rebuild_derived"
    risk: Risk = "low"
    check: str | None = "derived_indexes"

    def plan(self, vault: Vault, ctx: RepairContext) -> dict[str, Any] | None:
        """``{"indexes": [...]}``: the differing indexes the report names."""
        result = ctx.report.check("derived_indexes")
        attached = {index.name for index in vault.derived}
        names = [
            n for n in (result.details.get("differing", []) if result else []) if n in attached
        ]
        return {"indexes": names} if names else None

    def execute(self, vault: Vault, plan: Mapping[str, Any], ctx: RepairContext) -> dict[str, Any]:
        """``{"rebuilt": [...], "log_size"}``."""
        return {"rebuilt": vault.rebuild(list(plan["indexes"])), "log_size": vault.log_state()[0]}


class RemoveTempFiles:
    """Remove temporary files of failed writes older than ``temp_min_age`` (``temp_files``)."""

    name: str = "remove_temp_files"
    risk: Risk = "low"
    check: str | None = "temp_files"

    def plan(self, vault: Vault, ctx: RepairContext) -> dict[str, Any] | None:
        """``{"files": [relative paths], "bytes"}``; None when there are none."""
        found = temp_files(ctx.path, ctx.now, ctx.config.temp_min_age)
        if not found:
            return None
        return {
            "files": [str(p.relative_to(ctx.path)) for p, _, _ in found],
            "bytes": sum(n for _, n, _ in found),
        }

    def execute(self, vault: Vault, plan: Mapping[str, Any], ctx: RepairContext) -> dict[str, Any]:
        """Remove the planned files that are still temporary files of that age."""
        still = {
            str(p.relative_to(ctx.path)): n
            for p, n, _ in temp_files(ctx.path, time.time(), ctx.config.temp_min_age)
        }
        removed, freed = [], 0
        for rel in plan["files"]:
            if rel in still:
                (ctx.path / rel).unlink(missing_ok=True)
                removed.append(rel)
                freed += still[rel]
        return {"removed": removed, "bytes": freed}


class OptimizeDatabases:
    """Checkpoint each SQLite write-ahead log into its database, then ``PRAGMA optimize``."""

    name: str = "optimize_databases"
    risk: Risk = "low"
    check: str | None = "quick_check"

    def plan(self, vault: Vault, ctx: RepairContext) -> dict[str, Any] | None:
        """``{"databases": {relative path: WAL bytes}}``."""
        return {
            "databases": {str(db.relative_to(ctx.path)): _wal(db) for db in databases(ctx.path)}
        }

    def execute(self, vault: Vault, plan: Mapping[str, Any], ctx: RepairContext) -> dict[str, Any]:
        """``{relative path: {"wal_bytes_before", "wal_bytes_after", "busy"}}``."""
        done: dict[str, Any] = {}
        for rel, before in dict(plan["databases"]).items():
            db = ctx.path / rel
            conn = sqlite3.connect(db, timeout=ctx.config.state_wait)
            try:
                busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
                conn.execute("PRAGMA optimize")
            finally:
                conn.close()
            done[rel] = {
                "wal_bytes_before": before,
                "wal_bytes_after": _wal(db),
                "busy": bool(busy),
            }
        return done


def _wal(db: Path) -> int:
    try:
        return Path(f"{db}-wal").stat().st_size
    except FileNotFoundError:
        return 0


class HalfOpenBreakers:
    """Move each OPEN breaker whose wait in OPEN has passed to HALF_OPEN (``breakers``)."""

    name: str = "half_open_breakers"
    risk: Risk = "low"
    check: str | None = "breakers"

    def plan(self, vault: Vault, ctx: RepairContext) -> dict[str, Any] | None:
        """``{"breakers": [names]}`` of the breakers due."""
        due = [name for name, br in _breakers(vault, ctx.now) if br]
        return {"breakers": due} if due else None

    def execute(self, vault: Vault, plan: Mapping[str, Any], ctx: RepairContext) -> dict[str, Any]:
        """``{"half_opened": [names]}``: those still OPEN and due when executed."""
        now = time.time() if ctx.now <= time.time() else ctx.now
        done = []
        state = HarvestState(vault.catalog)
        for name, breaker in _breakers(vault, now):
            if breaker is not None and name in plan["breakers"]:
                breaker.transition_to_half_open(now)
                state.put_breaker(name, breaker.to_state(), format_timestamp(int(now * 1e9)))
                done.append(name)
        return {"half_opened": done}


def _breakers(vault: Vault, now: float) -> list[tuple[str, CircuitBreaker | None]]:
    """Every stored breaker; the restored breaker when it is OPEN and its wait has passed."""
    config = FetchConfig().breaker
    out: list[tuple[str, CircuitBreaker | None]] = []
    for name, raw in HarvestState(vault.catalog).breakers().items():
        try:
            breaker = CircuitBreaker.from_state(name, config, raw, clock=lambda: now)
        except ValueError:
            out.append((name, None))
            continue
        opened = breaker.opened_at
        due = (
            breaker.state is BreakerState.OPEN
            and opened is not None
            and opened + config.wait_duration_in_open_state <= now
        )
        out.append((name, breaker if due else None))
    return out


class PruneReports:
    """Delete saved harvest reports beyond the newest ``report_retention`` (operational rows)."""

    name: str = "prune_reports"
    risk: Risk = "high"
    check: str | None = None

    def plan(self, vault: Vault, ctx: RepairContext) -> dict[str, Any] | None:
        """``{"delete_through_id", "reports", "keep"}``; None when within retention."""
        keep = ctx.config.report_retention
        if "harvest_reports" not in vault.catalog.tables():
            return None
        row = vault.catalog.query_one(
            "SELECT id FROM harvest_reports ORDER BY id DESC LIMIT 1 OFFSET ?", (keep,)
        )
        if row is None:
            return None
        count = vault.catalog.query_one(
            "SELECT count(*) FROM harvest_reports WHERE id <= ?", (row[0],)
        )
        return {
            "delete_through_id": int(row[0]),
            "reports": int(count[0]) if count else 0,
            "keep": keep,
        }

    def execute(self, vault: Vault, plan: Mapping[str, Any], ctx: RepairContext) -> dict[str, Any]:
        """``{"deleted": count}``."""
        with vault.catalog.transaction("pruning old harvest reports"):
            deleted = vault.catalog.execute(
                "DELETE FROM harvest_reports WHERE id <= ?", (int(plan["delete_through_id"]),)
            )
        return {"deleted": deleted}


class PruneOrphans:
    """Blobs that no entry names (a crash after the blobs, before the entries): planned only."""

    name: str = "prune_orphans"
    risk: Risk = "high"
    check: str | None = None

    def plan(self, vault: Vault, ctx: RepairContext) -> dict[str, Any] | None:
        """``{"orphans": count, "digests": first 100}``; None when there is none.

        Walks every stored digest and looks each up in the blob index
        (``entry_blobs``), in chunks. The grace period cannot be told for a
        blob store that keeps no write times (the SQLite backend); executing
        is refused anyway until the stores can delete.
        """
        orphans: list[str] = []
        chunk: list[bytes] = []

        def flush() -> None:
            marks = ",".join("?" * len(chunk))
            named = {
                bytes(r[0])
                for r in vault.catalog.query(
                    f"SELECT DISTINCT digest FROM entry_blobs WHERE digest IN ({marks})",  # noqa: S608 - only ? marks
                    chunk,
                )
            }
            orphans.extend("sha256:" + d.hex() for d in chunk if d not in named)
            chunk.clear()

        for digest in vault.blobs.iter_digests():
            chunk.append(digest)
            if len(chunk) >= 500:
                flush()
        if chunk:
            flush()
        if not orphans:
            return None
        return {
            "orphans": len(orphans),
            "digests": orphans[:100],
            "grace_seconds": ctx.config.orphan_grace,
        }

    def execute(self, vault: Vault, plan: Mapping[str, Any], ctx: RepairContext) -> dict[str, Any]:
        """Refused: the blob stores have no delete operation yet.

        Raises:
            RepairUnavailableError: always.
        """
        raise RepairUnavailableError(
            "prune_orphans cannot be executed by this build: the blob stores have no delete "
            "operation yet (DESIGN.md roadmap 9, orphan prune); the plan lists the orphans"
        )


REPAIRS: Final[tuple[Repair, ...]] = (
    SealTail(),
    RebuildDerived(),
    RemoveTempFiles(),
    OptimizeDatabases(),
    HalfOpenBreakers(),
    PruneReports(),
    PruneOrphans(),
)
"""Every repair, in the order :func:`run_repairs` runs them."""


# ---------------------------------------------------------------------------- running


def run_repairs(
    vault_path: Path,
    report: HealthReport,
    *,
    dry_run: bool,
    approve: Collection[str] = (),
    writer: VaultWriter | None = None,
    config: HealthConfig | None = None,
    actor: str = "echoctl repair",
    wait: float = DEFAULT_WAIT,
    now: float | None = None,
) -> list[RepairOutcome]:
    """Plan the repairs ``report`` calls for, and (unless ``dry_run``) execute them.

    A low-risk repair is planned when a check of ``report`` of severity
    warning or worse names it (``CheckResult.repair``) and its plan finds
    something to do; a high-risk one is planned whenever it finds something
    to do, and executed only when named in ``approve``. Plans read a
    read-only view of the vault. Executing runs on ``writer`` (the service's
    single writer) when given, else on a writer opened for the purpose
    (waiting up to ``wait`` seconds for the writer lock); each executed
    repair, done or failed, is committed as a ``repair`` entry right after it.

    Args:
        vault_path: the vault directory.
        report: the health report (:func:`~echo_archive.control.health.run_checks`).
        dry_run: plan only; nothing is written (no lock, no file, no entry).
        approve: names of high-risk repairs to execute.
        writer: the vault's writer in this process.
        config: the health configuration (default: ``[health]`` of ``echo.toml``).
        actor: who runs the repairs, for the entries (``echoctl repair``, ``service``).
        wait: seconds to wait for the writer lock (without ``writer``).
        now: POSIX seconds (default: the clock).

    Returns:
        One outcome per planned repair, in :data:`REPAIRS` order.

    Raises:
        RequestError: ``approve`` names an unknown or a low-risk repair.
        VaultLockedError: the writer lock stayed busy past ``wait``.
        ConfigError, VaultError: the vault or its configuration cannot be read.
    """
    path = Path(vault_path)
    by_name = {r.name: r for r in REPAIRS}
    for name in approve:
        if name not in by_name:
            raise RequestError(
                f"--approve {name!r}: no such repair (repairs: {', '.join(by_name)})"
            )
        if by_name[name].risk != "high":
            raise RequestError(f"--approve {name!r}: a low-risk repair needs no approval")
    config = HealthConfig.load(path) if config is None else config
    ctx = RepairContext(path, report, config, time.time() if now is None else now)
    planned: list[tuple[Repair, dict[str, Any]]] = []
    with open_vault(path) as reader:
        for repair in REPAIRS:
            if repair.risk == "low":
                result = report.check(repair.check or "")
                if (
                    result is None
                    or result.repair != repair.name
                    or result.severity < Severity.WARNING
                ):
                    continue
            plan = repair.plan(reader, ctx)
            if plan is not None:
                planned.append((repair, plan))
    outcomes: list[RepairOutcome] = []
    todo: list[tuple[Repair, dict[str, Any]]] = []
    for repair, plan in planned:
        if dry_run or (repair.risk == "high" and repair.name not in approve):
            status = (
                "planned" if repair.risk == "low" or repair.name in approve else "needs_approval"
            )
            outcomes.append(
                RepairOutcome(repair.name, repair.risk, status, plan, check=repair.check)
            )
        else:
            todo.append((repair, plan))
    if not todo:
        return outcomes

    def job(vault: Vault) -> list[RepairOutcome]:
        with vault.writing():
            return [_execute(vault, repair, plan, ctx, actor, approve) for repair, plan in todo]

    if writer is not None:
        done = writer.submit(job).result()
    else:
        with open_vault(path, write=True, wait=wait) as vault:
            done = job(vault)
    order = {r.name: i for i, r in enumerate(REPAIRS)}
    return sorted(outcomes + done, key=lambda o: order[o.name])


def _execute(
    vault: Vault,
    repair: Repair,
    plan: dict[str, Any],
    ctx: RepairContext,
    actor: str,
    approve: Collection[str],
) -> RepairOutcome:
    """Execute one repair and commit its ``repair`` entry (done or failed)."""
    started = time.time_ns()
    result: dict[str, Any] = {}
    error: str | None = None
    try:
        result = repair.execute(vault, plan, ctx)
    except RepairUnavailableError as exc:
        return RepairOutcome(
            repair.name, repair.risk, "unavailable", plan, error=str(exc), check=repair.check
        )
    except (EchoError, OSError, sqlite3.Error) as exc:
        error = str(exc)
    check = ctx.report.check(repair.check) if repair.check else None
    meta = RepairMeta(
        name=repair.name,
        risk=repair.risk,
        check=repair.check,
        reason=check.summary if check is not None else "",
        actor=actor,
        approved=repair.name in approve,
        plan=json_object(plan),
        result=json_object(result),
        ok=error is None,
        error=error,
        started_at=format_timestamp(started),
        finished_at=format_timestamp(time.time_ns()),
    )
    committed = vault.commit([Record("repair", meta)])
    return RepairOutcome(
        repair.name,
        repair.risk,
        "done" if error is None else "failed",
        plan,
        result,
        error,
        committed.receipts[0].index,
        repair.check,
    )


def json_object(value: Mapping[str, Any]) -> dict[str, Any]:
    """A mapping as an I-JSON object (RFC 7493) for an entry: whole floats become integers.

    RFC 8785 writes a whole float as an integer, so an entry read back holds
    ``2`` where ``2.0`` was given: normalizing first keeps what is logged and
    what is returned the same. Keys become strings; lists and tuples lists.
    """

    def norm(v: Any) -> Any:
        if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
            return int(v)
        if isinstance(v, Mapping):
            return {str(k): norm(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [norm(x) for x in v]
        return v

    return {str(k): norm(v) for k, v in value.items()}


def describe(outcome: RepairOutcome) -> str:
    """One line for a person about ``outcome`` (file names and errors made inert)."""
    text = f"{outcome.name} ({outcome.risk} risk): {outcome.status.replace('_', ' ')}"
    if outcome.error:
        text += f": {outcome.error}"
    if outcome.entry is not None:
        text += f" (entry {outcome.entry})"
    return inert(text)
