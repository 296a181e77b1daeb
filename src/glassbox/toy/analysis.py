"""Neuron and feature statistics of toy models, from plain float64 arrays.

Everything here takes weights as arrays, never a torch model, so the same analysis runs
on a trained instance and on a network reconstructed from queries. A reconstruction
has its hidden neurons in arbitrary order and at arbitrary positive scale (``W1`` row
times ``a``, ``W2`` column over ``a`` computes the same function), so every function
first scales each neuron so that its largest ``|W1|`` weight is 1 (the paper's footnote
15) and reports in terms of feature indices, never neuron positions.

Conventions: ``W1`` is ``(m, n)`` (features to neurons), ``W2`` is ``(n, m)``, ``b`` is
``(n,)``; the model is ``ReLU(W2 ReLU(W1 x) + b)``. A tied model passes ``W2 = W1.T``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from glassbox.toy.geometry import (
    f64,
    superposition,
)

Array = NDArray[np.float64]

#: A neuron reads a feature when its normalised ``|W1|`` weight is at least this.
READ_THRESHOLD = 0.1
#: A neuron is dead when ``max|W1 row| * max|W2 column|`` (scale-free) is below this.
DEAD_THRESHOLD = 1e-2
#: A feature's abs(x) (or x) counts as computed on one sign when the relative squared
#: error of its own output on single-feature inputs is below this.
COMPUTED_THRESHOLD = 0.1
#: Inputs ``t * e_i`` used to test one feature, per sign.
PROBE_VALUES = (0.25, 0.5, 0.75, 1.0)
#: A feature (one sign) is computed by a dedicated neuron when that one monosemantic neuron
#: carries at least this share of the feature's positive output.
PAIR_SHARE = 0.9
#: Neurons below this share of a feature's positive output are not listed as serving it.
SERVING_SHARE = 0.05
#: A weight is learned when training moved it by this fraction of its size (see learned_mask) ...
LEARNED_FRACTION = 0.5
#: ... or when its path to its own output is this large and moved by this fraction.
PATH_MIN, PATH_FRACTION = 0.1, 0.25

FEATURE_CLASSES = ("pair", "redundant", "one_sign", "superposition", "not_represented")


def normalize_neurons(W1: ArrayLike, W2: ArrayLike) -> tuple[Array, Array, Array]:
    """Scale each neuron so ``max|W1 row| = 1`` (``W2`` column scaled inversely); returns ``(W1, W2, scale)``.

    A neuron whose ``W1`` row is all zero keeps scale 1.
    """
    w1, w2 = f64(W1), f64(W2)
    scale = np.abs(w1).max(axis=1)
    scale = np.where(scale > 0, scale, 1.0)
    return w1 / scale[:, None], w2 * scale[None, :], scale


@dataclass(frozen=True)
class Neuron:
    """One hidden neuron after normalisation (feature indices, not positions, are meaningful)."""

    index: int
    role: str  # "monosemantic", "polysemantic", "untrained" or "dead"
    primary: int  # feature with the largest |W1| weight (-1 when dead)
    sign: int  # sign of that weight: +1 computes ReLU(x_i), -1 computes ReLU(-x_i)
    reads: tuple[int, ...]  # learned features with |W1| >= threshold, strongest first
    read_weights: tuple[float, ...]  # their normalised W1 weights (signed)
    writes: tuple[int, ...]  # outputs with |W2| >= threshold * max|W2 column|, strongest first
    write_weights: tuple[float, ...]  # their normalised W2 weights (signed)
    strength: float  # max|W1 row| * max|W2 column|: scale-free size of the neuron's effect
    leftovers: tuple[int, ...] = ()  # features with |W1| >= threshold still at their initial value


def learned_mask(
    W1: ArrayLike, W2: ArrayLike, init: tuple[ArrayLike, ArrayLike] | None
) -> NDArray[np.bool_]:
    """Which ``W1`` weights training made: all of them without ``init = (W1_init, W2_init)``.

    With the initial weights, weight ``W1[k, i]`` is *learned* when

    - it moved from its initial value by at least :data:`LEARNED_FRACTION` of its size and
      by at least one standard deviation of the initial ``W1`` (the size of a random
      initial weight: Adam's noise moves every weight somewhat, even in a stalled model), or
    - its path to its own output, ``W1[k, i] W2[i, k]`` (scale-free), is at least
      :data:`PATH_MIN` and moved by at least :data:`PATH_FRACTION` of its size.

    The others are leftovers of the random initialisation, which a stalled model keeps;
    they count neither as reads nor as superposition.
    """
    w1 = f64(W1)
    if init is None:
        return np.ones(w1.shape, dtype=bool)
    w1_0, w2_0 = f64(init[0]), f64(init[1])
    moved = np.abs(w1 - w1_0)
    weight = (moved >= LEARNED_FRACTION * np.abs(w1)) & (moved >= w1_0.std())
    path, path_0 = w1 * f64(W2).T, w1_0 * w2_0.T
    big_path = (np.abs(path) >= PATH_MIN) & (np.abs(path - path_0) >= PATH_FRACTION * np.abs(path))
    return np.asarray(weight | big_path)


def neuron_census(
    W1: ArrayLike,
    W2: ArrayLike,
    threshold: float = READ_THRESHOLD,
    dead_threshold: float = DEAD_THRESHOLD,
    signed_inputs: bool = True,
    init: tuple[ArrayLike, ArrayLike] | None = None,
) -> list[Neuron]:
    """Per neuron: which features it reads and writes, how strongly, and mono- or polysemantic.

    With ``signed_inputs=False`` (inputs in [0, 1]) a neuron with no positive ``W1``
    weight never fires and counts as dead. With ``init = (W1_init, W2_init)`` (the weights
    training started from) only learned weights count as reads (see :func:`learned_mask`); a live neuron
    whose every large weight is a leftover is ``untrained``.
    """
    w1_raw, w2_raw = f64(W1), f64(W2)
    w1, w2, _ = normalize_neurons(w1_raw, w2_raw)
    learned = learned_mask(w1_raw, w2_raw, init)
    strength = np.abs(w1_raw).max(axis=1) * np.abs(w2_raw).max(axis=0)
    neurons = []
    for k in range(w1.shape[0]):
        row, col = w1[k], w2[:, k]
        never_fires = not signed_inputs and not np.any(row > 0)
        if strength[k] < dead_threshold or never_fires:
            neurons.append(Neuron(k, "dead", -1, 0, (), (), (), (), float(strength[k])))
            continue
        large = np.abs(row) >= threshold
        reads = np.flatnonzero(large & learned[k])
        reads = reads[np.argsort(-np.abs(row[reads]), kind="stable")]
        leftovers = np.flatnonzero(large & ~learned[k])
        leftovers = leftovers[np.argsort(-np.abs(row[leftovers]), kind="stable")]
        col_max = np.abs(col).max()
        writes = np.flatnonzero(np.abs(col) >= threshold * col_max)
        writes = writes[np.argsort(-np.abs(col[writes]), kind="stable")]
        primary = int(reads[0]) if len(reads) else int(np.abs(row).argmax())
        role = ("untrained", "monosemantic")[len(reads)] if len(reads) < 2 else "polysemantic"
        neurons.append(
            Neuron(
                index=k,
                role=role,
                primary=primary,
                sign=1 if row[primary] > 0 else -1,
                reads=tuple(int(i) for i in reads),
                read_weights=tuple(float(row[i]) for i in reads),
                writes=tuple(int(j) for j in writes),
                write_weights=tuple(float(col[j]) for j in writes),
                strength=float(strength[k]),
                leftovers=tuple(int(i) for i in leftovers),
            )
        )
    return neurons


def single_feature_outputs(
    W1: ArrayLike, W2: ArrayLike, b: ArrayLike, t: ArrayLike, hidden_relu: bool = True
) -> Array:
    """``out[i, j]``: output ``i`` of the model on the input ``t[j] * e_i`` (feature ``i`` alone)."""
    w1, w2, bias, tt = f64(W1), f64(W2), f64(b), f64(t)
    # Pre-activations of neuron k for input t * e_i: W1[k, i] * t, shape (n, T, m).
    pre = w1.T[:, None, :] * tt[None, :, None]
    h = np.maximum(pre, 0.0) if hidden_relu else pre
    own = np.einsum("itk,ik->it", h, w2)  # only output i of each input e_i
    return np.maximum(own + bias[:, None], 0.0)


def computed_error(
    W1: ArrayLike,
    W2: ArrayLike,
    b: ArrayLike,
    sign: int,
    target: str = "abs",
    hidden_relu: bool = True,
) -> Array:
    """Per feature, relative squared error of its own output on ``t * e_i`` with ``t`` of one sign.

    The target is ``|t|`` for ``target="abs"`` and ``t`` for ``"identity"``.
    """
    t = sign * np.asarray(PROBE_VALUES)
    want = np.abs(t) if target == "abs" else t
    got = single_feature_outputs(W1, W2, b, t, hidden_relu)
    return np.asarray(((got - want) ** 2).sum(axis=1) / (want**2).sum())


@dataclass(frozen=True)
class Feature:
    """How one feature's output is computed."""

    index: int
    how: str  # one of FEATURE_CLASSES
    error_pos: float  # relative squared error for positive inputs
    error_neg: float  # same for negative inputs (nan for unsigned models)
    neurons_pos: tuple[int, ...]  # neurons carrying >= SERVING_SHARE of output i for x_i > 0
    neurons_neg: tuple[int, ...]  # same for x_i < 0
    share_pos: tuple[float, ...] = ()  # their shares of the positive output, largest first
    share_neg: tuple[float, ...] = ()


def output_shares(W1: ArrayLike, W2: ArrayLike, sign: int, hidden_relu: bool = True) -> Array:
    """``share[k, i]``: neuron ``k``'s share of feature ``i``'s own positive output on inputs of one sign.

    On the input ``t e_i`` (``sign * t > 0``) neuron ``k`` adds ``ReLU(W1[k, i] t) W2[i, k]``
    to output ``i``, which is ``|t|`` times ``ReLU(sign W1[k, i]) W2[i, k]``: a product that
    does not change when a neuron is rescaled. Shares are of the positive contributions;
    neurons that write output ``i`` down get 0. A feature nothing writes up has all-zero shares.
    """
    w1, w2 = f64(W1), f64(W2)
    pre = sign * w1 if not hidden_relu else np.maximum(sign * w1, 0.0)
    contribution = np.maximum(pre * w2.T, 0.0)  # (m, n)
    total = contribution.sum(axis=0)
    return np.asarray(contribution / np.where(total > 0, total, 1.0))


def feature_computation(
    W1: ArrayLike,
    W2: ArrayLike,
    b: ArrayLike,
    signed_inputs: bool = True,
    target: str = "abs",
    hidden_relu: bool = True,
    threshold: float = READ_THRESHOLD,
    computed_threshold: float = COMPUTED_THRESHOLD,
    init: tuple[ArrayLike, ArrayLike] | None = None,
) -> list[Feature]:
    """Per feature: a dedicated +/- pair, redundant dedicated neurons, one sign only, superposition, or not represented.

    A sign is *computed* when the feature's own output matches the target on inputs of
    that sign alone. A feature computed on every sign it takes is ``pair`` when, on every
    sign, one monosemantic neuron carries at least :data:`PAIR_SHARE` of the feature's
    positive output (``ReLU(x) + ReLU(-x)``); ``redundant`` when monosemantic neurons
    together carry that share but no single one does; otherwise ``superposition``
    (polysemantic neurons carry a real part of it). A polysemantic neuron that adds a few
    percent to a clean pair does not change the class. Unsigned models have one sign, so
    there ``pair`` means one dedicated neuron.
    """
    census = neuron_census(W1, W2, threshold, signed_inputs=signed_inputs, init=init)
    mono = np.array([nr.role == "monosemantic" for nr in census])
    signs = (1, -1) if signed_inputs else (1,)
    errors = {s: computed_error(W1, W2, b, s, target, hidden_relu) for s in signs}
    shares = {s: output_shares(W1, W2, s, hidden_relu) for s in signs}
    features = []
    for i in range(f64(W1).shape[1]):
        serving: dict[int, tuple[int, ...]] = {}
        served: dict[int, tuple[float, ...]] = {}
        dedicated, mono_total = [], []
        for s in signs:
            col = shares[s][:, i]
            order = np.argsort(-col, kind="stable")
            order = order[col[order] >= SERVING_SHARE]
            serving[s] = tuple(int(k) for k in order)
            served[s] = tuple(float(col[k]) for k in order)
            top = int(np.argmax(col))
            dedicated.append(bool(mono[top] and col[top] >= PAIR_SHARE))
            mono_total.append(float(col[mono].sum()))
        done = [s for s in signs if errors[s][i] < computed_threshold]
        if not done:
            how = "not_represented"
        elif len(done) < len(signs):
            how = "one_sign"
        elif all(dedicated):
            how = "pair"
        elif all(t >= PAIR_SHARE for t in mono_total):
            how = "redundant"
        else:
            how = "superposition"
        features.append(
            Feature(
                index=i,
                how=how,
                error_pos=float(errors[1][i]),
                error_neg=float(errors[-1][i]) if signed_inputs else float("nan"),
                neurons_pos=serving[1],
                neurons_neg=serving.get(-1, ()),
                share_pos=served[1],
                share_neg=served.get(-1, ()),
            )
        )
    return features


@dataclass(frozen=True)
class Motif:
    """Asymmetric superposition: one neuron stores ``strong`` and ``weak`` with reciprocal output weights."""

    neuron: int
    strong: int  # feature with the large input weight and small output weight
    weak: int  # feature with the small input weight and large output weight
    ratio: float  # |W1 strong| / |W1 weak|
    inhibitors: tuple[int, ...]  # neurons that read `strong` the same way and write `weak` down


def asymmetric_motifs(
    W1: ArrayLike,
    W2: ArrayLike,
    threshold: float = READ_THRESHOLD,
    min_ratio: float = 2.0,
    init: tuple[ArrayLike, ArrayLike] | None = None,
) -> list[Motif]:
    """Find the paper's asymmetric superposition motif, with any inhibitor neurons.

    A neuron qualifies when its two largest input weights differ by ``min_ratio`` or more
    and it writes both features' outputs up, the weak one by at least ``min_ratio``
    times more than the strong one (reciprocal weights, so only ``strong`` interferes).
    An inhibitor reads ``strong`` with the same sign and writes ``weak``'s output down.
    """
    census = neuron_census(W1, W2, threshold, init=init)
    w1, w2, _ = normalize_neurons(W1, W2)
    motifs = []
    for nr in census:
        if nr.role != "polysemantic":
            continue
        strong, weak = nr.reads[0], nr.reads[1]
        ratio = abs(w1[nr.index, strong] / w1[nr.index, weak])
        out_strong, out_weak = w2[strong, nr.index], w2[weak, nr.index]
        if ratio < min_ratio or out_strong <= 0 or out_weak < min_ratio * out_strong:
            continue
        sign = np.sign(w1[nr.index, strong])
        inhibitors = tuple(
            other.index
            for other in census
            if other.index != nr.index
            and other.role in ("monosemantic", "polysemantic")
            and sign * w1[other.index, strong] >= threshold
            and w2[weak, other.index] < 0
        )
        motifs.append(Motif(nr.index, strong, weak, float(ratio), inhibitors))
    return motifs


def constant_baseline(probability: ArrayLike, importance: ArrayLike) -> Array:
    """Loss of the best constant output, per instance: ``mean_i I_i Var(y_i)`` with ``Var = p/3 - p^2/4``.

    Both targets (``|x|`` for ``x ~ U[-1, 1]`` and ``x ~ U[0, 1]``) are 0 with probability
    ``1 - p`` and otherwise ``U[0, 1]``. Losses at different sparsities are not comparable
    (the paper's footnote 17); their ratio to this baseline is.
    """
    p = np.atleast_2d(f64(probability))
    return np.asarray((f64(importance) * (p / 3.0 - p**2 / 4.0)).mean(axis=1))


def feature_superposition(
    W1: ArrayLike, W2: ArrayLike, init: tuple[ArrayLike, ArrayLike] | None = None
) -> Array:
    """Per feature, :func:`superposition` of the normalised, learned ``W1`` columns (leftovers zeroed).

    This is what colours the neuron stack plot, as the paper colours features: 0 for a
    feature no other feature shares a neuron with, 1 or more when others drive its
    neurons as strongly as it does.
    """
    w1 = f64(W1)
    norm, _, _ = normalize_neurons(w1, np.zeros(w1.shape[::-1]))
    return superposition(np.where(learned_mask(w1, W2, init), norm, 0.0))
