import json

import numpy as np
import pytest

from glassbox.cli import main
from glassbox.mlp import ReLUNet


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_new_info_export_import(tmp_path, capsys):
    net_path = tmp_path / "t.safetensors"
    rc, out, _ = run(
        capsys, "net", "new", "6-5-2:nohiddenbias", "--seed", "3", "--out", str(net_path)
    )
    assert rc == 0 and "6-5-2" in out and "42 parameters" in out  # 6*5 + 5*2 + 2
    rc, out, _ = run(capsys, "net", "info", str(net_path))
    net = ReLUNet.load(net_path)
    assert rc == 0 and "output ReLU: no" in out
    lines = out.splitlines()
    assert len(lines) == 2 + len(net.weights)  # summary, header, one row per layer
    assert f"{np.linalg.norm(net.weights[0]):.4g}" in lines[2]
    assert "6 -> 5" in lines[2] and " no " in lines[2] and "relu" in lines[2]
    if __import__("importlib").util.find_spec("onnx"):
        onnx_path, back = tmp_path / "t.onnx", tmp_path / "back.safetensors"
        assert run(capsys, "net", "export", str(net_path), "--onnx", str(onnx_path))[0] == 0
        assert run(capsys, "net", "import", str(onnx_path), "--out", str(back))[0] == 0
        again = ReLUNet.load(back)
        assert all(
            a.tobytes() == b.tobytes() for a, b in zip(net.weights, again.weights, strict=True)
        )


def test_verify_prints_a_table_and_json(tmp_path, capsys):
    truth, rec = tmp_path / "t.safetensors", tmp_path / "r.safetensors"
    net = ReLUNet.random("5-7-1", seed=1)
    net.save(truth)
    ws = [net.weights[0][::-1] * 2.0, net.weights[1][:, ::-1] / 2.0]
    ReLUNet(ws, [net.biases[0][::-1] * 2.0, net.biases[1]]).save(rec)
    rc, out, _ = run(capsys, "verify", str(rec), str(truth), "--samples", "200")
    assert rc == 0
    for text in (
        "weight error",
        "overall",
        "gaussian",
        "hyperplane",
        "worst-case bound",
        "queries: unknown",
    ):
        assert text in out
    out_file = tmp_path / "v.json"
    rc, out, _ = run(
        capsys,
        "verify",
        str(rec),
        str(truth),
        "--json",
        "--samples",
        "200",
        "--queries",
        "99",
        "--out",
        str(out_file),
    )
    data = json.loads(out)
    assert rc == 0 and json.loads(out_file.read_text()) == data
    assert data["queries"] == 99 and data["max_weight_error_log2"] <= -50
    assert "NaN" not in out and "Infinity" not in out


def _bad_net(tmp_path, kind):
    from safetensors.numpy import save_file

    path = tmp_path / f"{kind}.safetensors"
    meta = {
        "format": "glassbox.ReLUNet",
        "format_version": "1",
        "dims": "[2, 1]",
        "has_bias": "[false]",
        "output_relu": "false",
    }
    w = {
        "nan": np.array([[np.nan, 1.0]]),
        "shape": np.ones((1, 3)),
        "f32": np.ones((1, 2), np.float32),
    }[kind]
    save_file({"layers.0.weight": w}, str(path), metadata=meta)
    return path


@pytest.mark.parametrize(
    "kind, message",
    [("nan", "NaN"), ("shape", "disagree with header"), ("f32", "float32, expected float64")],
)
def test_bad_nets_are_one_line_errors_and_nothing_is_written(tmp_path, capsys, kind, message):
    bad = _bad_net(tmp_path, kind)
    good = tmp_path / "g.safetensors"
    ReLUNet.random("2-1").save(good)
    out_file = tmp_path / "v.json"
    rc, out, err = run(capsys, "verify", str(bad), str(good), "--out", str(out_file))
    assert rc == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1
    assert not out_file.exists()
    rc, _, err = run(capsys, "net", "info", str(bad))
    assert rc == 2 and message in err


def test_other_bad_inputs(tmp_path, capsys):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"junk")
    rc, _, err = run(capsys, "net", "info", str(junk))
    assert rc == 2 and "not a readable safetensors" in err
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    ReLUNet.random("3-2-1").save(a)
    ReLUNet.random("4-2-1").save(b)
    rc, _, err = run(capsys, "verify", str(a), str(b))
    assert rc == 2 and "different inputs/outputs" in err
    out = tmp_path / "never.safetensors"
    rc, _, err = run(capsys, "net", "new", "3-x-1", "--out", str(out))
    assert rc == 2 and "bad net spec" in err and not out.exists()


def test_onnx_with_other_ops_is_refused_and_nothing_is_written(tmp_path, capsys):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["x", "w"], ["z"], transB=1),
            helper.make_node("Tanh", ["z"], ["y"]),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["n", 2])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, ["n", 1])],
        [numpy_helper.from_array(np.ones((1, 2)), "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save_model(model, str(tmp_path / "tanh.onnx"))
    out = tmp_path / "never.safetensors"
    rc, _, err = run(capsys, "net", "import", str(tmp_path / "tanh.onnx"), "--out", str(out))
    assert rc == 2 and "unsupported op Tanh" in err and not out.exists()
