"""What one point does: ``run_point(point) -> PointResult``, a pure function of the point's config.

It runs wherever the executor puts it (this process, a pool worker, a Dask worker on
another machine) and returns its record and artefact files as bytes; the sweep's own
process writes them into the sweep folder, so workers need no shared file system.

- ``train``: a :class:`glassbox.toy.config.ToyConfig` (plus ``recipe = "paper"``), trained
  by :func:`glassbox.toy.train.train`; the point folder is a toy run folder
  (``glassbox plot`` and ``glassbox extract`` take it).
- ``extract``: an :class:`ExtractJob`: a target, the defence in front of its oracle, the
  attack seed; :func:`glassbox.extract.extract` then :func:`glassbox.verify.compare.verify`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import re
import tempfile
import time
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from glassbox.config import config_from_dict, config_to_dict
from glassbox.errors import GlassboxError
from glassbox.extras import require
from glassbox.io import read_json
from glassbox.mlp import parse_spec
from glassbox.oracle.core import Oracle, float32_outputs, label_only, net_oracle, noisy, rounded
from glassbox.sweep.point import Point

FORMAT, FORMAT_VERSION = "glassbox.sweep.point", "1"
#: A tied model's feature is represented when ``||W_i|| > 0.5`` (as summarize_tied counts) ...
TIED_NORM = 0.5
#: ... and has a dimension of its own when its superposition ``sum_j (W^_i . W_j)^2`` is below this.
TIED_SUPERPOSITION = 0.5
PHASES = ("dedicated", "superposition", "not_represented")
TOY_TARGET = re.compile(r"^toy:(\d+)-(\d+):([0-9.eE+-]+)$")
DEFENCES = "float64, float32, round:DIGITS, noise:SIGMA or labels"


@dataclass(frozen=True)
class ExtractJob:
    """One attack of an extract sweep; saved as the point's config.json.

    ``target``: ``random:SPEC`` (net seeded by ``seed``, as ``glassbox extract`` does), a
    path ``glassbox extract`` accepts, or ``toy:N-M:S``: an abs toy model with ``N``
    features, ``M`` neurons and sparsity ``S``, trained for ``toy_steps`` steps from
    ``toy_seed``. ``defence``: what the oracle's answers go through (:func:`defend`).
    """

    target: str = "random:10-10-10-1"
    seed: int = 0
    defence: str = "float64"
    budget: int | None = None
    architecture: str | None = None
    toy_steps: int = 3000
    toy_seed: int = 0
    verify_samples: int = 4096

    def __post_init__(self) -> None:
        for name in ("seed", "toy_seed", "toy_steps", "verify_samples", "budget"):
            value = getattr(self, name)
            low = 0 if name in ("seed", "toy_seed") else 1
            if value is None and name == "budget":
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise GlassboxError(f"{name} must be an integer >= {low}, got {value!r}")
        if not isinstance(self.target, str):
            raise GlassboxError(f"target must be a string, got {self.target!r}")
        if self.target.startswith("random:"):
            parse_spec(self.target.removeprefix("random:"))
        elif self.target.startswith("toy:"):
            toy_target(self.target)
        elif self.target.lower().startswith(("http:", "https:")):
            from glassbox.oracle.http_client import check_url

            check_url(self.target)  # refused with the grid, not once per point
        defend(None, self.defence, 0)  # checks the spelling


def toy_target(target: str) -> tuple[int, int, float]:
    """``toy:N-M:S`` -> ``(N, M, S)``; anything else is a one-line GlassboxError."""
    match = TOY_TARGET.match(target)
    if not match:
        raise GlassboxError(f"bad toy target {target!r}: expected toy:FEATURES-NEURONS:SPARSITY")
    return int(match[1]), int(match[2]), float(match[3])


def defend(oracle: Oracle | None, defence: str, seed: int) -> Oracle | None:
    """``oracle`` behind ``defence``: float64 (as is), float32, round:DIGITS, noise:SIGMA, labels."""
    kind, _, arg = str(defence).partition(":")
    wrappers: dict[str, Callable[[Oracle], Oracle]] = {
        "float64": lambda o: o,
        "float32": float32_outputs,
        "labels": label_only,
    }
    try:
        if kind == "round":
            digits = int(arg)
            wrappers[kind] = lambda o: rounded(o, digits)
            if not 1 <= digits <= 17:
                raise ValueError
        elif kind == "noise":
            sigma = float(arg)
            wrappers[kind] = lambda o: noisy(o, sigma, seed)
            if not (math.isfinite(sigma) and sigma >= 0):
                raise ValueError
        elif arg:
            raise ValueError
    except ValueError:
        raise GlassboxError(f"bad defence {defence!r}: use {DEFENCES}") from None
    if kind not in wrappers:
        raise GlassboxError(f"unknown defence {defence!r}: use {DEFENCES}")
    return None if oracle is None else wrappers[kind](oracle)


# ------------------------------------------------------------------ building configs
def job_keys(job: str) -> set[str]:
    """The settings (fixed or axes) a grid of kind ``job`` may name."""
    if job == "extract":
        return {f.name for f in dataclasses.fields(ExtractJob)}
    require("torch", "a train sweep")
    from glassbox.toy.config import ToyConfig

    return {f.name for f in dataclasses.fields(ToyConfig)} | {"recipe"}


def check_types(cls: type, settings: dict[str, Any]) -> None:
    """Refuse a setting whose TOML type cannot be its field's (``seed = [0, 1]``, ``steps = "x"``)."""
    hints = typing.get_type_hints(cls)
    for key, value in settings.items():
        hint = hints.get(key)
        if hint is int and (not isinstance(value, int) or isinstance(value, bool)):
            raise GlassboxError(f"{key} must be an integer, got {value!r}")
        if hint is float and (not isinstance(value, int | float) or isinstance(value, bool)):
            raise GlassboxError(f"{key} must be a number, got {value!r}")
        if hint is str and not isinstance(value, str):
            raise GlassboxError(f"{key} must be a string, got {value!r}")


def build_config(job: str, settings: dict[str, Any]) -> Any:
    """The frozen config of one point from its settings (fixed values and axis values)."""
    if job == "extract":
        check_types(ExtractJob, settings)
        return config_from_dict(ExtractJob, settings)
    from glassbox.toy.config import RECIPES, ToyConfig, default_config, paper_recipe

    check_types(ToyConfig, settings)
    rest = dict(settings)
    recipe = rest.pop("recipe", "none")
    if recipe not in RECIPES:
        raise GlassboxError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
    config = default_config(rest.pop("model", "abs"), **rest)
    return paper_recipe(config) if recipe == "paper" else config


# ------------------------------------------------------------------ running a point
@dataclass(frozen=True, eq=False)
class PointResult:
    """A finished point: its record (result.json) and artefact files, relative path -> bytes."""

    record: dict[str, Any]
    files: dict[str, bytes]


def worker_threads() -> int | None:
    """CPU threads for a point: ``OMP_NUM_THREADS`` where the pool or Dask set it, else the default."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else None


def run_point(point: Point) -> PointResult:
    """Run one point (top-level and picklable, for any executor) and return its result."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="glassbox-point.") as tmp:
        folder = Path(tmp)
        if point.job == "train":
            result, timing = _train(point.config, folder)
        else:
            result, timing = _extract(point.config, folder)
        files = {
            str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }
    record = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "job": point.job,
        "id": point.id,
        "name": point.name,
        "axes": dict(point.axes),
        "config": config_to_dict(point.config),
        "result": result,
        # Everything that differs from run to run of the same point lives here only.
        "timing": {
            **timing,
            "wall_seconds": time.perf_counter() - start,
            # BLAS threads set by the pool or Dask (None: the library's default). NumPy's BLAS
            # can round differently with another count (BENCHMARKS.md, Sweeps).
            "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
            "host": platform.node(),
            "pid": os.getpid(),
        },
    }
    return PointResult(record, files)


def phase_counts(row: dict[str, Any]) -> dict[str, int]:
    """Features per phase of one analysed instance: dedicated neurons, superposition, not represented.

    abs / relu-hidden (from the feature classes): dedicated = a +/- pair or several
    monosemantic neurons; superposition = computed with polysemantic neurons; not
    represented = not computed, or on one sign only. Tied models: not represented when
    ``||W_i|| <= 0.5``, dedicated when its superposition is below :data:`TIED_SUPERPOSITION`.
    """
    if "features" in row:
        f = row["features"]
        return {
            "dedicated": f["pair"] + f["redundant"],
            "superposition": f["superposition"],
            "not_represented": f["not_represented"] + f["one_sign"],
        }
    norms, sup = row["feature_norms"], row["superposition"]
    kept = [s for n, s in zip(norms, sup, strict=True) if n > TIED_NORM]
    dedicated = sum(s < TIED_SUPERPOSITION for s in kept)
    return {
        "dedicated": dedicated,
        "superposition": len(kept) - dedicated,
        "not_represented": len(norms) - len(kept),
    }


def _train(config: Any, folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    from glassbox.toy.run import ANALYSIS, save_run
    from glassbox.toy.train import train

    run = train(config, progress=False, threads=worker_threads())
    save_run(run, folder, plots=False, overwrite=True)
    rows = read_json(folder / ANALYSIS)["instances"]
    instances = [
        {
            "sparsity": row["sparsity"],
            "density": 1.0 - row["sparsity"],
            "final_loss": row["final_loss"],
            "baseline_loss": base,
            "loss_ratio": row["final_loss"] / base,
            "phase": phase_counts(row),
            **{k: row[k] for k in ("monosemantic", "polysemantic", "features") if k in row},
        }
        for row, base in zip(rows, run.metrics["baseline_loss"], strict=True)
    ]
    metrics = run.metrics
    timing = {k: metrics[k] for k in ("train_seconds", "steps_per_second", "threads", "kernel")}
    return {
        "n_features": config.n_features,
        "n_hidden": config.n_hidden,
        "instances": instances,
    }, timing


def _target(job: ExtractJob) -> tuple[Oracle, Any, float | None, str]:
    if not job.target.startswith("toy:"):
        from glassbox.oracle.targets import resolve_target
        from glassbox.toy.target import toy_instance

        tgt = resolve_target(job.target, seed=job.seed, budget=job.budget, toy_loader=toy_instance)
        return tgt.oracle, tgt.truth, tgt.sparse_probability, tgt.description
    require("torch", f"the toy target {job.target}")
    from glassbox.toy.config import ToyConfig
    from glassbox.toy.train import train

    n, m, sparsity = toy_target(job.target)
    toy = ToyConfig(
        model="abs", n_features=n, n_hidden=m, sparsity=(sparsity,), steps=job.toy_steps,
        restarts=1, seed=job.toy_seed,
    )  # fmt: skip
    net = train(toy, progress=False, threads=worker_threads()).instance_net(0)
    desc = f"toy abs {n}-{m}-{n} S={sparsity:g} ({job.toy_steps} steps, seed {job.toy_seed})"
    return net_oracle(net, job.budget), net, 1.0 - sparsity, desc


def _extract(job: ExtractJob, folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    from glassbox.config import save_config
    from glassbox.extract.attack import ExtractConfig, extract
    from glassbox.io import write_json
    from glassbox.verify.compare import verify

    oracle, truth, sparse, desc = _target(job)
    attacked = defend(oracle, job.defence, job.seed)
    assert attacked is not None
    result = extract(attacked, ExtractConfig(seed=job.seed, architecture=job.architecture))
    record = {"target": desc, "defence": job.defence, **result.to_json()}
    summary: dict[str, Any] = {
        "target": desc,
        **{k: record[k] for k in ("success", "message", "architecture", "queries", "queries_log2")},
        "max_weight_error_log2": None,
        "epsilon_log2": None,
        "delta": None,
    }
    if result.net is not None and truth is not None:
        ver = verify(
            result.net, truth, n_samples=job.verify_samples, seed=job.seed,
            sparse_probability=sparse, queries=result.queries,
        ).to_json()  # fmt: skip
        record["verification"] = ver
        summary.update({k: ver[k] for k in ("max_weight_error_log2", "epsilon_log2", "delta")})
        result.net.save(folder / "recovered.safetensors")
    save_config(job, folder / "config.json")
    write_json(folder / "extraction.json", record)
    return summary, {"seconds": result.seconds, "peak_rss_mb": result.peak_rss_mb}
