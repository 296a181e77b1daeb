import numpy as np
import pytest

from glassbox.errors import GlassboxError
from glassbox.mlp import ReLUNet
from glassbox.oracle.core import (
    FunctionOracle,
    QueryBudgetExceeded,
    float32_outputs,
    label_only,
    net_oracle,
    noisy,
    round_significant,
    rounded,
)
from glassbox.oracle.onnx_model import OnnxOracle

X = np.random.default_rng(0).normal(size=(64, 4))


def _net(spec="4-6-3"):
    return ReLUNet.random(spec, seed=2)


def test_function_oracle_probes_output_dim_with_one_counted_query():
    oracle = FunctionOracle(lambda x: x @ np.ones((4, 2)), input_dim=4, budget=3)
    assert oracle.output_dim == 2
    assert oracle.queries_by_phase == {"probe": 1}
    oracle.query(X[:2])
    with pytest.raises(QueryBudgetExceeded):
        oracle.query(X[:1])
    with pytest.raises(QueryBudgetExceeded):
        FunctionOracle(lambda x: x, input_dim=4, budget=0)


def test_function_oracle_reads_input_dim_from_a_fitted_estimator():
    class Estimator:
        n_features_in_ = 4

        def predict(self, x):
            return x.sum(axis=1)  # 1-D answers: one output

    oracle = FunctionOracle(Estimator().predict)
    assert (oracle.input_dim, oracle.output_dim) == (4, 1)
    np.testing.assert_array_equal(oracle.query(X[:3]), X[:3].sum(axis=1, keepdims=True))
    with pytest.raises(GlassboxError, match="pass input_dim"):
        FunctionOracle(lambda x: x)


def test_wrappers_share_one_count_and_one_budget():
    inner = net_oracle(_net(), budget=10)
    outer = label_only(rounded(float32_outputs(inner), 4))
    with outer.phase("search"):
        outer.query(X[:6])
    inner.query(X[:3])
    outer.query(X[:1])
    assert outer.queries == inner.queries == 10
    assert outer.queries_by_phase == inner.queries_by_phase == {"search": 6, "other": 4}
    assert outer.budget == 10
    with pytest.raises(QueryBudgetExceeded):
        outer.query(X[:1])
    assert inner.queries == 10


def test_float32_outputs_are_float32_representable():
    net = _net()
    y = float32_outputs(net_oracle(net)).query(X)
    np.testing.assert_array_equal(y, y.astype(np.float32).astype(np.float64))
    np.testing.assert_array_equal(y, net.forward(X).astype(np.float32))
    assert np.any(y != net.forward(X))


@pytest.mark.parametrize("digits", [1, 3, 8, 17])
def test_rounding_keeps_k_significant_digits(digits):
    net = _net()
    y = rounded(net_oracle(net), digits).query(X)
    raw = net.forward(X)
    as_text = [f"{v:.{digits - 1}e}" for v in raw.ravel()]
    np.testing.assert_array_equal(y.ravel(), [float(t) for t in as_text])
    # the answer has at most k significant digits: printing it with k digits is lossless
    np.testing.assert_array_equal(y.ravel(), [float(f"{v:.{digits - 1}e}") for v in y.ravel()])
    q = 10.0 ** (np.floor(np.log10(np.abs(raw))) - digits + 1)
    assert np.all(np.abs(y - raw) <= 0.5 * q * (1 + 1e-12))


def test_round_significant_keeps_zero_and_extremes():
    y = np.array([0.0, 1.23456e-300, -9.9996e200, 123456.0])
    np.testing.assert_array_equal(round_significant(y, 3), [0.0, 1.23e-300, -1.00e201, 123000.0])


def test_noise_is_seeded_fresh_per_query_and_has_the_stated_sigma():
    net = _net()
    a, b = noisy(net_oracle(net), 0.01, seed=5), noisy(net_oracle(net), 0.01, seed=5)
    xs = np.repeat(X[:1], 20000, axis=0)
    ya, yb = a.query(xs), b.query(xs)
    np.testing.assert_array_equal(ya, yb)
    err = ya - net.forward(xs)
    assert abs(err.std() - 0.01) < 0.0005 and abs(err.mean()) < 0.0005
    assert np.any(a.query(X[:1]) != ya[:1])


def test_label_only_returns_the_argmax():
    net = _net("4-6-5")
    oracle = label_only(net_oracle(net))
    assert oracle.output_dim == 1
    np.testing.assert_array_equal(oracle.query(X)[:, 0], np.argmax(net.forward(X), axis=1))
    binary = ReLUNet.random("4-6-1", seed=3)
    np.testing.assert_array_equal(
        label_only(net_oracle(binary)).query(X), (binary.forward(X) > 0).astype(float)
    )


def test_bad_wrapper_arguments():
    with pytest.raises(GlassboxError):
        rounded(net_oracle(_net()), 0)
    with pytest.raises(GlassboxError):
        noisy(net_oracle(_net()), -1.0)
    with pytest.raises(GlassboxError, match="only weaken an Oracle"):
        float32_outputs(_net())


def test_onnx_oracle_answers_like_the_net_and_refuses_float32(tmp_path):
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    net = _net("4-7-2:relu")
    net.to_onnx(tmp_path / "n.onnx")
    oracle = OnnxOracle(tmp_path / "n.onnx", budget=64)
    assert (oracle.input_dim, oracle.output_dim, oracle.queries) == (4, 2, 0)
    np.testing.assert_allclose(oracle.query(X), net.forward(X), rtol=1e-15, atol=1e-15)
    with pytest.raises(QueryBudgetExceeded):
        oracle.query(X[:1])

    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w"], ["y"], transB=1)],
        "f32",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])],
        [numpy_helper.from_array(np.ones((3, 4), dtype=np.float32), "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save_model(model, str(tmp_path / "f32.onnx"))
    with pytest.raises(GlassboxError, match="allow_float32=True"):
        OnnxOracle(tmp_path / "f32.onnx")
    f32 = OnnxOracle(tmp_path / "f32.onnx", allow_float32=True)
    np.testing.assert_allclose(
        f32.query(X[:2]), X[:2].sum(axis=1, keepdims=True).repeat(3, 1), rtol=1e-6
    )
