"""ReLUNet: the float64 fully connected ReLU network that both halves of glassbox share.

Layer ``l`` maps ``d_l -> d_{l+1}`` as ``z = a @ W_l.T + b_l``; every layer but the last
is followed by a ReLU, the last one only when ``output_relu`` is set (the toy model's
``y' = ReLU(W2 h + b)``). A layer without a bias stores ``None``: that is part of the
architecture, not a bias of zeros. A classifier's ``head`` (``"softmax"`` over the outputs,
or ``"sigmoid"`` on each) turns the last layer's logits into the probabilities it answers;
the default ``"identity"`` answers the logits themselves.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from glassbox.errors import GlassboxError
from glassbox.io import read_safetensors, write_safetensors

FORMAT = "glassbox.ReLUNet"
FORMAT_VERSION = "1"
HEADS = ("identity", "softmax", "sigmoid")

Array = NDArray[np.float64]


def _as_matrix(value: ArrayLike, what: str) -> Array:
    arr = np.array(value, dtype=np.float64, copy=True)
    if arr.ndim != 2:
        raise GlassboxError(f"{what}: expected a 2-D matrix, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise GlassboxError(f"{what}: contains NaN or infinite values")
    arr.setflags(write=False)
    return arr


def _as_vector(value: ArrayLike, length: int, what: str) -> Array:
    arr = np.array(value, dtype=np.float64, copy=True)
    if arr.shape != (length,):
        raise GlassboxError(f"{what}: expected shape ({length},), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise GlassboxError(f"{what}: contains NaN or infinite values")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class ReLUNet:
    """A fully connected ReLU network in float64 (weights are read-only arrays)."""

    weights: tuple[Array, ...]
    biases: tuple[Array | None, ...]
    output_relu: bool = False
    head: str = "identity"

    def __init__(
        self,
        weights: Sequence[ArrayLike],
        biases: Sequence[ArrayLike | None] | None = None,
        output_relu: bool = False,
        head: str = "identity",
    ) -> None:
        if len(weights) == 0:
            raise GlassboxError("a ReLUNet needs at least one layer")
        ws = tuple(_as_matrix(w, f"layer {i} weight") for i, w in enumerate(weights))
        for i in range(1, len(ws)):
            if ws[i].shape[1] != ws[i - 1].shape[0]:
                raise GlassboxError(
                    f"layer {i} weight has {ws[i].shape[1]} inputs but layer {i - 1} "
                    f"has {ws[i - 1].shape[0]} outputs"
                )
        if biases is None:
            biases = [None] * len(ws)
        if len(biases) != len(ws):
            raise GlassboxError(f"got {len(ws)} weight matrices but {len(biases)} biases")
        bs = tuple(
            None if b is None else _as_vector(b, w.shape[0], f"layer {i} bias")
            for i, (w, b) in enumerate(zip(ws, biases, strict=True))
        )
        object.__setattr__(self, "weights", ws)
        object.__setattr__(self, "biases", bs)
        if head not in HEADS:
            raise GlassboxError(f"unknown output head {head!r}; known: {', '.join(HEADS)}")
        if head != "identity" and output_relu:
            raise GlassboxError(f"a {head} head takes the logits: no output ReLU before it")
        object.__setattr__(self, "output_relu", bool(output_relu))
        object.__setattr__(self, "head", head)

    # ----------------------------------------------------------------- shape
    @property
    def dims(self) -> tuple[int, ...]:
        """Widths ``(d_in, d_1, ..., d_out)``."""
        return (self.weights[0].shape[1], *(w.shape[0] for w in self.weights))

    @property
    def input_dim(self) -> int:
        """Number of inputs."""
        return self.dims[0]

    @property
    def output_dim(self) -> int:
        """Number of outputs."""
        return self.dims[-1]

    @property
    def n_hidden_layers(self) -> int:
        """Number of ReLU hidden layers."""
        return len(self.weights) - 1

    @property
    def n_params(self) -> int:
        """Number of weights and biases (absent biases count zero)."""
        return sum(w.size for w in self.weights) + sum(b.size for b in self.biases if b is not None)

    def describe(self) -> str:
        """A one-line architecture string like ``784-128-1 (biases: yes,yes; output ReLU: no)``."""
        bias = ",".join("yes" if b is not None else "no" for b in self.biases)
        relu = "yes" if self.output_relu else "no"
        head = "" if self.head == "identity" else f"; then {self.head}"
        return f"{'-'.join(map(str, self.dims))} (biases: {bias}; output ReLU: {relu}{head})"

    # --------------------------------------------------------------- compute
    def _check_input(self, X: ArrayLike) -> Array:
        x = np.asarray(X, dtype=np.float64)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.input_dim:
            raise GlassboxError(
                f"input has shape {np.shape(X)}; expected (k, {self.input_dim}) or ({self.input_dim},)"
            )
        return x

    def preactivations(self, X: ArrayLike) -> list[Array]:
        """Pre-activations of every layer (hidden layers, then the output before any ReLU)."""
        a = self._check_input(X)
        out: list[Array] = []
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            z = a @ w.T
            if b is not None:
                z = z + b
            out.append(z)
            if i < len(self.weights) - 1:
                a = np.maximum(z, 0.0)
        return out

    def logits(self, X: ArrayLike) -> Array:
        """The last layer's outputs before the head (after the output ReLU if there is one)."""
        z = self.preactivations(X)[-1]
        return np.maximum(z, 0.0) if self.output_relu else z

    def forward(self, X: ArrayLike) -> Array:
        """Outputs for a batch ``X`` of shape ``(k, d_in)`` (a single row is promoted to a batch)."""
        return apply_head(self.logits(X), self.head)

    def without_head(self) -> ReLUNet:
        """The same net answering its logits (the head dropped)."""
        return ReLUNet(self.weights, self.biases, self.output_relu)

    __call__ = forward

    def activation_pattern(self, X: ArrayLike) -> Array:
        """Boolean matrix ``(k, n_hidden)``: which hidden neurons are active for each input."""
        pre = self.preactivations(X)[:-1]
        if not pre:
            return np.zeros((np.atleast_2d(X).shape[0], 0), dtype=bool)
        return np.concatenate([z > 0 for z in pre], axis=1)

    # ------------------------------------------------------------ build/save
    @classmethod
    def random(cls, spec: str, seed: int = 0) -> ReLUNet:
        """A seeded random net from a spec such as ``784-128-1`` or ``100-40-100:nohiddenbias,relu``.

        Weights are N(0, 2 / fan_in) (He initialisation, so activations keep their scale
        with depth) and biases N(0, 1). Options after ``:`` (comma separated):
        ``nobias`` (no layer has a bias), ``nohiddenbias`` (only the output layer has one),
        ``relu`` (a ReLU on the output).
        """
        dims, options = parse_spec(spec)
        rng = np.random.default_rng(seed)
        weights: list[Array] = []
        biases: list[Array | None] = []
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
            weights.append(rng.normal(0.0, np.sqrt(2.0 / d_in), size=(d_out, d_in)))
            last = i == len(dims) - 2
            has_bias = "nobias" not in options and (last or "nohiddenbias" not in options)
            biases.append(rng.normal(0.0, 1.0, size=d_out) if has_bias else None)
        return cls(weights, biases, output_relu="relu" in options)

    @classmethod
    def from_torch(cls, module: object) -> ReLUNet:
        """A net from a ``torch.nn.Sequential`` of ``Linear`` and ``ReLU`` (weights copied to float64).

        A ReLU must follow every Linear but the last; a ReLU after the last one becomes the
        output ReLU. Any other module is refused, naming it.
        """
        import torch

        layers = list(module) if isinstance(module, torch.nn.Sequential) else [module]
        weights: list[Array] = []
        biases: list[Array | None] = []
        relu_after: list[bool] = []
        for i, layer in enumerate(layers):
            if isinstance(layer, torch.nn.Linear):
                if weights and not relu_after[-1]:
                    raise GlassboxError(
                        f"module {i}: two Linear layers without a ReLU between them"
                    )
                weights.append(layer.weight.detach().cpu().double().numpy())
                b = layer.bias
                biases.append(None if b is None else b.detach().cpu().double().numpy())
                relu_after.append(False)
            elif isinstance(layer, torch.nn.ReLU):
                if not weights or relu_after[-1]:
                    raise GlassboxError(f"module {i}: a ReLU must follow a Linear layer")
                relu_after[-1] = True
            else:
                raise GlassboxError(
                    f"module {i}: unsupported {type(layer).__name__}; only Linear and ReLU are read"
                )
        if not weights:
            raise GlassboxError("the torch module has no Linear layer")
        return cls(weights, biases, output_relu=relu_after[-1])

    @classmethod
    def from_onnx(
        cls, path: str | os.PathLike[str], *, allow_float32: bool = False, output: str | None = None
    ) -> ReLUNet:
        """A net from an ONNX chain of Gemm | MatMul(+Add), Relu, and a head, ending at ``output``.

        See :func:`glassbox.onnx_io.read_onnx`.
        """
        from glassbox.onnx_io import read_onnx

        layers = read_onnx(path, allow_float32=allow_float32, output=output)
        try:
            return cls(layers.weights, layers.biases, layers.output_relu, layers.head)
        except GlassboxError as exc:
            raise GlassboxError(f"{path}: {exc}") from None

    def to_onnx(self, path: str | os.PathLike[str]) -> None:
        """Export as a float64 ONNX graph (Gemm and Relu nodes, opset 17)."""
        from glassbox.onnx_io import OnnxLayers, write_onnx

        write_onnx(OnnxLayers(self.weights, self.biases, self.output_relu, self.head), path)

    def to_tensors(self) -> dict[str, Array]:
        """The weights as a flat name -> array mapping (``layers.i.weight``, ``layers.i.bias``)."""
        tensors: dict[str, Array] = {}
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            tensors[f"layers.{i}.weight"] = np.ascontiguousarray(w)
            if b is not None:
                tensors[f"layers.{i}.bias"] = np.ascontiguousarray(b)
        return tensors

    def save(self, path: str | os.PathLike[str]) -> None:
        """Save as safetensors; the JSON header's metadata records format, layers and output ReLU."""
        metadata = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "dims": json.dumps(list(self.dims)),
            "has_bias": json.dumps([b is not None for b in self.biases]),
            "output_relu": json.dumps(self.output_relu),
        }
        if self.head != "identity":  # files of plain nets stay as they always were
            metadata["head"] = self.head
        write_safetensors(path, self.to_tensors(), metadata)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ReLUNet:
        """Load a net written by :meth:`save`; anything else is a one-line GlassboxError."""
        p = Path(path)
        tensors, metadata = read_safetensors(p)
        if metadata.get("format") != FORMAT:
            raise GlassboxError(f"{p}: not a glassbox net (no '{FORMAT}' format tag in its header)")
        try:
            dims = json.loads(metadata["dims"])
            has_bias = json.loads(metadata["has_bias"])
            output_relu = json.loads(metadata["output_relu"])
        except (KeyError, json.JSONDecodeError) as exc:
            raise GlassboxError(f"{p}: glassbox net header is incomplete ({exc})") from None
        weights: list[Array] = []
        biases: list[Array | None] = []
        for i in range(len(dims) - 1):
            w = tensors.get(f"layers.{i}.weight")
            if w is None:
                raise GlassboxError(f"{p}: missing tensor layers.{i}.weight")
            b = tensors.get(f"layers.{i}.bias")
            for name, t in (("weight", w), ("bias", b)):
                if t is not None and t.dtype != np.float64:
                    raise GlassboxError(f"{p}: layers.{i}.{name} is {t.dtype}, expected float64")
            if (b is not None) != bool(has_bias[i]):
                raise GlassboxError(f"{p}: layer {i} bias presence disagrees with the header")
            weights.append(w)
            biases.append(b)
        net = cls(
            weights, biases, output_relu=bool(output_relu), head=metadata.get("head", "identity")
        )
        if list(net.dims) != list(dims):
            raise GlassboxError(f"{p}: tensor shapes {net.dims} disagree with header dims {dims}")
        return net


def apply_head(z: Array, head: str) -> Array:
    """Logits to what a classifier answers: softmax over each row, sigmoid of each entry, or ``z``."""
    if head == "softmax":
        e = np.exp(z - np.max(z, axis=1, keepdims=True))
        return e / np.sum(e, axis=1, keepdims=True)
    if head == "sigmoid":
        # Either branch's exp has a non-positive argument: no overflow at any logit.
        e = np.exp(-np.abs(z))
        return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return z


_SPEC_RE = re.compile(r"^\d+(-\d+)+$")
SPEC_OPTIONS = ("nobias", "nohiddenbias", "relu")


def parse_spec(spec: str) -> tuple[list[int], set[str]]:
    """Parse ``784-128-1[:opt,...]`` into widths and options; bad specs are a GlassboxError."""
    body, colon, opts = spec.partition(":")
    if colon and not all(o.strip() for o in opts.split(",")):
        raise GlassboxError(
            f"bad net spec {spec!r}: an empty option after ':'; drop the ':' or name options "
            f"from {', '.join(SPEC_OPTIONS)}"
        )
    if not _SPEC_RE.match(body):
        raise GlassboxError(
            f"bad net spec {spec!r}: expected widths joined by '-', e.g. 784-128-1 or 100-40-100:nohiddenbias,relu"
        )
    if max(len(d) for d in body.split("-")) > 18:  # int() refuses 4300 digits with a traceback
        raise GlassboxError(
            f"bad net spec {spec[:40]!r}...: a width of more than 18 digits; choose smaller widths"
        )
    dims = [int(d) for d in body.split("-")]
    if min(dims) < 1:
        raise GlassboxError(f"bad net spec {spec!r}: every width must be at least 1")
    options = {o.strip() for o in opts.split(",") if o.strip()}
    unknown = options - set(SPEC_OPTIONS)
    if unknown:
        raise GlassboxError(
            f"bad net spec {spec!r}: unknown option(s) {', '.join(sorted(unknown))}; known: {', '.join(SPEC_OPTIONS)}"
        )
    return dims, options
