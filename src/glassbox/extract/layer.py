"""Recover one hidden layer's rows (up to sign and positive scale) through the known prefix.

1. Kinks on random lines; a kink on a prefix hyperplane belongs to an earlier layer and
   one on a known neuron's hyperplane is already explained.
2. Every other kink gives a witness (``witness.py``); witnesses are grouped into neurons
   and each neuron's row is solved from all of its witnesses (``neurons.py``).
3. A new neuron must be *flat* inside the prefix's linear region: walk along its
   predicted hyperplane and find the kink again exactly where predicted. A deeper
   neuron's surface bends where a neuron of this layer toggles, so it fails this test
   (and waits for the next layer).
4. Coordinates never active at a witness are filled by solving, on the prefix, for a
   point where the missing coordinate is just on and the known part of the row is zero,
   and measuring the kink found beside it (``fill.py``).
Lines continue until ``patience`` lines in a row bring no new neuron.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from glassbox.extract.fill import fill
from glassbox.extract.judge import judge, tally_all
from glassbox.extract.kinks import LineKinks, find_kinks
from glassbox.extract.membership import Tally
from glassbox.extract.neurons import (
    MAX_LINES,
    Neuron,
    assign,
    explained,
    merge_duplicates,
    new_neuron,
)
from glassbox.extract.precision import onto_plane, refine_layer, refine_or_keep
from glassbox.extract.predicted import SearchSettings, kink_where_predicted, on_prefix
from glassbox.extract.prefix import Prefix
from glassbox.extract.tolerance import is_coarse
from glassbox.extract.witness import measure
from glassbox.oracle.core import Oracle

Array = NDArray[np.float64]

# How often a new neuron is walked along before it is judged, and how many walks must
# find the kink where predicted (two misses reject it).
FLAT_TRIES = 5
FLAT_HITS = 3
# At most this many kinks are kept per layer for the self-check.
MAX_SEEN = 4096
# Lines into single-neuron cones are this many times longer than the others (at least).
SINGLE_REACH = 8.0
# Lines of deeper candidates kept for the next layer.
MAX_HELD = 16
# Single-neuron-cone lines per look at most (a random choice of cones past that: wide
# first layers would otherwise spend the budget on long lines).
MAX_SINGLES = 32


@dataclass
class LayerSearch:
    """What the search of one layer found, and what it saw on the way."""

    neurons: list[Neuron] = field(default_factory=list)
    deeper: int = 0
    lines: int = 0
    kinks: int = 0
    first_line: LineKinks | None = None
    unexplained: list[Array] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seen: list[tuple[Array, Array]] = field(default_factory=list)
    saw_zero: bool = False
    on_points: dict[int, list[Array]] = field(default_factory=dict)
    # Lines whose kinks came from candidates judged deeper: the next layer looks at them first.
    held: list[LineKinks] = field(default_factory=list)
    # Membership evidence of the candidates judged deeper (for the record).
    rejected: list[Tally] = field(default_factory=list)
    # Candidates whose membership stayed inside the margin after re-measuring.
    marginal: int = 0


def search_layer(
    oracle: Oracle,
    prefix: Prefix,
    settings: SearchSettings,
    rng: np.random.Generator,
    report: Callable[[LayerSearch], None] = lambda _: None,
    resume: LayerSearch | None = None,
    reach: float = 1.0,
    held: list[LineKinks] | None = None,
) -> LayerSearch:
    """Find the next layer's neurons through ``prefix`` (see the module docstring).

    ``resume`` continues an earlier search of the same layer (more lines, ``reach``
    times longer: a neuron that toggles only far out shows up there). ``held`` are lines
    the previous layer set aside (their kinks were deeper): they are looked at first.
    """
    out = resume if resume is not None else LayerSearch()
    for line in held or []:
        _look(oracle, prefix, line, out, settings, rng)
    d0 = prefix.input_dim
    s = settings.input_scale
    half = reach * settings.line_length * s * math.sqrt(d0)
    quiet = 0
    limit = out.lines + settings.max_lines
    # Each look first sends one line into each cone where a single first-layer neuron is
    # on, longer than the others: a deeper neuron on almost everywhere turns off there,
    # far out, if anywhere (all of them are searched before patience counts).
    singles = _single_patterns(prefix)
    if singles.shape[0] > MAX_SINGLES:
        singles = singles[rng.permutation(singles.shape[0])[:MAX_SINGLES]]
    while out.lines < limit and (quiet < settings.patience or singles.shape[0]):
        if settings.width_hint is not None and _settled(out) >= settings.width_hint:
            break
        if singles.shape[0]:
            d, singles = singles[: limit - out.lines], singles[limit - out.lines :]
            x0 = rng.normal(0.0, s, size=d.shape)
            length = max(reach, SINGLE_REACH) * half / reach
        else:
            n = min(settings.lines_per_batch, limit - out.lines)
            x0 = rng.normal(0.0, s, size=(n, d0))
            d = _directions(prefix, n, rng)
            length = half
        with oracle.phase("lines"):
            lines = find_kinks(oracle, x0, d, -length, length, eps=settings.eps)
        for line in lines:
            out.lines += 1
            if out.first_line is None:
                out.first_line = line
            _remember(out, line, rng)
            before = _settled(out)
            _look(oracle, prefix, line, out, settings, rng)
            quiet = 0 if _settled(out) > before else quiet + 1
            report(out)
    if prefix.depth:
        _judged(oracle, prefix, out, settings, rng, half, quick=True)
    with oracle.phase("fill"):
        for neuron in out.neurons:
            if not neuron.complete:
                fill(oracle, prefix, neuron, settings, rng)
    if prefix.depth:
        _judged(oracle, prefix, out, settings, rng, half)
    merged = merge_duplicates(out.neurons)
    if merged:
        out.notes.append(f"merged {merged} neuron(s) met twice")
    coarse = is_coarse(settings.eps)
    # A first layer waits: if it is the lone hidden layer, the loop polishes it for far
    # fewer queries than kinks cost (extract/polish.py); if not, the loop refines it then.
    if prefix.depth or coarse:
        with oracle.phase("refine"):
            refine_layer(oracle, prefix, out.neurons, rng, settings.input_scale, settings.eps)
    if coarse and merge_duplicates(out.neurons):
        out.notes.append("merged neuron(s) that refinement showed to be one")
    return out


def _judged(
    oracle: Oracle,
    prefix: Prefix,
    out: LayerSearch,
    settings: SearchSettings,
    rng: np.random.Generator,
    half: float,
    quick: bool = False,
) -> None:
    """Keep the members (``judge.py``); the deeper candidates' lines wait for the next layer."""
    with oracle.phase("membership"):
        verdict = judge(oracle, prefix, out.neurons, settings, rng, half, quick=quick)
    out.deeper += len(out.neurons) - len(verdict.kept)
    out.neurons = verdict.kept
    out.rejected.extend(verdict.rejected)
    out.marginal += verdict.marginal
    for line in verdict.held:
        if len(out.held) < MAX_HELD and line not in out.held:
            out.held.append(line)


def _directions(prefix: Prefix, n: int, rng: np.random.Generator) -> Array:
    """Unit line directions; with a prefix, half aim at random first-layer sign patterns.

    Far along ``d`` the first layer's pattern is ``sign(W1 d)``: Gaussian directions visit
    a few patterns again and again, and a deeper neuron that toggles only where rare
    patterns hold would never be crossed. ``d = W1^+ sigma`` for random signs ``sigma``
    spreads the lines over the patterns.
    """
    d = rng.normal(size=(n, prefix.input_dim))
    if prefix.depth:
        W1 = prefix.weights[0]
        aimed = rng.permutation(n)[: n // 2 + n % 2]
        # As many neurons on as off on average, but every count equally likely: patterns
        # with one or two neurons on are where a neuron on almost everywhere turns off.
        on = rng.integers(1, W1.shape[0] + 1, size=aimed.size)
        ranks = np.argsort(rng.random((aimed.size, W1.shape[0])), axis=1)
        sigma = np.where(ranks < on[:, None], 1.0, -1.0)
        d[aimed] = np.linalg.lstsq(W1, sigma.T, rcond=None)[0].T
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def _single_patterns(prefix: Prefix) -> Array:
    """Unit directions along which exactly one first-layer neuron is on, far out (one each)."""
    if not prefix.depth:
        return np.zeros((0, prefix.input_dim))
    W1 = prefix.weights[0]
    sigma = 2.0 * np.eye(W1.shape[0]) - 1.0
    d = np.linalg.lstsq(W1, sigma.T, rcond=None)[0].T
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def _remember(out: LayerSearch, line: LineKinks, rng: np.random.Generator) -> None:
    """Keep the line's hidden kinks (bounded) and a few points where each output is on."""
    if len(out.seen) < MAX_SEEN:
        out.seen.extend((line.point(float(t)), line.d) for t in line.t[line.hidden])
    out.saw_zero |= bool(np.any(line.samples_f == 0.0))
    for j in range(line.samples_f.shape[1]):
        kept = out.on_points.setdefault(j, [])
        on = np.flatnonzero(line.samples_f[:, j] > 0)
        if on.size and len(kept) < 16:
            pick = rng.choice(on, size=min(2, on.size), replace=False)
            kept.extend(line.point(line.samples_t[pick]))


def _settled(out: LayerSearch) -> int:
    return sum(1 for n in out.neurons if n.flat_checks > n.flat_failures)


def _absorb(
    oracle: Oracle,
    prefix: Prefix,
    line: LineKinks,
    out: LayerSearch,
    settings: SearchSettings,
    rng: np.random.Generator,
) -> None:
    for k in line.hidden:
        out.kinks += 1
        x = line.point(float(line.t[k]))
        if on_prefix(prefix, x, settings.eps) or explained(out.neurons, prefix, x) >= 0:
            continue
        with oracle.phase("signatures"):
            w = measure(oracle, prefix, line, int(k), settings.eps)
        if w is None:
            out.unexplained.append(x)
            continue
        i = assign(out.neurons, w)
        if i >= 0:
            kept = out.neurons[i].lines
            if len(kept) < MAX_LINES and (not kept or kept[-1] is not line):
                kept.append(line)
            continue
        if w.row is None:
            out.unexplained.append(x)
            continue
        neuron = new_neuron(w)
        neuron.lines.append(line)
        with oracle.phase("flatness"):
            flat = _flat(oracle, prefix, neuron, settings, rng)
        if flat:
            out.neurons.append(neuron)
            if is_coarse(settings.eps):
                # A rough row "explains" every kink near its plane: refine it before it does.
                with oracle.phase("refine"):
                    refine_or_keep(oracle, prefix, neuron, rng, settings.input_scale, settings.eps)
        else:
            out.deeper += 1
            if len(out.held) < MAX_HELD and line not in out.held:
                out.held.append(line)


def _flat(
    oracle: Oracle,
    prefix: Prefix,
    neuron: Neuron,
    settings: SearchSettings,
    rng: np.random.Generator,
) -> bool:
    """Walk along the neuron's predicted hyperplane and find its kink again where predicted."""
    x0 = neuron.witnesses[0].x
    g = prefix.normal(neuron.theta, x0)
    s = settings.input_scale
    cap = s * math.sqrt(prefix.input_dim)
    failures = 0
    for attempt in range(FLAT_TRIES):
        q = rng.normal(0.0, s, size=g.size)
        p, gp, walk = None, g, 0.0
        if prefix.depth and attempt % 2 == 0:
            # Across prefix regions: where other coordinates are on, a deeper neuron's
            # borrowed row no longer predicts its kinks; a neuron of this layer's does.
            p = onto_plane(prefix, neuron.theta, q)
            if p is not None and neuron.valid_at(prefix, p[None])[0]:
                gp = prefix.normal(neuron.theta, p)
                walk = float(np.linalg.norm(p - x0))
            else:
                p = None
        if p is None:
            # Inside the prefix region, toward the bulk where hyperplanes are dense: a flat
            # plane stays flat there, a deeper neuron's bends where this layer toggles.
            v = (q - x0) - ((q - x0) @ g) * g
            dist = float(np.linalg.norm(v))
            if dist == 0:
                continue
            v /= dist
            walk = min(0.9 * prefix.room(x0, v), dist + cap)
            p, gp = x0 + walk * v, g
        neuron.flat_checks += 1
        if not kink_where_predicted(oracle, prefix, neuron, p, gp, settings, walk):
            neuron.flat_failures += 1
            failures += 1
            if failures >= 2:
                return False
            continue
        if neuron.flat_checks - neuron.flat_failures >= FLAT_HITS:
            return True
    return False


def _look(
    oracle: Oracle,
    prefix: Prefix,
    line: LineKinks,
    out: LayerSearch,
    settings: SearchSettings,
    rng: np.random.Generator,
) -> None:
    """Tally the line against every candidate so far (no queries), then take its kinks."""
    tally_all(prefix, out.neurons, line, settings.eps)
    _absorb(oracle, prefix, line, out, settings, rng)
