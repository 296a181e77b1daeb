"""The lone hidden layer's rows re-measured with large steps that provably cross no plane.

Once the output fit says the first layer is also the last, every boundary of ``f`` in
input space is one of its hyperplanes (or an output switching off, where that output is
left out). Gradients on both sides of plane ``j`` can then be taken with per-axis steps
as long as half the room to the nearest plane *in the direction stepped*, so rounding
barely matters; their jump is ``c_j w_j``. Weak neurons (small outgoing weights, small
jumps) are measured again at other points until their estimated error reaches
:data:`TARGET_ERROR` (at most :data:`MAX_ROUNDS` times), and the offset is taken from the
kink re-found on a short line along the normal through the plane's point nearest the
origin, where the net's terms, and so its rounding, are smallest.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from glassbox.extract.kinks import find_kinks
from glassbox.extract.neurons import Neuron
from glassbox.extract.precision import refine_layer
from glassbox.extract.prefix import Prefix
from glassbox.extract.records import ExtractConfig
from glassbox.oracle.core import Oracle

Array = NDArray[np.float64]

# Points of a plane tried per measurement (no queries: the planes are known).
CANDIDATES = 256
# A step may use this fraction of the room to the nearest plane in its direction.
SAFETY = 0.5
# Steps and the distance off the plane are capped at this many input scales.
CAP = 4.0
# Estimated relative row error to aim for (the estimate is pessimistic: rows measured
# at 2^-36 verify near 2^-41), and the most measurements per plane.
TARGET_ERROR = 2.0**-36
MAX_ROUNDS = 2
# Rows this close (1 - |cosine|) lie on one hyperplane: a +/- pair, not a neighbour.
SAME_PLANE = 1e-9


def _same_plane(theta: Array, j: int) -> NDArray[np.bool_]:
    """Rows on plane ``j``'s hyperplane (itself, and the other half of a +/- pair)."""
    unit = theta / np.linalg.norm(theta, axis=1, keepdims=True)
    return np.asarray(np.abs(np.abs(unit @ unit[j]) - 1.0) <= SAME_PLANE, dtype=bool)


def axis_steps(x: Array, W: Array, b: Array, cap: float) -> Array:
    """Signed per-axis steps from ``x`` that stay :data:`SAFETY` inside every plane ``W h + b = 0``."""
    z = W @ x + b
    with np.errstate(divide="ignore", invalid="ignore"):
        hit = -z[:, None] / W  # the step along axis k that reaches plane i
    up = np.min(np.where(hit > 0, hit, np.inf), axis=0)
    down = np.min(np.where(hit < 0, -hit, np.inf), axis=0)
    room = np.minimum(np.maximum(up, down), cap)
    return np.asarray(SAFETY * np.where(up >= down, room, -room), dtype=np.float64)


def _measure(
    oracle: Oracle, W: Array, b: Array, j: int, p: Array, rho: float, cap: float, eps: float
) -> tuple[Array, float] | None:
    """Plane ``j``'s unit normal from gradients at ``p -/+ rho n``, and its estimated error."""
    d0 = W.shape[1]
    normal = W[j] / np.linalg.norm(W[j])
    bases = np.stack([p - rho * normal, p + rho * normal])
    X = np.repeat(bases[:, None, :], d0 + 1, axis=1)
    idx = np.arange(d0)
    for s in range(2):
        X[s, 1 + idx, idx] += axis_steps(bases[s], W, b, cap)
    taken = X[:, 1 + idx, idx] - bases  # the steps after rounding x + s
    F = oracle.query(X.reshape(-1, d0)).reshape(2, d0 + 1, -1)
    usable = np.all(F != 0.0, axis=(0, 1))
    if not usable.any():
        return None
    G = (F[:, 1:, usable] - F[:, :1, usable]) / taken[:, :, None]  # (2, d0, k)
    M = (G[1] - G[0]).T  # (k, d0): rank one, c w^T
    _, sv, Vt = np.linalg.svd(M, full_matrices=False)
    v = Vt[0] if Vt[0] @ W[j] >= 0 else -Vt[0]
    # One gradient entry errs by about 4 ulps of the largest answer over its step.
    noise = 4 * eps * float(np.max(np.abs(F))) / float(np.min(np.abs(taken)))
    return v, max(noise * np.sqrt(d0) / max(float(sv[0]), 1e-300), float(eps))


def _offset(
    oracle: Oracle, W: Array, b: Array, j: int, v: Array, scale: float, eps: float
) -> float | None:
    """The plane's offset ``-v . x*`` from its kink re-found near the point nearest the origin."""
    nw = float(np.linalg.norm(W[j]))
    foot = -(b[j] / nw) * (W[j] / nw)
    gaps = np.abs(W @ foot + b) / np.linalg.norm(W, axis=1)
    gaps[_same_plane(np.column_stack([W, b]), j)] = np.inf
    r = 0.5 * min(float(np.min(gaps)), scale)
    if not r > 0:
        return None
    (line,) = find_kinks(oracle, foot[None], v[None], -r, r, eps=eps)
    near = line.t[line.hidden]
    if near.size == 0:
        return None
    t = float(near[np.argmin(np.abs(near))])
    if abs(t) > 0.5 * r:
        return None
    return -float(v @ line.point(t))


def polish_single_layer(
    oracle: Oracle,
    theta: Array,
    points: Array,
    scale: float,
    eps: float = 2.0**-52,
    rng: np.random.Generator | None = None,
    which: list[int] | None = None,
) -> tuple[Array, Array]:
    """Rows of a lone hidden layer re-measured with large safe steps; returns rows and errors.

    ``points[j]`` is a kink of plane ``j`` (where candidates for its measurement start);
    a row keeps its old scale. Errors are the estimated relative errors of the normals
    (``inf``: not measured, e.g. every output that sees the plane is off near it). Only
    the rows ``which`` (default: all) are measured; the others are left as they are.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    n, m1 = theta.shape
    d0 = m1 - 1
    out = theta.copy()
    errors = np.full(n, np.inf)
    W, b = theta[:, :-1], theta[:, -1]
    norms = np.linalg.norm(W, axis=1)
    cap = CAP * scale
    for j in range(n) if which is None else which:
        normal = W[j] / norms[j]
        foot = -(b[j] / norms[j]) * normal
        half = CANDIDATES // 2
        cand = np.vstack(
            [
                points[j],
                points[j] + scale * rng.normal(size=(half, d0)),
                foot + scale * rng.normal(size=(half, d0)),
            ]
        )
        cand -= ((cand @ W[j] + b[j]) / norms[j])[:, None] * normal
        gaps = np.abs(cand @ W.T + b) / norms
        gaps[:, _same_plane(theta, j)] = np.inf
        margin = np.min(gaps, axis=1)
        # Rounding grows with the net's terms, which grow with |x|: the room per unit of it.
        score = np.minimum(margin, cap) / (np.linalg.norm(cand, axis=1) + scale)
        acc, weight = np.zeros(d0), 0.0
        for p_idx in np.argsort(-score)[:MAX_ROUNDS]:
            rho = 0.5 * min(float(margin[p_idx]), cap)
            got = _measure(oracle, W, b, j, cand[p_idx], rho, cap, eps)
            if got is None:
                continue
            v, err = got
            # Estimates weighted by their precision (inverse variance).
            acc += v / err**2
            weight += err**-2
            if weight**-0.5 <= TARGET_ERROR:
                break
        if weight == 0:
            continue
        v = acc / np.linalg.norm(acc)
        offset = _offset(oracle, W, b, j, v, scale, eps)
        if offset is None:
            offset = -float(v @ points[j])
        row = np.append(v, offset)
        out[j] = row * (np.linalg.norm(theta[j]) / np.linalg.norm(row))
        errors[j] = float(weight**-0.5)
    return out, errors


def polish_neurons(
    oracle: Oracle,
    neurons: list[Neuron],
    anchors: Array,
    config: ExtractConfig,
    eps: float,
    rng: np.random.Generator,
) -> int:
    """Polish the lone layer's neurons not yet refined, in place; returns how many were tried.

    Rows the polish cannot measure (every output that sees them off nearby) are refined
    from kinks instead (``precision.py``).
    """
    rough = [i for i, n in enumerate(neurons) if not n.refined]
    if not rough:
        return 0
    theta = np.array([n.theta for n in neurons])
    own = np.random.default_rng([config.seed, 2, len(rough)])
    polished, errors = polish_single_layer(
        oracle, theta, anchors, config.input_scale, eps, own, which=rough
    )
    for i in rough:
        if np.isfinite(errors[i]):
            n = neurons[i]
            n.theta, n.error = polished[i] / np.linalg.norm(polished[i]), float(errors[i])
            n.refined = max(n.refined, 1)
    left = [n for n in neurons if not n.refined]
    refine_layer(oracle, Prefix(theta.shape[1] - 1), left, rng, config.input_scale, eps)
    return len(rough)
