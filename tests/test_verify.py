import json
import math

import numpy as np
import pytest

from glassbox.errors import GlassboxError
from glassbox.mlp import ReLUNet
from glassbox.verify.compare import (
    HYPERPLANE_OFFSETS,
    align,
    hyperplane_points,
    log2_json,
    verify,
)

N = 1024  # samples per distribution: enough to exercise everything, fast


def symmetric_copy(net: ReLUNet, seed: int) -> ReLUNet:
    """The same function: each hidden layer permuted and rescaled by positive factors."""
    rng = np.random.default_rng(seed)
    ws = [w.copy() for w in net.weights]
    bs = [None if b is None else b.copy() for b in net.biases]
    for i in range(len(ws) - 1):
        n = ws[i].shape[0]
        p, c = rng.permutation(n), rng.uniform(0.1, 10.0, n)
        ws[i] = ws[i][p] * c[:, None]
        bs[i] = None if bs[i] is None else bs[i][p] * c
        ws[i + 1] = ws[i + 1][:, p] / c
    return ReLUNet(ws, bs, net.output_relu)


def edited(net: ReLUNet, layer: int, index: tuple[int, int], delta: float) -> ReLUNet:
    ws = [w.copy() for w in net.weights]
    ws[layer][index] += delta
    return ReLUNet(ws, net.biases, net.output_relu)


@pytest.mark.parametrize(
    "spec", ["10-20-20-1", "40-20-10-10-1:nohiddenbias", "6-9-4:relu", "30-16-3:nobias"]
)
def test_permuted_rescaled_copy_verifies_below_2_to_minus_50(spec):
    truth = ReLUNet.random(spec, seed=1)
    copy = symmetric_copy(truth, seed=2)
    v = verify(copy, truth, n_samples=N)
    assert v.max_weight_error_log2 <= -50
    assert all(e <= -50 for e in v.per_layer_error_log2)
    assert v.epsilon_log2 < -40 and v.delta == 0.0 and v.same_pattern_fraction == 1.0
    assert v.unmatched_truth == [] and v.unmatched_recovered == []


def test_alignment_recovers_the_permutation_and_scales_and_keeps_the_function():
    truth = ReLUNet.random("7-12-5-2", seed=3)
    rng = np.random.default_rng(9)
    p, c = rng.permutation(12), rng.uniform(0.5, 2.0, 12)
    ws = [truth.weights[0][p] * c[:, None], truth.weights[1][:, p] / c, truth.weights[2]]
    bs = [truth.biases[0][p] * c, truth.biases[1], truth.biases[2]]
    rec = ReLUNet(ws, bs)
    a = align(rec, truth)
    inverse = np.argsort(p)
    np.testing.assert_array_equal(a.permutations[0], inverse)
    np.testing.assert_allclose(a.scales[0], c[inverse], rtol=1e-14)
    np.testing.assert_array_equal(a.permutations[1], np.arange(5))
    np.testing.assert_allclose(a.aligned.weights[0], truth.weights[0], rtol=1e-14, atol=1e-15)
    x = rng.normal(size=(50, 7))
    np.testing.assert_allclose(a.aligned.forward(x), rec.forward(x), rtol=1e-13)


def test_one_output_weight_changed_by_1e_6_reports_its_normalised_error():
    truth = ReLUNet.random("8-6-1", seed=4)
    j = 2
    v = verify(edited(truth, 1, (0, j), 1e-6), truth, n_samples=N)
    # hidden neuron j is normalised by r = |(w_j, b_j)|, so its outgoing weight by r
    r = math.hypot(*truth.weights[0][j], truth.biases[0][j])
    assert v.per_layer_error_log2[0] == -math.inf
    assert v.per_layer_error_log2[1] == pytest.approx(math.log2(1e-6 * r), abs=1e-6)
    assert v.max_weight_error_log2 == v.per_layer_error_log2[1]
    # the sampled error of a changed output weight is 1e-6 * relu(h_j): at most that size
    assert -40 < v.epsilon_log2 < math.log2(1e-6 * r * 20)


def test_one_hidden_weight_changed_by_1e_6_matches_the_first_order_closed_form():
    truth = ReLUNet.random("5-4-2", seed=5)
    j, k, d = 1, 3, 1e-6
    v = verify(edited(truth, 0, (j, k), d), truth, n_samples=N)
    t = np.append(truth.weights[0][j], truth.biases[0][j])
    n2 = t @ t
    n = math.sqrt(n2)
    # least-squares scale s = 1 + d t_k/|t|^2; aligned row (t + d e_k)/s, outgoing * s
    row = d / n * np.abs(np.eye(t.size)[k] - t * t[k] / n2)
    outgoing = np.abs(truth.weights[1][:, j]) * d * abs(t[k]) / n
    assert 2.0 ** v.per_layer_error_log2[0] == pytest.approx(row.max(), rel=1e-4)
    assert 2.0 ** v.per_layer_error_log2[1] == pytest.approx(outgoing.max(), rel=1e-4)


def test_an_invented_bias_counts_against_zero():
    truth = ReLUNet.random("4-6-1:nohiddenbias", seed=6)
    bias = np.zeros(6)
    bias[2] = 1e-3
    rec = ReLUNet(truth.weights, [bias, truth.biases[1]])
    v = verify(rec, truth, n_samples=N)
    expected = math.log2(1e-3 / np.linalg.norm(truth.weights[0][2]))
    assert v.per_layer_error_log2[0] == pytest.approx(expected, abs=1e-12)
    assert v.per_layer_error_log2[1] == -math.inf


def test_missing_extra_and_sign_flipped_neurons_are_reported():
    truth = ReLUNet.random("6-5-1", seed=7)
    keep = [0, 1, 3, 4]  # neuron 2 missing
    w0 = np.vstack([truth.weights[0][keep], -truth.weights[0][4:5], [np.ones(6)]])
    b0 = np.append(truth.biases[0][keep], [-truth.biases[0][4], 0.0])
    w1 = np.append(truth.weights[1][:, keep], [[0.0, 0.5]], axis=1)
    rec = ReLUNet([w0, w1], [b0, truth.biases[1]])
    a = align(rec, truth)
    assert [(n.layer, n.index) for n in a.unmatched_truth] == [(0, 2)]
    assert {n.index for n in a.unmatched_recovered} == {4, 5}
    flipped = next(n for n in a.unmatched_recovered if n.index == 4)
    assert "truth neuron 4" in flipped.reason and "wrong sign" in flipped.reason
    np.testing.assert_array_equal(a.aligned.weights[0][2], np.zeros(6))
    x = np.random.default_rng(0).normal(size=(40, 6))
    np.testing.assert_allclose(a.aligned.forward(x), rec.forward(x), rtol=1e-13)
    v = verify(rec, truth, n_samples=N)
    # the extra neuron's outgoing weight 0.5 is pure error (extras are not normalised)
    assert v.per_layer_error_log2[1] >= -1.0
    assert v.epsilon_log2 > -10


def test_dead_and_invisible_truth_neurons_are_set_apart_and_not_counted():
    w0 = np.array([[1.0, 0.5, 0.0], [0.3, -1.0, 2.0], [0.2, 0.1, -0.4], [1.0, 1.0, 1.0]])
    b0 = np.array([0.1, -1000.0, 0.2, 0.0])  # neuron 1 is never active
    w1 = np.array([[1.0, 3.0, -2.0, 0.0]])  # neuron 3 is invisible
    truth = ReLUNet([w0, w1], [b0, np.array([0.5])])
    rec = ReLUNet([w0[[0, 2]], w1[:, [0, 2]]], [b0[[0, 2]], np.array([0.5])])
    v = verify(rec, truth, n_samples=N)
    assert [(n.layer, n.index) for n in v.dead] == [(0, 1)]
    assert [(n.layer, n.index) for n in v.invisible] == [(0, 3)]
    assert v.unmatched_truth == [] and v.unmatched_recovered == []
    assert v.max_weight_error_log2 == -math.inf and v.epsilon_log2 == -math.inf


def test_worst_case_bound_covers_every_sample_in_its_box():
    truth = ReLUNet.random("6-8-8-2", seed=8)
    rec = edited(edited(truth, 1, (3, 4), 1e-5), 0, (2, 1), -3e-6)
    v = verify(rec, truth, n_samples=N)
    assert v.per_distribution["uniform"].epsilon_log2 <= v.worst_case_bound_log2
    assert v.worst_case_bound_log2 < -5


def test_hyperplane_points_lie_on_deep_neurons_hyperplanes():
    net = ReLUNet.random("5-6-4-1", seed=9)
    rng = np.random.default_rng(0)
    skip = (np.zeros(6, dtype=bool), np.array([True, True, False, True]))  # one deep neuron
    x = hyperplane_points(net, 200, rng, skip)
    k = len(HYPERPLANE_OFFSETS)
    assert x.shape[0] % k == 0 and x.shape[0] >= k * 6
    on = x[::k]  # offset 0 comes first for every landing point
    z = np.abs(
        np.concatenate([net.preactivations(on)[0], net.preactivations(on)[1][:, 2:3]], axis=1)
    )
    assert np.all(z.min(axis=1) <= 1e-9 * np.maximum(1, np.abs(on).max(axis=1)) * 10)


def test_sparse_distribution_and_json_figures():
    truth = ReLUNet.random("12-5-12:relu", seed=10)
    v = verify(truth, truth, n_samples=256, sparse_probability=0.1, queries=4321)
    assert set(v.per_distribution) == {"gaussian", "uniform", "sparse", "hyperplane"}
    data = json.loads(json.dumps(v.to_json(), allow_nan=False))
    assert {
        "max_weight_error_log2",
        "per_layer_error_log2",
        "epsilon_log2",
        "delta",
        "queries",
    } <= set(data)
    assert data["max_weight_error_log2"] == -1074.0 and data["max_weight_error"] == 0.0
    assert data["per_layer_error_log2"] == [-1074.0, -1074.0]
    assert data["queries"] == 4321 and data["delta"] == 0.0
    assert (log2_json(-math.inf), log2_json(math.nan), log2_json(-3.5)) == (-1074.0, None, -3.5)


def test_mismatched_architectures_are_one_line_errors():
    with pytest.raises(GlassboxError, match="different inputs/outputs"):
        verify(ReLUNet.random("4-3-1"), ReLUNet.random("5-3-1"))
    with pytest.raises(GlassboxError, match="different depths"):
        verify(ReLUNet.random("4-3-1"), ReLUNet.random("4-3-3-1"))
    with pytest.raises(GlassboxError, match="sparse_probability"):
        verify(ReLUNet.random("4-3-1"), ReLUNet.random("4-3-1"), sparse_probability=0.0)


def test_sparse_inputs_are_signed_and_as_sparse_as_asked():
    from glassbox.verify.compare import sample_inputs

    x = sample_inputs(50, 4000, np.random.default_rng(0), sparse_probability=0.2)["sparse"]
    nonzero = x[x != 0]
    assert abs(nonzero.size / x.size - 0.2) < 0.01
    assert nonzero.min() < -0.99 and nonzero.max() > 0.99
    assert abs(np.mean(nonzero < 0) - 0.5) < 0.02


def test_log2_figures_read_the_same_everywhere():
    from glassbox.verify.compare import LOG2_ZERO_JSON, fmt_log2, log2_error

    assert log2_error(0.0) == -math.inf and log2_error(0.25) == -2.0
    assert fmt_log2(-math.inf) == fmt_log2(LOG2_ZERO_JSON) == "0 (exact)"
    assert fmt_log2(-41.26) == "2^-41.3"
    assert fmt_log2(None) == fmt_log2(math.nan) == "n/a"
