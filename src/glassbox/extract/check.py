"""The self-check: the recovered net against the oracle on fresh queries. Its verdict is success.

1. Fresh Gaussian inputs, sparse ones (one to three coordinates on), and inputs a hair either side of every recovered hyperplane of
   every layer (where a wrong sign or a wrong row shows first): the largest output error,
   relative to the largest output, must be under the tolerance.
2. Every hidden kink the lines saw must lie on a recovered neuron's (bent) hyperplane; a
   kink off all of them is looked at again on a short stretch of its line (two kinks too
   close to tell apart come out as one, misplaced), and counted if it stays off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from glassbox.extract.kinks import find_kinks
from glassbox.extract.prefix import Prefix
from glassbox.extract.tolerance import loosen
from glassbox.mlp import ReLUNet
from glassbox.oracle.core import Oracle

Array = NDArray[np.float64]

# A kink lies on a recovered hyperplane when this close (relative to 1 + |x|).
KINK_ON_PLANE = 1e-7
# Half-lengths (in input scales) of the stretches an unexplained kink is searched again on.
RESCAN_SCALES = (1e-2, 1e-4, 1e-6)
# Offset (in input scales) of the points beside each hyperplane.
BESIDE = 1e-6


@dataclass(frozen=True)
class Verdict:
    """The self-check's verdict, its one-line reason and its figures."""

    success: bool
    message: str
    figures: dict[str, float]


def hidden_prefix(net: ReLUNet) -> Prefix:
    """All hidden layers of ``net`` as a prefix (biases made explicit)."""
    p = Prefix(net.input_dim)
    for W, b in zip(net.weights[:-1], net.biases[:-1], strict=True):
        p.push(W, b if b is not None else np.zeros(W.shape[0]))
    return p


def sparse_inputs(d0: int, n: int, rng: np.random.Generator, scale: float) -> Array:
    """Inputs with one to three nonzero coordinates: data often lives near such subspaces
    (a toy model's sparse features), where Gaussian inputs never go."""
    X = np.zeros((n, d0))
    for i, k in enumerate(rng.integers(1, min(3, d0) + 1, size=n)):
        X[i, rng.choice(d0, size=k, replace=False)] = rng.normal(0.0, scale, size=k)
    return X


def beside_planes(net: ReLUNet, plane_points: list[list[Array]], scale: float) -> Array:
    """Two inputs a hair either side of each given point's hyperplane."""
    out = []
    hidden = hidden_prefix(net)
    for layer, points in enumerate(plane_points):
        sub = Prefix(net.input_dim, hidden.weights[:layer], hidden.biases[:layer])
        W, b = hidden.weights[layer], hidden.biases[layer]
        for p in points:
            J, c = sub.local_map(p)
            z = W @ (J @ p + c) + b
            j = int(np.argmin(np.abs(z)))
            g = W[j] @ J
            norm = np.linalg.norm(g)
            if norm > 0:
                out += [p + BESIDE * scale * g / norm, p - BESIDE * scale * g / norm]
    return np.array(out).reshape(-1, net.input_dim)


def kink_layers(net: ReLUNet, points: Array) -> tuple[int, ...]:
    """For each kink point, the layer (1-based) of the recovered neuron it lies on; 0: none."""
    if points.shape[0] == 0 or net.n_hidden_layers == 0:
        return tuple(0 for _ in range(points.shape[0]))
    margin = hidden_prefix(net).scaled_margins(points)
    ends = np.cumsum([W.shape[0] for W in net.weights[:-1]])
    best = np.argmin(margin, axis=1)
    near = margin[np.arange(points.shape[0]), best] <= KINK_ON_PLANE * (
        1 + np.linalg.norm(points, axis=1)
    )
    layer = np.searchsorted(ends, best, side="right") + 1
    return tuple(int(v) for v in np.where(near, layer, 0))


def unexplained_kinks(
    oracle: Oracle, net: ReLUNet, seen: list[tuple[Array, Array]], scale: float, eps: float
) -> int:
    """How many of the ``seen`` (point, direction) kinks lie on no recovered hyperplane."""
    hidden = hidden_prefix(net)

    def off(P: Array) -> NDArray[np.bool_]:
        if P.shape[0] == 0:
            return np.zeros(0, dtype=bool)
        margin = np.min(hidden.scaled_margins(P), axis=1)
        return margin > loosen(KINK_ON_PLANE, eps) * (1 + np.linalg.norm(P, axis=1))

    if not seen:
        return 0
    P = np.array([p for p, _ in seen])
    D = np.array([d for _, d in seen])
    stray = off(P)
    if not stray.any():
        return 0
    # Two kinks closer than a search resolves come out as one, placed between them: look
    # again on shorter and shorter stretches; a kink off every plane at every scale counts.
    P, D = P[stray], D[stray]
    # Coarse answers cannot place kinks on the shortest stretches: those are skipped.
    for r in [r for r in RESCAN_SCALES if r >= loosen(RESCAN_SCALES[-1], eps)]:
        lines = find_kinks(oracle, P, D, -r * scale, r * scale, eps=eps)
        again = [
            (x, line.d)
            for line in lines
            for x, bad in zip(
                line.point(line.t[line.hidden]), off(line.point(line.t[line.hidden])), strict=True
            )
            if bad
        ]
        if not again:
            return 0
        P = np.array([x for x, _ in again])
        D = np.array([d for _, d in again])
    return int(P.shape[0])


def self_check(
    oracle: Oracle,
    net: ReLUNet,
    plane_points: list[list[Array]],
    seen: list[tuple[Array, Array]],
    rng: np.random.Generator,
    *,
    input_scale: float,
    samples: int,
    eps: float,
    tolerance_log2: float | None,
) -> Verdict:
    """Compare ``net`` with the oracle on fresh queries (see the module docstring)."""
    X = np.vstack(
        [
            rng.normal(0.0, input_scale, size=(samples, net.input_dim)),
            sparse_inputs(net.input_dim, max(samples // 4, 1), rng, input_scale),
            beside_planes(net, plane_points, input_scale),
        ]
    )
    Y = oracle.query(X)
    err = float(np.max(np.abs(Y - net.forward(X))))
    scale = max(float(np.max(np.abs(Y))), np.finfo(np.float64).tiny)
    rel = err / scale
    tol = tolerance_log2 if tolerance_log2 is not None else max(-30.0, math.log2(eps) + 12)
    rel_log2 = math.log2(rel) if rel > 0 else -1074.0
    stray = unexplained_kinks(oracle, net, seen, input_scale, eps)
    figures = {
        "samples": float(X.shape[0]),
        "max_error": err,
        "output_scale": scale,
        "relative_error_log2": rel_log2,
        "tolerance_log2": tol,
        "unexplained_kinks": float(stray),
        "kinks_checked": float(len(seen)),
    }
    success = rel <= 2.0**tol and stray == 0
    message = (
        f"{'success' if success else 'failed'}: {'-'.join(map(str, net.dims))} recovered; "
        f"max |f - f_hat| = 2^{math.log2(err) if err > 0 else -1074:.1f} on {X.shape[0]} fresh "
        f"queries (relative 2^{rel_log2:.1f}, tolerance 2^{tol:.0f})"
    )
    if stray:
        message += f"; {stray} hidden kink(s) seen on the lines lie on no recovered hyperplane"
    return Verdict(success, message, figures)
