"""Mutation testing of the code that decides the verdict: does the suite catch small bugs?

Each mutant is one small change to one line of the self-check, the sign methods, verify or
the probe (a comparison turned, ``and`` for ``or``, ``+`` for ``-``, ``min`` for ``max``, a
term dropped, ...), plus the named mutations of issue 23. Every mutant runs in its own copy
of ``src/`` (the working tree is never touched) against the tests that cover its module; a
test that fails or a run past the time limit kills it. On demand, not in CI:

    bash scripts/mutants                       # every module, every mutant (long)
    bash scripts/mutants --sample 40 --jobs 2  # 40 mutants per module, 2 at a time
    bash scripts/mutants --named               # the issue's named mutations only

It prints each survivor (file, line, change) and the score per module, and with ``--json``
writes them to a file.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Module (relative to src/glassbox) -> the tests that guard it.
MODULES: dict[str, list[str]] = {
    "extract/check.py": [
        "test_self_check.py",
        "test_verdict_guards.py",
        "test_extract.py",
        "test_deep_extract.py",
    ],
    "extract/signs/last_layer.py": [
        "test_verdict_guards.py",
        "test_extract.py",
        "test_deep_extract.py",
    ],
    "extract/signs/wiggle.py": ["test_verdict_guards.py", "test_deep_extract.py"],
    "verify/compare.py": [
        "test_verify_closed_forms.py",
        "test_verdict_guards.py",
        "test_verify.py",
    ],
    "verify/align.py": ["test_verify_closed_forms.py", "test_verdict_guards.py", "test_verify.py"],
    "verify/inputs.py": ["test_verdict_guards.py", "test_verify.py"],
    "oracle/probe.py": ["test_verdict_guards.py", "test_probe.py"],
    # The verdict's footing: counting and budgets, thresholds, records, files, the net itself,
    # the toy's data, the report's numbers and the sweep's grids.
    # The fast closed-form tests come first: with -x a mutant they kill costs seconds.
    "oracle/core.py": ["test_oracle_budgets.py", "test_oracle_core.py", "test_oracle_kinds.py"],
    "extract/tolerance.py": [
        "test_tolerance.py",
        "test_probe.py",
        "test_precision.py",
        "test_extract.py",
    ],
    "extract/records.py": ["test_extract_records.py", "test_extract.py"],
    "io.py": [
        "test_io_writes.py",
        "test_net_files.py",
        "test_mlp.py",
        "test_cli_errors.py",
        "test_extract_report.py",
    ],
    "mlp.py": ["test_net_files.py", "test_mlp.py", "test_mlp_random.py", "test_onnx_io.py"],
    "toy/data.py": ["toy/test_toy_kinds.py", "toy/test_toy_data.py"],
    "toy/kinds.py": ["toy/test_toy_kinds.py", "toy/test_toy_data.py"],
    "report/numbers.py": ["test_report_numbers.py", "test_report.py"],
    "sweep/grid.py": ["test_sweep_grid.py", "test_sweep.py"],
}

# The mutations issue 23 lists, by name: (module, text, replacement).
NAMED: dict[str, tuple[str, str, str]] = {
    "check: no kink-on-plane half of the verdict": (
        "extract/check.py",
        "success = rel <= 2.0**tol and stray == 0",
        "success = rel <= 2.0**tol",
    ),
    "check: no sparse-input probe": (
        "extract/check.py",
        "            sparse_inputs(net.input_dim, max(samples // 4, 1), rng, input_scale),\n",
        "",
    ),
    "check: no beside-plane probes": (
        "extract/check.py",
        "            beside_planes(net, plane_points, input_scale),\n",
        "",
    ),
    "check: beside-plane probes for the last layer only": (
        "extract/check.py",
        "for layer, points in enumerate(plane_points):",
        "for layer, points in list(enumerate(plane_points))[-1:]:",
    ),
    "loop: never-measured output weights pass": (
        "extract/loop.py",
        "self.success = verdict.success and fit.unmeasured == 0",
        "self.success = verdict.success",
    ),
    "verify: no bias error in the worst-case bound": (
        "verify/compare.py",
        " + np.abs(db)\n",
        "\n",
    ),
    "verify: last neuron skipped by the normaliser": (
        "verify/compare.py",
        "r[:n] = np.where(norms[:n] > 0, norms[:n], 1.0)",
        "r[: n - 1] = np.where(norms[: n - 1] > 0, norms[: n - 1], 1.0)",
    ),
    "last layer: exactness 2^-24 loosened to 2^-10": (
        "extract/signs/last_layer.py",
        "EXACT = 2.0**-24",
        "EXACT = 2.0**-10",
    ),
    "probe: no wide windows": (
        "oracle/probe.py",
        "return wide if wide >= WIDE_CURVED_SHARE else narrow",
        "return narrow",
    ),
    "precision: refinement weights inverted": (
        "extract/precision.py",
        "weight.append(sharp / max(float(line.slope_error[k]), 1e-300))",
        "weight.append(max(float(line.slope_error[k]), 1e-300) / sharp)",
    ),
}
NAMED_TESTS = [
    "test_verdict_guards.py",
    "test_extract.py",
    "test_deep_extract.py",
    "test_verify.py",
]

# One-token operators: each occurrence on a code line makes one mutant.
SWAPS = [
    (" <= ", " < "),
    (" < ", " <= "),
    (" >= ", " > "),
    (" > ", " >= "),
    (" == ", " != "),
    (" != ", " == "),
    (" and ", " or "),
    (" or ", " and "),
    (" + ", " - "),
    (" - ", " + "),
    (" * ", " / "),
    (" / ", " * "),
    ("max(", "min("),
    ("min(", "max("),
    ("np.any(", "np.all("),
    ("np.all(", "np.any("),
    ("True", "False"),
    ("False", "True"),
    ("if not ", "if "),
    ("break", "continue"),
]
# Tests that fail on the unmutated code on some machines (a sign decision the BLAS kernel
# flips, owned by the signs issue): they would "kill" every mutant, so they are left out.
KNOWN_FAILING = ["test_deep_extract.py::test_architecture_discovered_and_net_recovered[10-8-6-3-1]"]
NUMBER = re.compile(r"(?<![\w.])(\d+\.\d+|\d+)(?![\w.])")


@dataclass(frozen=True)
class Mutant:
    """One change to one line of one module."""

    module: str
    line: int  # 1-based; 0 for a named mutation
    old: str
    new: str
    name: str = ""

    def describe(self) -> str:
        """A one-line description of the change."""
        if self.name:
            return f"{self.module}: {self.name}"
        return f"{self.module}:{self.line}: {self.old.strip()!r} -> {self.new.strip()!r}"


def _code_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of the lines that are code: no docstrings, comments or blanks."""
    out, in_doc = [], False
    for i, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        quotes = s.count('"""')
        if in_doc:
            in_doc = quotes % 2 == 0
            continue
        if s.startswith('"""'):
            in_doc = quotes == 1
            continue
        if not s or s.startswith("#") or s.startswith(("import ", "from ", "@")):
            continue
        out.append((i, line.split("  #")[0]))
    return out


def generate(module: str) -> list[Mutant]:
    """Every one-token mutant of ``module``."""
    text = (ROOT / "src" / "glassbox" / module).read_text()
    mutants = []
    for i, line in _code_lines(text):
        for a, b in SWAPS:
            start = line.find(a)
            while start >= 0:
                new = line[:start] + b + line[start + len(a) :]
                mutants.append(Mutant(module, i, line, new))
                start = line.find(a, start + 1)
        for m in NUMBER.finditer(line):
            value = m.group(1)
            bumped = str(int(value) + 1) if "." not in value else repr(float(value) * 2 + 1)
            mutants.append(Mutant(module, i, line, line[: m.start()] + bumped + line[m.end() :]))
        body = line.strip()
        if body.startswith(("return ", "raise ")) or "=" not in body or body.endswith(":"):
            continue
        if not body.startswith(("assert", "self.", "del ")) and " = " in body:
            continue  # dropping an assignment is mostly a NameError: not worth a run
        mutants.append(Mutant(module, i, line, line[: len(line) - len(body)] + "pass"))
    return mutants


def named() -> list[Mutant]:
    """The issue's named mutations."""
    return [Mutant(mod, 0, old, new, name) for name, (mod, old, new) in NAMED.items()]


def _apply(src: Path, mutant: Mutant) -> bool:
    """Write ``mutant`` into the copy ``src``; False when its text is not there."""
    path = src / "glassbox" / mutant.module
    text = path.read_text()
    if mutant.line:
        lines = text.splitlines(keepends=True)
        code = lines[mutant.line - 1]
        if not code.startswith(mutant.old):
            return False
        lines[mutant.line - 1] = mutant.new + code[len(mutant.old) :]
        path.write_text("".join(lines))
        return True
    if mutant.old not in text:
        return False
    path.write_text(text.replace(mutant.old, mutant.new, 1))
    return True


def run(mutant: Mutant, tests: list[str], limit: float) -> tuple[str, float, str]:
    """'killed', 'survived' or 'missing' (the text is not there), seconds, the test that failed."""
    t0 = time.perf_counter()
    failed = ""
    with tempfile.TemporaryDirectory(prefix="mutant-") as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("__pycache__"))
        if not _apply(src, mutant):
            return "missing", 0.0, ""
        env = dict(os.environ, PYTHONPATH=str(src), PYTHONDONTWRITEBYTECODE="1")
        cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
        cmd += ["--no-header", "-o", "addopts="] + [str(ROOT / "tests" / t) for t in tests]
        cmd += [f"--deselect=tests/{t}" for t in KNOWN_FAILING]
        try:
            done = subprocess.run(
                cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=limit
            )
            status = "survived" if done.returncode == 0 else "killed"
            found = re.search(r"^(?:FAILED|ERROR) \S*?(test_\w+\.py::\S+)", done.stdout, re.M)
            failed = found.group(1) if found else ""
        except subprocess.TimeoutExpired:
            status, failed = "killed", "(time limit)"  # a mutant that hangs the suite is caught
    return status, time.perf_counter() - t0, failed


def main() -> int:
    """Run the mutants; print survivors and scores."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--module", action="append", help="only these modules (src/glassbox/...)")
    ap.add_argument("--sample", type=int, default=0, help="at most this many mutants a module")
    ap.add_argument("--seed", type=int, default=0, help="seed of the sample")
    ap.add_argument("--jobs", type=int, default=1, help="mutants run at once")
    ap.add_argument("--limit", type=float, default=600.0, help="seconds a mutant's tests may run")
    ap.add_argument("--named", action="store_true", help="the issue's named mutations only")
    ap.add_argument("--json", type=Path, help="write the results to this file")
    args = ap.parse_args()
    jobs: list[tuple[Mutant, list[str]]] = []
    if args.named:
        jobs = [(m, NAMED_TESTS + ["test_probe.py"]) for m in named()]
    else:
        for module in args.module or list(MODULES):
            if module not in MODULES:
                print(f"mutants: error: no tests are listed for {module}", file=sys.stderr)
                return 2
            mutants = generate(module)
            if args.sample and len(mutants) > args.sample:
                mutants = random.Random(f"{args.seed}:{module}").sample(mutants, args.sample)
            jobs += [(m, MODULES[module]) for m in mutants]
    results: list[dict[str, object]] = []
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        futures = [(m, pool.submit(run, m, tests, args.limit)) for m, tests in jobs]
        for m, future in futures:
            status, seconds, failed = future.result()
            results.append(
                {"mutant": m.describe(), "module": m.module, "status": status, "test": failed}
            )
            print(f"{status:8s} {seconds:6.1f} s  {m.describe()}  {failed}", flush=True)
    print("\nscore (killed / mutants run):")
    for module in sorted({str(r["module"]) for r in results}):
        mine = [r for r in results if r["module"] == module and r["status"] != "missing"]
        killed = sum(r["status"] == "killed" for r in mine)
        if mine:
            print(f"  {module:32s} {killed:4d} / {len(mine):4d}  {100 * killed / len(mine):5.1f}%")
    ran = [r for r in results if r["status"] != "missing"]
    killed = sum(r["status"] == "killed" for r in ran)
    if ran:
        print(f"  {'all':32s} {killed:4d} / {len(ran):4d}  {100 * killed / len(ran):5.1f}%")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
