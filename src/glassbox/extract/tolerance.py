"""How the attack's thresholds scale with the precision of the oracle's answers.

Every threshold in the attack was set for float64 answers (relative precision 2^-52).
Coarser answers (float32, rounded, noisy after averaging) blur every measured slope,
kink position and row by a factor that grows with the precision ``eps``; the thresholds
that compare such measurements grow with it (:func:`loosen`), and the finite-difference
steps get longer (:func:`step_fraction`) so that slopes still tell.
"""

from __future__ import annotations

from glassbox.oracle.probe import FLOAT32_EPS, FLOAT64_EPS

__all__ = [
    "FLOAT32_EPS",
    "FLOAT64_EPS",
    "coarseness",
    "is_coarse",
    "loosen",
    "step_fraction",
    "tolerance_factor",
]


# Answers this many times coarser than float64 (2^-36 and coarser) take the coarse paths (refine each neuron at
# once, longer patience, rows completed from kink positions).
COARSE = 2.0**16


def is_coarse(eps: float) -> bool:
    """Whether answers of relative precision ``eps`` take the attack's coarse paths."""
    return coarseness(eps) > COARSE


def coarseness(eps: float) -> float:
    """How many times coarser than float64 the answers are (at least 1)."""
    return max(1.0, eps / FLOAT64_EPS)


def loosen(base: float, eps: float) -> float:
    """A float64 threshold ``base`` for answers of relative precision ``eps``.

    Measured quantities come from differences of answers over steps that themselves grow
    with ``eps``; their errors grow roughly as the cube root of the coarseness.
    """
    return base * coarseness(eps) ** (1.0 / 3.0)


def step_fraction(base: float, eps: float, most: float) -> float:
    """A finite-difference step ``base`` (a fraction of the room) for precision ``eps``, at most ``most``."""
    return min(most, base * coarseness(eps) ** 0.25)


def tolerance_factor(eps: float) -> float:
    """Answer errors as a multiple of ``eps``: float64 nets carry many ulps of their own
    rounding; coarser answers are dominated by their final rounding, which ``eps`` bounds."""
    return 2.0**8 if eps <= 4 * FLOAT64_EPS else 2.0**3
