"""Critical points along lines: where a ReLU net's output vector bends.

Along ``x(t) = x0 + t d`` every output coordinate is piecewise linear in ``t``, and a
hidden neuron that toggles bends every active output that depends on it at the same
``t``. The search keeps, for every open segment ``[a, b]`` of every line, the values
``f(a), f(b)`` and the one-sided slopes just inside the segment. If both slopes agree
and the chord does too, the segment is affine and needs no more queries. Otherwise the
two end lines meet at ``t*``; one query at ``t*`` and one on each side of it say whether
exactly one kink sits there. If so, the kink is placed to near float64 precision by
intersecting the two lines through far-apart points (the segment ends and the points
beside ``t*``); if not, ``t*`` becomes a new knot and both halves go on. Each round asks
the oracle one batch for all open segments of all lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from glassbox.extract.kink_kinds import HIDDEN, OUTPUT_RELU, classify
from glassbox.extract.tolerance import step_fraction
from glassbox.extract.tolerance import tolerance_factor as tolerance_factor_for
from glassbox.oracle.core import Oracle

__all__ = ["HIDDEN", "OUTPUT_RELU", "LineKinks", "classify", "find_kinks"]

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


# Side points sit this fraction of the distance to the nearer segment end away from t*:
# far enough that slopes from them are precise, near enough to stay beside one kink.
# Coarser answers need wider steps (up to MAX_SIDE_FRACTION) for slopes that still tell.
SIDE_FRACTION = 1e-2
MAX_SIDE_FRACTION = 0.1
# Row cap of one oracle batch, and of open segments per line (a line that keeps splitting
# without resolving, e.g. on noisy answers, must not grow the batches without bound).
MAX_ROWS = 8192
MAX_SEGMENTS = 256


@dataclass(frozen=True, eq=False)
class LineKinks:
    """The critical points found on one line ``x0 + t d``, ``t`` in ``[t_lo, t_hi]``.

    ``t`` holds the kink positions (sorted), ``changed[k, j]`` whether output ``j``
    bends at kink ``k``, ``kind[k]`` is ``"hidden"`` or ``"output-relu"``,
    ``slope_left``/``slope_right`` are the output slopes (per unit ``t``) on either side,
    ``value`` the outputs at the kink. ``samples_t``/``samples_f`` are every point queried
    on the line (sorted), ``unresolved`` counts segments too narrow to split further.
    """

    x0: Array
    d: Array
    t_lo: float
    t_hi: float
    t: Array
    changed: BoolArray
    kind: tuple[str, ...]
    slope_left: Array
    slope_right: Array
    value: Array
    samples_t: Array
    samples_f: Array
    tolerance: float
    unresolved: int
    slope_error: Array = field(default_factory=lambda: np.zeros(0))
    # Per kink, the recovered layer of the neuron that made it (1-based; 0: not known),
    # filled in once the attack has a net.
    layer: tuple[int, ...] = ()

    def point(self, t: float | Array) -> Array:
        """The input(s) at line position(s) ``t``."""
        return self.x0 + np.multiply.outer(np.asarray(t, dtype=np.float64), self.d)

    @property
    def hidden(self) -> NDArray[np.int64]:
        """Indices of the hidden-neuron kinks."""
        return np.flatnonzero(np.array([k == HIDDEN for k in self.kind], dtype=bool))

    def to_json(self) -> dict[str, Any]:
        """The line and its kinks as JSON (no samples)."""
        return {
            "t_lo": self.t_lo,
            "t_hi": self.t_hi,
            "kinks": [
                {
                    "t": float(t),
                    "kind": k,
                    "outputs": np.flatnonzero(c).tolist(),
                    "layer": self.layer[i] if i < len(self.layer) else 0,
                }
                for i, (t, k, c) in enumerate(zip(self.t, self.kind, self.changed, strict=True))
            ],
            "unresolved": self.unresolved,
        }


@dataclass
class _Segments:
    """Open segments of all lines, as parallel arrays (one row per segment)."""

    line: NDArray[np.int64]
    a: Array
    b: Array
    fa: Array
    fb: Array
    sa: Array  # slope just right of a
    sb: Array  # slope just left of b
    ea: Array  # error bar of sa (per unit t, scalar per segment)
    eb: Array

    def take(self, mask: BoolArray | NDArray[np.int64]) -> _Segments:
        return _Segments(*(getattr(self, f)[mask] for f in _SEG_FIELDS))

    @staticmethod
    def concat(parts: list[_Segments]) -> _Segments:
        return _Segments(*(np.concatenate([getattr(p, f) for p in parts]) for f in _SEG_FIELDS))

    def __len__(self) -> int:
        return int(self.a.size)


_SEG_FIELDS = ("line", "a", "b", "fa", "fb", "sa", "sb", "ea", "eb")


def _query_points(oracle: Oracle, x0: Array, d: Array, line: NDArray[np.int64], t: Array) -> Array:
    """Query ``x0[line] + t d[line]`` for flat arrays ``line``, ``t``, at most MAX_ROWS per batch."""
    parts = [
        oracle.query(
            x0[line[i : i + MAX_ROWS]] + t[i : i + MAX_ROWS, None] * d[line[i : i + MAX_ROWS]]
        )
        for i in range(0, t.size, MAX_ROWS)
    ]
    return np.vstack(parts)


def _cap(seg: _Segments, cap: int, unresolved: NDArray[np.int64]) -> _Segments:
    """At most ``cap`` open segments per line (the widest); the rest count as unresolved."""
    counts = np.bincount(seg.line, minlength=unresolved.size)
    if counts.max(initial=0) <= cap:
        return seg
    order = np.lexsort((-(seg.b - seg.a), seg.line))
    rank = np.empty(len(seg), dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank[order] = np.arange(len(seg)) - np.repeat(starts, counts)
    over = rank >= cap
    np.add.at(unresolved, seg.line[over], 1)
    return seg.take(~over)


def find_kinks(
    oracle: Oracle,
    x0: Array,
    d: Array,
    t_lo: float,
    t_hi: float,
    *,
    eps: float = 2.0**-52,
    tolerance_factor: float | None = None,
    max_rounds: int = 80,
    max_segments: int = MAX_SEGMENTS,
) -> list[LineKinks]:
    """Find every critical point on the lines ``x0[i] + t d[i]``, ``t`` in ``[t_lo, t_hi]``.

    ``eps`` is the relative precision of the oracle's answers; values are compared to
    ``tolerance_factor * eps`` times the largest output magnitude seen on the line
    (default: :func:`glassbox.extract.tolerance.tolerance_factor`). A line keeps at most
    ``max_segments`` open segments (the widest); the rest count as unresolved.
    """
    if tolerance_factor is None:
        tolerance_factor = tolerance_factor_for(eps)
    x0 = np.atleast_2d(np.asarray(x0, dtype=np.float64))
    d = np.atleast_2d(np.asarray(d, dtype=np.float64))
    n_lines = x0.shape[0]
    length = t_hi - t_lo
    side = step_fraction(SIDE_FRACTION, eps, MAX_SIDE_FRACTION)
    h0 = side * length
    lines = np.repeat(np.arange(n_lines), 4)
    ts = np.tile(np.array([t_lo, t_lo + h0, t_hi - h0, t_hi]), n_lines)
    f = _query_points(oracle, x0, d, lines, ts).reshape(n_lines, 4, -1)
    samples_t: list[list[Array]] = [[ts[4 * i : 4 * i + 4]] for i in range(n_lines)]
    samples_f: list[list[Array]] = [[f[i]] for i in range(n_lines)]
    scale = np.max(np.abs(f), axis=(1, 2))
    tol = _tolerances(scale, eps, tolerance_factor)

    seg = _Segments(
        line=np.arange(n_lines),
        a=np.full(n_lines, t_lo),
        b=np.full(n_lines, t_hi),
        fa=f[:, 0],
        fb=f[:, 3],
        sa=(f[:, 1] - f[:, 0]) / h0,
        sb=(f[:, 3] - f[:, 2]) / h0,
        ea=np.full(n_lines, 0.0),
        eb=np.full(n_lines, 0.0),
    )
    seg.ea = 2 * tol[seg.line] / h0
    seg.eb = seg.ea.copy()
    found: list[list[tuple[float, Array, Array, Array, float]]] = [[] for _ in range(n_lines)]
    unresolved = np.zeros(n_lines, dtype=np.int64)
    min_width = 64 * np.finfo(np.float64).eps * max(abs(t_lo), abs(t_hi), length)

    for _ in range(max_rounds):
        if len(seg) == 0:
            break
        tl = tol[seg.line][:, None]
        width = (seg.b - seg.a)[:, None]
        slope_same = np.abs(seg.sb - seg.sa) <= (seg.ea + seg.eb)[:, None]
        chord = np.abs(seg.fb - seg.fa - seg.sa * width) <= tl + seg.ea[:, None] * width
        affine = np.all(slope_same & chord, axis=1)
        narrow = (seg.b - seg.a) < min_width
        np.add.at(unresolved, seg.line[narrow & ~affine], 1)
        seg = seg.take(~affine & ~narrow)
        if len(seg) == 0:
            break

        ts_star = _intersect(seg.a, seg.b, seg.fa, seg.fb, seg.sa, seg.sb)
        w = seg.b - seg.a
        bad = ~np.isfinite(ts_star) | (ts_star <= seg.a + 0.01 * w) | (ts_star >= seg.b - 0.01 * w)
        ts_star = np.where(bad, 0.5 * (seg.a + seg.b), ts_star)
        h = side * np.minimum(ts_star - seg.a, seg.b - ts_star)
        tq = np.stack([ts_star - h, ts_star, ts_star + h], axis=1)
        fq = _query_points(oracle, x0, d, np.repeat(seg.line, 3), tq.ravel())
        fq = fq.reshape(len(seg), 3, -1)
        for i in np.unique(seg.line):
            m = seg.line == i
            samples_t[i].append(tq[m].ravel())
            samples_f[i].append(fq[m].reshape(-1, fq.shape[2]))
        np.maximum.at(scale, seg.line, np.max(np.abs(fq), axis=(1, 2)))
        tol = _tolerances(scale, eps, tolerance_factor)
        tl = tol[seg.line][:, None]

        # One kink at t*: the side points lie on their own side's coarse line, and the
        # precise lines through (a, t*-h) and (t*+h, b) meet between the side points with
        # f(t*) on one of them for every output.
        pl, ps = _precise(seg, tq, fq, tol)
        near_l = np.abs(fq[:, 0] - (seg.fa + seg.sa * (tq[:, 0] - seg.a)[:, None]))
        near_r = np.abs(fq[:, 2] - (seg.fb + seg.sb * (tq[:, 2] - seg.b)[:, None]))
        ok_side = np.all(near_l <= tl + (seg.ea * (tq[:, 0] - seg.a))[:, None], axis=1) & np.all(
            near_r <= tl + (seg.eb * (seg.b - tq[:, 2]))[:, None], axis=1
        )
        single = ~bad & ok_side & pl & ps

        for k in np.flatnonzero(single):
            found[seg.line[k]].append(
                _place(seg.a[k], seg.b[k], seg.fa[k], seg.fb[k], tq[k], fq[k], tol[seg.line[k]])
            )
        rest = np.flatnonzero(~single)
        s = seg.take(rest)
        hr = h[rest]
        fl, fm, fr = fq[rest, 0], fq[rest, 1], fq[rest, 2]
        err_mid = 2 * tol[s.line] / hr
        left = _Segments(
            s.line, s.a, ts_star[rest], s.fa, fm, s.sa, (fm - fl) / hr[:, None], s.ea, err_mid
        )
        right = _Segments(
            s.line, ts_star[rest], s.b, fm, s.fb, (fr - fm) / hr[:, None], s.sb, err_mid, s.eb
        )
        seg = _cap(_Segments.concat([left, right]), max_segments, unresolved)
    np.add.at(unresolved, seg.line, 1)

    out = []
    for i in range(n_lines):
        st = np.concatenate(samples_t[i])
        sf = np.concatenate(samples_f[i])
        order = np.argsort(st, kind="stable")
        out.append(
            _line_result(
                x0[i],
                d[i],
                t_lo,
                t_hi,
                found[i],
                st[order],
                sf[order],
                float(tol[i]),
                int(unresolved[i]),
            )
        )
    return out


def _tolerances(scale: Array, eps: float, factor: float) -> Array:
    # Never zero: an all-zero line still needs a positive threshold.
    return factor * eps * np.maximum(scale, np.finfo(np.float64).tiny)


def _intersect(a: Array, b: Array, fa: Array, fb: Array, sa: Array, sb: Array) -> Array:
    """Where the line through ``(a, fa)`` with slope ``sa`` meets the one through ``(b, fb)``.

    One ``t`` for all output coordinates: least squares weighted by the slope change, so
    coordinates that bend most decide.
    """
    ds = sa - sb
    num = np.sum(ds * (fb - fa - sb * (b - a)[:, None]), axis=1)
    den = np.sum(ds * ds, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return a + num / den


def _precise(seg: _Segments, tq: Array, fq: Array, tol: Array) -> tuple[BoolArray, BoolArray]:
    """Tests of the one-kink hypothesis from the precise lines (see :func:`find_kinks`)."""
    tl = tol[seg.line]
    run_l = tq[:, 0] - seg.a
    run_r = seg.b - tq[:, 2]
    sl = (fq[:, 0] - seg.fa) / run_l[:, None]
    sr = (seg.fb - fq[:, 2]) / run_r[:, None]
    at_l = seg.fa + sl * (tq[:, 1] - seg.a)[:, None]
    at_r = seg.fb + sr * (tq[:, 1] - seg.b)[:, None]
    on_l = np.all(np.abs(fq[:, 1] - at_l) <= 4 * tl[:, None], axis=1)
    on_r = np.all(np.abs(fq[:, 1] - at_r) <= 4 * tl[:, None], axis=1)
    slopes_agree = np.all(
        np.abs(sl - seg.sa) <= (seg.ea + 2 * tl / run_l)[:, None], axis=1
    ) & np.all(np.abs(sr - seg.sb) <= (seg.eb + 2 * tl / run_r)[:, None], axis=1)
    t = _intersect(seg.a, seg.b, seg.fa, seg.fb, sl, sr)
    # How far rounding alone can move the intersection: a kink found on a side point
    # means the kink lies beyond it and the "precise" line is really a chord.
    margin = 8 * tl / np.maximum(np.linalg.norm(sl - sr, axis=1), np.finfo(np.float64).tiny)
    inside = (t > tq[:, 0] + margin) & (t < tq[:, 2] - margin)
    side = (on_l & (t >= tq[:, 1] - margin)) | (on_r & (t <= tq[:, 1] + margin))
    return on_l | on_r, slopes_agree & inside & side


def _place(
    a: float, b: float, fa: Array, fb: Array, tq: Array, fq: Array, tol: float
) -> tuple[float, Array, Array, Array, float]:
    """Place one kink precisely from the lines through ``(a, t*-h)`` and ``(t*+h, b)``."""
    sl = (fq[0] - fa) / (tq[0] - a)
    sr = (fb - fq[2]) / (b - tq[2])
    t = float(_intersect(np.array([a]), np.array([b]), fa[None], fb[None], sl[None], sr[None])[0])
    value = fa + sl * (t - a)
    err = 2 * tol * (1 / (tq[0] - a) + 1 / (b - tq[2]))
    return t, sl, sr, value, err


def _line_result(
    x0: Array,
    d: Array,
    t_lo: float,
    t_hi: float,
    found: list[tuple[float, Array, Array, Array, float]],
    samples_t: Array,
    samples_f: Array,
    tol: float,
    unresolved: int,
) -> LineKinks:
    dout = samples_f.shape[1]
    if not found:
        empty = np.zeros((0, dout))
        return LineKinks(
            x0,
            d,
            t_lo,
            t_hi,
            np.zeros(0),
            np.zeros((0, dout), dtype=bool),
            (),
            empty,
            empty,
            empty,
            samples_t,
            samples_f,
            tol,
            unresolved,
        )
    found.sort(key=lambda r: r[0])
    t = np.array([r[0] for r in found])
    sl = np.stack([r[1] for r in found])
    sr = np.stack([r[2] for r in found])
    value = np.stack([r[3] for r in found])
    slope_err = np.array([r[4] for r in found])
    changed, kind = classify(sl, sr, value, slope_err, tol)
    return LineKinks(
        x0,
        d,
        t_lo,
        t_hi,
        t,
        changed,
        kind,
        sl,
        sr,
        value,
        samples_t,
        samples_f,
        tol,
        unresolved,
        slope_err,
    )
