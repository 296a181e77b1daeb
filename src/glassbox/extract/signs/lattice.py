"""The last hidden layer's signs when a linear solve cannot pin them: a low-density subset sum.

The output fit gives ``A sigma = b`` with ``sigma_j`` in {0, 1} (1 for a neuron whose true
sign is negative): ``k * width`` real equations for ``n`` unknowns
(:mod:`glassbox.extract.signs.last_layer`). When ``n`` exceeds the rank, least squares
cannot choose, but each equation carries some 40 bits, so the instance has very low
density and lattice reduction solves it in polynomial time (Lagarias-Odlyzko; the
CJLOSS embedding with ``x = 2 sigma - 1`` in {-1, +1}): the lattice spanned by the rows

    [ e_j | K A[:, j] | 0 ]   (j = 1..n)        [ 0 | K (2 b - A 1) | 1 ]

holds ``(x, K (A x - 2 b + A 1), -1)``, of norm about ``sqrt(n + 1)`` for the true ``x``,
and LLL (python-flint's ``fmpz_mat.lll``) finds them when the equations carry enough
bits. Cost: one LLL of an ``(n + 1) x (n + k*width + 1)`` integer matrix with entries of
``B`` bits, polynomial (about ``n^4 B`` operations at worst, far less in practice), tried
at a few precisions ``B``; no search over sign vectors. LLL alone solves the instances
of density ``n / (k * width * B)`` up to about 0.3 at these sizes; where it finds
nothing, BKZ with block 20 (fpylll, the optional ``glassbox[lattice]`` extra; polynomial
for a fixed block) is tried, which reaches denser ones (3 equations, 60 unknowns).

Several sign vectors may fit within the answers' precision when the layer has very few
inputs (d = 1, 2): their nets then give the same function to that precision, and the
one found is reported with the count of others seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]

# Bits kept per equation, tried from the most precise down (the noise sets the ceiling).
PRECISIONS = (44, 38, 32, 26, 20)
# A candidate must solve the equations to this relative residual (times the slack).
SOLVED = 2.0**-20
# BKZ block size for the fallback when LLL finds nothing (denser instances: d = 3, n = 50+).
BKZ_BLOCK = 20


@dataclass(frozen=True)
class LatticeSigns:
    """``sigma`` in {0, 1} per neuron, how well it solves ``A sigma = b``, and its rivals."""

    sigma: Array
    residual: float  # max |A sigma - b| / max |A|
    bits: int  # the precision that found it
    rivals: int  # other {0,1} vectors seen that solve the equations as well


def lattice_sigma(A: Array, b: Array, slack: float = 1.0) -> LatticeSigns | None:
    """The 0/1 vector ``sigma`` with ``A sigma = b`` (real ``A``, ``m x n``), or None.

    ``slack`` loosens the residual a solution may leave (coarse answers fit less exactly).
    """
    from flint import fmpz_mat  # python-flint: a core dependency (LLL)

    m, n = A.shape
    big = float(np.max(np.abs(A))) if A.size else 0.0
    if n == 0 or big == 0.0:
        return None
    As, bs = A / big, b / big
    limit = SOLVED * slack
    # LLL's time grows with the bits kept, and too few make it slow as well: start with
    # what the density needs (about 4 n / m bits per equation, and a margin), then the
    # most precise and down; BKZ, slower and stronger, only if LLL found nothing.
    first = int(min(max(np.ceil(4 * n / m) + 12, PRECISIONS[-1]), PRECISIONS[0]))
    order = list(dict.fromkeys((first, *PRECISIONS)))
    for bits, reduce in [(b, "lll") for b in order] + [(PRECISIONS[0], "bkz")]:
        rows = _embedding(As, bs, bits)
        reduced = fmpz_mat(rows).lll().tolist() if reduce == "lll" else _bkz(rows)
        found = _candidates(reduced, n, As, bs, limit)
        if found:
            best = min(found, key=lambda c: c[1])
            others = {tuple(s) for s, r in found if r <= 2 * best[1] + limit / 64}
            return LatticeSigns(best[0], best[1], bits, max(0, len(others) - 1))
    return None


def _embedding(A: Array, b: Array, bits: int) -> list[list[int]]:
    """The CJLOSS basis (module docstring) with ``bits`` bits kept per equation."""
    n = A.shape[1]
    K = 2.0**bits
    top = np.hstack([np.eye(n), np.rint(K * A.T), np.zeros((n, 1))])
    last = np.concatenate([np.zeros(n), np.rint(K * (2 * b - A.sum(axis=1))), [1.0]])
    return [[int(v) for v in r] for r in np.vstack([top, last]).tolist()]


def _bkz(rows: list[list[int]]) -> list[list[Any]]:
    """BKZ-20 (stronger than LLL, for denser instances) when fpylll is installed, else nothing."""
    try:
        from fpylll import BKZ, IntegerMatrix  # optional: glassbox[lattice]
    except ImportError:
        return []
    M = IntegerMatrix.from_matrix(rows)
    BKZ.reduction(M, BKZ.Param(BKZ_BLOCK))
    return [list(M[i]) for i in range(M.nrows)]


def _candidates(
    reduced: list[list[Any]], n: int, A: Array, b: Array, limit: float
) -> list[tuple[Array, float]]:
    """Rows of the reduced basis that read as a sign vector solving the equations."""
    out: list[tuple[Array, float]] = []
    if not reduced:
        return out
    R = np.array([[int(v) for v in row] for row in reduced], dtype=np.float64)
    for row in R:
        x, tail = row[:n], row[-1]
        if abs(tail) != 1 or not np.all(np.abs(x) == 1):
            continue
        # row = +-(sum_j x_j top_j - last) = +-(x, K (A x - 2b + A 1), -1)
        sigma = (1 - x * tail) / 2
        res = float(np.max(np.abs(A @ sigma - b))) if A.size else 0.0
        if res <= limit:
            out.append((sigma, res))
    return out
