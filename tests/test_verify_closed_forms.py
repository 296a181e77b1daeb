"""verify and align on nets built by hand: every figure a closed form or an invariant of the others."""

import math

import numpy as np
import pytest

from glassbox.errors import GlassboxError
from glassbox.mlp import ReLUNet
from glassbox.verify.align import _unit_rows, align
from glassbox.verify.compare import (
    DELTA_THRESHOLD_LOG2,
    LOG2_ZERO_JSON,
    fmt_log2,
    log2_error,
    log2_json,
    verify,
    weight_errors,
    worst_case_bound,
)

N = 128  # samples per distribution


def _chain(out_weight: float, output_relu: bool = False) -> ReLUNet:
    # x in [-1, 1] -> z1 = 2x + 1 in [-1, 3] -> a1 in [0, 3] -> z2 = 4 - a1 in [1, 4] -> a2 in [1, 4]
    return ReLUNet(
        [np.array([[2.0]]), np.array([[-1.0]]), np.array([[out_weight]])],
        [np.array([1.0]), np.array([4.0]), None],
        output_relu=output_relu,
    )


def test_the_worst_case_bound_carries_both_ends_of_every_interval_through_relus():
    d = 2.0**-12
    # an output weight off by d costs at most d * max a2 = 4 d on the box
    assert worst_case_bound(_chain(1.0), _chain(1.0 + d)) == 4 * d
    assert worst_case_bound(_chain(1.0, True), _chain(1.0 + d, True)) == 4 * d
    assert worst_case_bound(_chain(1.0), _chain(1.0)) == 0.0
    # a bias error adds itself (and an invented bias counts against 0)
    shifted = ReLUNet(_chain(1.0).weights, [np.array([1.0]), np.array([4.0]), np.array([d])])
    assert worst_case_bound(_chain(1.0), shifted) == d
    # a hidden bias error d passes through |W| to the output: |-1| d, then |1| d
    hidden = ReLUNet(_chain(1.0).weights, [np.array([1.0 + d]), np.array([4.0]), None])
    assert worst_case_bound(_chain(1.0), hidden) == d


def test_the_bound_is_the_largest_output_error_of_several():
    truth = ReLUNet([np.eye(2), np.eye(2)], [np.array([3.0, 3.0]), np.zeros(2)])
    d = 2.0**-8
    rec = ReLUNet([np.eye(2), np.diag([1.0 + d, 1.0 + 2 * d])], [np.array([3.0, 3.0]), np.zeros(2)])
    # a_i = relu(x_i + 3) <= 4: output errors 4 d and 8 d; the bound is their max
    assert worst_case_bound(truth, rec) == 8 * d


def _silent(n_hidden: int = 3, out_bias=None, hidden_bias: float = 0.5) -> ReLUNet:
    """A net whose output weights are all zero: it answers its output bias (or 0) everywhere."""
    w0 = np.arange(1.0, 1.0 + 2 * n_hidden).reshape(n_hidden, 2) * np.array([1.0, -1.0])
    return ReLUNet(
        [w0, np.zeros((1, n_hidden))],
        [np.full(n_hidden, hidden_bias), None if out_bias is None else np.array([out_bias])],
    )


def test_an_error_exactly_at_the_delta_threshold_is_not_counted_one_above_is():
    truth = _silent()  # |f| = 0 < 1: the threshold is 2^-20 itself
    at = verify(_silent(out_bias=2.0**-20), truth, n_samples=N)
    assert at.delta_threshold_log2 == DELTA_THRESHOLD_LOG2 == -20.0
    assert at.epsilon_log2 == -20.0 and at.delta == 0.0
    assert all(d.epsilon_log2 == -20.0 and d.delta == 0.0 for d in at.per_distribution.values())
    above = verify(_silent(out_bias=2.0**-19), truth, n_samples=N)
    assert above.epsilon_log2 == -19.0 and above.delta == 1.0
    assert all(d.delta == 1.0 for d in above.per_distribution.values())
    below = verify(_silent(out_bias=2.0**-21), truth, n_samples=N)
    assert below.delta == 0.0 and below.epsilon_log2 == -21.0
    # every neuron's outgoing weights are zero: all invisible, none dead, no weight error
    assert [n.index for n in at.invisible] == [0, 1, 2] and at.dead == []
    assert at.max_weight_error_log2 == -20.0  # the output bias error, normalised by 1
    assert at.per_layer_error_log2 == [-math.inf, -20.0]


def test_the_delta_threshold_grows_with_the_largest_output():
    truth = _silent(out_bias=8.0)  # f = 8 everywhere: threshold 2^-20 * 8
    v = verify(_silent(out_bias=8.0 + 2.0**-17), truth, n_samples=N)
    assert v.delta_threshold_log2 == -17.0
    assert v.epsilon_log2 == -17.0 and v.delta == 0.0
    big = ReLUNet.random("3-6-2", seed=1)
    ws = [big.weights[0], big.weights[1] * 1000.0]
    loud = ReLUNet(ws, big.biases)
    v = verify(loud, loud, n_samples=N)
    x = np.concatenate([np.random.default_rng(0).normal(size=(N, 3))])
    assert v.delta_threshold_log2 > -20 + math.log2(np.abs(loud.forward(x)).max()) - 2


def test_the_overall_figures_are_the_pooled_per_distribution_figures():
    truth = ReLUNet.random("5-7-4-2", seed=11)
    ws = [w.copy() for w in truth.weights]
    bs = [b.copy() for b in truth.biases]
    bs[0][3] += 0.3  # neuron 3 moves: some patterns differ, errors of many sizes
    ws[2][1, 2] += 2.0**-18
    v = verify(ReLUNet(ws, bs), truth, n_samples=N, sparse_probability=0.3)
    dists = v.per_distribution
    assert set(dists) == {"gaussian", "uniform", "sparse", "hyperplane"}
    assert dists["gaussian"].n == dists["uniform"].n == dists["sparse"].n == N
    assert dists["hyperplane"].n > 0 and dists["hyperplane"].n % 5 == 0
    assert {k: d.name for k, d in dists.items()} == {k: k for k in dists}
    total = sum(d.n for d in dists.values())
    assert v.epsilon_log2 == max(d.epsilon_log2 for d in dists.values())
    assert v.delta == pytest.approx(sum(d.n * d.delta for d in dists.values()) / total)
    off = [d for k, d in dists.items() if k != "hyperplane"]
    pooled = sum(d.n * d.same_pattern_fraction for d in off) / sum(d.n for d in off)
    assert v.same_pattern_fraction == pytest.approx(pooled)
    assert 0 < v.same_pattern_fraction < 1 and 0 < v.delta < 1
    assert (v.n_samples, v.seed, v.queries) == (N, 0, None)
    assert v.truth == truth.describe() and v.recovered == ReLUNet(ws, bs).describe()
    assert v.max_weight_error_log2 == max(v.per_layer_error_log2)
    json = v.to_json()
    assert json["worst_case_box"] == [-1.0, 1.0] and json["n_samples"] == N
    assert json["epsilon"] == 2.0**v.epsilon_log2
    assert json["max_weight_error"] == 2.0**v.max_weight_error_log2
    assert json["per_distribution"]["sparse"] == {
        "n": N,
        "epsilon_log2": dists["sparse"].epsilon_log2,
        "epsilon": 2.0 ** dists["sparse"].epsilon_log2,
        "delta": dists["sparse"].delta,
        "same_pattern_fraction": dists["sparse"].same_pattern_fraction,
    }


def test_a_net_with_every_neuron_dead_has_no_hyperplane_points_and_says_so():
    truth = _silent(out_bias=1.0, hidden_bias=-1000.0)
    v = verify(truth, truth, n_samples=N)
    plane = v.per_distribution["hyperplane"]
    assert (plane.n, plane.delta, plane.same_pattern_fraction) == (0, 0.0, 1.0)
    assert plane.epsilon_log2 == -math.inf
    assert [n.reason for n in v.dead] == [
        f"never active on {2 * N} Gaussian and uniform inputs"
    ] * 3
    assert v.invisible == []  # dead comes first: a dead neuron is not also invisible
    assert v.same_pattern_fraction == 1.0 and v.epsilon_log2 == -math.inf and v.delta == 0.0


def test_an_extra_neuron_in_a_first_layer_leaves_the_deep_patterns_in_their_columns():
    truth = ReLUNet.random("4-5-3-1", seed=12)
    w0 = np.vstack([truth.weights[0], np.ones((1, 4))])
    b0 = np.append(truth.biases[0], 0.0)
    w1 = np.hstack([truth.weights[1], np.zeros((3, 1))])  # the extra acts on nothing
    rec = ReLUNet([w0, w1, truth.weights[2]], [b0, *truth.biases[1:]])
    v = verify(rec, truth, n_samples=N)
    assert v.same_pattern_fraction == 1.0 and v.epsilon_log2 == -math.inf
    assert all(d.same_pattern_fraction == 1.0 for d in v.per_distribution.values())
    assert [(n.layer, n.index) for n in v.unmatched_recovered] == [(0, 5)]
    # the extra's row has no counterpart (not an error); its outgoing weights are all zero
    assert v.per_layer_error_log2 == [-math.inf, -math.inf, -math.inf]


def test_outgoing_errors_are_scaled_by_the_neuron_norm_also_below_one_and_deep():
    w0 = np.array([[0.3, 0.0], [0.0, 2.0]])
    b0 = np.array([0.4, 0.0])  # neuron 0 has norm 0.5, neuron 1 norm 2
    w1 = np.array([[1.0, 3.0], [1.0, -1.0]])
    b1 = np.array([0.0, 1.0])
    w2 = np.array([[1.0, 2.0]])
    truth = ReLUNet([w0, w1, w2], [b0, b1, None])
    d = 2.0**-20
    one = ReLUNet([w0, w1 + np.array([[d, 0.0], [0.0, 0.0]]), w2], [b0, b1, None])
    a = align(one, truth)
    # Layer 2's row 0 is t = (1, 3), in unit-row units (0.5, 6), bias 0. Aligned by the scale
    # s = t.(t + d e0) / |t|^2, it is off by d (1 - 1/10, -3/10) to first order: in unit-row
    # units d (0.45, 0.6), over its norm.
    r2 = math.hypot(0.5, 6.0)
    errs = weight_errors(truth, a)
    assert errs[0] == 0.0
    assert errs[1] == pytest.approx(0.6 * d / r2, rel=1e-4)
    two = ReLUNet([w0, w1, w2 + np.array([[0.0, d]])], [b0, b1, None])
    # layer 2's row 1 in unit-row units: (0.5, -2), bias 1
    assert weight_errors(truth, align(two, truth)) == [
        0.0,
        0.0,
        pytest.approx(d * math.hypot(0.5, 2.0, 1.0), rel=1e-12),
    ]
    small = ReLUNet([w0, w1, w2], [b0, b1, np.array([d])])
    assert weight_errors(truth, align(small, truth)) == [0.0, 0.0, d]


def test_a_recovered_net_without_a_zero_bias_the_truth_has_is_exact():
    truth = ReLUNet([np.array([[1.0, 2.0, 0.5], [-1.0, 0.5, 1.0]]), np.array([[1.0, -1.0]])])
    with_zero = ReLUNet(truth.weights, [np.zeros(2), None])
    assert weight_errors(with_zero, align(truth, with_zero)) == [0.0, 0.0]
    assert weight_errors(truth, align(with_zero, truth)) == [0.0, 0.0]


def test_dead_means_never_strictly_positive_even_when_tiny():
    w0 = np.array([[1e-3, 0.0], [0.0, 0.0], [1.0, 1.0]])
    b0 = np.array([0.0, 0.0, 0.1])  # neuron 0 is small but alive; neuron 1 is zero: dead
    truth = ReLUNet([w0, np.array([[1.0, 1.0, 1.0]])], [b0, np.array([0.0])])
    a = align(truth, truth, n_samples=N)
    assert list(a.dead_mask[0]) == [False, True, False]
    assert [n.index for n in a.dead] == [1]
    # the zero row has no direction: it matches nothing and leaves the others matched
    assert list(a.permutations[0]) == [0, -1, 2]


def test_invisible_means_every_outgoing_weight_is_zero():
    truth = ReLUNet(
        [np.eye(3) + 0.1, np.array([[1.0, 0.0, 0.0], [2.0, 0.7, 0.0]])],
        [np.full(3, 0.2), np.zeros(2)],
    )
    a = align(truth, truth, n_samples=N)
    assert list(a.invisible_mask[0]) == [False, False, True]
    assert [(n.layer, n.index, n.reason) for n in a.invisible] == [
        (0, 2, "all outgoing weights are zero")
    ]


def test_a_single_neuron_matches_and_unmatched_truth_is_minus_one():
    truth = ReLUNet([np.array([[1.0, -1.0]]), np.array([[2.0]])], [np.array([0.5]), None])
    a = align(
        ReLUNet([np.array([[3.0, -3.0]]), np.array([[2.0 / 3]])], [np.array([1.5]), None]), truth
    )
    assert list(a.permutations[0]) == [0] and a.scales[0][0] == pytest.approx(3.0)
    far = ReLUNet([np.array([[1.0, 1.0]]), np.array([[2.0]])], [np.array([0.5]), None])
    b = align(far, truth)
    assert list(b.permutations[0]) == [-1] and np.isnan(b.scales[0][0])
    assert list(b.extras[0]) == [0]


def test_a_pair_exactly_at_the_cosine_bar_is_matched():
    truth = ReLUNet([np.array([[1.0, 0.0]]), np.array([[1.0]])])
    row = np.array([[0.6, 0.8]])
    rec = ReLUNet([row, np.array([[1.0]])])
    bar = float((_unit_rows(truth.weights[0]) @ _unit_rows(row).T)[0, 0])
    assert list(align(rec, truth, min_cosine=bar).permutations[0]) == [0]
    assert list(align(rec, truth, min_cosine=np.nextafter(bar, 1)).permutations[0]) == [-1]


def test_small_rows_are_compared_by_direction_not_length():
    truth = ReLUNet.random("3-4-1", seed=13)
    tiny = ReLUNet(
        [truth.weights[0] * 1e-3, truth.weights[1] * 1e3], [truth.biases[0] * 1e-3, truth.biases[1]]
    )
    a = align(tiny, truth)
    assert list(a.permutations[0]) == [0, 1, 2, 3]
    np.testing.assert_allclose(a.scales[0], 1e-3, rtol=1e-12)


def test_unmatched_notes_give_the_best_cosine_and_the_wrong_sign_twin_of_neuron_0():
    truth = ReLUNet([np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 1.0]])])
    rows = np.array([[-1.0, 0.0], [0.5, math.sqrt(0.75)]])  # twin of 0; cos 0.5 to 0, 0.866 to 1
    rec = ReLUNet([rows, np.array([[1.0, 1.0]])])
    a = align(rec, truth)
    assert list(a.permutations[0]) == [-1, -1]
    ut = {n.index: n.reason for n in a.unmatched_truth}
    assert ut[0] == "no recovered neuron at cosine >= 0.9 (best 0.5)"
    assert ut[1] == "no recovered neuron at cosine >= 0.9 (best 0.866)"
    ur = {n.index: n.reason for n in a.unmatched_recovered}
    assert ur[0] == "matches truth neuron 0 with a negative scale (wrong sign)"
    assert ur[1] == "no truth neuron at cosine >= 0.9 (best 0.866)"


def test_verify_refuses_no_samples_and_a_sparse_probability_outside_0_1():
    net = ReLUNet.random("3-2-1")
    with pytest.raises(GlassboxError, match="n_samples must be at least 1, got 0"):
        verify(net, net, n_samples=0)
    assert verify(net, net, n_samples=1).n_samples == 1
    assert verify(net, net, n_samples=8, sparse_probability=1.0).per_distribution["sparse"].n == 8
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(GlassboxError, match=r"sparse_probability must be in \(0, 1\]"):
            verify(net, net, n_samples=8, sparse_probability=bad)
    with pytest.raises(GlassboxError, match="different inputs/outputs"):
        verify(ReLUNet.random("3-2-2"), net)


def test_verify_is_seeded_and_its_default_seed_is_zero():
    truth = ReLUNet.random("4-6-1", seed=14)
    rec = ReLUNet(truth.weights, [truth.biases[0] + 1e-4, truth.biases[1]])
    a, b = verify(rec, truth, n_samples=64), verify(rec, truth, n_samples=64, seed=0)
    assert a.to_json() == b.to_json() and a.seed == 0
    assert verify(rec, truth).n_samples == 4096


def test_log2_figures_at_their_edges():
    assert log2_error(1.0) == 0.0 and log2_error(0.5) == -1.0 and log2_error(0.0) == -math.inf
    assert log2_json(-1074.0) == -1074.0 and log2_json(math.inf) is None
    assert LOG2_ZERO_JSON == -1074.0
    assert fmt_log2(-1074.0) == "0 (exact)" and fmt_log2(-1073.96) == "2^-1074.0"
    assert fmt_log2(3.0) == "2^3.0" and fmt_log2(0.0) == "2^0.0"
