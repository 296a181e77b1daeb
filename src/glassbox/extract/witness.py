"""One critical point's evidence about the neuron that bends there, measured through the prefix.

At a kink ``x*`` of a layer-``i`` neuron with row ``(w, b)`` (over the prefix's hidden
state ``h``), the output's gradient jumps by ``c (J^T w)`` across the kink, where ``J`` is
the prefix's local map and ``c`` the output-side factor. Only the directions the prefix
sees carry information, so gradients are measured along an orthonormal basis ``Q`` of
``J``'s row space, on both sides of the kink, with forward and backward steps (a step
that crossed another hyperplane shows as disagreement and that direction is dropped).
The jump ``M = G+ - G-`` is ``c m^T``; its top right singular vector ``m`` gives the
homogeneous equations ``(I - m m^T) (J Q)^T w = 0`` and ``w . h(x*) + b = 0`` on the
unknown ``theta = (w, b)``. When the active rows of ``J`` have full rank those pin the
row down on the active coordinates; when they do not, they are a subspace constraint
that is combined with other witnesses of the same neuron, never read as a row.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from glassbox.extract.kinks import LineKinks
from glassbox.extract.prefix import Prefix, row_space
from glassbox.extract.tolerance import FLOAT64_EPS, loosen, step_fraction
from glassbox.oracle.core import Oracle

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

# Gradient steps as a fraction of the room around the base point: large steps give
# precise slopes; the forward/backward agreement test catches the ones that crossed.
STEP_FRACTION = 1e-3
MAX_STEP_FRACTION = 0.25
# A kink this close to a prefix hyperplane (relative to 1 + |x|) belongs to the prefix.
ON_PREFIX = 1e-7
# Ratio of the jump matrix's second to first singular value above which it is not rank one.
RANK_ONE = 1e-5
# Relative null-space gap under which a row counts as pinned down.
PINNED = 1e-6
# Per line, the slopes measured in its segments (dropped with the line).
_MEMO: weakref.WeakKeyDictionary[LineKinks, dict[Any, Any]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, eq=False)
class Witness:
    """A critical point of one neuron and the equations it gives on ``theta = (w, b)``.

    ``active`` marks the prefix state's coordinates that were on at ``x``; ``equations``
    has one row per constraint over all ``width + 1`` unknowns; ``row`` is the partial row
    (zeros off ``active``, unit norm, sign arbitrary) when the equations pin it down, else
    None; ``error`` is the row's estimated relative error.
    """

    x: Array
    active: BoolArray
    stored: Array | None
    row: Array | None
    error: float
    rank_deficient: bool
    eps: float = FLOAT64_EPS
    # The unit jump direction, from which a first-layer witness rebuilds its equations.
    jump: Array | None = None

    @property
    def equations(self) -> Array:
        """The equations on ``theta``; a first-layer witness's (every input direction kept)
        are ``(I - m m^T) w = 0`` and ``w . x + b = 0``, rebuilt when asked for rather than
        kept: ``d0^2`` floats per witness held 3 GiB at 784-512-1."""
        if self.stored is not None:
            return self.stored
        assert self.jump is not None
        d = self.x.size
        E = np.zeros((d + 1, d + 1))
        E[:d, :d] = np.eye(d) - np.outer(self.jump, self.jump)
        eq_b = np.append(self.x, 1.0)
        E[d] = eq_b / max(float(np.linalg.norm(eq_b)), 1.0)
        return E


def _gradients(
    oracle: Oracle, bases: Array, Q: Array, steps: Array, eps: float, backward: bool = True
) -> tuple[Array, BoolArray, Array]:
    """Slopes along ``Q``'s columns at each base: ``(G, agree, noise)``.

    ``G[s]`` is ``k x r``; ``agree[s, j]`` says forward and backward slopes agreed
    (without ``backward``, forward slopes only, at half the queries: all "agree").
    """
    n_base, d0 = bases.shape
    r = Q.shape[1]
    rows = 2 * r + 1 if backward else r + 1
    X = np.empty((n_base, rows, d0))
    X[:] = bases[:, None, :]
    X[:, 1 : r + 1] += steps[:, :, None] * Q.T[None]
    if backward:
        X[:, r + 1 :] -= steps[:, :, None] * Q.T[None]
    F = oracle.query(X.reshape(-1, d0)).reshape(n_base, rows, -1)
    fwd = (F[:, 1 : r + 1] - F[:, :1]) / steps[:, :, None]
    mag = np.max(np.abs(F), axis=(1, 2))
    noise = 8 * eps * np.maximum(mag, np.finfo(np.float64).tiny)[:, None] / steps
    if not backward:
        return np.transpose(fwd, (0, 2, 1)), np.ones((n_base, r), dtype=bool), noise
    bwd = (F[:, :1] - F[:, r + 1 :]) / steps[:, :, None]
    gap = np.max(np.abs(fwd - bwd), axis=2)
    agree = gap <= 4 * noise + loosen(1e-9, eps) * np.max(np.abs(fwd), axis=2)
    G = np.transpose(0.5 * (fwd + bwd), (0, 2, 1))
    return G, agree, noise


def _both_sides(
    oracle: Oracle, prefix: Prefix, line: LineKinks, k: int, Q: Array, eps: float
) -> tuple[Array, BoolArray, Array]:
    """Slopes along ``Q`` on both sides of kink ``k`` (as :func:`_gradients`).

    On the first layer each side is measured at the middle of its segment of the line, so
    neighbouring kinks share the segment between them: its slopes are measured once and
    kept beside the line (``_MEMO``), one gradient per segment rather than two per kink.
    """
    x, u = line.point(float(line.t[k])), line.d
    edges = np.concatenate([[line.t_lo], line.t, [line.t_hi]])
    room = prefix.room(x, u)
    fraction = step_fraction(STEP_FRACTION, eps, MAX_STEP_FRACTION)
    parts: list[tuple[Array, BoolArray, Array] | None] = [None, None]
    memo = _MEMO.setdefault(line, {})
    todo, keys, bases, steps = [], [], [], []
    near = 0.5 * min(float(edges[k + 1] - edges[k]), float(edges[k + 2] - edges[k + 1]), room)
    for side, seg in ((0, k), (1, k + 1)):
        rho = 0.5 * float(edges[seg + 1] - edges[seg])
        key: tuple[float, ...] | None = None
        if prefix.depth:
            # Deeper layers keep both sides as near as the nearer kink (measured: sharing
            # there left 80-40-20-1's layer 2 short of two neurons).
            rho = near
            base = x + (2 * side - 1) * rho * u
        elif rho <= 0.5 * room:
            # The segment's middle: the same point (and key) from the kink at its other end.
            base = line.point(0.5 * float(edges[seg] + edges[seg + 1]))
            key = (seg, Q.shape[1], hash(Q.tobytes()), fraction, prefix.depth)
        else:
            rho = 0.5 * room
            base = x + (2 * side - 1) * rho * u
        if key is not None and key in memo:
            parts[side] = memo[key]
            continue
        todo.append(side)
        keys.append(key)
        bases.append(base)
        # Steps per direction: a fraction of the room on the line, and inside the prefix region.
        steps.append([fraction * min(rho, prefix.room(base, Q[:, j])) for j in range(Q.shape[1])])
    if todo:
        # A first layer's steps cross an unknown plane too rarely to pay for backward
        # steps (none in 39 bases of 784-32-1): the jump's check against the line's
        # slope jump still catches one that did, and the rows are polished or refined.
        G, agree, noise = _gradients(
            oracle, np.array(bases), Q, np.array(steps), eps, backward=prefix.depth > 0
        )
        for i, (side, key) in enumerate(zip(todo, keys, strict=True)):
            parts[side] = (G[i], agree[i], noise[i])
            if key is not None:
                memo[key] = parts[side]
    left, right = parts
    assert left is not None and right is not None
    return tuple(np.stack([a, b]) for a, b in zip(left, right, strict=True))  # type: ignore[return-value]


def measure(
    oracle: Oracle,
    prefix: Prefix,
    line: LineKinks,
    k: int,
    eps: float,
) -> Witness | None:
    """The witness at hidden kink ``k`` of ``line``; None when it lies on the prefix or shows nothing."""
    x = line.point(float(line.t[k]))
    u = line.d
    reach = 1 + np.linalg.norm(x)
    if prefix.depth and np.min(prefix.scaled_margins(x)) <= loosen(ON_PREFIX, eps) * reach:
        return None
    J, _ = prefix.local_map(x)
    active = np.any(J != 0.0, axis=1)
    Q, r = row_space(J[active])
    if r == 0:
        return None
    G, agree, noise = _both_sides(oracle, prefix, line, k, Q, eps)
    ok = agree[0] & agree[1]
    if not np.any(ok):
        return None
    M = (G[1] - G[0])[:, ok]
    _, s, Vt = np.linalg.svd(M, full_matrices=False)
    floor = float(np.max(noise[:, ok])) * np.sqrt(M.size)
    if s[0] <= 16 * floor:
        return None
    if s.size > 1 and s[1] > loosen(RANK_ONE, eps) * s[0] + 16 * floor:
        return None  # two neurons at once, or a step crossed another hyperplane
    m = Vt[0]
    # The slope jump the line saw must be the one these gradients predict.
    along = M @ (Q[:, ok].T @ u)
    seen = line.slope_right[k] - line.slope_left[k]
    slack = loosen(1e-4, eps) * np.max(np.abs(seen)) + 64 * floor + 4 * line.slope_error[k]
    if np.max(np.abs(along - seen)) > slack:
        return None
    width = prefix.width
    h = prefix.state(x[None])[0]
    rel_noise = floor / s[0]
    if prefix.depth == 0 and bool(np.all(ok)):
        # The first layer, every input direction kept: the row is the jump direction
        # itself, and its equations are rebuilt from it when asked for (``equations``).
        first = np.append(m, -float(m @ h))
        return Witness(
            x=x,
            active=active,
            stored=None,
            row=first / np.linalg.norm(first),
            error=rel_noise,
            rank_deficient=False,
            eps=eps,
            jump=m,
        )
    B = J[active] @ Q[:, ok]  # (a, r')
    proj = np.eye(m.size) - np.outer(m, m)
    eq_w = np.zeros((m.size, width + 1))
    eq_w[:, np.flatnonzero(active)] = proj @ B.T
    eq_b = np.append(h, 1.0)[None]
    E = np.vstack([eq_w, eq_b / max(np.linalg.norm(eq_b), 1.0)])
    cols = np.append(active, True)
    if B.shape[0] == B.shape[1]:
        # Full rank: the partial row is B^-T m, no null-space search needed.
        full = np.zeros(width + 1)
        w_a = np.linalg.solve(B.T, m)
        full[np.flatnonzero(active)] = w_a
        full[-1] = -float(w_a @ h[active])
        row: Array | None = full / np.linalg.norm(full)
        err = rel_noise * float(np.linalg.cond(B))
    else:
        row, err = null_row(E, cols, loosen(PINNED, eps))
    deficient = row is None
    return Witness(
        x=x,
        active=active,
        stored=E,
        row=row,
        error=max(err, rel_noise),
        rank_deficient=deficient,
        eps=eps,
    )


def null_row(E: Array, cols: BoolArray, pinned: float = PINNED) -> tuple[Array | None, float]:
    """The unit vector ``theta`` (zero off ``cols``) with ``E theta = 0``, if the equations pin it down.

    Returns ``(theta, gap)`` where ``gap`` is the smallest singular value over the next;
    ``(None, gap)`` when the null space has more than one dimension.
    """
    sub = E[:, cols]
    n = sub.shape[1]
    if sub.shape[0] < n - 1:
        return None, 1.0
    _, s, Vt = np.linalg.svd(sub, full_matrices=True)
    s_full = np.zeros(n)
    s_full[: s.size] = s
    if n < 2 or s_full[n - 2] == 0.0:
        return None, 1.0
    gap = float(s_full[n - 1] / s_full[n - 2])
    if s_full[n - 2] <= pinned * max(s_full[0], 1e-300):
        return None, gap
    theta = np.zeros(E.shape[1])
    theta[cols] = Vt[n - 1]
    return theta, gap
