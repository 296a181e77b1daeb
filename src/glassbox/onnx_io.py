"""Layers <-> ONNX: export in float64, import a chain of Gemm | MatMul+Add, Relu.

A classifier's chain may end in a Softmax or Sigmoid (its head); a graph with several
outputs is read along the chain that computes the chosen one (other branches, such as a
label's ArgMax, are ignored; Cast, Identity, ZipMap and a Reshape to (batch, width) pass
values through).

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
HEAD_OPS = {"Softmax": "softmax", "Sigmoid": "sigmoid"}
PASS_OPS = ("Cast", "Identity", "ZipMap", "Reshape")


class OnnxLayers(NamedTuple):
    """A chain of affine layers with ReLU between them, as read from or written to ONNX."""

    weights: Sequence[np.ndarray]
    biases: Sequence[np.ndarray | None]
    output_relu: bool
    head: str = "identity"


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
    if net.head != "identity":
        (op,) = [k for k, v in HEAD_OPS.items() if v == net.head]
        nodes[-1].output[0] = "logits"
        head = helper.make_node(op, ["logits"], [OUTPUT_NAME], name="head")
        if op == "Softmax":
            head.attribute.append(helper.make_attribute("axis", -1))
        nodes.append(head)
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


def read_onnx(
    path: str | os.PathLike[str], *, allow_float32: bool = False, output: str | None = None
) -> OnnxLayers:
    """Read an ONNX chain of Gemm | MatMul(+Add), Relu (and a head) into its layers.

    ``output`` names the graph output to read (needed when the graph has several); the
    nodes that output does not depend on are ignored, any other op is refused.
    """
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
    names = [o.name for o in graph.output]
    if len(inputs) != 1:
        raise GlassboxError(f"{p}: expected one input, got {len(inputs)}")
    if output is None and len(names) != 1:
        raise GlassboxError(
            f"{p}: the graph has {len(names)} outputs ({', '.join(names)}); choose one (--output NAME)"
        )
    target = names[0] if output is None else output
    if target not in names:
        raise GlassboxError(f"{p}: no output {target!r}; the graph's outputs: {', '.join(names)}")
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
    head = "identity"
    current = inputs[0].name
    for node in _ancestors(graph.node, target):
        where = f"{p}: node {node.name or node.op_type!r}"
        known = (*SUPPORTED_OPS, *HEAD_OPS, *PASS_OPS)
        if node.op_type not in known:
            raise GlassboxError(
                f"{where}: unsupported op {node.op_type}; glassbox reads only {', '.join(known)}"
            )
        data = [x for x in node.input if x not in inits]
        if data != [current] or len(node.output) != 1:
            raise GlassboxError(f"{where}: the graph is not a single chain of layers")
        if head != "identity" and node.op_type not in PASS_OPS:
            raise GlassboxError(f"{where}: only the output may follow the {head}")
        open_layer = bool(weights) and not relu_after[-1]
        if node.op_type == "Reshape":
            shape = inits.get(node.input[1]) if len(node.input) > 1 else None
            width = weights[-1].shape[0] if weights else None
            if shape is None or shape.size != 2 or int(shape[-1]) not in (width, -1):
                raise GlassboxError(f"{where}: only a Reshape to (batch, width) is read")
        elif node.op_type in PASS_OPS:
            pass  # a cast between float types, a copy, or a table of the same values
        elif node.op_type in HEAD_OPS:
            if not open_layer:
                raise GlassboxError(f"{where}: {node.op_type} must follow a linear layer")
            if node.op_type == "Softmax" and _attr(node, "axis", -1) not in (-1, 1):
                raise GlassboxError(f"{where}: Softmax must be over the last axis")
            head = HEAD_OPS[node.op_type]
        elif node.op_type == "Gemm":
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
    if current != target:
        raise GlassboxError(f"{p}: the graph output is not the end of the layer chain")
    if not all(relu_after[:-1]):
        raise GlassboxError(f"{p}: a hidden layer has no Relu after it")
    bias_vectors = [None if b is None else np.reshape(b, -1) for b in biases]
    return OnnxLayers(weights, bias_vectors, relu_after[-1], head)


def _ancestors(nodes: Sequence[Any], output: str) -> list[Any]:
    """The nodes ``output`` depends on, in graph order."""
    made_by = {o: n for n in nodes for o in n.output}
    need, todo = set(), [output]
    while todo:
        node = made_by.get(todo.pop())
        if node is not None and id(node) not in need:
            need.add(id(node))
            todo.extend(node.input)
    return [n for n in nodes if id(n) in need]
