"""Signs and the output layer of a one-hidden-layer net, by linear algebra.

Each hyperplane ``u_h(x) = v_h.x + c_h`` is known up to sign. Since
``ReLU(-u) = ReLU(u) - u``, every output is, where it is active,

    f_j(x) = sum_h a_jh ReLU(u_h(x)) + g_j.x + b_j,   g_j = -sum_h beta_jh v_h,

whatever the signs: ``beta_jh`` is 0 for a neuron whose active side is ``u_h > 0``,
``a_jh`` for one whose active side is ``u_h < 0``, and anything else for two neurons
sharing the hyperplane with opposite signs (``alpha ReLU(u) + beta ReLU(-u)``, e.g. the
toy model's ``ReLU(x) + ReLU(-x)``). A least-squares fit on fresh queries gives ``a``,
``g`` and ``b``; ``g`` then gives ``beta`` (directly when the normals are independent,
else as 0/1 unknowns stacked over all outputs), and a last fit with the right features
gives the output layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

# A fitted beta within this fraction of 0 (or of a) decides a single neuron's sign.
SIGN_TOLERANCE = 1e-4
# Rows per unknown kept for one output's least squares: enough for a well-posed fit, few
# enough that fitting 100 outputs stays cheap.
ROWS_PER_UNKNOWN = 4


def _rows(mask: BoolArray, keep: BoolArray, n_unknowns: int) -> NDArray[np.int64]:
    """Rows of ``mask`` for one fit: all of ``keep`` first, then an even spread of the rest."""
    idx = np.flatnonzero(mask)
    cap = ROWS_PER_UNKNOWN * n_unknowns
    if idx.size <= cap:
        return idx
    first = idx[keep[idx]]
    rest = idx[~keep[idx]]
    take = max(cap - first.size, 0)
    return np.concatenate([first, rest[np.linspace(0, rest.size - 1, take).astype(np.int64)]])


@dataclass(frozen=True, eq=False)
class OutputFit:
    """The hidden neurons with their signs, and the output layer fitted on them.

    ``rows``/``biases`` are the signed unit hyperplanes of the neurons, ``source[i]``
    the hyperplane neuron ``i`` came from (two neurons share one for a +/- pair),
    ``out_weights (dout, n)`` and ``out_bias (dout,)`` the output layer (``None``: absent),
    ``residual`` the largest fit residual relative to the output scale.
    """

    rows: Array
    biases: Array
    source: NDArray[np.int64]
    flipped: BoolArray
    pair: BoolArray
    out_weights: Array
    out_bias: Array | None
    residual: float
    notes: tuple[str, ...]


def _lstsq(A: Array, y: Array) -> tuple[Array, int]:
    """Least squares with column scaling (features differ in size); returns solution and rank.

    Householder QR (fast, as accurate as SVD for full column rank); SVD only when the
    columns are (numerically) dependent.
    """
    norms = np.linalg.norm(A, axis=0)
    norms[norms == 0] = 1.0
    As = A / norms
    if As.shape[0] >= As.shape[1]:
        q, r = np.linalg.qr(As)
        diag = np.abs(np.diag(r))
        if diag.size == 0 or diag.min() > 1e-10 * diag.max():
            return (np.linalg.solve(r, q.T @ y).T / norms).T, As.shape[1]
    sol, _, rank, _ = np.linalg.lstsq(As, y, rcond=None)
    return (sol.T / norms).T, int(rank)


def _normal_lstsq(A: Array, y: Array) -> tuple[Array, bool]:
    """Least squares by the normal equations when well conditioned (fast), else by QR."""
    norms = np.linalg.norm(A, axis=0)
    norms[norms == 0] = 1.0
    As = A / norms
    gram = As.T @ As
    eig = np.linalg.eigvalsh(gram)
    if eig[0] > 1e-8 * eig[-1]:
        return np.linalg.solve(gram, As.T @ y) / norms, True
    # Too ill-conditioned to square: QR, which also tells a truly dependent set apart.
    sol, rank = _lstsq(A, y)
    return sol, rank == A.shape[1]


def fit_output_layer(
    X: Array,
    Y: Array,
    normals: Array,
    offsets: Array,
    *,
    output_relu: bool,
    output_bias: bool | None,
    keep: BoolArray | None = None,
) -> OutputFit:
    """Signs, +/- pairs and output layer from queries ``Y = f(X)`` and hyperplanes ``v.x + c``.

    Rows in ``keep`` (the samples placed beside
    hyperplanes) are always used; other rows are thinned to a few per unknown.
    """
    keep = np.zeros(X.shape[0], dtype=bool) if keep is None else keep
    n_hyper, d0 = normals.shape
    dout = Y.shape[1]
    scale = max(float(np.max(np.abs(Y))), np.finfo(np.float64).tiny)
    active = Y > 0 if output_relu else np.ones_like(Y, dtype=bool)
    notes: list[str] = []
    flipped, pair = _solve_signs(X, Y, normals, offsets, active, keep, notes)

    # 3. Neurons: one per hyperplane, two for a +/- pair.
    sign = np.where(flipped, -1.0, 1.0)
    src = np.concatenate([np.arange(n_hyper), np.flatnonzero(pair)]).astype(np.int64)
    s = np.concatenate([sign, -np.ones(int(pair.sum()))])
    rows = normals[src] * s[:, None]
    biases = offsets[src] * s
    if pair.any():
        notes.append(f"{int(pair.sum())} hyperplane(s) hold two neurons of opposite sign")

    # 4. The output layer with the right features (and a bias column if there is one).
    phi = np.maximum(X @ rows.T + biases, 0.0)
    W, b, resid = _fit(phi, Y, active, keep, with_bias=output_bias is not False)
    if output_bias is None and np.max(np.abs(b)) <= 1e-9 * scale:
        W, b, resid = _fit(phi, Y, active, keep, with_bias=False)
        out_bias: Array | None = None
    else:
        out_bias = b if output_bias is not False else None
    starved = [j for j in range(dout) if active[:, j].sum() <= phi.shape[1]]
    if starved:
        notes.append(f"output(s) {starved[:10]} active on too few samples to fit")
    return OutputFit(rows, biases, src, flipped, pair, W, out_bias, resid / scale, tuple(notes))


def _solve_signs(
    X: Array,
    Y: Array,
    normals: Array,
    offsets: Array,
    active: BoolArray,
    keep: BoolArray,
    notes: list[str],
) -> tuple[BoolArray, BoolArray]:
    """Which hyperplanes are flipped, and which hold a +/- pair (steps 1 and 2)."""
    n_hyper, d0 = normals.shape
    scale = max(float(np.max(np.abs(Y))), np.finfo(np.float64).tiny)
    dout = Y.shape[1]
    R = np.maximum(X @ normals.T + offsets, 0.0)
    # 1. Per output: f_j = a_j . ReLU(U) + g_j . x + b_j on the rows where it is active.
    A = np.zeros((dout, n_hyper))
    G = np.zeros((dout, d0))
    full = np.zeros(dout, dtype=bool)
    feats = np.hstack([R, X, np.ones((X.shape[0], 1))])
    for j in range(dout):
        rows = _rows(active[:, j], keep, feats.shape[1])
        if rows.size < feats.shape[1]:
            continue
        coef, ok = _normal_lstsq(feats[rows], Y[rows, j])
        if not ok:
            continue
        A[j], G[j], full[j] = coef[:n_hyper], coef[n_hyper : n_hyper + d0], True
    if not np.any(full):
        notes.append("no output had enough active, well-spread samples to solve for signs")

    # 2. beta from the linear parts g_j = -sum_h beta_jh v_h.
    flipped = np.zeros(n_hyper, dtype=bool)
    pair = np.zeros(n_hyper, dtype=bool)
    beta = np.zeros((dout, n_hyper))
    sv = np.linalg.svd(normals, compute_uv=False) if n_hyper else np.zeros(0)
    independent = n_hyper <= d0 and (n_hyper == 0 or sv[-1] > 1e-6 * sv[0])
    J = np.flatnonzero(full)
    if J.size and independent:
        beta[J] = -np.linalg.lstsq(normals.T, G[J].T, rcond=None)[0].T
        for h in range(n_hyper):
            a, bt = A[J, h], beta[J, h]
            size = max(float(np.max(np.abs(a))), SIGN_TOLERANCE * scale)
            if np.max(np.abs(bt)) <= SIGN_TOLERANCE * size:
                continue
            if np.max(np.abs(bt - a)) <= SIGN_TOLERANCE * size:
                flipped[h] = True
            else:
                pair[h] = True
    elif J.size:
        # More hyperplanes than inputs: each is one neuron, t_h in {0, 1} stacked over outputs.
        M = -(A[J][:, :, None] * normals[None, :, :]).transpose(0, 2, 1).reshape(-1, n_hyper)
        t, rank = _lstsq(M, G[J].ravel())
        flipped = t > 0.5
        if rank < n_hyper or np.max(np.abs(t - flipped)) > 0.01:
            notes.append(
                f"signs of {n_hyper} hyperplanes in {d0} inputs are not pinned down by the "
                f"outputs' linear parts (rank {rank}, worst rounding {np.max(np.abs(t - flipped)):.3g})"
            )

    return flipped, pair


def _fit(
    phi: Array, Y: Array, active: BoolArray, keep: BoolArray, *, with_bias: bool
) -> tuple[Array, Array, float]:
    """Per-output least squares of ``Y`` on ``phi`` (plus a bias) over its active rows."""
    n = phi.shape[1]
    dout = Y.shape[1]
    feats = np.hstack([phi, np.ones((phi.shape[0], 1))]) if with_bias else phi
    W = np.zeros((dout, n))
    b = np.zeros(dout)
    resid = 0.0
    for j in range(dout):
        if not active[:, j].any():
            continue
        rows = _rows(active[:, j], keep, feats.shape[1])
        coef, _ = _lstsq(feats[rows], Y[rows, j])
        W[j] = coef[:n]
        if with_bias:
            b[j] = coef[n]
        on = active[:, j]
        resid = max(resid, float(np.max(np.abs(feats[on] @ coef - Y[on, j]))))
    return W, b, resid
