"""Hold a recovered ReLUNet against the true one: alignment, weight error, functional error.

A ReLU net is unchanged by permuting a hidden layer's neurons and by scaling a neuron's
incoming weights and bias by ``c > 0`` while dividing its outgoing weights by ``c``.
:func:`align` (in :mod:`glassbox.verify.align`) undoes those symmetries;
:func:`verify` then measures, on inputs from :mod:`glassbox.verify.inputs`,

* the weight error: after alignment, every hidden neuron of the truth is normalised so
  that its row (incoming weights and bias, in the coordinates of the already normalised
  previous layer) has unit L2 norm, its outgoing weights multiplied back; the same factors
  are applied to the aligned recovered net, and the error is ``max |theta - theta_hat|``
  over all weights and biases. An absent bias counts as 0 on the side that lacks it, so a
  bias the recovered net invents where the truth has none counts as error against 0.
  Truth neurons that are dead (never active on the alignment's samples) or invisible
  (all outgoing weights zero) are left out of their own layer's rows; a dead neuron's
  outgoing weights are left out too, since they never act.
* the functional error ``|f(x) - f_hat(x)|`` (max over outputs) on samples from several
  distributions, as ``epsilon`` (the sampled maximum, i.e. Carlini et al.'s epsilon at
  delta = 0 over the sample) and ``delta`` (the fraction of samples whose error exceeds
  ``2^-20 * max(1, max |f(x)|)``, the threshold reported as ``delta_threshold_log2``).
* a worst-case bound on ``|f - f_hat|`` over the box ``[-1, 1]^d`` by interval
  propagation (valid for any depth, loose for deep nets).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from glassbox.errors import GlassboxError
from glassbox.mlp import ReLUNet
from glassbox.verify.align import MIN_COSINE, Alignment, NeuronNote, align
from glassbox.verify.inputs import BOX, HYPERPLANE_OFFSETS, hyperplane_points, sample_inputs

Array = NDArray[np.float64]

# Names that lived here before alignment and the sampled inputs got their own modules.
__all__ = [
    "BOX",
    "DELTA_THRESHOLD_LOG2",
    "HYPERPLANE_OFFSETS",
    "LOG2_ZERO_JSON",
    "MIN_COSINE",
    "Alignment",
    "DistributionError",
    "NeuronNote",
    "Verification",
    "align",
    "fmt_log2",
    "hyperplane_points",
    "log2_error",
    "log2_json",
    "sample_inputs",
    "verify",
    "weight_errors",
    "worst_case_bound",
]

DELTA_THRESHOLD_LOG2 = -20.0
# log2 of the smallest positive float64 (a subnormal): every nonzero error's log2 is >= this.
LOG2_ZERO_JSON = -1074.0


@dataclass(frozen=True)
class DistributionError:
    """Functional error on one sampling distribution."""

    name: str
    n: int
    epsilon_log2: float
    delta: float
    same_pattern_fraction: float

    def to_json(self) -> dict[str, Any]:
        """The figures as a JSON object (log2 figures in the documented form)."""
        return {
            "n": self.n,
            "epsilon_log2": log2_json(self.epsilon_log2),
            "epsilon": 2.0**self.epsilon_log2,
            "delta": self.delta,
            "same_pattern_fraction": self.same_pattern_fraction,
        }


@dataclass(frozen=True)
class Verification:
    """Everything :func:`verify` measured; ``-inf`` log2 figures mean an exact zero."""

    max_weight_error_log2: float
    per_layer_error_log2: list[float]
    epsilon_log2: float
    delta: float
    delta_threshold_log2: float
    same_pattern_fraction: float
    per_distribution: dict[str, DistributionError]
    worst_case_bound_log2: float
    queries: int | None
    n_samples: int
    seed: int
    truth: str
    recovered: str
    dead: list[NeuronNote] = field(default_factory=list)
    invisible: list[NeuronNote] = field(default_factory=list)
    unmatched_truth: list[NeuronNote] = field(default_factory=list)
    unmatched_recovered: list[NeuronNote] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The figures as standard JSON: log2 of an exact zero is -1074 (see docs/json.md)."""
        return {
            "max_weight_error_log2": log2_json(self.max_weight_error_log2),
            "per_layer_error_log2": [log2_json(v) for v in self.per_layer_error_log2],
            "epsilon_log2": log2_json(self.epsilon_log2),
            "delta": self.delta,
            "queries": self.queries,
            "max_weight_error": 2.0**self.max_weight_error_log2,
            "epsilon": 2.0**self.epsilon_log2,
            "delta_threshold_log2": self.delta_threshold_log2,
            "same_pattern_fraction": self.same_pattern_fraction,
            "per_distribution": {k: v.to_json() for k, v in self.per_distribution.items()},
            "worst_case_bound_log2": log2_json(self.worst_case_bound_log2),
            "worst_case_box": list(BOX),
            "n_samples": self.n_samples,
            "seed": self.seed,
            "truth": self.truth,
            "recovered": self.recovered,
            "dead": [n.to_json() for n in self.dead],
            "invisible": [n.to_json() for n in self.invisible],
            "unmatched_truth": [n.to_json() for n in self.unmatched_truth],
            "unmatched_recovered": [n.to_json() for n in self.unmatched_recovered],
        }


def log2_json(value: float) -> float | None:
    """A log2 figure for JSON: -inf (exact zero) becomes -1074, NaN or +inf becomes null."""
    if value == -math.inf:
        return LOG2_ZERO_JSON
    return value if math.isfinite(value) else None


def log2_error(x: float) -> float:
    """log2 of a non-negative error; an exact zero is -inf."""
    return math.log2(x) if x > 0 else -math.inf


def fmt_log2(value: float | None) -> str:
    """A log2 figure for people: ``2^-41.3``; ``0 (exact)`` for -inf or its JSON form; ``n/a`` for None/NaN."""
    if value is None or math.isnan(value):
        return "n/a"
    if value <= LOG2_ZERO_JSON:
        return "0 (exact)"
    return f"2^{value:.1f}"


# -------------------------------------------------------------- weight error
def _padded_truth(truth: ReLUNet, aligned: ReLUNet) -> tuple[list[Array], list[Array | None]]:
    """The truth's layers with zero rows/columns where the aligned net has extra neurons."""
    ws, bs = [], []
    for tw, tb, aw in zip(truth.weights, truth.biases, aligned.weights, strict=True):
        w = np.zeros(aw.shape)
        w[: tw.shape[0], : tw.shape[1]] = tw
        ws.append(w)
        bs.append(None if tb is None else np.concatenate([tb, np.zeros(aw.shape[0] - tb.size)]))
    return ws, bs


def _normalisers(
    truth_w: list[Array], truth_b: list[Array | None], n_truth: list[int]
) -> list[Array]:
    """Per hidden layer, the factor giving each truth neuron a unit (weights, bias) row; 1 for extras."""
    out: list[Array] = []
    prev = np.ones(truth_w[0].shape[1])
    for w, b, n in zip(truth_w[:-1], truth_b, n_truth, strict=False):
        sq = np.sum((w * prev) ** 2, axis=1) + (0.0 if b is None else b**2)
        norms = np.sqrt(sq)
        r = np.ones(w.shape[0])
        r[:n] = np.where(norms[:n] > 0, norms[:n], 1.0)
        out.append(r)
        prev = r
    return out


def weight_errors(truth: ReLUNet, alignment: Alignment) -> list[float]:
    """Max |theta - theta_hat| per layer after alignment and normalisation (see module doc)."""
    aligned = alignment.aligned
    tws, tbs = _padded_truth(truth, aligned)
    n_truth = [w.shape[0] for w in truth.weights[:-1]]
    norms = _normalisers(tws, tbs, n_truth)
    errors: list[float] = []
    prev_norm = np.ones(truth.input_dim)
    prev_cols = np.ones(truth.input_dim, dtype=bool)
    for i, (tw, tb, aw, ab) in enumerate(
        zip(tws, tbs, aligned.weights, aligned.biases, strict=True)
    ):
        hidden = i < len(norms)
        r = norms[i] if hidden else np.ones(tw.shape[0])
        rows = np.ones(tw.shape[0], dtype=bool)
        if hidden:
            n = n_truth[i]
            rows[n:] = False  # an extra neuron's row has no counterpart; its outgoing weights count
            rows[:n] = ~(alignment.dead_mask[i] | alignment.invisible_mask[i])
        dw = (aw - tw) * prev_norm / r[:, None]
        worst = float(np.max(np.abs(dw[rows][:, prev_cols]), initial=0.0))
        if tb is not None or ab is not None:
            zero = np.zeros(tw.shape[0])
            db = ((zero if ab is None else ab) - (zero if tb is None else tb)) / r
            worst = max(worst, float(np.max(np.abs(db[rows]), initial=0.0)))
        errors.append(worst)
        if hidden:
            prev_norm = r
            prev_cols = np.ones(tw.shape[0], dtype=bool)
            prev_cols[: n_truth[i]] = ~alignment.dead_mask[i]
    return errors


def worst_case_bound(truth: ReLUNet, aligned: ReLUNet) -> float:
    """An upper bound on max |f - f_hat| over the box [-1, 1]^d, by interval propagation.

    Per layer, ``|z_hat - z| <= |W_hat| e + |W_hat - W| max|a| + |b_hat - b|`` with ``e`` the
    bound so far and ``a`` the truth's activations, bounded by interval arithmetic; ReLU is
    1-Lipschitz. Exact-arithmetic bound: the two nets' own float64 rounding is not included.
    """
    tws, tbs = _padded_truth(truth, aligned)
    lo, hi = np.full(truth.input_dim, BOX[0]), np.full(truth.input_dim, BOX[1])
    e = np.zeros(truth.input_dim)
    last = len(tws) - 1
    for i, (tw, tb, aw, ab) in enumerate(
        zip(tws, tbs, aligned.weights, aligned.biases, strict=True)
    ):
        zero = np.zeros(tw.shape[0])
        b = zero if tb is None else tb
        db = (zero if ab is None else ab) - b
        pos, neg = np.maximum(tw, 0.0), np.minimum(tw, 0.0)
        zlo, zhi = pos @ lo + neg @ hi + b, pos @ hi + neg @ lo + b
        e = np.abs(aw) @ e + np.abs(aw - tw) @ np.maximum(np.abs(lo), np.abs(hi)) + np.abs(db)
        if i < last or truth.output_relu:
            lo, hi = np.maximum(zlo, 0.0), np.maximum(zhi, 0.0)
        else:
            lo, hi = zlo, zhi
    return float(np.max(e))


# -------------------------------------------------------------------- verify
def verify(
    recovered: ReLUNet,
    truth: ReLUNet,
    *,
    n_samples: int = 4096,
    seed: int = 0,
    sparse_probability: float | None = None,
    queries: int | None = None,
) -> Verification:
    """Compare a recovered net with the truth: aligned weight error, sampled (eps, delta), bound."""
    if n_samples < 1:
        raise GlassboxError(f"n_samples must be at least 1, got {n_samples}")
    if sparse_probability is not None and not 0 < sparse_probability <= 1:
        raise GlassboxError(f"sparse_probability must be in (0, 1], got {sparse_probability}")
    alignment = align(recovered, truth, n_samples=n_samples, seed=seed)
    per_layer = [log2_error(e) for e in weight_errors(truth, alignment)]

    rng = np.random.default_rng([seed, 1])
    sets = sample_inputs(truth.input_dim, n_samples, rng, sparse_probability)
    skip = tuple(alignment.dead_mask)
    sets["hyperplane"] = hyperplane_points(truth, n_samples, rng, skip)

    # Columns of the aligned net's activation pattern that hold the truth's neurons.
    offsets = np.cumsum([0] + [w.shape[0] for w in alignment.aligned.weights[:-1]])
    slots = np.concatenate(
        [off + np.arange(w.shape[0]) for off, w in zip(offsets, truth.weights[:-1], strict=False)]
        + [np.zeros(0, dtype=np.int64)]
    ).astype(np.int64)
    errs: dict[str, Array] = {}
    same: dict[str, Array] = {}
    f_max = 0.0
    for name, X in sets.items():
        f = truth.forward(X)
        errs[name] = np.max(np.abs(f - recovered.forward(X)), axis=1)
        pattern = alignment.aligned.activation_pattern(X)[:, slots]
        same[name] = np.all(pattern == truth.activation_pattern(X), axis=1)
        f_max = max(f_max, float(np.max(np.abs(f), initial=0.0)))
    threshold_log2 = DELTA_THRESHOLD_LOG2 + math.log2(max(1.0, f_max))
    threshold = 2.0**threshold_log2
    per_dist = {
        name: DistributionError(
            name=name,
            n=int(e.size),
            epsilon_log2=log2_error(float(np.max(e, initial=0.0))),
            delta=float(np.mean(e > threshold)) if e.size else 0.0,
            same_pattern_fraction=float(np.mean(same[name])) if e.size else 1.0,
        )
        for name, e in errs.items()
    }
    every = np.concatenate(list(errs.values()))
    off_plane = np.concatenate([v for k, v in same.items() if k != "hyperplane"])
    return Verification(
        max_weight_error_log2=max(per_layer),
        per_layer_error_log2=per_layer,
        epsilon_log2=log2_error(float(np.max(every))),
        delta=float(np.mean(every > threshold)),
        delta_threshold_log2=threshold_log2,
        same_pattern_fraction=float(np.mean(off_plane)),
        per_distribution=per_dist,
        worst_case_bound_log2=log2_error(worst_case_bound(truth, alignment.aligned)),
        queries=queries,
        n_samples=n_samples,
        seed=seed,
        truth=truth.describe(),
        recovered=recovered.describe(),
        dead=list(alignment.dead),
        invisible=list(alignment.invisible),
        unmatched_truth=list(alignment.unmatched_truth),
        unmatched_recovered=list(alignment.unmatched_recovered),
    )
