"""The demo report's sections that stand alone: setup, headline, line plot, queries, verification, missing neurons, files."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure

from glassbox.extract.kinks import HIDDEN
from glassbox.io import dumps_json
from glassbox.report.extraction_data import outputs_varying
from glassbox.report.figures import layer_name, line_plot, queries_figure, verification_figure
from glassbox.report.html import esc, img, section, table
from glassbox.report.numbers import Recovery, ReportInputs, sample_count, summary_lines
from glassbox.report.reading import line_range_text
from glassbox.toy import plots
from glassbox.verify.compare import fmt_log2, log2_error

if TYPE_CHECKING:  # the toy half needs torch; a report of an extraction does not
    from glassbox.toy.config import ToyConfig

# More curves than this make the line plot unreadable.
MAX_LINE_CURVES = 10

#: How the demo's attack reached its net, as written in extraction facts ("boundary").
HTTP = "http"


def describe(facts: dict[str, Any]) -> str:
    """One sentence on the boundary a run used, for the report."""
    if facts.get("boundary") == HTTP:
        return (
            "The attack reached the network only over HTTP: a separate `glassbox serve` "
            f"process on the loopback interface, which counted {facts['service_queries']:,} "
            "queries itself."
        )
    return "The attack and the network shared one Python process (an in-process oracle)."


def training_figure(training: dict[str, Any], instance: int, label: str) -> Figure:
    """One kept instance's training loss against step."""
    curve = training["loss_curve"]
    losses = np.asarray(curve["loss"], dtype=np.float64)[:, [instance]]
    ax = plots.plot_loss_curves(curve["step"], losses, [label])
    fig = ax.get_figure()
    if not isinstance(fig, Figure):
        raise TypeError("plot_loss_curves drew on no figure")
    return fig


def importance_text(toy: ToyConfig) -> str:
    if isinstance(toy.importance, float):
        return f"importance {toy.importance:g}^i for feature i (feature 0 matters most)"
    return "importance given per feature"


def setup_text(inputs: ReportInputs, sparsity: float) -> str:
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
        f"It is trained to minimise the importance-weighted squared error, with {importance_text(toy)}. "
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


def headline(inputs: ReportInputs, rec: Recovery) -> list[str]:
    """The summary block, then what its terms mean, where they first appear."""
    ver, ex = inputs.verification, inputs.extraction
    ok = bool(ex.get("success"))
    check = (
        "passed: on fresh queries of its own, the reconstruction answers as the black box does"
        if ok
        else "failed (see where the queries went)"
    )
    return [
        "<pre class='summary'>" + esc("\n".join(summary_lines(inputs, rec))) + "</pre>",
        "<p class='caption'>f is the true network and f_hat the reconstruction. The headline "
        "figure is the <b>functional error</b>: the largest |f(x) - f_hat(x)| over "
        f"{sample_count(ver):,} inputs sampled after the attack (see Verification). The "
        f"<b>tolerance</b> is 2^-20 × max(1, max |f|) = {esc(fmt_log2(ver['delta_threshold_log2']))}; "
        "<b>delta</b> is the fraction of those inputs whose error exceeds it (0: none does). "
        "The weight error is measured after alignment, each neuron scaled to a unit row. "
        f"The attack's own check, made without the truth, <span class='{'ok' if ok else 'fail'}'>"
        f"{esc(check)}</span>.</p>",
    ]


def files_section(inputs: ReportInputs) -> list[str]:
    links = "".join(
        f"<li><a href='{esc(f)}'><code>{esc(f)}</code></a>: {esc(what)}</li>"
        for f, what in RUN_FILES
    )
    return [
        section("files", "Files and configuration"),
        f"<p>This run's files, beside this report:</p><ul>{links}</ul>",
        "<details><summary>The exact configuration (<code>glassbox demo --config config.json"
        "</code> repeats the run)</summary>",
        f"<pre>{esc(dumps_json(inputs.config))}</pre></details>",
    ]


def line_section(inputs: ReportInputs) -> list[str]:
    head = section("line", "How the attack sees the model: the line plot")
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
        "to or from zero). " + outputs_varying(active, line.samples_f.shape[1], shown) + "</p>",
        f"<p>{esc(line_range_text(line))}</p>",
        img(line_plot(line, top_k=shown), "f along a line with its kinks"),
        "<p class='caption'>Dashed lines: hidden-neuron kinks; crosses: output-ReLU kinks. Each "
        "hidden kink is a point on one neuron's hyperplane; the attack reads that neuron's weights "
        "off the change of slope there (up to a positive scale).</p>",
    ]


def queries_section(ex: dict[str, Any]) -> list[str]:
    by_phase = {str(k): int(v) for k, v in ex["queries_by_phase"].items()}
    total = int(ex["queries"])
    rows = [(p, f"{c:,}", f"{c / total:.1%}" if total else "-") for p, c in by_phase.items()]
    rows.append(("total", f"{total:,}", "100%"))
    mem = ex.get("peak_rss_mb")
    ok = bool(ex.get("success"))
    return [
        section("queries", "Where the queries went"),
        f"<p>The attack asked the black box {total:,} queries (2^{log2_error(total):.1f}) in "
        f"{ex['seconds']:.2f} s"
        + (f", peak memory {mem:.0f} MiB" if mem is not None else "")
        + ". The last phase, 'check', is the attack's own test, made without the truth: it "
        "compares the reconstruction with the black box on fresh queries. Its verdict: "
        f"<span class='{'ok' if ok else 'fail'}'>{esc(ex.get('message', ''))}</span></p>",
        *([f"<p>{esc(describe(ex))}</p>"] if "boundary" in ex else []),
        table(["phase", "queries", "share"], rows),
        img(queries_figure(by_phase), "queries by phase"),
    ]


def verification_section(ver: dict[str, Any]) -> list[str]:
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
        section("verification", "Verification"),
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
        table(["inputs", "samples", "max |f - f_hat|", "delta", "same pattern"], rows),
        f"<p>Max weight error {esc(fmt_log2(ver['max_weight_error_log2']))} ("
        + esc(
            ", ".join(
                f"{layer_name(i)}: {fmt_log2(v)}" for i, v in enumerate(ver["per_layer_error_log2"])
            )
        )
        + "); worst case over "
        f"the box [-1, 1]^d by interval arithmetic: {esc(fmt_log2(ver.get('worst_case_bound_log2')))}.</p>",
        img(verification_figure(ver), "verification figures"),
    ]


def missing_section(rec: Recovery, ver: dict[str, Any], ex: dict[str, Any]) -> list[str]:
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
        section("missing", "Neurons not recovered, and why"),
        f"<p>{len(rec.recovered)} of {len(rec.visible)} visible neurons recovered; "
        f"{len(rec.dead)} dead and {len(rec.invisible)} invisible neuron(s) in the truth "
        "(dead: never active on the verification's sampled inputs; invisible: it writes "
        "nothing to the outputs; either changes nothing on those inputs).</p>",
    ]
    if not notes:
        return [*head, "<p>Every neuron of the truth was recovered; none is left over.</p>"]
    return [*head, table(["what", "neuron", "why"], notes)]
