import json

import numpy as np
import pytest

from glassbox.errors import GlassboxError
from glassbox.mlp import ReLUNet, parse_spec


def test_forward_matches_closed_form():
    w1 = np.array([[1.0, -2.0], [0.5, 1.0], [-1.0, 0.0]])
    b1 = np.array([0.0, -1.0, 2.0])
    w2 = np.array([[1.0, 2.0, -3.0]])
    b2 = np.array([0.25])
    net = ReLUNet([w1, w2], [b1, b2])
    x = np.array([[3.0, 1.0], [-1.0, 4.0]])
    h = np.maximum(x @ w1.T + b1, 0)
    np.testing.assert_array_equal(net.forward(x), h @ w2.T + b2)
    # by hand for the first row: h = relu([1, 1.5, -1]) = [1, 1.5, 0]; y = 1 + 3 + 0.25
    assert net.forward(x)[0, 0] == 4.25


def test_output_relu_clips_and_bias_free_layers_stay_absent():
    net = ReLUNet([np.eye(2), -np.eye(2)], [None, None], output_relu=True)
    assert net.biases == (None, None)
    np.testing.assert_array_equal(net.forward([[1.0, -1.0]]), [[0.0, 0.0]])
    assert net.n_params == 8


def test_save_load_is_bit_exact(tmp_path):
    net = ReLUNet.random("7-5-3-2:nohiddenbias,relu", seed=3)
    path = tmp_path / "net.safetensors"
    net.save(path)
    back = ReLUNet.load(path)
    assert back.dims == (7, 5, 3, 2) and back.output_relu
    assert [b is None for b in back.biases] == [True, True, False]
    for a, b in zip(net.weights, back.weights, strict=True):
        assert a.tobytes() == b.tobytes()
    assert net.biases[2].tobytes() == back.biases[2].tobytes()


def test_random_is_seeded():
    a, b, c = (ReLUNet.random("4-3-1", seed=s) for s in (1, 1, 2))
    assert np.array_equal(a.weights[0], b.weights[0])
    assert not np.array_equal(a.weights[0], c.weights[0])


@pytest.mark.parametrize(
    "weights, message",
    [
        ([np.ones((2, 3)), np.ones((1, 4))], "has 4 inputs"),
        ([np.array([[np.nan]])], "NaN"),
        ([np.ones(3)], "2-D"),
    ],
)
def test_bad_shapes_are_one_line_errors(weights, message):
    with pytest.raises(GlassboxError, match=message):
        ReLUNet(weights)


def test_forward_rejects_wrong_width():
    with pytest.raises(GlassboxError, match=r"expected \(k, 3\)"):
        ReLUNet.random("3-2-1").forward(np.ones((4, 2)))


def test_load_rejects_other_files(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(GlassboxError, match="not a readable safetensors"):
        ReLUNet.load(junk)
    from safetensors.numpy import save_file

    plain = tmp_path / "plain.safetensors"
    save_file({"x": np.ones(2)}, str(plain))
    with pytest.raises(GlassboxError, match="not a glassbox net"):
        ReLUNet.load(plain)


def test_load_rejects_float32(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "f32.safetensors"
    meta = {
        "format": "glassbox.ReLUNet",
        "format_version": "1",
        "dims": json.dumps([2, 1]),
        "has_bias": json.dumps([False]),
        "output_relu": "false",
    }
    save_file({"layers.0.weight": np.ones((1, 2), dtype=np.float32)}, str(path), metadata=meta)
    with pytest.raises(GlassboxError, match="float32, expected float64"):
        ReLUNet.load(path)


@pytest.mark.parametrize("spec", ["", "784", "784-x-1", "3-0-1", "3-2-1:bogus"])
def test_bad_specs(spec):
    with pytest.raises(GlassboxError, match="bad net spec"):
        parse_spec(spec)


def test_saved_files_get_ordinary_permissions(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        path = tmp_path / "net.safetensors"
        ReLUNet.random("3-2-1").save(path)
        assert path.stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(umask)
