"""Refinement: the lone layer's polish and the precision it reaches, against the truth."""

from __future__ import annotations

import numpy as np

from glassbox.extract import ExtractConfig, extract
from glassbox.extract.polish import axis_steps, polish_single_layer
from glassbox.mlp import ReLUNet
from glassbox.oracle.core import net_oracle
from glassbox.verify.compare import verify


def _unit_rows(net: ReLUNet) -> np.ndarray:
    theta = np.column_stack([net.weights[0], net.biases[0]])
    return theta / np.linalg.norm(theta, axis=1, keepdims=True)


def test_axis_steps_cross_no_plane() -> None:
    rng = np.random.default_rng(0)
    W, b = rng.normal(size=(40, 12)), rng.normal(size=40)
    for _ in range(20):
        x = rng.normal(size=12) * 3
        steps = axis_steps(x, W, b, cap=4.0)
        side = np.sign(W @ x + b)
        for k in range(12):
            y = x.copy()
            y[k] += steps[k]
            assert np.array_equal(np.sign(W @ y + b), side)
            # Half the room in the direction stepped, or half the cap: never less.
            y[k] += steps[k] * 1.0000001
            crossed = not np.array_equal(np.sign(W @ y + b), side)
            assert crossed or abs(steps[k]) == 2.0


def test_polish_reaches_2_minus_40_on_width_64() -> None:
    net = ReLUNet.random("100-64-1", seed=0)
    truth = _unit_rows(net)
    rng = np.random.default_rng(1)
    # Rows as a search leaves them (relative error 1e-7), and a point on each plane.
    rough = truth + 1e-7 * rng.normal(size=truth.shape)
    q = rng.normal(size=(64, 100))
    W, b = net.weights[0], net.biases[0]
    points = q - ((np.sum(q * W, axis=1) + b) / np.sum(W * W, axis=1))[:, None] * W
    oracle = net_oracle(net)
    rows, errors = polish_single_layer(oracle, rough, points, 1.0)
    rows = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    worst = np.max(np.abs(rows - truth), axis=1)
    assert np.all(np.isfinite(errors))
    assert np.log2(worst.max()) <= -40.0
    # The polish costs a few gradients per row, far fewer than kinks would.
    assert oracle.queries <= 64 * 4 * 101 * 2


def test_one_layer_of_width_64_refined_to_2_minus_40() -> None:
    net = ReLUNet.random("100-64-1", seed=0)
    result = extract(net_oracle(net), ExtractConfig(seed=0))
    assert result.success and result.net is not None, result.message
    assert verify(result.net, net, n_samples=1000).max_weight_error_log2 <= -40.0
    assert result.queries_by_phase["refine"] < result.queries / 2
