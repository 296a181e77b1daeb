"""The self-check's parts on hand-built nets: its query count, its verdict at the tolerance's edge,
its message, the points beside each plane and the layer each kink lies on."""

import math

import numpy as np
import pytest

from glassbox.extract.check import (
    BESIDE,
    beside_planes,
    hidden_prefix,
    kink_layers,
    self_check,
    sparse_inputs,
    unexplained_kinks,
)
from glassbox.mlp import ReLUNet
from glassbox.oracle.core import net_oracle
from glassbox.verify.inputs import hyperplane_points

F64 = 2.0**-52


def _constant(level: float, extra: float = 0.0) -> ReLUNet:
    """A 2-3-1 net answering ``level + extra`` everywhere (its output weights are zero)."""
    w0 = np.array([[1.0, 0.5], [-1.0, 2.0], [0.3, -0.7]])
    return ReLUNet([w0, np.zeros((1, 3))], [np.array([0.1, -0.2, 0.3]), np.array([level + extra])])


def _check(oracle_net, net, *, samples=64, tol=None, eps=F64, planes=(), seen=()):
    oracle = net_oracle(oracle_net)
    verdict = self_check(
        oracle,
        net,
        list(planes),
        list(seen),
        np.random.default_rng(0),
        input_scale=1.0,
        samples=samples,
        eps=eps,
        tolerance_log2=tol,
    )
    return verdict, oracle


def test_an_error_exactly_at_the_tolerance_passes_and_its_figures_are_exact():
    # answers 2 everywhere, the net 2 + 2^-9: relative error 2^-10 exactly
    verdict, oracle = _check(_constant(2.0), _constant(2.0, 2.0**-9), tol=-10.0)
    assert verdict.success
    assert verdict.figures == {
        "samples": 64 + 16,
        "max_error": 2.0**-9,
        "output_scale": 2.0,
        "relative_error_log2": -10.0,
        "tolerance_log2": -10.0,
        "unexplained_kinks": 0.0,
        "kinks_checked": 0.0,
    }
    assert verdict.message == (
        "success: 2-3-1 recovered; max |f - f_hat| = 2^-9.0 on 80 fresh queries "
        "(relative 2^-10.0, tolerance 2^-10)"
    )
    assert oracle.queries == 80


def test_an_error_just_past_the_tolerance_fails():
    verdict, _ = _check(_constant(2.0), _constant(2.0, 2.0**-9), tol=-10.25)
    assert not verdict.success
    assert verdict.message.startswith("failed: 2-3-1 recovered; max |f - f_hat| = 2^-9.0")


def test_the_default_tolerance_is_4096_ulps_but_never_tighter_than_2_to_the_minus_30():
    exact, _ = _check(_constant(1.0), _constant(1.0))
    assert exact.success and exact.figures["tolerance_log2"] == -30.0
    assert exact.figures["relative_error_log2"] == -1074.0 and exact.figures["max_error"] == 0.0
    assert "max |f - f_hat| = 2^-1074.0" in exact.message and "tolerance 2^-30)" in exact.message
    coarse, _ = _check(_constant(1.0), _constant(1.0), eps=2.0**-24)
    assert coarse.figures["tolerance_log2"] == -12.0
    # 2^-13 off passes at float32's tolerance, 2^-11 does not
    assert _check(_constant(1.0), _constant(1.0, 2.0**-13), eps=2.0**-24)[0].success
    assert not _check(_constant(1.0), _constant(1.0, 2.0**-11), eps=2.0**-24)[0].success


def test_a_silent_black_box_has_a_tiny_scale_not_zero():
    verdict, _ = _check(_constant(0.0), _constant(0.0))
    assert verdict.success and verdict.figures["output_scale"] == np.finfo(np.float64).tiny


@pytest.mark.parametrize("samples, total", [(1, 2), (3, 4), (4, 5), (8, 10), (100, 125)])
def test_the_check_asks_the_gaussian_samples_and_a_quarter_as_many_sparse_ones(samples, total):
    verdict, oracle = _check(_constant(1.0), _constant(1.0), samples=samples)
    assert verdict.figures["samples"] == total == oracle.queries
    assert f"on {total} fresh queries" in verdict.message


def _plane_point(w: np.ndarray, b: float, x: np.ndarray) -> np.ndarray:
    return x - (w @ x + b) * w / (w @ w)


def test_two_points_beside_each_first_layer_plane_one_on_each_side():
    net = ReLUNet.random("3-4-2", seed=5)
    W, b = net.weights[0], net.biases[0]
    rng = np.random.default_rng(1)
    points = [_plane_point(W[j], b[j], rng.normal(size=3)) for j in (2, 0)]
    out = beside_planes(net, [points], 3.0)
    assert out.shape == (4, 3)
    for k, j in enumerate((2, 0)):
        step = BESIDE * 3.0 * W[j] / np.linalg.norm(W[j])
        np.testing.assert_allclose(out[2 * k] - points[k], step, rtol=1e-6, atol=1e-15)
        np.testing.assert_allclose(out[2 * k + 1] - points[k], -step, rtol=1e-6, atol=1e-15)
        z = out[2 * k : 2 * k + 2] @ W[j] + b[j]
        np.testing.assert_allclose(
            z, np.array([1, -1]) * BESIDE * 3.0 * np.linalg.norm(W[j]), rtol=1e-6
        )
    assert beside_planes(net, [], 1.0).shape == (0, 3)


def test_points_beside_a_deep_plane_straddle_it_along_its_bent_normal():
    net = ReLUNet.random("4-6-5-1", seed=6)
    skip = (np.ones(6, dtype=bool), np.zeros(5, dtype=bool))  # layer-2 planes only
    on = hyperplane_points(net, 50, np.random.default_rng(2), skip)[::5][:4]
    z_on = net.preactivations(on)[1]
    js = np.argmin(np.abs(z_on), axis=1)
    out = beside_planes(net, [[], list(on)], 1.0)
    assert out.shape == (8, 4)
    z = net.preactivations(out)[1]
    for k, j in enumerate(js):
        hi, lo = z[2 * k, j], z[2 * k + 1, j]
        assert hi > 0 > lo and hi == pytest.approx(-lo, rel=1e-3)
        assert np.linalg.norm(out[2 * k] - on[k]) == pytest.approx(BESIDE, rel=1e-9)


def _kink_net() -> ReLUNet:
    # layer 1: x0 + 1, x1 + 1, x0 + x1 + 5; near the origin all on, so layer 2's first
    # neuron is x0 + x1 and its second x0 - x1
    w0 = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    w1 = np.array([[1.0, 1.0, 0.0], [1.0, -1.0, 0.0]])
    return ReLUNet(
        [w0, w1, np.ones((1, 2))], [np.array([1.0, 1.0, 5.0]), np.array([-2.0, 0.0]), None]
    )


def test_kinks_are_put_on_the_layer_of_the_plane_they_lie_on():
    net = _kink_net()
    points = np.array([[-1.0, 0.3], [-2.5, -2.5], [0.3, -0.3], [0.2, 0.2], [0.4, 0.7]])
    # on plane 0 (layer 1), plane 2 (layer 1), layer 2's first, its second, and none
    assert kink_layers(net, points) == (1, 1, 2, 2, 0)
    assert kink_layers(net, np.zeros((0, 2))) == ()
    assert kink_layers(ReLUNet([np.ones((1, 2))]), points) == (0,) * 5


def test_on_a_plane_means_within_1e_7_of_it_relative_to_1_plus_the_norm():
    net = _kink_net()
    # x = (-1 + t, 5): plane 0 at distance |t|; |x| ~ 5.1, so the bar is ~6.1e-7
    near, far = np.array([[-1.0 + 5e-7, 5.0]]), np.array([[-1.0 + 6.6e-7, 5.0]])
    assert kink_layers(net, near) == (1,) and kink_layers(net, far) == (0,)


def test_hidden_prefix_holds_every_hidden_layer_with_explicit_biases():
    net = ReLUNet.random("4-5-3-2:nohiddenbias", seed=7)
    p = hidden_prefix(net)
    assert len(p.weights) == 2 and [b.tolist() for b in p.biases] == [[0.0] * 5, [0.0] * 3]
    for a, b in zip(p.weights, net.weights[:-1], strict=True):
        np.testing.assert_array_equal(a, b)


def _missing_first(truth: ReLUNet) -> ReLUNet:
    w0, w1 = truth.weights[0][1:], truth.weights[1][:, 1:]
    return ReLUNet([w0, w1, truth.weights[2]], [truth.biases[0][1:], truth.biases[1], None])


def test_kinks_on_recovered_planes_cost_no_query_and_a_missing_neuron_is_counted():
    truth = _kink_net()
    oracle = net_oracle(truth)
    d = np.array([1.0, 0.0])
    on = [(np.array([-1.0, 0.3]), d), (np.array([0.3, -0.3]), d)]
    assert unexplained_kinks(oracle, truth, [], 1.0, F64) == 0
    assert unexplained_kinks(oracle, truth, on, 1.0, F64) == 0
    assert oracle.queries == 0
    # The recovered net lacks layer 1's first neuron: its kinks (where layer 2 is on, x1 > 1)
    # lie on no recovered plane.
    missing = _missing_first(truth)
    one = [(np.array([-1.0, 1.5]), d)]
    assert unexplained_kinks(oracle, missing, one, 1.0, F64) == 1
    assert oracle.queries > 0
    two = one + [(np.array([-1.0, 2.5]), d)]
    assert unexplained_kinks(oracle, missing, two, 1.0, F64) == 2


def test_a_seen_point_that_is_no_kink_is_looked_at_again_and_let_go():
    truth = _kink_net()
    oracle = net_oracle(truth)
    seen = [(np.array([0.35, 0.1]), np.array([0.0, 1.0]))]  # on no plane, and no kink there
    assert unexplained_kinks(oracle, truth, seen, 1.0, F64) == 0
    assert oracle.queries > 0


def test_a_stray_kink_fails_the_check_and_says_how_many():
    truth = _kink_net()
    seen = [(np.array([-1.0, 1.5]), np.array([1.0, 0.0]))]
    verdict, _ = _check(
        truth, _missing_first(truth), tol=10.0, seen=seen
    )  # any error passes the first half
    assert not verdict.success and verdict.figures["unexplained_kinks"] == 1.0
    assert verdict.figures["kinks_checked"] == 1.0
    assert verdict.message.endswith(
        "; 1 hidden kink(s) seen on the lines lie on no recovered hyperplane"
    )
    assert verdict.message.startswith("failed: 2-2-2-1 recovered")


@pytest.mark.parametrize("d0", [1, 2, 5])
def test_sparse_inputs_have_one_to_min_3_d_coordinates_on(d0):
    X = sparse_inputs(d0, 600, np.random.default_rng(d0), 1.0)
    assert X.shape == (600, d0)
    on = np.sum(X != 0, axis=1)
    assert set(on.tolist()) == set(range(1, min(3, d0) + 1))
    assert math.isclose(float(np.mean(X[X != 0])), 0.0, abs_tol=0.2)
