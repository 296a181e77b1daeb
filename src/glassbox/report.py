"""The HTML report: a toy model and its reconstruction from queries, side by side, in one file.

:func:`build_report` turns plain data (:class:`ReportInputs`: the true and recovered nets,
the run's config, training, extraction and verification figures, the line plot data)
into one self-contained HTML page. Every figure is a matplotlib figure of the run's own
arrays, inlined as a base64 PNG, and every number and sentence about the run is computed
here from those inputs. The report covers the toy model's shape, ``ReLU(W2 ReLU(W1 x) + b)``
with one hidden layer.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from numpy.typing import NDArray

from glassbox.errors import GlassboxError
from glassbox.extract.kinks import HIDDEN, LineKinks
from glassbox.extract.lineplot import line_figure
from glassbox.extract.verify import Alignment, align, fmt_log2, log2_error
from glassbox.io import dumps_json
from glassbox.mlp import ReLUNet
from glassbox.toy import analysis, plots
from glassbox.toy.config import ToyConfig

Array = NDArray[np.float64]

DPI = 100
# More curves than this make the line plot unreadable.
MAX_LINE_CURVES = 10
# Below this a log2 error is "exact": verification.json writes an exact zero as -1074.
EXACT_LOG2 = -1000.0


@dataclass(frozen=True, eq=False)
class ReportInputs:
    """Everything the report shows, as plain data (what a demo run directory holds)."""

    config: dict[str, Any]  # the run's config, shown verbatim
    toy: ToyConfig  # the training config of the toy model
    instance: int  # which kept instance of the toy run was attacked
    training: dict[str, Any]  # the toy run's metrics.json
    truth: ReLUNet
    recovered: ReLUNet
    extraction: dict[str, Any]  # extraction.json
    verification: dict[str, Any]  # verification.json
    line: LineKinks | None  # the first line the attack searched, with its kinks (the line plot)


# ------------------------------------------------------------------ numbers
def _layers(net: ReLUNet) -> tuple[Array, Array, Array]:
    """``(W1, W2, b)`` of a one-hidden-layer net; b is zeros when the output has no bias."""
    if net.n_hidden_layers != 1:
        raise GlassboxError(f"the report draws one-hidden-layer nets; got {net.describe()}")
    w1, w2 = net.weights
    b = net.biases[1]
    return w1, w2, np.zeros(w2.shape[0]) if b is None else b


def weight_differences(truth: ReLUNet, aligned: ReLUNet) -> dict[str, Array]:
    """Aligned-recovered minus true weights per truth neuron, each neuron normalised as verify does.

    Every truth neuron is scaled so its incoming row (and bias, if any) has unit L2 norm,
    its outgoing column scaled back, and the same factors applied to the aligned
    reconstruction; so the largest entry equals verify's max weight error when no neuron
    is set apart. Returns ``W1 (m, n)``, ``W2 (n, m)`` and ``b (n,)`` differences.
    """
    tw1, tw2, tb = _layers(truth)
    aw1, aw2, ab = _layers(aligned)
    m = tw1.shape[0]
    hidden_bias = truth.biases[0]
    sq = (tw1**2).sum(axis=1) + (0.0 if hidden_bias is None else hidden_bias**2)
    r = np.where(sq > 0, np.sqrt(sq), 1.0)
    return {
        "W1": (aw1[:m] - tw1) / r[:, None],
        "W2": (aw2[:, :m] - tw2) * r[None, :],
        "b": ab - tb,
    }


def neuron_errors(diffs: dict[str, Array]) -> Array:
    """Per truth neuron, the largest absolute difference in its incoming row or outgoing column."""
    return np.maximum(np.abs(diffs["W1"]).max(axis=1), np.abs(diffs["W2"]).max(axis=0))


@dataclass(frozen=True)
class Recovery:
    """Which truth neurons the attack could see and which it recovered."""

    visible: tuple[int, ...]
    recovered: tuple[int, ...]
    missing: tuple[int, ...]  # visible but not matched
    dead: tuple[int, ...]
    invisible: tuple[int, ...]
    extra: tuple[int, ...]  # recovered neurons that match no truth neuron


def recovery(alignment: Alignment) -> Recovery:
    """Count visible and recovered hidden neurons of the (one) hidden layer."""
    dead, invisible = alignment.dead_mask[0], alignment.invisible_mask[0]
    matched = alignment.permutations[0] >= 0
    visible = ~dead & ~invisible

    def idx(mask: NDArray[np.bool_]) -> tuple[int, ...]:
        return tuple(int(i) for i in np.flatnonzero(mask))

    return Recovery(
        visible=idx(visible),
        recovered=idx(visible & matched),
        missing=idx(visible & ~matched),
        dead=idx(dead),
        invisible=idx(invisible & ~dead),
        extra=tuple(int(i) for i in alignment.extras[0]),
    )


def drop_negligible_extras(aligned: ReLUNet, m: int) -> tuple[ReLUNet, dict[int, float]]:
    """The aligned net without unmatched extra neurons too weak to matter, and those dropped.

    A neuron's effect is ``max|W1 row| * max|W2 column|`` (scale-free); extras below the
    analysis's dead threshold (e.g. a wrong-sign twin the output fit gave ~0 weight) are
    dropped, keyed by their position in the aligned net.
    """
    w1, w2, _ = _layers(aligned)
    effect = np.abs(w1).max(axis=1) * np.abs(w2).max(axis=0)
    extras = np.arange(m, w1.shape[0])
    weak = extras[effect[extras] < analysis.DEAD_THRESHOLD]
    keep = np.setdiff1d(np.arange(w1.shape[0]), weak)
    hidden_bias = aligned.biases[0]
    net = ReLUNet(
        [w1[keep], w2[:, keep]],
        [None if hidden_bias is None else hidden_bias[keep], aligned.biases[1]],
        aligned.output_relu,
    )
    return net, {int(k): float(effect[k]) for k in weak}


def summary_lines(inputs: ReportInputs, rec: Recovery) -> list[str]:
    """The five-line summary the demo prints and the report leads with."""
    ex, ver = inputs.extraction, inputs.verification
    queries = int(ex["queries"])
    return [
        f"queries:                {queries:,} (2^{log2_error(queries):.1f})",
        f"seconds:                {ex['seconds']:.1f} (attack only)",
        f"max weight error:       {fmt_log2(ver['max_weight_error_log2'])}",
        f"functional error:       max |f - f'| = {fmt_log2(ver['epsilon_log2'])} "
        f"on {_sample_count(ver):,} inputs (delta = {ver['delta']:g})",
        f"neurons recovered:      {len(rec.recovered)} / {len(rec.visible)} visible",
    ]


def summary(inputs: ReportInputs) -> list[str]:
    """The five-line summary of a run (aligns the reconstruction to count recovered neurons)."""
    return summary_lines(inputs, recovery(align(inputs.recovered, inputs.truth)))


def _sample_count(ver: dict[str, Any]) -> int:
    return sum(int(d["n"]) for d in ver.get("per_distribution", {}).values())


# -------------------------------------------------------------------- reading
FEATURE_WORDS = {
    "pair": "by a dedicated pair of neurons, ReLU(x) + ReLU(-x)",
    "redundant": "by several dedicated (monosemantic) neurons",
    "superposition": "in superposition, by neurons shared with other features",
    "one_sign": "for one sign only",
    "not_represented": "not at all (the model ignores them)",
}


def reading(
    truth: dict[str, Any],
    recon: dict[str, Any],
    rec: Recovery,
    inputs: ReportInputs,
    dropped: dict[int, float],
) -> list[str]:
    """Sentences on what the figures show, every number computed from the run."""
    n, m = inputs.toy.n_features, inputs.toy.n_hidden
    out = [
        f"{n} features share {m} neurons. {truth['monosemantic']} neuron(s) are monosemantic "
        f"(read one feature) and {truth['polysemantic']} polysemantic (read two or more); "
        f"a neuron reads on average {truth['features_per_neuron_mean']:.1f} features, at most "
        f"{truth['features_per_neuron_max']}."
        + (f" {truth['dead']} neuron(s) are dead." if truth["dead"] else "")
    ]
    classes = truth["features"]
    parts = [f"{classes[c]} {FEATURE_WORDS[c]}" for c in analysis.FEATURE_CLASSES if classes[c]]
    out.append(
        f"Of the {n} features, the model computes abs(x) for {truth['features_computed']} on both "
        "signs. Feature by feature: " + "; ".join(parts) + "."
    )
    top = truth["top_features_dedicated"]
    if truth["features_computed"] == 0:
        out.append("No feature is computed yet: this model is under-trained (raise the steps).")
    elif top == 0:
        out.append(
            "Even the most important feature shares its neurons: superposition reaches the top."
        )
    elif top < n:
        lead = (
            "Only feature 0, the most important, has neurons of its own"
            if top == 1
            else f"Features 0 to {top - 1}, the most important, have neurons of their own"
        )
        out.append(
            f"{lead}; from feature {top} on, features share neurons or are "
            "dropped, as the paper finds: the most important features stay monosemantic longest."
        )
    else:
        out.append(
            "Every feature is computed by dedicated neurons: no superposition at this sparsity."
        )
    motifs = truth.get("asymmetric_motifs", 0)
    if motifs:
        out.append(
            f"{motifs} neuron(s) show the paper's asymmetric superposition motif (two features "
            f"in one neuron with reciprocal output weights), "
            f"{truth.get('asymmetric_motifs_with_inhibitor', 0)} with an inhibiting neuron."
        )
    if rec.extra:
        kept = len(rec.extra) - len(dropped)
        out.append(
            f"The reconstruction holds {len(rec.extra)} neuron(s) beyond the truth's, matching no "
            "truth neuron (see the last sections); "
            + (
                f"{len(dropped)} of them have an effect of at most "
                f"{fmt_log2(log2_error(max(dropped.values())))} and are left out of the figures"
                if dropped
                else ""
            )
            + (
                f"{'; ' if dropped else ''}{kept} are drawn after the truth's neurons"
                if kept
                else ""
            )
            + "."
        )
    same = all(truth[k] == recon[k] for k in ("monosemantic", "polysemantic", "dead", "features"))
    ver = inputs.verification
    out.append(
        f"The attack saw only a black box and recovered {len(rec.recovered)} of the "
        f"{len(rec.visible)} neurons it could see, with max weight error "
        f"{fmt_log2(ver['max_weight_error_log2'])} after alignment: "
        + (
            "the same analysis of the reconstruction gives the same counts, so everything "
            "said above can be read off a model known only through its answers."
            if same
            else "the same analysis of the reconstruction gives different counts "
            f"({recon['monosemantic']} monosemantic, {recon['polysemantic']} polysemantic, "
            f"{recon['features_computed']} features computed), so the reconstruction is not "
            "faithful enough to read the model from."
        )
    )
    return out


# ------------------------------------------------------------------- figures
def figure_data_uri(fig: Figure) -> str:
    """A figure as a ``data:image/png;base64,...`` URI (for an inline ``<img>``)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _side_by_side(height: float, width: float = 11.0, cols: int = 2) -> tuple[Figure, Any]:
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots(1, cols)


def difference_figure(diffs: dict[str, Array], order: Sequence[int]) -> Figure:
    """log2 |recovered - true| per weight (rows: truth neurons in ``order``), and per neuron.

    Exact zeros are left white. The panels: incoming weights ``W1``, outgoing ``W2^T``,
    and each neuron's largest difference (grey: exactly zero).
    """
    from matplotlib import colormaps

    idx = np.asarray(order, dtype=np.int64)
    # np.ma.log2 masks exact zeros, which the colour map then leaves white.
    logs = [np.ma.log2(np.abs(diffs["W1"][idx])), np.ma.log2(np.abs(diffs["W2"][:, idx].T))]
    values = np.concatenate([lg.compressed() for lg in logs])
    hi = float(values.max()) if values.size else 0.0
    lo = float(values.min()) if values.size else -53.0
    lo = min(lo, hi - 1.0)
    norm = Normalize(lo, hi)
    cmap = colormaps["magma_r"].with_extremes(bad="white")

    fig = Figure(figsize=(11.0, max(2.6, 0.22 * len(idx) + 1.2)), layout="constrained")
    n_in, n_out = logs[0].shape[1], logs[1].shape[1]
    axes = fig.subplots(1, 3, width_ratios=[n_in, n_out, max(4.0, 0.6 * n_in)])
    ticks = [str(i) for i in idx]
    for ax, lg, title, xlabel in zip(
        axes[:2], logs, ("|ΔW1|", "|ΔW2$^T$|"), ("feature", "output"), strict=True
    ):
        im = ax.imshow(lg, cmap=cmap, norm=norm, aspect="auto", interpolation="nearest")
        ax.set(title=f"{title} (log2)", xlabel=xlabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_yticks(range(len(idx)), ticks, fontsize=7)
    axes[0].set_ylabel("truth neuron")
    fig.colorbar(im, ax=axes[1], label="log2 |Δ| (white: exact)", shrink=0.9)

    per = np.ma.log2(neuron_errors(diffs)[idx])
    floor = lo - 2.0
    bars = per.filled(floor)
    colors = np.where(np.ma.getmaskarray(per), "#bbbbbb", "#b2182b")
    axes[2].barh(np.arange(len(idx)), bars - floor, left=floor, color=colors)
    axes[2].set_ylim(len(idx) - 0.5, -0.5)
    axes[2].set_yticks(range(len(idx)), ticks, fontsize=7)
    axes[2].set(xlabel="log2 max |Δ| (grey: exact)", title="per neuron")
    return fig


def model_figures(
    truth: ReLUNet, aligned: ReLUNet, importance: Array, order: Sequence[int]
) -> dict[str, Figure]:
    """The paper's three views (W directly, neuron stack, graph), truth left, reconstruction right.

    Both sides use the truth's neuron order; the aligned reconstruction's unmatched extra
    neurons, if any, come last on its side.
    """
    tw1, tw2, tb = _layers(truth)
    aw1, aw2, ab = _layers(aligned)
    m = tw1.shape[0]
    recon_order = [*order, *range(m, aw1.shape[0])]
    sides = (("truth", tw1, tw2, tb, list(order)), ("reconstruction", aw1, aw2, ab, recon_order))

    weights = Figure(figsize=(12.0, max(3.0, 0.2 * m + 1.4)), layout="constrained")
    axes = []
    for k in range(2):  # each side's W2^T panel shares its W1 panel's neuron rows
        first = weights.add_subplot(1, 4, 2 * k + 1)
        axes += [first, weights.add_subplot(1, 4, 2 * k + 2, sharey=first)]
    for k, (name, w1, w2, _, o) in enumerate(sides):
        plots.plot_weights(
            w1, w2, axes=axes[2 * k : 2 * k + 2], order=o, importance=importance, title=name
        )

    stack, axes = _side_by_side(3.2)
    for ax, (name, w1, w2, _, o) in zip(axes, sides, strict=True):
        plots.plot_neuron_stack(w1, w2, ax=ax, order=o, importance=importance, title=name)

    n = tw1.shape[1]
    graph, axes = _side_by_side(max(3.5, 0.1 * max(n, m) + 2.0), width=10.0)
    for ax, (name, w1, w2, b, o) in zip(axes, sides, strict=True):
        plots.plot_graph(w1, w2, b, ax=ax, order=o, importance=importance, title=name)
    return {"weights": weights, "stack": stack, "graph": graph}


def queries_figure(by_phase: dict[str, int]) -> Figure:
    """Where the queries went: one bar per attack phase, labelled with its count."""
    items = sorted(by_phase.items(), key=lambda kv: -kv[1])
    fig = Figure(figsize=(6.0, 0.35 * len(items) + 1.2), layout="constrained")
    ax = fig.add_subplot()
    counts = np.array([c for _, c in items], dtype=float)
    ax.barh(np.arange(len(items)), counts, color="#2166ac")
    for y, c in enumerate(counts):
        ax.annotate(f" {int(c):,}", (c, y), va="center", fontsize=8)
    ax.set_yticks(range(len(items)), [p for p, _ in items])
    ax.set_ylim(len(items) - 0.5, -0.5)
    ax.set_xlim(0, counts.max() * 1.25 if counts.size and counts.max() > 0 else 1)
    ax.set(xlabel="queries (rows sent to the black box)", title="queries by phase")
    return fig


def _bits(value: float | None, exact: float) -> float:
    """-log2 of an error, with exact zeros drawn at ``exact``; None/NaN as 0."""
    if value is None or math.isnan(value):
        return 0.0
    return exact if value <= EXACT_LOG2 else -value


def verification_figure(ver: dict[str, Any]) -> Figure:
    """Precision in bits (-log2 of the error): functional error per input distribution, weight error per layer."""
    dists = ver["per_distribution"]
    layers = ver["per_layer_error_log2"]
    logs = [d["epsilon_log2"] for d in dists.values()] + list(layers)
    finite = [-v for v in logs if v is not None and v > EXACT_LOG2]
    exact = (max(finite) if finite else 50.0) + 8.0  # draw exact zeros above the best finite bar
    fig = Figure(figsize=(10.0, 2.8), layout="constrained")
    axes = fig.subplots(1, 2, width_ratios=[max(len(dists), 1), max(len(layers), 1)])
    panels = (
        (
            axes[0],
            list(dists),
            [d["epsilon_log2"] for d in dists.values()],
            "max |f - f'| on samples",
        ),
        (axes[1], [f"layer {i}" for i in range(len(layers))], layers, "max weight error, aligned"),
    )
    for ax, names, values, title in panels:
        bits = [_bits(v, exact) for v in values]
        colors = ["#1b9e77" if v is not None and v <= EXACT_LOG2 else "#2166ac" for v in values]
        ax.bar(range(len(names)), bits, color=colors)
        for x, (b, v) in enumerate(zip(bits, values, strict=True)):
            ax.annotate(fmt_log2(v), (x, b), ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(names)), names, fontsize=8)
        # An error above 1 has negative bits: let its bar hang below the axis.
        ax.set(ylabel="bits: -log2 error", title=title, ylim=(min(0.0, *bits) - 2.0, exact * 1.15))
        ax.axhline(0.0, color="black", lw=0.5)
    threshold = ver.get("delta_threshold_log2")
    if threshold is not None:
        axes[0].axhline(-threshold, color="#b2182b", lw=1, ls="--")
        axes[0].annotate(
            "delta threshold", (0, -threshold), fontsize=7, color="#b2182b", va="bottom"
        )
    return fig


def training_figure(training: dict[str, Any], instance: int, label: str) -> Figure:
    """One kept instance's training loss against step."""
    curve = training["loss_curve"]
    losses = np.asarray(curve["loss"], dtype=np.float64)[:, [instance]]
    ax = plots.plot_loss_curves(curve["step"], losses, [label])
    fig = ax.get_figure()
    if not isinstance(fig, Figure):
        raise TypeError("plot_loss_curves drew on no figure")
    return fig


# ---------------------------------------------------------------------- HTML
CSS = """
body { font: 15px/1.5 system-ui, sans-serif; color: #222; max-width: 1200px; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; margin-top: 2em; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 13px; }
img { max-width: 100%; display: block; margin: 0.5em 0; }
.summary { font-size: 14px; background: #eef4fa; }
.ok { color: #1b7a3d; font-weight: bold; } .fail { color: #b2182b; font-weight: bold; }
table { border-collapse: collapse; margin: 0.5em 0; } td, th { border: 1px solid #ddd; padding: 0.25em 0.7em; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
.caption { color: #555; font-size: 14px; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _img(fig: Figure, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="{figure_data_uri(fig)}">'


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _importance_text(toy: ToyConfig) -> str:
    if isinstance(toy.importance, float):
        return f"importance {toy.importance:g}^i for feature i (feature 0 matters most)"
    return "importance given per feature"


def _setup(inputs: ReportInputs, sparsity: float) -> str:
    toy, tr = inputs.toy, inputs.training
    kept = tr["kept_restart"][inputs.instance]
    losses = tr["restart_final_loss"][inputs.instance]
    steps_s = tr.get("steps_per_second")
    # The density curriculum changes what the model reaches, so the setup names it.
    curriculum = (
        f", starting at 1 - S = {toy.anneal_from:g} and moving to the target sparsity over the first "
        f"{toy.anneal_steps:,} steps"
        if toy.anneal_from is not None
        else ""
    )
    speed = f" at {steps_s:.0f} steps/s" if steps_s else ""
    return (
        f"<p>The <b>toy model</b> (Elhage et al. 2022, computation in superposition) takes {toy.n_features} "
        f"sparse features x (each is 0 with probability S = {sparsity:g}, else uniform on [-1, 1]) and "
        f"must output |x| through {toy.n_hidden} hidden neurons: h = ReLU(W1 x), y' = ReLU(W2 h + b). "
        f"It is trained to minimise the importance-weighted squared error, with {_importance_text(toy)}. "
        f"With fewer neurons than the 2 x {toy.n_features} a clean ReLU(x) + ReLU(-x) pair per feature "
        "would need, the model must choose: drop features, or share neurons between them "
        "(superposition), which sparse features allow.</p>"
        f"<p>{toy.restarts} copies were trained at once from different random starts, {toy.steps:,} steps "
        f"of AdamW each (lr {toy.lr:g}, batch {toy.batch}){speed}{curriculum}; the copy with the lowest loss "
        f"(restart {kept}, loss {min(losses):.4g}; the others: "
        f"{', '.join(f'{v:.4g}' for i, v in enumerate(losses) if i != kept) or 'none'}) is the truth below.</p>"
        "<p>That one network was then hidden behind an <b>oracle</b>: a function that answers a batch of "
        "inputs with the network's outputs and counts every input it answers. The <b>attack</b> "
        "(Carlini, Jagielski and Mironov, CRYPTO 2020) sees nothing else. Along a line through input "
        "space each output is piecewise linear, and it bends exactly where some neuron switches on or "
        "off; from those bends (critical points) the attack recovers each neuron's weights up to "
        "a positive scale, then the signs and the output layer. A ReLU network computes the same "
        "function with its neurons permuted or each rescaled by a positive factor, so to compare "
        "the reconstruction with the truth it is first <b>aligned</b>: matched neuron by neuron and "
        "brought to the truth's scale.</p>"
    )


def build_report(inputs: ReportInputs, run_dir: Path | None = None) -> str:
    """The report as one self-contained HTML page (figures inlined, nothing fetched).

    ``run_dir`` (the run's folder) names the run in the page title.
    """
    truth, ex, ver = inputs.truth, inputs.extraction, inputs.verification
    alignment = align(inputs.recovered, truth)
    aligned = alignment.aligned
    rec = recovery(alignment)
    importance = inputs.toy.importance_vector()
    sparsity = float(1.0 - inputs.toy.probability()[inputs.instance].mean())
    tw1, tw2, tb = _layers(truth)
    m = tw1.shape[0]
    shown, dropped = drop_negligible_extras(aligned, m)
    truth_summary = analysis.summarize(tw1, tw2, tb)
    recon_summary = analysis.summarize(*_layers(shown))
    order = [int(i) for i in analysis.neuron_order(tw1, importance)]
    diffs = weight_differences(truth, aligned)
    per_neuron = neuron_errors(diffs)

    ok = bool(ex.get("success"))
    verdict = f'<p class="{"ok" if ok else "fail"}">The attack\'s own check: {_e(ex.get("message", ""))}</p>'
    figs = model_figures(truth, shown, importance, order)
    worst = np.argsort(-per_neuron, kind="stable")[: min(5, m)]
    parts = [
        f"<h1>glassbox: a {truth.dims[0]}-feature toy model, reconstructed from queries alone</h1>",
        verdict,
        "<pre class='summary'>" + _e("\n".join(summary_lines(inputs, rec))) + "</pre>",
        "<h2>What this shows</h2><ul>"
        + "".join(
            f"<li>{_e(s)}</li>" for s in reading(truth_summary, recon_summary, rec, inputs, dropped)
        )
        + "</ul>",
        "<h2>The setup</h2>",
        _setup(inputs, sparsity),
        "<p>The exact configuration (saved beside this file as <code>config.json</code>; "
        "<code>glassbox demo --config config.json</code> repeats the run):</p>",
        f"<pre>{_e(dumps_json(inputs.config))}</pre>",
        "<h2>The model: truth and reconstruction, side by side</h2>",
        "<p class='caption'>Every neuron is drawn at the paper's scale (largest |W1| weight = 1) and "
        "both sides list the truth's neurons in the same order (by the importance of the feature a "
        "neuron reads most), so a perfect reconstruction looks identical. Neuron labels are the "
        "truth's indices.</p>",
        "<h3>W directly</h3>",
        _img(figs["weights"], "W1 and W2 heatmaps, truth and reconstruction"),
        "<p class='caption'>W1: what each neuron reads from each feature; W2<sup>T</sup>: what it "
        "writes to each output. Blue positive, red negative. A monosemantic neuron has one "
        "coloured cell in its W1 row.</p>",
        "<h3>Neuron stack plot</h3>",
        _img(figs["stack"], "neuron stack plots, truth and reconstruction"),
        "<p class='caption'>One column per neuron, one block per feature it reads, block height "
        "|w|, colour by feature (dark: important). Negative weights hang below the axis. "
        "Shaded columns are polysemantic.</p>",
        "<h3>Graph view</h3>",
        _img(figs["graph"], "graph view, truth and reconstruction"),
        "<p class='caption'>Features (left) to neurons (middle) to outputs (right); edge colour is "
        "the sign, width the size; output nodes are shaded by their bias.</p>",
        "<h3>Differences</h3>",
        _img(difference_figure(diffs, order), "differences between reconstruction and truth"),
        "<p class='caption'>log2 of |reconstruction - truth| for every weight, each neuron "
        "normalised to a unit incoming row as in the verification figures; white cells are exactly "
        "equal. Largest difference over all weights: "
        f"{_e(fmt_log2(log2_error(float(per_neuron.max(initial=0.0)))))}; "
        f"output bias: {_e(fmt_log2(log2_error(float(np.abs(diffs['b']).max(initial=0.0)))))}.</p>",
        _table(
            ["truth neuron", "max |Δ| (log2)", "role"],
            [
                (
                    int(j),
                    fmt_log2(log2_error(float(per_neuron[j]))),
                    _role(j, truth_summary, tw1, tw2, rec),
                )
                for j in worst
            ],
        ),
    ]
    parts += _line_section(inputs)
    parts += _queries_section(ex)
    parts += _verification_section(ver)
    parts += _missing_section(rec, ver, ex)
    parts += [
        "<h2>Training</h2>",
        f"<p>{_e(_training_text(inputs))}</p>",
        _img(
            training_figure(inputs.training, inputs.instance, f"1-S={1 - sparsity:.3g}"),
            "training loss",
        ),
    ]
    title = "glassbox report"
    return (
        f"<!doctype html>\n<html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{CSS}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )


def _training_text(inputs: ReportInputs) -> str:
    tr, toy = inputs.training, inputs.toy
    count = toy.n_configs * toy.restarts
    text = f"The kept instance's training loss, as windowed means over {toy.steps:,} steps."
    if "train_seconds" in tr:
        text += (
            f" Training all {count} instance(s) took {tr['train_seconds']:.1f} s "
            f"({tr['steps_per_second']:.0f} steps/s) on {tr.get('device', 'cpu')}."
        )
    return text


def _role(j: int, summary: dict[str, Any], w1: Array, w2: Array, rec: Recovery) -> str:
    census = analysis.neuron_census(w1, w2)
    role = census[j].role
    if j in rec.missing:
        return f"{role}, not recovered"
    if j in rec.dead or j in rec.invisible:
        return f"{role}, not visible to the attack"
    return role


def _line_section(inputs: ReportInputs) -> list[str]:
    head = "<h2>How the attack sees the model: the line plot</h2>"
    line = inputs.line
    if line is None:
        return [head, "<p>The attack kept no line for this run.</p>"]
    active = int(np.count_nonzero(np.ptp(line.samples_f, axis=0) > 0))
    shown = max(1, min(active, MAX_LINE_CURVES))
    hidden = sum(k == HIDDEN for k in line.kind)
    return [
        head,
        f"<p>The attack's first line, x(t) = x0 + t d for t in [{line.t_lo:g}, {line.t_hi:g}]. "
        "Along it every output is piecewise linear: it bends where a neuron switches on or off. "
        f"{line.samples_t.size:,} queries on this line placed {line.t.size} kinks: {hidden} where a "
        "hidden neuron switches (every output that neuron feeds bends at the same t) and "
        f"{line.t.size - hidden} where an output's own ReLU switches it off (one output bends, "
        f"to or from zero). {active} of the {line.samples_f.shape[1]} outputs vary along the line; "
        f"the plot draws the {shown} that vary most.</p>",
        _img(line_figure(line, top_k=shown), "f along a line with its kinks"),
        "<p class='caption'>Dashed lines: hidden-neuron kinks; crosses: output-ReLU kinks. Each "
        "hidden kink is a point on one neuron's hyperplane; the attack reads that neuron's weights "
        "off the change of slope there (up to a positive scale).</p>",
    ]


def _queries_section(ex: dict[str, Any]) -> list[str]:
    by_phase = {str(k): int(v) for k, v in ex["queries_by_phase"].items()}
    total = int(ex["queries"])
    rows = [(p, f"{c:,}", f"{c / total:.1%}" if total else "-") for p, c in by_phase.items()]
    rows.append(("total", f"{total:,}", "100%"))
    mem = ex.get("peak_rss_mb")
    return [
        "<h2>Where the queries went</h2>",
        f"<p>The attack asked the black box {total:,} queries (2^{log2_error(total):.1f}) in "
        f"{ex['seconds']:.2f} s"
        + (f", peak memory {mem:.0f} MB" if mem is not None else "")
        + ".</p>",
        _table(["phase", "queries", "share"], rows),
        _img(queries_figure(by_phase), "queries by phase"),
    ]


def _verification_section(ver: dict[str, Any]) -> list[str]:
    rows = [
        (
            name,
            f"{d['n']:,}",
            fmt_log2(d["epsilon_log2"]),
            f"{d['delta']:g}",
            f"{d['same_pattern_fraction']:.4f}",
        )
        for name, d in ver["per_distribution"].items()
    ]
    return [
        "<h2>Verification</h2>",
        "<p>The truth, which the attack never saw, judges the reconstruction: the largest weight "
        "difference after alignment (each truth neuron normalised to a unit incoming row), and the "
        "largest output difference max |f(x) - f'(x)| on inputs drawn from several distributions, "
        "including points right on the neurons' critical hyperplanes where a wrong neuron shows "
        f"most. delta is the fraction of inputs whose error exceeds {fmt_log2(ver['delta_threshold_log2'])}; "
        "'same pattern' the fraction where every neuron is on or off in both nets.</p>",
        _table(["inputs", "samples", "max |f - f'|", "delta", "same pattern"], rows),
        f"<p>Max weight error {_e(fmt_log2(ver['max_weight_error_log2']))} (per layer: "
        f"{_e(', '.join(fmt_log2(v) for v in ver['per_layer_error_log2']))}); worst case over "
        f"the box [-1, 1]^d by interval arithmetic: {_e(fmt_log2(ver.get('worst_case_bound_log2')))}.</p>",
        _img(verification_figure(ver), "verification figures"),
    ]


def _missing_section(rec: Recovery, ver: dict[str, Any], ex: dict[str, Any]) -> list[str]:
    notes = [
        (kind, n["index"], n["reason"])
        for kind, key in (
            ("dead (truth)", "dead"),
            ("invisible (truth)", "invisible"),
            ("not recovered (truth)", "unmatched_truth"),
            ("extra (reconstruction)", "unmatched_recovered"),
        )
        for n in ver.get(key, [])
    ]
    head = [
        "<h2>Neurons not recovered, and why</h2>",
        f"<p>{len(rec.recovered)} of {len(rec.visible)} visible neurons recovered; "
        f"{len(rec.dead)} dead and {len(rec.invisible)} invisible neuron(s) in the truth "
        "(a dead neuron never fires and an invisible one writes nothing, so no query can "
        "reveal either; they change nothing the network computes).</p>",
    ]
    if not notes:
        return [*head, "<p>Every neuron of the truth was recovered; none is left over.</p>"]
    return [*head, _table(["what", "neuron", "why"], notes)]
