"""Inputs for the output fit: Gaussian, beside every hyperplane, and where rare outputs are on."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from glassbox.extract.precision import onto_plane
from glassbox.extract.prefix import Prefix
from glassbox.extract.signs.last_layer import LastLayerFit, fit_last_layer
from glassbox.extract.unmeasured import reach
from glassbox.oracle.core import Oracle

Array = NDArray[np.float64]

# Doubling rounds of extra samples for outputs on at too few points (n, 2n, ... 16n).
RARE_OUTPUT_ROUNDS = 5
# Input scales (times the configured one) probed for outputs on nowhere in the first sample.
FAR = (4.0, 16.0, 64.0)
# Free draws per scale, and asked points per output, looking for an output ReLU rarely off.
NEGATIVE_DRAWS = 4096
NEGATIVE_ASKS = 8


def fit_sample(
    oracle: Oracle,
    prefix: Prefix,
    theta: Array,
    anchors: Array,
    on_points: dict[int, list[Array]],
    rng: np.random.Generator,
    scale: float,
    per_anchor: int = 8,
) -> tuple[Array, Array]:
    """Queried ``(X, Y)`` on which every output that was ever seen on has enough on-rows.

    ``anchors[j]`` lies on neuron ``j``'s hyperplane: ``per_anchor`` points scattered around
    it put the neuron on both sides, which a plane far from the bulk of the Gaussian never
    gets (and without which its sign is poorly conditioned in the fit).
    """
    n = theta.shape[0]
    need = n + prefix.width + 1
    rows = max(3 * need, 256)
    near = np.repeat(anchors.reshape(-1, prefix.input_dim), per_anchor, axis=0)
    near = near + scale * 4.0 ** rng.uniform(-3, 0, size=(near.shape[0], 1)) * rng.normal(
        size=near.shape
    )
    X = np.vstack([rng.normal(0.0, scale, size=(rows, prefix.input_dim)), near])
    Y = oracle.query(X)
    if np.any(Y == 0.0):
        X, Y = _look_further(oracle, X, Y, on_points, rng, scale, rows)
    for k in range(RARE_OUTPUT_ROUNDS):
        on = [list(on_points.get(j, [])) + list(X[Y[:, j] > 0]) for j in range(Y.shape[1])]
        # Only an output seen exactly 0 can be a ReLU that is off: one never 0 is linear
        # on every sample, negative or not, and needs no more.
        short = np.array([len(p) > 0 for p in on]) & (np.sum(Y > 0, axis=0) < need + 8)
        short &= np.any(Y == 0.0, axis=0)
        if not short.any():
            break
        size = rows * 2**k
        pool = [p for j in np.flatnonzero(short) for p in on[int(j)]]
        S = np.array(pool)[rng.integers(0, len(pool), size=size)]
        spread = scale * 4.0 ** rng.uniform(-2, 1, size=(size, 1))
        X2 = S + spread * rng.normal(size=S.shape)
        X, Y = np.vstack([X, X2]), np.vstack([Y, oracle.query(X2)])
    return X, Y


def _look_further(
    oracle: Oracle,
    X: Array,
    Y: Array,
    on_points: dict[int, list[Array]],
    rng: np.random.Generator,
    scale: float,
    rows: int,
) -> tuple[Array, Array]:
    """Inputs ever further out until every output is on somewhere (or the scales run out).

    An output on nowhere in the sample may be on only where its bias no longer dominates:
    far out a ReLU net is nearly positively homogeneous, so each output is on in a cone
    if anywhere. ``rows`` Gaussian inputs per scale, at ``FAR`` times the input scale.
    """
    for far in FAR:
        never = ~np.any(Y > 0, axis=0) & np.array([not on_points.get(j) for j in range(Y.shape[1])])
        if not never.any():
            break
        X2 = rng.normal(0.0, far * scale, size=(rows, X.shape[1]))
        X, Y = np.vstack([X, X2]), np.vstack([Y, oracle.query(X2)])
    return X, Y


def _where_negative(
    oracle: Oracle, prefix: Prefix, fit: LastLayerFit, rng: np.random.Generator, scale: float
) -> tuple[Array, Array]:
    """Queried inputs where the plain fit predicts an output below zero (none: empty).

    An output ReLU that is almost never off leaves no zero in the samples, and the plain
    fit is exact on them; it then predicts negative values where the black box, if it
    has the ReLU, answers 0. Candidates are drawn on the recovered layers (no queries);
    the most negative ``NEGATIVE_ASKS`` per output are asked.
    """
    d = prefix.input_dim
    empty = np.zeros((0, d)), np.zeros((0, 0))
    if fit.rows is None or fit.out_weights is None or fit.out_bias is None:
        return empty
    Z = np.vstack([rng.normal(0.0, f * scale, size=(NEGATIVE_DRAWS, d)) for f in (0.25, 1.0, 4.0)])
    Z = np.vstack([Z, np.zeros((1, d))])
    h = prefix.state(Z)
    pred = np.maximum(h @ fit.rows[:, :-1].T + fit.rows[:, -1], 0.0) @ fit.out_weights.T
    pred += fit.out_bias
    pick = {
        int(i)
        for o in range(pred.shape[1])
        for i in np.argsort(pred[:, o])[:NEGATIVE_ASKS]
        if pred[i, o] < 0
    }
    if not pick:
        return empty
    X2 = Z[sorted(pick)]
    return X2, oracle.query(X2)


def straddle(
    oracle: Oracle,
    prefix: Prefix,
    theta: Array,
    X: Array,
    Y: Array,
    unseen: NDArray[np.bool_],
    rng: np.random.Generator,
    scale: float,
    per_pair: int = 3,
) -> tuple[Array, Array]:
    """More samples where output ``o`` is on, a hair either side of plane ``j``, for ``unseen[o, j]``.

    An output on only far from a plane sees that neuron from one side, where it is
    linear: its outgoing weight is then not measured. Its on-points moved onto the plane
    (within the prefix region) and nudged both ways are.
    """
    out = []
    for o, j in zip(*np.nonzero(unseen), strict=True):
        on = np.flatnonzero(Y[:, o] > 0)
        for i in rng.permutation(on)[:per_pair]:
            p = onto_plane(prefix, theta[j], X[i])
            if p is None:
                continue
            g = prefix.normal(theta[j], p)
            out += [p + 1e-3 * scale * g, p - 1e-3 * scale * g]
    if not out:
        return X, Y
    X2 = np.array(out)
    return np.vstack([X, X2]), np.vstack([Y, oracle.query(X2)])


def output_fit(
    oracle: Oracle,
    prefix: Prefix,
    theta: Array,
    anchors: Array,
    on_points: dict[int, list[Array]],
    rng: np.random.Generator,
    scale: float,
    eps: float,
    output_relu: bool | None,
    saw_zero: bool,
    sample: tuple[Array, Array] | None = None,
) -> tuple[LastLayerFit, bool, tuple[Array, Array]]:
    """The output fit on layer rows ``theta`` and whether it has an output ReLU.

    ``output_relu`` None means unknown. Exact zeros alone do not mean an output ReLU (a
    bias-free net is 0 wherever all its last neurons are off): the plain fit is tried
    first, the ReLU one if it fails; then, for each (output, neuron) the output's
    on-rows see from one side only, samples are added a hair either side of the plane
    where the output is on (:func:`straddle`), twice at most. ``sample`` (inputs, answers)
    is fitted again without new queries for the first fit; the samples last fitted are
    returned with the fit.
    """
    if sample is None:
        with oracle.phase("outputs"):
            sample = fit_sample(oracle, prefix, theta, anchors, on_points, rng, scale, per_anchor=8)
    X, Y = sample
    if output_relu is not None:
        fit = fit_last_layer(prefix, theta, X, Y, output_relu=output_relu, eps=eps)
        if output_relu:
            fit, (X, Y) = _measure_rest(oracle, prefix, theta, fit, (X, Y), rng, scale, eps)
        return fit, output_relu, (X, Y)
    fit = fit_last_layer(prefix, theta, X, Y, output_relu=False, eps=eps)
    if fit.exact:
        # An output ReLU rarely off fits plainly: where the fit predicts a negative output, ask.
        with oracle.phase("outputs"):
            X2, Y2 = _where_negative(oracle, prefix, fit, rng, scale)
        if not np.any(Y2 == 0.0):
            return fit, False, (X, Y)
        X, Y = np.vstack([X, X2]), np.vstack([Y, Y2])
    elif not (saw_zero or bool(np.any(Y == 0.0))):
        return fit, False, (X, Y)
    with_relu = fit_last_layer(prefix, theta, X, Y, output_relu=True, eps=eps)
    for _ in range(2):
        if not with_relu.exact or with_relu.seen is None:
            return fit, False, (X, Y)
        on = np.any(Y > 0, axis=0)
        unseen = ~with_relu.seen & on[:, None]
        if not unseen.any():
            break
        with oracle.phase("outputs"):
            X, Y = straddle(oracle, prefix, theta, X, Y, unseen, rng, scale)
        with_relu = fit_last_layer(prefix, theta, X, Y, output_relu=True, eps=eps)
    with_relu, (X, Y) = _measure_rest(oracle, prefix, theta, with_relu, (X, Y), rng, scale, eps)
    return with_relu, True, (X, Y)


def _measure_rest(
    oracle: Oracle,
    prefix: Prefix,
    theta: Array,
    fit: LastLayerFit,
    sample: tuple[Array, Array],
    rng: np.random.Generator,
    scale: float,
    eps: float,
) -> tuple[LastLayerFit, tuple[Array, Array]]:
    """The fit again with points past each unmeasured weight's plane (:func:`unmeasured.reach`)."""
    if not (fit.exact and fit.unmeasured):
        return fit, sample
    with oracle.phase("outputs"):
        X, Y = reach(oracle, prefix, theta, fit, *sample, rng, scale)
    if X.shape[0] == sample[0].shape[0]:
        return fit, sample
    refit = fit_last_layer(prefix, theta, X, Y, output_relu=True, eps=eps)
    # A refit that is no longer exact is not trusted over the partial one.
    return (refit, (X, Y)) if refit.exact and refit.rows is not None else (fit, sample)
