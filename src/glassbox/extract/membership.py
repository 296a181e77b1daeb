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

from dataclasses import dataclass

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
# Predicted and found kink agree to this (relative to 1 + |h|, over the row's slope).
PLACE = 1e-6


@dataclass
class Tally:
    """Predicted crossings of a candidate's plane on lines, and how many had their kink."""

    crossings: int = 0
    confirmed: int = 0

    @property
    def share(self) -> float:
        """Share of crossings confirmed (0 with none)."""
        return self.confirmed / self.crossings if self.crossings else 0.0

    def verdict(self) -> str:
        """``"member"``, ``"deeper"`` or ``"unclear"`` (too few crossings, or in the gap)."""
        if self.crossings < MIN_CROSSINGS:
            return "unclear"
        if self.share >= ACCEPT:
            return "member"
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

    def to_json(self) -> dict[str, float | int | str]:
        """The evidence as recorded in extraction.json."""
        return {
            "crossings": self.crossings,
            "confirmed": self.confirmed,
            "share": self.share,
            "verdict": self.verdict(),
            "margin": self.margin(),
            "accept_at": ACCEPT,
            "reject_at": REJECT,
        }


def line_grid(prefix: Prefix, line: LineKinks) -> tuple[Array, Array]:
    """``GRID`` positions along ``line`` and the prefix state there (shared by every candidate)."""
    t = np.linspace(line.t_lo, line.t_hi, GRID)
    return t, prefix.state(line.point(t))


def crossings(
    prefix: Prefix,
    theta: Array,
    known: NDArray[np.bool_],
    line: LineKinks,
    grid: tuple[Array, Array] | None = None,
) -> tuple[Array, Array]:
    """Where ``line`` crosses the plane ``theta`` (where the row is exact), and ``|h| + 1`` there
    over the row's slope along the line (the scale of a position error)."""
    t, H = grid if grid is not None else line_grid(prefix, line)
    z = H @ theta[:-1] + theta[-1]
    valid = ~np.any(H[:, ~known] > 0, axis=1)
    cells = np.flatnonzero((np.sign(z[:-1]) * np.sign(z[1:]) < 0) & valid[:-1] & valid[1:])
    if cells.size == 0:
        return np.zeros(0), np.zeros(0)
    lo, hi = t[cells].copy(), t[cells + 1].copy()
    s_lo = np.sign(z[cells])
    for _ in range(BISECT):
        mid = 0.5 * (lo + hi)
        zm = prefix.state(line.point(mid)) @ theta[:-1] + theta[-1]
        same = np.sign(zm) == s_lo
        lo, hi = np.where(same, mid, lo), np.where(same, hi, mid)
    tc = 0.5 * (lo + hi)
    # Slope of the row's value along the line just around the crossing.
    step = 1e-6 * (line.t_hi - line.t_lo)
    za = prefix.state(line.point(tc - step)) @ theta[:-1]
    zb = prefix.state(line.point(tc + step)) @ theta[:-1]
    slope = np.abs(zb - za) / (2 * step)
    h = prefix.state(line.point(tc))
    scale = (1.0 + np.linalg.norm(h, axis=1)) / np.maximum(slope, 1e-300)
    return tc, scale


def tally_line(
    prefix: Prefix,
    theta: Array,
    known: NDArray[np.bool_],
    error: float,
    line: LineKinks,
    eps: float,
    grid: tuple[Array, Array] | None = None,
) -> Tally:
    """The crossings of one line with the plane ``theta``, and how many a found kink confirms."""
    tc, scale = crossings(prefix, theta, known, line, grid)
    out = Tally()
    if tc.size == 0:
        return out
    found = line.t[line.hidden]
    tol = (loosen(PLACE, eps) + 64 * error) * scale + 1e-9 * (line.t_hi - line.t_lo)
    # A crossing a hair from the line's ends cannot be told from the end itself.
    inside = (tc - line.t_lo > tol) & (line.t_hi - tc > tol)
    for t, r in zip(tc[inside], tol[inside], strict=True):
        out.crossings += 1
        if found.size and float(np.min(np.abs(found - t))) <= r:
            out.confirmed += 1
    return out
