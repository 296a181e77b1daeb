"""Precision refinement: re-measure every hyperplane with large, provably safe steps.

First signatures use tiny finite-difference steps, because they are taken before the
other hyperplanes are known; their error is about ``ulp(f) / step``. Once every
hyperplane and the output layer are known roughly, the activation pattern around any
point is known too. For each hyperplane we pick, among random points on it, the one
farthest from every other hyperplane, step off it on both sides, and measure gradients
with per-axis steps as long as they can be without crossing any known hyperplane or
switching off an output in use: errors drop by the ratio of step sizes (to about 2^-45
on 784-128-1). A new estimate is accepted only if it agrees with the first one within
that one's error; otherwise another point is tried.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from glassbox.extract.layers import Hyperplanes, gradients, signature
from glassbox.extract.oracle import Oracle
from glassbox.mlp import ReLUNet

Array = NDArray[np.float64]

SAFETY = 0.5  # fraction of the room to the nearest boundary that a step may use


def axis_steps(x: Array, planes: Array, offsets: Array, cap: float) -> Array:
    """Signed per-axis steps from ``x`` that stay ``SAFETY`` inside every hyperplane."""
    u = planes @ x + offsets
    with np.errstate(divide="ignore", invalid="ignore"):
        hit = -u[:, None] / planes  # step along axis k that reaches hyperplane g
    up = np.min(np.where(hit > 0, hit, np.inf), axis=0)
    down = np.min(np.where(hit < 0, -hit, np.inf), axis=0)
    room = np.minimum(np.maximum(up, down), cap)
    return SAFETY * np.where(up >= down, room, -room)


def _boundaries(model: ReLUNet, x: Array, planes: Array, offsets: Array) -> tuple[Array, Array]:
    """Hidden hyperplanes plus the active outputs' zero sets, linearised around ``x``."""
    if not model.output_relu:
        return planes, offsets
    pre = model.preactivations(x[None, :])
    z = pre[-1][0]
    on = pre[0][0] > 0
    grad = model.weights[1] @ (model.weights[0] * on[:, None])
    live = z > 0
    extra_planes = grad[live]
    extra_offsets = z[live] - extra_planes @ x
    return np.vstack([planes, extra_planes]), np.concatenate([offsets, extra_offsets])


def refine(
    oracle: Oracle,
    hp: Hyperplanes,
    model: ReLUNet,
    source: NDArray[np.int64],
    *,
    eps: float,
    input_scale: float,
    rng: np.random.Generator,
    candidates: int = 32,
    tries: int = 3,
    max_rows: int = 8192,
) -> list[int]:
    """Re-measure every hyperplane of ``hp`` in place; returns those that could not be refined.

    ``model`` is the rough net built from ``hp`` (its hidden neuron ``i`` lies on hyperplane
    ``source[i]``); it tells where outputs are active.
    """
    V, c = hp.matrix()
    n_hyper, d0 = V.shape
    out_w = model.weights[1]
    pending = list(range(n_hyper))
    # Ranked candidate points on each hyperplane, best (farthest from the rest) first.
    ranked: dict[int, list[tuple[Array, float]]] = {}
    for h in pending:
        q = rng.normal(0.0, input_scale, size=(candidates, d0))
        p = q - np.outer(q @ V[h] + c[h], V[h])
        others = np.delete(np.arange(n_hyper), h)
        margin = np.min(np.abs(p @ V[others].T + c[others]), axis=1, initial=np.inf)
        sees = np.abs(out_w[:, source == h]).sum(axis=1) > 0
        if model.output_relu:
            z = model.preactivations(p)[-1]
            margin = np.where(np.any((z > 0) & sees, axis=1), margin, -1.0)
        ranked[h] = [(p[i], float(margin[i])) for i in np.argsort(-margin)[:tries]]

    failed: list[int] = []
    for attempt in range(tries):
        if not pending:
            break
        bases, steps, owners = [], [], []
        waiting = []
        for h in pending:
            p, margin = ranked[h][attempt]
            if margin <= 0:
                # No output that sees this hyperplane is active near it: nothing to measure.
                waiting.append(h)
                continue
            rho = 0.25 * min(margin, 4 * input_scale) if np.isfinite(margin) else input_scale
            for side in (-1.0, 1.0):
                x = p + side * rho * V[h]
                planes, offs = _boundaries(model, x, V, c)
                bases.append(x)
                steps.append(axis_steps(x, planes, offs, 4 * input_scale))
            owners.append(h)
        still = waiting
        if not owners:
            pending = still
            continue
        g = gradients(oracle, np.array(bases), np.array(steps), eps, max_rows)
        for i, h in enumerate(owners):
            lo, hi = 2 * i, 2 * i + 1
            use = g.usable[lo] & g.usable[hi]
            noise = float(max(g.noise[lo], g.noise[hi]))
            sig = signature(g.grad[lo], g.grad[hi], use, noise, V[h])
            ok = sig is not None and float(np.max(np.abs(sig.normal - V[h]))) <= (
                64 * hp.errors[h] + 1e-12
            )
            if ok and sig is not None:
                offset = -float(np.mean([sig.normal @ x for x in hp.points[h]]))
                hp.update(h, sig.normal, offset, sig.error)
            else:
                still.append(h)
        pending = still
    failed.extend(pending)
    return failed
