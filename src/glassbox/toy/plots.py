"""Figures of toy models from plain arrays: W directly, neuron stacks, graphs, sweeps.

Every plot function takes float arrays (``W1 (m, n)``, ``W2 (n, m)``, ``b (n,)``), draws
into an ``ax`` (or ``axes``) if given and otherwise makes its own figure, and returns the
axes it drew on. Neurons are normalised (max ``|W1 row|`` = 1) and put in
:func:`glassbox.toy.geometry.neuron_order` unless ``order`` is given, so a true network
and its reconstruction drawn side by side line up neuron for neuron. Figures are built
with :class:`matplotlib.figure.Figure`, never pyplot, so nothing needs a display.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.colors import Normalize, TwoSlopeNorm
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from glassbox.io import atomic_path
from glassbox.toy import analysis, geometry

if TYPE_CHECKING:
    from matplotlib.axes import Axes


POS, NEG = "#2166ac", "#b2182b"  # blue for positive weights, red for negative
FEATURE_CMAP = "viridis"
SUPERPOSITION_CMAP = "plasma"
DPI = 100
# Past this many features the graph view of every feature is a hairball (and a
# multi-megabyte file); bigger models are drawn for the features they compute.
GRAPH_MAX_FEATURES = 24


def _axes(ax: Axes | None, size: tuple[float, float] = (6.0, 3.0)) -> Axes:
    if ax is not None:
        return ax
    return Figure(figsize=size, layout="constrained").add_subplot()


def _ordered(
    W1: ArrayLike, W2: ArrayLike, order: ArrayLike | None, importance: ArrayLike | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    w1, w2, _ = analysis.normalize_neurons(W1, W2)
    idx = geometry.neuron_order(w1, importance) if order is None else np.asarray(order)
    return w1[idx], w2[:, idx], idx


def feature_colors(n_features: int) -> np.ndarray:
    """One RGBA colour per feature, by importance rank (feature 0, the most important, is dark)."""
    from matplotlib import colormaps

    return np.asarray(colormaps[FEATURE_CMAP](np.linspace(0.0, 0.95, max(n_features, 1))))


def plot_weights(
    W1: ArrayLike,
    W2: ArrayLike,
    axes: Sequence[Axes] | None = None,
    order: ArrayLike | None = None,
    importance: ArrayLike | None = None,
    title: str = "",
) -> Sequence[Axes]:
    """W directly: heatmaps of ``W1`` and ``W2^T`` (neurons as rows, features as columns)."""
    w1, w2, idx = _ordered(W1, W2, order, importance)
    if axes is None:
        axes = Figure(figsize=(8.0, 3.2), layout="constrained").subplots(1, 2, sharey=True)
    vmax = max(float(np.abs(w1).max()), 1e-12)
    im = axes[0].imshow(w1, cmap="RdBu", norm=TwoSlopeNorm(0.0, -vmax, vmax), aspect="auto")
    axes[0].set(title=f"{title} W1 (normalised)".strip(), xlabel="feature", ylabel="neuron")
    vmax2 = max(float(np.abs(w2).max()), 1e-12)
    im2 = axes[1].imshow(w2.T, cmap="RdBu", norm=TwoSlopeNorm(0.0, -vmax2, vmax2), aspect="auto")
    axes[1].set(title="W2$^T$", xlabel="output feature")
    axes[0].set_yticks(range(len(idx)), [str(i) for i in idx], fontsize=5 if len(idx) > 12 else 8)
    fig = axes[0].get_figure()
    if fig is not None:
        fig.colorbar(im, ax=axes[0], shrink=0.8)
        fig.colorbar(im2, ax=axes[1], shrink=0.8)
    return axes


def superposition_colors(values: ArrayLike) -> np.ndarray:
    """RGBA per feature from its superposition, as the paper's bars: ``sqrt`` clipped to [0, 1] on plasma."""
    from matplotlib import colormaps

    sup = np.sqrt(np.clip(np.asarray(values, dtype=np.float64), 0.0, None))
    return np.asarray(colormaps[SUPERPOSITION_CMAP](Normalize(0, 1)(np.clip(sup, 0, 1))))


def plot_neuron_stack(
    W1: ArrayLike,
    W2: ArrayLike | None = None,
    ax: Axes | None = None,
    order: ArrayLike | None = None,
    importance: ArrayLike | None = None,
    threshold: float = analysis.READ_THRESHOLD,
    title: str = "",
    colors: ArrayLike | None = None,
    init: tuple[ArrayLike, ArrayLike] | None = None,
    color_by: str = "superposition",
) -> Axes:
    """The paper's neuron stack plot: per neuron, its normalised ``|W1|`` weights stacked.

    One column per neuron, one rectangle per feature weight; height is ``|w|``, negative
    weights hang below the axis. Colour is each feature's superposition (the paper's
    colouring, :func:`glassbox.toy.analysis.feature_superposition`: dark when no other
    feature shares its neurons, yellow when others drive them as hard), its importance
    rank with ``color_by="importance"``, or ``colors`` (one RGBA row per feature) when
    given. Columns of polysemantic neurons (two or more learned weights of at least
    ``threshold``) are shaded. With ``init`` (the initial ``W1, W2``), weights still at
    their initial value are drawn hatched in grey: leftovers of the initialisation, not
    learned superposition.
    """
    w1_in = np.asarray(W1, dtype=np.float64)
    w2_in = w1_in.T if W2 is None else np.asarray(W2, dtype=np.float64)
    w1, _, idx = _ordered(w1_in, w2_in, order, importance)
    learned = analysis.learned_mask(w1_in, w2_in, init)[idx]
    ax = _axes(ax, (max(4.0, 0.16 * len(w1) + 1.5), 3.0))
    if colors is not None:
        colors = np.asarray(colors)
    elif color_by == "importance":
        colors = feature_colors(w1.shape[1])
    else:
        colors = superposition_colors(analysis.feature_superposition(w1_in, w2_in, init))
    polys, faces, hatched = [], [], []
    for col, row in enumerate(w1):
        if np.count_nonzero((np.abs(row) >= threshold) & learned[col]) >= 2:
            ax.axvspan(col - 0.5, col + 0.5, color="0.9", zorder=0, lw=0)
        for sign in (1, -1):
            feats = np.flatnonzero(sign * row > 1e-3)  # smaller than that is invisible
            # Learned weights first (largest at the base), leftovers stacked on top.
            feats = feats[np.lexsort((-np.abs(row[feats]), ~learned[col, feats]))]
            base = 0.0
            for f in feats:
                top = base + sign * abs(row[f])
                box = [(col - 0.4, base), (col + 0.4, base), (col + 0.4, top), (col - 0.4, top)]
                if learned[col, f]:
                    polys.append(box)
                    faces.append(colors[f])
                else:
                    hatched.append(box)
                base = top
    ax.add_collection(PolyCollection(polys, facecolors=faces, edgecolors="white", linewidths=0.2))
    if hatched:
        ax.add_collection(
            PolyCollection(
                hatched, facecolors="0.85", edgecolors="0.55", linewidths=0.2, hatch="////"
            )
        )
    ax.axhline(0.0, color="black", lw=0.5)
    tops = [p[2][1] for p in polys + hatched]
    low = min(-0.2, min(tops, default=0.0))
    high = max(1.05, max(tops, default=1.0))
    ax.set_xlim(-0.6, len(w1) - 0.4)
    ax.set_ylim(low * 1.05, high * 1.05)
    ax.set_xticks(range(len(idx)), [str(i) for i in idx], fontsize=5 if len(idx) > 12 else 8)
    ax.set(xlabel="neuron", ylabel="W1 weight (normalised)", title=title)
    return ax


def plot_graph(
    W1: ArrayLike,
    W2: ArrayLike,
    b: ArrayLike | None = None,
    ax: Axes | None = None,
    order: ArrayLike | None = None,
    importance: ArrayLike | None = None,
    threshold: float = analysis.READ_THRESHOLD,
    title: str = "",
    features: ArrayLike | None = None,
) -> Axes:
    """The graph view: features -> neurons -> outputs, edges coloured by sign and sized by ``|w|``.

    Edges below ``threshold`` of the layer's largest weight are left out; output nodes
    are shaded by their bias. ``features`` restricts the drawing to those features (inputs
    and outputs) and the neurons with an edge to them, so a 100-feature model can be drawn
    for the features it computes.
    """
    w1_all, w2_all, idx_all = _ordered(W1, W2, order, importance)
    bias_all = np.zeros(w1_all.shape[1]) if b is None else np.asarray(b, dtype=np.float64)
    feats = np.arange(w1_all.shape[1]) if features is None else np.asarray(features, dtype=int)
    top1 = max(float(np.abs(w1_all).max()), 1e-12)
    top2 = max(float(np.abs(w2_all).max()), 1e-12)
    if features is None:
        keep = np.arange(w1_all.shape[0])
    else:
        touches = (np.abs(w1_all[:, feats]) >= threshold * top1).any(axis=1) | (
            np.abs(w2_all[feats, :]) >= threshold * top2
        ).any(axis=0)
        keep = np.flatnonzero(touches)
    w1, w2, idx = w1_all[np.ix_(keep, feats)], w2_all[np.ix_(feats, keep)], idx_all[keep]
    m, n = w1.shape
    ax = _axes(ax, (4.5, max(3.0, 0.08 * max(n, m) + 1.5)))
    # One node sits in the middle; none (no feature computed, no neuron touching) draws none.
    y_feat = np.linspace(1.0, 0.0, n) if n != 1 else np.array([0.5])
    y_neur = np.linspace(1.0, 0.0, m) if m != 1 else np.array([0.5])
    segs, colors, widths = [], [], []
    for weights, top, x0, x1, y0, y1 in (
        (w1, top1, 0.0, 1.0, y_feat, y_neur),
        (w2, top2, 1.0, 2.0, y_neur, y_feat),
    ):
        rows, cols = np.nonzero(np.abs(weights) >= threshold * top)
        for r, c in zip(rows, cols, strict=True):  # weights[r, c]: from node c to node r
            w = weights[r, c]
            segs.append([(x0, y0[c]), (x1, y1[r])])
            colors.append(POS if w > 0 else NEG)
            widths.append(0.3 + 2.5 * abs(w) / top)
    ax.add_collection(LineCollection(segs, colors=colors, linewidths=widths, alpha=0.7))
    bias = bias_all[feats]
    bmax = max(float(np.abs(bias).max(initial=0.0)), 1e-12)
    size = 12 if max(n, m) > 30 else 30
    ax.scatter(np.zeros(n), y_feat, c=feature_colors(w1_all.shape[1])[feats], s=size, zorder=3)
    ax.scatter(np.ones(m), y_neur, c="0.3", s=size, zorder=3)
    ax.scatter(
        np.full(n, 2.0), y_feat, c=bias, cmap="RdBu", norm=TwoSlopeNorm(0, -bmax, bmax),
        s=size, edgecolors="0.3", linewidths=0.5, zorder=3,
    )  # fmt: skip
    ax.set_xlim(-0.2, 2.2)
    ax.set_ylim(-0.05, 1.05)
    ax.set_xticks([0, 1, 2], ["features x", "neurons h", "outputs y'"])
    ax.set_yticks([])
    if n == 0:
        ax.text(1.0, 0.5, "no feature computed", ha="center", va="center", fontsize=8, color="0.4")
    ax.set_title(title)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    if n <= 40 and m <= 40:
        font = 8 if max(n, m) <= 12 else 5
        for i, y in zip(feats, y_feat, strict=True):
            ax.annotate(
                str(i), (0, y), xytext=(-4, 0), textcoords="offset points", va="center",
                ha="right", fontsize=font,
            )  # fmt: skip
            ax.annotate(
                str(i), (2, y), xytext=(4, 0), textcoords="offset points", va="center",
                fontsize=font,
            )  # fmt: skip
        for j, y in zip(idx, y_neur, strict=True):
            ax.annotate(
                str(j), (1, y), xytext=(0, 3), textcoords="offset points", ha="center",
                fontsize=font,
            )  # fmt: skip
    return ax


def plot_features(
    W: ArrayLike, b: ArrayLike, axes: Sequence[Axes] | None = None, title: str = ""
) -> Sequence[Axes]:
    """The earlier sections' panel: ``W^T W``, ``b``, and ``||W_i||`` bars coloured by superposition."""
    w = np.asarray(W, dtype=np.float64)
    n = w.shape[1]
    if axes is None:
        fig = Figure(figsize=(7.5, 2.6), layout="constrained")
        axes = fig.subplots(1, 3, width_ratios=[n, 1, 2.5 * n])
    wtw = w.T @ w
    vmax = max(float(np.abs(wtw).max()), 1e-12)
    axes[0].imshow(wtw, cmap="RdBu", norm=TwoSlopeNorm(0, -vmax, vmax))
    axes[0].set(title=f"{title} W$^T$W".strip(), xticks=[], yticks=[])
    bias = np.asarray(b, dtype=np.float64)[:, None]
    bmax = max(float(np.abs(bias).max()), 1e-12)
    axes[1].imshow(bias, cmap="RdBu", norm=TwoSlopeNorm(0, -bmax, bmax))
    axes[1].set(title="b", xticks=[], yticks=[])
    norms = geometry.feature_norms(w)
    sup = np.sqrt(np.clip(geometry.superposition(w), 0, None))
    from matplotlib import colormaps

    cmap = colormaps["plasma"]
    axes[2].barh(np.arange(n), norms, color=cmap(Normalize(0, 1)(np.clip(sup, 0, 1))))
    axes[2].invert_yaxis()
    axes[2].set(
        xlabel="||W_i|| (colour: superposition)",
        ylabel="feature",
        xlim=(0, max(1.1, norms.max() * 1.05)),
    )
    return axes


def plot_geometry_2d(W: ArrayLike, ax: Axes | None = None, title: str = "") -> Axes:
    """For ``m = 2``: each feature's direction ``W_i`` as an arrow in the plane."""
    w = np.asarray(W, dtype=np.float64)
    ax = _axes(ax, (2.8, 2.8))
    colors = feature_colors(w.shape[1])
    for i in range(w.shape[1]):
        ax.plot([0, w[0, i]], [0, w[1, i]], color=colors[i], lw=2)
        ax.scatter([w[0, i]], [w[1, i]], color=colors[i], s=18, zorder=3)
    lim = max(1.1, float(np.abs(w).max()) * 1.1)
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", title=title, xticks=[], yticks=[])
    ax.axhline(0, color="0.8", lw=0.5)
    ax.axvline(0, color="0.8", lw=0.5)
    return ax


def plot_sweep(
    sparsity: ArrayLike,
    final_loss: ArrayLike,
    summaries: Sequence[dict[str, Any]],
    axes: Sequence[Axes] | None = None,
    baseline: ArrayLike | None = None,
) -> Sequence[Axes]:
    """Loss and representation against ``1 - S``: loss, neuron roles, feature classes (or D*).

    With ``baseline`` (the best constant output's loss) the loss is drawn relative to it,
    which, unlike the raw loss, compares across sparsities.
    """
    density = 1.0 - np.asarray(sparsity, dtype=np.float64)
    if axes is None:
        axes = Figure(figsize=(11.0, 3.0), layout="constrained").subplots(1, 3)
    loss = np.asarray(final_loss, dtype=np.float64)
    ylabel = "final loss"
    if baseline is not None:
        loss, ylabel = loss / np.asarray(baseline, dtype=np.float64), "final loss / best constant"
    axes[0].plot(density, loss, "o-", color="black")
    axes[0].set(xscale="log", yscale="log", xlabel="1 - S", ylabel=ylabel, title="loss")
    tied = "dimensionality" in summaries[0]
    if tied:
        axes[1].plot(density, [s["dimensionality"] for s in summaries], "o-")
        axes[1].set(
            xscale="log", xlabel="1 - S", ylabel="m / ||W||_F^2", title="dimensions per feature D*"
        )
        axes[2].plot(density, [s["features_represented"] for s in summaries], "o-")
        axes[2].set(xscale="log", xlabel="1 - S", title="features with ||W_i|| > 0.5")
    else:
        roles = (
            ("monosemantic", POS),
            ("polysemantic", NEG),
            ("untrained", "#e6ab02"),
            ("dead", "0.5"),
        )
        for key, color in roles:
            axes[1].plot(density, [s.get(key, 0) for s in summaries], "o-", color=color, label=key)
        axes[1].set(xscale="log", xlabel="1 - S", ylabel="neurons", title="neurons")
        axes[1].legend(fontsize=7)
        bottom = np.zeros(len(density))
        pos = np.arange(len(density))
        for how, color in zip(
            analysis.FEATURE_CLASSES,
            ("#1b9e77", "#66a61e", "#e6ab02", "#7570b3", "0.8"),
            strict=True,
        ):
            counts = np.array([s["features"][how] for s in summaries], dtype=float)
            axes[2].bar(pos, counts, bottom=bottom, color=color, label=how.replace("_", " "))
            bottom += counts
        axes[2].set_xticks(pos, [f"{d:g}" for d in density], fontsize=7)
        axes[2].set(xlabel="1 - S", ylabel="features", title="how each feature is computed")
        axes[2].legend(fontsize=6, loc="upper right")
    for ax in axes[:2]:
        ax.invert_xaxis()  # denser on the left, sparser to the right, as the paper reads
    return axes


def plot_loss_curves(
    steps: ArrayLike, losses: ArrayLike, labels: Sequence[str], ax: Axes | None = None
) -> Axes:
    """Training loss (windowed means) per instance against step, log scale."""
    ax = _axes(ax, (5.0, 3.0))
    curves = np.asarray(losses, dtype=np.float64)
    colors = feature_colors(curves.shape[1])
    for i, label in enumerate(labels):
        ax.plot(steps, curves[:, i], color=colors[i], label=label, lw=1)
    ax.set(yscale="log", xlabel="step", ylabel="training loss", title="loss curves")
    ax.legend(fontsize=6, ncols=2)
    return ax


def save_figure(
    fig: Figure, path: str | os.PathLike[str], formats: Sequence[str] = ("png", "svg")
) -> list[Path]:
    """Save ``fig`` as ``path.png`` and ``path.svg`` (atomically each); returns the files."""
    written = []
    for ext in formats:
        target = Path(f"{path}.{ext}")
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=ext, dpi=DPI)
        written.append(target)
    return written
