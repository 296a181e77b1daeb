"""Check that a refactor of src/glassbox changes no behaviour, through the CLI only.

Run mode runs every case against one glassbox ``src`` folder (PYTHONPATH=SRC, BLAS pinned to
one thread, at most two cases at a time) and writes DIR/CASE/ plus DIR/manifest.json::

    python scripts/same_behaviour.py --src /work/baseline/src --out /work/compare/old
    python scripts/same_behaviour.py --src /work/main/src --out /work/compare/new

Compare mode prints SAME / DIFFERENT per case and exits 1 if any case differs::

    python scripts/same_behaviour.py --compare /work/compare/old /work/compare/new

Compared (the verdict): the exit status, success flag, architecture, the query counts of
extraction.json (total, per phase, per layer, verification) and every tensor of every
*.safetensors file, bit for bit. Any other JSON value that differs (timings and memory left
out) is printed as a note and does not change the verdict.

Cases: random:SPEC at seeds 0-2 for each deep net (two or more hidden layers) of the
"Deep extraction" rows of BENCHMARKS.md (the rows benchmarks/extract.py was run with;
its default --nets has no deep net), plus ``glassbox demo --in-process`` (the default demo).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file

DEEP_SPECS = [
    "10-10-10-1",
    "80-40-20-1",
    "40-20-10-10-1",
    "10-20-20-1",
    "20-16-16-20:nohiddenbias,relu",
]
SEEDS = [0, 1, 2]
SLOW_S = 120.0
TIMING = re.compile(r"seconds$|^peak_rss_mb$|^steps_per_second$")
Json = dict[str, Any]
MISSING = object()


def cases() -> dict[str, list[str]]:
    """Case name -> CLI arguments after ``python -m glassbox.cli`` (``{out}``: its folder)."""
    out: dict[str, list[str]] = {}
    for spec in DEEP_SPECS:
        for seed in SEEDS:
            name = f"random_{re.sub(r'[^0-9A-Za-z-]+', '_', spec)}_seed{seed}"
            out[name] = ["extract", f"random:{spec}", "--seed", str(seed), "--out", "{out}"]
            out[name] += ["--overwrite", "--quiet"]
    out["demo"] = ["demo", "--in-process", "--out", "{out}", "--overwrite", "--quiet"]
    return out


def child_env(src: Path) -> dict[str, str]:
    """This process's environment with SRC first on PYTHONPATH and BLAS on one thread."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(src), env.get("PYTHONPATH")) if p)
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def run_case(name: str, args: list[str], out: Path, env: dict[str, str]) -> Json:
    """Run one case, its stdout and stderr to OUT/NAME.log; return its manifest entry."""
    folder = out / name
    cmd = [sys.executable, "-m", "glassbox.cli", *(a.format(out=folder) for a in args)]
    load = os.getloadavg()[0]
    t = time.perf_counter()
    with open(out / f"{name}.log", "w") as log:
        rc = subprocess.run(cmd, env=env, cwd=out, stdout=log, stderr=subprocess.STDOUT).returncode
    seconds = time.perf_counter() - t
    slow = "  SLOW (> 2 min)" if seconds > SLOW_S else ""
    print(f"{name}: rc {rc}, {seconds:.1f} s, load before {load:.2f}{slow}", flush=True)
    return {"cmd": cmd, "rc": rc, "seconds": seconds, "load_before": load}


def run(src: Path, out: Path, jobs: int) -> int:
    """Run every case against SRC into OUT; 1 when a case exits other than 0 or 1."""
    src, out = src.resolve(), out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    env = child_env(src)
    where = subprocess.run(
        [sys.executable, "-c", "import glassbox; print(glassbox.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(where).resolve().is_relative_to(src):
        sys.exit(f"glassbox imports from {where}, not from {src}")
    print(f"glassbox from {where}; load average {os.getloadavg()}; {jobs} at a time", flush=True)
    t = time.perf_counter()
    with ThreadPoolExecutor(max_workers=min(jobs, 2)) as pool:
        futures = {n: pool.submit(run_case, n, a, out, env) for n, a in cases().items()}
        done = {n: f.result() for n, f in futures.items()}
    wall = time.perf_counter() - t
    manifest = {"src": str(src), "glassbox": where, "wall_seconds": wall, "cases": done}
    manifest["load_after"] = list(os.getloadavg())
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wall {wall:.1f} s; load average after {os.getloadavg()}")
    bad = [n for n, c in done.items() if c["rc"] not in (0, 1)]
    print(f"errors (exit status not 0 or 1): {bad or 'none'}")
    return 1 if bad else 0


def flatten(value: Any, path: str = "") -> dict[str, Any]:
    """JSON leaves keyed by path, timing and memory keys left out."""
    if isinstance(value, dict):
        items = [(f"{path}/{k}", v) for k, v in value.items() if not TIMING.search(k)]
    elif isinstance(value, list):
        items = [(f"{path}[{i}]", v) for i, v in enumerate(value)]
    else:
        return {path: value}
    return {k: v for p, item in items for k, v in flatten(item, p).items()}


def verdict_fields(folder: Path, rc: int | None) -> Json:
    """The values that decide the verdict, read from one case's folder."""
    ex = json.loads((folder / "extraction.json").read_text())
    ver = folder / "verification.json"
    fields: Json = {k: ex.get(k) for k in ("success", "architecture", "queries")}
    fields["rc"] = rc
    fields["queries_by_phase"] = ex.get("queries_by_phase")
    fields["layer_queries"] = [layer.get("queries") for layer in ex.get("layers", [])]
    fields["answers_queries"] = (ex.get("answers") or {}).get("queries")
    verification = json.loads(ver.read_text()) if ver.exists() else ex.get("verification")
    fields["verification_queries"] = (verification or {}).get("queries")
    return fields


def tensor_diffs(a: Path, b: Path) -> tuple[list[str], int]:
    """What differs between the *.safetensors files of two case folders (bit for bit), and how
    many tensors were compared."""
    names = {p.relative_to(a) for p in a.rglob("*.safetensors")}
    names |= {p.relative_to(b) for p in b.rglob("*.safetensors")}
    out: list[str] = []
    compared = 0
    for rel in sorted(names):
        if not ((a / rel).exists() and (b / rel).exists()):
            out.append(f"{rel} missing on one side")
            continue
        ta, tb = load_file(a / rel), load_file(b / rel)
        if ta.keys() != tb.keys():
            out.append(f"{rel} tensor names {sorted(ta)} vs {sorted(tb)}")
        for key in sorted(ta.keys() & tb.keys()):
            x, y = np.ascontiguousarray(ta[key]), np.ascontiguousarray(tb[key])
            compared += 1
            if x.dtype != y.dtype or x.shape != y.shape:
                out.append(f"{rel}:{key} {x.dtype}{x.shape} vs {y.dtype}{y.shape}")
            elif not np.array_equal(x.view(np.uint8), y.view(np.uint8)):
                out.append(f"{rel}:{key} bits differ (max |diff| {np.max(np.abs(x - y)):.3g})")
    return out, compared


def json_diffs(a: Path, b: Path) -> list[str]:
    """Paths of the JSON values (timings left out) that differ between two case folders."""
    out: list[str] = []
    rels = {p.relative_to(a) for p in a.rglob("*.json")} | {
        p.relative_to(b) for p in b.rglob("*.json")
    }
    for rel in sorted(rels):
        if not ((a / rel).exists() and (b / rel).exists()):
            out.append(f"{rel} missing on one side")
            continue
        x, y = (flatten(json.loads((d / rel).read_text())) for d in (a, b))
        out += [
            f"{rel}{k}"
            for k in sorted(x.keys() | y.keys())
            if x.get(k, MISSING) != y.get(k, MISSING)
        ]
    return out


def compare(dir_a: Path, dir_b: Path) -> int:
    """Print one line per case; 1 when any case differs."""
    man_a, man_b = (json.loads((d / "manifest.json").read_text()) for d in (dir_a, dir_b))
    for d, m in ((dir_a, man_a), (dir_b, man_b)):
        print(f"{d}: glassbox from {m['glassbox']}, load after {m['load_after']}")
    print(f"load average now {os.getloadavg()}")
    differ = 0
    for name in sorted(man_a["cases"].keys() | man_b["cases"].keys()):
        ca, cb = man_a["cases"].get(name), man_b["cases"].get(name)
        if ca is None or cb is None:
            print(f"{name}: DIFFERENT: run on one side only")
            differ += 1
            continue
        a, b = dir_a / name, dir_b / name
        if not ((a / "extraction.json").exists() and (b / "extraction.json").exists()):
            print(f"{name}: DIFFERENT: extraction.json missing (rc {ca['rc']} vs {cb['rc']})")
            differ += 1
            continue
        fa, fb = verdict_fields(a, ca["rc"]), verdict_fields(b, cb["rc"])
        what = [f"{k} {fa[k]!r} vs {fb[k]!r}" for k in fa if fa[k] != fb[k]]
        tensors, n_tensors = tensor_diffs(a, b)
        what += tensors
        other = json_diffs(a, b)
        note = f"  (note: {len(other)} other JSON values differ: {other[:6]})" if other else ""
        times = f"{ca['seconds']:.1f} s vs {cb['seconds']:.1f} s"
        if what:
            differ += 1
            print(f"{name}: DIFFERENT: {'; '.join(what)}  [{times}]{note}")
        else:
            print(
                f"{name}: SAME (queries {fa['queries']}, success {fa['success']}, {n_tensors} tensors bit-identical) [{times}]{note}"
            )
    print(f"{differ} of {len(man_a['cases'].keys() | man_b['cases'].keys())} cases differ")
    return 1 if differ else 0


def main() -> None:
    """Parse the arguments and run or compare."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--src", type=Path, help="the glassbox src folder to run")
    ap.add_argument("--out", type=Path, help="folder to write the cases into")
    ap.add_argument("--jobs", type=int, default=2, help="cases at a time (at most 2)")
    ap.add_argument("--compare", nargs=2, type=Path, metavar=("DIR_A", "DIR_B"))
    args = ap.parse_args()
    if args.compare:
        sys.exit(compare(*args.compare))
    if args.src is None or args.out is None:
        ap.error("run mode needs --src and --out (or use --compare DIR_A DIR_B)")
    sys.exit(run(args.src, args.out, args.jobs))


if __name__ == "__main__":
    main()
