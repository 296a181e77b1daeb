"""Extraction benchmarks: one table row per net over several seeds (figures for BENCHMARKS.md).

    python benchmarks/extract.py                       # everything (long)
    python benchmarks/extract.py --nets 784-32-1 --seeds 0-9
    python benchmarks/extract.py --nets 10-10-10-1 --seeds 0-2 --attack-seeds 0-2
    python benchmarks/extract.py --nets toy-demo,toy-paper --toy-steps 2000

The attack is never given the architecture: depth and widths are discovered.
Rows: any random:SPEC of any depth (e.g. 10-10-10-1, 40-20-10-10-1), random:784-32-1 and random:784-128-1 (seeds = net and attack seeds), any of them with answers
rounded to float32 (SPEC-float32, e.g. 10-10-10-1-float32), and trained abs toy models (glassbox.toy) at the demo's size (20
features, 10 neurons) and the paper's (100, 40), one dense (S = 0) and one sparse
instance each (seeds = attack seeds on the same trained instance). Columns: seeds that
succeeded (the attack's own verdict) over total; median queries (log2) and as a multiple
of the floor P/k (P parameters, k outputs); median seconds; worst max weight error after
alignment (log2, glassbox.verify.compare), over the successful seeds; worst sampled
functional error (log2, successful seeds, over the
Gaussian, uniform, hyperplane and, for toy models, sparse inputs); peak RSS of this
process so far (MiB).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from glassbox.extract import ExtractConfig, extract
from glassbox.mlp import ReLUNet
from glassbox.oracle.core import Oracle, float32_outputs, net_oracle
from glassbox.verify.compare import verify


@dataclass(frozen=True)
class Case:
    """One attack: an oracle factory, the truth to verify against, a label."""

    row: str
    truth: ReLUNet
    oracle: Callable[[], Oracle]
    seed: int
    sparse_probability: float | None = None


def parse_seeds(text: str) -> list[int]:
    """``0-9`` or ``0,3,5``."""
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


def random_cases(
    spec: str, seeds: list[int], float32: bool = False, attack_seeds: list[int] | None = None
) -> Iterator[Case]:
    """random:SPEC at each seed (float32: the oracle's answers rounded to float32); with
    ``attack_seeds``, each net attacked once per attack seed (one row per net seed)."""
    for s in seeds:
        net = ReLUNet.random(spec, seed=s)
        row = f"random:{spec}" + (" float32" if float32 else "")
        make = (
            (lambda n=net: float32_outputs(net_oracle(n)))
            if float32
            else (lambda n=net: net_oracle(n))
        )
        if attack_seeds is None:
            yield Case(row, net, make, s)
            continue
        for a in attack_seeds:
            yield Case(f"{row} net {s}, attack seeds", net, make, a)


def toy_cases(size: str, seeds: list[int], steps: int) -> Iterator[Case]:
    """A trained abs toy model, dense and sparse instance, attacked with each seed."""
    from glassbox.toy.config import ToyConfig
    from glassbox.toy.train import train

    n, m, sparse = (20, 10, 0.8) if size == "demo" else (100, 40, 0.97)
    config = ToyConfig(
        model="abs", n_features=n, n_hidden=m, sparsity=(0.0, sparse), steps=steps, restarts=1
    )
    run = train(config, progress=False)
    for i, label in enumerate(("dense", f"S={sparse}")):
        net = run.instance_net(i)
        p = float(run.config.probability()[i].mean())
        for s in seeds:
            yield Case(f"toy abs {n}-{m}-{n} {label}", net, lambda nt=net: net_oracle(nt), s, p)


# Architectures each row's attacks reached (printed under rows of several attack seeds).
ARCHITECTURES: dict[str, list[str]] = {}


def run_case(case: Case) -> dict[str, float | bool | str]:
    """Attack one case and verify it."""
    t = time.perf_counter()
    result = extract(case.oracle(), ExtractConfig(seed=case.seed))
    seconds = time.perf_counter() - t
    ARCHITECTURES.setdefault(case.row, []).append(result.architecture or "none")
    out: dict[str, float | bool | str] = {
        "success": result.success,
        "queries": result.queries,
        "seconds": seconds,
        "rss": result.peak_rss_mb,
        **{f"phase:{k}": v for k, v in result.queries_by_phase.items()},
        "weight": math.inf,
        "functional": math.inf,
        "signs": max(
            (float(layer.get("sign_seconds", 0.0)) for layer in result.layers), default=0.0
        ),
        "message": result.message,
    }
    if result.net is not None and result.net.dims == case.truth.dims:
        v = verify(
            result.net,
            case.truth,
            n_samples=4096,
            seed=case.seed,
            sparse_probability=case.sparse_probability,
        )
        out["weight"] = v.max_weight_error_log2
        out["functional"] = v.epsilon_log2
    elif result.net is not None and result.success:
        # Another shape (e.g. two rows for one neuron): judged by sampled function alone.
        X = np.random.default_rng(case.seed).normal(size=(4096, case.truth.input_dim))
        want = case.truth.forward(X)
        err = float(np.max(np.abs(result.net.forward(X) - want)))
        out["functional"] = math.log2(max(err, 1e-300) / max(float(np.max(np.abs(want))), 1e-300))
    return out


def main() -> None:
    """Run the chosen rows and print the table."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--nets",
        default="784-32-1,784-128-1,784-32-1-float32,toy-demo,toy-paper",
        help="comma-separated, or space-separated when a spec holds a comma "
        "(e.g. '10-10-10-1 20-16-16-20:nohiddenbias,relu')",
    )
    ap.add_argument("--seeds", default="0-9")
    ap.add_argument(
        "--attack-seeds",
        default=None,
        help="attack each random net once per attack seed (e.g. 0-2), one row per net seed",
    )
    ap.add_argument("--toy-seeds", default="0-2")
    ap.add_argument("--toy-steps", type=int, default=5000)
    args = ap.parse_args()
    seeds, toy_seeds = parse_seeds(args.seeds), parse_seeds(args.toy_seeds)
    attack = parse_seeds(args.attack_seeds) if args.attack_seeds else None
    groups: list[Iterator[Case]] = []
    names = args.nets.split() if " " in args.nets.strip() else args.nets.split(",")
    for name in names:
        if name.endswith("-float32"):
            groups.append(random_cases(name.removesuffix("-float32"), seeds, float32=True))
        elif name.startswith("toy-"):
            groups.append(toy_cases(name.removeprefix("toy-"), toy_seeds, args.toy_steps))
        else:
            groups.append(random_cases(name, seeds, attack_seeds=attack))

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}, load {os.getloadavg()[0]:.1f}"
    )
    head = f"| {'net':<28} | ok | queries (log2) | x floor P/k (log2) | seconds (median) | max weight err (log2, worst) | functional err (log2, worst) | peak RSS MiB | sign step s (max) |"
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for group in groups:
        rows: dict[str, list[tuple[Case, dict[str, float | bool | str]]]] = {}
        for case in group:
            rows.setdefault(case.row, []).append((case, run_case(case)))
        for row, done in rows.items():
            truth = done[0][0].truth
            floor = math.log2(truth.n_params / truth.output_dim)
            q = statistics.median(math.log2(float(r["queries"])) for _, r in done)
            ok = sum(bool(r["success"]) for _, r in done)
            # Errors of the successes (a failure is reported by the attack; its net may
            # not even have the truth's shape). No success: the worst of all.
            good = [r for _, r in done if r["success"]] or [r for _, r in done]
            print(
                f"| {row:<28} | {ok}/{len(done)} | {q:.2f} | {q - floor:+.2f} | "
                f"{statistics.median(float(r['seconds']) for _, r in done):.1f} | "
                f"{max(float(r['weight']) for r in good):.1f} | "
                f"{max(float(r['functional']) for r in good):.1f} | "
                f"{max(float(r['rss']) for _, r in done):.0f} | "
                f"{max(float(r['signs']) for _, r in done):.2f} |",
                flush=True,
            )
            for case, r in done:
                if not r["success"]:
                    print(f"    seed {case.seed}: {str(r['message'])[:160]}", flush=True)
            if attack is not None:
                print(f"  architectures: {ARCHITECTURES.get(row)}", flush=True)
            phases = sorted({k for _, r in done for k in r if k.startswith("phase:")})
            by_phase = ", ".join(
                f"{k[6:]} {statistics.median(math.log2(max(float(r.get(k, 0)), 1)) for _, r in done):.2f}"
                for k in phases
            )
            print(f"|   queries by phase (median log2): {by_phase}", flush=True)


if __name__ == "__main__":
    main()
