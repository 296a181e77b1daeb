"""The whole extraction of a one-hidden-layer ReLU net, from queries alone.

1. lines: random lines through the input space, every critical point on them (kinks.py);
2. signatures: each new hidden kink's hyperplane from gradients beside it (layers.py);
   lines continue until ``patience`` lines in a row show no new neuron;
3. outputs: signs, +/- pairs and the output layer by least squares (signs.py);
4. refine: every hyperplane re-measured with large safe steps (refine.py), then the
   output layer refitted on the same samples;
5. check: the recovered net against the oracle on fresh queries, Gaussian and beside
   every hyperplane. ``success`` is the verdict of that check and nothing else.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from glassbox.config import config_to_dict
from glassbox.errors import GlassboxError
from glassbox.extract.kinks import LineKinks, find_kinks
from glassbox.extract.layers import Hyperplanes, first_signatures
from glassbox.extract.oracle import Oracle, QueryBudgetExceeded
from glassbox.extract.refine import recenter, refine
from glassbox.extract.signs import OutputFit, fit_output_layer
from glassbox.mlp import ReLUNet

Array = NDArray[np.float64]

FLOAT64_EPS = 2.0**-52
FLOAT32_EPS = 2.0**-23
# First-estimate error bars can be 20-50 times optimistic: planes this close (in units
# of the larger error bar, never more than the cap per normal component) are one neuron.
# A hidden kink seen on a line lies on a recovered plane when within this (relative to
# 1 + |x|, plus the plane's own error bar): kinks are placed to about 1e-12.
KINK_ON_PLANE = 1e-8
# Half-length (in input scales) of the stretch a kink off every plane is searched again on.
RESCAN = 1e-2
# Doubling batches of extra fit samples for outputs that are rarely on (n, 2n, ... 16n).
RARE_OUTPUT_ROUNDS = 5
PRE_MERGE_FACTOR = 4096.0
PRE_MERGE_CAP = 1e-5


@dataclass(frozen=True)
class ExtractConfig:
    """How to attack; saved beside every result so that a run can be repeated exactly.

    ``None`` for ``hidden_bias``, ``output_bias``, ``output_relu`` and ``output_precision``
    means "find out from the answers". ``hidden_width``, when the architecture is known,
    lets the attack count the neurons it never saw (it changes nothing else).
    """

    seed: int = 0
    input_scale: float = 1.0
    line_length: float = 4.0
    lines_per_batch: int = 2
    max_lines: int = 64
    patience: int = 4
    hidden_width: int | None = None
    hidden_bias: bool | None = None
    output_bias: bool | None = None
    output_relu: bool | None = None
    output_precision: float | None = None
    fit_samples: int | None = None
    check_samples: int = 1024
    check_tolerance_log2: float | None = None
    refine: bool = True
    max_batch_rows: int = 8192

    def __post_init__(self) -> None:
        if not (self.input_scale > 0 and self.line_length > 0):
            raise GlassboxError("input_scale and line_length must be positive")
        if self.lines_per_batch < 1 or self.max_lines < 1 or self.patience < 1:
            raise GlassboxError("lines_per_batch, max_lines and patience must be at least 1")
        if self.check_samples < 1 or self.max_batch_rows < 1:
            raise GlassboxError("check_samples and max_batch_rows must be at least 1")


@dataclass(frozen=True, eq=False)
class ExtractionResult:
    """What the attack recovered and what it cost.

    ``net`` is the recovered net (None when the attack stopped before it had one),
    ``success`` the self-check's verdict, ``critical_points[h]`` the critical points found
    on hyperplane ``h`` and ``neuron_hyperplane[i]`` the hyperplane of recovered neuron
    ``i``, ``line`` the first line with its kinks (for the line plot).
    """

    net: ReLUNet | None
    success: bool
    message: str
    queries: int
    queries_by_phase: dict[str, int]
    seconds: float
    peak_rss_mb: float
    config: ExtractConfig
    lines: int = 0
    critical_points: tuple[Array, ...] = ()
    neuron_hyperplane: tuple[int, ...] = ()
    unrefined: tuple[int, ...] = ()
    invisible: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    check: dict[str, float] = field(default_factory=dict)
    line: LineKinks | None = None

    def to_json(self) -> dict[str, Any]:
        """The figures as a JSON object (the net itself is saved separately)."""
        return {
            "success": self.success,
            "message": self.message,
            "queries": self.queries,
            "queries_log2": math.log2(self.queries) if self.queries else None,
            "queries_by_phase": self.queries_by_phase,
            "seconds": self.seconds,
            "peak_rss_mb": self.peak_rss_mb,
            "net": self.net.describe() if self.net is not None else None,
            "lines": self.lines,
            "hyperplanes": len(self.critical_points),
            "neurons": len(self.neuron_hyperplane),
            "critical_points_per_hyperplane": [int(p.shape[0]) for p in self.critical_points],
            "neuron_hyperplane": list(self.neuron_hyperplane),
            "unrefined_hyperplanes": list(self.unrefined),
            "invisible": list(self.invisible),
            "notes": list(self.notes),
            "check": self.check,
            "line": self.line.to_json() if self.line is not None else None,
            "config": config_to_dict(self.config),
        }


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    try:
        import resource

        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return kib / 1024.0 if sys.platform != "darwin" else kib / 2**20
    except ImportError:  # not on Unix: current RSS is the best psutil offers
        import psutil

        return float(psutil.Process().memory_info().rss) / 2**20


class _Progress:
    """A stderr progress bar over the attack's stages (silent when disabled)."""

    STAGES = ("lines", "outputs", "refine", "check")

    def __init__(self, enabled: bool, oracle: Oracle) -> None:
        self.oracle = oracle
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=len(self.STAGES), desc="extract", unit="stage", file=sys.stderr)

    def note(self, stage: str, **info: Any) -> None:
        if self.bar is not None:
            self.bar.set_description(f"extract: {stage}")
            self.bar.set_postfix(queries=self.oracle.queries, **info)

    def done(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def extract(
    oracle: Oracle, config: ExtractConfig | None = None, progress: bool = False
) -> ExtractionResult:
    """Recover a one-hidden-layer ReLU net ``d0-d1-dout`` from ``oracle``'s answers alone."""
    config = config or ExtractConfig()
    start = time.perf_counter()
    bar = _Progress(progress, oracle)
    state = _State(oracle, config)
    try:
        state.run(bar)
        message = state.message
    except QueryBudgetExceeded as exc:
        state.success = False
        message = f"failed: {exc}"
    finally:
        bar.close()
    return ExtractionResult(
        net=state.net,
        success=state.success,
        message=message,
        queries=oracle.queries,
        queries_by_phase=oracle.queries_by_phase,
        seconds=time.perf_counter() - start,
        peak_rss_mb=peak_rss_mb(),
        config=config,
        lines=state.n_lines,
        critical_points=tuple(np.array(p) for p in state.hp.points),
        neuron_hyperplane=tuple(int(s) for s in state.source),
        unrefined=tuple(state.unrefined),
        invisible=tuple(state.invisible),
        notes=tuple(state.notes),
        check=state.check,
        line=state.first_line,
    )


class _State:
    """The attack's working state, one stage after another."""

    def __init__(self, oracle: Oracle, config: ExtractConfig) -> None:
        self.oracle = oracle
        self.config = config
        self.rng = np.random.default_rng(config.seed)
        self.d0 = oracle.input_dim
        self.dout = oracle.output_dim
        self.hp = Hyperplanes(self.d0, self.dout)
        self.net: ReLUNet | None = None
        self.success = False
        self.message = ""
        self.n_lines = 0
        self.source: NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self.unrefined: list[int] = []
        self.invisible: list[str] = []
        self.notes: list[str] = []
        self.check: dict[str, float] = {}
        self.first_line: LineKinks | None = None
        self.eps = config.output_precision or FLOAT64_EPS
        self.saw_zero = False
        # Per output, a few points where the lines saw it on (seeds for the output fit).
        self.pool: dict[int, list[Array]] = {}
        # Every hidden kink the lines saw, as (x0, d, t): each must lie on a recovered plane.
        self.seen: list[tuple[Array, Array, Array]] = []

    # ------------------------------------------------------------------ stages
    def run(self, bar: _Progress) -> None:
        cfg = self.config
        bar.note("lines")
        with self.oracle.phase("probe"):
            self._probe()
        self._lines(bar)
        bar.done()
        if len(self.hp) == 0:
            self.message = (
                f"failed: no hidden-neuron kink with a usable signature on {self.n_lines} lines "
                "(an affine function, or answers too coarse to measure gradients"
                + (", e.g. float32" if self.eps == FLOAT32_EPS else "")
                + ")"
            )
            return

        # A neuron met twice under a first estimate rougher than its error bar says shows
        # up as two near-identical planes. Each would hem the other in during refinement
        # (no room for safe steps) and both could be dropped: merge them first.
        early = self.hp.merge_duplicates(factor=PRE_MERGE_FACTOR, cap=PRE_MERGE_CAP)
        if early:
            self.notes.append(f"merged {early} near-duplicate first estimate(s) before refinement")
        bar.note("outputs", hyperplanes=len(self.hp))
        output_relu = cfg.output_relu if cfg.output_relu is not None else self.saw_zero
        with self.oracle.phase("outputs"):
            X, Y = self._fit_sample(output_relu)
        if cfg.output_relu is None and np.any(Y == 0.0):
            output_relu = True
        V, c = self.hp.matrix()
        fit = fit_output_layer(X, Y, V, c, output_relu=output_relu, output_bias=cfg.output_bias)
        rough = self._net(fit, output_relu, hidden_bias=True)
        with self.oracle.phase("outputs"):
            X2 = self._targeted(rough, fit.source, X)
            keep = np.concatenate(
                [np.zeros(X.shape[0], dtype=bool), np.ones(X2.shape[0], dtype=bool)]
            )
            X, Y = np.vstack([X, X2]), np.vstack([Y, self.oracle.query(X2)])
        bar.done()

        if cfg.refine:
            bar.note("refine", hyperplanes=len(self.hp))
            with self.oracle.phase("refine"):
                phantoms, unmeasured = refine(
                    self.oracle,
                    self.hp,
                    rough,
                    fit.source,
                    eps=self.eps,
                    input_scale=cfg.input_scale,
                    rng=self.rng,
                    max_rows=cfg.max_batch_rows,
                )
            # A plane whose gradient jumps never agree twice is not there: its first
            # estimate came from a misplaced kink. Drop it; if it was real, the self-check
            # will say so.
            self.hp.remove(phantoms)
            if phantoms:
                self.notes.append(f"dropped {len(phantoms)} hyperplane(s) no measurement confirmed")
            # A neuron seen twice under a first estimate too rough to match shows up as
            # two hyperplanes; after refinement they coincide.
            merged = self.hp.merge_duplicates() + self.hp.drop_phantoms()
            if merged:
                self.notes.append(f"merged {merged} duplicate hyperplane(s)")
            stray = self.hp.settle_offsets()
            if stray:
                self.notes.append(f"{stray} critical point(s) matched to the wrong plane at first")
            self.unrefined = [h for h, done in enumerate(self.hp.refined) if not done]
            if self.unrefined:
                self.notes.append(
                    f"{len(self.unrefined)} hyperplane(s) kept their first estimate "
                    "(no output that depends on them is on near them)"
                )
        bar.done()

        if len(self.hp) == 0:
            self.message = "failed: no hyperplane survived refinement"
            return
        V, c = self.hp.matrix()
        hidden_bias = cfg.hidden_bias
        if hidden_bias is None:
            reach = max(
                float(np.max(np.linalg.norm(p, axis=1))) for p in map(np.array, self.hp.points)
            )
            hidden_bias = bool(np.max(np.abs(c)) > 1e-9 * (1.0 + reach))
        if not hidden_bias:
            c = np.zeros_like(c)
        elif cfg.refine:
            with self.oracle.phase("refine"):
                recenter(self.oracle, self.hp, eps=self.eps, input_scale=cfg.input_scale)
            V, c = self.hp.matrix()
        fit = fit_output_layer(
            X,
            Y,
            V,
            c,
            output_relu=output_relu,
            output_bias=cfg.output_bias,
            keep=keep,
        )
        self.notes.extend(fit.notes)
        self.source = fit.source
        self.net = self._net(fit, output_relu, hidden_bias=hidden_bias)
        if cfg.hidden_width is not None and self.net.dims[1] < cfg.hidden_width:
            missing = cfg.hidden_width - self.net.dims[1]
            self.invisible.append(
                f"{missing} of {cfg.hidden_width} neurons never showed a kink on {self.n_lines} "
                "lines: outgoing weights zero, or every output that depends on them is off "
                "wherever they toggle (they do not change f where it was probed)"
            )

        bar.note("check", neurons=self.net.dims[1])
        with self.oracle.phase("check"):
            self._self_check(self.net)
        bar.done()

    def _probe(self) -> None:
        """A few Gaussian queries: output precision (float32 or float64) and output zeros."""
        X = self.rng.normal(0.0, self.config.input_scale, size=(8, self.d0))
        Y = self.oracle.query(X)
        nonzero = Y[Y != 0.0]
        self.saw_zero = bool(np.any(Y == 0.0))
        if self.config.output_precision is None and nonzero.size:
            is32 = np.all(nonzero.astype(np.float32).astype(np.float64) == nonzero)
            self.eps = FLOAT32_EPS if is32 else FLOAT64_EPS
            if is32:
                self.notes.append(
                    "answers are float32 (relative precision 2^-23): expect 2^-15 at best"
                )

    def _lines(self, bar: _Progress) -> None:
        cfg = self.config
        half = cfg.line_length * cfg.input_scale * math.sqrt(self.d0)
        quiet = 0
        while self.n_lines < cfg.max_lines and quiet < cfg.patience:
            if cfg.hidden_width is not None and len(self.hp) >= cfg.hidden_width:
                break
            n = min(cfg.lines_per_batch, cfg.max_lines - self.n_lines)
            x0 = self.rng.normal(0.0, cfg.input_scale, size=(n, self.d0))
            d = self.rng.normal(size=(n, self.d0))
            d /= np.linalg.norm(d, axis=1, keepdims=True)
            with self.oracle.phase("lines"):
                lines = find_kinks(self.oracle, x0, d, -half, half, eps=self.eps)
            for line in lines:
                self.n_lines += 1
                if self.first_line is None:
                    self.first_line = line
                self.saw_zero |= bool(np.any(line.samples_f == 0.0))
                self.seen.append((line.x0, line.d, line.t[line.hidden]))
                self._collect(line)
                new = self._absorb(line)
                quiet = 0 if new else quiet + 1
                bar.note("lines", hyperplanes=len(self.hp), lines=self.n_lines)

    def _collect(self, line: LineKinks) -> None:
        """Keep up to 8 points per output where it was on along the line."""
        for j in range(self.dout):
            kept = self.pool.setdefault(j, [])
            on = np.flatnonzero(line.samples_f[:, j] > 0)
            if on.size and len(kept) < 8:
                pick = self.rng.choice(on, size=min(2, on.size), replace=False)
                kept.extend(line.point(line.samples_t[pick]))

    def _absorb(self, line: LineKinks) -> int:
        """Match the line's hidden kinks to known hyperplanes; sign up the new ones."""
        unknown = []
        for k in line.hidden:
            point = line.point(float(line.t[k]))
            jump = line.slope_right[k] - line.slope_left[k]
            h = self.hp.match(point, line.d, jump, line.changed[k])
            if h >= 0:
                self.hp.points[h].append(point)
                self.hp.crossings[h].append(
                    (line.d, np.where(line.changed[k], jump, np.nan), float(line.slope_error[k]))
                )
                self.hp.learn(h, line.d, jump, line.changed[k])
            else:
                unknown.append(int(k))
        if not unknown:
            return 0
        scale = self.config.input_scale
        with self.oracle.phase("signatures"):
            sigs = first_signatures(
                self.oracle, line, np.array(unknown), self.eps, scale, self.config.max_batch_rows
            )
        added = 0
        for k, sig in sigs:
            point = line.point(float(line.t[k]))
            # Two new kinks of one line cannot be one neuron, but check anyway: cheap.
            jump = line.slope_right[k] - line.slope_left[k]
            if self.hp.match(point, line.d, jump, line.changed[k]) < 0:
                crossing = (
                    line.d,
                    np.where(line.changed[k], jump, np.nan),
                    float(line.slope_error[k]),
                )
                self.hp.add(sig, point, crossing)
                added += 1
        return added

    def _fit_sample(self, output_relu: bool) -> tuple[Array, Array]:
        """Queries for the output fit: Gaussian, and beside random hyperplanes on both sides.

        With an output ReLU every output needs enough samples where it is on: outputs
        short of them get more around the points where the lines saw them on.
        """
        cfg = self.config
        V, c = self.hp.matrix()
        need = V.shape[0] + self.d0 + 1
        n = cfg.fit_samples or max(3 * need, 512)
        X = self._spread(n, V, c)
        Y = self.oracle.query(X)
        if not output_relu:
            return X, Y
        for _ in range(3):
            short = np.flatnonzero(np.sum(Y > 0, axis=0) < need + 8)
            seeds = [p for j in short for p in self.pool.get(int(j), [])]
            if not seeds:
                break
            S = np.array(seeds)[self.rng.integers(0, len(seeds), size=n)]
            spread = cfg.input_scale * 4.0 ** self.rng.uniform(-1, 1, size=(n, 1))
            X2 = S + spread * self.rng.normal(size=S.shape)
            X, Y = np.vstack([X, X2]), np.vstack([Y, self.oracle.query(X2)])
        # Outputs on in a small fraction of the input space (e.g. a toy model's outputs,
        # each on about 1% of Gaussian inputs): more of the same spread, in doubling
        # batches, until each output seen on anywhere has enough rows or the cap is hit.
        seen_on = np.array([bool(self.pool.get(j)) for j in range(self.dout)])
        for k in range(RARE_OUTPUT_ROUNDS):
            short = (np.sum(Y > 0, axis=0) < need + 8) & (seen_on | np.any(Y > 0, axis=0))
            if not short.any():
                break
            X2 = self._spread(n * 2**k, V, c)
            X, Y = np.vstack([X, X2]), np.vstack([Y, self.oracle.query(X2)])
        return X, Y

    def _targeted(self, rough: ReLUNet, source: NDArray[np.int64], X: Array) -> Array:
        """Pairs of points a hair either side of each hyperplane, where the outputs it feeds are on.

        On its own hyperplane the rough net's outputs do not depend on the neuron's own
        (possibly wrong) outgoing weights, so it says reliably which outputs are on there;
        each output on at some candidate gets one pair, so every outgoing weight is
        pinned down by the refit.
        """
        V, c = self.hp.matrix()
        s = self.config.input_scale
        seeds = [X[self.rng.integers(0, X.shape[0], size=64)]]
        seeds += [np.array(p).reshape(-1, self.d0) for p in self.pool.values()]
        pool = np.vstack(seeds)
        out = []
        for h in range(V.shape[0]):
            p = pool - np.outer(pool @ V[h] + c[h], V[h])
            on = rough.preactivations(p)[-1] > 0
            if not rough.output_relu:
                on[:] = True
            covered = np.zeros(self.dout, dtype=bool)
            for _ in range(8):
                gain = np.sum(on & ~covered, axis=1)
                best = int(np.argmax(gain))
                if gain[best] == 0:
                    break
                covered |= on[best]
                out.extend([p[best] + 1e-2 * s * V[h], p[best] - 1e-2 * s * V[h]])
        return np.array(out).reshape(-1, self.d0)

    def _spread(self, n: int, V: Array, c: Array) -> Array:
        """``n`` inputs: half Gaussian, half near random hyperplanes (within one input scale)."""
        s = self.config.input_scale
        X = self.rng.normal(0.0, s, size=(n, self.d0))
        near = np.arange(n // 2, n)
        h = self.rng.integers(0, V.shape[0], size=near.size)
        proj = X[near] - ((X[near] * V[h]).sum(axis=1) + c[h])[:, None] * V[h]
        X[near] = proj + self.rng.uniform(-s, s, size=(near.size, 1)) * V[h]
        return X

    def _net(self, fit: OutputFit, output_relu: bool, *, hidden_bias: bool) -> ReLUNet:
        biases = fit.biases if hidden_bias else None
        return ReLUNet([fit.rows, fit.out_weights], [biases, fit.out_bias], output_relu=output_relu)

    def _self_check(self, net: ReLUNet) -> None:
        """Compare the recovered net with the oracle on fresh queries; sets the verdict."""
        cfg = self.config
        V, c = self.hp.matrix()
        X = np.vstack(
            [
                self.rng.normal(0.0, cfg.input_scale, size=(cfg.check_samples, self.d0)),
                self._near_planes(V, c),
            ]
        )
        Y = self.oracle.query(X)
        err = float(np.max(np.abs(Y - net.forward(X))))
        scale = max(float(np.max(np.abs(Y))), np.finfo(np.float64).tiny)
        rel = err / scale
        tol_log2 = cfg.check_tolerance_log2
        if tol_log2 is None:
            tol_log2 = max(-30.0, math.log2(self.eps) + 12)
        self.check = {
            "samples": float(X.shape[0]),
            "max_error": err,
            "output_scale": scale,
            "relative_error_log2": math.log2(rel) if rel > 0 else -1074.0,
            "tolerance_log2": tol_log2,
        }
        stray = self._unexplained_kinks(V, c, np.array(self.hp.errors))
        self.check["unexplained_kinks"] = float(stray)
        self.success = rel <= 2.0**tol_log2 and stray == 0
        verdict = "success" if self.success else "failed"
        self.message = (
            f"{verdict}: {net.dims[1]} neurons on {len(self.hp)} hyperplanes; "
            f"max |f - f_hat| = 2^{math.log2(err) if err > 0 else -1074:.1f} on {X.shape[0]} fresh "
            f"queries (relative 2^{self.check['relative_error_log2']:.1f}, tolerance 2^{tol_log2:.0f})"
        )
        if stray:
            # A neuron whose whole effect is under the tolerance (tiny outgoing weights)
            # can be missing while f still matches: its kinks on the lines betray it.
            self.message += (
                f"; {stray} hidden kink(s) seen on the lines lie on no recovered hyperplane "
                "(a neuron is missing)"
            )

    def _unexplained_kinks(self, V: Array, c: Array, err: Array) -> int:
        """How many hidden kinks seen on the lines lie on none of the hyperplanes ``V x + c``.

        A kink off every plane is first looked at again on a short stretch of its line
        (two kinks closer than the first search could tell apart come out as one,
        misplaced); only kinks that the closer look still places off every plane count.
        """

        def off(P: Array) -> NDArray[np.bool_]:
            reach = 1.0 + np.linalg.norm(P, axis=1)
            resid = np.abs(P @ V.T + c)
            tol = (KINK_ON_PLANE + 64 * err[None, :]) * reach[:, None]
            return ~np.any(resid <= tol, axis=1)

        starts, dirs = [], []
        for x0, d, t in self.seen:
            if t.size == 0:
                continue
            P = x0 + np.multiply.outer(t, d)
            for p in P[off(P)]:
                starts.append(p)
                dirs.append(d)
        if not starts:
            return 0
        r = RESCAN * self.config.input_scale
        lines = find_kinks(self.oracle, np.array(starts), np.array(dirs), -r, r, eps=self.eps)
        return sum(int(np.sum(off(line.point(line.t[line.hidden])))) for line in lines)

    def _near_planes(self, V: Array, c: Array) -> Array:
        """Two points beside every hyperplane, a hair off it on either side."""
        s = self.config.input_scale
        q = self.rng.normal(0.0, s, size=(V.shape[0], self.d0))
        p = q - ((q * V).sum(axis=1) + c)[:, None] * V
        off = 1e-6 * s * V
        return np.vstack([p + off, p - off])
