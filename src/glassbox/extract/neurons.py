"""Witnesses grouped into the neurons of one layer; each neuron's row solved from all of them.

A neuron's row ``theta = (w, b)`` over the prefix state is the null vector of every
equation its witnesses gave (``witness.py``): partial rows from different witnesses are
merged, and rank-deficient witnesses add their subspace constraints, in one solve.
Coordinates that were never active at any witness stay unknown (``known`` is False)
until a witness where they are on is found (``attack`` goes looking for one).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from glassbox.extract.kinks import LineKinks
from glassbox.extract.membership import Tally
from glassbox.extract.prefix import Prefix
from glassbox.extract.tolerance import FLOAT64_EPS, loosen
from glassbox.extract.witness import PINNED, Witness, null_row

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

# Two partial rows are one neuron when their common coordinates (and bias) are parallel
# to within this sine, plus their own error bars.
SAME_ROW = 1e-6
# A neuron's kink: closer than this (relative to 1 + |x|) to its predicted hyperplane.
ON_PLANE = 1e-7
# Lines kept per neuron (for the next layer, should it turn out deeper).
MAX_LINES = 4


@dataclass
class Neuron:
    """One neuron of the layer being recovered, and the evidence for it."""

    width: int
    witnesses: list[Witness] = field(default_factory=list)
    theta: Array = field(default_factory=lambda: np.zeros(0))
    known: BoolArray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    error: float = 1.0
    flat_checks: int = 0
    flat_failures: int = 0
    refined: int = 0
    # Crossings of its predicted plane on lines, and how many had its kink (membership.py).
    tally: Tally = field(default_factory=Tally)
    # Lines its witnesses came from (a few), kept for the next layer if it is judged deeper.
    lines: list[LineKinks] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Whether every coordinate of the row is known."""
        return bool(np.all(self.known))

    @property
    def eps(self) -> float:
        """The relative precision of the answers its witnesses were measured from."""
        return self.witnesses[0].eps if self.witnesses else FLOAT64_EPS

    @property
    def rank_deficient(self) -> int:
        """How many of its witnesses were rank-deficient."""
        return sum(w.rank_deficient for w in self.witnesses)

    def solve(self) -> bool:
        """Re-solve the row from every witness; False (and unchanged) if they disagree."""
        known = np.any([w.active for w in self.witnesses], axis=0)
        rows = [w.row for w in self.witnesses]
        if all(r is not None for r in rows) and all(
            np.array_equal(w.active, known) for w in self.witnesses
        ):
            return self._average()
        E = np.vstack([w.equations for w in self.witnesses])
        cols = np.append(known, True)
        theta, gap = null_row(E, cols, loosen(PINNED, self.eps))
        if theta is None:
            return False
        resid = np.abs(E @ theta) / np.maximum(np.linalg.norm(E, axis=1), 1e-300)
        if np.max(resid) > loosen(1e-6, self.eps):
            return False
        self.theta = _oriented(theta)
        self.known = known
        self.error = max(gap, float(np.median(resid)))
        return True

    def join(self, witness: Witness) -> bool:
        """Take ``witness`` if it agrees and the row still solves with it; else leave all as was."""
        if not agrees(self, witness):
            return False
        self.witnesses.append(witness)
        if self.solve():
            return True
        self.witnesses.pop()
        return False

    def _average(self) -> bool:
        """Witnesses that all see the same coordinates: their rows, weighted by precision."""
        ref = self.witnesses[0].row
        assert ref is not None
        acc = np.zeros_like(ref)
        total = 0.0
        for w in self.witnesses:
            assert w.row is not None
            weight = 1.0 / max(w.error, 1e-16) ** 2
            acc += weight * (w.row if w.row @ ref >= 0 else -w.row)
            total += weight
        theta = acc / total
        spread = max(
            float(np.max(np.abs(_oriented(w.row) - _oriented(theta))))
            for w in self.witnesses
            if w.row is not None
        )
        if spread > loosen(1e-6, self.eps) + 64 * max(w.error for w in self.witnesses):
            return False
        self.theta = _oriented(theta)
        self.known = self.witnesses[0].active.copy()
        self.error = min(w.error for w in self.witnesses)
        return True

    def valid_at(self, prefix: Prefix, X: Array) -> NDArray[np.bool_]:
        """Where :meth:`z` is exact: every coordinate it does not know is off."""
        h = prefix.state(X)
        return ~np.any(h[:, ~self.known] > 0, axis=1)

    def distance(self, prefix: Prefix, x: Array) -> float:
        """First-order distance from ``x`` to the neuron's hyperplane, in input units."""
        if not prefix.depth:
            g = self.theta[:-1]
            return abs(float(g @ x + self.theta[-1])) / max(float(np.linalg.norm(g)), 1e-300)
        J, c = prefix.local_map(x)
        g = J.T @ self.theta[:-1]
        z = float(self.theta[:-1] @ (J @ x + c) + self.theta[-1])
        return abs(z) / max(float(np.linalg.norm(g)), 1e-300)


def _oriented(theta: Array) -> Array:
    """``theta`` scaled to unit norm with its largest entry positive (a canonical sign)."""
    theta = theta / np.linalg.norm(theta)
    return theta if theta[np.argmax(np.abs(theta))] > 0 else -theta


def new_neuron(witness: Witness) -> Neuron:
    """A neuron started from one full-rank witness."""
    assert witness.row is not None
    n = Neuron(width=witness.active.size, witnesses=[witness])
    n.theta = _oriented(witness.row)
    n.known = witness.active.copy()
    n.error = witness.error
    return n


def agrees(neuron: Neuron, witness: Witness) -> bool:
    """Whether ``witness`` can be the neuron's: its equations hold on the common coordinates."""
    common = neuron.known & witness.active
    if witness.row is not None:
        cols = np.append(common, True)
        a, b = witness.row[cols], neuron.theta[cols]
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        if np.sum(cols) < 2 or na < 0.05 * np.linalg.norm(witness.row) or nb == 0:
            return False
        sine = np.sqrt(max(0.0, 1.0 - (abs(a @ b) / (na * nb)) ** 2))
        return bool(sine <= loosen(SAME_ROW, neuron.eps) + 64 * (witness.error + neuron.error))
    # A rank-deficient witness only constrains: it must see nothing the neuron does not know.
    if np.any(witness.active & ~neuron.known):
        return False
    E = witness.equations
    resid = np.abs(E @ neuron.theta) / np.maximum(np.linalg.norm(E, axis=1), 1e-300)
    return bool(np.max(resid) <= loosen(1e-6, neuron.eps))


def assign(neurons: list[Neuron], witness: Witness) -> int:
    """Index of the neuron ``witness`` joins (-1: none; a full witness then starts a new one)."""
    for i, n in enumerate(neurons):
        if n.join(witness):
            return i
    return -1


def explained(neurons: list[Neuron], prefix: Prefix, x: Array) -> int:
    """The neuron whose hyperplane ``x`` lies on (where its row is exact there), or -1."""
    reach = 1.0 + float(np.linalg.norm(x))
    for i, n in enumerate(neurons):
        if (
            n.valid_at(prefix, x[None])[0]
            and n.distance(prefix, x) <= (loosen(ON_PLANE, n.eps) + 64 * n.error) * reach
        ):
            return i
    return -1


def merge_duplicates(neurons: list[Neuron]) -> int:
    """Merge neurons whose rows agree on every common coordinate; returns how many went.

    One neuron first met through witnesses with few common coordinates can start twice;
    once rows are filled in, the two coincide.
    """
    gone: set[int] = set()
    for a in range(len(neurons)):
        for b in range(a + 1, len(neurons)):
            if a in gone or b in gone:
                continue
            na, nb = neurons[a], neurons[b]
            cols = np.append(na.known & nb.known, True)
            u, v = na.theta[cols], nb.theta[cols]
            if np.sum(cols) < 3 or np.linalg.norm(u) < 0.5 or np.linalg.norm(v) < 0.5:
                continue
            sine = np.sqrt(
                max(0.0, 1.0 - (abs(u @ v) / (np.linalg.norm(u) * np.linalg.norm(v))) ** 2)
            )
            if sine > loosen(SAME_ROW, na.eps) + 64 * (na.error + nb.error):
                continue
            keep = Neuron(na.width, na.witnesses + nb.witnesses)
            if not keep.solve():
                # Witnesses from coarse answers may not solve together: the same plane
                # all the same; the one that knows more (refined, if either is) stays.
                keep = max((na, nb), key=lambda n: (int(n.known.sum()), n.refined, -n.error))
            keep.flat_checks = na.flat_checks + nb.flat_checks
            keep.flat_failures = na.flat_failures + nb.flat_failures
            tally = Tally()
            tally.add(na.tally)
            tally.add(nb.tally)
            keep.tally = tally
            keep.lines = (na.lines + nb.lines)[:MAX_LINES]
            neurons[a] = keep
            gone.add(b)
    for i in sorted(gone, reverse=True):
        del neurons[i]
    return len(gone)
