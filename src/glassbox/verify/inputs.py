"""The inputs verification samples: standard distributions, and points on every neuron's hyperplane.

Used by :func:`glassbox.verify.align.align` (to find dead neurons) and by
:func:`glassbox.verify.compare.verify` (to measure the functional error).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from glassbox.mlp import ReLUNet

Array = NDArray[np.float64]

BOX = (-1.0, 1.0)
# Offsets from a critical hyperplane, in units of max(1, |x|_inf), along its unit normal.
HYPERPLANE_OFFSETS = (0.0, 2.0**-40, -(2.0**-40), 2.0**-20, -(2.0**-20))


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
