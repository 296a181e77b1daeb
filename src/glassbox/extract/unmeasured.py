"""Measure outgoing weights the output fit never saw: just past the neuron's plane, where the output is on.

With an output ReLU, output ``k`` may be on only where neuron ``j`` is off in every sample:
its weight ``W2[k, j]`` then never enters the fit. On ``j``'s (bent) hyperplane ``h_j = 0``
the output's pre-activation does not depend on that weight, so the partial fit predicts it
there exactly. The prefix is known, so points on the plane where output ``k`` is predicted
clearly on are found at no query cost (sample points projected onto the plane, then walked
along it uphill in the prediction); a few queries a small step past the plane, on ``j``'s
on-side, put ``j`` on where ``k`` is on, and the refit measures the weight. Where no point
of the plane has output ``k`` on, nothing is queried and the weight stays unmeasured.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from glassbox.extract.precision import onto_plane
from glassbox.extract.prefix import Prefix
from glassbox.extract.signs.last_layer import LastLayerFit
from glassbox.oracle.core import Oracle

Array = NDArray[np.float64]

# Sample points projected onto the plane per pair (a row cap), and how many are walked.
STARTS = 64
WALKED = 4
# Steps of the walk along the plane per start, and the first step (times the input scale).
WALK_STEPS = 24
FIRST_STEP = 0.5
# Points on the plane used per pair, and steps past it per point: the query cap per pair
# is their product (a step too long may turn the output off; a shorter one is kept).
POINTS = 8
STEPS = (0.25, 0.05, 0.01)
# Unmeasured pairs searched per fit (the rest stay unmeasured, and the run says so).
PAIRS = 64
# The predicted pre-activation, relative to the output's largest answer, that counts as on,
# and where a walk stops (further out the fit would mix scales and lose digits).
CLEAR = 1e-3
GOAL = 0.25


def predicted(prefix: Prefix, fit: LastLayerFit, k: int, X: Array) -> Array:
    """Output ``k``'s pre-activation under the (partial) fit at inputs ``X`` (no queries)."""
    assert fit.rows is not None and fit.out_weights is not None and fit.out_bias is not None
    h = prefix.state(X)
    act = np.maximum(h @ fit.rows[:, :-1].T + fit.rows[:, -1], 0.0)
    return np.asarray(act @ fit.out_weights[k] + fit.out_bias[k], dtype=np.float64)


def _uphill(prefix: Prefix, fit: LastLayerFit, k: int, theta_j: Array, x: Array) -> Array:
    """The gradient of output ``k``'s prediction at ``x``, along neuron ``j``'s plane."""
    assert fit.rows is not None and fit.out_weights is not None
    J, c = prefix.local_map(x)
    u = fit.rows[:, :-1] @ (J @ x + c) + fit.rows[:, -1]
    g = J.T @ (fit.rows[:, :-1].T @ (fit.out_weights[k] * (u > 0)))
    n = J.T @ theta_j[:-1]
    nn = float(n @ n)
    return np.asarray(g - (g @ n / nn) * n if nn > 0 else g, dtype=np.float64)


def _walk(
    prefix: Prefix, fit: LastLayerFit, k: int, theta_j: Array, p: Array, scale: float, goal: float
) -> Array:
    """From ``p`` on the plane, steps (at most ``scale``) along it while output ``k``'s
    prediction rises, until it reaches ``goal``."""
    best = float(predicted(prefix, fit, k, p[None])[0])
    step = FIRST_STEP * scale
    for _ in range(WALK_STEPS):
        if best >= goal:
            break
        g = _uphill(prefix, fit, k, theta_j, p)
        norm = float(np.linalg.norm(g))
        if norm == 0:
            break
        q = onto_plane(prefix, theta_j, p + step * g / norm)
        value = -np.inf if q is None else float(predicted(prefix, fit, k, q[None])[0])
        if q is not None and value > best:
            p, best, step = q, value, min(2.0 * step, scale)
        else:
            step /= 4.0
    return p


def on_plane(
    prefix: Prefix,
    fit: LastLayerFit,
    k: int,
    theta_j: Array,
    X: Array,
    Y: Array,
    rng: np.random.Generator,
    scale: float,
) -> list[Array]:
    """Points on neuron ``j``'s plane where output ``k`` is predicted clearly on (no queries)."""
    on = np.flatnonzero(Y[:, k] > 0)
    pool = np.concatenate([rng.permutation(on), rng.permutation(X.shape[0])])[:STARTS]
    starts = [p for p in (onto_plane(prefix, theta_j, X[i]) for i in pool) if p is not None]
    if not starts:
        return []
    P = np.array(starts)
    top = max(float(np.max(Y[:, k])), 1e-300)
    order = np.argsort(-predicted(prefix, fit, k, P))[:WALKED]
    walked = [_walk(prefix, fit, k, theta_j, P[i], scale, GOAL * top) for i in order]
    P = np.vstack([P, walked])
    # The clearly-on points nearest the origin: far ones would mix scales in the fit.
    keep = np.flatnonzero(predicted(prefix, fit, k, P) > CLEAR * top)
    return [P[i] for i in keep[np.argsort(np.linalg.norm(P[keep], axis=1))][:POINTS]]


def reach(
    oracle: Oracle,
    prefix: Prefix,
    theta: Array,
    fit: LastLayerFit,
    X: Array,
    Y: Array,
    rng: np.random.Generator,
    scale: float,
) -> tuple[Array, Array]:
    """``(X, Y)`` with queried points just past neuron ``j``'s plane where output ``k`` is on,
    for each unmeasured ``(k, j)`` of ``fit`` (none found: unchanged)."""
    if fit.signs is None:
        return X, Y
    out, outs = [], []
    for k, j in fit.unmeasured[:PAIRS]:
        sign = float(fit.signs[j])
        for p in on_plane(prefix, fit, k, theta[j], X, Y, rng, scale):
            g = sign * prefix.normal(theta[j], p)
            steps = np.array([p + t * scale * g for t in STEPS])
            # A step that crossed a prefix plane may leave the neuron off: not worth a query.
            past = steps[sign * (prefix.state(steps) @ theta[j, :-1] + theta[j, -1]) > 0]
            out += list(past)
            outs += [k] * len(past)
    if not out:
        return X, Y
    X2 = np.array(out)
    Y2 = oracle.query(X2)
    # Only points where the output did answer on can measure its weight: the rest are dropped.
    kept = Y2[np.arange(len(outs)), outs] > 0
    return np.vstack([X, X2[kept]]), np.vstack([Y, Y2[kept]])
