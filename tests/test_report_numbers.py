"""The demo report's numbers from hand-built nets: normalised differences, recovery counts, the
extras it drops and the five summary lines, each a closed form."""

from __future__ import annotations

import numpy as np
import pytest

from glassbox.errors import GlassboxError
from glassbox.mlp import ReLUNet
from glassbox.report.numbers import (
    ReportInputs,
    drop_negligible_extras,
    net_layers,
    neuron_errors,
    recovery,
    sample_count,
    summary_lines,
    weight_differences,
)
from glassbox.toy import analysis
from glassbox.verify.align import align

W1 = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 0.5], [1.0, 0.0, 0.0], [0.0, -2.0, 0.0]])
W2 = np.array([[1.0, 0.5, -1.0, 2.0], [0.0, 1.0, 1.0, -0.5]])


def _truth(hidden_bias=None, out_bias=None) -> ReLUNet:
    return ReLUNet([W1, W2], [hidden_bias, out_bias])


def test_net_layers_of_a_one_hidden_layer_net_and_only_of_one():
    w1, w2, b = net_layers(_truth())
    assert w1 is not None and w2.shape == (2, 4)
    np.testing.assert_array_equal(b, [0.0, 0.0])
    np.testing.assert_array_equal(
        net_layers(_truth(out_bias=np.array([1.0, -1.0])))[2], [1.0, -1.0]
    )
    with pytest.raises(GlassboxError, match="the report draws one-hidden-layer nets; got 3-4-2-1"):
        net_layers(ReLUNet.random("3-4-2-1"))


def test_differences_are_normalised_per_truth_neuron_as_verify_does():
    d = 2.0**-20
    truth = _truth(hidden_bias=np.array([0.0, 1.2, 0.0, 0.0]), out_bias=np.array([0.5, 0.0]))
    # neuron norms |(w, b)|: 5, 1.3, 1, 2
    w1, w2 = W1.copy(), W2.copy()
    w1[0, 1] += d
    w2[1, 1] += d
    aligned = ReLUNet([w1, w2], [truth.biases[0], np.array([0.5 + d, 0.0])])
    diffs = weight_differences(truth, aligned)
    expected_w1 = np.zeros((4, 3))
    expected_w1[0, 1] = d / 5.0
    expected_w2 = np.zeros((2, 4))
    expected_w2[1, 1] = d * 1.3
    np.testing.assert_allclose(diffs["W1"], expected_w1, rtol=1e-12, atol=0)
    np.testing.assert_allclose(diffs["W2"], expected_w2, rtol=1e-12, atol=0)
    np.testing.assert_allclose(diffs["b"], [d, 0.0], rtol=1e-12, atol=0)
    np.testing.assert_allclose(neuron_errors(diffs), [d / 5.0, d * 1.3, 0.0, 0.0], rtol=1e-12)


def test_extra_aligned_neurons_are_left_out_of_the_differences():
    truth = _truth()
    aligned = ReLUNet([np.vstack([W1, [[9.0, 9.0, 9.0]]]), np.hstack([W2, [[9.0], [9.0]]])])
    diffs = weight_differences(truth, aligned)
    assert diffs["W1"].shape == (4, 3) and diffs["W2"].shape == (2, 4)
    assert not diffs["W1"].any() and not diffs["W2"].any() and not diffs["b"].any()


def test_a_zero_truth_row_is_divided_by_one():
    w1 = W1.copy()
    w1[2] = 0.0
    truth = ReLUNet([w1, W2])
    w1b = w1.copy()
    w1b[2, 0] = 0.125
    diffs = weight_differences(truth, ReLUNet([w1b, W2]))
    assert diffs["W1"][2, 0] == 0.125 and np.isfinite(diffs["W1"]).all()


def _rec_and_truth():
    # truth: neuron 1 is dead (bias -1000), neuron 3 invisible (outgoing zero), neuron 2
    # missing from the recovered net, which also has an extra neuron
    w2 = W2.copy()
    w2[:, 3] = 0.0
    truth = ReLUNet([W1, w2], [np.array([0.1, -1000.0, 0.2, 0.3]), None])
    rec = ReLUNet(
        [
            np.vstack([W1[[0, 1, 3]], [[0.0, 5.0, -5.0]]]),
            np.hstack([w2[:, [0, 1, 3]], [[1.0], [1.0]]]),
        ],
        [np.array([0.1, -1000.0, 0.3, 0.0]), None],
    )
    return rec, truth


def test_recovery_counts_visible_recovered_missing_dead_invisible_and_extra():
    rec, truth = _rec_and_truth()
    r = recovery(align(rec, truth, n_samples=256))
    assert r.dead == (1,) and r.invisible == (3,)
    assert r.visible == (0, 2) and r.recovered == (0,) and r.missing == (2,)
    assert r.extra == (3,)  # the recovered net's neuron 3 matches nothing


def test_extras_too_weak_to_matter_are_dropped_and_strong_ones_kept():
    t = analysis.DEAD_THRESHOLD
    base = [W1, W2]
    weak = [np.vstack([W1, [[0.5, -0.1, 0.0]]]), np.hstack([W2, [[0.99 * t / 0.5], [0.0]]])]
    strong = [np.vstack([W1, [[0.5, -0.1, 0.0]]]), np.hstack([W2, [[0.0], [1.01 * t / 0.5]]])]
    bias = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    net, dropped = drop_negligible_extras(ReLUNet(weak, [bias, None]), 4)
    assert net.dims == (3, 4, 2) and list(dropped) == [4]
    assert dropped[4] == pytest.approx(0.99 * t)
    np.testing.assert_array_equal(net.biases[0], bias[:4])
    np.testing.assert_array_equal(net.weights[1], W2)
    kept, none = drop_negligible_extras(ReLUNet(strong, [bias, np.zeros(2)]), 4)
    assert kept.dims == (3, 5, 2) and none == {}
    np.testing.assert_array_equal(kept.biases[1], np.zeros(2))
    # "below" the threshold: an extra exactly at it is kept (0.5 * 0.02 is 0.01 exactly)
    assert t == 0.01 and t == 0.5 * 0.02
    at = [np.vstack([W1, [[0.5, -0.1, 0.0]]]), np.hstack([W2, [[0.02], [0.0]]])]
    assert drop_negligible_extras(ReLUNet(at, [bias, None]), 4)[0].dims == (3, 5, 2)
    # truth neurons are never dropped, however weak
    tiny = ReLUNet([W1 * 1e-9, W2], [None, None])
    assert drop_negligible_extras(tiny, 4)[0].dims == (3, 4, 2)
    assert drop_negligible_extras(ReLUNet(base), 4)[1] == {}


def test_the_five_summary_lines_are_the_run_s_figures():
    rec, truth = _rec_and_truth()
    r = recovery(align(rec, truth, n_samples=256))
    ver = {
        "max_weight_error_log2": -41.26,
        "epsilon_log2": -1074.0,
        "delta": 0.25,
        "per_distribution": {
            "gaussian": {"n": 1000},
            "uniform": {"n": 1000},
            "hyperplane": {"n": 45},
        },
    }
    ex = {"queries": 4096, "seconds": 1.25}
    inputs = ReportInputs({}, None, 0, {}, truth, rec, ex, ver, None)  # type: ignore[arg-type]
    assert sample_count(ver) == 2045 and sample_count({}) == 0
    assert summary_lines(inputs, r) == [
        "queries:                4,096 (2^12.0)",
        "seconds:                1.2 (attack only)",
        "max weight error:       2^-41.3",
        "functional error:       max |f - f_hat| = 0 (exact) on 2,045 inputs (delta = 0.25)",
        "neurons recovered:      1 / 2 visible",
    ]
