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
# at 2^-38 verify near 2^-42), and the most measurements per plane.
TARGET_ERROR = 2.0**-38
MAX_ROUNDS = 3
# Bases whose gradient queries are built at once (memory: (d0 + 1) d0 floats each).
BASES_PER_BATCH = 4
# Fewer planes than this are measured pair by pair: the line saves little there, and its
# regions lie farther out (measured: the demo's 10 neurons 2^-37.8 by the line, 2^-40.3 by pairs).
CHAIN_MIN = 16
# ... and more than this too: the line's regions lie ever farther out (|x| grows as m^1.5
# against their depth), and at 128 planes most needed measuring again (784-128-1: 2^18.2
# queries of refinement against 2^17.6 pair by pair).
CHAIN_MAX = 48
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


def _region_gradients(
    oracle: Oracle, bases: Array, W: Array, b: Array, cap: float, eps: float
) -> tuple[Array, Array, Array]:
    """Gradients ``(n, k, d0)`` at ``bases`` with safe steps, usable outputs ``(n, k)`` and
    each gradient's entry noise ``(n,)`` (about 4 ulps of its largest answer over its step)."""
    n, d0 = bases.shape
    idx = np.arange(d0)
    G, usable, noise = [], [], []
    # A few bases at a time: (d0 + 1) x d0 inputs each (a 784-input base is 4.9 MB).
    for lo in range(0, n, BASES_PER_BATCH):
        part = bases[lo : lo + BASES_PER_BATCH]
        X = np.repeat(part[:, None, :], d0 + 1, axis=1)
        for s in range(part.shape[0]):
            X[s, 1 + idx, idx] += axis_steps(part[s], W, b, cap)
        taken = X[:, 1 + idx, idx] - part  # the steps after rounding x + s
        F = oracle.query(X.reshape(-1, d0)).reshape(part.shape[0], d0 + 1, -1)
        G.append(np.transpose((F[:, 1:] - F[:, :1]) / taken[:, :, None], (0, 2, 1)))
        usable.append(np.all(F != 0.0, axis=1))
        noise.append(4 * eps * np.max(np.abs(F), axis=(1, 2)) / np.min(np.abs(taken), axis=1))
    return np.concatenate(G), np.concatenate(usable), np.concatenate(noise)


def _normal_from(
    G: Array, usable: Array, noise: Array, lo: int, hi: int, w: Array, eps: float
) -> tuple[Array, float] | None:
    """The unit normal (oriented like ``w``) from the jump between gradients ``lo`` and ``hi``."""
    use = usable[lo] & usable[hi]
    if not use.any():
        return None
    M = G[hi][use] - G[lo][use]  # (k, d0): rank one, c w^T
    _, sv, Vt = np.linalg.svd(M, full_matrices=False)
    v = Vt[0] if Vt[0] @ w >= 0 else -Vt[0]
    err = max(float(noise[lo]), float(noise[hi])) * np.sqrt(w.size) / max(float(sv[0]), 1e-300)
    return v, max(err, float(eps))


def _measure(
    oracle: Oracle, W: Array, b: Array, j: int, p: Array, rho: float, cap: float, eps: float
) -> tuple[Array, float] | None:
    """Plane ``j``'s unit normal from gradients at ``p -/+ rho n``, and its estimated error."""
    normal = W[j] / np.linalg.norm(W[j])
    bases = np.stack([p - rho * normal, p + rho * normal])
    G, usable, noise = _region_gradients(oracle, bases, W, b, cap, eps)
    return _normal_from(G, usable, noise, 0, 1, W[j], eps)


def _chain(
    oracle: Oracle,
    W: Array,
    b: Array,
    planes: list[int],
    scale: float,
    cap: float,
    eps: float,
    rng: np.random.Generator,
) -> dict[int, tuple[Array, float]]:
    """Normals of ``planes`` from one line that crosses them one after another, evenly spaced.

    The line ``c + t u`` is solved for on the known planes: ``u`` meets every plane at the
    same angle, ``c`` puts plane ``j``'s crossing at its own ``t_j``, ``delta`` apart. The
    gradient in the middle of each of the ``m + 1`` regions it passes through is measured
    once; neighbouring gradients' jump is the plane between them: ``m + 1`` gradients for
    ``m`` planes, where measuring each plane on both sides takes ``2 m``.
    """
    m = len(planes)
    if not CHAIN_MIN <= m <= CHAIN_MAX or m >= W.shape[1]:
        return {}
    Wn = W[planes] / np.linalg.norm(W[planes], axis=1, keepdims=True)
    bn = b[planes] / np.linalg.norm(W[planes], axis=1)
    u = np.linalg.lstsq(Wn, np.ones(m), rcond=None)[0]
    u /= np.linalg.norm(u)
    cos = Wn @ u
    if np.min(cos) <= 0:
        return {}
    # Regions one input scale deep (perpendicular to their planes).
    delta = 2.0 * scale / float(np.min(cos))
    tau = (rng.permutation(m) - 0.5 * (m - 1)) * delta
    c = np.linalg.lstsq(Wn, -bn - cos * tau, rcond=None)[0]
    if not np.allclose(Wn @ c + bn + cos * tau, 0.0, atol=1e-9 * delta):
        return {}
    order = np.argsort(tau)
    ts = np.concatenate([[tau[order[0]] - 0.5 * delta], 0.5 * (tau[order[:-1]] + tau[order[1:]])])
    ts = np.append(ts, tau[order[-1]] + 0.5 * delta)
    bases = c + np.outer(ts, u)
    # Every plane of the layer, not only these, must be crossed where planned: a jump
    # is read only across exactly one plane (or one +/- pair).
    sides = (bases @ W.T + b) > 0
    G, usable, noise = _region_gradients(oracle, bases, W, b, cap, eps)
    out = {}
    for i, jj in enumerate(order):
        flipped = sides[i] != sides[i + 1]
        if not np.array_equal(flipped, _same_plane(np.column_stack([W, b]), planes[jj])):
            continue
        got = _normal_from(G, usable, noise, i, i + 1, W[planes[jj]], eps)
        if got is not None:
            out[planes[jj]] = got
    return out


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
    todo = list(range(n)) if which is None else list(which)
    # One plane per +/- pair: its other half reads the same normal.
    unique: list[int] = []
    for j in range(n):
        if not any(_same_plane(theta, j)[unique]):
            unique.append(j)
    chained = _chain(oracle, W, b, unique, scale, cap, eps, rng) if len(todo) >= CHAIN_MIN else {}
    for j in todo:
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
        twin = [i for i in chained if _same_plane(theta, j)[i]]
        if twin:
            v, err = chained[twin[0]]
            acc, weight = (v if v @ W[j] >= 0 else -v) / err**2, err**-2
        for p_idx in np.argsort(-score)[: MAX_ROUNDS - bool(twin)]:
            if weight and weight**-0.5 <= TARGET_ERROR:
                break
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
