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
# Decide after this many clean votes in a row with none against.
EASY = 3
# Step size, relative to the room inside the prefix region.
WIGGLE_FRACTION = 1e-3
LONGEST = 0.3


@dataclass(frozen=True)
class SignVote:
    """The sign of one neuron and the evidence for it."""

    sign: float
    votes_plus: int
    votes_minus: int
    degenerate: int
    confidence: float
    decided: bool


def wiggle_signs(
    oracle: Oracle,
    prefix: Prefix,
    theta: Array,
    points: list[list[Array]],
    rng: np.random.Generator,
    eps: float,
) -> list[SignVote]:
    """A vote per neuron of the layer with rows ``theta``; ``points[j]`` lie on ``j``'s hyperplane."""
    out = []
    for j in range(theta.shape[0]):
        plus = minus = degenerate = 0
        weight_plus = weight_minus = 0.0
        pool = list(points[j])
        tried = 0
        while tried < MAX_VOTES and pool:
            x = pool[tried % len(pool)]
            if tried >= len(pool):
                x = _nearby(prefix, theta[j], x, rng)
            tried += 1
            vote = _vote(oracle, prefix, theta, j, x, eps)
            if vote is None:
                degenerate += 1
                continue
            side, conf = vote
            if side > 0:
                plus += 1
                weight_plus += conf
            else:
                minus += 1
                weight_minus += conf
            if (plus >= EASY and minus == 0) or (minus >= EASY and plus == 0):
                break
        total = weight_plus + weight_minus
        sign = 1.0 if weight_plus >= weight_minus else -1.0
        confidence = abs(weight_plus - weight_minus) / total if total > 0 else 0.0
        majority = max(plus, minus)
        decided = majority >= 2 and min(plus, minus) * 4 < majority and confidence > 0.5
        out.append(SignVote(sign, plus, minus, degenerate, confidence, decided))
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
