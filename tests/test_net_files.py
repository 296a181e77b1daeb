"""ReLUNet and the files it lives in: closed-form forwards, checks that name the problem, and
byte-level round trips of safetensors."""

import json
import math

import numpy as np
import pytest

from glassbox.errors import GlassboxError
from glassbox.io import (
    read_safetensors,
    write_safetensors,
)
from glassbox.mlp import ReLUNet, apply_head, parse_spec


# ---------------------------------------------------------------------- ReLUNet
def _net(output_relu=False, head="identity"):
    w0 = np.array([[1.0, -1.0, 0.0], [0.5, 0.5, 2.0], [0.0, 1.0, -1.0], [-2.0, 0.0, 1.0]])
    w1 = np.array([[1.0, 2.0, -1.0, 0.5], [0.0, -1.0, 1.0, 1.0]])
    return ReLUNet([w0, w1], [np.array([0.0, -1.0, 0.5, 0.0]), None], output_relu, head)


def test_shape_figures_of_a_rectangular_net():
    net = _net()
    assert net.dims == (3, 4, 2) and (net.input_dim, net.output_dim) == (3, 2)
    assert net.n_hidden_layers == 1 and net.n_params == 12 + 8 + 4
    assert ReLUNet([np.ones((5, 2))]).n_hidden_layers == 0
    assert net.describe() == "3-4-2 (biases: yes,no; output ReLU: no)"
    assert _net(True).describe() == "3-4-2 (biases: yes,no; output ReLU: yes)"
    assert (
        _net(head="softmax").describe() == "3-4-2 (biases: yes,no; output ReLU: no; then softmax)"
    )


def test_every_preactivation_by_hand():
    net = _net()
    x = np.array([2.0, 1.0, -1.0])
    z0, z1 = net.preactivations(x)
    # w0 x + b0 = (1, 1.5 - 2 - 1, 2 + 0.5, -5) = (1, -1.5, 2.5, -5); relu -> (1, 0, 2.5, 0)
    np.testing.assert_array_equal(z0, [[1.0, -1.5, 2.5, -5.0]])
    np.testing.assert_array_equal(z1, [[1.0 - 2.5, 2.5]])
    np.testing.assert_array_equal(net.forward(x), [[-1.5, 2.5]])
    np.testing.assert_array_equal(_net(True).forward(x), [[0.0, 2.5]])
    np.testing.assert_array_equal(_net(True).logits(x), [[0.0, 2.5]])
    assert net(x).shape == (1, 2)
    np.testing.assert_array_equal(net.activation_pattern(x), [[True, False, True, False]])


def test_a_preactivation_of_exactly_zero_is_inactive():
    net = ReLUNet([np.array([[1.0], [-1.0]]), np.ones((1, 2))], [np.array([0.0, 1.0]), None])
    np.testing.assert_array_equal(
        net.activation_pattern([[0.0], [1.0]]), [[False, True], [True, False]]
    )
    np.testing.assert_array_equal(net.activation_pattern([[0.5]]), [[True, True]])
    flat = ReLUNet([np.ones((2, 3))])
    assert flat.activation_pattern(np.ones((4, 3))).shape == (4, 0)


def test_a_three_layer_net_applies_relu_between_layers_only():
    net = ReLUNet(
        [np.array([[1.0]]), np.array([[-1.0]]), np.array([[1.0]])], [None, np.array([0.5]), None]
    )
    # x=2: 2 -> relu 2 -> -1.5 -> relu 0 -> 0 ; x=-2: -2 -> 0 -> 0.5 -> 0.5
    np.testing.assert_array_equal(net.forward([[2.0], [-2.0], [0.2]]), [[0.0], [0.5], [0.3]])
    neg = ReLUNet([np.array([[1.0]]), np.array([[-1.0]])])
    np.testing.assert_array_equal(neg.forward([[3.0]]), [[-3.0]])  # no ReLU on the output


def test_the_net_owns_read_only_copies_of_its_arrays():
    w, b = np.ones((2, 3)), np.zeros(2)
    net = ReLUNet([w, np.ones((1, 2))], [b, None])
    w[0, 0], b[0] = 5.0, 5.0  # the caller's arrays stay theirs and writable
    assert net.weights[0][0, 0] == 1.0 and net.biases[0][0] == 0.0
    with pytest.raises(ValueError):
        net.weights[0][0, 0] = 2.0
    with pytest.raises(ValueError):
        net.biases[0][0] = 2.0


@pytest.mark.parametrize(
    "weights, biases, message",
    [
        ([], None, "a ReLUNet needs at least one layer"),
        (
            [np.ones((1, 2, 2))],
            None,
            r"layer 0 weight: expected a 2-D matrix, got shape \(1, 2, 2\)",
        ),
        ([np.array([[1.0, np.inf]])], None, "layer 0 weight: contains NaN or infinite values"),
        (
            [np.ones((3, 2)), np.ones((1, 2))],
            None,
            "layer 1 weight has 2 inputs but layer 0 has 3 outputs",
        ),
        (
            [np.ones((3, 2)), np.ones((4, 3)), np.ones((1, 5))],
            None,
            "layer 2 weight has 5 inputs but layer 1 has 4 outputs",
        ),
        ([np.ones((3, 2))], [None, None], "got 1 weight matrices but 2 biases"),
        ([np.ones((3, 2))], [np.ones(2)], r"layer 0 bias: expected shape \(3,\), got \(2,\)"),
        (
            [np.ones((3, 2))],
            [np.array([0.0, np.nan, 1.0])],
            "layer 0 bias: contains NaN or infinite",
        ),
    ],
)
def test_a_bad_net_is_a_one_line_error_naming_the_layer(weights, biases, message):
    with pytest.raises(GlassboxError, match=message):
        ReLUNet(weights, biases)


def test_heads_take_logits_only():
    with pytest.raises(
        GlassboxError, match="unknown output head 'tanh'; known: identity, softmax, sigmoid"
    ):
        _net(head="tanh")
    with pytest.raises(
        GlassboxError, match="a sigmoid head takes the logits: no output ReLU before it"
    ):
        _net(True, "sigmoid")
    assert _net(True).output_relu and _net(head="softmax").without_head().head == "identity"


def test_heads_by_closed_form():
    ln3 = math.log(3.0)
    np.testing.assert_allclose(
        apply_head(np.array([[0.0, ln3]]), "softmax"), [[0.25, 0.75]], rtol=1e-15
    )
    np.testing.assert_allclose(
        apply_head(np.array([[1000.0, 1000.0, -1000.0]]), "softmax"), [[0.5, 0.5, 0.0]]
    )
    rows = apply_head(np.array([[1.0, 2.0, 3.0], [-5.0, 0.0, 5.0]]), "softmax")
    np.testing.assert_allclose(rows.sum(axis=1), [1.0, 1.0], rtol=1e-15)
    z = np.array([[0.0, ln3, -ln3, 0.5, 1000.0, -1000.0]])
    expected = [0.5, 0.75, 0.25, 1 / (1 + math.exp(-0.5)), 1.0, 0.0]
    np.testing.assert_allclose(apply_head(z, "sigmoid"), [expected], rtol=1e-15, atol=1e-300)
    assert apply_head(z, "identity") is z
    x = np.array([[2.0, 1.0, -1.0]])
    np.testing.assert_allclose(
        _net(head="softmax").forward(x), apply_head(_net().forward(x), "softmax")
    )


def test_inputs_of_the_wrong_shape_are_refused():
    net = _net()
    for bad in (np.ones(2), np.ones((2, 4)), np.ones((2, 3, 1))):
        with pytest.raises(GlassboxError, match=r"expected \(k, 3\) or \(3,\)"):
            net.forward(bad)


def test_the_default_seed_is_zero_and_options_place_the_biases():
    a, b = ReLUNet.random("3-4-5-2"), ReLUNet.random("3-4-5-2", seed=0)
    assert all(np.array_equal(x, y) for x, y in zip(a.weights, b.weights, strict=True))
    assert a.dims == (3, 4, 5, 2) and [w.shape for w in a.weights] == [(4, 3), (5, 4), (2, 5)]
    assert [x is None for x in ReLUNet.random("3-4-5-2:nohiddenbias").biases] == [True, True, False]
    assert [x is None for x in ReLUNet.random("3-4-2:relu,nobias").biases] == [True, True]


@pytest.mark.parametrize(
    "spec, message",
    [
        ("3-4-2:", "an empty option after ':'; drop the ':' or name options from nobias,"),
        ("3-4-2:relu,,nobias", "an empty option after ':'"),
        ("3-0-2", "every width must be at least 1"),
        ("3-4-2:tanh", "unknown option.s. tanh; known: nobias, nohiddenbias, relu"),
        ("3", "expected widths joined by '-'"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec, message):
    with pytest.raises(GlassboxError, match=message):
        parse_spec(spec)


def test_good_specs_parse_to_widths_and_options():
    assert parse_spec("1-1") == ([1, 1], set())
    assert parse_spec("784-128-1") == ([784, 128, 1], set())
    assert parse_spec("10-5-1: relu , nobias") == ([10, 5, 1], {"relu", "nobias"})


# --------------------------------------------------------------- net files
def test_the_saved_header_is_the_documented_one_and_head_only_when_not_identity(tmp_path):
    _net(True).save(tmp_path / "a.safetensors")
    tensors, meta = read_safetensors(tmp_path / "a.safetensors")
    assert meta == {
        "format": "glassbox.ReLUNet",
        "format_version": "1",
        "dims": "[3, 4, 2]",
        "has_bias": "[true, false]",
        "output_relu": "true",
    }
    assert sorted(tensors) == ["layers.0.bias", "layers.0.weight", "layers.1.weight"]
    _net(head="sigmoid").save(tmp_path / "b.safetensors")
    assert read_safetensors(tmp_path / "b.safetensors")[1]["head"] == "sigmoid"
    back = ReLUNet.load(tmp_path / "b.safetensors")
    assert back.head == "sigmoid" and back.describe() == _net(head="sigmoid").describe()
    assert ReLUNet.load(tmp_path / "a.safetensors").output_relu


def _save_raw(path, tensors, meta):
    from safetensors.numpy import save_file

    save_file(tensors, str(path), metadata=meta)


def _meta(dims, has_bias):
    return {
        "format": "glassbox.ReLUNet",
        "format_version": "1",
        "dims": json.dumps(dims),
        "has_bias": json.dumps(has_bias),
        "output_relu": "false",
    }


def test_a_net_file_that_disagrees_with_its_header_is_refused(tmp_path):
    p = tmp_path / "n.safetensors"
    w = {"layers.0.weight": np.ones((2, 3)), "layers.1.weight": np.ones((1, 2))}
    _save_raw(p, w, _meta([3, 2, 1], [False, True]))
    with pytest.raises(GlassboxError, match="layer 1 bias presence disagrees with the header"):
        ReLUNet.load(p)
    _save_raw(p, {"layers.0.weight": np.ones((2, 3))}, _meta([3, 2, 1], [False, False]))
    with pytest.raises(GlassboxError, match="missing tensor layers.1.weight"):
        ReLUNet.load(p)
    _save_raw(p, w, _meta([3, 5, 1], [False, False]))
    with pytest.raises(GlassboxError, match=r"tensor shapes \(3, 2, 1\) disagree with header dims"):
        ReLUNet.load(p)
    meta = _meta([3, 2, 1], [False, False])
    del meta["has_bias"]
    _save_raw(p, w, meta)
    with pytest.raises(GlassboxError, match="glassbox net header is incomplete"):
        ReLUNet.load(p)
    _save_raw(
        p,
        {
            "layers.0.weight": np.ones((2, 3)),
            "layers.0.bias": np.ones(2, dtype=np.float32),
            "layers.1.weight": np.ones((1, 2)),
        },
        _meta([3, 2, 1], [True, False]),
    )
    with pytest.raises(GlassboxError, match="layers.0.bias is float32, expected float64"):
        ReLUNet.load(p)
    _save_raw(p, w, _meta([3, 2, 1], [False, False]))
    assert ReLUNet.load(p).dims == (3, 2, 1)


def test_safetensors_are_laid_out_as_the_format_says(tmp_path):
    p = tmp_path / "t.safetensors"
    tensors = {
        "b": np.arange(3, dtype=np.int32),
        "a": np.arange(6.0).reshape(2, 3),
        "c": np.array([True]),
    }
    write_safetensors(p, tensors, {"z": "1", "a": "2"})
    raw = p.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    assert (8 + n) % 8 == 0 and raw[8 + n - 1 : 8 + n] in (b" ", b"}")
    header = json.loads(raw[8 : 8 + n])
    assert list(header) == ["__metadata__", "a", "b", "c"]  # sorted keys
    assert header["__metadata__"] == {"a": "2", "z": "1"}
    assert header["a"] == {"dtype": "F64", "shape": [2, 3], "data_offsets": [0, 48]}
    assert header["b"] == {"dtype": "I32", "shape": [3], "data_offsets": [48, 60]}
    assert header["c"] == {"dtype": "BOOL", "shape": [1], "data_offsets": [60, 61]}
    assert len(raw) == 8 + n + 61
    back, meta = read_safetensors(p)
    assert meta == {"a": "2", "z": "1"}
    for k, v in tensors.items():
        np.testing.assert_array_equal(back[k], v)
        assert back[k].dtype == v.dtype
    write_safetensors(
        tmp_path / "u.safetensors", dict(reversed(tensors.items())), {"a": "2", "z": "1"}
    )
    assert (tmp_path / "u.safetensors").read_bytes() == raw
    with pytest.raises(GlassboxError, match="cannot save tensor x of dtype complex128"):
        write_safetensors(tmp_path / "v.safetensors", {"x": np.zeros(2, dtype=complex)}, {})
    assert not (tmp_path / "v.safetensors").exists()


def test_a_safetensors_file_without_metadata_reads_as_empty_metadata(tmp_path):
    from safetensors.numpy import save_file

    p = tmp_path / "plain.safetensors"
    save_file({"x": np.ones(2)}, str(p))
    tensors, meta = read_safetensors(p)
    assert meta == {} and list(tensors) == ["x"]
    with pytest.raises(GlassboxError, match="no such file"):
        read_safetensors(tmp_path / "none.safetensors")
