"""The whole extraction of a ReLU net of any depth, from queries alone: a loop over layers.

For layer ``i`` = 1, 2, ...: the recovered prefix (layers ``1..i-1``, signs known) gives
every earlier neuron's state at no query cost; the layer's neurons are found through it
(``layer.py``); then one linear fit says whether this was the last hidden layer, and if
so gives its signs and the output layer at once (``lastlayer.py``). If not, the neuron
wiggle gives the layer's signs (``wiggle.py``), the layer joins the prefix, and the loop
goes on. Depth and widths are discovered, not given. ``success`` is the verdict of the
self-check (``check.py``) and nothing else.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
from numpy.typing import NDArray

from glassbox.extract.check import kink_layers, self_check
from glassbox.extract.kinks import HIDDEN, LineKinks
from glassbox.extract.lastlayer import LastLayerFit, fit_last_layer
from glassbox.extract.layer import LayerSearch, search_layer
from glassbox.extract.oracle import (
    NonFiniteAnswer,
    Oracle,
    QueryBudgetExceeded,
    averaged,
    finite_answers,
    limited,
    row_capped,
)
from glassbox.extract.precision import polish_single_layer
from glassbox.extract.predicted import SearchSettings
from glassbox.extract.prefix import Prefix
from glassbox.extract.probe import AnswerProfile, profile_oracle
from glassbox.extract.progress import Progress, peak_rss_mb
from glassbox.extract.records import ExtractConfig, ExtractionResult
from glassbox.extract.sampling import fit_sample, straddle
from glassbox.extract.tolerance import FLOAT64_EPS, is_coarse
from glassbox.extract.wiggle import points_on_plane, wiggle_signs
from glassbox.mlp import ReLUNet

Array = NDArray[np.float64]

# A bias this small relative to its row is absent (bias-free layers stay bias-free).
NO_BIAS = 1e-9
# A first-layer fit this close (relative residual, log2) with rough rows: a lone hidden layer.
NEARLY_EXACT = -12.0
# Lines of the second look at a layer are this many times longer.
EXTRA_REACH = 16.0


def extract(
    oracle: Oracle, config: ExtractConfig | None = None, progress: bool = False
) -> ExtractionResult:
    """Recover a ReLU net of any depth from ``oracle``'s answers alone."""
    config = config or ExtractConfig()
    start = time.perf_counter()
    box = row_capped(oracle, config.max_batch_rows)
    q0 = box.queries
    with box.phase("probe"):
        try:
            # Its own stream: the attack's draws stay the same whatever the probe asks.
            profile = profile_oracle(
                box, np.random.default_rng([config.seed, 1]), config.input_scale
            )
        except QueryBudgetExceeded as exc:
            spent = box.queries - q0
            profile = AnswerProfile("unknown", 1.0, 0.0, queries=spent, stop=f"{exc} (probing)")
    budget = config.max_queries or default_budget(box.input_dim, box.output_dim, profile.repeats)
    work = limited(
        averaged(finite_answers(box), profile.repeats, config.max_batch_rows),
        max(1, budget - (box.queries - q0)),
        per_row=profile.repeats,
    )
    bar = Progress(progress, work)
    run = _Run(work, config, bar, np.random.default_rng(config.seed), profile)
    try:
        if profile.stop is not None:
            run.message = f"stopped after {box.queries - q0} queries: {profile.stop}"
        else:
            run.go()
    except QueryBudgetExceeded as exc:
        run.success = False
        run.message = f"failed: {exc}"
    except NonFiniteAnswer as exc:
        run.success = False
        run.message = f"stopped: {exc}"
    finally:
        bar.close()
    arch = None
    if run.net is not None:
        arch = "-".join(map(str, run.net.dims))
    return ExtractionResult(
        net=run.net,
        success=run.success,
        message=run.message,
        queries=box.queries - q0,
        queries_by_phase=box.queries_by_phase,
        seconds=time.perf_counter() - start,
        peak_rss_mb=peak_rss_mb(),
        config=config,
        architecture=arch,
        layers=tuple(run.layers),
        lines=run.n_lines,
        invisible=tuple(run.invisible),
        notes=tuple(run.notes),
        check=run.check,
        line=run.first_line,
        answers=profile.to_json(),
    )


def default_budget(input_dim: int, output_dim: int, repeats: int = 1) -> int:
    """The query budget when none is given: it grows with the black box's widths (and with
    the repeats averaging takes), so that no target can make the attack ask forever."""
    return min(2**31, repeats * 2**15 * (input_dim + output_dim + 16))


class _Run:
    """The attack's working state, one layer after another."""

    def __init__(
        self,
        oracle: Oracle,
        config: ExtractConfig,
        bar: Progress,
        rng: np.random.Generator,
        profile: AnswerProfile,
    ) -> None:
        self.oracle = oracle
        self.config = config
        self.bar = bar
        self.rng = rng
        self.prefix = Prefix(oracle.input_dim)
        self.net: ReLUNet | None = None
        self.success = False
        self.message = ""
        self.layers: list[dict[str, Any]] = []
        self.invisible: list[str] = []
        self.notes: list[str] = []
        self.check: dict[str, float] = {}
        self.first_line: LineKinks | None = None
        self.n_lines = 0
        self.eps = config.output_precision or max(profile.eps, FLOAT64_EPS)
        if profile.kind != "float64":
            self.notes.append(profile.describe())
        self.saw_zero = False
        # Hidden kinks seen on the lines, as (point, line direction): each must be explained.
        self.seen: list[tuple[Array, Array]] = []
        self.on_points: dict[int, list[Array]] = {}
        # Per recovered layer, points on each neuron's hyperplane (for the self-check).
        self.plane_points: list[list[Array]] = []

    def go(self) -> None:
        self._probe_zeros()
        widths = self.config.widths()
        for depth in range(1, self.config.max_depth + 1):
            hint = widths[depth - 1] if widths and depth <= len(widths) else None
            t0, q0 = time.perf_counter(), self.oracle.queries
            self.bar.layer(depth)
            search = self._search(depth, hint)
            if not search.neurons:
                self.message = (
                    f"failed: no neuron of layer {depth} found on {search.lines} lines "
                    f"({search.kinks} kinks, {len(search.unexplained)} without a usable "
                    "signature): an affine function, answers too coarse, or not a ReLU net"
                )
                return
            theta = np.array([n.theta for n in search.neurons])
            info: dict[str, Any] = _layer_info(depth, search)
            fit = self._last_layer_fit(theta, np.array(info["_points"]))
            rough = [i for i, n in enumerate(search.neurons) if not n.refined]
            if fit.residual_log2 < NEARLY_EXACT and self.prefix.depth == 0 and rough:
                # One hidden layer, rows too wide for the kink refinement: large safe steps.
                with self.oracle.phase("refine"):
                    polished, _ = polish_single_layer(
                        self.oracle, theta, np.array(info["_points"]), self.config.input_scale
                    )
                theta[rough] = polished[rough]
                fit = self._last_layer_fit(theta, np.array(info["_points"]))
            if not _clean(fit):
                # A neuron on (or off) everywhere the lines went is linear on the samples
                # and spoils the fit (or, exact, its signs): look again, briefly, further
                # out, before deciding. (Deeper layers spoil it too; the look is short.)
                before = [id(n) for n in search.neurons]
                search = self._search(depth, hint, resume=search)
                if not search.neurons:
                    self.message = f"failed: no neuron of layer {depth} held up on a second look"
                    return
                if [id(n) for n in search.neurons] != before:
                    theta = np.array([n.theta for n in search.neurons])
                    info = _layer_info(depth, search)
                    fit = self._last_layer_fit(theta, np.array(info["_points"]))
            if fit.exact:
                self._finish(fit, info, t0, q0, hint)
                return
            with self.oracle.phase("signs"):
                points = [points_on_plane(self.prefix, n) for n in search.neurons]
                votes = wiggle_signs(self.oracle, self.prefix, theta, points, self.rng, self.eps)
            for n_info, v in zip(info["neuron_evidence"], votes, strict=True):
                n_info.update(
                    sign=v.sign,
                    votes=[v.votes_plus, v.votes_minus],
                    degenerate_votes=v.degenerate,
                    sign_confidence=v.confidence,
                )
            info.update(
                sign_method="neuron wiggle",
                lowest_sign_confidence=min(v.confidence for v in votes),
                queries=self.oracle.queries - q0,
                seconds=time.perf_counter() - t0,
                last_layer_fit_residual_log2=fit.residual_log2,
            )
            self.layers.append(info)
            bad = [j for j, v in enumerate(votes) if not v.decided]
            if bad:
                self.message = (
                    f"failed: signs of {len(bad)} of {len(votes)} neurons of layer {depth} stay "
                    f"ambiguous after their votes (neurons {bad[:8]}); not guessed"
                )
                return
            info.pop("_points")
            rows = theta * np.array([v.sign for v in votes])[:, None]
            self.prefix.push(rows[:, :-1], rows[:, -1])
            self.plane_points.append([p[0] for p in points])
        self.message = f"failed: no exact output fit after {self.config.max_depth} hidden layers"

    def _probe_zeros(self) -> None:
        """A few Gaussian queries: do exact zeros appear (an output ReLU, maybe)?"""
        with self.oracle.phase("probe"):
            X = self.rng.normal(0.0, self.config.input_scale, size=(8, self.oracle.input_dim))
            Y = self.oracle.query(X)
        self.saw_zero = bool(np.any(Y == 0.0))

    def _search(
        self, depth: int, hint: int | None, resume: LayerSearch | None = None
    ) -> LayerSearch:
        cfg = self.config
        # Coarse answers hide kinks with small slope jumps: lines find fewer per neuron.
        patience = cfg.patience * (2 if is_coarse(self.eps) else 1)
        settings = SearchSettings(
            cfg.input_scale,
            cfg.line_length,
            cfg.lines_per_batch,
            cfg.max_lines,
            patience if resume is None else max(1, patience // 2),
            self.eps,
            hint,
        )

        def report(s: LayerSearch) -> None:
            self.bar.note(neurons=len(s.neurons), lines=s.lines)

        before = resume.lines if resume is not None else 0
        search = search_layer(
            self.oracle,
            self.prefix,
            settings,
            self.rng,
            report,
            resume=resume,
            reach=1.0 if resume is None else EXTRA_REACH,
        )
        self.n_lines += search.lines - before
        if self.first_line is None:
            self.first_line = search.first_line
        self.seen.extend(search.seen)
        self.saw_zero |= search.saw_zero
        for j, pts in search.on_points.items():
            self.on_points.setdefault(j, []).extend(pts)
        if hint is not None and len(search.neurons) < hint:
            self.invisible.append(
                f"layer {depth}: {hint - len(search.neurons)} of {hint} neurons never showed "
                f"a kink on {search.lines} lines"
            )
        return search

    def _last_layer_fit(self, theta: Array, anchors: Array) -> LastLayerFit:
        relu = self.config.output_relu
        with self.oracle.phase("outputs"):
            X, Y = fit_sample(
                self.oracle,
                self.prefix,
                theta,
                anchors,
                self.on_points,
                self.rng,
                self.config.input_scale,
                per_anchor=8,
            )
        if relu is not None:
            self.output_relu = relu
            return fit_last_layer(self.prefix, theta, X, Y, output_relu=relu, eps=self.eps)
        # Exact zeros alone do not mean an output ReLU (a bias-free net is 0 wherever all
        # its last neurons are off): the plain fit is tried first, the ReLU one if it fails.
        self.output_relu = False
        fit = fit_last_layer(self.prefix, theta, X, Y, output_relu=False, eps=self.eps)
        if fit.exact or not (self.saw_zero or bool(np.any(Y == 0.0))):
            return fit
        with_relu = fit_last_layer(self.prefix, theta, X, Y, output_relu=True, eps=self.eps)
        for _ in range(2):
            if not with_relu.exact or with_relu.seen is None:
                return fit
            self.output_relu = True
            on = np.any(Y > 0, axis=0)
            unseen = ~with_relu.seen & on[:, None]
            if not unseen.any():
                break
            with self.oracle.phase("outputs"):
                X, Y = straddle(
                    self.oracle, self.prefix, theta, X, Y, unseen, self.rng, self.config.input_scale
                )
            with_relu = fit_last_layer(self.prefix, theta, X, Y, output_relu=True, eps=self.eps)
        return with_relu

    def _finish(
        self, fit: LastLayerFit, info: dict[str, Any], t0: float, q0: int, hint: int | None
    ) -> None:
        depth = self.prefix.depth + 1
        info.update(
            sign_method="last hidden layer (linear solve)",
            lowest_sign_confidence=1.0 - fit.sigma_error if fit.rows is not None else 0.0,
            last_layer_fit_residual_log2=fit.residual_log2,
        )
        self.notes.extend(fit.notes)
        if fit.rows is None or fit.out_weights is None or fit.out_bias is None:
            info.update(queries=self.oracle.queries - q0, seconds=time.perf_counter() - t0)
            self.layers.append(info)
            self.message = f"failed: layer {depth} is the last hidden layer, but " + (
                "; ".join(fit.notes) or "its signs could not be read"
            )
            return
        signs = fit.signs if fit.signs is not None else np.zeros(0)
        for n_info, s in zip(info["neuron_evidence"], signs, strict=False):
            n_info.update(sign=float(s), sign_confidence=1.0 - fit.sigma_error)
        pairs = int(np.sum(fit.signs == 0.0)) if fit.signs is not None else 0
        if pairs:
            self.notes.append(f"{pairs} hyperplane(s) of layer {depth} hold a +/- pair of neurons")
        weights = [*self.prefix.weights, fit.rows[:, :-1], fit.out_weights]
        biases: list[Array | None] = [*self.prefix.biases, fit.rows[:, -1], fit.out_bias]
        for i, (W, b) in enumerate(zip(weights, biases, strict=True)):
            if b is not None and np.all(np.abs(b) <= NO_BIAS * np.max(np.abs(W))):
                biases[i] = None
        self.net = ReLUNet(weights, biases, output_relu=self.output_relu)
        if self.first_line is not None:
            line = self.first_line
            hidden = line.point(line.t) if line.t.size else np.zeros((0, line.x0.size))
            layers = kink_layers(self.net, hidden)
            marks = tuple(layers[k] if kind == HIDDEN else 0 for k, kind in enumerate(line.kind))
            self.first_line = dataclasses.replace(line, layer=marks)
        self.plane_points.append([w for w in info.pop("_points")])
        info["neurons"] = self.net.dims[depth]
        info.update(queries=self.oracle.queries - q0, seconds=time.perf_counter() - t0)
        self.layers.append(info)
        self.bar.layer(0)
        with self.oracle.phase("check"):
            verdict = self_check(
                self.oracle,
                self.net,
                self.plane_points,
                self.seen,
                self.rng,
                input_scale=self.config.input_scale,
                samples=self.config.check_samples,
                eps=self.eps,
                tolerance_log2=self.config.check_tolerance_log2,
            )
        self.check = verdict.figures
        self.check["unmeasured_weights"] = float(fit.unmeasured)
        self.success = verdict.success and fit.unmeasured == 0
        self.message = verdict.message
        if fit.unmeasured:
            self.message = self.message.replace("success:", "failed:", 1) + (
                f"; {fit.unmeasured} outgoing weight(s) never measured (an output on only where "
                "its neuron is off, in every sample): the net may differ where they matter"
            )


def _clean(fit: LastLayerFit) -> bool:
    """An exact fit with every sign read cleanly and no +/- pair (pairs are rare; check twice)."""
    return fit.exact and fit.signs is not None and not np.any(fit.signs == 0.0)


def _layer_info(depth: int, search: LayerSearch) -> dict[str, Any]:
    """The per-layer record (``extraction.json``'s ``layers``), before signs are known."""
    return {
        "layer": depth,
        "neurons": len(search.neurons),
        "lines": search.lines,
        "kinks": search.kinks,
        "deeper_kinks_set_aside": search.deeper,
        "kinks_without_signature": len(search.unexplained),
        "incomplete_rows": sum(not n.complete for n in search.neurons),
        "rank_deficient_witnesses": sum(n.rank_deficient for n in search.neurons),
        "_points": [n.witnesses[0].x for n in search.neurons],
        "neuron_evidence": [
            {
                "witnesses": len(n.witnesses),
                "rank_deficient_witnesses": n.rank_deficient,
                "known_inputs": int(np.sum(n.known)),
                "error_bar": n.error,
                "flat_checks": [n.flat_checks, n.flat_failures],
            }
            for n in search.neurons
        ],
    }
