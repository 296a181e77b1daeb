"""The layer loop: search a layer, decide whether it is the last, sign it, push it; repeat.

:class:`LayerLoop` holds the attack's working state. Each step is one method, in the
order :meth:`LayerLoop.go` calls them; every query goes through the oracle it was given.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
from numpy.typing import NDArray

from glassbox.extract.check import kink_layers, self_check
from glassbox.extract.kinks import HIDDEN, LineKinks
from glassbox.extract.layer import LayerSearch, search_layer
from glassbox.extract.layer_work import Layer, clean_fit
from glassbox.extract.polish import polish_neurons
from glassbox.extract.precision import refine_layer
from glassbox.extract.predicted import SearchSettings
from glassbox.extract.prefix import Prefix
from glassbox.extract.progress import Progress
from glassbox.extract.records import ExtractConfig, layer_record
from glassbox.extract.sampling import output_fit
from glassbox.extract.signs.dispatch import Probe, confirm, fake_pairs, sign_inner_layer
from glassbox.extract.signs.last_layer import LastLayerFit
from glassbox.extract.signs.wiggle import points_on_plane
from glassbox.extract.tolerance import FLOAT64_EPS, is_coarse
from glassbox.mlp import ReLUNet
from glassbox.oracle.core import Oracle
from glassbox.oracle.probe import AnswerProfile

Array = NDArray[np.float64]

# A bias this small relative to its row is absent (bias-free layers stay bias-free).
NO_BIAS = 1e-9
# A first-layer fit this close (relative residual, log2) with rough rows: a lone hidden layer.
NEARLY_EXACT = -12.0
# Lines of the second look at a layer are this many times longer.
EXTRA_REACH = 16.0
# Further looks while the fit reads +/- pairs that SOE disputes.
MORE_LOOKS = 2


class LayerLoop:
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
        self.output_relu = False
        # Hidden kinks seen on the lines, as (point, line direction): each must be explained.
        self.seen: list[tuple[Array, Array]] = []
        self.on_points: dict[int, list[Array]] = {}
        # Per recovered layer, points on each neuron's hyperplane (for the self-check).
        self.plane_points: list[list[Array]] = []
        # Lines whose kinks the last layer's search judged deeper: the next layer's first look.
        self.held: list[LineKinks] = []
        # The inputs and answers of the last output fit.
        self.sample: tuple[Array, Array] = (np.zeros((0, oracle.input_dim)), np.zeros((0, 0)))

    def go(self) -> None:
        """Layer after layer: search it, decide whether it is the last, sign it, push it."""
        self._probe_zeros()
        for depth in range(1, self.config.max_depth + 1):
            layer = self._search_layer(depth)
            if layer is None or not self._decide_last(layer):
                return
            if layer.fit is not None and layer.fit.exact:
                self._finish(layer)
                return
            if not self._sign(layer):
                return
            self._push(layer)
        self.message = f"failed: no exact output fit after {self.config.max_depth} hidden layers"

    def _search_layer(self, depth: int) -> Layer | None:
        """Find layer ``depth``'s neurons through the prefix (rows known up to sign)."""
        widths = self.config.widths()
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
            return None
        theta = np.array([n.theta for n in search.neurons])
        return Layer(depth, hint, t0, q0, search, theta, layer_record(depth, search))

    def _decide_last(self, layer: Layer) -> bool:
        """Fit the output as a function of the layer: exact means it is the last hidden one."""
        layer.fit = self._last_layer_fit(layer.theta, layer.anchors())
        self._polish_lone_layer(layer)
        if clean_fit(layer.fit):
            return True
        # A neuron on (or off) everywhere the lines went spoils the fit (or its signs):
        # look again, briefly, further out (deeper layers spoil it too; the look is
        # short), and again while SOE disputes the fit's +/- pairs (a neuron missing).
        if not self._second_look(layer):
            return False
        for _ in range(MORE_LOOKS):
            if not self._fake_pairs(layer):
                break
            if not self._second_look(layer):
                return False
        return True

    def _fake_pairs(self, layer: Layer) -> bool:
        """An exact fit with +/- pairs whose pairing SOE disputes (a neuron still missing)."""
        if layer.fit is None or not layer.fit.exact:
            return False
        with self.oracle.phase("signs"):
            return fake_pairs(self._probe(), layer.theta, layer.fit.signs, list(layer.anchors()))

    def _probe(self) -> Probe:  # what the sign methods work with
        return Probe(self.oracle, self.prefix, self.rng, self.eps, self.config.input_scale)

    def _polish_lone_layer(self, layer: Layer) -> None:
        """One hidden layer: every row re-measured with large safe steps (``polish.py``)."""
        assert layer.fit is not None
        if not (layer.fit.residual_log2 < NEARLY_EXACT and self.prefix.depth == 0):
            return
        neurons, cfg = layer.search.neurons, self.config
        with self.oracle.phase("refine"):
            if not polish_neurons(self.oracle, neurons, layer.anchors(), cfg, self.eps, self.rng):
                return
        layer.theta = np.array([n.theta for n in neurons])
        # The same samples again: the planes moved by less than their rough error.
        layer.fit = self._last_layer_fit(layer.theta, layer.anchors(), self.sample)

    def _refine_first_layer(self, layer: Layer) -> None:
        """First-layer rows the search left unrefined, refined from kinks until they settle."""
        rough = [n for n in layer.search.neurons if not n.refined]
        if self.prefix.depth == 0 and rough:
            with self.oracle.phase("refine"):
                refine_layer(
                    self.oracle, self.prefix, rough, self.rng, self.config.input_scale, self.eps
                )
            layer.theta = np.array([n.theta for n in layer.search.neurons])

    def _second_look(self, layer: Layer) -> bool:
        """Search the layer again with longer lines; refit if it found other neurons."""
        before = [id(n) for n in layer.search.neurons]
        layer.search = self._search(layer.depth, layer.hint, resume=layer.search)
        if not layer.search.neurons:
            self.message = f"failed: no neuron of layer {layer.depth} held up on a second look"
            return False
        if [id(n) for n in layer.search.neurons] != before:
            layer.theta = np.array([n.theta for n in layer.search.neurons])
            layer.info = layer_record(layer.depth, layer.search)
            layer.fit = self._last_layer_fit(layer.theta, layer.anchors())
            self._polish_lone_layer(layer)
        return True

    def _sign(self, layer: Layer) -> bool:
        """Signs of a layer that is not the last (``signs/dispatch.py``); unclear ones fail."""
        assert layer.fit is not None
        t0 = time.perf_counter()
        self._refine_first_layer(layer)
        with self.oracle.phase("signs"):
            layer.points = [points_on_plane(self.prefix, n) for n in layer.search.neurons]
            found = sign_inner_layer(self._probe(), layer.theta, layer.points)
        for n_info, s, ev in zip(
            layer.info["neuron_evidence"], found.signs, found.evidence, strict=True
        ):
            n_info.update(sign=float(s), **ev)
        layer.info.update(
            sign_method=found.method,
            sign_methods_agreed=found.agreed,
            lowest_sign_confidence=found.margin,
            lowest_sign_margin=found.margin,
            sign_seconds=time.perf_counter() - t0,
            **layer.spent(self.oracle),
            last_layer_fit_residual_log2=layer.fit.residual_log2,
        )
        self.layers.append(layer.info)
        failure = found.failure(layer.depth)
        if failure:
            self.message = failure
            return False
        layer.signs = found.signs
        return True

    def _push(self, layer: Layer) -> None:
        """The signed layer joins the prefix; its plane points are kept for the self-check."""
        assert layer.signs is not None
        layer.info.pop("_points")
        rows = layer.theta * layer.signs[:, None]
        self.prefix.push(rows[:, :-1], rows[:, -1])
        self.plane_points.append([p[0] for p in layer.points])

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

        before = resume.lines if resume is not None else 0
        search = search_layer(
            self.oracle,
            self.prefix,
            settings,
            self.rng,
            lambda s: self.bar.note(neurons=len(s.neurons), lines=s.lines),
            resume=resume,
            reach=1.0 if resume is None else EXTRA_REACH,
            held=self.held if resume is None else None,
        )
        self.held = search.held
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

    def _last_layer_fit(
        self, theta: Array, anchors: Array, sample: tuple[Array, Array] | None = None
    ) -> LastLayerFit:
        """The output fit on this layer (``sampling.output_fit``): exact means the last."""
        fit, self.output_relu, self.sample = output_fit(
            self.oracle,
            self.prefix,
            theta,
            anchors,
            self.on_points,
            self.rng,
            self.config.input_scale,
            self.eps,
            self.config.output_relu,
            self.saw_zero,
            sample,
        )
        return fit

    def _finish(self, layer: Layer) -> None:
        """The last hidden layer: signs and output layer from the fit, then the self-check."""
        fit, info = layer.fit, layer.info
        assert fit is not None
        margin = 1.0 - fit.sigma_error if fit.rows is not None else 0.0
        info.update(
            sign_method=f"last hidden layer ({fit.method})",
            sign_methods_agreed=[fit.method] if fit.rows is not None else [],
            lowest_sign_confidence=margin,
            lowest_sign_margin=margin,
            sign_seconds=fit.sign_seconds,
            last_layer_fit_residual_log2=fit.residual_log2,
        )
        if fit.rivals:
            self.notes.append(
                f"layer {layer.depth}: {fit.rivals} other sign vector(s) fit the answers as well "
                "(too few inputs to tell them apart); their nets give the same function to the "
                "answers' precision, and the weights are not identifiable there"
            )
        self.notes.extend(fit.notes)
        if fit.rows is None or fit.out_weights is None or fit.out_bias is None:
            info.update(layer.spent(self.oracle))
            self.layers.append(info)
            self.message = f"failed: layer {layer.depth} is the last hidden layer, but " + (
                "; ".join(fit.notes) or "its signs could not be read"
            )
            return
        if not self._confirm_last(layer, fit):
            return
        self._assemble(layer, fit)
        self._self_check(fit)

    def _confirm_last(self, layer: Layer, fit: LastLayerFit) -> bool:
        """SOE beside the fit's signs; a disagreement measured again fails the run."""
        assert fit.signs is not None
        t0 = time.perf_counter()
        with self.oracle.phase("signs"):  # SOE: None where the layer is too wide for it
            soe, split = confirm(self._probe(), layer.theta, fit.signs, list(layer.anchors()))
        layer.info["sign_seconds"] += time.perf_counter() - t0
        if soe is not None and not split and np.any(soe.sign != 0):
            layer.info["sign_methods_agreed"].append("SOE")
        if soe is None or not split:
            return True
        layer.info.update(layer.spent(self.oracle))
        self.layers.append(layer.info)
        self.message = (
            f"failed: the last hidden layer's signs by {fit.method} and by SOE disagree on "
            f"neurons {split[:8]} even after measuring again; not guessed"
        )
        return False

    def _assemble(self, layer: Layer, fit: LastLayerFit) -> None:
        """The recovered net: the prefix, the signed last hidden layer and the output layer."""
        assert fit.rows is not None and fit.out_weights is not None and fit.out_bias is not None
        depth, info = layer.depth, layer.info
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
        info.update(layer.spent(self.oracle))
        self.layers.append(info)

    def _self_check(self, fit: LastLayerFit) -> None:
        """The verdict: the recovered net against fresh queries (``check.py``)."""
        assert self.net is not None
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
        self.check["unmeasured_weights"] = float(len(fit.unmeasured))
        self.success = verdict.success and not fit.unmeasured
        self.message = verdict.message
        if fit.unmeasured:
            pairs = ", ".join(f"output {o} from neuron {j}" for o, j in fit.unmeasured[:6])
            self.message = self.message.replace("success:", "failed:", 1) + (
                f"; {len(fit.unmeasured)} outgoing weight(s) never measured ({pairs}): each "
                "output was on only where its neuron is off, in every sample, so the net may "
                "differ where they matter"
            )
