"""Inputs for the output fit: Gaussian, beside every hyperplane, and where rare outputs are on."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from glassbox.extract.prefix import Prefix
from glassbox.oracle.core import Oracle

Array = NDArray[np.float64]

# Doubling rounds of extra samples for outputs on at too few points (n, 2n, ... 16n).
RARE_OUTPUT_ROUNDS = 5


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
    seeds = [p for pts in on_points.values() for p in pts]
    for k in range(RARE_OUTPUT_ROUNDS):
        # Only an output seen exactly 0 can be a ReLU that is off: one never 0 is linear
        # on every sample, negative or not, and needs no more.
        short = (np.sum(Y > 0, axis=0) < need + 8) & np.any(Y == 0.0, axis=0)
        short &= np.array([bool(on_points.get(j)) for j in range(Y.shape[1])]) | np.any(
            Y > 0, axis=0
        )
        if not short.any() or not np.any(Y <= 0):
            break
        size = rows * 2**k
        pool = [p for j in np.flatnonzero(short) for p in on_points.get(int(j), [])] or seeds
        if not pool:
            break
        S = np.array(pool)[rng.integers(0, len(pool), size=size)]
        spread = scale * 4.0 ** rng.uniform(-2, 1, size=(size, 1))
        X2 = S + spread * rng.normal(size=S.shape)
        X, Y = np.vstack([X, X2]), np.vstack([Y, oracle.query(X2)])
    return X, Y


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
    from glassbox.extract.precision import onto_plane

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
