"""Resolve a TARGET string to a black box and, where the caller can know it, the truth.

TARGET is one of: ``random:SPEC`` (a seeded random net, e.g. ``random:784-128-1``), a
toy-model run directory (one instance of it), an ONNX file, or a saved glassbox net.
The truth is for verification only: the attack gets the oracle and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from glassbox.errors import GlassboxError
from glassbox.extract.oracle import OnnxOracle, Oracle, float32_outputs, net_oracle
from glassbox.mlp import ReLUNet


@dataclass(frozen=True, eq=False)
class Target:
    """An oracle to attack, the true net when known, and how to describe it."""

    oracle: Oracle
    truth: ReLUNet | None
    description: str
    sparse_probability: float | None = None


def resolve_target(
    target: str,
    *,
    seed: int = 0,
    instance: int = 0,
    budget: int | None = None,
    float32: bool = False,
) -> Target:
    """Build the :class:`Target` for a TARGET string (see the module docstring)."""
    sparse: float | None = None
    if target.startswith("random:"):
        truth = ReLUNet.random(target.removeprefix("random:"), seed=seed)
        desc = f"{target} (seed {seed})"
        oracle = net_oracle(truth, budget)
    else:
        path = Path(target)
        if path.is_dir():
            from glassbox.toy.run import load_run

            run = load_run(path)
            truth = run.instance_net(instance)
            sparse = float(run.config.probability()[instance].mean())
            desc = f"toy run {path} instance {instance} (sparsity {run.sparsity(instance):.3g})"
            oracle = net_oracle(truth, budget)
        elif path.suffix.lower() == ".onnx":
            from glassbox.onnx_io import read_onnx

            oracle = OnnxOracle(path, budget, allow_float32=float32)
            truth = read_onnx(path, allow_float32=float32)
            desc = f"ONNX {path}"
        elif path.is_file():
            truth = ReLUNet.load(path)
            desc = f"net {path}"
            oracle = net_oracle(truth, budget)
        else:
            raise GlassboxError(
                f"{target}: no such file or directory; TARGET is random:SPEC, a toy run "
                "directory, an ONNX file or a saved net"
            )
    if truth.n_hidden_layers != 1:
        raise GlassboxError(
            f"{desc}: the attack recovers one-hidden-layer nets; this one is {truth.describe()}"
        )
    if float32:
        oracle = float32_outputs(oracle)
        desc += ", float32 outputs"
    return Target(oracle, truth, desc, sparse)
