"""Hold a recovered ReLUNet against the true one: alignment, weight error, functional error.

A ReLU net is unchanged by permuting a hidden layer's neurons and by scaling a neuron's
incoming weights and bias by ``c > 0`` while dividing its outgoing weights by ``c``.
:func:`align` undoes those symmetries; :func:`verify` then measures

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

Array = NDArray[np.float64]
IntArray = NDArray[np.int64]

DELTA_THRESHOLD_LOG2 = -20.0
MIN_COSINE = 0.9
BOX = (-1.0, 1.0)
# log2 of the smallest positive float64 (a subnormal): every nonzero error's log2 is >= this.
LOG2_ZERO_JSON = -1074.0
# Offsets from a critical hyperplane, in units of max(1, |x|_inf), along its unit normal.
HYPERPLANE_OFFSETS = (0.0, 2.0**-40, -(2.0**-40), 2.0**-20, -(2.0**-20))


@dataclass(frozen=True)
class NeuronNote:
    """One hidden neuron set apart: its hidden layer (0 = first), index and why."""

    layer: int
    index: int
    reason: str

    def to_json(self) -> dict[str, Any]:
        """The note as a JSON object."""
        return {"layer": self.layer, "index": self.index, "reason": self.reason}


@dataclass(frozen=True, eq=False)
class Alignment:
    """How a recovered net maps onto the truth, hidden layer by hidden layer.

    ``permutations[l][j]`` is the recovered neuron matched to truth neuron ``j`` of hidden
    layer ``l`` (-1: none) and ``scales[l][j]`` the factor with recovered row = scale *
    truth row (NaN where unmatched). ``aligned`` computes the recovered net's function with
    hidden layer ``l`` laid out as the truth's neurons in the truth's order and scale (zero
    rows where unmatched), followed by the unmatched recovered neurons ``extras[l]``.
    """

    permutations: tuple[IntArray, ...]
    scales: tuple[Array, ...]
    extras: tuple[IntArray, ...]
    aligned: ReLUNet
    dead: tuple[NeuronNote, ...]
    invisible: tuple[NeuronNote, ...]
    unmatched_truth: tuple[NeuronNote, ...]
    unmatched_recovered: tuple[NeuronNote, ...]
    dead_mask: tuple[NDArray[np.bool_], ...]
    invisible_mask: tuple[NDArray[np.bool_], ...]


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


# ------------------------------------------------------------------ sampling
def sample_inputs(
    d: int, n: int, rng: np.random.Generator, sparse_probability: float | None = None
) -> dict[str, Array]:
    """Inputs per distribution: N(0, I), uniform on [-1, 1]^d, and the toy model's sparse one.

    The sparse distribution (only when ``sparse_probability`` is given) sets each
    coordinate independently to U[-1, 1] with that probability and to 0 otherwise: the
    abs(x) model's inputs, and a superset of the [0, 1] features of the earlier toy models.
    """
    out = {"gaussian": rng.normal(size=(n, d)), "uniform": rng.uniform(*BOX, size=(n, d))}
    if sparse_probability is not None:
        present = rng.random((n, d)) < sparse_probability
        out["sparse"] = np.where(present, rng.uniform(*BOX, size=(n, d)), 0.0)
    return out


def _gradient(net: ReLUNet, layer: int, neuron: int, X: Array) -> Array:
    """Gradient of one hidden pre-activation with respect to the input, at each row of X."""
    pre = net.preactivations(X)
    g = np.broadcast_to(net.weights[layer][neuron], (X.shape[0], net.weights[layer].shape[1]))
    for k in range(layer - 1, -1, -1):
        g = (g * (pre[k] > 0)) @ net.weights[k]
    return g


def hyperplane_points(
    net: ReLUNet, n: int, rng: np.random.Generator, skip: tuple[NDArray[np.bool_], ...]
) -> Array:
    """Points on every hidden neuron's critical hyperplane (``skip`` masks dead ones), +- offsets.

    From Gaussian starts, Newton steps on the neuron's locally affine pre-activation land
    on its hyperplane (starts that do not converge are dropped); each landing point is
    then shifted along the unit normal by ``HYPERPLANE_OFFSETS * max(1, |x|_inf)``.
    """
    live = [(i, int(j)) for i, mask in enumerate(skip) for j in np.flatnonzero(~mask)]
    if not live:
        return np.zeros((0, net.input_dim))
    m = max(1, n // (len(live) * len(HYPERPLANE_OFFSETS)))
    offsets = np.array(HYPERPLANE_OFFSETS)
    found: list[Array] = []
    for layer, j in live:
        x = rng.normal(size=(m, net.input_dim))
        for _ in range(30):  # Newton on a piecewise-affine function: usually 1-3 steps
            z = net.preactivations(x)[layer][:, j]
            g = _gradient(net, layer, j, x)
            gg = np.einsum("ij,ij->i", g, g)
            step = np.where(gg > 0, z / np.where(gg > 0, gg, 1.0), 0.0)
            x = x - step[:, None] * g
        z = net.preactivations(x)[layer][:, j]
        g = _gradient(net, layer, j, x)
        norm = np.linalg.norm(g, axis=1)
        scale = np.maximum(1.0, np.abs(x).max(axis=1))
        on = (norm > 0) & (np.abs(z) <= 1e-9 * norm * scale)
        if not on.any():
            continue
        x, u, scale = x[on], g[on] / norm[on, None], scale[on]
        shifted = x[:, None, :] + (offsets[None, :, None] * scale[:, None, None]) * u[:, None, :]
        found.append(shifted.reshape(-1, net.input_dim))
    return np.concatenate(found) if found else np.zeros((0, net.input_dim))


# ----------------------------------------------------------------- alignment
def _dead_neurons(net: ReLUNet, X: Array) -> list[NDArray[np.bool_]]:
    return [~np.any(z > 0, axis=0) for z in net.preactivations(X)[:-1]]


def _match(cos: Array, min_cosine: float) -> IntArray:
    """Match truth rows to recovered columns: repeatedly take mutual best pairs above the bar."""
    n_t = cos.shape[0]
    match = np.full(n_t, -1, dtype=np.int64)
    if cos.size == 0:
        return match
    c = cos.copy()
    rows = np.arange(n_t)
    while True:
        best_r = np.argmax(c, axis=1)
        best_t = np.argmax(c, axis=0)
        mutual = (best_t[best_r] == rows) & (c[rows, best_r] >= min_cosine)
        if not mutual.any():
            return match
        ts, rs = rows[mutual], best_r[mutual]
        match[ts] = rs
        c[ts, :] = -np.inf
        c[:, rs] = -np.inf


def _unit_rows(a: Array) -> Array:
    n = np.linalg.norm(a, axis=1, keepdims=True)
    return np.divide(a, n, out=np.zeros_like(a), where=n > 0)


def _to_truth_columns(w: Array, perm: IntArray, scale: Array, extras: IntArray) -> Array:
    """Recovered layer columns rearranged to the previous layer's aligned layout."""
    out = np.zeros((w.shape[0], perm.size + extras.size))
    cols = np.flatnonzero(perm >= 0)
    out[:, cols] = w[:, perm[cols]] * scale[cols]
    out[:, perm.size :] = w[:, extras]
    return out


def align(
    recovered: ReLUNet,
    truth: ReLUNet,
    *,
    n_samples: int = 4096,
    seed: int = 0,
    min_cosine: float = MIN_COSINE,
) -> Alignment:
    """Match recovered hidden neurons to the truth's (permutation and positive scale), layer by layer.

    Rows are compared as (incoming weights, bias) in the truth's coordinates, by cosine;
    pairs are taken mutual-best-first while the cosine is at least ``min_cosine``. Dead
    truth neurons are found on ``n_samples`` Gaussian and ``n_samples`` uniform inputs.
    """
    if recovered.input_dim != truth.input_dim or recovered.output_dim != truth.output_dim:
        raise GlassboxError(
            f"the nets have different inputs/outputs: recovered {recovered.describe()}, "
            f"truth {truth.describe()}"
        )
    if len(recovered.weights) != len(truth.weights):
        raise GlassboxError(
            f"the nets have different depths: recovered {recovered.describe()}, "
            f"truth {truth.describe()}"
        )
    rng = np.random.default_rng(seed)
    probe = np.concatenate(list(sample_inputs(truth.input_dim, n_samples, rng).values()))
    dead_mask = _dead_neurons(truth, probe)
    invisible_mask = [np.all(w == 0, axis=0) for w in truth.weights[1:]]

    d_in = truth.input_dim
    perm = np.arange(d_in, dtype=np.int64)
    scale = np.ones(d_in)
    extras = np.zeros(0, dtype=np.int64)
    usable = np.ones(d_in, dtype=bool)  # previous-layer columns to compare rows on
    perms: list[IntArray] = []
    scales: list[Array] = []
    extra_list: list[IntArray] = []
    weights: list[Array] = []
    biases: list[Array | None] = []
    notes: dict[str, list[NeuronNote]] = {"dead": [], "invisible": [], "ut": [], "ur": []}
    last = len(truth.weights) - 1
    for i, (tw, tb, rw, rb) in enumerate(
        zip(truth.weights, truth.biases, recovered.weights, recovered.biases, strict=True)
    ):
        full = _to_truth_columns(rw, perm, scale, extras)
        if i == last:
            weights.append(full)
            biases.append(None if rb is None else rb.copy())
            break
        t_sig, r_sig = tw[:, usable], full[:, : perm.size][:, usable]
        if tb is not None:
            t_sig = np.column_stack([t_sig, tb])
            r_sig = np.column_stack([r_sig, np.zeros(rw.shape[0]) if rb is None else rb])
        cos = _unit_rows(t_sig) @ _unit_rows(r_sig).T
        match = _match(cos, min_cosine)
        matched = match >= 0
        s = np.full(tw.shape[0], np.nan)
        rs = match[matched]
        s[matched] = np.einsum("ij,ij->i", r_sig[rs], t_sig[matched]) / np.einsum(
            "ij,ij->i", t_sig[matched], t_sig[matched]
        )
        extra = np.setdiff1d(np.arange(rw.shape[0]), rs).astype(np.int64)
        layer_w = np.zeros((tw.shape[0] + extra.size, full.shape[1]))
        layer_w[np.flatnonzero(matched)] = full[rs] / s[matched, None]
        layer_w[tw.shape[0] :] = full[extra]
        layer_b = None
        if rb is not None:
            layer_b = np.zeros(tw.shape[0] + extra.size)
            layer_b[np.flatnonzero(matched)] = rb[rs] / s[matched]
            layer_b[tw.shape[0] :] = rb[extra]
        weights.append(layer_w)
        biases.append(layer_b)

        for j in np.flatnonzero(dead_mask[i]):
            why = f"never active on {probe.shape[0]} Gaussian and uniform inputs"
            notes["dead"].append(NeuronNote(i, int(j), why))
        for j in np.flatnonzero(invisible_mask[i] & ~dead_mask[i]):
            notes["invisible"].append(NeuronNote(i, int(j), "all outgoing weights are zero"))
        for j in np.flatnonzero(~matched & ~dead_mask[i] & ~invisible_mask[i]):
            best = float(np.max(cos[j])) if cos.shape[1] else math.nan
            notes["ut"].append(
                NeuronNote(
                    i, int(j), f"no recovered neuron at cosine >= {min_cosine} (best {best:.3g})"
                )
            )
        for r in extra:
            k = int(np.argmin(cos[:, r])) if cos.shape[0] else -1
            if k >= 0 and cos[k, r] <= -min_cosine:
                why = f"matches truth neuron {k} with a negative scale (wrong sign)"
            else:
                best = float(np.max(cos[:, r])) if cos.shape[0] else math.nan
                why = f"no truth neuron at cosine >= {min_cosine} (best {best:.3g})"
            notes["ur"].append(NeuronNote(i, int(r), why))

        perms.append(match)
        scales.append(s)
        extra_list.append(extra)
        perm, scale, extras = match, np.where(matched, s, 0.0), extra
        usable = matched & ~dead_mask[i]

    aligned = ReLUNet(weights, biases, output_relu=recovered.output_relu)
    return Alignment(
        permutations=tuple(perms),
        scales=tuple(scales),
        extras=tuple(extra_list),
        aligned=aligned,
        dead=tuple(notes["dead"]),
        invisible=tuple(notes["invisible"]),
        unmatched_truth=tuple(notes["ut"]),
        unmatched_recovered=tuple(notes["ur"]),
        dead_mask=tuple(dead_mask),
        invisible_mask=tuple(invisible_mask),
    )


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
