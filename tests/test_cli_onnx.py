"""``glassbox extract`` on ONNX files as exporters write them: fixed batch sizes, float32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli
from glassbox.io import read_json
from glassbox.mlp import ReLUNet

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def fixed_batch_onnx(path: Path, net: ReLUNet, batch: int, float32: bool = False) -> Path:
    """The net as ONNX whose input and output have a fixed batch size (torch.onnx.export's default)."""
    from onnx import TensorProto, numpy_helper

    net.to_onnx(path)
    model = onnx.load(str(path))
    for value in (*model.graph.input, *model.graph.output):
        dim = value.type.tensor_type.shape.dim[0]
        dim.Clear()
        dim.dim_value = batch
        if float32:
            value.type.tensor_type.elem_type = TensorProto.FLOAT
    if float32:
        for i, init in enumerate(model.graph.initializer):
            arr = numpy_helper.to_array(init).astype(np.float32)
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(arr, init.name))
    onnx.save_model(model, str(path))
    return path


@pytest.mark.parametrize("batch", [1, 4])
def test_a_fixed_batch_onnx_file_is_queried_in_its_batch_size(tmp_path: Path, batch: int) -> None:
    from glassbox.oracle.onnx_model import OnnxOracle, fixed_batch_size

    net = ReLUNet.random("6-5-2", seed=3)
    path = fixed_batch_onnx(tmp_path / "m.onnx", net, batch)
    oracle = OnnxOracle(path)
    assert fixed_batch_size(oracle) == batch
    x = np.random.default_rng(0).normal(size=(7, 6))
    np.testing.assert_allclose(oracle.query(x), net.forward(x), rtol=1e-14, atol=1e-14)
    assert oracle.queries == 7  # padding rows are not counted

    code, stdout, err = run_cli("extract", str(path), "--out", str(tmp_path / "x"))
    assert code == 0, err
    assert "Traceback" not in err
    said = "queried row by row" if batch == 1 else f"queried in batches of {batch}"
    assert f"fixed batch size {batch}: {said}" in err
    assert read_json(tmp_path / "x" / "extraction.json")["verification"]["delta"] == 0


def test_a_float32_onnx_file_is_attacked_and_named_float32(tmp_path: Path) -> None:
    net = ReLUNet.random("6-5-1", seed=1)
    path = fixed_batch_onnx(tmp_path / "m.onnx", net, 1, float32=True)
    code, stdout, err = run_cli("extract", str(path), "--out", str(tmp_path / "x"))
    assert code in (0, 1), err  # the extraction's outcome is the answer, not a refusal
    assert "Traceback" not in err
    assert "a float32 model" in err
    assert "answers: float32 answers (relative precision 2^-24.0)" in stdout
    record = read_json(tmp_path / "x" / "extraction.json")
    assert record["answers"]["kind"] == "float32"
    if record["success"]:
        # Never a success whose verification is worse than what the attack's check allowed.
        tolerance = record["check"]["tolerance_log2"]
        assert record["verification"]["epsilon_log2"] <= tolerance + 2 + 5


def test_a_smooth_onnx_model_is_attacked_unverified_and_stopped_fast(tmp_path: Path) -> None:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1, w2 = rng.normal(size=(6, 8)).astype(np.float32), rng.normal(size=(2, 6)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["x", "w1"], ["z"], transB=1),
            helper.make_node("Tanh", ["z"], ["h"]),
            helper.make_node("Gemm", ["h", "w2"], ["y"], transB=1),
        ],
        "tanh",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")],
    )
    path = tmp_path / "tanh.onnx"
    onnx.save_model(helper.make_model(graph), str(path))
    code, stdout, err = run_cli("extract", str(path), "--out", str(tmp_path / "x"))
    assert code == 1, err
    assert "not verified" in err and "unsupported op Tanh" in err
    assert "not piecewise linear" in stdout
    record = read_json(tmp_path / "x" / "extraction.json")
    assert record["queries"] <= 512 and "verification" not in record
