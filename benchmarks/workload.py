"""Shared pieces of the vault benchmarks: the item workload, the N-leaf vault, figures.

The workload is a stream of 2 KiB JSON items shaped like harvested news items
(``id``, ``title``, ``url``, ``by``, ``time``, ``score``, ``descendants``,
``text``), every one different and each exactly :data:`ITEM_SIZE` bytes. Item
``i`` is a pure function of ``i`` (:func:`make_item`), so a benchmark can
regenerate the exact bytes a vault holds instead of reading them back.

The text is cut from a fixed pseudo-random corpus of Zipf-distributed
pseudo-words, so items compress like prose (zstd level 3 takes them to roughly
60% of their size) instead of like zeros or like noise.
"""

from __future__ import annotations

import json
import logging
import math
import random
import resource
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import Any

import structlog

from echo_archive.vault.vault import Record, Vault

ITEM_SIZE = 2048
"""Size in bytes of every generated item (compact JSON, ASCII)."""

BATCH = 1000
"""Records per :meth:`Vault.commit` (one durable commit and one checkpoint each)."""

VAULT_DIR = "vault"
"""Name of the shared N-leaf vault under the output directory."""

ORIGIN = "echo.archive/bench00000000000"
"""Origin of the benchmark vaults (fixed, so runs are comparable)."""

_SEED = 20261122
_CORPUS_CHARS = 1 << 20
_MASK64 = (1 << 64) - 1


def _build_corpus() -> str:
    """Return ~1 MiB of text: Zipf-distributed pseudo-words over a 4,000-word vocabulary."""
    rng = random.Random(_SEED)
    syllables = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"] + ["th", "st", "ng"]
    vocab: list[str] = []
    seen: set[str] = set()
    while len(vocab) < 4000:
        word = "".join(rng.choice(syllables) for _ in range(rng.choice((1, 2, 2, 3, 3, 4))))
        if word not in seen:
            seen.add(word)
            vocab.append(word)
    weights = [1.0 / (rank + 1) for rank in range(len(vocab))]
    words = rng.choices(vocab, weights, k=_CORPUS_CHARS // 5)
    text = " ".join(words)
    # Some sentence structure: capitals and full stops every ~12 words.
    parts = text.split(" ")
    for k in range(0, len(parts), 12):
        parts[k] = parts[k].capitalize()
        if k:
            parts[k - 1] += "."
    return " ".join(parts)[:_CORPUS_CHARS]


_CORPUS = _build_corpus()
_SPAN = len(_CORPUS) - ITEM_SIZE


def _mix(x: int) -> int:
    """SplitMix64 finalizer: a cheap, well-spread pseudo-random function of ``x``."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def make_item(i: int) -> bytes:
    """Return item ``i``: a news-item JSON object of exactly :data:`ITEM_SIZE` bytes.

    Deterministic: the same ``i`` always gives the same bytes, and different
    ``i`` give different bytes (the id, url and offsets all depend on ``i``).
    """
    r = _mix(i)
    t0 = r % _SPAN
    title = _CORPUS[t0 : t0 + 24 + (r >> 20) % 60].strip().capitalize()
    slug = "-".join(title.lower().replace(".", "").split()[:6]) or "item"
    item = {
        "id": 40_000_000 + i,
        "type": "story",
        "by": _CORPUS[(r >> 8) % _SPAN : (r >> 8) % _SPAN + 12].split(" ")[0].lower() or "anon",
        "time": 1_763_000_000 + i * 7,
        "title": title,
        "url": f"https://news.example.org/{2025 + (r >> 40) % 2}/{slug}-{i}",
        "score": (r >> 12) % 900,
        "descendants": (r >> 24) % 300,
        "text": "",
    }
    head = json.dumps(item, separators=(",", ":")).encode("ascii")
    room = ITEM_SIZE - len(head)
    start = (r >> 32) % (_SPAN - room)
    text = _CORPUS[start : start + room].encode("ascii")
    # head ends with `"text":""}`: put the text between the last two quotes.
    return head[:-2] + text + head[-2:]


MTIME = "2026-11-22T01:41:19.000000Z"
"""The ``mtime`` of every benchmark record (fixed, so runs write the same entries)."""


def item_meta(i: int) -> dict[str, Any]:
    """The meta of item ``i``'s record: a ``file`` capture (docs/entries.md) named after it."""
    return {"kind": "file", "name": f"item-{i}.json", "size": ITEM_SIZE, "mtime": MTIME}


def records(start: int, count: int) -> list[Record]:
    """Return the records of items ``start .. start+count-1`` (``file`` captures, blob ``body``)."""
    return [
        Record("capture", item_meta(i), {"body": make_item(i)}) for i in range(start, start + count)
    ]


def item_digest(i: int) -> bytes:
    """The blob digest of item ``i`` (SHA-256 of its bytes)."""
    return sha256(make_item(i)).digest()


# --------------------------------------------------------------------------- filling a vault


@dataclass
class FillStats:
    """Timings of :func:`fill`: seconds spent inside :meth:`Vault.commit` only.

    Attributes:
        items: items committed.
        commit_seconds: total time inside ``Vault.commit``.
        tail_items, tail_seconds: the same over the last 10% of the items.
        generate_seconds: time spent generating the items (not part of the figures).

    """

    items: int = 0
    commit_seconds: float = 0.0
    tail_items: int = 0
    tail_seconds: float = 0.0
    generate_seconds: float = 0.0
    batch_seconds: list[float] = field(default_factory=list)


def fill(
    vault: Vault,
    total: int,
    *,
    batch: int = BATCH,
    progress: Callable[[int, FillStats], None] | None = None,
) -> FillStats:
    """Commit items ``0 .. total-1`` into an empty ``vault``, ``batch`` records per commit.

    Only the :meth:`Vault.commit` calls are timed; generating the records (the
    benchmark's own input) is timed apart and excluded from the figures.
    """
    stats = FillStats()
    tail_from = total - max(1, total // 10)
    reported = 0
    for start in range(0, total, batch):
        count = min(batch, total - start)
        t0 = time.perf_counter()
        recs = records(start, count)
        t1 = time.perf_counter()
        vault.commit(recs)
        t2 = time.perf_counter()
        stats.generate_seconds += t1 - t0
        stats.commit_seconds += t2 - t1
        stats.batch_seconds.append(t2 - t1)
        stats.items += count
        if start >= tail_from:
            stats.tail_items += count
            stats.tail_seconds += t2 - t1
        if progress and (stats.items * 10 // total > reported or stats.items == total):
            reported = stats.items * 10 // total
            progress(stats.items, stats)
    return stats


def print_progress(label: str, total: int) -> Callable[[int, FillStats], None]:
    """A :func:`fill` progress callback printing the running rate every 10%."""

    def report(done: int, stats: FillStats) -> None:
        rate = done / stats.commit_seconds if stats.commit_seconds else 0.0
        rss = peak_rss_mb()
        say(f"  {label}: {done:>9,}/{total:,} items, {rate:,.0f} items/s, peak RSS {rss:.0f} MB")

    return report


def vault_ok(path: Path, items: int) -> bool:
    """True when ``path`` holds a sealed vault of exactly ``items`` benchmark items."""
    if not (path / "echo.toml").is_file():
        return False
    try:
        with Vault.open(path, readonly=True) as v:
            size, _ = v.log_state()
            if size != items or v.size != items:
                return False
            # Same workload: the first and last entries name the regenerated items.
            return all(v.entry(i).blobs[0].digest == item_digest(i) for i in {0, items - 1})
    except Exception:  # any damage means "rebuild"
        return False


def build_vault(path: Path, items: int, label: str = "build") -> FillStats:
    """Create a fresh vault at ``path`` (removing what is there) holding ``items`` items."""
    if path.exists():
        shutil.rmtree(path)
    with Vault.create(path, origin=ORIGIN) as v:
        return fill(v, items, progress=print_progress(label, items))


def ensure_vault(out: Path, items: int) -> Path:
    """Return ``<out>/vault``, built with ``items`` items unless already there."""
    path = out / VAULT_DIR
    if vault_ok(path, items):
        say(f"reusing {path} ({items:,} items)")
    else:
        say(f"building {path} with {items:,} items")
        build_vault(path, items)
    return path


# --------------------------------------------------------------------------- figures


@dataclass
class Figure:
    """One measured figure, and its target when it has one.

    Attributes:
        name: what was measured (``"items/s sustained (last 10%)"``).
        value: the measured value.
        unit: its unit (``"items/s"``, ``"µs"``, ``"MB"``, ``"x"``...).
        target: the target as text (``">= 10,000"``), or None for an informational figure.
        ok: whether the target is met (None without a target).

    """

    name: str
    value: float
    unit: str
    target: str | None = None
    ok: bool | None = None


@dataclass
class Result:
    """What one benchmark reports: its figures, notes for the reader, and details."""

    benchmark: str
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def add(
        self,
        name: str,
        value: float,
        unit: str,
        *,
        at_least: float | None = None,
        below: float | None = None,
        at_most: float | None = None,
    ) -> Figure:
        """Record a figure; ``at_least`` / ``below`` / ``at_most`` make it a target (>=, <, <=)."""
        target: str | None = None
        ok: bool | None = None
        if at_least is not None:
            target, ok = f">= {_num(at_least)}", value >= at_least
        elif below is not None:
            target, ok = f"< {_num(below)}", value < below
        elif at_most is not None:
            target, ok = f"<= {_num(at_most)}", value <= at_most
        fig = Figure(name, value, unit, target, ok)
        self.figures.append(fig)
        return fig

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping of the result."""
        return asdict(self)


def _num(x: float) -> str:
    return f"{x:,.0f}" if x == int(x) else f"{x:,.2f}"


def percentile(samples: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` percentile (``q`` in (0, 100]) of ``samples``."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def timed_us(fn: Callable[[int], object], args: Sequence[int]) -> list[float]:
    """Call ``fn(a)`` for each ``a`` in ``args``; return each call's wall time in µs."""
    out = []
    clock = time.perf_counter_ns
    for a in args:
        t0 = clock()
        fn(a)
        out.append((clock() - t0) / 1000)
    return out


def peak_rss_mb() -> float:
    """The peak resident set size of this process, in MB (10^6 bytes; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


def say(text: str) -> None:
    """Print a progress line at once (children share the terminal with the runner)."""
    print(text, flush=True)


def quiet_logs() -> None:
    """Keep the vault's info logs (``vault.created``...) off the benchmark output."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
