"""Outgoing weights the output fit never saw, measured just past the neuron's plane."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from glassbox.extract import ExtractConfig, extract
from glassbox.extract.prefix import Prefix
from glassbox.extract.signs.last_layer import LastLayerFit
from glassbox.extract.unmeasured import POINTS, STEPS, on_plane, reach
from glassbox.mlp import ReLUNet
from glassbox.oracle.core import net_oracle

W1 = np.array(
    [
        [1.0, 0.1, 0.2, 0.0, 0.3],
        [-1.0, 0.2, -0.1, 0.4, 0.0],
        [0.3, 1.0, 1.0, 0.2, -0.5],
        [0.2, 1.0, -1.0, 0.6, 0.1],
    ]
)
B1 = np.array([0.1, -0.2, 0.3, 0.05])
Array = NDArray[np.float64]


def test_a_weight_seen_only_past_its_plane_is_measured_there() -> None:
    # Output 1 = ReLU(h_1 + 0.01 h_0 - 1.5) is on only where neuron 0 is off in any sample
    # (it needs x_0 > 150 on neuron 0's side), but on neuron 0's plane it is on where h_1 > 1.5:
    # a step past the plane there measures the 0.01. Before, this run failed ("never measured").
    W2 = np.array([[1.0, 0.7, -0.5, 0.8], [0.01, 1.0, 0.0, 0.0]])
    truth = ReLUNet([W1, W2], [B1, np.array([0.2, -1.5])], output_relu=True)
    result = extract(net_oracle(truth), ExtractConfig(seed=1))
    assert result.success, result.message
    assert result.net is not None and result.check["unmeasured_weights"] == 0
    R, Wo = np.asarray(result.net.weights[0]), np.asarray(result.net.weights[1])
    j = int(np.argmax(np.abs(R @ W1[0]) / np.linalg.norm(R, axis=1)))
    scale = R[j, 0] / W1[0, 0]  # the recovered neuron is the true one times a positive scale
    assert np.allclose(R[j], scale * W1[0], rtol=1e-12, atol=1e-12)
    assert abs(Wo[1, j] * scale - 0.01) <= 1e-9
    far = np.array([[300.0, 0, 0, 0, 0]])  # where the weight matters: output 1 = 1.501
    assert abs(result.net.forward(far)[0, 1] - truth.forward(far)[0, 1]) <= 1e-9


def _partial(truth: ReLUNet, X: Array) -> tuple[Array, LastLayerFit, Array]:
    """The true rows, and the true output layer with the weight (1, 0) left at zero."""
    theta = np.hstack([np.asarray(truth.weights[0]), np.asarray(truth.biases[0])[:, None]])
    W2 = np.array(truth.weights[1])
    W2[1, 0] = 0.0
    fit = LastLayerFit(True, -50.0, signs=np.ones(4), rows=theta, out_weights=W2)
    fit.out_bias, fit.unmeasured = np.asarray(truth.biases[1]), [(1, 0)]
    return theta, fit, truth.forward(X)


def test_points_on_the_plane_have_the_output_on_or_there_are_none() -> None:
    X = np.random.default_rng(0).normal(size=(400, 5))
    prefix, rng = Prefix(5), np.random.default_rng(1)
    W2 = np.array([[1.0, 0.7, -0.5, 0.8], [0.01, 1.0, 0.0, 0.0]])
    seen = ReLUNet([W1, W2], [B1, np.array([0.2, -1.5])], output_relu=True)
    theta, fit, Y = _partial(seen, X)
    points = on_plane(prefix, fit, 1, theta[0], X, Y, rng, 1.0)
    assert points
    for p in points:  # on neuron 0's plane, where output 1 is truly on (1e-3 of its top, at least)
        assert abs(theta[0, :-1] @ p + theta[0, -1]) <= 1e-12 * (1 + np.linalg.norm(p))
        assert seen.preactivations(p[None])[-1][0, 1] > 1e-3 * np.max(Y[:, 1])
    # Queried a step past the plane: every point kept has neuron 0 on and output 1 on.
    asked = net_oracle(seen)
    X2, Y2 = reach(asked, prefix, theta, fit, X, Y, rng, 1.0)
    # Within the cap: POINTS points per pair, a step of each length past each.
    assert 0 < asked.queries <= POINTS * len(STEPS)
    new = slice(X.shape[0], None)
    assert X2[new].shape[0] > 0 and np.all(Y2[new, 1] > 0)
    assert np.all(X2[new] @ theta[0, :-1] + theta[0, -1] > 0)
    # Output 1 = ReLU(h_1 - h_2 - 0.5 + 0.01 h_0) with u_1 = u_2 - u_0 is -0.5 all over the
    # plane: no point, and nothing queried.
    n2 = np.array([0.3, 1.0, 1.0, 0.2, -0.5])
    blind_W1 = np.vstack([W1[0], n2 - W1[0], n2, W1[3]])
    blind_W2 = np.array([[1.0, 0.7, -0.5, 0.8], [0.01, 1.0, -1.0, 0.0]])
    blind = ReLUNet(
        [blind_W1, blind_W2], [np.array([0.1, 0.2, 0.3, 0.05]), np.array([0.2, -0.5])], True
    )
    theta, fit, Y = _partial(blind, X)
    assert on_plane(prefix, fit, 1, theta[0], X, Y, rng, 1.0) == []
    oracle = net_oracle(blind)
    assert reach(oracle, prefix, theta, fit, X, Y, rng, 1.0)[0].shape == X.shape
    assert oracle.queries == 0


def test_behind_a_known_prefix_the_points_lie_on_the_bent_plane() -> None:
    # Two hidden layers: the first is the known prefix, so neuron 0's plane is bent.
    rng = np.random.default_rng(3)
    Wp, bp = rng.normal(size=(7, 5)), rng.normal(0, 0.3, size=7)
    theta = np.hstack([rng.normal(size=(4, 7)), rng.normal(0, 0.3, size=(4, 1))])
    W2 = np.array([[1.0, 0.7, -0.5, 0.8], [0.01, 1.0, 0.5, -0.3]])
    truth = ReLUNet([Wp, theta[:, :-1], W2], [bp, theta[:, -1], np.array([0.2, -0.5])], True)
    prefix = Prefix(5)
    prefix.push(Wp, bp)
    X = rng.normal(size=(400, 5))
    W2_partial = W2.copy()
    W2_partial[1, 0] = 0.0
    fit = LastLayerFit(True, -50.0, signs=np.ones(4), rows=theta, out_weights=W2_partial)
    fit.out_bias, fit.unmeasured = np.array([0.2, -0.5]), [(1, 0)]
    Y = truth.forward(X)
    points = on_plane(prefix, fit, 1, theta[0], X, Y, rng, 1.0)
    assert points
    for p in points:
        u = prefix.state(p[None]) @ theta[:, :-1].T + theta[:, -1]
        assert abs(u[0, 0]) <= 1e-9
        assert truth.preactivations(p[None])[-1][0, 1] > 1e-3 * np.max(Y[:, 1])
    X2, Y2 = reach(net_oracle(truth), prefix, theta, fit, X, Y, rng, 1.0)
    new = X2[X.shape[0] :]
    assert new.shape[0] > 0 and np.all(Y2[X.shape[0] :, 1] > 0)
    assert np.all(prefix.state(new) @ theta[0, :-1] + theta[0, -1] > 0)
