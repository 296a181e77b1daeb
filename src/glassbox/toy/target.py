"""One instance of a saved toy run as an attack target (cheap to import: torch loads on call)."""

from __future__ import annotations

from pathlib import Path

from glassbox.errors import GlassboxError
from glassbox.extras import require
from glassbox.mlp import ReLUNet


def toy_instance(path: Path, instance: int | None) -> tuple[ReLUNet, float, str]:
    """Instance ``instance`` (default 0) of the run in ``path``: its net, mean feature probability, description."""
    require("torch", f"attacking the toy run {path}")
    from glassbox.toy.run import load_run

    run = load_run(path)
    instance = instance or 0
    if not 0 <= instance < run.n_instances:
        raise GlassboxError(
            f"--instance {instance}: the toy run {path} has instances 0 to {run.n_instances - 1}"
        )
    net = run.instance_net(instance)
    sparse = float(run.config.probability()[instance].mean())
    desc = f"toy run {path} instance {instance} (sparsity {run.sparsity(instance):.3g})"
    return net, sparse, desc
