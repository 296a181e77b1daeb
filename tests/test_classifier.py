"""Classifiers as deployed: softmax and sigmoid answers, their logit view, the head put back."""

from __future__ import annotations

import numpy as np
import pytest

from glassbox.errors import GlassboxError
from glassbox.extract import ExtractConfig, extract
from glassbox.mlp import ReLUNet
from glassbox.oracle.core import FunctionOracle, NonFiniteAnswer, float32_outputs
from glassbox.oracle.logits import Head, log_ratios, logit_view, view_precision, with_head
from glassbox.oracle.probe import profile_oracle
from glassbox.verify.classifier import logit_differences, reference_class, verify_classifier

SMOOTH = "tanh, sigmoid or softplus"


def _classifier(spec: str, head: str, seed: int = 1) -> ReLUNet:
    net = ReLUNet.random(spec, seed=seed)
    return ReLUNet(net.weights, net.biases, head=head)


def _profile(f, d: int, k: int):
    return profile_oracle(FunctionOracle(f, d, k), np.random.default_rng(0))


def _tanh_logits(X: np.ndarray, k: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    W1, W2 = rng.normal(size=(12, X.shape[1])), rng.normal(size=(k, 12))
    return np.tanh(X @ W1.T) @ W2.T


def test_the_probe_recognises_softmax_rows_and_never_calls_them_smooth():
    net = _classifier("8-12-4", "softmax")
    p = _profile(net.forward, 8, 4)
    assert p.kind == "softmax" and p.base == "float64" and p.attack_view
    assert p.classes == 4 and 0 <= p.reference < 4
    assert p.stop is not None and SMOOTH not in p.stop and "log-ratios" in p.stop
    assert p.head() == Head("softmax", 4, p.reference)
    # The reference is the class least likely to underflow.
    P = net.forward(np.random.default_rng(0).normal(size=(16, 8)))
    assert p.reference == int(np.argmax(P.min(axis=0)))
    f32 = profile_oracle(
        float32_outputs(FunctionOracle(net.forward, 8, 4)), np.random.default_rng(0)
    )
    assert f32.kind == "softmax" and f32.base == "float32" and f32.attack_view
    assert 2.0**-26 < f32.eps < 2.0**-18  # the log-ratios of float32 answers


def test_the_probe_recognises_sigmoid_answers_and_tells_them_from_tanh():
    net = _classifier("8-12-1", "sigmoid", seed=3)
    p = _profile(net.forward, 8, 1)
    assert p.kind == "sigmoid" and p.attack_view and SMOOTH not in (p.stop or "")
    # A tanh output answers in (-1, 1): not probabilities, and genuinely curved.
    t = _profile(lambda X: np.tanh(_tanh_logits(X, 1)), 8, 1)
    assert t.kind == "float64" and not t.attack_view and SMOOTH in (t.stop or "")


def test_a_smooth_net_under_a_softmax_or_a_sigmoid_is_still_called_smooth():
    def soft(X):
        z = _tanh_logits(X, 4)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    s = _profile(soft, 8, 4)
    assert s.kind == "softmax" and not s.attack_view and SMOOTH in (s.stop or "")
    g = _profile(lambda X: 1 / (1 + np.exp(-_tanh_logits(X, 1))), 8, 1)
    assert g.kind == "sigmoid" and not g.attack_view and SMOOTH in (g.stop or "")


def test_a_relu_net_with_answers_in_0_1_is_attacked_as_it_is():
    # Straight answers that happen to lie in (0, 1) are raw scores, not a sigmoid's.
    net = ReLUNet.random("4-6-1", seed=0)
    p = _profile(lambda X: 0.5 + 1e-3 * net.forward(X), 4, 1)
    assert p.kind == "float64" and p.stop is None


def test_the_log_ratio_map_of_a_known_net_equals_its_logit_differences():
    net = _classifier("6-10-5", "softmax")
    X = np.random.default_rng(1).normal(size=(200, 6))
    z = net.logits(X)
    for r in (0, 3):
        head = Head("softmax", 5, r)
        expected = np.delete(z - z[:, [r]], r, axis=1)
        np.testing.assert_allclose(log_ratios(net.forward(X), head), expected, atol=1e-12)
        np.testing.assert_allclose(logit_differences(net, r).forward(X), expected, atol=1e-12)
    sig = _classifier("6-10-2", "sigmoid")
    np.testing.assert_allclose(
        log_ratios(sig.forward(X), Head("sigmoid", 2)), sig.logits(X), atol=1e-9
    )


def test_the_view_counts_each_row_once_and_refuses_underflow():
    net = _classifier("3-5-3", "softmax")
    base = FunctionOracle(net.forward, 3, 3)
    view = logit_view(base, Head("softmax", 3, 0))
    assert view.output_dim == 2
    view.query(np.zeros((4, 3)))
    assert base.queries == view.queries == 4
    with pytest.raises(NonFiniteAnswer, match="underflowed at 1 of 2 inputs"):
        view.query(np.array([[0.0, 0.0, 0.0], [1e5, -1e5, 1e5]]))
    with pytest.raises(GlassboxError, match="answers 3 values"):
        logit_view(base, Head("softmax", 4, 0))


def test_view_precision_grows_for_a_sigmoid_near_one():
    head = Head("sigmoid", 1)
    near = np.array([[0.5], [1 - 2.0**-20]])
    mid = np.array([[0.5], [0.6]])
    assert view_precision(near, head, 2.0**-52) > 2.0**10 * view_precision(mid, head, 2.0**-52)


# Contractive nets: the signs of an expansive last layer are another issue's business.
@pytest.mark.parametrize(("spec", "head"), [("8-6-3", "softmax"), ("8-6-1", "sigmoid")])
def test_the_recovered_classifier_answers_the_same_probabilities(spec, head):
    truth = _classifier(spec, head, seed=4)
    oracle = FunctionOracle(truth.forward, 8, truth.output_dim)
    profile = profile_oracle(oracle, np.random.default_rng(0))
    h = profile.head()
    assert h is not None
    assert profile.input_scale is not None and 0 < profile.input_scale <= 1
    config = ExtractConfig(output_precision=profile.eps, input_scale=profile.input_scale)
    result = extract(logit_view(oracle, h), config)
    assert result.success, result.message
    recovered = with_head(result.net, h)
    assert recovered.head == head and recovered.dims == truth.dims
    X = np.random.default_rng(9).normal(size=(2000, 8))
    assert np.max(np.abs(recovered.forward(X) - truth.forward(X))) < 2.0**-40
    cv = verify_classifier(recovered, truth, n_samples=512)
    assert cv.logits.max_weight_error_log2 < -30
    assert cv.worst_argmax_agreement == 1.0 and cv.worst_probability_error_log2 < -40


def test_weights_are_compared_after_removing_the_common_shift():
    truth = _classifier("4-6-3", "softmax")
    w, b = truth.weights[-1], truth.biases[-1]
    shifted = ReLUNet(
        [truth.weights[0], w + np.array([1.0, -2.0, 0.5, 3.0, 0.0, 1.0])],
        [truth.biases[0], b + 7.0],
        head="softmax",
    )
    shifted = with_head(logit_differences(shifted, 1), Head("softmax", 3, 1))
    assert reference_class(shifted) == 1
    cv = verify_classifier(shifted, truth, n_samples=256)
    assert cv.logits.max_weight_error_log2 < -45
    assert cv.worst_probability_error_log2 < -45 and cv.worst_argmax_agreement == 1.0
    wrong = ReLUNet(
        shifted.weights, [shifted.biases[0], shifted.biases[1] + [0.3, 0, 0]], head="softmax"
    )
    bad = verify_classifier(wrong, truth, n_samples=256)
    assert bad.logits.max_weight_error_log2 > -3 and bad.worst_probability_error_log2 > -10


def test_a_head_travels_through_safetensors_and_onnx(tmp_path):
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort
    from safetensors import safe_open

    net = _classifier("5-7-3", "softmax")
    net.save(tmp_path / "c.safetensors")
    back = ReLUNet.load(tmp_path / "c.safetensors")
    assert back.head == "softmax" and "then softmax" in back.describe()
    plain = ReLUNet.random("5-7-3", seed=1)
    plain.save(tmp_path / "p.safetensors")
    with safe_open(str(tmp_path / "p.safetensors"), "np") as f:
        assert "head" not in f.metadata()  # plain nets' files are as they always were
    assert ReLUNet.load(tmp_path / "p.safetensors").head == "identity"
    X = np.random.default_rng(0).normal(size=(6, 5))
    for head in ("softmax", "sigmoid"):
        c = _classifier("5-7-3", head)
        c.to_onnx(tmp_path / f"{head}.onnx")
        (y,) = ort.InferenceSession(str(tmp_path / f"{head}.onnx")).run(None, {"input": X})
        np.testing.assert_allclose(y, c.forward(X), rtol=1e-12)
        assert ReLUNet.from_onnx(tmp_path / f"{head}.onnx").head == head
    with pytest.raises(GlassboxError, match="no output ReLU"):
        ReLUNet(net.weights, net.biases, output_relu=True, head="softmax")


def test_a_reshape_to_batch_by_width_is_read_and_any_other_refused(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w = np.arange(6.0).reshape(2, 3)

    def graph(shape):
        inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.array(shape), "s")]
        nodes = [
            helper.make_node("Gemm", ["x", "w"], ["z"], transB=1),
            helper.make_node("Reshape", ["z", "s"], ["y"]),
        ]
        g = helper.make_graph(
            nodes,
            "r",
            [helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["batch", 3])],
            [helper.make_tensor_value_info("y", TensorProto.DOUBLE, None)],
            inits,
        )
        path = tmp_path / f"r{len(list(tmp_path.iterdir()))}.onnx"
        onnx.save_model(
            helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path)
        )
        return path

    net = ReLUNet.from_onnx(graph([-1, 2]))
    np.testing.assert_array_equal(net.weights[0], w)
    with pytest.raises(GlassboxError, match="only a Reshape to"):
        ReLUNet.from_onnx(graph([-1]))


def test_an_output_relu_with_small_answers_is_not_a_sigmoid():
    # Exact zeros and values in (0, 1), straight between kinks: raw scores.
    net = ReLUNet.random("6-8-2:relu", seed=5)
    p = _profile(lambda X: 1e-2 * net.forward(X), 6, 2)
    assert p.kind == "float64" and p.stop is None
