"""The sign methods (extract/signs/): each on a net built so that it applies, and the cross-check."""

from __future__ import annotations

import numpy as np
import pytest

from glassbox.extract import extract
from glassbox.extract.prefix import Prefix
from glassbox.extract.records import ExtractConfig
from glassbox.extract.signs.dispatch import (
    Probe,
    confirm,
    disagreements,
    disputed_pairs,
    sign_inner_layer,
)
from glassbox.extract.signs.last_layer import fit_last_layer
from glassbox.extract.signs.lattice import lattice_sigma
from glassbox.extract.signs.soe import soe_signs
from glassbox.extract.signs.wiggle import ISOLATED, isolating_points, leak
from glassbox.mlp import ReLUNet
from glassbox.oracle.core import net_oracle

EPS = 2.0**-52


def _rows(net: ReLUNet, layer: int) -> np.ndarray:
    b = net.biases[layer]
    assert b is not None
    return np.hstack([net.weights[layer], b[:, None]])


def _true_prefix(net: ReLUNet, depth: int) -> Prefix:
    p = Prefix(net.input_dim)
    for W, b in zip(net.weights[:depth], net.biases[:depth], strict=True):
        assert b is not None
        p.push(W, b)
    return p


@pytest.mark.parametrize(("m", "n"), [(3, 40), (6, 50), (20, 100), (4, 60), (3, 50)])
def test_lattice_finds_the_planted_zero_one_vector(m: int, n: int) -> None:
    if m * 44 < 4 * n:
        pytest.importorskip("fpylll", reason="denser instances need BKZ (glassbox[lattice])")
    rng = np.random.default_rng(m * n)
    A = rng.normal(size=(m, n))
    sigma = (rng.random(n) < 0.5).astype(float)
    found = lattice_sigma(A, A @ sigma + 1e-13 * rng.normal(size=m))
    assert found is not None
    # Fewer equations than unknowns: least squares has a whole affine space to choose from.
    assert np.linalg.matrix_rank(A) < n
    assert np.array_equal(found.sigma, sigma)
    assert found.residual < 1e-10


def test_lattice_says_none_when_no_zero_one_vector_fits() -> None:
    rng = np.random.default_rng(1)
    A = rng.normal(size=(6, 30))
    assert lattice_sigma(A, A @ rng.uniform(0.2, 0.8, size=30)) is None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lattice_signs_a_3_40_1_last_layer(seed: int) -> None:
    """40 unknown signs, 3 equations (the output bias absorbs the constant): only the lattice
    applies. Where several sign vectors fit within the answers' precision their nets are the
    same function, so the result is judged by its function."""
    net = ReLUNet.random("3-40-1", seed=seed)
    flips = np.where(np.random.default_rng(seed).random(40) < 0.5, -1.0, 1.0)
    rng = np.random.default_rng(7)
    X = rng.normal(size=(600, 3))
    # Samples beside every plane, so that each neuron is seen from both sides.
    rows = _rows(net, 0)
    near = -rows[:, -1:] * rows[:, :-1] / np.sum(rows[:, :-1] ** 2, axis=1, keepdims=True)
    X = np.vstack([X, np.repeat(near, 8, axis=0) + 0.1 * rng.normal(size=(320, 3))])
    fit = fit_last_layer(Prefix(3), rows * flips[:, None], X, net.forward(X), output_relu=False)
    assert fit.exact and fit.method == "lattice" and fit.signs is not None
    assert fit.rows is not None and fit.out_weights is not None and fit.out_bias is not None
    got = ReLUNet([fit.rows[:, :-1], fit.out_weights], [fit.rows[:, -1], fit.out_bias])
    Z = rng.normal(size=(5000, 3)) * 3
    scale = float(np.max(np.abs(net.forward(Z))))
    assert float(np.max(np.abs(got.forward(Z) - net.forward(Z)))) <= 2.0**-35 * scale
    if fit.rivals == 0:
        assert np.array_equal(fit.signs, flips)


def test_soe_recovers_the_signs_of_a_contractive_inner_layer() -> None:
    net = ReLUNet.random("10-12-6-3", seed=3)
    prefix = _true_prefix(net, 1)
    flips = np.array([1.0, -1.0, 1.0, -1.0, -1.0, 1.0])
    oracle = net_oracle(net)
    soe = soe_signs(
        oracle, prefix, _rows(net, 1) * flips[:, None], [], np.random.default_rng(0), EPS
    )
    assert soe is not None
    assert np.array_equal(soe.sign, flips)
    assert np.all(soe.margin > 0.9)
    # n + 1 queries per step size, a few points: far below the wiggle's cost.
    assert oracle.queries <= soe.points * (2 * 6 + 1)


def test_soe_does_not_apply_to_an_expansive_first_layer() -> None:
    net = ReLUNet.random("4-9-2", seed=0)
    soe = soe_signs(net_oracle(net), Prefix(4), _rows(net, 0), [], np.random.default_rng(0), EPS)
    assert soe is None


def test_wiggle_finds_isolating_points_where_the_witnesses_do_not_isolate() -> None:
    net = ReLUNet.random("10-8-6-3", seed=1)
    prefix = _true_prefix(net, 1)
    theta = _rows(net, 1)
    rng = np.random.default_rng(0)
    for j in range(6):
        pts = isolating_points(prefix, theta, j, [], rng, 1.0, want=4)
        assert pts, f"neuron {j}: no isolating point"
        for x in pts:
            assert leak(prefix, theta, j, x) <= ISOLATED
            z = theta[j, :-1] @ prefix.state(x[None, :])[0] + theta[j, -1]
            assert abs(z) <= 1e-9 * (1 + np.linalg.norm(x))


def test_dispatcher_signs_an_inner_layer_with_wiggle_and_soe_agreeing() -> None:
    net = ReLUNet.random("10-12-6-3", seed=3)
    prefix = _true_prefix(net, 1)
    flips = np.array([-1.0, 1.0, 1.0, -1.0, 1.0, -1.0])
    theta = _rows(net, 1) * flips[:, None]
    rng = np.random.default_rng(2)
    points = [isolating_points(prefix, theta, j, [], rng, 1.0, want=3) for j in range(6)]
    got = sign_inner_layer(Probe(net_oracle(net), prefix, rng, EPS, 1.0), theta, points)
    assert np.array_equal(got.signs, flips)
    assert got.agreed == ["neuron wiggle", "SOE"]
    assert not got.conflicts and not got.undecided and got.margin > 0.5
    assert got.failure(2) == ""


def test_a_flipped_sign_is_caught_by_the_cross_check() -> None:
    net = ReLUNet.random("10-12-6-3", seed=3)
    prefix = _true_prefix(net, 1)
    theta = _rows(net, 1)
    claimed = np.ones(6)
    claimed[4] = -1.0  # one sign wrong, as a faulty method would return it
    probe = Probe(net_oracle(net), prefix, np.random.default_rng(0), EPS, 1.0)
    soe, split = confirm(probe, theta, claimed, [])
    assert soe is not None
    assert split == [4]
    assert disagreements(claimed, np.ones(6)) == [4]
    # A +/- pair read where there is one neuron (what a missing neuron leaves in a fit):
    # SOE sees it on at one side of the plane and off at the other.
    claimed[4] = 0.0
    soe, split = confirm(probe, theta, claimed, [])
    assert soe is not None and split == [4]
    assert disputed_pairs(claimed, soe) == [4]
    # The true signs are confirmed.
    assert confirm(probe, theta, np.ones(6), [])[1] == []


def test_an_output_on_for_under_one_percent_of_inputs_has_its_weights_measured() -> None:
    net = ReLUNet.random("6-8-3:relu", seed=0)
    W, b = [np.array(w) for w in net.weights], [np.array(v) for v in net.biases]  # type: ignore[arg-type]
    X = np.random.default_rng(0).normal(size=(200_000, 6))
    H = np.maximum(X @ W[0].T + b[0], 0.0)
    z = H @ W[1][0] + b[1][0]
    b[1][0] -= np.quantile(z, 0.996)  # output 0 on for 0.4% of Gaussian inputs
    rare = ReLUNet(W, b, output_relu=True)
    on = rare.forward(X)[:, 0] > 0
    assert 0 < on.mean() < 0.01
    result = extract(net_oracle(rare), ExtractConfig(seed=0))
    assert result.success, result.message
    assert result.net is not None
    assert result.check.get("unmeasured_weights", 0) == 0
    err = np.abs(result.net.forward(X[on])[:, 0] - rare.forward(X[on])[:, 0])
    assert float(np.max(err)) <= 2.0**-30 * float(np.max(rare.forward(X[on])[:, 0]))
