"""The last hidden layer's signs and the output layer, in one linear solve (no sign search).

With the prefix and the last hidden layer's rows ``u_j = theta_j . (h, 1)`` known up to
sign, every output is ``f = sum_j c_j ReLU(u_j) + T (h, 1)`` where ``c_j`` is the output
column (times the neuron's scale) and the affine part ``T`` is ``-sum_j sigma_j c_j theta_j``
plus the output bias, with ``sigma_j = 1`` for a neuron whose true sign is negative
(``ReLU(-u) = ReLU(u) - u``). Least squares on queried points gives ``c`` and ``T``; then
``T``'s weight columns are linear in ``sigma`` (``k * width`` equations for ``n``
unknowns), solved once. The same fit tells whether this layer is the last: if deeper
layers exist, no such exact fit exists and the residual says so. With an output ReLU each
output is fitted on the points where it is on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from glassbox.extract.prefix import Prefix

Array = NDArray[np.float64]

# Relative residual of the fit under which the model class is right (this is the last layer).
EXACT = 2.0**-24
# A sign read from sigma must be this close to 0 or 1.
SIGMA_SLACK = 0.05


@dataclass
class LastLayerFit:
    """The fit's verdict and, when exact and signs resolved, the finished last two layers."""

    exact: bool
    residual_log2: float
    signs: Array | None = None
    rows: Array | None = None
    out_weights: Array | None = None
    out_bias: Array | None = None
    sigma_error: float = np.inf
    notes: list[str] = field(default_factory=list)


def fit_last_layer(
    prefix: Prefix, theta: Array, X: Array, Y: Array, *, output_relu: bool
) -> LastLayerFit:
    """Fit ``f`` on ``(X, Y)`` as a last hidden layer with rows ``theta`` (``n x (width+1)``)."""
    h = prefix.state(X)
    H1 = np.hstack([h, np.ones((h.shape[0], 1))])
    U = H1 @ theta.T
    D = np.hstack([np.maximum(U, 0.0), H1])
    n, m1 = theta.shape
    k = Y.shape[1]
    coef = np.zeros((D.shape[1], k))
    worst = 0.0
    for o in range(k):
        rows = Y[:, o] > 0 if output_relu else np.ones(Y.shape[0], dtype=bool)
        if np.sum(rows) < D.shape[1] + 4:
            return LastLayerFit(False, 0.0, notes=[f"output {o} is on at too few points to fit"])
        sol, *_ = np.linalg.lstsq(D[rows], Y[rows, o], rcond=None)
        coef[:, o] = sol
        scale = max(float(np.max(np.abs(Y[rows, o]))), 1e-300)
        worst = max(worst, float(np.max(np.abs(D[rows] @ sol - Y[rows, o]))) / scale)
    res_log2 = float(np.log2(worst)) if worst > 0 else -1074.0
    if worst > EXACT:
        return LastLayerFit(False, res_log2)
    C = coef[:n].T  # (k, n): output columns times scale, for the rows as oriented
    T = coef[n:].T  # (k, m1)
    return _signs(theta, C, T, res_log2)


def _signs(theta: Array, C: Array, T: Array, res_log2: float) -> LastLayerFit:
    """Read the signs (and any +/- pairs on one hyperplane) from the affine part ``T``.

    ``T[:, :width] = -sum_j D_j theta_j[:width]`` where ``D_j`` is the output column of the
    part of plane ``j`` that is active on its negative side: 0 for a positive neuron,
    ``C_j`` for a negative one, in between for a +/- pair sharing the hyperplane (as in the
    toy model's abs). With at least as many layer inputs as neurons ``D`` is solved per
    output; otherwise only a 0/1 scale ``sigma_j`` per neuron is.
    """
    n, m1 = theta.shape
    k = C.shape[0]
    width = m1 - 1
    base = theta[:, :width].T  # (width, n)
    if np.linalg.matrix_rank(base) == n:
        D = -np.linalg.lstsq(base, T[:, :width].T, rcond=None)[0].T  # (k, n)
    else:
        A = np.einsum("oj,jw->owj", C, theta[:, :width]).reshape(k * width, n)
        rank = int(np.linalg.matrix_rank(A))
        if rank < n:
            return LastLayerFit(
                True,
                res_log2,
                notes=[
                    f"signs of the last hidden layer are not pinned down by a linear solve: "
                    f"{n} neurons but {rank} independent equations ({k} output(s) x {width} "
                    "inputs to the layer)"
                ],
            )
        sigma = np.linalg.lstsq(A, -T[:, :width].reshape(-1), rcond=None)[0]
        D = C * sigma[None, :]
    size = np.maximum(np.linalg.norm(C, axis=0), 1e-300)
    pos = np.linalg.norm(D, axis=0) / size
    neg = np.linalg.norm(D - C, axis=0) / size
    rows, cols, signs, worst = [], [], [], 0.0
    for j in range(n):
        if pos[j] <= SIGMA_SLACK:
            rows.append(theta[j]), cols.append(C[:, j]), signs.append(1.0)
            worst = max(worst, pos[j])
        elif neg[j] <= SIGMA_SLACK:
            rows.append(-theta[j]), cols.append(C[:, j]), signs.append(-1.0)
            worst = max(worst, neg[j])
        else:  # two neurons on one hyperplane, facing opposite ways
            rows += [theta[j], -theta[j]]
            cols += [C[:, j] - D[:, j], D[:, j]]
            signs.append(0.0)
    R = np.array(rows)
    W = np.array(cols).T
    # The output bias: what is left of T's last column once the negative parts are moved.
    out_bias = T[:, width] + D @ theta[:, width]
    return LastLayerFit(
        True,
        res_log2,
        signs=np.array(signs),
        rows=R,
        out_weights=W,
        out_bias=out_bias,
        sigma_error=worst,
    )
