"""Cost at width: shared segment gradients, compact first-layer witnesses, output columns."""

from __future__ import annotations

import numpy as np

from glassbox.extract.columns import output_column
from glassbox.extract.kinks import find_kinks
from glassbox.extract.prefix import Prefix
from glassbox.extract.witness import measure
from glassbox.mlp import ReLUNet
from glassbox.oracle.core import net_oracle

EPS = 2.0**-52


def _line(net: ReLUNet, seed: int = 0):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    d = rng.normal(size=(1, net.input_dim))
    d /= np.linalg.norm(d)
    half = 4.0 * np.sqrt(net.input_dim)
    (line,) = find_kinks(net_oracle(net), rng.normal(size=(1, net.input_dim)), d, -half, half)
    return line


def _neuron_at(net: ReLUNet, x: np.ndarray) -> int:
    z = net.weights[0] @ x + net.biases[0]
    return int(np.argmin(np.abs(z) / np.linalg.norm(net.weights[0], axis=1)))


def test_neighbouring_kinks_share_the_gradient_between_them() -> None:
    net = ReLUNet.random("30-12-1", seed=2)
    line = _line(net)
    ks = [int(k) for k in line.hidden]
    assert len(ks) >= 3 and ks[:3] == [ks[0], ks[0] + 1, ks[0] + 2]
    oracle = net_oracle(net)
    prefix = Prefix(30)
    counts = []
    for k in ks[:3]:
        before = oracle.queries
        assert measure(oracle, prefix, line, k, EPS) is not None
        counts.append(oracle.queries - before)
    # First layer, forward steps: d0 + 1 queries per side; a neighbour pays for one side.
    assert counts == [2 * 31, 31, 31]


def test_first_layer_witness_rebuilds_its_equations() -> None:
    net = ReLUNet.random("40-10-2", seed=5)
    line = _line(net, seed=1)
    oracle = net_oracle(net)
    k = int(line.hidden[0])
    w = measure(oracle, Prefix(40), line, k, EPS)
    assert w is not None and w.stored is None and w.row is not None
    j = _neuron_at(net, w.x)
    truth = np.append(net.weights[0][j], net.biases[0][j])
    truth /= np.linalg.norm(truth)
    E = w.equations
    assert E.shape == (41, 41)
    # The true row solves them, and the witness's own row is the truth up to sign.
    assert np.max(np.abs(E @ truth)) <= 1e-9
    assert min(np.max(np.abs(w.row - truth)), np.max(np.abs(w.row + truth))) <= 1e-8


def test_output_column_from_one_jump_vector() -> None:
    # Five outputs: one kink's jump vector is the neuron's whole column A[:, j], sign-free.
    net = ReLUNet.random("12-7-5", seed=3)
    line = _line(net, seed=2)
    for k in line.hidden[:4]:
        x = line.point(float(line.t[k]))
        j = _neuron_at(net, x)
        theta = np.append(net.weights[0][j], net.biases[0][j])
        for sign in (1.0, -1.0):  # the row's sign is not needed
            col = output_column(line, int(k), sign * theta, Prefix(12))
            assert col is not None
            np.testing.assert_allclose(col, net.weights[1][:, j], rtol=1e-7, atol=1e-9)
        # At another scale of the row, the column scales inversely (the net is unchanged).
        half = output_column(line, int(k), 2.0 * theta, Prefix(12))
        assert half is not None
        np.testing.assert_allclose(2.0 * half, net.weights[1][:, j], rtol=1e-7, atol=1e-9)
