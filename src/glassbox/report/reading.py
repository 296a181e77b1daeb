"""The demo report's sentences: what the figures show, each computed from the same numbers as the figures."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from glassbox.extract.kinks import LineKinks
from glassbox.report.numbers import Recovery, ReportInputs
from glassbox.toy import analysis
from glassbox.verify.compare import fmt_log2, log2_error

Array = NDArray[np.float64]


# -------------------------------------------------------------------- reading
def dedicated_features(features: Sequence[analysis.Feature]) -> list[int]:
    """The features computed by neurons of their own: a dedicated pair, or several dedicated neurons."""
    return [f.index for f in features if f.how in ("pair", "redundant")]


def index_list(indices: Sequence[int]) -> str:
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
        f"Feature {dedicated[0]} has" if k == 1 else f"{k} features ({index_list(dedicated)}) have"
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
    mono = int(truth["monosemantic"])
    if mono > 2 * len(dedicated):  # the two counts can look at odds: say how both hold
        out.append(
            f"{mono} monosemantic neurons and {len(dedicated)} feature(s) with neurons of their "
            "own both hold: a monosemantic neuron reads one feature but may compute only one "
            "sign of it, ReLU(x) or ReLU(-x), and a feature has neurons of its own only when "
            "both of its signs do."
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


def graph_caption(drawn: Sequence[int], n: int, features: Sequence[analysis.Feature]) -> str:
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


def abs_caption(features: Sequence[analysis.Feature]) -> str:
    counts = {c: sum(f.how == c for f in features) for c in analysis.FEATURE_CLASSES}
    parts = [f"{v} {k.replace('_', ' ')}" for k, v in counts.items() if v]
    return (
        "For each feature i, the output y'_i on inputs where only x_i is non-zero, against x_i: "
        "grey the target |x|, blue the truth, dashed orange the reconstruction (on top of the "
        "truth when the reconstruction is faithful). The truth's features by how it computes "
        "them: " + ", ".join(parts) + "."
    )


def training_text(inputs: ReportInputs) -> str:
    tr, toy = inputs.training, inputs.toy
    count = toy.n_configs * toy.restarts
    text = f"The kept instance's training loss, as windowed means over {toy.steps:,} steps."
    if "train_seconds" in tr:
        text += (
            f" Training all {count} instance(s) took {tr['train_seconds']:.1f} s "
            f"({tr['steps_per_second']:.0f} steps/s) on {tr.get('device', 'cpu')}."
        )
    return text


def neuron_role(j: int, summary: dict[str, Any], w1: Array, w2: Array, rec: Recovery) -> str:
    census = analysis.neuron_census(w1, w2)
    role = census[j].role
    if j in rec.missing:
        return f"{role}, not recovered"
    if j in rec.dead or j in rec.invisible:
        return f"{role}, not visible to the attack"
    return role


def line_ranges(line: LineKinks) -> tuple[float, float, float]:
    """The largest |input coordinate| along the line's span, and the least and greatest output seen."""
    ends = np.stack([line.x0 + line.t_lo * line.d, line.x0 + line.t_hi * line.d])
    f = np.concatenate([line.samples_f.ravel(), line.value.ravel()])
    return float(np.abs(ends).max()), float(f.min()), float(f.max())


def line_range_text(line: LineKinks) -> str:
    x_max, _, f_hi = line_ranges(line)
    return (
        f"The line runs far outside the toy model's inputs in [-1, 1] (here up to |x_i| = "
        f"{x_max:.3g}, with outputs up to {f_hi:.3g}) on purpose: a black box "
        "answers any input, and a line long enough to cross every neuron's hyperplane shows "
        "every neuron's kink, including neurons that switch only for inputs far from the data."
    )
