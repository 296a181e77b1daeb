"""The geometry of a weight matrix: feature norms, superposition, dimensions per feature, neuron order.

``W`` is ``(m, n)``: columns are features (the paper's ``W_i``), rows neurons.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

Array = NDArray[np.float64]


def f64(a: ArrayLike) -> Array:
    """``a`` as a float64 array."""
    return np.asarray(a, dtype=np.float64)


def neuron_order(W1: ArrayLike, importance: ArrayLike | None = None) -> NDArray[np.int64]:
    """A canonical neuron order: by importance of the largest feature, ``+`` sign first, then strength.

    It depends only on the function the net computes, so a truth and a reconstruction
    plotted in this order line up. Neurons with an all-zero row go last.
    """
    w1 = f64(W1)
    n = w1.shape[1]
    imp = np.linspace(1.0, 0.0, n, endpoint=False) if importance is None else f64(importance)
    absw = np.abs(w1)
    primary = absw.argmax(axis=1)
    scale = absw.max(axis=1)
    norm = w1 / np.where(scale > 0, scale, 1.0)[:, None]
    sign = np.sign(w1[np.arange(len(w1)), primary])
    # Secondary key: how monosemantic (sum of other |weights|), so clean neurons come first.
    spill = np.abs(norm).sum(axis=1) - 1.0
    dead = scale == 0
    return np.lexsort((spill, -sign, -imp[primary], dead)).astype(np.int64)


def feature_norms(W: ArrayLike) -> Array:
    """``||W_i||`` per feature (columns of ``W``, shape ``(m, n)``)."""
    return np.asarray(np.linalg.norm(f64(W), axis=0))


def superposition(W: ArrayLike) -> Array:
    """Per feature, ``sum_{j != i} (W^_i . W_j)^2``: 0 when orthogonal, >= 1 when others drive it as hard."""
    w = f64(W)
    norms = np.linalg.norm(w, axis=0)
    unit = w / np.where(norms > 0, norms, 1.0)
    dots = unit.T @ w  # dots[i, j] = W^_i . W_j
    sq = dots**2
    return np.asarray(sq.sum(axis=1) - np.diag(sq))


def dimensions_per_feature(W: ArrayLike) -> Array:
    """Per feature ``D_i = ||W_i||^2 / sum_j (W^_i . W_j)^2`` (j including i); 0 for unlearned features."""
    w = f64(W)
    norms = np.linalg.norm(w, axis=0)
    unit = w / np.where(norms > 0, norms, 1.0)
    denom = ((unit.T @ w) ** 2).sum(axis=1)
    return np.asarray(np.where(denom > 0, norms**2 / np.where(denom > 0, denom, 1.0), 0.0))


def dimensionality(W: ArrayLike) -> float:
    """Dimensions per feature of the whole model, ``D* = m / ||W||_F^2``."""
    w = f64(W)
    return float(w.shape[0] / max((w**2).sum(), 1e-300))
