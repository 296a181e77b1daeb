"""Kinks where a row predicts them: the line search's settings, kinks on the prefix's own
planes, the nearest kink on a short line through a predicted point, and the test that a
neuron's kink sits where its row says."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from glassbox.extract.kinks import LineKinks, find_kinks
from glassbox.extract.neurons import Neuron
from glassbox.extract.prefix import Prefix
from glassbox.extract.tolerance import loosen
from glassbox.extract.witness import ON_PREFIX
from glassbox.oracle.core import Oracle

Array = NDArray[np.float64]

# Predicted and found kink positions after a walk agree to this (relative to 1 + |x|).
FLAT_TOLERANCE = 1e-6


@dataclass(frozen=True)
class SearchSettings:
    """The knobs of the line search (from ``ExtractConfig``)."""

    input_scale: float
    line_length: float
    lines_per_batch: int
    max_lines: int
    patience: int
    eps: float
    width_hint: int | None = None


def on_prefix(prefix: Prefix, x: Array, eps: float) -> bool:
    """Whether ``x`` lies on a hyperplane of a recovered earlier layer."""
    if not prefix.depth:
        return False
    reach = 1 + np.linalg.norm(x)
    return bool(np.min(prefix.scaled_margins(x)) <= loosen(ON_PREFIX, eps) * reach)


def kink_where_predicted(
    oracle: Oracle,
    prefix: Prefix,
    neuron: Neuron,
    p: Array,
    g: Array,
    settings: SearchSettings,
    walk: float,
) -> bool:
    """Whether the kink nearest ``p`` (searched along ``g``) sits at ``p``, within what the
    row's error allows after ``walk`` input units from where it was measured."""
    found = locate(oracle, prefix, neuron, p, g, settings)
    if found is None:
        return False
    line, k = found
    tol = (loosen(FLAT_TOLERANCE, settings.eps) + 64 * walk * neuron.error) * (
        1 + np.linalg.norm(p)
    )
    return bool(abs(float(line.t[k])) <= tol)


def locate(
    oracle: Oracle,
    prefix: Prefix,
    neuron: Neuron,
    p: Array,
    g: Array,
    settings: SearchSettings,
    reach: float | None = None,
) -> tuple[LineKinks, int] | None:
    """The kink nearest ``p`` on a short line through ``p`` along ``g`` (None: none there)."""
    if not np.any(g):
        return None  # the row sees nothing active at p: no plane to cross
    r = reach if reach is not None else 1e-2 * settings.input_scale
    r = min(r, 0.9 * prefix.room(p, g)) if prefix.depth else r
    if not r > 0:
        return None
    (line,) = find_kinks(oracle, p[None], g[None], -r, r, eps=settings.eps)
    ks = [
        int(k)
        for k in line.hidden
        if not on_prefix(prefix, line.point(float(line.t[k])), settings.eps)
    ]
    if not ks:
        return None
    k = min(ks, key=lambda k: abs(float(line.t[k])))
    return line, k
