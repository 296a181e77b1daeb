"""Layers <-> ONNX: export in float64, import a chain of Gemm | MatMul+Add, Relu.

Plain arrays in and out (:class:`OnnxLayers`); :class:`glassbox.mlp.ReLUNet` builds itself
from them (``ReLUNet.from_onnx``, ``net.to_onnx``), so this module never imports it.
Needs the ``onnx`` extra (``pip install 'glassbox[onnx]'``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from glassbox.errors import GlassboxError
from glassbox.io import atomic_path

OPSET = 17
# IR version 8 is what onnxruntime 1.14+ reads; newer onnx packages default to a higher one.
IR_VERSION = 8
INPUT_NAME = "input"
OUTPUT_NAME = "output"
SUPPORTED_OPS = ("Gemm", "MatMul", "Add", "Relu")


class OnnxLayers(NamedTuple):
    """A chain of affine layers with ReLU between them, as read from or written to ONNX."""

    weights: Sequence[np.ndarray]
    biases: Sequence[np.ndarray | None]
    output_relu: bool


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise GlassboxError(
            "ONNX support needs the onnx extra: pip install 'glassbox[onnx]'"
        ) from None
    return onnx


def write_onnx(net: OnnxLayers, path: str | os.PathLike[str]) -> None:
    """Write ``net`` as a float64 ONNX graph: one Gemm (transB=1) per layer, Relu between."""
    onnx = _onnx()
    from onnx import TensorProto, helper, numpy_helper

    nodes = []
    inits = []
    current = INPUT_NAME
    for i, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(w), f"layers.{i}.weight"))
        gemm_in = [current, f"layers.{i}.weight"]
        if b is not None:
            inits.append(numpy_helper.from_array(np.ascontiguousarray(b), f"layers.{i}.bias"))
            gemm_in.append(f"layers.{i}.bias")
        last = i == len(net.weights) - 1
        relu = not last or net.output_relu
        z = OUTPUT_NAME if last and not relu else f"z{i}"
        nodes.append(helper.make_node("Gemm", gemm_in, [z], name=f"gemm{i}", transB=1))
        if relu:
            a = OUTPUT_NAME if last else f"a{i}"
            nodes.append(helper.make_node("Relu", [z], [a], name=f"relu{i}"))
            current = a
        else:
            current = z
    graph = helper.make_graph(
        nodes,
        "glassbox_relunet",
        [
            helper.make_tensor_value_info(
                INPUT_NAME, TensorProto.DOUBLE, ["batch", net.weights[0].shape[1]]
            )
        ],
        [
            helper.make_tensor_value_info(
                OUTPUT_NAME, TensorProto.DOUBLE, ["batch", net.weights[-1].shape[0]]
            )
        ],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="glassbox"
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    with atomic_path(path) as tmp:
        onnx.save_model(model, str(tmp))


def _attr(node: Any, name: str, default: float | int) -> float | int:
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            value: float | int = helper.get_attribute_value(a)
            return value
    return default


def read_onnx(path: str | os.PathLike[str], *, allow_float32: bool = False) -> OnnxLayers:
    """Read an ONNX chain of Gemm | MatMul(+Add), Relu into its layers; other ops are refused."""
    onnx = _onnx()
    from onnx import TensorProto, numpy_helper

    p = Path(path)
    if not p.is_file():
        raise GlassboxError(f"{p}: no such file")
    try:
        model = onnx.load_model(str(p))
    except Exception as exc:  # the protobuf decoder raises several unrelated types
        raise GlassboxError(f"{p}: not a readable ONNX model ({type(exc).__name__})") from None
    graph = model.graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    inputs = [v for v in graph.input if v.name not in inits]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise GlassboxError(
            f"{p}: expected one input and one output, got {len(inputs)} and {len(graph.output)}"
        )
    elem = inputs[0].type.tensor_type.elem_type
    allowed = {TensorProto.DOUBLE} | ({TensorProto.FLOAT} if allow_float32 else set())
    if elem not in allowed:
        kind = TensorProto.DataType.Name(elem).lower()
        hint = " (pass allow_float32=True / --allow-float32 to read it)" if kind == "float" else ""
        raise GlassboxError(f"{p}: input is {kind}, expected double (float64){hint}")

    def weight(name: str) -> np.ndarray:
        if name not in inits:
            raise GlassboxError(f"{p}: {name!r} is not a constant initializer")
        t = inits[name]
        if t.dtype != np.float64 and not (allow_float32 and t.dtype == np.float32):
            raise GlassboxError(f"{p}: initializer {name!r} is {t.dtype}, expected float64")
        return t.astype(np.float64)

    weights: list[np.ndarray] = []
    biases: list[np.ndarray | None] = []
    relu_after: list[bool] = []
    current = inputs[0].name
    for node in graph.node:
        where = f"{p}: node {node.name or node.op_type!r}"
        if node.op_type not in SUPPORTED_OPS:
            raise GlassboxError(
                f"{where}: unsupported op {node.op_type}; glassbox reads only {', '.join(SUPPORTED_OPS)}"
            )
        data = [x for x in node.input if x not in inits]
        if data != [current] or len(node.output) != 1:
            raise GlassboxError(f"{where}: the graph is not a single chain of layers")
        open_layer = bool(weights) and not relu_after[-1]
        if node.op_type == "Gemm":
            if node.input[0] != current or _attr(node, "transA", 0):
                raise GlassboxError(f"{where}: Gemm must take the activations as A, untransposed")
            if open_layer:
                raise GlassboxError(f"{where}: two linear layers without a Relu between them")
            w = weight(node.input[1]) * float(_attr(node, "alpha", 1.0))
            weights.append(w if _attr(node, "transB", 0) else w.T)
            has_c = len(node.input) > 2 and node.input[2] != ""
            biases.append(
                weight(node.input[2]) * float(_attr(node, "beta", 1.0)) if has_c else None
            )
            relu_after.append(False)
        elif node.op_type == "MatMul":
            if node.input[0] != current:
                raise GlassboxError(f"{where}: MatMul must take the activations first")
            if open_layer:
                raise GlassboxError(f"{where}: two linear layers without a Relu between them")
            weights.append(weight(node.input[1]).T)
            biases.append(None)
            relu_after.append(False)
        elif node.op_type == "Add":
            if not open_layer or biases[-1] is not None:
                raise GlassboxError(f"{where}: Add must follow a MatMul as its bias")
            (const,) = [x for x in node.input if x in inits]
            biases[-1] = weight(const)
        else:  # Relu
            if not open_layer:
                raise GlassboxError(f"{where}: Relu must follow a linear layer")
            relu_after[-1] = True
        current = node.output[0]
    if not weights:
        raise GlassboxError(f"{p}: the graph has no linear layer")
    if current != graph.output[0].name:
        raise GlassboxError(f"{p}: the graph output is not the end of the layer chain")
    if not all(relu_after[:-1]):
        raise GlassboxError(f"{p}: a hidden layer has no Relu after it")
    bias_vectors = [None if b is None else np.reshape(b, -1) for b in biases]
    return OnnxLayers(weights, bias_vectors, relu_after[-1])
