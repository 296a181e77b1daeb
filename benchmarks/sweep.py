"""Wall time of a grid on 1 and on 2 (or more) local worker processes, and the scaling ratio.

    python benchmarks/sweep.py examples/abs_sparsity.toml --set steps=3000
    python benchmarks/sweep.py examples/extract_suite2.toml --set 'target=["random:10-10-10-1"]'

Each worker count runs the whole grid from an empty sweep folder, exactly as
``glassbox sweep GRID --out DIR --workers N [--set ...]`` does (the time includes starting
the pool). The script then checks that every point's result (timings aside) is the same
whatever the worker count, and prints the machine, the commit and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from glassbox.cli.sweep import parse_sets
from glassbox.sweep import load_grid, run_sweep
from glassbox.sweep.executors import open_executor, usable_cores


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        )
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True)
        return out.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _results(out: Path) -> dict[str, Any]:
    found = {}
    for path in (out / "points").glob("*/result.json"):
        record = json.loads(path.read_text())
        record.pop("timing")
        found[record["id"]] = record
    return found


def main() -> None:
    """Run the grid once per worker count and print the times and their ratio."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("grid")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument(
        "--workers",
        default="1,2",
        help="worker counts to time, comma separated; a count given twice keeps its faster run",
    )
    ap.add_argument("--threads", type=int, default=None, help="threads per worker [cores // N]")
    ap.add_argument(
        "--keep", default=None, help="write the sweep folders here (kept), not to a temp dir"
    )
    args = ap.parse_args()
    grid = load_grid(args.grid, parse_sets(tuple(args.sets)))
    counts = [int(w) for w in args.workers.split(",")]
    sets = "".join(f" --set '{s}'" for s in args.sets)
    threads = f" --threads {args.threads}" if args.threads else ""
    print(
        f"# sweep benchmark: {grid.name} ({grid.job}), {len(grid.points())} points; "
        f"{usable_cores()} cores ({_cpu()}), Python {platform.python_version()}, "
        f"commit {_commit()}"
    )
    times: dict[int, float] = {}
    found: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="sweep-bench.") as scratch:
        tmp = args.keep or scratch
        for k, n in enumerate(counts):
            out = Path(tmp) / f"run{k}-w{n}"
            load = os.getloadavg()[0]
            start = time.perf_counter()
            with open_executor(workers=n, threads=args.threads) as pool:
                outcome = run_sweep(grid, out, pool)
            times[n] = min(time.perf_counter() - start, times.get(n, float("inf")))
            found[n] = _results(out)
            print(
                f"glassbox sweep {args.grid} --out DIR --workers {n}{threads}{sets}: "
                f"{times[n]:.1f} s wall ({outcome.ran} points run, {len(outcome.failed)} failed); "
                f"load average {load:.2f} before, {os.getloadavg()[0]:.2f} after",
                flush=True,
            )
    base = counts[0]
    for n in dict.fromkeys(counts[1:]):
        if n == base:
            continue
        same = "identical" if found[n] == found[base] else "DIFFERENT"
        print(
            f"{base} -> {n} workers (fastest run of each): {times[base] / times[n]:.2f}x faster; "
            f"results point by point: {same}"
        )


if __name__ == "__main__":
    main()
