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

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from glassbox.extract.prefix import Prefix
from glassbox.extract.signs.lattice import lattice_sigma
from glassbox.extract.tolerance import FLOAT64_EPS, loosen

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
    # seen[o, j]: output o's on-rows straddle neuron j's hyperplane (its weight is measured).
    seen: NDArray[np.bool_] | None = None
    # Outgoing weights (output, neuron) never measured: the output was on only where the
    # neuron was off, in every sample.
    unmeasured: list[tuple[int, int]] = field(default_factory=list)
    # How the signs were read ("linear solve" or "lattice") and, for the lattice, how many
    # other sign vectors fit as well (their nets give the same function to the precision).
    method: str = "linear solve"
    rivals: int = 0
    sign_seconds: float = 0.0


def fit_last_layer(
    prefix: Prefix,
    theta: Array,
    X: Array,
    Y: Array,
    *,
    output_relu: bool,
    eps: float = FLOAT64_EPS,
) -> LastLayerFit:
    """Fit ``f`` on ``(X, Y)`` as a last hidden layer with rows ``theta`` (``n x (width+1)``).

    With an output ReLU an output is fitted on its on-rows only; a neuron whose plane
    those rows do not straddle is linear there and only enters through the affine part
    (``seen[o, j]`` is False): its sign is then read from the outputs that do see it.
    """
    h = prefix.state(X)
    H1 = np.hstack([h, np.ones((h.shape[0], 1))])
    U = H1 @ theta.T
    n, m1 = theta.shape
    k = Y.shape[1]
    C = np.zeros((k, n))
    T = np.zeros((k, m1))
    seen = np.zeros((k, n), dtype=bool)
    side = np.zeros((k, n))
    worst = 0.0
    dead: list[int] = []
    for o in range(k):
        rows = Y[:, o] > 0 if output_relu else np.ones(Y.shape[0], dtype=bool)
        Uo = U[rows]
        if not rows.any():
            # On nowhere it was asked: none of its weights is measured (counted, named).
            dead.append(o)
            continue
        both = np.any(Uo > 0, axis=0) & np.any(Uo < 0, axis=0)
        D = np.hstack([np.maximum(Uo[:, both], 0.0), H1[rows]])
        if D.shape[0] < D.shape[1] + 4:
            return LastLayerFit(False, 0.0, notes=[f"output {o} is on at too few points to fit"])
        sol, *_ = np.linalg.lstsq(D, Y[rows, o], rcond=None)
        nb = int(np.sum(both))
        C[o, both] = sol[:nb]
        T[o] = sol[nb:]
        seen[o] = both
        side[o] = np.where(both, 0.0, np.sign(np.sum(Uo, axis=0)))
        scale = max(float(np.max(np.abs(Y[rows, o]))), 1e-300)
        worst = max(worst, float(np.max(np.abs(D @ sol - Y[rows, o]))) / scale)
    res_log2 = float(np.log2(worst)) if worst > 0 else -1074.0
    # Rows measured from coarse answers fit less exactly; a missing neuron leaves more.
    if worst > loosen(EXACT, eps):
        return LastLayerFit(False, res_log2)
    t0 = time.perf_counter()
    fit = _signs(theta, C, T, seen, side, res_log2)
    fit.seen = seen
    fit.sign_seconds = time.perf_counter() - t0
    if dead:
        # Zero at every input asked: recovered as the constant 0 (weights not identifiable).
        fit.notes.append(
            f"output(s) {dead[:8]} answered 0 at every one of {X.shape[0]} inputs asked (out "
            "to 64 times the input scale): recovered as the constant 0; their weights are not "
            "identifiable from the answers"
        )
    return fit


def _sigma_solve(
    theta: Array, C: Array, T: Array, seen: NDArray[np.bool_], res_log2: float
) -> tuple[Array, str, int] | str:
    """``D`` from a 0/1 ``sigma`` per neuron (``D_oj = sigma_j C_oj``), or why it cannot be read.

    Output ``o`` gives ``T_o = -sum_j sigma_j C_oj theta_j`` over the neurons it sees from
    both sides, plus a free multiple of ``theta_j`` for each neuron it sees from one side
    only (linear on its on-rows): projecting those directions out leaves equations in
    ``sigma`` alone. Stacked over outputs they are solved by least squares when their rank
    is ``n``, else by lattice reduction (:mod:`glassbox.extract.signs.lattice`); the free
    multiples are then read back per output.
    """
    n, m1 = theta.shape
    k, width = C.shape[0], m1 - 1
    base = theta[:, :width]
    blocks, rhs, frees = [], [], []
    for o in range(k):
        free = base[~seen[o]].T  # (width, unseen)
        q, r = np.linalg.qr(free) if free.size else (np.zeros((width, 0)), np.zeros((0, 0)))
        q = q[:, np.abs(np.diag(r)) > 1e-12 * max(float(np.max(np.abs(r), initial=0.0)), 1e-300)]
        frees.append(free)
        P = np.eye(width) - q @ q.T
        blocks.append(P @ (base.T * C[o][None, :] * seen[o][None, :]))
        rhs.append(-P @ T[o, :width])
    A, b = np.vstack(blocks), np.concatenate(rhs)
    quiet = [j for j in range(n) if not np.any(A[:, j])]
    if quiet:
        return f"neurons {quiet[:8]} of the last hidden layer are seen from both sides by no output"
    rank = int(np.linalg.matrix_rank(A))
    method, rivals = "linear solve", 0
    if rank == n:
        sigma = np.linalg.lstsq(A, b, rcond=None)[0]
    else:
        # Fewer equations than neurons: a low-density subset sum, by lattice reduction.
        found = lattice_sigma(A, b, slack=max(1.0, 2.0 ** (res_log2 + 32)))
        if found is None:
            return (
                f"signs of the last hidden layer: {n} neurons, {rank} independent equations "
                f"({k} output(s) x {width} inputs to the layer), and lattice reduction found "
                "no 0/1 solution at any precision"
            )
        sigma, method, rivals = found.sigma, "lattice", found.rivals
    D = C * sigma[None, :] * seen
    for o in range(k):
        if frees[o].size:
            left = T[o, :width] + (base.T * C[o][None, :] * seen[o][None, :]) @ sigma
            D[o, ~seen[o]] = -np.linalg.lstsq(frees[o], left, rcond=None)[0]
    return D, method, rivals


def _signs(
    theta: Array, C: Array, T: Array, seen: NDArray[np.bool_], side: Array, res_log2: float
) -> LastLayerFit:
    """Read the signs (and any +/- pairs on one hyperplane) from the affine part ``T``.

    ``T[:, :width] = -sum_j D_j theta_j[:width]`` where ``D_j`` is the output column of the
    part of plane ``j`` that is active on its negative side: 0 for a positive neuron,
    ``C_j`` for a negative one, in between for a +/- pair sharing the hyperplane (as in the
    toy model's abs). With at least as many layer inputs as neurons ``D`` is solved per
    output; otherwise only a 0/1 scale ``sigma_j`` per neuron is (:func:`_sigma_solve`).
    """
    n, m1 = theta.shape
    width = m1 - 1
    base = theta[:, :width].T  # (width, n)
    method, rivals = "linear solve", 0
    if np.linalg.matrix_rank(base) == n:
        D = -np.linalg.lstsq(base, T[:, :width].T, rcond=None)[0].T  # (k, n)
    else:
        solved = _sigma_solve(theta, C, T, seen, res_log2)
        if isinstance(solved, str):
            return LastLayerFit(True, res_log2, notes=[solved])
        D, method, rivals = solved
    D_solved = D.copy()
    tiny = 1e-7 * max(float(np.max(np.abs(C))), float(np.max(np.abs(T))), 1e-300)
    rows: list[Any] = []
    cols: list[Any] = []
    signs: list[float] = []
    notes: list[str] = []
    worst = 0.0
    unmeasured: list[tuple[int, int]] = []
    for j in range(n):
        o = seen[:, j]
        if o.any():
            size = max(float(np.linalg.norm(C[o, j])), 1e-300)
            pos = float(np.linalg.norm(D[o, j])) / size
            neg = float(np.linalg.norm(D[o, j] - C[o, j])) / size
            sign = 1.0 if pos <= SIGMA_SLACK else -1.0 if neg <= SIGMA_SLACK else 0.0
            worst = max(worst, min(pos, neg))
        else:
            # Seen by no output from both sides: D'_oj = D_oj - C_oj on the + side (nonzero
            # only for a positive neuron), D_oj on the - side (nonzero only for a negative one).
            plus = np.any((side[:, j] > 0) & (np.abs(D[:, j]) > tiny))
            minus = np.any((side[:, j] < 0) & (np.abs(D[:, j]) > tiny))
            if plus and minus:
                return LastLayerFit(
                    True, res_log2, notes=[f"neuron {j}: one-sided evidence for both signs"]
                )
            sign = -1.0 if minus else 1.0
            if not (plus or minus):
                notes.append(f"neuron {j} changes no output where outputs were seen on")
        col, neg_col = C[:, j].copy(), D[:, j].copy()
        # Outputs that saw the neuron from one side only: complete them from its sign.
        one = ~seen[:, j]
        # Where the output saw the neuron only from its off side, its weight was never
        # measured: it is left at zero and counted (the self-check cannot vouch for it).
        off = one & (side[:, j] * sign < 0) & (side[:, j] != 0)
        unmeasured += [(int(o), j) for o in np.flatnonzero(off)]
        if sign > 0:
            col[one] = np.where(side[one, j] > 0, -D[one, j], 0.0)
            neg_col[one] = 0.0
        elif sign < 0:
            col[one] = np.where(side[one, j] < 0, D[one, j], 0.0)
            neg_col[one] = col[one]
        if sign != 0:
            rows.append(sign * theta[j])
            cols.append(col)
            signs.append(sign)
        else:  # two neurons on one hyperplane, facing opposite ways
            rows += [theta[j], -theta[j]]
            cols += [col - neg_col, neg_col]
            signs.append(0.0)
    R = np.array(rows)
    W = np.array(cols).T
    # The output bias: what is left of T's last column once the negative parts are moved.
    out_bias = T[:, width] + D_solved @ theta[:, width]
    return LastLayerFit(
        True,
        res_log2,
        signs=np.array(signs),
        rows=R,
        out_weights=W,
        out_bias=out_bias,
        sigma_error=worst,
        notes=notes,
        unmeasured=unmeasured,
        method=method,
        rivals=rivals,
    )
