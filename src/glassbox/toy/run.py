"""Trained runs and their directories: ``weights.safetensors``, ``config.json``, ``metrics.json``.

A run directory is written into a temporary sibling and renamed into place at the end,
so a failure (or Ctrl-C) never leaves a half-written run behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from glassbox.config import load_config, save_config
from glassbox.errors import GlassboxError
from glassbox.io import read_json, read_safetensors, write_json, write_safetensors
from glassbox.toy.config import ToyConfig
from glassbox.toy.trained import TrainedRun

FORMAT = "glassbox.toy"
FORMAT_VERSION = "1"
WEIGHTS, CONFIG, METRICS, ANALYSIS = (
    "weights.safetensors",
    "config.json",
    "metrics.json",
    "analysis.json",
)


def save_run(
    run: TrainedRun, directory: str | os.PathLike[str], plots: bool = True, overwrite: bool = False
) -> Path:
    """Write ``run`` as a run directory (weights, config, metrics, analysis, figures) atomically.

    A figure that fails to draw leaves the rest in place and raises a FigureError naming it.
    """
    target = Path(directory)
    if target.exists() and not (target.is_dir() and not any(target.iterdir())):
        if not overwrite:
            raise GlassboxError(f"{target} already exists; choose a new --out or pass --overwrite")
        if not (target / CONFIG).is_file():
            raise GlassboxError(
                f"{target} exists and is not a glassbox run; refusing to replace it"
            )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; a run dir is an ordinary folder
    failed: GlassboxError | None = None
    try:
        _write_contents(run, tmp)
        if plots:
            from glassbox.toy.run_figures import FigureError, write_run_figures

            try:
                write_run_figures(run, tmp / "figures")
            except FigureError as exc:  # the trained weights are kept all the same
                failed = exc
        if target.exists():
            trash = Path(
                tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent)
            )
            os.replace(target, trash / "run")
            os.replace(tmp, target)
            shutil.rmtree(trash)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    if failed is not None:
        raise type(failed)(
            f"{failed}; the trained run is saved in {target} without all its figures "
            f"(`glassbox plot {target}` draws them again)"
        ) from failed
    return target


def _write_contents(run: TrainedRun, folder: Path) -> None:
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": run.config.model}
    write_safetensors(folder / WEIGHTS, dict(run.weights), metadata)
    save_config(run.config, folder / CONFIG)
    write_json(folder / METRICS, run.metrics)
    write_analysis(run, folder)


def write_analysis(run: TrainedRun, folder: Path) -> None:
    """Write ``analysis.json``: per instance, sparsity, final loss and the analysis summary."""
    rows = [
        {
            "instance": i,
            "sparsity": run.sparsity(i),
            "final_loss": run.metrics["final_loss"][i],
            **run.summary(i),
        }
        for i in range(run.n_instances)
    ]
    write_json(folder / ANALYSIS, {"model": run.config.model, "instances": rows})


def load_run(directory: str | os.PathLike[str]) -> TrainedRun:
    """Read a run directory written by :func:`save_run`; the weights come back bit for bit."""
    folder = Path(directory)
    if not folder.is_dir():
        raise GlassboxError(f"{folder}: no such run directory")
    for name in (CONFIG, WEIGHTS, METRICS):
        if not (folder / name).is_file():
            raise GlassboxError(
                f"{folder} is not a glassbox toy run (no {name}); make one with `glassbox train`"
            )
    config = load_config(ToyConfig, folder / CONFIG)
    path = folder / WEIGHTS
    weights, metadata = read_safetensors(path)
    if metadata.get("format") != FORMAT:
        raise GlassboxError(f"{path}: not glassbox toy weights (no '{FORMAT}' format tag)")
    c, m, n = config.n_configs, config.n_hidden, config.n_features
    expected = {"W1": (c, m, n), "b": (c, n)}
    if not config.kind.tied:
        expected["W2"] = (c, n, m)
    if set(weights) != set(expected):
        raise GlassboxError(f"{path}: holds {sorted(weights)}, expected {sorted(expected)}")
    for name, shape in expected.items():
        w = weights[name]
        if w.shape != shape or w.dtype != np.float32:
            raise GlassboxError(
                f"{path}: {name} is {w.dtype}{list(w.shape)}, expected float32{list(shape)} from config.json"
            )
    metrics = read_json(folder / METRICS)
    if not isinstance(metrics, dict) or len(metrics.get("final_loss", [])) != c:
        raise GlassboxError(f"{folder / METRICS}: no final_loss with one value per instance")
    return TrainedRun(config, weights, metrics)
