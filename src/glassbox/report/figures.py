"""The report's figures: truth and reconstruction side by side, drawn from the run's own arrays.

Each function returns a matplotlib :class:`~matplotlib.figure.Figure`; :mod:`glassbox.report.demo_page`
inlines them. Every panel names its side (truth or reconstruction) and labels its axes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
from numpy.typing import NDArray

from glassbox.mlp import ReLUNet
from glassbox.report.numbers import neuron_errors
from glassbox.toy import analysis, geometry, plots

Array = NDArray[np.float64]

#: float64 round-off: a weight normalised to a unit row cannot be closer than about 2^-52.
ROUNDOFF_LOG2 = -52.0
#: The fixed colour range of the difference maps (log2 |Δ|): round-off is calm, 2^-10 alarming.
DIFF_RANGE = (-60.0, -10.0)
DIFF_CMAP = "RdYlGn_r"
# Below this a log2 error is "exact": verification.json writes an exact zero as -1074.
EXACT_LOG2 = -1000.0
#: Side = (name, W1, W2, b, neuron order): what one half of a side-by-side figure draws.
Side = tuple[str, Array, Array, Array, list[int]]


# Tick labels: 9 pt, readable once a figure 11 inches wide is shrunk to the page's width.
TICK_FONT = 9.0


def _tick_labels(ax: Any, axis: str, labels: Sequence[str], fontsize: float = TICK_FONT) -> None:
    """Label every position, or every k-th when there are too many to read at ``fontsize``."""
    step = max(1, math.ceil(len(labels) / 24))
    where = list(range(0, len(labels), step))
    setter = ax.set_yticks if axis == "y" else ax.set_xticks
    setter(where, [labels[i] for i in where], fontsize=fontsize)


def superposition_colors(w1: Array) -> tuple[Array, Array]:
    """Per feature, its superposition in ``W1`` (0: alone, >= 1: shares) and the paper's colour for it."""
    from matplotlib import colormaps

    unit_rows = analysis.normalize_neurons(w1, w1.T)[0]
    s = np.clip(geometry.superposition(unit_rows), 0.0, 1.0)
    return s, np.asarray(colormaps["viridis"](1.0 - s))  # yellow alone, purple shared


def weights_figure(sides: Sequence[Side], importance: Array) -> Figure:
    """W directly: one row per side, W1 (neuron x feature) and W2^T (neuron x output)."""
    m = max(len(side[4]) for side in sides)
    n_in, n_out = sides[0][1].shape[1], sides[0][2].shape[0]
    fig = Figure(figsize=(11.0, len(sides) * (0.14 * m + 1.6)), layout="constrained")
    axes = fig.subplots(len(sides), 2, width_ratios=[n_in, n_out], squeeze=False)
    for row, (name, w1, w2, _, order) in zip(axes, sides, strict=True):
        plots.plot_weights(w1, w2, axes=row, order=order, importance=importance)
        row[0].set(title=f"{name}: W1, what each neuron reads", xlabel="input feature x_i")
        row[1].set(title=f"{name}: W2^T, what each neuron writes", xlabel="output y'_i")
        row[0].set_ylabel("neuron (truth index)")
        row[1].set_ylabel("neuron (truth index)")
        labels = [str(i) for i in order]
        for ax in row:
            _tick_labels(ax, "y", labels)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.tick_params(axis="x", labelsize=TICK_FONT)
    return fig


def stack_figure(sides: Sequence[Side], importance: Array) -> Figure:
    """Neuron stack plots side by side, each feature coloured by its superposition, with a legend."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable

    m = max(len(side[4]) for side in sides)
    fig = Figure(figsize=(11.0, 3.6 if m <= 20 else 4.4), layout="constrained")
    axes = fig.subplots(1, len(sides), squeeze=False)[0]
    for ax, (name, w1, w2, _, order) in zip(axes, sides, strict=True):
        _, colors = superposition_colors(w1)
        plots.plot_neuron_stack(w1, w2, ax=ax, order=order, importance=importance, colors=colors)
        ax.set(title=f"{name}: neuron stack", xlabel="neuron (truth index)")
        _tick_labels(ax, "x", [str(i) for i in order])
    cmap = colormaps["viridis"].reversed()
    fig.colorbar(
        ScalarMappable(Normalize(0.0, 1.0), cmap),
        ax=list(axes),
        label="feature's superposition\n(0: alone, 1: shares fully)",
        shrink=0.9,
    )
    # Below the panels, not over them: a legend inside covered the first neurons' bars.
    fig.legend(
        handles=[Patch(color="0.9", label="polysemantic neuron (shaded column)")],
        loc="outside lower left",
        fontsize=8,
        frameon=False,
    )
    return fig


def graph_features(features: Sequence[analysis.Feature], limit: int = 20) -> list[int]:
    """The features the graph view draws: all of up to ``limit``, else those the model computes.

    When it computes none (an under-trained model), the ``limit`` most important ones.
    """
    if len(features) <= limit:
        return [f.index for f in features]
    computed = [f.index for f in features if f.how in ("pair", "redundant", "superposition")]
    return computed or [f.index for f in features[:limit]]


def graph_figure(sides: Sequence[Side], features: Sequence[int]) -> Figure:
    """The graph view for ``features``: features -> neurons -> outputs, with indices and a legend."""
    fig = Figure(figsize=(11.0, max(3.6, 0.16 * max(len(features), 1) + 2.0)), layout="constrained")
    axes = fig.subplots(1, len(sides), squeeze=False)[0]
    for ax, side in zip(axes, sides, strict=True):
        _graph(ax, side, list(features))
    fig.legend(
        handles=[
            Line2D([], [], color=plots.POS, lw=2, label="positive weight"),
            Line2D([], [], color=plots.NEG, lw=2, label="negative weight"),
            Line2D([], [], color="0.3", marker="o", ls="", label="neuron (truth index)"),
        ],
        loc="outside lower center",
        ncols=3,
        fontsize=8,
    )
    return fig


def _graph(ax: Any, side: Side, feats: list[int]) -> None:
    from matplotlib.collections import LineCollection

    name, w1, w2, _, order = side
    nw1, nw2, _ = analysis.normalize_neurons(w1, w2)
    top1 = max(float(np.abs(nw1).max()), 1e-12)
    top2 = max(float(np.abs(nw2).max()), 1e-12)
    sub1, sub2 = nw1[order][:, feats], nw2[feats][:, order]  # (neurons, feats), (feats, neurons)
    cut = analysis.READ_THRESHOLD
    used = np.flatnonzero(
        (np.abs(sub1) >= cut * top1).any(axis=1) | (np.abs(sub2) >= cut * top2).any(axis=0)
    )
    y_f = np.linspace(1.0, 0.0, len(feats)) if len(feats) > 1 else np.full(len(feats), 0.5)
    y_n = np.linspace(1.0, 0.0, len(used)) if len(used) > 1 else np.full(len(used), 0.5)
    segs, colors, widths = [], [], []
    for k, j in enumerate(used):
        for i, _f in enumerate(feats):
            for w, top, x0, x1, ya, yb in (
                (sub1[j, i], top1, 0.0, 1.0, y_f[i], y_n[k]),
                (sub2[i, j], top2, 1.0, 2.0, y_n[k], y_f[i]),
            ):
                if abs(w) >= cut * top:
                    segs.append([(x0, ya), (x1, yb)])
                    colors.append(plots.POS if w > 0 else plots.NEG)
                    widths.append(0.4 + 2.5 * abs(w) / top)
    ax.add_collection(LineCollection(segs, colors=colors, linewidths=widths, alpha=0.7))
    ax.scatter(np.zeros(len(feats)), y_f, c="#8c6d31", s=18, zorder=3)
    ax.scatter(np.ones(len(used)), y_n, c="0.3", s=18, zorder=3)
    ax.scatter(np.full(len(feats), 2.0), y_f, c="#8c6d31", s=18, zorder=3)
    size = 7 if max(len(feats), len(used)) <= 30 else 5
    for i, y in zip(feats, y_f, strict=True):
        ax.annotate(f"x{i}", (0, y), xytext=(-4, 0), textcoords="offset points", ha="right", va="center", fontsize=size)  # fmt: skip
        ax.annotate(f"y'{i}", (2, y), xytext=(4, 0), textcoords="offset points", ha="left", va="center", fontsize=size)  # fmt: skip
    for j, y in zip(used, y_n, strict=True):
        ax.annotate(str(order[j]), (1, y), xytext=(0, 4), textcoords="offset points", ha="center", fontsize=size)  # fmt: skip
    ax.set_xlim(-0.3, 2.3)
    ax.set_ylim(-0.06, 1.06)
    ax.set_xticks([0, 1, 2], ["features x", "neurons h", "outputs y'"])
    ax.set_yticks([])
    ax.set_title(f"{name}: graph view")
    for spine in ("top", "right", "left"):
        ax.spines[spine].set_visible(False)


def abs_curves(net: ReLUNet, features: Sequence[int], points: int = 81) -> tuple[Array, Array]:
    """``(x, Y)``: for each feature i, output i on the single-feature inputs ``x e_i`` (x in [-1, 1])."""
    x = np.linspace(-1.0, 1.0, points)
    n = net.input_dim
    Y = np.empty((len(features), points))
    for k, i in enumerate(features):
        X = np.zeros((points, n))
        X[:, i] = x
        Y[k] = net.forward(X)[:, i]
    return x, Y


def abs_figure(truth: ReLUNet, recovered: ReLUNet, features: Sequence[int]) -> Figure:
    """How well the model computes |x|: per feature, output against input, truth and reconstruction."""
    cols = min(10, max(len(features), 1))
    rows = max(1, math.ceil(len(features) / cols))
    fig = Figure(figsize=(11.0, 1.15 * rows + 0.9))
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)
    x, yt = abs_curves(truth, features)
    _, yr = abs_curves(recovered, features)
    for k, ax in enumerate(axes.flat):
        if k >= len(features):
            ax.set_axis_off()
            continue
        ax.plot(x, np.abs(x), color="0.75", lw=2.5)
        ax.plot(x, yt[k], color="#2166ac", lw=1.2)
        ax.plot(x, yr[k], color="#e08214", lw=1.0, ls="--")
        ax.set_title(f"feature {features[k]}", fontsize=7, pad=2)
        ax.tick_params(labelsize=6, length=2)
    fig.supxlabel("input x_i (all other features 0)", fontsize=8, y=0.02)
    fig.supylabel("output y'_i", fontsize=8, x=0.01)
    fig.legend(
        handles=[
            Line2D([], [], color="0.75", lw=2.5, label="target |x|"),
            Line2D([], [], color="#2166ac", lw=1.2, label="truth"),
            Line2D([], [], color="#e08214", lw=1.0, ls="--", label="reconstruction"),
        ],
        loc="upper center",
        ncols=3,
        fontsize=8,
        frameon=False,
    )
    height = 1.15 * rows + 0.9
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.55 / height, top=1 - 0.45 / height, hspace=0.5, wspace=0.15)  # fmt: skip
    return fig


def difference_figure(diffs: dict[str, Array], order: Sequence[int]) -> Figure:
    """log2 |recovered - true| per weight (rows: truth neurons in ``order``), and per neuron.

    Colours are fixed (:data:`DIFF_RANGE`), so float64 round-off (:data:`ROUNDOFF_LOG2`,
    marked on the colour bar and the bars) always looks calm and a real error alarming.
    Exact zeros are left white.
    """
    from matplotlib import colormaps

    idx = np.asarray(order, dtype=np.int64)
    # np.ma.log2 masks exact zeros, which the colour map then leaves white.
    logs = [np.ma.log2(np.abs(diffs["W1"][idx])), np.ma.log2(np.abs(diffs["W2"][:, idx].T))]
    norm = Normalize(*DIFF_RANGE, clip=True)
    cmap = colormaps[DIFF_CMAP].with_extremes(bad="white")

    fig = Figure(figsize=(11.0, max(2.8, 0.16 * len(idx) + 1.6)), layout="constrained")
    n_in, n_out = logs[0].shape[1], logs[1].shape[1]
    axes = fig.subplots(1, 3, width_ratios=[n_in, n_out, max(8.0, 0.6 * n_in)])
    ticks = [str(i) for i in idx]
    for ax, lg, title, xlabel in zip(
        axes[:2],
        logs,
        ("|ΔW1|: what each neuron reads", "|ΔW2$^T$|: what it writes"),
        ("input feature x_i", "output y'_i"),
        strict=True,
    ):
        im = ax.imshow(lg, cmap=cmap, norm=norm, aspect="auto", interpolation="nearest")
        ax.set(title=title, xlabel=xlabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(axis="x", labelsize=TICK_FONT)
        _tick_labels(ax, "y", ticks)
    axes[0].set_ylabel("neuron (truth index)")
    # Under the two heatmaps it colours, labelled; beside them its label met the neuron axis.
    bar = fig.colorbar(im, ax=list(axes[:2]), location="bottom", shrink=0.8, aspect=40)
    bar.set_label("log2 |Δ| of each weight (white: exact)", fontsize=9)
    bar.set_ticks([-60, ROUNDOFF_LOG2, -40, -30, -20, -10], labels=["-60", "-52\nround-off", "-40", "-30", "-20", "-10"])  # fmt: skip
    bar.ax.axvline(ROUNDOFF_LOG2, color="black", lw=1.5)
    bar.ax.tick_params(labelsize=8)

    per = np.ma.log2(neuron_errors(diffs)[idx])
    floor = DIFF_RANGE[0]
    values = np.clip(per.filled(floor), floor, None)
    exact = np.ma.getmaskarray(per)
    colors = [cmap(norm(v)) if not e else "#bbbbbb" for v, e in zip(values, exact, strict=True)]
    axes[2].barh(np.arange(len(idx)), values - floor, left=floor, color=colors)
    axes[2].axvline(ROUNDOFF_LOG2, color="black", lw=1, ls="--", label="float64 round-off 2^-52")
    axes[2].set_ylim(len(idx) - 0.5, -0.5)
    _tick_labels(axes[2], "y", ticks)
    axes[2].set_xlim(floor, max(DIFF_RANGE[1], float(values.max()) + 2.0))
    handles: list[Any] = [
        Line2D([], [], color="black", lw=1, ls="--", label="float64 round-off (2^-52)")
    ]
    if exact.any():  # the legend names grey bars only when there are some
        handles.append(Patch(color="#bbbbbb", label="exactly equal"))
    fig.legend(handles=handles, fontsize=7, loc="outside lower right", ncols=2)
    axes[2].set(xlabel="log2 max |Δ| of the neuron", title="per neuron")
    return fig


def queries_figure(
    by_phase: dict[str, int], title: str = "queries by phase", sort: bool = True
) -> Figure:
    """Where the queries went: one bar per attack phase (or layer), labelled with its count.

    Bars are sorted by count, largest first, unless ``sort`` is false (then in given order).
    """
    items = sorted(by_phase.items(), key=lambda kv: -kv[1]) if sort else list(by_phase.items())
    fig = Figure(figsize=(6.0, 0.35 * len(items) + 1.2), layout="constrained")
    ax = fig.add_subplot()
    counts = np.array([c for _, c in items], dtype=float)
    ax.barh(np.arange(len(items)), counts, color="#2166ac")
    for y, c in enumerate(counts):
        ax.annotate(f" {int(c):,}", (c, y), va="center", fontsize=8)
    ax.set_yticks(range(len(items)), [p for p, _ in items])
    ax.set_ylim(len(items) - 0.5, -0.5)
    ax.set_xlim(0, counts.max() * 1.25 if counts.size and counts.max() > 0 else 1)
    ax.set(xlabel="queries (rows sent to the black box)", title=title)
    return fig


def layer_name(i: int) -> str:
    """The report's name of weight layer ``i``: W1, W2, ..."""
    return f"W{i + 1}"


def _bits(value: float | None, exact: float) -> float:
    """-log2 of an error, with exact zeros drawn at ``exact``; None/NaN as 0."""
    if value is None or math.isnan(value):
        return 0.0
    return exact if value <= EXACT_LOG2 else -value


def verification_figure(ver: dict[str, Any]) -> Figure:
    """Precision in bits (-log2 of the error, higher is better): per input distribution, per layer."""
    dists = ver["per_distribution"]
    layers = ver["per_layer_error_log2"]
    logs = [d["epsilon_log2"] for d in dists.values()] + list(layers)
    finite = [-v for v in logs if v is not None and v > EXACT_LOG2]
    exact = (max(finite) if finite else 50.0) + 8.0  # draw exact zeros above the best finite bar
    fig = Figure(figsize=(10.0, 3.0), layout="constrained")
    axes = fig.subplots(1, 2, width_ratios=[max(len(dists), 1), max(len(layers), 1)])
    panels = (
        (
            axes[0],
            list(dists),
            [d["epsilon_log2"] for d in dists.values()],
            "output precision: -log2 max |f - f_hat|",
        ),
        (
            axes[1],
            [layer_name(i) for i in range(len(layers))],
            layers,
            "weight precision: -log2 max |Δ|",
        ),
    )
    for ax, names, values, title in panels:
        bits = [_bits(v, exact) for v in values]
        colors = ["#1b9e77" if v is not None and v <= EXACT_LOG2 else "#2166ac" for v in values]
        ax.bar(range(len(names)), bits, color=colors)
        for x, (b, v) in enumerate(zip(bits, values, strict=True)):
            # In the axis's own unit, bits; "exact" for a zero error.
            words = "exact" if v is not None and v <= EXACT_LOG2 else f"{b:.1f}"
            ax.annotate(words, (x, b), ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(names)), names, fontsize=TICK_FONT)
        # An error above 1 has negative bits: let its bar hang below the axis.
        ax.set(
            ylabel="bits of precision (higher is better)",
            title=title,
            ylim=(min(0.0, *bits) - 2.0, exact * 1.15),
        )
        ax.axhline(0.0, color="black", lw=0.5)
        ax.axhline(-ROUNDOFF_LOG2, color="0.4", lw=0.8, ls=":")
    axes[1].annotate("float64 (52 bits)", (0, -ROUNDOFF_LOG2), fontsize=7, color="0.4", va="bottom")
    threshold = ver.get("delta_threshold_log2")
    if threshold is not None:
        # Named in a legend below the panels: written on the line, it crossed the bars.
        line = axes[0].axhline(-threshold, color="#b2182b", lw=1, ls="--")
        line.set_label("tolerance: an input whose bits fall below this line counts in delta")
        fig.legend(handles=[line], loc="outside lower left", fontsize=8, frameon=False)
    return fig


def line_plot(line: Any, top_k: int) -> Figure:
    """The attack's line plot with its legend beside the axes and a title that fits."""
    from glassbox.report.lineplot import line_figure

    fig = line_figure(line, top_k=top_k)
    fig.set_size_inches(10.0, 4.0)
    ax = fig.axes[0]
    title = ax.get_title()
    head, _, tail = title.partition(": ")
    ax.set_title(f"{head}:\n{tail}" if tail else title, fontsize=10)
    legend = ax.get_legend()
    if legend is not None:
        legend.remove()
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    return fig
