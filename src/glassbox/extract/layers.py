"""Recovering the hidden layer's hyperplanes from critical points.

Across neuron ``i``'s hyperplane the gradient of output ``j`` jumps by ``A2[j, i] v_i``:
the same row ``v_i`` (up to scale) in every output that sees the neuron. Finite
differences on both sides of a critical point give those jumps; merged over outputs and
normalised they give the hyperplane ``v.x + c = 0`` with ``|v| = 1`` and
``c = -v.x*``, plus the merged outgoing weights ``w_j = jump_j . v`` (signed with the
side ``v`` points to as the active one; the true sign is found later, in ``signs``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from glassbox.extract.kinks import LineKinks
from glassbox.extract.oracle import Oracle

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

# Finite-difference step for first signatures, as a fraction of the distance to the
# neighbouring kinks on the line: tiny, so that an axis step almost never crosses a
# hyperplane we do not know yet (refine.py takes large, provably safe steps later).
FIRST_STEP_FRACTION = 1e-6


@dataclass(frozen=True, eq=False)
class Gradients:
    """Finite-difference gradients at a batch of base points.

    ``grad[p, j]`` is output ``j``'s gradient at base ``p``; ``usable[p, j]`` says output
    ``j`` was nonzero at the base and every step (so no output ReLU was crossed);
    ``noise[p]`` bounds the rounding error of one gradient entry.
    """

    grad: Array
    value: Array
    usable: BoolArray
    noise: Array


def gradients(
    oracle: Oracle, bases: Array, steps: Array, eps: float, max_rows: int = 8192
) -> Gradients:
    """Gradients at ``bases[p]`` from one signed step ``steps[p, k]`` along each axis ``k``."""
    n, d0 = bases.shape
    per = max(1, max_rows // (d0 + 1))
    grads, values, usable, noise = [], [], [], []
    for lo in range(0, n, per):
        b = bases[lo : lo + per]
        s = steps[lo : lo + per]
        c = b.shape[0]
        X = np.repeat(b[:, None, :], d0 + 1, axis=1)
        idx = np.arange(d0)
        X[:, 1 + idx, idx] += s
        # The step actually taken, after rounding x + s.
        taken = X[:, 1 + idx, idx] - b
        F = oracle.query(X.reshape(c * (d0 + 1), d0)).reshape(c, d0 + 1, -1)
        diff = (F[:, 1:, :] - F[:, :1, :]) / taken[:, :, None]
        grads.append(np.transpose(diff, (0, 2, 1)))
        values.append(F[:, 0, :])
        usable.append(np.all(F != 0.0, axis=1))
        mag = np.max(np.abs(F), axis=(1, 2))
        noise.append(4 * eps * mag / np.min(np.abs(taken), axis=1))
    return Gradients(
        np.concatenate(grads), np.concatenate(values), np.concatenate(usable), np.concatenate(noise)
    )


@dataclass(frozen=True)
class Signature:
    """A hyperplane normal (unit, pointing from side a to side b) and merged output weights."""

    normal: Array
    weights: Array
    known: BoolArray
    error: float


def signature(
    g_a: Array, g_b: Array, use: BoolArray, noise: float, toward: Array
) -> Signature | None:
    """Merge the per-output gradient jumps ``g_b - g_a`` into one normal; None if nothing shows."""
    jump = g_b - g_a
    norms = np.linalg.norm(jump, axis=1)
    d0 = jump.shape[1]
    floor = 16 * noise * np.sqrt(d0)
    seen = use & (norms > floor)
    if not np.any(seen):
        return None
    ref = jump[np.argmax(np.where(seen, norms, -1.0))]
    signs = np.sign(jump[seen] @ ref)
    v = signs @ jump[seen]
    v = v / np.linalg.norm(v)
    if v @ toward < 0:
        v = -v
    weights = np.where(use, jump @ v, 0.0)
    # Component error of the unit normal: entry noise over the largest jump norm.
    error = float(2 * noise / np.max(norms[seen]))
    return Signature(v, weights, use.copy(), error)


@dataclass
class Hyperplanes:
    """The hyperplanes found so far (mutable: lines add to it)."""

    input_dim: int
    output_dim: int
    normals: list[Array] = field(default_factory=list)
    offsets: list[float] = field(default_factory=list)
    weights: list[Array] = field(default_factory=list)
    known: list[BoolArray] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)
    points: list[list[Array]] = field(default_factory=list)
    refined: list[bool] = field(default_factory=list)
    # Per critical point: the line's direction, the output slope jumps there (NaN where
    # an output did not bend) and their error bar, which any estimate must reproduce.
    crossings: list[list[tuple[Array, Array, float]]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.normals)

    def add(self, sig: Signature, point: Array, crossing: tuple[Array, Array, float]) -> int:
        """Register a new hyperplane through ``point``; returns its index."""
        self.normals.append(sig.normal)
        self.offsets.append(float(-(sig.normal @ point)))
        self.weights.append(sig.weights)
        self.known.append(sig.known)
        self.errors.append(sig.error)
        self.points.append([point])
        self.refined.append(False)
        self.crossings.append([crossing])
        return len(self.normals) - 1

    def matrix(self) -> tuple[Array, Array]:
        """Normals ``(H, d0)`` and offsets ``(H,)``."""
        if not self.normals:
            return np.zeros((0, self.input_dim)), np.zeros(0)
        return np.array(self.normals), np.array(self.offsets)

    def match(self, point: Array, d: Array, jump: Array, changed: BoolArray) -> int:
        """The known hyperplane a critical point lies on (-1: none).

        It must lie on the plane (within the normal's error) and the slope jump along ``d``
        must be the one the plane predicts, ``w_j |v.d|``, on outputs seen both times.
        """
        if not self.normals:
            return -1
        V, c = self.matrix()
        resid = np.abs(V @ point + c)
        err = np.array(self.errors)
        tol = 16 * err * (np.linalg.norm(point) + 1.0) + 1e-12
        for h in np.flatnonzero(resid <= tol)[np.argsort(resid[resid <= tol])]:
            both = self.known[h] & changed
            if not np.any(both):
                # Seen through other outputs than before: the position alone must do.
                return int(h)
            predicted = self.weights[h] * abs(V[h] @ d)
            gap = np.abs(predicted[both] - jump[both])
            # The normal's error moves v.d by up to |dv| (|d| = 1).
            slack = 1e-3 * np.abs(jump[both]) + 64 * err[h] * np.sqrt(self.input_dim) * np.abs(
                self.weights[h][both]
            )
            if np.all(gap <= slack):
                return int(h)
        return -1

    def learn(self, h: int, d: Array, jump: Array, changed: BoolArray) -> None:
        """Take the outgoing weights of outputs not seen before from a kink's slope jumps."""
        new = changed & ~self.known[h]
        if np.any(new):
            self.weights[h] = np.where(new, jump / abs(self.normals[h] @ d), self.weights[h])
            self.known[h] = self.known[h] | new

    def merge_duplicates(self, factor: float = 64.0, cap: float = np.inf) -> int:
        """Merge hyperplanes that agree up to orientation within their errors; returns how many went.

        Two planes are one when their unit normals differ by at most ``factor`` times the
        larger error (but never more than ``cap``) in every component, and their offsets
        by that much relative to ``1 + |c|``.
        """
        V, c = self.matrix()
        drop: set[int] = set()
        for a in range(len(V)):
            if a in drop:
                continue
            for b in range(a + 1, len(V)):
                if b in drop:
                    continue
                s = 1.0 if V[a] @ V[b] > 0 else -1.0
                tolerance = min(factor * max(self.errors[a], self.errors[b]), cap) + 1e-9
                close = np.max(np.abs(V[a] - s * V[b])) <= tolerance
                if close and abs(c[a] - s * c[b]) <= tolerance * (1 + abs(c[a])):
                    keep, gone = (a, b) if self.errors[a] <= self.errors[b] else (b, a)
                    self.points[keep].extend(self.points[gone])
                    self.crossings[keep].extend(self.crossings[gone])
                    self.known[keep] = self.known[keep] | self.known[gone]
                    drop.add(gone)
                    if gone == a:
                        break
        self.remove(sorted(drop))
        return len(drop)

    def settle_offsets(self) -> int:
        """Offsets of refined hyperplanes from the median of their critical points.

        A point matched to the wrong plane under a rough first estimate sits far from the
        refined plane: it is dropped. Returns how many points went.
        """
        dropped = 0
        for h in range(len(self.normals)):
            if not self.refined[h]:
                continue
            pts = np.array(self.points[h])
            off = -(pts @ self.normals[h])
            med = float(np.median(off))
            fits = np.abs(off - med) <= 1e-9 * (1.0 + np.linalg.norm(pts, axis=1))
            if not fits.any():
                # No two points agree: keep the one nearest the median.
                fits = np.abs(off - med) == np.min(np.abs(off - med))
            self.points[h] = [p for p, ok in zip(self.points[h], fits, strict=True) if ok]
            self.crossings[h] = [x for x, ok in zip(self.crossings[h], fits, strict=True) if ok]
            self.offsets[h] = float(np.mean(off[fits]))
            dropped += int(np.sum(~fits))
        return dropped

    def drop_phantoms(self) -> int:
        """Drop unrefined hyperplanes whose every critical point lies on a refined one.

        Such a plane is a second, corrupted first estimate of a neuron already known.
        """
        V, c = self.matrix()
        good = np.array(self.refined, dtype=bool)
        gone = []
        for h in np.flatnonzero(~good):
            pts = np.array(self.points[h])
            resid = np.abs(pts @ V[good].T + c[good])
            scale = 1e-9 * (1.0 + np.linalg.norm(pts, axis=1))[:, None]
            if good.any() and np.all(np.any(resid <= scale, axis=1)):
                gone.append(int(h))
        self.remove(gone)
        return len(gone)

    def remove(self, which: list[int]) -> None:
        """Forget the given hyperplanes."""
        for i in sorted(set(which), reverse=True):
            for store in (
                self.normals,
                self.offsets,
                self.weights,
                self.known,
                self.errors,
                self.points,
                self.refined,
                self.crossings,
            ):
                del store[i]

    def consistent(self, h: int, sig: Signature) -> bool:
        """Whether ``sig`` predicts the slope jumps seen where lines crossed plane ``h``.

        A refined estimate measured with a step that crossed an unknown plane is off in
        some components; the jump ``w_j |v.d|`` along a line it was found on shows it.
        """
        return not self.inconsistent(h, sig)

    def inconsistent(self, h: int, sig: Signature) -> list[int]:
        """The crossings of plane ``h`` whose slope jumps ``sig`` does not predict."""
        bad = []
        for i, (d, jump, err) in enumerate(self.crossings[h]):
            seen = np.isfinite(jump) & sig.known
            if not np.any(seen):
                continue
            w = sig.weights[seen]
            predicted = w * abs(sig.normal @ d)
            # Rounding of the line's slopes, plus the estimate's own error (|d| = 1).
            slack = 16 * err + 16 * np.abs(w) * sig.error * np.sqrt(d.size)
            if np.any(np.abs(predicted - jump[seen]) > slack):
                bad.append(i)
        return bad

    def update(self, h: int, normal: Array, offset: float, error: float) -> None:
        """Replace a hyperplane's normal and offset by a better estimate."""
        if normal @ self.normals[h] < 0:
            raise ValueError("refined normal points the other way")
        self.normals[h] = normal
        self.offsets[h] = offset
        self.errors[h] = error
        self.refined[h] = True


def first_signatures(
    oracle: Oracle,
    line: LineKinks,
    kinks: NDArray[np.int64],
    eps: float,
    scale: float,
    max_rows: int = 8192,
    roughest: float = 1e-5,
) -> list[tuple[int, Signature]]:
    """Signatures of the given hidden kinks of ``line`` from gradients of the pieces beside them.

    A piece between two consecutive kinks is one linear region, so the gradient measured
    there serves the kink on each side of it. Each signature is checked against the line
    itself: the jump projected on the line's direction must equal the slope jump the kink
    finder measured, or a step crossed an unseen hyperplane and the kink is dropped.
    A signature rougher than ``roughest`` (a neuron with tiny outgoing weights) is
    measured again with 100 times longer steps, under the same check.
    """
    out: dict[int, Signature] = {}
    todo = np.asarray(kinks, dtype=np.int64)
    for fraction in (FIRST_STEP_FRACTION, 100 * FIRST_STEP_FRACTION):
        if todo.size == 0:
            break
        for k, sig in _signatures_at(oracle, line, todo, eps, scale, fraction, max_rows):
            if k not in out or sig.error < out[k].error:
                out[k] = sig
        todo = np.array(
            [k for k in todo if k not in out or out[k].error > roughest], dtype=np.int64
        )
    return sorted((k, sig) for k, sig in out.items() if sig.error <= roughest)


def _signatures_at(
    oracle: Oracle,
    line: LineKinks,
    kinks: NDArray[np.int64],
    eps: float,
    scale: float,
    fraction: float,
    max_rows: int,
) -> list[tuple[int, Signature]]:
    """One round of :func:`first_signatures` with steps ``fraction`` of the room on the line."""
    edges = np.concatenate([[line.t_lo], line.t, [line.t_hi]])
    pieces = np.unique(np.concatenate([kinks, kinks + 1]))
    lo, hi = edges[pieces], edges[pieces + 1]
    mid = 0.5 * (lo + hi)
    gap = np.minimum(0.5 * (hi - lo), scale)
    steps = fraction * gap[:, None] * np.ones((1, line.x0.size))
    g = gradients(oracle, line.point(mid), steps, eps, max_rows)
    where = {int(p): i for i, p in enumerate(pieces)}
    out = []
    for k in kinks:
        a, b = where[int(k)], where[int(k) + 1]
        use = g.usable[a] & g.usable[b]
        noise = float(max(g.noise[a], g.noise[b]))
        sig = signature(g.grad[a], g.grad[b], use, noise, line.d)
        if sig is None:
            continue
        along = (g.grad[b] - g.grad[a]) @ line.d
        measured = line.slope_right[k] - line.slope_left[k]
        tol = 64 * noise * np.sqrt(line.d.size) + 16 * line.slope_error[k] + 1e-9 * np.abs(measured)
        if np.all((np.abs(along - measured) <= tol)[use]):
            out.append((int(k), sig))
    return out
