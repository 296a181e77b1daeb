"""Which sign method for which layer, and the cross-check where more than one applies.

- The last hidden layer: its signs come with the output fit (a linear solve, or lattice
  reduction when the layer is wider than its equations; :mod:`.last_layer`). SOE
  confirms them where the layer is contractive enough for it (:func:`confirm`).
- A hidden layer that is not the last: the neuron wiggle (:mod:`.wiggle`) on every neuron,
  and SOE (:mod:`.soe`) where it applies; each neuron takes the sign its methods agree on.

Two methods that disagree on a neuron are measured again (fresh points, more votes);
if they still disagree the neuron is reported, never guessed. Cost of the dispatch
itself: nothing beyond the methods it runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from glassbox.extract.prefix import Prefix
from glassbox.extract.signs.soe import SoeSigns, soe_signs
from glassbox.extract.signs.wiggle import SignVote, wiggle_one, wiggle_signs
from glassbox.oracle.core import Oracle

Array = NDArray[np.float64]

WIGGLE = "neuron wiggle"
SOE = "SOE"


@dataclass(frozen=True)
class Probe:
    """What every sign method works with: the oracle, the signed prefix, the random stream,
    the answers' precision and the input scale."""

    oracle: Oracle
    prefix: Prefix
    rng: np.random.Generator
    eps: float
    scale: float


@dataclass(frozen=True)
class LayerSigns:
    """A layer's signs (0 where undecided), each neuron's evidence, and the layer's summary."""

    signs: Array
    evidence: list[dict[str, Any]]
    method: str
    agreed: list[str]
    margin: float
    undecided: list[int]
    conflicts: list[int]

    def failure(self, depth: int) -> str:
        """Why layer ``depth`` cannot be signed ("" when every neuron is)."""
        n = len(self.signs)
        if self.conflicts:
            return (
                f"failed: the sign methods of layer {depth} disagree on {len(self.conflicts)} "
                f"of {n} neurons even after measuring again (neurons {self.conflicts[:8]}); "
                "not guessed"
            )
        if self.undecided:
            return (
                f"failed: signs of {len(self.undecided)} of {n} neurons of layer {depth} stay "
                f"ambiguous after their votes (neurons {self.undecided[:8]}); not guessed"
            )
        return ""


def disagreements(a: Array, b: Array) -> list[int]:
    """Neurons that both sign vectors decide (nonzero) but differently."""
    return [int(j) for j in np.flatnonzero((a != 0) & (b != 0) & (a != b))]


def disputed_pairs(signs: Array, soe: SoeSigns) -> list[int]:
    """Planes whose pairing SOE contradicts: a +/- pair (sign 0) off at one side, or a
    single neuron on at both.

    A true pair has a neuron on at each side of its plane, a single neuron at one; a
    fake pair is what a neuron missing from the layer leaves in the fit (its part folded
    into the affine term), and a missing neuron's steps also light up the others.
    """
    if soe.sides is None:
        return []
    on_pos, on_neg, off_pos, off_neg = soe.sides.T
    one_side = ((on_pos > 0) & (off_neg > 0) & (on_neg == 0)) | (
        (on_neg > 0) & (off_pos > 0) & (on_pos == 0)
    )
    # And the converse: one neuron by the fit, yet on at both sides of its plane.
    both = (on_pos > 0) & (on_neg > 0)
    return [int(j) for j in np.flatnonzero(((signs == 0) & one_side) | ((signs != 0) & both))]


def sign_inner_layer(p: Probe, theta: Array, points: list[list[Array]]) -> LayerSigns:
    """Signs of a hidden layer that is not the last: the wiggle, SOE where it applies, agreed."""
    oracle, prefix, rng, eps, scale = p.oracle, p.prefix, p.rng, p.eps, p.scale
    seeds = [p for pts in points for p in pts[:2]]
    soe = soe_signs(oracle, prefix, theta, seeds, rng, eps, scale)
    votes = wiggle_signs(oracle, prefix, theta, points, rng, eps, scale)
    wig = np.array([v.sign if v.decided else 0.0 for v in votes])
    if soe is not None:
        split = disagreements(wig, soe.sign)
        if split:
            # Measure again: fresh SOE points, and fresh wiggle votes for the split neurons.
            soe = soe_signs(oracle, prefix, theta, seeds, rng, eps, scale) or soe
            for j in split:
                votes[j] = wiggle_one(oracle, prefix, theta, j, points[j], rng, eps, scale)
            wig = np.array([v.sign if v.decided else 0.0 for v in votes])
    other = soe.sign if soe is not None else np.zeros_like(wig)
    conflicts = disagreements(wig, other)
    signs = np.where(wig != 0, wig, other)
    signs[conflicts] = 0.0
    evidence = [_evidence(j, votes[j], soe) for j in range(theta.shape[0])]
    used = [WIGGLE] + ([SOE] if soe is not None and np.any(soe.sign != 0) else [])
    agreed = [m for m in used if _agrees(m, signs, wig, other)]
    decided = [e["sign_margin"] for e, s in zip(evidence, signs, strict=True) if s != 0]
    return LayerSigns(
        signs,
        evidence,
        " + ".join(used),
        agreed,
        min(decided) if decided else 0.0,
        [int(j) for j in np.flatnonzero(signs == 0) if j not in conflicts],
        conflicts,
    )


def confirm(
    p: Probe, theta: Array, signs: Array, seeds: list[Array]
) -> tuple[SoeSigns | None, list[int]]:
    """SOE beside signs found another way: ``(its result, neurons it still contradicts)``.

    ``theta`` holds the rows as the other method found them (unsigned); ``signs`` its
    verdict (0 for a +/- pair: disputed when SOE sees it on at one side only). A
    contradiction is measured again at fresh points before it is reported.
    """
    oracle, prefix, rng, eps, scale = p.oracle, p.prefix, p.rng, p.eps, p.scale
    pairs = bool(np.any(signs == 0))
    soe = soe_signs(oracle, prefix, theta, seeds, rng, eps, scale, both_sides=pairs)
    if soe is None:
        return None, []
    split = disagreements(signs, soe.sign) + disputed_pairs(signs, soe)
    if split:
        again = soe_signs(oracle, prefix, theta, seeds, rng, eps, scale, both_sides=pairs)
        if again is not None:
            soe = again
            split = sorted(disagreements(signs, soe.sign) + disputed_pairs(signs, soe))
    return soe, split


def fake_pairs(p: Probe, theta: Array, signs: Array | None, seeds: list[Array]) -> bool:
    """Whether SOE disputes the +/- pairs an exact fit reads (a neuron still missing)."""
    if signs is None or not np.any(signs == 0):
        return False
    soe = soe_signs(p.oracle, p.prefix, theta, seeds, p.rng, p.eps, p.scale, both_sides=True)
    return soe is not None and bool(disputed_pairs(signs, soe))


def _agrees(method: str, signs: Array, wig: Array, soe: Array) -> bool:
    mine = wig if method == WIGGLE else soe
    return bool(np.any(mine != 0)) and not disagreements(signs, mine)


def _evidence(j: int, v: SignVote, soe: SoeSigns | None) -> dict[str, Any]:
    """One neuron's sign evidence, as the layer record keeps it."""
    methods = [WIGGLE] if v.decided else []
    margin = v.confidence if v.decided else 0.0
    info: dict[str, Any] = {
        "votes": [v.votes_plus, v.votes_minus],
        "degenerate_votes": v.degenerate,
        "isolated_votes": v.isolated,
        "sign_confidence": v.confidence,
    }
    if soe is not None:
        info["soe_seen_on"] = int(soe.seen_on[j])
        if soe.sign[j] != 0:
            methods.append(SOE)
            margin = max(margin, float(soe.margin[j]))
    info.update(sign_methods=methods, sign_margin=margin)
    return info
