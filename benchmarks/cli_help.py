"""How long ``glassbox --help`` takes, as a new user types it (figures for BENCHMARKS.md).

    python benchmarks/cli_help.py               # 20 runs of each command
    python benchmarks/cli_help.py --runs 50

Each run is a fresh process (``glassbox --help`` through the installed entry point when it
is on PATH, else ``python -m glassbox.cli``), timed from start to exit; the script prints
the machine, the load average before and after, and the min / median / max per command.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

COMMANDS = (["--help"], ["--version"], ["extract", "--help"], ["demo", "--help"])


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def time_once(argv: list[str]) -> float:
    """Seconds from starting ``argv`` to its exit (output discarded)."""
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    """Time every command ``--runs`` times and print one row each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    exe = shutil.which("glassbox")
    base = [exe] if exe else [sys.executable, "-m", "glassbox.cli"]
    print(
        f"# glassbox CLI start-up: {os.cpu_count()} CPUs ({_cpu()}), Python "
        f"{platform.python_version()}, via {'glassbox' if exe else 'python -m glassbox.cli'}, "
        f"load average {os.getloadavg()[0]:.2f} at start"
    )
    time_once([*base, "--help"])  # warm the file cache once, like any second invocation
    for command in COMMANDS:
        times = [time_once([*base, *command]) for _ in range(args.runs)]
        print(
            f"glassbox {' '.join(command):<16} min {min(times):.3f} s  "
            f"median {statistics.median(times):.3f} s  max {max(times):.3f} s  ({args.runs} runs)"
        )
    print(f"load average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
