"""Resolve a TARGET string to a black box and, where the caller can know it, the truth.

TARGET is one of: ``random:SPEC`` (a seeded random net, e.g. ``random:784-128-1``), a
toy-model run directory (one instance of it), an ONNX file, a saved glassbox net, or the
``http://`` address of a running prediction service (``glassbox serve``; no truth then).
The truth is for verification only: the attack gets the oracle and nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from glassbox.errors import GlassboxError
from glassbox.mlp import ReLUNet, parse_spec
from glassbox.oracle.core import (
    Oracle,
    float32_outputs,
    net_oracle,
)
from glassbox.oracle.onnx_model import (
    OnnxOracle,
    chosen_output,
    computes_in_float32,
    fixed_batch_size,
)

#: Reads instance i of a toy run folder: its net, mean feature probability, description.
ToyLoader = Callable[[Path, int | None], tuple[ReLUNet, float, str]]

#: A TARGET that reads as a URL (``scheme://`` or ``http:``): never a file name.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://|https?:", re.IGNORECASE)

#: Refuse a random net whose float64 weights would take more than this share of free memory
#: (the attack and the verification hold several copies and batches of queries besides).
MEMORY_SHARE = 0.25


@dataclass(frozen=True, eq=False)
class Target:
    """An oracle to attack, the true net when known, and how to describe it."""

    oracle: Oracle
    truth: ReLUNet | None
    description: str
    sparse_probability: float | None = None


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:,.1f} GiB"


def check_fits(need: float, what: str, fix: str) -> None:
    """Refuse, in one line, work whose ``need`` bytes exceed MEMORY_SHARE of the free memory."""
    import psutil

    free = float(psutil.virtual_memory().available)
    if need > MEMORY_SHARE * free:
        raise GlassboxError(
            f"{what} would take {_gib(need)}, more than {MEMORY_SHARE:.0%} of the "
            f"{_gib(free)} of free memory; {fix}"
        )


def random_net(spec: str, seed: int = 0) -> ReLUNet:
    """``ReLUNet.random(spec, seed)``, refused in one line when its weights would not fit in memory."""
    dims, options = parse_spec(spec)
    n_params = sum(a * b + b for a, b in zip(dims[:-1], dims[1:], strict=False))
    check_fits(
        8.0 * n_params,
        f"net spec {spec}: {n_params:,} parameters as float64",
        "choose smaller widths",
    )
    return ReLUNet.random(spec, seed=seed)


def resolve_target(
    target: str,
    *,
    seed: int = 0,
    instance: int | None = None,
    budget: int | None = None,
    float32: bool = False,
    toy_loader: ToyLoader | None = None,
    output: str | None = None,
) -> Target:
    """Build the :class:`Target` for a TARGET string (see the module docstring).

    ``instance`` chooses an instance of a toy run directory (default 0); for any other
    target it is refused, since it would be silently ignored. Toy runs are read by
    ``toy_loader`` (:func:`glassbox.toy.target.toy_instance`), which callers above the
    toy package pass in: this package sits below it and never imports it.
    ``output`` names the output of an ONNX file with several (refused for other targets).
    """
    sparse: float | None = None
    if not target.strip():
        raise GlassboxError(
            "TARGET is empty; give random:SPEC, a toy run directory, an ONNX file, a saved net "
            "or http://HOST:PORT"
        )
    path = Path(target)
    is_run = not target.startswith("random:") and path.is_dir()
    if instance is not None and not is_run:
        raise GlassboxError(
            f"--instance {instance}: {target} is not a toy run directory, which has instances; "
            "drop --instance"
        )
    is_onnx = path.suffix.lower() == ".onnx" and not is_run
    if output is not None and not is_onnx:
        raise GlassboxError(
            f"--output {output}: {target} is not an ONNX file, which may have several outputs; "
            "drop --output"
        )
    if _URL.match(target) and not path.exists():
        from glassbox.oracle.http_client import check_url, http_target

        oracle, truth, desc = http_target(check_url(target), budget)
    elif target.startswith("random:"):
        truth = random_net(target.removeprefix("random:"), seed=seed)
        desc = f"{target} (seed {seed})"
        oracle = net_oracle(truth, budget)
    else:
        if is_run:
            if toy_loader is None:
                raise GlassboxError(
                    f"{target}: a toy run directory, but this caller reads no toy runs; "
                    "attack it with `glassbox extract`"
                )
            truth, sparse, desc = toy_loader(path, instance)
            oracle = net_oracle(truth, budget)
        elif is_onnx:
            oracle = OnnxOracle(path, budget, allow_float32=True, output=output)
            desc = f"ONNX {path}"
            name, note = chosen_output(oracle) or (None, "")
            desc += note
            try:
                truth = ReLUNet.from_onnx(path, allow_float32=True, output=name)
            except GlassboxError as exc:
                # Any graph is a black box to the attack; only verification needs the weights.
                truth = None
                desc += f" (not verified: {exc})"
            if computes_in_float32(oracle):
                # The model computes in float32: its answers carry float32 rounding, and
                # the attack's tolerances follow from that (it finds out from the answers).
                desc += " (a float32 model: answers carry float32 rounding)"
            fixed = fixed_batch_size(oracle)
            if fixed is not None:
                desc += (
                    f" (fixed batch size {fixed}: queried row by row)"
                    if fixed == 1
                    else f" (fixed batch size {fixed}: queried in batches of {fixed})"
                )
        elif path.is_file():
            truth = ReLUNet.load(path)
            desc = f"net {path}"
            oracle = net_oracle(truth, budget)
        else:
            what = "not a regular file" if path.exists() else "no such file or directory"
            raise GlassboxError(
                f"{target}: {what}; TARGET is random:SPEC, a toy run directory, an ONNX file, "
                "a saved net or http://HOST:PORT"
            )
    if float32:
        oracle = float32_outputs(oracle)
        desc += ", float32 outputs"
    return Target(oracle, truth, desc, sparse)
