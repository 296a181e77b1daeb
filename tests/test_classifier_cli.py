"""``glassbox extract`` on classifiers as exporters write them: several outputs, probabilities."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli
from glassbox.io import read_json
from glassbox.mlp import ReLUNet

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def two_outputs(path: Path, net: ReLUNet) -> Path:
    """The net's logits and their softmax as two outputs of one graph, ``logits`` and ``probs``."""
    from onnx import TensorProto, helper, numpy_helper

    (w0, w1), (b0, b1) = net.weights, net.biases
    inits = [
        numpy_helper.from_array(np.ascontiguousarray(a), n)
        for a, n in ((w0, "w0"), (b0, "b0"), (w1, "w1"), (b1, "b1"))
    ]
    nodes = [
        helper.make_node("Gemm", ["x", "w0", "b0"], ["z0"], transB=1),
        helper.make_node("Relu", ["z0"], ["a0"]),
        helper.make_node("Gemm", ["a0", "w1", "b1"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
    ]
    d, k = net.input_dim, net.output_dim
    graph = helper.make_graph(
        nodes,
        "two",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["batch", d])],
        [
            helper.make_tensor_value_info(n, TensorProto.DOUBLE, ["batch", k])
            for n in ("logits", "probs")
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save_model(model, str(path))
    return path


@pytest.fixture(scope="module")
def two(tmp_path_factory) -> Path:
    return two_outputs(tmp_path_factory.mktemp("two") / "two.onnx", ReLUNet.random("6-5-3", seed=2))


def test_without_output_two_real_valued_outputs_are_refused_by_name(two, tmp_path):
    code, _, err = run_cli("extract", str(two), "--out", str(tmp_path / "o"))
    assert code == 2 and "logits" in err and "probs" in err and "--output NAME" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "o").exists()
    code, _, err = run_cli("extract", str(two), "--out", str(tmp_path / "o"), "--output", "nope")
    assert code == 2 and "no output 'nope'" in err


def test_the_chosen_output_is_the_one_attacked(two, tmp_path):
    code, out, err = run_cli("extract", str(two), "--out", str(tmp_path / "p"), "--output", "probs")
    assert code == 0, out + err
    rec = read_json(tmp_path / "p" / "extraction.json")
    assert "(output probs)" in rec["target"]
    assert rec["answers"]["kind"] == "softmax" and rec["classifier"]["head"] == "softmax"
    # Every query of both runs (recognising the probabilities, then the view) is counted.
    assert rec["queries"] == sum(rec["queries_by_phase"].values())
    assert 0 < rec["classifier"]["queries_before"] < rec["queries"]
    assert rec["verification"]["max_weight_error_log2"] < -30
    assert rec["verification"]["classifier"]["max_probability_error_log2"] < -40
    recovered = ReLUNet.load(tmp_path / "p" / "recovered.safetensors")
    assert recovered.head == "softmax" and recovered.dims == (6, 5, 3)
    code, out, err = run_cli(
        "extract", str(two), "--out", str(tmp_path / "l"), "--output", "logits"
    )
    assert code == 0, out + err
    rec = read_json(tmp_path / "l" / "extraction.json")
    assert rec["answers"]["kind"] == "float64" and "classifier" not in rec
    assert ReLUNet.load(tmp_path / "l" / "recovered.safetensors").head == "identity"


def test_net_import_reads_the_chosen_output(two, tmp_path):
    code, _, err = run_cli("net", "import", str(two), "--out", str(tmp_path / "n.safetensors"))
    assert code == 2 and "choose one (--output NAME)" in err
    code, _, _ = run_cli(
        "net", "import", str(two), "--out", str(tmp_path / "n.safetensors"), "--output", "probs"
    )
    assert code == 0
    net = ReLUNet.load(tmp_path / "n.safetensors")
    truth = ReLUNet.random("6-5-3", seed=2)
    X = np.random.default_rng(0).normal(size=(50, 6))
    assert net.head == "softmax"
    np.testing.assert_allclose(
        net.forward(X), ReLUNet(truth.weights, truth.biases, head="softmax").forward(X)
    )


def test_output_is_refused_for_a_target_that_is_not_onnx(tmp_path):
    code, _, err = run_cli("extract", "random:4-3-1", "--out", str(tmp_path / "o"), "--output", "p")
    assert code == 2 and "not an ONNX file" in err


def test_a_scikit_learn_classifier_is_extracted_through_the_cli(tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("skl2onnx")
    from skl2onnx import to_onnx
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier

    X, y = load_digits(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MLPClassifier(hidden_layer_sizes=(12,), max_iter=200, random_state=0).fit(X, y)
        # As exported by default: float32, a label and a ZipMap of probabilities.
        onx = to_onnx(model, X[:1].astype(np.float32))
        (tmp_path / "digits.onnx").write_bytes(onx.SerializeToString())
    code, out, err = run_cli("extract", str(tmp_path / "digits.onnx"), "--out", str(tmp_path / "o"))
    assert code == 0, out + err
    assert "output output_probability: the one real-valued (batch, k) output" in err
    assert "float32 softmax probabilities over 10 classes" in out
    rec = read_json(tmp_path / "o" / "extraction.json")
    c = rec["verification"]["classifier"]
    assert c["min_argmax_agreement"] == 1.0 and c["max_probability_error_log2"] < -16
    recovered = ReLUNet.load(tmp_path / "o" / "recovered.safetensors")
    # Against scikit-learn's own float64 model, on the data's scale (0-16, not Gaussian).
    np.testing.assert_allclose(recovered.forward(X), model.predict_proba(X), atol=2.0**-12)
    assert np.array_equal(np.argmax(recovered.forward(X), axis=1), model.predict(X))


def test_the_readme_classifier_section_runs_as_written(tmp_path, monkeypatch):
    import re
    import shlex

    pytest.importorskip("skl2onnx")
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("#### Attacking a classifier") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    bash = re.search(r"```bash\n(.*?)```", section, re.S)
    assert code and bash
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(code.group(1), "README.md", "exec"), {})
    printed = []
    for line in bash.group(1).splitlines():
        argv = shlex.split(line, comments=True)
        status, out, err = run_cli(*argv[1:])
        assert status == 0, out + err
        printed.append(out)
    assert "softmax probabilities over 10 classes" in printed[0]
    assert "then softmax" in printed[1] and "64-16-10" in printed[1]


def test_serve_takes_the_chosen_output(two):
    pytest.importorskip("fastapi")
    from glassbox.serve.run import build_service

    _, desc = build_service(str(two), output="probs")
    assert "(output probs)" in desc
    with pytest.raises(Exception, match="choose one with --output NAME"):
        build_service(str(two))


def test_glassbox_verify_compares_classifiers_after_the_common_shift(tmp_path):
    truth = ReLUNet.random("5-6-3", seed=3)
    w, b = truth.weights[-1], truth.biases[-1]
    # Every logit shifted by the same affine function of the hidden layer: same probabilities.
    shift = np.random.default_rng(0).normal(size=6)
    shifted = ReLUNet([truth.weights[0], w + shift], [truth.biases[0], b + 2.5], head="softmax")
    ReLUNet(truth.weights, truth.biases, head="softmax").save(tmp_path / "t.safetensors")
    shifted.save(tmp_path / "s.safetensors")
    code, out, _ = run_cli(
        "verify", str(tmp_path / "s.safetensors"), str(tmp_path / "t.safetensors"), "--json"
    )
    assert code == 0
    import json

    figures = json.loads(out)
    assert figures["max_weight_error_log2"] < -45
    assert figures["classifier"]["min_argmax_agreement"] == 1.0
    assert figures["classifier"]["max_probability_error_log2"] < -45
