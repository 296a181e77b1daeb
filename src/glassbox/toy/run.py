"""Trained runs and their directories: ``weights.safetensors``, ``config.json``, ``metrics.json``.

A run directory is written into a temporary sibling and renamed into place at the end,
so a failure (or Ctrl-C) never leaves a half-written run behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from glassbox.config import load_config, save_config
from glassbox.errors import GlassboxError
from glassbox.io import read_json, read_safetensors, write_json
from glassbox.mlp import ReLUNet
from glassbox.toy import analysis
from glassbox.toy.config import ToyConfig

FORMAT = "glassbox.toy"
FORMAT_VERSION = "1"
WEIGHTS, CONFIG, METRICS, ANALYSIS = (
    "weights.safetensors",
    "config.json",
    "metrics.json",
    "analysis.json",
)


@dataclass(frozen=True, eq=False)
class TrainedRun:
    """A trained run: its config, the kept instance of each configuration, and its metrics.

    ``weights`` holds float32 arrays exactly as trained: ``W1 (C, m, n)``, ``b (C, n)``
    and, for the untied abs model, ``W2 (C, n, m)``; ``C`` is the number of sparsity values.
    """

    config: ToyConfig
    weights: dict[str, NDArray[np.float32]]
    metrics: dict[str, Any]

    @property
    def n_instances(self) -> int:
        """Number of kept instances (one per sparsity value)."""
        return int(self.weights["W1"].shape[0])

    def instance_weights(
        self, i: int
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """``(W1 (m, n), W2 (n, m), b (n,))`` of instance ``i`` in float64; ``W2 = W1.T`` when tied."""
        if not 0 <= i < self.n_instances:
            raise GlassboxError(f"instance {i} does not exist; this run has {self.n_instances}")
        w1 = self.weights["W1"][i].astype(np.float64)
        w2 = w1.T.copy() if self.config.kind.tied else self.weights["W2"][i].astype(np.float64)
        return w1, w2, self.weights["b"][i].astype(np.float64)

    def instance_net(self, i: int) -> ReLUNet:
        """Instance ``i`` as a float64 :class:`ReLUNet` computing exactly what it was trained as.

        abs and relu-hidden: ``ReLU(W2 ReLU(W1 x) + b)`` (no hidden bias, output ReLU).
        relu-output and linear have no hidden ReLU, so they are one layer ``W^T W``.
        """
        kind = self.config.kind
        w1, w2, b = self.instance_weights(i)
        if kind.hidden_relu:
            return ReLUNet([w1, w2], [None, b], output_relu=kind.output_relu)
        return ReLUNet([w2 @ w1], [b], output_relu=kind.output_relu)

    def instance_init(self, i: int) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
        """``(W1, W2)`` that instance ``i`` started from (regenerated from the seed), float64.

        None when the metrics do not say which restart was kept.
        """
        kept = self.metrics.get("kept_restart")
        if kept is None or not 0 <= i < len(kept):
            return None
        from glassbox.toy.train import initial_params

        start = initial_params(self.config, int(kept[i]))
        w1 = start["W1"][0].numpy().astype(np.float64)
        w2 = w1.T.copy() if self.config.kind.tied else start["W2"][0].numpy().astype(np.float64)
        return w1, w2

    def sparsity(self, i: int) -> float:
        """The mean sparsity ``S`` of instance ``i`` (its scalar S unless given per feature)."""
        return float(1.0 - self.config.probability()[i].mean())

    def baseline_loss(self) -> NDArray[np.float64]:
        """Per instance, the loss of the best constant output (see :func:`analysis.constant_baseline`)."""
        return analysis.constant_baseline(
            self.config.probability(), self.config.importance_vector()
        )

    def summary(self, i: int) -> dict[str, Any]:
        """The analysis headline numbers for instance ``i`` (see :mod:`glassbox.toy.analysis`)."""
        kind = self.config.kind
        w1, w2, b = self.instance_weights(i)
        if not kind.hidden_relu:
            return analysis.summarize_tied(w1, b)
        return analysis.summarize(
            w1,
            w2,
            b,
            signed_inputs=kind.signed_inputs,
            target=kind.target,
            init=self.instance_init(i),
        )


def save_run(
    run: TrainedRun, directory: str | os.PathLike[str], plots: bool = True, overwrite: bool = False
) -> Path:
    """Write ``run`` as a run directory (weights, config, metrics, analysis, figures) atomically."""
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
    try:
        _write_contents(run, tmp, plots)
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
    return target


def _write_contents(run: TrainedRun, folder: Path, plots: bool) -> None:
    from safetensors.numpy import save_file

    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": run.config.model}
    save_file(
        {k: np.ascontiguousarray(v) for k, v in run.weights.items()},
        str(folder / WEIGHTS),
        metadata=metadata,
    )
    save_config(run.config, folder / CONFIG)
    write_json(folder / METRICS, run.metrics)
    write_analysis(run, folder)
    if plots:
        from glassbox.toy.plots import write_run_figures

        write_run_figures(run, folder / "figures")


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
