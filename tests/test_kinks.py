"""The kink finder against nets whose kinks are known in closed form."""

from __future__ import annotations

import numpy as np

from glassbox.extract.kinks import HIDDEN, OUTPUT_RELU, find_kinks
from glassbox.mlp import ReLUNet
from glassbox.oracle.core import net_oracle


def _closed_form(W: np.ndarray, b: np.ndarray, x0: np.ndarray, d: np.ndarray) -> np.ndarray:
    return np.sort(-(W @ x0 + b) / (W @ d))


def test_hidden_kinks_at_closed_form_positions_in_every_dependent_output() -> None:
    rng = np.random.default_rng(0)
    W1 = rng.normal(size=(6, 4))
    b1 = rng.normal(size=6)
    W2 = rng.normal(size=(5, 6))
    W2[3, 2] = 0.0  # output 3 does not depend on neuron 2
    net = ReLUNet([W1, W2], [b1, rng.normal(size=5)])
    x0, d = rng.normal(size=4), rng.normal(size=4)
    d /= np.linalg.norm(d)
    T = 1e3  # long enough to cross all six hyperplanes
    (line,) = find_kinks(net_oracle(net), x0[None], d[None], -T, T)
    truth = _closed_form(W1, b1, x0, d)
    assert line.kind == (HIDDEN,) * 6
    np.testing.assert_allclose(line.t, truth, rtol=0, atol=1e-12 * T)
    # Shared corner: each kink bends exactly the outputs that depend on its neuron.
    order = np.argsort(-(W1 @ x0 + b1) / (W1 @ d))
    np.testing.assert_array_equal(line.changed, (W2 != 0).T[order])


def test_affine_line_has_no_kinks_and_few_queries() -> None:
    W1 = np.array([[1.0, 0.0], [0.0, 1.0]])
    net = ReLUNet([W1, np.ones((2, 2))], [np.array([10.0, 10.0]), None])
    oracle = net_oracle(net)
    (line,) = find_kinks(oracle, np.zeros((1, 2)), np.array([[0.6, 0.8]]), -1.0, 1.0)
    assert line.t.size == 0
    assert oracle.queries <= 8


def test_output_relu_kink_bends_one_output_and_dead_output_shows_nothing() -> None:
    # h = ReLU(x1); y0 = ReLU(h - 1), y1 = ReLU(x2 + 0.5 h), y2 = ReLU(-h - 5) is always 0.
    W1 = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    W2 = np.array([[1.0, 0.0, 0.0], [0.5, 1.0, -1.0], [-1.0, 0.0, 0.0]])
    net = ReLUNet([W1, W2], [None, np.array([-1.0, 0.0, -5.0])], output_relu=True)
    x0 = np.array([[-3.0, 2.0]])
    d = np.array([[1.0, 0.0]])  # along x1 with x2 = 2: kinks at x1 = 0 (hidden), x1 = 1 (y0 on)
    (line,) = find_kinks(net_oracle(net), x0, d, 0.0, 6.0)
    np.testing.assert_allclose(line.t, [3.0, 4.0], atol=1e-12)
    assert line.kind == (HIDDEN, OUTPUT_RELU)
    np.testing.assert_array_equal(line.changed, [[False, True, False], [True, False, False]])


def test_many_lines_in_one_batch() -> None:
    net = ReLUNet.random("20-16-3", seed=3)
    rng = np.random.default_rng(1)
    x0 = rng.normal(size=(4, 20))
    d = rng.normal(size=(4, 20))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    lines = find_kinks(net_oracle(net), x0, d, -30.0, 30.0)
    for i, line in enumerate(lines):
        t = -(net.weights[0] @ x0[i] + net.biases[0]) / (net.weights[0] @ d[i])
        t = np.sort(t[np.abs(t) < 30.0])
        np.testing.assert_allclose(line.t, t, atol=1e-9)
        assert line.unresolved == 0
