"""An oracle over an ONNX model run by onnxruntime (the ``onnx`` extra): models from elsewhere."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from glassbox.errors import GlassboxError
from glassbox.oracle.core import PROBE, Array, Oracle


class OnnxOracle(Oracle):
    """An oracle over an ONNX model run by onnxruntime (needs the ``onnx`` extra).

    The model must take one float64 input of shape ``(batch, d)``; a float32 model is
    refused unless ``allow_float32=True`` (its answers then carry float32 rounding).
    ``input_dim`` is read from the graph, or must be given when the graph leaves it open;
    ``output_dim`` is read from the graph, or probed with one counted query.
    A graph with a fixed batch size B (torch's ``onnx.export`` fixes it to its example's
    batch unless told otherwise) is queried in batches of B, the last one padded with zero
    rows that the ledger does not count; :func:`fixed_batch_size` says so.
    A graph with several outputs (a classifier's label and probabilities) is asked for
    ``output``; without it, for the one real-valued ``(batch, k)`` output (a ZipMap's table
    of class -> probability counts as one), and refused when none or several fit.
    :func:`chosen_output` says which was taken.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        budget: int | None = None,
        *,
        allow_float32: bool = False,
        input_dim: int | None = None,
        output: str | None = None,
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise GlassboxError(
                "the ONNX oracle needs the onnx extra: pip install 'glassbox[onnx]'"
            ) from None
        p = Path(path)
        if not p.is_file():
            raise GlassboxError(f"{p}: no such file")
        try:
            session = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped failures
            raise GlassboxError(f"{p}: onnxruntime cannot load it ({type(exc).__name__})") from None
        inputs, outputs = session.get_inputs(), session.get_outputs()
        if len(inputs) != 1:
            raise GlassboxError(
                f"{p}: the ONNX oracle needs one input, the graph has {len(inputs)}"
            )
        kind = inputs[0].type
        if kind == "tensor(float)" and not allow_float32:
            raise GlassboxError(
                f"{p}: input is float32, not float64; pass allow_float32=True "
                "(CLI: --allow-float32) to query it in float32 anyway"
            )
        if kind not in ("tensor(double)", "tensor(float)"):
            raise GlassboxError(f"{p}: input is {kind}; the ONNX oracle needs tensor(double)")
        shape = inputs[0].shape
        graph_dim = shape[-1] if len(shape) == 2 and isinstance(shape[-1], int) else None
        if input_dim is None:
            if graph_dim is None:
                raise GlassboxError(
                    f"{p}: the graph does not fix its input width {shape}; pass input_dim"
                )
            input_dim = graph_dim
        elif graph_dim is not None and graph_dim != input_dim:
            raise GlassboxError(
                f"{p}: input_dim {input_dim} disagrees with the graph's {graph_dim}"
            )
        chosen = choose_output(p, [(o.name, o.type, o.shape) for o in outputs], output)
        out_shape = chosen.shape
        out_dim = out_shape[-1] if len(out_shape) == 2 and isinstance(out_shape[-1], int) else None
        super().__init__(input_dim, out_dim or 1, budget)
        self.__run = session.run
        self.__input_name = inputs[0].name
        self.__output = [chosen.name]
        self._table = chosen.type.startswith("seq(map(")
        self._output = (chosen.name, "")
        if len(outputs) > 1:
            why = "" if output is not None else ": the one real-valued (batch, k) output"
            self._output = (chosen.name, f" (output {chosen.name}{why})")
        self.__dtype = np.float64 if kind == "tensor(double)" else np.float32
        self._float32 = kind == "tensor(float)"
        batch = shape[0] if len(shape) == 2 else None
        self._fixed_batch: int | None = batch if isinstance(batch, int) and batch > 0 else None
        if out_dim is None:
            with self.phase(PROBE):
                self._ledger.charge(1)
            self._output_dim = int(self.__raw(np.zeros((1, input_dim))).size)

    def __raw(self, X: Array) -> Array:
        b = self._fixed_batch
        if b is None or X.shape[0] == b:
            (y,) = self.__run(self.__output, {self.__input_name: X.astype(self.__dtype)})
            if self._table:  # ZipMap: one {class: probability} per row, in class order
                return np.array([[row[c] for c in sorted(row)] for row in y], dtype=np.float64)
            return np.asarray(y, dtype=np.float64)
        k = X.shape[0]
        padded = np.zeros((-(-k // b) * b, X.shape[1]), dtype=self.__dtype)
        padded[:k] = X
        parts = [self.__raw(padded[i : i + b]).reshape(b, -1) for i in range(0, len(padded), b)]
        return np.concatenate(parts)[:k]

    def _answer(self, X: Array) -> Array:
        return self.__raw(X).reshape(X.shape[0], self.output_dim)


class _Output(NamedTuple):
    name: str
    type: str
    shape: list[Any]


REAL = ("tensor(double)", "tensor(float)")


def _real_table(kind: str) -> bool:
    """A ZipMap's sequence of {class: probability} maps with real values."""
    return kind.startswith("seq(map(") and any(r in kind for r in REAL)


def choose_output(path: Path, outputs: list[tuple[str, str, Any]], name: str | None) -> _Output:
    """The output to attack: ``name``, the only one, or the one real-valued (batch, k) output."""
    outs = [_Output(n, t, list(s or [])) for n, t, s in outputs]
    listing = ", ".join(f"{o.name} ({o.type})" for o in outs)
    if name is not None:
        found = [o for o in outs if o.name == name]
        if not found:
            raise GlassboxError(f"{path}: no output {name!r}; the graph's outputs: {listing}")
        o = found[0]
        if o.type not in REAL and not _real_table(o.type):
            raise GlassboxError(f"{path}: output {name!r} is {o.type}, not real-valued scores")
        return o
    if len(outs) == 1:
        return outs[0]
    fits = [o for o in outs if (o.type in REAL and len(o.shape) == 2) or _real_table(o.type)]
    if len(fits) != 1:
        which = "none" if not fits else f"{len(fits)}: " + ", ".join(o.name for o in fits)
        raise GlassboxError(
            f"{path}: the graph has {len(outs)} outputs, {listing}; of the real-valued "
            f"(batch, k) ones, {which}; choose one with --output NAME"
        )
    return fits[0]


def chosen_output(oracle: Oracle) -> tuple[str, str] | None:
    """The graph output an ONNX oracle answers and a note for its description (None: not ONNX).

    The note is empty for a graph with one output.
    """
    return oracle._output if isinstance(oracle, OnnxOracle) else None


def computes_in_float32(oracle: Oracle) -> bool:
    """Whether an ONNX oracle's graph takes float32 input (it then computes in float32)."""
    return isinstance(oracle, OnnxOracle) and oracle._float32


def fixed_batch_size(oracle: Oracle) -> int | None:
    """The fixed batch size an ONNX oracle's graph demands (None: any size, or not ONNX)."""
    return oracle._fixed_batch if isinstance(oracle, OnnxOracle) else None
