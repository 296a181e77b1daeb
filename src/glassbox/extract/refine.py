"""Precision refinement: re-measure every hyperplane with large, provably safe steps.

First signatures use tiny finite-difference steps, because they are taken before the
other hyperplanes are known; their error is about ``ulp(f) / step``. Once every
hyperplane and the output layer are known roughly, the activation pattern around any
point is known too. For each hyperplane we pick, among random points on it, the one
farthest from every other hyperplane, step off it on both sides, and measure gradients
with per-axis steps as long as they can be without crossing any known hyperplane or
switching off an output in use: errors drop by the ratio of step sizes (to about 2^-45
on 784-128-1). A new estimate is accepted only if it agrees with the first one within
that one's error; otherwise another point is tried.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from glassbox.extract.kinks import find_kinks
from glassbox.extract.layers import Hyperplanes, Signature, gradients, signature
from glassbox.extract.oracle import Oracle
from glassbox.mlp import ReLUNet

Array = NDArray[np.float64]

SAFETY = 0.5  # fraction of the room to the nearest boundary that a step may use


def axis_steps(x: Array, planes: Array, offsets: Array, cap: float) -> Array:
    """Signed per-axis steps from ``x`` that stay ``SAFETY`` inside every hyperplane."""
    u = planes @ x + offsets
    with np.errstate(divide="ignore", invalid="ignore"):
        hit = -u[:, None] / planes  # step along axis k that reaches hyperplane g
    up = np.min(np.where(hit > 0, hit, np.inf), axis=0)
    down = np.min(np.where(hit < 0, -hit, np.inf), axis=0)
    room = np.minimum(np.maximum(up, down), cap)
    return SAFETY * np.where(up >= down, room, -room)


def _boundaries(model: ReLUNet, x: Array, planes: Array, offsets: Array) -> tuple[Array, Array]:
    """Hidden hyperplanes plus the active outputs' zero sets, linearised around ``x``."""
    if not model.output_relu:
        return planes, offsets
    pre = model.preactivations(x[None, :])
    z = pre[-1][0]
    on = pre[0][0] > 0
    grad = model.weights[1] @ (model.weights[0] * on[:, None])
    live = z > 0
    extra_planes = grad[live]
    extra_offsets = z[live] - extra_planes @ x
    return np.vstack([planes, extra_planes]), np.concatenate([offsets, extra_offsets])


def refine(
    oracle: Oracle,
    hp: Hyperplanes,
    model: ReLUNet,
    source: NDArray[np.int64],
    *,
    eps: float,
    input_scale: float,
    rng: np.random.Generator,
    candidates: int = 32,
    tries: int = 3,
    extra: int = 3,
    target_error: float = 2.0**-42,
    max_rows: int = 8192,
) -> tuple[list[int], list[int]]:
    """Re-measure every hyperplane of ``hp`` in place.

    Returns the hyperplanes whose measurements never agreed (no consistent gradient jump
    across them: a phantom from a misplaced kink, or a neuron too hard to measure) and
    those that could not be measured at all (no output that sees them is on nearby).

    Hyperplanes still less precise than ``target_error`` (neurons with tiny outgoing
    weights, whose jumps are small) are measured up to ``extra`` more times at other
    points and the estimates averaged.
    ``model`` is the rough net built from ``hp`` (its hidden neuron ``i`` lies on hyperplane
    ``source[i]``); it tells where outputs are active.
    """
    V, c = hp.matrix()
    n_hyper, d0 = V.shape
    out_w = model.weights[1]
    pending = list(range(n_hyper))
    # Ranked candidate points on each hyperplane, best (farthest from the rest) first.
    ranked: dict[int, list[tuple[Array, float]]] = {}
    for h in pending:
        q = rng.normal(0.0, input_scale, size=(candidates, d0))
        p = q - np.outer(q @ V[h] + c[h], V[h])
        others = np.delete(np.arange(n_hyper), h)
        margin = np.min(np.abs(p @ V[others].T + c[others]), axis=1, initial=np.inf)
        sees = np.abs(out_w[:, source == h]).sum(axis=1) > 0
        if model.output_relu:
            z = model.preactivations(p)[-1]
            margin = np.where(np.any((z > 0) & sees, axis=1), margin, -1.0)
        ranked[h] = [(p[i], float(margin[i])) for i in np.argsort(-margin)[: tries + extra]]

    unmeasured: set[int] = set()
    tried: dict[int, list[Signature]] = {}
    pending = list(range(n_hyper))
    for attempt in range(tries):
        measurable = [h for h in pending if ranked[h][attempt][1] > 0]
        # No output that sees these hyperplanes is active near them: nothing to measure.
        unmeasured.update(h for h in pending if h not in measurable)
        still = [h for h in pending if h not in measurable]
        for h, sig in zip(
            measurable,
            _measure(oracle, model, V, c, ranked, measurable, attempt, eps, input_scale, max_rows),
            strict=True,
        ):
            if sig is None:
                still.append(h)
                continue
            unmeasured.discard(h)
            # Accept when it agrees with the first estimate, or with an earlier try here
            # (two precise measurements agreeing overrule a first estimate gone wrong).
            agree = float(np.max(np.abs(sig.normal - V[h]))) <= 64 * hp.errors[h] + 1e-12
            for prev in tried.get(h, []):
                agree |= float(np.max(np.abs(sig.normal - prev.normal))) <= 64 * max(
                    sig.error, prev.error
                )
            if agree and _settle_crossings(hp, h, sig):
                offset = -float(np.mean([sig.normal @ x for x in hp.points[h]]))
                hp.update(h, sig.normal, offset, sig.error)
            else:
                tried.setdefault(h, []).append(sig)
                still.append(h)
        pending = still

    for attempt in range(tries, tries + extra):
        weak = [h for h in range(n_hyper) if hp.refined[h] and hp.errors[h] > target_error]
        weak = [h for h in weak if len(ranked[h]) > attempt and ranked[h][attempt][1] > 0]
        if not weak:
            break
        for h, sig in zip(
            weak,
            _measure(oracle, model, V, c, ranked, weak, attempt, eps, input_scale, max_rows),
            strict=True,
        ):
            if sig is None or np.max(np.abs(sig.normal - hp.normals[h])) > 64 * hp.errors[h]:
                continue
            if not _settle_crossings(hp, h, sig):
                continue
            w_old, w_new = hp.errors[h] ** -2, sig.error**-2
            normal = w_old * hp.normals[h] + w_new * sig.normal
            normal /= np.linalg.norm(normal)
            offset = -float(np.mean([normal @ x for x in hp.points[h]]))
            hp.update(h, normal, offset, float((w_old + w_new) ** -0.5))
    return [h for h in pending if h not in unmeasured], sorted(unmeasured)


def _settle_crossings(hp: Hyperplanes, h: int, sig: Signature) -> bool:
    """Whether ``sig`` predicts most of plane ``h``'s crossings; if so, drop the rest.

    One kink matched to the wrong plane under a rough first estimate (or two kinks too
    close to tell apart) must not sink a precise measurement that every other crossing
    confirms; a step that crossed an unknown plane spoils the jumps at most crossings.
    """
    bad = hp.inconsistent(h, sig)
    if 2 * len(bad) >= len(hp.crossings[h]) and bad:
        return False
    for i in sorted(bad, reverse=True):
        del hp.points[h][i]
        del hp.crossings[h][i]
    return True


def _measure(
    oracle: Oracle,
    model: ReLUNet,
    V: Array,
    c: Array,
    ranked: dict[int, list[tuple[Array, float]]],
    which: list[int],
    attempt: int,
    eps: float,
    input_scale: float,
    max_rows: int,
) -> list[Signature | None]:
    """Signatures of hyperplanes ``which`` at their ``attempt``-th ranked point (one batch)."""
    if not which:
        return []
    bases, steps = [], []
    for h in which:
        p, margin = ranked[h][attempt]
        rho = 0.25 * min(margin, 4 * input_scale)
        for side in (-1.0, 1.0):
            x = p + side * rho * V[h]
            planes, offs = _boundaries(model, x, V, c)
            bases.append(x)
            steps.append(axis_steps(x, planes, offs, 4 * input_scale))
    g = gradients(oracle, np.array(bases), np.array(steps), eps, max_rows)
    out: list[Signature | None] = []
    for i, h in enumerate(which):
        lo, hi = 2 * i, 2 * i + 1
        use = g.usable[lo] & g.usable[hi]
        noise = float(max(g.noise[lo], g.noise[hi]))
        out.append(signature(g.grad[lo], g.grad[hi], use, noise, V[h]))
    return out


def recenter(oracle: Oracle, hp: Hyperplanes, *, eps: float, input_scale: float) -> int:
    """Re-find each hyperplane's critical point nearest the origin, for a precise offset.

    ``c = -v.x*`` inherits the normal's error times ``|x*|``; on the short line through
    ``-c v`` along ``v`` the kink sits at ``|x*| = |c|`` and its jump is the full outgoing
    weight, so the offset becomes as precise as the normal. Returns how many moved.
    """
    V, c = hp.matrix()
    if V.shape[0] == 0:
        return 0
    lines = find_kinks(oracle, -c[:, None] * V, V, -input_scale, input_scale, eps=eps)
    moved = 0
    for h, line in enumerate(lines):
        hidden = line.hidden
        if hidden.size == 0:
            continue
        k = hidden[np.argmin(np.abs(line.t[hidden]))]
        # Only the plane's own kink: it must sit where the refined plane predicts.
        if abs(line.t[k]) <= 64 * hp.errors[h] * (1.0 + float(np.linalg.norm(hp.points[h][0]))):
            hp.offsets[h] = float(c[h] - line.t[k])
            moved += 1
    return moved
