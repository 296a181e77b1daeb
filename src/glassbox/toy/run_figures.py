"""Every figure of a trained run's folder (``glassbox train`` and ``glassbox plot``), PNG and SVG."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from glassbox.errors import GlassboxError
from glassbox.toy import analysis

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from glassbox.toy.trained import TrainedRun
from glassbox.toy.plots import (
    GRAPH_MAX_FEATURES,
    SUPERPOSITION_CMAP,
    plot_features,
    plot_geometry_2d,
    plot_graph,
    plot_loss_curves,
    plot_neuron_stack,
    plot_sweep,
    plot_weights,
    save_figure,
)


class FigureError(GlassboxError):
    """A figure of a run could not be drawn; the message names it."""


@contextmanager
def _drawing(name: str) -> Iterator[None]:
    """Turn any failure while drawing figure ``name`` into a FigureError that names it."""
    try:
        yield
    except Exception as exc:
        raise FigureError(f"figure {name!r} failed: {type(exc).__name__}: {exc}") from exc


def _grid(
    count: int, width: float, height: float, cols: int, **kw: Any
) -> tuple[Figure, np.ndarray]:
    rows = -(-count // cols)
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False, **kw).ravel())
    for ax in axes[count:]:
        ax.set_visible(False)
    return fig, axes


def _label(run: TrainedRun, i: int) -> str:
    return f"1-S={1.0 - run.sparsity(i):.3g}"


def _figure_of(ax: Axes) -> Figure:
    fig = ax.get_figure()
    assert isinstance(fig, Figure)
    return fig


def stack_title(label: str, summary: dict[str, Any]) -> str:
    """A neuron stack panel's title: the sparsity and its neuron counts."""
    title = f"{label}: {summary['monosemantic']} mono / {summary['polysemantic']} poly"
    if summary.get("untrained"):
        title += f" / {summary['untrained']} untrained"
    return title


def add_superposition_colorbar(fig: Figure, axes: Sequence[Axes]) -> None:
    """The colour key of :func:`plot_neuron_stack`'s superposition colouring."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable

    bar = fig.colorbar(
        ScalarMappable(Normalize(0, 1), colormaps[SUPERPOSITION_CMAP]), ax=list(axes), shrink=0.6
    )
    bar.set_label("superposition (sqrt, clipped at 1)", fontsize=7)


def computed_features(run: TrainedRun, i: int) -> list[int]:
    """The features instance ``i`` computes on both signs (pair, redundant or superposition)."""
    w1, w2, b = run.instance_weights(i)
    kind = run.config.kind
    found = analysis.feature_computation(
        w1, w2, b, kind.signed_inputs, kind.target, init=run.instance_init(i)
    )
    return [f.index for f in found if f.how in ("pair", "redundant", "superposition")]


def write_run_figures(run: TrainedRun, folder: str | os.PathLike[str]) -> list[Path]:
    """Draw every figure of a run into ``folder`` (PNG and SVG); returns the files written."""
    folder = Path(folder)
    kind, count = run.config.kind, run.n_instances
    labels = [_label(run, i) for i in range(count)]
    summaries = [run.summary(i) for i in range(count)]
    weights = [run.instance_weights(i) for i in range(count)]
    written: list[Path] = []

    with _drawing("loss"):
        curve = run.metrics["loss_curve"]
        ax = plot_loss_curves(curve["step"], curve["loss"], labels)
        written += save_figure(_figure_of(ax), folder / "loss")
    if count > 1:
        with _drawing("sweep"):
            sparsity = [run.sparsity(i) for i in range(count)]
            sweep = plot_sweep(
                sparsity, run.metrics["final_loss"], summaries, baseline=run.baseline_loss()
            )
            written += save_figure(_figure_of(sweep[0]), folder / "sweep")
    if kind.hidden_relu:
        written += _hidden_relu_figures(run, folder, labels, summaries, weights)
    else:
        with _drawing("features"):
            fig, grid = _grid(3 * count, 2.6, 2.6, 3)
            for i, (w1, _, b) in enumerate(weights):
                plot_features(w1, b, axes=list(grid[3 * i : 3 * i + 3]), title=labels[i])
            written += save_figure(fig, folder / "features")
        if run.config.n_hidden == 2:
            with _drawing("geometry"):
                fig, grid = _grid(count, 2.6, 2.6, min(count, 5))
                for i, (w1, _, _) in enumerate(weights):
                    plot_geometry_2d(w1, ax=grid[i], title=labels[i])
                written += save_figure(fig, folder / "geometry")
    return written


def _hidden_relu_figures(
    run: TrainedRun,
    folder: Path,
    labels: list[str],
    summaries: list[dict[str, Any]],
    weights: list[tuple[Any, Any, Any]],
) -> list[Path]:
    """The neuron stacks, the weight heatmaps and the graph view of a ReLU-hidden model."""
    count, m = run.n_instances, run.config.n_hidden
    importance = run.config.importance_vector()
    written: list[Path] = []
    with _drawing("neuron_stack"):
        inits = [run.instance_init(i) for i in range(count)]
        fig, grid = _grid(count, max(4.0, 0.16 * m + 1.5), 2.8, min(count, 2 if m > 12 else 4))
        for i, (w1, w2, _) in enumerate(weights):
            plot_neuron_stack(
                w1, w2, ax=grid[i], importance=importance, title=stack_title(labels[i], summaries[i]),
                init=inits[i],
            )  # fmt: skip
        add_superposition_colorbar(fig, list(grid[:count]))
        written += save_figure(fig, folder / "neuron_stack")
    with _drawing("weights"):
        fig, grid = _grid(2 * count, 4.0, 3.0, 4 if count > 1 else 2)
        for i, (w1, w2, _) in enumerate(weights):
            pair = list(grid[2 * i : 2 * i + 2])
            plot_weights(w1, w2, axes=pair, importance=importance, title=labels[i])
        written += save_figure(fig, folder / "weights")
    with _drawing("graph"):
        small = run.config.n_features <= GRAPH_MAX_FEATURES
        fig, grid = _grid(count, 4.0, 4.0 if small else 7.0, min(count, 4))
        for i, (w1, w2, b) in enumerate(weights):
            shown = None if small else computed_features(run, i)
            what = "" if small else f" ({len(shown or [])} computed features)"
            plot_graph(
                w1, w2, b, ax=grid[i], importance=importance, title=labels[i] + what,
                features=shown,
            )  # fmt: skip
        written += save_figure(fig, folder / "graph")
    return written
