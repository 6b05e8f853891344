"""Health checks and self-repair on real vaults: each check passes, then is triggered; repairs."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from echo_archive import faults
from echo_archive.cli import app
from echo_archive.config import HealthSection
from echo_archive.control import health
from echo_archive.control.health import (
    CHECKS,
    HealthConfig,
    RuntimeStats,
    Severity,
    disk_critical,
    run_checks,
)
from echo_archive.control.repair import run_repairs
from echo_archive.control.state import HealthState
from echo_archive.errors import ConfigError, RequestError, StorageError
from echo_archive.harvest.state import HarvestState
from echo_archive.services import archive_files, create_vault, open_vault, verify
from echo_archive.services.vaults import open_writer
from echo_archive.vault.vault import Vault

from .conftest import sample_records

runner = CliRunner()
GIB = 1024**3
TOTAL = 100 * GIB


def _fixed_disk(free: int, total: int = TOTAL) -> Any:
    return lambda _path: (total, total - free, free)


PLENTY = HealthConfig(disk_usage=_fixed_disk(50 * GIB))


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    """A real vault with the starter feeds and five archived files."""
    path = tmp_path / "vault"
    create_vault(path)
    files = []
    for i in range(5):
        f = tmp_path / f"file-{i}.txt"
        f.write_text(f"evidence {i}\n" * (i + 1))
        files.append(f)
    with open_vault(path, write=True) as v:
        archive_files(v, files)
    return path


def _sev(report: Any, name: str) -> Severity:
    result = report.check(name)
    assert result is not None, name
    return result.severity


def _snapshot(path: Path) -> dict[str, bytes]:
    """Every file's bytes, but SQLite's -shm index and empty -wal a reader may create."""
    return {
        str(p.relative_to(path)): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file()
        and p.name != "lock"
        and not p.name.endswith("-shm")
        and not (p.name.endswith("-wal") and p.stat().st_size == 0)
    }


def _repair_entries(path: Path) -> list[dict[str, Any]]:
    with Vault.open(path, readonly=True) as v:
        return [e.meta for _, e in v.iter_entries() if e.type == "repair"]


def _verify_full(path: Path) -> None:
    with open_vault(path) as v:
        report = verify(v, full=True, remember=False)
    assert report.ok, report.problems


# ---------------------------------------------------------------------------- all pass


def test_a_healthy_vault_passes_every_check_and_remembers_its_verify(vault: Path) -> None:
    report = run_checks(vault, config=PLENTY)
    assert [c.name for c in report.checks] == list(CHECKS)
    assert report.worst is Severity.OK, [c.to_json() for c in report.checks if c.severity]
    iv = report.check("incremental_verify")
    assert iv is not None
    assert iv.details["entries_verified"] == 5
    again = run_checks(vault, config=PLENTY)
    iv2 = again.check("incremental_verify")
    assert iv2 is not None
    assert iv2.details["entries_verified"] == 0  # remembered in health_state
    assert iv2.details["entries_verified_total"] == 5
    doc = json.loads(json.dumps(again.to_json()))  # JSON-ready
    assert doc["worst"] == "ok"
    assert {"name", "severity", "summary", "details", "repair"} <= set(doc["checks"][0])
    for name in ("writer", "memory", "event_loop"):
        result = again.check(name)
        assert result is not None
        assert result.summary == "not running in a service"


def test_quick_pass_skips_the_verify_and_the_derived_comparison(vault: Path) -> None:
    report = run_checks(vault, config=PLENTY, quick=True)
    names = [c.name for c in report.checks]
    assert "incremental_verify" not in names
    assert "derived_indexes" not in names
    assert report.worst is Severity.OK


def test_checks_save_through_the_services_writer(vault: Path) -> None:
    with open_writer(vault) as w:
        report = run_checks(vault, config=PLENTY, writer=w)
    assert report.worst is Severity.OK
    with Vault.open(vault, readonly=True) as v:
        row = v.catalog.query_one("SELECT value FROM health_state WHERE name = 'verify'")
    assert row is not None
    assert json.loads(row[0])["entries"] == 5


# ---------------------------------------------------------------------------- disk


def test_disk_free_thresholds(vault: Path) -> None:
    warn = run_checks(vault, config=HealthConfig(disk_usage=_fixed_disk(GIB)), quick=True)
    assert _sev(warn, "disk_free") is Severity.WARNING  # below min(10%, 2 GiB)
    assert not disk_critical(warn)
    crit = run_checks(vault, config=HealthConfig(disk_usage=_fixed_disk(100 * 2**20)), quick=True)
    assert _sev(crit, "disk_free") is Severity.CRITICAL
    assert disk_critical(crit)
    result = crit.check("disk_free")
    assert result is not None
    assert result.details["free_bytes"] == 100 * 2**20


def test_days_until_full_projected_from_the_vaults_growth(vault: Path, tmp_path: Path) -> None:
    t0 = time.time()
    free = 40 * 2**20
    cfg = HealthConfig(
        disk_usage=_fixed_disk(free),
        disk_warning_free_bytes=0,
        disk_critical_free_bytes=0,
    )
    first = run_checks(vault, config=cfg, now=t0, quick=True)
    assert _sev(first, "disk_free") is Severity.OK  # one sample: no projection yet
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(4 * 2**20))  # the vault grows by ~4 MiB in an hour
    with open_vault(vault, write=True) as v:
        archive_files(v, [big])
    later = run_checks(vault, config=cfg, now=t0 + 3600, quick=True)
    result = later.check("disk_free")
    assert result is not None
    assert result.details["samples"] == 2
    assert result.details["growth_bytes_per_day"] > 50 * 2**20
    assert result.details["days_until_full"] < 1
    assert result.severity is Severity.CRITICAL
    assert "full in" in result.summary


# ---------------------------------------------------------------------------- SQLite


def _garble_blob_db(vault: Path) -> None:
    """Flip bytes in pages 3-5 of the blob database (its b-tree pages; the header kept)."""
    db = vault / "blobs" / "blobs.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    data = bytearray(db.read_bytes())
    assert len(data) > 8 * page
    for offset in range(3 * page, 6 * page, 97):  # garble b-tree pages, keep the header
        data[offset] ^= 0xFF
    db.write_bytes(bytes(data))


def test_quick_check_names_a_damaged_database(vault: Path, tmp_path: Path) -> None:
    with open_vault(vault, write=True) as v:
        v.commit(sample_records(300))
    _garble_blob_db(vault)
    report = run_checks(vault, config=PLENTY, quick=True)
    result = report.check("quick_check")
    assert result is not None
    assert result.severity is Severity.CRITICAL
    assert "blobs/blobs.sqlite" in json.dumps(result.to_json())


def _blob_db(report: Any) -> dict[str, Any]:
    result = report.check("quick_check")
    assert result is not None
    details: dict[str, Any] = result.details["blobs/blobs.sqlite"]
    return details


def test_quick_pass_checks_a_large_blob_database_in_rotation(
    vault: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above the size limit the quick pass reads the blob database in bounded slices.

    Paced like the incremental verify: 1% per pass plus what it is behind
    ``verify_period`` by, so the whole table is read once within the period
    and the pass starts over. The full pass keeps the whole ``quick_check``.
    """
    with open_vault(vault, write=True) as v:
        v.commit(sample_records(295))
    monkeypatch.setattr(health, "QUICK_CHECK_FULL_BYTES", 0)
    period = PLENTY.verify_period
    t0 = time.time()
    first = _blob_db(run_checks(vault, config=PLENTY, quick=True, now=t0))
    assert first["mode"] == "rotating"
    assert first["ok"] is True
    assert first["rows_total"] == 300
    assert first["rows_checked"] == first["index_entries_checked"] == 3  # 1% of 300
    half = _blob_db(run_checks(vault, config=PLENTY, quick=True, now=t0 + period / 2))
    assert half["rows_checked"] == 150  # the 147 it is behind, plus 1%
    assert half["pass_rows"] == 153
    assert half["pass_complete"] is False
    end = _blob_db(run_checks(vault, config=PLENTY, quick=True, now=t0 + period))
    assert end["rows_checked"] == 147  # the rest: every row read once in the pass
    assert end["pass_complete"] is True
    assert end["pass_rows"] == 0
    assert end["last_pass"] == t0 + period
    again = _blob_db(run_checks(vault, config=PLENTY, quick=True, now=t0 + period + 1))
    assert again["rows_checked"] == 4  # a new pass from the first row: 1%, and 1 s of it due
    full = _blob_db(run_checks(vault, config=PLENTY, now=t0 + period + 2))
    assert full["mode"] == "quick_check"


def test_the_rotating_check_names_a_damaged_blob_database(
    vault: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_vault(vault, write=True) as v:
        v.commit(sample_records(300))
    _garble_blob_db(vault)
    monkeypatch.setattr(health, "QUICK_CHECK_FULL_BYTES", 0)
    # the whole pass is due (a period since it began): the slice covers the garbled pages
    with open_vault(vault, write=True) as v:
        HealthState(v.catalog).put(
            health.QUICK_STATE, {"pass_started": time.time() - PLENTY.verify_period}, time.time()
        )
    report = run_checks(vault, config=PLENTY, quick=True)
    result = report.check("quick_check")
    assert result is not None
    assert result.severity is Severity.CRITICAL
    assert _blob_db(report)["mode"] == "rotating"
    assert _blob_db(report)["ok"] is False
    assert "blobs/blobs.sqlite" in result.summary


# ---------------------------------------------------------------------------- verify


def test_incremental_verify_finds_a_flipped_blob(vault: Path) -> None:
    assert run_checks(vault, config=PLENTY).worst is Severity.OK
    with Vault.open(vault, readonly=True) as v:
        (digest,) = v.catalog.query_one("SELECT digest FROM entry_blobs WHERE idx = 3") or ()
    conn = sqlite3.connect(vault / "blobs" / "blobs.sqlite")
    (data,) = conn.execute("SELECT data FROM blobs WHERE digest = ?", (digest,)).fetchone()
    flipped = bytearray(data)
    flipped[len(flipped) // 2] ^= 0x01
    with conn:
        conn.execute("UPDATE blobs SET data = ? WHERE digest = ?", (bytes(flipped), digest))
    conn.close()
    cfg = HealthConfig(disk_usage=PLENTY.disk_usage, verify_period=1.0)  # all blobs due now
    report = run_checks(vault, config=cfg, now=time.time() + 10)
    result = report.check("incremental_verify")
    assert result is not None
    assert result.severity is Severity.CRITICAL
    refs = {p["ref"] for p in result.details["problems"]}
    assert "sha256:" + bytes(digest).hex() in refs


def test_incremental_verify_checks_new_entries(vault: Path) -> None:
    assert run_checks(vault, config=PLENTY).worst is Severity.OK
    with open_vault(vault, write=True) as v:
        v.commit(sample_records(3))
    conn = sqlite3.connect(vault / "catalog.sqlite")
    (raw,) = conn.execute("SELECT entry FROM entries WHERE idx = 6").fetchone()
    changed = bytes(raw).replace(b"item-1.json", b"item-9.json")
    assert changed != bytes(raw)
    with conn:
        conn.execute("UPDATE entries SET entry = ? WHERE idx = 6", (changed,))
    conn.close()
    report = run_checks(vault, config=PLENTY)
    result = report.check("incremental_verify")
    assert result is not None
    assert result.severity is Severity.CRITICAL
    assert "entry 6" in {p["ref"] for p in result.details["problems"]}


def test_a_rewritten_prefix_is_found_by_the_next_run(vault: Path) -> None:
    assert run_checks(vault, config=PLENTY).worst is Severity.OK
    conn = sqlite3.connect(vault / "catalog.sqlite")
    (hashes,) = conn.execute("SELECT hashes FROM tiles WHERE level = 0 AND idx = 0").fetchone()
    h = bytearray(hashes)
    h[4 * 32] ^= 1  # leaf 4: a peak of the tree of 5 (a rewrite reaching the stored root)
    with conn:
        conn.execute("UPDATE tiles SET hashes = ? WHERE level = 0 AND idx = 0", (bytes(h),))
    conn.close()
    report = run_checks(vault, config=PLENTY)
    assert _sev(report, "incremental_verify") is Severity.CRITICAL


# ---------------------------------------------------------------------------- derived


def test_a_differing_derived_row_is_rebuilt_by_repair(vault: Path) -> None:
    cfg = HealthConfig(disk_usage=PLENTY.disk_usage, derived_sample=1.0)
    db = sqlite3.connect(vault / "catalog.sqlite")
    with db:
        db.execute("INSERT INTO leaves(leaf, idx) VALUES (?, 0)", (b"\x01" * 32,))
    db.close()
    report = run_checks(vault, config=cfg)
    result = report.check("derived_indexes")
    assert result is not None
    assert result.severity is Severity.WARNING
    assert result.repair == "rebuild_derived"
    assert result.details["differing"] == ["leaves"]
    before = _snapshot(vault)
    planned = run_repairs(vault, report, dry_run=True, config=cfg)
    assert [(o.name, o.status) for o in planned] == [("rebuild_derived", "planned")]
    assert _snapshot(vault) == before  # the dry run changed nothing
    done = run_repairs(vault, report, dry_run=False, config=cfg)
    assert [(o.name, o.status) for o in done] == [("rebuild_derived", "done")]
    assert done[0].entry is not None
    (entry,) = _repair_entries(vault)
    assert entry["name"] == "rebuild_derived"
    assert entry["ok"] is True
    assert entry["result"]["rebuilt"] == ["leaves"]
    assert _sev(run_checks(vault, config=cfg), "derived_indexes") is Severity.OK
    _verify_full(vault)


# ---------------------------------------------------------------------------- harvest state


def _put(vault: Path, fn: Any) -> None:
    with Vault.open(vault) as v, v.writing():
        fn(HarvestState(v.catalog))


def test_an_open_breaker_warns_and_is_half_opened_when_its_wait_passed(vault: Path) -> None:
    now = time.time()
    state = {
        "version": 1,
        "name": "example.org",
        "state": "OPEN",
        "opened_at": now - 1000,
        "half_open_at": None,
        "not_permitted": 0,
        "window": {"type": "COUNT_BASED", "size": 100, "outcomes": ["failure"] * 10},
    }
    _put(vault, lambda s: s.put_breaker("example.org", state, "2026-12-07T00:00:00.000000Z"))
    report = run_checks(vault, config=PLENTY, quick=True, now=now)
    result = report.check("breakers")
    assert result is not None
    assert result.severity is Severity.WARNING
    assert result.repair == "half_open_breakers"
    done = run_repairs(vault, report, dry_run=False, config=PLENTY, now=now)
    assert [(o.name, o.status) for o in done] == [("half_open_breakers", "done")]
    with Vault.open(vault, readonly=True) as v:
        stored = HarvestState(v.catalog).breaker("example.org")
    assert stored is not None
    assert stored["state"] == "HALF_OPEN"
    assert _sev(run_checks(vault, config=PLENTY, quick=True), "breakers") is Severity.OK
    assert [e["name"] for e in _repair_entries(vault)] == ["half_open_breakers"]


def test_stale_feed(vault: Path) -> None:
    now = time.time()
    _put(vault, lambda s: s.put_feed_run("hn-top", now - 600, None))
    fresh = run_checks(vault, config=PLENTY, quick=True, now=now)
    assert _sev(fresh, "stale_feeds") is Severity.OK
    stale = run_checks(vault, config=PLENTY, quick=True, now=now + 4 * 900)
    result = stale.check("stale_feeds")
    assert result is not None
    assert result.severity is Severity.WARNING
    assert "hn-top" in result.details["stale"]


def _report(feed: dict[str, Any], started: str = "2026-12-07T00:00:00.000000Z") -> dict[str, Any]:
    base = {"name": "hn-top", "source": "hn", "status": "harvested", "not_modified": 0}
    return {"started_at": started, "feeds": [{**base, **feed}]}


def test_silent_feed_and_parse_error_rate(vault: Path) -> None:
    def fill(s: HarvestState) -> None:
        for _ in range(10):
            s.save_report("2026-12-07T00:00:00.000000Z", _report({"new": 5, "captures": 1}))
        for _ in range(3):
            s.save_report("2026-12-07T01:00:00.000000Z", _report({"new": 0, "captures": 1}))

    _put(vault, fill)
    report = run_checks(vault, config=PLENTY, quick=True)
    result = report.check("silent_feeds")
    assert result is not None
    assert result.severity is Severity.WARNING
    assert list(result.details["silent"]) == ["hn-top"]
    assert _sev(report, "parse_errors") is Severity.OK

    _put(
        vault, lambda s: s.save_report("x", _report({"new": 2, "captures": 10, "parse_errors": 6}))
    )
    again = run_checks(vault, config=PLENTY, quick=True)
    assert _sev(again, "silent_feeds") is Severity.OK  # it yielded again
    result = again.check("parse_errors")
    assert result is not None
    assert result.severity is Severity.WARNING
    assert result.details["high"] == ["hn-top"]


# ---------------------------------------------------------------------------- the log


def test_clock_going_backwards_is_critical(vault: Path) -> None:
    report = run_checks(vault, config=PLENTY, quick=True, now=time.time() - 3600)
    result = report.check("clock")
    assert result is not None
    assert result.severity is Severity.CRITICAL
    assert "time went backwards" in result.summary


def test_unsealed_tail_is_sealed_by_repair_on_the_record(vault: Path) -> None:
    with Vault.open(vault) as v:
        faults.arm("checkpoint.write", "EIO")
        with pytest.raises(StorageError):
            v.commit(sample_records(2))
        faults.disarm()
    report = run_checks(vault, config=PLENTY)
    result = report.check("unsealed_tail")
    assert result is not None
    assert result.severity is Severity.WARNING
    assert result.repair == "seal_tail"
    assert result.details == {"log_size": 7, "checkpoint_size": 5, "unsealed": 2}
    iv = report.check("incremental_verify")
    assert iv is not None
    assert iv.details["state_saved"] is False  # no writer opened: it would seal the tail
    before = _snapshot(vault)
    planned = run_repairs(vault, report, dry_run=True, config=PLENTY)
    assert [(o.name, o.status, dict(o.plan)) for o in planned] == [
        ("seal_tail", "planned", {"first": 5, "last": 6})
    ]
    assert _snapshot(vault) == before
    done = run_repairs(vault, report, dry_run=False, config=PLENTY)
    assert [(o.name, o.status) for o in done] == [("seal_tail", "done")]
    assert done[0].entry == 7
    (entry,) = _repair_entries(vault)
    assert entry["check"] == "unsealed_tail"
    assert entry["result"]["checkpoint_size"] >= 7
    assert _sev(run_checks(vault, config=PLENTY), "unsealed_tail") is Severity.OK
    _verify_full(vault)


# ---------------------------------------------------------------------------- files


def test_temp_files_of_failed_writes_are_removed_by_repair(vault: Path) -> None:
    old = time.time() - 7200
    planted = [
        vault / "blobs" / "large" / ".tmp-k2j4h5.zst",
        vault / ".echo.toml.1a2b3c4d.tmp",
        vault / ".verifier.vkey.tmp-0badf00d",
    ]
    for p in planted:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"half-written")
        os.utime(p, (old, old))
    young = vault / "blobs" / "large" / ".tmp-young.zst"
    young.write_bytes(b"a writer may be writing this")
    report = run_checks(vault, config=PLENTY, quick=True)
    result = report.check("temp_files")
    assert result is not None
    assert result.severity is Severity.WARNING
    assert sorted(result.details["files"]) == sorted(str(p.relative_to(vault)) for p in planted)
    before = _snapshot(vault)
    run_repairs(vault, report, dry_run=True, config=PLENTY)
    assert _snapshot(vault) == before
    (done,) = run_repairs(vault, report, dry_run=False, config=PLENTY)
    assert done.status == "done"
    assert not any(p.exists() for p in planted)
    assert young.exists()
    assert _sev(run_checks(vault, config=PLENTY, quick=True), "temp_files") is Severity.OK
    assert [e["name"] for e in _repair_entries(vault)] == ["remove_temp_files"]
    _verify_full(vault)


# ---------------------------------------------------------------------------- high risk


def test_high_risk_repairs_wait_for_approval(vault: Path) -> None:
    def fill(s: HarvestState) -> None:
        for i in range(5):
            s.save_report(f"2026-12-07T0{i}:00:00.000000Z", {"started_at": "", "feeds": []})

    _put(vault, fill)
    cfg = HealthConfig(disk_usage=PLENTY.disk_usage, report_retention=2)
    report = run_checks(vault, config=cfg, quick=True)
    outcomes = run_repairs(vault, report, dry_run=False, config=cfg)
    assert [(o.name, o.status) for o in outcomes] == [("prune_reports", "needs_approval")]
    assert outcomes[0].plan["reports"] == 3
    with Vault.open(vault, readonly=True) as v:
        assert len(HarvestState(v.catalog).reports()) == 5
    assert _repair_entries(vault) == []
    with pytest.raises(RequestError):
        run_repairs(vault, report, dry_run=False, approve=["seal_tail"], config=cfg)
    (done,) = run_repairs(vault, report, dry_run=False, approve=["prune_reports"], config=cfg)
    assert (done.status, dict(done.result)) == ("done", {"deleted": 3})
    with Vault.open(vault, readonly=True) as v:
        assert len(HarvestState(v.catalog).reports()) == 2
    (entry,) = _repair_entries(vault)
    assert (entry["name"], entry["risk"], entry["approved"]) == ("prune_reports", "high", True)
    _verify_full(vault)


def test_orphan_blobs_are_planned_but_not_pruned(vault: Path) -> None:
    with Vault.open(vault) as v:
        v.blobs.put_many([b"an orphan: its entry never committed"])
    report = run_checks(vault, config=PLENTY, quick=True)
    plan = run_repairs(vault, report, dry_run=True, config=PLENTY)
    (orphans,) = [o for o in plan if o.name == "prune_orphans"]
    digest = hashlib.sha256(b"an orphan: its entry never committed").hexdigest()
    assert orphans.plan["digests"] == ["sha256:" + digest]
    (done,) = [
        o
        for o in run_repairs(vault, report, dry_run=False, approve=["prune_orphans"], config=PLENTY)
        if o.name == "prune_orphans"
    ]
    assert done.status == "unavailable"
    assert _repair_entries(vault) == []


# ---------------------------------------------------------------------------- runtime


def test_runtime_checks(vault: Path) -> None:
    t = 1_000_000.0
    runtime = RuntimeStats(
        writer_queue_depth=5000,
        commit_latency_p95_s=0.1,
        event_loop_lag_s=10.0,
        rss_bytes_history=[(t, 100), (t + 400, 100 * 2**20), (t + 800, 150 * 2**20)],
    )
    report = run_checks(vault, config=PLENTY, quick=True, runtime=runtime)
    assert _sev(report, "writer") is Severity.WARNING
    assert _sev(report, "event_loop") is Severity.CRITICAL
    assert _sev(report, "memory") is Severity.WARNING  # +50% after the 300 s warm-up
    calm = RuntimeStats(writer_queue_depth=3, commit_latency_p95_s=0.2, event_loop_lag_s=0.01)
    ok = run_checks(vault, config=PLENTY, quick=True, runtime=calm)
    assert {_sev(ok, n) for n in ("writer", "memory", "event_loop")} == {Severity.OK}


# ---------------------------------------------------------------------------- config


def test_health_section_of_echo_toml(vault: Path) -> None:
    toml = vault / "echo.toml"
    text = toml.read_text()
    toml.write_text(text + "\n[health]\nverify_budget = 5.0\nreport_retention = 7\n")
    cfg = HealthConfig.load(vault)
    assert (cfg.verify_budget, cfg.report_retention) == (5.0, 7)
    assert cfg.verify_period == HealthSection().verify_period == 30 * 86400
    toml.write_text(text + "\n[health]\nverify_budgte = 5.0\n")
    with pytest.raises(ConfigError, match=r"health\.verify_budgte"):
        HealthConfig.load(vault)
    toml.write_text(text + "\n[health]\nderived_sample = 2.0\n")
    with pytest.raises(ConfigError, match=r"health\.derived_sample"):
        HealthConfig.load(vault)
    toml.write_text(text + "\n[health]\ndisk_critical_days = 9.0\n")
    with pytest.raises(ConfigError, match="disk_critical_days"):
        HealthConfig.load(vault)


# ---------------------------------------------------------------------------- CLI


def _cli(*args: str) -> Any:
    return runner.invoke(app, list(args))


def test_cli_health_exit_codes_and_json(vault: Path) -> None:
    ok = _cli("--vault", str(vault), "health", "--quick", "--json")
    assert ok.exit_code in (0, 1), ok.output  # this machine's disk may be nearly full
    doc = json.loads(ok.stdout)
    assert set(doc) == {"at", "worst", "checks"}
    assert ok.exit_code == Severity[doc["worst"].upper()]
    with Vault.open(vault) as v:
        faults.arm("checkpoint.write", "EIO")
        with pytest.raises(StorageError):
            v.commit(sample_records(1))
        faults.disarm()
    warn = _cli("--vault", str(vault), "health", "--quick")
    assert warn.exit_code >= 1
    assert "unsealed_tail" in warn.stdout
    assert "seal_tail" in warn.stdout
    missing = _cli("--vault", str(vault.parent / "nope"), "health", "--json")
    assert missing.exit_code == 3
    assert json.loads(missing.stderr)["error"]["code"] == "unknown"


def test_cli_repair(vault: Path) -> None:
    with Vault.open(vault) as v:
        faults.arm("checkpoint.write", "EIO")
        with pytest.raises(StorageError):
            v.commit(sample_records(1))
        faults.disarm()
    before = _snapshot(vault)
    dry = _cli("--vault", str(vault), "repair", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    assert [(r["name"], r["status"]) for r in json.loads(dry.stdout)["repairs"]] == [
        ("seal_tail", "planned")
    ]
    assert _snapshot(vault) == before
    bad = _cli("--vault", str(vault), "repair", "--approve", "nonsense")
    assert bad.exit_code == 2
    done = _cli("--vault", str(vault), "repair")
    assert done.exit_code == 0, done.output
    assert "seal_tail (low risk): done (entry 6)" in done.stdout
    assert [e["actor"] for e in _repair_entries(vault)] == ["echoctl repair"]
