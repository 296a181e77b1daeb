"""The HTML report: a toy model and its reconstruction from queries, side by side, in one file.

:func:`build_report` turns plain data (:class:`ReportInputs`: the true and recovered nets,
the run's config, training, extraction and verification figures, the line plot data)
into one self-contained HTML page. Every figure is a matplotlib figure of the run's own
arrays, inlined as a base64 PNG, and every number and sentence about the run is computed
here from those inputs. The report covers the toy model's shape, ``ReLU(W2 ReLU(W1 x) + b)``
with one hidden layer.

This module is the page builder. Its parts live beside it, one concept each:
:mod:`glassbox.report.numbers` (the inputs and the numbers), :mod:`glassbox.report.reading`
(the sentences), :mod:`glassbox.report.sections` (the sections that stand alone),
:mod:`glassbox.report.html` (HTML building blocks) and :mod:`glassbox.report.figures`.
Every name importable from here before that split still is. The report of a plain
``glassbox extract`` run, for nets of any depth, is :mod:`glassbox.report.extraction`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from glassbox.report.figures import (
    EXACT_LOG2,
    ROUNDOFF_LOG2,
    abs_figure,
    difference_figure,
    graph_features,
    graph_figure,
    stack_figure,
    weights_figure,
)
from glassbox.report.html import CSS, DPI, esc, figure_data_uri, img, section, table, toc
from glassbox.report.numbers import (
    Recovery,
    ReportInputs,
    drop_negligible_extras,
    net_layers,
    neuron_errors,
    recovery,
    summary,
    summary_lines,
    weight_differences,
)
from glassbox.report.reading import (
    FEATURE_WORDS,
    abs_caption,
    dedicated_features,
    dedicated_sentence,
    graph_caption,
    index_list,
    line_ranges,
    neuron_role,
    reading,
    training_text,
)
from glassbox.report.sections import (
    MAX_LINE_CURVES,
    RUN_FILES,
    files_section,
    headline,
    line_section,
    missing_section,
    queries_section,
    setup_text,
    training_figure,
    verification_section,
)
from glassbox.toy import analysis, geometry
from glassbox.toy.summary import summarize
from glassbox.verify.compare import align, fmt_log2, log2_error

# Every name importable from glassbox.report.demo_page before it was split stays importable here.
__all__ = [
    "CSS",
    "DPI",
    "EXACT_LOG2",
    "FEATURE_WORDS",
    "MAX_LINE_CURVES",
    "RUN_FILES",
    "Recovery",
    "ReportInputs",
    "build_report",
    "dedicated_features",
    "dedicated_sentence",
    "difference_figure",
    "drop_negligible_extras",
    "figure_data_uri",
    "fmt_log2",
    "line_ranges",
    "log2_error",
    "neuron_errors",
    "reading",
    "recovery",
    "summary",
    "summary_lines",
    "training_figure",
    "weight_differences",
]
# The private names of before the split, for callers (and tests) that used them.
_index_list = index_list
_graph_caption = graph_caption
_abs_caption = abs_caption


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
    tw1, tw2, tb = net_layers(truth)
    m = tw1.shape[0]
    shown, dropped = drop_negligible_extras(aligned, m)
    truth_summary = summarize(tw1, tw2, tb)
    recon_summary = summarize(*net_layers(shown))
    features = analysis.feature_computation(tw1, tw2, tb)
    order = [int(i) for i in geometry.neuron_order(tw1, importance)]
    diffs = weight_differences(truth, aligned)
    per_neuron = neuron_errors(diffs)
    aw1, aw2, ab = net_layers(shown)
    sides = (
        ("truth", tw1, tw2, tb, order),
        ("reconstruction", aw1, aw2, ab, [*order, *range(m, aw1.shape[0])]),
    )
    drawn = graph_features(features)
    name = run_dir.name if run_dir is not None else "glassbox run"
    n = truth.dims[0]

    contents = [
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
        f"<h1>{esc(name)}: a {n}-feature toy model, reconstructed from queries alone</h1>",
        *headline(inputs, rec),
        toc(contents),
        section("reading", "What this shows"),
        "<ul>"
        + "".join(
            f"<li>{esc(s)}</li>"
            for s in reading(
                truth_summary, recon_summary, rec, inputs, dropped, dedicated_features(features)
            )
        )
        + "</ul>",
        section("setup", "The setup"),
        setup_text(inputs, sparsity),
        section("model", "The model: truth and reconstruction, side by side"),
        "<p class='caption'>Every neuron is drawn at the paper's scale (largest |W1| weight = 1) and "
        "both sides list the truth's neurons in the same order (by the importance of the feature a "
        "neuron reads most), so a perfect reconstruction looks identical. Neuron labels are the "
        "truth's indices.</p>",
        "<h3>W directly</h3>",
        img(weights_figure(sides, importance), "W1 and W2 heatmaps, truth and reconstruction"),
        "<p class='caption'>Top row the truth, bottom row the reconstruction. W1: what each neuron "
        "reads from each input feature; W2<sup>T</sup>: what it writes to each output. Blue "
        "positive, red negative. A monosemantic neuron has one coloured cell in its W1 row.</p>",
        "<h3>Neuron stack plot</h3>",
        img(stack_figure(sides, importance), "neuron stack plots, truth and reconstruction"),
        "<p class='caption'>One column per neuron, one block per feature it reads, block height "
        "|w|; negative weights hang below the axis. As in the paper, each feature is coloured by "
        "its superposition, the sum over other features j of (Ŵ<sub>i</sub>·W<sub>j</sub>)²: "
        "yellow for a feature alone in its neurons, purple for one that shares them. Shaded "
        "columns are polysemantic neurons.</p>",
        "<h3>Graph view</h3>",
        img(graph_figure(sides, drawn), "graph view, truth and reconstruction"),
        f"<p class='caption'>{esc(graph_caption(drawn, n, features))}</p>",
        section("abs", "How well the model computes abs(x)"),
        img(
            abs_figure(truth, inputs.recovered, list(range(n))),
            "output against input for each feature, truth and reconstruction",
        ),
        f"<p class='caption'>{esc(abs_caption(features))}</p>",
        section("differences", "Differences"),
        img(difference_figure(diffs, order), "differences between reconstruction and truth"),
        "<p class='caption'>log2 of |reconstruction - truth| for every weight, each neuron "
        "normalised to a unit incoming row as in the verification figures; white cells are exactly "
        f"equal. The colours are fixed: float64 round-off ({ROUNDOFF_LOG2:.0f} in log2, marked on "
        "the colour bar) is green, as exact as doubles allow; red would be a real error. Largest "
        "difference over all weights: "
        f"{esc(fmt_log2(log2_error(float(per_neuron.max(initial=0.0)))))}; "
        f"output bias: {esc(fmt_log2(log2_error(float(np.abs(diffs['b']).max(initial=0.0)))))}.</p>",
        f"<p>All {m} neurons of the truth, largest difference first:</p>",
        table(
            ["truth neuron", "max |Δ| (log2)", "role"],
            [
                (
                    int(j),
                    fmt_log2(log2_error(float(per_neuron[j]))),
                    neuron_role(j, truth_summary, tw1, tw2, rec),
                )
                for j in np.argsort(-per_neuron, kind="stable")
            ],
        ),
    ]
    parts += line_section(inputs)
    parts += queries_section(ex)
    parts += verification_section(ver)
    parts += missing_section(rec, ver, ex)
    parts += [
        section("training", "Training"),
        f"<p>{esc(training_text(inputs))}</p>",
        img(
            training_figure(inputs.training, inputs.instance, f"1-S={1 - sparsity:.3g}"),
            "training loss",
        ),
    ]
    parts += files_section(inputs)
    return (
        f"<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{esc(name)}: glassbox report</title>"
        f"<style>{CSS}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )
