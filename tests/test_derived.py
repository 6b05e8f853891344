"""Derived indexes: rebuild equals incremental, verify names a tampered row, old vaults open.

Real parts throughout: real vaults on disk, harvests against a real loopback
HTTP server serving recorded Hacker News bodies (changed between harvests so
versions and observations arise), imports of the shared corpora, and the
real catalog file edited with sqlite3 to tamper with a derived row.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from echo_archive.harvest.cycle import HarvestRun
from echo_archive.harvest.engine import FetchConfig, Fetcher
from echo_archive.harvest.importer import import_files
from echo_archive.harvest.limits import HostLimits, LimitConfig
from echo_archive.harvest.recordings import read_recording
from echo_archive.harvest.reparse import derived_indexes
from echo_archive.index import INDEX_NAMES
from echo_archive.model import Request
from echo_archive.pipeline.batch import capture_meta, item_blob
from echo_archive.pipeline.versioning import content_digest
from echo_archive.schemas import ItemMeta, VersionMeta
from echo_archive.services.items import ItemKey, item_history
from echo_archive.sources.base import Feed
from echo_archive.sources.fred import FredSource
from echo_archive.sources.registry import SOURCES
from echo_archive.vault.derived import DerivedIndex
from echo_archive.vault.vault import Record, Vault
from echo_archive.vault.verify import verify_vault

from .conftest import file_meta, run_echoctl, shared_dir
from .httpfaults import FaultServer, Reply

IMPORTS = [
    "hackernews/topnews-vcr/hackernews_top_stories_details.yml",
    "reddit/praw/TestSubredditListings.test_hot.json",
    "github/github3py/Repository_events.json",
    "fred/pyfredapi-2024/test_series__test_get_series[json].yaml",
    "feeds/feedjira/TechCrunch.xml",
]
HN = "hackernews/topnews-vcr/hackernews_top_stories_details.yml"
SRC = Path(__file__).resolve().parents[1] / "src" / "echo_archive"


def corpus(rel: str) -> Path:
    return shared_dir("corpora") / rel


def snapshot(v: Vault) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every attached derived index, as the comparison reads them."""
    return {index.name: list(index.rows(v.catalog)) for index in v.derived}


class HnServer:
    """A loopback Hacker News: the recorded top stories, each changeable between harvests."""

    def __init__(self, server: FaultServer, limit: int) -> None:
        self.server = server
        exchanges = read_recording(corpus(HN)).exchanges[: limit + 1]
        self.listing = exchanges[0]
        self.stories = {urlsplit(ex.url).path: json.loads(ex.body) for ex in exchanges[1:]}
        self.server.route(
            urlsplit(self.listing.url).path,
            Reply(200, [("Content-Type", "application/json")], self.listing.body),
        )
        self.limit = limit
        self.publish()

    def publish(self) -> None:
        for path, story in self.stories.items():
            body = json.dumps(story).encode()
            self.server.route(path, Reply(200, [("Content-Type", "application/json")], body))

    def change(self, picks: list[int], edit_title: bool) -> None:
        paths = sorted(self.stories)
        for pick in picks:
            story = self.stories[paths[pick % len(paths)]]
            story["score"] = int(story.get("score", 0)) + 1  # an observation, never a version
            if edit_title:
                story["title"] = str(story.get("title", "")) + " (updated)"  # a version
        self.publish()

    @property
    def feed(self) -> Feed:
        return Feed("hn-top", "hn", {"list": "top", "limit": self.limit, "base_url": self.base})

    @property
    def base(self) -> str:
        return self.server.url("/v0")


def harvest(v: Vault, hn: HnServer) -> None:
    async def go() -> None:
        limits = HostLimits({hn.server.authority: LimitConfig(1000.0, 100.0, 4)})
        async with Fetcher(
            FetchConfig(max_attempts=1, allow_private=True), limits=limits
        ) as fetcher:
            await HarvestRun(v, fetcher, SOURCES, env={}).run([hn.feed])

    asyncio.run(go())


def indexes(hn: HnServer | None = None) -> list[DerivedIndex]:
    return derived_indexes({"hn-top": hn.feed} if hn else None)


Step = tuple[str, Any]
steps = st.lists(
    st.one_of(
        st.tuples(st.just("import"), st.sampled_from(IMPORTS)),
        st.tuples(
            st.just("harvest"),
            st.tuples(st.lists(st.integers(0, 50), max_size=4), st.booleans()),
        ),
        st.tuples(st.just("add"), st.binary(min_size=1, max_size=64)),
    ),
    min_size=1,
    max_size=5,
)


def _run_steps(tmp_path: Path, plan: list[Step]) -> None:
    path = tmp_path / f"v{len(list(tmp_path.iterdir()))}"
    with FaultServer() as server:
        hn = HnServer(server, 6)
        with Vault.create(path, origin="echo.archive/derived0test", derived=indexes(hn)) as v:
            for kind, arg in plan:
                if kind == "import":
                    import_files(v, [corpus(arg)], workers=0)
                elif kind == "harvest":
                    picks, edit_title = arg
                    hn.change(picks, edit_title)
                    harvest(v, hn)
                else:
                    v.commit(
                        [Record("capture", file_meta("evidence.bin", len(arg)), {"body": arg})]
                    )
            assert {i.name for i in v.derived} == set(INDEX_NAMES)
            incremental = snapshot(v)
            report = verify_vault(v, derived_sample=1.0)
            assert report.ok, report.problems[:5]
            assert v.rebuild() == list(INDEX_NAMES)
            rebuilt = snapshot(v)
        for name in INDEX_NAMES:
            assert rebuilt[name] == incremental[name], name
        assert any(incremental.values())


@pytest.mark.slow
@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=steps)
def test_rebuild_equals_incremental(tmp_path: Path, plan: list[Step]) -> None:
    _run_steps(tmp_path, plan)


@pytest.mark.slow
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=steps)
def test_rebuild_equals_incremental_many(tmp_path: Path, plan: list[Step]) -> None:
    _run_steps(tmp_path, plan)


@pytest.mark.slow
def test_rebuild_equals_incremental_with_a_gharchive_hour(tmp_path: Path) -> None:
    plan: list[Step] = [
        ("harvest", ([1, 2], False)),
        ("import", IMPORTS[0]),
        ("harvest", ([1, 3], True)),
        ("add", b"evidence"),
    ]
    _run_steps(tmp_path, plan)
    path = tmp_path / "hour"
    with Vault.create(path, derived=indexes()) as v:
        import_files(v, [corpus("gharchive/2015-01-01-0.json.gz")], workers=0)
        before = snapshot(v)
        v.rebuild()
        assert snapshot(v) == before
        assert len(before["captures"]) == 1  # the hour, re-parsed whole by the rebuild
        assert len(before["items"]) > 7000


# ---------------------------------------------------------------------- verify and rebuild
def echoctl(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess."""
    return run_echoctl(*args, timeout=300)


@pytest.mark.slow
def test_verify_names_each_tampered_derived_row_and_rebuild_repairs(tmp_path: Path) -> None:
    path = tmp_path / "vault"
    with Vault.create(path, derived=indexes()) as v:
        import_files(v, [corpus(IMPORTS[0]), corpus(IMPORTS[1])], workers=0)
    db = sqlite3.connect(path / "catalog.sqlite")
    with db:
        (native_id,) = db.execute("SELECT min(native_id) FROM items").fetchone()
        db.execute("UPDATE items SET versions = 7 WHERE native_id = ?", (native_id,))
        (capture,) = db.execute("SELECT min(idx) FROM captures").fetchone()
        db.execute("UPDATE captures SET status = 999 WHERE idx = ?", (capture,))
        (gone,) = db.execute("SELECT max(rowid) FROM observations").fetchone()
        db.execute("DELETE FROM observations WHERE rowid = ?", (gone,))
        db.execute("INSERT INTO leaves(leaf, idx) VALUES (?, 0)", (b"\x01" * 32,))
    db.close()
    done = echoctl("--vault", str(path), "verify", "--full", "--json")
    assert done.returncode == 1, done.stderr
    problems = json.loads(done.stdout)["problems"]
    refs = {p["ref"]: p["message"] for p in problems if p["kind"] == "derived"}
    item_ref = next(r for r in refs if r.startswith("items ") and repr(native_id) in r)
    assert refs[item_ref] == "versions stored 7, rebuilt 1"
    assert refs[f"captures {capture}"] == "status stored 999, rebuilt 200"
    assert any(r.startswith("observations ") and "row missing" in m for r, m in refs.items())
    assert any(r.startswith("leaves 0 ") and "extra row" in m for r, m in refs.items())
    assert len(refs) == 4, refs
    sampled = echoctl("--vault", str(path), "verify", "--json")  # the item index: always whole
    assert sampled.returncode == 1
    assert any(p["ref"] == item_ref for p in json.loads(sampled.stdout)["problems"])
    fixed = echoctl("--vault", str(path), "rebuild", "--json")
    assert fixed.returncode == 0, fixed.stderr
    assert json.loads(fixed.stdout)["rebuilt"] == list(INDEX_NAMES)
    again = echoctl("--vault", str(path), "verify", "--full")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "derived: leaves" in again.stdout


def test_rebuild_of_an_unknown_index_names_the_known_ones(vault_path: Path) -> None:
    done = echoctl("--vault", str(vault_path), "rebuild", "nope")
    assert done.returncode == 1
    assert "no derived index named 'nope'" in done.stderr
    assert "leaves, items, item_contents, captures, observations" in done.stderr


# ---------------------------------------------------------------------- old vaults, catch-up
def test_a_vault_without_the_new_tables_gets_them_on_open(tmp_path: Path) -> None:
    """A vault written before ``leaves`` and ``derived_state``: its writer adds them."""
    path = tmp_path / "vault"
    with Vault.create(path, derived=indexes()) as v:
        import_files(v, [corpus(IMPORTS[0])], workers=0)
        before = snapshot(v)
    db = sqlite3.connect(path / "catalog.sqlite")
    with db:
        db.execute("DROP TABLE leaves")
        db.execute("DROP TABLE derived_state")
    db.close()
    with Vault.open(path, readonly=True, derived=indexes()) as r:  # a reader changes nothing
        report = verify_vault(r, derived_sample=1.0)
        assert report.ok
        assert any("leaves is not built yet" in w for w in report.warnings)
    with Vault.open(path, derived=indexes()) as v:
        assert snapshot(v) == before
        assert verify_vault(v, derived_sample=1.0).ok


def test_entries_appended_without_the_indexes_are_caught_up(tmp_path: Path) -> None:
    path = tmp_path / "vault"
    with Vault.create(path, derived=indexes()) as v:
        import_files(v, [corpus(IMPORTS[0])], workers=0)
    with Vault.open(path) as bare:  # a writer that keeps no derived index
        bare.commit([Record("capture", file_meta("x.txt", 1), {"body": b"x"})])
    with Vault.open(path, readonly=True, derived=indexes()) as r:
        report = verify_vault(r, derived_sample=1.0)
        assert report.ok
        assert any("has applied" in w for w in report.warnings)
    with Vault.open(path, derived=indexes()) as v:
        size = v.log_state()[0]
        assert v.catalog.query_one("SELECT max(idx) FROM leaves") == (size - 1,)
        report = verify_vault(v, derived_sample=1.0)
        assert report.ok
        assert report.warnings == []


def test_leaf_lookup_finds_every_entry(tmp_path: Path) -> None:
    from echo_archive.index.leaves import capture_index, index_of_leaf

    path = tmp_path / "vault"
    with Vault.create(path, derived=indexes()) as v:
        import_files(v, [corpus(IMPORTS[0])], workers=0)
        for i in range(v.size):
            assert index_of_leaf(v.catalog, v.leaf_hash(i)) == i
        assert index_of_leaf(v.catalog, b"\x00" * 32) is None
        items = [i for i in range(v.size) if v.entry(i).type == "item"]
        for i in items:
            found = capture_index(v.catalog, v.entry(i), i)
            assert found is not None
            assert v.entry(found).type == "capture"
            assert found < i


# ---------------------------------------------------------------------- layers
def _imports_of(path: Path) -> set[str]:
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module == "echo_archive":
            found.update(f"echo_archive.{a.name}" for a in node.names)  # from echo_archive import x
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {m for m in found if m.startswith("echo_archive")}


BELOW_VAULT = (
    "echo_archive.vault",
    "echo_archive.errors",
    "echo_archive.faults",
    "echo_archive.schemas",
    "echo_archive.model",
)


@pytest.mark.parametrize("module", sorted((SRC / "vault").glob("*.py")), ids=lambda p: p.name)
def test_the_vault_imports_nothing_above_it(module: Path) -> None:
    above = {m for m in _imports_of(module) if not m.startswith(BELOW_VAULT)}
    assert not above, f"{module.name} imports {sorted(above)}"


@pytest.mark.parametrize("module", sorted((SRC / "index").glob("*.py")), ids=lambda p: p.name)
def test_the_derived_indexes_import_only_the_vault(module: Path) -> None:
    allowed = (*BELOW_VAULT, "echo_archive.index", "echo_archive.model")
    above = {m for m in _imports_of(module) if not m.startswith(allowed)}
    assert not above, f"{module.name} imports {sorted(above)}"


def test_importing_the_vault_loads_nothing_above_it() -> None:
    code = (
        "import sys, echo_archive.vault.vault, echo_archive.vault.verify, "
        "echo_archive.vault.evidence;"
        "print('\\n'.join(m for m in sys.modules if m.startswith('echo_archive')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(done.stdout.split())
    above = {m for m in loaded if not m.startswith(BELOW_VAULT) and m != "echo_archive"}
    assert not above, sorted(above)


def _v1_history(v: Vault) -> None:
    """Entries as a build before issue 9 wrote them: version 1 metas, no observed time.

    The real Jan 2025 GDP recording first, then the Nov 2024 one (imported out of
    time order), for the one observation FRED revised in between.
    """
    exchanges = read_recording(corpus(IMPORTS[3])).exchanges
    feed = Feed("import-fred", "fred")
    previous = None
    for n, ex in enumerate((exchanges[2], exchanges[0])):
        ex = replace(ex, fetched_at=f"2026-11-2{n}T00:00:00.000000Z")
        request = Request(url=ex.url)
        item = next(
            i
            for i in FredSource().parse(feed, request, ex).items
            if i.native_id == "GDP:2024-07-01"
        )
        [receipt] = v.commit(
            [Record("capture", capture_meta(feed, ex, None), {"body": ex.body})]
        ).receipts
        ref = "sha256:" + receipt.leaf_hash.hex()
        fields = {
            "source": "fred",
            "feed": feed.name,
            "native_id": item.native_id,
            "capture": ref,
            "content_digest": "sha256:" + content_digest(item).hex(),
            "previous": previous,
        }
        meta = ItemMeta(**fields) if previous is None else VersionMeta(**fields)
        blob = item_blob(item, ref, ex.fetched_at)
        [done] = v.commit(
            [Record("item" if previous is None else "version", meta, {"item": blob})]
        ).receipts
        previous = done.index


def test_a_vault_of_revision_1_item_index_opens_verifies_and_is_rebuilt(tmp_path: Path) -> None:
    """A vault a build before issue 9 wrote: v1 entries, no item_contents, items of revision 1."""
    path = tmp_path / "vault"
    with Vault.create(path, derived=indexes()) as v:
        _v1_history(v)
        before = snapshot(v)
    db = sqlite3.connect(path / "catalog.sqlite")
    with db:
        db.execute("ALTER TABLE items DROP COLUMN last_idx")
        db.execute("ALTER TABLE items DROP COLUMN observed_at")
        db.execute("DROP TABLE item_contents")
        db.execute("DELETE FROM derived_state WHERE name = 'item_contents'")
        db.execute("DROP TABLE derived_revisions")
    db.close()
    key = ItemKey("fred", "import-fred", "GDP:2024-07-01")
    with Vault.open(path, readonly=True, derived=indexes()) as r:  # a reader changes nothing
        report = verify_vault(r, derived_sample=1.0)
        assert report.ok, report.problems
        assert any("items was derived by revision 1" in w for w in report.warnings)
        assert any("item_contents is not built yet" in w for w in report.warnings)
        assert [h.item["text"] for h in item_history(r, key).history if h.item] == [
            "29349.924",  # v1: observed when its capture was fetched, here the later
            "29374.914",
        ]
    with Vault.open(path, derived=indexes()) as v:
        assert snapshot(v) == before
        report = verify_vault(v, derived_sample=1.0)
        assert report.ok, report.problems
        assert report.warnings == []
        assert v.catalog.query_one(
            "SELECT revision FROM derived_revisions WHERE name = 'items'"
        ) == (2,)
