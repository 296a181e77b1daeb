"""Coordinates of a row never active at a witness, filled by solving on the prefix.

For each unknown coordinate ``j``: solve for a point where ``j`` is just on and the known
part of the row is zero, then measure the kink found beside it (a witness that sees
``j``); with coarse answers, if no such witness joins, read ``theta_j`` from where the
kinks sit instead.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.typing import NDArray

from glassbox.extract.kinks import LineKinks
from glassbox.extract.neurons import Neuron
from glassbox.extract.precision import point_with
from glassbox.extract.predicted import SearchSettings, kink_where_predicted, locate
from glassbox.extract.prefix import Prefix
from glassbox.extract.tolerance import is_coarse, step_fraction
from glassbox.extract.witness import Witness, measure
from glassbox.oracle.core import Oracle

Array = NDArray[np.float64]


def fill(
    oracle: Oracle,
    prefix: Prefix,
    neuron: Neuron,
    settings: SearchSettings,
    rng: np.random.Generator,
) -> None:
    """Witnesses where each unknown coordinate is on, found by solving on the prefix."""
    for _ in range(neuron.width):
        missing = np.flatnonzero(~neuron.known)
        if missing.size == 0:
            return
        progress = False
        for j in missing:
            if neuron.known[j]:
                continue
            for start in _starts(neuron, prefix, rng, settings.input_scale):
                on = step_fraction(1e-3, settings.eps, 0.1) * settings.input_scale
                x = point_with(prefix, neuron.theta, int(j), start, on)
                if x is None:
                    continue
                w = _witness_near(oracle, prefix, neuron, int(j), x, settings)
                if w is not None and w.active[j] and neuron.join(w):
                    progress = True
                    break
            else:
                if is_coarse(settings.eps):
                    progress |= _fill_from_kinks(oracle, prefix, neuron, int(j), settings, rng)
        if not progress:
            return


def _fill_from_kinks(
    oracle: Oracle,
    prefix: Prefix,
    neuron: Neuron,
    j: int,
    settings: SearchSettings,
    rng: np.random.Generator,
) -> bool:
    """Coordinate ``j`` of the row from where its kink sits with ``j`` on (coarse answers).

    Coarse gradients may not pin ``j`` down, but a kink's place does: where the known part
    of the row is ``z`` and coordinate ``j`` is ``h_j``, the kink says ``theta_j = -z / h_j``.
    A second kink, elsewhere, must then sit where the completed row predicts.
    """
    s = settings.input_scale
    on = step_fraction(1e-3, settings.eps, 0.1) * s
    others = ~neuron.known
    others[j] = False
    trial: Neuron | None = None
    for start in _starts(neuron, prefix, rng, s):
        guess = trial if trial is not None else neuron
        x = point_with(prefix, guess.theta, j, start, on)
        if x is None or np.any(prefix.state(x[None])[0][others] > 0):
            continue
        if trial is not None:
            if kink_where_predicted(
                oracle, prefix, trial, x, prefix.normal(trial.theta, x), settings, 1.0
            ):
                neuron.theta, neuron.known = trial.theta, trial.known
                return True
            trial = None
            continue
        found = _kink_near(oracle, prefix, neuron, j, x, settings)
        if found is None:
            continue
        line, k = found
        h = prefix.state(line.point(float(line.t[k]))[None])[0]
        if h[j] <= 0 or np.any(h[others] > 0):
            continue
        theta = neuron.theta.copy()
        theta[j] = -float(theta[:-1] @ h + theta[-1]) / h[j]
        known = neuron.known.copy()
        known[j] = True
        trial = dataclasses.replace(neuron, theta=theta / np.linalg.norm(theta), known=known)
    return False


def _starts(neuron: Neuron, prefix: Prefix, rng: np.random.Generator, s: float) -> list[Array]:
    """Witness points, then random points of the neuron's plane near them (other regions)."""
    out = [neuron.witnesses[i].x for i in rng.permutation(len(neuron.witnesses))[:2]]
    for _ in range(4):
        x = neuron.witnesses[int(rng.integers(len(neuron.witnesses)))].x
        out.append(x + s * rng.normal(size=x.size))
    return out


def _kink_near(
    oracle: Oracle, prefix: Prefix, neuron: Neuron, j: int, x: Array, settings: SearchSettings
) -> tuple[LineKinks, int] | None:
    """The neuron's kink near ``x``, searched along its normal with coordinate ``j`` held on."""
    G, _ = prefix.last_preact_map(x)
    g = prefix.normal(neuron.theta, x)
    nj = G[j] / np.linalg.norm(G[j])
    g = g - (g @ nj) * nj
    norm = np.linalg.norm(g)
    if norm == 0:
        return None
    return locate(oracle, prefix, neuron, x, g / norm, settings, reach=0.1 * settings.input_scale)


def _witness_near(
    oracle: Oracle, prefix: Prefix, neuron: Neuron, j: int, x: Array, settings: SearchSettings
) -> Witness | None:
    """The witness at the neuron's kink near ``x`` (see :func:`_kink_near`)."""
    found = _kink_near(oracle, prefix, neuron, j, x, settings)
    if found is None:
        return None
    line, k = found
    return measure(oracle, prefix, line, k, settings.eps)
