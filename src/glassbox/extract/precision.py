"""Precision refinement: a neuron's row re-solved from precisely placed critical points.

A kink is placed along its line to near float64 precision, far better than any finite
difference gives a gradient. Every kink ``x`` of neuron ``(w, b)`` satisfies
``w . h(x) + b = 0`` with ``h`` the prefix state, known exactly: with the kinks spread
over the neuron's hyperplane (found by predicting points on it from the current row and
searching a short line across each), the row is the null vector of those equations. The
gradient equations of the witnesses stay in, weighted down, for coordinates no kink
informs.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from glassbox.extract.kinks import find_kinks
from glassbox.extract.neurons import Neuron
from glassbox.extract.prefix import Prefix
from glassbox.extract.tolerance import coarseness, is_coarse, loosen, step_fraction
from glassbox.oracle.core import Oracle

Array = NDArray[np.float64]

# Kinks per unknown of the row.
OVERSAMPLE = 2
# Rows with more unknowns keep their gradient estimate: two kinks per unknown would cost
# more queries than every other step together (784 inputs: ~1600 kinks per neuron).
MAX_UNKNOWNS = 256
# Weight of the witnesses' gradient equations beside the position equations.
GRADIENT_WEIGHT = 1e-4
# A re-found kink must be this close to the prediction (relative to 1 + |x|).
NEAR = 1e-5
PROJECT_ITERATIONS = 20
# Most refinement passes per neuron: each starts from the better row the last one gave, and
# they stop once a pass no longer halves the row's error.
REFINE_PASSES = 3
# Rounds of the kink search on a refinement line: it crosses one plane where predicted, found
# in a round or two; noisy answers could otherwise split a few such lines for ever.
REFINE_ROUNDS = 24
# Open segments per refinement line: one kink is expected there. Where the output is
# small beside the net's inner sums, its rounding exceeds the tolerance (relative to the
# output) and a line splits without end (10-10-10-1 seed 8: 10,000 queries on one line).
REFINE_SEGMENTS = 4
# A row from two passes whose error estimate is this small gets no third (it reads rounding:
# 10-8-6-3's third passes went up as often as down; one pass alone left 10-10-10-1 seed 5's
# first layer at 2^-42, and its second layer at 2^-33 through it).
SETTLED = 1e-13
# A row whose error estimate is still above this after a pass that did not halve it gets
# another pass all the same (fresh kinks; 10-10-10-1 seed 0 read 4.8e-9 -> 8.3e-9 once).
ROUGH = 1e-11
# Rounds of kink placement per pass (later rounds only while a coordinate is thin), and
# tries per round at a point on the plane where a thinly covered coordinate is on.
ROUNDS = 6
COVER_TRIES = 3
# Trimmed kinks must leave equations whose second-smallest singular value is at least this
# relative to the largest (10-8-6-3 seed 35: trimming left rank 6 of 8 and a row off by 1e-2).
SPAN = 1e-9
# Kink states equal to this many decimals (unit rows) are one equation.
SAME_STATE_DIGITS = 9
# A first refinement whose error estimate rises past this (and 16x the row's old one) is
# refused: kinks re-found on a rare neuron's plane can belong to its neighbours.
WORSE = 1e-8


def onto_plane(prefix: Prefix, theta: Array, x: Array) -> Array | None:
    """The nearest point to ``x`` on the (bent) hyperplane ``theta . (h, 1) = 0`` (Newton)."""
    for _ in range(PROJECT_ITERATIONS):
        J, c = prefix.local_map(x)
        g = J.T @ theta[:-1]
        z = float(theta[:-1] @ (J @ x + c) + theta[-1])
        gg = float(g @ g)
        if gg == 0:
            return None
        if abs(z) <= 1e-13 * np.sqrt(gg) * (1 + np.linalg.norm(x)):
            return x
        x = x - (z / gg) * g
    return None


def point_with(prefix: Prefix, theta: Array, j: int, x: Array, target: float) -> Array | None:
    """A point on the plane ``theta`` where prefix neuron ``j`` is on, ``target`` (input units) in.

    Newton on two piecewise-linear constraints, the local maps taken fresh at every step.
    """
    for _ in range(2 * PROJECT_ITERATIONS):
        J, c = prefix.local_map(x)
        G, z0 = prefix.last_preact_map(x)
        gz = J.T @ theta[:-1]
        z = float(theta[:-1] @ (J @ x + c) + theta[-1])
        gj = G[j]
        nz, nj = np.linalg.norm(gz), np.linalg.norm(gj)
        if nz == 0 or nj == 0:
            return None
        pj = float(gj @ x + z0[j]) / nj
        if abs(z) <= 1e-12 * nz * (1 + np.linalg.norm(x)) and abs(pj - target) <= 0.1 * target:
            return x
        A = np.stack([gz / nz, gj / nj])
        rhs = np.array([-z / nz, target - pj])
        x = x + np.linalg.lstsq(A, rhs, rcond=None)[0]
    return None


def refine_neuron(
    oracle: Oracle,
    prefix: Prefix,
    neuron: Neuron,
    rng: np.random.Generator,
    scale: float,
    eps: float,
) -> int:
    """Re-solve ``neuron``'s row from kinks placed along its hyperplane; returns kinks used."""
    unknowns = int(np.sum(neuron.known)) + 1
    if unknowns > MAX_UNKNOWNS:
        return 0
    want = OVERSAMPLE * unknowns + 2
    starts = np.array([w.x for w in neuron.witnesses])
    P: list[Array] = []
    weight: list[float] = []
    # Kinks in one prefix region where only a few coordinates are on share one state h
    # (the plane meets that region where those coordinates are fixed): one equation, kept
    # once, or they fill the quota and set the median that trims the informative kinks.
    seen: set[bytes] = set()
    for round_ in range(ROUNDS):
        need = want - len(P)
        thin = _thin(P, neuron.known) if P and prefix.depth else np.zeros(0, dtype=np.int64)
        if need <= 0 and round_ >= 2 and not thin.size:
            break
        need = max(need, 4)
        base = starts[rng.integers(0, len(starts), size=need)]
        X = base + scale * 4.0 ** rng.uniform(-2, 0.5, size=(need, 1)) * rng.normal(size=base.shape)
        candidates = [onto_plane(prefix, neuron.theta, x) for x in X]
        # Coordinates on at fewer than two kinks are pinned down by the gradients alone:
        # add kinks where they are well on, a few tries each (where the deeper layers are
        # off, the neuron's kink does not show in the output), first near a witness that
        # saw the coordinate on (its kink showed there).
        for j in thin:
            near = [w.x for w in neuron.witnesses if w.active[j]]
            for _ in range(COVER_TRIES):
                pool = near if near and rng.random() < 0.5 else list(base)
                start = pool[int(rng.integers(len(pool)))]
                target = scale * float(rng.uniform(0.1, 1.0))
                candidates += [point_with(prefix, neuron.theta, int(j), start, target)]
        pts, dirs = [], []
        for p in candidates:
            if p is None or not neuron.valid_at(prefix, p[None])[0]:
                continue
            pts.append(p)
            dirs.append(prefix.normal(neuron.theta, p))
        if not pts:
            continue
        r = step_fraction(1e-3, eps, 0.05) * scale
        lines = find_kinks(
            oracle,
            np.array(pts),
            np.array(dirs),
            -r,
            r,
            eps=eps,
            max_rounds=REFINE_ROUNDS,
            max_segments=REFINE_SEGMENTS,
        )
        for line in lines:
            if line.hidden.size == 0:
                continue
            k = int(line.hidden[np.argmin(np.abs(line.t[line.hidden]))])
            t = float(line.t[k])
            if abs(t) > loosen(NEAR, eps) * (1 + np.linalg.norm(line.x0)):
                continue
            x = line.point(t)
            h = prefix.state(x[None])[0]
            if np.any(h[~neuron.known] > 0):
                continue
            row = np.append(h, 1.0)
            # A kink's place is as sure as its slope jump is large against the rounding.
            sharp = float(np.linalg.norm(line.slope_right[k] - line.slope_left[k]))
            row = row / np.linalg.norm(row)
            key = np.round(row, SAME_STATE_DIGITS).tobytes()
            if key in seen:
                continue
            seen.add(key)
            P.append(row)
            weight.append(sharp / max(float(line.slope_error[k]), 1e-300))
    if len(P) < unknowns:
        return 0
    w = np.array(weight)
    rows = np.array(P) * np.sqrt(np.minimum(w / np.median(w), 1.0))[:, None]
    grads = GRADIENT_WEIGHT * np.vstack([w.equations for w in neuron.witnesses])
    covered = np.sum(np.array(P)[:, :-1] > 0, axis=0) >= 2
    cols = np.append(neuron.known, True)
    if np.all(covered[neuron.known]) and _spans(rows[:, cols]):
        grads = grads[:0]  # the kinks pin every coordinate: the rougher gradients stay out
    # Start from the kinks the current row explains: a kink misplaced (two merged into
    # one, or a neighbour's) can pull a least-squares fit too far for trimming to see it.
    # Unless those leave the row free: where the row's error shows in a few regions only,
    # the kinks there are the ones that tell.
    prior = np.abs(rows @ neuron.theta)
    keep = prior <= max(16 * float(np.median(prior)), 1e-14)
    if not _spans(np.vstack([rows[keep], grads])[:, cols]):
        keep[:] = True
    theta = neuron.theta.copy()
    s = np.zeros(0)
    # Trimmed least squares: a neighbour's kink re-found by mistake fits far worse than
    # the rest; drop such kinks and solve again until none stands out.
    for _ in range(4):
        E = np.vstack([rows[keep], grads])
        _, s, Vt = np.linalg.svd(E[:, cols], full_matrices=False)
        theta = np.zeros_like(neuron.theta)
        theta[cols] = Vt[-1]
        if theta @ neuron.theta < 0:
            theta = -theta
        resid = np.abs(rows @ theta)
        fresh = resid <= max(16 * float(np.median(resid[keep])), 1e-14)
        if np.array_equal(fresh, keep) or not _spans(np.vstack([rows[fresh], grads])[:, cols]):
            break
        keep = fresh
    if s.size >= 2 and s[-2] > 0:
        neuron.error = float(s[-1] / s[-2]) if s[-1] > 0 else 0.0
    neuron.theta = theta / np.linalg.norm(theta)
    neuron.refined = int(keep.sum())
    return int(keep.sum())


def _spans(E: Array) -> bool:
    """Whether equations ``E`` leave a single null direction: trimming to the kinks that fit
    best can keep only a few regions' states, which every row of a wider family fits."""
    if E.shape[0] < E.shape[1] - 1:
        return False
    s = np.linalg.svd(E, compute_uv=False)
    return bool(s[E.shape[1] - 2] > SPAN * s[0])


def _thin(P: list[Array], known: NDArray[np.bool_]) -> NDArray[np.intp]:
    """Known coordinates on at fewer than two of the kinks ``P`` (rows ``(h, 1)``)."""
    on = np.sum(np.array(P)[:, :-1] > 0, axis=0)
    return np.flatnonzero(known & (on < 2))


def refine_or_keep(
    oracle: Oracle,
    prefix: Prefix,
    neuron: Neuron,
    rng: np.random.Generator,
    scale: float,
    eps: float,
    strict: bool = False,
) -> int:
    """One refinement pass that keeps the old row if the new one's error estimate is worse
    (``strict``) or far worse (16x and past :data:`WORSE`); returns kinks used (0: kept)."""
    before = (neuron.theta.copy(), neuron.error, neuron.refined)
    used = refine_neuron(oracle, prefix, neuron, rng, scale, eps)
    bound = before[1] if strict else max(16 * before[1], loosen(WORSE, eps))
    if used and neuron.error > bound:
        neuron.theta, neuron.error, neuron.refined = before
        return 0
    return used


def refine_layer(
    oracle: Oracle,
    prefix: Prefix,
    neurons: list[Neuron],
    rng: np.random.Generator,
    scale: float,
    eps: float,
) -> None:
    """Refine every neuron until its row stops improving (at most :data:`REFINE_PASSES` passes).

    A first pass over a gradient estimate (whose error bar is not the kinks') is refused
    only if far worse; a pass over a row from kinks is undone if worse at all (fresh kinks
    that left a coordinate to the gradients alone took 10-8-6-3's row from 2^-41 to 2^-31).
    Passes stop after two once the row is :data:`SETTLED`, or when it stops halving while
    better than :data:`ROUGH`; a row still rough gets the next pass's fresh kinks.
    """
    # Coarse answers keep the plain rule (passes while the row halves): their rows never
    # come near these float64 figures.
    coarse = is_coarse(eps)
    settled = 0.0 if coarse else SETTLED * coarseness(eps)
    still_rough = np.inf if coarse else ROUGH * coarseness(eps)
    for neuron in neurons:
        for k in range(REFINE_PASSES):
            if k >= 2 and neuron.error <= settled:
                break
            rough, strict = neuron.error, k > 0 or neuron.refined > 0
            if not refine_or_keep(oracle, prefix, neuron, rng, scale, eps, strict):
                break
            if neuron.error >= 0.5 * rough and neuron.error <= still_rough:
                break
