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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from numpy.typing import NDArray

from glassbox.errors import GlassboxError
from glassbox.extract.kinks import HIDDEN, LineKinks
from glassbox.extract.verify import Alignment, align, fmt_log2, log2_error
from glassbox.io import dumps_json
from glassbox.mlp import ReLUNet
from glassbox.report_figures import (
    EXACT_LOG2,
    ROUNDOFF_LOG2,
    abs_figure,
    difference_figure,
    graph_features,
    graph_figure,
    layer_name,
    line_plot,
    queries_figure,
    stack_figure,
    verification_figure,
    weights_figure,
)
from glassbox.toy import analysis, plots
from glassbox.toy.config import ToyConfig

Array = NDArray[np.float64]

DPI = 100
# More curves than this make the line plot unreadable.
MAX_LINE_CURVES = 10
__all__ = ["EXACT_LOG2", "ReportInputs", "build_report", "difference_figure", "summary"]


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
        f"functional error:       max |f - f_hat| = {fmt_log2(ver['epsilon_log2'])} "
        f"on {_sample_count(ver):,} inputs (delta = {ver['delta']:g})",
        f"neurons recovered:      {len(rec.recovered)} / {len(rec.visible)} visible",
    ]


def summary(inputs: ReportInputs) -> list[str]:
    """The five-line summary of a run (aligns the reconstruction to count recovered neurons)."""
    return summary_lines(inputs, recovery(align(inputs.recovered, inputs.truth)))


def _sample_count(ver: dict[str, Any]) -> int:
    return sum(int(d["n"]) for d in ver.get("per_distribution", {}).values())


# -------------------------------------------------------------------- reading
def dedicated_features(features: Sequence[analysis.Feature]) -> list[int]:
    """The features computed by neurons of their own: a dedicated pair, or several dedicated neurons."""
    return [f.index for f in features if f.how in ("pair", "redundant")]


def _index_list(indices: Sequence[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0 to 2 and 5"``: runs of consecutive indices collapsed."""
    runs: list[list[int]] = []
    for i in indices:
        if runs and i == runs[-1][-1] + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    parts = [
        str(r[0]) if len(r) == 1 else f"{r[0]} and {r[1]}" if len(r) == 2 else f"{r[0]} to {r[-1]}"
        for r in runs
    ]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def dedicated_sentence(dedicated: Sequence[int], n: int, computed: int) -> str:
    """Which features have neurons of their own, and whether they are the most important ones."""
    k = len(dedicated)
    if computed == 0:
        return "No feature is computed yet: this model is under-trained (raise the steps)."
    if k == 0:
        return "No feature has neurons of its own: even the most important one shares its neurons."
    if k == n:
        return "Every feature is computed by dedicated neurons: no superposition at this sparsity."
    which = (
        f"Feature {dedicated[0]} has" if k == 1 else f"{k} features ({_index_list(dedicated)}) have"
    )
    head = f"{which} neurons of its own" if k == 1 else f"{which} neurons of their own"
    if list(dedicated) == list(range(k)):
        most = "the most important one" if k == 1 else f"the {k} most important"
        return (
            f"{head}, {most}; from feature {k} on, features share neurons or are dropped, as the "
            "paper finds: the most important features stay monosemantic longest."
        )
    first_gap = next(i for i in range(n) if i not in dedicated)
    return (
        f"{head}; the other {n - k} share neurons or are dropped. Importance does not order this "
        f"strictly: feature {first_gap} has none of its own, while less important feature "
        f"{max(dedicated)} has."
    )


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
    dedicated: Sequence[int],
) -> list[str]:
    """Sentences on what the figures show, every number computed from the run.

    ``dedicated`` lists the features computed by neurons of their own (``pair`` or
    ``redundant`` in :func:`glassbox.toy.analysis.feature_computation`), the same
    classification the figures' captions and the feature table use.
    """
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
    out.append(dedicated_sentence(dedicated, n, truth["features_computed"]))
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
nav.toc { background: #f6f6f6; padding: 0.4em 1em; display: inline-block; } nav.toc ol { margin: 0.3em 0; }
details summary { cursor: pointer; }
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


#: Files of a demo run the report links to (relative links: they work beside report.html).
RUN_FILES = (
    ("config.json", "the exact configuration"),
    ("truth.safetensors", "the attacked network"),
    ("recovered.safetensors", "the reconstruction"),
    ("extraction.json", "the attack's figures"),
    ("verification.json", "the verification figures"),
    ("line.json", "the line plot's data"),
    ("toy/", "the toy-model run"),
)


def _section(key: str, title: str, level: int = 2) -> str:
    return f"<h{level} id='{key}'>{_e(title)}</h{level}>"


def _toc(entries: Sequence[tuple[str, str]]) -> str:
    items = "".join(f"<li><a href='#{k}'>{_e(t)}</a></li>" for k, t in entries)
    return f"<nav class='toc'><b>Contents</b><ol>{items}</ol></nav>"


def _headline(inputs: ReportInputs, rec: Recovery) -> list[str]:
    """The summary block, then what its terms mean, where they first appear."""
    ver, ex = inputs.verification, inputs.extraction
    ok = bool(ex.get("success"))
    check = (
        "passed: on fresh queries of its own, the reconstruction answers as the black box does"
        if ok
        else "failed (see where the queries went)"
    )
    return [
        "<pre class='summary'>" + _e("\n".join(summary_lines(inputs, rec))) + "</pre>",
        "<p class='caption'>f is the true network and f_hat the reconstruction. The headline "
        "figure is the <b>functional error</b>: the largest |f(x) - f_hat(x)| over "
        f"{_sample_count(ver):,} inputs sampled after the attack (see Verification). The "
        f"<b>tolerance</b> is 2^-20 × max(1, max |f|) = {_e(fmt_log2(ver['delta_threshold_log2']))}; "
        "<b>delta</b> is the fraction of those inputs whose error exceeds it (0: none does). "
        "The weight error is measured after alignment, each neuron scaled to a unit row. "
        f"The attack's own check, made without the truth, <span class='{'ok' if ok else 'fail'}'>"
        f"{_e(check)}</span>.</p>",
    ]


def build_report(inputs: ReportInputs, run_dir: Path | None = None) -> str:
    """The report as one self-contained HTML page (figures inlined, nothing fetched).

    ``run_dir`` (the run's folder) names the run in the page title and heading.
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
    features = analysis.feature_computation(tw1, tw2, tb)
    order = [int(i) for i in analysis.neuron_order(tw1, importance)]
    diffs = weight_differences(truth, aligned)
    per_neuron = neuron_errors(diffs)
    aw1, aw2, ab = _layers(shown)
    sides = (
        ("truth", tw1, tw2, tb, order),
        ("reconstruction", aw1, aw2, ab, [*order, *range(m, aw1.shape[0])]),
    )
    drawn = graph_features(features)
    name = run_dir.name if run_dir is not None else "glassbox run"
    n = truth.dims[0]

    toc = [
        ("reading", "What this shows"),
        ("setup", "The setup"),
        ("model", "The model: truth and reconstruction"),
        ("abs", "How well it computes abs(x)"),
        ("differences", "Differences"),
        ("line", "The line plot"),
        ("queries", "Where the queries went"),
        ("verification", "Verification"),
        ("missing", "Neurons not recovered"),
        ("training", "Training"),
        ("files", "Files and configuration"),
    ]
    parts = [
        f"<h1>{_e(name)}: a {n}-feature toy model, reconstructed from queries alone</h1>",
        *_headline(inputs, rec),
        _toc(toc),
        _section("reading", "What this shows"),
        "<ul>"
        + "".join(
            f"<li>{_e(s)}</li>"
            for s in reading(
                truth_summary, recon_summary, rec, inputs, dropped, dedicated_features(features)
            )
        )
        + "</ul>",
        _section("setup", "The setup"),
        _setup(inputs, sparsity),
        _section("model", "The model: truth and reconstruction, side by side"),
        "<p class='caption'>Every neuron is drawn at the paper's scale (largest |W1| weight = 1) and "
        "both sides list the truth's neurons in the same order (by the importance of the feature a "
        "neuron reads most), so a perfect reconstruction looks identical. Neuron labels are the "
        "truth's indices.</p>",
        "<h3>W directly</h3>",
        _img(weights_figure(sides, importance), "W1 and W2 heatmaps, truth and reconstruction"),
        "<p class='caption'>Top row the truth, bottom row the reconstruction. W1: what each neuron "
        "reads from each input feature; W2<sup>T</sup>: what it writes to each output. Blue "
        "positive, red negative. A monosemantic neuron has one coloured cell in its W1 row.</p>",
        "<h3>Neuron stack plot</h3>",
        _img(stack_figure(sides, importance), "neuron stack plots, truth and reconstruction"),
        "<p class='caption'>One column per neuron, one block per feature it reads, block height "
        "|w|; negative weights hang below the axis. As in the paper, each feature is coloured by "
        "its superposition, the sum over other features j of (Ŵ<sub>i</sub>·W<sub>j</sub>)²: "
        "yellow for a feature alone in its neurons, purple for one that shares them. Shaded "
        "columns are polysemantic neurons.</p>",
        "<h3>Graph view</h3>",
        _img(graph_figure(sides, drawn), "graph view, truth and reconstruction"),
        f"<p class='caption'>{_e(_graph_caption(drawn, n, features))}</p>",
        _section("abs", "How well the model computes abs(x)"),
        _img(
            abs_figure(truth, inputs.recovered, list(range(n))),
            "output against input for each feature, truth and reconstruction",
        ),
        f"<p class='caption'>{_e(_abs_caption(features))}</p>",
        _section("differences", "Differences"),
        _img(difference_figure(diffs, order), "differences between reconstruction and truth"),
        "<p class='caption'>log2 of |reconstruction - truth| for every weight, each neuron "
        "normalised to a unit incoming row as in the verification figures; white cells are exactly "
        f"equal. The colours are fixed: float64 round-off ({ROUNDOFF_LOG2:.0f} in log2, marked on "
        "the colour bar) is green, as exact as doubles allow; red would be a real error. Largest "
        "difference over all weights: "
        f"{_e(fmt_log2(log2_error(float(per_neuron.max(initial=0.0)))))}; "
        f"output bias: {_e(fmt_log2(log2_error(float(np.abs(diffs['b']).max(initial=0.0)))))}.</p>",
        f"<p>All {m} neurons of the truth, largest difference first:</p>",
        _table(
            ["truth neuron", "max |Δ| (log2)", "role"],
            [
                (
                    int(j),
                    fmt_log2(log2_error(float(per_neuron[j]))),
                    _role(j, truth_summary, tw1, tw2, rec),
                )
                for j in np.argsort(-per_neuron, kind="stable")
            ],
        ),
    ]
    parts += _line_section(inputs)
    parts += _queries_section(ex)
    parts += _verification_section(ver)
    parts += _missing_section(rec, ver, ex)
    parts += [
        _section("training", "Training"),
        f"<p>{_e(_training_text(inputs))}</p>",
        _img(
            training_figure(inputs.training, inputs.instance, f"1-S={1 - sparsity:.3g}"),
            "training loss",
        ),
    ]
    parts += _files_section(inputs)
    return (
        f"<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(name)}: glassbox report</title>"
        f"<style>{CSS}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )


def _graph_caption(drawn: Sequence[int], n: int, features: Sequence[analysis.Feature]) -> str:
    computed = {f.index for f in features if f.how in ("pair", "redundant", "superposition")}
    if len(drawn) == n:
        which = "all features"
    elif set(drawn) <= computed:
        which = f"the {len(drawn)} of {n} features the truth computes (all {n} make a hairball)"
    else:
        which = f"the {len(drawn)} most important of {n} features (the truth computes none)"
    return (
        f"Features x (left) to neurons h (middle) to outputs y' (right), for {which}, and the "
        "neurons that touch them; edge colour is the sign, width the size; edges under "
        f"{analysis.READ_THRESHOLD:g} of the largest weight are left out."
    )


def _abs_caption(features: Sequence[analysis.Feature]) -> str:
    counts = {c: sum(f.how == c for f in features) for c in analysis.FEATURE_CLASSES}
    parts = [f"{v} {k.replace('_', ' ')}" for k, v in counts.items() if v]
    return (
        "For each feature i, the output y'_i on inputs where only x_i is non-zero, against x_i: "
        "grey the target |x|, blue the truth, dashed orange the reconstruction (on top of the "
        "truth when the reconstruction is faithful). The truth's features by how it computes "
        "them: " + ", ".join(parts) + "."
    )


def _files_section(inputs: ReportInputs) -> list[str]:
    links = "".join(
        f"<li><a href='{_e(f)}'><code>{_e(f)}</code></a>: {_e(what)}</li>" for f, what in RUN_FILES
    )
    return [
        _section("files", "Files and configuration"),
        f"<p>This run's files, beside this report:</p><ul>{links}</ul>",
        "<details><summary>The exact configuration (<code>glassbox demo --config config.json"
        "</code> repeats the run)</summary>",
        f"<pre>{_e(dumps_json(inputs.config))}</pre></details>",
    ]


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
    head = _section("line", "How the attack sees the model: the line plot")
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
        f"<p>{_e(_line_range_text(line))}</p>",
        _img(line_plot(line, top_k=shown), "f along a line with its kinks"),
        "<p class='caption'>Dashed lines: hidden-neuron kinks; crosses: output-ReLU kinks. Each "
        "hidden kink is a point on one neuron's hyperplane; the attack reads that neuron's weights "
        "off the change of slope there (up to a positive scale).</p>",
    ]


def line_ranges(line: LineKinks) -> tuple[float, float, float]:
    """The largest |input coordinate| along the line's span, and the least and greatest output seen."""
    ends = np.stack([line.x0 + line.t_lo * line.d, line.x0 + line.t_hi * line.d])
    f = np.concatenate([line.samples_f.ravel(), line.value.ravel()])
    return float(np.abs(ends).max()), float(f.min()), float(f.max())


def _line_range_text(line: LineKinks) -> str:
    x_max, _, f_hi = line_ranges(line)
    return (
        f"The line runs far outside the toy model's inputs in [-1, 1] (here up to |x_i| = "
        f"{x_max:.3g}, with outputs up to {f_hi:.3g}) on purpose: a black box "
        "answers any input, and a line long enough to cross every neuron's hyperplane shows "
        "every neuron's kink, including neurons that switch only for inputs far from the data."
    )


def _queries_section(ex: dict[str, Any]) -> list[str]:
    by_phase = {str(k): int(v) for k, v in ex["queries_by_phase"].items()}
    total = int(ex["queries"])
    rows = [(p, f"{c:,}", f"{c / total:.1%}" if total else "-") for p, c in by_phase.items()]
    rows.append(("total", f"{total:,}", "100%"))
    mem = ex.get("peak_rss_mb")
    ok = bool(ex.get("success"))
    return [
        _section("queries", "Where the queries went"),
        f"<p>The attack asked the black box {total:,} queries (2^{log2_error(total):.1f}) in "
        f"{ex['seconds']:.2f} s"
        + (f", peak memory {mem:.0f} MB" if mem is not None else "")
        + ". The last phase, 'check', is the attack's own test, made without the truth: it "
        "compares the reconstruction with the black box on fresh queries. Its verdict: "
        f"<span class='{'ok' if ok else 'fail'}'>{_e(ex.get('message', ''))}</span></p>",
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
    same_all = ver.get("same_pattern_fraction")
    return [
        _section("verification", "Verification"),
        "<p>The truth, which the attack never saw, judges the reconstruction: the largest weight "
        "difference after alignment (each truth neuron normalised to a unit incoming row), and the "
        "largest output difference max |f(x) - f_hat(x)| on inputs drawn from several "
        "distributions, including points right on the neurons' critical hyperplanes where a wrong "
        "neuron shows most. delta is the fraction of inputs whose error exceeds the tolerance "
        f"{fmt_log2(ver['delta_threshold_log2'])}.</p>",
        "<p><b>Same pattern</b> is the fraction of inputs on which every hidden neuron is on in "
        "both nets or off in both. It falls short of 1 even for an exact reconstruction: on the "
        "hyperplane points a neuron's input is 0 up to round-off, so either side may read it as "
        "on"
        + (
            f"; over the other inputs it is {same_all:.4f}. There a shortfall comes from inputs "
            "within round-off of some neuron's hyperplane (a sparse input with every feature a "
            "neuron reads at 0 puts it exactly on its hyperplane, where the two nets' tiny "
            "differences decide on or off), or from a neuron that really differs."
            if same_all is not None
            else "."
        )
        + "</p>",
        _table(["inputs", "samples", "max |f - f_hat|", "delta", "same pattern"], rows),
        f"<p>Max weight error {_e(fmt_log2(ver['max_weight_error_log2']))} ("
        + _e(
            ", ".join(
                f"{layer_name(i)}: {fmt_log2(v)}" for i, v in enumerate(ver["per_layer_error_log2"])
            )
        )
        + "); worst case over "
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
        _section("missing", "Neurons not recovered, and why"),
        f"<p>{len(rec.recovered)} of {len(rec.visible)} visible neurons recovered; "
        f"{len(rec.dead)} dead and {len(rec.invisible)} invisible neuron(s) in the truth "
        "(a dead neuron never fires and an invisible one writes nothing, so no query can "
        "reveal either; they change nothing the network computes).</p>",
    ]
    if not notes:
        return [*head, "<p>Every neuron of the truth was recovered; none is left over.</p>"]
    return [*head, _table(["what", "neuron", "why"], notes)]
