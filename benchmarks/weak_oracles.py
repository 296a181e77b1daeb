"""Weak black boxes: answer precision against outcome (figures for BENCHMARKS.md).

    python benchmarks/weak_oracles.py --nets 100-32-1,10-10-10-1 --seeds 0-2

Precisions: float64, float32, 12/8/6/4 significant digits, additive Gaussian noise of
sigma 1e-12/1e-9/1e-6. Each cell is attacked with the default budget; a row says how
many seeds succeeded (the attack's own verdict), the median queries, the worst verified
functional error of the successes (relative to the largest output, log2) beside the
worst the attack itself reported, and, where the attack stopped, its first reason.
A success whose verified error is more than 2^2 worse than it reported is flagged FALSE.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
from collections.abc import Callable

import numpy as np

from extract import parse_seeds
from glassbox.extract import ExtractConfig, extract
from glassbox.mlp import ReLUNet
from glassbox.oracle.core import Oracle, float32_outputs, net_oracle, noisy, rounded
from glassbox.verify.compare import verify

PRECISIONS: dict[str, Callable[[Oracle], Oracle]] = {
    "float64": lambda o: o,
    "float32": float32_outputs,
    "12 digits": lambda o: rounded(o, 12),
    "8 digits": lambda o: rounded(o, 8),
    "6 digits": lambda o: rounded(o, 6),
    "4 digits": lambda o: rounded(o, 4),
    "sigma 1e-12": lambda o: noisy(o, 1e-12, seed=7),
    "sigma 1e-9": lambda o: noisy(o, 1e-9, seed=7),
    "sigma 1e-6": lambda o: noisy(o, 1e-6, seed=7),
}


def run_cell(spec: str, name: str, seed: int) -> dict[str, object]:
    """One attack on one seed's net through one weakening, verified."""
    net = ReLUNet.random(spec, seed=seed)
    result = extract(PRECISIONS[name](net_oracle(net)), ExtractConfig(seed=seed))
    out: dict[str, object] = {
        "success": result.success,
        "queries": result.queries,
        "message": result.message,
        "verified": math.inf,
        "reported": math.inf,
    }
    scale = float(
        np.max(np.abs(net.forward(np.random.default_rng(0).normal(size=(256, net.input_dim)))))
    )
    if result.check.get("max_error") is not None:
        out["reported"] = math.log2(max(result.check["max_error"], 1e-300) / scale)
    if result.net is not None and result.net.dims == net.dims:
        v = verify(result.net, net, n_samples=4096, seed=seed)
        out["verified"] = v.epsilon_log2 - math.log2(scale)
    elif result.net is not None:
        # Another shape (e.g. a +/- pair where the truth has one neuron): the functional
        # error on fresh Gaussian inputs is still what counts.
        X = np.random.default_rng(seed + 1).normal(size=(4096, net.input_dim))
        err = float(np.max(np.abs(result.net.forward(X) - net.forward(X))))
        out["verified"] = math.log2(max(err, 1e-300)) - math.log2(scale)
    return out


def main() -> None:
    """Run the grid and print the table."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--nets", default="100-32-1,10-10-10-1")
    ap.add_argument("--seeds", default="0-2")
    ap.add_argument("--precisions", default=",".join(PRECISIONS))
    args = ap.parse_args()
    seeds = parse_seeds(args.seeds)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.python_version()}, load {os.getloadavg()[0]:.1f}"
    )
    print(
        "| net | answers | ok | queries (log2, median) | verified rel. error (log2, worst ok) "
        "| reported (log2, worst ok) | outcome |"
    )
    print("|---|---|---|---|---|---|---|")
    for spec in args.nets.split(","):
        for name in args.precisions.split(","):
            done = [run_cell(spec, name, s) for s in seeds]
            ok = [r for r in done if r["success"]]
            q = statistics.median(math.log2(max(int(r["queries"]), 1)) for r in done)  # type: ignore[call-overload]
            verified = max((float(r["verified"]) for r in ok), default=math.inf)  # type: ignore[arg-type]
            reported = max((float(r["reported"]) for r in ok), default=math.inf)  # type: ignore[arg-type]
            false = [r for r in ok if float(r["verified"]) > float(r["reported"]) + 2]  # type: ignore[arg-type]
            stops = [str(r["message"]) for r in done if not r["success"]]
            outcome = "FALSE SUCCESS " if false else ""
            outcome += stops[0][:150] if stops else "all succeeded"
            print(
                f"| {spec} | {name} | {len(ok)}/{len(done)} | {q:.2f} | {verified:.1f} | "
                f"{reported:.1f} | {outcome} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
