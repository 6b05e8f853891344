"""Run the vault benchmarks (``make bench``) and print their figures against the targets.

Usage::

    .venv/bin/python benchmarks/run.py [--items N] [--out DIR] [--only NAME[,NAME]] [--keep]

Each benchmark runs in its own subprocess (this script with ``--child NAME``),
so its peak RSS is its own; the child writes its figures as JSON and the
runner prints one table at the end and writes every figure to
``<out>/results.json``. ``proofs``, ``verify``, ``pymerkle`` and ``recovery``
use the N-leaf vault ``<out>/vault`` that ``commit`` builds; run alone, they
reuse it when it holds exactly N benchmark items and build it first
otherwise. The vault is removed at the end unless ``--keep`` is given.
``harvest`` and ``import`` need no vault (and ignore ``--items``): they work
on the shared corpora; ``writer``, ``scheduler``, ``idle`` and ``soak`` build
their own small vaults; ``supervisor`` needs none (its fault scenarios are
simulated).

The exit status is 0 when every benchmark ran (whether or not its targets were
met: the table says PASS or MISS), 1 when one failed to run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCHMARKS = (
    "commit",
    "proofs",
    "verify",
    "pymerkle",
    "harvest",
    "import",
    "writer",
    "supervisor",
    "search",
    "scheduler",
    "idle",
    "recovery",
    "soak",
    "api",
    "stream",
)
NEEDS_VAULT = frozenset({"proofs", "verify", "pymerkle", "recovery"})
HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.child:
        return _child(args)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    names = _selected(args.only)
    print(f"benchmarks: {', '.join(names)}; N = {args.items:,} items; output in {out}/", flush=True)
    started = time.time()
    runs: dict[str, dict[str, Any]] = {}
    errors: list[str] = []
    vault_failed = False
    if NEEDS_VAULT.intersection(names) and "commit" not in names:
        build = _spawn("build", args)
        if "error" in build:
            errors.append(f"building the N-leaf vault: {build['error']}")
            vault_failed = True
    for name in names:
        if vault_failed and name in NEEDS_VAULT:
            runs[name] = {"benchmark": name, "error": "the N-leaf vault could not be built"}
            continue
        runs[name] = _spawn(name, args)
        if "error" in runs[name]:
            errors.append(f"{name}: {runs[name]['error']}")
    if not args.keep:
        shutil.rmtree(out / "vault", ignore_errors=True)
    results = {
        "items": args.items,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 1),
        "machine": _machine(),
        "benchmarks": runs,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    _print_table(results)
    print(f"\nfigures written to {out / 'results.json'}", flush=True)
    for err in errors:
        print(f"ERROR {err}", file=sys.stderr, flush=True)
    return 1 if errors else 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="benchmarks/run.py",
        description=(
            "Benchmarks: commit, proofs, verify, pymerkle, harvest, import, writer, supervisor, "
            "search, scheduler, idle, recovery, soak, api, stream (benchmarks/README.md)."
        ),
    )
    parser.add_argument(
        "--items",
        type=_positive,
        default=1_000_000,
        metavar="N",
        help="items in the benchmark vault (default: 1,000,000)",
    )
    parser.add_argument(
        "--api-items",
        type=_positive,
        default=None,
        metavar="N",
        help="items in the api benchmark's vault (default: 100,000; it builds its own)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("bench-out"),
        metavar="DIR",
        help="where the vault, scratch files and results.json go (default: bench-out/)",
    )
    parser.add_argument(
        "--only",
        metavar="NAME[,NAME]",
        help=f"run only these benchmarks, comma-separated, among: {', '.join(BENCHMARKS)}",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep <out>/vault at the end (to reuse it later)"
    )
    parser.add_argument("--child", choices=(*BENCHMARKS, "build"), help=argparse.SUPPRESS)
    parser.add_argument("--result-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.only:
        _selected(args.only, parser)
    return args


def _positive(text: str) -> int:
    value = int(text.replace("_", "").replace(",", ""))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _selected(only: str | None, parser: argparse.ArgumentParser | None = None) -> list[str]:
    if not only:
        return list(BENCHMARKS)
    wanted = {n.strip() for n in only.split(",") if n.strip()}
    unknown = wanted - set(BENCHMARKS)
    if unknown and parser is not None:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; choose among {list(BENCHMARKS)}")
    return [n for n in BENCHMARKS if n in wanted]


# --------------------------------------------------------------------------- runner side


def _spawn(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one benchmark in a fresh interpreter and return what it reported."""
    result_file = args.out / f".{name}.result.json"
    result_file.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        name,
        "--items",
        str(args.items),
        "--out",
        str(args.out),
        "--result-file",
        str(result_file),
    ]
    if args.api_items is not None:
        cmd += ["--api-items", str(args.api_items)]
    print(f"\n== {name}", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, check=False)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0 or not result_file.is_file():
        return {"benchmark": name, "error": f"exited with status {proc.returncode}"}
    data: dict[str, Any] = json.loads(result_file.read_text())
    result_file.unlink()
    data["wall_seconds"] = round(seconds, 1)
    return data


def _machine() -> dict[str, Any]:
    try:
        from importlib.metadata import version

        pymerkle = version("pymerkle")
    except Exception:
        pymerkle = None
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "pymerkle": pymerkle,
    }


def _fmt(value: float, unit: str) -> str:
    if unit in ("items/s", "MB/s"):
        return f"{value:,.0f} {unit}"
    if unit == "µs":
        return f"{value:,.1f} µs"
    if unit == "x":
        return f"{value:,.2f}x"
    if unit in ("MB", "ms", "s"):
        return f"{value:,.1f} {unit}"
    return f"{value:,.3g} {unit}"


def _print_table(results: dict[str, Any]) -> None:
    rows: list[tuple[str, str, str, str, str]] = []
    notes: list[str] = []
    for name, run in results["benchmarks"].items():
        if "error" in run:
            rows.append((name, "(did not run)", run["error"], "", "ERROR"))
            continue
        for fig in run["figures"]:
            verdict = "" if fig["ok"] is None else ("PASS" if fig["ok"] else "MISS")
            target = "" if fig["target"] is None else f"{fig['target']} {_unit(fig['unit'])}"
            rows.append((name, fig["name"], _fmt(fig["value"], fig["unit"]), target, verdict))
        if not any(fig["name"] == "peak RSS" for fig in run["figures"]):
            rows.append((name, "peak RSS", f"{run['peak_rss_mb']:,.1f} MB", "", ""))
        notes.extend(f"{name}: {n}" for n in run["notes"])
    head = ("benchmark", "figure", "value", "target", "result")
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(5)]
    line = "  ".join("-" * w for w in widths)
    machine = results["machine"]
    print(
        f"\nResults: N = {results['items']:,} items, {machine['cpus']} CPUs, "
        f"Python {machine['python']}, SQLite {machine['sqlite']}, pymerkle {machine['pymerkle']}"
    )
    print(line)
    print("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    print(line)
    previous = None
    for row in rows:
        cells = (row[0] if row[0] != previous else "", *row[1:])
        previous = row[0]
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
    print(line)
    if notes:
        print("\nNotes:")
        for note in notes:
            print(f"- {note}")


def _unit(unit: str) -> str:
    return "" if unit == "x" else unit


# --------------------------------------------------------------------------- child side


def _child(args: argparse.Namespace) -> int:
    """Run one benchmark in this process and write its result file."""
    sys.path.insert(0, str(HERE))
    import workload

    workload.quiet_logs()
    out: Path = args.out
    name: str = args.child
    vault = out / workload.VAULT_DIR
    if name == "build":
        workload.ensure_vault(out, args.items)
        result = workload.Result("build")
    elif name == "commit":
        import bench_commit

        result = bench_commit.run(out, args.items)
    elif name == "harvest":  # needs no N-leaf vault
        import bench_harvest

        result = bench_harvest.run(out)
    elif name == "import":  # needs no N-leaf vault
        import bench_import

        result = bench_import.run(out)
    elif name == "writer":  # needs no N-leaf vault
        import bench_writer

        result = bench_writer.run(out)
    elif name == "supervisor":  # needs no vault: the fault scenarios are simulated
        import bench_supervisor

        result = bench_supervisor.run(out)
    elif name == "search":  # its own index of N items, and the shared corpora
        import bench_search

        result = bench_search.run(out, args.items)
    elif name == "scheduler":  # needs no N-leaf vault
        import bench_scheduler

        result = bench_scheduler.run(out)
    elif name == "soak":  # needs no N-leaf vault
        import bench_soak

        result = bench_soak.run(out)
    elif name == "api":  # its own vault of items (--api-items)
        import bench_api

        result = bench_api.run(out, args.api_items)
    elif name == "stream":  # its own small vault and a loopback feed
        import bench_stream

        result = bench_stream.run(out)
    elif name == "idle":  # needs no N-leaf vault
        import bench_service

        result = bench_service.run_idle(out)
    else:
        workload.ensure_vault(out, args.items)
        if name == "proofs":
            import bench_proofs

            result = bench_proofs.run(vault, args.items)
        elif name == "verify":
            import bench_verify

            result = bench_verify.run(vault, out, args.items)
        elif name == "recovery":
            import bench_service

            result = bench_service.run_recovery(vault, out, args.items)
        else:
            import bench_pymerkle

            result = bench_pymerkle.run(vault, out, args.items)
    data = result.to_json()
    data["peak_rss_mb"] = workload.peak_rss_mb()
    args.result_file.write_text(json.dumps(data, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
