"""Signs of a hidden layer that is not the last, by the neuron wiggle (polynomial time).

At a point on neuron ``j``'s hyperplane, an input step ``e`` that moves ``j``'s
pre-activation by ``+delta`` and the layer's other neurons as little as possible (not
at all when the layer's local rows are independent) changes the output only on the side
where ``j`` is active: ``|f(x + e) - f(x)|`` against ``|f(x - e) - f(x)|`` (the norm over
all outputs) says which side that is. Each point is a vote with a confidence; easy
neurons stop after a few clean votes, hard ones get more, and a neuron whose votes stay
degenerate (both sides flat: nothing downstream sees it there) or split is reported,
never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from glassbox.extract.neurons import ON_PLANE, Neuron
from glassbox.extract.precision import onto_plane
from glassbox.extract.prefix import Prefix
from glassbox.oracle.core import Oracle

Array = NDArray[np.float64]

MAX_VOTES = 24
# A vote is clean when the flat side's change is this small relative to the other side's.
CLEAN = 1e-3
# Decide after this many votes in a row, at isolating points, with none against.
EASY = 3
# Step size, relative to the room inside the prefix region.
WIGGLE_FRACTION = 1e-3
LONGEST = 0.3
# The step moves the layer's other neurons by at most this much per unit move of the target:
# below it the point isolates the neuron and the flat side is truly flat.
ISOLATED = 1e-6
# Prefix-only tries (no queries) per neuron for fresh isolating points on its plane.
FRESH_TRIES = 400


@dataclass(frozen=True)
class SignVote:
    """The sign of one neuron and the evidence for it."""

    sign: float
    votes_plus: int
    votes_minus: int
    degenerate: int
    confidence: float
    decided: bool
    # Votes taken where the step isolated the neuron (the ones a decision rests on).
    isolated: int = 0


def wiggle_signs(
    oracle: Oracle,
    prefix: Prefix,
    theta: Array,
    points: list[list[Array]],
    rng: np.random.Generator,
    eps: float,
    scale: float = 1.0,
) -> list[SignVote]:
    """A vote per neuron of the layer with rows ``theta``; ``points[j]`` lie on ``j``'s hyperplane.

    Early stopping (Foerster et al. 2024): a neuron whose first votes at isolating points
    agree is decided in ``EASY`` votes; one whose votes split or whose points do not
    isolate it gets fresh points on its plane (found on the prefix, no queries) and more
    votes, up to ``MAX_VOTES``; only then is it reported undecided. Cost: at most
    ``3 * MAX_VOTES * 5`` queries per neuron (a vote may grow its step 4 times).
    """
    return [
        wiggle_one(oracle, prefix, theta, j, points[j], rng, eps, scale)
        for j in range(theta.shape[0])
    ]


def wiggle_one(
    oracle: Oracle,
    prefix: Prefix,
    theta: Array,
    j: int,
    seeds: list[Array],
    rng: np.random.Generator,
    eps: float,
    scale: float,
) -> SignVote:
    """Votes for neuron ``j`` until clear or spent: isolating points first, fresh ones after."""
    iso_seed = [leak(prefix, theta, j, x) <= ISOLATED for x in seeds]
    pool = [x for x, ok in zip(seeds, iso_seed, strict=True) if ok]
    rest = [x for x, ok in zip(seeds, iso_seed, strict=True) if not ok]
    topped = False
    # Per kind of point (isolating or not): votes (+, -) and their summed confidences.
    count = {True: [0, 0], False: [0, 0]}
    weight = {True: [0.0, 0.0], False: [0.0, 0.0]}
    degenerate = tried = 0
    while tried < MAX_VOTES:
        if tried >= len(pool) and not topped:
            # The isolating seeds are spent (or split): fresh isolating points, then the rest.
            pool += isolating_points(prefix, theta, j, seeds, rng, scale, MAX_VOTES - tried)
            pool += rest
            topped = True
        if not pool:
            break
        x = (
            pool[tried]
            if tried < len(pool)
            else _nearby(prefix, theta[j], pool[tried % len(pool)], rng)
        )
        tried += 1
        iso = leak(prefix, theta, j, x) <= ISOLATED
        vote = _vote(oracle, prefix, theta, j, x, eps)
        if vote is None:
            degenerate += 1
            continue
        side, conf = vote
        c = count[iso]
        c[0 if side > 0 else 1] += 1
        weight[iso][0 if side > 0 else 1] += conf
        if iso and min(c) == 0 and max(c) >= EASY:
            break
    # Isolating votes, where there are any, are the evidence; the others only without them.
    iso_votes = sum(count[True])
    (plus, minus), (wp, wm) = count[bool(iso_votes)], weight[bool(iso_votes)]
    total = wp + wm
    sign = 1.0 if wp >= wm else -1.0
    confidence = abs(wp - wm) / total if total > 0 else 0.0
    majority = max(plus, minus)
    decided = majority >= 2 and min(plus, minus) * 4 < majority and confidence > 0.5
    return SignVote(sign, plus, minus, degenerate, confidence, decided, iso_votes)


def leak(prefix: Prefix, theta: Array, j: int, x: Array) -> float:
    """How much the best step that moves neuron ``j`` by 1 at ``x`` must move the others."""
    J, _ = prefix.local_map(x)
    R = theta[:, :-1] @ J
    target = np.zeros(theta.shape[0])
    target[j] = 1.0
    e, *_ = np.linalg.lstsq(R, target, rcond=None)
    return float(np.linalg.norm(R @ e - target))


def isolating_points(
    prefix: Prefix,
    theta: Array,
    j: int,
    seeds: list[Array],
    rng: np.random.Generator,
    scale: float,
    want: int = MAX_VOTES,
) -> list[Array]:
    """Points on ``j``'s plane where a step can move ``j`` alone (prefix only, no queries).

    Isolation needs as many independent active prefix directions as the layer has
    neurons; witnesses often sit where few are on. Random points around the seeds and
    around the origin, at scales from ``scale/64`` to ``4 scale``, are pulled onto the
    plane by Newton and kept where they isolate. Cost: ``FRESH_TRIES`` prefix evaluations.
    """
    if prefix.depth == 0:
        return []  # the first layer's local rows are the same everywhere: nothing to gain
    d = prefix.input_dim
    out: list[Array] = []
    for t in range(FRESH_TRIES):
        base = seeds[t % len(seeds)] if seeds and t % 2 == 0 else np.zeros(d)
        y = base + scale * 4.0 ** rng.uniform(-3, 1) * rng.normal(size=d)
        x = onto_plane(prefix, theta[j], y)
        if x is None or leak(prefix, theta, j, x) > ISOLATED:
            continue
        out.append(x)
        if len(out) >= want:
            break
    return out


def _nearby(prefix: Prefix, row: Array, x: Array, rng: np.random.Generator) -> Array:
    """Another point on the same hyperplane, a short random walk inside the prefix region."""
    g = prefix.normal(row, x)
    v = rng.normal(size=x.size)
    v -= (v @ g) * g
    v /= np.linalg.norm(v)
    room = prefix.room(x, v)
    step = 0.3 * room if np.isfinite(room) else 0.3 * (1.0 + np.linalg.norm(x))
    return x + step * v


def _vote(
    oracle: Oracle, prefix: Prefix, theta: Array, j: int, x: Array, eps: float
) -> tuple[float, float] | None:
    """(+1 or -1, confidence) from one wiggle at ``x``; None when both sides are flat."""
    J, _ = prefix.local_map(x)
    R = theta[:, :-1] @ J  # the layer's local rows in input space
    target = np.zeros(theta.shape[0])
    target[j] = 1.0
    e, *_ = np.linalg.lstsq(R, target, rcond=None)
    move = float(R[j] @ e)
    if not move > 0:
        return None
    unit: Array = e / np.linalg.norm(e)
    room = prefix.room(x, unit)
    reach = room if np.isfinite(room) else 1.0 + np.linalg.norm(x)
    # The flat side stays flat at any step inside the region (nothing of the layer moves
    # but this neuron): a step too small to show above the rounding grows, up to LONGEST.
    fraction = WIGGLE_FRACTION
    while True:
        size = fraction * reach
        F = oracle.query(np.stack([x, x + size * unit, x - size * unit]))
        up = float(np.linalg.norm(F[1] - F[0]))
        down = float(np.linalg.norm(F[2] - F[0]))
        noise = 16 * eps * max(float(np.max(np.abs(F))), 1e-300)
        if max(up, down) > 4 * noise:
            break
        fraction *= 16
        if fraction > LONGEST:
            return None
    side = 1.0 if up > down else -1.0
    conf = abs(up - down) / (up + down)
    return side, conf


def points_on_plane(prefix: Prefix, neuron: Neuron) -> list[Array]:
    """The neuron's witness points, each moved onto its (refined) plane where it strayed.

    A witness measured from coarse answers can sit off the plane the refined row gives,
    or even belong to a neighbour; the wiggle needs points on the plane itself.
    """
    out = []
    for w in neuron.witnesses:
        x = w.x
        if neuron.distance(prefix, x) > ON_PLANE * (1 + float(np.linalg.norm(x))):
            moved = onto_plane(prefix, neuron.theta, x)
            x = moved if moved is not None else x
        out.append(x)
    return out
