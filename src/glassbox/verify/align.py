"""Undo a ReLU net's symmetries: match a recovered net's hidden neurons to the truth's.

A ReLU net is unchanged by permuting a hidden layer's neurons and by scaling a neuron's
incoming weights and bias by ``c > 0`` while dividing its outgoing weights by ``c``.
:func:`align` finds that permutation and those scales, layer by layer, and says which
truth neurons are dead, invisible or unmatched and which recovered ones are extra.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from glassbox.errors import GlassboxError
from glassbox.mlp import ReLUNet
from glassbox.verify.inputs import sample_inputs

Array = NDArray[np.float64]
IntArray = NDArray[np.int64]

MIN_COSINE = 0.9


@dataclass(frozen=True)
class NeuronNote:
    """One hidden neuron set apart: its hidden layer (0 = first), index and why."""

    layer: int
    index: int
    reason: str

    def to_json(self) -> dict[str, Any]:
        """The note as a JSON object."""
        return {"layer": self.layer, "index": self.index, "reason": self.reason}


@dataclass(frozen=True, eq=False)
class Alignment:
    """How a recovered net maps onto the truth, hidden layer by hidden layer.

    ``permutations[l][j]`` is the recovered neuron matched to truth neuron ``j`` of hidden
    layer ``l`` (-1: none) and ``scales[l][j]`` the factor with recovered row = scale *
    truth row (NaN where unmatched). ``aligned`` computes the recovered net's function with
    hidden layer ``l`` laid out as the truth's neurons in the truth's order and scale (zero
    rows where unmatched), followed by the unmatched recovered neurons ``extras[l]``.
    """

    permutations: tuple[IntArray, ...]
    scales: tuple[Array, ...]
    extras: tuple[IntArray, ...]
    aligned: ReLUNet
    dead: tuple[NeuronNote, ...]
    invisible: tuple[NeuronNote, ...]
    unmatched_truth: tuple[NeuronNote, ...]
    unmatched_recovered: tuple[NeuronNote, ...]
    dead_mask: tuple[NDArray[np.bool_], ...]
    invisible_mask: tuple[NDArray[np.bool_], ...]


def _dead_neurons(net: ReLUNet, X: Array) -> list[NDArray[np.bool_]]:
    return [~np.any(z > 0, axis=0) for z in net.preactivations(X)[:-1]]


def _match(cos: Array, min_cosine: float) -> IntArray:
    """Match truth rows to recovered columns: repeatedly take mutual best pairs above the bar."""
    n_t = cos.shape[0]
    match = np.full(n_t, -1, dtype=np.int64)
    if cos.size == 0:
        return match
    c = cos.copy()
    rows = np.arange(n_t)
    while True:
        best_r = np.argmax(c, axis=1)
        best_t = np.argmax(c, axis=0)
        mutual = (best_t[best_r] == rows) & (c[rows, best_r] >= min_cosine)
        if not mutual.any():
            return match
        ts, rs = rows[mutual], best_r[mutual]
        match[ts] = rs
        c[ts, :] = -np.inf
        c[:, rs] = -np.inf


def _unit_rows(a: Array) -> Array:
    n = np.linalg.norm(a, axis=1, keepdims=True)
    return np.divide(a, n, out=np.zeros_like(a), where=n > 0)


def _to_truth_columns(w: Array, perm: IntArray, scale: Array, extras: IntArray) -> Array:
    """Recovered layer columns rearranged to the previous layer's aligned layout."""
    out = np.zeros((w.shape[0], perm.size + extras.size))
    cols = np.flatnonzero(perm >= 0)
    out[:, cols] = w[:, perm[cols]] * scale[cols]
    out[:, perm.size :] = w[:, extras]
    return out


def align(
    recovered: ReLUNet,
    truth: ReLUNet,
    *,
    n_samples: int = 4096,
    seed: int = 0,
    min_cosine: float = MIN_COSINE,
) -> Alignment:
    """Match recovered hidden neurons to the truth's (permutation and positive scale), layer by layer.

    Rows are compared as (incoming weights, bias) in the truth's coordinates, by cosine;
    pairs are taken mutual-best-first while the cosine is at least ``min_cosine``. Dead
    truth neurons are found on ``n_samples`` Gaussian and ``n_samples`` uniform inputs.
    """
    if recovered.input_dim != truth.input_dim or recovered.output_dim != truth.output_dim:
        raise GlassboxError(
            f"the nets have different inputs/outputs: recovered {recovered.describe()}, "
            f"truth {truth.describe()}"
        )
    if len(recovered.weights) != len(truth.weights):
        raise GlassboxError(
            f"the nets have different depths: recovered {recovered.describe()}, "
            f"truth {truth.describe()}"
        )
    rng = np.random.default_rng(seed)
    probe = np.concatenate(list(sample_inputs(truth.input_dim, n_samples, rng).values()))
    dead_mask = _dead_neurons(truth, probe)
    invisible_mask = [np.all(w == 0, axis=0) for w in truth.weights[1:]]

    d_in = truth.input_dim
    perm = np.arange(d_in, dtype=np.int64)
    scale = np.ones(d_in)
    extras = np.zeros(0, dtype=np.int64)
    usable = np.ones(d_in, dtype=bool)  # previous-layer columns to compare rows on
    perms: list[IntArray] = []
    scales: list[Array] = []
    extra_list: list[IntArray] = []
    weights: list[Array] = []
    biases: list[Array | None] = []
    notes: dict[str, list[NeuronNote]] = {"dead": [], "invisible": [], "ut": [], "ur": []}
    last = len(truth.weights) - 1
    for i, (tw, tb, rw, rb) in enumerate(
        zip(truth.weights, truth.biases, recovered.weights, recovered.biases, strict=True)
    ):
        full = _to_truth_columns(rw, perm, scale, extras)
        if i == last:
            weights.append(full)
            biases.append(None if rb is None else rb.copy())
            break
        t_sig, r_sig = tw[:, usable], full[:, : perm.size][:, usable]
        if tb is not None:
            t_sig = np.column_stack([t_sig, tb])
            r_sig = np.column_stack([r_sig, np.zeros(rw.shape[0]) if rb is None else rb])
        cos = _unit_rows(t_sig) @ _unit_rows(r_sig).T
        match = _match(cos, min_cosine)
        matched = match >= 0
        s = np.full(tw.shape[0], np.nan)
        rs = match[matched]
        s[matched] = np.einsum("ij,ij->i", r_sig[rs], t_sig[matched]) / np.einsum(
            "ij,ij->i", t_sig[matched], t_sig[matched]
        )
        extra = np.setdiff1d(np.arange(rw.shape[0]), rs).astype(np.int64)
        layer_w = np.zeros((tw.shape[0] + extra.size, full.shape[1]))
        layer_w[np.flatnonzero(matched)] = full[rs] / s[matched, None]
        layer_w[tw.shape[0] :] = full[extra]
        layer_b = None
        if rb is not None:
            layer_b = np.zeros(tw.shape[0] + extra.size)
            layer_b[np.flatnonzero(matched)] = rb[rs] / s[matched]
            layer_b[tw.shape[0] :] = rb[extra]
        weights.append(layer_w)
        biases.append(layer_b)

        for j in np.flatnonzero(dead_mask[i]):
            why = f"never active on {probe.shape[0]} Gaussian and uniform inputs"
            notes["dead"].append(NeuronNote(i, int(j), why))
        for j in np.flatnonzero(invisible_mask[i] & ~dead_mask[i]):
            notes["invisible"].append(NeuronNote(i, int(j), "all outgoing weights are zero"))
        for j in np.flatnonzero(~matched & ~dead_mask[i] & ~invisible_mask[i]):
            best = float(np.max(cos[j])) if cos.shape[1] else math.nan
            notes["ut"].append(
                NeuronNote(
                    i, int(j), f"no recovered neuron at cosine >= {min_cosine} (best {best:.3g})"
                )
            )
        for r in extra:
            k = int(np.argmin(cos[:, r])) if cos.shape[0] else -1
            if k >= 0 and cos[k, r] <= -min_cosine:
                why = f"matches truth neuron {k} with a negative scale (wrong sign)"
            else:
                best = float(np.max(cos[:, r])) if cos.shape[0] else math.nan
                why = f"no truth neuron at cosine >= {min_cosine} (best {best:.3g})"
            notes["ur"].append(NeuronNote(i, int(r), why))

        perms.append(match)
        scales.append(s)
        extra_list.append(extra)
        perm, scale, extras = match, np.where(matched, s, 0.0), extra
        usable = matched & ~dead_mask[i]

    aligned = ReLUNet(weights, biases, output_relu=recovered.output_relu)
    return Alignment(
        permutations=tuple(perms),
        scales=tuple(scales),
        extras=tuple(extra_list),
        aligned=aligned,
        dead=tuple(notes["dead"]),
        invisible=tuple(notes["invisible"]),
        unmatched_truth=tuple(notes["ut"]),
        unmatched_recovered=tuple(notes["ur"]),
        dead_mask=tuple(dead_mask),
        invisible_mask=tuple(invisible_mask),
    )
