"""``search``: the full-text index's build rate, query latency, size, and its cost to a commit.

(a) **Build at N items** (``--items``): a fresh catalog file with the
search index's own table (``SearchIndex.ddl``, the FTS5 table the vault
keeps) and an ``items`` table (``ItemIndex.ddl``) of N rows; the N workload
items (``workload.make_item``: 2 KiB news items, title, author, URL and
~1.7 KiB of Zipf-distributed text) made into search rows by
``index.search.doc_of_blob`` and written by ``index.search.insert_docs``,
10,000 a transaction; items/s of that (making the items is timed apart and
left out). Then the index's size on disk per item (the FTS5 shadow tables'
pages, ``dbstat``).

(b) **Queries at N items**, through the service (``services.search.search``,
the page of 50 with snippets, default filters): a *common* word (the
workload's most frequent word: in nearly every item), a *rare* word (in
about 0.01 % of the items) and a *phrase* (two adjacent words of one item's
title); p50 and p95 over repeated runs. Beside them, on the same titles and
texts: a plain ``LIKE '%word%'`` scan of the titles in an SQLite table (the
naive baseline) and ``rg`` (ripgrep; ArchiveBox's search backend) over the
texts exported one item a line, each reported as a ratio to the index.

(c) **Build from the log, real items**: ``Vault.rebuild(["search"])`` on a
vault holding the GH Archive hour of the shared corpora (7,702 events): blob
reads, JSON decoding and FTS5 inserts, items/s.

(d) **Commit cost**: the same hour imported into a fresh vault with the
search index attached and without it, alternated, 3 times each; the
median items/s of each and their ratio. (The ``commit`` benchmark commits
file captures, which have no item, with no derived index attached: the
search index cannot change its figure.)
"""

from __future__ import annotations

import shutil
import sqlite3
import statistics
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any, cast

from echo_archive import index as standard
from echo_archive.harvest.importer import import_files
from echo_archive.harvest.reparse import derived_indexes
from echo_archive.index.items import ItemIndex
from echo_archive.index.search import SearchIndex, doc_of_blob, insert_docs
from echo_archive.services.search import search
from echo_archive.vault.catalog import SQLiteCatalog
from echo_archive.vault.vault import Vault
from workload import ORIGIN, Result, make_item, peak_rss_mb, percentile, say

CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"
BUILD_TARGET = 20_000  # items/s
QUERY_TARGET_MS = 10.0  # p50
CHUNK = 10_000


class _Catalogued:
    """What the search service reads of a vault: its catalog (here a bare benchmark file)."""

    def __init__(self, catalog: SQLiteCatalog) -> None:
        self.catalog = catalog


def _docs(start: int, end: int) -> tuple[list[Any], list[tuple[Any, ...]]]:
    docs, items = [], []
    for i in range(start, end):
        doc = doc_of_blob(i, i, make_item(i).replace(b'"by"', b'"author"'))
        assert doc is not None
        docs.append(doc)
        items.append(
            ("hn", "bench", str(i), i, i, b"\0" * 32, 0, 1, "2026-12-08T00:00:00.000000Z", i, "")
        )
    return docs, items


def _timed_ms(fn: Any, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def run(out: Path, items: int) -> Result:
    """Run (a) to (d) (module docstring)."""
    result = Result("search")
    work = out / "search"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    _build_and_query(result, work, items)
    _from_the_log(result, work)
    shutil.rmtree(work, ignore_errors=True)
    return result


def _build_and_query(result: Result, work: Path, n: int) -> None:
    path = work / "search.sqlite"
    sqlite3.connect(path).close()  # the catalog's own settings (WAL, synchronous=FULL) on open
    catalog = SQLiteCatalog.open(path, readonly=False)
    catalog.create_tables(ItemIndex.ddl)
    catalog.create_tables(SearchIndex.ddl)
    export = (work / "texts.txt").open("w", encoding="utf-8")
    plain = sqlite3.connect(work / "titles.sqlite")
    plain.execute("CREATE TABLE titles(id INTEGER PRIMARY KEY, title TEXT, body TEXT)")
    words: Counter[str] = Counter()
    make_s = build_s = 0.0
    say(f"search: building the index of {n:,} items")
    for start in range(0, n, CHUNK):
        t0 = time.perf_counter()
        docs, rows = _docs(start, min(n, start + CHUNK))
        make_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        with catalog.transaction("bench: search rows"):
            insert_docs(catalog, docs)
        build_s += time.perf_counter() - t0
        with catalog.transaction("bench: item rows"):
            catalog.executemany("INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        plain.executemany("INSERT INTO titles VALUES (?, ?, ?)", [(d[0], d[1], d[2]) for d in docs])
        export.writelines(f"{d[0]}\t{d[1]}\t{d[2]}\n" for d in docs)
        if start < 200_000:
            for d in docs[:200]:
                words.update(d[2].lower().split())
    plain.commit()
    export.close()
    rate = n / build_s
    result.add(f"index build at N = {n:,} (2 KiB items)", rate, "items/s", at_least=BUILD_TARGET)
    result.details["build_seconds"] = round(build_s, 2)
    result.details["make_seconds"] = round(make_s, 2)
    size = catalog.query_one("SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'search_fts%'")
    per_item = int(size[0]) / n if size and size[0] else 0.0
    result.add("index size per item", per_item, "bytes")
    result.notes.append(
        f"index size {per_item:,.0f} bytes per item (text ~1.7 KiB each; FTS5 stores the "
        "content for snippets, plus the inverted index)"
    )
    vault = cast(Vault, _Catalogued(catalog))
    common = next(w for w, _ in words.most_common() if w.isalpha() and len(w) > 2)
    counts = sorted(words.items(), key=lambda kv: kv[1])
    rare = next(w for w, c in counts if c >= 2 and w.isalpha() and len(w) > 5)
    title = next(iter(catalog.query("SELECT title FROM search_fts WHERE rowid = ?", (n // 2,))))
    phrase = '"' + " ".join(str(title[0]).split()[:2]) + '"'
    result.details["queries"] = {"common": common, "rare": rare, "phrase": phrase}
    for label, q, runs in (
        ("common word", common, 15),
        ("rare word", rare, 60),
        ("phrase", phrase, 60),
    ):
        search(vault, q)  # warm
        samples = _timed_ms(lambda q=q: search(vault, q), runs)
        found = search(vault, q, limit=1, total=True).total or 0
        p50 = percentile(samples, 50)
        result.add(f"query p50, {label} ({found:,} hits)", p50, "ms", below=QUERY_TARGET_MS)
        result.add(f"query p95, {label}", percentile(samples, 95), "ms")
        like = _timed_ms(
            lambda q=q: plain.execute(
                "SELECT id FROM titles WHERE title LIKE ? OR body LIKE ? LIMIT 50",
                (f"%{q.strip(chr(34))}%", f"%{q.strip(chr(34))}%"),
            ).fetchall(),
            3,
        )
        like_full = _timed_ms(
            lambda q=q: plain.execute(
                "SELECT count(*) FROM titles WHERE title LIKE ? OR body LIKE ?",
                (f"%{q.strip(chr(34))}%", f"%{q.strip(chr(34))}%"),
            ).fetchall(),
            3,
        )
        result.add(f"LIKE scan (first 50), {label}", statistics.median(like), "ms")
        result.add(f"LIKE scan (all matches), {label}", statistics.median(like_full), "ms")
        result.add(f"LIKE (all) / index, {label}", statistics.median(like_full) / p50, "x")
        rg = shutil.which("rg")
        if rg:
            took = _timed_ms(
                lambda q=q, rg=rg: subprocess.run(
                    [rg, "-i", "-c", "-F", q.strip('"'), str(work / "texts.txt")],
                    capture_output=True,
                    check=False,
                ),
                3,
            )
            result.add(f"ripgrep over the texts, {label}", statistics.median(took), "ms")
            result.add(f"ripgrep / index, {label}", statistics.median(took) / p50, "x")
    if not shutil.which("rg"):
        result.notes.append("ripgrep not installed: its column is absent (apt-get install ripgrep)")
    catalog.close()
    plain.close()


def _from_the_log(result: Result, work: Path) -> None:
    hours = sorted((CORPORA / "gharchive").glob("*.json.gz"))
    if not hours:
        result.notes.append(f"no GH Archive hour in {CORPORA / 'gharchive'}: (c) and (d) skipped")
        return
    with_rates: list[float] = []
    without_rates: list[float] = []
    original = standard.standard_indexes
    for trial in range(6):
        keep = trial % 2 == 0
        path = work / f"hour-{trial}"
        Vault.create(path, origin=ORIGIN).close()
        if not keep:
            standard.standard_indexes = lambda reparse=None: [  # type: ignore[assignment,misc]
                i for i in original(reparse) if i.name != "search"
            ]
        try:
            with Vault.open(path) as v:
                t0 = time.perf_counter()
                report = import_files(v, hours, workers=0)
                took = time.perf_counter() - t0
                new = report.totals()["new"]
                (with_rates if keep else without_rates).append(new / took)
        finally:
            standard.standard_indexes = original  # type: ignore[assignment]
        if trial == 0:
            with Vault.open(path, derived=derived_indexes()) as v:
                t0 = time.perf_counter()
                v.rebuild(["search"])
                took = time.perf_counter() - t0
                rows = v.catalog.query_one("SELECT count(*) FROM search_fts")
                count = int(rows[0]) if rows else 0
            result.add(
                f"rebuild from the log, GH Archive hour ({count:,} items)",
                count / took,
                "items/s",
                at_least=BUILD_TARGET,
            )
        shutil.rmtree(path, ignore_errors=True)
    a, b = statistics.median(with_rates), statistics.median(without_rates)
    result.add("import+commit with the search index", a, "items/s")
    result.add("import+commit without it", b, "items/s")
    result.add("with / without", a / b, "x")
    result.details["import_rates"] = {"with": with_rates, "without": without_rates}
    result.details["peak_rss_mb"] = peak_rss_mb()
