"""The membership decision for one layer's candidates (``membership.py`` holds the tally).

Every search line is tallied against every candidate at no query cost (:func:`tally_all`).
At the end of the search, :func:`judge` keeps the members, sets the deeper candidates
aside with the lines their witnesses came from (the next layer looks at those first),
and re-measures the unclear ones on fresh long lines aimed through their planes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from glassbox.extract.kinks import LineKinks, find_kinks
from glassbox.extract.membership import ACCEPT, MIN_PATTERNS, REJECT, Tally, tally_lines
from glassbox.extract.neurons import Neuron
from glassbox.extract.precision import onto_plane
from glassbox.extract.predicted import SearchSettings
from glassbox.extract.prefix import Prefix
from glassbox.oracle.core import Oracle

Array = NDArray[np.float64]

# Fresh lines aimed at one candidate whose membership is not yet clear, and the share of
# confirmed crossings that decides one still unclear after them.
RECHECK_LINES = 8
MIDDLE = 0.5 * (ACCEPT + REJECT)


@dataclass
class Verdict:
    """The candidates kept, the evidence against those set aside, and their lines."""

    kept: list[Neuron] = field(default_factory=list)
    rejected: list[Tally] = field(default_factory=list)
    held: list[LineKinks] = field(default_factory=list)
    marginal: int = 0


def tally_all(prefix: Prefix, neurons: list[Neuron], line: LineKinks, eps: float) -> None:
    """Add ``line``'s crossings of every candidate's plane to its tally (no queries)."""
    if not neurons or not prefix.depth:
        return
    tallies = tally_lines(
        prefix,
        np.array([n.theta for n in neurons]),
        np.array([n.known for n in neurons]),
        np.array([n.error for n in neurons]),
        line,
        eps,
    )
    for n, t in zip(neurons, tallies, strict=True):
        n.tally.add(t)


def judge(
    oracle: Oracle,
    prefix: Prefix,
    neurons: list[Neuron],
    settings: SearchSettings,
    rng: np.random.Generator,
    half: float,
    quick: bool = False,
) -> Verdict:
    """Keep the candidates whose predicted planes the lines confirm; set the deeper ones aside.

    A candidate without a clear verdict is re-measured on fresh long lines (half-length
    ``half``) aimed through random points of its predicted plane (every candidate is
    tallied on them too), up to ``RECHECK_LINES`` lines; one still inside the margin then
    goes by the middle of it, and one never crossed at all (if complete) by the flatness
    tests it passed.
    ``quick``: no re-measuring, only the candidates already clearly deeper go.
    """
    s = settings.input_scale
    out = Verdict()
    if quick:
        # Before the costly filling of rows: only the clearly deeper ones go.
        for n in neurons:
            if n.tally.verdict() == "deeper":
                out.rejected.append(n.tally)
                out.held.extend(x for x in n.lines if x not in out.held)
            else:
                out.kept.append(n)
        return out
    for n in neurons:
        for _ in range(RECHECK_LINES):
            if n.tally.verdict() != "unclear":
                break
            p = _aim(prefix, n, s, rng)
            if p is None:
                break
            d = rng.normal(size=prefix.input_dim)
            d /= np.linalg.norm(d)
            # The aimed point sits anywhere on the line, not always at its middle.
            shift = rng.uniform(-0.5, 0.5) * half
            (line,) = find_kinks(
                oracle, (p - shift * d)[None], d[None], -half, half, eps=settings.eps
            )
            tally_all(prefix, neurons, line, settings.eps)
        if n.tally.verdict() == "unclear" and n.tally.crossings:
            out.marginal += 1
    for n in neurons:
        t = n.tally
        unclear = t.verdict() == "unclear"
        # A row never crossed elsewhere counts on its flatness only when complete: an
        # incomplete one is exact only where its witnesses were (a deeper neuron met in a
        # single-neuron cone looks flat there).
        alone = not t.crossings and n.complete
        spread = len(t.patterns) >= MIN_PATTERNS
        if t.verdict() == "member" or (unclear and ((t.share >= MIDDLE and spread) or alone)):
            out.kept.append(n)
        else:
            out.rejected.append(t)
            out.held.extend(x for x in n.lines if x not in out.held)
    return out


def _aim(prefix: Prefix, n: Neuron, s: float, rng: np.random.Generator) -> Array | None:
    """A point of the candidate's predicted plane where its row is exact: anywhere first,
    then ever nearer a witness (a rare neuron's row may be exact in few regions)."""
    for k in range(12):
        q = rng.normal(0.0, s, size=prefix.input_dim)
        if k >= 4:
            x = n.witnesses[int(rng.integers(len(n.witnesses)))].x
            q = x + 2.0 ** (4 - k) * q
        p = onto_plane(prefix, n.theta, q)
        if p is not None and n.valid_at(prefix, p[None])[0]:
            return p
    return None
