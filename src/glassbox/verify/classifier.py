"""A recovered classifier held against the true one, on what its users see.

A softmax hides its logits up to a common shift (adding the same function to every
logit changes no probability), so the weights are compared after removing it: both nets
are rewritten as the logit differences ``z_i - z_r`` to one reference class ``r`` (the one
the recovered net holds at zero), and :func:`glassbox.verify.compare.verify` compares
those (alignment, weight error, functional error on the log-ratios). A sigmoid's logits
are compared as they are. Beside them: the largest error of the probabilities and the
share of inputs on which both nets pick the same class, per distribution: Gaussian,
uniform on the box, and the data's own inputs when given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from glassbox.errors import GlassboxError
from glassbox.mlp import ReLUNet
from glassbox.verify.compare import Verification, log2_error, log2_json, verify
from glassbox.verify.inputs import sample_inputs

Array = NDArray[np.float64]


@dataclass(frozen=True)
class ClassifierVerification:
    """The logit view's :class:`Verification` and, per distribution, probability figures."""

    head: str
    reference: int | None
    logits: Verification
    probability_error_log2: dict[str, float]
    argmax_agreement: dict[str, float]

    @property
    def worst_probability_error_log2(self) -> float:
        """The largest probability error over every distribution (log2)."""
        return max(self.probability_error_log2.values())

    @property
    def worst_argmax_agreement(self) -> float:
        """The smallest share of same-class answers over every distribution."""
        return min(self.argmax_agreement.values())

    def to_json(self) -> dict[str, Any]:
        """The figures as a JSON object (log2 figures in the documented form)."""
        return {
            "head": self.head,
            "reference": self.reference,
            "weights_compared": (
                f"logit differences z_i - z_{self.reference} (the common shift removed)"
                if self.head == "softmax"
                else "logits"
            ),
            "probability_error_log2": {
                k: log2_json(v) for k, v in self.probability_error_log2.items()
            },
            "max_probability_error_log2": log2_json(self.worst_probability_error_log2),
            "argmax_agreement": self.argmax_agreement,
            "min_argmax_agreement": self.worst_argmax_agreement,
        }


def reference_class(net: ReLUNet) -> int:
    """The class a recovered softmax net holds at logit zero (its last row and bias zero), else 0."""
    w, b = net.weights[-1], net.biases[-1]
    zero = np.all(w == 0, axis=1) & (True if b is None else b == 0)
    return int(np.flatnonzero(zero)[0]) if np.any(zero) else 0


def logit_differences(net: ReLUNet, reference: int) -> ReLUNet:
    """A softmax net's logits minus the reference class's: ``k - 1`` outputs, no head."""
    if net.output_relu:
        raise GlassboxError("a softmax net with an output ReLU has no logit differences")
    w, b = net.weights[-1], net.biases[-1]
    keep = np.arange(w.shape[0]) != reference
    weights = [*net.weights[:-1], (w - w[reference])[keep]]
    bias = None if b is None else (b - b[reference])[keep]
    return ReLUNet(weights, [*net.biases[:-1], bias])


def verify_classifier(
    recovered: ReLUNet,
    truth: ReLUNet,
    *,
    n_samples: int = 4096,
    seed: int = 0,
    data: Array | None = None,
    queries: int | None = None,
) -> ClassifierVerification:
    """Compare two classifiers with the same head (see the module docstring)."""
    if recovered.head != truth.head or truth.head == "identity":
        raise GlassboxError(
            f"verify_classifier compares classifiers with one head; got {recovered.head} "
            f"and {truth.head}"
        )
    if recovered.dims[0] != truth.dims[0] or recovered.dims[-1] != truth.dims[-1]:
        raise GlassboxError(
            f"the nets take {recovered.dims[0]} and {truth.dims[0]} inputs and answer "
            f"{recovered.dims[-1]} and {truth.dims[-1]} classes"
        )
    ref: int | None = None
    if truth.head == "softmax":
        ref = reference_class(recovered)
        rec_view, true_view = logit_differences(recovered, ref), logit_differences(truth, ref)
    else:
        rec_view, true_view = recovered.without_head(), truth.without_head()
    logits = verify(rec_view, true_view, n_samples=n_samples, seed=seed, queries=queries)
    sets = sample_inputs(truth.input_dim, n_samples, np.random.default_rng([seed, 2]))
    if data is not None:
        sets["data"] = np.asarray(data, dtype=np.float64).reshape(-1, truth.input_dim)
    errors: dict[str, float] = {}
    agree: dict[str, float] = {}
    for name, X in sets.items():
        p, q = truth.forward(X), recovered.forward(X)
        errors[name] = log2_error(float(np.max(np.abs(p - q), initial=0.0)))
        agree[name] = float(np.mean(_decision(p, truth.head) == _decision(q, truth.head)))
    return ClassifierVerification(truth.head, ref, logits, errors, agree)


def _decision(P: Array, head: str) -> NDArray[np.int64]:
    """The class chosen: the argmax of a softmax row; each sigmoid output above 1/2 (as bits)."""
    if head == "softmax":
        return np.argmax(P, axis=1)
    return (P > 0.5).astype(np.int64) @ (1 << np.arange(P.shape[1]))
