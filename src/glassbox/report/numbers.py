"""The demo report's numbers: its inputs, weight differences after alignment, which neurons were recovered, the summary lines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from glassbox.errors import GlassboxError
from glassbox.extract.kinks import LineKinks
from glassbox.mlp import ReLUNet
from glassbox.toy import analysis
from glassbox.verify.compare import Alignment, align, fmt_log2, log2_error

if TYPE_CHECKING:  # the toy half needs torch; a report of an extraction does not
    from glassbox.toy.config import ToyConfig

Array = NDArray[np.float64]


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
def net_layers(net: ReLUNet) -> tuple[Array, Array, Array]:
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
    tw1, tw2, tb = net_layers(truth)
    aw1, aw2, ab = net_layers(aligned)
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
    w1, w2, _ = net_layers(aligned)
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
        f"on {sample_count(ver):,} inputs (delta = {ver['delta']:g})",
        f"neurons recovered:      {len(rec.recovered)} / {len(rec.visible)} visible",
    ]


def summary(inputs: ReportInputs) -> list[str]:
    """The five-line summary of a run (aligns the reconstruction to count recovered neurons)."""
    return summary_lines(inputs, recovery(align(inputs.recovered, inputs.truth)))


def sample_count(ver: dict[str, Any]) -> int:
    return sum(int(d["n"]) for d in ver.get("per_distribution", {}).values())
