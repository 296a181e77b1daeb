"""Probabilities back to the piecewise-linear map below them: log-ratios and logits.

A classifier that answers ``p = softmax(z)`` hides its logits ``z`` only up to a common
shift: ``log p_i - log p_r = z_i - z_r`` exactly, a piecewise-linear function of the input
when ``z`` is a ReLU net. A sigmoid answer ``p`` gives ``log(p / (1 - p)) = z`` itself.
:func:`logit_view` is that map as an oracle (same ledger, every row counted once), so
the attack runs on it unchanged; :func:`with_head` puts the softmax or sigmoid back on
what it recovers, so that the saved net answers what the black box answers.

Precision: a softmax computes ``exp(z_i - m)`` from a rounded difference, so ``log p_i``
carries an absolute error of about ``eps (1 + |log p_i|)``; a sigmoid near 1 leaves the
logit only ``eps / (1 - p)``. :func:`view_precision` takes the largest of those at the
probe's answers, relative to the view's scale (as the attack reads any answers' precision),
in whole powers of two of the answers' own precision. A probability that underflows (zero or subnormal; a sigmoid of exactly 1) has lost
its log: the view refuses such a row with the reason rather than answer a wrong number.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from glassbox.errors import GlassboxError
from glassbox.mlp import ReLUNet
from glassbox.oracle.core import NonFiniteAnswer, Oracle, _Weakened

Array = NDArray[np.float64]

HEADS = ("softmax", "sigmoid")
# Rows of probabilities sum to 1 within this many units of their precision per class.
SUM_SLACK = 8.0
# A sigmoid's logit z > 0 keeps only eps * e^z of precision: trusted up to |z| <= 14 (2^20 lost).
SIGMOID_LIMIT = 14.0
UNDERFLOW = "a probability underflowed"


@dataclass(frozen=True)
class Head:
    """How a classifier's answers hang on its logits: the head, its classes, the reference class.

    ``tiny`` is the smallest probability whose log is still trusted (the smallest normal
    number of the answers' float type); below it, a row is refused.
    """

    kind: str
    classes: int
    reference: int = 0
    tiny: float = float(np.finfo(np.float64).tiny)

    def __post_init__(self) -> None:
        if self.kind not in HEADS:
            raise GlassboxError(f"unknown head {self.kind!r}; known: {', '.join(HEADS)}")
        if self.kind == "softmax" and not (
            self.classes >= 2 and 0 <= self.reference < self.classes
        ):
            raise GlassboxError(
                f"a softmax head needs at least 2 classes and a reference among them, "
                f"got {self.classes} classes, reference {self.reference}"
            )

    @property
    def limit(self) -> float:
        """The largest log-ratio (or logit) the view trusts: half the log of ``1 / tiny``
        (a margin before underflow); for a sigmoid also :data:`SIGMOID_LIMIT`."""
        half = 0.5 * float(np.log(1.0 / self.tiny))
        return half if self.kind == "softmax" else min(half, SIGMOID_LIMIT)

    @property
    def view_dim(self) -> int:
        """Outputs of the log-ratio view: ``k - 1`` for a softmax, ``k`` for sigmoids."""
        return self.classes - 1 if self.kind == "softmax" else self.classes

    def describe(self) -> str:
        """What the view answers, in words."""
        if self.kind == "softmax":
            return f"log p_i - log p_{self.reference} of a softmax over {self.classes} classes"
        return "log(p / (1 - p)) of each sigmoid output"


def softmax_rows(P: Array, eps: float) -> bool:
    """Whether every row is a probability vector: non-negative, summing to 1 within precision."""
    if P.ndim != 2 or P.shape[1] < 2 or not np.all(np.isfinite(P)) or np.any(P < 0):
        return False
    slack = SUM_SLACK * P.shape[1] * max(eps, float(np.finfo(np.float64).eps))
    return bool(np.all(np.abs(np.sum(P, axis=1) - 1.0) <= slack) and np.any(P[:1] != P))


def sigmoid_answers(P: Array) -> bool:
    """Whether answers lie in [0, 1], most strictly inside, like a sigmoid's (some may saturate)."""
    inside = (P > 0) & (P < 1)
    return bool(np.all((P >= 0) & (P <= 1)) and np.mean(inside) >= 0.5 and np.any(P[:1] != P))


def saturated(P: Array) -> bool:
    """Whether some answers sit exactly at 1, as a sigmoid's do past a logit of 37 in float64
    (exact zeros are left out: a ReLU output gives those)."""
    return bool(np.any(P == 1))


def tiny_for(eps: float) -> float:
    """The smallest trusted probability: float32's smallest normal for float32 answers."""
    return float(np.finfo(np.float32 if eps >= 2.0**-30 else np.float64).tiny)


def best_reference(P: Array) -> int:
    """The class least likely to underflow: the one whose smallest probability is largest."""
    return int(np.argmax(np.min(P, axis=0)))


def underflowed(P: Array, head: Head) -> NDArray[np.bool_]:
    """Per row, whether some probability the view needs has lost its log."""
    if head.kind == "softmax":
        return np.any(head.tiny > P, axis=1)
    return np.any((head.tiny > P) | (P >= 1.0), axis=1)


def log_ratios(P: Array, head: Head) -> Array:
    """The piecewise-linear map's values at answers ``P`` (see the module docstring)."""
    with np.errstate(divide="ignore"):
        if head.kind == "softmax":
            L = np.log(P)
            return np.delete(L - L[:, [head.reference]], head.reference, axis=1)
        return np.log(P) - np.log1p(-P)


def safe_scale(V0: Array, V: Array, scale: float, head: Head, reach: float) -> float:
    """The input scale at which the view stays within ``head.limit`` out to ``reach`` times it.

    ``V0`` is the view at the origin, ``V`` at inputs of scale ``scale``: a piecewise-linear
    map grows at most about linearly away from the origin.
    """
    growth = float(np.max(np.abs(V - V0))) / scale
    room = head.limit - float(np.max(np.abs(V0)))
    if room <= 0:
        return 0.0
    return room / (growth * reach) if growth > 0 else math.inf


def view_precision(P: Array, head: Head, eps: float) -> float:
    """A bound on the view's error at answers ``P``, relative to the view's largest answer."""
    V = log_ratios(P, head)
    if head.kind == "softmax":
        logs = np.abs(np.log(P))
        each = np.maximum(logs, logs[:, [head.reference]])
        err = eps * (1.0 + np.delete(each, head.reference, axis=1))
    else:
        err = eps * np.maximum(1.0, 1.0 / (1.0 - P))
    # Relative to the view's scale, like the attack reads any answers' precision. The attack's
    # tolerances take a precision as nominal (a float64 answer is already off by a few ulps):
    # a loss under a factor of 2 keeps the answers' own (measured: a float64 softmax's view
    # at 2^-51.7 failed a sign vote that it passes at 2^-52).
    loss = max(float(np.max(err)) / max(float(np.max(np.abs(V))), 1.0) / eps, 1.0)
    return eps * 2.0 ** math.floor(math.log2(loss))


def _transform(head: Head) -> Callable[[Array], Array]:
    def view(P: Array) -> Array:
        lost = underflowed(P, head)
        if np.any(lost):
            raise NonFiniteAnswer(
                f"{UNDERFLOW} at {int(np.sum(lost))} of {P.shape[0]} inputs "
                f"(below {head.tiny:.3g}, or a sigmoid of exactly 1): its log, and the logits "
                "there, are lost; the attack's inputs reach where the classifier saturates"
            )
        return log_ratios(P, head)

    return view


def logit_view(oracle: Oracle, head: Head) -> Oracle:
    """``oracle``'s answers as log-ratios (softmax) or logits (sigmoid); one count per row."""
    if oracle.output_dim != head.classes:
        raise GlassboxError(
            f"the black box answers {oracle.output_dim} values, the head expects {head.classes}"
        )
    return _Weakened(oracle, _transform(head), head.view_dim)


def with_head(net: ReLUNet, head: Head) -> ReLUNet:
    """The recovered view net as the classifier: a zero logit put back for the reference
    class (the common shift is arbitrary; this choice answers the same probabilities),
    then the head."""
    if net.output_relu:
        raise GlassboxError("a recovered view with an output ReLU cannot carry a head")
    if net.output_dim != head.view_dim:
        raise GlassboxError(f"the net has {net.output_dim} outputs, the view {head.view_dim}")
    weights, biases = list(net.weights), list(net.biases)
    if head.kind == "softmax":
        r = head.reference
        weights[-1] = np.insert(weights[-1], r, 0.0, axis=0)
        b = biases[-1]
        biases[-1] = np.insert(np.zeros(net.output_dim) if b is None else b, r, 0.0)
    return ReLUNet(weights, biases, head=head.kind)
