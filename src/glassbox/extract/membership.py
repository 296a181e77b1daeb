"""Which layer a kink belongs to: a global test over whole lines, at no query cost.

A neuron of layer ``i`` bends on one hyperplane ``theta . (h, 1) = 0`` of layer ``i-1``'s
hidden state ``h``, in every region. Along any line, the prefix (known, queried for
nothing) says where that hyperplane is crossed; the line search already found every
kink on the line, so each predicted crossing is either *confirmed* (a kink sits there)
or *missed*. A neuron of this layer is confirmed almost everywhere (misses only where
everything downstream of it is off, so its kink is invisible). A deeper neuron met in
one pattern of layer ``i`` borrows a row that is exact only inside that pattern: across
the rest of its predicted surface no kink sits there, and it misses most crossings.

The decision carries its margin: the share of confirmed crossings against ``ACCEPT``
and ``REJECT``; in between, or with too few crossings, the candidate is re-measured on
fresh long lines aimed through its predicted plane in regions no witness was in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from glassbox.extract.kinks import LineKinks
from glassbox.extract.prefix import Prefix
from glassbox.extract.tolerance import loosen

Array = NDArray[np.float64]

# Points per line at which the prefix is evaluated to find sign changes of the row.
GRID = 2048
# Bisection steps that place a predicted crossing (on the prefix: no queries).
BISECT = 48
# A candidate is a member when at least this share of its crossings is confirmed, and
# deeper when at most REJECT is; MIN_CROSSINGS crossings are needed for either verdict.
ACCEPT = 0.8
REJECT = 0.5
MIN_CROSSINGS = 4
# A member's confirmed crossings must lie in at least this many activation patterns of the
# previous layer (one pattern: a deeper neuron's borrowed row is exact there too).
MIN_PATTERNS = 3
# Predicted and found kink agree to this (relative to 1 + |h|, over the row's slope).
PLACE = 1e-6


@dataclass
class Tally:
    """Predicted crossings of a candidate's plane on lines, and how many had their kink."""

    crossings: int = 0
    confirmed: int = 0
    # The previous layer's activation patterns (packed) at the confirmed crossings.
    patterns: set[bytes] = field(default_factory=set)

    @property
    def share(self) -> float:
        """Share of crossings confirmed (0 with none)."""
        return self.confirmed / self.crossings if self.crossings else 0.0

    def verdict(self) -> str:
        """``"member"``, ``"deeper"`` or ``"unclear"`` (too few crossings, or in the gap)."""
        if self.crossings < MIN_CROSSINGS:
            return "unclear"
        if self.share >= ACCEPT:
            return "member" if len(self.patterns) >= MIN_PATTERNS else "unclear"
        if self.share <= REJECT:
            return "deeper"
        return "unclear"

    def margin(self) -> float:
        """Distance of the share from the nearer threshold (negative: inside the gap)."""
        if self.share >= ACCEPT:
            return self.share - ACCEPT
        if self.share <= REJECT:
            return REJECT - self.share
        return -min(self.share - REJECT, ACCEPT - self.share)

    def add(self, other: Tally) -> None:
        """Add another tally's counts (two candidates found to be one neuron)."""
        self.crossings += other.crossings
        self.confirmed += other.confirmed
        self.patterns |= other.patterns

    def to_json(self) -> dict[str, float | int | str]:
        """The evidence as recorded in extraction.json."""
        return {
            "crossings": self.crossings,
            "confirmed": self.confirmed,
            "share": self.share,
            "patterns": len(self.patterns),
            "verdict": self.verdict(),
            "margin": self.margin(),
            "accept_at": ACCEPT,
            "reject_at": REJECT,
        }


def crossings(
    prefix: Prefix, thetas: Array, known: NDArray[np.bool_], line: LineKinks
) -> tuple[NDArray[np.int64], Array, Array, NDArray[np.bool_]]:
    """Where ``line`` crosses each plane ``thetas[j]`` (where row ``j`` is exact, ``known[j]``).

    Returns ``(which, t, scale, on)``: the plane of each crossing, its place on the line,
    ``1 + |h|`` there over the row's slope along the line (the scale of a position error),
    and the previous layer's activation pattern there.
    All planes at once: the prefix is evaluated on one grid, then one bisection.
    """
    t = np.linspace(line.t_lo, line.t_hi, GRID)
    H = prefix.state(line.point(t))
    Z = H @ thetas[:, :-1].T + thetas[:, -1]
    # Row j is exact where none of its unknown coordinates is on.
    valid = ((H > 0).astype(np.float64) @ (~known).T.astype(np.float64)) == 0
    change = (np.sign(Z[:-1]) * np.sign(Z[1:]) < 0) & valid[:-1] & valid[1:]
    cell, which = np.nonzero(change)
    if cell.size == 0:
        return which, np.zeros(0), np.zeros(0), np.zeros((0, thetas.shape[1] - 1), dtype=bool)
    W, b = thetas[which, :-1], thetas[which, -1]
    lo, hi = t[cell].copy(), t[cell + 1].copy()
    s_lo = np.sign(Z[cell, which])
    for _ in range(BISECT):
        mid = 0.5 * (lo + hi)
        zm = np.sum(prefix.state(line.point(mid)) * W, axis=1) + b
        same = np.sign(zm) == s_lo
        lo, hi = np.where(same, mid, lo), np.where(same, hi, mid)
    tc = 0.5 * (lo + hi)
    # Slope of the row's value along the line just around the crossing.
    step = 1e-6 * (line.t_hi - line.t_lo)
    za = np.sum(prefix.state(line.point(tc - step)) * W, axis=1)
    zb = np.sum(prefix.state(line.point(tc + step)) * W, axis=1)
    slope = np.abs(zb - za) / (2 * step)
    h = prefix.state(line.point(tc))
    scale = (1.0 + np.linalg.norm(h, axis=1)) / np.maximum(slope, 1e-300)
    return which, tc, scale, h > 0


def tally_lines(
    prefix: Prefix,
    thetas: Array,
    known: NDArray[np.bool_],
    errors: Array,
    line: LineKinks,
    eps: float,
) -> list[Tally]:
    """Per plane, its crossings of ``line``, how many a found kink confirms, and where."""
    n = thetas.shape[0]
    which, tc, scale, on = crossings(prefix, thetas, known, line)
    if tc.size == 0:
        return [Tally() for _ in range(n)]
    tol = (loosen(PLACE, eps) + 64 * errors[which]) * scale + 1e-9 * (line.t_hi - line.t_lo)
    # A crossing a hair from the line's ends cannot be told from the end itself.
    inside = (tc - line.t_lo > tol) & (line.t_hi - tc > tol)
    found = np.sort(line.t[line.hidden])
    if found.size:
        k = np.clip(np.searchsorted(found, tc), 1, found.size)
        near = np.minimum(
            np.abs(found[k - 1] - tc), np.abs(found[np.minimum(k, found.size - 1)] - tc)
        )
        hit = inside & (near <= tol)
    else:
        hit = np.zeros(tc.size, dtype=bool)
    total = np.bincount(which[inside], minlength=n)
    confirmed = np.bincount(which[hit], minlength=n)
    out = [Tally(int(c), int(m)) for c, m in zip(total, confirmed, strict=True)]
    for j, pattern in zip(which[hit], on[hit], strict=True):
        out[int(j)].patterns.add(np.packbits(pattern).tobytes())
    return out


def tally_line(
    prefix: Prefix,
    theta: Array,
    known: NDArray[np.bool_],
    error: float,
    line: LineKinks,
    eps: float,
) -> Tally:
    """The crossings of one line with the plane ``theta``, and how many a found kink confirms."""
    return tally_lines(prefix, theta[None], known[None], np.array([error]), line, eps)[0]
