"""Signs of a contractive layer by a system of equations (SOE; Canales-Martinez et al. 2024).

At a point ``x`` where the layer's local rows ``R = theta J(x)`` are independent (at least
as many independent prefix directions as the layer has neurons), ``n`` small input steps
``e_r = R^+ delta_r`` move the layer's pre-activations by chosen ``delta_r`` and nothing of
the prefix changes state. The output change is then ``Y = delta A`` where row ``A_j`` is
neuron ``j``'s downstream gain if it is on at ``x`` and exactly zero if it is off; one
linear solve gives every ``A_j`` at once, from ``n + 1`` queries. A clearly nonzero ``A_j``
says ``j`` is on at ``x``, so its sign is that of its pre-activation there. A zero row is
weak evidence (an active neuron whose gain is zero downstream reads the same), so only
the nonzero rows decide; every output is used jointly. The steps are taken at two sizes
and must agree (a deeper kink inside a step would break the linearity).

Cost: ``2 n + 1`` queries per point and a few points (each neuron is on at about half of
them), ``O(n^3)`` arithmetic per point; no search over signs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from glassbox.extract.prefix import Prefix
from glassbox.oracle.core import Oracle

Array = NDArray[np.float64]

# Points tried per layer: prefix-only candidates, and points actually queried.
CANDIDATES = 400
MAX_POINTS = 12
# Smallest singular value of the local rows, relative to the largest, for a usable point.
CONDITION = 1e-6
# Steps move each pre-activation by this share of its distance to zero (and the prefix room).
STEP = 1e-3
# An A_j this many times above the noise says "on"; the two step sizes must agree to AGREE.
ON = 1e4
AGREE = 1e-4
# An A_j under this many times the noise says "off".
OFF = 10.0


@dataclass(frozen=True)
class SoeSigns:
    """Per neuron: a sign (0 where no point saw it on), the margin, and how often it was seen."""

    sign: Array
    margin: Array
    seen_on: NDArray[np.int64]
    conflicts: NDArray[np.int64]
    points: int
    # Per neuron, counts of (on where y > 0, on where y < 0, off where y > 0, off where y < 0).
    sides: NDArray[np.int64] | None = None


def soe_points(
    prefix: Prefix, theta: Array, seeds: list[Array], rng: np.random.Generator, scale: float
) -> list[Array]:
    """Inputs where the layer's local rows are independent (prefix only, no queries)."""
    d, n = prefix.input_dim, theta.shape[0]
    out: list[Array] = []
    for t in range(CANDIDATES):
        base = seeds[t % len(seeds)] if seeds and t % 2 == 0 else np.zeros(d)
        x = base + scale * 4.0 ** rng.uniform(-2, 1) * rng.normal(size=d)
        J, _ = prefix.local_map(x)
        s = np.linalg.svd(theta[:, :-1] @ J, compute_uv=False)
        if s.size >= n and s[0] > 0 and s[n - 1] > CONDITION * s[0]:
            out.append(x)
            if len(out) >= MAX_POINTS:
                break
        if prefix.depth == 0 and not out:
            return []  # the first layer's rows are the same everywhere
    return out


def soe_signs(
    oracle: Oracle,
    prefix: Prefix,
    theta: Array,
    seeds: list[Array],
    rng: np.random.Generator,
    eps: float,
    scale: float = 1.0,
    both_sides: bool = False,
) -> SoeSigns | None:
    """Signs of the layer with rows ``theta`` by SOE, or None where no point isolates the layer.

    ``both_sides``: go on until every neuron was seen at points on both sides of its
    plane (to tell a +/- pair, on at both, from one neuron, off at one).
    """
    n = theta.shape[0]
    points = soe_points(prefix, theta, seeds, rng, scale)
    if not points:
        return None
    votes = np.zeros(n)
    seen = np.zeros(n, dtype=np.int64)
    margin = np.zeros(n)
    sides = np.zeros((n, 4), dtype=np.int64)
    used = 0
    for x in points:
        A = _gains(oracle, prefix, theta, x, rng, eps)
        if A is None or np.any(prefix.scaled_margins(x[None, :]) == 0):
            continue
        used += 1
        gain, noise = A
        y = theta[:, :-1] @ prefix.state(x[None, :])[0] + theta[:, -1]
        on = gain > ON * noise
        off = gain < OFF * noise
        votes[on] += np.sign(y[on])
        seen[on] += 1
        margin[on] = np.maximum(margin[on], 1.0 - ON * noise[on] / gain[on])
        for col, (mask, pos) in enumerate([(on, True), (on, False), (off, True), (off, False)]):
            sides[:, col] += mask & ((y > 0) == pos)
        judged = sides[:, :2] + sides[:, 2:]
        if np.all(seen >= 1) and (not both_sides or np.all(judged > 0)):
            break
    conflicts = (seen - np.abs(votes)).astype(np.int64) // 2
    sign = np.where((seen > 0) & (conflicts == 0), np.sign(votes), 0.0)
    return SoeSigns(sign, np.where(sign != 0, margin, 0.0), seen, conflicts, used, sides)


def _gains(
    oracle: Oracle, prefix: Prefix, theta: Array, x: Array, rng: np.random.Generator, eps: float
) -> tuple[Array, Array] | None:
    """``|A_j|`` (norm over outputs) at ``x`` and its noise level; None when the steps disagree."""
    n = theta.shape[0]
    J, c = prefix.local_map(x)
    R = theta[:, :-1] @ J
    y = R @ x + theta[:, :-1] @ c + theta[:, -1]
    delta = np.abs(y)[None, :] * rng.uniform(-1, 1, size=(n, n))
    E = np.linalg.lstsq(R, delta.T, rcond=None)[0].T  # input steps, one per row
    size = np.linalg.norm(E, axis=1)
    room = min(prefix.room(x, e / s) for e, s in zip(E, size, strict=True) if s > 0)
    shrink = STEP * min(1.0, room / max(float(np.max(size)), 1e-300))
    F = oracle.query(np.vstack([x, x + shrink * E, x + (shrink / 8) * E]))
    big, small = F[1 : n + 1] - F[0], F[n + 1 :] - F[0]
    A1 = np.linalg.solve(shrink * delta, big)
    A2 = np.linalg.solve((shrink / 8) * delta, small)
    top = max(float(np.max(np.abs(A1))), 1e-300)
    # Column j of delta scales with |y_j|: so does the error of A_j (answers' rounding).
    cond = float(np.linalg.cond(delta / np.abs(y)[None, :]))
    noise = 16 * eps * max(float(np.max(np.abs(F))), 1e-300) * cond / (shrink / 8 * np.abs(y))
    if np.any(np.max(np.abs(A1 - A2), axis=1) > AGREE * top + noise):
        return None
    return np.linalg.norm(A1, axis=1), noise
