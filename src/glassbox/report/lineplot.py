"""The line plot (Figure 2 of Carlini et al.): f along one line, kinks marked by kind.

Every output is piecewise linear along the line, so the polyline through the queried
points and the kinks found is f itself. One curve per output (the ``top_k`` that vary
most), a vertical line at every hidden-neuron kink, styled by the layer of the recovered
neuron that made it, and a cross where an output ReLU switches its output off.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from glassbox.extract.kinks import HIDDEN, OUTPUT_RELU, LineKinks
from glassbox.io import atomic_path

# Kinks of different layers: a strong colour and a dashed style each (greyscale-safe; no
# dotted style, which drew layer 2's kinks too faint to see).
LAYER_COLORS = ("0.35", "tab:purple", "tab:olive", "tab:brown", "tab:pink")
LAYER_STYLES = ("--", "-.", (0, (6, 2)), (0, (3, 1, 1, 1, 1, 1)), (0, (8, 2, 2, 2)))
KINK_WIDTH = 1.2


def line_figure(line: LineKinks, top_k: int = 5) -> Figure:
    """A matplotlib figure of ``f`` along ``line`` with its kinks."""
    t = np.concatenate([line.samples_t, line.t])
    f = np.vstack([line.samples_f, line.value])
    order = np.argsort(t, kind="stable")
    t, f = t[order], f[order]
    spread = np.ptp(f, axis=0)
    shown = np.argsort(-spread)[: max(1, top_k)]
    fig = Figure(figsize=(7.5, 4.0), layout="constrained")
    ax = fig.add_subplot()
    colors = [f"C{i % 10}" for i in range(shown.size)]
    for j, color in zip(shown, colors, strict=True):
        ax.plot(t, f[:, j], color=color, lw=1.2, label=f"output {j}")
    hidden = [k for k, kind in enumerate(line.kind) if kind == HIDDEN]
    labelled: set[int] = set()
    for k in hidden:
        layer = line.layer[k] if k < len(line.layer) else 0
        name = f"layer-{layer} neuron kink" if layer else "hidden-neuron kink"
        ax.axvline(
            line.t[k],
            color=LAYER_COLORS[(layer - 1) % len(LAYER_COLORS)] if layer else "0.55",
            ls=LAYER_STYLES[(layer - 1) % len(LAYER_STYLES)] if layer else "--",
            lw=KINK_WIDTH,
            label=None if layer in labelled else name,
        )
        labelled.add(layer)
    first = True
    for k, kind in enumerate(line.kind):
        if kind != OUTPUT_RELU:
            continue
        for j in np.flatnonzero(line.changed[k]):
            if j in shown:
                ax.plot(
                    line.t[k],
                    line.value[k, j],
                    "x",
                    color="black",
                    ms=7,
                    mew=1.6,
                    label="output-ReLU kink" if first else None,
                )
                first = False
    n_out = sum(kind == OUTPUT_RELU for kind in line.kind)
    ax.set_title(
        f"f along x0 + t·d: {len(hidden)} hidden-neuron kinks, {n_out} output-ReLU kinks"
        + (f" (top {shown.size} of {f.shape[1]} outputs)" if f.shape[1] > shown.size else "")
    )
    ax.set_xlabel("t")
    ax.set_ylabel("f(x0 + t·d)")
    ax.legend(fontsize="small", loc="best")
    return fig


def save_line_plot(
    line: LineKinks, stem: str | os.PathLike[str], top_k: int = 5
) -> tuple[Path, Path]:
    """Write ``stem.png`` and ``stem.svg``; returns both paths."""
    fig = line_figure(line, top_k)
    stem = Path(stem)
    paths = (stem.with_suffix(".png"), stem.with_suffix(".svg"))
    for path in paths:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=path.suffix[1:], dpi=120)
    return paths
