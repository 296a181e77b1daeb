import numpy as np
import pytest

from glassbox.errors import GlassboxError
from glassbox.mlp import ReLUNet

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def _save(path, nodes, inits, in_type=TensorProto.DOUBLE, d_in=3, d_out=2):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", in_type, ["n", d_in])],
        [helper.make_tensor_value_info("y", in_type, ["n", d_out])],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save_model(model, str(path))
    return path


@pytest.mark.parametrize("spec", ["6-5-4-3", "6-5-1:nohiddenbias,relu", "4-3-2:nobias"])
def test_export_import_round_trip_is_bit_exact(tmp_path, spec):
    net = ReLUNet.random(spec, seed=4)
    net.to_onnx(tmp_path / "n.onnx")
    back = ReLUNet.from_onnx(tmp_path / "n.onnx")
    assert back.dims == net.dims and back.output_relu == net.output_relu
    for a, b in zip(net.weights, back.weights, strict=True):
        assert a.tobytes() == b.tobytes()
    for a, b in zip(net.biases, back.biases, strict=True):
        assert (a is None and b is None) or a.tobytes() == b.tobytes()


def test_onnxruntime_evaluates_the_export_within_1e_15_relative(tmp_path):
    net = ReLUNet.random("12-16-8-3:relu", seed=7)
    net.to_onnx(tmp_path / "n.onnx")
    session = ort.InferenceSession(str(tmp_path / "n.onnx"), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).normal(size=(500, 12))
    (y,) = session.run(None, {"input": x})
    assert y.dtype == np.float64
    f = net.forward(x)
    np.testing.assert_allclose(y, f, rtol=1e-15, atol=1e-15 * np.abs(f).max())


def test_matmul_add_chain_and_gemm_attributes_are_read(tmp_path):
    rng = np.random.default_rng(1)
    w0, b0 = rng.normal(size=(3, 4)), rng.normal(size=4)  # MatMul layout: (d_in, d_out)
    w1, b1 = rng.normal(size=(4, 2)), rng.normal(size=2)  # Gemm with transB=0, alpha, beta
    nodes = [
        helper.make_node("MatMul", ["x", "w0"], ["m0"]),
        helper.make_node("Add", ["b0", "m0"], ["z0"]),
        helper.make_node("Relu", ["z0"], ["a0"]),
        helper.make_node("Gemm", ["a0", "w1", "b1"], ["y"], alpha=0.5, beta=2.0),
    ]
    path = _save(tmp_path / "m.onnx", nodes, {"w0": w0, "b0": b0, "w1": w1, "b1": b1})
    net = ReLUNet.from_onnx(path)
    x = rng.normal(size=(7, 3))
    expected = 0.5 * (np.maximum(x @ w0 + b0, 0) @ w1) + 2.0 * b1
    np.testing.assert_allclose(net.forward(x), expected, rtol=1e-14)
    (y,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_allclose(net.forward(x), y, rtol=1e-14)


def test_other_ops_are_refused_by_name(tmp_path):
    w = np.ones((2, 3))
    nodes = [
        helper.make_node("Gemm", ["x", "w"], ["z"], transB=1),
        helper.make_node("Tanh", ["z"], ["y"]),
    ]
    path = _save(tmp_path / "s.onnx", nodes, {"w": w})
    with pytest.raises(GlassboxError, match="unsupported op Tanh"):
        ReLUNet.from_onnx(path)


def test_float32_graph_needs_explicit_permission(tmp_path):
    w = np.arange(6, dtype=np.float32).reshape(2, 3) / 7
    nodes = [helper.make_node("Gemm", ["x", "w"], ["y"], transB=1)]
    path = _save(tmp_path / "f.onnx", nodes, {"w": w}, in_type=TensorProto.FLOAT)
    with pytest.raises(GlassboxError, match="allow_float32"):
        ReLUNet.from_onnx(path)
    net = ReLUNet.from_onnx(path, allow_float32=True)
    assert net.weights[0].tobytes() == w.astype(np.float64).tobytes()  # widening is exact


def test_unreadable_and_missing_relu(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00garbage")
    with pytest.raises(GlassboxError, match="not a readable ONNX"):
        ReLUNet.from_onnx(junk)
    nodes = [
        helper.make_node("Gemm", ["x", "w0"], ["z"], transB=1),
        helper.make_node("Gemm", ["z", "w1"], ["y"], transB=1),
    ]
    path = _save(tmp_path / "lin.onnx", nodes, {"w0": np.ones((3, 3)), "w1": np.ones((2, 3))})
    with pytest.raises(GlassboxError, match="without a Relu"):
        ReLUNet.from_onnx(path)


def test_from_torch_matches_torch_and_refuses_other_modules():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    seq = torch.nn.Sequential(
        torch.nn.Linear(5, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3, bias=False), torch.nn.ReLU()
    )
    net = ReLUNet.from_torch(seq)
    assert net.dims == (5, 4, 3) and net.output_relu and net.biases[1] is None
    assert net.weights[0].tobytes() == seq[0].weight.detach().double().numpy().tobytes()
    x = np.random.default_rng(0).normal(size=(9, 5))
    np.testing.assert_allclose(
        net.forward(x), seq.double()(torch.from_numpy(x)).detach().numpy(), rtol=1e-14
    )
    with pytest.raises(GlassboxError, match="unsupported Tanh"):
        ReLUNet.from_torch(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Tanh()))
    with pytest.raises(GlassboxError, match="without a ReLU"):
        ReLUNet.from_torch(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)))
